//! Who may do what: roles, permissions and the organisation boundary, decided here once for
//! every front door (HTTP, DICOM, the command line). Deny by default: a role may do only what
//! [`Role::may`] lists.
//!
//! The policy reads only an [`Actor`]'s role and organisation, never how it authenticated,
//! so another identity source (OpenID Connect against a hospital's Keycloak, say) plugs in
//! by producing an [`Actor`] (see [`crate::auth`]) without a change here.
//!
//! | permission     | admin | radiologist | technologist | referrer | DICOM peer | command line |
//! |----------------|:-----:|:-----------:|:------------:|:--------:|:----------:|:------------:|
//! | Query          |       | yes         | yes          | yes      | yes        | yes          |
//! | Worklist       |       | yes         | yes          |          |            |              |
//! | Retrieve       |       | yes         | yes          | yes      | yes        | yes          |
//! | View (review)  |       | yes         |              |          |            |              |
//! | Review, edit   |       | yes         |              |          |            |              |
//! | ReadReport     |       | yes (draft) |              | signed   |            |              |
//! | Sign, addendum |       | yes         |              |          |            |              |
//! | Store          |       |             | yes          |          | yes        | yes          |
//! | Export         |       | yes         |              |          |            | yes          |
//! | RequeueAi      |       | yes         |              |          |            | yes          |
//! | Share          |       | yes         | yes          |          |            |              |
//! | ManageUsers    | yes   |             |              |          |            | yes          |
//! | ReadAudit      | yes   |             |              |          |            | yes          |
//! | PatientLink    |       | yes         | yes          |          |            |              |
//!
//! A patient link (云胶片, [`crate::film`]) acts as [`Role::PatientLink`], which may do nothing
//! here: its token opens only the film endpoints of its one study.
//!
//! A consortium node (`Role::Node`, acting through a signed request) may only store, and
//! `crate::share` decides into which study (one it shared with this node, or its report of
//! one this node shared with it).
//!
//! Every study belongs to one organisation; an actor sees only its own organisation's
//! studies (the command line, run by whoever administers the machine, sees all). A study of
//! another organisation is answered exactly as an absent one.

use serde::{Deserialize, Serialize};

use crate::{Actor, App, AppError, AuditAction, AuditOutcome};

/// A role: what an actor may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Users, organisations and the audit trail; no patient data.
    Admin,
    /// Reads, reviews, reports and signs.
    Radiologist,
    /// Sends and imports studies, sees the worklist and the images; never signs.
    Technologist,
    /// Reads the images and the signed reports of their organisation's studies.
    Referrer,
    /// A remote DICOM node (C-STORE, C-FIND, C-GET, C-MOVE, as `[access]` allows).
    DicomPeer,
    /// The command line on the server's machine.
    Operator,
    /// Lumen itself (AI runner, routing worker).
    System,
    /// A patient opening a patient link (云胶片): no permission at all; the link's token
    /// itself scopes what it opens ([`crate::film`]).
    PatientLink,
    /// A consortium member, through a signed node request: stores what it shared with this
    /// node, or its report of what this node shared with it (`lumen_app::share` checks
    /// which); nothing else.
    Node,
}

impl Role {
    /// The serialised name (`radiologist`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Radiologist => "radiologist",
            Role::Technologist => "technologist",
            Role::Referrer => "referrer",
            Role::DicomPeer => "dicom-peer",
            Role::Operator => "operator",
            Role::System => "system",
            Role::PatientLink => "patient-link",
            Role::Node => "node",
        }
    }

    /// The roles a user account may have.
    pub const ACCOUNT_ROLES: [Role; 4] = [
        Role::Admin,
        Role::Radiologist,
        Role::Technologist,
        Role::Referrer,
    ];

    /// Whether this role allows `p` (organisation aside).
    pub fn may(&self, p: Permission) -> bool {
        use Permission as P;
        match self {
            Role::Admin => matches!(p, P::ManageUsers | P::ReadAudit),
            Role::Radiologist => matches!(
                p,
                P::Query
                    | P::Worklist
                    | P::Retrieve
                    | P::View
                    | P::Review
                    | P::ReadReport
                    | P::ReadDraft
                    | P::Sign
                    | P::Export
                    | P::RequeueAi
                    | P::PatientLink
                    | P::Share
            ),
            Role::Technologist => matches!(
                p,
                P::Query | P::Worklist | P::Retrieve | P::Store | P::PatientLink | P::Share
            ),
            Role::Referrer => matches!(p, P::Query | P::Retrieve | P::ReadReport),
            Role::DicomPeer => matches!(p, P::Query | P::Retrieve | P::Store),
            Role::Operator => matches!(
                p,
                P::Query
                    | P::Retrieve
                    | P::Store
                    | P::Export
                    | P::RequeueAi
                    | P::ManageUsers
                    | P::ReadAudit
                    | P::Forget
            ),
            Role::System => !matches!(
                p,
                P::ManageUsers | P::ReadAudit | P::Forget | P::PatientLink
            ),
            Role::PatientLink => false,
            Role::Node => matches!(p, P::Store),
        }
    }

    /// Whether the role sees every organisation's studies.
    pub fn all_orgs(&self) -> bool {
        matches!(self, Role::Operator | Role::System)
    }
}

impl std::str::FromStr for Role {
    type Err = AppError;

    fn from_str(s: &str) -> Result<Self, AppError> {
        Role::ACCOUNT_ROLES
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                AppError::Invalid(
                    "role must be admin, radiologist, technologist or referrer".into(),
                )
            })
    }
}

/// Something an actor may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Search studies, series, instances (QIDO-RS, C-FIND).
    Query,
    /// The radiologist's worklist.
    Worklist,
    /// Read images and metadata (WADO-RS, C-GET, C-MOVE).
    Retrieve,
    /// Open a study's review in the web app (findings, overlay, AI results).
    View,
    /// Change a review or a report draft.
    Review,
    /// Read a study's signed report.
    ReadReport,
    /// Read a report draft (not yet signed).
    ReadDraft,
    /// Sign a report or add an addendum.
    Sign,
    /// Store objects (C-STORE, STOW-RS, import).
    Store,
    /// Export a study.
    Export,
    /// Ask the AI to read a study again.
    RequeueAi,
    /// Manage users and organisations.
    ManageUsers,
    /// Search the audit trail.
    ReadAudit,
    /// Carry out a deletion request (PIPL Art. 47): delete a study's ledger salts.
    Forget,
    /// Create, list and revoke a study's patient links (云胶片).
    PatientLink,
    /// Share a study with a consortium member, and revoke the share.
    Share,
}

/// What the policy learnt about a study an actor may act on: for the audit record.
#[derive(Debug, Clone, Default)]
pub struct StudyAccess {
    /// The study.
    pub study_uid: String,
    /// Its patient's ID (for the audit record only).
    pub patient_id: Option<String>,
    /// Its patient's name (for the audit record only).
    pub patient_name: Option<String>,
}

/// The answer to an actor who may not see a study: the same as for an absent study.
pub(crate) fn no_study() -> AppError {
    AppError::NotFound("no such study".into())
}

impl App {
    /// Refuses (and audits the refusal) unless `actor`'s role allows `p`.
    pub async fn require(
        &self,
        actor: &Actor,
        p: Permission,
        action: AuditAction,
        detail: &str,
    ) -> Result<(), AppError> {
        if actor.must_change_password {
            return Err(AppError::Forbidden(
                "the password must be changed first (POST /api/auth/password)".into(),
            ));
        }
        if actor.role.may(p) {
            return Ok(());
        }
        self.audit_event(actor, action, AuditOutcome::Denied, None, detail)
            .await;
        Err(AppError::Forbidden(format!(
            "the {} role may not do this",
            actor.role.as_str()
        )))
    }

    /// Checks that `actor` may do `p` on `study`: the role allows it and the study is of
    /// the actor's organisation. An absent study and another organisation's are refused
    /// alike (404), and audited.
    pub async fn authorize_study(
        &self,
        actor: &Actor,
        p: Permission,
        action: AuditAction,
        study: &str,
        detail: &str,
    ) -> Result<StudyAccess, AppError> {
        crate::check_study(study)?;
        self.require(actor, p, action, detail).await?;
        let found = self.store.study_access(study).await?;
        let visible = match &found {
            Some((o, ..)) => actor.role.all_orgs() || *o == actor.org,
            None => false,
        };
        if !visible {
            let mut e = self.event(actor, action, AuditOutcome::Denied, detail);
            e.study_uid = Some(study.to_string());
            self.auditor.record(e).await;
            return Err(no_study());
        }
        let (patient_id, patient_name) = match found {
            Some((_, id, name)) => (Some(id), Some(name)),
            None => (None, None),
        };
        Ok(StudyAccess {
            study_uid: study.to_string(),
            patient_id,
            patient_name,
        })
    }

    /// The organisation an actor's searches are narrowed to (`None`: every one).
    pub fn org_scope(&self, actor: &Actor) -> Option<String> {
        (!actor.role.all_orgs()).then(|| actor.org.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Permission; 15] = [
        Permission::Query,
        Permission::Worklist,
        Permission::Retrieve,
        Permission::View,
        Permission::Review,
        Permission::ReadReport,
        Permission::ReadDraft,
        Permission::Sign,
        Permission::Store,
        Permission::Export,
        Permission::RequeueAi,
        Permission::ManageUsers,
        Permission::ReadAudit,
        Permission::PatientLink,
        Permission::Share,
    ];

    fn allowed(r: Role) -> Vec<Permission> {
        ALL.into_iter().filter(|p| r.may(*p)).collect()
    }

    #[test]
    fn roles_allow_what_the_table_says_and_nothing_else() {
        use Permission as P;
        assert_eq!(allowed(Role::Admin), [P::ManageUsers, P::ReadAudit]);
        assert_eq!(
            allowed(Role::Technologist),
            [
                P::Query,
                P::Worklist,
                P::Retrieve,
                P::Store,
                P::PatientLink,
                P::Share
            ]
        );
        // A consortium node only stores (what the share rules let it).
        assert_eq!(allowed(Role::Node), [P::Store]);
        assert_eq!(
            allowed(Role::Referrer),
            [P::Query, P::Retrieve, P::ReadReport]
        );
        assert!(!Role::Radiologist.may(P::Store) && !Role::Radiologist.may(P::ManageUsers));
        assert!(Role::Radiologist.may(P::Sign));
        // Only radiologists sign; nobody but admins (and the machine's operator) reads the
        // audit trail.
        for r in [
            Role::Admin,
            Role::Technologist,
            Role::Referrer,
            Role::DicomPeer,
            Role::Operator,
        ] {
            assert!(!r.may(P::Sign), "{r:?}");
        }
        assert!(!Role::System.may(P::ReadAudit));
        assert!(Role::Operator.all_orgs() && !Role::Radiologist.all_orgs());
        // Patient links: radiologists and technologists hand them out; a link itself may
        // do nothing that the policy decides, and sees no organisation but its own.
        assert!(Role::Radiologist.may(P::PatientLink) && Role::Technologist.may(P::PatientLink));
        for r in [
            Role::Admin,
            Role::Referrer,
            Role::DicomPeer,
            Role::Operator,
            Role::System,
        ] {
            assert!(!r.may(P::PatientLink), "{r:?}");
        }
        assert!(allowed(Role::PatientLink).is_empty() && !Role::PatientLink.all_orgs());
        assert!("patient-link".parse::<Role>().is_err());
    }

    #[test]
    fn account_roles_parse_and_others_do_not() {
        for r in Role::ACCOUNT_ROLES {
            assert_eq!(r.as_str().parse::<Role>().ok(), Some(r));
        }
        for bad in ["operator", "system", "dicom-peer", "Admin", ""] {
            assert!(bad.parse::<Role>().is_err(), "{bad}");
        }
    }
}
