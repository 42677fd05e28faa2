//! HTTP: the router, its limits and middleware. Handlers stay thin and answer
//! errors through [`error::AppError`] only.
//!
//! - `api`: the JSON API under `/api/calendar/`, `/api/me/` and
//!   `/api/tokens/`; `web`: the pages;
//! - `auth` and `csrf`: who is asking, and proof that a cookie write is ours;
//! - `ops`: health, readiness, metrics; `openapi`: the API's description.

pub mod api;
pub mod auth;
pub mod client_addr;
pub mod csrf;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod ops;
pub mod rate_limit;
pub mod web;

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::Router;

use crate::state::AppState;
use error::AppError;

/// Request bodies larger than this are refused (413): no API body needs more.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Every route of calsync.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/google/authorize/", get(api::providers::google_authorize))
        .route("/google/callback/", get(api::providers::google_callback))
        .route(
            "/microsoft/authorize/",
            get(api::providers::microsoft_authorize),
        )
        .route(
            "/microsoft/callback/",
            get(api::providers::microsoft_callback),
        )
        .route("/caldav/connect/", post(api::providers::caldav_connect))
        .route("/ics/subscribe/", post(api::providers::ics_subscribe))
        .route("/connections/", get(api::connections::list))
        .route(
            "/connections/{id}/disconnect/",
            post(api::connections::disconnect),
        )
        .route("/calendars/", get(api::calendars::list))
        .route("/calendars/{id}/", patch(api::calendars::patch))
        .route(
            "/calendars/{id}/removals/",
            post(api::calendars::decide_removals),
        )
        .route("/sync/", post(api::sync::start))
        .route("/events/upcoming/", get(api::events::upcoming))
        .route("/events/", get(api::events::range))
        .route("/events/stream/", get(api::stream::stream))
        .fallback(api_not_found)
        .method_not_allowed_fallback(method_not_allowed);
    Router::new()
        .nest("/api/calendar", api)
        .route("/api/me/", get(api::me::get).patch(api::me::patch))
        .route(
            "/api/tokens/",
            get(api::tokens::list).post(api::tokens::create),
        )
        .route("/api/tokens/{id}/", delete(api::tokens::revoke))
        .route("/api/openapi.json", get(openapi_json))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .merge(web::routes())
        .fallback(web::not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn api_not_found() -> AppError {
    AppError::NotFound("endpoint")
}

async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}

async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::document(),
    )
}

/// Counts and logs each request by its route template; adds the headers every
/// answer carries.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let mut response = next.run(request).await;
    let status = response.status();
    let seconds = started.elapsed().as_secs_f64();
    state
        .metrics
        .record(method.as_str(), &route, status.as_u16(), seconds);
    if status.is_server_error() {
        tracing::warn!(%method, %route, status = status.as_u16(), "request failed");
    } else {
        tracing::debug!(%method, %route, status = status.as_u16(), ms = seconds * 1e3, "request");
    }
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if status == StatusCode::UNAUTHORIZED
        && !headers.contains_key(header::WWW_AUTHENTICATE)
        && route.starts_with("/api/")
    {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}
