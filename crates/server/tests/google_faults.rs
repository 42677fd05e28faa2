//! Syncing Google through trouble: big calendars over uneven pages, outages
//! with deletions, rate limits, a crash between pages, revoked grants; and no
//! token ever at rest in the clear or in a log.
#![allow(clippy::unwrap_used)]

mod support;

use calsync_emulator::samples::{ALICE, ALICE_WORK};
use calsync_emulator::Fault;
use calsync_store::BackendKind;
use serde_json::{json, Value};
use support::google::GoogleApp;
use support::{json, TestApp};

on_both_backends!(
    a_big_calendar_arrives_whole_and_a_crash_between_pages_loses_nothing,
    deletions_during_a_sync_token_outage_are_swept,
    rate_limits_are_waited_out,
    a_revoked_grant_stops_all_calls,
    tokens_are_never_stored_or_logged_in_the_clear,
);

const BULK: usize = 3000;

fn bulk_event(n: usize) -> Value {
    let start =
        jiff::Timestamp::now() + jiff::SignedDuration::from_hours(2 + (n as i64 % 280) * 24);
    json!({
        "id": format!("bulk{n:05}"),
        "summary": format!("Bulk #{n}"),
        "start": {"dateTime": start.to_string(), "timeZone": "UTC"},
        "end": {"dateTime": (start + jiff::SignedDuration::from_mins(30)).to_string(), "timeZone": "UTC"},
    })
}

async fn bulk_titles(app: &TestApp, token: &str) -> Vec<String> {
    let start = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24);
    let end = start + jiff::SignedDuration::from_hours(24 * 300);
    let path = format!("/api/calendar/events/?start={start}&end={end}");
    let (status, events) = json(app.get(&path, token).send().await.unwrap()).await;
    assert_eq!(status, 200, "{events}");
    let mut titles: Vec<String> = events
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            e["title"]
                .as_str()
                .filter(|t| t.starts_with("Bulk #"))
                .map(str::to_owned)
        })
        .collect();
    titles.sort();
    titles
}

async fn a_big_calendar_arrives_whole_and_a_crash_between_pages_loses_nothing(kind: BackendKind) {
    let Some(mut google) = GoogleApp::start(kind).await else {
        return;
    };
    for n in 0..BULK {
        google
            .emulator
            .insert_event(ALICE, ALICE_WORK, bulk_event(n))
            .unwrap();
    }
    let token = google.app.user_with_token("alice");
    let (cookie, _) = google.app.login("alice").await;
    google.connect(&cookie, ALICE).await;

    // Kill the server as soon as the first page of the big calendar was served.
    // The emulator logs the raw path; `@` may or may not be percent-encoded.
    let work_events =
        |path: &str| path.ends_with("/events") && path.replace("%40", "@").contains(ALICE_WORK);
    for _ in 0..400 {
        if google
            .emulator
            .requests()
            .iter()
            .any(|r| work_events(&r.path) && r.status == 200)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    google.app.kill();
    google.restart();
    google.sync(&token).await;

    let titles = bulk_titles(&google.app, &token).await;
    let mut expected: Vec<String> = (0..BULK).map(|n| format!("Bulk #{n}")).collect();
    expected.sort();
    assert_eq!(titles.len(), BULK, "every event once, no duplicates");
    assert_eq!(titles, expected);
    let pages = google
        .emulator
        .requests()
        .iter()
        .filter(|r| work_events(&r.path) && r.status == 200)
        .count();
    assert!(pages >= 2, "the calendar came in several pages ({pages})");
}

async fn deletions_during_a_sync_token_outage_are_swept(kind: BackendKind) {
    let Some(google) = GoogleApp::start(kind).await else {
        return;
    };
    google
        .emulator
        .insert_event(ALICE, ALICE_WORK, bulk_event(1))
        .unwrap();
    google
        .emulator
        .insert_event(ALICE, ALICE_WORK, bulk_event(2))
        .unwrap();
    let token = google.app.user_with_token("alice");
    let (cookie, _) = google.app.login("alice").await;
    google.connect(&cookie, ALICE).await;
    google.wait_for_sync(&token).await;
    assert_eq!(
        bulk_titles(&google.app, &token).await,
        ["Bulk #1", "Bulk #2"]
    );

    google
        .emulator
        .delete_event(ALICE, ALICE_WORK, "bulk00001")
        .unwrap();
    google
        .emulator
        .invalidate_sync_tokens(ALICE, ALICE_WORK)
        .unwrap();
    let connections = google.sync(&token).await;
    assert_eq!(connections[0]["status"], "ok");
    assert_eq!(
        bulk_titles(&google.app, &token).await,
        ["Bulk #2"],
        "the full resync swept the deleted event"
    );
}

async fn rate_limits_are_waited_out(kind: BackendKind) {
    let Some(google) = GoogleApp::start(kind).await else {
        return;
    };
    let token = google.app.user_with_token("alice");
    let (cookie, _) = google.app.login("alice").await;
    google.connect(&cookie, ALICE).await;
    google.wait_for_sync(&token).await;
    for (status, reason) in [(429, None), (403, Some("rateLimitExceeded")), (503, None)] {
        let fault = Fault {
            path_prefix: "/calendar/v3/".into(),
            status: Some(status),
            reason: reason.map(str::to_owned),
            retry_after: Some(1),
            count: 1,
            ..Fault::default()
        };
        google.emulator.inject_fault(fault).unwrap();
    }
    google
        .emulator
        .insert_event(ALICE, ALICE_WORK, bulk_event(7))
        .unwrap();
    let before = google.emulator.requests().len();
    let connections = google.sync(&token).await;
    assert_eq!(connections[0]["status"], "ok", "{connections}");
    let statuses: Vec<u16> = google.emulator.requests()[before..]
        .iter()
        .map(|r| r.status)
        .collect();
    assert!(statuses.starts_with(&[429, 403, 503]), "{statuses:?}");
    assert_eq!(bulk_titles(&google.app, &token).await, ["Bulk #7"]);
    let runs = connections[0]["recent_runs"].as_array().unwrap();
    assert_eq!(runs[0]["outcome"], "ok");
    assert!(runs[0]["requests"].as_u64().unwrap() >= 2);
}

async fn a_revoked_grant_stops_all_calls(kind: BackendKind) {
    let Some(google) = GoogleApp::start(kind).await else {
        return;
    };
    let token = google.app.user_with_token("alice");
    let (cookie, _) = google.app.login("alice").await;
    google.connect(&cookie, ALICE).await;
    google.wait_for_sync(&token).await;
    google.emulator.revoke_grants(Some(ALICE)).unwrap();
    google.emulator.expire_access_tokens(Some(ALICE)).unwrap();
    let connections = google.sync(&token).await;
    assert_eq!(connections[0]["status"], "needs_reauth");

    let before = google.emulator.requests().len();
    let (status, body) = json(
        google
            .app
            .post("/api/calendar/sync/", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body), (202, json!({"connection_ids": []})));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        google.emulator.requests().len(),
        before,
        "no call is made for a connection that needs reconnecting"
    );
}

async fn tokens_are_never_stored_or_logged_in_the_clear(kind: BackendKind) {
    let Some(google) = GoogleApp::start(kind).await else {
        return;
    };
    let token = google.app.user_with_token("alice");
    let (cookie, _) = google.app.login("alice").await;
    google.connect(&cookie, ALICE).await;
    google.wait_for_sync(&token).await;
    google.emulator.expire_access_tokens(Some(ALICE)).unwrap();
    google.sync(&token).await;

    // The emulator's access tokens start with "ya29." and its refresh tokens
    // with "1//0", as Google's do; neither can occur in base64url ciphertext.
    let log = google.app.log_text();
    for marker in ["ya29.", "1//0"] {
        assert!(!log.contains(marker), "a token reached the log:\n{log}");
    }
    if let Some(dir) = &google.app.db.dir {
        for file in ["calsync.db", "calsync.db-wal"] {
            let bytes = std::fs::read(dir.join(file)).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains("ya29.") && !text.contains("1//0"),
                "a token is stored in the clear in {file}"
            );
        }
    } else {
        let store = google.app.store().await;
        let dump = calsync_store::testing::fetch_text(
            &store,
            "SELECT string_agg(coalesce(access_token, '') || coalesce(refresh_token, ''), ',') FROM connections",
        )
        .await
        .unwrap();
        assert!(!dump.contains("ya29.") && !dump.contains("1//0") && dump.contains("v1."));
        let states = calsync_store::testing::fetch_text(
            &store,
            "SELECT CAST(COUNT(*) AS TEXT) FROM oauth_states",
        )
        .await;
        assert_eq!(states.as_deref(), Some("0"), "a used state is gone");
    }
}
