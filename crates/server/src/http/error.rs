//! The one place where failures become HTTP answers: a status that fits and
//! `{"error": {"code", "message"}}`. Messages never carry secrets; the full
//! source chain of server-side failures goes to the log, once.

use axum::extract::rejection::{FormRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use calsync_store::StoreError;
use serde::Serialize;

use crate::accounts::AccountError;
use crate::connect::ConnectError;
use crate::quotas::QuotaExceeded;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: the request is malformed.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 401: no valid session cookie or bearer token.
    #[error("authentication required: log in, or send Authorization: Bearer <api token>")]
    Unauthenticated,
    /// 403: a cookie-authenticated write without proof that it came from calsync's own pages.
    #[error("{0}")]
    CsrfRejected(&'static str),
    /// 404: absent, or somebody else's.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 405.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 413.
    #[error("the request body is too large (limit {0} bytes)")]
    PayloadTooLarge(usize),
    /// 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed, but the values do not make sense.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// 429.
    #[error("too many attempts; try again in {retry_after_secs} seconds")]
    RateLimited { retry_after_secs: u64 },
    /// 501: the path is part of the API, its provider work is not there yet.
    #[error("{0}")]
    NotImplemented(&'static str),
    /// 503: the provider needs configuration before it can be used.
    #[error("{0} is not configured on this server: set {1}")]
    ProviderNotConfigured(&'static str, &'static str),
    /// 502: the provider failed or refused.
    #[error("{0}")]
    BadGateway(String),
    /// 503: the database cannot be reached.
    #[error("the database is unavailable")]
    Unavailable,
    /// 503 from `/readyz`: the sync worker has not reported within its deadline.
    #[error("the sync worker is not running")]
    SyncWorkerDown,
    /// 500: a failure of the server itself; details are logged, not shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<QuotaExceeded> for AppError {
    fn from(err: QuotaExceeded) -> Self {
        Self::RateLimited {
            retry_after_secs: err.retry_after_secs,
        }
    }
}

impl From<ConnectError> for AppError {
    fn from(err: ConnectError) -> Self {
        use calsync_providers::ProviderError;
        match err {
            ConnectError::Quota(quota) => quota.into(),
            ConnectError::NotConfigured(missing) => {
                Self::ProviderNotConfigured(missing.name, missing.settings)
            }
            ConnectError::Store(store) => store.into(),
            ConnectError::Invalid(message) => Self::invalid("invalid_input", message),
            ConnectError::WrongPassword => Self::invalid("wrong_credentials", err.to_string()),
            ConnectError::InsecureUrl => Self::invalid("insecure_url", err.to_string()),
            ConnectError::Provider(
                ref provider @ (ProviderError::ForbiddenAddress { .. } | ProviderError::Setup(_)),
            ) => Self::invalid("invalid_url", provider.to_string()),
            other => Self::BadGateway(other.to_string()),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The body of every error answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, snake_case: what clients branch on.
    pub code: String,
    /// Human-readable, safe to show.
    pub message: String,
}

impl AppError {
    /// A 400 with its code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// A 422 with its code.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            Self::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            Self::CsrfRejected(_) => (StatusCode::FORBIDDEN, "csrf_failed"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::Invalid { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::NotImplemented(_) => (StatusCode::NOT_IMPLEMENTED, "not_implemented"),
            Self::ProviderNotConfigured(..) => {
                (StatusCode::SERVICE_UNAVAILABLE, "provider_not_configured")
            }
            Self::BadGateway(_) => (StatusCode::BAD_GATEWAY, "provider_error"),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::SyncWorkerDown => (StatusCode::SERVICE_UNAVAILABLE, "sync_worker_down"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status_and_code().0
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let Self::Internal(source) = &self {
            tracing::error!(error = %ErrorChain(source.as_ref()), "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message: self.to_string(),
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Self::RateLimited { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

/// Displays an error with all its sources, for the log.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(err) = source {
            write!(f, ": {err}")?;
            source = err.source();
        }
        Ok(())
    }
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => Self::NotFound("resource"),
            StoreError::Conflict(what) => Self::Conflict(format!("{what} already exists")),
            StoreError::NothingHeld => Self::Conflict(
                "nothing is held on this calendar: its removals were already applied or kept"
                    .to_owned(),
            ),
            err if err.is_unavailable() => Self::Unavailable,
            other => Self::Internal(Box::new(other)),
        }
    }
}

impl From<AccountError> for AppError {
    fn from(err: AccountError) -> Self {
        match err {
            AccountError::Store(store) => store.into(),
            AccountError::BadUsername | AccountError::BadPassword => {
                Self::invalid("invalid_credentials", err.to_string())
            }
            AccountError::UserExists(_) => Self::Conflict(err.to_string()),
            AccountError::NoSuchUser(_) => Self::NotFound("user"),
            AccountError::Hashing => Self::Internal(Box::new(err)),
        }
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => Self::invalid("invalid_body", e.body_text()),
            JsonRejection::JsonSyntaxError(e) => Self::bad_request("malformed_json", e.body_text()),
            JsonRejection::MissingJsonContentType(_) => Self::UnsupportedMediaType(
                "send the body as JSON with Content-Type: application/json".into(),
            ),
            other => body_rejection(other.status(), other.body_text()),
        }
    }
}

impl From<FormRejection> for AppError {
    fn from(rejection: FormRejection) -> Self {
        body_rejection(rejection.status(), rejection.body_text())
    }
}

fn body_rejection(status: StatusCode, text: String) -> AppError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge(crate::http::BODY_LIMIT),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => AppError::UnsupportedMediaType(text),
        _ => AppError::bad_request("bad_body", text),
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request("bad_query", rejection.body_text())
    }
}

impl From<PathRejection> for AppError {
    fn from(rejection: PathRejection) -> Self {
        Self::bad_request(
            "bad_id",
            format!("the id in the path is not valid: {}", rejection.body_text()),
        )
    }
}
