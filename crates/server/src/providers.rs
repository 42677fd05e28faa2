//! The provider clients this server is configured for, built once at start,
//! and [`OAuthApi`]: what connecting and syncing need from an OAuth provider
//! (Google, Microsoft), whichever it is.

use calsync_core::changes::ChangePage;
use calsync_core::model::{Provider, RemoteCalendar};
use calsync_core::recur::Window;
use calsync_providers::caldav::{CaldavClient, CaldavConfig};
use calsync_providers::google::{GoogleClient, GoogleConfig};
use calsync_providers::ics::{IcsClient, IcsConfig};
use calsync_providers::microsoft::{MicrosoftClient, MicrosoftConfig};
use calsync_providers::oauth::TokenSet;
use calsync_providers::{EventsCursor, ProviderError};
use secrecy::SecretString;

use crate::config::Config;

/// One client per provider: the OAuth ones only when configured; CalDAV and
/// ICS need no registration and are always there.
#[derive(Debug, Clone)]
pub struct Providers {
    pub google: Option<GoogleClient>,
    pub microsoft: Option<MicrosoftClient>,
    pub caldav: CaldavClient,
    pub ics: IcsClient,
}

impl Providers {
    /// Clients for every provider the configuration enables.
    pub fn from_config(config: &Config) -> Result<Self, ProviderError> {
        let google = match &config.google {
            Some(google) => Some(GoogleClient::new(GoogleConfig {
                client_id: google.client_id.clone(),
                client_secret: google.client_secret.clone(),
                redirect_uri: config.redirect_uri("google"),
                auth_url: google.auth_url.clone(),
                token_url: google.token_url.clone(),
                api_base: google.api_base.clone(),
                revoke_url: google.revoke_url.clone(),
                userinfo_url: None,
            })?),
            None => None,
        };
        let microsoft = match &config.microsoft {
            Some(microsoft) => Some(MicrosoftClient::new(MicrosoftConfig {
                client_id: microsoft.client_id.clone(),
                // A public client (no secret) is refused at the token endpoint
                // with a clear AADSTS message, so an empty one is passed on.
                client_secret: microsoft
                    .client_secret
                    .clone()
                    .unwrap_or_else(|| SecretString::from(String::new())),
                redirect_uri: config.redirect_uri("microsoft"),
                auth_url: microsoft.auth_url.clone(),
                token_url: microsoft.token_url.clone(),
                api_base: microsoft.api_base.clone(),
            })?),
            None => None,
        };
        Ok(Self {
            google,
            microsoft,
            ..Self::without_oauth(config.allow_private_addresses)?
        })
    }

    /// CalDAV and ICS only: what every server offers with no registration.
    pub fn without_oauth(allow_private_addresses: bool) -> Result<Self, ProviderError> {
        Ok(Self {
            google: None,
            microsoft: None,
            caldav: CaldavClient::new(CaldavConfig {
                allow_private_addresses,
                ..CaldavConfig::default()
            })?,
            ics: IcsClient::new(IcsConfig {
                allow_private_addresses,
                ..IcsConfig::default()
            })?,
        })
    }

    /// The OAuth client of `provider`, when this server is configured for it.
    pub fn oauth(&self, provider: Provider) -> Result<OAuthApi<'_>, NotConfigured> {
        let missing = NotConfigured {
            name: display_name(provider),
            settings: client_settings(provider),
        };
        match provider {
            Provider::Google => self.google.as_ref().map(OAuthApi::Google).ok_or(missing),
            Provider::Microsoft => self
                .microsoft
                .as_ref()
                .map(OAuthApi::Microsoft)
                .ok_or(missing),
            Provider::Caldav | Provider::Ics => Err(missing),
        }
    }
}

/// How a provider is named on pages and in messages.
pub fn display_name(provider: Provider) -> &'static str {
    match provider {
        Provider::Google => "Google Calendar",
        Provider::Microsoft => "Outlook / Microsoft 365",
        Provider::Caldav => "CalDAV",
        Provider::Ics => "ICS feeds",
    }
}

/// The settings that offer a provider registered with an OAuth client.
fn client_settings(provider: Provider) -> &'static str {
    match provider {
        Provider::Google => "CALSYNC_GOOGLE_CLIENT_ID and CALSYNC_GOOGLE_CLIENT_SECRET",
        Provider::Microsoft => "CALSYNC_MICROSOFT_CLIENT_ID and CALSYNC_MICROSOFT_CLIENT_SECRET",
        Provider::Caldav | Provider::Ics => "nothing (it needs no registration)",
    }
}

/// The server lacks the client id (or the client) of this provider.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("{name} is not configured on this server")]
pub struct NotConfigured {
    pub name: &'static str,
    /// What to set to offer it.
    pub settings: &'static str,
}

/// An account as the provider identifies it after consent.
#[derive(Debug, Clone)]
pub struct OAuthAccount {
    /// Stable across reconnects (Google's `sub`, Microsoft's user id).
    pub id: String,
    pub email: Option<String>,
}

/// An OAuth provider's client; cheap to copy.
#[derive(Debug, Clone, Copy)]
pub enum OAuthApi<'a> {
    Google(&'a GoogleClient),
    Microsoft(&'a MicrosoftClient),
}

impl OAuthApi<'_> {
    pub fn provider(self) -> Provider {
        match self {
            Self::Google(_) => Provider::Google,
            Self::Microsoft(_) => Provider::Microsoft,
        }
    }

    /// The consent page URL for this flow's `state` and PKCE challenge.
    pub fn authorization_url(self, state: &str, challenge: &str) -> Result<String, ProviderError> {
        match self {
            Self::Google(client) => client.authorization_url(state, challenge, None),
            Self::Microsoft(client) => client.authorization_url(state, challenge),
        }
    }

    pub async fn exchange_code(
        self,
        code: &str,
        verifier: &SecretString,
    ) -> Result<TokenSet, ProviderError> {
        match self {
            Self::Google(client) => client.exchange_code(code, verifier).await,
            Self::Microsoft(client) => client.exchange_code(code, verifier).await,
        }
    }

    /// Whether the grant covers reading calendars: with granular consent a
    /// user can untick the calendar permission and still finish the flow.
    pub fn calendar_read_granted(self, tokens: &TokenSet) -> bool {
        match self {
            Self::Google(_) => calsync_providers::google::calendar_read_granted(tokens),
            Self::Microsoft(_) => calsync_providers::microsoft::calendar_read_granted(tokens),
        }
    }

    /// Who granted the tokens.
    pub async fn account(self, tokens: &TokenSet) -> Result<OAuthAccount, ProviderError> {
        match self {
            Self::Google(client) => {
                let identity = client.identity(tokens).await?;
                Ok(OAuthAccount {
                    id: identity.sub,
                    email: identity.email,
                })
            }
            Self::Microsoft(client) => {
                let identity = client.identity(&tokens.access_token).await?;
                Ok(OAuthAccount {
                    id: identity.id,
                    email: identity.email,
                })
            }
        }
    }

    pub async fn refresh(self, refresh_token: &SecretString) -> Result<TokenSet, ProviderError> {
        match self {
            Self::Google(client) => client.refresh(refresh_token).await,
            Self::Microsoft(client) => client.refresh(refresh_token).await,
        }
    }

    /// Revokes the grant where the provider offers it; false where it does
    /// not (Microsoft: the user removes the app in their account).
    pub async fn revoke(self, token: &SecretString) -> Result<bool, ProviderError> {
        match self {
            Self::Google(client) => client.revoke(token).await.map(|()| true),
            Self::Microsoft(_) => Ok(false),
        }
    }

    pub async fn list_calendars(
        self,
        access: &SecretString,
    ) -> Result<Vec<RemoteCalendar>, ProviderError> {
        match self {
            Self::Google(client) => client.list_calendars(access).await,
            Self::Microsoft(client) => client.list_calendars(access).await,
        }
    }

    /// One page of a calendar's changes. `window` is the stored horizon:
    /// providers that list a time window (Microsoft) anchor their rounds on it.
    pub async fn list_events_page(
        self,
        access: &SecretString,
        calendar: &str,
        cursor: &EventsCursor,
        window: &Window,
    ) -> Result<ChangePage, ProviderError> {
        match self {
            Self::Google(client) => client.list_events_page(access, calendar, cursor).await,
            Self::Microsoft(client) => {
                let span = (window.from, window.to);
                client
                    .list_events_page(access, calendar, cursor, span)
                    .await
            }
        }
    }
}
