//! Housekeeping that nothing else does: expired sessions and OAuth states
//! (every visit of an authorize URL adds one) are removed, and `sync_runs`
//! keeps only the latest runs of each connection (a connection syncing every
//! five minutes adds 288 a day). On PostgreSQL an advisory lock lets one
//! instance of a cluster do it at a time.

use jiff::Timestamp;

use crate::{on_pool, to_secs, Backend, Result, Store};

/// Any number; the same in every calsync instance, other than the migration lock's.
const PG_JANITOR_KEY: i64 = 0x0063_616c_6a61_6e69;

/// What one clean-up removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanUp {
    pub sessions: u64,
    pub oauth_states: u64,
    pub sync_runs: u64,
}

const TRIM_RUNS: &str = "DELETE FROM sync_runs WHERE id IN ( \
     SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY connection_id ORDER BY id DESC) AS newer \
                     FROM sync_runs) ranked \
     WHERE newer > $1)";

impl Store {
    /// Removes what expired by `now` and all but the latest `keep_runs` sync
    /// runs of each connection; `None` when another instance is at it.
    pub async fn clean_up(&self, now: Timestamp, keep_runs: u32) -> Result<Option<CleanUp>> {
        let locked = match &self.backend {
            Backend::Sqlite(_) => None,
            Backend::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                let (got,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
                    .bind(PG_JANITOR_KEY)
                    .fetch_one(&mut *conn)
                    .await?;
                if !got {
                    return Ok(None);
                }
                Some(conn)
            }
        };
        let done = self.remove_expired(now, keep_runs).await;
        if let Some(mut conn) = locked {
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(PG_JANITOR_KEY)
                .execute(&mut *conn)
                .await?;
        }
        done.map(Some)
    }

    async fn remove_expired(&self, now: Timestamp, keep_runs: u32) -> Result<CleanUp> {
        let now = to_secs(now);
        let removed = on_pool!(self, pool => {
            let run = |sql: &'static str, value: i64| async move {
                sqlx::query(sql).bind(value).execute(pool).await.map(|r| r.rows_affected())
            };
            Ok::<_, sqlx::Error>(CleanUp {
                sessions: run("DELETE FROM sessions WHERE expires_at <= $1", now).await?,
                oauth_states: run("DELETE FROM oauth_states WHERE expires_at <= $1", now).await?,
                sync_runs: run(TRIM_RUNS, i64::from(keep_runs)).await?,
            })
        })?;
        Ok(removed)
    }
}
