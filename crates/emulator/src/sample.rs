//! Realistic sample accounts for `calsync demo` and tests, dated relative to
//! "now" so the demo always has upcoming events:
//!
//! - alice@example.com: primary, Work (America/New_York: weekday standup, a
//!   weekly 1:1 started before the last DST change with one moved and one
//!   cancelled instance, a monthly review, a multi-day offsite, calls in
//!   Europe/Berlin and Asia/Tokyo), Personal (gym twice a week, a birthday
//!   every year, a vacation, dinner) and "Holidays in United States"
//!   (read-only, all-day, fixed dates of this year and next).
//! - bob@example.com: primary in Europe/Berlin with a weekly planning and a
//!   flight that starts in Berlin and ends in Tokyo.
//! - quinn@example.com: real data quirks that clients must survive (spec
//!   §5.1), stored raw: an all-day event as midnight-to-midnight `dateTime`,
//!   an all-day event with end == start, a timed event ending before it
//!   starts, UNTIL as DATE-TIME on an all-day series, EXDATE with TZID on an
//!   all-day series, yearly BYMONTHDAY without BYMONTH, a zone not in the tz
//!   database, unknown and newer `eventType`s.
//!
//! Ids are fixed so tests can name them. Seeding goes through the control
//! API's insert path; it must not bypass normalisation.

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::ToSpan;
use serde_json::{json, Value};

use crate::control_events::insert_event;
use crate::state::{Calendar, Inner};

pub const ALICE: &str = "alice@example.com";
pub const BOB: &str = "bob@example.com";
pub const ALICE_WORK: &str = "c_work0alice0000000000000000@group.calendar.google.com";
pub const ALICE_PERSONAL: &str = "c_personal0alice00000000000@group.calendar.google.com";
pub const HOLIDAYS: &str = "en.usa#holiday@group.v.calendar.google.com";
pub const QUINN: &str = "quinn@example.com";

const NY: &str = "America/New_York";

pub fn seed(inner: &mut Inner, base_url: &str) {
    let alice = inner.ensure_account(ALICE, Some("Alice Example"));
    let bob = inner.ensure_account(BOB, Some("Bob Builder"));
    set_primary_tz(inner, alice, NY);
    set_primary_tz(inner, bob, "Europe/Berlin");
    add_calendar(
        inner, alice, ALICE_WORK, "Work", NY, "9", "#7bd148", "owner",
    );
    add_calendar(
        inner,
        alice,
        ALICE_PERSONAL,
        "Personal",
        NY,
        "4",
        "#fa573c",
        "owner",
    );
    add_calendar(
        inner,
        alice,
        HOLIDAYS,
        "Holidays in United States",
        NY,
        "8",
        "#16a765",
        "reader",
    );

    let today = inner
        .now()
        .to_zoned(TimeZone::get(NY).unwrap_or(TimeZone::UTC))
        .date();
    let d = |days: i64| today.checked_add(days.days()).unwrap_or(today);
    let mut events: Vec<(&str, &str, Value)> = Vec::new();

    // Alice, Work.
    let standup_start = weekday_on_or_after(d(-21), Weekday::Monday);
    events.push((
        ALICE,
        ALICE_WORK,
        json!({
            "id": "standup0alice0001",
            "summary": "Daily standup",
            "location": "Zoom",
            "start": timed(standup_start, 9, 30, NY),
            "end": timed(standup_start, 9, 45, NY),
            "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"],
        }),
    ));
    // Weekly 1:1 on Tuesdays, started five weeks ago (before the early-November DST change).
    let one_on_one = weekday_on_or_after(d(-35), Weekday::Tuesday);
    let moved = weekday_on_or_after(d(1), Weekday::Tuesday);
    let cancelled = moved.checked_add(7.days()).unwrap_or(moved);
    events.push((
        ALICE,
        ALICE_WORK,
        json!({
            "id": "oneonone0alice001",
            "summary": "1:1 with Dana",
            "description": "Weekly check-in. <b>Agenda</b> in the doc.",
            "start": timed(one_on_one, 14, 0, NY),
            "end": timed(one_on_one, 14, 30, NY),
            "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=TU"],
            "attendees": [
                {"email": ALICE, "self": true, "organizer": true, "responseStatus": "accepted"},
                {"email": "dana@example.com", "displayName": "Dana", "responseStatus": "accepted"},
            ],
        }),
    ));
    let moved_to = moved.checked_add(1.day()).unwrap_or(moved);
    events.push((
        ALICE,
        ALICE_WORK,
        json!({
            "recurringEventId": "oneonone0alice001",
            "originalStartTime": timed(moved, 14, 0, NY),
            "summary": "1:1 with Dana (moved)",
            "start": timed(moved_to, 15, 0, NY),
            "end": timed(moved_to, 15, 30, NY),
        }),
    ));
    events.push((
        ALICE,
        ALICE_WORK,
        json!({
            "recurringEventId": "oneonone0alice001",
            "originalStartTime": timed(cancelled, 14, 0, NY),
            "status": "cancelled",
        }),
    ));
    let review = d(-60).first_of_month();
    events.push((ALICE, ALICE_WORK, json!({
        "id": "review0alice00001",
        "summary": "Monthly business review",
        "start": timed(review.nth_weekday_of_month(1, Weekday::Monday).unwrap_or(review), 11, 0, NY),
        "end": timed(review.nth_weekday_of_month(1, Weekday::Monday).unwrap_or(review), 12, 0, NY),
        "recurrence": ["RRULE:FREQ=MONTHLY;BYDAY=1MO"],
    })));
    events.push((
        ALICE,
        ALICE_WORK,
        json!({
            "id": "offsite0alice0001",
            "summary": "Team offsite",
            "location": "Lake Placid, NY",
            "start": {"date": d(12).to_string()},
            "end": {"date": d(15).to_string()},
            "transparency": "opaque",
        }),
    ));
    events.push((ALICE, ALICE_WORK, json!({
        "id": "berlin0alice00001",
        "summary": "Call with Berlin office",
        "start": timed(d(3), 10, 0, "Europe/Berlin"),
        "end": timed(d(3), 11, 0, "Europe/Berlin"),
        "conferenceData": {"entryPoints": [{"entryPointType": "video", "uri": "https://meet.example.com/abc-defg-hij"}]},
    })));
    events.push((
        ALICE,
        ALICE_WORK,
        json!({
            "id": "tokyo0alice000001",
            "summary": "Sync with Tokyo team",
            "start": timed(d(4), 9, 0, "Asia/Tokyo"),
            "end": timed(d(4), 9, 45, "Asia/Tokyo"),
        }),
    ));
    events.push((
        ALICE,
        ALICE_WORK,
        json!({
            "id": "ooo0alice00000001",
            "summary": "Out of office",
            "eventType": "outOfOffice",
            "transparency": "opaque",
            "start": timed(d(20), 0, 0, NY),
            "end": timed(d(21), 0, 0, NY),
        }),
    ));

    // Alice, Personal.
    let gym = weekday_on_or_after(d(-14), Weekday::Monday);
    events.push((
        ALICE,
        ALICE_PERSONAL,
        json!({
            "id": "gym0alice00000001",
            "summary": "Gym",
            "start": timed(gym, 18, 0, NY),
            "end": timed(gym, 19, 0, NY),
            "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO,TH;COUNT=40"],
        }),
    ));
    let birthday = d(9);
    let birthday_first =
        Date::new(birthday.year() - 3, birthday.month(), birthday.day()).unwrap_or(birthday);
    events.push((ALICE, ALICE_PERSONAL, json!({
        "id": "bday0alice0000001",
        "summary": "Mom's birthday",
        "start": {"date": birthday_first.to_string()},
        "end": {"date": birthday_first.checked_add(1.day()).unwrap_or(birthday_first).to_string()},
        "recurrence": ["RRULE:FREQ=YEARLY"],
        "transparency": "transparent",
    })));
    events.push((
        ALICE,
        ALICE_PERSONAL,
        json!({
            "id": "vacation0alice001",
            "summary": "Vacation in Lisbon",
            "start": {"date": d(24).to_string()},
            "end": {"date": d(31).to_string()},
        }),
    ));
    events.push((
        ALICE,
        ALICE_PERSONAL,
        json!({
            "id": "dinner0alice00001",
            "summary": "Dinner with Sam",
            "location": "Via Carota, 51 Grove St, New York",
            "start": timed(d(1), 19, 0, NY),
            "end": timed(d(1), 21, 0, NY),
        }),
    ));
    events.push((
        ALICE,
        ALICE,
        json!({
            "id": "dentist0alice0001",
            "summary": "Dentist",
            "start": timed(d(2), 8, 0, NY),
            "end": timed(d(2), 9, 0, NY),
        }),
    ));

    // Holidays (read-only calendar, fixed dates this year and next).
    for year in [today.year(), today.year() + 1] {
        let mut holidays = vec![
            ("New Year's Day", Date::new(year, 1, 1)),
            ("Valentine's Day", Date::new(year, 2, 14)),
        ];
        holidays.push(("Independence Day", Date::new(year, 7, 4)));
        holidays.push(("Halloween", Date::new(year, 10, 31)));
        if let Ok(nov) = Date::new(year, 11, 1) {
            holidays.push((
                "Thanksgiving Day",
                nov.nth_weekday_of_month(4, Weekday::Thursday),
            ));
        }
        holidays.push(("Christmas Day", Date::new(year, 12, 25)));
        for (name, date) in holidays {
            let Ok(date) = date else { continue };
            let id = format!(
                "{}_{}",
                date.strftime("%Y%m%d"),
                name.to_ascii_lowercase().replace(['\'', ' '], "")
            );
            events.push((ALICE, HOLIDAYS, json!({
                "id": id,
                "summary": name,
                "description": "Public holiday",
                "start": {"date": date.to_string()},
                "end": {"date": date.checked_add(1.day()).unwrap_or(date).to_string()},
                "transparency": "transparent",
                "visibility": "public",
                "organizer": {"email": HOLIDAYS, "displayName": "Holidays in United States", "self": true},
            })));
        }
    }

    // Bob.
    let planning = weekday_on_or_after(d(-7), Weekday::Wednesday);
    events.push((
        BOB,
        BOB,
        json!({
            "id": "planning0bob00001",
            "summary": "Sprint planning",
            "start": timed(planning, 10, 0, "Europe/Berlin"),
            "end": timed(planning, 11, 30, "Europe/Berlin"),
            "recurrence": ["RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=WE"],
        }),
    ));
    events.push((
        BOB,
        BOB,
        json!({
            "id": "flight0bob0000001",
            "summary": "Flight FRA → HND",
            "start": timed(d(6), 13, 0, "Europe/Berlin"),
            "end": timed(d(7), 8, 45, "Asia/Tokyo"),
        }),
    ));

    for (account, calendar, body) in events {
        if let Err(e) = insert_event(inner, base_url, account, calendar, body, false) {
            eprintln!("calsync-emulator: a sample event was rejected: {e}");
        }
    }
    seed_quirks(inner, base_url, d(0));
}

/// Quinn's calendar: shapes Google really sends and validation would refuse,
/// so they are stored raw (spec §5.1, gcal_sync's repair list).
fn seed_quirks(inner: &mut Inner, base_url: &str, today: Date) {
    inner.ensure_account(QUINN, Some("Quinn Quirk"));
    let d = |days: i64| today.checked_add(days.days()).unwrap_or(today);
    let ymd = |date: Date| date.strftime("%Y%m%d").to_string();
    let fixtures = [
        json!({"id": "quirkmidnight0001", "summary": "OOO as midnight-to-midnight", "eventType": "outOfOffice",
            "start": {"dateTime": format!("{}T00:00:00-05:00", d(5)), "timeZone": NY},
            "end": {"dateTime": format!("{}T00:00:00-05:00", d(6)), "timeZone": NY}}),
        json!({"id": "quirkzerodays0001", "summary": "All-day with end == start",
            "start": {"date": d(6).to_string()}, "end": {"date": d(6).to_string()}}),
        json!({"id": "quirkbackwards001", "summary": "Ends before it starts",
            "start": {"dateTime": format!("{}T10:00:00Z", d(7))}, "end": {"dateTime": format!("{}T09:00:00Z", d(7))}}),
        json!({"id": "quirkuntildt00001", "summary": "All-day weekly, UNTIL as DATE-TIME",
            "start": {"date": d(-14).to_string()}, "end": {"date": d(-13).to_string()},
            "recurrence": [format!("RRULE:FREQ=WEEKLY;UNTIL={}T000000Z", ymd(d(60)))]}),
        json!({"id": "quirkexdatetz0001", "summary": "All-day daily, EXDATE with TZID",
            "start": {"date": d(-2).to_string()}, "end": {"date": d(-1).to_string()},
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=10", format!("EXDATE;TZID=Europe/Berlin:{}T000000", ymd(d(1)))]}),
        json!({"id": "quirkbymonthday01", "summary": "Yearly BYMONTHDAY without BYMONTH",
            "start": {"date": format!("{}-01-15", today.year())}, "end": {"date": format!("{}-01-16", today.year())},
            "recurrence": ["RRULE:FREQ=YEARLY;BYMONTHDAY=15"]}),
        json!({"id": "quirkgmtzone00001", "summary": "Zone not in the tz database",
            "start": {"dateTime": format!("{}T12:00:00+02:00", d(3)), "timeZone": "GMT+02:00"},
            "end": {"dateTime": format!("{}T13:00:00+02:00", d(3)), "timeZone": "GMT+02:00"}}),
        json!({"id": "quirkworkloc00001", "summary": "Home", "eventType": "workingLocation",
            "workingLocationProperties": {"type": "homeOffice", "homeOffice": {}},
            "start": {"date": d(1).to_string()}, "end": {"date": d(2).to_string()}, "transparency": "transparent"}),
        json!({"id": "quirknewtype0001", "summary": "Some future event type", "eventType": "somethingNew",
            "start": {"dateTime": format!("{}T15:00:00Z", d(2))}, "end": {"dateTime": format!("{}T15:30:00Z", d(2))}}),
        json!({"id": "quirkdeclined0001", "summary": "Invitation I declined",
            "organizer": {"email": "boss@example.com"},
            "attendees": [{"email": QUINN, "self": true, "responseStatus": "declined"},
                          {"email": "boss@example.com", "organizer": true, "responseStatus": "accepted"}],
            "start": {"dateTime": format!("{}T16:00:00Z", d(2))}, "end": {"dateTime": format!("{}T17:00:00Z", d(2))}}),
    ];
    for mut body in fixtures {
        if let Some(obj) = body.as_object_mut() {
            obj.entry("status").or_insert_with(|| "confirmed".into());
            let uid = format!(
                "{}@google.com",
                obj.get("id").and_then(Value::as_str).unwrap_or("x")
            );
            obj.entry("iCalUID").or_insert_with(|| uid.into());
        }
        if let Err(e) = insert_event(inner, base_url, QUINN, QUINN, body, true) {
            eprintln!("calsync-emulator: a sample event was rejected: {e}");
        }
    }
}

fn set_primary_tz(inner: &mut Inner, ix: usize, tz: &str) {
    if let Some(cal) = inner.accounts[ix].calendars.iter_mut().find(|c| c.primary) {
        cal.time_zone = tz.to_owned();
    }
}

#[allow(clippy::too_many_arguments)]
fn add_calendar(
    inner: &mut Inner,
    ix: usize,
    id: &str,
    summary: &str,
    tz: &str,
    color_id: &str,
    bg: &str,
    role: &str,
) {
    let seq = inner.next_seq();
    let mut cal = Calendar::new(id, summary, tz, seq, false);
    cal.color_id = color_id.to_owned();
    cal.background_color = bg.to_owned();
    cal.access_role = role.to_owned();
    inner.accounts[ix].calendars.push(cal);
}

fn timed(date: Date, hour: i8, minute: i8, tz: &str) -> Value {
    let civil = date.at(hour, minute, 0, 0);
    let text = TimeZone::get(tz)
        .ok()
        .and_then(|zone| civil.to_zoned(zone).ok())
        .map(|z| crate::events::format_zoned(&z))
        .unwrap_or_else(|| civil.to_string());
    json!({ "dateTime": text, "timeZone": tz })
}

fn weekday_on_or_after(date: Date, wd: Weekday) -> Date {
    let delta = (wd.to_monday_zero_offset() - date.weekday().to_monday_zero_offset()).rem_euclid(7);
    date.checked_add(i64::from(delta).days()).unwrap_or(date)
}
