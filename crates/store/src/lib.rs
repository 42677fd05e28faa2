//! calsync-store: persistence.
//!
//! One [`Store`] type over SQLite (the embedded default) or PostgreSQL (several
//! instances sharing one database). Each query is written once where the two
//! dialects agree (`$1` placeholders work on both) and dispatched to the
//! backend's pool; migrations are kept per backend. Secrets are sealed
//! ([`seal`]) before they are written and opened only on the way out to a
//! provider call.
//!
//! The store owns SQL and nothing else: no HTTP, no provider calls, no
//! business rules beyond the integrity the schema itself expresses. Instants are
//! stored as Unix seconds (UTC), all-day values as `YYYY-MM-DD` text.
//!
//! # Layout
//! - [`seal`]: AEAD sealing of secrets, bound to their row and column.
//! - `migrate`: the ordered migrations of each backend and their runner.
//! - `users`, `tokens`, `sessions`, `oauth_states`: accounts and authentication.
//! - `connections`, `calendars`, `events`: provider data, scoped to a user.
//! - `schedule`: due connections claimed under a lease, sync run records.
//! - `sync`: applying a page of provider changes, its occurrences and cursor atomically.
//! - `keys`: the start-up key check and `keys rotate`.
//! - `janitor`: expired sessions and OAuth states, old sync runs.

mod calendars;
mod connections;
mod error;
mod events;
mod health;
mod janitor;
mod keys;
mod migrate;
mod notices;
mod oauth_states;
mod schedule;
pub mod seal;
mod sessions;
mod sync;
#[cfg(feature = "testing")]
pub mod testing;
mod tokens;
mod users;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use calendars::CalendarPatch;
pub use connections::{ConnectionWithCalendars, NewConnection, TokenState};
pub use error::StoreError;
pub use events::EventRange;
pub use health::SyncBacklog;
pub use janitor::CleanUp;
pub use keys::RotationReport;
pub use notices::ChangeListener;
pub use oauth_states::OAuthState;
pub use schedule::{Claim, ClaimLimits, SyncResult};
use seal::Keyring;
pub use sessions::Session;
pub use sync::{PageOutcome, PageUpdate};
pub use tokens::ApiTokenInfo;

/// Result of a store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool the store has; the body is
/// compiled once per backend, so the same SQL serves both.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.backend {
            $crate::Backend::Sqlite($pool) => $body,
            $crate::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// How a transaction that will write begins on each backend. On SQLite it
/// is `BEGIN IMMEDIATE`, which takes the write lock up front and waits for it
/// per `busy_timeout`: a deferred transaction that reads first fails at once
/// with SQLITE_BUSY when another connection wrote after its read, whatever
/// the timeout.
pub(crate) trait WriteBegin: sqlx::Database {
    const BEGIN: &'static str;
}

impl WriteBegin for sqlx::Sqlite {
    const BEGIN: &'static str = "BEGIN IMMEDIATE";
}

impl WriteBegin for sqlx::Postgres {
    const BEGIN: &'static str = "BEGIN";
}

/// The statement that begins a writing transaction on `pool`'s backend.
pub(crate) fn write_begin<DB: WriteBegin>(_pool: &sqlx::Pool<DB>) -> &'static str {
    DB::BEGIN
}

/// The database, with the keys that seal the secrets in it.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    keyring: Arc<Keyring>,
}

impl Store {
    /// Opens the SQLite file at `path`, creating it (and nothing else) if absent.
    pub async fn open_sqlite(path: &Path, keyring: Arc<Keyring>) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        Ok(Self {
            backend: Backend::Sqlite(pool),
            keyring,
        })
    }

    /// Connects to the PostgreSQL database at `url`.
    ///
    /// TLS is chosen by the URL's `sslmode` as in libpq (sqlx parses it; the
    /// TLS is rustls on ring, the same stack as calsync's HTTP clients):
    /// - `disable`: plaintext (`allow` is taken as `disable`).
    /// - `prefer`, the default when the URL has no `sslmode` and `PGSSLMODE`
    ///   is unset: TLS when the server offers it, else plaintext; the
    ///   certificate is not checked.
    /// - `require`: TLS or no connection; the certificate is not checked, not
    ///   even against `sslrootcert` (libpq would check it then).
    /// - `verify-full`: TLS with a certificate issued by `sslrootcert` (a PEM
    ///   file of one or more CA certificates) or by a public root CA
    ///   (webpki-roots), naming the URL's host.
    /// - `verify-ca`: meant to skip the host name check, but with sqlx 0.8.6
    ///   on rustls >= 0.23.24 it checks the name too (sqlx issue 3793), so it
    ///   is `verify-full`; `tests/postgres_tls.rs` notices when that changes.
    ///
    /// `sslcert` and `sslkey` give a client certificate. The URL carries the
    /// password, so it is neither logged nor kept: `Store`'s `Debug` shows the
    /// pool's size and limits only, and a TLS failure is reported with the
    /// host, port, `sslmode` and `sslrootcert`, never the user or password.
    pub async fn open_postgres(url: &str, keyring: Arc<Keyring>) -> Result<Self> {
        use sqlx::postgres::PgSslMode;
        use sqlx::ConnectOptions as _;

        let options = PgConnectOptions::from_str(url)?;
        // (name, whether TLS may be used, whether the certificate is checked)
        let (mode, tls, verifies) = match options.get_ssl_mode() {
            PgSslMode::Disable => ("disable", false, false),
            PgSslMode::Allow => ("allow", false, false),
            PgSslMode::Prefer => ("prefer", true, false),
            PgSslMode::Require => ("require", true, false),
            PgSslMode::VerifyCa => ("verify-ca", true, true),
            PgSslMode::VerifyFull => ("verify-full", true, true),
        };
        // sqlx has no getter for the CA file (from the URL or PGSSLROOTCERT);
        // its own URL rendering carries it as `file: <path>` or inline PEM.
        let root_cert = options
            .to_url_lossy()
            .query_pairs()
            .find(|(key, _)| key == "sslrootcert")
            .map(|(_, value)| value.trim_start_matches("file: ").to_owned());
        let root_note = match root_cert.as_deref() {
            None => String::new(),
            Some(cert) if cert.starts_with("-----BEGIN") => ", sslrootcert inline".to_owned(),
            Some(path) => format!(", sslrootcert={path}"),
        };
        let target = format!(
            "PostgreSQL at {}:{} (sslmode={mode}{root_note})",
            options.get_host(),
            options.get_port()
        );
        let tls_error = |what: String| StoreError::Database(sqlx::Error::Tls(what.into()));
        // An unreadable CA file would otherwise surface as a bare I/O error
        // ("No such file or directory"), as if the server were down.
        if let Some(path) = root_cert
            .as_deref()
            .filter(|c| verifies && !c.starts_with("-----BEGIN"))
        {
            std::fs::File::open(path)
                .map_err(|err| tls_error(format!("{target}: cannot read sslrootcert: {err}")))?;
        }
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|err| match err {
                sqlx::Error::Tls(source) => tls_error(format!("{target}: {source}")),
                // rustls reports a refused certificate or a fatal alert
                // through the socket, as invalid data.
                sqlx::Error::Io(io) if tls && io.kind() == std::io::ErrorKind::InvalidData => {
                    tls_error(format!("{target}: {io}"))
                }
                other => StoreError::Database(other),
            })?;
        Ok(Self {
            backend: Backend::Postgres(pool),
            keyring,
        })
    }

    /// Opens the database a `CALSYNC_DATABASE_URL` names (`postgres://`,
    /// `postgresql://` or `sqlite://path`). A PostgreSQL URL takes libpq's
    /// `sslmode` and `sslrootcert` parameters ([`Store::open_postgres`]), e.g.
    /// `postgres://calsync:PASSWORD@db.example.com/calsync?sslmode=verify-full&sslrootcert=/etc/calsync/db-ca.pem`.
    /// The URL is never logged: it carries the password.
    pub async fn open_url(url: &str, keyring: Arc<Keyring>) -> Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::open_postgres(url, keyring).await
        } else if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = path.split('?').next().unwrap_or(path);
            Self::open_sqlite(Path::new(path), keyring).await
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }

    /// Which database this is.
    pub fn kind(&self) -> BackendKind {
        match self.backend {
            Backend::Sqlite(_) => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// Applies pending migrations, then checks that every sealed secret in the
    /// database opens with a configured key, so a wrong key fails at start and
    /// not in the middle of a sync.
    pub async fn prepare(&self) -> Result<()> {
        self.migrate().await?;
        self.check_keys().await
    }

    /// Answers whether the database is reachable.
    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await);
    }

    pub(crate) fn keyring(&self) -> &Keyring {
        &self.keyring
    }
}

/// Seconds since the Unix epoch, the stored form of an instant.
pub(crate) fn to_secs(t: jiff::Timestamp) -> i64 {
    t.as_second()
}

/// The instant a stored value names; out-of-range values (hand-edited rows)
/// read as the epoch rather than failing a whole listing.
pub(crate) fn from_secs(secs: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(secs).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}
