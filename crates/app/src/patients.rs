//! The consortium patient index (PIX-style): one patient known by different IDs at
//! different hospitals, so that a radiologist finds the patient's prior studies from other
//! members for comparison, each shared under its own grant.
//!
//! Every patient ID is qualified by the node that issued it. The origin of a share assigns
//! its patient a consortium ID (a random pseudonym) when it first shares one of the
//! patient's studies, and names it in the share notice; the recipient links the origin's
//! patient ID to it when the instances arrive. This node's own patient joins that
//! consortium patient only explicitly: a user links it ([`App::link_patient`]), or the
//! configured matching rule does ([`PatientMatch::Demographics`]: exact name, birth date and
//! sex, and only when exactly one of this node's patients matches). Demographics never
//! link silently, and a link is never changed. Links are ledger entries and audited.
//!
//! Beside the priors, a shared study's radiologist is told what of it has arrived and
//! whether its origin still answers ([`App::shared_study_status`]): while the origin is
//! down, the recipient shows what it holds and says what is missing.

use lumen_store::{GrantRow, Ingested, LinkOutcome, PatientStudy};
use serde::{Deserialize, Serialize};

use crate::policy::Permission;
use crate::{Actor, App, AppError, AuditAction, AuditOutcome};

/// Ledger event: a patient ID linked to a consortium patient.
pub const PATIENT_LINKED: &str = "patient.linked";

/// How this node's own patients are matched to consortium patients arriving in shares
/// (`[consortium] patient_match`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PatientMatch {
    /// Only by a user's explicit link (the default).
    #[default]
    None,
    /// Also by the rule: identical patient name (alphabetic group, case aside), birth date
    /// and sex, all present, with exactly one of this node's patients matching.
    Demographics,
}

/// A consortium patient ID: `cpi-` and 128 random bits in hex (a pseudonym: it says
/// nothing about the patient).
fn new_consortium_id() -> Result<String, AppError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| AppError::Internal(format!("no randomness: {e}")))?;
    Ok(format!("cpi-{}", hex::encode(b)))
}

/// Whether `s` is a consortium patient ID as [`new_consortium_id`] makes them.
pub fn is_consortium_id(s: &str) -> bool {
    s.strip_prefix("cpi-")
        .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The first value of a string attribute in a DICOM JSON map, trimmed.
fn text(attrs: &serde_json::Map<String, serde_json::Value>, tag: &str) -> Option<String> {
    let v = attrs.get(tag)?.get("Value")?.get(0)?;
    let s = match v {
        serde_json::Value::String(s) => s.clone(),
        // Person names: the alphabetic group.
        serde_json::Value::Object(o) => o.get("Alphabetic")?.as_str()?.to_string(),
        _ => return None,
    };
    let s = s.trim().to_string();
    (!s.is_empty()).then_some(s)
}

impl App {
    /// This node's id as the issuer of its own patient IDs.
    fn issuer_here(&self) -> String {
        match &self.settings.consortium {
            Some(c) => c.node_id.clone(),
            None => self.settings.node_org.clone(),
        }
    }

    /// Origin side: the consortium ID of the patient of this node's `study`, assigned now
    /// (a ledger entry) when the patient has none. `None` for a study without a patient ID.
    pub async fn consortium_patient_of(&self, study: &str) -> Result<Option<String>, AppError> {
        let Some((pid, _)) = self.store.study_patient(study).await? else {
            return Ok(None);
        };
        if pid.trim().is_empty() {
            return Ok(None);
        }
        let issuer = self.issuer_here();
        if let Some(cid) = self.store.consortium_patient(&issuer, &pid).await? {
            return Ok(Some(cid));
        }
        let cid = new_consortium_id()?;
        let actor = Actor::system(&self.settings.node_org);
        let entry = crate::ledger::record(
            PATIENT_LINKED,
            study,
            &actor,
            lumen_report::time::now_ms(),
            &[format!("consortium:{cid}"), "how:assigned".into()],
        )?;
        Ok(Some(
            match self
                .store
                .link_patient(&issuer, &pid, &cid, "assigned", &issuer, &[entry])
                .await?
            {
                LinkOutcome::Linked | LinkOutcome::Unchanged => cid,
                // Assigned meanwhile by a concurrent share.
                LinkOutcome::LinkedElsewhere(existing) => existing,
            },
        ))
    }

    /// Recipient side: an instance of a study shared under `grant` was stored. The origin's
    /// patient ID is linked to the consortium patient the notice named, and, under the
    /// configured rule, so is the one of this node's patients the rule matches. Failures
    /// are logged: they never refuse the instance.
    pub(crate) async fn note_shared_patient(&self, grant: &GrantRow, ingested: &Ingested) {
        if let Err(e) = self.link_shared_patient(grant, ingested).await {
            tracing::warn!(error = %e, study = %grant.study_uid, "consortium patient not linked");
        }
    }

    async fn link_shared_patient(
        &self,
        grant: &GrantRow,
        ingested: &Ingested,
    ) -> Result<(), AppError> {
        let Some(cid) = self
            .store
            .grant_patient(&grant.origin, &grant.share_id)
            .await?
        else {
            return Ok(());
        };
        if ingested.patient_id.trim().is_empty() {
            return Ok(());
        }
        // Every instance of a shared study comes this way: once the origin's patient ID is
        // linked (by the first), a read answers, and no write transaction is spent per
        // instance.
        if self
            .store
            .consortium_patient(&grant.origin, &ingested.patient_id)
            .await?
            .is_some()
        {
            return Ok(());
        }
        let actor = Actor::system(&self.settings.node_org);
        let now = lumen_report::time::now_ms();
        let entry = crate::ledger::record(
            PATIENT_LINKED,
            &grant.study_uid,
            &actor,
            now,
            &[
                format!("consortium:{cid}"),
                format!("issuer:{}", grant.origin),
                "how:share".into(),
            ],
        )?;
        let learnt = self
            .store
            .link_patient(
                &grant.origin,
                &ingested.patient_id,
                &cid,
                "share",
                &grant.origin,
                &[entry],
            )
            .await?;
        if learnt != LinkOutcome::Linked {
            return Ok(());
        }
        self.audit_event(
            &actor,
            AuditAction::Store,
            AuditOutcome::Success,
            Some(&grant.study_uid),
            &format!(
                "patient of {} linked to consortium patient {cid}",
                grant.origin
            ),
        )
        .await;
        if self.settings.patient_match == PatientMatch::Demographics {
            self.match_by_rule(&grant.study_uid, &cid).await?;
        }
        Ok(())
    }

    /// The demographics rule: this node's one patient whose name, birth date and sex equal
    /// those of the shared `study` is linked to `cid`. None or several: nothing is linked.
    async fn match_by_rule(&self, study: &str, cid: &str) -> Result<(), AppError> {
        let Some((_, attrs)) = self.store.study_patient(study).await? else {
            return Ok(());
        };
        let key = |a: &serde_json::Map<String, serde_json::Value>| {
            Some((
                text(a, "00100010")?.to_lowercase(),
                text(a, "00100030")?,
                text(a, "00100040")?.to_uppercase(),
            ))
        };
        let Some(wanted) = key(&attrs) else {
            return Ok(());
        };
        let mut found: Vec<String> = self
            .store
            .own_studies_named_as(&attrs)
            .await?
            .into_iter()
            .filter(|(pid, a)| !pid.trim().is_empty() && key(a).as_ref() == Some(&wanted))
            .map(|(pid, _)| pid)
            .collect();
        found.sort();
        found.dedup();
        let issuer = self.issuer_here();
        let actor = Actor::system(&self.settings.node_org);
        match found.as_slice() {
            [pid] => {
                let entry = crate::ledger::record(
                    PATIENT_LINKED,
                    study,
                    &actor,
                    lumen_report::time::now_ms(),
                    &[format!("consortium:{cid}"), "how:rule:demographics".into()],
                )?;
                let outcome = self
                    .store
                    .link_patient(&issuer, pid, cid, "rule:demographics", "rule", &[entry])
                    .await?;
                let detail = match &outcome {
                    LinkOutcome::Linked => {
                        format!(
                            "own patient linked to consortium patient {cid} by the demographics rule"
                        )
                    }
                    LinkOutcome::Unchanged => return Ok(()),
                    LinkOutcome::LinkedElsewhere(other) => format!(
                        "demographics rule matched an own patient already linked to {other}; \
                         not linked to {cid}"
                    ),
                };
                self.audit_event(
                    &actor,
                    AuditAction::Store,
                    AuditOutcome::Success,
                    Some(study),
                    &detail,
                )
                .await;
            }
            [] => {}
            many => {
                tracing::info!(
                    study = %study,
                    candidates = many.len(),
                    "demographics rule: several own patients match; none linked"
                );
            }
        }
        Ok(())
    }

    /// A user links this node's patient `patient_id` to the consortium patient of `study`
    /// (a study shared with this node, or one of its own with a consortium ID): the
    /// explicit link the rule never makes silently. The patient must have a study of the
    /// user's organisation here; an unknown one is answered as absent.
    pub async fn link_patient(
        &self,
        actor: &Actor,
        study: &str,
        patient_id: &str,
    ) -> Result<String, AppError> {
        let detail = "link a patient to a consortium patient";
        let access = self
            .authorize_study(
                actor,
                Permission::Review,
                AuditAction::Review,
                study,
                detail,
            )
            .await?;
        let patient_id = patient_id.trim();
        if patient_id.is_empty() || patient_id.len() > 64 {
            return Err(AppError::Invalid(
                "a patient ID of 1 to 64 characters".into(),
            ));
        }
        let issuer = self.issuer_here();
        let own = self
            .store
            .patient_studies(&issuer, &issuer, patient_id)
            .await?;
        if !own
            .iter()
            .any(|s| actor.role.all_orgs() || s.org == actor.org)
        {
            return Err(AppError::NotFound("no such patient".into()));
        }
        let Some((study_pid, _)) = self.store.study_patient(study).await? else {
            return Err(crate::policy::no_study());
        };
        let study_issuer = match self.store.grant_of_study(study).await? {
            Some(g) => g.origin,
            None => issuer.clone(),
        };
        let cid = match self
            .store
            .consortium_patient(&study_issuer, &study_pid)
            .await?
        {
            Some(cid) => cid,
            None => {
                return Err(AppError::Conflict(
                    "the study's patient has no consortium patient ID".into(),
                ));
            }
        };
        let entry = crate::ledger::record(
            PATIENT_LINKED,
            study,
            actor,
            lumen_report::time::now_ms(),
            &[format!("consortium:{cid}"), "how:manual".into()],
        )?;
        let outcome = self
            .store
            .link_patient(
                &issuer,
                patient_id,
                &cid,
                "manual",
                &actor.user_id,
                &[entry],
            )
            .await?;
        if let LinkOutcome::LinkedElsewhere(_) = outcome {
            return Err(AppError::Conflict(
                "this patient is linked to another consortium patient".into(),
            ));
        }
        self.audit_study(
            actor,
            AuditAction::Review,
            AuditOutcome::Success,
            &access,
            None,
            &format!("own patient linked to consortium patient {cid}"),
        )
        .await;
        Ok(cid)
    }

    /// The other studies of `study`'s patient stored here that the actor may see: its
    /// own under the same patient ID, and, through the consortium patient index, this
    /// node's studies under the patient's other IDs and those members shared under active
    /// grants. Newest first.
    pub async fn priors(&self, actor: &Actor, study: &str) -> Result<Vec<PatientStudy>, AppError> {
        let access = self
            .authorize_study(
                actor,
                Permission::View,
                AuditAction::Query,
                study,
                "prior studies",
            )
            .await?;
        let Some((pid, _)) = self.store.study_patient(study).await? else {
            return Err(crate::policy::no_study());
        };
        let here = self.issuer_here();
        let issuer = match self.store.grant_of_study(study).await? {
            Some(g) => g.origin,
            None => here.clone(),
        };
        let ids = match self.store.consortium_patient(&issuer, &pid).await? {
            Some(cid) => self.store.consortium_members_of(&cid).await?,
            None => vec![(issuer, pid)],
        };
        let mut out: Vec<PatientStudy> = Vec::new();
        for (iss, p) in ids {
            for s in self.store.patient_studies(&here, &iss, &p).await? {
                if s.study_uid != study
                    && (actor.role.all_orgs() || s.org == actor.org)
                    && !out.iter().any(|o| o.study_uid == s.study_uid)
                {
                    out.push(s);
                }
            }
        }
        out.sort_by(|a, b| {
            b.study_date
                .cmp(&a.study_date)
                .then_with(|| a.study_uid.cmp(&b.study_uid))
        });
        self.audit_study(
            actor,
            AuditAction::Query,
            AuditOutcome::Success,
            &access,
            None,
            &format!("prior studies: {} listed", out.len()),
        )
        .await;
        Ok(out)
    }
}

/// A study shared with this node, as its radiologist sees the transfer: who sent it, what
/// has arrived, and whether the origin still answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SharedStudyStatus {
    /// The origin member's id.
    pub origin: String,
    /// Its name.
    pub origin_name: String,
    /// Why it was shared.
    pub purpose: String,
    /// Instances the origin announced.
    pub expected: Option<i64>,
    /// Instances stored here (what the viewer can show).
    pub received: i64,
    /// Announced instances not (yet) here.
    pub missing: i64,
    /// When the origin last confirmed the share (ms since the epoch).
    pub origin_confirmed_ms: i64,
    /// Whether it did so within two re-check periods: `false` while the origin is down.
    pub origin_reachable: bool,
}

impl App {
    /// The transfer of a study shared with this node; `None` for any other study.
    pub async fn shared_study_status(
        &self,
        actor: &Actor,
        study: &str,
    ) -> Result<Option<SharedStudyStatus>, AppError> {
        self.authorize_study(
            actor,
            Permission::View,
            AuditAction::Query,
            study,
            "share status",
        )
        .await?;
        let Some(p) = self.store.grant_progress(study).await? else {
            return Ok(None);
        };
        let now = lumen_report::time::now_ms();
        let window = i64::try_from(2 * crate::share::RECHECK.as_millis()).unwrap_or(i64::MAX);
        Ok(Some(SharedStudyStatus {
            missing: p.expected.map_or(0, |e| (e - p.received).max(0)),
            origin_reachable: now.saturating_sub(p.grant.checked_ms) <= window + 5_000,
            origin: p.grant.origin,
            origin_name: p.grant.origin_name,
            purpose: p.grant.purpose,
            expected: p.expected,
            received: p.received,
            origin_confirmed_ms: p.grant.checked_ms,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consortium_ids_are_random_pseudonyms() {
        let a = new_consortium_id().expect("id");
        let b = new_consortium_id().expect("id");
        assert_ne!(a, b);
        assert!(is_consortium_id(&a) && is_consortium_id(&b));
        assert!(!is_consortium_id("cpi-12"));
        assert!(!is_consortium_id("PAT-0001"));
    }

    #[test]
    fn rule_reads_names_dates_and_sex() {
        let attrs: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
            r#"{"00100010":{"vr":"PN","Value":[{"Alphabetic":"Wang^Fang "}]},
                "00100030":{"vr":"DA","Value":["19580312"]},
                "00100040":{"vr":"CS"}}"#,
        )
        .expect("json");
        assert_eq!(text(&attrs, "00100010").as_deref(), Some("Wang^Fang"));
        assert_eq!(text(&attrs, "00100030").as_deref(), Some("19580312"));
        assert_eq!(text(&attrs, "00100040"), None, "an empty value is absent");
    }
}
