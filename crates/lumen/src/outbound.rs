//! Routing: `[[route]]` rules forward arriving instances to peers through a persistent
//! outbound queue (`outbound.sqlite` in the data directory), retried with backoff.
//!
//! An instance is queued before its C-STORE is answered, so what was acknowledged is
//! forwarded even across a crash or restart. Each queue entry names a stored instance and
//! a destination AE; the worker sends it as stored with C-STORE, one association per
//! destination and batch, and removes the entry once the peer accepted it (a refusal with a
//! failure status is not retried and is logged).

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use lumen_dimse::{Part10Info, ScuConfig, StoreScu, proposals_for, status};
use lumen_store::{Scope, Store};
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};
use tokio::sync::Notify;

use crate::config::PeerAe;

/// One `[[route]]` rule: instances matching every given condition go to `destination`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    /// Only instances sent by this calling AE title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calling_ae: Option<String>,
    /// Only instances of this modality (`CT`, `MR`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modality: Option<String>,
    /// The peer AE title to forward to (a declared peer).
    pub destination: String,
}

impl RouteRule {
    /// Whether an instance from `calling_ae` with `modality` matches.
    pub fn matches(&self, calling_ae: &str, modality: Option<&str>) -> bool {
        self.calling_ae
            .as_deref()
            .is_none_or(|a| a.trim() == calling_ae.trim())
            && self
                .modality
                .as_deref()
                .is_none_or(|m| modality.is_some_and(|x| x.trim().eq_ignore_ascii_case(m)))
    }

    /// Whether the rule needs the instance's modality.
    pub fn needs_modality(&self) -> bool {
        self.modality.is_some()
    }
}

/// Delay before retry number `attempts` (1 s, doubling, at most 60 s).
pub fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The queue and its worker's wake-up.
#[derive(Clone)]
pub struct Outbound {
    pool: SqlitePool,
    wake: Arc<Notify>,
    rules: Arc<Vec<RouteRule>>,
}

impl Outbound {
    /// Opens (creating) `outbound.sqlite` in `data_dir`.
    pub async fn open(data_dir: &std::path::Path, rules: Vec<RouteRule>) -> anyhow::Result<Self> {
        let opts = SqliteConnectOptions::from_str("sqlite://")?
            .filename(data_dir.join("outbound.sqlite"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .context("cannot open outbound.sqlite")?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS outbound (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                study_uid TEXT NOT NULL,
                series_uid TEXT NOT NULL,
                sop_instance_uid TEXT NOT NULL,
                destination TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_ms INTEGER NOT NULL,
                last_error TEXT,
                UNIQUE (sop_instance_uid, destination)
            )",
        )
        .execute(&pool)
        .await?;
        Ok(Outbound {
            pool,
            wake: Arc::new(Notify::new()),
            rules: Arc::new(rules),
        })
    }

    /// Queues an instance for every destination whose rule matches; returns how many.
    pub async fn route(
        &self,
        calling_ae: &str,
        modality: Option<&str>,
        study_uid: &str,
        series_uid: &str,
        sop_instance_uid: &str,
    ) -> anyhow::Result<usize> {
        let mut dests: Vec<&str> = self
            .rules
            .iter()
            .filter(|r| r.matches(calling_ae, modality))
            .map(|r| r.destination.as_str())
            .collect();
        dests.sort();
        dests.dedup();
        for d in &dests {
            sqlx::query(
                "INSERT INTO outbound (study_uid, series_uid, sop_instance_uid, destination, next_attempt_ms)
                 VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (sop_instance_uid, destination)
                 DO UPDATE SET attempts = 0, next_attempt_ms = excluded.next_attempt_ms",
            )
            .bind(study_uid)
            .bind(series_uid)
            .bind(sop_instance_uid)
            .bind(d)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        }
        if !dests.is_empty() {
            self.wake.notify_one();
        }
        Ok(dests.len())
    }

    /// Queues a C-STORE just ingested (the modality read from its data set only when a
    /// rule asks for one).
    pub async fn route_ingested(
        &self,
        req: &lumen_dimse::StoreRequest,
        ingested: &lumen_store::Ingested,
    ) -> anyhow::Result<usize> {
        let modality = if self.rules.iter().any(RouteRule::needs_modality) {
            modality_of(&req.dataset, &req.transfer_syntax_uid)
        } else {
            None
        };
        self.route(
            &req.calling_ae,
            modality.as_deref(),
            &ingested.study_uid,
            &ingested.series_uid,
            &ingested.sop_instance_uid,
        )
        .await
    }

    /// Runs the worker forever: sends due entries, retries failures with backoff.
    pub fn spawn(
        &self,
        store: Store,
        peers: Vec<PeerAe>,
        aet: String,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let wait = match this.run_once(&store, &peers, &aet).await {
                    Ok(w) => w,
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "outbound queue");
                        Duration::from_secs(1)
                    }
                };
                let _ = tokio::time::timeout(wait, this.wake.notified()).await;
            }
        })
    }

    /// Sends what is due; returns how long to wait before looking again.
    async fn run_once(
        &self,
        store: &Store,
        peers: &[PeerAe],
        aet: &str,
    ) -> anyhow::Result<Duration> {
        let now = now_ms();
        let rows = sqlx::query(
            "SELECT id, study_uid, series_uid, sop_instance_uid, destination, attempts
             FROM outbound WHERE next_attempt_ms <= ? ORDER BY id LIMIT 256",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut by_dest: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
        for r in rows {
            by_dest.entry(r.get(4)).or_default().push(Entry {
                id: r.get(0),
                study_uid: r.get(1),
                series_uid: r.get(2),
                sop_instance_uid: r.get(3),
                attempts: r.get::<i64, _>(5) as u32,
            });
        }
        for (dest, entries) in by_dest {
            let peer = peers.iter().find(|p| p.aet == dest);
            let res = match peer {
                Some(p) => self.send_batch(store, p, aet, &entries).await,
                None => Err(anyhow::anyhow!("destination {dest} is not a declared peer")),
            };
            if let Err(e) = res {
                // The association failed: every entry not yet done is retried later.
                for en in &entries {
                    self.retry(en, &format!("{e:#}")).await?;
                }
                tracing::warn!(destination = %dest, error = %format!("{e:#}"), "routing: will retry");
            }
        }
        let next: Option<i64> = sqlx::query("SELECT MIN(next_attempt_ms) FROM outbound")
            .fetch_one(&self.pool)
            .await?
            .get(0);
        Ok(match next {
            Some(t) => Duration::from_millis((t - now_ms()).clamp(10, 60_000) as u64),
            None => Duration::from_secs(60),
        })
    }

    async fn retry(&self, en: &Entry, error: &str) -> anyhow::Result<()> {
        let attempts = en.attempts + 1;
        sqlx::query(
            "UPDATE outbound SET attempts = ?, next_attempt_ms = ?, last_error = ? WHERE id = ?",
        )
        .bind(attempts as i64)
        .bind(now_ms() + backoff(attempts).as_millis() as i64)
        .bind(error)
        .bind(en.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn done(&self, id: i64) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM outbound WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sends one destination's entries on one association. Entries sent (or refused for
    /// good, or no longer stored) are removed as they go; an error leaves the rest queued.
    async fn send_batch(
        &self,
        store: &Store,
        peer: &PeerAe,
        aet: &str,
        entries: &[Entry],
    ) -> anyhow::Result<()> {
        let mut objects = Vec::new();
        for en in entries {
            let found = store
                .instances(&Scope {
                    study_uid: Some(en.study_uid.clone()),
                    series_uid: Some(en.series_uid.clone()),
                    sop_instance_uid: Some(en.sop_instance_uid.clone()),
                })
                .await?;
            match found.first() {
                Some(inst) => {
                    let bytes = inst.read().await?;
                    let info = Part10Info::parse(&bytes)?;
                    objects.push((en, info, bytes));
                }
                None => {
                    tracing::warn!(sop_instance = %en.sop_instance_uid, "routing: instance no longer stored; dropped");
                    self.done(en.id).await?;
                }
            }
        }
        if objects.is_empty() {
            return Ok(());
        }
        let proposals = proposals_for(
            objects
                .iter()
                .map(|(_, i, _)| (i.sop_class_uid.as_str(), i.transfer_syntax_uid.as_str())),
        );
        let config = ScuConfig {
            calling_ae_title: aet.to_string(),
            called_ae_title: peer.aet.clone(),
            timeout: Duration::from_secs(30),
            ..ScuConfig::default()
        };
        let mut scu = StoreScu::connect((peer.host.as_str(), peer.port), &config, &proposals)
            .await
            .with_context(|| format!("cannot associate with {}", peer.aet))?;
        for (i, (en, _, bytes)) in objects.iter().enumerate() {
            match scu.store_part10(bytes).await {
                Ok(r) if status::kind(r.status) != status::StatusKind::Failure => {
                    self.done(en.id).await?
                }
                Ok(r) => {
                    tracing::warn!(destination = %peer.aet, sop_instance = %en.sop_instance_uid, status = format!("{:04X}", r.status), "routing: refused; dropped");
                    self.done(en.id).await?;
                }
                Err(lumen_dimse::DimseError::NoPresentationContext { .. }) => {
                    tracing::warn!(destination = %peer.aet, sop_instance = %en.sop_instance_uid, "routing: no presentation context accepted; dropped");
                    self.done(en.id).await?;
                }
                Err(e) => {
                    for (rest, _, _) in &objects[i..] {
                        self.retry(rest, &e.to_string()).await?;
                    }
                    return Ok(());
                }
            }
        }
        let _ = scu.release().await;
        tracing::info!(destination = %peer.aet, sent = objects.len(), "routing: forwarded");
        Ok(())
    }
}

/// Modality (0008,0060) of a data set, if it can be read.
fn modality_of(dataset: &[u8], transfer_syntax_uid: &str) -> Option<String> {
    use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
    let ts = TransferSyntaxRegistry.get(transfer_syntax_uid)?;
    let obj = dicom_object::InMemDicomObject::read_dataset_with_ts(dataset, ts).ok()?;
    let m = obj
        .element(dicom_dictionary_std::tags::MODALITY)
        .ok()?
        .to_str()
        .ok()?
        .trim()
        .to_string();
    (!m.is_empty()).then_some(m)
}

struct Entry {
    id: i64,
    study_uid: String,
    series_uid: String,
    sop_instance_uid: String,
    attempts: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_and_backoff_grows() {
        let r = RouteRule {
            calling_ae: Some("CTSCANNER".into()),
            modality: Some("CT".into()),
            destination: "PACS".into(),
        };
        assert!(r.matches("CTSCANNER", Some("CT")));
        assert!(!r.matches("OTHER", Some("CT")));
        assert!(!r.matches("CTSCANNER", Some("MR")));
        assert!(!r.matches("CTSCANNER", None));
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(30), Duration::from_secs(60));
    }
}
