//! The sync worker: claims due connections (a lease in the database, so
//! several instances share the work without doubling it), refreshes tokens,
//! lists calendars and pulls each enabled calendar's changes page by page.
//! Every page is applied with its cursor in one transaction by the store; a
//! failure leaves the last good data and cursor in place.

use std::sync::Arc;
use std::time::Duration;

use calsync_core::changes::PageNext;
use calsync_core::clock::Clock;
use calsync_core::model::{CalendarId, ConnectionStatus, UserId};
use calsync_core::plan::{next_sync_delay, Cursor};
use calsync_core::recur::Window;
use calsync_providers::{EventsCursor, ProviderError};
use calsync_store::{Claim, PageUpdate, Store, StoreError, SyncResult};
use jiff::{SignedDuration, Timestamp};
use tokio::sync::{watch, Notify};

use crate::live::{Change, ChangeFeed};
use crate::providers::{NotConfigured, Providers};

/// How long a claimed connection is ours before another worker may take it.
const LEASE: SignedDuration = SignedDuration::from_mins(10);
/// Refresh an access token this long before it expires.
const REFRESH_MARGIN: SignedDuration = SignedDuration::from_mins(4);
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
}

/// Counts the provider requests of one sync.
#[derive(Default)]
struct Tally {
    requests: u64,
    changes: u64,
    /// Occurrences were re-expanded further ahead: the pages may show more.
    horizon_extended: bool,
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
    /// Syncs due connections until `shutdown` turns true; a sync in progress
    /// finishes its current page first.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            while !*shutdown.borrow() {
                match self.sync_next_due().await {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(err) => {
                        tracing::warn!(error = %err, "could not look for due connections");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = shutdown.wait_for(|stopping| *stopping) => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Claims and syncs one due connection; false when none is due.
    pub async fn sync_next_due(&self) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let Some(claim) = self.store.claim_due_connection(now, now + LEASE).await? else {
            return Ok(false);
        };
        self.sync_claimed(claim).await?;
        Ok(true)
    }

    async fn sync_claimed(&self, claim: Claim) -> Result<(), StoreError> {
        let started = self.clock.now();
        let failures = self
            .store
            .connection(claim.user_id, claim.connection_id)
            .await?
            .consecutive_failures;
        let run = self
            .store
            .start_sync_run(claim.connection_id, started)
            .await?;
        self.changes.publish(
            claim.user_id,
            Change::Connection {
                connection_id: claim.connection_id.0,
            },
        );
        let mut tally = Tally::default();
        let outcome = self.sync_connection(claim, &mut tally).await;
        let now = self.clock.now();
        let result = self.result(outcome, &tally, failures, now, claim);
        self.store
            .finish_sync(claim.connection_id, run, &result, now)
            .await?;
        tracing::info!(
            connection = %claim.connection_id,
            status = result.status.as_str(),
            requests = tally.requests,
            changes = tally.changes,
            ms = now.duration_since(started).as_millis(),
            "sync finished"
        );
        if tally.changes > 0 || tally.horizon_extended {
            self.changes.publish(
                claim.user_id,
                Change::Events {
                    connection_ids: vec![claim.connection_id.0],
                },
            );
        }
        self.changes.publish(
            claim.user_id,
            Change::Connection {
                connection_id: claim.connection_id.0,
            },
        );
        Ok(())
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
        let after = |failures| {
            let delay = next_sync_delay(self.interval, failures, jitter_unit());
            now + SignedDuration::try_from(delay).unwrap_or(SignedDuration::from_mins(5))
        };
        let (status, error, next_sync_at) = match outcome {
            Ok(()) => (ConnectionStatus::Ok, None, after(0)),
            Err(err) => {
                tracing::warn!(connection = %claim.connection_id, error = %err, "sync failed");
                let status = match &err {
                    SyncError::Provider(e) if e.needs_reauth() => ConnectionStatus::NeedsReauth,
                    SyncError::NoRefreshToken
                    | SyncError::NoCredential
                    | SyncError::PasswordRefused => ConnectionStatus::NeedsReauth,
                    _ => ConnectionStatus::Error,
                };
                let next = match &err {
                    SyncError::Provider(ProviderError::RateLimited {
                        retry_after: Some(wait),
                    }) => {
                        now + SignedDuration::try_from(*wait)
                            .unwrap_or(SignedDuration::from_mins(5))
                    }
                    _ => after(failures.saturating_add(1)),
                };
                (status, Some(err.to_string()), next)
            }
        };
        SyncResult {
            status,
            error,
            requests: tally.requests,
            changes: tally.changes,
            next_sync_at,
        }
    }

    async fn sync_connection(&self, claim: Claim, tally: &mut Tally) -> Result<(), SyncError> {
        let connection = self
            .store
            .connection(claim.user_id, claim.connection_id)
            .await?;
        let mut source = Source::open(self, claim, &connection).await?;
        let store = &self.store;
        let (user, id) = (claim.user_id, claim.connection_id);
        let remote = source.calendars(tally).await?;
        let calendars = store.upsert_calendars(user, id, &remote).await?;
        let window = self.horizon(user).await?;
        // A calendar the account cannot read (unshared since the listing,
        // or gone) fails the sync, but only after the others are synced.
        let mut unreadable = None;
        for calendar in calendars.iter().filter(|c| c.enabled) {
            let synced = self
                .sync_calendar(
                    &mut source,
                    calendar.id,
                    &calendar.external_id,
                    &window,
                    tally,
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
            tally.horizon_extended |= store.extend_horizon(user, calendar.id, &window).await?;
        }
        unreadable.map_or(Ok(()), |err| Err(err.into()))
    }

    /// One calendar's round: page after page until the provider says done,
    /// each page applied with its cursor in one transaction.
    async fn sync_calendar(
        &self,
        source: &mut Source<'_>,
        calendar: CalendarId,
        external_id: &str,
        window: &Window,
        tally: &mut Tally,
    ) -> Result<(), SyncError> {
        let store = &self.store;
        let user = source.user();
        let mut restarted = false;
        let mut cursor = store.calendar_cursor(user, calendar).await?;
        for _ in 0..MAX_PAGES {
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
                other => other?,
            };
            // A feed is a snapshot: a changed one lists everything again,
            // and what it no longer lists must be swept.
            let starts_full_round =
                cursor.is_none() || (source.is_snapshot() && !page.changes.is_empty());
            let update = PageUpdate {
                changes: &page.changes,
                starts_full_round,
                next: &page.next,
                window,
                now: self.clock.now(),
            };
            tally.changes += store.apply_page(user, calendar, &update).await?.total();
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

/// A uniform number in [0, 1) for spreading schedules; not security relevant.
fn jitter_unit() -> f64 {
    let mut bytes = [0u8; 4];
    match getrandom::getrandom(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.5,
    }
}
