//! Receive: an object arriving through any front door (C-STORE, STOW-RS, `lumen import`,
//! `lumen retrieve --data`) is kept by one use case. The index stores it, queues its AI job
//! and writes its routing outbox rows in one transaction (`lumen_store::Store::ingest_for`);
//! the sender's role must allow storing, a new study belongs to the sender's organisation,
//! and the arrival is audited (one record per sender, study and series a minute).

use bytes::Bytes;
use lumen_store::{IngestError, Ingested, Origin};

use crate::policy::{Permission, StudyAccess};
use crate::{Actor, App, AuditAction, AuditOutcome};

impl App {
    /// Keeps one Part-10 object that `actor` sent by `origin`, for the actor's
    /// organisation.
    pub async fn receive(
        &self,
        actor: &Actor,
        bytes: Bytes,
        origin: Origin,
    ) -> Result<Ingested, IngestError> {
        let detail = format!("store ({})", origin.label());
        if let Err(e) = self
            .require(actor, Permission::Store, AuditAction::Store, &detail)
            .await
        {
            return Err(IngestError::Forbidden(e.to_string()));
        }
        let (label, len, started) = (origin.label(), bytes.len(), std::time::Instant::now());
        let r = self
            .store
            .ingest_for(bytes, origin, actor.org.clone())
            .await;
        let outcome = match &r {
            Ok(i) => match i.status {
                lumen_store::IngestStatus::Stored => "stored",
                lumen_store::IngestStatus::Replaced => "replaced",
                lumen_store::IngestStatus::AlreadyPresent => "duplicate",
            },
            Err(_) => "refused",
        };
        crate::metrics::record_ingest(label, outcome, len, started.elapsed());
        match &r {
            Ok(i) => {
                let access = StudyAccess {
                    study_uid: i.study_uid.clone(),
                    patient_id: Some(i.patient_id.clone()),
                    patient_name: Some(i.patient_name.clone()),
                };
                self.audit_study(
                    actor,
                    AuditAction::Store,
                    AuditOutcome::Success,
                    &access,
                    Some(&i.series_uid),
                    &detail,
                )
                .await;
                // A study shared (or to be shared by rule): the new instance follows.
                if let Err(e) = self.share_arrival(actor, i).await {
                    tracing::error!(error = %e, study = %i.study_uid, "sharing an arrival failed");
                }
            }
            Err(_) => {
                self.audit_event(
                    actor,
                    AuditAction::Store,
                    AuditOutcome::Failure,
                    None,
                    &detail,
                )
                .await;
            }
        }
        r
    }
}
