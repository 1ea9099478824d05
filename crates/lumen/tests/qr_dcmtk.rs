//! Query/retrieve over DIMSE against a real `lumen serve`, driven by DCMTK's findscu,
//! getscu and movescu (with storescp as the C-MOVE destination) and by pynetdicom.

mod util;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;
use util::*;

const N: usize = 10;

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

/// Stores the first `n` LIDC slices with storescu; returns them.
fn store_lidc(server: &Server, data: &Path, n: usize) -> Vec<PathBuf> {
    let files: Vec<PathBuf> = lidc_files(data).into_iter().take(n).collect();
    let port = server.dicom_port.to_string();
    let st = run(Command::new("storescu")
        .args(["-aec", "LUMEN", "127.0.0.1", &port])
        .args(&files));
    assert!(st.status.success(), "storescu: {}", s(&st));
    files
}

/// Runs findscu (Study Root unless `patient_root`) and returns the response identifiers.
fn findscu(
    server: &Server,
    aet: &str,
    patient_root: bool,
    keys: &[&str],
) -> (Output, Vec<DefaultDicomObject>) {
    let out = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("findscu");
    cmd.args(["-aet", aet, "-aec", "LUMEN"])
        .arg(if patient_root { "-P" } else { "-S" })
        .arg("-X")
        .arg("-od")
        .arg(out.path());
    for k in keys {
        cmd.args(["-k", k]);
    }
    cmd.arg("127.0.0.1").arg(server.dicom_port.to_string());
    let o = run(&mut cmd);
    let mut files: Vec<PathBuf> = std::fs::read_dir(out.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let objs = files
        .iter()
        .map(|p| dicom_object::open_file(p).expect("findscu response file"))
        .collect();
    (o, objs)
}

fn dataset_of_file(p: &Path) -> Vec<u8> {
    dataset_bytes(&std::fs::read(p).unwrap()).to_vec()
}

/// SOP Instance UID -> data set bytes of every file under `dir`.
fn datasets_in(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut m = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if let Ok(obj) = dicom_object::open_file(&p) {
            m.insert(attr(&obj, tags::SOP_INSTANCE_UID), dataset_of_file(&p));
        }
    }
    m
}

fn sources(files: &[PathBuf]) -> std::collections::BTreeMap<String, Vec<u8>> {
    files
        .iter()
        .map(|p| {
            let obj = dicom_object::open_file(p).unwrap();
            (attr(&obj, tags::SOP_INSTANCE_UID), dataset_of_file(p))
        })
        .collect()
}

/// A DCMTK storescp on a free port, writing into `dir`.
struct StoreScp {
    child: Child,
    port: u16,
}

impl StoreScp {
    fn start(aet: &str, dir: &Path) -> StoreScp {
        let port = free_port();
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
        StoreScp { child, port }
    }
}

impl Drop for StoreScp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// findscu at study (Study Root), patient (Patient Root), series and image level, with
/// range, wildcard, single-value and UID-list matching.
#[test]
fn qr_findscu_levels_wildcards_ranges() {
    let Some(data) = shared_data() else { return };
    if !have_tool("findscu") || !have_tool("storescu") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_in(&tmp.path().join("d"), &["--peer", "FINDSCU=127.0.0.1:104"]);
    let files = store_lidc(&server, &data, N);
    let src = dicom_object::open_file(&files[0]).unwrap();
    let study = attr(&src, tags::STUDY_INSTANCE_UID);
    let series = attr(&src, tags::SERIES_INSTANCE_UID);
    let pid = attr(&src, tags::PATIENT_ID);

    // Study level, date range.
    let (o, r) = findscu(
        &server,
        "FINDSCU",
        false,
        &[
            "QueryRetrieveLevel=STUDY",
            "StudyDate=19000101-20991231",
            "StudyInstanceUID",
            "PatientID",
            "NumberOfStudyRelatedInstances",
        ],
    );
    assert!(o.status.success(), "findscu: {}", s(&o));
    assert_eq!(r.len(), 1, "{}", s(&o));
    assert_eq!(attr(&r[0], tags::STUDY_INSTANCE_UID), study);
    assert_eq!(attr(&r[0], tags::PATIENT_ID), pid);
    assert_eq!(
        attr(&r[0], tags::NUMBER_OF_STUDY_RELATED_INSTANCES),
        N.to_string()
    );
    assert_eq!(attr(&r[0], tags::QUERY_RETRIEVE_LEVEL), "STUDY");
    // A range that excludes the study; an open-ended one that includes it.
    let (_, r) = findscu(
        &server,
        "FINDSCU",
        false,
        &[
            "QueryRetrieveLevel=STUDY",
            "StudyDate=20990101-",
            "StudyInstanceUID",
        ],
    );
    assert!(r.is_empty());
    let (_, r) = findscu(
        &server,
        "FINDSCU",
        false,
        &[
            "QueryRetrieveLevel=STUDY",
            "StudyDate=-20990101",
            "StudyInstanceUID",
        ],
    );
    assert_eq!(r.len(), 1);

    // Patient level (Patient Root), wildcard on the patient ID.
    let wild = format!("PatientID={}*", &pid[..pid.len().min(4)]);
    let (o, r) = findscu(
        &server,
        "FINDSCU",
        true,
        &[
            "QueryRetrieveLevel=PATIENT",
            &wild,
            "PatientName",
            "NumberOfPatientRelatedStudies",
        ],
    );
    assert!(o.status.success(), "findscu: {}", s(&o));
    assert_eq!(r.len(), 1, "{}", s(&o));
    assert_eq!(attr(&r[0], tags::PATIENT_ID), pid);
    assert_eq!(attr(&r[0], tags::NUMBER_OF_PATIENT_RELATED_STUDIES), "1");
    let (_, r) = findscu(
        &server,
        "FINDSCU",
        true,
        &[
            "QueryRetrieveLevel=PATIENT",
            "PatientID=NOBODY*",
            "PatientName",
        ],
    );
    assert!(r.is_empty());

    // Series level: single value on the study, `?` wildcard on the modality.
    let (o, r) = findscu(
        &server,
        "FINDSCU",
        false,
        &[
            "QueryRetrieveLevel=SERIES",
            &format!("StudyInstanceUID={study}"),
            "SeriesInstanceUID",
            "Modality=C?",
            "NumberOfSeriesRelatedInstances",
        ],
    );
    assert_eq!(r.len(), 1, "{}", s(&o));
    assert_eq!(attr(&r[0], tags::SERIES_INSTANCE_UID), series);
    assert_eq!(attr(&r[0], tags::MODALITY), "CT");
    assert_eq!(
        attr(&r[0], tags::NUMBER_OF_SERIES_RELATED_INSTANCES),
        N.to_string()
    );

    // Image level: every instance of the series, then a UID list of two.
    let (o, r) = findscu(
        &server,
        "FINDSCU",
        false,
        &[
            "QueryRetrieveLevel=IMAGE",
            &format!("SeriesInstanceUID={series}"),
            "SOPInstanceUID",
            "InstanceNumber",
        ],
    );
    assert_eq!(r.len(), N, "{}", s(&o));
    let uids: Vec<String> = r.iter().map(|o| attr(o, tags::SOP_INSTANCE_UID)).collect();
    let list = format!("SOPInstanceUID={}\\{}", uids[0], uids[3]);
    let (o, r) = findscu(
        &server,
        "FINDSCU",
        false,
        &[
            "QueryRetrieveLevel=IMAGE",
            &format!("SeriesInstanceUID={series}"),
            &list,
        ],
    );
    assert_eq!(r.len(), 2, "{}", s(&o));
}

/// An unknown calling AE title cannot query (A-ASSOCIATE-RJ, calling AE title not
/// recognized) but may still echo and store.
#[test]
fn qr_unknown_caller_rejected() {
    if !have_tool("findscu") || !have_tool("echoscu") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_in(&tmp.path().join("d"), &["--peer", "FRIEND=127.0.0.1:104"]);
    let (o, r) = findscu(
        &server,
        "STRANGER",
        false,
        &["QueryRetrieveLevel=STUDY", "StudyInstanceUID"],
    );
    assert!(!o.status.success(), "findscu from an unknown AE succeeded");
    assert!(r.is_empty());
    assert!(
        s(&o).contains("Calling AE Title Not Recognized"),
        "{}",
        s(&o)
    );
    let port = server.dicom_port.to_string();
    let echo = run(Command::new("echoscu").args([
        "-aet",
        "STRANGER",
        "-aec",
        "LUMEN",
        "127.0.0.1",
        &port,
    ]));
    assert!(echo.status.success(), "echoscu: {}", s(&echo));
    let (o, _) = findscu(
        &server,
        "FRIEND",
        false,
        &["QueryRetrieveLevel=STUDY", "StudyInstanceUID"],
    );
    assert!(o.status.success(), "findscu from a peer: {}", s(&o));
    assert!(server.log().contains("association rejected"));
}

/// getscu retrieves a series over the same association; the data sets are byte-identical.
#[test]
fn qr_getscu_series_byte_identical() {
    let Some(data) = shared_data() else { return };
    if !have_tool("getscu") || !have_tool("storescu") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_in(&tmp.path().join("d"), &["--peer", "GETSCU=127.0.0.1:104"]);
    let files = store_lidc(&server, &data, N);
    let src = dicom_object::open_file(&files[0]).unwrap();
    let out = tmp.path().join("got");
    std::fs::create_dir_all(&out).unwrap();
    let o = run(Command::new("getscu")
        .args(["-aet", "GETSCU", "-aec", "LUMEN", "-S", "-od"])
        .arg(&out)
        .args(["-k", "QueryRetrieveLevel=SERIES"])
        .args([
            "-k",
            &format!("StudyInstanceUID={}", attr(&src, tags::STUDY_INSTANCE_UID)),
        ])
        .args([
            "-k",
            &format!(
                "SeriesInstanceUID={}",
                attr(&src, tags::SERIES_INSTANCE_UID)
            ),
        ])
        .arg("127.0.0.1")
        .arg(server.dicom_port.to_string()));
    assert!(o.status.success(), "getscu: {}", s(&o));
    assert_eq!(datasets_in(&out), sources(&files));
    // Image level, one instance.
    let out1 = tmp.path().join("got1");
    std::fs::create_dir_all(&out1).unwrap();
    let o = run(Command::new("getscu")
        .args(["-aet", "GETSCU", "-aec", "LUMEN", "-S", "-od"])
        .arg(&out1)
        .args(["-k", "QueryRetrieveLevel=IMAGE"])
        .args([
            "-k",
            &format!("StudyInstanceUID={}", attr(&src, tags::STUDY_INSTANCE_UID)),
        ])
        .args([
            "-k",
            &format!(
                "SeriesInstanceUID={}",
                attr(&src, tags::SERIES_INSTANCE_UID)
            ),
        ])
        .args([
            "-k",
            &format!("SOPInstanceUID={}", attr(&src, tags::SOP_INSTANCE_UID)),
        ])
        .arg("127.0.0.1")
        .arg(server.dicom_port.to_string()));
    assert!(o.status.success(), "getscu: {}", s(&o));
    assert_eq!(datasets_in(&out1).len(), 1);
    // An unknown caller cannot retrieve.
    let o = run(Command::new("getscu")
        .args(["-aet", "STRANGER", "-aec", "LUMEN", "-S", "-od"])
        .arg(&out1)
        .args(["-k", "QueryRetrieveLevel=STUDY"])
        .args([
            "-k",
            &format!("StudyInstanceUID={}", attr(&src, tags::STUDY_INSTANCE_UID)),
        ])
        .arg("127.0.0.1")
        .arg(server.dicom_port.to_string()));
    assert!(
        !o.status.success() || s(&o).contains("Not Recognized"),
        "{}",
        s(&o)
    );
}

/// movescu moves a study to a storescp declared as a peer; byte-identical at the other end.
/// An undeclared destination is refused (A801).
#[test]
fn qr_movescu_to_storescp_byte_identical() {
    let Some(data) = shared_data() else { return };
    if !have_tool("movescu") || !have_tool("storescp") || !have_tool("storescu") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("moved");
    std::fs::create_dir_all(&out).unwrap();
    let scp = StoreScp::start("DEST", &out);
    let dest = format!("DEST=127.0.0.1:{}", scp.port);
    let server = Server::start_in(
        &tmp.path().join("d"),
        &["--peer", &dest, "--peer", "MOVESCU=127.0.0.1:104"],
    );
    let files = store_lidc(&server, &data, N);
    let src = dicom_object::open_file(&files[0]).unwrap();
    let study = format!("StudyInstanceUID={}", attr(&src, tags::STUDY_INSTANCE_UID));
    let o = run(Command::new("movescu")
        .args(["-aet", "MOVESCU", "-aec", "LUMEN", "-aem", "DEST", "-S"])
        .args(["-k", "QueryRetrieveLevel=STUDY", "-k", &study])
        .arg("127.0.0.1")
        .arg(server.dicom_port.to_string()));
    assert!(o.status.success(), "movescu: {}", s(&o));
    assert_eq!(datasets_in(&out), sources(&files));

    let o = run(Command::new("movescu")
        .args([
            "-v", "-aet", "MOVESCU", "-aec", "LUMEN", "-aem", "NOWHERE", "-S",
        ])
        .args(["-k", "QueryRetrieveLevel=STUDY", "-k", &study])
        .arg("127.0.0.1")
        .arg(server.dicom_port.to_string()));
    let text = s(&o).to_lowercase();
    assert!(
        text.contains("a801") || text.contains("movedestinationunknown"),
        "{text}"
    );
}

/// pynetdicom: C-FIND with a wildcard on the patient name at study level, then C-GET of the
/// series with SCP role selection; byte-identical data sets.
#[test]
fn qr_pynetdicom_find_get() {
    let Some(data) = shared_data() else { return };
    let Some(py) = python() else { return };
    if !have_tool("storescu") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        &tmp.path().join("d"),
        &["--peer", "PYNETDICOM=127.0.0.1:104"],
    );
    let files = store_lidc(&server, &data, N);
    let src = dicom_object::open_file(&files[0]).unwrap();
    let name = attr(&src, tags::PATIENT_NAME);
    let script = tmp.path().join("qr.py");
    std::fs::write(&script, PY_SCRIPT).unwrap();
    let out = tmp.path().join("got");
    std::fs::create_dir_all(&out).unwrap();
    let o = run(Command::new(&py)
        .arg(&script)
        .arg(server.dicom_port.to_string())
        .arg(format!("{}*", &name[..name.len().min(3)]))
        .arg(attr(&src, tags::SERIES_INSTANCE_UID))
        .arg(&out));
    let text = s(&o);
    assert!(o.status.success(), "python: {text}");
    assert!(text.contains("FIND 1 0000"), "{text}");
    assert!(text.contains(&format!("GET {N} 0000")), "{text}");
    let (got, want) = (datasets_in(&out), sources(&files));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    assert!(got == want, "retrieved data sets differ from the sources");
}

const PY_SCRIPT: &str = r#"
import sys, os
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE, evt, build_role
from pynetdicom.sop_class import (StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet, CTImageStorage)

port = int(sys.argv[1]); pattern = sys.argv[2]; series = sys.argv[3]; out = sys.argv[4]
ae = AE(ae_title="PYNETDICOM")
ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
# Only the stored syntax, so that instances come back exactly as stored (untranscoded).
ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)

def on_store(event):
    # The received bytes as they came (preamble, file meta, then the raw data set).
    with open(os.path.join(out, event.request.AffectedSOPInstanceUID), "wb") as f:
        f.write(event.encoded_dataset())
    return 0x0000

assoc = ae.associate("127.0.0.1", port, ae_title="LUMEN",
                     ext_neg=[build_role(CTImageStorage, scp_role=True)],
                     evt_handlers=[(evt.EVT_C_STORE, on_store)])
assert assoc.is_established
q = Dataset(); q.QueryRetrieveLevel = "STUDY"; q.PatientName = pattern
q.StudyInstanceUID = ""; q.StudyDate = ""
n = 0; last = None
for status, ident in assoc.send_c_find(q, StudyRootQueryRetrieveInformationModelFind):
    last = status.Status
    if status.Status in (0xFF00, 0xFF01): n += 1
print("FIND %d %04X" % (n, last))

q = Dataset(); q.QueryRetrieveLevel = "SERIES"; q.SeriesInstanceUID = series
last = None; done = 0
for status, ident in assoc.send_c_get(q, StudyRootQueryRetrieveInformationModelGet):
    last = status.Status
    if "NumberOfCompletedSuboperations" in status:
        done = status.NumberOfCompletedSuboperations
print("GET %d %04X" % (done, last))

assoc.release()
"#;

/// `lumen send` C-STOREs files to DCMTK storescp; the data sets arrive byte-identical.
#[test]
fn qr_lumen_send_to_storescp() {
    let Some(data) = shared_data() else { return };
    if !have_tool("storescp") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("recv");
    std::fs::create_dir_all(&out).unwrap();
    let scp = StoreScp::start("RECV", &out);
    let files: Vec<PathBuf> = lidc_files(&data).into_iter().take(N).collect();
    let o = run(Command::new(lumen_bin())
        .arg("send")
        .arg("--to")
        .arg(format!("RECV@127.0.0.1:{}", scp.port))
        .args(&files));
    assert!(o.status.success(), "lumen send: {}", s(&o));
    assert_eq!(datasets_in(&out), sources(&files));
}

/// A C-CANCEL during a C-GET (pynetdicom sends it while it stores the third instance):
/// Lumen stops after the sub-operation in flight and answers Cancel (FE00) with the counts.
#[test]
fn qr_pynetdicom_get_cancelled() {
    let Some(data) = shared_data() else { return };
    let Some(py) = python() else { return };
    if !have_tool("storescu") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        &tmp.path().join("d"),
        &["--peer", "PYNETDICOM=127.0.0.1:104"],
    );
    let files = store_lidc(&server, &data, N);
    let src = dicom_object::open_file(&files[0]).unwrap();
    let script = tmp.path().join("cancel.py");
    std::fs::write(&script, PY_CANCEL).unwrap();
    let o = run(Command::new(&py)
        .arg(&script)
        .arg(server.dicom_port.to_string())
        .arg(attr(&src, tags::SERIES_INSTANCE_UID)));
    let text = s(&o);
    assert!(o.status.success(), "python: {text}");
    // Three stored by the client, then the final response: Cancel, 3 completed, the rest
    // remaining.
    assert!(
        text.contains(&format!(
            "STORED 3 FINAL FE00 completed 3 remaining {}",
            N - 3
        )),
        "{text}\n{}",
        server.log()
    );
    assert!(server.log().contains("C-GET cancelled"), "{}", server.log());
}

const PY_CANCEL: &str = r#"
import sys
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE, evt, build_role
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet, CTImageStorage

port = int(sys.argv[1]); series = sys.argv[2]
ae = AE(ae_title="PYNETDICOM")
ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
stored = 0

def on_store(event):
    global stored
    stored += 1
    if stored == 3:
        # Queued before this C-STORE's response.
        event.assoc.send_c_cancel(1, query_model=StudyRootQueryRetrieveInformationModelGet)
    return 0x0000

assoc = ae.associate("127.0.0.1", port, ae_title="LUMEN",
                     ext_neg=[build_role(CTImageStorage, scp_role=True)],
                     evt_handlers=[(evt.EVT_C_STORE, on_store)])
assert assoc.is_established
q = Dataset(); q.QueryRetrieveLevel = "SERIES"; q.SeriesInstanceUID = series
final = None
for status, ident in assoc.send_c_get(q, StudyRootQueryRetrieveInformationModelGet, msg_id=1):
    if status and status.Status not in (0xFF00, 0xFF01):
        final = status
print("STORED %d FINAL %04X completed %s remaining %s" % (
    stored, final.Status, final.get("NumberOfCompletedSuboperations"),
    final.get("NumberOfRemainingSuboperations")))
assoc.release()
"#;
