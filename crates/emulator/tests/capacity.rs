//! What a capacity benchmark needs from the emulator: a provider latency on
//! every Calendar API and Graph request (`latency_ms`, through
//! `PUT /_emulator/settings` or `EmulatorConfig`), and many accounts made in
//! bulk in-process (`EmulatorHandle::populate`), found again by email.
#![allow(clippy::unwrap_used)]

mod common;
mod ms_common;

use std::time::{Duration, Instant};

use calsync_emulator::{
    BulkAccount, BulkProvider, Emulator, EmulatorConfig, OAuthClient, Settings,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn latency_setting_delays_calendar_api_requests_only() {
    let emu = common::start(true, false).await;
    emu.add_account("lat@example.com", None);
    let token = common::login(&emu, "lat@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let (status, settings) = common::control(
        &emu,
        Method::PUT,
        "/settings",
        json!({"latency_ms": [150, 250]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    assert_eq!(settings["latency_ms"], json!([150, 250]));
    let (_, read) = common::control(&emu, Method::GET, "/settings", Value::Null).await;
    assert_eq!(read["latency_ms"], json!([150, 250]));

    emu.take_requests();
    for _ in 0..5 {
        let t = Instant::now();
        let (status, _) = common::api_get(&emu, &token, "/users/me/calendarList", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            t.elapsed() >= Duration::from_millis(150),
            "answered after {:?}, before the minimum latency",
            t.elapsed()
        );
    }
    let log = emu.take_requests();
    assert_eq!(log.len(), 5);
    for entry in &log {
        let waited = entry.latency_ms.expect("the log shows the latency");
        assert!((150..=250).contains(&waited), "{waited}");
    }
    assert!(
        emu.take_requests().is_empty(),
        "take_requests empties the log"
    );

    // Neither the control API nor the token endpoint waits: the log
    // records no latency for the token requests.
    let (status, _) = common::control(&emu, Method::GET, "/health", Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = common::refresh(
        &emu,
        common::login(&emu, "lat@example.com").await["refresh_token"]
            .as_str()
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let token_requests: Vec<_> = emu
        .take_requests()
        .into_iter()
        .filter(|e| e.path == "/token")
        .collect();
    assert!(!token_requests.is_empty());
    assert!(token_requests.iter().all(|e| e.latency_ms.is_none()));

    // Back to no latency; a minimum above the maximum is refused.
    let (status, body) = common::control(
        &emu,
        Method::PUT,
        "/settings",
        json!({"latency_ms": [300, 100]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = common::control(
        &emu,
        Method::PUT,
        "/settings",
        json!({"latency_ms": [0, 600_000]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, settings) =
        common::control(&emu, Method::PUT, "/settings", json!({"latency_ms": null})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(settings["latency_ms"], Value::Null);
    common::api_get(&emu, &token, "/users/me/calendarList", &[]).await;
    assert_eq!(emu.take_requests()[0].latency_ms, None);
    emu.shutdown().await;
}

#[tokio::test]
async fn latency_from_the_config_delays_graph_requests() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let emu = Emulator::start(
        listener,
        EmulatorConfig {
            clients: vec![OAuthClient::new(
                ms_common::CLIENT_ID,
                ms_common::CLIENT_SECRET,
                [ms_common::REDIRECT],
            )],
            auto_approve: true,
            settings: Settings {
                latency_ms: Some([120, 120]),
                ..Settings::default()
            },
            ..EmulatorConfig::default()
        },
    )
    .unwrap();
    emu.ms_add_account("lat@contoso.example", None, None);
    let token = ms_common::access_token(&emu, "lat@contoso.example").await;
    emu.take_requests();
    let t = Instant::now();
    let me = ms_common::get(&emu, &token, "/me/calendars", &[]).await;
    assert_eq!(me.status, 200);
    assert!(
        t.elapsed() >= Duration::from_millis(120),
        "{:?}",
        t.elapsed()
    );
    let log = emu.take_requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].path, "/v1.0/me/calendars");
    assert_eq!(log[0].latency_ms, Some(120));
    assert_eq!(log[0].account.as_deref(), Some("lat@contoso.example"));
    emu.shutdown().await;
}

#[tokio::test]
async fn ten_thousand_accounts_in_bulk_are_served_by_email() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let emu = Emulator::start(
        listener,
        EmulatorConfig {
            clients: vec![
                common::client(),
                OAuthClient::new(
                    ms_common::CLIENT_ID,
                    ms_common::CLIENT_SECRET,
                    [ms_common::REDIRECT],
                ),
            ],
            auto_approve: true,
            ..EmulatorConfig::default()
        },
    )
    .unwrap();
    let accounts: Vec<BulkAccount> = (0..10_000)
        .map(|n| {
            let google = n % 2 == 0;
            BulkAccount {
                provider: if google {
                    BulkProvider::Google
                } else {
                    BulkProvider::Microsoft
                },
                email: if google {
                    format!("user{n}@example.com")
                } else {
                    format!("user{n}@contoso.example")
                },
                calendars: 2 + n % 2,
                events_per_calendar: 3,
                weekly_series: n % 4 == 0,
            }
        })
        .collect();
    let first = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * 7);
    let made = emu.populate(&accounts, first).unwrap();
    assert_eq!(made.len(), 10_000);
    let calendars: usize = made.iter().map(|p| p.calendars.len()).sum();
    let events: usize = made.iter().map(|p| p.events.len()).sum();
    // Google accounts (even n) have 2 calendars, Microsoft ones (odd n) 3;
    // 3 events each, and a series for every fourth account.
    assert_eq!(calendars, 5_000 * 2 + 5_000 * 3);
    assert_eq!(events, calendars * 3 + 2_500);

    // The last accounts of each provider are found by email (any case) and
    // their calendars and events are served over the API.
    let google = common::login(&emu, "USER9998@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, list) = common::api_get(&emu, &google, "/users/me/calendarList", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let primary = &made[9_998].calendars[0];
    let (status, page) = common::api_get(
        &emu,
        &google,
        &format!("/calendars/{}/events", ms_common::pct(primary)),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 3);

    let ms = ms_common::access_token(&emu, "user9999@contoso.example").await;
    let calendars = ms_common::get(&emu, &ms, "/me/calendars", &[]).await;
    assert_eq!(calendars.status, 200);
    assert_eq!(calendars.body["value"].as_array().unwrap().len(), 3);
    let me = ms_common::get(&emu, &ms, "/me", &[]).await;
    assert_eq!(me.body["userPrincipalName"], "user9999@contoso.example");

    // Every request is logged with its account, found through the index.
    let log = emu.take_requests();
    assert!(log
        .iter()
        .any(|e| e.account.as_deref() == Some("user9998@example.com")));
    assert!(log
        .iter()
        .any(|e| e.account.as_deref() == Some("user9999@contoso.example")));
    emu.shutdown().await;
}
