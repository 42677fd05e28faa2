//! The connect flows' safety rules through the real binary (issue 13):
//! CalDAV over plain http needs consent and is shown as unencrypted;
//! `webcal://` falls back to plain http and says so; a feed's account id is
//! a keyed digest, and rows keyed the old way move to it; a failing OAuth
//! code exchange is sent once; an id_token for another client is refused;
//! a password typed as a username never reaches the log; secrets are no
//! command-line flags.
#![allow(clippy::unwrap_used)]

#[path = "../../providers/tests/support/radicale.rs"]
mod radicale;
mod support;

use calsync_core::model::Provider;
use calsync_emulator::Fault;
use calsync_store::{BackendKind, NewConnection};
use radicale::{calendar, event_block, Radicale};
use secrecy::SecretString;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use support::feeds::{feed_server, feed_with};
use support::google::GoogleApp;
use support::{error_code, json, post_and_follow, TestApp, PASSWORD};

on_both_backends!(
    caldav_over_plain_http_needs_consent,
    an_unencrypted_caldav_account_is_shown_as_such,
    a_webcal_feed_without_tls_is_fetched_over_http_and_shown,
    feed_identities_are_keyed_and_old_rows_move_to_them,
    a_failing_code_exchange_is_sent_once,
    an_id_token_for_another_client_is_refused,
    a_password_typed_as_a_username_never_reaches_the_log,
);

const DAV_PASSWORD: &str = "dav-app-password-5150";

async fn caldav_connect(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    json(
        app.post("/api/calendar/caldav/connect/", token)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn connections(app: &TestApp, token: &str) -> Vec<Value> {
    let (status, list) = json(
        app.get("/api/calendar/connections/", token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{list}");
    list.as_array().unwrap().clone()
}

async fn page(app: &TestApp, cookie: &str, path: &str) -> String {
    app.http
        .get(app.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn caldav_over_plain_http_needs_consent(kind: BackendKind) {
    // Private addresses refused (the default): plain http needs the user's word.
    let Some(app) = TestApp::start(kind).await else {
        return;
    };
    let token = app.user_with_token("alice");
    let body = |url: &str, allow: Option<bool>| {
        let mut body = json!({"server_url": url, "username": "alice", "password": DAV_PASSWORD});
        if let Some(allow) = allow {
            body["allow_insecure"] = json!(allow);
        }
        body
    };
    for refused in [
        body("http://caldav.invalid/dav/", None),
        body("HTTP://caldav.invalid/", Some(false)),
    ] {
        let (status, answer) = caldav_connect(&app, &token, refused.clone()).await;
        assert_eq!(
            (status, error_code(&answer).as_str()),
            (422, "insecure_url"),
            "{refused}: {answer}"
        );
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("https://") && message.contains("allow_insecure"),
            "says what to do: {message}"
        );
    }
    // With consent the URL passes this check and discovery runs (and fails:
    // the name does not resolve); without a scheme https is assumed.
    for passed in [
        body("http://caldav.invalid/dav/", Some(true)),
        body("caldav.invalid", None),
    ] {
        let (status, answer) = caldav_connect(&app, &token, passed.clone()).await;
        assert_ne!(error_code(&answer), "insecure_url", "{passed}: {answer}");
        assert!(status >= 400, "{passed}: {answer}");
    }
    // An address that cannot be used at all is refused as such, consent or not.
    let (status, answer) =
        caldav_connect(&app, &token, body("http://127.0.0.1:9/", Some(true))).await;
    assert_eq!(
        (status, error_code(&answer).as_str()),
        (422, "invalid_url"),
        "{answer}"
    );
    assert!(connections(&app, &token).await.is_empty());

    // The page's form: the checkbox with its warning, and the refusal's advice.
    app.add_user("bob");
    let (cookie, csrf) = app.login("bob").await;
    let settings = page(&app, &cookie, "/settings").await;
    assert!(
        settings.contains("id=\"caldav-insecure\"") && settings.contains("name=\"allow_insecure\""),
        "the form has the checkbox"
    );
    assert!(settings.contains("readable by anyone on the network path"));
    let refused = post_and_follow(
        &app,
        &cookie,
        "/settings/caldav",
        &[
            ("csrf_token", &csrf),
            ("server_url", "http://caldav.invalid/"),
            ("username", "bob"),
            ("password", DAV_PASSWORD),
        ],
    )
    .await;
    assert!(
        refused.contains("your password would travel unencrypted")
            && refused.contains("Allow an unencrypted connection"),
        "{refused}"
    );
    let ticked = post_and_follow(
        &app,
        &cookie,
        "/settings/caldav",
        &[
            ("csrf_token", &csrf),
            ("server_url", "http://caldav.invalid/"),
            ("username", "bob"),
            ("password", DAV_PASSWORD),
            ("allow_insecure", "true"),
        ],
    )
    .await;
    assert!(
        !ticked.contains("your password would travel unencrypted")
            && ticked.contains("class=\"notice error\""),
        "consent given: the check passes, discovery fails: {ticked}"
    );
    assert!(!app.log_text().contains(DAV_PASSWORD));
}

async fn an_unencrypted_caldav_account_is_shown_as_such(kind: BackendKind) {
    let Some(rad) = Radicale::start(&[("alice", DAV_PASSWORD)]) else {
        return;
    };
    let Some(app) = TestApp::start_with(
        kind,
        &[
            ("CALSYNC_ALLOW_PRIVATE_ADDRESSES", "true"),
            ("CALSYNC_SYNC_INTERVAL", "1h"),
        ],
    )
    .await
    else {
        return;
    };
    rad.mkcalendar("alice", "work", "Work", None, &[]).await;
    rad.put(
        "alice",
        "work",
        "a.ics",
        &calendar(&[event_block(
            "a@dav",
            "Plain text standup",
            "20990101T090000Z",
            "20990101T100000Z",
            &[],
        )]),
    )
    .await;
    let token = app.user_with_token("alice");
    let (status, created) = caldav_connect(
        &app,
        &token,
        json!({"server_url": rad.base_url(), "username": "alice", "password": DAV_PASSWORD,
               "allow_insecure": true}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["insecure"], json!(true), "{created}");
    let id = created["id"].as_i64().unwrap();
    let listed = app.wait_for_sync(&token).await;
    assert_eq!(listed[0]["insecure"], json!(true));
    assert_eq!(listed[0]["status"], json!("ok"), "{listed}");

    let (cookie, _) = app.login("alice").await;
    let settings = page(&app, &cookie, "/settings").await;
    let badge = format!("id=\"connection-{id}-insecure\"");
    assert!(settings.contains(&badge), "{settings}");
    assert!(settings.contains("Not encrypted: this server is reached over plain http://"));
    assert!(!app.log_text().contains(DAV_PASSWORD));
}

/// A feed URL as the test feed server serves it, with another scheme.
fn with_scheme(http_url: &str, scheme: &str) -> String {
    http_url.replacen("http://", &format!("{scheme}://"), 1)
}

async fn subscribe(app: &TestApp, token: &str, url: &str) -> (u16, Value) {
    json(
        app.post("/api/calendar/ics/subscribe/", token)
            .json(&json!({"url": url}))
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn a_webcal_feed_without_tls_is_fetched_over_http_and_shown(kind: BackendKind) {
    let Some(app) = TestApp::start_with(
        kind,
        &[
            ("CALSYNC_ALLOW_PRIVATE_ADDRESSES", "true"),
            ("CALSYNC_SYNC_INTERVAL", "1h"),
        ],
    )
    .await
    else {
        return;
    };
    let (base, feeds) = feed_server().await;
    feeds
        .lock()
        .unwrap()
        .bodies
        .insert("club-k3y".into(), feed_with("m@club", "Club meeting"));
    let plain = format!("{base}/club-k3y");
    let token = app.user_with_token("alice");

    // https only: no TLS server there, and no fallback for an explicit https.
    let (status, answer) = subscribe(&app, &token, &with_scheme(&plain, "https")).await;
    assert_eq!(
        (status, error_code(&answer).as_str()),
        (502, "provider_error")
    );
    assert!(connections(&app, &token).await.is_empty());

    // webcal: https first, then plain http, which serves the feed.
    let (status, created) = subscribe(&app, &token, &with_scheme(&plain, "webcal")).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["insecure"], json!(true), "{created}");
    let id = created["id"].as_i64().unwrap();
    let listed = app.wait_for_sync(&token).await;
    assert_eq!(listed[0]["status"], json!("ok"), "{listed}");
    let titles: Vec<String> = app
        .upcoming(&token, "limit=50&days=30")
        .await
        .iter()
        .map(|e| e["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(titles, ["Club meeting"]);

    // The same feed typed as http:// is the same connection.
    let (status, again) = subscribe(&app, &token, &plain).await;
    assert_eq!((status, again["id"].as_i64()), (201, Some(id)), "{again}");
    assert_eq!(connections(&app, &token).await.len(), 1);

    // Settings says the feed comes without TLS.
    let (cookie, _) = app.login("alice").await;
    let settings = page(&app, &cookie, "/settings").await;
    assert!(
        settings.contains(&format!("id=\"connection-{id}-insecure\""))
            && settings.contains("this feed is fetched over plain http://"),
        "{settings}"
    );

    // The row: keyed by the scheme it is fetched over and a keyed digest,
    // neither the URL nor its plain SHA-256.
    let store = app.store().await;
    let user = store.user_by_name("alice").await.unwrap();
    let rows = store.list_connections(user.id).await.unwrap();
    let account = &rows[0].connection.account_id;
    assert!(account.starts_with("http:"), "{account}");
    assert_eq!(account.len(), "http:".len() + 64, "{account}");
    for plain_digest in [
        sha256_hex(&plain),
        sha256_hex(&with_scheme(&plain, "https")),
    ] {
        assert!(!account.contains(&plain_digest), "{account}");
    }
    assert!(!account.contains("club-k3y"));
    assert!(
        !app.log_text().contains("club-k3y"),
        "the feed URL stays out of the log"
    );
}

async fn feed_identities_are_keyed_and_old_rows_move_to_them(kind: BackendKind) {
    let Some(app) = TestApp::start_with(
        kind,
        &[
            ("CALSYNC_ALLOW_PRIVATE_ADDRESSES", "true"),
            ("CALSYNC_SYNC_INTERVAL", "1h"),
        ],
    )
    .await
    else {
        return;
    };
    let (base, feeds) = feed_server().await;
    feeds
        .lock()
        .unwrap()
        .bodies
        .insert("legacy".into(), feed_with("l@legacy", "Legacy event"));
    let url = format!("{base}/legacy");
    let token = app.user_with_token("alice");

    // A subscription as calsync stored it before: keyed by the URL's SHA-256.
    let store = app.store().await;
    let user = store.user_by_name("alice").await.unwrap();
    let legacy = sha256_hex(&url);
    let old_id = store
        .upsert_connection(
            &NewConnection {
                user_id: user.id,
                provider: Provider::Ics,
                account_id: legacy.clone(),
                account_email: Some("Legacy feed".into()),
                access_token: Some(SecretString::from(url.clone())),
                refresh_token: None,
                token_expires_at: None,
                scopes: String::new(),
            },
            jiff::Timestamp::now(),
        )
        .await
        .unwrap();
    let listed = app.sync(&token).await;
    assert_eq!(
        listed[0]["status"],
        json!("ok"),
        "the old row syncs: {listed}"
    );
    assert_eq!(listed[0]["insecure"], json!(false), "unknown for old rows");

    // Subscribing to it again updates that connection, under the new identity.
    let (status, again) = subscribe(&app, &token, &url).await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["id"].as_i64(), Some(old_id.0));
    assert_eq!(again["insecure"], json!(true));
    let rows = store.list_connections(user.id).await.unwrap();
    assert_eq!(rows.len(), 1);
    let account = rows[0].connection.account_id.clone();
    assert_ne!(account, legacy);
    assert!(
        account.starts_with("http:") && !account.contains(&legacy),
        "{account}"
    );
    // Its sealed URL moved with it: it still opens and syncs.
    let tokens = store.connection_tokens(user.id, old_id).await.unwrap();
    assert!(tokens.access_token.is_some());
    let listed = app.wait_for_sync(&token).await;
    assert_eq!(listed[0]["status"], json!("ok"), "{listed}");
    let titles: Vec<String> = app
        .upcoming(&token, "limit=50&days=30")
        .await
        .iter()
        .map(|e| e["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(titles, ["Legacy event"]);

    // And once more: still that one connection, identity unchanged.
    let (_, third) = subscribe(&app, &token, &with_scheme(&url, "webcal")).await;
    assert_eq!(third["id"].as_i64(), Some(old_id.0));
    let rows = store.list_connections(user.id).await.unwrap();
    assert_eq!(
        (rows.len(), rows[0].connection.account_id.as_str()),
        (1, account.as_str())
    );

    // Another user's subscription to the same feed is theirs alone.
    let bob = app.user_with_token("bob");
    let (status, theirs) = subscribe(&app, &bob, &url).await;
    assert_eq!(status, 201);
    assert_ne!(theirs["id"].as_i64(), Some(old_id.0));
    assert_eq!(connections(&app, &token).await.len(), 1);
}

async fn google_app(kind: BackendKind) -> Option<(GoogleApp, String, String)> {
    let google = GoogleApp::start(kind).await?;
    let token = google.app.user_with_token("alice");
    let (cookie, _) = google.app.login("alice").await;
    Some((google, token, cookie))
}

fn token_requests(google: &GoogleApp) -> usize {
    google
        .emulator
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/token")
        .count()
}

async fn a_failing_code_exchange_is_sent_once(kind: BackendKind) {
    let Some((google, token, cookie)) = google_app(kind).await else {
        return;
    };
    for fault in [
        Fault {
            path_prefix: "/token".into(),
            status: Some(503),
            ..Fault::default()
        },
        Fault {
            path_prefix: "/token".into(),
            drop_connection: true,
            ..Fault::default()
        },
    ] {
        // One faulty answer only: a retry would succeed and connect.
        google.emulator.inject_fault(fault.clone()).unwrap();
        let before = token_requests(&google);
        let back = google.connect(&cookie, "alice@example.com").await;
        assert_eq!(back, "/settings?error=exchange_failed", "{fault:?}");
        assert_eq!(token_requests(&google) - before, 1, "{fault:?}: sent once");
        assert!(connections(&google.app, &token).await.is_empty());
    }
    let settings = page(&google.app, &cookie, "/settings?error=exchange_failed").await;
    assert!(settings.contains("A sign-in can be finished only once, so please connect again."));
    let log = google.app.log_text();
    assert!(
        log.contains("start connecting again"),
        "the reason is logged"
    );

    // Without a fault the same flow connects.
    let back = google.connect(&cookie, "alice@example.com").await;
    assert_eq!(back, "/settings?connected=google");
    let listed = connections(&google.app, &token).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["insecure"], json!(false));
}

async fn an_id_token_for_another_client_is_refused(kind: BackendKind) {
    let Some((google, token, cookie)) = google_app(kind).await else {
        return;
    };
    for (claim, value) in [
        ("aud", json!("someone-else.apps.googleusercontent.com")),
        ("iss", json!("https://accounts.google.com.evil.example")),
        ("exp", json!(1_000_000_000)),
    ] {
        google.emulator.update_settings(|s| {
            s.id_token_claims.clear();
            s.id_token_claims.insert(claim.to_owned(), value.clone());
        });
        let back = google.connect(&cookie, "alice@example.com").await;
        assert_eq!(back, "/settings?error=provider_error", "{claim}={value}");
        assert!(
            connections(&google.app, &token).await.is_empty(),
            "{claim}={value}: nothing connected"
        );
    }
    assert!(google.app.log_text().contains("invalid_id_token"));
    let userinfo = google
        .emulator
        .requests()
        .iter()
        .filter(|r| r.path.contains("userinfo"))
        .count();
    assert_eq!(
        userinfo, 0,
        "a bad id_token is not passed over for userinfo"
    );

    // The emulator's own tokens are right: connecting works.
    google
        .emulator
        .update_settings(|s| s.id_token_claims.clear());
    let back = google.connect(&cookie, "alice@example.com").await;
    assert_eq!(back, "/settings?connected=google");
    assert_eq!(connections(&google.app, &token).await.len(), 1);
}

async fn a_password_typed_as_a_username_never_reaches_the_log(kind: BackendKind) {
    let Some(app) = TestApp::start(kind).await else {
        return;
    };
    app.add_user("alice");
    let typed = "Tr0ub4dor&3-not-a-name";
    let forged = "x\nINFO calsync: forged-line admin logged in";
    for username in [typed, forged] {
        let response = app
            .http
            .post(app.url("/login"))
            .header("Origin", "http://localhost:8000")
            .form(&[("username", username), ("password", "whatever")])
            .send()
            .await
            .unwrap();
        assert!(
            matches!(response.status().as_u16(), 401 | 429),
            "{}",
            response.status()
        );
    }
    // A known user's failed login names the user.
    let response = app
        .http
        .post(app.url("/login"))
        .header("Origin", "http://localhost:8000")
        .form(&[("username", "alice"), ("password", "not-her-password")])
        .send()
        .await
        .unwrap();
    assert!(matches!(response.status().as_u16(), 401 | 429));
    // Her right password still works (and is not logged either).
    app.login("alice").await;
    let log = app.log_text();
    for secret in ["Tr0ub4dor", "forged-line", "not-her-password", PASSWORD] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
    assert!(
        log.contains("login failed for an unknown username"),
        "{log}"
    );
    assert!(log.contains("username=\"alice\""), "{log}");
}

#[test]
fn secrets_are_no_command_line_flags() {
    for (flag, value) in [
        ("--encryption-key", "c2VjcmV0LWtleS1tYXRlcmlhbA=="),
        ("--google_client_secret", "flag-google-secret"),
        ("--microsoft_client_secret", "flag-ms-secret"),
    ] {
        let out = std::process::Command::new(support::binary())
            .env_clear()
            .args([flag, value, "openapi"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flag} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("unexpected argument"), "{flag}: {stderr}");
    }
    let help = std::process::Command::new(support::binary())
        .env_clear()
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(help.status.success(), "{text}");
    assert!(
        !text.contains("--encryption-key") && !text.contains("client_secret"),
        "{text}"
    );
    assert!(
        text.contains("--google_client_id"),
        "the other settings stay flags: {text}"
    );
}
