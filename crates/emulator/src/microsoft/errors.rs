//! Error bodies as Microsoft sends them (spec A1, A6).
//!
//! Graph: `{"error": {"code", "message", "innerError": {"date", "request-id",
//! "client-request-id"}}}` with `request-id` headers ([`GraphError`]). The
//! identity platform: flat `{"error", "error_description": "AADSTSnnnn: ...
//! Trace ID: ... Correlation ID: ... Timestamp: ...", "error_codes", "timestamp",
//! "trace_id", "correlation_id", "error_uri"}` ([`AadError`]). Handlers return
//! these and never build error JSON by hand; this module does not decide when
//! an error happens.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

fn guid() -> String {
    let b = crate::util::random_bytes(16);
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn now_text() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

/// A Microsoft Graph error.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct GraphError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// `Retry-After` seconds (429/503).
    pub retry_after: Option<u64>,
    /// `Location` header (410 resyncRequired).
    pub location: Option<String>,
}

impl GraphError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            retry_after: None,
            location: None,
        }
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ErrorInvalidParameter", message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    pub fn unauthenticated(message: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        )
    }

    pub fn access_denied() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.",
        )
    }

    pub fn item_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        )
    }

    pub fn sync_state_not_found() -> Self {
        Self::new(
            StatusCode::GONE,
            "SyncStateNotFound",
            "The sync state generation is not found; generation=149;[highest=157]",
        )
    }

    pub fn resync_required(location: String) -> Self {
        let mut e = Self::new(
            StatusCode::GONE,
            "resyncRequired",
            "Resync required. Replace any local data with the data from the new delta link.",
        );
        e.location = Some(location);
        e
    }

    pub fn sync_state_invalid() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidSyncStateData",
            "The SyncStateData is corrupt or otherwise invalid.",
        )
    }

    pub fn throttled(retry_after: Option<u64>) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Please retry again later.",
        );
        e.retry_after = retry_after;
        e
    }

    pub fn unavailable(retry_after: Option<u64>) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "Service Unavailable",
        );
        e.retry_after = retry_after;
        e
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let request_id = guid();
        let body = json!({"error": {
            "code": self.code,
            "message": self.message,
            "innerError": {
                "date": now_text(),
                "request-id": request_id,
                "client-request-id": request_id,
            },
        }});
        let mut resp = (self.status, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            h.insert("request-id", v.clone());
            h.insert("client-request-id", v);
        }
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                h.insert(header::RETRY_AFTER, v);
            }
        }
        if let Some(loc) = self.location.as_deref() {
            if let Ok(v) = HeaderValue::from_str(loc) {
                h.insert(header::LOCATION, v);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(
                    "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
                ),
            );
        }
        resp
    }
}

/// An identity platform (token endpoint) error.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {error}: AADSTS{code}: {description}")]
pub struct AadError {
    pub status: StatusCode,
    pub error: &'static str,
    pub code: u32,
    pub description: String,
    pub retry_after: Option<u64>,
}

impl AadError {
    pub fn new(
        status: StatusCode,
        error: &'static str,
        code: u32,
        description: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error,
            code,
            description: description.into(),
            retry_after: None,
        }
    }

    pub fn grant(code: u32, description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", code, description)
    }

    pub fn request(code: u32, description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            code,
            description,
        )
    }

    pub fn client(code: u32, description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            code,
            description,
        )
    }
}

impl IntoResponse for AadError {
    fn into_response(self) -> Response {
        let trace = guid();
        let correlation = guid();
        let ts = jiff::Timestamp::now();
        let body = json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {}",
                self.code, self.description, ts.strftime("%Y-%m-%d %H:%M:%SZ"),
            ),
            "error_codes": [self.code],
            "timestamp": ts.strftime("%Y-%m-%d %H:%M:%SZ").to_string(),
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        });
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}
