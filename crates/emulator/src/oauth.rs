//! Google's OAuth 2.0 web-server flow and identity endpoints (spec §1):
//! `/o/oauth2/v2/auth` (+ the consent decision), `/token` (authorization_code
//! with PKCE, refresh_token), `/revoke`, userinfo (OIDC and v2), tokeninfo,
//! and the OpenID discovery document.
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
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};

use crate::calendar::bearer;
use crate::consent::{self, ConsentView};
use crate::errors::{ApiError, OAuthError};
use crate::state::{AccessToken, AppState, AuthCode, Inner, PendingAuth, RefreshToken};
use crate::util;

pub const ISSUER: &str = "https://accounts.google.com";
const SCOPE: &str = "https://www.googleapis.com/auth/";
const CODE_TTL_SECS: i64 = 600;
const TESTING_REFRESH_TTL_SECS: i64 = 7 * 24 * 3600;
const IDLE_LIMIT_SECS: i64 = 183 * 24 * 3600;
const MAX_REFRESH_TOKENS: usize = 100;

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
        .route("/token", post(token))
        .route("/oauth2/v4/token", post(token))
        .route("/revoke", post(revoke))
        .route("/o/oauth2/revoke", get(revoke).post(revoke))
        .route("/v1/userinfo", get(userinfo_oidc))
        .route("/oauth2/v3/userinfo", get(userinfo_oidc))
        .route("/oauth2/v2/userinfo", get(userinfo_v2))
        .route("/tokeninfo", get(tokeninfo).post(tokeninfo))
        .route(
            "/oauth2/v3/certs",
            get(|| async { Json(json!({"keys": []})) }),
        )
        .route("/.well-known/openid-configuration", get(discovery))
}

/// `email` and `profile` are granted under their long names, as Google reports them.
fn normalise_scope(s: &str) -> Option<String> {
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

fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
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

// ---------------------------------------------------------------- /token

/// Reads a form or JSON body into pairs (google-auth may send either).
fn read_body(headers: &HeaderMap, body: &str) -> Vec<(String, String)> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));
    if is_json {
        match serde_json::from_str::<Value>(body) {
            Ok(Value::Object(m)) => m
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, v)
                })
                .collect(),
            _ => Vec::new(),
        }
    } else {
        util::parse_form(body)
    }
}

/// client_secret_basic or client_secret_post.
fn client_credentials(
    headers: &HeaderMap,
    form: &[(String, String)],
) -> (Option<String>, Option<String>) {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(i, p)| (util::pct_decode(i), util::pct_decode(p)))
        });
    match basic {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (
            first(form, "client_id").map(str::to_owned),
            first(form, "client_secret").map(str::to_owned),
        ),
    }
}

async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: String,
) -> Result<Response, OAuthError> {
    let form = read_body(&headers, &body);
    let (client_id, secret) = client_credentials(&headers, &form);
    let mut inner = state.lock();
    let client_id = client_id.ok_or_else(|| {
        OAuthError::invalid_request("Could not determine client ID from request.")
    })?;
    let client = inner
        .clients
        .get(&client_id)
        .cloned()
        .ok_or_else(OAuthError::unknown_client)?;
    if !client.client_secret.is_empty() {
        match secret {
            None => return Err(OAuthError::invalid_request("client_secret is missing.")),
            Some(s) if s != client.client_secret => return Err(OAuthError::wrong_secret()),
            Some(_) => {}
        }
    }
    let resp = match first(&form, "grant_type") {
        Some("authorization_code") => exchange_code(&mut inner, &client, &form)?,
        Some("refresh_token") => refresh(&mut inner, &client, &form)?,
        Some(other) => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!("Invalid grant_type: {other}"),
            ))
        }
        None => {
            return Err(OAuthError::invalid_request(
                "Required parameter is missing: grant_type",
            ))
        }
    };
    let mut resp = Json(resp).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, max-age=0, must-revalidate"),
    );
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

fn exchange_code(
    inner: &mut Inner,
    client: &crate::OAuthClient,
    form: &[(String, String)],
) -> Result<Value, OAuthError> {
    let code = first(form, "code")
        .ok_or_else(|| OAuthError::invalid_request("Missing required parameter: code"))?;
    // Single use: the code is gone whatever happens next.
    let grant = inner
        .codes
        .remove(code)
        .ok_or_else(|| OAuthError::bad_grant("Bad Request"))?;
    let now = inner.now();
    if grant.expires_at <= now || grant.client_id != client.client_id {
        return Err(OAuthError::bad_grant("Bad Request"));
    }
    if first(form, "redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "redirect_uri_mismatch",
            "Bad Request",
        ));
    }
    if let Some((challenge, method)) = &grant.code_challenge {
        let verifier = first(form, "code_verifier")
            .ok_or_else(|| OAuthError::bad_grant("Missing code verifier."))?;
        let ok = match method.as_str() {
            "S256" => util::s256(verifier) == *challenge,
            _ => verifier == challenge,
        };
        if !ok {
            return Err(OAuthError::bad_grant("Invalid code verifier."));
        }
    }
    if inner.account_by_sub(&grant.sub).is_none() {
        return Err(OAuthError::bad_grant("Bad Request"));
    }
    let mut out = issue_access(inner, &grant.sub, &client.client_id, &grant.scopes);
    if grant.issue_refresh {
        let (token, expires_in) =
            issue_refresh(inner, &grant.sub, &client.client_id, &grant.scopes);
        out["refresh_token"] = json!(token);
        if let Some(secs) = expires_in {
            out["refresh_token_expires_in"] = json!(secs);
        }
    }
    if grant.scopes.iter().any(|s| s == "openid") {
        out["id_token"] = json!(id_token(inner, &grant.sub, client, grant.nonce.as_deref()));
    }
    Ok(out)
}

fn refresh(
    inner: &mut Inner,
    client: &crate::OAuthClient,
    form: &[(String, String)],
) -> Result<Value, OAuthError> {
    let token = first(form, "refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("Missing required parameter: refresh_token"))?;
    let now = inner.now();
    let rt = inner
        .refresh_tokens
        .get(token)
        .cloned()
        .ok_or_else(OAuthError::grant_revoked)?;
    if rt.client_id != client.client_id {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "Unauthorized",
        ));
    }
    let idle = now.as_second() - rt.last_used_at.as_second();
    if rt.expires_at.is_some_and(|e| e <= now)
        || idle > IDLE_LIMIT_SECS
        || inner.account_by_sub(&rt.sub).is_none()
    {
        inner.refresh_tokens.remove(token);
        return Err(OAuthError::grant_revoked());
    }
    let scopes = match first(form, "scope") {
        Some(requested) => {
            let wanted: Vec<String> = requested
                .split_whitespace()
                .filter_map(normalise_scope)
                .collect();
            if wanted.is_empty() || !wanted.iter().all(|s| rt.scopes.contains(s)) {
                return Err(OAuthError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    "Some requested scopes were invalid.",
                ));
            }
            wanted
        }
        None => rt.scopes.clone(),
    };
    if let Some(t) = inner.refresh_tokens.get_mut(token) {
        t.last_used_at = now;
    }
    let mut out = issue_access(inner, &rt.sub, &client.client_id, &scopes);
    if inner.settings.rotate_refresh_tokens {
        let (new, expires_in) = issue_refresh(inner, &rt.sub, &client.client_id, &rt.scopes);
        out["refresh_token"] = json!(new);
        if let Some(secs) = expires_in {
            out["refresh_token_expires_in"] = json!(secs);
        }
    }
    if scopes.iter().any(|s| s == "openid") {
        out["id_token"] = json!(id_token(inner, &rt.sub, client, None));
    }
    Ok(out)
}

fn issue_access(inner: &mut Inner, sub: &str, client_id: &str, scopes: &[String]) -> Value {
    let token = format!("ya29.{}", util::random_token(96));
    let ttl = inner.settings.access_token_ttl_secs;
    let now = inner.now();
    let expires_at = now
        .checked_add(SignedDuration::from_secs(ttl))
        .unwrap_or(now);
    inner
        .access_tokens
        .retain(|_, t| t.expires_at.as_second() + 86_400 > now.as_second());
    inner.access_tokens.insert(
        token.clone(),
        AccessToken {
            sub: sub.to_owned(),
            client_id: client_id.to_owned(),
            scopes: scopes.to_vec(),
            expires_at,
        },
    );
    json!({
        "access_token": token,
        "expires_in": ttl,
        "scope": scopes.join(" "),
        "token_type": "Bearer",
    })
}

/// Returns the new refresh token and, in testing mode, its lifetime.
fn issue_refresh(
    inner: &mut Inner,
    sub: &str,
    client_id: &str,
    scopes: &[String],
) -> (String, Option<i64>) {
    let now = inner.now();
    // At most 100 live refresh tokens per account and client: the oldest dies silently.
    let mut live: Vec<(String, Timestamp)> = inner
        .refresh_tokens
        .iter()
        .filter(|(_, t)| t.sub == sub && t.client_id == client_id)
        .map(|(k, t)| (k.clone(), t.issued_at))
        .collect();
    live.sort_by_key(|(_, at)| *at);
    while live.len() >= MAX_REFRESH_TOKENS {
        let (oldest, _) = live.remove(0);
        inner.refresh_tokens.remove(&oldest);
    }
    let testing = inner.settings.testing_mode;
    let token = format!("1//0{}", util::random_token(64));
    inner.refresh_tokens.insert(
        token.clone(),
        RefreshToken {
            sub: sub.to_owned(),
            client_id: client_id.to_owned(),
            scopes: scopes.to_vec(),
            issued_at: now,
            last_used_at: now,
            expires_at: testing.then(|| {
                now.checked_add(SignedDuration::from_secs(TESTING_REFRESH_TTL_SECS))
                    .unwrap_or(now)
            }),
        },
    );
    (token, testing.then_some(TESTING_REFRESH_TTL_SECS - 1))
}

/// An HS256 JWT keyed with the client secret (see the module header).
fn id_token(inner: &Inner, sub: &str, client: &crate::OAuthClient, nonce: Option<&str>) -> String {
    let now = inner.now().as_second();
    let account = inner.account_by_sub(sub);
    let email = account.map(|a| a.email.clone()).unwrap_or_default();
    let name = account.map(|a| a.name.clone()).unwrap_or_default();
    let mut claims = json!({
        "iss": ISSUER,
        "azp": client.client_id,
        "aud": client.client_id,
        "sub": sub,
        "email": email,
        "email_verified": true,
        "name": name,
        "iat": now,
        "exp": now + 3600,
    });
    if let Some(n) = nonce {
        claims["nonce"] = json!(n);
    }
    let header = json!({"alg": "HS256", "kid": "emulator", "typ": "JWT"});
    let signing_input = format!(
        "{}.{}",
        util::b64url(header.to_string().as_bytes()),
        util::b64url(claims.to_string().as_bytes())
    );
    let mac = util::hmac_sha256(client.client_secret.as_bytes(), signing_input.as_bytes());
    format!("{signing_input}.{}", util::b64url(&mac))
}

// ---------------------------------------------------------------- revoke, userinfo

async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: String,
) -> Response {
    let mut pairs = util::parse_form(raw.as_deref().unwrap_or(""));
    pairs.extend(read_body(&headers, &body));
    let mut inner = state.lock();
    let target = first(&pairs, "token").and_then(|t| {
        inner
            .access_tokens
            .get(t)
            .map(|a| (a.sub.clone(), a.client_id.clone()))
            .or_else(|| {
                inner
                    .refresh_tokens
                    .get(t)
                    .map(|r| (r.sub.clone(), r.client_id.clone()))
            })
    });
    match target {
        Some((sub, client_id)) => {
            inner.revoke_grant(&sub, &client_id);
            StatusCode::OK.into_response()
        }
        None => OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_token",
            "Token expired or revoked",
        )
        .into_response(),
    }
}

fn caller(inner: &Inner, headers: &HeaderMap) -> Result<(String, Vec<String>), ApiError> {
    let token = bearer(headers).ok_or_else(ApiError::unauthenticated)?;
    let at = inner
        .access_tokens
        .get(token)
        .ok_or_else(ApiError::unauthenticated)?;
    if at.expires_at <= inner.now() {
        return Err(ApiError::unauthenticated());
    }
    Ok((at.sub.clone(), at.scopes.clone()))
}

async fn userinfo_oidc(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let inner = state.lock();
    let (sub, scopes) = caller(&inner, &headers)?;
    let account = inner
        .account_by_sub(&sub)
        .ok_or_else(ApiError::unauthenticated)?;
    let mut v = json!({ "sub": sub });
    if scopes.iter().any(|s| s.ends_with("userinfo.email")) {
        v["email"] = json!(account.email);
        v["email_verified"] = json!(true);
    }
    if scopes.iter().any(|s| s.ends_with("userinfo.profile")) {
        v["name"] = json!(account.name);
        v["given_name"] = json!(account.name.split(' ').next().unwrap_or(""));
    }
    Ok(Json(v))
}

async fn userinfo_v2(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let inner = state.lock();
    let (sub, scopes) = caller(&inner, &headers)?;
    let account = inner
        .account_by_sub(&sub)
        .ok_or_else(ApiError::unauthenticated)?;
    let mut v = json!({ "id": sub });
    if scopes.iter().any(|s| s.ends_with("userinfo.email")) {
        v["email"] = json!(account.email);
        v["verified_email"] = json!(true);
    }
    if scopes.iter().any(|s| s.ends_with("userinfo.profile")) {
        v["name"] = json!(account.name);
    }
    Ok(Json(v))
}

async fn tokeninfo(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    body: String,
) -> Response {
    let mut pairs = util::parse_form(raw.as_deref().unwrap_or(""));
    pairs.extend(util::parse_form(&body));
    let inner = state.lock();
    let now = inner.now();
    let Some(at) = first(&pairs, "access_token")
        .and_then(|t| inner.access_tokens.get(t))
        .filter(|t| t.expires_at > now)
    else {
        return OAuthError::new(StatusCode::BAD_REQUEST, "invalid_token", "Invalid Value")
            .into_response();
    };
    let email = inner
        .account_by_sub(&at.sub)
        .map(|a| a.email.clone())
        .unwrap_or_default();
    let expires_in = at.expires_at.as_second() - now.as_second();
    Json(json!({
        "azp": at.client_id,
        "aud": at.client_id,
        "sub": at.sub,
        "scope": at.scopes.join(" "),
        "exp": at.expires_at.as_second().to_string(),
        "expires_in": expires_in.to_string(),
        "email": email,
        "email_verified": "true",
        "access_type": "offline",
    }))
    .into_response()
}

async fn discovery(State(state): State<AppState>) -> Json<Value> {
    let base = &state.base_url;
    Json(json!({
        "issuer": ISSUER,
        "authorization_endpoint": format!("{base}/o/oauth2/v2/auth"),
        "token_endpoint": format!("{base}/token"),
        "userinfo_endpoint": format!("{base}/v1/userinfo"),
        "revocation_endpoint": format!("{base}/revoke"),
        "jwks_uri": format!("{base}/oauth2/v3/certs"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["HS256"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": ["aud", "email", "email_verified", "exp", "iat", "iss", "name", "sub"],
        "code_challenge_methods_supported": ["plain", "S256"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
    }))
}
