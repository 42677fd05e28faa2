//! Identity and revocation (spec §1.6, §1.7): `/revoke` (grant-wide),
//! userinfo in its OIDC and v2 shapes, tokeninfo, and the OpenID discovery
//! document pointing at this emulator. Read-only except for revocation.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::calendar::bearer;
use crate::errors::{ApiError, OAuthError};
use crate::oauth::{first, ISSUER};
use crate::state::{AppState, Inner};
use crate::token::read_body;
use crate::util;

// ---------------------------------------------------------------- revoke, userinfo

pub(crate) async fn revoke(
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

pub(crate) async fn userinfo_oidc(
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

pub(crate) async fn userinfo_v2(
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

pub(crate) async fn tokeninfo(
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

pub(crate) async fn discovery(State(state): State<AppState>) -> Json<Value> {
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
