//! Control API for the Microsoft side, under `/_emulator/microsoft/` (JSON
//! in and out, Graph's error envelope). Faults, the clock, the request log and
//! reset are shared with Google (`/_emulator/faults`, `/_emulator/clock/advance`,
//! `/_emulator/requests`, `/_emulator/reset`); OAuth clients too
//! (`/_emulator/clients`: one registry, the redirect URI tells them apart).
//!
//! Event writes stamp a change number from the shared counter, a new
//! changeKey and lastModifiedDateTime, exactly as a user's edit in Outlook
//! would, so delta rounds pick them up. Never logged, never faulted.
//!
//! `{account}` = email, UPN or object id; `{calendar}` = id or `default`;
//! `{event}` = a stored id or an occurrence id (from calendarView/delta).
//!
//! | method, path | body → answer |
//! |---|---|
//! | GET, PUT `/_emulator/microsoft/settings` | partial `MsSettings` → settings |
//! | GET, POST `/_emulator/microsoft/accounts` | `{email, name?, mail?}` (`"mail": null` = no mailbox address) → 201 `{id, userPrincipalName, mail, displayName, calendars[]}` |
//! | POST `.../accounts/{account}/calendars` | `{id?, name, color?, hexColor?, canEdit?, owner?: {name, address}}` → 201 calendar |
//! | PATCH, DELETE `.../accounts/{account}/calendars/{calendar}` | same fields → calendar / 204 |
//! | POST `.../calendars/{calendar}/expire-delta-tokens` | `{mode?: "sync_state_not_found" \| "resync_required" \| "sync_state_invalid"}` → 204; every token of the calendar then fails so |
//! | GET, POST `.../calendars/{calendar}/events` | stored events (masters included) / Graph event JSON (`subject, body.content, location.displayName, start, end {dateTime, timeZone}, isAllDay, isCancelled, showAs, categories, recurrence {pattern, range}, id?`; `seriesMasterId` + `originalStart` make an exception) → 201 event |
//! | POST `.../events/generate` | `{count, start?, every_minutes?, duration_minutes?, subject_prefix?, time_zone?}` → 201 `{created}` |
//! | GET `.../calendars/{calendar}/view?startDateTime=&endDateTime=` | instances as calendarView shows them (no paging) |
//! | GET, PATCH, DELETE `.../events/{event}` | merge patch (an occurrence id makes an exception) / delete (an occurrence id cancels that occurrence; a master takes its exceptions along) → 204 |
//! | POST `/_emulator/microsoft/tokens/expire-access` | `{account?}` → `{expired}` (then 401) |
//! | POST `/_emulator/microsoft/tokens/expire-refresh` | `{account?, client_id?, reason?: expired\|inactive\|revoked\|consent_required\|interaction_required}` → `{expired}` |
//! | POST `/_emulator/microsoft/tokens/revoke` | `{account?, client_id?}` → `{revoked_grants}` (refresh → AADSTS50173, access tokens gone) |

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::Digest as _;

use super::errors::GraphError;
use super::events::{self, new_event, OutZone};
use super::graph::{self, calendar_json, object, GraphResult};
use super::state::{
    new_change_key, new_item_id, object_id_for, DeadReason, EventKind, ExpiryMode, MsAccount,
    MsCalendar, MsEvent, MsSettings, World,
};
use super::tz;
use crate::state::{AppState, Inner};
use crate::util;

pub fn routes() -> Router<AppState> {
    let p = "/_emulator/microsoft";
    Router::new()
        .route(
            &format!("{p}/settings"),
            get(get_settings).put(put_settings),
        )
        .route(
            &format!("{p}/accounts"),
            get(list_accounts).post(add_account),
        )
        .route(
            &format!("{p}/accounts/{{account}}/calendars"),
            post(add_calendar),
        )
        .route(
            &format!("{p}/accounts/{{account}}/calendars/{{calendar}}"),
            patch(update_calendar).delete(delete_calendar),
        )
        .route(
            &format!("{p}/accounts/{{account}}/calendars/{{calendar}}/expire-delta-tokens"),
            post(expire_delta),
        )
        .route(
            &format!("{p}/accounts/{{account}}/calendars/{{calendar}}/events"),
            get(list_events).post(add_event),
        )
        .route(
            &format!("{p}/accounts/{{account}}/calendars/{{calendar}}/events/generate"),
            post(generate),
        )
        .route(
            &format!("{p}/accounts/{{account}}/calendars/{{calendar}}/view"),
            get(view),
        )
        .route(
            &format!("{p}/accounts/{{account}}/calendars/{{calendar}}/events/{{event}}"),
            get(get_event).patch(update_event).delete(remove_event),
        )
        .route(&format!("{p}/tokens/expire-access"), post(expire_access))
        .route(&format!("{p}/tokens/expire-refresh"), post(expire_refresh))
        .route(&format!("{p}/tokens/revoke"), post(revoke))
}

fn bad(msg: impl Into<String>) -> GraphError {
    GraphError::bad_request(msg)
}

fn account_ix(ms: &World, account: &str) -> GraphResult<usize> {
    ms.account_ix(account)
        .ok_or_else(GraphError::item_not_found)
}

fn cal_ixs(ms: &World, account: &str, calendar: &str) -> GraphResult<(usize, usize)> {
    let ix = account_ix(ms, account)?;
    let c = ms
        .calendar_ix(ix, calendar)
        .ok_or_else(GraphError::item_not_found)?;
    Ok((ix, c))
}

// ---------------------------------------------------------------- settings

async fn get_settings(State(state): State<AppState>) -> Json<MsSettings> {
    Json(state.lock().ms.settings.clone())
}

async fn put_settings(
    State(state): State<AppState>,
    Json(patch): Json<Value>,
) -> GraphResult<Json<MsSettings>> {
    let mut inner = state.lock();
    let mut current = serde_json::to_value(&inner.ms.settings).map_err(|e| bad(e.to_string()))?;
    if let Some(obj) = current.as_object_mut() {
        for (k, v) in object(patch)? {
            if !obj.contains_key(&k) {
                return Err(bad(format!("unknown setting: {k}")));
            }
            obj.insert(k, v);
        }
    }
    inner.ms.settings = serde_json::from_value(current).map_err(|e| bad(e.to_string()))?;
    Ok(Json(inner.ms.settings.clone()))
}

// ---------------------------------------------------------------- accounts, calendars

/// Adds an account with its default calendar ("Calendar"), or returns the
/// existing one. `mail`: `None` = same as the email, `Some(None)` = null.
pub(crate) fn ensure_account(
    ms: &mut World,
    email: &str,
    name: Option<&str>,
    mail: Option<Option<String>>,
) -> usize {
    if let Some(ix) = ms.account_ix(email) {
        return ix;
    }
    let id = object_id_for(email);
    let display_name = name.map(str::to_owned).unwrap_or_else(|| {
        let local = email.split('@').next().unwrap_or(email);
        let mut c = local.chars();
        c.next()
            .map(|f| f.to_uppercase().chain(c).collect())
            .unwrap_or_else(|| email.to_owned())
    });
    let mail = mail.unwrap_or_else(|| Some(email.to_owned()));
    let default = MsCalendar {
        // Derived from the email so that a reset keeps the id clients stored.
        id: format!(
            "AAMkAGCal{}AAA=",
            util::b64url(
                &sha2::Sha256::digest(format!("cal:{}", email.to_ascii_lowercase()).as_bytes())
                    [..24]
            )
        ),
        name: "Calendar".into(),
        color: "auto".into(),
        hex_color: String::new(),
        is_default: true,
        can_edit: true,
        owner_name: display_name.clone(),
        owner_address: mail.clone().unwrap_or_else(|| email.to_owned()),
        change_key: new_change_key(),
        events: Default::default(),
        delta_epoch: 0,
        expiry_mode: ExpiryMode::default(),
    };
    ms.push_account(MsAccount {
        id,
        upn: email.to_owned(),
        mail,
        display_name,
        calendars: vec![default],
    })
}

pub(crate) fn account_json(a: &MsAccount) -> Value {
    json!({
        "id": a.id,
        "userPrincipalName": a.upn,
        "mail": a.mail,
        "displayName": a.display_name,
        "calendars": a.calendars.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
    })
}

async fn list_accounts(State(state): State<AppState>) -> Json<Value> {
    let inner = state.lock();
    Json(Value::Array(
        inner.ms.accounts.iter().map(account_json).collect(),
    ))
}

#[derive(Deserialize)]
struct NewAccount {
    email: String,
    name: Option<String>,
    /// Absent: the email; `null`: no mailbox address.
    #[serde(default, deserialize_with = "double_option")]
    mail: Option<Option<String>>,
}

fn double_option<'de, D>(d: D) -> Result<Option<Option<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Option::<String>::deserialize(d).map(Some)
}

async fn add_account(
    State(state): State<AppState>,
    Json(body): Json<NewAccount>,
) -> GraphResult<(StatusCode, Json<Value>)> {
    if !body.email.contains('@') {
        return Err(bad("email must be an email address"));
    }
    let mut inner = state.lock();
    let ix = ensure_account(&mut inner.ms, &body.email, body.name.as_deref(), body.mail);
    Ok((
        StatusCode::CREATED,
        Json(account_json(&inner.ms.accounts[ix])),
    ))
}

const COLORS: &[&str] = &[
    "auto",
    "lightBlue",
    "lightGreen",
    "lightOrange",
    "lightGray",
    "lightYellow",
    "lightTeal",
    "lightPink",
    "lightBrown",
    "lightRed",
    "maxColor",
];

fn apply_calendar(cal: &mut MsCalendar, f: &Map<String, Value>) -> GraphResult<()> {
    let s = |k: &str| f.get(k).and_then(Value::as_str);
    if let Some(v) = s("name") {
        cal.name = v.to_owned();
    }
    if let Some(v) = s("color") {
        if !COLORS.contains(&v) {
            return Err(bad(format!("Invalid calendar color '{v}'")));
        }
        cal.color = v.to_owned();
    }
    if let Some(v) = s("hexColor") {
        let ok = v.is_empty()
            || (v.len() == 7
                && v.starts_with('#')
                && v[1..].bytes().all(|b| b.is_ascii_hexdigit()));
        if !ok {
            return Err(bad(format!("hexColor must be \"\" or #RRGGBB, not '{v}'")));
        }
        cal.hex_color = v.to_owned();
    }
    if let Some(v) = f.get("canEdit").and_then(Value::as_bool) {
        cal.can_edit = v;
    }
    if let Some(o) = f.get("owner") {
        if let Some(n) = o.get("name").and_then(Value::as_str) {
            cal.owner_name = n.to_owned();
        }
        if let Some(a) = o.get("address").and_then(Value::as_str) {
            cal.owner_address = a.to_owned();
        }
    }
    cal.change_key = new_change_key();
    Ok(())
}

/// Adds a secondary calendar; returns its Graph JSON.
pub(crate) fn add_calendar_inner(
    ms: &mut World,
    account: &str,
    fields: Value,
) -> GraphResult<Value> {
    let fields = object(fields)?;
    let ix = account_ix(ms, account)?;
    let a = &ms.accounts[ix];
    let id = fields
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("AAMkAGCal{}AAA=", util::b64url(&util::random_bytes(24))));
    if a.calendars.iter().any(|c| c.id == id) {
        return Err(GraphError::new(
            StatusCode::CONFLICT,
            "ErrorFolderExists",
            "A folder with the specified name already exists.",
        ));
    }
    let mut cal = MsCalendar {
        id,
        name: "New calendar".into(),
        color: "auto".into(),
        hex_color: String::new(),
        is_default: false,
        can_edit: true,
        owner_name: a.display_name.clone(),
        owner_address: a.address().to_owned(),
        change_key: String::new(),
        events: Default::default(),
        delta_epoch: 0,
        expiry_mode: ExpiryMode::default(),
    };
    apply_calendar(&mut cal, &fields)?;
    let v = calendar_json(&cal);
    ms.accounts[ix].calendars.push(cal);
    Ok(v)
}

async fn add_calendar(
    State(state): State<AppState>,
    Path(account): Path<String>,
    Json(fields): Json<Value>,
) -> GraphResult<(StatusCode, Json<Value>)> {
    let v = add_calendar_inner(&mut state.lock().ms, &account, fields)?;
    Ok((StatusCode::CREATED, Json(v)))
}

async fn update_calendar(
    State(state): State<AppState>,
    Path((account, calendar)): Path<(String, String)>,
    Json(fields): Json<Value>,
) -> GraphResult<Json<Value>> {
    let mut inner = state.lock();
    let (ix, c) = cal_ixs(&inner.ms, &account, &calendar)?;
    let cal = &mut inner.ms.accounts[ix].calendars[c];
    apply_calendar(cal, &object(fields)?)?;
    Ok(Json(calendar_json(cal)))
}

async fn delete_calendar(
    State(state): State<AppState>,
    Path((account, calendar)): Path<(String, String)>,
) -> GraphResult<StatusCode> {
    let mut inner = state.lock();
    let (ix, c) = cal_ixs(&inner.ms, &account, &calendar)?;
    if inner.ms.accounts[ix].calendars[c].is_default {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "ErrorCannotDeleteObject",
            "The default calendar cannot be deleted.",
        ));
    }
    inner.ms.accounts[ix].calendars.remove(c);
    Ok(StatusCode::NO_CONTENT)
}

/// Kills every delta token of the calendar; `mode` picks how they fail.
pub(crate) fn expire_delta_tokens(
    ms: &mut World,
    account: &str,
    calendar: &str,
    mode: ExpiryMode,
) -> GraphResult<()> {
    let (ix, c) = cal_ixs(ms, account, calendar)?;
    let cal = &mut ms.accounts[ix].calendars[c];
    cal.delta_epoch += 1;
    cal.expiry_mode = mode;
    Ok(())
}

#[derive(Deserialize, Default)]
struct ExpireDelta {
    #[serde(default)]
    mode: ExpiryMode,
}

async fn expire_delta(
    State(state): State<AppState>,
    Path((account, calendar)): Path<(String, String)>,
    body: Option<Json<ExpireDelta>>,
) -> GraphResult<StatusCode> {
    let mode = body.map(|Json(b)| b.mode).unwrap_or_default();
    expire_delta_tokens(&mut state.lock().ms, &account, &calendar, mode)?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- events

fn stamp(ev: &mut MsEvent, now: Timestamp, seq: u64) {
    ev.modified = now;
    ev.change_key = new_change_key();
    ev.seq = seq;
}

/// Inserts an event (single, series master, or an exception when
/// `seriesMasterId` + `originalStart` are given). Returns its Graph JSON.
pub(crate) fn insert_event(
    inner: &mut Inner,
    base: &str,
    account: &str,
    calendar: &str,
    body: Value,
) -> GraphResult<Value> {
    let body = object(body)?;
    let (ix, c) = cal_ixs(&inner.ms, account, calendar)?;
    if let Some(master) = body.get("seriesMasterId").and_then(Value::as_str) {
        let original = body
            .get("originalStart")
            .and_then(Value::as_str)
            .and_then(graph::window_time)
            .ok_or_else(|| bad("an exception needs originalStart (UTC date-time)"))?;
        let id = events::occurrence_id(master, original);
        return patch_event(inner, base, account, calendar, &id, Value::Object(body));
    }
    let mut ev = new_event(&body)?;
    ev.id = body
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(new_item_id);
    if ev.id.is_empty() || ev.id.starts_with("AAMkAGOc") {
        return Err(bad("invalid event id"));
    }
    if inner.ms.accounts[ix].calendars[c]
        .events
        .contains_key(&ev.id)
    {
        return Err(GraphError::new(
            StatusCode::CONFLICT,
            "ErrorDuplicateItem",
            "An item with this id already exists.",
        ));
    }
    if !ev.rrule.is_empty() {
        ev.kind = EventKind::SeriesMaster;
    }
    let now = inner.now();
    let seq = inner.next_seq();
    ev.created = now;
    stamp(&mut ev, now, seq);
    let account = &mut inner.ms.accounts[ix];
    let v = events::render_stored(&ev, account, base);
    account.calendars[c].events.insert(ev.id.clone(), ev);
    Ok(v)
}

/// Merge-patches a stored event, or turns an occurrence into an exception.
pub(crate) fn patch_event(
    inner: &mut Inner,
    base: &str,
    account: &str,
    calendar: &str,
    event: &str,
    patch: Value,
) -> GraphResult<Value> {
    let mut patch = object(patch)?;
    for k in ["id", "seriesMasterId", "originalStart", "type"] {
        patch.remove(k);
    }
    let (ix, c) = cal_ixs(&inner.ms, account, calendar)?;
    let now = inner.now();
    let seq = inner.next_seq();
    let cal = &mut inner.ms.accounts[ix].calendars[c];
    let mut ev = match cal.events.get(event) {
        Some(ev) => ev.clone(),
        None => occurrence_as_exception(cal, event)?,
    };
    if ev.kind == EventKind::Exception && patch.contains_key("recurrence") {
        return Err(bad("an exception cannot have a recurrence"));
    }
    events::apply_fields(&mut ev, &patch)?;
    if ev.kind != EventKind::Exception {
        ev.kind = if ev.rrule.is_empty() {
            EventKind::SingleInstance
        } else {
            EventKind::SeriesMaster
        };
    }
    if ev.kind != EventKind::SeriesMaster {
        ev.deleted_occurrences.clear();
    }
    stamp(&mut ev, now, seq);
    if ev.kind != EventKind::SeriesMaster {
        // A master that lost its recurrence takes its exceptions along.
        let id = ev.id.clone();
        cal.events
            .retain(|_, e| e.series_master_id.as_deref() != Some(id.as_str()));
    }
    cal.events.insert(ev.id.clone(), ev.clone());
    Ok(events::render_stored(&ev, &inner.ms.accounts[ix], base))
}

/// A fresh exception for an occurrence id (not yet stored).
fn occurrence_as_exception(cal: &MsCalendar, id: &str) -> GraphResult<MsEvent> {
    let (master_id, original) =
        events::parse_occurrence_id(id).ok_or_else(GraphError::item_not_found)?;
    let master = cal
        .events
        .get(&master_id)
        .filter(|m| m.kind == EventKind::SeriesMaster)
        .ok_or_else(GraphError::item_not_found)?;
    let stop = original
        .checked_add(SignedDuration::from_secs(1))
        .unwrap_or(original);
    let (start, local) = events::occurrence_starts(master, stop)
        .into_iter()
        .find(|(s, _)| *s == original)
        .filter(|(s, _)| !master.deleted_occurrences.contains(s))
        .ok_or_else(GraphError::item_not_found)?;
    let mut ev = master.clone();
    ev.id = id.to_owned();
    ev.kind = EventKind::Exception;
    ev.series_master_id = Some(master.id.clone());
    ev.original_start = Some(start);
    ev.recurrence = None;
    ev.rrule.clear();
    ev.deleted_occurrences.clear();
    if master.is_all_day {
        let days = master
            .start
            .date()
            .until(master.end.date())
            .unwrap_or_default();
        ev.start = local;
        ev.end = local
            .date()
            .checked_add(days)
            .unwrap_or(local.date())
            .to_datetime(jiff::civil::Time::midnight());
    } else {
        let zone = tz::resolve(&master.start_tz).unwrap_or(jiff::tz::TimeZone::UTC);
        let end_zone = tz::resolve(&master.end_tz).unwrap_or(jiff::tz::TimeZone::UTC);
        let dur = master.end_instant().duration_since(master.start_instant());
        ev.start = start.to_zoned(zone).datetime();
        ev.end = start
            .checked_add(dur)
            .unwrap_or(start)
            .to_zoned(end_zone)
            .datetime();
    }
    Ok(ev)
}

/// Deletes a stored event (a master with its exceptions) or cancels one occurrence.
pub(crate) fn delete_event(
    inner: &mut Inner,
    account: &str,
    calendar: &str,
    event: &str,
) -> GraphResult<()> {
    let (ix, c) = cal_ixs(&inner.ms, account, calendar)?;
    let seq = inner.next_seq();
    let cal = &mut inner.ms.accounts[ix].calendars[c];
    if let Some(ev) = cal.events.remove(event) {
        match ev.kind {
            EventKind::SeriesMaster => cal
                .events
                .retain(|_, e| e.series_master_id.as_deref() != Some(ev.id.as_str())),
            EventKind::Exception => {
                if let (Some(m), Some(os)) = (
                    ev.series_master_id
                        .as_deref()
                        .and_then(|m| cal.events.get_mut(m)),
                    ev.original_start,
                ) {
                    m.deleted_occurrences.insert(os);
                    m.seq = seq;
                }
            }
            EventKind::SingleInstance => {}
        }
        return Ok(());
    }
    let ex = occurrence_as_exception(cal, event)?;
    if let (Some(m), Some(os)) = (
        ex.series_master_id
            .as_deref()
            .and_then(|m| cal.events.get_mut(m)),
        ex.original_start,
    ) {
        // The master's changeKey stays: the other occurrences did not change.
        m.deleted_occurrences.insert(os);
        m.seq = seq;
    }
    Ok(())
}

pub(crate) fn stored_events(
    inner: &Inner,
    base: &str,
    account: &str,
    calendar: &str,
) -> GraphResult<Vec<Value>> {
    let (ix, c) = cal_ixs(&inner.ms, account, calendar)?;
    let a = &inner.ms.accounts[ix];
    Ok(a.calendars[c]
        .events
        .values()
        .map(|e| events::render_stored(e, a, base))
        .collect())
}

async fn list_events(
    State(state): State<AppState>,
    Path((account, calendar)): Path<(String, String)>,
) -> GraphResult<Json<Value>> {
    let v = stored_events(&state.lock(), &state.base_url, &account, &calendar)?;
    Ok(Json(json!({ "value": v })))
}

async fn add_event(
    State(state): State<AppState>,
    Path((account, calendar)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> GraphResult<(StatusCode, Json<Value>)> {
    let v = insert_event(
        &mut state.lock(),
        &state.base_url,
        &account,
        &calendar,
        body,
    )?;
    Ok((StatusCode::CREATED, Json(v)))
}

async fn get_event(
    State(state): State<AppState>,
    Path((account, calendar, event)): Path<(String, String, String)>,
) -> GraphResult<Json<Value>> {
    let inner = state.lock();
    let (ix, c) = cal_ixs(&inner.ms, &account, &calendar)?;
    let a = &inner.ms.accounts[ix];
    let ev = a.calendars[c]
        .events
        .get(&event)
        .ok_or_else(GraphError::item_not_found)?;
    Ok(Json(events::render_stored(ev, a, &state.base_url)))
}

async fn update_event(
    State(state): State<AppState>,
    Path((account, calendar, event)): Path<(String, String, String)>,
    Json(patch): Json<Value>,
) -> GraphResult<Json<Value>> {
    let v = patch_event(
        &mut state.lock(),
        &state.base_url,
        &account,
        &calendar,
        &event,
        patch,
    )?;
    Ok(Json(v))
}

async fn remove_event(
    State(state): State<AppState>,
    Path((account, calendar, event)): Path<(String, String, String)>,
) -> GraphResult<StatusCode> {
    delete_event(&mut state.lock(), &account, &calendar, &event)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Instances in a window as calendarView shows them (UTC), for tests.
pub(crate) fn view_inner(
    inner: &Inner,
    base: &str,
    account: &str,
    calendar: &str,
    window: (Timestamp, Timestamp),
) -> GraphResult<Vec<Value>> {
    let (ix, c) = cal_ixs(&inner.ms, account, calendar)?;
    let a = &inner.ms.accounts[ix];
    Ok(events::instances(&a.calendars[c], window.0, window.1)
        .iter()
        .map(|i| events::render(i, &OutZone::utc(), a, base))
        .collect())
}

async fn view(
    State(state): State<AppState>,
    Path((account, calendar)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> GraphResult<Json<Value>> {
    let q = util::parse_form(raw.as_deref().unwrap_or(""));
    let (w, _) = graph::window(&q)?;
    let v = view_inner(&state.lock(), &state.base_url, &account, &calendar, w)?;
    Ok(Json(json!({ "value": v })))
}

/// Bulk generation (`events/generate`).
#[derive(Debug, Clone, Deserialize)]
pub struct Generate {
    pub count: usize,
    /// First start (RFC 3339); default: the next full hour.
    pub start: Option<String>,
    #[serde(default = "sixty")]
    pub every_minutes: i64,
    #[serde(default = "thirty")]
    pub duration_minutes: i64,
    #[serde(default = "prefix")]
    pub subject_prefix: String,
    /// Zone the events are written in (Windows or IANA); default UTC.
    pub time_zone: Option<String>,
}

fn sixty() -> i64 {
    60
}
fn thirty() -> i64 {
    30
}
fn prefix() -> String {
    "Generated event".into()
}

pub(crate) fn generate_inner(
    inner: &mut Inner,
    account: &str,
    calendar: &str,
    g: &Generate,
) -> GraphResult<usize> {
    if g.count > 200_000 {
        return Err(bad("count must be at most 200000"));
    }
    let (ix, c) = cal_ixs(&inner.ms, account, calendar)?;
    let zone_name = g.time_zone.clone().unwrap_or_else(|| "UTC".into());
    let zone =
        tz::resolve(&zone_name).ok_or_else(|| bad(format!("unknown time zone {zone_name}")))?;
    let first = match &g.start {
        Some(s) => graph::window_time(s).ok_or_else(|| bad("start must be RFC 3339"))?,
        None => {
            let now = inner.now().as_second();
            Timestamp::from_second(now - now.rem_euclid(3600) + 3600)
                .map_err(|e| bad(e.to_string()))?
        }
    };
    let now = inner.now();
    for n in 0..g.count {
        let seq = inner.next_seq();
        let start = first
            .checked_add(SignedDuration::from_mins(
                g.every_minutes.saturating_mul(n as i64),
            ))
            .map_err(|e| bad(e.to_string()))?;
        let end = start
            .checked_add(SignedDuration::from_mins(g.duration_minutes))
            .map_err(|e| bad(e.to_string()))?;
        let body = json!({
            "subject": format!("{} {}", g.subject_prefix, n + 1),
            "start": {"dateTime": tz::graph_datetime(start.to_zoned(zone.clone()).datetime()), "timeZone": zone_name},
            "end": {"dateTime": tz::graph_datetime(end.to_zoned(zone.clone()).datetime()), "timeZone": zone_name},
        });
        let mut ev = new_event(&object(body)?)?;
        ev.id = new_item_id();
        ev.created = now;
        stamp(&mut ev, now, seq);
        inner.ms.accounts[ix].calendars[c]
            .events
            .insert(ev.id.clone(), ev);
    }
    Ok(g.count)
}

async fn generate(
    State(state): State<AppState>,
    Path((account, calendar)): Path<(String, String)>,
    Json(g): Json<Generate>,
) -> GraphResult<(StatusCode, Json<Value>)> {
    let n = generate_inner(&mut state.lock(), &account, &calendar, &g)?;
    Ok((StatusCode::CREATED, Json(json!({ "created": n }))))
}

// ---------------------------------------------------------------- tokens

#[derive(Deserialize, Default)]
struct TokenTarget {
    account: Option<String>,
    client_id: Option<String>,
    reason: Option<DeadReason>,
}

fn target_id(ms: &World, account: Option<&str>) -> GraphResult<Option<String>> {
    account
        .map(|a| account_ix(ms, a).map(|ix| ms.accounts[ix].id.clone()))
        .transpose()
}

pub(crate) fn expire_access_tokens(inner: &mut Inner, account: Option<&str>) -> GraphResult<usize> {
    let id = target_id(&inner.ms, account)?;
    let past = inner
        .now()
        .checked_sub(SignedDuration::from_secs(1))
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let mut n = 0;
    for t in inner.ms.access_tokens.values_mut() {
        if id.as_deref().is_none_or(|i| i == t.account_id) {
            t.expires_at = past;
            n += 1;
        }
    }
    Ok(n)
}

/// Kills refresh tokens with a reason (`Inactive` backdates their last use
/// past the idle limit, so the answer is the natural AADSTS700082).
pub(crate) fn expire_refresh_tokens(
    inner: &mut Inner,
    account: Option<&str>,
    client_id: Option<&str>,
    reason: DeadReason,
) -> GraphResult<usize> {
    let id = target_id(&inner.ms, account)?;
    let idle = SignedDuration::from_hours(24 * (inner.ms.settings.refresh_idle_days + 1));
    let long_ago = inner
        .now()
        .checked_sub(idle)
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let mut n = 0;
    for t in inner.ms.refresh_tokens.values_mut() {
        let hit = id.as_deref().is_none_or(|i| i == t.account_id)
            && client_id.is_none_or(|c| c == t.client_id)
            && t.dead.is_none();
        if hit {
            if reason == DeadReason::Inactive {
                t.last_used_at = long_ago;
            } else {
                t.dead = Some(reason);
            }
            n += 1;
        }
    }
    Ok(n)
}

pub(crate) fn revoke_grants(
    inner: &mut Inner,
    account: Option<&str>,
    client_id: Option<&str>,
) -> GraphResult<usize> {
    let ids: Vec<String> = match target_id(&inner.ms, account)? {
        Some(id) => vec![id],
        None => inner.ms.accounts.iter().map(|a| a.id.clone()).collect(),
    };
    Ok(ids
        .iter()
        .map(|id| inner.ms.revoke_grant(id, client_id))
        .sum())
}

async fn expire_access(
    State(state): State<AppState>,
    body: Option<Json<TokenTarget>>,
) -> GraphResult<Json<Value>> {
    let t = body.map(|Json(t)| t).unwrap_or_default();
    let n = expire_access_tokens(&mut state.lock(), t.account.as_deref())?;
    Ok(Json(json!({ "expired": n })))
}

async fn expire_refresh(
    State(state): State<AppState>,
    body: Option<Json<TokenTarget>>,
) -> GraphResult<Json<Value>> {
    let t = body.map(|Json(t)| t).unwrap_or_default();
    let n = expire_refresh_tokens(
        &mut state.lock(),
        t.account.as_deref(),
        t.client_id.as_deref(),
        t.reason.unwrap_or(DeadReason::Expired),
    )?;
    Ok(Json(json!({ "expired": n })))
}

async fn revoke(
    State(state): State<AppState>,
    body: Option<Json<TokenTarget>>,
) -> GraphResult<Json<Value>> {
    let t = body.map(|Json(t)| t).unwrap_or_default();
    let n = revoke_grants(
        &mut state.lock(),
        t.account.as_deref(),
        t.client_id.as_deref(),
    )?;
    Ok(Json(json!({ "revoked_grants": n })))
}
