//! The sync planner: what a provider's change set means for the store.
//!
//! - [`Cursor`]: where a calendar's sync stands (a sync token between rounds,
//!   a page token inside one), stored with the page it belongs to.
//! - [`series_occurrences`]: the occurrences of one series (a master event, its
//!   changed instances and its cancelled instances) over the materialised
//!   horizon, each attributed to the stored event it shows.
//! - [`mass_delete_guard`]: refuses a full snapshot that would remove (almost)
//!   every stored event.
//!
//! Pure functions; the store applies their results in one transaction.

use std::time::Duration;

use jiff::tz::TimeZone;

use crate::changes::{EventStart, EventStatus, RemoteEvent};
use crate::recur::google::parse_recurrence;
use crate::recur::{expand, EndSpec, Override, RecurError, Series, Status, Time, Window};

/// Where a calendar's sync stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// Between rounds: the next round asks for changes since this token.
    Sync(String),
    /// Inside a round: the next page. `full` rounds end with a sweep of the
    /// events they did not see.
    Page { token: String, full: bool },
}

impl Cursor {
    /// The stored form.
    pub fn encode(&self) -> String {
        match self {
            Self::Sync(token) => format!("sync:{token}"),
            Self::Page { token, full: true } => format!("page-full:{token}"),
            Self::Page { token, full: false } => format!("page:{token}"),
        }
    }

    /// Reads the stored form; anything unreadable means "start over".
    pub fn decode(stored: &str) -> Option<Self> {
        let (kind, token) = stored.split_once(':')?;
        let token = token.to_owned();
        match kind {
            "sync" => Some(Self::Sync(token)),
            "page-full" => Some(Self::Page { token, full: true }),
            "page" => Some(Self::Page { token, full: false }),
            _ => None,
        }
    }
}

/// The longest wait between syncs of a failing connection.
const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);

/// How long until a connection's next sync: the interval after a success,
/// doubling with each failure in a row (up to six hours), and spread by ±10%
/// (`jitter_unit` in [0, 1)) so that connections added together do not stay
/// in lockstep.
pub fn next_sync_delay(
    interval: Duration,
    consecutive_failures: u32,
    jitter_unit: f64,
) -> Duration {
    let factor = 2u32.saturating_pow(consecutive_failures.min(16));
    let base = interval
        .saturating_mul(factor)
        .min(MAX_BACKOFF.max(interval));
    base.mul_f64(0.9 + 0.2 * jitter_unit.clamp(0.0, 1.0))
}

/// The longest a provider's `Retry-After` may park a connection: a day.
pub const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(24 * 3600);

/// How long until the next sync of a connection the provider rate-limited:
/// what it asked for, capped at [`MAX_RATE_LIMIT_WAIT`] (a provider's
/// number is input, and a hostile one must not park a connection forever).
pub fn rate_limited_delay(retry_after: Duration) -> Duration {
    retry_after.min(MAX_RATE_LIMIT_WAIT)
}

/// One occurrence to store, attributed to the event it shows (the master, or
/// the changed instance that replaced it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedOccurrence {
    pub external_id: String,
    pub start: Time,
    pub end: Time,
}

fn zone_named(name: Option<&str>) -> TimeZone {
    name.and_then(crate::tz::resolve_name)
        .unwrap_or(TimeZone::UTC)
}

/// The recurrence engine's view of a provider time.
pub fn to_time(value: &EventStart) -> Time {
    match value {
        EventStart::Date(date) => Time::Date(*date),
        EventStart::DateTime { instant, zone } => {
            Time::Zoned(instant.to_zoned(zone_named(zone.as_deref())))
        }
    }
}

fn status(status: EventStatus) -> Status {
    match status {
        EventStatus::Confirmed => Status::Confirmed,
        EventStatus::Tentative => Status::Tentative,
        EventStatus::Cancelled => Status::Cancelled,
    }
}

fn start_zone(event: &RemoteEvent) -> Option<TimeZone> {
    match &event.start {
        EventStart::Date(_) => None,
        EventStart::DateTime { zone, .. } => Some(zone_named(zone.as_deref())),
    }
}

/// The occurrences of a series over `window`.
///
/// `master` is the series' own event (absent when only instances are known:
/// each then stands alone); `instances` are its changed and cancelled
/// instances. A cancelled master yields nothing.
pub fn series_occurrences(
    master: Option<&RemoteEvent>,
    instances: &[&RemoteEvent],
    window: &Window,
) -> Result<Vec<PlannedOccurrence>, RecurError> {
    let Some(master) = master else {
        let mut all = Vec::new();
        for lone in instances
            .iter()
            .filter(|e| e.status != EventStatus::Cancelled)
        {
            all.extend(series_occurrences(Some(lone), &[], window)?);
        }
        return Ok(all);
    };
    if master.status == EventStatus::Cancelled {
        return Ok(Vec::new());
    }
    let mut series = Series::single(
        &master.external_id,
        &master.title,
        to_time(&master.start),
        EndSpec::At(to_time(&master.end)),
    );
    series.status = Some(status(master.status));
    if !master.recurrence.is_empty() {
        let recurrence = parse_recurrence(&master.recurrence, start_zone(master).as_ref())?;
        series.rules = recurrence.rules;
        series.rdates = recurrence.rdates;
        series.exdates = recurrence.exdates;
    }
    let mut changed: Vec<(Time, &str)> = Vec::new();
    for instance in instances {
        let Some(original) = instance.original_start.as_ref().map(to_time) else {
            continue;
        };
        if instance.status == EventStatus::Cancelled {
            series.cancelled.push(original);
            continue;
        }
        changed.push((original.clone(), &instance.external_id));
        series.overrides.push(Override {
            recurrence_id: original,
            this_and_future: false,
            start: to_time(&instance.start),
            end: EndSpec::At(to_time(&instance.end)),
            summary: instance.title.clone(),
            status: Some(status(instance.status)),
        });
    }
    let expansion = expand(&series, window)?;
    Ok(expansion
        .occurrences
        .into_iter()
        .map(|o| {
            let owner = o
                .recurrence_id
                .as_ref()
                .and_then(|rid| {
                    changed
                        .iter()
                        .find(|(original, _)| same_instant(original, rid, window))
                })
                .map_or(master.external_id.as_str(), |(_, id)| id);
            PlannedOccurrence {
                external_id: owner.to_owned(),
                start: o.start,
                end: o.end,
            }
        })
        .collect())
}

/// Below this many stored events a shrinking snapshot is trusted unless it is
/// empty: small calendars do get cleared out by their owners.
pub const MASS_DELETE_MIN_STORED: u64 = 50;

/// A snapshot that would remove (almost) every stored event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the calendar now lists {incoming} events where {stored} were stored; \
     calsync keeps the last good copy rather than delete (almost) all of them"
)]
pub struct MassDelete {
    /// Events stored from the last good snapshot.
    pub stored: u64,
    /// Events in the new snapshot.
    pub incoming: u64,
}

/// Refuses a full snapshot (a feed served anew, a complete listing) that
/// would sweep away (almost) everything stored: an empty one while events
/// are stored, or one with fewer than a tenth of them once at least
/// [`MASS_DELETE_MIN_STORED`] are stored. Such a snapshot is far more often
/// a publisher's outage (an empty or truncated file served with 200 OK)
/// than a real clear-out, and applying it would drop every occurrence.
///
/// ```
/// use calsync_core::plan::mass_delete_guard;
/// assert!(mass_delete_guard(3, 0).is_err());
/// assert!(mass_delete_guard(40, 1).is_ok());
/// assert!(mass_delete_guard(100, 9).is_err());
/// assert!(mass_delete_guard(100, 10).is_ok());
/// ```
pub fn mass_delete_guard(stored: u64, incoming: u64) -> Result<(), MassDelete> {
    let collapsed = stored >= MASS_DELETE_MIN_STORED && incoming < stored / 10;
    if (stored > 0 && incoming == 0) || collapsed {
        return Err(MassDelete { stored, incoming });
    }
    Ok(())
}

/// A round would remove too much of a calendar to do it unasked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{removing} of {stored} events would be removed")]
pub struct HeldRemoval {
    pub stored: u64,
    pub removing: u64,
}

/// Removals above this many, and above half the calendar, are held.
pub const HOLD_MIN_REMOVALS: u64 = 20;
/// A calendar of at least this many events is never emptied unasked.
pub const HOLD_MIN_EMPTIED: u64 = 5;

/// Holds a round's removals for the user to confirm when they would take
/// more than half of a calendar's `stored` events and more than
/// [`HOLD_MIN_REMOVALS`], or empty a calendar of at least
/// [`HOLD_MIN_EMPTIED`]. Such a round is far more often a provider's hiccup
/// (a truncated listing, an account switched under us, a 410 answered with
/// an empty resync) than a person deleting most of their calendar, and
/// applying it would lose what people rely on; the rare real clear-out costs
/// one click. Both numbers count a recurring series once.
///
/// ```
/// use calsync_core::plan::removal_guard;
/// assert!(removal_guard(100, 50).is_ok());
/// assert!(removal_guard(100, 51).is_err());
/// assert!(removal_guard(30, 20).is_ok());
/// assert!(removal_guard(5, 5).is_err());
/// assert!(removal_guard(4, 4).is_ok());
/// ```
pub fn removal_guard(stored: u64, removing: u64) -> Result<(), HeldRemoval> {
    let most = removing > HOLD_MIN_REMOVALS && removing.saturating_mul(2) > stored;
    let emptied = stored >= HOLD_MIN_EMPTIED && removing >= stored;
    if most || emptied {
        return Err(HeldRemoval { stored, removing });
    }
    Ok(())
}

fn same_instant(a: &Time, b: &Time, window: &Window) -> bool {
    match (a, b) {
        (Time::Date(x), Time::Date(y)) => x == y,
        _ => a.timestamp_in(&window.floating_zone) == b.timestamp_in(&window.floating_zone),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use jiff::Timestamp;

    fn at(text: &str, zone: &str) -> EventStart {
        EventStart::DateTime {
            instant: text.parse::<Timestamp>().unwrap(),
            zone: Some(zone.to_owned()),
        }
    }

    fn event(id: &str, start: EventStart, end: EventStart) -> RemoteEvent {
        RemoteEvent {
            external_id: id.to_owned(),
            etag: None,
            status: EventStatus::Confirmed,
            title: id.to_owned(),
            description: None,
            location: None,
            start,
            end,
            recurrence: Vec::new(),
            recurring_event_id: None,
            original_start: None,
            html_link: None,
            updated: None,
        }
    }

    fn window() -> Window {
        Window::new(
            "2026-03-01T00:00:00Z".parse().unwrap(),
            "2026-04-01T00:00:00Z".parse().unwrap(),
        )
        .unwrap()
    }

    fn starts(planned: &[PlannedOccurrence]) -> Vec<(String, String)> {
        planned
            .iter()
            .map(|p| {
                (
                    p.external_id.clone(),
                    p.start.timestamp_in(&TimeZone::UTC).unwrap().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn a_weekly_series_with_a_moved_and_a_cancelled_instance() {
        let mut master = event(
            "m",
            at("2026-03-02T14:00:00Z", "Europe/Berlin"),
            at("2026-03-02T15:00:00Z", "Europe/Berlin"),
        );
        master.recurrence = vec!["RRULE:FREQ=WEEKLY;COUNT=5".to_owned()];
        let mut moved = event(
            "m_20260309",
            at("2026-03-10T10:00:00Z", "Europe/Berlin"),
            at("2026-03-10T11:00:00Z", "Europe/Berlin"),
        );
        moved.recurring_event_id = Some("m".into());
        moved.original_start = Some(at("2026-03-09T14:00:00Z", "Europe/Berlin"));
        let mut cancelled = event(
            "m_20260316",
            at("2026-03-16T14:00:00Z", "Europe/Berlin"),
            at("2026-03-16T15:00:00Z", "Europe/Berlin"),
        );
        cancelled.status = EventStatus::Cancelled;
        cancelled.original_start = Some(at("2026-03-16T14:00:00Z", "Europe/Berlin"));

        let planned = series_occurrences(Some(&master), &[&moved, &cancelled], &window()).unwrap();
        // 15:00 in Berlin; after the switch to summer time on 29 March that is 13:00 UTC.
        let expected = [
            ("m", "2026-03-02T14:00:00Z"),
            ("m_20260309", "2026-03-10T10:00:00Z"),
            ("m", "2026-03-23T14:00:00Z"),
            ("m", "2026-03-30T13:00:00Z"),
        ];
        let expected: Vec<_> = expected
            .iter()
            .map(|(id, t)| (id.to_string(), t.to_string()))
            .collect();
        assert_eq!(starts(&planned), expected);
    }

    #[test]
    fn all_day_events_stay_dates_and_cancelled_masters_vanish() {
        let day = event(
            "d",
            EventStart::Date(date(2026, 3, 10)),
            EventStart::Date(date(2026, 3, 12)),
        );
        let planned = series_occurrences(Some(&day), &[], &window()).unwrap();
        assert_eq!(
            (planned[0].start.clone(), planned[0].end.clone()),
            (Time::Date(date(2026, 3, 10)), Time::Date(date(2026, 3, 12)))
        );
        let mut gone = day.clone();
        gone.status = EventStatus::Cancelled;
        assert!(series_occurrences(Some(&gone), &[], &window())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn instances_without_their_master_stand_alone() {
        let mut lone = event(
            "x_1",
            at("2026-03-05T09:00:00Z", "UTC"),
            at("2026-03-05T10:00:00Z", "UTC"),
        );
        lone.original_start = Some(at("2026-03-04T09:00:00Z", "UTC"));
        let planned = series_occurrences(None, &[&lone], &window()).unwrap();
        assert_eq!(
            starts(&planned),
            [("x_1".to_owned(), "2026-03-05T09:00:00Z".to_owned())]
        );
    }

    #[test]
    fn failing_connections_back_off_up_to_six_hours() {
        let five = Duration::from_secs(300);
        assert_eq!(next_sync_delay(five, 0, 0.5), five);
        assert_eq!(next_sync_delay(five, 1, 0.5), five * 2);
        assert_eq!(next_sync_delay(five, 3, 0.5), five * 8);
        assert_eq!(next_sync_delay(five, 40, 0.5), MAX_BACKOFF);
        assert_eq!(next_sync_delay(five, 0, 0.0), Duration::from_secs(270));
        assert_eq!(next_sync_delay(five, 0, 1.0), Duration::from_secs(330));
    }

    #[test]
    fn the_mass_delete_guard_refuses_empty_and_collapsed_snapshots() {
        let table = [
            // (stored, incoming, refused)
            (0, 0, false),
            (0, 5, false),
            (1, 0, true),
            (49, 0, true),
            (49, 1, false),
            (50, 4, true),
            (50, 5, false),
            (100, 9, true),
            (100, 10, false),
            (100, 100, false),
            (100, 1000, false),
            (1_000_000, 99_999, true),
            (u64::MAX, u64::MAX, false),
        ];
        for (stored, incoming, refused) in table {
            assert_eq!(
                mass_delete_guard(stored, incoming).is_err(),
                refused,
                "stored {stored}, incoming {incoming}"
            );
        }
        let err = mass_delete_guard(120, 0).unwrap_err();
        assert_eq!(
            err,
            MassDelete {
                stored: 120,
                incoming: 0
            }
        );
        assert!(err.to_string().contains("0 events where 120 were stored"));
    }

    #[test]
    fn cursors_round_trip() {
        for cursor in [
            Cursor::Sync("abc:def".into()),
            Cursor::Page {
                token: "p1".into(),
                full: true,
            },
            Cursor::Page {
                token: "p2".into(),
                full: false,
            },
        ] {
            assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        }
        assert_eq!(Cursor::decode("garbage"), None);
    }
}
