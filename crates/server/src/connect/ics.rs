//! Subscribing to an ICS feed (a calendar's "secret address", sports and
//! holiday feeds, booking platforms): the feed is fetched once at once, so a
//! URL that serves no calendar is a clear error before anything is stored.
//! The URL often embeds a key, so it is sealed like a token and never logged;
//! the connection is keyed by the URL's hash.

use calsync_core::model::{ConnectionId, Provider, UserId};
use calsync_store::NewConnection;
use secrecy::SecretString;

use super::{announce, ConnectError};
use crate::accounts::hash_token;
use crate::state::AppState;

/// The external id of a feed's one calendar.
pub const FEED_CALENDAR: &str = "feed";
/// The longest name a user may give a feed.
const MAX_NAME: usize = 200;

/// What the user typed to subscribe.
pub struct IcsFeed {
    pub url: String,
    pub name: Option<String>,
}

/// Checks and fetches the feed, then stores the subscription; its first sync
/// starts at once.
pub async fn subscribe_ics(
    state: &AppState,
    user: UserId,
    feed: IcsFeed,
) -> Result<ConnectionId, ConnectError> {
    let client = &state.providers.ics;
    let url = calsync_providers::ics::normalize_feed_url(&feed.url)?;
    let host = url.host_str().unwrap_or_default().to_owned();
    let secret = SecretString::from(url.to_string());
    let info = client.probe(&secret).await?;
    let chosen = feed
        .name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    if chosen
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NAME)
    {
        return Err(ConnectError::Invalid(
            "the name is too long (200 characters at most)",
        ));
    }
    let name = chosen
        .or(info.name)
        .unwrap_or_else(|| format!("Feed from {host}"));
    let new = NewConnection {
        user_id: user,
        provider: Provider::Ics,
        account_id: hash_token(url.as_str()),
        account_email: Some(name),
        access_token: Some(secret),
        refresh_token: None,
        token_expires_at: None,
        scopes: String::new(),
    };
    let id = state
        .store
        .upsert_connection(&new, state.clock.now())
        .await?;
    tracing::info!(user = %user, connection = %id, host = %host, "subscribed to a feed");
    announce(state, user, id);
    Ok(id)
}
