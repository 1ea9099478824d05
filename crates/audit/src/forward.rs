//! The forwarder: a background task that sends the audit trail, in sequence order, to the
//! audit record repository, and never blocks the request that recorded an event.
//!
//! The index is the queue. Requests append events to it (the store side, through
//! [`AuditLog`]) and wake the forwarder with the [`Notify`] from [`Forwarder::notifier`];
//! the forwarder reads events after its persisted cursor, sends them one by one, and moves
//! the cursor ([`AuditLog::set_forwarded_up_to`]) only past events whose write completed. When
//! the repository is down it reconnects with capped exponential backoff and, once it is
//! back, catches up from the cursor; nothing is dropped because nothing is held only in
//! memory.
//!
//! Delivery is at least once: after a crash or restart, events sent after the last
//! persisted cursor are sent again (the cursor is persisted after each batch, at most
//! [`Forwarder::with_batch`] events, and whenever sending stops on an error). Syslog over TCP
//! and TLS has no acknowledgement, so "sent" means the write into the connection completed;
//! before each write the connection is checked for having been closed by the repository,
//! which catches a repository that went away between messages, but a message written in the
//! instant before the repository dies can still be lost in its socket. UDP detects nothing,
//! and an event whose message exceeds a UDP datagram (64 KiB) is skipped with an error log.
//!
//! Logs carry seq numbers and errors only, never patient names or IDs.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lumen_model::AuditEvent;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::message::AuditSource;
use crate::syslog::{ConfigError, Connection, Sender, SyslogConfig};

/// The audit trail as the forwarder reads it; the store implements it over the index.
pub trait AuditLog: Send + Sync + 'static {
    /// Events with seq > `after`, oldest first, at most `limit`.
    fn events_after(
        &self,
        after: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<AuditEvent>, String>> + Send;

    /// The last seq delivered to the repository (persisted; 0 when none yet).
    fn forwarded_up_to(&self) -> impl Future<Output = Result<i64, String>> + Send;

    /// Persists the last seq delivered to the repository.
    fn set_forwarded_up_to(&self, seq: i64) -> impl Future<Output = Result<(), String>> + Send;
}

/// Sends the audit trail to the repository; see the module documentation.
pub struct Forwarder<L: AuditLog> {
    sender: Sender,
    source: AuditSource,
    log: Arc<L>,
    notify: Arc<Notify>,
    batch: usize,
    poll: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
}

impl<L: AuditLog> Forwarder<L> {
    /// A forwarder for the `[audit.syslog]` configuration, reporting as `source`, reading
    /// `log`. Fails when the configuration cannot work (a missing CA file, a bad address...);
    /// it does not connect yet.
    pub fn new(config: &SyslogConfig, source: AuditSource, log: L) -> Result<Self, ConfigError> {
        Ok(Self::with_sender(Sender::new(config)?, source, log))
    }

    /// A forwarder over an already checked [`Sender`].
    pub fn with_sender(sender: Sender, source: AuditSource, log: L) -> Self {
        Forwarder {
            sender,
            source,
            log: Arc::new(log),
            notify: Arc::new(Notify::new()),
            batch: 100,
            poll: Duration::from_secs(5),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
        }
    }

    /// The handle the writer side calls `notify_one()` on after committing events, so that
    /// they go out at once rather than at the next poll.
    pub fn notifier(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    /// Uses this `Notify` instead of the forwarder's own (for a writer created first).
    pub fn with_notify(mut self, notify: Arc<Notify>) -> Self {
        self.notify = notify;
        self
    }

    /// How many events to read from the log at a time (default 100, at least 1).
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// How often to look for new events without a notification (default 5 s).
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// The first and the largest wait between attempts while the repository or the log
    /// fails (default 0.5 s doubling up to 60 s).
    pub fn with_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max.max(min);
        self
    }

    /// Starts the forwarder on the current tokio runtime. It runs until the handle is
    /// aborted (or the runtime shuts down).
    pub fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(self.run())
    }

    /// Runs the forwarder in the calling task; never returns.
    pub async fn run(self) {
        let mut backoff = Backoff::new(self.backoff_min, self.backoff_max);
        let mut cursor = loop {
            match self.log.forwarded_up_to().await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::warn!(error = %e, "audit forwarder cannot read its cursor");
                    tokio::time::sleep(backoff.next()).await;
                }
            }
        };
        backoff.reset();
        tracing::info!(
            cursor,
            repository = self.sender.address(),
            "audit forwarder started"
        );
        let mut persisted = cursor;
        let mut conn: Option<Connection> = None;
        loop {
            if persisted != cursor {
                match self.log.set_forwarded_up_to(cursor).await {
                    Ok(()) => persisted = cursor,
                    Err(e) => {
                        tracing::warn!(cursor, error = %e, "audit forwarder cannot persist its cursor; will retry")
                    }
                }
            }
            let events = match self.log.events_after(cursor, self.batch).await {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(cursor, error = %e, "audit forwarder cannot read the audit log");
                    tokio::time::sleep(backoff.next()).await;
                    continue;
                }
            };
            if events.is_empty() {
                // Wait for a commit, or poll. `notified()` keeps a permit stored by a
                // notify_one() that came while we were busy, so no wake-up is missed.
                let _ = tokio::time::timeout(self.poll, self.notify.notified()).await;
                continue;
            }
            let mut failed = false;
            for event in &events {
                if event.seq <= cursor {
                    continue;
                }
                let frame = self.sender.frame(event, &self.source);
                match self.deliver(&mut conn, &frame).await {
                    Ok(()) => {
                        backoff.reset();
                        cursor = event.seq;
                        tracing::debug!(seq = event.seq, "audit event forwarded");
                    }
                    Err(e @ crate::syslog::SendError::TooLarge(_)) => {
                        // It can never go by UDP; waiting would stop the whole trail.
                        tracing::error!(seq = event.seq, error = %e, "audit event skipped: use TCP or TLS");
                        cursor = event.seq;
                    }
                    Err(e) => {
                        conn = None;
                        tracing::warn!(seq = event.seq, error = %e, "audit repository unavailable; will retry");
                        failed = true;
                        break;
                    }
                }
            }
            if failed {
                if persisted != cursor
                    && let Ok(()) = self.log.set_forwarded_up_to(cursor).await
                {
                    persisted = cursor;
                }
                tokio::time::sleep(backoff.next()).await;
            }
        }
    }

    async fn deliver(
        &self,
        conn: &mut Option<Connection>,
        frame: &[u8],
    ) -> Result<(), crate::syslog::SendError> {
        if conn.is_none() {
            let c = self.sender.connect().await?;
            tracing::info!(
                repository = self.sender.address(),
                "connected to the audit repository"
            );
            *conn = Some(c);
        }
        match conn {
            Some(c) => c.send(frame).await,
            None => Err(crate::syslog::SendError::Closed),
        }
    }
}

/// Capped exponential backoff.
struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max,
            current: min,
        }
    }

    fn next(&mut self) -> Duration {
        let d = self.current;
        self.current = (self.current * 2).min(self.max);
        d
    }

    fn reset(&mut self) {
        self.current = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let waits: Vec<_> = (0..4).map(|_| b.next().as_millis()).collect();
        assert_eq!(waits, [100, 200, 350, 350]);
        b.reset();
        assert_eq!(b.next().as_millis(), 100);
    }
}
