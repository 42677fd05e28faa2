//! Calendar API v3 under `/calendar/v3/` (spec §2): the route table, Bearer
//! and scope checks, query parameters, paging over listing snapshots,
//! calendarList, calendars.get and colors. Event listings live in
//! `listing.rs`, single-event reads and writes in `writes.rs`.
//!
//! Every request is authenticated by its Bearer token and checked against the
//! scopes Google's discovery document requires for the method. Listings are
//! frozen into a page cursor at their first page; the `nextSyncToken` of the
//! last page remembers the change number at which the listing started, so an
//! incremental listing returns exactly what changed since. This module must
//! not invent error shapes (use `errors.rs`) nor know about the control API.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Map, Value};

use crate::errors::ApiError;
use crate::state::{AppState, Inner, PageCursor, PageRef, SyncToken};
use crate::util;
use crate::{listing, writes};

const SCOPE: &str = "https://www.googleapis.com/auth/";
const CALLIST_READ: &[&str] = &[
    "calendar",
    "calendar.readonly",
    "calendar.calendarlist",
    "calendar.calendarlist.readonly",
];
pub(crate) const EVENTS_READ: &[&str] = &[
    "calendar",
    "calendar.readonly",
    "calendar.events",
    "calendar.events.readonly",
    "calendar.events.owned",
    "calendar.events.owned.readonly",
    "calendar.app.created",
];
pub(crate) const EVENTS_WRITE: &[&str] = &[
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
            get(listing::events_list).post(writes::events_insert),
        )
        .route(
            "/calendar/v3/calendars/{calendar_id}/events/{event_id}",
            get(writes::events_get)
                .put(writes::events_update)
                .patch(writes::events_patch)
                .delete(writes::events_delete),
        )
        .route(
            "/calendar/v3/calendars/{calendar_id}/events/{event_id}/instances",
            get(listing::events_instances),
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
    if inner.account_by_sub(&sub).is_none() {
        return Err(ApiError::unauthenticated());
    }
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
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn new(raw: Option<String>) -> Self {
        Params(raw.as_deref().map(util::parse_form).unwrap_or_default())
    }
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    pub(crate) fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    pub(crate) fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
    pub(crate) fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
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
    pub(crate) fn max_results(&self, default: usize, max: usize) -> Result<usize, ApiError> {
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
    pub(crate) fn time(&self, key: &str) -> Result<Option<Timestamp>, ApiError> {
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
pub(crate) fn serve_first(inner: &mut Inner, cursor: PageCursor) -> Value {
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
pub(crate) fn continue_cursor(
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

/// The zone `dateTime` values are written in: the `timeZone` parameter, else
/// the calendar's (spec §2.2). `None` when `render_in_calendar_zone` is off
/// and no parameter asks for a zone (values keep their stored offsets).
pub(crate) fn response_zone(
    inner: &Inner,
    params: &Params,
    calendar_tz: &str,
) -> Result<Option<TimeZone>, ApiError> {
    match params.get("timeZone") {
        Some(name) => TimeZone::get(name)
            .map(Some)
            .map_err(|_| ApiError::invalid_param("timeZone", format!("Invalid time zone: {name}"))),
        None if inner.settings.render_in_calendar_zone => {
            Ok(Some(TimeZone::get(calendar_tz).unwrap_or(TimeZone::UTC)))
        }
        None => Ok(None),
    }
}

pub(crate) fn account_ix(inner: &Inner, sub: &str) -> Result<usize, ApiError> {
    inner
        .account_ix_by_sub(sub)
        .ok_or_else(ApiError::unauthenticated)
}

pub(crate) fn role_rank(role: &str) -> u8 {
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
