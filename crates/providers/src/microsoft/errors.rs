//! Microsoft's error answers -> [`ProviderError`], per
//! `shared/specs/microsoft-graph.md` §A1 (identity platform `AADSTS` errors),
//! §A3 (dead delta tokens) and §A6 (Graph's envelope and throttling).
//!
//! Never touches the database. Graph errors key on the status and
//! `error.code`; token-endpoint errors are first read by the shared
//! [`crate::oauth`] code and then re-classified here, because Microsoft says
//! "sign in again" with more than `invalid_grant`.

use crate::error::{redact, sanitize_message, ProviderError};
use crate::http::RawResponse;

use super::wire::{ErrorBody, ErrorEnvelope};

/// The `error.code` and `error.message` of a Graph error answer; both
/// `None` for anything that is not Graph's JSON (a proxy's HTML page).
pub(crate) fn parse_error(body: &[u8]) -> ErrorBody {
    serde_json::from_slice::<ErrorEnvelope>(body)
        .map(|envelope| envelope.error)
        .unwrap_or_default()
}

/// Whether a Graph answer is worth retrying in place: 408, 429 (Graph sends
/// `Retry-After` in seconds; the shared client obeys it) and 5xx (503 and 504
/// are Graph's "try later"). 401/403/404/410 will not change by waiting.
pub(crate) fn is_retryable(response: &RawResponse) -> bool {
    matches!(response.status, 408 | 429 | 500..=599)
}

/// Which request an error answers: a delta request's 4xx can mean "your
/// token is dead", a calendar listing's cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    Delta,
    Other,
}

/// Whether a 4xx error of a delta request says the delta/skip token or its
/// sync state is unusable (spec §A3: "handle every 410 (and any 4xx
/// mentioning syncState)"): `SyncStateNotFound`, `SyncStateInvalid`,
/// `resyncRequired`, and invalid-token messages.
fn is_dead_token(error: &ErrorBody) -> bool {
    let squash = |s: &str| {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let code = error.code.as_deref().map(squash).unwrap_or_default();
    let message = error.message.as_deref().map(squash).unwrap_or_default();
    ["syncstate", "resyncrequired", "deltatoken", "skiptoken"]
        .iter()
        .any(|needle| code.contains(needle) || message.contains(needle))
}

/// Classifies a Graph error answer. `secrets` (the access token, the link's
/// query values) are redacted from any message Graph echoes back.
pub(crate) fn classify(
    response: &RawResponse,
    secrets: &[&str],
    request: Request,
) -> ProviderError {
    let error = parse_error(&response.body);
    match response.status {
        401 => ProviderError::Unauthorized,
        // A delta request answers 410 only for a token whose sync state is
        // gone (`SyncStateNotFound`, or `resyncRequired` with a Location).
        410 if request == Request::Delta => ProviderError::SyncTokenExpired,
        400 | 404 | 409 | 422 if request == Request::Delta && is_dead_token(&error) => {
            ProviderError::SyncTokenExpired
        }
        429 => ProviderError::RateLimited {
            retry_after: response.retry_after,
        },
        // A 503 that names a wait is throttling by another name (spec §A6).
        503 if response.retry_after.is_some() => ProviderError::RateLimited {
            retry_after: response.retry_after,
        },
        status => ProviderError::Provider {
            status,
            reason: error
                .code
                .filter(|c| !c.is_empty())
                .map(|c| sanitize_message(&c))
                .unwrap_or_else(|| "unknown".to_owned()),
            message: error
                .message
                .map(|m| sanitize_message(&redact(&m, secrets)))
                .unwrap_or_default(),
        },
    }
}

/// `AADSTS` codes that mean only an interactive sign-in helps (spec §A1):
/// expired code or refresh token (70008, 700082 after 90 idle days, 700084
/// SPA 24 h), revoked grant (50173), code already redeemed (54005), bad
/// grant (70000), verifier mismatch (501481), consent missing (65001), MFA or
/// Conditional Access needs the user (50076, 50079).
const REAUTH_CODES: [u32; 10] = [
    70008, 700082, 700084, 50173, 54005, 70000, 501481, 65001, 50076, 50079,
];

/// The `nnnn` of an `AADSTSnnnn:` prefix anywhere in a description.
pub(crate) fn aadsts_code(description: &str) -> Option<u32> {
    let at = description.find("AADSTS")?;
    let digits: String = description[at + "AADSTS".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The readable head of an identity-platform `error_description`: AAD
/// appends `Trace ID: ... Correlation ID: ... Timestamp: ...` lines, which
/// only make the reason shown to the user longer.
fn description_head(description: &str) -> String {
    let head = description
        .find(" Trace ID:")
        .map_or(description, |at| &description[..at]);
    head.trim().to_owned()
}

/// Re-classifies an error of the token endpoint (code exchange or refresh)
/// for Microsoft: besides `invalid_grant`, `interaction_required`,
/// `consent_required` and the `AADSTS` codes of [`REAUTH_CODES`] also mean
/// "the account must be reconnected", whatever `error` they came with.
/// Everything the shared OAuth code produced is already sanitised and has the
/// code, verifier, refresh token and client secret redacted.
pub(crate) fn token_error(err: ProviderError) -> ProviderError {
    match err {
        ProviderError::InvalidGrant { reason } => ProviderError::InvalidGrant {
            reason: description_head(&reason),
        },
        ProviderError::Provider {
            status,
            reason,
            message,
        } => {
            let reauth = matches!(reason.as_str(), "interaction_required" | "consent_required")
                || aadsts_code(&message).is_some_and(|code| REAUTH_CODES.contains(&code));
            if reauth {
                let head = description_head(&message);
                ProviderError::InvalidGrant {
                    reason: if head.is_empty() { reason } else { head },
                }
            } else {
                ProviderError::Provider {
                    status,
                    reason,
                    message: description_head(&message),
                }
            }
        }
        other => other,
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

    const SYNC_STATE_410: &str = r#"{"error":{"code":"SyncStateNotFound",
        "message":"The sync state generation is not found; generation=149;[highest=157][157][155][156].",
        "innerError":{"request-id":"1137f277","date":"2026-03-01T10:00:00"}}}"#;

    #[test]
    fn dead_delta_tokens_in_every_shape() {
        for (status, body) in [
            (410, SYNC_STATE_410),
            (
                410,
                r#"{"error":{"code":"resyncRequired","message":"Resync required."}}"#,
            ),
            (410, ""),
            (
                400,
                r#"{"error":{"code":"SyncStateInvalid","message":"Invalid sync state."}}"#,
            ),
            (
                400,
                r#"{"error":{"code":"BadRequest","message":"The delta token is invalid."}}"#,
            ),
            (
                400,
                r#"{"error":{"code":"ErrorInvalidParameter","message":"Invalid $skiptoken."}}"#,
            ),
        ] {
            let r = raw(status, body);
            assert!(!is_retryable(&r), "{body}");
            assert!(
                matches!(
                    classify(&r, &[], Request::Delta),
                    ProviderError::SyncTokenExpired
                ),
                "{status} {body}"
            );
        }
        // Outside a delta request, or an unrelated 400, it stays an error.
        assert!(matches!(
            classify(&raw(410, SYNC_STATE_410), &[], Request::Other),
            ProviderError::Provider { status: 410, .. }
        ));
        let bad_window = raw(
            400,
            r#"{"error":{"code":"ErrorInvalidParameter","message":"This request requires a time window specified by the query string parameters StartDateTime and EndDateTime."}}"#,
        );
        assert!(
            matches!(classify(&bad_window, &[], Request::Delta), ProviderError::Provider { status: 400, ref reason, .. } if reason == "ErrorInvalidParameter")
        );
        // A deleted calendar is a 404, not a resync.
        let gone = raw(
            404,
            r#"{"error":{"code":"ErrorItemNotFound","message":"The specified object was not found in the store."}}"#,
        );
        assert!(classify(&gone, &[], Request::Delta).is_not_found());
    }

    #[test]
    fn statuses_map_to_actions() {
        let unauth = raw(
            401,
            r#"{"error":{"code":"InvalidAuthenticationToken","message":"Access token has expired or is not yet valid."}}"#,
        );
        assert!(!is_retryable(&unauth));
        assert!(matches!(
            classify(&unauth, &[], Request::Delta),
            ProviderError::Unauthorized
        ));

        let mut throttled = raw(
            429,
            r#"{"error":{"code":"TooManyRequests","message":"Please retry again later."}}"#,
        );
        throttled.retry_after = Some(Duration::from_secs(7));
        assert!(is_retryable(&throttled));
        assert!(matches!(
            classify(&throttled, &[], Request::Other),
            ProviderError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(7)
        ));

        let mut unavailable = raw(
            503,
            r#"{"error":{"code":"ServiceUnavailable","message":"Service Unavailable"}}"#,
        );
        assert!(is_retryable(&unavailable));
        let err = classify(&unavailable, &[], Request::Other);
        assert!(
            matches!(err, ProviderError::Provider { status: 503, ref reason, .. } if reason == "ServiceUnavailable")
        );
        assert!(err.is_transient());
        unavailable.retry_after = Some(Duration::from_secs(3));
        assert!(matches!(
            classify(&unavailable, &[], Request::Other),
            ProviderError::RateLimited { .. }
        ));

        let denied = raw(
            403,
            r#"{"error":{"code":"ErrorAccessDenied","message":"Access is denied. Check credentials and try again."}}"#,
        );
        assert!(!is_retryable(&denied));
        assert!(
            matches!(classify(&denied, &[], Request::Other), ProviderError::Provider { status: 403, ref reason, ref message } if reason == "ErrorAccessDenied" && message.starts_with("Access is denied"))
        );
        let html = raw(502, "<html>Bad Gateway</html>");
        assert!(
            matches!(classify(&html, &[], Request::Other), ProviderError::Provider { status: 502, ref reason, ref message } if reason == "unknown" && message.is_empty())
        );
    }

    #[test]
    fn echoed_secrets_are_redacted() {
        let r = raw(
            400,
            r#"{"error":{"code":"BadRequest","message":"Bad token EwBwA8l6BAAUbDba3x2 in request"}}"#,
        );
        let shown = classify(&r, &["EwBwA8l6BAAUbDba3x2"], Request::Other).to_string();
        assert!(!shown.contains("EwBwA8l6"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }

    fn provider(status: u16, reason: &str, message: &str) -> ProviderError {
        ProviderError::Provider {
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }

    #[test]
    fn aadsts_codes_are_read() {
        assert_eq!(
            aadsts_code("AADSTS700082: The refresh token has expired"),
            Some(700082)
        );
        assert_eq!(aadsts_code("x AADSTS54005: used"), Some(54005));
        assert_eq!(aadsts_code("AADSTS: nothing"), None);
        assert_eq!(aadsts_code("no code"), None);
    }

    #[test]
    fn sign_in_again_errors_become_invalid_grant() {
        // What the shared OAuth code makes of AAD's JSON: invalid_grant
        // already is InvalidGrant; the trace lines are dropped from it.
        let expired = token_error(ProviderError::InvalidGrant {
            reason: "AADSTS700082: The refresh token has expired due to inactivity. The token was issued on 2026-01-01 and was inactive for 90.00:00:00. Trace ID: 0b1c Correlation ID: 9f8e Timestamp: 2026-04-01 10:00:00Z".into(),
        });
        assert!(expired.needs_reauth());
        assert_eq!(
            expired.to_string(),
            "the provider refused the grant (AADSTS700082: The refresh token has expired due to inactivity. The token was issued on 2026-01-01 and was inactive for 90.00:00:00.); the account must be reconnected"
        );
        for (reason, message) in [
            ("interaction_required", "AADSTS50076: Due to a configuration change made by your administrator, you must use multi-factor authentication."),
            ("consent_required", "AADSTS65001: The user or administrator has not consented to use the application."),
            ("invalid_request", "AADSTS50173: The provided grant has expired due to it being revoked."),
            ("invalid_request", "AADSTS54005: OAuth2 Authorization code was already redeemed."),
            ("invalid_request", "AADSTS70000: The provided value for the 'code' parameter is not valid."),
            ("interaction_required", ""),
        ] {
            let err = token_error(provider(400, reason, message));
            assert!(err.needs_reauth(), "{reason} {message}");
            assert!(matches!(err, ProviderError::InvalidGrant { ref reason } if !reason.is_empty()));
        }
        // Configuration errors stay provider errors for the operator.
        let client = token_error(provider(
            401,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided. Trace ID: x Correlation ID: y",
        ));
        assert!(!client.needs_reauth());
        assert!(
            matches!(client, ProviderError::Provider { status: 401, ref reason, ref message } if reason == "invalid_client" && message == "AADSTS7000215: Invalid client secret provided.")
        );
        let busy = token_error(provider(503, "temporarily_unavailable", ""));
        assert!(busy.is_transient() && !busy.needs_reauth());
        assert!(matches!(
            token_error(ProviderError::Network("down".into())),
            ProviderError::Network(_)
        ));
    }
}
