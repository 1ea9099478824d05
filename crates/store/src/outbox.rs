//! The routing outbox, kept in the index database (migration 0007).
//!
//! Every ingest path tells [`Store::ingest`](crate::Store::ingest) where an object came from
//! ([`Origin`]). When a [`Router`] is configured, the index writer asks it, inside the
//! transaction that stores a new instance, which destinations the instance goes to, and
//! writes one outbox row per destination in that same transaction: what was acknowledged is
//! routed, across crashes and restarts, whatever door it came in by. An identical re-send
//! stores nothing and routes nothing.
//!
//! A worker (`lumen_app::routing`) claims due rows ([`Store::claim_outbox`]), sends them and
//! reports each outcome: sent ([`Store::outbox_sent`]), to be retried after a backoff
//! ([`Store::outbox_retry`]) or refused for good ([`Store::outbox_refused`]). Claims of a
//! process that died are released when the store opens. [`RoutingQueue`] reads and edits
//! the queue beside a running server (`lumen queue`).
//!
//! Data directories of earlier versions kept the queue in `outbound.sqlite`; its rows are
//! imported once when the store opens and the file is renamed `outbound.sqlite.imported`.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use crate::{Store, StoreError, now_ms};

/// How an object reached the archive (recorded on its outbox rows; routing rules may look
/// at it, the calling AE title in particular).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// A C-STORE from this calling AE title.
    CStore {
        /// The sender's AE title.
        calling_ae: String,
    },
    /// A STOW-RS request.
    StowRs,
    /// `lumen import` from files.
    Import,
    /// A result the AI wrote (SEG, SR).
    Ai,
    /// A signed report's objects (Encapsulated PDF, Basic Text SR).
    Report,
    /// `lumen retrieve --get --data` from another node.
    Retrieve,
}

impl Origin {
    /// A C-STORE from `calling_ae`.
    pub fn c_store(calling_ae: impl Into<String>) -> Origin {
        Origin::CStore {
            calling_ae: calling_ae.into(),
        }
    }

    /// The short name stored in the outbox and shown by `lumen queue`.
    pub fn label(&self) -> &'static str {
        match self {
            Origin::CStore { .. } => "c-store",
            Origin::StowRs => "stow-rs",
            Origin::Import => "import",
            Origin::Ai => "ai",
            Origin::Report => "report",
            Origin::Retrieve => "retrieve",
        }
    }

    /// The calling AE title of a C-STORE (none for the other paths).
    pub fn calling_ae(&self) -> Option<&str> {
        match self {
            Origin::CStore { calling_ae } => Some(calling_ae),
            _ => None,
        }
    }
}

/// A newly stored instance, as a [`Router`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    /// How it came.
    pub origin: &'a Origin,
    /// Modality (0008,0060) of its series; empty when absent.
    pub modality: &'a str,
    /// SOP Class UID.
    pub sop_class_uid: &'a str,
    /// Study Instance UID.
    pub study_uid: &'a str,
    /// Series Instance UID.
    pub series_uid: &'a str,
    /// SOP Instance UID.
    pub sop_instance_uid: &'a str,
}

/// Decides where a newly stored instance is forwarded. It runs on the index writer thread
/// inside the ingest transaction: it must be quick and must not block.
pub trait Router: Send + Sync + std::fmt::Debug {
    /// The destination AE titles of `arrival` (none: not routed). Duplicates are ignored.
    fn destinations(&self, arrival: &Arrival<'_>) -> Vec<String>;
}

/// One outbox row: an instance to be sent to one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxEntry {
    /// Row id (what a worker reports outcomes by).
    #[serde(skip)]
    pub id: i64,
    /// Destination AE title.
    pub destination: String,
    /// Study Instance UID.
    pub study_uid: String,
    /// Series Instance UID.
    pub series_uid: String,
    /// SOP Instance UID.
    pub sop_instance_uid: String,
    /// How the instance arrived ([`Origin::label`]; `outbound.sqlite` for rows imported
    /// from an earlier version's queue).
    pub origin: String,
    /// `pending` (to be sent, or retried after a failure) or `failed` (refused by the peer).
    pub state: String,
    /// Attempts so far.
    pub attempts: u32,
    /// When it was queued (Unix milliseconds; 0 for rows of older versions).
    pub queued_ms: i64,
    /// When the next attempt is due (Unix milliseconds; pending rows).
    pub next_attempt_ms: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// The claim this row was handed out under ([`Store::claim_outbox`]); outcomes apply
    /// only while it holds (an instance replaced meanwhile is queued again).
    #[serde(skip)]
    pub claimed_ms: Option<i64>,
}

/// A claim not settled within this time (its worker failed to record the outcome) may be
/// handed out again. The one worker of a process claims again only after settling what it
/// claimed before, so the lease never cuts a transfer short.
const CLAIM_LEASE_MS: i64 = 60 * 1000;

/// The columns [`entry`] reads, in order.
const COLUMNS: &str = "id, destination, study_uid, series_uid, sop_uid, origin, state, attempts,
    queued_ms, next_attempt_ms, last_error, claimed_ms";

fn entry(r: &impl crate::db::IndexRow) -> Result<OutboxEntry, StoreError> {
    Ok(OutboxEntry {
        id: r.col(0)?,
        destination: r.col(1)?,
        study_uid: r.col(2)?,
        series_uid: r.col(3)?,
        sop_instance_uid: r.col(4)?,
        origin: r.col(5)?,
        state: r.col(6)?,
        attempts: u32::try_from(r.col::<i64, _>(7)?.max(0)).unwrap_or(u32::MAX),
        queued_ms: r.col(8)?,
        next_attempt_ms: r.col(9)?,
        last_error: r.col(10)?,
        claimed_ms: r.col(11)?,
    })
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Every row, oldest first.
async fn all_entries(pools: &crate::db::Pools) -> Result<Vec<OutboxEntry>, StoreError> {
    crate::db::with_db!(pools, reader, |pool, d| {
        let rows = sqlx::query(d.sql(format!("SELECT {COLUMNS} FROM outbox ORDER BY id")))
            .fetch_all(pool)
            .await?;
        rows.iter().map(entry).collect()
    })
}

/// Puts refused rows (of one destination, or all) back in line.
async fn retry_failed(
    pools: &crate::db::Pools,
    destination: Option<&str>,
) -> Result<u64, StoreError> {
    crate::db::with_db!(pools, writer, |pool, d| {
        let r = sqlx::query(d.sql(
        "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_ms = ?, claimed_ms = NULL
         WHERE state = 'failed' AND (? IS NULL OR destination = ?)",
    ))
    .bind(now_ms())
    .bind(destination)
    .bind(destination)
    .execute(pool)
    .await?;
        Ok(r.rows_affected())
    })
}

impl Store {
    /// Claims up to `limit` due rows, oldest first, for one worker to send. Each must then
    /// be reported as sent, to be retried or refused.
    pub async fn claim_outbox(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let now = now_ms();
            // Rows another process is claiming are skipped on PostgreSQL: several
            // processes may route (their claims never overlap).
            let rows = sqlx::query(d.sql(format!(
                "UPDATE outbox SET claimed_ms = ?1 WHERE id IN (
                SELECT id FROM outbox
                WHERE state = 'pending' AND next_attempt_ms <= ?1
                  AND (claimed_ms IS NULL OR claimed_ms < ?2)
                ORDER BY id LIMIT ?3{})
             RETURNING {COLUMNS}",
                d.skip_locked()
            )))
            .bind(now)
            .bind(now - CLAIM_LEASE_MS)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await?;
            let mut out = rows.iter().map(entry).collect::<Result<Vec<_>, _>>()?;
            out.sort_by_key(|e| e.id);
            Ok(out)
        })
    }

    /// The peer accepted the instance (or it is no longer stored): the row goes.
    pub async fn outbox_sent(&self, e: &OutboxEntry) -> Result<(), StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            sqlx::query(
                d.sql("DELETE FROM outbox WHERE id = ? AND claimed_ms IS NOT DISTINCT FROM ?"),
            )
            .bind(e.id)
            .bind(e.claimed_ms)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The attempt failed (peer unreachable, association failed): tried again after `after`.
    pub async fn outbox_retry(
        &self,
        e: &OutboxEntry,
        error: &str,
        after: Duration,
    ) -> Result<(), StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            sqlx::query(d.sql(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_ms = ?, last_error = ?,
                claimed_ms = NULL
             WHERE id = ? AND claimed_ms IS NOT DISTINCT FROM ?",
            ))
            .bind(now_ms().saturating_add(millis(after)))
            .bind(error)
            .bind(e.id)
            .bind(e.claimed_ms)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The peer refused the instance: kept as `failed` with the reason, not retried until
    /// an operator asks ([`RoutingQueue::retry_failed`]).
    pub async fn outbox_refused(&self, e: &OutboxEntry, error: &str) -> Result<(), StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            sqlx::query(d.sql(
                "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ?,
                claimed_ms = NULL
             WHERE id = ? AND claimed_ms IS NOT DISTINCT FROM ?",
            ))
            .bind(error)
            .bind(e.id)
            .bind(e.claimed_ms)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// When the next pending row can be claimed (Unix milliseconds), if any: its next
    /// attempt, or the end of the lease of a claim not settled.
    pub async fn outbox_next_due(&self) -> Result<Option<i64>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            let row = sqlx::query(d.sql(format!(
                "SELECT MIN(CASE WHEN claimed_ms IS NULL THEN next_attempt_ms
                        ELSE {}(next_attempt_ms, claimed_ms + ?) END)
             FROM outbox WHERE state = 'pending'",
                d.greatest()
            )))
            .bind(CLAIM_LEASE_MS)
            .fetch_one(pool)
            .await?;
            Ok(row.try_get(0)?)
        })
    }

    /// Every outbox row, oldest first.
    pub async fn outbox_entries(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        all_entries(&self.pools).await
    }

    /// Puts refused rows (of one destination, or all) back in line; returns how many.
    pub async fn outbox_retry_failed(&self, destination: Option<&str>) -> Result<u64, StoreError> {
        {
            let n = retry_failed(&self.pools, destination).await?;
            if n > 0 {
                self.outbox_wake.notify_one();
            }
            Ok(n)
        }
    }

    /// Waits until an ingest queued rows or `max` passed, whichever comes first.
    pub async fn outbox_wait(&self, max: Duration) {
        let _ = tokio::time::timeout(max, self.outbox_wake.notified()).await;
    }

    /// Hands back the claims of a process that died, in the routing outbox and the share
    /// outbox (called when the store opens; on SQLite, whose one process owns the index).
    pub(crate) async fn release_claims(&self) -> Result<(), StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            // On PostgreSQL other processes may hold claims: a dead one's rows come back
            // when their lease ends.
            if d == crate::db::Dialect::Postgres {
                return Ok(());
            }
            for table in ["outbox", "share_outbox"] {
                sqlx::query(d.sql(format!(
                    "UPDATE {table} SET claimed_ms = NULL WHERE claimed_ms IS NOT NULL"
                )))
                .execute(pool)
                .await?;
            }
            Ok(())
        })
    }

    /// Imports the rows of an earlier version's `outbound.sqlite`, once: afterwards the file
    /// is renamed `outbound.sqlite.imported`. A file that cannot be read is left in place
    /// (and tried again at the next start) without stopping the archive.
    pub(crate) async fn import_legacy_outbound(&self) -> Result<(), StoreError> {
        {
            let legacy = self.config.data_dir.join(LEGACY_QUEUE_FILE);
            if !legacy.exists() {
                return Ok(());
            }
            match self.import_legacy_rows(&legacy).await {
                Ok(n) => {
                    let done = self
                        .config
                        .data_dir
                        .join(format!("{LEGACY_QUEUE_FILE}.imported"));
                    std::fs::rename(&legacy, &done)?;
                    for ext in ["-wal", "-shm"] {
                        let side = self
                            .config
                            .data_dir
                            .join(format!("{LEGACY_QUEUE_FILE}{ext}"));
                        if side.exists() {
                            std::fs::remove_file(side)?;
                        }
                    }
                    tracing::info!(
                        rows = n,
                        "routing queue of an earlier version (outbound.sqlite) imported into the index"
                    );
                    if n > 0 {
                        self.outbox_wake.notify_one();
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot import outbound.sqlite; left in place")
                }
            }
            Ok(())
        }
    }

    async fn import_legacy_rows(&self, legacy: &Path) -> Result<u64, StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let opts = SqliteConnectOptions::from_str("sqlite://")?
                .filename(legacy)
                .create_if_missing(false)
                .busy_timeout(Duration::from_secs(10));
            let old = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts)
                .await?;
            let cols: Vec<String> =
                sqlx::query(d.sql("SELECT name FROM pragma_table_info('outbound')"))
                    .fetch_all(&old)
                    .await?
                    .iter()
                    .map(|r| r.try_get::<String, _>(0))
                    .collect::<Result<_, _>>()?;
            if cols.is_empty() {
                old.close().await;
                return Ok(0);
            }
            let has = |c: &str| cols.iter().any(|x| x == c);
            let rows = sqlx::query(d.sql(format!(
                "SELECT study_uid, series_uid, sop_instance_uid, destination, attempts,
                    next_attempt_ms, last_error, {}, {} FROM outbound ORDER BY id",
                if has("state") { "state" } else { "'pending'" },
                if has("queued_ms") { "queued_ms" } else { "0" },
            )))
            .fetch_all(&old)
            .await?;
            old.close().await;
            let mut tx = pool.begin_with(d.begin()).await?;
            let mut n = 0;
            for r in &rows {
                let state: String = r.try_get(7)?;
                let done = sqlx::query(d.sql(
                    "INSERT INTO outbox (study_uid, series_uid, sop_uid, destination, attempts,
                    next_attempt_ms, last_error, state, queued_ms, origin)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'outbound.sqlite')
                 ON CONFLICT (sop_uid, destination) DO NOTHING",
                ))
                .bind(r.try_get::<String, _>(0)?)
                .bind(r.try_get::<String, _>(1)?)
                .bind(r.try_get::<String, _>(2)?)
                .bind(r.try_get::<String, _>(3)?)
                .bind(r.try_get::<i64, _>(4)?)
                .bind(r.try_get::<i64, _>(5)?)
                .bind(r.try_get::<Option<String>, _>(6)?)
                .bind(if state == "failed" {
                    "failed"
                } else {
                    "pending"
                })
                .bind(r.try_get::<i64, _>(8)?)
                .execute(&mut *tx)
                .await?;
                n += done.rows_affected();
            }
            tx.commit().await?;
            Ok(n)
        })
    }
}

/// The queue file of earlier versions, in the data directory.
pub const LEGACY_QUEUE_FILE: &str = "outbound.sqlite";

/// The outbox of a data directory opened beside a running server (which holds the data
/// directory's lock): `lumen queue` reads it and puts refused rows back in line.
#[derive(Debug, Clone)]
pub struct RoutingQueue {
    /// One connection to the SQLite index file, as reader and writer.
    pools: crate::db::Pools,
}

impl RoutingQueue {
    /// Opens the outbox of `data_dir`; `None` when there is no archive there yet, or its
    /// index was last opened by a version without the outbox.
    pub async fn open(data_dir: &Path) -> Result<Option<RoutingQueue>, StoreError> {
        {
            let db = data_dir.join("index.sqlite");
            if !db.exists() {
                return Ok(None);
            }
            let opts = SqliteConnectOptions::from_str("sqlite://")?
                .filename(&db)
                .create_if_missing(false)
                // A running server writes the index meanwhile.
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts)
                .await?;
            let exists: i64 = sqlx::query(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'outbox'",
            )
            .fetch_one(&pool)
            .await?
            .try_get(0)?;
            if exists == 0 {
                pool.close().await;
                return Ok(None);
            }
            Ok(Some(RoutingQueue {
                pools: crate::db::Pools::Sqlite {
                    reader: pool.clone(),
                    writer: pool,
                },
            }))
        }
    }

    /// Opens the outbox of the PostgreSQL index at `url` (the `database` of the
    /// configuration), bringing its schema up to date like [`Store::open`].
    pub async fn connect(url: &str) -> Result<RoutingQueue, StoreError> {
        Ok(RoutingQueue {
            pools: crate::db::Pools::Postgres(crate::open_postgres(url).await?),
        })
    }

    /// Every row, oldest first.
    pub async fn entries(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        all_entries(&self.pools).await
    }

    /// Puts refused rows (of one destination, or all) back in line; returns how many. A
    /// running server looks at the outbox every few seconds.
    pub async fn retry_failed(&self, destination: Option<&str>) -> Result<u64, StoreError> {
        retry_failed(&self.pools, destination).await
    }
}
