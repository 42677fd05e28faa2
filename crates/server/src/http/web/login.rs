//! `GET/POST /login` and `POST /logout`.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use secrecy::SecretString;
use serde::Deserialize;

use super::forms::{PageError, WebForm, WebSession};
use super::html::escape;
use super::layout::{page, Nav};
use crate::accounts::{self, hash_token, SESSION_LIFETIME};
use crate::http::auth::{CSRF_COOKIE, SESSION_COOKIE};
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

/// Only paths on this site: never `//host` or `https://...`, so the login form
/// cannot be used to bounce a user to another site.
pub fn local_path(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains(['\\', '\r', '\n']) {
        next
    } else {
        "/"
    }
}

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
            escape(local_path(next)),
            escape(username)
        ),
    )
}

/// `GET /login`.
pub async fn login_form(Query(query): Query<NextQuery>) -> Html<String> {
    Html(login_page(None, "", &query.next))
}

/// `POST /login`: checks the password (rate limited), starts a session.
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    _origin_checked: WebSession,
    WebForm(form): WebForm<LoginForm>,
) -> Result<Response, PageError> {
    let limiter = &state.login_limiter;
    if let Err(wait) = limiter.check(&form.username, peer.ip(), Instant::now()) {
        let message = format!(
            "Too many failed attempts. Try again in {} minutes.",
            wait.div_ceil(60)
        );
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            Html(login_page(Some(&message), &form.username, &form.next)),
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
    .await
    .map_err(AppError::from)?;
    let Some(user) = user else {
        limiter.failed(&form.username, peer.ip(), Instant::now());
        tracing::info!(username = %form.username, "login failed");
        let page = login_page(
            Some("Wrong username or password."),
            &form.username,
            &form.next,
        );
        return Ok((StatusCode::UNAUTHORIZED, Html(page)).into_response());
    };
    limiter.succeeded(&form.username);
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
