//! `calendarView/delta` (spec A3): rounds of pages linked by `$skiptoken`
//! nextLinks, ending in a `$deltatoken` deltaLink that starts the next round.
//!
//! How it works: a `$deltatoken` stands for a fixed window plus what the
//! client has seen in it (instance id → version, see `DeltaToken`). A round
//! compares the instances now in the window with that baseline: new or changed
//! instances come as full events, vanished ones (deleted, cancelled
//! occurrences, moved out of the window) as `{"@odata.type", "id",
//! "@removed": {"reason": "deleted"}}`. The round's items are frozen when it
//! starts; its pages are cut from them (`Prefer: odata.maxpagesize`), with the
//! real service's quirks as switches: an empty second page, the previous
//! page's last item repeated, `@removed` for unknown out-of-window ids, and a
//! one-round replication delay. Skip tokens may be reused (a retry gets the
//! same page); delta tokens may be reused (each use diffs against the same
//! baseline). Dead tokens (`expire-delta-tokens`, LRU eviction per
//! calendar, optional age limit) answer 410 `SyncStateNotFound`, 410
//! `resyncRequired` with a `Location`, or 400 `ErrorInvalidSyncStateData`.
//! The window is immutable: a token sent with different dates is a 400.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use jiff::SignedDuration;
use serde_json::{json, Value};

use super::errors::GraphError;
use super::events::{self, OutZone};
use super::graph::{self, caller, param, prefer, GraphResult, Need, Prefs};
use super::state::{DeltaItem, DeltaToken, EventKind, ExpiryMode, Round};
use crate::state::{AppState, Inner};
use crate::util;

const UNSUPPORTED: &[&str] = &[
    "select", "expand", "filter", "orderby", "search", "top", "skip",
];

pub(crate) async fn delta_default(
    state: State<AppState>,
    uri: OriginalUri,
    headers: HeaderMap,
    raw: RawQuery,
) -> GraphResult<Response> {
    delta(state, None, uri, headers, raw)
}

pub(crate) async fn delta_named(
    state: State<AppState>,
    Path(id): Path<String>,
    uri: OriginalUri,
    headers: HeaderMap,
    raw: RawQuery,
) -> GraphResult<Response> {
    delta(state, Some(id), uri, headers, raw)
}

fn delta(
    State(state): State<AppState>,
    cal: Option<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> GraphResult<Response> {
    let q = util::parse_form(raw.as_deref().unwrap_or(""));
    let prefs = prefer(&headers);
    let link_base = format!("{}{}", state.base_url, uri.path());
    let mut inner = state.lock();
    let ix = caller(&inner, &headers, Need::Calendars)?;
    let c = graph::calendar_ix(&inner.ms, ix, cal.as_deref())?;
    let account_id = inner.ms.accounts[ix].id.clone();
    let calendar_id = inner.ms.accounts[ix].calendars[c].id.clone();

    let bad: Vec<String> = q
        .iter()
        .filter(|(k, _)| {
            k.starts_with('$') && UNSUPPORTED.contains(&k[1..].to_ascii_lowercase().as_str())
        })
        .map(|(k, _)| k.clone())
        .collect();
    if !bad.is_empty() {
        return Err(GraphError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "ErrorInvalidUrlQuery",
            format!(
                "The following parameters are not supported with change tracking over the 'CalendarView' resource: '{}'.",
                bad.join(", ")
            ),
        ));
    }

    if let Some(skip) = param(&q, "$skiptoken") {
        let (round_id, page) = inner
            .ms
            .skip_tokens
            .get(skip)
            .copied()
            .ok_or_else(GraphError::sync_state_not_found)?;
        let round = inner
            .ms
            .rounds
            .get(&round_id)
            .cloned()
            .filter(|r| r.account_id == account_id && r.calendar_id == calendar_id)
            .ok_or_else(GraphError::sync_state_not_found)?;
        return Ok(serve(
            &mut inner,
            &state.base_url,
            &link_base,
            round_id,
            &round,
            page,
            &prefs,
            ix,
        ));
    }

    let (window, window_text, previous) = match param(&q, "$deltatoken") {
        Some(text) => {
            let token = live_token(&inner, text, &account_id, &calendar_id, c, ix, &link_base)?;
            if let (Some(s), Some(e)) = (param(&q, "startDateTime"), param(&q, "endDateTime")) {
                let same = graph::window_time(s) == Some(token.window.0)
                    && graph::window_time(e) == Some(token.window.1);
                if !same {
                    return Err(GraphError::invalid_parameter(
                        "A delta token fixes its window: startDateTime and endDateTime cannot change within a delta sequence. Start a new round without the token.",
                    ));
                }
            }
            (token.window, token.window_text.clone(), Some(token))
        }
        None => {
            let (w, t) = graph::window(&q)?;
            (w, t, None)
        }
    };

    let round = build_round(&mut inner, ix, c, window, window_text, previous, &prefs);
    let round_id = inner.ms.add_round(round);
    let round = inner
        .ms
        .rounds
        .get(&round_id)
        .cloned()
        .ok_or_else(GraphError::sync_state_not_found)?;
    Ok(serve(
        &mut inner,
        &state.base_url,
        &link_base,
        round_id,
        &round,
        0,
        &prefs,
        ix,
    ))
}

/// The token if it is still alive, else the calendar's chosen failure.
fn live_token(
    inner: &Inner,
    text: &str,
    account_id: &str,
    calendar_id: &str,
    c: usize,
    ix: usize,
    link_base: &str,
) -> GraphResult<DeltaToken> {
    let cal = &inner.ms.accounts[ix].calendars[c];
    let Some(token) = inner.ms.delta_tokens.get(text) else {
        return Err(GraphError::sync_state_not_found());
    };
    if token.account_id != account_id || token.calendar_id != calendar_id {
        return Err(GraphError::sync_state_not_found());
    }
    let too_old = inner.ms.settings.delta_token_ttl_secs.is_some_and(|ttl| {
        token
            .issued
            .checked_add(SignedDuration::from_secs(ttl))
            .is_ok_and(|limit| limit <= inner.now())
    });
    if token.epoch != cal.delta_epoch || too_old {
        return Err(match cal.expiry_mode {
            ExpiryMode::SyncStateNotFound => GraphError::sync_state_not_found(),
            ExpiryMode::SyncStateInvalid => GraphError::sync_state_invalid(),
            ExpiryMode::ResyncRequired => GraphError::resync_required(format!(
                "{link_base}?{}",
                util::build_query(&[
                    ("startDateTime", &token.window_text.0),
                    ("endDateTime", &token.window_text.1),
                ])
            )),
        });
    }
    Ok(token.clone())
}

#[allow(clippy::too_many_arguments)]
fn build_round(
    inner: &mut Inner,
    ix: usize,
    c: usize,
    window: (jiff::Timestamp, jiff::Timestamp),
    window_text: (String, String),
    previous: Option<DeltaToken>,
    prefs: &Prefs,
) -> Round {
    let now = inner.now();
    let seq = inner.current_seq();
    let settings = inner.ms.settings.clone();
    let account = &inner.ms.accounts[ix];
    let cal = &account.calendars[c];
    let current = events::instances(cal, window.0, window.1);
    let empty = HashMap::new();
    let baseline = previous.as_ref().map(|t| &*t.baseline).unwrap_or(&empty);

    let mut items = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::with_capacity(current.len());
    for inst in current {
        let v = inst.version();
        let changed = baseline.get(&inst.id) != Some(&v);
        seen.insert(inst.id.clone(), v);
        if changed {
            items.push(DeltaItem::Upsert(Box::new(inst)));
        }
    }
    let mut gone: Vec<&String> = baseline
        .keys()
        .filter(|id| !seen.contains_key(*id))
        .collect();
    gone.sort();
    let mut removed: HashSet<String> = gone.iter().map(|s| (*s).clone()).collect();
    items.extend(gone.into_iter().map(|id| DeltaItem::Removed(id.clone())));
    if let Some(prev) = previous
        .as_ref()
        .filter(|_| settings.delta_out_of_window_removed)
    {
        // The real service also reports changes outside the window as
        // removals of ids the client never saw (spec A3).
        for ev in cal.events.values() {
            let outside = ev.end_instant() <= window.0 || ev.start_instant() >= window.1;
            if ev.kind != EventKind::SeriesMaster
                && ev.seq > prev.base_seq
                && outside
                && !seen.contains_key(&ev.id)
                && removed.insert(ev.id.clone())
            {
                items.push(DeltaItem::Removed(ev.id.clone()));
            }
        }
    }

    let epoch = cal.delta_epoch;
    let (account_id, calendar_id) = (account.id.clone(), cal.id.clone());
    let next = match previous {
        Some(prev) if settings.delta_replication_delay && !prev.delayed && !items.is_empty() => {
            items.clear();
            DeltaToken {
                delayed: true,
                issued: now,
                ..prev
            }
        }
        _ => DeltaToken {
            account_id: account_id.clone(),
            calendar_id: calendar_id.clone(),
            window,
            window_text,
            epoch,
            baseline: Arc::new(seen),
            base_seq: seq,
            issued: now,
            delayed: false,
        },
    };
    let delta_token = inner.ms.store_delta_token(next);
    let size = prefs
        .max_page_size
        .unwrap_or(settings.default_page_size)
        .clamp(1, settings.max_page_size.max(1));
    let pages = layout(
        items.len(),
        size,
        settings.delta_empty_page,
        settings.delta_repeat_item,
    );
    Round {
        account_id,
        calendar_id,
        items,
        pages,
        delta_token,
    }
}

/// Cuts `n` items into pages of at most `size`, with the quirks applied.
fn layout(n: usize, size: usize, empty_page: bool, repeat: bool) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut pages: Vec<Vec<usize>> = Vec::new();
    let mut i = 0;
    while i < n {
        let mut page = Vec::with_capacity(size);
        if repeat && i > 0 && size > 1 {
            page.push(i - 1);
        }
        let end = (i + size - page.len()).min(n);
        page.extend(i..end);
        i = end;
        pages.push(page);
    }
    if empty_page && pages.len() >= 2 {
        pages.insert(1, Vec::new());
    }
    pages
}

#[allow(clippy::too_many_arguments)]
fn serve(
    inner: &mut Inner,
    base: &str,
    link_base: &str,
    round_id: u64,
    round: &Round,
    page: usize,
    prefs: &Prefs,
    ix: usize,
) -> Response {
    let zone: OutZone = prefs.zone();
    let account = &inner.ms.accounts[ix];
    let value: Vec<Value> = round
        .pages
        .get(page)
        .map(|p| {
            p.iter()
                .filter_map(|i| round.items.get(*i))
                .map(|item| match item {
                    DeltaItem::Upsert(inst) => events::render(inst, &zone, account, base),
                    DeltaItem::Removed(id) => json!({
                        "@odata.type": "#microsoft.graph.event",
                        "id": id,
                        "@removed": {"reason": "deleted"},
                    }),
                })
                .collect()
        })
        .unwrap_or_default();
    let mut body = json!({
        "@odata.context": format!("{base}/v1.0/$metadata#Collection(event)"),
        "value": value,
    });
    if page + 1 < round.pages.len() {
        let token = inner.ms.skip_token(round_id, page + 1);
        body["@odata.nextLink"] = json!(format!("{link_base}?$skiptoken={token}"));
    } else {
        body["@odata.deltaLink"] = json!(format!("{link_base}?$deltatoken={}", round.delta_token));
    }
    graph::with_headers(Json(body).into_response(), prefs.applied(true))
}

#[cfg(test)]
mod tests {
    use super::layout;

    #[test]
    fn pages_with_and_without_quirks() {
        assert_eq!(layout(0, 3, true, true), vec![Vec::<usize>::new()]);
        assert_eq!(layout(5, 3, false, false), vec![vec![0, 1, 2], vec![3, 4]]);
        assert_eq!(
            layout(5, 3, true, true),
            vec![vec![0, 1, 2], vec![], vec![2, 3, 4]]
        );
        assert_eq!(
            layout(3, 1, true, true),
            vec![vec![0], vec![], vec![1], vec![2]]
        );
    }
}
