//! A private PostgreSQL server for tests: `initdb` in a temporary directory, `postgres` on a
//! free loopback port, one database, stopped (and its directory removed) on drop, also when
//! the test panics.
//!
//! Skipped with a message when the PostgreSQL binaries are absent, unless
//! `LUMEN_REQUIRE_TOOLS=1` (then it fails). The binaries are looked for in `$LUMEN_PG_BIN`,
//! on `PATH`, and in Debian's `/usr/lib/postgresql/<version>/bin` (not on `PATH`).
//! PostgreSQL refuses to run as root: as root the server runs as `nobody`, owning its
//! temporary directory.
//!
//! Hand-written rather than a crate: the test-container crates need Docker, which the test
//! machines do not have; this starts the Debian package's own binaries.

#![allow(dead_code)]

use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The unprivileged account the server runs as when the tests run as root.
const NOBODY: u32 = 65534;

/// A running test server.
pub struct PgServer {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    /// `postgres://lumen@127.0.0.1:<port>/lumen`: the test database.
    pub url: String,
}

/// The directory holding `initdb`, `postgres`, `pg_isready` and `createdb`, if installed.
fn bin_dir() -> Option<PathBuf> {
    let has = |d: &Path| {
        ["initdb", "postgres", "pg_isready", "createdb"]
            .iter()
            .all(|b| d.join(b).is_file())
    };
    if let Some(d) = std::env::var_os("LUMEN_PG_BIN").map(PathBuf::from) {
        return has(&d).then_some(d);
    }
    if let Some(path) = std::env::var_os("PATH") {
        // `initdb` on PATH may be a link into the real directory, which also holds the
        // client programs (pg_isready, createdb).
        let real = std::env::split_paths(&path)
            .filter(|d| d.join("initdb").is_file())
            .filter_map(|d| std::fs::canonicalize(d.join("initdb")).ok())
            .filter_map(|p| p.parent().map(Path::to_path_buf))
            .find(|d| has(d));
        if real.is_some() {
            return real;
        }
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let d = e.path().join("bin");
            has(&d).then_some((v, d))
        })
        .collect();
    debian.sort();
    debian.pop().map(|(_, d)| d)
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A command of the server's binaries, run as `nobody` when the tests run as root.
fn command(bin: &Path, name: &str) -> Command {
    let mut c = Command::new(bin.join(name));
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        c.uid(NOBODY).gid(NOBODY);
    }
    c.stdin(Stdio::null());
    c
}

/// A client program of the server at `port` (over TCP, as the `lumen` role).
fn client(bin: &Path, name: &str, port: u16) -> Command {
    let mut c = command(bin, name);
    c.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "lumen"]);
    c
}

fn run(mut c: Command, what: &str) {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts a server, or returns `None` (after saying why) when PostgreSQL is not installed
/// and `LUMEN_REQUIRE_TOOLS` is not `1`.
pub fn start() -> Option<PgServer> {
    let Some(bin) = bin_dir() else {
        if std::env::var("LUMEN_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!(
                "PostgreSQL (initdb, postgres) not found and LUMEN_REQUIRE_TOOLS=1: run scripts/deps.sh test"
            );
        }
        eprintln!("SKIPPED: PostgreSQL not installed (scripts/deps.sh test installs it)");
        return None;
    };
    let dir = tempfile::Builder::new()
        .prefix("lumen-pg")
        .tempdir()
        .expect("temporary directory");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let c = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes())
            .expect("path without NUL");
        // SAFETY: a valid NUL-terminated path.
        let rc = unsafe { libc::chown(c.as_ptr(), NOBODY, NOBODY) };
        assert_eq!(rc, 0, "chown of the server directory to nobody");
    }
    let data = dir.path().join("data");
    let mut init = command(&bin, "initdb");
    init.arg("-D").arg(&data).args([
        "-U",
        "lumen",
        "--auth=trust",
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync",
    ]);
    run(init, "initdb");
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("server.log")).expect("server log");
    // SAFETY (as for the others): geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let c =
            std::ffi::CString::new(dir.path().join("server.log").as_os_str().as_encoded_bytes())
                .expect("path without NUL");
        // SAFETY: a valid NUL-terminated path.
        unsafe { libc::chown(c.as_ptr(), NOBODY, NOBODY) };
    }
    let child = command(&bin, "postgres")
        .arg("-D")
        .arg(&data)
        .arg("-k")
        .arg(dir.path())
        .args(["-p", &port.to_string()])
        .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
        .args(["-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .expect("postgres starts");
    let server = PgServer {
        child,
        port,
        url: format!("postgres://lumen@127.0.0.1:{port}/lumen"),
        dir,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = client(&bin, "pg_isready", port)
            .arg("-q")
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ready {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "PostgreSQL did not accept connections within 60 s: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut create = client(&bin, "createdb", port);
    create.arg("lumen");
    run(create, "createdb");
    Some(server)
}

impl PgServer {
    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// A new, empty database on this server, by URL.
    pub fn database(&self, name: &str) -> String {
        let bin = bin_dir().expect("binaries found at start");
        let mut create = client(&bin, "createdb", self.port);
        create.arg(name);
        run(create, "createdb");
        format!("postgres://lumen@127.0.0.1:{}/{name}", self.port)
    }
}

impl PgServer {
    /// Stops the server and removes its directory, for a server that lives as long as the
    /// test process (a static, which is never dropped): called at exit.
    pub fn shutdown(&self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: signalling and reaping our own child process.
            unsafe { libc::kill(pid, libc::SIGINT) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                // SAFETY: as above; WNOHANG does not block.
                let r = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
                if r != 0 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = std::fs::remove_dir_all(self.dir.path());
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // SIGINT: PostgreSQL's fast shutdown (disconnects clients, no checkpoint wait).
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: signalling our own child process.
            unsafe { libc::kill(pid, libc::SIGINT) };
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
