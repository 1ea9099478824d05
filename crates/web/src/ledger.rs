//! The ledger's front door: the published log, read-only and public (it holds no patient
//! data), at `/ledger/checkpoint` and `/ledger/tile/...` in the C2SP tlog-tiles layout, and
//! `GET /api/ledger/entries/{index}/proof`, an entry's inclusion proof in the latest
//! checkpoint, `GET /api/ledger/status` (its age, cosignatures and freshness); and, on a
//! node that witnesses others, `POST /ledger/add-checkpoint`
//! (c2sp.org/tlog-witness), authenticated by the log's signature on the checkpoint.

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
    if path == "checkpoint" {
        // When the node wrote it: an auditor's measure of freshness without cosignatures.
        if let Some(written) = state.app.ledger_checkpoint_written().await? {
            let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(written);
            if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(time)) {
                r.headers_mut().insert(header::LAST_MODIFIED, v);
            }
        }
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(r)
}

/// `GET /api/ledger/status`: the latest checkpoint's size, root, age, verified
/// cosignatures, whether the quorum is reached and whether it is fresh (public, as the
/// checkpoint is).
pub async fn status(
    State(state): State<AppState>,
) -> Result<Json<lumen_app::ledger::LedgerStatus>, ApiError> {
    Ok(Json(state.app.ledger_status().await?))
}

/// `GET /api/ledger/entries/{index}/proof`: the entry, its leaf hash and its inclusion
/// proof in the latest checkpoint (public, as the tiles are).
pub async fn proof(
    State(state): State<AppState>,
    Path(index): Path<u64>,
) -> Result<Json<lumen_app::ledger::LedgerProof>, ApiError> {
    Ok(Json(state.app.ledger_proof(index).await?))
}

/// `POST /ledger/add-checkpoint`: the C2SP tlog-witness call. 200 with the cosignature
/// lines; 409 with this witness's size (`text/x.tlog.size`); 400, 403, 404 or 422 with
/// the reason.
pub async fn add_checkpoint(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    use axum::http::StatusCode;
    use lumen_ledger::witness::WitnessError;
    let answer = state.app.witness_add_checkpoint(&body).await?;
    let (status, content_type, body) = match answer {
        Ok(lines) => (StatusCode::OK, "text/plain; charset=utf-8", lines),
        Err(WitnessError::Conflict { size }) => (
            StatusCode::CONFLICT,
            "text/x.tlog.size",
            format!("{size}\n"),
        ),
        Err(e) => (
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
            "text/plain; charset=utf-8",
            format!("{e}\n"),
        ),
    };
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(r)
}
