//! Subscribing to an ICS feed (a calendar's "secret address", sports and
//! holiday feeds, booking platforms): the feed is fetched once at once, so a
//! URL that serves no calendar is a clear error before anything is stored.
//! The URL often embeds a key, so it is sealed like a token and never logged.
//!
//! `webcal://` is tried over https first and over plain http when no TLS
//! connection can be made ([`calsync_providers::ics::feed_url_candidates`]);
//! the URL that answered is the one stored and synced.
//!
//! The connection's account id is `https:<digest>` or `http:<digest>`: the
//! scheme the feed is fetched over (so the connections list can say when a
//! feed comes without TLS, as it reads a CalDAV principal URL's scheme), and
//! an HMAC-SHA256 of the feed's https form keyed from the encryption key
//! ([`calsync_store::Store::keyed_ids`]), so one feed typed as `webcal://`,
//! `http://` or `https://` is one connection, and the database alone does
//! not tell which URL a row belongs to. Feeds subscribed before this were
//! keyed by the URL's plain SHA-256 (which anyone holding a candidate URL
//! could confirm); subscribing to such a feed again finds its row by that
//! digest (or by one under a key rotated out of first place) and moves it
//! to the current identity, with its calendar and events.

use calsync_core::model::{ConnectionId, Provider, UserId};
use calsync_providers::ics::{feed_url_candidates, https_form};
use calsync_store::NewConnection;
use secrecy::SecretString;

use super::{announce, ConnectError};
use crate::accounts::hash_token;
use crate::state::AppState;

/// The external id of a feed's one calendar.
pub const FEED_CALENDAR: &str = "feed";
/// The longest name a user may give a feed.
const MAX_NAME: usize = 200;
/// The purpose a feed's keyed identity is computed for.
const IDENTITY_PURPOSE: &str = "ics feed url";

/// What the user typed to subscribe. `Debug` never shows the URL: it
/// may hold the feed's key.
pub struct IcsFeed {
    pub url: SecretString,
    pub name: Option<String>,
}

impl std::fmt::Debug for IcsFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IcsFeed")
            .field("url", &"[REDACTED]")
            .field("name", &self.name)
            .finish()
    }
}

/// The account ids one feed may be stored under: the one to store first,
/// then every other this feed may already have (other scheme, older keys,
/// the unkeyed SHA-256 of before). `https` is the feed's URL in its https
/// form ([`https_form`]), `tls` whether it is fetched over https.
pub(crate) fn feed_identities(state: &AppState, https: &str, tls: bool) -> Vec<String> {
    let digests = state.store.keyed_ids(IDENTITY_PURPOSE, https);
    let (scheme, other) = if tls {
        ("https", "http")
    } else {
        ("http", "https")
    };
    let mut ids = Vec::with_capacity(digests.len() * 2 + 2);
    for prefix in [scheme, other] {
        ids.extend(digests.iter().map(|d| format!("{prefix}:{d}")));
    }
    // Before keyed identities: the SHA-256 of the URL as it was fetched.
    ids.push(hash_token(https));
    if let Some(rest) = https.strip_prefix("https://") {
        ids.push(hash_token(&format!("http://{rest}")));
    }
    ids
}

/// Checks and fetches the feed, then stores the subscription; its first sync
/// starts at once.
pub async fn subscribe_ics(
    state: &AppState,
    user: UserId,
    feed: IcsFeed,
) -> Result<ConnectionId, ConnectError> {
    state.quotas.take(user, crate::quotas::Action::Connect)?;
    use secrecy::ExposeSecret as _;

    let client = &state.providers.ics;
    let candidates = feed_url_candidates(feed.url.expose_secret())?;
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
    let (url, info) = client.probe_first(&candidates).await?;
    let host = url.host_str().unwrap_or_default().to_owned();
    let tls = url.scheme() == "https";
    let name = chosen
        .or(info.name)
        .unwrap_or_else(|| format!("Feed from {host}"));
    let identities = feed_identities(state, https_form(&url).as_str(), tls);
    let account_id = identities[0].clone();
    let existing = state
        .store
        .list_connections(user)
        .await?
        .into_iter()
        .map(|c| c.connection)
        .filter(|c| c.provider == Provider::Ics && identities.contains(&c.account_id))
        .min_by_key(|c| identities.iter().position(|i| *i == c.account_id));
    if let Some(old) = existing.filter(|c| c.account_id != account_id) {
        state
            .store
            .rename_connection_account(user, old.id, &old.account_id, &account_id)
            .await?;
        tracing::info!(user = %user, connection = %old.id, "feed connection moved to its keyed identity");
    }
    let new = NewConnection {
        user_id: user,
        provider: Provider::Ics,
        account_id,
        account_email: Some(name),
        access_token: Some(SecretString::from(url.to_string())),
        refresh_token: None,
        token_expires_at: None,
        scopes: String::new(),
    };
    let id = state
        .store
        .upsert_connection(&new, state.clock.now())
        .await?;
    tracing::info!(user = %user, connection = %id, host = %host, tls, "subscribed to a feed");
    announce(state, user, id);
    Ok(id)
}
