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
//! - [`film`]: patient links (云胶片): a short-lived link that opens a read-only viewer of
//!   one study and its signed report without an account;
//! - [`ledger`]: the events recorded on the node's tamper-evident ledger, the sequencer that
//!   publishes them, and inclusion proofs;
//! - [`share`]: sharing studies with consortium members (shares, grants, revocation, the
//!   worker that pushes them signed, the report flowing back);
//! - [`routing`]: `[[route]]` rules, asked by the index writer for every new instance, and
//!   the worker that forwards the outbox to peers with C-STORE.
//!
//! The use cases take an [`Actor`] (who acts) and answer an [`AppError`] whose message is meant
//! for that user: it never holds patient data. This is where permission checks and audit
//! records belong, once, for every front door.

pub mod ai;
mod ai_results;
pub mod audit;
pub mod auth;
pub mod export;
pub mod film;
mod guarded;
pub mod ledger;
pub mod metrics;
pub mod patients;
pub mod policy;
pub mod query;
pub mod receive;
pub mod report;
pub mod review;
mod review_geometry;
pub mod routing;
mod seg_overlay;
pub mod share;

use std::sync::Arc;

pub use lumen_model::{AuditAction, AuditChannel, AuditEvent, AuditOutcome};
pub use lumen_model::{Finding, FindingId, FindingStatus, Measures};
use lumen_store::Store;
pub use policy::{Permission, Role};
use serde::{Deserialize, Serialize};

/// The user or system behind a request: what the policy ([`policy`]) decides on and what
/// the audit trail records. Front doors obtain it from [`auth`] (a session or token), from
/// the DICOM association ([`App::dicom_actor`]) or as the command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Stable user id: the user name, `ae:TITLE` for a DICOM peer, `cli`, `system`.
    pub user_id: String,
    /// Name shown in the app and printed as signer.
    pub display_name: String,
    /// What the actor may do.
    pub role: Role,
    /// The organisation acted for (its id).
    pub org: String,
    /// The organisation's name (printed on reports).
    pub institution: String,
    /// Which front door the request came through.
    pub channel: AuditChannel,
    /// The source network address, when known.
    pub source: Option<String>,
    /// The session's token hash (for logout and password change), when there is one.
    #[serde(skip)]
    pub session: Option<String>,
    /// The account must change its password before doing anything else.
    pub must_change_password: bool,
}

impl Actor {
    /// Whoever runs a command on the server's own machine (`lumen import`, `lumen
    /// export`, `lumen retrieve --data`), acting for organisation `org`.
    pub fn command_line(org: &str) -> Actor {
        Actor {
            user_id: "cli".into(),
            display_name: "command line".into(),
            role: Role::Operator,
            org: org.into(),
            institution: String::new(),
            channel: AuditChannel::Cli,
            source: None,
            session: None,
            must_change_password: false,
        }
    }

    /// Lumen itself (the AI runner, the routing worker) for organisation `org`.
    pub fn system(org: &str) -> Actor {
        Actor {
            user_id: "system".into(),
            display_name: "Lumen".into(),
            role: Role::System,
            org: org.into(),
            institution: String::new(),
            channel: AuditChannel::System,
            source: None,
            session: None,
            must_change_password: false,
        }
    }

    /// A remote DICOM application entity, known by its calling AE title, acting for the
    /// organisation its title maps to.
    pub fn dicom_peer(calling_ae: &str, org: &str, source: Option<String>) -> Actor {
        Actor {
            user_id: format!("ae:{calling_ae}"),
            display_name: calling_ae.to_string(),
            role: Role::DicomPeer,
            org: org.into(),
            institution: String::new(),
            channel: AuditChannel::Dicom,
            source,
            session: None,
            must_change_password: false,
        }
    }
}

/// Settings of the use cases.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Institution name printed on reports (the node's own organisation's name).
    pub institution: String,
    /// The node's own organisation: unmapped AE titles act for it, and its admins manage
    /// every organisation.
    pub node_org: String,
    /// The organisation of each calling AE title (`[[ae]]` tables); unmapped titles act
    /// for [`Settings::node_org`].
    pub ae_orgs: std::collections::HashMap<String, String>,
    /// How long a session or token lives.
    pub session_ttl: std::time::Duration,
    /// The font reports are rendered with (must show Chinese); signing is refused without.
    pub report_font: Option<lumen_report::pdf::ReportFont>,
    /// The verifier key of this node's ledger (`name+keyid+base64`), when it keeps one.
    pub ledger_vkey: Option<String>,
    /// This node as a witness of other nodes' ledgers, when it is one.
    pub witness: Option<Arc<ledger::WitnessRole>>,
    /// The witnesses this node's log asks to cosign (their cosignature/v1 keys), for the
    /// ledger's status.
    pub ledger_witnesses: Vec<lumen_ledger::cosign::CosignatureVerifier>,
    /// How many of them make a checkpoint final.
    pub ledger_quorum: usize,
    /// The age past which the latest checkpoint is flagged as not fresh
    /// (`[ledger] max_checkpoint_age_s`).
    pub ledger_max_age: std::time::Duration,
    /// This node's consortium (`[node]`, `[[consortium.member]]`), when it is in one.
    pub consortium: Option<Arc<lumen_share::Consortium>>,
    /// Studies shared by rule as they arrive (`[[share.rule]]`).
    pub share_rules: Vec<share::ShareRule>,
    /// How this node's own patients are matched to consortium patients in shares
    /// (`[consortium] patient_match`; by default only by a user's explicit link).
    pub patient_match: patients::PatientMatch,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            institution: "Lumen".into(),
            node_org: "local".into(),
            ae_orgs: Default::default(),
            session_ttl: std::time::Duration::from_secs(12 * 3600),
            report_font: None,
            ledger_vkey: None,
            witness: None,
            ledger_witnesses: Vec::new(),
            ledger_quorum: 0,
            ledger_max_age: ledger::DEFAULT_MAX_AGE,
            consortium: None,
            share_rules: Vec::new(),
            patient_match: patients::PatientMatch::None,
        }
    }
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
    /// No valid credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// The actor may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Too many attempts; try again later.
    #[error("{0}")]
    Throttled(String),
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
    auditor: audit::Auditor,
    throttle: Arc<auth::Throttle>,
    sessions: Arc<auth::SessionCache>,
    /// Witness decisions run one at a time (check and record are atomic).
    witness_lock: Arc<tokio::sync::Mutex<()>>,
    /// Sharing's nonces and cross-site views seen.
    shares: Arc<share::ShareState>,
}

impl App {
    /// The use cases over `store`. Call within a Tokio runtime (the audit trail's writer
    /// task starts here).
    pub fn new(store: Store, settings: Settings) -> App {
        App {
            auditor: audit::Auditor::start(store.clone()),
            store,
            settings: Arc::new(settings),
            throttle: Arc::default(),
            sessions: Arc::default(),
            witness_lock: Arc::default(),
            shares: Arc::default(),
        }
    }

    /// The actor of a DICOM association from `calling_ae` at `source`.
    pub fn dicom_actor(&self, calling_ae: &str, source: Option<String>) -> Actor {
        let org = self
            .settings
            .ae_orgs
            .get(calling_ae)
            .unwrap_or(&self.settings.node_org);
        Actor::dicom_peer(calling_ae, org, source)
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
