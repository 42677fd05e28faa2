//! Microsoft Graph JSON, as serde types (`shared/specs/microsoft-graph.md`
//! §A2 calendars, §A3 delta pages, §A4 the event resource, §A6 the error
//! envelope).
//!
//! Never touches the database. Lenient on purpose: every field Graph may omit
//! is optional, unknown fields are ignored, open enums (`type`, `showAs`,
//! `color`) stay strings, so that a new value from Microsoft never breaks a
//! sync. Delta items stay raw [`serde_json::Value`]s in [`DeltaPage`] so that
//! one odd item is skipped alone instead of failing its page.

use serde::Deserialize;

/// `GET /me` (User.Read), spec §A2.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Me {
    pub id: String,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default)]
    pub user_principal_name: Option<String>,
}

/// One page of `GET /me/calendars`.
#[derive(Debug, Deserialize)]
pub(crate) struct CalendarPage {
    #[serde(default)]
    pub value: Vec<Calendar>,
    #[serde(default, rename = "@odata.nextLink")]
    pub next_link: Option<String>,
}

/// One `microsoft.graph.calendar` (only the fields calsync keeps).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Calendar {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// The preset enum (`auto`, `lightBlue`, ... `maxColor`).
    #[serde(default)]
    pub color: Option<String>,
    /// `#RRGGBB`, or an empty string when the user never picked a colour.
    #[serde(default)]
    pub hex_color: Option<String>,
    #[serde(default)]
    pub is_default_calendar: Option<bool>,
    #[serde(default)]
    pub can_edit: Option<bool>,
    #[serde(default)]
    pub can_share: Option<bool>,
}

/// One page of a `calendarView/delta` round: more pages follow while
/// `@odata.nextLink` is present; the last page has `@odata.deltaLink`.
#[derive(Debug, Deserialize)]
pub(crate) struct DeltaPage {
    #[serde(default)]
    pub value: Vec<serde_json::Value>,
    #[serde(default, rename = "@odata.nextLink")]
    pub next_link: Option<String>,
    #[serde(default, rename = "@odata.deltaLink")]
    pub delta_link: Option<String>,
}

/// A Graph `dateTimeTimeZone`: a local `dateTime` (`YYYY-MM-DDTHH:MM:SS`
/// with up to 7 fractional digits, no offset) and the Windows or IANA zone it
/// is written in.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DateTimeTimeZone {
    #[serde(default)]
    pub date_time: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// `location` (only its display name is kept).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Location {
    #[serde(default)]
    pub display_name: Option<String>,
}

/// One `microsoft.graph.event` of a delta page, spec §A4. A deletion
/// (`@removed`) carries only `id` and `@odata.type`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Event {
    pub id: String,
    #[serde(default, rename = "@removed")]
    pub removed: Option<serde_json::Value>,
    /// `singleInstance`, `occurrence`, `exception` or `seriesMaster`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub series_master_id: Option<String>,
    /// An instance's slot in its series, in UTC (`Edm.DateTimeOffset`).
    #[serde(default)]
    pub original_start: Option<String>,
    #[serde(default)]
    pub original_start_time_zone: Option<String>,
    #[serde(default)]
    pub original_end_time_zone: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub body_preview: Option<String>,
    #[serde(default)]
    pub location: Option<Location>,
    #[serde(default)]
    pub web_link: Option<String>,
    #[serde(default)]
    pub change_key: Option<String>,
    #[serde(default)]
    pub last_modified_date_time: Option<String>,
    #[serde(default)]
    pub is_all_day: Option<bool>,
    #[serde(default)]
    pub is_cancelled: Option<bool>,
    #[serde(default)]
    pub show_as: Option<String>,
    #[serde(default)]
    pub start: Option<DateTimeTimeZone>,
    #[serde(default)]
    pub end: Option<DateTimeTimeZone>,
}

/// Graph's error envelope: `{"error": {"code", "message", "innerError"}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}
