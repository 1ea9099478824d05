//! The AI reads a chest CT on arrival: no request needed, status per study over the API,
//! a kill mid-job completes the job after restart, and series that cannot become a volume
//! end as failed jobs with the reason while the server stays healthy.

mod util;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use util::*;

const LIDC_STUDY: &str = "1.3.6.1.4.1.14519.5.2.1.6279.6001.298806137288633453246975630178";

fn config(dir: &std::path::Path) -> String {
    let cfg = dir.join("lumen.toml");
    std::fs::write(
        &cfg,
        "[ai]\nquiet_period_secs = 1.0\nretry_backoff_secs = 1.0\n",
    )
    .expect("config");
    cfg.to_string_lossy().into_owned()
}

/// Polls the study's AI status until every series has ended (done, failed or skipped).
fn wait_ended(server: &Server, study: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let (status, _, body) = server.get_raw(&format!("/api/studies/{study}/ai"), None);
        if status == 200 {
            let v: Value = serde_json::from_slice(&body).expect("json");
            let series = v["series"].as_array().cloned().unwrap_or_default();
            if !series.is_empty()
                && series
                    .iter()
                    .all(|s| matches!(s["state"].as_str(), Some("done" | "failed" | "skipped")))
            {
                return v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "AI did not finish in time:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn lidc_is_analysed_on_arrival_and_survives_a_crash_mid_job() {
    let Some(data) = shared_data() else { return };
    if !have_tool("storescu") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = config(tmp.path());
    let dir = tmp.path().join("data");
    let mut server = Server::start_in(&dir, &["--config", &cfg]);
    let st = run(Command::new("storescu")
        .args(["-aec", "LUMEN", "127.0.0.1", &server.dicom_port.to_string()])
        .args(lidc_files(&data)));
    assert!(st.status.success());

    // Kill the server while the job runs, then restart: the job is completed.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = server.get_json(&format!("/api/studies/{LIDC_STUDY}/ai"));
        if v["series"][0]["state"] == "running" {
            break;
        }
        assert!(Instant::now() < deadline, "job never started: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
    server.kill9();
    let server = Server::start_in(&dir, &["--config", &cfg]);
    let v = wait_ended(&server, LIDC_STUDY, Duration::from_secs(300));
    let job = &v["series"][0];
    assert_eq!(job["state"], "done", "{v}");
    assert_eq!(
        job["attempts"], 2,
        "claimed once before the crash, once after: {v}"
    );
    // The LUNA16 nodule (world 56.21, 86.34, -115.87; diameter 23.35 mm) is among the findings.
    let nodules = job["result"]["analysis"]["nodules"]
        .as_array()
        .expect("nodules");
    let hit = nodules.iter().any(|n| {
        let c: Vec<f64> = n["center_world_mm"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        c.len() == 3 && {
            let d =
                ((c[0] - 56.21).powi(2) + (c[1] - 86.34).powi(2) + (c[2] + 115.87).powi(2)).sqrt();
            d < 23.35 / 2.0
        }
    });
    assert!(hit, "LUNA16 nodule not found: {nodules:?}");
}

#[test]
fn series_that_cannot_become_a_volume_fail_with_a_reason() {
    let Some(data) = shared_data() else { return };
    if !have_tool("storescu") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = config(tmp.path());
    let server = Server::start_in(&tmp.path().join("data"), &["--config", &cfg]);
    // One slice of the LIDC series.
    let one = lidc_files(&data).remove(40);
    let st = run(Command::new("storescu")
        .args(["-aec", "LUMEN", "127.0.0.1", &server.dicom_port.to_string()])
        .arg(&one));
    assert!(st.status.success());
    let v = wait_ended(&server, LIDC_STUDY, Duration::from_secs(60));
    let job = &v["series"][0];
    assert_eq!(job["state"], "failed", "{v}");
    assert!(
        job["reason"].as_str().unwrap_or("").contains("1 images"),
        "{v}"
    );
    assert_eq!(server.get_raw("/health", None).0, 200);
    // A study that does not exist.
    assert_eq!(server.get_raw("/api/studies/1.2.3/ai", None).0, 404);
    assert_eq!(server.get_raw("/api/studies/not-a-uid/ai", None).0, 400);
}
