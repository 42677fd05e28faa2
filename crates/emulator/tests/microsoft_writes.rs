//! Graph event writes over HTTP: scope and read-only calendar checks,
//! transactionId de-duplication, If-Match, and delta seeing the writes.
#![allow(clippy::unwrap_used)]

mod ms_common;

use calsync_emulator::samples::{MORGAN, MORGAN_TEAM};
use ms_common::*;
use serde_json::{json, Value};

async fn send(
    method: &str,
    url: String,
    token: &str,
    body: Option<Value>,
    if_match: Option<&str>,
) -> (u16, Value) {
    let mut req = http()
        .request(method.parse().unwrap(), url)
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    if let Some(m) = if_match {
        req = req.header("If-Match", m);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn writes_need_readwrite_and_respect_etags() {
    let emu = start(true).await;
    let api = emu.microsoft().api_base;
    let event = json!({"subject": "Planning", "transactionId": "tx-1",
        "start": {"dateTime": "2030-03-03T09:00:00", "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": "2030-03-03T10:00:00", "timeZone": "W. Europe Standard Time"}});

    let read_only = access_token(&emu, MORGAN).await;
    let (s, body) = send(
        "POST",
        format!("{api}/me/events"),
        &read_only,
        Some(event.clone()),
        None,
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(body["error"]["code"], "ErrorAccessDenied");

    let resp = authorize(
        &emu,
        &[
            ("login_hint", MORGAN),
            ("scope", "offline_access User.Read Calendars.ReadWrite"),
        ],
    )
    .await;
    let code = param(&location_params(&resp), "code").unwrap().to_owned();
    let token = redeem(&emu, &code).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let (s, created) = send(
        "POST",
        format!("{api}/me/events"),
        &token,
        Some(event.clone()),
        None,
    )
    .await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["type"], "singleInstance");
    assert_eq!(
        created["@odata.etag"],
        format!("W/\"{}\"", created["changeKey"].as_str().unwrap())
    );
    let (s, retried) = send(
        "POST",
        format!("{api}/me/events"),
        &token,
        Some(event.clone()),
        None,
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(
        retried["id"], created["id"],
        "transactionId de-duplicates a retried POST"
    );

    let id = pct(created["id"].as_str().unwrap());
    let (s, body) = send(
        "PATCH",
        format!("{api}/me/events/{id}"),
        &token,
        Some(json!({"subject": "x"})),
        Some("W/\"stale\""),
    )
    .await;
    assert_eq!(s, 412);
    assert_eq!(body["error"]["code"], "ErrorIrresolvableConflict");
    let etag = created["@odata.etag"].as_str().unwrap();
    let (s, updated) = send(
        "PATCH",
        format!("{api}/me/events/{id}"),
        &token,
        Some(json!({"subject": "Planning v2"})),
        Some(etag),
    )
    .await;
    assert_eq!(s, 200);
    assert_ne!(updated["changeKey"], created["changeKey"]);

    let (s, _) = send(
        "POST",
        format!("{api}/me/calendars/{}/events", pct(MORGAN_TEAM)),
        &token,
        Some(event),
        None,
    )
    .await;
    assert_eq!(s, 403, "a calendar shared read-only");

    let (s, _) = send(
        "DELETE",
        format!("{api}/me/events/{id}"),
        &token,
        None,
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, body) = send("GET", format!("{api}/me/events/{id}"), &token, None, None).await;
    assert_eq!(s, 404);
    assert_eq!(body["error"]["code"], "ErrorItemNotFound");
    emu.shutdown().await;
}
