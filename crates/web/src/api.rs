//! Lumen's own JSON API (beside DICOMweb): AI status per study.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::{ApiError, AppState};

/// `GET /api/studies/{study}/ai`: the AI job of each series (waiting, running, done,
/// failed or skipped, with the reason and the findings when done).
pub async fn study_ai(
    State(s): State<AppState>,
    Path(study): Path<String>,
) -> Result<Json<Value>, ApiError> {
    lumen_dicom::attrs::check_uid("StudyInstanceUID", &study)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let jobs = s.store.ai_jobs(&study).await?;
    if jobs.is_empty()
        && s.store
            .instances(&lumen_store::Scope {
                study_uid: Some(study.clone()),
                ..Default::default()
            })
            .await?
            .is_empty()
    {
        return Err(ApiError::NotFound("no such study".into()));
    }
    Ok(Json(json!({ "study_uid": study, "series": jobs })))
}

/// `POST /api/studies/{study}/ai`: analyse the study's series again now.
pub async fn requeue_ai(
    State(s): State<AppState>,
    Path(study): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    lumen_dicom::attrs::check_uid("StudyInstanceUID", &study)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let n = s.store.requeue_ai(&study).await?;
    if n == 0 {
        return Err(ApiError::NotFound(
            "the study has no series the AI analyses".into(),
        ));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "study_uid": study, "queued_series": n })),
    ))
}
