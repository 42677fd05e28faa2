//! Push notifications over real HTTP: watch → `sync`, a change → `exists`
//! with the X-Goog-* headers, stop → silence.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use axum::routing::post;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

/// A webhook receiver on a random port; records (state, message number, token).
async fn receiver() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap| {
            let s = s.clone();
            async move {
                let h = |k: &str| {
                    headers
                        .get(k)
                        .map(|v| v.to_str().unwrap().to_owned())
                        .unwrap_or_default()
                };
                assert!(
                    !h("x-goog-resource-id").is_empty()
                        && !h("x-goog-channel-expiration").is_empty()
                );
                assert_eq!(h("x-goog-channel-id"), "chan-1");
                s.lock().unwrap().push((
                    h("x-goog-resource-state"),
                    h("x-goog-message-number"),
                    h("x-goog-channel-token"),
                ));
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

async fn wait_for(seen: &Seen, n: usize) -> Vec<(String, String, String)> {
    for _ in 0..100 {
        if seen.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    seen.lock().unwrap().clone()
}

#[tokio::test]
async fn watch_sync_exists_and_stop() {
    let emu = start(true, true).await;
    let token = login(&emu, "alice@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (hook, seen) = receiver().await;
    let watch = format!("{}/calendars/primary/events/watch", emu.google().api_base);

    let resp = http()
        .post(&watch)
        .bearer_auth(&token)
        .json(&json!({"id": "chan-1", "type": "web_hook", "address": "http://example.com/hook"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let resp = http()
        .post(&watch)
        .bearer_auth(&token)
        .json(&json!({"id": "chan-1", "type": "web_hook", "address": hook, "token": "secret-tok", "params": {"ttl": "3600"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let channel: Value = resp.json().await.unwrap();
    assert_eq!(channel["kind"], "api#channel");
    let expiration: i64 = channel["expiration"].as_str().unwrap().parse().unwrap();
    assert!(expiration > 0);
    let got = wait_for(&seen, 1).await;
    assert_eq!(got[0], ("sync".into(), "1".into(), "secret-tok".into()));

    // The same id again is refused while the channel lives.
    let resp = http()
        .post(&watch)
        .bearer_auth(&token)
        .json(&json!({"id": "chan-1", "type": "web_hook", "address": hook}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let (status, _) = control(
        &emu,
        Method::POST,
        "/accounts/alice@example.com/calendars/primary/events",
        json!({
            "summary": "Pushed", "start": {"date": "2031-01-01"}, "end": {"date": "2031-01-02"}
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let got = wait_for(&seen, 2).await;
    assert_eq!(got[1].0, "exists");
    assert!(got[1].1.parse::<u64>().unwrap() > 1);

    let stop = format!("{}/channels/stop", emu.google().api_base);
    let resp = http()
        .post(&stop)
        .bearer_auth(&token)
        .json(&json!({"id": "chan-1", "resourceId": channel["resourceId"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    control(
        &emu,
        Method::POST,
        "/accounts/alice@example.com/calendars/primary/events",
        json!({
            "summary": "Silent", "start": {"date": "2031-01-03"}, "end": {"date": "2031-01-04"}
        }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(seen.lock().unwrap().len(), 2);
    let (_, log) = control(&emu, Method::GET, "/notifications", Value::Null).await;
    assert_eq!(log.as_array().unwrap().len(), 2);
    assert_eq!(log[0]["status"], 200);
    assert_eq!(emu.notifications().len(), 2);
}
