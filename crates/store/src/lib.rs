//! The archive: a durable index of DICOM objects and the files that hold them.
//!
//! [`Store::ingest`] is the one path every front door (C-STORE, STOW-RS, `lumen import`,
//! the AI's results, signed reports, `lumen retrieve --data`) uses to keep an object;
//! [`Store::search`] is the one query path behind QIDO-RS and C-FIND. Only this crate knows
//! SQL and file paths. The embedded default is SQLite plus files under a data directory;
//! the objects may instead live in an S3-compatible bucket ([`ObjectStorage`], see
//! `objects.rs`), uploaded whole before the index commits.
//!
//! Routing: with a [`Router`] in the [`StoreConfig`], a newly stored instance is queued for
//! its destinations in the [`outbox`](Store::claim_outbox) by the very transaction that
//! indexes it.
//!
//! Durability: the object is written to a temporary file and renamed into place; its fsync
//! (file, then directory) runs beside the index commit, and the sender is answered only
//! after both. Until the next transaction learns the file is on disk its row carries
//! `synced = 0`, and [`Store::open`] checks such files against their SHA-256. A crash thus
//! leaves either the whole instance (indexed) or nothing: an unindexed file is swept away
//! at the next start, and an indexed one whose bytes a power loss took is un-indexed.

mod accounts;
mod blobs;
mod content;
mod db;
mod ledger;
mod objects;
mod outbox;
mod patient_links;
mod patients;
mod query_sql;
mod shares;
mod stats;
mod writer;
mod writer_pg;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use db::{Pools, with_db};
use dicom_dictionary_std::tags;
use lumen_dicom::attrs::{IndexRecord, Level};
use lumen_dicom::json::tag_key;
use lumen_dicom::query::Query;
use serde_json::{Map, Value, json};
use sqlx::Row;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use accounts::{AuditFilter, NewUser, OrgRow, SessionRow, UserRow};
use blobs::Blobs;
pub use ledger::{LedgerFiles, LedgerRow, NewLedgerEntry, has_ledger_key, ledger_key, witness_key};
use objects::{Location, Objects};
pub use objects::{MULTIPART_THRESHOLD, ORPHAN_MIN_AGE, ObjectStorage, S3Config, SecretString};
pub use outbox::{Arrival, LEGACY_QUEUE_FILE, Origin, OutboxEntry, Router, RoutingQueue};
pub use patient_links::{NewPatientLink, PatientLinkRow};
pub use patients::{GrantProgress, LinkOutcome, PatientStudy};
pub use shares::{GrantRow, QueuedInstance, ShareOutboxEntry, ShareRow, kind as share_kind};
pub use stats::Gauges;
use writer::{Commit, Job, Pending};

/// What to do when an object arrives whose SOP Instance UID is stored with other content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConflictPolicy {
    /// Refuse the new object (the default: the archive never silently changes an image).
    #[default]
    Reject,
    /// Replace the stored object with the new one.
    Replace,
}

/// How to open a store.
#[derive(Clone)]
pub struct StoreConfig {
    /// The data directory (index database and object files).
    pub data_dir: PathBuf,
    /// Policy for a different object with an already stored SOP Instance UID.
    pub on_conflict: ConflictPolicy,
    /// Accept SOP classes that are not standard storage classes (private classes).
    pub accept_unknown_sop_classes: bool,
    /// Modalities whose series get an AI job when instances arrive.
    pub ai_modalities: Vec<String>,
    /// Where newly stored instances are forwarded (none: nothing is routed). It is asked
    /// inside the ingest transaction, which writes the outbox rows.
    pub router: Option<Arc<dyn Router>>,
    /// The node's own organisation: studies stored without one ([`Store::ingest`]) and
    /// those indexed before organisations existed belong to it.
    pub default_org: String,
    /// Its name (created with it when absent).
    pub default_org_name: String,
    /// The index database: `None` for the embedded SQLite file in the data directory, or a
    /// `postgres://USER:PASS@HOST:PORT/DB` URL (object files stay in the data directory).
    pub database: Option<String>,
    /// Where the objects are kept: files under the data directory (the default) or an
    /// S3-compatible bucket. The index is SQLite in the data directory or `database`.
    pub storage: ObjectStorage,
}

impl std::fmt::Debug for StoreConfig {
    /// As derived, but for the database URL, whose password is not shown (configurations
    /// end up in logs and error reports).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("data_dir", &self.data_dir)
            .field("on_conflict", &self.on_conflict)
            .field(
                "accept_unknown_sop_classes",
                &self.accept_unknown_sop_classes,
            )
            .field("ai_modalities", &self.ai_modalities)
            .field("router", &self.router)
            .field("default_org", &self.default_org)
            .field("default_org_name", &self.default_org_name)
            .field("database", &self.database.as_deref().map(redacted_url))
            .finish()
    }
}

/// A database URL without its password (`postgres://user:***@host/db`).
fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".into();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_string(),
    }
}

impl StoreConfig {
    /// Defaults for a data directory: reject conflicts, standard storage classes only.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        StoreConfig {
            data_dir: data_dir.into(),
            on_conflict: ConflictPolicy::Reject,
            accept_unknown_sop_classes: false,
            ai_modalities: vec!["CT".into()],
            router: None,
            default_org: "local".into(),
            default_org_name: "Lumen".into(),
            database: None,
            storage: ObjectStorage::Files,
        }
    }
}

/// Why an object was not stored. `Display` never includes patient data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The bytes are not an acceptable DICOM object (the sender's fault).
    #[error("{0}")]
    Invalid(String),
    /// The SOP class is not one this archive stores.
    #[error("SOP class {0} is not a storage SOP class this archive accepts")]
    UnsupportedSopClass(String),
    /// Another object with the same SOP Instance UID is stored, or the series belongs to
    /// another study.
    #[error("{0}")]
    Conflict(String),
    /// The archive failed (disk, database); the object was not stored.
    #[error("storage failure: {0}")]
    Internal(String),
    /// The sender may not store objects here.
    #[error("{0}")]
    Forbidden(String),
}

/// A failure of the archive itself (not of the request).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The index database failed.
    #[error("index database error: {0}")]
    Db(#[from] sqlx::Error),
    /// A migration failed.
    #[error("index migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A file operation failed.
    #[error("file error: {0}")]
    Io(#[from] std::io::Error),
    /// The object storage (an S3-compatible bucket) failed or is misconfigured.
    #[error("object storage error: {0}")]
    Objects(String),
    /// Another process (a running `lumen serve`?) has the data directory open.
    #[error("data directory {} is in use by another Lumen process; stop it first, or send the files to it over DICOM or DICOMweb", .0.display())]
    Locked(PathBuf),
    /// Stored JSON could not be read back.
    #[error("corrupt index entry: {0}")]
    Corrupt(String),
    /// The configuration asks for something this build cannot do (the message says what).
    #[error("{0}")]
    Unsupported(String),
}

/// The result of a successful ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestStatus {
    /// A new instance was stored.
    Stored,
    /// An identical instance was already stored; nothing changed.
    AlreadyPresent,
    /// A different instance with the same UID was replaced (policy `replace`).
    Replaced,
}

/// What was ingested.
#[derive(Debug, Clone)]
pub struct Ingested {
    /// Stored, already present or replaced.
    pub status: IngestStatus,
    /// Study Instance UID.
    pub study_uid: String,
    /// Series Instance UID.
    pub series_uid: String,
    /// SOP Instance UID.
    pub sop_instance_uid: String,
    /// SOP Class UID.
    pub sop_class_uid: String,
    /// Modality (0008,0060) of its series; empty when absent.
    pub modality: String,
    /// How it came.
    pub origin: Origin,
    /// How many destinations it was queued for (only a newly stored or replaced instance
    /// is routed; an identical re-send is not).
    pub routed: usize,
    /// Patient ID (for the audit record only; never logged).
    pub patient_id: String,
    /// Patient's Name (for the audit record only; never logged).
    pub patient_name: String,
}

/// An instance as stored: where it is and how it is encoded.
#[derive(Debug, Clone)]
pub struct StoredInstance {
    /// Study Instance UID.
    pub study_uid: String,
    /// Series Instance UID.
    pub series_uid: String,
    /// SOP Instance UID.
    pub sop_instance_uid: String,
    /// SOP Class UID.
    pub sop_class_uid: String,
    /// The transfer syntax the object is stored in.
    pub transfer_syntax_uid: String,
    /// Number of frames (0 without pixel data).
    pub frames: u32,
    /// Size of the stored object in bytes.
    pub size: u64,
    location: Location,
}

impl StoredInstance {
    /// Reads the stored Part-10 bytes (with a preamble even if the sender sent none), from
    /// its file or its bucket.
    pub async fn read(&self) -> Result<Bytes, StoreError> {
        match &self.location {
            Location::File(path) => Ok(with_preamble(tokio::fs::read(path).await?.into())),
            Location::Object(bucket, key) => {
                Ok(with_preamble(bucket.get(key).await.map_err(object_error)?))
            }
        }
    }

    /// [`read`](Self::read) for callers already on a blocking thread (saves a hand-off).
    pub fn read_blocking(&self) -> Result<Bytes, StoreError> {
        match &self.location {
            Location::File(path) => Ok(with_preamble(std::fs::read(path)?.into())),
            Location::Object(bucket, key) => {
                let (b, key) = (bucket.clone(), key.clone());
                let bytes = bucket
                    .wait(async move { b.get(&key).await })
                    .map_err(StoreError::Objects)?;
                Ok(with_preamble(bytes))
            }
        }
    }
}

fn object_error(e: object_store::Error) -> StoreError {
    StoreError::Objects(e.to_string())
}

fn with_preamble(bytes: Bytes) -> Bytes {
    if bytes.len() >= 4 && &bytes[..4] == b"DICM" {
        let mut v = vec![0u8; 128];
        v.extend_from_slice(&bytes);
        return v.into();
    }
    bytes
}

/// Narrows a search or retrieval to one study or series.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Only this study.
    pub study_uid: Option<String>,
    /// Only this series.
    pub series_uid: Option<String>,
    /// Only this instance.
    pub sop_instance_uid: Option<String>,
    /// Only studies of this organisation.
    pub org: Option<String>,
}

/// Counts of what an archive holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Number of studies.
    pub studies: u64,
    /// Number of series.
    pub series: u64,
    /// Number of instances.
    pub instances: u64,
}

/// An open archive. Cheap to clone; share one per process.
#[derive(Debug, Clone)]
pub struct Store {
    pools: Pools,
    objects: Objects,
    config: StoreConfig,
    /// The SQLite ingest writer thread (rusqlite, group commit); `None` on PostgreSQL,
    /// where each ingest is its own transaction ([`writer_pg`]).
    committer: Option<std::sync::mpsc::SyncSender<Job>>,
    /// Paths whose files are now on disk, to mark synced with the next commit.
    synced: writer::Synced,
    /// Woken when an ingest queued outbox rows.
    outbox_wake: Arc<tokio::sync::Notify>,
    /// Woken when something was queued for consortium members.
    share_wake: Arc<tokio::sync::Notify>,
    _lock: Option<std::sync::Arc<std::fs::File>>,
}

/// Takes the exclusive lock of a data directory: one process owns an archive at a time
/// (start-up sweeps would otherwise remove another process's writes in flight).
fn lock_data_dir(dir: &Path) -> Result<std::fs::File, StoreError> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lumen.lock"))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Io(e)),
    }
}

/// Opens (creating and migrating) the SQLite index of a data directory and starts its
/// ingest writer thread.
async fn open_sqlite(
    config: &StoreConfig,
    synced: &writer::Synced,
) -> Result<(Pools, std::sync::mpsc::SyncSender<Job>), StoreError> {
    let db_path = config.data_dir.join("index.sqlite");
    let opts = SqliteConnectOptions::from_str("sqlite://")?
        .filename(&db_path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(30))
        .foreign_keys(true)
        // LIKE is case-sensitive, as in PostgreSQL: the query pushdown lower-cases
        // person names itself and matches every other attribute exactly.
        .pragma("case_sensitive_like", "ON");
    // Its transactions begin IMMEDIATE (`Dialect::begin`): a deferred one that read first
    // could not become a writer once the ingest writer (another connection) committed
    // meanwhile, and SQLite answers that with SQLITE_BUSY at once, without waiting.
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts.clone())
        .await?;
    sqlx::migrate!("./migrations").run(&writer).await?;
    let reader = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(opts.read_only(true))
        .await?;
    let committer = {
        let (db, dir, cfg, synced) = (
            db_path.clone(),
            config.data_dir.clone(),
            config.clone(),
            synced.clone(),
        );
        tokio::task::spawn_blocking(move || writer::start(&db, &dir, cfg, synced))
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e)))??
    };
    Ok((Pools::Sqlite { reader, writer }, committer))
}

/// Most connections one process keeps to PostgreSQL (its default limit is 100 for all
/// clients together; several `lumen serve` and worker processes may share one server).
const PG_MAX_CONNECTIONS: u32 = 16;

/// Connects to the PostgreSQL index at `url` and brings its schema up to date.
async fn open_postgres(url: &str) -> Result<sqlx::PgPool, StoreError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(StoreError::Unsupported(
            "database must be a postgres://USER:PASS@HOST:PORT/DB URL (or absent, for the SQLite index in the data directory)".into(),
        ));
    }
    // The URL is never part of an error or log line: it may hold the password. The host,
    // port and database name are, so that an operator sees which server failed and why
    // (the pool alone would only say that it timed out).
    let opts = sqlx::postgres::PgConnectOptions::from_str(url)?;
    let server = format!(
        "PostgreSQL at {}:{} (database {})",
        opts.get_host(),
        opts.get_port(),
        opts.get_database().unwrap_or("named after the user")
    );
    let unreachable = |e: sqlx::Error| {
        StoreError::Unsupported(format!(
            "cannot connect to {server}: {}",
            e.to_string().lines().next().unwrap_or("")
        ))
    };
    {
        use sqlx::Connection;
        match tokio::time::timeout(
            Duration::from_secs(30),
            sqlx::postgres::PgConnection::connect_with(&opts),
        )
        .await
        {
            Ok(Ok(c)) => c.close().await.map_err(unreachable)?,
            Ok(Err(e)) => return Err(unreachable(e)),
            Err(_) => {
                return Err(StoreError::Unsupported(format!(
                    "cannot connect to {server}: no answer in 30 s"
                )));
            }
        }
    }
    let pool = PgPoolOptions::new()
        .max_connections(PG_MAX_CONNECTIONS)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(opts)
        .await?;
    sqlx::migrate!("./migrations-pg").run(&pool).await?;
    Ok(pool)
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(crate) fn internal(e: impl std::fmt::Display) -> IngestError {
    IngestError::Internal(e.to_string())
}

impl Store {
    /// Opens the archive in `config.data_dir`, creating it if needed, applying index
    /// migrations and sweeping files left by an interrupted write (objects in a bucket are
    /// swept by [`Store::sweep_orphans`]).
    pub async fn open(config: StoreConfig) -> Result<Self, StoreError> {
        std::fs::create_dir_all(&config.data_dir)?;
        // With the index on PostgreSQL and the objects in a bucket, nothing the data
        // directory holds is swept at start: several processes (front ends, workers) may
        // share one. Otherwise one process owns it.
        let shared = config.database.is_some() && matches!(config.storage, ObjectStorage::S3(_));
        let lock = if shared {
            None
        } else {
            Some(std::sync::Arc::new(lock_data_dir(&config.data_dir)?))
        };
        let synced = writer::Synced::default();
        let (pools, committer) = match config.database.as_deref() {
            None => {
                let (pools, committer) = open_sqlite(&config, &synced).await?;
                (pools, Some(committer))
            }
            Some(url) => (Pools::Postgres(open_postgres(url).await?), None),
        };
        let objects = match &config.storage {
            ObjectStorage::Files => Objects::Files(Blobs::open(&config.data_dir)?),
            ObjectStorage::S3(s3) => Objects::S3(objects::Bucket::open(s3)?),
        };
        let store = Store {
            pools,
            objects,
            config,
            committer,
            synced,
            outbox_wake: Arc::new(tokio::sync::Notify::new()),
            share_wake: Arc::new(tokio::sync::Notify::new()),
            _lock: lock,
        };
        // Files an interrupted write left are swept now; a bucket's orphans are swept by
        // `lumen serve` in the background (see `sweep_orphans`).
        if matches!(store.objects, Objects::Files(_)) {
            store.sweep_orphans().await?;
        }
        store
            .ensure_org(&store.config.default_org, &store.config.default_org_name)
            .await?;
        // Studies indexed before organisations existed belong to the node's own.
        with_db!(&store.pools, writer, |pool, d| {
            sqlx::query(d.sql("UPDATE studies SET org = ? WHERE org = ''"))
                .bind(&store.config.default_org)
                .execute(pool)
                .await?;
        });
        store.release_claims().await?;
        store.import_legacy_outbound().await?;
        Ok(store)
    }

    /// Removes objects left by interrupted writes: files (and temporary files) the index
    /// does not list, or, in a bucket, unlisted keys older than the orphan age
    /// ([`S3Config::orphan_min_age`]). [`Store::open`] runs it for files; for a bucket
    /// (which other front ends may share, and whose listing may take long) `lumen serve`
    /// runs it in the background at its start and hourly. Returns how many went.
    pub async fn sweep_orphans(&self) -> Result<usize, StoreError> {
        let known: HashSet<String> = with_db!(&self.pools, reader, |pool, d| {
            sqlx::query_scalar::<_, String>(d.sql("SELECT path FROM instances"))
                .fetch_all(pool)
                .await?
                .into_iter()
                .collect()
        });
        let removed = match &self.objects {
            Objects::Files(blobs) => {
                let blobs = blobs.clone();
                tokio::task::spawn_blocking(move || blobs.sweep(&known))
                    .await
                    .map_err(|e| StoreError::Io(std::io::Error::other(e)))??
            }
            Objects::S3(bucket) => bucket.sweep(&known).await.map_err(object_error)?,
        };
        if removed > 0 {
            tracing::warn!(removed, "removed objects left by interrupted writes");
        }
        Ok(removed)
    }

    /// The SQLite writer pool, for unit tests that write past the store.
    #[cfg(test)]
    pub(crate) fn sqlite_writer(&self) -> Option<&sqlx::SqlitePool> {
        match &self.pools {
            Pools::Sqlite { writer, .. } => Some(writer),
            Pools::Postgres(_) => None,
        }
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Parses, checks and durably stores one Part-10 object (bytes kept exactly as given)
    /// that came by `origin`; a new instance is queued for routing in the same transaction.
    ///
    /// Re-sending an identical object succeeds and stores nothing; a different object with
    /// a stored SOP Instance UID is refused or replaces it, by [`ConflictPolicy`].
    pub async fn ingest(&self, bytes: Bytes, origin: Origin) -> Result<Ingested, IngestError> {
        let org = self.config.default_org.clone();
        self.ingest_for(bytes, origin, org).await
    }

    /// As [`Store::ingest`], for organisation `org`: a new study belongs to it (a study
    /// already stored keeps its organisation).
    pub async fn ingest_for(
        &self,
        bytes: Bytes,
        origin: Origin,
        org: String,
    ) -> Result<Ingested, IngestError> {
        // All of it runs on one blocking thread, which hands the object to the index
        // writer thread once: thread hand-offs, not work, dominated on a busy machine.
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.ingest_blocking(bytes, origin, org))
            .await
            .map_err(internal)?
    }

    fn ingest_blocking(
        &self,
        bytes: Bytes,
        origin: Origin,
        org: String,
    ) -> Result<Ingested, IngestError> {
        let (mut ingested, rel, committed) = match &self.objects {
            Objects::Files(blobs) => self.ingest_file(blobs, bytes, origin, org)?,
            Objects::S3(bucket) => self.ingest_object(bucket, bytes, origin, org)?,
        };
        let (status, routed) = match committed {
            Ok(Commit::Inserted(routed)) => (IngestStatus::Stored, routed),
            Ok(Commit::Replaced(old, routed)) => {
                if old != rel
                    && let Err(e) = self.objects.remove_blocking(&old)
                {
                    tracing::warn!(error = %e, "could not remove replaced object");
                }
                (IngestStatus::Replaced, routed)
            }
            Ok(Commit::Identical(stored)) => {
                if stored != rel {
                    let _ = self.objects.remove_blocking(&rel);
                }
                (IngestStatus::AlreadyPresent, 0)
            }
            Err(e) => {
                // A conflict means other content is indexed under this UID, so the object
                // just written (named by its own content) is listed nowhere and goes. After
                // other failures it might be the one an identical instance already indexed:
                // it stays, and the sweep removes it if it is not listed.
                if matches!(e, IngestError::Conflict(_)) {
                    let _ = self.objects.remove_blocking(&rel);
                }
                return Err(e);
            }
        };
        if routed > 0 {
            self.outbox_wake.notify_one();
        }
        ingested.status = status;
        ingested.routed = routed;
        Ok(ingested)
    }

    /// A parsed object's relative key (its file's path, its key in a bucket) and what its
    /// ingest answers (status and routing filled in once committed).
    fn named(parsed: &Prepared, origin: &Origin) -> (String, Ingested) {
        let rec = &parsed.record;
        let rel = Blobs::relative_path(
            &rec.series_uid,
            &rec.sop_instance_uid,
            content::hex_digits(&parsed.content_hash),
        );
        (rel, Self::ingested(rec, origin))
    }

    /// What an ingest of `rec` answers (status and routing filled in once committed).
    fn ingested(rec: &IndexRecord, origin: &Origin) -> Ingested {
        Ingested {
            status: IngestStatus::Stored,
            study_uid: rec.study_uid.clone(),
            series_uid: rec.series_uid.clone(),
            sop_instance_uid: rec.sop_instance_uid.clone(),
            sop_class_uid: rec.sop_class_uid.clone(),
            modality: rec.modality.clone(),
            origin: origin.clone(),
            routed: 0,
            patient_id: rec.patient_id.clone(),
            patient_name: lumen_dicom::json::person_name_values(
                &rec.study_json,
                tags::PATIENT_NAME,
            )
            .join("="),
        }
    }

    /// Ingest into a bucket: the object is parsed and hashed, uploaded whole to its final
    /// key, and only then committed to the index, so the index never lists an object the
    /// bucket does not hold; a crash in between leaves an unlisted key for the sweep.
    fn ingest_object(
        &self,
        bucket: &objects::Bucket,
        bytes: Bytes,
        origin: Origin,
        org: String,
    ) -> Result<(Ingested, String, Result<Commit, IngestError>), IngestError> {
        let parsed = prepare(bytes, self.config.accept_unknown_sop_classes)?;
        let (rel, ingested) = Self::named(&parsed, &origin);
        // A reference to the same bytes (no copy): a large object goes up in parts sliced
        // from it.
        let (b, key, body) = (bucket.clone(), rel.clone(), parsed.bytes.clone());
        bucket
            .wait(async move { b.put(&key, body).await })
            .map_err(|e| internal(format!("could not upload the object: {e}")))?;
        let committed = self.commit_synced(parsed, origin, org, &rel)?;
        Ok((ingested, rel, committed))
    }

    /// Ingest into files: written, placed and synced beside the index commit.
    fn ingest_file(
        &self,
        blobs: &Blobs,
        bytes: Bytes,
        origin: Origin,
        org: String,
    ) -> Result<(Ingested, String, Result<Commit, IngestError>), IngestError> {
        // The file is written before the index is asked whether the instance is known: its
        // path is derived from the content, so an identical re-send finds the very file the
        // index already lists, and a new instance, the common case, saves a round trip.
        // The bytes go to a temporary file first, and the disk starts writing them while
        // the object is parsed: the sync that follows then has less left to wait for. The
        // price is paid by the rare cases: an object refused by the checks, or an identical
        // re-send (known only once parsed and hashed), leaves a temporary file that is
        // removed at once.
        let tmp = blobs.write_tmp(&bytes).map_err(internal)?;
        let parsed = match prepare(bytes, self.config.accept_unknown_sop_classes) {
            Ok(p) => p,
            Err(e) => {
                blobs.discard(tmp);
                return Err(e);
            }
        };
        let (rel, ingested) = Self::named(&parsed, &origin);
        let unsynced = blobs
            .place(tmp, &rel, parsed.bytes.len() as u64)
            .map_err(internal)?;
        let sync_failed =
            |e: std::io::Error| internal(format!("could not sync the object file: {e}"));
        // The file's syncs run beside the index commit (syncs of the file, its directory
        // and the write-ahead log cost about as much together as one alone; concurrent
        // ingests into one series share a directory sync). Meanwhile the index lists the
        // instance with `synced = 0`, so that a power loss in between un-indexes it at the
        // next start; nobody is answered before both are done. A replacement is not
        // overlapped: the index must never point at new bytes that could still be lost
        // while the old ones are gone.
        // On PostgreSQL the file is synced first (see writer_pg).
        let overlap = self.config.on_conflict == ConflictPolicy::Reject && self.committer.is_some();
        let committed = if overlap {
            let answer = self.send_commit(parsed, origin, org, &rel, true)?;
            let synced = blobs.sync(unsynced);
            let committed = answer
                .recv()
                .map_err(|_| internal("the index writer has stopped"))?;
            if let Err(e) = synced {
                // The bytes may not be on disk: take the instance out of the index again
                // if this call put it there, and report the failure.
                if matches!(committed, Ok(Commit::Inserted(_))) {
                    self.unindex_unsynced(&rel);
                }
                return Err(sync_failed(e));
            }
            if matches!(committed, Ok(Commit::Inserted(_))) {
                self.mark_synced(rel.clone());
            }
            committed
        } else {
            blobs.sync(unsynced).map_err(sync_failed)?;
            self.commit_synced(parsed, origin, org, &rel)?
        };
        Ok((ingested, rel, committed))
    }

    /// Indexes an object whose file is on disk (or in the bucket): by the SQLite writer thread, or by a
    /// PostgreSQL transaction run from this (blocking) thread. The outer error is a failure
    /// to reach the writer, the inner one the commit's own answer.
    fn commit_synced(
        &self,
        parsed: Prepared,
        origin: Origin,
        org: String,
        rel: &str,
    ) -> Result<Result<Commit, IngestError>, IngestError> {
        match &self.pools {
            Pools::Postgres(pool) => Ok(tokio::runtime::Handle::current().block_on(
                writer_pg::commit(pool, &self.config, &parsed, &origin, &org, rel),
            )),
            Pools::Sqlite { .. } => self
                .send_commit(parsed, origin, org, rel, false)?
                .recv()
                .map_err(|_| internal("the index writer has stopped")),
        }
    }

    /// Hands a written object to the index writer; the answer comes on the receiver.
    fn send_commit(
        &self,
        parsed: Prepared,
        origin: Origin,
        org: String,
        rel: &str,
        unsynced: bool,
    ) -> Result<std::sync::mpsc::Receiver<Result<Commit, IngestError>>, IngestError> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let job = Job::Ingest(Box::new(Pending {
            parsed,
            origin,
            org,
            rel: rel.to_string(),
            unsynced,
            reply,
        }));
        self.committer
            .as_ref()
            .ok_or_else(|| internal("no index writer thread (PostgreSQL index)"))?
            .send(job)
            .map_err(|_| internal("the index writer has stopped"))?;
        Ok(answer)
    }
}

impl Store {
    /// Notes that the file at `rel` is on disk; the next index transaction drops it from
    /// `synced = 0`.
    fn mark_synced(&self, rel: String) {
        if let Ok(mut v) = self.synced.lock() {
            v.push(rel);
        }
    }

    /// Takes an instance whose file could not be synced out of the index, and its file
    /// off the disk.
    fn unindex_unsynced(&self, rel: &str) {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let sent = self
            .committer
            .as_ref()
            .map(|c| c.send(Job::Unindex(rel.to_string(), reply)));
        let done = match sent {
            Some(Ok(())) => answer.recv().map_err(|e| e.to_string()).and_then(|r| r),
            _ => Err("the index writer has stopped".to_string()),
        };
        match done {
            Ok(()) => {
                let _ = self.objects.remove_blocking(rel);
            }
            // Still marked unsynced: the next start checks the file.
            Err(e) => tracing::error!(error = %e, "could not un-index an unsynced object"),
        }
    }

    /// Searches the archive at `query.level` within `scope`, returning the DICOM JSON
    /// response of each match (after `offset`, at most `limit`).
    ///
    /// The conditions on indexed attributes run in SQL ([`query_sql`]); when every key is
    /// decided there, so are limit and offset, and only the page is read. Otherwise the
    /// narrowed candidates stream through the matcher until the page is full.
    pub async fn search(
        &self,
        query: &Query,
        scope: &Scope,
    ) -> Result<Vec<Map<String, Value>>, StoreError> {
        use futures::TryStreamExt;
        let plan = query_sql::plan(query);
        let paged = !plan.residual && query.level != Level::Patient;
        let with_metadata = query_sql::needs_metadata(query);
        let (sql, binds) = search_sql(
            query,
            scope,
            plan,
            paged,
            with_metadata,
            self.pools.dialect(),
        );
        let limit = query.limit.unwrap_or(usize::MAX);
        let page = [limit, query.offset].map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        let mut out = Vec::new();
        let mut studies = Vec::new();
        let mut skipped = 0usize;
        with_db!(&self.pools, reader, |pool, d| {
            let mut q = sqlx::query(d.sql(sql));
            for b in binds {
                q = q.bind(b);
            }
            if paged {
                q = q.bind(page[0]).bind(page[1]);
            }
            let mut rows = q.fetch(pool);
            if query.level == Level::Patient {
                while let Some(row) = rows.try_next().await? {
                    studies.push(record(&row, query.level, with_metadata)?);
                }
            } else {
                while out.len() < limit {
                    let Some(row) = rows.try_next().await? else {
                        break;
                    };
                    let r = record(&row, query.level, with_metadata)?;
                    if paged {
                        out.push(query.response(&r));
                    } else if query.matches(&r) {
                        if skipped < query.offset {
                            skipped += 1;
                        } else {
                            out.push(query.response(&r));
                        }
                    }
                }
            }
        });
        if query.level == Level::Patient {
            return Ok(group_patients(studies)
                .iter()
                .filter(|r| query.matches(r))
                .skip(query.offset)
                .take(limit)
                .map(|r| query.response(r))
                .collect());
        }
        Ok(out)
    }

    /// The database's plan of the SQL that [`Store::search`] runs for `query` (SQLite:
    /// `EXPLAIN QUERY PLAN` rows; PostgreSQL: `EXPLAIN (FORMAT JSON)`), for diagnostics
    /// and the tests that check the indexes serve the query pushdown.
    pub async fn explain_search(&self, query: &Query, scope: &Scope) -> Result<String, StoreError> {
        let plan = query_sql::plan(query);
        let paged = !plan.residual && query.level != Level::Patient;
        let with_metadata = query_sql::needs_metadata(query);
        let dialect = self.pools.dialect();
        let (sql, binds) = search_sql(query, scope, plan, paged, with_metadata, dialect);
        let page = [query.limit.unwrap_or(usize::MAX), query.offset]
            .map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        Ok(with_db!(&self.pools, reader, |pool, d| {
            let explain = match d {
                db::Dialect::Sqlite => format!("EXPLAIN QUERY PLAN {sql}"),
                db::Dialect::Postgres => format!("EXPLAIN (FORMAT JSON) {sql}"),
            };
            let mut q = sqlx::query(d.sql(explain));
            for b in binds {
                q = q.bind(b);
            }
            if paged {
                q = q.bind(page[0]).bind(page[1]);
            }
            let rows = q.fetch_all(pool).await?;
            let mut out = Vec::new();
            for r in &rows {
                // SQLite: (id, parent, notused, detail); PostgreSQL: one JSON document,
                // whose wire form is its text.
                out.push(match d {
                    db::Dialect::Sqlite => r.try_get::<String, _>(3)?,
                    db::Dialect::Postgres => r.try_get_unchecked::<String, _>(0)?,
                });
            }
            out.join("\n")
        }))
    }

    /// The stored instances within `scope`, ordered by series and instance number.
    pub async fn instances(&self, scope: &Scope) -> Result<Vec<StoredInstance>, StoreError> {
        Ok(self
            .instance_rows(scope, false)
            .await?
            .into_iter()
            .map(|(i, _)| i)
            .collect())
    }

    /// The stored instances within `scope` with their metadata (DICOM JSON, relative
    /// BulkDataURIs).
    pub async fn metadata(
        &self,
        scope: &Scope,
    ) -> Result<Vec<(StoredInstance, Map<String, Value>)>, StoreError> {
        let rows = self.instance_rows(scope, true).await?;
        rows.into_iter()
            .map(|(i, m)| Ok((i, parse_map(&m.unwrap_or_default())?)))
            .collect()
    }

    async fn instance_rows(
        &self,
        scope: &Scope,
        with_metadata: bool,
    ) -> Result<Vec<(StoredInstance, Option<String>)>, StoreError> {
        let mut sql = format!(
            "SELECT i.study_uid, i.series_uid, i.sop_uid, i.sop_class_uid, i.transfer_syntax_uid,
               i.frames, i.size, i.path{}
             FROM instances i WHERE 1 = 1",
            if with_metadata { ", i.metadata" } else { "" }
        );
        let mut binds = Vec::new();
        if let Some(org) = &scope.org {
            sql.push_str(" AND i.study_uid IN (SELECT study_uid FROM studies WHERE org = ?)");
            binds.push(org.clone());
        }
        for (col, v) in [
            ("i.study_uid", &scope.study_uid),
            ("i.series_uid", &scope.series_uid),
            ("i.sop_uid", &scope.sop_instance_uid),
        ] {
            if let Some(v) = v {
                sql.push_str(&format!(" AND {col} = ?"));
                binds.push(v.clone());
            }
        }
        sql.push_str(instance_order(self.pools.dialect()));
        Ok(with_db!(&self.pools, reader, |pool, d| {
            let mut q = sqlx::query(d.sql(sql));
            for b in &binds {
                q = q.bind(b);
            }
            let mut out = Vec::new();
            for r in q.fetch_all(pool).await? {
                let rel: String = r.try_get(7)?;
                out.push((
                    StoredInstance {
                        study_uid: r.try_get(0)?,
                        series_uid: r.try_get(1)?,
                        sop_instance_uid: r.try_get(2)?,
                        sop_class_uid: r.try_get(3)?,
                        transfer_syntax_uid: r.try_get(4)?,
                        frames: r.try_get::<i64, _>(5)?.max(0) as u32,
                        size: r.try_get::<i64, _>(6)?.max(0) as u64,
                        location: self.objects.locate(&rel),
                    },
                    if with_metadata {
                        Some(r.try_get(8)?)
                    } else {
                        None
                    },
                ));
            }
            out
        }))
    }

    /// How many studies, series and instances the archive holds.
    pub async fn stats(&self) -> Result<Stats, StoreError> {
        let counts: [i64; 3] = with_db!(&self.pools, reader, |pool, d| {
            let row = sqlx::query(d.sql(
                "SELECT (SELECT count(*) FROM studies), (SELECT count(*) FROM series), (SELECT count(*) FROM instances)",
            ))
            .fetch_one(pool)
            .await?;
            [row.try_get(0)?, row.try_get(1)?, row.try_get(2)?]
        });
        let [studies, series, instances] = counts.map(|n| n.max(0) as u64);
        Ok(Stats {
            studies,
            series,
            instances,
        })
    }

    /// Checks the index is reachable (for health checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_db!(&self.pools, reader, |pool, d| {
            sqlx::query(d.sql("SELECT 1")).fetch_one(pool).await?;
        });
        Ok(())
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }
}

/// The SQL of a search: the level's rows joined with the levels above, narrowed by scope
/// and the plan's conditions, in the archive's listing order; `LIMIT ? OFFSET ?` last when
/// `paged`.
fn search_sql(
    query: &Query,
    scope: &Scope,
    plan: query_sql::Plan,
    paged: bool,
    with_metadata: bool,
    dialect: db::Dialect,
) -> (String, Vec<String>) {
    let study_cols = "st.attrs, st.modalities, st.sop_classes, st.num_series, st.num_instances";
    let (mut sql, scoped, order) = match query.level {
        Level::Patient | Level::Study => (
            format!("SELECT {study_cols} FROM studies st"),
            vec![("st.study_uid", &scope.study_uid)],
            " ORDER BY st.study_date DESC, st.study_time DESC, st.created_at DESC, st.study_uid DESC",
        ),
        Level::Series => (
            format!(
                "SELECT {study_cols}, se.attrs, se.num_instances
                 FROM series se JOIN studies st ON st.study_uid = se.study_uid"
            ),
            vec![
                ("se.study_uid", &scope.study_uid),
                ("se.series_uid", &scope.series_uid),
            ],
            " ORDER BY se.created_at, se.series_uid",
        ),
        Level::Instance => (
            format!(
                "SELECT {study_cols}, se.attrs, se.num_instances, {}, i.transfer_syntax_uid
                 FROM instances i JOIN series se ON se.series_uid = i.series_uid
                   JOIN studies st ON st.study_uid = i.study_uid",
                if with_metadata {
                    "i.metadata"
                } else {
                    "i.attrs"
                }
            ),
            vec![
                ("i.study_uid", &scope.study_uid),
                ("i.series_uid", &scope.series_uid),
                ("i.sop_uid", &scope.sop_instance_uid),
            ],
            instance_order(dialect),
        ),
    };
    let mut conds = Vec::new();
    let mut binds = Vec::new();
    if let Some(org) = &scope.org {
        conds.push("st.org = ?".to_string());
        binds.push(org.clone());
    }
    for (col, value) in scoped {
        if let Some(v) = value {
            conds.push(format!("{col} = ?"));
            binds.push(v.clone());
        }
    }
    conds.extend(plan.conds);
    binds.extend(plan.binds);
    if !conds.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conds.join(" AND "));
    }
    sql.push_str(order);
    if paged {
        sql.push_str(" LIMIT ? OFFSET ?");
    }
    (sql, binds)
}

/// The archive's order of instances: by series and instance number, instances without a
/// number first (SQLite's order of NULLs; PostgreSQL is told, and its index is built so).
fn instance_order(dialect: db::Dialect) -> &'static str {
    match dialect {
        db::Dialect::Sqlite => " ORDER BY i.series_uid, i.instance_number, i.sop_uid",
        db::Dialect::Postgres => " ORDER BY i.series_uid, i.instance_number NULLS FIRST, i.sop_uid",
    }
}

/// One row of a search as the matcher's record: the level's attributes merged with those
/// of the levels above and the computed counts.
fn record<R: Row>(
    row: &R,
    level: Level,
    with_metadata: bool,
) -> Result<Map<String, Value>, StoreError>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let text = |i: usize| row.try_get::<String, _>(i).map_err(StoreError::Db);
    let int = |i: usize| row.try_get::<i64, _>(i).map_err(StoreError::Db);
    let mut m = parse_map(&text(0)?)?;
    put_strings(&mut m, tags::MODALITIES_IN_STUDY, "CS", &text(1)?);
    put_strings(&mut m, tags::SOP_CLASSES_IN_STUDY, "UI", &text(2)?);
    put_int(&mut m, tags::NUMBER_OF_STUDY_RELATED_SERIES, int(3)?);
    put_int(&mut m, tags::NUMBER_OF_STUDY_RELATED_INSTANCES, int(4)?);
    if matches!(level, Level::Series | Level::Instance) {
        m.extend(parse_map(&text(5)?)?);
        put_int(&mut m, tags::NUMBER_OF_SERIES_RELATED_INSTANCES, int(6)?);
    }
    if level == Level::Instance {
        let mut attrs = parse_map(&text(7)?)?;
        if with_metadata {
            attrs.retain(|_, v| v.get("BulkDataURI").is_none());
        }
        m.extend(attrs);
        put_strings(&mut m, tags::AVAILABLE_TRANSFER_SYNTAX_UID, "UI", &text(8)?);
    }
    put_strings(&mut m, tags::INSTANCE_AVAILABILITY, "CS", "ONLINE");
    Ok(m)
}

mod jobs;
pub use jobs::{AiJob, AiJobOutcome, AiJobStatus};
mod review;
pub use review::{
    FindingAction, FindingHistory, FindingReview, PendingSignature, ReportRecord, ReportStatus,
    ReportVersion, ReviewError, Worklist, WorklistFilter, WorklistRow,
};

/// A parsed and checked object with its content hash and the index's serialised forms of
/// its attributes (made here, on the ingesting thread, so that the one index writer only
/// runs SQL).
pub(crate) struct Prepared {
    pub(crate) bytes: Bytes,
    /// The content hash ([`content`]) of `bytes`.
    pub(crate) content_hash: String,
    pub(crate) record: IndexRecord,
    /// `record.study_json` as JSON text.
    pub(crate) study_attrs: String,
    /// `record.series_json` as JSON text.
    pub(crate) series_attrs: String,
    /// `record.instance_json` as JSON text.
    pub(crate) instance_attrs: String,
    /// `record.metadata_json` as JSON text.
    pub(crate) metadata: String,
}

pub(crate) fn conflict_error(sop_uid: &str) -> IngestError {
    IngestError::Conflict(format!(
        "SOP Instance UID {sop_uid} is already stored with different content"
    ))
}

/// Parses and checks an object and computes its content hash (CPU work, run off the async
/// threads).
fn prepare(bytes: Bytes, accept_any_class: bool) -> Result<Prepared, IngestError> {
    // Pixel values are checked by the scan but not read: ingest never looks at them.
    let (obj, skipped) = lumen_dicom::part10::parse_for_index(&bytes)
        .map_err(|e| IngestError::Invalid(e.to_string()))?;
    let class = obj
        .meta()
        .media_storage_sop_class_uid()
        .trim_end_matches('\0');
    if !accept_any_class && !lumen_dicom::sop::is_storage_sop_class(class) {
        return Err(IngestError::UnsupportedSopClass(class.to_string()));
    }
    let record = lumen_dicom::attrs::index_record_with(&obj, skipped.as_ref())
        .map_err(|e| IngestError::Invalid(e.to_string()))?;
    drop(obj);
    let text = |m: &Map<String, Value>| serde_json::to_string(m).map_err(internal);
    Ok(Prepared {
        content_hash: content::hash(&bytes),
        study_attrs: text(&record.study_json)?,
        series_attrs: text(&record.series_json)?,
        instance_attrs: text(&record.instance_json)?,
        metadata: text(&record.metadata_json)?,
        bytes,
        record,
    })
}

fn parse_map(s: &str) -> Result<Map<String, Value>, StoreError> {
    match serde_json::from_str(s) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(StoreError::Corrupt("attribute map is not an object".into())),
        Err(e) => Err(StoreError::Corrupt(e.to_string())),
    }
}

fn put_strings(m: &mut Map<String, Value>, tag: dicom_core_tag::Tag, vr: &str, joined: &str) {
    let values: Vec<Value> = joined
        .split('\\')
        .filter(|s| !s.is_empty())
        .map(|s| Value::String(s.to_string()))
        .collect();
    if values.is_empty() {
        m.insert(tag_key(tag), json!({ "vr": vr }));
    } else {
        m.insert(tag_key(tag), json!({ "vr": vr, "Value": values }));
    }
}

fn put_int(m: &mut Map<String, Value>, tag: dicom_core_tag::Tag, n: i64) {
    m.insert(tag_key(tag), json!({ "vr": "IS", "Value": [n] }));
}

/// Folds study records into one record per patient, with patient-level counts.
fn group_patients(studies: Vec<Map<String, Value>>) -> Vec<Map<String, Value>> {
    let mut order: Vec<String> = Vec::new();
    let mut by_id: std::collections::HashMap<String, (Map<String, Value>, i64, i64, i64)> =
        Default::default();
    for s in studies {
        let id = lumen_dicom::json::first_string(&s, tags::PATIENT_ID).unwrap_or_default();
        let count = |t| {
            lumen_dicom::json::first_string(&s, t)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        };
        let (nse, nin) = (
            count(tags::NUMBER_OF_STUDY_RELATED_SERIES),
            count(tags::NUMBER_OF_STUDY_RELATED_INSTANCES),
        );
        let entry = by_id.entry(id.clone()).or_insert_with(|| {
            order.push(id.clone());
            let mut p = Map::new();
            for &t in lumen_dicom::attrs::PATIENT_TAGS {
                if let Some(v) = s.get(&tag_key(t)) {
                    p.insert(tag_key(t), v.clone());
                }
            }
            (p, 0, 0, 0)
        });
        entry.1 += 1;
        entry.2 += nse;
        entry.3 += nin;
    }
    order
        .into_iter()
        .filter_map(|id| by_id.remove(&id))
        .map(|(mut p, st, se, inst)| {
            put_int(&mut p, tags::NUMBER_OF_PATIENT_RELATED_STUDIES, st);
            put_int(&mut p, tags::NUMBER_OF_PATIENT_RELATED_SERIES, se);
            put_int(&mut p, tags::NUMBER_OF_PATIENT_RELATED_INSTANCES, inst);
            p
        })
        .collect()
}

mod dicom_core_tag {
    pub use dicom_object::Tag;
}
