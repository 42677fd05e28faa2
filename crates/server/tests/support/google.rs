//! The Google emulator beside a `TestApp`, and the steps a user takes:
//! connect through the consent page, sync, read.
#![allow(dead_code, clippy::unwrap_used)]

use calsync_emulator::{Emulator, EmulatorConfig, EmulatorHandle, OAuthClient};
use calsync_store::BackendKind;
use serde_json::Value;

use super::TestApp;

pub const CLIENT_ID: &str = "test-client.apps.googleusercontent.com";
pub const CLIENT_SECRET: &str = "test-client-secret";
pub const REDIRECT_URI: &str = "http://localhost:8000/api/calendar/google/callback/";

/// calsync configured for a fresh emulator with the sample accounts.
pub struct GoogleApp {
    pub app: TestApp,
    pub emulator: EmulatorHandle,
}

impl GoogleApp {
    pub async fn start(kind: BackendKind) -> Option<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = EmulatorConfig {
            clients: vec![OAuthClient::new(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI])],
            auto_approve: true,
            sample_data: true,
            ..EmulatorConfig::default()
        };
        let emulator = Emulator::start(listener, config).unwrap();
        let base = emulator.base_url().to_owned();
        let env = [
            ("CALSYNC_GOOGLE_CLIENT_ID", CLIENT_ID.to_owned()),
            ("CALSYNC_GOOGLE_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
            (
                "CALSYNC_GOOGLE_AUTH_URL",
                format!("{base}/o/oauth2/v2/auth"),
            ),
            ("CALSYNC_GOOGLE_TOKEN_URL", format!("{base}/token")),
            ("CALSYNC_GOOGLE_API_BASE", base.clone()),
            ("CALSYNC_GOOGLE_REVOKE_URL", format!("{base}/revoke")),
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

    /// Goes through "Connect Google Calendar" as the browser would, choosing
    /// `account` on the consent page; returns where calsync sent the browser.
    pub async fn connect(&self, cookie: &str, account: &str) -> String {
        let url = self.authorization_url(cookie).await;
        let consent = self
            .app
            .http
            .get(format!("{url}&login_hint={account}"))
            .send()
            .await
            .unwrap();
        assert_eq!(consent.status(), 302, "the emulator should approve at once");
        let back = consent.headers()["location"].to_str().unwrap().to_owned();
        self.follow_callback(cookie, &back).await
    }

    /// The consent URL calsync hands out.
    pub async fn authorization_url(&self, cookie: &str) -> String {
        self.app.authorization_url(cookie, "google").await
    }

    /// Delivers a redirect meant for the public URL to the test server.
    pub async fn follow_callback(&self, cookie: &str, redirect: &str) -> String {
        self.app.follow_callback(cookie, redirect).await
    }

    /// Starts a manual sync and waits until every connection has finished.
    pub async fn sync(&self, token: &str) -> Value {
        self.app.sync(token).await
    }

    /// Waits until no connection is pending or syncing; returns the connections.
    pub async fn wait_for_sync(&self, token: &str) -> Value {
        self.app.wait_for_sync(token).await
    }

    /// Titles of the upcoming events (next 30 days).
    pub async fn upcoming_titles(&self, token: &str) -> Vec<String> {
        self.app
            .upcoming(token, "limit=500")
            .await
            .iter()
            .map(|e| e["title"].as_str().unwrap().to_owned())
            .collect()
    }
}
