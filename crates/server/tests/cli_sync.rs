//! `calsync sync` from a second terminal while the server runs: exactly the
//! connections asked for get a round, now.
#![allow(clippy::unwrap_used)]

mod support;

use calsync_store::BackendKind;
use serde_json::json;
use support::feeds::{feed_server, feed_with};
use support::{json, TestApp};

on_both_backends!(sync_runs_exactly_the_connections_asked_for);

async fn sync_runs_exactly_the_connections_asked_for(kind: BackendKind) {
    let app = TestApp::start_with(
        kind,
        &[
            ("CALSYNC_ALLOW_PRIVATE_ADDRESSES", "true"),
            ("CALSYNC_SYNC_INTERVAL", "1h"),
        ],
    )
    .await
    .expect("the test server");
    let (base, feeds) = feed_server().await;
    let mut tokens = Vec::new();
    for name in ["alice", "bob"] {
        feeds
            .lock()
            .unwrap()
            .bodies
            .insert(format!("{name}.ics"), feed_with(name, &format!("{name} 1")));
        let token = app.user_with_token(name);
        let (status, body) = json(
            app.post("/api/calendar/ics/subscribe/", &token)
                .json(&json!({ "url": format!("{base}/{name}.ics") }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        app.wait_for_sync(&token).await;
        tokens.push(token);
    }
    let requests = |name: &str| feeds.lock().unwrap().requests[&format!("{name}.ics")];
    let before = (requests("alice"), requests("bob"));

    let sync = |args: &[&str]| {
        let out = app
            .command()
            .env("CALSYNC_ALLOW_PRIVATE_ADDRESSES", "true")
            .arg("sync")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let said = sync(&["--user", "alice"]);
    assert!(said.contains("synced 1 of 1"), "{said}");
    assert_eq!(
        (requests("alice"), requests("bob")),
        (before.0 + 1, before.1),
        "alice's feed only"
    );

    let (_, bobs) = json(
        app.get("/api/calendar/connections/", &tokens[1])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let bob_connection = bobs[0]["id"].as_i64().unwrap().to_string();
    feeds
        .lock()
        .unwrap()
        .bodies
        .insert("bob.ics".into(), feed_with("bob", "bob 2"));
    let said = sync(&["--connection", &bob_connection]);
    assert!(said.contains("synced 1 of 1"), "{said}");
    assert_eq!(
        (requests("alice"), requests("bob")),
        (before.0 + 1, before.1 + 1)
    );
    let titles: Vec<String> = app
        .upcoming(&tokens[1], "limit=10")
        .await
        .iter()
        .map(|e| e["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(titles, ["bob 2"]);

    let said = sync(&[]);
    assert!(said.contains("synced 2 of 2"), "{said}");
}
