//! One bad account never stops the others: the real binary on a real
//! database, with feeds and a CalDAV server (Radicale behind a proxy the
//! test can slow down) misbehaving while other users' calendars keep
//! syncing on schedule.
#![allow(clippy::unwrap_used)]

#[path = "../../providers/tests/support/radicale.rs"]
mod radicale;
mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use calsync_store::BackendKind;
use jiff::{SignedDuration, Timestamp};
use radicale::{calendar as caldav_calendar, event_block, Radicale};
use serde_json::{json, Value};
use support::feeds::{feed_server, feed_with};
use support::{json, TestApp};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

on_both_backends!(
    hostile_retry_after_values_never_stop_the_others,
    a_slow_caldav_server_does_not_hold_up_other_users,
);

/// `Retry-After` values a hostile or broken feed may send, each with the
/// wait reason the connection must show: a readable one is obeyed (capped
/// at a day) unless the usual backoff is longer; an unreadable one falls
/// back to the backoff.
const HOSTILE: &[(&str, &str)] = &[
    ("1000000000000", "rate_limited"),
    ("18446744073709551616", "rate_limited"),
    ("Fri, 31 Dec 9999 23:59:59 GMT", "rate_limited"),
    ("Thu, 01 Jan 1970 00:00:00 GMT", "backoff"),
    ("-5", "backoff"),
    ("soon, probably", "backoff"),
];

async fn app_syncing_every(kind: BackendKind, interval: &str) -> Option<TestApp> {
    TestApp::start_with(
        kind,
        &[
            ("CALSYNC_ALLOW_PRIVATE_ADDRESSES", "true"),
            ("CALSYNC_SYNC_INTERVAL", interval),
        ],
    )
    .await
}

async fn subscribe(app: &TestApp, token: &str, url: &str) {
    let (status, body) = json(
        app.post("/api/calendar/ics/subscribe/", token)
            .json(&json!({ "url": url }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

async fn connections(app: &TestApp, token: &str) -> Vec<Value> {
    let (status, body) = json(
        app.get("/api/calendar/connections/", token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

async fn titles(app: &TestApp, token: &str) -> Vec<String> {
    app.upcoming(token, "limit=50&days=30")
        .await
        .iter()
        .map(|e| e["title"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until `title` shows on the user's Dashboard, by the scheduled
/// syncs alone (nobody presses Sync now); panics after `within`.
async fn shows_by_schedule(app: &TestApp, token: &str, title: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if titles(app, token).await.iter().any(|t| t == title) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "{title:?} did not arrive within {within:?}; log:\n{}",
        app.log_text()
    );
}

async fn hostile_retry_after_values_never_stop_the_others(kind: BackendKind) {
    let Some(app) = app_syncing_every(kind, "2s").await else {
        return;
    };
    let (base, feeds) = feed_server().await;
    let (alice, mallory) = (app.user_with_token("alice"), app.user_with_token("mallory"));
    {
        let mut feeds = feeds.lock().unwrap();
        feeds
            .bodies
            .insert("team.ics".into(), feed_with("team-1", "Team sync 1"));
        for n in 0..HOSTILE.len() {
            feeds
                .bodies
                .insert(format!("hostile-{n}.ics"), feed_with("h", "Hostile"));
        }
    }
    subscribe(&app, &alice, &format!("{base}/team.ics")).await;
    for n in 0..HOSTILE.len() {
        subscribe(&app, &mallory, &format!("{base}/hostile-{n}.ics")).await;
    }
    app.wait_for_sync(&alice).await;
    app.wait_for_sync(&mallory).await;

    {
        let mut feeds = feeds.lock().unwrap();
        for (n, (retry_after, _)) in HOSTILE.iter().enumerate() {
            feeds
                .hostile
                .insert(format!("hostile-{n}.ics"), retry_after);
        }
    }
    let asked = Timestamp::now();
    let response = app
        .post("/api/calendar/sync/", &mallory)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let mallorys = app.wait_for_sync(&mallory).await;

    // Alice's feed keeps syncing on its 2-second schedule, twice over.
    for round in 2..4 {
        let title = format!("Team sync {round}");
        feeds
            .lock()
            .unwrap()
            .bodies
            .insert("team.ics".into(), feed_with("team-1", &title));
        shows_by_schedule(&app, &alice, &title, Duration::from_secs(30)).await;
    }

    let day = SignedDuration::from_hours(24) + SignedDuration::from_mins(1);
    let mallorys = mallorys.as_array().unwrap();
    assert_eq!(mallorys.len(), HOSTILE.len());
    for connection in mallorys {
        assert_eq!(connection["status"], "error", "{connection:#}");
        assert!(
            connection["last_error"]
                .as_str()
                .is_some_and(|e| !e.is_empty()),
            "{connection:#}"
        );
        let waiting = &connection["waiting"];
        let reason = waiting["reason"].as_str().unwrap();
        assert!(
            HOSTILE.iter().any(|(_, expected)| *expected == reason),
            "{connection:#}"
        );
        let until: Timestamp = waiting["until"].as_str().unwrap().parse().unwrap();
        assert!(
            until > asked && until <= asked + day,
            "a provider's number never parks a connection for more than a day: {connection:#}"
        );
        assert!(
            titles(&app, &mallory).await.contains(&"Hostile".to_owned()),
            "the last good copy stays"
        );
    }
    let reasons: Vec<&str> = mallorys
        .iter()
        .map(|c| c["waiting"]["reason"].as_str().unwrap())
        .collect();
    let expected_limited = HOSTILE.iter().filter(|(_, r)| *r == "rate_limited").count();
    assert_eq!(
        reasons.iter().filter(|r| **r == "rate_limited").count(),
        expected_limited,
        "{reasons:?}"
    );

    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "the worker lives on");
    assert!(!app.log_text().contains("panicked"), "{}", app.log_text());
}

/// A TCP proxy that waits `delay_ms` before passing on each chunk a client
/// sends: a server that answers slowly, whatever the protocol.
async fn slow_proxy(upstream: u16, delay_ms: Arc<AtomicU64>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let delay_ms = delay_ms.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    return;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let upward = async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match client_read.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let wait = delay_ms.load(Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(wait)).await;
                        if server_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                };
                let downward = async move {
                    let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                };
                tokio::join!(upward, downward);
            });
        }
    });
    port
}

async fn a_slow_caldav_server_does_not_hold_up_other_users(kind: BackendKind) {
    const PASSWORD: &str = "app-specific-pw-1234";
    let Some(rad) = Radicale::start(&[("carol", PASSWORD)]) else {
        return;
    };
    let Some(app) = app_syncing_every(kind, "2s").await else {
        return;
    };
    let start = Timestamp::now().round(jiff::Unit::Hour).unwrap() + SignedDuration::from_hours(48);
    let utc = |t: Timestamp| t.strftime("%Y%m%dT%H%M%SZ").to_string();
    rad.mkcalendar("carol", "work", "Work", None, &["VEVENT"])
        .await;
    rad.put(
        "carol",
        "work",
        "review.ics",
        &caldav_calendar(&[event_block(
            "review",
            "Review",
            &utc(start),
            &utc(start + SignedDuration::from_hours(1)),
            &[],
        )]),
    )
    .await;
    let delay_ms = Arc::new(AtomicU64::new(0));
    let proxy = slow_proxy(rad.port(), delay_ms.clone()).await;

    let (carol, dave) = (app.user_with_token("carol"), app.user_with_token("dave"));
    let (status, body) = json(
        app.post("/api/calendar/caldav/connect/", &carol)
            .json(&json!({
                "server_url": format!("http://127.0.0.1:{proxy}/"),
                "username": "carol",
                "password": PASSWORD,
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (base, feeds) = feed_server().await;
    feeds
        .lock()
        .unwrap()
        .bodies
        .insert("dave.ics".into(), feed_with("d-1", "Dave 1"));
    subscribe(&app, &dave, &format!("{base}/dave.ics")).await;
    app.wait_for_sync(&carol).await;
    app.wait_for_sync(&dave).await;

    // From now on the CalDAV server takes 10 s per request; a round of
    // Carol's makes at least two.
    delay_ms.store(10_000, Ordering::Relaxed);
    let response = app
        .post("/api/calendar/sync/", &carol)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let slow_round = Instant::now();
    for round in 2..4 {
        let title = format!("Dave {round}");
        feeds
            .lock()
            .unwrap()
            .bodies
            .insert("dave.ics".into(), feed_with("d-1", &title));
        shows_by_schedule(&app, &dave, &title, Duration::from_secs(8)).await;
    }
    let carols = connections(&app, &carol).await;
    assert_eq!(
        carols[0]["status"],
        "syncing",
        "Dave's feed synced twice while Carol's slow round was still running \
         ({:?} into it): {carols:#?}",
        slow_round.elapsed()
    );

    delay_ms.store(0, Ordering::Relaxed);
    let carols = app.wait_for_sync(&carol).await;
    assert_eq!(carols[0]["status"], "ok", "{carols:#}");
    assert!(titles(&app, &carol).await.contains(&"Review".to_owned()));
}
