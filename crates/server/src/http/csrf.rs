//! Cross-site request forgery defence for cookie-authenticated writes: the
//! request must come from calsync's own origin (`Origin`, else `Referer`), and
//! carry the session's CSRF token (header for API calls, form field for pages).
//! SameSite=Lax cookies are a third layer, not the only one.

use axum::http::{header, HeaderMap};
use subtle::ConstantTimeEq as _;

use crate::http::error::AppError;

/// Refuses a write whose `Origin` (or, without one, `Referer`) is neither
/// `public_url`'s origin nor the host the request was sent to. Browsers send
/// one of them on every cross-site POST (and `Sec-Fetch-Site` when they know
/// it), so a request with none did not come from a page at another origin.
pub fn check_origin(headers: &HeaderMap, public_url: &str) -> Result<(), AppError> {
    let refused = || {
        AppError::CsrfRejected(
            "cross-origin request refused: it must come from calsync's own pages",
        )
    };
    let header_value = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if header_value(header::HeaderName::from_static("sec-fetch-site"))
        .is_some_and(|v| v == "cross-site")
    {
        return Err(refused());
    }
    let claimed = match (header_value(header::ORIGIN), header_value(header::REFERER)) {
        (Some(origin), _) => origin,
        (None, Some(referer)) => origin_of(referer),
        (None, None) => return Ok(()),
    };
    let host = header_value(header::HOST);
    let same_host = host.is_some_and(|h| {
        claimed
            .split_once("://")
            .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(h))
    });
    if claimed.eq_ignore_ascii_case(origin_of(public_url)) || same_host {
        Ok(())
    } else {
        Err(refused())
    }
}

/// Compares the token the request carries with the session's, in constant time.
pub fn check_token(sent: Option<&str>, expected: &str) -> Result<(), AppError> {
    match sent {
        Some(sent) if bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) => Ok(()),
        Some(_) => Err(AppError::CsrfRejected("the CSRF token does not match this session; reload the page")),
        None => Err(AppError::CsrfRejected(
            "missing CSRF token: send the calsync_csrf cookie's value in X-CSRF-Token, or use a bearer token",
        )),
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after_scheme + i);
    &url[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderName, HeaderValue};

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn same_origin_passes_and_other_origins_do_not() {
        let own = "https://cal.example.com";
        assert!(check_origin(
            &headers(&[(header::ORIGIN, "https://cal.example.com")]),
            own
        )
        .is_ok());
        assert!(check_origin(
            &headers(&[(header::REFERER, "https://cal.example.com/settings?x=1")]),
            own
        )
        .is_ok());
        assert!(check_origin(&headers(&[(header::ORIGIN, "https://evil.example")]), own).is_err());
        assert!(check_origin(
            &headers(&[(header::ORIGIN, "https://cal.example.com.evil.example")]),
            own
        )
        .is_err());
        assert!(check_origin(&headers(&[(header::ORIGIN, "null")]), own).is_err());
        assert!(check_origin(
            &headers(&[(header::REFERER, "http://cal.example.com/")]),
            own
        )
        .is_err());
        let by_host = headers(&[
            (header::ORIGIN, "http://127.0.0.1:8000"),
            (header::HOST, "127.0.0.1:8000"),
        ]);
        assert!(check_origin(&by_host, own).is_ok());
        let forged = headers(&[
            (header::ORIGIN, "https://cal.example.com"),
            (HeaderName::from_static("sec-fetch-site"), "cross-site"),
        ]);
        assert!(check_origin(&forged, own).is_err());
    }

    #[test]
    fn tokens_must_match() {
        assert!(check_token(Some("abc"), "abc").is_ok());
        assert!(check_token(Some("abd"), "abc").is_err());
        assert!(check_token(None, "abc").is_err());
    }
}
