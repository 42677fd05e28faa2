//! The recurrence expander: one engine for every provider.
//!
//! A [`Series`] is the provider-neutral description of an event and its
//! recurrence (RFC 5545 §3.8.5: RRULE, RDATE, EXDATE; §3.8.4.4
//! RECURRENCE-ID overrides). ICS/CalDAV VEVENTs become a `Series` through
//! [`crate::ical`]; Google events through [`google::parse_recurrence`] plus
//! their exception instances. [`expand`] turns a series into the
//! [`Occurrence`]s that overlap an explicit [`Window`], with a hard limit on
//! their number, starting its walk near the window whenever COUNT allows.
//!
//! Times keep their kind end to end ([`Time`]): all-day values stay dates
//! (never converted through UTC midnight), zoned values keep their zone,
//! floating values stay wall-clock times.

pub(crate) mod civil;
pub mod google;
pub(crate) mod iter;
pub mod rule;
mod series;

pub use rule::{ByDay, Freq, Rule, Until};
pub use series::{expand, expand_within, Budget, MAX_STEPS};

/// `start` moved by `len` (RFC 5545 §3.3.6), keeping its kind.
pub(crate) fn series_add_length(start: &Time, len: &Length) -> Option<Time> {
    series::add_length(start, len)
}

/// The end of the instance at `start` as the expander derives it: DTEND,
/// DURATION or the RFC 5545 §3.6.1 defaults, an end before the start read
/// as absent.
pub(crate) fn series_end(start: &Time, end: &EndSpec) -> Option<Time> {
    series::add_length(start, &series::event_length(start, end))
}

use jiff::civil::{Date, DateTime};
use jiff::{Timestamp, Zoned};

/// Errors of recurrence handling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecurError {
    /// An RRULE that does not follow RFC 5545 §3.3.10.
    #[error("invalid recurrence rule: {0}")]
    BadRule(String),
    /// A valid but unsupported rule part (e.g. RSCALE of RFC 7529).
    #[error("unsupported recurrence rule part: {0}")]
    Unsupported(String),
    /// A recurrence line (Google style) that could not be read.
    #[error("invalid recurrence line: {0}")]
    BadLine(String),
    /// The window's start is not before its end.
    #[error("empty window: from must be before to")]
    EmptyWindow,
}

/// A point in time as calendars write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Time {
    /// An all-day date (`VALUE=DATE`, Google `date`).
    Date(Date),
    /// A wall-clock time without zone: it happens at that local time
    /// wherever the user is (RFC 5545 §3.3.5 form #1).
    Floating(DateTime),
    /// An instant with the zone whose wall clock the recurrence follows.
    Zoned(Zoned),
}

impl Time {
    /// The wall-clock value (midnight for a date).
    pub fn civil(&self) -> DateTime {
        match self {
            Time::Date(d) => d.to_datetime(jiff::civil::Time::midnight()),
            Time::Floating(dt) => *dt,
            Time::Zoned(z) => z.datetime(),
        }
    }

    /// True for an all-day date.
    pub fn is_date(&self) -> bool {
        matches!(self, Time::Date(_))
    }

    /// The instant, reading floating times and dates in `floating_zone`.
    pub fn timestamp_in(&self, floating_zone: &jiff::tz::TimeZone) -> Option<Timestamp> {
        match self {
            Time::Zoned(z) => Some(z.timestamp()),
            other => crate::tz::local_to_zoned(floating_zone, other.civil())
                .ok()
                .map(|z| z.timestamp()),
        }
    }
}

/// A length of time as RFC 5545 §3.3.6 defines it: nominal days (calendar
/// days, which keep the wall-clock time across DST), wall-clock seconds (a
/// DTEND − DTSTART difference in one zone) and exact seconds (hours,
/// minutes, seconds of a DURATION).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Length {
    /// Calendar days (weeks count as 7).
    pub days: i64,
    /// Seconds added on the wall clock.
    pub wall: i64,
    /// Seconds added to the instant.
    pub exact: i64,
}

impl Length {
    /// A DURATION: `days` nominal days and `exact` seconds.
    pub fn nominal(days: i64, exact: i64) -> Length {
        Length {
            days,
            wall: 0,
            exact,
        }
    }

    /// True when the length is negative (an end before the start).
    pub fn is_negative(&self) -> bool {
        self.days * civil::DAY + self.wall + self.exact < 0
    }

    fn approx_secs(&self) -> i64 {
        self.days * civil::DAY + self.wall + self.exact
    }
}

/// How an event's end is given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum EndSpec {
    /// Neither DTEND nor DURATION: RFC 5545 §3.6.1 defaults (one day for a
    /// DATE start, zero length for a DATE-TIME start).
    #[default]
    Default,
    /// DTEND (Google `end`).
    At(Time),
    /// DURATION.
    Duration(Length),
}

/// STATUS of an event or occurrence (RFC 5545 §3.8.1.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// TENTATIVE.
    Tentative,
    /// CONFIRMED.
    Confirmed,
    /// CANCELLED.
    Cancelled,
}

impl Status {
    /// Parses an RFC 5545 or Google status value (case-insensitive).
    pub fn parse(s: &str) -> Option<Status> {
        match s.trim().to_ascii_uppercase().as_str() {
            "TENTATIVE" => Some(Status::Tentative),
            "CONFIRMED" => Some(Status::Confirmed),
            "CANCELLED" | "CANCELED" => Some(Status::Cancelled),
            _ => None,
        }
    }

    /// The lower-case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Tentative => "tentative",
            Status::Confirmed => "confirmed",
            Status::Cancelled => "cancelled",
        }
    }
}

/// One RDATE: a start, with its own end when given as a PERIOD (§3.3.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RDate {
    /// Start of the extra instance.
    pub start: Time,
    /// End from a PERIOD value; otherwise the series' length applies.
    pub end: Option<Time>,
}

/// A changed instance: a RECURRENCE-ID component (ICS/CalDAV) or an
/// exception instance (Google `recurringEventId` + `originalStartTime`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// The original start of the instance it replaces; matched against the
    /// series' instances as an instant (dates by date, floating by wall
    /// clock).
    pub recurrence_id: Time,
    /// RANGE=THISANDFUTURE: later instances move by the same offset and take
    /// this override's length, summary and status.
    pub this_and_future: bool,
    /// New start.
    pub start: Time,
    /// New end.
    pub end: EndSpec,
    /// New summary.
    pub summary: String,
    /// New status (a cancelled override is still an occurrence, marked
    /// cancelled; use [`Series::cancelled`] to drop an instance).
    pub status: Option<Status>,
}

/// An event and its recurrence, whatever provider it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// UID (ICS) or event id (Google).
    pub uid: String,
    /// SUMMARY / title, unescaped.
    pub summary: String,
    /// STATUS.
    pub status: Option<Status>,
    /// DTSTART: the first instance and the wall clock the rules follow.
    pub start: Time,
    /// DTEND / DURATION.
    pub end: EndSpec,
    /// RRULEs; several are united (RFC 5545 §3.8.5.3).
    pub rules: Vec<Rule>,
    /// RDATEs.
    pub rdates: Vec<RDate>,
    /// EXDATEs.
    pub exdates: Vec<Time>,
    /// Instances removed by the provider (Google cancelled exceptions),
    /// matched like EXDATEs.
    pub cancelled: Vec<Time>,
    /// Changed instances.
    pub overrides: Vec<Override>,
}

impl Series {
    /// A non-recurring series starting at `start`.
    pub fn single(
        uid: impl Into<String>,
        summary: impl Into<String>,
        start: Time,
        end: EndSpec,
    ) -> Series {
        Series {
            uid: uid.into(),
            summary: summary.into(),
            status: None,
            start,
            end,
            rules: Vec::new(),
            rdates: Vec::new(),
            exdates: Vec::new(),
            cancelled: Vec::new(),
            overrides: Vec::new(),
        }
    }
}

/// One occurrence of a series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// The series' UID (shared by all occurrences of the series).
    pub uid: std::sync::Arc<str>,
    /// Start; the same kind as the series' start (or the override's).
    pub start: Time,
    /// End, exclusive; a date for all-day occurrences.
    pub end: Time,
    /// Summary (the override's, for changed instances).
    pub summary: std::sync::Arc<str>,
    /// The original start, for instances of a recurring series.
    pub recurrence_id: Option<Time>,
    /// Status, if the source gave one.
    pub status: Option<Status>,
}

/// The range and limits of one expansion.
#[derive(Debug, Clone)]
pub struct Window {
    /// Inclusive start.
    pub from: Timestamp,
    /// Exclusive end.
    pub to: Timestamp,
    /// The zone in which floating times and dates are compared with the
    /// window (the user's zone; UTC for `calsync ics expand`).
    pub floating_zone: jiff::tz::TimeZone,
    /// Most occurrences returned for one series.
    pub limit: usize,
}

impl Window {
    /// A window over `[from, to)` with floating times read in UTC and a
    /// limit of 100,000 occurrences.
    pub fn new(from: Timestamp, to: Timestamp) -> Result<Window, RecurError> {
        if from >= to {
            return Err(RecurError::EmptyWindow);
        }
        Ok(Window {
            from,
            to,
            floating_zone: jiff::tz::TimeZone::UTC,
            limit: 100_000,
        })
    }
}

/// The result of [`expand`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// Occurrences overlapping the window, ordered by start.
    pub occurrences: Vec<Occurrence>,
    /// True when a limit cut the expansion short.
    pub truncated: bool,
}
