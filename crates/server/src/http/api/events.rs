//! `GET /api/calendar/events/upcoming/` and `GET /api/calendar/events/`: the
//! caller's occurrences from every enabled calendar, merged in start order.

use axum::extract::State;
use calsync_core::model::{EventOccurrence, EventTime};
use calsync_store::EventRange;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::api::rfc3339;
use crate::http::auth::ApiUser;
use crate::http::error::{AppError, ErrorBody};
use crate::http::extract::{Json, Query};
use crate::quotas::Action;
use crate::state::AppState;

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;
const DEFAULT_DAYS: u32 = 30;
const MAX_DAYS: u32 = 366;
/// A range query answers at most this many occurrences.
const RANGE_LIMIT: u32 = 5000;
const MAX_RANGE: SignedDuration = SignedDuration::from_hours(24 * 366 * 2);

/// One occurrence of an event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventJson {
    pub id: i64,
    pub calendar_id: i64,
    pub connection_id: i64,
    pub provider: String,
    pub title: String,
    pub description: Option<String>,
    pub location: Option<String>,
    /// RFC 3339 for timed events, `YYYY-MM-DD` for all-day events.
    pub start: String,
    /// Exclusive; `YYYY-MM-DD` for all-day events.
    pub end: String,
    pub all_day: bool,
    pub timezone: Option<String>,
    /// The calendar's colour, `#rrggbb`.
    pub color: String,
    pub html_link: Option<String>,
    pub status: String,
    pub recurring: bool,
}

fn time_json(t: EventTime) -> String {
    match t {
        EventTime::Date(d) => d.to_string(),
        EventTime::Instant(i) => rfc3339(i),
    }
}

impl From<EventOccurrence> for EventJson {
    fn from(o: EventOccurrence) -> Self {
        Self {
            id: o.event_id.0,
            calendar_id: o.calendar_id.0,
            connection_id: o.connection_id.0,
            provider: o.provider.as_str().to_owned(),
            title: o.title,
            description: o.description,
            location: o.location,
            all_day: matches!(o.start, EventTime::Date(_)),
            start: time_json(o.start),
            end: time_json(o.end),
            timezone: o.timezone,
            color: o.color,
            html_link: o.html_link,
            status: o.status,
            recurring: o.recurring,
        }
    }
}

/// `?limit=&days=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UpcomingQuery {
    /// At most this many events (1 to 500, default 50).
    pub limit: Option<u32>,
    /// How many days ahead (1 to 366, default 30).
    pub days: Option<u32>,
}

/// `?start=&end=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// RFC 3339 instant, inclusive.
    pub start: String,
    /// RFC 3339 instant, exclusive; at most two years after `start`.
    pub end: String,
}

fn in_bounds(name: &str, value: Option<u32>, default: u32, max: u32) -> Result<u32, AppError> {
    match value.unwrap_or(default) {
        v if (1..=max).contains(&v) => Ok(v),
        v => Err(AppError::bad_request(
            "bad_query",
            format!("{name} must be between 1 and {max}, not {v}"),
        )),
    }
}

fn instant(name: &str, text: &str) -> Result<Timestamp, AppError> {
    text.parse().map_err(|_| {
        AppError::bad_request(
            "bad_query",
            format!("{name} must be an RFC 3339 instant such as 2026-03-01T00:00:00Z"),
        )
    })
}

/// Upcoming events, from now (events already under way included).
#[utoipa::path(get, path = "/api/calendar/events/upcoming/", tag = "events", params(UpcomingQuery),
    responses((status = 200, body = Vec<EventJson>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn upcoming(
    State(state): State<AppState>,
    user: ApiUser,
    Query(query): Query<UpcomingQuery>,
) -> Result<Json<Vec<EventJson>>, AppError> {
    let limit = in_bounds("limit", query.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let days = in_bounds("days", query.days, DEFAULT_DAYS, MAX_DAYS)?;
    let now = state.clock.now();
    let range = EventRange {
        start: now,
        end: now + SignedDuration::from_hours(24 * i64::from(days)),
    };
    let found = state.store.events_in_range(user.id, range, limit).await?;
    Ok(Json(found.into_iter().map(EventJson::from).collect()))
}

/// Occurrences overlapping [start, end): read from the stored horizon (60
/// days back to 400 ahead), or expanded on the fly for ranges beyond it.
#[utoipa::path(get, path = "/api/calendar/events/", tag = "events", params(RangeQuery),
    responses((status = 200, body = Vec<EventJson>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn range(
    State(state): State<AppState>,
    user: ApiUser,
    Query(query): Query<RangeQuery>,
) -> Result<Json<Vec<EventJson>>, AppError> {
    state.quotas.take(user.id, Action::RangeQuery)?;
    let (start, end) = (instant("start", &query.start)?, instant("end", &query.end)?);
    if end <= start || end.duration_since(start) > MAX_RANGE {
        return Err(AppError::bad_request(
            "bad_query",
            "end must be after start, and at most two years later",
        ));
    }
    let range = EventRange { start, end };
    let found = if crate::sync::horizon_covers(start, end, state.clock.now()) {
        state
            .store
            .events_in_range(user.id, range, RANGE_LIMIT)
            .await?
    } else {
        let zone = state.store.user(user.id).await?.timezone;
        let zone = jiff::tz::TimeZone::get(&zone).unwrap_or(jiff::tz::TimeZone::UTC);
        state
            .store
            .expand_range(user.id, range, RANGE_LIMIT, &zone)
            .await?
    };
    Ok(Json(found.into_iter().map(EventJson::from).collect()))
}
