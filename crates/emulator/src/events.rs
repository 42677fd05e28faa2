//! The Event resource as Google shapes it (spec §2.3, §2.4): validating and
//! normalising writes, the minimal shapes of cancelled items, instance ids and
//! the rendering of recurring instances.
//!
//! Pure functions over JSON and the state's data types. No HTTP, no locking, no
//! decision about which events a listing returns (that is `calendar.rs`).

use jiff::civil::Date;
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp, ToSpan, Zoned};
use serde_json::{json, Map, Value};

use crate::errors::ApiError;
use crate::recur::{self, Start};
use crate::state::{etag_for, StoredEvent};
use crate::util;

/// Fields a client may not set on insert/update/patch (Google ignores or
/// rejects them; we ignore them).
const READ_ONLY: &[&str] = &[
    "kind",
    "etag",
    "htmlLink",
    "created",
    "updated",
    "creator",
    "organizer",
    "recurringEventId",
    "originalStartTime",
];

/// Who and where a write happens.
pub struct WriteCtx<'a> {
    pub base_url: &'a str,
    pub calendar_id: &'a str,
    pub calendar_name: &'a str,
    pub calendar_primary: bool,
    pub account_email: &'a str,
    pub account_name: &'a str,
    pub now: Timestamp,
    pub seq: u64,
}

/// Parses an `EventDateTime` object (`date` xor `dateTime` [+ `timeZone`]) and
/// returns its start and the normalised JSON (`dateTime` with the offset of
/// its zone).
pub fn parse_edt(v: Option<&Value>, which: &str) -> Result<(Start, Value), ApiError> {
    let missing = || ApiError::bad_request("required", format!("Missing {which} time."));
    let obj = v.and_then(Value::as_object).ok_or_else(missing)?;
    let invalid = || ApiError::bad_request("invalid", format!("Invalid {which} time."));
    if let Some(date) = obj.get("date").and_then(Value::as_str) {
        if obj.get("dateTime").is_some_and(|d| !d.is_null()) {
            return Err(invalid());
        }
        let d: Date = date.parse().map_err(|_| invalid())?;
        return Ok((Start::Date(d), json!({ "date": d.to_string() })));
    }
    let text = obj
        .get("dateTime")
        .and_then(Value::as_str)
        .ok_or_else(missing)?;
    let zone_name = obj.get("timeZone").and_then(Value::as_str);
    let zone = match zone_name {
        Some(name) => Some(TimeZone::get(name).map_err(|_| {
            ApiError::bad_request(
                "invalid",
                format!("Invalid time zone definition for {which} time."),
            )
        })?),
        None => None,
    };
    let zoned = match text.parse::<Timestamp>() {
        Ok(ts) => match zone.clone() {
            Some(tz) => ts.to_zoned(tz),
            None => ts.to_zoned(TimeZone::fixed(offset_of(text).ok_or_else(invalid)?)),
        },
        Err(_) => {
            let tz = zone.clone().ok_or_else(|| {
                ApiError::bad_request(
                    "required",
                    format!("Missing time zone definition for {which} time."),
                )
            })?;
            let civil: jiff::civil::DateTime = text.parse().map_err(|_| invalid())?;
            civil.to_zoned(tz).map_err(|_| invalid())?
        }
    };
    let mut out = json!({ "dateTime": format_zoned(&zoned) });
    if let Some(name) = zone_name {
        out["timeZone"] = json!(name);
    }
    Ok((Start::Zoned(zoned), out))
}

/// The UTC offset written at the end of an RFC 3339 text.
fn offset_of(text: &str) -> Option<Offset> {
    if text.ends_with('Z') || text.ends_with('z') {
        return Some(Offset::UTC);
    }
    let tail = text.get(text.len().checked_sub(6)?..)?;
    let sign = match tail.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let h: i32 = tail.get(1..3)?.parse().ok()?;
    let m: i32 = tail.get(4..6)?.parse().ok()?;
    Offset::from_seconds(sign * (h * 3600 + m * 60)).ok()
}

pub fn format_zoned(z: &Zoned) -> String {
    if z.offset() == Offset::UTC && z.time_zone().iana_name().is_none_or(|n| n == "UTC") {
        z.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

/// Start of a stored event (None if it has no valid start, e.g. a bare stub).
pub fn start_of(body: &Map<String, Value>) -> Option<Start> {
    parse_edt(body.get("start"), "start").ok().map(|(s, _)| s)
}

pub fn end_of(body: &Map<String, Value>) -> Option<Start> {
    parse_edt(body.get("end"), "end").ok().map(|(s, _)| s)
}

/// Instant range of an event (all-day values at midnight in `tz`).
pub fn span_of(body: &Map<String, Value>, tz: &TimeZone) -> Option<(Timestamp, Timestamp)> {
    let start = start_of(body)?.instant(tz)?;
    let end = end_of(body).and_then(|e| e.instant(tz)).unwrap_or(start);
    Some((start, end))
}

pub fn recurrence_of(body: &Map<String, Value>) -> Vec<String> {
    body.get("recurrence")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Validates and completes an event written by a client or the control API.
/// `existing` carries the fields a write must keep (id, created, iCalUID,
/// series identity); `trusted` (control API) keeps organizer/creator/iCalUID.
pub fn normalise(
    ctx: &WriteCtx<'_>,
    id: &str,
    mut body: Map<String, Value>,
    existing: Option<&Map<String, Value>>,
    trusted: bool,
) -> Result<Map<String, Value>, ApiError> {
    if !trusted {
        for key in READ_ONLY {
            body.remove(*key);
        }
    }
    body.retain(|_, v| !v.is_null());
    if let Some(old) = existing {
        for key in [
            "created",
            "iCalUID",
            "recurringEventId",
            "originalStartTime",
            "creator",
            "organizer",
        ] {
            if let Some(v) = old.get(key) {
                body.entry(key.to_owned()).or_insert_with(|| v.clone());
            }
        }
    }
    let status = body
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("confirmed")
        .to_owned();
    if !matches!(status.as_str(), "confirmed" | "tentative" | "cancelled") {
        return Err(ApiError::bad_request(
            "invalid",
            "Invalid value for: status",
        ));
    }
    body.insert("status".into(), status.clone().into());

    // Cancelled stubs (e.g. a cancelled instance) need no times.
    let needs_times = status != "cancelled" || body.contains_key("start");
    if needs_times {
        let (start, start_json) = parse_edt(body.get("start"), "start")?;
        let (end, end_json) = parse_edt(body.get("end"), "end")?;
        match (&start, &end) {
            (Start::Date(s), Start::Date(e)) if e < s => return Err(ApiError::time_range_empty()),
            (Start::Zoned(s), Start::Zoned(e)) if e.timestamp() < s.timestamp() => {
                return Err(ApiError::time_range_empty())
            }
            (Start::Date(_), Start::Zoned(_)) | (Start::Zoned(_), Start::Date(_)) => {
                return Err(ApiError::bad_request(
                    "invalid",
                    "Start and end times must either both be date or both be dateTime.",
                ))
            }
            _ => {}
        }
        let recurring = body
            .get("recurrence")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        if recurring {
            if matches!(start, Start::Zoned(_)) && start_json.get("timeZone").is_none() {
                return Err(ApiError::bad_request(
                    "required",
                    "Missing time zone definition for start time.",
                ));
            }
            let lines = body
                .get("recurrence")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if lines
                .iter()
                .any(|l| l.as_str().is_none_or(|s| !s.contains(':')))
            {
                return Err(ApiError::bad_request("invalid", "Invalid recurrence rule."));
            }
        }
        body.insert("start".into(), start_json);
        body.insert("end".into(), end_json);
    }

    let now = util::rfc3339_millis(ctx.now);
    body.insert("kind".into(), "calendar#event".into());
    body.insert("etag".into(), etag_for(ctx.seq).into());
    body.insert("id".into(), id.into());
    body.insert(
        "htmlLink".into(),
        format!(
            "{}/calendar/event?eid={}",
            ctx.base_url,
            util::b64url(format!("{id} {}", ctx.calendar_id).as_bytes())
        )
        .into(),
    );
    body.entry("created").or_insert_with(|| now.clone().into());
    body.insert("updated".into(), now.into());
    let series_uid = id.split('_').next().unwrap_or(id);
    body.entry("iCalUID")
        .or_insert_with(|| format!("{series_uid}@google.com").into());
    let sequence = existing
        .and_then(|o| o.get("sequence"))
        .and_then(Value::as_i64)
        .unwrap_or(-1)
        + 1;
    if !trusted || !body.contains_key("sequence") {
        body.insert("sequence".into(), sequence.into());
    }
    body.entry("creator")
        .or_insert_with(|| json!({ "email": ctx.account_email, "self": true }));
    body.entry("organizer").or_insert_with(|| {
        if ctx.calendar_primary {
            json!({ "email": ctx.account_email, "displayName": ctx.account_name, "self": true })
        } else {
            json!({ "email": ctx.calendar_id, "displayName": ctx.calendar_name, "self": true })
        }
    });
    body.entry("reminders")
        .or_insert_with(|| json!({ "useDefault": true }));
    body.entry("eventType").or_insert_with(|| "default".into());
    Ok(body)
}

/// The shape of an item in a listing. Cancelled items are reduced to what
/// Google guarantees (spec §2.3): a plain delete keeps only `id`; a cancelled
/// instance keeps `recurringEventId` and `originalStartTime`.
pub fn list_item(ev: &StoredEvent) -> Value {
    if !ev.is_cancelled() {
        return Value::Object(ev.body.clone());
    }
    let mut m = Map::new();
    for key in [
        "kind",
        "etag",
        "id",
        "status",
        "recurringEventId",
        "originalStartTime",
    ] {
        if let Some(v) = ev.body.get(key) {
            m.insert(key.into(), v.clone());
        }
    }
    Value::Object(m)
}

/// `<masterId>_<YYYYMMDD>T<HHMMSS>Z` for timed, `<masterId>_<YYYYMMDD>` for all-day.
pub fn instance_id(master_id: &str, start: &Start) -> String {
    match start {
        Start::Date(d) => format!("{master_id}_{}", d.strftime("%Y%m%d")),
        Start::Zoned(z) => format!("{master_id}_{}", z.timestamp().strftime("%Y%m%dT%H%M%SZ")),
    }
}

/// Splits an instance id into master id and original start (in the master's zone).
pub fn parse_instance_id(id: &str, master: &Map<String, Value>) -> Option<Start> {
    let (_, stamp) = id.rsplit_once('_')?;
    match start_of(master)? {
        Start::Date(_) => {
            if stamp.len() != 8 {
                return None;
            }
            let d = Date::new(
                stamp[0..4].parse().ok()?,
                stamp[4..6].parse().ok()?,
                stamp[6..8].parse().ok()?,
            )
            .ok()?;
            Some(Start::Date(d))
        }
        Start::Zoned(z) => {
            let iso = format!(
                "{}-{}-{}T{}:{}:{}Z",
                stamp.get(0..4)?,
                stamp.get(4..6)?,
                stamp.get(6..8)?,
                stamp.get(9..11)?,
                stamp.get(11..13)?,
                stamp.get(13..15)?
            );
            let ts: Timestamp = iso.parse().ok()?;
            Some(Start::Zoned(ts.to_zoned(z.time_zone().clone())))
        }
    }
}

/// The `originalStartTime`/`start` JSON of an occurrence of `master`.
pub fn edt_json(start: &Start, master: &Map<String, Value>) -> Value {
    match start {
        Start::Date(d) => json!({ "date": d.to_string() }),
        Start::Zoned(z) => {
            let mut v = json!({ "dateTime": format_zoned(z) });
            if let Some(tz) = master.get("start").and_then(|s| s.get("timeZone")) {
                v["timeZone"] = tz.clone();
            }
            v
        }
    }
}

/// Renders one occurrence of a series master as Google does for
/// `singleEvents=true`: instance id, `recurringEventId`, `originalStartTime`,
/// times shifted, no `recurrence`.
pub fn render_instance(
    master: &Map<String, Value>,
    occurrence: &Start,
) -> Option<Map<String, Value>> {
    let master_id = master.get("id").and_then(Value::as_str)?;
    let first = start_of(master)?;
    let first_end = end_of(master)?;
    let mut body = master.clone();
    body.remove("recurrence");
    body.insert("id".into(), instance_id(master_id, occurrence).into());
    body.insert("recurringEventId".into(), master_id.into());
    body.insert("originalStartTime".into(), edt_json(occurrence, master));
    body.insert("start".into(), edt_json(occurrence, master));
    let end = match (occurrence, &first, &first_end) {
        (Start::Date(d), Start::Date(s), Start::Date(e)) => {
            let days = (e.to_zoned(TimeZone::UTC).ok()?.timestamp().as_second()
                - s.to_zoned(TimeZone::UTC).ok()?.timestamp().as_second())
                / 86_400;
            Start::Date(d.checked_add(days.days()).ok()?)
        }
        (Start::Zoned(o), Start::Zoned(s), Start::Zoned(e)) => {
            let dur =
                SignedDuration::from_secs(e.timestamp().as_second() - s.timestamp().as_second());
            Start::Zoned(o.checked_add(dur).ok()?)
        }
        _ => return None,
    };
    let mut end_json = edt_json(&end, master);
    if let (Some(tz), Some(obj)) = (
        master.get("end").and_then(|e| e.get("timeZone")),
        end_json.as_object_mut(),
    ) {
        obj.insert("timeZone".into(), tz.clone());
    }
    body.insert("end".into(), end_json);
    Some(body)
}

/// Occurrence starts of a master up to `stop` (bounded).
pub fn occurrences(master: &Map<String, Value>, stop: Timestamp, limit: usize) -> Vec<Start> {
    match start_of(master) {
        Some(first) => recur::expand(&first, &recurrence_of(master), stop, limit),
        None => Vec::new(),
    }
}

/// Whether `id` names a real occurrence of `master` (for get/patch/delete of
/// an instance that has no exception yet).
pub fn virtual_instance(master: &Map<String, Value>, id: &str) -> Option<Start> {
    let start = parse_instance_id(id, master)?;
    let first = start_of(master)?;
    recur::is_occurrence(&first, &recurrence_of(master), &start).then_some(start)
}

/// Simple text search over the fields Google's `q` looks at.
pub fn matches_q(body: &Map<String, Value>, q: &str) -> bool {
    let q = q.to_lowercase();
    ["summary", "description", "location"]
        .iter()
        .filter_map(|k| body.get(*k).and_then(Value::as_str))
        .any(|s| s.to_lowercase().contains(&q))
}

/// Writes the `dateTime` values of a response item in the response zone, as
/// Google does (`timeZone` request parameter, default the calendar's zone);
/// the `timeZone` fields keep the event's own zones, so offset and zone name
/// may differ. Storage is untouched: this is presentation only.
pub fn in_zone(mut item: Value, tz: &TimeZone) -> Value {
    if let Some(obj) = item.as_object_mut() {
        for key in ["start", "end", "originalStartTime"] {
            if let Some(dt) = obj.get_mut(key).and_then(|v| v.get_mut("dateTime")) {
                if let Some(ts) = dt.as_str().and_then(|s| s.parse::<Timestamp>().ok()) {
                    *dt = Value::String(format_zoned(&ts.to_zoned(tz.clone())));
                }
            }
        }
    }
    item
}
