//! Expansion of a whole [`Series`]: rules, RDATEs, EXDATEs, cancelled
//! instances and overrides (RFC 5545 §3.8.5, §3.8.4.4), cut to a window.
//!
//! Instance starts are handled as civil seconds on the series' own wall
//! clock (its "frame"); they become [`Time`] values only once they are known
//! to be needed.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::tz::TimeZone;

use super::civil::{self, DAY};
use super::iter::{self, Bounds, End};
use super::{
    EndSpec, Expansion, Length, Occurrence, Override, RecurError, Series, Time, Until, Window,
};
use crate::tz::local_to_zoned;

/// Most rule periods visited per rule and expansion.
pub const MAX_STEPS: u64 = 2_000_000;

/// The wall clock a series lives on.
#[derive(Debug, Clone)]
enum Frame {
    Date,
    Floating,
    Zoned(TimeZone),
}

impl Frame {
    fn of(t: &Time) -> Frame {
        match t {
            Time::Date(_) => Frame::Date,
            Time::Floating(_) => Frame::Floating,
            Time::Zoned(z) => Frame::Zoned(z.time_zone().clone()),
        }
    }

    /// Civil seconds of `t` on this frame's wall clock.
    fn secs(&self, t: &Time) -> i64 {
        match (self, t) {
            (Frame::Zoned(tz), Time::Zoned(z)) => civil::secs_of(tz.to_datetime(z.timestamp())),
            (Frame::Date, t) => civil::secs_of(t.civil()).div_euclid(DAY) * DAY,
            (_, t) => civil::secs_of(t.civil()),
        }
    }

    fn make(&self, secs: i64) -> Option<Time> {
        let dt = civil::datetime_of(secs)?;
        Some(match self {
            Frame::Date => Time::Date(dt.date()),
            Frame::Floating => Time::Floating(dt),
            Frame::Zoned(tz) => Time::Zoned(local_to_zoned(tz, dt).ok()?),
        })
    }

    /// Identity of an instance for EXDATE / RECURRENCE-ID matching: the
    /// instant for zoned series, the wall clock for floating ones, the day
    /// for all-day ones.
    fn key(&self, t: &Time) -> i64 {
        match (self, t) {
            (Frame::Zoned(_), Time::Zoned(z)) => z.timestamp().as_second(),
            (Frame::Zoned(tz), other) => local_to_zoned(tz, other.civil())
                .map(|z| z.timestamp().as_second())
                .unwrap_or(i64::MIN),
            _ => self.secs(t),
        }
    }
}

/// A small set of keys; usually empty, so a sorted vector beats hashing.
struct SortedSet(Vec<i64>);

impl SortedSet {
    fn new(items: impl Iterator<Item = i64>) -> Self {
        let mut v: Vec<i64> = items.collect();
        v.sort_unstable();
        SortedSet(v)
    }

    fn contains(&self, k: &i64) -> bool {
        !self.0.is_empty() && self.0.binary_search(k).is_ok()
    }
}

/// Adds `len` to `start`, keeping its kind: calendar days and wall seconds
/// on the wall clock, exact seconds on the instant (RFC 5545 §3.3.6).
pub(crate) fn add_length(start: &Time, len: &Length) -> Option<Time> {
    let civil_add = len.days * DAY + len.wall;
    Some(match start {
        Time::Date(d) => {
            let secs = civil::secs_of(d.to_datetime(jiff::civil::Time::midnight()))
                + civil_add
                + len.exact;
            Time::Date(civil::datetime_of(secs.div_euclid(DAY) * DAY)?.date())
        }
        Time::Floating(dt) => Time::Floating(civil::datetime_of(
            civil::secs_of(*dt) + civil_add + len.exact,
        )?),
        Time::Zoned(z) => {
            let tz = z.time_zone();
            let wall = civil::datetime_of(civil::secs_of(z.datetime()) + civil_add)?;
            let moved = local_to_zoned(tz, wall).ok()?;
            Time::Zoned(
                moved
                    .checked_add(jiff::SignedDuration::from_secs(len.exact))
                    .ok()?,
            )
        }
    })
}

/// The length from `start` to `end` (DTEND − DTSTART). Same-zone and
/// floating differences are wall-clock, so that a 09:00–10:00 meeting stays
/// 09:00–10:00 on both sides of a DST change.
fn length_between(start: &Time, end: &Time) -> Length {
    match (start, end) {
        (Time::Date(_), Time::Date(_)) => Length {
            days: (civil::secs_of(end.civil()) - civil::secs_of(start.civil())).div_euclid(DAY),
            ..Length::default()
        },
        (Time::Zoned(a), Time::Zoned(b)) if a.time_zone() != b.time_zone() => Length {
            exact: b.timestamp().as_second() - a.timestamp().as_second(),
            ..Length::default()
        },
        _ => Length {
            wall: civil::secs_of(end.civil()) - civil::secs_of(start.civil()),
            ..Length::default()
        },
    }
}

/// The length an event with `start` and `end` lasts; RFC 5545 §3.6.1
/// defaults when no end is given. An end before the start is treated as
/// absent (see docs/RECURRENCE.md).
pub(crate) fn event_length(start: &Time, end: &EndSpec) -> Length {
    let default = if start.is_date() {
        Length {
            days: 1,
            ..Length::default()
        }
    } else {
        Length::default()
    };
    let len = match end {
        EndSpec::Default => default,
        EndSpec::At(t) => length_between(start, t),
        EndSpec::Duration(l) => *l,
    };
    if len.is_negative() {
        default
    } else {
        len
    }
}

/// The position of a window bound on `frame`'s wall clock.
fn window_secs(frame: &Frame, window: &Window, at: jiff::Timestamp) -> i64 {
    let tz = match frame {
        Frame::Zoned(tz) => tz,
        _ => &window.floating_zone,
    };
    civil::secs_of(tz.to_datetime(at))
}

/// UNTIL on the frame's wall clock (inclusive). A UTC UNTIL of a zoned
/// series is converted to the zone; for floating and all-day series it is
/// read as written, like libical does.
fn until_secs(frame: &Frame, until: Until) -> i64 {
    match (until, frame) {
        (Until::Date(d), Frame::Date) => {
            civil::secs_of(d.to_datetime(jiff::civil::Time::midnight()))
        }
        (Until::Date(d), _) => {
            civil::secs_of(d.to_datetime(jiff::civil::Time::midnight())) + DAY - 1
        }
        (Until::Utc(dt), Frame::Zoned(tz)) => match dt.to_zoned(TimeZone::UTC) {
            Ok(z) => civil::secs_of(tz.to_datetime(z.timestamp())),
            Err(_) => civil::secs_of(dt),
        },
        (Until::Utc(dt) | Until::Floating(dt), _) => civil::secs_of(dt),
    }
}

/// Whether `[start, end)` overlaps the window; a zero-length occurrence
/// counts when it starts inside.
fn overlaps(start: &Time, end: &Time, window: &Window) -> bool {
    let (Some(s), Some(e)) = (
        start.timestamp_in(&window.floating_zone),
        end.timestamp_in(&window.floating_zone),
    ) else {
        return false;
    };
    if s == e {
        window.from <= s && s < window.to
    } else {
        s < window.to && e > window.from
    }
}

/// Expands `series` over `window`: every occurrence whose `[start, end)`
/// overlaps `[window.from, window.to)`, ordered by start.
///
/// DTSTART is always the first instance (RFC 5545 §3.8.5.3); several RRULEs
/// and RDATEs are united without duplicates; EXDATEs and
/// [`Series::cancelled`] remove instances; each [`Override`] replaces the
/// instance whose start equals its recurrence id (or adds an occurrence when
/// none does), and THISANDFUTURE overrides move the later instances too.
/// Invalid input never panics; at most `window.limit` occurrences are
/// returned and `truncated` says when more existed.
pub fn expand(series: &Series, window: &Window) -> Result<Expansion, RecurError> {
    expand_within(series, window, &Budget::new(MAX_STEPS))
}

/// A allowance of rule iteration steps shared by several expansions, so
/// that a hostile file with thousands of rules that never match cannot make
/// a caller spin for minutes. Each rule may use at most [`MAX_STEPS`] of it.
#[derive(Debug)]
pub struct Budget(std::cell::Cell<u64>);

impl Budget {
    /// A budget of `steps` rule periods.
    pub fn new(steps: u64) -> Budget {
        Budget(std::cell::Cell::new(steps))
    }

    /// Steps still available.
    pub fn remaining(&self) -> u64 {
        self.0.get()
    }
}

/// [`expand`] drawing rule steps from `budget`; `truncated` is set when the
/// budget ran out.
pub fn expand_within(
    series: &Series,
    window: &Window,
    budget: &Budget,
) -> Result<Expansion, RecurError> {
    if window.from >= window.to {
        return Err(RecurError::EmptyWindow);
    }
    let frame = Frame::of(&series.start);
    let base_len = event_length(&series.start, &series.end);
    let start_secs = frame.secs(&series.start);
    let date_only = series.start.is_date();

    let mut futures: Vec<(i64, &Override, i64)> = series
        .overrides
        .iter()
        .filter(|o| o.this_and_future)
        .map(|o| {
            let rid = frame.secs(&o.recurrence_id);
            (rid, o, frame.secs(&o.start) - rid)
        })
        .collect();
    futures.sort_by_key(|f| f.0);
    let max_shift = futures.iter().map(|f| f.2.abs()).max().unwrap_or(0);
    let max_len = series
        .overrides
        .iter()
        .filter(|o| o.this_and_future)
        .map(|o| event_length(&o.start, &o.end).approx_secs())
        .chain(series.rdates.iter().filter_map(|r| {
            r.end
                .as_ref()
                .map(|e| length_between(&r.start, e).approx_secs())
        }))
        .fold(base_len.approx_secs(), i64::max)
        .clamp(0, 400 * 366 * DAY);

    let margin = 2 * DAY + max_shift;
    let lo = window_secs(&frame, window, window.from) - max_len - margin;
    let hi = window_secs(&frame, window, window.to) + margin;

    let mut truncated = false;
    let mut starts: Vec<i64> = Vec::new();
    // An UNTIL before DTSTART ends the series before it begins: no
    // instance at all, DTSTART included (as libical and dateutil agree).
    let ended_before_start = !series.rules.is_empty()
        && series
            .rules
            .iter()
            .all(|r| r.until.is_some_and(|u| until_secs(&frame, u) < start_secs));
    if (lo..=hi).contains(&start_secs) && !ended_before_start {
        starts.push(start_secs);
    }
    for rule in &series.rules {
        let b = Bounds {
            lo,
            hi,
            until: rule.until.map(|u| until_secs(&frame, u)),
            max_steps: MAX_STEPS.min(budget.remaining()),
            max_out: window.limit.saturating_mul(2).max(16),
        };
        let mut used = 0;
        if iter::expand_counted(rule, start_secs, date_only, &b, &mut starts, &mut used)
            == End::Truncated
        {
            truncated = true;
        }
        budget.0.set(budget.remaining().saturating_sub(used));
    }
    // A PERIOD's end takes the series' kind, like its start does.
    let mut period_ends: HashMap<i64, Time> = HashMap::new();
    for r in &series.rdates {
        let s = frame.secs(&r.start);
        if (lo..=hi).contains(&s) {
            starts.push(s);
            if let Some(e) = r.end.as_ref().and_then(|e| frame.make(frame.secs(e))) {
                period_ends.insert(s, e);
            }
        }
    }
    starts.sort_unstable();
    starts.dedup();

    let removed = SortedSet::new(
        series
            .exdates
            .iter()
            .chain(&series.cancelled)
            .map(|t| frame.key(t)),
    );
    let removed_days = SortedSet::new(
        series
            .exdates
            .iter()
            .chain(&series.cancelled)
            .filter(|t| t.is_date() && !date_only)
            .map(|t| civil::secs_of(t.civil()).div_euclid(DAY)),
    );
    let overridden = SortedSet::new(series.overrides.iter().map(|o| frame.key(&o.recurrence_id)));
    // Some producers write a timed instance's RECURRENCE-ID as a DATE: it
    // then names the instance on that day.
    let overridden_days = SortedSet::new(
        series
            .overrides
            .iter()
            .filter(|o| o.recurrence_id.is_date() && !date_only)
            .map(|o| civil::secs_of(o.recurrence_id.civil()).div_euclid(DAY)),
    );
    let uid: Arc<str> = Arc::from(series.uid.as_str());
    let summary_arc: Arc<str> = Arc::from(series.summary.as_str());
    let future_summaries: Vec<Arc<str>> = futures
        .iter()
        .map(|f| Arc::from(f.1.summary.as_str()))
        .collect();

    let mut out = Vec::new();
    for s in starts {
        let Some(original) = frame.make(s) else {
            continue;
        };
        let key = frame.key(&original);
        if removed.contains(&key)
            || removed_days.contains(&s.div_euclid(DAY))
            || overridden.contains(&key)
            || overridden_days.contains(&s.div_euclid(DAY))
        {
            continue;
        }
        let future = futures.iter().rposition(|f| f.0 < s);
        let (start, len, summary, status) =
            match future.and_then(|i| futures.get(i).zip(future_summaries.get(i))) {
                Some((&(_, o, shift), summary)) => match frame.make(s + shift) {
                    Some(t) => (t, event_length(&o.start, &o.end), summary, o.status),
                    None => continue,
                },
                None => (original.clone(), base_len, &summary_arc, series.status),
            };
        let end = match period_ends.get(&s) {
            Some(e) if future.is_none() => e.clone(),
            _ => match add_length(&start, &len) {
                Some(e) => e,
                None => continue,
            },
        };
        if !overlaps(&start, &end, window) {
            continue;
        }
        if out.len() >= window.limit {
            truncated = true;
            break;
        }
        let recurring = !series.rules.is_empty() || !series.rdates.is_empty();
        out.push(Occurrence {
            uid: uid.clone(),
            start,
            end,
            summary: summary.clone(),
            recurrence_id: recurring.then_some(original),
            status,
        });
    }

    for o in &series.overrides {
        // An EXDATE of the same instance wins: the newer master deleted it.
        if removed.contains(&frame.key(&o.recurrence_id)) {
            continue;
        }
        let len = event_length(&o.start, &o.end);
        let Some(end) = add_length(&o.start, &len) else {
            continue;
        };
        if !overlaps(&o.start, &end, window) {
            continue;
        }
        if out.len() >= window.limit {
            truncated = true;
            break;
        }
        out.push(Occurrence {
            uid: uid.clone(),
            start: o.start.clone(),
            end,
            summary: Arc::from(o.summary.as_str()),
            recurrence_id: Some(o.recurrence_id.clone()),
            status: o.status,
        });
    }
    out.sort_by_cached_key(|o| o.start.timestamp_in(&window.floating_zone));
    Ok(Expansion {
        occurrences: out,
        truncated,
    })
}
