//! Routing: `[[route]]` rules forward arriving instances to peers through the outbox in
//! the index (`lumen_store`'s migration 0007), retried with backoff.
//!
//! [`RouteRules`] is the [`Router`] the index writer asks inside the transaction that stores
//! a new instance, so its outbox rows commit with it, whatever door it came in by: C-STORE,
//! STOW-RS, `lumen import`, the AI's SEG and SR, a signed report's PDF and SR, `lumen
//! retrieve --data`. Modality rules apply to every path; calling-AE rules only to C-STORE.
//!
//! One [`RoutingWorker`] per archive claims due rows and sends them as stored with C-STORE,
//! one association per destination and batch; a row the peer accepted goes. A failed
//! association or transfer is retried after [`backoff`]; a refusal with a failure status
//! (or no accepted presentation context) is not retried: the row stays `failed` with the
//! reason until an operator retries it (`lumen queue --retry-failed`).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use lumen_dimse::{DimseError, Part10Info, ScuConfig, StoreScu, proposals_for, status};
use lumen_store::{Arrival, OutboxEntry, Router, Scope, Store};
use serde::{Deserialize, Serialize};

use crate::AppError;

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
}

/// The configured rules, as the index writer asks them.
#[derive(Debug, Clone, Default)]
pub struct RouteRules(
    /// The rules, in configuration order.
    pub Vec<RouteRule>,
);

impl RouteRules {
    /// The router for a store's configuration; `None` without rules (nothing is routed).
    pub fn router(rules: &[RouteRule]) -> Option<Arc<dyn Router>> {
        (!rules.is_empty()).then(|| Arc::new(RouteRules(rules.to_vec())) as Arc<dyn Router>)
    }
}

impl Router for RouteRules {
    fn destinations(&self, a: &Arrival<'_>) -> Vec<String> {
        let modality = Some(a.modality.trim()).filter(|m| !m.is_empty());
        self.0
            .iter()
            .filter(|r| r.matches(a.origin.calling_ae(), modality))
            .map(|r| r.destination.clone())
            .collect()
    }
}

/// A peer instances are forwarded to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// AE title (what routing rules name).
    pub aet: String,
    /// Host name or address.
    pub host: String,
    /// DICOM port.
    pub port: u16,
}

/// Delay before retry number `attempts` (1 s, doubling, at most 60 s).
pub fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

/// Longest wait of the worker between two looks at the outbox (`lumen queue
/// --retry-failed`, another process, puts rows back without waking it).
const IDLE_POLL: Duration = Duration::from_secs(5);

/// Most rows claimed at once.
const BATCH: usize = 256;

/// Sends the outbox: the one worker of an archive.
#[derive(Debug, Clone)]
pub struct RoutingWorker {
    store: Store,
    destinations: Arc<Vec<Destination>>,
    aet: String,
    timeout: Duration,
}

impl RoutingWorker {
    /// A worker sending `store`'s outbox to `destinations` as AE title `aet`.
    pub fn new(store: Store, destinations: Vec<Destination>, aet: impl Into<String>) -> Self {
        RoutingWorker {
            store,
            destinations: Arc::new(destinations),
            aet: aet.into(),
            timeout: Duration::from_secs(30),
        }
    }

    /// Runs the worker in the background until the task is aborted.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let wait = match self.run_once().await {
                    Ok(w) => w,
                    Err(e) => {
                        tracing::warn!(error = %e, "routing: outbox");
                        Duration::from_secs(1)
                    }
                };
                self.store.outbox_wait(wait).await;
            }
        })
    }

    /// Sends what is due; returns how long to wait before looking again.
    pub async fn run_once(&self) -> Result<Duration, AppError> {
        // A read first: an idle archive is looked at without taking the write lock.
        let due = self.store.outbox_next_due().await?;
        let claimed = if due.is_some_and(|t| t <= now_ms()) {
            self.store.claim_outbox(BATCH).await?
        } else {
            Vec::new()
        };
        let mut by_dest: BTreeMap<String, Vec<OutboxEntry>> = BTreeMap::new();
        for e in claimed {
            by_dest.entry(e.destination.clone()).or_default().push(e);
        }
        for (dest, entries) in by_dest {
            let mut settled = HashSet::new();
            let started = std::time::Instant::now();
            let sent = match self.destinations.iter().find(|p| p.aet == dest) {
                Some(p) => self.send_batch(p, &entries, &mut settled).await,
                None => Err(SendError::Transfer(format!(
                    "destination {dest} is not a declared peer"
                ))),
            };
            let outcome = if sent.is_ok() { "sent" } else { "retry" };
            metrics::counter!(crate::metrics::ROUTING_SENDS, "outcome" => outcome).increment(1);
            metrics::histogram!(crate::metrics::ROUTING_SECONDS)
                .record(started.elapsed().as_secs_f64());
            match sent {
                Ok(()) => {}
                Err(SendError::Transfer(error)) => {
                    // Every entry not settled is tried again later.
                    for e in entries.iter().filter(|e| !settled.contains(&e.id)) {
                        self.store
                            .outbox_retry(e, &error, backoff(e.attempts.saturating_add(1)))
                            .await?;
                    }
                    tracing::warn!(destination = %dest, error = %error, "routing: will retry");
                }
                // The claims of unsettled entries lapse; they are handed out again.
                Err(SendError::Store(e)) => return Err(e.into()),
            }
        }
        let next = self.store.outbox_next_due().await?;
        Ok(match next {
            Some(t) => Duration::from_millis(
                u64::try_from(t.saturating_sub(now_ms()))
                    .unwrap_or(0)
                    .clamp(10, 5_000),
            ),
            None => IDLE_POLL,
        })
    }

    /// Sends one destination's entries on one association, settling each as it goes (its
    /// id then joins `settled`).
    async fn send_batch(
        &self,
        peer: &Destination,
        entries: &[OutboxEntry],
        settled: &mut HashSet<i64>,
    ) -> Result<(), SendError> {
        let mut objects: Vec<(&OutboxEntry, Part10Info, Bytes)> = Vec::new();
        for e in entries {
            let found = self
                .store
                .instances(&Scope {
                    study_uid: Some(e.study_uid.clone()),
                    series_uid: Some(e.series_uid.clone()),
                    sop_instance_uid: Some(e.sop_instance_uid.clone()),
                    org: None,
                })
                .await?;
            let Some(inst) = found.first() else {
                tracing::warn!(sop_instance = %e.sop_instance_uid, "routing: instance no longer stored; dropped");
                self.store.outbox_sent(e).await?;
                settled.insert(e.id);
                continue;
            };
            let bytes = inst.read().await?;
            match Part10Info::parse(&bytes) {
                Ok(info) => objects.push((e, info, bytes)),
                Err(err) => {
                    tracing::warn!(sop_instance = %e.sop_instance_uid, error = %err, "routing: stored object unreadable; marked failed");
                    self.store
                        .outbox_refused(e, &format!("stored object unreadable: {err}"))
                        .await?;
                    settled.insert(e.id);
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
            calling_ae_title: self.aet.clone(),
            called_ae_title: peer.aet.clone(),
            timeout: self.timeout,
            ..ScuConfig::default()
        };
        let mut scu = StoreScu::connect((peer.host.as_str(), peer.port), &config, &proposals)
            .await
            .map_err(|e| SendError::Transfer(format!("cannot associate with {}: {e}", peer.aet)))?;
        for (e, _, bytes) in &objects {
            match scu.store_part10(bytes).await {
                Ok(r) if status::kind(r.status) != status::StatusKind::Failure => {
                    self.store.outbox_sent(e).await?;
                }
                Ok(r) => {
                    tracing::warn!(destination = %peer.aet, sop_instance = %e.sop_instance_uid, status = format!("{:04X}", r.status), "routing: refused; marked failed");
                    let comment = r.error_comment.as_deref().unwrap_or("");
                    self.store
                        .outbox_refused(
                            e,
                            format!("refused with status {:04X} {comment}", r.status).trim_end(),
                        )
                        .await?;
                }
                Err(DimseError::NoPresentationContext { .. }) => {
                    tracing::warn!(destination = %peer.aet, sop_instance = %e.sop_instance_uid, "routing: no presentation context accepted; marked failed");
                    self.store
                        .outbox_refused(
                            e,
                            "the peer accepted no presentation context for this SOP class and transfer syntax",
                        )
                        .await?;
                }
                Err(err) => return Err(SendError::Transfer(err.to_string())),
            }
            settled.insert(e.id);
        }
        let _ = scu.release().await;
        tracing::info!(destination = %peer.aet, sent = objects.len(), "routing: forwarded");
        Ok(())
    }
}

/// Why a batch stopped.
enum SendError {
    /// The transfer failed (peer unreachable, association or connection failed): retried.
    Transfer(String),
    /// The archive failed.
    Store(lumen_store::StoreError),
}

impl From<lumen_store::StoreError> for SendError {
    fn from(e: lumen_store::StoreError) -> Self {
        SendError::Store(e)
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lumen_store::Origin;

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

    #[test]
    fn rules_route_arrivals_by_origin_and_modality() {
        let rules = RouteRules(vec![
            RouteRule {
                calling_ae: Some("CTSCANNER".into()),
                modality: None,
                destination: "MIRROR".into(),
            },
            RouteRule {
                calling_ae: None,
                modality: Some("SR".into()),
                destination: "PACS".into(),
            },
        ]);
        fn arrival<'a>(origin: &'a Origin, modality: &'a str) -> Arrival<'a> {
            Arrival {
                origin,
                modality,
                sop_class_uid: "1.2.840.10008.5.1.4.1.1.88.11",
                study_uid: "1.2",
                series_uid: "1.2.3",
                sop_instance_uid: "1.2.3.4",
            }
        }
        let scanner = Origin::c_store("CTSCANNER");
        assert_eq!(rules.destinations(&arrival(&scanner, "CT")), ["MIRROR"]);
        assert_eq!(
            rules.destinations(&arrival(&scanner, "SR")),
            ["MIRROR", "PACS"]
        );
        assert_eq!(
            rules.destinations(&arrival(&Origin::Report, "SR")),
            ["PACS"]
        );
        assert!(rules.destinations(&arrival(&Origin::Ai, "SEG")).is_empty());
        assert!(rules.destinations(&arrival(&Origin::StowRs, "")).is_empty());
        assert!(RouteRules::router(&[]).is_none());
    }
}
