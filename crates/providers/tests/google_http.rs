//! The Google client over real HTTP against a scripted local server: the
//! query parameters of every round, paging and sync tokens, retries and
//! backoff, 401/410/403/429 typing, the OAuth token endpoint, size limits.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use calsync_core::changes::{EventChange, EventStart, EventStatus, PageNext};
use calsync_providers::http::{HttpClient, HttpConfig, RetryPolicy};
use calsync_providers::oauth::Pkce;
use calsync_providers::{CalendarSource, EventsCursor, ProviderError};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::json;
use support::{Scripted, TestServer};

fn token() -> SecretString {
    SecretString::from("ya29.access-token-value")
}

fn ok(body: serde_json::Value) -> Scripted {
    Scripted::json(200, body)
}

fn google_error(code: u16, reason: &str, message: &str) -> Scripted {
    Scripted::json(
        code,
        json!({"error": {"code": code, "message": message,
            "errors": [{"domain": "global", "reason": reason, "message": message}]}}),
    )
}

fn timed(id: &str, start: &str, end: &str) -> serde_json::Value {
    json!({"id": id, "status": "confirmed", "summary": id,
           "start": {"dateTime": start, "timeZone": "Europe/Berlin"},
           "end": {"dateTime": end, "timeZone": "Europe/Berlin"}})
}

/// The round parameters every events.list request must carry.
fn assert_round_params(req: &support::Logged) {
    assert_eq!(req.param("maxResults"), Some("2500"));
    assert_eq!(req.param("singleEvents"), Some("false"));
    assert_eq!(req.param("showDeleted"), Some("true"));
    for forbidden in [
        "timeMin",
        "timeMax",
        "orderBy",
        "q",
        "updatedMin",
        "iCalUID",
        "privateExtendedProperty",
        "sharedExtendedProperty",
    ] {
        assert_eq!(req.param(forbidden), None, "{forbidden} must not be sent");
    }
    assert_eq!(
        req.authorization.as_deref(),
        Some("Bearer ya29.access-token-value")
    );
}

#[tokio::test]
async fn full_then_incremental_rounds_follow_every_page() {
    let server = TestServer::start().await;
    let google = server.google();
    let calendar = "en.usa#holiday@group.v.calendar.google.com";

    // Full round: three uneven pages, one of them empty.
    server.push(ok(json!({"kind": "calendar#events", "nextPageToken": "page-2",
        "items": [timed("a1", "2026-03-01T10:00:00+01:00", "2026-03-01T11:00:00+01:00"),
                  {"id": "allday1", "start": {"date": "2026-03-02"}, "end": {"date": "2026-03-03"}}]})));
    server.push(ok(
        json!({"kind": "calendar#events", "nextPageToken": "page-3", "items": []}),
    ));
    server.push(ok(
        json!({"kind": "calendar#events", "nextSyncToken": "sync-1",
        "items": [{"id": "gone1", "status": "cancelled"}]}),
    ));

    let p1 = google
        .list_events_page(&token(), calendar, &EventsCursor::Full)
        .await
        .unwrap();
    assert_eq!(p1.changes.len(), 2);
    let PageNext::Page(c2) = p1.next else {
        panic!("expected more pages")
    };
    let p2 = google
        .list_events_page(&token(), calendar, &EventsCursor::Page(c2))
        .await
        .unwrap();
    assert!(p2.changes.is_empty());
    let PageNext::Page(c3) = p2.next else {
        panic!("an empty page with a next token is not the end")
    };
    let p3 = google
        .list_events_page(&token(), calendar, &EventsCursor::Page(c3))
        .await
        .unwrap();
    assert_eq!(
        p3.changes,
        vec![EventChange::Removed {
            external_id: "gone1".into()
        }]
    );
    assert_eq!(
        p3.next,
        PageNext::Done {
            sync_token: "sync-1".into()
        }
    );

    // Incremental round: two pages; the second keeps the sync token.
    server.push(ok(json!({"nextPageToken": "inc-2",
        "items": [{"id": "s_20260309T090000Z", "status": "cancelled", "recurringEventId": "s",
                   "originalStartTime": {"dateTime": "2026-03-09T10:00:00+01:00", "timeZone": "Europe/Berlin"}}]})));
    server.push(ok(json!({"nextSyncToken": "sync-2", "items": []})));
    let i1 = google
        .list_events_page(&token(), calendar, &EventsCursor::Sync("sync-1".into()))
        .await
        .unwrap();
    match &i1.changes[..] {
        [EventChange::Upsert(e)] => {
            assert_eq!(e.status, EventStatus::Cancelled);
            assert_eq!(e.recurring_event_id.as_deref(), Some("s"));
        }
        other => panic!("{other:?}"),
    }
    let PageNext::Page(ci2) = i1.next else {
        panic!("expected a second incremental page")
    };
    let i2 = google
        .list_events_page(&token(), calendar, &EventsCursor::Page(ci2))
        .await
        .unwrap();
    assert_eq!(
        i2.next,
        PageNext::Done {
            sync_token: "sync-2".into()
        }
    );

    let log = server.log();
    assert_eq!(log.len(), 5);
    for req in &log {
        assert_eq!(req.method, "GET");
        // The calendar id is one percent-encoded path segment.
        assert_eq!(
            req.path,
            "/calendar/v3/calendars/en.usa%23holiday@group.v.calendar.google.com/events"
        );
        assert_round_params(req);
    }
    assert_eq!(
        (log[0].param("pageToken"), log[0].param("syncToken")),
        (None, None)
    );
    assert_eq!(
        (log[1].param("pageToken"), log[1].param("syncToken")),
        (Some("page-2"), None)
    );
    assert_eq!(
        (log[2].param("pageToken"), log[2].param("syncToken")),
        (Some("page-3"), None)
    );
    assert_eq!(
        (log[3].param("pageToken"), log[3].param("syncToken")),
        (None, Some("sync-1"))
    );
    assert_eq!(
        (log[4].param("pageToken"), log[4].param("syncToken")),
        (Some("inc-2"), Some("sync-1"))
    );
}

#[tokio::test]
async fn expired_sync_token_is_typed_and_not_retried() {
    let server = TestServer::start().await;
    server.push(Scripted::json(
        410,
        json!({"error": {"errors": [{"domain": "calendar", "reason": "fullSyncRequired",
            "message": "Sync token is no longer valid, a full sync is required.",
            "locationType": "parameter", "location": "syncToken"}],
            "code": 410, "message": "Sync token is no longer valid, a full sync is required."}}),
    ));
    let err = server
        .google()
        .list_events_page(&token(), "primary", &EventsCursor::Sync("old".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::SyncTokenExpired), "{err:?}");
    assert_eq!(server.log().len(), 1);
}

#[tokio::test]
async fn unauthorized_is_typed_and_not_retried() {
    let server = TestServer::start().await;
    server.push(Scripted::json(
        401,
        json!({"error": {"code": 401, "message": "Request had invalid authentication credentials.",
            "errors": [{"message": "Invalid Credentials", "domain": "global", "reason": "authError",
                        "location": "Authorization", "locationType": "header"}],
            "status": "UNAUTHENTICATED"}}),
    ));
    let err = server.google().list_calendars(&token()).await.unwrap_err();
    assert!(matches!(err, ProviderError::Unauthorized), "{err:?}");
    assert_eq!(server.log().len(), 1);
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_retried_then_succeed() {
    let server = TestServer::start().await;
    server.push(google_error(503, "backendError", "Backend Error"));
    server.push(Scripted::json(
        403,
        json!({"error": {"code": 403, "message": "Rate Limit Exceeded",
            "errors": [{"domain": "usageLimits", "reason": "rateLimitExceeded", "message": "Rate Limit Exceeded"}],
            "status": "PERMISSION_DENIED"}}),
    ));
    server.push(
        Scripted::json(429, json!({"error": {"code": 429, "message": "Too many"}}))
            .header("retry-after", "0"),
    );
    server.push(ok(json!({"nextSyncToken": "s", "items": []})));
    let page = server
        .google()
        .list_events_page(&token(), "primary", &EventsCursor::Full)
        .await
        .unwrap();
    assert_eq!(
        page.next,
        PageNext::Done {
            sync_token: "s".into()
        }
    );
    assert_eq!(server.log().len(), 4);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let server = TestServer::start().await;
    server.push(Scripted::json(429, json!({})).header("retry-after", "1"));
    server.push(ok(json!({"items": []})));
    let started = Instant::now();
    let calendars = server.google().list_calendars(&token()).await.unwrap();
    assert!(calendars.is_empty());
    // The backoff alone would be a few milliseconds.
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(server.log().len(), 2);
}

#[tokio::test]
async fn rate_limit_persisting_after_retries_is_typed() {
    let server = TestServer::start().await;
    for _ in 0..4 {
        server.push(Scripted::json(429, json!({})).header("retry-after", "0"));
    }
    let err = server.google().list_calendars(&token()).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::RateLimited { retry_after: Some(d) } if d == Duration::ZERO),
        "{err:?}"
    );
    // One attempt and three retries.
    assert_eq!(server.log().len(), 4);

    // A Retry-After beyond what we wait in place ends the retries at once.
    let server = TestServer::start().await;
    server.push(Scripted::json(429, json!({})).header("retry-after", "3600"));
    let err = server.google().list_calendars(&token()).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(3600)),
        "{err:?}"
    );
    assert_eq!(server.log().len(), 1);
}

#[tokio::test]
async fn forbidden_is_final() {
    let server = TestServer::start().await;
    server.push(google_error(
        403,
        "insufficientPermissions",
        "Insufficient Permission",
    ));
    let err = server
        .google()
        .list_events_page(&token(), "primary", &EventsCursor::Full)
        .await
        .unwrap_err();
    match err {
        ProviderError::Provider { status, reason, .. } => {
            assert_eq!((status, reason.as_str()), (403, "insufficientPermissions"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.log().len(), 1);
}

#[tokio::test]
async fn calendar_list_follows_pages_and_maps_colours() {
    let server = TestServer::start().await;
    server.push(ok(
        json!({"kind": "calendar#calendarList", "nextPageToken": "cl-2",
        "items": [{"id": "ada@example.com", "summary": "ada@example.com", "primary": true,
                   "backgroundColor": "#9fe1e7", "colorId": "14", "timeZone": "Europe/London",
                   "accessRole": "owner"}]}),
    ));
    server.push(ok(
        json!({"kind": "calendar#calendarList", "nextSyncToken": "cl-sync",
        "items": [{"id": "work@group.calendar.google.com", "summary": "Work", "colorId": "3",
                   "accessRole": "writer"}]}),
    ));
    // Through the provider-neutral trait.
    let calendars = CalendarSource::list_calendars(&server.google(), &token())
        .await
        .unwrap();
    let names: Vec<(&str, Option<&str>, bool)> = calendars
        .iter()
        .map(|c| (c.name.as_str(), c.color.as_deref(), c.is_primary))
        .collect();
    assert_eq!(
        names,
        vec![
            ("ada@example.com", Some("#9fe1e7"), true),
            ("Work", Some("#f83a22"), false)
        ]
    );
    let log = server.log();
    assert_eq!(log[0].path, "/calendar/v3/users/me/calendarList");
    assert_eq!(log[0].param("maxResults"), Some("250"));
    assert_eq!(log[1].param("pageToken"), Some("cl-2"));
}

#[tokio::test]
async fn a_bad_event_is_skipped_not_fatal() {
    let server = TestServer::start().await;
    server.push(ok(json!({"nextSyncToken": "s", "items": [
        {"id": "broken", "start": {"dateTime": "not a time"}, "end": {"date": "2026-01-01"}},
        {"id": "fine", "start": {"date": "2026-01-01"}, "end": {"date": "2026-01-02"}}
    ]})));
    let page = server
        .google()
        .list_events_page(&token(), "primary", &EventsCursor::Full)
        .await
        .unwrap();
    match &page.changes[..] {
        [EventChange::Upsert(e)] => {
            assert_eq!(e.external_id, "fine");
            assert_eq!(e.start, EventStart::Date("2026-01-01".parse().unwrap()));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn last_page_without_sync_token_is_a_decode_error() {
    let server = TestServer::start().await;
    server.push(ok(json!({"items": []})));
    let err = server
        .google()
        .list_events_page(&token(), "primary", &EventsCursor::Full)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Decode(_)), "{err:?}");
    // A cursor we never handed out is refused before any request.
    let err = server
        .google()
        .list_events_page(&token(), "primary", &EventsCursor::Page("raw-token".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Decode(_)), "{err:?}");
    assert_eq!(server.log().len(), 1);
}

#[tokio::test]
async fn oversized_answers_are_refused() {
    let server = TestServer::start().await;
    server.push(ok(json!({"items": [], "padding": "x".repeat(5000)})));
    let http = HttpClient::new(HttpConfig {
        max_body_bytes: 1024,
        retry: RetryPolicy::none(),
        ..HttpConfig::default()
    })
    .unwrap();
    let err = server
        .google_with(http)
        .list_calendars(&token())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::TooLarge { limit: 1024 }),
        "{err:?}"
    );
}

#[tokio::test]
async fn slow_answers_time_out_as_network_errors() {
    let server = TestServer::start().await;
    server.push(ok(json!({"items": []})).delayed(Duration::from_millis(500)));
    let http = HttpClient::new(HttpConfig {
        timeout: Duration::from_millis(100),
        retry: RetryPolicy::none(),
        ..HttpConfig::default()
    })
    .unwrap();
    let err = server
        .google_with(http)
        .list_calendars(&token())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Network(_)), "{err:?}");
    let shown = err.to_string();
    assert!(shown.contains("timed out"), "{shown}");
    // The URL (which can carry sync tokens) is not in the message.
    assert!(!shown.contains("calendarList"), "{shown}");
}

#[tokio::test]
async fn unreachable_provider_is_a_network_error_after_retries() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let server = TestServer::start().await;
    let mut config = calsync_providers::google::GoogleConfig::new(
        "cid".into(),
        Some(SecretString::from("secret")),
        "http://localhost/cb/".into(),
    );
    config.api_base = format!("http://127.0.0.1:{port}");
    let google =
        calsync_providers::google::GoogleClient::with_http(config, support::fast_http()).unwrap();
    let err = google.list_calendars(&token()).await.unwrap_err();
    assert!(matches!(err, ProviderError::Network(_)), "{err:?}");
    assert!(err.is_transient());
    assert!(server.log().is_empty());
}

#[tokio::test]
async fn authorization_url_has_googles_parameters() {
    let server = TestServer::start().await;
    let pkce = Pkce::generate().unwrap();
    let url = server
        .google()
        .authorization_url("state-123", &pkce.challenge, Some("ada@example.com"))
        .unwrap();
    let parsed = reqwest::Url::parse(&url).unwrap();
    assert_eq!(parsed.path(), "/o/oauth2/v2/auth");
    let q: std::collections::HashMap<String, String> = parsed.query_pairs().into_owned().collect();
    let expect = [
        ("response_type", "code"),
        ("client_id", "cid.apps.googleusercontent.com"),
        (
            "redirect_uri",
            "http://localhost:8000/api/calendar/google/callback/",
        ),
        (
            "scope",
            "https://www.googleapis.com/auth/calendar.readonly openid email",
        ),
        ("state", "state-123"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("access_type", "offline"),
        ("prompt", "consent"),
        ("include_granted_scopes", "true"),
        ("login_hint", "ada@example.com"),
    ];
    for (k, v) in expect {
        assert_eq!(q.get(k).map(String::as_str), Some(v), "{k}");
    }
    assert!(!url.contains("client-secret-value"));
}

fn id_token(claims: serde_json::Value) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.{}",
        b64.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
        b64.encode(claims.to_string()),
        b64.encode("signature")
    )
}

#[tokio::test]
async fn code_exchange_refresh_identity_and_revoke() {
    let server = TestServer::start().await;
    let google = server.google();
    let pkce = Pkce::generate().unwrap();

    server.push(ok(json!({
        "access_token": "ya29.first", "expires_in": 3599, "refresh_token": "1//refresh-one",
        "scope": "https://www.googleapis.com/auth/calendar.readonly openid https://www.googleapis.com/auth/userinfo.email",
        "token_type": "Bearer",
        "id_token": id_token(json!({"iss": "https://accounts.google.com", "aud": "cid.apps.googleusercontent.com", "exp": jiff::Timestamp::now().as_second() + 3600, "sub": "110169484474386276334", "email": "ada@example.com"}))
    })));
    let tokens = google
        .exchange_code("4/0Acode-value", &pkce.verifier)
        .await
        .unwrap();
    assert_eq!(tokens.access_token.expose_secret(), "ya29.first");
    assert_eq!(
        tokens.refresh_token.as_ref().unwrap().expose_secret(),
        "1//refresh-one"
    );
    assert_eq!(
        tokens.has_scope("https://www.googleapis.com/auth/calendar.readonly"),
        Some(true)
    );
    let who = google.identity(&tokens).await.unwrap();
    assert_eq!(who.sub, "110169484474386276334");
    assert_eq!(who.email.as_deref(), Some("ada@example.com"));

    let log = server.log();
    assert_eq!(log.len(), 1, "identity came from the id_token");
    let exchange = &log[0];
    assert_eq!(
        (exchange.method.as_str(), exchange.path.as_str()),
        ("POST", "/token")
    );
    assert_eq!(
        exchange.form("grant_type").as_deref(),
        Some("authorization_code")
    );
    assert_eq!(exchange.form("code").as_deref(), Some("4/0Acode-value"));
    assert_eq!(
        exchange.form("code_verifier").as_deref(),
        Some(pkce.verifier.expose_secret())
    );
    assert_eq!(
        exchange.form("redirect_uri").as_deref(),
        Some("http://localhost:8000/api/calendar/google/callback/")
    );
    assert_eq!(
        exchange.form("client_id").as_deref(),
        Some("cid.apps.googleusercontent.com")
    );
    assert_eq!(
        exchange.form("client_secret").as_deref(),
        Some("client-secret-value")
    );

    // Refresh: no new refresh token in the answer -> the old one is kept.
    server.push(ok(
        json!({"access_token": "ya29.second", "expires_in": 3599, "token_type": "Bearer"}),
    ));
    let old = SecretString::from("1//refresh-one");
    let refreshed = google.refresh(&old).await.unwrap();
    assert_eq!(refreshed.access_token.expose_secret(), "ya29.second");
    assert_eq!(
        refreshed.refresh_token.unwrap().expose_secret(),
        "1//refresh-one"
    );
    let log = server.log();
    assert_eq!(log[1].form("grant_type").as_deref(), Some("refresh_token"));
    assert_eq!(
        log[1].form("refresh_token").as_deref(),
        Some("1//refresh-one")
    );

    // Userinfo when there is no id_token (oauth2 v2 answers `id`).
    server.push(ok(
        json!({"id": "110169484474386276334", "email": "ada@example.com", "verified_email": true}),
    ));
    let who = google
        .userinfo(&SecretString::from("ya29.second"))
        .await
        .unwrap();
    assert_eq!(who.sub, "110169484474386276334");
    let log = server.log();
    assert_eq!(log[2].path, "/oauth2/v2/userinfo");
    assert_eq!(log[2].authorization.as_deref(), Some("Bearer ya29.second"));

    // Revoke: 200, and an already-dead token counts as revoked.
    server.push(ok(json!({})));
    google.revoke(&old).await.unwrap();
    server.push(Scripted::json(
        400,
        json!({"error": "invalid_token", "error_description": "Token expired or revoked"}),
    ));
    google.revoke(&old).await.unwrap();
    let log = server.log();
    assert_eq!(
        (log[3].method.as_str(), log[3].path.as_str()),
        ("POST", "/revoke")
    );
    assert_eq!(log[3].form("token").as_deref(), Some("1//refresh-one"));
}

#[tokio::test]
async fn refused_grants_are_typed_and_never_show_secrets() {
    let server = TestServer::start().await;
    let google = server.google();
    server.push(Scripted::json(
        400,
        json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."}),
    ));
    let err = google
        .refresh(&SecretString::from("1//dead-refresh-token"))
        .await
        .unwrap_err();
    assert!(err.needs_reauth(), "{err:?}");
    assert!(
        matches!(&err, ProviderError::InvalidGrant { reason } if reason == "Token has been expired or revoked.")
    );
    assert_eq!(server.log().len(), 1, "invalid_grant is not retried");

    // A server that echoes what we sent: nothing secret reaches the message.
    server.push(Scripted::json(
        401,
        json!({"error": "invalid_client", "error_description": "client-secret-value / 4/0Acode-echo / verifier"}),
    ));
    let pkce = Pkce::generate().unwrap();
    let err = google
        .exchange_code("4/0Acode-echo", &pkce.verifier)
        .await
        .unwrap_err();
    let shown = format!("{err} {err:?}");
    for secret in ["client-secret-value", "4/0Acode-echo"] {
        assert!(!shown.contains(secret), "{shown}");
    }

    // Token endpoint hiccups are retried.
    server.push(Scripted::json(
        503,
        json!({"error": "temporarily_unavailable"}),
    ));
    server.push(ok(json!({"access_token": "ya29.ok", "expires_in": 10})));
    let tokens = google
        .refresh(&SecretString::from("1//good-refresh"))
        .await
        .unwrap();
    assert_eq!(tokens.access_token.expose_secret(), "ya29.ok");
}

#[tokio::test]
async fn a_public_client_sends_no_secret_and_404_is_typed() {
    let server = TestServer::start().await;
    let mut config = calsync_providers::google::GoogleConfig::new(
        "public-client".into(),
        None,
        "http://localhost:8000/api/calendar/google/callback/".into(),
    );
    config.token_url = server.url("/token");
    config.api_base = server.url("");
    let google =
        calsync_providers::google::GoogleClient::with_http(config, support::fast_http()).unwrap();
    server.push(ok(json!({"access_token": "ya29.pub", "expires_in": 3599})));
    let pkce = Pkce::generate().unwrap();
    let tokens = google
        .exchange_code("4/0Acode", &pkce.verifier)
        .await
        .unwrap();
    assert!(
        tokens.refresh_token.is_none(),
        "no consent shown -> no refresh token"
    );
    let log = server.log();
    assert_eq!(log[0].form("client_secret"), None);
    assert_eq!(log[0].form("client_id").as_deref(), Some("public-client"));

    server.push(google_error(404, "notFound", "Not Found"));
    let err = google
        .list_events_page(
            &token(),
            "gone@group.calendar.google.com",
            &EventsCursor::Full,
        )
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(server.log().len(), 2, "404 is not retried");
}
