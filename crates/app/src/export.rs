//! Export of a study for research and AI training: its instances read back from the
//! archive, one Part-10 object each, de-identified with `lumen-deid` (PS3.15 Annex E Basic
//! Application Level Confidentiality Profile and the options asked for) or as stored.
//!
//! An export draws a new secret, so its replacement UIDs, pseudonyms and date shifts are
//! consistent within it (every instance of the study gets the one new Study Instance UID)
//! and unrelated to any other export. Instances are read and de-identified one at a time
//! ([`StudyExport::next`]), so a large study is never held in memory whole.

use std::collections::VecDeque;

use lumen_deid::{Deidentifier, Options, Secret, Warning};
use lumen_store::{Scope, StoredInstance};

use crate::policy::Permission;
use crate::{Actor, App, AppError, AuditAction, AuditOutcome, check_study};

/// One exported instance.
#[derive(Debug, Clone)]
pub struct ExportedInstance {
    /// Its SOP Instance UID in the export (the new one when de-identified).
    pub sop_instance_uid: String,
    /// The Part-10 object.
    pub bytes: Vec<u8>,
    /// What the exporter must know about it (burned-in annotation...); empty when not
    /// de-identified.
    pub warnings: Vec<Warning>,
}

/// An export under way: the instances still to be read and how they are treated.
#[derive(Debug)]
pub struct StudyExport {
    pending: VecDeque<StoredInstance>,
    deid: Option<Deidentifier>,
}

impl StudyExport {
    /// How many instances are left to export.
    pub fn remaining(&self) -> usize {
        self.pending.len()
    }

    /// The UID that an original UID (a Study Instance UID...) has in this export: the new
    /// one when de-identified (unless Retain UIDs), else itself.
    pub fn exported_uid(&self, original: &str) -> String {
        match &self.deid {
            Some(d) => d.replacement_uid(original),
            None => original.to_string(),
        }
    }

    /// Whether the instances are de-identified.
    pub fn deidentified(&self) -> bool {
        self.deid.is_some()
    }

    /// Reads (and de-identifies) the next instance; `None` when all are done.
    pub async fn next(&mut self) -> Option<Result<ExportedInstance, AppError>> {
        let inst = self.pending.pop_front()?;
        Some(self.export(inst).await)
    }

    async fn export(&self, inst: StoredInstance) -> Result<ExportedInstance, AppError> {
        let bytes = inst.read().await?;
        let Some(deid) = self.deid.clone() else {
            return Ok(ExportedInstance {
                sop_instance_uid: inst.sop_instance_uid,
                bytes: bytes.to_vec(),
                warnings: Vec::new(),
            });
        };
        let uid = inst.sop_instance_uid.clone();
        let out = tokio::task::spawn_blocking(move || deid.deidentify(&bytes))
            .await
            .map_err(AppError::internal)?
            .map_err(|e| AppError::Internal(format!("instance {uid}: {e}")))?;
        Ok(ExportedInstance {
            sop_instance_uid: out.sop_instance_uid,
            bytes: out.bytes,
            warnings: out.warnings,
        })
    }
}

/// 32 random bytes from the operating system.
fn random_secret() -> Result<Secret, AppError> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| AppError::Internal(format!("no randomness: {e}")))?;
    Ok(Secret::from_bytes(b))
}

impl App {
    /// Starts the export of a study: every stored instance, de-identified with `deid`'s
    /// options under a new secret, or as stored when `deid` is `None`.
    pub async fn export_study(
        &self,
        actor: &Actor,
        study_uid: &str,
        deid: Option<Options>,
    ) -> Result<StudyExport, AppError> {
        self.export_studies(actor, &[study_uid.to_string()], deid)
            .await
    }

    /// [`export_study`](Self::export_study) of several studies under one secret, so that
    /// a patient keeps one pseudonym and one date shift across them (longitudinal
    /// research), in the order given.
    pub async fn export_studies(
        &self,
        actor: &Actor,
        study_uids: &[String],
        deid: Option<Options>,
    ) -> Result<StudyExport, AppError> {
        let detail = if deid.is_some() {
            "export de-identified (PS3.15 Annex E)"
        } else {
            "export as stored"
        };
        let mut pending = VecDeque::new();
        for study_uid in study_uids {
            check_study(study_uid)?;
            // The actor's role must allow exports and the study must be of its
            // organisation; each study exported is audited (awaited) before a byte leaves.
            let access = self
                .authorize_study(
                    actor,
                    Permission::Export,
                    AuditAction::Export,
                    study_uid,
                    detail,
                )
                .await?;
            let scope = Scope {
                study_uid: Some(study_uid.clone()),
                org: self.org_scope(actor),
                ..Scope::default()
            };
            let instances = self.store.instances(&scope).await?;
            if instances.is_empty() {
                return Err(AppError::NotFound(format!("no study {study_uid}")));
            }
            self.audit_study(
                actor,
                AuditAction::Export,
                AuditOutcome::Success,
                &access,
                None,
                detail,
            )
            .await;
            // The export is recorded on the ledger before a byte leaves.
            let entry = crate::ledger::record(
                crate::ledger::STUDY_EXPORTED,
                study_uid,
                actor,
                lumen_report::time::now_ms(),
                &[],
            )?;
            self.store.append_ledger_entry(&entry).await?;
            pending.extend(instances);
        }
        let deid = match deid {
            Some(options) => Some(Deidentifier::new(options, random_secret()?)),
            None => None,
        };
        Ok(StudyExport { pending, deid })
    }
}
