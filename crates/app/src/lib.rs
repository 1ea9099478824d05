//! The application layer: Lumen's use cases, which every front door (HTTP, DIMSE, the command
//! line) calls instead of reaching into the archive itself.
//!
//! - [`review`]: a study's findings (the AI's proposals and the doctor's decisions), accept,
//!   reject, correct, add, and the SEG overlay the viewer draws;
//! - [`report`]: the report drafted from the reviewed findings, edited, signed, with addenda
//!   and its PDF;
//! - [`ai`]: AI on arrival: the runner that claims each quiet CT series' job, runs the
//!   engine, stores its SEG and SR and records the typed result;
//! - [`receive`]: every arriving object (C-STORE, STOW-RS, import, retrieve);
//! - [`export`]: a study's instances for research and AI training, de-identified
//!   (PS3.15 Annex E) or as stored;
//! - [`query`]: QIDO-RS and C-FIND searches and the worklist;
//! - [`routing`]: `[[route]]` rules, asked by the index writer for every new instance, and
//!   the worker that forwards the outbox to peers with C-STORE.
//!
//! The use cases take an [`Actor`] (who acts) and answer an [`AppError`] whose message is meant
//! for that user: it never holds patient data. This is where permission checks and audit
//! records belong, once, for every front door.

pub mod ai;
mod ai_results;
pub mod export;
pub mod query;
pub mod receive;
pub mod report;
pub mod review;
mod review_geometry;
pub mod routing;
mod seg_overlay;

use std::sync::Arc;

pub use lumen_model::{Finding, FindingId, FindingStatus, Measures};
use lumen_store::Store;
use serde::{Deserialize, Serialize};

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

impl Actor {
    /// Whoever runs a command on the server's own machine (`lumen import`, `lumen
    /// retrieve --data`).
    pub fn command_line() -> Actor {
        Actor {
            user_id: "cli".into(),
            display_name: "command line".into(),
            role: "operator".into(),
            institution: String::new(),
        }
    }

    /// A remote DICOM application entity acting over DIMSE (C-FIND, C-GET, C-MOVE), known
    /// by its calling AE title.
    pub fn dicom_peer(calling_ae: &str, institution: &str) -> Actor {
        Actor {
            user_id: format!("ae:{calling_ae}"),
            display_name: calling_ae.to_string(),
            role: "dicom-peer".into(),
            institution: institution.into(),
        }
    }
}

/// Settings of the use cases.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Institution name printed on reports.
    pub institution: String,
    /// The font reports are rendered with (must show Chinese); signing is refused without.
    pub report_font: Option<lumen_report::pdf::ReportFont>,
}

/// Why a use case did not do what was asked. Messages never hold patient data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The request is malformed or not acceptable; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// Nothing matches (or nothing the actor may see).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the state (a signed report).
    #[error("{0}")]
    Conflict(String),
    /// Something the request needs is not configured here.
    #[error("{0}")]
    Unavailable(String),
    /// The server failed; the cause is for the log, not for the user.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// An internal failure with its cause.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        AppError::Internal(e.to_string())
    }
}

impl From<lumen_store::StoreError> for AppError {
    fn from(e: lumen_store::StoreError) -> Self {
        AppError::internal(e)
    }
}

impl From<lumen_store::ReviewError> for AppError {
    fn from(e: lumen_store::ReviewError) -> Self {
        use lumen_store::ReviewError as R;
        match e {
            R::Signed | R::NotSigned => AppError::Conflict(e.to_string()),
            R::NoFinding(_) => AppError::NotFound(e.to_string()),
            other => AppError::internal(other),
        }
    }
}

impl From<lumen_model::ModelError> for AppError {
    fn from(e: lumen_model::ModelError) -> Self {
        AppError::Invalid(e.to_string())
    }
}

/// The use cases over one archive. Cheap to clone; share one per process.
#[derive(Debug, Clone)]
pub struct App {
    store: Store,
    settings: Arc<Settings>,
}

impl App {
    /// The use cases over `store`.
    pub fn new(store: Store, settings: Settings) -> App {
        App {
            store,
            settings: Arc::new(settings),
        }
    }

    /// The archive (for the front doors' own protocol work: DICOMweb, DIMSE).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}

/// Checks a Study Instance UID from a request.
pub fn check_study(study: &str) -> Result<(), AppError> {
    lumen_dicom::attrs::check_uid("StudyInstanceUID", study)
        .map_err(|e| AppError::Invalid(e.to_string()))
}
