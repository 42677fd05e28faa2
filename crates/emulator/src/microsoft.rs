//! Microsoft identity platform v2 + Microsoft Graph v1.0 calendars
//! (`../shared/specs/microsoft-graph.md`), on the same listener as Google.
//!
//! Paths (relative to the emulator's base URL, none shared with Google):
//! `/{tenant}/oauth2/v2.0/authorize` (GET: consent page or auto-approve;
//! POST: the consent form), `/{tenant}/oauth2/v2.0/token`,
//! `/{tenant}/v2.0/.well-known/openid-configuration`, `/v1.0/me`,
//! `/v1.0/me/calendars[/{id}]`, `/v1.0/me/calendar`,
//! `/v1.0/me[/calendars/{id}|/calendar]/calendarView[/delta]`,
//! `/v1.0/me/events/{id}` (GET, PATCH, DELETE), POST `/v1.0/me/events` and
//! `/v1.0/me[/calendars/{id}|/calendar]/events`, `/owa/` (target of `webLink`), and the control API
//! under `/_emulator/microsoft/` (`control.rs`).
//!
//! Module map: `state` (the world), `oauth` (authorize + token), `graph`
//! (Bearer check, Prefer, /me, calendars, calendarView), `delta`, `writes`
//! (event create/update/delete), `events`
//! (model, expansion, rendering), `tz` (Windows zone names), `errors` (AAD
//! and Graph error shapes), `control`, `sample`.

pub(crate) mod control;
pub(crate) mod delta;
pub(crate) mod errors;
pub(crate) mod events;
pub(crate) mod graph;
pub(crate) mod oauth;
pub(crate) mod sample;
pub(crate) mod state;
pub(crate) mod tz;
pub(crate) mod writes;

use axum::routing::get;
use axum::Router;

use crate::state::AppState;

/// The tenant every emulated account lives in (`tid` in the id_token).
pub const TENANT_ID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(oauth::authorize).post(oauth::decision),
        )
        .route(
            "/{tenant}/oauth2/v2.0/token",
            axum::routing::post(oauth::token),
        )
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(oauth::discovery),
        )
        .route("/v1.0/me", get(graph::me))
        .route("/v1.0/me/calendars", get(graph::list_calendars))
        .route("/v1.0/me/calendars/{id}", get(graph::get_calendar))
        .route("/v1.0/me/calendar", get(graph::get_default_calendar))
        .route("/v1.0/me/calendarView", get(graph::view_default))
        .route("/v1.0/me/calendar/calendarView", get(graph::view_default))
        .route(
            "/v1.0/me/calendars/{id}/calendarView",
            get(graph::view_named),
        )
        .route("/v1.0/me/calendarView/delta", get(delta::delta_default))
        .route(
            "/v1.0/me/calendar/calendarView/delta",
            get(delta::delta_default),
        )
        .route(
            "/v1.0/me/calendars/{id}/calendarView/delta",
            get(delta::delta_named),
        )
        .route(
            "/v1.0/me/events/{id}",
            get(graph::get_event)
                .patch(writes::update)
                .delete(writes::delete),
        )
        .route(
            "/v1.0/me/events",
            axum::routing::post(writes::create_default),
        )
        .route(
            "/v1.0/me/calendar/events",
            axum::routing::post(writes::create_default),
        )
        .route(
            "/v1.0/me/calendars/{id}/events",
            axum::routing::post(writes::create_named),
        )
        .route("/v1.0/{*rest}", get(graph::unknown_segment))
        .route("/owa/", get(owa))
        .merge(control::routes())
}

/// Target of `webLink`, so links from the demo go somewhere.
async fn owa() -> axum::response::Html<&'static str> {
    axum::response::Html(
        "<!doctype html><title>Event (emulator)</title><p>This is where Outlook on the web would show the event.</p>",
    )
}

/// Whether a path belongs to the Microsoft side (error shapes, faults).
pub fn is_graph_path(path: &str) -> bool {
    path.starts_with("/v1.0/") || path == "/v1.0"
}

pub fn is_identity_path(path: &str) -> bool {
    path.contains("/oauth2/v2.0/")
}
