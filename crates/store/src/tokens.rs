//! API tokens for `Authorization: Bearer`. Only a SHA-256 of each token is
//! stored: the token itself is shown once, at creation, and never again.

use calsync_core::model::UserId;
use jiff::Timestamp;

use crate::{from_secs, on_pool, to_secs, Result, Store};

/// A token as listings show it (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenInfo {
    pub id: i64,
    pub name: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

impl Store {
    /// Records a new token by its hash.
    pub async fn create_api_token(
        &self,
        user: UserId,
        name: &str,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<i64> {
        let sql = "INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id";
        let (id,): (i64,) = on_pool!(self, pool => sqlx::query_as(sql)
            .bind(user.0)
            .bind(name)
            .bind(token_hash)
            .bind(to_secs(now))
            .fetch_one(pool)
            .await)?;
        Ok(id)
    }

    /// The user a token hash belongs to; records the use (at most once a minute,
    /// so that a busy API client does not turn every read into a write).
    pub async fn user_for_api_token(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<UserId>> {
        let sql = "SELECT id, user_id, last_used_at FROM api_tokens WHERE token_hash = $1";
        let row: Option<(i64, i64, Option<i64>)> = on_pool!(self, pool => sqlx::query_as(sql).bind(token_hash).fetch_optional(pool).await)?;
        let Some((id, user_id, last_used)) = row else {
            return Ok(None);
        };
        if last_used.is_none_or(|t| to_secs(now) - t >= 60) {
            let sql = "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2";
            on_pool!(self, pool => sqlx::query(sql).bind(to_secs(now)).bind(id).execute(pool).await.map(|r| r.rows_affected()))?;
        }
        Ok(Some(UserId(user_id)))
    }

    /// A user's tokens, newest first.
    pub async fn list_api_tokens(&self, user: UserId) -> Result<Vec<ApiTokenInfo>> {
        let sql = "SELECT id, name, created_at, last_used_at FROM api_tokens WHERE user_id = $1 ORDER BY id DESC";
        let rows: Vec<(i64, String, i64, Option<i64>)> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(user.0).fetch_all(pool).await)?;
        Ok(rows
            .into_iter()
            .map(|(id, name, created, used)| ApiTokenInfo {
                id,
                name,
                created_at: from_secs(created),
                last_used_at: used.map(from_secs),
            })
            .collect())
    }
}
