//! The ingest transaction on PostgreSQL: the same checks, decision ([`writer::decide`]) and
//! statements as the SQLite writer thread, run by sqlx, one transaction per object.
//!
//! The SQLite writer groups commits to share one sync of its write-ahead log; PostgreSQL
//! commits concurrent transactions in groups by itself, so each ingest simply runs its own.
//! The object file is synced before the commit (no `synced = 0` window: the overlap is the
//! SQLite writer's optimisation). Concurrent ingests of one instance are serialised by a
//! transaction-level advisory lock on its SOP Instance UID; a deadlock between ingests into
//! one study (both touch its row) is retried.

use sqlx::Row;
use sqlx::postgres::PgPool;

use crate::db::Dialect;
use crate::writer::{self, Checks, Commit, Decision};
use crate::{IngestError, Origin, Prepared, StoreConfig, internal, now_ms};

/// How often a transaction that lost a deadlock or serialisation conflict is tried again.
const RETRIES: usize = 5;

/// Indexes one object whose file is on disk at `rel`, with its outbox rows.
pub(crate) async fn commit(
    pool: &PgPool,
    config: &StoreConfig,
    p: &Prepared,
    origin: &Origin,
    org: &str,
    rel: &str,
) -> Result<Commit, IngestError> {
    let mut tries = 0;
    loop {
        match commit_once(pool, config, p, origin, org, rel).await {
            Ok(r) => return r,
            Err(e) if tries < RETRIES && retryable(&e) => tries += 1,
            Err(e) => return Err(internal(e)),
        }
    }
}

/// Whether PostgreSQL asks for the transaction to be tried again (deadlock detected,
/// serialisation failure).
fn retryable(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "40P01" || c == "40001")
}

/// One try: `Err` for a database failure (the transaction is rolled back), `Ok(Err)` for a
/// refusal (conflict), decided before anything was written.
async fn commit_once(
    pool: &PgPool,
    config: &StoreConfig,
    p: &Prepared,
    origin: &Origin,
    org: &str,
    rel: &str,
) -> Result<Result<Commit, IngestError>, sqlx::Error> {
    let d = Dialect::Postgres;
    let rec = &p.record;
    let now = now_ms();
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(&rec.sop_instance_uid)
        .execute(&mut *tx)
        .await?;
    let row = sqlx::query(d.sql(writer::CHECKS))
        .bind(&rec.sop_instance_uid)
        .bind(&rec.series_uid)
        .bind(&p.study_attrs)
        .bind(&rec.study_uid)
        .bind(&rec.patient_id)
        .bind(&p.series_attrs)
        .bind(&rec.modality)
        .bind(now - writer::AI_TOUCH_MS)
        .fetch_one(&mut *tx)
        .await?;
    let sha: Option<String> = row.try_get(0)?;
    let path: Option<String> = row.try_get(1)?;
    let checks = Checks {
        prior: sha.zip(path),
        series_study: row.try_get(2)?,
        study_same: row.try_get(3)?,
        series_same: row.try_get(4)?,
        ai_fresh: row.try_get(5)?,
    };
    let (replaced, study, series, ai_job) = match writer::decide(checks, p, config) {
        Ok(Decision::Identical(path)) => return Ok(Ok(Commit::Identical(path))),
        Ok(Decision::Write {
            replaced,
            study,
            series,
            ai_job,
        }) => (replaced, study, series, ai_job),
        Err(e) => return Ok(Err(e)),
    };
    if study {
        let c = crate::query_sql::StudyColumns::of(&rec.study_json);
        let [a, i, pn] = &c.pn;
        sqlx::query(d.sql(writer::STUDY_UPSERT))
            .bind(&rec.study_uid)
            .bind(&rec.patient_id)
            .bind(&c.study_date)
            .bind(&p.study_attrs)
            .bind(now)
            .bind(a)
            .bind(i)
            .bind(pn)
            .bind(&c.accession)
            .bind(&c.study_time)
            .bind(&c.description)
            .bind(org)
            .execute(&mut *tx)
            .await?;
    }
    if series {
        sqlx::query(d.sql(writer::SERIES_UPSERT))
            .bind(&rec.series_uid)
            .bind(&rec.study_uid)
            .bind(&rec.modality)
            .bind(&p.series_attrs)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(d.sql(writer::INSTANCE_UPSERT))
        .bind(&rec.sop_instance_uid)
        .bind(&rec.series_uid)
        .bind(&rec.study_uid)
        .bind(&rec.sop_class_uid)
        .bind(&rec.transfer_syntax_uid)
        .bind(rec.instance_number)
        .bind(i64::from(rec.number_of_frames))
        .bind(rel)
        .bind(i64::try_from(p.bytes.len()).unwrap_or(i64::MAX))
        .bind(&p.content_hash)
        .bind(&p.instance_attrs)
        .bind(&p.metadata)
        .bind(now)
        .bind(1i64)
        .execute(&mut *tx)
        .await?;
    if ai_job {
        sqlx::query(d.sql(writer::AI_JOB_UPSERT))
            .bind(&rec.series_uid)
            .bind(&rec.study_uid)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    let destinations = writer::destinations(config, p, origin);
    for dest in &destinations {
        sqlx::query(d.sql(writer::OUTBOX_UPSERT))
            .bind(&rec.sop_instance_uid)
            .bind(&rec.series_uid)
            .bind(&rec.study_uid)
            .bind(dest)
            .bind(origin.label())
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    let routed = destinations.len();
    Ok(Ok(match replaced {
        Some(path) => Commit::Replaced(path, routed),
        None => Commit::Inserted(routed),
    }))
}
