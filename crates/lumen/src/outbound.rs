//! Routing: `[[route]]` rules forward arriving instances to peers through a persistent
//! outbound queue (`outbound.sqlite` in the data directory), retried with backoff.
//!
//! An instance is queued before its C-STORE is answered, so what was acknowledged is
//! forwarded even across a crash or restart. Each queue entry names a stored instance and
//! a destination AE; the worker sends it as stored with C-STORE, one association per
//! destination and batch, and removes the entry once the peer accepted it. A refusal with a
//! failure status is not retried: the entry stays, marked `failed` with the status, until
//! an operator retries it (`lumen queue --retry-failed`). Modality rules apply to every
//! ingest path (C-STORE, STOW-RS); calling-AE rules only to C-STORE.

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

/// The queue's file in the data directory.
pub const QUEUE_FILE: &str = "outbound.sqlite";

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
    /// Whether an instance with `modality` matches, sent by `calling_ae` (`None`: not
    /// over DIMSE, so a rule on the calling AE does not match).
    pub fn matches(&self, calling_ae: Option<&str>, modality: Option<&str>) -> bool {
        self.calling_ae
            .as_deref()
            .is_none_or(|a| calling_ae.is_some_and(|c| a.trim() == c.trim()))
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

/// Longest wait of the worker between two looks at the queue.
const IDLE_POLL_MS: i64 = 5_000;

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
            .filename(data_dir.join(QUEUE_FILE))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // `lumen queue` opens the file while a server writes it.
            .busy_timeout(Duration::from_secs(10));
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
        // Columns added after the first release of the queue.
        let cols: Vec<String> = sqlx::query("SELECT name FROM pragma_table_info('outbound')")
            .fetch_all(&pool)
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if !cols.iter().any(|c| c == "state") {
            sqlx::query("ALTER TABLE outbound ADD COLUMN state TEXT NOT NULL DEFAULT 'pending'")
                .execute(&pool)
                .await?;
        }
        if !cols.iter().any(|c| c == "queued_ms") {
            sqlx::query("ALTER TABLE outbound ADD COLUMN queued_ms INTEGER NOT NULL DEFAULT 0")
                .execute(&pool)
                .await?;
        }
        Ok(Outbound {
            pool,
            wake: Arc::new(Notify::new()),
            rules: Arc::new(rules),
        })
    }

    /// Queues an instance for every destination whose rule matches; returns how many.
    /// `calling_ae` is the sender's AE title for C-STORE, `None` for other ingest paths.
    pub async fn route(
        &self,
        calling_ae: Option<&str>,
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
                "INSERT INTO outbound (study_uid, series_uid, sop_instance_uid, destination, next_attempt_ms, queued_ms)
                 VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (sop_instance_uid, destination)
                 DO UPDATE SET attempts = 0, state = 'pending', last_error = NULL,
                    next_attempt_ms = excluded.next_attempt_ms",
            )
            .bind(study_uid)
            .bind(series_uid)
            .bind(sop_instance_uid)
            .bind(d)
            .bind(now_ms())
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
            Some(&req.calling_ae),
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
             FROM outbound WHERE state = 'pending' AND next_attempt_ms <= ?
             ORDER BY id LIMIT 256",
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
        let next: Option<i64> =
            sqlx::query("SELECT MIN(next_attempt_ms) FROM outbound WHERE state = 'pending'")
                .fetch_one(&self.pool)
                .await?
                .get(0);
        // Looked at again every few seconds at most: `lumen queue --retry-failed` (another
        // process) puts entries back without waking this worker.
        Ok(match next {
            Some(t) => Duration::from_millis((t - now_ms()).clamp(10, IDLE_POLL_MS) as u64),
            None => Duration::from_millis(IDLE_POLL_MS as u64),
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

    /// Marks an entry failed for good (the peer refused it): kept for `lumen queue`, not
    /// retried until an operator asks.
    async fn failed(&self, en: &Entry, error: &str) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE outbound SET state = 'failed', attempts = ?, last_error = ? WHERE id = ?",
        )
        .bind(en.attempts as i64 + 1)
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
                    tracing::warn!(destination = %peer.aet, sop_instance = %en.sop_instance_uid, status = format!("{:04X}", r.status), "routing: refused; marked failed");
                    let comment = r.error_comment.as_deref().unwrap_or("");
                    self.failed(
                        en,
                        format!("refused with status {:04X} {comment}", r.status).trim_end(),
                    )
                    .await?;
                }
                Err(lumen_dimse::DimseError::NoPresentationContext { .. }) => {
                    tracing::warn!(destination = %peer.aet, sop_instance = %en.sop_instance_uid, "routing: no presentation context accepted; marked failed");
                    self.failed(
                        en,
                        "the peer accepted no presentation context for this SOP class and transfer syntax",
                    )
                    .await?;
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

/// One queue entry, as `lumen queue` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct QueueEntry {
    /// Destination AE title.
    pub destination: String,
    /// Study Instance UID.
    pub study_uid: String,
    /// Series Instance UID.
    pub series_uid: String,
    /// SOP Instance UID.
    pub sop_instance_uid: String,
    /// `pending` (to be sent, or retried after a failure) or `failed` (refused by the peer).
    pub state: String,
    /// Attempts so far.
    pub attempts: u32,
    /// When it was queued (Unix milliseconds; 0 for entries of older versions).
    pub queued_ms: i64,
    /// When the next attempt is due (Unix milliseconds; pending entries).
    pub next_attempt_ms: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

impl Outbound {
    /// Every entry of the queue, oldest first.
    pub async fn entries(&self) -> anyhow::Result<Vec<QueueEntry>> {
        let rows = sqlx::query(
            "SELECT destination, study_uid, series_uid, sop_instance_uid, state, attempts,
                    queued_ms, next_attempt_ms, last_error
             FROM outbound ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| QueueEntry {
                destination: r.get(0),
                study_uid: r.get(1),
                series_uid: r.get(2),
                sop_instance_uid: r.get(3),
                state: r.get(4),
                attempts: r.get::<i64, _>(5).max(0) as u32,
                queued_ms: r.get(6),
                next_attempt_ms: r.get(7),
                last_error: r.get(8),
            })
            .collect())
    }

    /// Puts failed entries (of one destination, or all) back in line; returns how many.
    pub async fn retry_failed(&self, destination: Option<&str>) -> anyhow::Result<u64> {
        let r = sqlx::query(
            "UPDATE outbound SET state = 'pending', attempts = 0, next_attempt_ms = ?
             WHERE state = 'failed' AND (? IS NULL OR destination = ?)",
        )
        .bind(now_ms())
        .bind(destination)
        .bind(destination)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// Queues the instances a STOW-RS response reports as stored (its
    /// ReferencedSOPSequence); returns how many queue entries were made.
    pub async fn route_stow_response(&self, store: &Store, body: &[u8]) -> anyhow::Result<usize> {
        let v: serde_json::Value =
            serde_json::from_slice(body).context("STOW-RS response is not JSON")?;
        let uids: Vec<&str> = v["00081199"]["Value"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i["00081155"]["Value"][0].as_str())
                    .collect()
            })
            .unwrap_or_default();
        let needs_modality = self.rules.iter().any(RouteRule::needs_modality);
        let mut modality_by_series: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut queued = 0;
        for uid in uids {
            let found = store
                .instances(&Scope {
                    sop_instance_uid: Some(uid.to_string()),
                    ..Scope::default()
                })
                .await?;
            let Some(inst) = found.first() else {
                continue;
            };
            let modality = if needs_modality {
                if !modality_by_series.contains_key(&inst.series_uid) {
                    let bytes = inst.read().await?;
                    let m = Part10Info::parse(&bytes).ok().and_then(|info| {
                        let off = lumen_dicom::part10::dataset_offset(&bytes).ok()?;
                        modality_of(&bytes[off..], &info.transfer_syntax_uid)
                    });
                    modality_by_series.insert(inst.series_uid.clone(), m);
                }
                modality_by_series[&inst.series_uid].clone()
            } else {
                None
            };
            queued += self
                .route(
                    None,
                    modality.as_deref(),
                    &inst.study_uid,
                    &inst.series_uid,
                    &inst.sop_instance_uid,
                )
                .await?;
        }
        Ok(queued)
    }
}

/// What the HTTP routing layer needs.
#[derive(Clone)]
pub struct HttpRouting {
    /// The queue.
    pub outbound: Outbound,
    /// The archive (to find what a STOW-RS request stored).
    pub store: Store,
}

/// Axum middleware: after a STOW-RS request (`POST /dicom-web/studies...`) stored
/// instances, queues them by the routing rules before the response leaves, so that what a
/// client was told is stored is also forwarded (as for C-STORE). The STOW-RS handler stays
/// unaware of routing; the response body is a small JSON document.
pub async fn route_stow(
    axum::extract::State(r): axum::extract::State<HttpRouting>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let is_stow = req.method() == axum::http::Method::POST
        && req.uri().path().starts_with("/dicom-web/studies");
    let resp = next.run(req).await;
    if !is_stow || !resp.status().is_success() {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let routed = match axum::body::to_bytes(body, 256 << 20).await {
        Ok(bytes) => r
            .outbound
            .route_stow_response(&r.store, &bytes)
            .await
            .map(|_| bytes),
        Err(e) => Err(anyhow::anyhow!("cannot read the STOW-RS response: {e}")),
    };
    match routed {
        Ok(bytes) => axum::response::Response::from_parts(parts, axum::body::Body::from(bytes)),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "STOW-RS: cannot queue for routing");
            (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "stored, but cannot be queued for routing",
            )
                .into_response()
        }
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
        assert!(r.matches(Some("CTSCANNER"), Some("CT")));
        assert!(!r.matches(Some("OTHER"), Some("CT")));
        assert!(!r.matches(Some("CTSCANNER"), Some("MR")));
        assert!(!r.matches(Some("CTSCANNER"), None));
        // Not over DIMSE (STOW-RS): a calling-AE rule never matches, a modality rule does.
        assert!(!r.matches(None, Some("CT")));
        let m = RouteRule {
            calling_ae: None,
            modality: Some("ct".into()),
            destination: "PACS".into(),
        };
        assert!(m.matches(None, Some("CT")));
        assert!(m.matches(Some("ANY"), Some("CT")));
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(30), Duration::from_secs(60));
    }
}
