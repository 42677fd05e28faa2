//! CalDAV (RFC 4791) with collection sync (RFC 6578) and service discovery
//! (RFC 6764): Apple iCloud (app-specific password), Fastmail, Nextcloud,
//! Radicale and any other CalDAV server, read side, per
//! `shared/specs/caldav.md`.
//!
//! Never touches the database and never decides what to store: it fetches
//! calendar object resources and hands each one, parsed by
//! `calsync_core::ical`, to the store as ONE
//! [`EventChange::Replace`](calsync_core::changes::EventChange::Replace)
//! whose group is the resource's href (RFC 4791 §4.1: one resource holds a
//! master and all its overrides, so an override dropped from it disappears).
//!
//! Submodules:
//! - `xml`: request bodies and the namespace-aware multistatus reader;
//! - `href`: href normalisation and the "which hosts get the password" rule;
//! - `discovery`: RFC 6764 §6 bootstrapping (`.well-known`, principal,
//!   calendar home) and the calendar listing;
//! - `sync`: one page of a calendar's changes (sync-collection, or the
//!   ctag/etag fallback), fetched with calendar-multiget;
//! - `cursor`: the opaque sync tokens and page continuations.
//!
//! Authentication is HTTP Basic on every request (RFC 7617), sent only to
//! hosts of the same site as the server URL the user typed (see
//! [`href::same_site`]); the password is a [`SecretString`] and never
//! appears in a log line or an error. Hrefs, etags and the username may be
//! logged.
//!
//! How a caller connects an account and drives one calendar (each page is
//! stored in one transaction; the token of `Done` with the last page):
//!
//! ```no_run
//! # use calsync_core::changes::PageNext;
//! # use calsync_providers::caldav::{CaldavClient, CaldavConfig, CaldavLogin};
//! # use calsync_providers::{EventsCursor, ProviderError};
//! # use secrecy::SecretString;
//! # async fn run(password: SecretString, stored: Option<String>) -> Result<(), ProviderError> {
//! let client = CaldavClient::new(CaldavConfig::default())?;
//! // Connect: 401 -> ProviderError::Unauthorized ("wrong user name or password").
//! let account = client.discover("caldav.icloud.com", "me@icloud.com", &password).await?;
//! let login = CaldavLogin {
//!     server_url: "caldav.icloud.com".into(),
//!     home_url: account.home_url.clone(),
//!     username: "me@icloud.com".into(),
//!     password,
//! };
//! let calendar = &account.calendars[0].external_id;
//! let mut cursor = match stored {
//!     Some(token) => EventsCursor::Sync(token),
//!     None => EventsCursor::Full,
//! };
//! loop {
//!     let page = match client.list_events_page(&login, calendar, &cursor).await {
//!         Ok(page) => page,
//!         // Token refused: list everything, the store sweeps the rest.
//!         Err(ProviderError::SyncTokenExpired) => {
//!             cursor = EventsCursor::Full;
//!             continue;
//!         }
//!         Err(other) => return Err(other),
//!     };
//!     // store.apply(page.changes, ...) in one transaction with the cursor
//!     match page.next {
//!         PageNext::Page(next) => cursor = EventsCursor::Page(next),
//!         PageNext::Done { sync_token: _ } => break,
//!     }
//! }
//! # Ok(()) }
//! ```

mod cursor;
mod discovery;
pub mod href;
mod sync;
pub mod xml;

use calsync_core::model::RemoteCalendar;
use reqwest::{Method, Url};
use secrecy::{ExposeSecret as _, SecretString};

use crate::error::ProviderError;
use crate::http::{HttpClient, HttpConfig, RawResponse};

/// Tunables of the CalDAV client; the defaults suit real servers, tests
/// shrink them to reach every path with small calendars.
#[derive(Debug, Clone)]
pub struct CaldavLimits {
    /// Hrefs per calendar-multiget REPORT (spec B3: 50-100).
    pub multiget_batch: usize,
    /// Resources per page handed to the caller (one store transaction).
    pub page_resources: usize,
    /// The most members a page continuation carries; a longer listing is
    /// listed again from the same base for its next window.
    pub carried_hrefs: usize,
    /// The largest member -> etag map the fallback keeps in its token.
    pub etag_map_entries: usize,
    /// Redirects followed during discovery (RFC 6764 §5: a few).
    pub max_redirects: usize,
    /// Use RFC 6578 sync-collection when the server has it. Off means the
    /// ctag/etag fallback everywhere: for a server whose sync tokens are
    /// known to be broken (spec C2 #5), and to test the fallback.
    pub sync_collection: bool,
}

impl Default for CaldavLimits {
    fn default() -> Self {
        Self {
            multiget_batch: 100,
            page_resources: 500,
            carried_hrefs: 5000,
            etag_map_entries: 5000,
            max_redirects: 5,
            sync_collection: true,
        }
    }
}

/// How the CalDAV client is built. The default refuses private addresses.
#[derive(Debug, Clone, Default)]
pub struct CaldavConfig {
    /// Allow servers on loopback and private addresses (a home Radicale,
    /// tests). Off by default: CalDAV URLs are typed by users, and must not
    /// make calsync probe its own network (design.md §5).
    pub allow_private_addresses: bool,
    /// Timeouts, size limit, retries. Its `restrict_addresses` is set from
    /// `allow_private_addresses`.
    pub http: HttpConfig,
    pub limits: CaldavLimits,
}

/// What a connection keeps to sync a CalDAV account: the URL the user typed
/// (the site the password may go to), the calendar home found by
/// [`CaldavClient::discover`], and the credentials.
#[derive(Debug, Clone)]
pub struct CaldavLogin {
    pub server_url: String,
    pub home_url: String,
    pub username: String,
    /// Apple: an app-specific password. `SecretString`'s `Debug` prints
    /// `[REDACTED]`.
    pub password: SecretString,
}

/// What discovery found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaldavAccount {
    /// The principal (RFC 5397), absolute.
    pub principal_url: String,
    /// The calendar home (RFC 4791 §6.2.1), absolute, ending in `/`.
    pub home_url: String,
    /// Its event calendars; each `external_id` is the calendar's absolute URL.
    pub calendars: Vec<RemoteCalendar>,
}

/// The CalDAV client. Cheap to clone; one per process serves every account
/// (credentials are passed per call).
#[derive(Debug, Clone)]
pub struct CaldavClient {
    http: HttpClient,
    limits: CaldavLimits,
}

/// Credentials for one call, with the site they may be sent to.
#[derive(Clone, Copy)]
struct Auth<'a> {
    trusted: &'a Url,
    username: &'a str,
    password: &'a SecretString,
}

/// A request's `Depth` header (RFC 4918 §10.2): always sent, since servers
/// disagree on the default (spec B3).
#[derive(Debug, Clone, Copy)]
enum Depth {
    Zero,
    One,
}

impl Depth {
    fn as_str(self) -> &'static str {
        match self {
            Self::Zero => "0",
            Self::One => "1",
        }
    }
}

const XML_CONTENT_TYPE: &str = "application/xml; charset=utf-8";

impl CaldavClient {
    pub fn new(config: CaldavConfig) -> Result<Self, ProviderError> {
        let http = HttpClient::new(HttpConfig {
            restrict_addresses: !config.allow_private_addresses,
            ..config.http
        })?;
        Ok(Self {
            http,
            limits: config.limits,
        })
    }

    /// The same client counting HTTP requests from zero (per sync run).
    pub fn with_fresh_count(&self) -> Self {
        Self {
            http: self.http.with_fresh_count(),
            limits: self.limits.clone(),
        }
    }

    /// HTTP requests sent since this client's count started (discovery's
    /// redirect hops are sent outside the counter).
    pub fn requests_sent(&self) -> u64 {
        self.http.requests_sent()
    }

    /// The server URL as a user typed it, parsed ([`parse_server_url`]) and
    /// checked by the address guard (when private addresses are refused),
    /// before anything is sent: the caller can then judge its scheme.
    pub fn check_server_url(&self, server_url: &str) -> Result<Url, ProviderError> {
        let url = parse_server_url(server_url)?;
        self.check_address(&url)?;
        Ok(url)
    }

    /// The calendars of the account's home, listed again (each sync: they
    /// may have been added, renamed or removed).
    pub async fn list_calendars(
        &self,
        login: &CaldavLogin,
    ) -> Result<Vec<RemoteCalendar>, ProviderError> {
        let trusted = parse_server_url(&login.server_url)?;
        let home = parse_absolute(&login.home_url, "calendar home URL")?;
        let auth = Auth {
            trusted: &trusted,
            username: &login.username,
            password: &login.password,
        };
        self.list_home(auth, &href::as_collection(home)).await
    }

    /// A WebDAV request with Basic auth and Depth, retried per policy on
    /// 429/5xx (PROPFIND and REPORT are safe to repeat). Refuses hosts that
    /// are not of the trusted site before anything is sent.
    async fn dav(
        &self,
        auth: Auth<'_>,
        method: &'static str,
        url: &Url,
        depth: Depth,
        body: String,
    ) -> Result<RawResponse, ProviderError> {
        self.check_target(auth, url)?;
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| ProviderError::Setup(format!("HTTP method {method}")))?;
        self.http
            .send(
                |client| {
                    client
                        .request(method.clone(), url.clone())
                        .basic_auth(auth.username, Some(auth.password.expose_secret()))
                        .header("Depth", depth.as_str())
                        .header(reqwest::header::CONTENT_TYPE, XML_CONTENT_TYPE)
                        .body(body.clone())
                },
                is_retryable,
            )
            .await
    }

    /// One request without retries that also returns the `Location` header:
    /// discovery follows redirects itself, keeping the method (RFC 6764 §5;
    /// HTTP libraries turn a redirected PROPFIND into a GET or drop it).
    async fn dav_once(
        &self,
        auth: Auth<'_>,
        method: &'static str,
        url: &Url,
        depth: Depth,
        body: String,
    ) -> Result<(RawResponse, Option<String>), ProviderError> {
        self.check_target(auth, url)?;
        self.check_address(url)?;
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| ProviderError::Setup(format!("HTTP method {method}")))?;
        let response = self
            .http
            .reqwest()
            .request(method, url.clone())
            .basic_auth(auth.username, Some(auth.password.expose_secret()))
            .header("Depth", depth.as_str())
            .header(reqwest::header::CONTENT_TYPE, XML_CONTENT_TYPE)
            .body(body)
            .send()
            .await
            .map_err(crate::http::network_error)?;
        let status = response.status().as_u16();
        tracing::debug!(
            host = url.host_str().unwrap_or("?"),
            status,
            "caldav discovery request"
        );
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| crate::http::parse_retry_after(v, jiff::Timestamp::now()));
        let limit = self.http.config().max_body_bytes;
        let body = crate::http::read_body_limited(response, limit).await?;
        Ok((
            RawResponse {
                status,
                retry_after,
                body,
            },
            location,
        ))
    }

    /// The address guard (when private addresses are refused) for a URL we
    /// are about to request: an IP literal or internal name is refused
    /// before anything is sent, as [`ProviderError::ForbiddenAddress`].
    /// Every discovery hop goes through it; names that resolve to private
    /// addresses are refused by the client's resolver on every connection.
    fn check_address(&self, url: &Url) -> Result<(), ProviderError> {
        self.http.guard_url(url)
    }

    /// Credentials go to the trusted site only.
    fn check_target(&self, auth: Auth<'_>, url: &Url) -> Result<(), ProviderError> {
        if !href::same_site(auth.trusted, url) {
            return Err(ProviderError::Setup(format!(
                "refusing to send the CalDAV password to {}: not the same site as {}",
                url.host_str().unwrap_or("?"),
                auth.trusted.host_str().unwrap_or("?")
            )));
        }
        Ok(())
    }
}

/// 429 and the 5xx that mean "try again" (not 501 Not Implemented, not
/// 507, which a server may use for a too-large answer).
fn is_retryable(response: &RawResponse) -> bool {
    matches!(response.status, 429 | 500 | 502 | 503 | 504)
}

/// An error answer as a [`ProviderError`]: host and status only, never the
/// body (it may quote event data) beyond a named precondition.
fn classify(response: &RawResponse, what: &str, url: &Url) -> ProviderError {
    match response.status {
        401 => ProviderError::Unauthorized,
        429 => ProviderError::RateLimited {
            retry_after: response.retry_after,
        },
        status => {
            let reason =
                precondition_name(&response.body).unwrap_or_else(|| "http_error".to_owned());
            ProviderError::Provider {
                status,
                reason,
                message: format!("{what} on {}", url.host_str().unwrap_or("?")),
            }
        }
    }
}

/// The first precondition/postcondition element named in a `DAV:error`
/// body (RFC 4918 §16), e.g. `valid-sync-token`.
fn precondition_name(body: &[u8]) -> Option<String> {
    let root = xml::parse_document(body).ok()?;
    if !root.is(xml::Ns::Dav, "error") {
        return None;
    }
    let first = root.children.first()?;
    let name: String = first
        .name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect();
    (!name.is_empty()).then_some(name)
}

/// The URL the user typed: `https://` is assumed without a scheme; only
/// http(s), no credentials in it.
pub fn parse_server_url(text: &str) -> Result<Url, ProviderError> {
    let text = text.trim();
    let with_scheme = if text.contains("://") {
        text.to_owned()
    } else {
        format!("https://{text}")
    };
    let url = parse_absolute(&with_scheme, "server URL")?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ProviderError::Setup(
            "the server URL must not contain a user name or password".to_owned(),
        ));
    }
    Ok(url)
}

fn parse_absolute(text: &str, what: &str) -> Result<Url, ProviderError> {
    let url = Url::parse(text.trim())
        .map_err(|e| ProviderError::Setup(format!("the {what} is not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ProviderError::Setup(format!(
            "the {what} must be an http:// or https:// URL"
        )));
    }
    Ok(url)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        assert_eq!(
            parse_server_url("caldav.icloud.com").unwrap().as_str(),
            "https://caldav.icloud.com/"
        );
        assert_eq!(
            parse_server_url(" http://127.0.0.1:5232/alice/ ")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:5232/alice/"
        );
        assert!(parse_server_url("ftp://x/").is_err());
        assert!(parse_server_url("https://u:p@x/").is_err());
    }

    #[test]
    fn errors_name_the_precondition_only() {
        let url = Url::parse("https://dav.example.com/c/").unwrap();
        let response = RawResponse {
            status: 403,
            retry_after: None,
            body:
                br#"<?xml version="1.0"?><D:error xmlns:D="DAV:"><D:valid-sync-token/></D:error>"#
                    .to_vec(),
        };
        let err = classify(&response, "sync-collection", &url);
        assert!(
            matches!(&err, ProviderError::Provider { status: 403, reason, .. } if reason == "valid-sync-token")
        );
        assert!(err.to_string().contains("dav.example.com"));
        let unauthorized = RawResponse {
            status: 401,
            retry_after: None,
            body: Vec::new(),
        };
        assert!(matches!(
            classify(&unauthorized, "x", &url),
            ProviderError::Unauthorized
        ));
    }
}
