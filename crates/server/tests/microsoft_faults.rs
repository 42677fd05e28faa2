//! Syncing Outlook through trouble: a big calendar over pages with Graph's
//! quirks (empty pages, repeated items) and a crash between pages, dead delta
//! tokens (410 and its variants) with deletions, throttling, dead grants, the
//! window moving on; and no token ever at rest in the clear or in a log.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use calsync_core::clock::FixedClock;
use calsync_emulator::samples::{MORGAN, MORGAN_CALENDAR, MORGAN_TEAM};
use calsync_emulator::{ExpiryMode, Fault, MsGenerate};
use calsync_providers::microsoft::{MicrosoftClient, MicrosoftConfig};
use calsync_server::live::ChangeFeed;
use calsync_server::providers::Providers;
use calsync_server::sync::SyncEngine;
use calsync_store::BackendKind;
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};
use support::json;
use support::microsoft::{is_delta_of, MicrosoftApp, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI};

on_both_backends!(
    a_big_calendar_arrives_whole_and_a_crash_between_pages_loses_nothing,
    deletions_while_delta_tokens_are_dead_are_swept,
    throttling_is_waited_out,
    a_revoked_grant_stops_all_calls,
    the_window_is_re_anchored_when_it_moved_more_than_a_week,
    tokens_are_never_stored_or_logged_in_the_clear,
    a_calendar_the_account_cannot_read_does_not_keep_the_others_stale,
);

const BULK: usize = 3000;

/// Starts the app and signs Morgan in; the first sync may still run.
async fn connect(ms: &MicrosoftApp) -> (String, String) {
    let token = ms.app.user_with_token("alice");
    let (cookie, _) = ms.app.login("alice").await;
    assert_eq!(
        ms.connect(&cookie, MORGAN).await,
        "/settings?connected=microsoft"
    );
    (token, cookie)
}

fn graph_event(id: &str, subject: &str, at: Timestamp) -> Value {
    let fmt = |t: Timestamp| t.strftime("%Y-%m-%dT%H:%M:%S.0000000").to_string();
    json!({
        "id": id,
        "subject": subject,
        "start": {"dateTime": fmt(at), "timeZone": "UTC"},
        "end": {"dateTime": fmt(at + SignedDuration::from_mins(30)), "timeZone": "UTC"},
    })
}

fn days(n: i64) -> SignedDuration {
    SignedDuration::from_hours(24 * n)
}

/// Sorted titles starting with `prefix` of the occurrences in `[start, end)`.
async fn titles_between(
    ms: &MicrosoftApp,
    token: &str,
    prefix: &str,
    start: Timestamp,
    end: Timestamp,
) -> Vec<String> {
    let mut titles: Vec<String> = ms
        .events_between(token, start, end)
        .await
        .iter()
        .filter_map(|e| {
            e["title"]
                .as_str()
                .filter(|t| t.starts_with(prefix))
                .map(str::to_owned)
        })
        .collect();
    titles.sort();
    titles
}

async fn a_big_calendar_arrives_whole_and_a_crash_between_pages_loses_nothing(kind: BackendKind) {
    let Some(mut ms) = MicrosoftApp::start(kind).await else {
        return;
    };
    // Every 2 hours from 2 hours ahead: 3,000 events over 250 days.
    let first = Timestamp::now() + SignedDuration::from_hours(2);
    let generate = MsGenerate {
        count: BULK,
        start: Some(first.to_string()),
        every_minutes: 120,
        duration_minutes: 30,
        subject_prefix: "Bulk".into(),
        time_zone: None,
    };
    ms.emulator
        .ms_generate_events(MORGAN, MORGAN_CALENDAR, &generate)
        .unwrap();
    // Pages of 100 (calsync's maxpagesize), an empty second page and every
    // page repeating the previous page's last item: Graph's quirks, on by default.
    ms.emulator.ms_update_settings(|s| {
        assert!(s.delta_empty_page && s.delta_repeat_item);
    });
    // Slow pages 2..6 down a little, so that the crash lands between pages.
    ms.emulator
        .inject_fault(Fault {
            path_prefix: format!("/v1.0/me/calendars/{MORGAN_CALENDAR}/calendarView/delta"),
            delay_ms: Some(300),
            count: 6,
            ..Fault::default()
        })
        .unwrap();
    let (token, _) = connect(&ms).await;

    // Kill the server as soon as the first page of the big calendar is
    // stored with its continuation (pages 2.. are slowed down above).
    let store = ms.app.store().await;
    let cursor_sql =
        format!("SELECT MAX(cursor) FROM calendars WHERE external_id = '{MORGAN_CALENDAR}'");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let cursor = calsync_store::testing::fetch_text(&store, &cursor_sql).await;
        if cursor
            .as_deref()
            .is_some_and(|c| c.starts_with("page-full:"))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no page stored: {cursor:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    ms.app.kill();
    let served_before_crash = ms.emulator.requests().len();
    let cursor = calsync_store::testing::fetch_text(&store, &cursor_sql).await;
    assert!(
        cursor
            .as_deref()
            .is_some_and(|c| c.starts_with("page-full:")),
        "the crash came in the middle of the round: {cursor:?}"
    );
    let partial = ms.app.store().await;
    let stored = calsync_store::testing::fetch_text(
        &partial,
        "SELECT CAST(COUNT(*) AS TEXT) FROM events WHERE title LIKE 'Bulk %'",
    )
    .await;
    let stored: usize = stored.unwrap().parse().unwrap();
    assert!(
        stored > 0 && stored < BULK,
        "part of the calendar was stored before the crash ({stored})"
    );

    ms.restart();
    let connections = ms.sync(&token).await;
    assert_eq!(connections[0]["status"], "ok", "{connections}");

    let titles = titles_between(
        &ms,
        &token,
        "Bulk ",
        Timestamp::now(),
        Timestamp::now() + days(260),
    )
    .await;
    let mut expected: Vec<String> = (1..=BULK).map(|n| format!("Bulk {n}")).collect();
    expected.sort();
    assert_eq!(titles.len(), BULK, "every event once, no duplicates");
    assert_eq!(titles, expected);

    let after: Vec<_> = ms.emulator.requests()[served_before_crash..]
        .iter()
        .filter(|r| is_delta_of(r, MORGAN_CALENDAR))
        .cloned()
        .collect();
    assert!(
        after[0].query.contains("skiptoken"),
        "the round went on from the stored page: {:?}",
        after[0]
    );
    let pages = ms
        .emulator
        .requests()
        .iter()
        .filter(|r| is_delta_of(r, MORGAN_CALENDAR) && r.status == 200)
        .count();
    assert!(
        pages > BULK / 100,
        "the calendar came in many pages ({pages})"
    );
}

async fn deletions_while_delta_tokens_are_dead_are_swept(kind: BackendKind) {
    let Some(ms) = MicrosoftApp::start(kind).await else {
        return;
    };
    let soon = |h: i64| Timestamp::now() + SignedDuration::from_hours(h);
    ms.emulator
        .ms_insert_event(
            MORGAN,
            MORGAN_TEAM,
            graph_event("AAMkAGkeep", "Kept", soon(5)),
        )
        .unwrap();
    let (token, _) = connect(&ms).await;
    ms.wait_for_sync(&token).await;
    let baseline = ms.upcoming_titles(&token).await;
    assert!(baseline.contains(&"Kept".to_owned()));

    for (n, (mode, status)) in [
        (ExpiryMode::SyncStateNotFound, 410),
        (ExpiryMode::ResyncRequired, 410),
        (ExpiryMode::SyncStateInvalid, 400),
    ]
    .into_iter()
    .enumerate()
    {
        let old = format!("AAMkAGold{n}");
        ms.emulator
            .ms_insert_event(MORGAN, MORGAN_TEAM, graph_event(&old, "Doomed", soon(6)))
            .unwrap();
        ms.sync(&token).await;
        assert!(ms
            .upcoming_titles(&token)
            .await
            .contains(&"Doomed".to_owned()));

        ms.emulator
            .ms_delete_event(MORGAN, MORGAN_TEAM, &old)
            .unwrap();
        ms.emulator
            .ms_insert_event(
                MORGAN,
                MORGAN_TEAM,
                graph_event(&format!("AAMkAGnew{n}"), &format!("New {n}"), soon(7)),
            )
            .unwrap();
        ms.emulator
            .ms_expire_delta_tokens(MORGAN, MORGAN_TEAM, mode)
            .unwrap();
        let before = ms.emulator.requests().len();
        let connections = ms.sync(&token).await;
        assert_eq!(connections[0]["status"], "ok", "{mode:?}: {connections}");
        let team: Vec<_> = ms
            .graph_requests(before)
            .into_iter()
            .filter(|r| is_delta_of(r, MORGAN_TEAM))
            .collect();
        assert_eq!(team[0].status, status, "{mode:?}: {team:?}");
        assert!(
            team[1..].iter().all(|r| r.status == 200) && team.len() >= 2,
            "{mode:?}: a full round followed: {team:?}"
        );
        let mut titles = ms.upcoming_titles(&token).await;
        assert!(
            !titles.contains(&"Doomed".to_owned()),
            "{mode:?}: the full round swept the deleted event"
        );
        let new: Vec<String> = (0..=n).map(|k| format!("New {k}")).collect();
        titles.retain(|t| !new.contains(t));
        assert_eq!(titles, baseline, "{mode:?}: the same events, none doubled");
    }
}

async fn throttling_is_waited_out(kind: BackendKind) {
    let Some(ms) = MicrosoftApp::start(kind).await else {
        return;
    };
    let (token, _) = connect(&ms).await;
    ms.wait_for_sync(&token).await;
    for status in [429, 503] {
        ms.emulator
            .inject_fault(Fault {
                path_prefix: "/v1.0/".into(),
                status: Some(status),
                retry_after: Some(1),
                count: 1,
                ..Fault::default()
            })
            .unwrap();
    }
    ms.emulator
        .ms_insert_event(
            MORGAN,
            MORGAN_CALENDAR,
            graph_event("AAMkAGthrottled", "Throttled", Timestamp::now() + days(1)),
        )
        .unwrap();
    let before = ms.emulator.requests().len();
    let connections = ms.sync(&token).await;
    assert_eq!(connections[0]["status"], "ok", "{connections}");
    let log = ms.graph_requests(before);
    let statuses: Vec<u16> = log.iter().map(|r| r.status).collect();
    assert!(statuses.starts_with(&[429, 503, 200]), "{statuses:?}");
    // Each retry came no sooner than Retry-After said.
    let at = |i: usize| log[i].time.parse::<Timestamp>().unwrap();
    for i in [0, 1] {
        assert!(
            at(i + 1).duration_since(at(i)) >= SignedDuration::from_millis(950),
            "retried too soon: {:?} then {:?}",
            log[i],
            log[i + 1]
        );
    }
    assert!(ms
        .upcoming_titles(&token)
        .await
        .contains(&"Throttled".to_owned()));
    let runs = connections[0]["recent_runs"].as_array().unwrap();
    assert_eq!(runs[0]["outcome"], "ok");
}

async fn a_revoked_grant_stops_all_calls(kind: BackendKind) {
    let Some(ms) = MicrosoftApp::start(kind).await else {
        return;
    };
    let (token, _) = connect(&ms).await;
    ms.wait_for_sync(&token).await;
    ms.emulator.ms_revoke_grants(Some(MORGAN)).unwrap();
    let connections = ms.sync(&token).await;
    assert_eq!(connections[0]["status"], "needs_reauth", "{connections}");

    let before = ms.emulator.requests().len();
    let (status, body) = json(
        ms.app
            .post("/api/calendar/sync/", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body), (202, json!({"connection_ids": []})));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        ms.emulator.requests().len(),
        before,
        "no call is made for a connection that needs reconnecting"
    );
}

/// Graph's delta window is fixed per token, so calsync starts a new round
/// when its own window (60 days back, 400 ahead) has moved on by more than
/// a week. The spawned binary has no injectable clock (it runs on
/// `SystemClock`), so the sync after the jump runs the server's own engine
/// in-process with a clock 8 days ahead, on the same database.
async fn the_window_is_re_anchored_when_it_moved_more_than_a_week(kind: BackendKind) {
    let Some(mut ms) = MicrosoftApp::start(kind).await else {
        return;
    };
    let now = Timestamp::now();
    ms.emulator
        .ms_insert_event(
            MORGAN,
            MORGAN_TEAM,
            graph_event("AAMkAGfar", "Far ahead", now + days(404)),
        )
        .unwrap();
    ms.emulator
        .ms_insert_event(
            MORGAN,
            MORGAN_TEAM,
            graph_event("AAMkAGpast", "Long ago", now - days(56)),
        )
        .unwrap();
    let (token, _) = connect(&ms).await;
    ms.wait_for_sync(&token).await;
    let seen = titles_between(&ms, &token, "", now - days(59), now + days(399)).await;
    assert!(seen.contains(&"Long ago".to_owned()), "{seen:?}");
    assert!(!seen.iter().any(|t| t == "Far ahead"), "beyond the window");
    let middle = titles_between(&ms, &token, "", now, now + days(30)).await;

    // A week and a day later: the server's clock (in-process engine) and the
    // emulator's.
    ms.app.kill();
    ms.emulator.advance_clock(8 * 86_400).unwrap();
    let later = now + days(8);
    let mut config = MicrosoftConfig::new(
        CLIENT_ID.to_owned(),
        secrecy::SecretString::from(CLIENT_SECRET.to_owned()),
        REDIRECT_URI.to_owned(),
    );
    let endpoints = ms.emulator.microsoft();
    config.auth_url = endpoints.auth_url;
    config.token_url = endpoints.token_url;
    config.api_base = endpoints.api_base;
    let engine = SyncEngine {
        store: ms.app.store().await,
        providers: Providers {
            microsoft: Some(MicrosoftClient::new(config).unwrap()),
            ..Providers::without_oauth(false).unwrap()
        },
        clock: Arc::new(FixedClock(later)),
        changes: ChangeFeed::default(),
        interval: Duration::from_secs(3600),
        wake: Arc::default(),
        concurrency: 1,
        limits: calsync_store::ClaimLimits::default(),
        metrics: Arc::default(),
    };
    let before = ms.emulator.requests().len();
    assert!(
        engine.sync_next_due().await.unwrap(),
        "the connection was due"
    );
    let team: Vec<_> = ms
        .graph_requests(before)
        .into_iter()
        .filter(|r| is_delta_of(r, MORGAN_TEAM))
        .collect();
    assert!(
        team[0].query.contains("startDateTime") && !team[0].query.contains("deltatoken"),
        "a new round over the moved window, not the old token: {team:?}"
    );
    let start = later - days(60);
    let query = team[0].query.replace("%3A", ":");
    assert!(
        query.contains(&format!(
            "startDateTime={}",
            Timestamp::from_second(start.as_second()).unwrap()
        )),
        "{query}"
    );

    ms.restart();
    let connections = ms.connections(&token).await;
    assert_eq!(connections[0]["status"], "ok", "{connections}");
    let seen = titles_between(&ms, &token, "", now - days(59), now + days(420)).await;
    assert!(
        seen.contains(&"Far ahead".to_owned()),
        "now inside the window: {seen:?}"
    );
    assert!(
        !seen.contains(&"Long ago".to_owned()),
        "before the new window start: swept by the full round"
    );
    assert_eq!(
        titles_between(&ms, &token, "", now, now + days(30)).await,
        middle,
        "the full round left the same events, none doubled"
    );
}

async fn tokens_are_never_stored_or_logged_in_the_clear(kind: BackendKind) {
    let Some(ms) = MicrosoftApp::start(kind).await else {
        return;
    };
    let (token, _) = connect(&ms).await;
    ms.wait_for_sync(&token).await;
    ms.emulator.ms_expire_access_tokens(Some(MORGAN)).unwrap();
    let connections = ms.sync(&token).await;
    assert_eq!(connections[0]["status"], "ok");

    // Every token the emulator knows: the first refresh token and its
    // successor among them.
    let tokens = ms.emulator.live_tokens();
    assert!(ms.refresh_tokens().len() >= 2, "the refresh token rotated");
    let log = ms.app.log_text();
    for t in &tokens {
        assert!(!log.contains(t.as_str()), "a token reached the log");
    }
    let leaked = |text: &str| tokens.iter().any(|t| text.contains(t.as_str()));
    if let Some(dir) = &ms.app.db.dir {
        for file in ["calsync.db", "calsync.db-wal"] {
            let bytes = std::fs::read(dir.join(file)).unwrap_or_default();
            assert!(
                !leaked(&String::from_utf8_lossy(&bytes)),
                "a token is stored in the clear in {file}"
            );
        }
    } else {
        let store = ms.app.store().await;
        for table in ["connections", "calendars", "sync_runs", "oauth_states"] {
            let dump = calsync_store::testing::fetch_text(
                &store,
                &format!("SELECT string_agg(CAST(t AS TEXT), ',') FROM {table} t"),
            )
            .await
            .unwrap_or_default();
            assert!(!leaked(&dump), "a token is stored in the clear in {table}");
        }
        let sealed = calsync_store::testing::fetch_text(
            &store,
            "SELECT access_token || refresh_token FROM connections",
        )
        .await
        .unwrap();
        assert!(sealed.starts_with("v1."), "sealed");
        let states = calsync_store::testing::fetch_text(
            &store,
            "SELECT CAST(COUNT(*) AS TEXT) FROM oauth_states",
        )
        .await;
        assert_eq!(states.as_deref(), Some("0"), "a used state is gone");
    }
}

async fn a_calendar_the_account_cannot_read_does_not_keep_the_others_stale(kind: BackendKind) {
    let Some(ms) = MicrosoftApp::start(kind).await else {
        return;
    };
    let (token, _) = connect(&ms).await;
    ms.wait_for_sync(&token).await;
    // The calendar synced first answers 403 from now on (its owner stopped
    // sharing it, and Graph still lists it for a while).
    let first = ms
        .emulator
        .requests()
        .iter()
        .find(|r| r.path.ends_with("/calendarView/delta"))
        .map(|r| {
            if is_delta_of(r, MORGAN_CALENDAR) {
                (MORGAN_CALENDAR, MORGAN_TEAM)
            } else {
                (MORGAN_TEAM, MORGAN_CALENDAR)
            }
        })
        .unwrap();
    let (unreadable, other) = first;
    ms.emulator
        .inject_fault(Fault {
            path_prefix: format!("/v1.0/me/calendars/{unreadable}/calendarView/delta"),
            status: Some(403),
            reason: Some("ErrorAccessDenied".into()),
            count: 1000,
            ..Fault::default()
        })
        .unwrap();
    ms.emulator
        .ms_insert_event(
            MORGAN,
            other,
            graph_event("AAMkAGstill", "Still synced", Timestamp::now() + days(1)),
        )
        .unwrap();
    let connections = ms.sync(&token).await;
    let connection = &connections[0];
    assert_eq!(connection["status"], "error", "{connection}");
    assert!(
        connection["last_error"]
            .as_str()
            .unwrap()
            .contains("ErrorAccessDenied"),
        "{connection}"
    );
    assert!(
        ms.upcoming_titles(&token)
            .await
            .contains(&"Still synced".to_owned()),
        "the other calendar was synced all the same"
    );
}
