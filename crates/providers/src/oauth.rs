//! Provider-neutral OAuth 2.0 pieces for the authorization-code flow with
//! PKCE (RFC 6749 §4.1, RFC 7636): verifier and S256 challenge, the random
//! `state`, the authorization URL, code exchange, refresh, revocation, and
//! reading an id_token's claims.
//!
//! The code exchange is sent exactly once: an authorization code is
//! single-use (RFC 6749 §4.1.2), so a retry after a 5xx or a timeout either
//! fails with `invalid_grant` or, worse, reaches a server that already
//! redeemed it and makes it revoke the tokens it issued (§10.5). The user
//! starts connecting again instead. Refreshes and revocations are retried.
//!
//! Identity: an id_token is read only as it comes straight from the token
//! endpoint over TLS, and its claims are checked before they are believed
//! ([`IdTokenCheck`]: `aud` is our client id, `iss` the provider's issuer,
//! `exp` not past), so a token endpoint that hands out someone else's
//! id_token (a misconfigured endpoint override, a token meant for another
//! client) is refused instead of naming the wrong account. Google's identity
//! comes from its checked id_token (no extra request); Microsoft's from
//! Graph `/me`, called with the access token anyway (calsync asks Microsoft
//! for no `openid` scope, and `/me` is authoritative for the user the token
//! acts for), so its id_token is never read.
//!
//! Never touches the database: the caller stores `state`, the verifier and the
//! tokens (sealed). Tokens, codes, verifiers and the client secret are
//! [`SecretString`]s or short-lived `&str`s and never appear in errors or logs.

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jiff::{SignedDuration, Timestamp};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::error::{redact, sanitize_message, ProviderError};
use crate::http::{
    parse_retry_after, read_body_limited, HttpClient, RawResponse, MAX_PROVIDER_WAIT,
};

/// `n` bytes from the operating system's generator.
fn random_bytes<const N: usize>() -> Result<[u8; N], ProviderError> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| ProviderError::Setup(format!("random number generator: {e}")))?;
    Ok(bytes)
}

/// A PKCE pair (RFC 7636). The verifier stays with us (sealed in
/// `oauth_states`); the challenge goes into the authorization URL.
#[derive(Debug, Clone)]
pub struct Pkce {
    pub verifier: SecretString,
    /// `BASE64URL(SHA256(verifier))`, for `code_challenge_method=S256`.
    pub challenge: String,
}

impl Pkce {
    /// A fresh pair: 32 random bytes give a 43-character verifier (RFC 7636
    /// §4.1 asks for 43–128 characters of `[A-Za-z0-9-._~]`; base64url fits).
    pub fn generate() -> Result<Self, ProviderError> {
        let verifier = URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
        Ok(Self::from_verifier(SecretString::from(verifier)))
    }

    /// The pair for a stored verifier.
    pub fn from_verifier(verifier: SecretString) -> Self {
        let challenge = pkce_challenge(verifier.expose_secret());
        Self {
            verifier,
            challenge,
        }
    }
}

/// The S256 code challenge of a verifier (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A fresh anti-CSRF `state`: 256 random bits, base64url (43 characters).
pub fn random_state() -> Result<String, ProviderError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

/// One OAuth client registration and the endpoints it talks to.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub client_id: String,
    /// `None` for a public client (PKCE alone); then no secret is sent.
    pub client_secret: Option<SecretString>,
    pub auth_url: String,
    pub token_url: String,
    /// Must equal, byte for byte, a redirect URI registered for the client.
    pub redirect_uri: String,
    /// `None` when the provider has no revocation endpoint.
    pub revoke_url: Option<String>,
}

/// How long before expiry an access token is refreshed (Google's own client
/// uses 3 min 45 s; spec §1.4, §7).
pub const REFRESH_MARGIN: SignedDuration = SignedDuration::from_secs(240);

/// The longest access-token lifetime we believe: [`MAX_PROVIDER_WAIT`], one
/// day. Google's and Microsoft's access tokens live an hour; a token
/// endpoint claiming more (`"expires_in": 1e30`) is wrong or hostile, and
/// taking it at its word would keep a dead token for ages and put an
/// instant near the end of time into the caller's arithmetic. Capped, the
/// token is refreshed at least daily.
pub const MAX_TOKEN_LIFETIME: SignedDuration =
    SignedDuration::from_secs(MAX_PROVIDER_WAIT.as_secs() as i64);

/// What a token endpoint handed us.
#[derive(Debug, Clone)]
pub struct TokenSet {
    pub access_token: SecretString,
    /// On a refresh without a new one, the refresh token that was used.
    pub refresh_token: Option<SecretString>,
    /// When the access token expires (from `expires_in`), if the provider said
    /// something readable: never before the answer arrived, never more than
    /// [`MAX_TOKEN_LIFETIME`] after.
    pub expires_at: Option<Timestamp>,
    /// The space-separated scopes actually granted; with granular consent
    /// this can be fewer than requested.
    pub scope: Option<String>,
    /// The OpenID Connect id_token, when `openid` was requested.
    pub id_token: Option<SecretString>,
}

impl TokenSet {
    /// Whether `scope` was granted. `None` when the provider did not say.
    pub fn has_scope(&self, scope: &str) -> Option<bool> {
        self.scope
            .as_deref()
            .map(|granted| granted.split_ascii_whitespace().any(|s| s == scope))
    }

    /// Whether the access token is expired or expires within `margin`
    /// (usually [`REFRESH_MARGIN`]).
    pub fn expires_within(&self, now: Timestamp, margin: SignedDuration) -> bool {
        self.expires_at
            .is_some_and(|at| at.duration_since(now) <= margin)
    }
}

/// The token endpoint's JSON (RFC 6749 §5.1).
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    /// A number, though some servers send a string.
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
}

/// The token endpoint's error JSON (RFC 6749 §5.2).
#[derive(Deserialize, Default)]
struct TokenErrorResponse {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

impl OAuthClient {
    /// The URL to send the user's browser to (RFC 6749 §4.1.1 + RFC 7636
    /// §4.3). `extra` carries provider-specific parameters (Google:
    /// `access_type`, `prompt`, `include_granted_scopes`, `login_hint`).
    pub fn authorization_url(
        &self,
        scopes: &[&str],
        state: &str,
        pkce_challenge: &str,
        extra: &[(&str, &str)],
    ) -> Result<String, ProviderError> {
        let mut url = reqwest::Url::parse(&self.auth_url)
            .map_err(|e| ProviderError::Setup(format!("authorization URL: {e}")))?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", &self.redirect_uri)
                .append_pair("scope", &scopes.join(" "))
                .append_pair("state", state)
                .append_pair("code_challenge", pkce_challenge)
                .append_pair("code_challenge_method", "S256");
            for (name, value) in extra {
                query.append_pair(name, value);
            }
        }
        Ok(url.into())
    }

    /// Exchanges an authorization code (RFC 6749 §4.1.3) with its PKCE
    /// verifier. The client authenticates with `client_secret_post`. One
    /// attempt only, whatever the answer (see the module docs): a 5xx comes
    /// back as [`ProviderError::Provider`] with its status, a timeout as
    /// [`ProviderError::Network`].
    pub async fn exchange_code(
        &self,
        http: &HttpClient,
        code: &str,
        verifier: &SecretString,
    ) -> Result<TokenSet, ProviderError> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.redirect_uri),
            ("client_id", &self.client_id),
            ("code_verifier", verifier.expose_secret()),
        ];
        if let Some(secret) = &self.client_secret {
            form.push(("client_secret", secret.expose_secret()));
        }
        let response = self.post_token_once(http, &form).await?;
        self.read_tokens(response, None, &[code, verifier.expose_secret()])
    }

    /// Gets a new access token (RFC 6749 §6). Providers usually send no new
    /// refresh token; then the one used is kept in the result.
    pub async fn refresh(
        &self,
        http: &HttpClient,
        refresh_token: &SecretString,
    ) -> Result<TokenSet, ProviderError> {
        self.refresh_with(http, refresh_token, &[]).await
    }

    /// [`OAuthClient::refresh`] with provider-specific form fields (Microsoft
    /// wants `scope` on every refresh). A rotated refresh token in the answer
    /// replaces the one used.
    pub async fn refresh_with(
        &self,
        http: &HttpClient,
        refresh_token: &SecretString,
        extra: &[(&str, &str)],
    ) -> Result<TokenSet, ProviderError> {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
            ("client_id", &self.client_id),
        ];
        form.extend_from_slice(extra);
        if let Some(secret) = &self.client_secret {
            form.push(("client_secret", secret.expose_secret()));
        }
        let response = self.post_token(http, &form).await?;
        self.read_tokens(
            response,
            Some(refresh_token),
            &[refresh_token.expose_secret()],
        )
    }

    /// Revokes a token (RFC 7009). A token the provider already considers
    /// dead (`invalid_token`) counts as revoked: that is what the caller wants.
    /// Without a revocation endpoint this does nothing.
    pub async fn revoke(
        &self,
        http: &HttpClient,
        token: &SecretString,
    ) -> Result<(), ProviderError> {
        let Some(revoke_url) = &self.revoke_url else {
            return Ok(());
        };
        let form = [("token", token.expose_secret())];
        let response = http
            .send(
                |client| client.post(revoke_url.as_str()).form(&form),
                token_endpoint_retryable,
            )
            .await?;
        if response.is_success() {
            return Ok(());
        }
        match token_error(
            &response,
            &[token.expose_secret()],
            self.client_secret.as_ref(),
        ) {
            ProviderError::Provider { reason, .. } if reason == "invalid_token" => Ok(()),
            err => Err(err),
        }
    }

    async fn post_token(
        &self,
        http: &HttpClient,
        form: &[(&str, &str)],
    ) -> Result<RawResponse, ProviderError> {
        http.send(
            |client| {
                client
                    .post(self.token_url.as_str())
                    .header(reqwest::header::ACCEPT, "application/json")
                    .form(form)
            },
            token_endpoint_retryable,
        )
        .await
    }

    /// One POST to the token endpoint, never repeated (for single-use codes).
    async fn post_token_once(
        &self,
        http: &HttpClient,
        form: &[(&str, &str)],
    ) -> Result<RawResponse, ProviderError> {
        let request = http
            .reqwest()
            .post(self.token_url.as_str())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form)
            .build()
            .map_err(|e| ProviderError::Setup(format!("token request: {}", e.without_url())))?;
        let response = http.execute(request).await?;
        let status = response.status().as_u16();
        tracing::debug!(
            host = response.url().host_str().unwrap_or("?"),
            status,
            "token endpoint (code exchange, one attempt)"
        );
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, Timestamp::now()));
        let body = read_body_limited(response, http.config().max_body_bytes).await?;
        Ok(RawResponse {
            status,
            retry_after,
            body,
        })
    }

    fn read_tokens(
        &self,
        response: RawResponse,
        previous_refresh: Option<&SecretString>,
        sent_secrets: &[&str],
    ) -> Result<TokenSet, ProviderError> {
        if !response.is_success() {
            return Err(token_error(
                &response,
                sent_secrets,
                self.client_secret.as_ref(),
            ));
        }
        // Measured when the answer arrived: a little early is the safe side.
        let now = Timestamp::now();
        let parsed: TokenResponse = serde_json::from_slice(&response.body)
            .map_err(|e| ProviderError::decode("token response", &e))?;
        if parsed.access_token.is_empty() {
            return Err(ProviderError::Decode(
                "token response: empty access_token".to_owned(),
            ));
        }
        let expires_at = parsed
            .expires_in
            .as_ref()
            .and_then(token_lifetime)
            .and_then(|lifetime| now.checked_add(lifetime).ok());
        Ok(TokenSet {
            access_token: SecretString::from(parsed.access_token),
            refresh_token: parsed
                .refresh_token
                .filter(|t| !t.is_empty())
                .map(SecretString::from)
                .or_else(|| previous_refresh.cloned()),
            expires_at,
            scope: parsed.scope,
            id_token: parsed.id_token.map(SecretString::from),
        })
    }
}

/// An `expires_in` (RFC 6749 §5.1) as a lifetime in `[0, MAX_TOKEN_LIFETIME]`.
///
/// Read: a JSON number, or a string holding one (some servers quote it), in
/// any JSON form (`3599`, `3599.9`, `3.6e3`, beyond 64 bits); a fraction is
/// cut to whole seconds. Clamped: a negative lifetime is zero (the token
/// counts as expired and is refreshed before its next use, which costs one
/// request), one over a day is a day. Anything else (`null`, `"abc"`,
/// `"inf"`, `true`, an object) is `None`, the same as no `expires_in` at
/// all: the lifetime is unknown, and the caller learns of the expiry from a
/// 401. Never panics.
fn token_lifetime(value: &serde_json::Value) -> Option<SignedDuration> {
    let number = match value {
        serde_json::Value::Number(n) => n.clone(),
        serde_json::Value::String(s) => s.trim().parse::<serde_json::Number>().ok()?,
        _ => return None,
    };
    let max = MAX_TOKEN_LIFETIME.as_secs();
    let secs = match number.as_i64() {
        Some(secs) => secs.clamp(0, max),
        // Beyond i64, or with a fraction or an exponent. JSON has no NaN or
        // infinity, and `as` saturates; the clamp does the rest.
        None => (number.as_f64()?.trunc() as i64).clamp(0, max),
    };
    Some(SignedDuration::from_secs(secs))
}

/// Token endpoints worth retrying: 408, 429, 5xx, or the OAuth error codes
/// that mean "try again" (what Google's own client retries, spec §1.4).
fn token_endpoint_retryable(response: &RawResponse) -> bool {
    if matches!(response.status, 408 | 429) || response.status >= 500 {
        return true;
    }
    let body: TokenErrorResponse = serde_json::from_slice(&response.body).unwrap_or_default();
    [body.error, body.error_description]
        .iter()
        .flatten()
        .any(|v| {
            matches!(
                v.as_str(),
                "internal_failure" | "server_error" | "temporarily_unavailable"
            )
        })
}

/// Classifies a token-endpoint error answer.
fn token_error(
    response: &RawResponse,
    sent_secrets: &[&str],
    client_secret: Option<&SecretString>,
) -> ProviderError {
    let body: TokenErrorResponse = serde_json::from_slice(&response.body).unwrap_or_default();
    let mut secrets = sent_secrets.to_vec();
    secrets.extend(client_secret.map(|s| s.expose_secret()));
    let clean = |text: &str| sanitize_message(&redact(text, &secrets));
    let error = body.error.as_deref().map(clean);
    let description = body.error_description.as_deref().map(clean);
    match error.as_deref() {
        Some("invalid_grant") => ProviderError::InvalidGrant {
            reason: description.unwrap_or_else(|| "invalid_grant".to_owned()),
        },
        _ if response.status == 429 => ProviderError::RateLimited {
            retry_after: response.retry_after,
        },
        _ => ProviderError::Provider {
            status: response.status,
            reason: error.unwrap_or_else(|| "unknown".to_owned()),
            message: description.unwrap_or_default(),
        },
    }
}

/// The identity claims of an OpenID Connect id_token.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct IdTokenClaims {
    /// The stable account id: the key of a connection, never the email.
    pub sub: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub iss: Option<String>,
    /// `aud` may be a string or a list; kept raw.
    #[serde(default)]
    pub aud: Option<serde_json::Value>,
    /// The authorized party: required to be us when `aud` names several.
    #[serde(default)]
    pub azp: Option<String>,
    /// Expiry, seconds since the epoch (a number; kept raw, any JSON).
    #[serde(default)]
    pub exp: Option<serde_json::Value>,
}

/// Whose id_tokens are believed: the issuer rule of a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issuer {
    /// `https://accounts.google.com` or `accounts.google.com` (OIDC Core
    /// §3.1.3.7 item 2, as Google documents both).
    Google,
    /// `https://login.microsoftonline.com/{tenant id}/v2.0`, the tenant a
    /// GUID (tenant `common` issues per-tenant tokens; personal accounts
    /// come from `9188040d-6c67-4c5b-b112-36a304b66dad`).
    Microsoft,
}

impl Issuer {
    /// Whether `iss` is one of this provider's issuers.
    pub fn accepts(self, iss: &str) -> bool {
        match self {
            Self::Google => matches!(iss, "https://accounts.google.com" | "accounts.google.com"),
            Self::Microsoft => iss
                .strip_prefix("https://login.microsoftonline.com/")
                .and_then(|rest| rest.strip_suffix("/v2.0"))
                .is_some_and(is_guid),
        }
    }
}

/// `8-4-4-4-12` hex digits.
fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// How much an id_token's `exp` may lie behind our clock (clock skew).
pub const ID_TOKEN_LEEWAY: SignedDuration = SignedDuration::from_secs(300);

/// What an id_token must say to be believed (OIDC Core §3.1.3.7 items 2, 3,
/// 4 and 9): who issued it, for which client, and that it is still valid.
#[derive(Debug, Clone)]
pub struct IdTokenCheck<'a> {
    pub issuer: Issuer,
    /// Our client id: `aud` must be it, or a list holding it (then `azp`,
    /// when several audiences are named, must be it too).
    pub client_id: &'a str,
    /// Now, by the caller's clock.
    pub now: Timestamp,
}

impl IdTokenClaims {
    /// Checks `iss`, `aud`/`azp` and `exp`; the error names the claim that
    /// failed (never the token) as a [`ProviderError::Provider`] with reason
    /// `invalid_id_token`.
    pub fn validate(&self, check: &IdTokenCheck<'_>) -> Result<(), ProviderError> {
        let refuse = |message: &str| ProviderError::Provider {
            status: 200,
            reason: "invalid_id_token".to_owned(),
            message: format!("the id_token {message}; nothing was connected"),
        };
        match self.iss.as_deref() {
            Some(iss) if check.issuer.accepts(iss) => {}
            Some(_) => return Err(refuse("was issued by someone else (iss)")),
            None => return Err(refuse("names no issuer (iss)")),
        }
        let audiences: Vec<&str> = match &self.aud {
            Some(serde_json::Value::String(one)) => vec![one.as_str()],
            Some(serde_json::Value::Array(many)) => {
                many.iter().filter_map(serde_json::Value::as_str).collect()
            }
            _ => return Err(refuse("names no audience (aud)")),
        };
        if !audiences.contains(&check.client_id) {
            return Err(refuse("was issued for another client (aud)"));
        }
        if audiences.len() > 1 && self.azp.as_deref() != Some(check.client_id) {
            return Err(refuse(
                "names several audiences but not us as its party (azp)",
            ));
        }
        let exp = self
            .exp
            .as_ref()
            .and_then(|v| match v {
                serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
                _ => None,
            })
            .ok_or_else(|| refuse("has no readable expiry (exp)"))?;
        let deadline = check
            .now
            .as_second()
            .saturating_sub(ID_TOKEN_LEEWAY.as_secs());
        if exp <= deadline {
            return Err(refuse("has expired (exp)"));
        }
        Ok(())
    }
}

/// Reads an id_token's payload **without verifying its signature**. That is
/// sound only for an id_token received directly from the token endpoint over
/// TLS (OpenID Connect Core §3.1.3.7, item 6): the TLS server authentication
/// already proves who answered. The claims still have to be checked with
/// [`IdTokenClaims::validate`] before they are believed. Never use it on a
/// token from anywhere else.
pub fn decode_id_token_claims(id_token: &SecretString) -> Result<IdTokenClaims, ProviderError> {
    let bad = |why: &str| ProviderError::Decode(format!("id_token: {why}"));
    let mut parts = id_token.expose_secret().split('.');
    let payload = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(payload), Some(_), None) => payload,
        _ => return Err(bad("not a JWS compact serialization")),
    };
    // base64url without padding per RFC 7515, but tolerate padding.
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .or_else(|_| URL_SAFE.decode(payload))
        .map_err(|_| bad("payload is not base64url"))?;
    let claims: IdTokenClaims =
        serde_json::from_slice(&bytes).map_err(|e| ProviderError::decode("id_token claims", &e))?;
    if claims.sub.is_empty() {
        return Err(bad("empty sub claim"));
    }
    Ok(claims)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn generated_pkce_and_state_are_well_formed_and_fresh() {
        let a = Pkce::generate().unwrap();
        let b = Pkce::generate().unwrap();
        let v = a.verifier.expose_secret();
        assert_eq!(v.len(), 43);
        assert!(v
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(a.challenge, pkce_challenge(v));
        assert_ne!(v, b.verifier.expose_secret());
        let s1 = random_state().unwrap();
        assert_eq!(s1.len(), 43);
        assert_ne!(s1, random_state().unwrap());
        // The verifier never shows in Debug output.
        assert!(!format!("{a:?}").contains(v));
    }

    fn client() -> OAuthClient {
        OAuthClient {
            client_id: "cid.apps.example".into(),
            client_secret: Some(SecretString::from("s3cr3t-client-secret")),
            auth_url: "https://auth.example/o/oauth2/v2/auth".into(),
            token_url: "https://auth.example/token".into(),
            redirect_uri: "http://localhost:8000/api/calendar/google/callback/".into(),
            revoke_url: None,
        }
    }

    #[test]
    fn authorization_url_carries_every_parameter_encoded() {
        let url = client()
            .authorization_url(
                &["a b", "openid"],
                "st&te",
                "chal",
                &[("prompt", "consent")],
            )
            .unwrap();
        let parsed = reqwest::Url::parse(&url).unwrap();
        let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("response_type"), Some("code"));
        assert_eq!(get("client_id"), Some("cid.apps.example"));
        assert_eq!(
            get("redirect_uri"),
            Some("http://localhost:8000/api/calendar/google/callback/")
        );
        assert_eq!(get("scope"), Some("a b openid"));
        assert_eq!(get("state"), Some("st&te"));
        assert_eq!(get("code_challenge"), Some("chal"));
        assert_eq!(get("code_challenge_method"), Some("S256"));
        assert_eq!(get("prompt"), Some("consent"));
        assert!(!url.contains("s3cr3t"));
    }

    fn raw(status: u16, body: &str) -> RawResponse {
        RawResponse {
            status,
            retry_after: None,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn token_responses_are_read_and_refresh_keeps_the_old_refresh_token() {
        let c = client();
        let old = SecretString::from("1//old-refresh-token");
        let set = c
            .read_tokens(
                raw(
                    200,
                    r#"{"access_token":"ya29.new","expires_in":"3599","scope":"openid email","token_type":"Bearer"}"#,
                ),
                Some(&old),
                &[],
            )
            .unwrap();
        assert_eq!(set.access_token.expose_secret(), "ya29.new");
        assert_eq!(
            set.refresh_token.as_ref().map(|t| t.expose_secret()),
            Some("1//old-refresh-token")
        );
        let left = set.expires_at.unwrap().duration_since(Timestamp::now());
        assert!(left > SignedDuration::from_secs(3500) && left <= SignedDuration::from_secs(3599));
        assert_eq!(set.has_scope("email"), Some(true));
        assert_eq!(set.has_scope("https://x/calendar"), Some(false));
        assert!(!set.expires_within(Timestamp::now(), SignedDuration::from_secs(225)));

        let rotated = c
            .read_tokens(
                raw(
                    200,
                    r#"{"access_token":"a","refresh_token":"1//rotated","expires_in":10}"#,
                ),
                Some(&old),
                &[],
            )
            .unwrap();
        assert_eq!(rotated.refresh_token.unwrap().expose_secret(), "1//rotated");
        assert!(rotated.expires_at.is_some());
    }

    #[test]
    fn expires_in_is_read_in_every_shape_and_clamped_to_a_day() {
        let secs = |json: &str| {
            let value: serde_json::Value = serde_json::from_str(json).unwrap();
            token_lifetime(&value).map(|d| d.as_secs())
        };
        let day = Some(86_400);
        assert_eq!(MAX_TOKEN_LIFETIME, SignedDuration::from_hours(24));
        assert_eq!(secs("3599"), Some(3599));
        assert_eq!(secs(r#""3599""#), Some(3599));
        assert_eq!(secs(r#"" 3599 ""#), Some(3599));
        assert_eq!(secs("3599.9"), Some(3599));
        assert_eq!(secs("3.6e3"), Some(3600));
        assert_eq!(secs("0"), Some(0));
        assert_eq!(secs("86400"), day);
        let nines = "9".repeat(300);
        for huge in [
            "86401",
            "1e30",
            "1.7976931348623157e308",
            "9223372036854775807",
            "18446744073709551615",
            "18446744073709551616",
            r#""18446744073709551616""#,
            r#""1e30""#,
            &nines,
        ] {
            assert_eq!(secs(huge), day, "{huge}");
        }
        for negative in ["-1", "-0.5", "-1e30", "-9223372036854775808", r#""-1""#] {
            assert_eq!(secs(negative), Some(0), "{negative}");
        }
        for unreadable in [
            "null",
            "true",
            r#""abc""#,
            r#""""#,
            r#""inf""#,
            r#""NaN""#,
            r#""+5""#,
            r#""0x10""#,
            r#""1 0""#,
            "[3599]",
            r#"{"s":3599}"#,
        ] {
            assert_eq!(secs(unreadable), None, "{unreadable}");
        }
    }

    #[test]
    fn hostile_expires_in_never_lands_beyond_a_day() {
        let c = client();
        let day = MAX_TOKEN_LIFETIME;
        for (expires_in, lifetime) in [
            ("1e30", Some(day)),
            ("18446744073709551616", Some(day)),
            ("-1", Some(SignedDuration::ZERO)),
            (r#""abc""#, None),
            ("null", None),
        ] {
            let body = format!(r#"{{"access_token":"a","expires_in":{expires_in}}}"#);
            let before = Timestamp::now();
            let set = c.read_tokens(raw(200, &body), None, &[]).unwrap();
            let after = Timestamp::now();
            match (set.expires_at, lifetime) {
                (Some(at), Some(lifetime)) => assert!(
                    at >= before.checked_add(lifetime).unwrap()
                        && at <= after.checked_add(lifetime).unwrap(),
                    "{expires_in}: {at}"
                ),
                (None, None) => {}
                other => panic!("{expires_in}: {other:?}"),
            }
        }
        // Beyond what JSON numbers hold: the answer is unreadable, an error.
        let err = c
            .read_tokens(
                raw(200, r#"{"access_token":"a","expires_in":1e400}"#),
                None,
                &[],
            )
            .unwrap_err();
        assert!(matches!(err, ProviderError::Decode(_)), "{err:?}");
    }

    #[test]
    fn token_errors_are_classified_and_redacted() {
        let c = client();
        let err = c
            .read_tokens(
                raw(
                    400,
                    r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
                ),
                None,
                &[],
            )
            .unwrap_err();
        assert!(err.needs_reauth());
        assert_eq!(
            err.to_string(),
            "the provider refused the grant (Token has been expired or revoked.); the account must be reconnected"
        );

        let err = c
            .read_tokens(
                raw(
                    401,
                    r#"{"error":"invalid_client","error_description":"bad secret s3cr3t-client-secret for code 4/0Acode-value"}"#,
                ),
                None,
                &["4/0Acode-value"],
            )
            .unwrap_err();
        let shown = err.to_string();
        assert!(
            matches!(err, ProviderError::Provider { status: 401, ref reason, .. } if reason == "invalid_client")
        );
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("4/0Acode"),
            "{shown}"
        );

        let err = c
            .read_tokens(raw(200, r#"{"access_token":"ya29.x""#), None, &[])
            .unwrap_err();
        assert!(matches!(err, ProviderError::Decode(_)));
        assert!(!err.to_string().contains("ya29"));

        assert!(token_endpoint_retryable(&raw(503, "")));
        assert!(token_endpoint_retryable(&raw(
            400,
            r#"{"error":"temporarily_unavailable"}"#
        )));
        assert!(!token_endpoint_retryable(&raw(
            400,
            r#"{"error":"invalid_grant"}"#
        )));
    }

    #[test]
    fn id_token_claims_are_read_without_verification() {
        let payload = URL_SAFE_NO_PAD.encode(
            r#"{"iss":"https://accounts.google.com","aud":"cid","sub":"1170","email":"ada@example.com","email_verified":true}"#,
        );
        let token = SecretString::from(format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln"));
        let claims = decode_id_token_claims(&token).unwrap();
        assert_eq!(claims.sub, "1170");
        assert_eq!(claims.email.as_deref(), Some("ada@example.com"));

        for bad in ["abc", "a.b", "a.!!!.c", "a.e30.c", "a.b.c.d"] {
            assert!(
                decode_id_token_claims(&SecretString::from(bad)).is_err(),
                "{bad}"
            );
        }
    }

    fn claims(json: serde_json::Value) -> IdTokenClaims {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn id_token_claims_are_checked_before_they_are_believed() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let google = IdTokenCheck {
            issuer: Issuer::Google,
            client_id: "cid",
            now,
        };
        let exp = now.as_second() + 3600;
        let good = serde_json::json!({"iss": "https://accounts.google.com", "aud": "cid", "sub": "1", "exp": exp});
        claims(good.clone()).validate(&google).unwrap();
        let with = |key: &str, value: serde_json::Value| {
            let mut v = good.clone();
            v[key] = value;
            claims(v)
        };
        with("iss", "accounts.google.com".into())
            .validate(&google)
            .unwrap();
        with("aud", serde_json::json!(["cid"]))
            .validate(&google)
            .unwrap();
        with("aud", serde_json::json!(["other", "cid"]))
            .validate(&google)
            .unwrap_err();
        let mut both = with("aud", serde_json::json!(["other", "cid"]));
        both.azp = Some("cid".into());
        both.validate(&google).unwrap();
        // Inside the leeway, an expired token still passes; beyond it, not.
        with("exp", (now.as_second() - 60).into())
            .validate(&google)
            .unwrap();
        with("exp", 1_800_000_000.5.into())
            .validate(&google)
            .unwrap();
        for (key, value, why) in [
            ("aud", serde_json::json!("other-client"), "(aud)"),
            ("aud", serde_json::json!(["a", "b"]), "(aud)"),
            ("aud", serde_json::Value::Null, "(aud)"),
            ("aud", serde_json::json!(42), "(aud)"),
            (
                "iss",
                serde_json::json!("https://accounts.google.com.evil"),
                "(iss)",
            ),
            (
                "iss",
                serde_json::json!(
                    "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0"
                ),
                "(iss)",
            ),
            ("iss", serde_json::Value::Null, "(iss)"),
            ("exp", serde_json::json!(now.as_second() - 301), "(exp)"),
            ("exp", serde_json::json!("9999999999"), "(exp)"),
            ("exp", serde_json::Value::Null, "(exp)"),
        ] {
            let err = with(key, value.clone()).validate(&google).unwrap_err();
            assert!(
                matches!(&err, ProviderError::Provider { reason, message, .. }
                    if reason == "invalid_id_token" && message.contains(why)),
                "{key}={value}: {err}"
            );
        }

        let microsoft = IdTokenCheck {
            issuer: Issuer::Microsoft,
            ..google
        };
        for iss in [
            "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0",
            "https://login.microsoftonline.com/72F988BF-86F1-41AF-91AB-2D7CD011DB47/v2.0",
        ] {
            with("iss", iss.into()).validate(&microsoft).unwrap();
        }
        for iss in [
            "https://login.microsoftonline.com/common/v2.0",
            "https://login.microsoftonline.com/{tenantid}/v2.0",
            "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0/x",
            "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad",
            "https://sts.windows.net/9188040d-6c67-4c5b-b112-36a304b66dad/",
            "https://accounts.google.com",
        ] {
            assert!(
                with("iss", iss.into()).validate(&microsoft).is_err(),
                "{iss}"
            );
        }
    }
}
