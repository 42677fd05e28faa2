//! The emulator's whole world in memory: OAuth clients, accounts with their
//! calendars and events, grants and tokens, sync and page cursors, faults, the
//! request log and a controllable clock.
//!
//! One `std::sync::Mutex` guards it; it is never held across an `.await`, so
//! handlers lock, compute, unlock. Every change to a calendar or event takes a
//! number from one global change counter: an event's `seq` is the counter value
//! of its last change, and a sync token remembers the counter value at the
//! moment its listing began, so "changed since the token" is `seq > token.seq`.
//! This module holds data and small invariants; protocol rules live in the
//! handler modules.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::util;
use crate::{EmulatorConfig, OAuthClient};

/// Shared handle given to every handler.
pub type AppState = Arc<Shared>;

pub struct Shared {
    inner: Mutex<Inner>,
    /// The configuration given at start; `reset` returns to it.
    pub config: EmulatorConfig,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base_url: String,
}

impl Shared {
    pub fn new(config: EmulatorConfig, base_url: String) -> Self {
        let inner = Inner::from_config(&config, &base_url);
        Self {
            inner: Mutex::new(inner),
            config,
            base_url,
        }
    }

    /// Locks the world. A poisoned lock (a handler panicked) is recovered:
    /// an emulator that stops answering would hide the real failure.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn reset(&self) {
        let mut fresh = Inner::from_config(&self.config, &self.base_url);
        let mut inner = self.lock();
        // The delivery worker outlives resets.
        fresh.outbox = inner.outbox.take();
        *inner = fresh;
    }
}

/// Runtime switches, changeable through `PUT /_emulator/settings`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Skip the consent page: approve at once for `login_hint` or the first account.
    pub auto_approve: bool,
    /// Make some listing pages shorter than `maxResults` (and one empty), as Google does.
    pub uneven_pages: bool,
    /// Serve at most this many items per page whatever `maxResults` says
    /// (Google may return fewer); forces pagination of small calendars in tests.
    pub page_size_cap: Option<usize>,
    /// Refresh grant also returns a new refresh token (the old one keeps working).
    pub rotate_refresh_tokens: bool,
    /// "Testing" publishing status: refresh tokens die 7 days after consent.
    pub testing_mode: bool,
    /// The next consent decision is "Deny" regardless of the button (one-shot).
    pub deny_next_consent: bool,
    /// Granular consent: these requested scopes are not granted.
    pub drop_scopes: Vec<String>,
    /// Never issue refresh tokens (like a client misconfiguration).
    pub omit_refresh_token: bool,
    /// Access token lifetime in seconds (Google: 3599).
    pub access_token_ttl_secs: i64,
    /// Per-user requests per minute on the Calendar API (Google: 600); `None` = unlimited.
    pub rate_limit_per_minute: Option<u32>,
    /// Write event `dateTime`s in the calendar's zone, as Google does (off:
    /// keep each event's own offsets). The `timeZone` parameter always applies.
    pub render_in_calendar_zone: bool,
    /// Accept plain-http push callbacks on any host (loopback http is always accepted).
    pub allow_http_callbacks: bool,
    /// Longest push channel life in seconds (default and cap: 7 days).
    pub max_channel_ttl_secs: i64,
    /// `[min, max]` milliseconds: every provider API request (Calendar API
    /// `/calendar/v3/…` and Graph `/v1.0/…`) waits a uniformly random time in
    /// this range before it is served, like a real provider's latency. OAuth,
    /// identity and consent endpoints and the control API are not delayed.
    /// `None` (default) = answer at once.
    pub latency_ms: Option<[u64; 2]>,
    /// Claims written over those of every Google id_token issued (a fault:
    /// e.g. `{"aud": "someone-else"}`, `{"iss": "https://evil.example"}` or
    /// `{"exp": 0}`); a JSON `null` removes the claim. Empty: correct tokens.
    pub id_token_claims: serde_json::Map<String, serde_json::Value>,
}

/// The longest latency `latency_ms` accepts (a minute).
pub const MAX_LATENCY_MS: u64 = 60_000;

impl Settings {
    /// Checks the values a client can get wrong (`latency_ms`).
    pub fn validate(&self) -> Result<(), String> {
        if let Some([min, max]) = self.latency_ms {
            if min > max {
                return Err(format!("latency_ms: min {min} is above max {max}"));
            }
            if max > MAX_LATENCY_MS {
                return Err(format!("latency_ms: at most {MAX_LATENCY_MS} ms"));
            }
        }
        Ok(())
    }

    /// The latency for one provider API request: uniform in `latency_ms`.
    pub fn draw_latency(&self) -> Option<u64> {
        let [min, max] = self.latency_ms?;
        let span = max.saturating_sub(min).saturating_add(1);
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&util::random_bytes(8)[..8]);
        Some(min + u64::from_le_bytes(bytes) % span)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            auto_approve: false,
            uneven_pages: true,
            page_size_cap: None,
            rotate_refresh_tokens: false,
            testing_mode: false,
            deny_next_consent: false,
            drop_scopes: Vec::new(),
            omit_refresh_token: false,
            access_token_ttl_secs: 3599,
            rate_limit_per_minute: None,
            render_in_calendar_zone: true,
            allow_http_callbacks: false,
            max_channel_ttl_secs: 604_800,
            latency_ms: None,
            id_token_claims: serde_json::Map::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Account {
    pub sub: String,
    pub email: String,
    pub name: String,
    pub calendars: Vec<Calendar>,
    /// Bumped to invalidate every calendar-list sync token of this account.
    pub list_epoch: u64,
}

#[derive(Debug, Clone)]
pub struct Calendar {
    pub id: String,
    pub summary: String,
    pub summary_override: Option<String>,
    pub description: Option<String>,
    pub location: Option<String>,
    pub time_zone: String,
    pub color_id: String,
    pub background_color: String,
    pub foreground_color: String,
    pub access_role: String,
    pub primary: bool,
    pub hidden: bool,
    pub selected: bool,
    pub deleted: bool,
    pub etag: String,
    /// Change number of the last change visible to calendar-list sync.
    pub list_seq: u64,
    /// Bumped to invalidate every events sync token of this calendar.
    pub epoch: u64,
    pub events: BTreeMap<String, StoredEvent>,
}

/// An event (single, series master or exception) as Google stores it: the JSON
/// resource plus the change number of its last write.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub body: Map<String, Value>,
    pub seq: u64,
}

impl StoredEvent {
    pub fn status(&self) -> &str {
        self.body
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("confirmed")
    }
    pub fn is_cancelled(&self) -> bool {
        self.status() == "cancelled"
    }
    pub fn recurring_event_id(&self) -> Option<&str> {
        self.body.get("recurringEventId").and_then(Value::as_str)
    }
    pub fn is_master(&self) -> bool {
        self.body
            .get("recurrence")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    }
    pub fn etag(&self) -> &str {
        self.body.get("etag").and_then(Value::as_str).unwrap_or("")
    }
}

/// An authorization request waiting for the tester's decision on the consent page.
#[derive(Debug, Clone)]
pub struct PendingAuth {
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub code_challenge: Option<(String, String)>,
    pub offline: bool,
    pub prompt_consent: bool,
    pub login_hint: Option<String>,
    pub nonce: Option<String>,
    /// `include_granted_scopes=true`: the token also covers earlier grants.
    pub include_granted: bool,
    pub created: Timestamp,
}

#[derive(Debug, Clone)]
pub struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub sub: String,
    pub scopes: Vec<String>,
    pub code_challenge: Option<(String, String)>,
    pub issue_refresh: bool,
    pub nonce: Option<String>,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct AccessToken {
    pub sub: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct RefreshToken {
    pub sub: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub issued_at: Timestamp,
    pub last_used_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

/// What a sync token stands for.
#[derive(Debug, Clone)]
pub enum SyncToken {
    Events {
        sub: String,
        calendar_id: String,
        epoch: u64,
        seq: u64,
    },
    CalendarList {
        sub: String,
        epoch: u64,
        seq: u64,
    },
}

/// A paginated listing, frozen at its first page so that later pages are
/// consistent (changes made meanwhile arrive with the next sync). Page tokens
/// point into it and stay valid when reused (a client that crashed between
/// pages asks for the same page again, as Google allows).
#[derive(Debug, Clone)]
pub struct PageCursor {
    pub sub: String,
    /// What was listed (`events:<calendar id>`, `calendarList`, ...): a page
    /// token only continues the same listing.
    pub scope: String,
    pub items: Vec<Value>,
    pub max_results: usize,
    pub envelope: Map<String, Value>,
    /// Minted as `nextSyncToken` on the last page, if the query allows it.
    pub sync: Option<SyncToken>,
}

/// Where a page token points: a snapshot and the offset of its page.
#[derive(Debug, Clone, Copy)]
pub struct PageRef {
    pub snapshot: u64,
    pub offset: usize,
    pub page_no: usize,
}

/// An injected fault for the next `count` requests matching it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fault {
    #[serde(default)]
    pub id: u64,
    /// Matches when the request path starts with this (e.g. `/calendar/v3/`, `/token`).
    #[serde(default = "slash")]
    pub path_prefix: String,
    /// Only this HTTP method (any when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// How many matching requests it affects.
    #[serde(default = "one")]
    pub count: u32,
    /// Answer with this status instead of serving the request.
    #[serde(default)]
    pub status: Option<u16>,
    /// Error reason (default by status: 403/429 rateLimitExceeded, 5xx backendError).
    #[serde(default)]
    pub reason: Option<String>,
    /// `Retry-After` seconds on the answer.
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Wait this long first (a slow response; with no status the request is then served).
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// Send the status line and headers, then drop the connection mid-body.
    #[serde(default)]
    pub drop_connection: bool,
}

impl Default for Fault {
    /// The next one request, any path, nothing injected yet (set `status`,
    /// `delay_ms` or `drop_connection`).
    fn default() -> Self {
        Self {
            id: 0,
            path_prefix: slash(),
            method: None,
            count: one(),
            status: None,
            reason: None,
            retry_after: None,
            delay_ms: None,
            drop_connection: false,
        }
    }
}

fn slash() -> String {
    "/".to_owned()
}
fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    pub seq: u64,
    pub time: String,
    pub method: String,
    pub path: String,
    /// Query with token-like parameters redacted.
    pub query: String,
    pub status: u16,
    /// Email of the account whose access token was presented, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<u64>,
    /// Which Bearer token was presented: `access:<8 hex of its SHA-256>`
    /// (`unknown:...` if the emulator does not know it), never the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The latency the request waited (`latency_ms` setting) before it was
    /// served; `time` minus this is about when it arrived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
}

pub const MAX_LOG: usize = 100_000;
/// Snapshots kept for page tokens: at most this many, holding at most
/// `MAX_PINNED_ITEMS` items together; the oldest go first.
const MAX_SNAPSHOTS: usize = 512;
const MAX_PINNED_ITEMS: usize = 300_000;

pub struct Inner {
    pub settings: Settings,
    pub clock_offset: SignedDuration,
    pub clients: BTreeMap<String, OAuthClient>,
    pub accounts: Vec<Account>,
    pub pending: HashMap<String, PendingAuth>,
    pub codes: HashMap<String, AuthCode>,
    /// (sub, client_id) -> granted scopes. Present = "has consented before".
    pub grants: HashMap<(String, String), BTreeSet<String>>,
    pub access_tokens: HashMap<String, AccessToken>,
    pub refresh_tokens: HashMap<String, RefreshToken>,
    pub sync_tokens: HashMap<String, SyncToken>,
    pub snapshots: HashMap<u64, Arc<PageCursor>>,
    snapshot_order: VecDeque<(u64, usize, Vec<String>)>,
    pub page_tokens: HashMap<String, PageRef>,
    next_snapshot: u64,
    pinned_items: usize,
    pub faults: Vec<Fault>,
    pub next_fault_id: u64,
    pub log: VecDeque<LogEntry>,
    pub log_seq: u64,
    /// Calendar API request times per account, for the optional rate limiter.
    pub rate_window: HashMap<String, VecDeque<Timestamp>>,
    pub channels: Vec<crate::push::Channel>,
    pub outbox: Option<crate::push::Outbox>,
    pub deliveries: VecDeque<crate::push::Delivery>,
    /// The Microsoft identity platform + Graph side.
    pub ms: crate::microsoft::state::World,
    change_counter: u64,
    /// Account lookups by email and `sub` without a walk over every account
    /// (a capacity benchmark holds 10,000 of them).
    account_index: AccountIndex,
}

/// Positions in `Inner::accounts` by lower-cased email and by `sub`, filled
/// by `ensure_account`. A hit is checked against the account; a miss (an
/// account changed or pushed some other way) walks the list as before.
#[derive(Debug, Default)]
struct AccountIndex {
    by_email: HashMap<String, usize>,
    by_sub: HashMap<String, usize>,
}

impl AccountIndex {
    fn add(&mut self, ix: usize, email: &str, sub: &str) {
        self.by_email
            .entry(email.to_ascii_lowercase())
            .or_insert(ix);
        self.by_sub.entry(sub.to_owned()).or_insert(ix);
    }
}

impl Inner {
    fn from_config(config: &EmulatorConfig, base_url: &str) -> Self {
        let mut inner = Inner {
            settings: Settings {
                auto_approve: config.auto_approve,
                ..config.settings.clone()
            },
            clock_offset: SignedDuration::ZERO,
            clients: config
                .clients
                .iter()
                .map(|c| (c.client_id.clone(), c.clone()))
                .collect(),
            accounts: Vec::new(),
            pending: HashMap::new(),
            codes: HashMap::new(),
            grants: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            sync_tokens: HashMap::new(),
            snapshots: HashMap::new(),
            snapshot_order: VecDeque::new(),
            page_tokens: HashMap::new(),
            next_snapshot: 1,
            pinned_items: 0,
            faults: Vec::new(),
            next_fault_id: 1,
            log: VecDeque::new(),
            log_seq: 0,
            rate_window: HashMap::new(),
            channels: Vec::new(),
            outbox: None,
            deliveries: VecDeque::new(),
            ms: crate::microsoft::state::World::new(Default::default()),
            change_counter: 0,
            account_index: AccountIndex::default(),
        };
        if config.sample_data {
            crate::sample::seed(&mut inner, base_url);
            crate::microsoft::sample::seed(&mut inner, base_url);
        }
        inner
    }

    /// The emulator's clock: real time plus whatever `clock/advance` added.
    pub fn now(&self) -> Timestamp {
        Timestamp::now()
            .checked_add(self.clock_offset)
            .unwrap_or_else(|_| Timestamp::now())
    }

    /// Takes the next change number.
    pub fn next_seq(&mut self) -> u64 {
        self.change_counter += 1;
        self.change_counter
    }

    /// The latest change number handed out (a listing that starts now covers it).
    pub fn current_seq(&self) -> u64 {
        self.change_counter
    }

    pub fn account_ix(&self, email_or_sub: &str) -> Option<usize> {
        let is = |a: &Account| a.email.eq_ignore_ascii_case(email_or_sub) || a.sub == email_or_sub;
        let index = &self.account_index;
        let by_email = index.by_email.get(&email_or_sub.to_ascii_lowercase());
        let by_sub = index.by_sub.get(email_or_sub);
        by_email
            .into_iter()
            .chain(by_sub)
            .copied()
            .filter(|&ix| self.accounts.get(ix).is_some_and(is))
            .min()
            .or_else(|| self.accounts.iter().position(is))
    }

    pub fn account_by_sub(&self, sub: &str) -> Option<&Account> {
        self.account_ix_by_sub(sub).map(|ix| &self.accounts[ix])
    }

    pub fn account_ix_by_sub(&self, sub: &str) -> Option<usize> {
        self.account_index
            .by_sub
            .get(sub)
            .copied()
            .filter(|&ix| self.accounts.get(ix).is_some_and(|a| a.sub == sub))
            .or_else(|| self.accounts.iter().position(|a| a.sub == sub))
    }

    /// Adds an account with its primary calendar (id = email), or returns the existing one.
    pub fn ensure_account(&mut self, email: &str, name: Option<&str>) -> usize {
        if let Some(ix) = self.account_ix(email) {
            return ix;
        }
        let name = name
            .map(str::to_owned)
            .unwrap_or_else(|| default_name(email));
        let seq = self.next_seq();
        let primary = Calendar::new(email, email, "UTC", seq, true);
        let sub = util::sub_for_email(email);
        self.accounts.push(Account {
            sub: sub.clone(),
            email: email.to_owned(),
            name,
            calendars: vec![primary],
            list_epoch: 0,
        });
        let ix = self.accounts.len() - 1;
        self.account_index.add(ix, email, &sub);
        ix
    }

    /// Finds a calendar of an account; `primary` is an alias of the primary calendar.
    pub fn calendar_ix(&self, account_ix: usize, calendar_id: &str) -> Option<usize> {
        let account = self.accounts.get(account_ix)?;
        account.calendars.iter().position(|c| {
            !c.deleted && (c.id == calendar_id || (calendar_id == "primary" && c.primary))
        })
    }

    /// Keeps a listing snapshot for its page tokens; returns its id.
    pub fn add_snapshot(&mut self, cursor: PageCursor) -> u64 {
        let id = self.next_snapshot;
        self.next_snapshot += 1;
        let len = cursor.items.len();
        self.snapshots.insert(id, Arc::new(cursor));
        self.snapshot_order.push_back((id, len, Vec::new()));
        self.pinned_items += len;
        while self.snapshot_order.len() > MAX_SNAPSHOTS
            || (self.pinned_items > MAX_PINNED_ITEMS && self.snapshot_order.len() > 1)
        {
            let Some((old, old_len, tokens)) = self.snapshot_order.pop_front() else {
                break;
            };
            self.snapshots.remove(&old);
            self.pinned_items -= old_len;
            for t in tokens {
                self.page_tokens.remove(&t);
            }
        }
        id
    }

    /// A page token for the page of `snapshot` starting at `offset`.
    pub fn page_token(&mut self, page: PageRef) -> String {
        let token = util::random_token(24);
        if let Some(entry) = self
            .snapshot_order
            .iter_mut()
            .find(|(id, ..)| *id == page.snapshot)
        {
            entry.2.push(token.clone());
        }
        self.page_tokens.insert(token.clone(), page);
        token
    }

    pub fn store_sync_token(&mut self, token: SyncToken) -> String {
        // Google's tokens look like base64 protobufs ("CPDAlvWDx70CEPDAlvWDx70CGAU=").
        let text = format!("C{}=", util::random_token(21));
        self.sync_tokens.insert(text.clone(), token);
        text
    }

    /// Revokes the whole grant of (sub, client): refresh and access tokens alike.
    pub fn revoke_grant(&mut self, sub: &str, client_id: &str) {
        self.grants.remove(&(sub.to_owned(), client_id.to_owned()));
        self.refresh_tokens
            .retain(|_, t| !(t.sub == sub && t.client_id == client_id));
        self.access_tokens
            .retain(|_, t| !(t.sub == sub && t.client_id == client_id));
    }

    pub fn push_log(&mut self, mut entry: LogEntry) {
        self.log_seq += 1;
        entry.seq = self.log_seq;
        if self.log.len() >= MAX_LOG {
            self.log.pop_front();
        }
        self.log.push_back(entry);
    }
}

impl Calendar {
    pub fn new(id: &str, summary: &str, time_zone: &str, seq: u64, primary: bool) -> Self {
        Self {
            id: id.to_owned(),
            summary: summary.to_owned(),
            summary_override: None,
            description: None,
            location: None,
            time_zone: time_zone.to_owned(),
            color_id: "14".to_owned(),
            background_color: "#9fe1e7".to_owned(),
            foreground_color: "#000000".to_owned(),
            access_role: "owner".to_owned(),
            primary,
            hidden: false,
            selected: true,
            deleted: false,
            etag: etag_for(seq),
            list_seq: seq,
            epoch: 0,
            events: BTreeMap::new(),
        }
    }

    /// The calendar-list entry JSON (spec §2.1).
    pub fn list_entry(&self) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), "calendar#calendarListEntry".into());
        m.insert("etag".into(), self.etag.clone().into());
        m.insert("id".into(), self.id.clone().into());
        if self.deleted {
            // Deleted entries carry little more than their id (like events).
            m.insert("deleted".into(), true.into());
            return Value::Object(m);
        }
        m.insert("summary".into(), self.summary.clone().into());
        if let Some(o) = &self.summary_override {
            m.insert("summaryOverride".into(), o.clone().into());
        }
        if let Some(d) = &self.description {
            m.insert("description".into(), d.clone().into());
        }
        if let Some(l) = &self.location {
            m.insert("location".into(), l.clone().into());
        }
        m.insert("timeZone".into(), self.time_zone.clone().into());
        m.insert("colorId".into(), self.color_id.clone().into());
        m.insert(
            "backgroundColor".into(),
            self.background_color.clone().into(),
        );
        m.insert(
            "foregroundColor".into(),
            self.foreground_color.clone().into(),
        );
        if self.hidden {
            m.insert("hidden".into(), true.into());
        }
        if self.selected {
            m.insert("selected".into(), true.into());
        }
        m.insert("accessRole".into(), self.access_role.clone().into());
        m.insert("defaultReminders".into(), Value::Array(Vec::new()));
        if self.primary {
            m.insert("primary".into(), true.into());
            m.insert(
                "notificationSettings".into(),
                serde_json::json!({"notifications": [
                    {"type": "eventCreation", "method": "email"},
                    {"type": "eventChange", "method": "email"},
                ]}),
            );
        }
        m.insert(
            "conferenceProperties".into(),
            serde_json::json!({"allowedConferenceSolutionTypes": ["hangoutsMeet"]}),
        );
        Value::Object(m)
    }

    /// `updated` of the events collection: the latest event write.
    pub fn last_updated(&self) -> Option<&str> {
        self.events
            .values()
            .filter_map(|e| e.body.get("updated").and_then(Value::as_str))
            .max()
    }
}

/// An etag in Google's style: a quoted 16-digit number, unique per write.
pub fn etag_for(seq: u64) -> String {
    format!("\"{}\"", 3_480_000_000_000_000u64 + seq * 7919)
}

fn default_name(email: &str) -> String {
    let local = email.split('@').next().unwrap_or(email);
    let mut chars = local.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => email.to_owned(),
    }
}
