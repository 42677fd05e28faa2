//! Just enough RFC 5545 recurrence to act like Google when it expands series:
//! `singleEvents=true`, `events.instances`, validating instance ids, and
//! deciding whether a master overlaps a `timeMin`/`timeMax` window.
//!
//! Supported: RRULE FREQ=DAILY/WEEKLY/MONTHLY/YEARLY with INTERVAL, COUNT,
//! UNTIL, BYDAY (with ordinals for monthly/yearly), BYMONTHDAY, BYMONTH; EXDATE
//! and RDATE (date, UTC, or TZID forms). Expansion happens in the event's own
//! zone, so DST shifts move the UTC instant and keep the wall time, as Google
//! does. Anything unsupported degrades to "the first occurrence only"; this
//! module never panics on odd input and always terminates (bounded loops).

use std::collections::BTreeSet;

use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};

/// An occurrence start: an all-day date, or a zoned instant.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    Date(Date),
    Zoned(Zoned),
}

impl Start {
    /// The instant this start begins (all-day: midnight in `tz`).
    pub fn instant(&self, tz: &TimeZone) -> Option<Timestamp> {
        match self {
            Start::Date(d) => d.to_zoned(tz.clone()).ok().map(|z| z.timestamp()),
            Start::Zoned(z) => Some(z.timestamp()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Freq {
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

#[derive(Debug, Clone)]
struct Rule {
    freq: Freq,
    interval: i64,
    count: Option<usize>,
    until: Option<Bound>,
    by_day: Vec<(Option<i8>, Weekday)>,
    by_month_day: Vec<i8>,
    by_month: Vec<i8>,
}

#[derive(Debug, Clone)]
enum Bound {
    Date(Date),
    Instant(Timestamp),
    Floating(DateTime),
}

/// One EXDATE/RDATE value.
#[derive(Debug, Clone)]
enum Moment {
    Date(Date),
    Instant(Timestamp),
}

const MAX_PERIODS: usize = 50_000;

/// Expands a series: starts in order, from `dtstart`, stopping at `limit`
/// occurrences or once a start reaches `stop` (exclusive).
pub fn expand(dtstart: &Start, recurrence: &[String], stop: Timestamp, limit: usize) -> Vec<Start> {
    let tz = match dtstart {
        Start::Zoned(z) => z.time_zone().clone(),
        Start::Date(_) => TimeZone::UTC,
    };
    let mut rules = Vec::new();
    let mut exdates = Vec::new();
    let mut rdates = Vec::new();
    for line in recurrence {
        let Some((head, value)) = line.split_once(':') else {
            continue;
        };
        let mut parts = head.split(';');
        let name = parts.next().unwrap_or("").to_ascii_uppercase();
        let tzid = parts
            .find_map(|p| p.strip_prefix("TZID="))
            .map(str::to_owned);
        match name.as_str() {
            "RRULE" => {
                if let Some(rule) = parse_rule(value) {
                    rules.push(rule);
                }
            }
            "EXDATE" => exdates.extend(parse_moments(value, tzid.as_deref(), &tz)),
            "RDATE" => rdates.extend(parse_moments(value, tzid.as_deref(), &tz)),
            _ => {}
        }
    }

    let mut starts: Vec<Start> = Vec::new();
    match rules.first() {
        Some(rule) => expand_rule(dtstart, rule, stop, limit, &mut starts),
        None => starts.push(dtstart.clone()),
    }
    for rd in &rdates {
        if let Some(s) = moment_to_start(rd, dtstart) {
            if s.instant(&tz).is_some_and(|t| t < stop) && !starts.contains(&s) {
                starts.push(s);
            }
        }
    }
    starts.retain(|s| !exdates.iter().any(|ex| moment_matches(ex, s)));
    starts.sort_by_key(|s| s.instant(&tz));
    starts.truncate(limit);
    starts
}

/// Whether `candidate` is one of the series' occurrence starts.
pub fn is_occurrence(dtstart: &Start, recurrence: &[String], candidate: &Start) -> bool {
    let tz = TimeZone::UTC;
    let Some(at) = candidate.instant(&tz) else {
        return false;
    };
    let stop = at.checked_add(1.second()).unwrap_or(at);
    expand(dtstart, recurrence, stop, 100_000)
        .iter()
        .any(|s| s.instant(&tz) == Some(at))
}

fn parse_rule(value: &str) -> Option<Rule> {
    let mut rule = Rule {
        freq: Freq::Daily,
        interval: 1,
        count: None,
        until: None,
        by_day: Vec::new(),
        by_month_day: Vec::new(),
        by_month: Vec::new(),
    };
    let mut has_freq = false;
    for part in value.split(';') {
        let Some((k, v)) = part.split_once('=') else {
            continue;
        };
        match k.to_ascii_uppercase().as_str() {
            "FREQ" => {
                has_freq = true;
                rule.freq = match v.to_ascii_uppercase().as_str() {
                    "DAILY" => Freq::Daily,
                    "WEEKLY" => Freq::Weekly,
                    "MONTHLY" => Freq::Monthly,
                    "YEARLY" => Freq::Yearly,
                    _ => return None,
                };
            }
            "INTERVAL" => rule.interval = v.parse::<i64>().ok().filter(|n| *n > 0)?,
            "COUNT" => rule.count = v.parse::<usize>().ok(),
            "UNTIL" => rule.until = parse_bound(v),
            "BYDAY" => {
                for d in v.split(',') {
                    let d = d.trim();
                    if d.len() < 2 {
                        continue;
                    }
                    let (num, name) = d.split_at(d.len() - 2);
                    let wd = weekday(name)?;
                    let ord = if num.is_empty() {
                        None
                    } else {
                        num.parse::<i8>().ok()
                    };
                    rule.by_day.push((ord, wd));
                }
            }
            "BYMONTHDAY" => {
                rule.by_month_day = v.split(',').filter_map(|n| n.parse().ok()).collect()
            }
            "BYMONTH" => rule.by_month = v.split(',').filter_map(|n| n.parse().ok()).collect(),
            _ => {}
        }
    }
    has_freq.then_some(rule)
}

fn weekday(s: &str) -> Option<Weekday> {
    Some(match s.to_ascii_uppercase().as_str() {
        "MO" => Weekday::Monday,
        "TU" => Weekday::Tuesday,
        "WE" => Weekday::Wednesday,
        "TH" => Weekday::Thursday,
        "FR" => Weekday::Friday,
        "SA" => Weekday::Saturday,
        "SU" => Weekday::Sunday,
        _ => return None,
    })
}

/// `20261201`, `20261201T100000Z` or floating `20261201T100000`.
fn parse_bound(v: &str) -> Option<Bound> {
    let v = v.trim();
    if v.len() == 8 {
        return parse_date(v).map(Bound::Date);
    }
    let dt = parse_datetime(v.trim_end_matches('Z'))?;
    if v.ends_with('Z') {
        dt.to_zoned(TimeZone::UTC)
            .ok()
            .map(|z| Bound::Instant(z.timestamp()))
    } else {
        Some(Bound::Floating(dt))
    }
}

fn parse_date(v: &str) -> Option<Date> {
    if v.len() != 8 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y = v[0..4].parse().ok()?;
    let m = v[4..6].parse().ok()?;
    let d = v[6..8].parse().ok()?;
    Date::new(y, m, d).ok()
}

fn parse_datetime(v: &str) -> Option<DateTime> {
    let (d, t) = v.split_once('T')?;
    let date = parse_date(d)?;
    if t.len() < 6 || !t.is_ascii() {
        return None;
    }
    let h = t[0..2].parse().ok()?;
    let mi = t[2..4].parse().ok()?;
    let s = t[4..6].parse().ok()?;
    jiff::civil::Time::new(h, mi, s, 0)
        .ok()
        .map(|time| date.to_datetime(time))
}

fn parse_moments(value: &str, tzid: Option<&str>, series_tz: &TimeZone) -> Vec<Moment> {
    let zone = tzid
        .and_then(|t| TimeZone::get(t).ok())
        .unwrap_or_else(|| series_tz.clone());
    value
        .split(',')
        .filter_map(|v| match parse_bound(v)? {
            Bound::Date(d) => Some(Moment::Date(d)),
            Bound::Instant(t) => Some(Moment::Instant(t)),
            Bound::Floating(dt) => dt
                .to_zoned(zone.clone())
                .ok()
                .map(|z| Moment::Instant(z.timestamp())),
        })
        .collect()
}

fn moment_matches(m: &Moment, s: &Start) -> bool {
    match (m, s) {
        (Moment::Date(d), Start::Date(sd)) => d == sd,
        (Moment::Date(d), Start::Zoned(z)) => z.date() == *d,
        (Moment::Instant(t), Start::Zoned(z)) => z.timestamp() == *t,
        (Moment::Instant(t), Start::Date(sd)) => t.to_zoned(TimeZone::UTC).date() == *sd,
    }
}

fn moment_to_start(m: &Moment, dtstart: &Start) -> Option<Start> {
    match (m, dtstart) {
        (Moment::Date(d), Start::Date(_)) => Some(Start::Date(*d)),
        (Moment::Date(d), Start::Zoned(z)) => d
            .to_datetime(z.time())
            .to_zoned(z.time_zone().clone())
            .ok()
            .map(Start::Zoned),
        (Moment::Instant(t), Start::Zoned(z)) => {
            Some(Start::Zoned(t.to_zoned(z.time_zone().clone())))
        }
        (Moment::Instant(t), Start::Date(_)) => Some(Start::Date(t.to_zoned(TimeZone::UTC).date())),
    }
}

fn expand_rule(dtstart: &Start, rule: &Rule, stop: Timestamp, limit: usize, out: &mut Vec<Start>) {
    let (start_date, make): (Date, Box<dyn Fn(Date) -> Option<Start>>) = match dtstart {
        Start::Date(d) => (*d, Box::new(|d| Some(Start::Date(d)))),
        Start::Zoned(z) => {
            let time = z.time();
            let tz = z.time_zone().clone();
            (
                z.date(),
                Box::new(move |d: Date| {
                    d.to_datetime(time)
                        .to_zoned(tz.clone())
                        .ok()
                        .map(Start::Zoned)
                }),
            )
        }
    };
    let tz = match dtstart {
        Start::Zoned(z) => z.time_zone().clone(),
        Start::Date(_) => TimeZone::UTC,
    };
    let mut produced = 0usize;
    for period in 0..MAX_PERIODS {
        let Some(candidates) = period_dates(rule, start_date, period as i64) else {
            return;
        };
        for date in candidates {
            if date < start_date {
                continue;
            }
            let Some(start) = make(date) else { continue };
            if past_until(rule, &start, &tz) {
                return;
            }
            let Some(at) = start.instant(&tz) else {
                continue;
            };
            if at >= stop {
                return;
            }
            produced += 1;
            out.push(start);
            if out.len() >= limit || rule.count.is_some_and(|c| produced >= c) {
                return;
            }
        }
    }
}

fn past_until(rule: &Rule, start: &Start, tz: &TimeZone) -> bool {
    match (&rule.until, start) {
        (None, _) => false,
        (Some(Bound::Date(u)), Start::Date(d)) => d > u,
        (Some(Bound::Date(u)), Start::Zoned(z)) => z.date() > *u,
        (Some(Bound::Instant(u)), s) => s.instant(tz).is_some_and(|t| t > *u),
        (Some(Bound::Floating(u)), Start::Zoned(z)) => z.datetime() > *u,
        (Some(Bound::Floating(u)), Start::Date(d)) => *d > u.date(),
    }
}

/// The candidate dates of the `k`-th period of the rule, in order.
fn period_dates(rule: &Rule, start: Date, k: i64) -> Option<Vec<Date>> {
    let step = k.checked_mul(rule.interval)?;
    let mut dates = match rule.freq {
        Freq::Daily => {
            let d = start.checked_add(step.days()).ok()?;
            vec![d]
        }
        Freq::Weekly => {
            let monday = start
                .checked_sub((start.weekday().to_monday_zero_offset() as i64).days())
                .ok()?;
            let week = monday.checked_add(step.weeks()).ok()?;
            if rule.by_day.is_empty() {
                vec![week
                    .checked_add((start.weekday().to_monday_zero_offset() as i64).days())
                    .ok()?]
            } else {
                rule.by_day
                    .iter()
                    .filter_map(|(_, wd)| {
                        week.checked_add((wd.to_monday_zero_offset() as i64).days())
                            .ok()
                    })
                    .collect()
            }
        }
        Freq::Monthly => {
            let month = start.first_of_month().checked_add(step.months()).ok()?;
            month_dates(rule, month, start.day())
        }
        Freq::Yearly => {
            let year =
                Date::new(start.year().checked_add(i16::try_from(step).ok()?)?, 1, 1).ok()?;
            let months: Vec<i8> = if rule.by_month.is_empty() {
                vec![start.month()]
            } else {
                rule.by_month.clone()
            };
            let mut all = Vec::new();
            for m in months {
                if let Ok(first) = Date::new(year.year(), m, 1) {
                    all.extend(month_dates(rule, first, start.day()));
                }
            }
            all
        }
    };
    dates.sort();
    dates.dedup();
    Some(dates)
}

/// Dates in the month starting at `first` selected by BYDAY/BYMONTHDAY (or the start's day).
fn month_dates(rule: &Rule, first: Date, start_day: i8) -> Vec<Date> {
    let days = first.days_in_month();
    let mut set = BTreeSet::new();
    if !rule.by_day.is_empty() && rule.freq != Freq::Weekly {
        for (ord, wd) in &rule.by_day {
            match ord {
                Some(n) => {
                    if let Ok(d) = first.nth_weekday_of_month(*n, *wd) {
                        set.insert(d);
                    }
                }
                None => {
                    for day in 1..=days {
                        if let Ok(d) = Date::new(first.year(), first.month(), day) {
                            if d.weekday() == *wd {
                                set.insert(d);
                            }
                        }
                    }
                }
            }
        }
    } else if !rule.by_month_day.is_empty() {
        for md in &rule.by_month_day {
            let day = if *md < 0 { days + 1 + md } else { *md };
            if let Ok(d) = Date::new(first.year(), first.month(), day) {
                set.insert(d);
            }
        }
    } else if let Ok(d) = Date::new(first.year(), first.month(), start_day) {
        // A start on the 31st skips shorter months (RFC 5545), as Google does.
        set.insert(d);
    }
    set.into_iter().collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn zoned(s: &str) -> Start {
        Start::Zoned(s.parse::<Zoned>().unwrap())
    }

    #[test]
    fn weekly_keeps_wall_time_across_dst() {
        let start = zoned("2026-10-26T10:00:00-04:00[America/New_York]");
        let stop: Timestamp = "2026-11-20T00:00:00Z".parse().unwrap();
        let out = expand(&start, &["RRULE:FREQ=WEEKLY;BYDAY=MO".into()], stop, 100);
        let hours: Vec<i8> = out
            .iter()
            .map(|s| match s {
                Start::Zoned(z) => z.hour(),
                Start::Date(_) => 0,
            })
            .collect();
        assert_eq!(hours, vec![10, 10, 10, 10]);
    }

    #[test]
    fn count_until_and_exdate() {
        let start = Start::Date(Date::new(2026, 1, 1).unwrap());
        let far: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
        let out = expand(
            &start,
            &[
                "RRULE:FREQ=DAILY;COUNT=5".into(),
                "EXDATE;VALUE=DATE:20260102".into(),
            ],
            far,
            100,
        );
        assert_eq!(out.len(), 4);
        let out = expand(
            &start,
            &["RRULE:FREQ=MONTHLY;UNTIL=20260401".into()],
            far,
            100,
        );
        assert_eq!(out.len(), 4);
        let out = expand(
            &start,
            &["RRULE:FREQ=MONTHLY;BYDAY=-1FR;COUNT=2".into()],
            far,
            100,
        );
        assert_eq!(
            out,
            vec![
                Start::Date(Date::new(2026, 1, 30).unwrap()),
                Start::Date(Date::new(2026, 2, 27).unwrap())
            ]
        );
    }

    #[test]
    fn garbage_is_harmless() {
        let start = zoned("2026-01-01T10:00:00+00:00[UTC]");
        let far: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(
            expand(
                &start,
                &["RRULE:FREQ=SECONDLY".into(), "BOGUS".into()],
                far,
                10
            )
            .len(),
            1
        );
        assert!(is_occurrence(
            &start,
            &["RRULE:FREQ=DAILY".into()],
            &zoned("2026-01-05T10:00:00+00:00[UTC]")
        ));
        assert!(!is_occurrence(
            &start,
            &["RRULE:FREQ=DAILY".into()],
            &zoned("2026-01-05T11:00:00+00:00[UTC]")
        ));
    }
}
