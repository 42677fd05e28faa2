//! Golden tests for recurrences across DST transitions (RFC 5545 §3.3.5:
//! a local time in a gap is read with the offset before the gap, a local
//! time in a fold is the first of the two).
#![allow(clippy::unwrap_used)]

use calsync_core::ical;
use calsync_core::recur::{expand, Time, Window};
use jiff::Timestamp;

fn starts(ics: &str, from: &str, to: &str) -> Vec<String> {
    let cal = ical::parse(ics.as_bytes()).unwrap();
    let window = Window::new(
        from.parse::<Timestamp>().unwrap(),
        to.parse::<Timestamp>().unwrap(),
    )
    .unwrap();
    let mut out = Vec::new();
    for s in &cal.series {
        for o in expand(s, &window).unwrap().occurrences {
            match (&o.start, &o.end) {
                (Time::Zoned(a), Time::Zoned(b)) => out.push(format!(
                    "{} {} {}",
                    a.timestamp(),
                    a.datetime().time(),
                    b.timestamp().as_second() - a.timestamp().as_second()
                )),
                other => panic!("expected zoned times, got {other:?}"),
            }
        }
    }
    out
}

fn event(tz: &str, start: &str, end: &str, rule: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART;TZID={tz}:{start}\r\nDTEND;TZID={tz}:{end}\r\nRRULE:{rule}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

#[test]
fn weekly_0230_new_york_march_gap() {
    // 2026-03-08 02:30 does not exist in New York: it is read as 03:30 EDT.
    let ics = event(
        "America/New_York",
        "20260222T023000",
        "20260222T033000",
        "FREQ=WEEKLY",
    );
    let got = starts(&ics, "2026-02-28T00:00:00Z", "2026-03-20T00:00:00Z");
    assert_eq!(
        got,
        vec![
            "2026-03-01T07:30:00Z 02:30:00 3600",
            "2026-03-08T07:30:00Z 03:30:00 3600",
            "2026-03-15T06:30:00Z 02:30:00 3600",
        ]
    );
}

#[test]
fn weekly_0230_new_york_november() {
    // 02:30 is after the New York fold (01:00–02:00), so it stays 02:30 EST;
    // 01:30 on 2026-11-01 is ambiguous and is the first (EDT) one.
    let ics = event(
        "America/New_York",
        "20261018T023000",
        "20261018T033000",
        "FREQ=WEEKLY",
    );
    let got = starts(&ics, "2026-10-24T00:00:00Z", "2026-11-10T00:00:00Z");
    assert_eq!(
        got,
        vec![
            "2026-10-25T06:30:00Z 02:30:00 3600",
            "2026-11-01T07:30:00Z 02:30:00 3600",
            "2026-11-08T07:30:00Z 02:30:00 3600",
        ]
    );
    let ics = event(
        "America/New_York",
        "20261018T013000",
        "20261018T023000",
        "FREQ=WEEKLY",
    );
    let got = starts(&ics, "2026-10-31T00:00:00Z", "2026-11-02T00:00:00Z");
    assert_eq!(got, vec!["2026-11-01T05:30:00Z 01:30:00 7200"]);
}

#[test]
fn weekly_0230_berlin_march_gap_and_october_fold() {
    let ics = event(
        "Europe/Berlin",
        "20260315T023000",
        "20260315T033000",
        "FREQ=WEEKLY;COUNT=4",
    );
    let got = starts(&ics, "2026-03-01T00:00:00Z", "2026-04-30T00:00:00Z");
    assert_eq!(
        got,
        vec![
            "2026-03-15T01:30:00Z 02:30:00 3600",
            "2026-03-22T01:30:00Z 02:30:00 3600",
            "2026-03-29T01:30:00Z 03:30:00 3600",
            "2026-04-05T00:30:00Z 02:30:00 3600",
        ]
    );
    // 2026-10-25 02:30 happens twice in Berlin: the first (CEST) is meant.
    // The instance's end, 03:30, is an hour and a half of wall clock later
    // in CET, so the occurrence lasts two hours.
    let ics = event(
        "Europe/Berlin",
        "20261018T023000",
        "20261018T033000",
        "FREQ=WEEKLY",
    );
    let got = starts(&ics, "2026-10-17T00:00:00Z", "2026-11-02T00:00:00Z");
    assert_eq!(
        got,
        vec![
            "2026-10-18T00:30:00Z 02:30:00 3600",
            "2026-10-25T00:30:00Z 02:30:00 7200",
            "2026-11-01T01:30:00Z 02:30:00 3600",
        ]
    );
}

#[test]
fn daily_0900_stays_0900_local_across_dst() {
    for (tz, from, to, n) in [
        (
            "America/New_York",
            "2026-03-05T00:00:00Z",
            "2026-03-12T00:00:00Z",
            7,
        ),
        (
            "America/New_York",
            "2026-10-29T00:00:00Z",
            "2026-11-05T00:00:00Z",
            7,
        ),
        (
            "Europe/Berlin",
            "2026-03-26T00:00:00Z",
            "2026-04-02T00:00:00Z",
            7,
        ),
        (
            "Europe/Berlin",
            "2026-10-22T00:00:00Z",
            "2026-10-29T00:00:00Z",
            7,
        ),
    ] {
        let ics = event(tz, "20260101T090000", "20260101T100000", "FREQ=DAILY");
        let got = starts(&ics, from, to);
        assert_eq!(got.len(), n, "{tz} {from}: {got:?}");
        for g in &got {
            assert!(g.ends_with(" 09:00:00 3600"), "{tz}: {g}");
        }
        // The UTC hour changes across the transition, the local one does not.
        let hours: std::collections::BTreeSet<&str> = got.iter().map(|g| &g[11..13]).collect();
        assert_eq!(hours.len(), 2, "{tz}: {got:?}");
    }
}

#[test]
fn all_day_dates_never_shift() {
    let ics = "BEGIN:VCALENDAR\r\nX-WR-TIMEZONE:Pacific/Auckland\r\nBEGIN:VEVENT\r\nUID:d\r\nDTSTART;VALUE=DATE:20260308\r\nRRULE:FREQ=YEARLY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let cal = ical::parse(ics.as_bytes()).unwrap();
    let w = Window::new(
        "2027-01-01T00:00:00Z".parse().unwrap(),
        "2028-01-01T00:00:00Z".parse().unwrap(),
    )
    .unwrap();
    let occ = expand(&cal.series[0], &w).unwrap().occurrences;
    assert_eq!(occ.len(), 1);
    assert_eq!(occ[0].start, Time::Date(jiff::civil::date(2027, 3, 8)));
    assert_eq!(occ[0].end, Time::Date(jiff::civil::date(2027, 3, 9)));
}
