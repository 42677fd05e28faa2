//! The control API under `/_emulator/` (JSON in and out): what a test or the
//! demo uses to change the provider's world "from the other side": accounts,
//! calendars and events; sync-token invalidation; token expiry and
//! revocation; faults; the fake clock; settings; the request log; reset.
//!
//! Event writes go through the same normalisation and change counter as the
//! Calendar API (so incremental sync sees them exactly like user edits), but
//! the control API may set fields a client may not (organizer, iCalUID,
//! series identity) and needs no token. It must never be reachable through
//! the `/calendar/v3` routes and is never logged or faulted.
//!
//! `{account}` is an email (or `sub`); `{calendar}` a calendar id (URL-encoded,
//! `primary` works). Errors use Google's envelope.
//!
//! | method, path | body → answer |
//! |---|---|
//! | GET `/_emulator/health` | → `{"ok": true}` |
//! | POST `/_emulator/reset` | back to the start configuration → 204 |
//! | GET, PUT `/_emulator/settings` | partial [`Settings`] JSON, e.g. `{"uneven_pages": false, "auto_approve": true, "latency_ms": [100, 300]}` → settings |
//! | GET, POST `/_emulator/clients` | `{client_id, client_secret, redirect_uris[]}` → 201 |
//! | GET, POST `/_emulator/accounts` | `{email, name?}` → 201 `{sub, email, name, calendars[]}` |
//! | POST `/_emulator/accounts/{account}/calendars` | `{id?, summary, timeZone?, colorId?, backgroundColor?, foregroundColor?, accessRole?, hidden?, selected?, summaryOverride?, description?, location?}` → 201 list entry |
//! | PATCH, DELETE `/_emulator/accounts/{account}/calendars/{calendar}` | same fields → entry / 204 (a tombstone for calendar-list sync) |
//! | POST `/_emulator/accounts/{account}/invalidate-calendar-list-tokens` | → 204 |
//! | POST `/_emulator/accounts/{account}/calendars/{calendar}/invalidate-sync-tokens` | next use of any events sync token → 410 fullSyncRequired; 204 |
//! | GET, POST `/_emulator/accounts/{account}/calendars/{calendar}/events` | list stored (incl. cancelled) / insert Calendar-API event JSON (`id` optional; `recurringEventId` + `originalStartTime` = exception, `"status": "cancelled"` = cancelled instance; `?raw=true` stores verbatim) → 201 event |
//! | POST `.../events/generate` | `{count, start?, every_minutes?, summary_prefix?}` → 201 `{created}` |
//! | GET, PATCH, DELETE `.../events/{event}` | merge patch (an instance id makes an exception) / cancel (`?purge=true`: vanish without tombstone) → 204 |
//! | POST `/_emulator/tokens/expire-access` | `{account?}` → `{expired}`; those tokens then get 401 |
//! | POST `/_emulator/tokens/expire-refresh` | `{account?, client_id?}` → `{expired}`; refresh then gets invalid_grant |
//! | POST `/_emulator/tokens/revoke` | `{account?, client_id?}` → `{revoked_grants}` (refresh + access tokens) |
//! | GET `/_emulator/clock`, POST `/_emulator/clock/advance` | `{seconds}` → `{now, offset_seconds}` |
//! | GET, POST, DELETE `/_emulator/faults` | [`Fault`]: `{path_prefix, method?, count, status?, reason?, retry_after?, delay_ms?, drop_connection?}` → 201 with `id` |
//! | GET, DELETE `/_emulator/requests` | `?path_prefix=&since=` → `[{seq, time, method, path, query, status, account?, fault?}]` |
//! | GET, DELETE `/_emulator/notifications` | push deliveries `[{channel_id, resource_id, state, message_number, address, status?, error?}]` |

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::calendar;
use crate::errors::ApiError;
use crate::push::WatchTarget;
use crate::state::{etag_for, AppState, Calendar, Fault, Inner, Settings, SyncToken};
use crate::{control_events, util, OAuthClient};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/_emulator/health",
            get(|| async { Json(json!({"ok": true})) }),
        )
        .route("/_emulator/reset", post(reset))
        .route("/_emulator/settings", get(get_settings).put(put_settings))
        .route("/_emulator/clients", get(list_clients).post(add_client))
        .route("/_emulator/accounts", get(list_accounts).post(add_account))
        .route(
            "/_emulator/accounts/{account}/calendars",
            post(add_calendar),
        )
        .route(
            "/_emulator/accounts/{account}/calendars/{calendar}",
            patch(update_calendar).delete(delete_calendar),
        )
        .route(
            "/_emulator/accounts/{account}/invalidate-calendar-list-tokens",
            post(invalidate_list_tokens),
        )
        .route(
            "/_emulator/accounts/{account}/calendars/{calendar}/invalidate-sync-tokens",
            post(invalidate_tokens),
        )
        .route(
            "/_emulator/accounts/{account}/calendars/{calendar}/events",
            get(control_events::list_events).post(control_events::add_event),
        )
        .route(
            "/_emulator/accounts/{account}/calendars/{calendar}/events/generate",
            post(control_events::generate_events),
        )
        .route(
            "/_emulator/accounts/{account}/calendars/{calendar}/events/{event}",
            get(control_events::get_event)
                .patch(control_events::update_event)
                .delete(control_events::delete_event),
        )
        .route("/_emulator/tokens/expire-access", post(expire_access))
        .route("/_emulator/tokens/expire-refresh", post(expire_refresh))
        .route("/_emulator/tokens/revoke", post(revoke_tokens))
        .route("/_emulator/clock", get(get_clock))
        .route("/_emulator/clock/advance", post(advance_clock))
        .route(
            "/_emulator/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route(
            "/_emulator/requests",
            get(list_requests).delete(clear_requests),
        )
        .route(
            "/_emulator/notifications",
            get(list_notifications).delete(clear_notifications),
        )
}

pub(crate) type Result<T> = std::result::Result<T, ApiError>;

pub(crate) fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid", message)
}

pub(crate) fn account_ix(inner: &Inner, account: &str) -> Result<usize> {
    inner.account_ix(account).ok_or_else(ApiError::not_found)
}

pub(crate) fn calendar_ixs(inner: &Inner, account: &str, calendar: &str) -> Result<(usize, usize)> {
    let ix = account_ix(inner, account)?;
    let cal = inner
        .calendar_ix(ix, calendar)
        .ok_or_else(ApiError::not_found)?;
    Ok((ix, cal))
}

pub(crate) fn object(body: Value) -> Result<Map<String, Value>> {
    match body {
        Value::Object(m) => Ok(m),
        _ => Err(bad("expected a JSON object")),
    }
}

async fn reset(State(state): State<AppState>) -> StatusCode {
    state.reset();
    StatusCode::NO_CONTENT
}

async fn get_settings(State(state): State<AppState>) -> Json<Settings> {
    Json(state.lock().settings.clone())
}

/// Partial update: only the fields present change.
async fn put_settings(
    State(state): State<AppState>,
    Json(patch): Json<Value>,
) -> Result<Json<Settings>> {
    let mut inner = state.lock();
    let mut current = serde_json::to_value(&inner.settings).map_err(|e| bad(e.to_string()))?;
    let patch = object(patch)?;
    if let Some(obj) = current.as_object_mut() {
        for (k, v) in patch {
            if !obj.contains_key(&k) {
                return Err(bad(format!("unknown setting: {k}")));
            }
            obj.insert(k, v);
        }
    }
    let settings: Settings = serde_json::from_value(current).map_err(|e| bad(e.to_string()))?;
    settings.validate().map_err(bad)?;
    inner.settings = settings;
    Ok(Json(inner.settings.clone()))
}

async fn list_clients(State(state): State<AppState>) -> Json<Value> {
    let inner = state.lock();
    let clients: Vec<Value> = inner
        .clients
        .values()
        .map(|c| json!({"client_id": c.client_id, "redirect_uris": c.redirect_uris}))
        .collect();
    Json(Value::Array(clients))
}

async fn add_client(
    State(state): State<AppState>,
    Json(client): Json<OAuthClient>,
) -> (StatusCode, Json<Value>) {
    let mut inner = state.lock();
    let out = json!({"client_id": client.client_id, "redirect_uris": client.redirect_uris});
    inner.clients.insert(client.client_id.clone(), client);
    (StatusCode::CREATED, Json(out))
}

fn account_json(inner: &Inner, ix: usize) -> Value {
    let a = &inner.accounts[ix];
    json!({
        "sub": a.sub,
        "email": a.email,
        "name": a.name,
        "calendars": a.calendars.iter().filter(|c| !c.deleted).map(|c| c.id.clone()).collect::<Vec<_>>(),
    })
}

async fn list_accounts(State(state): State<AppState>) -> Json<Value> {
    let inner = state.lock();
    Json(Value::Array(
        (0..inner.accounts.len())
            .map(|ix| account_json(&inner, ix))
            .collect(),
    ))
}

#[derive(Deserialize)]
struct NewAccount {
    email: String,
    name: Option<String>,
}

async fn add_account(
    State(state): State<AppState>,
    Json(body): Json<NewAccount>,
) -> Result<(StatusCode, Json<Value>)> {
    if !body.email.contains('@') {
        return Err(bad("email must be an email address"));
    }
    let mut inner = state.lock();
    let ix = inner.ensure_account(&body.email, body.name.as_deref());
    Ok((StatusCode::CREATED, Json(account_json(&inner, ix))))
}

/// Calendar fields a test may set. Changes to `summary`, `description`,
/// `location` and `timeZone` are owner-side ("read-only") properties that
/// Google does not report through calendar-list sync (spec §2.1 gotcha); the
/// rest are list-entry properties and are reported.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CalendarFields {
    id: Option<String>,
    summary: Option<String>,
    summary_override: Option<String>,
    description: Option<String>,
    location: Option<String>,
    time_zone: Option<String>,
    color_id: Option<String>,
    background_color: Option<String>,
    foreground_color: Option<String>,
    access_role: Option<String>,
    hidden: Option<bool>,
    selected: Option<bool>,
}

fn apply_calendar_fields(cal: &mut Calendar, f: CalendarFields) -> Result<bool> {
    if let Some(tz) = &f.time_zone {
        jiff::tz::TimeZone::get(tz).map_err(|_| bad(format!("unknown time zone: {tz}")))?;
    }
    if let Some(role) = &f.access_role {
        if ![
            "freeBusyReader",
            "reader",
            "writer",
            "owner",
            "writerWithoutPrivateAccess",
        ]
        .contains(&role.as_str())
        {
            return Err(bad(format!("unknown access role: {role}")));
        }
    }
    let mut list_change = false;
    if let Some(v) = f.summary {
        cal.summary = v;
    }
    if let Some(v) = f.description {
        cal.description = Some(v);
    }
    if let Some(v) = f.location {
        cal.location = Some(v);
    }
    if let Some(v) = f.time_zone {
        cal.time_zone = v;
    }
    if let Some(v) = f.summary_override {
        cal.summary_override = Some(v);
        list_change = true;
    }
    if let Some(v) = f.color_id {
        if let Some(c) = calendar::colors_json()["calendar"].get(&v) {
            cal.background_color = c["background"].as_str().unwrap_or("#9fe1e7").to_owned();
        }
        cal.color_id = v;
        list_change = true;
    }
    if let Some(v) = f.background_color {
        cal.background_color = v;
        list_change = true;
    }
    if let Some(v) = f.foreground_color {
        cal.foreground_color = v;
        list_change = true;
    }
    if let Some(v) = f.access_role {
        cal.access_role = v;
        list_change = true;
    }
    if let Some(v) = f.hidden {
        cal.hidden = v;
        list_change = true;
    }
    if let Some(v) = f.selected {
        cal.selected = v;
        list_change = true;
    }
    Ok(list_change)
}

async fn add_calendar(
    State(state): State<AppState>,
    Path(account): Path<String>,
    Json(fields): Json<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    let entry = add_calendar_inner(&mut state.lock(), &account, fields)?;
    Ok((StatusCode::CREATED, Json(entry)))
}

/// Adds a secondary calendar; `fields` as in the route table. Returns its list entry.
pub(crate) fn add_calendar_inner(inner: &mut Inner, account: &str, fields: Value) -> Result<Value> {
    let fields: CalendarFields = serde_json::from_value(fields).map_err(|e| bad(e.to_string()))?;
    let ix = account_ix(inner, account)?;
    let id = fields
        .id
        .clone()
        .unwrap_or_else(|| format!("{}@group.calendar.google.com", util::base32hex_id()));
    if inner.accounts[ix]
        .calendars
        .iter()
        .any(|c| c.id == id && !c.deleted)
    {
        return Err(ApiError::duplicate());
    }
    inner.accounts[ix].calendars.retain(|c| c.id != id);
    let seq = inner.next_seq();
    let summary = fields
        .summary
        .clone()
        .unwrap_or_else(|| "New calendar".to_owned());
    let tz = fields.time_zone.clone().unwrap_or_else(|| "UTC".to_owned());
    let mut cal = Calendar::new(&id, &summary, &tz, seq, false);
    apply_calendar_fields(&mut cal, fields)?;
    let entry = cal.list_entry();
    inner.accounts[ix].calendars.push(cal);
    let sub = inner.accounts[ix].sub.clone();
    inner.notify(&sub, &WatchTarget::CalendarList);
    Ok(entry)
}

async fn update_calendar(
    State(state): State<AppState>,
    Path((account, calendar)): Path<(String, String)>,
    Json(fields): Json<CalendarFields>,
) -> Result<Json<Value>> {
    let mut inner = state.lock();
    let (ix, cal_ix) = calendar_ixs(&inner, &account, &calendar)?;
    let seq = inner.next_seq();
    let cal = &mut inner.accounts[ix].calendars[cal_ix];
    let list_change = apply_calendar_fields(cal, fields)?;
    if list_change {
        cal.list_seq = seq;
        cal.etag = etag_for(seq);
    }
    let entry = cal.list_entry();
    if list_change {
        let sub = inner.accounts[ix].sub.clone();
        inner.notify(&sub, &WatchTarget::CalendarList);
    }
    Ok(Json(entry))
}

async fn delete_calendar(
    State(state): State<AppState>,
    Path((account, calendar)): Path<(String, String)>,
) -> Result<StatusCode> {
    let mut inner = state.lock();
    let (ix, cal_ix) = calendar_ixs(&inner, &account, &calendar)?;
    let seq = inner.next_seq();
    let cal = &mut inner.accounts[ix].calendars[cal_ix];
    cal.deleted = true;
    cal.list_seq = seq;
    cal.etag = etag_for(seq);
    cal.events.clear();
    cal.epoch += 1;
    let target = WatchTarget::Events(cal.id.clone());
    let sub = inner.accounts[ix].sub.clone();
    inner.notify_gone(&sub, &target);
    inner.notify(&sub, &WatchTarget::CalendarList);
    Ok(StatusCode::NO_CONTENT)
}

/// Every events sync token of the calendar becomes invalid: next use → 410.
pub(crate) fn invalidate_sync_tokens(
    inner: &mut Inner,
    account: &str,
    calendar: &str,
) -> Result<()> {
    let (ix, cal_ix) = calendar_ixs(inner, account, calendar)?;
    let cal = &mut inner.accounts[ix].calendars[cal_ix];
    cal.epoch += 1;
    let (sub, id) = (
        inner.accounts[ix].sub.clone(),
        inner.accounts[ix].calendars[cal_ix].id.clone(),
    );
    inner
        .sync_tokens
        .retain(|_, t| !matches!(t, SyncToken::Events { sub: s, calendar_id: c, .. } if *s == sub && *c == id));
    Ok(())
}

async fn invalidate_tokens(
    State(state): State<AppState>,
    Path((account, calendar)): Path<(String, String)>,
) -> Result<StatusCode> {
    invalidate_sync_tokens(&mut state.lock(), &account, &calendar)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn invalidate_list_tokens(
    State(state): State<AppState>,
    Path(account): Path<String>,
) -> Result<StatusCode> {
    let mut inner = state.lock();
    let ix = account_ix(&inner, &account)?;
    inner.accounts[ix].list_epoch += 1;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
struct TokenTarget {
    /// Email or sub; all accounts when absent.
    account: Option<String>,
    client_id: Option<String>,
}

fn target_sub(inner: &Inner, t: &TokenTarget) -> Result<Option<String>> {
    match &t.account {
        Some(a) => Ok(Some(inner.accounts[account_ix(inner, a)?].sub.clone())),
        None => Ok(None),
    }
}

fn matches(sub: &Option<String>, client: &Option<String>, t_sub: &str, t_client: &str) -> bool {
    sub.as_deref().is_none_or(|s| s == t_sub) && client.as_deref().is_none_or(|c| c == t_client)
}

/// Access tokens expire now (next Calendar call → 401).
pub(crate) fn expire_access_tokens(inner: &mut Inner, account: Option<&str>) -> Result<usize> {
    let t = TokenTarget {
        account: account.map(str::to_owned),
        client_id: None,
    };
    let sub = target_sub(inner, &t)?;
    let past = inner
        .now()
        .checked_sub(SignedDuration::from_secs(1))
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let mut n = 0;
    for tok in inner
        .access_tokens
        .values_mut()
        .filter(|tok| matches(&sub, &None, &tok.sub, &tok.client_id))
    {
        tok.expires_at = past;
        n += 1;
    }
    Ok(n)
}

async fn expire_access(
    State(state): State<AppState>,
    body: Option<Json<TokenTarget>>,
) -> Result<Json<Value>> {
    let t = body.map(|Json(t)| t).unwrap_or_default();
    let n = expire_access_tokens(&mut state.lock(), t.account.as_deref())?;
    Ok(Json(json!({ "expired": n })))
}

async fn expire_refresh(
    State(state): State<AppState>,
    body: Option<Json<TokenTarget>>,
) -> Result<Json<Value>> {
    let t = body.map(|Json(t)| t).unwrap_or_default();
    let n = expire_refresh_tokens(
        &mut state.lock(),
        t.account.as_deref(),
        t.client_id.as_deref(),
    )?;
    Ok(Json(json!({ "expired": n })))
}

/// Refresh tokens expire now (refresh → invalid_grant); returns how many.
pub(crate) fn expire_refresh_tokens(
    inner: &mut Inner,
    account: Option<&str>,
    client_id: Option<&str>,
) -> Result<usize> {
    let t = TokenTarget {
        account: account.map(str::to_owned),
        client_id: client_id.map(str::to_owned),
    };
    let sub = target_sub(inner, &t)?;
    let past = inner
        .now()
        .checked_sub(SignedDuration::from_secs(1))
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let mut n = 0;
    for tok in inner
        .refresh_tokens
        .values_mut()
        .filter(|tok| matches(&sub, &t.client_id, &tok.sub, &tok.client_id))
    {
        tok.expires_at = Some(past);
        n += 1;
    }
    Ok(n)
}

/// Revokes grants (refresh + access tokens), as if the user removed the app.
pub(crate) fn revoke_grants(
    inner: &mut Inner,
    account: Option<&str>,
    client_id: Option<&str>,
) -> Result<usize> {
    let t = TokenTarget {
        account: account.map(str::to_owned),
        client_id: client_id.map(str::to_owned),
    };
    let sub = target_sub(inner, &t)?;
    let mut keys: Vec<(String, String)> = inner
        .refresh_tokens
        .values()
        .map(|r| (r.sub.clone(), r.client_id.clone()))
        .chain(
            inner
                .access_tokens
                .values()
                .map(|a| (a.sub.clone(), a.client_id.clone())),
        )
        .chain(inner.grants.keys().cloned())
        .filter(|(s, c)| matches(&sub, &t.client_id, s, c))
        .collect();
    keys.sort();
    keys.dedup();
    for (s, c) in &keys {
        inner.revoke_grant(s, c);
    }
    Ok(keys.len())
}

async fn revoke_tokens(
    State(state): State<AppState>,
    body: Option<Json<TokenTarget>>,
) -> Result<Json<Value>> {
    let t = body.map(|Json(t)| t).unwrap_or_default();
    let n = revoke_grants(
        &mut state.lock(),
        t.account.as_deref(),
        t.client_id.as_deref(),
    )?;
    Ok(Json(json!({ "revoked_grants": n })))
}

async fn get_clock(State(state): State<AppState>) -> Json<Value> {
    let inner = state.lock();
    Json(
        json!({ "now": util::rfc3339_millis(inner.now()), "offset_seconds": inner.clock_offset.as_secs() }),
    )
}

#[derive(Deserialize)]
struct Advance {
    seconds: i64,
}

async fn advance_clock(
    State(state): State<AppState>,
    Json(a): Json<Advance>,
) -> Result<Json<Value>> {
    let mut inner = state.lock();
    advance_clock_inner(&mut inner, a.seconds)?;
    Ok(Json(
        json!({ "now": util::rfc3339_millis(inner.now()), "offset_seconds": inner.clock_offset.as_secs() }),
    ))
}

/// Moves the emulator's clock (token expiry, updatedMin, channel expiry).
pub(crate) fn advance_clock_inner(inner: &mut Inner, seconds: i64) -> Result<()> {
    inner.clock_offset = inner
        .clock_offset
        .checked_add(SignedDuration::from_secs(seconds))
        .ok_or_else(|| bad("clock offset overflow"))?;
    Ok(())
}

async fn list_faults(State(state): State<AppState>) -> Json<Vec<Fault>> {
    Json(state.lock().faults.clone())
}

pub(crate) fn add_fault_inner(inner: &mut Inner, mut fault: Fault) -> Result<Fault> {
    if let Some(s) = fault.status {
        if !(100..=599).contains(&s) {
            return Err(bad("status must be an HTTP status code"));
        }
    }
    if fault.status.is_none() && fault.delay_ms.is_none() && !fault.drop_connection {
        return Err(bad("a fault needs a status, a delay_ms or drop_connection"));
    }
    fault.id = inner.next_fault_id;
    inner.next_fault_id += 1;
    inner.faults.push(fault.clone());
    Ok(fault)
}

async fn add_fault(
    State(state): State<AppState>,
    Json(fault): Json<Fault>,
) -> Result<(StatusCode, Json<Fault>)> {
    let f = add_fault_inner(&mut state.lock(), fault)?;
    Ok((StatusCode::CREATED, Json(f)))
}

async fn clear_faults(State(state): State<AppState>) -> StatusCode {
    state.lock().faults.clear();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize, Default)]
struct LogQuery {
    path_prefix: Option<String>,
    /// Only entries with `seq` greater than this.
    since: Option<u64>,
}

async fn list_requests(State(state): State<AppState>, Query(q): Query<LogQuery>) -> Response {
    let inner = state.lock();
    let entries: Vec<_> = inner
        .log
        .iter()
        .filter(|e| q.since.is_none_or(|s| e.seq > s))
        .filter(|e| {
            q.path_prefix
                .as_deref()
                .is_none_or(|p| e.path.starts_with(p))
        })
        .cloned()
        .collect();
    Json(entries).into_response()
}

async fn clear_requests(State(state): State<AppState>) -> StatusCode {
    state.lock().log.clear();
    StatusCode::NO_CONTENT
}

async fn list_notifications(State(state): State<AppState>) -> Json<Value> {
    let inner = state.lock();
    Json(serde_json::to_value(&inner.deliveries).unwrap_or(Value::Null))
}

async fn clear_notifications(State(state): State<AppState>) -> StatusCode {
    state.lock().deliveries.clear();
    StatusCode::NO_CONTENT
}
