//! Connecting a CalDAV account end to end: the real binary, a real database
//! and a real CalDAV server (Radicale, from PyPI) over real HTTP.
#![allow(clippy::unwrap_used)]

#[path = "../../providers/tests/support/radicale.rs"]
mod radicale;
mod support;

use calsync_store::BackendKind;
use jiff::{SignedDuration, Timestamp};
use radicale::{calendar, event_block, Radicale};
use serde_json::{json, Value};
use support::{error_code, json, TestApp};

on_both_backends!(
    a_caldav_account_shows_its_calendars_and_follows_changes,
    a_wrong_password_is_refused_at_connect_time,
    a_revoked_password_asks_for_reconnection,
);

const PASSWORD: &str = "app-specific-pw-1234";

/// `days` from now at a whole hour, as an iCalendar UTC time.
fn at(days: i64, hour_offset: i64) -> String {
    let t = Timestamp::now().round(jiff::Unit::Hour).unwrap()
        + SignedDuration::from_hours(24 * days + hour_offset);
    t.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// One event `days` from now, two hours after the series' hour.
fn single(uid: &str, title: &str, days: i64) -> String {
    calendar(&[event_block(uid, title, &at(days, 2), &at(days, 3), &[])])
}

async fn app(kind: BackendKind) -> Option<TestApp> {
    TestApp::start_with(
        kind,
        &[
            ("CALSYNC_ALLOW_PRIVATE_ADDRESSES", "true"),
            ("CALSYNC_SYNC_INTERVAL", "1h"),
        ],
    )
    .await
}

async fn connect(app: &TestApp, token: &str, server: &str, password: &str) -> (u16, Value) {
    json(
        app.post("/api/calendar/caldav/connect/", token)
            .json(&json!({"server_url": server, "username": "alice", "password": password}))
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// (title, calendar colour, recurring) of the next 30 days, in order.
async fn upcoming(app: &TestApp, token: &str) -> Vec<(String, String, bool)> {
    app.upcoming(token, "limit=200&days=30")
        .await
        .iter()
        .map(|e| {
            (
                e["title"].as_str().unwrap().to_owned(),
                e["color"].as_str().unwrap().to_owned(),
                e["recurring"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn titles(events: &[(String, String, bool)]) -> Vec<&str> {
    events.iter().map(|e| e.0.as_str()).collect()
}

async fn a_caldav_account_shows_its_calendars_and_follows_changes(kind: BackendKind) {
    let Some(rad) = Radicale::start(&[("alice", PASSWORD)]) else {
        return;
    };
    let Some(app) = app(kind).await else {
        return;
    };
    let token = app.user_with_token("alice");
    rad.mkcalendar("alice", "work", "Work", Some("#FF2968FF"), &["VEVENT"])
        .await;
    rad.put(
        "alice",
        "work",
        "review.ics",
        &single("review", "Review", 2),
    )
    .await;
    let series_start = at(1, 0);
    let master = event_block(
        "standup",
        "Standup",
        &series_start,
        &at(1, 1),
        &["RRULE:FREQ=DAILY;COUNT=3"],
    );
    let moved_id = format!("RECURRENCE-ID:{}", at(2, 0));
    let moved = event_block(
        "standup",
        "Standup (moved)",
        &at(2, 3),
        &at(2, 4),
        &[&moved_id],
    );
    rad.put(
        "alice",
        "work",
        "standup.ics",
        &calendar(&[master.clone(), moved]),
    )
    .await;

    let (status, created) = connect(&app, &token, &rad.base_url(), PASSWORD).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        (
            created["provider"].as_str(),
            created["account_email"].as_str()
        ),
        (Some("caldav"), Some("alice"))
    );
    let connections = app.wait_for_sync(&token).await;
    assert_eq!(connections[0]["status"], "ok", "{connections}");
    // The calendar listing, the sync-collection report and one multiget.
    let requests = connections[0]["recent_runs"][0]["requests"]
        .as_u64()
        .unwrap();
    assert!(
        requests >= 3,
        "the sync history counts HTTP requests: {connections}"
    );
    let calendar_json = &connections[0]["calendars"][0];
    assert_eq!(
        (
            calendar_json["name"].as_str(),
            calendar_json["color"].as_str()
        ),
        (Some("Work"), Some("#ff2968"))
    );
    let events = upcoming(&app, &token).await;
    assert_eq!(
        titles(&events),
        ["Standup", "Review", "Standup (moved)", "Standup"]
    );
    assert!(events.iter().all(|e| e.1 == "#ff2968"), "{events:?}");
    assert!(
        events[0].2 && !events[1].2,
        "series occurrences are recurring"
    );

    // Add one, change one, delete one, and drop the override: the next sync
    // brings exactly that.
    rad.put("alice", "work", "lunch.ics", &single("lunch", "Lunch", 3))
        .await;
    rad.put(
        "alice",
        "work",
        "review.ics",
        &single("review", "Design review", 2),
    )
    .await;
    rad.put("alice", "work", "standup.ics", &calendar(&[master]))
        .await;
    let connections = app.sync(&token).await;
    assert_eq!(connections[0]["status"], "ok", "{connections}");
    assert_eq!(
        titles(&upcoming(&app, &token).await),
        ["Standup", "Standup", "Design review", "Standup", "Lunch"]
    );
    rad.delete("alice", "work", "lunch.ics").await;
    app.sync(&token).await;
    assert_eq!(
        titles(&upcoming(&app, &token).await),
        ["Standup", "Standup", "Design review", "Standup"]
    );

    let log = app.log_text();
    assert!(!log.contains(PASSWORD), "the password reached the log");
    let (_, listed) = json(
        app.get("/api/calendar/connections/", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(!listed.to_string().contains(PASSWORD));
    if let Some(dir) = &app.db.dir {
        for file in ["calsync.db", "calsync.db-wal"] {
            let bytes = std::fs::read(dir.join(file)).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(PASSWORD),
                "the password is stored in the clear in {file}"
            );
        }
    }
}

async fn a_wrong_password_is_refused_at_connect_time(kind: BackendKind) {
    let Some(rad) = Radicale::start(&[("alice", PASSWORD)]) else {
        return;
    };
    let Some(app) = app(kind).await else {
        return;
    };
    let token = app.user_with_token("alice");
    let (status, body) = connect(&app, &token, &rad.base_url(), "not-the-password").await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (422, "wrong_credentials"),
        "{body}"
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("app-specific"));
    let (status, body) = connect(&app, &token, "ftp://example.org", PASSWORD).await;
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
    assert_eq!(connections, json!([]), "nothing is stored");
}

async fn a_revoked_password_asks_for_reconnection(kind: BackendKind) {
    let Some(mut rad) = Radicale::start(&[("alice", PASSWORD)]) else {
        return;
    };
    let Some(app) = app(kind).await else {
        return;
    };
    let token = app.user_with_token("alice");
    rad.mkcalendar("alice", "work", "Work", None, &["VEVENT"])
        .await;
    rad.put(
        "alice",
        "work",
        "review.ics",
        &single("review", "Review", 2),
    )
    .await;
    let (status, created) = connect(&app, &token, &rad.base_url(), PASSWORD).await;
    assert_eq!(status, 201, "{created}");
    app.wait_for_sync(&token).await;

    rad.set_password("alice", "a-new-app-specific-password");
    let connections = app.sync(&token).await;
    assert_eq!(connections[0]["status"], "needs_reauth", "{connections}");
    assert!(
        connections[0]["last_error"]
            .as_str()
            .is_some_and(|m| m.contains("password")),
        "{connections}"
    );
    assert_eq!(
        titles(&upcoming(&app, &token).await),
        ["Review"],
        "the last good copy stays"
    );

    // Connecting again with the new password restores the same connection.
    let (status, again) =
        connect(&app, &token, &rad.base_url(), "a-new-app-specific-password").await;
    assert_eq!((status, &again["id"]), (201, &created["id"]), "{again}");
    let connections = app.wait_for_sync(&token).await;
    assert_eq!(connections[0]["status"], "ok", "{connections}");
}
