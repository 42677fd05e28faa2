//! Google: OAuth 2.0 (authorization code + PKCE, refresh, revoke, identity)
//! and the read side of Calendar API v3 (calendarList.list, events.list with
//! page and sync tokens), per `shared/specs/google.md`.
//!
//! Never touches the database and never decides what to store: it fetches
//! and translates Google's JSON into `calsync-core` types. Every base URL
//! comes from [`GoogleConfig`], so tests and `calsync demo` point it at the
//! emulator.
//!
//! Submodules: `wire` (serde types of Google's JSON), `mapping` (JSON -> core
//! types), `errors` (the error envelope -> [`ProviderError`] and what to
//! retry), `colors` (the fixed palette), `cursor` (page continuations that
//! remember the round's sync token).
//!
//! How a caller drives one calendar (the storing is the caller's: each page
//! in one transaction, the sync token with the last page):
//!
//! ```no_run
//! # use calsync_core::changes::PageNext;
//! # use calsync_providers::{google::GoogleClient, EventsCursor, ProviderError};
//! # use secrecy::SecretString;
//! # async fn run(google: &GoogleClient, token: SecretString, stored: Option<String>)
//! #     -> Result<(), ProviderError> {
//! let mut cursor = match stored {
//!     Some(sync_token) => EventsCursor::Sync(sync_token),
//!     None => EventsCursor::Full,
//! };
//! loop {
//!     let page = match google.list_events_page(&token, "primary", &cursor).await {
//!         Ok(page) => page,
//!         // 410: forget the token, list everything, sweep what was not seen.
//!         Err(ProviderError::SyncTokenExpired) => {
//!             cursor = EventsCursor::Full;
//!             continue;
//!         }
//!         // 401: refresh once and retry; InvalidGrant from the refresh means
//!         // needs_reauth. Rate limits and network errors: try again later.
//!         Err(other) => return Err(other),
//!     };
//!     // store.apply(page.changes, ...) in one transaction with the cursor
//!     match page.next {
//!         PageNext::Page(next) => cursor = EventsCursor::Page(next),
//!         PageNext::Done { sync_token: _ } => break, // stored with this page
//!     }
//! }
//! # Ok(()) }
//! ```

mod colors;
mod cursor;
mod errors;
mod mapping;
mod wire;

use calsync_core::changes::{ChangePage, EventChange, PageNext};
use calsync_core::model::RemoteCalendar;
use secrecy::{ExposeSecret as _, SecretString};

use crate::error::ProviderError;
use crate::http::{HttpClient, HttpConfig};
use crate::oauth::{decode_id_token_claims, IdTokenCheck, Issuer, OAuthClient, TokenSet};
use crate::{CalendarSource, EventsCursor};

pub use colors::{calendar_color, event_color};
use cursor::Continuation;

/// Google's authorization endpoint.
pub const AUTH_URL: &str = "https://accounts.google.com/o/oauth2/v2/auth";
/// Google's token endpoint (code exchange and refresh).
pub const TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// The root of Google's REST APIs; Calendar lives under `/calendar/v3`.
pub const API_BASE: &str = "https://www.googleapis.com";
/// Google's revocation endpoint (POST only).
pub const REVOKE_URL: &str = "https://oauth2.googleapis.com/revoke";

/// Read-only sync needs `calendar.readonly` (calendar list, events, colours:
/// spec §1.6); `openid email` give the id_token with `sub` and `email`.
pub const SCOPES: [&str; 3] = [
    "https://www.googleapis.com/auth/calendar.readonly",
    "openid",
    "email",
];

/// Whether the grant lets calsync read calendars. With granular consent a
/// user can untick the calendar scope and still finish the flow (spec §1.2):
/// the callback should then refuse the connection and say why. A token
/// response without `scope` is taken as granting what was asked.
pub fn calendar_read_granted(tokens: &TokenSet) -> bool {
    const AUTH: &str = "https://www.googleapis.com/auth/";
    if tokens.scope.is_none() {
        return true;
    }
    let has = |names: &[&str]| {
        names
            .iter()
            .any(|name| tokens.has_scope(&format!("{AUTH}{name}")) == Some(true))
    };
    // Per-method scopes from the discovery document (spec §1.6).
    let can_list_calendars = has(&[
        "calendar",
        "calendar.readonly",
        "calendar.calendarlist",
        "calendar.calendarlist.readonly",
    ]);
    let can_list_events = has(&[
        "calendar",
        "calendar.readonly",
        "calendar.events",
        "calendar.events.readonly",
    ]);
    can_list_calendars && can_list_events
}

/// events.list page size: Google's maximum, so a calendar of N events takes
/// ceil(N / 2500) requests.
pub const EVENTS_PAGE_SIZE: u32 = 2500;
/// calendarList.list page size (Google's maximum).
const CALENDAR_PAGE_SIZE: u32 = 250;
/// A bound on pages of one calendar list, against a server that never stops.
const MAX_CALENDAR_PAGES: usize = 200;

/// Where the Google client talks to, and as whom.
#[derive(Debug, Clone)]
pub struct GoogleConfig {
    pub client_id: String,
    /// Google web clients have one; `None` sends none (PKCE alone).
    pub client_secret: Option<SecretString>,
    /// `{PUBLIC_URL}/api/calendar/google/callback/`, registered at Google.
    pub redirect_uri: String,
    pub auth_url: String,
    pub token_url: String,
    /// The root of Google's APIs, e.g. `https://www.googleapis.com`. A base
    /// that already ends in `/calendar/v3` (as the emulator reports it) is
    /// accepted too.
    pub api_base: String,
    pub revoke_url: String,
    /// The userinfo endpoint; `None` means `{api_base}/oauth2/v2/userinfo`.
    pub userinfo_url: Option<String>,
}

impl GoogleConfig {
    /// A configuration for Google's real endpoints.
    pub fn new(
        client_id: String,
        client_secret: Option<SecretString>,
        redirect_uri: String,
    ) -> Self {
        Self {
            client_id,
            client_secret,
            redirect_uri,
            auth_url: AUTH_URL.to_owned(),
            token_url: TOKEN_URL.to_owned(),
            api_base: API_BASE.to_owned(),
            revoke_url: REVOKE_URL.to_owned(),
            userinfo_url: None,
        }
    }
}

/// Who a Google account is: `sub` is the stable key of a connection (the
/// email can change), `email` is for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountIdentity {
    pub sub: String,
    pub email: Option<String>,
}

/// The Google client. Cheap to clone; one per process is enough (tokens are
/// passed per call, so it serves every connection).
#[derive(Debug, Clone)]
pub struct GoogleClient {
    http: HttpClient,
    oauth: OAuthClient,
    api_base: reqwest::Url,
    userinfo_url: String,
}

impl GoogleClient {
    /// A client with the default timeouts, size limit and retry policy.
    pub fn new(config: GoogleConfig) -> Result<Self, ProviderError> {
        Self::with_http(config, HttpClient::new(HttpConfig::default())?)
    }

    /// A client over a given HTTP client (tests use short backoffs).
    pub fn with_http(config: GoogleConfig, http: HttpClient) -> Result<Self, ProviderError> {
        let api_base = api_root(&config.api_base)?;
        let userinfo_url = match config.userinfo_url {
            Some(url) => url,
            None => format!(
                "{}/oauth2/v2/userinfo",
                api_base.as_str().trim_end_matches('/')
            ),
        };
        Ok(Self {
            http,
            oauth: OAuthClient {
                client_id: config.client_id,
                client_secret: config.client_secret,
                auth_url: config.auth_url,
                token_url: config.token_url,
                redirect_uri: config.redirect_uri,
                revoke_url: Some(config.revoke_url),
            },
            api_base,
            userinfo_url,
        })
    }

    /// The same client counting HTTP requests from zero, for a sync run's
    /// `requests` figure (see [`GoogleClient::requests_sent`]).
    pub fn with_fresh_count(&self) -> Self {
        Self {
            http: self.http.with_fresh_count(),
            ..self.clone()
        }
    }

    /// HTTP requests sent since this client's count started, retries included.
    pub fn requests_sent(&self) -> u64 {
        self.http.requests_sent()
    }

    /// The consent URL (spec §1.2): `access_type=offline` and `prompt=consent`
    /// so that Google issues a refresh token even when the account was
    /// connected before; `include_granted_scopes=true`; PKCE S256.
    pub fn authorization_url(
        &self,
        state: &str,
        pkce_challenge: &str,
        login_hint: Option<&str>,
    ) -> Result<String, ProviderError> {
        let mut extra = vec![
            ("access_type", "offline"),
            ("prompt", "consent"),
            ("include_granted_scopes", "true"),
        ];
        if let Some(hint) = login_hint {
            extra.push(("login_hint", hint));
        }
        self.oauth
            .authorization_url(&SCOPES, state, pkce_challenge, &extra)
    }

    /// Exchanges the callback's code. The result may lack a refresh token
    /// (consent not shown): the caller refuses such a connection.
    pub async fn exchange_code(
        &self,
        code: &str,
        verifier: &SecretString,
    ) -> Result<TokenSet, ProviderError> {
        self.oauth.exchange_code(&self.http, code, verifier).await
    }

    /// A new access token. Google normally sends no new refresh token; the
    /// one passed in is then kept in the result. `invalid_grant` comes back as
    /// [`ProviderError::InvalidGrant`]: the connection needs re-authorization.
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet, ProviderError> {
        self.oauth.refresh(&self.http, refresh_token).await
    }

    /// Revokes the grant (either token revokes both, spec §1.6). An already
    /// dead token counts as revoked.
    pub async fn revoke(&self, token: &SecretString) -> Result<(), ProviderError> {
        self.oauth.revoke(&self.http, token).await
    }

    /// The account behind a fresh token set: from the id_token's claims when
    /// there is one, else from the userinfo endpoint, which costs one more
    /// request. The id_token is read without a signature check, which is
    /// sound because it came straight from the token endpoint over TLS (OIDC
    /// Core §3.1.3.7 item 6), but its claims are checked: `iss` must be
    /// Google, `aud` this client, `exp` not past (with
    /// [`crate::oauth::ID_TOKEN_LEEWAY`]). One that fails is refused with
    /// reason `invalid_id_token`, never passed over for userinfo: it means the
    /// token endpoint is not answering for this client.
    pub async fn identity(&self, tokens: &TokenSet) -> Result<AccountIdentity, ProviderError> {
        if let Some(id_token) = &tokens.id_token {
            let claims = decode_id_token_claims(id_token)?;
            claims.validate(&IdTokenCheck {
                issuer: Issuer::Google,
                client_id: &self.oauth.client_id,
                now: jiff::Timestamp::now(),
            })?;
            if claims.email.is_some() {
                return Ok(AccountIdentity {
                    sub: claims.sub,
                    email: claims.email,
                });
            }
        }
        self.userinfo(&tokens.access_token).await
    }

    /// Asks the userinfo endpoint (OIDC `sub` or oauth2 v2 `id`) who the
    /// access token belongs to.
    pub async fn userinfo(
        &self,
        access_token: &SecretString,
    ) -> Result<AccountIdentity, ProviderError> {
        let url = reqwest::Url::parse(&self.userinfo_url)
            .map_err(|e| ProviderError::Setup(format!("Google userinfo URL: {e}")))?;
        let body = self.get(url, access_token, &[]).await?;
        let info: wire::UserInfo =
            serde_json::from_slice(&body).map_err(|e| ProviderError::decode("userinfo", &e))?;
        let sub = info
            .sub
            .or(info.id)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ProviderError::Decode("userinfo: no sub or id".to_owned()))?;
        Ok(AccountIdentity {
            sub,
            email: info.email,
        })
    }

    /// Every calendar in the user's calendar list (all pages; deleted entries
    /// left out). Hidden calendars are left out too, as Google's default.
    pub async fn list_calendars(
        &self,
        access_token: &SecretString,
    ) -> Result<Vec<RemoteCalendar>, ProviderError> {
        let url = self.api_url(&["calendar", "v3", "users", "me", "calendarList"])?;
        let page_size = CALENDAR_PAGE_SIZE.to_string();
        let mut calendars = Vec::new();
        let mut page_token: Option<String> = None;
        for _ in 0..MAX_CALENDAR_PAGES {
            let mut query = vec![("maxResults", page_size.as_str())];
            if let Some(token) = &page_token {
                query.push(("pageToken", token.as_str()));
            }
            let body = self.get(url.clone(), access_token, &query).await?;
            let page: wire::CalendarList = serde_json::from_slice(&body)
                .map_err(|e| ProviderError::decode("calendar list", &e))?;
            calendars.extend(page.items.into_iter().filter_map(mapping::calendar));
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) if page_token.as_deref() == Some(next.as_str()) => {
                    return Err(ProviderError::Decode(
                        "calendar list: the same page token twice".to_owned(),
                    ));
                }
                Some(next) => page_token = Some(next),
                None => return Ok(calendars),
            }
        }
        Err(ProviderError::Decode(format!(
            "calendar list: more than {MAX_CALENDAR_PAGES} pages"
        )))
    }

    /// One page of `events.list` for a calendar (spec §2.2, §2.3).
    ///
    /// Every request of a round uses the same parameters: `maxResults=2500`,
    /// `singleEvents=false` (masters + exceptions; calsync expands series
    /// itself), `showDeleted=true` (so that a full listing also returns the
    /// cancelled instances that hide occurrences of a series). Incremental
    /// rounds add `syncToken` and nothing that Google forbids with it (no
    /// timeMin/timeMax/orderBy/q/updatedMin/iCalUID/extended properties).
    ///
    /// A page may be short or empty and still have a next page. The last
    /// page's sync token arrives as [`PageNext::Done`]; Google answers 410 for
    /// a dead sync token, which comes back as
    /// [`ProviderError::SyncTokenExpired`] (start again with
    /// [`EventsCursor::Full`]). Items Google sends in a shape we cannot read
    /// are skipped and logged by id, so one bad event does not stop a calendar.
    pub async fn list_events_page(
        &self,
        access_token: &SecretString,
        calendar_id: &str,
        cursor: &EventsCursor,
    ) -> Result<ChangePage, ProviderError> {
        let url = self.api_url(&["calendar", "v3", "calendars", calendar_id, "events"])?;
        let (sync_token, page_token) = match cursor {
            EventsCursor::Full => (None, None),
            EventsCursor::Sync(token) => (Some(token.clone()), None),
            EventsCursor::Page(continuation) => match Continuation::decode(continuation)? {
                Continuation::Full { page_token } => (None, Some(page_token)),
                Continuation::Incremental {
                    sync_token,
                    page_token,
                } => (Some(sync_token), Some(page_token)),
            },
        };
        let page_size = EVENTS_PAGE_SIZE.to_string();
        let mut query = vec![
            ("maxResults", page_size.as_str()),
            ("singleEvents", "false"),
            ("showDeleted", "true"),
        ];
        if let Some(token) = &sync_token {
            query.push(("syncToken", token.as_str()));
        }
        if let Some(token) = &page_token {
            query.push(("pageToken", token.as_str()));
        }
        let body = self.get(url, access_token, &query).await?;
        let page: wire::Events =
            serde_json::from_slice(&body).map_err(|e| ProviderError::decode("events page", &e))?;

        let mut changes: Vec<EventChange> = Vec::with_capacity(page.items.len());
        let calendar_zone = page.time_zone.as_deref().filter(|z| !z.is_empty());
        for item in page.items {
            match mapping::event_item(item, calendar_zone) {
                Ok(change) => changes.push(change),
                Err(why) => {
                    tracing::warn!(problem = %why, "skipping an event Google sent in an unreadable shape")
                }
            }
        }
        let next = match (
            page.next_page_token.filter(|t| !t.is_empty()),
            page.next_sync_token.filter(|t| !t.is_empty()),
        ) {
            (Some(next_page), _) => {
                if page_token.as_deref() == Some(next_page.as_str()) {
                    return Err(ProviderError::Decode(
                        "events page: the same page token twice".to_owned(),
                    ));
                }
                let continuation = match sync_token {
                    None => Continuation::Full {
                        page_token: next_page,
                    },
                    Some(sync_token) => Continuation::Incremental {
                        sync_token,
                        page_token: next_page,
                    },
                };
                PageNext::Page(continuation.encode())
            }
            (None, Some(sync_token)) => PageNext::Done { sync_token },
            (None, None) => {
                return Err(ProviderError::Decode(
                    "events page: last page without nextSyncToken".to_owned(),
                ))
            }
        };
        Ok(ChangePage { changes, next })
    }

    /// `{api_base}/<segments>`, each segment percent-encoded (calendar ids
    /// contain `@` and `#`).
    fn api_url(&self, segments: &[&str]) -> Result<reqwest::Url, ProviderError> {
        let mut url = self.api_base.clone();
        url.path_segments_mut()
            .map_err(|()| ProviderError::Setup("Google API base URL".to_owned()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// A GET with the bearer token, retried per policy; an error answer is
    /// classified with the token and query values redacted from its message.
    async fn get(
        &self,
        url: reqwest::Url,
        access_token: &SecretString,
        query: &[(&str, &str)],
    ) -> Result<Vec<u8>, ProviderError> {
        let response = self
            .http
            .send(
                |client| {
                    client
                        .get(url.clone())
                        .bearer_auth(access_token.expose_secret())
                        .header(reqwest::header::ACCEPT, "application/json")
                        .query(query)
                },
                errors::is_retryable,
            )
            .await?;
        if response.is_success() {
            return Ok(response.body);
        }
        let mut secrets: Vec<&str> = query.iter().map(|(_, v)| *v).collect();
        secrets.push(access_token.expose_secret());
        Err(errors::classify(&response, &secrets))
    }
}

/// The API root: `api_base` without a trailing `/` or `/calendar/v3`.
fn api_root(api_base: &str) -> Result<reqwest::Url, ProviderError> {
    let trimmed = api_base.trim_end_matches('/');
    let root = trimmed.strip_suffix("/calendar/v3").unwrap_or(trimmed);
    let url = reqwest::Url::parse(root)
        .map_err(|e| ProviderError::Setup(format!("Google API base URL: {e}")))?;
    if url.cannot_be_a_base() || url.query().is_some() {
        return Err(ProviderError::Setup(
            "Google API base URL must be a plain http(s) URL".to_owned(),
        ));
    }
    Ok(url)
}

impl CalendarSource for GoogleClient {
    async fn list_calendars(
        &self,
        credential: &SecretString,
    ) -> Result<Vec<RemoteCalendar>, ProviderError> {
        GoogleClient::list_calendars(self, credential).await
    }

    async fn list_events_page(
        &self,
        credential: &SecretString,
        calendar_id: &str,
        cursor: &EventsCursor,
    ) -> Result<ChangePage, ProviderError> {
        GoogleClient::list_events_page(self, credential, calendar_id, cursor).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn client(api_base: &str) -> GoogleClient {
        let mut config = GoogleConfig::new("id".into(), None, "http://localhost/cb/".into());
        config.api_base = api_base.to_owned();
        GoogleClient::new(config).unwrap()
    }

    #[test]
    fn granted_scopes_are_checked() {
        let with = |scope: Option<&str>| TokenSet {
            access_token: SecretString::from("a"),
            refresh_token: None,
            expires_at: None,
            scope: scope.map(str::to_owned),
            id_token: None,
        };
        assert!(calendar_read_granted(&with(None)));
        assert!(calendar_read_granted(&with(Some(
            "openid https://www.googleapis.com/auth/calendar.readonly https://www.googleapis.com/auth/userinfo.email"
        ))));
        assert!(calendar_read_granted(&with(Some(
            "https://www.googleapis.com/auth/calendar.calendarlist.readonly https://www.googleapis.com/auth/calendar.events.readonly"
        ))));
        assert!(!calendar_read_granted(&with(Some(
            "openid https://www.googleapis.com/auth/userinfo.email"
        ))));
        assert!(!calendar_read_granted(&with(Some(
            "https://www.googleapis.com/auth/calendar.events.readonly"
        ))));
    }

    #[test]
    fn api_base_with_or_without_calendar_v3() {
        for base in [
            "https://www.googleapis.com",
            "https://www.googleapis.com/",
            "https://www.googleapis.com/calendar/v3",
            "https://www.googleapis.com/calendar/v3/",
        ] {
            let c = client(base);
            assert_eq!(
                c.api_url(&["calendar", "v3", "calendars", "a#b@c", "events"])
                    .unwrap()
                    .as_str(),
                "https://www.googleapis.com/calendar/v3/calendars/a%23b@c/events",
                "{base}"
            );
            assert_eq!(
                c.userinfo_url,
                "https://www.googleapis.com/oauth2/v2/userinfo"
            );
        }
        let mounted = client("http://127.0.0.1:9/google/calendar/v3");
        assert_eq!(
            mounted
                .api_url(&["calendar", "v3", "users", "me", "calendarList"])
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9/google/calendar/v3/users/me/calendarList"
        );
        let mut bad = GoogleConfig::new("id".into(), None, "http://localhost/cb/".into());
        bad.api_base = "not a url".into();
        assert!(matches!(
            GoogleClient::new(bad),
            Err(ProviderError::Setup(_))
        ));
    }
}
