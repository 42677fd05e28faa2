//! Connecting providers: Google and Microsoft OAuth, CalDAV logins, ICS feeds.
//!
//! Thin handlers over [`crate::connect`]: OAuth providers answer 503
//! `provider_not_configured` when the server lacks their client id; CalDAV
//! and ICS need no registration.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use axum::http::StatusCode;
use calsync_core::model::{ConnectionId, Provider, UserId};
use secrecy::SecretString;

use crate::connect;
use crate::http::api::connections::ConnectionJson;
use crate::http::auth::{ApiUser, PageSession};
use crate::http::error::{AppError, ErrorBody};
use crate::http::extract::{Json, Query};
use crate::state::AppState;

/// `{server_url, username, password, allow_insecure?}` of a CalDAV account
/// (Apple: an app-specific password).
// The password is a `SecretString`: `Debug` shows `[REDACTED]`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaldavConnectRequest {
    /// `https://` is assumed without a scheme. A plain `http://` URL is
    /// refused (422 `insecure_url`) unless `allow_insecure` is true or the
    /// server allows private addresses.
    pub server_url: String,
    pub username: String,
    #[serde(deserialize_with = "secret")]
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    /// Send the password to a plain `http://` server URL, unencrypted; the
    /// connection then says `insecure: true`.
    #[serde(default)]
    pub allow_insecure: bool,
}

/// `{url, name?}` of an ICS feed. `webcal://` is fetched over `https://`,
/// or over plain `http://` when the feed has no TLS server (the connection
/// then says `insecure: true`).
// The URL may hold the feed's key: a `SecretString`, `[REDACTED]` in `Debug`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IcsSubscribeRequest {
    #[serde(deserialize_with = "secret")]
    #[schema(value_type = String)]
    pub url: SecretString,
    pub name: Option<String>,
}

/// A JSON string straight into a [`SecretString`].
fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
    String::deserialize(d).map(SecretString::from)
}

/// `{authorization_url}`: where to send the browser to connect an account.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorizationJson {
    pub authorization_url: String,
}

/// Starts connecting Google Calendar: a redirect to Google's consent page, or
/// its URL as JSON for `Accept: application/json`.
#[utoipa::path(get, path = "/api/calendar/google/authorize/", tag = "providers",
    responses((status = 200, body = AuthorizationJson, description = "with Accept: application/json"),
        (status = 302, description = "to Google's consent page"), (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn google_authorize(
    State(state): State<AppState>,
    user: ApiUser,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    authorize(&state, &user, &headers, Provider::Google).await
}

/// Google's redirect back after consent: stores the connection and returns to
/// Settings, with `?connected=google` or `?error=<code>`.
#[utoipa::path(get, path = "/api/calendar/google/callback/", tag = "providers",
    params(("code" = Option<String>, Query), ("state" = Option<String>, Query),
        ("error" = Option<String>, Query)),
    responses((status = 303, description = "to Settings, with the outcome")))]
pub async fn google_callback(
    State(state): State<AppState>,
    session: PageSession,
    Query(callback): Query<connect::Callback>,
) -> Response {
    callback_to_settings(&state, session, callback, Provider::Google).await
}

/// Starts connecting Outlook / Microsoft 365: a redirect to Microsoft's
/// consent page, or its URL as JSON for `Accept: application/json`.
#[utoipa::path(get, path = "/api/calendar/microsoft/authorize/", tag = "providers",
    responses((status = 200, body = AuthorizationJson, description = "with Accept: application/json"),
        (status = 302, description = "to Microsoft's consent page"), (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn microsoft_authorize(
    State(state): State<AppState>,
    user: ApiUser,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    authorize(&state, &user, &headers, Provider::Microsoft).await
}

/// Microsoft's redirect back after consent: stores the connection and
/// returns to Settings, with `?connected=microsoft` or `?error=<code>`.
#[utoipa::path(get, path = "/api/calendar/microsoft/callback/", tag = "providers",
    params(("code" = Option<String>, Query), ("state" = Option<String>, Query),
        ("error" = Option<String>, Query), ("error_description" = Option<String>, Query)),
    responses((status = 303, description = "to Settings, with the outcome")))]
pub async fn microsoft_callback(
    State(state): State<AppState>,
    session: PageSession,
    Query(callback): Query<connect::Callback>,
) -> Response {
    callback_to_settings(&state, session, callback, Provider::Microsoft).await
}

async fn authorize(
    state: &AppState,
    user: &ApiUser,
    headers: &HeaderMap,
    provider: Provider,
) -> Result<Response, AppError> {
    let url = connect::start_oauth(state, user.id, provider)
        .await
        .map_err(AppError::from)?;
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    Ok(if wants_json {
        Json(AuthorizationJson {
            authorization_url: url,
        })
        .into_response()
    } else {
        Redirect::to(&url).into_response()
    })
}

async fn callback_to_settings(
    state: &AppState,
    session: PageSession,
    callback: connect::Callback,
    provider: Provider,
) -> Response {
    let Some(user) = session.user else {
        return Redirect::to("/login?next=/settings").into_response();
    };
    match connect::finish_oauth(state, user.id, provider, callback).await {
        Ok(_) => {
            Redirect::to(&format!("/settings?connected={}", provider.as_str())).into_response()
        }
        Err(err) => {
            tracing::warn!(user = %user.id, provider = provider.as_str(), error = %err, "connecting failed");
            Redirect::to(&format!("/settings?error={}", err.code())).into_response()
        }
    }
}

/// Connects a CalDAV account (Apple iCloud, Fastmail, Nextcloud, ...):
/// discovers its calendars with the given login, stores it sealed, and
/// starts the first sync.
#[utoipa::path(post, path = "/api/calendar/caldav/connect/", tag = "providers", request_body = CaldavConnectRequest,
    responses((status = 201, body = ConnectionJson, description = "the new (or reconnected) connection"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "wrong_credentials, invalid_url, insecure_url (plain http:// without allow_insecure), invalid_input"),
        (status = 502, body = ErrorBody)))]
pub async fn caldav_connect(
    State(state): State<AppState>,
    user: ApiUser,
    Json(body): Json<CaldavConnectRequest>,
) -> Result<(StatusCode, Json<ConnectionJson>), AppError> {
    let credentials = connect::CaldavCredentials {
        server_url: body.server_url,
        username: body.username,
        password: body.password,
        allow_insecure: body.allow_insecure,
    };
    let id = connect::connect_caldav(&state, user.id, credentials).await?;
    created(&state, user.id, id).await
}

/// Subscribes to an ICS feed (`webcal://` accepted: https first, then plain
/// http): fetches it once to check it, stores the URL sealed, and starts the
/// first sync.
#[utoipa::path(post, path = "/api/calendar/ics/subscribe/", tag = "providers", request_body = IcsSubscribeRequest,
    responses((status = 201, body = ConnectionJson, description = "the new (or existing) subscription"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "invalid_url, invalid_input"),
        (status = 502, body = ErrorBody, description = "the feed could not be fetched or read")))]
pub async fn ics_subscribe(
    State(state): State<AppState>,
    user: ApiUser,
    Json(body): Json<IcsSubscribeRequest>,
) -> Result<(StatusCode, Json<ConnectionJson>), AppError> {
    let feed = connect::IcsFeed {
        url: body.url,
        name: body.name,
    };
    let id = connect::subscribe_ics(&state, user.id, feed).await?;
    created(&state, user.id, id).await
}

/// 201 with the connection as the connections list shows it.
async fn created(
    state: &AppState,
    user: UserId,
    id: ConnectionId,
) -> Result<(StatusCode, Json<ConnectionJson>), AppError> {
    let connection = state
        .store
        .list_connections(user)
        .await?
        .into_iter()
        .find(|c| c.connection.id == id)
        .ok_or(AppError::NotFound("connection"))?;
    Ok((StatusCode::CREATED, Json(connection.into())))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn requests_never_show_their_secrets_in_debug() {
        let caldav: CaldavConnectRequest = serde_json::from_value(serde_json::json!({
            "server_url": "https://dav.example.com/", "username": "ada",
            "password": "app-pw-31337", "allow_insecure": false
        }))
        .unwrap();
        let shown = format!("{caldav:?}");
        assert!(
            !shown.contains("app-pw-31337") && shown.contains("ada"),
            "{shown}"
        );
        let feed: IcsSubscribeRequest = serde_json::from_value(serde_json::json!({
            "url": "https://calendar.example.com/private-k3y/basic.ics", "name": "Club"
        }))
        .unwrap();
        let shown = format!("{feed:?}");
        assert!(
            !shown.contains("private-k3y") && shown.contains("Club"),
            "{shown}"
        );
        // Unknown fields stay refused; allow_insecure is optional.
        assert!(
            serde_json::from_value::<CaldavConnectRequest>(serde_json::json!({
                "server_url": "x", "username": "a", "password": "b", "insecure": true
            }))
            .is_err()
        );
        let plain: CaldavConnectRequest = serde_json::from_value(serde_json::json!({
            "server_url": "x", "username": "a", "password": "b"
        }))
        .unwrap();
        assert!(!plain.allow_insecure);
    }
}
