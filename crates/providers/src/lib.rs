//! calsync-providers: one module per calendar provider behind one trait.
//!
//! Each provider speaks its own wire protocol (OAuth2, Google Calendar v3 JSON,
//! Microsoft Graph JSON, CalDAV XML, ICS feeds) over HTTP with timeouts,
//! retries and backoff, and turns what it reads into `calsync-core` change sets.
//!
//! Providers never touch the database and never decide what to store: they
//! fetch and translate; `core` plans; `store` applies.
//!
//! # Layout
//!
//! - [`error`]: [`ProviderError`], the one error type, classified by what the
//!   caller does next (refresh once, reconnect, full resync, wait, give up);
//!   safe to log: never carries a token, code or secret.
//! - [`http`]: the shared `reqwest` client: connect and overall timeouts, a
//!   response size cap, retries with exponential backoff + jitter honouring
//!   `Retry-After`; logs hosts and statuses only; the address guard
//!   (`restrict_addresses`, [`http::check_url`]) for URLs users type.
//! - [`oauth`]: provider-neutral OAuth 2.0 + PKCE: verifier/challenge,
//!   `state`, authorization URL, code exchange, refresh, revocation, id_token
//!   claims.
//! - [`caldav`]: CalDAV (iCloud, Fastmail, Nextcloud, Radicale...):
//!   discovery (RFC 6764), sync-collection (RFC 6578) with a ctag/etag
//!   fallback, calendar-multiget; `xml`, `href`, `discovery`, `sync`, `cursor`.
//! - [`google`]: Google OAuth2 + Calendar API v3: the [`google::GoogleClient`]
//!   and, below it, `wire` (Google's JSON), `mapping` (JSON -> core types),
//!   `errors` (Google's error envelope -> [`ProviderError`]), `colors` (the
//!   palette), `cursor` (opaque continuation tokens).
//! - [`microsoft`]: Microsoft identity platform v2 OAuth (rotating refresh
//!   tokens) + Graph calendars: the [`microsoft::MicrosoftClient`] and, below
//!   it, `wire` (Graph's JSON), `mapping` (JSON -> core types, Windows zones
//!   via `calsync_core::tz`), `errors` (Graph's envelope and AADSTS token
//!   errors -> [`ProviderError`]), `cursor` (delta links with the window
//!   their round is anchored at).
//! - [`ics`]: ICS feed subscriptions: webcal/https URL normalisation, a
//!   probe at subscribe time, conditional GETs with an opaque token (ETag,
//!   Last-Modified, SHA-256, event count), one snapshot page of
//!   `Replace` changes per fetch behind the mass-delete guard; the URL is a
//!   secret and the address guard checks every redirect hop.
//! - this file: [`CalendarSource`], the trait every provider implements for
//!   sync, and [`EventsCursor`], where a listing starts.
//!
//! [`microsoft::MicrosoftClient`] does not implement [`CalendarSource`]: a
//! Graph delta round is bound to a time window (`calendarView/delta` needs
//! `startDateTime`/`endDateTime`, and a sync token's window must be moved
//! on by a full round), so its `list_events_page` takes the caller's window
//! and the trait's signature has no place for it. The server calls the
//! concrete clients; the trait stays as it is until a second windowed
//! provider shows what a window argument should look like.

pub mod caldav;
pub mod error;
pub mod google;
pub mod http;
pub mod ics;
pub mod microsoft;
pub mod oauth;

use std::future::Future;

use calsync_core::changes::ChangePage;
use calsync_core::model::RemoteCalendar;
use secrecy::SecretString;

pub use error::ProviderError;

/// Where one request for a calendar's events starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventsCursor {
    /// A full listing from scratch (first sync, or after
    /// [`ProviderError::SyncTokenExpired`]).
    Full,
    /// The next page of the round in progress: the string of a
    /// [`calsync_core::changes::PageNext::Page`], passed back unchanged. It is
    /// opaque: it may carry more than the provider's page token.
    Page(String),
    /// Changes since the previous round: the `sync_token` of a
    /// [`calsync_core::changes::PageNext::Done`].
    Sync(String),
}

/// What the sync worker needs from any provider: the account's calendars and
/// its events page by page. Implementations only fetch and translate.
///
/// `credential` is the connection's current secret: an OAuth access token
/// for Google and Microsoft (the caller refreshes it on
/// [`ProviderError::Unauthorized`] and retries once).
pub trait CalendarSource {
    /// Every calendar of the account (all pages).
    fn list_calendars(
        &self,
        credential: &SecretString,
    ) -> impl Future<Output = Result<Vec<RemoteCalendar>, ProviderError>> + Send;

    /// One page of a calendar's events or changes. The caller follows
    /// [`calsync_core::changes::PageNext::Page`] until
    /// [`calsync_core::changes::PageNext::Done`], whose token it stores with
    /// the last page's changes.
    fn list_events_page(
        &self,
        credential: &SecretString,
        calendar_id: &str,
        cursor: &EventsCursor,
    ) -> impl Future<Output = Result<ChangePage, ProviderError>> + Send;
}

/// The lower-cased host of a URL, e.g. to limit how hard one server is
/// worked at once; `None` when it does not parse.
pub fn url_host(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    parsed.host_str().map(str::to_ascii_lowercase)
}
