//! Reading events: occurrences joined with their event, calendar and
//! connection, for the Dashboard and the range API. Only enabled calendars
//! count, and only the caller's rows are ever read.

use calsync_core::model::{
    CalendarId, ConnectionId, EventId, EventOccurrence, EventTime, Provider, UserId,
};
use jiff::civil::Date;
use jiff::Timestamp;
use std::collections::BTreeMap;

use calsync_core::changes::{EventStart, EventStatus, RemoteEvent};
use calsync_core::recur::{Time, Window};
use jiff::tz::TimeZone;
use sqlx::Row as _;

use crate::sync::{plan_series, remote_event_from_row, time_columns};
use crate::{from_secs, on_pool, to_secs, Result, Store, StoreError};

/// A half-open range [start, end) of instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRange {
    pub start: Timestamp,
    pub end: Timestamp,
}

const OCCURRENCE_QUERY: &str = "\
    SELECT e.id, e.calendar_id, c.connection_id, n.provider, e.title, e.description, e.location, \
           o.all_day, o.start_at, o.end_at, o.start_date, o.end_date, e.timezone, c.color, e.html_link, e.status, \
           CASE WHEN e.recurrence IS NOT NULL OR e.recurring_event_id IS NOT NULL THEN 1 ELSE 0 END AS recurring \
    FROM occurrences o \
    JOIN events e ON e.id = o.event_id \
    JOIN calendars c ON c.id = o.calendar_id \
    JOIN connections n ON n.id = c.connection_id \
    WHERE o.user_id = $1 AND c.enabled = $2 AND o.end_at > $3 AND o.start_at < $4 AND e.status <> 'cancelled' \
      AND o.start_at >= $3 - (SELECT COALESCE(MAX(max_span), 0) FROM calendars WHERE user_id = $1) \
    ORDER BY o.start_at, o.end_at, o.id \
    LIMIT $5";

/// Reads one joined row; a macro because each backend has its own row type.
macro_rules! occurrence_from_row {
    ($row:expr) => {{
        let row = $row;
        let all_day: bool = row.try_get(7)?;
        let start_date: Option<String> = row.try_get(10)?;
        let end_date: Option<String> = row.try_get(11)?;
        let provider: String = row.try_get(3)?;
        let recurring: i32 = row.try_get(16)?;
        let occurrence = EventOccurrence {
            event_id: EventId(row.try_get(0)?),
            calendar_id: CalendarId(row.try_get(1)?),
            connection_id: ConnectionId(row.try_get(2)?),
            provider: Provider::Ics,
            title: row.try_get(4)?,
            description: row.try_get(5)?,
            location: row.try_get(6)?,
            start: event_time(all_day, start_date.as_deref(), row.try_get(8)?),
            end: event_time(all_day, end_date.as_deref(), row.try_get(9)?),
            timezone: row.try_get(12)?,
            color: row.try_get(13)?,
            html_link: row.try_get(14)?,
            status: row.try_get(15)?,
            recurring: recurring != 0,
        };
        Ok::<_, sqlx::Error>(Provider::parse(&provider).map(|provider| EventOccurrence {
            provider,
            ..occurrence
        }))
    }};
}

/// An expanded time as the API shows it: dates stay dates, everything else
/// becomes an instant (floating times read in `zone`).
fn occurrence_time(value: &Time, zone: &TimeZone) -> EventTime {
    match value {
        Time::Date(d) => EventTime::Date(*d),
        other => EventTime::Instant(
            other
                .timestamp_in(zone)
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
        ),
    }
}

fn event_time(all_day: bool, date: Option<&str>, instant: i64) -> EventTime {
    match date
        .filter(|_| all_day)
        .and_then(|d| d.parse::<Date>().ok())
    {
        Some(date) => EventTime::Date(date),
        None => EventTime::Instant(from_secs(instant)),
    }
}

/// The joined event columns for an expansion on the fly: the stored event
/// (as `sync::EVENT_COLUMNS`, prefixed) and where it is shown.
const EXPANDABLE_QUERY: &str = "\
    SELECT e.id, e.external_id, e.etag, e.status, e.title, e.description, e.location, e.all_day, \
           e.start_at, e.end_at, e.start_date, e.end_date, e.timezone, e.recurrence, e.recurring_event_id, \
           e.original_start, e.html_link, e.remote_updated_at, \
           e.calendar_id, c.connection_id, n.provider, c.color \
    FROM events e \
    JOIN calendars c ON c.id = e.calendar_id \
    JOIN connections n ON n.id = c.connection_id \
    WHERE e.user_id = $1 AND c.enabled = $2 \
      AND (e.recurrence IS NOT NULL OR e.recurring_event_id IS NOT NULL OR (e.start_at < $3 AND e.end_at >= $4))";

/// A stored event with where it is shown.
struct Placed {
    id: i64,
    event: RemoteEvent,
    calendar_id: i64,
    connection_id: i64,
    provider: Provider,
    color: String,
}

impl Store {
    /// The user's occurrences overlapping `range`, expanded now from the
    /// stored events rather than read from the materialised horizon: for
    /// ranges beyond it (far back or more than 400 days ahead). `zone` is the
    /// user's, in which all-day and floating times are placed.
    pub async fn expand_range(
        &self,
        user: UserId,
        range: EventRange,
        limit: u32,
        zone: &TimeZone,
    ) -> Result<Vec<EventOccurrence>> {
        let placed = on_pool!(self, pool => {
            let rows = sqlx::query(EXPANDABLE_QUERY)
                .bind(user.0)
                .bind(true)
                .bind(to_secs(range.end))
                .bind(to_secs(range.start) - 86_400)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| {
                    let (id, event) = remote_event_from_row!(row)?;
                    let calendar_id: i64 = row.try_get(18)?;
                    let connection_id: i64 = row.try_get(19)?;
                    let provider: String = row.try_get(20)?;
                    let color: String = row.try_get(21)?;
                    Ok::<_, sqlx::Error>(Provider::parse(&provider).map(|provider| Placed {
                        id,
                        event,
                        calendar_id,
                        connection_id,
                        provider,
                        color,
                    }))
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        let placed: Vec<Placed> = placed.into_iter().flatten().collect();
        // Expanding every series of a user is CPU work: off the async
        // runtime, so requests and rounds keep being served meanwhile.
        let zone = zone.clone();
        tokio::task::spawn_blocking(move || expand_placed(&placed, range, limit, &zone))
            .await
            .map_err(|_| StoreError::Expansion)
    }

    /// The user's occurrences overlapping `range`, in start order, at most `limit`.
    pub async fn events_in_range(
        &self,
        user: UserId,
        range: EventRange,
        limit: u32,
    ) -> Result<Vec<EventOccurrence>> {
        let found = on_pool!(self, pool => {
            let rows = sqlx::query(OCCURRENCE_QUERY)
                .bind(user.0)
                .bind(true)
                .bind(to_secs(range.start))
                .bind(to_secs(range.end))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?;
            rows.iter().map(|row| occurrence_from_row!(row)).collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(found.into_iter().flatten().collect())
    }
}

/// The occurrences of `placed` events overlapping `range`, in start order,
/// at most `limit`; `zone` places all-day and floating times.
fn expand_placed(
    placed: &[Placed],
    range: EventRange,
    limit: u32,
    zone: &TimeZone,
) -> Vec<EventOccurrence> {
    let window = Window {
        from: range.start,
        to: range.end,
        floating_zone: zone.clone(),
        limit: 10_000,
    };
    let mut series: BTreeMap<(i64, &str), Vec<(i64, RemoteEvent)>> = BTreeMap::new();
    for p in placed {
        let key = p
            .event
            .recurring_event_id
            .as_deref()
            .unwrap_or(&p.event.external_id);
        series
            .entry((p.calendar_id, key))
            .or_default()
            .push((p.id, p.event.clone()));
    }
    let mut found = Vec::new();
    for ((calendar_id, key), events) in &series {
        for planned in plan_series(key, events, &window) {
            let Some(owner) = placed.iter().find(|p| {
                p.calendar_id == *calendar_id && p.event.external_id == planned.external_id
            }) else {
                continue;
            };
            let start = occurrence_time(&planned.start, zone);
            let end = occurrence_time(&planned.end, zone);
            let (start_at, _) = time_columns(&planned.start, zone);
            let (end_at, _) = time_columns(&planned.end, zone);
            let overlaps = start_at < to_secs(range.end)
                && (end_at > to_secs(range.start)
                    || (end_at <= start_at && start_at >= to_secs(range.start)));
            if !overlaps || owner.event.status == EventStatus::Cancelled {
                continue;
            }
            found.push((
                start_at,
                end_at,
                owner.id,
                EventOccurrence {
                    event_id: EventId(owner.id),
                    calendar_id: CalendarId(owner.calendar_id),
                    connection_id: ConnectionId(owner.connection_id),
                    provider: owner.provider,
                    title: owner.event.title.clone(),
                    description: owner.event.description.clone(),
                    location: owner.event.location.clone(),
                    start,
                    end,
                    timezone: match &owner.event.start {
                        EventStart::DateTime { zone, .. } => zone.clone(),
                        EventStart::Date(_) => None,
                    },
                    color: owner.color.clone(),
                    html_link: owner.event.html_link.clone(),
                    status: owner.event.status.as_str().to_owned(),
                    recurring: !owner.event.recurrence.is_empty()
                        || owner.event.recurring_event_id.is_some(),
                },
            ));
        }
    }
    found.sort_by_key(|(start, end, id, _)| (*start, *end, *id));
    found
        .into_iter()
        .take(limit as usize)
        .map(|(_, _, _, o)| o)
        .collect()
}
