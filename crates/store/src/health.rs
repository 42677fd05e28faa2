//! The sync backlog for `/metrics`: how many connections wait for a round,
//! since when, and how many rounds hold a lease right now, across every
//! instance sharing the database.

use jiff::Timestamp;

use crate::{from_secs, on_pool, to_secs, Result, Store};

/// The sync engine's work as the database sees it at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncBacklog {
    /// Connections whose round is due and that no instance holds: due
    /// (`next_sync_at <= now`), not waiting for the user to reconnect, and
    /// without a live lease.
    pub due: u64,
    /// The earliest `next_sync_at` among the due ones.
    pub oldest_due_at: Option<Timestamp>,
    /// Connections with a live lease (`lease_until >= now`): rounds in
    /// flight on all instances.
    pub leased: u64,
}

/// due, oldest due, leased.
type BacklogRow = (i64, Option<i64>, i64);

impl Store {
    /// The sync backlog at `now`: an admin view, over all users. One
    /// statement, each part walking its own index (`connections_due`,
    /// `connections_lease`).
    pub async fn sync_backlog(&self, now: Timestamp) -> Result<SyncBacklog> {
        let sql = "SELECT \
                     (SELECT COUNT(*) FROM connections WHERE next_sync_at <= $1 AND status <> 'needs_reauth' \
                        AND (lease_until IS NULL OR lease_until < $1)), \
                     (SELECT MIN(next_sync_at) FROM connections WHERE next_sync_at <= $1 AND status <> 'needs_reauth' \
                        AND (lease_until IS NULL OR lease_until < $1)), \
                     (SELECT COUNT(*) FROM connections WHERE lease_until >= $1)";
        let (due, oldest, leased): BacklogRow = on_pool!(self, pool => sqlx::query_as(sql)
            .bind(to_secs(now))
            .fetch_one(pool)
            .await)?;
        Ok(SyncBacklog {
            due: u64::try_from(due).unwrap_or(0),
            oldest_due_at: oldest.map(from_secs),
            leased: u64::try_from(leased).unwrap_or(0),
        })
    }
}
