//! The credential side of syncing an OAuth connection: a fresh access token,
//! refreshed ahead of its expiry and once more after a 401; a refresh token
//! the provider rotates (Microsoft does on every refresh) is stored at once,
//! so a crash right after a refresh never loses the only valid one.

use calsync_store::Claim;
use jiff::Timestamp;
use secrecy::{ExposeSecret as _, SecretString};

use super::{SyncEngine, SyncError, Tally, REFRESH_MARGIN};
use crate::providers::OAuthApi;

/// One sync's view of an OAuth connection's tokens.
pub(super) struct OAuthSession<'a> {
    pub engine: &'a SyncEngine,
    pub api: OAuthApi<'a>,
    pub claim: Claim,
    access: Option<SecretString>,
    refreshed: bool,
}

impl<'a> OAuthSession<'a> {
    pub fn new(engine: &'a SyncEngine, api: OAuthApi<'a>, claim: Claim) -> Self {
        Self {
            engine,
            api,
            claim,
            access: None,
            refreshed: false,
        }
    }

    /// Calls the provider with a fresh access token; on a 401 refreshes once
    /// and calls again.
    pub async fn call<T, F, Fut>(&mut self, tally: &mut Tally, request: F) -> Result<T, SyncError>
    where
        F: Fn(OAuthApi<'a>, SecretString) -> Fut,
        Fut: std::future::Future<Output = Result<T, calsync_providers::ProviderError>>,
    {
        let token = self.access_token(tally, false).await?;
        tally.requests += 1;
        match request(self.api, token).await {
            Err(calsync_providers::ProviderError::Unauthorized) if !self.refreshed => {
                let token = self.access_token(tally, true).await?;
                tally.requests += 1;
                Ok(request(self.api, token).await?)
            }
            other => Ok(other?),
        }
    }

    async fn access_token(
        &mut self,
        tally: &mut Tally,
        force_refresh: bool,
    ) -> Result<SecretString, SyncError> {
        if let (Some(token), false) = (&self.access, force_refresh) {
            return Ok(token.clone());
        }
        let store = &self.engine.store;
        let (user, connection) = (self.claim.user_id, self.claim.connection_id);
        let stored = store.connection_tokens(user, connection).await?;
        let now: Timestamp = self.engine.clock.now();
        let fresh = stored
            .expires_at
            .is_none_or(|at| at.duration_since(now) > REFRESH_MARGIN);
        if let (Some(token), true, false) = (stored.access_token, fresh, force_refresh) {
            self.access = Some(token.clone());
            return Ok(token);
        }
        let refresh = stored.refresh_token.ok_or(SyncError::NoRefreshToken)?;
        tally.requests += 1;
        let tokens = self.api.refresh(&refresh).await?;
        self.refreshed |= force_refresh;
        let rotated = tokens
            .refresh_token
            .as_ref()
            .filter(|new| new.expose_secret() != refresh.expose_secret());
        store
            .update_tokens(
                user,
                connection,
                &tokens.access_token,
                rotated,
                tokens.expires_at,
            )
            .await?;
        self.access = Some(tokens.access_token.clone());
        Ok(tokens.access_token)
    }
}
