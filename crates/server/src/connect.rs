//! Connecting a user's calendars: OAuth providers (authorization code +
//! PKCE, [`oauth`]), CalDAV logins and ICS feed subscriptions. Nothing is
//! stored unless every step succeeds; the new connection is due for its
//! first sync at once.

mod caldav;
mod ics;
mod oauth;

use calsync_core::model::{ConnectionId, UserId};
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
            Self::Provider(_) => "provider_error",
            Self::Store(_) => "internal",
        }
    }
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
