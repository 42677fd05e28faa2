//! Shared outbound HTTP for every provider: one `reqwest` client with connect
//! and overall timeouts, a cap on response size, and retries with truncated
//! exponential backoff plus jitter that honour `Retry-After`.
//!
//! A provider's word on time is bounded: [`parse_retry_after`] never answers
//! more than [`MAX_PROVIDER_WAIT`] (24 h) and reads anything malformed as no
//! answer at all, so every `Retry-After` the crate hands on (in
//! [`RawResponse`] and [`ProviderError::RateLimited`]) is at most a day.
//!
//! Never touches the database, and never logs a URL query, a header or a body:
//! sync tokens and page tokens travel in queries, access tokens in headers,
//! codes and refresh tokens in bodies. Log lines name the host, the status and
//! the attempt, nothing more. Which answers are worth retrying is the
//! provider's call (Google's 403 `rateLimitExceeded` is, a 403 `forbidden` is
//! not), so [`HttpClient::send`] takes a predicate.
//!
//! The address guard ([`HttpConfig::restrict_addresses`], for URLs a user
//! typed): [`check_url`] refuses non-public IP literals and internal names
//! before a request (reqwest connects to an IP literal without asking the
//! resolver), and a resolver that drops every non-public address of a DNS
//! answer covers every connection the client opens, so a name that resolves
//! to 127.0.0.1 (or is rebound to it later) is refused too. Redirects are
//! never followed by the client; callers that follow them check each hop
//! with [`check_url`] / [`HttpClient::guard_url`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::error::ProviderError;

/// The longest wait a provider can ask of us (`Retry-After`), and the
/// longest token lifetime we believe (OAuth `expires_in`): one day. A
/// provider's word never parks a connection for longer than a day (a
/// misconfigured server or a hostile feed answering `Retry-After:
/// 1000000000000` would otherwise stall it for ages), and adding this to
/// any timestamp a caller holds stays far from jiff's or `SystemTime`'s
/// overflow.
pub const MAX_PROVIDER_WAIT: Duration = Duration::from_secs(24 * 3600);

/// The longest `Retry-After` value we read. An HTTP-date is 29 characters;
/// anything much longer is not a `Retry-After` any server means.
const MAX_RETRY_AFTER_LEN: usize = 64;

/// How often and how patiently to retry.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = never retry).
    pub max_retries: u32,
    /// The first backoff; doubled on every retry. It also bounds the jitter
    /// (random extra wait in `[0, min(base_delay, 1 s))`) so that tests with a
    /// tiny base stay fast.
    pub base_delay: Duration,
    /// The longest backoff between two attempts (Google: 32–64 s).
    pub max_delay: Duration,
    /// The longest `Retry-After` we wait out in place; a longer one ends the
    /// retries at once so the scheduler can come back later instead of holding
    /// a sync open for minutes.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // Google's recipe: min(2^n s + random(0-1000 ms), 32-64 s), spec §3.3.
        Self {
            max_retries: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(64),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// The wait before retry number `retry` (0-based): `min(base * 2^retry, max)`
    /// plus jitter, never more than `max_delay`.
    pub fn backoff(&self, retry: u32, jitter_unit: f64) -> Duration {
        let exp = self
            .base_delay
            .checked_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX))
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        let jitter_span = self.base_delay.min(Duration::from_secs(1));
        let jitter = jitter_span.mul_f64(jitter_unit.clamp(0.0, 1.0));
        (exp + jitter).min(self.max_delay)
    }
}

/// Limits and timeouts of the shared client.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Time allowed to open a connection (TCP + TLS).
    pub connect_timeout: Duration,
    /// Time allowed for one whole request, body included.
    pub timeout: Duration,
    /// The largest response body we read; larger ones fail with
    /// [`ProviderError::TooLarge`]. A Google page of 2,500 events is a few MB.
    pub max_body_bytes: usize,
    pub retry: RetryPolicy,
    pub user_agent: String,
    /// Refuse connections to loopback, private, link-local and metadata
    /// addresses, checked on the resolved address of every connection
    /// (redirects included): for URLs a user typed (CalDAV, ICS), so that
    /// they cannot make the server probe its own network.
    pub restrict_addresses: bool,
    /// Names pinned to addresses, like curl's `--resolve`: they are not
    /// looked up, and their pinned addresses skip the guard's check of
    /// resolved addresses (the operator chose them). The URL check of
    /// [`check_url`] still applies. For tests and split-horizon setups.
    pub resolve_overrides: Vec<(String, SocketAddr)>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            max_body_bytes: 32 * 1024 * 1024,
            retry: RetryPolicy::default(),
            user_agent: concat!("calsync/", env!("CARGO_PKG_VERSION")).to_owned(),
            restrict_addresses: false,
            resolve_overrides: Vec::new(),
        }
    }
}

/// A response read in full: status, the parsed `Retry-After`, the body.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The shared HTTP client. Cheap to clone (the connection pool is shared).
/// Clones share a count of the requests sent, attempts and retries included;
/// [`HttpClient::with_fresh_count`] starts a new count (e.g. per sync run).
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    config: HttpConfig,
    sent: Arc<AtomicU64>,
}

impl HttpClient {
    /// Builds the client. Redirects are not followed: the OAuth and calendar
    /// APIs never redirect, and following one could carry a bearer token to
    /// another host.
    ///
    /// With `restrict_addresses`, every DNS answer goes through
    /// [`PublicOnlyResolver`], and no proxy from the environment is used: a
    /// proxy would resolve and connect on our behalf, out of the guard's
    /// sight.
    pub fn new(config: HttpConfig) -> Result<Self, ProviderError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .user_agent(config.user_agent.clone())
            .redirect(reqwest::redirect::Policy::none());
        if config.restrict_addresses {
            builder = builder
                .dns_resolver(Arc::new(PublicOnlyResolver::default()))
                .no_proxy();
        }
        for (name, addr) in &config.resolve_overrides {
            builder = builder.resolve(name, *addr);
        }
        let client = builder
            .build()
            .map_err(|e| ProviderError::Setup(format!("HTTP client: {}", e.without_url())))?;
        Ok(Self {
            client,
            config,
            sent: Arc::default(),
        })
    }

    /// The same client (same pool, same policy) counting requests from zero.
    pub fn with_fresh_count(&self) -> Self {
        Self {
            sent: Arc::default(),
            ..self.clone()
        }
    }

    /// Requests sent through this client and its clones since its count
    /// started (every attempt counts, retries included).
    pub fn requests_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// The same client (same pool) with another retry policy.
    pub fn with_retry(&self, retry: RetryPolicy) -> Self {
        Self {
            client: self.client.clone(),
            config: HttpConfig {
                retry,
                ..self.config.clone()
            },
            sent: self.sent.clone(),
        }
    }

    /// The underlying `reqwest` client, to build requests with.
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// [`check_url`] when this client restricts addresses, else nothing:
    /// for callers that follow redirects themselves, before each hop.
    pub fn guard_url(&self, url: &reqwest::Url) -> Result<(), ProviderError> {
        check_host_syntax(url)?;
        if self.config.restrict_addresses {
            check_url(url)?;
        }
        Ok(())
    }

    /// Sends the request that `make` builds (again on every attempt), reads the
    /// whole body within the size limit, and retries network failures and the
    /// answers `retryable` accepts, waiting per the [`RetryPolicy`] or the
    /// answer's `Retry-After`. After the last attempt the last answer is
    /// returned as it is (even an error status): the caller classifies it.
    ///
    /// Only for requests that are safe to repeat (reads, token refreshes).
    pub async fn send(
        &self,
        make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
        retryable: impl Fn(&RawResponse) -> bool,
    ) -> Result<RawResponse, ProviderError> {
        let policy = &self.config.retry;
        let mut retry = 0u32;
        loop {
            let request = make(&self.client)
                .build()
                .map_err(|e| ProviderError::Setup(format!("request: {}", e.without_url())))?;
            self.guard_url(request.url())?;
            let host = request.url().host_str().unwrap_or("?").to_owned();
            let wait = match self.send_once(request).await {
                Ok(response) => {
                    if retry >= policy.max_retries || !retryable(&response) {
                        return Ok(response);
                    }
                    let wait = match response.retry_after {
                        Some(after) if after > policy.max_retry_after => return Ok(response),
                        Some(after) => after,
                        None => policy.backoff(retry, jitter_unit()),
                    };
                    tracing::warn!(
                        host = %host,
                        status = response.status,
                        retry = retry + 1,
                        wait_ms = wait.as_millis() as u64,
                        "provider answered with a retryable error; retrying"
                    );
                    wait
                }
                Err(RequestFailure::Retryable(err)) if retry < policy.max_retries => {
                    let wait = policy.backoff(retry, jitter_unit());
                    tracing::warn!(
                        host = %host,
                        error = %err,
                        retry = retry + 1,
                        wait_ms = wait.as_millis() as u64,
                        "provider request failed; retrying"
                    );
                    wait
                }
                Err(RequestFailure::Retryable(err) | RequestFailure::Final(err)) => {
                    return Err(err)
                }
            };
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }

    /// Sends one request as it is, without retries, and returns the
    /// response unread (headers and all), for callers that need headers or
    /// follow redirects themselves. Counted like [`HttpClient::send`],
    /// checked by the address guard first, errors without the URL.
    pub async fn execute(
        &self,
        request: reqwest::Request,
    ) -> Result<reqwest::Response, ProviderError> {
        self.guard_url(request.url())?;
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.client.execute(request).await.map_err(network_error)
    }

    async fn send_once(&self, request: reqwest::Request) -> Result<RawResponse, RequestFailure> {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let method = request.method().clone();
        let host = request.url().host_str().unwrap_or("?").to_owned();
        let response = self
            .client
            .execute(request)
            .await
            .map_err(RequestFailure::from_reqwest)?;
        let status = response.status().as_u16();
        tracing::debug!(
            %method,
            host = %host,
            status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "provider request"
        );
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, Timestamp::now()));
        let body = read_limited(response, self.config.max_body_bytes).await?;
        Ok(RawResponse {
            status,
            retry_after,
            body,
        })
    }
}

/// Why one attempt failed before an answer was read.
enum RequestFailure {
    Retryable(ProviderError),
    Final(ProviderError),
}

impl RequestFailure {
    fn from_reqwest(err: reqwest::Error) -> Self {
        let retryable = err.is_timeout() || err.is_connect() || err.is_request() || err.is_body();
        let err = network_error(err);
        if retryable && !matches!(err, ProviderError::ForbiddenAddress { .. }) {
            Self::Retryable(err)
        } else {
            Self::Final(err)
        }
    }
}

/// A network error without the URL (which may carry a sync or page token),
/// with its cause chain so that "connection refused" or "timed out" shows.
/// A refusal of the address guard's resolver comes back as
/// [`ProviderError::ForbiddenAddress`].
pub(crate) fn network_error(err: reqwest::Error) -> ProviderError {
    let timed_out = err.is_timeout();
    let err = err.without_url();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(c) = cause {
        if let Some(refused) = c.downcast_ref::<NotPublic>() {
            return ProviderError::ForbiddenAddress {
                host: refused.host.clone(),
            };
        }
        cause = c.source();
    }
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    if timed_out && !message.contains("timed out") {
        message.push_str(" (timed out)");
    }
    ProviderError::Network(message)
}

/// Reads a whole body, refusing one over `limit` bytes with
/// [`ProviderError::TooLarge`] as soon as it is known to be larger (by its
/// `Content-Length` or while reading), for callers that send requests
/// themselves.
pub async fn read_body_limited(
    response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, ProviderError> {
    read_limited(response, limit).await.map_err(|f| match f {
        RequestFailure::Retryable(e) | RequestFailure::Final(e) => e,
    })
}

async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, RequestFailure> {
    let too_large = || RequestFailure::Final(ProviderError::TooLarge { limit });
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(RequestFailure::from_reqwest)?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Refused by the address guard: `host` is not public. Travels through
/// reqwest's error chain from [`PublicOnlyResolver`] and becomes
/// [`ProviderError::ForbiddenAddress`] in [`network_error`].
#[derive(Debug, thiserror::Error)]
#[error("{host} is not a public address")]
struct NotPublic {
    host: String,
}

/// The address guard's check of a URL before it is requested: its host must
/// not be a non-public IP literal (see [`is_public_ip`]; the URL parser has
/// already turned `0x7f.1` and `2130706433` into `127.0.0.1`) nor an
/// internal name (see [`is_internal_name`]). Names are checked again, with
/// their addresses, by the resolver at connect time.
pub fn check_url(url: &reqwest::Url) -> Result<(), ProviderError> {
    let refused = || ProviderError::ForbiddenAddress {
        host: url.host_str().unwrap_or("(no host)").to_owned(),
    };
    let Some(host) = url.host_str() else {
        return Err(refused());
    };
    // IPv6 literals come bracketed; IPv4 ones in the parser's dotted form.
    let allowed = match host.trim_start_matches('[').trim_end_matches(']').parse() {
        Ok(ip) => is_public_ip(ip),
        Err(_) => !is_internal_name(host),
    };
    if allowed {
        Ok(())
    } else {
        Err(refused())
    }
}

/// Refuses a host name that is no DNS name: the URL parser lets through
/// characters such as `"`, `'` or `{` in a host, which the HTTP stack then
/// rejects as a network failure; a user who typed one gets told so instead.
/// Names come punycoded from the parser, so ASCII letters, digits, `-`,
/// `_` and `.` are all a real name has.
fn check_host_syntax(url: &reqwest::Url) -> Result<(), ProviderError> {
    let valid = |name: &str| {
        name.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    match url.domain() {
        Some(name) if !valid(name) => Err(ProviderError::Setup(
            "the address's host is not a valid host name".to_owned(),
        )),
        _ => Ok(()),
    }
}

/// Names that only mean something inside a network, whatever DNS says:
/// `localhost` and `*.localhost` (RFC 6761 §6.3), `*.internal` (reserved
/// for private use, ICANN 2024; cloud metadata services such as
/// `metadata.google.internal` live there), `*.local` (mDNS, RFC 6762),
/// `*.home.arpa` (RFC 8375), and bare single-label names such as
/// `metadata`, which only a local search domain can complete.
pub fn is_internal_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let in_zone = |zone: &str| name == zone || name.ends_with(&format!(".{zone}"));
    !name.contains('.')
        || ["localhost", "internal", "local", "home.arpa"]
            .iter()
            .any(|zone| in_zone(zone))
}

/// Whether calsync may connect to `ip` when private addresses are refused:
/// not loopback, unspecified, private (RFC 1918, RFC 4193 fc00::/7),
/// shared (CGNAT 100.64.0.0/10, RFC 6598), link-local (169.254.0.0/16 with
/// the 169.254.169.254 metadata service, fe80::/10), multicast, broadcast,
/// reserved, benchmarking or documentation space (RFC 5737, RFC 3849,
/// RFC 9637), nor an IPv6 form that carries such an IPv4 address
/// (IPv4-mapped and -compatible, NAT64 64:ff9b::/96, 6to4 2002::/16).
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let refused = a == 0 // "this network" (RFC 791), 0.0.0.0 included
        || a == 10 // private (RFC 1918)
        || a == 127 // loopback
        || (a == 100 && (64..128).contains(&b)) // shared / CGNAT (RFC 6598)
        || (a == 169 && b == 254) // link-local, cloud metadata (RFC 3927)
        || (a == 172 && (16..32).contains(&b)) // private (RFC 1918)
        || (a == 192 && b == 168) // private (RFC 1918)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments (RFC 6890)
        || (a == 192 && b == 0 && c == 2) // TEST-NET-1 (RFC 5737)
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast (RFC 7526)
        || (a == 198 && (18..20).contains(&b)) // benchmarking (RFC 2544)
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2 (RFC 5737)
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3 (RFC 5737)
        || a >= 224; // multicast, reserved (240/4) and broadcast
    !refused
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| {
        let [h1, h2] = hi.to_be_bytes();
        let [l1, l2] = lo.to_be_bytes();
        Ipv4Addr::new(h1, h2, l1, l2)
    };
    match seg {
        // ::/96 holds :: (unspecified), ::1 (loopback) and the deprecated
        // IPv4-compatible addresses; ::ffff:0:0/96 the IPv4-mapped ones and
        // ::ffff:0:0:0/96 the IPv4-translated ones (RFC 2765). Each reaches
        // (or is) the IPv4 address it carries.
        [0, 0, 0, 0, 0, 0, hi, lo] => (hi, lo) > (0, 1) && is_public_v4(embedded_v4(hi, lo)),
        [0, 0, 0, 0, 0, 0xffff, hi, lo] | [0, 0, 0, 0, 0xffff, 0, hi, lo] => {
            is_public_v4(embedded_v4(hi, lo))
        }
        // NAT64 (RFC 6052): the gateway connects to the embedded address.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => is_public_v4(embedded_v4(hi, lo)),
        // 6to4 (RFC 3056): the embedded address is the relay's peer.
        [0x2002, hi, lo, ..] => is_public_v4(embedded_v4(hi, lo)),
        [first, second, ..] => {
            let refused = (first & 0xfe00) == 0xfc00 // unique local (RFC 4193)
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated, RFC 3879)
                || (first & 0xff00) == 0xff00 // multicast
                || (first == 0x64 && second == 0xff9b) // local-use NAT64 (RFC 8215)
                || (first == 0x100 && seg[1..4] == [0, 0, 0]) // discard-only (RFC 6666)
                || (first == 0x2001 && second == 0) // Teredo: hides its IPv4 peer
                || (first == 0x2001 && second == 0xdb8) // documentation (RFC 3849)
                || (first & 0xfff0) == 0x3ff0 // documentation (RFC 9637)
                || first == 0; // the rest of ::/16: reserved
            !refused
        }
    }
}

/// The address guard's resolver: the system's resolution (getaddrinfo, as
/// reqwest's default), then every non-public address dropped. A name with
/// none left is refused, which ends as [`ProviderError::ForbiddenAddress`]
/// without retries. reqwest asks it for every new connection, so redirects and a
/// name rebound between two requests (DNS rebinding) are covered.
#[derive(Debug, Clone)]
pub struct PublicOnlyResolver {
    /// Refuse [`is_internal_name`] names before resolving them (off only in
    /// tests, to see the address check itself at work).
    check_names: bool,
}

impl Default for PublicOnlyResolver {
    fn default() -> Self {
        Self { check_names: true }
    }
}

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let check_names = self.check_names;
        Box::pin(async move {
            let refused = |host: String| -> Box<dyn std::error::Error + Send + Sync> {
                Box::new(NotPublic { host })
            };
            if check_names && is_internal_name(&host) {
                return Err(refused(host));
            }
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| is_public_ip(a.ip()))
                .collect();
            if public.is_empty() && !found.is_empty() {
                tracing::warn!(host = %host, "refused a name that resolves to non-public addresses only");
                return Err(refused(host));
            }
            let addrs: reqwest::dns::Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// Parses a `Retry-After` value (RFC 9110 §10.2.3): delta-seconds, or an
/// HTTP-date measured from `now` (a date in the past means "now"). The
/// answer is capped at [`MAX_PROVIDER_WAIT`]: delta-seconds too large for
/// any integer and dates as late as 9999 give 24 h, never an overflow.
///
/// Only the two forms of the RFC are read (surrounding spaces and tabs, the
/// field's optional whitespace, are ignored). Anything else is `None`, as if
/// the provider had said nothing: a sign (`-5`, `+5`), a fraction (`1.5`),
/// `inf`, `NaN`, inner whitespace, non-ASCII text, an empty value, and any
/// value over 64 bytes. Never panics.
pub fn parse_retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    let value = value.trim_matches([' ', '\t']);
    if value.is_empty() || value.len() > MAX_RETRY_AFTER_LEN || !value.is_ascii() {
        return None;
    }
    let wait = if value.bytes().all(|b| b.is_ascii_digit()) {
        // Only all-digit text fails to parse by overflowing u64: a very
        // long wait, which the cap below makes a day.
        value
            .parse::<u64>()
            .map_or(MAX_PROVIDER_WAIT, Duration::from_secs)
    } else {
        http_date_wait(value, now)?
    };
    Some(wait.min(MAX_PROVIDER_WAIT))
}

/// The wait until an HTTP-date (RFC 2822 syntax, of which the IMF-fixdate
/// `Sun, 06 Nov 1994 08:49:37 GMT` is a case), zero for a date in the past.
fn http_date_wait(value: &str, now: Timestamp) -> Option<Duration> {
    if let Ok(when) = jiff::fmt::rfc2822::parse(value) {
        let wait = when.timestamp().duration_since(now);
        return Some(Duration::try_from(wait).unwrap_or(Duration::ZERO));
    }
    // A valid IMF-fixdate that jiff cannot hold as a timestamp (after
    // 9999-12-30T22:00Z, such as `Fri, 31 Dec 9999 23:59:59 GMT`) is the far
    // future: the longest wait.
    let date = jiff::fmt::strtime::parse("%a, %d %b %Y %H:%M:%S GMT", value)
        .ok()?
        .to_datetime()
        .ok()?;
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    Some(if date > today {
        MAX_PROVIDER_WAIT
    } else {
        Duration::ZERO
    })
}

/// A uniformly random number in `[0, 1)` for jitter. Falls back to the clock's
/// nanoseconds if the OS generator fails: jitter need not be secret.
fn jitter_unit() -> f64 {
    let mut bytes = [0u8; 8];
    let raw = match getrandom::getrandom(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => u64::from(Timestamp::now().subsec_nanosecond().unsigned_abs()),
    };
    (raw >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hosts_that_are_no_dns_names_are_refused_before_sending() {
        for bad in [
            "https://a\"b.example/",
            "https://a{b}.example/x",
            "https://a'b.example/",
        ] {
            let url = reqwest::Url::parse(bad).unwrap();
            assert!(
                matches!(check_host_syntax(&url), Err(ProviderError::Setup(_))),
                "{bad}"
            );
        }
        for good in [
            "https://caldav.icloud.com/",
            "https://xn--bcher-kva.example/",
            "http://127.0.0.1:8080/",
            "http://[::1]/",
        ] {
            assert!(
                check_host_syntax(&reqwest::Url::parse(good).unwrap()).is_ok(),
                "{good}"
            );
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now: Timestamp = "2026-03-01T12:00:00Z".parse().unwrap();
        assert_eq!(parse_retry_after("30", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("\t7\t", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after("0042", now),
            Some(Duration::from_secs(42))
        );
        assert_eq!(
            parse_retry_after("Sun, 01 Mar 2026 12:00:45 GMT", now),
            Some(Duration::from_secs(45))
        );
        assert_eq!(
            parse_retry_after("Sun, 01 Mar 2026 11:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn retry_after_is_capped_at_a_day() {
        let now: Timestamp = "2026-03-01T12:00:00Z".parse().unwrap();
        let day = Some(MAX_PROVIDER_WAIT);
        assert_eq!(MAX_PROVIDER_WAIT, Duration::from_secs(86_400));
        for huge in [
            "86400",
            "86401",
            "1000000000000",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999999",
            &"9".repeat(MAX_RETRY_AFTER_LEN),
        ] {
            assert_eq!(parse_retry_after(huge, now), day, "{huge}");
        }
        assert_eq!(
            parse_retry_after("86399", now),
            Some(Duration::from_secs(86_399))
        );
        // Dates: a day and a bit ahead, the last ones jiff can hold, and
        // the last one HTTP can write (beyond jiff's range).
        for late in [
            "Mon, 02 Mar 2026 12:00:01 GMT",
            "Thu, 30 Dec 9999 21:59:59 GMT",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            assert_eq!(parse_retry_after(late, now), day, "{late}");
        }
        assert_eq!(
            parse_retry_after("Mon, 02 Mar 2026 11:00:00 GMT", now),
            Some(Duration::from_secs(23 * 3600))
        );
        for early in [
            "Thu, 01 Jan 1970 00:00:00 GMT",
            "Mon, 01 Jan 0001 00:00:00 GMT",
        ] {
            assert_eq!(
                parse_retry_after(early, now),
                Some(Duration::ZERO),
                "{early}"
            );
        }
        // Even at the ends of time, nothing overflows.
        for now in [Timestamp::MIN, Timestamp::MAX, Timestamp::UNIX_EPOCH] {
            for value in [
                "18446744073709551616",
                "Fri, 31 Dec 9999 23:59:59 GMT",
                "Thu, 01 Jan 1970 00:00:00 GMT",
            ] {
                let wait = parse_retry_after(value, now).unwrap();
                assert!(wait <= MAX_PROVIDER_WAIT, "{value} at {now}");
            }
        }
    }

    #[test]
    fn malformed_retry_after_is_none() {
        let now: Timestamp = "2026-03-01T12:00:00Z".parse().unwrap();
        let ten_kb_digits = "1".repeat(10 * 1024);
        let ten_kb_junk = "x".repeat(10 * 1024);
        for bad in [
            "-5",
            "-0",
            "+5",
            "1.5",
            "1e3",
            "0x10",
            "inf",
            "-inf",
            "infinity",
            "NaN",
            "1 0",
            "5s",
            " ",
            "\t \t",
            "\u{663}",
            "٣٠",
            "３０",
            "Sun, 01 Mär 2026 12:00:45 GMT",
            "Mon, 01 Mar 2026 12:00:45 GMT", // the wrong weekday
            "Sun, 01 Mar 2026 25:00:45 GMT",
            "Fri, 31 Dec 10000 23:59:59 GMT",
            "Sun, 01 Mar 2026",
            "garbage",
            &ten_kb_digits,
            &ten_kb_junk,
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(0, 0.0), Duration::from_secs(1));
        assert_eq!(policy.backoff(1, 0.0), Duration::from_secs(2));
        assert_eq!(policy.backoff(3, 0.0), Duration::from_secs(8));
        assert_eq!(policy.backoff(3, 0.5), Duration::from_millis(8500));
        assert_eq!(policy.backoff(6, 0.999), Duration::from_secs(64));
        assert_eq!(policy.backoff(40, 0.0), Duration::from_secs(64));
        let fast = RetryPolicy {
            base_delay: Duration::from_millis(2),
            ..RetryPolicy::default()
        };
        assert!(fast.backoff(0, 0.999) < Duration::from_millis(4));
    }

    #[test]
    fn address_classification() {
        let table = [
            // (address, public)
            ("8.8.8.8", true),
            ("1.1.1.1", true),
            ("93.184.215.14", true),
            ("100.63.255.255", true),
            ("100.128.0.1", true),
            ("172.15.255.255", true),
            ("172.32.0.1", true),
            ("192.0.1.1", true),
            ("198.20.0.1", true),
            ("223.255.255.255", true),
            ("0.0.0.0", false),
            ("0.1.2.3", false),
            ("127.0.0.1", false),
            ("127.255.0.9", false),
            ("10.0.0.1", false),
            ("172.16.0.1", false),
            ("172.31.255.255", false),
            ("192.168.1.1", false),
            ("100.64.0.1", false),
            ("100.127.255.254", false),
            ("169.254.169.254", false),
            ("169.254.0.1", false),
            ("192.0.0.8", false),
            ("192.0.2.10", false),
            ("198.51.100.7", false),
            ("203.0.113.5", false),
            ("198.18.0.1", false),
            ("224.0.0.1", false),
            ("239.255.255.250", false),
            ("240.0.0.1", false),
            ("255.255.255.255", false),
            ("2606:4700:4700::1111", true),
            ("2001:4860:4860::8888", true),
            ("2a00:1450:4001:82b::200e", true),
            ("::ffff:8.8.8.8", true),
            ("64:ff9b::808:808", true),
            ("2002:0808:0808::1", true),
            ("::", false),
            ("::1", false),
            ("fc00::1", false),
            ("fd12:3456:789a::1", false),
            ("fe80::1", false),
            ("febf::1", false),
            ("fec0::1", false),
            ("ff02::1", false),
            ("2001:db8::1", false),
            ("3fff::1", false),
            ("2001::1", false),
            ("100::1", false),
            ("::ffff:127.0.0.1", false),
            ("::ffff:169.254.169.254", false),
            ("::ffff:10.1.2.3", false),
            ("::ffff:0:192.168.0.1", false),
            ("::127.0.0.1", false),
            ("::10.0.0.1", false),
            ("64:ff9b::7f00:1", false),
            ("64:ff9b:1::1", false),
            ("2002:7f00:0001::1", false),
            ("2002:a9fe:a9fe::1", false),
        ];
        for (text, public) in table {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(is_public_ip(ip), public, "{text}");
        }
    }

    #[test]
    fn url_checks() {
        let check = |u: &str| check_url(&reqwest::Url::parse(u).unwrap());
        for ok in [
            "https://calendar.google.com/calendar/ical/x/basic.ics",
            "http://8.8.8.8/feed.ics",
            "https://[2606:4700:4700::1111]/x",
            "https://example.com./x",
        ] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        for refused in [
            "http://127.0.0.1:8080/x",
            "http://2130706433/x",
            "http://0x7f.1/x",
            "http://0177.0.0.1/x",
            "http://[::1]/x",
            "http://[::ffff:7f00:1]/x",
            "http://169.254.169.254/latest/meta-data/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://METADATA.GOOGLE.INTERNAL./x",
            "http://localhost:8000/x",
            "http://api.localhost/x",
            "http://printer.local/x",
            "http://nas.home.arpa/x",
            "http://metadata/x",
            "http://0.0.0.0/x",
            "http://[fe80::1]/x",
        ] {
            match check(refused) {
                Err(ProviderError::ForbiddenAddress { host }) => {
                    assert!(!host.contains('/'), "{host}")
                }
                other => panic!("{refused}: {other:?}"),
            }
        }
        let err = check("http://10.0.0.5/secret-key/basic.ics").unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.contains("10.0.0.5") && !shown.contains("secret-key"),
            "{shown}"
        );
        assert!(
            shown.contains("CALSYNC_ALLOW_PRIVATE_ADDRESSES=true"),
            "{shown}"
        );
        assert_eq!(err.code(), "forbidden_address");
    }

    #[tokio::test]
    async fn the_resolver_drops_non_public_answers() {
        use reqwest::dns::Resolve as _;
        use std::str::FromStr as _;
        // Names unchecked: `localhost` goes to the system resolver and comes
        // back as loopback addresses, which the address check refuses.
        let resolver = PublicOnlyResolver { check_names: false };
        let name = reqwest::dns::Name::from_str("localhost").unwrap();
        let err = match resolver.resolve(name).await {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(err) => err,
        };
        assert!(err.downcast_ref::<NotPublic>().is_some(), "{err}");
        let name = reqwest::dns::Name::from_str("metadata.google.internal").unwrap();
        assert!(PublicOnlyResolver::default().resolve(name).await.is_err());
    }

    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..1000 {
            let j = jitter_unit();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }
}
