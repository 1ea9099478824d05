//! Lumen's own JSON API (beside DICOMweb): AI status per study.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::actor::CurrentUser;
use crate::{ApiError, AppState};

/// `GET /api/studies/{study}/ai`: the AI job of each series (waiting, running, done,
/// failed or skipped, with the reason and the findings when done).
pub async fn study_ai(
    State(s): State<AppState>,
    Path(study): Path<String>,
    CurrentUser(actor): CurrentUser,
) -> Result<Json<Value>, ApiError> {
    let jobs = s.app.ai_jobs(&study, &actor).await?;
    Ok(Json(json!({ "study_uid": study, "series": jobs })))
}

/// `POST /api/studies/{study}/ai`: analyse the study's series again now.
pub async fn requeue_ai(
    State(s): State<AppState>,
    Path(study): Path<String>,
    CurrentUser(actor): CurrentUser,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let n = s.app.requeue_ai(&study, &actor).await?;
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
