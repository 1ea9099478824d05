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
/// Event type: a patient link (云胶片) created.
pub const PATIENT_LINK_CREATED: &str = "patient-link.created";
/// Event type: a patient link revoked.
pub const PATIENT_LINK_REVOKED: &str = "patient-link.revoked";

/// Most entries integrated in one checkpoint.
const BATCH: u32 = 4096;

/// The default age past which the latest checkpoint is not fresh (five minutes).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);

fn now_s() -> u64 {
    u64::try_from(lumen_report::time::now_ms() / 1000).unwrap_or(0)
}

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
    witnessing: Option<Witnessing>,
    max_age: Duration,
}

impl Sequencer {
    /// A sequencer of `store`'s log, signing with `signer`.
    pub fn new(store: Store, signer: Arc<LogSigner>) -> Self {
        Sequencer {
            store,
            signer,
            witnessing: None,
            max_age: DEFAULT_MAX_AGE,
        }
    }

    /// Flags the checkpoint as not fresh past `max_age`. To stay fresh while no entry
    /// arrives, the sequencer re-publishes the same checkpoint, and asks the witnesses to
    /// cosign it again, once half of that age has passed.
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Half the maximum age, in seconds: when the checkpoint is renewed.
    fn renew_after(&self) -> u64 {
        self.max_age.as_secs() / 2
    }

    /// Integrates the entries the log does not have yet (up to 4,096), or publishes the
    /// empty checkpoint of a new log; returns the new tree size, or `None` when there was
    /// nothing to do.
    ///
    /// # Errors
    ///
    /// The index or the files failed, or the published log is not the one this key signed.
    pub async fn integrate(&self) -> Result<Option<u64>, AppError> {
        let files = self.store.ledger_files();
        let published = {
            let (files, signer) = (files.clone(), self.signer.clone());
            tokio::task::spawn_blocking(move || current_size(&files, &signer))
                .await
                .map_err(AppError::internal)??
        };
        let size = published.unwrap_or(0);
        let rows = self.store.ledger_entries(size, BATCH).await?;
        // A new log publishes its empty checkpoint (size 0) at once, so that it can be
        // verified and witnessed before its first entry.
        if rows.is_empty() && published.is_some() {
            self.renew().await?;
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

    /// Re-publishes the unchanged checkpoint (the same bytes) once half the maximum age has
    /// passed since it was written, so that its write time says the log is alive.
    async fn renew(&self) -> Result<(), AppError> {
        let files = self.store.ledger_files();
        let renew_after = self.renew_after();
        tokio::task::spawn_blocking(move || {
            let internal = |e: &dyn std::fmt::Display| AppError::Internal(format!("ledger: {e}"));
            let written = files.checkpoint_written()?;
            if written.is_some_and(|w| now_s().saturating_sub(w) < renew_after) {
                return Ok(());
            }
            if let Some(bytes) = files.read(CHECKPOINT).map_err(|e| internal(&e))? {
                let mut files = files;
                files.write(CHECKPOINT, &bytes).map_err(|e| internal(&e))?;
            }
            Ok(())
        })
        .await
        .map_err(AppError::internal)?
    }

    /// The status of the published checkpoint, as [`App::ledger_status`] reports it.
    async fn status(&self) -> Result<Option<LedgerStatus>, AppError> {
        let files = self.store.ledger_files();
        let vkey = self.signer.vkey();
        let (witnesses, quorum) = self.witnessing.as_ref().map_or((Vec::new(), 0), |w| {
            (
                w.witnesses.iter().map(|x| x.key.clone()).collect(),
                w.quorum,
            )
        });
        let max_age = self.max_age;
        tokio::task::spawn_blocking(move || {
            checkpoint_status(&files, &vkey, &witnesses, quorum, max_age, now_s())
        })
        .await
        .map_err(AppError::internal)?
    }

    /// Runs [`integrate`](Self::integrate) every `period` until the task is dropped;
    /// failures are logged and retried at the next tick. A checkpoint older than the
    /// maximum age is logged as a warning once, when it becomes stale.
    pub fn spawn(self, period: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut was_fresh = true;
            loop {
                tick.tick().await;
                if let Err(e) = self.integrate().await {
                    tracing::error!(error = %e, "ledger integration failed");
                }
                if let Err(e) = self.collect_cosignatures().await {
                    tracing::error!(error = %e, "collecting cosignatures failed");
                }
                match self.status().await {
                    Ok(Some(s)) => {
                        if was_fresh && !s.fresh {
                            tracing::warn!(size = s.size, age_s = ?s.age_s,
                                max_age_s = s.max_age_s, cosignatures = s.cosignatures.len(),
                                "the ledger checkpoint is not fresh");
                        }
                        was_fresh = s.fresh;
                    }
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, "ledger status failed"),
                }
            }
        })
    }
}

/// The size of the published checkpoint; `None` when there is none yet.
fn current_size(
    files: &lumen_store::LedgerFiles,
    signer: &LogSigner,
) -> Result<Option<u64>, AppError> {
    match files
        .read(CHECKPOINT)
        .map_err(|e| AppError::Internal(e.to_string()))?
    {
        None => Ok(None),
        Some(bytes) => lumen_ledger::open_checkpoint(&bytes, &*signer.verifier())
            .map(|c| Some(c.size))
            .map_err(|e| AppError::Internal(format!("ledger checkpoint: {e}"))),
    }
}

/// The latest checkpoint and whether it is fresh, as `GET /api/ledger/status` serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerStatus {
    /// The log's origin.
    pub origin: String,
    /// The tree size.
    pub size: u64,
    /// The root hash, base64.
    pub root_hash: String,
    /// The checkpoint's time (POSIX seconds): its newest witness cosignature, or when this
    /// node wrote it (`lumen_ledger::cosign::checkpoint_time`).
    pub time: Option<u64>,
    /// Its age in seconds.
    pub age_s: Option<u64>,
    /// The age past which it is not fresh (`[ledger] max_checkpoint_age_s`).
    pub max_age_s: u64,
    /// Whether it is younger than that.
    pub fresh: bool,
    /// The configured witnesses whose cosignatures on it verify.
    pub cosignatures: Vec<CosignatureStatus>,
    /// How many cosignatures make it final.
    pub quorum: usize,
    /// Whether that many have cosigned.
    pub quorum_reached: bool,
}

/// A verified cosignature on the latest checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CosignatureStatus {
    /// The witness's name.
    pub name: String,
    /// When it cosigned (POSIX seconds).
    pub timestamp: u64,
}

/// The status of the checkpoint in `files` signed by `vkey`, at `now`; `None` when there is
/// no checkpoint yet.
fn checkpoint_status(
    files: &lumen_store::LedgerFiles,
    vkey: &str,
    witnesses: &[lumen_ledger::cosign::CosignatureVerifier],
    quorum: usize,
    max_age: Duration,
    now: u64,
) -> Result<Option<LedgerStatus>, AppError> {
    use lumen_ledger::cosign::{checkpoint_time, is_stale, verified_cosigners};
    let internal = |e: &dyn std::fmt::Display| AppError::Internal(format!("ledger: {e}"));
    let verifier = lumen_ledger::note::parse_verifier(vkey).map_err(|e| internal(&e))?;
    let Some(bytes) = files.read(CHECKPOINT).map_err(|e| internal(&e))? else {
        return Ok(None);
    };
    let written = files.checkpoint_written()?;
    let cp = lumen_ledger::open_checkpoint(&bytes, &*verifier).map_err(|e| internal(&e))?;
    let cosigned = verified_cosigners(&bytes, witnesses).map_err(|e| internal(&e))?;
    let time = checkpoint_time(&cosigned, written);
    Ok(Some(LedgerStatus {
        origin: cp.origin,
        size: cp.size,
        root_hash: BASE64_STANDARD.encode(cp.root.0),
        time,
        age_s: time.map(|t| now.saturating_sub(t)),
        max_age_s: max_age.as_secs(),
        fresh: !is_stale(time, now, max_age.as_secs()),
        quorum,
        quorum_reached: cosigned.len() >= quorum,
        cosignatures: cosigned
            .into_iter()
            .map(|c| CosignatureStatus {
                name: c.name,
                timestamp: c.timestamp,
            })
            .collect(),
    }))
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

    /// The latest checkpoint's size, root, age, cosignatures and whether it is fresh and
    /// final. Public, as the checkpoint is.
    ///
    /// # Errors
    ///
    /// [`AppError::Unavailable`] when this node keeps no ledger, [`AppError::NotFound`]
    /// before its first checkpoint; the files failed.
    pub async fn ledger_status(&self) -> Result<LedgerStatus, AppError> {
        let files = self.store.ledger_files();
        let vkey = self
            .settings
            .ledger_vkey
            .clone()
            .ok_or_else(|| AppError::Unavailable("this node keeps no ledger".into()))?;
        let witnesses = self.settings.ledger_witnesses.clone();
        let (quorum, max_age) = (self.settings.ledger_quorum, self.settings.ledger_max_age);
        tokio::task::spawn_blocking(move || {
            checkpoint_status(&files, &vkey, &witnesses, quorum, max_age, now_s())
        })
        .await
        .map_err(AppError::internal)??
        .ok_or_else(|| AppError::NotFound("the ledger has no checkpoint yet".into()))
    }

    /// Carries out a deletion request (PIPL Art. 47) for a study: deletes the salts of its
    /// ledger entries, so that they can no longer be shown to commit to its events. The
    /// entries stay in the tree (every proof and checkpoint still verifies). Only the
    /// command line may; the deletion is audited (durably) before it returns. Returns how
    /// many salts were deleted (0 when already forgotten or never recorded).
    ///
    /// # Errors
    ///
    /// [`AppError::Forbidden`] for any other actor; a malformed UID; the index failed.
    pub async fn forget_study_ledger(
        &self,
        actor: &Actor,
        study_uid: &str,
    ) -> Result<u64, AppError> {
        use lumen_model::{AuditAction, AuditOutcome};
        crate::check_study(study_uid)?;
        let detail = "delete ledger salts (PIPL Art. 47)";
        self.require(
            actor,
            crate::Permission::Forget,
            AuditAction::Forget,
            detail,
        )
        .await?;
        let forgotten = self.store.forget_ledger_salts(study_uid).await?;
        let mut e = self.event(
            actor,
            AuditAction::Forget,
            AuditOutcome::Success,
            &format!("{detail}: {forgotten} entries"),
        );
        e.study_uid = Some(study_uid.to_string());
        self.auditor().record_durable(e).await;
        Ok(forgotten)
    }

    /// When the checkpoint was last written (POSIX seconds), for `Last-Modified`.
    ///
    /// # Errors
    ///
    /// The file could not be read.
    pub async fn ledger_checkpoint_written(&self) -> Result<Option<u64>, AppError> {
        let files = self.store.ledger_files();
        Ok(
            tokio::task::spawn_blocking(move || files.checkpoint_written())
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

/// This node as a witness of other nodes' logs (`[ledger] witness_of`): its cosigning key
/// and the verifier keys of the logs it witnesses (each log's origin is its key's name).
pub struct WitnessRole {
    cosigner: lumen_ledger::cosign::Cosigner,
    logs: Vec<Box<dyn signed_note::Verifier + Send + Sync>>,
}

impl std::fmt::Debug for WitnessRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WitnessRole")
            .field("cosigner", &self.cosigner)
            .field(
                "logs",
                &self.logs.iter().map(|l| l.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl WitnessRole {
    /// A witness cosigning with `cosigner` the logs whose verifier keys are `log_keys`.
    ///
    /// # Errors
    ///
    /// A malformed or non-Ed25519 log key.
    pub fn new(
        cosigner: lumen_ledger::cosign::Cosigner,
        log_keys: &[String],
    ) -> Result<Self, AppError> {
        let logs = log_keys
            .iter()
            .map(|k| {
                signed_note::StandardVerifier::new(k.trim())
                    .map(|v| Box::new(v) as Box<dyn signed_note::Verifier + Send + Sync>)
                    .map_err(|e| AppError::Invalid(format!("log key {k:?}: {e}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(WitnessRole { cosigner, logs })
    }

    /// The witness's cosignature/v1 verifier key.
    pub fn vkey(&self) -> String {
        self.cosigner.vkey()
    }
}

/// A witness's answer to `add-checkpoint`: the cosignature lines, or a refusal with its
/// status (c2sp.org/tlog-witness).
pub type WitnessAnswer = Result<String, lumen_ledger::witness::WitnessError>;

impl App {
    /// `POST /ledger/add-checkpoint` on this node as a witness: checks the checkpoint of a
    /// log it witnesses against what it last cosigned of it, records the new state, then
    /// answers the cosignature. Checking and recording are atomic (one at a time).
    ///
    /// # Errors
    ///
    /// [`AppError::Unavailable`] when this node witnesses no log; the index failed.
    pub async fn witness_add_checkpoint(&self, body: &[u8]) -> Result<WitnessAnswer, AppError> {
        use lumen_ledger::witness::{AddCheckpoint, WitnessError, WitnessState, add_checkpoint};
        let Some(role) = self.settings.witness.clone() else {
            return Err(AppError::Unavailable("this node witnesses no log".into()));
        };
        let req = match AddCheckpoint::parse(body) {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        let origin = String::from_utf8_lossy(
            req.checkpoint
                .split(|&b| b == b'\n')
                .next()
                .unwrap_or_default(),
        )
        .into_owned();
        let Some(log) = role.logs.iter().find(|l| l.name() == origin) else {
            return Ok(Err(WitnessError::UnknownLog(origin)));
        };
        let _one_at_a_time = self.witness_lock.lock().await;
        let last = self
            .store
            .witness_state(&origin)
            .await?
            .map(|(size, root)| WitnessState {
                size,
                root: lumen_ledger::Hash(root),
            });
        let now = now_s();
        match add_checkpoint(&req, &origin, &**log, last, &role.cosigner, now) {
            Ok(accepted) => {
                self.store
                    .set_witness_state(&origin, accepted.state.size, &accepted.state.root.0)
                    .await?;
                tracing::info!(log = %origin, size = accepted.state.size, "checkpoint cosigned");
                Ok(Ok(accepted.body))
            }
            Err(e) => {
                tracing::warn!(log = %origin, error = %e, "checkpoint refused");
                Ok(Err(e))
            }
        }
    }
}

/// Sends a witness request: the seam between the sequencer and HTTP (the binary's client).
pub trait WitnessClient: Send + Sync {
    /// POSTs `body` to `url`; the status and the body of the answer.
    ///
    /// # Errors
    ///
    /// The witness could not be reached.
    fn post(&self, url: &str, body: &[u8]) -> Result<(u16, Vec<u8>), String>;
}

/// A witness this log asks for cosignatures (`[ledger] witnesses`).
#[derive(Debug, Clone)]
pub struct LogWitness {
    /// The witness's `add-checkpoint` URL.
    pub url: String,
    /// Its cosignature/v1 verifier key.
    pub key: lumen_ledger::cosign::CosignatureVerifier,
}

/// The witnesses of a log and how to reach them.
#[derive(Clone)]
pub(crate) struct Witnessing {
    witnesses: Vec<LogWitness>,
    client: Arc<dyn WitnessClient>,
    quorum: usize,
    /// The size each witness last cosigned, as far as this log knows.
    known: Arc<std::sync::Mutex<std::collections::HashMap<String, u64>>>,
}

impl std::fmt::Debug for Witnessing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Witnessing")
            .field("witnesses", &self.witnesses)
            .field("quorum", &self.quorum)
            .finish_non_exhaustive()
    }
}

impl Sequencer {
    /// Asks `witnesses` to cosign each new checkpoint (over `client`); a checkpoint is final
    /// when `quorum` of them have.
    pub fn with_witnesses(
        mut self,
        witnesses: Vec<LogWitness>,
        client: Arc<dyn WitnessClient>,
        quorum: usize,
    ) -> Self {
        self.witnessing = Some(Witnessing {
            witnesses,
            client,
            quorum,
            known: Arc::default(),
        });
        self
    }

    /// Collects the cosignatures the current checkpoint lacks and publishes the checkpoint
    /// with them. A witness that is unreachable is asked again at the next tick; one that
    /// answers 409 (it was offline, or this log forgot its size) is sent the consistency
    /// proof from the size it names.
    async fn collect_cosignatures(&self) -> Result<(), AppError> {
        let Some(w) = self.witnessing.clone() else {
            return Ok(());
        };
        let files = self.store.ledger_files();
        let signer = self.signer.clone();
        let renew_after = self.renew_after();
        tokio::task::spawn_blocking(move || collect(&files, &signer, &w, renew_after))
            .await
            .map_err(AppError::internal)?
    }
}

/// Asks each witness whose cosignature the checkpoint lacks, or whose cosignature is older
/// than `renew_after` seconds, to cosign it.
fn collect(
    files: &lumen_store::LedgerFiles,
    signer: &LogSigner,
    w: &Witnessing,
    renew_after: u64,
) -> Result<(), AppError> {
    use lumen_ledger::cosign::{add_cosignatures, verified_cosigners};
    use lumen_ledger::witness::{AddCheckpoint, parse_conflict};
    let internal = |e: &dyn std::fmt::Display| AppError::Internal(format!("ledger: {e}"));
    let Some(mut note) = files.read(CHECKPOINT).map_err(|e| internal(&e))? else {
        return Ok(());
    };
    let cp = lumen_ledger::open_checkpoint(&note, &*signer.verifier()).map_err(|e| internal(&e))?;
    let mut changed = false;
    for witness in &w.witnesses {
        let now = now_s();
        let have = verified_cosigners(&note, std::slice::from_ref(&witness.key))
            .map(|c| {
                c.iter()
                    .any(|c| now.saturating_sub(c.timestamp) < renew_after)
            })
            .unwrap_or(false);
        if have {
            continue;
        }
        let mut old = w
            .known
            .lock()
            .map(|k| k.get(&witness.url).copied().unwrap_or(0))
            .unwrap_or(0);
        // Twice at most: a 409 tells the size the witness has.
        for _ in 0..2 {
            if old > cp.size {
                tracing::error!(witness = %witness.url, witness_size = old, size = cp.size,
                    "a witness has cosigned a larger tree than this log's");
                break;
            }
            let proof =
                lumen_ledger::consistency_proof(files, old, cp.size).map_err(|e| internal(&e))?;
            let body = AddCheckpoint {
                old_size: old,
                proof,
                checkpoint: note.clone(),
            }
            .to_bytes();
            match w.client.post(&witness.url, &body) {
                Ok((200, lines)) => {
                    match add_cosignatures(&note, &lines, std::slice::from_ref(&witness.key)) {
                        Ok(with) => {
                            changed |= with != note;
                            note = with;
                            if let Ok(mut k) = w.known.lock() {
                                k.insert(witness.url.clone(), cp.size);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(witness = %witness.url, error = %e, "bad cosignature");
                        }
                    }
                    break;
                }
                Ok((409, size)) => match parse_conflict(&size) {
                    Some(s) if s != old => old = s,
                    _ => {
                        tracing::error!(witness = %witness.url, size = cp.size,
                            "a witness refuses this checkpoint as a fork of what it cosigned");
                        break;
                    }
                },
                Ok((status, body)) => {
                    tracing::warn!(witness = %witness.url, status,
                        answer = %String::from_utf8_lossy(&body), "witness refused the checkpoint");
                    break;
                }
                Err(e) => {
                    tracing::debug!(witness = %witness.url, error = %e, "witness unreachable");
                    break;
                }
            }
        }
    }
    if changed {
        let count = verified_cosigners(
            &note,
            &w.witnesses
                .iter()
                .map(|x| x.key.clone())
                .collect::<Vec<_>>(),
        )
        .map(|c| c.len())
        .unwrap_or(0);
        let mut files = files.clone();
        files.write(CHECKPOINT, &note).map_err(|e| internal(&e))?;
        if count >= w.quorum {
            tracing::info!(
                size = cp.size,
                cosignatures = count,
                "ledger checkpoint final"
            );
        }
    }
    Ok(())
}
