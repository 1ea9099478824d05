//! The radiologist's review and report state, kept in the index database (migration 0004).
//!
//! Findings: the AI's original measures are stored beside the doctor's version the first time
//! a doctor acts on a finding and are never changed; every action appends a history row.
//! Reports: one working draft per study, then signed versions (the report and its addenda)
//! that triggers keep immutable. Signing is two-phase so that a crash between storing the
//! report's DICOM objects and recording the signature can be retried with identical objects:
//! [`Store::begin_signature`] fixes the version, time and signer, [`Store::commit_signature`]
//! records the signed version.
//!
//! The measures and sections are opaque JSON here; their shape belongs to the web API.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;

use crate::{Store, StoreError, now_ms};

/// Why a review or report change was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReviewError {
    /// The study's report is signed: findings and the report are final.
    #[error("report is signed; add an addendum")]
    Signed,
    /// An addendum or a PDF needs a signed report.
    #[error("report is not signed")]
    NotSigned,
    /// No such finding.
    #[error("no finding {0} in this study")]
    NoFinding(String),
    /// The archive failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ReviewError {
    fn from(e: sqlx::Error) -> Self {
        // A trigger's RAISE(ABORT, 'report is signed') reaches us as a database error.
        if e.to_string().contains("report is signed") {
            return ReviewError::Signed;
        }
        ReviewError::Store(StoreError::Db(e))
    }
}

/// A finding as reviewed by a doctor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindingReview {
    /// `ai-<n>` or `dr-<n>`.
    pub finding_id: String,
    /// `ai` or `doctor`.
    pub origin: String,
    /// pending, accepted, rejected, corrected or added.
    pub status: String,
    /// The AI's original measures (JSON); `None` for a doctor's finding.
    pub ai: Option<Value>,
    /// The doctor's version (JSON).
    pub current: Value,
    /// The doctor's note.
    pub note: Option<String>,
    /// Who acted last (display name).
    pub edited_by: Option<String>,
    /// When (ms since epoch).
    pub edited_at: Option<i64>,
}

/// One entry of a finding's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindingHistory {
    /// The status set.
    pub status: String,
    /// The version saved.
    pub current: Value,
    /// The note saved.
    pub note: Option<String>,
    /// Who.
    pub actor: String,
    /// When (ms since epoch).
    pub at: i64,
}

/// A doctor's action on a finding.
#[derive(Debug, Clone)]
pub struct FindingAction<'a> {
    /// The finding (`ai-<n>`), or `None` to add a doctor's finding (`dr-<n>` is assigned).
    pub finding_id: Option<&'a str>,
    /// The AI's original measures, stored the first time an AI finding is acted on.
    pub ai: Option<&'a Value>,
    /// The new status.
    pub status: &'a str,
    /// The doctor's version.
    pub current: &'a Value,
    /// A note (kept as it was when `None`).
    pub note: Option<&'a str>,
    /// Who acts (display name).
    pub actor: &'a str,
}

/// The report status the worklist shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportStatus {
    /// Nobody has acted on the study yet.
    Unread,
    /// Findings reviewed or the report edited; not signed.
    Draft,
    /// Signed and final.
    Signed,
}

impl ReportStatus {
    /// `unread`, `draft` or `signed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ReportStatus::Unread => "unread",
            ReportStatus::Draft => "draft",
            ReportStatus::Signed => "signed",
        }
    }
}

/// A signed version: the report (`kind` "report") or an addendum.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportVersion {
    /// 1 for the report, then 2, 3... for addenda.
    pub version: i64,
    /// `report` or `addendum`.
    pub kind: String,
    /// Language (`en`, `zh-CN`).
    pub lang: String,
    /// Sections (report) or `{"text"}` (addendum).
    pub content: Value,
    /// The signer's user id.
    pub signer_id: String,
    /// The signer's display name.
    pub signer: String,
    /// When (ms since epoch).
    pub signed_at: i64,
    /// The Encapsulated PDF stored for this version.
    pub pdf_sop_uid: String,
    /// The Basic Text SR stored for this version.
    pub sr_sop_uid: String,
}

/// A signature being stored: fixed before the DICOM objects are written, so that a retry
/// after a crash writes the same objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingSignature {
    /// The version it will get.
    pub version: i64,
    /// `report` or `addendum`.
    pub kind: String,
    /// Language.
    pub lang: String,
    /// What is signed (sections or `{"text"}`).
    pub content: Value,
    /// The signer's user id.
    pub signer_id: String,
    /// The signer's display name.
    pub signer: String,
    /// The signature time (ms since epoch).
    pub signed_at: i64,
}

/// A study's report state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportRecord {
    /// unread, draft or signed.
    pub status: ReportStatus,
    /// The language last chosen, if any.
    pub lang: Option<String>,
    /// The edited draft; `None` while the AI draft stands.
    pub sections: Option<Value>,
    /// Who edited the draft last.
    pub edited_by: Option<String>,
    /// The signed versions, oldest first.
    pub versions: Vec<ReportVersion>,
    /// A signature in progress.
    pub pending: Option<PendingSignature>,
}

/// Filters of the worklist.
#[derive(Debug, Clone, Default)]
pub struct WorklistFilter {
    /// Case-insensitive substring of patient name, patient ID, accession number or study
    /// description.
    pub q: Option<String>,
    /// A modality in the study.
    pub modality: Option<String>,
    /// Study date from (YYYYMMDD, inclusive).
    pub date_from: Option<String>,
    /// Study date to (YYYYMMDD, inclusive).
    pub date_to: Option<String>,
    /// AI status: none, queued, running, done, failed, skipped.
    pub ai: Option<String>,
    /// Report status: unread, draft, signed.
    pub report: Option<String>,
    /// Only studies of this organisation.
    pub org: Option<String>,
    /// Most rows.
    pub limit: usize,
    /// Rows skipped.
    pub offset: usize,
}

/// One study of the worklist.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorklistRow {
    /// Study Instance UID.
    pub study_uid: String,
    /// The study's attributes (DICOM JSON).
    pub attrs: serde_json::Map<String, Value>,
    /// Modalities in the study.
    pub modalities: Vec<String>,
    /// Series count.
    pub num_series: i64,
    /// Instance count.
    pub num_instances: i64,
    /// none, queued, running, done, failed or skipped (over the study's series).
    pub ai_status: String,
    /// Highest Lung-RADS category: the doctor's once reviewed, else the AI's.
    pub lung_rads: Option<String>,
    /// unread, draft or signed (signed too when a member's signed report of a study this
    /// node shared came back).
    pub report_status: String,
    /// The consortium member that shared this study with this node (its name), while the
    /// grant is active.
    pub shared_from: Option<String>,
    /// The member whose signed report of this study (shared by this node) came back.
    pub reported_by: Option<String>,
}

/// A page of the worklist.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Worklist {
    /// Rows matching the filters (all pages).
    pub total: i64,
    /// This page, newest first.
    pub items: Vec<WorklistRow>,
}

fn json(s: Option<String>) -> Result<Option<Value>, StoreError> {
    s.map(|s| serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
}

fn review_from_row(r: &impl crate::db::IndexRow) -> Result<FindingReview, StoreError> {
    Ok(FindingReview {
        finding_id: r.col(0)?,
        origin: r.col(1)?,
        status: r.col(2)?,
        ai: json(r.col(3)?)?,
        current: json(Some(r.col(4)?))?.unwrap_or(Value::Null),
        note: r.col(5)?,
        edited_by: r.col(6)?,
        edited_at: r.col(7)?,
    })
}

const REVIEW_COLUMNS: &str =
    "finding_id, origin, status, ai, current, note, edited_by, edited_at FROM finding_reviews";

impl Store {
    /// A study's attributes (DICOM JSON, study and patient level), if it is stored.
    pub async fn study_attrs(
        &self,
        study_uid: &str,
    ) -> Result<Option<serde_json::Map<String, Value>>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            let attrs: Option<String> =
                sqlx::query_scalar(d.sql("SELECT attrs FROM studies WHERE study_uid = ?"))
                    .bind(study_uid)
                    .fetch_optional(pool)
                    .await?;
            attrs.map(|a| crate::parse_map(&a)).transpose()
        })
    }

    /// The reviewed findings of a study (AI findings nobody acted on are not stored).
    pub async fn finding_reviews(&self, study_uid: &str) -> Result<Vec<FindingReview>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            let rows = sqlx::query(d.sql(format!(
            "SELECT {REVIEW_COLUMNS} WHERE study_uid = ? ORDER BY origin, length(finding_id), finding_id"
        )))
        .bind(study_uid)
        .fetch_all(pool)
        .await?;
            rows.iter().map(review_from_row).collect()
        })
    }

    /// The history of one finding, oldest first.
    pub async fn finding_history(
        &self,
        study_uid: &str,
        finding_id: &str,
    ) -> Result<Vec<FindingHistory>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            let rows = sqlx::query(d.sql(
                "SELECT status, current, note, actor, at FROM finding_history
             WHERE study_uid = ? AND finding_id = ? ORDER BY id",
            ))
            .bind(study_uid)
            .bind(finding_id)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(FindingHistory {
                        status: r.try_get(0)?,
                        current: json(Some(r.try_get(1)?))?.unwrap_or(Value::Null),
                        note: r.try_get(2)?,
                        actor: r.try_get(3)?,
                        at: r.try_get(4)?,
                    })
                })
                .collect()
        })
    }

    /// Records a doctor's action on a finding (accept, reject, correct, add), appends it to
    /// the finding's history and marks the study's report a draft, in one transaction.
    /// Refused once the report is signed.
    pub async fn review_finding(
        &self,
        study_uid: &str,
        action: FindingAction<'_>,
    ) -> Result<FindingReview, ReviewError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let now = now_ms();
            let mut tx = pool.begin_with(d.begin()).await?;
            let signed: Option<String> =
                sqlx::query_scalar(d.sql("SELECT status FROM reports WHERE study_uid = ?"))
                    .bind(study_uid)
                    .fetch_optional(&mut *tx)
                    .await?;
            if signed.as_deref() == Some("signed") {
                return Err(ReviewError::Signed);
            }
            let current = action.current.to_string();
            let id = match action.finding_id {
                Some(id) => {
                    let ai = action.ai.map(Value::to_string);
                    let origin = if id.starts_with("dr-") {
                        "doctor"
                    } else {
                        "ai"
                    };
                    if origin == "doctor" {
                        let known: Option<i64> = sqlx::query_scalar(d.sql(
                            "SELECT 1 FROM finding_reviews WHERE study_uid = ? AND finding_id = ?",
                        ))
                        .bind(study_uid)
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                        if known.is_none() {
                            return Err(ReviewError::NoFinding(id.to_string()));
                        }
                    }
                    // The AI original is written only when the row is created; an update
                    // leaves it (and a trigger refuses any change to it).
                    sqlx::query(
                    d.sql("INSERT INTO finding_reviews
                       (study_uid, finding_id, origin, status, ai, current, note, edited_by, edited_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT(study_uid, finding_id) DO UPDATE SET status = excluded.status,
                       current = excluded.current, note = coalesce(excluded.note, finding_reviews.note),
                       edited_by = excluded.edited_by, edited_at = excluded.edited_at"),
                )
                .bind(study_uid)
                .bind(id)
                .bind(origin)
                .bind(action.status)
                .bind(ai)
                .bind(&current)
                .bind(action.note)
                .bind(action.actor)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                    id.to_string()
                }
                None => {
                    let n: i64 = sqlx::query_scalar(d.sql(
                        "SELECT coalesce(max(CAST(substr(finding_id, 4) AS BIGINT)), 0) + 1
                     FROM finding_reviews WHERE study_uid = ? AND origin = 'doctor'",
                    ))
                    .bind(study_uid)
                    .fetch_one(&mut *tx)
                    .await?;
                    let id = format!("dr-{n}");
                    sqlx::query(
                    d.sql("INSERT INTO finding_reviews
                       (study_uid, finding_id, origin, status, ai, current, note, edited_by, edited_at)
                     VALUES (?, ?, 'doctor', ?, NULL, ?, ?, ?, ?)"),
                )
                .bind(study_uid)
                .bind(&id)
                .bind(action.status)
                .bind(&current)
                .bind(action.note)
                .bind(action.actor)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                    id
                }
            };
            sqlx::query(
            d.sql("INSERT INTO finding_history (study_uid, finding_id, status, current, note, actor, at)
             VALUES (?, ?, ?, ?, ?, ?, ?)"),
        )
        .bind(study_uid)
        .bind(&id)
        .bind(action.status)
        .bind(&current)
        .bind(action.note)
        .bind(action.actor)
        .bind(now)
        .execute(&mut *tx)
        .await?;
            // The study's category for the worklist, from the reviewed findings as this
            // transaction leaves them: the highest of those accepted, corrected or added.
            let reported: Vec<String> = sqlx::query_scalar(d.sql(
                "SELECT current FROM finding_reviews
             WHERE study_uid = ? AND status IN ('accepted', 'corrected', 'added')",
            ))
            .bind(study_uid)
            .fetch_all(&mut *tx)
            .await?;
            // A version without a category (none is written so) does not count.
            let cats: Vec<lumen_model::LungRads> = reported
                .iter()
                .filter_map(|c| serde_json::from_str::<Value>(c).ok())
                .filter_map(|v| serde_json::from_value(v["lung_rads"].clone()).ok())
                .collect();
            let study_lung_rads = lumen_model::lungrads::exam_category(&cats);
            sqlx::query(d.sql(
                "INSERT INTO reports (study_uid, status, lang, lung_rads, updated_at)
             VALUES (?, 'draft', 'en', ?, ?)
             ON CONFLICT(study_uid) DO UPDATE SET lung_rads = excluded.lung_rads,
               updated_at = excluded.updated_at",
            ))
            .bind(study_uid)
            .bind(study_lung_rads.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let row = sqlx::query(d.sql(format!(
                "SELECT {REVIEW_COLUMNS} WHERE study_uid = ? AND finding_id = ?"
            )))
            .bind(study_uid)
            .bind(&id)
            .fetch_one(&mut *tx)
            .await?;
            let review = review_from_row(&row)?;
            tx.commit().await?;
            Ok(review)
        })
    }

    /// The report state of a study.
    pub async fn report(&self, study_uid: &str) -> Result<ReportRecord, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            let row = sqlx::query(
            d.sql("SELECT status, lang, sections, edited_by, pending FROM reports WHERE study_uid = ?"),
        )
        .bind(study_uid)
        .fetch_optional(pool)
        .await?;
            let versions = sqlx::query(d.sql(
                "SELECT version, kind, lang, content, signer_id, signer, signed_at, pdf_sop_uid,
               sr_sop_uid FROM report_versions WHERE study_uid = ? ORDER BY version",
            ))
            .bind(study_uid)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                Ok(ReportVersion {
                    version: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    lang: r.try_get(2)?,
                    content: json(Some(r.try_get(3)?))?.unwrap_or(Value::Null),
                    signer_id: r.try_get(4)?,
                    signer: r.try_get(5)?,
                    signed_at: r.try_get(6)?,
                    pdf_sop_uid: r.try_get(7)?,
                    sr_sop_uid: r.try_get(8)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
            let Some(row) = row else {
                return Ok(ReportRecord {
                    status: ReportStatus::Unread,
                    lang: None,
                    sections: None,
                    edited_by: None,
                    versions,
                    pending: None,
                });
            };
            let status: String = row.try_get(0)?;
            let pending = json(row.try_get(4)?)?
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok(ReportRecord {
                status: if status == "signed" {
                    ReportStatus::Signed
                } else {
                    ReportStatus::Draft
                },
                lang: row.try_get(1)?,
                sections: json(row.try_get(2)?)?,
                edited_by: row.try_get(3)?,
                versions,
                pending,
            })
        })
    }

    /// Saves the doctor's edited draft. Refused once signed.
    pub async fn save_report_draft(
        &self,
        study_uid: &str,
        lang: &str,
        sections: &Value,
        actor: &str,
    ) -> Result<(), ReviewError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let now = now_ms();
            let mut tx = pool.begin_with(d.begin()).await?;
            let status: Option<String> =
                sqlx::query_scalar(d.sql("SELECT status FROM reports WHERE study_uid = ?"))
                    .bind(study_uid)
                    .fetch_optional(&mut *tx)
                    .await?;
            if status.as_deref() == Some("signed") {
                return Err(ReviewError::Signed);
            }
            sqlx::query(d.sql(
                "INSERT INTO reports (study_uid, status, lang, sections, edited_by, updated_at)
             VALUES (?, 'draft', ?, ?, ?, ?)
             ON CONFLICT(study_uid) DO UPDATE SET lang = excluded.lang,
               sections = excluded.sections, edited_by = excluded.edited_by,
               updated_at = excluded.updated_at",
            ))
            .bind(study_uid)
            .bind(lang)
            .bind(sections.to_string())
            .bind(actor)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Fixes the next signed version (the report when `kind` is "report", else an addendum)
    /// before its DICOM objects are stored. A pending signature of the same kind, content,
    /// language and signer is returned as it was (same version and time), so a retry after a
    /// crash writes identical objects; any other replaces it. Refused when a report is
    /// already signed (kind "report") or not yet signed (addendum).
    pub async fn begin_signature(
        &self,
        study_uid: &str,
        kind: &str,
        lang: &str,
        content: &Value,
        signer_id: &str,
        signer: &str,
    ) -> Result<PendingSignature, ReviewError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let now = now_ms();
            let mut tx = pool.begin_with(d.begin()).await?;
            let row = sqlx::query(d.sql("SELECT status, pending FROM reports WHERE study_uid = ?"))
                .bind(study_uid)
                .fetch_optional(&mut *tx)
                .await?;
            let (status, pending) = match &row {
                Some(r) => (
                    r.try_get::<String, _>(0)?,
                    json(r.try_get(1)?)?
                        .and_then(|v| serde_json::from_value::<PendingSignature>(v).ok()),
                ),
                None => ("unread".to_string(), None),
            };
            match (kind, status.as_str()) {
                ("report", "signed") => return Err(ReviewError::Signed),
                ("addendum", s) if s != "signed" => return Err(ReviewError::NotSigned),
                _ => {}
            }
            if let Some(p) = pending
                && p.kind == kind
                && p.lang == lang
                && &p.content == content
                && p.signer_id == signer_id
                && p.signer == signer
            {
                return Ok(p);
            }
            let version: i64 = sqlx::query_scalar(d.sql(
                "SELECT coalesce(max(version), 0) + 1 FROM report_versions WHERE study_uid = ?",
            ))
            .bind(study_uid)
            .fetch_one(&mut *tx)
            .await?;
            let p = PendingSignature {
                version,
                kind: kind.to_string(),
                lang: lang.to_string(),
                content: content.clone(),
                signer_id: signer_id.to_string(),
                signer: signer.to_string(),
                signed_at: now,
            };
            let pj = serde_json::to_string(&p).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query(d.sql(
                "INSERT INTO reports (study_uid, status, lang, updated_at, pending)
             VALUES (?, 'draft', ?, ?, ?)
             ON CONFLICT(study_uid) DO UPDATE SET pending = excluded.pending",
            ))
            .bind(study_uid)
            .bind(lang)
            .bind(now)
            .bind(pj)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(p)
        })
    }

    /// Records a pending signature as signed, with the SOP Instance UIDs of its stored PDF
    /// and SR, and its ledger entry in the same transaction; signing the report makes it
    /// final. Idempotent for the same version (the entry is appended once). `ledger` is
    /// always given by the application; `None` (no entry) exists for the benchmark of the
    /// ledger's cost (`examples/ledger_sign.rs`).
    pub async fn commit_signature(
        &self,
        study_uid: &str,
        pending: &PendingSignature,
        pdf_sop_uid: &str,
        sr_sop_uid: &str,
        ledger: Option<&crate::NewLedgerEntry>,
    ) -> Result<(), ReviewError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let mut tx = pool.begin_with(d.begin()).await?;
            let done: Option<i64> = sqlx::query_scalar(
                d.sql("SELECT version FROM report_versions WHERE study_uid = ? AND version = ?"),
            )
            .bind(study_uid)
            .bind(pending.version)
            .fetch_optional(&mut *tx)
            .await?;
            if done.is_some() {
                return Ok(());
            }
            sqlx::query(d.sql(
                "INSERT INTO report_versions (study_uid, version, kind, lang, content, signer_id,
               signer, signed_at, pdf_sop_uid, sr_sop_uid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ))
            .bind(study_uid)
            .bind(pending.version)
            .bind(&pending.kind)
            .bind(&pending.lang)
            .bind(pending.content.to_string())
            .bind(&pending.signer_id)
            .bind(&pending.signer)
            .bind(pending.signed_at)
            .bind(pdf_sop_uid)
            .bind(sr_sop_uid)
            .execute(&mut *tx)
            .await?;
            if let Some(entry) = ledger {
                crate::ledger::insert_entry((&mut *tx).into(), entry).await?;
            }
            if pending.kind == "report" {
                sqlx::query(d.sql(
                    "UPDATE reports SET status = 'signed', lang = ?, sections = ?, pending = NULL,
                   updated_at = ? WHERE study_uid = ?",
                ))
                .bind(&pending.lang)
                .bind(pending.content.to_string())
                .bind(pending.signed_at)
                .bind(study_uid)
                .execute(&mut *tx)
                .await?;
            } else {
                sqlx::query(
                    d.sql("UPDATE reports SET pending = NULL, updated_at = ? WHERE study_uid = ?"),
                )
                .bind(pending.signed_at)
                .bind(study_uid)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The worklist: studies with their AI and report status, filtered, newest first.
    pub async fn worklist(&self, f: &WorklistFilter) -> Result<Worklist, StoreError> {
        {
            // Every condition is on a column of `studies` (migration 0006 keeps the AI state and
            // the AI's category there) or on the report's status, and the order is the
            // `studies_order` index read backwards: a page reads its rows, not the archive.
            let from = "FROM studies st LEFT JOIN reports r ON r.study_uid = st.study_uid";
            let mut conds: Vec<&str> = Vec::new();
            let mut binds: Vec<String> = Vec::new();
            if let Some(q) = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
                conds.push(
                    "(st.pn_alphabetic LIKE ? ESCAPE '!' OR st.pn_ideographic LIKE ? ESCAPE '!'
                  OR lower(st.patient_id) LIKE ? ESCAPE '!'
                  OR lower(st.accession) LIKE ? ESCAPE '!'
                  OR lower(st.description) LIKE ? ESCAPE '!')",
                );
                let mut like = String::from("%");
                for c in q.to_lowercase().chars() {
                    if matches!(c, '%' | '_' | '!') {
                        like.push('!');
                    }
                    like.push(c);
                }
                like.push('%');
                binds.extend(std::iter::repeat_n(like, 5));
            }
            if let Some(m) = f.modality.as_deref().filter(|m| !m.is_empty()) {
                conds.push("('\\' || st.modalities || '\\') LIKE ? ESCAPE '!'");
                let m: String = m
                    .to_uppercase()
                    .chars()
                    .flat_map(|c| match c {
                        '%' | '_' | '!' => vec!['!', c],
                        c => vec![c],
                    })
                    .collect();
                binds.push(format!("%\\{m}\\%"));
            }
            if let Some(d) = f.date_from.as_deref().filter(|d| !d.is_empty()) {
                conds.push("st.study_date >= ?");
                binds.push(d.to_string());
            }
            if let Some(d) = f.date_to.as_deref().filter(|d| !d.is_empty()) {
                conds.push("st.study_date <= ? AND st.study_date <> ''");
                binds.push(d.to_string());
            }
            if let Some(a) = f.ai.as_deref().filter(|a| !a.is_empty()) {
                conds.push("st.ai_state = ?");
                binds.push(a.to_string());
            }
            if let Some(r) = f.report.as_deref().filter(|r| !r.is_empty()) {
                conds.push("coalesce(r.status, 'unread') = ?");
                binds.push(r.to_string());
            }
            let only_org = conds.is_empty();
            if let Some(o) = &f.org {
                conds.push("st.org = ?");
                binds.push(o.clone());
            }
            let where_sql = if conds.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", conds.join(" AND "))
            };
            let page = [f.limit, f.offset].map(|n| i64::try_from(n).unwrap_or(i64::MAX));
            let page_sql = format!(
                "SELECT st.study_uid, st.attrs, st.modalities, st.num_series, st.num_instances,
               st.ai_state, coalesce(r.lung_rads, st.ai_lung_rads), coalesce(r.status, 'unread'),
               (SELECT g.origin_name FROM grants g WHERE g.study_uid = st.study_uid
                  AND g.status = 'active' ORDER BY g.created_ms LIMIT 1),
               (SELECT sh.reported_by FROM shares sh WHERE sh.study_uid = st.study_uid
                  AND sh.reported_by IS NOT NULL ORDER BY sh.reported_ms LIMIT 1)
             {from}{where_sql}
             ORDER BY st.study_date DESC, st.study_time DESC, st.created_at DESC, st.study_uid DESC
             LIMIT ? OFFSET ?"
            );
            let (total, items) = crate::db::with_db!(&self.pools, reader, |pool, d| {
                let total = if conds.is_empty() {
                    // Kept by triggers (migration 0008): no count over the archive for the first
                    // page.
                    sqlx::query_scalar::<_, i64>(
                        d.sql("SELECT n FROM index_counts WHERE name = 'studies'"),
                    )
                    .fetch_one(pool)
                    .await?
                } else if only_org && let Some(o) = &f.org {
                    // Kept by triggers too (migration 0009), per organisation.
                    sqlx::query_scalar::<_, i64>(d.sql("SELECT n FROM org_counts WHERE org = ?"))
                        .bind(o)
                        .fetch_optional(pool)
                        .await?
                        .unwrap_or(0)
                } else {
                    let count_sql = format!("SELECT count(*) {from}{where_sql}");
                    let mut q = sqlx::query_scalar::<_, i64>(d.sql(count_sql));
                    for b in &binds {
                        q = q.bind(b);
                    }
                    q.fetch_one(pool).await?
                };
                let mut q = sqlx::query(d.sql(page_sql));
                for b in &binds {
                    q = q.bind(b);
                }
                let rows = q.bind(page[0]).bind(page[1]).fetch_all(pool).await?;
                let mut items = Vec::with_capacity(rows.len());
                for r in &rows {
                    let modalities: String = r.try_get(2)?;
                    let reported_by: Option<String> = r.try_get(9)?;
                    items.push(WorklistRow {
                        study_uid: r.try_get(0)?,
                        attrs: crate::parse_map(&r.try_get::<String, _>(1)?)?,
                        modalities: modalities
                            .split('\\')
                            .filter(|m| !m.is_empty())
                            .map(str::to_string)
                            .collect(),
                        num_series: r.try_get(3)?,
                        num_instances: r.try_get(4)?,
                        ai_status: r.try_get(5)?,
                        lung_rads: r.try_get(6)?,
                        report_status: match r.try_get::<String, _>(7)? {
                            s if s == "unread" && reported_by.is_some() => "signed".into(),
                            s => s,
                        },
                        shared_from: r.try_get(8)?,
                        reported_by,
                    });
                }
                (total, items)
            });
            Ok(Worklist { total, items })
        }
    }
}
