//! Value types of RFC 5545 §3.3 as calsync reads them: DATE, DATE-TIME (UTC,
//! floating or with a TZID still to resolve), DURATION, PERIOD, UTC-OFFSET
//! and TEXT escapes.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::Offset;

use crate::recur::Length;

/// A DATE or DATE-TIME value before its TZID is resolved to a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawTime {
    /// `VALUE=DATE` (§3.3.4).
    Date(Date),
    /// No `Z` and no TZID: floating (§3.3.5 form #1).
    Floating(DateTime),
    /// Trailing `Z` (§3.3.5 form #2).
    Utc(DateTime),
    /// With a TZID parameter (§3.3.5 form #3); the name is unquoted.
    Local(DateTime, String),
}

impl RawTime {
    /// The wall-clock value as written.
    pub fn civil(&self) -> DateTime {
        match self {
            RawTime::Date(d) => d.to_datetime(Time::midnight()),
            RawTime::Floating(dt) | RawTime::Utc(dt) | RawTime::Local(dt, _) => *dt,
        }
    }
}

/// A PERIOD value (§3.3.9): explicit end or a duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeriodEnd {
    /// `start/end`.
    End(RawTime),
    /// `start/duration`.
    Duration(Length),
}

fn digits(s: &str) -> Option<i32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses `YYYYMMDD` (§3.3.4).
pub fn parse_date(s: &str) -> Option<Date> {
    let s = s.trim();
    // The slices below are by byte: only ASCII can be a date.
    if s.len() != 8 || !s.is_ascii() {
        return None;
    }
    let y = i16::try_from(digits(&s[0..4])?).ok()?;
    let m = i8::try_from(digits(&s[4..6])?).ok()?;
    let d = i8::try_from(digits(&s[6..8])?).ok()?;
    Date::new(y, m, d).ok()
}

/// Parses `YYYYMMDDTHHMMSS[Z]` (§3.3.5); returns the civil value and whether
/// it is UTC. A leap second (60) is read as 59, as jiff has none.
pub fn parse_date_time(s: &str) -> Option<(DateTime, bool)> {
    let s = s.trim();
    let (body, utc) = match s.strip_suffix(['Z', 'z']) {
        Some(b) => (b, true),
        None => (s, false),
    };
    if body.len() != 15 || !body.is_ascii() || !matches!(body.as_bytes()[8], b'T' | b't') {
        return None;
    }
    let date = parse_date(&body[..8])?;
    let h = i8::try_from(digits(&body[9..11])?).ok()?;
    let mi = i8::try_from(digits(&body[11..13])?).ok()?;
    let sec = i8::try_from(digits(&body[13..15])?).ok()?.min(59);
    let time = Time::new(h, mi, sec, 0).ok()?;
    Some((date.to_datetime(time), utc))
}

/// Parses one DATE or DATE-TIME value. `date_hint` is true for `VALUE=DATE`;
/// a bare 8-digit value is a DATE whatever the hint says, since producers
/// forget the parameter.
pub fn parse_time(s: &str, tzid: Option<&str>, date_hint: bool) -> Option<RawTime> {
    let s = s.trim();
    if date_hint || s.len() == 8 {
        if let Some(d) = parse_date(s) {
            return Some(RawTime::Date(d));
        }
    }
    let (dt, utc) = parse_date_time(s)?;
    Some(match (utc, tzid) {
        (true, _) => RawTime::Utc(dt),
        (false, Some(z)) if !z.trim().is_empty() => RawTime::Local(dt, z.trim().to_string()),
        (false, _) => RawTime::Floating(dt),
    })
}

/// Largest duration accepted (about 1000 years); larger ones are refused so
/// that arithmetic cannot overflow.
const MAX_DURATION_DAYS: i64 = 366_000;

/// Parses a DURATION (§3.3.6): `[+-]P(nW | nD[T[nH][nM][nS]] | T...)`. Weeks
/// and days are nominal (calendar days), hours/minutes/seconds exact.
pub fn parse_duration(s: &str) -> Option<Length> {
    let s = s.trim();
    let (neg, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let rest = rest.strip_prefix(['P', 'p'])?;
    let mut days: i64 = 0;
    let mut secs: i64 = 0;
    let mut num: Option<i64> = None;
    let mut in_time = false;
    let mut any = false;
    for c in rest.chars() {
        match c.to_ascii_uppercase() {
            d @ '0'..='9' => {
                let v = num
                    .unwrap_or(0)
                    .checked_mul(10)?
                    .checked_add(i64::from(d as u8 - b'0'))?;
                if v > MAX_DURATION_DAYS * 86_400 {
                    return None;
                }
                num = Some(v);
            }
            'T' if !in_time && num.is_none() => in_time = true,
            unit => {
                let n = num.take()?;
                any = true;
                match (unit, in_time) {
                    ('W', false) => days = days.checked_add(n.checked_mul(7)?)?,
                    ('D', false) => days = days.checked_add(n)?,
                    ('H', true) => secs = secs.checked_add(n.checked_mul(3600)?)?,
                    ('M', true) => secs = secs.checked_add(n.checked_mul(60)?)?,
                    ('S', true) => secs = secs.checked_add(n)?,
                    _ => return None,
                }
            }
        }
    }
    if num.is_some() || !any || days > MAX_DURATION_DAYS || secs > MAX_DURATION_DAYS * 86_400 {
        return None;
    }
    let sign = if neg { -1 } else { 1 };
    Some(Length::nominal(sign * days, sign * secs))
}

/// Parses a UTC-OFFSET (§3.3.14): `+HHMM[SS]` / `-HHMM[SS]`.
pub fn parse_utc_offset(s: &str) -> Option<Offset> {
    let s = s.trim();
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let body = &s[1..];
    // Slicing below is by bytes: anything but ASCII digits is no offset.
    if (body.len() != 4 && body.len() != 6) || !body.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h = digits(&body[0..2])?;
    let m = digits(&body[2..4])?;
    let sec = if body.len() == 6 {
        digits(&body[4..6])?
    } else {
        0
    };
    if h > 23 || m > 59 || sec > 59 {
        return None;
    }
    Offset::from_seconds(sign * (h * 3600 + m * 60 + sec)).ok()
}

/// Parses one PERIOD value (§3.3.9).
pub fn parse_period(s: &str, tzid: Option<&str>) -> Option<(RawTime, PeriodEnd)> {
    let (a, b) = s.split_once('/')?;
    let start = parse_time(a, tzid, false)?;
    let b = b.trim();
    let end = if b.starts_with(['P', 'p', '+', '-']) {
        PeriodEnd::Duration(parse_duration(b)?)
    } else {
        PeriodEnd::End(parse_time(b, tzid, false)?)
    };
    Some((start, end))
}

/// Removes TEXT escapes (§3.3.11): `\\` `\;` `\,` `\n` `\N`.
pub fn unescape_text(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Splits a multi-valued property value on commas (§3.1.1), skipping empty
/// parts.
pub fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn non_ascii_values_are_refused_not_split() {
        assert_eq!(parse_utc_offset("+0\u{9c}0"), None);
        assert_eq!(parse_date("2024\u{9c}101"), None);
        assert_eq!(parse_date_time("20240310T09\u{e9}000"), None);
    }

    #[test]
    fn times() {
        assert_eq!(
            parse_time("20240310", None, false),
            Some(RawTime::Date(date(2024, 3, 10)))
        );
        assert_eq!(
            parse_time("20240310T093000Z", Some("X"), false),
            Some(RawTime::Utc(date(2024, 3, 10).at(9, 30, 0, 0)))
        );
        assert_eq!(
            parse_time("20240310T093000", Some("Europe/Berlin"), false),
            Some(RawTime::Local(
                date(2024, 3, 10).at(9, 30, 0, 0),
                "Europe/Berlin".into()
            ))
        );
        assert!(parse_time("19970901T1300Z", None, false).is_none());
        assert!(parse_time("20241301", None, false).is_none());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("PT1H30M"), Some(Length::nominal(0, 5400)));
        assert_eq!(parse_duration("P1W"), Some(Length::nominal(7, 0)));
        assert_eq!(parse_duration("-P1DT1S"), Some(Length::nominal(-1, -1)));
        assert!(parse_duration("P999999999999999999W").is_none());
        assert!(parse_duration("P").is_none());
        assert!(parse_duration("PT").is_none());
        assert!(parse_duration("P1H").is_none());
    }

    #[test]
    fn offsets_and_text() {
        assert_eq!(parse_utc_offset("-0500").unwrap().seconds(), -18000);
        assert!(parse_utc_offset("+5744").is_none());
        assert_eq!(unescape_text(r"a\, b\; c\\d\ne"), "a, b; c\\d\ne");
    }
}
