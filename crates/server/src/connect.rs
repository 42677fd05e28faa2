//! Connecting an account with OAuth (authorization code + PKCE): the start,
//! which records a single-use `state` bound to the user, and the callback,
//! which checks it, exchanges the code, identifies the account and stores its
//! sealed tokens. Nothing is stored unless every step succeeds.

use calsync_core::model::{ConnectionId, Provider, UserId};
use calsync_providers::google::GoogleClient;
use calsync_providers::oauth::{random_state, Pkce};
use calsync_providers::ProviderError;
use calsync_store::{NewConnection, OAuthState};
use jiff::SignedDuration;

use crate::accounts::hash_token;
use crate::live::Change;
use crate::state::AppState;

/// How long a started connection flow may take.
const STATE_LIFETIME: SignedDuration = SignedDuration::from_mins(10);

/// Why connecting failed; each has a message the Settings page shows.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0} is not configured on this server")]
    NotConfigured(&'static str),
    #[error("access was not granted; nothing was connected")]
    Denied,
    #[error("this sign-in link has expired or was already used; start connecting again")]
    BadState,
    #[error(
        "the provider did not grant offline access (no refresh token); remove calsync from the \
         account's third-party access and connect again"
    )]
    NoRefreshToken,
    #[error("the provider refused: {0}")]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Store(#[from] calsync_store::StoreError),
}

impl ConnectError {
    /// A stable code for the redirect back to Settings.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotConfigured(_) => "not_configured",
            Self::Denied => "denied",
            Self::BadState => "bad_state",
            Self::NoRefreshToken => "no_refresh_token",
            Self::Provider(_) => "provider_error",
            Self::Store(_) => "internal",
        }
    }
}

fn google(state: &AppState) -> Result<&GoogleClient, ConnectError> {
    state
        .providers
        .google
        .as_ref()
        .ok_or(ConnectError::NotConfigured("Google Calendar"))
}

/// Starts connecting Google: the consent URL to send the browser to.
pub async fn start_google(state: &AppState, user: UserId) -> Result<String, ConnectError> {
    let client = google(state)?;
    let flow_state = random_state()?;
    let pkce = Pkce::generate()?;
    let now = state.clock.now();
    let flow = OAuthState {
        user_id: user,
        provider: Provider::Google,
        pkce_verifier: pkce.verifier,
        expires_at: now + STATE_LIFETIME,
    };
    state
        .store
        .create_oauth_state(&hash_token(&flow_state), &flow, now)
        .await?;
    Ok(client.authorization_url(&flow_state, &pkce.challenge, None)?)
}

/// What the provider's redirect brought back.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

/// Finishes connecting Google; the connection is due for its first sync.
pub async fn finish_google(
    state: &AppState,
    user: UserId,
    callback: Callback,
) -> Result<ConnectionId, ConnectError> {
    let client = google(state)?;
    let now = state.clock.now();
    // The state is checked (and spent) first, even on a denial, so that a
    // forged redirect cannot tell anything about the user's flows.
    let flow_state = callback
        .state
        .filter(|s| !s.is_empty() && s.len() <= 128)
        .ok_or(ConnectError::BadState)?;
    let flow = state
        .store
        .take_oauth_state(&hash_token(&flow_state), user, Provider::Google, now)
        .await?
        .ok_or(ConnectError::BadState)?;
    if callback.error.is_some() {
        return Err(ConnectError::Denied);
    }
    let code = callback
        .code
        .filter(|c| !c.is_empty() && c.len() <= 2048)
        .ok_or(ConnectError::BadState)?;
    let tokens = client.exchange_code(&code, &flow.pkce_verifier).await?;
    let refresh_token = tokens
        .refresh_token
        .clone()
        .ok_or(ConnectError::NoRefreshToken)?;
    let identity = client.identity(&tokens).await?;
    let new = NewConnection {
        user_id: user,
        provider: Provider::Google,
        account_id: identity.sub,
        account_email: identity.email,
        access_token: Some(tokens.access_token),
        refresh_token: Some(refresh_token),
        token_expires_at: tokens.expires_at,
        scopes: tokens.scope.unwrap_or_default(),
    };
    let id = state.store.upsert_connection(&new, now).await?;
    tracing::info!(user = %user, connection = %id, "connected a Google account");
    state.changes.publish(
        user,
        Change::Connection {
            connection_id: id.0,
        },
    );
    state.wake_worker();
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
    let (Provider::Google, Some(client)) = (connection.provider, state.providers.google.as_ref())
    else {
        return Ok(false);
    };
    let tokens = state.store.connection_tokens(user, id).await?;
    let Some(token) = tokens.refresh_token.or(tokens.access_token) else {
        return Ok(false);
    };
    match client.revoke(&token).await {
        Ok(()) => Ok(true),
        Err(err) => {
            tracing::warn!(connection = %id, error = %err, "could not revoke at Google; deleting locally anyway");
            Ok(false)
        }
    }
}
