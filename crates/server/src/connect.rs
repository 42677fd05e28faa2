//! Connecting a user's calendars: OAuth providers (authorization code +
//! PKCE, [`oauth`]), CalDAV logins and ICS feed subscriptions. Nothing is
//! stored unless every step succeeds; the new connection is due for its
//! first sync at once.

mod caldav;
mod ics;
mod oauth;

use calsync_core::model::{Connection, ConnectionId, Provider, UserId};
use calsync_providers::ProviderError;

use crate::live::Change;
use crate::providers::NotConfigured;
use crate::state::AppState;

pub use caldav::{connect_caldav, login_from_secret, CaldavCredentials};
pub use ics::{subscribe_ics, IcsFeed, FEED_CALENDAR};
pub use oauth::{finish_oauth, revoke, start_oauth, Callback};

/// Why connecting failed; each has a message the Settings page shows.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    NotConfigured(#[from] NotConfigured),
    #[error("access was not granted; nothing was connected")]
    Denied,
    #[error("this sign-in link has expired or was already used; start connecting again")]
    BadState,
    #[error(
        "the provider did not grant offline access (no refresh token); remove calsync from the \
         account's third-party access and connect again"
    )]
    NoRefreshToken,
    #[error(
        "calendar access was not granted: connect again and allow calsync to see your calendars"
    )]
    MissingScope,
    #[error("{0}")]
    Invalid(&'static str),
    #[error(
        "the server refused this username and password (Apple iCloud: use an app-specific \
         password from appleid.apple.com, not your Apple ID password)"
    )]
    WrongPassword,
    /// A CalDAV server URL on plain `http://` without the user's consent.
    #[error(
        "the server URL starts with http://, so the password would travel unencrypted: use the \
         server's https:// address, or, if it has none, connect again with allow_insecure \
         (\"Allow an unencrypted connection\" on the form)"
    )]
    InsecureUrl,
    /// The code exchange failed (5xx, no answer, or the code was refused).
    /// It is never retried: a code is single-use.
    #[error(
        "the provider could not finish the sign-in ({0}); a sign-in can be finished only once, \
         so start connecting again"
    )]
    ExchangeFailed(String),
    #[error(transparent)]
    Quota(#[from] crate::quotas::QuotaExceeded),
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
            Self::MissingScope => "missing_scope",
            Self::Invalid(_) => "invalid_input",
            Self::WrongPassword => "wrong_credentials",
            Self::InsecureUrl => "insecure_url",
            Self::ExchangeFailed(_) => "exchange_failed",
            Self::Quota(_) => "rate_limited",
            Self::Provider(_) => "provider_error",
            Self::Store(_) => "internal",
        }
    }
}

/// Whether calsync reaches this connection without TLS: a CalDAV account
/// whose principal is on plain `http://` (the password travels unencrypted)
/// or a feed fetched over `http://`. Read from the account id, which for
/// both starts with the scheme (a principal URL; a feed's `http:<digest>`,
/// see [`ics`]). Feeds subscribed before feed identities carried a scheme
/// count as encrypted until they are subscribed again.
pub fn insecure(connection: &Connection) -> bool {
    matches!(connection.provider, Provider::Caldav | Provider::Ics)
        && connection.account_id.starts_with("http:")
}

/// Tells the user's pages and the sync worker about a new connection.
fn announce(state: &AppState, user: UserId, id: ConnectionId) {
    state.changes.publish(
        user,
        Change::Connection {
            connection_id: id.0,
        },
    );
    state.wake_worker();
}
