//! A scripted HTTP server for the providers' HTTP-level tests: each request is
//! logged and answered with the next scripted response. Bound to
//! `127.0.0.1:0` and served by axum on the test's runtime.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use calsync_providers::google::{GoogleClient, GoogleConfig};
use calsync_providers::http::{HttpClient, HttpConfig, RetryPolicy};
use secrecy::SecretString;

/// One answer the server will give.
#[derive(Clone)]
pub struct Scripted {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Scripted {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub authorization: Option<String>,
    pub body: String,
}

impl Logged {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn form(&self, name: &str) -> Option<String> {
        form_urlencoded(&self.body)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

fn form_urlencoded(text: &str) -> Vec<(String, String)> {
    let url = reqwest::Url::parse(&format!("http://x/?{text}")).unwrap();
    url.query_pairs().into_owned().collect()
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Scripted>,
    log: Vec<Logged>,
}

/// The running server.
#[derive(Clone)]
pub struct TestServer {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl TestServer {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, inner }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn push(&self, answer: Scripted) {
        self.inner.lock().unwrap().script.push_back(answer);
    }

    pub fn log(&self) -> Vec<Logged> {
        self.inner.lock().unwrap().log.clone()
    }

    /// A Google client pointed at this server, with millisecond backoffs.
    pub fn google(&self) -> GoogleClient {
        self.google_with(fast_http())
    }

    pub fn google_with(&self, http: HttpClient) -> GoogleClient {
        let mut config = GoogleConfig::new(
            "cid.apps.googleusercontent.com".into(),
            Some(SecretString::from("client-secret-value")),
            "http://localhost:8000/api/calendar/google/callback/".into(),
        );
        config.auth_url = self.url("/o/oauth2/v2/auth");
        config.token_url = self.url("/token");
        config.api_base = self.url("");
        config.revoke_url = self.url("/revoke");
        GoogleClient::with_http(config, http).unwrap()
    }
}

/// An HTTP client with tiny backoffs so retry tests run in milliseconds.
pub fn fast_http() -> HttpClient {
    HttpClient::new(HttpConfig {
        retry: RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(20),
            max_retry_after: Duration::from_secs(2),
        },
        ..HttpConfig::default()
    })
    .unwrap()
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
        inner.log.push(Logged {
            method: method.to_string(),
            path: uri.path().to_owned(),
            query: uri.query().map(form_urlencoded).unwrap_or_default(),
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        inner.script.pop_front()
    };
    let Some(answer) = answer else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "script exhausted").into_response();
    };
    if !answer.delay.is_zero() {
        tokio::time::sleep(answer.delay).await;
    }
    let mut response = Response::builder().status(answer.status);
    for (name, value) in &answer.headers {
        response = response.header(*name, value);
    }
    response.body(answer.body.into()).unwrap()
}
