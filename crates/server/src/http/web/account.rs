//! The Settings sections about the user's own account and the forms they
//! post: "Account" (the email reminders go to), "API tokens" (list, create,
//! revoke), "Change password" and "Delete my account". Like every Settings
//! form they work without JavaScript (POST with the CSRF field, then 303
//! back to Settings with a flash message) and call the same services as
//! the API (`crate::accounts`). Two answers are pages instead of a
//! redirect: a new token is shown on a page of its own, once, never put in
//! a cookie; and a deleted account's goodbye, which also clears the
//! session cookies.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use calsync_store::ApiTokenInfo;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use super::forms::{
    error_flash, form_user, html_page, redirect_with, Flash, PageError, WebForm, WebPath,
    WebSession,
};
use super::html::{csrf_field, escape};
use super::layout::{page, Nav};
use super::settings::ago;
use crate::accounts::{self, Profile, TOKEN_NAME_MAX};
use crate::http::auth::{SessionUser, CSRF_COOKIE, SESSION_COOKIE};
use crate::state::AppState;

/// The lifetimes the token form offers, in days; `None`: never expires.
const LIFETIMES: &[(Option<u32>, &str)] = &[
    (Some(7), "7 days"),
    (Some(30), "30 days"),
    (Some(90), "90 days"),
    (Some(365), "1 year"),
    (None, "Never"),
];
/// The lifetime selected when the form opens.
const DEFAULT_LIFETIME: Option<u32> = Some(90);

/// A day in the user's zone: "7 Dec 2026".
fn day(at: Timestamp, tz: &TimeZone) -> String {
    at.to_zoned(tz.clone()).strftime("%-d %b %Y").to_string()
}

/// Every account section of Settings, in order.
pub async fn sections(
    state: &AppState,
    user: &SessionUser,
    now: Timestamp,
    tz: &TimeZone,
) -> Result<String, PageError> {
    let profile = accounts::profile(&state.store, user.id).await?;
    let tokens = state.store.list_api_tokens(user.id).await?;
    let csrf = user.csrf_token.as_str();
    Ok(format!(
        "{}{}{}{}",
        account_html(&profile, csrf),
        tokens_html(&tokens, csrf, now, tz),
        password_html(&profile, csrf),
        delete_html(&profile, csrf)
    ))
}

fn account_html(profile: &Profile, csrf: &str) -> String {
    format!(
        "<section class=\"card\" id=\"account\" aria-labelledby=\"account-title\"><h2 id=\"account-title\">Account</h2>\
         <p>Logged in as <strong id=\"account-username\">{}</strong>.</p>\
         <form method=\"post\" action=\"/settings/email\" class=\"row\">{}\
         <label for=\"email-input\">Email for reminders</label>\
         <input id=\"email-input\" name=\"email\" type=\"email\" value=\"{}\" maxlength=\"{}\" autocomplete=\"email\" \
         placeholder=\"name@example.com\" aria-describedby=\"email-hint\">\
         <button type=\"submit\">Save</button></form>\
         <p class=\"hint\" id=\"email-hint\">Where reminders go. Leave it empty to remove it.</p></section>",
        escape(&profile.username),
        csrf_field(csrf),
        escape(profile.email.as_deref().unwrap_or("")),
        accounts::EMAIL_MAX,
    )
}

fn token_html(token: &ApiTokenInfo, csrf: &str, now: Timestamp, tz: &TimeZone) -> String {
    let id = token.id;
    let used = token.last_used_at.map_or("never used".to_owned(), |t| {
        format!("last used {}", ago(now, t))
    });
    let (expires, class) = match token.expires_at {
        None => ("does not expire".to_owned(), ""),
        Some(at) if token.is_expired(now) => (format!("expired {}", day(at, tz)), " expired"),
        Some(at) => (format!("expires {}", day(at, tz)), ""),
    };
    let parent = token
        .parent_id
        .map_or(String::new(), |p| format!(", made with token {p}"));
    format!(
        "<li class=\"token{class}\" id=\"token-{id}\"><div><strong class=\"token-name\">{}</strong> \
         <span class=\"hint\">#{id}</span>\
         <p class=\"hint token-meta\">{}</p></div>\
         <details class=\"disconnect\"><summary>Revoke…</summary>\
         <p>Programs using this token lose access at once{}.</p>\
         <form method=\"post\" action=\"/settings/tokens/{id}/revoke\">{}\
         <button type=\"submit\" class=\"danger\" id=\"revoke-token-{id}\">Yes, revoke</button></form></details></li>",
        escape(&token.name),
        escape(&format!(
            "Created {}, {used}, {expires}{parent}",
            day(token.created_at, tz)
        )),
        if token.parent_id.is_none() {
            ", and so do tokens made with it"
        } else {
            ""
        },
        csrf_field(csrf),
    )
}

fn tokens_html(tokens: &[ApiTokenInfo], csrf: &str, now: Timestamp, tz: &TimeZone) -> String {
    let list = if tokens.is_empty() {
        "<p class=\"empty\" id=\"no-tokens\">No API tokens yet.</p>".to_owned()
    } else {
        let items: String = tokens
            .iter()
            .map(|t| token_html(t, csrf, now, tz))
            .collect();
        format!("<ul class=\"tokens\">{items}</ul>")
    };
    let options: String = LIFETIMES
        .iter()
        .map(|(days, label)| {
            format!(
                "<option value=\"{}\"{}>{label}</option>",
                days.map_or(String::new(), |d| d.to_string()),
                if *days == DEFAULT_LIFETIME {
                    " selected"
                } else {
                    ""
                }
            )
        })
        .collect();
    format!(
        "<section class=\"card\" id=\"api-tokens\" aria-labelledby=\"api-tokens-title\"><h2 id=\"api-tokens-title\">API tokens</h2>\
         <p class=\"hint\">A token lets a script or an app use calsync's API as you: it sends \
         <code>Authorization: Bearer &lt;token&gt;</code>. Each token is shown once, when it is created.</p>\
         {list}\
         <form method=\"post\" action=\"/settings/tokens\" class=\"stack new-token-form\">{}\
         <h3>Create a token</h3>\
         <label for=\"token-name\">Name</label>\
         <input id=\"token-name\" name=\"name\" maxlength=\"{TOKEN_NAME_MAX}\" required placeholder=\"e.g. backup script\" autocomplete=\"off\">\
         <label for=\"token-expiry\">Expires after</label>\
         <select id=\"token-expiry\" name=\"expires_in_days\">{options}</select>\
         <button type=\"submit\" class=\"primary\" id=\"create-token\">Create token</button></form></section>",
        csrf_field(csrf),
    )
}

fn password_html(profile: &Profile, csrf: &str) -> String {
    format!(
        "<section class=\"card\" id=\"password\" aria-labelledby=\"password-title\"><h2 id=\"password-title\">Change password</h2>\
         <form method=\"post\" action=\"/settings/password\" class=\"stack\">{}\
         <input type=\"hidden\" name=\"username\" value=\"{}\" autocomplete=\"username\">\
         <label for=\"current-password\">Current password</label>\
         <input id=\"current-password\" name=\"current_password\" type=\"password\" autocomplete=\"current-password\" required>\
         <label for=\"new-password\">New password</label>\
         <input id=\"new-password\" name=\"new_password\" type=\"password\" autocomplete=\"new-password\" minlength=\"8\" maxlength=\"1024\" required aria-describedby=\"new-password-hint\">\
         <label for=\"new-password-again\">New password again</label>\
         <input id=\"new-password-again\" name=\"new_password_again\" type=\"password\" autocomplete=\"new-password\" minlength=\"8\" maxlength=\"1024\" required>\
         <p class=\"hint\" id=\"new-password-hint\">At least 8 characters. Your other browsers are logged out; API tokens keep working.</p>\
         <button type=\"submit\" class=\"primary\" id=\"change-password\">Change password</button></form></section>",
        csrf_field(csrf),
        escape(&profile.username),
    )
}

fn delete_html(profile: &Profile, csrf: &str) -> String {
    format!(
        "<section class=\"card danger-zone\" id=\"delete-account\" aria-labelledby=\"delete-account-title\"><h2 id=\"delete-account-title\">Delete my account</h2>\
         <details><summary>Delete my account…</summary>\
         <p>This deletes your account and everything calsync keeps for you: every connected calendar and its events, \
         your API tokens and your sessions. calsync first revokes its access at Google where it can. It cannot be undone.</p>\
         <form method=\"post\" action=\"/settings/delete-account\" class=\"stack\">{}\
         <label for=\"delete-username\">Type your username, <strong>{}</strong>, to confirm</label>\
         <input id=\"delete-username\" name=\"confirm_username\" autocomplete=\"off\" spellcheck=\"false\" required>\
         <label for=\"delete-password\">Password</label>\
         <input id=\"delete-password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\" class=\"danger\" id=\"confirm-delete-account\">Delete my account and all its data</button></form>\
         </details></section>",
        csrf_field(csrf),
        escape(&profile.username),
    )
}

/// The email form.
#[derive(Deserialize)]
pub struct EmailForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    email: String,
}

/// `POST /settings/email`.
pub async fn set_email(
    State(state): State<AppState>,
    session: WebSession,
    WebForm(form): WebForm<EmailForm>,
) -> Response {
    let user = match form_user(session, &form.csrf_token) {
        Ok(user) => user,
        Err(refused) => return refused.into_response(),
    };
    let flash = match accounts::update_profile(&state, user.id, Some(Some(&form.email)), None).await
    {
        Ok(Profile {
            email: Some(email), ..
        }) => Flash::ok(format!("Reminders will go to {email}.")),
        Ok(_) => Flash::ok("Your email address was removed."),
        Err(err) => error_flash(err),
    };
    redirect_with(&state, "/settings#account", flash)
}

/// The token form.
#[derive(Deserialize)]
pub struct NewTokenForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    name: String,
    /// Days, or empty for a token that does not expire.
    #[serde(default)]
    expires_in_days: String,
}

/// `POST /settings/tokens`: creates a token and shows it on a page of its
/// own, this once (never in a redirect's cookie), not to be cached.
pub async fn create_token(
    State(state): State<AppState>,
    session: WebSession,
    WebForm(form): WebForm<NewTokenForm>,
) -> Response {
    let user = match form_user(session, &form.csrf_token) {
        Ok(user) => user,
        Err(refused) => return refused.into_response(),
    };
    let days = match form.expires_in_days.trim() {
        "" => None,
        text => match text.parse::<u32>() {
            Ok(days) => Some(days),
            Err(_) => {
                return redirect_with(
                    &state,
                    "/settings#api-tokens",
                    Flash::error("Choose when the token expires."),
                )
            }
        },
    };
    let now = state.clock.now();
    let created = match accounts::create_api_token(
        &state.store,
        user.id,
        &form.name,
        days,
        None,
        now,
    )
    .await
    {
        Ok(created) => created,
        Err(err) => return redirect_with(&state, "/settings#api-tokens", error_flash(err)),
    };
    let tz = match accounts::profile(&state.store, user.id).await {
        Ok(profile) => super::dashboard::zone(&profile.timezone),
        Err(_) => TimeZone::UTC,
    };
    let expires = created.info.expires_at.map_or(
        "It does not expire; revoke it in Settings when it is no longer needed.".to_owned(),
        |at| format!("It expires on {}.", day(at, &tz)),
    );
    let main = format!(
        "<div class=\"page-head\"><h1>New API token</h1></div>\
         <section class=\"card new-token\" id=\"new-token\" aria-labelledby=\"new-token-title\">\
         <h2 id=\"new-token-title\">{}</h2>\
         <p class=\"notice ok\" role=\"status\">Copy the token now: calsync keeps only a fingerprint of it and cannot show it again.</p>\
         <label for=\"new-token-value\">Token</label>\
         <input id=\"new-token-value\" class=\"token-value\" value=\"{}\" readonly autofocus autocomplete=\"off\" spellcheck=\"false\" aria-describedby=\"new-token-hint\">\
         <p class=\"hint\" id=\"new-token-hint\">Select it and copy it. Send it as <code>Authorization: Bearer &lt;token&gt;</code>. {}</p>\
         <p><a class=\"button primary\" href=\"/settings#api-tokens\" id=\"new-token-done\">Done</a></p></section>",
        escape(&created.info.name),
        escape(created.token.expose_secret()),
        escape(&expires),
    );
    let html = page("New API token", Some(&user), Nav::Settings, None, &main);
    let mut response = html_page(StatusCode::OK, html);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A form with only the CSRF token.
#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf_token: String,
}

/// `POST /settings/tokens/{id}/revoke`.
pub async fn revoke_token(
    State(state): State<AppState>,
    session: WebSession,
    WebPath(id): WebPath<i64>,
    WebForm(form): WebForm<CsrfOnly>,
) -> Response {
    let user = match form_user(session, &form.csrf_token) {
        Ok(user) => user,
        Err(refused) => return refused.into_response(),
    };
    let name = state
        .store
        .list_api_tokens(user.id)
        .await
        .ok()
        .and_then(|tokens| tokens.into_iter().find(|t| t.id == id))
        .map(|t| t.name);
    let flash = match accounts::revoke_api_token(&state.store, user.id, id).await {
        Ok(()) => Flash::ok(match name {
            Some(name) => format!("Revoked the API token {name}."),
            None => "Revoked the API token.".to_owned(),
        }),
        Err(err) => error_flash(err),
    };
    redirect_with(&state, "/settings#api-tokens", flash)
}

/// The password form.
#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password_again: String,
}

/// `POST /settings/password`: the other sessions end; this one stays.
pub async fn change_password(
    State(state): State<AppState>,
    session: WebSession,
    WebForm(form): WebForm<PasswordForm>,
) -> Response {
    let user = match form_user(session, &form.csrf_token) {
        Ok(user) => user,
        Err(refused) => return refused.into_response(),
    };
    let flash = if form.new_password != form.new_password_again {
        Flash::error("The two new passwords differ; nothing was changed.")
    } else {
        match accounts::change_password(
            &state.store,
            user.id,
            SecretString::from(form.current_password),
            SecretString::from(form.new_password),
            Some(&user.cookie_token),
        )
        .await
        {
            Ok(0) => Flash::ok("Password changed."),
            Ok(1) => Flash::ok("Password changed. Your other session was logged out."),
            Ok(n) => Flash::ok(format!(
                "Password changed. Your {n} other sessions were logged out."
            )),
            Err(err) => error_flash(err),
        }
    };
    redirect_with(&state, "/settings#password", flash)
}

/// The account deletion form.
#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    confirm_username: String,
    #[serde(default)]
    password: String,
}

/// `POST /settings/delete-account`: after the typed username and the
/// password, everything goes; the answer says goodbye and clears the
/// cookies.
pub async fn delete_account(
    State(state): State<AppState>,
    session: WebSession,
    WebForm(form): WebForm<DeleteForm>,
) -> Response {
    let user = match form_user(session, &form.csrf_token) {
        Ok(user) => user,
        Err(refused) => return refused.into_response(),
    };
    let deleted = accounts::delete_own_account(
        &state,
        user.id,
        &form.confirm_username,
        SecretString::from(form.password),
    )
    .await;
    if let Err(err) = deleted {
        return redirect_with(&state, "/settings#delete-account", error_flash(err));
    }
    let main = "<section class=\"narrow card\" id=\"account-deleted\"><h1>Account deleted</h1>\
         <p>Your account and everything calsync kept for you are gone.</p>\
         <p><a href=\"/login\">Log in with another account</a></p></section>";
    let mut response = html_page(
        StatusCode::OK,
        page("Account deleted", None, Nav::None, None, main),
    );
    for name in [SESSION_COOKIE, CSRF_COOKIE] {
        if let Ok(expired) =
            HeaderValue::try_from(format!("{name}=; Path=/; Max-Age=0; SameSite=Lax"))
        {
            response.headers_mut().append(header::SET_COOKIE, expired);
        }
    }
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn token(id: i64, name: &str, expires: Option<&str>) -> ApiTokenInfo {
        ApiTokenInfo {
            id,
            name: name.into(),
            created_at: "2026-12-01T10:00:00Z".parse().unwrap(),
            last_used_at: None,
            expires_at: expires.map(|e| e.parse().unwrap()),
            parent_id: None,
        }
    }

    #[test]
    fn tokens_are_listed_escaped_with_their_state_and_a_revoke_form() {
        let now: Timestamp = "2026-12-07T10:00:00Z".parse().unwrap();
        let tokens = [
            token(2, "<b>bot</b>", Some("2026-12-05T00:00:00Z")),
            token(1, "cli", None),
        ];
        let html = tokens_html(&tokens, "the-csrf", now, &TimeZone::UTC);
        assert!(html.contains("&lt;b&gt;bot&lt;/b&gt;") && !html.contains("<b>bot"));
        assert!(html.contains("class=\"token expired\" id=\"token-2\""));
        assert!(html.contains("expired 5 Dec 2026"));
        assert!(html.contains("does not expire"));
        assert!(html.contains("action=\"/settings/tokens/1/revoke\""));
        assert_eq!(html.matches("value=\"the-csrf\"").count(), 3);
        assert!(html.contains("<option value=\"90\" selected>"));
        assert!(tokens_html(&[], "x", now, &TimeZone::UTC).contains("id=\"no-tokens\""));
    }

    #[test]
    fn the_account_forms_carry_the_csrf_field_and_escape_the_user() {
        let profile = Profile {
            username: "a\"b".into(),
            email: Some("x@example.com".into()),
            timezone: "UTC".into(),
        };
        for html in [
            account_html(&profile, "c"),
            password_html(&profile, "c"),
            delete_html(&profile, "c"),
        ] {
            assert!(html.contains("name=\"csrf_token\" value=\"c\""), "{html}");
            assert!(
                html.contains("a&quot;b") && !html.contains("a\"b"),
                "{html}"
            );
        }
        assert!(account_html(&profile, "c").contains("value=\"x@example.com\""));
    }
}
