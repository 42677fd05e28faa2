//! Microsoft sample accounts for `calsync demo` and tests, dated relative to
//! "now" so the demo always has upcoming events:
//!
//! - morgan@contoso.example (work account): "Calendar" (default, no colour
//!   picked: hexColor "") with a weekly "Team sync" in W. Europe Standard
//!   Time (started five weeks ago; next week's occurrence moved to Tuesday,
//!   the one after deleted), an all-day holiday, a three-day all-day summit,
//!   a call in Pacific Standard Time and a meeting cancelled by its organizer
//!   (isCancelled); "Team Contoso" (shared by Avery, read-only, lightGreen)
//!   with a biweekly review in Romance Standard Time.
//! - riley@outlook.example (personal account): `mail` is null; one event.
//!
//! Ids are fixed so tests can name them. Seeding goes through the control
//! API's insert path, so the data is normalised like any other write.

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::ToSpan;
use serde_json::{json, Value};

use super::control::{delete_event, ensure_account, insert_event, patch_event};
use super::events;
use super::state::{new_change_key, ExpiryMode, MsCalendar};
use super::tz;
use crate::state::Inner;

pub const MORGAN: &str = "morgan@contoso.example";
pub const MORGAN_CALENDAR: &str = "AAMkAGSampleMorganCalendar000000AAA=";
pub const MORGAN_TEAM: &str = "AAMkAGSampleMorganTeamContoso0000AAA=";
/// Weekly "Team sync" series master (Mondays 10:00 W. Europe Standard Time).
pub const MORGAN_WEEKLY: &str = "AAMkAGSampleMorganWeeklySync0000AAA=";
pub const MORGAN_HOLIDAY: &str = "AAMkAGSampleMorganHoliday0000000AAA=";
pub const MORGAN_SUMMIT: &str = "AAMkAGSampleMorganSummit00000000AAA=";
pub const MORGAN_SEATTLE_CALL: &str = "AAMkAGSampleMorganSeattleCall000AAA=";
pub const MORGAN_CANCELLED: &str = "AAMkAGSampleMorganCancelled00000AAA=";
pub const MORGAN_REVIEW: &str = "AAMkAGSampleMorganSprintReview00AAA=";
pub const RILEY: &str = "riley@outlook.example";

const BERLIN: &str = "W. Europe Standard Time";

fn timed(d: Date, h: i8, m: i8, zone: &str) -> Value {
    json!({"dateTime": format!("{}T{:02}:{:02}:00.0000000", d, h, m), "timeZone": zone})
}

fn all_day(d: Date) -> Value {
    json!({"dateTime": format!("{d}T00:00:00.0000000"), "timeZone": "UTC"})
}

fn weekday_on_or_after(d: Date, wd: Weekday) -> Date {
    let diff = (wd.to_monday_zero_offset() - d.weekday().to_monday_zero_offset()).rem_euclid(7);
    d.checked_add(i64::from(diff).days()).unwrap_or(d)
}

pub fn seed(inner: &mut Inner, base: &str) {
    let morgan = ensure_account(&mut inner.ms, MORGAN, Some("Morgan Lee"), None);
    inner.ms.accounts[morgan].id = "6f1c2a8e-3b7d-4e59-9a0c-1d2e3f4a5b6c".into();
    inner.ms.accounts[morgan].calendars[0].id = MORGAN_CALENDAR.into();
    inner.ms.accounts[morgan].calendars.push(MsCalendar {
        id: MORGAN_TEAM.into(),
        name: "Team Contoso".into(),
        color: "lightGreen".into(),
        hex_color: "#87d28e".into(),
        is_default: false,
        can_edit: false,
        owner_name: "Avery Kim".into(),
        owner_address: "avery@contoso.example".into(),
        change_key: new_change_key(),
        events: Default::default(),
        delta_epoch: 0,
        expiry_mode: ExpiryMode::default(),
    });
    let riley = ensure_account(&mut inner.ms, RILEY, Some("Riley Personal"), Some(None));
    inner.ms.accounts[riley].id = "00000000-0000-0000-8f2e-4c1d9b7a6e53".into();

    let zone = tz::resolve(BERLIN).unwrap_or(TimeZone::UTC);
    let today = inner.now().to_zoned(zone).date();
    let d = |days: i64| today.checked_add(days.days()).unwrap_or(today);
    let weekly_start = weekday_on_or_after(d(-35), Weekday::Monday);
    let moved = weekday_on_or_after(d(1), Weekday::Monday);
    let deleted = moved.checked_add(7.days()).unwrap_or(moved);
    let review_start = weekday_on_or_after(d(-20), Weekday::Thursday);

    let fixtures: Vec<(&str, &str, Value)> = vec![
        (
            MORGAN,
            MORGAN_CALENDAR,
            json!({
                "id": MORGAN_WEEKLY,
                "subject": "Team sync",
                "body": {"contentType": "text", "content": "Weekly sync. Agenda in the team notebook."},
                "location": {"displayName": "Room Rhine / Teams"},
                "start": timed(weekly_start, 10, 0, BERLIN),
                "end": timed(weekly_start, 10, 30, BERLIN),
                "recurrence": {
                    "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"], "firstDayOfWeek": "monday"},
                    "range": {"type": "noEnd", "startDate": weekly_start.to_string(), "recurrenceTimeZone": BERLIN},
                },
            }),
        ),
        (
            MORGAN,
            MORGAN_CALENDAR,
            json!({
                "id": MORGAN_HOLIDAY,
                "subject": "Company holiday",
                "isAllDay": true,
                "showAs": "oof",
                "start": all_day(d(3)),
                "end": all_day(d(4)),
            }),
        ),
        (
            MORGAN,
            MORGAN_CALENDAR,
            json!({
                "id": MORGAN_SUMMIT,
                "subject": "Contoso Summit",
                "location": {"displayName": "Lisbon"},
                "isAllDay": true,
                "showAs": "workingElsewhere",
                "start": all_day(d(10)),
                "end": all_day(d(13)),
            }),
        ),
        (
            MORGAN,
            MORGAN_CALENDAR,
            json!({
                "id": MORGAN_SEATTLE_CALL,
                "subject": "Call with the Seattle office",
                "start": timed(d(2), 9, 0, "Pacific Standard Time"),
                "end": timed(d(2), 9, 45, "Pacific Standard Time"),
                "showAs": "tentative",
            }),
        ),
        (
            MORGAN,
            MORGAN_CALENDAR,
            json!({
                "id": MORGAN_CANCELLED,
                "subject": "Canceled: Vendor demo",
                "isCancelled": true,
                "showAs": "free",
                "start": timed(d(5), 14, 0, BERLIN),
                "end": timed(d(5), 15, 0, BERLIN),
            }),
        ),
        (
            MORGAN,
            MORGAN_TEAM,
            json!({
                "id": MORGAN_REVIEW,
                "subject": "Sprint review",
                "start": timed(review_start, 15, 0, "Romance Standard Time"),
                "end": timed(review_start, 16, 0, "Romance Standard Time"),
                "recurrence": {
                    "pattern": {"type": "weekly", "interval": 2, "daysOfWeek": ["thursday"]},
                    "range": {"type": "numbered", "numberOfOccurrences": 12},
                },
            }),
        ),
        (
            RILEY,
            "default",
            json!({
                "subject": "Dentist",
                "start": timed(d(4), 8, 30, "GMT Standard Time"),
                "end": timed(d(4), 9, 0, "GMT Standard Time"),
            }),
        ),
    ];
    for (account, calendar, body) in fixtures {
        if let Err(e) = insert_event(inner, base, account, calendar, body) {
            eprintln!("calsync-emulator: Microsoft sample event not seeded: {e}");
        }
    }

    // The moved and the deleted occurrence of the weekly series.
    let occurrence = |date: Date| {
        date.to_datetime(jiff::civil::Time::constant(10, 0, 0, 0))
            .to_zoned(tz::resolve(BERLIN).unwrap_or(TimeZone::UTC))
            .ok()
            .map(|z| events::occurrence_id(MORGAN_WEEKLY, z.timestamp()))
    };
    let moved_to = moved.checked_add(1.day()).unwrap_or(moved);
    if let Some(id) = occurrence(moved) {
        let patch = json!({
            "subject": "Team sync (moved)",
            "start": timed(moved_to, 11, 0, BERLIN),
            "end": timed(moved_to, 11, 30, BERLIN),
        });
        if let Err(e) = patch_event(inner, base, MORGAN, MORGAN_CALENDAR, &id, patch) {
            eprintln!("calsync-emulator: Microsoft sample exception not seeded: {e}");
        }
    }
    if let Some(id) = occurrence(deleted) {
        if let Err(e) = delete_event(inner, MORGAN, MORGAN_CALENDAR, &id) {
            eprintln!("calsync-emulator: Microsoft sample cancellation not seeded: {e}");
        }
    }
}
