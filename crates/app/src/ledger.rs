//! The ledger on this node: the events recorded (a report signed, an addendum, a
//! de-identified export), the sequencer that integrates them into the published log, and
//! inclusion proofs.
//!
//! Use cases make a [`lumen_store::NewLedgerEntry`] with [`record`] and hand it to the store
//! in the transaction of the event itself (`Store::commit_signature`), or in a transaction
//! of its own for events that have none (an export). The entry holds the event type, its
//! time and a salted commitment to the event's canonical form; the event's fields and the
//! salt stay in the index. The [`Sequencer`] (started by `lumen serve`) integrates new
//! entries every second: entry bundles and hash tiles under `DATA/ledger/`, then the
//! checkpoint signed with the node's key.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use lumen_ledger::tiles::CHECKPOINT;
use lumen_ledger::{Event, LedgerEntry, LogSigner, TileStore};
use lumen_store::{NewLedgerEntry, Store};
use serde::Serialize;

use crate::{Actor, App, AppError};

/// Event type: a report signed.
pub const REPORT_SIGNED: &str = "report.signed";
/// Event type: an addendum signed.
pub const REPORT_ADDENDUM: &str = "report.addendum";
/// Event type: a study exported (de-identified or as stored).
pub const STUDY_EXPORTED: &str = "study.exported";

/// Most entries integrated in one checkpoint.
const BATCH: u32 = 4096;

/// Makes the ledger entry of an event: a fresh random salt and the commitment to the
/// event's canonical form (type, study, actor, organisation, time, objects).
///
/// # Errors
///
/// No randomness available.
pub fn record(
    kind: &str,
    study_uid: &str,
    actor: &Actor,
    time_ms: i64,
    objects: &[String],
) -> Result<NewLedgerEntry, AppError> {
    let mut salt = [0u8; 32];
    getrandom::fill(&mut salt).map_err(|e| AppError::Internal(format!("no randomness: {e}")))?;
    let time = time_ms.to_string();
    let event = Event {
        kind,
        study_uid,
        actor: &actor.user_id,
        org: &actor.org,
        time: &time,
        objects,
    };
    let json = serde_json::json!({
        "kind": kind,
        "study_uid": study_uid,
        "actor": actor.user_id,
        "org": actor.org,
        "time": time,
        "objects": objects,
    });
    Ok(NewLedgerEntry {
        kind: kind.to_string(),
        time: time_ms.div_euclid(1000),
        commitment: event.commit(&salt),
        salt,
        study_uid: Some(study_uid.to_string()),
        event: json.to_string(),
    })
}

/// The published bytes of an entry as the index keeps it.
fn entry_bytes(row: &lumen_store::LedgerRow) -> Vec<u8> {
    LedgerEntry {
        kind: row.kind.clone(),
        time: row.time,
        commitment: row.commitment,
    }
    .to_bytes()
}

/// Integrates the index's new entries into the published log.
#[derive(Debug, Clone)]
pub struct Sequencer {
    store: Store,
    signer: Arc<LogSigner>,
}

impl Sequencer {
    /// A sequencer of `store`'s log, signing with `signer`.
    pub fn new(store: Store, signer: Arc<LogSigner>) -> Self {
        Sequencer { store, signer }
    }

    /// Integrates the entries the log does not have yet (up to 4,096); returns the new
    /// tree size, or `None` when there was nothing to do.
    ///
    /// # Errors
    ///
    /// The index or the files failed, or the published log is not the one this key signed.
    pub async fn integrate(&self) -> Result<Option<u64>, AppError> {
        let files = self.store.ledger_files();
        let size = {
            let (files, signer) = (files.clone(), self.signer.clone());
            tokio::task::spawn_blocking(move || current_size(&files, &signer))
                .await
                .map_err(AppError::internal)??
        };
        let rows = self.store.ledger_entries(size, BATCH).await?;
        if rows.is_empty() {
            return Ok(None);
        }
        for (i, row) in (size..).zip(&rows) {
            if row.seq != i {
                return Err(AppError::Internal(format!(
                    "ledger entry {i} is missing from the index (found {})",
                    row.seq
                )));
            }
        }
        let entries: Vec<Vec<u8>> = rows.iter().map(entry_bytes).collect();
        let signer = self.signer.clone();
        let mut files = files;
        let done = tokio::task::spawn_blocking(move || {
            lumen_ledger::integrate(&mut files, &signer, &entries)
        })
        .await
        .map_err(AppError::internal)?
        .map_err(|e| AppError::Internal(format!("ledger: {e}")))?;
        tracing::debug!(
            from = done.old_size,
            to = done.size,
            "ledger checkpoint published"
        );
        Ok(Some(done.size))
    }

    /// Runs [`integrate`](Self::integrate) every `period` until the task is dropped;
    /// failures are logged and retried at the next tick.
    pub fn spawn(self, period: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = self.integrate().await {
                    tracing::error!(error = %e, "ledger integration failed");
                }
            }
        })
    }
}

fn current_size(files: &lumen_store::LedgerFiles, signer: &LogSigner) -> Result<u64, AppError> {
    match files
        .read(CHECKPOINT)
        .map_err(|e| AppError::Internal(e.to_string()))?
    {
        None => Ok(0),
        Some(bytes) => lumen_ledger::open_checkpoint(&bytes, &*signer.verifier())
            .map(|c| c.size)
            .map_err(|e| AppError::Internal(format!("ledger checkpoint: {e}"))),
    }
}

/// An inclusion proof of one entry in the latest checkpoint, as the API serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerProof {
    /// The entry's index in the tree.
    pub index: u64,
    /// The entry as published (`lumen/v1 <kind> <time> <commitment>`).
    pub entry: String,
    /// Its RFC 6962 leaf hash, base64.
    pub leaf_hash: String,
    /// The tree size of the checkpoint.
    pub tree_size: u64,
    /// The checkpoint's root hash, base64.
    pub root_hash: String,
    /// The audit path, leaf level first, base64 hashes.
    pub inclusion_proof: Vec<String>,
    /// The signed checkpoint the proof leads to.
    pub checkpoint: String,
}

impl App {
    /// A published ledger resource by its C2SP path (`checkpoint`, `tile/...`); `None` for
    /// an absent one or a path that is not a C2SP path. Public: the log holds no patient
    /// data.
    ///
    /// # Errors
    ///
    /// The file could not be read.
    pub async fn ledger_resource(&self, path: &str) -> Result<Option<Vec<u8>>, AppError> {
        let files = self.store.ledger_files();
        let path = path.to_string();
        Ok(
            tokio::task::spawn_blocking(move || files.read_resource(&path))
                .await
                .map_err(AppError::internal)??,
        )
    }

    /// The inclusion proof of entry `index` in the latest checkpoint. Entries, hashes and
    /// checkpoints are public (no patient data), so anyone may ask.
    ///
    /// # Errors
    ///
    /// [`AppError::NotFound`] when the entry is not yet in a checkpoint.
    pub async fn ledger_proof(&self, index: u64) -> Result<LedgerProof, AppError> {
        let files = self.store.ledger_files();
        let vkey = self.settings.ledger_vkey.clone();
        tokio::task::spawn_blocking(move || proof(&files, vkey.as_deref(), index))
            .await
            .map_err(AppError::internal)?
    }
}

fn proof(
    files: &lumen_store::LedgerFiles,
    vkey: Option<&str>,
    index: u64,
) -> Result<LedgerProof, AppError> {
    let internal = |e: &dyn std::fmt::Display| AppError::Internal(format!("ledger: {e}"));
    let vkey = vkey.ok_or_else(|| AppError::Unavailable("this node keeps no ledger".into()))?;
    let verifier = lumen_ledger::note::parse_verifier(vkey).map_err(|e| internal(&e))?;
    let bytes = files
        .read(CHECKPOINT)
        .map_err(|e| internal(&e))?
        .ok_or_else(|| AppError::NotFound("the ledger has no checkpoint yet".into()))?;
    let cp = lumen_ledger::open_checkpoint(&bytes, &*verifier).map_err(|e| internal(&e))?;
    if index >= cp.size {
        return Err(AppError::NotFound(format!(
            "ledger entry {index} is not in the latest checkpoint (size {})",
            cp.size
        )));
    }
    let bundle_index = index / lumen_ledger::TILE_WIDTH;
    let path = lumen_ledger::tiles::bundle_path(
        bundle_index,
        lumen_ledger::tiles::tile_width(0, bundle_index, cp.size),
    );
    let bundle = files
        .read(&path)
        .map_err(|e| internal(&e))?
        .ok_or_else(|| internal(&format!("{path} is missing")))?;
    let entries = lumen_ledger::tiles::decode_bundle(&bundle).map_err(|e| internal(&e))?;
    let entry = entries
        .get((index % lumen_ledger::TILE_WIDTH) as usize)
        .ok_or_else(|| internal(&format!("{path} is short")))?;
    let path = lumen_ledger::inclusion_proof(files, cp.size, index).map_err(|e| internal(&e))?;
    Ok(LedgerProof {
        index,
        entry: String::from_utf8_lossy(entry).into_owned(),
        leaf_hash: BASE64_STANDARD.encode(lumen_ledger::Algorithms::default().leaf_hash(entry).0),
        tree_size: cp.size,
        root_hash: BASE64_STANDARD.encode(cp.root.0),
        inclusion_proof: path.iter().map(|h| BASE64_STANDARD.encode(h.0)).collect(),
        checkpoint: String::from_utf8_lossy(&bytes).into_owned(),
    })
}
