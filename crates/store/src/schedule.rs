//! Who syncs what, when: `connections.next_sync_at` is both the schedule and
//! the lease. A worker claims a due connection by moving `next_sync_at` a lease
//! length into the future in one conditional UPDATE; if two instances race,
//! the second finds the row no longer due and claims nothing. A worker that
//! dies simply lets the lease run out. Each sync is recorded in `sync_runs`.

use calsync_core::model::{ConnectionId, ConnectionStatus, SyncRun, UserId};
use jiff::Timestamp;

use crate::{from_secs, on_pool, to_secs, Result, Store};

/// started_at, finished_at, outcome, requests, changes, error.
type SyncRunRow = (i64, Option<i64>, Option<String>, i64, i64, Option<String>);

/// A connection a worker now owns until `lease_until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub connection_id: ConnectionId,
    pub user_id: UserId,
}

/// How a sync ended, for the connection and its run record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    pub status: ConnectionStatus,
    /// A message for the user; never contains secrets.
    pub error: Option<String>,
    pub requests: u64,
    pub changes: u64,
    /// When to sync next.
    pub next_sync_at: Timestamp,
}

impl Store {
    /// Claims the connection that has been due longest, if any.
    pub async fn claim_due_connection(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<Claim>> {
        let sql = "UPDATE connections SET next_sync_at = $1, status = 'syncing' \
                   WHERE id = (SELECT id FROM connections WHERE next_sync_at <= $2 AND status <> 'needs_reauth' \
                               ORDER BY next_sync_at, id LIMIT 1) \
                     AND next_sync_at <= $2 \
                   RETURNING id, user_id";
        let row: Option<(i64, i64)> = on_pool!(self, pool => sqlx::query_as(sql)
            .bind(to_secs(lease_until))
            .bind(to_secs(now))
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(|(id, user)| Claim {
            connection_id: ConnectionId(id),
            user_id: UserId(user),
        }))
    }

    /// Makes the user's connection due now (a manual sync), showing it as
    /// pending until a worker claims it; false when it is not theirs. A
    /// connection that needs reauthorisation stays as it is.
    pub async fn request_sync(
        &self,
        user: UserId,
        id: ConnectionId,
        now: Timestamp,
    ) -> Result<bool> {
        let sql = "UPDATE connections SET next_sync_at = $1, status = 'pending' \
                   WHERE id = $2 AND user_id = $3 AND status <> 'needs_reauth'";
        let done = on_pool!(self, pool => sqlx::query(sql)
            .bind(to_secs(now))
            .bind(id.0)
            .bind(user.0)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// Makes connections due now, for `calsync sync` (an admin command, so
    /// not scoped to one user): all of them, a user's, or one. Returns how many.
    pub async fn make_due(
        &self,
        user: Option<UserId>,
        id: Option<ConnectionId>,
        now: Timestamp,
    ) -> Result<u64> {
        let sql = "UPDATE connections SET next_sync_at = $1, status = 'pending' WHERE status <> 'needs_reauth' \
                   AND ($2 IS NULL OR user_id = $2) AND ($3 IS NULL OR id = $3)";
        let done = on_pool!(self, pool => sqlx::query(sql)
            .bind(to_secs(now))
            .bind(user.map(|u| u.0))
            .bind(id.map(|c| c.0))
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done)
    }

    /// How many connections (of a user, or all) ended their last sync in error.
    pub async fn count_failed_connections(&self, user: Option<UserId>) -> Result<i64> {
        let sql = "SELECT COUNT(*) FROM connections WHERE status IN ('error', 'needs_reauth') AND ($1 IS NULL OR user_id = $1)";
        let (n,): (i64,) = on_pool!(self, pool => sqlx::query_as(sql).bind(user.map(|u| u.0)).fetch_one(pool).await)?;
        Ok(n)
    }

    /// A connection's latest sync runs, newest first.
    pub async fn recent_sync_runs(&self, id: ConnectionId, limit: u32) -> Result<Vec<SyncRun>> {
        let sql =
            "SELECT started_at, finished_at, outcome, requests, changes, error FROM sync_runs \
                   WHERE connection_id = $1 ORDER BY id DESC LIMIT $2";
        let rows: Vec<SyncRunRow> = on_pool!(self, pool => sqlx::query_as(sql)
            .bind(id.0)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(
                |(started, finished, outcome, requests, changes, error)| SyncRun {
                    started_at: from_secs(started),
                    finished_at: finished.map(from_secs),
                    outcome,
                    requests: u64::try_from(requests).unwrap_or(0),
                    changes: u64::try_from(changes).unwrap_or(0),
                    error,
                },
            )
            .collect())
    }

    /// Records the start of a sync; returns the run's id.
    pub async fn start_sync_run(&self, id: ConnectionId, now: Timestamp) -> Result<i64> {
        let sql = "INSERT INTO sync_runs (connection_id, started_at) VALUES ($1, $2) RETURNING id";
        let (run,): (i64,) = on_pool!(self, pool => sqlx::query_as(sql).bind(id.0).bind(to_secs(now)).fetch_one(pool).await)?;
        Ok(run)
    }

    /// Records how a sync ended, on its run and on the connection.
    pub async fn finish_sync(
        &self,
        id: ConnectionId,
        run: i64,
        result: &SyncResult,
        now: Timestamp,
    ) -> Result<()> {
        let ok = result.status == ConnectionStatus::Ok;
        let outcome = if ok { "ok" } else { result.status.as_str() };
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(crate::write_begin(pool)).await?;
            sqlx::query("UPDATE sync_runs SET finished_at = $1, outcome = $2, requests = $3, changes = $4, error = $5 WHERE id = $6")
                .bind(to_secs(now))
                .bind(outcome)
                .bind(i64::try_from(result.requests).unwrap_or(i64::MAX))
                .bind(i64::try_from(result.changes).unwrap_or(i64::MAX))
                .bind(&result.error)
                .bind(run)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE connections SET status = $1, last_error = $2, next_sync_at = $3, updated_at = $4, \
                     last_synced_at = CASE WHEN $5 THEN $4 ELSE last_synced_at END, \
                     consecutive_failures = CASE WHEN $5 THEN 0 ELSE consecutive_failures + 1 END \
                 WHERE id = $6",
            )
            .bind(result.status.as_str())
            .bind(&result.error)
            .bind(to_secs(result.next_sync_at))
            .bind(to_secs(now))
            .bind(ok)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }
}
