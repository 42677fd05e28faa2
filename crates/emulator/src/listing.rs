//! `events.list` and `events.instances` (spec §2.2, §2.3): full and
//! incremental listings, the filters and the parameters forbidden with
//! `syncToken`, cancelled items in their minimal shapes, series expansion for
//! `singleEvents=true`. A listing is computed once, frozen into a snapshot and
//! served page by page (`calendar::serve_first`). Read-only: never changes
//! events.

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::Json;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Map, Value};

use crate::calendar::{
    account_ix, authenticate, continue_cursor, response_zone, serve_first, Params, EVENTS_READ,
};
use crate::errors::ApiError;
use crate::events;
use crate::state::{AppState, PageCursor, StoredEvent, SyncToken};
use crate::util;

/// How far `singleEvents=true` expands open-ended series without `timeMax`.
const DEFAULT_EXPANSION_DAYS: i64 = 730;
/// Instances per series in one listing (Google also caps expansion).
const MAX_INSTANCES: usize = 2500;
/// `updatedMin` older than this answers 410 updatedMinTooLongAgo.
const UPDATED_MIN_MAX_AGE_DAYS: i64 = 30;

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

pub(crate) async fn events_list(
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
    let zone = response_zone(&inner, &params, &cal.time_zone)?;
    let cursor = PageCursor {
        sub,
        scope: format!("events:{}", cal.id),
        items: collected
            .into_iter()
            .map(|(.., item)| match &zone {
                Some(tz) => events::in_zone(item, tz),
                None => item,
            })
            .collect(),
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

pub(crate) async fn events_instances(
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
    let zone = response_zone(&inner, &params, &cal.time_zone)?;
    let cursor = PageCursor {
        sub,
        scope: format!("instances:{}:{event_id}", cal.id),
        items: items
            .into_iter()
            .map(|(_, v)| match &zone {
                Some(tz) => events::in_zone(v, tz),
                None => v,
            })
            .collect(),
        max_results: max,
        envelope,
        sync: None,
    };
    Ok(Json(serve_first(&mut inner, cursor)))
}
