//! Live updates across instances: two `calsync serve` on one PostgreSQL
//! database, as behind a load balancer. A sync done by one instance reaches
//! the event streams the other serves (through LISTEN/NOTIFY), and only the
//! streams of the user it concerns.
//!
//! PostgreSQL is required: without it (`CALSYNC_TEST_POSTGRES_URL`, default
//! `postgres://127.0.0.1:5432/test`) this test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use calsync_store::BackendKind;
use serde_json::{json, Value};
use support::{json, TestApp};

/// A generous hang detector: a change normally arrives in milliseconds.
const DEADLINE: Duration = Duration::from_secs(30);

/// An ICS feed served by the test; returns its URL and its body.
async fn feed_server() -> (String, Arc<Mutex<String>>) {
    let body = Arc::new(Mutex::new(String::new()));
    let app = axum::Router::new()
        .route(
            "/team.ics",
            axum::routing::get(|State(body): State<Arc<Mutex<String>>>| async move {
                let body = body.lock().unwrap().clone();
                ([("content-type", "text/calendar; charset=utf-8")], body)
            }),
        )
        .with_state(body.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://127.0.0.1:{port}/team.ics"), body)
}

/// A feed of `titles`, one event a day from tomorrow.
fn calendar(titles: &[&str]) -> String {
    let tomorrow = jiff::Zoned::now().date().tomorrow().unwrap();
    let events: String = titles
        .iter()
        .enumerate()
        .map(|(i, title)| {
            let day = tomorrow
                .checked_add(jiff::Span::new().days(i64::try_from(i).unwrap()))
                .unwrap();
            format!(
                "BEGIN:VEVENT\r\nUID:{i}@live-test\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{}T100000Z\r\nDTEND:{}T110000Z\r\nSUMMARY:{title}\r\nEND:VEVENT\r\n",
                day.strftime("%Y%m%d"),
                day.strftime("%Y%m%d"),
            )
        })
        .collect();
    format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calsync live test//EN\r\n{events}END:VCALENDAR\r\n")
}

/// Subscribes `token`'s user to `url`; returns the connection id.
async fn subscribe(app: &TestApp, token: &str, url: &str) -> i64 {
    let (status, body) = json(
        app.post("/api/calendar/ics/subscribe/", token)
            .json(&json!({ "url": url }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_i64().unwrap()
}

/// An open event stream and what was read of it.
struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    async fn open(app: &TestApp, token: &str) -> Self {
        let response = app
            .get("/api/calendar/events/stream/", token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let mut stream = Self {
            response,
            buffer: String::new(),
        };
        let (name, _) = stream.next(Instant::now() + DEADLINE).await.unwrap();
        assert_eq!(name, "ready");
        stream
    }

    /// The next event (name and data), or `None` at `deadline`.
    async fn next(&mut self, deadline: Instant) -> Option<(String, Value)> {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(|v| v.trim().to_owned())
                };
                // Keep-alive comments have no event.
                if let Some(name) = field("event:") {
                    let data = field("data:").unwrap_or_else(|| "null".to_owned());
                    return Some((name, serde_json::from_str(&data).unwrap()));
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            let chunk = tokio::time::timeout(left, self.response.chunk())
                .await
                .ok()?
                .unwrap()
                .expect("the stream ended");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Reads `change` events until one satisfies `wanted`; returns every
    /// event read. Fails at the deadline.
    async fn until(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + DEADLINE;
        let mut seen = Vec::new();
        loop {
            let Some((name, data)) = self.next(deadline).await else {
                panic!("no {what} within {DEADLINE:?}; events seen: {seen:?}");
            };
            assert_eq!(name, "change", "{data}");
            let done = wanted(&data);
            seen.push(data);
            if done {
                return seen;
            }
        }
    }
}

/// Whether a `change` event is about `connection` only.
fn about(change: &Value, connection: i64) -> bool {
    match change["kind"].as_str() {
        Some("connection") => change["connection_id"] == connection,
        Some("events") => change["connection_ids"] == json!([connection]),
        _ => false,
    }
}

fn syncs_finished(app: &TestApp) -> usize {
    app.log_text().matches("sync finished").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_on_one_instance_reaches_the_users_streams_on_another() {
    let a = TestApp::start_with(
        BackendKind::Postgres,
        &[
            ("CALSYNC_ALLOW_PRIVATE_ADDRESSES", "true"),
            ("CALSYNC_SYNC_INTERVAL", "1h"),
        ],
    )
    .await
    .expect("this test needs PostgreSQL at CALSYNC_TEST_POSTGRES_URL (default postgres://127.0.0.1:5432/test)");
    let alice = a.user_with_token("alice");
    let bob = a.user_with_token("bob");
    let (url, feed) = feed_server().await;
    *feed.lock().unwrap() = calendar(&["Standup"]);
    let alices = subscribe(&a, &alice, &url).await;
    a.wait_for_sync(&alice).await;

    // B starts once A's first sync is done, so every sync B logs is a sync
    // B did.
    let b = a.second_instance();
    let mut alice_on_b = EventStream::open(&b, &alice).await;
    let mut bob_on_b = EventStream::open(&b, &bob).await;

    // A manual sync through A's API; A's worker is woken at once. B's worker
    // polls every few seconds and could, rarely, claim it first: then the
    // change did not cross instances and the round is repeated.
    let mut titles = vec!["Standup"];
    let planning = ["Planning 1", "Planning 2", "Planning 3"];
    let mut crossed = false;
    for title in planning {
        titles.push(title);
        *feed.lock().unwrap() = calendar(&titles);
        let before = syncs_finished(&a);
        let started = Instant::now();
        let response = a.post("/api/calendar/sync/", &alice).send().await.unwrap();
        assert_eq!(response.status(), 202);
        let seen = alice_on_b
            .until("change of Alice's events on B", |c| {
                c["kind"] == "events" && about(c, alices)
            })
            .await;
        let latency = started.elapsed();
        assert!(
            seen.iter().all(|c| about(c, alices)),
            "only Alice's connection: {seen:?}"
        );
        // The log line is written before the change is published; give the
        // log reader a moment.
        let logged = Instant::now() + Duration::from_secs(5);
        while syncs_finished(&a) == before && syncs_finished(&b) == 0 && Instant::now() < logged {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if syncs_finished(&b) == 0 {
            assert_eq!(syncs_finished(&a), before + 1, "A did the sync");
            eprintln!("A's sync reached Alice's stream on B {latency:?} after the request");
            crossed = true;
            break;
        }
        eprintln!("B's worker took the sync ({title}); again");
    }
    assert!(crossed, "B's worker took every sync");
    let upcoming = b.upcoming(&alice, "limit=10&days=30").await;
    assert_eq!(upcoming.len(), titles.len(), "{upcoming:?}");

    // Bob's stream on B heard nothing of Alice's: the first change it
    // carries is Bob's own, a feed he subscribes to on A.
    let bobs = subscribe(&a, &bob, &format!("{url}?bob")).await;
    let seen = bob_on_b
        .until("Bob's new connection on B", |c| about(c, bobs))
        .await;
    assert_eq!(seen.len(), 1, "Bob's first change is his own: {seen:?}");
    assert_eq!(
        seen[0],
        json!({"kind": "connection", "connection_id": bobs})
    );

    for app in [&a, &b] {
        let log = app.log_text();
        assert!(
            log.contains("live updates travel through PostgreSQL"),
            "{log}"
        );
        assert!(!log.contains("change notice"), "{log}");
    }
}
