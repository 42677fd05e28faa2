//! The RECUR value type (RFC 5545 §3.3.10): parsing an RRULE into a
//! validated [`Rule`].

use jiff::civil::{Date, DateTime, Weekday};

use super::RecurError;

/// FREQ of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Freq {
    /// Every N seconds.
    Secondly,
    /// Every N minutes.
    Minutely,
    /// Every N hours.
    Hourly,
    /// Every N days.
    Daily,
    /// Every N weeks (weeks start on WKST).
    Weekly,
    /// Every N months.
    Monthly,
    /// Every N years.
    Yearly,
}

/// UNTIL of a rule, in the form it was written (§3.3.10: DATE, or DATE-TIME
/// that should be UTC when DTSTART has a zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// A DATE: the last day that may hold an instance.
    Date(Date),
    /// A DATE-TIME without `Z`: compared on the series' wall clock.
    Floating(DateTime),
    /// A DATE-TIME with `Z`.
    Utc(DateTime),
}

/// One BYDAY entry: an optional ordinal (`-1SU`, `2MO`) and a weekday.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByDay {
    /// 0 when absent; otherwise 1..=53 or -53..=-1.
    pub nth: i8,
    /// The weekday.
    pub weekday: Weekday,
}

/// A parsed recurrence rule. Fields mirror the RRULE parts; empty vectors
/// mean the part is absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// FREQ (required).
    pub freq: Freq,
    /// INTERVAL, at least 1.
    pub interval: u32,
    /// COUNT.
    pub count: Option<u32>,
    /// UNTIL.
    pub until: Option<Until>,
    /// BYSECOND 0..=60.
    pub by_second: Vec<i8>,
    /// BYMINUTE 0..=59.
    pub by_minute: Vec<i8>,
    /// BYHOUR 0..=23.
    pub by_hour: Vec<i8>,
    /// BYDAY.
    pub by_day: Vec<ByDay>,
    /// BYMONTHDAY ±1..=31.
    pub by_month_day: Vec<i8>,
    /// BYYEARDAY ±1..=366.
    pub by_year_day: Vec<i16>,
    /// BYWEEKNO ±1..=53.
    pub by_week_no: Vec<i8>,
    /// BYMONTH 1..=12.
    pub by_month: Vec<i8>,
    /// BYSETPOS ±1..=366.
    pub by_set_pos: Vec<i16>,
    /// WKST, Monday by default.
    pub wkst: Weekday,
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

fn list<T: TryFrom<i64>>(
    part: &str,
    value: &str,
    lo: i64,
    hi: i64,
    zero_ok: bool,
) -> Result<Vec<T>, RecurError> {
    let bad = || RecurError::BadRule(format!("{part}={value}"));
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let n: i64 = item.trim_start_matches('+').parse().map_err(|_| bad())?;
        if n < lo || n > hi || (n == 0 && !zero_ok) {
            return Err(bad());
        }
        out.push(T::try_from(n).map_err(|_| bad())?);
    }
    Ok(out)
}

fn by_day(value: &str) -> Result<Vec<ByDay>, RecurError> {
    let bad = || RecurError::BadRule(format!("BYDAY={value}"));
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if item.len() < 2 || !item.is_char_boundary(item.len() - 2) {
            return Err(bad());
        }
        let (num, wd) = item.split_at(item.len() - 2);
        let weekday = weekday(wd).ok_or_else(bad)?;
        let nth: i8 = match num.trim_start_matches('+') {
            "" => 0,
            n => n.parse().map_err(|_| bad())?,
        };
        if nth.abs() > 53 || (nth == 0 && !num.is_empty()) {
            return Err(bad());
        }
        out.push(ByDay { nth, weekday });
    }
    Ok(out)
}

fn until(value: &str) -> Result<Until, RecurError> {
    use crate::ical::value::{parse_date, parse_date_time};
    let v = value.trim();
    if let Some(d) = parse_date(v) {
        return Ok(Until::Date(d));
    }
    match parse_date_time(v) {
        Some((dt, true)) => Ok(Until::Utc(dt)),
        Some((dt, false)) => Ok(Until::Floating(dt)),
        None => Err(RecurError::BadRule(format!("UNTIL={value}"))),
    }
}

impl Rule {
    /// Parses an RRULE value such as `FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10`
    /// (an `RRULE:` prefix is accepted). Unknown X- parts are ignored; RSCALE
    /// (RFC 7529) is refused because only the Gregorian calendar is supported.
    pub fn parse(text: &str) -> Result<Rule, RecurError> {
        let text = text.trim();
        let text = match text.get(..6) {
            Some(p) if p.eq_ignore_ascii_case("RRULE:") => &text[6..],
            _ => text,
        };
        let mut rule = Rule {
            freq: Freq::Daily,
            interval: 1,
            count: None,
            until: None,
            by_second: vec![],
            by_minute: vec![],
            by_hour: vec![],
            by_day: vec![],
            by_month_day: vec![],
            by_year_day: vec![],
            by_week_no: vec![],
            by_month: vec![],
            by_set_pos: vec![],
            wkst: Weekday::Monday,
        };
        let mut freq = None;
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| RecurError::BadRule(part.to_string()))?;
            let k = k.trim().to_ascii_uppercase();
            let v = v.trim();
            match k.as_str() {
                "FREQ" => freq = Some(parse_freq(v)?),
                // A broken INTERVAL or COUNT (COUNT=-1 is seen in exports) is
                // ignored rather than losing the whole rule.
                "INTERVAL" => rule.interval = v.parse::<u32>().unwrap_or(1).max(1),
                "COUNT" => rule.count = v.parse::<u32>().ok().filter(|&n| n > 0),
                "UNTIL" => rule.until = Some(until(v)?),
                "BYSECOND" => rule.by_second = list(&k, v, 0, 60, true)?,
                "BYMINUTE" => rule.by_minute = list(&k, v, 0, 59, true)?,
                "BYHOUR" => rule.by_hour = list(&k, v, 0, 23, true)?,
                "BYDAY" => rule.by_day = by_day(v)?,
                "BYMONTHDAY" => rule.by_month_day = list(&k, v, -31, 31, false)?,
                "BYYEARDAY" => rule.by_year_day = list(&k, v, -366, 366, false)?,
                "BYWEEKNO" => rule.by_week_no = list(&k, v, -53, 53, false)?,
                "BYMONTH" => rule.by_month = list(&k, v, 1, 12, false)?,
                "BYSETPOS" => rule.by_set_pos = list(&k, v, -366, 366, false)?,
                "WKST" => {
                    rule.wkst = weekday(v).ok_or_else(|| RecurError::BadRule(part.to_string()))?
                }
                "RSCALE" | "SKIP" => return Err(RecurError::Unsupported(part.to_string())),
                _ => {}
            }
        }
        rule.freq = freq.ok_or_else(|| RecurError::BadRule(format!("no FREQ in {text}")))?;
        // Leap seconds do not exist on jiff's clock; 60 means the last second.
        for s in &mut rule.by_second {
            *s = (*s).min(59);
        }
        rule.by_second.sort_unstable();
        rule.by_second.dedup();
        Ok(rule)
    }

    /// True when no BYxxx part is present: each period yields at most one
    /// instance, at DTSTART's position in it.
    pub(crate) fn is_plain(&self) -> bool {
        self.by_second.is_empty()
            && self.by_minute.is_empty()
            && self.by_hour.is_empty()
            && self.by_day.is_empty()
            && self.by_month_day.is_empty()
            && self.by_year_day.is_empty()
            && self.by_week_no.is_empty()
            && self.by_month.is_empty()
            && self.by_set_pos.is_empty()
    }
}

fn parse_freq(v: &str) -> Result<Freq, RecurError> {
    Ok(match v.to_ascii_uppercase().as_str() {
        "SECONDLY" => Freq::Secondly,
        "MINUTELY" => Freq::Minutely,
        "HOURLY" => Freq::Hourly,
        "DAILY" => Freq::Daily,
        "WEEKLY" => Freq::Weekly,
        "MONTHLY" => Freq::Monthly,
        "YEARLY" => Freq::Yearly,
        _ => return Err(RecurError::BadRule(format!("FREQ={v}"))),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_parts() {
        let r = Rule::parse("RRULE:FREQ=MONTHLY;BYDAY=-1SU,+2MO,TU;BYSETPOS=-1;WKST=SU;COUNT=3")
            .unwrap();
        assert_eq!(r.freq, Freq::Monthly);
        assert_eq!(
            r.by_day[0],
            ByDay {
                nth: -1,
                weekday: Weekday::Sunday
            }
        );
        assert_eq!(r.by_day[1].nth, 2);
        assert_eq!(r.by_day[2].nth, 0);
        assert_eq!(r.by_set_pos, vec![-1]);
        assert_eq!(r.wkst, Weekday::Sunday);
        assert_eq!(r.count, Some(3));
    }

    #[test]
    fn refuses_bad_rules() {
        assert!(Rule::parse("FREQ=INVALID").is_err());
        assert!(Rule::parse("BYDAY=MO").is_err());
        assert!(Rule::parse("FREQ=DAILY;BYMONTH=13").is_err());
        assert!(Rule::parse("FREQ=DAILY;BYMONTHDAY=0").is_err());
        assert!(Rule::parse("RSCALE=CHINESE;FREQ=YEARLY").is_err());
        assert!(Rule::parse("FREQ=DAILY;BYDAY=é").is_err());
    }
}
