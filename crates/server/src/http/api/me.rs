//! `GET/PATCH /api/me/`: the caller's own settings (design.md §8): their
//! username (read-only), the email reminders go to, and the time zone their
//! pages are shown in. The Settings page calls the same service.

use axum::extract::State;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::accounts::{self, Profile};
use crate::http::auth::ApiUser;
use crate::http::error::{AppError, ErrorBody};
use crate::http::extract::Json;
use crate::state::AppState;

/// The caller's own settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeJson {
    pub username: String,
    /// Where reminders go; null until set.
    pub email: Option<String>,
    /// The IANA zone times are shown in, e.g. `Europe/Berlin`.
    pub timezone: String,
}

impl From<Profile> for MeJson {
    fn from(profile: Profile) -> Self {
        Self {
            username: profile.username,
            email: profile.email,
            timezone: profile.timezone,
        }
    }
}

/// Changes to the caller's settings; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MePatchJson {
    /// Read-only: accepted only when it is the current username, so a
    /// client may send back what `GET` gave it.
    pub username: Option<String>,
    /// An email address (at most 254 characters); null or `""` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub email: Option<Option<String>>,
    /// An IANA time zone name known to calsync, e.g. `America/New_York`.
    pub timezone: Option<String>,
}

/// Tells a field sent as null (`Some(None)`) from one left out (`None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// The caller's own settings.
#[utoipa::path(get, path = "/api/me/", tag = "me", operation_id = "get_me",
    responses((status = 200, body = MeJson), (status = 401, body = ErrorBody)))]
pub async fn get(State(state): State<AppState>, user: ApiUser) -> Result<Json<MeJson>, AppError> {
    Ok(Json(accounts::profile(&state.store, user.id).await?.into()))
}

/// Changes the caller's email and/or time zone. Both are checked before
/// either is written: a bad zone is 422 `invalid_timezone`, a bad address
/// 422 `invalid_email`, another username 422 `read_only`.
#[utoipa::path(patch, path = "/api/me/", tag = "me", operation_id = "update_me",
    request_body = MePatchJson,
    responses((status = 200, body = MeJson), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch(
    State(state): State<AppState>,
    user: ApiUser,
    Json(body): Json<MePatchJson>,
) -> Result<Json<MeJson>, AppError> {
    if let Some(username) = &body.username {
        let current = accounts::profile(&state.store, user.id).await?;
        if *username != current.username {
            return Err(AppError::invalid(
                "read_only",
                "the username cannot be changed here; an administrator can create a new user",
            ));
        }
    }
    let profile = accounts::update_profile(
        &state,
        user.id,
        body.email.as_ref().map(Option::as_deref),
        body.timezone.as_deref(),
    )
    .await?;
    Ok(Json(profile.into()))
}
