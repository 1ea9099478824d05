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
    check_dicom_results(&server, &job["result"]);

    // Exactly once: analysing the series again re-stores identical SEG and SR objects
    // (already present), so there is still one instance of each, under the same UIDs.
    ureq::post(&format!("{}/api/studies/{LIDC_STUDY}/ai", server.http()))
        .header("Authorization", &server.auth())
        .send_empty()
        .expect("requeue");
    let deadline = Instant::now() + Duration::from_secs(300);
    let again = loop {
        let v = server.get_json(&format!("/api/studies/{LIDC_STUDY}/ai"));
        let j = &v["series"][0];
        if j["state"] == "done" && j["attempts"] == 1 {
            break j.clone();
        }
        assert!(j["state"] != "failed", "re-run failed: {v}");
        assert!(Instant::now() < deadline, "re-run did not finish: {v}");
        std::thread::sleep(Duration::from_millis(250));
    };
    for key in [
        "seg_sop_uid",
        "sr_sop_uid",
        "result_series_uid",
        "seg_series_uid",
    ] {
        assert_eq!(again["result"][key], job["result"][key], "{key}");
    }
    check_dicom_results(&server, &again["result"]);
}

/// The one series of `modality` in the LIDC study, with its one instance: (series, sop).
fn only_result(server: &Server, modality: &str) -> (String, String) {
    let uid = |v: &Value, tag: &str| v[tag]["Value"][0].as_str().unwrap_or("").to_string();
    let series = server.get_json(&format!(
        "/dicom-web/studies/{LIDC_STUDY}/series?Modality={modality}"
    ));
    let series = series.as_array().expect("QIDO array");
    assert_eq!(series.len(), 1, "{modality} series: {series:?}");
    let series_uid = uid(&series[0], "0020000E");
    let inst = server.get_json(&format!(
        "/dicom-web/studies/{LIDC_STUDY}/series/{series_uid}/instances"
    ));
    let inst = inst.as_array().expect("QIDO array");
    assert_eq!(inst.len(), 1, "{modality} instances: {inst:?}");
    (series_uid, uid(&inst[0], "00080018"))
}

/// The SEG and SR the AI stored on arrival: found by QIDO, one each; retrieved by WADO-RS;
/// valid for dciodvfy; read back by highdicom with the job's numbers.
fn check_dicom_results(server: &Server, result: &Value) {
    let (seg_series, seg_sop) = only_result(server, "SEG");
    let (sr_series, sr_sop) = only_result(server, "SR");
    assert_eq!(result["seg_sop_uid"], seg_sop.as_str(), "{result}");
    assert_eq!(result["sr_sop_uid"], sr_sop.as_str(), "{result}");
    assert_eq!(result["result_series_uid"], sr_series.as_str(), "{result}");
    assert_eq!(result["seg_series_uid"], seg_series.as_str(), "{result}");
    let tmp = tempfile::tempdir().expect("tmp");
    let mut paths = Vec::new();
    for (series, sop, name) in [(&seg_series, &seg_sop, "seg"), (&sr_series, &sr_sop, "sr")] {
        let (status, ct, body) = server.get_raw(
            &format!("/dicom-web/studies/{LIDC_STUDY}/series/{series}/instances/{sop}"),
            Some("multipart/related; type=\"application/dicom\"; transfer-syntax=*"),
        );
        assert_eq!(status, 200, "WADO-RS {name}");
        let parts = multipart_parts(&ct, &body);
        assert_eq!(parts.len(), 1);
        let path = tmp.path().join(format!("{name}.dcm"));
        std::fs::write(&path, &parts[0]).expect("write");
        if have_tool("dciodvfy") {
            let out = run(Command::new("dciodvfy").arg(&path));
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let errors: Vec<&str> = text.lines().filter(|l| l.contains("Error")).collect();
            assert!(errors.is_empty(), "dciodvfy {name}:\n{text}");
        }
        paths.push(path);
    }

    // highdicom reads both back with Lumen's numbers.
    let py = std::env::var("LUMEN_PYTHON").ok().filter(|p| {
        Command::new(p)
            .args(["-c", "import highdicom"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(py) = py else {
        assert!(
            std::env::var("LUMEN_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "LUMEN_PYTHON must name a Python with highdicom (LUMEN_REQUIRE_TOOLS=1)"
        );
        eprintln!("SKIP: highdicom read-back (set LUMEN_PYTHON to a Python with highdicom)");
        return;
    };
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/ai_dicom_check.py"
    );
    let out = run(Command::new(py).arg(script).args(&paths));
    assert!(
        out.status.success(),
        "ai_dicom_check.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_slice(&out.stdout).expect("json");
    let dicom_nodules = result["nodules"].as_array().expect("result nodules");
    let segments = read["seg"]["segments"].as_object().expect("segments");
    assert_eq!(segments.len(), 2 + dicom_nodules.len(), "{read}");
    assert_eq!(segments["1"]["type"], "39607008");
    // Every segment recommends its display colour (OHIF otherwise picks its own), the
    // nodules' differ from the lungs'.
    for (n, seg) in segments {
        let lab = seg["cielab"]
            .as_array()
            .unwrap_or_else(|| panic!("segment {n} has no colour: {read}"));
        assert_eq!(lab.len(), 3, "{read}");
        if n != "1" && n != "2" {
            assert_ne!(seg["cielab"], segments["1"]["cielab"], "{read}");
        }
    }
    assert_eq!(
        segments["1"]["voxels"], result["lung_voxels"]["right"],
        "{read}"
    );
    assert_eq!(
        segments["2"]["voxels"], result["lung_voxels"]["left"],
        "{read}"
    );
    let analysis = result["analysis"]["nodules"].as_array().expect("nodules");
    let groups = read["sr"]["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), dicom_nodules.len(), "{read}");
    for d in dicom_nodules {
        let n = d["segment_number"].to_string();
        let seg = &segments[&n];
        assert_eq!(seg["type"], "27925004", "{read}");
        assert_eq!(seg["category"], "49755003", "{read}");
        assert_eq!(seg["voxels"], d["voxels"], "nodule {d}: {read}");
        assert!(d["voxels"].as_u64().unwrap_or(0) > 0, "{d}");
        let a = analysis
            .iter()
            .find(|a| a["id"] == d["id"])
            .expect("nodule in analysis");
        let g = groups
            .iter()
            .find(|g| g["tracking_uid"] == d["tracking_uid"])
            .unwrap_or_else(|| panic!("no SR group for {d}: {read}"));
        assert_eq!(g["tracking_id"], d["tracking_id"]);
        assert_eq!(g["finding"], "27925004");
        for (code, key) in [
            ("103339001", "long_axis_mm"),
            ("103340004", "short_axis_mm"),
            ("118565006", "volume_mm3"),
        ] {
            let (got, want) = (
                g["measurements"][code].as_f64().expect("measurement"),
                a[key].as_f64().expect("value"),
            );
            assert!(
                (got - want).abs() <= 1e-6 * want.abs().max(1.0),
                "nodule {} {key}: SR {got}, job {want}",
                d["id"]
            );
        }
    }
    eprintln!(
        "highdicom {}: SEG {} segments, SR {} groups: {}",
        read["highdicom"],
        segments.len(),
        groups.len(),
        dicom_nodules
            .iter()
            .map(|d| format!("nodule {} = {} voxels", d["id"], d["voxels"]))
            .collect::<Vec<_>>()
            .join(", ")
    );
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
    // `lumen analyze --study` re-runs it on demand, through the running archive.
    let out = run(Command::new(lumen_bin())
        .env("LUMEN_TOKEN", &server.token)
        .args([
            "analyze",
            "--study",
            LIDC_STUDY,
            "--server",
            &server.http(),
            "--wait",
        ]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("queued 1 series") && text.contains("failed: 1 images"),
        "{text}"
    );
    let out = run(Command::new(lumen_bin())
        .env("LUMEN_TOKEN", &server.token)
        .args(["analyze", "--study", "1.2.3", "--server", &server.http()]));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no such study"),
        "{out:?}"
    );
    // A study that does not exist.
    assert_eq!(server.get_raw("/api/studies/1.2.3/ai", None).0, 404);
    assert_eq!(server.get_raw("/api/studies/not-a-uid/ai", None).0, 400);
}
