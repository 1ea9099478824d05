//! DCMTK `echoscu` and `storescu` against our SCP.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use lumen_dimse::ServerConfig;

fn storescu(
    bin: &PathBuf,
    addr: std::net::SocketAddr,
    extra: &[&str],
    files: &[PathBuf],
) -> Command {
    let mut c = Command::new(bin);
    c.args(["-aet", "DCMTKSCU", "-aec", "LUMEN"]);
    c.args(extra);
    c.arg(addr.ip().to_string()).arg(addr.port().to_string());
    c.args(files);
    c
}

/// What DCMTK's storescu actually puts on the wire for `files`: storescu re-encodes data
/// sets (e.g. undefined-length sequences become explicit), so for such files the reference
/// is what DCMTK's own storescp receives bit-preserving (`+B`), not the source file.
async fn wire_reference(flags: &[&str], files: &[PathBuf]) -> Option<Vec<(String, String)>> {
    let scp = dcmtk("storescp")?;
    let scu = dcmtk("storescu")?;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(scp)
        .args(["-aet", "LUMEN", "+xa", "+B", "-od"])
        .arg(dir.path())
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let (ok, out) = run(storescu(&scu, addr, flags, files)).await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "storescu to storescp failed: {out}");
    let stored: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(stored.len(), files.len());
    Some(sorted(expected(&stored)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoscu_verifies() {
    let Some(bin) = dcmtk("echoscu") else { return };
    let (addr, h) = start(ServerConfig::default()).await;
    let mut c = Command::new(bin);
    c.args([
        "-aec",
        "LUMEN",
        &addr.ip().to_string(),
        &addr.port().to_string(),
    ]);
    let (ok, out) = run(c).await;
    assert!(ok, "echoscu failed: {out}");
    wait_ended(&h, 1).await;
    assert!(!h.ended()[0].aborted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoscu_wrong_called_ae_is_rejected() {
    let Some(bin) = dcmtk("echoscu") else { return };
    let (addr, _h) = start(ServerConfig::default()).await;
    let mut c = Command::new(bin);
    c.args([
        "-aec",
        "SOMEONE",
        &addr.ip().to_string(),
        &addr.port().to_string(),
    ]);
    let (ok, out) = run(c).await;
    assert!(!ok, "echoscu should fail: {out}");
    assert!(
        out.contains("Called AE Title Not Recognized"),
        "unexpected output: {out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storescu_lidc_series_one_association() {
    let Some(bin) = dcmtk("storescu") else { return };
    let (addr, h) = start(ServerConfig::default()).await;
    let files = lidc_files();
    assert_eq!(files.len(), 133);
    let t = Instant::now();
    let (ok, out) = run(storescu(&bin, addr, &[], &files)).await;
    let secs = t.elapsed().as_secs_f64();
    assert!(ok, "storescu failed: {out}");
    eprintln!(
        "storescu: {} instances in {secs:.2} s = {:.0} inst/s (debug build unless --release)",
        files.len(),
        files.len() as f64 / secs
    );
    assert_eq!(h.digests(), expected(&files));
    wait_ended(&h, 1).await;
    let s = &h.ended()[0];
    assert_eq!((s.stored, s.failed, s.aborted), (133, 0, false));
    assert!(h.received().iter().all(|r| r.calling_ae == "DCMTKSCU"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storescu_concurrent_associations() {
    let Some(bin) = dcmtk("storescu") else { return };
    let (addr, h) = start(ServerConfig::default()).await;
    let files = lidc_files();
    let mut runs = vec![];
    for chunk in files.chunks(34) {
        runs.push(tokio::spawn(run(storescu(&bin, addr, &[], chunk))));
    }
    for r in runs {
        let (ok, out) = r.await.unwrap();
        assert!(ok, "storescu failed: {out}");
    }
    assert_eq!(sorted(h.digests()), sorted(expected(&files)));
    wait_ended(&h, 4).await;
}

/// storescu proposing compressed transfer syntaxes for files already compressed in them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storescu_compressed_proposals() {
    let Some(bin) = dcmtk("storescu") else { return };
    let (addr, h) = start(ServerConfig::default()).await;
    let cases: [(&str, &str, &str); 4] = [
        ("-xs", "JPLL", "1.2.840.10008.1.2.4.70"),
        ("-xv", "J2KR", "1.2.840.10008.1.2.4.90"),
        ("-xt", "JLSL", "1.2.840.10008.1.2.4.80"),
        ("-xr", "RLE", "1.2.840.10008.1.2.5"),
    ];
    let mut want = vec![];
    for (flag, dir, ts) in cases {
        let files: Vec<PathBuf> = ["CT1", "MR1", "NM1"]
            .iter()
            .map(|n| sample(&format!("nema-wg04-compression/{dir}/{n}_{dir}")))
            .collect();
        for f in &files {
            assert_eq!(split_part10(f).1, ts, "{}", f.display());
        }
        let (ok, out) = run(storescu(&bin, addr, &[flag, "-R"], &files)).await;
        assert!(ok, "storescu {flag} failed: {out}");
        want.extend(wire_reference(&[flag, "-R"], &files).await.unwrap());
    }
    assert_eq!(sorted(h.digests()), sorted(want));
    for r in h.received() {
        assert!(
            r.transfer_syntax_uid.starts_with("1.2.840.10008.1.2.4")
                || r.transfer_syntax_uid == "1.2.840.10008.1.2.5"
        );
    }
}

/// storescu with a small PDU and assorted objects (SR, SEG, PDF, RT, deflate, big endian).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storescu_assorted_objects_small_pdu() {
    let Some(bin) = dcmtk("storescu") else { return };
    let (addr, h) = start(ServerConfig {
        max_pdu_length: 8192,
        ..ServerConfig::default()
    })
    .await;
    let files: Vec<PathBuf> = [
        "pydicom-3.0.2-test-files/CT_small.dcm",
        "pydicom-3.0.2-test-files/MR_small_implicit.dcm",
        "pydicom-3.0.2-test-files/rtplan.dcm",
        "pydicom-3.0.2-test-files/test-SR.dcm",
        "orthanc-tests-picks/sample-pdf.dcm",
        "dcmqi-examples/segmentations/liver.dcm",
        "dcmqi-examples/sr-example/sr.dcm",
        "orthanc-tests-picks/lctsc-rth/RT.dcm",
    ]
    .iter()
    .map(|f| sample(f))
    .collect();
    let flags = ["-R", "-pdu", "16384"];
    let (ok, out) = run(storescu(&bin, addr, &flags, &files)).await;
    assert!(ok, "storescu failed: {out}");
    let Some(want) = wire_reference(&flags, &files).await else {
        return;
    };
    assert_eq!(sorted(h.digests()), want);
}

/// Our StoreScu against DCMTK's storescp (bit-preserving, small PDU): interop of the SCU side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_scu_to_dcmtk_storescp() {
    use lumen_dimse::{Part10Info, ScuConfig, StoreScu, proposals_for};
    let Some(scp) = dcmtk("storescp") else { return };
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(scp)
        .args(["-aet", "DCMTKSCP", "+xa", "+B", "-pdu", "8192", "-od"])
        .arg(dir.path())
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut files: Vec<PathBuf> = lidc_files().into_iter().take(5).collect();
    files.extend(
        [
            "pydicom-3.0.2-test-files/MR_small_RLE.dcm",
            "nema-wg04-compression/JPLL/CT1_JPLL",
            "dcmqi-examples/segmentations/liver.dcm",
        ]
        .iter()
        .map(|f| sample(f)),
    );
    let blobs: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let infos: Vec<Part10Info> = blobs
        .iter()
        .map(|b| Part10Info::parse(b).unwrap())
        .collect();
    let proposals = proposals_for(
        infos
            .iter()
            .map(|i| (i.sop_class_uid.as_str(), i.transfer_syntax_uid.as_str())),
    );
    let cfg = ScuConfig {
        called_ae_title: "DCMTKSCP".into(),
        ..ScuConfig::default()
    };
    let mut scu = StoreScu::connect(("127.0.0.1", port), &cfg, &proposals)
        .await
        .unwrap();
    assert_eq!(scu.peer_max_pdu_length(), 8192);
    assert_eq!(scu.echo().await.unwrap(), 0);
    for b in &blobs {
        assert_eq!(scu.store_part10(b).await.unwrap().status, 0);
    }
    scu.release().await.unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let stored: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(sorted(expected(&stored)), sorted(expected(&files)));
}
