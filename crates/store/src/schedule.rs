//! Who syncs what, when. `connections.next_sync_at` is the schedule; the
//! lease is a pair of its own: `lease_token`, a generation raised by every
//! claim, and `lease_until`, renewed while the round works. A worker claims a
//! due, unleased connection in one conditional UPDATE; if two instances race,
//! the second finds it leased and claims nothing. Every write of a round is
//! conditional on the token it claimed ([`Store::renew_lease`] and the page
//! writes), so a round whose lease ran out and was claimed again (its worker
//! stalled) stops without writing. A worker that dies lets the lease run out.
//! "Sync now" during a round never touches the lease: it asks for one more
//! round after it (`sync_again`). Each round is recorded in `sync_runs`.

use calsync_core::model::{ConnectionId, ConnectionStatus, SyncRun, UserId, WaitReason};
use jiff::Timestamp;

use crate::{from_secs, on_pool, to_secs, Backend, Result, Store};

/// started_at, finished_at, outcome, requests, changes, error.
type SyncRunRow = (i64, Option<i64>, Option<String>, i64, i64, Option<String>);

/// A connection a worker now owns, fenced by its lease token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub connection_id: ConnectionId,
    pub user_id: UserId,
    /// The lease generation this round holds; writes of the round are
    /// conditional on it.
    pub lease_token: i64,
}

/// How many rounds may run at once, across every instance, per user and per
/// CalDAV/ICS host: one user's fifty feeds, or one slow server, never take
/// every worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimLimits {
    pub per_user: u32,
    pub per_host: u32,
}

impl Default for ClaimLimits {
    fn default() -> Self {
        Self {
            per_user: 4,
            per_host: 4,
        }
    }
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
    /// Why that is later than the interval.
    pub wait_reason: Option<WaitReason>,
}

/// Due, unleased, not waiting for the user to reconnect, and under the
/// per-user and per-host limits of rounds in flight. `$1` lease end, `$2`
/// now, `$3` per user, `$4` per host.
const CLAIMABLE: &str = "SELECT c.id FROM connections c \
     WHERE c.next_sync_at <= $2 AND c.status <> 'needs_reauth' \
       AND (c.lease_until IS NULL OR c.lease_until < $2) \
       AND c.user_id NOT IN (SELECT user_id FROM connections WHERE lease_until >= $2 \
                             GROUP BY user_id HAVING COUNT(*) >= $3) \
       AND (c.host IS NULL OR c.host NOT IN (SELECT host FROM connections \
                             WHERE lease_until >= $2 AND host IS NOT NULL \
                             GROUP BY host HAVING COUNT(*) >= $4)) \
     ORDER BY c.next_sync_at, c.id LIMIT 1";

const CLAIM_UPDATE: &str =
    "UPDATE connections SET lease_token = lease_token + 1, lease_until = $1, \
         status = 'syncing', sync_again = FALSE \
     WHERE id = ({claimable}) \
       AND next_sync_at <= $2 AND (lease_until IS NULL OR lease_until < $2) \
     RETURNING id, user_id, lease_token";

impl Store {
    /// Claims the connection that has been due longest, if any is claimable
    /// under `limits`; the lease lasts until `lease_until` unless renewed.
    pub async fn claim_due_connection(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limits: ClaimLimits,
    ) -> Result<Option<Claim>> {
        // PostgreSQL: claimers on other instances skip the row one of them
        // is taking instead of queueing behind it and then finding nothing.
        let claimable = match &self.backend {
            Backend::Sqlite(_) => CLAIMABLE.to_owned(),
            Backend::Postgres(_) => format!("{CLAIMABLE} FOR UPDATE SKIP LOCKED"),
        };
        let sql = CLAIM_UPDATE.replace("{claimable}", &claimable);
        let row: Option<(i64, i64, i64)> = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(to_secs(lease_until))
            .bind(to_secs(now))
            .bind(i64::from(limits.per_user))
            .bind(i64::from(limits.per_host))
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(|(id, user, lease_token)| Claim {
            connection_id: ConnectionId(id),
            user_id: UserId(user),
            lease_token,
        }))
    }

    /// Claims one connection whatever its schedule, unless a round holds it
    /// (`calsync sync --connection`); `None` when it is leased or gone.
    pub async fn claim_connection(
        &self,
        id: ConnectionId,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<Claim>> {
        let sql = "UPDATE connections SET lease_token = lease_token + 1, lease_until = $1, \
                       status = 'syncing', sync_again = FALSE \
                   WHERE id = $2 AND status <> 'needs_reauth' AND (lease_until IS NULL OR lease_until < $3) \
                   RETURNING id, user_id, lease_token";
        let row: Option<(i64, i64, i64)> = on_pool!(self, pool => sqlx::query_as(sql)
            .bind(to_secs(lease_until))
            .bind(id.0)
            .bind(to_secs(now))
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(|(id, user, lease_token)| Claim {
            connection_id: ConnectionId(id),
            user_id: UserId(user),
            lease_token,
        }))
    }

    /// The connections `calsync sync` means (an admin command, so not scoped
    /// to one user): all, a user's, or one; those that need reconnecting
    /// are left out. With their account names, oldest first.
    pub async fn connections_to_sync(
        &self,
        user: Option<UserId>,
        id: Option<ConnectionId>,
    ) -> Result<Vec<(ConnectionId, String)>> {
        let sql = "SELECT id, COALESCE(account_email, account_id) FROM connections WHERE status <> 'needs_reauth' \
                   AND ($1 IS NULL OR user_id = $1) AND ($2 IS NULL OR id = $2) ORDER BY id";
        let rows: Vec<(i64, String)> = on_pool!(self, pool => sqlx::query_as(sql)
            .bind(user.map(|u| u.0))
            .bind(id.map(|c| c.0))
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|(id, name)| (ConnectionId(id), name))
            .collect())
    }

    /// Extends the round's lease; false when it is no longer the round's
    /// (the connection was deleted or reconnected, or the lease ran out and
    /// another worker claimed it): the round must stop.
    pub async fn renew_lease(&self, claim: &Claim, until: Timestamp) -> Result<bool> {
        let sql = "UPDATE connections SET lease_until = $1 \
                   WHERE id = $2 AND lease_token = $3 AND lease_until IS NOT NULL";
        let done = on_pool!(self, pool => sqlx::query(sql)
            .bind(to_secs(until))
            .bind(claim.connection_id.0)
            .bind(claim.lease_token)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// Records the CalDAV server's or feed's host, for the per-host limit.
    pub async fn set_connection_host(&self, claim: &Claim, host: Option<&str>) -> Result<()> {
        let sql = "UPDATE connections SET host = $1 WHERE id = $2 AND lease_token = $3";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(host)
            .bind(claim.connection_id.0)
            .bind(claim.lease_token)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Makes the user's connection due now (a manual sync), showing it as
    /// pending until a worker claims it; false when it is not theirs. During
    /// a round it asks for one more round after it instead, leaving the
    /// round's lease alone. A connection that needs reauthorisation stays as
    /// it is.
    pub async fn request_sync(
        &self,
        user: UserId,
        id: ConnectionId,
        now: Timestamp,
    ) -> Result<bool> {
        let sql = format!("{SYNC_NOW} WHERE id = $2 AND user_id = $3 AND status <> 'needs_reauth'");
        let done = on_pool!(self, pool => sqlx::query(&sql)
            .bind(to_secs(now))
            .bind(id.0)
            .bind(user.0)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done > 0)
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

    /// Records how a round ended, on its run and, while the round still
    /// holds its lease, on the connection (releasing the lease). Returns
    /// false when the lease was lost: the connection was left as it is.
    pub async fn finish_sync(
        &self,
        claim: &Claim,
        run: i64,
        result: &SyncResult,
        now: Timestamp,
    ) -> Result<bool> {
        let synced = matches!(result.status, ConnectionStatus::Ok | ConnectionStatus::Held);
        let outcome = if result.status == ConnectionStatus::Ok {
            "ok"
        } else {
            result.status.as_str()
        };
        let updated = on_pool!(self, pool => {
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
            let updated = sqlx::query(
                "UPDATE connections SET status = $1, last_error = $2, updated_at = $4, \
                     next_sync_at = CASE WHEN sync_again THEN $4 ELSE $3 END, \
                     wait_reason = CASE WHEN sync_again THEN NULL ELSE $7 END, \
                     sync_again = FALSE, lease_until = NULL, \
                     last_synced_at = CASE WHEN $5 THEN $4 ELSE last_synced_at END, \
                     consecutive_failures = CASE WHEN $5 THEN 0 ELSE consecutive_failures + 1 END \
                 WHERE id = $6 AND lease_token = $8",
            )
            .bind(result.status.as_str())
            .bind(&result.error)
            .bind(to_secs(result.next_sync_at))
            .bind(to_secs(now))
            .bind(synced)
            .bind(claim.connection_id.0)
            .bind(result.wait_reason.map(WaitReason::as_str))
            .bind(claim.lease_token)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            updated
        });
        Ok(updated > 0)
    }

    /// Gives back every lease, for a server starting on SQLite: one server
    /// owns the file, so a lease found at start is its predecessor's, whose
    /// rounds died with it (a `calsync sync` running beside it is fenced off
    /// and its connections are synced again). Does nothing on PostgreSQL,
    /// where the leases of other instances are live. Returns how many.
    pub async fn release_leases_at_start(&self, now: Timestamp) -> Result<u64> {
        let Backend::Sqlite(pool) = &self.backend else {
            return Ok(0);
        };
        let sql = "UPDATE connections SET lease_token = lease_token + 1, lease_until = NULL, sync_again = FALSE, \
                       next_sync_at = $1, status = CASE WHEN status = 'syncing' THEN 'pending' ELSE status END \
                   WHERE lease_until IS NOT NULL";
        let released = sqlx::query(sql)
            .bind(to_secs(now))
            .execute(pool)
            .await?
            .rows_affected();
        Ok(released)
    }

    /// Gives a round's connection back without a result (the instance is
    /// stopping): due again at once, for any instance to pick up.
    pub async fn release_lease(&self, claim: &Claim, now: Timestamp) -> Result<()> {
        let sql =
            "UPDATE connections SET lease_until = NULL, sync_again = FALSE, next_sync_at = $1, \
                       status = CASE WHEN status = 'syncing' THEN 'pending' ELSE status END \
                   WHERE id = $2 AND lease_token = $3";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(to_secs(now))
            .bind(claim.connection_id.0)
            .bind(claim.lease_token)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }
}

/// "Sync now": during a round (a live lease), one more round after it; else
/// due at once and shown as pending. `$1` is now.
const SYNC_NOW: &str = "UPDATE connections SET \
     sync_again = CASE WHEN lease_until >= $1 THEN TRUE ELSE sync_again END, \
     status = CASE WHEN lease_until >= $1 THEN status ELSE 'pending' END, \
     next_sync_at = CASE WHEN lease_until >= $1 THEN next_sync_at ELSE $1 END, \
     wait_reason = NULL";
