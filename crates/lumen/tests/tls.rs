//! TLS on both front doors, driven by the clients people use: curl over HTTPS (health,
//! login with a `Secure` cookie, QIDO-RS with a bearer token, HTTP/2, refusals) and DCMTK's
//! `storescu +tls` / `echoscu +tls` on the DICOM TLS listener (PS3.15 Annex B), with and
//! without peer authentication; and the start-up checks of the certificate and key files.

mod util;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use util::*;

/// A test CA with a server certificate for 127.0.0.1/localhost and a client certificate,
/// written as PEM files (keys with mode 0600).
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn pki(dir: &Path) -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose, SanType,
    };
    use std::os::unix::fs::PermissionsExt;
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "Lumen test CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key"))
        .expect("CA certificate");
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
    let (cert, key) = leaf("localhost", ExtendedKeyUsagePurpose::ServerAuth);
    let (client_cert, client_key) = leaf("STORESCU", ExtendedKeyUsagePurpose::ClientAuth);
    std::fs::create_dir_all(dir).expect("pki dir");
    let write = |name: &str, text: &str, mode: u32| {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write PEM");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        p
    };
    Pki {
        ca: write("ca.pem", &issuer.pem(), 0o644),
        cert: write("server.pem", &cert, 0o644),
        key: write("server.key", &key, 0o600),
        client_cert: write("client.pem", &client_cert, 0o644),
        client_key: write("client.key", &client_key, 0o600),
    }
}

fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// curl with a connect limit; its output.
fn curl(args: &[&str]) -> std::process::Output {
    run(Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args))
}

/// Polls QIDO-RS over HTTPS until `/dicom-web/instances` lists `n` instances (the C-STORE
/// responses came after the commits, so this holds at once; the deadline is for a loaded
/// machine).
fn wait_instances(server: &Server, ca: &Path, n: usize) {
    let url = format!("{}/dicom-web/instances", server.http());
    let auth = format!("Authorization: {}", server.auth());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = curl(&[
            "--cacert",
            p(ca),
            "-H",
            &auth,
            "-H",
            "Accept: application/dicom+json",
            "-w",
            "\n%{http_code}",
            &url,
        ]);
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        let (body, code) = out.rsplit_once('\n').unwrap_or(("", ""));
        let count = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.as_array().map(Vec::len))
            .unwrap_or(0);
        if o.status.success() && code == "200" && count == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "QIDO-RS over HTTPS: {count} of {n} instances (HTTP {code}): {}",
            text(&o)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn lidc(n: usize) -> Option<Vec<PathBuf>> {
    let data = shared_data()?;
    if !data.join("lidc-idri-0001/ct").is_dir() {
        if std::env::var("LUMEN_REQUIRE_DATA").as_deref() == Ok("1") {
            panic!("lidc-idri-0001/ct is missing but LUMEN_REQUIRE_DATA=1");
        }
        eprintln!("SKIP: ../shared/data/lidc-idri-0001/ct not found; test skipped");
        return None;
    }
    Some(lidc_files(&data).into_iter().take(n).collect())
}

#[test]
fn https_with_curl_health_login_qido_and_refusals() {
    if !have_tool("curl") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let pki = pki(&tmp.path().join("pki"));
    let server = Server::start_tls(
        &tmp.path().join("d"),
        &pki.ca,
        &["--tls-cert", p(&pki.cert), "--tls-key", p(&pki.key)],
    );
    let base = server.http();
    assert!(base.starts_with("https://"), "{base}");
    assert!(
        server.log().contains(&format!(
            "DICOMweb at https://127.0.0.1:{}",
            server.http_port
        )),
        "{}",
        server.log()
    );

    // Health, verified against the test CA.
    let o = curl(&["--cacert", p(&pki.ca), &format!("{base}/health")]);
    assert!(o.status.success(), "curl --cacert /health: {}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "ok");

    // HTTP/2 is offered through ALPN; HTTP/1.1 still works.
    let o = curl(&[
        "--cacert",
        p(&pki.ca),
        "--http2",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version}",
        &format!("{base}/health"),
    ]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "2", "{}", text(&o));
    let o = curl(&[
        "--cacert",
        p(&pki.ca),
        "--http1.1",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version}",
        &format!("{base}/health"),
    ]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "1.1", "{}", text(&o));

    // Login over HTTPS: the session cookie is Secure.
    let (user, _, password) = TEST_USERS[0];
    let body = serde_json::json!({ "username": user, "password": password }).to_string();
    let o = curl(&[
        "--cacert",
        p(&pki.ca),
        "-i",
        "-H",
        "Content-Type: application/json",
        "-d",
        &body,
        &format!("{base}/api/auth/login"),
    ]);
    let answer = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "login: {}", text(&o));
    let cookies: Vec<&str> = answer
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .collect();
    assert!(!cookies.is_empty(), "no cookie: {answer}");
    for c in &cookies {
        assert!(c.contains("; Secure"), "cookie without Secure: {c}");
    }
    let token = answer
        .split("\r\n\r\n")
        .nth(1)
        .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        .and_then(|v| v["token"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no token in {answer}"));

    // QIDO-RS with the bearer token.
    let o = curl(&[
        "--cacert",
        p(&pki.ca),
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        &format!("Authorization: Bearer {token}"),
        &format!("{base}/dicom-web/studies"),
    ]);
    let code = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(code == "200" || code == "204", "QIDO-RS: {}", text(&o));
    // Without the token: 401, over TLS as well.
    let o = curl(&[
        "--cacert",
        p(&pki.ca),
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("{base}/dicom-web/studies"),
    ]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "401", "{}", text(&o));

    // Plain HTTP to the HTTPS port gets no answer.
    let o = curl(&[&format!("http://127.0.0.1:{}/health", server.http_port)]);
    assert!(
        !o.status.success() && String::from_utf8_lossy(&o.stdout) != "ok",
        "plain HTTP was answered: {}",
        text(&o)
    );
    // Without the CA, curl refuses the certificate (exit 60: peer certificate not verified).
    let o = curl(&[&format!("{base}/health")]);
    assert_eq!(
        o.status.code(),
        Some(60),
        "curl without --cacert: {}",
        text(&o)
    );

    // The harness's own client (rustls via ureq) reads JSON over HTTPS too.
    let (status, _, _) = server.get_raw("/api/worklist", None);
    assert_eq!(status, 200);

    // The audit trail has the client's address of requests over TLS (ConnectInfo).
    let o = curl(&[
        "--cacert",
        p(&pki.ca),
        "-H",
        &format!("Authorization: Bearer {}", server.admin_token),
        &format!("{base}/api/audit?user={user}"),
    ]);
    let events: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("audit answer ({e}): {}", text(&o)));
    let events = events.as_array().expect("audit events");
    assert!(!events.is_empty(), "no audit events of {user}");
    for e in events {
        assert_eq!(
            e["source"], "127.0.0.1",
            "audit event without the client address: {e}"
        );
    }
}

#[test]
fn storescu_over_dicom_tls_then_qido_over_https() {
    if !have_tool("curl") || !have_tool("storescu") || !have_tool("echoscu") {
        return;
    }
    let Some(files) = lidc(5) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let pki = pki(&tmp.path().join("pki"));
    let tls_port = free_port();
    let server = Server::start_tls(
        &tmp.path().join("d"),
        &pki.ca,
        &[
            "--tls-cert",
            p(&pki.cert),
            "--tls-key",
            p(&pki.key),
            "--dicom-tls",
            &format!("127.0.0.1:{tls_port}"),
        ],
    );
    let port = tls_port.to_string();
    // C-ECHO over TLS without a client certificate (none is asked for).
    let o = run(Command::new("echoscu").args([
        "+tla",
        "+cf",
        p(&pki.ca),
        "-aec",
        "LUMEN",
        "127.0.0.1",
        &port,
    ]));
    assert!(o.status.success(), "echoscu +tla: {}", text(&o));
    // C-STORE over TLS with the client's certificate.
    let o = run(Command::new("storescu")
        .args([
            "+tls",
            p(&pki.client_key),
            p(&pki.client_cert),
            "-pw",
            "+cf",
            p(&pki.ca),
            "-aec",
            "LUMEN",
            "127.0.0.1",
            &port,
        ])
        .args(&files));
    assert!(o.status.success(), "storescu +tls: {}", text(&o));
    wait_instances(&server, &pki.ca, files.len());
    // The plain DICOM port still serves plain DICOM.
    let o = run(Command::new("echoscu").args([
        "-aec",
        "LUMEN",
        "127.0.0.1",
        &server.dicom_port.to_string(),
    ]));
    assert!(o.status.success(), "plain echoscu: {}", text(&o));
    // A plain client on the TLS port gets no association.
    let o = run(Command::new("echoscu").args(["-to", "10", "-aec", "LUMEN", "127.0.0.1", &port]));
    assert!(
        !o.status.success(),
        "plain echoscu on the TLS port: {}",
        text(&o)
    );
}

#[test]
fn dicom_tls_client_ca_requires_a_client_certificate() {
    if !have_tool("curl") || !have_tool("storescu") || !have_tool("echoscu") {
        return;
    }
    let Some(files) = lidc(3) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let pki = pki(&tmp.path().join("pki"));
    let tls_port = free_port();
    // Everything from the [tls] table of the configuration file this time.
    let config = tmp.path().join("lumen.toml");
    std::fs::write(
        &config,
        format!(
            "[tls]\ncert = {:?}\nkey = {:?}\ndicom = \"127.0.0.1:{tls_port}\"\nclient_ca = {:?}\n",
            p(&pki.cert),
            p(&pki.key),
            p(&pki.ca)
        ),
    )
    .unwrap();
    let server = Server::start_tls(&tmp.path().join("d"), &pki.ca, &["--config", p(&config)]);
    let port = tls_port.to_string();
    let anonymous = run(Command::new("storescu")
        .args([
            "+tla",
            "+cf",
            p(&pki.ca),
            "-aec",
            "LUMEN",
            "127.0.0.1",
            &port,
        ])
        .args(&files));
    assert!(
        !anonymous.status.success(),
        "storescu without a client certificate was served: {}",
        text(&anonymous)
    );
    let o = run(Command::new("echoscu").args([
        "+tls",
        p(&pki.client_key),
        p(&pki.client_cert),
        "-pw",
        "+cf",
        p(&pki.ca),
        "-aec",
        "LUMEN",
        "127.0.0.1",
        &port,
    ]));
    assert!(o.status.success(), "echoscu +tls: {}", text(&o));
    let o = run(Command::new("storescu")
        .args([
            "+tls",
            p(&pki.client_key),
            p(&pki.client_cert),
            "-pw",
            "+cf",
            p(&pki.ca),
            "-aec",
            "LUMEN",
            "127.0.0.1",
            &port,
        ])
        .args(&files));
    assert!(
        o.status.success(),
        "storescu +tls with a certificate: {}",
        text(&o)
    );
    wait_instances(&server, &pki.ca, files.len());
    assert!(
        server.log().contains("TLS handshake failed"),
        "the refused handshake is not logged: {}",
        server.log()
    );
}

/// Runs `lumen serve` that must refuse to start; its stderr.
fn refused_start(tmp: &Path, extra: &[&str]) -> String {
    let mut child = Command::new(lumen_bin())
        .arg("serve")
        .arg("--data")
        .arg(tmp.join("refused"))
        .args(["--http", "127.0.0.1:0", "--dicom", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lumen serve");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut err)
                .expect("stderr");
            assert!(!status.success(), "lumen serve exited 0: {err}");
            return err;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("lumen serve started with {extra:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn bad_certificate_or_key_files_stop_the_start_with_their_path() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let pki = pki(&tmp.path().join("pki"));
    let key_pem = std::fs::read_to_string(&pki.key).unwrap();
    let mut messages = Vec::new();
    let mut refused = |extra: &[&str]| {
        let err = refused_start(tmp.path(), extra);
        messages.push(err.clone());
        err
    };

    // A key others may read.
    let open_key = tmp.path().join("open.key");
    std::fs::copy(&pki.key, &open_key).unwrap();
    std::fs::set_permissions(&open_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = refused(&["--tls-cert", p(&pki.cert), "--tls-key", p(&open_key)]);
    assert!(
        err.contains(p(&open_key)) && err.contains("chmod 600"),
        "{err}"
    );

    // The client's key with the server's certificate.
    let err = refused(&["--tls-cert", p(&pki.cert), "--tls-key", p(&pki.client_key)]);
    assert!(
        err.contains("does not fit") && err.contains(p(&pki.client_key)),
        "{err}"
    );

    // Not PEM, and absent.
    let err = refused(&["--tls-cert", p(&pki.key), "--tls-key", p(&pki.key)]);
    assert!(
        err.contains("no PEM certificate") && err.contains(p(&pki.key)),
        "{err}"
    );
    let missing = tmp.path().join("missing.pem");
    let err = refused(&["--tls-cert", p(&missing), "--tls-key", p(&pki.key)]);
    assert!(err.contains(p(&missing)), "{err}");
    // Half a configuration.
    let err = refused(&["--tls-cert", p(&pki.cert)]);
    assert!(err.contains("both cert and key"), "{err}");

    // No message shows key material.
    for err in &messages {
        for line in key_pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!err.contains(line), "{err}");
        }
    }
}

/// `[tls] http_client_ca`: HTTPS clients need a certificate from the CA (mutual TLS).
#[test]
fn http_client_ca_requires_a_client_certificate_over_https() {
    if !have_tool("curl") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let pki = pki(&tmp.path().join("pki"));
    let config = tmp.path().join("lumen.toml");
    std::fs::write(
        &config,
        format!(
            "[tls]\ncert = {:?}\nkey = {:?}\nhttp_client_ca = {:?}\n",
            p(&pki.cert),
            p(&pki.key),
            p(&pki.ca)
        ),
    )
    .unwrap();
    let port = free_port();
    let log = tmp.path().join("serve.log");
    let mut child = Command::new(lumen_bin())
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--data")
        .arg(tmp.path().join("d"))
        .args(["--http", &format!("127.0.0.1:{port}")])
        .args(["--dicom", &format!("127.0.0.1:{}", free_port())])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("lumen serve");
    let url = format!("https://127.0.0.1:{port}/health");
    let with_cert = [
        "--cacert",
        p(&pki.ca),
        "--cert",
        p(&pki.client_cert),
        "--key",
        p(&pki.client_key),
        &url,
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let o = curl(&with_cert);
        if o.status.success() && o.stdout == b"ok" {
            break;
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!(
                "no answer with a client certificate: {}\n{}",
                text(&o),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let o = curl(&["--cacert", p(&pki.ca), &url]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        !o.status.success() && o.stdout != b"ok",
        "answered without a client certificate: {}",
        text(&o)
    );
}
