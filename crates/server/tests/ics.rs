//! Subscribing to ICS feeds end to end: the real binary, a real database and
//! a feed served over real HTTP by the test, as a user meets them.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use calsync_store::BackendKind;
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};
use support::{error_code, json, TestApp};

on_both_backends!(
    a_feed_shows_its_events_and_follows_its_changes,
    an_emptied_or_broken_feed_keeps_the_last_good_copy,
    feeds_on_private_addresses_are_refused_unless_allowed,
);

/// The secret part of the feed URL, as in Google's "secret address".
const FEED_KEY: &str = "private-7f3a9c1e2b8d4f60";

/// What the test feed serves, and what it saw.
#[derive(Default)]
struct Feed {
    body: String,
    requests: u32,
    not_modified: u32,
}

async fn serve(State(feed): State<Arc<Mutex<Feed>>>, headers: HeaderMap) -> Response {
    let mut feed = feed.lock().unwrap();
    feed.requests += 1;
    let etag = format!("\"{:x}\"", fingerprint(&feed.body));
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag);
    if unchanged {
        feed.not_modified += 1;
        return StatusCode::NOT_MODIFIED.into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                "text/calendar; charset=utf-8".to_owned(),
            ),
            (header::ETAG, etag),
        ],
        feed.body.clone(),
    )
        .into_response()
}

fn fingerprint(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// A feed server on a random port; returns its URL and state.
async fn feed_server() -> (String, Arc<Mutex<Feed>>) {
    let feed = Arc::new(Mutex::new(Feed::default()));
    let app = axum::Router::new()
        .route("/feeds/team.ics", axum::routing::get(serve))
        .with_state(feed.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (
        format!("127.0.0.1:{port}/feeds/team.ics?key={FEED_KEY}"),
        feed,
    )
}

fn utc(at: Timestamp) -> String {
    at.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// A VEVENT starting `days` from now (at a whole hour), one hour long.
fn vevent(uid: &str, title: &str, days: i64, extra: &str) -> String {
    let start =
        Timestamp::now().round(jiff::Unit::Hour).unwrap() + SignedDuration::from_hours(24 * days);
    let end = start + SignedDuration::from_hours(1);
    format!(
        "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{}\r\nDTEND:{}\r\nSUMMARY:{title}\r\n{extra}END:VEVENT\r\n",
        utc(start),
        utc(end)
    )
}

fn calendar(events: &[String]) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calsync tests//EN\r\nX-WR-CALNAME:Team feed\r\n{}END:VCALENDAR\r\n",
        events.concat()
    )
}

async fn subscribe(app: &TestApp, token: &str, url: &str) -> (u16, Value) {
    json(
        app.post("/api/calendar/ics/subscribe/", token)
            .json(&json!({ "url": url }))
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn upcoming(app: &TestApp, token: &str) -> Vec<(String, bool)> {
    app.upcoming(token, "limit=100&days=30")
        .await
        .iter()
        .map(|e| {
            (
                e["title"].as_str().unwrap().to_owned(),
                e["recurring"].as_bool().unwrap(),
            )
        })
        .collect()
}

async fn allowed_app(kind: BackendKind) -> Option<TestApp> {
    TestApp::start_with(
        kind,
        &[
            ("CALSYNC_ALLOW_PRIVATE_ADDRESSES", "true"),
            ("CALSYNC_SYNC_INTERVAL", "1h"),
        ],
    )
    .await
}

async fn a_feed_shows_its_events_and_follows_its_changes(kind: BackendKind) {
    let Some(app) = allowed_app(kind).await else {
        return;
    };
    let token = app.user_with_token("alice");
    let (feed_url, feed) = feed_server().await;
    let weekly = vevent(
        "standup@team",
        "Standup",
        1,
        "RRULE:FREQ=WEEKLY;COUNT=3\r\n",
    );
    let review = vevent("review@team", "Review", 2, "LOCATION:Room 4\r\n");
    feed.lock().unwrap().body = calendar(&[weekly.clone(), review]);

    let (status, created) = subscribe(&app, &token, &format!("http://{feed_url}")).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["provider"], "ics");
    assert_eq!(created["account_email"], "Team feed");
    let connections = app.wait_for_sync(&token).await;
    assert_eq!(connections[0]["status"], "ok", "{connections}");
    assert_eq!(connections[0]["calendars"][0]["name"], "Team feed");
    let mut titles = upcoming(&app, &token).await;
    titles.sort();
    assert_eq!(
        titles,
        [
            ("Review".to_owned(), false),
            ("Standup".to_owned(), true),
            ("Standup".to_owned(), true),
            ("Standup".to_owned(), true),
        ]
    );

    // Unchanged: a conditional request, answered 304, changes nothing.
    app.sync(&token).await;
    assert_eq!(feed.lock().unwrap().not_modified, 1);
    assert_eq!(upcoming(&app, &token).await.len(), 4);

    // The review goes, a planning meeting arrives, the standup is renamed;
    // subscribing again to the same URL (spelt differently) keeps the one
    // subscription.
    let renamed = weekly.replace("SUMMARY:Standup", "SUMMARY:Daily sync");
    let planning = vevent("planning@team", "Planning", 3, "");
    feed.lock().unwrap().body = calendar(&[planning, renamed]);
    let (status, again) = subscribe(&app, &token, &format!("HTTP://{feed_url}")).await;
    assert_eq!((status, &again["id"]), (201, &created["id"]));
    app.wait_for_sync(&token).await;
    let mut titles: Vec<String> = upcoming(&app, &token)
        .await
        .into_iter()
        .map(|t| t.0)
        .collect();
    titles.sort();
    assert_eq!(
        titles,
        ["Daily sync", "Daily sync", "Daily sync", "Planning"]
    );

    let log = app.log_text();
    assert!(
        !log.contains(FEED_KEY),
        "the feed's key reached the log:\n{log}"
    );
    let (_, listed) = json(
        app.get("/api/calendar/connections/", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        !listed.to_string().contains(FEED_KEY),
        "the API shows the feed's key"
    );
}

async fn an_emptied_or_broken_feed_keeps_the_last_good_copy(kind: BackendKind) {
    let Some(app) = allowed_app(kind).await else {
        return;
    };
    let token = app.user_with_token("alice");
    let (feed_url, feed) = feed_server().await;
    let events: Vec<String> = (0..5)
        .map(|i| vevent(&format!("e{i}@team"), &format!("Event {i}"), i + 1, ""))
        .collect();
    feed.lock().unwrap().body = calendar(&events);
    let (status, _) = subscribe(&app, &token, &format!("http://{feed_url}")).await;
    assert_eq!(status, 201);
    app.wait_for_sync(&token).await;
    assert_eq!(upcoming(&app, &token).await.len(), 5);

    for broken in [calendar(&[]), "<html>maintenance</html>".to_owned()] {
        feed.lock().unwrap().body = broken;
        let connections = app.sync(&token).await;
        assert_eq!(connections[0]["status"], "error", "{connections}");
        assert!(
            connections[0]["last_error"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{connections}"
        );
        assert_eq!(
            upcoming(&app, &token).await.len(),
            5,
            "the last good copy stays"
        );
    }

    feed.lock().unwrap().body = calendar(&events[..4]);
    let connections = app.sync(&token).await;
    assert_eq!(connections[0]["status"], "ok", "{connections}");
    assert_eq!(upcoming(&app, &token).await.len(), 4);
}

async fn feeds_on_private_addresses_are_refused_unless_allowed(kind: BackendKind) {
    let Some(app) = TestApp::start(kind).await else {
        return;
    };
    let token = app.user_with_token("alice");
    let (feed_url, feed) = feed_server().await;
    feed.lock().unwrap().body = calendar(&[vevent("a@team", "A", 1, "")]);
    for url in [
        format!("http://{feed_url}"),
        feed_url.replace("127.0.0.1", "http://localhost"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[::1]:9/feed.ics".to_owned(),
    ] {
        let (status, body) = subscribe(&app, &token, &url).await;
        assert_eq!(
            (status, error_code(&body).as_str()),
            (422, "invalid_url"),
            "{url}: {body}"
        );
    }
    assert_eq!(
        feed.lock().unwrap().requests,
        0,
        "nothing reached the private server"
    );
    let (status, body) = json(
        app.post("/api/calendar/caldav/connect/", &token)
            .json(&json!({"server_url": format!("http://{feed_url}"), "username": "a", "password": "b"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (422, "invalid_url"),
        "{body}"
    );
    let (_, connections) = json(
        app.get("/api/calendar/connections/", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(connections, json!([]));
}
