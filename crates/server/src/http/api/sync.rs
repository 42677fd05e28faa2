//! `POST /api/calendar/sync/`: a manual sync of one connection or all of them.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use calsync_core::model::ConnectionId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::auth::ApiUser;
use crate::http::error::{AppError, ErrorBody};
use crate::http::extract::Json;
use crate::state::AppState;

/// Which connection to sync; all of the caller's when absent. The body may be empty.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    pub connection_id: Option<i64>,
}

/// The connections whose sync was started (those needing reconnection are left out).
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncStarted {
    pub connection_ids: Vec<i64>,
}

/// Starts a sync now; the result arrives on the stream and in the connection's status.
#[utoipa::path(post, path = "/api/calendar/sync/", tag = "sync", request_body(content = SyncRequest),
    responses((status = 202, body = SyncStarted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    user: ApiUser,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<SyncStarted>), AppError> {
    // Axum's own rejection of a body over the limit is plain text; every
    // API error is the JSON envelope.
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge(crate::http::BODY_LIMIT),
        _ => AppError::bad_request("bad_body", rejection.body_text()),
    })?;
    let request: SyncRequest = if body.iter().all(u8::is_ascii_whitespace) {
        SyncRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| AppError::bad_request("malformed_json", e.to_string()))?
    };
    let ids =
        crate::calendars::request_sync(&state, user.id, request.connection_id.map(ConnectionId))
            .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(SyncStarted {
            connection_ids: ids,
        }),
    ))
}
