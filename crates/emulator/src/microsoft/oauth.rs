//! Microsoft identity platform v2 (spec A1): `/{tenant}/oauth2/v2.0/authorize`
//! with its consent page, and `/{tenant}/oauth2/v2.0/token` for the
//! `authorization_code` and `refresh_token` grants.
//!
//! Rules reproduced: tenant names (`common`, `organizations`, `consumers`, a
//! GUID or a domain), exact redirect_uri match (no redirect on mismatch,
//! AADSTS50011 page), `state` echoed, PKCE S256/plain (required unless
//! `require_pkce` is off), single-use ten-minute codes (AADSTS54005, 70008),
//! verifier check (AADSTS501481), client secret checks (AADSTS7000215/7000218,
//! 700025 for public clients), a refresh token only with `offline_access`, a
//! NEW refresh token on every refresh with the old one dead after use (switch:
//! `revoke_used_refresh_tokens`), idle expiry after 90 days (AADSTS700082).
//! There is no revocation endpoint, as with the real service. Tokens never
//! reach the request log (the token request has them in its body only).

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};

use super::errors::AadError;
use super::state::{AccessToken, Code, DeadReason, PendingAuth, RefreshToken, World};
use crate::oauth::first;
use crate::state::{AppState, Inner};
use crate::util::{self, html_escape};

const CODE_TTL_SECS: i64 = 600;

/// Scopes the emulator knows, in Microsoft's spelling.
const KNOWN_SCOPES: &[&str] = &[
    "offline_access",
    "openid",
    "profile",
    "email",
    "User.Read",
    "Calendars.Read",
    "Calendars.ReadBasic",
    "Calendars.ReadWrite",
];
const GRAPH: &str = "https://graph.microsoft.com/";

fn valid_tenant(t: &str) -> bool {
    matches!(t, "common" | "organizations" | "consumers")
        || (t.len() == 36 && t.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
        || (t.contains('.')
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'))
}

/// Short or resource-qualified name → Microsoft's spelling; `.default` → the
/// app's "configured" read scopes.
fn normalise(s: &str) -> Option<Vec<&'static str>> {
    let short = s.strip_prefix(GRAPH).unwrap_or(s);
    if short == ".default" {
        return Some(vec!["User.Read", "Calendars.Read"]);
    }
    KNOWN_SCOPES
        .iter()
        .find(|k| k.eq_ignore_ascii_case(short))
        .map(|k| vec![*k])
}

fn redirect(location: &str) -> Response {
    let mut resp = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// Sends the browser back with `pairs`, in the requested response mode.
fn respond(redirect_uri: &str, mode: &str, pairs: &[(&str, &str)]) -> Response {
    match mode {
        "fragment" => redirect(&format!("{redirect_uri}#{}", util::build_query(pairs))),
        "form_post" => {
            let inputs: String = pairs
                .iter()
                .map(|(k, v)| {
                    format!(
                        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                        html_escape(k),
                        html_escape(v)
                    )
                })
                .collect();
            Html(format!(
                "<!doctype html><html><body onload=\"document.forms[0].submit()\"><form method=\"post\" action=\"{}\">{inputs}<noscript><button>Continue</button></noscript></form></body></html>",
                html_escape(redirect_uri)
            ))
            .into_response()
        }
        _ => redirect(&util::append_query(redirect_uri, pairs)),
    }
}

fn redirect_error(p: &PendingAuth, error: &str, code: u32, description: &str) -> Response {
    let desc = format!("AADSTS{code}: {description}");
    let mut pairs = vec![("error", error), ("error_description", desc.as_str())];
    if let Some(s) = p.state.as_deref() {
        pairs.push(("state", s));
    }
    respond(&p.redirect_uri, &p.response_mode, &pairs)
}

/// The "Sorry, but we're having trouble signing you in" page: no redirect.
fn error_page(status: StatusCode, code: u32, message: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in to your account (emulator)</title></head>\
<body><h1>Sorry, but we're having trouble signing you in.</h1><p id=\"error\">AADSTS{code}: {}</p></body></html>",
        html_escape(message)
    );
    (status, Html(body)).into_response()
}

pub(crate) async fn authorize(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = util::parse_form(raw.as_deref().unwrap_or(""));
    let mut inner = state.lock();
    if !valid_tenant(&tenant) {
        return error_page(
            StatusCode::BAD_REQUEST,
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    }
    let Some(client) = first(&q, "client_id")
        .and_then(|id| inner.clients.get(id))
        .cloned()
    else {
        return error_page(
            StatusCode::BAD_REQUEST,
            700016,
            "Application with the given identifier was not found in the directory.",
        );
    };
    let Some(redirect_uri) =
        first(&q, "redirect_uri").filter(|r| client.redirect_uris.iter().any(|u| u == r))
    else {
        return error_page(
            StatusCode::BAD_REQUEST,
            50011,
            &format!(
                "The redirect URI specified in the request does not match the redirect URIs configured for the application '{}'.",
                client.client_id
            ),
        );
    };
    let mut pending = PendingAuth {
        tenant,
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        scopes: Vec::new(),
        state: first(&q, "state").map(str::to_owned),
        response_mode: first(&q, "response_mode").unwrap_or("query").to_owned(),
        code_challenge: None,
        login_hint: first(&q, "login_hint").map(str::to_owned),
        nonce: first(&q, "nonce").map(str::to_owned),
        created: inner.now(),
    };
    if !matches!(
        pending.response_mode.as_str(),
        "query" | "fragment" | "form_post"
    ) {
        pending.response_mode = "query".into();
        return redirect_error(
            &pending,
            "invalid_request",
            900144,
            "Invalid response_mode.",
        );
    }
    if first(&q, "response_type") != Some("code") {
        return redirect_error(
            &pending,
            "unsupported_response_type",
            70005,
            "The provided value for the input parameter 'response_type' is not allowed for this request. Expected value: 'code'.",
        );
    }
    let Some(scope_text) = first(&q, "scope") else {
        return redirect_error(
            &pending,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
        );
    };
    for s in scope_text.split_whitespace() {
        match normalise(s) {
            Some(list) => {
                for n in list {
                    if !pending.scopes.iter().any(|x| x == n) {
                        pending.scopes.push(n.to_owned());
                    }
                }
            }
            None => {
                return redirect_error(
                    &pending,
                    "invalid_scope",
                    70011,
                    &format!("The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid: '{s}'."),
                )
            }
        }
    }
    match first(&q, "code_challenge") {
        Some(ch) => {
            let method = first(&q, "code_challenge_method").unwrap_or("plain");
            if method != "S256" && method != "plain" {
                return redirect_error(
                    &pending,
                    "invalid_request",
                    501491,
                    "Invalid size of Code_Challenge parameter or unsupported code_challenge_method.",
                );
            }
            pending.code_challenge = Some((ch.to_owned(), method.to_owned()));
        }
        None if inner.ms.settings.require_pkce => {
            return redirect_error(
                &pending,
                "invalid_request",
                9002325,
                "Proof Key for Code Exchange is required for cross-origin authorization code redemption.",
            );
        }
        None => {}
    }
    let prompt = first(&q, "prompt").unwrap_or("");
    if prompt == "none" {
        let Some(ix) = pick_account(&mut inner.ms, pending.login_hint.as_deref(), None, false)
        else {
            return redirect_error(
                &pending,
                "login_required",
                50058,
                "A silent sign-in request was sent but no user is signed in.",
            );
        };
        let key = (inner.ms.accounts[ix].id.clone(), pending.client_id.clone());
        let covered = inner
            .ms
            .grants
            .get(&key)
            .is_some_and(|g| pending.scopes.iter().all(|s| g.contains(s)));
        if !covered {
            return redirect_error(
                &pending,
                "consent_required",
                65001,
                "The user or administrator has not consented to use the application.",
            );
        }
        return finish(&mut inner, pending, ix);
    }
    if inner.settings.auto_approve {
        if std::mem::take(&mut inner.settings.deny_next_consent) {
            return redirect_error(
                &pending,
                "access_denied",
                65004,
                "User declined to consent to access the app.",
            );
        }
        let Some(ix) = pick_account(&mut inner.ms, pending.login_hint.as_deref(), None, true)
        else {
            return error_page(
                StatusCode::BAD_REQUEST,
                50034,
                "The user account does not exist (the emulator has no Microsoft account).",
            );
        };
        return finish(&mut inner, pending, ix);
    }
    let request_id = util::random_token(18);
    let page = consent_page(&inner.ms, &request_id, &pending);
    let cutoff = inner
        .now()
        .checked_sub(SignedDuration::from_hours(1))
        .unwrap_or(pending.created);
    inner.ms.pending.retain(|_, p| p.created > cutoff);
    inner.ms.pending.insert(request_id, pending);
    page
}

/// `login_hint` or the tester's choice (an unknown email becomes a new
/// account when `create`), else the first account.
fn pick_account(
    ms: &mut World,
    hint: Option<&str>,
    chosen: Option<&str>,
    create: bool,
) -> Option<usize> {
    if let Some(email) = chosen.or(hint) {
        if let Some(ix) = ms.account_ix(email) {
            return Some(ix);
        }
        if create && email.contains('@') {
            return Some(super::control::ensure_account(ms, email, None, None));
        }
    }
    (!ms.accounts.is_empty()).then_some(0)
}

fn consent_page(ms: &World, request_id: &str, p: &PendingAuth) -> Response {
    let hint = p.login_hint.as_deref().map(str::to_ascii_lowercase);
    let accounts: String = ms
        .accounts
        .iter()
        .enumerate()
        .map(|(n, a)| {
            let checked = match &hint {
                Some(h) => a.upn.eq_ignore_ascii_case(h),
                None => n == 0,
            };
            format!(
                "<label><input type=\"radio\" name=\"account\" id=\"account-{n}\" value=\"{e}\"{c}> {nm} &lt;{e}&gt;</label>",
                e = html_escape(&a.upn),
                nm = html_escape(&a.display_name),
                c = if checked { " checked" } else { "" },
            )
        })
        .collect();
    let scopes: String = p
        .scopes
        .iter()
        .map(|s| format!("<li><code>{}</code></li>", html_escape(s)))
        .collect();
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Permissions requested - Microsoft (emulator)</title>\
<style>body{{font-family:'Segoe UI',system-ui,sans-serif;max-width:30rem;margin:3rem auto;padding:0 1rem}}button{{padding:.5rem 1.4rem;margin-right:.6rem}}#allow{{background:#0067b8;color:#fff;border:0}}</style></head>\
<body><h1>Permissions requested</h1><p><strong>{client}</strong> wants to:</p><ul>{scopes}</ul>\
<form method=\"post\" action=\"/{tenant}/oauth2/v2.0/authorize\"><input type=\"hidden\" name=\"request\" value=\"{req}\">{accounts}\
<label>or another account: <input type=\"email\" name=\"email\" id=\"email\" placeholder=\"someone@contoso.example\"></label>\
<p><button type=\"submit\" name=\"decision\" value=\"allow\" id=\"allow\">Accept</button>\
<button type=\"submit\" name=\"decision\" value=\"deny\" id=\"deny\">Cancel</button></p></form>\
<p>calsync provider emulator: no real Microsoft account is involved.</p></body></html>",
        client = html_escape(&p.client_id),
        tenant = html_escape(&p.tenant),
        req = html_escape(request_id),
    ))
    .into_response()
}

/// The consent form's target (POST to the authorize URL).
pub(crate) async fn decision(State(state): State<AppState>, body: String) -> Response {
    let form = util::parse_form(&body);
    let mut inner = state.lock();
    let Some(pending) = first(&form, "request").and_then(|id| inner.ms.pending.remove(id)) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            50196,
            "This sign-in request has expired. Start again.",
        );
    };
    let denied = first(&form, "decision") != Some("allow")
        || std::mem::take(&mut inner.settings.deny_next_consent);
    if denied {
        return redirect_error(
            &pending,
            "access_denied",
            65004,
            "User declined to consent to access the app.",
        );
    }
    let chosen = first(&form, "email").or_else(|| first(&form, "account"));
    let Some(ix) = pick_account(&mut inner.ms, pending.login_hint.as_deref(), chosen, true) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            50034,
            "Choose an account or enter an email address.",
        );
    };
    finish(&mut inner, pending, ix)
}

fn finish(inner: &mut Inner, pending: PendingAuth, ix: usize) -> Response {
    let account_id = inner.ms.accounts[ix].id.clone();
    let now = inner.now();
    inner
        .ms
        .grants
        .entry((account_id.clone(), pending.client_id.clone()))
        .or_default()
        .extend(pending.scopes.iter().cloned());
    let code = format!("M.C540_BAY.2.U.{}", util::random_token(48));
    inner.ms.codes.retain(|_, c| c.expires_at > now);
    inner.ms.codes.insert(
        code.clone(),
        Code {
            client_id: pending.client_id.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            account_id,
            scopes: pending.scopes.clone(),
            code_challenge: pending.code_challenge.clone(),
            nonce: pending.nonce.clone(),
            expires_at: now
                .checked_add(SignedDuration::from_secs(CODE_TTL_SECS))
                .unwrap_or(now),
            redeemed: false,
        },
    );
    let session = util::random_token(16);
    let mut pairs = vec![("code", code.as_str())];
    if let Some(s) = pending.state.as_deref() {
        pairs.push(("state", s));
    }
    pairs.push(("session_state", &session));
    respond(&pending.redirect_uri, &pending.response_mode, &pairs)
}

// ---------------------------------------------------------------- token

pub(crate) async fn token(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let form = util::parse_form(&body);
    let mut inner = state.lock();
    match token_inner(&mut inner, &tenant, &headers, &form) {
        Ok(v) => {
            let mut resp = Json(v).into_response();
            resp.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store, no-cache"),
            );
            resp
        }
        Err(e) => e.into_response(),
    }
}

fn missing(param: &str) -> AadError {
    AadError::request(
        900144,
        format!("The request body must contain the following parameter: '{param}'."),
    )
}

/// client_id/secret from the body or HTTP Basic.
fn client_auth(headers: &HeaderMap, form: &[(String, String)]) -> (Option<String>, Option<String>) {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(a, b)| (util::pct_decode(a), util::pct_decode(b)))
        });
    match basic {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (
            first(form, "client_id").map(str::to_owned),
            first(form, "client_secret").map(str::to_owned),
        ),
    }
}

fn token_inner(
    inner: &mut Inner,
    tenant: &str,
    headers: &HeaderMap,
    form: &[(String, String)],
) -> Result<Value, AadError> {
    if !valid_tenant(tenant) {
        return Err(AadError::request(
            90002,
            format!("Tenant '{tenant}' not found."),
        ));
    }
    let grant_type = first(form, "grant_type").ok_or_else(|| missing("grant_type"))?;
    let (client_id, secret) = client_auth(headers, form);
    let client_id = client_id.ok_or_else(|| missing("client_id"))?;
    let client = inner.clients.get(&client_id).cloned().ok_or_else(|| {
        AadError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!("Application with identifier '{client_id}' was not found in the directory."),
        )
    })?;
    match (client.client_secret.is_empty(), secret.as_deref()) {
        (true, Some(_)) => {
            return Err(AadError::new(
                StatusCode::BAD_REQUEST,
                "invalid_client",
                700025,
                "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
            ))
        }
        (false, None) => {
            return Err(AadError::client(
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            ))
        }
        (false, Some(s)) if s != client.client_secret => {
            return Err(AadError::client(
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
            ))
        }
        _ => {}
    }
    let now = inner.now();
    let (account_id, scopes, nonce, old_rt) = match grant_type {
        "authorization_code" => {
            let code_text = first(form, "code").ok_or_else(|| missing("code"))?;
            let code =
                inner.ms.codes.get_mut(code_text).ok_or_else(|| {
                    AadError::grant(70000, "Provided grant is invalid or malformed.")
                })?;
            if code.redeemed {
                return Err(AadError::grant(54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token."));
            }
            if code.expires_at <= now {
                return Err(AadError::grant(70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource."));
            }
            if code.client_id != client_id {
                return Err(AadError::grant(
                    70000,
                    "Provided grant is invalid or malformed.",
                ));
            }
            if first(form, "redirect_uri") != Some(code.redirect_uri.as_str()) {
                return Err(AadError::grant(500112, "The reply address does not match the reply address provided when requesting Authorization code."));
            }
            if let Some((challenge, method)) = &code.code_challenge {
                let verifier = first(form, "code_verifier").ok_or_else(|| {
                    AadError::grant(501481, "The Code_Verifier is missing; a code_challenge was supplied in the authorization request.")
                })?;
                let derived = if method == "S256" {
                    util::s256(verifier)
                } else {
                    verifier.to_owned()
                };
                if &derived != challenge {
                    return Err(AadError::grant(501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request."));
                }
            }
            code.redeemed = true;
            (
                code.account_id.clone(),
                code.scopes.clone(),
                code.nonce.clone(),
                None,
            )
        }
        "refresh_token" => {
            let text = first(form, "refresh_token").ok_or_else(|| missing("refresh_token"))?;
            let idle = SignedDuration::from_hours(24 * inner.ms.settings.refresh_idle_days);
            let rt = inner.ms.refresh_tokens.get(text).ok_or_else(|| {
                AadError::grant(9002313, "Invalid request. Request is malformed or invalid.")
            })?;
            if rt.client_id != client_id {
                return Err(AadError::grant(
                    70000,
                    "Provided grant is invalid or malformed.",
                ));
            }
            let dead = rt.dead.or_else(|| {
                rt.last_used_at
                    .checked_add(idle)
                    .ok()
                    .filter(|limit| *limit <= now)
                    .map(|_| DeadReason::Inactive)
            });
            if let Some(reason) = dead {
                return Err(dead_error(
                    reason,
                    rt.issued_at,
                    inner.ms.settings.refresh_idle_days,
                ));
            }
            (
                rt.account_id.clone(),
                rt.scopes.clone(),
                None,
                Some(text.to_owned()),
            )
        }
        other => {
            return Err(AadError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70003,
                format!("The app requested an unsupported grant type '{other}'."),
            ))
        }
    };
    if let Some(old) = old_rt {
        let revoke = inner.ms.settings.revoke_used_refresh_tokens;
        if let Some(rt) = inner.ms.refresh_tokens.get_mut(&old) {
            rt.last_used_at = now;
            if revoke {
                rt.dead = Some(DeadReason::Rotated);
            }
        }
    }
    issue(
        inner,
        &client_id,
        &client.client_secret,
        tenant,
        &account_id,
        scopes,
        nonce,
    )
}

fn dead_error(reason: DeadReason, issued: Timestamp, idle_days: i64) -> AadError {
    match reason {
        DeadReason::Expired => AadError::grant(70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource."),
        DeadReason::Inactive => AadError::grant(700082, format!(
            "The refresh token has expired due to inactivity. The token was issued on {} and was inactive for {idle_days}.00:00:00.",
            issued.strftime("%Y-%m-%dT%H:%M:%S%.7fZ"))),
        DeadReason::Revoked => AadError::grant(50173, "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password."),
        DeadReason::ConsentRequired => AadError::grant(65001, "The user or administrator has not consented to use the application. Send an interactive authorization request for this user and resource."),
        DeadReason::InteractionRequired => AadError::new(StatusCode::BAD_REQUEST, "interaction_required", 50076, "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access the resource."),
        DeadReason::Rotated => AadError::grant(70000, "The provided refresh token was already redeemed and replaced by a newer one (emulator: revoke_used_refresh_tokens)."),
    }
}

fn issue(
    inner: &mut Inner,
    client_id: &str,
    client_secret: &str,
    tenant: &str,
    account_id: &str,
    scopes: Vec<String>,
    nonce: Option<String>,
) -> Result<Value, AadError> {
    let now = inner.now();
    let ttl = inner.ms.settings.access_token_ttl_secs;
    let access = format!("EwBYA8l6BAAU{}", util::random_token(96));
    inner.ms.access_tokens.retain(|_, t| t.expires_at > now);
    inner.ms.access_tokens.insert(
        access.clone(),
        AccessToken {
            account_id: account_id.to_owned(),
            client_id: client_id.to_owned(),
            scopes: scopes.clone(),
            expires_at: now
                .checked_add(SignedDuration::from_secs(ttl))
                .unwrap_or(now),
        },
    );
    let shown: Vec<&str> = scopes
        .iter()
        .map(String::as_str)
        .filter(|s| *s != "offline_access")
        .collect();
    let mut v = json!({
        "token_type": "Bearer",
        "scope": shown.join(" "),
        "expires_in": ttl,
        "ext_expires_in": ttl,
        "access_token": access,
    });
    if scopes.iter().any(|s| s == "offline_access") && !inner.ms.settings.omit_refresh_token {
        let refresh = format!("0.ARoA{}", util::random_token(120));
        inner.ms.refresh_tokens.insert(
            refresh.clone(),
            RefreshToken {
                account_id: account_id.to_owned(),
                client_id: client_id.to_owned(),
                scopes: scopes.clone(),
                issued_at: now,
                last_used_at: now,
                dead: None,
            },
        );
        v["refresh_token"] = json!(refresh);
    }
    if scopes.iter().any(|s| s == "openid") {
        let account = inner
            .ms
            .account_by_id(account_id)
            .ok_or_else(|| AadError::grant(50034, "The user account does not exist."))?;
        let mut claims = json!({
            "ver": "2.0",
            "iss": format!("https://login.microsoftonline.com/{}/v2.0", super::TENANT_ID),
            "sub": account.id,
            "aud": client_id,
            "exp": now.as_second() + 3600,
            "iat": now.as_second(),
            "nbf": now.as_second(),
            "name": account.display_name,
            "preferred_username": account.upn,
            "oid": account.id,
            "tid": super::TENANT_ID,
            "requested_tenant": tenant,
        });
        if scopes.iter().any(|s| s == "email") {
            if let Some(mail) = &account.mail {
                claims["email"] = json!(mail);
            }
        }
        if let Some(n) = nonce {
            claims["nonce"] = json!(n);
        }
        let key = if client_secret.is_empty() {
            "emulator"
        } else {
            client_secret
        };
        let head = util::b64url(br#"{"typ":"JWT","alg":"HS256","kid":"emulator"}"#);
        let payload = util::b64url(claims.to_string().as_bytes());
        let signing = format!("{head}.{payload}");
        let sig = util::b64url(&util::hmac_sha256(key.as_bytes(), signing.as_bytes()));
        v["id_token"] = json!(format!("{signing}.{sig}"));
    }
    Ok(v)
}

/// OpenID discovery for `/{tenant}/v2.0/.well-known/openid-configuration`.
pub(crate) async fn discovery(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Json<Value> {
    let b = &state.base_url;
    Json(json!({
        "issuer": format!("https://login.microsoftonline.com/{}/v2.0", super::TENANT_ID),
        "authorization_endpoint": format!("{b}/{tenant}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{b}/{tenant}/oauth2/v2.0/token"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "id_token_signing_alg_values_supported": ["HS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "code_challenge_methods_supported": ["plain", "S256"],
    }))
}
