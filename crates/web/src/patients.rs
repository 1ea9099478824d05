//! The consortium patient index over HTTP: `GET /api/studies/{uid}/priors` (the patient's
//! other studies here, through its IDs at other members) and
//! `POST /api/studies/{uid}/consortium-patient` with `{"patient_id": ..}` (a user's explicit
//! link of this node's patient to the study's consortium patient); and
//! `GET /api/studies/{uid}/shared` (a study shared with this node: what has arrived of it,
//! and whether its origin answers).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::actor::CurrentUser;
use crate::{ApiError, AppState};

/// `GET /api/studies/{uid}/priors`: `{"priors": [study, ...]}`, newest first.
pub async fn priors(
    State(s): State<AppState>,
    CurrentUser(actor): CurrentUser,
    Path(study): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let priors = s.app.priors(&actor, &study).await?;
    Ok(Json(json!({ "priors": priors })))
}

/// Body of `POST /api/studies/{uid}/consortium-patient`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// This node's patient ID to link.
    patient_id: String,
}

/// `POST /api/studies/{uid}/consortium-patient`: `{"consortium_id": ..}`.
pub async fn link(
    State(s): State<AppState>,
    CurrentUser(actor): CurrentUser,
    Path(study): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let req: LinkRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("malformed link request: {e}")))?;
    let cid = s.app.link_patient(&actor, &study, &req.patient_id).await?;
    Ok(Json(json!({ "consortium_id": cid })))
}

/// `GET /api/studies/{uid}/shared`: `{"shared": status}` (`null` for a study not shared
/// with this node).
pub async fn shared(
    State(s): State<AppState>,
    CurrentUser(actor): CurrentUser,
    Path(study): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let status = s.app.shared_study_status(&actor, &study).await?;
    Ok(Json(json!({ "shared": status })))
}
