//! Google's OAuth 2.0 web-server flow (spec §1): the route table for all
//! OAuth and identity endpoints, and `/o/oauth2/v2/auth` with the consent
//! decision. The token endpoint lives in `token.rs`; revoke, userinfo,
//! tokeninfo and discovery in `identity.rs`.
//!
//! Rules reproduced: exact redirect_uri match (at /auth and again at /token),
//! single-use 10-minute codes, PKCE S256/plain, a refresh token only with
//! `access_type=offline` when consent was shown (first grant or
//! `prompt=consent`), grant-wide revocation, 7-day refresh tokens in testing
//! mode, 6-month idle expiry, 100 live refresh tokens per user and client.
//!
//! id_token: a JWT signed **HS256 with the client's secret** (`kid`
//! "emulator"); Google signs RS256, but a client that receives the id_token
//! straight from the token endpoint over TLS may skip verification (spec §1.7),
//! and HS256 lets a test verify it without a key server.
//! Tokens are never written to stderr or the request log.

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::SignedDuration;
use serde_json::json;

use crate::consent::{self, ConsentView};
use crate::state::{AppState, AuthCode, Inner, PendingAuth};
use crate::util;
use crate::{identity, token};

pub const ISSUER: &str = "https://accounts.google.com";
const SCOPE: &str = "https://www.googleapis.com/auth/";
const CODE_TTL_SECS: i64 = 600;

const CALENDAR_SCOPES: &[&str] = &[
    "calendar",
    "calendar.readonly",
    "calendar.events",
    "calendar.events.readonly",
    "calendar.events.owned",
    "calendar.events.owned.readonly",
    "calendar.events.public.readonly",
    "calendar.events.freebusy",
    "calendar.freebusy",
    "calendar.app.created",
    "calendar.calendarlist",
    "calendar.calendarlist.readonly",
    "calendar.calendars",
    "calendar.calendars.readonly",
    "calendar.settings.readonly",
    "calendar.acls",
    "calendar.acls.readonly",
    "userinfo.email",
    "userinfo.profile",
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/o/oauth2/v2/auth", get(authorize))
        .route("/o/oauth2/auth", get(authorize))
        .route("/o/oauth2/v2/auth/decision", post(decision))
        .route("/token", post(token::token))
        .route("/oauth2/v4/token", post(token::token))
        .route("/revoke", post(identity::revoke))
        .route(
            "/o/oauth2/revoke",
            get(identity::revoke).post(identity::revoke),
        )
        .route("/v1/userinfo", get(identity::userinfo_oidc))
        .route("/oauth2/v3/userinfo", get(identity::userinfo_oidc))
        .route("/oauth2/v2/userinfo", get(identity::userinfo_v2))
        .route(
            "/tokeninfo",
            get(identity::tokeninfo).post(identity::tokeninfo),
        )
        .route(
            "/oauth2/v3/certs",
            get(|| async { Json(json!({"keys": []})) }),
        )
        .route(
            "/.well-known/openid-configuration",
            get(identity::discovery),
        )
}

/// `email` and `profile` are granted under their long names, as Google reports them.
pub(crate) fn normalise_scope(s: &str) -> Option<String> {
    match s {
        "openid" => Some("openid".into()),
        "email" => Some(format!("{SCOPE}userinfo.email")),
        "profile" => Some(format!("{SCOPE}userinfo.profile")),
        other => {
            let short = other.strip_prefix(SCOPE)?;
            CALENDAR_SCOPES.contains(&short).then(|| other.to_owned())
        }
    }
}

pub(crate) fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn redirect(location: &str) -> Response {
    let mut resp = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn redirect_error(redirect_uri: &str, error: &str, state: Option<&str>) -> Response {
    let mut pairs = vec![("error", error)];
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    redirect(&util::append_query(redirect_uri, &pairs))
}

async fn authorize(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let q = util::parse_form(raw.as_deref().unwrap_or(""));
    let mut inner = state.lock();
    let Some(client) = first(&q, "client_id")
        .and_then(|id| inner.clients.get(id))
        .cloned()
    else {
        return consent::error_page(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The OAuth client was not found.",
        );
    };
    let Some(redirect_uri) =
        first(&q, "redirect_uri").filter(|r| client.redirect_uris.iter().any(|u| u == r))
    else {
        return consent::error_page(
            StatusCode::BAD_REQUEST,
            "redirect_uri_mismatch",
            "You can't sign in to this app because it doesn't comply with Google's OAuth 2.0 policy. \
             The redirect_uri does not match one registered for the client.",
        );
    };
    let redirect_uri = redirect_uri.to_owned();
    let state_param = first(&q, "state").map(str::to_owned);
    if first(&q, "response_type") != Some("code") {
        return redirect_error(
            &redirect_uri,
            "unsupported_response_type",
            state_param.as_deref(),
        );
    }
    let Some(scope_text) = first(&q, "scope") else {
        return consent::error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: scope",
        );
    };
    let mut scopes = Vec::new();
    for s in scope_text.split_whitespace() {
        match normalise_scope(s) {
            Some(n) if !scopes.contains(&n) => scopes.push(n),
            Some(_) => {}
            None => {
                return consent::error_page(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    &format!("Some requested scopes were invalid: {s}"),
                );
            }
        }
    }
    let code_challenge = match first(&q, "code_challenge") {
        Some(ch) => {
            let method = first(&q, "code_challenge_method").unwrap_or("plain");
            if method != "S256" && method != "plain" {
                return consent::error_page(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Invalid code_challenge_method.",
                );
            }
            Some((ch.to_owned(), method.to_owned()))
        }
        None => None,
    };
    let prompt: Vec<&str> = first(&q, "prompt")
        .map(|p| p.split_whitespace().collect())
        .unwrap_or_default();
    let mut pending = PendingAuth {
        client_id: client.client_id.clone(),
        redirect_uri,
        scopes,
        state: state_param,
        code_challenge,
        offline: first(&q, "access_type") == Some("offline"),
        prompt_consent: prompt.contains(&"consent"),
        login_hint: first(&q, "login_hint").map(str::to_owned),
        nonce: first(&q, "nonce").map(str::to_owned),
        include_granted: first(&q, "include_granted_scopes") == Some("true"),
        created: inner.now(),
    };
    if prompt.contains(&"none") {
        let Some(ix) = pick_account(&mut inner, pending.login_hint.as_deref(), None) else {
            return redirect_error(
                &pending.redirect_uri,
                "login_required",
                pending.state.as_deref(),
            );
        };
        let key = (inner.accounts[ix].sub.clone(), pending.client_id.clone());
        let covered = inner
            .grants
            .get(&key)
            .is_some_and(|g| pending.scopes.iter().all(|s| g.contains(s)));
        if !covered {
            return redirect_error(
                &pending.redirect_uri,
                "consent_required",
                pending.state.as_deref(),
            );
        }
        pending.prompt_consent = false;
        return finish(&mut inner, pending, ix, false);
    }

    if inner.settings.auto_approve {
        if std::mem::take(&mut inner.settings.deny_next_consent) {
            return redirect_error(
                &pending.redirect_uri,
                "access_denied",
                pending.state.as_deref(),
            );
        }
        let Some(ix) = pick_account(&mut inner, pending.login_hint.as_deref(), None) else {
            return consent::error_page(
                StatusCode::BAD_REQUEST,
                "no_account",
                "The emulator has no account to sign in with.",
            );
        };
        return finish(&mut inner, pending, ix, true);
    }

    let request_id = util::random_token(18);
    let accounts: Vec<(String, String)> = inner
        .accounts
        .iter()
        .map(|a| (a.email.clone(), a.name.clone()))
        .collect();
    let page = consent::consent_page(&ConsentView {
        request_id: &request_id,
        client_id: &pending.client_id,
        scopes: &pending.scopes,
        accounts: &accounts,
        preselect: pending.login_hint.as_deref(),
    });
    // Forget abandoned requests after an hour so the map cannot grow forever.
    let cutoff = inner
        .now()
        .checked_sub(SignedDuration::from_hours(1))
        .unwrap_or(pending.created);
    inner.pending.retain(|_, p| p.created > cutoff);
    inner.pending.insert(request_id, pending);
    page
}

/// `login_hint` (email or sub) or an explicit choice; else the first account.
/// An unknown email is created on the fly, as if the tester signed in with it.
fn pick_account(inner: &mut Inner, hint: Option<&str>, chosen: Option<&str>) -> Option<usize> {
    if let Some(email) = chosen.or(hint) {
        if let Some(ix) = inner.account_ix(email) {
            return Some(ix);
        }
        if email.contains('@') {
            return Some(inner.ensure_account(email, None));
        }
    }
    (!inner.accounts.is_empty()).then_some(0)
}

async fn decision(State(state): State<AppState>, body: String) -> Response {
    let form = util::parse_form(&body);
    let mut inner = state.lock();
    let Some(pending) = first(&form, "request").and_then(|id| inner.pending.remove(id)) else {
        return consent::error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "This sign-in request has expired. Start again.",
        );
    };
    let denied = first(&form, "decision") != Some("allow")
        || std::mem::take(&mut inner.settings.deny_next_consent);
    if denied {
        return redirect_error(
            &pending.redirect_uri,
            "access_denied",
            pending.state.as_deref(),
        );
    }
    let chosen = first(&form, "email").or_else(|| first(&form, "account"));
    let Some(ix) = pick_account(&mut inner, pending.login_hint.as_deref(), chosen) else {
        return consent::error_page(
            StatusCode::BAD_REQUEST,
            "no_account",
            "Choose an account or enter an email address.",
        );
    };
    finish(&mut inner, pending, ix, true)
}

/// Issues the code and redirects back to the client.
fn finish(inner: &mut Inner, pending: PendingAuth, ix: usize, interactive: bool) -> Response {
    let sub = inner.accounts[ix].sub.clone();
    let key = (sub.clone(), pending.client_id.clone());
    let dropped = inner.settings.drop_scopes.clone();
    let granted: Vec<String> = pending
        .scopes
        .iter()
        .filter(|s| {
            !dropped
                .iter()
                .any(|d| normalise_scope(d).as_deref() == Some(s.as_str()) || d == *s)
        })
        .cloned()
        .collect();
    let previous = inner.grants.get(&key).cloned();
    // The consent screen is shown for a first grant, for new scopes, or on prompt=consent.
    let consent_shown = interactive
        && (pending.prompt_consent
            || previous
                .as_ref()
                .is_none_or(|g| !granted.iter().all(|s| g.contains(s))));
    let entry = inner.grants.entry(key).or_default();
    entry.extend(granted.iter().cloned());
    let mut granted = granted;
    if pending.include_granted {
        for s in entry.iter() {
            if !granted.contains(s) {
                granted.push(s.clone());
            }
        }
    }
    let code = format!("4/0A{}", util::random_token(40));
    let now = inner.now();
    inner.codes.insert(
        code.clone(),
        AuthCode {
            client_id: pending.client_id.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            sub,
            scopes: granted.clone(),
            code_challenge: pending.code_challenge.clone(),
            issue_refresh: pending.offline && consent_shown && !inner.settings.omit_refresh_token,
            nonce: pending.nonce.clone(),
            expires_at: now
                .checked_add(SignedDuration::from_secs(CODE_TTL_SECS))
                .unwrap_or(now),
        },
    );
    inner.codes.retain(|_, c| c.expires_at > now);
    let scope = granted.join(" ");
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    if let Some(s) = pending.state.as_deref() {
        pairs.push(("state", s));
    }
    pairs.push(("code", &code));
    pairs.push(("scope", &scope));
    pairs.push(("authuser", "0"));
    pairs.push(("prompt", if consent_shown { "consent" } else { "none" }));
    redirect(&util::append_query(&pending.redirect_uri, &pairs))
}
