//! Google Calendar's `recurrence` field: a list of RFC 5545 content lines
//! (`RRULE:…`, `RDATE;…:…`, `EXDATE;TZID=…:…`) that belong to an event
//! whose start zone is given separately. Exception instances and cancelled
//! instances are mapped by the caller to [`Override`](super::Override) and
//! [`Series::cancelled`](super::Series::cancelled).

use std::borrow::Cow;

use jiff::tz::TimeZone;

use super::{RDate, RecurError, Rule, Time};
use crate::ical::lexer::split_line;
use crate::ical::value::{parse_period, parse_time, split_list, PeriodEnd, RawTime};
use crate::tz::{local_to_zoned, resolve_name};

/// The recurrence parts of one event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recurrence {
    /// RRULE lines.
    pub rules: Vec<Rule>,
    /// RDATE values.
    pub rdates: Vec<RDate>,
    /// EXDATE values.
    pub exdates: Vec<Time>,
}

/// Resolves a raw value: a TZID names its zone; a floating time is read in
/// `zone` when the series has one (Google omits the TZID then).
fn resolve(raw: RawTime, zone: Option<&TimeZone>) -> Result<Time, RecurError> {
    let bad = |s: String| RecurError::BadLine(s);
    Ok(match raw {
        RawTime::Date(d) => Time::Date(d),
        RawTime::Utc(dt) => {
            let z = dt
                .to_zoned(TimeZone::UTC)
                .map_err(|_| bad(dt.to_string()))?;
            match zone {
                Some(tz) => Time::Zoned(z.with_time_zone(tz.clone())),
                None => Time::Zoned(z),
            }
        }
        RawTime::Floating(dt) => match zone {
            Some(tz) => Time::Zoned(local_to_zoned(tz, dt).map_err(|_| bad(dt.to_string()))?),
            None => Time::Floating(dt),
        },
        RawTime::Local(dt, name) => {
            let tz = resolve_name(&name).or_else(|| zone.cloned());
            match tz {
                Some(tz) => Time::Zoned(local_to_zoned(&tz, dt).map_err(|_| bad(dt.to_string()))?),
                None => Time::Floating(dt),
            }
        }
    })
}

/// Parses Google-style recurrence lines for a series whose start is in
/// `start_zone` (`None` for all-day or floating series).
///
/// ```
/// use calsync_core::recur::google::parse_recurrence;
/// let tz = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
/// let r = parse_recurrence(
///     &["RRULE:FREQ=WEEKLY;BYDAY=MO", "EXDATE;TZID=Europe/Berlin:20260105T090000"],
///     Some(&tz),
/// ).unwrap();
/// assert_eq!(r.rules.len(), 1);
/// assert_eq!(r.exdates.len(), 1);
/// ```
pub fn parse_recurrence<S: AsRef<str>>(
    lines: &[S],
    start_zone: Option<&TimeZone>,
) -> Result<Recurrence, RecurError> {
    let mut out = Recurrence::default();
    for line in lines {
        let text = line.as_ref().trim();
        let parsed =
            split_line(Cow::Borrowed(text)).ok_or_else(|| RecurError::BadLine(text.to_string()))?;
        let tzid = parsed.param("TZID");
        let is_date = parsed
            .param("VALUE")
            .is_some_and(|v| v.eq_ignore_ascii_case("DATE"));
        let is_period = parsed
            .param("VALUE")
            .is_some_and(|v| v.eq_ignore_ascii_case("PERIOD"));
        let name = parsed.name.to_ascii_uppercase();
        match name.as_str() {
            "RRULE" => out.rules.push(Rule::parse(&parsed.value)?),
            "EXDATE" | "RDATE" => {
                for item in split_list(&parsed.value) {
                    if name == "RDATE" && (is_period || item.contains('/')) {
                        let (s, e) = parse_period(item, tzid)
                            .ok_or_else(|| RecurError::BadLine(text.to_string()))?;
                        let start = resolve(s, start_zone)?;
                        let end = match e {
                            PeriodEnd::End(e) => Some(resolve(e, start_zone)?),
                            PeriodEnd::Duration(l) => super::series_add_length(&start, &l),
                        };
                        out.rdates.push(RDate { start, end });
                        continue;
                    }
                    let raw = parse_time(item, tzid, is_date)
                        .ok_or_else(|| RecurError::BadLine(text.to_string()))?;
                    let t = resolve(raw, start_zone)?;
                    if name == "RDATE" {
                        out.rdates.push(RDate {
                            start: t,
                            end: None,
                        });
                    } else {
                        out.exdates.push(t);
                    }
                }
            }
            // EXRULE was removed by RFC 5545; Google never sends it.
            _ => return Err(RecurError::BadLine(text.to_string())),
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_lines() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let r = parse_recurrence(
            &[
                "RRULE:FREQ=WEEKLY;BYDAY=MO",
                "EXDATE;TZID=Europe/Berlin:20260105T090000,20260112T090000",
                "RDATE;VALUE=DATE:20260110",
                "EXDATE:20260119T080000Z",
            ],
            Some(&tz),
        )
        .unwrap();
        assert_eq!(r.rules.len(), 1);
        assert_eq!(r.exdates.len(), 3);
        match &r.exdates[2] {
            Time::Zoned(z) => assert_eq!(z.datetime().hour(), 9),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            r.rdates[0].start,
            Time::Date(jiff::civil::date(2026, 1, 10))
        );
        assert!(parse_recurrence(&["BOGUS"], None).is_err());
        assert!(parse_recurrence(&["RRULE:FREQ=NEVER"], None).is_err());
    }
}
