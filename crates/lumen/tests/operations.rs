//! Operations end to end: Prometheus metrics at `/metrics`, readiness at `/ready` and
//! JSON logs (`LUMEN_LOG_FORMAT=json`) of a real `lumen serve` that DCMTK stores into.
//!
//! The only test of this binary: it sets `LUMEN_LOG_FORMAT` for the server it starts.

mod util;

use std::process::Command;
use std::time::{Duration, Instant};

use util::*;

/// The value of the sample of `name` whose labels include every `labels` pair.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let (labelset, value) = match rest.strip_prefix('{') {
            Some(r) => r.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        labels
            .iter()
            .all(|(k, v)| labelset.contains(&format!("{k}=\"{v}\"")))
            .then(|| value.trim().parse().ok())?
    })
}

/// GET without credentials: status, content type, body.
fn get_anonymous(server: &Server, path: &str) -> (u16, String, String) {
    let url = format!("{}{path}", server.http());
    let mut r = https_agent(None)
        .get(&url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let ctype = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = r.body_mut().read_to_string().expect("body");
    (r.status().as_u16(), ctype, body)
}

/// `/metrics`, read as Prometheus does: without credentials.
fn metrics(server: &Server) -> String {
    let (status, ctype, body) = get_anonymous(server, "/metrics");
    assert_eq!(status, 200, "GET /metrics");
    assert!(ctype.starts_with("text/plain"), "content type {ctype}");
    body
}

/// Polls `/metrics` until `check` holds (the histogram and counter of a request are recorded
/// after its response is sent).
fn metrics_until(server: &Server, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = metrics(server);
        if check(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never showed {what}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn metrics_readiness_and_json_logs() {
    let Some(data) = shared_data() else { return };
    if !have_tool("storescu") {
        return;
    }
    // SAFETY: this binary's only test sets the variable before it starts any thread of its
    // own; the server started below inherits it.
    unsafe { std::env::set_var("LUMEN_LOG_FORMAT", "json") };
    let files: Vec<_> = lidc_files(&data).into_iter().take(5).collect();
    let server = Server::start();

    // Before anything arrives: the archive's gauges are there, and the node is ready.
    let text = metrics(&server);
    assert_eq!(sample(&text, "lumen_studies", &[]), Some(0.0), "{text}");
    assert_eq!(
        sample(&text, "lumen_outbox_rows", &[("state", "pending")]),
        Some(0.0)
    );
    let (status, _, body) = get_anonymous(&server, "/ready");
    assert_eq!((status, body.as_str()), (200, "ready"));

    let st = run(Command::new("storescu")
        .args(["-aec", "LUMEN", "127.0.0.1", &server.dicom_port.to_string()])
        .args(&files));
    assert!(
        st.status.success(),
        "storescu: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).expect("file").len())
        .sum();

    let text = metrics_until(&server, "five stored instances", |t| {
        sample(
            t,
            "lumen_dimse_operations_total",
            &[("operation", "c-store"), ("outcome", "success")],
        ) == Some(5.0)
    });
    let stored = [("origin", "c-store"), ("outcome", "stored")];
    assert_eq!(
        sample(&text, "lumen_ingest_instances_total", &stored),
        Some(5.0),
        "{text}"
    );
    // Received data sets are wrapped in a file meta of their own: about the files' size.
    let received =
        sample(&text, "lumen_ingest_bytes_total", &[("origin", "c-store")]).expect("ingest bytes");
    assert!(
        (received - bytes as f64).abs() < 0.05 * bytes as f64,
        "{received} bytes counted for {bytes} sent"
    );
    assert_eq!(
        sample(
            &text,
            "lumen_ingest_duration_seconds_count",
            &[("origin", "c-store")]
        ),
        Some(5.0)
    );
    assert_eq!(sample(&text, "lumen_studies", &[]), Some(1.0));
    let jobs: f64 = ["waiting", "running", "done", "failed", "skipped"]
        .iter()
        .filter_map(|s| sample(&text, "lumen_ai_jobs", &[("state", s)]))
        .sum();
    assert_eq!(jobs, 1.0, "one AI job for the CT series:\n{text}");
    assert!(sample(&text, "lumen_db_pool_connections", &[("state", "idle")]).is_some());

    // HTTP requests are labelled with the route template, never the UIDs in the path.
    let obj = dicom_object::open_file(&files[0]).expect("LIDC file");
    let uid = |t| {
        obj.element(t)
            .expect("attr")
            .to_str()
            .expect("str")
            .trim()
            .to_string()
    };
    let study = uid(dicom_dictionary_std::tags::STUDY_INSTANCE_UID);
    let patient = uid(dicom_dictionary_std::tags::PATIENT_ID);
    let series = server.get_json(&format!("/dicom-web/studies/{study}/series"));
    assert_eq!(series.as_array().map(Vec::len), Some(1));
    let route = [
        ("method", "GET"),
        ("route", "/dicom-web/studies/{study}/series"),
        ("status", "2xx"),
    ];
    let text = metrics_until(&server, "the QIDO request", |t| {
        sample(t, "lumen_http_requests_total", &route) == Some(1.0)
    });
    assert!(
        sample(
            &text,
            "lumen_http_request_duration_seconds_count",
            &route[..2]
        )
        .is_some(),
        "{text}"
    );
    let (status, _, _) = server.get_raw("/no/such/path/1.2.3", None);
    assert_eq!(status, 404);
    let text = metrics_until(&server, "the unmatched request", |t| {
        sample(
            t,
            "lumen_http_requests_total",
            &[("route", "unmatched"), ("status", "4xx")],
        )
        .is_some()
    });
    for secret in [study.as_str(), patient.as_str(), "1.2.3"] {
        assert!(!text.contains(secret), "metrics show {secret}");
    }

    // Not ready while objects cannot be written (the temporary folder replaced by a file).
    let tmp = server.data.join("tmp");
    let aside = server.data.join("tmp-aside");
    std::fs::rename(&tmp, &aside).expect("move tmp aside");
    std::fs::write(&tmp, b"not a folder").expect("file in its place");
    let (status, _, _) = get_anonymous(&server, "/ready");
    std::fs::remove_file(&tmp).expect("remove file");
    std::fs::rename(&aside, &tmp).expect("restore tmp");
    assert_eq!(status, 503, "/ready with an unwritable data directory");
    let (status, _, _) = get_anonymous(&server, "/ready");
    assert_eq!(status, 200, "/ready once writable again");

    // Every log line is one JSON object with a level and the event's fields.
    let log = server.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 3, "log:\n{log}");
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
    assert!(
        lines.iter().any(|l| l.contains("\"ledger verifier key\"")),
        "start-up events are logged:\n{log}"
    );
}
