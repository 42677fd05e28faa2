//! The control API and the rarer protocol rules: calendar tombstones, forced
//! pagination, updatedMin, the per-user rate limiter, refresh-token limits,
//! prompt=none, reset.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn calendars_come_and_go_through_calendar_list_sync() {
    let emu = start(true, false).await;
    emu.add_account("dave@example.com", None);
    let token = login(&emu, "dave@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, sync) = list_all(&emu, &token, "/users/me/calendarList", &[]).await;
    let (status, entry) = control(
        &emu,
        Method::POST,
        "/accounts/dave@example.com/calendars",
        json!({"summary": "Team", "timeZone": "Europe/Paris", "colorId": "7"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = entry["id"].as_str().unwrap().to_owned();
    assert!(id.ends_with("@group.calendar.google.com"));
    let (_, body) = api_get(
        &emu,
        &token,
        "/users/me/calendarList",
        &[("syncToken", &sync)],
    )
    .await;
    assert_eq!(body["items"][0]["id"], id.as_str());
    assert_eq!(body["items"][0]["timeZone"], "Europe/Paris");
    let sync = body["nextSyncToken"].as_str().unwrap().to_owned();

    let (status, _) = control(
        &emu,
        Method::DELETE,
        &format!(
            "/accounts/dave@example.com/calendars/{}",
            id.replace('@', "%40")
        ),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = api_get(
        &emu,
        &token,
        "/users/me/calendarList",
        &[("syncToken", &sync)],
    )
    .await;
    assert_eq!(
        body["items"][0],
        json!({"kind": "calendar#calendarListEntry", "etag": body["items"][0]["etag"], "id": id, "deleted": true})
    );
    let (status, _) = api_get(
        &emu,
        &token,
        &format!("/calendars/{}/events", id.replace('@', "%40")),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (pages, _) = list_all(&emu, &token, "/users/me/calendarList", &[]).await;
    assert_eq!(items(&pages).len(), 1);
}

#[tokio::test]
async fn page_size_cap_updated_min_and_rate_limit() {
    let emu = start(true, false).await;
    emu.add_account("erin@example.com", None);
    control(
        &emu,
        Method::POST,
        "/accounts/erin@example.com/calendars/primary/events/generate",
        json!({"count": 30}),
    )
    .await;
    control(
        &emu,
        Method::PUT,
        "/settings",
        json!({"page_size_cap": 10, "uneven_pages": false}),
    )
    .await;
    let token = login(&emu, "erin@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (pages, _) = list_all(
        &emu,
        &token,
        "/calendars/primary/events",
        &[("maxResults", "2500")],
    )
    .await;
    assert_eq!(pages.len(), 3);
    assert_eq!(items(&pages).len(), 30);

    // updatedMin: only what changed since, deleted included; too old → 410.
    control(&emu, Method::POST, "/clock/advance", json!({"seconds": 60})).await;
    let (_, clock) = control(&emu, Method::GET, "/clock", Value::Null).await;
    let since = clock["now"].as_str().unwrap().to_owned();
    let first = items(&pages)[0]["id"].as_str().unwrap().to_owned();
    control(
        &emu,
        Method::DELETE,
        &format!("/accounts/erin@example.com/calendars/primary/events/{first}"),
        Value::Null,
    )
    .await;
    let (_, body) = api_get(
        &emu,
        &token,
        "/calendars/primary/events",
        &[("updatedMin", &since)],
    )
    .await;
    assert_eq!(body["items"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(body["items"][0]["status"], "cancelled");
    let (status, body) = api_get(
        &emu,
        &token,
        "/calendars/primary/events",
        &[("updatedMin", "2001-01-01T00:00:00Z")],
    )
    .await;
    assert_eq!(
        (status, reason(&body)),
        (StatusCode::GONE, "updatedMinTooLongAgo")
    );

    // Per-user limiter: the third call within a minute is refused like Google does.
    control(
        &emu,
        Method::PUT,
        "/settings",
        json!({"rate_limit_per_minute": 2}),
    )
    .await;
    assert_eq!(
        api_get(&emu, &token, "/colors", &[]).await.0,
        StatusCode::OK
    );
    assert_eq!(
        api_get(&emu, &token, "/colors", &[]).await.0,
        StatusCode::OK
    );
    let (status, body) = api_get(&emu, &token, "/colors", &[]).await;
    assert_eq!(
        (status, reason(&body)),
        (StatusCode::FORBIDDEN, "rateLimitExceeded")
    );
    control(&emu, Method::POST, "/clock/advance", json!({"seconds": 61})).await;
    assert_eq!(
        api_get(&emu, &token, "/colors", &[]).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn refresh_token_limits_and_idle_expiry() {
    let emu = start(true, true).await;
    let first = login(&emu, "alice@example.com").await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut last = String::new();
    for _ in 0..100 {
        last = login(&emu, "alice@example.com").await["refresh_token"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    // 101 issued: the oldest was dropped silently.
    assert_eq!(refresh(&emu, &first).await.1["error"], "invalid_grant");
    assert_eq!(refresh(&emu, &last).await.0, StatusCode::OK);
    // Six months unused → dead.
    control(
        &emu,
        Method::POST,
        "/clock/advance",
        json!({"seconds": 184 * 86_400}),
    )
    .await;
    assert_eq!(refresh(&emu, &last).await.1["error"], "invalid_grant");
}

#[tokio::test]
async fn prompt_none_incremental_scopes_and_reset() {
    let emu = start(true, true).await;
    // prompt=none without an earlier grant → consent_required.
    let resp = authorize(
        &emu,
        &[("prompt", "none"), ("login_hint", "alice@example.com")],
    )
    .await;
    assert_eq!(
        param(&location_params(&resp), "error"),
        Some("consent_required")
    );
    let _ = login(&emu, "alice@example.com").await;
    let resp = authorize(
        &emu,
        &[("prompt", "none"), ("login_hint", "alice@example.com")],
    )
    .await;
    assert!(param(&location_params(&resp), "code").is_some());

    // include_granted_scopes: a narrow request still yields the earlier scopes.
    let resp = http()
        .get(emu.google().auth_url)
        .query(&[
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "openid"),
            ("include_granted_scopes", "true"),
            ("login_hint", "alice@example.com"),
        ])
        .send()
        .await
        .unwrap();
    let scope = param(&location_params(&resp), "scope").unwrap().to_owned();
    assert!(
        scope.contains("https://www.googleapis.com/auth/calendar"),
        "{scope}"
    );

    // Reset forgets grants, tokens and changes.
    control(
        &emu,
        Method::POST,
        "/accounts/alice@example.com/calendars/primary/events",
        json!({"summary": "x", "start": {"date": "2030-01-01"}, "end": {"date": "2030-01-02"}}),
    )
    .await;
    let (status, _) = control(&emu, Method::POST, "/reset", Value::Null).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, stored) = control(
        &emu,
        Method::GET,
        "/accounts/alice@example.com/calendars/primary/events",
        Value::Null,
    )
    .await;
    assert_eq!(
        stored["items"].as_array().unwrap().len(),
        1,
        "only the sample dentist appointment"
    );
    let resp = authorize(
        &emu,
        &[("prompt", "none"), ("login_hint", "alice@example.com")],
    )
    .await;
    assert_eq!(
        param(&location_params(&resp), "error"),
        Some("consent_required")
    );
}

#[tokio::test]
async fn every_error_is_json() {
    let emu = start(true, true).await;
    let resp = http()
        .post(format!("{}/colors", emu.google().api_base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(reason(&body), "notFound");
    let resp = http()
        .get(format!("{}/nothing/here", emu.google().api_base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(reason(&resp.json().await.unwrap()), "notFound");
    let resp = http()
        .post(format!("{}/_emulator/accounts", emu.base_url()))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], 400);
    // Unauthenticated Calendar calls: 401 with the envelope.
    let resp = http()
        .get(format!("{}/users/me/calendarList", emu.google().api_base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(reason(&resp.json().await.unwrap()), "authError");
}

#[tokio::test]
async fn in_process_helpers() {
    let emu = start(true, true).await;
    let entry = emu
        .add_calendar(
            "bob@example.com",
            json!({"summary": "Garden", "timeZone": "Europe/Berlin"}),
        )
        .unwrap();
    let cal = entry["id"].as_str().unwrap().to_owned();
    let ev = emu
        .insert_event("bob@example.com", &cal, json!({"summary": "Plant", "start": {"date": "2031-04-01"}, "end": {"date": "2031-04-02"}}))
        .unwrap();
    let id = ev["id"].as_str().unwrap();
    let patched = emu
        .patch_event(
            "bob@example.com",
            &cal,
            id,
            json!({"summary": "Plant tomatoes"}),
        )
        .unwrap();
    assert_eq!(patched["summary"], "Plant tomatoes");
    emu.delete_event("bob@example.com", &cal, id).unwrap();
    let stored = emu.stored_events("bob@example.com", &cal).unwrap();
    assert_eq!(stored[0]["status"], "cancelled");
    // Moving one instance of Bob's biweekly planning makes an exception.
    let series = emu.stored_events("bob@example.com", "primary").unwrap();
    let master = series
        .iter()
        .find(|e| e["id"] == "planning0bob00001")
        .unwrap();
    assert!(emu
        .patch_event(
            "bob@example.com",
            "primary",
            "planning0bob00001_19990101T000000Z",
            json!({})
        )
        .is_err());
    let start = master["start"]["dateTime"].as_str().unwrap();
    let ts: jiff::Timestamp = start.parse().unwrap();
    let instance = format!("planning0bob00001_{}", ts.strftime("%Y%m%dT%H%M%SZ"));
    let ex = emu
        .patch_event(
            "bob@example.com",
            "primary",
            &instance,
            json!({"summary": "Planning (short)"}),
        )
        .unwrap();
    assert_eq!(ex["recurringEventId"], "planning0bob00001");
    assert_eq!(ex["originalStartTime"]["dateTime"], start);

    let rt = login(&emu, "bob@example.com").await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        emu.expire_refresh_tokens(Some("bob@example.com")).unwrap(),
        1
    );
    assert_eq!(refresh(&emu, &rt).await.1["error"], "invalid_grant");
    let access = login(&emu, "bob@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    emu.advance_clock(3600).unwrap();
    assert_eq!(
        api_get(&emu, &access, "/colors", &[]).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn bad_input_is_never_a_server_error() {
    let emu = start(true, true).await;
    let token = login(&emu, "alice@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let bad_queries: Vec<Vec<(&str, &str)>> = vec![
        vec![("maxResults", "0")],
        vec![("maxResults", "-5")],
        vec![("maxResults", "99999999999999999999")],
        vec![("maxResults", "abc")],
        vec![("singleEvents", "maybe")],
        vec![("timeMin", "yesterday")],
        vec![("timeMin", "2026-01-01T00:00:00")],
        vec![("timeMax", "0000-00-00T00:00:00Z")],
        vec![("orderBy", "random")],
        vec![("pageToken", "nope")],
        vec![("syncToken", "")],
        vec![("syncToken", "C%%%")],
        vec![("updatedMin", "9999-12-31T23:59:59Z")],
        vec![("eventTypes", "default"), ("eventTypes", "nonsense")],
        vec![("privateExtendedProperty", "novalue")],
        vec![
            ("singleEvents", "true"),
            ("timeMin", "-009999-01-01T00:00:00Z"),
        ],
        vec![
            ("singleEvents", "true"),
            ("timeMax", "9999-12-31T00:00:00Z"),
        ],
    ];
    for q in &bad_queries {
        for path in [
            "/calendars/primary/events",
            "/users/me/calendarList",
            "/calendars/primary/events/oneonone0alice001/instances",
        ] {
            let (status, body) = api_get(&emu, &token, path, q).await;
            assert!(status.as_u16() < 500, "{path} {q:?}: {status} {body}");
        }
    }
    for path in [
        "/calendars/%00/events",
        "/calendars/%F0%9F%98%80/events/x",
        "/calendars/primary/events/a_b_c",
        "/calendars/primary/events/oneonone0alice001_garbage",
    ] {
        let (status, _) = api_get(&emu, &token, path, &[]).await;
        assert!(status.as_u16() < 500, "{path}: {status}");
    }
    let url = format!("{}/calendars/primary/events", emu.google().api_base);
    let bodies = [
        "null",
        "[]",
        "{",
        r#"{"start": {"date": "2026-02-30"}, "end": {"date": "2026-03-01"}}"#,
        r#"{"start": {"dateTime": "2026-01-01T10:00:00", "timeZone": "Mars/Olympus"}, "end": {"dateTime": "2026-01-01T11:00:00Z"}}"#,
        r#"{"start": {"date": "2026-01-01"}, "end": {"dateTime": "2026-01-01T11:00:00Z"}}"#,
        r#"{"start": {"date": "2026-01-02"}, "end": {"date": "2026-01-01"}}"#,
        r#"{"start": {"date": 5}, "end": {"date": true}}"#,
        r#"{"id": "UPPERCASE", "start": {"date": "2026-01-01"}, "end": {"date": "2026-01-02"}}"#,
        r#"{"status": "weird", "start": {"date": "2026-01-01"}, "end": {"date": "2026-01-02"}}"#,
        r#"{"recurrence": ["nonsense"], "start": {"date": "2026-01-01"}, "end": {"date": "2026-01-02"}}"#,
        r#"{"recurrence": ["RRULE:FREQ=DAILY;INTERVAL=0"], "start": {"date": "2026-01-01"}, "end": {"date": "2026-01-02"}}"#,
    ];
    for b in bodies {
        let resp = http()
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(b)
            .send()
            .await
            .unwrap();
        assert!(resp.status().as_u16() < 500, "{b}: {}", resp.status());
        assert!(resp.status().is_client_error() || resp.status().is_success());
    }
    // The odd-but-accepted series still lists.
    let (status, _) = api_get(
        &emu,
        &token,
        "/calendars/primary/events",
        &[("singleEvents", "true")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for form in [
        vec![],
        vec![("grant_type", "authorization_code")],
        vec![("client_id", "x\u{0}")],
    ] {
        let resp = http()
            .post(emu.google().token_url)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_client_error(), "{form:?}");
    }
}
