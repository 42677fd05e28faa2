//! The worst durations and times a provider can send, over real HTTP, through
//! every client's request path (Google, Microsoft, CalDAV, ICS, and the OAuth
//! token endpoint of Google and Microsoft): `Retry-After` beyond u64, in the
//! year 9999, negative, fractional, garbage, on 429 and 503; `expires_in` of
//! 1e30, -1, "abc", 2^64; event times at the ends of jiff's range.
//!
//! Each call must end in an answer or an error (never a panic), every
//! `retry_after` it hands on must be `None` or at most
//! [`MAX_PROVIDER_WAIT`], every token expiry at most a day ahead, and no call
//! may sleep out a huge `Retry-After` in place: each runs under a 20 s
//! timeout, a hang detector (the retries use millisecond backoffs, so a call
//! takes milliseconds).

#![allow(clippy::unwrap_used)]

mod support;

use std::future::Future;
use std::time::Duration;

use calsync_core::changes::{ChangePage, EventChange};
use calsync_providers::caldav::{CaldavClient, CaldavConfig, CaldavLimits, CaldavLogin};
use calsync_providers::http::{HttpConfig, RetryPolicy, MAX_PROVIDER_WAIT};
use calsync_providers::ics::{IcsClient, IcsConfig};
use calsync_providers::microsoft::{MicrosoftClient, MicrosoftConfig};
use calsync_providers::oauth::{TokenSet, MAX_TOKEN_LIFETIME};
use calsync_providers::{EventsCursor, ProviderError};
use jiff::{SignedDuration, Timestamp};
use secrecy::SecretString;
use support::{fast_http, Scripted, TestServer};

/// Longer than any call here may take; reaching it means a call waited out
/// a provider's `Retry-After` (or hung).
const HANG_GUARD: Duration = Duration::from_secs(20);

/// The retries of [`support::fast_http`]: attempts when every answer is
/// retried, and the longest `Retry-After` waited out in place.
const ATTEMPTS: usize = 4;
const WAITED_IN_PLACE: Duration = Duration::from_secs(2);

/// A `Retry-After` value and what the crate must make of it.
struct Hostile {
    value: String,
    /// The wait handed on: `None` (unreadable), zero, or the 24 h cap.
    wait: Option<Duration>,
}

fn hostile_retry_afters() -> Vec<Hostile> {
    let day = Some(MAX_PROVIDER_WAIT);
    let zero = Some(Duration::ZERO);
    let table: [(&str, Option<Duration>); 18] = [
        ("1000000000000", day),
        ("18446744073709551615", day),
        ("18446744073709551616", day),
        ("99999999999999999999999999999999", day),
        ("86401", day),
        ("0", zero),
        ("Fri, 31 Dec 9999 23:59:59 GMT", day),
        ("Thu, 30 Dec 9999 21:59:59 GMT", day),
        ("Thu, 01 Jan 1970 00:00:00 GMT", zero),
        ("-5", None),
        ("+5", None),
        ("1.5", None),
        ("inf", None),
        ("NaN", None),
        ("1 0", None),
        ("soon, please", None),
        // Non-ASCII: `to_str` refuses it before it is parsed.
        ("३० seconds", None),
        ("Fri, 31 Déc 9999 23:59:59 GMT", None),
    ];
    let mut all: Vec<Hostile> = table
        .into_iter()
        .map(|(value, wait)| Hostile {
            value: value.to_owned(),
            wait,
        })
        .collect();
    for value in ["1".repeat(10 * 1024), "x".repeat(10 * 1024)] {
        all.push(Hostile { value, wait: None });
    }
    all
}

/// Short for the messages: a 10 KB value is not worth printing.
fn shown(value: &str) -> String {
    if value.len() > 40 {
        format!("{}... ({} bytes)", &value[..20], value.len())
    } else {
        value.to_owned()
    }
}

/// Runs `call` under the hang guard.
async fn guarded<T>(what: &str, call: impl Future<Output = T>) -> T {
    match tokio::time::timeout(HANG_GUARD, call).await {
        Ok(result) => result,
        Err(_) => panic!("{what}: no answer within {HANG_GUARD:?}; a Retry-After was waited out"),
    }
}

/// The error of a call that must fail, with its `retry_after` checked
/// against the cap; returns that `retry_after` (`None` for other errors).
fn capped_wait<T: std::fmt::Debug>(
    what: &str,
    result: Result<T, ProviderError>,
) -> (ProviderError, Option<Duration>) {
    let err = match result {
        Ok(value) => panic!("{what}: answered {value:?} to an error status"),
        Err(err) => err,
    };
    let wait = match &err {
        ProviderError::RateLimited { retry_after } => *retry_after,
        _ => None,
    };
    if let Some(wait) = wait {
        assert!(wait <= MAX_PROVIDER_WAIT, "{what}: retry_after {wait:?}");
    }
    // The message shows the wait in whole seconds without overflowing.
    assert!(!err.to_string().is_empty());
    (err, wait)
}

/// Asserts the exact classification where the wait must be handed on:
/// `RateLimited` carrying the expected wait.
fn assert_rate_limited(what: &str, err: &ProviderError, expected: Option<Duration>) {
    assert!(
        matches!(err, ProviderError::RateLimited { retry_after } if *retry_after == expected),
        "{what}: expected RateLimited {{ retry_after: {expected:?} }}, got {err:?}"
    );
}

/// Attempts a client with [`fast_http`]'s policy makes when every answer is
/// retryable and carries `wait`: one when the wait is longer than it waits
/// in place (the retries end at once), else the first and three retries.
fn attempts(wait: Option<Duration>) -> usize {
    match wait {
        Some(wait) if wait > WAITED_IN_PLACE => 1,
        _ => ATTEMPTS,
    }
}

/// A fresh scripted server answering `status` with `Retry-After: value` to
/// every attempt a call can make.
async fn server_answering(status: u16, value: &str, body: &str, content_type: &str) -> TestServer {
    let server = TestServer::start().await;
    for _ in 0..ATTEMPTS {
        server.push(Scripted {
            status,
            headers: vec![
                ("content-type", content_type.to_owned()),
                ("retry-after", value.to_owned()),
            ],
            body: body.to_owned(),
            delay: Duration::ZERO,
        });
    }
    server
}

fn google_body(status: u16) -> String {
    serde_json::json!({"error": {"code": status, "message": "Slow down",
        "errors": [{"domain": "usageLimits", "reason": "rateLimitExceeded", "message": "Slow down"}]}})
    .to_string()
}

fn graph_body() -> String {
    serde_json::json!({"error": {"code": "TooManyRequests", "message": "Please retry again later."}})
        .to_string()
}

fn oauth_body() -> String {
    serde_json::json!({"error": "temporarily_unavailable", "error_description": "Slow down"})
        .to_string()
}

const JSON: &str = "application/json";

fn access() -> SecretString {
    SecretString::from("ya29.access-token-value")
}

fn refresh_token() -> SecretString {
    SecretString::from("1//refresh-token-value")
}

fn microsoft(server: &TestServer) -> MicrosoftClient {
    let mut config = MicrosoftConfig::new(
        "11111111-2222-3333-4444-555555555555".into(),
        SecretString::from("client~secret~value"),
        "http://localhost:8000/api/calendar/microsoft/callback/".into(),
    );
    config.auth_url = server.url("/common/oauth2/v2.0/authorize");
    config.token_url = server.url("/common/oauth2/v2.0/token");
    config.api_base = server.url("/v1.0");
    MicrosoftClient::with_http(config, fast_http()).unwrap()
}

fn window() -> (Timestamp, Timestamp) {
    (
        "2026-02-01T00:00:00Z".parse().unwrap(),
        "2027-03-01T00:00:00Z".parse().unwrap(),
    )
}

/// A CalDAV client for the local server with [`fast_http`]'s retries.
fn caldav() -> CaldavClient {
    CaldavClient::new(CaldavConfig {
        allow_private_addresses: true,
        http: HttpConfig {
            retry: RetryPolicy {
                max_retries: 3,
                base_delay: Duration::from_millis(2),
                max_delay: Duration::from_millis(20),
                max_retry_after: WAITED_IN_PLACE,
            },
            ..HttpConfig::default()
        },
        limits: CaldavLimits::default(),
    })
    .unwrap()
}

fn caldav_login(server: &TestServer) -> CaldavLogin {
    CaldavLogin {
        server_url: server.url("/"),
        home_url: server.url("/u/"),
        username: "u".into(),
        password: SecretString::from("app-specific-password"),
    }
}

fn ics() -> IcsClient {
    IcsClient::new(IcsConfig {
        allow_private_addresses: true,
        timeout: Duration::from_secs(5),
        ..IcsConfig::default()
    })
    .unwrap()
}

#[tokio::test]
async fn google_calendar_api_caps_every_retry_after() {
    for status in [429, 503] {
        for hostile in hostile_retry_afters() {
            let what = format!("Google {status}, Retry-After {}", shown(&hostile.value));
            let server = server_answering(status, &hostile.value, &google_body(status), JSON).await;
            let google = server.google();
            let result = guarded(
                &what,
                google.list_events_page(&access(), "primary", &EventsCursor::Full),
            )
            .await;
            let (err, _) = capped_wait(&what, result);
            if status == 429 {
                assert_rate_limited(&what, &err, hostile.wait);
            } else {
                // Google's 503 is a server error; its wait is not kept.
                assert!(err.is_transient(), "{what}: {err:?}");
            }
            assert_eq!(server.log().len(), attempts(hostile.wait), "{what}");

            // The calendar list takes the same path.
            let server = server_answering(status, &hostile.value, &google_body(status), JSON).await;
            let result = guarded(&what, server.google().list_calendars(&access())).await;
            capped_wait(&what, result);
        }
    }
}

#[tokio::test]
async fn microsoft_graph_caps_every_retry_after() {
    for status in [429, 503] {
        for hostile in hostile_retry_afters() {
            let what = format!("Graph {status}, Retry-After {}", shown(&hostile.value));
            let server = server_answering(status, &hostile.value, &graph_body(), JSON).await;
            let ms = microsoft(&server);
            let result = guarded(
                &what,
                ms.list_events_page(&access(), "c", &EventsCursor::Full, window()),
            )
            .await;
            let (err, _) = capped_wait(&what, result);
            // Graph's 503 with a readable wait is throttling too.
            if status == 429 || hostile.wait.is_some() {
                assert_rate_limited(&what, &err, hostile.wait);
            } else {
                assert!(err.is_transient(), "{what}: {err:?}");
            }
            assert_eq!(server.log().len(), attempts(hostile.wait), "{what}");

            let server = server_answering(status, &hostile.value, &graph_body(), JSON).await;
            let result = guarded(&what, microsoft(&server).list_calendars(&access())).await;
            capped_wait(&what, result);
        }
    }
}

#[tokio::test]
async fn caldav_caps_every_retry_after_on_sync_and_discovery() {
    const XML: &str = "application/xml; charset=utf-8";
    for status in [429, 503] {
        for hostile in hostile_retry_afters() {
            let what = format!("CalDAV {status}, Retry-After {}", shown(&hostile.value));

            // A sync: PROPFIND on the home, with retries.
            let server = server_answering(status, &hostile.value, "", XML).await;
            let result = guarded(&what, caldav().list_calendars(&caldav_login(&server))).await;
            let (err, _) = capped_wait(&what, result);
            if status == 429 {
                assert_rate_limited(&what, &err, hostile.wait);
            }
            assert_eq!(server.log().len(), attempts(hostile.wait), "{what}");

            // The events of a calendar: REPORT, with retries.
            let server = server_answering(status, &hostile.value, "", XML).await;
            let calendar = server.url("/u/cal/");
            let result = guarded(
                &what,
                caldav().list_events_page(&caldav_login(&server), &calendar, &EventsCursor::Full),
            )
            .await;
            capped_wait(&what, result);

            // Discovery: one request per hop, read by its own code.
            let server = server_answering(status, &hostile.value, "", XML).await;
            let password = SecretString::from("app-specific-password");
            let result = guarded(&what, caldav().discover(&server.url("/"), "u", &password)).await;
            let (err, _) = capped_wait(&what, result);
            if status == 429 {
                assert_rate_limited(&what, &err, hostile.wait);
            }
        }
    }
}

#[tokio::test]
async fn ics_feeds_cap_every_retry_after() {
    for status in [429, 503] {
        for hostile in hostile_retry_afters() {
            let what = format!("ICS {status}, Retry-After {}", shown(&hostile.value));
            let server = server_answering(status, &hostile.value, "busy", "text/plain").await;
            let feed = SecretString::from(server.url("/feed.ics"));
            let result = guarded(&what, ics().fetch_page(&feed, &EventsCursor::Full)).await;
            let (err, _) = capped_wait(&what, result);
            if status == 429 {
                assert_rate_limited(&what, &err, hostile.wait);
            } else {
                assert!(err.is_transient(), "{what}: {err:?}");
            }
            // A feed is fetched once per sync, never retried in place.
            assert_eq!(server.log().len(), 1, "{what}");

            let server = server_answering(status, &hostile.value, "busy", "text/plain").await;
            let feed = SecretString::from(server.url("/feed.ics"));
            let result = guarded(&what, ics().probe(&feed)).await;
            capped_wait(&what, result);
        }
    }
}

#[tokio::test]
async fn token_endpoints_cap_every_retry_after() {
    for status in [429, 503] {
        for hostile in hostile_retry_afters() {
            let what = format!(
                "token endpoint {status}, Retry-After {}",
                shown(&hostile.value)
            );

            let server = server_answering(status, &hostile.value, &oauth_body(), JSON).await;
            let result = guarded(&what, server.google().refresh(&refresh_token())).await;
            let (err, _) = capped_wait(&what, result);
            if status == 429 {
                assert_rate_limited(&what, &err, hostile.wait);
            }
            assert_eq!(server.log().len(), attempts(hostile.wait), "{what}");

            let server = server_answering(status, &hostile.value, &oauth_body(), JSON).await;
            let verifier = SecretString::from("verifier-0123456789-abcdefghijklmnopqrstuvwxyz");
            let result = guarded(
                &what,
                server.google().exchange_code("4/0A-code-value", &verifier),
            )
            .await;
            capped_wait(&what, result);

            let server = server_answering(status, &hostile.value, &oauth_body(), JSON).await;
            let result = guarded(&what, microsoft(&server).refresh(&refresh_token())).await;
            let (err, _) = capped_wait(&what, result);
            if status == 429 {
                assert_rate_limited(&what, &err, hostile.wait);
            }
            assert_eq!(server.log().len(), attempts(hostile.wait), "{what}");
        }
    }
}

/// A token answer whose `expires_in` is written as `expires_in` (raw JSON).
fn token_answer(expires_in: &str) -> Scripted {
    Scripted {
        status: 200,
        headers: vec![("content-type", JSON.to_owned())],
        body: format!(
            r#"{{"access_token":"ya29.new-access","refresh_token":"1//new-refresh","token_type":"Bearer","scope":"openid email","expires_in":{expires_in}}}"#
        ),
        delay: Duration::ZERO,
    }
}

/// `expires_at` is absent, or between `before + lifetime` and `after +
/// lifetime` for the lifetime the value must be read as.
fn assert_expiry(
    what: &str,
    tokens: &TokenSet,
    lifetime: Option<SignedDuration>,
    (before, after): (Timestamp, Timestamp),
) {
    match (tokens.expires_at, lifetime) {
        (None, None) => {}
        (Some(at), Some(lifetime)) => {
            let earliest = before.checked_add(lifetime).unwrap();
            let latest = after.checked_add(lifetime).unwrap();
            assert!(
                earliest <= at && at <= latest,
                "{what}: expires at {at}, not in [{earliest}, {latest}]"
            );
            assert!(at.duration_since(after) <= MAX_TOKEN_LIFETIME, "{what}");
        }
        other => panic!("{what}: expected a lifetime of {lifetime:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn hostile_expires_in_is_clamped_to_a_day() {
    let day = Some(MAX_TOKEN_LIFETIME);
    let zero = Some(SignedDuration::ZERO);
    let cases: [(&str, Option<SignedDuration>); 13] = [
        ("1e30", day),
        ("-1", zero),
        (r#""abc""#, None),
        ("18446744073709551616", day),
        (r#""18446744073709551616""#, day),
        ("9223372036854775807", day),
        ("-9223372036854775808", zero),
        ("-1e30", zero),
        ("1e308", day),
        ("86401", day),
        ("null", None),
        (r#""NaN""#, None),
        ("3599.9", Some(SignedDuration::from_secs(3599))),
    ];
    for (expires_in, lifetime) in cases {
        let what = format!("expires_in {expires_in}");
        let server = TestServer::start().await;

        server.push(token_answer(expires_in));
        let before = Timestamp::now();
        let tokens = guarded(&what, server.google().refresh(&refresh_token()))
            .await
            .unwrap_or_else(|e| panic!("{what}: Google refresh: {e:?}"));
        assert_expiry(&what, &tokens, lifetime, (before, Timestamp::now()));

        server.push(token_answer(expires_in));
        let verifier = SecretString::from("verifier-0123456789-abcdefghijklmnopqrstuvwxyz");
        let before = Timestamp::now();
        let tokens = guarded(
            &what,
            server.google().exchange_code("4/0A-code-value", &verifier),
        )
        .await
        .unwrap_or_else(|e| panic!("{what}: Google code exchange: {e:?}"));
        assert_expiry(&what, &tokens, lifetime, (before, Timestamp::now()));

        server.push(token_answer(expires_in));
        let before = Timestamp::now();
        let tokens = guarded(&what, microsoft(&server).refresh(&refresh_token()))
            .await
            .unwrap_or_else(|e| panic!("{what}: Microsoft refresh: {e:?}"));
        assert_expiry(&what, &tokens, lifetime, (before, Timestamp::now()));
    }

    // A number beyond what JSON numbers hold makes the answer unreadable:
    // an error, not a panic.
    let server = TestServer::start().await;
    server.push(token_answer("1e400"));
    let err = guarded(
        "expires_in 1e400",
        server.google().refresh(&refresh_token()),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ProviderError::Decode(_)), "{err:?}");
}

/// Times at the ends of what jiff holds (-9999 to 9999-12-30T22:00Z) and
/// beyond, in every field a provider sends.
const FAR_TIMES: [&str; 8] = [
    "9999-12-31T23:59:59Z",
    "9999-12-30T21:59:59Z",
    "9999-12-31T23:59:59.9999999",
    "-009999-01-01T00:00:00Z",
    "-009999-01-02T02:00:00Z",
    "0000-01-01T00:00:00Z",
    "+010000-01-01T00:00:00Z",
    "1970-01-01T00:00:00Z",
];

const FAR_DATES: [&str; 5] = [
    "9999-12-31",
    "-009999-01-01",
    "0000-01-01",
    "10000-01-01",
    "0001-01-01",
];

/// The ids a page kept (events out of range are skipped one by one, never
/// the whole page); a page that failed as a whole fails the test.
fn kept(what: &str, result: Result<ChangePage, ProviderError>) -> Vec<String> {
    let page = result.unwrap_or_else(|err| panic!("{what}: the page failed as a whole: {err:?}"));
    page.changes
        .iter()
        .filter_map(|change| match change {
            EventChange::Upsert(event) => Some(event.external_id.clone()),
            EventChange::Replace { group, .. } => Some(group.clone()),
            EventChange::Removed { .. } => None,
        })
        .collect()
}

#[tokio::test]
async fn google_events_at_the_ends_of_time_never_panic() {
    let server = TestServer::start().await;
    let mut items = Vec::new();
    for (i, t) in FAR_TIMES.iter().enumerate() {
        items.push(
            serde_json::json!({"id": format!("t{i}"), "status": "confirmed",
            "updated": t, "start": {"dateTime": t, "timeZone": "Pacific/Kiritimati"},
            "end": {"dateTime": t, "timeZone": "Etc/GMT+12"},
            "recurrence": ["RRULE:FREQ=SECONDLY"]}),
        );
        items.push(
            serde_json::json!({"id": format!("x{i}"), "status": "cancelled",
            "recurringEventId": "t0", "originalStartTime": {"dateTime": t}}),
        );
    }
    for (i, d) in FAR_DATES.iter().enumerate() {
        items.push(serde_json::json!({"id": format!("d{i}"), "updated": d,
            "start": {"date": d}, "end": {"date": d}}));
    }
    items.push(serde_json::json!({"id": "normal", "updated": "2026-03-01T00:00:00Z",
        "start": {"dateTime": "2026-03-02T10:00:00Z"}, "end": {"dateTime": "2026-03-02T11:00:00Z"}}));
    server.push(Scripted::json(
        200,
        serde_json::json!({"nextSyncToken": "s", "items": items}),
    ));
    let result = guarded(
        "Google far times",
        server
            .google()
            .list_events_page(&access(), "primary", &EventsCursor::Full),
    )
    .await;
    let ids = kept("Google far times", result);
    assert!(ids.iter().any(|id| id == "normal"), "{ids:?}");
}

#[tokio::test]
async fn graph_events_at_the_ends_of_time_never_panic() {
    let server = TestServer::start().await;
    let mut items = Vec::new();
    for (i, t) in FAR_TIMES.iter().enumerate() {
        for (zone, all_day) in [
            ("UTC", false),
            ("Pacific Standard Time", false),
            ("Line Islands Standard Time", true),
            ("Dateline Standard Time", true),
        ] {
            items.push(serde_json::json!({"id": format!("t{i}-{zone}-{all_day}"),
                "type": "occurrence", "seriesMasterId": "m", "isAllDay": all_day,
                "lastModifiedDateTime": t, "originalStart": t,
                "originalStartTimeZone": zone, "originalEndTimeZone": zone,
                "start": {"dateTime": t, "timeZone": zone},
                "end": {"dateTime": t, "timeZone": zone}}));
        }
    }
    items.push(serde_json::json!({"id": "normal", "type": "singleInstance",
        "start": {"dateTime": "2026-03-02T10:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-03-02T11:00:00", "timeZone": "UTC"}}));
    server.push(Scripted::json(
        200,
        serde_json::json!({"@odata.deltaLink": server.url("/v1.0/me/calendars/c/calendarView/delta?$deltatoken=d"),
            "value": items}),
    ));
    let result = guarded(
        "Graph far times",
        microsoft(&server).list_events_page(&access(), "c", &EventsCursor::Full, window()),
    )
    .await;
    let ids = kept("Graph far times", result);
    assert!(ids.iter().any(|id| id == "normal"), "{ids:?}");
}

/// An iCalendar body with events at the ends of time: far DTSTART and
/// DTEND, huge durations, a rule without end from the year 9999, a
/// RECURRENCE-ID and LAST-MODIFIED out there, and the feed-level refresh
/// hints some publishers send.
fn far_calendar() -> String {
    let mut body = String::from(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calsync test//EN\r\n\
         REFRESH-INTERVAL;VALUE=DURATION:P99999999W\r\nX-PUBLISHED-TTL:PT9223372036854775807S\r\n",
    );
    let events = [
        "DTSTART:99991231T235959Z\r\nDTEND:99991231T235959Z\r\nRRULE:FREQ=SECONDLY",
        "DTSTART;VALUE=DATE:99991231\r\nRRULE:FREQ=DAILY;INTERVAL=4294967295",
        "DTSTART:00010101T000000Z\r\nDURATION:P9999999999W",
        "DTSTART:20260302T100000Z\r\nDURATION:-P1D",
        "DTSTART;TZID=Pacific/Kiritimati:99991231T235959\r\nDTEND;TZID=Pacific/Kiritimati:99991231T235959",
        "DTSTART:20260302T100000Z\r\nDTEND:99991231T235959Z\r\nLAST-MODIFIED:99991231T235959Z\r\nDTSTAMP:99991231T235959Z",
        "DTSTART:20260302T100000Z\r\nRRULE:FREQ=YEARLY;UNTIL=99991231T235959Z\r\nEXDATE:99991231T235959Z",
        "DTSTART:20260302T100000Z\r\nDURATION:PT1H",
    ];
    for (i, props) in events.iter().enumerate() {
        body.push_str(&format!(
            "BEGIN:VEVENT\r\nUID:far-{i}\r\n{props}\r\nSUMMARY:far {i}\r\nEND:VEVENT\r\n"
        ));
    }
    body.push_str(
        "BEGIN:VEVENT\r\nUID:far-0\r\nRECURRENCE-ID:99991231T235959Z\r\nDTSTART:99991231T235959Z\r\nSUMMARY:moved\r\nEND:VEVENT\r\n",
    );
    body.push_str("END:VCALENDAR\r\n");
    body
}

#[tokio::test]
async fn ics_feeds_at_the_ends_of_time_never_panic() {
    let server = TestServer::start().await;
    for _ in 0..2 {
        server.push(Scripted {
            status: 200,
            headers: vec![("content-type", "text/calendar".to_owned())],
            body: far_calendar(),
            delay: Duration::ZERO,
        });
    }
    let feed = SecretString::from(server.url("/feed.ics"));
    let result = guarded(
        "ICS far times",
        ics().fetch_page(&feed, &EventsCursor::Full),
    )
    .await;
    let ids = kept("ICS far times", result);
    assert!(ids.iter().any(|id| id == "far-7"), "{ids:?}");
    guarded("ICS far times, probe", ics().probe(&feed))
        .await
        .unwrap();
}

#[tokio::test]
async fn caldav_resources_at_the_ends_of_time_never_panic() {
    const XML: &str = "application/xml; charset=utf-8";
    let server = TestServer::start().await;
    let calendar = server.url("/u/cal/");
    let xml = |status: u16, body: String| Scripted {
        status,
        headers: vec![("content-type", XML.to_owned())],
        body,
        delay: Duration::ZERO,
    };
    server.push(xml(
        207,
        r#"<multistatus xmlns="DAV:"><response><href>/u/cal/far.ics</href><propstat><prop><getetag>"far"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response><sync-token>t1</sync-token></multistatus>"#.to_owned(),
    ));
    let data = far_calendar().replace('&', "&amp;").replace('<', "&lt;");
    server.push(xml(
        207,
        format!(
            r#"<?xml version="1.0"?><D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:response><D:href>/u/cal/far.ics</D:href><D:propstat><D:prop><D:getetag>"far"</D:getetag><C:calendar-data>{data}</C:calendar-data></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response></D:multistatus>"#
        ),
    ));
    let result = guarded(
        "CalDAV far times",
        caldav().list_events_page(&caldav_login(&server), &calendar, &EventsCursor::Full),
    )
    .await;
    let ids = kept("CalDAV far times", result);
    assert_eq!(ids, ["/u/cal/far.ics"]);
}
