//! The ledger's front door: the published log, read-only and public (it holds no patient
//! data), at `/ledger/checkpoint` and `/ledger/tile/...` in the C2SP tlog-tiles layout, and
//! `GET /api/ledger/entries/{index}/proof`, an entry's inclusion proof in the latest
//! checkpoint.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::{ApiError, AppState};

/// `GET /ledger/checkpoint`: the latest signed checkpoint.
pub async fn checkpoint(State(state): State<AppState>) -> Result<Response, ApiError> {
    resource(&state, "checkpoint".to_string()).await
}

/// `GET /ledger/tile/{*path}`: a hash tile or entry bundle. Only C2SP paths are served
/// (anything else, `..` included, is not found).
pub async fn tile(
    State(state): State<AppState>,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    resource(&state, format!("tile/{path}")).await
}

async fn resource(state: &AppState, path: String) -> Result<Response, ApiError> {
    let Some(bytes) = state.app.ledger_resource(&path).await? else {
        return Err(ApiError::NotFound(format!("no ledger resource {path}")));
    };
    let (content_type, cache) = if path == "checkpoint" {
        // Mutable: cached for a moment at most.
        ("text/plain; charset=utf-8", "no-cache")
    } else {
        // Immutable once written.
        (
            "application/octet-stream",
            "public, max-age=31536000, immutable",
        )
    };
    let mut r = bytes.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(r)
}

/// `GET /api/ledger/entries/{index}/proof`: the entry, its leaf hash and its inclusion
/// proof in the latest checkpoint (public, as the tiles are).
pub async fn proof(
    State(state): State<AppState>,
    Path(index): Path<u64>,
) -> Result<Json<lumen_app::ledger::LedgerProof>, ApiError> {
    Ok(Json(state.app.ledger_proof(index).await?))
}
