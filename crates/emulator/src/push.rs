//! Push notifications (spec §4): `events.watch`, `calendarList.watch`,
//! `channels.stop`, and the delivery of `sync` / `exists` / `not_exists`
//! messages as bodiless POSTs with the X-Goog-* headers.
//!
//! A change marks each live channel watching it; one background worker sends
//! the messages in order, so that several quick changes coalesce into one
//! `exists` (Google also batches). Deliveries are recorded for tests
//! (`GET /_emulator/notifications`). Callback URLs must be HTTPS, except
//! loopback http URLs (test mode) or when `allow_http_callbacks` is set.
//! The state lock is never held while a callback is being called.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::calendar::authenticate;
use crate::errors::ApiError;
use crate::state::{AppState, Inner};
use crate::util;

const READ_SCOPES: &[&str] = &[
    "calendar",
    "calendar.readonly",
    "calendar.events",
    "calendar.events.readonly",
    "calendar.calendarlist",
    "calendar.calendarlist.readonly",
];

/// What a channel watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchTarget {
    Events(String),
    CalendarList,
}

#[derive(Debug, Clone)]
pub struct Channel {
    pub id: String,
    pub resource_id: String,
    pub resource_uri: String,
    pub token: Option<String>,
    pub address: String,
    pub expiration: Timestamp,
    pub sub: String,
    pub target: WatchTarget,
    pub next_message: u64,
    /// An `exists` is queued and not yet sent (further changes coalesce into it).
    pub pending: bool,
}

/// One delivery attempt series, as recorded for tests.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub channel_id: String,
    pub resource_id: String,
    pub state: String,
    pub message_number: u64,
    pub address: String,
    /// Final HTTP status from the receiver, if it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A message to send: channel id and resource state.
pub type Outbox = mpsc::UnboundedSender<(String, &'static str)>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/calendar/v3/calendars/{calendar_id}/events/watch",
            post(watch_events),
        )
        .route("/calendar/v3/users/me/calendarList/watch", post(watch_list))
        .route("/calendar/v3/channels/stop", post(stop))
}

impl Inner {
    /// Queues `exists` for live channels of `sub` watching `target`.
    pub fn notify(&mut self, sub: &str, target: &WatchTarget) {
        let now = self.now();
        let Some(outbox) = self.outbox.clone() else {
            return;
        };
        for ch in self.channels.iter_mut() {
            if ch.sub == sub && ch.target == *target && ch.expiration > now && !ch.pending {
                ch.pending = true;
                let _ = outbox.send((ch.id.clone(), "exists"));
            }
        }
    }

    /// Queues `not_exists` for channels on a deleted calendar, then drops them.
    pub fn notify_gone(&mut self, sub: &str, target: &WatchTarget) {
        if let Some(outbox) = self.outbox.clone() {
            for ch in self
                .channels
                .iter()
                .filter(|c| c.sub == sub && c.target == *target)
            {
                let _ = outbox.send((ch.id.clone(), "not_exists"));
            }
        }
    }
}

async fn watch_events(
    State(state): State<AppState>,
    Path(calendar_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let mut inner = state.lock();
    let sub = authenticate(&mut inner, &headers, READ_SCOPES)?;
    let ix = inner
        .accounts
        .iter()
        .position(|a| a.sub == sub)
        .ok_or_else(ApiError::unauthenticated)?;
    let cal_ix = inner
        .calendar_ix(ix, &calendar_id)
        .ok_or_else(ApiError::not_found)?;
    let cal_id = inner.accounts[ix].calendars[cal_ix].id.clone();
    let uri = format!(
        "{}/calendar/v3/calendars/{}/events?alt=json",
        state.base_url,
        util::pct_encode(&cal_id)
    );
    create_channel(&mut inner, &sub, WatchTarget::Events(cal_id), uri, &body).map(Json)
}

async fn watch_list(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let mut inner = state.lock();
    let sub = authenticate(&mut inner, &headers, READ_SCOPES)?;
    let uri = format!(
        "{}/calendar/v3/users/me/calendarList?alt=json",
        state.base_url
    );
    create_channel(&mut inner, &sub, WatchTarget::CalendarList, uri, &body).map(Json)
}

fn create_channel(
    inner: &mut Inner,
    sub: &str,
    target: WatchTarget,
    resource_uri: String,
    body: &[u8],
) -> Result<Value, ApiError> {
    let req: Value = serde_json::from_slice(body)
        .map_err(|_| ApiError::bad_request("parseError", "Parse Error"))?;
    let id = req["id"]
        .as_str()
        .filter(|s| !s.is_empty() && s.len() <= 64)
        .ok_or_else(|| {
            ApiError::bad_request("required", "Required: channel id (at most 64 characters).")
        })?;
    let kind = req["type"].as_str().unwrap_or("");
    if kind != "web_hook" && kind != "webhook" {
        return Err(ApiError::bad_request(
            "invalid",
            format!("Invalid value for: type: {kind}"),
        ));
    }
    let address = req["address"].as_str().unwrap_or("");
    let loopback = ["http://localhost", "http://127.0.0.1", "http://[::1]"]
        .iter()
        .any(|p| {
            address
                .strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
        });
    let https = address.starts_with("https://");
    if !(https
        || loopback
        || (address.starts_with("http://") && inner.settings.allow_http_callbacks))
    {
        return Err(ApiError::bad_request(
            "push.webhookUrlNotHttps",
            format!("WebHook callback must be HTTPS: {address}"),
        ));
    }
    let now = inner.now();
    if inner
        .channels
        .iter()
        .any(|c| c.id == id && c.expiration > now)
    {
        return Err(ApiError::bad_request(
            "channelIdNotUnique",
            format!("Channel id {id} not unique"),
        ));
    }
    inner.channels.retain(|c| c.expiration > now);
    let cap = inner.settings.max_channel_ttl_secs.max(1);
    let mut ttl = req["params"]["ttl"]
        .as_str()
        .and_then(|t| t.parse::<i64>().ok())
        .filter(|t| *t > 0)
        .unwrap_or(604_800)
        .min(cap);
    if let Some(ms) = req["expiration"]
        .as_str()
        .and_then(|e| e.parse::<i64>().ok())
        .or(req["expiration"].as_i64())
    {
        let wanted = ms / 1000 - now.as_second();
        if wanted > 0 {
            ttl = ttl.min(wanted);
        }
    }
    let expiration = now
        .checked_add(SignedDuration::from_secs(ttl))
        .unwrap_or(now);
    let token = req["token"].as_str().map(str::to_owned);
    let resource_id = util::random_token(20);
    let channel = Channel {
        id: id.to_owned(),
        resource_id: resource_id.clone(),
        resource_uri: resource_uri.clone(),
        token: token.clone(),
        address: address.to_owned(),
        expiration,
        sub: sub.to_owned(),
        target,
        next_message: 1,
        pending: false,
    };
    inner.channels.push(channel);
    if let Some(outbox) = &inner.outbox {
        let _ = outbox.send((id.to_owned(), "sync"));
    }
    let mut out = json!({
        "kind": "api#channel",
        "id": id,
        "resourceId": resource_id,
        "resourceUri": resource_uri,
        "expiration": expiration.as_millisecond().to_string(),
    });
    if let Some(t) = token {
        out["token"] = json!(t);
    }
    Ok(out)
}

async fn stop(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    let mut inner = state.lock();
    let sub = authenticate(&mut inner, &headers, READ_SCOPES)?;
    let req: Value = serde_json::from_slice(&body)
        .map_err(|_| ApiError::bad_request("parseError", "Parse Error"))?;
    let (id, resource) = (
        req["id"].as_str().unwrap_or(""),
        req["resourceId"].as_str().unwrap_or(""),
    );
    let before = inner.channels.len();
    inner
        .channels
        .retain(|c| !(c.id == id && c.resource_id == resource && c.sub == sub));
    if inner.channels.len() == before {
        return Err(ApiError::not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The delivery worker: sends queued messages one at a time, retrying 5xx
/// answers a few times with backoff, and records each outcome.
pub async fn deliver(state: AppState, mut rx: mpsc::UnboundedReceiver<(String, &'static str)>) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("calsync-emulator: push notifications disabled: {e}");
            return;
        }
    };
    while let Some((channel_id, resource_state)) = rx.recv().await {
        let job = {
            let mut inner = state.lock();
            let now = inner.now();
            let Some(ch) = inner.channels.iter_mut().find(|c| c.id == channel_id) else {
                continue;
            };
            if resource_state == "exists" {
                ch.pending = false;
            }
            if ch.expiration <= now {
                continue;
            }
            let number = ch.next_message;
            // Numbers increase but need not be contiguous (spec §4).
            ch.next_message += 1;
            let ch = ch.clone();
            if resource_state == "not_exists" {
                inner.channels.retain(|c| c.id != channel_id);
            }
            (ch, number)
        };
        let (ch, number) = job;
        let expiration = ch
            .expiration
            .strftime("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let mut outcome = Delivery {
            channel_id: ch.id.clone(),
            resource_id: ch.resource_id.clone(),
            state: resource_state.to_owned(),
            message_number: number,
            address: ch.address.clone(),
            status: None,
            error: None,
        };
        for attempt in 0..3u32 {
            let mut req = client
                .post(&ch.address)
                .header("X-Goog-Channel-ID", &ch.id)
                .header("X-Goog-Channel-Expiration", &expiration)
                .header("X-Goog-Resource-ID", &ch.resource_id)
                .header("X-Goog-Resource-URI", &ch.resource_uri)
                .header("X-Goog-Resource-State", resource_state)
                .header("X-Goog-Message-Number", number.to_string())
                .header("Content-Length", "0");
            if let Some(t) = &ch.token {
                req = req.header("X-Goog-Channel-Token", t);
            }
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    outcome.status = Some(status);
                    outcome.error = None;
                    if !matches!(status, 500 | 502 | 503 | 504) {
                        break;
                    }
                }
                Err(e) => outcome.error = Some(e.without_url().to_string()),
            }
            if attempt < 2 {
                tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt))).await;
            }
        }
        let mut inner = state.lock();
        if inner.deliveries.len() >= 10_000 {
            inner.deliveries.pop_front();
        }
        inner.deliveries.push_back(outcome);
    }
}
