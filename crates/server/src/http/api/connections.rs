//! `GET /api/calendar/connections/` and `POST .../connections/<id>/disconnect/`.

use axum::extract::State;
use calsync_core::clock::{Clock, SystemClock};
use calsync_core::model::{
    Calendar, Connection, ConnectionId, ConnectionStatus, RemovalDecision, SyncRun, WaitReason,
};
use calsync_store::ConnectionWithCalendars;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::api::rfc3339;
use crate::http::auth::ApiUser;
use crate::http::error::{AppError, ErrorBody};
use crate::http::extract::{Json, Path};
use crate::state::AppState;

/// A connected provider account, with its calendars and sync status.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionJson {
    pub id: i64,
    /// `google`, `microsoft`, `caldav` or `ics`.
    pub provider: String,
    pub account_email: Option<String>,
    /// `pending`, `syncing`, `ok`, `error`, `needs_reauth` or `held` (a round
    /// would have removed most of a calendar, or a calendar itself: nothing
    /// was removed, and a calendar's `held_removals` waits for a decision).
    pub status: String,
    /// True when the provider refused the stored tokens: the user must reconnect.
    pub needs_reauth: bool,
    /// True when calsync reaches this account without TLS: a CalDAV server on
    /// plain `http://` (its password travels unencrypted) or an ICS feed
    /// fetched over `http://` (e.g. a `webcal://` feed with no https server).
    pub insecure: bool,
    pub last_synced_at: Option<String>,
    pub last_error: Option<String>,
    pub created_at: String,
    /// Failed syncs in a row; the scheduler waits longer after each.
    pub consecutive_failures: u32,
    /// When the next sync is due (while one runs: when it was due).
    pub next_sync_at: Option<String>,
    /// Why the next sync waits longer than usual, while it does; null otherwise.
    pub waiting: Option<WaitingJson>,
    pub calendars: Vec<CalendarJson>,
    /// The latest sync runs, newest first.
    pub recent_runs: Vec<SyncRunJson>,
}

/// Why a connection's next sync waits beyond the sync interval, and until when.
#[derive(Debug, Serialize, ToSchema)]
pub struct WaitingJson {
    /// `backoff`: syncs failed in a row, each doubles the wait (up to six
    /// hours); `rate_limited`: the provider asked calsync to come back later.
    pub reason: WaitReasonJson,
    /// When the next sync is due.
    pub until: String,
}

/// Why a connection waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WaitReasonJson {
    Backoff,
    RateLimited,
}

impl From<WaitReason> for WaitReasonJson {
    fn from(reason: WaitReason) -> Self {
        match reason {
            WaitReason::Backoff => Self::Backoff,
            WaitReason::RateLimited => Self::RateLimited,
        }
    }
}

/// What to do with removals a sync held back: `apply` removes them, `reject`
/// keeps the events (later changes go on syncing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RemovalDecisionJson {
    Apply,
    Reject,
}

impl From<RemovalDecision> for RemovalDecisionJson {
    fn from(decision: RemovalDecision) -> Self {
        match decision {
            RemovalDecision::Apply => Self::Apply,
            RemovalDecision::Reject => Self::Reject,
        }
    }
}

impl From<RemovalDecisionJson> for RemovalDecision {
    fn from(decision: RemovalDecisionJson) -> Self {
        match decision {
            RemovalDecisionJson::Apply => Self::Apply,
            RemovalDecisionJson::Reject => Self::Reject,
        }
    }
}

/// The wait of a connection at `now`: only while its next sync is still
/// ahead and a reason was recorded.
pub fn waiting(c: &Connection, now: Timestamp) -> Option<(WaitReason, Timestamp)> {
    let until = c.next_sync_at.filter(|t| *t > now)?;
    Some((c.wait_reason?, until))
}

/// One sync of a connection.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncRunJson {
    pub started_at: String,
    pub finished_at: Option<String>,
    /// `ok`, `error` or `needs_reauth`; null while running.
    pub outcome: Option<String>,
    /// Requests made to the provider.
    pub requests: u64,
    /// Events added, changed or removed.
    pub changes: u64,
    pub error: Option<String>,
}

impl From<SyncRun> for SyncRunJson {
    fn from(run: SyncRun) -> Self {
        Self {
            started_at: rfc3339(run.started_at),
            finished_at: run.finished_at.map(rfc3339),
            outcome: run.outcome,
            requests: run.requests,
            changes: run.changes,
            error: run.error,
        }
    }
}

/// A calendar with the user's on/off and colour choices.
#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarJson {
    pub id: i64,
    pub connection_id: i64,
    pub name: String,
    /// `#rrggbb`.
    pub color: String,
    pub enabled: bool,
    pub is_primary: bool,
    pub timezone: Option<String>,
    pub access_role: Option<String>,
    pub last_synced_at: Option<String>,
    /// Events the last sync would have removed and held back instead (the
    /// connection is `held`); null when nothing is held.
    pub held_removals: Option<u64>,
    /// The decision about the held removals, carried out by the next sync;
    /// null until one is made.
    pub removal_decision: Option<RemovalDecisionJson>,
    /// The provider no longer lists this calendar (two listings in a row):
    /// applying the held removals removes the calendar itself.
    pub vanished: bool,
}

/// Listings in a row without a calendar after which it would be removed.
pub const VANISHED_AFTER: u32 = 2;

impl From<Calendar> for CalendarJson {
    fn from(c: Calendar) -> Self {
        Self {
            id: c.id.0,
            connection_id: c.connection_id.0,
            name: c.name,
            color: c.color,
            enabled: c.enabled,
            is_primary: c.is_primary,
            timezone: c.timezone,
            access_role: c.access_role,
            last_synced_at: c.last_synced_at.map(rfc3339),
            held_removals: c.held_removals,
            removal_decision: c.removal_decision.map(RemovalDecisionJson::from),
            vanished: c.missing_listings >= VANISHED_AFTER,
        }
    }
}

impl From<ConnectionWithCalendars> for ConnectionJson {
    /// The connection as of the system clock; handlers with a state at hand
    /// use [`ConnectionJson::at`] with its clock.
    fn from(c: ConnectionWithCalendars) -> Self {
        Self::at(c, SystemClock.now())
    }
}

impl ConnectionJson {
    /// The connection as it stands at `now` (whether it is still waiting).
    pub fn at(
        ConnectionWithCalendars {
            connection: c,
            calendars,
            recent_runs,
        }: ConnectionWithCalendars,
        now: Timestamp,
    ) -> Self {
        let waiting = waiting(&c, now).map(|(reason, until)| WaitingJson {
            reason: reason.into(),
            until: rfc3339(until),
        });
        let insecure = crate::connect::insecure(&c);
        Self {
            id: c.id.0,
            provider: c.provider.as_str().to_owned(),
            account_email: c.account_email,
            status: c.status.as_str().to_owned(),
            needs_reauth: c.status == ConnectionStatus::NeedsReauth,
            insecure,
            last_synced_at: c.last_synced_at.map(rfc3339),
            last_error: c.last_error,
            created_at: rfc3339(c.created_at),
            consecutive_failures: c.consecutive_failures,
            next_sync_at: c.next_sync_at.map(rfc3339),
            waiting,
            calendars: calendars.into_iter().map(CalendarJson::from).collect(),
            recent_runs: recent_runs.into_iter().map(SyncRunJson::from).collect(),
        }
    }
}

/// What a disconnect did.
#[derive(Debug, Serialize, ToSchema)]
pub struct DisconnectedJson {
    pub id: i64,
    pub disconnected: bool,
    /// Whether the provider confirmed revoking calsync's access (Google does;
    /// where it cannot be done, the account's security settings can).
    pub revoked: bool,
}

/// The caller's connections, oldest first.
#[utoipa::path(get, path = "/api/calendar/connections/", tag = "connections", operation_id = "list_connections",
    responses((status = 200, body = Vec<ConnectionJson>), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    user: ApiUser,
) -> Result<Json<Vec<ConnectionJson>>, AppError> {
    let connections = state.store.list_connections(user.id).await?;
    let now = state.clock.now();
    Ok(Json(
        connections
            .into_iter()
            .map(|c| ConnectionJson::at(c, now))
            .collect(),
    ))
}

/// Deletes a connection with its tokens, calendars and events.
#[utoipa::path(post, path = "/api/calendar/connections/{id}/disconnect/", tag = "connections",
    params(("id" = i64, Path, description = "connection id")),
    responses((status = 200, body = DisconnectedJson), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn disconnect(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
) -> Result<Json<DisconnectedJson>, AppError> {
    let id = ConnectionId(id);
    let revoked = crate::calendars::disconnect(&state, user.id, id).await?;
    Ok(Json(DisconnectedJson {
        id: id.0,
        disconnected: true,
        revoked,
    }))
}

/// Names the resource in a store's not-found.
pub use crate::calendars::not_found;
