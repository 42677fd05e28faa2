//! Server-rendered pages: login, logout, Dashboard and Settings. They work
//! without JavaScript; forms carry the session's CSRF token in a hidden field.

mod html;

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use calsync_core::model::EventTime;
use calsync_store::EventRange;
use jiff::SignedDuration;
use secrecy::SecretString;
use serde::Deserialize;

use crate::accounts::{self, hash_token, SESSION_LIFETIME};
use crate::http::auth::{PageSession, CSRF_COOKIE, SESSION_COOKIE};
use crate::http::csrf;
use crate::http::error::AppError;
use crate::http::extract::{Form, Query};
use crate::state::AppState;
use html::{escape, page};

/// The login form's fields.
#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// The logout form's fields.
#[derive(Deserialize)]
pub struct CsrfForm {
    csrf_token: String,
}

/// `?next=` after login.
#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

/// Only paths on this site: never `//host` or `https://...`, so the login form
/// cannot be used to bounce a user to another site.
fn local_path(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains(['\\', '\r', '\n']) {
        next
    } else {
        "/"
    }
}

fn login_page(message: Option<&str>, next: &str) -> String {
    let message = message.map_or(String::new(), |m| {
        format!("<p class=\"error\" role=\"alert\">{}</p>", escape(m))
    });
    page(
        "Log in",
        None,
        &format!(
            "<main class=\"narrow\"><h1>Log in to calsync</h1>{message}\
             <form method=\"post\" action=\"/login\">\
             <input type=\"hidden\" name=\"next\" value=\"{}\">\
             <label for=\"username\">Username</label>\
             <input id=\"username\" name=\"username\" autocomplete=\"username\" required autofocus>\
             <label for=\"password\">Password</label>\
             <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
             <button type=\"submit\">Log in</button></form>\
             <p class=\"hint\">No account yet? An administrator creates one with <code>calsync user add NAME</code>.</p></main>",
            escape(local_path(next))
        ),
    )
}

/// `GET /login`.
pub async fn login_form(Query(query): Query<NextQuery>) -> Html<String> {
    Html(login_page(None, &query.next))
}

/// `POST /login`: checks the password (rate limited), starts a session.
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    _origin_checked: PageSession,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    let limiter = &state.login_limiter;
    if let Err(wait) = limiter.check(&form.username, peer.ip(), Instant::now()) {
        let message = format!(
            "Too many failed attempts. Try again in {} minutes.",
            wait.div_ceil(60)
        );
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            Html(login_page(Some(&message), &form.next)),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return Ok(response);
    }
    let user = accounts::check_login(
        &state.store,
        &form.username,
        SecretString::from(form.password),
    )
    .await?;
    let Some(user) = user else {
        limiter.failed(&form.username, peer.ip(), Instant::now());
        tracing::info!(username = %form.username, "login failed");
        let page = login_page(Some("Wrong username or password."), &form.next);
        return Ok((StatusCode::UNAUTHORIZED, Html(page)).into_response());
    };
    limiter.succeeded(&form.username);
    let (token, session) = accounts::start_session(&state.store, &user, state.clock.now()).await?;
    tracing::info!(user = %user.id, "logged in");
    let secure = if state.config.is_https() {
        "; Secure"
    } else {
        ""
    };
    let max_age = SESSION_LIFETIME.as_secs();
    let mut response = Redirect::to(local_path(&form.next)).into_response();
    let headers = response.headers_mut();
    for cookie in [
        format!(
            "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
        ),
        format!(
            "{CSRF_COOKIE}={}; Path=/; SameSite=Lax; Max-Age={max_age}{secure}",
            session.csrf_token
        ),
    ] {
        headers.append(
            header::SET_COOKIE,
            HeaderValue::try_from(cookie).map_err(|e| AppError::Internal(e.into()))?,
        );
    }
    Ok(response)
}

/// `POST /logout`.
pub async fn logout(
    State(state): State<AppState>,
    session: PageSession,
    Form(form): Form<CsrfForm>,
) -> Result<Response, AppError> {
    if let Some(user) = session.user {
        csrf::check_token(Some(&form.csrf_token), &user.csrf_token)?;
        state
            .store
            .delete_session(&hash_token(&user.cookie_token))
            .await?;
    }
    let mut response = Redirect::to("/login").into_response();
    for name in [SESSION_COOKIE, CSRF_COOKIE] {
        let expired = HeaderValue::try_from(format!("{name}=; Path=/; Max-Age=0; SameSite=Lax"))
            .map_err(|e| AppError::Internal(e.into()))?;
        response.headers_mut().append(header::SET_COOKIE, expired);
    }
    Ok(response)
}

fn login_redirect(path: &str) -> Response {
    Redirect::to(&format!("/login?next={path}")).into_response()
}

fn when(t: EventTime) -> String {
    match t {
        EventTime::Date(d) => d.strftime("%a %-d %b %Y").to_string(),
        EventTime::Instant(i) => i.strftime("%a %-d %b %Y %H:%M UTC").to_string(),
    }
}

/// `GET /`: upcoming events from every enabled calendar.
pub async fn dashboard(
    State(state): State<AppState>,
    session: PageSession,
) -> Result<Response, AppError> {
    let Some(user) = session.user else {
        return Ok(login_redirect("/"));
    };
    let now = state.clock.now();
    let range = EventRange {
        start: now,
        end: now + SignedDuration::from_hours(24 * 30),
    };
    let events = state.store.events_in_range(user.id, range, 100).await?;
    let body = if events.is_empty() {
        "<p class=\"empty\">No upcoming events. <a href=\"/settings\">Connect a calendar in Settings</a>.</p>".to_owned()
    } else {
        let items: String = events
            .iter()
            .map(|e| {
                format!(
                    "<li><span class=\"swatch\" style=\"background:{}\"></span><time>{}</time> {}</li>",
                    escape(&e.color),
                    escape(&when(e.start)),
                    escape(&e.title)
                )
            })
            .collect();
        format!("<ul class=\"events\">{items}</ul>")
    };
    Ok(Html(page(
        "Dashboard",
        Some(&user),
        &format!("<main><h1>Upcoming Events</h1>{body}</main>"),
    ))
    .into_response())
}

/// `GET /settings`: connected calendars and how to connect more.
pub async fn settings(
    State(state): State<AppState>,
    session: PageSession,
    Query(outcome): Query<SettingsQuery>,
) -> Result<Response, AppError> {
    let Some(user) = session.user else {
        return Ok(login_redirect("/settings"));
    };
    let connections = state.store.list_connections(user.id).await?;
    let list: String = connections.iter().map(connection_item).collect();
    let google = if state.config.google.is_some() {
        "<a class=\"button\" href=\"/api/calendar/google/authorize/\">Connect Google Calendar</a>\
         <p class=\"hint\">Google apps left in \"Testing\" status lose their refresh tokens after \
         7 days: publish the OAuth app, or reconnect weekly.</p>"
    } else {
        "<p class=\"hint\">Google Calendar is not configured on this server: set \
         CALSYNC_GOOGLE_CLIENT_ID and CALSYNC_GOOGLE_CLIENT_SECRET.</p>"
    };
    let list = if list.is_empty() {
        "<p class=\"empty\">No calendars connected yet.</p>".to_owned()
    } else {
        format!("<ul class=\"connections\">{list}</ul>")
    };
    let body = format!(
        "<main><h1>Settings</h1>{}<section><h2>Calendar Integration</h2>{list}{google}</section></main>",
        outcome.banner()
    );
    Ok(Html(page("Settings", Some(&user), &body)).into_response())
}

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
    fn banner(&self) -> String {
        let (class, text) = match (self.connected.as_deref(), self.error.as_deref()) {
            (_, Some("denied")) => ("error", "Access was not granted, so nothing was connected."),
            (_, Some("bad_state")) => ("error", "That sign-in link expired or was already used. Please connect again."),
            (_, Some("no_refresh_token")) => (
                "error",
                "Google did not grant offline access. Remove calsync from your Google account's third-party access, then connect again.",
            ),
            (_, Some("not_configured")) => ("error", "This provider is not configured on the server."),
            (_, Some(_)) => ("error", "Connecting failed at the provider. Please try again."),
            (Some("google"), None) => ("ok", "Google Calendar connected. The first sync is running."),
            _ => return String::new(),
        };
        format!("<p class=\"{class}\" role=\"status\">{text}</p>")
    }
}

fn connection_item(c: &calsync_store::ConnectionWithCalendars) -> String {
    let calendars: String = c
        .calendars
        .iter()
        .map(|cal| {
            format!(
                "<li><span class=\"swatch\" style=\"background:{}\"></span>{}{}</li>",
                escape(&cal.color),
                escape(&cal.name),
                if cal.enabled { "" } else { " (off)" }
            )
        })
        .collect();
    let status = match c.connection.status {
        calsync_core::model::ConnectionStatus::NeedsReauth => format!(
            "needs reconnecting: <a href=\"/api/calendar/{}/authorize/\">Reconnect</a>",
            c.connection.provider.as_str()
        ),
        other => escape(other.as_str()),
    };
    let error = c
        .connection
        .last_error
        .as_deref()
        .map_or(String::new(), |e| {
            format!("<p class=\"error\">{}</p>", escape(e))
        });
    format!(
        "<li><strong>{}</strong> {} <em>{status}</em>{error}<ul>{calendars}</ul></li>",
        escape(c.connection.provider.as_str()),
        escape(c.connection.account_email.as_deref().unwrap_or(""))
    )
}

/// Answers requests for unknown pages.
pub async fn not_found(headers: HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if wants_html {
        (
            StatusCode::NOT_FOUND,
            Html(page(
                "Not found",
                None,
                "<main><h1>Not found</h1><p><a href=\"/\">Back to the Dashboard</a></p></main>",
            )),
        )
            .into_response()
    } else {
        AppError::NotFound("page").into_response()
    }
}
