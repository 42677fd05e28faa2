//! Calendars of a connection, with the user's choices (on/off, colour).

use calsync_core::model::{
    normalize_color, Calendar, CalendarId, ConnectionId, RemoteCalendar, RemovalDecision, UserId,
};

use jiff::Timestamp;

use crate::sync::hold_lease;
use crate::{from_secs, on_pool, Claim, Result, Store, StoreError};

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
    Option<i64>,
    Option<String>,
    i64,
);

const CALENDAR_COLUMNS: &str =
    "id, connection_id, external_id, name, color, timezone, enabled, is_primary, access_role, last_synced_at, \
     held_removals, removal_decision, missing_listings";

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
        held_removals,
        removal_decision,
        missing_listings,
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
        held_removals: held_removals.and_then(|n| u64::try_from(n).ok()),
        removal_decision: removal_decision.as_deref().and_then(RemovalDecision::parse),
        missing_listings: u32::try_from(missing_listings).unwrap_or(u32::MAX),
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

    /// Records the user's decision about the removals a round held back on
    /// one of their calendars; the connection's next round carries it out
    /// (rounds are the only writers of a calendar's events). `Conflict` when
    /// nothing is held.
    pub async fn decide_removals(
        &self,
        user: UserId,
        id: CalendarId,
        decision: RemovalDecision,
    ) -> Result<Calendar> {
        let calendar = self.calendar(user, id).await?;
        if calendar.held_removals.is_none() {
            return Err(StoreError::NothingHeld);
        }
        let sql = "UPDATE calendars SET removal_decision = $1 WHERE id = $2 AND user_id = $3 AND held_removals IS NOT NULL";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(decision.as_str())
            .bind(id.0)
            .bind(user.0)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        self.calendar(user, id).await
    }

    /// Records the calendars a provider lists for the round's connection:
    /// new ones are added (enabled), known ones keep the user's on/off and
    /// colour choices. A calendar missing from a listing is kept (and not
    /// synced); missing from two listings in a row, it goes with its events
    /// only when it has none, or when the user agreed: otherwise its removal
    /// is held like a mass removal. An empty listing changes nothing: every
    /// account has at least its own calendar, so it is taken for a provider
    /// hiccup. Returns the connection's calendars, listed ones first.
    pub async fn upsert_calendars(
        &self,
        claim: &Claim,
        lease_until: Timestamp,
        remote: &[RemoteCalendar],
    ) -> Result<Vec<Calendar>> {
        let (user, connection) = (claim.user_id, claim.connection_id);
        let upsert = "INSERT INTO calendars (connection_id, user_id, external_id, name, color, timezone, is_primary, access_role) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                   ON CONFLICT (connection_id, external_id) DO UPDATE SET \
                       name = excluded.name, timezone = excluded.timezone, \
                       is_primary = excluded.is_primary, access_role = excluded.access_role, \
                       held_removals = CASE WHEN calendars.missing_listings >= 2 THEN NULL ELSE calendars.held_removals END, \
                       removal_decision = CASE WHEN calendars.missing_listings >= 2 THEN NULL ELSE calendars.removal_decision END, \
                       missing_listings = 0";
        let known = self.list_calendars(user).await?;
        let missing: Vec<&Calendar> = known
            .iter()
            .filter(|c| c.connection_id == connection)
            .filter(|c| {
                !remote.is_empty() && !remote.iter().any(|r| r.external_id == c.external_id)
            })
            .collect();
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(crate::write_begin(pool)).await?;
            hold_lease!(&mut tx, claim, lease_until);
            for cal in remote {
                let color = cal
                    .color
                    .as_deref()
                    .and_then(normalize_color)
                    .unwrap_or_else(|| DEFAULT_COLOR.to_owned());
                sqlx::query(upsert)
                    .bind(connection.0)
                    .bind(user.0)
                    .bind(&cal.external_id)
                    .bind(&cal.name)
                    .bind(&color)
                    .bind(&cal.timezone)
                    .bind(cal.is_primary)
                    .bind(&cal.access_role)
                    .execute(&mut *tx)
                    .await?;
            }
            for gone in missing {
                let misses = gone.missing_listings.saturating_add(1);
                let (events,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(DISTINCT COALESCE(recurring_event_id, external_id)) FROM events WHERE calendar_id = $1",
                )
                    .bind(gone.id.0)
                    .fetch_one(&mut *tx)
                    .await?;
                let decided = gone.removal_decision.filter(|_| gone.missing_listings >= 2);
                if misses >= 2 && (events == 0 || decided == Some(RemovalDecision::Apply)) {
                    // Events and occurrences go with it (ON DELETE CASCADE).
                    sqlx::query("DELETE FROM calendars WHERE id = $1").bind(gone.id.0).execute(&mut *tx).await?;
                } else if decided == Some(RemovalDecision::Reject) {
                    sqlx::query("UPDATE calendars SET missing_listings = 0, held_removals = NULL, removal_decision = NULL WHERE id = $1")
                        .bind(gone.id.0)
                        .execute(&mut *tx)
                        .await?;
                } else {
                    let held = (misses >= 2).then_some(events);
                    sqlx::query("UPDATE calendars SET missing_listings = $1, held_removals = COALESCE($2, held_removals) WHERE id = $3")
                        .bind(i64::from(misses))
                        .bind(held)
                        .bind(gone.id.0)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
        });
        let mut all = self.list_calendars(user).await?;
        all.retain(|c| c.connection_id == connection);
        all.sort_by_key(|c| c.missing_listings > 0);
        Ok(all)
    }
}
