//! The Microsoft side of the emulator beside a `TestApp` (identity platform
//! v2 + Graph calendars), and the steps a user takes: connect through the
//! consent page, sync, read.
#![allow(dead_code, clippy::unwrap_used)]

use calsync_emulator::{Emulator, EmulatorConfig, EmulatorHandle, LogEntry, OAuthClient};
use calsync_store::BackendKind;
use serde_json::Value;

use super::{json, TestApp};

/// An Entra application id looks like a GUID.
pub const CLIENT_ID: &str = "5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b";
pub const CLIENT_SECRET: &str = "test-ms-client-secret";
pub const REDIRECT_URI: &str = "http://localhost:8000/api/calendar/microsoft/callback/";

/// calsync configured for a fresh emulator with the Microsoft sample accounts
/// (morgan@contoso.example, riley@outlook.example).
pub struct MicrosoftApp {
    pub app: TestApp,
    pub emulator: EmulatorHandle,
}

impl MicrosoftApp {
    pub async fn start(kind: BackendKind) -> Option<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = EmulatorConfig {
            clients: vec![OAuthClient::new(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI])],
            auto_approve: true,
            sample_data: true,
            ..EmulatorConfig::default()
        };
        let emulator = Emulator::start(listener, config).unwrap();
        let ms = emulator.microsoft();
        let env = [
            ("CALSYNC_MICROSOFT_CLIENT_ID", CLIENT_ID.to_owned()),
            ("CALSYNC_MICROSOFT_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
            ("CALSYNC_MICROSOFT_AUTH_URL", ms.auth_url),
            ("CALSYNC_MICROSOFT_TOKEN_URL", ms.token_url),
            ("CALSYNC_MICROSOFT_API_BASE", ms.api_base),
            ("CALSYNC_SYNC_INTERVAL", "1h".to_owned()),
        ];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let app = TestApp::start_with(kind, &env).await?;
        Some(Self { app, emulator })
    }

    /// Replaces the (killed) server with a fresh process on the same database.
    pub fn restart(&mut self) {
        self.app = self.app.restarted();
    }

    /// Goes through "Connect Outlook / Microsoft 365" as the browser would,
    /// signing in as `account`; returns where calsync sent the browser.
    pub async fn connect(&self, cookie: &str, account: &str) -> String {
        let back = self.consent(cookie, account).await;
        self.follow_callback(cookie, &back).await
    }

    /// The consent step only: where the identity platform sends the browser back.
    pub async fn consent(&self, cookie: &str, account: &str) -> String {
        let url = self.authorization_url(cookie).await;
        let consent = self
            .app
            .http
            .get(format!("{url}&login_hint={account}"))
            .send()
            .await
            .unwrap();
        assert_eq!(consent.status(), 302, "the emulator should approve at once");
        consent.headers()["location"].to_str().unwrap().to_owned()
    }

    /// The consent URL calsync hands out.
    pub async fn authorization_url(&self, cookie: &str) -> String {
        self.app.authorization_url(cookie, "microsoft").await
    }

    /// Delivers a redirect meant for the public URL to the test server.
    pub async fn follow_callback(&self, cookie: &str, redirect: &str) -> String {
        self.app.follow_callback(cookie, redirect).await
    }

    /// Starts a manual sync and waits until every connection has finished.
    pub async fn sync(&self, token: &str) -> Value {
        self.app.sync(token).await
    }

    /// The connections list.
    pub async fn connections(&self, token: &str) -> Value {
        let (status, connections) = json(
            self.app
                .get("/api/calendar/connections/", token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{connections}");
        connections
    }

    /// Waits until no connection is pending or syncing; returns the connections.
    pub async fn wait_for_sync(&self, token: &str) -> Value {
        self.app.wait_for_sync(token).await
    }

    /// The upcoming events (next 30 days).
    pub async fn upcoming(&self, token: &str) -> Vec<Value> {
        self.app.upcoming(token, "limit=500").await
    }

    /// Titles of the upcoming events (next 30 days).
    pub async fn upcoming_titles(&self, token: &str) -> Vec<String> {
        self.upcoming(token)
            .await
            .iter()
            .map(|e| e["title"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Occurrences overlapping `[start, end)` (range query).
    pub async fn events_between(
        &self,
        token: &str,
        start: jiff::Timestamp,
        end: jiff::Timestamp,
    ) -> Vec<Value> {
        let path = format!("/api/calendar/events/?start={start}&end={end}");
        let (status, events) = json(self.app.get(&path, token).send().await.unwrap()).await;
        assert_eq!(status, 200, "{events}");
        events.as_array().unwrap().clone()
    }

    /// Graph requests (the `/v1.0/` routes) logged after `since` entries.
    pub fn graph_requests(&self, since: usize) -> Vec<LogEntry> {
        self.emulator.requests()[since..]
            .iter()
            .filter(|r| r.path.starts_with("/v1.0/"))
            .cloned()
            .collect()
    }

    /// Token endpoint requests logged after `since` entries.
    pub fn token_requests(&self, since: usize) -> Vec<LogEntry> {
        self.emulator.requests()[since..]
            .iter()
            .filter(|r| r.path.ends_with("/oauth2/v2.0/token"))
            .cloned()
            .collect()
    }

    /// The refresh tokens the emulator has issued so far.
    pub fn refresh_tokens(&self) -> Vec<String> {
        self.emulator
            .live_tokens()
            .into_iter()
            .filter(|t| t.starts_with("0.A"))
            .collect()
    }

    /// Redeems `refresh_token` at the emulator's token endpoint as calsync
    /// would; returns the status and the `error` / `error_codes` answer.
    pub async fn redeem(&self, refresh_token: &str) -> (u16, Value) {
        let response = self
            .app
            .http
            .post(self.emulator.microsoft().token_url)
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
                ("refresh_token", refresh_token),
                ("scope", "offline_access User.Read Calendars.Read"),
            ])
            .send()
            .await
            .unwrap();
        json(response).await
    }
}

/// Whether a logged path is the delta of the calendar `id` (the id may be
/// percent-encoded in the path).
pub fn is_delta_of(entry: &LogEntry, id: &str) -> bool {
    let path = entry.path.replace("%3D", "=").replace("%2F", "/");
    path.ends_with("/calendarView/delta") && path.contains(id)
}
