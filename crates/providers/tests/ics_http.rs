//! The ICS feed client and the address guard over real HTTP against a local
//! axum server: probe, full fetch, conditional GETs (304, same body),
//! changed and reordered feeds, the mass-delete guard, broken and oversized
//! feeds, redirects and their limit, and the address guard on the first
//! request, on names and on redirect hops.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use calsync_core::changes::{ChangePage, EventChange, PageNext};
use calsync_providers::http::{HttpClient, HttpConfig, RetryPolicy};
use calsync_providers::ics::{normalize_feed_url, FeedToken, IcsClient, IcsConfig};
use calsync_providers::{CalendarSource as _, EventsCursor, ProviderError};
use secrecy::SecretString;

/// One path's answer. With an ETag or Last-Modified, a request carrying the
/// matching validator is answered 304 (RFC 9110 §13.1.1-2).
#[derive(Clone)]
struct Route {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Route {
    fn feed(body: &str) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type", "text/calendar; charset=utf-8".into())],
            body: body.to_owned(),
        }
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    fn redirect(status: u16, location: &str) -> Self {
        Self {
            status,
            headers: vec![("location", location.to_owned())],
            body: String::new(),
        }
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    if_none_match: Option<String>,
    if_modified_since: Option<String>,
}

#[derive(Default)]
struct Inner {
    routes: HashMap<String, Route>,
    log: Vec<Seen>,
}

#[derive(Clone)]
struct FeedServer {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl FeedServer {
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

    fn secret(&self, path: &str) -> SecretString {
        SecretString::from(self.url(path))
    }

    fn route(&self, path: &str, route: Route) {
        self.inner
            .lock()
            .unwrap()
            .routes
            .insert(path.to_owned(), route);
    }

    fn log(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().log.clone()
    }
}

async fn handle(State(inner): State<Arc<Mutex<Inner>>>, uri: Uri, headers: HeaderMap) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let route = {
        let mut inner = inner.lock().unwrap();
        inner.log.push(Seen {
            path: uri.path().to_owned(),
            if_none_match: header("if-none-match"),
            if_modified_since: header("if-modified-since"),
        });
        inner.routes.get(uri.path()).cloned()
    };
    let Some(route) = route else {
        return (StatusCode::NOT_FOUND, "no such feed").into_response();
    };
    let etag_matches =
        route.value("etag").is_some() && route.value("etag") == header("if-none-match").as_deref();
    let date_matches = route.value("etag").is_none()
        && route.value("last-modified").is_some()
        && route.value("last-modified") == header("if-modified-since").as_deref();
    let status = if etag_matches || date_matches {
        304
    } else {
        route.status
    };
    let mut response = Response::builder().status(status);
    for (name, value) in &route.headers {
        response = response.header(*name, value);
    }
    let body = if status == 304 {
        String::new()
    } else {
        route.body
    };
    response.body(body.into()).unwrap()
}

/// A client for the local server: private addresses allowed.
fn client() -> IcsClient {
    IcsClient::new(IcsConfig {
        allow_private_addresses: true,
        timeout: Duration::from_secs(5),
        ..IcsConfig::default()
    })
    .unwrap()
}

fn restricted(overrides: Vec<(String, SocketAddr)>) -> IcsClient {
    IcsClient::new(IcsConfig {
        allow_private_addresses: false,
        timeout: Duration::from_secs(5),
        resolve_overrides: overrides,
        ..IcsConfig::default()
    })
    .unwrap()
}

const HEAD: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calsync test//EN\r\nX-WR-CALNAME:Team rota\r\nX-APPLE-CALENDAR-COLOR:#1BADF8\r\nX-WR-TIMEZONE:Europe/Berlin\r\n";
const TAIL: &str = "END:VCALENDAR\r\n";

fn vevent(uid: &str, start: &str, summary: &str, extra: &str) -> String {
    format!(
        "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;TZID=Europe/Berlin:{start}\r\nDURATION:PT1H\r\nSUMMARY:{summary}\r\n{extra}END:VEVENT\r\n"
    )
}

fn weekly() -> String {
    vevent(
        "weekly@test",
        "20260302T090000",
        "Weekly",
        "RRULE:FREQ=WEEKLY;COUNT=10\r\n",
    )
}

fn moved() -> String {
    vevent(
        "weekly@test",
        "20260310T140000",
        "Weekly (moved)",
        "RECURRENCE-ID;TZID=Europe/Berlin:20260309T090000\r\n",
    )
}

fn feed(events: &[String]) -> String {
    format!("{HEAD}{}{TAIL}", events.concat())
}

fn three_series() -> String {
    feed(&[
        weekly(),
        moved(),
        vevent("one@test", "20260305T100000", "One", ""),
        vevent("two@test", "20260306T100000", "Two", ""),
    ])
}

/// Every external id of a page, sorted, and the groups of its Replaces.
fn ids(page: &ChangePage) -> (Vec<String>, Vec<String>) {
    let mut ids = Vec::new();
    let mut groups = Vec::new();
    for change in &page.changes {
        match change {
            EventChange::Replace { group, events } => {
                groups.push(group.clone());
                ids.extend(events.iter().map(|e| e.external_id.clone()));
            }
            other => panic!("unexpected change {other:?}"),
        }
    }
    ids.sort();
    groups.sort();
    (ids, groups)
}

fn token_of(page: &ChangePage) -> String {
    match &page.next {
        PageNext::Done { sync_token } => sync_token.clone(),
        PageNext::Page(_) => panic!("a feed is one page"),
    }
}

#[tokio::test]
async fn webcal_urls_become_https() {
    let url = normalize_feed_url("webcal://calendar.example.com/feeds/abc.ics").unwrap();
    assert_eq!(url.as_str(), "https://calendar.example.com/feeds/abc.ics");
    let url = normalize_feed_url("webcals://calendar.example.com/x").unwrap();
    assert_eq!(url.scheme(), "https");
    assert!(normalize_feed_url("ftp://calendar.example.com/x").is_err());
}

#[tokio::test]
async fn probe_reads_name_colour_and_zone() {
    let server = FeedServer::start().await;
    server.route("/team.ics", Route::feed(&three_series()));
    let info = client().probe(&server.secret("/team.ics")).await.unwrap();
    assert_eq!(info.name.as_deref(), Some("Team rota"));
    assert_eq!(info.color.as_deref(), Some("#1badf8"));
    assert_eq!(info.timezone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(info.events, 4);
    let calendars = client()
        .list_calendars(&server.secret("/team.ics"))
        .await
        .unwrap();
    assert_eq!(calendars.len(), 1);
    assert_eq!(calendars[0].external_id, "feed");
    assert_eq!(calendars[0].name, "Team rota");
}

#[tokio::test]
async fn a_full_fetch_is_one_page_of_replaces_with_a_token() {
    let server = FeedServer::start().await;
    server.route(
        "/team.ics",
        Route::feed(&three_series())
            .header("etag", "\"v1\"")
            .header("last-modified", "Wed, 25 Nov 2026 10:00:00 GMT"),
    );
    let page = client()
        .fetch_page(&server.secret("/team.ics"), &EventsCursor::Full)
        .await
        .unwrap();
    let (ids, groups) = ids(&page);
    assert_eq!(groups, ["one@test", "two@test", "weekly@test"]);
    assert_eq!(
        ids,
        [
            "one@test",
            "two@test",
            "weekly@test",
            "weekly@test/20260309T080000Z"
        ]
    );
    let EventChange::Replace { events, .. } = page
        .changes
        .iter()
        .find(|c| matches!(c, EventChange::Replace { group, .. } if group == "weekly@test"))
        .unwrap()
    else {
        unreachable!()
    };
    assert_eq!(events[0].recurrence, ["RRULE:FREQ=WEEKLY;COUNT=10"]);
    assert_eq!(events[1].recurring_event_id.as_deref(), Some("weekly@test"));
    let token = FeedToken::decode(&token_of(&page)).unwrap();
    assert_eq!(token.etag.as_deref(), Some("\"v1\""));
    assert_eq!(
        token.last_modified.as_deref(),
        Some("Wed, 25 Nov 2026 10:00:00 GMT")
    );
    assert_eq!(token.events, 4);
    assert_eq!(token.sha256.len(), 64);
    let log = server.log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].if_none_match, None);
}

#[tokio::test]
async fn not_modified_and_identical_bodies_are_empty_pages() {
    let server = FeedServer::start().await;
    let ics = client();
    // With an ETag: the second fetch is conditional and answered 304.
    server.route(
        "/etag.ics",
        Route::feed(&three_series()).header("etag", "\"v1\""),
    );
    let url = server.secret("/etag.ics");
    let first = ics.fetch_page(&url, &EventsCursor::Full).await.unwrap();
    let token = token_of(&first);
    let second = ics
        .fetch_page(&url, &EventsCursor::Sync(token.clone()))
        .await
        .unwrap();
    assert!(second.changes.is_empty());
    assert_eq!(token_of(&second), token);
    let log = server.log();
    assert_eq!(log[1].if_none_match.as_deref(), Some("\"v1\""));

    // With Last-Modified only: If-Modified-Since, 304.
    server.route(
        "/dated.ics",
        Route::feed(&three_series()).header("last-modified", "Wed, 25 Nov 2026 10:00:00 GMT"),
    );
    let url = server.secret("/dated.ics");
    let first = ics.fetch_page(&url, &EventsCursor::Full).await.unwrap();
    let second = ics
        .fetch_page(&url, &EventsCursor::Sync(token_of(&first)))
        .await
        .unwrap();
    assert!(second.changes.is_empty());
    assert_eq!(
        server.log().last().unwrap().if_modified_since.as_deref(),
        Some("Wed, 25 Nov 2026 10:00:00 GMT")
    );

    // Without validators: the same bytes hash the same.
    server.route("/plain.ics", Route::feed(&three_series()));
    let url = server.secret("/plain.ics");
    let first = ics.fetch_page(&url, &EventsCursor::Full).await.unwrap();
    let second = ics
        .fetch_page(&url, &EventsCursor::Sync(token_of(&first)))
        .await
        .unwrap();
    assert!(second.changes.is_empty());
    assert_eq!(token_of(&second), token_of(&first));
}

#[tokio::test]
async fn a_changed_feed_is_listed_again_in_full() {
    let server = FeedServer::start().await;
    let ics = client();
    server.route(
        "/team.ics",
        Route::feed(&three_series()).header("etag", "\"v1\""),
    );
    let url = server.secret("/team.ics");
    let first = ics.fetch_page(&url, &EventsCursor::Full).await.unwrap();
    // "two" leaves, "three" arrives, the moved instance is gone.
    let changed = feed(&[
        weekly(),
        vevent("one@test", "20260305T100000", "One (renamed)", ""),
        vevent("three@test", "20260307T100000", "Three", ""),
    ]);
    server.route("/team.ics", Route::feed(&changed).header("etag", "\"v2\""));
    let second = ics
        .fetch_page(&url, &EventsCursor::Sync(token_of(&first)))
        .await
        .unwrap();
    let (ids, groups) = ids(&second);
    assert_eq!(ids, ["one@test", "three@test", "weekly@test"]);
    assert_eq!(groups, ["one@test", "three@test", "weekly@test"]);
    let token = FeedToken::decode(&token_of(&second)).unwrap();
    assert_eq!(token.etag.as_deref(), Some("\"v2\""));
    assert_eq!(token.events, 3);
    let renamed = second.changes.iter().find_map(|c| match c {
        EventChange::Replace { group, events } if group == "one@test" => {
            Some(events[0].title.clone())
        }
        _ => None,
    });
    assert_eq!(renamed.as_deref(), Some("One (renamed)"));
}

#[tokio::test]
async fn a_reordered_feed_keeps_its_ids() {
    let server = FeedServer::start().await;
    let ics = client();
    // The same events in another order, CRLF turned into LF, a Windows TZID,
    // and an event without UID in both.
    let no_uid = "BEGIN:VEVENT\r\nDTSTART:20260320T120000Z\r\nSUMMARY:No uid\r\nEND:VEVENT\r\n";
    server.route(
        "/a.ics",
        Route::feed(&format!(
            "{HEAD}{}{no_uid}{}{}{}{TAIL}",
            weekly(),
            moved(),
            vevent("one@test", "20260305T100000", "One", ""),
            vevent("two@test", "20260306T100000", "Two", "")
        )),
    );
    let reordered = format!(
        "{HEAD}{}{}{no_uid}{}{}{TAIL}",
        vevent("two@test", "20260306T100000", "Two", ""),
        moved().replace("TZID=Europe/Berlin", "TZID=W. Europe Standard Time"),
        vevent("one@test", "20260305T100000", "One", ""),
        weekly()
    )
    .replace("\r\n", "\n");
    server.route("/b.ics", Route::feed(&reordered));
    let a = ics
        .fetch_page(&server.secret("/a.ics"), &EventsCursor::Full)
        .await
        .unwrap();
    let b = ics
        .fetch_page(&server.secret("/b.ics"), &EventsCursor::Full)
        .await
        .unwrap();
    assert_eq!(ids(&a), ids(&b));
    assert_eq!(ids(&a).0.len(), 5);
    assert!(ids(&a).0.iter().any(|id| id.starts_with("calsync-")));
    // And a changed page arrives as a full listing with those same ids.
    let second = ics
        .fetch_page(&server.secret("/b.ics"), &EventsCursor::Sync(token_of(&a)))
        .await
        .unwrap();
    assert_eq!(ids(&second), ids(&a));
}

#[tokio::test]
async fn an_emptied_or_collapsed_feed_is_refused() {
    let server = FeedServer::start().await;
    let ics = client();
    server.route("/team.ics", Route::feed(&three_series()));
    let url = server.secret("/team.ics");
    let first = ics.fetch_page(&url, &EventsCursor::Full).await.unwrap();
    server.route("/team.ics", Route::feed(&feed(&[])));
    let err = ics
        .fetch_page(&url, &EventsCursor::Sync(token_of(&first)))
        .await
        .unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("0 events where 4 were stored"), "{shown}");
    assert!(shown.contains("last good copy"), "{shown}");

    // 60 events down to 5: collapsed.
    let many: Vec<String> = (0..60)
        .map(|i| vevent(&format!("e{i}@test"), "20260305T100000", "E", ""))
        .collect();
    server.route("/many.ics", Route::feed(&feed(&many)));
    let url = server.secret("/many.ics");
    let first = ics.fetch_page(&url, &EventsCursor::Full).await.unwrap();
    server.route("/many.ics", Route::feed(&feed(&many[..5])));
    assert!(ics
        .fetch_page(&url, &EventsCursor::Sync(token_of(&first)))
        .await
        .is_err());
    // 60 down to 30 is an ordinary change.
    server.route("/many.ics", Route::feed(&feed(&many[..30])));
    let page = ics
        .fetch_page(&url, &EventsCursor::Sync(token_of(&first)))
        .await
        .unwrap();
    assert_eq!(page.changes.len(), 30);
    // A Full fetch (the cursor forgotten) accepts an empty feed.
    server.route("/many.ics", Route::feed(&feed(&[])));
    let page = ics.fetch_page(&url, &EventsCursor::Full).await.unwrap();
    assert!(page.changes.is_empty());
}

#[tokio::test]
async fn a_body_that_is_not_icalendar_is_an_error() {
    let server = FeedServer::start().await;
    let ics = client();
    server.route("/team.ics", Route::feed(&three_series()));
    let url = server.secret("/team.ics");
    let first = ics.fetch_page(&url, &EventsCursor::Full).await.unwrap();
    server.route(
        "/team.ics",
        Route::feed("<!doctype html><html><body>Sign in</body></html>"),
    );
    for cursor in [EventsCursor::Full, EventsCursor::Sync(token_of(&first))] {
        let err = ics.fetch_page(&url, &cursor).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("this URL does not serve an iCalendar feed"),
            "{err}"
        );
    }
    let err = ics.probe(&url).await.unwrap_err();
    assert!(matches!(err, ProviderError::Decode(_)), "{err:?}");
    // Error statuses name the host and the status, never the path.
    let err = ics
        .fetch_page(
            &server.secret("/missing-secret-key.ics"),
            &EventsCursor::Full,
        )
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert!(!err.to_string().contains("secret-key"), "{err}");
}

#[tokio::test]
async fn an_oversized_feed_is_refused() {
    let server = FeedServer::start().await;
    let ics = IcsClient::new(IcsConfig {
        allow_private_addresses: true,
        max_bytes: 4096,
        ..IcsConfig::default()
    })
    .unwrap();
    let big: Vec<String> = (0..100)
        .map(|i| vevent(&format!("e{i}@test"), "20260305T100000", "E", ""))
        .collect();
    server.route("/big.ics", Route::feed(&feed(&big)));
    let err = ics
        .fetch_page(&server.secret("/big.ics"), &EventsCursor::Full)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::TooLarge { limit: 4096 }),
        "{err:?}"
    );
}

#[tokio::test]
async fn redirects_are_followed_up_to_five_times() {
    let server = FeedServer::start().await;
    let ics = client();
    server.route("/feed.ics", Route::feed(&three_series()));
    for i in 0..5 {
        let next = if i == 4 {
            "/feed.ics".to_owned()
        } else {
            format!("/hop{}", i + 1)
        };
        let status = [301, 302, 303, 307, 308][i];
        server.route(&format!("/hop{i}"), Route::redirect(status, &next));
    }
    let page = ics
        .fetch_page(&server.secret("/hop0"), &EventsCursor::Full)
        .await
        .unwrap();
    assert_eq!(page.changes.len(), 3);

    // A loop: six redirects are one too many.
    server.route("/loop", Route::redirect(302, "/loop"));
    let err = ics
        .fetch_page(&server.secret("/loop"), &EventsCursor::Full)
        .await
        .unwrap_err();
    match &err {
        ProviderError::Provider { reason, .. } => assert_eq!(reason, "too_many_redirects"),
        other => panic!("{other:?}"),
    }
    let hops = server.log().iter().filter(|s| s.path == "/loop").count();
    assert_eq!(hops, 6);
}

#[tokio::test]
async fn the_address_guard_refuses_private_targets() {
    let server = FeedServer::start().await;
    server.route("/feed.ics", Route::feed(&three_series()));
    let port = server.addr.port();
    let guarded = restricted(Vec::new());

    // An IP literal (reqwest never asks the resolver for it) and a name that
    // resolves to loopback: refused before anything reaches the server.
    for url in [
        format!("http://127.0.0.1:{port}/feed.ics"),
        format!("http://localhost:{port}/feed.ics"),
        format!("http://[::ffff:127.0.0.1]:{port}/feed.ics"),
    ] {
        let err = guarded
            .fetch_page(&SecretString::from(url.clone()), &EventsCursor::Full)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ProviderError::ForbiddenAddress { .. }),
            "{url}: {err:?}"
        );
        assert!(err
            .to_string()
            .contains("CALSYNC_ALLOW_PRIVATE_ADDRESSES=true"));
        assert!(!err.to_string().contains("feed.ics"), "{err}");
    }
    assert!(server.log().is_empty());

    // The unrestricted client reaches the same server.
    let page = client()
        .fetch_page(&server.secret("/feed.ics"), &EventsCursor::Full)
        .await
        .unwrap();
    assert_eq!(page.changes.len(), 3);

    // A public-looking name pinned to the server (as a DNS answer would be)
    // gets its first request through; its redirects to loopback do not.
    let before = server.log().len();
    let pinned = restricted(vec![("feed.example.com".into(), server.addr)]);
    for (path, target) in [
        ("/to-ip", format!("http://127.0.0.1:{port}/feed.ics")),
        ("/to-name", format!("http://localhost:{port}/feed.ics")),
        (
            "/to-metadata",
            "http://169.254.169.254/latest/meta-data/".to_owned(),
        ),
        (
            "/to-internal",
            "http://metadata.google.internal/x".to_owned(),
        ),
    ] {
        server.route(path, Route::redirect(302, &target));
        let url = SecretString::from(format!("http://feed.example.com:{port}{path}"));
        let err = pinned
            .fetch_page(&url, &EventsCursor::Full)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ProviderError::ForbiddenAddress { .. }),
            "{path}: {err:?}"
        );
    }
    let served: Vec<String> = server.log()[before..]
        .iter()
        .map(|s| s.path.clone())
        .collect();
    assert_eq!(
        served,
        ["/to-ip", "/to-name", "/to-metadata", "/to-internal"]
    );
}

#[tokio::test]
async fn the_shared_http_client_guards_every_request() {
    let server = FeedServer::start().await;
    server.route("/feed.ics", Route::feed(&three_series()));
    let make = |restrict_addresses| {
        HttpClient::new(HttpConfig {
            restrict_addresses,
            retry: RetryPolicy::none(),
            ..HttpConfig::default()
        })
        .unwrap()
    };
    let port = server.addr.port();
    for url in [
        format!("http://127.0.0.1:{port}/feed.ics"),
        format!("http://localhost:{port}/feed.ics"),
    ] {
        let err = make(true)
            .send(|c| c.get(url.as_str()), |_| true)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ProviderError::ForbiddenAddress { .. }),
            "{err:?}"
        );
        let ok = make(false)
            .send(|c| c.get(url.as_str()), |_| false)
            .await
            .unwrap();
        assert_eq!(ok.status, 200);
    }
}
