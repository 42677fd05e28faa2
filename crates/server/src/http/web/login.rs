//! `GET/POST /login` and `POST /logout`.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use percent_encoding::percent_decode_str;
use secrecy::SecretString;
use serde::Deserialize;
use url::{Position, Url};

use super::forms::{PageError, WebForm, WebSession};
use super::html::escape;
use super::layout::{page, Nav};
use crate::accounts::{self, hash_token, SESSION_LIFETIME};
use crate::http::auth::{CSRF_COOKIE, SESSION_COOKIE};
use crate::http::client_addr::client_address;
use crate::http::csrf;
use crate::http::error::AppError;
use crate::http::extract::Query;
use crate::state::AppState;

/// The login form's fields.
#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// A form that carries nothing but the CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf_token: String,
}

/// `?next=` after login.
#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

/// Where to go after login: `next` when it is a path on this site, else `/`,
/// so the login form cannot bounce a user to another site.
///
/// Browsers drop tabs and newlines from a `Location`, read `\` as `/` and
/// `//host` as another host, so `/%09/evil.example` or `/\evil.example` would
/// leave. Refused: anything not starting with one `/`; control characters,
/// whitespace or backslashes anywhere, also percent-encoded (decoded up to
/// three times); `//` at the start, also encoded; and anything that, joined to
/// the public URL, has another origin. What is returned is the joined URL's
/// path, query and fragment as the `url` crate writes them (ASCII only,
/// always a valid header value).
pub fn local_path(next: &str, public_url: &str) -> String {
    same_origin_path(next, public_url).unwrap_or_else(|| "/".to_owned())
}

fn same_origin_path(next: &str, public_url: &str) -> Option<String> {
    let bad_char = |c: char| c.is_control() || c.is_whitespace() || c == '\\';
    let mut current = Cow::Borrowed(next);
    for round in 0.. {
        if !current.starts_with('/') || current.starts_with("//") || current.contains(bad_char) {
            return None;
        }
        let decoded = percent_decode_str(&current).decode_utf8().ok()?;
        if decoded == current {
            break;
        }
        if round == 3 {
            return None; // still encoded after three rounds: no path of ours is
        }
        current = Cow::Owned(decoded.into_owned());
    }
    let base = Url::parse(public_url).ok()?;
    let joined = base.join(next).ok()?;
    (joined.origin() == base.origin()
        && joined.username().is_empty()
        && joined.password().is_none())
    .then(|| joined[Position::BeforePath..].to_owned())
}

/// The form; `next` is a path [`local_path`] returned.
fn login_page(message: Option<&str>, username: &str, next: &str) -> String {
    let message = message.map_or(String::new(), |m| {
        format!("<p class=\"notice error\" role=\"alert\">{}</p>", escape(m))
    });
    page(
        "Log in",
        None,
        Nav::None,
        None,
        &format!(
            "<section class=\"narrow card\"><h1>Log in to calsync</h1>{message}\
             <form method=\"post\" action=\"/login\" class=\"stack\">\
             <input type=\"hidden\" name=\"next\" value=\"{}\">\
             <label for=\"username\">Username</label>\
             <input id=\"username\" name=\"username\" value=\"{}\" autocomplete=\"username\" required autofocus>\
             <label for=\"password\">Password</label>\
             <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
             <button type=\"submit\" class=\"primary\">Log in</button></form>\
             <p class=\"hint\">No account yet? An administrator creates one with <code>calsync user add NAME</code>.</p></section>",
            escape(next),
            escape(username)
        ),
    )
}

/// `GET /login`.
pub async fn login_form(
    State(state): State<AppState>,
    Query(query): Query<NextQuery>,
) -> Html<String> {
    let next = local_path(&query.next, &state.config.public_url);
    Html(login_page(None, "", &next))
}

/// "5 seconds", "1 second", "3 minutes" (rounded up).
fn wait_text(wait: Duration) -> String {
    let seconds = retry_after_secs(wait);
    match seconds {
        1 => "1 second".to_owned(),
        0..120 => format!("{seconds} seconds"),
        _ => format!("{} minutes", seconds.div_ceil(60)),
    }
}

/// Whole seconds, rounded up, at least one.
fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// `POST /login`: checks the password (throttled per client, see
/// `http::rate_limit`), starts a session.
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    _origin_checked: WebSession,
    WebForm(form): WebForm<LoginForm>,
) -> Result<Response, PageError> {
    let limiter = &state.login_limiter;
    let client = client_address(peer.ip(), &headers, &state.config.trusted_proxies);
    let next = local_path(&form.next, &state.config.public_url);
    if let Err(wait) = limiter.attempt(&form.username, client, Instant::now()) {
        // Never the typed username: it may be a password typed in the wrong field.
        tracing::debug!(%client, "login throttled");
        let message = format!(
            "Too many failed attempts. Try again in {}.",
            wait_text(wait)
        );
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            Html(login_page(Some(&message), &form.username, &next)),
        )
            .into_response();
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(retry_after_secs(wait)),
        );
        return Ok(response);
    }
    let user = accounts::check_login(
        &state.store,
        &form.username,
        SecretString::from(form.password),
    )
    .await
    .map_err(AppError::from)?;
    let Some(user) = user else {
        limiter.failed(&form.username, client, Instant::now());
        // The username only when it is an existing user's (escaped): a typed
        // one may be a password in the wrong field, or forge log lines.
        match state.store.user_by_name(&form.username).await {
            Ok(known) => {
                tracing::info!(user = %known.id, username = ?known.username, %client, "login failed")
            }
            Err(_) => tracing::info!(%client, "login failed for an unknown username"),
        }
        let page = login_page(Some("Wrong username or password."), &form.username, &next);
        return Ok((StatusCode::UNAUTHORIZED, Html(page)).into_response());
    };
    limiter.succeeded(&form.username, client, Instant::now());
    let (token, session) = accounts::start_session(&state.store, &user, state.clock.now())
        .await
        .map_err(AppError::from)?;
    tracing::info!(user = %user.id, "logged in");
    let secure = if state.config.is_https() {
        "; Secure"
    } else {
        ""
    };
    let max_age = SESSION_LIFETIME.as_secs();
    let mut response = Redirect::to(&next).into_response();
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
    session: WebSession,
    WebForm(form): WebForm<CsrfForm>,
) -> Result<Response, PageError> {
    if let Some(user) = session.0 {
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

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC: &str = "http://localhost:8000";

    #[test]
    fn next_keeps_paths_of_this_site() {
        for (next, want) in [
            ("/", "/"),
            ("/settings", "/settings"),
            ("/settings?tab=2#calendars", "/settings?tab=2#calendars"),
            ("/a/../settings", "/settings"),
            ("/search?q=100%25", "/search?q=100%25"),
            ("/caf%C3%A9", "/caf%C3%A9"),
            ("/café", "/caf%C3%A9"),
            ("/\u{FF0F}evil.example", "/%EF%BC%8Fevil.example"),
            ("/?next=//evil.example", "/?next=//evil.example"),
        ] {
            assert_eq!(local_path(next, PUBLIC), want, "{next:?}");
        }
        assert_eq!(
            local_path("/settings", "https://cal.example.com"),
            "/settings"
        );
    }

    #[test]
    fn next_never_leaves_the_site() {
        for next in [
            "",
            "settings",
            "https://evil.example/",
            "https:evil.example",
            "https:/evil.example",
            "javascript:alert(1)",
            "//evil.example",
            "///evil.example",
            "////evil.example",
            "/\\evil.example",
            "\\/evil.example",
            "/\t/evil.example",
            "/%09/evil.example",
            "/%0a/evil.example",
            "/%0D%0A/evil.example",
            "/\n/evil.example",
            "/\r/evil.example",
            "/%2F%2Fevil.example",
            "/%2f/evil.example",
            "%2F%2Fevil.example",
            "/%5Cevil.example",
            "/%5cevil.example",
            "/%255Cevil.example",
            "/%25252F%25252Fevil.example",
            "/%2525252F/evil.example",
            "/ /evil.example",
            "/%20/evil.example",
            "/\u{a0}/evil.example",
            "/\u{3000}/evil.example",
            "/\u{2028}/evil.example",
            "/%E2%80%A8/evil.example",
            "/\u{7f}/evil.example",
            "/%00/evil.example",
            "/%FF",
            " /settings",
            "/settings\n",
        ] {
            assert_eq!(local_path(next, PUBLIC), "/", "{next:?}");
        }
    }

    #[test]
    fn waits_read_well() {
        assert_eq!(wait_text(Duration::from_millis(200)), "1 second");
        assert_eq!(wait_text(Duration::from_millis(1_500)), "2 seconds");
        assert_eq!(wait_text(Duration::from_secs(119)), "119 seconds");
        assert_eq!(wait_text(Duration::from_secs(121)), "3 minutes");
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(4)), 4);
    }
}
