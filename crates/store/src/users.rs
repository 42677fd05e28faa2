//! Users: created by `calsync user add`, looked up at login, changed by
//! their own settings, and deleted with everything of theirs.
//!
//! Passwords arrive here already hashed (argon2, by the server's auth module);
//! the store only keeps the PHC string. Every table that holds a user's rows
//! references `users` (directly, or through a connection, calendar or event)
//! with ON DELETE CASCADE, so deleting the user row deletes them all.

use calsync_core::model::{User, UserId};
use jiff::Timestamp;

use crate::{from_secs, on_pool, to_secs, write_begin, Result, Store, StoreError};

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

    /// The user's password hash, for checking their current password.
    pub async fn user_password_hash(&self, id: UserId) -> Result<String> {
        let sql = "SELECT password_hash FROM users WHERE id = $1";
        let row: Option<(String,)> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(id.0).fetch_optional(pool).await)?;
        row.map(|(hash,)| hash).ok_or(StoreError::NotFound)
    }

    /// Replaces a user's password hash and, in the same transaction, ends
    /// every session of theirs except the one whose token hash is `keep`
    /// (the browser that changed it). Returns how many sessions ended.
    pub async fn change_password(
        &self,
        user: UserId,
        password_hash: &str,
        keep: Option<&str>,
    ) -> Result<u64> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(write_begin(pool)).await?;
            let changed = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(password_hash)
                .bind(user.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            let ended = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND token_hash <> COALESCE($2, '')")
                .bind(user.0)
                .bind(keep)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(ended)
        })
    }

    /// Where the user's reminders go, if they said.
    pub async fn user_email(&self, id: UserId) -> Result<Option<String>> {
        let sql = "SELECT email FROM users WHERE id = $1";
        let row: Option<(Option<String>,)> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(id.0).fetch_optional(pool).await)?;
        row.map(|(email,)| email).ok_or(StoreError::NotFound)
    }

    /// Sets (or with `None` clears) the user's email (validated by the caller).
    pub async fn set_user_email(&self, id: UserId, email: Option<&str>) -> Result<()> {
        let sql = "UPDATE users SET email = $1 WHERE id = $2";
        let changed = on_pool!(self, pool => sqlx::query(sql).bind(email).bind(id.0).execute(pool).await.map(|r| r.rows_affected()))?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Deletes the user and, through the schema's cascades, every row of
    /// theirs: sessions, API tokens, OAuth states, connections with their
    /// sealed tokens, calendars, events, occurrences and sync runs.
    pub async fn delete_user(&self, id: UserId) -> Result<()> {
        let sql = "DELETE FROM users WHERE id = $1";
        let gone = on_pool!(self, pool => sqlx::query(sql).bind(id.0).execute(pool).await.map(|r| r.rows_affected()))?;
        if gone == 0 {
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
