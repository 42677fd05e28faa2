//! The store's error type.

use crate::seal::SealError;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("not found")]
    NotFound,
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("migration {version} failed")]
    Migration {
        version: i64,
        #[source]
        source: sqlx::Error,
    },
    #[error("the database was migrated by a newer calsync (version {0}); upgrade calsync")]
    NewerSchema(i64),
    #[error(
        "the database holds secrets sealed with key id {0}, which the configured keys do not include; \
         set CALSYNC_ENCRYPTION_KEY (or the key file) to the key they were sealed with"
    )]
    MissingKey(String),
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The blocking task that expands series did not finish (it panicked).
    #[error("expanding recurring events failed")]
    Expansion,
    #[error("nothing is held on this calendar")]
    NothingHeld,
    /// The round's lease was taken over (it ran out, or the connection was
    /// deleted or reconnected): the round must stop without writing.
    #[error("the sync lease was lost")]
    LeaseLost,
    #[error("CALSYNC_DATABASE_URL must start with postgres://, postgresql:// or sqlite://")]
    UnsupportedUrl,
}

impl StoreError {
    /// Whether the database could not be reached (as opposed to refusing a query).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)
            )
        )
    }

    /// Turns a unique-constraint violation into [`StoreError::Conflict`].
    pub(crate) fn unique_as_conflict(err: sqlx::Error, what: &'static str) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict(what),
            _ => Self::Database(err),
        }
    }
}
