//! Migrations: an ordered list per backend, applied once each and recorded in
//! `schema_migrations`. A migration and its record commit together, so a crash
//! never leaves a half-applied version. On PostgreSQL an advisory lock keeps
//! instances that start together from migrating at the same time.

use crate::{Backend, Result, Store, StoreError};

/// A schema version and the SQL that reaches it.
struct Migration {
    version: i64,
    sql: &'static str,
}

const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../migrations/sqlite/0001_initial.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../migrations/sqlite/0002_sync_engine.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("../migrations/sqlite/0003_accounts.sql"),
    },
];

const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../migrations/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../migrations/postgres/0002_sync_engine.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("../migrations/postgres/0003_accounts.sql"),
    },
];

const CREATE_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)";

/// Any number; it only has to be the same in every calsync instance.
const PG_LOCK_KEY: i64 = 0x0063_616c_7379_6e63;

impl Store {
    /// Applies every migration the database has not seen yet.
    pub async fn migrate(&self) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                apply_all(&mut *conn, SQLITE).await
            }
            Backend::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(PG_LOCK_KEY)
                    .execute(&mut *conn)
                    .await?;
                let outcome = apply_all(&mut *conn, POSTGRES).await;
                sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(PG_LOCK_KEY)
                    .execute(&mut *conn)
                    .await?;
                outcome
            }
        }
    }
}

async fn apply_all<C>(conn: &mut C, migrations: &[Migration]) -> Result<()>
where
    C: sqlx::Connection,
    for<'c> &'c mut C: sqlx::Executor<'c, Database = C::Database>,
    i64: sqlx::Type<C::Database>
        + for<'r> sqlx::Decode<'r, C::Database>
        + for<'q> sqlx::Encode<'q, C::Database>,
    for<'q> <C::Database as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, C::Database>,
    (i64,): for<'r> sqlx::FromRow<'r, <C::Database as sqlx::Database>::Row>,
{
    sqlx::raw_sql(CREATE_TABLE).execute(&mut *conn).await?;
    let (current,): (i64,) =
        sqlx::query_as("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            .fetch_one(&mut *conn)
            .await?;
    let latest = migrations.last().map_or(0, |m| m.version);
    if current > latest {
        return Err(StoreError::NewerSchema(current));
    }
    for migration in migrations.iter().filter(|m| m.version > current) {
        let failed = |source| StoreError::Migration {
            version: migration.version,
            source,
        };
        let mut tx = conn.begin().await?;
        sqlx::raw_sql(migration.sql)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(migration.version)
            .bind(jiff::Timestamp::now().as_second())
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        tx.commit().await?;
        tracing::info!(version = migration.version, "applied migration");
    }
    Ok(())
}
