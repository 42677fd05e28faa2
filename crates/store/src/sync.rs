//! Applying a provider's changes: one page of a calendar's changes, its
//! occurrences and the new cursor, in ONE transaction, so a crash leaves
//! either the old state and cursor or the new ones. Each transaction first
//! renews the round's lease on its token: a round that lost its lease writes
//! nothing.
//!
//! Full rounds are mark-and-sweep in the database itself: the calendar's
//! `sync_round` goes up when a full round starts, every event a page brings is
//! stamped with it, and the last page removes what was not stamped. A round
//! interrupted by a crash resumes from its stored page token.
//!
//! Removals wait for the end of the round: a removed event is only marked
//! (`pending_removal`), and the last page weighs everything the round would
//! remove against the calendar with [`removal_guard`]. Under the threshold
//! they go; over it nothing goes, the calendar records a hold, and the user's
//! decision (apply or keep) is carried out by a later round. Kept events are
//! marked `kept` and are never a removal again, neither unseen by a later
//! full round (a feed, a 410) nor reported deleted once more (Google's full
//! listings repeat tombstones): the provider already deleted them, and the
//! user said keep. The provider listing one again unmarks it.
//!
//! Series are expanded before the transaction begins (a round is the only
//! writer of its calendar's events, so what it reads stays true), on a
//! blocking thread: no write transaction does CPU-heavy work.

use std::collections::{BTreeMap, BTreeSet};

use calsync_core::changes::{EventChange, EventStart, PageNext, RemoteEvent};
use calsync_core::model::{CalendarId, RemovalDecision, UserId};
use calsync_core::plan::{removal_guard, series_occurrences, Cursor, PlannedOccurrence};
use calsync_core::recur::{Time, Window};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use sqlx::Row as _;

use crate::{from_secs, on_pool, to_secs, Claim, Result, Store, StoreError};

/// One page to apply.
#[derive(Debug)]
pub struct PageUpdate<'a> {
    /// The round's claim: the page is written only while it holds the lease.
    pub claim: &'a Claim,
    /// The lease is renewed to this.
    pub lease_until: Timestamp,
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
    /// Removals the round held back (the calendar is now held): how many.
    pub held: Option<u64>,
}

impl PageOutcome {
    /// Changes of any kind that were applied.
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

/// Renews the round's lease inside a write transaction, or fails it with
/// [`StoreError::LeaseLost`]; taking the connection's row lock here also
/// orders the transaction after any claim that fenced the round off.
macro_rules! hold_lease {
    ($tx:expr, $claim:expr, $until:expr) => {{
        let renewed = sqlx::query(
            "UPDATE connections SET lease_until = $1 WHERE id = $2 AND lease_token = $3 AND lease_until IS NOT NULL",
        )
        .bind($crate::to_secs($until))
        .bind($claim.connection_id.0)
        .bind($claim.lease_token)
        .execute(&mut **$tx)
        .await?
        .rows_affected();
        if renewed == 0 {
            return Err($crate::StoreError::LeaseLost);
        }
    }};
}
pub(crate) use hold_lease;

/// Replaces the occurrences of planned series inside the caller's
/// transaction: the stored ones of every event involved go, the planned ones
/// come in, attributed through `ids` (external id -> event row id).
macro_rules! write_occurrences {
    ($tx:expr, $user:expr, $calendar:expr, $plans:expr, $cleared:expr, $ids:expr) => {{
        let tx = $tx;
        for id in $cleared {
            sqlx::query("DELETE FROM occurrences WHERE event_id = $1").bind(id).execute(&mut **tx).await?;
        }
        let mut longest = 0i64;
        for plan in $plans {
            for row in &plan.occurrences {
                let Some(event_id) = $ids.get(&row.external_id) else { continue };
                longest = longest.max(row.end_at - row.start_at);
                sqlx::query(
                    "INSERT INTO occurrences (event_id, user_id, calendar_id, start_at, end_at, all_day, start_date, end_date) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(event_id)
                .bind($user.0)
                .bind($calendar.0)
                .bind(row.start_at)
                .bind(row.end_at.max(row.start_at))
                .bind(row.start_date.is_some())
                .bind(&row.start_date)
                .bind(&row.end_date)
                .execute(&mut **tx)
                .await?;
            }
        }
        // Range reads start their index walk this far before the range;
        // the bound only grows, which keeps it safe.
        sqlx::query("UPDATE calendars SET max_span = $1 WHERE id = $2 AND max_span < $1")
            .bind(longest)
            .bind($calendar.0)
            .execute(&mut **tx)
            .await?;
    }};
}

/// One occurrence row, computed before the transaction.
#[derive(Debug)]
struct OccurrenceRow {
    external_id: String,
    start_at: i64,
    end_at: i64,
    start_date: Option<String>,
    end_date: Option<String>,
}

/// A series' new occurrences.
#[derive(Debug)]
struct SeriesPlan {
    occurrences: Vec<OccurrenceRow>,
}

/// The stored events of some series: key -> (row id, event).
type StoredSeries = BTreeMap<String, Vec<(i64, RemoteEvent)>>;

/// Expands `series` over `window` on a blocking thread.
async fn plan_off_thread(
    series: Vec<(String, Vec<(i64, RemoteEvent)>)>,
    window: &Window,
) -> Result<Vec<SeriesPlan>> {
    let window = window.clone();
    tokio::task::spawn_blocking(move || {
        series
            .iter()
            .map(|(key, events)| SeriesPlan {
                occurrences: plan_series(key, events, &window)
                    .into_iter()
                    .map(|planned| {
                        let (start_at, start_date) =
                            time_columns(&planned.start, &window.floating_zone);
                        let (end_at, end_date) = time_columns(&planned.end, &window.floating_zone);
                        OccurrenceRow {
                            external_id: planned.external_id,
                            start_at,
                            end_at,
                            start_date,
                            end_date,
                        }
                    })
                    .collect(),
            })
            .collect()
    })
    .await
    .map_err(|_| StoreError::Expansion)
}

/// An event a round would remove.
#[derive(Debug)]
struct Removal {
    external_id: String,
    /// The series to expand again once it is gone (its master or, for a
    /// master, its instances); `None` for a single event.
    series: Option<String>,
}

/// What the end of a round does with its removals.
#[derive(Debug)]
enum Verdict {
    /// Not the end of the round: removals are only marked.
    Mark,
    /// Remove every marked event (and, in a full round, every unseen one).
    Remove(Vec<Removal>),
    /// Too many: keep them marked, and hold the calendar (how many events,
    /// a series counting once).
    Hold(u64),
    /// The user chose to keep them: unmark, and never count them as unseen again.
    Keep,
}

/// A calendar's sync state, read at the start of a page.
struct CalendarState {
    round: i64,
    cursor: Option<Cursor>,
    decision: Option<RemovalDecision>,
}

/// The series an event belongs to.
fn series_key(event: &RemoteEvent) -> &str {
    event
        .recurring_event_id
        .as_deref()
        .unwrap_or(&event.external_id)
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

    async fn calendar_state(
        &self,
        user: UserId,
        calendar: CalendarId,
        claim: &Claim,
    ) -> Result<CalendarState> {
        let sql = "SELECT sync_round, cursor, removal_decision FROM calendars \
                   WHERE id = $1 AND user_id = $2 AND connection_id = $3";
        let row: Option<(i64, Option<String>, Option<String>)> = on_pool!(self, pool => sqlx::query_as(sql)
            .bind(calendar.0)
            .bind(user.0)
            .bind(claim.connection_id.0)
            .fetch_optional(pool)
            .await)?;
        let (round, cursor, decision) = row.ok_or(StoreError::NotFound)?;
        Ok(CalendarState {
            round,
            cursor: cursor.as_deref().and_then(Cursor::decode),
            decision: decision.as_deref().and_then(RemovalDecision::parse),
        })
    }

    /// The stored events of each series in `keys` (a master and its
    /// instances, or one single event).
    async fn load_series(
        &self,
        calendar: CalendarId,
        keys: impl IntoIterator<Item = &String>,
    ) -> Result<StoredSeries> {
        // Two indexed lookups: SQLite plans the OR of both as a scan of the
        // calendar's events, which made large initial syncs quadratic.
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE calendar_id = $1 AND external_id = $2 \
             UNION ALL \
             SELECT {EVENT_COLUMNS} FROM events WHERE calendar_id = $1 AND recurring_event_id = $2 AND external_id <> $2"
        );
        let mut found = StoredSeries::new();
        for key in keys {
            let events = on_pool!(self, pool => {
                let rows = sqlx::query(&sql).bind(calendar.0).bind(key).fetch_all(pool).await?;
                rows.iter().map(|row| remote_event_from_row!(row)).collect::<Result<Vec<_>, sqlx::Error>>()
            })?;
            found.insert(key.clone(), events);
        }
        Ok(found)
    }

    /// Everything the end of a round would remove: events marked by earlier
    /// pages or rounds, those this page removes, and (in a full round) those
    /// the round did not see; minus what this page brings back. Also the
    /// number of events the calendar holds.
    async fn round_removals(
        &self,
        calendar: CalendarId,
        unseen_before: Option<i64>,
        removed: &[&str],
        present: &BTreeSet<&str>,
    ) -> Result<(Vec<Removal>, u64)> {
        type Row = (String, Option<String>, bool);
        let columns = "external_id, recurring_event_id, recurrence IS NOT NULL";
        // Separate statements: each uses an index (the partial one on marked
        // events, the calendar's), where an OR would scan the calendar on
        // every round's end.
        let marked =
            format!("SELECT {columns} FROM events WHERE calendar_id = $1 AND pending_removal");
        let unseen = format!(
            "SELECT {columns} FROM events WHERE calendar_id = $1 AND sync_round < $2 AND NOT pending_removal AND NOT kept"
        );
        let one = format!(
            "SELECT {columns} FROM events WHERE calendar_id = $1 AND external_id = $2 AND NOT pending_removal AND NOT kept"
        );
        let mut rows = on_pool!(self, pool => {
            let mut rows: Vec<Row> = sqlx::query_as(&marked).bind(calendar.0).fetch_all(pool).await?;
            if let Some(round) = unseen_before {
                rows.extend(sqlx::query_as::<_, Row>(&unseen).bind(calendar.0).bind(round).fetch_all(pool).await?);
            }
            for id in removed {
                let row: Option<Row> = sqlx::query_as(&one).bind(calendar.0).bind(id).fetch_optional(pool).await?;
                rows.extend(row);
            }
            Ok::<_, sqlx::Error>(rows)
        })?;
        rows.retain(|(id, _, _)| !present.contains(id.as_str()));
        if rows.is_empty() {
            return Ok((Vec::new(), 0));
        }
        // A series counts once, as people count their events: Graph stores
        // every occurrence of a deleted weekly series as its own row.
        let stored: (i64,) = on_pool!(self, pool => sqlx::query_as(
            "SELECT COUNT(DISTINCT COALESCE(recurring_event_id, external_id)) FROM events WHERE calendar_id = $1",
        )
            .bind(calendar.0)
            .fetch_one(pool)
            .await)?;
        let stored = stored.0;
        rows.sort();
        rows.dedup();
        let removals = rows
            .into_iter()
            .map(|(id, parent, is_series)| Removal {
                series: parent.or_else(|| is_series.then(|| id.clone())),
                external_id: id,
            })
            .collect();
        Ok((removals, u64::try_from(stored).unwrap_or(0)))
    }

    /// Applies one page of changes with its occurrences and cursor,
    /// atomically, while the round holds its lease.
    pub async fn apply_page(
        &self,
        user: UserId,
        calendar: CalendarId,
        page: &PageUpdate<'_>,
    ) -> Result<PageOutcome> {
        let claim = page.claim;
        let state = self.calendar_state(user, calendar, claim).await?;
        let round = state.round + i64::from(page.starts_full_round);
        let in_full_round =
            page.starts_full_round || matches!(state.cursor, Some(Cursor::Page { full: true, .. }));
        let ends_round = matches!(page.next, PageNext::Done { .. });

        let mut upserts: Vec<&RemoteEvent> = Vec::new();
        let mut removed: Vec<&str> = Vec::new();
        let mut groups: Vec<(&String, &[RemoteEvent])> = Vec::new();
        for change in page.changes {
            match change {
                EventChange::Upsert(event) => upserts.push(event),
                EventChange::Removed { external_id } => removed.push(external_id),
                EventChange::Replace { group, events } => {
                    groups.push((group, events));
                    upserts.extend(events.iter());
                }
            }
        }
        let mut keys: BTreeSet<String> = upserts.iter().map(|e| series_key(e).to_owned()).collect();
        keys.extend(groups.iter().map(|(group, _)| (*group).clone()));
        let mut stored = self.load_series(calendar, &keys).await?;

        // A replaced group's members that it no longer lists go at once:
        // they are the group's own parts, not removals from the calendar.
        let incoming: BTreeSet<&str> = upserts.iter().map(|e| e.external_id.as_str()).collect();
        let replaced_out: Vec<String> = groups
            .iter()
            .flat_map(|(group, _)| stored.get(*group).into_iter().flatten())
            .map(|(_, e)| e.external_id.clone())
            .filter(|id| !incoming.contains(id.as_str()))
            .collect();

        let verdict = if !ends_round {
            Verdict::Mark
        } else if state.decision == Some(RemovalDecision::Reject) {
            Verdict::Keep
        } else {
            let mut present: BTreeSet<&str> = incoming.clone();
            present.extend(replaced_out.iter().map(String::as_str));
            let unseen_before = in_full_round.then_some(round);
            let (removals, count) = self
                .round_removals(calendar, unseen_before, &removed, &present)
                .await?;
            let known: BTreeSet<&str> = stored
                .values()
                .flatten()
                .map(|(_, e)| e.external_id.as_str())
                .collect();
            let new = upserts
                .iter()
                .filter(|e| !known.contains(e.external_id.as_str()))
                .map(|e| series_key(e))
                .collect::<BTreeSet<_>>()
                .len() as u64;
            let removing = removals
                .iter()
                .map(|r| r.series.as_deref().unwrap_or(&r.external_id))
                .collect::<BTreeSet<_>>()
                .len() as u64;
            let held = state.decision != Some(RemovalDecision::Apply)
                && removal_guard(count + new, removing).is_err();
            if held {
                Verdict::Hold(removing)
            } else {
                Verdict::Remove(removals)
            }
        };
        if let Verdict::Remove(removals) = &verdict {
            let more: BTreeSet<String> = removals
                .iter()
                .filter_map(|r| r.series.clone())
                .filter(|k| !keys.contains(k))
                .collect();
            stored.extend(self.load_series(calendar, &more).await?);
            keys.extend(more);
        }

        // The series as they will be once the page is applied.
        let mut gone: BTreeSet<&str> = replaced_out.iter().map(String::as_str).collect();
        if let Verdict::Remove(removals) = &verdict {
            gone.extend(removals.iter().map(|r| r.external_id.as_str()));
        }
        let mut ids: BTreeMap<String, i64> = BTreeMap::new();
        let mut cleared: Vec<i64> = Vec::new();
        let mut planned_series = Vec::with_capacity(keys.len());
        for key in &keys {
            let mut events: BTreeMap<&str, (i64, RemoteEvent)> = BTreeMap::new();
            for (id, event) in stored.get(key).into_iter().flatten() {
                cleared.push(*id);
                ids.insert(event.external_id.clone(), *id);
                if !gone.contains(event.external_id.as_str()) {
                    events.insert(&event.external_id, (*id, event.clone()));
                }
            }
            for event in upserts.iter().filter(|e| series_key(e) == key) {
                events.insert(&event.external_id, (0, (*event).clone()));
            }
            planned_series.push((key.clone(), events.into_values().collect::<Vec<_>>()));
        }
        // Removed events stay until the end of the round decides; a round
        // that removes them expands their series without them below, after
        // the delete, so their occurrences go with them (cascade).
        let plans = plan_off_thread(planned_series, page.window).await?;

        let mut outcome = PageOutcome::default();
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(crate::write_begin(pool)).await?;
            hold_lease!(&mut tx, claim, page.lease_until);
            if page.starts_full_round {
                sqlx::query("UPDATE calendars SET sync_round = $1 WHERE id = $2").bind(round).bind(calendar.0).execute(&mut *tx).await?;
            }
            for external_id in &replaced_out {
                sqlx::query("DELETE FROM events WHERE calendar_id = $1 AND external_id = $2")
                    .bind(calendar.0)
                    .bind(external_id)
                    .execute(&mut *tx)
                    .await?;
                outcome.removed += 1;
            }
            for event in &upserts {
                let (start_at, start_date) = start_columns(&event.start);
                let (end_at, end_date) = start_columns(&event.end);
                let zone_name = match &event.start {
                    EventStart::DateTime { zone, .. } => zone.clone(),
                    EventStart::Date(_) => None,
                };
                let recurrence = (!event.recurrence.is_empty()).then(|| event.recurrence.join("\n"));
                let (id,): (i64,) = sqlx::query_as(
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
                         sync_round = excluded.sync_round, pending_removal = FALSE, kept = FALSE \
                     RETURNING id",
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
                .fetch_one(&mut *tx)
                .await?;
                // An event that moved to another series leaves no
                // occurrence behind in its old one.
                cleared.push(id);
                ids.insert(event.external_id.clone(), id);
                outcome.upserted += 1;
            }
            if !matches!(verdict, Verdict::Keep) {
                for external_id in &removed {
                    sqlx::query(
                        "UPDATE events SET pending_removal = TRUE WHERE calendar_id = $1 AND external_id = $2 AND NOT kept",
                    )
                        .bind(calendar.0)
                        .bind(external_id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            let unseen_before = if in_full_round { round } else { i64::MIN };
            match &verdict {
                Verdict::Mark => {}
                Verdict::Remove(removals) if removals.is_empty() => {}
                Verdict::Remove(_) => {
                    let gone: Vec<(bool,)> = sqlx::query_as(
                        "DELETE FROM events WHERE calendar_id = $1 AND (pending_removal OR (sync_round < $2 AND NOT kept)) \
                         RETURNING pending_removal",
                    )
                    .bind(calendar.0)
                    .bind(unseen_before)
                    .fetch_all(&mut *tx)
                    .await?;
                    let marked = gone.iter().filter(|(m,)| *m).count() as u64;
                    outcome.removed += marked;
                    outcome.swept += gone.len() as u64 - marked;
                }
                Verdict::Hold(count) => {
                    sqlx::query("UPDATE events SET pending_removal = TRUE WHERE calendar_id = $1 AND sync_round < $2 AND NOT kept")
                        .bind(calendar.0)
                        .bind(unseen_before)
                        .execute(&mut *tx)
                        .await?;
                    outcome.held = Some(*count);
                }
                Verdict::Keep => {
                    sqlx::query(
                        "UPDATE events SET pending_removal = FALSE, kept = TRUE \
                         WHERE calendar_id = $1 AND (pending_removal OR sync_round < $2)",
                    )
                    .bind(calendar.0)
                    .bind(unseen_before)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            if ends_round {
                sqlx::query("UPDATE calendars SET held_removals = $1, removal_decision = NULL WHERE id = $2")
                    .bind(outcome.held.map(|n| i64::try_from(n).unwrap_or(i64::MAX)))
                    .bind(calendar.0)
                    .execute(&mut *tx)
                    .await?;
            }
            write_occurrences!(&mut tx, user, calendar, &plans, &cleared, ids);

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
        claim: &Claim,
        lease_until: Timestamp,
        user: UserId,
        calendar: CalendarId,
        window: &Window,
    ) -> Result<bool> {
        let wanted = to_secs(window.to) - 86_400;
        let sql = "SELECT horizon_end FROM calendars WHERE id = $1 AND user_id = $2";
        let state: Option<(Option<i64>,)> = on_pool!(self, pool => sqlx::query_as(sql).bind(calendar.0).bind(user.0).fetch_optional(pool).await)?;
        let (horizon_end,) = state.ok_or(StoreError::NotFound)?;
        if horizon_end.is_some_and(|end| end >= wanted) {
            return Ok(false);
        }
        let sql =
            "SELECT external_id FROM events WHERE calendar_id = $1 AND recurrence IS NOT NULL";
        let rows: Vec<(String,)> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(calendar.0).fetch_all(pool).await)?;
        let keys: Vec<String> = rows.into_iter().map(|(key,)| key).collect();
        let stored = self.load_series(calendar, &keys).await?;
        let mut ids = BTreeMap::new();
        let mut cleared = Vec::new();
        for (id, event) in stored.values().flatten() {
            ids.insert(event.external_id.clone(), *id);
            cleared.push(*id);
        }
        let plans = plan_off_thread(stored.into_iter().collect(), window).await?;
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(crate::write_begin(pool)).await?;
            hold_lease!(&mut tx, claim, lease_until);
            write_occurrences!(&mut tx, user, calendar, &plans, &cleared, ids);
            sqlx::query("UPDATE calendars SET horizon_end = $1 WHERE id = $2")
                .bind(to_secs(window.to)).bind(calendar.0).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(true)
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
