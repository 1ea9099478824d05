//! `GET /api/worklist`: studies with patient, date, modalities, AI status, highest Lung-RADS
//! category and report status; filters and search; newest first.

use axum::Json;
use axum::extract::{Query, State};
use dicom_dictionary_std::tags;
use lumen_dicom::json::first_string;
use lumen_store::WorklistFilter;

use crate::actor::CurrentUser;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{ApiError, AppState};

/// Query parameters of the worklist.
#[derive(Debug, Default, Deserialize)]
pub struct WorklistParams {
    q: Option<String>,
    modality: Option<String>,
    date_from: Option<String>,
    date_to: Option<String>,
    ai: Option<String>,
    report: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

fn check_date(name: &str, v: &Option<String>) -> Result<(), ApiError> {
    match v.as_deref() {
        Some(d) if !d.is_empty() && (d.len() != 8 || !d.bytes().all(|b| b.is_ascii_digit())) => {
            Err(ApiError::BadRequest(format!("{name} must be YYYYMMDD")))
        }
        _ => Ok(()),
    }
}

fn check_one_of(name: &str, v: &Option<String>, allowed: &[&str]) -> Result<(), ApiError> {
    match v.as_deref() {
        Some(x) if !x.is_empty() && !allowed.contains(&x) => Err(ApiError::BadRequest(format!(
            "{name} must be one of {}",
            allowed.join(", ")
        ))),
        _ => Ok(()),
    }
}

/// `GET /api/worklist`.
pub async fn worklist(
    State(s): State<AppState>,
    CurrentUser(user): CurrentUser,
    Query(p): Query<WorklistParams>,
) -> Result<Json<Value>, ApiError> {
    check_date("date_from", &p.date_from)?;
    check_date("date_to", &p.date_to)?;
    check_one_of(
        "ai",
        &p.ai,
        &["none", "queued", "running", "done", "failed", "skipped"],
    )?;
    check_one_of("report", &p.report, &["unread", "draft", "signed"])?;
    let filter = WorklistFilter {
        q: p.q,
        modality: p.modality,
        date_from: p.date_from,
        date_to: p.date_to,
        ai: p.ai,
        report: p.report,
        limit: p.limit.unwrap_or(100).clamp(1, 1000),
        offset: p.offset.unwrap_or(0),
        org: None,
    };
    let wl = s.app.worklist(&user, &filter).await?;
    let items: Vec<Value> = wl
        .items
        .into_iter()
        .map(|r| {
            let a = |t| first_string(&r.attrs, t);
            json!({
                "study_uid": r.study_uid,
                "patient_name": a(tags::PATIENT_NAME),
                "patient_id": a(tags::PATIENT_ID),
                "patient_sex": a(tags::PATIENT_SEX),
                "patient_birth_date": a(tags::PATIENT_BIRTH_DATE),
                "study_date": a(tags::STUDY_DATE),
                "study_time": a(tags::STUDY_TIME),
                "accession_number": a(tags::ACCESSION_NUMBER),
                "study_description": a(tags::STUDY_DESCRIPTION),
                "modalities": r.modalities,
                "num_series": r.num_series,
                "num_instances": r.num_instances,
                "ai_status": r.ai_status,
                "lung_rads": r.lung_rads,
                "report_status": r.report_status,
                "shared_from": r.shared_from,
                "reported_by": r.reported_by,
            })
        })
        .collect();
    // Shares announced by a member whose first instances have not arrived yet.
    let incoming: Vec<Value> = s
        .app
        .incoming_shares(&user)
        .await?
        .into_iter()
        .map(|g| {
            json!({
                "study_uid": g.study_uid, "from": g.origin_name,
                "purpose": g.purpose, "since_ms": g.created_ms,
            })
        })
        .collect();
    Ok(Json(
        json!({ "total": wl.total, "items": items, "incoming": incoming }),
    ))
}
