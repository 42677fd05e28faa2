//! The JSON API under `/api/calendar/` (design.md §4), and the caller's own
//! account under `/api/me/` and `/api/tokens/` (§8), one module per resource.
//! Handlers extract, call the store or a service, and map the result.

pub mod calendars;
pub mod connections;
pub mod events;
pub mod me;
pub mod providers;
pub mod stream;
pub mod sync;
pub mod tokens;

use jiff::Timestamp;

/// RFC 3339 in UTC, the form every instant takes in the API.
pub fn rfc3339(t: Timestamp) -> String {
    t.to_string()
}
