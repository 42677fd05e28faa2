//! The domain's nouns: users, connections, calendars and events, as the rest
//! of calsync passes them around. Secrets never appear here: sealed tokens stay
//! inside the store.

use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A calsync account.
    UserId
);
id_type!(
    /// One connected provider account of a user.
    ConnectionId
);
id_type!(
    /// One calendar of a connection.
    CalendarId
);
id_type!(
    /// One stored event (a single event, a recurring master or an exception).
    EventId
);

/// The calendar services calsync can connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Google,
    Microsoft,
    Caldav,
    Ics,
}

impl Provider {
    /// The name used in URLs, JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Google => "google",
            Self::Microsoft => "microsoft",
            Self::Caldav => "caldav",
            Self::Ics => "ics",
        }
    }

    /// Parses the name written by [`Provider::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Google, Self::Microsoft, Self::Caldav, Self::Ics]
            .into_iter()
            .find(|p| p.as_str() == name)
    }
}

/// Where a connection stands, as Settings shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// Connected, first sync not finished yet.
    Pending,
    /// A sync is running.
    Syncing,
    /// The last sync succeeded.
    Ok,
    /// The last sync failed; the last good data stays in place.
    Error,
    /// The provider refused our tokens: the user must reconnect.
    NeedsReauth,
    /// A round would have removed most of a calendar (or a calendar itself):
    /// nothing was removed, and the user decides (see [`RemovalDecision`]).
    Held,
}

impl ConnectionStatus {
    /// The name used in JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Syncing => "syncing",
            Self::Ok => "ok",
            Self::Error => "error",
            Self::NeedsReauth => "needs_reauth",
            Self::Held => "held",
        }
    }

    /// Parses the name written by [`ConnectionStatus::as_str`]; unknown names read as errors.
    pub fn parse(name: &str) -> Self {
        [
            Self::Pending,
            Self::Syncing,
            Self::Ok,
            Self::Error,
            Self::NeedsReauth,
            Self::Held,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
        .unwrap_or(Self::Error)
    }
}

/// A calsync account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: String,
    /// IANA zone the user's pages are shown in.
    pub timezone: String,
    pub created_at: Timestamp,
}

/// A connected provider account, without its secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub id: ConnectionId,
    pub user_id: UserId,
    pub provider: Provider,
    pub account_id: String,
    pub account_email: Option<String>,
    pub status: ConnectionStatus,
    pub last_synced_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    /// Syncs that failed in a row since the last success; the scheduler backs off by it.
    pub consecutive_failures: u32,
    /// When the next round is due (during a round: when it was due).
    pub next_sync_at: Option<Timestamp>,
    /// Why the next round waits longer than the interval.
    pub wait_reason: Option<WaitReason>,
}

/// Why a connection's next sync waits longer than the sync interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitReason {
    /// Failed rounds in a row: each one doubles the wait (up to six hours).
    Backoff,
    /// The provider asked us to come back later (`Retry-After`).
    RateLimited,
}

impl WaitReason {
    /// The name used in JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backoff => "backoff",
            Self::RateLimited => "rate_limited",
        }
    }

    /// Parses the name written by [`WaitReason::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Backoff, Self::RateLimited]
            .into_iter()
            .find(|r| r.as_str() == name)
    }
}

/// What the user decided about removals a round held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovalDecision {
    /// Remove them: the provider really lost them.
    Apply,
    /// Keep them: the next rounds go on syncing changes.
    Reject,
}

impl RemovalDecision {
    /// The name used in JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Apply => "apply",
            Self::Reject => "reject",
        }
    }

    /// Parses the name written by [`RemovalDecision::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Apply, Self::Reject]
            .into_iter()
            .find(|d| d.as_str() == name)
    }
}

/// One sync of a connection, as its history shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRun {
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// `ok`, `error`, `needs_reauth`; `None` while running.
    pub outcome: Option<String>,
    pub requests: u64,
    pub changes: u64,
    pub error: Option<String>,
}

/// One calendar of a connection, with the user's choices for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    pub id: CalendarId,
    pub connection_id: ConnectionId,
    pub external_id: String,
    pub name: String,
    /// `#rrggbb`.
    pub color: String,
    pub timezone: Option<String>,
    pub enabled: bool,
    pub is_primary: bool,
    pub access_role: Option<String>,
    pub last_synced_at: Option<Timestamp>,
    /// Events a round would have removed and held back instead; the
    /// connection is `held` until the user decides.
    pub held_removals: Option<u64>,
    /// The user's decision, carried out by the next round.
    pub removal_decision: Option<RemovalDecision>,
    /// Listings in a row that no longer listed this calendar (it is removed,
    /// through the same hold, after two).
    pub missing_listings: u32,
}

/// A calendar as a provider lists it, before the user's choices are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCalendar {
    pub external_id: String,
    pub name: String,
    /// `#rrggbb` when the provider gives one.
    pub color: Option<String>,
    pub timezone: Option<String>,
    pub is_primary: bool,
    pub access_role: Option<String>,
}

/// When an occurrence starts or ends: a plain date for all-day events (end
/// exclusive, RFC 5545), an instant otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventTime {
    Date(Date),
    Instant(Timestamp),
}

/// One occurrence of an event, as the Dashboard and the event API list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventOccurrence {
    pub event_id: EventId,
    pub calendar_id: CalendarId,
    pub connection_id: ConnectionId,
    pub provider: Provider,
    pub title: String,
    pub description: Option<String>,
    pub location: Option<String>,
    pub start: EventTime,
    pub end: EventTime,
    pub timezone: Option<String>,
    pub color: String,
    pub html_link: Option<String>,
    pub status: String,
    pub recurring: bool,
}

/// A valid `#rrggbb` colour, lower-cased.
pub fn normalize_color(input: &str) -> Option<String> {
    let hex = input.strip_prefix('#')?;
    (hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| format!("#{}", hex.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colors_are_validated_and_normalized() {
        assert_eq!(normalize_color("#A1B2C3").as_deref(), Some("#a1b2c3"));
        for bad in ["a1b2c3", "#abc", "#gggggg", "#a1b2c3 ", ""] {
            assert_eq!(normalize_color(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn names_round_trip() {
        for p in [
            Provider::Google,
            Provider::Microsoft,
            Provider::Caldav,
            Provider::Ics,
        ] {
            assert_eq!(Provider::parse(p.as_str()), Some(p));
        }
        assert_eq!(
            ConnectionStatus::parse("needs_reauth"),
            ConnectionStatus::NeedsReauth
        );
    }
}
