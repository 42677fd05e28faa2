//! Connections: one provider account of one user, with its sealed tokens.
//!
//! Every read and write takes the owning user, so another user's id finds
//! nothing (the API answers 404, as if it did not exist).

use calsync_core::model::{
    Calendar, Connection, ConnectionId, ConnectionStatus, Provider, SyncRun, UserId, WaitReason,
};
use jiff::Timestamp;
use secrecy::SecretString;

use crate::seal::SealContext;
use crate::{from_secs, on_pool, to_secs, Result, Store, StoreError};

/// A connection and its calendars, as Settings lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionWithCalendars {
    pub connection: Connection,
    pub calendars: Vec<Calendar>,
    /// The latest sync runs, newest first.
    pub recent_runs: Vec<SyncRun>,
}

/// How many sync runs a connection listing carries.
const RECENT_RUNS: u32 = 5;

/// provider, account_id, sealed access token, sealed refresh token, expiry.
type SealedTokensRow = (String, String, Option<String>, Option<String>, Option<i64>);

/// A connection's tokens, opened.
#[derive(Debug)]
pub struct TokenState {
    pub access_token: Option<SecretString>,
    pub refresh_token: Option<SecretString>,
    pub expires_at: Option<Timestamp>,
}

/// What a finished OAuth flow (or a CalDAV login) hands to the store.
#[derive(Debug)]
pub struct NewConnection {
    pub user_id: UserId,
    pub provider: Provider,
    pub account_id: String,
    pub account_email: Option<String>,
    pub access_token: Option<SecretString>,
    pub refresh_token: Option<SecretString>,
    pub token_expires_at: Option<Timestamp>,
    pub scopes: String,
}

/// The additional data binding a connection's secret to its row: the row's
/// natural key, known before the row is inserted.
pub(crate) fn token_context(
    user: i64,
    provider: &str,
    account_id: &str,
    column: &str,
) -> SealContext {
    SealContext::new(
        "connections",
        column,
        &format!("{user}:{provider}:{account_id}"),
    )
}

type ConnectionRow = (
    i64,
    i64,
    String,
    String,
    Option<String>,
    String,
    Option<i64>,
    Option<String>,
    i64,
    i64,
    Option<i64>,
    Option<String>,
);

const CONNECTION_COLUMNS: &str = "id, user_id, provider, account_id, account_email, status, \
     last_synced_at, last_error, created_at, consecutive_failures, next_sync_at, wait_reason";

fn connection_from_row(row: ConnectionRow) -> Option<Connection> {
    let (
        id,
        user_id,
        provider,
        account_id,
        account_email,
        status,
        last_synced_at,
        last_error,
        created_at,
        consecutive_failures,
        next_sync_at,
        wait_reason,
    ) = row;
    Some(Connection {
        id: ConnectionId(id),
        user_id: UserId(user_id),
        provider: Provider::parse(&provider)?,
        account_id,
        account_email,
        status: ConnectionStatus::parse(&status),
        last_synced_at: last_synced_at.map(from_secs),
        last_error,
        created_at: from_secs(created_at),
        consecutive_failures: u32::try_from(consecutive_failures).unwrap_or(u32::MAX),
        next_sync_at: next_sync_at.map(from_secs),
        wait_reason: wait_reason.as_deref().and_then(WaitReason::parse),
    })
}

impl Store {
    /// Creates the connection, or updates the one this user already has for
    /// this provider account (reconnecting never duplicates). Reconnecting
    /// clears `needs_reauth`, and fences off a round still running with the
    /// old credentials (a new round starts at once).
    pub async fn upsert_connection(
        &self,
        new: &NewConnection,
        now: Timestamp,
    ) -> Result<ConnectionId> {
        let provider = new.provider.as_str();
        let seal = |secret: &Option<SecretString>, column| {
            secret
                .as_ref()
                .map(|s| {
                    self.keyring().seal(
                        s,
                        &token_context(new.user_id.0, provider, &new.account_id, column),
                    )
                })
                .transpose()
        };
        let access = seal(&new.access_token, "access_token")?;
        let refresh = seal(&new.refresh_token, "refresh_token")?;
        let sql = "INSERT INTO connections (user_id, provider, account_id, account_email, access_token, refresh_token, \
                       token_expires_at, scopes, status, next_sync_at, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $9, $9) \
                   ON CONFLICT (user_id, provider, account_id) DO UPDATE SET \
                       account_email = excluded.account_email, access_token = excluded.access_token, \
                       refresh_token = COALESCE(excluded.refresh_token, connections.refresh_token), \
                       token_expires_at = excluded.token_expires_at, scopes = excluded.scopes, \
                       status = 'pending', last_error = NULL, next_sync_at = excluded.next_sync_at, \
                       updated_at = excluded.updated_at, wait_reason = NULL, consecutive_failures = 0, \
                       lease_token = connections.lease_token + 1, lease_until = NULL, sync_again = FALSE \
                   RETURNING id";
        let (id,): (i64,) = on_pool!(self, pool => sqlx::query_as(sql)
            .bind(new.user_id.0)
            .bind(provider)
            .bind(&new.account_id)
            .bind(&new.account_email)
            .bind(&access)
            .bind(&refresh)
            .bind(new.token_expires_at.map(to_secs))
            .bind(&new.scopes)
            .bind(to_secs(now))
            .fetch_one(pool)
            .await)?;
        Ok(ConnectionId(id))
    }

    /// One of the user's connections.
    pub async fn connection(&self, user: UserId, id: ConnectionId) -> Result<Connection> {
        let sql =
            format!("SELECT {CONNECTION_COLUMNS} FROM connections WHERE id = $1 AND user_id = $2");
        let row: Option<ConnectionRow> = on_pool!(self, pool => sqlx::query_as(&sql).bind(id.0).bind(user.0).fetch_optional(pool).await)?;
        row.and_then(connection_from_row)
            .ok_or(StoreError::NotFound)
    }

    /// The user's connections, oldest first, each with its calendars and
    /// latest sync runs.
    pub async fn list_connections(&self, user: UserId) -> Result<Vec<ConnectionWithCalendars>> {
        let sql =
            format!("SELECT {CONNECTION_COLUMNS} FROM connections WHERE user_id = $1 ORDER BY id");
        let rows: Vec<ConnectionRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(user.0).fetch_all(pool).await)?;
        let mut calendars = self.list_calendars(user).await?;
        let mut listed = Vec::with_capacity(rows.len());
        for connection in rows.into_iter().filter_map(connection_from_row) {
            let (mine, rest) = calendars
                .drain(..)
                .partition(|c| c.connection_id == connection.id);
            calendars = rest;
            let recent_runs = self.recent_sync_runs(connection.id, RECENT_RUNS).await?;
            listed.push(ConnectionWithCalendars {
                connection,
                calendars: mine,
                recent_runs,
            });
        }
        Ok(listed)
    }

    /// Deletes one of the user's connections with its tokens, calendars and events.
    pub async fn delete_connection(&self, user: UserId, id: ConnectionId) -> Result<()> {
        let sql = "DELETE FROM connections WHERE id = $1 AND user_id = $2";
        let done = on_pool!(self, pool => sqlx::query(sql).bind(id.0).bind(user.0).execute(pool).await.map(|r| r.rows_affected()))?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// The connection's tokens, opened, for a provider call.
    pub async fn connection_tokens(&self, user: UserId, id: ConnectionId) -> Result<TokenState> {
        let sql = "SELECT provider, account_id, access_token, refresh_token, token_expires_at \
                   FROM connections WHERE id = $1 AND user_id = $2";
        let row: Option<SealedTokensRow> = on_pool!(self, pool => sqlx::query_as(sql).bind(id.0).bind(user.0).fetch_optional(pool).await)?;
        let (provider, account_id, access, refresh, expires_at) =
            row.ok_or(StoreError::NotFound)?;
        let open = |sealed: Option<String>, column| {
            sealed
                .map(|s| {
                    self.keyring()
                        .open(&s, &token_context(user.0, &provider, &account_id, column))
                })
                .transpose()
        };
        Ok(TokenState {
            access_token: open(access, "access_token")?,
            refresh_token: open(refresh, "refresh_token")?,
            expires_at: expires_at.map(from_secs),
        })
    }

    /// Stores refreshed tokens; a `None` refresh token keeps the stored one
    /// (Google does not send a new one on refresh; Microsoft rotates it).
    pub async fn update_tokens(
        &self,
        user: UserId,
        id: ConnectionId,
        access_token: &SecretString,
        refresh_token: Option<&SecretString>,
        expires_at: Option<Timestamp>,
    ) -> Result<()> {
        let connection = self.connection(user, id).await?;
        let (provider, account) = (connection.provider.as_str(), connection.account_id.as_str());
        let access = self.keyring().seal(
            access_token,
            &token_context(user.0, provider, account, "access_token"),
        )?;
        let refresh = refresh_token
            .map(|t| {
                self.keyring().seal(
                    t,
                    &token_context(user.0, provider, account, "refresh_token"),
                )
            })
            .transpose()?;
        let sql = "UPDATE connections SET access_token = $1, refresh_token = COALESCE($2, refresh_token), \
                   token_expires_at = $3 WHERE id = $4 AND user_id = $5";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(access)
            .bind(refresh)
            .bind(expires_at.map(to_secs))
            .bind(id.0)
            .bind(user.0)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The connection's refresh token, opened, for a provider call.
    pub async fn refresh_token(
        &self,
        user: UserId,
        id: ConnectionId,
    ) -> Result<Option<SecretString>> {
        let sql = "SELECT provider, account_id, refresh_token FROM connections WHERE id = $1 AND user_id = $2";
        let row: Option<(String, String, Option<String>)> = on_pool!(self, pool => sqlx::query_as(sql).bind(id.0).bind(user.0).fetch_optional(pool).await)?;
        let (provider, account_id, sealed) = row.ok_or(StoreError::NotFound)?;
        sealed
            .map(|s| {
                self.keyring().open(
                    &s,
                    &token_context(user.0, &provider, &account_id, "refresh_token"),
                )
            })
            .transpose()
            .map_err(StoreError::from)
    }
}
