//! Error bodies exactly as Google sends them (spec §1.5 and §3.1).
//!
//! Two shapes exist: the Calendar API envelope `{"error": {code, message, errors[],
//! status, details?}}` ([`ApiError`]) and the OAuth token endpoint's flat
//! `{"error", "error_description"}` ([`OAuthError`]). Handlers return these and
//! never build error JSON by hand, so every error a client meets has the
//! provider's shape. This module must not decide *when* an error happens.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// A Calendar API error in Google's envelope (spec §3.1). Boxed: handlers
/// return it in `Result`s and it should stay one pointer wide.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} {}: {}", .0.status, .0.reason, .0.message)]
pub struct ApiError(Box<ApiErrorBody>);

/// The fields of an [`ApiError`].
#[derive(Debug, Clone)]
pub struct ApiErrorBody {
    pub status: StatusCode,
    pub domain: String,
    pub reason: String,
    pub message: String,
    pub location: Option<(String, &'static str)>,
    /// `Retry-After` header value in seconds (429 faults).
    pub retry_after: Option<u64>,
    /// `google.rpc.ErrorInfo` reason for `details[]` (newer responses carry it).
    pub info_reason: Option<&'static str>,
}

impl std::ops::Deref for ApiError {
    type Target = ApiErrorBody;
    fn deref(&self) -> &ApiErrorBody {
        &self.0
    }
}

impl std::ops::DerefMut for ApiError {
    fn deref_mut(&mut self) -> &mut ApiErrorBody {
        &mut self.0
    }
}

impl ApiError {
    pub fn new(status: StatusCode, domain: &str, reason: &str, message: impl Into<String>) -> Self {
        Self(Box::new(ApiErrorBody {
            status,
            domain: domain.to_owned(),
            reason: reason.to_owned(),
            message: message.into(),
            location: None,
            retry_after: None,
            info_reason: None,
        }))
    }

    pub fn at(mut self, location: &str, location_type: &'static str) -> Self {
        self.location = Some((location.to_owned(), location_type));
        self
    }

    /// 400 `invalid` on a query parameter.
    pub fn invalid_param(param: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "global", "invalid", message).at(param, "parameter")
    }

    pub fn bad_request(reason: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "global", reason, message)
    }

    pub fn time_range_empty() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "calendar",
            "timeRangeEmpty",
            "The specified time range is empty.",
        )
        .at("timeMax", "parameter")
    }

    pub fn unauthenticated() -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            "global",
            "authError",
            "Invalid Credentials",
        )
        .at("Authorization", "header");
        e.info_reason = Some("ACCESS_TOKEN_EXPIRED");
        e
    }

    pub fn insufficient_scope() -> Self {
        let mut e = Self::new(
            StatusCode::FORBIDDEN,
            "global",
            "insufficientPermissions",
            "Request had insufficient authentication scopes.",
        );
        e.info_reason = Some("ACCESS_TOKEN_SCOPE_INSUFFICIENT");
        e
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "global", "notFound", "Not Found")
    }

    pub fn duplicate() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "global",
            "duplicate",
            "The requested identifier already exists.",
        )
    }

    pub fn deleted() -> Self {
        Self::new(
            StatusCode::GONE,
            "global",
            "deleted",
            "Resource has been deleted",
        )
    }

    pub fn full_sync_required() -> Self {
        Self::new(
            StatusCode::GONE,
            "calendar",
            "fullSyncRequired",
            "Sync token is no longer valid, a full sync is required.",
        )
        .at("syncToken", "parameter")
    }

    pub fn updated_min_too_long_ago() -> Self {
        Self::new(
            StatusCode::GONE,
            "calendar",
            "updatedMinTooLongAgo",
            "The requested minimum modification time lies too far in the past.",
        )
        .at("updatedMin", "parameter")
    }

    pub fn condition_not_met() -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "global",
            "conditionNotMet",
            "Precondition Failed",
        )
        .at("If-Match", "header")
    }

    /// 403/429 rate limiting as Google sends it (ErrorInfo RATE_LIMIT_EXCEEDED).
    pub fn rate_limited(status: StatusCode, reason: &str) -> Self {
        let message = match reason {
            "userRateLimitExceeded" => "User Rate Limit Exceeded",
            "quotaExceeded" => "Calendar usage limits exceeded.",
            "dailyLimitExceeded" => "Daily Limit Exceeded",
            _ => "Rate Limit Exceeded",
        };
        let mut e = Self::new(status, "usageLimits", reason, message);
        e.info_reason = Some("RATE_LIMIT_EXCEEDED");
        e
    }

    pub fn backend_error(status: StatusCode) -> Self {
        Self::new(status, "global", "backendError", "Backend Error")
    }

    fn status_name(&self) -> Option<&'static str> {
        Some(match self.status.as_u16() {
            400 => "INVALID_ARGUMENT",
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            409 => "ALREADY_EXISTS",
            429 => "RESOURCE_EXHAUSTED",
            500 => "INTERNAL",
            503 => "UNAVAILABLE",
            // 410 and 412 come in the legacy shape without `status`.
            _ => return None,
        })
    }

    pub fn body(&self) -> Value {
        let mut item = json!({
            "domain": self.domain,
            "reason": self.reason,
            "message": self.message,
        });
        if let Some((loc, kind)) = &self.location {
            item["location"] = json!(loc);
            item["locationType"] = json!(kind);
        }
        let mut error = json!({
            "code": self.status.as_u16(),
            "message": self.message,
            "errors": [item],
        });
        if let Some(status) = self.status_name() {
            error["status"] = json!(status);
        }
        if let Some(info) = self.info_reason {
            error["details"] = json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": info,
                "domain": "googleapis.com",
                "metadata": {"service": "calendar-json.googleapis.com"},
            }]);
        }
        json!({ "error": error })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(
                    "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"",
                ),
            );
        }
        resp
    }
}

/// A token/revoke endpoint error: `{"error": ..., "error_description": ...}`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {error}: {description}")]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    pub retry_after: Option<u64>,
}

impl OAuthError {
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            retry_after: None,
        }
    }

    /// Revoked, expired or unknown refresh token (spec §1.5).
    pub fn grant_revoked() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Token has been expired or revoked.",
        )
    }

    /// Reused, expired or unknown authorization code; PKCE failures.
    pub fn bad_grant(description: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    pub fn invalid_request(description: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn unknown_client() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The OAuth client was not found.",
        )
    }

    pub fn wrong_secret() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", "Unauthorized")
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.description });
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}
