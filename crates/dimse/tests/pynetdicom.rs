//! pynetdicom as SCU against our SCP (Python from `LUMEN_PYTHON`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use lumen_dimse::ServerConfig;

async fn pynetdicom_store(
    addr: std::net::SocketAddr,
    max_pdu: u32,
    files: &[PathBuf],
) -> Option<String> {
    let py = python()?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pynetdicom_scu.py");
    let mut c = Command::new(py);
    c.arg(script)
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .arg("LUMEN")
        .arg(max_pdu.to_string())
        .args(files);
    let (ok, out) = run(c).await;
    assert!(ok, "pynetdicom script failed: {out}");
    Some(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pynetdicom_echo_and_store_byte_identical() {
    let (addr, h) = start(ServerConfig::default()).await;
    let mut files: Vec<PathBuf> = [
        "pydicom-3.0.2-test-files/CT_small.dcm",
        "pydicom-3.0.2-test-files/MR_small.dcm",
        "pydicom-3.0.2-test-files/MR_small_implicit.dcm",
        "pydicom-3.0.2-test-files/MR_small_bigendian.dcm",
        "pydicom-3.0.2-test-files/MR_small_RLE.dcm",
        "pydicom-3.0.2-test-files/MR_small_jpeg_ls_lossless.dcm",
        // Not image_dfl.dcm: pynetdicom re-deflates deflated data sets, so their bytes
        // differ from the file (our own SCU test covers deflate byte for byte).
        "nema-wg04-compression/J2KR/CT1_J2KR",
        "orthanc-tests-picks/sample-pdf.dcm",
        "dcmqi-examples/segmentations/liver.dcm",
        "dcmqi-examples/sr-example/sr.dcm",
    ]
    .iter()
    .map(|f| sample(f))
    .collect();
    files.extend(lidc_files().into_iter().take(10));
    let Some(out) = pynetdicom_store(addr, 16384, &files).await else {
        return;
    };
    assert!(out.contains("\"echo\": 0"), "{out}");
    assert_eq!(out.matches(", 0]").count(), files.len(), "{out}");
    assert_eq!(h.digests(), expected(&files));
    wait_ended(&h, 1).await;
    assert!(h.received().iter().all(|r| r.calling_ae == "PYNETDICOM"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pynetdicom_unlimited_pdu() {
    // pynetdicom treats 0 as "no limit": our SCP must fragment by its own bound.
    let (addr, h) = start(ServerConfig::default()).await;
    let files: Vec<PathBuf> = lidc_files().into_iter().take(5).collect();
    let Some(out) = pynetdicom_store(addr, 0, &files).await else {
        return;
    };
    assert_eq!(out.matches(", 0]").count(), files.len(), "{out}");
    assert_eq!(h.digests(), expected(&files));
}
