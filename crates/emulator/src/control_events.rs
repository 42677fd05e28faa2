//! Control API for events (`/_emulator/accounts/{account}/calendars/{calendar}/events...`):
//! insert (including exceptions of a series and raw fixtures), bulk
//! generation, merge-patch, delete/cancel/purge, and reading the stored
//! events. Writes go through `writes::store_event`, exactly like API writes,
//! so sync tokens and push channels see them as user edits.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::control::{bad, calendar_ixs, object, Result};
use crate::errors::ApiError;
use crate::events;
use crate::recur::Start;
use crate::state::{etag_for, AppState, Inner, StoredEvent};
use crate::util;
use crate::writes::{self, store_event};

#[derive(Deserialize, Default)]
pub(crate) struct EventQuery {
    /// Store the body verbatim (only id/etag/updated/kind filled in): for
    /// quirky fixtures that Google's own validation would reject.
    #[serde(default)]
    raw: bool,
    /// DELETE: remove without a tombstone (as if it vanished long ago).
    #[serde(default)]
    purge: bool,
}

pub(crate) async fn list_events(
    State(state): State<AppState>,
    Path((account, calendar)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let items = stored_events(&state.lock(), &account, &calendar)?;
    Ok(Json(json!({ "items": items })))
}

/// Every stored event of a calendar (cancelled ones included), as stored.
pub(crate) fn stored_events(inner: &Inner, account: &str, calendar: &str) -> Result<Vec<Value>> {
    let (ix, cal_ix) = calendar_ixs(inner, account, calendar)?;
    Ok(inner.accounts[ix].calendars[cal_ix]
        .events
        .values()
        .map(|e| Value::Object(e.body.clone()))
        .collect())
}

pub(crate) async fn get_event(
    State(state): State<AppState>,
    Path((account, calendar, event)): Path<(String, String, String)>,
) -> Result<Json<Value>> {
    let inner = state.lock();
    let (ix, cal_ix) = calendar_ixs(&inner, &account, &calendar)?;
    let ev = inner.accounts[ix].calendars[cal_ix]
        .events
        .get(&event)
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(Value::Object(ev.body.clone())))
}

/// Inserts an event as the provider's user would (or an exception of a series).
pub(crate) fn insert_event(
    inner: &mut Inner,
    base_url: &str,
    account: &str,
    calendar: &str,
    body: Value,
    raw: bool,
) -> Result<Value> {
    let (ix, cal_ix) = calendar_ixs(inner, account, calendar)?;
    let mut body = object(body)?;
    if raw {
        let seq = inner.next_seq();
        let id = body
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(util::base32hex_id);
        body.insert("id".into(), id.clone().into());
        body.insert("kind".into(), "calendar#event".into());
        body.insert("etag".into(), etag_for(seq).into());
        let now = util::rfc3339_millis(inner.now());
        body.entry("updated").or_insert_with(|| now.into());
        inner.accounts[ix].calendars[cal_ix].events.insert(
            id,
            StoredEvent {
                body: body.clone(),
                seq,
            },
        );
        return Ok(Value::Object(body));
    }
    let (id, existing) = match body.get("recurringEventId").and_then(Value::as_str) {
        Some(master_id) => {
            // An exception: start from the occurrence it replaces.
            let master = inner.accounts[ix].calendars[cal_ix]
                .events
                .get(master_id)
                .filter(|m| m.is_master())
                .ok_or_else(|| bad(format!("no recurring event {master_id}")))?;
            let (orig, _) = events::parse_edt(body.get("originalStartTime"), "originalStart")?;
            let orig = match (orig, events::start_of(&master.body)) {
                (Start::Zoned(z), Some(Start::Zoned(m))) => {
                    Start::Zoned(z.timestamp().to_zoned(m.time_zone().clone()))
                }
                (o, _) => o,
            };
            let base = events::render_instance(&master.body, &orig)
                .ok_or_else(|| bad("cannot render that instance"))?;
            let id = base
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let mut merged = base.clone();
            for (k, v) in body {
                merged.insert(k, v);
            }
            merged.insert(
                "originalStartTime".into(),
                events::edt_json(&orig, &master.body),
            );
            body = merged;
            (id, Some(base))
        }
        None => {
            let id = body
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(util::base32hex_id);
            (id, None)
        }
    };
    if let Some(existing) = inner.accounts[ix].calendars[cal_ix].events.get(&id) {
        if !existing.is_cancelled() || existing.recurring_event_id().is_none() {
            return Err(ApiError::duplicate());
        }
    }
    let stored = store_event(
        inner,
        base_url,
        ix,
        cal_ix,
        &id,
        body,
        existing.as_ref(),
        true,
    )?;
    Ok(Value::Object(stored))
}

pub(crate) async fn add_event(
    State(state): State<AppState>,
    Path((account, calendar)): Path<(String, String)>,
    Query(q): Query<EventQuery>,
    Json(body): Json<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    let mut inner = state.lock();
    let v = insert_event(
        &mut inner,
        &state.base_url,
        &account,
        &calendar,
        body,
        q.raw,
    )?;
    Ok((StatusCode::CREATED, Json(v)))
}

#[derive(Deserialize)]
pub(crate) struct Generate {
    count: usize,
    /// First event's start (RFC 3339); default: the emulator's "now", rounded to the hour.
    start: Option<String>,
    /// Gap between consecutive starts in minutes (default 120).
    every_minutes: Option<i64>,
    summary_prefix: Option<String>,
}

pub(crate) async fn generate_events(
    State(state): State<AppState>,
    Path((account, calendar)): Path<(String, String)>,
    Json(g): Json<Generate>,
) -> Result<(StatusCode, Json<Value>)> {
    if g.count > 1_000_000 {
        return Err(bad("count must be at most 1000000"));
    }
    let mut inner = state.lock();
    let (ix, cal_ix) = calendar_ixs(&inner, &account, &calendar)?;
    let start: Timestamp = match &g.start {
        Some(s) => s.parse().map_err(|_| bad("start must be RFC 3339"))?,
        None => {
            let now = inner.now().as_second();
            Timestamp::from_second(now - now.rem_euclid(3600)).map_err(|e| bad(e.to_string()))?
        }
    };
    let every = g.every_minutes.unwrap_or(120).max(1);
    let prefix = g
        .summary_prefix
        .clone()
        .unwrap_or_else(|| "Generated event".to_owned());
    for i in 0..g.count {
        let s = start
            .checked_add(SignedDuration::from_mins(every * i as i64))
            .map_err(|e| bad(e.to_string()))?;
        let e = s
            .checked_add(SignedDuration::from_mins(60))
            .map_err(|e| bad(e.to_string()))?;
        let id = util::base32hex_id();
        let body = json!({
            "summary": format!("{prefix} {}", i + 1),
            "start": {"dateTime": s.to_string(), "timeZone": "UTC"},
            "end": {"dateTime": e.to_string(), "timeZone": "UTC"},
        });
        store_event(
            &mut inner,
            &state.base_url,
            ix,
            cal_ix,
            &id,
            object(body)?,
            None,
            true,
        )?;
    }
    Ok((StatusCode::CREATED, Json(json!({ "created": g.count }))))
}

pub(crate) async fn update_event(
    State(state): State<AppState>,
    Path((account, calendar, event)): Path<(String, String, String)>,
    Json(patch): Json<Value>,
) -> Result<Json<Value>> {
    let mut inner = state.lock();
    patch_event(
        &mut inner,
        &state.base_url,
        &account,
        &calendar,
        &event,
        patch,
    )
    .map(Json)
}

/// Merge-patches a stored event, or makes an exception of one occurrence.
pub(crate) fn patch_event(
    inner: &mut Inner,
    base_url: &str,
    account: &str,
    calendar: &str,
    event: &str,
    patch: Value,
) -> Result<Value> {
    let (ix, cal_ix) = calendar_ixs(inner, account, calendar)?;
    let patch = object(patch)?;
    let cal = &inner.accounts[ix].calendars[cal_ix];
    let current = match cal.events.get(event) {
        Some(ev) => ev.body.clone(),
        None => {
            let (master_id, _) = event.rsplit_once('_').ok_or_else(ApiError::not_found)?;
            let master = cal
                .events
                .get(master_id)
                .filter(|m| m.is_master())
                .ok_or_else(ApiError::not_found)?;
            let start =
                events::virtual_instance(&master.body, event).ok_or_else(ApiError::not_found)?;
            events::render_instance(&master.body, &start).ok_or_else(ApiError::not_found)?
        }
    };
    let mut merged = current.clone();
    for (k, v) in patch {
        merged.insert(k, v);
    }
    let stored = store_event(
        inner,
        base_url,
        ix,
        cal_ix,
        event,
        merged,
        Some(&current),
        true,
    )?;
    Ok(Value::Object(stored))
}

pub(crate) async fn delete_event(
    State(state): State<AppState>,
    Path((account, calendar, event)): Path<(String, String, String)>,
    Query(q): Query<EventQuery>,
) -> Result<StatusCode> {
    let mut inner = state.lock();
    delete_event_inner(
        &mut inner,
        &state.base_url,
        &account,
        &calendar,
        &event,
        q.purge,
    )?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) fn delete_event_inner(
    inner: &mut Inner,
    base_url: &str,
    account: &str,
    calendar: &str,
    event: &str,
    purge: bool,
) -> Result<()> {
    let (ix, cal_ix) = calendar_ixs(inner, account, calendar)?;
    if purge {
        let cal = &mut inner.accounts[ix].calendars[cal_ix];
        cal.events.remove(event).ok_or_else(ApiError::not_found)?;
        cal.events
            .retain(|_, e| e.recurring_event_id() != Some(event));
        return Ok(());
    }
    let cal = &inner.accounts[ix].calendars[cal_ix];
    match cal.events.get(event) {
        Some(ev) if ev.is_cancelled() => Err(ApiError::deleted()),
        Some(ev) => {
            let ev = ev.clone();
            writes::cancel_event(inner, base_url, ix, cal_ix, &ev)
        }
        None => {
            let (master_id, _) = event.rsplit_once('_').ok_or_else(ApiError::not_found)?;
            let master = cal
                .events
                .get(master_id)
                .filter(|m| m.is_master())
                .cloned()
                .ok_or_else(ApiError::not_found)?;
            let start =
                events::virtual_instance(&master.body, event).ok_or_else(ApiError::not_found)?;
            writes::cancel_instance(inner, base_url, ix, cal_ix, &master, &start)
        }
    }
}
