//! Application state shared by every request and background task.

use std::sync::Arc;

use calsync_core::clock::Clock;
use calsync_store::Store;
use tokio::sync::watch;

use crate::config::Config;
use crate::http::rate_limit::LoginLimiter;
use crate::live::ChangeFeed;
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
}

impl AppState {
    /// State for a store, a configuration and a clock.
    pub fn new(
        store: Store,
        config: Config,
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
        }
    }
}
