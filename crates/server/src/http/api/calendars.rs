//! `GET /api/calendar/calendars/` and `PATCH /api/calendar/calendars/<id>/`.

use axum::extract::State;
use calsync_core::model::CalendarId;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::http::api::connections::CalendarJson;
use crate::http::auth::ApiUser;
use crate::http::error::{AppError, ErrorBody};
use crate::http::extract::{Json, Path};
use crate::state::AppState;

/// The user's choices for one calendar; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarPatchJson {
    pub enabled: Option<bool>,
    /// `#rrggbb`.
    pub color: Option<String>,
}

/// The caller's calendars, across all connections.
#[utoipa::path(get, path = "/api/calendar/calendars/", tag = "calendars", operation_id = "list_calendars",
    responses((status = 200, body = Vec<CalendarJson>), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    user: ApiUser,
) -> Result<Json<Vec<CalendarJson>>, AppError> {
    let calendars = state.store.list_calendars(user.id).await?;
    Ok(Json(
        calendars.into_iter().map(CalendarJson::from).collect(),
    ))
}

/// Turns a calendar on or off, or changes its colour.
#[utoipa::path(patch, path = "/api/calendar/calendars/{id}/", tag = "calendars",
    params(("id" = i64, Path, description = "calendar id")),
    request_body = CalendarPatchJson,
    responses((status = 200, body = CalendarJson), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
    Json(body): Json<CalendarPatchJson>,
) -> Result<Json<CalendarJson>, AppError> {
    let calendar = crate::calendars::update_calendar(
        &state,
        user.id,
        CalendarId(id),
        body.enabled,
        body.color.as_deref(),
    )
    .await?;
    Ok(Json(calendar.into()))
}
