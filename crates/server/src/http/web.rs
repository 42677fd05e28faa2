//! Server-rendered pages: login, logout, Dashboard and Settings, with their
//! forms. They work without JavaScript; `static/live.js` makes them live
//! (Server-Sent Events) and submits calendar switches without a reload.
//!
//! - `layout`: the frame, static assets, CSP; `html`: escaping and markup;
//! - `forms`: page-answering extractors, CSRF field check, flash messages;
//! - `login`, `dashboard`, `settings`: the pages; `connect`: CalDAV/ICS forms;
//!   `account`: Settings' account sections (email, API tokens, password,
//!   deleting the account) and their forms.

mod account;
mod connect;
mod dashboard;
mod forms;
mod html;
mod layout;
mod login;
mod settings;

use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::http::error::AppError;
use crate::state::AppState;

pub use dashboard::dashboard;
pub use login::{login, login_form, logout};
pub use settings::settings;

/// Every page route and the static assets.
pub fn routes() -> Router<AppState> {
    // A form's address opened directly (a bookmark, a typed URL) shows the
    // page the form lives on rather than a 405.
    let to_settings = || get(|| async { Redirect::to("/settings") });
    let pages = Router::new()
        .route("/", get(dashboard::dashboard))
        .route("/settings", get(settings::settings))
        .route(
            "/settings/timezone",
            to_settings().post(settings::set_timezone),
        )
        .route(
            "/settings/calendars/{id}",
            to_settings().post(settings::update_calendar),
        )
        .route(
            "/settings/calendars/{id}/removals",
            to_settings().post(settings::decide_removals),
        )
        .route(
            "/settings/connections/{id}/sync",
            to_settings().post(settings::sync_now),
        )
        .route(
            "/settings/connections/{id}/disconnect",
            to_settings().post(settings::disconnect),
        )
        .route("/settings/connect/{provider}", get(settings::start_connect))
        .route(
            "/settings/caldav",
            to_settings().post(settings::connect_caldav),
        )
        .route("/settings/ics", to_settings().post(settings::subscribe_ics))
        .route("/settings/email", to_settings().post(account::set_email))
        .route(
            "/settings/tokens",
            to_settings().post(account::create_token),
        )
        .route(
            "/settings/tokens/{id}/revoke",
            to_settings().post(account::revoke_token),
        )
        .route(
            "/settings/password",
            to_settings().post(account::change_password),
        )
        .route(
            "/settings/delete-account",
            to_settings().post(account::delete_account),
        )
        .route("/login", get(login::login_form).post(login::login))
        .route(
            "/logout",
            get(|| async { Redirect::to("/") }).post(login::logout),
        )
        .layer(middleware::from_fn(layout::page_headers));
    Router::new()
        .route("/static/app.css", get(layout::app_css))
        .route("/static/live.js", get(layout::live_js))
        .merge(pages)
}

/// Answers requests for unknown pages.
pub async fn not_found(headers: HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if wants_html {
        let mut response = (
            StatusCode::NOT_FOUND,
            Html(layout::page(
                "Not found",
                None,
                layout::Nav::None,
                None,
                "<h1>Not found</h1><p>There is no page here. <a href=\"/\">Back to the Dashboard</a></p>",
            )),
        )
            .into_response();
        if let Ok(csp) = header::HeaderValue::from_str(layout::CSP) {
            response
                .headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, csp);
        }
        response
    } else {
        AppError::NotFound("page").into_response()
    }
}
