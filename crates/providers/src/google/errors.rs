//! Google's error answers (spec §3.1) -> [`ProviderError`], and which of them
//! are worth retrying (spec §3.3, §7).
//!
//! Never touches the database. Classification keys on the status and the
//! legacy `errors[0].reason`, falling back to the newer `details[].reason`
//! (`RATE_LIMIT_EXCEEDED`) and `status` fields, since Google sends any mix.

use crate::error::{redact, sanitize_message, ProviderError};
use crate::http::RawResponse;

use super::wire::{ErrorBody, ErrorEnvelope};

/// Legacy reasons that mean "slow down and retry".
const RATE_LIMIT_REASONS: [&str; 2] = ["rateLimitExceeded", "userRateLimitExceeded"];

/// The parts of an error answer we act on.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct GoogleError {
    /// `errors[0].reason`, else `details[0].reason`, else `status`.
    pub reason: Option<String>,
    pub message: Option<String>,
    /// Whether any of the reasons says rate limit.
    pub rate_limited: bool,
}

/// Reads Google's error envelope; anything else (HTML from a proxy, an
/// empty body) yields no reason and no message.
pub(crate) fn parse_error(body: &[u8]) -> GoogleError {
    let Ok(ErrorEnvelope { error }) = serde_json::from_slice::<ErrorEnvelope>(body) else {
        return GoogleError::default();
    };
    let ErrorBody {
        message,
        errors,
        status,
        details,
    } = error;
    let legacy = errors.iter().find_map(|e| e.reason.clone());
    let detail = details.iter().find_map(|d| d.reason.clone());
    let rate_limited = errors
        .iter()
        .filter_map(|e| e.reason.as_deref())
        .any(|r| RATE_LIMIT_REASONS.contains(&r))
        || detail.as_deref() == Some("RATE_LIMIT_EXCEEDED");
    let message = message.or_else(|| errors.into_iter().find_map(|e| e.message));
    GoogleError {
        reason: legacy.or(detail).or(status),
        message,
        rate_limited,
    }
}

/// Whether a Calendar API answer should be retried: 5xx, 408, 429, and 403
/// only when it is a rate limit (a 403 `forbidden` or `quotaExceeded` will
/// not go away in seconds).
pub(crate) fn is_retryable(response: &RawResponse) -> bool {
    match response.status {
        408 | 429 => true,
        500..=599 => true,
        403 => parse_error(&response.body).rate_limited,
        _ => false,
    }
}

/// Classifies a Calendar API error answer. `secrets` are redacted from any
/// message Google echoes back.
pub(crate) fn classify(response: &RawResponse, secrets: &[&str]) -> ProviderError {
    let parsed = parse_error(&response.body);
    let reason = parsed.reason.as_deref();
    match response.status {
        401 => ProviderError::Unauthorized,
        // events.list answers 410 only for a dead sync token
        // (`fullSyncRequired`) or a too-old `updatedMin`; `deleted` is a
        // write's answer and stays a provider error.
        410 if reason != Some("deleted") => ProviderError::SyncTokenExpired,
        429 => ProviderError::RateLimited {
            retry_after: response.retry_after,
        },
        403 if parsed.rate_limited => ProviderError::RateLimited {
            retry_after: response.retry_after,
        },
        status => ProviderError::Provider {
            status,
            reason: reason.unwrap_or("unknown").to_owned(),
            message: parsed
                .message
                .map(|m| sanitize_message(&redact(&m, secrets)))
                .unwrap_or_default(),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn raw(status: u16, body: &str) -> RawResponse {
        RawResponse {
            status,
            retry_after: None,
            body: body.as_bytes().to_vec(),
        }
    }

    const RATE_LIMIT_403: &str = r#"{"error":{"code":403,"message":"Rate Limit Exceeded",
        "errors":[{"domain":"usageLimits","reason":"rateLimitExceeded","message":"Rate Limit Exceeded"}],
        "status":"PERMISSION_DENIED",
        "details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RATE_LIMIT_EXCEEDED",
                    "domain":"googleapis.com","metadata":{"service":"calendar-json.googleapis.com"}}]}}"#;

    const FORBIDDEN_403: &str = r#"{"error":{"code":403,"message":"Insufficient Permission",
        "errors":[{"domain":"global","reason":"insufficientPermissions","message":"Insufficient Permission"}],
        "status":"PERMISSION_DENIED",
        "details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"ACCESS_TOKEN_SCOPE_INSUFFICIENT"}]}}"#;

    const GONE_410: &str = r#"{"error":{"errors":[{"domain":"calendar","reason":"fullSyncRequired",
        "message":"Sync token is no longer valid, a full sync is required.","locationType":"parameter",
        "location":"syncToken"}],"code":410,"message":"Sync token is no longer valid, a full sync is required."}}"#;

    const UNAUTH_401: &str = r#"{"error":{"code":401,"message":"Request had invalid authentication credentials.",
        "errors":[{"message":"Invalid Credentials","domain":"global","reason":"authError",
        "location":"Authorization","locationType":"header"}],"status":"UNAUTHENTICATED"}}"#;

    #[test]
    fn rate_limit_403_is_retried_and_typed() {
        let r = raw(403, RATE_LIMIT_403);
        assert!(is_retryable(&r));
        assert!(matches!(
            classify(&r, &[]),
            ProviderError::RateLimited { retry_after: None }
        ));
        // Only the newer details field.
        let r = raw(
            403,
            r#"{"error":{"code":403,"message":"Quota exceeded","status":"PERMISSION_DENIED","details":[{"reason":"RATE_LIMIT_EXCEEDED"}]}}"#,
        );
        assert!(is_retryable(&r));
        let user = raw(
            403,
            r#"{"error":{"errors":[{"domain":"usageLimits","reason":"userRateLimitExceeded"}],"code":403,"message":"User Rate Limit Exceeded"}}"#,
        );
        assert!(is_retryable(&user));
    }

    #[test]
    fn forbidden_403_is_final() {
        let r = raw(403, FORBIDDEN_403);
        assert!(!is_retryable(&r));
        match classify(&r, &[]) {
            ProviderError::Provider {
                status,
                reason,
                message,
            } => {
                assert_eq!(status, 403);
                assert_eq!(reason, "insufficientPermissions");
                assert_eq!(message, "Insufficient Permission");
            }
            other => panic!("{other:?}"),
        }
        let quota = raw(
            403,
            r#"{"error":{"errors":[{"domain":"usageLimits","reason":"quotaExceeded","message":"Calendar usage limits exceeded."}],"code":403,"message":"Calendar usage limits exceeded."}}"#,
        );
        assert!(!is_retryable(&quota));
        assert!(
            matches!(classify(&quota, &[]), ProviderError::Provider { ref reason, .. } if reason == "quotaExceeded")
        );
    }

    #[test]
    fn statuses_map_to_actions() {
        assert!(matches!(
            classify(&raw(401, UNAUTH_401), &[]),
            ProviderError::Unauthorized
        ));
        assert!(!is_retryable(&raw(401, UNAUTH_401)));
        assert!(matches!(
            classify(&raw(410, GONE_410), &[]),
            ProviderError::SyncTokenExpired
        ));
        assert!(!is_retryable(&raw(410, GONE_410)));
        let deleted = raw(
            410,
            r#"{"error":{"errors":[{"domain":"global","reason":"deleted","message":"Resource has been deleted"}],"code":410,"message":"Resource has been deleted"}}"#,
        );
        assert!(matches!(
            classify(&deleted, &[]),
            ProviderError::Provider { status: 410, .. }
        ));
        let mut too_many = raw(429, "");
        too_many.retry_after = Some(Duration::from_secs(3));
        assert!(is_retryable(&too_many));
        assert!(matches!(
            classify(&too_many, &[]),
            ProviderError::RateLimited {
                retry_after: Some(d)
            } if d == Duration::from_secs(3)
        ));
        let backend = raw(
            503,
            r#"{"error":{"errors":[{"domain":"global","reason":"backendError","message":"Backend Error"}],"code":503,"message":"Backend Error"}}"#,
        );
        assert!(is_retryable(&backend));
        assert!(
            matches!(classify(&backend, &[]), ProviderError::Provider { status: 503, ref reason, .. } if reason == "backendError")
        );
        // Not Google's JSON at all.
        let html = raw(502, "<html>Bad Gateway</html>");
        assert!(
            matches!(classify(&html, &[]), ProviderError::Provider { status: 502, ref reason, ref message } if reason == "unknown" && message.is_empty())
        );
        // Only a status string.
        let status_only = raw(
            400,
            r#"{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}"#,
        );
        assert!(
            matches!(classify(&status_only, &[]), ProviderError::Provider { ref reason, .. } if reason == "INVALID_ARGUMENT")
        );
    }

    #[test]
    fn echoed_secrets_are_redacted() {
        let r = raw(
            400,
            r#"{"error":{"code":400,"message":"bad syncToken CPDAlvWDx70CEPDAlvWDx70CGAU","errors":[{"reason":"invalid"}]}}"#,
        );
        let shown = classify(&r, &["CPDAlvWDx70CEPDAlvWDx70CGAU"]).to_string();
        assert!(!shown.contains("CPDAlv"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }
}
