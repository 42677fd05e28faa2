//! API tokens for `Authorization: Bearer`. Only a SHA-256 of each token is
//! stored: the token itself is shown once, at creation, and never again.
//!
//! A token may expire (`expires_at`); an expired one finds no user, exactly
//! as an unknown one. A token created by another token (`parent_id`) is
//! deleted with it (ON DELETE CASCADE), so revoking a token also revokes
//! whatever was made with it.

use calsync_core::model::UserId;
use jiff::Timestamp;

use crate::{from_secs, on_pool, to_secs, Result, Store, StoreError};

/// A token as listings show it (never the token itself, nor its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenInfo {
    pub id: i64,
    pub name: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    /// When it stops working; `None`: never.
    pub expires_at: Option<Timestamp>,
    /// The token it was created with, if it was created with one.
    pub parent_id: Option<i64>,
}

impl ApiTokenInfo {
    /// Whether the token no longer authenticates at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

type TokenRow = (i64, String, i64, Option<i64>, Option<i64>, Option<i64>);
/// A [`TokenRow`] and its user's id.
type OwnedTokenRow = (i64, String, i64, Option<i64>, Option<i64>, Option<i64>, i64);

const TOKEN_COLUMNS: &str = "id, name, created_at, last_used_at, expires_at, parent_id";

fn token_from_row((id, name, created, used, expires, parent): TokenRow) -> ApiTokenInfo {
    ApiTokenInfo {
        id,
        name,
        created_at: from_secs(created),
        last_used_at: used.map(from_secs),
        expires_at: expires.map(from_secs),
        parent_id: parent,
    }
}

impl Store {
    /// Records a new token by its hash, with no expiry.
    pub async fn create_api_token(
        &self,
        user: UserId,
        name: &str,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<i64> {
        self.create_api_token_with(user, name, token_hash, None, None, now)
            .await
    }

    /// Records a new token by its hash, expiring at `expires_at` (never when
    /// `None`), as a child of the user's token `parent` when given. A parent
    /// that is gone (revoked meanwhile) or not the user's is
    /// [`StoreError::NotFound`].
    pub async fn create_api_token_with(
        &self,
        user: UserId,
        name: &str,
        token_hash: &str,
        expires_at: Option<Timestamp>,
        parent: Option<i64>,
        now: Timestamp,
    ) -> Result<i64> {
        // The parent must be the same user's: the SELECT finds nothing
        // otherwise, and nothing is inserted.
        let sql = "INSERT INTO api_tokens (user_id, name, token_hash, created_at, expires_at, parent_id) \
                   SELECT $1, $2, $3, $4, $5, $6 \
                   WHERE $6 IS NULL OR EXISTS (SELECT 1 FROM api_tokens WHERE id = $6 AND user_id = $1) \
                   RETURNING id";
        let row: Option<(i64,)> = on_pool!(self, pool => sqlx::query_as(sql)
            .bind(user.0)
            .bind(name)
            .bind(token_hash)
            .bind(to_secs(now))
            .bind(expires_at.map(to_secs))
            .bind(parent)
            .fetch_optional(pool)
            .await)
        .map_err(|err| match &err {
            // The parent was deleted between the check and the insert.
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
            _ => StoreError::unique_as_conflict(err, "token"),
        })?;
        row.map(|(id,)| id).ok_or(StoreError::NotFound)
    }

    /// The user a token hash belongs to, unless the token expired; records
    /// the use (at most once a minute, so that a busy API client does not
    /// turn every read into a write).
    pub async fn user_for_api_token(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<UserId>> {
        Ok(self
            .api_token_for_hash(token_hash, now)
            .await?
            .map(|(user, _)| user))
    }

    /// The unexpired token a hash names and its user; records the use as
    /// [`Store::user_for_api_token`] does.
    pub async fn api_token_for_hash(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<(UserId, ApiTokenInfo)>> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS}, user_id FROM api_tokens \
             WHERE token_hash = $1 AND (expires_at IS NULL OR expires_at > $2)"
        );
        let row: Option<OwnedTokenRow> = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(token_hash)
            .bind(to_secs(now))
            .fetch_optional(pool)
            .await)?;
        let Some((id, name, created, used, expires, parent, user_id)) = row else {
            return Ok(None);
        };
        let mut info = token_from_row((id, name, created, used, expires, parent));
        if used.is_none_or(|t| to_secs(now) - t >= 60) {
            let sql = "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2";
            on_pool!(self, pool => sqlx::query(sql).bind(to_secs(now)).bind(id).execute(pool).await.map(|r| r.rows_affected()))?;
            info.last_used_at = Some(now);
        }
        Ok(Some((UserId(user_id), info)))
    }

    /// A user's tokens, expired ones included, newest first.
    pub async fn list_api_tokens(&self, user: UserId) -> Result<Vec<ApiTokenInfo>> {
        let sql =
            format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = $1 ORDER BY id DESC");
        let rows: Vec<TokenRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(user.0).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(token_from_row).collect())
    }

    /// How many tokens a user has, expired ones included.
    pub async fn count_api_tokens(&self, user: UserId) -> Result<i64> {
        let sql = "SELECT COUNT(*) FROM api_tokens WHERE user_id = $1";
        let (n,): (i64,) =
            on_pool!(self, pool => sqlx::query_as(sql).bind(user.0).fetch_one(pool).await)?;
        Ok(n)
    }

    /// Revokes one of the user's tokens, and with it the tokens created with
    /// it; [`StoreError::NotFound`] when the user has no such token.
    pub async fn delete_api_token(&self, user: UserId, id: i64) -> Result<()> {
        let sql = "DELETE FROM api_tokens WHERE id = $1 AND user_id = $2";
        let gone = on_pool!(self, pool => sqlx::query(sql).bind(id).bind(user.0).execute(pool).await.map(|r| r.rows_affected()))?;
        if gone == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
