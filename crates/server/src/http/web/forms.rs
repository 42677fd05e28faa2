//! What page forms share: extractors whose failures answer as pages (never
//! JSON), the CSRF check of the hidden field, and the flash message that a
//! form's 303 redirect carries to the next page in a short-lived cookie.

use axum::extract::rejection::{FormRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::html::escape;
use super::layout::{page, Nav};
use crate::http::auth::{cookie, PageSession, SessionUser};
use crate::http::csrf;
use crate::http::error::{AppError, ErrorChain};
use crate::state::AppState;

/// The cookie that carries a flash message across a form's redirect.
pub const FLASH_COOKIE: &str = "calsync_flash";
/// Longest flash text kept: provider messages can be long.
const FLASH_MAX: usize = 400;

/// A failure of a page request, answered as a page with the message.
#[derive(Debug)]
pub struct PageError(pub AppError);

impl From<AppError> for PageError {
    fn from(err: AppError) -> Self {
        Self(err)
    }
}

impl From<calsync_store::StoreError> for PageError {
    fn from(err: calsync_store::StoreError) -> Self {
        Self(err.into())
    }
}

impl From<FormRejection> for PageError {
    fn from(rejection: FormRejection) -> Self {
        Self(rejection.into())
    }
}

impl From<PathRejection> for PageError {
    fn from(rejection: PathRejection) -> Self {
        Self(rejection.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let message = match &self.0 {
            AppError::Unauthenticated => return Redirect::to("/login").into_response(),
            AppError::CsrfRejected(_) => "This form could not be accepted: it did not come from \
                 this calsync page, or your session changed since the page was loaded. Go back, \
                 reload the page and try again."
                .to_owned(),
            AppError::Internal(_) | AppError::Unavailable => {
                if let AppError::Internal(source) = &self.0 {
                    tracing::error!(error = %ErrorChain(source.as_ref()), "page request failed");
                }
                "Something went wrong on the server. It has been logged; please try again in a \
                 moment."
                    .to_owned()
            }
            AppError::BadRequest { .. } | AppError::Invalid { .. } => format!(
                "That form was not filled in as expected ({}). Go back and try again.",
                self.0
            ),
            other => {
                let text = other.to_string();
                let mut chars = text.chars();
                chars
                    .next()
                    .map_or(text.clone(), |c| c.to_uppercase().chain(chars).collect())
                    + "."
            }
        };
        let body = format!(
            "<h1>Something went wrong</h1><p class=\"notice error\" role=\"alert\">{}</p>\
             <p><a href=\"/settings\">Back to Settings</a> · <a href=\"/\">Dashboard</a></p>",
            escape(&message)
        );
        (status, Html(page("Error", None, Nav::None, None, &body))).into_response()
    }
}

/// The browser session of a page request; cross-origin writes are refused
/// with a page, not JSON.
pub struct WebSession(pub Option<SessionUser>);

impl FromRequestParts<AppState> for WebSession {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let session = PageSession::from_request_parts(parts, state).await?;
        Ok(Self(session.user))
    }
}

/// A url-encoded form body; malformed ones answer with a page.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Form), rejection(PageError))]
pub struct WebForm<T>(pub T);

/// Path parameters; malformed ones answer with a page.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(PageError))]
pub struct WebPath<T>(pub T);

/// Why a form post is not carried out: not logged in, or its CSRF token does
/// not match the session's.
#[derive(Debug)]
pub enum Refused {
    Login,
    Forged(PageError),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Self::Login => Redirect::to("/login").into_response(),
            Self::Forged(err) => err.into_response(),
        }
    }
}

/// The logged-in user of a form post whose hidden `csrf_token` matches the
/// session's.
pub fn form_user(session: WebSession, sent_token: &str) -> Result<SessionUser, Refused> {
    let user = session.0.ok_or(Refused::Login)?;
    csrf::check_token(Some(sent_token), &user.csrf_token)
        .map_err(|e| Refused::Forged(PageError(e)))?;
    Ok(user)
}

/// A message for the next page: a success or an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    pub ok: bool,
    pub text: String,
}

impl Flash {
    pub fn ok(text: impl Into<String>) -> Self {
        Self {
            ok: true,
            text: text.into(),
        }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Self {
            ok: false,
            text: text.into(),
        }
    }

    /// The message as a paragraph; errors are announced at once.
    pub fn html(&self) -> String {
        let (class, role) = if self.ok {
            ("ok", "status")
        } else {
            ("error", "alert")
        };
        format!(
            "<p class=\"notice {class}\" role=\"{role}\">{}</p>",
            escape(&self.text)
        )
    }

    fn encode(&self) -> String {
        let text: String = self.text.chars().take(FLASH_MAX).collect();
        format!(
            "{}{}",
            if self.ok { 'o' } else { 'e' },
            URL_SAFE_NO_PAD.encode(text)
        )
    }

    fn decode(value: &str) -> Option<Self> {
        let ok = match value.get(..1)? {
            "o" => true,
            "e" => false,
            _ => return None,
        };
        let bytes = URL_SAFE_NO_PAD.decode(value.get(1..)?).ok()?;
        let text: String = String::from_utf8(bytes)
            .ok()?
            .chars()
            .take(FLASH_MAX)
            .collect();
        Some(Self { ok, text })
    }
}

/// The message a failed form action shows: the error's own (safe to show)
/// text, or for a failure of the server itself a hint, with the details
/// logged instead.
pub fn error_flash(err: AppError) -> Flash {
    match &err {
        AppError::Internal(source) => {
            tracing::error!(error = %ErrorChain(source.as_ref()), "form action failed");
            Flash::error("Something went wrong on the server. It has been logged; please try again in a moment.")
        }
        AppError::Unavailable => {
            Flash::error("The database is unavailable right now. Please try again in a moment.")
        }
        other => {
            let text = other.to_string();
            let mut chars = text.chars();
            let mut text: String = chars
                .next()
                .map_or(String::new(), |c| c.to_uppercase().chain(chars).collect());
            if !text.ends_with(['.', '!', '?']) {
                text.push('.');
            }
            Flash::error(text)
        }
    }
}

/// A 303 to `to` carrying `flash` to the page that follows.
pub fn redirect_with(state: &AppState, to: &str, flash: Flash) -> Response {
    let secure = if state.config.is_https() {
        "; Secure"
    } else {
        ""
    };
    let mut response = Redirect::to(to).into_response();
    if let Ok(value) = HeaderValue::try_from(format!(
        "{FLASH_COOKIE}={}; Path=/; Max-Age=60; HttpOnly; SameSite=Lax{secure}",
        flash.encode()
    )) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The flash message a redirect left, if any; [`shown`] clears it.
pub fn take_flash(headers: &HeaderMap) -> Option<Flash> {
    cookie(headers, FLASH_COOKIE).and_then(Flash::decode)
}

/// `response`, clearing the flash cookie when one was shown, so it shows once.
pub fn shown(mut response: Response, flash: Option<&Flash>) -> Response {
    if flash.is_some() {
        response.headers_mut().append(
            header::SET_COOKIE,
            HeaderValue::from_static("calsync_flash=; Path=/; Max-Age=0; SameSite=Lax"),
        );
    }
    response
}

/// A page, with its status.
pub fn html_page(status: StatusCode, html: String) -> Response {
    (status, Html(html)).into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn flashes_survive_the_cookie_and_nonsense_does_not() {
        let flash = Flash::error("Wrong password; \"try\" again <now>");
        assert_eq!(Flash::decode(&flash.encode()), Some(flash));
        assert_eq!(Flash::decode("x123"), None);
        assert_eq!(Flash::decode("o!!"), None);
        assert!(Flash::error("<b>").html().contains("&lt;b&gt;"));
    }
}
