//! Who is asking: a bearer API token or the browser session cookie.
//!
//! Cookie-authenticated writes must also pass [`csrf`](crate::http::csrf):
//! bearer tokens are never sent by a browser on its own, so they need no such
//! proof.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use calsync_core::model::UserId;

use crate::accounts::hash_token;
use crate::http::csrf;
use crate::http::error::AppError;
use crate::state::AppState;

/// The session cookie (HttpOnly).
pub const SESSION_COOKIE: &str = "calsync_session";
/// The CSRF cookie, readable by the page's scripts, echoed in `X-CSRF-Token`.
pub const CSRF_COOKIE: &str = "calsync_csrf";
/// The header that carries the CSRF token on API writes made with the cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The authenticated caller of an API route.
#[derive(Debug, Clone)]
pub struct ApiUser {
    pub id: UserId,
}

/// The authenticated caller of a page; `None` when not logged in.
#[derive(Debug, Clone)]
pub struct PageSession {
    pub user: Option<SessionUser>,
}

/// A logged-in browser session.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub id: UserId,
    pub csrf_token: String,
    /// The cookie's value, to end the session at logout.
    pub cookie_token: String,
}

/// The value of a cookie in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

async fn session_user(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<SessionUser>, AppError> {
    let Some(token) = cookie(headers, SESSION_COOKIE).filter(|t| !t.is_empty() && t.len() <= 128)
    else {
        return Ok(None);
    };
    let session = state
        .store
        .session(&hash_token(token), state.clock.now())
        .await?;
    Ok(session.map(|s| SessionUser {
        id: s.user_id,
        csrf_token: s.csrf_token,
        cookie_token: token.to_owned(),
    }))
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .filter(|t| !t.is_empty() && t.len() <= 256)
                .ok_or(AppError::Unauthenticated)?;
            let user = state
                .store
                .user_for_api_token(&hash_token(token), state.clock.now())
                .await?;
            return user.map(|id| Self { id }).ok_or(AppError::Unauthenticated);
        }
        let user = session_user(state, &parts.headers)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        if !is_safe(&parts.method) {
            csrf::check_origin(&parts.headers, &state.config.public_url)?;
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            csrf::check_token(sent, &user.csrf_token)?;
        }
        Ok(Self { id: user.id })
    }
}

impl FromRequestParts<AppState> for PageSession {
    type Rejection = AppError;

    /// Pages check the form's CSRF field themselves (it is in the body); the
    /// origin is checked here for every write.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if !is_safe(&parts.method) {
            csrf::check_origin(&parts.headers, &state.config.public_url)?;
        }
        Ok(Self {
            user: session_user(state, &parts.headers).await?,
        })
    }
}
