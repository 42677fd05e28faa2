//! Applying a provider's changes: one page of a calendar's changes, its
//! occurrences and the new cursor, in ONE transaction (design.md §2), so a
//! crash leaves either the old state and cursor or the new ones.
//!
//! Full rounds are mark-and-sweep in the database itself: the calendar's
//! `sync_round` goes up when a full round starts, every event a page brings is
//! stamped with it, and the last page deletes what was not stamped. A round
//! interrupted by a crash resumes from its stored page token.

use std::collections::BTreeSet;

use calsync_core::changes::{EventChange, EventStart, PageNext, RemoteEvent};
use calsync_core::model::{CalendarId, UserId};
use calsync_core::plan::{series_occurrences, Cursor, PlannedOccurrence};
use calsync_core::recur::{Time, Window};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use sqlx::Row as _;

use crate::{from_secs, on_pool, to_secs, Result, Store, StoreError};

/// One page to apply.
#[derive(Debug)]
pub struct PageUpdate<'a> {
    pub changes: &'a [EventChange],
    /// This page begins a full round (no cursor, or the provider refused the old one).
    pub starts_full_round: bool,
    /// What follows this page: another page of the round, or the round's end
    /// with the token the next round starts from.
    pub next: &'a PageNext,
    /// The materialised horizon, in the user's zone.
    pub window: &'a Window,
    pub now: Timestamp,
}

/// What applying a page did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageOutcome {
    pub upserted: u64,
    pub removed: u64,
    /// Events deleted by the sweep at the end of a full round.
    pub swept: u64,
}

impl PageOutcome {
    /// Changes of any kind.
    pub fn total(&self) -> u64 {
        self.upserted + self.removed + self.swept
    }
}

pub(crate) const EVENT_COLUMNS: &str = "id, external_id, etag, status, title, description, location, all_day, start_at, end_at, \
     start_date, end_date, timezone, recurrence, recurring_event_id, original_start, html_link, remote_updated_at";

fn encode_original(value: &EventStart) -> String {
    match value {
        EventStart::Date(d) => d.to_string(),
        EventStart::DateTime { instant, .. } => instant.to_string(),
    }
}

pub(crate) fn decode_original(text: &str, zone: Option<&str>) -> Option<EventStart> {
    if let Ok(date) = text.parse::<Date>() {
        return Some(EventStart::Date(date));
    }
    let instant = text.parse::<Timestamp>().ok()?;
    Some(EventStart::DateTime {
        instant,
        zone: zone.map(str::to_owned),
    })
}

/// Stored columns of a provider time: the instant (for a date, midnight in
/// `zone`), and the date itself for all-day values.
pub(crate) fn time_columns(value: &Time, zone: &TimeZone) -> (i64, Option<String>) {
    let instant = value.timestamp_in(zone).map_or(0, to_secs);
    match value {
        Time::Date(d) => (instant, Some(d.to_string())),
        _ => (instant, None),
    }
}

fn start_columns(value: &EventStart) -> (Option<i64>, Option<String>) {
    match value {
        EventStart::Date(d) => (
            d.to_zoned(TimeZone::UTC)
                .ok()
                .map(|z| to_secs(z.timestamp())),
            Some(d.to_string()),
        ),
        EventStart::DateTime { instant, .. } => (Some(to_secs(*instant)), None),
    }
}

/// Reads a stored event back into the provider-neutral form; a macro because
/// each backend has its own row type.
macro_rules! remote_event_from_row {
    ($row:expr) => {{
        let row = $row;
        let all_day: bool = row.try_get(7)?;
        let zone: Option<String> = row.try_get(12)?;
        let time = |at: Option<i64>, date: Option<String>| -> EventStart {
            match date
                .filter(|_| all_day)
                .and_then(|d| d.parse::<::jiff::civil::Date>().ok())
            {
                Some(d) => ::calsync_core::changes::EventStart::Date(d),
                None => ::calsync_core::changes::EventStart::DateTime {
                    instant: $crate::from_secs(at.unwrap_or(0)),
                    zone: zone.clone(),
                },
            }
        };
        let recurrence: Option<String> = row.try_get(13)?;
        let original: Option<String> = row.try_get(15)?;
        let status: String = row.try_get(3)?;
        let event = ::calsync_core::changes::RemoteEvent {
            external_id: row.try_get(1)?,
            etag: row.try_get(2)?,
            status: ::calsync_core::changes::EventStatus::parse(&status),
            title: row.try_get(4)?,
            description: row.try_get(5)?,
            location: row.try_get(6)?,
            start: time(row.try_get(8)?, row.try_get(10)?),
            end: time(row.try_get(9)?, row.try_get(11)?),
            recurrence: recurrence
                .map(|r| r.lines().map(str::to_owned).collect())
                .unwrap_or_default(),
            recurring_event_id: row.try_get(14)?,
            original_start: original
                .and_then(|o| $crate::sync::decode_original(&o, zone.as_deref())),
            html_link: row.try_get(16)?,
            updated: row.try_get::<Option<i64>, _>(17)?.map(from_secs),
        };
        let id: i64 = row.try_get(0)?;
        Ok::<_, sqlx::Error>((id, event))
    }};
}
pub(crate) use remote_event_from_row;

/// Replaces the stored occurrences of the series `keys` of a calendar with
/// their expansion over `window`, inside the caller's transaction; a macro
/// because each backend has its own transaction type.
macro_rules! rematerialize {
    ($tx:expr, $user:expr, $calendar:expr, $keys:expr, $window:expr, $zone:expr) => {{
        let tx = $tx;
        for key in $keys {
            // Two indexed lookups: SQLite plans the OR of both as a scan of
            // the calendar's events, which made large initial syncs quadratic.
            let rows = sqlx::query(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE calendar_id = $1 AND external_id = $2 \
                 UNION ALL \
                 SELECT {EVENT_COLUMNS} FROM events WHERE calendar_id = $1 AND recurring_event_id = $2 AND external_id <> $2"
            ))
            .bind($calendar.0)
            .bind(key)
            .fetch_all(&mut **tx)
            .await?;
            let events = rows.iter().map(|row| remote_event_from_row!(row)).collect::<Result<Vec<_>, sqlx::Error>>()?;
            for (id, _) in &events {
                sqlx::query("DELETE FROM occurrences WHERE event_id = $1").bind(id).execute(&mut **tx).await?;
            }
            let mut longest = 0i64;
            for planned in plan_series(key, &events, $window) {
                let Some((event_id, _)) = events.iter().find(|(_, e)| e.external_id == planned.external_id) else { continue };
                let (start_at, start_date) = time_columns(&planned.start, $zone);
                let (end_at, end_date) = time_columns(&planned.end, $zone);
                longest = longest.max(end_at - start_at);
                sqlx::query(
                    "INSERT INTO occurrences (event_id, user_id, calendar_id, start_at, end_at, all_day, start_date, end_date) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(event_id)
                .bind($user.0)
                .bind($calendar.0)
                .bind(start_at)
                .bind(end_at.max(start_at))
                .bind(start_date.is_some())
                .bind(start_date)
                .bind(end_date)
                .execute(&mut **tx)
                .await?;
            }
            // Range reads start their index walk this far before the range;
            // the bound only grows, which keeps it safe.
            sqlx::query("UPDATE calendars SET max_span = $1 WHERE id = $2 AND max_span < $1")
                .bind(longest)
                .bind($calendar.0)
                .execute(&mut **tx)
                .await?;
        }
    }};
}

impl Store {
    /// The calendar's stored cursor; `None` before the first round, or when
    /// the stored form is unreadable (the next round is then a full one).
    pub async fn calendar_cursor(
        &self,
        user: UserId,
        calendar: CalendarId,
    ) -> Result<Option<Cursor>> {
        let sql = "SELECT cursor FROM calendars WHERE id = $1 AND user_id = $2";
        let row: Option<(Option<String>,)> = on_pool!(self, pool => sqlx::query_as(sql).bind(calendar.0).bind(user.0).fetch_optional(pool).await)?;
        let (cursor,) = row.ok_or(StoreError::NotFound)?;
        Ok(cursor.as_deref().and_then(Cursor::decode))
    }

    /// Forgets the calendar's cursor, so the next round is a full one.
    pub async fn reset_calendar_cursor(&self, user: UserId, calendar: CalendarId) -> Result<()> {
        let sql = "UPDATE calendars SET cursor = NULL WHERE id = $1 AND user_id = $2";
        on_pool!(self, pool => sqlx::query(sql).bind(calendar.0).bind(user.0).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Applies one page of changes with its occurrences and cursor, atomically.
    pub async fn apply_page(
        &self,
        user: UserId,
        calendar: CalendarId,
        page: &PageUpdate<'_>,
    ) -> Result<PageOutcome> {
        let zone = page.window.floating_zone.clone();
        let mut outcome = PageOutcome::default();
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(crate::write_begin(pool)).await?;
            if page.starts_full_round {
                sqlx::query("UPDATE calendars SET sync_round = sync_round + 1 WHERE id = $1 AND user_id = $2")
                    .bind(calendar.0).bind(user.0).execute(&mut *tx).await?;
            }
            let state: Option<(i64, Option<String>)> =
                sqlx::query_as("SELECT sync_round, cursor FROM calendars WHERE id = $1 AND user_id = $2")
                    .bind(calendar.0).bind(user.0).fetch_optional(&mut *tx).await?;
            let (round, previous) = state.ok_or(StoreError::NotFound)?;
            let in_full_round = page.starts_full_round
                || matches!(previous.as_deref().and_then(Cursor::decode), Some(Cursor::Page { full: true, .. }));

            let mut series: BTreeSet<String> = BTreeSet::new();
            for change in page.changes {
                let upserts: &[RemoteEvent] = match change {
                    EventChange::Upsert(event) => std::slice::from_ref(event.as_ref()),
                    EventChange::Removed { external_id } => {
                        let gone: Option<(Option<String>,)> = sqlx::query_as(
                            "DELETE FROM events WHERE calendar_id = $1 AND external_id = $2 RETURNING recurring_event_id",
                        )
                        .bind(calendar.0)
                        .bind(external_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                        if let Some((parent,)) = gone {
                            series.insert(parent.unwrap_or_else(|| external_id.clone()));
                            outcome.removed += 1;
                        }
                        &[]
                    }
                    EventChange::Replace { group, events } => {
                        let stored: Vec<(String, Option<String>)> = sqlx::query_as(
                            "SELECT external_id, recurring_event_id FROM events \
                             WHERE calendar_id = $1 AND (external_id = $2 OR recurring_event_id = $2)",
                        )
                        .bind(calendar.0)
                        .bind(group)
                        .fetch_all(&mut *tx)
                        .await?;
                        for (external_id, parent) in stored {
                            if events.iter().any(|e| e.external_id == external_id) {
                                continue;
                            }
                            sqlx::query("DELETE FROM events WHERE calendar_id = $1 AND external_id = $2")
                                .bind(calendar.0)
                                .bind(&external_id)
                                .execute(&mut *tx)
                                .await?;
                            series.insert(parent.unwrap_or(external_id));
                            outcome.removed += 1;
                        }
                        events
                    }
                };
                for event in upserts {
                    let (start_at, start_date) = start_columns(&event.start);
                    let (end_at, end_date) = start_columns(&event.end);
                    let zone_name = match &event.start {
                        EventStart::DateTime { zone, .. } => zone.clone(),
                        EventStart::Date(_) => None,
                    };
                    let recurrence = (!event.recurrence.is_empty()).then(|| event.recurrence.join("\n"));
                    sqlx::query(
                        "INSERT INTO events (calendar_id, user_id, external_id, etag, status, title, description, location, \
                             all_day, start_at, end_at, start_date, end_date, timezone, recurrence, recurring_event_id, \
                             original_start, html_link, remote_updated_at, sync_round) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) \
                         ON CONFLICT (calendar_id, external_id) DO UPDATE SET \
                             etag = excluded.etag, status = excluded.status, title = excluded.title, \
                             description = excluded.description, location = excluded.location, all_day = excluded.all_day, \
                             start_at = excluded.start_at, end_at = excluded.end_at, start_date = excluded.start_date, \
                             end_date = excluded.end_date, timezone = excluded.timezone, recurrence = excluded.recurrence, \
                             recurring_event_id = excluded.recurring_event_id, original_start = excluded.original_start, \
                             html_link = excluded.html_link, remote_updated_at = excluded.remote_updated_at, \
                             sync_round = excluded.sync_round",
                    )
                    .bind(calendar.0)
                    .bind(user.0)
                    .bind(&event.external_id)
                    .bind(&event.etag)
                    .bind(event.status.as_str())
                    .bind(&event.title)
                    .bind(&event.description)
                    .bind(&event.location)
                    .bind(matches!(event.start, EventStart::Date(_)))
                    .bind(start_at)
                    .bind(end_at)
                    .bind(start_date)
                    .bind(end_date)
                    .bind(zone_name)
                    .bind(recurrence)
                    .bind(&event.recurring_event_id)
                    .bind(event.original_start.as_ref().map(encode_original))
                    .bind(&event.html_link)
                    .bind(event.updated.map(to_secs))
                    .bind(round)
                    .execute(&mut *tx)
                    .await?;
                    series.insert(event.recurring_event_id.clone().unwrap_or_else(|| event.external_id.clone()));
                    outcome.upserted += 1;
                }
            }

            if let (PageNext::Done { .. }, true) = (page.next, in_full_round) {
                let stale: Vec<(String, Option<String>)> = sqlx::query_as(
                    "DELETE FROM events WHERE calendar_id = $1 AND sync_round < $2 RETURNING external_id, recurring_event_id",
                )
                .bind(calendar.0)
                .bind(round)
                .fetch_all(&mut *tx)
                .await?;
                outcome.swept = stale.len() as u64;
                series.extend(stale.into_iter().map(|(id, parent)| parent.unwrap_or(id)));
            }

            rematerialize!(&mut tx, user, calendar, &series, page.window, &zone);

            let (next, synced_at) = match page.next {
                PageNext::Page(token) => (Cursor::Page { token: token.clone(), full: in_full_round }, None),
                PageNext::Done { sync_token } => (Cursor::Sync(sync_token.clone()), Some(to_secs(page.now))),
            };
            sqlx::query("UPDATE calendars SET cursor = $1, last_synced_at = COALESCE($2, last_synced_at) WHERE id = $3")
                .bind(next.encode())
                .bind(synced_at)
                .bind(calendar.0)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(outcome)
    }
}

impl Store {
    /// Re-expands every recurring series of a calendar when the stored
    /// horizon ends more than a day before `window` does, so that occurrences
    /// keep reaching 400 days ahead as time passes. Returns whether it did.
    pub async fn extend_horizon(
        &self,
        user: UserId,
        calendar: CalendarId,
        window: &Window,
    ) -> Result<bool> {
        let zone = window.floating_zone.clone();
        let wanted = to_secs(window.to) - 86_400;
        let extended = on_pool!(self, pool => {
            let mut tx = pool.begin_with(crate::write_begin(pool)).await?;
            let state: Option<(Option<i64>,)> =
                sqlx::query_as("SELECT horizon_end FROM calendars WHERE id = $1 AND user_id = $2")
                    .bind(calendar.0).bind(user.0).fetch_optional(&mut *tx).await?;
            let (horizon_end,) = state.ok_or(StoreError::NotFound)?;
            if horizon_end.is_some_and(|end| end >= wanted) {
                false
            } else {
                let keys: Vec<(String,)> = sqlx::query_as(
                    "SELECT external_id FROM events WHERE calendar_id = $1 AND recurrence IS NOT NULL",
                )
                .bind(calendar.0)
                .fetch_all(&mut *tx)
                .await?;
                let keys: Vec<String> = keys.into_iter().map(|(k,)| k).collect();
                rematerialize!(&mut tx, user, calendar, &keys, window, &zone);
                sqlx::query("UPDATE calendars SET horizon_end = $1 WHERE id = $2")
                    .bind(to_secs(window.to)).bind(calendar.0).execute(&mut *tx).await?;
                tx.commit().await?;
                true
            }
        });
        Ok(extended)
    }
}

/// The occurrences of the series `key` among `events`; a series whose
/// recurrence cannot be read shows its first instance rather than nothing.
pub(crate) fn plan_series(
    key: &str,
    events: &[(i64, RemoteEvent)],
    window: &Window,
) -> Vec<PlannedOccurrence> {
    let master = events
        .iter()
        .map(|(_, e)| e)
        .find(|e| e.external_id == key && e.recurring_event_id.is_none());
    let instances: Vec<&RemoteEvent> = events
        .iter()
        .map(|(_, e)| e)
        .filter(|e| e.recurring_event_id.as_deref() == Some(key))
        .collect();
    series_occurrences(master, &instances, window).unwrap_or_else(|err| {
        tracing::warn!(event = key, error = %err, "unreadable recurrence; showing the first instance only");
        let single = master.map(|m| RemoteEvent { recurrence: Vec::new(), ..m.clone() });
        series_occurrences(single.as_ref(), &[], window).unwrap_or_default()
    })
}
