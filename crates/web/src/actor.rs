//! Who is acting: the [`CurrentUser`] extractor every handler of patient data takes.
//!
//! A request proves who it is with `Authorization: Bearer TOKEN` (DICOMweb and API clients)
//! or with the web app's session cookie; both carry a token from `POST /api/auth/login`,
//! checked by `lumen_app::App::authenticate`. A request authenticated by the cookie that
//! changes state (any method but GET, HEAD, OPTIONS) must also carry the session's CSRF
//! token in `X-CSRF-Token` (the web app reads it from the `lumen_csrf` cookie). What the
//! actor may do is then decided by `lumen-app`'s policy, not here.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Method, header};

use crate::{ApiError, AppState};

/// The user behind a request (the application layer's type).
pub use lumen_app::Actor;

/// The session cookie (HttpOnly).
pub const SESSION_COOKIE: &str = "lumen_session";

/// The CSRF cookie (readable by the web app's scripts).
pub const CSRF_COOKIE: &str = "lumen_csrf";

/// The header that must echo the CSRF cookie on state-changing cookie requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The extractor: the authenticated actor of a request, or 401.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub Actor);

/// The source address of a request (the socket peer).
pub(crate) fn source(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// A cookie's value from the request's `Cookie` headers.
pub(crate) fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The bearer token of the `Authorization` header; `Err` when the header is there but
/// not a bearer token.
fn bearer(parts: &Parts) -> Result<Option<&str>, ApiError> {
    let Some(h) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let h = h
        .to_str()
        .map_err(|_| ApiError::Unauthorized("malformed Authorization header".into()))?;
    match h.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(Some(token.trim())),
        _ => Err(ApiError::Unauthorized(
            "the Authorization header must be a Bearer token".into(),
        )),
    }
}

/// Compares two secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Authenticates a request: the actor and whether the cookie was used.
pub(crate) async fn authenticate(
    parts: &Parts,
    state: &AppState,
) -> Result<(Actor, Option<String>), ApiError> {
    let src = source(parts);
    let channel = lumen_app::AuditChannel::Http;
    if let Some(token) = bearer(parts)? {
        let (actor, _) = state.app.authenticate(token, channel, src).await?;
        return Ok((actor, None));
    }
    let Some(token) = cookie(parts, SESSION_COOKIE) else {
        return Err(ApiError::Unauthorized(
            "sign in first (POST /api/auth/login), then send the token as Authorization: Bearer"
                .into(),
        ));
    };
    let (actor, csrf) = state.app.authenticate(token, channel, src).await?;
    Ok((actor, Some(csrf)))
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (actor, csrf) = authenticate(parts, state).await?;
        if let Some(expected) = csrf
            && !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS)
        {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !same_secret(sent, &expected) {
                return Err(ApiError::Forbidden(
                    "missing or wrong X-CSRF-Token header".into(),
                ));
            }
        }
        Ok(CurrentUser(actor))
    }
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", "a"));
    }
}

/// The state of a request with its authenticated actor: what the DICOMweb handlers take.
#[derive(Clone)]
pub struct Acting {
    /// The shared state.
    pub state: AppState,
    /// Who acts.
    pub actor: Actor,
}

impl std::ops::Deref for Acting {
    type Target = AppState;

    fn deref(&self) -> &AppState {
        &self.state
    }
}

impl FromRequestParts<AppState> for Acting {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let CurrentUser(actor) = CurrentUser::from_request_parts(parts, state).await?;
        Ok(Acting {
            state: state.clone(),
            actor,
        })
    }
}
