//! Many accounts at once, in-process: what a capacity benchmark needs
//! (10,000 accounts with a few calendars and events each) without 10,000
//! control requests. Every account, calendar and event goes through the
//! same functions as the control API, under one lock, so sync tokens,
//! delta rounds and the request log see them exactly as if they had been
//! made one by one.

use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};

use crate::state::Inner;
use crate::{control, control_events, microsoft};

/// Which provider an account of a bulk population belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BulkProvider {
    Google,
    Microsoft,
}

/// One account to create ([`crate::EmulatorHandle::populate`]).
#[derive(Debug, Clone)]
pub struct BulkAccount {
    pub provider: BulkProvider,
    pub email: String,
    /// Calendars including the primary (Google) or default (Microsoft) one;
    /// at least one.
    pub calendars: usize,
    /// One-hour single events in every calendar, one a day from `first_event`.
    pub events_per_calendar: usize,
    /// Also a weekly series (52 occurrences from `first_event`) in the first calendar.
    pub weekly_series: bool,
}

/// What [`crate::EmulatorHandle::populate`] made for one account.
#[derive(Debug, Clone)]
pub struct Populated {
    pub provider: BulkProvider,
    pub email: String,
    /// Calendar ids, the primary/default one first.
    pub calendars: Vec<String>,
    /// `(calendar id, event id)` of every event made (series masters included).
    pub events: Vec<(String, String)>,
}

pub(crate) fn populate(
    inner: &mut Inner,
    base_url: &str,
    accounts: &[BulkAccount],
    first_event: Timestamp,
) -> Result<Vec<Populated>, String> {
    accounts
        .iter()
        .map(|a| match a.provider {
            BulkProvider::Google => google(inner, base_url, a, first_event),
            BulkProvider::Microsoft => microsoft(inner, base_url, a, first_event),
        })
        .collect()
}

fn day(first: Timestamp, n: usize) -> Result<(Timestamp, Timestamp), String> {
    let start = first
        .checked_add(SignedDuration::from_hours(24 * n as i64))
        .map_err(|e| e.to_string())?;
    let end = start
        .checked_add(SignedDuration::from_hours(1))
        .map_err(|e| e.to_string())?;
    Ok((start, end))
}

fn google(
    inner: &mut Inner,
    base_url: &str,
    a: &BulkAccount,
    first: Timestamp,
) -> Result<Populated, String> {
    let ix = inner.ensure_account(&a.email, None);
    let mut calendars = vec![inner.accounts[ix].calendars[0].id.clone()];
    for n in 1..a.calendars.max(1) {
        let entry = control::add_calendar_inner(
            inner,
            &a.email,
            json!({"summary": format!("Calendar {}", n + 1)}),
        )
        .map_err(|e| format!("{}: add calendar: {e:?}", a.email))?;
        calendars.push(id_of(&entry)?);
    }
    let mut events = Vec::new();
    for (c, calendar) in calendars.iter().enumerate() {
        let mut bodies = Vec::new();
        for n in 0..a.events_per_calendar {
            let (start, end) = day(first, n)?;
            bodies.push(json!({
                "summary": format!("Event {} of calendar {}", n + 1, c + 1),
                "start": {"dateTime": start.to_string(), "timeZone": "UTC"},
                "end": {"dateTime": end.to_string(), "timeZone": "UTC"},
            }));
        }
        if c == 0 && a.weekly_series {
            let (start, end) = day(first, 0)?;
            bodies.push(json!({
                "summary": "Weekly",
                "start": {"dateTime": start.to_string(), "timeZone": "UTC"},
                "end": {"dateTime": end.to_string(), "timeZone": "UTC"},
                "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=52"],
            }));
        }
        for body in bodies {
            let stored =
                control_events::insert_event(inner, base_url, &a.email, calendar, body, false)
                    .map_err(|e| format!("{}: insert event: {e:?}", a.email))?;
            events.push((calendar.clone(), id_of(&stored)?));
        }
    }
    Ok(Populated {
        provider: a.provider,
        email: a.email.clone(),
        calendars,
        events,
    })
}

/// Graph's wall-clock form (`2026-01-05T09:00:00`, zone given apart).
fn graph_time(t: Timestamp) -> Value {
    let text = t.to_string();
    json!({"dateTime": text.trim_end_matches('Z'), "timeZone": "UTC"})
}

fn microsoft(
    inner: &mut Inner,
    base_url: &str,
    a: &BulkAccount,
    first: Timestamp,
) -> Result<Populated, String> {
    let ix = microsoft::control::ensure_account(&mut inner.ms, &a.email, None, None);
    let mut calendars = vec![inner.ms.accounts[ix].calendars[0].id.clone()];
    for n in 1..a.calendars.max(1) {
        let entry = microsoft::control::add_calendar_inner(
            &mut inner.ms,
            &a.email,
            json!({"name": format!("Calendar {}", n + 1)}),
        )
        .map_err(|e| format!("{}: add calendar: {e:?}", a.email))?;
        calendars.push(id_of(&entry)?);
    }
    let mut events = Vec::new();
    for (c, calendar) in calendars.iter().enumerate() {
        let mut bodies = Vec::new();
        for n in 0..a.events_per_calendar {
            let (start, end) = day(first, n)?;
            bodies.push(json!({
                "subject": format!("Event {} of calendar {}", n + 1, c + 1),
                "start": graph_time(start),
                "end": graph_time(end),
            }));
        }
        if c == 0 && a.weekly_series {
            let (start, end) = day(first, 0)?;
            let weekday = weekday_name(start.to_zoned(jiff::tz::TimeZone::UTC).weekday());
            bodies.push(json!({
                "subject": "Weekly",
                "start": graph_time(start),
                "end": graph_time(end),
                "recurrence": {
                    "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [weekday]},
                    "range": {"type": "numbered", "numberOfOccurrences": 52,
                              "startDate": start.to_zoned(jiff::tz::TimeZone::UTC).date().to_string()},
                },
            }));
        }
        for body in bodies {
            let stored =
                microsoft::control::insert_event(inner, base_url, &a.email, calendar, body)
                    .map_err(|e| format!("{}: insert event: {e:?}", a.email))?;
            events.push((calendar.clone(), id_of(&stored)?));
        }
    }
    Ok(Populated {
        provider: a.provider,
        email: a.email.clone(),
        calendars,
        events,
    })
}

fn weekday_name(w: jiff::civil::Weekday) -> &'static str {
    use jiff::civil::Weekday::*;
    match w {
        Monday => "monday",
        Tuesday => "tuesday",
        Wednesday => "wednesday",
        Thursday => "thursday",
        Friday => "friday",
        Saturday => "saturday",
        Sunday => "sunday",
    }
}

fn id_of(v: &Value) -> Result<String, String> {
    v["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no id in {v}"))
}
