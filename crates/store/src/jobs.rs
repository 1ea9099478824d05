//! The persistent AI job queue, kept in the index database.
//!
//! Ingest marks a series `waiting` whenever an instance of an AI modality arrives; a worker
//! claims a series once it has been quiet for the configured period, and finishes it as
//! done, failed or skipped. A series that changed while it was analysed is analysed again.
//!
//! Several processes may share the queue (front ends with the AI on and `lumen worker`s over
//! one PostgreSQL index): a claim is held under a lease that the worker renews while the job
//! runs. A job whose worker died is claimed again once its lease has passed (on SQLite, where
//! one process owns the index, at its next start too), and only the current claim's holder
//! can finish it. The analysis is deterministic, so a job taken over stores the very same
//! SEG and SR (an identical re-send stores nothing).

use std::time::Duration;

use serde::Serialize;
use sqlx::Row;

use crate::{Store, StoreError, now_ms};

/// A claimed job.
#[derive(Debug, Clone)]
pub struct AiJob {
    /// The series to analyse.
    pub series_uid: String,
    /// Its study.
    pub study_uid: String,
    /// How many times it has been claimed (1 on the first run).
    pub attempts: i64,
    /// When its last instance arrived (ms); the claim is void if this changes.
    pub last_instance_at: i64,
    /// The claim's token: only its holder renews and finishes the job.
    pub claim: String,
}

/// How a job ended.
#[derive(Debug, Clone)]
pub enum AiJobOutcome {
    /// Analysed; the JSON summary of the result.
    Done(serde_json::Value),
    /// The series does not qualify (not a chest CT, too few slices...).
    Skipped(String),
    /// Failed for good.
    Failed(String),
    /// Failed; try again after the delay.
    Retry {
        /// Why this attempt failed.
        reason: String,
        /// Backoff before the next attempt.
        after: Duration,
    },
}

/// The state of a series' AI job, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AiJobStatus {
    /// Series Instance UID.
    pub series_uid: String,
    /// waiting, running, done, failed or skipped.
    pub state: String,
    /// Attempts so far.
    pub attempts: i64,
    /// Why it failed or was skipped.
    pub reason: Option<String>,
    /// The result summary, when done.
    pub result: Option<serde_json::Value>,
    /// Last change (ms since epoch).
    pub updated_at: i64,
}

impl Store {
    /// At the start of the one process that owns a SQLite index: hands the jobs a process
    /// that died left `running` back to the queue at once. On PostgreSQL other processes may
    /// be running them: a dead worker's job is claimed again when its lease has passed.
    pub async fn recover_ai_jobs(&self) -> Result<u64, StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            if d == crate::db::Dialect::Postgres {
                return Ok(0);
            }
            let r = sqlx::query(d.sql(
                "UPDATE ai_jobs SET state = 'waiting', claimed_by = NULL WHERE state = 'running'",
            ))
            .execute(pool)
            .await?;
            Ok(r.rows_affected())
        })
    }

    /// Claims, for `lease`, the series that has waited longest once quiet for `quiet`, or
    /// a running one whose lease has passed (its worker died), if any.
    pub async fn claim_ai_job(
        &self,
        quiet: Duration,
        lease: Duration,
    ) -> Result<Option<AiJob>, StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let now = now_ms();
            let quiet_ms = i64::try_from(quiet.as_millis()).unwrap_or(i64::MAX);
            let mut tx = pool.begin_with(d.begin()).await?;
            let row = sqlx::query(d.sql(format!(
                "SELECT series_uid, study_uid, attempts, last_instance_at FROM ai_jobs
                 WHERE (state = 'waiting' AND last_instance_at <= ?1 AND not_before <= ?2)
                    OR (state = 'running' AND lease_until < ?2)
                 ORDER BY last_instance_at LIMIT 1{}",
                d.skip_locked()
            )))
            .bind(now.saturating_sub(quiet_ms))
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let job = AiJob {
                series_uid: row.try_get(0)?,
                study_uid: row.try_get(1)?,
                attempts: row.try_get::<i64, _>(2)? + 1,
                last_instance_at: row.try_get(3)?,
                claim: claim_token()?,
            };
            sqlx::query(d.sql(
                "UPDATE ai_jobs SET state = 'running', attempts = ?, updated_at = ?,
                   claimed_by = ?, lease_until = ?
                 WHERE series_uid = ?",
            ))
            .bind(job.attempts)
            .bind(now)
            .bind(&job.claim)
            .bind(now.saturating_add(millis(lease)))
            .bind(&job.series_uid)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Some(job))
        })
    }

    /// Extends the lease of a claimed job by `lease` from now. False when the claim was
    /// lost (the lease passed and another worker took the job, or the series changed): the
    /// worker should stop.
    pub async fn renew_ai_job(&self, job: &AiJob, lease: Duration) -> Result<bool, StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let r = sqlx::query(d.sql(
                "UPDATE ai_jobs SET lease_until = ?
                 WHERE series_uid = ? AND state = 'running' AND claimed_by = ?",
            ))
            .bind(now_ms().saturating_add(millis(lease)))
            .bind(&job.series_uid)
            .bind(&job.claim)
            .execute(pool)
            .await?;
            Ok(r.rows_affected() == 1)
        })
    }

    /// Records how a claimed job ended. Returns false (and records nothing) when the series
    /// received new instances meanwhile (it is waiting again and will be analysed anew) or
    /// the claim was lost to another worker after its lease passed.
    pub async fn finish_ai_job(
        &self,
        job: &AiJob,
        outcome: AiJobOutcome,
    ) -> Result<bool, StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let now = now_ms();
            let (state, reason, result, not_before) = match outcome {
                AiJobOutcome::Done(v) => ("done", None, Some(v), 0),
                AiJobOutcome::Skipped(r) => ("skipped", Some(r), None, 0),
                AiJobOutcome::Failed(r) => ("failed", Some(r), None, 0),
                AiJobOutcome::Retry { reason, after } => (
                    "waiting",
                    Some(reason),
                    None,
                    now.saturating_add(i64::try_from(after.as_millis()).unwrap_or(i64::MAX)),
                ),
            };
            // What is stored is the typed result's serde form (with its schema version); its
            // category is a column, so that the worklist reads it without parsing JSON.
            let (result, lung_rads) = match result {
                Some(v) => {
                    let typed: lumen_model::ai::AiJobResult = serde_json::from_value(v)
                        .map_err(|e| StoreError::Corrupt(format!("AI result: {e}")))?;
                    let category = serde_json::to_value(typed.lung_rads())
                        .ok()
                        .and_then(|c| c.as_str().map(str::to_string));
                    let json = serde_json::to_string(&typed)
                        .map_err(|e| StoreError::Corrupt(format!("AI result: {e}")))?;
                    (Some(json), category)
                }
                None => (None, None),
            };
            let r = sqlx::query(
            d.sql("UPDATE ai_jobs SET state = ?, reason = ?, result = ?, lung_rads = ?, not_before = ?,
               updated_at = ?
             WHERE series_uid = ? AND state = 'running' AND last_instance_at = ?
               AND claimed_by = ?"),
        )
        .bind(state)
        .bind(reason)
        .bind(result)
        .bind(lung_rads)
        .bind(not_before)
        .bind(now)
        .bind(&job.series_uid)
        .bind(job.last_instance_at)
        .bind(&job.claim)
        .execute(pool)
        .await?;
            Ok(r.rows_affected() == 1)
        })
    }

    /// The AI jobs of a study's series.
    pub async fn ai_jobs(&self, study_uid: &str) -> Result<Vec<AiJobStatus>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            let rows = sqlx::query(d.sql(
                "SELECT series_uid, state, attempts, reason, result, updated_at FROM ai_jobs
             WHERE study_uid = ? ORDER BY series_uid",
            ))
            .bind(study_uid)
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|r| {
                    Ok(AiJobStatus {
                        series_uid: r.try_get(0)?,
                        state: r.try_get(1)?,
                        attempts: r.try_get(2)?,
                        reason: r.try_get(3)?,
                        result: r
                            .try_get::<Option<String>, _>(4)?
                            .and_then(|s| serde_json::from_str(&s).ok()),
                        updated_at: r.try_get(5)?,
                    })
                })
                .collect()
        })
    }

    /// Queues every series of an AI modality in the study for analysis now (re-run on
    /// demand). Returns how many series were queued.
    pub async fn requeue_ai(&self, study_uid: &str) -> Result<u64, StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let now = now_ms();
            let mut n = 0;
            let series =
                sqlx::query(d.sql("SELECT series_uid, modality FROM series WHERE study_uid = ?"))
                    .bind(study_uid)
                    .fetch_all(pool)
                    .await?;
            for row in series {
                let (uid, modality): (String, String) = (row.try_get(0)?, row.try_get(1)?);
                if !self.config.ai_modalities.contains(&modality) {
                    continue;
                }
                sqlx::query(
                d.sql("INSERT INTO ai_jobs (series_uid, study_uid, state, last_instance_at, updated_at)
                 VALUES (?, ?, 'waiting', 0, ?)
                 ON CONFLICT(series_uid) DO UPDATE SET state = 'waiting', attempts = 0,
                   not_before = 0, reason = NULL, updated_at = excluded.updated_at
                 WHERE ai_jobs.state != 'running'"),
            )
            .bind(&uid)
            .bind(study_uid)
            .bind(now)
            .execute(pool)
            .await?;
                n += 1;
            }
            Ok(n)
        })
    }
}

/// A new claim token: 128 random bits, hex.
fn claim_token() -> Result<String, StoreError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
    Ok(hex::encode(b))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
