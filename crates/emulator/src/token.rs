//! The token endpoint (spec §1.3–§1.5): `authorization_code` with the
//! redirect_uri re-check and PKCE, `refresh_token` with expiry, idle and
//! revocation rules, client authentication (post or Basic), and the id_token.
//! Errors are Google's flat `{error, error_description}` JSON. Token values
//! are never logged.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};

use crate::errors::OAuthError;
use crate::oauth::{first, normalise_scope, ISSUER};
use crate::state::{AccessToken, AppState, Inner, RefreshToken};
use crate::util;

const TESTING_REFRESH_TTL_SECS: i64 = 7 * 24 * 3600;
const IDLE_LIMIT_SECS: i64 = 183 * 24 * 3600;
const MAX_REFRESH_TOKENS: usize = 100;

// ---------------------------------------------------------------- /token

/// Reads a form or JSON body into pairs (google-auth may send either).
pub(crate) fn read_body(headers: &HeaderMap, body: &str) -> Vec<(String, String)> {
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

pub(crate) async fn token(
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
    if let Some(map) = claims.as_object_mut() {
        for (name, value) in &inner.settings.id_token_claims {
            if value.is_null() {
                map.remove(name);
            } else {
                map.insert(name.clone(), value.clone());
            }
        }
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
