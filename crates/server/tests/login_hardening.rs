//! Login throttling, client addresses behind proxies, and `next` after login,
//! against the real binary: an attacker is slowed, the owner is not locked
//! out, forged forwarding headers change nothing, and no `next` leaves the
//! site.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::IpAddr;
use std::time::Duration;

use calsync_store::BackendKind;
use reqwest::Url;
use support::{TestApp, PASSWORD};

on_both_backends!(
    the_owner_gets_in_after_50_failures_from_another_address,
    one_ipv6_64_counts_as_one_address,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_from_one_address_wait_longer_each_time() {
    failures_wait_longer(BackendKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    behind_a_trusted_proxy(BackendKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_forwarding_headers_change_nothing_without_trusted_proxies() {
    without_trusted_proxies(BackendKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_trusted_proxies_setting_stops_start_up() {
    bad_setting(BackendKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_next_leads_off_the_site() {
    open_redirects(BackendKind::Sqlite).await;
}

const WRONG: &str = "not the password";

/// A client whose connections come from `address` (any 127.0.0.0/8 address
/// reaches the server on 127.0.0.1).
fn client_from(address: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(address.parse::<IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The answer to one login: status, `Retry-After` seconds, body.
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: String,
    location: Option<String>,
}

async fn log_in(
    app: &TestApp,
    client: &reqwest::Client,
    password: &str,
    headers: &[(&str, &str)],
) -> Answer {
    log_in_next(app, client, password, headers, "").await
}

async fn log_in_next(
    app: &TestApp,
    client: &reqwest::Client,
    password: &str,
    headers: &[(&str, &str)],
    next: &str,
) -> Answer {
    let mut request = client.post(app.url("/login")).form(&[
        ("username", "alice"),
        ("password", password),
        ("next", next),
    ]);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let retry_after = header("retry-after").map(|v| v.parse().unwrap());
    let location = header("location");
    Answer {
        status: response.status().as_u16(),
        retry_after,
        location,
        body: response.text().await.unwrap(),
    }
}

/// Wrong passwords until one is throttled; returns how many were checked
/// (401) and the 429.
async fn fail_until_throttled(
    app: &TestApp,
    client: &reqwest::Client,
    headers: &[(&str, &str)],
) -> (u32, Answer) {
    for checked in 0..30 {
        let answer = log_in(app, client, WRONG, headers).await;
        if answer.status == 429 {
            return (checked, answer);
        }
        assert_eq!(answer.status, 401, "{}", answer.body);
    }
    panic!("30 wrong passwords in a row were never throttled");
}

async fn the_owner_gets_in_after_50_failures_from_another_address(kind: BackendKind) {
    let Some(app) = TestApp::start(kind).await else {
        return;
    };
    app.add_user("alice");
    let (attacker, owner) = (client_from("127.0.0.2"), client_from("127.0.0.1"));
    let mut statuses = Vec::new();
    for _ in 0..50 {
        let answer = log_in(&app, &attacker, WRONG, &[]).await;
        if answer.status == 429 {
            let wait = answer.retry_after.expect("a 429 says when to retry");
            assert!((1..=60).contains(&wait), "{wait}");
        }
        statuses.push(answer.status);
    }
    assert_eq!(statuses[..5], [401; 5], "five tries are checked");
    assert!(
        statuses[5..].iter().all(|s| *s == 429),
        "then the attacker waits: {statuses:?}"
    );
    let answer = log_in(&app, &owner, PASSWORD, &[]).await;
    assert_eq!(
        (answer.status, answer.location.as_deref()),
        (303, Some("/")),
        "the owner is not locked out: {}",
        answer.body
    );
    // The attacker is still held back, even with the right password.
    assert_eq!(log_in(&app, &attacker, PASSWORD, &[]).await.status, 429);
}

async fn one_ipv6_64_counts_as_one_address(kind: BackendKind) {
    let Some(app) = TestApp::start_with(kind, &[("CALSYNC_TRUSTED_PROXIES", "127.0.0.1/32")]).await
    else {
        return;
    };
    app.add_user("alice");
    let proxy = client_from("127.0.0.1");
    let mut statuses = Vec::new();
    for i in 1..=20 {
        let address = format!("2001:db8:bad:1:{i:x}::{i:x}");
        let answer = log_in(&app, &proxy, WRONG, &[("x-forwarded-for", &address)]).await;
        statuses.push(answer.status);
    }
    assert_eq!(statuses[..5], [401; 5]);
    assert!(
        statuses[5..].iter().all(|s| *s == 429),
        "20 addresses of one /64 are one attacker: {statuses:?}"
    );
    for owner in ["2001:db8:bad:2::1", "198.51.100.20"] {
        let answer = log_in(&app, &proxy, PASSWORD, &[("x-forwarded-for", owner)]).await;
        assert_eq!(answer.status, 303, "{owner}: {}", answer.body);
    }
}

async fn failures_wait_longer(kind: BackendKind) {
    let Some(app) = TestApp::start(kind).await else {
        return;
    };
    app.add_user("alice");
    let client = client_from("127.0.0.2");
    let (checked, first) = fail_until_throttled(&app, &client, &[]).await;
    assert_eq!(checked, 5);
    assert!(
        first
            .body
            .contains("Too many failed attempts. Try again in 1 second."),
        "{}",
        first.body
    );
    let mut waits = vec![first.retry_after.unwrap()];
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_secs(*waits.last().unwrap())).await;
        let (checked, throttled) = fail_until_throttled(&app, &client, &[]).await;
        assert_eq!(checked, 1, "after a wait, one more try");
        waits.push(throttled.retry_after.unwrap());
    }
    assert_eq!(waits, [1, 2, 4], "each failure doubles the wait");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let answer = log_in(&app, &client, PASSWORD, &[]).await;
    assert_eq!(
        answer.status, 303,
        "a wait, not a 15-minute lock: {}",
        answer.body
    );
    // A success starts the count over.
    assert_eq!(fail_until_throttled(&app, &client, &[]).await.0, 5);
}

async fn behind_a_trusted_proxy(kind: BackendKind) {
    let Some(app) = TestApp::start_with(kind, &[("CALSYNC_TRUSTED_PROXIES", "127.0.0.1/32")]).await
    else {
        return;
    };
    app.add_user("alice");
    let proxy = client_from("127.0.0.1");
    let a = [("x-forwarded-for", "198.51.100.1")];
    assert_eq!(fail_until_throttled(&app, &proxy, &a).await.0, 5);
    for forged in [
        [("x-forwarded-for", "203.0.113.50, 198.51.100.1")],
        [("forwarded", "for=198.51.100.1;proto=http")],
    ] {
        assert_eq!(
            log_in(&app, &proxy, PASSWORD, &forged).await.status,
            429,
            "{forged:?} is still client A"
        );
    }
    // Two clients behind the proxy are independent of each other and of it.
    let b = [("x-forwarded-for", "198.51.100.2")];
    assert_eq!(log_in(&app, &proxy, WRONG, &b).await.status, 401);
    assert_eq!(log_in(&app, &proxy, PASSWORD, &b).await.status, 303);
    let c = [("forwarded", "for=\"[2001:db8:c::1]:4711\"")];
    assert_eq!(log_in(&app, &proxy, PASSWORD, &c).await.status, 303);
    assert_eq!(log_in(&app, &proxy, PASSWORD, &[]).await.status, 303);
    // A peer outside the trusted proxies is itself the client, whatever it says.
    let outsider = client_from("127.0.0.9");
    let (checked, _) = fail_until_throttled(&app, &outsider, &b).await;
    assert_eq!(checked, 5);
    assert_eq!(log_in(&app, &proxy, PASSWORD, &b).await.status, 303);
}

async fn without_trusted_proxies(kind: BackendKind) {
    let Some(app) = TestApp::start(kind).await else {
        return;
    };
    app.add_user("alice");
    let attacker = client_from("127.0.0.2");
    let (checked, _) =
        fail_until_throttled(&app, &attacker, &[("x-forwarded-for", "198.51.100.1")]).await;
    assert_eq!(checked, 5);
    for forged in [
        [("x-forwarded-for", "198.51.100.2")],
        [("forwarded", "for=198.51.100.3")],
        [("x-real-ip", "198.51.100.4")],
    ] {
        assert_eq!(
            log_in(&app, &attacker, WRONG, &forged).await.status,
            429,
            "{forged:?} does not get the attacker a fresh count"
        );
    }
    let owner = client_from("127.0.0.3");
    assert_eq!(
        log_in(
            &app,
            &owner,
            PASSWORD,
            &[("x-forwarded-for", "198.51.100.1")]
        )
        .await
        .status,
        303,
        "claiming the attacker's address does not throttle the owner"
    );
}

async fn bad_setting(kind: BackendKind) {
    let Some(app) = TestApp::start(kind).await else {
        return;
    };
    for bad in ["10.0.0.1/8", "10.0.0.0/8,nonsense", "127.0.0.1/33"] {
        let out = app
            .command()
            .env("CALSYNC_TRUSTED_PROXIES", bad)
            .arg("migrate")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains("CALSYNC_TRUSTED_PROXIES is not valid"),
            "{bad}: {stderr}"
        );
    }
}

/// Where a browser goes with this `Location` from the public URL.
fn origin_after(location: &str) -> String {
    let public = Url::parse("http://localhost:8000/login").unwrap();
    public
        .join(location)
        .unwrap()
        .origin()
        .ascii_serialization()
}

async fn open_redirects(kind: BackendKind) {
    let Some(app) = TestApp::start(kind).await else {
        return;
    };
    app.add_user("alice");
    let client = client_from("127.0.0.1");
    let hostile = [
        "https://evil.example/",
        "https:evil.example",
        "//evil.example",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r\n/evil.example",
        "/%09/evil.example",
        "/%0a/evil.example",
        "/%0D%0A/evil.example",
        "/%2F%2Fevil.example",
        "/%2f/evil.example",
        "%2F%2Fevil.example",
        "/%5Cevil.example",
        "/%5C%5Cevil.example",
        "/%255C/evil.example",
        "/%20/evil.example",
        "/\u{3000}/evil.example",
        "/%E3%80%80/evil.example",
        "/\u{2028}/evil.example",
        "javascript:alert(1)",
    ];
    for next in hostile {
        let answer = log_in_next(&app, &client, PASSWORD, &[], next).await;
        assert_eq!(
            (answer.status, answer.location.as_deref()),
            (303, Some("/")),
            "{next:?}"
        );
        let page = client
            .get(app.url("/login"))
            .query(&[("next", next)])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains("name=\"next\" value=\"/\""),
            "{next:?}: {page}"
        );
    }
    for (next, want) in [
        ("/settings", "/settings"),
        (
            "/settings?tab=feeds#calendars",
            "/settings?tab=feeds#calendars",
        ),
        ("/caf\u{e9}", "/caf%C3%A9"),
        ("/\u{ff0f}evil.example", "/%EF%BC%8Fevil.example"),
    ] {
        let answer = log_in_next(&app, &client, PASSWORD, &[], next).await;
        let location = answer.location.unwrap();
        assert_eq!(location, want, "{next:?}");
        assert_eq!(origin_after(&location), "http://localhost:8000");
    }
}
