//! `lumen serve` with `[storage] kind = "s3"` on a real S3-compatible server (Garage,
//! started here): C-STORE and STOW-RS land in the bucket and nothing under the data
//! directory's `objects/`; QIDO-RS lists them and WADO-RS returns them byte-identical; a
//! replacement deletes the replaced key; a restart sweeps an orphan upload and keeps
//! everything indexed; `/ready` follows the bucket. Skips without Garage, DCMTK or the
//! shared data unless required.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use util::garage::Garage;
use util::*;

const BUCKET: &str = "lumen-e2e";

fn object_keys(g: &Garage) -> Vec<String> {
    g.list(BUCKET)
        .expect("listing")
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("objects/"))
        .collect()
}

fn config(g: &Garage, dir: &Path) -> PathBuf {
    let cfg = dir.join("lumen.toml");
    std::fs::write(
        &cfg,
        format!(
            "on_conflict = \"replace\"\n{}",
            g.storage_toml(BUCKET, Some(1))
        ),
    )
    .expect("config");
    cfg
}

#[test]
fn s3_storage_end_to_end() {
    let Some(data) = shared_data() else { return };
    if !have_tool("storescu") {
        return;
    }
    let Some(mut g) = Garage::start() else { return };
    g.bucket(BUCKET);
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("data");
    let cfg = config(&g, tmp.path());
    let cfg = cfg.to_str().expect("path");
    let mut server = Server::start_in(&dir, &["--config", cfg]);

    // C-STORE of the real CT series with DCMTK.
    let files = lidc_files(&data);
    let st = run(Command::new("storescu")
        .args(["-aec", "LUMEN", "127.0.0.1", &server.dicom_port.to_string()])
        .args(&files));
    assert!(
        st.status.success(),
        "storescu: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    // STOW-RS of another object.
    let sample = std::fs::read(data.join("dicom-samples/pydicom-3.0.2-test-files/CT_small.dcm"))
        .expect("sample");
    let (status, body) = stow_parts(&server, std::slice::from_ref(&sample));
    assert_eq!(status, 200, "{body}");

    // Everything is in the bucket, nothing under the data directory.
    assert_eq!(local_object_files(&dir), (0, 0));
    assert!(!dir.join("objects").exists() && !dir.join("tmp").exists());
    let keys = object_keys(&g);
    assert_eq!(keys.len(), 134, "{keys:?}");

    let check_all = |server: &Server| {
        let all = server.get_json("/dicom-web/instances?PatientID=LIDC-IDRI-0001");
        assert_eq!(all.as_array().map(Vec::len), Some(133));
        let study = all[0]["0020000D"]["Value"][0]
            .as_str()
            .expect("study")
            .to_string();
        let (status, ct, body) = server.get_raw(
            &format!("/dicom-web/studies/{study}"),
            Some("multipart/related; type=\"application/dicom\"; transfer-syntax=*"),
        );
        assert_eq!(status, 200);
        let mut got: Vec<Vec<u8>> = multipart_parts(&ct, &body)
            .iter()
            .map(|p| dataset_bytes(p).to_vec())
            .collect();
        let mut sent: Vec<Vec<u8>> = files
            .iter()
            .map(|f| dataset_bytes(&std::fs::read(f).expect("read")).to_vec())
            .collect();
        got.sort();
        sent.sort();
        assert!(got == sent, "retrieved data sets differ from those sent");
    };
    check_all(&server);

    // A different object under the stored SOP Instance UID replaces it (on_conflict =
    // "replace"): the replaced key is deleted from the bucket.
    let mut changed = sample.clone();
    let n = changed.len();
    changed[n - 2] ^= 0x0F;
    let (status, body) = stow_parts(&server, std::slice::from_ref(&changed));
    assert_eq!(status, 200, "{body}");
    let after = object_keys(&g);
    assert_eq!(after.len(), 134, "{after:?}");
    let gone: Vec<&String> = keys.iter().filter(|k| !after.contains(k)).collect();
    assert_eq!(gone.len(), 1, "exactly the replaced key goes: {gone:?}");
    let sop = gone[0]
        .rsplit('/')
        .next()
        .and_then(|f| f.rsplit_once('-'))
        .map(|(uid, _)| uid.to_string())
        .expect("key names the SOP Instance UID");
    let (status, ct, body) = server.get_raw(
        &format!("/dicom-web/instances?SOPInstanceUID={sop}"),
        Some("application/dicom+json"),
    );
    assert_eq!(status, 200, "{ct}");
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let study = v[0]["0020000D"]["Value"][0].as_str().expect("study");
    let series = v[0]["0020000E"]["Value"][0].as_str().expect("series");
    let (status, ct, body) = server.get_raw(
        &format!("/dicom-web/studies/{study}/series/{series}/instances/{sop}"),
        Some("multipart/related; type=\"application/dicom\"; transfer-syntax=*"),
    );
    assert_eq!(status, 200);
    let parts = multipart_parts(&ct, &body);
    assert_eq!(dataset_bytes(&parts[0]), dataset_bytes(&changed));

    // An upload whose commit a crash prevented, older than the orphan age (a second here):
    // the restart's sweep removes it and keeps every indexed object.
    let orphan = "objects/00/0000000000000000/2.25.999-0000000000000000.dcm";
    g.put(BUCKET, orphan, b"left by a crash".to_vec());
    assert_eq!(server.get_raw("/ready", None).0, 200);
    server.stop();
    let deadline = Instant::now() + Duration::from_secs(30);
    while g
        .list(BUCKET)
        .expect("listing")
        .iter()
        .any(|(k, t)| k == orphan && now_ms() - t < 1500)
    {
        assert!(Instant::now() < deadline, "the orphan never aged");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A restart keeps everything; readiness checks the bucket.
    let server = Server::start_in(&dir, &["--config", cfg]);
    check_all(&server);
    let deadline = Instant::now() + Duration::from_secs(30);
    while object_keys(&g).contains(&orphan.to_string()) {
        assert!(Instant::now() < deadline, "the orphan was not swept");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(object_keys(&g), after);
    assert_eq!(server.get_raw("/ready", None).0, 200);
    g.stop();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _, body) = server.get_raw("/ready", None);
        if status == 503 {
            let text = String::from_utf8_lossy(&body);
            assert!(!text.contains(&g.secret), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "/ready stayed {status}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!server.log().contains(&g.secret), "the secret was logged");
    assert_eq!(local_object_files(&dir), (0, 0));
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
