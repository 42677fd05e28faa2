//! `POST /api/calendar/sync/`: a manual sync of one connection or all of them.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use calsync_core::model::{ConnectionId, ConnectionStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::api::connections::not_found;
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
    body: Bytes,
) -> Result<(StatusCode, Json<SyncStarted>), AppError> {
    let request: SyncRequest = if body.iter().all(u8::is_ascii_whitespace) {
        SyncRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| AppError::bad_request("malformed_json", e.to_string()))?
    };
    let now = state.clock.now();
    let ids: Vec<i64> = match request.connection_id {
        Some(id) => {
            let id = ConnectionId(id);
            let connection = state
                .store
                .connection(user.id, id)
                .await
                .map_err(not_found("connection"))?;
            if connection.status == ConnectionStatus::NeedsReauth {
                return Err(AppError::Conflict(
                    "this connection must be reconnected before it can sync".into(),
                ));
            }
            state.store.request_sync(user.id, id, now).await?;
            vec![id.0]
        }
        None => {
            let mut started = Vec::new();
            for listed in state.store.list_connections(user.id).await? {
                let id = listed.connection.id;
                if state.store.request_sync(user.id, id, now).await? {
                    started.push(id.0);
                }
            }
            started
        }
    };
    state.wake_worker();
    Ok((
        StatusCode::ACCEPTED,
        Json(SyncStarted {
            connection_ids: ids,
        }),
    ))
}
