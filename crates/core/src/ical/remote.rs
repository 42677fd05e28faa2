//! iCalendar to provider-neutral events: the VEVENTs of a feed or a CalDAV
//! resource as [`RemoteEvent`]s, grouped by UID into [`IcalSeries`]
//! (RFC 5545 §3.8.4.7: one UID is one series; §3.8.4.4: the master has no
//! RECURRENCE-ID, each override has one; an override may come without its
//! master).
//!
//! The same reader as [`super::parse`] (same zones, defaults and repairs);
//! only the output differs. The events are built so that the store's
//! re-expansion ([`crate::plan::series_occurrences`], which reads
//! `recurrence` with [`crate::recur::google::parse_recurrence`]) yields the
//! occurrences the core expander yields for the file, apart from the gaps
//! listed below:
//!
//! - `recurrence` is written from the values the reader resolved, not copied
//!   from the file: RRULE values as written (those that parse), RDATE and
//!   EXDATE values as UTC instants (`…Z`) for zoned series, wall-clock values
//!   for floating series and dates for all-day values. A TZID that only the
//!   calendar's VTIMEZONE defines is therefore never needed again.
//! - Zones: `zone` is the IANA name of the value's zone: IANA, Windows and
//!   vendor-prefixed TZIDs via [`crate::tz::resolve_name`], a VTIMEZONE's
//!   X-LIC-LOCATION, X-WR-TIMEZONE for UTC and floating values (as the
//!   expander applies it). A zone known only by its VTIMEZONE rules gets
//!   `None`; the instants stay right, but the store then repeats a series on
//!   the UTC wall clock (an hour off across DST).
//! - Floating times (no TZID, no `Z`, no X-WR-TIMEZONE): the provider-neutral
//!   model has no floating kind, so they are read as UTC wall-clock times
//!   with `zone: None`, which is how `plan::to_time` reads a zone-less value
//!   and how `calsync ics expand` compares floating times. Showing them at
//!   the user's local wall clock would need a floating kind in
//!   [`EventStart`].
//! - A RANGE=THISANDFUTURE override replaces its own instance only.
//! - A STATUS:CANCELLED override removes its instance (the expander prints
//!   it, marked cancelled), as Google's cancelled instances do.
//!
//! External ids: a master is its UID, an override `UID/<RECURRENCE-ID>`
//! with the RECURRENCE-ID as a UTC instant (`20260309T130000Z`) or a date
//! (`20260309`), so that they stay the same when a feed is reordered or
//! reserialised with other TZID spellings. A VEVENT without UID gets
//! `calsync-<hash of start and summary>`. [`IcalSeries::rekey`] re-keys a
//! series under a CalDAV resource's href.

use std::collections::HashMap;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::component::Component;
use super::events::{read_event, read_with, text, Event, Zones};
use super::value::{parse_time, unescape_text, RawTime};
use super::{decode, IcalError, Skipped, MAX_INPUT_BYTES};
use crate::changes::{EventChange, EventStart, EventStatus, RemoteEvent};
use crate::recur::google::parse_recurrence;
use crate::recur::{series_end, Rule, Status, Time};
use crate::tz::{local_to_zoned, resolve_name};

/// The events of one UID: its master and its overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcalSeries {
    /// The UID (or the synthetic one of a VEVENT without UID).
    pub uid: String,
    /// The VEVENT without RECURRENCE-ID, if the input has one.
    pub master: Option<RemoteEvent>,
    /// The VEVENTs with RECURRENCE-ID, ordered by external id.
    pub overrides: Vec<RemoteEvent>,
}

impl IcalSeries {
    /// How many events the series holds.
    pub fn len(&self) -> usize {
        usize::from(self.master.is_some()) + self.overrides.len()
    }

    /// True when the series holds no event (never the case for a series
    /// returned by [`remote_series`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Re-keys the series under `group` (a CalDAV resource's href, whose
    /// resource holds exactly this UID): the master's external id becomes
    /// `group`, each override's `group#<RECURRENCE-ID>` and its
    /// `recurring_event_id` `group`.
    pub fn rekey(mut self, group: &str) -> IcalSeries {
        if let Some(master) = self.master.as_mut() {
            master.external_id = group.to_owned();
        }
        for o in &mut self.overrides {
            if let Some(rid) = o.original_start.as_ref() {
                o.external_id = format!("{group}#{}", rid_key(rid));
            }
            o.recurring_event_id = Some(group.to_owned());
        }
        self
    }

    /// The master (first) and the overrides.
    pub fn into_events(self) -> Vec<RemoteEvent> {
        self.master.into_iter().chain(self.overrides).collect()
    }

    /// The series as one change that replaces whatever was stored for it:
    /// keyed by UID (`group: None`), or re-keyed under `group` first (see
    /// [`IcalSeries::rekey`]).
    pub fn into_change(self, group: Option<&str>) -> EventChange {
        let (group, series) = match group {
            Some(g) => (g.to_owned(), self.rekey(g)),
            None => (self.uid.clone(), self),
        };
        EventChange::Replace {
            group,
            events: series.into_events(),
        }
    }
}

/// A whole input: its series and what the calendar says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IcalFeed {
    /// VCALENDAR components found (0: the input is not an iCalendar object,
    /// although bare VEVENTs are still read).
    pub calendars: usize,
    /// X-WR-CALNAME or NAME (RFC 7986 §5.1) of the first calendar that has one.
    pub name: Option<String>,
    /// COLOR (RFC 7986 §5.9) or X-APPLE-CALENDAR-COLOR, as written.
    pub color: Option<String>,
    /// X-WR-TIMEZONE as an IANA name.
    pub timezone: Option<String>,
    /// One series per UID, ordered by UID.
    pub series: Vec<IcalSeries>,
    /// Events or properties that could not be used.
    pub skipped: Vec<Skipped>,
}

impl IcalFeed {
    /// Events over all series.
    pub fn event_count(&self) -> usize {
        self.series.iter().map(IcalSeries::len).sum()
    }
}

/// Reads iCalendar bytes into series of provider-neutral events (see the
/// module docs). Refuses input over [`MAX_INPUT_BYTES`].
pub fn remote_series(bytes: &[u8]) -> Result<Vec<IcalSeries>, IcalError> {
    remote_feed(bytes).map(|feed| feed.series)
}

/// [`remote_series`] with the calendar's name, colour and zone.
pub fn remote_feed(bytes: &[u8]) -> Result<IcalFeed, IcalError> {
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(IcalError::TooLarge {
            size: bytes.len(),
            limit: MAX_INPUT_BYTES,
        });
    }
    let text = decode(bytes);
    let mut feed = IcalFeed::default();
    let mut pieces: Vec<Piece> = Vec::new();
    let mut skipped = Vec::new();
    read_with(
        &text,
        true,
        |zones, calendar| {
            if let Some(c) = calendar {
                feed.calendars += 1;
                describe(&mut feed, c, &zones);
            }
            zones
        },
        |zones, c| {
            if let Some(piece) = read_piece(c, zones, &mut skipped) {
                pieces.push(piece);
            }
        },
    )?;
    feed.series = group(pieces);
    feed.skipped = skipped;
    Ok(feed)
}

fn describe(feed: &mut IcalFeed, c: &Component<'_>, zones: &Zones<'_>) {
    let value = |name: &str| {
        c.prop(name)
            .map(|p| unescape_text(&p.value).trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    feed.name = feed
        .name
        .take()
        .or_else(|| value("X-WR-CALNAME"))
        .or_else(|| value("NAME"));
    feed.color = feed
        .color
        .take()
        .or_else(|| value("COLOR"))
        .or_else(|| value("X-APPLE-CALENDAR-COLOR"));
    feed.timezone = feed.timezone.take().or_else(|| zones.x_wr_iana_name());
}

/// Descriptive properties of one VEVENT.
struct Details {
    description: Option<String>,
    location: Option<String>,
    html_link: Option<String>,
    updated: Option<Timestamp>,
}

/// One VEVENT as read, before grouping by UID.
struct Piece {
    event: Event,
    /// RRULE values that parse, as written.
    rrules: Vec<String>,
    /// IANA name of DTSTART's zone.
    zone: Option<String>,
    details: Details,
}

fn read_piece(
    c: &Component<'_>,
    zones: &mut Zones<'_>,
    skipped: &mut Vec<Skipped>,
) -> Option<Piece> {
    let event = read_event(c, zones, skipped)?;
    let tzid = c.prop("DTSTART").and_then(|p| p.param("TZID"));
    let zone = zone_label(zones, &event.series.start, tzid);
    let rrules = c
        .props_named("RRULE")
        .map(|p| p.value.trim())
        .filter(|v| Rule::parse(v).is_ok())
        .map(str::to_owned)
        .collect();
    let non_blank = |name: &str| text(c, name).filter(|v| !v.trim().is_empty());
    let updated = c
        .prop("LAST-MODIFIED")
        .or_else(|| c.prop("DTSTAMP"))
        .and_then(|p| parse_time(&p.value, None, false))
        .and_then(|raw| match raw {
            // Both are UTC by definition (RFC 5545 §3.8.7.2-3); a value
            // without `Z` is read as UTC too.
            RawTime::Utc(dt) | RawTime::Floating(dt) | RawTime::Local(dt, _) => {
                dt.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp())
            }
            RawTime::Date(_) => None,
        });
    Some(Piece {
        event,
        rrules,
        zone,
        details: Details {
            description: non_blank("DESCRIPTION"),
            location: non_blank("LOCATION"),
            html_link: c.prop("URL").and_then(|p| web_link(&p.value)),
            updated,
        },
    })
}

/// The URL property (RFC 5545 §3.8.4.6) when it is a web address: the link
/// is shown to users, so `javascript:` and other schemes are dropped.
fn web_link(value: &str) -> Option<String> {
    let value = value.trim();
    let lower = value.get(..8).unwrap_or(value).to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://")).then(|| value.to_owned())
}

/// The IANA name of a zoned value's zone (see the module docs); `tzid` is
/// the property's TZID parameter.
fn zone_label(zones: &Zones<'_>, t: &Time, tzid: Option<&str>) -> Option<String> {
    let Time::Zoned(z) = t else {
        return None;
    };
    // A zone built from VTIMEZONE rules carries the TZID as its name, which
    // the store could not resolve: only names the resolver knows count.
    if let Some(name) = z
        .time_zone()
        .iana_name()
        .and_then(resolve_name)
        .and_then(|tz| tz.iana_name().map(str::to_owned))
    {
        return Some(name);
    }
    match tzid {
        Some(tzid) => zones.iana_name(tzid),
        None => zones.x_wr_iana_name(),
    }
}

/// A value as the store's expander must see it to match the core
/// expander's identity of instances (see `recur::series::Frame::key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    Date(Date),
    Instant(Timestamp),
    /// A wall-clock time of a floating series; the store reads it as UTC.
    Civil(DateTime),
}

/// `t` on the wall clock of a series starting at `frame`: all-day series
/// compare days, floating series wall clocks, zoned series instants (a
/// floating value in a zoned series is on the series' clock).
fn frame_value(frame: &Time, t: &Time) -> Option<Value> {
    Some(match (frame, t) {
        (Time::Date(_), t) => Value::Date(t.civil().date()),
        (_, Time::Date(d)) => Value::Date(*d),
        (Time::Floating(_), t) => Value::Civil(t.civil()),
        (Time::Zoned(_), Time::Zoned(z)) => Value::Instant(z.timestamp()),
        (Time::Zoned(f), Time::Floating(dt)) => {
            Value::Instant(local_to_zoned(f.time_zone(), *dt).ok()?.timestamp())
        }
    })
}

/// An RDATE value on the series' clock: unlike EXDATEs and RECURRENCE-IDs,
/// which may name a timed instance by its day, a DATE RDATE of a timed
/// series is an instance at midnight on the series' wall clock (as the
/// expander's `Frame::secs` reads it).
fn rdate_value(frame: &Time, t: &Time) -> Option<Value> {
    match (frame, t) {
        (Time::Date(_), _) | (_, Time::Zoned(_) | Time::Floating(_)) => frame_value(frame, t),
        (Time::Floating(_), Time::Date(d)) => {
            Some(Value::Civil(d.to_datetime(jiff::civil::Time::midnight())))
        }
        (Time::Zoned(_), Time::Date(d)) => frame_value(
            frame,
            &Time::Floating(d.to_datetime(jiff::civil::Time::midnight())),
        ),
    }
}

fn utc_reading(dt: DateTime) -> Option<Timestamp> {
    dt.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp())
}

impl Value {
    fn to_start(self, zone: Option<&str>) -> Option<EventStart> {
        Some(match self {
            Value::Date(d) => EventStart::Date(d),
            Value::Instant(instant) => EventStart::DateTime {
                instant,
                zone: zone.map(str::to_owned),
            },
            Value::Civil(dt) => EventStart::DateTime {
                instant: utc_reading(dt)?,
                zone: None,
            },
        })
    }

    /// The value in a recurrence line: `(params, value)`.
    fn line_value(self) -> (&'static str, String) {
        match self {
            Value::Date(d) => (";VALUE=DATE", d.strftime("%Y%m%d").to_string()),
            Value::Instant(t) => ("", t.strftime("%Y%m%dT%H%M%SZ").to_string()),
            Value::Civil(dt) => ("", dt.strftime("%Y%m%dT%H%M%S").to_string()),
        }
    }
}

/// A value as an event start (its own frame): zoned values keep `zone`.
fn own_start(t: &Time, zone: Option<&str>) -> Option<EventStart> {
    frame_value(t, t)?.to_start(zone)
}

/// The key of a RECURRENCE-ID in external ids: a date, or a UTC instant.
fn rid_key(rid: &EventStart) -> String {
    match rid {
        EventStart::Date(d) => d.strftime("%Y%m%d").to_string(),
        EventStart::DateTime { instant, .. } => instant.strftime("%Y%m%dT%H%M%SZ").to_string(),
    }
}

fn status(s: Option<Status>) -> EventStatus {
    match s {
        Some(Status::Cancelled) => EventStatus::Cancelled,
        Some(Status::Tentative) => EventStatus::Tentative,
        Some(Status::Confirmed) | None => EventStatus::Confirmed,
    }
}

/// The RRULE, RDATE and EXDATE lines of a master, each checked with the
/// store's reader so that one odd value cannot hide the whole series there.
fn recurrence_lines(piece: &Piece) -> Vec<String> {
    let series = &piece.event.series;
    let frame = &series.start;
    let mut lines: Vec<String> = piece.rrules.iter().map(|r| format!("RRULE:{r}")).collect();
    for r in &series.rdates {
        let Some(start) = rdate_value(frame, &r.start) else {
            continue;
        };
        let end = r.end.as_ref().and_then(|e| rdate_value(frame, e));
        let (params, value) = start.line_value();
        match (start, end) {
            // A PERIOD (RFC 5545 §3.3.9) keeps its own end; all-day values
            // cannot be periods.
            (
                Value::Instant(_) | Value::Civil(_),
                Some(end @ (Value::Instant(_) | Value::Civil(_))),
            ) => {
                lines.push(format!("RDATE;VALUE=PERIOD:{value}/{}", end.line_value().1));
            }
            _ => lines.push(format!("RDATE{params}:{value}")),
        }
    }
    for x in &series.exdates {
        if let Some(v) = frame_value(frame, x) {
            let (params, value) = v.line_value();
            lines.push(format!("EXDATE{params}:{value}"));
        }
    }
    let zone = match frame {
        Time::Zoned(z) => Some(z.time_zone().clone()),
        Time::Floating(_) => Some(TimeZone::UTC),
        Time::Date(_) => None,
    };
    lines.retain(|l| parse_recurrence(std::slice::from_ref(l), zone.as_ref()).is_ok());
    lines
}

/// The event of a piece with its start, end and details.
fn to_event(piece: &Piece, external_id: String, start: EventStart) -> RemoteEvent {
    let series = &piece.event.series;
    let zone = piece.zone.as_deref();
    let end = series_end(&series.start, &series.end)
        .and_then(|e| own_start(&e, zone))
        .unwrap_or_else(|| start.clone());
    RemoteEvent {
        external_id,
        etag: None,
        status: status(series.status),
        title: series.summary.clone(),
        description: piece.details.description.clone(),
        location: piece.details.location.clone(),
        start,
        end,
        recurrence: Vec::new(),
        recurring_event_id: None,
        original_start: None,
        html_link: piece.details.html_link.clone(),
        updated: piece.details.updated,
    }
}

/// FNV-1a (64 bits): a stable hash, unlike std's, for synthetic UIDs.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The UID of a VEVENT without one: a hash of its start and summary, so
/// that the same event keeps its id when the feed is served again.
fn synthetic_uid(start: &EventStart, summary: &str) -> String {
    let key = format!("{}\u{1f}{summary}", rid_key(start));
    format!("calsync-{:016x}", fnv1a(key.as_bytes()))
}

/// Groups pieces by UID across the input (one UID is one series, whatever
/// VCALENDAR it is in). A later copy of the same master or override wins
/// unless its SEQUENCE is lower (RFC 5545 §3.8.7.4), as in the expander.
///
/// Works on indices into `pieces` and the output: pieces and series are
/// large, and moving them through hash maps and sorts dominated the time
/// of a 16 MB feed.
fn group(mut pieces: Vec<Piece>) -> Vec<IcalSeries> {
    // Each piece's UID, and whether it is an override.
    let mut keys: Vec<Option<(String, bool)>> = Vec::with_capacity(pieces.len());
    for piece in &mut pieces {
        let uid = piece.event.uid.clone().filter(|u| !u.is_empty());
        let is_override = piece.event.recurrence_id.is_some();
        keys.push(match uid {
            Some(uid) => Some((uid, is_override)),
            None => {
                if is_override {
                    // Without a UID an override cannot find its series: it
                    // is the one event it describes, as in the expander.
                    piece.rrules.clear();
                    piece.event.series.rdates.clear();
                    piece.event.recurrence_id = None;
                }
                let series = &piece.event.series;
                own_start(&series.start, piece.zone.as_deref())
                    .map(|start| (synthetic_uid(&start, &series.summary), false))
            }
        });
    }
    let mut master_of: HashMap<&str, usize> = HashMap::with_capacity(pieces.len());
    let mut overrides: Vec<(&str, usize)> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let Some((uid, is_override)) = key else {
            continue;
        };
        if *is_override {
            overrides.push((uid, i));
            continue;
        }
        let sequence = |j: usize| pieces.get(j).map_or(i64::MIN, |p| p.event.sequence);
        match master_of.get_mut(uid.as_str()) {
            Some(old) if sequence(*old) > sequence(i) => {}
            Some(old) => *old = i,
            None => {
                master_of.insert(uid, i);
            }
        }
    }

    // The series in order of UID; with each master's start as the expander
    // sees it (its "frame"), against which RECURRENCE-IDs are matched.
    let mut uids: Vec<&str> = master_of.keys().copied().collect();
    uids.extend(overrides.iter().map(|(uid, _)| *uid));
    uids.sort_unstable();
    uids.dedup();
    let mut out: Vec<IcalSeries> = Vec::with_capacity(uids.len());
    let mut frames: Vec<Option<&Time>> = Vec::with_capacity(uids.len());
    let mut index_of: HashMap<&str, usize> = HashMap::with_capacity(uids.len());
    for uid in uids {
        let master = master_of
            .get(uid)
            .and_then(|&i| pieces.get(i))
            .and_then(|piece| {
                let start = own_start(&piece.event.series.start, piece.zone.as_deref())?;
                let mut master = to_event(piece, uid.to_owned(), start);
                master.recurrence = recurrence_lines(piece);
                Some((master, &piece.event.series.start))
            });
        index_of.insert(uid, out.len());
        frames.push(master.as_ref().map(|(_, frame)| *frame));
        out.push(IcalSeries {
            uid: uid.to_owned(),
            master: master.map(|(m, _)| m),
            overrides: Vec::new(),
        });
    }

    // Stable: equal SEQUENCEs keep file order, so the later copy wins.
    overrides.sort_by_key(|&(_, i)| pieces.get(i).map_or(0, |p| p.event.sequence));
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (uid, i) in overrides {
        let (Some(piece), Some(&at)) = (pieces.get(i), index_of.get(uid)) else {
            continue;
        };
        let (Some(series), Some((rid, _future))) = (out.get_mut(at), &piece.event.recurrence_id)
        else {
            continue;
        };
        // The RECURRENCE-ID on the master's clock (a floating one in a zoned
        // series means that series' wall clock); alone, on its own.
        let original = match (frames.get(at).copied().flatten(), &series.master) {
            (Some(frame), Some(m)) => {
                frame_value(frame, rid).and_then(|v| v.to_start(zone_of(&m.start)))
            }
            _ => own_start(rid, piece.zone.as_deref()),
        };
        let Some(original) = original else { continue };
        let Some(start) = own_start(&piece.event.series.start, piece.zone.as_deref()) else {
            continue;
        };
        let id = format!("{uid}/{}", rid_key(&original));
        let mut event = to_event(piece, id.clone(), start);
        event.recurring_event_id = Some(uid.to_owned());
        event.original_start = Some(original);
        match seen.get(&id) {
            Some(&slot) => {
                if let Some(slot) = series.overrides.get_mut(slot) {
                    *slot = event;
                }
            }
            None => {
                seen.insert(id, series.overrides.len());
                series.overrides.push(event);
            }
        }
    }
    for s in &mut out {
        s.overrides
            .sort_by(|a, b| a.external_id.cmp(&b.external_id));
    }
    out.retain(|s| !s.is_empty());
    out
}

fn zone_of(start: &EventStart) -> Option<&str> {
    match start {
        EventStart::DateTime { zone, .. } => zone.as_deref(),
        EventStart::Date(_) => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::plan::series_occurrences;
    use crate::recur::{expand, Window};

    fn window(from: &str, to: &str) -> Window {
        Window::new(from.parse().unwrap(), to.parse().unwrap()).unwrap()
    }

    fn utc(t: &Time) -> String {
        match t {
            Time::Date(d) => d.to_string(),
            other => other.timestamp_in(&TimeZone::UTC).unwrap().to_string(),
        }
    }

    /// (start, end, summary) of every occurrence the core expander gives,
    /// cancelled ones left out (the store drops them).
    fn core_occurrences(ics: &str, w: &Window) -> Vec<(String, String, String)> {
        let cal = crate::ical::parse(ics.as_bytes()).unwrap();
        let mut out: Vec<_> = cal
            .series
            .iter()
            .flat_map(|s| expand(s, w).unwrap().occurrences)
            .filter(|o| o.status != Some(Status::Cancelled))
            .map(|o| (utc(&o.start), utc(&o.end), o.summary.to_string()))
            .collect();
        out.sort();
        out
    }

    /// The same through remote events and the store's planner.
    fn store_occurrences(ics: &str, w: &Window) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for s in remote_series(ics.as_bytes()).unwrap() {
            let instances: Vec<&RemoteEvent> = s.overrides.iter().collect();
            for p in series_occurrences(s.master.as_ref(), &instances, w).unwrap() {
                let event = s
                    .master
                    .iter()
                    .chain(&s.overrides)
                    .find(|e| e.external_id == p.external_id)
                    .unwrap();
                out.push((utc(&p.start), utc(&p.end), event.title.clone()));
            }
        }
        out.sort();
        out
    }

    const WEEKLY: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n\
BEGIN:VEVENT\r\nUID:weekly@example.com\r\nDTSTAMP:20260101T000000Z\r\n\
DTSTART;TZID=Europe/Berlin:20260302T150000\r\nDTEND;TZID=Europe/Berlin:20260302T160000\r\n\
RRULE:FREQ=WEEKLY;COUNT=8\r\nEXDATE;TZID=Europe/Berlin:20260323T150000\r\n\
RDATE;TZID=Europe/Berlin:20260304T120000\r\n\
SUMMARY:Standup\r\nDESCRIPTION:Daily\\, weekly\r\nLOCATION:Room 1\r\n\
URL:https://example.com/e/1\r\nLAST-MODIFIED:20260215T101500Z\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:weekly@example.com\r\nRECURRENCE-ID;TZID=Europe/Berlin:20260309T150000\r\n\
DTSTART;TZID=Europe/Berlin:20260310T110000\r\nDTEND;TZID=Europe/Berlin:20260310T113000\r\n\
SUMMARY:Standup (moved)\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:weekly@example.com\r\nRECURRENCE-ID;TZID=Europe/Berlin:20260316T150000\r\n\
DTSTART;TZID=Europe/Berlin:20260316T150000\r\nDTEND;TZID=Europe/Berlin:20260316T160000\r\n\
STATUS:CANCELLED\r\nSUMMARY:Standup\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    #[test]
    fn a_weekly_series_with_a_moved_and_a_cancelled_override_expands_as_the_core_does() {
        let w = window("2026-02-01T00:00:00Z", "2026-06-01T00:00:00Z");
        let store = store_occurrences(WEEKLY, &w);
        assert_eq!(store, core_occurrences(WEEKLY, &w));
        let starts: Vec<&str> = store.iter().map(|o| o.0.as_str()).collect();
        // 15:00 Berlin is 14:00Z in winter, 13:00Z from 29 March; 9 March is
        // moved, 16 March cancelled, 23 March excluded, 4 March added.
        assert_eq!(
            starts,
            [
                "2026-03-02T14:00:00Z",
                "2026-03-04T11:00:00Z",
                "2026-03-10T10:00:00Z",
                "2026-03-30T13:00:00Z",
                "2026-04-06T13:00:00Z",
                "2026-04-13T13:00:00Z",
                "2026-04-20T13:00:00Z",
            ]
        );

        let series = remote_series(WEEKLY.as_bytes()).unwrap();
        assert_eq!(series.len(), 1);
        let s = &series[0];
        let master = s.master.as_ref().unwrap();
        assert_eq!(master.external_id, "weekly@example.com");
        assert_eq!(master.title, "Standup");
        assert_eq!(master.description.as_deref(), Some("Daily, weekly"));
        assert_eq!(master.location.as_deref(), Some("Room 1"));
        assert_eq!(master.html_link.as_deref(), Some("https://example.com/e/1"));
        assert_eq!(
            master.updated,
            Some("2026-02-15T10:15:00Z".parse().unwrap())
        );
        assert_eq!(
            master.start,
            EventStart::DateTime {
                instant: "2026-03-02T14:00:00Z".parse().unwrap(),
                zone: Some("Europe/Berlin".into())
            }
        );
        assert_eq!(
            master.recurrence,
            [
                "RRULE:FREQ=WEEKLY;COUNT=8",
                "RDATE:20260304T110000Z",
                "EXDATE:20260323T140000Z"
            ]
        );
        let ids: Vec<&str> = s.overrides.iter().map(|o| o.external_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "weekly@example.com/20260309T140000Z",
                "weekly@example.com/20260316T140000Z"
            ]
        );
        assert_eq!(s.overrides[1].status, EventStatus::Cancelled);
        assert_eq!(
            s.overrides[0].recurring_event_id.as_deref(),
            Some("weekly@example.com")
        );
        assert!(s.overrides[0].recurrence.is_empty());
    }

    #[test]
    fn all_day_events_are_dates_with_the_default_length() {
        let ics = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:day\nDTSTART;VALUE=DATE:20260310\n\
RRULE:FREQ=DAILY;COUNT=4\nEXDATE;VALUE=DATE:20260311\nSUMMARY:Holiday\nEND:VEVENT\n\
BEGIN:VEVENT\nUID:trip\nDTSTART;VALUE=DATE:20260320\nDTEND;VALUE=DATE:20260323\nSUMMARY:Trip\nEND:VEVENT\n\
BEGIN:VEVENT\nUID:day\nRECURRENCE-ID;VALUE=DATE:20260312\nDTSTART;VALUE=DATE:20260315\nSUMMARY:Holiday moved\nEND:VEVENT\n\
END:VCALENDAR\n";
        let w = window("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z");
        assert_eq!(store_occurrences(ics, &w), core_occurrences(ics, &w));
        let series = remote_series(ics.as_bytes()).unwrap();
        let day = series.iter().find(|s| s.uid == "day").unwrap();
        let master = day.master.as_ref().unwrap();
        assert_eq!(
            master.start,
            EventStart::Date(jiff::civil::date(2026, 3, 10))
        );
        assert_eq!(master.end, EventStart::Date(jiff::civil::date(2026, 3, 11)));
        assert_eq!(master.recurrence[1], "EXDATE;VALUE=DATE:20260311");
        assert_eq!(day.overrides[0].external_id, "day/20260312");
        assert_eq!(
            day.overrides[0].original_start,
            Some(EventStart::Date(jiff::civil::date(2026, 3, 12)))
        );
        let trip = series.iter().find(|s| s.uid == "trip").unwrap();
        assert_eq!(
            trip.master.as_ref().unwrap().end,
            EventStart::Date(jiff::civil::date(2026, 3, 23))
        );
    }

    #[test]
    fn windows_and_custom_zone_names_become_iana_names() {
        let ics = "BEGIN:VCALENDAR\nBEGIN:VTIMEZONE\nTZID:My Zone\nX-LIC-LOCATION:America/New_York\n\
BEGIN:STANDARD\nDTSTART:19701101T020000\nRRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\nTZOFFSETFROM:-0400\nTZOFFSETTO:-0500\nEND:STANDARD\n\
BEGIN:DAYLIGHT\nDTSTART:19700308T020000\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\nTZOFFSETFROM:-0500\nTZOFFSETTO:-0400\nEND:DAYLIGHT\n\
END:VTIMEZONE\n\
BEGIN:VEVENT\nUID:win\nDTSTART;TZID=W. Europe Standard Time:20260302T090000\nDURATION:PT90M\n\
RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=6\nEXDATE;TZID=W. Europe Standard Time:20260309T090000\nSUMMARY:Outlook\nEND:VEVENT\n\
BEGIN:VEVENT\nUID:lic\nDTSTART;TZID=My Zone:20260302T090000\nDTEND;TZID=My Zone:20260302T100000\n\
RRULE:FREQ=WEEKLY;COUNT=4\nSUMMARY:Custom\nEND:VEVENT\nEND:VCALENDAR\n";
        let series = remote_series(ics.as_bytes()).unwrap();
        let zone = |uid: &str| {
            let s = series.iter().find(|s| s.uid == uid).unwrap();
            match &s.master.as_ref().unwrap().start {
                EventStart::DateTime { zone, .. } => zone.clone(),
                EventStart::Date(_) => None,
            }
        };
        assert_eq!(zone("win").as_deref(), Some("Europe/Berlin"));
        assert_eq!(zone("lic").as_deref(), Some("America/New_York"));
        let w = window("2026-02-01T00:00:00Z", "2026-05-01T00:00:00Z");
        let store = store_occurrences(ics, &w);
        assert_eq!(store, core_occurrences(ics, &w));
        // 90 minutes, and 9 March excluded; New York switches on 8 March.
        assert!(store.contains(&(
            "2026-03-02T08:00:00Z".into(),
            "2026-03-02T09:30:00Z".into(),
            "Outlook".into()
        )));
        assert!(!store.iter().any(|o| o.0 == "2026-03-09T08:00:00Z"));
        assert!(store.iter().any(|o| o.0 == "2026-03-09T13:00:00Z"));
    }

    #[test]
    fn an_override_without_its_master_stands_alone() {
        let ics = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:lonely\nRECURRENCE-ID:20260309T140000Z\n\
DTSTART:20260310T100000Z\nDTEND:20260310T110000Z\nSUMMARY:Invited once\nEND:VEVENT\nEND:VCALENDAR\n";
        let series = remote_series(ics.as_bytes()).unwrap();
        assert_eq!(series.len(), 1);
        let s = &series[0];
        assert!(s.master.is_none());
        assert_eq!(s.overrides.len(), 1);
        let o = &s.overrides[0];
        assert_eq!(o.external_id, "lonely/20260309T140000Z");
        assert_eq!(o.recurring_event_id.as_deref(), Some("lonely"));
        let w = window("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z");
        assert_eq!(store_occurrences(ics, &w), core_occurrences(ics, &w));
        assert_eq!(store_occurrences(ics, &w).len(), 1);
    }

    #[test]
    fn rekeying_under_a_caldav_href() {
        let series = remote_series(WEEKLY.as_bytes()).unwrap();
        let href = "/dav/cal/3f2a.ics";
        let change = series[0].clone().into_change(Some(href));
        let EventChange::Replace { group, events } = change else {
            panic!("not a replace")
        };
        assert_eq!(group, href);
        let ids: Vec<&str> = events.iter().map(|e| e.external_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                href,
                "/dav/cal/3f2a.ics#20260309T140000Z",
                "/dav/cal/3f2a.ics#20260316T140000Z"
            ]
        );
        assert!(events[1..]
            .iter()
            .all(|e| e.recurring_event_id.as_deref() == Some(href)));
        let EventChange::Replace { group, events } = series[0].clone().into_change(None) else {
            panic!("not a replace")
        };
        assert_eq!(group, "weekly@example.com");
        assert_eq!(events.len(), 3);
    }

    #[test]
    fn floating_times_follow_x_wr_timezone() {
        let ics = "BEGIN:VCALENDAR\nX-WR-CALNAME:Team\nX-APPLE-CALENDAR-COLOR:#FF2968\n\
X-WR-TIMEZONE:Europe/London\nBEGIN:VEVENT\nUID:f\nDTSTART:20260320T090000\nDTEND:20260320T100000\n\
RRULE:FREQ=WEEKLY;COUNT=3\nEXDATE:20260403T090000\nSUMMARY:Floating\nEND:VEVENT\n\
BEGIN:VEVENT\nUID:g\nDTSTART:20260321T090000\nSUMMARY:Also floating\nURL:javascript:alert(1)\nEND:VEVENT\nEND:VCALENDAR\n";
        let feed = remote_feed(ics.as_bytes()).unwrap();
        assert_eq!(feed.calendars, 1);
        assert_eq!(feed.name.as_deref(), Some("Team"));
        assert_eq!(feed.color.as_deref(), Some("#FF2968"));
        assert_eq!(feed.timezone.as_deref(), Some("Europe/London"));
        let f = feed.series[0].master.as_ref().unwrap();
        assert_eq!(
            f.start,
            EventStart::DateTime {
                instant: "2026-03-20T09:00:00Z".parse().unwrap(),
                zone: Some("Europe/London".into())
            }
        );
        let g = feed.series[1].master.as_ref().unwrap();
        assert_eq!(g.html_link, None);
        // DATE-TIME start without an end: zero length (RFC 5545 §3.6.1).
        assert_eq!(g.end, g.start);
        let w = window("2026-03-01T00:00:00Z", "2026-05-01T00:00:00Z");
        let store = store_occurrences(ics, &w);
        assert_eq!(store, core_occurrences(ics, &w));
        // London switches to summer time on 29 March: 09:00 is 08:00Z after.
        let starts: Vec<&str> = store.iter().map(|o| o.0.as_str()).collect();
        assert_eq!(
            starts,
            [
                "2026-03-20T09:00:00Z",
                "2026-03-21T09:00:00Z",
                "2026-03-27T09:00:00Z"
            ]
        );
    }

    #[test]
    fn floating_times_without_a_calendar_zone_read_as_utc() {
        let ics = "BEGIN:VEVENT\nUID:fl\nDTSTART:20260302T090000\nDURATION:PT1H\n\
RRULE:FREQ=DAILY;COUNT=3\nEXDATE:20260303T090000\nEND:VEVENT\n\
BEGIN:VEVENT\nUID:fl\nRECURRENCE-ID:20260304T090000\nDTSTART:20260304T120000\nDURATION:PT1H\nEND:VEVENT\n";
        let w = window("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z");
        let store = store_occurrences(ics, &w);
        assert_eq!(store, core_occurrences(ics, &w));
        assert_eq!(store.len(), 2);
        let s = &remote_series(ics.as_bytes()).unwrap()[0];
        assert_eq!(s.overrides[0].external_id, "fl/20260304T090000Z");
        assert!(matches!(
            s.master.as_ref().unwrap().start,
            EventStart::DateTime { zone: None, .. }
        ));
    }

    #[test]
    fn ids_survive_reordering_and_reserialisation() {
        let a = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:x\nDTSTART;TZID=Europe/Berlin:20260302T150000\n\
RRULE:FREQ=DAILY;COUNT=5\nSUMMARY:X\nEND:VEVENT\n\
BEGIN:VEVENT\nUID:x\nRECURRENCE-ID;TZID=Europe/Berlin:20260303T150000\nDTSTART;TZID=Europe/Berlin:20260303T160000\nSUMMARY:X moved\nEND:VEVENT\n\
BEGIN:VEVENT\nDTSTART:20260305T100000Z\nSUMMARY:No uid\nEND:VEVENT\nEND:VCALENDAR\n";
        // The same events: other order, a Windows TZID, a UTC RECURRENCE-ID.
        let b = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:No uid\nDTSTART:20260305T100000Z\nEND:VEVENT\n\
BEGIN:VEVENT\nUID:x\nRECURRENCE-ID:20260303T140000Z\nDTSTART;TZID=W. Europe Standard Time:20260303T160000\nSUMMARY:X moved\nEND:VEVENT\n\
BEGIN:VEVENT\nUID:x\nDTSTART;TZID=W. Europe Standard Time:20260302T150000\n\
RRULE:FREQ=DAILY;COUNT=5\nSUMMARY:X\nEND:VEVENT\nEND:VCALENDAR\n";
        let ids = |ics: &str| -> Vec<String> {
            remote_series(ics.as_bytes())
                .unwrap()
                .into_iter()
                .flat_map(IcalSeries::into_events)
                .map(|e| e.external_id)
                .collect()
        };
        assert_eq!(ids(a), ids(b));
        assert_eq!(ids(a).len(), 3);
        assert!(ids(a).iter().any(|id| id.starts_with("calsync-")));
        assert_eq!(
            remote_series(a.as_bytes()).unwrap(),
            remote_series(b.as_bytes()).unwrap()
        );
    }

    #[test]
    fn the_later_or_higher_sequence_copy_wins() {
        let ics = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:d\nSEQUENCE:2\nDTSTART:20260302T090000Z\nSUMMARY:new\nEND:VEVENT\n\
BEGIN:VEVENT\nUID:d\nSEQUENCE:1\nDTSTART:20260302T090000Z\nSUMMARY:old\nEND:VEVENT\nEND:VCALENDAR\n";
        let s = remote_series(ics.as_bytes()).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].master.as_ref().unwrap().title, "new");
        let w = window("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z");
        assert_eq!(store_occurrences(ics, &w), core_occurrences(ics, &w));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        /// Mutated feeds never panic, and every recurrence line written is
        /// one the store's reader accepts (else the store would show only
        /// the first instance of the series).
        #[test]
        fn mutated_feeds_give_readable_events(
            edits in proptest::collection::vec((0usize..4000, proptest::sample::select(
                b":;,=\r\n 09ZT-/".to_vec())), 0..8)
        ) {
            let mut bytes = WEEKLY.as_bytes().to_vec();
            for (at, byte) in edits {
                let at = at % bytes.len();
                bytes[at] = byte;
            }
            let w = window("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z");
            for s in remote_series(&bytes).unwrap() {
                if let Some(m) = &s.master {
                    let zone = match &m.start {
                        EventStart::DateTime { zone, .. } => Some(
                            zone.as_deref().and_then(resolve_name).unwrap_or(TimeZone::UTC),
                        ),
                        EventStart::Date(_) => None,
                    };
                    proptest::prop_assert!(parse_recurrence(&m.recurrence, zone.as_ref()).is_ok());
                }
                let instances: Vec<&RemoteEvent> = s.overrides.iter().collect();
                proptest::prop_assert!(series_occurrences(s.master.as_ref(), &instances, &w).is_ok());
            }
        }
    }

    #[test]
    fn oversized_input_is_refused() {
        let big = vec![b' '; MAX_INPUT_BYTES + 1];
        assert!(matches!(
            remote_series(&big),
            Err(IcalError::TooLarge { .. })
        ));
        assert_eq!(remote_feed(b"not a calendar").unwrap().calendars, 0);
    }
}
