//! Accounts, roles, organisations and the audit trail, end to end on a real `lumen serve`:
//! the permission matrix (every HTTP route and DIMSE service x every role x own and other
//! organisation), attacks (traversal, injection, forged, oversized, revoked and expired
//! tokens, CSRF, password guessing, malformed bodies), the audit trail, and patient data
//! kept out of the debug log.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use util::*;

/// CT_small.dcm: the node's own organisation's study.
const OWN_STUDY: &str = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322";
const OWN_SERIES: &str = "1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322";
const OWN_SOP: &str = "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322";
/// MR_small.dcm: clinic B's study.
const OTHER_STUDY: &str = "1.3.6.1.4.1.5962.1.2.4.20040826185059.5457";
const OTHER_SERIES: &str = "1.3.6.1.4.1.5962.1.3.4.1.20040826185059.5457";
const OTHER_SOP: &str = "1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457";

fn samples(data: &Path) -> (PathBuf, PathBuf) {
    let d = data.join("dicom-samples/pydicom-3.0.2-test-files");
    (d.join("CT_small.dcm"), d.join("MR_small.dcm"))
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// One request: status and body text.
fn req(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> (u16, String) {
    let url = format!("{}{path}", server.http());
    let a = agent();
    let r = match method {
        "GET" => {
            let mut r = a.get(&url);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.call()
        }
        "POST" | "PUT" => {
            let mut r = if method == "POST" {
                a.post(&url)
            } else {
                a.put(&url)
            };
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            match body {
                Some(b) => r.send(b),
                None => r.send_empty(),
            }
        }
        _ => panic!("method {method}"),
    };
    let mut r = r.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = r.status().as_u16();
    let text = r
        .body_mut()
        .with_config()
        .limit(1 << 28)
        .read_to_string()
        .unwrap_or_default();
    (status, text)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn import(data_dir: &Path, org: Option<&str>, file: &Path) {
    let mut c = Command::new(lumen_bin());
    c.arg("import").arg("--data").arg(data_dir);
    if let Some(o) = org {
        c.args(["--org", o]);
    }
    let out = run(c.arg(file));
    assert!(
        out.status.success(),
        "import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A server with the two studies, the test users of the node's organisation, and
/// `b-radiologist` of clinic B; the AE title CLINICB acts for clinic B.
fn two_org_server(tmp: &Path, data: &Path, extra_config: &str) -> (Server, String) {
    let dir = tmp.join("data");
    let (ct, mr) = samples(data);
    import(&dir, None, &ct);
    import(&dir, Some("clinic-b"), &mr);
    add_user(
        &dir,
        "b-radiologist",
        "radiologist",
        Some("clinic-b"),
        "clinic-b-password-1",
    );
    let cfg = tmp.join("lumen.toml");
    std::fs::write(
        &cfg,
        format!(
            "peers = [\"CLINICB=127.0.0.1:9\", \"LOCALAE=127.0.0.1:9\"]\n\
             [[ae]]\ntitle = \"CLINICB\"\norg = \"clinic-b\"\n{extra_config}"
        ),
    )
    .expect("config");
    let server = Server::start_in(&dir, &["--config", &cfg.to_string_lossy()]);
    let b = login(&server.http(), "b-radiologist", "clinic-b-password-1");
    (server, b)
}

fn study_count(body: &str) -> usize {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(usize::MAX)
}

/// Every HTTP route x every role x own and other organisation, with the expected answer.
#[test]
fn permission_matrix_http() {
    let Some(data) = shared_data() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let (server, b_token) = two_org_server(tmp.path(), &data, "");
    let referrer = login(&server.http(), "test-referrer", "referrer-password-1");
    let roles: Vec<(&str, String)> = vec![
        ("radiologist", server.token.clone()),
        ("technologist", server.tech_token.clone()),
        ("referrer", referrer),
        ("admin", server.admin_token.clone()),
    ];
    // (method, path, body, expected status per role for the own study, and for the other
    // organisation's study). `{s}`, `{se}`, `{i}` are the study, series and instance.
    type Row = (
        &'static str,
        &'static str,
        Option<&'static str>,
        [u16; 4],
        [u16; 4],
    );
    let rows: Vec<Row> = vec![
        // QIDO-RS: searching is allowed, but another organisation's studies are not found.
        (
            "GET",
            "/dicom-web/studies?StudyInstanceUID={s}",
            None,
            [200, 200, 200, 403],
            [200, 200, 200, 403],
        ),
        (
            "GET",
            "/dicom-web/studies/{s}/series",
            None,
            [200, 200, 200, 403],
            [200, 200, 200, 403],
        ),
        (
            "GET",
            "/dicom-web/studies/{s}/series/{se}/instances",
            None,
            [200, 200, 200, 403],
            [200, 200, 200, 403],
        ),
        // WADO-RS.
        (
            "GET",
            "/dicom-web/studies/{s}/metadata",
            None,
            [200, 200, 200, 403],
            [404, 404, 404, 403],
        ),
        (
            "GET",
            "/dicom-web/studies/{s}/series/{se}/instances/{i}",
            None,
            [200, 200, 200, 403],
            [404, 404, 404, 403],
        ),
        (
            "GET",
            "/dicom-web/studies/{s}/series/{se}/instances/{i}/frames/1",
            None,
            [200, 200, 200, 403],
            [404, 404, 404, 403],
        ),
        (
            "GET",
            "/dicom-web/studies/{s}/series/{se}/instances/{i}/rendered",
            None,
            [200, 200, 200, 403],
            [404, 404, 404, 403],
        ),
        // The web app's API.
        (
            "GET",
            "/api/studies/{s}/review",
            None,
            [200, 403, 403, 403],
            [404, 403, 403, 403],
        ),
        // No AI result for these tiny studies: "not analysed" for the own, "no such study" for the other.
        (
            "GET",
            "/api/studies/{s}/seg-overlay",
            None,
            [404, 403, 403, 403],
            [404, 403, 403, 403],
        ),
        (
            "GET",
            "/api/studies/{s}/ai",
            None,
            [200, 403, 403, 403],
            [404, 403, 403, 403],
        ),
        // A referrer reads only a signed report: none yet.
        (
            "GET",
            "/api/studies/{s}/report",
            None,
            [200, 403, 404, 403],
            [404, 403, 404, 403],
        ),
        (
            "PUT",
            "/api/studies/{s}/report",
            Some(
                r#"{"lang":"en","sections":{"findings":"f","impression":"i","recommendation":"r"}}"#,
            ),
            [200, 403, 403, 403],
            [404, 403, 403, 403],
        ),
        (
            "GET",
            "/api/studies/{s}/report.pdf",
            None,
            [404, 403, 404, 403],
            [404, 403, 404, 403],
        ),
        (
            "POST",
            "/api/studies/{s}/findings/ai-1/accept",
            None,
            [404, 403, 403, 403],
            [404, 403, 403, 403],
        ),
        // De-identified export (a ZIP): radiologists of the study's organisation.
        (
            "GET",
            "/api/studies/{s}/export",
            None,
            [200, 403, 403, 403],
            [404, 403, 403, 403],
        ),
        // Administration.
        (
            "GET",
            "/api/audit?study={s}",
            None,
            [403, 403, 403, 200],
            [403, 403, 403, 200],
        ),
        (
            "GET",
            "/api/users",
            None,
            [403, 403, 403, 200],
            [403, 403, 403, 200],
        ),
        (
            "GET",
            "/api/auth/me",
            None,
            [200, 200, 200, 200],
            [200, 200, 200, 200],
        ),
    ];
    for (method, path, body, own, other) in &rows {
        for (which, (study, series, sop), expected) in [
            ("own", (OWN_STUDY, OWN_SERIES, OWN_SOP), own),
            ("other", (OTHER_STUDY, OTHER_SERIES, OTHER_SOP), other),
        ] {
            let p = path
                .replace("{s}", study)
                .replace("{se}", series)
                .replace("{i}", sop);
            for ((role, token), want) in roles.iter().zip(expected.iter()) {
                let auth = bearer(token);
                let mut h = vec![("Authorization", auth.as_str()), ("Accept", "*/*")];
                if body.is_some() {
                    h.push(("Content-Type", "application/json"));
                }
                let (status, text) = req(&server, method, &p, &h, body.map(str::as_bytes));
                assert_eq!(
                    status, *want,
                    "{method} {path} as {role} on the {which} study: {text}"
                );
                // A search by another organisation's user finds nothing of this one.
                if status == 200 && p.starts_with("/dicom-web/studies?") {
                    let n = study_count(&text);
                    assert_eq!(n, usize::from(which == "own"), "{p} as {role}: {text}");
                }
                if status == 200 && p.ends_with("/series") {
                    let n = study_count(&text);
                    assert_eq!(n, usize::from(which == "own"), "{p} as {role}: {text}");
                }
                // Denials leak nothing: no UID of the study in the answer.
                if status >= 400 {
                    assert!(
                        !text.contains(study),
                        "{p} as {role} leaked the UID: {text}"
                    );
                }
            }
            // Clinic B's radiologist sees the mirror image.
            let auth = bearer(&b_token);
            let (status, _) = req(
                &server,
                method,
                &p,
                &[
                    ("Authorization", auth.as_str()),
                    ("Accept", "*/*"),
                    ("Content-Type", "application/json"),
                ],
                body.map(str::as_bytes),
            );
            let mirrored = if which == "own" { other[0] } else { own[0] };
            assert_eq!(
                status, mirrored,
                "{method} {path} as clinic B's radiologist on the {which} study"
            );
        }
    }
    // The worklist: each organisation's own study only; referrers and admins have none.
    for ((role, token), want) in roles.iter().zip([200u16, 200, 403, 403]) {
        let auth = bearer(token);
        let (status, text) = req(
            &server,
            "GET",
            "/api/worklist",
            &[("Authorization", &auth)],
            None,
        );
        assert_eq!(status, want, "worklist as {role}: {text}");
        if status == 200 {
            assert!(
                text.contains(OWN_STUDY) && !text.contains(OTHER_STUDY),
                "{text}"
            );
            let v: Value = serde_json::from_str(&text).expect("json");
            assert_eq!(v["total"], 1, "{text}");
        }
    }
    let auth = bearer(&b_token);
    let (_, text) = req(
        &server,
        "GET",
        "/api/worklist",
        &[("Authorization", &auth)],
        None,
    );
    assert!(
        text.contains(OTHER_STUDY) && !text.contains(OWN_STUDY),
        "{text}"
    );
    // STOW-RS: technologists store; other roles are refused before the body is read.
    let (ct, _) = samples(&data);
    let bytes = std::fs::read(&ct).expect("CT_small");
    let mut body = b"--b\r\nContent-Type: application/dicom\r\n\r\n".to_vec();
    body.extend_from_slice(&bytes);
    body.extend_from_slice(b"\r\n--b--\r\n");
    let ct_header = "multipart/related; type=\"application/dicom\"; boundary=b";
    for ((role, token), want) in roles.iter().zip([403u16, 200, 403, 403]) {
        let auth = bearer(token);
        let (status, text) = req(
            &server,
            "POST",
            "/dicom-web/studies",
            &[
                ("Authorization", &auth),
                ("Content-Type", ct_header),
                ("Accept", "application/dicom+json"),
            ],
            Some(&body),
        );
        assert_eq!(status, want, "STOW-RS as {role}: {text}");
    }
    // Requeue the AI: radiologists only.
    for ((role, token), want) in roles.iter().zip([202u16, 403, 403, 403]) {
        let auth = bearer(token);
        let (status, text) = req(
            &server,
            "POST",
            &format!("/api/studies/{OWN_STUDY}/ai"),
            &[("Authorization", &auth)],
            None,
        );
        assert_eq!(status, want, "requeue AI as {role}: {text}");
    }
    // User management: admins only.
    let new_user = br#"{"username":"dr-new","role":"radiologist","password":"a-long-password-1"}"#;
    for ((role, token), want) in roles.iter().zip([403u16, 403, 403, 201]) {
        let auth = bearer(token);
        let (status, text) = req(
            &server,
            "POST",
            "/api/users",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            Some(new_user),
        );
        assert_eq!(status, want, "create user as {role}: {text}");
    }
    // Signing: radiologists of the study's organisation; then the referrer reads it.
    for ((role, token), want) in roles.iter().zip([403u16, 403, 403, 403]).skip(1) {
        let auth = bearer(token);
        let (status, text) = req(
            &server,
            "POST",
            &format!("/api/studies/{OWN_STUDY}/report/sign"),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            Some(br#"{"lang":"en"}"#),
        );
        assert_eq!(status, want, "sign as {role}: {text}");
    }
    let auth = bearer(&b_token);
    let (status, _) = req(
        &server,
        "POST",
        &format!("/api/studies/{OWN_STUDY}/report/sign"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        Some(br#"{"lang":"en"}"#),
    );
    assert_eq!(
        status, 404,
        "another organisation's radiologist cannot sign"
    );
    let auth = server.auth();
    let (status, text) = req(
        &server,
        "POST",
        &format!("/api/studies/{OWN_STUDY}/report/sign"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        Some(br#"{"lang":"en"}"#),
    );
    assert_eq!(status, 200, "sign as the radiologist: {text}");
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(
        v["signed_by"], "Dr Test",
        "signed with the signed-in user's name: {text}"
    );
    let auth = bearer(&roles[2].1);
    let (status, text) = req(
        &server,
        "GET",
        &format!("/api/studies/{OWN_STUDY}/report"),
        &[("Authorization", &auth)],
        None,
    );
    assert_eq!(status, 200, "the referrer reads the signed report: {text}");
    let (status, _) = req(
        &server,
        "GET",
        &format!("/api/studies/{OWN_STUDY}/report.pdf"),
        &[("Authorization", &auth)],
        None,
    );
    assert_eq!(status, 200, "and its PDF");

    // Anonymous: refused everywhere except /health, /ready, /metrics (no patient data), the
    // login page and its assets.
    for (method, path) in [
        ("GET", "/dicom-web/studies"),
        (
            "GET",
            &format!("/dicom-web/studies/{OWN_STUDY}/metadata") as &str,
        ),
        ("POST", "/dicom-web/studies"),
        ("GET", "/api/worklist"),
        ("GET", &format!("/api/studies/{OWN_STUDY}/review")),
        ("GET", &format!("/api/studies/{OWN_STUDY}/report.pdf")),
        ("GET", "/api/audit"),
        ("GET", "/api/users"),
        ("GET", "/api/auth/me"),
        ("POST", "/api/auth/logout"),
    ] {
        let (status, text) = req(&server, method, path, &[], None);
        assert_eq!(status, 401, "anonymous {method} {path}: {text}");
    }
    for path in [
        "/health",
        "/ready",
        "/metrics",
        "/login",
        "/ui/app.js",
        "/ui/login.js",
        "/ui/style.css",
    ] {
        assert_eq!(
            req(&server, "GET", path, &[], None).0,
            200,
            "anonymous {path}"
        );
    }
    // The app itself sends an anonymous browser to the sign-in page.
    let no_redirect: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let r = no_redirect.get(&server.http()).call().expect("GET /");
    assert!(r.status().is_redirection(), "{}", r.status());
    assert_eq!(
        r.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/login")
    );
}

fn findscu(server: &Server, aet: &str) -> String {
    let out = run(Command::new("findscu").args([
        "-S",
        "-aet",
        aet,
        "-aec",
        "LUMEN",
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        "StudyInstanceUID",
        "127.0.0.1",
        &server.dicom_port.to_string(),
    ]));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// DIMSE services by organisation: an AE title mapped to clinic B finds, retrieves and
/// stores for clinic B only; an unmapped one for the node's own organisation.
#[test]
fn permission_matrix_dimse() {
    let Some(data) = shared_data() else { return };
    if !have_tool("findscu") || !have_tool("getscu") || !have_tool("storescu") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let (server, b_token) = two_org_server(tmp.path(), &data, "");
    // C-FIND.
    let b = findscu(&server, "CLINICB");
    assert!(b.contains(OTHER_STUDY) && !b.contains(OWN_STUDY), "{b}");
    let own = findscu(&server, "LOCALAE");
    assert!(
        own.contains(OWN_STUDY) && !own.contains(OTHER_STUDY),
        "{own}"
    );
    // C-GET: another organisation's study is not there for the caller.
    for (aet, study, want) in [
        ("CLINICB", OWN_STUDY, 0),
        ("CLINICB", OTHER_STUDY, 1),
        ("LOCALAE", OWN_STUDY, 1),
        ("LOCALAE", OTHER_STUDY, 0),
    ] {
        let out_dir = tmp
            .path()
            .join(format!("get-{aet}-{want}-{}", &study[study.len() - 5..]));
        std::fs::create_dir_all(&out_dir).expect("dir");
        let _ = run(Command::new("getscu")
            .args(["-S", "-aet", aet, "-aec", "LUMEN", "-od"])
            .arg(&out_dir)
            .args(["-k", "QueryRetrieveLevel=STUDY", "-k"])
            .arg(format!("StudyInstanceUID={study}"))
            .args(["127.0.0.1", &server.dicom_port.to_string()]));
        let n = std::fs::read_dir(&out_dir).map(|d| d.count()).unwrap_or(0);
        assert_eq!(n, want, "C-GET of {study} by {aet}");
    }
    // C-STORE from clinic B's AE files a new study under clinic B.
    let lidc = lidc_files(&data);
    let st = run(Command::new("storescu")
        .args([
            "-aet",
            "CLINICB",
            "-aec",
            "LUMEN",
            "127.0.0.1",
            &server.dicom_port.to_string(),
        ])
        .arg(&lidc[0]));
    assert!(st.status.success(), "{st:?}");
    let auth = bearer(&b_token);
    let (_, text) = req(
        &server,
        "GET",
        "/dicom-web/studies?PatientID=LIDC-IDRI-0001",
        &[("Authorization", &auth)],
        None,
    );
    assert_eq!(
        study_count(&text),
        1,
        "clinic B's radiologist sees the study CLINICB sent: {text}"
    );
    let v: Value = server.get_json("/dicom-web/studies?PatientID=LIDC-IDRI-0001");
    assert_eq!(
        v.as_array().map(Vec::len),
        Some(0),
        "the node's radiologist does not: {v}"
    );
    // Every C-FIND and C-GET is in the audit trail, with the AE as the user.
    let audit = admin_audit(&server, "?user=ae:CLINICB");
    let actions: Vec<&str> = audit.iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(
        actions.contains(&"query") && actions.contains(&"retrieve") && actions.contains(&"store"),
        "{actions:?}"
    );
    assert!(audit.iter().all(|e| e["channel"] == "dicom"), "{audit:?}");
}

fn admin_audit(server: &Server, query: &str) -> Vec<Value> {
    let auth = bearer(&server.admin_token);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, text) = req(
            server,
            "GET",
            &format!("/api/audit{query}"),
            &[("Authorization", &auth)],
            None,
        );
        assert_eq!(status, 200, "{text}");
        let v: Vec<Value> = serde_json::from_str(&text).expect("audit json");
        if !v.is_empty() || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every access to a study is in its audit trail, naming the user and the patient; the
/// trail cannot be changed, even by someone with the database file.
#[test]
fn audit_trail_records_access_and_is_append_only() {
    let Some(data) = shared_data() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let (server, _) = two_org_server(tmp.path(), &data, "");
    for path in [
        format!("/dicom-web/studies?StudyInstanceUID={OWN_STUDY}"),
        format!("/dicom-web/studies/{OWN_STUDY}/metadata"),
        format!("/api/studies/{OWN_STUDY}/review"),
    ] {
        assert_eq!(server.get_raw(&path, Some("*/*")).0, 200, "{path}");
    }
    let entries = admin_audit(&server, &format!("?study={OWN_STUDY}"));
    let has = |action: &str| {
        entries.iter().any(|e| {
            e["action"] == action
                && e["user"] == "test-radiologist"
                && e["study_uid"] == OWN_STUDY
                && e["org"] == "local"
                && e["source"] == "127.0.0.1"
        })
    };
    assert!(
        has("query") && has("retrieve") && has("view"),
        "{entries:#?}"
    );
    assert!(
        entries.iter().any(|e| e["patient_id"] == "1CT1"),
        "the audit trail names the patient: {entries:#?}"
    );
    // The import was recorded as the command line's.
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "store" && e["user"] == "cli"),
        "{entries:#?}"
    );
    // Filters: user, and a time window that excludes everything.
    let mine = admin_audit(&server, "?user=test-radiologist");
    assert!(mine.iter().all(|e| e["user"] == "test-radiologist") && !mine.is_empty());
    let auth = bearer(&server.admin_token);
    let (status, text) = req(
        &server,
        "GET",
        "/api/audit?from=2000-01-01&to=2000-01-02",
        &[("Authorization", &auth)],
        None,
    );
    assert_eq!((status, text.as_str()), (200, "[]"));
    let (status, _) = req(
        &server,
        "GET",
        "/api/audit?from=yesterday",
        &[("Authorization", &auth)],
        None,
    );
    assert_eq!(status, 400);
    // Security events: a failed login and the successful ones are there.
    let a = agent();
    let r = a
        .post(&format!("{}/api/auth/login", server.http()))
        .send_json(json!({"username": "test-radiologist", "password": "wrong-password!"}))
        .expect("login");
    assert_eq!(r.status().as_u16(), 401);
    let sec = admin_audit(&server, "?user=test-radiologist");
    assert!(
        sec.iter()
            .any(|e| e["action"] == "login-failed" && e["outcome"] == "denied"),
        "{sec:#?}"
    );
    assert!(
        sec.iter()
            .any(|e| e["action"] == "login" && e["outcome"] == "success"),
        "{sec:#?}"
    );
    // Append-only: the index refuses to change or remove an entry.
    if have_tool("sqlite3") {
        let db = server.data.join("index.sqlite");
        for sql in ["UPDATE audit SET user = 'nobody'", "DELETE FROM audit"] {
            // The server's writers (the audit trail, the ledger sequencer) may hold the
            // write lock for a moment: wait for it as the server's own connections do.
            let out = run(Command::new("sqlite3")
                .args(["-cmd", ".timeout 30000"])
                .arg(&db)
                .arg(sql));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("append-only") || err.contains("six months"),
                "{sql}: {err}"
            );
        }
    }
}

/// Attacks get a clear 4xx, leak nothing, and the server keeps serving.
#[test]
fn attacks_are_refused() {
    let Some(data) = shared_data() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let (server, _) = two_org_server(tmp.path(), &data, "");
    let auth = server.auth();
    let h = [
        ("Authorization", auth.as_str()),
        ("Accept", "application/dicom+json"),
    ];
    // Path traversal in UIDs.
    for path in [
        "/dicom-web/studies/..%2F..%2Fetc%2Fpasswd/metadata",
        "/dicom-web/studies/1.2.3/series/..%2F..%2Findex.sqlite",
        "/api/studies/..%2Findex.sqlite/review",
        "/ui/..%2F..%2FCargo.toml",
    ] {
        let (status, text) = req(&server, "GET", path, &h, None);
        assert!((400..500).contains(&status), "{path}: {status} {text}");
        assert!(
            !text.contains("root:") && !text.contains("SQLite"),
            "{path}: {text}"
        );
    }
    // SQL injection in QIDO and the worklist: no match, no error, nothing of clinic B.
    for q in [
        "PatientName=%27%20OR%201%3D1%20--",
        "PatientID=%27%3B%20DROP%20TABLE%20studies%3B%20--",
        "StudyDescription=%25",
        "PatientName=*%27%20OR%20%271%27%3D%271",
    ] {
        let (status, text) = req(&server, "GET", &format!("/dicom-web/studies?{q}"), &h, None);
        assert_eq!(status, 200, "{q}: {text}");
        assert!(!text.contains(OTHER_STUDY), "{q}: {text}");
    }
    let (status, text) = req(
        &server,
        "GET",
        "/api/worklist?q=%25%27%20OR%20%271%27%3D%271",
        &h,
        None,
    );
    assert_eq!(status, 200, "{text}");
    assert!(!text.contains(OTHER_STUDY), "{text}");
    assert_eq!(
        study_count(&req(&server, "GET", "/dicom-web/studies", &h, None).1),
        1
    );
    // Tokens: forged, oversized, malformed, in a cookie, with the wrong scheme.
    let long = format!("Bearer {}", "A".repeat(10_000));
    let forged = format!("Bearer {}", "x".repeat(43));
    for (k, v) in [
        ("Authorization", forged.as_str()),
        ("Authorization", long.as_str()),
        ("Authorization", "Bearer a b c"),
        ("Authorization", "Basic dGVzdDp0ZXN0"),
        ("Authorization", "Bearer ../../etc/passwd"),
        ("Cookie", "lumen_session=%00%ff%fe; lumen_csrf=x"),
        (
            "Cookie",
            "lumen_session=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        ),
    ] {
        let (status, text) = req(&server, "GET", "/dicom-web/studies", &[(k, v)], None);
        assert!(
            status == 401 || status == 400 || status == 431,
            "{k}: {v:.40}: {status} {text}"
        );
        assert!(!text.contains(OWN_STUDY));
    }
    // A revoked token (logout) and an expired one no longer work.
    let token = login(&server.http(), "test-radiologist", "radiologist-password-1");
    let t = bearer(&token);
    assert_eq!(
        req(
            &server,
            "GET",
            "/api/auth/me",
            &[("Authorization", &t)],
            None
        )
        .0,
        200
    );
    assert_eq!(
        req(
            &server,
            "POST",
            "/api/auth/logout",
            &[("Authorization", &t)],
            None
        )
        .0,
        204
    );
    assert_eq!(
        req(
            &server,
            "GET",
            "/api/auth/me",
            &[("Authorization", &t)],
            None
        )
        .0,
        401
    );
    if have_tool("sqlite3") {
        let token = login(&server.http(), "test-radiologist", "radiologist-password-1");
        let t = bearer(&token);
        assert_eq!(
            req(
                &server,
                "GET",
                "/api/auth/me",
                &[("Authorization", &t)],
                None
            )
            .0,
            200
        );
        let out = run(Command::new("sqlite3")
            .args(["-cmd", ".timeout 30000"])
            .arg(server.data.join("index.sqlite"))
            .arg("UPDATE sessions SET expires_at = 1 WHERE created_at = (SELECT max(created_at) FROM sessions)"));
        assert!(out.status.success(), "{out:?}");
        // Changed by another process: the server trusts a checked session for at most
        // 5 s (SESSION_CACHE_TTL), then reads the index again.
        let deadline = Instant::now() + Duration::from_secs(20);
        while req(
            &server,
            "GET",
            "/api/auth/me",
            &[("Authorization", &t)],
            None,
        )
        .0 != 401
        {
            assert!(Instant::now() < deadline, "the expired token still works");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    // CSRF: a state-changing request with the session cookie but without its CSRF token.
    let a = agent();
    let mut r = a
        .post(&format!("{}/api/auth/login", server.http()))
        .send_json(json!({"username": "test-radiologist", "password": "radiologist-password-1"}))
        .expect("login");
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|c| c.split(';').next().unwrap_or("").to_string())
        .collect();
    let set: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let _ = r.body_mut().read_to_string();
    assert!(
        set.iter().any(|c| c.starts_with("lumen_session=")
            && c.contains("HttpOnly")
            && c.contains("SameSite=Strict")),
        "{set:?}"
    );
    let cookie = cookies.join("; ");
    let csrf = cookies
        .iter()
        .find_map(|c| c.strip_prefix("lumen_csrf="))
        .expect("csrf cookie")
        .to_string();
    let put = format!("/api/studies/{OWN_STUDY}/report");
    let body =
        br#"{"lang":"en","sections":{"findings":"x","impression":"y","recommendation":"z"}}"#;
    let (status, text) = req(
        &server,
        "PUT",
        &put,
        &[("Cookie", &cookie), ("Content-Type", "application/json")],
        Some(body),
    );
    assert_eq!(status, 403, "no CSRF token: {text}");
    let (status, _) = req(
        &server,
        "PUT",
        &put,
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/json"),
            ("X-CSRF-Token", "wrong"),
        ],
        Some(body),
    );
    assert_eq!(status, 403, "wrong CSRF token");
    let (status, text) = req(
        &server,
        "PUT",
        &put,
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/json"),
            ("X-CSRF-Token", &csrf),
        ],
        Some(body),
    );
    assert_eq!(status, 200, "with the CSRF token: {text}");
    // GETs with the cookie need no CSRF token.
    assert_eq!(
        req(
            &server,
            "GET",
            "/api/worklist",
            &[("Cookie", &cookie)],
            None
        )
        .0,
        200
    );
    // JSON bodies of the wrong shape.
    for bad in [
        &br#"{"lang":"en","sections":"nope"}"#[..],
        b"[1,2,3]",
        b"{",
        b"\xff\xfe",
    ] {
        let (status, text) = req(
            &server,
            "PUT",
            &put,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            Some(bad),
        );
        assert!((400..500).contains(&status), "{status} {text}");
    }
    let (status, _) = req(
        &server,
        "POST",
        "/api/auth/login",
        &[("Content-Type", "application/json")],
        Some(br#"{"user":"x"}"#),
    );
    assert!((400..500).contains(&status));
    // Twelve wrong passwords in a row: refused, the last ones with 429; the account is
    // then throttled even with the right password, another account is not.
    let mut statuses = Vec::new();
    for i in 0..12 {
        let (status, _) = req(
            &server,
            "POST",
            "/api/auth/login",
            &[("Content-Type", "application/json")],
            Some(format!(r#"{{"username":"test-tech","password":"guess-{i}"}}"#).as_bytes()),
        );
        statuses.push(status);
    }
    assert_eq!(&statuses[..10], &[401; 10], "{statuses:?}");
    assert_eq!(statuses[11], 429, "{statuses:?}");
    let (status, _) = req(
        &server,
        "POST",
        "/api/auth/login",
        &[("Content-Type", "application/json")],
        Some(br#"{"username":"test-tech","password":"technologist-password-1"}"#),
    );
    assert_eq!(status, 429, "throttled account");
    let (status, _) = req(
        &server,
        "POST",
        "/api/auth/login",
        &[("Content-Type", "application/json")],
        Some(br#"{"username":"test-referrer","password":"referrer-password-1"}"#),
    );
    assert_eq!(status, 200, "another account is not throttled");
    // Unknown user names are throttled per source address.
    let mut statuses = Vec::new();
    for i in 0..12 {
        let (status, _) = req(
            &server,
            "POST",
            "/api/auth/login",
            &[("Content-Type", "application/json")],
            Some(format!(r#"{{"username":"nobody-{i}","password":"x"}}"#).as_bytes()),
        );
        statuses.push(status);
    }
    assert_eq!(statuses[11], 429, "{statuses:?}");
    let audit = admin_audit(&server, "?user=test-tech");
    assert!(
        audit
            .iter()
            .filter(|e| e["action"] == "login-failed")
            .count()
            >= 12,
        "failed logins are audited"
    );
    // An oversized body to the public login is refused without being buffered: the
    // answer comes after the first MiB, before the rest is sent.
    {
        use std::io::{Read, Write};
        let mut sock =
            std::net::TcpStream::connect(("127.0.0.1", server.http_port)).expect("connect");
        let head = "POST /api/auth/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n";
        // Without the limit the server would wait for the whole declared body: fail instead.
        sock.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        sock.write_all(head.as_bytes()).expect("headers");
        let _ = sock.write_all(&vec![b' '; (1 << 20) + 4096]);
        let mut answer = Vec::new();
        let _ = sock.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer:.200}");
    }
    // Still serving.
    assert_eq!(req(&server, "GET", "/health", &[], None).0, 200);
    assert_eq!(server.get_raw("/dicom-web/studies", None).0, 200);
}

/// The first start of an empty archive creates `admin` with a one-time password printed
/// once, which must be changed before anything else; no other default credentials.
#[test]
fn first_start_creates_admin_with_a_one_time_password() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("data");
    std::fs::create_dir_all(&dir).expect("dir");
    // The marker keeps the harness from creating its own test users.
    std::fs::write(dir.join("test-users-created"), "").expect("marker");
    let port = free_port();
    let log = tmp.path().join("log");
    let mut child = Command::new(lumen_bin())
        .args(["serve", "--data"])
        .arg(&dir)
        .args([
            "--http",
            &format!("127.0.0.1:{port}"),
            "--dicom",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("serve");
    let deadline = Instant::now() + Duration::from_secs(60);
    let password = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(rest) = text.split("one-time password ").nth(1) {
            break rest.split_whitespace().next().unwrap_or("").to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no one-time password printed: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let http = format!("http://127.0.0.1:{port}");
    let a = agent();
    let deadline = Instant::now() + Duration::from_secs(60);
    while a
        .get(&format!("{http}/health"))
        .call()
        .map(|r| r.status().as_u16())
        .ok()
        != Some(200)
    {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    }
    for (user, pw) in [("admin", "admin"), ("admin", "password"), ("root", "root")] {
        let r = a
            .post(&format!("{http}/api/auth/login"))
            .send_json(json!({"username": user, "password": pw}))
            .expect("login");
        assert_eq!(r.status().as_u16(), 401, "{user}/{pw}");
    }
    let token = {
        let mut r = a
            .post(&format!("{http}/api/auth/login"))
            .send_json(json!({"username": "admin", "password": password}))
            .expect("login");
        assert_eq!(r.status().as_u16(), 200);
        let v: Value = r.body_mut().read_json().expect("json");
        assert_eq!(v["user"]["must_change_password"], true);
        v["token"].as_str().expect("token").to_string()
    };
    let t = bearer(&token);
    let r = a
        .get(&format!("{http}/api/users"))
        .header("Authorization", &t)
        .call()
        .expect("users");
    assert_eq!(
        r.status().as_u16(),
        403,
        "nothing before the password is changed"
    );
    let r = a
        .post(&format!("{http}/api/auth/password"))
        .header("Authorization", &t)
        .send_json(json!({"current_password": password, "new_password": "short"}))
        .expect("password");
    assert_eq!(r.status().as_u16(), 400, "too short");
    let r = a
        .post(&format!("{http}/api/auth/password"))
        .header("Authorization", &t)
        .send_json(json!({"current_password": password, "new_password": "a-much-better-password"}))
        .expect("password");
    assert_eq!(r.status().as_u16(), 204);
    let r = a
        .get(&format!("{http}/api/users"))
        .header("Authorization", &t)
        .call()
        .expect("users");
    assert_eq!(r.status().as_u16(), 200, "after the change");
    // The one-time password is spent.
    let r = a
        .post(&format!("{http}/api/auth/login"))
        .send_json(json!({"username": "admin", "password": password}))
        .expect("login");
    assert_eq!(r.status().as_u16(), 401);
    // It was printed once: a restart prints none.
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(text.matches("one-time password").count(), 1);
}

/// No patient name or ID reaches the application log, at debug level, through a full
/// ingest (C-STORE and STOW-RS), queries (QIDO-RS, C-FIND, the worklist's search), retrieval
/// (WADO-RS, C-GET) and the review.
#[test]
fn no_patient_data_in_debug_logs() {
    let Some(data) = shared_data() else { return };
    let Some(py) = python() else { return };
    if !have_tool("storescu") || !have_tool("findscu") || !have_tool("getscu") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    // Three LIDC slices given a distinctive patient name and ID.
    let files: Vec<PathBuf> = lidc_files(&data).into_iter().take(3).collect();
    let out_dir = tmp.path().join("named");
    std::fs::create_dir_all(&out_dir).expect("dir");
    let script = "import sys, pydicom\nfor i, f in enumerate(sys.argv[2:]):\n    d = pydicom.dcmread(f)\n    d.PatientName = 'ZHANGSAN^LIMEI'\n    d.PatientID = 'PIDSECRET42'\n    d.OtherPatientIDs = 'OTHERSECRET7'\n    d.save_as(f'{sys.argv[1]}/{i}.dcm')\n";
    let o = run(Command::new(&py)
        .args(["-c", script])
        .arg(&out_dir)
        .args(&files));
    assert!(o.status.success(), "{o:?}");
    let named: Vec<PathBuf> = (0..3).map(|i| out_dir.join(format!("{i}.dcm"))).collect();
    let dir = tmp.path().join("data");
    let server = Server::start_in_with_log(&dir, &[], "debug");
    // C-STORE two, STOW-RS one.
    let st = run(Command::new("storescu")
        .args(["-aec", "LUMEN", "127.0.0.1", &server.dicom_port.to_string()])
        .args(&named[..2]));
    assert!(st.status.success(), "{st:?}");
    let bytes = std::fs::read(&named[2]).expect("file");
    let mut body = b"--b\r\nContent-Type: application/dicom\r\n\r\n".to_vec();
    body.extend_from_slice(&bytes);
    body.extend_from_slice(b"\r\n--b--\r\n");
    let tech = server.tech_auth();
    let (status, text) = req(
        &server,
        "POST",
        "/dicom-web/studies",
        &[
            ("Authorization", &tech),
            (
                "Content-Type",
                "multipart/related; type=\"application/dicom\"; boundary=b",
            ),
        ],
        Some(&body),
    );
    assert_eq!(status, 200, "{text}");
    // Queries by name and ID, a failing query, retrieval, the review.
    for path in [
        "/dicom-web/studies?PatientName=ZHANGSAN*".to_string(),
        "/dicom-web/studies?PatientID=PIDSECRET42&includefield=all".to_string(),
        "/dicom-web/studies?PatientName=ZHANGSAN&StudyDate=not-a-date".to_string(),
        "/api/worklist?q=zhangsan".to_string(),
        "/api/worklist?q=PIDSECRET42".to_string(),
    ] {
        let _ = server.get_raw(&path, None);
    }
    let v = server.get_json("/dicom-web/studies?PatientID=PIDSECRET42");
    let study = v[0]["0020000D"]["Value"][0]
        .as_str()
        .expect("study uid")
        .to_string();
    let _ = server.get_raw(
        &format!("/dicom-web/studies/{study}/metadata"),
        Some("application/dicom+json"),
    );
    let _ = server.get_raw(
        &format!("/dicom-web/studies/{study}"),
        Some("multipart/related; type=\"application/dicom\""),
    );
    let _ = server.get_raw(&format!("/api/studies/{study}/review"), None);
    let _ = server.get_raw(&format!("/api/studies/{study}/report"), None);
    let _ = run(Command::new("findscu").args([
        "-S",
        "-aec",
        "LUMEN",
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        "PatientName=ZHANGSAN*",
        "-k",
        "PatientID=PIDSECRET42",
        "127.0.0.1",
        &server.dicom_port.to_string(),
    ]));
    let get_dir = tmp.path().join("get");
    std::fs::create_dir_all(&get_dir).expect("dir");
    let _ = run(Command::new("getscu")
        .args(["-S", "-aec", "LUMEN", "-od"])
        .arg(&get_dir)
        .args([
            "-k",
            "QueryRetrieveLevel=PATIENT",
            "-k",
            "PatientID=PIDSECRET42",
        ])
        .args(["127.0.0.1", &server.dicom_port.to_string()]));
    // A conflicting object (same SOP Instance UID, other content) is refused with a reason.
    let _ = run(Command::new("storescu")
        .args(["-aec", "LUMEN", "127.0.0.1", &server.dicom_port.to_string()])
        .arg(&files[0]));
    // The audit trail (the one place allowed) does hold them: the test would find a leak.
    let audit = admin_audit(&server, &format!("?study={study}"));
    assert!(
        audit.iter().any(|e| e["patient_id"] == "PIDSECRET42"),
        "{audit:#?}"
    );
    let log = server.log();
    assert!(log.contains("DEBUG"), "the log is at debug level");
    for secret in [
        "ZHANGSAN",
        "zhangsan",
        "LIMEI",
        "PIDSECRET42",
        "OTHERSECRET7",
    ] {
        let hits: Vec<&str> = log.lines().filter(|l| l.contains(secret)).take(3).collect();
        assert!(hits.is_empty(), "{secret} in the log:\n{}", hits.join("\n"));
    }
}

/// `lumen serve` with `[audit.syslog]` sends its audit trail as DICOM audit messages to a
/// real rsyslog (plain TCP, RFC 6587 octet counting), including what happened while
/// rsyslog was not yet listening.
#[test]
fn audit_trail_reaches_a_real_rsyslog() {
    let Some(data) = shared_data() else { return };
    let rsyslogd = ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    let Some(rsyslogd) = rsyslogd else {
        if std::env::var("LUMEN_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("rsyslogd is required (LUMEN_REQUIRE_TOOLS=1)");
        }
        eprintln!("SKIP: rsyslogd not installed");
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let (server, _) = two_org_server(
        tmp.path(),
        &data,
        &format!("[audit.syslog]\naddress = \"127.0.0.1:{port}\"\ntransport = \"tcp\"\n"),
    );
    // Patient data is accessed while the repository is down: recorded, sent later.
    assert_eq!(
        server
            .get_raw(&format!("/dicom-web/studies/{OWN_STUDY}/metadata"), None)
            .0,
        200
    );
    let work = tmp.path().join("rsyslog");
    std::fs::create_dir_all(work.join("work")).expect("dir");
    let out = work.join("out.log");
    std::fs::write(
        work.join("rsyslog.conf"),
        format!(
            "global(workDirectory=\"{}\" maxMessageSize=\"64k\")\n\
             module(load=\"imtcp\")\n\
             template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
             ruleset(name=\"audit\") {{\n  action(type=\"omfile\" file=\"{}\" template=\"raw\")\n}}\n\
             input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"audit\")\n",
            work.join("work").display(),
            out.display()
        ),
    )
    .expect("rsyslog.conf");
    let mut child = Command::new(&rsyslogd)
        .arg("-n")
        .arg("-f")
        .arg(work.join("rsyslog.conf"))
        .arg("-i")
        .arg(work.join("pid"))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(work.join("stderr")).expect("stderr"))
        .spawn()
        .expect("rsyslogd");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _guard = {
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(s)) = child.try_wait() {
                panic!("rsyslogd exited: {s}");
            }
            assert!(Instant::now() < deadline, "rsyslogd did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        Kill(child)
    };
    // Now more accesses; then wait until the repository holds every kind.
    assert_eq!(
        server
            .get_raw(&format!("/api/studies/{OWN_STUDY}/review"), None)
            .0,
        200
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    let text = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let has = |id: &str| {
            text.lines()
                .any(|l| l.contains(id) && l.contains(OWN_STUDY))
        };
        // 110104 Instances Transferred (the metadata read before rsyslog started) and
        // 110103 Instances Accessed (the review, after).
        if has("110104") && has("110103") && text.contains("110114") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "audit messages did not all arrive; got:\n{text}\nserver log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        assert!(line.starts_with('<'), "a syslog line: {line:.80}");
        assert!(line.contains("IHE+RFC-3881"), "{line:.200}");
        assert!(line.contains("<AuditMessage"), "{line:.200}");
    }
    // The audit message names the user and the patient.
    assert!(
        text.contains("test-radiologist") && text.contains("1CT1"),
        "{text}"
    );
}
