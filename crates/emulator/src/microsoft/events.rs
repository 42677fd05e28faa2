//! Outlook events: reading Graph event JSON into a stored [`MsEvent`],
//! expanding series into the instances `calendarView` shows (singleInstance,
//! occurrence, exception; never the seriesMaster), and rendering an instance
//! as Graph JSON in the zone a `Prefer: outlook.timezone` asked for.
//!
//! Recurrence patterns are translated to RRULE text and expanded by the
//! crate's `recur.rs` in the event's own zone, so DST keeps the wall time.
//! Occurrence ids are opaque to clients but decodable here (master id +
//! original start), which lets the control API edit or delete one
//! occurrence; an exception keeps the id of the occurrence it replaces.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Map, Value};

use super::errors::GraphError;
use super::state::{EventKind, MsAccount, MsCalendar, MsEvent};
use super::tz;
use crate::recur::{self, Start};
use crate::util;

/// Most occurrences one series expands to in one listing.
const MAX_OCCURRENCES: usize = 20_000;

/// One entry of a calendar view: what a client stores.
#[derive(Debug, Clone)]
pub struct Instance {
    pub id: String,
    /// `singleInstance`, `occurrence` or `exception`.
    pub kind: &'static str,
    pub series_master_id: Option<String>,
    pub original_start: Option<Timestamp>,
    pub start: Timestamp,
    pub end: Timestamp,
    /// All-day: the dates (midnights) as stored; timed: unused for output.
    pub local_start: DateTime,
    pub local_end: DateTime,
    /// The stored event it comes from (the master, for occurrences).
    pub ev: MsEvent,
}

impl Instance {
    /// Changes whenever anything a client sees of this instance changes.
    pub fn version(&self) -> String {
        format!("{}|{}|{}", self.ev.change_key, self.start, self.end)
    }
}

pub fn occurrence_id(master_id: &str, original_start: Timestamp) -> String {
    let raw = format!("{master_id}\u{1}{}", original_start.as_second());
    format!("AAMkAGOc{}", util::b64url(raw.as_bytes()))
}

pub fn parse_occurrence_id(id: &str) -> Option<(String, Timestamp)> {
    use base64::Engine as _;
    let rest = id.strip_prefix("AAMkAGOc")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(rest)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (master, secs) = text.split_once('\u{1}')?;
    Some((
        master.to_owned(),
        Timestamp::from_second(secs.parse().ok()?).ok()?,
    ))
}

fn zone_of(name: &str) -> TimeZone {
    tz::resolve(name).unwrap_or(TimeZone::UTC)
}

fn instant(dt: DateTime, zone: &str) -> Timestamp {
    dt.to_zoned(zone_of(zone))
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

impl MsEvent {
    pub fn start_instant(&self) -> Timestamp {
        instant(self.start, &self.start_tz)
    }
    pub fn end_instant(&self) -> Timestamp {
        instant(self.end, &self.end_tz)
    }
}

fn overlaps(start: Timestamp, end: Timestamp, ws: Timestamp, we: Timestamp) -> bool {
    if start == end {
        return start >= ws && start < we;
    }
    start < we && end > ws
}

/// Every instance of the calendar overlapping `[ws, we)`, ordered by start.
pub fn instances(cal: &MsCalendar, ws: Timestamp, we: Timestamp) -> Vec<Instance> {
    let mut out = Vec::new();
    for ev in cal.events.values() {
        match ev.kind {
            EventKind::SingleInstance | EventKind::Exception => {
                let (s, e) = (ev.start_instant(), ev.end_instant());
                if overlaps(s, e, ws, we) {
                    out.push(Instance {
                        id: ev.id.clone(),
                        kind: if ev.kind == EventKind::Exception {
                            "exception"
                        } else {
                            "singleInstance"
                        },
                        series_master_id: ev.series_master_id.clone(),
                        original_start: ev.original_start,
                        start: s,
                        end: e,
                        local_start: ev.start,
                        local_end: ev.end,
                        ev: ev.clone(),
                    });
                }
            }
            EventKind::SeriesMaster => expand_master(cal, ev, ws, we, &mut out),
        }
    }
    out.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
    out
}

/// Occurrence starts of a master (all of them up to `stop`), as instants.
pub fn occurrence_starts(ev: &MsEvent, stop: Timestamp) -> Vec<(Timestamp, DateTime)> {
    let zone = zone_of(&ev.start_tz);
    let dtstart = if ev.is_all_day {
        Start::Date(ev.start.date())
    } else {
        match ev.start.to_zoned(zone.clone()) {
            Ok(z) => Start::Zoned(z),
            Err(_) => return Vec::new(),
        }
    };
    recur::expand(&dtstart, &ev.rrule, stop, MAX_OCCURRENCES)
        .into_iter()
        .map(|s| match s {
            Start::Date(d) => {
                let local = d.to_datetime(Time::midnight());
                (instant(local, &ev.start_tz), local)
            }
            Start::Zoned(z) => (z.timestamp(), z.datetime()),
        })
        .collect()
}

fn expand_master(
    cal: &MsCalendar,
    master: &MsEvent,
    ws: Timestamp,
    we: Timestamp,
    out: &mut Vec<Instance>,
) {
    let duration = master
        .end_instant()
        .duration_since(master.start_instant())
        .max(SignedDuration::ZERO);
    let days = master.start.date().until(master.end.date()).ok();
    let replaced: Vec<Timestamp> = cal
        .events
        .values()
        .filter(|e| e.series_master_id.as_deref() == Some(master.id.as_str()))
        .filter_map(|e| e.original_start)
        .collect();
    for (start, local) in occurrence_starts(master, we) {
        if master.deleted_occurrences.contains(&start) || replaced.contains(&start) {
            continue;
        }
        let (end, local_end) = if master.is_all_day {
            let end_date = days
                .and_then(|d| local.date().checked_add(d).ok())
                .unwrap_or(local.date());
            let local_end = end_date.to_datetime(Time::midnight());
            (instant(local_end, &master.end_tz), local_end)
        } else {
            let end = start.checked_add(duration).unwrap_or(start);
            (end, local)
        };
        if !overlaps(start, end, ws, we) {
            continue;
        }
        out.push(Instance {
            id: occurrence_id(&master.id, start),
            kind: "occurrence",
            series_master_id: Some(master.id.clone()),
            original_start: Some(start),
            start,
            end,
            local_start: local,
            local_end,
            ev: master.clone(),
        });
    }
}

/// A `Prefer: outlook.timezone` choice: the name as sent and the zone.
#[derive(Debug, Clone)]
pub struct OutZone {
    pub name: String,
    pub zone: TimeZone,
}

impl OutZone {
    pub fn utc() -> Self {
        Self {
            name: "UTC".into(),
            zone: TimeZone::UTC,
        }
    }
}

fn body_preview(body: &str) -> String {
    body.chars().take(255).collect()
}

/// Graph JSON of a stored event as the control API shows it (masters included).
pub fn render_stored(ev: &MsEvent, account: &MsAccount, base: &str) -> Value {
    let inst = Instance {
        id: ev.id.clone(),
        kind: match ev.kind {
            EventKind::SingleInstance => "singleInstance",
            EventKind::SeriesMaster => "seriesMaster",
            EventKind::Exception => "exception",
        },
        series_master_id: ev.series_master_id.clone(),
        original_start: ev.original_start,
        start: ev.start_instant(),
        end: ev.end_instant(),
        local_start: ev.start,
        local_end: ev.end,
        ev: ev.clone(),
    };
    render(&inst, &OutZone::utc(), account, base)
}

/// An instance as Graph returns it in `calendarView` and delta.
pub fn render(inst: &Instance, out: &OutZone, account: &MsAccount, base: &str) -> Value {
    let ev = &inst.ev;
    let edt = |at: Timestamp, local: DateTime| {
        let dt = if ev.is_all_day {
            local
        } else {
            at.to_zoned(out.zone.clone()).datetime()
        };
        json!({"dateTime": tz::graph_datetime(dt), "timeZone": out.name})
    };
    let ical_uid = match (inst.kind, inst.original_start) {
        ("occurrence" | "exception", Some(os)) => {
            format!("{}{:016X}", ev.ical_uid, os.as_second())
        }
        _ => ev.ical_uid.clone(),
    };
    let mut v = json!({
        "@odata.etag": format!("W/\"{}\"", ev.change_key),
        "id": inst.id,
        "createdDateTime": graph_utc(ev.created),
        "lastModifiedDateTime": graph_utc(ev.modified),
        "changeKey": ev.change_key,
        "categories": ev.categories,
        "transactionId": ev.transaction_id,
        "originalStartTimeZone": ev.start_tz,
        "originalEndTimeZone": ev.end_tz,
        "iCalUId": ical_uid,
        "uid": ev.ical_uid,
        "reminderMinutesBeforeStart": 15,
        "isReminderOn": !ev.is_all_day,
        "hasAttachments": false,
        "subject": ev.subject,
        "bodyPreview": body_preview(&ev.body),
        "importance": "normal",
        "sensitivity": ev.sensitivity,
        "isAllDay": ev.is_all_day,
        "isCancelled": ev.is_cancelled,
        "isOrganizer": true,
        "responseRequested": true,
        "seriesMasterId": inst.series_master_id,
        "showAs": ev.show_as,
        "type": inst.kind,
    });
    let more = json!({
        "webLink": format!("{base}/owa/?itemid={}&exvsurl=1&path=/calendar/item", util::pct_encode(&inst.id)),
        "onlineMeetingUrl": Value::Null,
        "isOnlineMeeting": false,
        "onlineMeetingProvider": "unknown",
        "allowNewTimeProposals": true,
        "isDraft": false,
        "hideAttendees": false,
        "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
        "body": {"contentType": "text", "content": ev.body},
        "start": edt(inst.start, inst.local_start),
        "end": edt(inst.end, inst.local_end),
        "location": location_json(&ev.location),
        "locations": if ev.location.is_empty() { json!([]) } else { json!([location_json(&ev.location)]) },
        "recurrence": if inst.kind == "seriesMaster" { ev.recurrence.clone().unwrap_or(Value::Null) } else { Value::Null },
        "attendees": [],
        "organizer": {"emailAddress": {"name": account.display_name, "address": account.address()}},
        "onlineMeeting": Value::Null,
    });
    if let (Some(m), Value::Object(extra)) = (v.as_object_mut(), more) {
        m.extend(extra);
    }
    if let Some(os) = inst.original_start {
        v["originalStart"] = json!(os.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    }
    v
}

fn location_json(name: &str) -> Value {
    if name.is_empty() {
        json!({"displayName": "", "locationType": "default", "uniqueIdType": "unknown", "address": {}, "coordinates": {}})
    } else {
        json!({"displayName": name, "locationType": "default", "uniqueId": name, "uniqueIdType": "private", "address": {}, "coordinates": {}})
    }
}

/// `2026-11-26T08:48:02.1234567Z`, as Graph writes created/lastModified.
pub fn graph_utc(ts: Timestamp) -> String {
    format!(
        "{}.{:07}Z",
        ts.strftime("%Y-%m-%dT%H:%M:%S"),
        ts.subsec_nanosecond() / 100
    )
}

// ------------------------------------------------------------ input

fn bad(msg: impl Into<String>) -> GraphError {
    GraphError::bad_request(msg)
}

fn edt_in(v: Option<&Value>, which: &str) -> Result<(DateTime, String), GraphError> {
    let v = v.ok_or_else(|| bad(format!("'{which}' is required")))?;
    let dt = v
        .get("dateTime")
        .and_then(Value::as_str)
        .and_then(tz::parse_graph_datetime)
        .ok_or_else(|| bad(format!("'{which}.dateTime' is missing or not a date-time")))?;
    let zone = v
        .get("timeZone")
        .and_then(Value::as_str)
        .unwrap_or("UTC")
        .to_owned();
    if tz::resolve(&zone).is_none() {
        return Err(GraphError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "TimeZoneNotSupportedException",
            format!("A valid TimeZone value must be specified. The following TimeZone value is not supported: '{zone}'."),
        ));
    }
    Ok((dt, zone))
}

/// A new stored event from Graph JSON (control API). `id`, timestamps,
/// changeKey and seq are set by the caller.
pub fn new_event(body: &Map<String, Value>) -> Result<MsEvent, GraphError> {
    let (start, start_tz) = edt_in(body.get("start"), "start")?;
    let (end, end_tz) = edt_in(body.get("end"), "end")?;
    let mut ev = MsEvent {
        id: String::new(),
        ical_uid: format!(
            "040000008200E00074C5B7101A82E008{}",
            util::random_bytes(16)
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<String>()
        ),
        kind: EventKind::SingleInstance,
        series_master_id: None,
        original_start: None,
        subject: String::new(),
        body: String::new(),
        location: String::new(),
        start,
        end,
        start_tz,
        end_tz,
        is_all_day: false,
        is_cancelled: false,
        show_as: "busy".into(),
        sensitivity: "normal".into(),
        categories: Vec::new(),
        recurrence: None,
        rrule: Vec::new(),
        deleted_occurrences: Default::default(),
        created: Timestamp::UNIX_EPOCH,
        modified: Timestamp::UNIX_EPOCH,
        change_key: String::new(),
        transaction_id: None,
        seq: 0,
    };
    apply_fields(&mut ev, body)?;
    Ok(ev)
}

/// Merges the Graph fields present in `body` into `ev` and re-validates.
pub fn apply_fields(ev: &mut MsEvent, body: &Map<String, Value>) -> Result<(), GraphError> {
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    if let Some(s) = text("subject") {
        ev.subject = s;
    }
    if let Some(b) = body.get("body") {
        ev.body = b
            .get("content")
            .and_then(Value::as_str)
            .or_else(|| b.as_str())
            .unwrap_or("")
            .to_owned();
    } else if let Some(p) = text("bodyPreview") {
        ev.body = p;
    }
    if let Some(l) = body.get("location") {
        ev.location = l
            .get("displayName")
            .and_then(Value::as_str)
            .or_else(|| l.as_str())
            .unwrap_or("")
            .to_owned();
    }
    if body.contains_key("start") {
        (ev.start, ev.start_tz) = edt_in(body.get("start"), "start")?;
    }
    if body.contains_key("end") {
        (ev.end, ev.end_tz) = edt_in(body.get("end"), "end")?;
    }
    if let Some(b) = body.get("isAllDay").and_then(Value::as_bool) {
        ev.is_all_day = b;
    }
    if let Some(b) = body.get("isCancelled").and_then(Value::as_bool) {
        ev.is_cancelled = b;
    }
    if let Some(s) = text("showAs") {
        const SHOW_AS: &[&str] = &[
            "free",
            "tentative",
            "busy",
            "oof",
            "workingElsewhere",
            "unknown",
        ];
        if !SHOW_AS.contains(&s.as_str()) {
            return Err(bad(format!("Invalid showAs value: '{s}'")));
        }
        ev.show_as = s;
    }
    if let Some(s) = text("sensitivity") {
        ev.sensitivity = s;
    }
    if let Some(c) = body.get("categories").and_then(Value::as_array) {
        ev.categories = c
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect();
    }
    if let Some(r) = body.get("recurrence") {
        if r.is_null() {
            ev.recurrence = None;
            ev.rrule.clear();
        } else {
            ev.rrule = rrule_from(r)?;
            ev.recurrence = Some(r.clone());
        }
    }
    if ev.is_all_day {
        if ev.start.time() != Time::midnight() || ev.end.time() != Time::midnight() {
            return Err(bad(
                "Your request can't be completed. If isAllDay is true, the start and end must be at midnight.",
            ));
        }
        if ev.end.date() <= ev.start.date() {
            return Err(bad("An all-day event must last at least one day."));
        }
    }
    if ev.end_instant() < ev.start_instant() {
        return Err(bad(
            "Your request can't be completed. The end time must be after the start time.",
        ));
    }
    Ok(())
}

fn day_code(name: &str) -> Result<&'static str, GraphError> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "monday" => "MO",
        "tuesday" => "TU",
        "wednesday" => "WE",
        "thursday" => "TH",
        "friday" => "FR",
        "saturday" => "SA",
        "sunday" => "SU",
        other => return Err(bad(format!("Invalid day of week: '{other}'"))),
    })
}

/// Graph `{pattern, range}` → RRULE lines (spec A4's pattern and range types).
pub fn rrule_from(r: &Value) -> Result<Vec<String>, GraphError> {
    let p = r
        .get("pattern")
        .ok_or_else(|| bad("recurrence.pattern is required"))?;
    let range = r
        .get("range")
        .ok_or_else(|| bad("recurrence.range is required"))?;
    let interval = p
        .get("interval")
        .and_then(Value::as_u64)
        .unwrap_or(1)
        .max(1);
    let days: Vec<&str> = p
        .get("daysOfWeek")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let codes = days
        .iter()
        .map(|d| day_code(d))
        .collect::<Result<Vec<_>, _>>()?;
    let index = match p.get("index").and_then(Value::as_str).unwrap_or("first") {
        "first" => 1,
        "second" => 2,
        "third" => 3,
        "fourth" => 4,
        "last" => -1,
        other => return Err(bad(format!("Invalid week index: '{other}'"))),
    };
    let num = |k: &str| p.get(k).and_then(Value::as_u64).unwrap_or(0);
    let ordinal_days = || {
        codes
            .iter()
            .map(|c| format!("{index}{c}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let ty = p.get("type").and_then(Value::as_str).unwrap_or("");
    let mut rule = match ty {
        "daily" => format!("FREQ=DAILY;INTERVAL={interval}"),
        "weekly" if !codes.is_empty() => {
            format!("FREQ=WEEKLY;INTERVAL={interval};BYDAY={}", codes.join(","))
        }
        "absoluteMonthly" if num("dayOfMonth") > 0 => format!(
            "FREQ=MONTHLY;INTERVAL={interval};BYMONTHDAY={}",
            num("dayOfMonth")
        ),
        "relativeMonthly" if !codes.is_empty() => {
            format!("FREQ=MONTHLY;INTERVAL={interval};BYDAY={}", ordinal_days())
        }
        "absoluteYearly" if num("month") > 0 && num("dayOfMonth") > 0 => format!(
            "FREQ=YEARLY;INTERVAL={interval};BYMONTH={};BYMONTHDAY={}",
            num("month"),
            num("dayOfMonth")
        ),
        "relativeYearly" if num("month") > 0 && !codes.is_empty() => format!(
            "FREQ=YEARLY;INTERVAL={interval};BYMONTH={};BYDAY={}",
            num("month"),
            ordinal_days()
        ),
        _ => {
            return Err(bad(format!(
                "Invalid or incomplete recurrence pattern '{ty}'"
            )))
        }
    };
    match range.get("type").and_then(Value::as_str).unwrap_or("noEnd") {
        "noEnd" => {}
        "endDate" => {
            let d: Date = range
                .get("endDate")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("recurrence.range.endDate must be a date"))?;
            rule.push_str(&format!(";UNTIL={}", d.strftime("%Y%m%d")));
        }
        "numbered" => {
            let n = range
                .get("numberOfOccurrences")
                .and_then(Value::as_u64)
                .filter(|n| *n > 0)
                .ok_or_else(|| bad("recurrence.range.numberOfOccurrences must be positive"))?;
            rule.push_str(&format!(";COUNT={n}"));
        }
        other => return Err(bad(format!("Invalid recurrence range type '{other}'"))),
    }
    Ok(vec![format!("RRULE:{rule}")])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn occurrence_ids_round_trip() {
        let t = Timestamp::from_second(1_800_000_000).unwrap();
        let id = occurrence_id("AAMkAGabc=", t);
        assert_eq!(parse_occurrence_id(&id), Some(("AAMkAGabc=".into(), t)));
        assert_eq!(parse_occurrence_id("AAMkAGabc="), None);
    }

    #[test]
    fn patterns_become_rrules() {
        let r = json!({"pattern": {"type": "weekly", "interval": 2, "daysOfWeek": ["monday", "friday"]},
                       "range": {"type": "numbered", "numberOfOccurrences": 5}});
        assert_eq!(
            rrule_from(&r).unwrap(),
            vec!["RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR;COUNT=5"]
        );
        let r = json!({"pattern": {"type": "relativeMonthly", "daysOfWeek": ["thursday"], "index": "last"},
                       "range": {"type": "endDate", "endDate": "2027-06-30"}});
        assert_eq!(
            rrule_from(&r).unwrap(),
            vec!["RRULE:FREQ=MONTHLY;INTERVAL=1;BYDAY=-1TH;UNTIL=20270630"]
        );
        assert!(rrule_from(&json!({"pattern": {"type": "weekly"}, "range": {}})).is_err());
    }
}
