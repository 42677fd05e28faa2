//! Accounts a user manages, against the real binary on both databases: API
//! tokens (create, list, revoke, expire; children revoked with their
//! parent), `/api/me/`, changing the password from Settings, deleting the
//! account with every row of it (and its Google grant revoked at the
//! emulator), and the CLI's `user passwd|delete` and `token list|revoke`.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use calsync_core::model::UserId;
use calsync_emulator::samples::ALICE;
use calsync_server::accounts::hash_token;
use calsync_store::testing;
use calsync_store::{BackendKind, Store};
use serde_json::{json, Value};
use support::google::{GoogleApp, CLIENT_ID, CLIENT_SECRET};
use support::{error_code, json, TestApp, PASSWORD};

on_both_backends!(
    api_tokens_are_created_listed_revoked_and_expire,
    the_settings_page_creates_shows_once_and_revokes_tokens,
    me_is_read_and_patched_with_checked_values,
    changing_the_password_ends_the_other_sessions,
    deleting_the_account_removes_every_row_and_revokes_google,
    the_cli_changes_passwords_lists_and_revokes_tokens_and_deletes_users,
);

const ORIGIN: &str = "http://localhost:8000";
const NEW_PASSWORD: &str = "a brand new passphrase";

/// A request with the browser session: cookie, and on writes `Origin` and
/// the CSRF header.
fn with_session(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    (cookie, csrf): &(String, String),
) -> reqwest::RequestBuilder {
    let request = app
        .http
        .request(method.clone(), app.url(path))
        .header("cookie", cookie);
    if method == reqwest::Method::GET {
        request
    } else {
        request
            .header("origin", ORIGIN)
            .header("x-csrf-token", csrf)
    }
}

/// Posts a Settings form the way the page does.
async fn post_form(
    app: &TestApp,
    cookie: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    app.http
        .post(app.url(path))
        .header("cookie", cookie)
        .header("origin", ORIGIN)
        .form(fields)
        .send()
        .await
        .unwrap()
}

/// Where a form's 303 goes and the flash message it carries (`ok`, text).
fn flash(response: &reqwest::Response) -> (String, bool, String) {
    assert_eq!(response.status(), 303, "a form answers with a redirect");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let value = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find_map(|c| c.strip_prefix("calsync_flash="))
        .map(|c| c.split(';').next().unwrap().to_owned())
        .expect("a flash message");
    let ok = value.starts_with('o');
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(&value[1..]).unwrap()).unwrap();
    (location, ok, text)
}

/// Logs in through the form with `password`; the cookies and CSRF token, or
/// the status of a refused login.
async fn login_with(app: &TestApp, name: &str, password: &str) -> Result<(String, String), u16> {
    let response = app
        .http
        .post(app.url("/login"))
        .header("origin", ORIGIN)
        .form(&[("username", name), ("password", password)])
        .send()
        .await
        .unwrap();
    if response.status() != 303 {
        return Err(response.status().as_u16());
    }
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect();
    let csrf = cookies
        .iter()
        .find_map(|c| c.strip_prefix("calsync_csrf="))
        .unwrap()
        .to_owned();
    Ok((cookies.join("; "), csrf))
}

/// Whether a session cookie still opens Settings.
async fn session_works(app: &TestApp, cookie: &str) -> bool {
    let response = app
        .http
        .get(app.url("/settings"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    match response.status().as_u16() {
        200 => true,
        303 => false,
        other => panic!("GET /settings answered {other}"),
    }
}

/// The status a bearer token gets from `/api/me/`.
async fn token_status(app: &TestApp, token: &str) -> u16 {
    app.get("/api/me/", token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn api_tokens_are_created_listed_revoked_and_expire(kind: BackendKind) {
    let Some(app) = TestApp::start(kind).await else {
        return;
    };
    let cli_token = app.user_with_token("alice");
    let bob_token = app.user_with_token("bob");
    let session = app.login("alice").await;

    // Created with the browser session (and its CSRF token): shown once.
    let (status, page_token) = json(
        with_session(&app, reqwest::Method::POST, "/api/tokens/", &session)
            .json(&json!({"name": "  laptop  ", "expires_in_days": 30}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{page_token}");
    let secret = page_token["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("cst_") && secret.len() > 40);
    assert_eq!(page_token["name"], "laptop");
    assert_eq!(
        (
            &page_token["parent_id"],
            &page_token["last_used_at"],
            &page_token["expired"]
        ),
        (&Value::Null, &Value::Null, &json!(false))
    );
    let expires: jiff::Timestamp = page_token["expires_at"].as_str().unwrap().parse().unwrap();
    let in_30_days = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 30);
    assert!(
        (expires - in_30_days).get_seconds().abs() < 120,
        "{expires}"
    );
    assert_eq!(token_status(&app, &secret).await, 200);

    // Created with a bearer token: a child of it.
    let (status, child) = json(
        app.post("/api/tokens/", &cli_token)
            .json(&json!({"name": "script"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{child}");
    let child_secret = child["token"].as_str().unwrap().to_owned();
    // A child never outlives its parent: made with the 30-day token, its
    // expiry is capped at the parent's.
    let (status, capped) = json(
        app.post("/api/tokens/", &secret)
            .json(&json!({"name": "capped", "expires_in_days": 365}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{capped}");
    assert_eq!(capped["expires_at"], page_token["expires_at"]);
    assert_eq!(capped["parent_id"], page_token["id"]);

    // Listed newest first, never with a token or its hash.
    let response = app.get("/api/tokens/", &cli_token).send().await.unwrap();
    let text = response.text().await.unwrap();
    for token in [
        cli_token.as_str(),
        secret.as_str(),
        child_secret.as_str(),
        capped["token"].as_str().unwrap(),
    ] {
        assert!(!text.contains(token), "a token is listed: {text}");
        assert!(
            !text.contains(&hash_token(token)),
            "a hash is listed: {text}"
        );
    }
    let listed: Value = serde_json::from_str(&text).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["capped", "script", "laptop", "cli"]);
    let cli_id = listed[3]["id"].as_i64().unwrap();
    let mut keys: Vec<&str> = listed[3]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "created_at",
            "expired",
            "expires_at",
            "id",
            "last_used_at",
            "name",
            "parent_id"
        ]
    );
    assert!(
        listed[3]["last_used_at"].is_string(),
        "its use was recorded"
    );
    assert_eq!(listed[1]["parent_id"].as_i64(), Some(cli_id));

    // Bob sees only his own and cannot revoke Alice's: 404 as for nothing.
    let (_, bobs) = json(app.get("/api/tokens/", &bob_token).send().await.unwrap()).await;
    assert_eq!(bobs.as_array().unwrap().len(), 1);
    let page_id = page_token["id"].as_i64().unwrap();
    for id in [page_id, 999_999] {
        let (status, body) = json(
            app.http
                .delete(app.url(&format!("/api/tokens/{id}/")))
                .bearer_auth(&bob_token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((status, error_code(&body)), (404, "not_found".to_owned()));
    }
    assert_eq!(token_status(&app, &secret).await, 200);

    // Revoking the CLI token revokes the child made with it, at once.
    let revoked = app
        .http
        .delete(app.url(&format!("/api/tokens/{cli_id}/")))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    assert_eq!(token_status(&app, &cli_token).await, 401);
    assert_eq!(token_status(&app, &child_secret).await, 401);
    assert_eq!(token_status(&app, &secret).await, 200);

    // An expired token is refused exactly like an unknown one.
    let unknown = app.get("/api/me/", "cst_nothing").send().await.unwrap();
    let unknown = (
        unknown.status(),
        unknown.headers().get("www-authenticate").cloned(),
        unknown.text().await.unwrap(),
    );
    let store = app.store().await;
    testing::execute(
        &store,
        &format!(
            "UPDATE api_tokens SET expires_at = {} WHERE id = {page_id}",
            jiff::Timestamp::now().as_second() - 1
        ),
    )
    .await;
    let expired = app.get("/api/me/", &secret).send().await.unwrap();
    let expired = (
        expired.status(),
        expired.headers().get("www-authenticate").cloned(),
        expired.text().await.unwrap(),
    );
    assert_eq!(expired, unknown);
    assert_eq!(expired.0, 401);
    // ... and so is its child, whose expiry was capped at its parent's.
    testing::execute(
        &store,
        &format!(
            "UPDATE api_tokens SET expires_at = {} WHERE parent_id = {page_id}",
            jiff::Timestamp::now().as_second() - 1
        ),
    )
    .await;
    assert_eq!(
        token_status(&app, capped["token"].as_str().unwrap()).await,
        401
    );
    let (_, listed) = json(
        with_session(&app, reqwest::Method::GET, "/api/tokens/", &session)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(listed[1]["name"], "laptop");
    assert_eq!(listed[1]["expired"], true, "expired tokens stay listed");

    // Bad input is a 4xx with a JSON error.
    for (body, code) in [
        (json!({"name": ""}), "invalid_name"),
        (json!({"name": "x".repeat(101)}), "invalid_name"),
        (json!({"name": "a\u{7}b"}), "invalid_name"),
        (json!({"name": "x", "expires_in_days": 0}), "invalid_expiry"),
        (
            json!({"name": "x", "expires_in_days": 3651}),
            "invalid_expiry",
        ),
        (json!({"name": "x", "expires_in_days": -1}), "invalid_body"),
        (json!({"name": "x", "scope": "all"}), "invalid_body"),
        (json!({}), "invalid_body"),
    ] {
        let (status, answer) = json(
            with_session(&app, reqwest::Method::POST, "/api/tokens/", &session)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, error_code(&answer)),
            (422, code.to_owned()),
            "{body}"
        );
    }
    let (status, body) = json(
        app.http
            .delete(app.url("/api/tokens/abc/"))
            .bearer_auth(&bob_token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error_code(&body)), (400, "bad_id".to_owned()));
    // A cookie write without the CSRF token is refused.
    let (status, body) = json(
        app.http
            .post(app.url("/api/tokens/"))
            .header("cookie", &session.0)
            .header("origin", ORIGIN)
            .json(&json!({"name": "forged"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error_code(&body)), (403, "csrf_failed".to_owned()));
    // Unauthenticated: 401.
    for (method, path) in [
        ("GET", "/api/tokens/"),
        ("POST", "/api/tokens/"),
        ("DELETE", "/api/tokens/1/"),
    ] {
        let response = app
            .http
            .request(method.parse().unwrap(), app.url(path))
            .json(&json!({"name": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{method} {path}");
    }

    let log = app.log_text();
    for token in [&cli_token, &secret, &child_secret, &bob_token] {
        assert!(!log.contains(token.as_str()), "a token reached the log");
    }
}

async fn the_settings_page_creates_shows_once_and_revokes_tokens(kind: BackendKind) {
    let Some(app) = TestApp::start(kind).await else {
        return;
    };
    let bob_token = app.user_with_token("bob");
    app.add_user("alice");
    let (cookie, csrf) = app.login("alice").await;
    let settings = |cookie: String| {
        let app = &app;
        async move {
            app.http
                .get(app.url("/settings"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let page = settings(cookie.clone()).await;
    for part in [
        "id=\"api-tokens\"",
        "id=\"no-tokens\"",
        "action=\"/settings/tokens\"",
        "id=\"password\"",
        "id=\"delete-account\"",
        "id=\"account\"",
    ] {
        assert!(page.contains(part), "Settings lacks {part}");
    }

    let created = post_form(
        &app,
        &cookie,
        "/settings/tokens",
        &[
            ("csrf_token", &csrf),
            ("name", "Backup <script>"),
            ("expires_in_days", "7"),
        ],
    )
    .await;
    assert_eq!(created.status(), 200);
    assert_eq!(created.headers()["cache-control"], "no-store");
    assert!(
        created.headers().get("set-cookie").is_none(),
        "the token is in no cookie"
    );
    let html = created.text().await.unwrap();
    assert!(html.contains("Backup &lt;script&gt;") && !html.contains("Backup <script>"));
    let token = html
        .split("id=\"new-token-value\"")
        .nth(1)
        .and_then(|rest| rest.split("value=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    assert!(token.starts_with("cst_"), "{html}");
    assert_eq!(token_status(&app, &token).await, 200);

    // Settings lists it by name, never the token again.
    let page = settings(cookie.clone()).await;
    assert!(page.contains("Backup &lt;script&gt;") && !page.contains(&token));
    assert!(page.contains("expires "));
    let (_, listed) = json(app.get("/api/tokens/", &token).send().await.unwrap()).await;
    let id = listed[0]["id"].as_i64().unwrap();
    assert!(page.contains(&format!("action=\"/settings/tokens/{id}/revoke\"")));

    // Bad input comes back as a message.
    let (location, ok, text) = flash(
        &post_form(
            &app,
            &cookie,
            "/settings/tokens",
            &[
                ("csrf_token", &csrf),
                ("name", " "),
                ("expires_in_days", ""),
            ],
        )
        .await,
    );
    assert_eq!((location.as_str(), ok), ("/settings#api-tokens", false));
    assert!(text.contains("name"), "{text}");
    // Bob's token is not Alice's to revoke.
    let (_, bobs) = json(app.get("/api/tokens/", &bob_token).send().await.unwrap()).await;
    let bobs_id = bobs[0]["id"].as_i64().unwrap();
    let (_, ok, text) = flash(
        &post_form(
            &app,
            &cookie,
            &format!("/settings/tokens/{bobs_id}/revoke"),
            &[("csrf_token", &csrf)],
        )
        .await,
    );
    assert!(!ok && text.contains("not found"), "{text}");
    assert_eq!(token_status(&app, &bob_token).await, 200);
    // Without the CSRF field nothing happens.
    let forged = post_form(
        &app,
        &cookie,
        &format!("/settings/tokens/{id}/revoke"),
        &[("csrf_token", "forged")],
    )
    .await;
    assert_eq!(forged.status(), 403);
    assert_eq!(token_status(&app, &token).await, 200);

    let (location, ok, text) = flash(
        &post_form(
            &app,
            &cookie,
            &format!("/settings/tokens/{id}/revoke"),
            &[("csrf_token", &csrf)],
        )
        .await,
    );
    assert_eq!((location.as_str(), ok), ("/settings#api-tokens", true));
    assert!(text.contains("Backup <script>"), "{text}");
    assert_eq!(token_status(&app, &token).await, 401);
    assert!(settings(cookie).await.contains("id=\"no-tokens\""));
    assert!(!app.log_text().contains(&token));
}

async fn me_is_read_and_patched_with_checked_values(kind: BackendKind) {
    let Some(app) = TestApp::start(kind).await else {
        return;
    };
    let token = app.user_with_token("alice");
    let bob = app.user_with_token("bob");
    let me = |token: String| {
        let app = &app;
        async move { json(app.get("/api/me/", &token).send().await.unwrap()).await }
    };
    let patch = |token: String, body: Value| {
        let app = &app;
        async move {
            json(
                app.http
                    .patch(app.url("/api/me/"))
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    assert_eq!(
        me(token.clone()).await,
        (
            200,
            json!({"username": "alice", "email": null, "timezone": "UTC"})
        )
    );
    assert_eq!(
        patch(
            token.clone(),
            json!({"email": " Alice@Example.COM ", "timezone": "Europe/Berlin"})
        )
        .await,
        (
            200,
            json!({"username": "alice", "email": "Alice@example.com", "timezone": "Europe/Berlin"})
        )
    );
    // Both values are checked before either is written.
    for (body, code) in [
        (json!({"timezone": "Mars/Olympus_Mons"}), "invalid_timezone"),
        (
            json!({"timezone": "Asia/Tokyo", "email": "not an address"}),
            "invalid_email",
        ),
        (
            json!({"email": "bob@example.com", "timezone": ""}),
            "invalid_timezone",
        ),
        (
            json!({"email": format!("{}@example.com", "a".repeat(300))}),
            "invalid_email",
        ),
        (
            json!({"email": "alice@example.com\r\nBcc: eve@evil.example"}),
            "invalid_email",
        ),
        (json!({"username": "mallory"}), "read_only"),
        (json!({"email": 5}), "invalid_body"),
        (json!({"password": "x"}), "invalid_body"),
    ] {
        let (status, answer) = patch(token.clone(), body.clone()).await;
        assert_eq!(
            (status, error_code(&answer)),
            (422, code.to_owned()),
            "{body}"
        );
    }
    assert_eq!(
        me(token.clone()).await.1,
        json!({"username": "alice", "email": "Alice@example.com", "timezone": "Europe/Berlin"})
    );
    // What GET gave can be sent back; null and "" clear the email.
    let (status, back) = patch(
        token.clone(),
        json!({"username": "alice", "email": null, "timezone": "America/New_York"}),
    )
    .await;
    assert_eq!(
        (status, back),
        (
            200,
            json!({"username": "alice", "email": null, "timezone": "America/New_York"})
        )
    );
    patch(token.clone(), json!({"email": "a@b.example"})).await;
    assert_eq!(
        patch(token.clone(), json!({"email": ""})).await.1["email"],
        Value::Null
    );
    assert_eq!(patch(token.clone(), json!({})).await.0, 200);
    // Bob's settings are his own.
    assert_eq!(
        me(bob.clone()).await.1,
        json!({"username": "bob", "email": null, "timezone": "UTC"})
    );

    // With the browser session the CSRF token is required, and the Settings
    // page shows and changes the same values.
    let session = app.login("alice").await;
    let (status, body) = json(
        app.http
            .patch(app.url("/api/me/"))
            .header("cookie", &session.0)
            .header("origin", ORIGIN)
            .json(&json!({"timezone": "Asia/Tokyo"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error_code(&body)), (403, "csrf_failed".to_owned()));
    let (status, body) = json(
        with_session(&app, reqwest::Method::PATCH, "/api/me/", &session)
            .json(&json!({"timezone": "Asia/Tokyo", "email": "alice@mail.example"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["timezone"].as_str()),
        (200, Some("Asia/Tokyo"))
    );
    let page = app
        .http
        .get(app.url("/settings"))
        .header("cookie", &session.0)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("value=\"alice@mail.example\"") && page.contains("value=\"Asia/Tokyo\""));
    let (location, ok, text) = flash(
        &post_form(
            &app,
            &session.0,
            "/settings/email",
            &[("csrf_token", &session.1), ("email", "nope")],
        )
        .await,
    );
    assert_eq!((location.as_str(), ok), ("/settings#account", false));
    assert!(text.contains("not an email address"), "{text}");
    let (_, ok, _) = flash(
        &post_form(
            &app,
            &session.0,
            "/settings/email",
            &[("csrf_token", &session.1), ("email", "alice@new.example")],
        )
        .await,
    );
    assert!(ok);
    assert_eq!(me(token.clone()).await.1["email"], "alice@new.example");
    let (status, _) = json(app.get("/api/me/", "cst_unknown").send().await.unwrap()).await;
    assert_eq!(status, 401);

    let log = app.log_text();
    for secret in [
        "Alice@example.com",
        "alice@mail.example",
        "alice@new.example",
        "a@b.example",
    ] {
        assert!(!log.contains(secret), "an email reached the log: {secret}");
    }
}

async fn changing_the_password_ends_the_other_sessions(kind: BackendKind) {
    let Some(app) = TestApp::start(kind).await else {
        return;
    };
    let token = app.user_with_token("alice");
    let bob = app.user_with_token("bob");
    let (bob_cookie, _) = app.login("bob").await;
    let (here, csrf) = app.login("alice").await;
    let (elsewhere, _) = app.login("alice").await;
    let change = |current: &'static str, new: &'static str, again: &'static str| {
        let (app, here, csrf) = (&app, here.clone(), csrf.clone());
        async move {
            flash(
                &post_form(
                    app,
                    &here,
                    "/settings/password",
                    &[
                        ("csrf_token", csrf.as_str()),
                        ("current_password", current),
                        ("new_password", new),
                        ("new_password_again", again),
                    ],
                )
                .await,
            )
        }
    };

    for (current, new, again, says) in [
        (
            "a wrong password",
            NEW_PASSWORD,
            NEW_PASSWORD,
            "current password is not correct",
        ),
        (PASSWORD, NEW_PASSWORD, "another new passphrase", "differ"),
        (PASSWORD, "short", "short", "8 to 1024 characters"),
    ] {
        let (location, ok, text) = change(current, new, again).await;
        assert_eq!((location.as_str(), ok), ("/settings#password", false));
        assert!(text.contains(says), "{text}");
        assert!(session_works(&app, &elsewhere).await, "nothing changed yet");
    }
    assert!(login_with(&app, "alice", PASSWORD).await.is_ok());

    let (location, ok, text) = change(PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(
        (location.as_str(), ok),
        ("/settings#password", true),
        "{text}"
    );
    assert!(text.contains("2 other sessions were logged out"), "{text}");
    assert!(
        session_works(&app, &here).await,
        "the session that changed it stays"
    );
    assert!(
        !session_works(&app, &elsewhere).await,
        "the other one ended"
    );
    let api = app
        .http
        .get(app.url("/api/me/"))
        .header("cookie", &elsewhere)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401);
    assert_eq!(login_with(&app, "alice", PASSWORD).await.unwrap_err(), 401);
    assert!(login_with(&app, "alice", NEW_PASSWORD).await.is_ok());
    assert_eq!(
        token_status(&app, &token).await,
        200,
        "API tokens keep working"
    );
    assert!(
        session_works(&app, &bob_cookie).await,
        "Bob is not logged out"
    );
    assert_eq!(token_status(&app, &bob).await, 200);

    // Guessing the current password from a session is throttled: after five
    // wrong ones even the right one waits.
    for _ in 0..5 {
        let (_, ok, text) = change("guess", "guessed password", "guessed password").await;
        assert!(!ok && text.contains("not correct"), "{text}");
    }
    let (_, ok, text) = change(NEW_PASSWORD, "yet another password", "yet another password").await;
    assert!(!ok && text.starts_with("Too many attempts"), "{text}");
    assert!(login_with(&app, "alice", NEW_PASSWORD).await.is_ok());

    let log = app.log_text();
    for secret in [
        PASSWORD,
        NEW_PASSWORD,
        "a wrong password",
        "guessed password",
    ] {
        assert!(
            !log.contains(secret),
            "a password reached the log: {secret}"
        );
    }
}

/// Every (table, column) of the schema that ties a row to a user directly
/// (`user_id`) or through a connection, calendar or event, read from the
/// database's catalog so that tables added later are checked too.
async fn owning_columns(store: &Store) -> Vec<(String, String)> {
    let sql = match store.kind() {
        BackendKind::Sqlite => {
            "SELECT group_concat(m.name || '.' || p.name, ',') FROM sqlite_master m \
             JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND p.name IN ('user_id', 'connection_id', 'calendar_id', 'event_id')"
        }
        BackendKind::Postgres => {
            "SELECT string_agg(table_name || '.' || column_name, ',') FROM information_schema.columns \
             WHERE table_schema = current_schema() \
               AND column_name IN ('user_id', 'connection_id', 'calendar_id', 'event_id')"
        }
    };
    let list = testing::fetch_text(store, sql).await.unwrap_or_default();
    let mut columns: Vec<(String, String)> = list
        .split(',')
        .filter_map(|pair| pair.split_once('.'))
        .map(|(t, c)| (t.to_owned(), c.to_owned()))
        .collect();
    columns.sort();
    columns
}

/// The ids of `user`'s rows in `table`, comma-separated (or empty).
async fn ids_of(store: &Store, table: &str, user: UserId) -> String {
    let sql = match store.kind() {
        BackendKind::Sqlite => format!(
            "SELECT COALESCE(group_concat(id, ','), '') FROM {table} WHERE user_id = {}",
            user.0
        ),
        BackendKind::Postgres => format!(
            "SELECT COALESCE(string_agg(CAST(id AS TEXT), ','), '') FROM {table} WHERE user_id = {}",
            user.0
        ),
    };
    testing::fetch_text(store, &sql).await.unwrap_or_default()
}

/// A user's connections, calendars and events, by id, to find the rows that
/// belong to them through those after the user is gone.
async fn owned_ids(store: &Store, user: UserId) -> Vec<(&'static str, String)> {
    let mut owned = Vec::new();
    for (column, table) in [
        ("connection_id", "connections"),
        ("calendar_id", "calendars"),
        ("event_id", "events"),
    ] {
        owned.push((column, ids_of(store, table, user).await));
    }
    owned
}

/// Rows per owning (table, column) that belong to `user`, and the user row.
async fn rows_of(store: &Store, user: UserId, owned: &[(&str, String)]) -> Vec<(String, i64)> {
    let count = |sql: String| async move {
        testing::fetch_text(store, &sql)
            .await
            .unwrap()
            .parse::<i64>()
            .unwrap()
    };
    let mut rows = vec![(
        "users.id".to_owned(),
        count(format!(
            "SELECT CAST(COUNT(*) AS TEXT) FROM users WHERE id = {}",
            user.0
        ))
        .await,
    )];
    for (table, column) in owning_columns(store).await {
        let ids = if column == "user_id" {
            user.0.to_string()
        } else {
            owned
                .iter()
                .find(|(c, _)| *c == column)
                .map(|(_, ids)| ids.clone())
                .unwrap_or_default()
        };
        let n = if ids.is_empty() {
            0
        } else {
            count(format!(
                "SELECT CAST(COUNT(*) AS TEXT) FROM {table} WHERE {column} IN ({ids})"
            ))
            .await
        };
        rows.push((format!("{table}.{column}"), n));
    }
    rows
}

/// Asserts that `user` has rows in the tables a connected, logged-in user
/// fills, so that "nothing left" afterwards means something.
fn assert_filled(rows: &[(String, i64)]) {
    for table in [
        "users.id",
        "sessions.user_id",
        "api_tokens.user_id",
        "oauth_states.user_id",
        "connections.user_id",
        "calendars.user_id",
        "events.user_id",
        "occurrences.user_id",
        "sync_runs.connection_id",
    ] {
        assert!(
            rows.iter().any(|(t, n)| t == table && *n > 0),
            "no row in {table} to delete: {rows:?}"
        );
    }
}

async fn deleting_the_account_removes_every_row_and_revokes_google(kind: BackendKind) {
    let Some(google) = GoogleApp::start(kind).await else {
        return;
    };
    let app = &google.app;
    let token = app.user_with_token("alice");
    let bob_token = app.user_with_token("bob");
    let (bob_cookie, _) = app.login("bob").await;
    let (cookie, csrf) = app.login("alice").await;
    let (other_session, _) = app.login("alice").await;
    assert_eq!(
        google.connect(&cookie, ALICE).await,
        "/settings?connected=google"
    );
    google.wait_for_sync(&token).await;
    assert!(!google.upcoming_titles(&token).await.is_empty());
    // An OAuth flow left unfinished, and an email.
    google.authorization_url(&cookie).await;
    app.http
        .patch(app.url("/api/me/"))
        .bearer_auth(&token)
        .json(&json!({"email": "alice@example.com"}))
        .send()
        .await
        .unwrap();
    assert!(!google.emulator.live_tokens().is_empty());

    let store = app.store().await;
    let alice = store.user_by_name("alice").await.unwrap().id;
    let bob = store.user_by_name("bob").await.unwrap().id;
    let owned = owned_ids(&store, alice).await;
    assert_filled(&rows_of(&store, alice, &owned).await);
    let bobs_rows = rows_of(&store, bob, &owned_ids(&store, bob).await).await;

    // The confirmation must be the username and the password.
    for (typed, password, says) in [
        ("bob", PASSWORD, "type your username"),
        ("Alice", PASSWORD, "type your username"),
        (
            "alice",
            "not my password",
            "current password is not correct",
        ),
    ] {
        let (location, ok, text) = flash(
            &post_form(
                app,
                &cookie,
                "/settings/delete-account",
                &[
                    ("csrf_token", &csrf),
                    ("confirm_username", typed),
                    ("password", password),
                ],
            )
            .await,
        );
        assert_eq!((location.as_str(), ok), ("/settings#delete-account", false));
        assert!(text.to_lowercase().contains(says), "{text}");
    }
    let forged = post_form(
        app,
        &cookie,
        "/settings/delete-account",
        &[
            ("csrf_token", "forged"),
            ("confirm_username", "alice"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(forged.status(), 403);
    assert_eq!(token_status(app, &token).await, 200, "nothing was deleted");

    let deleted = post_form(
        app,
        &cookie,
        "/settings/delete-account",
        &[
            ("csrf_token", &csrf),
            ("confirm_username", "alice"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(deleted.status(), 200);
    let cleared: Vec<&str> = deleted
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(cleared
        .iter()
        .any(|c| c.starts_with("calsync_session=;") && c.contains("Max-Age=0")));
    assert!(deleted.text().await.unwrap().contains("Account deleted"));

    // Google's grant was revoked first: the emulator knows no token of it.
    assert!(google
        .emulator
        .requests()
        .iter()
        .any(|r| r.path == "/revoke" && r.status == 200));
    assert!(
        google.emulator.live_tokens().is_empty(),
        "the grant is gone"
    );
    // Every row of Alice's is gone; Bob's are all there.
    let left = rows_of(&store, alice, &owned).await;
    assert!(
        left.iter().all(|(_, n)| *n == 0),
        "rows of alice survived: {left:?}"
    );
    assert_eq!(
        rows_of(&store, bob, &owned_ids(&store, bob).await).await,
        bobs_rows
    );
    assert_eq!(token_status(app, &token).await, 401);
    assert!(!session_works(app, &cookie).await);
    assert!(!session_works(app, &other_session).await);
    assert_eq!(login_with(app, "alice", PASSWORD).await.unwrap_err(), 401);
    assert_eq!(token_status(app, &bob_token).await, 200);
    assert!(session_works(app, &bob_cookie).await);
    assert!(!app.log_text().contains("alice@example.com"));
}

/// `calsync ARGS` on the app's database, with `stdin`, and the Google
/// emulator's settings when given.
fn calsync(app: &TestApp, google: Option<&GoogleApp>, args: &[&str], stdin: &str) -> Output {
    let mut command: Command = app.command();
    if let Some(google) = google {
        let base = google.emulator.base_url();
        command
            .env("CALSYNC_GOOGLE_CLIENT_ID", CLIENT_ID)
            .env("CALSYNC_GOOGLE_CLIENT_SECRET", CLIENT_SECRET)
            .env(
                "CALSYNC_GOOGLE_AUTH_URL",
                format!("{base}/o/oauth2/v2/auth"),
            )
            .env("CALSYNC_GOOGLE_TOKEN_URL", format!("{base}/token"))
            .env("CALSYNC_GOOGLE_API_BASE", base)
            .env("CALSYNC_GOOGLE_REVOKE_URL", format!("{base}/revoke"));
    }
    let mut child = command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "calsync failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr_of_failure(output: &Output) -> String {
    assert!(!output.status.success(), "calsync should have failed");
    String::from_utf8(output.stderr.clone()).unwrap()
}

async fn the_cli_changes_passwords_lists_and_revokes_tokens_and_deletes_users(kind: BackendKind) {
    let Some(google) = GoogleApp::start(kind).await else {
        return;
    };
    let app = &google.app;
    app.add_user("alice");
    let bob_token = app.user_with_token("bob");

    // token create --name --expires-in-days, token list.
    let created = stdout(&calsync(
        app,
        None,
        &[
            "token",
            "create",
            "alice",
            "--name",
            "deploy",
            "--expires-in-days",
            "7",
        ],
        "",
    ));
    let deploy = created.trim().to_owned();
    assert!(deploy.starts_with("cst_") && !deploy.contains('\n'));
    assert_eq!(token_status(app, &deploy).await, 200);
    let plain = app.token("alice");
    let listing = stdout(&calsync(app, None, &["token", "list", "alice"], ""));
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 3, "{listing}");
    assert!(lines[0].starts_with("ID") && lines[0].contains("EXPIRES"));
    assert!(
        lines[1].contains(" cli ") && lines[1].trim_end().ends_with("never"),
        "{listing}"
    );
    let in_a_week = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 7))
        .strftime("%Y-%m-%d")
        .to_string();
    assert!(
        lines[2].contains("deploy") && lines[2].contains(&in_a_week),
        "{listing}"
    );
    assert!(
        lines[1].matches("never").count() == 2,
        "the cli token was not used and does not expire: {listing}"
    );
    for token in [&deploy, &plain] {
        assert!(!listing.contains(token.as_str()) && !listing.contains(&hash_token(token)));
    }
    let deploy_id = lines[2].split_whitespace().next().unwrap();
    let bobs = stdout(&calsync(app, None, &["token", "list", "bob"], ""));
    let bobs_id = bobs
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();

    // token revoke: only the user's own.
    let refused = calsync(app, None, &["token", "revoke", "alice", bobs_id], "");
    assert!(stderr_of_failure(&refused).contains("has no API token"));
    assert_eq!(token_status(app, &bob_token).await, 200);
    let refused = calsync(app, None, &["token", "revoke", "nobody", "1"], "");
    assert!(stderr_of_failure(&refused).contains("no user named"));
    assert!(stdout(&calsync(
        app,
        None,
        &["token", "revoke", "alice", deploy_id],
        ""
    ))
    .contains("revoked"));
    assert_eq!(token_status(app, &deploy).await, 401);
    assert_eq!(token_status(app, &plain).await, 200);
    let refused = calsync(
        app,
        None,
        &["token", "create", "alice", "--expires-in-days", "0"],
        "",
    );
    assert!(stderr_of_failure(&refused).contains("expires_in_days"));

    // user passwd: every session ends, the old password fails.
    let (session, _) = app.login("alice").await;
    let too_short = calsync(
        app,
        None,
        &["user", "passwd", "alice", "--password-stdin"],
        "short\n",
    );
    assert!(stderr_of_failure(&too_short).contains("8 to 1024"));
    assert!(session_works(app, &session).await);
    let changed = stdout(&calsync(
        app,
        None,
        &["user", "passwd", "alice", "--password-stdin"],
        &format!("{NEW_PASSWORD}\n"),
    ));
    assert!(
        changed.contains("1 browser sessions were logged out"),
        "{changed}"
    );
    assert!(!session_works(app, &session).await);
    assert_eq!(login_with(app, "alice", PASSWORD).await.unwrap_err(), 401);
    let (cookie, _) = login_with(app, "alice", NEW_PASSWORD).await.unwrap();
    assert_eq!(token_status(app, &plain).await, 200);
    let missing = calsync(
        app,
        None,
        &["user", "passwd", "nobody", "--password-stdin"],
        "a long password\n",
    );
    assert!(stderr_of_failure(&missing).contains("no user named"));

    // user delete: asks on a terminal, refuses without one unless --yes;
    // revokes the Google grant, then deletes everything.
    assert_eq!(
        google.connect(&cookie, ALICE).await,
        "/settings?connected=google"
    );
    google.wait_for_sync(&plain).await;
    let store = app.store().await;
    let alice = store.user_by_name("alice").await.unwrap().id;
    let owned = owned_ids(&store, alice).await;
    let refused = calsync(app, Some(&google), &["user", "delete", "alice"], "alice\n");
    assert!(stderr_of_failure(&refused).contains("--yes"));
    assert_eq!(token_status(app, &plain).await, 200, "nothing was deleted");
    let deleted = stdout(&calsync(
        app,
        Some(&google),
        &["user", "delete", "alice", "--yes"],
        "",
    ));
    assert!(
        deleted.contains("with 1 connections (calsync's access revoked at the provider for 1)"),
        "{deleted}"
    );
    assert!(
        google.emulator.live_tokens().is_empty(),
        "the grant is gone"
    );
    let left = rows_of(&store, alice, &owned).await;
    assert!(
        left.iter().all(|(_, n)| *n == 0),
        "rows of alice survived: {left:?}"
    );
    assert_eq!(token_status(app, &plain).await, 401);
    assert!(!session_works(app, &cookie).await);
    let again = calsync(app, None, &["user", "delete", "alice", "--yes"], "");
    assert!(stderr_of_failure(&again).contains("no user named"));
    assert_eq!(token_status(app, &bob_token).await, 200);
    // The name can be used again.
    app.add_user("alice");
}
