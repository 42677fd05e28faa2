//! The Microsoft side of the emulator's world: accounts with their calendars
//! and events, the identity platform's codes, grants and tokens, delta rounds
//! and delta tokens, and the Microsoft-only switches.
//!
//! It lives inside the one `Inner` (same lock, same clock, same change
//! counter as Google), so faults, the request log, `clock/advance` and
//! `reset` cover both providers. Data and small invariants only; protocol
//! rules live in the handler modules.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use jiff::civil::DateTime;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::events::Instance;

/// Microsoft-only runtime switches (`PUT /_emulator/microsoft/settings`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MsSettings {
    /// Refuse authorize requests without `code_challenge` (the real service
    /// only insists for SPA redirect URIs; calsync must always send one).
    pub require_pkce: bool,
    /// A refresh token dies when it is redeemed (its successor replaces it).
    /// Microsoft documents that the old one keeps working; `false` gives that.
    pub revoke_used_refresh_tokens: bool,
    /// Never issue refresh tokens, even with `offline_access`.
    pub omit_refresh_token: bool,
    /// Access token lifetime in seconds.
    pub access_token_ttl_secs: i64,
    /// A refresh token unused for this many days answers AADSTS700082.
    pub refresh_idle_days: i64,
    /// Page size of `/me/calendars`, `calendarView` and delta without `$top` / maxpagesize.
    pub default_page_size: usize,
    /// Largest page served, whatever the client asks for.
    pub max_page_size: usize,
    /// Delta rounds of two pages or more get an empty page (with a nextLink) second.
    pub delta_empty_page: bool,
    /// Every delta page after the first repeats the previous page's last item.
    pub delta_repeat_item: bool,
    /// Incremental rounds also carry `@removed` for singles and exceptions
    /// outside the window that changed since the token (unknown ids to the client).
    pub delta_out_of_window_removed: bool,
    /// A round with changes first answers "nothing new" once (replication delay).
    pub delta_replication_delay: bool,
    /// Delta tokens kept per calendar; older ones are evicted (→ 410).
    pub max_delta_tokens_per_calendar: usize,
    /// Delta tokens older than this (emulator clock) answer 410; `None` = no age limit.
    pub delta_token_ttl_secs: Option<i64>,
}

impl Default for MsSettings {
    fn default() -> Self {
        Self {
            require_pkce: true,
            revoke_used_refresh_tokens: true,
            omit_refresh_token: false,
            access_token_ttl_secs: 3599,
            refresh_idle_days: 90,
            default_page_size: 10,
            max_page_size: 1000,
            delta_empty_page: true,
            delta_repeat_item: true,
            delta_out_of_window_removed: true,
            delta_replication_delay: false,
            max_delta_tokens_per_calendar: 20,
            delta_token_ttl_secs: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct MsAccount {
    /// Directory object id (a GUID), stable per email.
    pub id: String,
    pub upn: String,
    /// `None` for accounts without a mailbox address (Graph returns `null`).
    pub mail: Option<String>,
    pub display_name: String,
    pub calendars: Vec<MsCalendar>,
}

impl MsAccount {
    /// The address Graph shows as owner/organizer.
    pub fn address(&self) -> &str {
        self.mail.as_deref().unwrap_or(&self.upn)
    }
}

#[derive(Debug, Clone)]
pub struct MsCalendar {
    pub id: String,
    pub name: String,
    pub color: String,
    /// "" when the user never picked one (Graph does the same).
    pub hex_color: String,
    pub is_default: bool,
    pub can_edit: bool,
    pub owner_name: String,
    pub owner_address: String,
    pub change_key: String,
    pub events: BTreeMap<String, MsEvent>,
    /// Bumped to kill every delta token of this calendar.
    pub delta_epoch: u64,
    /// How a killed token answers (see `ExpiryMode`).
    pub expiry_mode: ExpiryMode,
}

/// The shapes of "your delta token is no good" (spec A3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiryMode {
    /// 410 `SyncStateNotFound` ("The sync state generation is not found ...").
    #[default]
    SyncStateNotFound,
    /// 410 `resyncRequired` with a `Location` header: a fresh initial delta URL.
    ResyncRequired,
    /// 400 `ErrorInvalidSyncStateData` [?: an Exchange-style answer some clients met].
    SyncStateInvalid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    SingleInstance,
    SeriesMaster,
    Exception,
}

/// A stored event: a single instance, a series master or an exception.
/// Occurrences are never stored; they are expanded from the master.
#[derive(Debug, Clone)]
pub struct MsEvent {
    pub id: String,
    pub ical_uid: String,
    pub kind: EventKind,
    /// Exceptions: the master's id.
    pub series_master_id: Option<String>,
    /// Exceptions: the start the occurrence had in the series.
    pub original_start: Option<Timestamp>,
    pub subject: String,
    pub body: String,
    pub location: String,
    /// Wall-clock start/end in `start_tz` / `end_tz` (all-day: midnights).
    pub start: DateTime,
    pub end: DateTime,
    /// As given: a Windows name ("W. Europe Standard Time") or an IANA name.
    pub start_tz: String,
    pub end_tz: String,
    pub is_all_day: bool,
    pub is_cancelled: bool,
    pub show_as: String,
    pub sensitivity: String,
    pub categories: Vec<String>,
    /// Masters: Graph's `{pattern, range}` as stored.
    pub recurrence: Option<Value>,
    /// Masters: the same as RRULE lines for `recur.rs`.
    pub rrule: Vec<String>,
    /// Masters: original starts of deleted occurrences.
    pub deleted_occurrences: BTreeSet<Timestamp>,
    pub created: Timestamp,
    pub modified: Timestamp,
    pub change_key: String,
    /// Client-chosen id of the POST that created it (retries return this event).
    pub transaction_id: Option<String>,
    /// Change number of the last write (shared counter with Google).
    pub seq: u64,
}

#[derive(Debug, Clone)]
pub struct PendingAuth {
    pub tenant: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub response_mode: String,
    pub code_challenge: Option<(String, String)>,
    pub login_hint: Option<String>,
    pub nonce: Option<String>,
    pub created: Timestamp,
}

#[derive(Debug, Clone)]
pub struct Code {
    pub client_id: String,
    pub redirect_uri: String,
    pub account_id: String,
    pub scopes: Vec<String>,
    pub code_challenge: Option<(String, String)>,
    pub nonce: Option<String>,
    pub expires_at: Timestamp,
    /// Kept after redemption until expiry so a replay says AADSTS54005.
    pub redeemed: bool,
}

#[derive(Debug, Clone)]
pub struct AccessToken {
    pub account_id: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub expires_at: Timestamp,
}

/// Why a refresh token no longer works; picks the AADSTS answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadReason {
    /// AADSTS70008.
    Expired,
    /// AADSTS700082 (also reached naturally after `refresh_idle_days`).
    Inactive,
    /// AADSTS50173 (password change, admin or user revocation).
    Revoked,
    /// AADSTS65001 (consent withdrawn).
    ConsentRequired,
    /// AADSTS50076, `interaction_required` (MFA / Conditional Access).
    InteractionRequired,
    /// Redeemed once already and rotated away.
    Rotated,
}

#[derive(Debug, Clone)]
pub struct RefreshToken {
    pub account_id: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub issued_at: Timestamp,
    pub last_used_at: Timestamp,
    pub dead: Option<DeadReason>,
}

/// What a `$deltatoken` stands for: a fixed window and what the client has
/// seen in it (instance id → version), as of the round that minted it.
#[derive(Debug, Clone)]
pub struct DeltaToken {
    pub account_id: String,
    pub calendar_id: String,
    pub window: (Timestamp, Timestamp),
    /// The request's own spelling of the window, for a resync `Location`.
    pub window_text: (String, String),
    pub epoch: u64,
    pub baseline: Arc<HashMap<String, String>>,
    /// Change counter when the baseline was taken.
    pub base_seq: u64,
    pub issued: Timestamp,
    /// Already answered "nothing new" once (replication delay).
    pub delayed: bool,
}

/// One item of a delta round.
#[derive(Debug, Clone)]
pub enum DeltaItem {
    Upsert(Box<Instance>),
    Removed(String),
}

/// A delta round, frozen when it starts: its pages and the token its last page hands out.
#[derive(Debug)]
pub struct Round {
    pub account_id: String,
    pub calendar_id: String,
    pub items: Vec<DeltaItem>,
    /// Indices into `items`, page by page (quirks already applied).
    pub pages: Vec<Vec<usize>>,
    pub delta_token: String,
}

const MAX_ROUNDS: usize = 256;
const MAX_ROUND_ITEMS: usize = 300_000;

#[derive(Default)]
pub struct World {
    pub settings: MsSettings,
    pub accounts: Vec<MsAccount>,
    pub pending: HashMap<String, PendingAuth>,
    pub codes: HashMap<String, Code>,
    /// (account id, client id) → consented scopes.
    pub grants: HashMap<(String, String), BTreeSet<String>>,
    pub access_tokens: HashMap<String, AccessToken>,
    pub refresh_tokens: HashMap<String, RefreshToken>,
    pub delta_tokens: HashMap<String, DeltaToken>,
    /// Per (account, calendar): its live delta tokens, oldest first (LRU eviction).
    pub delta_order: HashMap<(String, String), VecDeque<String>>,
    pub rounds: HashMap<u64, Arc<Round>>,
    round_order: VecDeque<(u64, usize, Vec<String>)>,
    round_items: usize,
    next_round: u64,
    /// `$skiptoken` → (round, page number).
    pub skip_tokens: HashMap<String, (u64, usize)>,
    /// Account lookups without a walk over every account.
    index: MsAccountIndex,
}

/// Positions in `World::accounts` by lower-cased UPN and mail, and by object
/// id, filled by `push_account`. A hit is checked against the account; a miss
/// (an account changed, like the samples' fixed ids, or pushed some other
/// way) walks the list as before.
#[derive(Debug, Default)]
struct MsAccountIndex {
    by_name: HashMap<String, usize>,
    by_id: HashMap<String, usize>,
}

impl MsAccountIndex {
    fn add(&mut self, ix: usize, a: &MsAccount) {
        for name in std::iter::once(&a.upn).chain(a.mail.as_ref()) {
            self.by_name.entry(name.to_ascii_lowercase()).or_insert(ix);
        }
        self.by_id.entry(a.id.clone()).or_insert(ix);
    }
}

impl World {
    pub fn new(settings: MsSettings) -> Self {
        Self {
            settings,
            next_round: 1,
            ..Default::default()
        }
    }

    pub fn account_ix(&self, email_or_id: &str) -> Option<usize> {
        let is = |a: &MsAccount| {
            a.upn.eq_ignore_ascii_case(email_or_id)
                || a.mail
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case(email_or_id))
                || a.id == email_or_id
        };
        let by_name = self.index.by_name.get(&email_or_id.to_ascii_lowercase());
        let by_id = self.index.by_id.get(email_or_id);
        by_name
            .into_iter()
            .chain(by_id)
            .copied()
            .filter(|&ix| self.accounts.get(ix).is_some_and(is))
            .min()
            .or_else(|| self.accounts.iter().position(is))
    }

    pub fn account_by_id(&self, id: &str) -> Option<&MsAccount> {
        self.account_ix_by_id(id).map(|ix| &self.accounts[ix])
    }

    pub fn account_ix_by_id(&self, id: &str) -> Option<usize> {
        self.index
            .by_id
            .get(id)
            .copied()
            .filter(|&ix| self.accounts.get(ix).is_some_and(|a| a.id == id))
            .or_else(|| self.accounts.iter().position(|a| a.id == id))
    }

    /// Appends an account and indexes it; returns its position.
    pub fn push_account(&mut self, account: MsAccount) -> usize {
        let ix = self.accounts.len();
        self.index.add(ix, &account);
        self.accounts.push(account);
        ix
    }

    /// `default` (and `calendar`) name the default calendar.
    pub fn calendar_ix(&self, account_ix: usize, calendar_id: &str) -> Option<usize> {
        let account = self.accounts.get(account_ix)?;
        account.calendars.iter().position(|c| {
            c.id == calendar_id || (c.is_default && matches!(calendar_id, "default" | "calendar"))
        })
    }

    /// Stores a delta token; evicts the calendar's oldest beyond the cap.
    pub fn store_delta_token(&mut self, token: DeltaToken) -> String {
        let text = format!("{}{}", "MSDT", crate::util::random_token(60));
        let key = (token.account_id.clone(), token.calendar_id.clone());
        self.delta_tokens.insert(text.clone(), token);
        let cap = self.settings.max_delta_tokens_per_calendar.max(1);
        let order = self.delta_order.entry(key).or_default();
        order.push_back(text.clone());
        while order.len() > cap {
            if let Some(old) = order.pop_front() {
                self.delta_tokens.remove(&old);
            }
        }
        text
    }

    /// Keeps a round for its skip tokens; evicts the oldest beyond the caps.
    pub fn add_round(&mut self, round: Round) -> u64 {
        let id = self.next_round;
        self.next_round += 1;
        let len = round.items.len();
        self.rounds.insert(id, Arc::new(round));
        self.round_order.push_back((id, len, Vec::new()));
        self.round_items += len;
        while self.round_order.len() > MAX_ROUNDS
            || (self.round_items > MAX_ROUND_ITEMS && self.round_order.len() > 1)
        {
            let Some((old, old_len, tokens)) = self.round_order.pop_front() else {
                break;
            };
            self.rounds.remove(&old);
            self.round_items -= old_len;
            for t in tokens {
                self.skip_tokens.remove(&t);
            }
        }
        id
    }

    pub fn skip_token(&mut self, round: u64, page: usize) -> String {
        let token = format!("MSST{}", crate::util::random_token(48));
        if let Some(entry) = self.round_order.iter_mut().find(|(id, ..)| *id == round) {
            entry.2.push(token.clone());
        }
        self.skip_tokens.insert(token.clone(), (round, page));
        token
    }

    /// Drops a grant with its tokens (the user removed the app's access).
    pub fn revoke_grant(&mut self, account_id: &str, client_id: Option<&str>) -> usize {
        let hit = |a: &str, c: &str| a == account_id && client_id.is_none_or(|x| x == c);
        let before = self.grants.len();
        self.grants.retain(|(a, c), _| !hit(a, c));
        for t in self.refresh_tokens.values_mut() {
            if hit(&t.account_id, &t.client_id) {
                t.dead = Some(DeadReason::Revoked);
            }
        }
        self.access_tokens
            .retain(|_, t| !hit(&t.account_id, &t.client_id));
        before - self.grants.len()
    }
}

/// A stable GUID-shaped object id from the email (same id after a reset).
pub fn object_id_for(email: &str) -> String {
    let d = Sha256::digest(format!("ms:{}", email.to_ascii_lowercase()).as_bytes());
    let h: String = d.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A Graph-looking opaque id (`AAMkAG...`): base64url, so safe in paths.
pub fn new_item_id() -> String {
    // `AAMkAGOc…` names an occurrence (`events::occurrence_id`): one random
    // id in 4,096 would start so, and be refused or misread as one.
    loop {
        let id = format!("AAMkAG{}AAA=", crate::util::random_token(45));
        if !id.starts_with("AAMkAGOc") {
            return id;
        }
    }
}

pub fn new_change_key() -> String {
    format!("DwAAABYAAA{}", crate::util::random_token(18))
}
