//! The review API: HTTP translations of `lumen_app::review` (findings, accept, reject,
//! correct, add, the SEG overlay).

use axum::Json;
use axum::extract::{Path, State};
use lumen_app::Finding;
use lumen_app::review::{Correction, NewFinding, ReviewView};
use serde_json::Value;

use crate::actor::CurrentUser;
use crate::{ApiError, AppState};

/// `GET /api/studies/{study}/review`.
pub async fn review(
    State(s): State<AppState>,
    Path(study): Path<String>,
    CurrentUser(actor): CurrentUser,
) -> Result<Json<ReviewView>, ApiError> {
    Ok(Json(s.app.review(&study, &actor).await?))
}

/// `POST /api/studies/{study}/findings/{id}/accept`.
pub async fn accept(
    State(s): State<AppState>,
    Path((study, id)): Path<(String, String)>,
    CurrentUser(actor): CurrentUser,
) -> Result<Json<Finding>, ApiError> {
    Ok(Json(s.app.accept(&study, &id, &actor).await?))
}

/// `POST /api/studies/{study}/findings/{id}/reject`.
pub async fn reject(
    State(s): State<AppState>,
    Path((study, id)): Path<(String, String)>,
    CurrentUser(actor): CurrentUser,
) -> Result<Json<Finding>, ApiError> {
    Ok(Json(s.app.reject(&study, &id, &actor).await?))
}

/// `PUT /api/studies/{study}/findings/{id}`: a correction (status "corrected").
pub async fn correct(
    State(s): State<AppState>,
    Path((study, id)): Path<(String, String)>,
    CurrentUser(actor): CurrentUser,
    Json(body): Json<Correction>,
) -> Result<Json<Finding>, ApiError> {
    Ok(Json(s.app.correct(&study, &id, &body, &actor).await?))
}

/// `POST /api/studies/{study}/findings`: a finding the AI missed (status "added").
pub async fn add(
    State(s): State<AppState>,
    Path(study): Path<String>,
    CurrentUser(actor): CurrentUser,
    Json(body): Json<NewFinding>,
) -> Result<Json<Finding>, ApiError> {
    Ok(Json(s.app.add(&study, &body, &actor).await?))
}

/// `GET /api/studies/{study}/seg-overlay`: the stored SEG's segments, run-length encoded
/// per source slice.
pub async fn seg_overlay(
    State(s): State<AppState>,
    Path(study): Path<String>,
    CurrentUser(actor): CurrentUser,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(s.app.seg_overlay(&study, &actor).await?))
}
