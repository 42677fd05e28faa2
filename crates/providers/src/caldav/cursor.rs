//! The opaque strings a CalDAV sync hands to its caller: sync tokens between
//! rounds ([`RoundToken`]) and continuations inside a round ([`PageState`]).
//!
//! Formats (all ASCII, safe in a database `TEXT` column):
//!
//! - `dav-sync:<server token>`: an RFC 6578 sync-collection token, verbatim.
//! - `dav-etag:<base64url(JSON)>`: the fallback for servers without
//!   sync-collection (spec B4): the collection's ctag and, while the
//!   calendar has at most `CaldavLimits::etag_map_entries` members, the
//!   member -> etag map (names relative to the collection, etags as 64-bit
//!   hashes: they are only compared). Larger calendars keep one hash of the
//!   whole listing instead; a changed hash then answers
//!   `ProviderError::SyncTokenExpired`, and the caller's full round
//!   (mark-and-sweep in the store) does the diff.
//! - `dav-page:<base64url(JSON)>`: a round in progress (see [`PageState`]).
//!
//! A string this module cannot read is treated as an expired token: the
//! caller's full round is always a safe way out.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

const SYNC_PREFIX: &str = "dav-sync:";
const ETAG_PREFIX: &str = "dav-etag:";
const PAGE_PREFIX: &str = "dav-page:";

/// The token a round ends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoundToken {
    /// An RFC 6578 sync token.
    Sync(String),
    /// The ctag/etag fallback state.
    Etag(EtagState),
}

/// What the fallback remembers of a collection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtagState {
    /// `CS:getctag` (or `DAV:sync-token` as a property) when the server has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctag: Option<String>,
    /// Member name (relative to the collection) -> hash of its etag, sorted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<(String, String)>>,
    /// A hash of the whole listing, when the map would be too large.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing_hash: Option<String>,
}

impl RoundToken {
    pub fn encode(&self) -> String {
        match self {
            Self::Sync(token) => format!("{SYNC_PREFIX}{token}"),
            Self::Etag(state) => format!("{ETAG_PREFIX}{}", to_b64_json(state)),
        }
    }

    pub fn decode(text: &str) -> Option<Self> {
        if let Some(token) = text.strip_prefix(SYNC_PREFIX) {
            return (!token.is_empty()).then(|| Self::Sync(token.to_owned()));
        }
        let state = from_b64_json(text.strip_prefix(ETAG_PREFIX)?)?;
        Some(Self::Etag(state))
    }
}

/// Which listing a round uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// RFC 6578 sync-collection.
    #[serde(rename = "s")]
    SyncCollection,
    /// PROPFIND Depth 1 etags, diffed against the previous state.
    #[serde(rename = "e")]
    Etag,
}

/// A round in progress. Its members are processed in href order, a page
/// at a time; the state carries at most `CaldavLimits::carried_hrefs`
/// pending members (bounded), plus `after`, the last member of that window,
/// when the listing had more: the next window is then listed again from the
/// same `base` and starts after it. `round` is the token of the round's
/// FIRST listing, so anything that changed while the round ran is seen
/// again next round (at worst twice, never lost).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageState {
    pub mode: Mode,
    /// What the listing is taken against: the previous round's token
    /// (encoded [`RoundToken`]), or `None` in a full round.
    pub base: Option<String>,
    /// The encoded [`RoundToken`] this round ends with.
    pub round: String,
    /// Members still to fetch, in order: (canonical path, removed?); in the
    /// encoded form relative to the collection (`a.ics`), as in the etag map.
    pub pending: Vec<(String, bool)>,
    /// The last member of the window when the listing had more (relative
    /// in the encoded form, too).
    pub after: Option<String>,
    /// The server truncated the listing (a 507 for the collection, RFC 6578
    /// §3.6): when this listing is done, list again from `round`.
    pub truncated: bool,
    /// Whether this round started from nothing (ignore removed members,
    /// which RFC 6578 §3.4 forbids but Radicale sends).
    pub initial: bool,
}

impl PageState {
    pub fn encode(&self) -> String {
        format!("{PAGE_PREFIX}{}", to_b64_json(self))
    }

    pub fn decode(text: &str) -> Option<Self> {
        from_b64_json(text.strip_prefix(PAGE_PREFIX)?)
    }
}

/// A short hash (16 hex digits) of an etag or listing: compared only.
pub fn short_hash(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    let digest = hasher.finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn to_b64_json<T: Serialize>(value: &T) -> String {
    // Serialising these plain structs cannot fail.
    let json = serde_json::to_vec(value).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

fn from_b64_json<T: for<'de> Deserialize<'de>>(text: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let sync = RoundToken::Sync("http://radicale.org/ns/sync/abc".into());
        assert_eq!(RoundToken::decode(&sync.encode()), Some(sync));
        let etag = RoundToken::Etag(EtagState {
            ctag: Some("\"x\"".into()),
            members: Some(vec![("a.ics".into(), short_hash(&["\"1\""]))]),
            listing_hash: None,
        });
        assert_eq!(RoundToken::decode(&etag.encode()), Some(etag));
        assert_eq!(RoundToken::decode("dav-sync:"), None);
        assert_eq!(RoundToken::decode("garbage"), None);
        assert_eq!(RoundToken::decode("dav-etag:!!"), None);
        let page = PageState {
            mode: Mode::SyncCollection,
            base: None,
            round: "dav-sync:t".into(),
            pending: vec![("/a/b.ics".into(), false)],
            after: Some("/a/b.ics".into()),
            truncated: false,
            initial: true,
        };
        assert_eq!(PageState::decode(&page.encode()), Some(page));
        assert_eq!(short_hash(&["a"]).len(), 16);
        assert_ne!(short_hash(&["a", "b"]), short_hash(&["ab"]));
    }
}
