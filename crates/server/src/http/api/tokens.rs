//! `GET/POST /api/tokens/` and `DELETE /api/tokens/<id>/`: the caller's API
//! tokens (design.md §8). Listings never carry a token or its hash; a new
//! token is in its creation's answer and nowhere else.
//!
//! Creating needs the browser session (with its CSRF token) or a bearer
//! token. One made with a bearer token is that token's child: it expires no
//! later than it, and revoking the parent revokes the child, so a leaked
//! token cannot leave tokens behind that outlive its revocation.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use calsync_store::ApiTokenInfo;
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::accounts::{self, hash_token};
use crate::http::api::rfc3339;
use crate::http::auth::ApiUser;
use crate::http::error::{AppError, ErrorBody};
use crate::http::extract::{Json, Path};
use crate::state::AppState;

/// An API token as listed: never the token itself or its hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiTokenJson {
    pub id: i64,
    pub name: String,
    pub created_at: String,
    /// The last request made with it (recorded at most once a minute).
    pub last_used_at: Option<String>,
    /// When it stops working; null: never.
    pub expires_at: Option<String>,
    /// True once `expires_at` has passed: it is refused like an unknown token.
    pub expired: bool,
    /// The token it was created with, if any: revoking that one revokes this one.
    pub parent_id: Option<i64>,
}

impl ApiTokenJson {
    fn new(info: ApiTokenInfo, now: jiff::Timestamp) -> Self {
        Self {
            expired: info.is_expired(now),
            id: info.id,
            name: info.name,
            created_at: rfc3339(info.created_at),
            last_used_at: info.last_used_at.map(rfc3339),
            expires_at: info.expires_at.map(rfc3339),
            parent_id: info.parent_id,
        }
    }
}

/// A new token's name and lifetime.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiTokenJson {
    /// 1 to 100 characters, to recognise it by.
    pub name: String,
    /// Days until it expires (1 to 3650); absent: it does not expire (made
    /// with a bearer token: it expires with that token).
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<u32>,
}

/// A token just created: the only answer that carries it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiTokenJson {
    pub id: i64,
    pub name: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub expires_at: Option<String>,
    pub expired: bool,
    pub parent_id: Option<i64>,
    /// The token, shown this once: send it as `Authorization: Bearer <token>`.
    pub token: String,
}

/// The bearer token of the request, as [`ApiUser`] read it.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The caller's API tokens, newest first, expired ones included.
#[utoipa::path(get, path = "/api/tokens/", tag = "tokens", operation_id = "list_tokens",
    responses((status = 200, body = Vec<ApiTokenJson>), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    user: ApiUser,
) -> Result<Json<Vec<ApiTokenJson>>, AppError> {
    let now = state.clock.now();
    let tokens = state.store.list_api_tokens(user.id).await?;
    Ok(Json(
        tokens
            .into_iter()
            .map(|t| ApiTokenJson::new(t, now))
            .collect(),
    ))
}

/// Creates an API token for the caller; the answer is the only place it is
/// shown. With a bearer token, the new one is its child: it expires no later
/// than it (`expires_in_days` is capped) and is revoked with it.
#[utoipa::path(post, path = "/api/tokens/", tag = "tokens", operation_id = "create_token",
    request_body = NewApiTokenJson,
    responses((status = 201, body = CreatedApiTokenJson), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "a bad name or lifetime, or too many tokens")))]
pub async fn create(
    State(state): State<AppState>,
    user: ApiUser,
    headers: HeaderMap,
    Json(body): Json<NewApiTokenJson>,
) -> Result<(StatusCode, Json<CreatedApiTokenJson>), AppError> {
    let now = state.clock.now();
    let parent = match bearer(&headers) {
        Some(token) => Some(
            state
                .store
                .api_token_for_hash(&hash_token(token), now)
                .await?
                .filter(|(owner, _)| *owner == user.id)
                .map(|(_, info)| info)
                .ok_or(AppError::Unauthenticated)?,
        ),
        None => None,
    };
    let created = accounts::create_api_token(
        &state.store,
        user.id,
        &body.name,
        body.expires_in_days,
        parent.as_ref(),
        now,
    )
    .await?;
    let info = ApiTokenJson::new(created.info, now);
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiTokenJson {
            id: info.id,
            name: info.name,
            created_at: info.created_at,
            last_used_at: info.last_used_at,
            expires_at: info.expires_at,
            expired: info.expired,
            parent_id: info.parent_id,
            token: created.token.expose_secret().to_owned(),
        }),
    ))
}

/// Revokes one of the caller's API tokens at once, and the tokens created
/// with it; 404 for an id that is not the caller's.
#[utoipa::path(delete, path = "/api/tokens/{id}/", tag = "tokens", operation_id = "revoke_token",
    params(("id" = i64, Path, description = "token id")),
    responses((status = 204, description = "revoked"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    accounts::revoke_api_token(&state.store, user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
