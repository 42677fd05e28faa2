//! Connecting Google Calendar end to end: the real binary, a real database and
//! the Google emulator over real HTTP, as a user meets them.
#![allow(clippy::unwrap_used)]

mod support;

use calsync_emulator::samples::{ALICE, ALICE_WORK};
use calsync_store::BackendKind;
use serde_json::json;
use support::google::GoogleApp;
use support::{error_code, json};

on_both_backends!(
    connecting_shows_the_accounts_calendars_and_upcoming_events,
    changes_and_deletions_arrive_incrementally,
    expired_tokens_and_sync_tokens_recover_without_losing_data,
    a_revoked_grant_asks_for_reconnection_and_reconnecting_restores_it,
    denied_forged_and_replayed_callbacks_store_nothing,
    calendars_can_be_turned_off_and_recoloured,
    disconnecting_revokes_and_deletes_everything,
    a_weekly_series_keeps_its_wall_clock_across_dst_with_moved_and_cancelled_instances,
);

async fn connected(kind: BackendKind) -> Option<(GoogleApp, String, String)> {
    let google = GoogleApp::start(kind).await?;
    let token = google.app.user_with_token("alice");
    let (cookie, _) = google.app.login("alice").await;
    let landing = google.connect(&cookie, ALICE).await;
    assert_eq!(landing, "/settings?connected=google");
    google.wait_for_sync(&token).await;
    Some((google, token, cookie))
}

fn work_event(id: &str, title: &str, days_ahead: i64) -> serde_json::Value {
    let start = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * days_ahead);
    let end = start + jiff::SignedDuration::from_hours(1);
    json!({
        "id": id,
        "summary": title,
        "start": {"dateTime": start.to_string(), "timeZone": "Europe/Berlin"},
        "end": {"dateTime": end.to_string(), "timeZone": "Europe/Berlin"},
    })
}

async fn connecting_shows_the_accounts_calendars_and_upcoming_events(kind: BackendKind) {
    let Some((google, token, cookie)) = connected(kind).await else {
        return;
    };
    let app = &google.app;
    let (_, connections) = json(
        app.get("/api/calendar/connections/", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let connection = &connections[0];
    assert_eq!(
        (
            connection["provider"].as_str(),
            connection["status"].as_str()
        ),
        (Some("google"), Some("ok"))
    );
    assert_eq!(connection["account_email"], ALICE);
    let names: Vec<&str> = connection["calendars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Work") && names.contains(&"Personal"),
        "{names:?}"
    );

    let (_, events) = json(
        app.get("/api/calendar/events/upcoming/?limit=200", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let events = events.as_array().unwrap();
    assert!(
        events.len() >= 5,
        "the sample account has upcoming events: {events:?}"
    );
    let starts: Vec<&str> = events
        .iter()
        .map(|e| e["start"].as_str().unwrap())
        .collect();
    let calendars = connection["calendars"].as_array().unwrap();
    for event in events {
        let calendar = calendars
            .iter()
            .find(|c| c["id"] == event["calendar_id"])
            .unwrap();
        assert_eq!(
            event["color"], calendar["color"],
            "events take their calendar's colour"
        );
        assert_eq!(event["provider"], "google");
        let (start, all_day) = (
            event["start"].as_str().unwrap(),
            event["all_day"].as_bool().unwrap(),
        );
        assert_eq!(
            all_day,
            start.len() == 10,
            "all-day events are dates: {event}"
        );
    }
    assert!(
        events.iter().any(|e| e["recurring"] == true),
        "the sample has recurring series"
    );
    // In UTC (the user's zone here) dates and instants sort as text.
    assert!(
        starts.windows(2).all(|w| w[0] <= w[1]),
        "merged in start order: {starts:?}"
    );

    let bob = app.user_with_token("bob");
    assert!(
        google.upcoming_titles(&bob).await.is_empty(),
        "another user sees none of it"
    );
    let page = app
        .http
        .get(app.url("/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(events[0]["title"].as_str().unwrap()),
        "the Dashboard lists them"
    );
}

async fn changes_and_deletions_arrive_incrementally(kind: BackendKind) {
    let Some((google, token, _)) = connected(kind).await else {
        return;
    };
    google
        .emulator
        .insert_event(
            ALICE,
            ALICE_WORK,
            work_event("planning1", "Quarterly planning", 3),
        )
        .unwrap();
    let before = google.emulator.requests().len();
    google.sync(&token).await;
    assert!(google
        .upcoming_titles(&token)
        .await
        .contains(&"Quarterly planning".to_owned()));
    let listed: Vec<_> = google.emulator.requests()[before..]
        .iter()
        .filter(|r| r.path.ends_with("/events"))
        .map(|r| r.query.clone())
        .collect();
    assert!(
        !listed.is_empty() && listed.iter().all(|q| q.contains("syncToken")),
        "only changes are asked for: {listed:?}"
    );

    google
        .emulator
        .delete_event(ALICE, ALICE_WORK, "planning1")
        .unwrap();
    google.sync(&token).await;
    assert!(!google
        .upcoming_titles(&token)
        .await
        .contains(&"Quarterly planning".to_owned()));
}

async fn expired_tokens_and_sync_tokens_recover_without_losing_data(kind: BackendKind) {
    let Some((google, token, _)) = connected(kind).await else {
        return;
    };
    let titles = google.upcoming_titles(&token).await;
    google
        .emulator
        .invalidate_sync_tokens(ALICE, ALICE_WORK)
        .unwrap();
    google.emulator.expire_access_tokens(Some(ALICE)).unwrap();
    google
        .emulator
        .insert_event(
            ALICE,
            ALICE_WORK,
            work_event("late1", "Added before the resync", 2),
        )
        .unwrap();
    let before = google.emulator.requests().len();
    let connections = google.sync(&token).await;
    assert_eq!(connections[0]["status"], "ok", "{connections}");
    let log = &google.emulator.requests()[before..];
    assert!(
        log.iter().any(|r| r.status == 410),
        "the stale sync token was refused"
    );
    assert!(
        log.iter().any(|r| r.path == "/token" && r.status == 200),
        "the access token was refreshed"
    );
    let mut after = google.upcoming_titles(&token).await;
    after.retain(|t| t != "Added before the resync");
    assert_eq!(
        after, titles,
        "the full resync leaves the same events, no duplicates"
    );
    assert!(google
        .upcoming_titles(&token)
        .await
        .contains(&"Added before the resync".to_owned()));
}

async fn a_revoked_grant_asks_for_reconnection_and_reconnecting_restores_it(kind: BackendKind) {
    let Some((google, token, cookie)) = connected(kind).await else {
        return;
    };
    let titles = google.upcoming_titles(&token).await;
    google.emulator.revoke_grants(Some(ALICE)).unwrap();
    google.emulator.expire_access_tokens(Some(ALICE)).unwrap();
    let connections = google.sync(&token).await;
    let connection = &connections[0];
    assert_eq!(
        (
            connection["status"].as_str(),
            connection["needs_reauth"].as_bool()
        ),
        (Some("needs_reauth"), Some(true))
    );
    assert!(
        connection["last_error"]
            .as_str()
            .unwrap()
            .contains("reconnected"),
        "{connection}"
    );
    assert_eq!(
        google.upcoming_titles(&token).await,
        titles,
        "the last good data stays"
    );
    let id = connection["id"].as_i64().unwrap();
    let (status, body) = json(
        google
            .app
            .post("/api/calendar/sync/", &token)
            .json(&json!({"connection_id": id}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error_code(&body).as_str()), (409, "conflict"));
    let settings = google
        .app
        .http
        .get(google.app.url("/settings"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(settings.text().await.unwrap().contains("Reconnect"));

    assert_eq!(
        google.connect(&cookie, ALICE).await,
        "/settings?connected=google"
    );
    let connections = google.wait_for_sync(&token).await;
    assert_eq!(
        connections.as_array().unwrap().len(),
        1,
        "reconnecting never duplicates"
    );
    assert_eq!(
        (
            connections[0]["id"].as_i64(),
            connections[0]["status"].as_str()
        ),
        (Some(id), Some("ok"))
    );
}

async fn denied_forged_and_replayed_callbacks_store_nothing(kind: BackendKind) {
    let Some(google) = GoogleApp::start(kind).await else {
        return;
    };
    let app = &google.app;
    let token = app.user_with_token("alice");
    let (cookie, _) = app.login("alice").await;

    google
        .emulator
        .update_settings(|s| s.deny_next_consent = true);
    let url = google.authorization_url(&cookie).await;
    let denied = app.http.get(url).send().await.unwrap();
    let back = denied.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.contains("error=access_denied"), "{back}");
    assert_eq!(
        google.follow_callback(&cookie, &back).await,
        "/settings?error=denied"
    );

    let forged = "http://localhost:8000/api/calendar/google/callback/?code=4/abc&state=forged";
    assert_eq!(
        google.follow_callback(&cookie, forged).await,
        "/settings?error=bad_state"
    );

    let url = google.authorization_url(&cookie).await;
    let approved = app
        .http
        .get(format!("{url}&login_hint={ALICE}"))
        .send()
        .await
        .unwrap();
    let back = approved.headers()["location"].to_str().unwrap().to_owned();
    let (bob_cookie, _) = {
        app.add_user("bob");
        app.login("bob").await
    };
    assert_eq!(
        google.follow_callback(&bob_cookie, &back).await,
        "/settings?error=bad_state",
        "a state is bound to its user"
    );
    assert_eq!(
        google.follow_callback(&cookie, &back).await,
        "/settings?error=bad_state",
        "and spent once tried"
    );
    let (_, connections) = json(
        app.get("/api/calendar/connections/", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(connections, json!([]), "nothing was stored");

    let settings = app
        .http
        .get(app.url("/settings?error=denied"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(settings
        .text()
        .await
        .unwrap()
        .contains("Access was not granted"));
}

async fn calendars_can_be_turned_off_and_recoloured(kind: BackendKind) {
    let Some((google, token, _)) = connected(kind).await else {
        return;
    };
    google
        .emulator
        .insert_event(ALICE, ALICE_WORK, work_event("w1", "Work only", 1))
        .unwrap();
    let connections = google.sync(&token).await;
    let work = connections[0]["calendars"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Work")
        .unwrap()
        .clone();
    let path = format!("/api/calendar/calendars/{}/", work["id"]);
    let patch = |body| {
        google
            .app
            .http
            .patch(google.app.url(&path))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let (status, _) = json(patch(json!({"color": "#123abc"})).await.unwrap()).await;
    assert_eq!(status, 200);
    let (_, events) = json(
        google
            .app
            .get("/api/calendar/events/upcoming/?limit=500", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let work_event = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["title"] == "Work only")
        .unwrap();
    assert_eq!(work_event["color"], "#123abc");

    patch(json!({"enabled": false})).await.unwrap();
    assert!(!google
        .upcoming_titles(&token)
        .await
        .contains(&"Work only".to_owned()));
    google.sync(&token).await;
    let connections = google.sync(&token).await;
    let work = connections[0]["calendars"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Work")
        .unwrap()
        .clone();
    assert_eq!(
        (work["enabled"].as_bool(), work["color"].as_str()),
        (Some(false), Some("#123abc")),
        "a sync keeps the user's choices"
    );
    patch(json!({"enabled": true})).await.unwrap();
    assert!(google
        .upcoming_titles(&token)
        .await
        .contains(&"Work only".to_owned()));
}

async fn disconnecting_revokes_and_deletes_everything(kind: BackendKind) {
    let Some((google, token, _)) = connected(kind).await else {
        return;
    };
    let (_, connections) = json(
        google
            .app
            .get("/api/calendar/connections/", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let id = connections[0]["id"].as_i64().unwrap();
    let (status, body) = json(
        google
            .app
            .post(
                &format!("/api/calendar/connections/{id}/disconnect/"),
                &token,
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"id": id, "disconnected": true, "revoked": true})
        )
    );
    assert!(google
        .emulator
        .requests()
        .iter()
        .any(|r| r.path == "/revoke" && r.status == 200));
    assert!(google.upcoming_titles(&token).await.is_empty());
    let (_, calendars) = json(
        google
            .app
            .get("/api/calendar/calendars/", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(calendars, json!([]));
}

async fn a_weekly_series_keeps_its_wall_clock_across_dst_with_moved_and_cancelled_instances(
    kind: BackendKind,
) {
    let Some((google, token, _)) = connected(kind).await else {
        return;
    };
    let berlin = |local: &str| json!({"dateTime": local, "timeZone": "Europe/Berlin"});
    let master = json!({
        "id": "dstweekly",
        "summary": "Weekly review",
        "start": berlin("2027-03-15T09:00:00+01:00"),
        "end": berlin("2027-03-15T10:00:00+01:00"),
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"],
    });
    google
        .emulator
        .insert_event(ALICE, ALICE_WORK, master)
        .unwrap();
    let moved = json!({
        "id": "dstweekly_20270322T080000Z",
        "recurringEventId": "dstweekly",
        "originalStartTime": berlin("2027-03-22T09:00:00+01:00"),
        "summary": "Weekly review (moved)",
        "start": berlin("2027-03-23T10:00:00+01:00"),
        "end": berlin("2027-03-23T11:00:00+01:00"),
    });
    google
        .emulator
        .insert_event(ALICE, ALICE_WORK, moved)
        .unwrap();
    google
        .emulator
        .delete_event(ALICE, ALICE_WORK, "dstweekly_20270405T070000Z")
        .unwrap();
    google.sync(&token).await;

    let path = "/api/calendar/events/?start=2027-03-10T00:00:00Z&end=2027-04-10T00:00:00Z";
    let (_, events) = json(google.app.get(path, &token).send().await.unwrap()).await;
    let review: Vec<(String, String)> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["title"].as_str().unwrap().starts_with("Weekly review"))
        .map(|e| {
            (
                e["start"].as_str().unwrap().to_owned(),
                e["title"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("2027-03-15T08:00:00Z", "Weekly review"),
        ("2027-03-23T09:00:00Z", "Weekly review (moved)"),
        // Berlin moved to summer time on 28 March: 09:00 local is now 07:00 UTC.
        ("2027-03-29T07:00:00Z", "Weekly review"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(review, expected);
}
