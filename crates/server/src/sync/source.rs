//! Where a connection's calendars and events come from during one sync: its
//! provider's client with the connection's credential. The engine drives
//! every provider through this one shape.

use calsync_core::changes::ChangePage;
use calsync_core::model::{Connection, Provider, RemoteCalendar, UserId};
use calsync_core::recur::Window;
use calsync_providers::caldav::{CaldavClient, CaldavLogin};
use calsync_providers::ics::IcsClient;
use calsync_providers::{EventsCursor, ProviderError};
use calsync_store::Claim;
use secrecy::{ExposeSecret as _, SecretString};

use super::oauth::OAuthSession;
use super::{SyncEngine, SyncError, Tally};
use crate::connect::{login_from_secret, FEED_CALENDAR};

/// A provider client bound to one connection's credential.
pub(super) enum Source<'a> {
    OAuth(OAuthSession<'a>),
    /// Clients of their own, counting this sync's HTTP requests (a page
    /// takes several: sync-collection, then multigets).
    Caldav {
        client: CaldavClient,
        login: CaldavLogin,
        claim: Claim,
    },
    /// A feed is one calendar, named when it was subscribed.
    Ics {
        client: IcsClient,
        url: SecretString,
        name: String,
        claim: Claim,
    },
}

impl<'a> Source<'a> {
    /// The source of `connection`, when this server can sync its provider.
    pub async fn open(
        engine: &'a SyncEngine,
        claim: Claim,
        connection: &Connection,
    ) -> Result<Self, SyncError> {
        let user = claim.user_id;
        let secret = || async {
            let tokens = engine
                .store
                .connection_tokens(user, claim.connection_id)
                .await?;
            tokens.access_token.ok_or(SyncError::NoCredential)
        };
        Ok(match connection.provider {
            Provider::Google | Provider::Microsoft => {
                let api = engine.providers.oauth(connection.provider)?;
                Self::OAuth(OAuthSession::new(engine, api, claim))
            }
            Provider::Caldav => Self::Caldav {
                client: engine.providers.caldav.with_fresh_count(),
                login: login_from_secret(&secret().await?).ok_or(SyncError::NoCredential)?,
                claim,
            },
            Provider::Ics => Self::Ics {
                client: engine.providers.ics.with_fresh_count(),
                url: secret().await?,
                name: connection.account_email.clone().unwrap_or_default(),
                claim,
            },
        })
    }

    pub fn user(&self) -> UserId {
        self.claim().user_id
    }

    /// The round's claim.
    pub fn claim(&self) -> Claim {
        match self {
            Self::OAuth(session) => session.claim,
            Self::Caldav { claim, .. } | Self::Ics { claim, .. } => *claim,
        }
    }

    /// The host a user-typed URL points at (CalDAV server, feed), for the
    /// per-host limit of rounds at once; `None` for Google and Microsoft.
    pub fn host(&self) -> Option<String> {
        let url = match self {
            Self::OAuth(_) => return None,
            Self::Caldav { login, .. } => login.server_url.as_str(),
            Self::Ics { url, .. } => url.expose_secret(),
        };
        calsync_providers::url_host(url)
    }

    /// Whether every changed listing is the whole calendar again (a feed).
    pub fn is_snapshot(&self) -> bool {
        matches!(self, Self::Ics { .. })
    }

    /// The account's calendars.
    pub async fn calendars(&mut self, tally: &mut Tally) -> Result<Vec<RemoteCalendar>, SyncError> {
        match self {
            Self::OAuth(session) => {
                session
                    .call(tally, |api, token| async move {
                        api.list_calendars(&token).await
                    })
                    .await
            }
            Self::Caldav { client, login, .. } => {
                let listed = client.list_calendars(login).await;
                tally.count_since(client.requests_sent());
                listed.map_err(caldav_error)
            }
            Self::Ics { name, .. } => Ok(vec![RemoteCalendar {
                external_id: FEED_CALENDAR.to_owned(),
                name: name.clone(),
                color: None,
                timezone: None,
                is_primary: true,
                access_role: Some("reader".to_owned()),
            }]),
        }
    }

    /// One page of a calendar's changes.
    pub async fn page(
        &mut self,
        tally: &mut Tally,
        calendar: &str,
        cursor: &EventsCursor,
        window: &Window,
    ) -> Result<ChangePage, SyncError> {
        match self {
            Self::OAuth(session) => {
                session
                    .call(tally, |api, token| async move {
                        api.list_events_page(&token, calendar, cursor, window).await
                    })
                    .await
            }
            Self::Caldav { client, login, .. } => {
                let page = client.list_events_page(login, calendar, cursor).await;
                tally.count_since(client.requests_sent());
                page.map_err(caldav_error)
            }
            Self::Ics { client, url, .. } => {
                let page = client.fetch_page(url, cursor).await;
                tally.count_since(client.requests_sent());
                Ok(page?)
            }
        }
    }
}

/// A password that worked at connect time and no longer does was changed or
/// revoked (Apple: app-specific passwords are revoked with a password change).
fn caldav_error(err: ProviderError) -> SyncError {
    match err {
        ProviderError::Unauthorized => SyncError::PasswordRefused,
        other => SyncError::Provider(other),
    }
}
