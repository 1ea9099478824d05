//! `lumen queue`: shows the routing queue of a data directory (what waits for which peer,
//! how often it was tried and why it failed) and puts refused instances back in line.
//! It reads the outbox in the archive's index beside a running server without stopping it
//! (`lumen_store::RoutingQueue`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::Serialize;

use lumen_store::{LEGACY_QUEUE_FILE, OutboxEntry as QueueEntry, RoutingQueue};

/// Flags of `lumen queue`.
#[derive(Debug, clap::Args)]
pub struct QueueArgs {
    /// Data directory of the archive [env: LUMEN_DATA].
    #[arg(long, env = "LUMEN_DATA", default_value_os_t = crate::default_data())]
    data: PathBuf,
    /// The configuration (for `database`; default ./lumen.toml if present).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Also list every entry (one line per instance and destination).
    #[arg(long)]
    entries: bool,
    /// Print the summary and entries as JSON.
    #[arg(long)]
    json: bool,
    /// Put entries the peer refused back in line (all, or those of --destination).
    #[arg(long)]
    retry_failed: bool,
    /// Only this destination AE title.
    #[arg(long, value_name = "AET")]
    destination: Option<String>,
}

/// The queue of one destination.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct DestinationSummary {
    /// Destination AE title.
    pub destination: String,
    /// Entries still to be sent (first try or retries).
    pub pending: usize,
    /// Pending entries that failed at least once (the peer was unreachable or the
    /// association failed).
    pub retrying: usize,
    /// Entries the peer refused, not retried until `--retry-failed`.
    pub failed: usize,
    /// Most attempts of one entry.
    pub max_attempts: u32,
    /// When the oldest entry was queued (Unix milliseconds).
    pub oldest_queued_ms: Option<i64>,
    /// When the next pending attempt is due (Unix milliseconds).
    pub next_attempt_ms: Option<i64>,
    /// The most recent error of an entry.
    pub last_error: Option<String>,
}

/// Per-destination counts of a queue's entries.
pub fn summarize(entries: &[QueueEntry]) -> Vec<DestinationSummary> {
    let mut by: BTreeMap<&str, DestinationSummary> = BTreeMap::new();
    for e in entries {
        let s = by
            .entry(e.destination.as_str())
            .or_insert_with(|| DestinationSummary {
                destination: e.destination.clone(),
                ..Default::default()
            });
        if e.state == "failed" {
            s.failed += 1;
        } else {
            s.pending += 1;
            if e.attempts > 0 {
                s.retrying += 1;
            }
            s.next_attempt_ms = Some(
                s.next_attempt_ms
                    .map_or(e.next_attempt_ms, |t| t.min(e.next_attempt_ms)),
            );
        }
        s.max_attempts = s.max_attempts.max(e.attempts);
        if e.queued_ms > 0 {
            s.oldest_queued_ms = Some(
                s.oldest_queued_ms
                    .map_or(e.queued_ms, |t| t.min(e.queued_ms)),
            );
        }
        // Entries are oldest first: the last error seen is the latest queued one's.
        if e.last_error.is_some() {
            s.last_error = e.last_error.clone();
        }
    }
    by.into_values().collect()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// "in 4 s", "now", "12 s ago".
fn relative(t: Option<i64>, now: i64) -> String {
    match t {
        None => "-".into(),
        Some(t) if t > now + 500 => format!("in {} s", (t - now + 500) / 1000),
        Some(t) if t < now - 1500 && t > 0 => format!("{} s ago", (now - t) / 1000),
        Some(_) => "now".into(),
    }
}

fn table(header: &[&str], rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    println!("{}", line(header.to_vec()));
    for r in rows {
        println!("{}", line(r.iter().map(String::as_str).collect()));
    }
}

/// Runs `lumen queue`.
pub fn run(args: QueueArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let conf = crate::config::Config::load(args.config.as_ref(), Default::default())?;
        let q = match &conf.database {
            // The URL is not printed: it may hold the password.
            Some(url) => Some(
                RoutingQueue::connect(url)
                    .await
                    .context("cannot open the queue in the configured database")?,
            ),
            None => RoutingQueue::open(&args.data)
                .await
                .with_context(|| format!("cannot open the queue in {}", args.data.display()))?,
        };
        let Some(q) = q else {
            if args.json {
                println!("{}", serde_json::json!({"destinations": [], "entries": []}));
            } else if args.data.join(LEGACY_QUEUE_FILE).exists() {
                eprintln!(
                    "the routing queue of an earlier version ({LEGACY_QUEUE_FILE}) in {} is \
                     imported when `lumen serve` next opens it",
                    args.data.display()
                );
            } else {
                eprintln!(
                    "no routing queue in {} (no [[route]] rule has matched yet)",
                    args.data.display()
                );
            }
            return Ok(ExitCode::SUCCESS);
        };
        if args.retry_failed {
            let n = q.retry_failed(args.destination.as_deref()).await?;
            eprintln!("{n} failed entr{} back in line (a running server tries them within seconds)", if n == 1 { "y" } else { "ies" });
        }
        let mut entries = q.entries().await?;
        if let Some(d) = &args.destination {
            entries.retain(|e| &e.destination == d);
        }
        let summary = summarize(&entries);
        if args.json {
            let v = serde_json::json!({
                "destinations": summary,
                "entries": if args.entries { serde_json::to_value(&entries)? } else { serde_json::json!([]) },
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
            return Ok(ExitCode::SUCCESS);
        }
        let now = now_ms();
        if summary.is_empty() {
            eprintln!("the routing queue is empty");
        } else {
            table(
                &["DESTINATION", "PENDING", "RETRYING", "FAILED", "ATTEMPTS", "OLDEST", "NEXT TRY", "LAST ERROR"],
                &summary
                    .iter()
                    .map(|s| {
                        vec![
                            s.destination.clone(),
                            s.pending.to_string(),
                            s.retrying.to_string(),
                            s.failed.to_string(),
                            s.max_attempts.to_string(),
                            relative(s.oldest_queued_ms, now),
                            relative(s.next_attempt_ms, now),
                            s.last_error.clone().unwrap_or_default(),
                        ]
                    })
                    .collect::<Vec<_>>(),
            );
        }
        if args.entries && !entries.is_empty() {
            println!();
            table(
                &["DESTINATION", "STATE", "ATTEMPTS", "ORIGIN", "SOP INSTANCE UID", "SERIES INSTANCE UID", "LAST ERROR"],
                &entries
                    .iter()
                    .map(|e| {
                        vec![
                            e.destination.clone(),
                            e.state.clone(),
                            e.attempts.to_string(),
                            e.origin.clone(),
                            e.sop_instance_uid.clone(),
                            e.series_uid.clone(),
                            e.last_error.clone().unwrap_or_default(),
                        ]
                    })
                    .collect::<Vec<_>>(),
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(dest: &str, state: &str, attempts: u32, err: Option<&str>) -> QueueEntry {
        QueueEntry {
            destination: dest.into(),
            study_uid: "1.2".into(),
            series_uid: "1.2.3".into(),
            sop_instance_uid: format!("1.2.3.{attempts}"),
            state: state.into(),
            attempts,
            queued_ms: 1000 + attempts as i64,
            next_attempt_ms: 5000 - attempts as i64,
            last_error: err.map(String::from),
            id: attempts as i64,
            origin: "c-store".into(),
            claimed_ms: None,
        }
    }

    #[test]
    fn summary_counts_per_destination() {
        let s = summarize(&[
            entry("PACS", "pending", 0, None),
            entry("PACS", "pending", 3, Some("connection refused")),
            entry("PACS", "failed", 1, Some("refused with status A700")),
            entry("AI", "pending", 0, None),
        ]);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].destination, "AI");
        assert_eq!((s[0].pending, s[0].retrying, s[0].failed), (1, 0, 0));
        let p = &s[1];
        assert_eq!(
            (p.pending, p.retrying, p.failed, p.max_attempts),
            (2, 1, 1, 3)
        );
        assert_eq!(p.oldest_queued_ms, Some(1000));
        assert_eq!(p.next_attempt_ms, Some(4997));
        assert_eq!(p.last_error.as_deref(), Some("refused with status A700"));
        assert_eq!(relative(Some(10_000), 4_000), "in 6 s");
        assert_eq!(relative(Some(1_000), 10_000), "9 s ago");
        assert_eq!(relative(None, 1), "-");
    }
}
