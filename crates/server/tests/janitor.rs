//! The janitor of a running server: expired sessions and OAuth states go,
//! and sync runs are trimmed per connection, while live rows stay.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use calsync_core::model::{Provider, UserId};
use calsync_store::testing;
use calsync_store::{BackendKind, OAuthState, Store};
use jiff::Timestamp;
use secrecy::SecretString;
use support::TestApp;

on_both_backends!(expired_rows_and_old_sync_runs_are_cleaned_up);

async fn count(store: &Store, sql: &str) -> i64 {
    testing::fetch_text(store, &format!("SELECT CAST(({sql}) AS TEXT)"))
        .await
        .unwrap()
        .parse()
        .unwrap()
}

async fn expired_rows_and_old_sync_runs_are_cleaned_up(kind: BackendKind) {
    let mut app = TestApp::start(kind).await.expect("the test server");
    app.add_user("alice");
    let (live_cookie, _) = app.login("alice").await;
    let store = app.store().await;
    let alice = store.user_by_name("alice").await.unwrap().id.0;
    for n in 0..3 {
        testing::execute(
            &store,
            &format!(
                "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at) \
                 VALUES ('expired-{n}', {alice}, 'x', 1, 2)"
            ),
        )
        .await;
        let flow = OAuthState {
            user_id: UserId(alice),
            provider: Provider::Google,
            pkce_verifier: SecretString::from("verifier"),
            expires_at: Timestamp::from_second(2).unwrap(),
        };
        store
            .create_oauth_state(
                &format!("old-{n}"),
                &flow,
                Timestamp::from_second(1).unwrap(),
            )
            .await
            .unwrap();
    }
    testing::execute(
        &store,
        &format!(
            "INSERT INTO connections (user_id, provider, account_id, status, created_at, updated_at, next_sync_at) \
             VALUES ({alice}, 'ics', 'feed', 'needs_reauth', 1, 1, 1)"
        ),
    )
    .await;
    let connection = count(&store, "SELECT MAX(id) FROM connections").await;
    for _ in 0..130 {
        testing::execute(
            &store,
            &format!("INSERT INTO sync_runs (connection_id, started_at) VALUES ({connection}, 1)"),
        )
        .await;
    }

    // The janitor runs at start: a restart brings it round at once.
    app.kill();
    let app = app.restarted();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = (
            count(
                &store,
                "SELECT COUNT(*) FROM sessions WHERE token_hash LIKE 'expired-%'",
            )
            .await,
            count(&store, "SELECT COUNT(*) FROM oauth_states").await,
            count(&store, "SELECT COUNT(*) FROM sync_runs").await,
        );
        if left == (0, 0, 100) {
            break;
        }
        assert!(Instant::now() < deadline, "not cleaned up: {left:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM sessions").await,
        1,
        "the live session stays"
    );
    let settings = app
        .http
        .get(app.url("/settings"))
        .header("Cookie", &live_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(settings.status(), 200, "still logged in");
}
