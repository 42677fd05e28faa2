//! Google JSON -> calsync-core types: calendar list entries to
//! [`RemoteCalendar`], events to [`EventChange`] (spec §2.3, §2.4).
//!
//! Never touches the database and decides nothing about storage; it only
//! translates. The rules that matter:
//! - a cancelled item without `recurringEventId` (a deleted event or a whole
//!   deleted series, often only `id` + `status`) is [`EventChange::Removed`];
//! - a cancelled instance of a series (`recurringEventId` +
//!   `originalStartTime`) is an [`EventChange::Upsert`] with status
//!   cancelled: it hides that one occurrence and is kept for the series' life;
//! - `date` values stay civil dates (end exclusive), never pass through UTC
//!   midnight, so all-day events cannot shift by a day (spec §6, problem 4);
//! - `dateTime` becomes an instant and keeps `timeZone`, the zone a series is
//!   expanded in (spec §6, problem 5);
//! - a series whose times lack `timeZone` (Google requires it, but data is
//!   data) gets the calendar's zone, so expansion follows its DST rules
//!   rather than a fixed offset;
//! - one odd event is skipped (and logged by id) instead of failing the page.

use calsync_core::changes::{EventChange, EventStart, EventStatus, RemoteEvent};
use calsync_core::model::{normalize_color, RemoteCalendar};
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::colors;
use super::wire::{CalendarListEntry, Event, EventDateTime};

/// A calendar list entry as a [`RemoteCalendar`]; `None` for entries Google
/// reports as deleted. The colour is `backgroundColor` (it supersedes
/// `colorId`), else the palette colour of `colorId`.
pub(crate) fn calendar(entry: CalendarListEntry) -> Option<RemoteCalendar> {
    if entry.deleted == Some(true) {
        return None;
    }
    let color = entry
        .background_color
        .as_deref()
        .and_then(normalize_color)
        .or_else(|| {
            entry
                .color_id
                .as_deref()
                .and_then(colors::calendar_color)
                .map(str::to_owned)
        });
    let name = entry
        .summary_override
        .filter(|s| !s.trim().is_empty())
        .or(entry.summary.filter(|s| !s.trim().is_empty()))
        .unwrap_or_else(|| entry.id.clone());
    Some(RemoteCalendar {
        external_id: entry.id,
        name,
        color,
        timezone: entry.time_zone.filter(|z| !z.is_empty()),
        is_primary: entry.primary == Some(true),
        access_role: entry.access_role,
    })
}

/// One raw `events.list` item as a change; `Err` names what was wrong (never
/// a value that could be private beyond the event id).
/// `calendar_zone` is the listing's `timeZone`.
pub(crate) fn event_item(
    item: serde_json::Value,
    calendar_zone: Option<&str>,
) -> Result<EventChange, String> {
    let id = item
        .get("id")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| "an event without an id".to_owned())?;
    let event: Event =
            // serde's message may quote event content; the id is enough to look it up.
        serde_json::from_value(item).map_err(|_| format!("event {id}: unexpected JSON shape"))?;
    let mut change = event_change(event).map_err(|why| format!("event {id}: {why}"))?;
    if let (EventChange::Upsert(event), Some(zone)) = (&mut change, calendar_zone) {
        let in_series = !event.recurrence.is_empty() || event.recurring_event_id.is_some();
        if in_series {
            let times = [
                Some(&mut event.start),
                Some(&mut event.end),
                event.original_start.as_mut(),
            ];
            for time in times.into_iter().flatten() {
                if let EventStart::DateTime { zone: z @ None, .. } = time {
                    *z = Some(zone.to_owned());
                }
            }
        }
    }
    Ok(change)
}

/// A typed event as a change.
pub(crate) fn event_change(event: Event) -> Result<EventChange, String> {
    let status = event
        .status
        .as_deref()
        .map(EventStatus::parse)
        .unwrap_or(EventStatus::Confirmed);
    let original_start = event
        .original_start_time
        .as_ref()
        .map(|t| event_time(t, "originalStartTime"))
        .transpose()?;
    if status == EventStatus::Cancelled {
        // A cancelled instance only hides an occurrence if we know which one.
        let Some(original) = original_start
            .clone()
            .filter(|_| event.recurring_event_id.is_some())
        else {
            return Ok(EventChange::Removed {
                external_id: event.id,
            });
        };
        // Stubs carry no start/end; the occurrence's original slot stands in.
        let start = match &event.start {
            Some(t) => event_time(t, "start")?,
            None => original.clone(),
        };
        let end = match &event.end {
            Some(t) => event_time(t, "end")?,
            None => start.clone(),
        };
        return Ok(EventChange::Upsert(Box::new(remote_event(
            event,
            status,
            start,
            end,
            Some(original),
        ))));
    }
    let start = event_time(event.start.as_ref().ok_or("no start")?, "start")?;
    let end = match (&event.end, event.end_time_unspecified) {
        (Some(t), _) => event_time(t, "end")?,
        // endTimeUnspecified: Google lets the end be left out; a zero-length
        // event is the faithful reading.
        (None, _) => start.clone(),
    };
    Ok(EventChange::Upsert(Box::new(remote_event(
        event,
        status,
        start,
        end,
        original_start,
    ))))
}

fn remote_event(
    event: Event,
    status: EventStatus,
    start: EventStart,
    end: EventStart,
    original_start: Option<EventStart>,
) -> RemoteEvent {
    RemoteEvent {
        external_id: event.id,
        etag: event.etag,
        status,
        title: event.summary.unwrap_or_default(),
        description: event.description.filter(|s| !s.is_empty()),
        location: event.location.filter(|s| !s.is_empty()),
        start,
        end,
        recurrence: event.recurrence.unwrap_or_default(),
        recurring_event_id: event.recurring_event_id,
        original_start,
        html_link: event.html_link,
        updated: event
            .updated
            .as_deref()
            .and_then(|u| u.parse::<Timestamp>().ok()),
    }
}

/// An `EventDateTime` (`start`, `end`, `originalStartTime`) as an
/// [`EventStart`].
pub(crate) fn event_time(value: &EventDateTime, field: &str) -> Result<EventStart, String> {
    let zone = value.time_zone.clone().filter(|z| !z.is_empty());
    if let Some(date) = value.date.as_deref() {
        let date: Date = date
            .trim()
            .parse()
            .map_err(|_| format!("{field}.date is not YYYY-MM-DD"))?;
        return Ok(EventStart::Date(date));
    }
    let Some(text) = value.date_time.as_deref().map(str::trim) else {
        return Err(format!("{field} has neither date nor dateTime"));
    };
    // Normally RFC 3339 with an offset.
    if let Ok(instant) = text.parse::<Timestamp>() {
        return Ok(EventStart::DateTime { instant, zone });
    }
    // Google allows a local time without offset when timeZone is given.
    let local: DateTime = text
        .parse()
        .map_err(|_| format!("{field}.dateTime is not RFC 3339"))?;
    let tz = match zone.as_deref() {
        Some(name) => TimeZone::get(name).unwrap_or_else(|_| {
            // Spec §7: tolerate unknown zones (e.g. "GMT+02:00"); read as UTC.
            tracing::warn!(
                field,
                "unknown time zone on a local dateTime; reading it as UTC"
            );
            TimeZone::UTC
        }),
        None => return Err(format!("{field}.dateTime has no offset and no timeZone")),
    };
    let instant = tz
        .to_ambiguous_zoned(local)
        .compatible()
        .map_err(|_| format!("{field}.dateTime is out of range"))?
        .timestamp();
    Ok(EventStart::DateTime { instant, zone })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event_item_(item: serde_json::Value) -> Result<EventChange, String> {
        event_item(item, None)
    }

    fn upsert(change: EventChange) -> RemoteEvent {
        match change {
            EventChange::Upsert(e) => *e,
            other => panic!("expected an upsert, got {other:?}"),
        }
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn date(s: &str) -> EventStart {
        EventStart::Date(s.parse().unwrap())
    }

    #[test]
    fn all_day_event_stays_a_date_range() {
        let e = upsert(
            event_item_(json!({
                "kind": "calendar#event",
                "etag": "\"3480508598540894\"",
                "id": "allday0001",
                "status": "confirmed",
                "htmlLink": "https://www.google.com/calendar/event?eid=abc",
                "updated": "2026-09-01T08:00:00.000Z",
                "summary": "Conference",
                "start": {"date": "2026-09-11"},
                "end": {"date": "2026-09-14"},
                "eventType": "default"
            }))
            .unwrap(),
        );
        assert_eq!(e.start, date("2026-09-11"));
        assert_eq!(e.end, date("2026-09-14"), "end is exclusive, as given");
        assert_eq!(e.etag.as_deref(), Some("\"3480508598540894\""));
        assert_eq!(e.title, "Conference");
        assert_eq!(e.status, EventStatus::Confirmed);
        assert_eq!(e.updated, Some(ts("2026-09-01T08:00:00Z")));
        assert_eq!(
            e.html_link.as_deref(),
            Some("https://www.google.com/calendar/event?eid=abc")
        );
    }

    #[test]
    fn timed_event_keeps_instant_and_zone() {
        let e = upsert(
            event_item_(json!({
                "id": "timed0001",
                "status": "tentative",
                "summary": "Standup",
                "description": "",
                "location": "Room 4",
                "start": {"dateTime": "2025-02-25T10:20:00-05:00", "timeZone": "America/Detroit"},
                "end": {"dateTime": "2025-02-25T10:50:00-05:00", "timeZone": "America/Detroit"},
                "reminders": {"useDefault": true},
                "eventType": "workingLocationV9",
                "sequence": 1
            }))
            .unwrap(),
        );
        assert_eq!(
            e.start,
            EventStart::DateTime {
                instant: ts("2025-02-25T15:20:00Z"),
                zone: Some("America/Detroit".into())
            }
        );
        assert_eq!(
            e.end,
            EventStart::DateTime {
                instant: ts("2025-02-25T15:50:00Z"),
                zone: Some("America/Detroit".into())
            }
        );
        assert_eq!(e.status, EventStatus::Tentative);
        assert_eq!(e.description, None);
        assert_eq!(e.location.as_deref(), Some("Room 4"));
        assert!(e.recurrence.is_empty() && e.recurring_event_id.is_none());
    }

    #[test]
    fn local_date_time_is_read_in_its_zone() {
        let t = event_time(
            &EventDateTime {
                date: None,
                date_time: Some("2026-03-08T10:00:00".into()),
                time_zone: Some("America/New_York".into()),
            },
            "start",
        )
        .unwrap();
        // After the US DST change on 2026-03-08 02:00: UTC-4.
        assert_eq!(
            t,
            EventStart::DateTime {
                instant: ts("2026-03-08T14:00:00Z"),
                zone: Some("America/New_York".into())
            }
        );
        let unknown = event_time(
            &EventDateTime {
                date: None,
                date_time: Some("2026-03-08T10:00:00".into()),
                time_zone: Some("GMT+02:00".into()),
            },
            "start",
        )
        .unwrap();
        assert!(
            matches!(unknown, EventStart::DateTime { instant, .. } if instant == ts("2026-03-08T10:00:00Z"))
        );
        for bad in [
            EventDateTime {
                date: None,
                date_time: Some("2026-03-08T10:00:00".into()),
                time_zone: None,
            },
            EventDateTime {
                date: None,
                date_time: None,
                time_zone: None,
            },
            EventDateTime {
                date: Some("2026-13-40".into()),
                date_time: None,
                time_zone: None,
            },
            EventDateTime {
                date: None,
                date_time: Some("tomorrow".into()),
                time_zone: None,
            },
        ] {
            assert!(event_time(&bad, "start").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn recurring_master_keeps_its_lines() {
        let e = upsert(
            event_item_(json!({
                "id": "weekly0001",
                "summary": "Weekly sync",
                "start": {"dateTime": "2026-03-02T09:00:00-05:00", "timeZone": "America/New_York"},
                "end": {"dateTime": "2026-03-02T09:30:00-05:00", "timeZone": "America/New_York"},
                "recurrence": [
                    "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=10",
                    "EXDATE;TZID=America/New_York:20260316T090000"
                ],
                "iCalUID": "weekly0001@google.com"
            }))
            .unwrap(),
        );
        assert_eq!(
            e.recurrence,
            vec![
                "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=10".to_owned(),
                "EXDATE;TZID=America/New_York:20260316T090000".to_owned()
            ]
        );
        assert!(e.original_start.is_none());
    }

    #[test]
    fn moved_exception_instance() {
        let e = upsert(
            event_item_(json!({
                "id": "weekly0001_20260309T140000Z",
                "status": "confirmed",
                "summary": "Weekly sync (moved)",
                "recurringEventId": "weekly0001",
                "originalStartTime": {"dateTime": "2026-03-09T10:00:00-04:00", "timeZone": "America/New_York"},
                "start": {"dateTime": "2026-03-10T11:00:00-04:00", "timeZone": "America/New_York"},
                "end": {"dateTime": "2026-03-10T11:30:00-04:00", "timeZone": "America/New_York"}
            }))
            .unwrap(),
        );
        assert_eq!(e.recurring_event_id.as_deref(), Some("weekly0001"));
        assert_eq!(
            e.original_start,
            Some(EventStart::DateTime {
                instant: ts("2026-03-09T14:00:00Z"),
                zone: Some("America/New_York".into())
            })
        );
        assert_eq!(
            e.start,
            EventStart::DateTime {
                instant: ts("2026-03-10T15:00:00Z"),
                zone: Some("America/New_York".into())
            }
        );
    }

    #[test]
    fn cancelled_instance_is_an_upsert_and_plain_delete_a_removal() {
        // The minimal stub Google sends for a cancelled occurrence.
        let e = upsert(
            event_item_(json!({
                "kind": "calendar#event",
                "etag": "\"3480508598540999\"",
                "id": "weekly0001_20260323T130000Z",
                "status": "cancelled",
                "recurringEventId": "weekly0001",
                "originalStartTime": {"dateTime": "2026-03-23T09:00:00-04:00", "timeZone": "America/New_York"}
            }))
            .unwrap(),
        );
        let original = EventStart::DateTime {
            instant: ts("2026-03-23T13:00:00Z"),
            zone: Some("America/New_York".into()),
        };
        assert_eq!(e.status, EventStatus::Cancelled);
        assert_eq!(e.original_start.as_ref(), Some(&original));
        assert_eq!(e.start, original);
        assert_eq!(e.end, original);
        assert_eq!(e.title, "");

        // A cancelled all-day instance.
        let e = upsert(
            event_item_(json!({
                "id": "bins_20260404",
                "status": "cancelled",
                "recurringEventId": "bins",
                "originalStartTime": {"date": "2026-04-04"}
            }))
            .unwrap(),
        );
        assert_eq!(e.original_start, Some(date("2026-04-04")));

        // A plain delete: only the id is guaranteed.
        assert_eq!(
            event_item_(json!({"kind": "calendar#event", "etag": "\"1\"", "id": "gone0001", "status": "cancelled"}))
                .unwrap(),
            EventChange::Removed { external_id: "gone0001".into() }
        );
        // A deleted event with its details kept (organizer's own calendar).
        assert_eq!(
            event_item_(json!({
                "id": "gone0002", "status": "cancelled", "summary": "Was here",
                "start": {"date": "2026-01-01"}, "end": {"date": "2026-01-02"}
            }))
            .unwrap(),
            EventChange::Removed {
                external_id: "gone0002".into()
            }
        );
    }

    #[test]
    fn odd_items_are_reported_not_panicked() {
        assert!(event_item_(json!({"summary": "no id"})).is_err());
        let err = event_item_(json!({"id": "nostart", "summary": "x"})).unwrap_err();
        assert!(err.contains("nostart") && err.contains("no start"), "{err}");
        assert!(event_item_(json!({"id": "badshape", "start": 5})).is_err());
        // Missing end (endTimeUnspecified): zero length.
        let e = upsert(
            event_item_(json!({"id": "noend", "start": {"dateTime": "2026-01-01T10:00:00Z"}, "endTimeUnspecified": true}))
                .unwrap(),
        );
        assert_eq!(e.start, e.end);
    }

    #[test]
    fn series_without_zone_get_the_calendar_zone() {
        let master = json!({
            "id": "s1",
            "start": {"dateTime": "2026-03-02T09:00:00-05:00"},
            "end": {"dateTime": "2026-03-02T09:30:00-05:00"},
            "recurrence": ["RRULE:FREQ=WEEKLY"]
        });
        let e = upsert(event_item(master, Some("America/New_York")).unwrap());
        assert!(
            matches!(&e.start, EventStart::DateTime { zone: Some(z), .. } if z == "America/New_York")
        );
        assert!(
            matches!(&e.end, EventStart::DateTime { zone: Some(z), .. } if z == "America/New_York")
        );
        // Single events keep what they had; explicit zones are never replaced.
        let single = json!({"id": "x", "start": {"dateTime": "2026-03-02T09:00:00Z"},
                            "end": {"dateTime": "2026-03-02T10:00:00Z"}});
        let e = upsert(event_item(single, Some("America/New_York")).unwrap());
        assert!(matches!(&e.start, EventStart::DateTime { zone: None, .. }));
        let exception = json!({"id": "s1_x", "recurringEventId": "s1",
            "originalStartTime": {"dateTime": "2026-03-09T09:00:00-04:00", "timeZone": "Europe/Paris"},
            "start": {"dateTime": "2026-03-09T10:00:00-04:00"}, "end": {"date": "2026-03-10"}});
        let e = upsert(event_item(exception, Some("America/New_York")).unwrap());
        assert!(
            matches!(&e.original_start, Some(EventStart::DateTime { zone: Some(z), .. }) if z == "Europe/Paris")
        );
        assert!(
            matches!(&e.start, EventStart::DateTime { zone: Some(z), .. } if z == "America/New_York")
        );
        assert_eq!(e.end, date("2026-03-10"));
    }

    fn entry(value: serde_json::Value) -> CalendarListEntry {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn calendar_list_entries_and_colours() {
        let primary = calendar(entry(json!({
            "kind": "calendar#calendarListEntry",
            "etag": "\"1\"",
            "id": "ada@example.com",
            "summary": "ada@example.com",
            "timeZone": "Europe/London",
            "colorId": "14",
            "backgroundColor": "#9FE1E7",
            "foregroundColor": "#000000",
            "selected": true,
            "accessRole": "owner",
            "defaultReminders": [{"method": "popup", "minutes": 10}],
            "primary": true
        })))
        .unwrap();
        assert_eq!(
            primary,
            RemoteCalendar {
                external_id: "ada@example.com".into(),
                name: "ada@example.com".into(),
                color: Some("#9fe1e7".into()),
                timezone: Some("Europe/London".into()),
                is_primary: true,
                access_role: Some("owner".into()),
            }
        );

        let holidays = calendar(entry(json!({
            "id": "en.usa#holiday@group.v.calendar.google.com",
            "summary": "Holidays in United States",
            "summaryOverride": "US holidays",
            "colorId": "8",
            "accessRole": "reader"
        })))
        .unwrap();
        assert_eq!(holidays.name, "US holidays");
        assert_eq!(holidays.color.as_deref(), Some("#16a765"));
        assert!(!holidays.is_primary);

        let odd = calendar(entry(
            json!({"id": "x@group", "backgroundColor": "blue", "colorId": "99"}),
        ))
        .unwrap();
        assert_eq!(odd.color, None);
        assert_eq!(odd.name, "x@group");

        assert!(calendar(entry(json!({"id": "gone@group", "deleted": true}))).is_none());
    }
}
