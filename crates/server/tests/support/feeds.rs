//! ICS feeds served by a test over real HTTP: several by name, each
//! answering its body until the test turns it hostile (429 with a chosen
//! `Retry-After`).
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::{SignedDuration, Timestamp};
use tokio::net::TcpListener;

/// Feeds served by the test: each answers its body until it turns hostile.
#[derive(Default)]
pub struct Feeds {
    pub bodies: BTreeMap<String, String>,
    pub hostile: BTreeMap<String, &'static str>,
    /// Requests per feed name.
    pub requests: BTreeMap<String, u32>,
}

async fn serve_feed(State(feeds): State<Arc<Mutex<Feeds>>>, Path(name): Path<String>) -> Response {
    let mut feeds = feeds.lock().unwrap();
    *feeds.requests.entry(name.clone()).or_default() += 1;
    if let Some(retry_after) = feeds.hostile.get(&name) {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, *retry_after)],
        )
            .into_response();
    }
    match feeds.bodies.get(&name) {
        Some(body) => (
            [(header::CONTENT_TYPE, "text/calendar; charset=utf-8")],
            body.clone(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A feed server on a random port: its base URL and state.
pub async fn feed_server() -> (String, Arc<Mutex<Feeds>>) {
    let feeds = Arc::new(Mutex::new(Feeds::default()));
    let app = axum::Router::new()
        .route("/feeds/{name}", axum::routing::get(serve_feed))
        .with_state(feeds.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://127.0.0.1:{port}/feeds"), feeds)
}

/// A feed of one event, tomorrow at a whole hour.
pub fn feed_with(uid: &str, title: &str) -> String {
    let start = Timestamp::now().round(jiff::Unit::Hour).unwrap() + SignedDuration::from_hours(24);
    let utc = |t: Timestamp| t.strftime("%Y%m%dT%H%M%SZ").to_string();
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calsync tests//EN\r\n\
         BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{}\r\nDTEND:{}\r\nSUMMARY:{title}\r\nEND:VEVENT\r\n\
         END:VCALENDAR\r\n",
        utc(start),
        utc(start + SignedDuration::from_hours(1))
    )
}
