//! Browser sessions. The cookie carries a random token; the store keeps its
//! SHA-256, so a leaked database does not hand out live sessions. Each session
//! has its own CSRF token for the forms and API calls made with the cookie.

use calsync_core::model::UserId;
use jiff::Timestamp;

use crate::{from_secs, on_pool, to_secs, Result, Store};

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user_id: UserId,
    pub csrf_token: String,
    pub expires_at: Timestamp,
}

impl Store {
    /// Records a new session.
    pub async fn create_session(
        &self,
        token_hash: &str,
        session: &Session,
        now: Timestamp,
    ) -> Result<()> {
        let sql = "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(token_hash)
            .bind(session.user_id.0)
            .bind(&session.csrf_token)
            .bind(to_secs(now))
            .bind(to_secs(session.expires_at))
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The unexpired session a token hash names.
    pub async fn session(&self, token_hash: &str, now: Timestamp) -> Result<Option<Session>> {
        let sql = "SELECT user_id, csrf_token, expires_at FROM sessions WHERE token_hash = $1 AND expires_at > $2";
        let row: Option<(i64, String, i64)> = on_pool!(self, pool => sqlx::query_as(sql).bind(token_hash).bind(to_secs(now)).fetch_optional(pool).await)?;
        Ok(row.map(|(user, csrf_token, expires)| Session {
            user_id: UserId(user),
            csrf_token,
            expires_at: from_secs(expires),
        }))
    }

    /// Ends a session (logout).
    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        on_pool!(self, pool => sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
