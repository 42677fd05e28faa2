//! `GET /api/calendar/events/stream/`: Server-Sent Events telling the caller's
//! open pages that their events or sync status changed. The stream listens on
//! the caller's own channel of the change feed (`crate::live`), so only their
//! changes reach it; a keep-alive comment keeps proxies from closing it.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::http::auth::ApiUser;
use crate::http::error::{AppError, ErrorBody};
use crate::state::AppState;

/// Change notifications, one `change` event each (`data` is JSON); a `ready`
/// event first, and a `resync` event when notifications were missed.
#[utoipa::path(get, path = "/api/calendar/events/stream/", tag = "events",
    responses((status = 200, content_type = "text/event-stream", description = "events: ready, change, resync"),
        (status = 401, body = ErrorBody)))]
pub async fn stream(
    State(state): State<AppState>,
    user: ApiUser,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let receiver = state.changes.subscribe(user.id);
    let shutdown = state.shutdown.clone();
    let first = Some(Event::default().event("ready").data("{}"));
    let events = futures_util::stream::unfold(
        (receiver, shutdown, first),
        move |(mut receiver, mut shutdown, first)| async move {
            if let Some(ready) = first {
                return Some((Ok(ready), (receiver, shutdown, None)));
            }
            // A stream never ends by itself: it must end at shutdown, or
            // the server would wait for it forever.
            let received = tokio::select! {
                received = receiver.recv() => received,
                _ = shutdown.wait_for(|stopping| *stopping) => return None,
            };
            let event = match received {
                Ok(change) => {
                    let data = serde_json::to_string(&change).unwrap_or_else(|_| "{}".to_owned());
                    Event::default().event("change").data(data)
                }
                Err(RecvError::Lagged(_)) => Event::default().event("resync").data("{}"),
                Err(RecvError::Closed) => return None,
            };
            Some((Ok(event), (receiver, shutdown, None)))
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(20))))
}
