//! A round that would remove most of a calendar removes nothing until the
//! user decides: the real binary, a real database and the Google emulator
//! over real HTTP. Events the user kept are not asked about again when the
//! provider forces a full resync (410).
#![allow(clippy::unwrap_used)]

mod support;

use calsync_emulator::samples::{ALICE, ALICE_WORK};
use calsync_store::BackendKind;
use serde_json::{json, Value};
use support::google::GoogleApp;
use support::json;

on_both_backends!(a_mass_deletion_is_held_until_the_user_decides);

/// Events the test adds to the Work calendar; it later deletes 90 % of them.
const ADDED: usize = 40;
const DELETED: usize = 36;

fn title(prefix: &str, n: usize) -> String {
    format!("{prefix} {n}")
}

fn event(prefix: &str, n: usize) -> Value {
    let start = jiff::Timestamp::now().round(jiff::Unit::Hour).unwrap()
        + jiff::SignedDuration::from_hours(24 * (1 + (n as i64 % 20)) + (n as i64 % 7));
    let end = start + jiff::SignedDuration::from_mins(30);
    json!({
        "id": format!("{prefix}{n}"),
        "summary": title(prefix, n),
        "start": {"dateTime": start.to_string(), "timeZone": "Europe/Berlin"},
        "end": {"dateTime": end.to_string(), "timeZone": "Europe/Berlin"},
    })
}

/// The Work calendar's JSON and its connection's status.
async fn work(google: &GoogleApp, token: &str) -> (Value, String) {
    let connections = google.wait_for_sync(token).await;
    let connection = &connections[0];
    let calendar = connection["calendars"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Work")
        .unwrap()
        .clone();
    (calendar, connection["status"].as_str().unwrap().to_owned())
}

/// How many of the events the test added under `prefix` the Dashboard shows.
async fn shown(google: &GoogleApp, token: &str, prefix: &str) -> usize {
    let titles = google.upcoming_titles(token).await;
    (0..ADDED)
        .filter(|n| titles.contains(&title(prefix, *n)))
        .count()
}

async fn decide(google: &GoogleApp, token: &str, calendar: &Value, decision: &str) {
    let path = format!("/api/calendar/calendars/{}/removals/", calendar["id"]);
    let (status, body) = json(
        google
            .app
            .post(&path, token)
            .json(&json!({ "decision": decision }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["removal_decision"], decision, "{body}");
}

async fn delete_calls(google: &GoogleApp, prefix: &str, range: std::ops::Range<usize>) {
    for n in range {
        google
            .emulator
            .delete_event(ALICE, ALICE_WORK, &format!("{prefix}{n}"))
            .unwrap();
    }
}

async fn a_mass_deletion_is_held_until_the_user_decides(kind: BackendKind) {
    let google = GoogleApp::start(kind).await.expect("the test server");
    let token = google.app.user_with_token("alice");
    let (cookie, _) = google.app.login("alice").await;
    google.connect(&cookie, ALICE).await;
    for n in 0..ADDED {
        google
            .emulator
            .insert_event(ALICE, ALICE_WORK, event("call", n))
            .unwrap();
    }
    google.sync(&token).await;
    assert_eq!(shown(&google, &token, "call").await, ADDED);

    // 90 % of them vanish at the provider: an incremental round brings
    // the deletions, and holds them.
    delete_calls(&google, "call", 0..DELETED).await;
    google.sync(&token).await;
    let (calendar, status) = work(&google, &token).await;
    assert_eq!(status, "held", "{calendar:#}");
    assert_eq!(calendar["held_removals"], DELETED, "{calendar:#}");
    assert_eq!(
        shown(&google, &token, "call").await,
        ADDED,
        "nothing is removed before the user decides"
    );
    google.sync(&token).await;
    assert_eq!(
        work(&google, &token).await.1,
        "held",
        "another round changes nothing"
    );

    // "Remove them": gone at the next round, the rest untouched.
    decide(&google, &token, &calendar, "apply").await;
    google.sync(&token).await;
    let (calendar, status) = work(&google, &token).await;
    assert_eq!(
        (status.as_str(), &calendar["held_removals"]),
        ("ok", &Value::Null)
    );
    assert_eq!(shown(&google, &token, "call").await, ADDED - DELETED);

    // Again with other events, and "Keep them": they stay, and later
    // changes sync again.
    for n in 0..ADDED {
        google
            .emulator
            .insert_event(ALICE, ALICE_WORK, event("meeting", n))
            .unwrap();
    }
    google.sync(&token).await;
    delete_calls(&google, "meeting", 0..ADDED).await;
    google.sync(&token).await;
    let (calendar, status) = work(&google, &token).await;
    assert_eq!(
        (status.as_str(), &calendar["held_removals"]),
        ("held", &json!(ADDED))
    );
    decide(&google, &token, &calendar, "reject").await;
    google.sync(&token).await;
    let (calendar, status) = work(&google, &token).await;
    assert_eq!(
        (status.as_str(), &calendar["held_removals"]),
        ("ok", &Value::Null)
    );
    assert_eq!(shown(&google, &token, "meeting").await, ADDED);
    google
        .emulator
        .insert_event(ALICE, ALICE_WORK, event("later", 0))
        .unwrap();
    google.sync(&token).await;
    assert_eq!(shown(&google, &token, "later").await, 1);
    assert_eq!(work(&google, &token).await.1, "ok");

    // The provider forces a full resync (410): the kept events are not
    // listed, and the user is not asked about them a second time.
    google
        .emulator
        .invalidate_sync_tokens(ALICE, ALICE_WORK)
        .unwrap();
    google.sync(&token).await;
    let (calendar, status) = work(&google, &token).await;
    assert_eq!(status, "ok", "{calendar:#}");
    assert_eq!(shown(&google, &token, "meeting").await, ADDED);
    assert_eq!(shown(&google, &token, "call").await, ADDED - DELETED);
    assert_eq!(shown(&google, &token, "later").await, 1);
}
