//! Graph event writes (spec A5): `POST /me/events` and
//! `/me/calendars/{id}/events` (201, `transactionId` makes a retried POST
//! return the first event), `PATCH /me/events/{id}` (200, new changeKey; an
//! occurrence id makes an exception) and `DELETE /me/events/{id}` (204; an
//! occurrence id cancels that occurrence). Writes need `Calendars.ReadWrite`
//! (403 `ErrorAccessDenied`) and an editable calendar; `If-Match` with a
//! stale `@odata.etag` answers 412 `ErrorIrresolvableConflict`.
//!
//! They go through the control API's write functions, so delta rounds see
//! them exactly like changes made "in Outlook".

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::control;
use super::errors::GraphError;
use super::events;
use super::graph::{self, caller, object, GraphResult, Need};
use crate::state::{AppState, Inner};

fn writer(inner: &Inner, headers: &HeaderMap) -> GraphResult<usize> {
    let ix = caller(inner, headers, Need::Calendars)?;
    let can_write = graph_token_scopes(inner, headers)
        .is_some_and(|s| s.iter().any(|x| x == "Calendars.ReadWrite"));
    if !can_write {
        return Err(GraphError::access_denied());
    }
    Ok(ix)
}

fn graph_token_scopes<'a>(inner: &'a Inner, headers: &HeaderMap) -> Option<&'a Vec<String>> {
    let t = crate::calendar::bearer(headers)?;
    inner.ms.access_tokens.get(t).map(|a| &a.scopes)
}

/// The calendar holding an event id (stored, or an occurrence of a stored master).
fn calendar_of(inner: &Inner, ix: usize, id: &str) -> GraphResult<usize> {
    let master = events::parse_occurrence_id(id).map(|(m, _)| m);
    inner.ms.accounts[ix]
        .calendars
        .iter()
        .position(|c| {
            c.events.contains_key(id) || master.as_ref().is_some_and(|m| c.events.contains_key(m))
        })
        .ok_or_else(GraphError::item_not_found)
}

fn check_if_match(
    inner: &Inner,
    ix: usize,
    c: usize,
    id: &str,
    headers: &HeaderMap,
) -> GraphResult<()> {
    let Some(want) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let cal = &inner.ms.accounts[ix].calendars[c];
    let key = cal
        .events
        .get(id)
        .or_else(|| events::parse_occurrence_id(id).and_then(|(m, _)| cal.events.get(&m)))
        .map(|e| format!("W/\"{}\"", e.change_key));
    if want != "*" && key.as_deref() != Some(want) {
        return Err(GraphError::new(
            StatusCode::PRECONDITION_FAILED,
            "ErrorIrresolvableConflict",
            "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.",
        ));
    }
    Ok(())
}

fn editable(inner: &Inner, ix: usize, c: usize) -> GraphResult<()> {
    if inner.ms.accounts[ix].calendars[c].can_edit {
        Ok(())
    } else {
        Err(GraphError::access_denied())
    }
}

pub(crate) async fn create_default(
    state: State<AppState>,
    headers: HeaderMap,
    body: Json<Value>,
) -> GraphResult<Response> {
    create(state, None, headers, body)
}

pub(crate) async fn create_named(
    state: State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Json<Value>,
) -> GraphResult<Response> {
    create(state, Some(id), headers, body)
}

fn create(
    State(state): State<AppState>,
    cal: Option<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> GraphResult<Response> {
    let mut body = object(body)?;
    for k in ["id", "seriesMasterId", "originalStart", "type", "changeKey"] {
        body.remove(k);
    }
    let mut inner = state.lock();
    let ix = writer(&inner, &headers)?;
    let c = graph::calendar_ix(&inner.ms, ix, cal.as_deref())?;
    editable(&inner, ix, c)?;
    let transaction = body
        .get("transactionId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let account = &inner.ms.accounts[ix];
    if let Some(t) = &transaction {
        if let Some(ev) = account.calendars[c]
            .events
            .values()
            .find(|e| e.transaction_id.as_deref() == Some(t))
        {
            let v = events::render_stored(ev, account, &state.base_url);
            return Ok(graph::with_headers(
                (StatusCode::CREATED, Json(v)).into_response(),
                None,
            ));
        }
    }
    let (account_id, calendar_id) = (account.id.clone(), account.calendars[c].id.clone());
    let mut v = control::insert_event(
        &mut inner,
        &state.base_url,
        &account_id,
        &calendar_id,
        Value::Object(body),
    )?;
    if let (Some(t), Some(id)) = (transaction, v["id"].as_str()) {
        if let Some(ev) = inner.ms.accounts[ix].calendars[c].events.get_mut(id) {
            ev.transaction_id = Some(t.clone());
        }
        v["transactionId"] = Value::String(t);
    }
    Ok(graph::with_headers(
        (StatusCode::CREATED, Json(v)).into_response(),
        None,
    ))
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(patch): Json<Value>,
) -> GraphResult<Response> {
    let mut inner = state.lock();
    let ix = writer(&inner, &headers)?;
    let c = calendar_of(&inner, ix, &id)?;
    editable(&inner, ix, c)?;
    check_if_match(&inner, ix, c, &id, &headers)?;
    let account_id = inner.ms.accounts[ix].id.clone();
    let calendar_id = inner.ms.accounts[ix].calendars[c].id.clone();
    let v = control::patch_event(
        &mut inner,
        &state.base_url,
        &account_id,
        &calendar_id,
        &id,
        patch,
    )?;
    Ok(graph::with_headers(Json(v).into_response(), None))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> GraphResult<StatusCode> {
    let mut inner = state.lock();
    let ix = writer(&inner, &headers)?;
    let c = calendar_of(&inner, ix, &id)?;
    editable(&inner, ix, c)?;
    check_if_match(&inner, ix, c, &id, &headers)?;
    let account_id = inner.ms.accounts[ix].id.clone();
    let calendar_id = inner.ms.accounts[ix].calendars[c].id.clone();
    control::delete_event(&mut inner, &account_id, &calendar_id, &id)?;
    Ok(StatusCode::NO_CONTENT)
}
