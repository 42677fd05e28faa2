//! One page of a calendar's changes: which members changed (RFC 6578
//! sync-collection, or the ctag/etag fallback of spec B4), then their data
//! by calendar-multiget (RFC 4791 §7.9) in batches.
//!
//! # Rounds and pages
//!
//! A round starts with a listing of the members that changed since the
//! cursor (all members for [`EventsCursor::Full`]), sorted by canonical
//! href. Each call fetches up to `CaldavLimits::page_resources` of them
//! (multigets of `multiget_batch` hrefs) and returns them as one page, so a
//! page is one bounded store transaction and memory stays bounded by the
//! page, not the calendar. What is left travels in the page continuation
//! ([`PageState`]), itself bounded: at most `carried_hrefs` members; a longer
//! listing is taken again from the same base for the next window, starting
//! after the last href of the previous one. The round ends with
//! [`PageNext::Done`] carrying the token of the round's first listing.
//!
//! # What the changes look like
//!
//! Every fetched resource becomes ONE [`EventChange::Replace`] whose group
//! is its canonical href path (master = href, overrides = `href#rid`), so
//! overrides dropped from a resource disappear. A removed member is a
//! `Replace` with no events. In a full round removed members are ignored
//! (Radicale lists tombstones in an initial sync, against RFC 6578 §3.4):
//! the store's mark-and-sweep removes whatever the round did not bring.
//!
//! # Errors
//!
//! A refused sync token (any 4xx naming `DAV:valid-sync-token`, or a
//! 403/409/410/412 answering a non-empty token, spec B4) and any cursor this
//! module cannot read are [`ProviderError::SyncTokenExpired`]: the caller
//! starts a full round.

use std::collections::{BTreeMap, HashSet};

use calsync_core::changes::{ChangePage, EventChange, PageNext, RemoteEvent};
use reqwest::Url;

use super::cursor::{short_hash, EtagState, Mode, PageState, RoundToken};
use super::{
    classify, href, parse_absolute, parse_server_url, xml, Auth, CaldavClient, CaldavLogin, Depth,
};
use crate::error::ProviderError;
use crate::EventsCursor;

/// The members a listing found, sorted by key: (canonical path, removed?).
struct Listing {
    members: Vec<(String, bool)>,
    token: RoundToken,
    truncated: bool,
}

impl CaldavClient {
    /// One page of a calendar's changes; `calendar_href` is the calendar's
    /// `external_id` (its absolute URL). See the module documentation.
    pub async fn list_events_page(
        &self,
        login: &CaldavLogin,
        calendar_href: &str,
        cursor: &EventsCursor,
    ) -> Result<ChangePage, ProviderError> {
        let trusted = parse_server_url(&login.server_url)?;
        let collection = href::as_collection(parse_absolute(calendar_href, "calendar URL")?);
        let auth = Auth {
            trusted: &trusted,
            username: &login.username,
            password: &login.password,
        };
        self.check_address(&collection)?;

        let mut state = match cursor {
            EventsCursor::Full => {
                let listing = if self.limits.sync_collection {
                    self.sync_collection(auth, &collection, "", true).await?
                } else {
                    None
                };
                let (mode, listing) = match listing {
                    Some(listing) => (Mode::SyncCollection, listing),
                    None => {
                        tracing::info!(calendar = %collection, "no sync-collection; using the ctag/etag fallback");
                        (
                            Mode::Etag,
                            self.etag_listing(auth, &collection, None).await?,
                        )
                    }
                };
                self.start_state(mode, None, listing, true)
            }
            EventsCursor::Sync(text) => {
                let base = RoundToken::decode(text).ok_or(ProviderError::SyncTokenExpired)?;
                let mode = match base {
                    RoundToken::Sync(_) => Mode::SyncCollection,
                    RoundToken::Etag(_) => Mode::Etag,
                };
                if mode == Mode::SyncCollection && !self.limits.sync_collection {
                    // Sync-collection was switched off since: start over
                    // with the fallback.
                    return Err(ProviderError::SyncTokenExpired);
                }
                let listing = self.listing(auth, &collection, mode, Some(&base)).await?;
                self.start_state(mode, Some(text.clone()), listing, false)
            }
            EventsCursor::Page(text) => {
                let mut state = PageState::decode(text).ok_or(ProviderError::SyncTokenExpired)?;
                let collection_key = href::key(&collection);
                for (name, _) in &mut state.pending {
                    *name = member_key(&collection_key, name);
                }
                state.after = state.after.map(|name| member_key(&collection_key, &name));
                state
            }
        };

        // Make sure there is something to fetch, or learn that the round is over.
        while state.pending.is_empty() {
            if let Some(after) = state.after.take() {
                let base = match &state.base {
                    Some(text) => {
                        Some(RoundToken::decode(text).ok_or(ProviderError::SyncTokenExpired)?)
                    }
                    None => None,
                };
                let listing = self
                    .listing(auth, &collection, state.mode, base.as_ref())
                    .await?;
                let rest: Vec<(String, bool)> = listing
                    .members
                    .into_iter()
                    .filter(|(key, _)| key.as_str() > after.as_str())
                    .collect();
                self.fill_window(&mut state, rest);
            } else if state.truncated {
                let round =
                    RoundToken::decode(&state.round).ok_or(ProviderError::SyncTokenExpired)?;
                let listing = self
                    .listing(auth, &collection, state.mode, Some(&round))
                    .await?;
                if listing.truncated
                    && listing.members.is_empty()
                    && listing.token.encode() == state.round
                {
                    return Err(ProviderError::Decode(
                        "sync-collection: the server truncates its answer without progress"
                            .to_owned(),
                    ));
                }
                let initial = state.initial;
                state = self.start_state(state.mode, Some(state.round.clone()), listing, initial);
            } else {
                break;
            }
        }

        let take = state.pending.len().min(self.limits.page_resources.max(1));
        let page: Vec<(String, bool)> = state.pending.drain(..take).collect();
        let changes = self.fetch(auth, &collection, &page, state.initial).await?;
        let next = if state.pending.is_empty() && state.after.is_none() && !state.truncated {
            PageNext::Done {
                sync_token: state.round,
            }
        } else {
            // Members travel relative to the collection: shorter.
            let collection_key = href::key(&collection);
            for (key, _) in &mut state.pending {
                *key = member_name(&collection_key, key);
            }
            state.after = state.after.map(|key| member_name(&collection_key, &key));
            PageNext::Page(state.encode())
        };
        Ok(ChangePage { changes, next })
    }

    /// A new round (or a truncated round's next chunk) from its listing.
    fn start_state(
        &self,
        mode: Mode,
        base: Option<String>,
        listing: Listing,
        initial: bool,
    ) -> PageState {
        let mut state = PageState {
            mode,
            base,
            round: listing.token.encode(),
            pending: Vec::new(),
            after: None,
            truncated: listing.truncated,
            initial,
        };
        self.fill_window(&mut state, listing.members);
        state
    }

    /// Carries at most `carried_hrefs` members; remembers where the window
    /// ends when there are more. A truncated listing is carried whole: it
    /// is already bounded by the server, and listing it again could cut it
    /// elsewhere.
    fn fill_window(&self, state: &mut PageState, mut members: Vec<(String, bool)>) {
        let limit = self.limits.carried_hrefs.max(1);
        state.after = None;
        if members.len() > limit && !state.truncated {
            members.truncate(limit);
            state.after = members.last().map(|(key, _)| key.clone());
        }
        state.pending = members;
    }

    async fn listing(
        &self,
        auth: Auth<'_>,
        collection: &Url,
        mode: Mode,
        base: Option<&RoundToken>,
    ) -> Result<Listing, ProviderError> {
        match (mode, base) {
            (Mode::SyncCollection, Some(RoundToken::Sync(token))) => self
                .sync_collection(auth, collection, token, false)
                .await?
                .ok_or(ProviderError::SyncTokenExpired),
            (Mode::SyncCollection, None) => self
                .sync_collection(auth, collection, "", false)
                .await?
                .ok_or(ProviderError::SyncTokenExpired),
            (Mode::Etag, Some(RoundToken::Etag(state))) => {
                self.etag_listing(auth, collection, Some(state)).await
            }
            (Mode::Etag, None) => self.etag_listing(auth, collection, None).await,
            // A continuation whose mode and base disagree was not made here.
            _ => Err(ProviderError::SyncTokenExpired),
        }
    }

    /// The sync-collection REPORT (RFC 6578 §3.2). `Ok(None)` when the
    /// server does not support it (only asked when `may_fall_back`, i.e.
    /// for an initial sync).
    async fn sync_collection(
        &self,
        auth: Auth<'_>,
        collection: &Url,
        token: &str,
        may_fall_back: bool,
    ) -> Result<Option<Listing>, ProviderError> {
        let response = self
            .dav(
                auth,
                "REPORT",
                collection,
                Depth::Zero,
                xml::sync_collection(token),
            )
            .await?;
        if response.status != 207 {
            if xml::has_precondition(&response.body, "valid-sync-token")
                || (!token.is_empty() && matches!(response.status, 403 | 409 | 410 | 412))
            {
                tracing::info!(calendar = %collection, status = response.status, "sync token refused");
                return Err(ProviderError::SyncTokenExpired);
            }
            if token.is_empty()
                && may_fall_back
                && matches!(response.status, 400 | 403 | 405 | 415 | 501)
                && !self.supports_sync_collection(auth, collection).await?
            {
                return Ok(None);
            }
            return Err(classify(&response, "sync-collection REPORT", collection));
        }
        let multistatus = xml::parse_multistatus(&response.body)
            .map_err(|e| ProviderError::Decode(format!("sync-collection: {e}")))?;
        let collection_key = href::key(collection);
        let mut truncated = false;
        let mut members = BTreeMap::new();
        for item in &multistatus.responses {
            let Some(url) = href::resolve(collection, &item.href) else {
                continue;
            };
            let key = href::key(&url);
            if key == collection_key {
                // RFC 6578 §3.6: 507 on the collection = truncated; iCloud
                // also lists the collection itself.
                truncated |= item.status == Some(507);
                continue;
            }
            if url.path().ends_with('/') {
                continue; // a child collection, not a calendar object
            }
            if item.found {
                members.insert(key, false);
            } else if item.status == Some(404) {
                members.entry(key).or_insert(true);
            } else {
                tracing::warn!(href = %item.href, status = ?item.status, "sync-collection: member with an unexpected status; skipped");
            }
        }
        let token = multistatus.sync_token.ok_or_else(|| {
            ProviderError::Decode("sync-collection answer without a sync-token".to_owned())
        })?;
        Ok(Some(Listing {
            members: members.into_iter().collect(),
            token: RoundToken::Sync(token),
            truncated,
        }))
    }

    /// Whether the collection's `DAV:supported-report-set` lists
    /// sync-collection (absent = no).
    async fn supports_sync_collection(
        &self,
        auth: Auth<'_>,
        collection: &Url,
    ) -> Result<bool, ProviderError> {
        let response = self
            .dav(
                auth,
                "PROPFIND",
                collection,
                Depth::Zero,
                xml::propfind_collection_state(),
            )
            .await?;
        if response.status != 207 {
            return Err(classify(
                &response,
                "PROPFIND supported-report-set",
                collection,
            ));
        }
        let multistatus = xml::parse_multistatus(&response.body)
            .map_err(|e| ProviderError::Decode(format!("supported-report-set: {e}")))?;
        Ok(multistatus.responses.iter().any(|r| {
            r.props
                .reports
                .as_ref()
                .is_some_and(|reports| reports.iter().any(|n| n == "sync-collection"))
        }))
    }

    /// The fallback listing (spec B4): ctag first, then every member's etag
    /// by PROPFIND Depth 1, diffed against `base`.
    async fn etag_listing(
        &self,
        auth: Auth<'_>,
        collection: &Url,
        base: Option<&EtagState>,
    ) -> Result<Listing, ProviderError> {
        let response = self
            .dav(
                auth,
                "PROPFIND",
                collection,
                Depth::Zero,
                xml::propfind_collection_state(),
            )
            .await?;
        if response.status != 207 {
            return Err(classify(&response, "PROPFIND getctag", collection));
        }
        let collection_key = href::key(collection);
        let ctag = xml::parse_multistatus(&response.body)
            .map_err(|e| ProviderError::Decode(format!("getctag: {e}")))?
            .responses
            .into_iter()
            .find(|r| {
                href::resolve(collection, &r.href).is_some_and(|u| href::key(&u) == collection_key)
            })
            .and_then(|r| r.props.ctag.or(r.props.sync_token));
        if let Some(base) = base {
            if base.ctag.is_some() && base.ctag == ctag {
                return Ok(Listing {
                    members: Vec::new(),
                    token: RoundToken::Etag(base.clone()),
                    truncated: false,
                });
            }
        }

        let response = self
            .dav(
                auth,
                "PROPFIND",
                collection,
                Depth::One,
                xml::propfind_etags(),
            )
            .await?;
        if response.status != 207 {
            return Err(classify(&response, "PROPFIND getetag", collection));
        }
        let multistatus = xml::parse_multistatus(&response.body)
            .map_err(|e| ProviderError::Decode(format!("etag listing: {e}")))?;
        // Member name (relative to the collection) -> etag hash.
        let mut current: BTreeMap<String, String> = BTreeMap::new();
        for item in &multistatus.responses {
            let Some(url) = href::resolve(collection, &item.href) else {
                continue;
            };
            let key = href::key(&url);
            if key == collection_key || url.path().ends_with('/') || item.props.is_collection {
                continue;
            }
            let Some(etag) = item.props.getetag.as_deref() else {
                continue;
            };
            current.insert(member_name(&collection_key, &key), short_hash(&[etag]));
        }
        let listing_hash = {
            let parts: Vec<&str> = current
                .iter()
                .flat_map(|(n, e)| [n.as_str(), e.as_str()])
                .collect();
            short_hash(&parts)
        };
        let new_state = if current.len() <= self.limits.etag_map_entries {
            EtagState {
                ctag,
                members: Some(
                    current
                        .iter()
                        .map(|(n, e)| (n.clone(), e.clone()))
                        .collect(),
                ),
                listing_hash: None,
            }
        } else {
            EtagState {
                ctag,
                members: None,
                listing_hash: Some(listing_hash.clone()),
            }
        };

        let mut members: BTreeMap<String, bool> = BTreeMap::new();
        match base {
            None => {
                for name in current.keys() {
                    members.insert(member_key(&collection_key, name), false);
                }
            }
            Some(EtagState {
                members: Some(previous),
                ..
            }) => {
                let previous: BTreeMap<&str, &str> = previous
                    .iter()
                    .map(|(n, e)| (n.as_str(), e.as_str()))
                    .collect();
                for (name, etag) in &current {
                    if previous.get(name.as_str()) != Some(&etag.as_str()) {
                        members.insert(member_key(&collection_key, name), false);
                    }
                }
                for name in previous.keys() {
                    if !current.contains_key(*name) {
                        members.insert(member_key(&collection_key, name), true);
                    }
                }
            }
            Some(EtagState {
                listing_hash: previous_hash,
                ..
            }) => {
                // Too large a calendar for a map: any change means a full
                // round, where the store's mark-and-sweep finds the removals.
                if previous_hash.as_deref() != Some(listing_hash.as_str()) {
                    return Err(ProviderError::SyncTokenExpired);
                }
            }
        }
        Ok(Listing {
            members: members.into_iter().collect(),
            token: RoundToken::Etag(new_state),
            truncated: false,
        })
    }

    /// The data of these members: removed ones become empty groups (unless
    /// `initial`), the rest is fetched by calendar-multiget in batches.
    async fn fetch(
        &self,
        auth: Auth<'_>,
        collection: &Url,
        page: &[(String, bool)],
        initial: bool,
    ) -> Result<Vec<EventChange>, ProviderError> {
        let mut changes = Vec::with_capacity(page.len());
        let wanted: Vec<&str> = page
            .iter()
            .filter(|(_, gone)| !gone)
            .map(|(k, _)| k.as_str())
            .collect();
        if !initial {
            for (key, _) in page.iter().filter(|(_, gone)| *gone) {
                changes.push(EventChange::Replace {
                    group: key.clone(),
                    events: Vec::new(),
                });
            }
        }
        for batch in wanted.chunks(self.limits.multiget_batch.max(1)) {
            let response = self
                .dav(
                    auth,
                    "REPORT",
                    collection,
                    Depth::One,
                    xml::calendar_multiget(batch.iter().copied()),
                )
                .await?;
            if response.status != 207 {
                return Err(classify(&response, "calendar-multiget REPORT", collection));
            }
            let multistatus = xml::parse_multistatus(&response.body)
                .map_err(|e| ProviderError::Decode(format!("calendar-multiget: {e}")))?;
            let mut asked: HashSet<&str> = batch.iter().copied().collect();
            for item in multistatus.responses {
                let Some(url) = href::resolve(collection, &item.href) else {
                    continue;
                };
                let key = href::key(&url);
                if !asked.remove(key.as_str()) {
                    continue; // not asked for, or answered twice
                }
                match (item.found, item.props.calendar_data) {
                    (true, Some(data)) => {
                        match resource_events(&key, item.props.getetag.as_deref(), data.as_bytes())
                        {
                            Ok(events) => changes.push(EventChange::Replace { group: key, events }),
                            Err(why) => {
                                tracing::warn!(href = %key, problem = %why, "skipping a calendar resource that cannot be read")
                            }
                        }
                    }
                    // Removed since the listing (RFC 4791 §7.9: 404 per href).
                    _ if item.status == Some(404) => changes.push(EventChange::Replace {
                        group: key,
                        events: Vec::new(),
                    }),
                    _ => {
                        tracing::warn!(href = %key, status = ?item.status, "calendar-multiget: no data for a member; skipped")
                    }
                }
            }
            for missing in asked {
                tracing::warn!(href = %missing, "calendar-multiget: the server did not answer for a member; skipped");
            }
        }
        Ok(changes)
    }
}

/// A member's name relative to its collection (shorter tokens); a member
/// outside the collection's path keeps its whole path.
fn member_name(collection_key: &str, key: &str) -> String {
    match key
        .strip_prefix(collection_key)
        .and_then(|rest| rest.strip_prefix('/'))
    {
        Some(name) if !name.is_empty() && collection_key != "/" => name.to_owned(),
        _ => key.to_owned(),
    }
}

fn member_key(collection_key: &str, name: &str) -> String {
    if name.starts_with('/') {
        name.to_owned()
    } else {
        format!("{collection_key}/{name}")
    }
}

/// One calendar object resource -> its events, keyed by href (master =
/// href, overrides = `href#<recurrence-id>`, `recurring_event_id` = href),
/// each carrying the resource's etag. RFC 4791 §4.1 allows one UID per
/// resource; a resource with more keeps its first series (logged): two
/// masters cannot share the href.
fn resource_events(key: &str, etag: Option<&str>, data: &[u8]) -> Result<Vec<RemoteEvent>, String> {
    let series = calsync_core::ical::remote_series(data).map_err(|e| e.to_string())?;
    let count = series.len();
    let Some(first) = series.into_iter().next() else {
        // No VEVENT at all (a VTODO in an event calendar): nothing to show.
        return Ok(Vec::new());
    };
    if count > 1 {
        tracing::warn!(href = %key, uids = count, "a calendar resource with several UIDs; only the first is kept");
    }
    let mut events = first.rekey(key).into_events();
    for event in &mut events {
        event.etag = etag.map(str::to_owned);
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_are_relative() {
        assert_eq!(member_name("/u/cal", "/u/cal/a.ics"), "a.ics");
        assert_eq!(member_name("/u/cal", "/other/a.ics"), "/other/a.ics");
        assert_eq!(member_key("/u/cal", "a.ics"), "/u/cal/a.ics");
        assert_eq!(member_key("/u/cal", "/other/a.ics"), "/other/a.ics");
    }
}
