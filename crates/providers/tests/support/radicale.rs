//! A real CalDAV server for tests: Radicale (PyPI `radicale`, installed by
//! `scripts/setup.sh`) on a free `127.0.0.1` port, with its own storage
//! folder and a plain-text htpasswd file, killed and cleaned up on drop.
//!
//! Self-contained (std + reqwest + tokio only), so that other crates' tests
//! can include it:
//!
//! ```ignore
//! #[path = "../../providers/tests/support/radicale.rs"]
//! mod radicale;
//!
//! let Some(server) = radicale::Radicale::start(&[("alice", "secret")]) else { return };
//! server.mkcalendar("alice", "work", "Work", Some("#FF2968FF"), &["VEVENT"]).await;
//! server.put("alice", "work", "ev1.ics", &radicale::vevent("ev1", "Standup", "20260302T090000Z", "20260302T093000Z")).await;
//! // discover with server.base_url(), user "alice", password "secret"
//! ```
//!
//! When Radicale is not installed, [`Radicale::start`] panics under
//! `CI=true` (CI must run these tests) and otherwise prints a note and
//! returns `None`, so the test can return early.
//!
//! Seeding goes through Radicale's own HTTP interface (MKCALENDAR, PUT,
//! DELETE) with a plain reqwest client, never through the client under test.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A running Radicale. Dropping it kills the process and removes its folder.
pub struct Radicale {
    child: Child,
    port: u16,
    dir: PathBuf,
    users: Vec<(String, String)>,
    http: reqwest::Client,
}

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

/// Whether `python3 -m radicale` can run here.
pub fn installed() -> bool {
    Command::new("python3")
        .args(["-c", "import radicale"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Radicale {
    /// Starts Radicale with these users (plain htpasswd). Without Radicale
    /// the test fails, unless the developer opted out with
    /// `CALSYNC_TEST_ALLOW_MISSING=1` (then `None`, after a note).
    pub fn start(users: &[(&str, &str)]) -> Option<Self> {
        if !installed() {
            assert!(
                std::env::var("CALSYNC_TEST_ALLOW_MISSING").is_ok_and(|v| v == "1"),
                "Radicale is not installed (python3 -m radicale): scripts/setup.sh installs it \
                 (or set CALSYNC_TEST_ALLOW_MISSING=1 to skip the CalDAV tests)"
            );
            eprintln!("note: skipping a CalDAV test (CALSYNC_TEST_ALLOW_MISSING=1)");
            return None;
        }
        let dir = std::env::temp_dir().join(format!(
            "calsync-radicale-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("storage")).unwrap();
        let htpasswd = dir.join("users");
        let lines: String = users.iter().map(|(u, p)| format!("{u}:{p}\n")).collect();
        std::fs::write(&htpasswd, lines).unwrap();

        // A free port can be taken by someone else between our probe and
        // Radicale's bind: try a few.
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let log = std::fs::File::create(dir.join("radicale.log")).unwrap();
            let mut child = Command::new("python3")
                .args(["-m", "radicale", "--config", ""])
                .arg("--server-hosts")
                .arg(format!("127.0.0.1:{port}"))
                .args([
                    "--auth-type",
                    "htpasswd",
                    "--auth-htpasswd-encryption",
                    "plain",
                ])
                .arg("--auth-htpasswd-filename")
                .arg(&htpasswd)
                // Wrong passwords are answered at once, not after a second.
                .args(["--auth-delay", "0"])
                .arg("--storage-filesystem-folder")
                .arg(dir.join("storage"))
                .args(["--logging-level", "warning"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start python3 -m radicale");
            if wait_ready(port, &mut child) {
                return Some(Self {
                    child,
                    port,
                    dir,
                    users: users
                        .iter()
                        .map(|(u, p)| ((*u).to_owned(), (*p).to_owned()))
                        .collect(),
                    http: reqwest::Client::new(),
                });
            }
            let _ = child.kill();
            let _ = child.wait();
            last_error = std::fs::read_to_string(dir.join("radicale.log")).unwrap_or_default();
        }
        panic!("Radicale did not start: {last_error}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT/`
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// The absolute URL of a calendar collection: `/USER/CALENDAR/`.
    pub fn calendar_url(&self, user: &str, calendar: &str) -> String {
        format!("http://127.0.0.1:{}/{user}/{calendar}/", self.port)
    }

    /// The path of a resource: `/USER/CALENDAR/NAME`.
    pub fn resource_path(&self, user: &str, calendar: &str, name: &str) -> String {
        format!("/{user}/{calendar}/{name}")
    }

    /// Changes a user's password, as revoking an app-specific password
    /// does; Radicale reads its htpasswd file on every login.
    pub fn set_password(&mut self, user: &str, password: &str) {
        for (u, p) in &mut self.users {
            if u == user {
                *p = password.to_owned();
            }
        }
        let lines: String = self
            .users
            .iter()
            .map(|(u, p)| format!("{u}:{p}\n"))
            .collect();
        std::fs::write(self.dir.join("users"), lines).unwrap();
    }

    fn password(&self, user: &str) -> String {
        self.users
            .iter()
            .find(|(u, _)| u == user)
            .map(|(_, p)| p.clone())
            .expect("a user given to Radicale::start")
    }

    async fn request(
        &self,
        user: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> reqwest::Response {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let mut request = self
            .http
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
            .basic_auth(user, Some(self.password(user)))
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }

    /// MKCALENDAR `/USER/CALENDAR/` with a display name, an Apple colour and
    /// the supported components (e.g. `&["VEVENT"]`, `&["VTODO"]`).
    pub async fn mkcalendar(
        &self,
        user: &str,
        calendar: &str,
        displayname: &str,
        color: Option<&str>,
        components: &[&str],
    ) {
        let color = color
            .map(|c| format!("<A:calendar-color>{c}</A:calendar-color>"))
            .unwrap_or_default();
        let comps: String = components
            .iter()
            .map(|c| format!(r#"<C:comp name="{c}"/>"#))
            .collect();
        let body = format!(
            r#"<?xml version="1.0" encoding="utf-8"?><C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:A="http://apple.com/ns/ical/"><D:set><D:prop><D:displayname>{}</D:displayname>{color}<C:supported-calendar-component-set>{comps}</C:supported-calendar-component-set></D:prop></D:set></C:mkcalendar>"#,
            xml_escape(displayname)
        );
        let response = self
            .request(
                user,
                "MKCALENDAR",
                &format!("/{user}/{calendar}/"),
                &[("Content-Type", "application/xml; charset=utf-8")],
                body,
            )
            .await;
        assert_eq!(response.status().as_u16(), 201, "MKCALENDAR {calendar}");
    }

    /// PUT one calendar object resource; returns its ETag.
    pub async fn put(&self, user: &str, calendar: &str, name: &str, ics: &str) -> String {
        let response = self
            .request(
                user,
                "PUT",
                &format!("/{user}/{calendar}/{name}"),
                &[("Content-Type", "text/calendar; charset=utf-8")],
                ics.to_owned(),
            )
            .await;
        let status = response.status().as_u16();
        assert!(status == 201 || status == 204, "PUT {name}: {status}");
        response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// PUT a whole VCALENDAR on the collection: Radicale splits it into one
    /// resource per UID (how it imports a calendar). One request for
    /// thousands of events; the resource names are Radicale's own.
    pub async fn put_collection(&self, user: &str, calendar: &str, ics: &str) {
        let response = self
            .request(
                user,
                "PUT",
                &format!("/{user}/{calendar}/"),
                &[("Content-Type", "text/calendar; charset=utf-8")],
                ics.to_owned(),
            )
            .await;
        let status = response.status().as_u16();
        assert!(
            status == 201 || status == 204,
            "PUT collection {calendar}: {status}"
        );
    }

    /// DELETE one resource.
    pub async fn delete(&self, user: &str, calendar: &str, name: &str) {
        let response = self
            .request(
                user,
                "DELETE",
                &format!("/{user}/{calendar}/{name}"),
                &[],
                String::new(),
            )
            .await;
        let status = response.status().as_u16();
        assert!(status == 200 || status == 204, "DELETE {name}: {status}");
    }
}

impl Drop for Radicale {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `OPTIONS /` until Radicale answers (about 0.2 s), or gives up
/// after 15 s or when the process died.
fn wait_ready(port: u16, child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let request = "OPTIONS / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
            if stream.write_all(request.as_bytes()).is_ok() {
                let mut answer = Vec::new();
                let _ = stream.read_to_end(&mut answer);
                if answer.starts_with(b"HTTP/") {
                    return true;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A VCALENDAR with one plain VEVENT (UTC times `YYYYMMDDTHHMMSSZ`).
pub fn vevent(uid: &str, summary: &str, start: &str, end: &str) -> String {
    calendar(&[event_block(uid, summary, start, end, &[])])
}

/// One VEVENT block; `extra` lines (RRULE, RECURRENCE-ID, ...) are added.
pub fn event_block(uid: &str, summary: &str, start: &str, end: &str, extra: &[&str]) -> String {
    let mut out = format!(
        "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start}\r\nDTEND:{end}\r\nSUMMARY:{summary}\r\n"
    );
    for line in extra {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("END:VEVENT\r\n");
    out
}

/// A VCALENDAR around these VEVENT blocks.
pub fn calendar(blocks: &[String]) -> String {
    let mut out = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calsync tests//EN\r\n");
    for block in blocks {
        out.push_str(block);
    }
    out.push_str("END:VCALENDAR\r\n");
    out
}
