//! Time zones: resolving the TZIDs found in the wild to jiff zones, and
//! turning a local time into an instant as RFC 5545 §3.3.5 says.
//!
//! Order of resolution for a TZID (see [`resolve_name`] and
//! [`vtimezone::build`]): an IANA name (jiff's bundled tzdb); a Windows /
//! Outlook name mapped to IANA; a globally unique `/vendor/.../Area/City`
//! name whose tail is an IANA name; the calendar's VTIMEZONE rules; else the
//! caller treats the value as floating.

pub mod vtimezone;
pub mod windows;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::Zoned;

/// Errors of zone handling.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TzError {
    /// A VTIMEZONE without any usable STANDARD/DAYLIGHT observance.
    #[error("VTIMEZONE {0:?} has no usable observance")]
    EmptyVtimezone(String),
    /// The local time is outside the range jiff can represent.
    #[error("time {0} is out of range")]
    OutOfRange(DateTime),
}

/// Resolves a zone name without looking at VTIMEZONE definitions: IANA
/// names (case-insensitive), Windows names, `/vendor/.../Area/City` names
/// and quoted names. `None` when nothing matches.
pub fn resolve_name(name: &str) -> Option<TimeZone> {
    let name = name.trim().trim_matches('"').trim();
    if name.is_empty() {
        return None;
    }
    if let Ok(tz) = TimeZone::get(name) {
        return Some(tz);
    }
    if let Some(iana) = windows::to_iana(name) {
        return TimeZone::get(iana).ok();
    }
    globally_unique_tail(name)
}

/// Tries the trailing `Area/City` (or `Area/Sub/City`) of a path-like
/// TZID such as `/mozilla.org/20050126_1/Europe/Berlin` (RFC 5545 §3.2.19
/// allows a `/` prefix for globally unique ids).
fn globally_unique_tail(name: &str) -> Option<TimeZone> {
    if !name.contains('/') {
        return None;
    }
    let parts: Vec<&str> = name.split('/').filter(|p| !p.is_empty()).collect();
    (0..parts.len()).find_map(|i| TimeZone::get(&parts[i..].join("/")).ok())
}

/// The instant of local time `dt` in `tz`, per RFC 5545 §3.3.5: a time in
/// a gap (spring forward) is read with the offset before the gap, so it
/// lands after the gap (02:30 becomes 03:30); a time in a fold (fall back)
/// is the first of the two.
pub fn local_to_zoned(tz: &TimeZone, dt: DateTime) -> Result<Zoned, TzError> {
    // jiff's "compatible" disambiguation is exactly this rule.
    tz.to_ambiguous_zoned(dt)
        .compatible()
        .map_err(|_| TzError::OutOfRange(dt))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn resolves_names() {
        assert!(resolve_name("Europe/Berlin").is_some());
        assert!(resolve_name("europe/berlin").is_some());
        assert!(resolve_name("\"America/New_York\"").is_some());
        assert_eq!(
            resolve_name("W. Europe Standard Time").unwrap().iana_name(),
            Some("Europe/Berlin")
        );
        assert_eq!(
            resolve_name("/mozilla.org/20050126_1/America/New_York")
                .unwrap()
                .iana_name(),
            Some("America/New_York")
        );
        assert!(resolve_name("/Europe/Stockholm").is_some());
        assert!(resolve_name("Western/Central Europe").is_none());
        assert!(resolve_name("").is_none());
    }

    #[test]
    fn gap_and_fold() {
        let ny = TimeZone::get("America/New_York").unwrap();
        let gap = local_to_zoned(&ny, date(2026, 3, 8).at(2, 30, 0, 0)).unwrap();
        assert_eq!(gap.datetime(), date(2026, 3, 8).at(3, 30, 0, 0));
        let fold = local_to_zoned(&ny, date(2026, 11, 1).at(1, 30, 0, 0)).unwrap();
        assert_eq!(fold.timestamp().to_string(), "2026-11-01T05:30:00Z");
    }
}
