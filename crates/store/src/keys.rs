//! Keys of the sealed secrets: the start-up check that every sealed value names
//! a configured key, and `calsync keys rotate`, which reseals every secret
//! under the first key so that older keys can be removed.

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

impl Store {
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
