//! Sharing studies between consortium nodes (issue 13).
//!
//! Origin side: a radiologist or technologist of the study's organisation shares it with a
//! member ([`App::create_share`]) for a purpose, with the patient's separate consent (PIPL
//! Art. 23 and 29) or as an emergency, recorded as such. The share, its consent and every
//! revocation are ledger entries written in the transaction of the event, and audited
//! (as exports: data leaving the node). The [`ShareWorker`] then pushes, signed with the
//! node key (RFC 9421, [`lumen_share::httpsig`]): the share notice first, then the study's
//! instances as STOW-RS batches of [`BATCH`], CT series first, so that the member's
//! radiologist opens the first slices while the rest arrives.
//!
//! Recipient side: a notice records a grant; instances are accepted only under an active
//! grant from the member that sent them, and are kept through the one ingest path under
//! this node's organisation (so the AI runs on arrival and the study is reported as any
//! local one). A revocation (the notice, or the origin's answer to the re-check every
//! [`RECHECK`]) revokes the grant and purges the study's instances: it is then absent.
//! Each user's first view of a shared study per day is a ledger entry.
//!
//! The report flows back: signing a shared study queues its Encapsulated PDF and SR for the
//! origin, which accepts report objects (and nothing else) only from the member it shared
//! the study with, and records which member reported it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use dicom_dictionary_std::tags;
use lumen_share::wire::{ConsentBasis, RevokeNotice, ShareNotice, ShareStatus};
use lumen_share::{Consortium, Member};
use lumen_store::{GrantRow, IngestError, IngestStatus, Ingested, Scope, ShareRow, share_kind};
use serde::Deserialize;

use crate::policy::Permission;
use crate::{Actor, App, AppError, AuditAction, AuditChannel, AuditOutcome, Role};

/// Instances per STOW-RS request to a member.
pub const BATCH: usize = 20;

/// How often the recipient asks the origin whether each active grant still holds.
pub const RECHECK: Duration = Duration::from_secs(15);

/// How far a request's `created` may be from this node's clock.
pub const SIGNATURE_WINDOW_S: u64 = 300;

/// Ledger event: a study shared with a member (origin).
pub const SHARE_CREATED: &str = "share.created";
/// Ledger event: the consent (or emergency) a share was made on (origin).
pub const SHARE_CONSENT: &str = "share.consent";
/// Ledger event: a share revoked (origin), or a grant revoked (recipient).
pub const SHARE_REVOKED: &str = "share.revoked";
/// Ledger event: a grant received (recipient).
pub const SHARE_GRANTED: &str = "share.granted";
/// Ledger event: a user's first view of a shared study that day (recipient).
pub const SHARE_VIEWED: &str = "share.viewed";
/// Ledger event: a member's signed report object received (origin).
pub const SHARE_REPORT_RECEIVED: &str = "share.report-received";

/// SOP classes a member may store back into a study shared with it: its report.
const REPORT_CLASSES: [&str; 4] = [
    "1.2.840.10008.5.1.4.1.1.104.1", // Encapsulated PDF
    "1.2.840.10008.5.1.4.1.1.88.11", // Basic Text SR
    "1.2.840.10008.5.1.4.1.1.88.22", // Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33", // Comprehensive SR
];

/// CT image classes, sent first.
const CT_CLASSES: [&str; 2] = ["1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1"];

/// A rule that shares arriving studies (`[[share.rule]]`): every study with an instance of
/// `modality` (and/or sent by `calling_ae` over DICOM) is shared with `to`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareRule {
    /// Only instances of this modality.
    #[serde(default)]
    pub modality: Option<String>,
    /// Only instances sent by this calling AE title.
    #[serde(default)]
    pub calling_ae: Option<String>,
    /// The member's id.
    pub to: String,
    /// Why (recorded on the share).
    pub purpose: String,
    /// The consent basis: `recorded-at-registration` (the patient consented to this
    /// recipient and purpose when registered), `consent` or `emergency`.
    pub consent: String,
}

impl ShareRule {
    /// Whether an arrival matches.
    pub fn matches(&self, calling_ae: Option<&str>, modality: &str) -> bool {
        self.calling_ae
            .as_deref()
            .is_none_or(|a| calling_ae.is_some_and(|c| a.trim() == c.trim()))
            && self
                .modality
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(modality))
    }
}

/// A share as the web app asks for it (`POST /api/shares`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewShare {
    /// The study.
    pub study_uid: String,
    /// The member's id.
    pub to: String,
    /// Why.
    pub purpose: String,
    /// The patient's separate consent naming this recipient, purpose and data was obtained.
    #[serde(default)]
    pub consent: bool,
    /// An emergency: shared without consent, recorded as such.
    #[serde(default)]
    pub emergency: bool,
}

/// A share as `GET /api/shares` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ShareView {
    /// The share.
    #[serde(flatten)]
    pub share: ShareRow,
    /// Its notice and instances still to be sent.
    pub pending: i64,
    /// Its instances the member refused.
    pub failed: i64,
}

/// A verified consortium member calling this node.
#[derive(Debug, Clone)]
pub struct NodeCaller {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The actor its requests act as here.
    pub actor: Actor,
}

/// What a member may store into a study here.
#[derive(Debug, Clone)]
pub enum NodeStore {
    /// A study it shared with this node (an active grant).
    Shared(GrantRow),
    /// Its report of a study this node shared with it.
    Report(ShareRow),
}

/// The sharing state the use cases keep in memory.
#[derive(Debug, Default)]
pub(crate) struct ShareState {
    /// Nonces seen within the signature window, with their `created`.
    nonces: Mutex<HashMap<String, u64>>,
    /// `user|study|day` of the cross-site views already on the ledger.
    viewed: Mutex<HashSet<String>>,
    /// Shares by rule are decided one at a time (one share per study and member).
    rules: tokio::sync::Mutex<()>,
}

fn now_s() -> u64 {
    u64::try_from(lumen_report::time::now_ms() / 1000).unwrap_or(0)
}

fn random_hex(n: usize) -> Result<String, AppError> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(|e| AppError::internal(format!("no randomness: {e}")))?;
    Ok(hex::encode(b))
}

impl Actor {
    /// A consortium member acting through a signed request, for organisation `org`.
    pub fn node(member: &Member, org: &str, source: Option<String>) -> Actor {
        Actor {
            user_id: format!("node:{}", member.id),
            display_name: member.name.clone(),
            role: Role::Node,
            org: org.into(),
            institution: member.name.clone(),
            channel: AuditChannel::Http,
            source,
            session: None,
            must_change_password: false,
        }
    }
}

impl App {
    /// The consortium, or 503 when this node has none.
    pub fn consortium(&self) -> Result<&Consortium, AppError> {
        self.settings
            .consortium
            .as_deref()
            .ok_or_else(|| AppError::Unavailable("this node is in no consortium".into()))
    }

    /// Shares a study with a member: checked, recorded with its consent and ledger entries,
    /// audited, and queued for the share worker.
    pub async fn create_share(&self, actor: &Actor, req: &NewShare) -> Result<ShareRow, AppError> {
        let consent = match (req.consent, req.emergency) {
            (_, true) => ConsentBasis::Emergency,
            (true, false) => ConsentBasis::Consent,
            (false, false) => {
                return Err(AppError::Invalid(
                    "the patient's separate consent to this share is required (consent: true), \
                     or an emergency (emergency: true)"
                        .into(),
                ));
            }
        };
        self.create_share_as(actor, req, consent).await
    }

    async fn create_share_as(
        &self,
        actor: &Actor,
        req: &NewShare,
        consent: ConsentBasis,
    ) -> Result<ShareRow, AppError> {
        let consortium = self.consortium()?;
        let detail = format!("share with {}", clip(&req.to));
        let access = self
            .authorize_study(
                actor,
                Permission::Share,
                AuditAction::Export,
                &req.study_uid,
                &detail,
            )
            .await?;
        let member = consortium
            .member(&req.to)
            .ok_or_else(|| AppError::Invalid("no such consortium member".into()))?;
        let purpose = req.purpose.trim();
        if purpose.is_empty() || purpose.len() > 500 {
            return Err(AppError::Invalid(
                "a purpose is required (at most 500 bytes)".into(),
            ));
        }
        let (org, ..) = self
            .store
            .study_access(&req.study_uid)
            .await?
            .ok_or_else(crate::policy::no_study)?;
        let instances = self
            .store
            .instances(&Scope {
                study_uid: Some(req.study_uid.clone()),
                ..Default::default()
            })
            .await?;
        let queued: Vec<lumen_store::QueuedInstance> = instances
            .iter()
            .map(|i| {
                let ct = CT_CLASSES.contains(&i.sop_class_uid.as_str());
                (i.sop_instance_uid.clone(), if ct { 1 } else { 2 })
            })
            .collect();
        let id = random_hex(16)?;
        let now = lumen_report::time::now_ms();
        let row = ShareRow {
            id: id.clone(),
            study_uid: req.study_uid.clone(),
            to: member.id.clone(),
            purpose: purpose.to_string(),
            consent: consent.as_str().to_string(),
            status: "active".into(),
            created_by: actor.user_id.clone(),
            org,
            created_ms: now,
            revoked_ms: None,
            reported_by: None,
            reported_ms: None,
        };
        let entries = [
            crate::ledger::record(
                SHARE_CREATED,
                &req.study_uid,
                actor,
                now,
                &[format!("share:{id}"), format!("to:{}", member.id)],
            )?,
            crate::ledger::record(
                SHARE_CONSENT,
                &req.study_uid,
                actor,
                now,
                &[
                    format!("share:{id}"),
                    format!("consent:{}", consent.as_str()),
                ],
            )?,
        ];
        self.store.create_share(&row, &queued, &entries).await?;
        let detail = format!(
            "share {id} with {} ({}), purpose: {}, consent: {}, {} instances",
            member.id,
            member.name,
            clip(purpose),
            consent.as_str(),
            queued.len()
        );
        self.audit_study(
            actor,
            AuditAction::Export,
            AuditOutcome::Success,
            &access,
            None,
            &detail,
        )
        .await;
        tracing::info!(share = %id, study = %req.study_uid, to = %member.id, instances = queued.len(), "study shared");
        Ok(row)
    }

    /// Revokes a share: access by the member ends (the revocation is sent, and the member
    /// re-checks within [`RECHECK`]); recorded on the ledger and audited.
    pub async fn revoke_share(&self, actor: &Actor, id: &str) -> Result<ShareRow, AppError> {
        self.revoke_share_for(actor, id, false).await
    }

    /// Revokes a share, with `consent_withdrawn` when the patient withdrew the consent it
    /// was made on (a consent change: its own ledger entry, in the same transaction).
    pub async fn revoke_share_for(
        &self,
        actor: &Actor,
        id: &str,
        consent_withdrawn: bool,
    ) -> Result<ShareRow, AppError> {
        let share = self
            .store
            .share(id)
            .await?
            .ok_or_else(|| AppError::NotFound("no such share".into()))?;
        let detail = format!(
            "revoke share {}{}",
            clip(id),
            if consent_withdrawn {
                " (the patient withdrew consent)"
            } else {
                ""
            }
        );
        let access = self
            .authorize_study(
                actor,
                Permission::Share,
                AuditAction::Export,
                &share.study_uid,
                &detail,
            )
            .await
            .map_err(|_| AppError::NotFound("no such share".into()))?;
        let now = lumen_report::time::now_ms();
        let mut entries = vec![crate::ledger::record(
            SHARE_REVOKED,
            &share.study_uid,
            actor,
            now,
            &[format!("share:{id}"), format!("to:{}", share.to)],
        )?];
        if consent_withdrawn {
            entries.push(crate::ledger::record(
                SHARE_CONSENT,
                &share.study_uid,
                actor,
                now,
                &[format!("share:{id}"), "consent:withdrawn".into()],
            )?);
        }
        if !self
            .store
            .revoke_share(id, &actor.user_id, &entries)
            .await?
        {
            return Err(AppError::Conflict("the share is already revoked".into()));
        }
        self.audit_study(
            actor,
            AuditAction::Export,
            AuditOutcome::Success,
            &access,
            None,
            &detail,
        )
        .await;
        tracing::info!(share = %id, to = %share.to, "share revoked");
        self.store
            .share(id)
            .await?
            .ok_or_else(|| AppError::internal("revoked share vanished"))
    }

    /// The shares of the actor's organisation (of one study when given), with what is
    /// still to be sent.
    pub async fn list_shares(
        &self,
        actor: &Actor,
        study: Option<&str>,
    ) -> Result<Vec<ShareView>, AppError> {
        if let Some(s) = study {
            self.authorize_study(
                actor,
                Permission::Share,
                AuditAction::Query,
                s,
                "list shares",
            )
            .await?;
        } else {
            self.require(actor, Permission::Share, AuditAction::Query, "list shares")
                .await?;
        }
        let org = self.org_scope(actor);
        let progress = self.store.share_progress().await?;
        Ok(self
            .store
            .shares(study, org.as_deref())
            .await?
            .into_iter()
            .map(|share| {
                let (pending, failed) = progress.get(&share.id).copied().unwrap_or((0, 0));
                ShareView {
                    share,
                    pending,
                    failed,
                }
            })
            .collect())
    }

    /// Refuses (audited, 401) a node request whose headers already fail
    /// ([`lumen_share::httpsig::precheck`]), before its body is read.
    pub async fn precheck_node(
        &self,
        method: &str,
        target: &str,
        header: impl Fn(&str) -> Option<String>,
        source: Option<String>,
    ) -> Result<(), AppError> {
        let why = match self.settings.consortium.as_deref() {
            None => "this node is in no consortium".to_string(),
            Some(c) => {
                match lumen_share::httpsig::precheck(c, header, now_s(), SIGNATURE_WINDOW_S) {
                    Ok(()) => return Ok(()),
                    Err(e) => e.to_string(),
                }
            }
        };
        Err(self.refuse_node(method, target, &why, source).await)
    }

    /// Audits a refused node request with its reason; the answer carries none.
    async fn refuse_node(
        &self,
        method: &str,
        target: &str,
        why: &str,
        source: Option<String>,
    ) -> AppError {
        let actor = Actor {
            user_id: "node:unverified".into(),
            display_name: "unverified node".into(),
            role: Role::Node,
            org: self.settings.node_org.clone(),
            institution: String::new(),
            channel: AuditChannel::Http,
            source,
            session: None,
            must_change_password: false,
        };
        let detail = format!("node request {method} {} refused: {why}", clip(target));
        tracing::warn!(%detail, "consortium request refused");
        self.audit_event(
            &actor,
            AuditAction::AccessDenied,
            AuditOutcome::Denied,
            None,
            &detail,
        )
        .await;
        AppError::Unauthenticated("node authentication failed".into())
    }

    /// Verifies a node request's signature (RFC 9421) and that its nonce is fresh: the
    /// member who signed it. A refusal is audited with its reason and answered without one.
    pub async fn verify_node(
        &self,
        method: &str,
        target: &str,
        header: impl Fn(&str) -> Option<String>,
        body: &[u8],
        source: Option<String>,
    ) -> Result<NodeCaller, AppError> {
        let refused = |why: String| {
            let source = source.clone();
            async move { self.refuse_node(method, target, &why, source).await }
        };
        let Some(consortium) = self.settings.consortium.as_deref() else {
            return Err(refused("this node is in no consortium".into()).await);
        };
        let now = now_s();
        let (verified, member) = match lumen_share::httpsig::verify(
            consortium,
            method,
            target,
            header,
            body,
            now,
            SIGNATURE_WINDOW_S,
        ) {
            Ok(v) => v,
            Err(e) => return Err(refused(e.to_string()).await),
        };
        if let Some(nonce) = &verified.nonce {
            let replayed = match self.shares.nonces.lock() {
                Ok(mut seen) => {
                    seen.retain(|_, created| created.abs_diff(now) <= SIGNATURE_WINDOW_S);
                    seen.insert(format!("{}|{nonce}", member.id), verified.created)
                        .is_some()
                }
                Err(_) => false,
            };
            if replayed {
                return Err(refused(format!("nonce of {} replayed", member.id)).await);
            }
        }
        Ok(NodeCaller {
            id: member.id.clone(),
            name: member.name.clone(),
            actor: Actor::node(member, &self.settings.node_org, source.clone()),
        })
    }

    /// An instance just stored (new or replaced) by a user, an AE or the command line: it
    /// follows the study's active shares, and the `[[share.rule]]` rules it matches share
    /// its study (once per member; a revoked share is not renewed by a rule).
    pub(crate) async fn share_arrival(&self, actor: &Actor, i: &Ingested) -> Result<(), AppError> {
        if self.settings.consortium.is_none()
            || actor.role == Role::Node
            || i.status == IngestStatus::AlreadyPresent
        {
            return Ok(());
        }
        let priority = if CT_CLASSES.contains(&i.sop_class_uid.as_str()) {
            1
        } else {
            2
        };
        let calling_ae = i.origin.calling_ae();
        let rules: Vec<&ShareRule> = self
            .settings
            .share_rules
            .iter()
            .filter(|r| r.matches(calling_ae, &i.modality))
            .collect();
        let _one = if rules.is_empty() {
            None
        } else {
            Some(self.shares.rules.lock().await)
        };
        let shares = self.store.shares(Some(&i.study_uid), None).await?;
        for s in shares.iter().filter(|s| s.status == "active") {
            self.store
                .queue_share_instance(s, &i.sop_instance_uid, priority)
                .await?;
        }
        for r in rules {
            if shares.iter().any(|s| s.to == r.to) {
                continue;
            }
            let consent = ConsentBasis::parse(&r.consent).unwrap_or(ConsentBasis::Consent);
            let (org, ..) = self
                .store
                .study_access(&i.study_uid)
                .await?
                .ok_or_else(crate::policy::no_study)?;
            let system = Actor {
                user_id: "rule".into(),
                display_name: "share rule".into(),
                ..Actor::system(&org)
            };
            let req = NewShare {
                study_uid: i.study_uid.clone(),
                to: r.to.clone(),
                purpose: r.purpose.clone(),
                consent: consent != ConsentBasis::Emergency,
                emergency: consent == ConsentBasis::Emergency,
            };
            self.create_share_as(&system, &req, consent).await?;
        }
        Ok(())
    }

    /// The shares announced to this node whose instances have not arrived yet, for the
    /// worklist of the node's own organisation (shared studies are kept under it).
    pub async fn incoming_shares(&self, actor: &Actor) -> Result<Vec<GrantRow>, AppError> {
        self.require(
            actor,
            Permission::Worklist,
            AuditAction::Query,
            "incoming shares",
        )
        .await?;
        if self.settings.consortium.is_none() || actor.org != self.settings.node_org {
            return Ok(Vec::new());
        }
        Ok(self.store.incoming_grants().await?)
    }

    /// Audits a member's attempt to read through the consortium door (there is none).
    pub async fn node_read_refused(&self, caller: &NodeCaller, path: &str) {
        let detail = format!("node {} may not read {}", caller.id, clip(path));
        self.audit_event(
            &caller.actor,
            AuditAction::AccessDenied,
            AuditOutcome::Denied,
            None,
            &detail,
        )
        .await;
    }

    /// A member's share notice: the grant is recorded (ledger, audit).
    pub async fn receive_share_notice(
        &self,
        caller: &NodeCaller,
        notice: &ShareNotice,
    ) -> Result<(), AppError> {
        let consortium = self.consortium()?;
        crate::check_study(&notice.study_uid)?;
        if notice.origin != caller.id || notice.to != consortium.node_id {
            return Err(AppError::Forbidden(
                "the notice is not from its sender to this node".into(),
            ));
        }
        if notice.share_id.is_empty() || notice.share_id.len() > 64 || notice.purpose.len() > 500 {
            return Err(AppError::Invalid("malformed share notice".into()));
        }
        // A study this node already holds (its own, or shared by another member) is not
        // taken under a new grant: another member could otherwise add instances to it, and a
        // revocation would purge what was not shared.
        if self.store.study_access(&notice.study_uid).await?.is_some()
            && self
                .store
                .active_grant(&caller.id, &notice.study_uid)
                .await?
                .is_none()
        {
            self.audit_event(
                &caller.actor,
                AuditAction::Store,
                AuditOutcome::Denied,
                Some(&notice.study_uid),
                &format!(
                    "share {} from {} refused: the study is already held here",
                    clip(&notice.share_id),
                    caller.id
                ),
            )
            .await;
            return Err(AppError::Conflict(
                "this node already holds the study".into(),
            ));
        }
        let now = lumen_report::time::now_ms();
        let grant = GrantRow {
            origin: caller.id.clone(),
            share_id: notice.share_id.clone(),
            study_uid: notice.study_uid.clone(),
            origin_name: caller.name.clone(),
            purpose: notice.purpose.clone(),
            consent: notice.consent.as_str().to_string(),
            status: "active".into(),
            created_ms: now,
            checked_ms: now,
        };
        let entry = crate::ledger::record(
            SHARE_GRANTED,
            &notice.study_uid,
            &caller.actor,
            now,
            &[
                format!("share:{}", notice.share_id),
                format!("from:{}", caller.id),
                format!("consent:{}", notice.consent.as_str()),
            ],
        )?;
        if let Some(cid) = &notice.patient {
            if !crate::patients::is_consortium_id(cid) {
                return Err(AppError::Invalid("malformed consortium patient ID".into()));
            }
            self.store
                .set_grant_patient(&caller.id, &notice.share_id, cid)
                .await?;
        }
        let recorded = self.store.record_grant(&grant, &[entry]).await?;
        self.store
            .set_grant_expected(
                &caller.id,
                &notice.share_id,
                i64::try_from(notice.instances).unwrap_or(i64::MAX),
            )
            .await?;
        if recorded {
            let detail = format!(
                "share {} granted by {} ({}), purpose: {}, consent: {}, {} instances to come",
                clip(&notice.share_id),
                caller.id,
                caller.name,
                clip(&notice.purpose),
                notice.consent.as_str(),
                notice.instances
            );
            self.audit_event(
                &caller.actor,
                AuditAction::Store,
                AuditOutcome::Success,
                Some(&notice.study_uid),
                &detail,
            )
            .await;
            tracing::info!(share = %notice.share_id, from = %caller.id, study = %notice.study_uid, "share granted");
        }
        Ok(())
    }

    /// What `caller` may store into `study` here: a study it shared with this node (active
    /// grant), or its report of a study this node shared with it. Anything else is refused
    /// (audited) and answered as an absent study.
    pub async fn node_may_store(
        &self,
        caller: &NodeCaller,
        study: &str,
    ) -> Result<NodeStore, AppError> {
        crate::check_study(study)?;
        if let Some(g) = self.store.active_grant(&caller.id, study).await? {
            return Ok(NodeStore::Shared(g));
        }
        let shares = self.store.shares(Some(study), None).await?;
        if let Some(s) = shares.into_iter().find(|s| s.to == caller.id) {
            return Ok(NodeStore::Report(s));
        }
        let detail = format!("node {} may not store into this study", caller.id);
        self.audit_event(
            &caller.actor,
            AuditAction::Store,
            AuditOutcome::Denied,
            Some(study),
            &detail,
        )
        .await;
        Err(crate::policy::no_study())
    }

    /// Keeps one object a member sent into `study` under `mode`: it must belong to that
    /// study, and be a report object when it is the member's report.
    pub async fn receive_from_node(
        &self,
        caller: &NodeCaller,
        study: &str,
        mode: &NodeStore,
        bytes: Bytes,
    ) -> Result<Ingested, IngestError> {
        let (obj_study, class) = {
            let b = bytes.clone();
            tokio::task::spawn_blocking(move || {
                // Header only: the pixel data is checked and kept by the ingest that follows.
                let (obj, _) = lumen_dicom::part10::parse_for_index(&b)
                    .map_err(|e| IngestError::Invalid(e.to_string()))?;
                let uid = obj
                    .get(tags::STUDY_INSTANCE_UID)
                    .and_then(|e| e.to_str().ok())
                    .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
                    .unwrap_or_default();
                let class = obj
                    .meta()
                    .media_storage_sop_class_uid()
                    .trim_end_matches('\0')
                    .to_string();
                Ok::<_, IngestError>((uid, class))
            })
            .await
            .map_err(|e| IngestError::Internal(e.to_string()))??
        };
        if obj_study != study {
            return Err(IngestError::Forbidden(
                "the instance belongs to another study than the request URL".into(),
            ));
        }
        let mut actor = caller.actor.clone();
        match mode {
            NodeStore::Shared(_) => {}
            NodeStore::Report(s) => {
                if !REPORT_CLASSES.contains(&class.as_str()) {
                    return Err(IngestError::Forbidden(
                        "only report objects may be stored into a shared study".into(),
                    ));
                }
                actor.org = s.org.clone();
            }
        }
        let r = self
            .receive(&actor, bytes, lumen_store::Origin::StowRs)
            .await?;
        match mode {
            NodeStore::Shared(g) => {
                // Revoked while this instance was in flight: it goes too.
                if self
                    .store
                    .active_grant(&g.origin, study)
                    .await
                    .ok()
                    .flatten()
                    .is_none()
                {
                    let _ = self.store.purge_study(study).await;
                    return Err(IngestError::Forbidden("the share was revoked".into()));
                }
                if r.status == IngestStatus::Stored {
                    self.note_shared_patient(g, &r).await;
                }
            }
            NodeStore::Report(s) if r.status == IngestStatus::Stored => {
                let now = lumen_report::time::now_ms();
                let entry = crate::ledger::record(
                    SHARE_REPORT_RECEIVED,
                    study,
                    &actor,
                    now,
                    &[format!("share:{}", s.id), r.sop_instance_uid.clone()],
                )
                .map_err(|e| IngestError::Internal(e.to_string()))?;
                self.store
                    .share_reported(&s.id, &caller.name, &[entry])
                    .await
                    .map_err(|e| IngestError::Internal(e.to_string()))?;
                tracing::info!(share = %s.id, from = %caller.id, study = %study, "report received from member");
            }
            NodeStore::Report(_) => {}
        }
        Ok(r)
    }

    /// A member revoked a share it made: the grant ends and the study's instances are
    /// purged (ledger, audit).
    pub async fn receive_revoke(
        &self,
        caller: &NodeCaller,
        notice: &RevokeNotice,
    ) -> Result<(), AppError> {
        self.revoke_grant_here(
            &caller.actor,
            &caller.id,
            &notice.share_id,
            &notice.study_uid,
            "revoked by the origin",
        )
        .await
    }

    async fn revoke_grant_here(
        &self,
        actor: &Actor,
        origin: &str,
        share_id: &str,
        study: &str,
        why: &str,
    ) -> Result<(), AppError> {
        let entry = crate::ledger::record(
            SHARE_REVOKED,
            study,
            actor,
            lumen_report::time::now_ms(),
            &[format!("share:{share_id}"), format!("from:{origin}")],
        )?;
        let (was_active, purged) = self.store.revoke_grant(origin, share_id, &[entry]).await?;
        if was_active {
            let detail = format!(
                "grant of share {} from {origin} revoked ({why}); {purged} instances purged",
                clip(share_id)
            );
            self.audit_event(
                actor,
                AuditAction::Export,
                AuditOutcome::Success,
                Some(study),
                &detail,
            )
            .await;
            tracing::info!(share = %share_id, from = %origin, purged, "grant revoked, study purged");
        }
        Ok(())
    }

    /// A share's status for the member it was made to (`GET /consortium/shares/{id}`);
    /// 404 for anyone else.
    pub async fn share_status_for(
        &self,
        caller: &NodeCaller,
        id: &str,
    ) -> Result<ShareStatus, AppError> {
        match self.store.share(id).await? {
            Some(s) if s.to == caller.id => Ok(ShareStatus {
                share_id: s.id,
                status: s.status,
            }),
            _ => {
                self.audit_event(
                    &caller.actor,
                    AuditAction::Query,
                    AuditOutcome::Denied,
                    None,
                    &format!("status of share {} refused to {}", clip(id), caller.id),
                )
                .await;
                Err(AppError::NotFound("no such share".into()))
            }
        }
    }

    /// Records a user's first view of a shared study today (ledger and audit).
    pub(crate) async fn note_cross_site_view(&self, actor: &Actor, study: &str) {
        if !matches!(
            actor.role,
            Role::Radiologist | Role::Technologist | Role::Referrer
        ) || self.settings.consortium.is_none()
        {
            return;
        }
        let day = lumen_report::time::now_ms() / 86_400_000;
        let key = format!("{}|{study}|{day}", actor.user_id);
        if self
            .shares
            .viewed
            .lock()
            .map(|v| v.contains(&key))
            .unwrap_or(true)
        {
            return;
        }
        let Ok(Some(g)) = self.store.grant_of_study(study).await else {
            return;
        };
        if let Ok(mut v) = self.shares.viewed.lock()
            && !v.insert(key)
        {
            return;
        }
        let entry = match crate::ledger::record(
            SHARE_VIEWED,
            study,
            actor,
            lumen_report::time::now_ms(),
            &[
                format!("share:{}", g.share_id),
                format!("from:{}", g.origin),
            ],
        ) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "cross-site view not recorded");
                return;
            }
        };
        if let Err(e) = self.store.append_ledger_entry(&entry).await {
            tracing::error!(error = %e, "cross-site view not recorded on the ledger");
        }
        let detail = format!(
            "cross-site view of share {} from {} ({})",
            clip(&g.share_id),
            g.origin,
            g.origin_name
        );
        self.audit_event(
            actor,
            AuditAction::View,
            AuditOutcome::Success,
            Some(study),
            &detail,
        )
        .await;
    }

    /// After a signature of a shared study: its objects are queued for the origin.
    pub(crate) async fn report_back(
        &self,
        study: &str,
        objects: &[String],
    ) -> Result<(), AppError> {
        if self.settings.consortium.is_none() {
            return Ok(());
        }
        if let Some(g) = self.store.grant_of_study(study).await? {
            self.store.queue_report_objects(&g, objects).await?;
            tracing::info!(share = %g.share_id, to = %g.origin, "signed report queued for the origin");
        }
        Ok(())
    }
}

/// A request to another node, signed.
#[derive(Debug, Clone)]
pub struct NodeRequest {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The full URL.
    pub url: String,
    /// Headers (the signature's included).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// Sends node requests: the seam between the share worker and HTTP (the binary's client).
pub trait NodeClient: Send + Sync {
    /// Sends `req`; the status and body of the answer.
    ///
    /// # Errors
    ///
    /// The member could not be reached.
    fn send(&self, req: &NodeRequest) -> Result<(u16, Vec<u8>), String>;
}

/// Pushes the share outbox to members and re-checks grants with their origins.
#[derive(Clone)]
pub struct ShareWorker {
    app: App,
    signer: Arc<lumen_ledger::LogSigner>,
    client: Arc<dyn NodeClient>,
}

impl std::fmt::Debug for ShareWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareWorker").finish_non_exhaustive()
    }
}

enum Outcome {
    Done,
    Retry(String),
    Failed(String),
}

impl ShareWorker {
    /// A worker signing with the node key `signer` and sending over `client`.
    pub fn new(
        app: App,
        signer: Arc<lumen_ledger::LogSigner>,
        client: Arc<dyn NodeClient>,
    ) -> ShareWorker {
        ShareWorker {
            app,
            signer,
            client,
        }
    }

    /// Runs the outbox sender and the grant re-check until the tasks are dropped.
    pub fn spawn(self) -> (tokio::task::JoinHandle<()>, tokio::task::JoinHandle<()>) {
        let sender = {
            let w = self.clone();
            tokio::spawn(async move {
                loop {
                    match w.send_due().await {
                        Ok(0) => w.app.store.share_outbox_wait(Duration::from_secs(1)).await,
                        Ok(_) => {}
                        Err(e) => {
                            tracing::error!(error = %e, "share outbox failed");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
            })
        };
        let checker = tokio::spawn(async move {
            let mut tick = tokio::time::interval(RECHECK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = self.recheck_grants().await {
                    tracing::error!(error = %e, "grant re-check failed");
                }
            }
        });
        (sender, checker)
    }

    fn signed(
        &self,
        member: &Member,
        method: &'static str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<NodeRequest, AppError> {
        let consortium = self.app.consortium()?;
        let h = lumen_share::httpsig::sign(
            &*self.signer,
            &consortium.node_id,
            &member.id,
            method,
            path,
            &body,
            now_s(),
            &random_hex(16)?,
        )
        .map_err(AppError::internal)?;
        let mut headers: Vec<(String, String)> = h
            .pairs()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if !content_type.is_empty() {
            headers.push(("content-type".into(), content_type.into()));
        }
        Ok(NodeRequest {
            method,
            url: format!("{}{path}", member.url),
            headers,
            body,
        })
    }

    async fn call(&self, req: NodeRequest) -> Result<(u16, Vec<u8>), String> {
        let client = self.client.clone();
        tokio::task::spawn_blocking(move || client.send(&req))
            .await
            .map_err(|e| e.to_string())?
    }

    /// Sends what is due; how many items were handled.
    pub async fn send_due(&self) -> Result<usize, AppError> {
        let store = &self.app.store;
        let due = store.claim_share_outbox(BATCH * 4).await?;
        let n = due.len();
        // Instances (and report objects) go in batches per member, kind and study.
        let mut batches: Vec<Vec<lumen_store::ShareOutboxEntry>> = Vec::new();
        for e in due {
            if (e.kind == share_kind::INSTANCE || e.kind == share_kind::REPORT)
                && let Some(b) = batches.iter_mut().find(|b| {
                    b.len() < BATCH
                        && b[0].member == e.member
                        && b[0].kind == e.kind
                        && b[0].study_uid == e.study_uid
                })
            {
                b.push(e);
                continue;
            }
            batches.push(vec![e]);
        }
        // A member that could not be reached is not tried again in this round: the others'
        // items do not wait behind its connection timeouts.
        let mut unreachable: HashSet<String> = HashSet::new();
        for batch in batches {
            let outcomes = if unreachable.contains(&batch[0].member) {
                batch
                    .iter()
                    .map(|_| Outcome::Retry("member unreachable".into()))
                    .collect()
            } else {
                self.send_batch(&batch).await
            };
            if outcomes
                .iter()
                .all(|o| matches!(o, Outcome::Retry(why) if !why.starts_with("HTTP")))
            {
                unreachable.insert(batch[0].member.clone());
            }
            for (e, o) in batch.iter().zip(outcomes) {
                match o {
                    Outcome::Done => store.share_outbox_done(e).await?,
                    Outcome::Retry(why) => {
                        let secs = 1u64 << e.attempts.clamp(0, 4);
                        tracing::warn!(member = %e.member, kind = %e.kind, error = %why, "share item to be retried");
                        store
                            .share_outbox_retry(e, &why, Duration::from_secs(secs.min(10)))
                            .await?
                    }
                    Outcome::Failed(why) => {
                        tracing::warn!(member = %e.member, kind = %e.kind, error = %why, "share item refused");
                        store.share_outbox_failed(e, &why).await?
                    }
                }
            }
        }
        Ok(n)
    }

    async fn send_batch(&self, batch: &[lumen_store::ShareOutboxEntry]) -> Vec<Outcome> {
        let all = |o: &dyn Fn() -> Outcome| batch.iter().map(|_| o()).collect::<Vec<_>>();
        let first = &batch[0];
        let Ok(consortium) = self.app.consortium() else {
            return all(&|| Outcome::Retry("this node is in no consortium".into()));
        };
        let Some(member) = consortium.member(&first.member) else {
            return all(&|| Outcome::Failed(format!("{} is no longer a member", first.member)));
        };
        let r = match first.kind.as_str() {
            share_kind::NOTICE => self.send_notice(member, first).await.map(|o| vec![o]),
            share_kind::REVOKE => self.send_revoke(member, first).await.map(|o| vec![o]),
            _ => self.send_instances(member, batch).await,
        };
        r.unwrap_or_else(|e| all(&|| Outcome::Retry(e.to_string())))
    }

    fn judge(status: u16, attempts: i64) -> Outcome {
        match status {
            200..=299 => Outcome::Done,
            // Refusals may be passing (clock, a notice not yet processed): retried a while.
            400..=499 if status != 408 && status != 429 && attempts >= 20 => {
                Outcome::Failed(format!("HTTP {status}"))
            }
            s => Outcome::Retry(format!("HTTP {s}")),
        }
    }

    async fn send_notice(
        &self,
        member: &Member,
        e: &lumen_store::ShareOutboxEntry,
    ) -> Result<Outcome, AppError> {
        let Some(share) = self.app.store.share(&e.share_id).await? else {
            return Ok(Outcome::Done);
        };
        let instances = self
            .app
            .store
            .instances(&Scope {
                study_uid: Some(share.study_uid.clone()),
                ..Default::default()
            })
            .await?
            .len() as u64;
        let notice = ShareNotice {
            share_id: share.id.clone(),
            study_uid: share.study_uid.clone(),
            origin: self.app.consortium()?.node_id.clone(),
            to: member.id.clone(),
            purpose: share.purpose.clone(),
            consent: ConsentBasis::parse(&share.consent).unwrap_or(ConsentBasis::Consent),
            instances,
            patient: self.app.consortium_patient_of(&share.study_uid).await?,
        };
        let body = serde_json::to_vec(&notice).map_err(AppError::internal)?;
        let req = self.signed(
            member,
            "POST",
            "/consortium/shares",
            "application/json",
            body,
        )?;
        Ok(match self.call(req).await {
            Ok((s, _)) => Self::judge(s, e.attempts),
            Err(why) => Outcome::Retry(why),
        })
    }

    async fn send_revoke(
        &self,
        member: &Member,
        e: &lumen_store::ShareOutboxEntry,
    ) -> Result<Outcome, AppError> {
        let body = serde_json::to_vec(&RevokeNotice {
            share_id: e.share_id.clone(),
            study_uid: e.study_uid.clone(),
        })
        .map_err(AppError::internal)?;
        let path = format!("/consortium/shares/{}/revoke", e.share_id);
        let req = self.signed(member, "POST", &path, "application/json", body)?;
        Ok(match self.call(req).await {
            Ok((404, _)) => Outcome::Done,
            Ok((s, _)) => Self::judge(s, e.attempts),
            Err(why) => Outcome::Retry(why),
        })
    }

    /// One STOW-RS request with the batch's instances; each item's outcome from the
    /// answer's Referenced and Failed SOP Sequences.
    async fn send_instances(
        &self,
        member: &Member,
        batch: &[lumen_store::ShareOutboxEntry],
    ) -> Result<Vec<Outcome>, AppError> {
        let study = &batch[0].study_uid;
        let boundary = format!("lumen-{}", random_hex(12)?);
        let mut body = Vec::new();
        let mut sent = Vec::new();
        for e in batch {
            let found = self
                .app
                .store
                .instances(&Scope {
                    study_uid: Some(study.clone()),
                    sop_instance_uid: Some(e.sop_uid.clone()),
                    ..Default::default()
                })
                .await?;
            // No longer stored here (deleted, or purged): nothing to send.
            let Some(inst) = found.first() else {
                sent.push(false);
                continue;
            };
            let bytes = inst.read().await?;
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").as_bytes(),
            );
            body.extend_from_slice(&bytes);
            body.extend_from_slice(b"\r\n");
            sent.push(true);
        }
        if !sent.contains(&true) {
            return Ok(batch.iter().map(|_| Outcome::Done).collect());
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let ct = format!("multipart/related; type=\"application/dicom\"; boundary={boundary}");
        let path = format!("/consortium/studies/{study}");
        let req = self.signed(member, "POST", &path, &ct, body)?;
        let (status, answer) = match self.call(req).await {
            Ok(r) => r,
            Err(why) => return Ok(batch.iter().map(|_| Outcome::Retry(why.clone())).collect()),
        };
        if !matches!(status, 200 | 202 | 409) {
            return Ok(batch
                .iter()
                .zip(&sent)
                .map(|(e, s)| {
                    if *s {
                        Self::judge(status, e.attempts)
                    } else {
                        Outcome::Done
                    }
                })
                .collect());
        }
        let stored = referenced(&answer);
        Ok(batch
            .iter()
            .zip(&sent)
            .map(|(e, s)| {
                if !*s || stored.contains(&e.sop_uid) {
                    Outcome::Done
                } else {
                    Outcome::Failed(format!("refused by {} (HTTP {status})", member.id))
                }
            })
            .collect())
    }

    /// Asks each active grant's origin whether the share still holds; a revoked or unknown
    /// share is revoked here (and the study purged). An unreachable origin changes nothing.
    pub async fn recheck_grants(&self) -> Result<(), AppError> {
        let Ok(consortium) = self.app.consortium() else {
            return Ok(());
        };
        for g in self.app.store.active_grants().await? {
            let Some(member) = consortium.member(&g.origin) else {
                continue;
            };
            let path = format!("/consortium/shares/{}", g.share_id);
            let req = self.signed(member, "GET", &path, "", Vec::new())?;
            let revoked = match self.call(req).await {
                Ok((200, body)) => match serde_json::from_slice::<ShareStatus>(&body) {
                    Ok(s) => s.status != "active",
                    Err(_) => false,
                },
                Ok((404, _)) => true,
                Ok((s, _)) => {
                    tracing::warn!(origin = %g.origin, status = s, "grant re-check answered");
                    continue;
                }
                // Not confirmed: `checked_ms` keeps the last confirmation, which tells the
                // radiologist since when the origin has not answered.
                Err(e) => {
                    tracing::debug!(origin = %g.origin, error = %e, "origin unreachable; the grant holds");
                    continue;
                }
            };
            if revoked {
                let actor = Actor::system(&self.app.settings.node_org);
                self.app
                    .revoke_grant_here(
                        &actor,
                        &g.origin,
                        &g.share_id,
                        &g.study_uid,
                        "the origin answered the re-check: revoked",
                    )
                    .await?;
            } else {
                self.app.store.grant_checked(&g.origin, &g.share_id).await?;
            }
        }
        Ok(())
    }
}

/// The SOP Instance UIDs a STOW-RS answer lists as stored.
fn referenced(answer: &[u8]) -> HashSet<String> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(answer) else {
        return HashSet::new();
    };
    v["00081199"]["Value"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["00081155"]["Value"][0].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// An identifier from a request, shortened for a record.
fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(modality: Option<&str>, ae: Option<&str>) -> ShareRule {
        ShareRule {
            modality: modality.map(str::to_string),
            calling_ae: ae.map(str::to_string),
            to: "hospital-b".into(),
            purpose: "consultation".into(),
            consent: "recorded-at-registration".into(),
        }
    }

    #[test]
    fn share_rules_match_modality_and_calling_ae() {
        assert!(rule(Some("CT"), None).matches(None, "CT"));
        assert!(rule(Some("ct"), None).matches(Some("X"), "CT"));
        assert!(!rule(Some("CT"), None).matches(None, "MR"));
        assert!(rule(None, Some("CONSULT")).matches(Some("CONSULT"), "MR"));
        // A rule on the calling AE matches only C-STORE arrivals from it.
        assert!(!rule(None, Some("CONSULT")).matches(None, "CT"));
        assert!(!rule(Some("CT"), Some("CONSULT")).matches(Some("OTHER"), "CT"));
    }

    #[test]
    fn stow_answers_name_the_stored_instances() {
        let answer = br#"{"00081199": {"vr": "SQ", "Value": [
            {"00081155": {"vr": "UI", "Value": ["1.2.3"]}},
            {"00081155": {"vr": "UI", "Value": ["1.2.4"]}}]}}"#;
        let got = referenced(answer);
        assert!(got.contains("1.2.3") && got.contains("1.2.4") && got.len() == 2);
        assert!(referenced(b"not json").is_empty());
    }
}
