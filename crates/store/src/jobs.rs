//! The persistent AI job queue, kept in the index database.
//!
//! Ingest marks a series `waiting` whenever an instance of an AI modality arrives; a worker
//! claims a series once it has been quiet for the configured period, and finishes it as
//! done, failed or skipped. A job claimed by a process that died is handed out again at the
//! next start, and a series that changed while it was analysed is analysed again.

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
    /// Hands jobs left `running` by a process that died back to the queue.
    pub async fn recover_ai_jobs(&self) -> Result<u64, StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let r =
                sqlx::query(d.sql("UPDATE ai_jobs SET state = 'waiting' WHERE state = 'running'"))
                    .execute(pool)
                    .await?;
            Ok(r.rows_affected())
        })
    }

    /// Claims the series that has waited longest once quiet for `quiet`, if any.
    pub async fn claim_ai_job(&self, quiet: Duration) -> Result<Option<AiJob>, StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let now = now_ms();
            let quiet_ms = i64::try_from(quiet.as_millis()).unwrap_or(i64::MAX);
            let mut tx = pool.begin_with(d.begin()).await?;
            let row = sqlx::query(d.sql(
                "SELECT series_uid, study_uid, attempts, last_instance_at FROM ai_jobs
             WHERE state = 'waiting' AND last_instance_at <= ? AND not_before <= ?
             ORDER BY last_instance_at LIMIT 1",
            ))
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
            };
            sqlx::query(d.sql("UPDATE ai_jobs SET state = 'running', attempts = ?, updated_at = ? WHERE series_uid = ?"))
            .bind(job.attempts)
            .bind(now)
            .bind(&job.series_uid)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Some(job))
        })
    }

    /// Records how a claimed job ended. Returns false (and records nothing) when the series
    /// received new instances meanwhile: it is waiting again and will be analysed anew.
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
             WHERE series_uid = ? AND state = 'running' AND last_instance_at = ?"),
        )
        .bind(state)
        .bind(reason)
        .bind(result)
        .bind(lung_rads)
        .bind(not_before)
        .bind(now)
        .bind(&job.series_uid)
        .bind(job.last_instance_at)
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
