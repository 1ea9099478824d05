//! The audit trail's record: who did what to which study, when, from where, and with what
//! outcome.
//!
//! One [`AuditEvent`] is written to the index (append-only) for every access to patient
//! data and every security event, and the same event is what `lumen-audit` turns into a
//! DICOM audit message (PS3.15 A.5) for a hospital's audit repository. It is the only
//! record in Lumen that may hold patient identifiers ([`AuditEvent::patient_id`],
//! [`AuditEvent::patient_name`]); logs and errors never do.

use serde::{Deserialize, Serialize};

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditAction {
    /// A search of patient data: QIDO-RS, C-FIND, the worklist.
    Query,
    /// Images or metadata read: WADO-RS, C-GET, C-MOVE (the objects sent).
    Retrieve,
    /// A study opened in the web app (its review, findings, overlay or report).
    View,
    /// Objects received: C-STORE, STOW-RS, `lumen import`, `lumen retrieve --data`.
    Store,
    /// A study's review changed (finding accepted, rejected, corrected, added) or its
    /// report draft edited.
    Review,
    /// A report signed.
    Sign,
    /// An addendum to a signed report.
    Addendum,
    /// Objects exported from the archive (de-identified or not).
    Export,
    /// A successful login.
    Login,
    /// A failed login (wrong password, unknown user, throttled).
    LoginFailed,
    /// A logout (the session and its token revoked).
    Logout,
    /// A password changed.
    PasswordChange,
    /// A user account created.
    UserCreate,
    /// A user's role, organisation or state changed.
    UserChange,
    /// An organisation created or changed.
    OrgChange,
    /// The audit trail itself searched.
    AuditRead,
    /// A request refused for want of credentials or permission, outside the above.
    AccessDenied,
    /// A deletion request carried out (PIPL Art. 47): the ledger salts of a study deleted,
    /// so that its ledger entries can no longer be linked to it.
    Forget,
    /// A patient link (云胶片) created or revoked: who may see a study changed, with the
    /// patient's consent. Openings of a link are recorded as `View` and `Retrieve` by the
    /// link (user `patient-link:<id>`), refused ones as `AccessDenied`.
    PatientLink,
}

impl AuditAction {
    /// The serialised name (`login-failed`).
    pub fn as_str(&self) -> &'static str {
        match self {
            AuditAction::Query => "query",
            AuditAction::Retrieve => "retrieve",
            AuditAction::View => "view",
            AuditAction::Store => "store",
            AuditAction::Review => "review",
            AuditAction::Sign => "sign",
            AuditAction::Addendum => "addendum",
            AuditAction::Export => "export",
            AuditAction::Login => "login",
            AuditAction::LoginFailed => "login-failed",
            AuditAction::Logout => "logout",
            AuditAction::PasswordChange => "password-change",
            AuditAction::UserCreate => "user-create",
            AuditAction::UserChange => "user-change",
            AuditAction::OrgChange => "org-change",
            AuditAction::AuditRead => "audit-read",
            AuditAction::AccessDenied => "access-denied",
            AuditAction::Forget => "forget",
            AuditAction::PatientLink => "patient-link",
        }
    }

    /// Every action, in declaration order.
    pub const ALL: [AuditAction; 19] = [
        AuditAction::Query,
        AuditAction::Retrieve,
        AuditAction::View,
        AuditAction::Store,
        AuditAction::Review,
        AuditAction::Sign,
        AuditAction::Addendum,
        AuditAction::Export,
        AuditAction::Login,
        AuditAction::LoginFailed,
        AuditAction::Logout,
        AuditAction::PasswordChange,
        AuditAction::UserCreate,
        AuditAction::UserChange,
        AuditAction::OrgChange,
        AuditAction::AuditRead,
        AuditAction::AccessDenied,
        AuditAction::Forget,
        AuditAction::PatientLink,
    ];

    /// True for security events (logins, accounts), as opposed to patient data access.
    pub fn is_security_event(&self) -> bool {
        matches!(
            self,
            AuditAction::Login
                | AuditAction::LoginFailed
                | AuditAction::Logout
                | AuditAction::PasswordChange
                | AuditAction::UserCreate
                | AuditAction::UserChange
                | AuditAction::OrgChange
                | AuditAction::AccessDenied
        )
    }
}

impl std::str::FromStr for AuditAction {
    type Err = crate::ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AuditAction::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| crate::ModelError::Invalid(format!("unknown audit action {s:?}")))
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditOutcome {
    /// Done.
    Success,
    /// Refused: no credentials, no permission, throttled.
    Denied,
    /// Attempted and failed (bad input, server error).
    Failure,
}

impl AuditOutcome {
    /// The serialised name.
    pub fn as_str(&self) -> &'static str {
        match self {
            AuditOutcome::Success => "success",
            AuditOutcome::Denied => "denied",
            AuditOutcome::Failure => "failure",
        }
    }
}

impl std::str::FromStr for AuditOutcome {
    type Err = crate::ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "success" => Ok(AuditOutcome::Success),
            "denied" => Ok(AuditOutcome::Denied),
            "failure" => Ok(AuditOutcome::Failure),
            _ => Err(crate::ModelError::Invalid(format!(
                "unknown audit outcome {s:?}"
            ))),
        }
    }
}

/// Which front door the request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditChannel {
    /// HTTP: DICOMweb, the API, the web app.
    Http,
    /// DICOM (DIMSE) associations.
    Dicom,
    /// The command line on the server's machine.
    Cli,
    /// Lumen itself (the AI runner, the routing worker).
    System,
}

impl AuditChannel {
    /// The serialised name.
    pub fn as_str(&self) -> &'static str {
        match self {
            AuditChannel::Http => "http",
            AuditChannel::Dicom => "dicom",
            AuditChannel::Cli => "cli",
            AuditChannel::System => "system",
        }
    }
}

/// One entry of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Sequence number in the index (0 before it is stored).
    #[serde(default)]
    pub seq: i64,
    /// When, as RFC 3339 UTC with milliseconds (`2026-12-02T17:03:04.123Z`).
    pub time: String,
    /// Who: the user name, `ae:TITLE` for a DICOM peer, `cli` for the command line; for a
    /// failed login, the name that was tried.
    pub user: String,
    /// The actor's role (`radiologist`, `dicom-peer`...), empty when unknown.
    pub role: String,
    /// The actor's organisation id, empty when unknown.
    pub org: String,
    /// What was done.
    pub action: AuditAction,
    /// How it ended.
    pub outcome: AuditOutcome,
    /// The front door.
    pub channel: AuditChannel,
    /// The source network address (`192.0.2.7`), when known.
    pub source: Option<String>,
    /// The study concerned.
    pub study_uid: Option<String>,
    /// The series concerned.
    pub series_uid: Option<String>,
    /// The patient's ID (only here, never in logs).
    pub patient_id: Option<String>,
    /// The patient's name (only here, never in logs).
    pub patient_name: Option<String>,
    /// What was asked, in a few words (`GET /dicom-web/studies`, `C-FIND STUDY`, `user
    /// dr-li role radiologist`); never a secret.
    pub detail: String,
}
