//! Calendar API v3 over real HTTP: paging, sync tokens, cancelled shapes,
//! forbidden parameters, 410, faults, etags, recurring series, errors.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn alice(emu: &calsync_emulator::EmulatorHandle) -> String {
    login(emu, "alice@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn enc(id: &str) -> String {
    id.replace('@', "%40").replace('#', "%23")
}

#[tokio::test]
async fn calendar_list_pages_and_syncs() {
    let emu = start(true, true).await;
    let token = alice(&emu).await;
    let (pages, sync) = list_all(
        &emu,
        &token,
        "/users/me/calendarList",
        &[("maxResults", "1")],
    )
    .await;
    let entries = items(&pages);
    let ids: Vec<&str> = entries.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        vec![
            "alice@example.com",
            calsync_emulator::samples::ALICE_WORK,
            calsync_emulator::samples::ALICE_PERSONAL,
            calsync_emulator::samples::HOLIDAYS
        ]
    );
    assert_eq!(entries[0]["primary"], true);
    assert_eq!(entries[0]["kind"], "calendar#calendarListEntry");
    assert_eq!(entries[3]["accessRole"], "reader");

    // Incremental: nothing changed.
    let (status, body) = api_get(
        &emu,
        &token,
        "/users/me/calendarList",
        &[("syncToken", &sync)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"].as_array().unwrap().len(), 0);
    let sync = body["nextSyncToken"].as_str().unwrap().to_owned();

    // A colour change is reported, a title change by the owner is not (spec §2.1).
    let work = enc(calsync_emulator::samples::ALICE_WORK);
    control(
        &emu,
        Method::PATCH,
        &format!("/accounts/alice@example.com/calendars/{work}"),
        json!({"summary": "Renamed"}),
    )
    .await;
    let (_, body) = api_get(
        &emu,
        &token,
        "/users/me/calendarList",
        &[("syncToken", &sync)],
    )
    .await;
    assert_eq!(body["items"].as_array().unwrap().len(), 0);
    control(
        &emu,
        Method::PATCH,
        &format!("/accounts/alice@example.com/calendars/{work}"),
        json!({"colorId": "3"}),
    )
    .await;
    let (_, body) = api_get(
        &emu,
        &token,
        "/users/me/calendarList",
        &[("syncToken", &sync)],
    )
    .await;
    assert_eq!(body["items"][0]["backgroundColor"], "#f83a22");

    // minAccessRole is forbidden with syncToken.
    let (status, body) = api_get(
        &emu,
        &token,
        "/users/me/calendarList",
        &[("syncToken", &sync), ("minAccessRole", "owner")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn events_paging_and_incremental_sync() {
    let emu = start(true, false).await;
    emu.add_account("carol@example.com", Some("Carol"));
    let (status, _) = control(
        &emu,
        Method::POST,
        "/accounts/carol@example.com/calendars/primary/events/generate",
        json!({"count": 600}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let token = login(&emu, "carol@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let (pages, sync) = list_all(
        &emu,
        &token,
        "/calendars/primary/events",
        &[("maxResults", "250")],
    )
    .await;
    let all = items(&pages);
    let ids: HashSet<&str> = all.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(all.len(), 600);
    assert_eq!(ids.len(), 600);
    let sizes: Vec<usize> = pages
        .iter()
        .map(|p| p["items"].as_array().unwrap().len())
        .collect();
    assert!(
        sizes.iter().any(|s| *s < 250) && sizes.len() >= 3,
        "uneven pages expected: {sizes:?}"
    );
    assert!(sizes.iter().all(|s| *s <= 250));

    // Page tokens can be reused (a client that crashed between pages asks
    // again) and only continue the listing they came from.
    let (_, first) = api_get(
        &emu,
        &token,
        "/calendars/primary/events",
        &[("maxResults", "100")],
    )
    .await;
    let next = first["nextPageToken"].as_str().unwrap();
    let (_, a) = api_get(
        &emu,
        &token,
        "/calendars/primary/events",
        &[("maxResults", "100"), ("pageToken", next)],
    )
    .await;
    let (_, b) = api_get(
        &emu,
        &token,
        "/calendars/primary/events",
        &[("maxResults", "100"), ("pageToken", next)],
    )
    .await;
    assert_eq!(a["items"], b["items"]);
    assert_eq!(a["items"].as_array().unwrap().len(), 66);
    let (status, _) = api_get(
        &emu,
        &token,
        "/users/me/calendarList",
        &[("pageToken", next)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // No change → empty page with a fresh token.
    let (_, body) = api_get(
        &emu,
        &token,
        "/calendars/primary/events",
        &[("syncToken", &sync)],
    )
    .await;
    assert_eq!(body["items"].as_array().unwrap().len(), 0);
    let sync = body["nextSyncToken"].as_str().unwrap().to_owned();

    // One change, one delete, one insert (from "the other side").
    let changed = all[10]["id"].as_str().unwrap();
    let deleted = all[20]["id"].as_str().unwrap();
    let (status, _) = control(
        &emu,
        Method::PATCH,
        &format!("/accounts/carol@example.com/calendars/primary/events/{changed}"),
        json!({"summary": "Changed"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = control(
        &emu,
        Method::DELETE,
        &format!("/accounts/carol@example.com/calendars/primary/events/{deleted}"),
        json!(null),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, added) = control(&emu, Method::POST, "/accounts/carol@example.com/calendars/primary/events", json!({
        "summary": "New", "start": timed("2030-01-01T10:00:00", "Europe/Berlin"), "end": timed("2030-01-01T11:00:00", "Europe/Berlin")
    })).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(added["start"]["dateTime"], "2030-01-01T10:00:00+01:00");

    let (pages, sync2) = list_all(
        &emu,
        &token,
        "/calendars/primary/events",
        &[("syncToken", &sync)],
    )
    .await;
    let delta = items(&pages);
    assert_eq!(delta.len(), 3, "{delta:?}");
    let by_id = |id: &str| delta.iter().find(|e| e["id"] == id).unwrap().clone();
    assert_eq!(by_id(changed)["summary"], "Changed");
    let gone = by_id(deleted);
    assert_eq!(gone["status"], "cancelled");
    assert!(
        gone.get("summary").is_none() && gone.get("start").is_none(),
        "plain delete keeps only the id: {gone}"
    );
    assert_eq!(by_id(added["id"].as_str().unwrap())["summary"], "New");

    // Full listing hides the deleted event unless showDeleted.
    let (pages, _) = list_all(
        &emu,
        &token,
        "/calendars/primary/events",
        &[("maxResults", "2500")],
    )
    .await;
    assert_eq!(items(&pages).len(), 600);
    let (pages, _) = list_all(
        &emu,
        &token,
        "/calendars/primary/events",
        &[("maxResults", "2500"), ("showDeleted", "true")],
    )
    .await;
    assert_eq!(items(&pages).len(), 601);

    // The next incremental run is empty again.
    let (_, body) = api_get(
        &emu,
        &token,
        "/calendars/primary/events",
        &[("syncToken", &sync2)],
    )
    .await;
    assert_eq!(body["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn sync_token_rules_forbidden_params_and_410() {
    let emu = start(true, true).await;
    let token = alice(&emu).await;
    let (_, sync) = list_all(&emu, &token, "/calendars/primary/events", &[]).await;
    for (k, v) in [
        ("timeMin", "2026-01-01T00:00:00Z"),
        ("timeMax", "2026-01-01T00:00:00Z"),
        ("q", "x"),
        ("orderBy", "updated"),
        ("updatedMin", "2026-01-01T00:00:00Z"),
        ("iCalUID", "x@google.com"),
        ("showDeleted", "false"),
    ] {
        let (status, body) = api_get(
            &emu,
            &token,
            "/calendars/primary/events",
            &[("syncToken", &sync), (k, v)],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{k}: {body}");
        assert_eq!(body["error"]["code"], 400);
        assert_eq!(body["error"]["errors"][0]["location"], k);
    }
    let (status, _) = api_get(
        &emu,
        &token,
        "/calendars/primary/events",
        &[("syncToken", &sync), ("showDeleted", "true")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // orderBy=startTime needs singleEvents.
    let (status, body) = api_get(
        &emu,
        &token,
        "/calendars/primary/events",
        &[("orderBy", "startTime")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"]["errors"][0]["message"],
        "The requested ordering is not available for the particular query."
    );
    // timeMax <= timeMin.
    let (_, body) = api_get(
        &emu,
        &token,
        "/calendars/primary/events",
        &[
            ("timeMin", "2026-01-02T00:00:00Z"),
            ("timeMax", "2026-01-01T00:00:00Z"),
        ],
    )
    .await;
    assert_eq!(reason(&body), "timeRangeEmpty");
    // orderBy gives no nextSyncToken.
    let (_, body) = api_get(
        &emu,
        &token,
        "/calendars/primary/events",
        &[("orderBy", "startTime"), ("singleEvents", "true")],
    )
    .await;
    assert!(body.get("nextSyncToken").is_none());

    // Invalidation → 410 fullSyncRequired with the exact error JSON.
    let (status, _) = control(
        &emu,
        Method::POST,
        "/accounts/alice@example.com/calendars/primary/invalidate-sync-tokens",
        json!(null),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = api_get(
        &emu,
        &token,
        "/calendars/primary/events",
        &[("syncToken", &sync)],
    )
    .await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(
        body["error"]["errors"][0],
        json!({"domain": "calendar", "reason": "fullSyncRequired", "message": "Sync token is no longer valid, a full sync is required.", "location": "syncToken", "locationType": "parameter"})
    );
    // A fresh full sync works again.
    let (_, sync) = list_all(&emu, &token, "/calendars/primary/events", &[]).await;
    assert_eq!(
        api_get(
            &emu,
            &token,
            "/calendars/primary/events",
            &[("syncToken", &sync)]
        )
        .await
        .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn fault_injection_and_request_log() {
    let emu = start(true, true).await;
    let token = alice(&emu).await;
    let (status, fault) = control(
        &emu,
        Method::POST,
        "/faults",
        json!({"path_prefix": "/calendar/v3/", "status": 429, "retry_after": 7, "count": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let resp = http()
        .get(format!("{}/users/me/calendarList", emu.google().api_base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "7");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(reason(&body), "rateLimitExceeded");
    assert_eq!(
        api_get(&emu, &token, "/users/me/calendarList", &[]).await.0,
        StatusCode::OK
    );

    control(&emu, Method::POST, "/faults", json!({"path_prefix": "/calendar/v3/calendars", "status": 403, "reason": "rateLimitExceeded", "count": 1})).await;
    control(
        &emu,
        Method::POST,
        "/faults",
        json!({"path_prefix": "/calendar/v3/calendars", "status": 503, "count": 1}),
    )
    .await;
    let (status, body) = api_get(&emu, &token, "/calendars/primary/events", &[]).await;
    assert_eq!(
        (status, reason(&body)),
        (StatusCode::FORBIDDEN, "rateLimitExceeded")
    );
    assert_eq!(body["error"]["errors"][0]["domain"], "usageLimits");
    let (status, body) = api_get(&emu, &token, "/calendars/primary/events", &[]).await;
    assert_eq!(
        (status, reason(&body)),
        (StatusCode::SERVICE_UNAVAILABLE, "backendError")
    );
    assert_eq!(
        api_get(&emu, &token, "/calendars/primary/events", &[])
            .await
            .0,
        StatusCode::OK
    );

    // A dropped connection is a transport error for the client.
    emu.inject_fault(calsync_emulator::Fault {
        path_prefix: "/calendar/v3/colors".into(),
        drop_connection: true,
        ..Default::default()
    })
    .unwrap();
    let sent = http()
        .get(format!("{}/colors", emu.google().api_base))
        .bearer_auth(&token)
        .send()
        .await;
    let failed = match sent {
        Err(_) => true,
        Ok(resp) => resp.bytes().await.is_err(),
    };
    assert!(failed, "the body must not arrive");

    // Token endpoint faults come in the OAuth shape.
    control(
        &emu,
        Method::POST,
        "/faults",
        json!({"path_prefix": "/token", "status": 500}),
    )
    .await;
    let (status, body) = refresh(&emu, "whatever").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"], "internal_failure");

    // A slow response still succeeds.
    control(
        &emu,
        Method::POST,
        "/faults",
        json!({"path_prefix": "/calendar/v3/colors", "delay_ms": 200}),
    )
    .await;
    let started = std::time::Instant::now();
    let (status, colors) = api_get(&emu, &token, "/colors", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= std::time::Duration::from_millis(200));
    assert_eq!(colors["event"]["11"]["background"], "#dc2127");
    assert_eq!(colors["calendar"].as_object().unwrap().len(), 24);

    // The log has method/path/status, which fault hit, and never a token.
    let resp = http()
        .get(format!(
            "{}/_emulator/requests?path_prefix=/calendar/v3/",
            emu.base_url()
        ))
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    assert!(!text.contains(&token));
    let log: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(log[0]["status"], 429);
    assert_eq!(log[0]["fault"], fault["id"]);
    assert_eq!(log[0]["account"], "alice@example.com");
    assert!(log.iter().all(|e| e["method"] == "GET"));
}

#[tokio::test]
async fn writes_etags_and_preconditions() {
    let emu = start(true, true).await;
    let token = alice(&emu).await;
    let url = format!("{}/calendars/primary/events", emu.google().api_base);
    let body = json!({"id": "clientchosen00001", "summary": "Write test", "start": {"date": "2031-05-01"}, "end": {"date": "2031-05-02"}});
    let resp = http()
        .post(&url)
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let ev: Value = resp.json().await.unwrap();
    let etag = ev["etag"].as_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'));
    assert!(ev["htmlLink"]
        .as_str()
        .unwrap()
        .contains("/calendar/event?eid="));
    // Same client id again → 409 duplicate.
    let resp = http()
        .post(&url)
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    assert_eq!(reason(&resp.json().await.unwrap()), "duplicate");
    // Missing end → 400 required.
    let resp = http()
        .post(&url)
        .bearer_auth(&token)
        .json(&json!({"summary": "x", "start": {"date": "2031-05-01"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let one = format!("{url}/clientchosen00001");
    let resp = http()
        .patch(&one)
        .bearer_auth(&token)
        .header("If-Match", "\"1\"")
        .json(&json!({"summary": "A"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(reason(&resp.json().await.unwrap()), "conditionNotMet");
    let resp = http()
        .patch(&one)
        .bearer_auth(&token)
        .header("If-Match", &etag)
        .json(&json!({"summary": "A"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let patched: Value = resp.json().await.unwrap();
    assert_eq!(patched["summary"], "A");
    assert_eq!(patched["start"]["date"], "2031-05-01");
    assert_ne!(patched["etag"], etag.as_str());
    assert_eq!(patched["sequence"], 1);

    // If-None-Match → 304.
    let resp = http()
        .get(&one)
        .bearer_auth(&token)
        .header("If-None-Match", patched["etag"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);

    let resp = http()
        .delete(&one)
        .bearer_auth(&token)
        .header("If-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PRECONDITION_FAILED);
    let resp = http()
        .delete(&one)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = http()
        .delete(&one)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::GONE);
    assert_eq!(reason(&resp.json().await.unwrap()), "deleted");
    // get still returns the cancelled event.
    let (status, body) = api_get(
        &emu,
        &token,
        "/calendars/primary/events/clientchosen00001",
        &[],
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    let (status, body) = api_get(&emu, &token, "/calendars/primary/events/nosuchevent1", &[]).await;
    assert_eq!((status, reason(&body)), (StatusCode::NOT_FOUND, "notFound"));

    // The holidays calendar is read-only.
    let hol = format!(
        "{}/calendars/{}/events",
        emu.google().api_base,
        enc(calsync_emulator::samples::HOLIDAYS)
    );
    let resp = http()
        .post(&hol)
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn recurring_series_exceptions_and_instances() {
    let emu = start(true, true).await;
    let token = alice(&emu).await;
    let work = format!(
        "/calendars/{}/events",
        enc(calsync_emulator::samples::ALICE_WORK)
    );
    let (pages, sync) = list_all(&emu, &token, &work, &[]).await;
    let all = items(&pages);
    let master = all.iter().find(|e| e["id"] == "oneonone0alice001").unwrap();
    assert_eq!(master["recurrence"][0], "RRULE:FREQ=WEEKLY;BYDAY=TU");
    assert_eq!(master["start"]["timeZone"], "America/New_York");
    let exceptions: Vec<&Value> = all
        .iter()
        .filter(|e| e["recurringEventId"] == "oneonone0alice001")
        .collect();
    assert_eq!(
        exceptions.len(),
        2,
        "moved + cancelled instance (cancelled exceptions come back with showDeleted=false)"
    );
    let cancelled = exceptions
        .iter()
        .find(|e| e["status"] == "cancelled")
        .unwrap();
    let keys: HashSet<&str> = cancelled
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        HashSet::from([
            "kind",
            "etag",
            "id",
            "status",
            "recurringEventId",
            "originalStartTime"
        ])
    );
    let moved = exceptions
        .iter()
        .find(|e| e["status"] == "confirmed")
        .unwrap();
    assert_eq!(moved["summary"], "1:1 with Dana (moved)");
    let id = moved["id"].as_str().unwrap();
    assert!(
        id.starts_with("oneonone0alice001_") && id.ends_with('Z') && id.contains('T'),
        "{id}"
    );

    // singleEvents=true: instances, cancelled one hidden, moved one in its new place.
    let (pages, _) = list_all(
        &emu,
        &token,
        &work,
        &[
            ("singleEvents", "true"),
            ("timeMin", "2020-01-01T00:00:00Z"),
        ],
    )
    .await;
    let inst: Vec<Value> = items(&pages)
        .into_iter()
        .filter(|e| e["recurringEventId"] == "oneonone0alice001")
        .collect();
    assert!(inst.len() >= 6, "{}", inst.len());
    assert!(inst
        .iter()
        .all(|e| e["status"] != "cancelled" && e.get("recurrence").is_none()));
    assert!(inst.iter().any(|e| e["summary"] == "1:1 with Dana (moved)"));
    assert!(!inst.iter().any(|e| e["id"] == cancelled["id"]));
    // Wall time stays 14:00 New York across the DST change.
    for e in inst.iter().filter(|e| e["summary"] == "1:1 with Dana") {
        assert!(
            e["start"]["dateTime"]
                .as_str()
                .unwrap()
                .contains("T14:00:00-0"),
            "{}",
            e["start"]
        );
    }

    // Deleting one instance through the API: incremental sync shows the cancelled exception.
    let victim = inst
        .iter()
        .find(|e| e["summary"] == "1:1 with Dana")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = http()
        .delete(format!("{}{work}/{victim}", emu.google().api_base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (_, body) = api_get(&emu, &token, &work, &[("syncToken", &sync)]).await;
    let delta = body["items"].as_array().unwrap();
    assert_eq!(delta.len(), 1);
    assert_eq!(delta[0]["id"], victim.as_str());
    assert_eq!(delta[0]["recurringEventId"], "oneonone0alice001");
    assert!(delta[0]["originalStartTime"]["dateTime"].is_string());

    // timeMin/timeMax overlap on all-day and multi-day events.
    let (pages, _) = list_all(
        &emu,
        &token,
        "/calendars/primary/events",
        &[
            ("timeMin", "1999-01-01T00:00:00Z"),
            ("timeMax", "1999-01-02T00:00:00Z"),
        ],
    )
    .await;
    assert!(items(&pages).is_empty());
}

#[tokio::test]
async fn quirky_fixtures_are_served_as_stored() {
    let emu = start(true, true).await;
    let token = login(&emu, calsync_emulator::samples::QUINN).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (pages, _) = list_all(&emu, &token, "/calendars/primary/events", &[]).await;
    let all = items(&pages);
    assert_eq!(all.len(), 10);
    let zero = all.iter().find(|e| e["id"] == "quirkzerodays0001").unwrap();
    assert_eq!(zero["start"], zero["end"]);
    let odd = all.iter().find(|e| e["id"] == "quirkgmtzone00001").unwrap();
    assert_eq!(odd["start"]["timeZone"], "GMT+02:00");
    // Expansion and time windows survive the odd series.
    for q in [
        vec![("singleEvents", "true")],
        vec![
            ("singleEvents", "true"),
            ("timeMin", "2020-01-01T00:00:00Z"),
            ("orderBy", "startTime"),
        ],
    ] {
        let (status, body) = api_get(&emu, &token, "/calendars/primary/events", &q).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["items"].as_array().unwrap().len() > 10);
    }
}

#[tokio::test]
async fn date_times_are_written_in_the_response_zone() {
    let emu = start(true, true).await;
    let token = alice(&emu).await;
    let work = format!(
        "/calendars/{}/events",
        enc(calsync_emulator::samples::ALICE_WORK)
    );
    let start_of = |body: &Value| {
        let ev = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == "berlin0alice00001")
            .unwrap()
            .clone();
        assert_eq!(ev["start"]["timeZone"], "Europe/Berlin");
        ev["start"]["dateTime"].as_str().unwrap().to_owned()
    };
    let instant = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
    // Default: the calendar's zone (America/New_York); the event keeps its own timeZone.
    let (_, body) = api_get(&emu, &token, &work, &[]).await;
    let default = start_of(&body);
    assert!(
        default.ends_with("-05:00") || default.ends_with("-04:00"),
        "{default}"
    );
    let (_, body) = api_get(&emu, &token, &work, &[("timeZone", "Asia/Tokyo")]).await;
    let tokyo = start_of(&body);
    assert!(tokyo.ends_with("+09:00"), "{tokyo}");
    let (status, _) = api_get(&emu, &token, &work, &[("timeZone", "Mars/Base")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, got) = api_get(
        &emu,
        &token,
        &format!("{work}/berlin0alice00001"),
        &[("timeZone", "UTC")],
    )
    .await;
    let utc = got["start"]["dateTime"].as_str().unwrap().to_owned();
    assert!(utc.ends_with('Z'), "{utc}");
    // Switched off: each event keeps its own offset (10:00 in Berlin).
    emu.update_settings(|s| s.render_in_calendar_zone = false);
    let (_, body) = api_get(&emu, &token, &work, &[]).await;
    let own = start_of(&body);
    assert!(own.contains("T10:00:00+0"), "{own}");
    for other in [&default, &tokyo, &utc] {
        assert_eq!(instant(other), instant(&own));
    }
}
