//! The Microsoft client over real HTTP against scripted local servers: the
//! authorization URL, code exchange and refresh-token rotation, AADSTS
//! errors, `/me`, calendar paging, a delta round and an incremental round,
//! 410/401/429 typing, and that the bearer token never leaves the configured
//! API origin (`shared/specs/microsoft-graph.md` §A1–§A3, §A6).

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use calsync_core::changes::{EventChange, EventStart, EventStatus, PageNext};
use calsync_providers::http::HttpClient;
use calsync_providers::microsoft::{MicrosoftClient, MicrosoftConfig, MicrosoftIdentity};
use calsync_providers::oauth::Pkce;
use calsync_providers::{EventsCursor, ProviderError};
use jiff::Timestamp;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::json;
use support::{fast_http, Scripted};

/// A request as the mock saw it, every header included (the shared test
/// server keeps only `Authorization`; the Prefer headers matter here).
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    /// The raw query, as sent.
    raw_query: Option<String>,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn headers(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn authorization(&self) -> Option<&str> {
        self.headers("authorization").first().copied()
    }

    fn form(&self, name: &str) -> Option<String> {
        pairs(&self.body)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

fn pairs(text: &str) -> Vec<(String, String)> {
    let url = reqwest::Url::parse(&format!("http://x/?{text}")).unwrap();
    url.query_pairs().into_owned().collect()
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Scripted>,
    log: Vec<Seen>,
}

/// A scripted Graph + identity platform stand-in on `127.0.0.1:0`.
#[derive(Clone)]
struct Mock {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl Mock {
    async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, inner }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn push(&self, answer: Scripted) {
        self.inner.lock().unwrap().script.push_back(answer);
    }

    fn log(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().log.clone()
    }

    fn config(&self) -> MicrosoftConfig {
        let mut config = MicrosoftConfig::new(
            "11111111-2222-3333-4444-555555555555".into(),
            SecretString::from("client~secret~value"),
            "http://localhost:8000/api/calendar/microsoft/callback/".into(),
        );
        config.auth_url = self.url("/common/oauth2/v2.0/authorize");
        config.token_url = self.url("/common/oauth2/v2.0/token");
        config.api_base = self.url("/v1.0");
        config
    }

    fn client(&self) -> MicrosoftClient {
        self.client_with(fast_http())
    }

    fn client_with(&self, http: HttpClient) -> MicrosoftClient {
        MicrosoftClient::with_http(self.config(), http).unwrap()
    }
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = {
        let mut inner = inner.lock().unwrap();
        inner.log.push(Seen {
            method: method.to_string(),
            path: uri.path().to_owned(),
            raw_query: uri.query().map(str::to_owned),
            query: uri.query().map(pairs).unwrap_or_default(),
            headers: headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        v.to_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        inner.script.pop_front()
    };
    let Some(answer) = answer else {
        return (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "script exhausted",
        )
            .into_response();
    };
    let mut response = Response::builder().status(answer.status);
    for (name, value) in &answer.headers {
        response = response.header(*name, value);
    }
    response.body(answer.body.into()).unwrap()
}

const ACCESS: &str = "EwBwA8l6BAAUbDba3x2access-token-value";

fn access() -> SecretString {
    SecretString::from(ACCESS)
}

fn ok(body: serde_json::Value) -> Scripted {
    Scripted::json(200, body)
}

fn graph_error(status: u16, code: &str, message: &str) -> Scripted {
    Scripted::json(
        status,
        json!({"error": {"code": code, "message": message,
            "innerError": {"date": "2026-03-01T10:00:00", "request-id": "r1", "client-request-id": "c1"}}}),
    )
}

/// An identity-platform error answer in its full shape (spec §A1).
fn aad_error(status: u16, error: &str, code: u32, text: &str) -> Scripted {
    Scripted::json(
        status,
        json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {text}\r\nTrace ID: 0b1c2d3e\r\nCorrelation ID: 9f8e7d6c\r\nTimestamp: 2026-03-01 10:00:00Z"),
            "error_codes": [code],
            "timestamp": "2026-03-01 10:00:00Z",
            "trace_id": "0b1c2d3e",
            "correlation_id": "9f8e7d6c",
            "error_uri": "https://login.microsoftonline.com/error?code=".to_owned() + &code.to_string()
        }),
    )
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn window() -> (Timestamp, Timestamp) {
    (ts("2026-02-01T00:00:00Z"), ts("2027-03-01T00:00:00Z"))
}

fn timed(id: &str, subject: &str, start: &str, end: &str) -> serde_json::Value {
    json!({"@odata.etag": "W/\"ck-1\"", "id": id, "type": "singleInstance", "subject": subject,
        "changeKey": "ck-1", "isAllDay": false, "isCancelled": false, "showAs": "busy",
        "originalStartTimeZone": "Pacific Standard Time", "originalEndTimeZone": "Pacific Standard Time",
        "lastModifiedDateTime": "2026-02-20T08:00:00.1234567Z",
        "webLink": format!("https://outlook.live.com/owa/?itemid={id}"),
        "start": {"dateTime": start, "timeZone": "UTC"},
        "end": {"dateTime": end, "timeZone": "UTC"}})
}

#[tokio::test]
async fn authorization_url_carries_the_microsoft_parameters() {
    let mock = Mock::start().await;
    let pkce = Pkce::generate().unwrap();
    let url = mock
        .client()
        .authorization_url("st&te-123", &pkce.challenge)
        .unwrap();
    let parsed = reqwest::Url::parse(&url).unwrap();
    assert_eq!(parsed.path(), "/common/oauth2/v2.0/authorize");
    let query: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    let get = |k: &str| {
        let found: Vec<&str> = query
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .collect();
        assert!(found.len() <= 1, "{k} sent twice");
        found.first().copied()
    };
    assert_eq!(
        get("client_id"),
        Some("11111111-2222-3333-4444-555555555555")
    );
    assert_eq!(get("response_type"), Some("code"));
    assert_eq!(
        get("redirect_uri"),
        Some("http://localhost:8000/api/calendar/microsoft/callback/")
    );
    assert_eq!(
        get("scope"),
        Some("offline_access User.Read Calendars.Read")
    );
    assert_eq!(get("state"), Some("st&te-123"));
    assert_eq!(get("code_challenge"), Some(pkce.challenge.as_str()));
    assert_eq!(get("code_challenge_method"), Some("S256"));
    assert_eq!(get("response_mode"), Some("query"));
    assert_eq!(get("prompt"), Some("select_account"));
    assert!(!url.contains("client~secret"), "{url}");
    assert!(!url.contains(pkce.verifier.expose_secret()));
    assert!(mock.log().is_empty(), "building the URL sends nothing");

    // The defaults are Microsoft's real endpoints, tenant `common`.
    let real = MicrosoftConfig::new(
        "id".into(),
        SecretString::from("s"),
        "http://localhost/cb/".into(),
    );
    assert_eq!(
        real.auth_url,
        "https://login.microsoftonline.com/common/oauth2/v2.0/authorize"
    );
    assert_eq!(
        real.token_url,
        "https://login.microsoftonline.com/common/oauth2/v2.0/token"
    );
    assert_eq!(real.api_base, "https://graph.microsoft.com/v1.0");
}

#[tokio::test]
async fn code_exchange_and_refresh_rotation() {
    let mock = Mock::start().await;
    let ms = mock.client();
    let verifier = SecretString::from("verifier-0123456789-abcdefghijklmnopqrstuvwxyz");

    mock.push(ok(
        json!({"token_type": "Bearer", "scope": "User.Read Calendars.Read",
        "expires_in": 3599, "ext_expires_in": 3599,
        "access_token": "EwB-access-1", "refresh_token": "M.C5_BAY.rt-1"}),
    ));
    let tokens = ms
        .exchange_code("M.C5_code-value-0001", &verifier)
        .await
        .unwrap();
    assert_eq!(tokens.access_token.expose_secret(), "EwB-access-1");
    assert_eq!(
        tokens.refresh_token.as_ref().unwrap().expose_secret(),
        "M.C5_BAY.rt-1"
    );
    assert!(tokens.expires_at.is_some());

    // Each refresh hands out a new refresh token: the result carries it.
    mock.push(ok(
        json!({"token_type": "Bearer", "scope": "User.Read Calendars.Read",
        "expires_in": 3599, "access_token": "EwB-access-2", "refresh_token": "M.C5_BAY.rt-2"}),
    ));
    let refreshed = ms
        .refresh(tokens.refresh_token.as_ref().unwrap())
        .await
        .unwrap();
    assert_eq!(refreshed.access_token.expose_secret(), "EwB-access-2");
    assert_eq!(
        refreshed.refresh_token.as_ref().unwrap().expose_secret(),
        "M.C5_BAY.rt-2"
    );

    let log = mock.log();
    assert_eq!(log.len(), 2);
    let exchange = &log[0];
    assert_eq!(
        (exchange.method.as_str(), exchange.path.as_str()),
        ("POST", "/common/oauth2/v2.0/token")
    );
    assert_eq!(
        exchange.form("grant_type").as_deref(),
        Some("authorization_code")
    );
    assert_eq!(
        exchange.form("code").as_deref(),
        Some("M.C5_code-value-0001")
    );
    assert_eq!(
        exchange.form("code_verifier").as_deref(),
        Some(verifier.expose_secret())
    );
    assert_eq!(
        exchange.form("redirect_uri").as_deref(),
        Some("http://localhost:8000/api/calendar/microsoft/callback/")
    );
    assert_eq!(
        exchange.form("client_id").as_deref(),
        Some("11111111-2222-3333-4444-555555555555")
    );
    assert_eq!(
        exchange.form("client_secret").as_deref(),
        Some("client~secret~value")
    );
    let refresh = &log[1];
    assert_eq!(refresh.form("grant_type").as_deref(), Some("refresh_token"));
    assert_eq!(
        refresh.form("refresh_token").as_deref(),
        Some("M.C5_BAY.rt-1")
    );
    assert_eq!(
        refresh.form("scope").as_deref(),
        Some("offline_access User.Read Calendars.Read")
    );
    assert_eq!(
        refresh.form("client_secret").as_deref(),
        Some("client~secret~value")
    );
    assert!(refresh.authorization().is_none());
}

#[tokio::test]
async fn aadsts_errors_mean_reconnect_and_never_show_secrets() {
    let mock = Mock::start().await;
    let ms = mock.client();
    let rt = SecretString::from("M.C5_BAY.refresh-token-secret");

    // 90 days idle; AAD echoes the token, which must not show.
    mock.push(aad_error(
        400,
        "invalid_grant",
        700082,
        "The refresh token has expired due to inactivity. Token M.C5_BAY.refresh-token-secret was inactive for 90.00:00:00.",
    ));
    let err = ms.refresh(&rt).await.unwrap_err();
    assert!(err.needs_reauth(), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("AADSTS700082"), "{shown}");
    assert!(!shown.contains("refresh-token-secret"), "{shown}");
    assert!(!shown.contains("Trace ID"), "{shown}");

    // Revoked (password reset), MFA required: reconnect too.
    mock.push(aad_error(
        400,
        "invalid_grant",
        50173,
        "The provided grant has expired due to it being revoked.",
    ));
    assert!(ms.refresh(&rt).await.unwrap_err().needs_reauth());
    mock.push(aad_error(
        400,
        "interaction_required",
        50076,
        "Due to a configuration change made by your administrator, you must use multi-factor authentication.",
    ));
    assert!(ms.refresh(&rt).await.unwrap_err().needs_reauth());

    // A code redeemed twice.
    mock.push(aad_error(
        400,
        "invalid_grant",
        54005,
        "OAuth2 Authorization code was already redeemed, please retry with a new valid code.",
    ));
    let err = ms
        .exchange_code("M.C5_code-value-0002", &SecretString::from("v".repeat(43)))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::InvalidGrant { .. }), "{err:?}");
    assert!(!err.to_string().contains("M.C5_code-value-0002"));

    // A wrong client secret is the operator's problem, not a reconnect.
    mock.push(aad_error(
        401,
        "invalid_client",
        7000215,
        "Invalid client secret provided. Ensure the secret being sent is client~secret~value.",
    ));
    let err = ms.refresh(&rt).await.unwrap_err();
    assert!(!err.needs_reauth());
    assert!(
        matches!(&err, ProviderError::Provider { status: 401, reason, .. } if reason == "invalid_client"),
        "{err:?}"
    );
    assert!(!err.to_string().contains("client~secret~value"), "{err}");
    // None of these were retried.
    assert_eq!(mock.log().len(), 5);
}

#[tokio::test]
async fn identity_from_me() {
    let mock = Mock::start().await;
    let ms = mock.client();
    mock.push(ok(
        json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
        "id": "87d349ed-44d7-43e1-9a83-5f2406dee5bd", "displayName": "Ada Lovelace",
        "mail": null, "userPrincipalName": "ada@contoso.onmicrosoft.com"}),
    ));
    mock.push(ok(json!({"id": "0001", "mail": "ada@example.com",
        "userPrincipalName": "ada_example.com#EXT#@contoso.onmicrosoft.com"})));
    assert_eq!(
        ms.identity(&access()).await.unwrap(),
        MicrosoftIdentity {
            id: "87d349ed-44d7-43e1-9a83-5f2406dee5bd".into(),
            email: Some("ada@contoso.onmicrosoft.com".into()),
        }
    );
    assert_eq!(
        ms.identity(&access()).await.unwrap().email.as_deref(),
        Some("ada@example.com")
    );
    for req in mock.log() {
        assert_eq!(
            (req.method.as_str(), req.path.as_str()),
            ("GET", "/v1.0/me")
        );
        assert_eq!(
            req.authorization(),
            Some(format!("Bearer {ACCESS}").as_str())
        );
    }

    mock.push(graph_error(
        401,
        "InvalidAuthenticationToken",
        "Access token has expired or is not yet valid.",
    ));
    let err = ms.identity(&access()).await.unwrap_err();
    assert!(matches!(err, ProviderError::Unauthorized), "{err:?}");
    assert_eq!(mock.log().len(), 3, "a 401 is not retried");
}

#[tokio::test]
async fn calendars_follow_next_link() {
    let mock = Mock::start().await;
    let ms = mock.client();
    mock.push(ok(json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#me/calendars",
        "@odata.nextLink": mock.url("/v1.0/me/calendars?$skiptoken=page-2"),
        "value": [{"id": "AAMkCal1", "name": "Calendar", "color": "auto", "hexColor": "#0F6CBD",
            "isDefaultCalendar": true, "canEdit": true, "canShare": true,
            "owner": {"name": "Ada", "address": "ada@example.com"}}]})));
    mock.push(ok(json!({"value": [
        {"id": "AAMkCal2", "name": "Birthdays", "color": "lightPink", "hexColor": "",
            "isDefaultCalendar": false, "canEdit": false, "canShare": false}]})));
    let calendars = ms.list_calendars(&access()).await.unwrap();
    assert_eq!(calendars.len(), 2);
    assert_eq!(calendars[0].external_id, "AAMkCal1");
    assert!(calendars[0].is_primary);
    assert_eq!(calendars[0].color.as_deref(), Some("#0f6cbd"));
    assert_eq!(calendars[0].access_role.as_deref(), Some("owner"));
    assert_eq!(calendars[1].name, "Birthdays");
    assert!(!calendars[1].is_primary);
    assert_eq!(calendars[1].color.as_deref(), Some("#f4a3c0"));
    assert_eq!(calendars[1].access_role.as_deref(), Some("reader"));

    let log = mock.log();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].path, "/v1.0/me/calendars");
    assert_eq!(log[0].raw_query, None);
    assert_eq!(log[1].path, "/v1.0/me/calendars");
    assert_eq!(log[1].param("$skiptoken"), Some("page-2"));
    assert!(log
        .iter()
        .all(|r| r.authorization() == Some(format!("Bearer {ACCESS}").as_str())));
}

#[tokio::test]
async fn delta_round_over_three_pages_then_an_incremental_round() {
    let mock = Mock::start().await;
    let ms = mock.client();
    let calendar = "AAMkAGI2TG93AAA/x+y=";
    let base = "/v1.0/me/calendars/AAMkAGI2TG93AAA%2Fx+y=/calendarView/delta";
    let link = |query: &str| mock.url(&format!("{base}?{query}"));

    // Page 1: an event and an all-day instance of a series.
    mock.push(ok(json!({
    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(event)",
    "@odata.nextLink": link("$skiptoken=skip-2"),
    "value": [
        timed("AAMkA", "Planning", "2026-03-10T16:00:00.0000000", "2026-03-10T17:00:00.0000000"),
        {"id": "AAMkBins", "type": "occurrence", "seriesMasterId": "AAMkBinsMaster",
         "subject": "Bins", "isAllDay": true, "originalStart": "2026-03-12T00:00:00Z",
         "originalStartTimeZone": "W. Europe Standard Time", "showAs": "free",
         "start": {"dateTime": "2026-03-12T00:00:00.0000000", "timeZone": "UTC"},
         "end": {"dateTime": "2026-03-13T00:00:00.0000000", "timeZone": "UTC"}}
    ]})));
    // Page 2: empty, but not the end.
    mock.push(ok(
        json!({"@odata.nextLink": link("$skiptoken=skip-3"), "value": []}),
    ));
    // Page 3: A again (a replay, changed), a cancelled exception, the end.
    mock.push(ok(json!({
    "@odata.deltaLink": link("$deltatoken=delta-1"),
    "value": [
        timed("AAMkA", "Planning v2", "2026-03-10T16:00:00.0000000", "2026-03-10T17:30:00.0000000"),
        {"id": "AAMkExc", "type": "exception", "seriesMasterId": "AAMkWeekly", "subject": "Weekly",
         "isCancelled": true, "originalStart": "2026-03-16T08:00:00Z",
         "originalStartTimeZone": "W. Europe Standard Time",
         "start": {"dateTime": "2026-03-16T08:00:00.0000000", "timeZone": "UTC"},
         "end": {"dateTime": "2026-03-16T09:00:00.0000000", "timeZone": "UTC"}}
    ]})));

    let p1 = ms
        .list_events_page(&access(), calendar, &EventsCursor::Full, window())
        .await
        .unwrap();
    let [EventChange::Upsert(a), EventChange::Upsert(bins)] = &p1.changes[..] else {
        panic!("{:?}", p1.changes)
    };
    assert_eq!(a.title, "Planning");
    assert_eq!(
        a.start,
        EventStart::DateTime {
            instant: ts("2026-03-10T16:00:00Z"),
            zone: Some("America/Los_Angeles".into())
        }
    );
    assert_eq!(bins.start, EventStart::Date("2026-03-12".parse().unwrap()));
    assert_eq!(bins.end, EventStart::Date("2026-03-13".parse().unwrap()));
    assert_eq!(bins.recurring_event_id.as_deref(), Some("AAMkBinsMaster"));
    assert_eq!(
        bins.original_start,
        Some(EventStart::Date("2026-03-12".parse().unwrap()))
    );
    let PageNext::Page(c2) = p1.next else {
        panic!("expected more pages")
    };
    // The caller's window does not matter inside a round.
    let moved = (ts("2026-06-01T00:00:00Z"), ts("2027-06-01T00:00:00Z"));
    let p2 = ms
        .list_events_page(&access(), calendar, &EventsCursor::Page(c2), moved)
        .await
        .unwrap();
    assert!(p2.changes.is_empty());
    let PageNext::Page(c3) = p2.next else {
        panic!("an empty page with a nextLink is not the end")
    };
    let p3 = ms
        .list_events_page(&access(), calendar, &EventsCursor::Page(c3), window())
        .await
        .unwrap();
    let [EventChange::Upsert(a2), EventChange::Upsert(exc)] = &p3.changes[..] else {
        panic!("{:?}", p3.changes)
    };
    assert_eq!(a2.external_id, "AAMkA");
    assert_eq!(a2.title, "Planning v2");
    assert_eq!(exc.status, EventStatus::Cancelled);
    assert_eq!(exc.recurring_event_id.as_deref(), Some("AAMkWeekly"));
    let PageNext::Done { sync_token } = p3.next else {
        panic!("expected the deltaLink")
    };
    assert!(!sync_token.contains("delta-1"), "the token is opaque");

    // Incremental round, 6 days later (within the re-anchor limit).
    mock.push(ok(json!({
        "@odata.deltaLink": link("$deltatoken=delta-2"),
        "value": [
            {"@odata.type": "#microsoft.graph.event", "id": "AAMkA", "@removed": {"reason": "deleted"}},
            {"@odata.type": "#microsoft.graph.event", "id": "AAMkOutsideWindow", "@removed": {"reason": "deleted"}}
        ]})));
    let later = (ts("2026-02-07T00:00:00Z"), ts("2027-03-07T00:00:00Z"));
    let i1 = ms
        .list_events_page(
            &access(),
            calendar,
            &EventsCursor::Sync(sync_token.clone()),
            later,
        )
        .await
        .unwrap();
    assert_eq!(
        i1.changes,
        vec![
            EventChange::Removed {
                external_id: "AAMkA".into()
            },
            EventChange::Removed {
                external_id: "AAMkOutsideWindow".into()
            }
        ]
    );
    let PageNext::Done {
        sync_token: second_token,
    } = i1.next
    else {
        panic!("expected a new deltaLink")
    };
    assert_ne!(second_token, sync_token);

    // Eight days after the anchor: re-anchor with a full round, no request.
    let too_late = (ts("2026-02-09T00:00:01Z"), ts("2027-03-09T00:00:00Z"));
    let err = ms
        .list_events_page(
            &access(),
            calendar,
            &EventsCursor::Sync(second_token),
            too_late,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::SyncTokenExpired), "{err:?}");

    let log = mock.log();
    assert_eq!(log.len(), 4);
    for req in &log {
        assert_eq!(req.method, "GET");
        assert_eq!(req.path, base);
        assert_eq!(
            req.authorization(),
            Some(format!("Bearer {ACCESS}").as_str())
        );
        let prefer = req.headers("prefer").join(", ");
        assert!(prefer.contains("odata.maxpagesize=100"), "{prefer}");
        assert!(prefer.contains("outlook.timezone=\"UTC\""), "{prefer}");
        // Delta allows no $select/$filter/$orderby/$expand.
        for forbidden in ["$select", "$filter", "$orderby", "$expand", "$top"] {
            assert_eq!(req.param(forbidden), None, "{forbidden}");
        }
    }
    // The round starts with the window; later requests follow the links
    // exactly as given and never re-send the dates.
    assert_eq!(log[0].param("startDateTime"), Some("2026-02-01T00:00:00Z"));
    assert_eq!(log[0].param("endDateTime"), Some("2027-03-01T00:00:00Z"));
    assert_eq!(log[1].raw_query.as_deref(), Some("$skiptoken=skip-2"));
    assert_eq!(log[2].raw_query.as_deref(), Some("$skiptoken=skip-3"));
    assert_eq!(log[3].raw_query.as_deref(), Some("$deltatoken=delta-1"));
}

#[tokio::test]
async fn gone_delta_token_is_typed_and_not_retried() {
    let mock = Mock::start().await;
    let ms = mock.client();
    let token = {
        mock.push(ok(json!({"@odata.deltaLink": mock.url("/v1.0/me/calendars/c/calendarView/delta?$deltatoken=old"),
            "value": []})));
        let page = ms
            .list_events_page(&access(), "c", &EventsCursor::Full, window())
            .await
            .unwrap();
        match page.next {
            PageNext::Done { sync_token } => sync_token,
            other => panic!("{other:?}"),
        }
    };
    mock.push(graph_error(
        410,
        "SyncStateNotFound",
        "The sync state generation is not found; generation=149;[highest=157][157][155][156].",
    ));
    let err = ms
        .list_events_page(&access(), "c", &EventsCursor::Sync(token.clone()), window())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::SyncTokenExpired), "{err:?}");
    // A 410 without Graph's JSON (the generic resync reset) too.
    mock.push(Scripted::json(410, json!({})).header("location", &mock.url("/v1.0/x")));
    let err = ms
        .list_events_page(&access(), "c", &EventsCursor::Sync(token), window())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::SyncTokenExpired), "{err:?}");
    assert_eq!(mock.log().len(), 3);
}

#[tokio::test]
async fn throttling_honours_retry_after() {
    let mock = Mock::start().await;
    let ms = mock.client();
    let delta_page = json!({"@odata.deltaLink": mock.url("/v1.0/me/calendars/c/calendarView/delta?$deltatoken=d"),
        "value": []});

    // A short Retry-After is waited out in place, then the call succeeds.
    mock.push(
        graph_error(429, "TooManyRequests", "Please retry again later.").header("retry-after", "0"),
    );
    mock.push(
        graph_error(503, "ServiceUnavailable", "Service Unavailable").header("retry-after", "0"),
    );
    mock.push(ok(delta_page));
    ms.list_events_page(&access(), "c", &EventsCursor::Full, window())
        .await
        .unwrap();
    assert_eq!(mock.log().len(), 3);

    // A long one ends the call at once, typed with the wait.
    mock.push(
        graph_error(
            429,
            "ApplicationThrottled",
            "Application is over its MailboxConcurrency limit.",
        )
        .header("retry-after", "120"),
    );
    let err = ms
        .list_events_page(&access(), "c", &EventsCursor::Full, window())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(120)),
        "{err:?}"
    );
    assert_eq!(mock.log().len(), 4);

    // Still throttled after every retry: RateLimited, after 1 + 3 attempts.
    for _ in 0..4 {
        mock.push(graph_error(503, "ServiceUnavailable", "Busy").header("retry-after", "0"));
    }
    let err = ms.list_calendars(&access()).await.unwrap_err();
    assert!(matches!(err, ProviderError::RateLimited { .. }), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(mock.log().len(), 8);
}

#[tokio::test]
async fn bearer_token_never_goes_to_another_origin() {
    let mock = Mock::start().await;
    let other = Mock::start().await;
    let ms = mock.client();
    let foreign = |q: &str| other.url(&format!("/v1.0/me/calendars/c/calendarView/delta?{q}"));

    // A nextLink elsewhere: refused before anything is sent there.
    mock.push(ok(
        json!({"@odata.nextLink": foreign("$skiptoken=x"), "value": []}),
    ));
    let err = ms
        .list_events_page(&access(), "c", &EventsCursor::Full, window())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Decode(_)), "{err:?}");
    assert!(err.to_string().contains("origin"), "{err}");
    assert!(!err.to_string().contains(&other.addr.to_string()), "{err}");

    // A deltaLink elsewhere: no sync token is handed out for it.
    mock.push(ok(
        json!({"@odata.deltaLink": foreign("$deltatoken=x"), "value": []}),
    ));
    let err = ms
        .list_events_page(&access(), "c", &EventsCursor::Full, window())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Decode(_)), "{err:?}");

    // A calendar page's nextLink elsewhere, and one to the same host and
    // port over https (another origin too).
    mock.push(ok(
        json!({"@odata.nextLink": other.url("/v1.0/me/calendars?$skiptoken=x"),
        "value": [{"id": "c", "name": "Calendar"}]}),
    ));
    assert!(matches!(
        ms.list_calendars(&access()).await,
        Err(ProviderError::Decode(_))
    ));
    mock.push(ok(
        json!({"@odata.nextLink": format!("https://{}/v1.0/me/calendars", mock.addr),
        "value": []}),
    ));
    assert!(matches!(
        ms.list_calendars(&access()).await,
        Err(ProviderError::Decode(_))
    ));

    assert!(other.log().is_empty(), "{:?}", other.log());
    assert_eq!(mock.log().len(), 4);
}

/// The whole read path against the Microsoft emulator: consent (auto
/// approved), code exchange, identity, calendars, a full delta round, an
/// incremental round after a change and a delete, a rotating refresh.
#[tokio::test]
async fn against_the_emulator() {
    use calsync_emulator::{samples, Emulator, EmulatorConfig, OAuthClient};

    let redirect = "http://localhost:8000/api/calendar/microsoft/callback/";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let emulator = Emulator::start(
        listener,
        EmulatorConfig {
            clients: vec![OAuthClient::new("ms-client", "ms-secret", [redirect])],
            auto_approve: true,
            sample_data: true,
            ..EmulatorConfig::default()
        },
    )
    .unwrap();
    let endpoints = emulator.microsoft();
    let mut config = MicrosoftConfig::new(
        "ms-client".into(),
        SecretString::from("ms-secret"),
        redirect.into(),
    );
    config.auth_url = endpoints.auth_url;
    config.token_url = endpoints.token_url;
    config.api_base = endpoints.api_base;
    let ms = MicrosoftClient::with_http(config, fast_http()).unwrap();

    // Consent: the emulator approves at once and redirects with a code.
    let pkce = Pkce::generate().unwrap();
    let url = ms.authorization_url("state-1", &pkce.challenge).unwrap();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = browser.get(&url).send().await.unwrap();
    assert_eq!(answer.status(), 302);
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    let back = reqwest::Url::parse(&location).unwrap();
    assert!(location.starts_with(redirect), "{location}");
    let param = |k: &str| {
        back.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param("state").as_deref(), Some("state-1"));
    let code = param("code").unwrap();

    let tokens = ms.exchange_code(&code, &pkce.verifier).await.unwrap();
    assert!(calsync_providers::microsoft::calendar_read_granted(&tokens));
    let first_refresh = tokens.refresh_token.clone().unwrap();
    // Single use (AADSTS54005): a second redemption means "sign in again".
    let again = ms.exchange_code(&code, &pkce.verifier).await.unwrap_err();
    assert!(again.needs_reauth(), "{again:?}");

    let me = ms.identity(&tokens.access_token).await.unwrap();
    assert_eq!(me.email.as_deref(), Some(samples::MORGAN));

    let calendars = ms.list_calendars(&tokens.access_token).await.unwrap();
    let default = calendars
        .iter()
        .find(|c| c.external_id == samples::MORGAN_CALENDAR)
        .unwrap();
    assert!(default.is_primary);
    let team = calendars
        .iter()
        .find(|c| c.external_id == samples::MORGAN_TEAM)
        .unwrap();
    assert!(!team.is_primary);
    assert_eq!(team.access_role.as_deref(), Some("reader"));
    assert!(team.color.is_some());

    // A full round over the window, page by page.
    let now = Timestamp::now();
    let window = (
        now.checked_sub(jiff::SignedDuration::from_hours(30 * 24))
            .unwrap(),
        now.checked_add(jiff::SignedDuration::from_hours(60 * 24))
            .unwrap(),
    );
    let round = |cursor: EventsCursor| {
        let ms = ms.clone();
        let access = tokens.access_token.clone();
        async move {
            let mut cursor = cursor;
            let mut changes = Vec::new();
            for _ in 0..100 {
                let page = ms
                    .list_events_page(&access, samples::MORGAN_CALENDAR, &cursor, window)
                    .await
                    .unwrap();
                changes.extend(page.changes);
                match page.next {
                    PageNext::Page(next) => cursor = EventsCursor::Page(next),
                    PageNext::Done { sync_token } => return (changes, sync_token),
                }
            }
            panic!("the round never ended")
        }
    };
    let (full, sync_token) = round(EventsCursor::Full).await;
    let upserts: Vec<_> = full
        .iter()
        .filter_map(|c| match c {
            EventChange::Upsert(e) => Some(e.as_ref()),
            EventChange::Removed { .. } | EventChange::Replace { .. } => None,
        })
        .collect();
    let by_id = |id: &str| upserts.iter().find(|e| e.external_id == id).copied();
    assert!(
        by_id(samples::MORGAN_WEEKLY).is_none(),
        "no series master is stored"
    );
    let weekly: Vec<_> = upserts
        .iter()
        .filter(|e| e.recurring_event_id.as_deref() == Some(samples::MORGAN_WEEKLY))
        .collect();
    assert!(weekly.len() >= 4, "{weekly:?}");
    assert!(weekly.iter().all(|e| e.original_start.is_some()));
    assert!(weekly.iter().all(|e| matches!(&e.start,
        EventStart::DateTime { zone: Some(z), .. } if z == "Europe/Berlin")));
    let holiday = by_id(samples::MORGAN_HOLIDAY).unwrap();
    assert!(matches!(
        (&holiday.start, &holiday.end),
        (EventStart::Date(s), EventStart::Date(e)) if e > s
    ));
    let seattle = by_id(samples::MORGAN_SEATTLE_CALL).unwrap();
    assert_eq!(seattle.status, EventStatus::Tentative);
    assert!(matches!(&seattle.start,
        EventStart::DateTime { zone: Some(z), .. } if z == "America/Los_Angeles"));
    assert_eq!(
        by_id(samples::MORGAN_CANCELLED).unwrap().status,
        EventStatus::Cancelled
    );

    // A change and a delete show up in the next round.
    emulator
        .ms_patch_event(
            samples::MORGAN,
            samples::MORGAN_CALENDAR,
            samples::MORGAN_HOLIDAY,
            json!({"subject": "Company holiday (moved)"}),
        )
        .unwrap();
    emulator
        .ms_delete_event(
            samples::MORGAN,
            samples::MORGAN_CALENDAR,
            samples::MORGAN_SEATTLE_CALL,
        )
        .unwrap();
    let (incremental, _) = round(EventsCursor::Sync(sync_token)).await;
    assert!(
        incremental
            .iter()
            .any(|c| matches!(c, EventChange::Upsert(e)
            if e.external_id == samples::MORGAN_HOLIDAY && e.title == "Company holiday (moved)")),
        "{incremental:?}"
    );
    assert!(
        incremental.contains(&EventChange::Removed {
            external_id: samples::MORGAN_SEATTLE_CALL.into()
        }),
        "{incremental:?}"
    );

    // Refresh hands out a new refresh token, which works in turn.
    let refreshed = ms.refresh(&first_refresh).await.unwrap();
    let second_refresh = refreshed.refresh_token.clone().unwrap();
    assert_ne!(
        second_refresh.expose_secret(),
        first_refresh.expose_secret()
    );
    ms.refresh(&second_refresh).await.unwrap();
    ms.identity(&refreshed.access_token).await.unwrap();

    emulator.shutdown().await;
}
