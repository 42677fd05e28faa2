//! Where a connection's calendars and events come from during one sync: its
//! provider's client with the connection's credential. The engine drives
//! every provider through this one shape.

use calsync_core::changes::ChangePage;
use calsync_core::model::{Connection, RemoteCalendar, UserId};
use calsync_core::recur::Window;
use calsync_providers::EventsCursor;
use calsync_store::Claim;

use super::oauth::OAuthSession;
use super::{SyncEngine, SyncError, Tally};

/// A provider client bound to one connection's credential.
pub(super) enum Source<'a> {
    OAuth(OAuthSession<'a>),
}

impl<'a> Source<'a> {
    /// The source of `connection`, when this server can sync its provider.
    pub async fn open(
        engine: &'a SyncEngine,
        claim: Claim,
        connection: &Connection,
    ) -> Result<Self, SyncError> {
        let api = engine.providers.oauth(connection.provider)?;
        Ok(Self::OAuth(OAuthSession::new(engine, api, claim)))
    }

    pub fn user(&self) -> UserId {
        match self {
            Self::OAuth(session) => session.claim.user_id,
        }
    }

    /// Whether every changed listing is the whole calendar again (a feed).
    pub fn is_snapshot(&self) -> bool {
        false
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
        }
    }
}
