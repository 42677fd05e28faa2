//! Calendar API v3 handlers under `/calendar/v3/` (spec §2): calendarList,
//! calendars.get, events list/get/insert/update/patch/delete/instances, colors.
//!
//! Every request is authenticated by its Bearer token and checked against the
//! scopes Google's discovery document requires for the method. Listings are
//! frozen into a page cursor at their first page; the `nextSyncToken` of the
//! last page remembers the change number at which the listing started, so an
//! incremental listing returns exactly what changed since. This module must
//! not invent error shapes (use `errors.rs`) nor know about the control API.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Map, Value};

use crate::errors::ApiError;
use crate::events::{self, WriteCtx};
use crate::push::WatchTarget;
use crate::recur::Start;
use crate::state::{AppState, Inner, PageCursor, PageRef, StoredEvent, SyncToken};
use crate::util;

const SCOPE: &str = "https://www.googleapis.com/auth/";
const CALLIST_READ: &[&str] = &[
    "calendar",
    "calendar.readonly",
    "calendar.calendarlist",
    "calendar.calendarlist.readonly",
];
const EVENTS_READ: &[&str] = &[
    "calendar",
    "calendar.readonly",
    "calendar.events",
    "calendar.events.readonly",
    "calendar.events.owned",
    "calendar.events.owned.readonly",
    "calendar.app.created",
];
const EVENTS_WRITE: &[&str] = &[
    "calendar",
    "calendar.events",
    "calendar.events.owned",
    "calendar.app.created",
];
const CALENDARS_READ: &[&str] = &[
    "calendar",
    "calendar.readonly",
    "calendar.calendars",
    "calendar.calendars.readonly",
    "calendar.app.created",
];
const COLORS_READ: &[&str] = &["calendar", "calendar.readonly"];

/// How far `singleEvents=true` expands open-ended series without `timeMax`.
const DEFAULT_EXPANSION_DAYS: i64 = 730;
/// Instances per series in one listing (Google also caps expansion).
const MAX_INSTANCES: usize = 2500;
/// `updatedMin` older than this answers 410 updatedMinTooLongAgo.
const UPDATED_MIN_MAX_AGE_DAYS: i64 = 30;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/calendar/v3/users/me/calendarList", get(calendar_list))
        .route(
            "/calendar/v3/users/me/calendarList/{calendar_id}",
            get(calendar_list_entry),
        )
        .route("/calendar/v3/calendars/{calendar_id}", get(calendar_get))
        .route(
            "/calendar/v3/calendars/{calendar_id}/events",
            get(events_list).post(events_insert),
        )
        .route(
            "/calendar/v3/calendars/{calendar_id}/events/{event_id}",
            get(events_get)
                .put(events_update)
                .patch(events_patch)
                .delete(events_delete),
        )
        .route(
            "/calendar/v3/calendars/{calendar_id}/events/{event_id}/instances",
            get(events_instances),
        )
        .route("/calendar/v3/colors", get(colors))
}

/// Checks the Bearer token and its scopes; returns the account's `sub`.
pub fn authenticate(
    inner: &mut Inner,
    headers: &HeaderMap,
    accepted: &[&str],
) -> Result<String, ApiError> {
    let token = bearer(headers).ok_or_else(ApiError::unauthenticated)?;
    let now = inner.now();
    let at = inner
        .access_tokens
        .get(token)
        .ok_or_else(ApiError::unauthenticated)?;
    if at.expires_at <= now {
        return Err(ApiError::unauthenticated());
    }
    let allowed = at.scopes.iter().any(|s| {
        s.strip_prefix(SCOPE)
            .is_some_and(|short| accepted.contains(&short))
    });
    if !allowed {
        return Err(ApiError::insufficient_scope());
    }
    let sub = at.sub.clone();
    if let Some(limit) = inner.settings.rate_limit_per_minute {
        let window = inner.rate_window.entry(sub.clone()).or_default();
        let cutoff = now
            .checked_sub(SignedDuration::from_secs(60))
            .unwrap_or(now);
        while window.front().is_some_and(|t| *t <= cutoff) {
            window.pop_front();
        }
        if window.len() >= limit as usize {
            return Err(ApiError::rate_limited(
                StatusCode::FORBIDDEN,
                "rateLimitExceeded",
            ));
        }
        window.push_back(now);
    }
    if inner.account_by_sub(&sub).is_none() {
        return Err(ApiError::unauthenticated());
    }
    Ok(sub)
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Query parameters, repeats kept, with typed accessors that answer Google's 400s.
struct Params(Vec<(String, String)>);

impl Params {
    fn new(raw: Option<String>) -> Self {
        Params(raw.as_deref().map(util::parse_form).unwrap_or_default())
    }
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
    fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(v) => Err(ApiError::invalid_param(
                key,
                format!("Invalid boolean value: '{v}'."),
            )),
        }
    }
    fn max_results(&self, default: usize, max: usize) -> Result<usize, ApiError> {
        match self.get("maxResults") {
            None => Ok(default),
            Some(v) => match v.parse::<i64>() {
                // Google silently caps large values at the maximum.
                Ok(n) if n >= 1 => Ok((n as usize).min(max)),
                _ => Err(ApiError::invalid_param(
                    "maxResults",
                    format!("Invalid value '{v}'. Values must be within the range: [1, {max}]"),
                )),
            },
        }
    }
    fn time(&self, key: &str) -> Result<Option<Timestamp>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.parse::<Timestamp>().map(Some).map_err(|_| {
                ApiError::bad_request("badRequest", "Bad Request").at(key, "parameter")
            }),
        }
    }
}

fn page_size(page_no: usize, max: usize, uneven: bool) -> usize {
    if !uneven || max < 3 {
        return max;
    }
    // Google's pages are not always full, and sometimes empty with a next page.
    match page_no % 5 {
        1 => (max * 2 / 3).max(1),
        3 => 0,
        _ => max,
    }
}

/// Serves the first page of a new listing.
fn serve_first(inner: &mut Inner, cursor: PageCursor) -> Value {
    let snapshot = inner.add_snapshot(cursor);
    serve_page(
        inner,
        PageRef {
            snapshot,
            offset: 0,
            page_no: 0,
        },
    )
}

/// Serves one page of a snapshot, with a token for the next page or, on the
/// last page, a fresh sync token.
fn serve_page(inner: &mut Inner, page: PageRef) -> Value {
    let Some(cursor) = inner.snapshots.get(&page.snapshot).cloned() else {
        return json!({"items": []});
    };
    let max = match inner.settings.page_size_cap {
        Some(cap) => cursor.max_results.min(cap.max(1)),
        None => cursor.max_results,
    };
    let size = page_size(page.page_no, max, inner.settings.uneven_pages);
    let start = page.offset.min(cursor.items.len());
    let end = (start + size).min(cursor.items.len());
    let mut out = cursor.envelope.clone();
    if end < cursor.items.len() {
        let next = PageRef {
            snapshot: page.snapshot,
            offset: end,
            page_no: page.page_no + 1,
        };
        out.insert("nextPageToken".into(), inner.page_token(next).into());
    } else if let Some(sync) = cursor.sync.clone() {
        out.insert("nextSyncToken".into(), inner.store_sync_token(sync).into());
    }
    out.insert(
        "items".into(),
        Value::Array(cursor.items[start..end].to_vec()),
    );
    Value::Object(out)
}

/// Continues a listing from its page token (reusable, bound to caller and listing).
fn continue_cursor(
    inner: &mut Inner,
    sub: &str,
    scope: &str,
    token: &str,
) -> Result<Value, ApiError> {
    let page = inner.page_tokens.get(token).copied();
    let valid = page.and_then(|p| inner.snapshots.get(&p.snapshot).map(|c| (p, c)));
    match valid {
        Some((p, c)) if c.sub == sub && c.scope == scope => Ok(serve_page(inner, p)),
        _ => Err(ApiError::invalid_param(
            "pageToken",
            "Invalid page token value.",
        )),
    }
}

fn account_ix(inner: &Inner, sub: &str) -> Result<usize, ApiError> {
    inner
        .accounts
        .iter()
        .position(|a| a.sub == sub)
        .ok_or_else(ApiError::unauthenticated)
}

fn role_rank(role: &str) -> u8 {
    match role {
        "freeBusyReader" => 1,
        "reader" => 2,
        "writerWithoutPrivateAccess" => 3,
        "writer" => 4,
        "owner" => 5,
        _ => 0,
    }
}

// ---------------------------------------------------------------- calendarList

async fn calendar_list(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::new(raw);
    let mut inner = state.lock();
    let sub = authenticate(&mut inner, &headers, CALLIST_READ)?;
    if let Some(token) = params.get("pageToken") {
        return continue_cursor(&mut inner, &sub, "calendarList", token).map(Json);
    }
    let max = params.max_results(100, 250)?;
    let show_deleted = params.bool("showDeleted")?.unwrap_or(false);
    let show_hidden = params.bool("showHidden")?.unwrap_or(false);
    let min_role = params.get("minAccessRole");
    if let Some(role) = min_role {
        if role_rank(role) == 0 {
            return Err(ApiError::invalid_param(
                "minAccessRole",
                format!("Invalid value for: {role}"),
            ));
        }
    }
    let ix = account_ix(&inner, &sub)?;
    let account = &inner.accounts[ix];
    let since = match params.get("syncToken") {
        Some(token) => {
            for forbidden in ["minAccessRole", "showOwnOrganizationOnly"] {
                if params.has(forbidden) {
                    return Err(ApiError::invalid_param(
                        forbidden,
                        format!(
                            "The parameter {forbidden} cannot be used together with syncToken."
                        ),
                    ));
                }
            }
            match inner.sync_tokens.get(token) {
                Some(SyncToken::CalendarList { sub: s, epoch, seq })
                    if *s == sub && *epoch == account.list_epoch =>
                {
                    Some(*seq)
                }
                _ => return Err(ApiError::full_sync_required()),
            }
        }
        None => None,
    };
    let items: Vec<Value> = account
        .calendars
        .iter()
        .filter(|c| match since {
            // Incremental: every changed entry, deleted and hidden ones included.
            Some(seq) => c.list_seq > seq,
            None => {
                (show_deleted || !c.deleted)
                    && (show_hidden || !c.hidden)
                    && min_role.is_none_or(|r| role_rank(&c.access_role) >= role_rank(r))
            }
        })
        .map(|c| c.list_entry())
        .collect();
    let mut envelope = Map::new();
    envelope.insert("kind".into(), "calendar#calendarList".into());
    envelope.insert(
        "etag".into(),
        crate::state::etag_for(inner.current_seq()).into(),
    );
    let cursor = PageCursor {
        sub: sub.clone(),
        scope: "calendarList".to_owned(),
        items,
        max_results: max,
        envelope,
        sync: Some(SyncToken::CalendarList {
            sub,
            epoch: account.list_epoch,
            seq: inner.current_seq(),
        }),
    };
    Ok(Json(serve_first(&mut inner, cursor)))
}

async fn calendar_list_entry(
    State(state): State<AppState>,
    Path(calendar_id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let mut inner = state.lock();
    let sub = authenticate(&mut inner, &headers, CALLIST_READ)?;
    let ix = account_ix(&inner, &sub)?;
    let cal = inner
        .calendar_ix(ix, &calendar_id)
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(inner.accounts[ix].calendars[cal].list_entry()))
}

async fn calendar_get(
    State(state): State<AppState>,
    Path(calendar_id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let mut inner = state.lock();
    let sub = authenticate(&mut inner, &headers, CALENDARS_READ)?;
    let ix = account_ix(&inner, &sub)?;
    let cal = inner
        .calendar_ix(ix, &calendar_id)
        .ok_or_else(ApiError::not_found)?;
    let c = &inner.accounts[ix].calendars[cal];
    let mut v = json!({
        "kind": "calendar#calendar",
        "etag": c.etag,
        "id": c.id,
        "summary": c.summary,
        "timeZone": c.time_zone,
        "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
    });
    if let Some(d) = &c.description {
        v["description"] = json!(d);
    }
    Ok(Json(v))
}

async fn colors(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let mut inner = state.lock();
    authenticate(&mut inner, &headers, COLORS_READ)?;
    Ok(Json(colors_json()))
}

/// The exact palette of spec §2.6.
pub fn colors_json() -> Value {
    const CAL: [&str; 24] = [
        "#ac725e", "#d06b64", "#f83a22", "#fa573c", "#ff7537", "#ffad46", "#42d692", "#16a765",
        "#7bd148", "#b3dc6c", "#fbe983", "#fad165", "#92e1c0", "#9fe1e7", "#9fc6e7", "#4986e7",
        "#9a9cff", "#b99aff", "#c2c2c2", "#cabdbf", "#cca6ac", "#f691b2", "#cd74e6", "#a47ae2",
    ];
    const EVT: [&str; 11] = [
        "#a4bdfc", "#7ae7bf", "#dbadff", "#ff887c", "#fbd75b", "#ffb878", "#46d6db", "#e1e1e1",
        "#5484ed", "#51b749", "#dc2127",
    ];
    let palette = |colors: &[&str]| -> Value {
        let mut m = Map::new();
        for (i, c) in colors.iter().enumerate() {
            m.insert(
                (i + 1).to_string(),
                json!({"background": c, "foreground": "#1d1d1d"}),
            );
        }
        Value::Object(m)
    };
    json!({
        "kind": "calendar#colors",
        "updated": "2012-02-14T00:00:00.000Z",
        "calendar": palette(&CAL),
        "event": palette(&EVT),
    })
}

// ---------------------------------------------------------------- events.list

/// The filters of a full (non-incremental) listing.
struct Filter<'a> {
    show_deleted: bool,
    single: bool,
    time_min: Option<Timestamp>,
    time_max: Option<Timestamp>,
    updated_min: Option<Timestamp>,
    q: Option<&'a str>,
    ical_uid: Option<&'a str>,
    event_types: Vec<&'a str>,
    private_props: Vec<&'a str>,
    shared_props: Vec<&'a str>,
}

fn overlaps(
    span: Option<(Timestamp, Timestamp)>,
    min: Option<Timestamp>,
    max: Option<Timestamp>,
) -> bool {
    let Some((start, end)) = span else {
        return min.is_none() && max.is_none();
    };
    // timeMin bounds the end, timeMax the start, both exclusive (spec §2.2).
    // A zero-length event counts as occupying its start instant.
    let end_ok = min.is_none_or(|m| end > m || (end == start && start >= m));
    end_ok && max.is_none_or(|m| start < m)
}

fn ext_props_match(body: &Map<String, Value>, kind: &str, wanted: &[&str]) -> bool {
    wanted.iter().all(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        body.get("extendedProperties")
            .and_then(|e| e.get(kind))
            .and_then(|p| p.get(k))
            .and_then(Value::as_str)
            .is_some_and(|actual| actual == v)
    })
}

/// Instances of a master as listing items, skipping those that have an exception.
fn master_instances(
    cal_events: &std::collections::BTreeMap<String, StoredEvent>,
    master: &StoredEvent,
    tz: &TimeZone,
    min: Option<Timestamp>,
    max: Option<Timestamp>,
    now: Timestamp,
) -> Vec<(Option<Timestamp>, Value)> {
    let stop = max.unwrap_or_else(|| {
        now.checked_add(SignedDuration::from_hours(24 * DEFAULT_EXPANSION_DAYS))
            .unwrap_or(now)
    });
    let mut out = Vec::new();
    for occ in events::occurrences(&master.body, stop, MAX_INSTANCES * 4) {
        let Some(body) = events::render_instance(&master.body, &occ) else {
            continue;
        };
        let id = body.get("id").and_then(Value::as_str).unwrap_or("");
        if cal_events.contains_key(id) {
            continue;
        }
        let span = events::span_of(&body, tz);
        if overlaps(span, min, max) {
            out.push((span.map(|s| s.0), Value::Object(body)));
            if out.len() >= MAX_INSTANCES {
                break;
            }
        }
    }
    out
}

fn master_overlaps(
    master: &StoredEvent,
    tz: &TimeZone,
    min: Option<Timestamp>,
    max: Option<Timestamp>,
) -> bool {
    if min.is_none() && max.is_none() {
        return true;
    }
    let Some((s, e)) = events::span_of(&master.body, tz) else {
        return false;
    };
    let dur = e.as_second() - s.as_second();
    let far = Timestamp::MAX;
    let stop = max.unwrap_or_else(|| {
        min.and_then(|m| m.checked_add(SignedDuration::from_hours(24 * 400)).ok())
            .unwrap_or(far)
    });
    events::occurrences(&master.body, stop, 100_000)
        .iter()
        .any(|occ| {
            occ.instant(tz).is_some_and(|start| {
                let end = start
                    .checked_add(SignedDuration::from_secs(dur))
                    .unwrap_or(start);
                overlaps(Some((start, end)), min, max)
            })
        })
}

async fn events_list(
    State(state): State<AppState>,
    Path(calendar_id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::new(raw);
    let mut inner = state.lock();
    let sub = authenticate(&mut inner, &headers, EVENTS_READ)?;
    let ix = account_ix(&inner, &sub)?;
    let cal_ix = inner
        .calendar_ix(ix, &calendar_id)
        .ok_or_else(ApiError::not_found)?;
    if let Some(token) = params.get("pageToken") {
        let scope = format!("events:{}", inner.accounts[ix].calendars[cal_ix].id);
        return continue_cursor(&mut inner, &sub, &scope, token).map(Json);
    }

    let max = params.max_results(250, 2500)?;
    let single = params.bool("singleEvents")?.unwrap_or(false);
    let show_deleted_param = params.bool("showDeleted")?;
    let time_min = params.time("timeMin")?;
    let time_max = params.time("timeMax")?;
    let updated_min = params.time("updatedMin")?;
    let order_by = params.get("orderBy");
    if let (Some(min), Some(max)) = (time_min, time_max) {
        if max <= min {
            return Err(ApiError::time_range_empty());
        }
    }
    match order_by {
        None | Some("updated") => {}
        Some("startTime") if single => {}
        Some("startTime") => {
            return Err(ApiError::invalid_param(
                "orderBy",
                "The requested ordering is not available for the particular query.",
            ))
        }
        Some(other) => {
            return Err(ApiError::invalid_param(
                "orderBy",
                format!("Invalid value for: {other}"),
            ))
        }
    }
    let now = inner.now();
    let cal = &inner.accounts[ix].calendars[cal_ix];
    let tz = TimeZone::get(&cal.time_zone).unwrap_or(TimeZone::UTC);

    let since = match params.get("syncToken") {
        Some(token) => {
            for forbidden in [
                "iCalUID",
                "orderBy",
                "privateExtendedProperty",
                "q",
                "sharedExtendedProperty",
                "timeMin",
                "timeMax",
                "updatedMin",
            ] {
                if params.has(forbidden) {
                    return Err(ApiError::invalid_param(
                        forbidden,
                        format!(
                            "The parameter {forbidden} cannot be used together with syncToken."
                        ),
                    ));
                }
            }
            if show_deleted_param == Some(false) {
                return Err(ApiError::invalid_param(
                    "showDeleted",
                    "Deleted events are always included with syncToken; showDeleted=false is not allowed.",
                ));
            }
            match inner.sync_tokens.get(token) {
                Some(SyncToken::Events {
                    sub: s,
                    calendar_id: c,
                    epoch,
                    seq,
                }) if *s == sub && *c == cal.id && *epoch == cal.epoch => Some(*seq),
                _ => return Err(ApiError::full_sync_required()),
            }
        }
        None => None,
    };
    if let Some(min) = updated_min {
        let limit = now
            .checked_sub(SignedDuration::from_hours(24 * UPDATED_MIN_MAX_AGE_DAYS))
            .unwrap_or(now);
        if min < limit {
            return Err(ApiError::updated_min_too_long_ago());
        }
    }

    let mut collected: Vec<(u64, Option<Timestamp>, String, Value)> = Vec::new();
    match since {
        Some(seq) => {
            for ev in cal.events.values().filter(|e| e.seq > seq) {
                if !ev.is_cancelled() && single && ev.is_master() {
                    for (start, item) in master_instances(&cal.events, ev, &tz, None, None, now) {
                        collected.push((ev.seq, start, updated_of(&item), item));
                    }
                } else {
                    let item = events::list_item(ev);
                    collected.push((ev.seq, start_instant(ev, &tz), updated_of(&item), item));
                }
            }
            collected.sort_by_key(|(seq, ..)| *seq);
        }
        None => {
            let filter = Filter {
                show_deleted: show_deleted_param.unwrap_or(false),
                single,
                time_min,
                time_max,
                updated_min,
                q: params.get("q"),
                ical_uid: params.get("iCalUID"),
                event_types: params.all("eventTypes"),
                private_props: params.all("privateExtendedProperty"),
                shared_props: params.all("sharedExtendedProperty"),
            };
            for ev in cal.events.values() {
                if !passes_static_filters(ev, &filter) {
                    continue;
                }
                if let Some(min) = filter.updated_min {
                    let updated = ev
                        .body
                        .get("updated")
                        .and_then(Value::as_str)
                        .and_then(|u| u.parse::<Timestamp>().ok());
                    if updated.is_some_and(|u| u < min) {
                        continue;
                    }
                } else if ev.is_cancelled() {
                    // Cancelled exceptions of a live series come back when both
                    // showDeleted and singleEvents are false (DISCO, showDeleted).
                    let keep = filter.show_deleted
                        || (!filter.single && ev.recurring_event_id().is_some());
                    if !keep {
                        continue;
                    }
                }
                if ev.is_cancelled() {
                    let span = cancelled_span(ev, &tz);
                    if overlaps(span, filter.time_min, filter.time_max) || span.is_none() {
                        collected.push((
                            ev.seq,
                            span.map(|s| s.0),
                            updated_in(&ev.body),
                            events::list_item(ev),
                        ));
                    }
                } else if ev.is_master() {
                    if filter.single {
                        for (start, item) in master_instances(
                            &cal.events,
                            ev,
                            &tz,
                            filter.time_min,
                            filter.time_max,
                            now,
                        ) {
                            collected.push((ev.seq, start, updated_of(&item), item));
                        }
                    } else if master_overlaps(ev, &tz, filter.time_min, filter.time_max) {
                        collected.push((
                            ev.seq,
                            start_instant(ev, &tz),
                            updated_in(&ev.body),
                            events::list_item(ev),
                        ));
                    }
                } else {
                    let span = events::span_of(&ev.body, &tz);
                    if overlaps(span, filter.time_min, filter.time_max) {
                        collected.push((
                            ev.seq,
                            span.map(|s| s.0),
                            updated_in(&ev.body),
                            events::list_item(ev),
                        ));
                    }
                }
            }
            match order_by {
                Some("startTime") => collected.sort_by_key(|a| a.1),
                Some("updated") => collected.sort_by(|a, b| a.2.cmp(&b.2)),
                _ => {}
            }
        }
    }

    // No sync token for queries Google cannot resume (spec §2.2).
    let sync_allowed = order_by.is_none()
        && !params.has("q")
        && !params.has("iCalUID")
        && !params.has("privateExtendedProperty")
        && !params.has("sharedExtendedProperty");
    let mut envelope = Map::new();
    envelope.insert("kind".into(), "calendar#events".into());
    envelope.insert(
        "etag".into(),
        crate::state::etag_for(inner.current_seq()).into(),
    );
    envelope.insert("summary".into(), cal.summary.clone().into());
    if let Some(d) = &cal.description {
        envelope.insert("description".into(), d.clone().into());
    }
    envelope.insert(
        "updated".into(),
        cal.last_updated()
            .map(str::to_owned)
            .unwrap_or_else(|| util::rfc3339_millis(now))
            .into(),
    );
    envelope.insert("timeZone".into(), cal.time_zone.clone().into());
    envelope.insert("accessRole".into(), cal.access_role.clone().into());
    envelope.insert("defaultReminders".into(), json!([]));
    let sync = sync_allowed.then(|| SyncToken::Events {
        sub: sub.clone(),
        calendar_id: cal.id.clone(),
        epoch: cal.epoch,
        seq: inner.current_seq(),
    });
    let cursor = PageCursor {
        sub,
        scope: format!("events:{}", cal.id),
        items: collected.into_iter().map(|(.., item)| item).collect(),
        max_results: max,
        envelope,
        sync,
    };
    Ok(Json(serve_first(&mut inner, cursor)))
}

fn updated_in(body: &Map<String, Value>) -> String {
    body.get("updated")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

fn updated_of(item: &Value) -> String {
    item.get("updated")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

fn start_instant(ev: &StoredEvent, tz: &TimeZone) -> Option<Timestamp> {
    events::span_of(&ev.body, tz).map(|s| s.0)
}

/// Where a cancelled item sits in time: its times if kept, else its original start.
fn cancelled_span(ev: &StoredEvent, tz: &TimeZone) -> Option<(Timestamp, Timestamp)> {
    events::span_of(&ev.body, tz).or_else(|| {
        let (start, _) = events::parse_edt(ev.body.get("originalStartTime"), "start").ok()?;
        let at = start.instant(tz)?;
        Some((at, at))
    })
}

fn passes_static_filters(ev: &StoredEvent, f: &Filter<'_>) -> bool {
    if let Some(q) = f.q {
        if !events::matches_q(&ev.body, q) {
            return false;
        }
    }
    if let Some(uid) = f.ical_uid {
        if ev.body.get("iCalUID").and_then(Value::as_str) != Some(uid) {
            return false;
        }
    }
    if !f.event_types.is_empty() {
        let t = ev
            .body
            .get("eventType")
            .and_then(Value::as_str)
            .unwrap_or("default");
        if !f.event_types.contains(&t) {
            return false;
        }
    }
    ext_props_match(&ev.body, "private", &f.private_props)
        && ext_props_match(&ev.body, "shared", &f.shared_props)
}

async fn events_instances(
    State(state): State<AppState>,
    Path((calendar_id, event_id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::new(raw);
    let mut inner = state.lock();
    let sub = authenticate(&mut inner, &headers, EVENTS_READ)?;
    let ix = account_ix(&inner, &sub)?;
    let cal_ix = inner
        .calendar_ix(ix, &calendar_id)
        .ok_or_else(ApiError::not_found)?;
    if let Some(token) = params.get("pageToken") {
        let cal_id = &inner.accounts[ix].calendars[cal_ix].id;
        let scope = format!("instances:{cal_id}:{event_id}");
        return continue_cursor(&mut inner, &sub, &scope, token).map(Json);
    }
    let max = params.max_results(250, 2500)?;
    let (min, maxt) = (params.time("timeMin")?, params.time("timeMax")?);
    let show_deleted = params.bool("showDeleted")?.unwrap_or(false);
    let now = inner.now();
    let cal = &inner.accounts[ix].calendars[cal_ix];
    let tz = TimeZone::get(&cal.time_zone).unwrap_or(TimeZone::UTC);
    let master = cal.events.get(&event_id).ok_or_else(ApiError::not_found)?;
    if master.is_cancelled() {
        return Err(ApiError::deleted());
    }
    let mut items: Vec<(Option<Timestamp>, Value)> =
        master_instances(&cal.events, master, &tz, min, maxt, now);
    for ex in cal
        .events
        .values()
        .filter(|e| e.recurring_event_id() == Some(event_id.as_str()))
    {
        if ex.is_cancelled() && !show_deleted {
            continue;
        }
        let span = if ex.is_cancelled() {
            cancelled_span(ex, &tz)
        } else {
            events::span_of(&ex.body, &tz)
        };
        if overlaps(span, min, maxt) {
            items.push((span.map(|s| s.0), events::list_item(ex)));
        }
    }
    items.sort_by_key(|a| a.0);
    let mut envelope = Map::new();
    envelope.insert("kind".into(), "calendar#events".into());
    envelope.insert("etag".into(), master.etag().into());
    envelope.insert("summary".into(), cal.summary.clone().into());
    envelope.insert("timeZone".into(), cal.time_zone.clone().into());
    envelope.insert("accessRole".into(), cal.access_role.clone().into());
    envelope.insert("defaultReminders".into(), json!([]));
    let cursor = PageCursor {
        sub,
        scope: format!("instances:{}:{event_id}", cal.id),
        items: items.into_iter().map(|(_, v)| v).collect(),
        max_results: max,
        envelope,
        sync: None,
    };
    Ok(Json(serve_first(&mut inner, cursor)))
}

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

async fn events_get(
    State(state): State<AppState>,
    Path((calendar_id, event_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
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
    Ok(Json(Value::Object(body)).into_response())
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

async fn events_insert(
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
    Ok(Json(Value::Object(stored)))
}

async fn events_update(
    State(state): State<AppState>,
    Path((calendar_id, event_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    write_existing(&state, &calendar_id, &event_id, &headers, &body, false)
}

async fn events_patch(
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
        let mut replaced = input;
        // A series keeps its recurrence unless the update sends one (Google
        // requires it in full updates; being lenient here hides nothing a
        // client relies on).
        if let Some(r) = current.get("recurrence") {
            replaced.entry("recurrence").or_insert_with(|| r.clone());
        }
        replaced
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
    Ok(Json(Value::Object(stored)))
}

async fn events_delete(
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
