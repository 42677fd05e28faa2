//! The sync worker: claims due connections under a fenced lease in the
//! database (so several instances share the work without doubling it) and
//! runs up to `concurrency` rounds at once, each in a task of its own. A
//! round refreshes tokens, lists calendars and pulls each enabled calendar's
//! changes page by page; the store applies every page with its cursor in one
//! transaction, and only while the round still holds its lease. A round
//! that panics, overruns its deadline or loses its lease ends as that
//! connection's error; the worker and every other round go on.

use std::sync::Arc;
use std::time::Duration;

use calsync_core::changes::PageNext;
use calsync_core::clock::Clock;
use calsync_core::model::{
    CalendarId, Connection, ConnectionId, ConnectionStatus, UserId, WaitReason,
};
use calsync_core::plan::{next_sync_delay, rate_limited_delay, Cursor};
use calsync_core::recur::Window;
use calsync_providers::{EventsCursor, ProviderError};
use calsync_store::{Claim, ClaimLimits, PageUpdate, Store, StoreError, SyncResult};
use jiff::{SignedDuration, Timestamp};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use crate::live::{Change, ChangeFeed};
use crate::providers::{NotConfigured, Providers};
use crate::telemetry::Metrics;

/// How long a claim lasts without renewal; a round renews it every
/// [`LEASE_RENEWAL`], so a dead instance's connections wait at most this
/// (on SQLite, where one server owns the file, not even that: it gives every
/// lease back when it starts).
const LEASE: SignedDuration = SignedDuration::from_secs(30);
const LEASE_RENEWAL: Duration = Duration::from_secs(10);
/// Refresh an access token this long before it expires.
const REFRESH_MARGIN: SignedDuration = SignedDuration::from_mins(4);
/// The longest one round may take; the next one resumes from its cursor.
const ROUND_DEADLINE: Duration = Duration::from_secs(15 * 60);
/// How long a stopping instance waits for rounds to reach a page boundary.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// The materialised horizon of occurrences around now.
const HORIZON_PAST: SignedDuration = SignedDuration::from_hours(24 * 60);
const HORIZON_FUTURE: SignedDuration = SignedDuration::from_hours(24 * 400);
/// Whether the stored occurrences cover [start, end) (the horizon is
/// extended daily, so a day of slack is left at its far end).
pub fn horizon_covers(start: Timestamp, end: Timestamp, now: Timestamp) -> bool {
    let slack = SignedDuration::from_hours(24);
    start >= now - HORIZON_PAST + slack && end <= now + HORIZON_FUTURE - slack
}

/// Pages of one calendar in one sync, against a provider that never ends a round.
const MAX_PAGES: usize = 10_000;
/// How often an idle worker looks for due connections without being woken.
const POLL: Duration = Duration::from_secs(5);

mod oauth;
mod source;

use source::Source;

/// Why a sync stopped.
#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0} any more")]
    NotConfigured(#[from] NotConfigured),
    #[error("no refresh token is stored; reconnect the account")]
    NoRefreshToken,
    #[error("the stored login cannot be read; connect the account again")]
    NoCredential,
    #[error("the server refused the stored password; connect the account again with a new one")]
    PasswordRefused,
    #[error("calsync failed unexpectedly during this sync (details are in the server log); it will try again")]
    Panicked,
    #[error("the sync took longer than 15 minutes and was stopped; the next one continues where it stopped")]
    Deadline,
    #[error("the instance is stopping")]
    Stopping,
}

impl SyncError {
    /// A short fixed name for metrics.
    fn kind(&self) -> &'static str {
        match self {
            Self::Provider(ProviderError::RateLimited { .. }) => "rate_limited",
            Self::Provider(e) if e.needs_reauth() => "unauthorized",
            Self::NoRefreshToken | Self::NoCredential | Self::PasswordRefused => "unauthorized",
            Self::Provider(ProviderError::Network(_)) => "network",
            Self::Provider(_) | Self::NotConfigured(_) => "provider",
            Self::Store(StoreError::LeaseLost) => "lease_lost",
            Self::Store(_) => "store",
            Self::Panicked => "panic",
            Self::Deadline => "deadline",
            Self::Stopping => "other",
        }
    }
}

/// Everything a sync needs; cheap to clone.
#[derive(Clone)]
pub struct SyncEngine {
    pub store: Store,
    pub providers: Providers,
    pub clock: Arc<dyn Clock>,
    pub changes: ChangeFeed,
    pub interval: Duration,
    pub wake: Arc<Notify>,
    /// Rounds at once in this instance.
    pub concurrency: usize,
    /// Rounds at once per user and per host, across instances.
    pub limits: ClaimLimits,
    pub metrics: Arc<Metrics>,
}

/// Counts the provider requests of one sync.
#[derive(Default)]
struct Tally {
    requests: u64,
    changes: u64,
    /// Occurrences were re-expanded further ahead: the pages may show more.
    horizon_extended: bool,
    /// Removals were held back for the user to confirm.
    held: bool,
    /// What a client that counts its own requests had sent at the last look.
    counted: u64,
}

impl Tally {
    /// Adds the requests a self-counting client sent since the last look.
    fn count_since(&mut self, sent: u64) {
        self.requests += sent.saturating_sub(self.counted);
        self.counted = sent;
    }
}

impl SyncEngine {
    /// Runs rounds of due connections until `shutdown` turns true, then lets
    /// running rounds reach a page boundary (or stops them after a grace
    /// period, giving their connections back).
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let mut rounds = JoinSet::new();
        loop {
            self.metrics.sync.worker_beat();
            let stopping = *shutdown.borrow();
            if stopping && rounds.is_empty() {
                break;
            }
            if !stopping {
                self.claim_rounds(&mut rounds, &shutdown).await;
            }
            let mut watch = shutdown.clone();
            tokio::select! {
                _ = watch.changed(), if !stopping => {}
                () = self.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
                Some(_) = rounds.join_next() => {}
            }
        }
        self.metrics.sync.worker_stopped();
    }

    /// Starts rounds while slots are free and connections are due.
    async fn claim_rounds(&self, rounds: &mut JoinSet<()>, shutdown: &watch::Receiver<bool>) {
        while rounds.len() < self.concurrency {
            let now = self.clock.now();
            match self
                .store
                .claim_due_connection(now, now + LEASE, self.limits)
                .await
            {
                Ok(Some(claim)) => {
                    rounds.spawn(self.clone().round(claim, shutdown.clone()));
                }
                Ok(None) => return,
                Err(err) => {
                    tracing::warn!(error = %err, "could not look for due connections");
                    return;
                }
            }
        }
    }

    /// Claims and syncs one due connection, waiting for its round; false
    /// when none is due (`calsync sync` and tests).
    pub async fn sync_next_due(&self) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let Some(claim) = self
            .store
            .claim_due_connection(now, now + LEASE, self.limits)
            .await?
        else {
            return Ok(false);
        };
        let (_never, running) = watch::channel(false);
        self.clone().round(claim, running).await;
        Ok(true)
    }

    /// Runs one round of the connection `id` now, whatever its schedule
    /// (`calsync sync`), and returns the status it left; `None` when a round
    /// of another worker holds it.
    pub async fn sync_connection_now(
        &self,
        id: ConnectionId,
    ) -> Result<Option<Connection>, StoreError> {
        let now = self.clock.now();
        let Some(claim) = self.store.claim_connection(id, now, now + LEASE).await? else {
            return Ok(None);
        };
        let (_never, running) = watch::channel(false);
        self.clone().round(claim, running).await;
        self.store.connection(claim.user_id, id).await.map(Some)
    }

    /// One connection's round, supervised: its work runs in a task of its
    /// own, so a panic, an overrun or a lost lease ends only this round.
    async fn round(self, claim: Claim, shutdown: watch::Receiver<bool>) {
        let started = self.clock.now();
        let connection = match self
            .store
            .connection(claim.user_id, claim.connection_id)
            .await
        {
            Ok(connection) => connection,
            Err(err) => {
                tracing::warn!(connection = %claim.connection_id, error = %err, "claimed connection unreadable");
                return;
            }
        };
        let run = match self
            .store
            .start_sync_run(claim.connection_id, started)
            .await
        {
            Ok(run) => run,
            Err(err) => {
                tracing::warn!(connection = %claim.connection_id, error = %err, "could not record the sync run");
                let _ = self.store.release_lease(&claim, started).await;
                return;
            }
        };
        self.metrics.sync.round_started();
        self.publish_status(claim);
        let work = tokio::spawn({
            let engine = self.clone();
            let stop = shutdown.clone();
            async move {
                let mut tally = Tally::default();
                let outcome = engine.sync_connection(claim, &mut tally, &stop).await;
                (outcome, tally)
            }
        });
        let abort = work.abort_handle();
        let (outcome, tally) = tokio::select! {
            joined = work => match joined {
                Ok(done) => done,
                Err(err) => {
                    if err.is_panic() {
                        tracing::error!(connection = %claim.connection_id, "a sync round panicked");
                    }
                    (Err(SyncError::Panicked), Tally::default())
                }
            },
            () = self.keep_lease(claim) => (Err(SyncError::Store(StoreError::LeaseLost)), Tally::default()),
            () = tokio::time::sleep(ROUND_DEADLINE) => (Err(SyncError::Deadline), Tally::default()),
            () = stop_grace(shutdown) => (Err(SyncError::Stopping), Tally::default()),
        };
        abort.abort();
        let now = self.clock.now();
        let seconds = now.duration_since(started).as_secs_f64();
        let failure = outcome.as_ref().err().map(SyncError::kind);
        self.metrics.sync.round_finished(
            connection.provider.as_str(),
            seconds,
            failure.or(tally.held.then_some("held")),
        );
        match outcome {
            Err(SyncError::Stopping) => {
                let _ = self.store.release_lease(&claim, now).await;
            }
            Err(SyncError::Store(StoreError::LeaseLost)) => {
                tracing::warn!(connection = %claim.connection_id, "lost the sync lease; the round stopped without writing");
            }
            outcome => {
                let result =
                    self.result(outcome, &tally, connection.consecutive_failures, now, claim);
                match self.store.finish_sync(&claim, run, &result, now).await {
                    Ok(true) => tracing::info!(
                        connection = %claim.connection_id,
                        provider = connection.provider.as_str(),
                        status = result.status.as_str(),
                        requests = tally.requests,
                        changes = tally.changes,
                        ms = (seconds * 1000.0) as u64,
                        "sync finished"
                    ),
                    Ok(false) => {
                        tracing::warn!(connection = %claim.connection_id, "lost the sync lease before recording the result")
                    }
                    Err(err) => {
                        tracing::warn!(connection = %claim.connection_id, error = %err, "could not record the sync result")
                    }
                }
            }
        }
        if tally.changes > 0 || tally.horizon_extended {
            self.changes.publish(
                claim.user_id,
                Change::Events {
                    connection_ids: vec![claim.connection_id.0],
                },
            );
        }
        self.publish_status(claim);
    }

    fn publish_status(&self, claim: Claim) {
        self.changes.publish(
            claim.user_id,
            Change::Connection {
                connection_id: claim.connection_id.0,
            },
        );
    }

    /// Renews the lease until it is lost (returns then); pages renew it too.
    async fn keep_lease(&self, claim: Claim) {
        loop {
            tokio::time::sleep(LEASE_RENEWAL).await;
            match self
                .store
                .renew_lease(&claim, self.clock.now() + LEASE)
                .await
            {
                Ok(true) => {}
                Ok(false) => return,
                Err(err) => {
                    tracing::warn!(connection = %claim.connection_id, error = %err, "could not renew the sync lease")
                }
            }
        }
    }

    /// The status and schedule a sync leaves its connection in.
    fn result(
        &self,
        outcome: Result<(), SyncError>,
        tally: &Tally,
        failures: u32,
        now: Timestamp,
        claim: Claim,
    ) -> SyncResult {
        let after = |delay: Duration| {
            SignedDuration::try_from(delay)
                .ok()
                .and_then(|d| now.checked_add(d).ok())
                .unwrap_or(now + SignedDuration::from_mins(5))
        };
        let backoff = |failures| after(next_sync_delay(self.interval, failures, jitter_unit()));
        let (status, error, next_sync_at, wait_reason) = match outcome {
            Ok(()) if tally.held => (
                ConnectionStatus::Held,
                Some("some events would be removed; nothing was removed until you decide on Settings".to_owned()),
                backoff(0),
                None,
            ),
            Ok(()) => (ConnectionStatus::Ok, None, backoff(0), None),
            Err(err) => {
                tracing::warn!(connection = %claim.connection_id, error = %err, "sync failed");
                let status = match &err {
                    SyncError::Provider(e) if e.needs_reauth() => ConnectionStatus::NeedsReauth,
                    SyncError::NoRefreshToken
                    | SyncError::NoCredential
                    | SyncError::PasswordRefused => ConnectionStatus::NeedsReauth,
                    _ => ConnectionStatus::Error,
                };
                let (next, reason) = match &err {
                    SyncError::Provider(ProviderError::RateLimited {
                        retry_after: Some(wait),
                    }) => {
                        // Never sooner than a failure's backoff: a provider
                        // saying "0" must not make us ask again at once.
                        let backoff = next_sync_delay(self.interval, failures.saturating_add(1), jitter_unit());
                        let asked = rate_limited_delay(*wait);
                        if asked >= backoff {
                            (after(asked), WaitReason::RateLimited)
                        } else {
                            (after(backoff), WaitReason::Backoff)
                        }
                    }
                    _ => (backoff(failures.saturating_add(1)), WaitReason::Backoff),
                };
                (status, Some(err.to_string()), next, Some(reason))
            }
        };
        SyncResult {
            status,
            error,
            requests: tally.requests,
            changes: tally.changes,
            next_sync_at,
            wait_reason,
        }
    }

    async fn sync_connection(
        &self,
        claim: Claim,
        tally: &mut Tally,
        stop: &watch::Receiver<bool>,
    ) -> Result<(), SyncError> {
        let connection = self
            .store
            .connection(claim.user_id, claim.connection_id)
            .await?;
        let mut source = Source::open(self, claim, &connection).await?;
        self.store
            .set_connection_host(&claim, source.host().as_deref())
            .await?;
        let store = &self.store;
        let remote = source.calendars(tally).await?;
        let calendars = store
            .upsert_calendars(&claim, self.lease_end(), &remote)
            .await?;
        tally.held |= calendars
            .iter()
            .any(|c| c.held_removals.is_some() && c.missing_listings >= 2);
        let window = self.horizon(claim.user_id).await?;
        // A calendar the account cannot read (unshared since the listing,
        // or gone) fails the sync, but only after the others are synced.
        let mut unreadable = None;
        let listed = calendars
            .iter()
            .filter(|c| c.enabled && c.missing_listings == 0);
        for calendar in listed {
            let synced = self
                .sync_calendar(
                    &mut source,
                    calendar.id,
                    &calendar.external_id,
                    &window,
                    tally,
                    stop,
                )
                .await;
            match synced {
                Err(SyncError::Provider(
                    err @ ProviderError::Provider {
                        status: 403 | 404, ..
                    },
                )) => {
                    unreadable.get_or_insert(err);
                    continue;
                }
                other => other?,
            }
            tally.horizon_extended |= store
                .extend_horizon(
                    &claim,
                    self.lease_end(),
                    claim.user_id,
                    calendar.id,
                    &window,
                )
                .await?;
        }
        unreadable.map_or(Ok(()), |err| Err(err.into()))
    }

    /// Where a renewed lease ends.
    fn lease_end(&self) -> Timestamp {
        self.clock.now() + LEASE
    }

    /// One calendar's round: page after page until the provider says done,
    /// each page applied with its cursor in one transaction. A stopping
    /// instance ends the round at a page boundary.
    async fn sync_calendar(
        &self,
        source: &mut Source<'_>,
        calendar: CalendarId,
        external_id: &str,
        window: &Window,
        tally: &mut Tally,
        stop: &watch::Receiver<bool>,
    ) -> Result<(), SyncError> {
        let store = &self.store;
        let user = source.user();
        let claim = source.claim();
        let mut restarted = false;
        let mut cursor = store.calendar_cursor(user, calendar).await?;
        for _ in 0..MAX_PAGES {
            if *stop.borrow() {
                return Err(SyncError::Stopping);
            }
            let request = match &cursor {
                None => EventsCursor::Full,
                Some(Cursor::Sync(token)) => EventsCursor::Sync(token.clone()),
                Some(Cursor::Page { token, .. }) => EventsCursor::Page(token.clone()),
            };
            let page = match source.page(tally, external_id, &request, window).await {
                Err(SyncError::Provider(ProviderError::SyncTokenExpired)) if !restarted => {
                    tracing::info!(calendar = %calendar, "sync token expired; starting a full round");
                    restarted = true;
                    cursor = None;
                    continue;
                }
                // A stored page token can go stale while its round waits
                // (an instance died mid-round and its lease ran out); a
                // provider refusing it would otherwise fail every retry.
                Err(SyncError::Provider(ProviderError::Provider {
                    status: 400 | 404 | 410,
                    ..
                })) if !restarted && matches!(request, EventsCursor::Page(_)) => {
                    tracing::info!(calendar = %calendar, "the page token was refused; starting the round over");
                    restarted = true;
                    cursor = None;
                    continue;
                }
                other => other?,
            };
            // A feed is a snapshot: a changed one lists everything again,
            // and what it no longer lists must be swept.
            let starts_full_round =
                cursor.is_none() || (source.is_snapshot() && !page.changes.is_empty());
            let update = PageUpdate {
                claim: &claim,
                lease_until: self.lease_end(),
                changes: &page.changes,
                starts_full_round,
                next: &page.next,
                window,
                now: self.clock.now(),
            };
            let applied = store.apply_page(user, calendar, &update).await?;
            tally.changes += applied.total();
            tally.held |= applied.held.is_some();
            match page.next {
                PageNext::Done { .. } => return Ok(()),
                PageNext::Page(_) => cursor = store.calendar_cursor(user, calendar).await?,
            }
        }
        Err(SyncError::Provider(ProviderError::Decode(format!(
            "more than {MAX_PAGES} pages in one round"
        ))))
    }

    /// The horizon over which occurrences are stored, in the user's zone.
    async fn horizon(&self, user: UserId) -> Result<Window, StoreError> {
        let zone = self.store.user(user).await?.timezone;
        let now = self.clock.now();
        Ok(Window {
            from: now - HORIZON_PAST,
            to: now + HORIZON_FUTURE,
            floating_zone: jiff::tz::TimeZone::get(&zone).unwrap_or(jiff::tz::TimeZone::UTC),
            limit: 10_000,
        })
    }
}

/// Resolves [`STOP_GRACE`] after the instance began stopping; never before.
async fn stop_grace(mut shutdown: watch::Receiver<bool>) {
    if shutdown.wait_for(|stopping| *stopping).await.is_err() {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(STOP_GRACE).await;
}

/// A uniform number in [0, 1) for spreading schedules; not security relevant.
fn jitter_unit() -> f64 {
    let mut bytes = [0u8; 4];
    match getrandom::getrandom(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.5,
    }
}
