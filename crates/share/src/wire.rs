//! The JSON messages of the consortium protocol.
//!
//! - `POST {member}/consortium/shares`: a [`ShareNotice`] from the origin (the grant);
//! - `POST {member}/consortium/studies/{uid}`: STOW-RS of the study's instances (origin to
//!   member), or of the signed report's objects (member back to origin);
//! - `POST {member}/consortium/shares/{id}/revoke`: a [`RevokeNotice`];
//! - `GET {origin}/consortium/shares/{id}`: the share's [`ShareStatus`] (404 when there is
//!   no such share to the caller).

use serde::{Deserialize, Serialize};

/// How the patient's consent to a share was obtained (PIPL Art. 23 and 29).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsentBasis {
    /// Separate consent naming the recipient, purpose and data, recorded by the sender.
    Consent,
    /// No consent: an emergency (PIPL Art. 13(4)), recorded as such.
    Emergency,
    /// Consent given at registration for shares by a configured rule.
    RecordedAtRegistration,
}

impl ConsentBasis {
    /// The serialised name.
    pub fn as_str(&self) -> &'static str {
        match self {
            ConsentBasis::Consent => "consent",
            ConsentBasis::Emergency => "emergency",
            ConsentBasis::RecordedAtRegistration => "recorded-at-registration",
        }
    }

    /// Parses the serialised name.
    pub fn parse(s: &str) -> Option<ConsentBasis> {
        [
            ConsentBasis::Consent,
            ConsentBasis::Emergency,
            ConsentBasis::RecordedAtRegistration,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// A share as the origin announces it to the recipient. It names no patient: the
/// instances that follow carry the data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareNotice {
    /// The share's id at the origin.
    pub share_id: String,
    /// The study shared.
    pub study_uid: String,
    /// The sending node's id.
    pub origin: String,
    /// The recipient's id (checked by the recipient: a notice for another node is refused).
    pub to: String,
    /// Why (shown to the recipient's radiologists).
    pub purpose: String,
    /// On what basis.
    pub consent: ConsentBasis,
    /// How many instances will follow.
    pub instances: u64,
    /// The patient's consortium ID (a pseudonym the origin assigned), for the recipient's
    /// patient index; `None` for a study without a patient ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
}

/// A share revoked at the origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeNotice {
    /// The share's id at the origin.
    pub share_id: String,
    /// The study.
    pub study_uid: String,
}

/// A share's state as the origin answers a member's re-check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareStatus {
    /// The share's id.
    pub share_id: String,
    /// `active` or `revoked`.
    pub status: String,
}
