//! The index writer: one thread that owns the index's write connection and commits every
//! ingest, in groups.
//!
//! It uses rusqlite (the same SQLite library as sqlx, `libsqlite3-sys`) rather than sqlx:
//! sqlx's SQLite driver runs each statement on its own worker thread, so one ingest (begin,
//! check, insert, commit) cost a dozen thread hand-offs, which on a busy two-core machine
//! took longer than the work itself. Here the ingesting thread hands the object over once
//! and the whole transaction runs on this thread with cached prepared statements. Readers
//! and the other writers (AI jobs, reviews) stay on sqlx; SQLite serialises writers.

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};

use crate::{
    Arrival, ConflictPolicy, IngestError, Origin, Prepared, StoreConfig, StoreError,
    conflict_error, internal, now_ms,
};

/// How often (ms) ingest refreshes the arrival time of a series waiting for the AI.
pub(crate) const AI_TOUCH_MS: i64 = 250;

/// Most objects indexed in one transaction.
const GROUP_COMMIT_MAX: usize = 64;

/// Every check of an ingest in one query: the stored instance, the study of the series,
/// whether the study and series rows already hold these attributes (so that the common
/// case, the next instance of a known series, rewrites neither) and whether the series' AI
/// job was touched lately. The flags are booleans on PostgreSQL, 0/1 on SQLite.
pub(crate) const CHECKS: &str = "SELECT (SELECT content_hash FROM instances WHERE sop_uid = ?1),
        (SELECT path FROM instances WHERE sop_uid = ?1),
        (SELECT study_uid FROM series WHERE series_uid = ?2),
        coalesce((SELECT attrs = ?3 AND patient_id = ?5 FROM studies WHERE study_uid = ?4), false),
        coalesce((SELECT attrs = ?6 AND modality = ?7 FROM series WHERE series_uid = ?2), false),
        coalesce((SELECT state = 'waiting' AND last_instance_at >= ?8
                  FROM ai_jobs WHERE series_uid = ?2), false)";
/// The study row of an ingest (a changed study is updated). Shared with the PostgreSQL
/// writer ([`crate::writer_pg`]), as are the statements below: `?N` placeholders, which
/// [`crate::db::Dialect::sql`] numbers for PostgreSQL.
pub(crate) const STUDY_UPSERT: &str = "INSERT INTO studies (study_uid, patient_id, study_date, attrs, created_at, updated_at,
               pn_alphabetic, pn_ideographic, pn_phonetic, accession, study_time, description, org)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT(study_uid) DO UPDATE SET patient_id = excluded.patient_id,
               study_date = excluded.study_date, attrs = excluded.attrs, updated_at = excluded.updated_at,
               pn_alphabetic = excluded.pn_alphabetic, pn_ideographic = excluded.pn_ideographic,
               pn_phonetic = excluded.pn_phonetic, accession = excluded.accession,
               study_time = excluded.study_time, description = excluded.description";
/// The series row of an ingest.
pub(crate) const SERIES_UPSERT: &str =
    "INSERT INTO series (series_uid, study_uid, modality, attrs, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)
             ON CONFLICT(series_uid) DO UPDATE SET modality = excluded.modality,
               attrs = excluded.attrs, updated_at = excluded.updated_at";
/// The instance row of an ingest (a replaced one is overwritten).
pub(crate) const INSTANCE_UPSERT: &str = "INSERT INTO instances (sop_uid, series_uid, study_uid, sop_class_uid,
           transfer_syntax_uid, instance_number, frames, path, size, content_hash, attrs,
           metadata, received_at, synced) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT(sop_uid) DO UPDATE SET series_uid = excluded.series_uid,
           study_uid = excluded.study_uid, sop_class_uid = excluded.sop_class_uid,
           transfer_syntax_uid = excluded.transfer_syntax_uid,
           instance_number = excluded.instance_number, frames = excluded.frames,
           path = excluded.path, size = excluded.size, content_hash = excluded.content_hash,
           attrs = excluded.attrs, metadata = excluded.metadata,
           received_at = excluded.received_at, synced = excluded.synced";
/// The series' AI job, (re)started.
pub(crate) const AI_JOB_UPSERT: &str =
    "INSERT INTO ai_jobs (series_uid, study_uid, state, last_instance_at, updated_at)
             VALUES (?1, ?2, 'waiting', ?3, ?3)
             ON CONFLICT(series_uid) DO UPDATE SET state = 'waiting', attempts = 0,
               last_instance_at = excluded.last_instance_at, not_before = 0, reason = NULL,
               updated_at = excluded.updated_at";
/// One outbox row; a row left from an earlier version of the instance starts over.
pub(crate) const OUTBOX_UPSERT: &str =
    "INSERT INTO outbox (sop_uid, series_uid, study_uid, destination, origin, queued_ms,
               next_attempt_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
             ON CONFLICT (sop_uid, destination) DO UPDATE SET series_uid = excluded.series_uid,
               study_uid = excluded.study_uid, origin = excluded.origin, state = 'pending',
               attempts = 0, queued_ms = excluded.queued_ms,
               next_attempt_ms = excluded.next_attempt_ms, claimed_ms = NULL, last_error = NULL";

/// What the index holds already for an arriving object (read at the start of its commit).
pub(crate) struct Checks {
    /// Content hash and path of a stored instance with its SOP Instance UID.
    pub(crate) prior: Option<(String, String)>,
    /// The study its series belongs to, if the series is stored.
    pub(crate) series_study: Option<String>,
    /// Whether the study row holds these attributes and patient already.
    pub(crate) study_same: bool,
    /// Whether the series row holds these attributes and modality already.
    pub(crate) series_same: bool,
    /// Whether the series' AI job waits and saw an instance within [`AI_TOUCH_MS`].
    pub(crate) ai_fresh: bool,
}

/// What a commit must write, decided from its [`Checks`] (the same rules on both databases).
pub(crate) enum Decision {
    /// Nothing: an identical instance is indexed at this path.
    Identical(String),
    /// The rows to write.
    Write {
        /// The path of the instance this one replaces.
        replaced: Option<String>,
        /// Upsert the study row.
        study: bool,
        /// Upsert the series row.
        series: bool,
        /// (Re)start the series' AI job.
        ai_job: bool,
    },
}

/// The decision of a commit: identical, refused (conflict, series of another study), or
/// which rows to write.
pub(crate) fn decide(
    checks: Checks,
    p: &Prepared,
    config: &StoreConfig,
) -> Result<Decision, IngestError> {
    let rec = &p.record;
    if let Some((sha, path)) = &checks.prior {
        if crate::content::same(sha, &p.content_hash, &p.bytes) {
            return Ok(Decision::Identical(path.clone()));
        }
        if config.on_conflict == ConflictPolicy::Reject {
            return Err(conflict_error(&rec.sop_instance_uid));
        }
    }
    if let Some(study) = checks.series_study
        && study != rec.study_uid
    {
        return Err(IngestError::Conflict(format!(
            "series {} already belongs to another study",
            rec.series_uid
        )));
    }
    Ok(Decision::Write {
        replaced: checks.prior.map(|(_, path)| path),
        study: !checks.study_same,
        series: !checks.series_same,
        ai_job: config.ai_modalities.contains(&rec.modality) && !checks.ai_fresh,
    })
}

/// The destinations the router chooses for an arriving object (sorted, without repeats).
pub(crate) fn destinations(config: &StoreConfig, p: &Prepared, origin: &Origin) -> Vec<String> {
    let Some(router) = &config.router else {
        return Vec::new();
    };
    let rec = &p.record;
    let mut destinations = router.destinations(&Arrival {
        origin,
        modality: &rec.modality,
        sop_class_uid: &rec.sop_class_uid,
        study_uid: &rec.study_uid,
        series_uid: &rec.series_uid,
        sop_instance_uid: &rec.sop_instance_uid,
    });
    destinations.sort();
    destinations.dedup();
    destinations
}

/// What a commit did.
pub(crate) enum Commit {
    /// A new instance is indexed, queued for this many destinations.
    Inserted(usize),
    /// An identical instance was indexed already, at this path.
    Identical(String),
    /// A different instance under the same UID was replaced; its file was at this path. The
    /// new one is queued for this many destinations.
    Replaced(String, usize),
}

/// An object written to disk, waiting for the index writer.
pub(crate) struct Pending {
    pub(crate) parsed: Prepared,
    /// How it came (for the routing decision and the outbox rows).
    pub(crate) origin: Origin,
    /// The organisation a new study belongs to.
    pub(crate) org: String,
    pub(crate) rel: String,
    /// Whether the file's sync may still be running (index it with `synced = 0`).
    pub(crate) unsynced: bool,
    pub(crate) reply: SyncSender<Result<Commit, IngestError>>,
}

/// What the index writer is asked to do.
pub(crate) enum Job {
    /// Index a written object.
    Ingest(Box<Pending>),
    /// Un-index the instance at this path if its file is still marked unsynced (its sync
    /// failed).
    Unindex(String, SyncSender<Result<(), String>>),
}

/// The shared list of paths whose files are now on disk: the next transaction sets their
/// `synced` flag.
pub(crate) type Synced = Arc<Mutex<Vec<String>>>;

/// Opens the write connection, checks the files indexed while their sync was running (see
/// [`recover_unsynced`]) and starts the writer thread.
pub(crate) fn start(
    db_path: &Path,
    data_dir: &Path,
    config: StoreConfig,
    synced: Synced,
) -> Result<SyncSender<Job>, StoreError> {
    let mut conn = open(db_path).map_err(db)?;
    backfill_study_columns(&mut conn)?;
    recover_unsynced(&mut conn, data_dir)?;
    let (tx, rx) = std::sync::mpsc::sync_channel(GROUP_COMMIT_MAX * 2);
    std::thread::Builder::new()
        .name("lumen-index-writer".into())
        .spawn(move || run(conn, config, synced, rx))?;
    Ok(tx)
}

fn open(db_path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(db_path)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    // The database is already in WAL mode (set when sqlx created it; it persists).
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Corrupt(format!("index database error: {e}"))
}

/// The writer loop: takes every job waiting when it is free and indexes the objects in one
/// transaction, so that concurrent ingests (several associations, STOW-RS parts) share one
/// sync of the write-ahead log. A lone object is committed at once. Each transaction also
/// sets the `synced` flag of the files whose syncs have finished.
fn run(mut conn: Connection, config: StoreConfig, synced: Synced, rx: Receiver<Job>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(GROUP_COMMIT_MAX);
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < GROUP_COMMIT_MAX {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        for job in jobs {
            match job {
                Job::Ingest(p) => batch.push(*p),
                Job::Unindex(path, reply) => {
                    let _ = reply.send(unindex(&mut conn, &path).map_err(|e| e.to_string()));
                }
            }
        }
        if batch.is_empty() {
            continue;
        }
        let done: Vec<String> = match synced.lock() {
            Ok(mut v) => std::mem::take(&mut *v),
            Err(_) => Vec::new(),
        };
        let mut results = Vec::with_capacity(batch.len());
        let outcome: Result<(), String> = (|| {
            // IMMEDIATE: the write lock is taken (waiting on the busy timeout) before the first
            // read, so the transaction cannot fail to upgrade from reader to writer when another
            // connection (the audit trail, a review) committed meanwhile.
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(|e| e.to_string())?;
            {
                let mut mark = tx
                    .prepare_cached(
                        "UPDATE instances SET synced = 1 WHERE path = ?1 AND synced = 0",
                    )
                    .map_err(|e| e.to_string())?;
                for path in &done {
                    mark.execute([path]).map_err(|e| e.to_string())?;
                }
            }
            for p in &batch {
                let r = commit_one(&tx, &config, p);
                // A database failure may have left part of this object's rows written:
                // the whole transaction is abandoned (dropping `tx` rolls it back).
                if let Err(IngestError::Internal(m)) = &r {
                    return Err(m.clone());
                }
                results.push(r);
            }
            tx.commit().map_err(|e| e.to_string())
        })();
        match outcome {
            Ok(()) => {
                for (p, r) in batch.drain(..).zip(results) {
                    let _ = p.reply.send(r);
                }
            }
            Err(e) => {
                // Nothing of the batch is indexed; its files are swept at the next start.
                tracing::error!(error = %e, objects = batch.len(), "index transaction failed");
                if let Ok(mut v) = synced.lock() {
                    v.extend(done);
                }
                for p in batch.drain(..) {
                    let _ = p.reply.send(Err(internal(&e)));
                }
            }
        }
    }
}

/// Indexes one written object inside the group transaction, with its outbox rows. Checks
/// come first: an early return (identical, conflict) has written nothing.
fn commit_one(
    tx: &rusqlite::Transaction<'_>,
    config: &StoreConfig,
    pending: &Pending,
) -> Result<Commit, IngestError> {
    let (p, rel, unsynced) = (&pending.parsed, pending.rel.as_str(), pending.unsynced);
    let rec = &p.record;
    let now = now_ms();
    let (study_attrs, series_attrs) = (&p.study_attrs, &p.series_attrs);
    type Row = (
        Option<String>,
        Option<String>,
        Option<String>,
        i64,
        i64,
        i64,
    );
    let (sha, path, series_study, study_same, series_same, ai_fresh): Row = tx
        .prepare_cached(CHECKS)
        .and_then(|mut s| {
            s.query_row(
                params![
                    rec.sop_instance_uid,
                    rec.series_uid,
                    study_attrs,
                    rec.study_uid,
                    rec.patient_id,
                    series_attrs,
                    rec.modality,
                    now - AI_TOUCH_MS
                ],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
        })
        .map_err(internal)?;
    let checks = Checks {
        prior: sha.zip(path),
        series_study,
        study_same: study_same == 1,
        series_same: series_same == 1,
        ai_fresh: ai_fresh == 1,
    };
    let (replaced, study, series, ai_job) = match decide(checks, p, config)? {
        Decision::Identical(path) => return Ok(Commit::Identical(path)),
        Decision::Write {
            replaced,
            study,
            series,
            ai_job,
        } => (replaced, study, series, ai_job),
    };
    if study {
        let c = crate::query_sql::StudyColumns::of(&rec.study_json);
        tx.prepare_cached(STUDY_UPSERT)
            .and_then(|mut s| {
                let [a, i, p] = &c.pn;
                s.execute(params![
                    rec.study_uid,
                    rec.patient_id,
                    c.study_date,
                    study_attrs,
                    now,
                    a,
                    i,
                    p,
                    c.accession,
                    c.study_time,
                    c.description,
                    pending.org
                ])
            })
            .map_err(internal)?;
    }
    if series {
        tx.prepare_cached(SERIES_UPSERT)
            .and_then(|mut s| {
                s.execute(params![
                    rec.series_uid,
                    rec.study_uid,
                    rec.modality,
                    series_attrs,
                    now
                ])
            })
            .map_err(internal)?;
    }
    // Insert, or replace in place (policy `replace`); the triggers keep the counters and
    // study summaries right (migrations 0003, 0005).
    tx.prepare_cached(INSTANCE_UPSERT)
        .and_then(|mut s| {
            s.execute(params![
                rec.sop_instance_uid,
                rec.series_uid,
                rec.study_uid,
                rec.sop_class_uid,
                rec.transfer_syntax_uid,
                rec.instance_number,
                rec.number_of_frames as i64,
                rel,
                p.bytes.len() as i64,
                p.content_hash,
                p.instance_attrs,
                p.metadata,
                now,
                !unsynced,
            ])
        })
        .map_err(internal)?;
    // A series waiting for the AI is touched at most every AI_TOUCH_MS: the quiet period
    // is measured in seconds, and most instances then need no write here.
    if ai_job {
        tx.prepare_cached(AI_JOB_UPSERT)
            .and_then(|mut s| s.execute(params![rec.series_uid, rec.study_uid, now]))
            .map_err(internal)?;
    }
    let routed = queue_routes(tx, config, pending, now)?;
    Ok(match replaced {
        Some(path) => Commit::Replaced(path, routed),
        None => Commit::Inserted(routed),
    })
}

/// Writes the outbox rows of a newly stored (or replaced) instance: one per destination the
/// router chooses. A row left from an earlier version of the instance starts over.
fn queue_routes(
    tx: &rusqlite::Transaction<'_>,
    config: &StoreConfig,
    pending: &Pending,
    now: i64,
) -> Result<usize, IngestError> {
    let rec = &pending.parsed.record;
    let destinations = destinations(config, &pending.parsed, &pending.origin);
    if destinations.is_empty() {
        return Ok(0);
    }
    let mut insert = tx.prepare_cached(OUTBOX_UPSERT).map_err(internal)?;
    for d in &destinations {
        insert
            .execute(params![
                rec.sop_instance_uid,
                rec.series_uid,
                rec.study_uid,
                d,
                pending.origin.label(),
                now
            ])
            .map_err(internal)?;
    }
    Ok(destinations.len())
}

/// Removes the instance stored at `path` from the index, with its series and study when
/// they are left empty, if its row is still marked unsynced (an instance whose file is
/// known to be on disk is left alone; the partial index on unsynced rows finds it).
fn unindex(conn: &mut Connection, path: &str) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let row: Option<(String, String, String)> = tx
        .query_row(
            "DELETE FROM instances WHERE path = ?1 AND synced = 0
             RETURNING series_uid, study_uid, sop_uid",
            params![path],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    if let Some((series, study, sop)) = row {
        // It was never acknowledged: nothing of it is routed.
        tx.execute("DELETE FROM outbox WHERE sop_uid = ?1", [&sop])?;
        tx.execute(
            "DELETE FROM ai_jobs WHERE series_uid = ?1
               AND NOT EXISTS (SELECT 1 FROM instances WHERE series_uid = ?1)",
            [&series],
        )?;
        tx.execute(
            "DELETE FROM series WHERE series_uid = ?1 AND num_instances = 0",
            [&series],
        )?;
        tx.execute(
            "DELETE FROM studies WHERE study_uid = ?1 AND num_instances = 0",
            [&study],
        )?;
    }
    tx.commit()
}

/// Fills the query columns of studies indexed before migration 0006, once (the migration
/// leaves a marker), in one transaction.
fn backfill_study_columns(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(db)?;
    let pending: bool = tx
        .query_row(
            "SELECT count(*) > 0 FROM index_backfill WHERE name = 'study_columns'",
            [],
            |r| r.get(0),
        )
        .map_err(db)?;
    if !pending {
        return Ok(());
    }
    // In pages of studies (keyset on the UID), so that a large archive's attributes are
    // never all in memory at once.
    let mut done = 0usize;
    let mut after = String::new();
    loop {
        let rows: Vec<(String, String)> = tx
            .prepare_cached(
                "SELECT study_uid, attrs FROM studies WHERE study_uid > ?1
                 ORDER BY study_uid LIMIT 1000",
            )
            .and_then(|mut s| {
                s.query_map([&after], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(db)?;
        let Some((last, _)) = rows.last() else { break };
        after = last.clone();
        let mut update = tx
            .prepare_cached(
                "UPDATE studies SET study_date = ?2, pn_alphabetic = ?3, pn_ideographic = ?4,
                   pn_phonetic = ?5, accession = ?6, study_time = ?7, description = ?8
                 WHERE study_uid = ?1",
            )
            .map_err(db)?;
        for (uid, attrs) in &rows {
            let attrs = crate::parse_map(attrs)?;
            let c = crate::query_sql::StudyColumns::of(&attrs);
            let [a, i, p] = &c.pn;
            update
                .execute(params![
                    uid,
                    c.study_date,
                    a,
                    i,
                    p,
                    c.accession,
                    c.study_time,
                    c.description
                ])
                .map_err(db)?;
        }
        done += rows.len();
    }
    tx.execute(
        "DELETE FROM index_backfill WHERE name = 'study_columns'",
        [],
    )
    .map_err(db)?;
    tx.commit().map_err(db)?;
    if done > 0 {
        tracing::info!(studies = done, "query columns filled for existing studies");
    }
    Ok(())
}

/// Start-up check of the files indexed while their sync was running: each must hold the
/// bytes the index recorded (SHA-256); an instance whose file did not survive (a power loss
/// before its sync finished, so it was never acknowledged) is un-indexed, and its file is
/// then swept as unlisted.
fn recover_unsynced(conn: &mut Connection, data_dir: &Path) -> Result<(), StoreError> {
    let rows: Vec<(String, String)> = conn
        .prepare("SELECT path, content_hash FROM instances WHERE synced = 0")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(db)?;
    if rows.is_empty() {
        return Ok(());
    }
    let mut lost = 0usize;
    for (path, sha) in rows {
        let intact =
            std::fs::read(data_dir.join(&path)).is_ok_and(|b| crate::content::matches(&sha, &b));
        if intact {
            conn.execute(
                "UPDATE instances SET synced = 1 WHERE path = ?1 AND synced = 0",
                [&path],
            )
            .map_err(db)?;
        } else {
            unindex(conn, &path).map_err(db)?;
            lost += 1;
        }
    }
    if lost > 0 {
        tracing::warn!(
            lost,
            "un-indexed objects whose files did not survive a crash"
        );
    }
    Ok(())
}
