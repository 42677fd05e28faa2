//! Operations endpoints: `/healthz` (the process answers), `/readyz` (the
//! database answers and the sync worker runs) and `/metrics` (Prometheus
//! text, with the sync backlog read from the database; behind a bearer token
//! when `CALSYNC_METRICS_TOKEN` is set).

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use secrecy::ExposeSecret as _;
use serde::Serialize;
use subtle::ConstantTimeEq as _;
use utoipa::ToSchema;

use crate::http::error::{AppError, ErrorBody};
use crate::http::extract::Json;
use crate::state::AppState;

/// `{"status": "ok"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// Liveness: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// How long `/metrics` waits for the backlog before it answers without it.
const BACKLOG_TIMEOUT: Duration = Duration::from_secs(3);

/// Readiness: the database answers and the sync worker runs (503
/// `sync_worker_down` when it has not beaten within 30 s or has stopped).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = ErrorBody)))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, AppError> {
    state
        .store
        .ping()
        .await
        .map_err(|_| AppError::Unavailable)?;
    if !state.metrics.sync.worker_alive() {
        return Err(AppError::SyncWorkerDown);
    }
    Ok(Json(Health { status: "ok" }))
}

/// Prometheus metrics; with `CALSYNC_METRICS_TOKEN` set, only for
/// `Authorization: Bearer <that token>`.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, content_type = "text/plain; version=0.0.4", body = String),
        (status = 401, body = ErrorBody)))]
pub async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, AppError> {
    if let Some(expected) = &state.config.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let matches: bool = given
            .as_bytes()
            .ct_eq(expected.expose_secret().as_bytes())
            .into();
        if !matches {
            return Err(AppError::Unauthenticated);
        }
    }
    let now = state.clock.now();
    let backlog = match tokio::time::timeout(BACKLOG_TIMEOUT, state.store.sync_backlog(now)).await {
        Ok(Ok(backlog)) => Some(backlog),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "metrics without the sync backlog: the database failed");
            None
        }
        Err(_) => {
            tracing::warn!("metrics without the sync backlog: the database did not answer in time");
            None
        }
    };
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state
            .metrics
            .render_with_backlog(backlog.as_ref().map(|b| (b, now))),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use axum::http::StatusCode;
    use calsync_core::clock::FixedClock;
    use calsync_store::testing::{self, fresh_store};
    use calsync_store::BackendKind;
    use jiff::Timestamp;
    use tokio::sync::watch;

    use super::*;
    use crate::config::{Config, ConfigArgs};
    use crate::providers::Providers;

    const NOW: i64 = 1_790_000_000;

    /// State over a fresh SQLite store, with the clock at `NOW`.
    async fn state() -> AppState {
        let store = fresh_store(BackendKind::Sqlite).await.unwrap();
        let config = Config::load(&ConfigArgs::default(), None).unwrap();
        let providers = Providers::from_config(&config).unwrap();
        let (_, stopping) = watch::channel(false);
        let clock = Arc::new(FixedClock(Timestamp::from_second(NOW).unwrap()));
        AppState::new(store, config, providers, clock, stopping)
    }

    async fn metrics_text(state: &AppState) -> String {
        let response = metrics(State(state.clone()), HeaderMap::new())
            .await
            .into_response();
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn ready_while_the_worker_beats_and_the_database_answers() {
        let state = state().await;
        let down = readyz(State(state.clone())).await.unwrap_err();
        assert!(matches!(down, AppError::SyncWorkerDown), "{down:?}");
        assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(down.to_string(), "the sync worker is not running");

        state.metrics.sync.worker_beat();
        assert_eq!(readyz(State(state.clone())).await.unwrap().0.status, "ok");

        state.metrics.sync.worker_stopped();
        assert!(matches!(
            readyz(State(state.clone())).await,
            Err(AppError::SyncWorkerDown)
        ));

        state.metrics.sync.worker_beat();
        state.store.close().await;
        assert!(matches!(
            readyz(State(state.clone())).await,
            Err(AppError::Unavailable)
        ));
    }

    #[tokio::test]
    async fn metrics_show_the_backlog_and_do_without_it_when_the_database_fails() {
        let state = state().await;
        let user = state
            .store
            .create_user(
                "alice",
                "$argon2id$fake",
                Timestamp::from_second(NOW).unwrap(),
            )
            .await
            .unwrap()
            .id
            .0;
        testing::execute(
            &state.store,
            &format!(
                "INSERT INTO connections (user_id, provider, account_id, status, next_sync_at, \
                                          created_at, updated_at) \
                 VALUES ({user}, 'ics', 'feed', 'ok', {}, {NOW}, {NOW})",
                NOW - 90
            ),
        )
        .await;
        let text = metrics_text(&state).await;
        for line in [
            "calsync_sync_due_connections 1",
            "calsync_sync_oldest_due_age_seconds 90",
            "calsync_sync_leased_connections 0",
            "calsync_sync_worker_up 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }

        state.store.close().await;
        let text = metrics_text(&state).await;
        assert!(!text.contains("calsync_sync_due_connections"), "{text}");
        assert!(!text.contains("calsync_sync_leased_connections"), "{text}");
        assert!(text.contains("calsync_sync_rounds_in_flight 0"), "{text}");
        assert!(text.contains("calsync_uptime_seconds"), "{text}");
    }
}
