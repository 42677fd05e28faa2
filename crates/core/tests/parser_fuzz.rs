//! Robustness: arbitrary bytes and mutated real calendars fed to the parser
//! and the expander must never panic, and must finish (the test would hang
//! otherwise). Set `CALSYNC_ICS_CORPUS` to a folder of .ics files to mutate
//! those too (e.g. the conformance corpus).
#![allow(clippy::unwrap_used)]

use calsync_core::ical;
use calsync_core::recur::{expand, Window};
use proptest::prelude::*;

const SEEDS: &[&str] = &[
    "BEGIN:VCALENDAR\r\nX-WR-TIMEZONE:Europe/Berlin\r\nBEGIN:VTIMEZONE\r\nTZID:Custom\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART;TZID=Custom:20260105T090000\r\nDTEND;TZID=Custom:20260105T100000\r\nRRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20261231T000000Z\r\nEXDATE;TZID=Custom:20260107T090000\r\nRDATE;VALUE=PERIOD:20260110T120000Z/PT2H\r\nSUMMARY:Team\\, weekly\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:a\r\nRECURRENCE-ID;TZID=Custom;RANGE=THISANDFUTURE:20260112T090000\r\nDTSTART;TZID=Custom:20260112T100000\r\nDURATION:PT30M\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    "BEGIN:VEVENT\nUID:b\nDTSTART;VALUE=DATE:20240229\nRRULE:FREQ=YEARLY;BYMONTHDAY=-1;BYSETPOS=1;COUNT=10\nEND:VEVENT\n",
    "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:c\nDTSTART:19700101T000000\nRRULE:FREQ=SECONDLY;BYMONTH=2;BYHOUR=3\nEND:VEVENT\nBEGIN:VEVENT\nUID:d\nDTSTART;TZID=\"W. Europe Standard Time\":20260301T023000\nRRULE:FREQ=YEARLY;BYWEEKNO=-1,53;BYDAY=SU\nEND:VEVENT\nEND:VCALENDAR\n",
];

fn window() -> Window {
    let mut w = Window::new(
        "2026-01-01T00:00:00Z".parse().unwrap(),
        "2027-01-01T00:00:00Z".parse().unwrap(),
    )
    .unwrap();
    w.limit = 5_000;
    w
}

fn run(bytes: &[u8]) {
    if let Ok(cal) = ical::parse(bytes) {
        let w = window();
        for s in &cal.series {
            let e = expand(s, &w).unwrap();
            assert!(e.occurrences.len() <= w.limit);
        }
    }
}

#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize, usize),
    Truncate(usize),
    Duplicate(usize, usize),
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    let special = prop_oneof![
        Just(b':'),
        Just(b';'),
        Just(b','),
        Just(b'='),
        Just(b'"'),
        Just(b'\r'),
        Just(b'\n'),
        Just(b' '),
        Just(b'-'),
        Just(b'9'),
        Just(b'0'),
        Just(b'Z'),
        Just(0xff),
        any::<u8>()
    ];
    prop_oneof![
        (any::<usize>(), special.clone()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), special).prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<usize>(), 0usize..40).prop_map(|(i, n)| Edit::Delete(i, n)),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), 1usize..200).prop_map(|(i, n)| Edit::Duplicate(i, n)),
    ]
}

fn mutate(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for e in edits {
        if b.is_empty() {
            break;
        }
        let at = |i: usize, len: usize| i % len;
        match *e {
            Edit::Flip(i, v) => {
                let i = at(i, b.len());
                b[i] = v;
            }
            Edit::Insert(i, v) => {
                let i = at(i, b.len());
                b.insert(i, v);
            }
            Edit::Delete(i, n) => {
                let i = at(i, b.len());
                let j = (i + n).min(b.len());
                b.drain(i..j);
            }
            Edit::Truncate(i) => {
                let i = at(i, b.len());
                b.truncate(i);
            }
            Edit::Duplicate(i, n) => {
                let i = at(i, b.len());
                let j = (i + n).min(b.len());
                let chunk = b[i..j].to_vec();
                b.splice(i..i, chunk);
            }
        }
    }
    b
}

fn corpus() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = SEEDS.iter().map(|s| s.as_bytes().to_vec()).collect();
    if let Ok(dir) = std::env::var("CALSYNC_ICS_CORPUS") {
        let mut stack = vec![std::path::PathBuf::from(dir)];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|e| e == "ics") {
                    if let Ok(bytes) = std::fs::read(&p) {
                        if bytes.len() < 200_000 {
                            out.push(bytes);
                        }
                    }
                }
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        run(&bytes);
    }

    #[test]
    fn mutated_calendars_never_panic(seed in any::<prop::sample::Index>(), edits in proptest::collection::vec(edit_strategy(), 1..12)) {
        let corpus = corpus();
        let seed = &corpus[seed.index(corpus.len())];
        run(&mutate(seed, &edits));
    }
}

#[test]
fn every_seed_expands() {
    for s in SEEDS {
        let cal = ical::parse(s.as_bytes()).unwrap();
        assert!(!cal.series.is_empty(), "{s}");
        run(s.as_bytes());
    }
}

#[test]
fn refuses_oversized_input() {
    let big = vec![b'A'; ical::MAX_INPUT_BYTES + 1];
    let err = ical::parse(&big).unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");
}
