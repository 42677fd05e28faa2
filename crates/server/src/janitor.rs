//! The janitor: at start and then hourly, expired sessions and OAuth states
//! go and each connection keeps its latest sync runs (the store lets one
//! instance of a cluster do it at a time).

use std::sync::Arc;
use std::time::Duration;

use calsync_core::clock::Clock;
use calsync_store::Store;
use tokio::sync::watch;

/// How often the janitor runs.
const EVERY: Duration = Duration::from_secs(3600);
/// Sync runs kept per connection: the history Settings shows, and days of
/// it for a look back at a failing connection.
pub const KEEP_RUNS: u32 = 100;

/// Cleans up until `shutdown` turns true.
pub async fn run(store: Store, clock: Arc<dyn Clock>, mut shutdown: watch::Receiver<bool>) {
    loop {
        match store.clean_up(clock.now(), KEEP_RUNS).await {
            Ok(Some(removed)) => tracing::info!(
                sessions = removed.sessions,
                oauth_states = removed.oauth_states,
                sync_runs = removed.sync_runs,
                "cleaned up"
            ),
            Ok(None) => tracing::debug!("another instance is cleaning up"),
            Err(err) => tracing::warn!(error = %err, "could not clean up"),
        }
        tokio::select! {
            _ = shutdown.wait_for(|stopping| *stopping) => return,
            () = tokio::time::sleep(EVERY) => {}
        }
    }
}
