//! Microsoft: identity platform v2 OAuth 2.0 (authorization code + PKCE,
//! rotating refresh tokens) and the read side of Microsoft Graph calendars
//! (`/me`, `/me/calendars`, `calendarView/delta`), per
//! `shared/specs/microsoft-graph.md` §A1–§A4, §A6, §A8.
//!
//! Never touches the database and never decides what to store: it fetches
//! and translates Graph's JSON into `calsync-core` types. Every base URL
//! comes from [`MicrosoftConfig`], so tests and `calsync demo` point it at
//! the emulator.
//!
//! Submodules: `wire` (serde types of Graph's JSON), `mapping` (JSON -> core
//! types), `errors` (Graph's envelope and AAD's token errors ->
//! [`ProviderError`], what to retry), `cursor` (page continuations and sync
//! tokens that carry the round's Graph link and window).
//!
//! # Delta rounds and the window
//!
//! Graph's delta over `calendarView` is bound to a window fixed when the
//! round starts (spec §A3). [`MicrosoftClient::list_events_page`] therefore
//! takes the caller's window:
//!
//! - [`EventsCursor::Full`] starts a round over `window`;
//! - [`EventsCursor::Page`] continues the round in progress over the window
//!   it started with (the caller's `window` is not used);
//! - [`EventsCursor::Sync`] starts an incremental round from the stored
//!   deltaLink, over the token's window; when the caller's window start has
//!   moved more than 7 days past the token's, the call fails with
//!   [`ProviderError::SyncTokenExpired`] without a request, and the caller's
//!   full round (mark-and-sweep) re-anchors the window.
//!
//! A cursor this client cannot read or whose link is not on the configured
//! API origin (the configuration changed) also answers `SyncTokenExpired`:
//! a full round is the way out, and the server already takes it.
//!
//! ```no_run
//! # use calsync_core::changes::PageNext;
//! # use calsync_providers::{microsoft::MicrosoftClient, EventsCursor, ProviderError};
//! # use jiff::{Timestamp, ToSpan};
//! # use secrecy::SecretString;
//! # async fn run(ms: &MicrosoftClient, token: SecretString, calendar: &str, stored: Option<String>)
//! #     -> Result<(), Box<dyn std::error::Error>> {
//! let now = Timestamp::now();
//! let window = (now.checked_sub(24 * 60.hours())?, now.checked_add(24 * 400.hours())?);
//! let mut cursor = match stored {
//!     Some(sync_token) => EventsCursor::Sync(sync_token),
//!     None => EventsCursor::Full,
//! };
//! loop {
//!     let page = match ms.list_events_page(&token, calendar, &cursor, window).await {
//!         Ok(page) => page,
//!         // Dead or too old: list the window again, sweep what was not seen.
//!         Err(ProviderError::SyncTokenExpired) => {
//!             cursor = EventsCursor::Full;
//!             continue;
//!         }
//!         Err(other) => return Err(other.into()),
//!     };
//!     // store.apply(page.changes, ...) in one transaction with the cursor
//!     match page.next {
//!         PageNext::Page(next) => cursor = EventsCursor::Page(next),
//!         PageNext::Done { sync_token: _ } => break, // stored with this page
//!     }
//! }
//! # Ok(()) }
//! ```

mod cursor;
mod errors;
mod mapping;
mod wire;

use std::collections::HashMap;

use calsync_core::changes::{ChangePage, EventChange, PageNext};
use calsync_core::model::RemoteCalendar;
use jiff::Timestamp;
use secrecy::{ExposeSecret as _, SecretString};

use crate::error::ProviderError;
use crate::http::{HttpClient, HttpConfig};
use crate::oauth::{OAuthClient, TokenSet};
use crate::EventsCursor;

use cursor::{LinkKind, RoundLink};
pub use mapping::preset_color;

/// The identity platform's authorization endpoint, tenant `common` (work,
/// school and personal accounts: the right one for a multi-tenant
/// self-hosted app, spec §A1).
pub const AUTH_URL: &str = "https://login.microsoftonline.com/common/oauth2/v2.0/authorize";
/// The token endpoint (code exchange and refresh), tenant `common`.
pub const TOKEN_URL: &str = "https://login.microsoftonline.com/common/oauth2/v2.0/token";
/// Microsoft Graph v1.0.
pub const API_BASE: &str = "https://graph.microsoft.com/v1.0";

/// Read-only sync (spec §A1): `offline_access` for a refresh token,
/// `User.Read` for `/me`, `Calendars.Read` for calendars and events.
pub const SCOPES: [&str; 3] = ["offline_access", "User.Read", "Calendars.Read"];

/// Whether the grant lets calsync read calendars: `Calendars.Read` or
/// `Calendars.ReadWrite` (bare, or as the full
/// `https://graph.microsoft.com/...` name; scope names are
/// case-insensitive). An admin's consent policy can leave a scope out, and
/// the callback should then refuse the connection and say why. A token
/// response without `scope` is taken as granting what was asked.
pub fn calendar_read_granted(tokens: &TokenSet) -> bool {
    let Some(granted) = tokens.scope.as_deref() else {
        return true;
    };
    granted.split_ascii_whitespace().any(|scope| {
        let name = scope.rsplit_once('/').map_or(scope, |(resource, name)| {
            if resource.eq_ignore_ascii_case("https://graph.microsoft.com") {
                name
            } else {
                ""
            }
        });
        name.eq_ignore_ascii_case("Calendars.Read")
            || name.eq_ignore_ascii_case("Calendars.ReadWrite")
    })
}

/// `Prefer: odata.maxpagesize` of delta requests (the only way to size
/// delta pages, spec §A3; 100 as in the spec's sync loop, §A8).
pub const EVENTS_PAGE_SIZE: u32 = 100;
/// A bound on pages of one calendar listing, against a server that never
/// stops.
const MAX_CALENDAR_PAGES: usize = 200;

/// Where the Microsoft client talks to, and as whom.
#[derive(Debug, Clone)]
pub struct MicrosoftConfig {
    pub client_id: String,
    /// calsync registers as a confidential web app, which has a secret.
    pub client_secret: SecretString,
    /// `{PUBLIC_URL}/api/calendar/microsoft/callback/`, registered in Entra.
    pub redirect_uri: String,
    pub auth_url: String,
    pub token_url: String,
    /// The Graph root including its version, e.g.
    /// `https://graph.microsoft.com/v1.0`. Links Graph hands back are only
    /// followed on this origin.
    pub api_base: String,
}

impl MicrosoftConfig {
    /// A configuration for Microsoft's real endpoints (tenant `common`).
    pub fn new(client_id: String, client_secret: SecretString, redirect_uri: String) -> Self {
        Self {
            client_id,
            client_secret,
            redirect_uri,
            auth_url: AUTH_URL.to_owned(),
            token_url: TOKEN_URL.to_owned(),
            api_base: API_BASE.to_owned(),
        }
    }
}

/// Who a Microsoft account is: `id` (Graph's user id) is the stable key of a
/// connection; `email` is `mail`, else `userPrincipalName`, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicrosoftIdentity {
    pub id: String,
    pub email: Option<String>,
}

/// The Microsoft client. Cheap to clone; one per process is enough (tokens
/// are passed per call, so it serves every connection).
#[derive(Debug, Clone)]
pub struct MicrosoftClient {
    http: HttpClient,
    oauth: OAuthClient,
    api_base: reqwest::Url,
}

impl MicrosoftClient {
    /// A client with the default timeouts, size limit and retry policy.
    pub fn new(config: MicrosoftConfig) -> Result<Self, ProviderError> {
        Self::with_http(config, HttpClient::new(HttpConfig::default())?)
    }

    /// A client over a given HTTP client (tests use short backoffs).
    pub fn with_http(config: MicrosoftConfig, http: HttpClient) -> Result<Self, ProviderError> {
        let api_base = api_root(&config.api_base)?;
        Ok(Self {
            http,
            oauth: OAuthClient {
                client_id: config.client_id,
                client_secret: Some(config.client_secret),
                auth_url: config.auth_url,
                token_url: config.token_url,
                redirect_uri: config.redirect_uri,
                // No per-grant revocation endpoint exists (only
                // `revokeSignInSessions`, which signs the user out everywhere).
                revoke_url: None,
            },
            api_base,
        })
    }

    /// The same client counting HTTP requests from zero, for a sync run's
    /// `requests` figure.
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

    /// The consent URL (spec §A1): [`SCOPES`], `response_type=code`,
    /// `response_mode=query`, PKCE S256, and `prompt=select_account` so that
    /// someone signed in to several Microsoft accounts picks the one to
    /// connect instead of silently getting the current one.
    pub fn authorization_url(
        &self,
        state: &str,
        pkce_challenge: &str,
    ) -> Result<String, ProviderError> {
        self.oauth.authorization_url(
            &SCOPES,
            state,
            pkce_challenge,
            &[("response_mode", "query"), ("prompt", "select_account")],
        )
    }

    /// Exchanges the callback's code. Sign-in-again answers (`invalid_grant`,
    /// a redeemed or expired code, AADSTS54005/70008...) are
    /// [`ProviderError::InvalidGrant`].
    pub async fn exchange_code(
        &self,
        code: &str,
        verifier: &SecretString,
    ) -> Result<TokenSet, ProviderError> {
        self.oauth
            .exchange_code(&self.http, code, verifier)
            .await
            .map_err(errors::token_error)
    }

    /// A new access token. Microsoft rotates refresh tokens: the result's
    /// `refresh_token` is the NEW one and the caller must store it (the old
    /// one is kept in the result only if none came back). `invalid_grant`
    /// (AADSTS700082 after 90 idle days, AADSTS50173 revoked, ...) and
    /// `interaction_required` are [`ProviderError::InvalidGrant`]: the
    /// connection needs re-authorization.
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet, ProviderError> {
        let scope = SCOPES.join(" ");
        self.oauth
            .refresh_with(&self.http, refresh_token, &[("scope", scope.as_str())])
            .await
            .map_err(errors::token_error)
    }

    /// The account behind an access token, from `GET /me`.
    pub async fn identity(
        &self,
        access_token: &SecretString,
    ) -> Result<MicrosoftIdentity, ProviderError> {
        let url = self.api_url(&["me"])?;
        let body = self.get(url, access_token, errors::Request::Other).await?;
        let me: wire::Me =
            serde_json::from_slice(&body).map_err(|e| ProviderError::decode("/me", &e))?;
        if me.id.is_empty() {
            return Err(ProviderError::Decode("/me: empty id".to_owned()));
        }
        let email = me
            .mail
            .filter(|m| !m.trim().is_empty())
            .or(me.user_principal_name.filter(|u| !u.trim().is_empty()));
        Ok(MicrosoftIdentity { id: me.id, email })
    }

    /// Every calendar of the account (`GET /me/calendars`, following
    /// `@odata.nextLink` on the API origin only).
    pub async fn list_calendars(
        &self,
        access_token: &SecretString,
    ) -> Result<Vec<RemoteCalendar>, ProviderError> {
        let mut url = self.api_url(&["me", "calendars"])?;
        let mut calendars = Vec::new();
        for _ in 0..MAX_CALENDAR_PAGES {
            let body = self
                .get(url.clone(), access_token, errors::Request::Other)
                .await?;
            let page: wire::CalendarPage = serde_json::from_slice(&body)
                .map_err(|e| ProviderError::decode("calendar list", &e))?;
            calendars.extend(page.value.into_iter().map(mapping::calendar));
            match page.next_link.filter(|l| !l.is_empty()) {
                Some(next) => {
                    let next = self.checked_link(&next).ok_or_else(|| {
                        ProviderError::Decode(
                            "calendar list: @odata.nextLink is not on the configured API origin"
                                .to_owned(),
                        )
                    })?;
                    if next == url {
                        return Err(ProviderError::Decode(
                            "calendar list: the same nextLink twice".to_owned(),
                        ));
                    }
                    url = next;
                }
                None => return Ok(calendars),
            }
        }
        Err(ProviderError::Decode(format!(
            "calendar list: more than {MAX_CALENDAR_PAGES} pages"
        )))
    }

    /// One page of a calendar's events: `calendarView/delta` (spec §A3) with
    /// `Prefer: odata.maxpagesize=`[`EVENTS_PAGE_SIZE`] and
    /// `Prefer: outlook.timezone="UTC"`. See the module docs for what each
    /// cursor does with `window` (`[start, end)`, start before end).
    ///
    /// A page may be empty and still have a next page. The last page of a
    /// round gives [`PageNext::Done`] with a sync token holding the
    /// deltaLink. A dead token (410, `SyncStateNotFound`, ...) is
    /// [`ProviderError::SyncTokenExpired`]. An item repeated within a page
    /// appears once, as its last copy; repeated across pages, the later page
    /// wins when applied in order. Items in a shape we cannot read are
    /// skipped and logged by id.
    pub async fn list_events_page(
        &self,
        access_token: &SecretString,
        calendar_id: &str,
        cursor: &EventsCursor,
        window: (Timestamp, Timestamp),
    ) -> Result<ChangePage, ProviderError> {
        let (url, window_start, window_end) = match cursor {
            EventsCursor::Full => {
                if window.0 >= window.1 {
                    return Err(ProviderError::Setup(
                        "events window: the start must be before the end".to_owned(),
                    ));
                }
                // Whole seconds in UTC: what Graph documents (ISO 8601) and
                // what the cursor keeps.
                let start = whole_second(window.0)?;
                let end = whole_second(window.1)?;
                let mut url =
                    self.api_url(&["me", "calendars", calendar_id, "calendarView", "delta"])?;
                url.query_pairs_mut()
                    .append_pair("startDateTime", &start.to_string())
                    .append_pair("endDateTime", &end.to_string());
                (url, start, end)
            }
            EventsCursor::Page(text) => {
                let (url, link) = self.stored_link(LinkKind::Next, text)?;
                (url, link.window_start, link.window_end)
            }
            EventsCursor::Sync(text) => {
                let (url, link) = self.stored_link(LinkKind::Delta, text)?;
                if link.needs_reanchor(window.0) {
                    tracing::info!(
                        "the sync token's window is more than 7 days behind; a full round re-anchors it"
                    );
                    return Err(ProviderError::SyncTokenExpired);
                }
                (url, link.window_start, link.window_end)
            }
        };
        let body = self
            .get(url.clone(), access_token, errors::Request::Delta)
            .await?;
        let page: wire::DeltaPage =
            serde_json::from_slice(&body).map_err(|e| ProviderError::decode("delta page", &e))?;
        let changes = page_changes(page.value);
        let outside = |which: &str| {
            ProviderError::Decode(format!(
                "delta page: {which} is not on the configured API origin"
            ))
        };
        let link = |url: reqwest::Url| RoundLink {
            url: url.into(),
            window_start,
            window_end,
        };
        let next = match (
            page.next_link.filter(|l| !l.is_empty()),
            page.delta_link.filter(|l| !l.is_empty()),
        ) {
            (Some(next), _) => {
                let next = self
                    .checked_link(&next)
                    .ok_or_else(|| outside("@odata.nextLink"))?;
                if next == url {
                    return Err(ProviderError::Decode(
                        "delta page: the same nextLink twice".to_owned(),
                    ));
                }
                PageNext::Page(link(next).encode(LinkKind::Next))
            }
            (None, Some(delta)) => {
                let delta = self
                    .checked_link(&delta)
                    .ok_or_else(|| outside("@odata.deltaLink"))?;
                PageNext::Done {
                    sync_token: link(delta).encode(LinkKind::Delta),
                }
            }
            (None, None) => {
                return Err(ProviderError::Decode(
                    "delta page: neither @odata.nextLink nor @odata.deltaLink".to_owned(),
                ))
            }
        };
        Ok(ChangePage { changes, next })
    }

    /// A stored cursor's link, checked. One this client cannot read, or whose
    /// link left the configured origin, cannot be continued: the round starts
    /// over ([`ProviderError::SyncTokenExpired`]).
    fn stored_link(
        &self,
        kind: LinkKind,
        text: &str,
    ) -> Result<(reqwest::Url, RoundLink), ProviderError> {
        let link = RoundLink::decode(kind, text).map_err(|why| {
            tracing::warn!(problem = %why, "unreadable Microsoft cursor; starting a full round");
            ProviderError::SyncTokenExpired
        })?;
        let url = self.checked_link(&link.url).ok_or_else(|| {
            tracing::warn!(
                "a stored Microsoft cursor points outside the configured API origin; starting a full round"
            );
            ProviderError::SyncTokenExpired
        })?;
        Ok((url, link))
    }

    /// A link Graph handed back, if it is an http(s) URL on the configured
    /// API origin (scheme, host, port). Following anything else would send
    /// the bearer token to whoever wrote the link.
    fn checked_link(&self, link: &str) -> Option<reqwest::Url> {
        let url = reqwest::Url::parse(link).ok()?;
        let same_origin = matches!(url.scheme(), "http" | "https")
            && url.origin() == self.api_base.origin()
            && url.username().is_empty()
            && url.password().is_none();
        same_origin.then_some(url)
    }

    /// `{api_base}/<segments>`, each segment percent-encoded (Graph ids may
    /// hold `/`, `+` and `=`).
    fn api_url(&self, segments: &[&str]) -> Result<reqwest::Url, ProviderError> {
        let mut url = self.api_base.clone();
        url.path_segments_mut()
            .map_err(|()| ProviderError::Setup("Microsoft Graph base URL".to_owned()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// A GET with the bearer token, retried per policy; delta requests add
    /// their `Prefer` headers (page size, UTC times). An error answer is
    /// classified with the token and the URL's query values (skip and delta
    /// tokens) redacted from its message.
    async fn get(
        &self,
        url: reqwest::Url,
        access_token: &SecretString,
        request: errors::Request,
    ) -> Result<Vec<u8>, ProviderError> {
        let delta_prefs = request == errors::Request::Delta;
        let page_size = format!("odata.maxpagesize={EVENTS_PAGE_SIZE}");
        let response = self
            .http
            .send(
                |client| {
                    let builder = client
                        .get(url.clone())
                        .bearer_auth(access_token.expose_secret())
                        .header(reqwest::header::ACCEPT, "application/json");
                    if delta_prefs {
                        builder
                            .header("Prefer", page_size.as_str())
                            .header("Prefer", "outlook.timezone=\"UTC\"")
                    } else {
                        builder
                    }
                },
                errors::is_retryable,
            )
            .await?;
        if response.is_success() {
            return Ok(response.body);
        }
        let query: Vec<String> = url.query_pairs().map(|(_, v)| v.into_owned()).collect();
        let mut secrets: Vec<&str> = query.iter().map(String::as_str).collect();
        secrets.push(access_token.expose_secret());
        Err(errors::classify(&response, &secrets, request))
    }
}

/// A page's items as changes: series masters left out, unreadable items
/// skipped (logged by id), and an id that appears twice kept once, as its
/// last copy (Graph may replay an item within a page, spec §A3).
fn page_changes(items: Vec<serde_json::Value>) -> Vec<EventChange> {
    let mut changes: Vec<EventChange> = Vec::with_capacity(items.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for item in items {
        let change = match mapping::event_item(item) {
            Ok(Some(change)) => change,
            Ok(None) => continue,
            Err(why) => {
                tracing::warn!(problem = %why, "skipping an event Graph sent in an unreadable shape");
                continue;
            }
        };
        let id = match &change {
            EventChange::Upsert(event) => event.external_id.clone(),
            EventChange::Removed { external_id } => external_id.clone(),
            // Graph's unit of change is one instance; never produced here.
            EventChange::Replace { .. } => {
                changes.push(change);
                continue;
            }
        };
        match seen.get(&id) {
            Some(&at) => changes[at] = change,
            None => {
                seen.insert(id, changes.len());
                changes.push(change);
            }
        }
    }
    changes
}

/// `t` truncated to whole seconds.
fn whole_second(t: Timestamp) -> Result<Timestamp, ProviderError> {
    Timestamp::from_second(t.as_second())
        .map_err(|_| ProviderError::Setup("events window is out of range".to_owned()))
}

/// The API root: `api_base` without a trailing `/`.
fn api_root(api_base: &str) -> Result<reqwest::Url, ProviderError> {
    let url = reqwest::Url::parse(api_base.trim_end_matches('/'))
        .map_err(|e| ProviderError::Setup(format!("Microsoft Graph base URL: {e}")))?;
    if url.cannot_be_a_base() || url.query().is_some() || !matches!(url.scheme(), "http" | "https")
    {
        return Err(ProviderError::Setup(
            "Microsoft Graph base URL must be a plain http(s) URL".to_owned(),
        ));
    }
    Ok(url)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn client(api_base: &str) -> MicrosoftClient {
        let mut config = MicrosoftConfig::new(
            "cid".into(),
            SecretString::from("client-secret-value"),
            "http://localhost:8000/api/calendar/microsoft/callback/".into(),
        );
        config.api_base = api_base.to_owned();
        MicrosoftClient::new(config).unwrap()
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
            "User.Read Calendars.Read"
        ))));
        assert!(calendar_read_granted(&with(Some("calendars.readwrite"))));
        assert!(calendar_read_granted(&with(Some(
            "openid https://graph.microsoft.com/Calendars.Read https://graph.microsoft.com/User.Read"
        ))));
        assert!(!calendar_read_granted(&with(Some(
            "User.Read offline_access"
        ))));
        assert!(!calendar_read_granted(&with(Some(
            "Calendars.ReadBasic User.Read"
        ))));
        assert!(!calendar_read_granted(&with(Some(
            "https://evil.example/Calendars.Read"
        ))));
    }

    #[test]
    fn api_urls_and_links_stay_on_the_origin() {
        for base in [
            "https://graph.microsoft.com/v1.0",
            "https://graph.microsoft.com/v1.0/",
        ] {
            let c = client(base);
            assert_eq!(
                c.api_url(&["me", "calendars", "AAMk/a+b=", "calendarView", "delta"])
                    .unwrap()
                    .as_str(),
                "https://graph.microsoft.com/v1.0/me/calendars/AAMk%2Fa+b=/calendarView/delta"
            );
        }
        let c = client(API_BASE);
        assert!(c
            .checked_link("https://graph.microsoft.com/v1.0/me/calendarView/delta?$deltatoken=x")
            .is_some());
        for foreign in [
            "https://evil.example/v1.0/me/calendarView/delta?$deltatoken=x",
            "http://graph.microsoft.com/v1.0/me",
            "https://graph.microsoft.com:8443/v1.0/me",
            "https://user:pw@graph.microsoft.com/v1.0/me",
            "https://graph.microsoft.com.evil.example/v1.0/me",
            "/v1.0/me",
            "file:///etc/passwd",
        ] {
            assert!(c.checked_link(foreign).is_none(), "{foreign}");
        }
        for bad in [
            "not a url",
            "mailto:a@b",
            "https://graph.microsoft.com/v1.0?x=1",
        ] {
            let mut config = MicrosoftConfig::new(
                "cid".into(),
                SecretString::from("s"),
                "http://localhost/cb/".into(),
            );
            config.api_base = bad.into();
            assert!(
                matches!(MicrosoftClient::new(config), Err(ProviderError::Setup(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn duplicates_in_a_page_collapse_to_the_last_copy() {
        let item = |subject: &str| {
            json!({"id": "A", "subject": subject, "type": "singleInstance",
                "start": {"dateTime": "2026-03-10T09:00:00.0000000", "timeZone": "UTC"},
                "end": {"dateTime": "2026-03-10T10:00:00.0000000", "timeZone": "UTC"}})
        };
        let changes = page_changes(vec![
            item("first"),
            json!({"id": "B", "@removed": {"reason": "deleted"}}),
            item("second"),
            json!({"id": "M", "type": "seriesMaster",
                "start": {"dateTime": "2026-03-10T09:00:00", "timeZone": "UTC"}}),
            json!({"no": "id"}),
        ]);
        assert_eq!(changes.len(), 2);
        assert!(matches!(&changes[0], EventChange::Upsert(e) if e.title == "second"));
        assert_eq!(
            changes[1],
            EventChange::Removed {
                external_id: "B".into()
            }
        );
    }

    #[tokio::test]
    async fn too_old_or_foreign_sync_tokens_need_a_full_round_without_a_request() {
        // Nothing listens on port 9: any request would fail as Network.
        let c = client("http://127.0.0.1:9/v1.0");
        let anchor: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let end: Timestamp = "2027-01-01T00:00:00Z".parse().unwrap();
        let token = RoundLink {
            url: "http://127.0.0.1:9/v1.0/me/calendarView/delta?$deltatoken=abc".into(),
            window_start: anchor,
            window_end: end,
        }
        .encode(LinkKind::Delta);
        let later: Timestamp = "2026-01-09T00:00:00Z".parse().unwrap();
        let token_secret = SecretString::from("access");
        let err = c
            .list_events_page(
                &token_secret,
                "cal",
                &EventsCursor::Sync(token),
                (later, end),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::SyncTokenExpired), "{err:?}");

        let foreign = RoundLink {
            url: "https://evil.example/v1.0/me/calendarView/delta?$deltatoken=abc".into(),
            window_start: anchor,
            window_end: end,
        };
        for cursor in [
            EventsCursor::Sync(foreign.encode(LinkKind::Delta)),
            EventsCursor::Page(foreign.encode(LinkKind::Next)),
            EventsCursor::Sync("garbage".into()),
            EventsCursor::Page("garbage".into()),
        ] {
            let err = c
                .list_events_page(&token_secret, "cal", &cursor, (anchor, end))
                .await
                .unwrap_err();
            assert!(matches!(err, ProviderError::SyncTokenExpired), "{err:?}");
        }
        assert_eq!(c.requests_sent(), 0);

        let err = c
            .list_events_page(&token_secret, "cal", &EventsCursor::Full, (end, anchor))
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::Setup(_)));
    }
}
