//! The CalDAV / iCloud and ICS forms' calls into [`crate::connect`], turned
//! into a message for the Settings page.

use calsync_core::model::UserId;

use super::forms::Flash;
use crate::state::AppState;

/// Connects a CalDAV account (Apple iCloud with an app-specific password).
pub async fn caldav(
    _state: &AppState,
    _user: UserId,
    server_url: String,
    username: String,
    password: String,
) -> Flash {
    if server_url.trim().is_empty() || username.trim().is_empty() || password.is_empty() {
        return Flash::error("Fill in the server URL, the username and the password.");
    }
    Flash::error(
        "This server cannot connect CalDAV accounts yet: CalDAV support arrives with its provider.",
    )
}

/// Subscribes to an ICS feed.
pub async fn ics(_state: &AppState, _user: UserId, url: String, _name: Option<String>) -> Flash {
    if url.trim().is_empty() {
        return Flash::error("Fill in the feed's URL.");
    }
    Flash::error(
        "This server cannot subscribe to ICS feeds yet: feed support arrives with its provider.",
    )
}
