//! Shared helpers for the emulator's HTTP tests: start an emulator on a
//! random port, run the OAuth dance, and talk JSON to it.
#![allow(clippy::unwrap_used, dead_code)]

use base64::Engine as _;
use calsync_emulator::{Emulator, EmulatorConfig, EmulatorHandle, OAuthClient};
use reqwest::{Client, StatusCode, Url};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "123-test.apps.googleusercontent.com";
pub const CLIENT_SECRET: &str = "test-secret";
pub const REDIRECT: &str = "http://localhost:8000/api/calendar/google/callback/";
pub const SCOPES: &str = "openid email https://www.googleapis.com/auth/calendar";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

pub fn client() -> OAuthClient {
    OAuthClient::new(CLIENT_ID, CLIENT_SECRET, [REDIRECT])
}

pub async fn start(auto_approve: bool, sample_data: bool) -> EmulatorHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = EmulatorConfig {
        clients: vec![client()],
        auto_approve,
        sample_data,
        ..Default::default()
    };
    Emulator::start(listener, config).unwrap()
}

/// An HTTP client that does not follow redirects (we inspect them).
pub fn http() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Query pairs of a redirect's Location.
pub fn location_params(resp: &reqwest::Response) -> Vec<(String, String)> {
    let loc = resp
        .headers()
        .get("location")
        .expect("a Location header")
        .to_str()
        .unwrap();
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

/// GET /o/oauth2/v2/auth with the given extra parameters; returns the response.
pub async fn authorize(emu: &EmulatorHandle, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut q: Vec<(&str, &str)> = vec![
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", SCOPES),
        ("state", "st-123"),
    ];
    q.extend_from_slice(extra);
    http()
        .get(emu.google().auth_url)
        .query(&q)
        .send()
        .await
        .unwrap()
}

/// Auto-approved authorization with PKCE S256; returns the code.
pub async fn code_for(emu: &EmulatorHandle, extra: &[(&str, &str)]) -> String {
    let ch = challenge(VERIFIER);
    let mut q: Vec<(&str, &str)> = vec![("code_challenge", &ch), ("code_challenge_method", "S256")];
    q.extend_from_slice(extra);
    let resp = authorize(emu, &q).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let params = location_params(&resp);
    assert_eq!(param(&params, "state"), Some("st-123"));
    param(&params, "code").expect("a code").to_owned()
}

pub async fn exchange(
    emu: &EmulatorHandle,
    code: &str,
    verifier: Option<&str>,
    redirect: &str,
) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect),
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    let resp = http()
        .post(emu.google().token_url)
        .form(&form)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

pub async fn refresh(emu: &EmulatorHandle, refresh_token: &str) -> (StatusCode, Value) {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
    ];
    let resp = http()
        .post(emu.google().token_url)
        .form(&form)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

/// Full auto-approved login for `email`: returns the token response.
pub async fn login(emu: &EmulatorHandle, email: &str) -> Value {
    let code = code_for(
        emu,
        &[
            ("access_type", "offline"),
            ("prompt", "consent"),
            ("login_hint", email),
        ],
    )
    .await;
    let (status, body) = exchange(emu, &code, Some(VERIFIER), REDIRECT).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

pub async fn api_get(
    emu: &EmulatorHandle,
    token: &str,
    path: &str,
    query: &[(&str, &str)],
) -> (StatusCode, Value) {
    let url = format!("{}{path}", emu.google().api_base);
    let resp = http()
        .get(url)
        .bearer_auth(token)
        .query(query)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub async fn control(
    emu: &EmulatorHandle,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let url = format!("{}/_emulator{path}", emu.base_url());
    let resp = http()
        .request(method, url)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub fn reason(body: &Value) -> &str {
    body["error"]["errors"][0]["reason"].as_str().unwrap_or("")
}

/// Follows every page of a listing; returns (pages, nextSyncToken).
pub async fn list_all(
    emu: &EmulatorHandle,
    token: &str,
    path: &str,
    query: &[(&str, &str)],
) -> (Vec<Value>, String) {
    let mut pages = Vec::new();
    let mut page_token: Option<String> = None;
    loop {
        let mut q: Vec<(&str, &str)> = query.to_vec();
        if let Some(t) = &page_token {
            q.push(("pageToken", t));
        }
        let (status, body) = api_get(emu, token, path, &q).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let next_page = body["nextPageToken"].as_str().map(str::to_owned);
        let next_sync = body["nextSyncToken"].as_str().map(str::to_owned);
        assert!(
            !(next_page.is_some() && next_sync.is_some()),
            "both tokens on one page"
        );
        pages.push(body);
        match next_page {
            Some(t) => page_token = Some(t),
            None => return (pages, next_sync.expect("nextSyncToken on the last page")),
        }
        assert!(pages.len() < 1000, "too many pages");
    }
}

pub fn items(pages: &[Value]) -> Vec<Value> {
    pages
        .iter()
        .flat_map(|p| p["items"].as_array().cloned().unwrap_or_default())
        .collect()
}

pub fn timed(dt: &str, tz: &str) -> Value {
    json!({"dateTime": dt, "timeZone": tz})
}
