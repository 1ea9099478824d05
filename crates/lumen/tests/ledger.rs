//! The ledger end to end on the real `lumen serve` (issue 12): a report signed over HTTP
//! appears in the published checkpoint within seconds; the checkpoint, tiles and entry
//! bundles are served without login in the C2SP tlog-tiles layout (and nothing else under
//! `/ledger/`); the entry's inclusion proof is served; `lumen ledger key` prints the key
//! the checkpoint is signed with; `lumen ledger verify` passes offline and over HTTP, and
//! fails with a clear reason once one byte of a hash tile or an entry bundle is altered.
//! A checkpoint older than `--max-age` fails verification and `GET /api/ledger/status`
//! reports freshness; a restarted node sweeps leftover temp files and renews its
//! checkpoint; `lumen ledger forget` deletes a study's salts, audited, and the log still
//! verifies.

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

/// Imports CT_small into a new data directory `data` with `lumen import`.
fn import_ct_small(data: &Path, shared: &Path) {
    std::fs::create_dir_all(data).expect("data dir");
    let ct = shared.join("dicom-samples/pydicom-3.0.2-test-files/CT_small.dcm");
    let out = run(Command::new(lumen_bin())
        .arg("import")
        .arg("--data")
        .arg(data)
        .arg(&ct));
    assert!(
        out.status.success(),
        "import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn signed_report_is_published_proved_and_verified() {
    let Some(shared) = shared_data() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    import_ct_small(&data, &shared);

    let server = Server::start_in(&data, &[]);
    let base = server.http();

    // A new log publishes its empty checkpoint, which verifies.
    wait_checkpoint(&base, "no empty checkpoint", |cp| {
        cp.lines().nth(1) == Some("0")
    });
    let out = lumen(&["ledger", "verify"], &data);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 entries"));

    // Sign the report over HTTP.
    let mut r = agent()
        .post(&format!("{base}/api/studies/{STUDY}/report/sign"))
        .header("Authorization", &server.auth())
        .send_json(serde_json::json!({"lang": "en"}))
        .expect("sign");
    let status = r.status().as_u16();
    let body = r.body_mut().read_to_string().unwrap_or_default();
    assert_eq!(status, 200, "sign: {body}");
    // The report shows its ledger entry and where its proof is.
    let view: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(view["ledger"][0]["index"], 0, "{body}");
    assert_eq!(view["ledger"][0]["kind"], "report.signed", "{body}");
    assert_eq!(
        view["ledger"][0]["proof_url"], "/api/ledger/entries/0/proof",
        "{body}"
    );

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

/// A data directory with CT_small imported and its report signed on a server started
/// with `config`, whose checkpoint has the entry; the server still runs.
fn signed_on_server(tmp: &Path, shared: &Path, config: &str) -> (std::path::PathBuf, Server) {
    let data = tmp.join("data");
    import_ct_small(&data, shared);
    let cfg = write_config(&tmp.join("cfg"), config);
    let server = Server::start_in(&data, &["--config", &cfg.to_string_lossy()]);
    let base = server.http();
    let (status, body) = post(
        &format!("{base}/api/studies/{STUDY}/report/sign"),
        Some(&server.auth()),
        br#"{"lang":"en"}"#,
    );
    assert_eq!(status, 200, "{body}");
    wait_checkpoint(&base, "no checkpoint of size 1", |cp| {
        checkpoint_size(cp) == 1
    });
    (data, server)
}

#[test]
fn a_checkpoint_older_than_max_age_is_flagged() {
    let Some(shared) = shared_data() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let (data, mut server) =
        signed_on_server(tmp.path(), &shared, "[ledger]\nmax_checkpoint_age_s = 60\n");
    let base = server.http();

    // The node reports its checkpoint as fresh, without login.
    let (status, body) = get(&format!("{base}/api/ledger/status"));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let st: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        (
            &st["size"],
            &st["fresh"],
            &st["max_age_s"],
            &st["quorum_reached"]
        ),
        (&1.into(), &true.into(), &60.into(), &true.into()),
        "{st}"
    );
    // The checkpoint says when the node wrote it; a remote audit with --max-age passes.
    let r = agent()
        .get(&format!("{base}/ledger/checkpoint"))
        .call()
        .expect("checkpoint");
    assert!(r.headers().get("last-modified").is_some());
    let vkey = String::from_utf8_lossy(&lumen(&["ledger", "key"], &data).stdout)
        .trim()
        .to_string();
    let out = run(Command::new(lumen_bin()).args([
        "ledger",
        "verify",
        "--url",
        &format!("{base}/ledger"),
        "--key",
        &vkey,
        "--max-age",
        "60",
    ]));
    assert!(
        out.status.success(),
        "verify --url --max-age: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.stop();

    // Written an hour ago (the node stopped): not fresh for --max-age 300.
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(data.join("ledger/checkpoint"))
        .expect("checkpoint")
        .set_modified(hour_ago)
        .expect("mtime");
    let out = lumen(&["ledger", "verify", "--max-age", "300"], &data);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "a stale checkpoint passes");
    assert!(
        err.contains("NOT fresh") && err.contains("when the node wrote it"),
        "{err}"
    );
    assert!(
        lumen(&["ledger", "verify", "--max-age", "7200"], &data)
            .status
            .success()
    );

    // Restarted: the node sweeps what an interrupted write left in ledger/.tmp, and renews
    // its idle checkpoint, which is fresh again.
    let leftover = data.join("ledger/.tmp/1-0");
    std::fs::write(&leftover, b"half a tile").expect("leftover");
    let cfg = tmp.path().join("cfg/lumen.toml");
    let server = Server::start_in(&data, &["--config", &cfg.to_string_lossy()]);
    assert!(
        !leftover.exists(),
        "the leftover temp file is swept at start"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = get(&format!("{}/api/ledger/status", server.http()));
        let st: Value = serde_json::from_slice(&body).unwrap_or_default();
        if status == 200 && st["fresh"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "not renewed: {status} {st}");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(server);
    assert!(
        lumen(&["ledger", "verify", "--max-age", "300"], &data)
            .status
            .success()
    );
}

#[test]
fn forgetting_a_study_keeps_the_log_verifiable() {
    let Some(shared) = shared_data() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let (data, mut server) = signed_on_server(tmp.path(), &shared, "");
    server.stop();

    // A deletion request: the salt is deleted, audited as the command line's; the log
    // is unchanged and still verifies.
    let out = lumen(&["ledger", "forget", "--study", STUDY], &data);
    assert!(
        out.status.success(),
        "forget: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("forgot the salts of 1 ledger entries"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = lumen(&["ledger", "verify"], &data);
    assert!(
        out.status.success(),
        "verify after forget: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if have_tool("sqlite3") {
        let out = run(Command::new("sqlite3")
            .args(["-cmd", ".timeout 30000"])
            .arg(data.join("index.sqlite"))
            .arg(
                "SELECT count(*) FROM ledger_entries WHERE salt IS NULL; \
                 SELECT user || ' ' || channel || ' ' || study_uid FROM audit \
                 WHERE action = 'forget';",
            ));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            text,
            format!("1\ncli cli {STUDY}\n"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).expect("dir");
    let p = dir.join("lumen.toml");
    std::fs::write(&p, text).expect("config");
    p
}

/// `lumen ledger key` for `data` with `config`; `witness` prints the cosigning key.
fn key_of(data: &Path, config: &Path, witness: bool) -> String {
    let mut c = Command::new(lumen_bin());
    c.args(["ledger", "key", "--data"])
        .arg(data)
        .arg("--config")
        .arg(config);
    if witness {
        c.arg("--witness");
    }
    let out = run(&mut c);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The checkpoint of the log at `base` once `ready` holds for it (polled, 20 s at most).
fn wait_checkpoint(base: &str, what: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = get(&format!("{base}/ledger/checkpoint"));
        let text = String::from_utf8_lossy(&body).into_owned();
        if status == 200 && ready(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{what} after 20 s; last checkpoint:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn verify_remote(base: &str, vkey: &str, witnesses: &[&str], quorum: usize) -> Output {
    let mut c = Command::new(lumen_bin());
    c.args([
        "ledger",
        "verify",
        "--url",
        &format!("{base}/ledger"),
        "--key",
        vkey,
    ]);
    for w in witnesses {
        c.args(["--witness-key", w]);
    }
    c.args(["--quorum", &quorum.to_string()]);
    run(&mut c)
}

fn post(url: &str, auth: Option<&str>, body: &[u8]) -> (u16, String) {
    let mut r = agent().post(url);
    if let Some(a) = auth {
        r = r.header("Authorization", a);
    }
    let mut r = r
        .header("Content-Type", "application/json")
        .send(body)
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_string().unwrap_or_default())
}

#[test]
fn three_nodes_witness_reach_quorum_and_catch_up() {
    let Some(shared) = shared_data() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    let ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
    let url = |i: usize| format!("http://127.0.0.1:{}", ports[2 * i]);

    // Keys first (servers stopped): the log key of A, the witness keys of B and C.
    let cfg_a = write_config(
        &tmp.path().join("cfg-a"),
        "[ledger]\norigin = \"lumen.local/a\"\n",
    );
    let vkey_a = key_of(&a, &cfg_a, false);
    let cfg_b = format!(
        "[ledger]\norigin = \"lumen.local/b\"\n[[ledger.witness_of]]\nurl = \"{}/ledger\"\nkey = \"{vkey_a}\"\n",
        url(0)
    );
    let cfg_b = write_config(&tmp.path().join("cfg-b"), &cfg_b);
    let cfg_c = write_config(
        &tmp.path().join("cfg-c"),
        &std::fs::read_to_string(&cfg_b)
            .unwrap()
            .replace("lumen.local/b", "lumen.local/c"),
    );
    let wkey_b = key_of(&b, &cfg_b, true);
    let wkey_c = key_of(&c, &cfg_c, true);
    assert!(wkey_b.starts_with("lumen.local/b/witness+"), "{wkey_b}");
    let cfg_a = write_config(
        &tmp.path().join("cfg-a"),
        &format!(
            "[ledger]\norigin = \"lumen.local/a\"\nquorum = 2\n\
             [[ledger.witnesses]]\nurl = \"{}/ledger\"\nkey = \"{wkey_b}\"\n\
             [[ledger.witnesses]]\nurl = \"{}/ledger\"\nkey = \"{wkey_c}\"\n",
            url(1),
            url(2)
        ),
    );

    import_ct_small(&a, &shared);
    let cfg = |p: &Path| p.to_string_lossy().into_owned();
    let _b = Server::start_on(&b, ports[2], ports[3], &["--config", &cfg(&cfg_b)]);
    let mut node_c = Server::start_on(&c, ports[4], ports[5], &["--config", &cfg(&cfg_c)]);
    let node_a = Server::start_on(&a, ports[0], ports[1], &["--config", &cfg(&cfg_a)]);
    let base = url(0);
    let both = [wkey_b.as_str(), wkey_c.as_str()];
    let has = |cp: &str, w: &str| cp.contains(&format!("\u{2014} lumen.local/{w}/witness "));

    // A report signed on A: its checkpoint gets both cosignatures (quorum 2).
    let (status, body) = post(
        &format!("{base}/api/studies/{STUDY}/report/sign"),
        Some(&node_a.auth()),
        br#"{"lang":"en"}"#,
    );
    assert_eq!(status, 200, "{body}");
    wait_checkpoint(&base, "no cosignatures of B and C on size 1", |cp| {
        checkpoint_size(cp) == 1 && has(cp, "b") && has(cp, "c")
    });
    let out = verify_remote(&base, &vkey_a, &both, 2);
    assert!(
        out.status.success(),
        "quorum 2: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // C stops; an addendum on A is cosigned by B only: not final at quorum 2.
    node_c.stop();
    let (status, body) = post(
        &format!("{base}/api/studies/{STUDY}/report/addenda"),
        Some(&node_a.auth()),
        br#"{"text":"Addendum: compared with the prior CT."}"#,
    );
    assert_eq!(status, 200, "{body}");
    let cp = wait_checkpoint(&base, "no cosignature of B on size 2", |cp| {
        checkpoint_size(cp) == 2 && has(cp, "b")
    });
    assert!(!has(&cp, "c"), "C is stopped: {cp}");
    let out = verify_remote(&base, &vkey_a, &both, 2);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success() && err.contains("1 of the witnesses cosigned"),
        "{err}"
    );
    assert!(verify_remote(&base, &vkey_a, &both, 1).status.success());

    // C comes back and catches up (a consistency proof from size 1, the size it cosigned).
    let _c = Server::start_on(&c, ports[4], ports[5], &["--config", &cfg(&cfg_c)]);
    wait_checkpoint(&base, "C did not catch up to size 2", |cp| {
        checkpoint_size(cp) == 2 && has(cp, "b") && has(cp, "c")
    });
    let out = verify_remote(&base, &vkey_a, &both, 2);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A fork: another tree of size 2 signed with A's key, shown to B, is refused (409 with
    // B's size); a larger fork that claims to extend size 2 fails its proof (422).
    let skey = std::fs::read_to_string(a.join("ledger.key")).expect("A's key");
    let signer = lumen_ledger::LogSigner::from_skey(&skey).expect("key");
    let mut fork = lumen_ledger::MemoryStore::default();
    let forged =
        lumen_ledger::integrate(&mut fork, &signer, &[b"x".to_vec(), b"y".to_vec()]).expect("fork");
    let req = lumen_ledger::witness::AddCheckpoint {
        old_size: 2,
        proof: vec![],
        checkpoint: forged.checkpoint,
    };
    let witness_b = format!("{}/ledger/add-checkpoint", url(1));
    let (status, body) = post(&witness_b, None, &req.to_bytes());
    assert_eq!((status, body.as_str()), (409, "2\n"));
    let bigger = lumen_ledger::integrate(&mut fork, &signer, &[b"z".to_vec()]).expect("fork");
    let req = lumen_ledger::witness::AddCheckpoint {
        old_size: 2,
        proof: lumen_ledger::consistency_proof(&fork, 2, 3).expect("proof"),
        checkpoint: bigger.checkpoint,
    };
    let (status, body) = post(&witness_b, None, &req.to_bytes());
    assert_eq!(status, 422, "{body}");
    // A checkpoint of a log B does not witness: 404; not signed by A's key: 403.
    let other = lumen_ledger::LogSigner::from_seed("lumen.local/z", [1; 32]).expect("key");
    let req = lumen_ledger::witness::AddCheckpoint {
        old_size: 0,
        proof: vec![],
        checkpoint: other
            .sign_checkpoint(1, lumen_ledger::Hash([0; 32]))
            .expect("cp"),
    };
    assert_eq!(post(&witness_b, None, &req.to_bytes()).0, 404);
    let other = lumen_ledger::LogSigner::from_seed("lumen.local/a", [1; 32]).expect("key");
    let req = lumen_ledger::witness::AddCheckpoint {
        old_size: 2,
        proof: vec![],
        checkpoint: other
            .sign_checkpoint(2, lumen_ledger::Hash([0; 32]))
            .expect("cp"),
    };
    assert_eq!(post(&witness_b, None, &req.to_bytes()).0, 403);
}

/// The web app's check of an inclusion proof (`inclusionVerifies` in `ui/report.js`, run
/// with Node) accepts the proofs of every entry of trees of many sizes, and refuses an
/// altered entry, a wrong index and a wrong root.
#[test]
fn the_web_apps_inclusion_check_agrees_with_the_log() {
    use base64::Engine;
    let b64 = |h: &lumen_ledger::Hash| base64::prelude::BASE64_STANDARD.encode(h.0);
    if !have_tool("node") {
        return;
    }
    let js =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/ui/report.js"))
            .expect("report.js");
    let start = js
        .find("async function inclusionVerifies")
        .expect("the function");
    let function = &js[start..];
    let signer = lumen_ledger::LogSigner::from_seed("test.example/log", [3; 32]).expect("key");
    let mut store = lumen_ledger::MemoryStore::default();
    let mut cases = Vec::new();
    let mut n = 0u64;
    for batch in [1u64, 1, 1, 2, 3, 9, 30, 100, 150, 300] {
        let entries: Vec<Vec<u8>> = (n..n + batch)
            .map(|i| format!("lumen/v1 report.signed {i} {:064x}", i).into_bytes())
            .collect();
        let out = lumen_ledger::integrate(&mut store, &signer, &entries).expect("integrate");
        n = out.size;
        for index in [0, n / 3, n / 2, n - 1] {
            let proof = lumen_ledger::inclusion_proof(&store, n, index).expect("proof");
            let entry = format!("lumen/v1 report.signed {index} {:064x}", index);
            let case = serde_json::json!({
                "index": index,
                "entry": entry,
                "tree_size": n,
                "root_hash": b64(&out.root),
                "inclusion_proof": proof.iter().map(b64).collect::<Vec<_>>(),
            });
            cases.push((case.clone(), true));
            let mut bad = case.clone();
            bad["entry"] = format!("{entry}0").into();
            cases.push((bad, false));
            if n > 1 {
                let mut bad = case.clone();
                bad["index"] = ((index + 1) % n).into();
                cases.push((bad, false));
            }
            let mut bad = case;
            bad["root_hash"] = b64(&lumen_ledger::Hash([7; 32])).into();
            cases.push((bad, false));
        }
    }
    let cases_json = serde_json::to_string(
        &cases
            .iter()
            .map(|(c, want)| serde_json::json!({"p": c, "want": want}))
            .collect::<Vec<_>>(),
    )
    .expect("json");
    let script = format!(
        "{function}\nconst cases = {cases_json};\n(async () => {{\n  let bad = 0;\n  for (const c of cases) {{\n    const got = await inclusionVerifies(c.p);\n    if (got !== c.want) {{ bad++; console.log('wrong', JSON.stringify(c), got); }}\n  }}\n  console.log(`checked ${{cases.length}}`);\n  process.exit(bad ? 1 : 0);\n}})();\n"
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("check.mjs");
    std::fs::write(&file, script).expect("script");
    let out = run(Command::new("node").arg(&file));
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("checked"));
}
