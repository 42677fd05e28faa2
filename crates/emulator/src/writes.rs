//! Single events (spec §2.5): get (with If-None-Match), insert (client ids,
//! 409 duplicate), update, patch, delete (410 when already deleted), If-Match
//! preconditions, and writes to one occurrence of a series (which create its
//! exception). `store_event` is the one place where events change, shared
//! with the control API: it takes a change number and wakes push channels.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{Map, Value};

use crate::calendar::{
    account_ix, authenticate, response_zone, role_rank, Params, EVENTS_READ, EVENTS_WRITE,
};
use crate::errors::ApiError;
use crate::events::{self, WriteCtx};
use crate::push::WatchTarget;
use crate::recur::Start;
use crate::state::{AppState, Inner, StoredEvent};
use crate::util;

// ---------------------------------------------------------------- single events

/// A stored event, or a virtual instance of a stored master (no exception yet).
enum Target {
    Stored(StoredEvent),
    Instance { master: StoredEvent, start: Start },
}

fn find_target(inner: &Inner, ix: usize, cal_ix: usize, event_id: &str) -> Option<Target> {
    let cal = &inner.accounts[ix].calendars[cal_ix];
    if let Some(ev) = cal.events.get(event_id) {
        return Some(Target::Stored(ev.clone()));
    }
    let (master_id, _) = event_id.rsplit_once('_')?;
    let master = cal
        .events
        .get(master_id)
        .filter(|m| m.is_master() && !m.is_cancelled())?;
    let start = events::virtual_instance(&master.body, event_id)?;
    Some(Target::Instance {
        master: master.clone(),
        start,
    })
}

fn check_if_match(headers: &HeaderMap, etag: &str) -> Result<(), ApiError> {
    if let Some(v) = headers
        .get(axum::http::header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        if v != "*" && v != etag {
            return Err(ApiError::condition_not_met());
        }
    }
    Ok(())
}

pub(crate) async fn events_get(
    State(state): State<AppState>,
    Path((calendar_id, event_id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::new(raw);
    let mut inner = state.lock();
    let sub = authenticate(&mut inner, &headers, EVENTS_READ)?;
    let ix = account_ix(&inner, &sub)?;
    let cal_ix = inner
        .calendar_ix(ix, &calendar_id)
        .ok_or_else(ApiError::not_found)?;
    let body = match find_target(&inner, ix, cal_ix, &event_id).ok_or_else(ApiError::not_found)? {
        Target::Stored(ev) => ev.body,
        Target::Instance { master, start } => {
            events::render_instance(&master.body, &start).ok_or_else(ApiError::not_found)?
        }
    };
    let etag = body.get("etag").and_then(Value::as_str).unwrap_or("");
    if let Some(v) = headers
        .get(axum::http::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        if v.trim() == etag {
            return Ok(StatusCode::NOT_MODIFIED.into_response());
        }
    }
    let cal_tz = inner.accounts[ix].calendars[cal_ix].time_zone.clone();
    Ok(Json(rendered(&inner, &params, &cal_tz, body)?).into_response())
}

/// An event as a response body, its `dateTime`s in the response zone.
fn rendered(
    inner: &Inner,
    params: &Params,
    calendar_tz: &str,
    body: Map<String, Value>,
) -> Result<Value, ApiError> {
    Ok(match response_zone(inner, params, calendar_tz)? {
        Some(tz) => events::in_zone(Value::Object(body), &tz),
        None => Value::Object(body),
    })
}

/// The response of a write: rendered like a read in the calendar's zone.
fn write_response(
    inner: &Inner,
    ix: usize,
    cal_ix: usize,
    body: Map<String, Value>,
) -> Result<Json<Value>, ApiError> {
    let cal_tz = inner.accounts[ix].calendars[cal_ix].time_zone.clone();
    rendered(inner, &Params::new(None), &cal_tz, body).map(Json)
}

fn parse_body(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::bad_request("parseError", "Parse Error")),
        Err(_) => Err(ApiError::bad_request("parseError", "Parse Error")),
    }
}

/// Resolves caller, calendar and write permission for a write.
fn writable(
    inner: &mut Inner,
    headers: &HeaderMap,
    calendar_id: &str,
) -> Result<(usize, usize), ApiError> {
    let sub = authenticate(inner, headers, EVENTS_WRITE)?;
    let ix = account_ix(inner, &sub)?;
    let cal_ix = inner
        .calendar_ix(ix, calendar_id)
        .ok_or_else(ApiError::not_found)?;
    if role_rank(&inner.accounts[ix].calendars[cal_ix].access_role) < role_rank("writer") {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "calendar",
            "requiredAccessLevel",
            "You need to have writer access to this calendar.",
        ));
    }
    Ok((ix, cal_ix))
}

/// Stores a normalised event body with a fresh change number. Shared with the control API.
#[allow(clippy::too_many_arguments)]
pub fn store_event(
    inner: &mut Inner,
    base_url: &str,
    ix: usize,
    cal_ix: usize,
    id: &str,
    body: Map<String, Value>,
    existing: Option<&Map<String, Value>>,
    trusted: bool,
) -> Result<Map<String, Value>, ApiError> {
    let seq = inner.next_seq();
    let now = inner.now();
    let account = &inner.accounts[ix];
    let cal = &account.calendars[cal_ix];
    let ctx = WriteCtx {
        base_url,
        calendar_id: &cal.id,
        calendar_name: &cal.summary,
        calendar_primary: cal.primary,
        account_email: &account.email,
        account_name: &account.name,
        now,
        seq,
    };
    let body = events::normalise(&ctx, id, body, existing, trusted)?;
    inner.accounts[ix].calendars[cal_ix].events.insert(
        id.to_owned(),
        StoredEvent {
            body: body.clone(),
            seq,
        },
    );
    let target = WatchTarget::Events(inner.accounts[ix].calendars[cal_ix].id.clone());
    let sub = inner.accounts[ix].sub.clone();
    inner.notify(&sub, &target);
    Ok(body)
}

/// Marks an event cancelled (and a master's exceptions with it). Shared with the control API.
pub fn cancel_event(
    inner: &mut Inner,
    base_url: &str,
    ix: usize,
    cal_ix: usize,
    target: &StoredEvent,
) -> Result<(), ApiError> {
    let id = target
        .body
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let mut body = target.body.clone();
    body.insert("status".into(), "cancelled".into());
    store_event(
        inner,
        base_url,
        ix,
        cal_ix,
        &id,
        body,
        Some(&target.body),
        true,
    )?;
    if target.is_master() {
        let exceptions: Vec<StoredEvent> = inner.accounts[ix].calendars[cal_ix]
            .events
            .values()
            .filter(|e| e.recurring_event_id() == Some(id.as_str()) && !e.is_cancelled())
            .cloned()
            .collect();
        for ex in exceptions {
            let ex_id = ex
                .body
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let mut b = ex.body.clone();
            b.insert("status".into(), "cancelled".into());
            store_event(inner, base_url, ix, cal_ix, &ex_id, b, Some(&ex.body), true)?;
        }
    }
    Ok(())
}

/// Creates a cancelled exception for a virtual instance. Shared with the control API.
pub fn cancel_instance(
    inner: &mut Inner,
    base_url: &str,
    ix: usize,
    cal_ix: usize,
    master: &StoredEvent,
    start: &Start,
) -> Result<(), ApiError> {
    let mut body = events::render_instance(&master.body, start).ok_or_else(ApiError::not_found)?;
    let id = body
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    body.insert("status".into(), "cancelled".into());
    store_event(inner, base_url, ix, cal_ix, &id, body, None, true).map(|_| ())
}

pub(crate) async fn events_insert(
    State(state): State<AppState>,
    Path(calendar_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let input = parse_body(&body)?;
    let mut inner = state.lock();
    let (ix, cal_ix) = writable(&mut inner, &headers, &calendar_id)?;
    let id = match input.get("id").and_then(Value::as_str) {
        Some(id) => {
            if !util::is_valid_event_id(id) {
                return Err(ApiError::bad_request(
                    "invalid",
                    "Invalid resource id value.",
                ));
            }
            id.to_owned()
        }
        None => util::base32hex_id(),
    };
    if inner.accounts[ix].calendars[cal_ix]
        .events
        .contains_key(&id)
    {
        return Err(ApiError::duplicate());
    }
    let stored = store_event(
        &mut inner,
        &state.base_url,
        ix,
        cal_ix,
        &id,
        input,
        None,
        false,
    )?;
    write_response(&inner, ix, cal_ix, stored)
}

pub(crate) async fn events_update(
    State(state): State<AppState>,
    Path((calendar_id, event_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    write_existing(&state, &calendar_id, &event_id, &headers, &body, false)
}

pub(crate) async fn events_patch(
    State(state): State<AppState>,
    Path((calendar_id, event_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    write_existing(&state, &calendar_id, &event_id, &headers, &body, true)
}

fn write_existing(
    state: &AppState,
    calendar_id: &str,
    event_id: &str,
    headers: &HeaderMap,
    raw: &[u8],
    merge: bool,
) -> Result<Json<Value>, ApiError> {
    let input = parse_body(raw)?;
    let mut inner = state.lock();
    let (ix, cal_ix) = writable(&mut inner, headers, calendar_id)?;
    let current = match find_target(&inner, ix, cal_ix, event_id).ok_or_else(ApiError::not_found)? {
        Target::Stored(ev) => ev.body,
        // Writing one occurrence creates its exception.
        Target::Instance { master, start } => {
            events::render_instance(&master.body, &start).ok_or_else(ApiError::not_found)?
        }
    };
    check_if_match(
        headers,
        current.get("etag").and_then(Value::as_str).unwrap_or(""),
    )?;
    let next = if merge {
        let mut merged = current.clone();
        for (k, v) in input {
            merged.insert(k, v);
        }
        merged
    } else {
        // Full replacement (events.update): what the body leaves out is gone,
        // recurrence included; identity fields are kept by `normalise`.
        input
    };
    let stored = store_event(
        &mut inner,
        &state.base_url,
        ix,
        cal_ix,
        event_id,
        next,
        Some(&current),
        false,
    )?;
    write_response(&inner, ix, cal_ix, stored)
}

pub(crate) async fn events_delete(
    State(state): State<AppState>,
    Path((calendar_id, event_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let mut inner = state.lock();
    let (ix, cal_ix) = writable(&mut inner, &headers, &calendar_id)?;
    match find_target(&inner, ix, cal_ix, &event_id).ok_or_else(ApiError::not_found)? {
        Target::Stored(ev) => {
            if ev.is_cancelled() {
                return Err(ApiError::deleted());
            }
            check_if_match(&headers, ev.etag())?;
            cancel_event(&mut inner, &state.base_url, ix, cal_ix, &ev)?;
        }
        Target::Instance { master, start } => {
            check_if_match(&headers, master.etag())?;
            cancel_instance(&mut inner, &state.base_url, ix, cal_ix, &master, &start)?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}
