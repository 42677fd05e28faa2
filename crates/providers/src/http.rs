//! Shared outbound HTTP for every provider: one `reqwest` client with connect
//! and overall timeouts, a cap on response size, and retries with truncated
//! exponential backoff plus jitter that honour `Retry-After`.
//!
//! Never touches the database, and never logs a URL query, a header or a body:
//! sync tokens and page tokens travel in queries, access tokens in headers,
//! codes and refresh tokens in bodies. Log lines name the host, the status and
//! the attempt, nothing more. Which answers are worth retrying is the
//! provider's call (Google's 403 `rateLimitExceeded` is, a 403 `forbidden` is
//! not), so [`HttpClient::send`] takes a predicate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::error::ProviderError;

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
    pub fn new(config: HttpConfig) -> Result<Self, ProviderError> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .user_agent(config.user_agent.clone())
            .redirect(reqwest::redirect::Policy::none())
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
        if retryable {
            Self::Retryable(err)
        } else {
            Self::Final(err)
        }
    }
}

/// A network error without the URL (which may carry a sync or page token),
/// with its cause chain so that "connection refused" or "timed out" shows.
pub(crate) fn network_error(err: reqwest::Error) -> ProviderError {
    let timed_out = err.is_timeout();
    let err = err.without_url();
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

/// Parses a `Retry-After` value (RFC 9110 §10.2.3): delta-seconds, or an
/// HTTP-date measured from `now` (a date in the past means "now").
pub fn parse_retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Absurdly long numbers saturate rather than fail.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let when = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let wait = when.duration_since(now);
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
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
    fn retry_after_seconds_and_dates() {
        let now: Timestamp = "2026-03-01T12:00:00Z".parse().unwrap();
        assert_eq!(parse_retry_after("30", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
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
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
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
    fn jitter_stays_in_range() {
        for _ in 0..1000 {
            let j = jitter_unit();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }
}
