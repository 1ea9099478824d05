//! `lumen query` and `lumen retrieve` (Lumen as C-FIND/C-GET/C-MOVE SCU) against a real
//! `lumen serve` holding LIDC slices stored with DCMTK's storescu, with DCMTK's storescp as
//! the C-MOVE destination.

mod util;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;
use util::*;

const N: usize = 6;

fn s(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn attr(obj: &DefaultDicomObject, tag: dicom_object::Tag) -> String {
    obj.element(tag)
        .ok()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
        .unwrap_or_default()
}

fn store_lidc(server: &Server, data: &Path, n: usize) -> Vec<PathBuf> {
    let files: Vec<PathBuf> = lidc_files(data).into_iter().take(n).collect();
    let port = server.dicom_port.to_string();
    let st = run(Command::new("storescu")
        .args(["-aec", "LUMEN", "127.0.0.1", &port])
        .args(&files));
    assert!(st.status.success(), "storescu: {}", s(&st));
    files
}

/// SOP Instance UID -> data set bytes of every Part-10 file under `dir`.
fn datasets_in(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if let Ok(obj) = dicom_object::open_file(&p) {
            let bytes = std::fs::read(&p).unwrap();
            m.insert(
                attr(&obj, tags::SOP_INSTANCE_UID),
                dataset_bytes(&bytes).to_vec(),
            );
        }
    }
    m
}

fn sources(files: &[PathBuf]) -> BTreeMap<String, Vec<u8>> {
    files
        .iter()
        .map(|p| {
            let obj = dicom_object::open_file(p).unwrap();
            let bytes = std::fs::read(p).unwrap();
            (
                attr(&obj, tags::SOP_INSTANCE_UID),
                dataset_bytes(&bytes).to_vec(),
            )
        })
        .collect()
}

fn lumen(args: &[&str]) -> Output {
    run(Command::new(lumen_bin()).args(args))
}

struct StoreScp(Child);

impl StoreScp {
    fn start(aet: &str, dir: &Path, port: u16) -> StoreScp {
        let child = Command::new("storescp")
            .args(["-aet", aet, "-od"])
            .arg(dir)
            .arg(port.to_string())
            .spawn()
            .expect("storescp");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "storescp did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        StoreScp(child)
    }
}

impl Drop for StoreScp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ready() -> Option<PathBuf> {
    let data = shared_data()?;
    (have_tool("storescu") && have_tool("storescp")).then_some(data)
}

/// `lumen query`: a wildcard on the patient ID plus a date range finds the study (table and
/// JSON); a range that excludes it finds nothing; series and image levels list the slices.
#[test]
fn qr_scu_query_wildcard_and_date_range() {
    let Some(data) = ready() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_in(&tmp.path().join("d"), &["--peer", "QRSCU=127.0.0.1:104"]);
    let files = store_lidc(&server, &data, N);
    let src = dicom_object::open_file(&files[0]).unwrap();
    let study = attr(&src, tags::STUDY_INSTANCE_UID);
    let series = attr(&src, tags::SERIES_INSTANCE_UID);
    let pid = attr(&src, tags::PATIENT_ID);
    let from = format!("LUMEN@127.0.0.1:{}", server.dicom_port);
    let wild = format!("PatientID={}*", &pid[..pid.len().min(4)]);

    let o = lumen(&[
        "query",
        "--from",
        &from,
        "--aet",
        "QRSCU",
        "-k",
        &wild,
        "-k",
        "StudyDate=19000101-20991231",
    ]);
    assert!(o.status.success(), "{}", s(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("PatientID"), "{out}");
    assert!(
        lines[1].contains(&study) && lines[1].contains(&pid),
        "{out}"
    );
    assert!(lines[1].contains(&format!(" {N}")), "{out}");

    let o = lumen(&[
        "query", "--from", &from, "--aet", "QRSCU", "-k", &wild, "--json",
    ]);
    assert!(o.status.success(), "{}", s(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 1);
    assert_eq!(arr[0]["0020000D"]["Value"][0], study.as_str());

    let o = lumen(&[
        "query",
        "--from",
        &from,
        "--aet",
        "QRSCU",
        "-k",
        &wild,
        "-k",
        "StudyDate=20990101-",
    ]);
    assert!(o.status.success(), "{}", s(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 1);

    let o = lumen(&[
        "query",
        "--from",
        &from,
        "--aet",
        "QRSCU",
        "--level",
        "image",
        "-k",
        &format!("StudyInstanceUID={study}"),
        "-k",
        &format!("SeriesInstanceUID={series}"),
    ]);
    assert!(o.status.success(), "{}", s(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), N + 1);

    // An unknown caller is refused C-FIND (peers only by default), and says so.
    let o = lumen(&["query", "--from", &from, "--aet", "STRANGER"]);
    assert!(!o.status.success(), "{}", s(&o));
}

/// `lumen retrieve --get`: a series comes back over C-GET byte-identical as Part-10 files
/// (looked up by series UID alone), and is ingested into another archive with --data; the
/// running server's own data directory is refused as in use.
#[test]
fn qr_scu_retrieve_get_series_byte_identical() {
    let Some(data) = ready() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_in(&tmp.path().join("d"), &["--peer", "QRSCU=127.0.0.1:104"]);
    let files = store_lidc(&server, &data, N);
    let src = dicom_object::open_file(&files[0]).unwrap();
    let series = attr(&src, tags::SERIES_INSTANCE_UID);
    let from = format!("LUMEN@127.0.0.1:{}", server.dicom_port);
    let out = tmp.path().join("got");
    let o = lumen(&[
        "retrieve",
        "--from",
        &from,
        "--aet",
        "QRSCU",
        "--series",
        &series,
        "--get",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", s(&o));
    assert!(
        s(&o).contains(&format!("completed {N}, failed 0")),
        "{}",
        s(&o)
    );
    assert_eq!(datasets_in(&out), sources(&files));
    assert!(
        std::fs::read_dir(&out)
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().ends_with(".tmp"))
    );

    let other = tmp.path().join("other");
    let o = lumen(&[
        "retrieve",
        "--from",
        &from,
        "--aet",
        "QRSCU",
        "--series",
        &series,
        "--get",
        "--data",
        other.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", s(&o));
    assert_eq!(object_files(&other).0, N);

    let o = lumen(&[
        "retrieve",
        "--from",
        &from,
        "--aet",
        "QRSCU",
        "--series",
        &series,
        "--get",
        "--data",
        server.data.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(s(&o).contains("in use"), "{}", s(&o));
}

/// `lumen retrieve --move-to`: the study goes to a storescp the server knows as a peer,
/// byte-identical; an unknown destination fails with A801.
#[test]
fn qr_scu_retrieve_move_to_storescp() {
    let Some(data) = ready() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let moved = tmp.path().join("moved");
    std::fs::create_dir_all(&moved).unwrap();
    let port = free_port();
    let _scp = StoreScp::start("DEST", &moved, port);
    let dest = format!("DEST=127.0.0.1:{port}");
    let server = Server::start_in(
        &tmp.path().join("d"),
        &["--peer", &dest, "--peer", "QRSCU=127.0.0.1:104"],
    );
    let files = store_lidc(&server, &data, N);
    let src = dicom_object::open_file(&files[0]).unwrap();
    let study = attr(&src, tags::STUDY_INSTANCE_UID);
    let from = format!("LUMEN@127.0.0.1:{}", server.dicom_port);
    let o = lumen(&[
        "retrieve",
        "--from",
        &from,
        "--aet",
        "QRSCU",
        "--study",
        &study,
        "--move-to",
        "DEST",
    ]);
    assert!(o.status.success(), "{}", s(&o));
    assert!(
        s(&o).contains(&format!("completed {N}, failed 0")),
        "{}",
        s(&o)
    );
    assert_eq!(datasets_in(&moved), sources(&files));

    let o = lumen(&[
        "retrieve",
        "--from",
        &from,
        "--aet",
        "QRSCU",
        "--study",
        &study,
        "--move-to",
        "NOWHERE",
    ]);
    assert!(!o.status.success());
    assert!(s(&o).contains("A801"), "{}", s(&o));
}

/// Against DCMTK's own archive (dcmqrscp): `lumen query` finds the study, `lumen retrieve
/// --get` brings a series back byte-identical, `--move-to` sends it to a storescp.
#[test]
fn qr_scu_against_dcmqrscp() {
    let Some(data) = ready() else { return };
    if !have_tool("dcmqrscp") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let moved = tmp.path().join("moved");
    std::fs::create_dir_all(&db).unwrap();
    std::fs::create_dir_all(&moved).unwrap();
    let (port, dest_port) = (free_port(), free_port());
    let cfg = tmp.path().join("dcmqrscp.cfg");
    std::fs::write(
        &cfg,
        format!(
            "NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 16\n\
             HostTable BEGIN\ndest = (DEST, 127.0.0.1, {dest_port})\nHostTable END\n\
             VendorTable BEGIN\nVendorTable END\n\
             AETable BEGIN\nDCMQR {} RW (200, 1024mb) ANY\nAETable END\n",
            db.display()
        ),
    )
    .unwrap();
    let child = Command::new("dcmqrscp")
        .arg("-c")
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("dcmqrscp");
    let _qr = StoreScp(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "dcmqrscp did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let files: Vec<PathBuf> = lidc_files(&data).into_iter().take(N).collect();
    let o = run(Command::new("storescu")
        .args(["-aec", "DCMQR", "127.0.0.1"])
        .arg(port.to_string())
        .args(&files));
    assert!(o.status.success(), "storescu: {}", s(&o));
    let src = dicom_object::open_file(&files[0]).unwrap();
    let study = attr(&src, tags::STUDY_INSTANCE_UID);
    let series = attr(&src, tags::SERIES_INSTANCE_UID);
    let from = format!("DCMQR@127.0.0.1:{port}");

    let o = lumen(&["query", "--from", &from, "-k", "PatientID=LIDC*"]);
    assert!(o.status.success(), "{}", s(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains(&study), "{out}");

    let got = tmp.path().join("got");
    let o = lumen(&[
        "retrieve",
        "--from",
        &from,
        "--series",
        &series,
        "--get",
        "--out",
        got.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", s(&o));
    assert_eq!(datasets_in(&got), sources(&files));

    let _scp = StoreScp::start("DEST", &moved, dest_port);
    let o = lumen(&[
        "retrieve",
        "--from",
        &from,
        "--study",
        &study,
        "--move-to",
        "DEST",
    ]);
    assert!(o.status.success(), "{}", s(&o));
    assert_eq!(datasets_in(&moved), sources(&files));
}
