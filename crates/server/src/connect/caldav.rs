//! Connecting a CalDAV account (Apple iCloud with an app-specific password,
//! Fastmail, Nextcloud, Radicale, ...): discovery runs at once, so a wrong
//! address or password is a clear error before anything is stored. The
//! login (server URL, calendar home, username, password) is sealed as one
//! secret; the account is keyed by its principal URL, so connecting the same
//! account again updates its row.
//!
//! Basic authentication over plain `http://` sends the password in the
//! clear, so such a server URL is refused ([`ConnectError::InsecureUrl`])
//! unless the user asked for it (`allow_insecure`, a checkbox with a warning
//! on the page) or the server allows private addresses
//! (`CALSYNC_ALLOW_PRIVATE_ADDRESSES=true`: a home server on the local
//! network, where plain http is the norm). The connection then says
//! `insecure: true` (its principal URL is `http://`).

use calsync_core::model::{ConnectionId, Provider, UserId};
use calsync_providers::caldav::CaldavLogin;
use calsync_providers::ProviderError;
use calsync_store::NewConnection;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

use super::{announce, ConnectError};
use crate::state::AppState;

/// What the user typed to connect a CalDAV account. `Debug` shows no
/// password (`SecretString`).
#[derive(Debug)]
pub struct CaldavCredentials {
    pub server_url: String,
    pub username: String,
    pub password: SecretString,
    /// The user accepts sending the password over plain `http://`.
    pub allow_insecure: bool,
}

/// The sealed form of a CalDAV login: one JSON document, so that the
/// password never sits beside its URL in clear.
#[derive(Serialize, Deserialize)]
struct StoredLogin {
    server_url: String,
    home_url: String,
    username: String,
    password: String,
}

/// Seals-to-be text of a login.
fn to_secret(login: &CaldavLogin) -> Result<SecretString, ConnectError> {
    let stored = StoredLogin {
        server_url: login.server_url.clone(),
        home_url: login.home_url.clone(),
        username: login.username.clone(),
        password: login.password.expose_secret().to_owned(),
    };
    serde_json::to_string(&stored)
        .map(SecretString::from)
        .map_err(|_| ConnectError::Provider(ProviderError::Setup("cannot encode a login".into())))
}

/// The login a connection's sealed secret holds.
pub fn login_from_secret(secret: &SecretString) -> Option<CaldavLogin> {
    let stored: StoredLogin = serde_json::from_str(secret.expose_secret()).ok()?;
    Some(CaldavLogin {
        server_url: stored.server_url,
        home_url: stored.home_url,
        username: stored.username,
        password: SecretString::from(stored.password),
    })
}

/// Discovers the account behind `credentials` and stores it; the first sync
/// starts at once.
pub async fn connect_caldav(
    state: &AppState,
    user: UserId,
    credentials: CaldavCredentials,
) -> Result<ConnectionId, ConnectError> {
    state.quotas.take(user, crate::quotas::Action::Connect)?;
    let username = credentials.username.trim();
    if username.is_empty() || username.len() > 256 {
        return Err(ConnectError::Invalid("enter the account's username"));
    }
    if credentials.password.expose_secret().is_empty()
        || credentials.password.expose_secret().len() > 1024
    {
        return Err(ConnectError::Invalid("enter the account's password"));
    }
    let client = &state.providers.caldav;
    // A URL that cannot be used at all is refused as such first.
    let plain_http = client.check_server_url(&credentials.server_url)?.scheme() == "http";
    if plain_http && !credentials.allow_insecure && !state.config.allow_private_addresses {
        return Err(ConnectError::InsecureUrl);
    }
    let account = client
        .discover(&credentials.server_url, username, &credentials.password)
        .await
        .map_err(|err| match err {
            ProviderError::Unauthorized => ConnectError::WrongPassword,
            other => ConnectError::Provider(other),
        })?;
    let login = CaldavLogin {
        server_url: credentials.server_url.trim().to_owned(),
        home_url: account.home_url,
        username: username.to_owned(),
        password: credentials.password,
    };
    let new = NewConnection {
        user_id: user,
        provider: Provider::Caldav,
        account_id: account.principal_url,
        account_email: Some(username.to_owned()),
        access_token: Some(to_secret(&login)?),
        refresh_token: None,
        token_expires_at: None,
        scopes: String::new(),
    };
    let id = state
        .store
        .upsert_connection(&new, state.clock.now())
        .await?;
    tracing::info!(user = %user, connection = %id, insecure = plain_http, "connected a CalDAV account");
    announce(state, user, id);
    Ok(id)
}
