//! From the component tree to [`Series`]: zone resolution per calendar and
//! grouping of RECURRENCE-ID components with their master by UID
//! (RFC 5545 §3.8.4.4, §3.8.4.7).

use std::collections::HashMap;

use jiff::tz::TimeZone;

use super::component::{parse_pass, parse_pass_detailed, Component, Pass};
use super::lexer::ContentLine;
use super::value::{
    parse_duration, parse_period, parse_time, parse_utc_offset, split_list, unescape_text,
    PeriodEnd, RawTime,
};
use super::{Calendar, IcalError, Skipped};
use crate::recur::{series_add_length, EndSpec, Override, RDate, Rule, Series, Status, Time};
use crate::tz::vtimezone::{self, Observance};
use crate::tz::{local_to_zoned, resolve_name};

/// Zones of one VCALENDAR: its VTIMEZONEs, X-WR-TIMEZONE and a cache.
pub(super) struct Zones<'a> {
    vtimezones: Vec<Component<'a>>,
    x_wr: Option<TimeZone>,
    x_wr_name: Option<String>,
    // Few distinct TZIDs per calendar: a list beats hashing every value.
    cache: Vec<(String, Option<TimeZone>)>,
}

fn clean_tzid(s: &str) -> &str {
    s.trim().trim_matches('"').trim()
}

impl<'a> Zones<'a> {
    fn new(vtimezones: Vec<Component<'a>>, x_wr: Option<&str>) -> Self {
        let mut zones = Zones {
            vtimezones,
            x_wr: None,
            x_wr_name: x_wr.map(|n| clean_tzid(n).to_string()),
            cache: Vec::new(),
        };
        zones.x_wr = x_wr.and_then(|name| zones.zone(name));
        zones
    }

    /// The IANA name for a TZID: a name the resolver knows (IANA, Windows,
    /// vendor-prefixed), else the X-LIC-LOCATION of the calendar's VTIMEZONE
    /// of that TZID. `None` for zones known only by their rules.
    pub(super) fn iana_name(&self, tzid: &str) -> Option<String> {
        let tzid = clean_tzid(tzid);
        let named = |tz: TimeZone| tz.iana_name().map(str::to_string);
        if let Some(name) = resolve_name(tzid).and_then(named) {
            return Some(name);
        }
        let vtz = self.vtimezones.iter().find(|v| {
            v.prop("TZID")
                .is_some_and(|p| clean_tzid(&p.value).eq_ignore_ascii_case(tzid))
        })?;
        vtz.prop("X-LIC-LOCATION")
            .and_then(|p| resolve_name(&p.value))
            .and_then(named)
    }

    /// The IANA name of X-WR-TIMEZONE, when it has one.
    pub(super) fn x_wr_iana_name(&self) -> Option<String> {
        self.x_wr_name.as_deref().and_then(|n| self.iana_name(n))
    }

    /// The zone a TZID names: a known name first, then the calendar's
    /// VTIMEZONE of that TZID, then its X-LIC-LOCATION.
    fn zone(&mut self, tzid: &str) -> Option<TimeZone> {
        let tzid = clean_tzid(tzid);
        if let Some((_, z)) = self.cache.iter().find(|(k, _)| k == tzid) {
            return z.clone();
        }
        let found = resolve_name(tzid).or_else(|| self.zone_of_vtimezone(tzid));
        self.cache.push((tzid.to_string(), found.clone()));
        found
    }

    fn zone_of_vtimezone(&self, tzid: &str) -> Option<TimeZone> {
        let vtz = self.vtimezones.iter().find(|v| {
            v.prop("TZID")
                .is_some_and(|p| clean_tzid(&p.value).eq_ignore_ascii_case(tzid))
        })?;
        let observances: Vec<Observance> = vtz.children.iter().filter_map(observance).collect();
        vtimezone::build(tzid, &observances).ok().or_else(|| {
            vtz.prop("X-LIC-LOCATION")
                .and_then(|p| resolve_name(&p.value))
        })
    }

    /// Gives a raw value its zone. X-WR-TIMEZONE moves UTC and floating
    /// values into that zone, as the x-wr-timezone library does; a TZID
    /// that names no zone leaves the value floating.
    fn time(&mut self, raw: RawTime) -> Option<Time> {
        Some(match raw {
            RawTime::Date(d) => Time::Date(d),
            RawTime::Utc(dt) => {
                let z = dt.to_zoned(TimeZone::UTC).ok()?;
                match &self.x_wr {
                    Some(tz) => Time::Zoned(z.with_time_zone(tz.clone())),
                    None => Time::Zoned(z),
                }
            }
            RawTime::Floating(dt) => match &self.x_wr {
                Some(tz) => Time::Zoned(local_to_zoned(tz, dt).ok()?),
                None => Time::Floating(dt),
            },
            RawTime::Local(dt, name) => match self.zone(&name) {
                Some(tz) => Time::Zoned(local_to_zoned(&tz, dt).ok()?),
                None => Time::Floating(dt),
            },
        })
    }

    pub(super) fn prop_time(&mut self, p: &ContentLine<'_>) -> Option<Time> {
        let raw = parse_time(&p.value, p.param("TZID"), is_date(p))?;
        self.time(raw)
    }
}

fn is_date(p: &ContentLine<'_>) -> bool {
    p.param("VALUE")
        .is_some_and(|v| v.eq_ignore_ascii_case("DATE"))
}

fn observance(c: &Component<'_>) -> Option<Observance> {
    let dst = match c.name {
        "DAYLIGHT" => true,
        "STANDARD" => false,
        _ => return None,
    };
    let start = parse_time(&c.prop("DTSTART")?.value, None, false)?.civil();
    let offset_to = parse_utc_offset(&c.prop("TZOFFSETTO")?.value)?;
    let offset_from = c
        .prop("TZOFFSETFROM")
        .and_then(|p| parse_utc_offset(&p.value))
        .unwrap_or(offset_to);
    let rule = c.prop("RRULE").and_then(|p| Rule::parse(&p.value).ok());
    let rdates = c
        .props_named("RDATE")
        .flat_map(|p| {
            split_list(&p.value)
                .filter_map(|v| parse_time(v, None, false))
                .map(|t| t.civil())
                .collect::<Vec<_>>()
        })
        .collect();
    Some(Observance {
        dst,
        start,
        offset_from,
        offset_to,
        rule,
        rdates,
    })
}

/// A DATE DTSTART with a DATE-TIME DTEND or a DURATION in hours is invalid
/// (RFC 5545 §3.6.1); the event is read as starting at midnight on the
/// end's clock, as the icalendar library does, rather than as an all-day
/// event of odd length.
fn promote_date_start(start: Time, end: &EndSpec) -> Time {
    let Time::Date(d) = start else {
        return start;
    };
    let midnight = d.to_datetime(jiff::civil::Time::midnight());
    match end {
        EndSpec::At(Time::Floating(_)) => Time::Floating(midnight),
        EndSpec::At(Time::Zoned(z)) => local_to_zoned(z.time_zone(), midnight)
            .map(Time::Zoned)
            .unwrap_or(Time::Date(d)),
        EndSpec::Duration(l) if l.exact != 0 || l.wall != 0 => Time::Floating(midnight),
        _ => Time::Date(d),
    }
}

enum Reversed {
    Kept(EndSpec),
    Swapped(Time, EndSpec),
}

/// A DTEND before DTSTART (invalid, RFC 5545 §3.8.2.2) is read as the two
/// values swapped when the event does not recur, as the producer evidently
/// swapped them; a recurring event gets the default length instead.
fn fix_reversed_end(start: &Time, end: EndSpec, c: &Component<'_>) -> Reversed {
    let EndSpec::At(e) = &end else {
        return Reversed::Kept(end);
    };
    let utc = TimeZone::UTC;
    let reversed = match (start.timestamp_in(&utc), e.timestamp_in(&utc)) {
        (Some(s), Some(t)) => t < s,
        _ => false,
    };
    if !reversed || start.is_date() != e.is_date() {
        return Reversed::Kept(end);
    }
    if c.prop("RRULE").is_some() || c.prop("RDATE").is_some() {
        return Reversed::Kept(EndSpec::Default);
    }
    Reversed::Swapped(e.clone(), EndSpec::At(start.clone()))
}

/// A VEVENT read into plain values, before grouping by UID.
pub(super) struct Event {
    pub(super) uid: Option<String>,
    pub(super) recurrence_id: Option<(Time, bool)>,
    pub(super) sequence: i64,
    pub(super) series: Series,
}

pub(super) fn text(c: &Component<'_>, name: &str) -> Option<String> {
    c.prop(name).map(|p| unescape_text(&p.value))
}

pub(super) fn read_event(
    c: &Component<'_>,
    zones: &mut Zones<'_>,
    skipped: &mut Vec<Skipped>,
) -> Option<Event> {
    let uid = text(c, "UID").map(|u| u.trim().to_string());
    let skip = |skipped: &mut Vec<Skipped>, reason: String| {
        skipped.push(Skipped {
            uid: uid.clone(),
            reason,
        });
    };
    let Some(dtstart) = c.prop("DTSTART") else {
        skip(skipped, "no DTSTART".into());
        return None;
    };
    let Some(start) = zones.prop_time(dtstart) else {
        skip(skipped, format!("unreadable DTSTART {:?}", dtstart.value));
        return None;
    };
    let end = if let Some(p) = c.prop("DTEND") {
        zones.prop_time(p).map(EndSpec::At).unwrap_or_default()
    } else if let Some(p) = c.prop("DURATION") {
        match parse_duration(&p.value) {
            Some(l) => EndSpec::Duration(l),
            None => {
                skip(skipped, format!("unreadable DURATION {:?}", p.value));
                EndSpec::Default
            }
        }
    } else {
        EndSpec::Default
    };
    let mut rules = Vec::new();
    let start = promote_date_start(start, &end);
    let end = fix_reversed_end(&start, end, c);
    let (start, end) = match end {
        Reversed::Swapped(start, end) => (start, end),
        Reversed::Kept(end) => (start, end),
    };
    for p in c.props_named("RRULE") {
        match Rule::parse(&p.value) {
            Ok(r) => rules.push(r),
            Err(e) => skip(skipped, e.to_string()),
        }
    }
    let rdates = read_rdates(c, zones);
    let exdates = c
        .props_named("EXDATE")
        .flat_map(|p| {
            split_list(&p.value)
                .filter_map(|v| parse_time(v, p.param("TZID"), is_date(p)))
                .collect::<Vec<_>>()
        })
        .filter_map(|raw| zones.time(raw))
        .collect();
    let recurrence_id = c.prop("RECURRENCE-ID").and_then(|p| {
        let future = p
            .param("RANGE")
            .is_some_and(|r| r.eq_ignore_ascii_case("THISANDFUTURE"));
        zones.prop_time(p).map(|t| (t, future))
    });
    let sequence = c
        .prop("SEQUENCE")
        .and_then(|p| p.value.trim().parse().ok())
        .unwrap_or(0);
    Some(Event {
        uid: uid.clone(),
        recurrence_id,
        sequence,
        series: Series {
            uid: uid.unwrap_or_default(),
            summary: text(c, "SUMMARY").unwrap_or_default(),
            status: c.prop("STATUS").and_then(|p| Status::parse(&p.value)),
            start,
            end,
            rules,
            rdates,
            exdates,
            cancelled: Vec::new(),
            overrides: Vec::new(),
        },
    })
}

fn read_rdates(c: &Component<'_>, zones: &mut Zones<'_>) -> Vec<RDate> {
    let mut out = Vec::new();
    for p in c.props_named("RDATE") {
        let tzid = p.param("TZID");
        let period = p
            .param("VALUE")
            .is_some_and(|v| v.eq_ignore_ascii_case("PERIOD"));
        for item in split_list(&p.value) {
            if period || item.contains('/') {
                let Some((s, e)) = parse_period(item, tzid) else {
                    continue;
                };
                let Some(start) = zones.time(s) else { continue };
                let end = match e {
                    PeriodEnd::End(e) => zones.time(e),
                    PeriodEnd::Duration(l) => series_add_length(&start, &l),
                };
                out.push(RDate { start, end });
            } else if let Some(start) =
                parse_time(item, tzid, is_date(p)).and_then(|r| zones.time(r))
            {
                out.push(RDate { start, end: None });
            }
        }
    }
    out
}

fn to_override(e: Event, rid: Time, future: bool) -> Override {
    Override {
        recurrence_id: rid,
        this_and_future: future,
        start: e.series.start,
        end: e.series.end,
        summary: e.series.summary,
        status: e.series.status,
    }
}

/// The events of one VCALENDAR being read: its zones and the grouping of
/// masters and overrides by UID.
struct CalendarState<'a> {
    zones: Zones<'a>,
    masters: Vec<(i64, Series)>,
    master_by_uid: HashMap<String, usize>,
    overrides: Vec<(Event, Time, bool)>,
    orphans: Vec<Series>,
}

impl<'a> CalendarState<'a> {
    fn new(zones: Zones<'a>) -> Self {
        CalendarState {
            zones,
            masters: Vec::new(),
            master_by_uid: HashMap::new(),
            overrides: Vec::new(),
            orphans: Vec::new(),
        }
    }

    fn add(&mut self, c: &Component<'_>, skipped: &mut Vec<Skipped>) {
        let Some(ev) = read_event(c, &mut self.zones, skipped) else {
            return;
        };
        match (ev.recurrence_id.clone(), ev.uid.clone()) {
            (Some((rid, future)), Some(_)) => self.overrides.push((ev, rid, future)),
            (Some(_), None) => {
                let mut single = ev.series;
                single.rules.clear();
                single.rdates.clear();
                self.orphans.push(single);
            }
            (None, Some(uid)) => match self.master_by_uid.get(&uid) {
                // The same event exported twice: the higher SEQUENCE is the
                // newer version (RFC 5545 §3.8.7.4); on a tie the later wins.
                Some(&i) => {
                    if let Some(slot) = self.masters.get_mut(i) {
                        if ev.sequence >= slot.0 {
                            *slot = (ev.sequence, ev.series);
                        }
                    }
                }
                None => {
                    self.master_by_uid.insert(uid, self.masters.len());
                    self.masters.push((ev.sequence, ev.series));
                }
            },
            (None, None) => self.masters.push((ev.sequence, ev.series)),
        }
    }

    fn finish(mut self, out: &mut Calendar) {
        // When an instance was exported twice, the higher SEQUENCE wins;
        // equal ones keep file order, so the later copy wins.
        self.overrides.sort_by_key(|(e, _, _)| e.sequence);
        for (ev, rid, future) in self.overrides {
            let uid = ev.uid.clone().unwrap_or_default();
            match self
                .master_by_uid
                .get(&uid)
                .and_then(|&i| self.masters.get_mut(i))
            {
                Some((_, master)) => {
                    master.overrides.retain(|o| o.recurrence_id != rid);
                    master.overrides.push(to_override(ev, rid, future));
                }
                // Without its master, an override is the one instance it
                // describes; its own RRULE/RDATE belong to a series we lack.
                None => {
                    let mut single = ev.series;
                    single.rules.clear();
                    single.rdates.clear();
                    single.exdates.clear();
                    self.orphans
                        .retain(|o| !(o.uid == single.uid && o.start == single.start));
                    self.orphans.push(single);
                }
            }
        }
        out.series.extend(self.masters.into_iter().map(|(_, s)| s));
        out.series.extend(self.orphans);
    }
}

/// Reads `text` in two passes: first the zones (VTIMEZONEs may follow the
/// events that use them), then the events one at a time.
pub(super) fn read_text(text: &str) -> Result<Calendar, IcalError> {
    let mut skipped = Vec::new();
    let (calendars, bare) = read_with(
        text,
        false,
        |zones, _| CalendarState::new(zones),
        |state, c| state.add(c, &mut skipped),
    )?;
    let mut out = Calendar {
        series: Vec::new(),
        skipped,
    };
    for state in calendars {
        state.finish(&mut out);
    }
    bare.finish(&mut out);
    Ok(out)
}

/// The two passes every reader shares. `new_state` makes the state of one
/// VCALENDAR from its zones and its component (`None` for VEVENTs outside
/// any VCALENDAR); `add` gets each VEVENT with its calendar's state.
/// `details` keeps the descriptive properties too (see
/// [`super::component::parse_pass_detailed`]). Returns the states of the
/// VCALENDARs in file order and that of the bare events.
pub(super) fn read_with<'a, S>(
    text: &'a str,
    details: bool,
    mut new_state: impl FnMut(Zones<'a>, Option<&Component<'a>>) -> S,
    mut add: impl FnMut(&mut S, &Component<'a>),
) -> Result<(Vec<S>, S), IcalError> {
    let pass = if details {
        parse_pass_detailed
    } else {
        parse_pass
    };
    let roots = pass(text, Pass::Zones, None)?;
    let mut calendars: Vec<S> = Vec::new();
    let mut bare_zones = Vec::new();
    for mut root in roots {
        match root.name {
            "VCALENDAR" => {
                let children = std::mem::take(&mut root.children);
                let zones = children
                    .into_iter()
                    .filter(|c| c.name == "VTIMEZONE")
                    .collect();
                let x_wr = root.prop("X-WR-TIMEZONE").map(|p| p.value.as_ref());
                let zones = Zones::new(zones, x_wr);
                calendars.push(new_state(zones, Some(&root)));
            }
            "VTIMEZONE" => bare_zones.push(root),
            _ => {}
        }
    }
    let mut bare = new_state(Zones::new(bare_zones, None), None);
    let mut sink = |index: Option<usize>, c: Component<'a>| {
        let state = match index.and_then(|i| calendars.get_mut(i)) {
            Some(state) => state,
            None => &mut bare,
        };
        add(state, &c);
    };
    pass(text, Pass::Events, Some(&mut sink))?;
    Ok((calendars, bare))
}
