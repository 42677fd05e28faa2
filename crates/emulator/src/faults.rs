//! The middleware in front of every route: applies the `latency_ms` setting
//! to provider API requests, injected faults (error
//! status, `Retry-After`, delay, dropped connection), records the request
//! log, and wraps the framework's own plain-text errors (405, extractor
//! rejections) in Google's JSON envelope.
//!
//! The control API (`/_emulator/...`) is neither faulted nor logged, so a test
//! can always steer the emulator. Tokens never reach the log: queries are
//! redacted and only the account's email is recorded, not the Bearer token.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::calendar::bearer;
use crate::errors::{ApiError, OAuthError};
use crate::microsoft::{
    self,
    errors::{AadError, GraphError},
};
use crate::state::{AppState, Fault, LogEntry};
use crate::util;

pub async fn intercept(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if path.starts_with("/_emulator") {
        return envelope_plain_errors(next.run(req).await, &path).await;
    }
    let method = req.method().as_str().to_owned();
    let query = req
        .uri()
        .query()
        .map(util::redact_query)
        .unwrap_or_default();
    let (fault, account, token, latency) = {
        let mut inner = state.lock();
        let latency = if is_provider_api(&path) {
            inner.settings.draw_latency()
        } else {
            None
        };
        let presented = bearer(req.headers());
        let google = presented
            .and_then(|t| inner.access_tokens.get(t))
            .and_then(|t| inner.account_by_sub(&t.sub))
            .map(|a| a.email.clone());
        let ms_account = presented
            .and_then(|t| inner.ms.access_tokens.get(t))
            .and_then(|t| inner.ms.account_by_id(&t.account_id))
            .map(|a| a.upn.clone());
        let known = google.is_some() || ms_account.is_some();
        let token = presented.map(|t| {
            let kind = if known { "access" } else { "unknown" };
            format!("{kind}:{}", fingerprint(t))
        });
        (
            take_fault(&mut inner.faults, &method, &path),
            google.or(ms_account),
            token,
            latency,
        )
    };
    if let Some(ms) = latency {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    let response = match &fault {
        Some(f) => {
            if let Some(ms) = f.delay_ms {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            match f.status {
                _ if f.drop_connection => dropped_connection(),
                Some(status) => fault_response(f, status, &path),
                None => envelope_plain_errors(next.run(req).await, &path).await,
            }
        }
        None => envelope_plain_errors(next.run(req).await, &path).await,
    };

    let mut inner = state.lock();
    let time = util::rfc3339_millis(inner.now());
    inner.push_log(LogEntry {
        seq: 0,
        time,
        method,
        path,
        query,
        status: response.status().as_u16(),
        account,
        fault: fault.map(|f| f.id),
        token,
        latency_ms: latency,
    });
    response
}

/// The Calendar API and Graph: the requests `latency_ms` delays.
fn is_provider_api(path: &str) -> bool {
    path.starts_with("/calendar/v3/") || microsoft::is_graph_path(path)
}

/// A short, non-reversible name for a token, so a log can tell tokens apart.
fn fingerprint(token: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Consumes one use of the first fault matching the request.
fn take_fault(faults: &mut Vec<Fault>, method: &str, path: &str) -> Option<Fault> {
    let ix = faults.iter().position(|f| {
        f.count > 0
            && path.starts_with(&f.path_prefix)
            && f.method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
    })?;
    let fault = faults[ix].clone();
    faults[ix].count -= 1;
    if faults[ix].count == 0 {
        faults.remove(ix);
    }
    Some(fault)
}

/// A 200 whose body fails at once: hyper aborts the connection, and the
/// client sees a transport error after the headers (like a dropped link).
fn dropped_connection() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected dropped connection",
        ))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(axum::http::header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The error a fault answers with, in the shape of the endpoint it hits.
fn fault_response(f: &Fault, status: u16, path: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if microsoft::is_identity_path(path) {
        return microsoft_identity_fault(f, status).into_response();
    }
    if microsoft::is_graph_path(path) {
        return microsoft_graph_fault(f, status).into_response();
    }
    let oauth_endpoint = path.starts_with("/token")
        || path.starts_with("/oauth2/v4/token")
        || path.starts_with("/revoke");
    if oauth_endpoint {
        let error = match status.as_u16() {
            429 => "rate_limit_exceeded",
            503 => "temporarily_unavailable",
            s if s >= 500 => "internal_failure",
            _ => "invalid_request",
        };
        let mut e = OAuthError::new(status, error, "Injected fault");
        if let Some(reason) = &f.reason {
            e.description = reason.clone();
        }
        e.retry_after = f.retry_after;
        return e.into_response();
    }
    let mut e = match (status.as_u16(), f.reason.as_deref()) {
        (403 | 429, reason) => {
            ApiError::rate_limited(status, reason.unwrap_or("rateLimitExceeded"))
        }
        (401, _) => ApiError::unauthenticated(),
        (s, _) if s >= 500 => ApiError::backend_error(status),
        (_, reason) => ApiError::new(
            status,
            "global",
            reason.unwrap_or("invalid"),
            "Injected fault",
        ),
    };
    if let Some(reason) = &f.reason {
        e.reason = reason.clone();
    }
    e.retry_after = f.retry_after;
    e.into_response()
}

/// Errors produced by axum itself (a wrong method, a JSON body that does not
/// parse in the control API) come as plain text; clients expect Google's
/// envelope for every error, so they are rewrapped. A 405 becomes Google's
/// 404, since Google has no such route either.
async fn envelope_plain_errors(resp: Response, path: &str) -> Response {
    let status = resp.status();
    let is_json_or_html = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json") || ct.contains("html"));
    if !(status.is_client_error() || status.is_server_error()) || is_json_or_html {
        return resp;
    }
    if microsoft::is_graph_path(path) || path.starts_with("/_emulator/microsoft") {
        let text = axum::body::to_bytes(resp.into_body(), 64 * 1024)
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let (code, message) = match status {
            StatusCode::METHOD_NOT_ALLOWED => (
                "BadRequest",
                "The HTTP method is not supported for this resource.".to_owned(),
            ),
            s if s.is_server_error() => ("InternalServerError", text),
            _ => ("BadRequest", text),
        };
        return GraphError::new(
            if status == StatusCode::METHOD_NOT_ALLOWED {
                StatusCode::BAD_REQUEST
            } else {
                status
            },
            code,
            message,
        )
        .into_response();
    }
    if microsoft::is_identity_path(path) {
        if status == StatusCode::METHOD_NOT_ALLOWED {
            return AadError::request(
                900561,
                "The endpoint only accepts POST, OPTIONS requests. Received a GET request.",
            )
            .into_response();
        }
        let text = axum::body::to_bytes(resp.into_body(), 64 * 1024)
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        return AadError::new(
            status,
            "invalid_request",
            9002313,
            format!("Invalid request. {text}"),
        )
        .into_response();
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        return ApiError::not_found().into_response();
    }
    let text = axum::body::to_bytes(resp.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("Error").to_owned()
    } else {
        text
    };
    let reason = if status.is_server_error() {
        "backendError"
    } else {
        "invalid"
    };
    ApiError::new(status, "global", reason, message).into_response()
}

/// A fault on the token endpoint, as the identity platform answers.
fn microsoft_identity_fault(f: &Fault, status: StatusCode) -> AadError {
    let (error, code, text) = match status.as_u16() {
        429 | 503 => (
            "temporarily_unavailable",
            90033,
            "A transient error has occurred. Please try again.",
        ),
        s if s >= 500 => (
            "server_error",
            90033,
            "An internal error occurred. Please try again.",
        ),
        _ => ("invalid_request", 900144, "Injected fault"),
    };
    let mut e = AadError::new(
        status,
        error,
        code,
        f.reason.clone().unwrap_or_else(|| text.to_owned()),
    );
    e.retry_after = f.retry_after;
    e
}

/// A fault on a Graph route, in Graph's envelope.
fn microsoft_graph_fault(f: &Fault, status: StatusCode) -> GraphError {
    let mut e = match status.as_u16() {
        429 => GraphError::throttled(None),
        503 => GraphError::unavailable(None),
        401 => GraphError::unauthenticated("Lifetime validation failed, the token is expired."),
        410 => GraphError::sync_state_not_found(),
        504 => GraphError::new(status, "GatewayTimeout", "Gateway Timeout"),
        s if s >= 500 => GraphError::new(status, "InternalServerError", "Internal Server Error"),
        _ => GraphError::new(status, "BadRequest", "Injected fault"),
    };
    if let Some(reason) = &f.reason {
        e.code = reason.clone();
    }
    e.retry_after = f.retry_after;
    e
}
