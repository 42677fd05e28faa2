//! Headless Chromium for the page tests: Debian's `chromium` driven through
//! `chromedriver` (WebDriver, via fantoccini), one driver per `Browser`, plus
//! calsync + the Google emulator on ports the browser can follow redirects to.
//!
//! Missing browser binaries fail the test under `CI=true` and skip it (with a
//! note) elsewhere. Waiting is always by polling for a condition with a
//! deadline, never a fixed sleep.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use calsync_emulator::{Emulator, EmulatorConfig, OAuthClient};
use calsync_store::BackendKind;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::support::google::{GoogleApp, CLIENT_ID, CLIENT_SECRET};
use crate::support::microsoft::{CLIENT_ID as MS_CLIENT_ID, CLIENT_SECRET as MS_CLIENT_SECRET};
use crate::support::TestApp;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long any one condition may take to become true (generous: CI runs
/// these beside the whole suite on two cores).
pub const WAIT: Duration = Duration::from_secs(30);

/// Whether the browser is installed. A missing one fails the test, so a
/// missing install step cannot pass as a skipped test, unless the developer
/// opted out with `CALSYNC_TEST_ALLOW_MISSING=1`.
pub fn available() -> bool {
    let present = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !present {
        assert!(
            std::env::var("CALSYNC_TEST_ALLOW_MISSING").is_ok_and(|v| v == "1"),
            "{CHROMIUM} and {CHROMEDRIVER} are missing: scripts/setup.sh installs them \
             (or set CALSYNC_TEST_ALLOW_MISSING=1 to skip the browser tests)"
        );
        eprintln!("note: skipping a browser test (CALSYNC_TEST_ALLOW_MISSING=1)");
    }
    present
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A headless Chromium session and the chromedriver behind it.
pub struct Browser {
    pub client: Client,
    driver: Child,
    driver_url: String,
    session: String,
    http: reqwest::Client,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A killed chromedriver leaves its Chromium running (a test run
        // leaked hundreds of them): end the session first, which quits the
        // browser, then everything left in chromedriver's process group.
        end_session(&self.driver_url, &self.session);
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `DELETE /session/{id}` over a plain blocking socket: `Drop` cannot await.
fn end_session(driver_url: &str, session: &str) {
    use std::io::{Read as _, Write as _};
    let Some(address) = driver_url.strip_prefix("http://") else {
        return;
    };
    let Ok(mut stream) = std::net::TcpStream::connect(address) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        let _ = stream.read_to_end(&mut Vec::new());
    }
}

impl Browser {
    /// Starts chromedriver on a free port and a 1280-wide headless Chromium.
    pub async fn start() -> Self {
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            // Its own process group, so that dropping the browser can end
            // every process it started.
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver_url = format!("http://127.0.0.1:{port}");
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-background-networking",
                    "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900",
                    "--disable-extensions", "--no-first-run", "--lang=en-US",
                ],
            }),
        );
        let deadline = Instant::now() + WAIT;
        let client = loop {
            let mut builder =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
            match builder
                .capabilities(caps.clone())
                .connect(&driver_url)
                .await
            {
                Ok(client) => break client,
                // chromedriver takes a moment to listen.
                Err(err) if Instant::now() < deadline => {
                    let _ = err;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(err) => panic!("could not start Chromium through chromedriver: {err}"),
            }
        };
        let session = client.session_id().await.unwrap().expect("a session id");
        Self {
            client,
            driver,
            driver_url,
            session,
            http: reqwest::Client::new(),
        }
    }

    /// Runs a Chrome DevTools Protocol command through chromedriver.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        let url = format!(
            "{}/session/{}/goog/cdp/execute",
            self.driver_url, self.session
        );
        let response = self
            .http
            .post(url)
            .json(&json!({"cmd": cmd, "params": params}))
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        assert!(
            body["value"].get("error").is_none(),
            "CDP {cmd} failed: {body}"
        );
        body["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    pub async fn url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap()
    }

    /// Waits until `script` returns something truthy; returns that value.
    pub async fn wait_js(&self, what: &str, script: &str, args: Vec<Value>) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            // A navigation in progress makes a script fail: that is "not yet".
            if let Ok(value) = self.client.execute(script, args.clone()).await {
                let truthy = match &value {
                    Value::Null => false,
                    Value::Bool(b) => *b,
                    Value::String(s) => !s.is_empty(),
                    Value::Number(n) => n.as_f64() != Some(0.0),
                    _ => true,
                };
                if truthy {
                    return value;
                }
            }
            if Instant::now() > deadline {
                let text = self.text("body").await;
                panic!(
                    "timed out after {WAIT:?} waiting for {what}; at {}; page text:\n{text}",
                    self.url().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until an element matching `css` exists.
    pub async fn wait_for(&self, css: &str) {
        self.wait_js(
            &format!("an element {css}"),
            "return document.querySelector(arguments[0]) !== null",
            vec![json!(css)],
        )
        .await;
    }

    /// Waits until the element `css` exists and its text contains `needle`.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        self.wait_js(
            &format!("{needle:?} in {css}"),
            "const e = document.querySelector(arguments[0]); \
             return e && e.innerText.includes(arguments[1]) ? e.innerText : null",
            vec![json!(css), json!(needle)],
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Waits until no element matching `css` contains `needle`.
    pub async fn wait_gone(&self, css: &str, needle: &str) {
        self.wait_js(
            &format!("{needle:?} to leave {css}"),
            "return ![...document.querySelectorAll(arguments[0])].some(e => e.innerText.includes(arguments[1]))",
            vec![json!(css), json!(needle)],
        )
        .await;
    }

    /// The visible text of the first element matching `css` ("" when none).
    pub async fn text(&self, css: &str) -> String {
        self.client
            .execute(
                "const e = document.querySelector(arguments[0]); return e ? e.innerText : ''",
                vec![json!(css)],
            )
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Clicks the element `css`, finding it again when the live region was
    /// swapped under it (a stale element is a retry, not a failure).
    pub async fn click(&self, css: &str) {
        self.with_element(css, |element| async move { element.click().await })
            .await;
    }

    /// Replaces the value of the input `css` by typing `text`.
    pub async fn fill(&self, css: &str, text: &str) {
        self.with_element(css, |element| {
            let text = text.to_owned();
            async move {
                element.clear().await?;
                element.send_keys(&text).await
            }
        })
        .await;
    }

    async fn with_element<F, Fut>(&self, css: &str, act: F)
    where
        F: Fn(fantoccini::elements::Element) -> Fut,
        Fut: std::future::Future<Output = Result<(), fantoccini::error::CmdError>>,
    {
        let deadline = Instant::now() + WAIT;
        loop {
            let outcome = match self.client.find(Locator::Css(css)).await {
                Ok(element) => act(element).await,
                Err(err) => Err(err),
            };
            match outcome {
                Ok(()) => return,
                Err(err) if Instant::now() > deadline => {
                    panic!("could not act on {css} within {WAIT:?}: {err}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Emulates a viewport (`mobile` applies the page's viewport meta) and
    /// the system colour scheme.
    pub async fn emulate(&self, width: u32, height: u32, mobile: bool, dark: bool) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": if mobile { 2 } else { 1 }, "mobile": mobile}),
        )
        .await;
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": if dark { "dark" } else { "light" }}]}),
        )
        .await;
    }

    /// A PNG of the viewport, or of the whole page, in the current emulation.
    pub async fn png(&self, full_page: bool) -> Vec<u8> {
        let shot = self
            .cdp(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": full_page}),
            )
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .unwrap()
    }

    /// Logs in through the form.
    pub async fn log_in(&self, base: &str, user: &str) {
        self.goto(&format!("{base}/")).await;
        self.wait_for("#username").await;
        assert!(self.url().await.contains("/login?next=/"));
        self.fill("#username", user).await;
        self.fill("#password", crate::support::PASSWORD).await;
        self.click("form[action='/login'] button[type=submit]")
            .await;
        self.wait_text("h1", "Upcoming Events").await;
    }
}

/// calsync on a port chosen up front, so that its public URL (where the
/// emulator sends the browser back) is the address the browser uses, and the
/// emulator (Google and Microsoft, with their sample accounts) showing its
/// consent pages (Allow / Deny).
pub async fn google_app(kind: BackendKind) -> Option<GoogleApp> {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let redirect = format!("{base}/api/calendar/google/callback/");
    let ms_redirect = format!("{base}/api/calendar/microsoft/callback/");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = EmulatorConfig {
        clients: vec![
            OAuthClient::new(CLIENT_ID, CLIENT_SECRET, [redirect]),
            OAuthClient::new(MS_CLIENT_ID, MS_CLIENT_SECRET, [ms_redirect]),
        ],
        auto_approve: false,
        sample_data: true,
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(listener, config).unwrap();
    let emu = emulator.base_url().to_owned();
    let ms = emulator.microsoft();
    let env = [
        ("CALSYNC_LISTEN", format!("127.0.0.1:{port}")),
        ("CALSYNC_PUBLIC_URL", base.clone()),
        ("CALSYNC_GOOGLE_CLIENT_ID", CLIENT_ID.to_owned()),
        ("CALSYNC_GOOGLE_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
        ("CALSYNC_GOOGLE_AUTH_URL", format!("{emu}/o/oauth2/v2/auth")),
        ("CALSYNC_GOOGLE_TOKEN_URL", format!("{emu}/token")),
        ("CALSYNC_GOOGLE_API_BASE", emu.clone()),
        ("CALSYNC_GOOGLE_REVOKE_URL", format!("{emu}/revoke")),
        ("CALSYNC_MICROSOFT_CLIENT_ID", MS_CLIENT_ID.to_owned()),
        (
            "CALSYNC_MICROSOFT_CLIENT_SECRET",
            MS_CLIENT_SECRET.to_owned(),
        ),
        ("CALSYNC_MICROSOFT_AUTH_URL", ms.auth_url),
        ("CALSYNC_MICROSOFT_TOKEN_URL", ms.token_url),
        ("CALSYNC_MICROSOFT_API_BASE", ms.api_base),
        // Only manual syncs: each step of a test decides when data moves.
        ("CALSYNC_SYNC_INTERVAL", "1h".to_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::start_with(kind, &env).await?;
    assert_eq!(
        app.base, base,
        "calsync should listen where its public URL says"
    );
    Some(GoogleApp { app, emulator })
}

/// Saves a screenshot under docs/screenshots/ when `CALSYNC_SCREENSHOTS=1`
/// (so ordinary and CI runs leave the work tree alone).
pub fn save_screenshot(name: &str, png: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

pub fn screenshots_wanted() -> bool {
    std::env::var("CALSYNC_SCREENSHOTS").is_ok_and(|v| v == "1")
}
