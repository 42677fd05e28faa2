//! ICS feed subscriptions: a calendar published as one iCalendar file at a
//! URL (Google's "secret address in iCal format", Outlook's published
//! calendars, webcal:// links, sports and holiday feeds).
//!
//! A feed has no change log: every fetch is a whole snapshot. So:
//!
//! - [`EventsCursor::Full`]: GET, parse with `calsync_core::ical::remote`,
//!   and answer ONE page holding every series as
//!   [`EventChange::Replace`] keyed by UID (so overrides that vanished from a
//!   series go with the snapshot too), ending with
//!   [`PageNext::Done`] and a [`FeedToken`].
//! - [`EventsCursor::Sync`]: a conditional GET (`If-None-Match`,
//!   `If-Modified-Since`, RFC 9110 §13.1). A 304, or a body with the same
//!   SHA-256 as last time, is an empty page (nothing changed). Any other body
//!   is the whole listing again: **the caller applies a non-empty page
//!   answered to a `Sync` cursor as a full round**, whose mark-and-sweep
//!   removes the series that left the feed.
//! - A new snapshot must pass [`mass_delete_guard`] against the previous
//!   one's event count: a feed that comes back empty, or with less than a
//!   tenth of its events, is refused with an error and the last good copy
//!   stays. So is a body that is not iCalendar at all (an HTML error page
//!   served with 200 OK). To accept a feed that really was emptied, the
//!   caller forgets the cursor: a `Full` fetch has nothing to compare with.
//!
//! The feed URL is a secret (Google's holds a private key): it comes in as
//! a [`SecretString`] and never reaches a log line or an error message;
//! logs name the host only. The client follows at most
//! [`IcsConfig::max_redirects`] redirects itself, checking each hop with the
//! address guard unless private addresses are allowed, reads at most
//! [`IcsConfig::max_bytes`], and bounds each request by a timeout.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use calsync_core::changes::{ChangePage, EventChange, PageNext};
use calsync_core::ical::{remote_feed, IcalFeed};
use calsync_core::model::RemoteCalendar;
use calsync_core::plan::mass_delete_guard;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::http::{read_body_limited, HttpClient, HttpConfig, RetryPolicy};
use crate::{CalendarSource, EventsCursor, ProviderError};

/// The longest feed URL accepted; real ones are a few hundred characters.
pub const MAX_URL_LEN: usize = 2048;

/// Validators longer than this are not kept in the token (real ETags and
/// HTTP-dates are short; the token is stored with the calendar).
const MAX_VALIDATOR_LEN: usize = 256;

/// How the ICS client is built.
#[derive(Debug, Clone)]
pub struct IcsConfig {
    /// Allow feeds on loopback and private addresses (a NAS on the local
    /// network, tests). Off by default: feed URLs are typed by users, and
    /// must not make calsync probe its own network (design.md §5).
    pub allow_private_addresses: bool,
    /// The largest feed accepted; larger ones fail with
    /// [`ProviderError::TooLarge`].
    pub max_bytes: usize,
    /// Time allowed for one request, body included.
    pub timeout: Duration,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Redirects followed before giving up.
    pub max_redirects: usize,
    /// Names pinned to addresses (see [`HttpConfig::resolve_overrides`]).
    pub resolve_overrides: Vec<(String, std::net::SocketAddr)>,
}

impl Default for IcsConfig {
    fn default() -> Self {
        Self {
            allow_private_addresses: false,
            max_bytes: 16 * 1024 * 1024,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            max_redirects: 5,
            resolve_overrides: Vec::new(),
        }
    }
}

/// What a feed says about itself, read when a user subscribes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcsFeedInfo {
    /// X-WR-CALNAME (or RFC 7986 NAME).
    pub name: Option<String>,
    /// COLOR (RFC 7986 §5.9) or X-APPLE-CALENDAR-COLOR as `#rrggbb`, when
    /// written in hex (`#rgb`, `#rrggbb`, Apple's `#rrggbbaa`); CSS colour
    /// names are left out.
    pub color: Option<String>,
    /// X-WR-TIMEZONE as an IANA name.
    pub timezone: Option<String>,
    /// Events in the feed (masters and overrides).
    pub events: usize,
}

/// The external id of a feed's one calendar in [`CalendarSource`] terms.
pub const FEED_CALENDAR_ID: &str = "feed";

/// A hex colour as `#rrggbb` (alpha dropped), else `None`.
fn hex_color(value: &str) -> Option<String> {
    let hex = value.trim().strip_prefix('#')?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let rgb = match hex.len() {
        3 => hex.chars().flat_map(|c| [c, c]).collect(),
        6 | 8 => hex[..6].to_owned(),
        _ => return None,
    };
    Some(format!("#{}", rgb.to_ascii_lowercase()))
}

/// The sync token of a feed: the validators and digest of the last snapshot
/// applied, and its number of events for [`mass_delete_guard`]. Stored as
/// `ics1.` + base64url (no padding) of its JSON form
/// `{"e": etag?, "m": last_modified?, "h": sha256-hex, "n": events}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedToken {
    /// The `ETag` of the last answer, for `If-None-Match`.
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The `Last-Modified` of the last answer, for `If-Modified-Since`.
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// SHA-256 of the last body, lower-case hex.
    #[serde(rename = "h")]
    pub sha256: String,
    /// Events (masters and overrides) of the last snapshot.
    #[serde(rename = "n")]
    pub events: u64,
}

const TOKEN_PREFIX: &str = "ics1.";

impl FeedToken {
    /// The stored form.
    pub fn encode(&self) -> String {
        // Serialising plain strings and a number cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
    }

    /// Reads the stored form; `None` when it is not one (the next fetch is
    /// then a full one).
    pub fn decode(token: &str) -> Option<Self> {
        let raw = URL_SAFE_NO_PAD
            .decode(token.strip_prefix(TOKEN_PREFIX)?)
            .ok()?;
        serde_json::from_slice(&raw).ok()
    }
}

/// Normalises a feed URL as a user typed it: `webcal://` and `webcals://`
/// become `https://` (the URL to try first; see [`feed_url_candidates`] for
/// the plain-http fallback of `webcal://`), then only `http` and `https`
/// are accepted, with a host, without
/// credentials (a `user:pass@` part is refused: it can disguise the real
/// host, and authenticated calendars belong to CalDAV) and without the
/// fragment. Errors never quote the URL, which may hold a secret.
pub fn normalize_feed_url(input: &str) -> Result<Url, ProviderError> {
    let bad = |why: &str| ProviderError::Setup(format!("the feed URL {why}"));
    let input = input.trim();
    if input.is_empty() {
        return Err(bad("is empty"));
    }
    if input.len() > MAX_URL_LEN {
        return Err(bad(&format!("is longer than {MAX_URL_LEN} characters")));
    }
    let lower = input
        .get(..10)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let rewritten = if lower.starts_with("webcals://") {
        format!("https://{}", &input[10..])
    } else if lower.starts_with("webcal://") {
        format!("https://{}", &input[9..])
    } else {
        input.to_owned()
    };
    let mut url = Url::parse(&rewritten).map_err(|_| bad("is not a valid URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must start with https://, http:// or webcal://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "must not contain a user name or password; use a CalDAV connection for calendars that need a login",
        ));
    }
    url.set_fragment(None);
    Ok(url)
}

/// The URLs to try for a feed URL as a user typed it, in order.
///
/// `webcal://` names no transport (it only tells browsers to hand the link
/// to a calendar app, and most publishers serve it over both), so it is
/// tried over `https://` first and over plain `http://` when no TLS
/// connection can be made at all; `webcals://` is https only. Anything else
/// is the one URL [`normalize_feed_url`] makes of it (`http://` stays
/// plain). Errors never quote the URL.
pub fn feed_url_candidates(input: &str) -> Result<Vec<Url>, ProviderError> {
    let https = normalize_feed_url(input)?;
    let trimmed = input.trim();
    let is_webcal = trimmed
        .get(..9)
        .is_some_and(|p| p.eq_ignore_ascii_case("webcal://"));
    if !is_webcal {
        return Ok(vec![https]);
    }
    // The same address over http, read from what was typed so that an
    // explicit port stays (`webcal://host:443/` names the TLS port: plain
    // http to it is pointless).
    let plain = normalize_feed_url(&format!("http://{}", &trimmed[9..]))?;
    if plain.port() == Some(443) {
        return Ok(vec![https]);
    }
    Ok(vec![https, plain])
}

/// The same feed URL over `https://`, the form a feed's identity is taken
/// from: `http://`, `https://` and `webcal://` spellings of one address are
/// one feed. An explicit port stays as it is.
pub fn https_form(url: &Url) -> Url {
    let mut same = url.clone();
    if same.scheme() == "http" {
        // http -> https is always a valid scheme change for a parsed URL.
        let _ = same.set_scheme("https");
    }
    same
}

/// The ICS feed client. Cheap to clone; one per process serves every feed
/// (the URL is passed per call).
#[derive(Debug, Clone)]
pub struct IcsClient {
    http: HttpClient,
    max_redirects: usize,
}

/// What one fetch brought.
enum Fetched {
    /// 304: the snapshot of the validators sent is still current.
    NotModified,
    Body {
        bytes: Vec<u8>,
        etag: Option<String>,
        last_modified: Option<String>,
    },
}

impl IcsClient {
    pub fn new(config: IcsConfig) -> Result<Self, ProviderError> {
        let http = HttpClient::new(HttpConfig {
            connect_timeout: config.connect_timeout,
            timeout: config.timeout,
            max_body_bytes: config.max_bytes,
            // A failed fetch fails the sync; the scheduler comes back later.
            retry: RetryPolicy::none(),
            restrict_addresses: !config.allow_private_addresses,
            resolve_overrides: config.resolve_overrides,
            ..HttpConfig::default()
        })?;
        Ok(Self {
            http,
            max_redirects: config.max_redirects,
        })
    }

    /// The same client counting HTTP requests from zero (per sync run).
    pub fn with_fresh_count(&self) -> Self {
        Self {
            http: self.http.with_fresh_count(),
            max_redirects: self.max_redirects,
        }
    }

    /// HTTP requests sent since this client's count started (redirect hops
    /// included).
    pub fn requests_sent(&self) -> u64 {
        self.http.requests_sent()
    }

    /// Fetches the feed once, at subscribe time: its name, colour, zone and
    /// size. Fails when the URL does not serve iCalendar data.
    pub async fn probe(&self, url: &SecretString) -> Result<IcsFeedInfo, ProviderError> {
        let url = normalize_feed_url(url.expose_secret())?;
        let Fetched::Body { bytes, .. } = self.fetch(&url, None).await? else {
            return Err(ProviderError::Decode(
                "the feed answered 304 Not Modified to a plain request".into(),
            ));
        };
        let feed = parse(bytes).await?;
        Ok(IcsFeedInfo {
            events: feed.event_count(),
            name: feed.name,
            color: feed.color.as_deref().and_then(hex_color),
            timezone: feed.timezone,
        })
    }

    /// Fetches the first of `candidates` (from [`feed_url_candidates`]) that
    /// answers, at subscribe time: a candidate that cannot be connected to
    /// at all (no TLS server, a refused port, a handshake that fails) gives
    /// way to the next; any answer from a server (an error status, a body
    /// that is not a calendar), the address guard and the last candidate's
    /// failure are final. Returns the URL that served the feed.
    pub async fn probe_first(
        &self,
        candidates: &[Url],
    ) -> Result<(Url, IcsFeedInfo), ProviderError> {
        let mut last = None;
        for (index, url) in candidates.iter().enumerate() {
            let secret = SecretString::from(url.to_string());
            match self.probe(&secret).await {
                Ok(info) => return Ok((url.clone(), info)),
                Err(ProviderError::Network(message)) if index + 1 < candidates.len() => {
                    tracing::info!(
                        host = url.host_str().unwrap_or("?"),
                        scheme = url.scheme(),
                        error = %message,
                        "feed unreachable over this scheme; trying the next"
                    );
                    last = Some(ProviderError::Network(message));
                }
                Err(other) => return Err(other),
            }
        }
        Err(last.unwrap_or_else(|| ProviderError::Setup("the feed URL is empty".into())))
    }

    /// The feed's events as one page (see the module docs): every series on
    /// `Full` (and on `Page`, which a feed never hands out), only what is
    /// needed on `Sync`.
    pub async fn fetch_page(
        &self,
        url: &SecretString,
        cursor: &EventsCursor,
    ) -> Result<ChangePage, ProviderError> {
        let url = normalize_feed_url(url.expose_secret())?;
        let previous = match cursor {
            EventsCursor::Sync(token) => FeedToken::decode(token),
            EventsCursor::Full | EventsCursor::Page(_) => None,
        };
        let (bytes, etag, last_modified) = match self.fetch(&url, previous.as_ref()).await? {
            Fetched::NotModified => {
                return match previous {
                    Some(token) => Ok(unchanged(token)),
                    None => Err(ProviderError::Decode(
                        "the feed answered 304 Not Modified to a plain request".into(),
                    )),
                };
            }
            Fetched::Body {
                bytes,
                etag,
                last_modified,
            } => (bytes, etag, last_modified),
        };
        let sha256 = hex_sha256(&bytes);
        if let Some(previous) = previous.as_ref().filter(|p| p.sha256 == sha256) {
            // Served again without validators, or with new ones: same bytes,
            // nothing to apply; keep the fresh validators for next time.
            return Ok(unchanged(FeedToken {
                etag: etag.or_else(|| previous.etag.clone()),
                last_modified: last_modified.or_else(|| previous.last_modified.clone()),
                ..previous.clone()
            }));
        }
        let feed = parse(bytes).await?;
        let events = u64::try_from(feed.event_count()).unwrap_or(u64::MAX);
        if let Some(previous) = &previous {
            mass_delete_guard(previous.events, events).map_err(|refused| {
                tracing::warn!(
                    host = url.host_str().unwrap_or("?"),
                    stored = refused.stored,
                    incoming = refused.incoming,
                    "feed collapsed; keeping the last good copy"
                );
                ProviderError::Decode(refused.to_string())
            })?;
        }
        let token = FeedToken {
            etag,
            last_modified,
            sha256,
            events,
        };
        Ok(ChangePage {
            changes: feed
                .series
                .into_iter()
                .map(|s| s.into_change(None))
                .collect::<Vec<EventChange>>(),
            next: PageNext::Done {
                sync_token: token.encode(),
            },
        })
    }

    /// GET with the validators of `previous`, following redirects (each hop
    /// checked by the address guard).
    async fn fetch(
        &self,
        url: &Url,
        previous: Option<&FeedToken>,
    ) -> Result<Fetched, ProviderError> {
        let mut current = url.clone();
        let mut redirects = 0usize;
        loop {
            let response = self.get_once(&current, previous).await?;
            let status = response.status();
            let host = current.host_str().unwrap_or("?").to_owned();
            tracing::debug!(host = %host, status = status.as_u16(), "ics feed request");
            if status == StatusCode::NOT_MODIFIED && previous.is_some() {
                return Ok(Fetched::NotModified);
            }
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                if redirects >= self.max_redirects {
                    return Err(ProviderError::Provider {
                        status: status.as_u16(),
                        reason: "too_many_redirects".into(),
                        message: format!(
                            "the feed at {host} redirected more than {} times",
                            self.max_redirects
                        ),
                    });
                }
                redirects += 1;
                current = redirect_target(&current, response.headers())?;
                continue;
            }
            if !status.is_success() {
                return Err(status_error(status, response.headers(), &host));
            }
            let etag = validator(response.headers(), reqwest::header::ETAG);
            let last_modified = validator(response.headers(), reqwest::header::LAST_MODIFIED);
            let limit = self.http.config().max_body_bytes;
            let bytes = read_body_limited(response, limit).await?;
            return Ok(Fetched::Body {
                bytes,
                etag,
                last_modified,
            });
        }
    }

    async fn get_once(
        &self,
        url: &Url,
        previous: Option<&FeedToken>,
    ) -> Result<reqwest::Response, ProviderError> {
        let mut request = self
            .http
            .reqwest()
            .get(url.clone())
            .header(
                reqwest::header::ACCEPT,
                "text/calendar, application/ics;q=0.9, */*;q=0.5",
            )
            .build()
            .map_err(|e| ProviderError::Setup(format!("feed request: {}", e.without_url())))?;
        if let Some(previous) = previous {
            let headers = request.headers_mut();
            let pairs = [
                (reqwest::header::IF_NONE_MATCH, &previous.etag),
                (reqwest::header::IF_MODIFIED_SINCE, &previous.last_modified),
            ];
            for (name, value) in pairs {
                if let Some(value) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
                    headers.insert(name, value);
                }
            }
        }
        self.http.execute(request).await
    }
}

/// A feed as a provider of one calendar: the credential is the feed URL,
/// the calendar's id [`FEED_CALENDAR_ID`], its name the feed's (or
/// "Subscribed calendar"); listing the calendars fetches the feed once.
impl CalendarSource for IcsClient {
    async fn list_calendars(
        &self,
        credential: &SecretString,
    ) -> Result<Vec<RemoteCalendar>, ProviderError> {
        let info = self.probe(credential).await?;
        Ok(vec![RemoteCalendar {
            external_id: FEED_CALENDAR_ID.to_owned(),
            name: info
                .name
                .unwrap_or_else(|| "Subscribed calendar".to_owned()),
            color: info.color,
            timezone: info.timezone,
            is_primary: true,
            access_role: Some("reader".to_owned()),
        }])
    }

    async fn list_events_page(
        &self,
        credential: &SecretString,
        _calendar_id: &str,
        cursor: &EventsCursor,
    ) -> Result<ChangePage, ProviderError> {
        self.fetch_page(credential, cursor).await
    }
}

/// The next hop of a redirect: `Location` resolved against the current URL
/// (RFC 9110 §10.2.2), http or https only. The address guard checks it when
/// it is requested.
fn redirect_target(current: &Url, headers: &HeaderMap) -> Result<Url, ProviderError> {
    let host = current.host_str().unwrap_or("?");
    let bad = |what: &str| ProviderError::Provider {
        status: 302,
        reason: "bad_redirect".into(),
        message: format!("the feed at {host} redirected {what}"),
    };
    let location = headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| bad("without a usable Location"))?;
    let mut next = current
        .join(location.trim())
        .map_err(|_| bad("to an invalid address"))?;
    if !matches!(next.scheme(), "http" | "https") {
        return Err(bad("to an address that is not http or https"));
    }
    next.set_fragment(None);
    Ok(next)
}

/// An error answer, naming the host and status only.
fn status_error(status: StatusCode, headers: &HeaderMap, host: &str) -> ProviderError {
    let code = status.as_u16();
    if code == 429 {
        return ProviderError::RateLimited {
            retry_after: headers
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| crate::http::parse_retry_after(v, jiff::Timestamp::now())),
        };
    }
    let (reason, message) = match code {
        401 | 403 => (
            "access_denied",
            format!("the feed at {host} refused access; check that the address is still shared"),
        ),
        404 | 410 => (
            "not_found",
            format!("the feed at {host} does not exist (any more); check the address"),
        ),
        _ => (
            "http_error",
            format!("the feed at {host} could not be fetched"),
        ),
    };
    ProviderError::Provider {
        status: code,
        reason: reason.into(),
        message,
    }
}

fn validator(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= MAX_VALIDATOR_LEN)
        .map(str::to_owned)
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Nothing changed: no changes, the round ends with `token`.
fn unchanged(token: FeedToken) -> ChangePage {
    ChangePage {
        changes: Vec::new(),
        next: PageNext::Done {
            sync_token: token.encode(),
        },
    }
}

/// Parses a feed off the async runtime (a 16 MB feed takes a while) and
/// refuses what is not iCalendar.
async fn parse(bytes: Vec<u8>) -> Result<IcalFeed, ProviderError> {
    let feed = tokio::task::spawn_blocking(move || remote_feed(&bytes))
        .await
        .map_err(|_| ProviderError::Decode("the feed parser stopped unexpectedly".into()))?
        .map_err(|e| ProviderError::Decode(format!("the feed: {e}")))?;
    if feed.calendars == 0 {
        return Err(ProviderError::Decode(
            "this URL does not serve an iCalendar feed (no BEGIN:VCALENDAR); \
             check that it is the calendar's iCal/ICS address"
                .into(),
        ));
    }
    Ok(feed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn feed_urls_are_normalised() {
        let n = |s: &str| normalize_feed_url(s).map(|u| u.to_string());
        assert_eq!(
            n("webcal://p01-calendars.icloud.com/published/2/abc").unwrap(),
            "https://p01-calendars.icloud.com/published/2/abc"
        );
        assert_eq!(
            n(" WEBCALS://example.com/a.ics#x ").unwrap(),
            "https://example.com/a.ics"
        );
        assert_eq!(
            n("https://calendar.google.com/calendar/ical/a%40b/private-k/basic.ics").unwrap(),
            "https://calendar.google.com/calendar/ical/a%40b/private-k/basic.ics"
        );
        assert_eq!(n("http://example.com/x").unwrap(), "http://example.com/x");
        for bad in [
            "",
            "ftp://example.com/a.ics",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "https://",
            "https://user:secret-pass@example.com/a.ics",
            "https://google.com@evil.example/a.ics",
            "not a url",
        ] {
            let err = n(bad).unwrap_err().to_string();
            assert!(
                !err.contains("secret-pass") && !err.contains("evil"),
                "{err}"
            );
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(n(&long).is_err());
    }

    #[test]
    fn webcal_is_tried_over_https_then_http() {
        let c = |s: &str| {
            feed_url_candidates(s)
                .unwrap()
                .iter()
                .map(Url::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            c("webcal://example.com/a.ics?k=1"),
            [
                "https://example.com/a.ics?k=1",
                "http://example.com/a.ics?k=1"
            ]
        );
        assert_eq!(
            c(" WebCal://127.0.0.1:8080/a.ics"),
            [
                "https://127.0.0.1:8080/a.ics",
                "http://127.0.0.1:8080/a.ics"
            ]
        );
        assert_eq!(c("webcal://example.com:443/a"), ["https://example.com/a"]);
        assert_eq!(c("webcals://example.com/a"), ["https://example.com/a"]);
        assert_eq!(c("https://example.com/a"), ["https://example.com/a"]);
        assert_eq!(c("http://example.com/a"), ["http://example.com/a"]);
        assert!(feed_url_candidates("webcal://u:secret@example.com/").is_err());
        let url = Url::parse("http://example.com:8080/a?b").unwrap();
        assert_eq!(https_form(&url).as_str(), "https://example.com:8080/a?b");
        let url = Url::parse("http://example.com/a").unwrap();
        assert_eq!(https_form(&url).as_str(), "https://example.com/a");
    }

    #[test]
    fn colours_become_rrggbb() {
        assert_eq!(hex_color("#FF2968FF").as_deref(), Some("#ff2968"));
        assert_eq!(hex_color(" #1BADF8 ").as_deref(), Some("#1badf8"));
        assert_eq!(hex_color("#abc").as_deref(), Some("#aabbcc"));
        assert_eq!(hex_color("turquoise"), None);
        assert_eq!(hex_color("#12345"), None);
        assert_eq!(hex_color("#ggg"), None);
    }

    #[test]
    fn tokens_round_trip() {
        let token = FeedToken {
            etag: Some("\"abc\"".into()),
            last_modified: Some("Wed, 21 Oct 2026 07:28:00 GMT".into()),
            sha256: hex_sha256(b"x"),
            events: 42,
        };
        let encoded = token.encode();
        assert!(encoded.starts_with("ics1."));
        assert_eq!(FeedToken::decode(&encoded), Some(token));
        assert_eq!(FeedToken::decode("garbage"), None);
        assert_eq!(FeedToken::decode("ics1.!!!"), None);
        assert_eq!(hex_sha256(b"").len(), 64);
    }
}
