//! Civil calendar arithmetic on plain integers: day numbers and "civil
//! seconds" (seconds since 1970-01-01T00:00 on a wall clock without zone).
//!
//! The rule iterator works on these instead of jiff values because it walks
//! many candidate days per period; the conversions here cannot fail or panic
//! and are checked against jiff in the tests.

use jiff::civil::{Date, DateTime, Time};

/// Seconds in a civil day.
pub const DAY: i64 = 86_400;

/// Day number (days since 1970-01-01) of a proleptic Gregorian date
/// (H. Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`]: `(year, month, day)`.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Whether `y` is a Gregorian leap year.
pub fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Days in month `m` (1..=12) of year `y`.
pub fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Weekday of a day number, Monday = 0.
pub fn weekday(day: i64) -> i64 {
    // 1970-01-01 was a Thursday (3).
    (day + 3).rem_euclid(7)
}

/// Civil seconds of a jiff `DateTime` (sub-second part dropped).
pub fn secs_of(dt: DateTime) -> i64 {
    let d = days_from_civil(
        i64::from(dt.year()),
        i64::from(dt.month()),
        i64::from(dt.day()),
    );
    d * DAY + i64::from(dt.hour()) * 3600 + i64::from(dt.minute()) * 60 + i64::from(dt.second())
}

/// Jiff `DateTime` of civil seconds, or `None` outside jiff's range
/// (years -9999..=9999).
pub fn datetime_of(secs: i64) -> Option<DateTime> {
    let day = secs.div_euclid(DAY);
    let rem = secs.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(day);
    let date = Date::new(
        i16::try_from(y).ok()?,
        i8::try_from(m).ok()?,
        i8::try_from(d).ok()?,
    )
    .ok()?;
    let time = Time::new(
        i8::try_from(rem / 3600).ok()?,
        i8::try_from(rem / 60 % 60).ok()?,
        i8::try_from(rem % 60).ok()?,
        0,
    )
    .ok()?;
    Some(date.to_datetime(time))
}

/// Day number of the first day of week 1 of `year` for weeks starting on
/// `wkst` (0 = Monday): the week holding at least four days of the year
/// (RFC 5545 §3.3.10, after ISO 8601).
pub fn week1_start(year: i64, wkst: i64) -> i64 {
    let jan1 = days_from_civil(year, 1, 1);
    let back = (weekday(jan1) - wkst).rem_euclid(7);
    let start = jan1 - back;
    if back >= 4 {
        start + 7
    } else {
        start
    }
}

/// Number of weeks (52 or 53) in `year` for weeks starting on `wkst`.
pub fn weeks_in_year(year: i64, wkst: i64) -> i64 {
    (week1_start(year + 1, wkst) - week1_start(year, wkst)) / 7
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn matches_jiff() {
        for (y, m, d) in [
            (1970, 1, 1),
            (2000, 2, 29),
            (1600, 3, 1),
            (2026, 12, 31),
            (1, 1, 1),
        ] {
            let n = days_from_civil(y, m, d);
            assert_eq!(civil_from_days(n), (y, m, d));
            let dt = date(y as i16, m as i8, d as i8).at(13, 5, 7, 0);
            assert_eq!(datetime_of(secs_of(dt)), Some(dt));
            assert_eq!(weekday(n), i64::from(dt.weekday().to_monday_zero_offset()));
        }
    }

    #[test]
    fn iso_weeks() {
        // ISO week 1 of 2013 starts on Monday 2012-12-31; 2015 has 53 weeks.
        assert_eq!(civil_from_days(week1_start(2013, 0)), (2012, 12, 31));
        assert_eq!(weeks_in_year(2015, 0), 53);
        assert_eq!(weeks_in_year(2014, 0), 52);
    }
}
