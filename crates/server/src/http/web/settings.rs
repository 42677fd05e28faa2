//! `GET /settings` ("Calendar Integration": connections, their calendars,
//! when they sync next, removals held for the user's decision, and how to
//! connect more; the time zone; then the account sections of `account`:
//! email, API tokens, password, deleting the account) and the forms it
//! posts. Every form works without JavaScript (POST + CSRF field, then 303
//! back here with a flash message) and calls the same service code as its
//! JSON API twin.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use calsync_core::model::{
    Calendar, CalendarId, ConnectionId, ConnectionStatus, Provider, RemovalDecision, WaitReason,
};
use calsync_store::ConnectionWithCalendars;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Deserialize;

use super::dashboard::{provider_name, zone};
use super::forms::{
    error_flash, form_user, html_page, redirect_with, shown, take_flash, Flash, PageError, WebForm,
    WebPath, WebSession,
};
use super::html::{csrf_field, escape, safe_color, swatch};
use super::layout::{page, Nav};
use crate::calendars;
use crate::http::api::connections::{waiting, VANISHED_AFTER};
use crate::http::extract::Query;
use crate::state::AppState;

/// `?connected=` or `?error=` after an OAuth round trip.
#[derive(Deserialize, Default)]
pub struct SettingsQuery {
    #[serde(default)]
    connected: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

impl SettingsQuery {
    /// A message from a fixed list: the query only picks one, it never
    /// supplies text, so a crafted link cannot put words on the page.
    fn banner(&self) -> Option<Flash> {
        let text = match (self.connected.as_deref(), self.error.as_deref()) {
            (_, Some("denied")) => {
                "Access was not granted, so nothing was connected. Connect again and choose Allow to sync this calendar."
            }
            (_, Some("bad_state")) => {
                "That sign-in link expired or was already used. Please connect again."
            }
            (_, Some("no_refresh_token")) => {
                "The provider did not grant offline access, so calsync could not keep syncing. Remove calsync from your account's third-party access, then connect again."
            }
            (_, Some("not_configured")) => {
                "This provider is not configured on the server. Ask your administrator to set its client id and secret."
            }
            (_, Some("missing_scope")) => {
                "Calendar access was not granted. Connect again and allow calsync to see your calendars."
            }
            (_, Some("exchange_failed")) => {
                "The provider could not finish the sign-in. A sign-in can be finished only once, so please connect again."
            }
            (_, Some("internal")) => "Connecting failed on the server. Please try again in a moment.",
            (_, Some(_)) => {
                "Connecting failed at the provider. Please try again; if it keeps failing, check the provider's status."
            }
            (Some("google"), None) => "Google Calendar connected. The first sync is running.",
            (Some("microsoft"), None) => "Outlook connected. The first sync is running.",
            (Some(_), None) => "Calendar connected. The first sync is running.",
            _ => return None,
        };
        Some(if self.error.is_some() {
            Flash::error(text)
        } else {
            Flash::ok(text)
        })
    }
}

/// "just now", "1 minute ago", "5 minutes ago", "3 hours ago", "2 days ago".
pub fn ago(now: Timestamp, then: Timestamp) -> String {
    let secs = now.duration_since(then).as_secs().max(0);
    let (n, unit) = match secs {
        0..=59 => return "just now".to_owned(),
        60..=3599 => (secs / 60, "minute"),
        3600..=86_399 => (secs / 3600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// A time in the user's zone: "14:05" today, "tomorrow 14:05", else
/// "Tue 3 Mar 14:05".
pub fn clock_text(at: Timestamp, now: Timestamp, tz: &TimeZone) -> String {
    let local = at.to_zoned(tz.clone());
    let today = now.to_zoned(tz.clone()).date();
    if local.date() == today {
        local.strftime("%H:%M").to_string()
    } else if today.tomorrow().ok() == Some(local.date()) {
        local.strftime("tomorrow %H:%M").to_string()
    } else {
        local.strftime("%a %-d %b %H:%M").to_string()
    }
}

fn plural(n: u64, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// Whether this server can connect `provider` (OAuth needs a client id;
/// CalDAV and ICS need nothing).
fn available(state: &AppState, provider: Provider) -> bool {
    match provider {
        Provider::Google => state.config.google.is_some(),
        Provider::Microsoft => state.config.microsoft.is_some(),
        Provider::Caldav | Provider::Ics => true,
    }
}

fn status_html(c: &ConnectionWithCalendars, now: Timestamp) -> (String, &'static str) {
    let conn = &c.connection;
    let synced = conn
        .last_synced_at
        .map(|t| format!("synced {}", ago(now, t)));
    match conn.status {
        ConnectionStatus::Ok => (
            escape(&capitalise(synced.as_deref().unwrap_or("synced"))),
            "ok",
        ),
        ConnectionStatus::Syncing => ("Syncing…".to_owned(), "busy"),
        ConnectionStatus::Pending if conn.last_synced_at.is_none() => {
            ("Waiting for the first sync…".to_owned(), "busy")
        }
        ConnectionStatus::Pending => ("Sync requested…".to_owned(), "busy"),
        ConnectionStatus::NeedsReauth => ("Needs reconnect".to_owned(), "bad"),
        ConnectionStatus::Held => ("Removals held: your decision is needed".to_owned(), "warn"),
        ConnectionStatus::Error => (
            format!(
                "Error: {}",
                escape(conn.last_error.as_deref().unwrap_or("the last sync failed"))
            ),
            "bad",
        ),
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map_or(String::new(), |c| c.to_uppercase().chain(chars).collect())
}

fn last_run_html(c: &ConnectionWithCalendars, now: Timestamp) -> String {
    let Some(run) = c.recent_runs.iter().find(|r| r.finished_at.is_some()) else {
        return String::new();
    };
    let took = run
        .finished_at
        .map(|f| f.duration_since(run.started_at).as_secs_f64())
        .unwrap_or_default();
    let mut text = format!(
        "Last sync {}: {}, {}, took {took:.1} s",
        ago(now, run.started_at),
        plural(run.changes, "change"),
        plural(run.requests, "request"),
    );
    if let Some(error) = &run.error {
        text.push_str(&format!(" ({error})"));
    }
    if c.connection.status == ConnectionStatus::Error {
        if let Some(t) = c.connection.last_synced_at {
            text.push_str(&format!(
                ". Last good sync {}; calsync retries by itself, with growing pauses",
                ago(now, t)
            ));
        }
    }
    format!("<p class=\"hint last-run\">{}.</p>", escape(&text))
}

/// When the next sync starts, in words: "now" when it is due or asked for,
/// else the time in the user's zone; `None` while one runs or while the
/// connection waits for the user to reconnect.
fn next_sync_text(c: &ConnectionWithCalendars, now: Timestamp, tz: &TimeZone) -> Option<String> {
    let conn = &c.connection;
    match conn.status {
        ConnectionStatus::NeedsReauth | ConnectionStatus::Syncing => None,
        ConnectionStatus::Pending => Some("now".to_owned()),
        _ => conn.next_sync_at.map(|at| {
            if at <= now {
                "now".to_owned()
            } else {
                clock_text(at, now, tz)
            }
        }),
    }
}

/// "Next sync: 14:05", or why it waits longer than usual and until when.
fn next_sync_html(c: &ConnectionWithCalendars, now: Timestamp, tz: &TimeZone) -> String {
    let conn = &c.connection;
    let Some(next) = next_sync_text(c, now, tz) else {
        return String::new();
    };
    let text = match waiting(conn, now) {
        Some((WaitReason::Backoff, until)) => {
            let until = clock_text(until, now, tz);
            match conn.consecutive_failures {
                0 => format!("Waiting after failed syncs until {until}"),
                1 => format!("Waiting after a failed sync until {until}"),
                n => format!("Waiting after {n} failed syncs in a row until {until}"),
            }
        }
        Some((WaitReason::RateLimited, until)) => format!(
            "The provider asked us to wait until {}",
            clock_text(until, now, tz)
        ),
        None => format!("Next sync: {next}"),
    };
    format!(
        "<p class=\"hint next-sync\" id=\"connection-{}-next\">{}.</p>",
        conn.id.0,
        escape(&text)
    )
}

/// The warning on a calendar whose removals the last sync held back, with
/// the two choices, or the choice made and when it is carried out.
fn held_html(
    cal: &Calendar,
    c: &ConnectionWithCalendars,
    csrf: &str,
    now: Timestamp,
    tz: &TimeZone,
) -> String {
    let Some(count) = cal.held_removals else {
        return String::new();
    };
    let id = cal.id.0;
    let events = plural(count, "event");
    let warning = if cal.missing_listings >= VANISHED_AFTER {
        format!(
            "The calendar {} no longer appears in the account. Removing it would delete its {events}.",
            cal.name
        )
    } else {
        format!(
            "The last sync would remove {events} from {}. Nothing was removed.",
            cal.name
        )
    };
    let action = match cal.removal_decision {
        Some(decision) => {
            let chosen = match decision {
                RemovalDecision::Apply => "Remove them",
                RemovalDecision::Reject => "Keep them",
            };
            let when = next_sync_text(c, now, tz).unwrap_or_else(|| {
                if c.connection.status == ConnectionStatus::NeedsReauth {
                    "after you reconnect".to_owned()
                } else {
                    "now".to_owned()
                }
            });
            format!(
                "<p class=\"decided\" id=\"calendar-{id}-decided\">{}</p>",
                escape(&format!(
                    "You chose: {chosen}. Will be applied at the next sync ({when})."
                ))
            )
        }
        None => format!(
            "<form method=\"post\" action=\"/settings/calendars/{id}/removals\" class=\"held-form\">{}\
             <button type=\"submit\" name=\"decision\" value=\"apply\" class=\"danger\" id=\"apply-removals-{id}\">Remove them</button>\
             <button type=\"submit\" name=\"decision\" value=\"reject\" class=\"primary\" id=\"reject-removals-{id}\">Keep them</button>\
             </form>",
            csrf_field(csrf)
        ),
    };
    format!(
        "<div class=\"held\" id=\"calendar-{id}-held\" role=\"alert\"><p>{}</p>{action}</div>",
        escape(&warning)
    )
}

fn reconnect_html(c: &ConnectionWithCalendars) -> String {
    let conn = &c.connection;
    if conn.status != ConnectionStatus::NeedsReauth {
        return String::new();
    }
    let why = "The provider no longer accepts calsync's access: it was revoked, the password changed, or the sign-in expired. Your calendars keep their last synced events until you reconnect.";
    let action = match conn.provider {
        Provider::Google => format!(
            "<a class=\"button primary\" id=\"reconnect-{}\" href=\"/settings/connect/google\">Reconnect Google Calendar</a>\
             <p class=\"hint\">Google OAuth apps left in <em>Testing</em> publishing status lose their refresh tokens after 7 days, \
             so they need reconnecting every week. Publish the app in the Google Cloud console to stop this.</p>",
            conn.id.0
        ),
        Provider::Microsoft => format!(
            "<a class=\"button primary\" id=\"reconnect-{}\" href=\"/settings/connect/microsoft\">Reconnect Outlook</a>",
            conn.id.0
        ),
        Provider::Caldav => "<p class=\"hint\">Disconnect, then connect again below with a new app-specific password.</p>".to_owned(),
        Provider::Ics => "<p class=\"hint\">Check that the feed URL still works, then disconnect and subscribe again.</p>".to_owned(),
    };
    format!("<div class=\"reconnect\" role=\"alert\"><p>{why}</p>{action}</div>")
}

fn disconnect_html(c: &ConnectionWithCalendars, csrf: &str) -> String {
    let conn = &c.connection;
    let who = conn
        .account_email
        .as_deref()
        .unwrap_or(provider_name(conn.provider));
    let note = match conn.provider {
        Provider::Google => "calsync also revokes its access at Google.",
        Provider::Microsoft => {
            "Microsoft offers no way for calsync to revoke its own access: to remove it, open <a href=\"https://myapplications.microsoft.com\" target=\"_blank\" rel=\"noopener noreferrer\">myapplications.microsoft.com</a> and remove calsync there."
        }
        Provider::Caldav => {
            "The app-specific password stays valid until you revoke it at <a href=\"https://appleid.apple.com\" target=\"_blank\" rel=\"noopener noreferrer\">appleid.apple.com</a> (iCloud) or on your CalDAV server."
        }
        Provider::Ics => "The feed itself is not changed.",
    };
    format!(
        "<details class=\"disconnect\" id=\"disconnect-{id}\"><summary>Disconnect…</summary>\
         <p>This removes {} and all its calendars and events from calsync. {note}</p>\
         <form method=\"post\" action=\"/settings/connections/{id}/disconnect\">{}\
         <button type=\"submit\" class=\"danger\" id=\"confirm-disconnect-{id}\">Yes, disconnect</button></form></details>",
        escape(who),
        csrf_field(csrf),
        id = conn.id.0
    )
}

fn calendars_html(
    c: &ConnectionWithCalendars,
    csrf: &str,
    now: Timestamp,
    tz: &TimeZone,
) -> String {
    if c.calendars.is_empty() {
        return "<p class=\"hint\">No calendars yet: they appear after the first sync.</p>"
            .to_owned();
    }
    let items: String = c
        .calendars
        .iter()
        .map(|cal| {
            let id = cal.id.0;
            let name = escape(&cal.name);
            format!(
                "<li class=\"calendar\" id=\"calendar-{id}\" data-enabled=\"{}\">\
                 <form method=\"post\" action=\"/settings/calendars/{id}\" class=\"calendar-form\" data-calendar-id=\"{id}\">{}\
                 <label class=\"switch\" for=\"calendar-{id}-enabled\">\
                 <input type=\"checkbox\" role=\"switch\" name=\"enabled\" value=\"on\" id=\"calendar-{id}-enabled\"{}>\
                 {}<span class=\"name\">{name}</span><span class=\"sr-only\"> (show on the Dashboard)</span></label>\
                 <label class=\"color\" for=\"calendar-{id}-color\"><span class=\"sr-only\">Colour of {name}</span>\
                 <input type=\"color\" name=\"color\" id=\"calendar-{id}-color\" value=\"{}\"></label>\
                 <button type=\"submit\" class=\"small js-hide\">Save</button></form>{}</li>",
                cal.enabled,
                csrf_field(csrf),
                if cal.enabled { " checked" } else { "" },
                swatch(&cal.color),
                escape(safe_color(&cal.color)),
                held_html(cal, c, csrf, now, tz),
            )
        })
        .collect();
    format!("<ul class=\"calendars\">{items}</ul>")
}

fn connection_html(
    c: &ConnectionWithCalendars,
    csrf: &str,
    now: Timestamp,
    tz: &TimeZone,
) -> String {
    let conn = &c.connection;
    let id = conn.id.0;
    let (status, class) = status_html(c, now);
    let sync = if conn.status == ConnectionStatus::NeedsReauth {
        String::new()
    } else {
        format!(
            "<form method=\"post\" action=\"/settings/connections/{id}/sync\" class=\"inline\">{}\
             <button type=\"submit\" id=\"sync-{id}\">Sync now</button></form>",
            csrf_field(csrf)
        )
    };
    format!(
        "<article class=\"connection card\" id=\"connection-{id}\" data-status=\"{}\" data-provider=\"{}\">\
         <header><h3>{} <span class=\"account\">{}</span></h3>\
         <p class=\"status {class}\" id=\"connection-{id}-status\">{status}</p></header>\
         {}{}{}{}<div class=\"actions\">{sync}{}</div>\
         <h4>Calendars</h4>{}</article>",
        conn.status.as_str(),
        conn.provider.as_str(),
        provider_name(conn.provider),
        escape(conn.account_email.as_deref().unwrap_or("")),
        insecure_html(c),
        reconnect_html(c),
        last_run_html(c, now),
        next_sync_html(c, now, tz),
        disconnect_html(c, csrf),
        calendars_html(c, csrf, now, tz),
    )
}

/// The warning badge of a connection reached without TLS.
fn insecure_html(c: &ConnectionWithCalendars) -> String {
    let conn = &c.connection;
    if !crate::connect::insecure(conn) {
        return String::new();
    }
    let what = match conn.provider {
        Provider::Ics => "this feed is fetched over plain http://, without TLS: its events can be read or changed on the way.",
        _ => "this server is reached over plain http://: the password and the events travel readable by anyone on the network path.",
    };
    format!(
        "<p class=\"status warn\" id=\"connection-{}-insecure\" data-insecure=\"true\">\
         <span aria-hidden=\"true\">⚠</span> Not encrypted: {what}</p>",
        conn.id.0
    )
}

fn connect_html(state: &AppState, csrf: &str) -> String {
    let mut out = String::from("<section class=\"connect\" aria-labelledby=\"connect-title\"><h2 id=\"connect-title\">Connect a calendar</h2>");
    if available(state, Provider::Google) {
        out.push_str(
            "<div class=\"card provider\"><h3>Google Calendar</h3>\
             <p><a class=\"button primary\" id=\"connect-google\" href=\"/settings/connect/google\">Connect Google Calendar</a></p>\
             <p class=\"hint\">You are sent to Google to allow read access, then back here. If this server's Google OAuth app is in \
             <em>Testing</em> status, Google expires its refresh tokens after 7 days and you will see <em>Reconnect</em> here weekly.</p></div>",
        );
    }
    if available(state, Provider::Microsoft) {
        out.push_str(
            "<div class=\"card provider\"><h3>Outlook / Microsoft 365</h3>\
             <p><a class=\"button primary\" id=\"connect-microsoft\" href=\"/settings/connect/microsoft\">Connect Outlook / Microsoft 365</a></p></div>",
        );
    }
    let csrf = csrf_field(csrf);
    out.push_str(&format!(
        "<details class=\"card provider\" id=\"connect-apple\"><summary>Connect Apple iCloud</summary>\
         <form method=\"post\" action=\"/settings/caldav\" class=\"stack\">{csrf}\
         <input type=\"hidden\" name=\"server_url\" value=\"https://caldav.icloud.com\">\
         <label for=\"apple-username\">Apple ID (email)</label>\
         <input id=\"apple-username\" name=\"username\" type=\"email\" autocomplete=\"username\" required>\
         <label for=\"apple-password\">App-specific password</label>\
         <input id=\"apple-password\" name=\"password\" type=\"password\" autocomplete=\"off\" required aria-describedby=\"apple-password-hint\">\
         <p class=\"hint\" id=\"apple-password-hint\">Not your Apple ID password: create an app-specific password for calsync at \
         <a href=\"https://appleid.apple.com\" target=\"_blank\" rel=\"noopener noreferrer\">appleid.apple.com</a> \
         (Sign-In and Security → App-Specific Passwords). It is stored encrypted.</p>\
         <button type=\"submit\" class=\"primary\">Connect iCloud</button></form></details>\
         <details class=\"card provider\" id=\"connect-caldav\"><summary>Connect a CalDAV server</summary>\
         <form method=\"post\" action=\"/settings/caldav\" class=\"stack\">{csrf}\
         <label for=\"caldav-url\">Server URL</label>\
         <input id=\"caldav-url\" name=\"server_url\" type=\"url\" placeholder=\"https://dav.example.com/\" required>\
         <label for=\"caldav-username\">Username</label>\
         <input id=\"caldav-username\" name=\"username\" autocomplete=\"username\" required>\
         <label for=\"caldav-password\">Password or app password</label>\
         <input id=\"caldav-password\" name=\"password\" type=\"password\" autocomplete=\"off\" required>\
         <p class=\"hint\">Fastmail, Nextcloud, Radicale and most CalDAV servers work; prefer an app password where your server offers one.</p>\
         <label class=\"switch\"><input id=\"caldav-insecure\" name=\"allow_insecure\" type=\"checkbox\" value=\"true\" aria-describedby=\"caldav-insecure-hint\"> Allow an unencrypted connection (http://)</label>\
         <p class=\"hint\" id=\"caldav-insecure-hint\">Only for a server that has no https:// address: the password and your events are then sent \
         readable by anyone on the network path. Never tick this for a server on the internet.</p>\
         <button type=\"submit\" class=\"primary\">Connect</button></form></details>\
         <details class=\"card provider\" id=\"connect-ics\"><summary>Subscribe to a calendar feed (ICS)</summary>\
         <form method=\"post\" action=\"/settings/ics\" class=\"stack\">{csrf}\
         <label for=\"ics-url\">Feed URL</label>\
         <input id=\"ics-url\" name=\"url\" type=\"text\" inputmode=\"url\" placeholder=\"https://example.com/calendar.ics or webcal://…\" required>\
         <label for=\"ics-name\">Name (optional)</label>\
         <input id=\"ics-name\" name=\"name\" maxlength=\"200\">\
         <button type=\"submit\" class=\"primary\">Subscribe</button></form></details>"
    ));
    if !available(state, Provider::Google) {
        out.push_str("<p class=\"hint\">Google Calendar is not configured on this server: an administrator sets CALSYNC_GOOGLE_CLIENT_ID and CALSYNC_GOOGLE_CLIENT_SECRET.</p>");
    }
    out.push_str("</section>");
    out
}

fn timezone_html(current: &str, csrf: &str) -> String {
    let options: String = jiff::tz::db()
        .available()
        .map(|name| format!("<option value=\"{}\">", escape(name.as_str())))
        .collect();
    format!(
        "<section class=\"card\" id=\"timezone\" aria-labelledby=\"timezone-title\"><h2 id=\"timezone-title\">Time zone</h2>\
         <form method=\"post\" action=\"/settings/timezone\" class=\"row\">{}\
         <label for=\"timezone-input\">Show times in</label>\
         <input id=\"timezone-input\" name=\"timezone\" value=\"{}\" list=\"timezones\" required maxlength=\"64\" \
         autocomplete=\"off\" spellcheck=\"false\" aria-describedby=\"timezone-hint\">\
         <datalist id=\"timezones\">{options}</datalist>\
         <button type=\"submit\">Save</button></form>\
         <p class=\"hint\" id=\"timezone-hint\">An IANA name such as Europe/Berlin or America/New_York.</p></section>",
        csrf_field(csrf),
        escape(current)
    )
}

/// `GET /settings`.
pub async fn settings(
    State(state): State<AppState>,
    session: WebSession,
    headers: HeaderMap,
    Query(outcome): Query<SettingsQuery>,
) -> Result<Response, PageError> {
    let Some(user) = session.0 else {
        return Ok(Redirect::to("/login?next=/settings").into_response());
    };
    let flash = take_flash(&headers);
    let shown_flash = flash.clone().or_else(|| outcome.banner());
    let profile = state.store.user(user.id).await?;
    let connections = state.store.list_connections(user.id).await?;
    let now = state.clock.now();
    let tz = zone(&profile.timezone);
    let list = if connections.is_empty() {
        "<p class=\"empty\" id=\"no-connections\">No calendars connected yet. Connect one below.</p>"
            .to_owned()
    } else {
        connections
            .iter()
            .map(|c| connection_html(c, &user.csrf_token, now, &tz))
            .collect()
    };
    let account = super::account::sections(&state, &user, now, &tz).await?;
    let main = format!(
        "<div class=\"page-head\"><h1>Settings</h1></div>\
         <section aria-labelledby=\"integration-title\"><h2 id=\"integration-title\">Calendar Integration</h2>\
         <div id=\"live\" data-live=\"settings\">{list}</div></section>{}{}{account}",
        connect_html(&state, &user.csrf_token),
        timezone_html(&profile.timezone, &user.csrf_token)
    );
    let html = page(
        "Settings",
        Some(&user),
        Nav::Settings,
        shown_flash.as_ref(),
        &main,
    );
    Ok(shown(html_page(StatusCode::OK, html), flash.as_ref()))
}

/// `GET /settings/connect/{provider}`: starts an OAuth connection (Google,
/// Microsoft) through the same service as the API's `authorize`, but answers
/// as a page: to the provider's consent page, to the login form when the
/// session has ended, or back to Settings with a message.
pub async fn start_connect(
    State(state): State<AppState>,
    session: WebSession,
    WebPath(provider): WebPath<String>,
) -> Response {
    let Some(user) = session.0 else {
        return Redirect::to("/login?next=/settings").into_response();
    };
    let Some(provider @ (Provider::Google | Provider::Microsoft)) = Provider::parse(&provider)
    else {
        return redirect_with(
            &state,
            "/settings",
            Flash::error("There is no such provider to connect with a sign-in."),
        );
    };
    match crate::connect::start_oauth(&state, user.id, provider).await {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(err) => {
            tracing::warn!(user = %user.id, provider = provider.as_str(), error = %err, "could not start connecting");
            redirect_with(&state, "/settings", error_flash(err.into()))
        }
    }
}

/// Fields of the calendar form: the checkbox is absent when off.
#[derive(Deserialize)]
pub struct CalendarForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    enabled: Option<String>,
    #[serde(default)]
    color: Option<String>,
}

/// `POST /settings/calendars/{id}`.
pub async fn update_calendar(
    State(state): State<AppState>,
    session: WebSession,
    WebPath(id): WebPath<i64>,
    WebForm(form): WebForm<CalendarForm>,
) -> Response {
    let user = match form_user(session, &form.csrf_token) {
        Ok(user) => user,
        Err(refused) => return refused.into_response(),
    };
    let enabled = form.enabled.is_some();
    let color = form.color.as_deref().filter(|c| !c.is_empty());
    let flash =
        match calendars::update_calendar(&state, user.id, CalendarId(id), Some(enabled), color)
            .await
        {
            Ok(cal) => Flash::ok(format!(
                "{} is {} on the Dashboard.",
                cal.name,
                if cal.enabled { "shown" } else { "hidden" }
            )),
            Err(err) => error_flash(err),
        };
    redirect_with(&state, &format!("/settings#calendar-{id}"), flash)
}

/// The held-removals form: which button was pressed.
#[derive(Deserialize)]
pub struct RemovalsForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    decision: String,
}

/// `POST /settings/calendars/{id}/removals`: "Remove them" / "Keep them".
pub async fn decide_removals(
    State(state): State<AppState>,
    session: WebSession,
    WebPath(id): WebPath<i64>,
    WebForm(form): WebForm<RemovalsForm>,
) -> Response {
    let user = match form_user(session, &form.csrf_token) {
        Ok(user) => user,
        Err(refused) => return refused.into_response(),
    };
    let flash = match RemovalDecision::parse(&form.decision) {
        None => Flash::error("Choose Remove them or Keep them."),
        Some(decision) => {
            match calendars::decide_removals(&state, user.id, CalendarId(id), decision).await {
                Ok(cal) => Flash::ok(match decision {
                    RemovalDecision::Apply => format!(
                        "{}: the held events are being removed by the sync that just started.",
                        cal.name
                    ),
                    RemovalDecision::Reject => format!(
                        "{}: its events are kept; the sync that just started goes on syncing its changes.",
                        cal.name
                    ),
                }),
                Err(err) => error_flash(err),
            }
        }
    };
    redirect_with(&state, &format!("/settings#calendar-{id}"), flash)
}

/// A form with only the CSRF token.
#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    csrf_token: String,
}

/// `POST /settings/connections/{id}/sync`.
pub async fn sync_now(
    State(state): State<AppState>,
    session: WebSession,
    WebPath(id): WebPath<i64>,
    WebForm(form): WebForm<TokenForm>,
) -> Response {
    let user = match form_user(session, &form.csrf_token) {
        Ok(user) => user,
        Err(refused) => return refused.into_response(),
    };
    let flash = match calendars::request_sync(&state, user.id, Some(ConnectionId(id))).await {
        Ok(_) => Flash::ok("Sync started. The status below updates when it finishes."),
        Err(err) => error_flash(err),
    };
    redirect_with(&state, &format!("/settings#connection-{id}"), flash)
}

/// `POST /settings/connections/{id}/disconnect` (the `<details>` around the
/// button is the confirmation step).
pub async fn disconnect(
    State(state): State<AppState>,
    session: WebSession,
    WebPath(id): WebPath<i64>,
    WebForm(form): WebForm<TokenForm>,
) -> Response {
    let user = match form_user(session, &form.csrf_token) {
        Ok(user) => user,
        Err(refused) => return refused.into_response(),
    };
    let id = ConnectionId(id);
    let described = state.store.connection(user.id, id).await.ok().map(|c| {
        (
            c.provider,
            c.account_email
                .unwrap_or_else(|| provider_name(c.provider).to_owned()),
        )
    });
    let flash = match calendars::disconnect(&state, user.id, id).await {
        Ok(revoked) => {
            let (provider, who) = described.unwrap_or((Provider::Ics, "The connection".to_owned()));
            let tail = match (provider, revoked) {
                (_, true) => " calsync's access was revoked at the provider.",
                (Provider::Google, false) => " Google could not confirm the revocation; you can remove calsync in your Google account's security settings.",
                (Provider::Microsoft, _) => " To remove calsync's access, visit myapplications.microsoft.com.",
                _ => "",
            };
            Flash::ok(format!(
                "Disconnected {who}: its calendars and events are gone from calsync.{tail}"
            ))
        }
        Err(err) => error_flash(err),
    };
    redirect_with(&state, "/settings", flash)
}

/// The time zone form.
#[derive(Deserialize)]
pub struct TimezoneForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    timezone: String,
}

/// `POST /settings/timezone`.
pub async fn set_timezone(
    State(state): State<AppState>,
    session: WebSession,
    WebForm(form): WebForm<TimezoneForm>,
) -> Response {
    let user = match form_user(session, &form.csrf_token) {
        Ok(user) => user,
        Err(refused) => return refused.into_response(),
    };
    let flash = match calendars::set_timezone(&state, user.id, &form.timezone).await {
        Ok(name) => Flash::ok(format!("Times are now shown in {name}.")),
        Err(err) => error_flash(err),
    };
    redirect_with(&state, "/settings#timezone", flash)
}

/// The CalDAV / iCloud form.
#[derive(Deserialize)]
pub struct CaldavForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    server_url: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    /// The checkbox: present (`true`) when ticked.
    #[serde(default)]
    allow_insecure: Option<String>,
}

/// `POST /settings/caldav`.
pub async fn connect_caldav(
    State(state): State<AppState>,
    session: WebSession,
    WebForm(form): WebForm<CaldavForm>,
) -> Response {
    let user = match form_user(session, &form.csrf_token) {
        Ok(user) => user,
        Err(refused) => return refused.into_response(),
    };
    let input = super::connect::CaldavInput {
        server_url: form.server_url,
        username: form.username,
        password: secrecy::SecretString::from(form.password),
        allow_insecure: form.allow_insecure.is_some_and(|v| v != "false"),
    };
    let flash = super::connect::caldav(&state, user.id, input).await;
    redirect_with(&state, "/settings", flash)
}

/// The ICS feed form.
#[derive(Deserialize)]
pub struct IcsForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    name: String,
}

/// `POST /settings/ics`.
pub async fn subscribe_ics(
    State(state): State<AppState>,
    session: WebSession,
    WebForm(form): WebForm<IcsForm>,
) -> Response {
    let user = match form_user(session, &form.csrf_token) {
        Ok(user) => user,
        Err(refused) => return refused.into_response(),
    };
    let name = Some(form.name.trim().to_owned()).filter(|n| !n.is_empty());
    let flash =
        super::connect::ics(&state, user.id, secrecy::SecretString::from(form.url), name).await;
    redirect_with(&state, "/settings", flash)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_naturally() {
        let now: Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
        let before = |secs: i64| now - jiff::SignedDuration::from_secs(secs);
        assert_eq!(ago(now, before(5)), "just now");
        assert_eq!(ago(now, before(60)), "1 minute ago");
        assert_eq!(ago(now, before(600)), "10 minutes ago");
        assert_eq!(ago(now, before(7200)), "2 hours ago");
        assert_eq!(ago(now, before(86_400 * 3)), "3 days ago");
    }

    #[test]
    fn times_read_in_the_users_zone() {
        let now: Timestamp = "2026-11-26T21:00:00Z".parse().unwrap();
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(
            clock_text(at("2026-11-26T21:30:00Z"), now, &berlin),
            "22:30"
        );
        assert_eq!(
            clock_text(at("2026-11-26T23:05:00Z"), now, &berlin),
            "tomorrow 00:05"
        );
        assert_eq!(
            clock_text(at("2026-11-26T23:05:00Z"), now, &TimeZone::UTC),
            "23:05"
        );
        assert_eq!(
            clock_text(at("2026-12-01T08:00:00Z"), now, &berlin),
            "Tue 1 Dec 09:00"
        );
    }

    #[test]
    fn callback_codes_pick_fixed_messages() {
        let q = SettingsQuery {
            connected: None,
            error: Some("<script>".to_owned()),
        };
        let flash = q.banner().unwrap();
        assert!(!flash.ok && !flash.text.contains("script"));
        let q = SettingsQuery {
            connected: Some("google".to_owned()),
            error: None,
        };
        assert!(q.banner().unwrap().ok);
    }
}
