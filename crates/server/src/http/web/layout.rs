//! The page frame (head, navigation, flash message, live indicator), the
//! embedded static assets, and the headers every page carries: a strict
//! Content-Security-Policy (no inline script or style at all) and no caching
//! of pages that hold a CSRF token.

use std::sync::LazyLock;

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};

use super::forms::Flash;
use super::html::{csrf_field, escape};
use crate::http::auth::SessionUser;

/// The one stylesheet (light and dark schemes, phone widths).
pub const APP_CSS: &str = include_str!("../../../static/app.css");
/// The one script: live updates over SSE and fetch-submitted calendar forms.
pub const LIVE_JS: &str = include_str!("../../../static/live.js");

/// Pages may load only their own script, styles, images and connections.
pub const CSP: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A content hash in the assets' URLs: they can be cached for a year, and a
/// new binary's assets get new URLs.
static ASSET_VERSION: LazyLock<String> = LazyLock::new(|| {
    let digest = Sha256::new()
        .chain_update(APP_CSS)
        .chain_update(LIVE_JS)
        .finalize();
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
});

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
        .into_response()
}

/// `GET /static/app.css`.
pub async fn app_css() -> Response {
    asset(APP_CSS, "text/css; charset=utf-8")
}

/// `GET /static/live.js`.
pub async fn live_js() -> Response {
    asset(LIVE_JS, "text/javascript; charset=utf-8")
}

/// Adds the CSP to every page answer, and keeps pages (which embed the
/// session's CSRF token and personal data) out of shared caches.
pub async fn page_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache"),
        );
    }
    response
}

/// Which navigation entry is the current page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Dashboard,
    Settings,
    None,
}

/// A whole page: head, navigation (when logged in), the flash message and `main`.
pub fn page(
    title: &str,
    user: Option<&SessionUser>,
    nav: Nav,
    flash: Option<&Flash>,
    main: &str,
) -> String {
    let version = ASSET_VERSION.as_str();
    let current = |which: Nav| {
        if which == nav {
            " aria-current=\"page\""
        } else {
            ""
        }
    };
    let (header, script, csrf_meta) = match user {
        Some(u) => (
            format!(
                "<header class=\"top\"><nav aria-label=\"Main\">\
                 <a class=\"brand\" href=\"/\">calsync</a>\
                 <a href=\"/\"{}>Dashboard</a><a href=\"/settings\"{}>Settings</a>\
                 <span id=\"live-status\" class=\"live-status\" role=\"status\" hidden></span>\
                 <form method=\"post\" action=\"/logout\" class=\"logout\">{}\
                 <button type=\"submit\" class=\"link\">Log out</button></form></nav></header>",
                current(Nav::Dashboard),
                current(Nav::Settings),
                csrf_field(&u.csrf_token)
            ),
            format!("<script src=\"/static/live.js?v={version}\" defer></script>"),
            format!(
                "<meta name=\"csrf-token\" content=\"{}\">",
                escape(&u.csrf_token)
            ),
        ),
        None => (
            "<header class=\"top\"><nav aria-label=\"Main\"><a class=\"brand\" href=\"/\">calsync</a></nav></header>"
                .to_owned(),
            String::new(),
            String::new(),
        ),
    };
    let flash = flash.map_or(String::new(), Flash::html);
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\">{csrf_meta}\
         <title>{} · calsync</title>\
         <link rel=\"stylesheet\" href=\"/static/app.css?v={version}\">{script}</head>\
         <body><a class=\"skip\" href=\"#main\">Skip to content</a>{header}\
         <main id=\"main\" tabindex=\"-1\"><div id=\"flash\" aria-live=\"polite\">{flash}</div>{main}</main>\
         </body></html>",
        escape(title)
    )
}
