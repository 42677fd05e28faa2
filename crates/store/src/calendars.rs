//! Calendars of a connection, with the user's choices (on/off, colour).

use calsync_core::model::{
    normalize_color, Calendar, CalendarId, ConnectionId, RemoteCalendar, UserId,
};

use crate::{from_secs, on_pool, Result, Store, StoreError};

/// A change the user asks for; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CalendarPatch {
    pub enabled: Option<bool>,
    /// Already validated as `#rrggbb`.
    pub color: Option<String>,
}

const DEFAULT_COLOR: &str = "#4285f4";

type CalendarRow = (
    i64,
    i64,
    String,
    String,
    String,
    Option<String>,
    bool,
    bool,
    Option<String>,
    Option<i64>,
);

const CALENDAR_COLUMNS: &str =
    "id, connection_id, external_id, name, color, timezone, enabled, is_primary, access_role, last_synced_at";

fn calendar_from_row(row: CalendarRow) -> Calendar {
    let (
        id,
        connection_id,
        external_id,
        name,
        color,
        timezone,
        enabled,
        is_primary,
        access_role,
        last_synced_at,
    ) = row;
    Calendar {
        id: CalendarId(id),
        connection_id: ConnectionId(connection_id),
        external_id,
        name,
        color,
        timezone,
        enabled,
        is_primary,
        access_role,
        last_synced_at: last_synced_at.map(from_secs),
    }
}

impl Store {
    /// The user's calendars, in connection order.
    pub async fn list_calendars(&self, user: UserId) -> Result<Vec<Calendar>> {
        let sql = format!("SELECT {CALENDAR_COLUMNS} FROM calendars WHERE user_id = $1 ORDER BY connection_id, id");
        let rows: Vec<CalendarRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(user.0).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(calendar_from_row).collect())
    }

    /// One of the user's calendars.
    pub async fn calendar(&self, user: UserId, id: CalendarId) -> Result<Calendar> {
        let sql =
            format!("SELECT {CALENDAR_COLUMNS} FROM calendars WHERE id = $1 AND user_id = $2");
        let row: Option<CalendarRow> = on_pool!(self, pool => sqlx::query_as(&sql).bind(id.0).bind(user.0).fetch_optional(pool).await)?;
        row.map(calendar_from_row).ok_or(StoreError::NotFound)
    }

    /// Applies the user's choices to one of their calendars.
    pub async fn patch_calendar(
        &self,
        user: UserId,
        id: CalendarId,
        patch: &CalendarPatch,
    ) -> Result<Calendar> {
        let sql =
            "UPDATE calendars SET enabled = COALESCE($1, enabled), color = COALESCE($2, color) \
                   WHERE id = $3 AND user_id = $4";
        let done = on_pool!(self, pool => sqlx::query(sql)
            .bind(patch.enabled)
            .bind(&patch.color)
            .bind(id.0)
            .bind(user.0)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        self.calendar(user, id).await
    }

    /// Records the calendars a provider lists for a connection: new ones are
    /// added (enabled), known ones keep the user's on/off and colour choices,
    /// and ones it no longer lists (deleted, or no longer shared with the
    /// account) are removed with their events. An empty listing removes
    /// nothing: every account has at least its own calendar, so it is taken
    /// for a provider hiccup rather than a reason to wipe the connection.
    pub async fn upsert_calendars(
        &self,
        user: UserId,
        connection: ConnectionId,
        remote: &[RemoteCalendar],
    ) -> Result<Vec<Calendar>> {
        self.connection(user, connection).await?;
        let sql = "INSERT INTO calendars (connection_id, user_id, external_id, name, color, timezone, is_primary, access_role) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                   ON CONFLICT (connection_id, external_id) DO UPDATE SET \
                       name = excluded.name, timezone = excluded.timezone, \
                       is_primary = excluded.is_primary, access_role = excluded.access_role";
        for cal in remote {
            let color = cal
                .color
                .as_deref()
                .and_then(normalize_color)
                .unwrap_or_else(|| DEFAULT_COLOR.to_owned());
            on_pool!(self, pool => sqlx::query(sql)
                .bind(connection.0)
                .bind(user.0)
                .bind(&cal.external_id)
                .bind(&cal.name)
                .bind(&color)
                .bind(&cal.timezone)
                .bind(cal.is_primary)
                .bind(&cal.access_role)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()))?;
        }
        let mut all = self.list_calendars(user).await?;
        all.retain(|c| c.connection_id == connection);
        if !remote.is_empty() {
            let listed = |c: &Calendar| remote.iter().any(|r| r.external_id == c.external_id);
            for gone in all.iter().filter(|c| !listed(c)) {
                // Events and occurrences go with it (ON DELETE CASCADE).
                on_pool!(self, pool => sqlx::query("DELETE FROM calendars WHERE id = $1 AND user_id = $2")
                    .bind(gone.id.0)
                    .bind(user.0)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected()))?;
            }
            all.retain(listed);
        }
        Ok(all)
    }
}
