//! `GET /`: the Dashboard, "Upcoming Events" from every enabled calendar,
//! merged and grouped by day in the user's time zone.

use std::collections::{BTreeMap, HashMap};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use calsync_core::model::{ConnectionStatus, EventOccurrence, EventTime, Provider};
use calsync_store::EventRange;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};

use super::forms::{html_page, shown, take_flash, PageError, WebSession};
use super::html::{bar, escape, swatch, web_link};
use super::layout::{page, Nav};
use crate::state::AppState;

/// How far ahead the Dashboard looks.
pub const DAYS_AHEAD: i64 = 30;
/// At most this many occurrences on the page.
const LIMIT: u32 = 300;

/// How a provider is named next to its events and connections.
pub fn provider_name(provider: Provider) -> &'static str {
    match provider {
        Provider::Google => "Google Calendar",
        Provider::Microsoft => "Outlook",
        Provider::Caldav => "CalDAV",
        Provider::Ics => "ICS feed",
    }
}

/// The user's zone, or UTC when the stored name is unknown to this build.
pub fn zone(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap_or(TimeZone::UTC)
}

/// `GET /`.
pub async fn dashboard(
    State(state): State<AppState>,
    session: WebSession,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let Some(user) = session.0 else {
        return Ok(Redirect::to("/login?next=/").into_response());
    };
    let flash = take_flash(&headers);
    let profile = state.store.user(user.id).await?;
    let tz = zone(&profile.timezone);
    let now = state.clock.now();
    let connections = state.store.list_connections(user.id).await?;
    let range = EventRange {
        start: now,
        end: now + SignedDuration::from_hours(24 * DAYS_AHEAD),
    };
    let events = state.store.events_in_range(user.id, range, LIMIT).await?;
    let calendar_names: HashMap<i64, &str> = connections
        .iter()
        .flat_map(|c| c.calendars.iter())
        .map(|cal| (cal.id.0, cal.name.as_str()))
        .collect();

    let attention: String = connections
        .iter()
        .filter_map(|c| {
            let what = match c.connection.status {
                ConnectionStatus::NeedsReauth => {
                    "needs reconnecting; its events may be out of date. \
                     <a href=\"/settings#connection-{id}\">Reconnect in Settings</a>"
                }
                ConnectionStatus::Held => {
                    "has a sync waiting for you: it would remove many events, and nothing was \
                     removed. <a href=\"/settings#connection-{id}\">Decide in Settings</a>"
                }
                _ => return None,
            };
            Some(format!(
                "<p class=\"notice error\">{} ({}) {}</p>",
                provider_name(c.connection.provider),
                escape(c.connection.account_email.as_deref().unwrap_or("account")),
                what.replace("{id}", &c.connection.id.0.to_string())
            ))
        })
        .collect();
    let body = if events.is_empty() {
        empty_state(&connections)
    } else {
        render_days(&events, &calendar_names, now, &tz)
    };
    let main = format!(
        "<div class=\"page-head\"><h1>Upcoming Events</h1>\
         <p class=\"hint\">Next {DAYS_AHEAD} days · times in <strong id=\"user-timezone\">{}</strong> \
         · <a href=\"/settings#timezone\">change</a></p></div>\
         <div id=\"live\" data-live=\"dashboard\">{attention}{body}</div>",
        escape(&profile.timezone)
    );
    let html = page(
        "Dashboard",
        Some(&user),
        Nav::Dashboard,
        flash.as_ref(),
        &main,
    );
    Ok(shown(html_page(StatusCode::OK, html), flash.as_ref()))
}

fn empty_state(connections: &[calsync_store::ConnectionWithCalendars]) -> String {
    let any_on = connections
        .iter()
        .any(|c| c.calendars.iter().any(|cal| cal.enabled));
    let busy = connections.iter().any(|c| {
        matches!(
            c.connection.status,
            ConnectionStatus::Pending | ConnectionStatus::Syncing
        )
    });
    let (title, text) = if connections.is_empty() {
        (
            "No calendars connected yet",
            "Connect Google Calendar, Outlook, iCloud, a CalDAV server or an ICS feed, and your upcoming events appear here.",
        )
    } else if busy {
        (
            "Syncing your calendars…",
            "The events appear here as soon as the sync finishes; this page updates by itself.",
        )
    } else if !any_on {
        (
            "All your calendars are switched off",
            "Turn on the calendars you want to see in Settings.",
        )
    } else {
        (
            "Nothing in the next 30 days",
            "Enjoy the quiet, or connect another calendar in Settings.",
        )
    };
    format!(
        "<section class=\"empty card\" id=\"empty-state\"><h2>{title}</h2><p>{text}</p>\
         <p><a class=\"button primary\" href=\"/settings\">Go to Settings</a></p></section>"
    )
}

/// The day an occurrence is listed under: its start day in `tz`, or today for
/// one already under way.
fn list_day(start: EventTime, tz: &TimeZone, today: Date) -> Date {
    let day = match start {
        EventTime::Date(d) => d,
        EventTime::Instant(i) => i.to_zoned(tz.clone()).date(),
    };
    day.max(today)
}

/// "Today", "Tomorrow", else "Friday 4 December" (with the year when it is
/// not this year's).
pub fn day_heading(day: Date, today: Date) -> String {
    if day == today {
        "Today".to_owned()
    } else if Some(day) == today.checked_add(1.day()).ok() {
        "Tomorrow".to_owned()
    } else if day.year() == today.year() {
        day.strftime("%A %-d %B").to_string()
    } else {
        day.strftime("%A %-d %B %Y").to_string()
    }
}

/// "09:30 – 09:45"; a time on another day than `day` carries its date;
/// all-day events read "All day", multi-day ones with their span.
pub fn time_text(start: EventTime, end: EventTime, day: Date, tz: &TimeZone) -> String {
    match (start, end) {
        (EventTime::Date(first), EventTime::Date(end)) => {
            // The end date is exclusive (RFC 5545).
            let last = end.yesterday().unwrap_or(first).max(first);
            if last == first {
                "All day".to_owned()
            } else {
                let days = first.until(last).map_or(0, |s| s.get_days()) + 1;
                format!(
                    "All day · {days} days, until {}",
                    last.strftime("%a %-d %b")
                )
            }
        }
        (EventTime::Instant(s), EventTime::Instant(e)) => {
            let at = |t: Timestamp| {
                let z = t.to_zoned(tz.clone());
                if z.date() == day {
                    z.strftime("%H:%M").to_string()
                } else {
                    z.strftime("%a %-d %b %H:%M").to_string()
                }
            };
            if e <= s {
                at(s)
            } else {
                format!("{} – {}", at(s), at(e))
            }
        }
        // Mixed kinds do not come out of the store; show the start alone.
        (EventTime::Instant(s), _) => s.to_zoned(tz.clone()).strftime("%H:%M").to_string(),
        (EventTime::Date(_), _) => "All day".to_owned(),
    }
}

fn machine_time(t: EventTime) -> String {
    match t {
        EventTime::Date(d) => d.to_string(),
        EventTime::Instant(i) => i.to_string(),
    }
}

fn render_days(
    events: &[EventOccurrence],
    calendar_names: &HashMap<i64, &str>,
    now: Timestamp,
    tz: &TimeZone,
) -> String {
    let today = now.to_zoned(tz.clone()).date();
    let mut days: BTreeMap<Date, Vec<&EventOccurrence>> = BTreeMap::new();
    for event in events {
        days.entry(list_day(event.start, tz, today))
            .or_default()
            .push(event);
    }
    let mut out = String::from("<div class=\"days\">");
    for (day, mut list) in days {
        // All-day events first, then by start: the store orders by start
        // instant, which puts a date-only event at its UTC midnight.
        list.sort_by_key(|e| match e.start {
            EventTime::Date(_) => (0, Timestamp::MIN),
            EventTime::Instant(i) => (1, i),
        });
        let items: String = list
            .iter()
            .map(|e| render_event(e, calendar_names, day, tz))
            .collect();
        out.push_str(&format!(
            "<section class=\"day\" data-day=\"{day}\"><h2><time datetime=\"{day}\">{}</time></h2>\
             <ul class=\"events\">{items}</ul></section>",
            escape(&day_heading(day, today))
        ));
    }
    out.push_str("</div>");
    out
}

fn render_event(
    e: &EventOccurrence,
    calendar_names: &HashMap<i64, &str>,
    day: Date,
    tz: &TimeZone,
) -> String {
    let provider = provider_name(e.provider);
    let title = if e.title.trim().is_empty() {
        "(No title)"
    } else {
        e.title.as_str()
    };
    let title_html = match e.html_link.as_deref().and_then(web_link) {
        Some(link) => format!(
            "<a class=\"title\" href=\"{}\" target=\"_blank\" rel=\"noopener noreferrer\">{}\
             <span class=\"sr-only\"> (opens in {provider})</span></a>",
            escape(link),
            escape(title)
        ),
        None => format!("<span class=\"title\">{}</span>", escape(title)),
    };
    let location = e
        .location
        .as_deref()
        .filter(|l| !l.trim().is_empty())
        .map_or(String::new(), |l| {
            format!(
                "<span class=\"location\"><span class=\"sr-only\">Location: </span>{}</span>",
                escape(l)
            )
        });
    let calendar = calendar_names
        .get(&e.calendar_id.0)
        .copied()
        .unwrap_or("Calendar");
    let all_day = matches!(e.start, EventTime::Date(_));
    format!(
        "<li class=\"event{}\" data-event-id=\"{}\" data-calendar-id=\"{}\" data-color=\"{}\">{}\
         <div class=\"when\"><time datetime=\"{}\">{}</time></div>\
         <div class=\"what\">{title_html}<p class=\"meta\">{location}\
         <span class=\"calendar\">{}{}</span><span class=\"provider\">{provider}</span></p></div></li>",
        if all_day { " all-day" } else { "" },
        e.event_id.0,
        e.calendar_id.0,
        escape(&e.color),
        bar(&e.color),
        escape(&machine_time(e.start)),
        escape(&time_text(e.start, e.end, day, tz)),
        swatch(&e.color),
        escape(calendar),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn days_are_named_relative_to_today() {
        let today = date(2026, 11, 26);
        assert_eq!(day_heading(today, today), "Today");
        assert_eq!(day_heading(date(2026, 11, 27), today), "Tomorrow");
        assert_eq!(day_heading(date(2026, 12, 4), today), "Friday 4 December");
        assert_eq!(
            day_heading(date(2027, 1, 4), today),
            "Monday 4 January 2027"
        );
    }

    #[test]
    fn times_are_shown_in_the_users_zone_with_spans() {
        let ny = TimeZone::get("America/New_York").unwrap();
        let day = date(2026, 11, 26);
        let at = |s: &str| EventTime::Instant(s.parse().unwrap());
        // 10:00 in Berlin is 04:00 in New York in November.
        assert_eq!(
            time_text(
                at("2026-11-26T09:00:00Z"),
                at("2026-11-26T10:00:00Z"),
                day,
                &ny
            ),
            "04:00 – 05:00"
        );
        assert_eq!(
            time_text(
                at("2026-11-27T03:00:00Z"),
                at("2026-11-27T07:00:00Z"),
                day,
                &ny
            ),
            "22:00 – Fri 27 Nov 02:00"
        );
        let d = |y, m, dd| EventTime::Date(date(y, m, dd));
        assert_eq!(
            time_text(d(2026, 11, 26), d(2026, 11, 27), day, &ny),
            "All day"
        );
        assert_eq!(
            time_text(d(2026, 12, 8), d(2026, 12, 11), day, &ny),
            "All day · 3 days, until Thu 10 Dec"
        );
    }

    #[test]
    fn events_under_way_are_listed_today() {
        let tz = TimeZone::UTC;
        let today = date(2026, 11, 26);
        assert_eq!(
            list_day(EventTime::Date(date(2026, 11, 20)), &tz, today),
            today
        );
        assert_eq!(
            list_day(EventTime::Date(date(2026, 11, 28)), &tz, today),
            date(2026, 11, 28)
        );
    }
}
