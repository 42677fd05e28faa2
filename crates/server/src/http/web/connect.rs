//! The CalDAV / iCloud and ICS forms' calls into [`crate::connect`] (the same
//! functions as the JSON API's), turned into a message for Settings.

use calsync_core::model::UserId;
use secrecy::{ExposeSecret as _, SecretString};

use super::forms::{error_flash, Flash};
use crate::connect::{self, CaldavCredentials, ConnectError, IcsFeed};
use crate::http::error::AppError;
use crate::state::AppState;

/// What the CalDAV / iCloud form sent.
pub struct CaldavInput {
    pub server_url: String,
    pub username: String,
    pub password: SecretString,
    /// The "Allow an unencrypted connection" box.
    pub allow_insecure: bool,
}

/// Connects a CalDAV account (Apple iCloud with an app-specific password).
pub async fn caldav(state: &AppState, user: UserId, form: CaldavInput) -> Flash {
    let CaldavInput {
        server_url,
        username,
        password,
        allow_insecure,
    } = form;
    if server_url.trim().is_empty()
        || username.trim().is_empty()
        || password.expose_secret().is_empty()
    {
        return Flash::error("Fill in the server URL, the username and the password.");
    }
    let icloud = server_url.contains("icloud.com");
    let credentials = CaldavCredentials {
        server_url: server_url.trim().to_owned(),
        username,
        password,
        allow_insecure,
    };
    match connect::connect_caldav(state, user, credentials).await {
        Ok(_) => Flash::ok(if icloud {
            "Apple iCloud connected. The first sync is running."
        } else if allow_insecure && server_url.trim().starts_with("http://") {
            "CalDAV account connected over an unencrypted connection. The first sync is running."
        } else {
            "CalDAV account connected. The first sync is running."
        }),
        Err(ConnectError::InsecureUrl) => Flash::error(
            "That server URL starts with http://, so your password would travel unencrypted. \
             Use the server's https:// address, or, if it has none, tick \
             \u{201c}Allow an unencrypted connection\u{201d} and connect again.",
        ),
        Err(err) => {
            tracing::info!(user = %user, error = %err, "connecting CalDAV failed");
            match AppError::from(err) {
                AppError::BadGateway(detail) => Flash::error(format!(
                    "Could not connect to that CalDAV server: check its address and try again ({detail})."
                )),
                other => error_flash(other),
            }
        }
    }
}

/// Subscribes to an ICS feed.
pub async fn ics(state: &AppState, user: UserId, url: SecretString, name: Option<String>) -> Flash {
    if url.expose_secret().trim().is_empty() {
        return Flash::error("Fill in the feed's URL.");
    }
    let feed = IcsFeed { url, name };
    match connect::subscribe_ics(state, user, feed).await {
        Ok(_) => Flash::ok("Feed subscribed. Its events appear as soon as the first sync is done."),
        // The URL may embed a key: the log gets the error, never the URL.
        Err(err) => {
            tracing::info!(user = %user, error = %err, "subscribing to a feed failed");
            match AppError::from(err) {
                AppError::BadGateway(detail) => Flash::error(format!(
                    "Could not read a calendar at that address: check the URL and try again ({detail})."
                )),
                other => error_flash(other),
            }
        }
    }
}
