//! Microsoft Graph JSON -> calsync-core types: calendars to
//! [`RemoteCalendar`], delta items to [`EventChange`]
//! (`shared/specs/microsoft-graph.md` §A2, §A3, §A4).
//!
//! Never touches the database and decides nothing about storage; it only
//! translates. The rules that matter:
//! - `calendarView/delta` returns expanded instances: a `singleInstance` is a
//!   plain event; an `occurrence` or `exception` is an instance of its series
//!   (`recurring_event_id` = `seriesMasterId`, `original_start` from
//!   `originalStart`) and is stored on its own, with no master: the store
//!   shows a master-less instance as itself. calendarView never returns a
//!   `seriesMaster` (spec §A3, §A4); if one comes anyway it is skipped, since
//!   its instances are what the window shows and storing it as well would
//!   expand the series a second time.
//! - `@removed` is [`EventChange::Removed`] (for ids we never stored, e.g.
//!   events outside the window, the store finds nothing to remove);
//! - `isCancelled` is an upsert with status cancelled, not a removal (the
//!   meeting still shows in Outlook as cancelled until deleted);
//! - `showAs: tentative` is status tentative. `showAs: free` stays confirmed:
//!   it says the time is not blocked (a holiday, a reminder), not that the
//!   event may not happen;
//! - `isAllDay` values are civil dates (end exclusive) read from the local
//!   `dateTime`, which Graph does not shift with `Prefer: outlook.timezone`,
//!   so all-day events cannot move by a day;
//! - timed values are instants; the zone kept with them is the IANA name of
//!   `originalStartTimeZone` (`originalEndTimeZone` for the end), Windows
//!   names translated by [`calsync_core::tz`]; unknown zones such as
//!   `tzone://Microsoft/Custom` give `None`;
//! - one odd item is skipped (and logged by id) instead of failing the page.

use calsync_core::changes::{EventChange, EventStart, EventStatus, RemoteEvent};
use calsync_core::model::{normalize_color, RemoteCalendar};
use calsync_core::tz;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::wire::{Calendar, DateTimeTimeZone, Event};

/// Colours for the `color` preset of a calendar without `hexColor`.
/// Microsoft publishes names only, no values: these are calsync's
/// approximations of Outlook's light calendar swatches. `auto` and
/// `maxColor` (no choice made) give no colour, so the server picks its
/// default as for any calendar without one.
const PRESET_COLORS: [(&str, &str); 9] = [
    ("lightBlue", "#a6d1f5"),
    ("lightGreen", "#87d28e"),
    ("lightOrange", "#fcab73"),
    ("lightGray", "#c0c0c0"),
    ("lightYellow", "#f4d07a"),
    ("lightTeal", "#7ed3d1"),
    ("lightPink", "#f4a3c0"),
    ("lightBrown", "#c8a98c"),
    ("lightRed", "#f08080"),
];

/// The colour of a `color` preset name (case-insensitive), if it names one.
pub fn preset_color(name: &str) -> Option<&'static str> {
    PRESET_COLORS
        .iter()
        .find(|(preset, _)| preset.eq_ignore_ascii_case(name.trim()))
        .map(|(_, hex)| *hex)
}

/// A Graph calendar as a [`RemoteCalendar`].
///
/// - colour: `hexColor` when it is a valid `#rrggbb` (it is `""` until the
///   user picks one), else the [`preset_color`] of `color`;
/// - access role, in Google's words since the rest of calsync uses them:
///   `owner` for the default calendar or one the user can edit and share
///   (only owners share), `writer` if `canEdit`, else `reader`;
/// - `isDefaultCalendar` is the primary calendar;
/// - Graph calendars carry no zone (that is a mailbox setting), so `None`.
pub(crate) fn calendar(entry: Calendar) -> RemoteCalendar {
    let color = entry
        .hex_color
        .as_deref()
        .and_then(normalize_color)
        .or_else(|| {
            entry
                .color
                .as_deref()
                .and_then(preset_color)
                .map(str::to_owned)
        });
    let is_primary = entry.is_default_calendar == Some(true);
    let access_role = match (entry.can_edit, entry.can_share) {
        (Some(true), _) if is_primary => Some("owner"),
        (Some(true), Some(true)) => Some("owner"),
        (Some(true), _) => Some("writer"),
        (Some(false), _) => Some("reader"),
        (None, _) => None,
    };
    let name = entry
        .name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| entry.id.clone());
    RemoteCalendar {
        external_id: entry.id,
        name,
        color,
        timezone: None,
        is_primary,
        access_role: access_role.map(str::to_owned),
    }
}

/// One raw delta item as a change; `Ok(None)` for an item calsync does not
/// store (a series master). `Err` names what was wrong, by event id only
/// (serde's own message may quote private event content).
pub(crate) fn event_item(item: serde_json::Value) -> Result<Option<EventChange>, String> {
    let id = item
        .get("id")
        .and_then(|v| v.as_str())
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| "an event without an id".to_owned())?;
    let event: Event =
        serde_json::from_value(item).map_err(|_| format!("event {id}: unexpected JSON shape"))?;
    event_change(event).map_err(|why| format!("event {id}: {why}"))
}

/// A typed delta item as a change (see the module's rules).
pub(crate) fn event_change(event: Event) -> Result<Option<EventChange>, String> {
    if event.removed.is_some() {
        return Ok(Some(EventChange::Removed {
            external_id: event.id,
        }));
    }
    let kind = event.kind.as_deref().unwrap_or("singleInstance");
    if kind == "seriesMaster" {
        return Ok(None);
    }
    let start_zone = iana_name(event.original_start_time_zone.as_deref());
    let end_zone = iana_name(event.original_end_time_zone.as_deref()).or(start_zone.clone());
    let all_day = event.is_all_day == Some(true);
    let start_value = event.start.as_ref().ok_or("no start")?;
    let (start, end) = if all_day {
        let first = local_date(start_value, "start")?;
        let end = match &event.end {
            Some(value) => local_date(value, "end")?,
            None => first,
        };
        // An all-day event lasts at least its day (end exclusive).
        let end = if end > first {
            end
        } else {
            first.tomorrow().map_err(|_| "start is out of range")?
        };
        (EventStart::Date(first), EventStart::Date(end))
    } else {
        let start = instant(start_value, "start")?;
        let end = match &event.end {
            Some(value) => instant(value, "end")?,
            None => start,
        };
        (
            EventStart::DateTime {
                instant: start,
                zone: start_zone.clone(),
            },
            EventStart::DateTime {
                instant: end,
                zone: end_zone,
            },
        )
    };
    let series = event
        .series_master_id
        .clone()
        .filter(|id| !id.is_empty() && kind != "singleInstance");
    let original_start = series
        .as_ref()
        .map(|_| original_start(&event, &start, start_zone))
        .transpose()?;
    let status = if event.is_cancelled == Some(true) {
        EventStatus::Cancelled
    } else if event
        .show_as
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("tentative"))
    {
        EventStatus::Tentative
    } else {
        EventStatus::Confirmed
    };
    Ok(Some(EventChange::Upsert(Box::new(RemoteEvent {
        external_id: event.id,
        etag: event.change_key.filter(|k| !k.is_empty()),
        status,
        // A missing subject is an empty title, as the Google mapping does;
        // a placeholder such as "(No title)" is the display's business.
        title: event.subject.unwrap_or_default(),
        description: event.body_preview.filter(|s| !s.trim().is_empty()),
        location: event
            .location
            .and_then(|l| l.display_name)
            .filter(|s| !s.trim().is_empty()),
        start,
        end,
        // Graph instances come expanded; there are no rules to keep.
        recurrence: Vec::new(),
        recurring_event_id: series,
        original_start,
        html_link: event.web_link.filter(|s| !s.is_empty()),
        updated: event
            .last_modified_date_time
            .as_deref()
            .and_then(|u| u.trim().parse::<Timestamp>().ok()),
    }))))
}

/// The IANA name for a Graph zone name (Windows like `Pacific Standard
/// Time`, or IANA); `None` when empty or unknown (`tzone://Microsoft/Custom`).
pub(crate) fn iana_name(name: Option<&str>) -> Option<String> {
    let zone = tz::resolve_name(name?)?;
    zone.iana_name().map(str::to_owned)
}

/// The zone a `dateTimeTimeZone` is written in: UTC when absent (we ask for
/// UTC with `Prefer: outlook.timezone`), and UTC with a warning when Graph
/// names a zone we cannot resolve.
fn value_zone(value: &DateTimeTimeZone, field: &str) -> TimeZone {
    match value.time_zone.as_deref().map(str::trim) {
        None | Some("") => TimeZone::UTC,
        Some(name) => tz::resolve_name(name).unwrap_or_else(|| {
            tracing::warn!(
                field,
                "unknown time zone on a Graph dateTime; reading it as UTC"
            );
            TimeZone::UTC
        }),
    }
}

/// A timed `dateTimeTimeZone` as an instant.
fn instant(value: &DateTimeTimeZone, field: &str) -> Result<Timestamp, String> {
    let text = value
        .date_time
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("{field} has no dateTime"))?;
    // Graph writes no offset, but a value with one is unambiguous.
    if let Ok(instant) = text.parse::<Timestamp>() {
        return Ok(instant);
    }
    let local: DateTime = text
        .parse()
        .map_err(|_| format!("{field}.dateTime is not an ISO 8601 date-time"))?;
    tz::local_to_zoned(&value_zone(value, field), local)
        .map(|zoned| zoned.timestamp())
        .map_err(|_| format!("{field}.dateTime is out of range"))
}

/// The civil date of an all-day `dateTimeTimeZone` (its local midnight).
fn local_date(value: &DateTimeTimeZone, field: &str) -> Result<Date, String> {
    let text = value
        .date_time
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("{field} has no dateTime"))?;
    if let Ok(local) = text.parse::<DateTime>() {
        return Ok(local.date());
    }
    // A bare date, or a date-time with an offset: the date is what it says.
    text.get(..10)
        .and_then(|d| d.parse::<Date>().ok())
        .ok_or_else(|| format!("{field}.dateTime is not an ISO 8601 date-time"))
}

/// An instance's original slot in its series. `originalStart` is an instant
/// (UTC); without it (or unreadable) the instance is taken as not moved, so
/// its start stands in. For an all-day instance the slot is a date: the UTC
/// date when `originalStart` is UTC midnight, else the date in the event's
/// own zone (Graph may write the series' local midnight as a UTC instant).
fn original_start(
    event: &Event,
    start: &EventStart,
    zone: Option<String>,
) -> Result<EventStart, String> {
    let parsed = event
        .original_start
        .as_deref()
        .map(str::trim)
        .and_then(|text| {
            text.parse::<Timestamp>().ok().or_else(|| {
                // Without an offset, Graph's DateTimeOffset means UTC.
                text.parse::<DateTime>()
                    .ok()
                    .and_then(|dt| dt.to_zoned(TimeZone::UTC).ok())
                    .map(|z| z.timestamp())
            })
        });
    let Some(instant) = parsed else {
        return Ok(start.clone());
    };
    match start {
        EventStart::Date(_) => {
            let utc = instant.to_zoned(TimeZone::UTC);
            if utc.time() == jiff::civil::Time::midnight() {
                return Ok(EventStart::Date(utc.date()));
            }
            let local = zone
                .as_deref()
                .and_then(|z| TimeZone::get(z).ok())
                .unwrap_or(TimeZone::UTC);
            Ok(EventStart::Date(instant.to_zoned(local).date()))
        }
        EventStart::DateTime { .. } => Ok(EventStart::DateTime { instant, zone }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn upsert(change: Result<Option<EventChange>, String>) -> RemoteEvent {
        match change {
            Ok(Some(EventChange::Upsert(e))) => *e,
            other => panic!("expected an upsert, got {other:?}"),
        }
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn at(s: &str, zone: Option<&str>) -> EventStart {
        EventStart::DateTime {
            instant: ts(s),
            zone: zone.map(str::to_owned),
        }
    }

    fn date(s: &str) -> EventStart {
        EventStart::Date(s.parse().unwrap())
    }

    /// A timed event as delta returns it with `Prefer: outlook.timezone="UTC"`.
    fn timed(id: &str, kind: &str) -> serde_json::Value {
        json!({
            "@odata.etag": "W/\"DwAAABYAAAA\"",
            "id": id,
            "createdDateTime": "2026-02-01T09:00:00.1234567Z",
            "lastModifiedDateTime": "2026-02-02T09:30:00.7654321Z",
            "changeKey": "DwAAABYAAAA",
            "originalStartTimeZone": "W. Europe Standard Time",
            "originalEndTimeZone": "W. Europe Standard Time",
            "iCalUId": "040000008200E00074C5B7101A82E008",
            "subject": "Planning",
            "bodyPreview": "Agenda: budget",
            "isAllDay": false,
            "isCancelled": false,
            "showAs": "busy",
            "type": kind,
            "webLink": "https://outlook.office365.com/owa/?itemid=AAMk&exvsurl=1&path=/calendar/item",
            "start": {"dateTime": "2026-03-10T09:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2026-03-10T10:00:00.0000000", "timeZone": "UTC"},
            "location": {"displayName": "Room 4", "locationType": "default"}
        })
    }

    #[test]
    fn single_instance_is_a_plain_event_in_its_windows_zone() {
        let e = upsert(event_item(timed("AAMkAGI2=", "singleInstance")));
        assert_eq!(e.external_id, "AAMkAGI2=");
        assert_eq!(e.title, "Planning");
        assert_eq!(e.description.as_deref(), Some("Agenda: budget"));
        assert_eq!(e.location.as_deref(), Some("Room 4"));
        assert_eq!(e.etag.as_deref(), Some("DwAAABYAAAA"));
        assert_eq!(e.status, EventStatus::Confirmed);
        assert_eq!(e.start, at("2026-03-10T09:00:00Z", Some("Europe/Berlin")));
        assert_eq!(e.end, at("2026-03-10T10:00:00Z", Some("Europe/Berlin")));
        assert_eq!(e.updated, Some(ts("2026-02-02T09:30:00.7654321Z")));
        assert!(e
            .html_link
            .as_deref()
            .unwrap()
            .starts_with("https://outlook"));
        assert!(e.recurrence.is_empty());
        assert!(e.recurring_event_id.is_none() && e.original_start.is_none());
    }

    #[test]
    fn zones_windows_iana_and_unknown() {
        let mut item = timed("z", "singleInstance");
        item["originalStartTimeZone"] = json!("Pacific Standard Time");
        item["originalEndTimeZone"] = json!("Eastern Standard Time");
        let e = upsert(event_item(item));
        assert_eq!(
            e.start,
            at("2026-03-10T09:00:00Z", Some("America/Los_Angeles"))
        );
        assert_eq!(e.end, at("2026-03-10T10:00:00Z", Some("America/New_York")));

        let mut item = timed("z", "singleInstance");
        item["originalStartTimeZone"] = json!("tzone://Microsoft/Custom");
        item["originalEndTimeZone"] = json!(null);
        let e = upsert(event_item(item));
        assert_eq!(e.start, at("2026-03-10T09:00:00Z", None));
        assert_eq!(e.end, at("2026-03-10T10:00:00Z", None));

        // Without the Prefer header Graph writes the event's own zone.
        let mut item = timed("z", "singleInstance");
        item["originalStartTimeZone"] = json!("Europe/Paris");
        // No end zone: the start's.
        item["originalEndTimeZone"] = json!("");
        item["start"] =
            json!({"dateTime": "2026-03-10T10:00:00.0000000", "timeZone": "Romance Standard Time"});
        item["end"] =
            json!({"dateTime": "2026-03-10T11:00:00.0000000", "timeZone": "Europe/Paris"});
        let e = upsert(event_item(item));
        assert_eq!(e.start, at("2026-03-10T09:00:00Z", Some("Europe/Paris")));
        assert_eq!(e.end, at("2026-03-10T10:00:00Z", Some("Europe/Paris")));
        assert_eq!(iana_name(Some("")), None);
        assert_eq!(iana_name(None), None);
        assert_eq!(iana_name(Some("UTC")).as_deref(), Some("UTC"));
    }

    #[test]
    fn occurrence_and_exception_are_instances_of_their_series() {
        let mut item = timed("AAMkOcc1", "occurrence");
        item["seriesMasterId"] = json!("AAMkMaster");
        item["originalStart"] = json!("2026-03-10T09:00:00Z");
        let e = upsert(event_item(item));
        assert_eq!(e.recurring_event_id.as_deref(), Some("AAMkMaster"));
        assert_eq!(
            e.original_start,
            Some(at("2026-03-10T09:00:00Z", Some("Europe/Berlin")))
        );
        assert!(e.recurrence.is_empty());

        // A moved instance: start differs from its slot.
        let mut item = timed("AAMkExc1", "exception");
        item["seriesMasterId"] = json!("AAMkMaster");
        item["originalStart"] = json!("2026-03-09T09:00:00Z");
        let e = upsert(event_item(item));
        assert_eq!(e.recurring_event_id.as_deref(), Some("AAMkMaster"));
        assert_eq!(
            e.original_start,
            Some(at("2026-03-09T09:00:00Z", Some("Europe/Berlin")))
        );
        assert_eq!(e.start, at("2026-03-10T09:00:00Z", Some("Europe/Berlin")));

        // No originalStart: taken as not moved.
        let mut item = timed("AAMkOcc2", "occurrence");
        item["seriesMasterId"] = json!("AAMkMaster");
        let e = upsert(event_item(item));
        assert_eq!(e.original_start, Some(e.start.clone()));

        // A singleInstance never is an instance, whatever else it says.
        let mut item = timed("AAMkOne", "singleInstance");
        item["seriesMasterId"] = json!("AAMkMaster");
        assert!(upsert(event_item(item)).recurring_event_id.is_none());
    }

    #[test]
    fn series_master_is_skipped() {
        let mut item = timed("AAMkMaster", "seriesMaster");
        item["recurrence"] = json!({"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["tuesday"]},
            "range": {"type": "noEnd", "startDate": "2026-03-03"}});
        assert_eq!(event_item(item), Ok(None));
    }

    #[test]
    fn all_day_stays_a_date_range() {
        let item = json!({
            "id": "AAMkAllDay",
            "type": "singleInstance",
            "subject": "Conference",
            "isAllDay": true,
            "originalStartTimeZone": "Tokyo Standard Time",
            // Not shifted by the Prefer header (spec §A4).
            "start": {"dateTime": "2026-09-11T00:00:00.0000000", "timeZone": "Tokyo Standard Time"},
            "end": {"dateTime": "2026-09-14T00:00:00.0000000", "timeZone": "Tokyo Standard Time"}
        });
        let e = upsert(event_item(item));
        assert_eq!(e.start, date("2026-09-11"));
        assert_eq!(e.end, date("2026-09-14"), "end is exclusive, as given");

        // An all-day occurrence: the slot is a date too, in both ways Graph
        // may write it.
        let occurrence = |original: &str| {
            json!({
                "id": "AAMkBins", "type": "occurrence", "seriesMasterId": "AAMkBinsMaster",
                "isAllDay": true, "originalStart": original,
                "originalStartTimeZone": "W. Europe Standard Time",
                "start": {"dateTime": "2026-04-04T00:00:00.0000000", "timeZone": "UTC"},
                "end": {"dateTime": "2026-04-05T00:00:00.0000000", "timeZone": "UTC"}
            })
        };
        for original in ["2026-04-04T00:00:00Z", "2026-04-03T22:00:00Z"] {
            let e = upsert(event_item(occurrence(original)));
            assert_eq!(e.original_start, Some(date("2026-04-04")), "{original}");
            assert_eq!(e.start, date("2026-04-04"));
        }

        // A zero-length all-day event still covers its day.
        let e = upsert(event_item(json!({
            "id": "x", "isAllDay": true,
            "start": {"dateTime": "2026-05-01T00:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-05-01T00:00:00", "timeZone": "UTC"}
        })));
        assert_eq!(e.end, date("2026-05-02"));
    }

    #[test]
    fn removed_cancelled_and_tentative() {
        assert_eq!(
            event_item(
                json!({"@odata.type": "#microsoft.graph.event", "id": "AAMkGone",
                "@removed": {"reason": "deleted"}})
            ),
            Ok(Some(EventChange::Removed {
                external_id: "AAMkGone".into()
            }))
        );
        let mut item = timed("AAMkCancelled", "occurrence");
        item["seriesMasterId"] = json!("AAMkMaster");
        item["isCancelled"] = json!(true);
        item["subject"] = json!("Canceled: Planning");
        let e = upsert(event_item(item));
        assert_eq!(e.status, EventStatus::Cancelled);
        assert_eq!(e.recurring_event_id.as_deref(), Some("AAMkMaster"));

        let mut item = timed("t", "singleInstance");
        item["showAs"] = json!("tentative");
        assert_eq!(upsert(event_item(item)).status, EventStatus::Tentative);
        let mut item = timed("f", "singleInstance");
        item["showAs"] = json!("free");
        assert_eq!(upsert(event_item(item)).status, EventStatus::Confirmed);
    }

    #[test]
    fn empty_fields_and_odd_items() {
        let e = upsert(event_item(json!({
            "id": "bare", "subject": "", "bodyPreview": "", "location": {"displayName": ""},
            "changeKey": "", "webLink": "",
            "start": {"dateTime": "2026-01-01T10:00:00.0000000", "timeZone": "UTC"}
        })));
        assert_eq!(e.title, "");
        assert_eq!(e.description, None);
        assert_eq!(e.location, None);
        assert_eq!(e.etag, None);
        assert_eq!(e.html_link, None);
        assert_eq!(e.start, e.end, "no end: zero length");
        assert_eq!(e.start, at("2026-01-01T10:00:00Z", None));

        assert!(event_item(json!({"subject": "no id"})).is_err());
        let err = event_item(json!({"id": "nostart", "subject": "secret"})).unwrap_err();
        assert!(err.contains("nostart") && err.contains("no start"), "{err}");
        let err = event_item(json!({"id": "badshape", "subject": "private words", "start": 5}))
            .unwrap_err();
        assert!(!err.contains("private"), "{err}");
        assert!(event_item(json!({"id": "badtime",
            "start": {"dateTime": "tomorrow", "timeZone": "UTC"}}))
        .is_err());
        // An unknown zone on the dateTime reads as UTC rather than failing.
        let e = upsert(event_item(json!({"id": "odd",
            "start": {"dateTime": "2026-01-01T10:00:00", "timeZone": "Mars Standard Time"}})));
        assert_eq!(e.start, at("2026-01-01T10:00:00Z", None));
    }

    fn cal(value: serde_json::Value) -> RemoteCalendar {
        calendar(serde_json::from_value(value).unwrap())
    }

    #[test]
    fn calendars_colours_roles_and_primary() {
        let default = cal(json!({
            "id": "AAMkCal1", "name": "Calendar", "color": "auto", "hexColor": "#1F8A70",
            "isDefaultCalendar": true, "changeKey": "x", "canShare": true,
            "canViewPrivateItems": true, "canEdit": true,
            "owner": {"name": "Ada", "address": "ada@example.com"}
        }));
        assert_eq!(
            default,
            RemoteCalendar {
                external_id: "AAMkCal1".into(),
                name: "Calendar".into(),
                color: Some("#1f8a70".into()),
                timezone: None,
                is_primary: true,
                access_role: Some("owner".into()),
            }
        );
        // No hexColor picked: the preset's colour.
        let birthdays = cal(
            json!({"id": "b", "name": "Birthdays", "color": "lightGreen",
            "hexColor": "", "isDefaultCalendar": false, "canEdit": true, "canShare": false}),
        );
        assert_eq!(birthdays.color.as_deref(), Some("#87d28e"));
        assert_eq!(birthdays.access_role.as_deref(), Some("writer"));
        assert!(!birthdays.is_primary);
        let shared = cal(
            json!({"id": "s", "name": "", "color": "auto", "hexColor": "",
            "canEdit": false, "canShare": false}),
        );
        assert_eq!(shared.color, None);
        assert_eq!(shared.access_role.as_deref(), Some("reader"));
        assert_eq!(shared.name, "s");
        let bare = cal(json!({"id": "x", "color": "maxColor", "hexColor": "not-a-colour"}));
        assert_eq!((bare.color, bare.access_role), (None, None));
        for (name, _) in PRESET_COLORS {
            assert!(
                normalize_color(preset_color(name).unwrap()).is_some(),
                "{name}"
            );
        }
        assert_eq!(preset_color("LIGHTRED"), Some("#f08080"));
        assert_eq!(preset_color("auto"), None);
    }
}
