//! Helpers shared by the integration tests: sample data, an in-memory handler, external tools.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lumen_dimse::{
    AssociationSummary, Server, ServerConfig, StoreHandler, StoreOutcome, StoreRequest,
};
use sha2::{Digest, Sha256};

/// `../shared/data` relative to the project root (or `LUMEN_DATA_DIR`); panics clearly if absent.
pub fn data_dir() -> PathBuf {
    let dir = std::env::var_os("LUMEN_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    assert!(
        dir.join("README.md").exists(),
        "sample data not found at {} (expected ../shared/data next to the project root, \
         or set LUMEN_DATA_DIR)",
        dir.display()
    );
    dir
}

/// A file under `dicom-samples/`.
pub fn sample(rel: &str) -> PathBuf {
    data_dir().join("dicom-samples").join(rel)
}

/// The 133 LIDC-IDRI CT slices.
pub fn lidc_files() -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(data_dir().join("lidc-idri-0001/ct"))
        .expect("lidc-idri-0001/ct")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .collect();
    v.sort();
    v
}

/// Split a Part-10 file with dicom-object's meta reader (independent of the crate's own
/// meta walk): (SOP instance UID, transfer syntax, data set bytes).
pub fn split_part10(path: &Path) -> (String, String, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let meta = dicom_object::meta::FileMetaTable::from_reader(&bytes[128..]).unwrap();
    let offset = 132 + 12 + meta.information_group_length as usize;
    let uid = meta
        .media_storage_sop_instance_uid()
        .trim_end_matches('\0')
        .to_string();
    let ts = meta.transfer_syntax().to_string();
    (uid, ts, bytes[offset..].to_vec())
}

/// sha256 of bytes, hex.
pub fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// (instance UID, data set sha256) of files, in order. A list, not a map: several sample
/// files share one SOP Instance UID in different transfer syntaxes.
pub fn expected(files: &[PathBuf]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|f| {
            let (uid, _, ds) = split_part10(f);
            (uid, sha(&ds))
        })
        .collect()
}

/// What the in-memory handler kept of one C-STORE.
#[derive(Debug, Clone)]
pub struct Received {
    pub calling_ae: String,
    pub called_ae: String,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub transfer_syntax_uid: String,
    pub sha256: String,
    pub len: usize,
}

/// An in-memory [`StoreHandler`] recording every request.
#[derive(Default)]
pub struct MemHandler {
    pub received: Mutex<Vec<Received>>,
    pub ended: Mutex<Vec<AssociationSummary>>,
    pub outcome: Mutex<Option<StoreOutcome>>,
}

impl MemHandler {
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// (instance UID, sha256) of everything received, in order of arrival.
    pub fn digests(&self) -> Vec<(String, String)> {
        self.received()
            .into_iter()
            .map(|r| (r.sop_instance_uid, r.sha256))
            .collect()
    }

    pub fn ended(&self) -> Vec<AssociationSummary> {
        self.ended.lock().unwrap().clone()
    }
}

impl StoreHandler for MemHandler {
    async fn store(&self, req: StoreRequest) -> StoreOutcome {
        self.received.lock().unwrap().push(Received {
            calling_ae: req.calling_ae,
            called_ae: req.called_ae,
            sop_class_uid: req.sop_class_uid,
            sop_instance_uid: req.sop_instance_uid,
            transfer_syntax_uid: req.transfer_syntax_uid,
            sha256: sha(&req.dataset),
            len: req.dataset.len(),
        });
        self.outcome
            .lock()
            .unwrap()
            .clone()
            .unwrap_or(StoreOutcome::Success)
    }

    fn association_ended(&self, summary: &AssociationSummary) {
        self.ended.lock().unwrap().push(summary.clone());
    }
}

/// Start a server on 127.0.0.1:0 with an in-memory handler.
pub async fn start(config: ServerConfig) -> (SocketAddr, Arc<MemHandler>) {
    init_tracing();
    let handler = Arc::new(MemHandler::default());
    let server = Server::bind("127.0.0.1:0", config, handler.clone())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.run());
    (addr, handler)
}

/// Wait until `n` associations have ended (the handler hears of it after the response).
pub async fn wait_ended(h: &MemHandler, n: usize) {
    for _ in 0..500 {
        if h.ended().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("only {} of {n} associations ended", h.ended().len());
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "lumen_dimse=info".into()),
        )
        .with_test_writer()
        .try_init();
}

fn require_tools() -> bool {
    std::env::var("LUMEN_REQUIRE_TOOLS").is_ok_and(|v| v == "1")
}

/// Skip (or, with LUMEN_REQUIRE_TOOLS=1, fail) when a tool is missing.
fn missing(what: &str) -> Option<PathBuf> {
    if require_tools() {
        panic!("{what} is required (LUMEN_REQUIRE_TOOLS=1) but missing");
    }
    eprintln!("SKIPPED: {what} is missing (set LUMEN_REQUIRE_TOOLS=1 to make this a failure)");
    None
}

/// Find a DCMTK tool on PATH.
pub fn dcmtk(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .or_else(|| missing(&format!("DCMTK `{name}`")))
}

/// The Python with pynetdicom: `LUMEN_PYTHON`, default /tmp/lumen-venv/bin/python.
pub fn python() -> Option<PathBuf> {
    let py = std::env::var_os("LUMEN_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/lumen-venv/bin/python"));
    let ok = std::process::Command::new(&py)
        .args(["-c", "import pynetdicom, pydicom"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Some(py)
    } else {
        missing(&format!("python with pynetdicom at {}", py.display()))
    }
}

/// Run a command on the blocking pool; returns (success, stdout+stderr).
pub async fn run(cmd: std::process::Command) -> (bool, String) {
    let mut cmd = cmd;
    tokio::task::spawn_blocking(move || {
        let out = cmd.output().expect("spawn tool");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    })
    .await
    .unwrap()
}

/// Sort a digest list (for comparisons across concurrent associations).
pub fn sorted(mut v: Vec<(String, String)>) -> Vec<(String, String)> {
    v.sort();
    v
}
