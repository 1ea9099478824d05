//! Operational metrics for Prometheus: what the use cases and the front doors count and
//! time, and the archive's gauges read at each scrape.
//!
//! The front doors and use cases record through the `metrics` facade under the names
//! below; [`install`] puts the Prometheus recorder (`metrics-exporter-prometheus`) in
//! place once per process and [`App::metrics_text`] renders its text format. Labels carry
//! route templates, operations, origins and states, never UIDs, names or IDs.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::{App, AppError};

/// Instances received, by origin (`c-store`, `stow-rs`, ...) and outcome.
pub const INGEST_INSTANCES: &str = "lumen_ingest_instances_total";
/// Bytes of the instances received, by origin.
pub const INGEST_BYTES: &str = "lumen_ingest_bytes_total";
/// Time to store one instance (parse, write, sync, index), by origin.
pub const INGEST_SECONDS: &str = "lumen_ingest_duration_seconds";
/// HTTP requests, by method, route template and status class.
pub const HTTP_REQUESTS: &str = "lumen_http_requests_total";
/// HTTP request latency (to the response head), by method and route template.
pub const HTTP_SECONDS: &str = "lumen_http_request_duration_seconds";
/// DIMSE operations, by operation (`c-store`, `c-find`, ...) and outcome.
pub const DIMSE_OPERATIONS: &str = "lumen_dimse_operations_total";
/// DIMSE operation latency, by operation.
pub const DIMSE_SECONDS: &str = "lumen_dimse_operation_duration_seconds";
/// AI job duration, by outcome.
pub const AI_JOB_SECONDS: &str = "lumen_ai_job_duration_seconds";
/// Routing sends (one batch to one destination), by outcome.
pub const ROUTING_SENDS: &str = "lumen_routing_sends_total";
/// Routing send duration.
pub const ROUTING_SECONDS: &str = "lumen_routing_send_duration_seconds";

/// Latency buckets, in seconds: 1 ms to 5 min.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's Prometheus recorder (once; later calls return the same handle).
/// Metrics recorded before it are not kept.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = match PrometheusBuilder::new().set_buckets(BUCKETS) {
            Ok(b) => b.build_recorder(),
            // Only an empty bucket list is refused; BUCKETS is not empty.
            Err(_) => PrometheusBuilder::new().build_recorder(),
        };
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics stays empty");
        }
        describe();
        handle
    })
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        INGEST_INSTANCES,
        "Instances received, by origin and outcome."
    );
    describe_counter!(
        INGEST_BYTES,
        Unit::Bytes,
        "Bytes of instances received, by origin."
    );
    describe_histogram!(INGEST_SECONDS, Unit::Seconds, "Time to store one instance.");
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests, by method, route and status class."
    );
    describe_histogram!(
        HTTP_SECONDS,
        Unit::Seconds,
        "HTTP request latency, by route."
    );
    describe_counter!(
        DIMSE_OPERATIONS,
        "DIMSE operations, by operation and outcome."
    );
    describe_histogram!(DIMSE_SECONDS, Unit::Seconds, "DIMSE operation latency.");
    describe_histogram!(
        AI_JOB_SECONDS,
        Unit::Seconds,
        "AI job duration, by outcome."
    );
    describe_counter!(ROUTING_SENDS, "Routing sends to a destination, by outcome.");
    describe_histogram!(ROUTING_SECONDS, Unit::Seconds, "Routing send duration.");
    describe_gauge!("lumen_ai_jobs", "AI jobs, by state.");
    describe_gauge!("lumen_outbox_rows", "Routing outbox rows, by state.");
    describe_gauge!("lumen_studies", "Studies in the archive.");
    describe_gauge!("lumen_ledger_entries", "Entries recorded in the ledger.");
    describe_counter!(
        "lumen_object_store_errors_total",
        "Failed requests to the object storage bucket ([storage] kind = \"s3\")."
    );
    describe_gauge!(
        "lumen_db_pool_connections",
        "Read pool connections, by state."
    );
}

/// Records one received instance.
pub fn record_ingest(origin: &'static str, outcome: &'static str, bytes: usize, took: Duration) {
    metrics::counter!(INGEST_INSTANCES, "origin" => origin, "outcome" => outcome).increment(1);
    if outcome != "refused" {
        metrics::counter!(INGEST_BYTES, "origin" => origin).increment(bytes as u64);
        metrics::histogram!(INGEST_SECONDS, "origin" => origin).record(took.as_secs_f64());
    }
}

impl App {
    /// The Prometheus text of this process's metrics, with the archive's gauges read now.
    pub async fn metrics_text(&self) -> Result<String, AppError> {
        let handle = install();
        let g = self.store.gauges().await?;
        // States that emptied since the last scrape must read 0, not keep their last value.
        for state in ["waiting", "running", "done", "failed", "skipped"] {
            let n = g
                .ai_jobs
                .iter()
                .find(|(s, _)| s == state)
                .map_or(0, |(_, n)| *n);
            metrics::gauge!("lumen_ai_jobs", "state" => state).set(n as f64);
        }
        for state in ["pending", "failed"] {
            let n = g
                .outbox
                .iter()
                .find(|(s, _)| s == state)
                .map_or(0, |(_, n)| *n);
            metrics::gauge!("lumen_outbox_rows", "state" => state).set(n as f64);
        }
        metrics::gauge!("lumen_studies").set(g.studies as f64);
        metrics::gauge!("lumen_ledger_entries").set(g.ledger_entries as f64);
        metrics::counter!("lumen_object_store_errors_total").absolute(g.object_store_errors);
        let (open, idle) = (f64::from(g.pool_open), f64::from(g.pool_idle));
        metrics::gauge!("lumen_db_pool_connections", "state" => "idle").set(idle);
        metrics::gauge!("lumen_db_pool_connections", "state" => "busy").set(open - idle);
        Ok(handle.render())
    }

    /// Whether this node can take work: the index answers and objects can be written.
    pub async fn ready(&self) -> Result<(), AppError> {
        self.store
            .check_ready()
            .await
            .map_err(|e| AppError::Unavailable(format!("not ready: {e}")))
    }
}
