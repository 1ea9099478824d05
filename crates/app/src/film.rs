//! Patient cloud film (云胶片): a short-lived link that opens a read-only, non-diagnostic
//! viewer of one study and its signed report, without an account.
//!
//! - Radiologists and technologists of the study's organisation create, list and revoke a
//!   study's links ([`Permission::PatientLink`]). Creating and revoking are consent changes:
//!   each one is audited (awaited) and appends a ledger entry (`patient-link.created`,
//!   `patient-link.revoked`) in the transaction that writes the link's row.
//! - A link's token is 32 random bytes (URL-safe base64), shown once, at creation; the index
//!   keeps its SHA-256 only. A link lives 1 to 720 hours (72 by default) and can be revoked
//!   at any time.
//! - Every opening is audited with the link as the actor (`patient-link:<id>`, role
//!   `patient-link`): the page as `View` (each one recorded), its data and images as `View`
//!   and `Retrieve` (folded like any viewer's reads), a refused opening (unknown, expired or
//!   revoked token) as `AccessDenied`. Unknown, expired and revoked tokens are answered
//!   alike.
//! - A link opens its one study only: every read is narrowed to the link's study and
//!   organisation before the archive is asked, so another study's UIDs answer "not found".
//!   What the viewer shows of the study is non-identifying (date, description, modality,
//!   series), so that a leaked link leaks as little as possible; the signed report (PDF) is
//!   the patient's own document and carries their name.

use dicom_dictionary_std::tags;
use lumen_dicom::json::first_string;
use lumen_report::time::{iso, now_ms};
use lumen_store::{NewPatientLink, PatientLinkRow, ReportStatus, Scope};
use serde::Serialize;

use crate::auth::{plausible_token, random_token, token_hash};
use crate::ledger::{PATIENT_LINK_CREATED, PATIENT_LINK_REVOKED, record};
use crate::policy::{Permission, Role, StudyAccess};
use crate::{Actor, App, AppError, AuditAction, AuditChannel, AuditOutcome};

/// Shortest life of a link, in hours.
pub const MIN_HOURS: i64 = 1;
/// Longest life of a link, in hours (30 days).
pub const MAX_HOURS: i64 = 720;
/// A link's life when the request names none, in hours.
pub const DEFAULT_HOURS: i64 = 72;

/// SOP classes whose frames the film does not show (segmentations are overlays, not
/// images a patient can read).
const NOT_SHOWN: &[&str] = &["1.2.840.10008.5.1.4.1.1.66.4"];

/// Checks a requested life in hours (`None`: the default).
///
/// # Errors
///
/// Outside 1..=720 hours.
pub fn link_hours(hours: Option<i64>) -> Result<i64, AppError> {
    let h = hours.unwrap_or(DEFAULT_HOURS);
    if !(MIN_HOURS..=MAX_HOURS).contains(&h) {
        return Err(AppError::Invalid(format!(
            "expires_in_hours must be a whole number from {MIN_HOURS} to {MAX_HOURS}"
        )));
    }
    Ok(h)
}

/// The QR code of a link's URL as an SVG image (240 pixels wide), for the web app to show.
///
/// # Errors
///
/// The URL is too long for a QR code.
pub fn qr_svg(url: &str) -> Result<String, AppError> {
    Ok(lumen_report::qr::QrMatrix::encode(url)
        .map_err(AppError::internal)?
        .svg(240))
}

/// Where a link stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    /// It opens the study.
    Active,
    /// Its time is over.
    Expired,
    /// Revoked.
    Revoked,
}

fn link_state(row: &PatientLinkRow, now: i64) -> LinkState {
    if row.revoked_at.is_some() {
        LinkState::Revoked
    } else if now >= row.expires_at {
        LinkState::Expired
    } else {
        LinkState::Active
    }
}

/// A link as the API lists it (never with its token).
#[derive(Debug, Clone, Serialize)]
pub struct PatientLinkView {
    /// Its name (not secret): for revoking and in the audit trail.
    pub id: String,
    /// The study it opens.
    pub study_uid: String,
    /// Who created it.
    pub created_by: String,
    /// When, ISO 8601 UTC.
    pub created_at: String,
    /// When it stops working, ISO 8601 UTC.
    pub expires_at: String,
    /// When it was revoked.
    pub revoked_at: Option<String>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
    /// Active, expired or revoked, now.
    pub state: LinkState,
}

impl PatientLinkView {
    fn of(row: &PatientLinkRow, now: i64) -> PatientLinkView {
        PatientLinkView {
            id: row.id.clone(),
            study_uid: row.study_uid.clone(),
            created_by: row.created_by.clone(),
            created_at: iso(row.created_at),
            expires_at: iso(row.expires_at),
            revoked_at: row.revoked_at.map(iso),
            revoked_by: row.revoked_by.clone(),
            state: link_state(row, now),
        }
    }
}

/// A link just created: the only time its token is known.
#[derive(Debug, Clone)]
pub struct NewLink {
    /// The link.
    pub link: PatientLinkView,
    /// The secret token.
    pub token: String,
    /// The viewer's path on this server: `/film/<token>`.
    pub path: String,
    /// The creation's entry in the ledger.
    pub ledger_index: u64,
    /// When it stops working, ms since the epoch.
    pub expires_at_ms: i64,
}

/// What a read through a link is, for its audit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilmRead<'a> {
    /// The viewer page itself: each opening is recorded.
    Page,
    /// The study summary the page loads.
    Study,
    /// An image of a series.
    Image(&'a str),
    /// The signed report's PDF.
    Report,
}

/// A valid link, as its opening found it.
#[derive(Debug, Clone)]
pub struct FilmAccess {
    link: PatientLinkRow,
}

impl FilmAccess {
    /// The link's name.
    pub fn id(&self) -> &str {
        &self.link.id
    }

    /// When the link stops working, ms since the epoch.
    pub fn expires_at(&self) -> i64 {
        self.link.expires_at
    }
}

/// The study as the film shows it: nothing that names the patient.
#[derive(Debug, Clone, Serialize)]
pub struct FilmStudy {
    /// Study date (`YYYY-MM-DD`), when known.
    pub study_date: String,
    /// Study description.
    pub description: String,
    /// The modalities of its series.
    pub modalities: Vec<String>,
    /// Its series with images.
    pub series: Vec<FilmSeries>,
    /// Whether a signed report is there (`report.pdf`).
    pub report_signed: bool,
    /// When the link stops working, ISO 8601 UTC.
    pub expires_at: String,
    /// The institution.
    pub institution: String,
}

/// A series as the film shows it.
#[derive(Debug, Clone, Serialize)]
pub struct FilmSeries {
    /// Series Instance UID.
    pub series_uid: String,
    /// Modality.
    pub modality: String,
    /// Series description.
    pub description: String,
    /// Series number.
    pub number: Option<i64>,
    /// Its images' SOP Instance UIDs, in slice order.
    pub instances: Vec<String>,
}

fn display_date(d: &str) -> String {
    if d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()) {
        format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..])
    } else {
        String::new()
    }
}

/// Whether `id` has the shape of a link's name.
fn plausible_id(id: &str) -> bool {
    (8..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn link_actor(link: &PatientLinkRow, source: Option<String>) -> Actor {
    Actor {
        user_id: format!("patient-link:{}", link.id),
        display_name: "patient link".into(),
        role: Role::PatientLink,
        org: link.org.clone(),
        institution: String::new(),
        channel: AuditChannel::Http,
        source,
        session: None,
        must_change_password: false,
    }
}

/// The answer to every refused opening: unknown, expired and revoked alike.
fn no_link() -> AppError {
    AppError::NotFound("this link is not valid (it may have expired or been revoked)".into())
}

impl App {
    /// Creates a link to `study` that lives `hours` (see [`link_hours`]); the ledger entry
    /// is written with the link, and the creation is audited before the token is returned.
    pub async fn create_patient_link(
        &self,
        study: &str,
        hours: Option<i64>,
        actor: &Actor,
    ) -> Result<NewLink, AppError> {
        let detail = "create patient link";
        let access = self
            .authorize_study(
                actor,
                Permission::PatientLink,
                AuditAction::PatientLink,
                study,
                detail,
            )
            .await?;
        let r = async {
            let hours = link_hours(hours)?;
            let org = self
                .store
                .study_org(study)
                .await?
                .ok_or_else(crate::policy::no_study)?;
            self.create_link_at(study, &org, hours, actor, now_ms())
                .await
        }
        .await;
        let detail = match &r {
            Ok(l) => format!(
                "patient link {} created, expires {}",
                l.link.id, l.link.expires_at
            ),
            Err(_) => detail.to_string(),
        };
        self.audit_study(
            actor,
            AuditAction::PatientLink,
            crate::guarded::outcome(&r),
            &access,
            None,
            &detail,
        )
        .await;
        r
    }

    async fn create_link_at(
        &self,
        study: &str,
        org: &str,
        hours: i64,
        actor: &Actor,
        now: i64,
    ) -> Result<NewLink, AppError> {
        let token = random_token(32)?;
        let id = random_token(12)?;
        let expires_at = now + hours * 3_600_000;
        let entry = record(
            PATIENT_LINK_CREATED,
            study,
            actor,
            now,
            &[
                format!("patient-link:{id}"),
                format!("expires:{expires_at}"),
            ],
        )?;
        let row = NewPatientLink {
            id: id.clone(),
            token_hash: token_hash(&token),
            study_uid: study.to_string(),
            org: org.to_string(),
            created_by: actor.user_id.clone(),
            created_at: now,
            expires_at,
        };
        let ledger_index = self.store.create_patient_link(&row, &entry).await?;
        let link = PatientLinkRow {
            id,
            study_uid: row.study_uid,
            org: row.org,
            created_by: row.created_by,
            created_at: now,
            expires_at,
            revoked_at: None,
            revoked_by: None,
        };
        Ok(NewLink {
            link: PatientLinkView::of(&link, now),
            path: format!("/film/{token}"),
            token,
            ledger_index,
            expires_at_ms: expires_at,
        })
    }

    /// The patient's copy of the signed report: creates a link (as
    /// [`App::create_patient_link`]) and prints its QR code, URL and expiry on the last page
    /// of the report. `url_of` makes the link's URL from its path (`/film/<token>`).
    /// Refused (409) while the report is not signed, before any link is made.
    pub async fn patient_copy(
        &self,
        study: &str,
        hours: Option<i64>,
        actor: &Actor,
        url_of: impl FnOnce(&str) -> String,
    ) -> Result<(NewLink, Vec<u8>), AppError> {
        self.authorize_study(
            actor,
            Permission::PatientLink,
            AuditAction::PatientLink,
            study,
            "patient copy",
        )
        .await?;
        link_hours(hours)?;
        let (doc, font) = self.signed_document(study).await?;
        let link = self.create_patient_link(study, hours, actor).await?;
        let url = url_of(&link.path);
        let page = lumen_report::pdf::PatientLinkPage {
            qr: lumen_report::qr::QrMatrix::encode(&url).map_err(AppError::internal)?,
            url,
            expires_at: lumen_report::time::Civil::from_ms(link.expires_at_ms).shown(),
        };
        let pdf = tokio::task::spawn_blocking(move || {
            lumen_report::pdf::patient_copy(&doc, &font, &page)
        })
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)?;
        Ok((link, pdf))
    }

    /// A study's links, newest first (without tokens).
    pub async fn patient_links(
        &self,
        study: &str,
        actor: &Actor,
    ) -> Result<Vec<PatientLinkView>, AppError> {
        let f = async {
            let now = now_ms();
            Ok(self
                .store
                .patient_links(study)
                .await?
                .iter()
                .map(|r| PatientLinkView::of(r, now))
                .collect())
        };
        self.audited(
            actor,
            Permission::PatientLink,
            AuditAction::View,
            study,
            None,
            "list patient links",
            f,
        )
        .await
    }

    /// Revokes a link: it stops working at once. Revoking a revoked link changes nothing.
    pub async fn revoke_patient_link(
        &self,
        id: &str,
        actor: &Actor,
    ) -> Result<PatientLinkView, AppError> {
        let detail = "revoke patient link";
        self.require(
            actor,
            Permission::PatientLink,
            AuditAction::PatientLink,
            detail,
        )
        .await?;
        let not_found = || AppError::NotFound("no such patient link".into());
        let link = if plausible_id(id) {
            self.store.patient_link(id).await?
        } else {
            None
        };
        let Some(link) = link else {
            self.audit_event(
                actor,
                AuditAction::PatientLink,
                AuditOutcome::Denied,
                None,
                detail,
            )
            .await;
            return Err(not_found());
        };
        let access = self
            .authorize_study(
                actor,
                Permission::PatientLink,
                AuditAction::PatientLink,
                &link.study_uid,
                detail,
            )
            .await
            .map_err(|e| match e {
                AppError::NotFound(_) => not_found(),
                e => e,
            })?;
        let now = now_ms();
        let r = async {
            if link.revoked_at.is_some() {
                return Ok(PatientLinkView::of(&link, now));
            }
            let entry = record(
                PATIENT_LINK_REVOKED,
                &link.study_uid,
                actor,
                now,
                &[format!("patient-link:{}", link.id)],
            )?;
            self.store
                .revoke_patient_link(&link.id, &actor.user_id, now, &entry)
                .await?;
            let row = self
                .store
                .patient_link(&link.id)
                .await?
                .ok_or_else(not_found)?;
            Ok(PatientLinkView::of(&row, now))
        }
        .await;
        self.audit_study(
            actor,
            AuditAction::PatientLink,
            crate::guarded::outcome(&r),
            &access,
            None,
            &format!("patient link {} revoked", link.id),
        )
        .await;
        r
    }

    /// Opens a link presented by `source` for `read`: the link if its token is known, not
    /// expired and not revoked, now. Audited either way; every refusal is the same
    /// "not found".
    pub async fn open_film(
        &self,
        token: &str,
        source: Option<String>,
        read: FilmRead<'_>,
    ) -> Result<FilmAccess, AppError> {
        self.open_film_at(token, source, read, now_ms()).await
    }

    /// [`App::open_film`] at time `now` (ms since the epoch).
    pub(crate) async fn open_film_at(
        &self,
        token: &str,
        source: Option<String>,
        read: FilmRead<'_>,
        now: i64,
    ) -> Result<FilmAccess, AppError> {
        let found = if plausible_token(token) {
            self.store
                .patient_link_by_token_hash(&token_hash(token))
                .await?
        } else {
            None
        };
        let refuse = |why: &str, link: Option<&PatientLinkRow>| {
            let mut who = self.anonymous("patient-link", AuditChannel::Http, source.clone());
            who.role = Role::PatientLink;
            if let Some(l) = link {
                who = link_actor(l, source.clone());
            }
            let mut e = self.event(
                &who,
                AuditAction::AccessDenied,
                AuditOutcome::Denied,
                &format!("patient link refused: {why}"),
            );
            e.study_uid = link.map(|l| l.study_uid.clone());
            e
        };
        let Some(link) = found else {
            self.auditor
                .record_durable(refuse("unknown token", None))
                .await;
            return Err(no_link());
        };
        match link_state(&link, now) {
            LinkState::Active => {}
            LinkState::Expired => {
                self.auditor
                    .record_durable(refuse("expired", Some(&link)))
                    .await;
                return Err(no_link());
            }
            LinkState::Revoked => {
                self.auditor
                    .record_durable(refuse("revoked", Some(&link)))
                    .await;
                return Err(no_link());
            }
        }
        // The study must still be there, in the link's organisation.
        let study = self.store.study_access(&link.study_uid).await?;
        let Some((_, patient_id, patient_name)) = study.filter(|(o, ..)| *o == link.org) else {
            self.auditor
                .record_durable(refuse("study no longer stored", Some(&link)))
                .await;
            return Err(no_link());
        };
        let actor = link_actor(&link, source);
        let access = StudyAccess {
            study_uid: link.study_uid.clone(),
            patient_id: Some(patient_id),
            patient_name: Some(patient_name),
        };
        let (action, series, detail) = match read {
            FilmRead::Page => (AuditAction::View, None, "patient link opened"),
            FilmRead::Study => (AuditAction::View, None, "patient link study summary"),
            FilmRead::Image(s) => (AuditAction::Retrieve, Some(s), "patient link image"),
            FilmRead::Report => (AuditAction::Retrieve, None, "patient link report PDF"),
        };
        let mut e = self.event(&actor, action, AuditOutcome::Success, detail);
        e.study_uid = Some(access.study_uid.clone());
        e.series_uid = series.map(|s| s.chars().take(64).collect());
        e.patient_id = access.patient_id.clone();
        e.patient_name = access.patient_name.clone();
        if read == FilmRead::Page {
            // Each opening of the page is its own record (never folded).
            self.auditor.record_durable(e).await;
        } else {
            self.auditor.record(e).await;
        }
        Ok(FilmAccess { link })
    }

    /// The study of an opened link, as the film shows it.
    pub async fn film_study(&self, film: &FilmAccess) -> Result<FilmStudy, AppError> {
        let study = &film.link.study_uid;
        let meta = self
            .store
            .metadata(&Scope {
                study_uid: Some(study.clone()),
                org: Some(film.link.org.clone()),
                ..Default::default()
            })
            .await?;
        let first = meta.iter().map(|(_, m)| m).next();
        let attr = |t| first.and_then(|m| first_string(m, t)).unwrap_or_default();
        let (study_date, description) = (
            display_date(&attr(tags::STUDY_DATE)),
            attr(tags::STUDY_DESCRIPTION),
        );
        let mut series: Vec<FilmSeries> = Vec::new();
        let mut members: Vec<Vec<usize>> = Vec::new();
        for (i, (inst, m)) in meta.iter().enumerate() {
            if inst.frames == 0 || NOT_SHOWN.contains(&inst.sop_class_uid.as_str()) {
                continue;
            }
            let at = match series.iter().position(|s| s.series_uid == inst.series_uid) {
                Some(at) => at,
                None => {
                    series.push(FilmSeries {
                        series_uid: inst.series_uid.clone(),
                        modality: first_string(m, tags::MODALITY).unwrap_or_default(),
                        description: first_string(m, tags::SERIES_DESCRIPTION).unwrap_or_default(),
                        number: first_string(m, tags::SERIES_NUMBER)
                            .and_then(|n| n.trim().parse().ok()),
                        instances: Vec::new(),
                    });
                    members.push(Vec::new());
                    series.len() - 1
                }
            };
            members[at].push(i);
        }
        for (s, idx) in series.iter_mut().zip(&members) {
            let stored: Vec<String> = idx
                .iter()
                .map(|&i| meta[i].0.sop_instance_uid.clone())
                .collect();
            let ordered = crate::review_geometry::slice_order(
                idx.iter()
                    .map(|&i| (meta[i].0.sop_instance_uid.as_str(), &meta[i].1)),
            );
            s.instances = if ordered.len() == stored.len() {
                ordered
            } else {
                stored
            };
        }
        series.sort_by_key(|s| s.number.unwrap_or(i64::MAX));
        let mut modalities: Vec<String> = Vec::new();
        for s in &series {
            if !s.modality.is_empty() && !modalities.contains(&s.modality) {
                modalities.push(s.modality.clone());
            }
        }
        let report_signed = self.store.report(study).await?.status == ReportStatus::Signed;
        Ok(FilmStudy {
            study_date,
            description,
            modalities,
            series,
            report_signed,
            expires_at: iso(film.link.expires_at),
            institution: self.org_display_name(&film.link.org).await,
        })
    }

    /// An image of an opened link's study as JPEG: `series` and `sop` must be of that
    /// study (anything else is "not found").
    pub async fn film_image(
        &self,
        film: &FilmAccess,
        series: &str,
        sop: &str,
    ) -> Result<Vec<u8>, AppError> {
        let not_found = || AppError::NotFound("no such image".into());
        for (uid, name) in [(series, "SeriesInstanceUID"), (sop, "SOPInstanceUID")] {
            lumen_dicom::attrs::check_uid(name, uid).map_err(|_| not_found())?;
        }
        let list = self
            .store
            .instances(&Scope {
                study_uid: Some(film.link.study_uid.clone()),
                series_uid: Some(series.to_string()),
                sop_instance_uid: Some(sop.to_string()),
                org: Some(film.link.org.clone()),
            })
            .await?;
        let inst = list
            .into_iter()
            .find(|i| i.frames > 0 && !NOT_SHOWN.contains(&i.sop_class_uid.as_str()))
            .ok_or_else(not_found)?;
        tokio::task::spawn_blocking(move || -> Result<Vec<u8>, AppError> {
            use lumen_dicom::render::{DEFAULT_JPEG_QUALITY, ImageFormat, RenderOptions};
            let bytes = inst.read_blocking()?;
            let obj = lumen_dicom::part10::parse(&bytes).map_err(AppError::internal)?;
            let opts = RenderOptions {
                window: None,
                format: ImageFormat::Jpeg {
                    quality: DEFAULT_JPEG_QUALITY,
                },
                viewport: None,
            };
            lumen_dicom::render::render(&obj, 0, &opts).map_err(AppError::internal)
        })
        .await
        .map_err(AppError::internal)?
    }

    /// The signed report's PDF of an opened link's study ("not found" until it is signed).
    pub async fn film_report_pdf(&self, film: &FilmAccess) -> Result<Vec<u8>, AppError> {
        let study = &film.link.study_uid;
        if self.store.report(study).await?.status != ReportStatus::Signed {
            return Err(AppError::NotFound("the report is not signed yet".into()));
        }
        let (pdf, _) = self.report_pdf_inner(study).await?;
        Ok(pdf)
    }

    /// The display name of an organisation (its id when it has none).
    async fn org_display_name(&self, org: &str) -> String {
        match self.store.orgs().await {
            Ok(orgs) => orgs
                .into_iter()
                .find(|o| o.id == org)
                .map(|o| o.name)
                .unwrap_or_else(|| self.settings.institution.clone()),
            Err(_) => self.settings.institution.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Settings;
    use lumen_store::{Origin, Store, StoreConfig};

    #[test]
    fn a_link_lives_one_to_720_hours() {
        assert_eq!(link_hours(None).ok(), Some(72));
        assert_eq!(link_hours(Some(1)).ok(), Some(1));
        assert_eq!(link_hours(Some(720)).ok(), Some(720));
        for bad in [0, -1, 721, i64::MAX, i64::MIN] {
            assert!(
                matches!(link_hours(Some(bad)), Err(AppError::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn tokens_are_kept_as_their_hash_and_ids_have_a_shape() {
        let t = random_token(32).expect("token");
        assert_eq!(t.len(), 43);
        assert!(plausible_token(&t));
        let h = token_hash(&t);
        assert_eq!(h.len(), 64);
        assert_ne!(h, t);
        assert!(plausible_id(&random_token(12).expect("id")));
        for bad in [
            "",
            "short",
            "../../etc/passwd",
            "a b c d e f g h",
            &"x".repeat(65),
        ] {
            assert!(!plausible_id(bad), "{bad}");
        }
    }

    fn person(user: &str, role: Role, org: &str) -> Actor {
        Actor {
            user_id: user.into(),
            display_name: user.into(),
            role,
            org: org.into(),
            institution: String::new(),
            channel: AuditChannel::Http,
            source: Some("127.0.0.1".into()),
            session: None,
            must_change_password: false,
        }
    }

    const CT_SMALL: &str = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322";

    /// A store with pydicom's CT_small and MR_small; `None` without the shared data.
    async fn app_with_two_studies(dir: &std::path::Path) -> Option<(App, String)> {
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/dicom-samples/pydicom-3.0.2-test-files");
        if !base.is_dir() {
            eprintln!("SKIP: ../shared/data not found");
            return None;
        }
        let store = Store::open(StoreConfig::new(dir)).await.expect("open");
        let mut other = String::new();
        for f in ["CT_small.dcm", "MR_small.dcm"] {
            let bytes = std::fs::read(base.join(f)).expect("sample");
            let done = store
                .ingest(bytes.into(), Origin::Import)
                .await
                .expect("ingest");
            if f == "MR_small.dcm" {
                other = done.study_uid;
            }
        }
        Some((App::new(store, Settings::default()), other))
    }

    #[tokio::test]
    async fn a_link_opens_its_study_until_it_expires_or_is_revoked() {
        let tmp = tempfile::tempdir().expect("tmp");
        let Some((app, other)) = app_with_two_studies(tmp.path()).await else {
            return;
        };
        let doctor = person("dr", Role::Radiologist, "local");
        // Who may not hand out links: a referrer, a doctor of another organisation (the
        // study is "not found" for them), and nobody gets a link of 0 or 721 hours.
        let referrer = person("ref", Role::Referrer, "local");
        assert!(matches!(
            app.create_patient_link(CT_SMALL, None, &referrer).await,
            Err(AppError::Forbidden(_))
        ));
        let foreign = person("dr-b", Role::Radiologist, "clinic-b");
        assert!(matches!(
            app.create_patient_link(CT_SMALL, None, &foreign).await,
            Err(AppError::NotFound(_))
        ));
        for bad in [0, 721] {
            assert!(matches!(
                app.create_patient_link(CT_SMALL, Some(bad), &doctor).await,
                Err(AppError::Invalid(_))
            ));
        }

        let link = app
            .create_patient_link(CT_SMALL, Some(2), &doctor)
            .await
            .expect("link");
        assert_eq!(link.path, format!("/film/{}", link.token));
        assert_eq!(link.link.state, LinkState::Active);
        // The index never holds the token.
        let listed = app.patient_links(CT_SMALL, &doctor).await.expect("list");
        assert_eq!(listed.len(), 1);
        assert!(!format!("{listed:?}").contains(&link.token));

        // Valid now: the study, its one CT image; the other study's image is not there.
        let film = app
            .open_film(&link.token, None, FilmRead::Page)
            .await
            .expect("open");
        let s = app.film_study(&film).await.expect("study");
        assert_eq!(s.series.len(), 1);
        assert_eq!(s.series[0].instances.len(), 1);
        assert_eq!(s.modalities, ["CT"]);
        assert!(!s.report_signed);
        let (series, sop) = (&s.series[0].series_uid, &s.series[0].instances[0]);
        let film = app
            .open_film(&link.token, None, FilmRead::Image(series))
            .await
            .expect("open for an image");
        let jpeg = app.film_image(&film, series, sop).await.expect("image");
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
        let theirs = app
            .store()
            .instances(&Scope {
                study_uid: Some(other.clone()),
                ..Default::default()
            })
            .await
            .expect("other");
        let (ts, ti) = (&theirs[0].series_uid, &theirs[0].sop_instance_uid);
        for (se, i) in [(ts, ti), (series, ti), (ts, sop)] {
            assert!(matches!(
                app.film_image(&film, se, i).await,
                Err(AppError::NotFound(_))
            ));
        }
        assert!(matches!(
            app.film_report_pdf(&film).await,
            Err(AppError::NotFound(_))
        ));

        // An hour from now it still opens; two hours from now it does not.
        let now = now_ms();
        assert!(
            app.open_film_at(&link.token, None, FilmRead::Study, now + 3_600_000)
                .await
                .is_ok()
        );
        assert!(matches!(
            app.open_film_at(&link.token, None, FilmRead::Study, now + 7_200_001)
                .await,
            Err(AppError::NotFound(_))
        ));
        // Unknown and malformed tokens are refused alike.
        for bad in ["", "nope", &random_token(32).expect("token")] {
            assert!(matches!(
                app.open_film(bad, None, FilmRead::Page).await,
                Err(AppError::NotFound(_))
            ));
        }

        // A technologist of the organisation revokes it: refused from then on, the same way.
        let tech = person("tech", Role::Technologist, "local");
        assert!(matches!(
            app.revoke_patient_link(&link.link.id, &foreign).await,
            Err(AppError::NotFound(_))
        ));
        let revoked = app
            .revoke_patient_link(&link.link.id, &tech)
            .await
            .expect("revoke");
        assert_eq!(revoked.state, LinkState::Revoked);
        assert_eq!(revoked.revoked_by.as_deref(), Some("tech"));
        assert!(matches!(
            app.open_film(&link.token, None, FilmRead::Page).await,
            Err(AppError::NotFound(_))
        ));
        // Revoking again changes nothing (no second ledger entry).
        app.revoke_patient_link(&link.link.id, &tech)
            .await
            .expect("again");

        // The ledger has the creation and the revocation, with the link's name.
        let entries = app
            .store()
            .study_ledger_entries(CT_SMALL)
            .await
            .expect("ledger");
        let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, [PATIENT_LINK_CREATED, PATIENT_LINK_REVOKED]);
        assert!(
            entries
                .iter()
                .all(|e| e.event.contains(&format!("patient-link:{}", link.link.id)))
        );

        // The audit trail has the creation, the openings (and the refusals) by the link,
        // and the revocation.
        app.auditor().flush().await;
        let trail = app
            .store()
            .audit(&lumen_store::AuditFilter {
                study_uid: Some(CT_SMALL.into()),
                limit: 100,
                ..Default::default()
            })
            .await
            .expect("audit");
        let by_link = format!("patient-link:{}", link.link.id);
        let has = |user: &str, action: AuditAction, outcome: AuditOutcome, detail: &str| {
            trail.iter().any(|e| {
                e.user == user
                    && e.action == action
                    && e.outcome == outcome
                    && e.detail.contains(detail)
            })
        };
        assert!(has(
            "dr",
            AuditAction::PatientLink,
            AuditOutcome::Success,
            "created"
        ));
        assert!(has(
            &by_link,
            AuditAction::View,
            AuditOutcome::Success,
            "opened"
        ));
        assert!(has(
            &by_link,
            AuditAction::Retrieve,
            AuditOutcome::Success,
            "image"
        ));
        assert!(has(
            &by_link,
            AuditAction::AccessDenied,
            AuditOutcome::Denied,
            "expired"
        ));
        assert!(has(
            &by_link,
            AuditAction::AccessDenied,
            AuditOutcome::Denied,
            "revoked"
        ));
        assert!(has(
            "tech",
            AuditAction::PatientLink,
            AuditOutcome::Success,
            "revoked"
        ));
        assert!(trail.iter().all(|e| !e.detail.contains(&link.token)));
    }
}
