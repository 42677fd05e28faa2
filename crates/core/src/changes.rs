//! Provider change sets: what a provider reports about a calendar's events,
//! in provider-neutral form. Providers build these from their wire formats;
//! the sync planner turns them into store operations.

use jiff::civil::Date;
use jiff::Timestamp;

/// When an event starts or ends, as the provider gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventStart {
    /// An all-day value (for an end: exclusive).
    Date(Date),
    /// An instant, with the IANA (or provider) zone it was written in, if any.
    DateTime {
        instant: Timestamp,
        zone: Option<String>,
    },
}

/// An event's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStatus {
    Confirmed,
    Tentative,
    Cancelled,
}

impl EventStatus {
    /// The name used in JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Tentative => "tentative",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses a provider's or the database's name; unknown names read as confirmed.
    pub fn parse(name: &str) -> Self {
        match name {
            "tentative" => Self::Tentative,
            "cancelled" => Self::Cancelled,
            _ => Self::Confirmed,
        }
    }
}

/// An event as a provider describes it: a single event, a recurring master
/// (with `recurrence` lines) or one instance of a series (an exception, or a
/// cancelled instance, with `recurring_event_id` and `original_start`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEvent {
    pub external_id: String,
    pub etag: Option<String>,
    pub status: EventStatus,
    pub title: String,
    pub description: Option<String>,
    pub location: Option<String>,
    pub start: EventStart,
    pub end: EventStart,
    /// RFC 5545 lines (`RRULE:...`, `EXDATE;TZID=...:...`, `RDATE...`) of a recurring master.
    pub recurrence: Vec<String>,
    /// The master's id, for an instance of a series.
    pub recurring_event_id: Option<String>,
    /// The instance's start in the series before it was moved, for an instance of a series.
    pub original_start: Option<EventStart>,
    pub html_link: Option<String>,
    pub updated: Option<Timestamp>,
}

/// One change to a calendar's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventChange {
    /// Created or changed (a cancelled instance of a series is an upsert too:
    /// it cancels that occurrence).
    Upsert(Box<RemoteEvent>),
    /// The event is gone (instances of its series stay as themselves).
    Removed { external_id: String },
    /// Everything stored under `group` (the event whose external id it is and
    /// the instances whose `recurring_event_id` it is) is now exactly
    /// `events`: what is missing from them goes, the rest is upserted. For
    /// providers whose unit of change holds a whole series, such as a CalDAV
    /// resource (a master with its overrides); an empty list removes the group.
    Replace {
        group: String,
        events: Vec<RemoteEvent>,
    },
}

/// What follows a page of changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageNext {
    /// More pages in this round; fetch with this token.
    Page(String),
    /// The round is complete; the next round starts from this sync cursor.
    Done { sync_token: String },
}

/// One page of changes from a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangePage {
    pub changes: Vec<EventChange>,
    pub next: PageNext,
}
