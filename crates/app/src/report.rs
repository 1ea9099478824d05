//! The report of a study: the draft written from the reviewed findings (English or
//! simplified Chinese), the doctor's edits, signing, addenda and the PDF.
//!
//! Signing, in an order that a crash cannot spoil: (1) `Store::begin_signature` fixes the
//! version, signer and time (a retry of the same text gets the same ones); (2) the PDF is
//! rendered and written as an Encapsulated PDF and a Basic Text SR whose UIDs and dates are
//! functions of that signature ([`lumen_report::uid::derived_uid`]), and both are stored with
//! `Store::ingest` (identical bytes on a retry: "already present"); (3)
//! `Store::commit_signature` records the signed version. A crash before (3) leaves an
//! unsigned draft; after it, a signed report with its objects.

use dicom_dictionary_std::tags;
use lumen_dicom::json::first_string;
use lumen_model::LungRads;
use lumen_model::finding::study_category;
use lumen_model::lungrads;
use lumen_report::WrittenObject;
use lumen_report::document::{
    BASIC_TEXT_SR_STORAGE, Predecessor, TextReport, Verifier, encapsulated_pdf, section, text_sr,
};
use lumen_report::draft::{DraftFinding, DraftInput, Lang, Sections, draft};
use lumen_report::pdf::{AddendumText, ReportDocument, ReportState};
use lumen_report::time::{Civil, iso};
use lumen_report::uid::derived_uid;
use lumen_report::{Equipment, SeriesInfo, StudyContext};
use lumen_store::{PendingSignature, ReportRecord, ReportStatus, Scope};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::review::StudyReview;
use crate::{Actor, App, AppError, check_study};

/// Longest section or addendum accepted, in bytes.
pub const MAX_SECTION: usize = 64 * 1024;

/// The three sections of a report, as the API shows and takes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSections {
    /// Findings.
    pub findings: String,
    /// Impression.
    pub impression: String,
    /// Recommendation.
    pub recommendation: String,
}

impl From<&Sections> for ReportSections {
    fn from(s: &Sections) -> Self {
        ReportSections {
            findings: s.findings.clone(),
            impression: s.impression.clone(),
            recommendation: s.recommendation.clone(),
        }
    }
}

impl ReportSections {
    /// Sections as stored (missing ones empty).
    fn from_stored(v: &Value) -> ReportSections {
        let f = |k: &str| v[k].as_str().unwrap_or("").to_string();
        ReportSections {
            findings: f("findings"),
            impression: f("impression"),
            recommendation: f("recommendation"),
        }
    }

    fn stored(&self) -> Value {
        json!({
            "findings": self.findings, "impression": self.impression,
            "recommendation": self.recommendation,
        })
    }

    fn to_draft(&self) -> Sections {
        Sections {
            findings: self.findings.clone(),
            impression: self.impression.clone(),
            recommendation: self.recommendation.clone(),
        }
    }
}

/// A signed addendum as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AddendumView {
    /// Its text.
    pub text: String,
    /// Who signed it.
    pub signed_by: String,
    /// When, ISO 8601 UTC.
    pub signed_at: String,
}

/// A study's report as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ReportView {
    /// Study Instance UID.
    pub study_uid: String,
    /// unread, draft or signed.
    pub status: ReportStatus,
    /// Whether the text is still the one drafted from the findings.
    pub ai_draft: bool,
    /// Language of the text (`en`, `zh-CN`).
    pub lang: String,
    /// The report's text.
    pub sections: ReportSections,
    /// The draft written from the reviewed findings now.
    pub generated: ReportSections,
    /// Who signed the report.
    pub signed_by: Option<String>,
    /// When, ISO 8601 UTC.
    pub signed_at: Option<String>,
    /// Signed addenda, oldest first.
    pub addenda: Vec<AddendumView>,
    /// Where the PDF of the latest signed version is.
    pub pdf_url: Option<String>,
    /// The citation of the data, when it is a public collection.
    pub citation: Option<String>,
    /// The ledger entries of the signature and addenda, oldest first.
    pub ledger: Vec<LedgerRef>,
}

/// A signature's entry on the node's ledger, as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerRef {
    /// Its index in the ledger's tree.
    pub index: u64,
    /// `report.signed` or `report.addendum`.
    pub kind: String,
    /// Its inclusion proof in the latest checkpoint (public).
    pub proof_url: String,
}

/// Parses `?lang=` (`en`, `zh-CN`); empty or absent is none.
pub fn parse_lang(s: Option<&str>) -> Result<Option<Lang>, AppError> {
    match s {
        None | Some("") => Ok(None),
        Some(l) => Lang::parse(l)
            .map(Some)
            .ok_or_else(|| AppError::Invalid("lang must be en or zh-CN".into())),
    }
}

/// The draft sections written from the reviewed findings now, in `lang`.
fn generated(r: &StudyReview, lang: Lang) -> Sections {
    let reported = r.reported();
    let items: Vec<DraftFinding> = reported
        .iter()
        .map(|f| {
            let c = &f.current;
            DraftFinding {
                location: c.location.clone(),
                kind: c.kind.as_str().to_string(),
                long_axis_mm: c.long_axis_mm,
                short_axis_mm: c.short_axis_mm,
                mean_diameter_mm: c.mean_diameter_mm,
                volume_mm3: c.volume_mm3,
                solid_component_mm: c.size().solid_mean_diameter_mm,
                lung_rads: c.lung_rads.as_str().to_string(),
            }
        })
        .collect();
    let exam = study_category(&reported).unwrap_or(LungRads::C1);
    let sizes: Vec<_> = reported.iter().map(|f| f.current.size()).collect();
    let ll = match lang {
        Lang::En => lungrads::Lang::En,
        Lang::ZhCn => lungrads::Lang::ZhCn,
    };
    draft(
        &DraftInput {
            findings: items,
            exam_category: exam.as_str().to_string(),
            management: exam.management_in(ll).to_string(),
            fleischner: lungrads::fleischner_in(&sizes, false, ll),
        },
        lang,
    )
}

fn view(
    study: &str,
    r: &StudyReview,
    rec: &ReportRecord,
    lang: Option<Lang>,
    ledger: &[lumen_store::LedgerRow],
) -> ReportView {
    let signed = rec.versions.iter().find(|v| v.kind == "report");
    let stored_lang = signed
        .map(|v| v.lang.as_str())
        .or(rec.lang.as_deref().filter(|_| rec.sections.is_some()))
        .and_then(Lang::parse);
    let lang = match (signed, rec.sections.is_some()) {
        // Signed or edited text stays in the language it was written in.
        (Some(_), _) | (None, true) => stored_lang.unwrap_or_default(),
        _ => lang.unwrap_or_default(),
    };
    let generated = ReportSections::from(&generated(r, lang));
    let sections = match (signed, &rec.sections) {
        (Some(v), _) => ReportSections::from_stored(&v.content),
        (None, Some(s)) => ReportSections::from_stored(s),
        (None, None) => generated.clone(),
    };
    ReportView {
        study_uid: study.to_string(),
        status: rec.status,
        ai_draft: rec.status != ReportStatus::Signed && rec.sections.is_none(),
        lang: lang.code().to_string(),
        sections,
        generated,
        signed_by: signed.map(|v| v.signer.clone()),
        signed_at: signed.map(|v| iso(v.signed_at)),
        addenda: rec
            .versions
            .iter()
            .filter(|v| v.kind == "addendum")
            .map(|v| AddendumView {
                text: v.content["text"].as_str().unwrap_or("").to_string(),
                signed_by: v.signer.clone(),
                signed_at: iso(v.signed_at),
            })
            .collect(),
        pdf_url: signed.map(|_| format!("/api/studies/{study}/report.pdf")),
        citation: r.citation(),
        ledger: ledger
            .iter()
            .filter(|e| e.kind.starts_with("report."))
            .map(|e| LedgerRef {
                index: e.seq,
                kind: e.kind.clone(),
                proof_url: format!("/api/ledger/entries/{}/proof", e.seq),
            })
            .collect(),
    }
}

/// The signed report a signature belongs to, and the addenda it carries.
struct SignedText {
    lang: Lang,
    sections: Sections,
    signer: String,
    signed_at: i64,
    /// Text, signer, time.
    addenda: Vec<(String, String, i64)>,
}

impl SignedText {
    /// The report as signed (this signature, or the one an addendum follows) with its
    /// addenda, this one's included.
    fn of(rec: &ReportRecord, p: &PendingSignature) -> SignedText {
        let report = rec.versions.iter().find(|v| v.kind == "report");
        let (lang, content, signer, signed_at) = match report {
            Some(v) => (&v.lang, &v.content, &v.signer, v.signed_at),
            None => (&p.lang, &p.content, &p.signer, p.signed_at),
        };
        let text = |c: &Value| c["text"].as_str().unwrap_or("").to_string();
        let mut addenda: Vec<(String, String, i64)> = rec
            .versions
            .iter()
            .filter(|v| v.kind == "addendum")
            .map(|v| (text(&v.content), v.signer.clone(), v.signed_at))
            .collect();
        if p.kind == "addendum" {
            addenda.push((text(&p.content), p.signer.clone(), p.signed_at));
        }
        SignedText {
            lang: Lang::parse(lang).unwrap_or_default(),
            sections: ReportSections::from_stored(content).to_draft(),
            signer: signer.clone(),
            signed_at,
            addenda,
        }
    }
}

fn study_context(r: &StudyReview, study: &str) -> StudyContext {
    let a = |t| first_string(&r.attrs, t).unwrap_or_default();
    StudyContext {
        patient_name: a(tags::PATIENT_NAME),
        patient_id: a(tags::PATIENT_ID),
        patient_birth_date: a(tags::PATIENT_BIRTH_DATE),
        patient_sex: a(tags::PATIENT_SEX),
        study_instance_uid: study.to_string(),
        study_date: a(tags::STUDY_DATE),
        study_time: a(tags::STUDY_TIME),
        referring_physician_name: a(tags::REFERRING_PHYSICIAN_NAME),
        study_id: a(tags::STUDY_ID),
        accession_number: a(tags::ACCESSION_NUMBER),
        frame_of_reference_uid: String::new(),
    }
}

/// The PDF document of a signature.
fn report_document(
    r: &StudyReview,
    study: &str,
    ctx: &StudyContext,
    text: &SignedText,
    institution: &str,
) -> ReportDocument {
    ReportDocument {
        lang: text.lang,
        institution: institution.to_string(),
        patient_name: ctx.patient_name.clone(),
        patient_id: ctx.patient_id.clone(),
        patient_sex: ctx.patient_sex.clone(),
        patient_birth_date: ctx.patient_birth_date.clone(),
        study_date: ctx.study_date.clone(),
        accession_number: ctx.accession_number.clone(),
        study_description: first_string(&r.attrs, tags::STUDY_DESCRIPTION).unwrap_or_default(),
        study_uid: study.to_string(),
        sections: text.sections.clone(),
        state: ReportState::Signed {
            by: text.signer.clone(),
            at: Civil::from_ms(text.signed_at).shown(),
        },
        addenda: text
            .addenda
            .iter()
            .map(|(text, by, at)| AddendumText {
                text: text.clone(),
                signed_by: by.clone(),
                signed_at: Civil::from_ms(*at).shown(),
            })
            .collect(),
        citation: r.citation(),
    }
}

/// The key every UID of a signature's objects derives from: a retry writes the same bytes.
fn signature_key(study: &str, p: &PendingSignature) -> Result<Vec<u8>, AppError> {
    let mut key = Sha256::new();
    key.update(study.as_bytes());
    key.update(p.version.to_be_bytes());
    key.update(serde_json::to_vec(p).map_err(AppError::internal)?);
    Ok(key.finalize().to_vec())
}

impl App {
    /// A study's report, in `lang` while it is the AI's draft.
    pub(crate) async fn report_inner(
        &self,
        study: &str,
        lang: Option<Lang>,
    ) -> Result<ReportView, AppError> {
        let r = self.study_review(study).await?;
        let rec = self.store.report(study).await?;
        let ledger = self.store.study_ledger_entries(study).await?;
        Ok(view(study, &r, &rec, lang, &ledger))
    }

    /// Saves the doctor's text (status draft).
    pub(crate) async fn edit_report_inner(
        &self,
        study: &str,
        lang: Lang,
        sections: &ReportSections,
        actor: &Actor,
    ) -> Result<ReportView, AppError> {
        let r = self.study_review(study).await?;
        if [
            &sections.findings,
            &sections.impression,
            &sections.recommendation,
        ]
        .iter()
        .any(|t| t.len() > MAX_SECTION)
        {
            return Err(AppError::Invalid("a section is longer than 64 KiB".into()));
        }
        self.store
            .save_report_draft(study, lang.code(), &sections.stored(), &actor.display_name)
            .await?;
        let rec = self.store.report(study).await?;
        let ledger = self.store.study_ledger_entries(study).await?;
        Ok(view(study, &r, &rec, Some(lang), &ledger))
    }

    /// Signs the report as it reads now: the edited text, else the draft written from the
    /// findings (in `lang`).
    pub(crate) async fn sign_report_inner(
        &self,
        study: &str,
        lang: Option<Lang>,
        actor: &Actor,
    ) -> Result<ReportView, AppError> {
        let r = self.study_review(study).await?;
        let rec = self.store.report(study).await?;
        if rec.status == ReportStatus::Signed {
            return Err(AppError::Conflict(
                "report is signed; add an addendum".into(),
            ));
        }
        let (lang, content) = match &rec.sections {
            Some(sec) => (
                rec.lang
                    .as_deref()
                    .and_then(Lang::parse)
                    .unwrap_or_default(),
                sec.clone(),
            ),
            None => {
                let lang = lang.unwrap_or_default();
                (lang, ReportSections::from(&generated(&r, lang)).stored())
            }
        };
        let pending = self
            .store
            .begin_signature(
                study,
                "report",
                lang.code(),
                &content,
                &actor.user_id,
                &actor.display_name,
            )
            .await?;
        self.complete_signature(study, &r, &rec, &pending, actor)
            .await?;
        let rec = self.store.report(study).await?;
        let ledger = self.store.study_ledger_entries(study).await?;
        Ok(view(study, &r, &rec, Some(lang), &ledger))
    }

    /// The document of the signed report as it stands (the report and its addenda), with
    /// the report font: for the patient's copy.
    pub(crate) async fn signed_document(
        &self,
        study: &str,
    ) -> Result<(ReportDocument, lumen_report::pdf::ReportFont), AppError> {
        let font = self.settings.report_font.clone().ok_or_else(|| {
            AppError::Unavailable(
                "no report font that shows Chinese is installed; install fonts-noto-cjk or set \
                 [web] report_font"
                    .into(),
            )
        })?;
        let r = self.study_review(study).await?;
        let rec = self.store.report(study).await?;
        let v = rec
            .versions
            .iter()
            .find(|v| v.kind == "report")
            .ok_or_else(|| {
                AppError::Conflict("the report is not signed; a patient copy needs one".into())
            })?;
        // The report's own signature: its text with every addendum signed since.
        let p = PendingSignature {
            version: v.version,
            kind: v.kind.clone(),
            lang: v.lang.clone(),
            content: v.content.clone(),
            signer_id: v.signer_id.clone(),
            signer: v.signer.clone(),
            signed_at: v.signed_at,
        };
        let text = SignedText::of(&rec, &p);
        let ctx = study_context(&r, study);
        let doc = report_document(&r, study, &ctx, &text, &self.settings.institution);
        Ok((doc, font))
    }

    /// Signs an addendum to a signed report.
    pub(crate) async fn add_addendum_inner(
        &self,
        study: &str,
        text: &str,
        actor: &Actor,
    ) -> Result<ReportView, AppError> {
        let text = text.trim();
        if text.is_empty() || text.len() > MAX_SECTION {
            return Err(AppError::Invalid(
                "an addendum needs text (at most 64 KiB)".into(),
            ));
        }
        let r = self.study_review(study).await?;
        let rec = self.store.report(study).await?;
        let Some(signed) = rec.versions.iter().find(|v| v.kind == "report") else {
            return Err(AppError::Conflict("report is not signed".into()));
        };
        let pending = self
            .store
            .begin_signature(
                study,
                "addendum",
                &signed.lang,
                &json!({ "text": text }),
                &actor.user_id,
                &actor.display_name,
            )
            .await?;
        self.complete_signature(study, &r, &rec, &pending, actor)
            .await?;
        let rec = self.store.report(study).await?;
        let ledger = self.store.study_ledger_entries(study).await?;
        Ok(view(study, &r, &rec, None, &ledger))
    }

    /// Steps 2 and 3 of signing: the objects written and stored, the signature recorded.
    async fn complete_signature(
        &self,
        study: &str,
        r: &StudyReview,
        rec: &ReportRecord,
        p: &PendingSignature,
        actor: &Actor,
    ) -> Result<(), AppError> {
        let (pdf, sr) = self.signed_objects(study, r, rec, p, actor).await?;
        for obj in [&pdf, &sr] {
            self.store
                .ingest(
                    bytes::Bytes::from(obj.bytes.clone()),
                    lumen_store::Origin::Report,
                )
                .await
                .map_err(|e| {
                    AppError::internal(format!("storing report {}: {e}", obj.sop_instance_uid))
                })?;
        }
        // The ledger entry commits to the signature (who, when, which objects) and is
        // recorded in the transaction that records the signature.
        let kind = if p.kind == "report" {
            crate::ledger::REPORT_SIGNED
        } else {
            crate::ledger::REPORT_ADDENDUM
        };
        let entry = crate::ledger::record(
            kind,
            study,
            actor,
            p.signed_at,
            &[pdf.sop_instance_uid.clone(), sr.sop_instance_uid.clone()],
        )?;
        self.store
            .commit_signature(
                study,
                p,
                &pdf.sop_instance_uid,
                &sr.sop_instance_uid,
                Some(&entry),
            )
            .await?;
        tracing::info!(study = %study, version = p.version, kind = %p.kind, "report signed and stored");
        // A study shared with this node: the signed objects go back to its origin.
        self.report_back(
            study,
            &[pdf.sop_instance_uid.clone(), sr.sop_instance_uid.clone()],
        )
        .await?;
        Ok(())
    }

    /// The Encapsulated PDF and the Basic Text SR of a signature, every UID and date a
    /// function of it.
    async fn signed_objects(
        &self,
        study: &str,
        r: &StudyReview,
        rec: &ReportRecord,
        p: &PendingSignature,
        actor: &Actor,
    ) -> Result<(WrittenObject, WrittenObject), AppError> {
        let font = self.settings.report_font.clone().ok_or_else(|| {
            AppError::Unavailable(
                "no report font that shows Chinese is installed; install fonts-noto-cjk or set \
                 [web] report_font"
                    .into(),
            )
        })?;
        let text = SignedText::of(rec, p);
        let ctx = study_context(r, study);
        let doc = report_document(r, study, &ctx, &text, &self.settings.institution);
        let key = signature_key(study, p)?;
        let signed = Civil::from_ms(p.signed_at);
        let (da, tm) = (signed.da(), signed.tm());
        let v = i32::try_from(p.version).unwrap_or(i32::MAX);
        let what = if p.kind == "report" {
            "Report"
        } else {
            "Report addendum"
        };
        let series = |kind: &str, number: i32| SeriesInfo {
            series_number: number,
            series_description: format!("{what} v{} ({kind})", p.version),
            instance_number: 1,
            series_instance_uid: Some(derived_uid(&key, &format!("{kind} series"))),
            sop_instance_uid: Some(derived_uid(&key, &format!("{kind} instance"))),
            date_time: Some((da.clone(), tm.clone())),
        };
        let pdf_series = series("PDF", 9100_i32.saturating_add(v));
        let sr_series = series("SR", 9200_i32.saturating_add(v));
        let mut sr_sections = vec![
            (section::findings(), text.sections.findings.clone()),
            (section::impression(), text.sections.impression.clone()),
            (
                section::recommendation(),
                text.sections.recommendation.clone(),
            ),
        ];
        for (t, by, at) in &text.addenda {
            sr_sections.push((
                section::addendum(),
                format!("{t}\n({by}, {})", Civil::from_ms(*at).shown()),
            ));
        }
        let report = TextReport {
            sections: sr_sections,
            verifier: Some(Verifier {
                name: p.signer.clone(),
                organization: actor.institution.clone(),
                date_time: format!("{da}{tm}"),
            }),
            predecessor: self.predecessor(study, rec, p).await?,
            language: Some(text.lang.code().to_string()),
        };
        let suffix = if p.kind == "addendum" {
            format!("(addendum, v{})", p.version)
        } else {
            String::new()
        };
        let title = format!(
            "{} {suffix}",
            text.lang.pick("Chest CT report", "胸部 CT 报告")
        );
        tokio::task::spawn_blocking(move || {
            let pdf = lumen_report::pdf::pdf(&doc, &font)?;
            let equipment = Equipment::default();
            let pdf_obj = encapsulated_pdf(&ctx, &pdf, title.trim(), &pdf_series, &equipment)?;
            let sr_obj = text_sr(&ctx, &report, &sr_series, &equipment)?;
            Ok::<_, lumen_report::ReportError>((pdf_obj, sr_obj))
        })
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)
    }

    /// The SR an addendum's SR follows (the last signed version's), with its series UID
    /// from the archive.
    async fn predecessor(
        &self,
        study: &str,
        rec: &ReportRecord,
        p: &PendingSignature,
    ) -> Result<Option<Predecessor>, AppError> {
        let Some(last) = rec.versions.last().filter(|_| p.kind == "addendum") else {
            return Ok(None);
        };
        if last.sr_sop_uid.is_empty() {
            return Ok(None);
        }
        let found = self
            .store
            .instances(&Scope {
                study_uid: Some(study.to_string()),
                sop_instance_uid: Some(last.sr_sop_uid.clone()),
                ..Default::default()
            })
            .await?;
        Ok(found.first().map(|i| Predecessor {
            series_instance_uid: i.series_uid.clone(),
            sop_class_uid: BASIC_TEXT_SR_STORAGE.into(),
            sop_instance_uid: last.sr_sop_uid.clone(),
        }))
    }

    /// The PDF of the latest signed version, and that version's number.
    pub(crate) async fn report_pdf_inner(&self, study: &str) -> Result<(Vec<u8>, i64), AppError> {
        check_study(study)?;
        let rec = self.store.report(study).await?;
        let last = rec
            .versions
            .last()
            .ok_or_else(|| AppError::NotFound("the report is not signed".into()))?;
        let inst = self
            .store
            .instances(&Scope {
                study_uid: Some(study.to_string()),
                sop_instance_uid: Some(last.pdf_sop_uid.clone()),
                ..Default::default()
            })
            .await?;
        let inst = inst
            .first()
            .ok_or_else(|| AppError::NotFound("the report's PDF is no longer stored".into()))?;
        let bytes = inst.read().await?;
        let pdf = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, AppError> {
            let obj = lumen_dicom::part10::parse(&bytes).map_err(AppError::internal)?;
            let doc = obj
                .get(tags::ENCAPSULATED_DOCUMENT)
                .and_then(|e| e.to_bytes().ok())
                .ok_or_else(|| AppError::internal("stored report has no Encapsulated Document"))?;
            let len = obj
                .get(tags::ENCAPSULATED_DOCUMENT_LENGTH)
                .and_then(|e| e.to_int::<usize>().ok())
                .unwrap_or(doc.len())
                .min(doc.len());
            Ok(doc[..len].to_vec())
        })
        .await
        .map_err(AppError::internal)??;
        Ok((pdf, last.version))
    }
}
