//! Accounts and credentials: users, passwords (argon2id), browser sessions and
//! API tokens. Secrets made here are random 256-bit values; only their
//! SHA-256 is stored, and the plain value is handed out exactly once.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use calsync_core::model::User;
use calsync_store::{Session, Store, StoreError};
use jiff::{SignedDuration, Timestamp};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// How long a browser session lasts.
pub const SESSION_LIFETIME: SignedDuration = SignedDuration::from_hours(24 * 14);

/// Prefix that makes calsync API tokens recognisable (e.g. by secret scanners).
const API_TOKEN_PREFIX: &str = "cst_";

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("a username is 1 to 64 characters: letters, digits, '.', '_' or '-'")]
    BadUsername,
    #[error("a password must be 8 to 1024 characters long")]
    BadPassword,
    #[error("user {0:?} already exists")]
    UserExists(String),
    #[error("no user named {0:?}")]
    NoSuchUser(String),
    #[error("password hashing failed")]
    Hashing,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AccountError {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

/// A random 256-bit value, base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The OS RNG failing is not something to limp on from.
    #[allow(clippy::expect_used)]
    getrandom::getrandom(&mut bytes).expect("the operating system's random source failed");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored form of a session cookie, API token or OAuth state.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn validate_username(name: &str) -> Result<(), AccountError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    ok.then_some(()).ok_or(AccountError::BadUsername)
}

/// Hashes a password with argon2id (OWASP's default parameters); slow on
/// purpose, so callers on the async runtime use `spawn_blocking`.
pub fn hash_password(password: &SecretString) -> Result<String, AccountError> {
    let length = password.expose_secret().chars().count();
    if !(8..=1024).contains(&length) {
        return Err(AccountError::BadPassword);
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose_secret().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| AccountError::Hashing)
}

/// Checks a password against a stored hash.
pub fn verify_password(hash: &str, password: &SecretString) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.expose_secret().as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash of a password nobody has, verified when the user does not exist so
/// that a login's timing does not tell which usernames exist.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&SecretString::from(random_token())).unwrap_or_default())
}

/// Creates a user.
pub async fn create_user(
    store: &Store,
    username: &str,
    password: SecretString,
    now: Timestamp,
) -> Result<User, AccountError> {
    validate_username(username)?;
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|_| AccountError::Hashing)??;
    store
        .create_user(username, &hash, now)
        .await
        .map_err(|err| match err {
            StoreError::Conflict(_) => AccountError::UserExists(username.to_owned()),
            other => other.into(),
        })
}

/// The user whose name and password these are.
pub async fn check_login(
    store: &Store,
    username: &str,
    password: SecretString,
) -> Result<Option<User>, AccountError> {
    let found = if validate_username(username).is_ok() {
        store.user_credentials(username).await?
    } else {
        None
    };
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), hash),
        None => (None, decoy_hash().to_owned()),
    };
    let matches = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .map_err(|_| AccountError::Hashing)?;
    Ok(user.filter(|_| matches))
}

/// Starts a browser session; returns the cookie value and the session.
pub async fn start_session(
    store: &Store,
    user: &User,
    now: Timestamp,
) -> Result<(String, Session), AccountError> {
    let token = random_token();
    let session = Session {
        user_id: user.id,
        csrf_token: random_token(),
        expires_at: now + SESSION_LIFETIME,
    };
    store
        .create_session(&hash_token(&token), &session, now)
        .await?;
    Ok((token, session))
}

/// Creates an API token for `username`; the returned token is shown once.
pub async fn create_api_token(
    store: &Store,
    username: &str,
    name: &str,
    now: Timestamp,
) -> Result<String, AccountError> {
    let user = store
        .user_by_name(username)
        .await
        .map_err(|err| match err {
            StoreError::NotFound => AccountError::NoSuchUser(username.to_owned()),
            other => other.into(),
        })?;
    let token = format!("{API_TOKEN_PREFIX}{}", random_token());
    store
        .create_api_token(user.id, name, &hash_token(&token), now)
        .await?;
    Ok(token)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let hash = hash_password(&SecretString::from("correct horse")).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, &SecretString::from("correct horse")));
        assert!(!verify_password(
            &hash,
            &SecretString::from("correct horsE")
        ));
        assert!(!verify_password(
            "not a hash",
            &SecretString::from("correct horse")
        ));
        assert!(matches!(
            hash_password(&SecretString::from("short")),
            Err(AccountError::BadPassword)
        ));
    }

    #[test]
    fn usernames_are_plain() {
        assert!(validate_username("alice.b-c_d9").is_ok());
        for bad in ["", "a b", "ålice", "a/b", &"x".repeat(65)] {
            assert!(validate_username(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash_token(&a).len(), 64);
        assert_ne!(hash_token(&a), a);
    }
}
