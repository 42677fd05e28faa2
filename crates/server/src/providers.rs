//! The provider clients this server is configured for, built once at start.

use calsync_providers::google::{GoogleClient, GoogleConfig};
use calsync_providers::ProviderError;

use crate::config::Config;

/// One client per configured provider; `None` when not configured.
#[derive(Debug, Clone, Default)]
pub struct Providers {
    pub google: Option<GoogleClient>,
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
        Ok(Self { google })
    }
}
