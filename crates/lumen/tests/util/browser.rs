//! A headless Chromium driven over WebDriver (chromedriver), for the end-to-end tests of
//! the web pages.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use super::{Server, free_port};

/// Where the screenshots and files of test `sub` go (`LUMEN_ARTIFACTS`, or
/// target/test-artifacts).
pub fn artifacts(sub: &str) -> PathBuf {
    let base = std::env::var_os("LUMEN_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts")
        });
    let dir = base.join(sub);
    std::fs::create_dir_all(&dir).expect("artifact dir");
    dir
}

/// A headless Chromium session through a chromedriver child process.
pub struct Browser {
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
    /// The artifact folder of the test (screenshots).
    sub: String,
}

impl Browser {
    /// Starts Chromium with `lang` as its language; screenshots go to [`artifacts`]`(sub)`.
    pub async fn start(lang: &str, sub: &str) -> Browser {
        let port = free_port();
        let profile = tempfile::tempdir().expect("profile dir");
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=420,900".into(),
            format!("--lang={lang}"),
            format!(
                "--user-data-dir={}",
                profile.path().join("chrome").display()
            ),
        ];
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": args,
                "prefs": { "intl.accept_languages": lang },
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!()
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
            sub: sub.to_string(),
        }
    }

    /// The WebDriver client.
    pub fn c(&self) -> &Client {
        self.client.as_ref().expect("client")
    }

    /// Saves a screenshot as `name` in the test's artifact folder.
    pub async fn screenshot(&self, name: &str) {
        if let Ok(png) = self.c().screenshot().await {
            let path = artifacts(&self.sub).join(name);
            let _ = std::fs::write(&path, png);
            eprintln!("screenshot: {}", path.display());
        }
    }

    /// Runs `script` in the page and returns its value.
    pub async fn js(&self, script: &str) -> Value {
        self.c()
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Polls `script` until it returns something truthy (with a deadline).
    pub async fn wait_js(&self, script: &str, what: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.js(script).await;
            if !(v.is_null() || v == Value::Bool(false) || v == json!("") || v == json!(0)) {
                return v;
            }
            if Instant::now() > deadline {
                self.screenshot(&format!("timeout-{}.png", what.replace(' ', "-")))
                    .await;
                let body = self.js("return document.body.innerText").await;
                panic!("timed out waiting for {what}; page text:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Clicks the first element matching `css`, waiting (with a deadline) for it.
    pub async fn click(&self, css: &str) {
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

    /// Signs in through the login page as `user`.
    pub async fn login(&self, server: &Server, user: &str, password: &str) {
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
            "return location.pathname === '/' && document.body.dataset.ready === 'true'",
            "the app after signing in",
        )
        .await;
    }

    /// Ends the session and chromedriver.
    pub async fn close(mut self) {
        if let Some(c) = self.client.take() {
            let _ = c.close().await;
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
