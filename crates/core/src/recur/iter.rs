//! Expansion of one [`Rule`] on the wall clock (RFC 5545 §3.3.10, the
//! BYxxx expand/limit table on page 44), bounded by a civil window.
//!
//! Works period by period (year, month, week, day, hour, minute, second
//! stepped by INTERVAL): the period's candidate days and times are built,
//! sorted, cut by BYSETPOS, then checked against DTSTART, UNTIL and COUNT.
//! Zones are applied by the caller: the rule speaks of local times.

use super::civil::{self, DAY};
use super::rule::{Freq, Rule};

/// Where iteration may stop and what it may skip; all values are civil
/// seconds (see [`civil`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// Instances before this are counted but not returned.
    pub lo: i64,
    /// Iteration stops at the first instance after this.
    pub hi: i64,
    /// UNTIL on the series' wall clock, inclusive.
    pub until: Option<i64>,
    /// Most periods to visit before giving up (never hang).
    pub max_steps: u64,
    /// Most instances to return.
    pub max_out: usize,
}

/// Why iteration ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The rule or the window was exhausted.
    Done,
    /// A step or output limit was hit; the result is incomplete.
    Truncated,
}

struct Ctx<'r> {
    rule: &'r Rule,
    start: i64,
    start_day: i64,
    y0: i64,
    m0: i64,
    d0: i64,
    tod: i64,
    wkst: i64,
    date_only: bool,
    freq: Freq,
    interval: i64,
}

fn wd_index(w: jiff::civil::Weekday) -> i64 {
    i64::from(w.to_monday_zero_offset())
}

/// Like [`expand_counted`], without reporting the steps taken.
pub(crate) fn expand(
    rule: &Rule,
    start: i64,
    date_only: bool,
    b: &Bounds,
    out: &mut Vec<i64>,
) -> End {
    expand_counted(rule, start, date_only, b, out, &mut 0)
}

/// Appends to `out` the instances of `rule` for a series starting at civil
/// second `start` that fall in `[b.lo, b.hi]`. `date_only` ignores the time
/// parts of the rule (a DATE DTSTART). `used` grows by the periods visited.
pub(crate) fn expand_counted(
    rule: &Rule,
    start: i64,
    date_only: bool,
    b: &Bounds,
    out: &mut Vec<i64>,
    used: &mut u64,
) -> End {
    let start_day = start.div_euclid(DAY);
    let (mut y0, m0, d0) = civil::civil_from_days(start_day);
    if rule.freq == Freq::Yearly && !rule.by_week_no.is_empty() {
        // BYWEEKNO years are week-numbering years: a DTSTART on 2010-01-02
        // lies in week 53 of 2009, and INTERVAL counts from 2009 (libical).
        y0 = week_year(start_day, y0, i64::from(rule.wkst.to_monday_zero_offset()));
    }
    let mut freq = rule.freq;
    let mut interval = i64::from(rule.interval);
    if date_only && freq < Freq::Daily {
        // Sub-daily steps on a DATE make no sense; keep one instance a day.
        freq = Freq::Daily;
        interval = 1;
    }
    let cx = Ctx {
        rule,
        start,
        start_day,
        y0,
        m0,
        d0,
        tod: start.rem_euclid(DAY),
        wkst: wd_index(rule.wkst),
        date_only,
        freq,
        interval,
    };
    let mut count_left = rule.count.map(i64::from);
    let mut k = cx.skip_ahead(b.lo);
    if k > 0 {
        match count_left {
            None => {}
            Some(n) if cx.plain() => {
                if n <= k {
                    return End::Done;
                }
                count_left = Some(n - k);
            }
            Some(_) => k = 0,
        }
    }
    let mut steps = 0u64;
    let mut cands = Vec::new();
    loop {
        steps += 1;
        *used += 1;
        if steps > b.max_steps {
            return End::Truncated;
        }
        let Some(pstart) = cx.period_start(k) else {
            return End::Done;
        };
        if pstart > b.hi || b.until.is_some_and(|u| pstart > u) {
            return End::Done;
        }
        cands.clear();
        let next = cx.candidates(k, pstart, &mut cands);
        for &c in &cands {
            if c < cx.start {
                continue;
            }
            if b.until.is_some_and(|u| c > u) || c > b.hi {
                return End::Done;
            }
            if let Some(n) = count_left.as_mut() {
                if *n <= 0 {
                    return End::Done;
                }
                *n -= 1;
            }
            if c >= b.lo {
                out.push(c);
                if out.len() >= b.max_out {
                    return End::Truncated;
                }
            }
        }
        if count_left == Some(0) {
            return End::Done;
        }
        k = next;
    }
}

/// The week-numbering year (weeks starting on `wkst`) of day `day`, which
/// lies in calendar year `y`.
fn week_year(day: i64, y: i64, wkst: i64) -> i64 {
    if day >= civil::week1_start(y + 1, wkst) {
        y + 1
    } else if day < civil::week1_start(y, wkst) {
        y - 1
    } else {
        y
    }
}

impl Ctx<'_> {
    /// Plain rules yield exactly one instance per period, so skipped periods
    /// can be charged against COUNT without visiting them.
    fn plain(&self) -> bool {
        self.rule.is_plain()
            && match self.freq {
                Freq::Monthly => self.d0 <= 28,
                Freq::Yearly => !(self.m0 == 2 && self.d0 == 29),
                _ => true,
            }
    }

    /// Periods that end before civil second `lo` can be skipped (all of them
    /// when there is no COUNT, see `expand`). Kept one period short to stay
    /// clear of rounding at the edges.
    fn skip_ahead(&self, lo: i64) -> i64 {
        if lo <= self.start {
            return 0;
        }
        let lo_day = lo.div_euclid(DAY);
        let (ly, lm, _) = civil::civil_from_days(lo_day);
        let units = match self.freq {
            Freq::Yearly => ly - self.y0 - 1,
            Freq::Monthly => (ly * 12 + lm) - (self.y0 * 12 + self.m0) - 1,
            Freq::Weekly => (lo_day - self.week_start(self.start_day)) / 7 - 1,
            Freq::Daily => lo_day - self.start_day - 1,
            Freq::Hourly => (lo - self.start) / 3600 - 1,
            Freq::Minutely => (lo - self.start) / 60 - 1,
            Freq::Secondly => lo - self.start - 1,
        };
        (units / self.interval).max(0)
    }

    fn week_start(&self, day: i64) -> i64 {
        day - (civil::weekday(day) - self.wkst).rem_euclid(7)
    }

    fn unit_secs(&self) -> i64 {
        match self.freq {
            Freq::Hourly => 3600,
            Freq::Minutely => 60,
            _ => 1,
        }
    }

    fn sub_daily_base(&self) -> i64 {
        let u = self.unit_secs();
        self.start - self.start.rem_euclid(u)
    }

    /// Civil second at which period `k` starts, `None` beyond year 9999.
    fn period_start(&self, k: i64) -> Option<i64> {
        let step = k.checked_mul(self.interval)?;
        let s = match self.freq {
            Freq::Yearly => {
                let y = self.y0.checked_add(step)?;
                civil::days_from_civil(y, 1, 1) * DAY
            }
            Freq::Monthly => {
                let idx = (self.y0 * 12 + self.m0 - 1).checked_add(step)?;
                civil::days_from_civil(idx.div_euclid(12), idx.rem_euclid(12) + 1, 1) * DAY
            }
            Freq::Weekly => (self.week_start(self.start_day) + step.checked_mul(7)?) * DAY,
            Freq::Daily => (self.start_day + step) * DAY,
            _ => self
                .sub_daily_base()
                .checked_add(step.checked_mul(self.unit_secs())?)?,
        };
        (s <= MAX_CIVIL).then_some(s)
    }

    /// Fills `out` with period `k`'s instances in order; returns the index of
    /// the next period worth visiting.
    fn candidates(&self, k: i64, pstart: i64, out: &mut Vec<i64>) -> i64 {
        let mut days = Vec::new();
        let pday = pstart.div_euclid(DAY);
        match self.freq {
            Freq::Yearly => self.year_days(civil::civil_from_days(pday).0, &mut days),
            Freq::Monthly => {
                let (y, m, _) = civil::civil_from_days(pday);
                self.month_days(y, m, &mut days);
            }
            Freq::Weekly => self.week_days(pday, &mut days),
            Freq::Daily => {
                if self.day_ok(pday) {
                    days.push(pday);
                }
            }
            _ => {
                if !self.day_ok(pday) {
                    return self.next_period_after_day(pday);
                }
                days.push(pday);
            }
        }
        let times = self.times(pstart);
        for &d in &days {
            for &t in &times {
                out.push(d * DAY + t);
            }
        }
        out.sort_unstable();
        out.dedup();
        if !self.rule.by_set_pos.is_empty() {
            let all = std::mem::take(out);
            let n = i64::try_from(all.len()).unwrap_or(i64::MAX);
            for &p in &self.rule.by_set_pos {
                let idx = if p > 0 {
                    i64::from(p) - 1
                } else {
                    n + i64::from(p)
                };
                if let Some(&v) = usize::try_from(idx).ok().and_then(|i| all.get(i)) {
                    out.push(v);
                }
            }
            out.sort_unstable();
            out.dedup();
        }
        k + 1
    }

    /// For sub-daily rules, the first period index whose start is on or after
    /// the next day that passes the BYxxx day filters (days failing them are
    /// skipped whole instead of hour by hour).
    fn next_period_after_day(&self, day: i64) -> i64 {
        // Look ahead for the next day that passes the day filters (up to
        // four years, so an impossible rule still moves on quickly).
        let mut next = day + 1;
        for _ in 0..1461 {
            if self.day_ok(next) {
                break;
            }
            next += 1;
        }
        let target = next * DAY - self.sub_daily_base();
        let step = self.unit_secs() * self.interval;
        // Ceiling division; target and step are positive here.
        (target + step - 1).div_euclid(step)
    }

    fn times(&self, pstart: i64) -> Vec<i64> {
        if self.date_only {
            return vec![0];
        }
        let r = self.rule;
        let (h0, mi0, s0) = (self.tod / 3600, self.tod / 60 % 60, self.tod % 60);
        let ptod = pstart.rem_euclid(DAY);
        let (ph, pm, ps) = (ptod / 3600, ptod / 60 % 60, ptod % 60);
        let pick = |by: &[i8], period: Option<i64>, dflt: i64| -> Vec<i64> {
            match period {
                Some(p) if by.is_empty() || by.contains(&(p as i8)) => vec![p],
                Some(_) => vec![],
                None if by.is_empty() => vec![dflt],
                None => by.iter().map(|&v| i64::from(v)).collect(),
            }
        };
        let (hp, mp, sp) = match self.freq {
            Freq::Hourly => (Some(ph), None, None),
            Freq::Minutely => (Some(ph), Some(pm), None),
            Freq::Secondly => (Some(ph), Some(pm), Some(ps)),
            _ => (None, None, None),
        };
        let hours = pick(&r.by_hour, hp, h0);
        let mins = pick(&r.by_minute, mp, mi0);
        let secs = pick(&r.by_second, sp, s0);
        let mut out = Vec::with_capacity(hours.len() * mins.len() * secs.len());
        for &h in &hours {
            for &m in &mins {
                for &s in &secs {
                    out.push(h * 3600 + m * 60 + s);
                }
            }
        }
        out
    }

    fn month_ok(&self, m: i64) -> bool {
        self.rule.by_month.is_empty() || self.rule.by_month.iter().any(|&x| i64::from(x) == m)
    }

    fn month_day_ok(&self, y: i64, m: i64, d: i64) -> bool {
        let r = &self.rule.by_month_day;
        if r.is_empty() {
            return true;
        }
        let len = civil::days_in_month(y, m);
        r.iter().any(|&x| {
            let x = i64::from(x);
            x == d || (x < 0 && len + 1 + x == d)
        })
    }

    fn year_day_ok(&self, y: i64, day: i64) -> bool {
        let r = &self.rule.by_year_day;
        if r.is_empty() {
            return true;
        }
        let doy = day - civil::days_from_civil(y, 1, 1) + 1;
        let len = if civil::is_leap(y) { 366 } else { 365 };
        r.iter().any(|&x| {
            let x = i64::from(x);
            x == doy || (x < 0 && len + 1 + x == doy)
        })
    }

    /// BYDAY check; ordinals count within `[scope_first, scope_last]` (a
    /// month or a year), or are ignored when `scope` is `None`.
    fn weekday_ok(&self, day: i64, scope: Option<(i64, i64)>) -> bool {
        let r = &self.rule.by_day;
        if r.is_empty() {
            return true;
        }
        let wd = civil::weekday(day);
        r.iter().any(|bd| {
            if wd_index(bd.weekday) != wd {
                return false;
            }
            match (bd.nth, scope) {
                (0, _) | (_, None) => true,
                (n, Some((first, _))) if n > 0 => (day - first) / 7 + 1 == i64::from(n),
                (n, Some((_, last))) => (last - day) / 7 + 1 == -i64::from(n),
            }
        })
    }

    fn day_ok(&self, day: i64) -> bool {
        let (y, m, d) = civil::civil_from_days(day);
        self.month_ok(m)
            && self.month_day_ok(y, m, d)
            && self.year_day_ok(y, day)
            && self.weekday_ok(day, None)
    }

    fn has_day_parts(&self) -> bool {
        let r = self.rule;
        !(r.by_day.is_empty() && r.by_month_day.is_empty() && r.by_year_day.is_empty())
    }

    fn year_days(&self, y: i64, out: &mut Vec<i64>) {
        let r = self.rule;
        if !r.by_week_no.is_empty() {
            self.week_no_days(y, out);
            return;
        }
        if self.has_day_parts() {
            let year_scope = (
                civil::days_from_civil(y, 1, 1),
                civil::days_from_civil(y, 12, 31),
            );
            for m in 1..=12 {
                if !self.month_ok(m) {
                    continue;
                }
                let first = civil::days_from_civil(y, m, 1);
                let len = civil::days_in_month(y, m);
                let scope = if r.by_month.is_empty() {
                    year_scope
                } else {
                    (first, first + len - 1)
                };
                for d in 1..=len {
                    let day = first + d - 1;
                    if self.month_day_ok(y, m, d)
                        && self.year_day_ok(y, day)
                        && self.weekday_ok(day, Some(scope))
                    {
                        out.push(day);
                    }
                }
            }
            return;
        }
        let months: Vec<i64> = if r.by_month.is_empty() {
            vec![self.m0]
        } else {
            r.by_month.iter().map(|&m| i64::from(m)).collect()
        };
        for m in months {
            if self.d0 <= civil::days_in_month(y, m) {
                out.push(civil::days_from_civil(y, m, self.d0));
            }
        }
    }

    /// BYWEEKNO in a YEARLY rule: the days of the numbered weeks of `y`
    /// (which may spill into the neighbouring years), limited by the other
    /// day parts; without BYDAY the weekday of DTSTART is used.
    fn week_no_days(&self, y: i64, out: &mut Vec<i64>) {
        let r = self.rule;
        let w1 = civil::week1_start(y, self.wkst);
        let nweeks = civil::weeks_in_year(y, self.wkst);
        let default_wd = civil::weekday(self.start_day);
        for &wn in &r.by_week_no {
            let wn = i64::from(wn);
            let idx = if wn > 0 { wn } else { nweeks + 1 + wn };
            if idx < 1 || idx > nweeks {
                continue;
            }
            let first = w1 + (idx - 1) * 7;
            for day in first..first + 7 {
                let (dy, m, d) = civil::civil_from_days(day);
                let wd_ok =
                    if r.by_day.is_empty() && r.by_month_day.is_empty() && r.by_year_day.is_empty()
                    {
                        civil::weekday(day) == default_wd
                    } else {
                        self.weekday_ok(day, None)
                    };
                if wd_ok
                    && self.month_ok(m)
                    && self.month_day_ok(dy, m, d)
                    && self.year_day_ok(dy, day)
                {
                    out.push(day);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
    }

    fn month_days(&self, y: i64, m: i64, out: &mut Vec<i64>) {
        if !self.month_ok(m) {
            return;
        }
        let first = civil::days_from_civil(y, m, 1);
        let len = civil::days_in_month(y, m);
        if !self.has_day_parts() {
            if self.d0 <= len {
                out.push(first + self.d0 - 1);
            }
            return;
        }
        for d in 1..=len {
            let day = first + d - 1;
            if self.month_day_ok(y, m, d)
                && self.year_day_ok(y, day)
                && self.weekday_ok(day, Some((first, first + len - 1)))
            {
                out.push(day);
            }
        }
    }

    fn week_days(&self, wstart: i64, out: &mut Vec<i64>) {
        let r = self.rule;
        if r.by_day.is_empty() {
            let day = wstart + (civil::weekday(self.start_day) - self.wkst).rem_euclid(7);
            out.push(day);
        } else {
            for bd in &r.by_day {
                out.push(wstart + (wd_index(bd.weekday) - self.wkst).rem_euclid(7));
            }
            out.sort_unstable();
            out.dedup();
        }
        out.retain(|&day| {
            let (y, m, d) = civil::civil_from_days(day);
            self.month_ok(m) && self.month_day_ok(y, m, d) && self.year_day_ok(y, day)
        });
    }
}

/// Civil second of 9999-12-31T23:59:59, jiff's last representable time.
const MAX_CIVIL: i64 = 253_402_300_799;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use jiff::civil::{date, DateTime};

    fn run(rule: &str, start: DateTime, n: usize) -> Vec<DateTime> {
        let rule = Rule::parse(rule).unwrap();
        let b = Bounds {
            lo: i64::MIN,
            hi: MAX_CIVIL,
            until: None,
            max_steps: 100_000,
            max_out: n,
        };
        let mut out = vec![];
        expand(&rule, civil::secs_of(start), false, &b, &mut out);
        out.into_iter()
            .map(|s| civil::datetime_of(s).unwrap())
            .collect()
    }

    #[test]
    fn monthly_last_weekday() {
        let got = run(
            "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
            date(1997, 9, 29).at(9, 0, 0, 0),
            3,
        );
        assert_eq!(
            got,
            vec![
                date(1997, 9, 30).at(9, 0, 0, 0),
                date(1997, 10, 31).at(9, 0, 0, 0),
                date(1997, 11, 28).at(9, 0, 0, 0)
            ]
        );
    }

    #[test]
    fn yearly_feb_29_skips_years() {
        let got = run("FREQ=YEARLY", date(2024, 2, 29).at(0, 0, 0, 0), 2);
        assert_eq!(
            got,
            vec![
                date(2024, 2, 29).at(0, 0, 0, 0),
                date(2028, 2, 29).at(0, 0, 0, 0)
            ]
        );
    }

    #[test]
    fn impossible_rule_ends() {
        assert!(run(
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
            date(2024, 1, 1).at(0, 0, 0, 0),
            2
        )
        .is_empty());
    }
}
