//! The HTML pages a browser sees during authorization: the consent page
//! (pick an account, Allow / Deny) and Google's non-redirecting error page for
//! a bad client or redirect URI.
//!
//! Rendering only: no decisions, no state changes. Element ids (`allow`,
//! `deny`, `account-<n>`, `email`) are stable so browser tests can click them.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::util::html_escape;

pub struct ConsentView<'a> {
    pub request_id: &'a str,
    pub client_id: &'a str,
    pub scopes: &'a [String],
    pub accounts: &'a [(String, String)],
    pub preselect: Option<&'a str>,
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#202124}\
h1{font-size:1.4rem}ul{padding-left:1.2rem}.box{border:1px solid #dadce0;border-radius:8px;padding:1.5rem}\
label{display:block;margin:.4rem 0}button{font-size:1rem;padding:.5rem 1.4rem;margin-right:.6rem;border-radius:4px;cursor:pointer}\
#allow{background:#1a73e8;color:#fff;border:0}#deny{background:#fff;border:1px solid #dadce0}\
.note{color:#5f6368;font-size:.85rem}";

pub fn consent_page(v: &ConsentView<'_>) -> Response {
    let mut accounts = String::new();
    let preselect = v.preselect.map(str::to_ascii_lowercase);
    let mut any_checked = false;
    for (n, (email, name)) in v.accounts.iter().enumerate() {
        let checked = match &preselect {
            Some(p) => *p == email.to_ascii_lowercase(),
            None => n == 0,
        };
        any_checked |= checked;
        accounts.push_str(&format!(
            "<label><input type=\"radio\" name=\"account\" id=\"account-{n}\" value=\"{e}\"{c}> {nm} &lt;{e}&gt;</label>",
            e = html_escape(email),
            nm = html_escape(name),
            c = if checked { " checked" } else { "" },
        ));
    }
    let hint_value = match (&preselect, any_checked) {
        (Some(p), false) => html_escape(p),
        _ => String::new(),
    };
    let scopes: String = v
        .scopes
        .iter()
        .map(|s| format!("<li><code>{}</code></li>", html_escape(s)))
        .collect();
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in - Google Accounts (emulator)</title>\
<style>{STYLE}</style></head><body><div class=\"box\"><h1>Choose an account</h1>\
<p>to continue to <strong>{client}</strong></p>\
<form method=\"post\" action=\"/o/oauth2/v2/auth/decision\">\
<input type=\"hidden\" name=\"request\" value=\"{req}\">\
{accounts}\
<label>or another account: <input type=\"email\" name=\"email\" id=\"email\" value=\"{hint}\" placeholder=\"someone@example.com\"></label>\
<p>The app wants to:</p><ul>{scopes}</ul>\
<button type=\"submit\" name=\"decision\" value=\"allow\" id=\"allow\">Allow</button>\
<button type=\"submit\" name=\"decision\" value=\"deny\" id=\"deny\">Deny</button>\
</form><p class=\"note\">calsync provider emulator: no real Google account is involved.</p></div></body></html>",
        client = html_escape(v.client_id),
        req = html_escape(v.request_id),
        hint = hint_value,
    );
    Html(body).into_response()
}

/// Google's "Error 400: redirect_uri_mismatch" style page: the browser is not redirected.
pub fn error_page(status: StatusCode, error: &str, detail: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Error {code}: {err}</title>\
<style>{STYLE}</style></head><body><div class=\"box\"><h1>Access blocked: authorization error</h1>\
<p id=\"error\">Error {code}: {err}</p><p>{detail}</p></div></body></html>",
        code = status.as_u16(),
        err = html_escape(error),
        detail = html_escape(detail),
    );
    (status, Html(body)).into_response()
}
