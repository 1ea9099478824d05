//! Who is acting: the [`CurrentUser`] extractor every mutating handler takes.
//!
//! Until accounts exist it resolves to the single local user of the configuration
//! (`[web] local_user`); handlers read identity only from here, so accounts (sessions, tokens,
//! a directory) plug in by changing this extractor alone.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::{ApiError, AppState};

/// The user behind a request (the application layer's type).
pub use lumen_app::Actor;

/// The extractor every mutating handler takes: who acts.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub Actor);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(_parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(CurrentUser(state.config.local_user.clone()))
    }
}
