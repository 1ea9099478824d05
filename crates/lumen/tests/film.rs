//! Patient cloud film (云胶片, issue 13) end to end on the real `lumen serve`: CT_small and
//! MR_small are imported, CT_small's report signed; a radiologist creates a patient link over
//! HTTP; the link opens without credentials (the page, the study summary without the
//! patient's name, its image, the signed report), never another study's images nor
//! DICOMweb; the patient's copy of the report carries a working link; a revoked and an
//! expired link answer the same "no longer valid" page; every opening and refusal is in the
//! audit trail, creation and revocation on the ledger, and no token in the log. In Chromium,
//! the link opens the study without login (the first slice painted, the report linked), and
//! after revocation, as after expiry, shows the invalid-link page; a radiologist hands out and
//! revokes a link in the report panel.

mod util;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use util::browser::{Browser, artifacts};
use util::*;

/// CT_small.dcm of pydicom's test files.
const CT: &str = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// A response: status, headers we look at, body.
struct Answer {
    status: u16,
    content_type: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends a request with an optional bearer token and JSON body.
fn call(method: &str, url: &str, auth: Option<&str>, body: Option<Value>) -> Answer {
    let a = agent();
    let mut r = match (method, body) {
        ("GET", _) => {
            let mut req = a.get(url);
            if let Some(t) = auth {
                req = req.header("Authorization", t);
            }
            req.call()
        }
        ("DELETE", _) => {
            let mut req = a.delete(url);
            if let Some(t) = auth {
                req = req.header("Authorization", t);
            }
            req.call()
        }
        ("POST", b) => {
            let mut req = a.post(url);
            if let Some(t) = auth {
                req = req.header("Authorization", t);
            }
            match b {
                Some(b) => req.send_json(&b),
                None => req.send_empty(),
            }
        }
        _ => panic!("unsupported"),
    }
    .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let status = r.status().as_u16();
    let body = r
        .body_mut()
        .with_config()
        .limit(1 << 28)
        .read_to_vec()
        .unwrap_or_default();
    Answer {
        status,
        content_type,
        headers,
        body,
    }
}

/// Imports CT_small and MR_small into a new data directory `data` with `lumen import`.
fn import_samples(data: &Path, shared: &Path) {
    std::fs::create_dir_all(data).expect("data dir");
    let dir = shared.join("dicom-samples/pydicom-3.0.2-test-files");
    let out = run(Command::new(lumen_bin())
        .arg("import")
        .arg("--data")
        .arg(data)
        .arg(dir.join("CT_small.dcm"))
        .arg(dir.join("MR_small.dcm")));
    assert!(
        out.status.success(),
        "import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sign(server: &Server) {
    let a = call(
        "POST",
        &format!("{}/api/studies/{CT}/report/sign", server.http()),
        Some(&server.auth()),
        Some(json!({"lang": "en"})),
    );
    assert_eq!(a.status, 200, "sign: {}", a.text());
}

/// Creates a link to CT_small living `hours`; the creation's JSON.
fn create_link(server: &Server, hours: i64) -> Value {
    let a = call(
        "POST",
        &format!("{}/api/studies/{CT}/patient-link", server.http()),
        Some(&server.auth()),
        Some(json!({ "expires_in_hours": hours })),
    );
    assert_eq!(a.status, 200, "create: {}", a.text());
    a.json()
}

fn string(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// The first value of a DICOM JSON attribute.
fn tag(v: &Value, t: &str) -> String {
    string(&v[t]["Value"][0])
}

fn pdftotext(pdf: &[u8]) -> Option<String> {
    if !have_tool("pdftotext") {
        return None;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let p = tmp.path().join("copy.pdf");
    std::fs::write(&p, pdf).expect("pdf");
    let out = Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&p)
        .arg("-")
        .output()
        .expect("pdftotext");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn a_patient_link_opens_its_study_only_until_revoked_or_expired() {
    let Some(shared) = shared_data() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    import_samples(&data, &shared);
    let mut server = Server::start_in_with_log(&data, &[], "debug");
    let base = server.http();
    sign(&server);

    // Who may not create a link, and what is refused: no credentials (401), an admin (403),
    // an unknown study (404), lives outside 1..=720 hours or not a number (400).
    let url = format!("{base}/api/studies/{CT}/patient-link");
    let body = Some(json!({"expires_in_hours": 24}));
    assert_eq!(call("POST", &url, None, body.clone()).status, 401);
    let admin = format!("Bearer {}", server.admin_token);
    assert_eq!(call("POST", &url, Some(&admin), body.clone()).status, 403);
    let unknown = format!("{base}/api/studies/1.2.3.4.5.6/patient-link");
    assert_eq!(
        call("POST", &unknown, Some(&server.auth()), body.clone()).status,
        404
    );
    for bad in [
        json!({"expires_in_hours": 0}),
        json!({"expires_in_hours": 721}),
        json!({"expires_in_hours": "24"}),
        json!({"expires_in_hours": 2.5}),
    ] {
        let a = call("POST", &url, Some(&server.auth()), Some(bad.clone()));
        assert_eq!(a.status, 400, "{bad}: {}", a.text());
        assert!(a.text().contains("expires_in_hours"), "{}", a.text());
    }

    // The technologist creates one too (the other link of this test is the radiologist's).
    let tech = call("POST", &url, Some(&server.tech_auth()), body.clone());
    assert_eq!(tech.status, 200, "{}", tech.text());

    let link = create_link(&server, 24);
    let film = string(&link["url"]);
    let id = string(&link["id"]);
    assert!(film.starts_with(&format!("{base}/film/")), "{link}");
    let token = film.rsplit('/').next().expect("token").to_string();
    assert_eq!(token.len(), 43, "{film}");
    assert!(string(&link["qr_svg"]).starts_with("<svg "), "{link}");
    assert!(!string(&link["expires_at"]).is_empty());

    // Opened without credentials: the page (200 HTML, with the film's headers)...
    let page = call("GET", &film, None, None);
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(
        page.content_type.starts_with("text/html"),
        "{}",
        page.content_type
    );
    assert!(page.text().contains("/ui/film.js"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert!(
        page.header("x-robots-tag")
            .is_some_and(|v| v.contains("noindex"))
    );
    assert!(
        page.header("content-security-policy")
            .is_some_and(|v| v.contains("default-src 'none'") && v.contains("script-src 'self'"))
    );
    // ... the study, without the patient's name or ID ...
    let study = call("GET", &format!("{film}/api/study"), None, None);
    assert_eq!(study.status, 200, "{}", study.text());
    let s = study.json();
    assert_eq!(s["report_signed"], true, "{s}");
    assert_eq!(s["modalities"], json!(["CT"]), "{s}");
    assert_eq!(s["series"].as_array().map(Vec::len), Some(1), "{s}");
    for secret in ["CompressedSamples", "1CT1", CT] {
        assert!(!study.text().contains(secret), "{secret} in {s}");
    }
    let series = string(&s["series"][0]["series_uid"]);
    let sop = string(&s["series"][0]["instances"][0]);
    // ... its image (a JPEG that decodes) ...
    let img = call(
        "GET",
        &format!("{film}/series/{series}/instances/{sop}/rendered"),
        None,
        None,
    );
    assert_eq!(img.status, 200, "{}", img.text());
    assert_eq!(img.content_type, "image/jpeg");
    let pixels = jpeg_decoder::Decoder::new(&img.body[..])
        .decode()
        .expect("a JPEG");
    assert_eq!(pixels.len(), 128 * 128, "CT_small is 128 x 128");
    // ... and the signed report.
    let pdf = call("GET", &format!("{film}/report.pdf"), None, None);
    assert_eq!(pdf.status, 200);
    assert_eq!(pdf.content_type, "application/pdf");
    assert!(pdf.body.starts_with(b"%PDF"));

    // Another study's UIDs cannot be reached through the link, whatever the combination;
    // there is no DICOMweb under /film, and DICOMweb takes neither no credentials nor the
    // link's token.
    let mr = call(
        "GET",
        &format!("{base}/dicom-web/instances?Modality=MR"),
        Some(&server.auth()),
        None,
    )
    .json();
    let (mr_series, mr_sop) = (tag(&mr[0], "0020000E"), tag(&mr[0], "00080018"));
    let mr_study = tag(&mr[0], "0020000D");
    assert!(!mr_sop.is_empty() && mr_study != CT, "{mr}");
    for (se, i) in [
        (&mr_series, &mr_sop),
        (&series, &mr_sop),
        (&mr_series, &sop),
    ] {
        let a = call(
            "GET",
            &format!("{film}/series/{se}/instances/{i}/rendered"),
            None,
            None,
        );
        assert_eq!(a.status, 404, "{se} {i}: {}", a.text());
    }
    for path in [
        format!("{film}/dicom-web/studies/{CT}"),
        format!("{film}/studies/{mr_study}"),
        format!("{film}/api/studies/{mr_study}"),
    ] {
        assert_eq!(call("GET", &path, None, None).status, 404, "{path}");
    }
    let dicomweb = format!("{base}/dicom-web/studies/{CT}/metadata");
    assert_eq!(call("GET", &dicomweb, None, None).status, 401);
    let as_token = format!("Bearer {token}");
    assert_eq!(call("GET", &dicomweb, Some(&as_token), None).status, 401);
    let qido = format!("{base}/dicom-web/studies");
    assert_eq!(call("GET", &qido, Some(&as_token), None).status, 401);

    // The study's links are listed without tokens.
    let list = call(
        "GET",
        &format!("{base}/api/studies/{CT}/patient-links"),
        Some(&server.auth()),
        None,
    );
    assert_eq!(list.status, 200);
    assert_eq!(
        list.json().as_array().map(Vec::len),
        Some(2),
        "{}",
        list.text()
    );
    assert!(!list.text().contains(&token));

    // The patient's copy: the signed report with a new link's QR code and URL.
    let copy = call(
        "POST",
        &format!("{base}/api/studies/{CT}/patient-copy"),
        Some(&server.auth()),
        Some(json!({"expires_in_hours": 48})),
    );
    assert_eq!(copy.status, 201, "{}", copy.text());
    assert_eq!(copy.content_type, "application/pdf");
    let copy_url = copy
        .header("x-patient-link-url")
        .expect("link url")
        .to_string();
    let _ = std::fs::write(artifacts("film").join("patient-copy.pdf"), &copy.body);
    assert!(copy_url.starts_with(&format!("{base}/film/")));
    if let Some(text) = pdftotext(&copy.body) {
        let flat: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        assert!(flat.contains("ChestCTreport"), "{text}");
        assert!(
            flat.contains("cloudfilm") && flat.contains("Validuntil"),
            "{text}"
        );
        assert!(flat.contains("notfordiagnosis"), "{text}");
    }
    assert_eq!(call("GET", &copy_url, None, None).status, 200);

    // Revoked: the page says the link is no longer valid (404), exactly as for a token
    // that never existed; nothing else answers either.
    let revoked = call(
        "DELETE",
        &format!("{base}/api/patient-links/{id}"),
        Some(&server.auth()),
        None,
    );
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    assert_eq!(revoked.json()["state"], "revoked");
    let gone = call("GET", &film, None, None);
    assert_eq!(gone.status, 404);
    assert!(gone.content_type.starts_with("text/html"));
    assert!(gone.text().contains("no longer valid") && gone.text().contains("此链接已失效"));
    assert_eq!(gone.header("cache-control"), Some("no-store"));
    let never = call(
        "GET",
        &format!("{base}/film/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        None,
        None,
    );
    assert_eq!((never.status, never.body.clone()), (404, gone.body.clone()));
    for path in [
        format!("{film}/api/study"),
        format!("{film}/series/{series}/instances/{sop}/rendered"),
        format!("{film}/report.pdf"),
    ] {
        assert_eq!(call("GET", &path, None, None).status, 404, "{path}");
    }
    assert_eq!(
        call(
            "DELETE",
            &format!("{base}/api/patient-links/{id}"),
            None,
            None
        )
        .status,
        401
    );

    // Expired: a link whose time is over (its expiry moved back in the index while the
    // server is stopped: the index lets a link's life be shortened, never extended).
    let short = create_link(&server, 1);
    let short_url = string(&short["url"]);
    assert_eq!(call("GET", &short_url, None, None).status, 200);
    if have_tool("sqlite3") {
        server.stop();
        let out = run(Command::new("sqlite3")
            .arg(data.join("index.sqlite"))
            .arg(format!(
                "UPDATE patient_links SET expires_at = created_at + 1 WHERE id = '{}'",
                string(&short["id"])
            )));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Extending it is refused by the index itself.
        let out = run(Command::new("sqlite3")
            .arg(data.join("index.sqlite"))
            .arg("UPDATE patient_links SET expires_at = expires_at + 86400000"));
        assert!(!out.status.success(), "a link's life was extended");
        server = Server::start_in_with_log(&data, &[], "debug");
        let expired = call("GET", &server_url(&server, &short_url), None, None);
        assert_eq!((expired.status, expired.body), (404, gone.body.clone()));
    }
    let base = server.http();

    // The audit trail: creation and revocation by the radiologist, the openings (page,
    // study, image, report) and the refusals by the link; never the token.
    let audit = call(
        "GET",
        &format!("{base}/api/audit?study={CT}&limit=1000"),
        Some(&format!("Bearer {}", server.admin_token)),
        None,
    );
    assert_eq!(audit.status, 200, "{}", audit.text());
    assert!(!audit.text().contains(&token));
    let trail = audit.json();
    let rows = trail.as_array().cloned().unwrap_or_default();
    let by_link = format!("patient-link:{id}");
    let has = |user: &str, action: &str, detail: &str| {
        rows.iter().any(|e| {
            e["user"] == user && e["action"] == action && string(&e["detail"]).contains(detail)
        })
    };
    assert!(
        has("test-radiologist", "patient-link", "created"),
        "{trail}"
    );
    assert!(
        has("test-radiologist", "patient-link", "revoked"),
        "{trail}"
    );
    assert!(has("test-tech", "patient-link", "created"), "{trail}");
    assert!(has(&by_link, "view", "opened"), "{trail}");
    assert!(has(&by_link, "view", "study summary"), "{trail}");
    assert!(has(&by_link, "retrieve", "image"), "{trail}");
    assert!(has(&by_link, "retrieve", "report PDF"), "{trail}");
    assert!(has(&by_link, "access-denied", "revoked"), "{trail}");
    if have_tool("sqlite3") {
        let short_by = format!("patient-link:{}", string(&short["id"]));
        assert!(has(&short_by, "access-denied", "expired"), "{trail}");
    }
    assert!(
        rows.iter()
            .filter(|e| e["user"] == by_link.as_str() && e["outcome"] == "success")
            .all(|e| e["patient_name"].as_str().is_some_and(|n| !n.is_empty())),
        "the audit trail records whose study the link opened"
    );

    // The ledger: the signature, four creations (technologist, radiologist, copy, short)
    // and one revocation, published within seconds.
    let deadline = Instant::now() + Duration::from_secs(20);
    let kinds = loop {
        let mut kinds = Vec::new();
        for i in 0..6 {
            let p = call(
                "GET",
                &format!("{base}/api/ledger/entries/{i}/proof"),
                None,
                None,
            );
            if p.status != 200 {
                break;
            }
            let entry = string(&p.json()["entry"]);
            kinds.push(entry.split(' ').nth(1).unwrap_or_default().to_string());
        }
        if kinds.len() == 6 {
            break kinds;
        }
        assert!(Instant::now() < deadline, "ledger has {kinds:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(kinds[0], "report.signed");
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "patient-link.created")
            .count(),
        4,
        "{kinds:?}"
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "patient-link.revoked")
            .count(),
        1,
        "{kinds:?}"
    );

    // Metrics name film requests by their route template, never by the token.
    let metrics = call("GET", &format!("{base}/metrics"), None, None).text();
    assert!(
        metrics.contains("route=\"/film/{token}\""),
        "film requests are counted by template"
    );
    let short_token = short_url.rsplit('/').next().unwrap_or_default();
    assert!(!metrics.contains(&token) && !metrics.contains(short_token));

    // The log shows film requests with the token left out.
    let log = server.log();
    assert!(!log.contains(&token), "the token is in the log");
    drop(server);
    let first_log: String = std::fs::read_dir(tmp.path())
        .expect("tmp")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    assert!(
        first_log.contains("/film/…"),
        "film requests are logged redacted"
    );
    assert!(!first_log.contains(&token), "the token is in a log");
}

/// `url` (of a server since restarted on other ports) on `server`.
fn server_url(server: &Server, url: &str) -> String {
    let path = url.find("/film/").map_or(url, |i| &url[i..]);
    format!("{}{path}", server.http())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_opens_the_study_in_chromium_without_login_until_revoked() {
    let Some(shared) = shared_data() else { return };
    if !(have_tool("chromium") && have_tool("chromedriver")) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    import_samples(&data, &shared);
    let server = tokio::task::block_in_place(|| {
        let server = Server::start_in(&data, &[]);
        sign(&server);
        server
    });
    let link = tokio::task::block_in_place(|| create_link(&server, 24));
    let url = string(&link["url"]);
    let id = string(&link["id"]);

    for lang in ["zh-CN", "en"] {
        let b = Browser::start(lang, "film").await;
        // A fresh browser: no session cookie, nobody signed in.
        b.c().goto(&url).await.expect("open the link");
        let width = b
            .wait_js(
                "const i = document.querySelector('.film-image');
                 return i && i.complete && i.naturalWidth > 0 ? i.naturalWidth : 0;",
                "the first slice",
            )
            .await;
        assert_eq!(width, json!(128), "CT_small is 128 pixels wide");
        let report = b
            .wait_js(
                "const a = document.querySelector('#film-report-link');
                 return a ? a.getAttribute('href') : '';",
                "the report link",
            )
            .await;
        assert!(string(&report).ends_with("/report.pdf"), "{report}");
        let notice = b
            .wait_js(
                "return document.querySelector('#film-notice').textContent",
                "notice",
            )
            .await;
        let want = if lang == "en" {
            "not for diagnosis"
        } else {
            "不可用于诊断"
        };
        assert!(string(&notice).contains(want), "{notice}");
        // The page names no patient.
        let text = string(&b.js("return document.body.innerText").await);
        assert!(!text.contains("CompressedSamples"), "{text}");
        // The PDF opens from the page's link without credentials.
        let pdf = b
            .wait_js(
                "return fetch(document.querySelector('#film-report-link').href)
                   .then(r => r.ok && r.headers.get('content-type'));",
                "the report PDF",
            )
            .await;
        assert_eq!(pdf, json!("application/pdf"));
        b.screenshot(&format!("film-{lang}.png")).await;
        b.close().await;
    }

    // Revoked: the same link now shows the invalid-link page.
    let revoked = tokio::task::block_in_place(|| {
        call(
            "DELETE",
            &format!("{}/api/patient-links/{id}", server.http()),
            Some(&server.auth()),
            None,
        )
    });
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    let b = Browser::start("en", "film").await;
    b.c().goto(&url).await.expect("open the revoked link");
    b.wait_js(
        "const m = document.querySelector('#film-invalid');
         return m && m.innerText.includes('no longer valid');",
        "the invalid-link page",
    )
    .await;
    assert_eq!(
        b.js("return document.querySelectorAll('.film-image').length")
            .await,
        json!(0)
    );
    b.screenshot("film-revoked.png").await;

    // Expired: a second link, opened once, then past its time (its expiry moved back in the
    // index while the server is stopped) shows the same page.
    if !have_tool("sqlite3") {
        b.close().await;
        return;
    }
    let second = tokio::task::block_in_place(|| create_link(&server, 1));
    let second_url = string(&second["url"]);
    b.c().goto(&second_url).await.expect("open the second link");
    b.wait_js(
        "const i = document.querySelector('.film-image');
         return i && i.complete && i.naturalWidth > 0;",
        "the second link's first slice",
    )
    .await;
    let mut server = server;
    let server = tokio::task::block_in_place(|| {
        server.stop();
        let out = run(Command::new("sqlite3")
            .arg(data.join("index.sqlite"))
            .arg(format!(
                "UPDATE patient_links SET expires_at = created_at + 1 WHERE id = '{}'",
                string(&second["id"])
            )));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Server::start_in(&data, &[])
    });
    b.c()
        .goto(&server_url(&server, &second_url))
        .await
        .expect("open the expired link");
    b.wait_js(
        "const m = document.querySelector('#film-invalid');
         return m && m.innerText.includes('no longer valid');",
        "the invalid-link page of an expired link",
    )
    .await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_radiologist_hands_out_and_revokes_a_link_in_the_report_panel() {
    let Some(shared) = shared_data() else { return };
    if !(have_tool("chromium") && have_tool("chromedriver")) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    import_samples(&data, &shared);
    let server = tokio::task::block_in_place(|| {
        let server = Server::start_in(&data, &[]);
        sign(&server);
        server
    });
    let b = Browser::start("en-US", "film").await;
    b.login(&server, TEST_USERS[0].0, TEST_USERS[0].2).await;
    b.c()
        .goto(&format!("{}/?lang=en#/study/{CT}", server.http()))
        .await
        .expect("open the study");
    b.click("[data-tab=report]").await;
    b.wait_js(
        "const p = document.querySelector('.report-panel'); return p && p.dataset.status === 'signed'",
        "the signed report",
    )
    .await;
    b.click(".report-panel .plink summary").await;
    b.click(".report-panel .plink-create").await;
    let url = b
        .wait_js(
            "const a = document.querySelector('.plink-url');
             return a && document.querySelector('.plink-qr svg') ? a.href : '';",
            "the new link and its QR code",
        )
        .await;
    let url = string(&url);
    assert!(
        url.starts_with(&format!("{}/film/", server.http())),
        "{url}"
    );
    b.wait_js(
        "return document.querySelectorAll('.plink-list li[data-state=active]').length === 1",
        "the link in the list",
    )
    .await;
    b.js("document.querySelector('.plink-new').scrollIntoView()")
        .await;
    b.screenshot("report-panel-link.png").await;
    let opened = tokio::task::block_in_place(|| call("GET", &url, None, None));
    assert_eq!(opened.status, 200);

    b.click(".plink-list li[data-state=active] .plink-revoke")
        .await;
    b.wait_js(
        "return document.querySelectorAll('.plink-list li[data-state=revoked]').length === 1
           && !document.querySelector('.plink-url')",
        "the revoked link",
    )
    .await;
    let refused = tokio::task::block_in_place(|| call("GET", &url, None, None));
    assert_eq!(refused.status, 404);
    b.close().await;
}
