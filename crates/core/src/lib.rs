//! calsync-core: the pure domain of calsync.
//!
//! Ids and models, the sync planner, the iCalendar model and the recurrence
//! expander, time zones, and the [`clock::Clock`] through which domain code
//! learns the time.
//!
//! This crate must stay free of IO: no tokio, no sqlx, no HTTP, no file system,
//! no reading of the wall clock outside [`clock::SystemClock`]. Everything here
//! is a function of its inputs, which keeps it testable and deterministic.
//!
//! # Layout
//! - [`changes`]: provider change sets (events as providers report them).
//! - [`clock`]: the `Clock` trait and its system and fixed implementations.
//! - [`model`]: ids, users, connections, calendars, event occurrences.
//! - [`plan`]: the sync planner: cursors, and a series' occurrences over the horizon.
//! - [`ical`]: iCalendar parsing into provider-neutral recurrence series.
//! - [`recur`]: the recurrence expander (RRULE, RDATE, EXDATE, overrides) over a window.
//! - [`tz`]: time zone names (IANA, Windows, VTIMEZONE) and the DST gap/fold rule.

pub mod changes;
pub mod clock;
pub mod ical;
pub mod model;
pub mod plan;
pub mod recur;
pub mod tz;
