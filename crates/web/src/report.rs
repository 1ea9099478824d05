//! The report of a study: the draft written from the reviewed findings (English or
//! simplified Chinese), the doctor's edits, signing, addenda and the PDF.
//!
//! Signing, in an order that a crash cannot spoil: (1) `Store::begin_signature` fixes the
//! version, signer and time (a retry of the same text gets the same ones); (2) the PDF is
//! rendered and written as an Encapsulated PDF and a Basic Text SR whose UIDs and dates are
//! functions of that signature, and both are stored with `Store::ingest` (identical bytes on a
//! retry: "already present"); (3) `Store::commit_signature` records the signed version. A crash
//! before (3) leaves an unsigned draft; after it, a signed report with its objects.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use dicom_dictionary_std::tags;
use lumen_ai::lungrads;
use lumen_dicom::json::first_string;
use lumen_report::document::{
    BASIC_TEXT_SR_STORAGE, Predecessor, TextReport, Verifier, encapsulated_pdf, section, text_sr,
};
use lumen_report::draft::{DraftFinding, DraftInput, Lang, Sections, draft};
use lumen_report::pdf::{AddendumText, ReportDocument, ReportState};
use lumen_report::{Equipment, SeriesInfo, StudyContext};
use lumen_store::{PendingSignature, ReportRecord, ReportStatus, Scope};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::actor::Actor;
use crate::review::{StudyReview, category, iso, load, nodule_size, reported, study_category};
use crate::{ApiError, AppState};

/// `?lang=` of the report.
#[derive(Debug, Default, Deserialize)]
pub struct LangParam {
    lang: Option<String>,
}

fn parse_lang(s: Option<&str>) -> Result<Option<Lang>, ApiError> {
    match s {
        None | Some("") => Ok(None),
        Some(l) => Lang::parse(l)
            .map(Some)
            .ok_or_else(|| ApiError::BadRequest("lang must be en or zh-CN".into())),
    }
}

/// The draft sections written from the reviewed findings now, in `lang`.
fn generated(r: &StudyReview, lang: Lang) -> Sections {
    let findings = r.findings();
    let rep = reported(&findings);
    let items: Vec<DraftFinding> = rep
        .iter()
        .map(|f| {
            let c = &f["current"];
            DraftFinding {
                location: c["location"].as_str().unwrap_or("").to_string(),
                kind: c["type"].as_str().unwrap_or("").to_string(),
                long_axis_mm: c["long_axis_mm"].as_f64().unwrap_or(0.0),
                short_axis_mm: c["short_axis_mm"].as_f64().unwrap_or(0.0),
                mean_diameter_mm: c["mean_diameter_mm"].as_f64().unwrap_or(0.0),
                volume_mm3: c["volume_mm3"].as_f64(),
                solid_component_mm: c["solid_component_mm"].as_f64(),
                lung_rads: category(c)
                    .map(|c| c.as_str().to_string())
                    .unwrap_or_default(),
            }
        })
        .collect();
    let exam = study_category(&findings);
    let sizes: Vec<_> = rep
        .iter()
        .filter_map(|f| nodule_size(&f["current"]))
        .collect();
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

fn sections_json(s: &Sections) -> Value {
    json!({ "findings": s.findings, "impression": s.impression, "recommendation": s.recommendation })
}

fn sections_from(v: &Value) -> Sections {
    let f = |k: &str| v[k].as_str().unwrap_or("").to_string();
    Sections {
        findings: f("findings"),
        impression: f("impression"),
        recommendation: f("recommendation"),
    }
}

/// The report as the API shows it.
fn report_json(study: &str, r: &StudyReview, rec: &ReportRecord, lang: Option<Lang>) -> Value {
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
    let generated = generated(r, lang);
    let sections = match (signed, &rec.sections) {
        (Some(v), _) => sections_from(&v.content),
        (None, Some(s)) => sections_from(s),
        (None, None) => generated.clone(),
    };
    let addenda: Vec<Value> = rec
        .versions
        .iter()
        .filter(|v| v.kind == "addendum")
        .map(|v| {
            json!({
                "text": v.content["text"],
                "signed_by": v.signer,
                "signed_at": iso(v.signed_at),
            })
        })
        .collect();
    json!({
        "study_uid": study,
        "status": rec.status.as_str(),
        "ai_draft": rec.status != ReportStatus::Signed && rec.sections.is_none(),
        "lang": lang.code(),
        "sections": sections_json(&sections),
        "generated": sections_json(&generated),
        "signed_by": signed.map(|v| v.signer.clone()),
        "signed_at": signed.map(|v| iso(v.signed_at)),
        "addenda": addenda,
        "pdf_url": signed.map(|_| format!("/api/studies/{study}/report.pdf")),
        "citation": r.citation(),
    })
}

/// `GET /api/studies/{study}/report?lang=en|zh-CN`.
pub async fn get_report(
    State(s): State<AppState>,
    Path(study): Path<String>,
    Query(q): Query<LangParam>,
) -> Result<Json<Value>, ApiError> {
    let lang = parse_lang(q.lang.as_deref())?;
    let r = load(&s, &study).await?;
    let rec = s.store.report(&study).await?;
    Ok(Json(report_json(&study, &r, &rec, lang)))
}

/// Body of `PUT /api/studies/{study}/report`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportEdit {
    lang: String,
    sections: SectionsBody,
}

/// The three sections as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectionsBody {
    findings: String,
    impression: String,
    recommendation: String,
}

const MAX_SECTION: usize = 64 * 1024;

/// `PUT /api/studies/{study}/report`: saves the doctor's text (status draft).
pub async fn put_report(
    State(s): State<AppState>,
    Path(study): Path<String>,
    actor: Actor,
    Json(body): Json<ReportEdit>,
) -> Result<Json<Value>, ApiError> {
    let lang = parse_lang(Some(&body.lang))?.unwrap_or_default();
    let r = load(&s, &study).await?;
    let b = &body.sections;
    if [&b.findings, &b.impression, &b.recommendation]
        .iter()
        .any(|t| t.len() > MAX_SECTION)
    {
        return Err(ApiError::BadRequest(
            "a section is longer than 64 KiB".into(),
        ));
    }
    let sections = json!({
        "findings": b.findings, "impression": b.impression, "recommendation": b.recommendation,
    });
    s.store
        .save_report_draft(&study, lang.code(), &sections, &actor.display_name)
        .await?;
    let rec = s.store.report(&study).await?;
    Ok(Json(report_json(&study, &r, &rec, Some(lang))))
}

/// Body of `POST .../report/sign`.
#[derive(Debug, Default, Deserialize)]
pub struct SignBody {
    lang: Option<String>,
}

/// `POST /api/studies/{study}/report/sign`: signs the report as it reads now.
pub async fn sign(
    State(s): State<AppState>,
    Path(study): Path<String>,
    actor: Actor,
    body: Option<Json<SignBody>>,
) -> Result<Json<Value>, ApiError> {
    let want = parse_lang(body.as_ref().and_then(|b| b.lang.as_deref()))?;
    let r = load(&s, &study).await?;
    let rec = s.store.report(&study).await?;
    if rec.status == ReportStatus::Signed {
        return Err(ApiError::Conflict(
            "report is signed; add an addendum".into(),
        ));
    }
    // What is signed: the edited text, else the draft written from the findings now.
    let (lang, content) = match &rec.sections {
        Some(sec) => (
            rec.lang
                .as_deref()
                .and_then(Lang::parse)
                .unwrap_or_default(),
            sec.clone(),
        ),
        None => {
            let lang = want.unwrap_or_default();
            (lang, sections_json(&generated(&r, lang)))
        }
    };
    let pending = s
        .store
        .begin_signature(
            &study,
            "report",
            lang.code(),
            &content,
            &actor.user_id,
            &actor.display_name,
        )
        .await?;
    store_signed(&s, &study, &r, &rec, &pending, &actor).await?;
    let rec = s.store.report(&study).await?;
    Ok(Json(report_json(&study, &r, &rec, Some(lang))))
}

/// Body of `POST .../report/addenda`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddendumBody {
    text: String,
}

/// `POST /api/studies/{study}/report/addenda`: a signed addendum to a signed report.
pub async fn addendum(
    State(s): State<AppState>,
    Path(study): Path<String>,
    actor: Actor,
    Json(body): Json<AddendumBody>,
) -> Result<Json<Value>, ApiError> {
    let text = body.text.trim();
    if text.is_empty() || text.len() > MAX_SECTION {
        return Err(ApiError::BadRequest(
            "an addendum needs text (at most 64 KiB)".into(),
        ));
    }
    let r = load(&s, &study).await?;
    let rec = s.store.report(&study).await?;
    let Some(signed) = rec.versions.iter().find(|v| v.kind == "report") else {
        return Err(ApiError::Conflict("report is not signed".into()));
    };
    let pending = s
        .store
        .begin_signature(
            &study,
            "addendum",
            &signed.lang,
            &json!({ "text": text }),
            &actor.user_id,
            &actor.display_name,
        )
        .await?;
    store_signed(&s, &study, &r, &rec, &pending, &actor).await?;
    let rec = s.store.report(&study).await?;
    Ok(Json(report_json(&study, &r, &rec, None)))
}

/// A UID that is a function of `key` and `what`: `2.25.` and 128 bits of SHA-256.
fn derived_uid(key: &[u8], what: &str) -> String {
    let mut h = Sha256::new();
    h.update(key);
    h.update([0u8]);
    h.update(what.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    format!("2.25.{}", u128::from_be_bytes(b))
}

/// DICOM DA and TM, and a display string, of a time in ms (UTC).
fn da_tm(ms: i64) -> (String, String, String) {
    let iso = iso(ms); // YYYY-MM-DDTHH:MM:SSZ
    let da = format!("{}{}{}", &iso[0..4], &iso[5..7], &iso[8..10]);
    let tm = format!("{}{}{}", &iso[11..13], &iso[14..16], &iso[17..19]);
    let shown = format!("{} {} UTC", &iso[0..10], &iso[11..16]);
    (da, tm, shown)
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

/// Renders and stores the PDF and SR of a pending signature, then records it.
async fn store_signed(
    s: &AppState,
    study: &str,
    r: &StudyReview,
    rec: &ReportRecord,
    p: &PendingSignature,
    actor: &Actor,
) -> Result<(), ApiError> {
    let font = s.config.report_font.clone().ok_or_else(|| {
        ApiError::Unavailable(
            "no report font that shows Chinese is installed; install fonts-noto-cjk or set \
             [web] report_font"
                .into(),
        )
    })?;
    // The signed report (this signature, or the one the addendum follows) and its addenda.
    let (report_lang, report_sections, report_signer, report_at) =
        match rec.versions.iter().find(|v| v.kind == "report") {
            Some(v) => (
                v.lang.clone(),
                v.content.clone(),
                v.signer.clone(),
                v.signed_at,
            ),
            None => (
                p.lang.clone(),
                p.content.clone(),
                p.signer.clone(),
                p.signed_at,
            ),
        };
    let lang = Lang::parse(&report_lang).unwrap_or_default();
    let mut addenda: Vec<(String, String, i64)> = rec
        .versions
        .iter()
        .filter(|v| v.kind == "addendum")
        .map(|v| {
            (
                v.content["text"].as_str().unwrap_or("").to_string(),
                v.signer.clone(),
                v.signed_at,
            )
        })
        .collect();
    if p.kind == "addendum" {
        addenda.push((
            p.content["text"].as_str().unwrap_or("").to_string(),
            p.signer.clone(),
            p.signed_at,
        ));
    }
    let sections = sections_from(&report_sections);
    let ctx = study_context(r, study);
    let (da, tm, _) = da_tm(p.signed_at);
    let doc = ReportDocument {
        lang,
        institution: s.config.institution.clone(),
        patient_name: ctx.patient_name.clone(),
        patient_id: ctx.patient_id.clone(),
        patient_sex: ctx.patient_sex.clone(),
        patient_birth_date: ctx.patient_birth_date.clone(),
        study_date: ctx.study_date.clone(),
        accession_number: ctx.accession_number.clone(),
        study_description: first_string(&r.attrs, tags::STUDY_DESCRIPTION).unwrap_or_default(),
        study_uid: study.to_string(),
        sections: sections.clone(),
        state: ReportState::Signed {
            by: report_signer.clone(),
            at: da_tm(report_at).2,
        },
        addenda: addenda
            .iter()
            .map(|(text, by, at)| AddendumText {
                text: text.clone(),
                signed_by: by.clone(),
                signed_at: da_tm(*at).2,
            })
            .collect(),
        citation: r.citation(),
    };
    // Everything written is a function of the signature: a retry writes the same bytes.
    let mut key = Sha256::new();
    key.update(study.as_bytes());
    key.update(p.version.to_be_bytes());
    key.update(serde_json::to_vec(p).map_err(ApiError::internal)?);
    let key = key.finalize().to_vec();
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
        (section::findings(), sections.findings.clone()),
        (section::impression(), sections.impression.clone()),
        (section::recommendation(), sections.recommendation.clone()),
    ];
    for (text, by, at) in &addenda {
        sr_sections.push((
            section::addendum(),
            format!("{text}\n({by}, {})", da_tm(*at).2),
        ));
    }
    let predecessor = rec
        .versions
        .last()
        .filter(|_| p.kind == "addendum")
        .and_then(|last| {
            Some(Predecessor {
                series_instance_uid: String::new(),
                sop_class_uid: BASIC_TEXT_SR_STORAGE.into(),
                sop_instance_uid: last.sr_sop_uid.clone(),
            })
            .filter(|x| !x.sop_instance_uid.is_empty())
        });
    // The predecessor's series UID comes from the archive.
    let predecessor = match predecessor {
        Some(mut pr) => {
            let found = s
                .store
                .instances(&Scope {
                    study_uid: Some(study.to_string()),
                    sop_instance_uid: Some(pr.sop_instance_uid.clone()),
                    ..Default::default()
                })
                .await?;
            found.first().map(|i| {
                pr.series_instance_uid = i.series_uid.clone();
                pr
            })
        }
        None => None,
    };
    let text = TextReport {
        sections: sr_sections,
        verifier: Some(Verifier {
            name: p.signer.clone(),
            organization: actor.institution.clone(),
            date_time: format!("{da}{tm}"),
        }),
        predecessor,
        language: Some(lang.code().to_string()),
    };
    let title = format!(
        "{} {}",
        lang.pick("Chest CT report", "胸部 CT 报告"),
        what_suffix(p)
    );
    let (pdf_obj, sr_obj) = tokio::task::spawn_blocking(move || {
        let pdf = lumen_report::pdf::pdf(&doc, &font)?;
        let equipment = Equipment::default();
        let pdf_obj = encapsulated_pdf(&ctx, &pdf, title.trim(), &pdf_series, &equipment)?;
        let sr_obj = text_sr(&ctx, &text, &sr_series, &equipment)?;
        Ok::<_, lumen_report::ReportError>((pdf_obj, sr_obj))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    for obj in [&pdf_obj, &sr_obj] {
        s.store
            .ingest(bytes::Bytes::from(obj.bytes.clone()))
            .await
            .map_err(|e| {
                ApiError::internal(format!("storing report {}: {e}", obj.sop_instance_uid))
            })?;
    }
    s.store
        .commit_signature(
            study,
            p,
            &pdf_obj.sop_instance_uid,
            &sr_obj.sop_instance_uid,
        )
        .await?;
    tracing::info!(study = %study, version = p.version, kind = %p.kind, "report signed and stored");
    Ok(())
}

fn what_suffix(p: &PendingSignature) -> String {
    if p.kind == "addendum" {
        format!("(addendum, v{})", p.version)
    } else {
        String::new()
    }
}

/// `GET /api/studies/{study}/report.pdf`: the PDF of the latest signed version.
pub async fn report_pdf(
    State(s): State<AppState>,
    Path(study): Path<String>,
) -> Result<Response, ApiError> {
    crate::review::check_study(&study)?;
    let rec = s.store.report(&study).await?;
    let last = rec
        .versions
        .last()
        .ok_or_else(|| ApiError::NotFound("the report is not signed".into()))?;
    let inst = s
        .store
        .instances(&Scope {
            study_uid: Some(study.clone()),
            sop_instance_uid: Some(last.pdf_sop_uid.clone()),
            ..Default::default()
        })
        .await?;
    let inst = inst
        .first()
        .ok_or_else(|| ApiError::NotFound("the report's PDF is no longer stored".into()))?;
    let bytes = inst.read().await?;
    let pdf = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, ApiError> {
        let obj = lumen_dicom::part10::parse(&bytes).map_err(ApiError::internal)?;
        let doc = obj
            .get(tags::ENCAPSULATED_DOCUMENT)
            .and_then(|e| e.to_bytes().ok())
            .ok_or_else(|| ApiError::internal("stored report has no Encapsulated Document"))?;
        let len = obj
            .get(tags::ENCAPSULATED_DOCUMENT_LENGTH)
            .and_then(|e| e.to_int::<usize>().ok())
            .unwrap_or(doc.len())
            .min(doc.len());
        Ok(doc[..len].to_vec())
    })
    .await
    .map_err(ApiError::internal)??;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"report-v{}.pdf\"", last.version),
            ),
        ],
        pdf,
    )
        .into_response())
}
