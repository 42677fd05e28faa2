//! Connecting providers: Google and Microsoft OAuth, CalDAV logins, ICS feeds.
//!
//! The paths and their bodies are final; the provider work behind them arrives
//! with each provider. Until then each answers a clear JSON error: 503
//! `provider_not_configured` when the server lacks the provider's client id,
//! else 501 `not_implemented`.

use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::config::OAuthProvider;
use crate::http::auth::ApiUser;
use crate::http::error::{AppError, ErrorBody};
use crate::http::extract::Json;
use crate::state::AppState;

/// `{server_url, username, password}` of a CalDAV account (Apple: an app-specific password).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaldavConnectRequest {
    pub server_url: String,
    pub username: String,
    pub password: String,
}

/// `{url, name?}` of an ICS feed; `webcal://` is accepted.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IcsSubscribeRequest {
    pub url: String,
    pub name: Option<String>,
}

fn configured(
    provider: Option<&OAuthProvider>,
    name: &'static str,
    env: &'static str,
) -> Result<(), AppError> {
    provider
        .map(|_| ())
        .ok_or(AppError::ProviderNotConfigured(name, env))
}

fn http_url(field: &'static str, url: &str, schemes: &[&str]) -> Result<(), AppError> {
    let ok = url.len() <= 2048
        && schemes.iter().any(|s| {
            url.strip_prefix(s)
                .is_some_and(|rest| rest.len() > 3 && rest.starts_with("://"))
        });
    ok.then_some(()).ok_or_else(|| {
        AppError::invalid(
            "invalid_url",
            format!("{field} must be an {} URL", schemes.join("/")),
        )
    })
}

/// Starts connecting Google Calendar.
#[utoipa::path(get, path = "/api/calendar/google/authorize/", tag = "providers",
    responses((status = 302, description = "to Google's consent page"), (status = 401, body = ErrorBody),
        (status = 501, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn google_authorize(
    State(state): State<AppState>,
    _user: ApiUser,
) -> Result<(), AppError> {
    configured(
        state.config.google.as_ref(),
        "Google Calendar",
        "CALSYNC_GOOGLE_CLIENT_ID and CALSYNC_GOOGLE_CLIENT_SECRET",
    )?;
    Err(AppError::NotImplemented(
        "connecting Google Calendar arrives with the Google provider",
    ))
}

/// Google's redirect back after consent.
#[utoipa::path(get, path = "/api/calendar/google/callback/", tag = "providers",
    responses((status = 302, description = "to Settings"), (status = 401, body = ErrorBody),
        (status = 501, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn google_callback(State(state): State<AppState>, user: ApiUser) -> Result<(), AppError> {
    google_authorize(State(state), user).await
}

/// Starts connecting Outlook / Microsoft 365.
#[utoipa::path(get, path = "/api/calendar/microsoft/authorize/", tag = "providers",
    responses((status = 302, description = "to Microsoft's consent page"), (status = 401, body = ErrorBody),
        (status = 501, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn microsoft_authorize(
    State(state): State<AppState>,
    _user: ApiUser,
) -> Result<(), AppError> {
    configured(
        state.config.microsoft.as_ref(),
        "Outlook / Microsoft 365",
        "CALSYNC_MICROSOFT_CLIENT_ID and CALSYNC_MICROSOFT_CLIENT_SECRET",
    )?;
    Err(AppError::NotImplemented(
        "connecting Microsoft calendars arrives with the Microsoft provider",
    ))
}

/// Microsoft's redirect back after consent.
#[utoipa::path(get, path = "/api/calendar/microsoft/callback/", tag = "providers",
    responses((status = 302, description = "to Settings"), (status = 401, body = ErrorBody),
        (status = 501, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn microsoft_callback(
    State(state): State<AppState>,
    user: ApiUser,
) -> Result<(), AppError> {
    microsoft_authorize(State(state), user).await
}

/// Connects a CalDAV account (Apple iCloud, Fastmail, Nextcloud, ...).
#[utoipa::path(post, path = "/api/calendar/caldav/connect/", tag = "providers", request_body = CaldavConnectRequest,
    responses((status = 201, description = "the new connection"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 501, body = ErrorBody)))]
pub async fn caldav_connect(
    _user: ApiUser,
    Json(body): Json<CaldavConnectRequest>,
) -> Result<(), AppError> {
    http_url("server_url", &body.server_url, &["https", "http"])?;
    if body.username.is_empty() || body.password.is_empty() {
        return Err(AppError::invalid(
            "invalid_credentials",
            "username and password are required",
        ));
    }
    Err(AppError::NotImplemented(
        "CalDAV accounts arrive with the CalDAV provider",
    ))
}

/// Subscribes to an ICS feed.
#[utoipa::path(post, path = "/api/calendar/ics/subscribe/", tag = "providers", request_body = IcsSubscribeRequest,
    responses((status = 201, description = "the new connection"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 501, body = ErrorBody)))]
pub async fn ics_subscribe(
    _user: ApiUser,
    Json(body): Json<IcsSubscribeRequest>,
) -> Result<(), AppError> {
    http_url("url", &body.url, &["https", "http", "webcal"])?;
    Err(AppError::NotImplemented(
        "ICS feed subscriptions arrive with the ICS provider",
    ))
}
