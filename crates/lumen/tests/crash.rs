//! Crash safety: `kill -9` during a 300-instance C-STORE ingest, restart, and check that
//! every instance whose C-STORE got a success response is present and byte-identical,
//! and that no orphan or partial file remains; with files, and with objects in a bucket
//! on a real Garage (where the restart's sweep removes unindexed uploads).
//!
//! Scale-out (issue 14): two `lumen serve` front ends and two `lumen worker`s over one
//! PostgreSQL index and one Garage bucket. LIDC-IDRI-0001 sent to one front end is seen
//! through the other; a worker killed with `kill -9` mid-job has its job finished by the
//! other once the lease passes, with one SEG and one SR; a front end killed during a
//! 300-instance C-STORE loses no acknowledged instance, as the other front end shows.

mod util;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, Tag};
use util::*;

const STUDY_UID: &str = "2.25.196540213372510470187632290151236577";
const SERIES_UID: &str = "2.25.196540213372510470187632290151236578";

/// 300 distinct CT instances (the real LIDC slices with new UIDs), as Part-10 bytes.
fn instances(files: &[std::path::PathBuf]) -> Vec<(String, Vec<u8>)> {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    let put = |obj: &mut DefaultDicomObject, tag: Tag, vr: VR, v: String| {
        obj.put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
    };
    (0..300)
        .map(|i| {
            let mut obj = dicom_object::open_file(&files[i % files.len()]).expect("source");
            let sop = format!("2.25.19654021337251047018763229015123{:04}", 6600 + i);
            put(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, sop.clone());
            put(&mut obj, tags::STUDY_INSTANCE_UID, VR::UI, STUDY_UID.into());
            put(
                &mut obj,
                tags::SERIES_INSTANCE_UID,
                VR::UI,
                SERIES_UID.into(),
            );
            put(&mut obj, tags::INSTANCE_NUMBER, VR::IS, (i + 1).to_string());
            obj.meta_mut().media_storage_sop_instance_uid = sop.clone();
            obj.update_meta(|m| m.media_storage_sop_instance_uid = sop.clone());
            let mut bytes = Vec::new();
            obj.write_all(&mut bytes).expect("encode");
            (sop, bytes)
        })
        .collect()
}

#[test]
fn kill9_during_ingest_loses_nothing_acknowledged() {
    let Some(data) = shared_data() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("data");
    kill9_during_ingest(&data, &dir, &[], |_| object_files(&dir));
}

#[test]
fn kill9_during_ingest_to_s3_loses_nothing_acknowledged_and_leaves_no_orphan() {
    let Some(data) = shared_data() else { return };
    let Some(g) = util::garage::Garage::start() else {
        return;
    };
    let bucket = "lumen-crash";
    g.bucket(bucket);
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("data");
    // Orphans are swept at once at the restart (the real age is an hour).
    let cfg = tmp.path().join("lumen.toml");
    std::fs::write(&cfg, g.storage_toml(bucket, Some(0))).expect("config");
    let cfg = cfg.to_str().expect("path");
    kill9_during_ingest(&data, &dir, &["--config", cfg], |indexed| {
        assert_eq!(local_object_files(&dir), (0, 0), "files written in S3 mode");
        // The restarted server sweeps the bucket in the background: wait for it.
        let count = || {
            let keys = g.list(bucket).expect("listing");
            keys.iter()
                .filter(|(k, _)| k.starts_with("objects/"))
                .count()
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while count() != indexed && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        (count(), 0)
    });
}

/// Sends 300 instances over one association to a server on `dir` (started with `extra`),
/// kills it mid-ingest, restarts it and checks what was acknowledged; `stored` counts the
/// objects kept and the temporary leftovers (given how many the index lists).
fn kill9_during_ingest(
    data: &std::path::Path,
    dir: &std::path::Path,
    extra: &[&str],
    stored: impl Fn(usize) -> (usize, usize),
) {
    let objects = Arc::new(instances(&lidc_files(data)));
    let mut server = Server::start_in(dir, extra);
    let (acked, sender) = send_all(server.dicom_port, &objects);
    kill_mid_ingest(&mut server, &acked, sender);
    let acked = acked.lock().expect("lock").clone();

    // Restart on the same data directory.
    let server = Server::start_in(dir, extra);
    let listed = check_acknowledged(&server, &objects, &acked);
    // No orphan objects, no temporary leftovers.
    assert_eq!(stored(listed.len()), (listed.len(), 0));
}

/// Sends `objects` over one association to `port` from a thread of its own; the SOP
/// Instance UIDs whose C-STORE succeeded are in the list (until the server dies).
fn send_all(
    port: u16,
    objects: &Arc<Vec<(String, Vec<u8>)>>,
) -> (Arc<Mutex<Vec<String>>>, std::thread::JoinHandle<()>) {
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let sender = {
        let (acked, objects) = (acked.clone(), objects.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                use lumen_dimse::{ScuConfig, StoreScu, proposals_for};
                let cfg = ScuConfig {
                    calling_ae_title: "CRASHTEST".into(),
                    called_ae_title: "LUMEN".into(),
                    ..ScuConfig::default()
                };
                let props = proposals_for([("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.1")]);
                let mut scu = StoreScu::connect(("127.0.0.1", port), &cfg, &props)
                    .await
                    .expect("associate");
                for (sop, bytes) in objects.iter() {
                    match scu.store_part10(bytes).await {
                        Ok(r) if r.status == 0 => acked.lock().expect("lock").push(sop.clone()),
                        Ok(r) => panic!("unexpected status {:04X}", r.status),
                        Err(_) => return, // the server died mid-exchange
                    }
                }
            });
        })
    };
    (acked, sender)
}

/// Kills `server` once 100 instances were acknowledged, while the ingest is in full flow.
fn kill_mid_ingest(
    server: &mut Server,
    acked: &Mutex<Vec<String>>,
    sender: std::thread::JoinHandle<()>,
) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.lock().expect("lock").len() < 100 {
        assert!(Instant::now() < deadline, "ingest too slow");
        std::thread::sleep(Duration::from_millis(2));
    }
    server.kill9();
    sender.join().expect("sender thread");
    let n = acked.lock().expect("lock").len();
    assert!((100..300).contains(&n), "killed mid-ingest ({n} acked)");
}

/// Checks through `server` that every acknowledged instance is listed and byte-identical
/// to what was sent (at most the one in flight may be listed besides); returns the listing.
fn check_acknowledged(
    server: &Server,
    objects: &[(String, Vec<u8>)],
    acked: &[String],
) -> Vec<String> {
    let listed = server.get_json(&format!(
        "/dicom-web/studies/{STUDY_UID}/series/{SERIES_UID}/instances"
    ));
    let listed: Vec<String> = listed
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|i| i["00080018"]["Value"][0].as_str().map(str::to_string))
        .collect();
    // At most the one instance in flight may have landed without its response.
    assert!(
        listed.len() >= acked.len() && listed.len() <= acked.len() + 1,
        "{} listed, {} acked",
        listed.len(),
        acked.len()
    );
    let by_uid: std::collections::HashMap<&str, &Vec<u8>> =
        objects.iter().map(|(s, b)| (s.as_str(), b)).collect();
    for sop in acked {
        assert!(listed.contains(sop), "acknowledged instance {sop} lost");
        let (status, ct, body) = server.get_raw(
            &format!("/dicom-web/studies/{STUDY_UID}/series/{SERIES_UID}/instances/{sop}"),
            Some("multipart/related; type=\"application/dicom\"; transfer-syntax=*"),
        );
        assert_eq!(status, 200);
        let parts = multipart_parts(&ct, &body);
        assert_eq!(
            dataset_bytes(&parts[0]),
            dataset_bytes(by_uid[sop.as_str()]),
            "instance {sop} differs from what was sent"
        );
    }
    listed
}

/// LIDC-IDRI-0001's study.
const LIDC_STUDY: &str = "1.3.6.1.4.1.14519.5.2.1.6279.6001.298806137288633453246975630178";

#[test]
fn two_front_ends_and_two_workers_share_one_postgresql_index_and_bucket() {
    let Some(data) = shared_data() else { return };
    if !have_tool("storescu") {
        return;
    }
    let Some(pg) = util::pg::start() else { return };
    let Some(g) = util::garage::Garage::start() else {
        return;
    };
    let bucket = "lumen-scaleout";
    g.bucket(bucket);
    let tmp = tempfile::tempdir().expect("tmp");
    let shared = format!(
        "database = \"{}\"\n{}",
        pg.database("scaleout"),
        g.storage_toml(bucket, None)
    );
    // Front ends leave the AI to the workers; a worker's lease is short, so that a dead
    // one's job is taken over within seconds.
    let front_cfg = tmp.path().join("front.toml");
    std::fs::write(&front_cfg, format!("{shared}[ai]\nenabled = false\n")).expect("config");
    let worker_cfg = tmp.path().join("worker.toml");
    std::fs::write(
        &worker_cfg,
        format!("{shared}[ai]\nquiet_period_secs = 2.0\nlease_secs = 6.0\n"),
    )
    .expect("config");
    let front_cfg = front_cfg.to_str().expect("path");
    let (a_dir, b_dir) = (tmp.path().join("front-a"), tmp.path().join("front-b"));
    let mut a = Server::start_in(&a_dir, &["--config", front_cfg]);
    // The accounts are in the shared index already.
    std::fs::create_dir_all(&b_dir).expect("dir");
    std::fs::write(b_dir.join("test-users-created"), "").expect("marker");
    let b = Server::start_in(&b_dir, &["--config", front_cfg]);
    let worker = |name: &str| {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).expect("dir");
        let log = std::fs::File::create(tmp.path().join(format!("{name}.log"))).expect("log");
        std::process::Command::new(lumen_bin())
            .args(["worker", "--config"])
            .arg(&worker_cfg)
            .arg("--data")
            .arg(&dir)
            .env("LUMEN_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start lumen worker")
    };
    let mut w1 = worker("worker-1");

    // LIDC-IDRI-0001 to front end A: B lists every instance.
    let files = lidc_files(&data);
    let st = run(std::process::Command::new("storescu")
        .args(["-aec", "LUMEN", "127.0.0.1", &a.dicom_port.to_string()])
        .args(&files));
    assert!(st.status.success());
    let listed = b.get_json(&format!("/dicom-web/studies/{LIDC_STUDY}/metadata"));
    assert_eq!(listed.as_array().map(Vec::len), Some(files.len()));
    for d in [&a_dir, &b_dir] {
        assert_eq!(
            local_object_files(d),
            (0, 0),
            "object files under {}",
            d.display()
        );
        assert!(!d.join("index.sqlite").exists());
    }

    // Worker 1 claims the series' AI job; it is killed mid-job, and worker 2 finishes it
    // once the lease has passed.
    let ai = |server: &Server| server.get_json(&format!("/api/studies/{LIDC_STUDY}/ai"));
    let deadline = Instant::now() + Duration::from_secs(120);
    while ai(&b)["series"][0]["state"] != "running" {
        assert!(Instant::now() < deadline, "job never started: {}", ai(&b));
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = w1.kill();
    let _ = w1.wait();
    let mut w2 = worker("worker-2");
    let deadline = Instant::now() + Duration::from_secs(300);
    let job = loop {
        let v = ai(&a);
        let j = v["series"][0].clone();
        if matches!(j["state"].as_str(), Some("done" | "failed" | "skipped")) {
            break j;
        }
        assert!(Instant::now() < deadline, "AI did not finish: {v}");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(
        job["attempts"], 2,
        "claimed by worker 1, taken over by worker 2: {job}"
    );
    // One SEG and one SR, each one instance, seen through either front end.
    for server in [&a, &b] {
        for modality in ["SEG", "SR"] {
            let series = server.get_json(&format!(
                "/dicom-web/studies/{LIDC_STUDY}/series?Modality={modality}"
            ));
            let series = series.as_array().expect("QIDO array");
            assert_eq!(series.len(), 1, "{modality} series: {series:?}");
            let uid = series[0]["0020000E"]["Value"][0].as_str().unwrap_or("");
            let inst = server.get_json(&format!(
                "/dicom-web/studies/{LIDC_STUDY}/series/{uid}/instances"
            ));
            assert_eq!(inst.as_array().map(Vec::len), Some(1), "{modality}: {inst}");
        }
    }

    // Front end A is killed during a 300-instance C-STORE: B lists every acknowledged one.
    let objects = Arc::new(instances(&files));
    let (acked, sender) = send_all(a.dicom_port, &objects);
    kill_mid_ingest(&mut a, &acked, sender);
    let acked = acked.lock().expect("lock").clone();
    check_acknowledged(&b, &objects, &acked);
    let _ = w2.kill();
    let _ = w2.wait();
}
