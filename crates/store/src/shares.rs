//! Sharing between consortium nodes (migration 0014): the shares this node made (origin
//! side), the grants members gave it (recipient side), the share outbox, and the purge of
//! a study whose grant was revoked.
//!
//! Every event that goes on the ledger is written here with its entries, in one
//! transaction (the entries' commitments are made by `lumen-app`).

use std::time::Duration;

use sqlx::Row;

use crate::ledger::insert_entry;
use crate::{NewLedgerEntry, Store, StoreError, now_ms};

/// A share made by this node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ShareRow {
    /// Its id.
    pub id: String,
    /// The study shared.
    pub study_uid: String,
    /// The member it was shared with.
    pub to: String,
    /// Why.
    pub purpose: String,
    /// On what basis (`consent`, `emergency`, `recorded-at-registration`).
    pub consent: String,
    /// `active` or `revoked`.
    pub status: String,
    /// Who shared it (user id).
    pub created_by: String,
    /// The study's organisation.
    pub org: String,
    /// When (ms since the epoch).
    pub created_ms: i64,
    /// When it was revoked.
    pub revoked_ms: Option<i64>,
    /// The member whose signed report came back (its name).
    pub reported_by: Option<String>,
    /// When the report came back.
    pub reported_ms: Option<i64>,
}

/// A grant this node received.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GrantRow {
    /// The origin member's id.
    pub origin: String,
    /// The share's id at the origin.
    pub share_id: String,
    /// The study.
    pub study_uid: String,
    /// The origin's name.
    pub origin_name: String,
    /// Why it was shared.
    pub purpose: String,
    /// On what basis.
    pub consent: String,
    /// `active` or `revoked`.
    pub status: String,
    /// When it arrived.
    pub created_ms: i64,
    /// When the origin last confirmed it.
    pub checked_ms: i64,
}

/// One item the share worker owes a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareOutboxEntry {
    /// Row id.
    pub id: i64,
    /// The member it goes to.
    pub member: String,
    /// `notice`, `instance`, `revoke` or `report`.
    pub kind: String,
    /// The share it belongs to (the origin's id).
    pub share_id: String,
    /// The study.
    pub study_uid: String,
    /// The instance, for `instance` and `report`.
    pub sop_uid: String,
    /// Attempts so far.
    pub attempts: i64,
    claimed_ms: Option<i64>,
}

/// Outbox kinds.
pub mod kind {
    /// A share notice (origin to member).
    pub const NOTICE: &str = "notice";
    /// An instance of a shared study (origin to member).
    pub const INSTANCE: &str = "instance";
    /// A revocation (origin to member).
    pub const REVOKE: &str = "revoke";
    /// A signed report's object (member back to origin).
    pub const REPORT: &str = "report";
}

fn share(r: &impl crate::db::IndexRow) -> Result<ShareRow, StoreError> {
    Ok(ShareRow {
        id: r.col("id")?,
        study_uid: r.col("study_uid")?,
        to: r.col("to_member")?,
        purpose: r.col("purpose")?,
        consent: r.col("consent")?,
        status: r.col("status")?,
        created_by: r.col("created_by")?,
        org: r.col("org")?,
        created_ms: r.col("created_ms")?,
        revoked_ms: r.col("revoked_ms")?,
        reported_by: r.col("reported_by")?,
        reported_ms: r.col("reported_ms")?,
    })
}

fn grant(r: &impl crate::db::IndexRow) -> Result<GrantRow, StoreError> {
    Ok(GrantRow {
        origin: r.col("origin")?,
        share_id: r.col("share_id")?,
        study_uid: r.col("study_uid")?,
        origin_name: r.col("origin_name")?,
        purpose: r.col("purpose")?,
        consent: r.col("consent")?,
        status: r.col("status")?,
        created_ms: r.col("created_ms")?,
        checked_ms: r.col("checked_ms")?,
    })
}

const SHARE_COLS: &str = "id, study_uid, to_member, purpose, consent, status, created_by, org,
    created_ms, revoked_ms, reported_by, reported_ms";
const GRANT_COLS: &str = "origin, share_id, study_uid, origin_name, purpose, consent, status,
    created_ms, checked_ms";

/// A claim older than this is taken to belong to a worker that died.
const CLAIM_LEASE_MS: i64 = 10 * 60 * 1000;

/// An instance to queue for a member: SOP Instance UID and priority (lower first).
pub type QueuedInstance = (String, i64);

impl Store {
    /// Records a new share with its ledger entries and queues its notice and instances for
    /// the member, in one transaction.
    pub async fn create_share(
        &self,
        s: &ShareRow,
        instances: &[QueuedInstance],
        entries: &[NewLedgerEntry],
    ) -> Result<Vec<u64>, StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let now = now_ms();
            let mut tx = pool.begin_with(d.begin()).await?;
            sqlx::query(
            d.sql("INSERT INTO shares (id, study_uid, to_member, purpose, consent, status, created_by,
                org, created_ms) VALUES (?, ?, ?, ?, ?, 'active', ?, ?, ?)"),
        )
        .bind(&s.id)
        .bind(&s.study_uid)
        .bind(&s.to)
        .bind(&s.purpose)
        .bind(&s.consent)
        .bind(&s.created_by)
        .bind(&s.org)
        .bind(s.created_ms)
        .execute(&mut *tx)
        .await?;
            queue(
                (&mut *tx).into(),
                &s.to,
                kind::NOTICE,
                &s.id,
                &s.study_uid,
                "",
                0,
                now,
            )
            .await?;
            for (sop, priority) in instances {
                queue(
                    (&mut *tx).into(),
                    &s.to,
                    kind::INSTANCE,
                    &s.id,
                    &s.study_uid,
                    sop,
                    *priority,
                    now,
                )
                .await?;
            }
            let mut seqs = Vec::new();
            for e in entries {
                seqs.push(insert_entry((&mut *tx).into(), e).await?);
            }
            tx.commit().await?;
            self.share_wake.notify_one();
            Ok(seqs)
        })
    }

    /// Revokes an active share: marks it, drops what was still to be sent and queues the
    /// revocation for the member, with its ledger entries. `false` when it was not active.
    pub async fn revoke_share(
        &self,
        id: &str,
        by: &str,
        entries: &[NewLedgerEntry],
    ) -> Result<bool, StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let now = now_ms();
            let mut tx = pool.begin_with(d.begin()).await?;
            let row = sqlx::query(d.sql(format!(
                "UPDATE shares SET status = 'revoked', revoked_by = ?, revoked_ms = ?
             WHERE id = ? AND status = 'active' RETURNING {SHARE_COLS}"
            )))
            .bind(by)
            .bind(now)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Ok(false);
            };
            let s = share(&row)?;
            sqlx::query(d.sql(
                "DELETE FROM share_outbox WHERE share_id = ? AND member = ?
               AND kind IN ('notice', 'instance')",
            ))
            .bind(id)
            .bind(&s.to)
            .execute(&mut *tx)
            .await?;
            queue(
                (&mut *tx).into(),
                &s.to,
                kind::REVOKE,
                id,
                &s.study_uid,
                "",
                0,
                now,
            )
            .await?;
            for e in entries {
                insert_entry((&mut *tx).into(), e).await?;
            }
            tx.commit().await?;
            self.share_wake.notify_one();
            Ok(true)
        })
    }

    /// A share by id.
    pub async fn share(&self, id: &str) -> Result<Option<ShareRow>, StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let row = sqlx::query(d.sql(format!("SELECT {SHARE_COLS} FROM shares WHERE id = ?")))
                .bind(id)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(share).transpose()
        })
    }

    /// The shares of a study (newest first), or of every study of `org` (`None`: all).
    pub async fn shares(
        &self,
        study_uid: Option<&str>,
        org: Option<&str>,
    ) -> Result<Vec<ShareRow>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            let rows = sqlx::query(d.sql(format!(
                "SELECT {SHARE_COLS} FROM shares
             WHERE (?1 IS NULL OR study_uid = ?1) AND (?2 IS NULL OR org = ?2)
             ORDER BY created_ms DESC, id LIMIT 1000"
            )))
            .bind(study_uid)
            .bind(org)
            .fetch_all(pool)
            .await?;
            rows.iter().map(share).collect()
        })
    }

    /// Records that an object of `member_name`'s signed report of a shared study arrived,
    /// with its ledger entries; the share names the first member that reported it.
    pub async fn share_reported(
        &self,
        id: &str,
        member_name: &str,
        entries: &[NewLedgerEntry],
    ) -> Result<(), StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let mut tx = pool.begin_with(d.begin()).await?;
            sqlx::query(
            d.sql("UPDATE shares SET reported_by = ?, reported_ms = ? WHERE id = ? AND reported_by IS NULL"),
        )
        .bind(member_name)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
            for e in entries {
                insert_entry((&mut *tx).into(), e).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Records a grant from a member (a share notice), with its ledger entries. A notice
    /// received again changes nothing (`false`); a revoked grant stays revoked.
    pub async fn record_grant(
        &self,
        g: &GrantRow,
        entries: &[NewLedgerEntry],
    ) -> Result<bool, StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let mut tx = pool.begin_with(d.begin()).await?;
            let done = sqlx::query(d.sql(
                "INSERT INTO grants (origin, share_id, study_uid, origin_name, purpose, consent,
                status, created_ms, checked_ms) VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?)
             ON CONFLICT (origin, share_id) DO NOTHING",
            ))
            .bind(&g.origin)
            .bind(&g.share_id)
            .bind(&g.study_uid)
            .bind(&g.origin_name)
            .bind(&g.purpose)
            .bind(&g.consent)
            .bind(g.created_ms)
            .bind(g.created_ms)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            for e in entries {
                insert_entry((&mut *tx).into(), e).await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    /// The active grant of `origin` for `study_uid`, if any.
    pub async fn active_grant(
        &self,
        origin: &str,
        study_uid: &str,
    ) -> Result<Option<GrantRow>, StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let row = sqlx::query(d.sql(format!(
                "SELECT {GRANT_COLS} FROM grants
             WHERE origin = ? AND study_uid = ? AND status = 'active' LIMIT 1"
            )))
            .bind(origin)
            .bind(study_uid)
            .fetch_optional(pool)
            .await?;
            row.as_ref().map(grant).transpose()
        })
    }

    /// The active grant (of any member) under which this node holds `study_uid`, if any.
    pub async fn grant_of_study(&self, study_uid: &str) -> Result<Option<GrantRow>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            let row = sqlx::query(d.sql(format!(
                "SELECT {GRANT_COLS} FROM grants WHERE study_uid = ? AND status = 'active'
             ORDER BY created_ms LIMIT 1"
            )))
            .bind(study_uid)
            .fetch_optional(pool)
            .await?;
            row.as_ref().map(grant).transpose()
        })
    }

    /// Whether a study was ever held under a grant that is now revoked, and under no
    /// active one (its instances are refused and purged).
    pub async fn study_revoked_here(&self, study_uid: &str) -> Result<bool, StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let n: i64 = sqlx::query_scalar(d.sql(
                "SELECT count(*) FROM grants WHERE study_uid = ?1 AND status = 'revoked'
               AND NOT EXISTS (SELECT 1 FROM grants WHERE study_uid = ?1 AND status = 'active')",
            ))
            .bind(study_uid)
            .fetch_one(pool)
            .await?;
            Ok(n > 0)
        })
    }

    /// The active grants whose study has no instance here yet (announced, arriving), newest
    /// first.
    pub async fn incoming_grants(&self) -> Result<Vec<GrantRow>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            let rows = sqlx::query(d.sql(format!(
                "SELECT {GRANT_COLS} FROM grants g WHERE status = 'active'
               AND NOT EXISTS (SELECT 1 FROM studies st WHERE st.study_uid = g.study_uid)
             ORDER BY created_ms DESC LIMIT 100"
            )))
            .fetch_all(pool)
            .await?;
            rows.iter().map(grant).collect()
        })
    }

    /// The active grants, oldest check first (for the re-check with the origins).
    pub async fn active_grants(&self) -> Result<Vec<GrantRow>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            let rows = sqlx::query(d.sql(format!(
                "SELECT {GRANT_COLS} FROM grants WHERE status = 'active' ORDER BY checked_ms"
            )))
            .fetch_all(pool)
            .await?;
            rows.iter().map(grant).collect()
        })
    }

    /// The origin confirmed a grant is active.
    pub async fn grant_checked(&self, origin: &str, share_id: &str) -> Result<(), StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            sqlx::query(
                d.sql("UPDATE grants SET checked_ms = ? WHERE origin = ? AND share_id = ?"),
            )
            .bind(now_ms())
            .bind(origin)
            .bind(share_id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Revokes a grant (with its ledger entries) and, unless another active grant holds the
    /// study, purges the study's instances: index rows first, then files. Returns whether
    /// the grant was active and how many instances were purged.
    pub async fn revoke_grant(
        &self,
        origin: &str,
        share_id: &str,
        entries: &[NewLedgerEntry],
    ) -> Result<(bool, u64), StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let mut tx = pool.begin_with(d.begin()).await?;
            let row = sqlx::query(d.sql(
                "UPDATE grants SET status = 'revoked', revoked_ms = ?
             WHERE origin = ? AND share_id = ? AND status = 'active' RETURNING study_uid",
            ))
            .bind(now_ms())
            .bind(origin)
            .bind(share_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Ok((false, 0));
            };
            let study: String = row.try_get(0)?;
            for e in entries {
                insert_entry((&mut *tx).into(), e).await?;
            }
            let others: i64 = sqlx::query_scalar(
                d.sql("SELECT count(*) FROM grants WHERE study_uid = ? AND status = 'active'"),
            )
            .bind(&study)
            .fetch_one(&mut *tx)
            .await?;
            let paths = if others == 0 {
                purge_rows((&mut *tx).into(), &study).await?
            } else {
                Vec::new()
            };
            // Nothing more is sent for a study this node no longer holds.
            sqlx::query(d.sql(
                "DELETE FROM share_outbox WHERE study_uid = ? AND kind = 'report' AND member = ?",
            ))
            .bind(&study)
            .bind(origin)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            let n = paths.len() as u64;
            self.remove_files(paths).await;
            Ok((true, n))
        })
    }

    /// Purges a study's instances again (an instance that was in flight when its grant
    /// was revoked); how many.
    pub async fn purge_study(&self, study_uid: &str) -> Result<u64, StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let mut tx = pool.begin_with(d.begin()).await?;
            let paths = purge_rows((&mut *tx).into(), study_uid).await?;
            tx.commit().await?;
            let n = paths.len() as u64;
            self.remove_files(paths).await;
            Ok(n)
        })
    }

    async fn remove_files(&self, paths: Vec<String>) {
        // Unlisted now: what cannot be removed is left to the sweep.
        self.objects.remove_all(paths).await;
    }

    /// Claims up to `limit` due outbox items, notices and revocations first, then by
    /// priority; a member's instances wait until its notice of the share was accepted.
    pub async fn claim_share_outbox(
        &self,
        limit: usize,
    ) -> Result<Vec<ShareOutboxEntry>, StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let now = now_ms();
            // Rows another process is claiming are skipped on PostgreSQL: several
            // processes may send (their claims never overlap).
            let rows = sqlx::query(d.sql(format!(
                "UPDATE share_outbox SET claimed_ms = ?1 WHERE id IN (
                SELECT o.id FROM share_outbox o
                WHERE o.state = 'pending' AND o.next_attempt_ms <= ?1
                  AND (o.claimed_ms IS NULL OR o.claimed_ms < ?2)
                  AND NOT (o.kind = 'instance' AND EXISTS (SELECT 1 FROM share_outbox n
                      WHERE n.member = o.member AND n.share_id = o.share_id
                        AND n.kind = 'notice'))
                ORDER BY o.priority, o.id LIMIT ?3{})
             RETURNING id, member, kind, share_id, study_uid, sop_uid, attempts, claimed_ms,
                priority",
                d.skip_locked()
            )))
            .bind(now)
            .bind(now - CLAIM_LEASE_MS)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await?;
            let mut out = rows
                .iter()
                .map(|r| {
                    Ok((
                        r.try_get::<i64, _>("priority")?,
                        ShareOutboxEntry {
                            id: r.try_get("id")?,
                            member: r.try_get("member")?,
                            kind: r.try_get("kind")?,
                            share_id: r.try_get("share_id")?,
                            study_uid: r.try_get("study_uid")?,
                            sop_uid: r.try_get("sop_uid")?,
                            attempts: r.try_get("attempts")?,
                            claimed_ms: r.try_get("claimed_ms")?,
                        },
                    ))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            out.sort_by_key(|(p, e)| (*p, e.id));
            Ok(out.into_iter().map(|(_, e)| e).collect())
        })
    }

    /// The member accepted the item: it goes.
    pub async fn share_outbox_done(&self, e: &ShareOutboxEntry) -> Result<(), StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            sqlx::query(d.sql("DELETE FROM share_outbox WHERE id = ?"))
                .bind(e.id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// The attempt failed; tried again after `after`.
    pub async fn share_outbox_retry(
        &self,
        e: &ShareOutboxEntry,
        error: &str,
        after: Duration,
    ) -> Result<(), StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            sqlx::query(d.sql(
                "UPDATE share_outbox SET attempts = attempts + 1, next_attempt_ms = ?,
                last_error = ?, claimed_ms = NULL WHERE id = ? AND claimed_ms IS NOT DISTINCT FROM ?",
            ))
            .bind(now_ms().saturating_add(i64::try_from(after.as_millis()).unwrap_or(i64::MAX)))
            .bind(error)
            .bind(e.id)
            .bind(e.claimed_ms)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The member refused the item for good: kept as `failed` with the reason.
    pub async fn share_outbox_failed(
        &self,
        e: &ShareOutboxEntry,
        error: &str,
    ) -> Result<(), StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            sqlx::query(d.sql(
                "UPDATE share_outbox SET state = 'failed', attempts = attempts + 1, last_error = ?,
                claimed_ms = NULL WHERE id = ?",
            ))
            .bind(error)
            .bind(e.id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Queues an instance that arrived after its study was shared, for the share's member.
    pub async fn queue_share_instance(
        &self,
        s: &ShareRow,
        sop_uid: &str,
        priority: i64,
    ) -> Result<(), StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, _d| {
            let mut conn = pool.acquire().await?;
            queue(
                (&mut *conn).into(),
                &s.to,
                kind::INSTANCE,
                &s.id,
                &s.study_uid,
                sop_uid,
                priority,
                now_ms(),
            )
            .await?;
            drop(conn);
            self.share_wake.notify_one();
            Ok(())
        })
    }

    /// Queues a signed report's objects for the origin of the study's grant.
    pub async fn queue_report_objects(
        &self,
        g: &GrantRow,
        sop_uids: &[String],
    ) -> Result<(), StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let now = now_ms();
            let mut tx = pool.begin_with(d.begin()).await?;
            for sop in sop_uids {
                queue(
                    (&mut *tx).into(),
                    &g.origin,
                    kind::REPORT,
                    &g.share_id,
                    &g.study_uid,
                    sop,
                    1,
                    now,
                )
                .await?;
            }
            tx.commit().await?;
            self.share_wake.notify_one();
            Ok(())
        })
    }

    /// What is still to be sent (pending) and what the member refused (failed) of each
    /// share's notice and instances: share id to (pending, failed).
    pub async fn share_progress(
        &self,
    ) -> Result<std::collections::HashMap<String, (i64, i64)>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            let rows = sqlx::query(d.sql(
                "SELECT share_id, state, count(*) FROM share_outbox
             WHERE kind IN ('notice', 'instance') GROUP BY share_id, state",
            ))
            .fetch_all(pool)
            .await?;
            let mut out: std::collections::HashMap<String, (i64, i64)> = Default::default();
            for r in &rows {
                let id: String = r.try_get(0)?;
                let state: String = r.try_get(1)?;
                let n: i64 = r.try_get(2)?;
                let e = out.entry(id).or_default();
                if state == "failed" {
                    e.1 += n;
                } else {
                    e.0 += n;
                }
            }
            Ok(out)
        })
    }

    /// Pending and failed share outbox items per member and kind (for status and tests).
    pub async fn share_outbox_counts(
        &self,
    ) -> Result<Vec<(String, String, String, i64)>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            let rows = sqlx::query(
            d.sql("SELECT member, kind, state, count(*) FROM share_outbox GROUP BY member, kind, state
             ORDER BY member, kind, state"),
        )
        .fetch_all(pool)
        .await?;
            rows.iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
                .collect()
        })
    }

    /// Waits until something is queued for members, or `timeout` passes.
    pub async fn share_outbox_wait(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.share_wake.notified()).await;
    }
}

#[allow(clippy::too_many_arguments)]
async fn queue(
    conn: crate::db::Conn<'_>,
    member: &str,
    kind: &str,
    share_id: &str,
    study_uid: &str,
    sop_uid: &str,
    priority: i64,
    now: i64,
) -> Result<(), StoreError> {
    crate::db::with_conn!(conn, |conn, d| {
        sqlx::query(d.sql(
            "INSERT INTO share_outbox (member, kind, share_id, study_uid, sop_uid, priority,
            queued_ms, next_attempt_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (member, kind, share_id, sop_uid) DO UPDATE SET
            state = 'pending', attempts = 0, next_attempt_ms = excluded.next_attempt_ms,
            claimed_ms = NULL, last_error = NULL",
        ))
        .bind(member)
        .bind(kind)
        .bind(share_id)
        .bind(study_uid)
        .bind(sop_uid)
        .bind(priority)
        .bind(now)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(())
    })
}

/// Deletes a study's index rows (AI jobs, routing rows, instances, series, the study) and
/// returns its object files' paths, to delete once the transaction committed. The review
/// and report rows stay: they are this node's own work, and triggers keep them.
async fn purge_rows(conn: crate::db::Conn<'_>, study_uid: &str) -> Result<Vec<String>, StoreError> {
    crate::db::with_conn!(conn, |conn, d| {
        let paths: Vec<String> =
            sqlx::query_scalar(d.sql("SELECT path FROM instances WHERE study_uid = ?"))
                .bind(study_uid)
                .fetch_all(&mut *conn)
                .await?;
        for sql in [
            "DELETE FROM ai_jobs WHERE study_uid = ?",
            "DELETE FROM outbox WHERE study_uid = ?",
            "DELETE FROM instances WHERE study_uid = ?",
            "DELETE FROM series WHERE study_uid = ?",
            "DELETE FROM studies WHERE study_uid = ?",
        ] {
            sqlx::query(d.sql(sql))
                .bind(study_uid)
                .execute(&mut *conn)
                .await?;
        }
        Ok(paths)
    })
}
