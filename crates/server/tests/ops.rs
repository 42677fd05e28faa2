//! `/readyz` and `/metrics` of the real binary while its sync engine works:
//! ready once the worker runs, and the engine's rounds, failures, worker and
//! backlog in the Prometheus text after a feed synced.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::header;
use calsync_store::BackendKind;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use support::{json, TestApp};

on_both_backends!(a_running_server_is_ready_and_its_metrics_show_the_sync_engine);

/// Every sync metric and its type.
const SYNC_METRICS: [(&str, &str); 8] = [
    ("calsync_sync_worker_up", "gauge"),
    ("calsync_sync_rounds_in_flight", "gauge"),
    ("calsync_sync_rounds_total", "counter"),
    ("calsync_sync_failures_total", "counter"),
    ("calsync_sync_round_duration_seconds", "histogram"),
    ("calsync_sync_due_connections", "gauge"),
    ("calsync_sync_oldest_due_age_seconds", "gauge"),
    ("calsync_sync_leased_connections", "gauge"),
];

/// A feed of one event tomorrow, served on a random port; returns its URL.
async fn feed_server() -> String {
    let start = Timestamp::now().round(jiff::Unit::Hour).unwrap() + SignedDuration::from_hours(24);
    let utc = |at: Timestamp| at.strftime("%Y%m%dT%H%M%SZ").to_string();
    let body = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calsync tests//EN\r\nX-WR-CALNAME:Ops feed\r\n\
         BEGIN:VEVENT\r\nUID:review@ops\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{}\r\nDTEND:{}\r\n\
         SUMMARY:Review\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        utc(start),
        utc(start + SignedDuration::from_hours(1))
    );
    let body = Arc::new(Mutex::new(body));
    let app = axum::Router::new().route(
        "/feeds/ops.ics",
        axum::routing::get(move || {
            let body = body.lock().unwrap().clone();
            async move {
                (
                    [(header::CONTENT_TYPE, "text/calendar; charset=utf-8")],
                    body,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://127.0.0.1:{port}/feeds/ops.ics")
}

async fn metrics(app: &TestApp) -> String {
    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// The value of one series (name with its labels), if shown.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

/// The value of a series that must be shown.
fn must(text: &str, series: &str) -> f64 {
    value(text, series).unwrap_or_else(|| panic!("no {series} in /metrics:\n{text}"))
}

async fn a_running_server_is_ready_and_its_metrics_show_the_sync_engine(kind: BackendKind) {
    let Some(app) = TestApp::start_with(
        kind,
        &[
            ("CALSYNC_ALLOW_PRIVATE_ADDRESSES", "true"),
            ("CALSYNC_SYNC_INTERVAL", "1h"),
        ],
    )
    .await
    else {
        return;
    };

    // Ready: the database answers and the worker beats (within a moment of
    // starting).
    let deadline = Instant::now() + Duration::from_secs(15);
    let ready = loop {
        let answer = json(app.http.get(app.url("/readyz")).send().await.unwrap()).await;
        if answer.0 == 200 || Instant::now() > deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        ready,
        (200, json!({"status": "ok"})),
        "not ready; log:\n{}",
        app.log_text()
    );

    // One round of a feed.
    let token = app.user_with_token("alice");
    let feed = feed_server().await;
    let (status, created) = json(
        app.post("/api/calendar/ics/subscribe/", &token)
            .json(&json!({ "url": feed }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let connections = app.wait_for_sync(&token).await;
    assert_eq!(connections[0]["status"], "ok", "{connections}");

    // The round is counted once it finished (just after its result is stored).
    let ok = "calsync_sync_rounds_total{provider=\"ics\",outcome=\"ok\"}";
    let deadline = Instant::now() + Duration::from_secs(15);
    let text = loop {
        let text = metrics(&app).await;
        if value(&text, ok).is_some_and(|n| n >= 1.0) || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        must(&text, ok) >= 1.0,
        "the feed's round is not counted:\n{text}"
    );

    for (name, kind) in SYNC_METRICS {
        assert!(
            text.lines().any(|l| l == format!("# TYPE {name} {kind}")),
            "no {kind} {name} in /metrics:\n{text}"
        );
    }
    assert_eq!(must(&text, "calsync_sync_worker_up"), 1.0);
    assert_eq!(must(&text, "calsync_sync_rounds_in_flight"), 0.0);

    // A real histogram: cumulative buckets ending in +Inf = count.
    let buckets: Vec<f64> = text
        .lines()
        .filter(|l| {
            l.starts_with("calsync_sync_round_duration_seconds_bucket{") && l.contains("\"ics\"")
        })
        .map(|l| l.rsplit_once(' ').unwrap().1.parse().unwrap())
        .collect();
    assert!(buckets.len() >= 2, "{text}");
    assert!(
        buckets.windows(2).all(|w| w[0] <= w[1]),
        "not cumulative: {buckets:?}"
    );
    let count = must(
        &text,
        "calsync_sync_round_duration_seconds_count{provider=\"ics\"}",
    );
    assert_eq!(
        must(
            &text,
            "calsync_sync_round_duration_seconds_bucket{provider=\"ics\",le=\"+Inf\"}"
        ),
        count
    );
    let failed = must(
        &text,
        "calsync_sync_rounds_total{provider=\"ics\",outcome=\"failed\"}",
    );
    assert_eq!(count, must(&text, ok) + failed);
    let sum = must(
        &text,
        "calsync_sync_round_duration_seconds_sum{provider=\"ics\"}",
    );
    assert!(sum.is_finite() && sum >= 0.0, "{sum}");
    // Every failed round has its one kind.
    let kinds: f64 = text
        .lines()
        .filter(|l| l.starts_with("calsync_sync_failures_total{provider=\"ics\","))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum();
    assert_eq!(kinds, failed, "{text}");

    // The backlog: synced an hour ahead, and the round gave its lease back.
    assert_eq!(must(&text, "calsync_sync_due_connections"), 0.0);
    assert_eq!(must(&text, "calsync_sync_oldest_due_age_seconds"), 0.0);
    assert_eq!(
        must(&text, "calsync_sync_leased_connections"),
        0.0,
        "the finished round still holds its lease"
    );

    // A lease held elsewhere (another instance's round) shows, read from the
    // database.
    let store = app.store().await;
    let until = Timestamp::now().as_second() + 600;
    calsync_store::testing::execute(
        &store,
        &format!("UPDATE connections SET lease_until = {until}"),
    )
    .await;
    let text = metrics(&app).await;
    assert_eq!(must(&text, "calsync_sync_leased_connections"), 1.0);
    assert_eq!(must(&text, "calsync_sync_due_connections"), 0.0);

    // Invented methods are counted as OTHER, not under their own name.
    let brewed = app
        .http
        .request(
            reqwest::Method::from_bytes(b"BREW").unwrap(),
            app.url("/healthz"),
        )
        .send()
        .await
        .unwrap();
    assert!(brewed.status().is_client_error());
    let text = metrics(&app).await;
    assert!(!text.contains("BREW"), "{text}");
    assert!(text.contains("method=\"OTHER\""), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_ask_for_the_token_when_one_is_set() {
    let app = TestApp::start_with(
        BackendKind::Sqlite,
        &[("CALSYNC_METRICS_TOKEN", "scrape-7f3a9c1e2b8d")],
    )
    .await
    .expect("the test server");
    let scrape = |token: Option<&str>| {
        let request = app.http.get(app.url("/metrics"));
        match token {
            Some(token) => request.bearer_auth(token).send(),
            None => request.send(),
        }
    };
    assert_eq!(scrape(None).await.unwrap().status(), 401);
    assert_eq!(scrape(Some("scrape-guess")).await.unwrap().status(), 401);
    let allowed = scrape(Some("scrape-7f3a9c1e2b8d")).await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert!(allowed
        .text()
        .await
        .unwrap()
        .contains("calsync_sync_worker_up"));
}
