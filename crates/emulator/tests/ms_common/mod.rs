//! Shared helpers for the Microsoft tests: an emulator with a registered
//! app, the authorization-code + PKCE dance, and Graph GETs.
#![allow(clippy::unwrap_used, dead_code)]

use base64::Engine as _;
use calsync_emulator::{Emulator, EmulatorConfig, EmulatorHandle, OAuthClient};
use reqwest::{Client, Url};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "0f6c3e2a-5b1d-4c7e-9a8f-2d3b4c5d6e7f";
pub const CLIENT_SECRET: &str = "ms~test~secret";
pub const REDIRECT: &str = "http://localhost:8000/api/calendar/microsoft/callback/";
pub const SCOPES: &str = "offline_access User.Read Calendars.Read openid email profile";
pub const VERIFIER: &str = "M25iVXpKU3puUjFaYWg3T1NDTDQtcW1ROUY5YXlwalNoc0hhakxifmZHag";

pub async fn start(sample_data: bool) -> EmulatorHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = EmulatorConfig {
        clients: vec![OAuthClient::new(CLIENT_ID, CLIENT_SECRET, [REDIRECT])],
        auto_approve: true,
        sample_data,
        ..Default::default()
    };
    Emulator::start(listener, config).unwrap()
}

pub fn http() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

pub async fn authorize(emu: &EmulatorHandle, extra: &[(&str, &str)]) -> reqwest::Response {
    let ch = challenge(VERIFIER);
    let mut q: Vec<(&str, &str)> = vec![
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", SCOPES),
        ("state", "st-ms-1"),
        ("code_challenge", &ch),
        ("code_challenge_method", "S256"),
    ];
    for (k, _) in extra {
        q.retain(|(qk, _)| qk != k);
    }
    q.extend_from_slice(extra);
    q.retain(|(_, v)| !v.is_empty());
    http()
        .get(emu.microsoft().auth_url)
        .query(&q)
        .send()
        .await
        .unwrap()
}

pub fn location_params(resp: &reqwest::Response) -> Vec<(String, String)> {
    let loc = resp.headers()["location"].to_str().unwrap();
    Url::parse(loc)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

pub async fn token(emu: &EmulatorHandle, form: &[(&str, &str)]) -> (u16, Value) {
    let resp = http()
        .post(emu.microsoft().token_url)
        .form(form)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// A code for `email` (auto-approved).
pub async fn code_for(emu: &EmulatorHandle, email: &str) -> String {
    let resp = authorize(emu, &[("login_hint", email)]).await;
    assert_eq!(resp.status().as_u16(), 302);
    let p = location_params(&resp);
    param(&p, "code").unwrap().to_owned()
}

pub async fn redeem(emu: &EmulatorHandle, code: &str) -> (u16, Value) {
    token(
        emu,
        &[
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

pub async fn refresh(emu: &EmulatorHandle, rt: &str) -> (u16, Value) {
    token(
        emu,
        &[
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("scope", "offline_access User.Read Calendars.Read"),
        ],
    )
    .await
}

/// Signs `email` in; returns the token response.
pub async fn login(emu: &EmulatorHandle, email: &str) -> Value {
    let code = code_for(emu, email).await;
    let (status, body) = redeem(emu, &code).await;
    assert_eq!(status, 200, "{body}");
    body
}

pub async fn access_token(emu: &EmulatorHandle, email: &str) -> String {
    login(emu, email).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub struct GraphResponse {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

/// GET a Graph URL (absolute, or a path under the Graph base).
pub async fn get(emu: &EmulatorHandle, token: &str, url: &str, prefer: &[&str]) -> GraphResponse {
    let url = if url.starts_with("http") {
        url.to_owned()
    } else {
        format!("{}{url}", emu.microsoft().api_base)
    };
    let mut req = http().get(url).bearer_auth(token);
    for p in prefer {
        req = req.header("Prefer", *p);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.json().await.unwrap_or(Value::Null);
    GraphResponse {
        status,
        headers,
        body,
    }
}

pub fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
