//! iCalendar (RFC 5545) input: bytes to [`Series`] values for the expander.
//!
//! calsync's own small parser: [`lexer`] unfolds and splits content lines,
//! [`component`] builds the VCALENDAR/VEVENT/VTIMEZONE tree, [`value`] reads
//! the value types, and `events` resolves zones (IANA, Windows, VTIMEZONE,
//! X-WR-TIMEZONE) and groups RECURRENCE-ID overrides with their master by
//! UID. Malformed lines, values and events are skipped and reported in
//! [`Calendar::skipped`]; only input that is too large or nested too deep is
//! refused as a whole. [`remote`] reads the same input into provider-neutral
//! events for the ICS feed and CalDAV clients.

pub mod component;
mod events;
pub mod lexer;
pub mod remote;
pub mod value;

use std::borrow::Cow;

use crate::recur::Series;

/// Largest input accepted by [`parse`] (32 MiB): larger than any real
/// calendar feed, small enough to bound memory.
pub const MAX_INPUT_BYTES: usize = 32 * 1024 * 1024;

/// Why a whole input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IcalError {
    /// The input is larger than the limit.
    #[error("calendar data is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// Size of the input.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Components nest deeper than the limit.
    #[error("components nest deeper than {0} levels")]
    TooDeep(usize),
}

/// An event that was left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Its UID, if it had one.
    pub uid: Option<String>,
    /// What was wrong.
    pub reason: String,
}

/// The events of one input, ready for [`crate::recur::expand`].
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    /// One series per master VEVENT (overrides attached), plus one per
    /// override whose master is missing.
    pub series: Vec<Series>,
    /// Events or properties that could not be used.
    pub skipped: Vec<Skipped>,
}

/// Decodes calendar bytes: UTF-8, else Latin-1 (each byte one char), which
/// is what old Outlook and Lotus exports use.
pub fn decode(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
    }
}

pub use remote::{remote_feed, remote_series, IcalFeed, IcalSeries};

/// Parses iCalendar data (one or more VCALENDARs, or bare VEVENTs) into
/// series. Refuses input over [`MAX_INPUT_BYTES`].
pub fn parse(bytes: &[u8]) -> Result<Calendar, IcalError> {
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(IcalError::TooLarge {
            size: bytes.len(),
            limit: MAX_INPUT_BYTES,
        });
    }
    let text = decode(bytes);
    events::read_text(&text)
}
