//! OAuth connections (Google, Microsoft): the start records a single-use
//! `state` bound to the user with a sealed PKCE verifier; the callback spends
//! it, exchanges the code, identifies the account and stores its sealed
//! tokens under the account's stable id (reconnecting updates the same row).

use calsync_core::model::{ConnectionId, Provider, UserId};
use calsync_providers::oauth::{random_state, Pkce};
use calsync_providers::ProviderError;
use calsync_store::{NewConnection, OAuthState};
use jiff::SignedDuration;

use super::{announce, ConnectError};
use crate::accounts::hash_token;
use crate::state::AppState;

/// How long a started connection flow may take.
const STATE_LIFETIME: SignedDuration = SignedDuration::from_mins(10);

/// Starts connecting `provider`: the consent URL to send the browser to.
pub async fn start_oauth(
    state: &AppState,
    user: UserId,
    provider: Provider,
) -> Result<String, ConnectError> {
    state.quotas.take(user, crate::quotas::Action::Connect)?;
    let api = state.providers.oauth(provider)?;
    let flow_state = random_state()?;
    let pkce = Pkce::generate()?;
    let now = state.clock.now();
    let flow = OAuthState {
        user_id: user,
        provider,
        pkce_verifier: pkce.verifier,
        expires_at: now + STATE_LIFETIME,
    };
    state
        .store
        .create_oauth_state(&hash_token(&flow_state), &flow, now)
        .await?;
    Ok(api.authorization_url(&flow_state, &pkce.challenge)?)
}

/// What the provider's redirect brought back. `Debug` shows whether a code
/// and a state came, never their values (the code is a credential until it
/// is spent, the state names the user's flow).
#[derive(Default, serde::Deserialize)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |v: &Option<String>| v.as_ref().map(|_| "[REDACTED]");
        f.debug_struct("Callback")
            .field("code", &shown(&self.code))
            .field("state", &shown(&self.state))
            .field("error", &self.error)
            .finish()
    }
}

/// Finishes connecting `provider`; the connection is due for its first sync.
pub async fn finish_oauth(
    state: &AppState,
    user: UserId,
    provider: Provider,
    callback: Callback,
) -> Result<ConnectionId, ConnectError> {
    let api = state.providers.oauth(provider)?;
    let now = state.clock.now();
    // The state is checked (and spent) first, even on a denial, so that a
    // forged redirect cannot tell anything about the user's flows.
    let flow_state = callback
        .state
        .filter(|s| !s.is_empty() && s.len() <= 128)
        .ok_or(ConnectError::BadState)?;
    let flow = state
        .store
        .take_oauth_state(&hash_token(&flow_state), user, provider, now)
        .await?
        .ok_or(ConnectError::BadState)?;
    if callback.error.is_some() {
        return Err(ConnectError::Denied);
    }
    let code = callback
        .code
        .filter(|c| !c.is_empty() && c.len() <= 4096)
        .ok_or(ConnectError::BadState)?;
    // One attempt (the code is single-use): a failure asks the user to
    // start again instead of repeating the exchange.
    let tokens = api
        .exchange_code(&code, &flow.pkce_verifier)
        .await
        .map_err(|err| match err {
            ProviderError::Provider { status, .. } if status >= 500 => {
                ConnectError::ExchangeFailed(format!("the provider answered HTTP {status}"))
            }
            ProviderError::Network(_) => {
                ConnectError::ExchangeFailed("the provider did not answer".to_owned())
            }
            ProviderError::InvalidGrant { .. } => ConnectError::ExchangeFailed(
                "the provider refused the sign-in code: it expired or was already used".to_owned(),
            ),
            other => ConnectError::Provider(other),
        })?;
    if !api.calendar_read_granted(&tokens) {
        return Err(ConnectError::MissingScope);
    }
    let refresh_token = tokens
        .refresh_token
        .clone()
        .ok_or(ConnectError::NoRefreshToken)?;
    let account = api.account(&tokens).await?;
    let new = NewConnection {
        user_id: user,
        provider,
        account_id: account.id,
        account_email: account.email,
        access_token: Some(tokens.access_token),
        refresh_token: Some(refresh_token),
        token_expires_at: tokens.expires_at,
        scopes: tokens.scope.unwrap_or_default(),
    };
    let id = state.store.upsert_connection(&new, now).await?;
    tracing::info!(user = %user, connection = %id, provider = provider.as_str(), "connected an account");
    announce(state, user, id);
    Ok(id)
}

/// Revokes calsync's access at the provider where it can be done; best effort:
/// a provider that cannot be reached must not keep a user from disconnecting.
pub async fn revoke(
    state: &AppState,
    user: UserId,
    id: ConnectionId,
) -> Result<bool, calsync_store::StoreError> {
    let connection = state.store.connection(user, id).await?;
    let Ok(api) = state.providers.oauth(connection.provider) else {
        return Ok(false);
    };
    let tokens = state.store.connection_tokens(user, id).await?;
    let Some(token) = tokens.refresh_token.or(tokens.access_token) else {
        return Ok(false);
    };
    match api.revoke(&token).await {
        Ok(revoked) => Ok(revoked),
        Err(err) => {
            tracing::warn!(connection = %id, error = %err, "could not revoke at the provider; deleting locally anyway");
            Ok(false)
        }
    }
}
