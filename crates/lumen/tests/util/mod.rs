//! Shared helpers of the end-to-end tests: a real `lumen serve` on loopback, fixtures
//! from `../shared/data`, external tools (DCMTK, the Python DICOM clients).
//!
//! With `LUMEN_TEST_DATABASE=postgres` every archive these helpers start or open has its
//! index in a database of its own on a private PostgreSQL server, and with
//! `LUMEN_TEST_STORAGE=s3` its objects in a bucket of its own on a real Garage
//! ([`garage::shared`]), set through the `LUMEN_DATABASE` and `LUMEN_STORAGE` variables of
//! each `lumen` command ([`lumen_for`]).
#![allow(dead_code)]

pub mod browser;
pub mod garage;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "../../../store/tests/support/pg.rs"]
pub mod pg;

/// The test server of `LUMEN_TEST_DATABASE=postgres` runs, shared by the tests of this
/// process (each data directory gets its own database), from the first use to the exit.
static PG: std::sync::OnceLock<pg::PgServer> = std::sync::OnceLock::new();
/// The database of each data directory.
static DATABASES: std::sync::Mutex<Vec<(PathBuf, String)>> = std::sync::Mutex::new(Vec::new());

extern "C" fn stop_pg() {
    if let Some(server) = PG.get() {
        server.shutdown();
    }
}

/// The index database the archive in `data` uses: `None` for SQLite in the directory (the
/// default), or, when `LUMEN_TEST_DATABASE=postgres`, a database of its own on the tests'
/// PostgreSQL server (which must then be installed).
pub fn database_for(data: &Path) -> Option<String> {
    if std::env::var("LUMEN_TEST_DATABASE").as_deref() != Ok("postgres") {
        return None;
    }
    let server = PG.get_or_init(|| {
        let s = pg::start()
            .expect("LUMEN_TEST_DATABASE=postgres needs PostgreSQL (scripts/deps.sh test)");
        // SAFETY: registers a function without arguments to run at exit.
        unsafe { libc::atexit(stop_pg) };
        s
    });
    let mut dbs = DATABASES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, url)) = dbs.iter().find(|(d, _)| d == data) {
        return Some(url.clone());
    }
    let url = server.database(&format!("archive{}", dbs.len()));
    dbs.push((data.to_path_buf(), url.clone()));
    Some(url)
}

/// `lumen`, for a command on the archive in `data` (which still needs `--data`): with its
/// index database (see [`database_for`]) in `LUMEN_DATABASE`, and its bucket in
/// `LUMEN_STORAGE` when the tests run on S3 ([`test_storage`]).
pub fn lumen_for(data: &Path) -> Command {
    let mut c = Command::new(lumen_bin());
    if let Some(url) = database_for(data) {
        c.env("LUMEN_DATABASE", url);
    }
    if let Some((_, env)) = test_storage(data) {
        c.env("LUMEN_STORAGE", env);
    }
    c
}

/// The shared real-data folder, or `None` (with a message) when it is absent.
/// Panics when `LUMEN_REQUIRE_DATA=1` (CI) and the folder is missing.
pub fn shared_data() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if p.is_dir() {
        return Some(p.canonicalize().unwrap_or(p));
    }
    if std::env::var("LUMEN_REQUIRE_DATA").as_deref() == Ok("1") {
        panic!("../shared/data is missing but LUMEN_REQUIRE_DATA=1");
    }
    eprintln!("SKIP: ../shared/data not found beside the repository; test skipped");
    None
}

/// The 133 LIDC-IDRI-0001 CT files.
pub fn lidc_files(data: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(data.join("lidc-idri-0001/ct"))
        .expect("lidc ct folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .collect();
    v.sort();
    v
}

/// Whether an external tool is present; panics when `LUMEN_REQUIRE_TOOLS=1` and it is not.
pub fn have_tool(name: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var("LUMEN_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("{name} is required (LUMEN_REQUIRE_TOOLS=1) but not installed");
        }
        eprintln!("SKIP: {name} not installed; run scripts/test.sh to install test tools");
    }
    found
}

/// The Python interpreter with pydicom, pynetdicom and dicomweb-client, if any.
pub fn python() -> Option<PathBuf> {
    let candidates = [
        std::env::var("LUMEN_PYTHON").ok().map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")),
    ];
    for c in candidates.into_iter().flatten() {
        if c.exists()
            && Command::new(&c)
                .args(["-c", "import pydicom, pynetdicom, dicomweb_client"])
                .output()
                .is_ok_and(|o| o.status.success())
        {
            return Some(c);
        }
    }
    if std::env::var("LUMEN_REQUIRE_TOOLS").as_deref() == Ok("1") {
        panic!(
            "a Python venv with pydicom/pynetdicom/dicomweb-client is required (set LUMEN_PYTHON)"
        );
    }
    eprintln!("SKIP: no Python venv with pydicom/pynetdicom/dicomweb-client (run scripts/test.sh)");
    None
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The path of the `lumen` binary under test.
pub fn lumen_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lumen"))
}

/// Whether the end-to-end tests run on S3 storage (`LUMEN_TEST_STORAGE=s3`).
pub fn on_s3() -> bool {
    std::env::var("LUMEN_TEST_STORAGE").as_deref() == Ok("s3")
}

/// The `LUMEN_STORAGE` value of the archive in `data` when the tests run on S3: its own
/// bucket on the shared Garage (created on first use); `None` on files.
pub fn test_storage(data: &Path) -> Option<(String, String)> {
    let g = garage::shared()?;
    let bucket = garage::bucket_for(data);
    g.bucket(&bucket);
    let env = g.storage_env(&bucket);
    Some((bucket, env))
}

/// The test accounts every server gets: (user name, role, password).
pub const TEST_USERS: [(&str, &str, &str); 4] = [
    ("test-radiologist", "radiologist", "radiologist-password-1"),
    ("test-tech", "technologist", "technologist-password-1"),
    ("test-admin", "admin", "admin-password-1"),
    ("test-referrer", "referrer", "referrer-password-1"),
];

/// Creates an account with `lumen user add` (the server must be stopped).
pub fn add_user(data: &Path, username: &str, role: &str, org: Option<&str>, password: &str) {
    add_user_with(data, None, username, role, org, password);
}

/// [`add_user`] with the server's configuration file (its storage), if any.
pub fn add_user_with(
    data: &Path,
    config: Option<&str>,
    username: &str,
    role: &str,
    org: Option<&str>,
    password: &str,
) {
    use std::io::Write;
    let mut cmd = lumen_for(data);
    cmd.args(["user", "add", "--data"])
        .arg(data)
        .args(["--username", username, "--role", role, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(o) = org {
        cmd.args(["--org", o]);
    }
    if role == "radiologist" {
        cmd.args(["--display-name", "Dr Test"]);
    }
    if let Some(c) = config {
        cmd.args(["--config", c]);
    }
    let mut child = cmd.spawn().expect("lumen user add");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(password.as_bytes())
        .expect("password");
    let out = child.wait_with_output().expect("lumen user add");
    assert!(
        out.status.success(),
        "lumen user add {username}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Logs in over HTTP; the bearer token.
pub fn login(http: &str, username: &str, password: &str) -> String {
    login_with(&https_agent(None), http, username, password)
}

/// An agent that does not fail on HTTP errors and, given a CA (PEM file), trusts only it
/// (for a server started with [`Server::start_tls`]).
pub fn https_agent(ca: Option<&Path>) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder().http_status_as_error(false);
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).expect("CA file");
        let cert = ureq::tls::Certificate::from_pem(&pem).expect("CA certificate");
        config = config.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&[cert]))
                .build(),
        );
    }
    config.build().into()
}

/// Logs in with `agent` at `http` (an `http://` or `https://` base); the bearer token.
pub fn login_with(agent: &ureq::Agent, http: &str, username: &str, password: &str) -> String {
    let mut r = agent
        .post(&format!("{http}/api/auth/login"))
        .send_json(serde_json::json!({ "username": username, "password": password }))
        .expect("login request");
    assert_eq!(r.status().as_u16(), 200, "login of {username}");
    let v: serde_json::Value = r.body_mut().read_json().expect("login answer");
    v["token"].as_str().expect("token").to_string()
}

/// A running `lumen serve` in its own temporary data directory, with the accounts of
/// [`TEST_USERS`] signed in.
pub struct Server {
    pub child: Child,
    pub http_port: u16,
    pub dicom_port: u16,
    pub data: PathBuf,
    pub log: PathBuf,
    /// Bearer token of `test-radiologist` (reads, reviews, signs).
    pub token: String,
    /// Bearer token of `test-tech` (stores).
    pub tech_token: String,
    /// Bearer token of `test-admin` (users, audit).
    pub admin_token: String,
    /// The CA (PEM) of the server's certificate when it serves HTTPS ([`Server::start_tls`]).
    pub tls_ca: Option<PathBuf>,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts a server on fresh ports and a fresh data directory.
    pub fn start() -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        let mut s = Server::start_in(&data, &[]);
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server on `data` (kept after the server stops) with extra flags.
    ///
    /// A port found free can be taken by another test before the server binds it; the
    /// server then exits saying so, and it is started again on other ports.
    pub fn start_in(data: &Path, extra: &[&str]) -> Server {
        Server::start_in_with_log(data, extra, "info")
    }

    /// As [`Server::start_in`], logging at `level` (`LUMEN_LOG`).
    pub fn start_in_with_log(data: &Path, extra: &[&str], level: &str) -> Server {
        for _ in 0..4 {
            match Server::try_start_on(data, free_port(), free_port(), extra, level, None) {
                Ok(s) => return s,
                Err(log) if log.contains("in use") => continue,
                Err(log) => panic!("lumen serve exited early:\n{log}"),
            }
        }
        panic!("lumen serve found no free ports");
    }

    /// Starts a server on given ports.
    pub fn start_on(data: &Path, http_port: u16, dicom_port: u16, extra: &[&str]) -> Server {
        Server::try_start_on(data, http_port, dicom_port, extra, "info", None)
            .unwrap_or_else(|log| panic!("lumen serve exited early:\n{log}"))
    }

    /// Starts a server on `data` serving HTTPS with a certificate issued by `ca` (the TLS
    /// flags, `--tls-cert` and `--tls-key`, are in `extra`); `http()` is then `https://`.
    pub fn start_tls(data: &Path, ca: &Path, extra: &[&str]) -> Server {
        for _ in 0..4 {
            match Server::try_start_on(data, free_port(), free_port(), extra, "info", Some(ca)) {
                Ok(s) => return s,
                Err(log) if log.contains("in use") => continue,
                Err(log) => panic!("lumen serve exited early:\n{log}"),
            }
        }
        panic!("lumen serve found no free ports");
    }

    /// Starts a server serving HTTPS (certificate of `ca`, TLS flags in `extra`) on given
    /// ports.
    pub fn start_tls_on(
        data: &Path,
        http_port: u16,
        dicom_port: u16,
        ca: &Path,
        extra: &[&str],
    ) -> Server {
        Server::try_start_on(data, http_port, dicom_port, extra, "info", Some(ca))
            .unwrap_or_else(|log| panic!("lumen serve exited early:\n{log}"))
    }

    /// Starts a server on given ports; its log when it exits before it is ready.
    fn try_start_on(
        data: &Path,
        http_port: u16,
        dicom_port: u16,
        extra: &[&str],
        level: &str,
        tls_ca: Option<&Path>,
    ) -> Result<Server, String> {
        std::fs::create_dir_all(data).expect("data dir");
        let marker = data.join("test-users-created");
        if !marker.exists() {
            // `lumen user add` opens the archive with the server's configuration when that
            // sets its storage (other settings may need the server's flags, such as --peer).
            let config = extra
                .windows(2)
                .find(|w| w[0] == "--config")
                .map(|w| w[1])
                .filter(|c| std::fs::read_to_string(c).is_ok_and(|t| t.contains("[storage]")));
            for (u, role, pw) in TEST_USERS {
                add_user_with(data, config, u, role, None, pw);
            }
            std::fs::write(&marker, "").expect("marker");
        }
        let log = data.with_extension(format!("{http_port}.log"));
        let logf = std::fs::File::create(&log).expect("log file");
        let child = lumen_for(data)
            .arg("serve")
            .arg("--data")
            .arg(data)
            .arg("--http")
            .arg(format!("127.0.0.1:{http_port}"))
            .arg("--dicom")
            .arg(format!("127.0.0.1:{dicom_port}"))
            .arg("--aet")
            .arg("LUMEN")
            .args(extra)
            .env("LUMEN_LOG", level)
            .stdout(Stdio::null())
            .stderr(logf)
            .spawn()
            .expect("start lumen serve");
        let mut s = Server {
            child,
            http_port,
            dicom_port,
            data: data.to_path_buf(),
            log,
            token: String::new(),
            tech_token: String::new(),
            admin_token: String::new(),
            tls_ca: tls_ca.map(Path::to_path_buf),
            _tmp: None,
        };
        s.wait_ready()?;
        if database_for(data).is_some() {
            // The index is the PostgreSQL database: nothing of it in the data directory.
            assert!(
                !data.join("index.sqlite").exists(),
                "an SQLite index in {} although the database is PostgreSQL",
                data.display()
            );
        }
        let http = s.http();
        let agent = https_agent(s.tls_ca.as_deref());
        s.token = login_with(&agent, &http, TEST_USERS[0].0, TEST_USERS[0].2);
        s.tech_token = login_with(&agent, &http, TEST_USERS[1].0, TEST_USERS[1].2);
        s.admin_token = login_with(&agent, &http, TEST_USERS[2].0, TEST_USERS[2].2);
        Ok(s)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "({status}) {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                ));
            }
            let agent = https_agent(self.tls_ca.as_deref());
            if let Ok(r) = agent.get(&format!("{}/health", self.http())).call()
                && r.status() == 200
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("lumen serve did not become ready");
    }

    /// `http://127.0.0.1:PORT` (`https://` for a server started with [`Server::start_tls`]).
    pub fn http(&self) -> String {
        let scheme = if self.tls_ca.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", self.http_port)
    }

    /// The DICOMweb root.
    pub fn dicomweb(&self) -> String {
        format!("{}/dicom-web", self.http())
    }

    /// `Bearer TOKEN` of the radiologist.
    pub fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// `Bearer TOKEN` of the technologist (who stores).
    pub fn tech_auth(&self) -> String {
        format!("Bearer {}", self.tech_token)
    }

    /// A command running a Python client with the tokens in `LUMEN_TOKEN` (reads) and
    /// `LUMEN_STORE_TOKEN` (stores).
    pub fn python(&self, py: &Path) -> Command {
        let mut c = Command::new(py);
        c.env("LUMEN_TOKEN", &self.token)
            .env("LUMEN_STORE_TOKEN", &self.tech_token);
        c
    }

    /// GET a URL under the server and parse JSON; panics on non-200.
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let url = format!("{}{path}", self.http());
        let mut r = ureq::get(&url)
            .header("Authorization", &self.auth())
            .call()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        r.body_mut().read_json().expect("json body")
    }

    /// GET returning (status, body bytes) without failing on HTTP errors.
    pub fn get_raw(&self, path: &str, accept: Option<&str>) -> (u16, String, Vec<u8>) {
        let url = format!("{}{path}", self.http());
        let agent = https_agent(self.tls_ca.as_deref());
        let mut req = agent.get(&url).header("Authorization", &self.auth());
        if let Some(a) = accept {
            req = req.header("Accept", a);
        }
        let mut r = req.call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let status = r.status().as_u16();
        let body = r
            .body_mut()
            .with_config()
            .limit(1 << 31)
            .read_to_vec()
            .expect("body");
        (status, ct, body)
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server with SIGTERM and waits.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill9();
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs a command, returning its output; panics if it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// The data set bytes of a Part-10 file (what must come back byte-identical).
pub fn dataset_bytes(part10: &[u8]) -> &[u8] {
    let off = lumen_dicom::part10::dataset_offset(part10).expect("part 10");
    &part10[off..]
}

/// Splits a multipart/related body into its parts' bodies.
pub fn multipart_parts(content_type: &str, body: &[u8]) -> Vec<Vec<u8>> {
    let boundary = content_type
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .next()
        .expect("boundary")
        .trim_matches('"')
        .to_string();
    let delim = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut pos = 0;
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|i| i + from)
    };
    while let Some(start) = find(body, delim.as_bytes(), pos) {
        let after = start + delim.len();
        if body[after..].starts_with(b"--") {
            break;
        }
        let headers_end = find(body, b"\r\n\r\n", after).expect("part headers") + 4;
        let next =
            find(body, format!("\r\n{delim}").as_bytes(), headers_end).expect("next boundary");
        parts.push(body[headers_end..next].to_vec());
        pos = next + 2;
    }
    parts
}

/// Counts the stored objects of the archive in `data` and the temporary files left: its
/// object files, or, on S3, its bucket's object keys (after checking that nothing was
/// written under `objects/` or `tmp/`).
pub fn object_files(data: &Path) -> (usize, usize) {
    let (files, tmp) = local_object_files(data);
    if let Some((bucket, _)) = test_storage(data) {
        assert_eq!(
            (files, tmp),
            (0, 0),
            "S3 storage wrote files under {data:?}"
        );
        let g = garage::shared().expect("garage");
        let keys = g.list(&bucket).expect("bucket listing");
        return (
            keys.iter()
                .filter(|(k, _)| k.starts_with("objects/"))
                .count(),
            0,
        );
    }
    (files, tmp)
}

/// Counts the object files under a data directory and lists temp leftovers.
pub fn local_object_files(data: &Path) -> (usize, usize) {
    fn walk(p: &Path, n: &mut usize) {
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd.flatten() {
                let path = e.path();
                if path.is_dir() {
                    walk(&path, n);
                } else {
                    *n += 1;
                }
            }
        }
    }
    let (mut objects, mut tmp) = (0, 0);
    walk(&data.join("objects"), &mut objects);
    walk(&data.join("tmp"), &mut tmp);
    (objects, tmp)
}

/// A request with an optional bearer token and JSON body: the status and the body (JSON,
/// or the text as a JSON string).
pub fn call(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let a = https_agent(None);
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut r = match (method, body) {
        ("GET", _) => {
            let mut b = a.get(url);
            if let Some(h) = &auth {
                b = b.header("Authorization", h);
            }
            b.call()
        }
        ("DELETE", _) => {
            let mut b = a.delete(url);
            if let Some(h) = &auth {
                b = b.header("Authorization", h);
            }
            b.call()
        }
        (_, body) => {
            let mut b = a.post(url);
            if let Some(h) = &auth {
                b = b.header("Authorization", h);
            }
            b.send_json(body.unwrap_or(serde_json::json!({})))
        }
    }
    .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// Polls `f` every 200 ms until it returns `Some`, failing after `secs` with `what`.
pub fn poll<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} within {secs} s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A consortium's `[[consortium.member]]` list for nodes given as (data dir, id, name, URL,
/// base configuration): each node's key is made by `lumen ledger key` over its base
/// configuration, written to `dir/cfg-<i>.toml` (where the caller writes the full one).
pub fn consortium_members(dir: &Path, nodes: &[(&Path, &str, &str, String, String)]) -> String {
    let mut members = String::new();
    for (i, (data, id, name, url, base)) in nodes.iter().enumerate() {
        let cfg = dir.join(format!("cfg-{i}.toml"));
        std::fs::write(&cfg, base).expect("config");
        let out = run(Command::new(lumen_bin())
            .args(["ledger", "key", "--data"])
            .arg(data)
            .arg("--config")
            .arg(&cfg));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
        members.push_str(&format!(
            "[[consortium.member]]\nid = \"{id}\"\nname = \"{name}\"\nurl = \"{url}\"\nkey = \"{key}\"\n"
        ));
    }
    members
}

/// Sends `parts` (Part-10 objects) in one STOW-RS request as the technologist; the status
/// and the response body.
pub fn stow_parts(server: &Server, parts: &[Vec<u8>]) -> (u16, String) {
    let boundary = "lumen-test-boundary-7d1e";
    let mut body = Vec::new();
    for p in parts {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(p);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .post(&format!("{}/studies", server.dicomweb()))
        .header("Authorization", &server.tech_auth())
        .header(
            "Content-Type",
            &format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"),
        )
        .send(&body[..])
        .expect("STOW-RS");
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_string().unwrap_or_default())
}
