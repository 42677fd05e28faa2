//! VTIMEZONE (RFC 5545 §3.6.5) interpreted into a jiff zone, for TZIDs that
//! name no known zone.
//!
//! Each STANDARD/DAYLIGHT observance's onsets (DTSTART, its RRULE and
//! RDATEs, all local times in TZOFFSETFROM) become transitions, which are
//! written out as TZif data (RFC 8536) so that jiff does the lookups and the
//! gap/fold handling exactly as for IANA zones.

use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};

use super::TzError;
use crate::recur::civil;
use crate::recur::iter::{self, Bounds};
use crate::recur::rule::{Rule, Until};

/// One STANDARD or DAYLIGHT sub-component.
#[derive(Debug, Clone)]
pub struct Observance {
    /// DAYLIGHT (true) or STANDARD.
    pub dst: bool,
    /// DTSTART, local time in `offset_from`.
    pub start: DateTime,
    /// TZOFFSETFROM.
    pub offset_from: Offset,
    /// TZOFFSETTO.
    pub offset_to: Offset,
    /// RRULE, if any.
    pub rule: Option<Rule>,
    /// RDATEs (local times in `offset_from`).
    pub rdates: Vec<DateTime>,
}

/// Onsets are computed up to this civil second (2200-01-01); later times
/// keep the last offset.
const HORIZON: i64 = 7_258_118_400;
/// Most onsets taken from one observance.
const MAX_ONSETS: usize = 1_000;

/// Builds a zone named `tzid` from its observances.
pub fn build(tzid: &str, observances: &[Observance]) -> Result<TimeZone, TzError> {
    let mut transitions: Vec<(i64, Offset, bool)> = Vec::new();
    for ob in observances {
        let from = i64::from(ob.offset_from.seconds());
        let mut onsets = vec![civil::secs_of(ob.start)];
        if let Some(rule) = &ob.rule {
            let until = rule.until.map(|u| match u {
                Until::Date(d) => civil::secs_of(d.to_datetime(jiff::civil::Time::midnight())),
                Until::Floating(dt) => civil::secs_of(dt),
                Until::Utc(dt) => civil::secs_of(dt) + from,
            });
            let b = Bounds {
                lo: i64::MIN,
                hi: HORIZON,
                until,
                max_steps: 10_000,
                max_out: MAX_ONSETS,
            };
            iter::expand(rule, civil::secs_of(ob.start), false, &b, &mut onsets);
        }
        onsets.extend(ob.rdates.iter().map(|d| civil::secs_of(*d)));
        transitions.extend(
            onsets
                .into_iter()
                .map(|local| (local - from, ob.offset_to, ob.dst)),
        );
    }
    if transitions.is_empty() {
        return Err(TzError::EmptyVtimezone(tzid.to_string()));
    }
    transitions.sort_by_key(|t| t.0);
    transitions.dedup_by_key(|t| t.0);
    let earliest = observances
        .iter()
        .min_by_key(|o| civil::secs_of(o.start))
        .map(|o| o.offset_from)
        .unwrap_or(Offset::UTC);
    let data = tzif(earliest, &transitions);
    TimeZone::tzif(tzid, &data).map_err(|_| TzError::EmptyVtimezone(tzid.to_string()))
}

/// Writes a version-2 TZif file: an empty v1 block, then the 64-bit block
/// with one local time type per distinct (offset, dst) and no footer rule.
fn tzif(initial: Offset, transitions: &[(i64, Offset, bool)]) -> Vec<u8> {
    let mut types: Vec<(i32, bool)> = vec![(initial.seconds(), false)];
    let mut times = Vec::new();
    let mut idx = Vec::new();
    let mut current = (initial.seconds(), false);
    for &(at, off, dst) in transitions {
        let ty = (off.seconds(), dst);
        if ty == current {
            continue;
        }
        current = ty;
        let i = types.iter().position(|t| *t == ty).unwrap_or_else(|| {
            types.push(ty);
            types.len() - 1
        });
        times.push(at);
        idx.push(u8::try_from(i).unwrap_or(0));
        if types.len() >= 250 {
            break;
        }
    }
    let mut out = Vec::new();
    header(&mut out, 0, 1, 4);
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(b"VTZ\0");
    header(&mut out, times.len(), types.len(), 4);
    for t in &times {
        out.extend_from_slice(&t.to_be_bytes());
    }
    out.extend_from_slice(&idx);
    for (off, dst) in &types {
        out.extend_from_slice(&off.to_be_bytes());
        out.push(u8::from(*dst));
        out.push(0);
    }
    out.extend_from_slice(b"VTZ\0");
    out.extend_from_slice(b"\n\n");
    out
}

fn header(out: &mut Vec<u8>, timecnt: usize, typecnt: usize, charcnt: usize) {
    out.extend_from_slice(b"TZif2");
    out.extend_from_slice(&[0; 15]);
    for n in [0, 0, 0, timecnt, typecnt, charcnt] {
        out.extend_from_slice(&u32::try_from(n).unwrap_or(0).to_be_bytes());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn berlin_like() -> Vec<Observance> {
        let off = |h| Offset::from_seconds(h * 3600).unwrap();
        vec![
            Observance {
                dst: false,
                start: date(1970, 10, 25).at(3, 0, 0, 0),
                offset_from: off(2),
                offset_to: off(1),
                rule: Some(Rule::parse("FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU").unwrap()),
                rdates: vec![],
            },
            Observance {
                dst: true,
                start: date(1970, 3, 29).at(2, 0, 0, 0),
                offset_from: off(1),
                offset_to: off(2),
                rule: Some(Rule::parse("FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU").unwrap()),
                rdates: vec![],
            },
        ]
    }

    #[test]
    fn follows_rules() {
        let tz = build("Custom", &berlin_like()).unwrap();
        let real = TimeZone::get("Europe/Berlin").unwrap();
        for dt in [
            date(2026, 1, 10).at(12, 0, 0, 0),
            date(2026, 7, 10).at(12, 0, 0, 0),
            date(2026, 3, 29).at(2, 30, 0, 0),
            date(2026, 10, 25).at(2, 30, 0, 0),
            date(2150, 7, 1).at(0, 0, 0, 0),
        ] {
            let a = super::super::local_to_zoned(&tz, dt).unwrap().timestamp();
            let b = super::super::local_to_zoned(&real, dt).unwrap().timestamp();
            assert_eq!(a, b, "{dt}");
        }
    }

    #[test]
    fn refuses_empty() {
        assert!(build("X", &[]).is_err());
    }
}
