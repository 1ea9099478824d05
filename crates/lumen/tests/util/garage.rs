//! A real S3-compatible server for tests: a single-node Garage in a temporary directory on
//! loopback ports, with one access key allowed on the buckets it creates.
//!
//! The binary is `LUMEN_GARAGE`, else the repository's `.cache/garage/bin/garage` (where
//! `scripts/deps.sh test` installs it), else `garage` on `PATH`. Without one a test skips
//! with a message, unless `LUMEN_REQUIRE_TOOLS=1`. The server runs under a small shell
//! watchdog that stops it when the test process is gone, so that a shared instance
//! ([`shared`]) never outlives the test binary. Shared by lumen-store's tests and the
//! end-to-end tests (included with `#[path]`).
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The region Garage signs as (its `s3_region`).
pub const REGION: &str = "garage";

/// A running single-node Garage.
pub struct Garage {
    /// The watchdog shell (its child is the server).
    child: Child,
    bin: PathBuf,
    config: PathBuf,
    /// The S3 endpoint, `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The access key id allowed on every bucket created here.
    pub key_id: String,
    /// Its secret.
    pub secret: String,
    buckets: Mutex<HashSet<String>>,
    stopped: bool,
    _dir: tempfile::TempDir,
}

/// The Garage binary to use, if any.
pub fn garage_bin() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("LUMEN_GARAGE") {
        return Some(PathBuf::from(p));
    }
    let cached = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/garage/bin/garage");
    if cached.is_file() {
        return Some(cached);
    }
    let on_path = Command::new("sh")
        .args(["-c", "command -v garage"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    on_path.filter(|p| p.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Runs a Garage CLI command against `config`; its standard output, or the error text.
fn cli(bin: &Path, config: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(bin)
        .arg("-c")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .map_err(|e| format!("cannot run garage: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "garage {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The value after `label` on a line of `garage key info` output.
fn field(text: &str, label: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Polls `f` until it succeeds or `secs` pass; the last error then.
fn poll<T>(secs: u64, mut f: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

impl Garage {
    /// Starts a Garage, or `None` (with a message) when there is no binary. Panics when
    /// `LUMEN_REQUIRE_TOOLS=1` and there is none, or when it does not start.
    pub fn start() -> Option<Garage> {
        let Some(bin) = garage_bin() else {
            if std::env::var("LUMEN_REQUIRE_TOOLS").as_deref() == Ok("1") {
                panic!("garage is required (LUMEN_REQUIRE_TOOLS=1) but not installed");
            }
            eprintln!(
                "SKIP: garage not installed (set LUMEN_GARAGE or run scripts/deps.sh test); \
                 S3 test skipped"
            );
            return None;
        };
        Some(Garage::start_with(&bin).unwrap_or_else(|e| panic!("garage did not start: {e}")))
    }

    fn start_with(bin: &Path) -> Result<Garage, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let (rpc, s3, admin) = (free_port(), free_port(), free_port());
        let secret: String = {
            use std::hash::{BuildHasher, Hasher};
            (0..4)
                .map(|i| {
                    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                    h.write_u64(i);
                    format!("{:016x}", h.finish())
                })
                .collect()
        };
        let config = dir.path().join("garage.toml");
        std::fs::write(
            &config,
            format!(
                "metadata_dir = \"{meta}\"\ndata_dir = \"{data}\"\ndb_engine = \"sqlite\"\n\
                 replication_factor = 1\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
                 rpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret}\"\n\n\
                 [s3_api]\ns3_region = \"{REGION}\"\napi_bind_addr = \"127.0.0.1:{s3}\"\n\n\
                 [admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\nadmin_token = \"{secret}\"\n",
                meta = dir.path().join("meta").display(),
                data = dir.path().join("data").display(),
            ),
        )
        .map_err(|e| e.to_string())?;
        let log =
            std::fs::File::create(dir.path().join("garage.log")).map_err(|e| e.to_string())?;
        // The watchdog: stops the server on TERM (its directory then goes with `_dir`), or
        // when this process is gone (a shared instance, never dropped): then it removes the
        // directory too.
        let child = Command::new("sh")
            .arg("-c")
            .arg(
                "\"$0\" -c \"$1\" server & g=$!; trap 'kill $g 2>/dev/null; wait $g; exit 0' TERM; \
                 while kill -0 \"$2\" 2>/dev/null && kill -0 $g 2>/dev/null; do sleep 1; done; \
                 kill $g 2>/dev/null; wait $g; rm -rf \"$3\"",
            )
            .arg(bin)
            .arg(&config)
            .arg(std::process::id().to_string())
            .arg(dir.path())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start garage: {e}"))?;
        let mut g = Garage {
            child,
            bin: bin.to_path_buf(),
            config,
            endpoint: format!("http://127.0.0.1:{s3}"),
            key_id: String::new(),
            secret: String::new(),
            buckets: Mutex::default(),
            stopped: false,
            _dir: dir,
        };
        // `node id` reads the key on disk; `status` answers once the server does.
        let node = poll(30, || {
            g.cli(&["status"])?;
            let out = g.cli(&["node", "id", "-q"])?;
            out.lines()
                .next()
                .and_then(|l| l.split('@').next())
                .map(|id| id.trim().to_string())
                .filter(|id| !id.is_empty())
                .ok_or_else(|| format!("no node id in {out:?}"))
        })
        .map_err(|e| format!("{e}\n{}", g.log()))?;
        g.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &node])?;
        g.cli(&["layout", "apply", "--version", "1"])?;
        let info = g.cli(&["key", "create", "lumen-test"])?;
        let info = match field(&info, "Secret key:") {
            Some(s) if !s.contains("redacted") => info,
            _ => g.cli(&["key", "info", "lumen-test", "--show-secret"])?,
        };
        g.key_id = field(&info, "Key ID:").ok_or("no key id in `garage key create` output")?;
        g.secret = field(&info, "Secret key:").ok_or("no secret in `garage key info` output")?;
        Ok(g)
    }

    fn cli(&self, args: &[&str]) -> Result<String, String> {
        cli(&self.bin, &self.config, args)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("garage.log")).unwrap_or_default()
    }

    /// Creates `bucket` (3 to 63 lower-case letters, digits, '-') with read, write and
    /// owner rights for the key, once; waits until the S3 API serves it.
    pub fn bucket(&self, bucket: &str) {
        let mut made = self.buckets.lock().expect("buckets");
        if made.contains(bucket) {
            return;
        }
        poll(30, || self.cli(&["bucket", "create", bucket]).map(|_| ()))
            .unwrap_or_else(|e| panic!("garage bucket create: {e}"));
        self.cli(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            bucket,
            "--key",
            "lumen-test",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        poll(30, || self.list(bucket).map(|_| ()))
            .unwrap_or_else(|e| panic!("bucket {bucket} not served: {e}"));
        made.insert(bucket.to_string());
    }

    /// The `[storage]` table of a Lumen configuration for `bucket` (orphans older than
    /// `orphan_age_s` are swept).
    pub fn storage_toml(&self, bucket: &str, orphan_age_s: Option<u64>) -> String {
        let mut t = format!(
            "[storage]\nkind = \"s3\"\nbucket = \"{bucket}\"\nendpoint = \"{}\"\nregion = \"{REGION}\"\n\
             access_key_id = \"{}\"\nsecret_access_key = \"{}\"\n",
            self.endpoint, self.key_id, self.secret
        );
        if let Some(a) = orphan_age_s {
            t.push_str(&format!("orphan_min_age_s = {a}\n"));
        }
        t
    }

    /// The same settings as a `LUMEN_STORAGE` environment value (an inline table).
    pub fn storage_env(&self, bucket: &str) -> String {
        format!(
            "{{kind=\"s3\",bucket=\"{bucket}\",endpoint=\"{}\",region=\"{REGION}\",\
             access_key_id=\"{}\",secret_access_key=\"{}\"}}",
            self.endpoint, self.key_id, self.secret
        )
    }

    /// An object_store client of `bucket` with the test key.
    pub fn client(&self, bucket: &str) -> object_store::aws::AmazonS3 {
        let _ = rustls::crypto::ring::default_provider().install_default();
        object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_region(REGION)
            .with_access_key_id(&self.key_id)
            .with_secret_access_key(&self.secret)
            .build()
            .expect("S3 client")
    }

    /// The keys in `bucket` with their last-modified times (ms since the epoch), read with
    /// a real S3 listing.
    pub fn list(&self, bucket: &str) -> Result<Vec<(String, i64)>, String> {
        use futures::TryStreamExt;
        use object_store::ObjectStore;
        let client = self.client(bucket);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            client
                .list(None)
                .map_ok(|m| {
                    (
                        m.location.as_ref().to_string(),
                        m.last_modified.timestamp_millis(),
                    )
                })
                .try_collect()
                .await
                .map_err(|e| e.to_string())
        })
    }

    /// Puts `bytes` at `key` in `bucket`.
    pub fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) {
        use object_store::ObjectStoreExt;
        let client = self.client(bucket);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(client.put(&object_store::path::Path::from(key), bytes.into()))
            .expect("put");
    }

    /// Stops the server (its data stays until this is dropped).
    pub fn stop(&mut self) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The Garage shared by the servers of one test binary run with
/// `LUMEN_TEST_STORAGE=s3`; `None` otherwise. Panics when S3 was asked for and Garage is
/// missing or fails.
pub fn shared() -> Option<&'static Garage> {
    static SHARED: OnceLock<Option<Garage>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            if std::env::var("LUMEN_TEST_STORAGE").as_deref() != Ok("s3") {
                return None;
            }
            let bin = garage_bin().expect(
                "LUMEN_TEST_STORAGE=s3 needs garage (LUMEN_GARAGE or scripts/deps.sh test)",
            );
            Some(Garage::start_with(&bin).unwrap_or_else(|e| panic!("garage did not start: {e}")))
        })
        .as_ref()
}

/// A bucket name for a data directory (one bucket per archive).
pub fn bucket_for(data: &Path) -> String {
    use sha2::Digest;
    let abs = std::path::absolute(data).unwrap_or_else(|_| data.to_path_buf());
    let h = hex::encode(sha2::Sha256::digest(abs.to_string_lossy().as_bytes()));
    format!("lumen-{}", &h[..20])
}
