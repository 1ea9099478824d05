//! Query: the archive searched for QIDO-RS, C-FIND and the worklist, one use case per kind
//! of search for every front door. The actor's role must allow searching, the search is
//! narrowed to the actor's organisation before the store is asked, and it is audited with
//! what was asked (the audit trail may hold the patient names and IDs searched for).

use lumen_dicom::query::{Condition, Query};
use lumen_store::{Scope, Worklist, WorklistFilter};
use serde_json::{Map, Value};

use dicom_dictionary_std::tags;

use crate::policy::Permission;

/// Most studies of one search recorded one by one in the audit trail (a search that shows
/// more records the first ones; its detail says how many matched).
pub const AUDITED_MATCHES: usize = 200;
use crate::{Actor, App, AppError, AuditAction, AuditOutcome};

/// What a query asked, for its audit record: level and matching keys with their values.
fn describe(query: &Query) -> String {
    let keys: Vec<String> = query
        .keys
        .iter()
        .filter(|k| !matches!(k.cond, Condition::Universal))
        .map(|k| {
            let name = lumen_dicom::query::keyword_of(k.tag);
            match &k.cond {
                Condition::Exact(v) | Condition::Wildcard(v) => format!("{name}={v}"),
                Condition::Range(a, b) => format!(
                    "{name}={}-{}",
                    a.as_deref().unwrap_or(""),
                    b.as_deref().unwrap_or("")
                ),
                Condition::UidList(v) => format!("{name}={}", v.join("\\")),
                _ => name,
            }
        })
        .collect();
    format!("{:?} search {}", query.level, keys.join(" "))
        .trim_end()
        .to_string()
}

impl App {
    /// The DICOM JSON records matching `query` within `scope` (QIDO-RS and C-FIND), of the
    /// actor's organisation only.
    pub async fn search(
        &self,
        actor: &Actor,
        query: &Query,
        scope: &Scope,
    ) -> Result<Vec<Map<String, Value>>, AppError> {
        let detail = describe(query);
        self.require(actor, Permission::Query, AuditAction::Query, &detail)
            .await?;
        let scope = Scope {
            org: self.org_scope(actor),
            ..scope.clone()
        };
        let found = self.store.search(query, &scope).await;
        let outcome = if found.is_ok() {
            AuditOutcome::Success
        } else {
            AuditOutcome::Failure
        };
        let detail = match &found {
            Ok(v) => format!("{detail} ({} matches)", v.len()),
            Err(_) => detail,
        };
        let seen = found.as_deref().unwrap_or_default().iter().map(|r| {
            (
                lumen_dicom::json::first_string(r, tags::STUDY_INSTANCE_UID),
                lumen_dicom::json::first_string(r, tags::PATIENT_ID),
                lumen_dicom::json::person_name_values(r, tags::PATIENT_NAME).join("="),
            )
        });
        self.audit_matches(actor, outcome, &detail, scope.study_uid.as_deref(), seen)
            .await;
        Ok(found?)
    }

    /// The radiologist's worklist page, of the actor's organisation only.
    pub async fn worklist(
        &self,
        actor: &Actor,
        filter: &WorklistFilter,
    ) -> Result<Worklist, AppError> {
        let detail = format!(
            "worklist q={} modality={} from={} to={} ai={} report={}",
            filter.q.as_deref().unwrap_or(""),
            filter.modality.as_deref().unwrap_or(""),
            filter.date_from.as_deref().unwrap_or(""),
            filter.date_to.as_deref().unwrap_or(""),
            filter.ai.as_deref().unwrap_or(""),
            filter.report.as_deref().unwrap_or(""),
        );
        self.require(actor, Permission::Worklist, AuditAction::Query, &detail)
            .await?;
        let filter = WorklistFilter {
            org: self.org_scope(actor),
            ..filter.clone()
        };
        let list = self.store.worklist(&filter).await?;
        let detail = format!("{detail} ({} of {})", list.items.len(), list.total);
        let seen = list.items.iter().map(|r| {
            (
                Some(r.study_uid.clone()),
                lumen_dicom::json::first_string(&r.attrs, tags::PATIENT_ID),
                lumen_dicom::json::person_name_values(&r.attrs, tags::PATIENT_NAME).join("="),
            )
        });
        self.audit_matches(actor, AuditOutcome::Success, &detail, None, seen)
            .await;
        Ok(list)
    }

    /// Audits a search: one record per study it showed (the first [`AUDITED_MATCHES`]),
    /// naming the patient, so that "who saw this patient's study" has an answer; one record
    /// without a study when nothing matched.
    async fn audit_matches(
        &self,
        actor: &Actor,
        outcome: AuditOutcome,
        detail: &str,
        scoped: Option<&str>,
        seen: impl Iterator<Item = (Option<String>, Option<String>, String)>,
    ) {
        let mut studies: Vec<(String, Option<String>, String)> = Vec::new();
        for (study, pid, name) in seen {
            let Some(study) = study else { continue };
            if studies.len() >= AUDITED_MATCHES {
                break;
            }
            if !studies.iter().any(|(s, ..)| *s == study) {
                studies.push((study, pid, name));
            }
        }
        if studies.is_empty() {
            let mut e = self.event(actor, AuditAction::Query, outcome, detail);
            e.study_uid = scoped.map(str::to_string);
            self.auditor().record(e).await;
            return;
        }
        for (study, pid, name) in studies {
            let mut e = self.event(actor, AuditAction::Query, outcome, detail);
            e.study_uid = Some(study);
            e.patient_id = pid;
            e.patient_name = (!name.is_empty()).then_some(name);
            self.auditor().record(e).await;
        }
    }
}
