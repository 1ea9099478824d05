//! The radiologist's web app in headless Chromium (driven over WebDriver by fantoccini and
//! Debian's chromedriver) against the real `lumen serve`: LIDC-IDRI-0001 is imported, the AI
//! reads it, the doctor opens it from the worklist, jumps to the nodule, accepts it, edits and
//! signs the report, downloads the PDF and reads its text, then switches to zh-CN. OHIF 3.12
//! (prebuilt `dist/` installed by scripts/deps.sh) is pointed at Lumen's DICOMweb across origins
//! and must paint the study. Screenshots go to `target/test-artifacts/webapp/` (or
//! `$LUMEN_ARTIFACTS/webapp`). The scroll frame-rate benchmark (`viewer_scroll_fps`, ignored
//! here) is run by `bench/viewer_fps.sh`.

mod util;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use util::*;

const LIDC_STUDY: &str = "1.3.6.1.4.1.14519.5.2.1.6279.6001.298806137288633453246975630178";
/// The LUNA16 annotation of LIDC-IDRI-0001 (world mm) and its diameter.
const LUNA_NODULE: [f64; 3] = [56.21, 86.34, -115.87];
const LUNA_DIAMETER: f64 = 23.35;

/// Where screenshots and other artefacts of these tests go.
fn artifacts() -> PathBuf {
    let base = std::env::var_os("LUMEN_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts")
        });
    let dir = base.join("webapp");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    dir
}

/// Chromium and chromedriver, or `None` with a message (panics under LUMEN_REQUIRE_TOOLS=1).
fn have_chromium() -> bool {
    have_tool("chromium") && have_tool("chromedriver")
}

/// A headless Chromium session through a chromedriver child process.
struct Browser {
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
    downloads: PathBuf,
}

impl Browser {
    /// Starts chromedriver and a fresh headless Chromium (its own profile, no network
    /// services, downloads into a temporary folder). `webgl`: software WebGL for OHIF.
    async fn start(webgl: bool) -> Browser {
        Browser::start_in(webgl, "en-US").await
    }

    /// As `start`, with the browser's language set to `lang` (`en-US`, `zh-CN`).
    async fn start_in(webgl: bool, lang: &str) -> Browser {
        let port = free_port();
        let profile = tempfile::tempdir().expect("profile dir");
        let downloads = profile.path().join("downloads");
        std::fs::create_dir_all(&downloads).expect("downloads dir");
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let mut args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1600,1000".into(),
            format!("--lang={lang}"),
            format!(
                "--user-data-dir={}",
                profile.path().join("chrome").display()
            ),
        ];
        if webgl {
            args.push("--enable-unsafe-swiftshader".into());
            args.push("--use-angle=swiftshader".into());
            args.push("--enable-webgl".into());
            args.push("--ignore-gpu-blocklist".into());
        }
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": args,
                "prefs": {
                    "download.default_directory": downloads.to_string_lossy(),
                    "download.prompt_for_download": false,
                    "intl.accept_languages": lang,
                },
            },
        });
        let caps: serde_json::Map<String, Value> = match caps {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) => {
                    assert!(Instant::now() < deadline, "cannot start Chromium: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        Browser {
            client: Some(client),
            driver,
            _profile: profile,
            downloads,
        }
    }

    fn c(&self) -> &Client {
        self.client.as_ref().expect("client")
    }

    /// Saves a PNG screenshot of the whole window as `name` in the artefacts folder.
    async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.c().screenshot().await.expect("screenshot");
        let path = artifacts().join(name);
        std::fs::write(&path, png).expect("write screenshot");
        eprintln!("screenshot: {}", path.display());
        path
    }

    /// Runs `script` (a function body; `arguments` as usual) and returns its value.
    async fn js(&self, script: &str) -> Value {
        self.c()
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Polls `script` until it returns something truthy; returns that value.
    async fn wait_js(&self, script: &str, timeout: Duration, what: &str) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.js(script).await;
            if !(v.is_null() || v == Value::Bool(false) || v == json!("") || v == json!(0)) {
                return v;
            }
            if Instant::now() > deadline {
                let _ = self
                    .screenshot(&format!("timeout-{}.png", slug(what)))
                    .await;
                let body = self.js("return document.body.innerText").await;
                panic!("timed out waiting for {what}; page text:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Clicks the first element matching a CSS selector.
    /// Clicks the first element matching a CSS selector, waiting (with a deadline) for it
    /// to be there: an action's result is rendered asynchronously.
    async fn click(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.c().find(Locator::Css(css)).await {
                Ok(el) => match el.click().await {
                    Ok(_) => return,
                    Err(e) if Instant::now() >= deadline => panic!("click {css}: {e}"),
                    Err(_) => {}
                },
                Err(e) if Instant::now() >= deadline => panic!("no {css}: {e}"),
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The text of the first element matching a CSS selector (waiting for it to exist).
    async fn text(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // An element re-rendered between the find and the read is stale: look again.
            let found = match self.c().find(Locator::Css(css)).await {
                Ok(el) => el.text().await,
                Err(e) => Err(e),
            };
            match found {
                Ok(text) => return text,
                Err(e) if Instant::now() >= deadline => panic!("no {css}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Waits (with a deadline) until the first element matching `css` has text `expected`:
    /// never a read right after the action that renders it.
    async fn wait_text(&self, css: &str, expected: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let t = self.text(css).await;
            if t.trim() == expected.trim() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{css} shows {t:?}, expected {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (with a deadline) until the first element matching `css` has text containing
    /// `part`; returns the text.
    async fn wait_text_contains(&self, css: &str, part: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let t = self.text(css).await;
            if t.contains(part) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "{css} shows {t:?}, expected it to contain {part:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Signs in through the login page as the test radiologist, as a user would: the
    /// form's `username` and `password` inputs, then the app opens.
    async fn login(&self, server: &Server) {
        self.login_as(server, TEST_USERS[0].0, TEST_USERS[0].2)
            .await;
    }

    /// Signs in through the login page as `user`.
    async fn login_as(&self, server: &Server, user: &str, password: &str) {
        self.c()
            .goto(&format!("{}/login", server.http()))
            .await
            .expect("open /login");
        for (name, value) in [("username", user), ("password", password)] {
            let css = format!("form#login-form input[name={name}]");
            let deadline = Instant::now() + Duration::from_secs(20);
            let field = loop {
                match self.c().find(Locator::Css(&css)).await {
                    Ok(f) => break f,
                    Err(e) if Instant::now() >= deadline => panic!("no {css}: {e}"),
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            };
            field.send_keys(value).await.expect("type");
        }
        self.click("#login-submit").await;
        self.wait_js(
            "return location.pathname === '/' && document.body.dataset.ready === 'true' && document.getElementById('user-name').textContent",
            Duration::from_secs(30),
            "the app after signing in",
        )
        .await;
    }

    async fn close(mut self) {
        if let Some(c) = self.client.take() {
            let _ = c.close().await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// Imports files into a fresh data directory with `lumen import`.
fn import(data: &Path, files: &[PathBuf]) {
    let out = run(Command::new(lumen_bin())
        .arg("import")
        .arg("--data")
        .arg(data)
        .args(files));
    assert!(
        out.status.success(),
        "lumen import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits until the AI has ended on every series of the study; returns the review document.
fn wait_ai(server: &Server, study: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (status, _, body) = server.get_raw(&format!("/api/studies/{study}/ai"), None);
        if status == 200 {
            let v: Value = serde_json::from_slice(&body).expect("json");
            let series = v["series"].as_array().cloned().unwrap_or_default();
            if !series.is_empty()
                && series
                    .iter()
                    .all(|s| matches!(s["state"].as_str(), Some("done" | "failed" | "skipped")))
            {
                assert!(
                    series.iter().any(|s| s["state"] == "done"),
                    "AI did not succeed: {v}"
                );
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "AI did not finish:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // The SEG and the findings are written right after the job ends.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _, body) = server.get_raw(&format!("/api/studies/{study}/review"), None);
        if status == 200 {
            let v: Value = serde_json::from_slice(&body).expect("review json");
            if v["ai_status"] == "done" && v["findings"].as_array().is_some_and(|f| !f.is_empty()) {
                return v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "review API has no findings: {status} {}",
            String::from_utf8_lossy(&body)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The AI finding nearest the LUNA16 nodule (within its radius).
fn luna_finding(review: &Value) -> Value {
    let findings = review["findings"].as_array().expect("findings");
    let dist = |f: &Value| {
        let c: Vec<f64> = f["ai"]["center_world"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        if c.len() != 3 {
            return f64::INFINITY;
        }
        (0..3)
            .map(|i| (c[i] - LUNA_NODULE[i]).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let best = findings
        .iter()
        .filter(|f| f["origin"] == "ai")
        .min_by(|a, b| dist(a).total_cmp(&dist(b)))
        .expect("an AI finding");
    assert!(
        dist(best) < LUNA_DIAMETER / 2.0,
        "no finding at the LUNA16 nodule: {findings:?}"
    );
    best.clone()
}

/// Draws one axis of the finding being edited: clicks its button, then drags on the axial
/// viewport from `a` to `b` (CSS pixels from the viewport centre) with real pointer input.
/// Returns the length in mm the app shows for it.
async fn draw_line(b: &Browser, which: &str, a: (f64, f64), to: (f64, f64)) -> f64 {
    use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
    b.click(&format!("[data-draw={which}]")).await;
    let canvas = b
        .c()
        .find(Locator::Css(".vp-canvas"))
        .await
        .expect("canvas");
    let drag = MouseActions::new("mouse".into())
        .then(PointerAction::MoveToElement {
            element: canvas,
            duration: None,
            x: a.0,
            y: a.1,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::MoveBy {
            duration: Some(Duration::from_millis(150)),
            x: to.0 - a.0,
            y: to.1 - a.1,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    b.c().perform_actions(drag).await.expect("drag");
    let text = b
        .wait_js(
            &format!(
                "const t = document.querySelector('[data-draw={which}]').textContent; return t.includes('mm') ? t : null"
            ),
            Duration::from_secs(10),
            "the drawn axis length",
        )
        .await;
    let text = text.as_str().unwrap_or_default();
    let mm: f64 = text
        .rsplit('(')
        .next()
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no length in {text:?}"));
    assert!(mm > 3.0, "{which} axis {mm} mm");
    mm
}

/// The text of a PDF with poppler's pdftotext.
fn pdf_text(path: &Path) -> Option<String> {
    if !have_tool("pdftotext") {
        return None;
    }
    let out = run(Command::new("pdftotext")
        .args(["-layout", "-enc", "UTF-8"])
        .arg(path)
        .arg("-"));
    assert!(
        out.status.success(),
        "pdftotext failed on {}",
        path.display()
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Waits for a finished download (no `.crdownload` left) in `dir`.
async fn wait_download(dir: &Path, ext: &str) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        let partial = files
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "crdownload"));
        if let Some(p) = files
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == ext))
            && !partial
        {
            return p.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no .{ext} downloaded into {}: {files:?}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Fraction of non-black pixels of a canvas (read back in the page).
const CANVAS_INK: &str = r#"
const c = document.querySelector(arguments[0]);
if (!c || !c.width) return 0;
const g = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let lit = 0;
for (let i = 0; i < g.length; i += 4) if (g[i] + g[i + 1] + g[i + 2] > 30) lit++;
return lit / (g.length / 4);
"#;

/// The whole reading of LIDC-IDRI-0001 in the browser, then OHIF on the same archive
/// (lists the study, paints the CT, opens the SEG).
#[test]
fn radiologist_reads_lidc_in_the_browser_and_ohif_shows_it() {
    let Some(data) = shared_data() else { return };
    if !have_chromium() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("data");
    import(&dir, &lidc_files(&data));
    let ohif_port = free_port();
    let cfg = tmp.path().join("lumen.toml");
    std::fs::write(
        &cfg,
        format!(
            "cors_origins = [\"http://127.0.0.1:{ohif_port}\"]\n\
             [ai]\nquiet_period_secs = 1.0\nretry_backoff_secs = 1.0\n"
        ),
    )
    .expect("config");
    let server = Server::start_in(&dir, &["--config", &cfg.to_string_lossy()]);
    let review = wait_ai(&server, LIDC_STUDY);
    let target = luna_finding(&review);
    let fid = target["id"].as_str().expect("finding id").to_string();

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        read_and_sign(&server, &target).await;
        admin_reads_the_audit_trail(&server).await;
        ohif(
            &server,
            ohif_port,
            review["source_series_uid"].as_str().unwrap_or(""),
        )
        .await;
        // Without `?lang=`, a Chinese browser gets the Chinese app.
        let b = Browser::start_in(false, "zh-CN").await;
        b.login(&server).await;
        b.c().goto(&server.http()).await.expect("open /");
        b.wait_js(
            "const h = document.querySelector('h1'); return h && h.textContent === '工作列表' && document.documentElement.lang === 'zh-CN'",
            Duration::from_secs(20),
            "the Chinese worklist for a Chinese browser",
        )
        .await;
        b.close().await;
    });
    // The AI's original is still stored beside the doctor's decision.
    let after = server.get_json(&format!("/api/studies/{LIDC_STUDY}/review"));
    let f = after["findings"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["id"] == fid.as_str()))
        .expect("finding after review");
    assert_eq!(f["status"], "accepted", "{f}");
    assert_eq!(f["ai"], target["ai"], "the AI's original changed");
}

/// An admin signs in, lands on the administration page, and finds the radiologist's
/// signature of the LIDC study in the audit trail (and sees no worklist).
async fn admin_reads_the_audit_trail(server: &Server) {
    let b = Browser::start(false).await;
    b.login_as(server, TEST_USERS[2].0, TEST_USERS[2].2).await;
    b.wait_js(
        "return location.hash.startsWith('#/admin') && document.getElementById('audit-study')",
        Duration::from_secs(20),
        "the administration page for an admin",
    )
    .await;
    b.js(&format!(
        "document.getElementById('audit-study').value = '{LIDC_STUDY}'; document.getElementById('audit-search').click(); return true"
    ))
    .await;
    let rows = b
        .wait_js(
            "const rows = [...document.querySelectorAll('#audit-table tbody tr[data-action=sign]')]; return rows.length ? rows.map((r) => r.innerText).join('\\n') : null",
            Duration::from_secs(20),
            "the signature in the audit trail",
        )
        .await;
    let text = rows.as_str().unwrap_or("");
    assert!(
        text.contains("test-radiologist") && text.contains(LIDC_STUDY),
        "{text}"
    );
    assert!(
        text.contains("LIDC-IDRI-0001"),
        "the patient is named in the audit trail: {text}"
    );
    b.close().await;
}

async fn read_and_sign(server: &Server, target: &Value) {
    let fid = target["id"].as_str().expect("id");
    let voxel: Vec<f64> = target["ai"]["center_voxel"]
        .as_array()
        .expect("center_voxel")
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    let b = Browser::start(false).await;
    // Anonymous: the app sends the browser to the sign-in page; signing in opens it.
    b.c().goto(&server.http()).await.expect("open /");
    b.wait_js(
        "return location.pathname === '/login' && document.querySelector('form input[name=username]') && document.querySelector('form input[name=password]') && document.getElementById('password-form').offsetParent === null",
        Duration::from_secs(20),
        "the sign-in page for an anonymous browser",
    )
    .await;
    b.login(server).await;
    b.wait_text_contains("#user-name", "Dr Test").await;

    // Worklist, in English: the LIDC study with the AI done, its Lung-RADS, unread.
    b.c()
        .goto(&format!("{}/?lang=en", server.http()))
        .await
        .expect("open worklist");
    let row = format!("tr[data-study=\"{LIDC_STUDY}\"]");
    b.wait_js(
        &format!("const r = document.querySelector('{row}'); return r && r.querySelector('.ai-done') ? r.innerText : null"),
        Duration::from_secs(60),
        "the LIDC study with AI done in the worklist",
    )
    .await;
    let wl = server.get_json("/api/worklist");
    let item = wl["items"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["study_uid"] == LIDC_STUDY))
        .expect("LIDC in /api/worklist")
        .clone();
    b.wait_text_contains(&row, "Done").await;
    b.wait_text_contains(&row, "Unread").await;
    b.wait_text_contains(&row, "LIDC-IDRI-0001").await;
    if let Some(lr) = item["lung_rads"].as_str() {
        b.wait_text(&format!("{row} .lr"), lr).await;
    }
    b.wait_text("h1", "Worklist").await;
    // Search narrows the list; a query matching nothing empties it.
    let search = b
        .c()
        .find(Locator::Css("input[name=q]"))
        .await
        .expect("search box");
    search.send_keys("no-such-patient-xyz").await.expect("type");
    b.wait_js(
        &format!("return !document.querySelector('{row}') && document.querySelector('td.empty')"),
        Duration::from_secs(10),
        "an empty worklist for a non-matching search",
    )
    .await;
    search.clear().await.expect("clear");
    search.send_keys("LIDC-IDRI").await.expect("type");
    b.wait_js(
        &format!("return document.querySelector('{row}')"),
        Duration::from_secs(10),
        "the LIDC study for a matching search",
    )
    .await;
    b.screenshot("worklist-en.png").await;

    // Open it: the viewer loads all 133 slices.
    b.click(&row).await;
    b.wait_js(
        "const v = document.querySelector('.viewer'); return v && v.dataset.ready === 'true'",
        Duration::from_secs(120),
        "the CT volume to load",
    )
    .await;
    assert!(
        b.js(&CANVAS_INK.replace("arguments[0]", "'.vp-canvas'"))
            .await
            .as_f64()
            .unwrap_or(0.0)
            > 0.05,
        "the axial viewport is blank"
    );

    // Jump to the nodule from the findings list: its slice, centred.
    b.click(&format!("li[data-finding-id=\"{fid}\"] .f-meas"))
        .await;
    let want = voxel[2].round();
    let slice = b
        .wait_js(
            &format!(
                "const s = Number(document.querySelector('.viewer').dataset.slice); return Math.abs(s - {want}) <= 1 ? String(s) : null"
            ),
            Duration::from_secs(10),
            "the viewer to jump to the nodule's slice",
        )
        .await;
    eprintln!("jumped to slice {slice} (AI centre voxel {voxel:?})");
    // The HU under the cursor at the viewport centre is inside the nodule (soft tissue).
    let hu = b
        .js(r#"
const c = document.querySelector('.vp-canvas');
const r = c.getBoundingClientRect();
c.dispatchEvent(new PointerEvent('pointermove', { clientX: r.left + r.width / 2, clientY: r.top + r.height / 2, bubbles: true }));
return document.querySelector('.viewer').dataset.hu;"#)
        .await;
    let hu = hu.as_str().unwrap_or_default().to_string();
    let nums: Vec<f64> = hu
        .split(|c: char| !(c.is_ascii_digit() || c == '-' || c == '.'))
        .filter_map(|s| s.parse().ok())
        .collect();
    assert!(nums.len() >= 3, "no HU readout: {hu:?}");
    let (col, rowv, h) = (nums[0], nums[1], nums[2]);
    assert!(
        (col - voxel[0]).abs() <= 3.0 && (rowv - voxel[1]).abs() <= 3.0,
        "viewport centre {col},{rowv} is not the nodule centre {voxel:?}"
    );
    assert!(h > -400.0, "HU at the nodule centre is {h}: {hu}");
    // Presets change the window; the SEG outline and markers toggle with S and M.
    b.click("[data-preset=mediastinum]").await;
    b.wait_text_contains(".vp-info.tr", "40/400").await;
    b.click("[data-preset=lung]").await;
    // Keyboard: real key presses on the focused viewport.
    let canvas = b
        .c()
        .find(Locator::Css(".vp-canvas"))
        .await
        .expect("canvas");
    let before: i64 = b
        .js("return Number(document.querySelector('.viewer').dataset.slice)")
        .await
        .as_i64()
        .unwrap_or(-1);
    canvas.send_keys("3").await.expect("key 3");
    b.wait_js(
        "return document.querySelector('.vp-info.tr').textContent.includes('400/1800')",
        Duration::from_secs(5),
        "the bone window from key 3",
    )
    .await;
    canvas
        .send_keys(&char::from(fantoccini::key::Key::Down).to_string())
        .await
        .expect("key down");
    b.wait_js(
        &format!(
            "return Number(document.querySelector('.viewer').dataset.slice) === {}",
            before + 1
        ),
        Duration::from_secs(5),
        "the next slice from the Down key",
    )
    .await;
    canvas
        .send_keys(&char::from(fantoccini::key::Key::Up).to_string())
        .await
        .expect("key up");
    canvas.send_keys("s").await.expect("key s");
    b.wait_js(
        "return document.querySelector('[data-toggle=seg]').checked === false",
        Duration::from_secs(5),
        "S hiding the SEG outline",
    )
    .await;
    canvas.send_keys("s1?").await.expect("keys s 1 ?");
    b.wait_js(
        "return !document.getElementById('help').hidden && document.querySelector('[data-toggle=seg]').checked && document.querySelector('.vp-info.tr').textContent.includes('-600/1500')",
        Duration::from_secs(5),
        "the SEG outline back, the lung window and the shortcut help",
    )
    .await;
    b.screenshot("help-en.png").await;
    b.c()
        .active_element()
        .await
        .expect("active element")
        .send_keys(&char::from(fantoccini::key::Key::Escape).to_string())
        .await
        .expect("escape");
    b.wait_js(
        "return document.getElementById('help').hidden",
        Duration::from_secs(5),
        "the help to close on Escape",
    )
    .await;
    let reform = b
        .js(&CANVAS_INK.replace("arguments[0]", "'canvas.coronal'"))
        .await;
    assert!(
        reform.as_f64().unwrap_or(0.0) > 0.02,
        "coronal reformat blank"
    );
    b.screenshot("viewer-nodule-en.png").await;

    // Correct its type: the doctor's version is stored beside the AI's original, shown both.
    b.click(&format!("li[data-finding-id=\"{fid}\"] button.correct"))
        .await;
    b.c()
        .find(Locator::Css(".editor select[name=type]"))
        .await
        .expect("type select")
        .select_by_value("part-solid")
        .await
        .expect("choose part-solid");
    b.click(".editor button.save").await;
    b.wait_js(
        &format!("const li = document.querySelector('li[data-finding-id=\"{fid}\"]'); return li && li.dataset.status === 'corrected' && li.querySelector('.f-ai') ? li.innerText : null"),
        Duration::from_secs(20),
        "the corrected finding with the AI's original beside it",
    )
    .await;
    let corrected = server.get_json(&format!("/api/studies/{LIDC_STUDY}/review"));
    let c = corrected["findings"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["id"] == fid))
        .expect("corrected finding");
    assert_eq!(c["status"], "corrected", "{c}");
    assert_eq!(c["current"]["type"], "part-solid", "{c}");
    assert_eq!(c["ai"], target["ai"], "the AI's original changed: {c}");

    // Accept it.
    b.click(&format!("li[data-finding-id=\"{fid}\"] button.accept"))
        .await;
    b.wait_js(
        &format!("return document.querySelector('li[data-finding-id=\"{fid}\"]').dataset.status === 'accepted'"),
        Duration::from_secs(20),
        "the finding to show as accepted",
    )
    .await;

    // Add a nodule the AI missed: long and short axis drawn with the line tool on this slice.
    b.click(".findings-panel button.add").await;
    let long = draw_line(&b, "long", (-60.0, 40.0), (60.0, 40.0)).await;
    let short = draw_line(&b, "short", (0.0, 10.0), (0.0, 70.0)).await;
    b.click(".findings-panel .new-finding button.save").await;
    let added = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = server.get_json(&format!("/api/studies/{LIDC_STUDY}/review"));
            if let Some(f) = r["findings"]
                .as_array()
                .and_then(|a| a.iter().find(|f| f["origin"] == "doctor"))
            {
                break f.clone();
            }
            assert!(Instant::now() < deadline, "added finding not stored: {r}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    assert_eq!(added["status"], "added", "{added}");
    assert!(added["ai"].is_null(), "{added}");
    let got_long = added["current"]["long_axis_mm"].as_f64().unwrap_or(0.0);
    let got_short = added["current"]["short_axis_mm"].as_f64().unwrap_or(0.0);
    assert!(
        (got_long - long).abs() < 0.2 && (got_short - short).abs() < 0.2,
        "drawn {long:.1}/{short:.1} mm, stored {got_long}/{got_short}: {added}"
    );
    b.wait_js(
        "return document.querySelectorAll('.findings-panel li[data-status=added]').length === 1",
        Duration::from_secs(10),
        "the added finding in the list",
    )
    .await;
    b.screenshot("viewer-added-finding-en.png").await;

    // The report: an AI draft from the accepted finding; edit, save, sign.
    b.click("[data-tab=report]").await;
    b.wait_js(
        "const t = document.querySelector('.report-panel textarea[name=findings]'); return t && t.value.length > 20",
        Duration::from_secs(20),
        "the drafted report",
    )
    .await;
    b.wait_text_contains(".report-panel .banner", "AI DRAFT")
        .await;
    let impression = b
        .c()
        .find(Locator::Css(".report-panel textarea[name=impression]"))
        .await
        .expect("impression");
    impression
        .send_keys(" Reviewed in the browser test (LMN-4711).")
        .await
        .expect("type");
    b.click(".report-panel button.save").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = server.get_json(&format!("/api/studies/{LIDC_STUDY}/report?lang=en"));
        if r["sections"]["impression"]
            .as_str()
            .is_some_and(|s| s.contains("LMN-4711"))
        {
            assert_eq!(r["status"], "draft", "{r}");
            break;
        }
        assert!(Instant::now() < deadline, "edit not saved: {r}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.click(".report-panel button.sign").await;
    b.click(".report-panel button.confirm-sign").await;
    b.wait_js(
        "return document.querySelector('.report-panel .banner.signed')",
        Duration::from_secs(60),
        "the signed report",
    )
    .await;
    let r = server.get_json(&format!("/api/studies/{LIDC_STUDY}/report?lang=en"));
    assert_eq!(r["status"], "signed", "{r}");
    assert!(
        r["signed_by"].as_str().is_some_and(|s| !s.is_empty()),
        "{r}"
    );
    b.wait_js(
        "return document.querySelector('.report-panel textarea[name=impression]').readOnly === true",
        Duration::from_secs(10),
        "the signed report read-only",
    )
    .await;
    // The signature's ledger entry, its inclusion proof checked in the browser once the
    // next checkpoint has published it.
    let ledger = b
        .wait_js(
            "const l = document.querySelector('.report-panel [data-ledger]'); \
             return l && l.dataset.ledger !== 'pending' ? l.dataset.ledger + ': ' + l.textContent : null",
            Duration::from_secs(30),
            "the report's ledger entry checked",
        )
        .await;
    assert!(
        ledger.as_str().is_some_and(|l| l.starts_with("verified: ")),
        "{ledger}"
    );
    b.screenshot("report-signed-en.png").await;

    // Download the PDF through the browser and read its text.
    b.click(".report-panel a.pdf").await;
    let pdf = wait_download(&b.downloads, "pdf").await;
    let bytes = std::fs::read(&pdf).expect("pdf");
    assert!(bytes.starts_with(b"%PDF"), "not a PDF");
    std::fs::copy(&pdf, artifacts().join("report.pdf")).expect("keep pdf");
    if let Some(text) = pdf_text(&pdf) {
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains("LMN-4711"),
            "edited text not in the PDF:\n{text}"
        );
        assert!(
            flat.contains(r["signed_by"].as_str().unwrap_or("?")),
            "signer not in the PDF:\n{text}"
        );
    }

    // Chinese: every label switches; the dictionaries are complete.
    b.c()
        .find(Locator::Css("#lang-select"))
        .await
        .expect("language select")
        .select_by_value("zh-CN")
        .await
        .expect("choose zh-CN");
    b.wait_js(
        "return document.documentElement.lang === 'zh-CN' && document.querySelector('[data-tab=report]').textContent === '报告'",
        Duration::from_secs(10),
        "Chinese labels",
    )
    .await;
    b.wait_text("[data-tab=findings]", "发现").await;
    b.wait_text("#nav-worklist", "工作列表").await;
    b.wait_text("[data-preset=lung]", "肺窗").await;
    b.wait_js(
        "return document.querySelector('.report-panel .banner.signed').textContent.includes('签署')",
        Duration::from_secs(20),
        "the Chinese report banner",
    )
    .await;
    assert!(
        b.js("return location.search")
            .await
            .as_str()
            .unwrap_or("")
            .contains("lang=zh-CN")
    );
    let missing = b
        .c()
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
import('/ui/i18n.js').then((m) => {
  const en = Object.keys(m.DICTS.en), zh = Object.keys(m.DICTS['zh-CN']);
  const bad = en.filter((k) => !zh.includes(k)).concat(zh.filter((k) => !en.includes(k)));
  // No element shows a raw key: every data-i18n label is a translation.
  document.querySelectorAll('[data-i18n]').forEach((el) => { if (el.textContent === el.dataset.i18n) bad.push(el.dataset.i18n); });
  done(bad);
});"#,
            vec![],
        )
        .await
        .expect("i18n check");
    assert_eq!(missing, json!([]), "untranslated keys");
    b.screenshot("viewer-report-zh.png").await;
    b.click("#nav-worklist").await;
    b.wait_js(
        &format!("const r = document.querySelector('{row}'); return r && r.innerText.includes('已签署') && r.innerText.includes('已完成')"),
        Duration::from_secs(20),
        "the Chinese worklist row",
    )
    .await;
    b.wait_text("h1", "工作列表").await;
    b.wait_text("table.studies th:nth-child(7)", "AI 状态")
        .await;
    b.screenshot("worklist-zh.png").await;
    // `?lang=en` selects English again on load.
    b.c()
        .goto(&format!("{}/?lang=en", server.http()))
        .await
        .expect("reload");
    b.wait_js(
        "return document.querySelector('h1') && document.querySelector('h1').textContent === 'Worklist'",
        Duration::from_secs(10),
        "English after ?lang=en",
    )
    .await;
    b.close().await;
}

/// The prebuilt OHIF viewer, if scripts/deps.sh installed it.
fn ohif_dist() -> Option<PathBuf> {
    let dir = std::env::var_os("LUMEN_OHIF_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/ohif/package/dist")
        });
    if dir.join("index.html").is_file() {
        return Some(dir);
    }
    if std::env::var("LUMEN_REQUIRE_TOOLS").as_deref() == Ok("1") {
        panic!(
            "OHIF dist not found at {} (scripts/deps.sh test installs it)",
            dir.display()
        );
    }
    eprintln!("SKIP: OHIF not installed (scripts/deps.sh test); OHIF part skipped");
    None
}

/// OHIF's configuration: one DICOMweb data source, Lumen on another origin.
fn ohif_config(lumen: &str, token: &str) -> String {
    // OHIF sends the bearer token a site's identity provider would give it: here the test
    // radiologist's, added to OHIF's requests to Lumen (XMLHttpRequest, as dicomweb-client
    // and the image loader use).
    format!(
        r#"(function () {{
  const auth = 'Bearer {token}';
  const open = XMLHttpRequest.prototype.open;
  XMLHttpRequest.prototype.open = function (method, url) {{
    this.lumen = String(url).startsWith('{lumen}');
    return open.apply(this, arguments);
  }};
  const send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.send = function (body) {{
    if (this.lumen) this.setRequestHeader('Authorization', auth);
    return send.apply(this, arguments);
  }};
  const fetch0 = window.fetch;
  window.fetch = function (input, init) {{
    const url = typeof input === 'string' ? input : input.url;
    if (String(url).startsWith('{lumen}')) {{
      const headers = new Headers((init && init.headers) || (typeof input === 'string' ? undefined : input.headers));
      headers.set('Authorization', auth);
      init = Object.assign({{}}, init, {{ headers }});
    }}
    return fetch0.call(this, input, init);
  }};
}})();
window.config = {{
  routerBasename: '/',
  extensions: [],
  modes: [],
  showStudyList: true,
  showWarningMessageForCrossOrigin: false,
  showCPUFallbackMessage: false,
  maxNumberOfWebWorkers: 2,
  investigationalUseDialog: {{ option: 'never' }},
  defaultDataSourceName: 'lumen',
  dataSources: [{{
    namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
    sourceName: 'lumen',
    configuration: {{
      friendlyName: 'Lumen',
      name: 'lumen',
      wadoUriRoot: '{lumen}/dicom-web',
      qidoRoot: '{lumen}/dicom-web',
      wadoRoot: '{lumen}/dicom-web',
      qidoSupportsIncludeField: true,
      imageRendering: 'wadors',
      thumbnailRendering: 'wadors',
      enableStudyLazyLoad: true,
      supportsFuzzyMatching: false,
      supportsWildcard: true,
      staticWado: false,
      singlepart: 'bulkdata,video,pdf',
      bulkDataURI: {{ enabled: true }},
      omitQuotationForMultipartRequest: true,
    }},
  }}],
}};
"#
    )
}

/// Serves OHIF's static files (with its SPA fallback and our `app-config.js`) on `port`.
fn serve_ohif(rt: &tokio::runtime::Handle, dist: PathBuf, port: u16, config: String) {
    use axum::http::{StatusCode, Uri, header};
    use axum::response::IntoResponse;
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind OHIF port");
    listener.set_nonblocking(true).expect("nonblocking");
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let dist = dist.clone();
        let config = config.clone();
        async move {
            let path = uri.path().trim_start_matches('/');
            if path == "app-config.js" {
                return ([(header::CONTENT_TYPE, "text/javascript")], config).into_response();
            }
            let safe = !path.split('/').any(|p| p == ".." || p.starts_with('.'));
            let mut file = dist.join(if path.is_empty() { "index.html" } else { path });
            if !safe || !file.is_file() {
                file = dist.join("index.html");
            }
            let ct = match file.extension().and_then(|e| e.to_str()) {
                Some("js") => "text/javascript",
                Some("css") => "text/css",
                Some("html") => "text/html",
                Some("wasm") => "application/wasm",
                Some("svg") => "image/svg+xml",
                Some("json") => "application/json",
                Some("woff2") => "font/woff2",
                _ => "application/octet-stream",
            };
            match tokio::fs::read(&file).await {
                Ok(b) => ([(header::CONTENT_TYPE, ct)], b).into_response(),
                Err(_) => StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    rt.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        let _ = axum::serve(listener, app).await;
    });
}

async fn ohif(server: &Server, port: u16, ct_series: &str) {
    let Some(dist) = ohif_dist() else { return };
    // CORS: a preflight from OHIF's origin is answered for it.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let origin = format!("http://127.0.0.1:{port}");
    let pre = agent
        .options(&format!("{}/dicom-web/studies", server.http()))
        .header("Origin", &origin)
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "accept, authorization")
        .call()
        .expect("preflight");
    assert_eq!(
        pre.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some(origin.as_str()),
        "CORS preflight not allowed for OHIF's origin"
    );
    serve_ohif(
        &tokio::runtime::Handle::current(),
        dist,
        port,
        ohif_config(&server.http(), &server.token),
    );
    let b = Browser::start(true).await;
    // The study list shows Lumen's study.
    b.c().goto(&format!("{origin}/")).await.expect("open OHIF");
    b.wait_js(
        "return document.body.innerText.includes('LIDC-IDRI-0001')",
        Duration::from_secs(90),
        "OHIF's study list with the LIDC study",
    )
    .await;
    b.screenshot("ohif-study-list.png").await;
    // The viewer paints the CT and lists the SEG series.
    b.c()
        .goto(&format!(
            "{origin}/viewer?StudyInstanceUIDs={LIDC_STUDY}&initialSeriesInstanceUID={ct_series}"
        ))
        .await
        .expect("open OHIF viewer");
    // Dismiss OHIF's first-visit tour if it shows.
    let _ = b
        .wait_js(
            "const s = [...document.querySelectorAll('button')].find((x) => x.textContent.trim() === 'Skip all'); if (s) { s.click(); return 'skipped'; } return document.querySelector('canvas') ? 'none' : null",
            Duration::from_secs(60),
            "OHIF's viewer page",
        )
        .await;
    let ink = b
        .wait_js(
            r#"
const cs = [...document.querySelectorAll('canvas')].filter((c) => c.width > 100 && c.height > 100);
for (const c of cs) {
  const t = document.createElement('canvas');
  t.width = c.width; t.height = c.height;
  const x = t.getContext('2d');
  try { x.drawImage(c, 0, 0); } catch (e) { continue; }
  const g = x.getImageData(0, 0, t.width, t.height).data;
  let lit = 0;
  for (let i = 0; i < g.length; i += 16) if (g[i] + g[i + 1] + g[i + 2] > 60) lit++;
  const f = lit / (g.length / 16);
  if (f > 0.05) return f;
}
return null;"#,
            Duration::from_secs(180),
            "a painted OHIF viewport",
        )
        .await;
    eprintln!("OHIF viewport: {ink} of sampled pixels lit");
    b.wait_js(
        "return document.body.innerText.includes('SEG')",
        Duration::from_secs(60),
        "the SEG series in OHIF's study browser",
    )
    .await;
    b.screenshot("ohif-viewer.png").await;
    // Open the SEG (double click in the study browser, confirm if asked): OHIF reads Lumen's
    // segmentation and lists its segments.
    b.js(
        "const el = [...document.querySelectorAll('div')].reverse().find((d) => d.textContent.trim().startsWith('SEG') && d.textContent.includes('Lumen AI segmentation')); if (el) el.dispatchEvent(new MouseEvent('dblclick', { bubbles: true })); return !!el",
    )
    .await;
    // The segments are painted in colour over the grey CT: count strongly coloured pixels.
    let colour = b
        .wait_js(
            r#"
const yes = [...document.querySelectorAll('button')].find((x) => x.textContent.trim() === 'Yes');
if (yes) yes.click();
const cs = [...document.querySelectorAll('canvas')].filter((c) => c.width > 100 && c.height > 100);
for (const c of cs) {
  const t = document.createElement('canvas');
  t.width = c.width; t.height = c.height;
  const x = t.getContext('2d');
  try { x.drawImage(c, 0, 0); } catch (e) { continue; }
  const g = x.getImageData(0, 0, t.width, t.height).data;
  let col = 0;
  for (let i = 0; i < g.length; i += 4) {
    const hi = Math.max(g[i], g[i + 1], g[i + 2]), lo = Math.min(g[i], g[i + 1], g[i + 2]);
    if (hi - lo > 60) col++;
  }
  if (col > 500) return col;
}
return null;"#,
            Duration::from_secs(120),
            "OHIF painting Lumen's SEG over the CT",
        )
        .await;
    eprintln!("OHIF SEG overlay: {colour} coloured pixels");
    tokio::time::sleep(Duration::from_secs(2)).await;
    b.screenshot("ohif-seg.png").await;
    b.close().await;
}

/// Scroll frame rate of the viewer on a series (`LUMEN_FPS_SERIES`: a folder, e.g. the
/// 300-slice phantom bench/viewer_fps.sh writes). Run by bench/viewer_fps.sh; prints JSON.
#[test]
#[ignore = "benchmark: run bench/viewer_fps.sh"]
fn viewer_scroll_fps() {
    let Some(series) = std::env::var_os("LUMEN_FPS_SERIES").map(PathBuf::from) else {
        panic!("set LUMEN_FPS_SERIES to a CT series folder (bench/viewer_fps.sh does)");
    };
    assert!(have_chromium(), "chromium and chromedriver are needed");
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("data");
    let files: Vec<PathBuf> = std::fs::read_dir(&series)
        .expect("series folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    import(&dir, &files);
    let cfg = tmp.path().join("lumen.toml");
    std::fs::write(&cfg, "[ai]\nenabled = false\n").expect("config");
    let server = Server::start_in(&dir, &["--config", &cfg.to_string_lossy()]);
    let studies = server.get_json("/dicom-web/studies");
    let study = studies[0]["0020000D"]["Value"][0]
        .as_str()
        .expect("study uid")
        .to_string();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let result = rt.block_on(async {
        let b = Browser::start(false).await;
        b.login(&server).await;
        b.c()
            .goto(&format!("{}/?lang=en#/study/{study}", server.http()))
            .await
            .expect("open viewer");
        let t0 = Instant::now();
        b.wait_js(
            "const v = document.querySelector('.viewer'); return v && v.dataset.ready === 'true'",
            Duration::from_secs(300),
            "the volume to load",
        )
        .await;
        let load_s = t0.elapsed().as_secs_f64();
        let r = b
            .c()
            .execute_async(FPS_SCRIPT, vec![])
            .await
            .expect("fps script");
        b.screenshot("viewer-fps.png").await;
        b.close().await;
        json!({ "load_seconds": load_s, "scroll": r })
    });
    println!(
        "VIEWER_FPS {}",
        serde_json::to_string(&result).expect("json")
    );
    let s = &result["scroll"];
    assert_eq!(
        s["slices_shown"], s["slices"],
        "some slices were not drawn: {s}"
    );
}

/// In the page: a requestAnimationFrame loop first runs idle to measure the display's frame
/// rate (the peer), then dispatches one wheel event per frame on the viewport from the first
/// slice to the last and back; the viewer logs each drawn frame. Returns rates and frame times.
const FPS_SCRIPT: &str = r#"
const done = arguments[arguments.length - 1];
const v = window.lumenViewer;
const canvas = document.querySelector('.vp-canvas');
const n = v.vol.n;
const stats = (ts) => {
  const d = [];
  for (let i = 1; i < ts.length; i++) d.push(ts[i] - ts[i - 1]);
  d.sort((a, b) => a - b);
  const q = (p) => d[Math.min(d.length - 1, Math.floor(p * d.length))];
  return { frames: ts.length, seconds: (ts[ts.length - 1] - ts[0]) / 1000,
    fps: (ts.length - 1) / ((ts[ts.length - 1] - ts[0]) / 1000), median_ms: q(0.5), p95_ms: q(0.95), max_ms: d[d.length - 1] };
};
// 1. Idle rAF rate: the best a viewer can do on this display.
const idle = [];
const idleLoop = (t) => {
  idle.push(t);
  if (idle.length < 180) requestAnimationFrame(idleLoop); else scroll();
};
requestAnimationFrame(idleLoop);
function scroll() {
  v.setSlice(0);
  const r = canvas.getBoundingClientRect();
  const at = { clientX: r.left + r.width / 2, clientY: r.top + r.height / 2, bubbles: true, cancelable: true };
  requestAnimationFrame(() => {
    v.frameLog = [];
    let dir = 1, passes = 0;
    const step = () => {
      if (v.slice === n - 1 && dir === 1) { dir = -1; passes++; }
      else if (v.slice === 0 && dir === -1) { dir = 1; passes++; }
      if (passes >= 2) {
        const log = v.frameLog;
        v.frameLog = null;
        const shown = new Set(log.map((e) => e[1]));
        const work = [];
        for (let i = 1; i < log.length; i++) work.push(log[i][2] - log[i][0]);
        work.sort((a, b) => a - b);
        done({ slices: n, slices_shown: shown.size, idle: stats(idle),
          scroll: stats(log.map((e) => e[0])),
          render_ms_median: work[work.length >> 1], render_ms_p95: work[Math.floor(work.length * 0.95)],
          ratio_fps_to_idle: stats(log.map((e) => e[0])).fps / stats(idle).fps,
          canvas: [canvas.width, canvas.height] });
        return;
      }
      canvas.dispatchEvent(new WheelEvent('wheel', { ...at, deltaY: 100 * dir, deltaMode: 0 }));
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  });
}
"#;

/// A UID under 2.25 derived from another (the rewritten copy of a study gets its own UIDs).
fn copy_uid(uid: &str) -> String {
    use std::hash::{Hash, Hasher};
    let half = |salt: u8| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (salt, uid).hash(&mut h);
        h.finish()
    };
    format!("2.25.{}", (u128::from(half(1)) << 64) | u128::from(half(2)))
}

/// LIDC-IDRI-0001 rewritten so that its slice normal points to the feet: the column
/// direction is reversed, the rows are stored bottom-up and each slice's position moves to
/// its (old) last row, so that every voxel keeps its place in the patient. New UIDs.
fn reversed_normal_copy(files: &[PathBuf], out: &Path) -> (String, Vec<PathBuf>) {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    std::fs::create_dir_all(out).expect("out dir");
    let mut study = String::new();
    let mut written = Vec::new();
    for (n, f) in files.iter().enumerate() {
        let mut obj = dicom_object::open_file(f).expect("open LIDC slice");
        let floats = |obj: &dicom_object::DefaultDicomObject, t| -> Vec<f64> {
            obj.element(t)
                .expect("geometry attribute")
                .to_multi_float64()
                .expect("numbers")
                .to_vec()
        };
        let iop = floats(&obj, tags::IMAGE_ORIENTATION_PATIENT);
        let ipp = floats(&obj, tags::IMAGE_POSITION_PATIENT);
        let ps = floats(&obj, tags::PIXEL_SPACING);
        let rows = obj
            .element(tags::ROWS)
            .expect("rows")
            .to_int::<usize>()
            .expect("rows");
        let cols = obj
            .element(tags::COLUMNS)
            .expect("cols")
            .to_int::<usize>()
            .expect("cols");
        let c = [iop[3], iop[4], iop[5]];
        let shift = (rows - 1) as f64 * ps[0];
        let new_ipp: Vec<f64> = (0..3).map(|k| ipp[k] + shift * c[k]).collect();
        let new_iop = [iop[0], iop[1], iop[2], -c[0], -c[1], -c[2]];
        let pixels = obj
            .element(tags::PIXEL_DATA)
            .expect("pixel data")
            .to_bytes()
            .expect("native pixels")
            .to_vec();
        let row_bytes = cols * 2;
        let flipped: Vec<u8> = pixels.chunks(row_bytes).rev().flatten().copied().collect();
        let ds = |v: &[f64]| {
            PrimitiveValue::from(
                v.iter()
                    .map(|x| format!("{x:.6}"))
                    .collect::<Vec<_>>()
                    .join("\\"),
            )
        };
        obj.put(DataElement::new(
            tags::IMAGE_POSITION_PATIENT,
            VR::DS,
            ds(&new_ipp),
        ));
        obj.put(DataElement::new(
            tags::IMAGE_ORIENTATION_PATIENT,
            VR::DS,
            ds(&new_iop),
        ));
        obj.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::from(flipped),
        ));
        for t in [
            tags::STUDY_INSTANCE_UID,
            tags::SERIES_INSTANCE_UID,
            tags::SOP_INSTANCE_UID,
        ] {
            let old = obj
                .element(t)
                .expect("uid")
                .to_str()
                .expect("uid")
                .trim_end_matches('\0')
                .to_string();
            let new = copy_uid(&old);
            if t == tags::STUDY_INSTANCE_UID {
                study = new.clone();
            }
            if t == tags::SOP_INSTANCE_UID {
                obj.meta_mut().media_storage_sop_instance_uid = new.clone();
            }
            obj.put(DataElement::new(t, VR::UI, PrimitiveValue::from(new)));
        }
        obj.meta_mut().update_information_group_length();
        let path = out.join(format!("{n:04}.dcm"));
        obj.write_to_file(&path).expect("write reversed slice");
        written.push(path);
    }
    (study, written)
}

/// One slice order for the AI, the review API and the viewer: on LIDC-IDRI-0001 rewritten
/// with its slice normal pointing the other way, the nodule is found where LUNA16 puts it,
/// the API's slice order puts its centre slice at its `center_voxel` index, and the viewer's
/// jump to it shows that very slice at that very index.
#[test]
fn reversed_slice_normal_keeps_findings_on_their_slice() {
    let Some(data) = shared_data() else { return };
    if !have_chromium() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let (study, files) = reversed_normal_copy(&lidc_files(&data), &tmp.path().join("reversed"));
    let dir = tmp.path().join("data");
    import(&dir, &files);
    let cfg = tmp.path().join("lumen.toml");
    std::fs::write(
        &cfg,
        "[ai]\nquiet_period_secs = 1.0\nretry_backoff_secs = 1.0\n",
    )
    .expect("config");
    let server = Server::start_in(&dir, &["--config", &cfg.to_string_lossy()]);
    let review = wait_ai(&server, &study);
    let target = luna_finding(&review);
    let fid = target["id"].as_str().expect("finding id").to_string();
    let sop = target["ai"]["sop_instance_uid"]
        .as_str()
        .expect("centre slice")
        .to_string();
    let z = target["ai"]["center_voxel"][2]
        .as_f64()
        .expect("centre slice index");
    let order: Vec<&str> = review["slice_order"]
        .as_array()
        .expect("slice_order")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(order.len(), files.len());
    let at = order
        .iter()
        .position(|s| *s == sop)
        .expect("centre slice in the order");
    assert!(
        (at as f64 - z).abs() <= 1.0,
        "slice {at} of the order, center_voxel z {z}"
    );

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let b = Browser::start(false).await;
        b.login(&server).await;
        b.c()
            .goto(&format!("{}/?lang=en", server.http()))
            .await
            .expect("open worklist");
        let row = format!("tr[data-study=\"{study}\"]");
        b.click(&row).await;
        b.wait_js(
            "const v = document.querySelector('.viewer'); return v && v.dataset.ready === 'true'",
            Duration::from_secs(120),
            "the reversed CT volume to load",
        )
        .await;
        b.click(&format!("li[data-finding-id=\"{fid}\"] .f-meas")).await;
        let shown = b
            .wait_js(
                &format!(
                    "const v = document.querySelector('.viewer'); return v.dataset.sop === '{sop}' && [v.dataset.slice, v.dataset.sop]"
                ),
                Duration::from_secs(20),
                "the jump to the nodule's slice",
            )
            .await;
        let slice: f64 = shown[0].as_str().and_then(|s| s.parse().ok()).expect("slice");
        assert!((slice - z).abs() <= 1.0, "viewer slice {slice}, center_voxel z {z}");
        b.screenshot("viewer-reversed-normal.png").await;
        b.close().await;
    });
}

/// `lumen ledger key` for `data` with `config` (creates the key).
fn node_key(data: &Path, config: &Path) -> String {
    let out = run(Command::new(lumen_bin())
        .args(["ledger", "key", "--data"])
        .arg(data)
        .arg("--config")
        .arg(config));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Sharing in the browser (issue 13): on clinic A's study page the radiologist opens
/// "Share with…", names the purpose, records the patient's consent and shares with
/// hospital B; the dialog lists the active share; B's worklist shows the study marked
/// "from Clinic A".
#[test]
fn a_study_is_shared_from_the_study_page_and_marked_at_the_member() {
    const CT_SMALL: &str = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322";
    let Some(data) = shared_data() else { return };
    if !have_chromium() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let (dir_a, dir_b) = (tmp.path().join("a"), tmp.path().join("b"));
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let url = |i: usize| format!("http://127.0.0.1:{}", ports[2 * i]);
    let node = |id: &str, name: &str, origin: &str| {
        format!(
            "[node]\nid = \"{id}\"\nname = \"{name}\"\n[ledger]\norigin = \"{origin}\"\n\
             [ai]\nenabled = false\n"
        )
    };
    let (base_a, base_b) = (
        node("clinic-a", "Clinic A", "lumen.local/a"),
        node("hospital-b", "Hospital B", "lumen.local/b"),
    );
    let (cfg_a, cfg_b) = (tmp.path().join("a.toml"), tmp.path().join("b.toml"));
    std::fs::write(&cfg_a, &base_a).expect("config");
    std::fs::write(&cfg_b, &base_b).expect("config");
    let (key_a, key_b) = (node_key(&dir_a, &cfg_a), node_key(&dir_b, &cfg_b));
    let members = format!(
        "[[consortium.member]]\nid = \"clinic-a\"\nname = \"Clinic A\"\nurl = \"{}\"\nkey = \"{key_a}\"\n\
         [[consortium.member]]\nid = \"hospital-b\"\nname = \"Hospital B\"\nurl = \"{}\"\nkey = \"{key_b}\"\n",
        url(0),
        url(1)
    );
    std::fs::write(&cfg_a, format!("{base_a}{members}")).expect("config");
    std::fs::write(&cfg_b, format!("{base_b}{members}")).expect("config");
    import(
        &dir_a,
        &[data.join("dicom-samples/pydicom-3.0.2-test-files/CT_small.dcm")],
    );
    let a = Server::start_on(
        &dir_a,
        ports[0],
        ports[1],
        &["--config", &cfg_a.to_string_lossy()],
    );
    let b = Server::start_on(
        &dir_b,
        ports[2],
        ports[3],
        &["--config", &cfg_b.to_string_lossy()],
    );

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let br = Browser::start(false).await;
        br.login(&a).await;
        br.c()
            .goto(&format!("{}/?lang=en#/study/{CT_SMALL}", a.http()))
            .await
            .expect("open the study");
        br.click("button.share-open").await;
        br.wait_js(
            "return document.querySelector('dialog.share-dialog[open] select[name=to]')",
            Duration::from_secs(20),
            "the share dialog",
        )
        .await;
        br.js(
            "const f = document.querySelector('dialog.share-dialog form').elements; \
             f.purpose.value = 'second opinion'; return true",
        )
        .await;
        br.click("dialog.share-dialog input[name=consent]").await;
        br.click("dialog.share-dialog button.ok").await;
        let listed = br
            .wait_js(
                "const li = document.querySelector('dialog.share-dialog .shares li'); \
                 return li && li.textContent.includes('active') ? li.textContent : null",
                Duration::from_secs(20),
                "the active share in the dialog",
            )
            .await;
        let listed = listed.as_str().unwrap_or("");
        assert!(
            listed.contains("Hospital B") && listed.contains("second opinion"),
            "{listed}"
        );
        br.screenshot("share-dialog.png").await;
        br.close().await;

        // B's radiologist sees it in the worklist, marked with the sending clinic.
        let br = Browser::start(false).await;
        br.login(&b).await;
        br.c()
            .goto(&format!("{}/?lang=en", b.http()))
            .await
            .expect("open B's worklist");
        let badge = br
            .wait_js(
                &format!(
                    "const r = document.querySelector('tr[data-study=\"{CT_SMALL}\"] .badge.shared'); \
                     return r ? r.textContent : null"
                ),
                Duration::from_secs(60),
                "the shared study in B's worklist",
            )
            .await;
        assert_eq!(badge, json!("from Clinic A"));
        br.screenshot("share-worklist-b.png").await;
        br.close().await;
    });
    // The share is A's, with the consent recorded.
    let v = a.get_json(&format!("/api/shares?study={CT_SMALL}"));
    assert_eq!(v["shares"][0]["consent"], "consent", "{v}");
    assert_eq!(v["shares"][0]["to"], "hospital-b", "{v}");
}
