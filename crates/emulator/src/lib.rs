//! calsync-emulator: stateful, protocol-faithful stand-ins for the calendar
//! providers over real HTTP, with a control API for changes, fault injection
//! and a request log: Google OAuth2 + Calendar API v3
//! (`../shared/specs/google.md`) and the Microsoft identity platform v2 +
//! Graph v1.0 calendars (`../shared/specs/microsoft-graph.md`, module
//! `microsoft`), on one listener.
//!
//! It serves the integration tests and `calsync demo`. It must not depend on
//! any other calsync crate: it is the provider, seen from outside.
//!
//! Endpoints, relative to [`EmulatorHandle::base_url`] (see [`GoogleEndpoints`]):
//! `/o/oauth2/v2/auth`, `/token`, `/revoke`, `/v1/userinfo`,
//! `/oauth2/v2/userinfo`, `/calendar/v3/...`; Microsoft (see
//! [`MicrosoftEndpoints`]): `/{tenant}/oauth2/v2.0/authorize`,
//! `/{tenant}/oauth2/v2.0/token`, `/v1.0/me`, `/v1.0/me/calendars`,
//! `/v1.0/me/calendars/{id}/calendarView[/delta]`, `/v1.0/me/events/{id}`; and
//! the control API under `/_emulator/...` (routes and bodies listed in
//! `control.rs`, Microsoft ones under `/_emulator/microsoft/...` in
//! `microsoft/control.rs`). Faults, the clock, the request log and reset cover
//! both providers.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use calsync_emulator::{Emulator, EmulatorConfig, OAuthClient};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let config = EmulatorConfig {
//!     clients: vec![OAuthClient::new("id", "secret", ["http://localhost:8000/api/calendar/google/callback/"])],
//!     auto_approve: true,
//!     sample_data: true,
//!     ..EmulatorConfig::default()
//! };
//! let emulator = Emulator::start(listener, config)?;
//! println!("{}", emulator.google().token_url);
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```

mod bulk;
mod calendar;
mod consent;
mod control;
mod control_events;
mod errors;
mod events;
mod faults;
mod identity;
mod listing;
mod microsoft;
mod oauth;
mod push;
mod recur;
mod sample;
mod state;
mod token;
mod util;
mod writes;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::response::IntoResponse;
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use bulk::{BulkAccount, BulkProvider, Populated};
pub use errors::{ApiError, OAuthError};
pub use microsoft::control::Generate as MsGenerate;
pub use microsoft::errors::{AadError, GraphError};
pub use microsoft::state::{DeadReason, ExpiryMode, MsSettings};
pub use state::{Fault, LogEntry, Settings, MAX_LATENCY_MS};

use state::{AppState, Shared};

/// Ids of the sample data (with `sample_data: true`).
pub mod samples {
    /// Microsoft sample data (see `microsoft/sample.rs`).
    pub use crate::microsoft::sample::{
        MORGAN, MORGAN_CALENDAR, MORGAN_CANCELLED, MORGAN_HOLIDAY, MORGAN_REVIEW,
        MORGAN_SEATTLE_CALL, MORGAN_SUMMIT, MORGAN_TEAM, MORGAN_WEEKLY, RILEY,
    };
    pub use crate::sample::{ALICE, ALICE_PERSONAL, ALICE_WORK, BOB, HOLIDAYS, QUINN};
}

/// A registered OAuth client (a "Web application" client in Google's console).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OAuthClient {
    pub client_id: String,
    /// Empty for a public client (then no secret is checked).
    #[serde(default)]
    pub client_secret: String,
    /// Exact-match list (scheme, host, port, path, trailing slash).
    pub redirect_uris: Vec<String>,
}

impl OAuthClient {
    pub fn new<I, S>(client_id: &str, client_secret: &str, redirect_uris: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            redirect_uris: redirect_uris.into_iter().map(Into::into).collect(),
        }
    }
}

/// How the emulator starts (and what `POST /_emulator/reset` returns to).
#[derive(Debug, Clone, Default)]
pub struct EmulatorConfig {
    pub clients: Vec<OAuthClient>,
    /// Skip the consent page (first account or `login_hint`).
    pub auto_approve: bool,
    /// Seed the sample accounts (Google: alice@, bob@, quinn@example.com;
    /// Microsoft: morgan@contoso.example, riley@outlook.example).
    pub sample_data: bool,
    /// Other runtime switches; `auto_approve` above wins over `settings.auto_approve`.
    pub settings: Settings,
}

/// The URLs a Google client needs, pointed at this emulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleEndpoints {
    pub auth_url: String,
    pub token_url: String,
    pub revoke_url: String,
    pub userinfo_url: String,
    /// Calendar API base, like `https://www.googleapis.com/calendar/v3` (no trailing slash).
    pub api_base: String,
}

/// The URLs a Microsoft identity platform + Graph client needs, pointed at
/// this emulator (tenant `common`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicrosoftEndpoints {
    /// Like `https://login.microsoftonline.com/common/oauth2/v2.0/authorize`.
    pub auth_url: String,
    /// Like `https://login.microsoftonline.com/common/oauth2/v2.0/token`.
    pub token_url: String,
    /// Graph base, like `https://graph.microsoft.com/v1.0` (no trailing slash).
    pub api_base: String,
    /// Like `https://login.microsoftonline.com` (add `/{tenant}/oauth2/v2.0/...`).
    pub authority: String,
}

pub struct Emulator;

impl Emulator {
    /// Serves on `listener` in a task of the current tokio runtime.
    pub fn start(
        listener: tokio::net::TcpListener,
        config: EmulatorConfig,
    ) -> std::io::Result<EmulatorHandle> {
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let shared: AppState = Arc::new(Shared::new(config, base_url.clone()));
        let (outbox, rx) = tokio::sync::mpsc::unbounded_channel();
        shared.lock().outbox = Some(outbox);
        let worker = tokio::spawn(push::deliver(shared.clone(), rx));
        let app = router(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = served.await {
                eprintln!("calsync-emulator: server error: {e}");
            }
        });
        Ok(EmulatorHandle {
            base_url,
            addr,
            shared,
            shutdown: Some(tx),
            task: Some(task),
            worker,
        })
    }
}

/// Runs the emulator standalone on `addr` until Ctrl-C (for `calsync emulator --port P`).
/// Prints nothing; the caller announces the URL (see [`EmulatorHandle::base_url`]).
pub async fn run(addr: SocketAddr, config: EmulatorConfig) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let handle = Emulator::start(listener, config)?;
    tokio::signal::ctrl_c().await?;
    handle.shutdown().await;
    Ok(())
}

fn router(shared: AppState) -> Router {
    Router::new()
        .merge(oauth::routes())
        .merge(calendar::routes())
        .merge(push::routes())
        .merge(control::routes())
        .merge(microsoft::routes())
        .route("/calendar/event", axum::routing::get(html_link))
        .fallback(|| async { ApiError::not_found().into_response() })
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            faults::intercept,
        ))
        .with_state(shared)
}

/// Target of `htmlLink`: a tiny page so that links from the demo go somewhere.
async fn html_link() -> axum::response::Html<&'static str> {
    axum::response::Html(
        "<!doctype html><title>Event (emulator)</title><p>This is where Google Calendar would show the event.</p>",
    )
}

/// A running emulator. Dropping it stops the server too (without waiting).
pub struct EmulatorHandle {
    base_url: String,
    addr: SocketAddr,
    shared: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    /// The push-notification delivery worker.
    worker: JoinHandle<()>,
}

impl EmulatorHandle {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn google(&self) -> GoogleEndpoints {
        let b = &self.base_url;
        GoogleEndpoints {
            auth_url: format!("{b}/o/oauth2/v2/auth"),
            token_url: format!("{b}/token"),
            revoke_url: format!("{b}/revoke"),
            userinfo_url: format!("{b}/v1/userinfo"),
            api_base: format!("{b}/calendar/v3"),
        }
    }

    pub fn microsoft(&self) -> MicrosoftEndpoints {
        let b = &self.base_url;
        MicrosoftEndpoints {
            auth_url: format!("{b}/common/oauth2/v2.0/authorize"),
            token_url: format!("{b}/common/oauth2/v2.0/token"),
            api_base: format!("{b}/v1.0"),
            authority: b.clone(),
        }
    }

    /// Stops accepting connections, lets running requests finish, and waits.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.worker.abort();
    }

    // In-process shortcuts for tests; each does what its control route does.

    /// Registers (or replaces) an OAuth client.
    pub fn add_client(&self, client: OAuthClient) {
        self.shared
            .lock()
            .clients
            .insert(client.client_id.clone(), client);
    }

    /// Adds an account (with its primary calendar); returns its `sub`.
    pub fn add_account(&self, email: &str, name: Option<&str>) -> String {
        let mut inner = self.shared.lock();
        let ix = inner.ensure_account(email, name);
        inner.accounts[ix].sub.clone()
    }

    /// Inserts an event (Calendar API JSON; `recurringEventId` +
    /// `originalStartTime` make an exception). Returns the stored event.
    pub fn insert_event(
        &self,
        account: &str,
        calendar_id: &str,
        event: Value,
    ) -> Result<Value, ApiError> {
        let mut inner = self.shared.lock();
        control_events::insert_event(
            &mut inner,
            &self.base_url,
            account,
            calendar_id,
            event,
            false,
        )
    }

    /// Merge-patches an event (an instance id makes an exception). Returns it.
    pub fn patch_event(
        &self,
        account: &str,
        calendar_id: &str,
        event_id: &str,
        patch: Value,
    ) -> Result<Value, ApiError> {
        let mut inner = self.shared.lock();
        control_events::patch_event(
            &mut inner,
            &self.base_url,
            account,
            calendar_id,
            event_id,
            patch,
        )
    }

    /// Every stored event of a calendar, cancelled ones included.
    pub fn stored_events(&self, account: &str, calendar_id: &str) -> Result<Vec<Value>, ApiError> {
        control_events::stored_events(&self.shared.lock(), account, calendar_id)
    }

    /// Adds a secondary calendar (fields as `POST /_emulator/accounts/{a}/calendars`,
    /// e.g. `{"summary": "Team", "timeZone": "Europe/Paris"}`). Returns its list entry.
    pub fn add_calendar(&self, account: &str, fields: Value) -> Result<Value, ApiError> {
        control::add_calendar_inner(&mut self.shared.lock(), account, fields)
    }

    /// Expires refresh tokens (all, or one account's): refresh → invalid_grant.
    pub fn expire_refresh_tokens(&self, account: Option<&str>) -> Result<usize, ApiError> {
        control::expire_refresh_tokens(&mut self.shared.lock(), account, None)
    }

    /// Moves the emulator's clock forward (or back) by `seconds`.
    pub fn advance_clock(&self, seconds: i64) -> Result<(), ApiError> {
        control::advance_clock_inner(&mut self.shared.lock(), seconds)
    }

    /// Deletes (cancels) an event or one instance of a series.
    pub fn delete_event(
        &self,
        account: &str,
        calendar_id: &str,
        event_id: &str,
    ) -> Result<(), ApiError> {
        let mut inner = self.shared.lock();
        control_events::delete_event_inner(
            &mut inner,
            &self.base_url,
            account,
            calendar_id,
            event_id,
            false,
        )
    }

    /// The next use of any sync token of this calendar answers 410 fullSyncRequired.
    pub fn invalidate_sync_tokens(&self, account: &str, calendar_id: &str) -> Result<(), ApiError> {
        control::invalidate_sync_tokens(&mut self.shared.lock(), account, calendar_id)
    }

    /// Expires access tokens (all, or one account's); returns how many.
    pub fn expire_access_tokens(&self, account: Option<&str>) -> Result<usize, ApiError> {
        control::expire_access_tokens(&mut self.shared.lock(), account)
    }

    /// Revokes grants (refresh and access tokens) as if the user removed the app.
    pub fn revoke_grants(&self, account: Option<&str>) -> Result<usize, ApiError> {
        control::revoke_grants(&mut self.shared.lock(), account, None)
    }

    /// Adds a fault; returns it with its id.
    pub fn inject_fault(&self, fault: Fault) -> Result<Fault, ApiError> {
        control::add_fault_inner(&mut self.shared.lock(), fault)
    }

    /// Changes runtime settings.
    pub fn update_settings(&self, f: impl FnOnce(&mut Settings)) {
        f(&mut self.shared.lock().settings);
    }

    /// Every access and refresh token the emulator currently knows, so a test
    /// can check that none of them leaked into a database file or a log.
    pub fn live_tokens(&self) -> Vec<String> {
        let inner = self.shared.lock();
        inner
            .access_tokens
            .keys()
            .chain(inner.refresh_tokens.keys())
            .chain(inner.ms.access_tokens.keys())
            .chain(inner.ms.refresh_tokens.keys())
            .cloned()
            .collect()
    }

    /// Push deliveries so far: `{channel_id, resource_id, state,
    /// message_number, address, status?, error?}` each.
    pub fn notifications(&self) -> Vec<Value> {
        let inner = self.shared.lock();
        inner
            .deliveries
            .iter()
            .filter_map(|d| serde_json::to_value(d).ok())
            .collect()
    }

    /// The request log (provider routes only, tokens redacted).
    pub fn requests(&self) -> Vec<LogEntry> {
        self.shared.lock().log.iter().cloned().collect()
    }

    /// Takes the request log so far, leaving it empty (`seq` goes on
    /// counting). The log keeps at most 100,000 entries; a long benchmark
    /// drains it this way instead of losing the oldest.
    pub fn take_requests(&self) -> Vec<LogEntry> {
        std::mem::take(&mut self.shared.lock().log).into()
    }

    /// Creates many accounts with their calendars and events under one lock
    /// (see [`BulkAccount`]); events start at `first_event`, one a day.
    /// Accounts that exist already get the calendars and events added.
    pub fn populate(
        &self,
        accounts: &[BulkAccount],
        first_event: jiff::Timestamp,
    ) -> Result<Vec<Populated>, String> {
        bulk::populate(
            &mut self.shared.lock(),
            &self.base_url,
            accounts,
            first_event,
        )
    }

    /// Back to the start configuration.
    pub fn reset(&self) {
        self.shared.reset();
    }

    // Microsoft side: each does what its `/_emulator/microsoft/...` route does.
    // `account` is an email/UPN or object id; `calendar` an id or `default`.

    /// Adds a Microsoft account with its default calendar; returns its object id.
    /// `mail`: `None` = the email, `Some(None)` = no mailbox address (`mail: null`).
    pub fn ms_add_account(
        &self,
        email: &str,
        name: Option<&str>,
        mail: Option<Option<&str>>,
    ) -> String {
        let mut inner = self.shared.lock();
        let mail = mail.map(|m| m.map(str::to_owned));
        let ix = microsoft::control::ensure_account(&mut inner.ms, email, name, mail);
        inner.ms.accounts[ix].id.clone()
    }

    /// The account as the control API shows it (`{id, userPrincipalName, mail, displayName, calendars[]}`).
    pub fn ms_account(&self, account: &str) -> Option<Value> {
        let inner = self.shared.lock();
        let ix = inner.ms.account_ix(account)?;
        Some(microsoft::control::account_json(&inner.ms.accounts[ix]))
    }

    /// Adds a calendar (`{id?, name, color?, hexColor?, canEdit?, owner?}`); returns its Graph JSON.
    pub fn ms_add_calendar(&self, account: &str, fields: Value) -> Result<Value, GraphError> {
        microsoft::control::add_calendar_inner(&mut self.shared.lock().ms, account, fields)
    }

    /// Inserts a Graph event (single or series master; `seriesMasterId` +
    /// `originalStart` make an exception). Returns the stored event.
    pub fn ms_insert_event(
        &self,
        account: &str,
        calendar: &str,
        event: Value,
    ) -> Result<Value, GraphError> {
        microsoft::control::insert_event(
            &mut self.shared.lock(),
            &self.base_url,
            account,
            calendar,
            event,
        )
    }

    /// Merge-patches an event; an occurrence id makes (or updates) an exception.
    pub fn ms_patch_event(
        &self,
        account: &str,
        calendar: &str,
        event_id: &str,
        patch: Value,
    ) -> Result<Value, GraphError> {
        microsoft::control::patch_event(
            &mut self.shared.lock(),
            &self.base_url,
            account,
            calendar,
            event_id,
            patch,
        )
    }

    /// Deletes an event (a master with its exceptions); an occurrence id cancels that occurrence.
    pub fn ms_delete_event(
        &self,
        account: &str,
        calendar: &str,
        event_id: &str,
    ) -> Result<(), GraphError> {
        microsoft::control::delete_event(&mut self.shared.lock(), account, calendar, event_id)
    }

    /// Stored events of a calendar (masters and exceptions included), Graph JSON in UTC.
    pub fn ms_stored_events(
        &self,
        account: &str,
        calendar: &str,
    ) -> Result<Vec<Value>, GraphError> {
        microsoft::control::stored_events(&self.shared.lock(), &self.base_url, account, calendar)
    }

    /// Instances overlapping `[start, end)` as calendarView shows them (UTC);
    /// the way to learn occurrence ids.
    pub fn ms_instances(
        &self,
        account: &str,
        calendar: &str,
        start: jiff::Timestamp,
        end: jiff::Timestamp,
    ) -> Result<Vec<Value>, GraphError> {
        microsoft::control::view_inner(
            &self.shared.lock(),
            &self.base_url,
            account,
            calendar,
            (start, end),
        )
    }

    /// Bulk-generates `g.count` single events; returns how many.
    pub fn ms_generate_events(
        &self,
        account: &str,
        calendar: &str,
        g: &MsGenerate,
    ) -> Result<usize, GraphError> {
        microsoft::control::generate_inner(&mut self.shared.lock(), account, calendar, g)
    }

    /// Every delta token of the calendar dies; its next use fails as `mode` says.
    pub fn ms_expire_delta_tokens(
        &self,
        account: &str,
        calendar: &str,
        mode: ExpiryMode,
    ) -> Result<(), GraphError> {
        microsoft::control::expire_delta_tokens(&mut self.shared.lock().ms, account, calendar, mode)
    }

    /// Access tokens expire (Graph → 401 InvalidAuthenticationToken); returns how many.
    pub fn ms_expire_access_tokens(&self, account: Option<&str>) -> Result<usize, GraphError> {
        microsoft::control::expire_access_tokens(&mut self.shared.lock(), account)
    }

    /// Refresh tokens die for `reason` (refresh → invalid_grant with its AADSTS code).
    pub fn ms_expire_refresh_tokens(
        &self,
        account: Option<&str>,
        reason: DeadReason,
    ) -> Result<usize, GraphError> {
        microsoft::control::expire_refresh_tokens(&mut self.shared.lock(), account, None, reason)
    }

    /// Revokes grants (refresh → AADSTS50173, access tokens gone).
    pub fn ms_revoke_grants(&self, account: Option<&str>) -> Result<usize, GraphError> {
        microsoft::control::revoke_grants(&mut self.shared.lock(), account, None)
    }

    /// Changes the Microsoft-only settings.
    pub fn ms_update_settings(&self, f: impl FnOnce(&mut MsSettings)) {
        f(&mut self.shared.lock().ms.settings);
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        self.worker.abort();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
