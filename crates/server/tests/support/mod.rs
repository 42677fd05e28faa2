//! `TestApp`: the real `calsync` binary, started on a random port against a
//! fresh database (SQLite or PostgreSQL), with its log captured for assertions.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub mod feeds;
pub mod google;
pub mod microsoft;

use calsync_store::testing::{fresh_database, TestDatabase};
use calsync_store::{BackendKind, Store};
use secrecy::{ExposeSecret, SecretString};

/// Generates one `#[tokio::test]` per backend for each test function.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(calsync_store::BackendKind::Sqlite).await
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(calsync_store::BackendKind::Postgres).await
            })*
        }
    };
}

pub const PASSWORD: &str = "correct horse battery staple";

/// A running calsync and what a test needs to talk to it.
pub struct TestApp {
    pub base: String,
    pub db: TestDatabase,
    pub data_dir: std::path::PathBuf,
    pub key: SecretString,
    pub log: Arc<Mutex<String>>,
    pub http: reqwest::Client,
    extra_env: Vec<(String, String)>,
    child: Child,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_calsync")
}

impl TestApp {
    /// Starts `calsync serve` on a fresh database; `None` when the backend is
    /// unavailable outside CI.
    pub async fn start(kind: BackendKind) -> Option<Self> {
        let db = fresh_database(kind).await?;
        let data_dir = calsync_store::testing::temp_dir();
        let key = calsync_store::seal::Keyring::generate_base64();
        Some(Self::start_on(db, data_dir, key, &[]))
    }

    /// Starts `calsync serve` on a fresh database with `extra` environment.
    pub async fn start_with(kind: BackendKind, extra: &[(&str, &str)]) -> Option<Self> {
        let db = fresh_database(kind).await?;
        let data_dir = calsync_store::testing::temp_dir();
        let key = calsync_store::seal::Keyring::generate_base64();
        Some(Self::start_on(db, data_dir, key, extra))
    }

    /// Starts `calsync serve` on an existing database with `extra` environment.
    pub fn start_on(
        db: TestDatabase,
        data_dir: std::path::PathBuf,
        key: SecretString,
        extra: &[(&str, &str)],
    ) -> Self {
        let mut command = Self::command_for(&db, &data_dir, &key);
        command
            .arg("serve")
            .envs(extra.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start calsync");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("listening on http://") {
                    let rest = &line[at + "listening on ".len()..];
                    let _ = tx.send(
                        rest.split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_owned(),
                    );
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => base,
            Err(_) => panic!("calsync did not start; log:\n{}", log.lock().unwrap()),
        };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let extra_env = extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Self {
            base,
            db,
            data_dir,
            key,
            log,
            http,
            extra_env,
            child,
        }
    }

    /// A `calsync` command on this app's database and key.
    pub fn command(&self) -> Command {
        Self::command_for(&self.db, &self.data_dir, &self.key)
    }

    fn command_for(db: &TestDatabase, data_dir: &std::path::Path, key: &SecretString) -> Command {
        let mut command = Command::new(binary());
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CALSYNC_LISTEN", "127.0.0.1:0")
            .env("CALSYNC_DATA_DIR", db.dir.as_deref().unwrap_or(data_dir))
            .env("CALSYNC_ENCRYPTION_KEY", key.expose_secret())
            .env("CALSYNC_PUBLIC_URL", "http://localhost:8000")
            .env("RUST_LOG", "debug,sqlx=info");
        // SQLite runs on the embedded default (calsync.db in the data folder).
        if db.dir.is_none() {
            command.env("CALSYNC_DATABASE_URL", &db.url);
        }
        command
    }

    /// A `calsync` command on this app's database with another key.
    pub fn command_with_key(&self, key: &SecretString) -> Command {
        Self::command_for(&self.db, &self.data_dir, key)
    }

    /// `calsync user add NAME --password-stdin`.
    pub fn add_user(&self, name: &str) {
        let mut child = self
            .command()
            .args(["user", "add", name, "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "user add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `calsync token create NAME`: a bearer token.
    pub fn token(&self, name: &str) -> String {
        let out = self
            .command()
            .args(["token", "create", name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "token create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// A user with a bearer token.
    pub fn user_with_token(&self, name: &str) -> String {
        self.add_user(name);
        self.token(name)
    }

    /// The same database, opened by the test itself with the app's key.
    pub async fn store(&self) -> Store {
        let keyring = calsync_store::testing::keyring_from(&[&self.key]);
        Store::open_url(&self.db.url, keyring).await.unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path)).bearer_auth(token)
    }

    pub fn post(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http.post(self.url(path)).bearer_auth(token)
    }

    /// Logs in through the form; returns the `Cookie` header value and the CSRF token.
    pub async fn login(&self, name: &str) -> (String, String) {
        let response = self
            .http
            .post(self.url("/login"))
            .header("Origin", "http://localhost:8000")
            .form(&[("username", name), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303, "login failed");
        let cookies: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
            .collect();
        let csrf = cookies
            .iter()
            .find_map(|c| c.strip_prefix("calsync_csrf="))
            .unwrap()
            .to_owned();
        (cookies.join("; "), csrf)
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The consent URL calsync hands out for `provider` (as JSON).
    pub async fn authorization_url(&self, cookie: &str, provider: &str) -> String {
        let response = self
            .http
            .get(self.url(&format!("/api/calendar/{provider}/authorize/")))
            .header("cookie", cookie)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        let (status, body) = json(response).await;
        assert_eq!(status, 200, "{body}");
        body["authorization_url"].as_str().unwrap().to_owned()
    }

    /// Delivers a provider's redirect meant for the public URL to this
    /// server; returns where calsync sent the browser next.
    pub async fn follow_callback(&self, cookie: &str, redirect: &str) -> String {
        let path = redirect
            .strip_prefix("http://localhost:8000")
            .expect("redirect to calsync's public URL");
        let response = self
            .http
            .get(self.url(path))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
        response.headers()["location"].to_str().unwrap().to_owned()
    }

    /// Starts a manual sync of every connection and waits until it finished;
    /// returns the connections.
    pub async fn sync(&self, token: &str) -> serde_json::Value {
        let response = self
            .post("/api/calendar/sync/", token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        self.wait_for_sync(token).await
    }

    /// Waits until no connection is pending or syncing; returns the connections.
    pub async fn wait_for_sync(&self, token: &str) -> serde_json::Value {
        // Generous: a 3,000-event round on a loaded 2-core machine.
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while std::time::Instant::now() < deadline {
            let (_, connections) = json(
                self.get("/api/calendar/connections/", token)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            let busy = connections
                .as_array()
                .unwrap()
                .iter()
                .any(|c| matches!(c["status"].as_str(), Some("pending" | "syncing")));
            if !busy {
                return connections;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("sync did not finish; log:\n{}", self.log_text());
    }

    /// The upcoming events (`query` as the API takes it, e.g. `limit=200&days=30`).
    pub async fn upcoming(&self, token: &str, query: &str) -> Vec<serde_json::Value> {
        let path = format!("/api/calendar/events/upcoming/?{query}");
        let (status, events) = json(self.get(&path, token).send().await.unwrap()).await;
        assert_eq!(status, 200, "{events}");
        events.as_array().unwrap().clone()
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the same binary again on the same database, key and environment.
    pub fn restarted(&self) -> Self {
        Self::start_on(
            self.db.clone(),
            self.data_dir.clone(),
            self.key.clone(),
            &self.env_borrowed(),
        )
    }

    /// A second `calsync serve` beside this one, on the same database, key
    /// and environment (two instances behind one load balancer).
    pub fn second_instance(&self) -> Self {
        self.restarted()
    }

    fn env_borrowed(&self) -> Vec<(&str, &str)> {
        self.extra_env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("calsync did not stop within 10 s of SIGTERM");
    }
}

/// The JSON body and status of a response.
pub async fn json(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, value)
}

/// Asserts the error envelope and returns its code.
pub fn error_code(body: &serde_json::Value) -> String {
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.code in {body}"));
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "no message in {body}"
    );
    code.to_owned()
}

/// Posts a page form as a browser without JavaScript would (same origin,
/// session cookie) and follows the 303 with the flash cookie it set; returns
/// the page it leads to.
pub async fn post_and_follow(
    app: &TestApp,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> String {
    let response = app
        .http
        .post(app.url(path))
        .header("cookie", cookie)
        .header("origin", "http://localhost:8000")
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "{path}");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let flash = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with("calsync_flash="))
        .unwrap_or_default();
    app.http
        .get(app.url(location.split('#').next().unwrap()))
        .header("cookie", format!("{cookie}; {flash}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
