//! Time zone names as Outlook uses them: Windows names ("W. Europe Standard
//! Time") next to IANA names, and Graph's `dateTime` text with seven
//! fractional digits and no offset.
//!
//! The table is a subset of CLDR's windowsZones (territory "001" entries):
//! enough for the sample data and for tests that send `Prefer:
//! outlook.timezone` with a Windows name. Unknown names resolve to `None`;
//! callers decide whether that is an error.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;

const WINDOWS: &[(&str, &str)] = &[
    ("UTC", "UTC"),
    ("Coordinated Universal Time", "UTC"),
    ("Dateline Standard Time", "Etc/GMT+12"),
    ("Hawaiian Standard Time", "Pacific/Honolulu"),
    ("Alaskan Standard Time", "America/Anchorage"),
    ("Pacific Standard Time", "America/Los_Angeles"),
    ("US Mountain Standard Time", "America/Phoenix"),
    ("Mountain Standard Time", "America/Denver"),
    ("Central Standard Time", "America/Chicago"),
    ("Eastern Standard Time", "America/New_York"),
    ("Atlantic Standard Time", "America/Halifax"),
    ("Newfoundland Standard Time", "America/St_Johns"),
    ("E. South America Standard Time", "America/Sao_Paulo"),
    ("Greenwich Standard Time", "Atlantic/Reykjavik"),
    ("GMT Standard Time", "Europe/London"),
    ("W. Europe Standard Time", "Europe/Berlin"),
    ("Romance Standard Time", "Europe/Paris"),
    ("Central Europe Standard Time", "Europe/Budapest"),
    ("Central European Standard Time", "Europe/Warsaw"),
    ("E. Europe Standard Time", "Europe/Chisinau"),
    ("FLE Standard Time", "Europe/Kiev"),
    ("GTB Standard Time", "Europe/Bucharest"),
    ("Russian Standard Time", "Europe/Moscow"),
    ("Israel Standard Time", "Asia/Jerusalem"),
    ("South Africa Standard Time", "Africa/Johannesburg"),
    ("Arabian Standard Time", "Asia/Dubai"),
    ("India Standard Time", "Asia/Calcutta"),
    ("SE Asia Standard Time", "Asia/Bangkok"),
    ("China Standard Time", "Asia/Shanghai"),
    ("Singapore Standard Time", "Asia/Singapore"),
    ("Tokyo Standard Time", "Asia/Tokyo"),
    ("Korea Standard Time", "Asia/Seoul"),
    ("AUS Eastern Standard Time", "Australia/Sydney"),
    ("New Zealand Standard Time", "Pacific/Auckland"),
];

/// A Windows or IANA zone name; `None` when neither is known.
pub fn resolve(name: &str) -> Option<TimeZone> {
    let name = name.trim();
    if let Some((_, iana)) = WINDOWS.iter().find(|(w, _)| w.eq_ignore_ascii_case(name)) {
        return TimeZone::get(iana).ok();
    }
    TimeZone::get(name).ok()
}

/// `2026-12-01T09:00:00.0000000`, as Graph writes `dateTime`.
pub fn graph_datetime(dt: DateTime) -> String {
    format!("{}.0000000", dt.strftime("%Y-%m-%dT%H:%M:%S"))
}

/// Reads Graph's `dateTime` (fraction optional, no offset; an offset or `Z`
/// is tolerated and dropped, since `timeZone` says where it is).
pub fn parse_graph_datetime(text: &str) -> Option<DateTime> {
    let t = text.trim();
    let t = t.strip_suffix('Z').unwrap_or(t);
    let core = match t.find('.') {
        Some(dot) => &t[..dot],
        None => t.get(..19).unwrap_or(t),
    };
    if let Ok(dt) = core.parse::<DateTime>() {
        return Some(dt);
    }
    core.parse::<jiff::civil::Date>()
        .ok()
        .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn windows_and_iana_names() {
        assert_eq!(
            resolve("W. Europe Standard Time").unwrap().iana_name(),
            Some("Europe/Berlin")
        );
        assert!(resolve("Europe/Paris").is_some());
        assert!(resolve("Mars Standard Time").is_none());
    }

    #[test]
    fn datetime_text() {
        let dt = parse_graph_datetime("2026-12-01T09:30:00.0000000").unwrap();
        assert_eq!(graph_datetime(dt), "2026-12-01T09:30:00.0000000");
        assert!(parse_graph_datetime("2026-12-01T09:30:00Z").is_some());
        assert!(parse_graph_datetime("2026-12-01").is_some());
        assert!(parse_graph_datetime("yesterday").is_none());
    }
}
