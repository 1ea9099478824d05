//! The audit trail: every access to patient data and every security event is recorded here,
//! by the use cases, whatever front door the request came through.
//!
//! Records go to the index (append-only; triggers refuse changes and early deletion) through
//! one writer task that commits what is waiting in one transaction. Security events and
//! signatures are awaited until committed ([`Auditor::record_durable`]); reads are queued
//! and committed within a tenth of a second, gathered into one transaction, so a query
//! waits for no disk sync and a stream of queries costs a few commits a second. Repeated
//! reads of one series by one user from one address within a minute (a viewer fetching
//! frames) make one record, not hundreds.
//!
//! The audit trail is the only place patient identifiers are written.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lumen_model::{AuditAction, AuditEvent, AuditOutcome};
use lumen_store::{AuditFilter, Store};
use tokio::sync::{mpsc, oneshot};

use crate::policy::{Permission, StudyAccess};
use crate::{Actor, App, AppError};

/// How long identical reads are folded into one record.
const COALESCE: Duration = Duration::from_secs(60);

/// Most records committed in one transaction.
const BATCH: usize = 512;

/// How long records nobody waits for are gathered before they are committed.
const GATHER: Duration = Duration::from_millis(100);

type Key = (
    String,
    AuditAction,
    Option<String>,
    Option<String>,
    Option<String>,
);

enum Msg {
    Event(Box<AuditEvent>, Option<oneshot::Sender<()>>),
}

/// The audit trail's writer: a queue into one task that appends batches to the index.
#[derive(Clone)]
pub struct Auditor {
    tx: Option<mpsc::UnboundedSender<Msg>>,
    store: Store,
    recent: Arc<Mutex<HashMap<Key, Instant>>>,
    wake: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auditor")
    }
}

impl Auditor {
    /// Starts the writer task on the current Tokio runtime (without one, records are
    /// written by the caller).
    pub fn start(store: Store) -> Auditor {
        let wake = Arc::new(tokio::sync::Notify::new());
        let tx = tokio::runtime::Handle::try_current().ok().map(|rt| {
            let (tx, rx) = mpsc::unbounded_channel();
            rt.spawn(writer(store.clone(), rx, wake.clone()));
            tx
        });
        Auditor {
            tx,
            store,
            recent: Arc::default(),
            wake,
        }
    }

    /// Woken after each commit of records (the audit repository forwarder listens).
    pub fn committed(&self) -> Arc<tokio::sync::Notify> {
        self.wake.clone()
    }

    /// Queues a record; a read repeated within a minute is folded into the first.
    pub async fn record(&self, e: AuditEvent) {
        if self.repeated(&e) {
            return;
        }
        self.send(e, None).await;
    }

    /// Records and waits until the record is committed.
    pub async fn record_durable(&self, e: AuditEvent) {
        let (done, wait) = oneshot::channel();
        self.send(e, Some(done)).await;
        let _ = wait.await;
    }

    /// Waits until everything queued so far is committed.
    pub async fn flush(&self) {
        let Some(tx) = &self.tx else { return };
        // An empty barrier record is not written; see `writer`.
        let (done, wait) = oneshot::channel();
        let barrier = AuditEvent { seq: -1, ..blank() };
        if tx.send(Msg::Event(Box::new(barrier), Some(done))).is_ok() {
            let _ = wait.await;
        }
    }

    async fn send(&self, e: AuditEvent, done: Option<oneshot::Sender<()>>) {
        match &self.tx {
            Some(tx) => {
                if let Err(mpsc::error::SendError(Msg::Event(e, done))) =
                    tx.send(Msg::Event(Box::new(e), done))
                {
                    write_now(&self.store, &[*e]).await;
                    if let Some(d) = done {
                        let _ = d.send(());
                    }
                }
            }
            None => {
                write_now(&self.store, &[e]).await;
                if let Some(d) = done {
                    let _ = d.send(());
                }
            }
        }
    }

    fn repeated(&self, e: &AuditEvent) -> bool {
        if !matches!(
            e.action,
            AuditAction::Retrieve | AuditAction::View | AuditAction::Store
        ) || e.outcome != AuditOutcome::Success
        {
            return false;
        }
        let key = (
            e.user.clone(),
            e.action,
            e.study_uid.clone(),
            e.series_uid.clone(),
            e.source.clone(),
        );
        let now = Instant::now();
        let Ok(mut recent) = self.recent.lock() else {
            return false;
        };
        if recent.len() > 50_000 {
            recent.retain(|_, t| now.duration_since(*t) < COALESCE);
        }
        match recent.get(&key) {
            Some(t) if now.duration_since(*t) < COALESCE => true,
            _ => {
                recent.insert(key, now);
                false
            }
        }
    }
}

fn blank() -> AuditEvent {
    AuditEvent {
        seq: 0,
        time: String::new(),
        user: String::new(),
        role: String::new(),
        org: String::new(),
        action: AuditAction::AuditRead,
        outcome: AuditOutcome::Success,
        channel: lumen_model::AuditChannel::System,
        source: None,
        study_uid: None,
        series_uid: None,
        patient_id: None,
        patient_name: None,
        detail: String::new(),
    }
}

async fn write_now(store: &Store, events: &[AuditEvent]) {
    if let Err(e) = store.append_audit(events).await {
        // The records cannot be kept: said loudly, without their content.
        tracing::error!(error = %e, records = events.len(), "audit records not written");
    }
}

async fn writer(
    store: Store,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    wake: Arc<tokio::sync::Notify>,
) {
    while let Some(first) = rx.recv().await {
        let mut msgs = vec![first];
        while msgs.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => msgs.push(m),
                Err(_) => break,
            }
        }
        // Records nobody waits for (reads) are gathered for a moment, so that a stream of
        // queries costs a few commits (and disk syncs) a second rather than one each; a
        // record somebody waits for (a security event, a signature, a flush) ends the wait.
        let waited_for = |m: &Msg| matches!(m, Msg::Event(_, Some(_)));
        if !msgs.iter().any(waited_for) {
            let deadline = tokio::time::Instant::now() + GATHER;
            while msgs.len() < BATCH {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(m)) => {
                        let stop = waited_for(&m);
                        msgs.push(m);
                        if stop {
                            break;
                        }
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        }
        let mut events = Vec::with_capacity(msgs.len());
        let mut waiting = Vec::new();
        for Msg::Event(e, done) in msgs {
            if e.seq != -1 {
                events.push(*e);
            }
            waiting.extend(done);
        }
        if !events.is_empty() {
            write_now(&store, &events).await;
            wake.notify_waiters();
            wake.notify_one();
        }
        for d in waiting {
            let _ = d.send(());
        }
    }
}

/// The audit trail in the index as the audit repository forwarder reads it.
#[derive(Clone)]
pub struct IndexLog(pub Store);

impl lumen_audit::AuditLog for IndexLog {
    async fn events_after(&self, after: i64, limit: usize) -> Result<Vec<AuditEvent>, String> {
        self.0
            .audit(&AuditFilter {
                after_seq: Some(after),
                limit,
                ..AuditFilter::default()
            })
            .await
            .map_err(|e| e.to_string())
    }

    async fn forwarded_up_to(&self) -> Result<i64, String> {
        self.0.audit_forwarded().await.map_err(|e| e.to_string())
    }

    async fn set_forwarded_up_to(&self, seq: i64) -> Result<(), String> {
        self.0
            .set_audit_forwarded(seq)
            .await
            .map_err(|e| e.to_string())
    }
}

/// An audit search (`GET /api/audit`).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Entries about this study.
    pub study: Option<String>,
    /// Entries of this user.
    pub user: Option<String>,
    /// From (ISO 8601 date or date-time, UTC).
    pub from: Option<String>,
    /// To (ISO 8601 date or date-time, UTC; a date includes its whole day).
    pub to: Option<String>,
    /// Most entries (default 500, at most 10,000).
    pub limit: Option<usize>,
}

impl App {
    /// The audit trail's writer.
    pub fn auditor(&self) -> &Auditor {
        &self.auditor
    }

    /// A record of `actor` doing `action`, with the time now.
    pub(crate) fn event(
        &self,
        actor: &Actor,
        action: AuditAction,
        outcome: AuditOutcome,
        detail: &str,
    ) -> AuditEvent {
        AuditEvent {
            seq: 0,
            time: lumen_report::time::iso_millis(lumen_report::time::now_ms()),
            user: actor.user_id.clone(),
            role: actor.role.as_str().into(),
            org: actor.org.clone(),
            action,
            outcome,
            channel: actor.channel,
            source: actor.source.clone(),
            study_uid: None,
            series_uid: None,
            patient_id: None,
            patient_name: None,
            detail: detail.chars().take(500).collect(),
        }
    }

    /// Records an event that concerns no particular study.
    pub async fn audit_event(
        &self,
        actor: &Actor,
        action: AuditAction,
        outcome: AuditOutcome,
        study: Option<&str>,
        detail: &str,
    ) {
        let mut e = self.event(actor, action, outcome, detail);
        e.study_uid = study.map(str::to_string);
        if action.is_security_event() {
            self.auditor.record_durable(e).await;
        } else {
            self.auditor.record(e).await;
        }
    }

    /// Records an access to a study the policy allowed (see
    /// [`App::authorize_study`](crate::App::authorize_study)).
    pub async fn audit_study(
        &self,
        actor: &Actor,
        action: AuditAction,
        outcome: AuditOutcome,
        access: &StudyAccess,
        series: Option<&str>,
        detail: &str,
    ) {
        let mut e = self.event(actor, action, outcome, detail);
        e.study_uid = Some(access.study_uid.clone());
        e.series_uid = series.map(str::to_string);
        e.patient_id = access.patient_id.clone();
        e.patient_name = access.patient_name.clone();
        if matches!(
            action,
            AuditAction::Sign
                | AuditAction::Addendum
                | AuditAction::Export
                | AuditAction::PatientLink
        ) {
            self.auditor.record_durable(e).await;
        } else {
            self.auditor.record(e).await;
        }
    }

    /// Searches the audit trail (admins: their organisation's entries; the node's own
    /// organisation's admins: every entry). The search itself is audited.
    pub async fn search_audit(
        &self,
        actor: &Actor,
        q: &AuditQuery,
    ) -> Result<Vec<AuditEvent>, AppError> {
        self.require(
            actor,
            Permission::ReadAudit,
            AuditAction::AuditRead,
            "audit search",
        )
        .await?;
        let ms = |s: &Option<String>, end: bool| -> Result<Option<i64>, AppError> {
            let Some(s) = s.as_deref().filter(|s| !s.is_empty()) else {
                return Ok(None);
            };
            let t = lumen_report::time::parse_iso(s).ok_or_else(|| {
                AppError::Invalid(
                    "from and to must be ISO 8601 dates or UTC date-times (2026-12-02, 2026-12-02T08:00:00Z)".into(),
                )
            })?;
            let date_only = !s.contains(['T', ' ']);
            Ok(Some(if end && date_only { t + 86_399_999 } else { t }))
        };
        if let Some(s) = &q.study {
            crate::check_study(s)?;
        }
        let filter = AuditFilter {
            study_uid: q.study.clone().filter(|s| !s.is_empty()),
            user: q.user.clone().filter(|s| !s.is_empty()),
            from_ms: ms(&q.from, false)?,
            to_ms: ms(&q.to, true)?,
            org: (!actor.role.all_orgs() && actor.org != self.settings.node_org)
                .then(|| actor.org.clone()),
            limit: q.limit.unwrap_or(500).clamp(1, 10_000),
            after_seq: None,
        };
        self.auditor.flush().await;
        let entries = self.store.audit(&filter).await?;
        let detail = format!("audit search ({} entries)", entries.len());
        let mut e = self.event(
            actor,
            AuditAction::AuditRead,
            AuditOutcome::Success,
            &detail,
        );
        e.study_uid = filter.study_uid.clone();
        self.auditor.record(e).await;
        Ok(entries)
    }
}
