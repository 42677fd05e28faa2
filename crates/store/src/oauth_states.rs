//! OAuth `state` values in flight: bound to the user who started the flow,
//! single use, short lived, with the PKCE verifier sealed beside them.

use calsync_core::model::{Provider, UserId};
use jiff::Timestamp;
use secrecy::SecretString;

use crate::seal::SealContext;
use crate::{on_pool, to_secs, Result, Store};

/// A started OAuth flow, as stored.
#[derive(Debug)]
pub struct OAuthState {
    pub user_id: UserId,
    pub provider: Provider,
    pub pkce_verifier: SecretString,
    pub expires_at: Timestamp,
}

pub(crate) fn verifier_context(state_hash: &str) -> SealContext {
    SealContext::new("oauth_states", "pkce_verifier", state_hash)
}

impl Store {
    /// Records a started flow under the hash of its `state`.
    pub async fn create_oauth_state(
        &self,
        state_hash: &str,
        flow: &OAuthState,
        now: Timestamp,
    ) -> Result<()> {
        let sealed = self
            .keyring()
            .seal(&flow.pkce_verifier, &verifier_context(state_hash))?;
        let sql = "INSERT INTO oauth_states (state_hash, user_id, provider, pkce_verifier, expires_at, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(state_hash)
            .bind(flow.user_id.0)
            .bind(flow.provider.as_str())
            .bind(&sealed)
            .bind(to_secs(flow.expires_at))
            .bind(to_secs(now))
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Takes the flow a `state` hash names, if it is unexpired and was started
    /// by `user` for `provider`. Taking deletes it, so a replayed state finds nothing.
    pub async fn take_oauth_state(
        &self,
        state_hash: &str,
        user: UserId,
        provider: Provider,
        now: Timestamp,
    ) -> Result<Option<OAuthState>> {
        let sql = "DELETE FROM oauth_states WHERE state_hash = $1 RETURNING user_id, provider, pkce_verifier, expires_at";
        let row: Option<(i64, String, String, i64)> = on_pool!(self, pool => sqlx::query_as(sql).bind(state_hash).fetch_optional(pool).await)?;
        let Some((user_id, provider_name, sealed, expires_at)) = row else {
            return Ok(None);
        };
        if user_id != user.0 || provider_name != provider.as_str() || expires_at <= to_secs(now) {
            return Ok(None);
        }
        let pkce_verifier = self
            .keyring()
            .open(&sealed, &verifier_context(state_hash))?;
        Ok(Some(OAuthState {
            user_id: user,
            provider,
            pkce_verifier,
            expires_at: crate::from_secs(expires_at),
        }))
    }
}
