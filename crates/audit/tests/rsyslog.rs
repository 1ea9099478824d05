//! The forwarder against a real rsyslog: plain TCP with octet counting (RFC 6587), and TLS
//! (RFC 5425) with mutual authentication, with rsyslog started by the test on a loopback
//! port, its own configuration and work directory, and an omfile action that writes every
//! raw message into a file the test reads.
//!
//! Skips with a message when rsyslogd (Debian packages rsyslog, rsyslog-gnutls) is absent,
//! unless `LUMEN_REQUIRE_TOOLS=1`, which makes that a failure. Every wait is a poll with a
//! deadline, so a loaded machine only makes the test slower.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lumen_audit::{AuditLog, AuditSource, Forwarder, Sender, SyslogConfig, Transport};
use lumen_model::{AuditAction, AuditChannel, AuditEvent, AuditOutcome};
use tokio::sync::Notify;

const DEADLINE: Duration = Duration::from_secs(60);
const STUDY_ROOT: &str = "1.2.826.0.1.3680043.8.498";

fn rsyslogd() -> Option<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join("rsyslogd"));
    let found = candidates.into_iter().find(|p| p.is_file());
    if found.is_none() {
        if std::env::var("LUMEN_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!(
                "rsyslogd not found and LUMEN_REQUIRE_TOOLS=1 (apt-get install rsyslog rsyslog-gnutls)"
            );
        }
        eprintln!("skipping: rsyslogd not found (apt-get install rsyslog rsyslog-gnutls)");
    }
    found
}

/// The audit log in memory, as the store side would keep it in the index.
#[derive(Clone, Default)]
struct MemLog(Arc<Mutex<(Vec<AuditEvent>, i64)>>);

impl MemLog {
    fn push(&self, event: AuditEvent) {
        if let Ok(mut g) = self.0.lock() {
            g.0.push(event);
        }
    }

    fn cursor(&self) -> i64 {
        self.0.lock().map(|g| g.1).unwrap_or(-1)
    }
}

impl AuditLog for MemLog {
    async fn events_after(&self, after: i64, limit: usize) -> Result<Vec<AuditEvent>, String> {
        let g = self.0.lock().map_err(|e| e.to_string())?;
        Ok(g.0
            .iter()
            .filter(|e| e.seq > after)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn forwarded_up_to(&self) -> Result<i64, String> {
        Ok(self.cursor())
    }

    async fn set_forwarded_up_to(&self, seq: i64) -> Result<(), String> {
        let mut g = self.0.lock().map_err(|e| e.to_string())?;
        g.1 = seq;
        Ok(())
    }
}

fn event(seq: i64) -> AuditEvent {
    let action = AuditAction::ALL[seq as usize % AuditAction::ALL.len()];
    let action = if action.is_security_event() {
        AuditAction::View
    } else {
        action
    };
    AuditEvent {
        seq,
        time: "2026-12-02T17:03:04.123Z".into(),
        user: format!("dr-{seq}"),
        role: "radiologist".into(),
        org: "org-1".into(),
        action,
        outcome: if seq % 3 == 0 {
            AuditOutcome::Denied
        } else {
            AuditOutcome::Success
        },
        channel: AuditChannel::Http,
        source: Some("192.0.2.7".into()),
        study_uid: Some(format!("{STUDY_ROOT}.{seq}")),
        series_uid: None,
        patient_id: Some(format!("P-{seq}")),
        patient_name: Some("Doe^Jane <李> & \"Co\"\n".into()),
        detail: "GET /dicom-web/studies?PatientName=Doe".into(),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

struct TlsFiles {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// An rsyslogd child process with its own configuration, work directory and output file.
struct Rsyslog {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Rsyslog {
    fn start(bin: PathBuf, dir: &Path, tls: Option<&TlsFiles>) -> Rsyslog {
        let port = free_port();
        let work = dir.join("work");
        std::fs::create_dir_all(&work).expect("work dir");
        let out = dir.join("out.log");
        let global_tls = match tls {
            Some(t) => format!(
                "DefaultNetstreamDriver=\"gtls\" DefaultNetstreamDriverCAFile=\"{}\" DefaultNetstreamDriverCertFile=\"{}\" DefaultNetstreamDriverKeyFile=\"{}\"",
                t.ca.display(),
                t.cert.display(),
                t.key.display()
            ),
            None => String::new(),
        };
        let module = match tls {
            Some(_) => {
                "module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"x509/certvalid\")"
            }
            None => "module(load=\"imtcp\")",
        };
        let conf = format!(
            "global(workDirectory=\"{work}\" maxMessageSize=\"64k\" {global_tls})\n\
             {module}\n\
             template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
             ruleset(name=\"audit\") {{\n  action(type=\"omfile\" file=\"{out}\" template=\"raw\")\n}}\n\
             input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"audit\")\n",
            work = work.display(),
            out = out.display(),
        );
        std::fs::write(dir.join("rsyslog.conf"), conf).expect("write rsyslog.conf");
        let mut r = Rsyslog {
            bin,
            dir: dir.to_owned(),
            port,
            child: None,
        };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let pidfile = self.dir.join("rsyslogd.pid");
        let _ = std::fs::remove_file(&pidfile);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("rsyslogd.stderr"))
            .expect("stderr file");
        let child = Command::new(&self.bin)
            .arg("-n")
            .arg("-f")
            .arg(self.dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(&pidfile)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("stderr file"))
            .stderr(log)
            .spawn()
            .expect("start rsyslogd");
        self.child = Some(child);
        // Ready when it accepts connections.
        let start = Instant::now();
        loop {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("rsyslogd exited with {status}: {}", self.stderr());
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "rsyslogd did not listen on {} within {DEADLINE:?}: {}",
                self.port,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("rsyslogd.stderr")).unwrap_or_default()
    }

    /// The messages written so far, one a line.
    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("out.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Waits until at least `n` messages arrived.
    async fn wait_for_lines(&self, n: usize) -> Vec<String> {
        let start = Instant::now();
        loop {
            let lines = self.lines();
            if lines.len() >= n {
                return lines;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{} of {n} messages arrived within {DEADLINE:?}; rsyslogd said: {}",
                lines.len(),
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn wait_for_cursor(log: &MemLog, seq: i64) {
    let start = Instant::now();
    while log.cursor() < seq {
        assert!(
            start.elapsed() < DEADLINE,
            "cursor at {} not {seq} within {DEADLINE:?}",
            log.cursor()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks one received line: the RFC 5424 header ATNA asks for, and an audit message whose
/// XML parses and names the study, the user and the outcome. Returns the event's seq (the
/// last component of the study UID).
fn check_line(line: &str) -> i64 {
    let (header, xml) = line
        .split_once('\u{FEFF}')
        .unwrap_or_else(|| panic!("no BOM before the XML: {line}"));
    let fields: Vec<&str> = header.split(' ').collect();
    assert!(
        fields[0] == "<85>1" || fields[0] == "<84>1",
        "PRI/VERSION {}",
        fields[0]
    );
    assert_eq!(fields[3], "lumen", "APP-NAME in {header}");
    assert_eq!(fields[5], "IHE+RFC-3881", "MSGID in {header}");
    assert_eq!(fields[6], "-", "STRUCTURED-DATA in {header}");
    let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("XML: {e}: {xml}"));
    let study = doc
        .descendants()
        .find(|n| {
            n.has_tag_name("ParticipantObjectIdentification")
                && n.attribute("ParticipantObjectTypeCode") == Some("2")
                && n.attribute("ParticipantObjectTypeCodeRole") == Some("3")
                && n.attribute("ParticipantObjectID")
                    .is_some_and(|id| id.starts_with(STUDY_ROOT))
        })
        .and_then(|n| n.attribute("ParticipantObjectID"))
        .unwrap_or_else(|| panic!("no study in {xml}"));
    let seq: i64 = study
        .rsplit('.')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("seq in the study UID");
    let user = doc
        .descendants()
        .find(|n| {
            n.has_tag_name("ActiveParticipant") && n.attribute("UserIsRequestor") == Some("true")
        })
        .and_then(|n| n.attribute("UserID"));
    assert_eq!(user, Some(format!("dr-{seq}").as_str()));
    let outcome = doc
        .descendants()
        .find(|n| n.has_tag_name("EventIdentification"))
        .and_then(|n| n.attribute("EventOutcomeIndicator"));
    let expected = if seq % 3 == 0 { "4" } else { "0" };
    assert_eq!(outcome, Some(expected), "outcome of {seq}");
    let expected_pri = if seq % 3 == 0 { "<84>1" } else { "<85>1" };
    assert_eq!(fields[0], expected_pri, "PRI of {seq}");
    let patient = doc
        .descendants()
        .find(|n| {
            n.has_tag_name("ParticipantObjectName")
                && n.text().is_some_and(|t| t.starts_with("Doe"))
        })
        .and_then(|n| n.text());
    assert_eq!(
        patient,
        Some("Doe^Jane <李> & \"Co\"\n"),
        "patient name round trip"
    );
    seq
}

fn forwarder(config: &SyslogConfig, log: &MemLog) -> Forwarder<MemLog> {
    Forwarder::new(config, AuditSource::new("LUMEN"), log.clone())
        .expect("valid config")
        .with_batch(4)
        .with_poll_interval(Duration::from_millis(500))
        .with_backoff(Duration::from_millis(50), Duration::from_millis(500))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_in_order_and_catches_up_after_rsyslog_restarts() {
    let Some(bin) = rsyslogd() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rsyslog = Rsyslog::start(bin, dir.path(), None);
    let log = MemLog::default();
    for seq in 1..=5 {
        log.push(event(seq));
    }
    let config = SyslogConfig {
        address: rsyslog.address(),
        transport: Transport::Tcp,
        ca: None,
        client_cert: None,
        client_key: None,
        server_name: None,
        hostname: Some("lumen-test".into()),
        app_name: None,
    };
    let fwd = forwarder(&config, &log);
    let notify: Arc<Notify> = fwd.notifier();
    let task = fwd.spawn();

    let lines = rsyslog.wait_for_lines(5).await;
    wait_for_cursor(&log, 5).await;
    let seqs: Vec<i64> = lines.iter().map(|l| check_line(l)).collect();
    assert_eq!(seqs, (1..=5).collect::<Vec<_>>());

    // The repository goes away; events recorded meanwhile wait in the log.
    rsyslog.kill();
    for seq in 6..=11 {
        log.push(event(seq));
    }
    notify.notify_one();
    // While it is down nothing is delivered, so the cursor stays where it was.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        log.cursor(),
        5,
        "cursor moved while the repository was down"
    );

    // Back on the same port: the forwarder reconnects and catches up, in order.
    rsyslog.spawn();
    let lines = rsyslog.wait_for_lines(11).await;
    wait_for_cursor(&log, 11).await;
    let seqs: Vec<i64> = lines.iter().map(|l| check_line(l)).collect();
    assert_eq!(seqs, (1..=11).collect::<Vec<_>>(), "order and count");

    // A commit wakes it at once (well before the 500 ms poll would matter under load,
    // but the check is only that it arrives).
    log.push(event(12));
    notify.notify_one();
    let lines = rsyslog.wait_for_lines(12).await;
    assert_eq!(check_line(&lines[11]), 12);
    task.abort();
}

fn write_tls_files(dir: &Path) -> (TlsFiles, TlsFiles, PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose, SanType,
    };
    fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
    }
    let issuer = ca("Lumen test CA");
    let other = ca("Some other CA");
    let leaf = |cn: &str, purpose: ExtendedKeyUsagePurpose| {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![purpose];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &issuer).expect("signed");
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf("localhost", ExtendedKeyUsagePurpose::ServerAuth);
    let (client_cert, client_key) = leaf("lumen", ExtendedKeyUsagePurpose::ClientAuth);
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write PEM");
        p
    };
    let server = TlsFiles {
        ca: write("ca.pem", &issuer.pem()),
        cert: write("server.pem", &server_cert),
        key: write("server.key", &server_key),
    };
    let client = TlsFiles {
        ca: server.ca.clone(),
        cert: write("client.pem", &client_cert),
        key: write("client.key", &client_key),
    };
    let wrong_ca = write("other-ca.pem", &other.pem());
    (server, client, wrong_ca)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_mutual_auth_delivers_catches_up_and_refuses_a_wrong_ca_or_no_client_cert() {
    let Some(bin) = rsyslogd() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).expect("certs dir");
    let (server, client, wrong_ca) = write_tls_files(&certs);
    let mut rsyslog = Rsyslog::start(bin, &dir.path().join("rsyslog"), Some(&server));

    let good = SyslogConfig {
        address: rsyslog.address(),
        transport: Transport::Tls,
        ca: Some(client.ca.clone()),
        client_cert: Some(client.cert.clone()),
        client_key: Some(client.key.clone()),
        server_name: Some("localhost".into()),
        hostname: None,
        app_name: None,
    };

    // A wrong CA: the handshake fails, nothing is delivered and the cursor stays.
    let bad = SyslogConfig {
        ca: Some(wrong_ca),
        ..good.clone()
    };
    let err = Sender::new(&bad)
        .expect("config is well formed")
        .connect()
        .await
        .expect_err("a server certificate from another CA is refused");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    let bad_log = MemLog::default();
    for seq in 1..=2 {
        bad_log.push(event(seq));
    }
    let bad_task = forwarder(&bad, &bad_log).spawn();
    // No client certificate: rsyslog (x509/certvalid) refuses the session right after the
    // handshake; the forwarder must notice and not count anything as delivered.
    let anon = SyslogConfig {
        client_cert: None,
        client_key: None,
        ..good.clone()
    };
    let anon_log = MemLog::default();
    anon_log.push(event(1));
    let anon_task = forwarder(&anon, &anon_log).spawn();

    // The right CA and a client certificate: everything arrives, in order.
    let log = MemLog::default();
    for seq in 1..=6 {
        log.push(event(seq));
    }
    let task = forwarder(&good, &log).spawn();
    let lines = rsyslog.wait_for_lines(6).await;
    wait_for_cursor(&log, 6).await;
    let seqs: Vec<i64> = lines.iter().map(|l| check_line(l)).collect();
    assert_eq!(seqs, (1..=6).collect::<Vec<_>>());

    // By now the wrong-CA forwarder has been retrying for as long as the good one took;
    // give it another second of attempts and check that it got nothing through.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(bad_log.cursor(), 0, "cursor moved with a wrong CA");
    assert_eq!(
        anon_log.cursor(),
        0,
        "cursor moved without a client certificate"
    );
    assert_eq!(
        rsyslog.lines().len(),
        6,
        "a message got through with a wrong CA or without a client certificate"
    );
    bad_task.abort();
    anon_task.abort();

    // Over TLS too, a restart of the repository loses nothing.
    rsyslog.kill();
    for seq in 7..=9 {
        log.push(event(seq));
    }
    rsyslog.spawn();
    let lines = rsyslog.wait_for_lines(9).await;
    wait_for_cursor(&log, 9).await;
    let seqs: Vec<i64> = lines.iter().map(|l| check_line(l)).collect();
    assert_eq!(
        seqs,
        (1..=9).collect::<Vec<_>>(),
        "order and count after a restart"
    );
    task.abort();
}
