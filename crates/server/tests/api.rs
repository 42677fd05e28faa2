//! The foundation's promises, against the real binary on both databases:
//! authentication, CSRF, isolation, input validation, limits, logs, shutdown.
#![allow(clippy::unwrap_used)]

mod support;

use calsync_core::model::{Provider, RemoteCalendar};
use calsync_store::{BackendKind, NewConnection};
use secrecy::SecretString;
use serde_json::json;
use support::{error_code, json, TestApp, PASSWORD};

on_both_backends!(
    a_new_user_sees_empty_lists,
    every_api_path_requires_authentication,
    login_sets_a_safe_cookie_and_logout_ends_it,
    cookie_writes_need_same_origin_and_the_csrf_token,
    users_get_404_for_each_others_ids,
    bad_input_gets_a_4xx_with_a_json_error,
    login_is_rate_limited,
    providers_without_configuration_answer_clearly,
    operations_endpoints_answer,
    no_secret_reaches_the_log,
    sigterm_stops_cleanly_with_a_stream_open,
    a_wrong_key_is_refused_at_start,
);

async fn a_new_user_sees_empty_lists(kind: BackendKind) {
    let Some(app) = TestApp::start(kind).await else {
        return;
    };
    let token = app.user_with_token("alice");
    for path in [
        "/api/calendar/connections/",
        "/api/calendar/calendars/",
        "/api/calendar/events/upcoming/",
        "/api/calendar/events/?start=2026-01-01T00:00:00Z&end=2026-02-01T00:00:00Z",
    ] {
        let (status, body) = json(app.get(path, &token).send().await.unwrap()).await;
        assert_eq!((status, body), (200, json!([])), "{path}");
    }
    let (status, body) = json(
        app.post("/api/calendar/sync/", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body), (202, json!({"connection_ids": []})));
}

const API_PATHS: &[(&str, &str)] = &[
    ("GET", "/api/calendar/google/authorize/"),
    ("GET", "/api/calendar/microsoft/authorize/"),
    ("POST", "/api/calendar/caldav/connect/"),
    ("POST", "/api/calendar/ics/subscribe/"),
    ("GET", "/api/calendar/connections/"),
    ("POST", "/api/calendar/connections/1/disconnect/"),
    ("GET", "/api/calendar/calendars/"),
    ("PATCH", "/api/calendar/calendars/1/"),
    ("POST", "/api/calendar/sync/"),
    ("GET", "/api/calendar/events/upcoming/"),
    (
        "GET",
        "/api/calendar/events/?start=2026-01-01T00:00:00Z&end=2026-01-02T00:00:00Z",
    ),
    ("GET", "/api/calendar/events/stream/"),
];

async fn every_api_path_requires_authentication(kind: BackendKind) {
    let Some(app) = TestApp::start(kind).await else {
        return;
    };
    app.add_user("alice");
    for (method, path) in API_PATHS {
        for token in [None, Some("cst_not-a-real-token")] {
            let mut request = app.http.request(method.parse().unwrap(), app.url(path));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let (status, body) = json(request.send().await.unwrap()).await;
            assert_eq!(
                (status, error_code(&body).as_str()),
                (401, "unauthenticated"),
                "{method} {path}"
            );
        }
    }
    // The OAuth callback is where a browser lands: it goes to the login page.
    let callback = app
        .http
        .get(app.url("/api/calendar/google/callback/?state=x&code=y"))
        .send()
        .await
        .unwrap();
    assert_eq!(callback.status(), 303);
    assert_eq!(callback.headers()["location"], "/login?next=/settings");
}

async fn login_sets_a_safe_cookie_and_logout_ends_it(kind: BackendKind) {
    let Some(app) = TestApp::start(kind).await else {
        return;
    };
    app.add_user("alice");
    let page = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(
        (
            page.status().as_u16(),
            page.headers()["location"].to_str().unwrap()
        ),
        (303, "/login?next=/")
    );
    let form = app
        .http
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(form.contains("name=\"username\"") && form.contains("name=\"password\""));

    let wrong = app
        .http
        .post(app.url("/login"))
        .form(&[("username", "alice"), ("password", "wrong password")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong
        .text()
        .await
        .unwrap()
        .contains("Wrong username or password"));

    let response = app
        .http
        .post(app.url("/login"))
        .form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("next", "https://evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "/",
        "an off-site next must not be followed"
    );
    let set_cookies: Vec<&str> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let session = set_cookies
        .iter()
        .find(|c| c.starts_with("calsync_session="))
        .unwrap();
    assert!(
        session.contains("HttpOnly")
            && session.contains("SameSite=Lax")
            && !session.contains("Secure")
    );

    let (cookie, csrf) = app.login("alice").await;
    let dashboard = app
        .http
        .get(app.url("/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(dashboard.status(), 200);
    assert!(dashboard.text().await.unwrap().contains("Upcoming Events"));
    let api = app
        .http
        .get(app.url("/api/calendar/connections/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);

    let logout = app
        .http
        .post(app.url("/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 303);
    let after = app
        .http
        .get(app.url("/api/calendar/connections/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401, "the session must be gone after logout");
}

async fn cookie_writes_need_same_origin_and_the_csrf_token(kind: BackendKind) {
    let Some(app) = TestApp::start(kind).await else {
        return;
    };
    let token = app.user_with_token("alice");
    let (cookie, csrf) = app.login("alice").await;
    let sync = |origin: Option<&str>, csrf: Option<&str>| {
        let mut request = app
            .http
            .post(app.url("/api/calendar/sync/"))
            .header("cookie", &cookie);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        request.send()
    };
    let (status, body) = json(
        sync(Some("https://evil.example"), Some(&csrf))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error_code(&body).as_str()), (403, "csrf_failed"));
    let (status, _) = json(sync(Some("http://localhost:8000"), None).await.unwrap()).await;
    assert_eq!(status, 403);
    let (status, _) = json(
        sync(Some("http://localhost:8000"), Some("forged"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = json(
        sync(Some("http://localhost:8000"), Some(&csrf))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 202);

    let foreign_form = app
        .http
        .post(app.url("/logout"))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign_form.status(), 403);

    let bearer = app
        .post("/api/calendar/sync/", &token)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        bearer.status(),
        202,
        "bearer requests carry no ambient authority and need no CSRF token"
    );
}

async fn users_get_404_for_each_others_ids(kind: BackendKind) {
    let Some(app) = TestApp::start(kind).await else {
        return;
    };
    let alice_token = app.user_with_token("alice");
    let bob_token = app.user_with_token("bob");
    let store = app.store().await;
    let alice = store.user_by_name("alice").await.unwrap().id;
    let connection = store
        .upsert_connection(
            &NewConnection {
                user_id: alice,
                provider: Provider::Google,
                account_id: "sub-alice".into(),
                account_email: Some("alice@example.com".into()),
                access_token: Some(SecretString::from("ya29.alice-access")),
                refresh_token: Some(SecretString::from("1//alice-refresh")),
                token_expires_at: None,
                scopes: String::new(),
            },
            jiff::Timestamp::now(),
        )
        .await
        .unwrap();
    let remote = RemoteCalendar {
        external_id: "primary".into(),
        name: "Alice".into(),
        color: Some("#123456".into()),
        timezone: None,
        is_primary: true,
        access_role: Some("owner".into()),
    };
    // Claimed as a round would, a day ahead: whatever the running server's
    // worker holds has run out by then.
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24);
    let claim = store
        .claim_due_connection(
            later,
            later + jiff::SignedDuration::from_mins(2),
            Default::default(),
        )
        .await
        .unwrap()
        .expect("the connection is due");
    assert_eq!(claim.connection_id, connection);
    let calendar = store
        .upsert_calendars(&claim, later, &[remote])
        .await
        .unwrap()[0]
        .id;
    store.close().await;

    let (c, k) = (connection.0, calendar.0);
    let attempts = [
        app.post(
            &format!("/api/calendar/connections/{c}/disconnect/"),
            &bob_token,
        ),
        app.http
            .patch(app.url(&format!("/api/calendar/calendars/{k}/")))
            .bearer_auth(&bob_token)
            .json(&json!({"enabled": false})),
        app.post("/api/calendar/sync/", &bob_token)
            .json(&json!({"connection_id": c})),
    ];
    for attempt in attempts {
        let (status, body) = json(attempt.send().await.unwrap()).await;
        assert_eq!((status, error_code(&body).as_str()), (404, "not_found"));
    }
    for path in [
        "/api/calendar/connections/",
        "/api/calendar/calendars/",
        "/api/calendar/events/upcoming/",
    ] {
        let (_, body) = json(app.get(path, &bob_token).send().await.unwrap()).await;
        assert_eq!(body, json!([]), "{path}");
    }
    let (_, mine) = json(
        app.get("/api/calendar/connections/", &alice_token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(mine[0]["id"], c);
    assert_eq!(
        mine[0]["calendars"][0]["enabled"], true,
        "bob's attempts must change nothing"
    );
    let body = mine.to_string();
    assert!(
        !body.contains("alice-refresh") && !body.contains("alice-access"),
        "tokens must never be served"
    );

    let patched = app
        .http
        .patch(app.url(&format!("/api/calendar/calendars/{k}/")))
        .bearer_auth(&alice_token)
        .json(&json!({"enabled": false, "color": "#ABCDEF"}))
        .send()
        .await
        .unwrap();
    let (status, body) = json(patched).await;
    assert_eq!(
        (status, &body["enabled"], &body["color"]),
        (200, &json!(false), &json!("#abcdef"))
    );
    let (status, body) = json(
        app.post(
            &format!("/api/calendar/connections/{c}/disconnect/"),
            &alice_token,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"id": c, "disconnected": true, "revoked": false})
        )
    );
    let (_, after) = json(
        app.get("/api/calendar/calendars/", &alice_token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(after, json!([]));
}

async fn bad_input_gets_a_4xx_with_a_json_error(kind: BackendKind) {
    let Some(app) = TestApp::start(kind).await else {
        return;
    };
    let token = app.user_with_token("alice");
    let patch = |body: &str| {
        app.http
            .patch(app.url("/api/calendar/calendars/1/"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body.to_owned())
    };
    let cases = [
        (patch("{\"enabled\": tru"), 400, "malformed_json"),
        (patch("{\"enabled\": \"yes\"}"), 422, "invalid_body"),
        (patch("{\"colour\": \"#fff\"}"), 422, "invalid_body"),
        (patch("{\"color\": \"red\"}"), 422, "invalid_color"),
        (
            patch(&format!("{{\"color\": \"{}\"}}", "x".repeat(100 * 1024))),
            413,
            "payload_too_large",
        ),
        (
            app.http
                .patch(app.url("/api/calendar/calendars/1/"))
                .bearer_auth(&token)
                .body("{}"),
            415,
            "unsupported_media_type",
        ),
        (
            app.http
                .patch(app.url("/api/calendar/calendars/abc/"))
                .bearer_auth(&token)
                .json(&json!({})),
            400,
            "bad_id",
        ),
        (
            app.http
                .patch(app.url("/api/calendar/calendars/99999999999999999999/"))
                .bearer_auth(&token)
                .json(&json!({})),
            400,
            "bad_id",
        ),
        (
            app.post("/api/calendar/connections/-1/disconnect/", &token),
            404,
            "not_found",
        ),
        (
            app.get("/api/calendar/events/upcoming/?limit=abc", &token),
            400,
            "bad_query",
        ),
        (
            app.get("/api/calendar/events/upcoming/?limit=0", &token),
            400,
            "bad_query",
        ),
        (
            app.get("/api/calendar/events/upcoming/?days=100000", &token),
            400,
            "bad_query",
        ),
        (
            app.get(
                "/api/calendar/events/?start=yesterday&end=2026-01-01T00:00:00Z",
                &token,
            ),
            400,
            "bad_query",
        ),
        (
            app.get(
                "/api/calendar/events/?start=2026-02-01T00:00:00Z&end=2026-01-01T00:00:00Z",
                &token,
            ),
            400,
            "bad_query",
        ),
        (app.get("/api/calendar/events/", &token), 400, "bad_query"),
        (
            app.post("/api/calendar/sync/", &token)
                .body("{\"connection_id\": \"one\"}"),
            400,
            "malformed_json",
        ),
        (
            app.post("/api/calendar/caldav/connect/", &token)
                .json(&json!({"server_url": "ftp://x", "username": "a", "password": "b"})),
            422,
            "invalid_url",
        ),
        (
            app.post("/api/calendar/ics/subscribe/", &token)
                .json(&json!({"url": 5})),
            422,
            "invalid_body",
        ),
        (
            app.get("/api/calendar/no-such-thing/", &token),
            404,
            "not_found",
        ),
        (
            app.http
                .delete(app.url("/api/calendar/connections/"))
                .bearer_auth(&token),
            405,
            "method_not_allowed",
        ),
    ];
    for (request, want_status, want_code) in cases {
        let request = request.build().unwrap();
        let what = format!("{} {}", request.method(), request.url());
        let (status, body) = json(app.http.execute(request).await.unwrap()).await;
        assert_eq!(
            (status, error_code(&body).as_str()),
            (want_status, want_code),
            "{what}: {body}"
        );
    }
}

async fn login_is_rate_limited(kind: BackendKind) {
    let Some(app) = TestApp::start(kind).await else {
        return;
    };
    app.add_user("alice");
    let attempt = |password: &'static str| {
        app.http
            .post(app.url("/login"))
            .form(&[("username", "alice"), ("password", password)])
            .send()
    };
    for _ in 0..5 {
        assert_eq!(attempt("guess").await.unwrap().status(), 401);
    }
    let limited = attempt(PASSWORD).await.unwrap();
    assert_eq!(
        limited.status(),
        429,
        "even the right password waits once the limit is hit"
    );
    assert!(limited.headers().contains_key("retry-after"));
}

async fn providers_without_configuration_answer_clearly(kind: BackendKind) {
    let Some(app) = TestApp::start(kind).await else {
        return;
    };
    let token = app.user_with_token("alice");
    for path in [
        "/api/calendar/google/authorize/",
        "/api/calendar/microsoft/authorize/",
    ] {
        let (status, body) = json(app.get(path, &token).send().await.unwrap()).await;
        assert_eq!(
            (status, error_code(&body).as_str()),
            (503, "provider_not_configured"),
            "{path}"
        );
    }
    // CalDAV and ICS need no configuration: a feed that cannot be fetched
    // is the provider's failure, said as such.
    let (status, body) = json(
        app.post("/api/calendar/ics/subscribe/", &token)
            .json(&json!({"url": "webcal://calendar.invalid/a.ics"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (502, "provider_error"),
        "{body}"
    );
}

async fn operations_endpoints_answer(kind: BackendKind) {
    let Some(app) = TestApp::start(kind).await else {
        return;
    };
    for path in ["/healthz", "/readyz"] {
        let (status, body) = json(app.http.get(app.url(path)).send().await.unwrap()).await;
        assert_eq!((status, body), (200, json!({"status": "ok"})), "{path}");
    }
    app.http
        .get(app.url("/api/calendar/connections/"))
        .send()
        .await
        .unwrap();
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains(
        "calsync_http_requests_total{method=\"GET\",route=\"/api/calendar/connections/\",status=\"401\"} 1"
    ), "{metrics}");
    let served = app
        .http
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/openapi.json"
    ))
    .unwrap_or_default();
    assert!(
        served == committed,
        "docs/openapi.json is stale: regenerate it with scripts/openapi.sh"
    );
}

async fn no_secret_reaches_the_log(kind: BackendKind) {
    let Some(app) = TestApp::start(kind).await else {
        return;
    };
    let token = app.user_with_token("alice");
    let (cookie, csrf) = app.login("alice").await;
    app.http
        .post(app.url("/login"))
        .form(&[("username", "alice"), ("password", "a wrong secret pw")])
        .send()
        .await
        .unwrap();
    app.get("/api/calendar/connections/", &token)
        .send()
        .await
        .unwrap();
    app.http
        .post(app.url("/api/calendar/sync/"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .header("origin", "http://localhost:8000")
        .send()
        .await
        .unwrap();
    app.get(
        "/api/calendar/events/?start=2026-01-01T00:00:00Z&end=2026-01-02T00:00:00Z",
        &token,
    )
    .send()
    .await
    .unwrap();
    let log = app.log_text();
    assert!(
        log.contains("logged in"),
        "the log was not captured:\n{log}"
    );
    let session = cookie
        .split("; ")
        .find_map(|c| c.strip_prefix("calsync_session="))
        .unwrap();
    let key = secrecy::ExposeSecret::expose_secret(&app.key).to_owned();
    for secret in [
        PASSWORD,
        "a wrong secret pw",
        token.as_str(),
        session,
        csrf.as_str(),
        key.as_str(),
    ] {
        assert!(
            !log.contains(secret),
            "a secret reached the log: {secret}\n{log}"
        );
    }
}

async fn sigterm_stops_cleanly_with_a_stream_open(kind: BackendKind) {
    let Some(mut app) = TestApp::start(kind).await else {
        return;
    };
    let token = app.user_with_token("alice");
    let mut stream = app
        .get("/api/calendar/events/stream/", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let first = stream.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: ready"));
    let status = app.terminate();
    assert!(status.success(), "calsync exited with {status}");
    assert!(app.log_text().contains("stopped"));
}

async fn a_wrong_key_is_refused_at_start(kind: BackendKind) {
    let Some(app) = TestApp::start(kind).await else {
        return;
    };
    let token = app.user_with_token("alice");
    let store = app.store().await;
    let alice = store.user_by_name("alice").await.unwrap().id;
    let secret = NewConnection {
        user_id: alice,
        provider: Provider::Google,
        account_id: "sub".into(),
        account_email: None,
        access_token: None,
        refresh_token: Some(SecretString::from("refresh")),
        token_expires_at: None,
        scopes: String::new(),
    };
    store
        .upsert_connection(&secret, jiff::Timestamp::now())
        .await
        .unwrap();
    store.close().await;
    drop(token);

    let other_key = calsync_store::seal::Keyring::generate_base64();
    let wrong = TestApp::command_with_key(&app, &other_key)
        .arg("migrate")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success());
    assert!(
        stderr.contains("CALSYNC_ENCRYPTION_KEY"),
        "unclear error: {stderr}"
    );

    let both = format!(
        "{},{}",
        secrecy::ExposeSecret::expose_secret(&other_key),
        secrecy::ExposeSecret::expose_secret(&app.key)
    );
    let rotated = TestApp::command_with_key(&app, &SecretString::from(both))
        .args(["keys", "rotate"])
        .output()
        .unwrap();
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    let now_new_only = TestApp::command_with_key(&app, &other_key)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        now_new_only.status.success(),
        "{}",
        String::from_utf8_lossy(&now_new_only.stderr)
    );
}
