//! Reading events: occurrences joined with their event, calendar and
//! connection, for the Dashboard and the range API. Only enabled calendars
//! count, and only the caller's rows are ever read.

use calsync_core::model::{
    CalendarId, ConnectionId, EventId, EventOccurrence, EventTime, Provider, UserId,
};
use jiff::civil::Date;
use jiff::Timestamp;
use sqlx::Row as _;

use crate::{from_secs, on_pool, to_secs, Result, Store};

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

fn event_time(all_day: bool, date: Option<&str>, instant: i64) -> EventTime {
    match date
        .filter(|_| all_day)
        .and_then(|d| d.parse::<Date>().ok())
    {
        Some(date) => EventTime::Date(date),
        None => EventTime::Instant(from_secs(instant)),
    }
}

impl Store {
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
