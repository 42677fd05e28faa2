//! Accounts and credentials: users, passwords (argon2id), browser sessions and
//! API tokens, and what a user manages about their own account (email, time
//! zone, password, tokens, deleting it all). Secrets made here are random
//! 256-bit values; only their SHA-256 is stored, and the plain value is
//! handed out exactly once.
//!
//! The JSON API, the Settings page and the CLI call the same functions here,
//! so their checks cannot drift apart. Nothing here logs a token, a password
//! or an email address.

use argon2::password_hash::{
    rand_core::OsRng, Output, ParamsString, PasswordHash, Salt, SaltString,
};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use calsync_core::model::{ConnectionId, User, UserId};
use calsync_store::{ApiTokenInfo, Session, Store, StoreError};
use jiff::{SignedDuration, Timestamp};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use crate::calendars::not_found;
use crate::http::error::AppError;
use crate::state::AppState;

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

/// At most this many argon2 computations at once, and as many buffers of
/// working memory in [`ARGON2_MEMORY`].
const HASHING_AT_ONCE: usize = 2;

/// Turns at hashing; see [`hashing`].
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(HASHING_AT_ONCE);

/// Runs a password hash or check off the async runtime, a few at a time.
async fn hashing<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AccountError> {
    let _turn = HASHING.acquire().await.map_err(|_| AccountError::Hashing)?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| AccountError::Hashing)
}

/// argon2's working memory, 19 MiB per computation with calsync's parameters,
/// allocated the first time it is needed and then kept for the next ones.
/// Allocated and freed for every computation, it stayed with the process
/// anyway (glibc served the later 19 MiB blocks from per-thread arenas it
/// never returns): 200 logins took a debug server from 25 to 368 MiB RSS,
/// 2,500 a release one to 815 MiB (bench/sync-bench).
static ARGON2_MEMORY: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

/// Blocks in each buffer of [`ARGON2_MEMORY`]: what [`Params::DEFAULT`],
/// the parameters calsync hashes with, needs.
const ARGON2_BLOCKS: usize = Params::DEFAULT.block_count();

/// Runs `work` on a buffer of argon2 memory from the pool. Callers that hold
/// a turn from [`hashing`] always find one; others (the CLI, tests) may find
/// the pool empty and get a buffer of their own, which is kept only while
/// the pool holds fewer than [`HASHING_AT_ONCE`].
fn with_argon2_memory<T>(work: impl FnOnce(&mut [Block]) -> T) -> T {
    let pooled = ARGON2_MEMORY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop();
    let mut memory = pooled.unwrap_or_else(|| vec![Block::new(); ARGON2_BLOCKS]);
    let result = work(&mut memory);
    let mut pool = ARGON2_MEMORY.lock().unwrap_or_else(PoisonError::into_inner);
    if pool.len() < HASHING_AT_ONCE {
        pool.push(memory);
    }
    result
}

/// Hashes a password with argon2id (OWASP's default parameters); slow on
/// purpose, so callers on the async runtime go through [`hashing`].
pub fn hash_password(password: &SecretString) -> Result<String, AccountError> {
    let length = password.expose_secret().chars().count();
    if !(8..=1024).contains(&length) {
        return Err(AccountError::BadPassword);
    }
    let salt = SaltString::generate(&mut OsRng);
    hash_with_salt(password.expose_secret().as_bytes(), &salt)
}

/// The PHC string `Argon2::default().hash_password` gives (argon2id, version
/// 19, [`Params::DEFAULT`], a 32-byte output), computed in pooled memory.
fn hash_with_salt(password: &[u8], salt: &SaltString) -> Result<String, AccountError> {
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT);
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let salt_bytes = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|_| AccountError::Hashing)?;
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    with_argon2_memory(|memory| {
        argon2.hash_password_into_with_memory(password, salt_bytes, &mut output, memory)
    })
    .map_err(|_| AccountError::Hashing)?;
    phc_string(salt, &output)
}

/// `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<output>`.
fn phc_string(salt: &SaltString, output: &[u8]) -> Result<String, AccountError> {
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&Params::DEFAULT).map_err(|_| AccountError::Hashing)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(output).map_err(|_| AccountError::Hashing)?),
    };
    Ok(hash.to_string())
}

/// Checks a password against a stored hash.
pub fn verify_password(hash: &str, password: &SecretString) -> bool {
    verify(hash, password.expose_secret().as_bytes()).unwrap_or(false)
}

/// Recomputes a stored PHC hash (any argon2 variant, version and parameters,
/// as `Argon2::verify_password` accepted) and compares in constant time;
/// `None` when the hash does not parse or the computation fails.
fn verify(hash: &str, password: &[u8]) -> Option<bool> {
    let parsed = PasswordHash::new(hash).ok()?;
    let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
    let version = match parsed.version {
        Some(version) => Version::try_from(version).ok()?,
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).ok()?;
    let expected = parsed.hash?;
    let mut salt = [0u8; Salt::MAX_LENGTH];
    let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
    let argon2 = Argon2::new(algorithm, version, params);
    let mut output = [0u8; Output::MAX_LENGTH];
    let output = output.get_mut(..expected.len())?;
    let computed = if argon2.params().block_count() <= ARGON2_BLOCKS {
        with_argon2_memory(|memory| {
            argon2.hash_password_into_with_memory(password, salt, output, memory)
        })
    } else {
        // Needs more memory than a pooled buffer. calsync never wrote such a
        // hash, but one from elsewhere still verifies, as it did before the
        // pool, rather than locking its user out: in memory of its own.
        argon2.hash_password_into(password, salt, output)
    };
    computed.ok()?;
    Some(output.ct_eq(expected.as_bytes()).into())
}

/// A hash of a password nobody has, verified when the user does not exist so
/// that a login's timing does not tell which usernames exist: a random salt
/// and a random output with calsync's parameters, so checking it costs what
/// checking a real hash costs, without an argon2 run to make it.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
        output.copy_from_slice(&Sha256::digest(random_token().as_bytes()));
        phc_string(&salt, &output).unwrap_or_default()
    })
}

/// Creates a user.
pub async fn create_user(
    store: &Store,
    username: &str,
    password: SecretString,
    now: Timestamp,
) -> Result<User, AccountError> {
    validate_username(username)?;
    let hash = hashing(move || hash_password(&password)).await??;
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
    let matches = hashing(move || verify_password(&hash, &password)).await?;
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

/// Longest API token name, in characters.
pub const TOKEN_NAME_MAX: usize = 100;
/// Longest lifetime a new API token may be given, in days (ten years).
pub const TOKEN_MAX_DAYS: u32 = 3650;
/// How many API tokens a user may hold at once (expired ones count until
/// they are revoked).
pub const TOKENS_PER_USER: i64 = 100;
/// Longest email address (RFC 5321's path limit less the brackets).
pub const EMAIL_MAX: usize = 254;

/// A token just created: the plain value (shown once) and what listings show.
pub struct NewApiToken {
    pub token: SecretString,
    pub info: ApiTokenInfo,
}

impl std::fmt::Debug for NewApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiToken")
            .field("token", &"[redacted]")
            .field("info", &self.info)
            .finish()
    }
}

/// A token's name, trimmed: 1 to [`TOKEN_NAME_MAX`] characters, no control
/// characters.
pub fn token_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    let length = name.chars().count();
    if length == 0 || length > TOKEN_NAME_MAX || name.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "invalid_name",
            format!(
                "a token's name is 1 to {TOKEN_NAME_MAX} characters, without control characters"
            ),
        ));
    }
    Ok(name.to_owned())
}

/// When a token made at `now` to last `days` days expires: never for `None`;
/// never later than `cap` (the expiry of the token that creates it).
pub fn token_expiry(
    now: Timestamp,
    days: Option<u32>,
    cap: Option<Timestamp>,
) -> Result<Option<Timestamp>, AppError> {
    let asked = match days {
        None => None,
        Some(days @ 1..=TOKEN_MAX_DAYS) => {
            Some(now + SignedDuration::from_hours(24 * i64::from(days)))
        }
        Some(_) => {
            return Err(AppError::invalid(
                "invalid_expiry",
                format!("expires_in_days is a whole number of days from 1 to {TOKEN_MAX_DAYS}, or absent for a token that does not expire"),
            ))
        }
    };
    Ok(match (asked, cap) {
        (Some(asked), Some(cap)) => Some(asked.min(cap)),
        (asked, cap) => asked.or(cap),
    })
}

/// Creates an API token for `user`: `expires_in_days` from now (never when
/// absent). Made with another token (`parent`, the caller's bearer token),
/// it is that token's child: it expires no later than the parent and is
/// revoked with it. The plain token is in the answer and nowhere else.
pub async fn create_api_token(
    store: &Store,
    user: UserId,
    name: &str,
    expires_in_days: Option<u32>,
    parent: Option<&ApiTokenInfo>,
    now: Timestamp,
) -> Result<NewApiToken, AppError> {
    // Whole seconds, as stored: the answer says what listings will say.
    let now = Timestamp::from_second(now.as_second()).unwrap_or(now);
    let name = token_name(name)?;
    let expires_at = token_expiry(now, expires_in_days, parent.and_then(|p| p.expires_at))?;
    if store.count_api_tokens(user).await? >= TOKENS_PER_USER {
        return Err(AppError::invalid(
            "too_many_tokens",
            format!("a user has at most {TOKENS_PER_USER} API tokens: revoke some first"),
        ));
    }
    let token = format!("{API_TOKEN_PREFIX}{}", random_token());
    let parent_id = parent.map(|p| p.id);
    let id = store
        .create_api_token_with(user, &name, &hash_token(&token), expires_at, parent_id, now)
        .await
        // Only a parent revoked in the meantime makes this NotFound.
        .map_err(|err| match err {
            StoreError::NotFound => AppError::Unauthenticated,
            other => other.into(),
        })?;
    tracing::info!(user = %user, token_id = id, "API token created");
    Ok(NewApiToken {
        token: SecretString::from(token),
        info: ApiTokenInfo {
            id,
            name,
            created_at: now,
            last_used_at: None,
            expires_at,
            parent_id,
        },
    })
}

/// Revokes one of the user's API tokens (and the tokens made with it);
/// another user's token is not found, exactly as one that never existed.
pub async fn revoke_api_token(store: &Store, user: UserId, id: i64) -> Result<(), AppError> {
    store
        .delete_api_token(user, id)
        .await
        .map_err(not_found("token"))?;
    tracing::info!(user = %user, token_id = id, "API token revoked");
    Ok(())
}

/// The user a name names, as the CLI looks them up.
pub async fn user_named(store: &Store, username: &str) -> Result<User, AccountError> {
    store.user_by_name(username).await.map_err(|err| match err {
        StoreError::NotFound => AccountError::NoSuchUser(username.to_owned()),
        other => other.into(),
    })
}

/// What a user can see and change about their own account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub username: String,
    /// Where reminders go; `None` until the user sets it.
    pub email: Option<String>,
    /// The IANA zone their pages are shown in.
    pub timezone: String,
}

/// The user's own settings.
pub async fn profile(store: &Store, user: UserId) -> Result<Profile, AppError> {
    let found = store.user(user).await.map_err(not_found("user"))?;
    let email = store.user_email(user).await.map_err(not_found("user"))?;
    Ok(Profile {
        username: found.username,
        email,
        timezone: found.timezone,
    })
}

/// Changes the user's own settings: `email` when `Some` (`Some(None)` or an
/// empty address clears it), the time zone when `Some`. Both are checked
/// before either is written.
pub async fn update_profile(
    state: &AppState,
    user: UserId,
    email: Option<Option<&str>>,
    timezone: Option<&str>,
) -> Result<Profile, AppError> {
    let email = email.map(|e| parse_email(e.unwrap_or(""))).transpose()?;
    if let Some(timezone) = timezone {
        crate::calendars::set_timezone(state, user, timezone).await?;
    }
    if let Some(email) = email {
        state
            .store
            .set_user_email(user, email.as_deref())
            .await
            .map_err(not_found("user"))?;
    }
    profile(&state.store, user).await
}

/// An email address, checked loosely but safely: trimmed; empty is `None`;
/// at most [`EMAIL_MAX`] characters; one `@`; a local part of 1 to 64
/// printable ASCII characters without spaces, quotes, angle brackets,
/// parentheses, commas, semicolons, colons or backslashes; a domain of at
/// least two dot-separated labels of ASCII letters, digits and inner
/// hyphens (an internationalised domain in its `xn--` form), stored
/// lower-cased. Nothing in it can break out of a mail header.
pub fn parse_email(text: &str) -> Result<Option<String>, AppError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let invalid = || {
        AppError::invalid(
            "invalid_email",
            "that is not an email address calsync can send to; write it as name@example.com",
        )
    };
    if text.len() > EMAIL_MAX {
        return Err(invalid());
    }
    let (local, domain) = text.split_once('@').ok_or_else(invalid)?;
    let local_ok = (1..=64).contains(&local.len())
        && local.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(
                    b,
                    b'"' | b'<'
                        | b'>'
                        | b'('
                        | b')'
                        | b','
                        | b';'
                        | b':'
                        | b'\\'
                        | b'@'
                        | b'['
                        | b']'
                )
        })
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
        && labels
            .last()
            .is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()));
    if !(local_ok && domain_ok) {
        return Err(invalid());
    }
    Ok(Some(format!("{local}@{}", domain.to_ascii_lowercase())))
}

/// Wrong passwords given to confirm an account change (password change,
/// deletion), per user: after [`Self::FREE`] in a row within
/// [`Self::WINDOW`], further attempts wait until the window has passed. The
/// caller holds a session already, so the user is the key; a stolen session
/// cannot guess the password at argon2's speed.
#[derive(Debug, Default)]
pub struct ConfirmThrottle {
    failures: Mutex<HashMap<UserId, (u32, Instant)>>,
}

impl ConfirmThrottle {
    /// Wrong passwords in a row that never wait.
    pub const FREE: u32 = 5;
    /// How long failures are remembered, and the wait after too many.
    pub const WINDOW: Duration = Duration::from_secs(15 * 60);

    /// `Err(wait)` while the user must wait before trying again.
    pub fn check(&self, user: UserId, now: Instant) -> Result<(), Duration> {
        let Ok(failures) = self.failures.lock() else {
            return Ok(());
        };
        match failures.get(&user) {
            Some(&(count, first)) if count >= Self::FREE => {
                let waited = now.saturating_duration_since(first);
                if waited < Self::WINDOW {
                    Err(Self::WINDOW - waited)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// Counts a wrong password.
    pub fn failed(&self, user: UserId, now: Instant) {
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        if failures.len() > 10_000 {
            failures.retain(|_, (_, first)| now.saturating_duration_since(*first) < Self::WINDOW);
        }
        let entry = failures.entry(user).or_insert((0, now));
        if now.saturating_duration_since(entry.1) >= Self::WINDOW {
            *entry = (0, now);
        }
        entry.0 = entry.0.saturating_add(1);
    }

    /// The right password: the count starts over.
    pub fn succeeded(&self, user: UserId) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&user);
        }
    }
}

/// The one throttle of this process.
fn confirm_throttle() -> &'static ConfirmThrottle {
    static THROTTLE: std::sync::OnceLock<ConfirmThrottle> = std::sync::OnceLock::new();
    THROTTLE.get_or_init(ConfirmThrottle::default)
}

/// Checks the user's own password before an account change; a wrong one is
/// `Invalid` (`wrong_password`), too many wrong ones `RateLimited`.
pub async fn confirm_password(
    store: &Store,
    user: UserId,
    password: SecretString,
) -> Result<(), AppError> {
    let throttle = confirm_throttle();
    throttle
        .check(user, Instant::now())
        .map_err(|wait| AppError::RateLimited {
            retry_after_secs: wait.as_secs().max(1),
        })?;
    let hash = store
        .user_password_hash(user)
        .await
        .map_err(not_found("user"))?;
    let matches = hashing(move || verify_password(&hash, &password)).await?;
    if matches {
        throttle.succeeded(user);
        Ok(())
    } else {
        throttle.failed(user, Instant::now());
        tracing::info!(user = %user, "wrong password to confirm an account change");
        Err(AppError::invalid(
            "wrong_password",
            "the current password is not correct",
        ))
    }
}

/// Replaces the user's password after checking the current one, and ends
/// every other session of theirs (`keep_session`: the cookie of the browser
/// that changed it). API tokens keep working. Returns how many sessions
/// ended.
pub async fn change_password(
    store: &Store,
    user: UserId,
    current: SecretString,
    new: SecretString,
    keep_session: Option<&str>,
) -> Result<u64, AppError> {
    confirm_password(store, user, current).await?;
    let hash = hashing(move || hash_password(&new)).await??;
    let ended = store
        .change_password(user, &hash, keep_session.map(hash_token).as_deref())
        .await
        .map_err(not_found("user"))?;
    tracing::info!(user = %user, ended_sessions = ended, "password changed");
    Ok(ended)
}

/// Sets a user's password without the old one (`calsync user passwd`) and
/// ends all their sessions. Returns how many ended.
pub async fn reset_password(
    store: &Store,
    username: &str,
    new: SecretString,
) -> Result<u64, AccountError> {
    let user = user_named(store, username).await?;
    let hash = hashing(move || hash_password(&new)).await??;
    let ended = store.change_password(user.id, &hash, None).await?;
    tracing::info!(user = %user.id, ended_sessions = ended, "password reset");
    Ok(ended)
}

/// What deleting an account did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeletedAccount {
    /// Connections the user had.
    pub connections: usize,
    /// Of those, the ones whose access the provider confirmed revoked.
    pub revoked: usize,
}

/// Deletes the caller's own account once they have typed their username and
/// their password (Settings' "Delete my account"); see [`delete_account`].
pub async fn delete_own_account(
    state: &AppState,
    user: UserId,
    typed_username: &str,
    password: SecretString,
) -> Result<DeletedAccount, AppError> {
    let found = state.store.user(user).await.map_err(not_found("user"))?;
    if typed_username.trim() != found.username {
        return Err(AppError::invalid(
            "not_confirmed",
            "type your username exactly as shown to confirm; nothing was deleted",
        ));
    }
    confirm_password(&state.store, user, password).await?;
    delete_account(state, user).await
}

/// Deletes a user and everything of theirs. First, best effort, calsync's
/// access is revoked at each provider that allows it (as disconnecting
/// does: a provider that cannot be reached does not keep the account
/// alive); then the user row goes, and with it, by the schema's cascades,
/// every session, token, OAuth state, connection, calendar, event,
/// occurrence and sync run.
pub async fn delete_account(state: &AppState, user: UserId) -> Result<DeletedAccount, AppError> {
    let connections: Vec<ConnectionId> = state
        .store
        .list_connections(user)
        .await?
        .into_iter()
        .map(|c| c.connection.id)
        .collect();
    let mut revoked = 0;
    for &id in &connections {
        match crate::connect::revoke(state, user, id).await {
            Ok(true) => revoked += 1,
            Ok(false) => {}
            // Gone meanwhile (a disconnect in another tab): nothing to revoke.
            Err(StoreError::NotFound) => {}
            Err(err) => return Err(err.into()),
        }
    }
    state
        .store
        .delete_user(user)
        .await
        .map_err(not_found("user"))?;
    tracing::info!(user = %user, connections = connections.len(), revoked, "account deleted");
    Ok(DeletedAccount {
        connections: connections.len(),
        revoked,
    })
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
    fn hashes_of_the_argon2_crate_and_ours_are_interchangeable() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let password = SecretString::from("correct horse");
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        // The same string, byte for byte: what databases hold still verifies.
        assert_eq!(hash_with_salt(b"correct horse", &salt).unwrap(), theirs);
        assert!(verify_password(&theirs, &password));
        assert!(!verify_password(
            &theirs,
            &SecretString::from("correct horsE")
        ));

        let ours = hash_password(&password).unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"correct horsE", &parsed)
            .is_err());
    }

    #[test]
    fn other_argon2_hashes_still_verify() {
        use argon2::password_hash::PasswordHasher;
        let salt = SaltString::generate(&mut OsRng);
        let make = |algorithm, m_cost, t_cost, output_len| {
            let params = Params::new(m_cost, t_cost, 1, Some(output_len)).unwrap();
            Argon2::new(algorithm, Version::V0x13, params)
                .hash_password(b"correct horse", &salt)
                .unwrap()
                .to_string()
        };
        let good = SecretString::from("correct horse");
        let bad = SecretString::from("correct horsE");
        for hash in [
            make(Algorithm::Argon2i, 64, 1, 32),
            make(Algorithm::Argon2d, 64, 1, 16),
            make(Algorithm::Argon2id, 256, 3, 64),
            // More memory than a pooled buffer: computed in memory of its own.
            make(Algorithm::Argon2id, Params::DEFAULT_M_COST * 2, 1, 32),
        ] {
            assert!(verify_password(&hash, &good), "{hash}");
            assert!(!verify_password(&hash, &bad), "{hash}");
        }
        let v16 = Argon2::new(Algorithm::Argon2id, Version::V0x10, Params::DEFAULT)
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password(&v16, &good) && !verify_password(&v16, &bad));

        let real = hash_password(&good).unwrap();
        let (head, _) = real.rsplit_once('$').unwrap();
        for broken in [
            head.to_owned(),
            format!("{head}$"),
            real.replacen("argon2id", "argon3", 1),
            real.replacen("m=19456", "m=1", 1),
            real.replacen("$v=19", "$v=20", 1),
            String::new(),
        ] {
            assert!(!verify_password(&broken, &good), "{broken}");
        }
    }

    #[test]
    fn the_decoy_costs_a_real_check_and_matches_nothing() {
        let decoy = PasswordHash::new(decoy_hash()).unwrap();
        let real_hash = hash_password(&SecretString::from("correct horse")).unwrap();
        let real = PasswordHash::new(&real_hash).unwrap();
        assert_eq!(decoy.algorithm, real.algorithm);
        assert_eq!(decoy.version, real.version);
        assert_eq!(decoy.params, real.params);
        assert_eq!(decoy.hash.unwrap().len(), real.hash.unwrap().len());
        assert_eq!(verify(decoy_hash(), b"correct horse"), Some(false));
    }

    #[test]
    fn argon2_memory_is_reused_and_bounded() {
        let password = SecretString::from("correct horse");
        let hash = hash_password(&password).unwrap();
        // More at once than the pool holds (as the CLI or a test may do).
        std::thread::scope(|scope| {
            for _ in 0..HASHING_AT_ONCE + 2 {
                scope.spawn(|| assert!(verify_password(&hash, &password)));
            }
        });
        let pool = ARGON2_MEMORY.lock().unwrap();
        assert!((1..=HASHING_AT_ONCE).contains(&pool.len()));
        assert!(pool.iter().all(|memory| memory.len() == ARGON2_BLOCKS));
    }

    #[test]
    fn usernames_are_plain() {
        assert!(validate_username("alice.b-c_d9").is_ok());
        for bad in ["", "a b", "ålice", "a/b", &"x".repeat(65)] {
            assert!(validate_username(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn emails_are_checked_loosely_but_safely() {
        assert_eq!(parse_email("").unwrap(), None);
        assert_eq!(parse_email("   ").unwrap(), None);
        assert_eq!(
            parse_email(" Alice.B+cal@Mail.Example.COM ")
                .unwrap()
                .as_deref(),
            Some("Alice.B+cal@mail.example.com")
        );
        assert!(parse_email("o'brien@xn--mnchen-3ya.de").is_ok());
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long = format!("a@{}.com", vec!["b".repeat(60); 5].join("."));
        for bad in [
            "alice",
            "alice@",
            "@example.com",
            "alice@localhost",
            "alice@example",
            "alice@@example.com",
            "a@b@example.com",
            "alice smith@example.com",
            "alice@exa mple.com",
            "alice@example.com\r\nBcc: eve@evil.example",
            "alice@example.com>",
            "\"alice\"@example.com",
            "alice@-example.com",
            "alice@example-.com",
            "alice@example..com",
            ".alice@example.com",
            "al..ice@example.com",
            "alice@1.2.3.4",
            "ålice@example.com",
            "alice@exämple.com",
            "alice@example.com;eve@evil.example",
            long_local.as_str(),
            long.as_str(),
        ] {
            let err = parse_email(bad).unwrap_err();
            assert_eq!(err.status(), 422, "{bad:?}");
            // A fixed message: the address is never echoed.
            assert_eq!(
                err.to_string(),
                "that is not an email address calsync can send to; write it as name@example.com"
            );
        }
    }

    #[test]
    fn token_names_and_lifetimes_are_bounded() {
        assert_eq!(token_name("  deploy bot ").unwrap(), "deploy bot");
        assert_eq!(
            token_name(&"ü".repeat(TOKEN_NAME_MAX))
                .unwrap()
                .chars()
                .count(),
            TOKEN_NAME_MAX
        );
        for bad in [
            "",
            "   ",
            "a\nb",
            "tab\there",
            &"x".repeat(TOKEN_NAME_MAX + 1),
        ] {
            assert_eq!(token_name(bad).unwrap_err().status(), 422, "{bad:?}");
        }
        let now: Timestamp = "2026-12-07T12:00:00Z".parse().unwrap();
        let day = |n: i64| now + SignedDuration::from_hours(24 * n);
        assert_eq!(token_expiry(now, None, None).unwrap(), None);
        assert_eq!(token_expiry(now, Some(30), None).unwrap(), Some(day(30)));
        assert_eq!(
            token_expiry(now, Some(TOKEN_MAX_DAYS), None).unwrap(),
            Some(day(i64::from(TOKEN_MAX_DAYS)))
        );
        // A parent's expiry caps the child's, and is inherited without one.
        assert_eq!(
            token_expiry(now, Some(30), Some(day(2))).unwrap(),
            Some(day(2))
        );
        assert_eq!(
            token_expiry(now, Some(1), Some(day(2))).unwrap(),
            Some(day(1))
        );
        assert_eq!(token_expiry(now, None, Some(day(2))).unwrap(), Some(day(2)));
        for bad in [0, TOKEN_MAX_DAYS + 1, u32::MAX] {
            assert_eq!(
                token_expiry(now, Some(bad), None).unwrap_err().status(),
                422
            );
        }
    }

    #[test]
    fn confirming_is_throttled_per_user_and_forgiven_by_success() {
        let throttle = ConfirmThrottle::default();
        let (alice, bob) = (UserId(1), UserId(2));
        let start = Instant::now();
        for _ in 0..ConfirmThrottle::FREE {
            assert!(throttle.check(alice, start).is_ok());
            throttle.failed(alice, start);
        }
        let wait = throttle.check(alice, start).unwrap_err();
        assert_eq!(wait, ConfirmThrottle::WINDOW);
        assert!(
            throttle.check(bob, start).is_ok(),
            "another user is not held back"
        );
        let later = start + ConfirmThrottle::WINDOW;
        assert!(throttle.check(alice, later).is_ok(), "the window passes");
        throttle.failed(alice, later);
        assert!(
            throttle.check(alice, later).is_ok(),
            "and the count starts over"
        );
        throttle.succeeded(alice);
        assert!(throttle.failures.lock().unwrap().is_empty());
    }

    #[test]
    fn new_tokens_do_not_show_in_debug_output() {
        let created = NewApiToken {
            token: SecretString::from("cst_secret-value"),
            info: ApiTokenInfo {
                id: 1,
                name: "n".into(),
                created_at: Timestamp::UNIX_EPOCH,
                last_used_at: None,
                expires_at: None,
                parent_id: None,
            },
        };
        assert!(!format!("{created:?}").contains("secret-value"));
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
