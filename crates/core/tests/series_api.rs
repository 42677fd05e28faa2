//! The provider-neutral API as the sync engine uses it for Google events:
//! recurrence lines, an exception instance, a cancelled instance and a
//! THISANDFUTURE change, all fed to the same expander as ICS files.
#![allow(clippy::unwrap_used)]

use calsync_core::recur::google::parse_recurrence;
use calsync_core::recur::{expand, EndSpec, Override, Series, Status, Time, Window};
use jiff::civil::date;
use jiff::tz::TimeZone;

fn berlin(y: i16, m: i8, d: i8, h: i8) -> Time {
    Time::Zoned(date(y, m, d).at(h, 0, 0, 0).in_tz("Europe/Berlin").unwrap())
}

fn local_starts(series: &Series, from: &str, to: &str) -> Vec<(String, String)> {
    let w = Window::new(from.parse().unwrap(), to.parse().unwrap()).unwrap();
    expand(series, &w)
        .unwrap()
        .occurrences
        .into_iter()
        .map(|o| match o.start {
            Time::Zoned(z) => (z.datetime().to_string(), o.summary.to_string()),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn google_style_series() {
    let tz = TimeZone::get("Europe/Berlin").unwrap();
    let rec = parse_recurrence(
        &[
            "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=6",
            "EXDATE;TZID=Europe/Berlin:20260112T090000",
        ],
        Some(&tz),
    )
    .unwrap();
    let mut s = Series::single(
        "g1",
        "Weekly",
        berlin(2026, 1, 5, 9),
        EndSpec::At(berlin(2026, 1, 5, 10)),
    );
    s.rules = rec.rules;
    s.exdates = rec.exdates;
    // An exception instance: 19 January moved to 11:00.
    s.overrides.push(Override {
        recurrence_id: berlin(2026, 1, 19, 9),
        this_and_future: false,
        start: berlin(2026, 1, 19, 11),
        end: EndSpec::At(berlin(2026, 1, 19, 12)),
        summary: "Moved".into(),
        status: Some(Status::Confirmed),
    });
    // A cancelled instance (Google status "cancelled").
    s.cancelled.push(berlin(2026, 1, 26, 9));
    // From 2 February on, at 15:00 under a new name.
    s.overrides.push(Override {
        recurrence_id: berlin(2026, 2, 2, 9),
        this_and_future: true,
        start: berlin(2026, 2, 2, 15),
        end: EndSpec::At(berlin(2026, 2, 2, 16)),
        summary: "Later".into(),
        status: None,
    });
    let got = local_starts(&s, "2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z");
    let want = [
        ("2026-01-05T09:00:00", "Weekly"),
        ("2026-01-19T11:00:00", "Moved"),
        ("2026-02-02T15:00:00", "Later"),
        ("2026-02-09T15:00:00", "Later"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn window_and_limit_are_honoured() {
    let tz = TimeZone::get("America/New_York").unwrap();
    let rec = parse_recurrence(&["RRULE:FREQ=DAILY"], Some(&tz)).unwrap();
    let start = Time::Zoned(date(1990, 1, 1).at(9, 0, 0, 0).to_zoned(tz).unwrap());
    let mut s = Series::single("d", "Daily since 1990", start, EndSpec::Default);
    s.rules = rec.rules;
    let mut w = Window::new(
        "2026-03-01T00:00:00Z".parse().unwrap(),
        "2026-04-01T00:00:00Z".parse().unwrap(),
    )
    .unwrap();
    let e = expand(&s, &w).unwrap();
    assert_eq!(e.occurrences.len(), 31);
    assert!(!e.truncated);
    w.limit = 10;
    let e = expand(&s, &w).unwrap();
    assert_eq!(e.occurrences.len(), 10);
    assert!(e.truncated);
}

#[test]
fn all_day_series_stays_dates() {
    let rec = parse_recurrence(&["RRULE:FREQ=YEARLY", "EXDATE;VALUE=DATE:20270310"], None).unwrap();
    let mut s = Series::single(
        "b",
        "Birthday",
        Time::Date(date(2020, 3, 10)),
        EndSpec::Default,
    );
    s.rules = rec.rules;
    s.exdates = rec.exdates;
    let w = Window::new(
        "2026-01-01T00:00:00Z".parse().unwrap(),
        "2029-01-01T00:00:00Z".parse().unwrap(),
    )
    .unwrap();
    let got: Vec<(Time, Time)> = expand(&s, &w)
        .unwrap()
        .occurrences
        .into_iter()
        .map(|o| (o.start, o.end))
        .collect();
    assert_eq!(
        got,
        vec![
            (Time::Date(date(2026, 3, 10)), Time::Date(date(2026, 3, 11))),
            (Time::Date(date(2028, 3, 10)), Time::Date(date(2028, 3, 11))),
        ]
    );
}

#[test]
fn date_recurrence_id_names_the_timed_instance_of_that_day() {
    let ics = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:t\r\nDTSTART;TZID=Europe/Berlin:20260105T090000\r\nRRULE:FREQ=DAILY;COUNT=3\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:t\r\nRECURRENCE-ID;VALUE=DATE:20260106\r\nDTSTART;TZID=Europe/Berlin:20260106T140000\r\nSUMMARY:Moved\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let cal = calsync_core::ical::parse(ics.as_bytes()).unwrap();
    let got = local_starts(
        &cal.series[0],
        "2026-01-01T00:00:00Z",
        "2026-02-01T00:00:00Z",
    );
    let starts: Vec<&str> = got.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        starts,
        [
            "2026-01-05T09:00:00",
            "2026-01-06T14:00:00",
            "2026-01-07T09:00:00"
        ]
    );
}
