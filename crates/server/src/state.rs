//! Application state shared by every request and background task.

use std::sync::Arc;

use calsync_core::clock::Clock;
use calsync_store::Store;
use tokio::sync::{watch, Notify};

use crate::config::Config;
use crate::http::rate_limit::LoginLimiter;
use crate::live::ChangeFeed;
use crate::providers::Providers;
use crate::quotas::Quotas;
use crate::sync::SyncEngine;
use crate::telemetry::Metrics;

/// Cheap to clone: everything inside is shared.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub login_limiter: Arc<LoginLimiter>,
    pub changes: ChangeFeed,
    /// Turns true when the server is stopping; long-lived responses end then.
    pub shutdown: watch::Receiver<bool>,
    pub providers: Providers,
    /// Wakes the sync worker when a connection became due (a manual sync).
    pub worker: Arc<Notify>,
    /// Per-user limits on requests that cost more than a read.
    pub quotas: Arc<Quotas>,
}

impl AppState {
    /// State for a store, a configuration and a clock.
    pub fn new(
        store: Store,
        config: Config,
        providers: Providers,
        clock: Arc<dyn Clock>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            store,
            config: Arc::new(config),
            clock,
            metrics: Arc::new(Metrics::default()),
            login_limiter: Arc::new(LoginLimiter::default()),
            changes: ChangeFeed::default(),
            shutdown,
            providers,
            worker: Arc::new(Notify::new()),
            quotas: Arc::new(Quotas::default()),
        }
    }

    /// Tells the sync worker to look for due connections now.
    pub fn wake_worker(&self) {
        self.worker.notify_one();
    }

    /// A sync engine sharing this state's store, providers, clock and feed.
    pub fn sync_engine(&self) -> SyncEngine {
        SyncEngine {
            store: self.store.clone(),
            providers: self.providers.clone(),
            clock: self.clock.clone(),
            changes: self.changes.clone(),
            interval: self.config.sync_interval,
            wake: self.worker.clone(),
            concurrency: self.config.sync_concurrency,
            limits: calsync_store::ClaimLimits::default(),
            metrics: self.metrics.clone(),
        }
    }
}
