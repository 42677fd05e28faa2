//! Microsoft Graph v1.0 reads (spec A2–A4, A6): `/me`, `/me/calendars`
//! (paged), `/me/calendars/{id}`, `calendarView` on the default or a named
//! calendar, and `/me/events/{id}`; plus what every Graph route shares: the
//! Bearer check (401 `InvalidAuthenticationToken`, 403 `ErrorAccessDenied`),
//! `Prefer` header parsing, window parameters and `$top`/`$skip`/`$select`.
//!
//! `calendarView` answers expanded instances (singleInstance, occurrence,
//! exception), never the seriesMaster; the window parameters are read as
//! instants (an offset is honoured, none means UTC) and are not affected by
//! `Prefer: outlook.timezone`, which only changes how `start`/`end` are written.

use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use jiff::Timestamp;
use serde_json::{json, Map, Value};

use super::errors::GraphError;
use super::events::{self, OutZone};
use super::state::{MsCalendar, World};
use super::tz;
use crate::calendar::bearer;
use crate::state::{AppState, Inner};
use crate::util;

pub type GraphResult<T> = Result<T, GraphError>;

/// What a route needs from the token's scopes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Need {
    User,
    Calendars,
}

/// The caller's account index, after the Bearer and scope checks.
pub fn caller(inner: &Inner, headers: &HeaderMap, need: Need) -> GraphResult<usize> {
    let token =
        bearer(headers).ok_or_else(|| GraphError::unauthenticated("Access token is empty."))?;
    let at = inner.ms.access_tokens.get(token).ok_or_else(|| {
        GraphError::unauthenticated("Access token validation failure. Invalid audience.")
    })?;
    if at.expires_at <= inner.now() {
        return Err(GraphError::unauthenticated(
            "Lifetime validation failed, the token is expired.",
        ));
    }
    let ok = match need {
        Need::User => at
            .scopes
            .iter()
            .any(|s| s == "User.Read" || s.starts_with("Calendars.")),
        Need::Calendars => at.scopes.iter().any(|s| s.starts_with("Calendars.")),
    };
    if !ok {
        return Err(GraphError::access_denied());
    }
    inner
        .ms
        .account_ix_by_id(&at.account_id)
        .ok_or_else(|| GraphError::unauthenticated("Access token validation failure."))
}

/// The `Prefer` preferences Graph honours here.
#[derive(Debug, Clone, Default)]
pub struct Prefs {
    pub max_page_size: Option<usize>,
    pub zone: Option<OutZone>,
    pub track_changes: bool,
}

impl Prefs {
    pub fn zone(&self) -> OutZone {
        self.zone.clone().unwrap_or_else(OutZone::utc)
    }

    /// `Preference-Applied` value for what was honoured.
    pub fn applied(&self, delta: bool) -> Option<String> {
        let mut parts = Vec::new();
        if delta {
            parts.push("odata.track-changes".to_owned());
        }
        if let Some(n) = self.max_page_size {
            parts.push(format!("odata.maxpagesize={n}"));
        }
        if let Some(z) = &self.zone {
            parts.push(format!("outlook.timezone=\"{}\"", z.name));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// Reads every `Prefer` header (comma-separated preferences, quoted values).
pub fn prefer(headers: &HeaderMap) -> Prefs {
    let mut p = Prefs::default();
    for value in headers.get_all("prefer") {
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let (k, v) = match item.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim().trim_matches('"')),
                None => (item.trim(), ""),
            };
            match k.to_ascii_lowercase().as_str() {
                "odata.maxpagesize" => p.max_page_size = v.parse().ok().filter(|n| *n > 0),
                "outlook.timezone" => {
                    p.zone = tz::resolve(v).map(|zone| OutZone {
                        name: v.to_owned(),
                        zone,
                    })
                }
                "odata.track-changes" => p.track_changes = true,
                _ => {}
            }
        }
    }
    p
}

/// Query parameter by name, case-insensitively (Graph ignores case; `$` optional).
pub fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let bare = name.trim_start_matches('$');
    q.iter()
        .find(|(k, _)| {
            let k = k.trim_start_matches('$');
            k.eq_ignore_ascii_case(bare)
        })
        .map(|(_, v)| v.as_str())
}

/// `startDateTime`/`endDateTime`: with an offset as given, without one as UTC.
pub fn window_time(text: &str) -> Option<Timestamp> {
    let t = text.trim();
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Some(ts);
    }
    let dt = tz::parse_graph_datetime(t)?;
    dt.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

/// Both window parameters, or Graph's 400.
pub fn window(q: &[(String, String)]) -> GraphResult<((Timestamp, Timestamp), (String, String))> {
    let (Some(s), Some(e)) = (param(q, "startDateTime"), param(q, "endDateTime")) else {
        return Err(GraphError::invalid_parameter(
            "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
        ));
    };
    let parse = |v: &str, name: &str| {
        window_time(v).ok_or_else(|| {
            GraphError::invalid_parameter(format!(
                "The parameter '{name}' has an invalid value: '{v}'."
            ))
        })
    };
    Ok((
        (parse(s, "StartDateTime")?, parse(e, "EndDateTime")?),
        (s.to_owned(), e.to_owned()),
    ))
}

pub fn with_headers(mut resp: Response, applied: Option<String>) -> Response {
    let id = util::random_token(12);
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("request-id", v);
    }
    if let Some(a) = applied.and_then(|a| HeaderValue::from_str(&a).ok()) {
        resp.headers_mut().insert("preference-applied", a);
    }
    resp
}

// ---------------------------------------------------------------- /me

pub(crate) async fn me(State(state): State<AppState>, headers: HeaderMap) -> GraphResult<Response> {
    let inner = state.lock();
    let ix = caller(&inner, &headers, Need::User)?;
    let a = &inner.ms.accounts[ix];
    let (given, surname) = match a.display_name.split_once(' ') {
        Some((g, s)) => (json!(g), json!(s)),
        None => (json!(a.display_name), Value::Null),
    };
    Ok(with_headers(
        Json(json!({
            "@odata.context": format!("{}/v1.0/$metadata#users/$entity", state.base_url),
            "businessPhones": [],
            "displayName": a.display_name,
            "givenName": given,
            "surname": surname,
            "jobTitle": Value::Null,
            "mail": a.mail,
            "mobilePhone": Value::Null,
            "officeLocation": Value::Null,
            "preferredLanguage": "en-US",
            "userPrincipalName": a.upn,
            "id": a.id,
        }))
        .into_response(),
        None,
    ))
}

// ---------------------------------------------------------------- calendars

pub fn calendar_json(c: &MsCalendar) -> Value {
    json!({
        "id": c.id,
        "name": c.name,
        "color": c.color,
        "hexColor": c.hex_color,
        "groupClassId": "0006f0b7-0000-0000-c000-000000000046",
        "isDefaultCalendar": c.is_default,
        "changeKey": c.change_key,
        "canShare": c.can_edit && c.is_default,
        "canViewPrivateItems": c.can_edit,
        "canEdit": c.can_edit,
        "isRemovable": !c.is_default,
        "isTallyingResponses": c.is_default,
        "allowedOnlineMeetingProviders": ["teamsForBusiness"],
        "defaultOnlineMeetingProvider": "teamsForBusiness",
        "owner": {"name": c.owner_name, "address": c.owner_address},
    })
}

/// Page size: `$top`, else `Prefer: odata.maxpagesize`, else the default; capped.
pub fn page_size(ms: &World, q: &[(String, String)], prefs: &Prefs) -> GraphResult<usize> {
    let top = match param(q, "$top") {
        Some(t) => Some(t.parse::<usize>().map_err(|_| {
            GraphError::bad_request(format!("Invalid value '{t}' for query option $top."))
        })?),
        None => None,
    };
    Ok(top
        .or(prefs.max_page_size)
        .unwrap_or(ms.settings.default_page_size)
        .clamp(1, ms.settings.max_page_size.max(1)))
}

fn skip(q: &[(String, String)]) -> GraphResult<usize> {
    match param(q, "$skip") {
        Some(s) => s.parse().map_err(|_| {
            GraphError::bad_request(format!("Invalid value '{s}' for query option $skip."))
        }),
        None => Ok(0),
    }
}

/// `$select`: keep the named properties (plus `id` and the etag). Graph
/// also drops created/lastModified when `$select` is used (spec A3).
fn select(mut v: Value, fields: Option<&str>) -> Value {
    let Some(fields) = fields else { return v };
    let keep: Vec<&str> = fields.split(',').map(str::trim).collect();
    if let Some(m) = v.as_object_mut() {
        m.retain(|k, _| {
            k == "id"
                || k == "@odata.etag"
                || (keep.iter().any(|f| f.eq_ignore_ascii_case(k))
                    && k != "createdDateTime"
                    && k != "lastModifiedDateTime")
        });
    }
    v
}

fn next_link(base: &str, path: &str, q: &[(String, String)], top: usize, next: usize) -> String {
    let mut pairs: Vec<(String, String)> = q
        .iter()
        .filter(|(k, _)| {
            let k = k.trim_start_matches('$').to_ascii_lowercase();
            k != "top" && k != "skip"
        })
        .cloned()
        .collect();
    pairs.push(("$top".into(), top.to_string()));
    pairs.push(("$skip".into(), next.to_string()));
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    format!("{base}{path}?{}", util::build_query(&refs))
}

pub(crate) async fn list_calendars(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> GraphResult<Response> {
    let q = util::parse_form(raw.as_deref().unwrap_or(""));
    let prefs = prefer(&headers);
    let inner = state.lock();
    let ix = caller(&inner, &headers, Need::Calendars)?;
    let top = page_size(&inner.ms, &q, &prefs)?;
    let from = skip(&q)?;
    let all = &inner.ms.accounts[ix].calendars;
    let page: Vec<Value> = all
        .iter()
        .skip(from)
        .take(top)
        .map(|c| select(calendar_json(c), param(&q, "$select")))
        .collect();
    let mut body = json!({
        "@odata.context": format!("{}/v1.0/$metadata#users('{}')/calendars", state.base_url, inner.ms.accounts[ix].id),
        "value": page,
    });
    if from + top < all.len() {
        body["@odata.nextLink"] =
            json!(next_link(&state.base_url, uri.path(), &q, top, from + top));
    }
    Ok(with_headers(
        Json(body).into_response(),
        prefs.applied(false),
    ))
}

/// Resolves a calendar path segment (`None` = the default calendar).
pub fn calendar_ix(ms: &World, account_ix: usize, id: Option<&str>) -> GraphResult<usize> {
    ms.calendar_ix(account_ix, id.unwrap_or("default"))
        .ok_or_else(GraphError::item_not_found)
}

pub(crate) async fn get_calendar(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> GraphResult<Response> {
    let inner = state.lock();
    let ix = caller(&inner, &headers, Need::Calendars)?;
    let c = calendar_ix(&inner.ms, ix, Some(&id))?;
    Ok(with_headers(
        Json(calendar_json(&inner.ms.accounts[ix].calendars[c])).into_response(),
        None,
    ))
}

pub(crate) async fn get_default_calendar(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> GraphResult<Response> {
    let inner = state.lock();
    let ix = caller(&inner, &headers, Need::Calendars)?;
    let c = calendar_ix(&inner.ms, ix, None)?;
    Ok(with_headers(
        Json(calendar_json(&inner.ms.accounts[ix].calendars[c])).into_response(),
        None,
    ))
}

// ---------------------------------------------------------------- calendarView

pub(crate) async fn view_default(
    state: State<AppState>,
    uri: OriginalUri,
    headers: HeaderMap,
    raw: RawQuery,
) -> GraphResult<Response> {
    view(state, None, uri, headers, raw)
}

pub(crate) async fn view_named(
    state: State<AppState>,
    Path(id): Path<String>,
    uri: OriginalUri,
    headers: HeaderMap,
    raw: RawQuery,
) -> GraphResult<Response> {
    view(state, Some(id), uri, headers, raw)
}

fn view(
    State(state): State<AppState>,
    cal: Option<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> GraphResult<Response> {
    let q = util::parse_form(raw.as_deref().unwrap_or(""));
    let prefs = prefer(&headers);
    let inner = state.lock();
    let ix = caller(&inner, &headers, Need::Calendars)?;
    let c = calendar_ix(&inner.ms, ix, cal.as_deref())?;
    let ((ws, we), _) = window(&q)?;
    let top = page_size(&inner.ms, &q, &prefs)?;
    let from = skip(&q)?;
    let account = &inner.ms.accounts[ix];
    let all = events::instances(&account.calendars[c], ws, we);
    let zone = prefs.zone();
    let page: Vec<Value> = all
        .iter()
        .skip(from)
        .take(top)
        .map(|i| {
            select(
                events::render(i, &zone, account, &state.base_url),
                param(&q, "$select"),
            )
        })
        .collect();
    let mut body = json!({
        "@odata.context": format!("{}/v1.0/$metadata#users('{}')/calendars('{}')/calendarView", state.base_url, account.id, account.calendars[c].id),
        "value": page,
    });
    if from + top < all.len() {
        body["@odata.nextLink"] =
            json!(next_link(&state.base_url, uri.path(), &q, top, from + top));
    }
    Ok(with_headers(
        Json(body).into_response(),
        prefs.applied(false),
    ))
}

// ---------------------------------------------------------------- /me/events/{id}

/// One event by id: a stored one (masters included) or an occurrence.
pub(crate) async fn get_event(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> GraphResult<Response> {
    let prefs = prefer(&headers);
    let inner = state.lock();
    let ix = caller(&inner, &headers, Need::Calendars)?;
    let account = &inner.ms.accounts[ix];
    for cal in &account.calendars {
        if let Some(ev) = cal.events.get(&id) {
            let mut v = events::render_stored(ev, account, &state.base_url);
            if let Some(z) = &prefs.zone {
                v = rezone(v, ev, z);
            }
            return Ok(with_headers(Json(v).into_response(), prefs.applied(false)));
        }
        if let Some((master, at)) = events::parse_occurrence_id(&id) {
            if cal.events.contains_key(&master) {
                // An occurrence starting at `at` overlaps [at, at + 1 s).
                let stop = at
                    .checked_add(jiff::SignedDuration::from_secs(1))
                    .unwrap_or(at);
                if let Some(i) = events::instances(cal, at, stop)
                    .into_iter()
                    .find(|i| i.id == id)
                {
                    let v = events::render(&i, &prefs.zone(), account, &state.base_url);
                    return Ok(with_headers(Json(v).into_response(), prefs.applied(false)));
                }
            }
        }
    }
    Err(GraphError::item_not_found())
}

/// A stored event rendered in UTC, rewritten into the preferred zone.
fn rezone(mut v: Value, ev: &super::state::MsEvent, z: &OutZone) -> Value {
    if ev.is_all_day {
        for k in ["start", "end"] {
            v[k]["timeZone"] = json!(z.name);
        }
        return v;
    }
    for (k, at) in [("start", ev.start_instant()), ("end", ev.end_instant())] {
        v[k] = json!({"dateTime": tz::graph_datetime(at.to_zoned(z.zone.clone()).datetime()), "timeZone": z.name});
    }
    v
}

/// Unknown Graph paths: Graph answers 400 for a segment it does not know.
pub(crate) async fn unknown_segment(OriginalUri(uri): OriginalUri) -> GraphError {
    let seg = uri.path().rsplit('/').next().unwrap_or("");
    GraphError::new(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        format!("Resource not found for the segment '{seg}'."),
    )
}

/// Graph-shaped JSON object helper for the control API.
pub fn object(body: Value) -> GraphResult<Map<String, Value>> {
    match body {
        Value::Object(m) => Ok(m),
        _ => Err(GraphError::bad_request("expected a JSON object")),
    }
}
