//! Interoperability with Orthanc (Debian's `orthanc` package), the reference open-source
//! PACS, on real CT (LIDC-IDRI-0001): Lumen routes a study to Orthanc, also while Orthanc
//! is stopped (the instances wait in the queue, `lumen queue` shows why, and they arrive
//! once Orthanc is back); Orthanc queries Lumen and C-MOVEs the study out of it; Lumen
//! queries Orthanc and takes the study out of it with C-MOVE (`lumen retrieve --move-to`)
//! and C-GET (`lumen retrieve --get`). Every instance must arrive byte-identical (data set
//! as sent; Orthanc keeps received files as they are and serves them at
//! `/instances/{id}/file`).
//!
//! Orthanc 1.10 has no bind-address option, so, as `../shared/peers/orthanc-bench.sh` does,
//! the test re-runs itself in a private network namespace that has only loopback
//! (`unshare --net`) where it can; elsewhere it runs on this host's loopback.

mod util;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use lumen_dimse::Part10Info;
use serde_json::{Value, json};
use util::*;

/// Set in the re-run inside the network namespace.
const IN_NETNS: &str = "LUMEN_TEST_IN_NETNS";
/// Slices of the LIDC series used: two batches of six.
const BATCH: usize = 6;

fn s(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs this test again in a private network namespace with only `lo` up. `None` when
/// already inside one, or when namespaces cannot be made here (not root): then the test
/// runs in this namespace.
fn rerun_in_netns(test: &str) -> Option<bool> {
    if std::env::var_os(IN_NETNS).is_some() {
        return None;
    }
    let probe = Command::new("unshare")
        .args(["--net", "sh", "-c", "ip link set lo up"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!(
            "note: no private network namespace here (unshare --net needs root); Orthanc \
             listens on all interfaces of this host while the test runs"
        );
        return None;
    }
    let exe = std::env::current_exe().expect("test binary");
    let status = Command::new("unshare")
        .args([
            "--net",
            "sh",
            "-c",
            "ip link set lo up && exec \"$@\"",
            "sh",
        ])
        .arg(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(IN_NETNS, "1")
        .status()
        .expect("unshare");
    Some(status.success())
}

/// An Orthanc process with its own storage, ports and DICOM modalities.
struct Orthanc {
    child: Option<Child>,
    config: PathBuf,
    log: PathBuf,
    http_port: u16,
    dicom_port: u16,
}

impl Orthanc {
    /// Writes the configuration: storage as received (no compression), Lumen's AE titles
    /// as modalities (C-MOVE destinations, callers of C-FIND/C-GET/C-MOVE).
    fn configure(dir: &Path, modalities: &[(&str, u16)]) -> Orthanc {
        let http_port = free_port();
        let dicom_port = free_port();
        let db = dir.join("orthanc-db");
        std::fs::create_dir_all(&db).unwrap();
        let mods: serde_json::Map<String, Value> = modalities
            .iter()
            .map(|(aet, port)| (aet.to_string(), json!([aet, "127.0.0.1", port])))
            .collect();
        let config = json!({
            "Name": "ORTHANC-LUMEN-TEST",
            "StorageDirectory": db,
            "IndexDirectory": db,
            "StorageCompression": false,
            "Plugins": [],
            "HttpServerEnabled": true,
            "HttpPort": http_port,
            "RemoteAccessAllowed": false,
            "AuthenticationEnabled": false,
            "DicomServerEnabled": true,
            "DicomAet": "ORTHANC",
            "DicomPort": dicom_port,
            "DicomCheckCalledAet": true,
            "DicomCheckModalityHost": true,
            "DicomModalities": mods,
            "DicomScuTimeout": 30,
            "DicomScpTimeout": 30,
            "OverwriteInstances": false,
            "SaveJobs": false,
            "TcpNoDelay": true,
        });
        let path = dir.join("orthanc.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        Orthanc {
            child: None,
            config: path,
            log: dir.join("orthanc.log"),
            http_port,
            dicom_port,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new("Orthanc")
            .arg(&self.config)
            // DCMTK (Orthanc's DICOM layer) reads it; Debian's default leaves Nagle on.
            .env("TCP_NODELAY", "1")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start Orthanc");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                panic!("Orthanc exited ({st}):\n{}", self.log());
            }
            if ureq::get(&self.url("/system"))
                .call()
                .is_ok_and(|r| r.status() == 200)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Orthanc did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        let l = std::fs::read_to_string(&self.log).unwrap_or_default();
        l[l.len().saturating_sub(4000)..].to_string()
    }

    fn get_json(&self, path: &str) -> Value {
        ureq::get(&self.url(path))
            .call()
            .unwrap_or_else(|e| panic!("Orthanc GET {path}: {e}"))
            .body_mut()
            .read_json()
            .expect("Orthanc JSON")
    }

    fn post_json(&self, path: &str, body: &Value) -> Value {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let mut r = agent
            .post(&self.url(path))
            .send_json(body)
            .unwrap_or_else(|e| panic!("Orthanc POST {path}: {e}"));
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        assert_eq!(status, 200, "Orthanc POST {path}: {text}\n{}", self.log());
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Instances Orthanc stores, by SOP Instance UID: their data sets as stored.
    fn datasets(&self) -> BTreeMap<String, Vec<u8>> {
        let ids = self.get_json("/instances");
        ids.as_array()
            .expect("instance list")
            .iter()
            .map(|id| {
                let id = id.as_str().expect("instance id");
                let bytes = ureq::get(&self.url(&format!("/instances/{id}/file")))
                    .call()
                    .expect("instance file")
                    .body_mut()
                    .with_config()
                    .limit(1 << 30)
                    .read_to_vec()
                    .expect("instance bytes");
                split_part10(&bytes)
            })
            .collect()
    }

    fn count(&self) -> usize {
        self.get_json("/instances").as_array().map_or(0, Vec::len)
    }

    /// Waits until Orthanc stores `n` instances.
    fn wait_for(&self, n: usize, what: &str, lumen: &Server) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.count() < n {
            assert!(
                Instant::now() < deadline,
                "{what}: Orthanc has {} of {n} instances\nLumen:\n{}\nOrthanc:\n{}",
                self.count(),
                lumen.log(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Orthanc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// (SOP Instance UID from the file meta, data set bytes) of a Part-10 object.
fn split_part10(bytes: &[u8]) -> (String, Vec<u8>) {
    let info = Part10Info::parse(bytes).expect("Part-10 object");
    (info.sop_instance_uid, bytes[info.dataset_offset..].to_vec())
}

/// Asserts two sets of data sets are equal without printing megabytes when they are not.
#[track_caller]
fn assert_same(got: &BTreeMap<String, Vec<u8>>, want: &BTreeMap<String, Vec<u8>>, what: &str) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: other instances"
    );
    let differ: Vec<&String> = got.keys().filter(|k| got[*k] != want[*k]).collect();
    assert!(differ.is_empty(), "{what}: data sets differ: {differ:?}");
}

fn originals(files: &[PathBuf]) -> BTreeMap<String, Vec<u8>> {
    files
        .iter()
        .map(|f| split_part10(&std::fs::read(f).unwrap()))
        .collect()
}

/// A study's instances as Lumen stores them (WADO-RS), by SOP Instance UID.
fn lumen_datasets(server: &Server, study: &str) -> BTreeMap<String, Vec<u8>> {
    let (status, ct, body) = server.get_raw(
        &format!("/dicom-web/studies/{study}"),
        Some("multipart/related; type=\"application/dicom\""),
    );
    if status == 404 {
        return BTreeMap::new();
    }
    assert_eq!(status, 200, "WADO-RS study");
    multipart_parts(&ct, &body)
        .iter()
        .map(|p| split_part10(p))
        .collect()
}

fn lumen(args: &[&str]) -> Output {
    run(Command::new(lumen_bin()).args(args))
}

/// `lumen queue --json` of a data directory.
fn queue(data: &Path) -> Value {
    let o = lumen(&[
        "queue",
        "--data",
        data.to_str().unwrap(),
        "--json",
        "--entries",
    ]);
    assert!(o.status.success(), "lumen queue: {}", s(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("lumen queue JSON: {e}: {}", s(&o)))
}

fn storescu(port: u16, aet: &str, files: &[PathBuf]) {
    let o = run(Command::new("storescu")
        .args(["-aet", aet, "-aec", "LUMEN", "127.0.0.1"])
        .arg(port.to_string())
        .args(files));
    assert!(o.status.success(), "storescu: {}", s(&o));
}

fn study_uid(file: &Path) -> String {
    let obj = dicom_object::open_file(file).expect("LIDC file");
    obj.element(dicom_dictionary_std::tags::STUDY_INSTANCE_UID)
        .unwrap()
        .to_str()
        .unwrap()
        .trim_end_matches(['\0', ' '])
        .to_string()
}

#[test]
fn qr_orthanc_route_move_get_byte_identical() {
    let Some(data) = shared_data() else { return };
    if !have_tool("Orthanc") || !have_tool("storescu") {
        return;
    }
    if let Some(passed) = rerun_in_netns("qr_orthanc_route_move_get_byte_identical") {
        assert!(
            passed,
            "the test failed inside its network namespace (output above)"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let all = lidc_files(&data);
    let files: Vec<PathBuf> = all[..2 * BATCH].to_vec();
    let want = originals(&files);
    let first_half = originals(&files[..BATCH]);
    let study = study_uid(&files[0]);

    // Lumen: CT goes to Orthanc. Orthanc knows Lumen as a modality (on Lumen's port).
    let lumen_http = free_port();
    let lumen_dicom = free_port();
    let mut orthanc = Orthanc::configure(tmp.path(), &[("LUMEN", lumen_dicom)]);
    let cfg = tmp.path().join("lumen.toml");
    std::fs::write(
        &cfg,
        "[[route]]\nmodality = \"CT\"\ndestination = \"ORTHANC\"\n",
    )
    .unwrap();
    let peer = format!("ORTHANC=127.0.0.1:{}", orthanc.dicom_port);
    let dir_a = tmp.path().join("lumen-a");
    let mut server = Server::start_on(
        &dir_a,
        lumen_http,
        lumen_dicom,
        &["--config", cfg.to_str().unwrap(), "--peer", &peer],
    );

    // 1. Routing with Orthanc up: the first half arrives as sent.
    orthanc.start();
    storescu(lumen_dicom, "CTSCANNER", &files[..BATCH]);
    orthanc.wait_for(BATCH, "routing", &server);
    assert_same(&orthanc.datasets(), &first_half, "routed to Orthanc");

    // 2. Orthanc stopped: the second half waits in the queue, `lumen queue` says why.
    orthanc.stop();
    storescu(lumen_dicom, "CTSCANNER", &files[BATCH..]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let summary = loop {
        let q = queue(&dir_a);
        let d = q["destinations"][0].clone();
        if d["retrying"] == json!(BATCH) {
            assert_eq!(q["entries"].as_array().map(Vec::len), Some(BATCH), "{q}");
            break d;
        }
        assert!(
            Instant::now() < deadline,
            "not queued: {q}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(summary["destination"], "ORTHANC");
    assert_eq!(summary["pending"], json!(BATCH));
    assert_eq!(summary["failed"], json!(0));
    assert!(
        summary["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("ORTHANC")),
        "{summary}"
    );
    let table = lumen(&["queue", "--data", dir_a.to_str().unwrap()]);
    let table = s(&table);
    assert!(
        table.contains("DESTINATION") && table.lines().any(|l| l.starts_with("ORTHANC")),
        "{table}"
    );

    // 3. Orthanc is back: the queue drains, everything arrived byte-identical.
    orthanc.start();
    orthanc.wait_for(2 * BATCH, "routing after Orthanc returned", &server);
    assert_same(&orthanc.datasets(), &want, "routed after Orthanc returned");
    let deadline = Instant::now() + Duration::from_secs(10);
    while queue(&dir_a)["destinations"] != json!([]) {
        assert!(
            Instant::now() < deadline,
            "queue not drained: {}",
            queue(&dir_a)
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // 4. Orthanc queries Lumen (C-FIND) and C-MOVEs the study out of it (to itself), after
    //    forgetting it.
    let orthanc_study = orthanc.get_json("/studies")[0]
        .as_str()
        .unwrap()
        .to_string();
    ureq::delete(&orthanc.url(&format!("/studies/{orthanc_study}")))
        .call()
        .expect("Orthanc delete");
    assert_eq!(orthanc.count(), 0);
    let q = orthanc.post_json(
        "/modalities/LUMEN/query",
        &json!({"Level": "Study", "Query": {"StudyInstanceUID": study, "ModalitiesInStudy": ""}}),
    );
    let qid = q["ID"].as_str().expect("query id");
    let answers = orthanc.get_json(&format!("/queries/{qid}/answers?expand&simplify"));
    assert_eq!(answers.as_array().map(Vec::len), Some(1), "{answers}");
    assert_eq!(answers[0]["StudyInstanceUID"], json!(study), "{answers}");
    assert_eq!(answers[0]["ModalitiesInStudy"], json!("CT"), "{answers}");
    orthanc.post_json(
        "/modalities/LUMEN/move",
        &json!({"Level": "Study", "Resources": [{"StudyInstanceUID": study}],
                "TargetAet": "ORTHANC", "Synchronous": true}),
    );
    orthanc.wait_for(2 * BATCH, "Orthanc's C-MOVE from Lumen", &server);
    assert_same(&orthanc.datasets(), &want, "Orthanc's C-MOVE from Lumen");
    assert!(server.log().contains("C-MOVE"), "{}", server.log());

    // 5. A fresh Lumen (same AE title and port, so Orthanc's modality entry fits) takes the
    //    study out of Orthanc: C-FIND, C-MOVE to itself, then C-GET into files.
    server.stop();
    let dir_b = tmp.path().join("lumen-b");
    let server = Server::start_on(&dir_b, lumen_http, lumen_dicom, &[]);
    let from = format!("ORTHANC@127.0.0.1:{}", orthanc.dicom_port);
    let o = lumen(&[
        "query",
        "--from",
        &from,
        "--level",
        "series",
        "-k",
        &format!("StudyInstanceUID={study}"),
        "--json",
    ]);
    assert!(o.status.success(), "lumen query: {}", s(&o));
    let found: Value = serde_json::from_slice(&o.stdout).expect("query JSON");
    assert_eq!(found.as_array().map(Vec::len), Some(1), "{found}");
    // NumberOfSeriesRelatedInstances (0020,1209), an IS (a number, or its string)
    let n = &found[0]["00201209"]["Value"][0];
    assert_eq!(
        n.to_string().trim_matches('"'),
        (2 * BATCH).to_string(),
        "{found}"
    );

    assert!(lumen_datasets(&server, &study).is_empty());
    let o = lumen(&[
        "retrieve",
        "--from",
        &from,
        "--study",
        &study,
        "--move-to",
        "LUMEN",
    ]);
    assert!(
        o.status.success(),
        "lumen retrieve --move-to: {}\n{}",
        s(&o),
        orthanc.log()
    );
    assert!(
        s(&o).contains(&format!("completed {}", 2 * BATCH)),
        "{}",
        s(&o)
    );
    assert_same(
        &lumen_datasets(&server, &study),
        &want,
        "C-MOVE from Orthanc",
    );

    let out = tmp.path().join("got");
    let o = lumen(&[
        "retrieve",
        "--from",
        &from,
        "--study",
        &study,
        "--get",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "lumen retrieve --get: {}\n{}",
        s(&o),
        orthanc.log()
    );
    let got: BTreeMap<String, Vec<u8>> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| split_part10(&std::fs::read(e.path()).unwrap()))
        .collect();
    assert_same(&got, &want, "C-GET from Orthanc");
    orthanc.stop();
}
