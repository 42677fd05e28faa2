//! Per-user quotas: a loop against "Sync now", the range query or connecting
//! is answered 429 with `Retry-After`, for that user only.
#![allow(clippy::unwrap_used)]

mod support;

use calsync_store::BackendKind;
use support::{error_code, json, TestApp};

on_both_backends!(loops_against_costly_requests_get_429_for_that_user_only);

async fn loops_against_costly_requests_get_429_for_that_user_only(kind: BackendKind) {
    let app = TestApp::start(kind).await.expect("the test server");
    let (mallory, alice) = (app.user_with_token("mallory"), app.user_with_token("alice"));
    let sync = |token: &str| app.post("/api/calendar/sync/", token).send();
    for _ in 0..30 {
        assert_eq!(sync(&mallory).await.unwrap().status(), 202);
    }
    let refused = sync(&mallory).await.unwrap();
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let (status, body) = json(refused).await;
    assert_eq!((status, error_code(&body).as_str()), (429, "rate_limited"));
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_eq!(
        sync(&alice).await.unwrap().status(),
        202,
        "alice is not slowed"
    );

    let range = "/api/calendar/events/?start=2026-01-01T00:00:00Z&end=2026-02-01T00:00:00Z";
    let mut statuses = Vec::new();
    for _ in 0..130 {
        statuses.push(
            app.get(range, &mallory)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert!(statuses[..120].iter().all(|s| *s == 200), "{statuses:?}");
    assert!(statuses[120..].contains(&429), "{statuses:?}");
    assert_eq!(app.get(range, &alice).send().await.unwrap().status(), 200);

    // Each connect makes the server fetch for the user: ten, then a wait.
    let subscribe = |token: &str| {
        app.post("/api/calendar/ics/subscribe/", token)
            .json(&serde_json::json!({"url": "not a feed address"}))
            .send()
    };
    for _ in 0..10 {
        assert_eq!(subscribe(&mallory).await.unwrap().status(), 422);
    }
    let (status, body) = json(subscribe(&mallory).await.unwrap()).await;
    assert_eq!((status, error_code(&body).as_str()), (429, "rate_limited"));
    assert_eq!(subscribe(&alice).await.unwrap().status(), 422);
}
