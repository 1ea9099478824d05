//! Who is acting: the [`Actor`] extractor every mutating handler takes.
//!
//! Until accounts exist it resolves to the single local user of the configuration
//! (`[web] local_user`); handlers read identity only from here, so accounts (sessions, tokens,
//! a directory) plug in by changing this extractor alone.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};

use crate::{ApiError, AppState};

/// The user behind a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Stable user id.
    pub user_id: String,
    /// Name shown in the app and printed as signer.
    pub display_name: String,
    /// Role (`radiologist`).
    pub role: String,
    /// The user's institution.
    pub institution: String,
}

impl Actor {
    /// The single local user of a deployment without accounts.
    pub fn local(display_name: &str, institution: &str) -> Actor {
        Actor {
            user_id: "local".into(),
            display_name: display_name.into(),
            role: "radiologist".into(),
            institution: institution.into(),
        }
    }
}

impl FromRequestParts<AppState> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(_parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(state.config.local_user.clone())
    }
}
