//! Google Calendar v3 and OAuth JSON, as serde types (spec §2.1, §2.2, §2.4).
//!
//! Never touches the database. Lenient on purpose: every field Google may
//! omit is optional, unknown fields are ignored, open enums (`status`,
//! `eventType`, `accessRole`) stay strings, so that a new value from Google
//! never breaks a sync (spec §6, problem 7).

use serde::Deserialize;

/// `calendarList.list`'s answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CalendarList {
    #[serde(default)]
    pub items: Vec<CalendarListEntry>,
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// One `calendar#calendarListEntry`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CalendarListEntry {
    pub id: String,
    #[serde(default)]
    pub summary: Option<String>,
    /// The user's own name for a calendar they subscribed to; wins over `summary`.
    #[serde(default)]
    pub summary_override: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub color_id: Option<String>,
    #[serde(default)]
    pub background_color: Option<String>,
    #[serde(default)]
    pub access_role: Option<String>,
    #[serde(default)]
    pub primary: Option<bool>,
    #[serde(default)]
    pub deleted: Option<bool>,
}

/// `events.list`'s answer; items stay raw so that one odd event is skipped
/// alone instead of failing the page.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Events {
    #[serde(default)]
    pub items: Vec<serde_json::Value>,
    #[serde(default)]
    pub next_page_token: Option<String>,
    #[serde(default)]
    pub next_sync_token: Option<String>,
    /// The calendar's zone (the listing's default).
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// One `calendar#event` (only the fields calsync keeps).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Event {
    pub id: String,
    #[serde(default)]
    pub etag: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub html_link: Option<String>,
    #[serde(default)]
    pub updated: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub start: Option<EventDateTime>,
    #[serde(default)]
    pub end: Option<EventDateTime>,
    #[serde(default)]
    pub end_time_unspecified: Option<bool>,
    #[serde(default)]
    pub recurrence: Option<Vec<String>>,
    #[serde(default)]
    pub recurring_event_id: Option<String>,
    #[serde(default)]
    pub original_start_time: Option<EventDateTime>,
}

/// `start`, `end` and `originalStartTime`: `date` (all-day) or `dateTime`
/// (+ optional `timeZone`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventDateTime {
    #[serde(default)]
    pub date: Option<String>,
    #[serde(default)]
    pub date_time: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// Google's error envelope (spec §3.1).
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub errors: Vec<ErrorItem>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub details: Vec<ErrorDetail>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorItem {
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorDetail {
    #[serde(default)]
    pub reason: Option<String>,
}

/// The userinfo answer: OIDC (`sub`) or oauth2 v2 (`id`).
#[derive(Debug, Deserialize)]
pub(crate) struct UserInfo {
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}
