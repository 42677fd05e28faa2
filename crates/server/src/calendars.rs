//! What a user can do to their calendars and connections: turn a calendar on
//! or off and colour it, decide about removals a sync held back, ask for a
//! sync, disconnect, set their time zone.
//!
//! The JSON API and the pages both call these, so a page form and its API
//! twin cannot drift apart (same checks, same change notifications).

use calsync_core::model::{
    normalize_color, Calendar, CalendarId, ConnectionId, ConnectionStatus, RemovalDecision, UserId,
};
use calsync_store::{CalendarPatch, StoreError};

use crate::http::error::AppError;
use crate::live::Change;
use crate::quotas::Action;
use crate::state::AppState;

/// Names the resource in a store's not-found.
pub fn not_found(what: &'static str) -> impl Fn(StoreError) -> AppError {
    move |err| match err {
        StoreError::NotFound => AppError::NotFound(what),
        other => other.into(),
    }
}

/// Turns a calendar on or off and/or changes its colour (`#rrggbb`, any case).
pub async fn update_calendar(
    state: &AppState,
    user: UserId,
    id: CalendarId,
    enabled: Option<bool>,
    color: Option<&str>,
) -> Result<Calendar, AppError> {
    let color = color
        .map(|c| {
            normalize_color(c)
                .ok_or_else(|| AppError::invalid("invalid_color", "color must look like #1a73e8"))
        })
        .transpose()?;
    let patch = CalendarPatch { enabled, color };
    let calendar = state
        .store
        .patch_calendar(user, id, &patch)
        .await
        .map_err(not_found("calendar"))?;
    state.changes.publish(
        user,
        Change::Events {
            connection_ids: vec![calendar.connection_id.0],
        },
    );
    Ok(calendar)
}

/// Records the user's decision about the removals a sync held back on one of
/// their calendars (`Conflict` when nothing is held), then asks for a sync of
/// its connection at once: syncs are what carry decisions out. Returns the
/// calendar with the decision recorded.
pub async fn decide_removals(
    state: &AppState,
    user: UserId,
    id: CalendarId,
    decision: RemovalDecision,
) -> Result<Calendar, AppError> {
    let calendar = state
        .store
        .decide_removals(user, id, decision)
        .await
        .map_err(not_found("calendar"))?;
    let connection = calendar.connection_id;
    // A connection waiting for reconnection keeps the decision for the first
    // sync after it; the sync itself is not refused here as a manual one is.
    state
        .store
        .request_sync(user, connection, state.clock.now())
        .await?;
    state.changes.publish(
        user,
        Change::Connection {
            connection_id: connection.0,
        },
    );
    state.wake_worker();
    Ok(calendar)
}

/// Makes one connection (or all of the user's) due now and wakes the worker;
/// during a round it asks for one more round after it, so requests coalesce
/// into at most one pending round. Returns the connections whose sync was
/// requested; those that must be reconnected first are left out (and
/// refused when named). Counts against the user's sync quota.
pub async fn request_sync(
    state: &AppState,
    user: UserId,
    only: Option<ConnectionId>,
) -> Result<Vec<i64>, AppError> {
    state.quotas.take(user, Action::ManualSync)?;
    let now = state.clock.now();
    let ids: Vec<i64> = match only {
        Some(id) => {
            let connection = state
                .store
                .connection(user, id)
                .await
                .map_err(not_found("connection"))?;
            if connection.status == ConnectionStatus::NeedsReauth {
                return Err(AppError::Conflict(
                    "this connection must be reconnected before it can sync".into(),
                ));
            }
            state.store.request_sync(user, id, now).await?;
            vec![id.0]
        }
        None => {
            let mut started = Vec::new();
            for listed in state.store.list_connections(user).await? {
                let id = listed.connection.id;
                if state.store.request_sync(user, id, now).await? {
                    started.push(id.0);
                }
            }
            started
        }
    };
    // The status is now "pending": open pages show that the request was heard.
    for id in &ids {
        state
            .changes
            .publish(user, Change::Connection { connection_id: *id });
    }
    state.wake_worker();
    Ok(ids)
}

/// Revokes calsync's access at the provider where possible, then deletes the
/// connection with its tokens, calendars and events. Returns whether the
/// provider confirmed the revocation.
pub async fn disconnect(
    state: &AppState,
    user: UserId,
    id: ConnectionId,
) -> Result<bool, AppError> {
    let revoked = crate::connect::revoke(state, user, id)
        .await
        .map_err(not_found("connection"))?;
    state
        .store
        .delete_connection(user, id)
        .await
        .map_err(not_found("connection"))?;
    state.changes.publish(
        user,
        Change::Connection {
            connection_id: id.0,
        },
    );
    state.changes.publish(
        user,
        Change::Events {
            connection_ids: vec![id.0],
        },
    );
    Ok(revoked)
}

/// Sets the zone the user's pages are shown in; `name` must be an IANA name
/// that the bundled time zone database knows. Returns the canonical name.
pub async fn set_timezone(state: &AppState, user: UserId, name: &str) -> Result<String, AppError> {
    let name = name.trim();
    let invalid = || {
        AppError::invalid(
            "invalid_timezone",
            format!(
                "\"{}\" is not a time zone name; use one like Europe/Berlin or America/New_York",
                name.chars().take(64).collect::<String>()
            ),
        )
    };
    if name.is_empty() || name.len() > 64 {
        return Err(invalid());
    }
    let zone = jiff::tz::db().get(name).map_err(|_| invalid())?;
    let canonical = zone.iana_name().unwrap_or(name).to_owned();
    state
        .store
        .set_user_timezone(user, &canonical)
        .await
        .map_err(not_found("user"))?;
    state.changes.publish(
        user,
        Change::Events {
            connection_ids: Vec::new(),
        },
    );
    Ok(canonical)
}
