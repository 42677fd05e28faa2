//! Users: created by `calsync user add`, looked up at login.
//!
//! Passwords arrive here already hashed (argon2, by the server's auth module);
//! the store only keeps the PHC string.

use calsync_core::model::{User, UserId};
use jiff::Timestamp;

use crate::{from_secs, on_pool, to_secs, Result, Store, StoreError};

type UserRow = (i64, String, String, i64);

fn user_from_row((id, username, timezone, created_at): UserRow) -> User {
    User {
        id: UserId(id),
        username,
        timezone,
        created_at: from_secs(created_at),
    }
}

impl Store {
    /// Creates a user; [`StoreError::Conflict`] when the name is taken.
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<User> {
        let sql = "INSERT INTO users (username, password_hash, created_at) VALUES ($1, $2, $3) \
                   RETURNING id, username, timezone, created_at";
        let row: UserRow = on_pool!(self, pool => sqlx::query_as(sql)
            .bind(username)
            .bind(password_hash)
            .bind(to_secs(now))
            .fetch_one(pool)
            .await)
        .map_err(|e| StoreError::unique_as_conflict(e, "user"))?;
        Ok(user_from_row(row))
    }

    /// Replaces a user's password hash.
    pub async fn set_password(&self, user: UserId, password_hash: &str) -> Result<()> {
        let sql = "UPDATE users SET password_hash = $1 WHERE id = $2";
        let done = on_pool!(self, pool => sqlx::query(sql).bind(password_hash).bind(user.0).execute(pool).await.map(|r| r.rows_affected()))?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// The user and their password hash, for checking a login.
    pub async fn user_credentials(&self, username: &str) -> Result<Option<(User, String)>> {
        let sql = "SELECT id, username, timezone, created_at, password_hash FROM users WHERE username = $1";
        let row: Option<(i64, String, String, i64, String)> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(username).fetch_optional(pool).await)?;
        Ok(row.map(|(id, name, tz, created, hash)| (user_from_row((id, name, tz, created)), hash)))
    }

    /// A user by name.
    pub async fn user_by_name(&self, username: &str) -> Result<User> {
        let sql = "SELECT id, username, timezone, created_at FROM users WHERE username = $1";
        let row: Option<UserRow> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(username).fetch_optional(pool).await)?;
        row.map(user_from_row).ok_or(StoreError::NotFound)
    }

    /// A user by id.
    pub async fn user(&self, id: UserId) -> Result<User> {
        let sql = "SELECT id, username, timezone, created_at FROM users WHERE id = $1";
        let row: Option<UserRow> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(id.0).fetch_optional(pool).await)?;
        row.map(user_from_row).ok_or(StoreError::NotFound)
    }

    /// Sets the zone the user's pages are shown in (validated by the caller).
    pub async fn set_user_timezone(&self, id: UserId, timezone: &str) -> Result<()> {
        let sql = "UPDATE users SET timezone = $1 WHERE id = $2";
        let changed = on_pool!(self, pool => sqlx::query(sql).bind(timezone).bind(id.0).execute(pool).await.map(|r| r.rows_affected()))?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// How many users exist; the server hints at `calsync user add` when none do.
    pub async fn count_users(&self) -> Result<i64> {
        let (n,): (i64,) = on_pool!(self, pool => sqlx::query_as("SELECT COUNT(*) FROM users").fetch_one(pool).await)?;
        Ok(n)
    }
}
