//! Keys of the sealed secrets: the start-up check that every sealed value names
//! a configured key, and `calsync keys rotate`, which reseals every secret
//! under the first key so that older keys can be removed; keyed identities
//! ([`Store::keyed_ids`]) and moving a connection to another account id with
//! its secrets resealed for it ([`Store::rename_connection_account`]).

use calsync_core::model::{ConnectionId, UserId};

use crate::connections::token_context;
use crate::oauth_states::verifier_context;
use crate::seal::{key_id_of, SEALED_PREFIX_LEN};
use crate::{on_pool, Result, Store, StoreError};

/// What `keys rotate` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RotationReport {
    /// Secrets sealed again under the first key.
    pub resealed: u64,
    /// Secrets that were already under the first key.
    pub unchanged: u64,
}

/// id, user_id, provider, account_id, access_token, refresh_token.
type SealedTokens = (i64, i64, String, String, Option<String>, Option<String>);

const KEY_IDS_IN_USE: &str = "\
    SELECT DISTINCT substr(access_token, 1, $1) FROM connections WHERE access_token IS NOT NULL \
    UNION SELECT DISTINCT substr(refresh_token, 1, $1) FROM connections WHERE refresh_token IS NOT NULL \
    UNION SELECT DISTINCT substr(pkce_verifier, 1, $1) FROM oauth_states";

/// provider, sealed access token, sealed refresh token.
type SealedPair = (String, Option<String>, Option<String>);

impl Store {
    /// Keyed digests of `text` for `purpose` under every configured key, the
    /// first key's first (see [`crate::seal::Keyring::keyed_ids`]).
    pub fn keyed_ids(&self, purpose: &str, text: &str) -> Vec<String> {
        self.keyring().keyed_ids(purpose, text)
    }

    /// Moves one of the user's connections from account id `from` to `to`
    /// (its natural key, e.g. when the way an account is identified
    /// changes), resealing its secrets for the new key, in one transaction.
    /// `false` when the user has no such connection under `from` (any more).
    /// A connection that already has `to` makes it a
    /// [`StoreError::Conflict`].
    pub async fn rename_connection_account(
        &self,
        user: UserId,
        id: ConnectionId,
        from: &str,
        to: &str,
    ) -> Result<bool> {
        if from == to {
            return Ok(true);
        }
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(crate::write_begin(pool)).await?;
            let row: Option<SealedPair> = sqlx::query_as(
                "SELECT provider, access_token, refresh_token FROM connections \
                 WHERE id = $1 AND user_id = $2 AND account_id = $3",
            )
            .bind(id.0)
            .bind(user.0)
            .bind(from)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((provider, access, refresh)) = row else {
                return Ok(false);
            };
            let reseal = |sealed: Option<String>, column: &str| -> Result<Option<String>> {
                let Some(sealed) = sealed else { return Ok(None) };
                let plain = self
                    .keyring()
                    .open(&sealed, &token_context(user.0, &provider, from, column))?;
                Ok(Some(self.keyring().seal(
                    &plain,
                    &token_context(user.0, &provider, to, column),
                )?))
            };
            let access = reseal(access, "access_token")?;
            let refresh = reseal(refresh, "refresh_token")?;
            sqlx::query(
                "UPDATE connections SET account_id = $1, access_token = $2, refresh_token = $3 \
                 WHERE id = $4 AND user_id = $5 AND account_id = $6",
            )
            .bind(to)
            .bind(access)
            .bind(refresh)
            .bind(id.0)
            .bind(user.0)
            .bind(from)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::unique_as_conflict(e, "a connection for this account"))?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Fails with [`StoreError::MissingKey`] when a sealed secret names a key
    /// that is not configured.
    pub(crate) async fn check_keys(&self) -> Result<()> {
        let prefix_len = i32::try_from(SEALED_PREFIX_LEN).unwrap_or(i32::MAX);
        let prefixes: Vec<(String,)> = on_pool!(self, pool => sqlx::query_as(KEY_IDS_IN_USE).bind(prefix_len).fetch_all(pool).await)?;
        for (prefix,) in prefixes {
            let key_id = key_id_of(&format!("{prefix}."))
                .map_err(StoreError::from)?
                .to_owned();
            if !self.keyring().knows(&key_id) {
                return Err(StoreError::MissingKey(key_id));
            }
        }
        Ok(())
    }

    /// Reseals every secret under the first configured key, one transaction
    /// per backend, so a failure leaves every secret readable.
    pub async fn rotate_keys(&self) -> Result<RotationReport> {
        let mut report = RotationReport::default();
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(crate::write_begin(pool)).await?;
            let rows: Vec<SealedTokens> = sqlx::query_as(
                "SELECT id, user_id, provider, account_id, access_token, refresh_token FROM connections",
            )
            .fetch_all(&mut *tx)
            .await?;
            for (id, user, provider, account, access, refresh) in rows {
                for (column, sealed) in [("access_token", access), ("refresh_token", refresh)] {
                    let Some(sealed) = sealed else { continue };
                    let context = token_context(user, &provider, &account, column);
                    match self.keyring().reseal(&sealed, &context)? {
                        Some(new) => {
                            let sql = format!("UPDATE connections SET {column} = $1 WHERE id = $2");
                            sqlx::query(&sql).bind(new).bind(id).execute(&mut *tx).await?;
                            report.resealed += 1;
                        }
                        None => report.unchanged += 1,
                    }
                }
            }
            let states: Vec<(String, String)> =
                sqlx::query_as("SELECT state_hash, pkce_verifier FROM oauth_states").fetch_all(&mut *tx).await?;
            for (state_hash, sealed) in states {
                match self.keyring().reseal(&sealed, &verifier_context(&state_hash))? {
                    Some(new) => {
                        sqlx::query("UPDATE oauth_states SET pkce_verifier = $1 WHERE state_hash = $2")
                            .bind(new)
                            .bind(&state_hash)
                            .execute(&mut *tx)
                            .await?;
                        report.resealed += 1;
                    }
                    None => report.unchanged += 1,
                }
            }
            tx.commit().await?;
        });
        Ok(report)
    }
}
