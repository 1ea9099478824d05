//! The sharing API (issue 13): `POST /api/shares` (share a study with a consortium member,
//! with purpose and consent), `GET /api/shares[?study=UID]`, `DELETE /api/shares/{id}`
//! (revoke); and the node-to-node endpoints under `/consortium/`, authenticated by RFC 9421
//! signatures with the members' node keys (`lumen_app::App::verify_node`): a refused
//! request is audited and answered 401 without detail.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use lumen_app::share::{NewShare, NodeCaller};
use lumen_share::wire::{RevokeNotice, ShareNotice};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::actor::CurrentUser;
use crate::{ApiError, AppState};

/// Largest body of a node request (a STOW-RS batch of 20 instances).
pub const NODE_BODY_LIMIT: usize = 1 << 30;

/// `POST /api/shares`: 201 with the share (`id`, ...).
pub async fn create(
    State(s): State<AppState>,
    CurrentUser(actor): CurrentUser,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req: NewShare = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("malformed share request: {e}")))?;
    let share = s.app.create_share(&actor, &req).await?;
    Ok((StatusCode::CREATED, Json(json!(share))))
}

/// Query of `GET /api/shares`.
#[derive(Debug, Deserialize)]
pub struct ListParams {
    study: Option<String>,
}

/// `GET /api/shares`: the organisation's shares (of one study with `?study=`), and the
/// consortium's members to share with.
pub async fn list(
    State(s): State<AppState>,
    CurrentUser(actor): CurrentUser,
    Query(p): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let shares = s.app.list_shares(&actor, p.study.as_deref()).await?;
    let members: Vec<Value> = s
        .app
        .settings()
        .consortium
        .as_deref()
        .map(|c| {
            c.members
                .iter()
                .map(|m| json!({"id": m.id, "name": m.name}))
                .collect()
        })
        .unwrap_or_default();
    Ok(Json(json!({ "shares": shares, "members": members })))
}

/// Query of `DELETE /api/shares/{id}`.
#[derive(Debug, Deserialize)]
pub struct RevokeParams {
    /// `consent-withdrawn`: the patient withdrew the consent (recorded as a consent change).
    reason: Option<String>,
}

/// `DELETE /api/shares/{id}[?reason=consent-withdrawn]`: revokes the share.
pub async fn revoke(
    State(s): State<AppState>,
    CurrentUser(actor): CurrentUser,
    Path(id): Path<String>,
    Query(p): Query<RevokeParams>,
) -> Result<Json<Value>, ApiError> {
    let withdrawn = match p.reason.as_deref() {
        None | Some("") => false,
        Some("consent-withdrawn") => true,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "reason must be consent-withdrawn (or absent)".into(),
            ));
        }
    };
    let share = s.app.revoke_share_for(&actor, &id, withdrawn).await?;
    Ok(Json(json!(share)))
}

/// Verifies a node request: the member who signed it.
async fn caller(
    s: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    peer: Option<String>,
) -> Result<NodeCaller, ApiError> {
    let target = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| uri.path().to_string());
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Ok(s.app
        .verify_node(method.as_str(), &target, header, body, peer)
        .await?)
}

/// The source address of a request, when known.
pub struct Peer(Option<String>);

impl axum::extract::FromRequestParts<AppState> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Peer(crate::actor::source(parts)))
    }
}

/// `POST /consortium/shares`: a member's share notice (the grant).
pub async fn notice(
    State(s): State<AppState>,
    peer: Peer,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let c = caller(&s, &method, &uri, &headers, &body, peer.0).await?;
    let notice: ShareNotice = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("malformed share notice: {e}")))?;
    s.app.receive_share_notice(&c, &notice).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /consortium/shares/{id}`: a share's status, for the member it was made to.
pub async fn status(
    State(s): State<AppState>,
    peer: Peer,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let c = caller(&s, &method, &uri, &headers, b"", peer.0).await?;
    Ok(Json(json!(s.app.share_status_for(&c, &id).await?)))
}

/// `POST /consortium/shares/{id}/revoke`: the origin revoked a share.
pub async fn revoked(
    State(s): State<AppState>,
    peer: Peer,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let c = caller(&s, &method, &uri, &headers, &body, peer.0).await?;
    let notice: RevokeNotice = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("malformed revocation: {e}")))?;
    if notice.share_id != id {
        return Err(ApiError::BadRequest(
            "the share id differs from the URL".into(),
        ));
    }
    s.app.receive_revoke(&c, &notice).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /consortium/studies/...`: members read nothing from this node (shared studies are
/// pushed to them): a signed request is answered as for an absent study (and audited), an
/// unsigned or badly signed one 401.
pub async fn no_reads(
    State(s): State<AppState>,
    peer: Peer,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let c = caller(&s, &method, &uri, &headers, b"", peer.0).await?;
    s.app.node_read_refused(&c, uri.path()).await;
    Err(ApiError::NotFound("no such study".into()))
}

/// `POST /consortium/studies/{study}`: STOW-RS from a member, into a study it shared with
/// this node, or its report of a study this node shared with it. The headers are checked
/// before the body is read; the body (at most [`NODE_BODY_LIMIT`]) is then read whole,
/// since the signature covers its digest.
pub async fn store(
    State(s): State<AppState>,
    peer: Peer,
    Path(study): Path<String>,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let (method, uri, headers) = (parts.method, parts.uri, parts.headers);
    let target = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| uri.path().to_string());
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    s.app
        .precheck_node(method.as_str(), &target, header, peer.0.clone())
        .await?;
    let body = axum::body::to_bytes(body, NODE_BODY_LIMIT)
        .await
        .map_err(|_| ApiError::TooLarge("node request body too large or unreadable".into()))?;
    let c = caller(&s, &method, &uri, &headers, &body, peer.0).await?;
    let mode = s.app.node_may_store(&c, &study).await?;
    let url_study = study.clone();
    let app = s.app.clone();
    let ingest = move |bytes: Bytes| {
        let (app, c, study, mode) = (app.clone(), c.clone(), study.clone(), mode.clone());
        async move { app.receive_from_node(&c, &study, &mode, bytes).await }
    };
    let r = crate::stow::store_with(
        s.clone(),
        headers,
        Some(url_study),
        Body::from(body),
        ingest,
    )
    .await?;
    Ok(r.into_response())
}
