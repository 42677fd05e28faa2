//! The one error type every provider returns, classified by what the caller
//! must do next (refresh, reconnect, resync, wait, give up).
//!
//! Never touches the database. Its `Display` and `Debug` are safe to log and to
//! show: no variant ever carries an access token, refresh token, authorization
//! code, PKCE verifier or client secret. Messages that come from a provider are
//! passed through [`sanitize_message`] first, and callers redact the secrets
//! they sent with [`redact`] before building an error.

use std::time::Duration;

/// What went wrong talking to a provider.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The access token was refused (HTTP 401). The caller refreshes the token
    /// once and retries; a second 401 means the account must be reconnected.
    #[error("the provider refused the access token (HTTP 401); refresh it and retry")]
    Unauthorized,

    /// The token endpoint refused a refresh token or an authorization code
    /// (`invalid_grant`): revoked, expired, already used. Only reconnecting
    /// the account helps; the caller sets the connection to `needs_reauth`.
    #[error("the provider refused the grant ({reason}); the account must be reconnected")]
    InvalidGrant {
        /// The provider's `error_description`, e.g. "Token has been expired or revoked."
        reason: String,
    },

    /// The sync cursor is no longer valid (Google: HTTP 410 `fullSyncRequired`):
    /// the caller starts a full resync of that calendar.
    #[error("the provider no longer accepts the sync token; a full resync is needed")]
    SyncTokenExpired,

    /// Rate limited (429, or Google's 403 `rateLimitExceeded`), and still so
    /// after the retries; try again later.
    #[error("the provider is rate limiting us{}", fmt_retry_after(*.retry_after))]
    RateLimited {
        /// How long the provider asked us to wait, when it said so.
        retry_after: Option<Duration>,
    },

    /// Any other error answer from the provider.
    #[error("the provider answered HTTP {status} ({reason}): {message}")]
    Provider {
        status: u16,
        /// The machine-readable reason (Google: `errors[0].reason`, or the
        /// OAuth `error` code), or `unknown`.
        reason: String,
        /// The provider's human-readable message, sanitised.
        message: String,
    },

    /// Could not reach the provider, or the connection broke or timed out
    /// (after the retries).
    #[error("could not reach the provider: {0}")]
    Network(String),

    /// The provider's answer was not what its protocol promises.
    #[error("could not read the provider's answer: {0}")]
    Decode(String),

    /// The provider's answer was larger than we accept.
    #[error("the provider's answer is larger than {limit} bytes")]
    TooLarge { limit: usize },

    /// The URL, a redirect or a DNS answer leads to an address that is not
    /// public (loopback, private, link-local, cloud metadata, ...) while
    /// private addresses are refused. Names the host only, never the URL
    /// (a feed's URL may hold a secret key).
    #[error(
        "refusing to connect to {host}: it is not a public internet address; \
         to use a server on your local network, set CALSYNC_ALLOW_PRIVATE_ADDRESSES=true"
    )]
    ForbiddenAddress { host: String },

    /// We could not even build the request: a malformed configured URL, or
    /// the operating system's random generator failed. Fix the configuration.
    #[error("could not prepare the provider request: {0}")]
    Setup(String),
}

impl ProviderError {
    /// A stable snake_case name of the variant, for API error bodies, metrics
    /// and `sync_runs.error` prefixes.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::InvalidGrant { .. } => "invalid_grant",
            Self::SyncTokenExpired => "sync_token_expired",
            Self::RateLimited { .. } => "rate_limited",
            Self::Provider { .. } => "provider_error",
            Self::Network(_) => "network",
            Self::Decode(_) => "decode",
            Self::TooLarge { .. } => "too_large",
            Self::ForbiddenAddress { .. } => "forbidden_address",
            Self::Setup(_) => "setup",
        }
    }

    /// Whether the account must be reconnected by its owner.
    pub fn needs_reauth(&self) -> bool {
        matches!(self, Self::InvalidGrant { .. })
    }

    /// Whether the provider says the resource does not exist (or is not
    /// visible to this account), e.g. a calendar the user unsubscribed from.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Provider { status: 404, .. })
    }

    /// Whether trying again later may succeed without any change on our side.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::RateLimited { .. } | Self::Network(_) => true,
            Self::Provider { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// A decode error that names what was being read and where, but never the
    /// offending value: serde_json's own message may quote it, and the value
    /// can be a token.
    pub(crate) fn decode(what: &str, err: &serde_json::Error) -> Self {
        let kind = match err.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "invalid JSON",
            serde_json::error::Category::Data => "unexpected JSON shape",
            serde_json::error::Category::Eof => "truncated JSON",
        };
        Self::Decode(format!(
            "{what}: {kind} at line {} column {}",
            err.line(),
            err.column()
        ))
    }
}

fn fmt_retry_after(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!("; retry after {} s", d.as_secs().max(1)),
        None => String::new(),
    }
}

/// The longest provider message we pass on.
const MAX_MESSAGE_CHARS: usize = 300;

/// Makes a provider-supplied message safe to show: one line, no control
/// characters, at most a few hundred characters.
pub fn sanitize_message(message: &str) -> String {
    let mut out: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_MESSAGE_CHARS)
        .collect();
    if message.chars().count() > MAX_MESSAGE_CHARS {
        out.push('…');
    }
    out.trim().to_owned()
}

/// Replaces every occurrence of each secret in `text` with `[redacted]`, in
/// case a provider echoes a token or code back in an error message.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        // Short strings would redact ordinary words; real secrets are long.
        if secret.len() >= 8 {
            out = out.replace(secret, "[redacted]");
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_and_bounded() {
        assert_eq!(sanitize_message(" a\nb\tc "), "a b c");
        let long = "x".repeat(1000);
        assert_eq!(
            sanitize_message(&long).chars().count(),
            MAX_MESSAGE_CHARS + 1
        );
    }

    #[test]
    fn secrets_are_redacted() {
        let msg = "token ya29.secretvalue is bad; short ab stays";
        assert_eq!(
            redact(msg, &["ya29.secretvalue", "ab"]),
            "token [redacted] is bad; short ab stays"
        );
    }

    #[test]
    fn decode_errors_never_quote_values() {
        let err = serde_json::from_str::<u64>("\"ya29.very-secret\"").unwrap_err();
        let shown = ProviderError::decode("token response", &err).to_string();
        assert!(!shown.contains("ya29"), "{shown}");
        assert!(shown.contains("token response"), "{shown}");
    }

    #[test]
    fn rate_limit_display() {
        let e = ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(
            e.to_string(),
            "the provider is rate limiting us; retry after 7 s"
        );
        assert!(e.is_transient() && !e.needs_reauth());
        assert_eq!(e.code(), "rate_limited");
    }
}
