//! `GET /api/calendar/calendars/`, `PATCH /api/calendar/calendars/<id>/` and
//! `POST /api/calendar/calendars/<id>/removals/`.

use axum::extract::State;
use calsync_core::model::CalendarId;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::http::api::connections::{CalendarJson, RemovalDecisionJson};
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

/// The decision about removals a sync held back on a calendar.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemovalsJson {
    pub decision: RemovalDecisionJson,
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

/// Decides about the removals the last sync held back on a calendar (the
/// connection is `held`): `apply` removes the events (or, for a `vanished`
/// calendar, the calendar itself), `reject` keeps them. The decision is
/// recorded and a sync of the connection starts at once to carry it out;
/// 409 when nothing is held.
#[utoipa::path(post, path = "/api/calendar/calendars/{id}/removals/", tag = "calendars",
    operation_id = "decide_removals",
    params(("id" = i64, Path, description = "calendar id")),
    request_body = RemovalsJson,
    responses((status = 200, body = CalendarJson, description = "the calendar with the decision recorded"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "nothing is held on this calendar"),
        (status = 422, body = ErrorBody)))]
pub async fn decide_removals(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
    Json(body): Json<RemovalsJson>,
) -> Result<Json<CalendarJson>, AppError> {
    let calendar =
        crate::calendars::decide_removals(&state, user.id, CalendarId(id), body.decision.into())
            .await?;
    Ok(Json(calendar.into()))
}
