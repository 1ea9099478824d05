//! The ledger end to end on the real `lumen serve` (issue 12): a report signed over HTTP
//! appears in the published checkpoint within seconds; the checkpoint, tiles and entry
//! bundles are served without login in the C2SP tlog-tiles layout (and nothing else under
//! `/ledger/`); the entry's inclusion proof is served; `lumen ledger key` prints the key
//! the checkpoint is signed with; `lumen ledger verify` passes offline and over HTTP, and
//! fails with a clear reason once one byte of a hash tile or an entry bundle is altered.

mod util;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use util::*;

/// CT_small.dcm of pydicom's test files.
const STUDY: &str = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// GET without credentials: status and body.
fn get(url: &str) -> (u16, Vec<u8>) {
    let mut r = agent()
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_vec().unwrap_or_default())
}

fn lumen(args: &[&str], data: &Path) -> Output {
    let mut c = Command::new(lumen_bin());
    c.args(args).arg("--data").arg(data);
    run(&mut c)
}

fn checkpoint_size(text: &str) -> u64 {
    text.lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .unwrap_or(0)
}

fn flip_byte(path: &Path, at: usize) {
    let mut b = std::fs::read(path).expect("file to alter");
    b[at] ^= 0x01;
    std::fs::write(path, b).expect("altered file");
}

#[test]
fn signed_report_is_published_proved_and_verified() {
    let Some(shared) = shared_data() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let ct = shared.join("dicom-samples/pydicom-3.0.2-test-files/CT_small.dcm");
    let mut c = Command::new(lumen_bin());
    c.arg("import").arg("--data").arg(&data).arg(&ct);
    let out = run(&mut c);
    assert!(
        out.status.success(),
        "import: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let server = Server::start_in(&data, &[]);
    let base = server.http();

    // Sign the report over HTTP.
    let mut r = agent()
        .post(&format!("{base}/api/studies/{STUDY}/report/sign"))
        .header("Authorization", &server.auth())
        .send_json(serde_json::json!({"lang": "en"}))
        .expect("sign");
    let status = r.status().as_u16();
    let body = r.body_mut().read_to_string().unwrap_or_default();
    assert_eq!(status, 200, "sign: {body}");

    // The entry is published within a few seconds (polled, with a deadline).
    let deadline = Instant::now() + Duration::from_secs(15);
    let checkpoint = loop {
        let (status, body) = get(&format!("{base}/ledger/checkpoint"));
        let text = String::from_utf8_lossy(&body).into_owned();
        if status == 200 && checkpoint_size(&text) >= 1 {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint with the signed report after 15 s (last: {status} {text})"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(checkpoint_size(&checkpoint), 1, "{checkpoint}");

    // `lumen ledger key` prints the key the checkpoint is signed with (the server runs).
    let out = lumen(&["ledger", "key"], &data);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let vkey = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let name = vkey.split('+').next().expect("key name");
    assert_eq!(name, "lumen.local/local", "{vkey}");
    assert!(
        checkpoint.starts_with("lumen.local/local\n1\n"),
        "{checkpoint}"
    );
    assert!(
        checkpoint.contains(&format!("\n\u{2014} {name} ")),
        "the signature line names the key: {checkpoint}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("ledger.key"))
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is private");
    }

    // Tiles and bundles are public, in the C2SP layout; nothing else is served.
    let (status, bundle) = get(&format!("{base}/ledger/tile/entries/000.p/1"));
    assert_eq!(status, 200);
    let entry = String::from_utf8_lossy(&bundle[2..]).into_owned();
    assert!(entry.starts_with("lumen/v1 report.signed "), "{entry}");
    assert!(!entry.contains(STUDY), "no identifiers on the log: {entry}");
    let (status, tile) = get(&format!("{base}/ledger/tile/0/000.p/1"));
    assert_eq!((status, tile.len()), (200, 32));
    for path in [
        "/ledger/tile/%2e%2e/%2e%2e/ledger.key",
        "/ledger/tile/..%2f..%2fledger.key",
        "/ledger/tile/0/000",
        "/ledger/tile/0/0.p/1",
        "/ledger/tile/.tmp/x",
    ] {
        let (status, body) = get(&format!("{base}{path}"));
        assert_eq!(status, 404, "{path}: {}", String::from_utf8_lossy(&body));
    }

    // The inclusion proof of entry 0 in the latest checkpoint.
    let (status, body) = get(&format!("{base}/api/ledger/entries/0/proof"));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let proof: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(proof["tree_size"], 1);
    assert_eq!(proof["entry"], entry.as_str());
    assert_eq!(proof["inclusion_proof"].as_array().map(Vec::len), Some(0));
    let (status, _) = get(&format!("{base}/api/ledger/entries/1/proof"));
    assert_eq!(status, 404, "entry 1 is not in the checkpoint");

    // Offline and remote verification pass.
    let out = lumen(&["ledger", "verify"], &data);
    assert!(
        out.status.success(),
        "verify --data: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 entries"));
    let out = run(Command::new(lumen_bin()).args([
        "ledger",
        "verify",
        "--url",
        &format!("{base}/ledger"),
        "--key",
        &vkey,
    ]));
    assert!(
        out.status.success(),
        "verify --url: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Another key of the same name (another node's) does not verify it.
    let out = lumen(&["ledger", "key"], &tmp.path().join("other"));
    assert!(out.status.success());
    let other = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(other.starts_with("lumen.local/local+") && other != vkey);
    let out = run(Command::new(lumen_bin()).args([
        "ledger",
        "verify",
        "--url",
        &format!("{base}/ledger"),
        "--key",
        &other,
    ]));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("carries no signature of lumen.local/local"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(server);

    // One byte of a hash tile altered: refused, naming the tile.
    let tile = data.join("ledger/tile/0/000.p/1");
    let saved = std::fs::read(&tile).expect("tile");
    flip_byte(&tile, 7);
    let out = lumen(&["ledger", "verify"], &data);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "an altered tile verifies");
    assert!(err.contains("hash tile tile/0/000.p/1"), "{err}");
    std::fs::write(&tile, saved).expect("restore");

    // One byte of the entry bundle altered: refused, naming the entry.
    flip_byte(&data.join("ledger/tile/entries/000.p/1"), 12);
    let out = lumen(&["ledger", "verify"], &data);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "an altered entry verifies");
    assert!(
        err.contains("do not hash to the checkpoint's root"),
        "{err}"
    );
    assert!(err.contains("first at entry 0"), "{err}");

    // A key readable by others is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = data.join("ledger.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let out = lumen(&["ledger", "key"], &data);
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("accessible by group or others"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
