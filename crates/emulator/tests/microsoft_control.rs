//! The Microsoft control API over HTTP (`/_emulator/microsoft/...`), and bad
//! input on every Microsoft route: never a 5xx, always the provider's shape.
#![allow(clippy::unwrap_used)]

mod ms_common;

use calsync_emulator::samples::{MORGAN, MORGAN_CALENDAR, MORGAN_WEEKLY};
use ms_common::*;
use serde_json::{json, Value};

async fn control(
    emu: &calsync_emulator::EmulatorHandle,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("{}/_emulator/microsoft{path}", emu.base_url());
    let mut req = http().request(method.parse().unwrap(), url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn control_api_drives_accounts_calendars_events_and_tokens() {
    let emu = start(false).await;
    let (s, acct) = control(
        &emu,
        "POST",
        "/accounts",
        Some(json!({"email": "sam@outlook.example", "name": "Sam", "mail": null})),
    )
    .await;
    assert_eq!(s, 201, "{acct}");
    assert!(acct["mail"].is_null());
    let (s, cal) = control(
        &emu,
        "POST",
        "/accounts/sam@outlook.example/calendars",
        Some(json!({"name": "Side", "color": "lightRed", "hexColor": "#e81123"})),
    )
    .await;
    assert_eq!(s, 201, "{cal}");
    let cal_id = cal["id"].as_str().unwrap().to_owned();
    let path = format!(
        "/accounts/sam@outlook.example/calendars/{}/events",
        pct(&cal_id)
    );
    let (s, ev) = control(
        &emu,
        "POST",
        &path,
        Some(json!({"subject": "Lunch", "start": {"dateTime": "2030-05-01T12:00:00", "timeZone": "Romance Standard Time"},
                    "end": {"dateTime": "2030-05-01T13:00:00", "timeZone": "Romance Standard Time"}})),
    )
    .await;
    assert_eq!(s, 201, "{ev}");
    assert_eq!(ev["type"], "singleInstance");
    let ev_id = ev["id"].as_str().unwrap().to_owned();
    let (s, patched) = control(
        &emu,
        "PATCH",
        &format!("{path}/{}", pct(&ev_id)),
        Some(json!({"showAs": "oof"})),
    )
    .await;
    assert_eq!(s, 200);
    assert_ne!(patched["changeKey"], ev["changeKey"]);

    // The event through Graph, by id.
    let token = access_token(&emu, "sam@outlook.example").await;
    let got = get(&emu, &token, &format!("/me/events/{}", pct(&ev_id)), &[]).await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.body["showAs"], "oof");

    let (s, _) = control(&emu, "DELETE", &format!("{path}/{}", pct(&ev_id)), None).await;
    assert_eq!(s, 204);
    let (s, body) = control(&emu, "DELETE", &format!("{path}/{}", pct(&ev_id)), None).await;
    assert_eq!(s, 404);
    assert_eq!(body["error"]["code"], "ErrorItemNotFound");

    let (s, _) = control(
        &emu,
        "POST",
        &format!(
            "/accounts/sam@outlook.example/calendars/{}/expire-delta-tokens",
            pct(&cal_id)
        ),
        Some(json!({"mode": "resync_required"})),
    )
    .await;
    assert_eq!(s, 204);
    let (s, settings) = control(
        &emu,
        "PUT",
        "/settings",
        Some(json!({"default_page_size": 3})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(settings["default_page_size"], 3);
    let (s, _) = control(&emu, "PUT", "/settings", Some(json!({"no_such_switch": 1}))).await;
    assert_eq!(s, 400);
    let (s, n) = control(
        &emu,
        "POST",
        "/tokens/expire-refresh",
        Some(json!({"reason": "consent_required"})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(n["expired"], 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn occurrences_can_be_edited_and_cancelled_through_the_control_api() {
    let emu = start(true).await;
    let now = jiff::Timestamp::now();
    let later = now
        .checked_add(jiff::SignedDuration::from_hours(24 * 40))
        .unwrap();
    let view = emu
        .ms_instances(MORGAN, MORGAN_CALENDAR, now, later)
        .unwrap();
    let occ: Vec<&Value> = view
        .iter()
        .filter(|i| i["seriesMasterId"] == MORGAN_WEEKLY && i["type"] == "occurrence")
        .collect();
    let (first, second) = (
        occ[0]["id"].as_str().unwrap(),
        occ[1]["id"].as_str().unwrap(),
    );
    let path = format!(
        "/accounts/{MORGAN}/calendars/{}/events",
        pct(MORGAN_CALENDAR)
    );
    let (s, ex) = control(
        &emu,
        "PATCH",
        &format!("{path}/{}", pct(first)),
        Some(json!({"location": {"displayName": "Elsewhere"}})),
    )
    .await;
    assert_eq!(s, 200, "{ex}");
    assert_eq!(ex["type"], "exception");
    assert_eq!(ex["id"], first, "an exception keeps its occurrence id");
    let (s, _) = control(&emu, "DELETE", &format!("{path}/{}", pct(second)), None).await;
    assert_eq!(s, 204);
    let view = emu
        .ms_instances(MORGAN, MORGAN_CALENDAR, now, later)
        .unwrap();
    assert!(view.iter().all(|i| i["id"] != second));
    let edited = view.iter().find(|i| i["id"] == first).unwrap();
    assert_eq!(edited["location"]["displayName"], "Elsewhere");
    emu.shutdown().await;
}

#[tokio::test]
async fn bad_input_never_gives_5xx() {
    let emu = start(true).await;
    let bearer = access_token(&emu, MORGAN).await;
    let graph = [
        "/me/calendarView?startDateTime=garbage&endDateTime=%ZZ",
        "/me/calendarView?startDateTime=2026-01-01&endDateTime=2025-01-01",
        "/me/calendars?$top=-1",
        "/me/calendars?$top=abc&$skip=99999999999999999999",
        "/me/calendars/%00%ff/calendarView/delta?startDateTime=2026-01-01&endDateTime=2026-02-01",
        "/me/calendarView/delta?$skiptoken=%E2%82%AC",
        "/me/calendarView/delta?$deltatoken=",
        "/me/events/AAMkAGOc%21%21",
        "/me/events/AAMkAGOcAAAA",
        "/me/nothing/here",
    ];
    for path in graph {
        let r = get(
            &emu,
            &bearer,
            path,
            &[
                "odata.maxpagesize=0",
                "outlook.timezone=\"Mars Standard Time\"",
            ],
        )
        .await;
        assert!(r.status < 500, "{path} -> {}", r.status);
        if r.status >= 400 {
            assert!(r.body["error"]["code"].is_string(), "{path}: {}", r.body);
        }
    }
    let r = http()
        .post(format!("{}/me", emu.microsoft().api_base))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["code"].is_string());

    let forms: [&[(&str, &str)]; 4] = [
        &[],
        &[
            ("grant_type", "password"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ],
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "nobody"),
        ],
        &[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ],
    ];
    for form in forms {
        let (status, body) = token(&emu, form).await;
        assert!((400..500).contains(&status), "{form:?} -> {status}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .starts_with("AADSTS"),
            "{body}"
        );
    }
    let r = http().get(emu.microsoft().token_url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error_codes"][0], 900561);
    let r = http()
        .get(format!(
            "{}/not-a-tenant!/oauth2/v2.0/authorize",
            emu.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    let (s, _) = control(
        &emu,
        "POST",
        &format!("/accounts/{MORGAN}/calendars/default/events"),
        Some(json!({"subject": "x", "start": {"dateTime": "nope"}})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = control(&emu, "POST", &format!("/accounts/{MORGAN}/calendars/default/events"), Some(json!({"subject": "x",
        "start": {"dateTime": "2030-01-01T00:00:00", "timeZone": "Nowhere/Else"}, "end": {"dateTime": "2030-01-01T01:00:00", "timeZone": "UTC"}}))).await;
    assert_eq!(s, 400);
    let (s, _) = control(&emu, "POST", &format!("/accounts/{MORGAN}/calendars/default/events"), Some(json!({"subject": "x",
        "start": {"dateTime": "2030-01-01T00:00:00", "timeZone": "UTC"}, "end": {"dateTime": "2030-01-01T01:00:00", "timeZone": "UTC"},
        "recurrence": {"pattern": {"type": "weekly"}, "range": {"type": "noEnd"}}}))).await;
    assert_eq!(s, 400);
    emu.shutdown().await;
}
