//! Connecting Outlook / Microsoft 365 end to end: the real binary, a real
//! database and the emulator's identity platform + Graph over real HTTP, as a
//! user meets them.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;

use calsync_emulator::samples::{
    MORGAN, MORGAN_CALENDAR, MORGAN_HOLIDAY, MORGAN_SEATTLE_CALL, MORGAN_SUMMIT, MORGAN_TEAM,
    MORGAN_WEEKLY, RILEY,
};
use calsync_emulator::DeadReason;
use calsync_store::BackendKind;
use jiff::civil::Weekday;
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};
use support::microsoft::{is_delta_of, MicrosoftApp, CLIENT_ID, REDIRECT_URI};
use support::{error_code, json};

on_both_backends!(
    connecting_shows_the_accounts_calendars_and_upcoming_events,
    series_all_day_events_and_windows_zones_arrive_as_the_user_sees_them_in_outlook,
    changes_and_removals_arrive_through_delta_tokens,
    the_rotated_refresh_token_is_stored_on_every_refresh_and_survives_a_restart,
    a_dead_grant_asks_for_reconnection_and_reconnecting_restores_it,
    denied_forged_and_replayed_callbacks_store_nothing,
    calendars_can_be_turned_off_and_recoloured,
    disconnecting_deletes_tokens_and_events_without_a_revocation_call,
    a_calendar_removed_in_outlook_disappears_with_its_events,
    an_account_without_a_mailbox_address_shows_its_sign_in_name,
    all_day_events_keep_their_dates_whatever_the_users_zone,
);

/// Morgan's directory object id (the sample's `/me` id).
const MORGAN_ID: &str = "6f1c2a8e-3b7d-4e59-9a0c-1d2e3f4a5b6c";

async fn connected(kind: BackendKind) -> Option<(MicrosoftApp, String, String)> {
    let ms = MicrosoftApp::start(kind).await?;
    let token = ms.app.user_with_token("alice");
    let (cookie, _) = ms.app.login("alice").await;
    let landing = ms.connect(&cookie, MORGAN).await;
    assert_eq!(landing, "/settings?connected=microsoft");
    let connections = ms.wait_for_sync(&token).await;
    assert_eq!(connections[0]["status"], "ok", "{connections}");
    Some((ms, token, cookie))
}

/// A one-hour Graph event `days_ahead` days from now, written in UTC.
fn graph_event(id: &str, subject: &str, days_ahead: i64) -> Value {
    let start = Timestamp::now() + SignedDuration::from_hours(24 * days_ahead);
    let end = start + SignedDuration::from_hours(1);
    let at = |t: Timestamp| t.strftime("%Y-%m-%dT%H:%M:%S.0000000").to_string();
    json!({
        "id": id,
        "subject": subject,
        "start": {"dateTime": at(start), "timeZone": "UTC"},
        "end": {"dateTime": at(end), "timeZone": "UTC"},
    })
}

fn calendar_named<'a>(connection: &'a Value, name: &str) -> &'a Value {
    connection["calendars"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no calendar {name} in {connection}"))
}

fn is_hex_colour(v: &Value) -> bool {
    v.as_str().is_some_and(|c| {
        c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit())
    })
}

async fn connecting_shows_the_accounts_calendars_and_upcoming_events(kind: BackendKind) {
    let Some(ms) = MicrosoftApp::start(kind).await else {
        return;
    };
    let token = ms.app.user_with_token("alice");
    let (cookie, _) = ms.app.login("alice").await;

    // The consent URL: tenant `common`, the read-only scopes, state + PKCE,
    // the exact registered redirect URI.
    let url = reqwest::Url::parse(&ms.authorization_url(&cookie).await).unwrap();
    assert_eq!(url.path(), "/common/oauth2/v2.0/authorize");
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["redirect_uri"], REDIRECT_URI);
    let scopes: BTreeSet<&str> = query["scope"].split(' ').collect();
    assert_eq!(
        scopes,
        BTreeSet::from(["offline_access", "User.Read", "Calendars.Read"])
    );
    assert!(query["state"].len() >= 16, "{query:?}");
    assert_eq!(query["code_challenge_method"], "S256");
    assert!(query["code_challenge"].len() >= 43, "{query:?}");

    let before = ms.emulator.requests().len();
    assert_eq!(
        ms.connect(&cookie, MORGAN).await,
        "/settings?connected=microsoft"
    );
    let connections = ms.wait_for_sync(&token).await;
    let connection = &connections[0];
    assert_eq!(
        (
            connection["provider"].as_str(),
            connection["status"].as_str(),
            connection["account_email"].as_str()
        ),
        (Some("microsoft"), Some("ok"), Some(MORGAN))
    );
    // The connection is keyed by the account's id from /me.
    let store = ms.app.store().await;
    let account_id =
        calsync_store::testing::fetch_text(&store, "SELECT account_id FROM connections").await;
    assert_eq!(account_id.as_deref(), Some(MORGAN_ID));

    // Calendars with colours: the shared one has a hexColor; the default one
    // has none ("" and `auto`) and gets a palette colour like any other.
    let team = calendar_named(connection, "Team Contoso");
    assert_eq!(team["color"], "#87d28e");
    assert_eq!(team["access_role"], "reader");
    let own = calendar_named(connection, "Calendar");
    assert!(is_hex_colour(&own["color"]), "{own}");
    assert_eq!(own["is_primary"], true);

    // One delta round per enabled calendar, over the window.
    let log = ms.graph_requests(before);
    assert!(log.iter().any(|r| r.path == "/v1.0/me" && r.status == 200));
    for id in [MORGAN_CALENDAR, MORGAN_TEAM] {
        let rounds: Vec<_> = log.iter().filter(|r| is_delta_of(r, id)).collect();
        assert!(
            !rounds.is_empty() && rounds.iter().all(|r| r.status == 200),
            "{id}: {rounds:?}"
        );
        assert!(
            rounds[0].query.contains("startDateTime") && rounds[0].query.contains("endDateTime"),
            "{:?}",
            rounds[0]
        );
    }

    let events = ms.upcoming(&token).await;
    assert!(
        events.len() >= 5,
        "the sample has upcoming events: {events:?}"
    );
    let calendars = connection["calendars"].as_array().unwrap();
    for event in &events {
        let calendar = calendars
            .iter()
            .find(|c| c["id"] == event["calendar_id"])
            .unwrap();
        assert_eq!(event["color"], calendar["color"], "{event}");
        assert_eq!(event["provider"], "microsoft");
        let all_day = event["all_day"].as_bool().unwrap();
        assert_eq!(
            all_day,
            event["start"].as_str().unwrap().len() == 10,
            "all-day events are dates: {event}"
        );
    }
    let titles: Vec<&str> = events
        .iter()
        .map(|e| e["title"].as_str().unwrap())
        .collect();
    for title in [
        "Team sync",
        "Company holiday",
        "Call with the Seattle office",
        "Sprint review",
    ] {
        assert!(titles.contains(&title), "{title} missing from {titles:?}");
    }
    assert!(
        !titles.contains(&"Canceled: Vendor demo"),
        "a meeting its organizer cancelled is not shown: {titles:?}"
    );

    let bob = ms.app.user_with_token("bob");
    assert!(
        ms.upcoming_titles(&bob).await.is_empty(),
        "another user sees none of it"
    );
    let page = ms
        .app
        .http
        .get(ms.app.url("/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Call with the Seattle office"),
        "the Dashboard lists them"
    );
}

/// The wall clock of an RFC 3339 instant in `zone`.
fn local(instant: &str, zone: &str) -> jiff::civil::DateTime {
    let t: Timestamp = instant.parse().unwrap();
    t.to_zoned(jiff::tz::TimeZone::get(zone).unwrap())
        .datetime()
}

/// The civil date of a stored Graph event's `start` or `end` (`YYYY-MM-DDT...`).
fn graph_date(event: &Value, field: &str) -> String {
    event[field]["dateTime"].as_str().unwrap()[..10].to_owned()
}

async fn series_all_day_events_and_windows_zones_arrive_as_the_user_sees_them_in_outlook(
    kind: BackendKind,
) {
    let Some((ms, token, _)) = connected(kind).await else {
        return;
    };
    let now = Timestamp::now();
    let events = ms
        .events_between(
            &token,
            now - SignedDuration::from_hours(24 * 7),
            now + SignedDuration::from_hours(24 * 60),
        )
        .await;
    let with_title =
        |title: &str| -> Vec<&Value> { events.iter().filter(|e| e["title"] == title).collect() };

    // "Team sync": Mondays 10:00-10:30 in W. Europe Standard Time, whatever
    // the UTC offset of the week; next week's moved to Tuesday 11:00, the
    // week after that deleted.
    let weekly = with_title("Team sync");
    assert!(weekly.len() >= 6, "{weekly:?}");
    let mut mondays = BTreeSet::new();
    for e in &weekly {
        assert_eq!(e["recurring"], true, "{e}");
        assert_eq!(
            e["timezone"], "Europe/Berlin",
            "Windows zone name mapped: {e}"
        );
        let (start, end) = (
            local(e["start"].as_str().unwrap(), "Europe/Berlin"),
            local(e["end"].as_str().unwrap(), "Europe/Berlin"),
        );
        assert_eq!(
            (start.weekday(), start.hour(), start.minute()),
            (Weekday::Monday, 10, 0),
            "{e}"
        );
        assert_eq!((end.hour(), end.minute()), (10, 30), "{e}");
        mondays.insert(start.date());
    }
    let moved = with_title("Team sync (moved)");
    assert_eq!(moved.len(), 1, "{events:?}");
    assert_eq!(moved[0]["recurring"], true);
    let moved_start = local(moved[0]["start"].as_str().unwrap(), "Europe/Berlin");
    assert_eq!(
        (moved_start.weekday(), moved_start.hour()),
        (Weekday::Tuesday, 11)
    );
    let moved_from = moved_start.date().yesterday().unwrap();
    let deleted = moved_from.checked_add(jiff::Span::new().days(7)).unwrap();
    assert!(
        !mondays.contains(&moved_from) && !mondays.contains(&deleted),
        "the moved and the deleted occurrence are not shown as Mondays: {mondays:?}"
    );
    assert_eq!(mondays.len(), weekly.len(), "no occurrence twice");

    // All-day events stay dates, exactly as Outlook has them.
    let stored = ms
        .emulator
        .ms_stored_events(MORGAN, MORGAN_CALENDAR)
        .unwrap();
    let stored_event = |id: &str| stored.iter().find(|e| e["id"] == id).unwrap().clone();
    for (id, title) in [
        (MORGAN_HOLIDAY, "Company holiday"),
        (MORGAN_SUMMIT, "Contoso Summit"),
    ] {
        let graph = stored_event(id);
        let ours = with_title(title);
        assert_eq!(ours.len(), 1, "{title}: {ours:?}");
        assert_eq!(ours[0]["all_day"], true);
        assert_eq!(
            (
                ours[0]["start"].as_str().unwrap(),
                ours[0]["end"].as_str().unwrap()
            ),
            (
                graph_date(&graph, "start").as_str(),
                graph_date(&graph, "end").as_str()
            ),
            "{title}"
        );
    }

    // A call set up in Pacific Standard Time: 09:00-09:45 in Seattle.
    let call = with_title("Call with the Seattle office");
    assert_eq!(call.len(), 1);
    assert_eq!(call[0]["timezone"], "America/Los_Angeles");
    assert_eq!(call[0]["recurring"], false);
    let start = local(call[0]["start"].as_str().unwrap(), "America/Los_Angeles");
    let end = local(call[0]["end"].as_str().unwrap(), "America/Los_Angeles");
    assert_eq!(
        (start.hour(), start.minute(), end.hour(), end.minute()),
        (9, 0, 9, 45)
    );
    assert_eq!(
        start.date().to_string(),
        graph_date(&stored_event(MORGAN_SEATTLE_CALL), "start")
    );

    // The biweekly review on the shared calendar (Romance Standard Time).
    let review = with_title("Sprint review");
    assert!(!review.is_empty());
    for e in review {
        assert_eq!(e["timezone"], "Europe/Paris");
        assert_eq!(e["recurring"], true);
        let s = local(e["start"].as_str().unwrap(), "Europe/Paris");
        assert_eq!((s.weekday(), s.hour()), (Weekday::Thursday, 15), "{e}");
    }
}

async fn changes_and_removals_arrive_through_delta_tokens(kind: BackendKind) {
    let Some((ms, token, _)) = connected(kind).await else {
        return;
    };
    let titles = ms.upcoming_titles(&token).await;
    ms.emulator
        .ms_insert_event(
            MORGAN,
            MORGAN_CALENDAR,
            graph_event("AAMkAGplanning1", "Quarterly planning", 3),
        )
        .unwrap();
    let before = ms.emulator.requests().len();
    let connections = ms.sync(&token).await;
    assert_eq!(connections[0]["status"], "ok", "{connections}");
    let mut after = ms.upcoming_titles(&token).await;
    assert!(
        after.contains(&"Quarterly planning".to_owned()),
        "{after:?}"
    );
    after.retain(|t| t != "Quarterly planning");
    assert_eq!(after, titles, "nothing else changed, nothing doubled");
    let log = ms.graph_requests(before);
    for id in [MORGAN_CALENDAR, MORGAN_TEAM] {
        let rounds: Vec<_> = log.iter().filter(|r| is_delta_of(r, id)).collect();
        assert!(
            !rounds.is_empty() && rounds.iter().all(|r| r.query.contains("deltatoken")),
            "only changes are asked for: {rounds:?}"
        );
    }

    // A changed subject, then a deleted event (`@removed`).
    ms.emulator
        .ms_patch_event(
            MORGAN,
            MORGAN_CALENDAR,
            "AAMkAGplanning1",
            json!({"subject": "Quarterly planning (room 4)"}),
        )
        .unwrap();
    ms.sync(&token).await;
    let now = ms.upcoming_titles(&token).await;
    assert!(now.contains(&"Quarterly planning (room 4)".to_owned()));
    assert!(!now.contains(&"Quarterly planning".to_owned()));
    ms.emulator
        .ms_delete_event(MORGAN, MORGAN_CALENDAR, "AAMkAGplanning1")
        .unwrap();
    ms.sync(&token).await;
    assert_eq!(ms.upcoming_titles(&token).await, titles);

    // Cancelling one occurrence of the weekly series removes just that one.
    let start = Timestamp::now() + SignedDuration::from_hours(24 * 14);
    let end = start + SignedDuration::from_hours(24 * 7);
    let instances = ms
        .emulator
        .ms_instances(MORGAN, MORGAN_CALENDAR, start, end)
        .unwrap();
    let occurrence = instances
        .iter()
        .find(|i| i["seriesMasterId"] == MORGAN_WEEKLY)
        .unwrap();
    let occurrence_start: Timestamp = format!(
        "{}Z",
        &occurrence["start"]["dateTime"].as_str().unwrap()[..19]
    )
    .parse()
    .unwrap();
    let weekly_in = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .filter(|e| e["title"] == "Team sync")
            .map(|e| e["start"].as_str().unwrap().to_owned())
            .collect()
    };
    let range = (
        start - SignedDuration::from_hours(24 * 7),
        end + SignedDuration::from_hours(24 * 7),
    );
    let series_before = weekly_in(&ms.events_between(&token, range.0, range.1).await);
    ms.emulator
        .ms_delete_event(MORGAN, MORGAN_CALENDAR, occurrence["id"].as_str().unwrap())
        .unwrap();
    ms.sync(&token).await;
    let series_after = weekly_in(&ms.events_between(&token, range.0, range.1).await);
    let gone: Vec<&String> = series_before
        .iter()
        .filter(|s| !series_after.contains(s))
        .collect();
    assert_eq!(gone.len(), 1, "{series_before:?} -> {series_after:?}");
    assert_eq!(gone[0].parse::<Timestamp>().unwrap(), occurrence_start);
    assert_eq!(series_after.len() + 1, series_before.len());

    // Renaming the series renames every occurrence; moving a single event
    // past the window's end takes it out; deleting the series takes every
    // occurrence (and its moved one) with it.
    ms.emulator
        .ms_patch_event(
            MORGAN,
            MORGAN_CALENDAR,
            MORGAN_WEEKLY,
            json!({"subject": "Team sync (new agenda)"}),
        )
        .unwrap();
    ms.emulator
        .ms_insert_event(
            MORGAN,
            MORGAN_CALENDAR,
            graph_event("AAMkAGmoving", "Moving away", 4),
        )
        .unwrap();
    ms.sync(&token).await;
    let renamed = ms.events_between(&token, range.0, range.1).await;
    assert!(weekly_in(&renamed).is_empty(), "{renamed:?}");
    assert_eq!(
        renamed
            .iter()
            .filter(|e| e["title"] == "Team sync (new agenda)")
            .count(),
        series_after.len()
    );
    let far = graph_event("AAMkAGmoving", "Moving away", 500);
    ms.emulator
        .ms_patch_event(
            MORGAN,
            MORGAN_CALENDAR,
            "AAMkAGmoving",
            json!({"start": far["start"], "end": far["end"]}),
        )
        .unwrap();
    ms.emulator
        .ms_delete_event(MORGAN, MORGAN_CALENDAR, MORGAN_WEEKLY)
        .unwrap();
    let connections = ms.sync(&token).await;
    assert_eq!(connections[0]["status"], "ok", "{connections}");
    let now = Timestamp::now();
    let left: Vec<String> = ms
        .events_between(
            &token,
            now - SignedDuration::from_hours(24 * 59),
            now + SignedDuration::from_hours(24 * 399),
        )
        .await
        .iter()
        .map(|e| e["title"].as_str().unwrap().to_owned())
        .filter(|t| t.starts_with("Team sync") || t == "Moving away")
        .collect();
    assert_eq!(left, Vec::<String>::new());
}

async fn the_rotated_refresh_token_is_stored_on_every_refresh_and_survives_a_restart(
    kind: BackendKind,
) {
    let Some((mut ms, token, _)) = connected(kind).await else {
        return;
    };
    let first = ms.refresh_tokens();
    assert_eq!(first.len(), 1, "one grant so far");
    let (user, connection) = {
        let store = ms.app.store().await;
        let user = calsync_store::testing::fetch_text(
            &store,
            "SELECT CAST(id AS TEXT) FROM users WHERE username = 'alice'",
        )
        .await
        .unwrap();
        let connection = ms.connections(&token).await[0]["id"].as_i64().unwrap();
        (
            calsync_core::model::UserId(user.parse().unwrap()),
            calsync_core::model::ConnectionId(connection),
        )
    };
    assert_eq!(
        stored_refresh_token(&ms.app, user, connection).await,
        first[0]
    );

    // The access token dies early (Graph answers 401): calsync refreshes,
    // and Microsoft hands out a new refresh token that replaces the old one.
    ms.emulator.ms_expire_access_tokens(Some(MORGAN)).unwrap();
    ms.emulator
        .ms_insert_event(
            MORGAN,
            MORGAN_CALENDAR,
            graph_event("AAMkAGafter1", "After the refresh", 2),
        )
        .unwrap();
    let before = ms.emulator.requests().len();
    let connections = ms.sync(&token).await;
    assert_eq!(connections[0]["status"], "ok", "{connections}");
    assert!(ms.graph_requests(before).iter().any(|r| r.status == 401));
    assert_eq!(
        ms.token_requests(before)
            .iter()
            .map(|r| r.status)
            .collect::<Vec<_>>(),
        [200],
        "one refresh"
    );
    let second: Vec<String> = ms
        .refresh_tokens()
        .into_iter()
        .filter(|t| !first.contains(t))
        .collect();
    assert_eq!(second.len(), 1);
    assert_eq!(
        stored_refresh_token(&ms.app, user, connection).await,
        second[0],
        "the new one is stored"
    );
    let (status, body) = ms.redeem(&first[0]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert!(ms
        .upcoming_titles(&token)
        .await
        .contains(&"After the refresh".to_owned()));

    // A restart reads the stored one back; the next refresh (now ahead of
    // the emulator's clock, as the access token ages) uses it.
    ms.app.kill();
    ms.restart();
    ms.emulator.advance_clock(3600 * 2).unwrap();
    ms.emulator
        .ms_insert_event(
            MORGAN,
            MORGAN_CALENDAR,
            graph_event("AAMkAGafter2", "After the restart", 2),
        )
        .unwrap();
    let before = ms.emulator.requests().len();
    let connections = ms.sync(&token).await;
    assert_eq!(connections[0]["status"], "ok", "{connections}");
    assert_eq!(
        ms.token_requests(before)
            .iter()
            .map(|r| r.status)
            .collect::<Vec<_>>(),
        [200],
        "the stored refresh token worked"
    );
    let third: Vec<String> = ms
        .refresh_tokens()
        .into_iter()
        .filter(|t| !first.contains(t) && !second.contains(t))
        .collect();
    assert_eq!(third.len(), 1);
    assert_eq!(
        stored_refresh_token(&ms.app, user, connection).await,
        third[0]
    );
    assert!(ms
        .upcoming_titles(&token)
        .await
        .contains(&"After the restart".to_owned()));
}

/// The refresh token calsync has stored (sealed) for the connection.
async fn stored_refresh_token(
    app: &support::TestApp,
    user: calsync_core::model::UserId,
    connection: calsync_core::model::ConnectionId,
) -> String {
    let tokens = app
        .store()
        .await
        .connection_tokens(user, connection)
        .await
        .unwrap();
    secrecy::ExposeSecret::expose_secret(&tokens.refresh_token.unwrap()).to_owned()
}

async fn a_dead_grant_asks_for_reconnection_and_reconnecting_restores_it(kind: BackendKind) {
    let Some((ms, token, cookie)) = connected(kind).await else {
        return;
    };
    let titles = ms.upcoming_titles(&token).await;
    let id = ms.connections(&token).await[0]["id"].as_i64().unwrap();
    for reason in [
        DeadReason::Inactive,
        DeadReason::Revoked,
        DeadReason::InteractionRequired,
    ] {
        ms.emulator
            .ms_expire_refresh_tokens(Some(MORGAN), reason)
            .unwrap();
        ms.emulator.ms_expire_access_tokens(Some(MORGAN)).unwrap();
        let connections = ms.sync(&token).await;
        let connection = &connections[0];
        assert_eq!(
            (
                connection["status"].as_str(),
                connection["needs_reauth"].as_bool()
            ),
            (Some("needs_reauth"), Some(true)),
            "{reason:?}: {connection}"
        );
        assert!(
            connection["last_error"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("reconnect"),
            "{reason:?}: {connection}"
        );
        assert_eq!(
            ms.upcoming_titles(&token).await,
            titles,
            "the last good data stays"
        );
        let (status, body) = json(
            ms.app
                .post("/api/calendar/sync/", &token)
                .json(&json!({"connection_id": id}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((status, error_code(&body).as_str()), (409, "conflict"));
        let settings = ms
            .app
            .http
            .get(ms.app.url("/settings"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert!(settings.text().await.unwrap().contains("Reconnect"));

        assert_eq!(
            ms.connect(&cookie, MORGAN).await,
            "/settings?connected=microsoft"
        );
        let connections = ms.wait_for_sync(&token).await;
        assert_eq!(
            connections.as_array().unwrap().len(),
            1,
            "reconnecting never duplicates"
        );
        assert_eq!(
            (
                connections[0]["id"].as_i64(),
                connections[0]["status"].as_str()
            ),
            (Some(id), Some("ok")),
            "{reason:?}"
        );
        assert_eq!(ms.upcoming_titles(&token).await, titles);
    }
}

async fn denied_forged_and_replayed_callbacks_store_nothing(kind: BackendKind) {
    let Some(ms) = MicrosoftApp::start(kind).await else {
        return;
    };
    let app = &ms.app;
    let token = app.user_with_token("alice");
    let (cookie, _) = app.login("alice").await;

    ms.emulator.update_settings(|s| s.deny_next_consent = true);
    let url = ms.authorization_url(&cookie).await;
    let denied = app.http.get(url).send().await.unwrap();
    let back = denied.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.starts_with(REDIRECT_URI), "{back}");
    assert!(back.contains("error=access_denied"), "{back}");
    assert_eq!(
        ms.follow_callback(&cookie, &back).await,
        "/settings?error=denied"
    );

    let forged = format!("{REDIRECT_URI}?code=M.C540_BAY.2.U.abc&state=forged");
    assert_eq!(
        ms.follow_callback(&cookie, &forged).await,
        "/settings?error=bad_state"
    );

    let back = ms.consent(&cookie, MORGAN).await;
    app.add_user("bob");
    let (bob_cookie, _) = app.login("bob").await;
    assert_eq!(
        ms.follow_callback(&bob_cookie, &back).await,
        "/settings?error=bad_state",
        "a state is bound to its user"
    );
    assert_eq!(
        ms.follow_callback(&cookie, &back).await,
        "/settings?error=bad_state",
        "and spent once tried"
    );
    assert_eq!(
        ms.connections(&token).await,
        json!([]),
        "nothing was stored"
    );
    assert!(
        ms.emulator
            .requests()
            .iter()
            .all(|r| !r.path.ends_with("/oauth2/v2.0/token")),
        "no code was ever redeemed"
    );
}

async fn calendars_can_be_turned_off_and_recoloured(kind: BackendKind) {
    let Some((ms, token, _)) = connected(kind).await else {
        return;
    };
    let connections = ms.connections(&token).await;
    let team = calendar_named(&connections[0], "Team Contoso").clone();
    let path = format!("/api/calendar/calendars/{}/", team["id"]);
    let patch = |body| {
        ms.app
            .http
            .patch(ms.app.url(&path))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let (status, _) = json(patch(json!({"color": "#123abc"})).await.unwrap()).await;
    assert_eq!(status, 200);
    let events = ms.upcoming(&token).await;
    let review = events
        .iter()
        .find(|e| e["title"] == "Sprint review")
        .unwrap();
    assert_eq!(review["color"], "#123abc");

    patch(json!({"enabled": false})).await.unwrap();
    assert!(!ms
        .upcoming_titles(&token)
        .await
        .contains(&"Sprint review".to_owned()));
    let before = ms.emulator.requests().len();
    let connections = ms.sync(&token).await;
    let log = ms.graph_requests(before);
    assert!(
        log.iter().any(|r| is_delta_of(r, MORGAN_CALENDAR)),
        "{log:?}"
    );
    assert!(
        !log.iter().any(|r| is_delta_of(r, MORGAN_TEAM)),
        "a turned-off calendar is not synced: {log:?}"
    );
    let team = calendar_named(&connections[0], "Team Contoso");
    assert_eq!(
        (team["enabled"].as_bool(), team["color"].as_str()),
        (Some(false), Some("#123abc")),
        "a sync keeps the user's choices"
    );
    patch(json!({"enabled": true})).await.unwrap();
    assert!(ms
        .upcoming_titles(&token)
        .await
        .contains(&"Sprint review".to_owned()));
}

async fn disconnecting_deletes_tokens_and_events_without_a_revocation_call(kind: BackendKind) {
    let Some((ms, token, _)) = connected(kind).await else {
        return;
    };
    let id = ms.connections(&token).await[0]["id"].as_i64().unwrap();
    let before = ms.emulator.requests().len();
    let (status, body) = json(
        ms.app
            .post(
                &format!("/api/calendar/connections/{id}/disconnect/"),
                &token,
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"id": id, "disconnected": true, "revoked": false})
        ),
        "Graph has no revocation endpoint"
    );
    assert_eq!(
        ms.emulator.requests().len(),
        before,
        "no call to Microsoft at all"
    );
    assert!(ms.upcoming_titles(&token).await.is_empty());
    let (_, calendars) = json(
        ms.app
            .get("/api/calendar/calendars/", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(calendars, json!([]));
    assert_eq!(ms.connections(&token).await, json!([]));
    let store = ms.app.store().await;
    for table in ["connections", "calendars", "events"] {
        let count = calsync_store::testing::fetch_text(
            &store,
            &format!("SELECT CAST(COUNT(*) AS TEXT) FROM {table}"),
        )
        .await;
        assert_eq!(count.as_deref(), Some("0"), "{table}");
    }
}

async fn a_calendar_removed_in_outlook_disappears_with_its_events(kind: BackendKind) {
    let Some((ms, token, _)) = connected(kind).await else {
        return;
    };
    let titles = ms.upcoming_titles(&token).await;
    let side = ms
        .emulator
        .ms_add_calendar(
            MORGAN,
            json!({"name": "Side project", "color": "lightBlue"}),
        )
        .unwrap();
    let side_id = side["id"].as_str().unwrap().to_owned();
    ms.emulator
        .ms_insert_event(
            MORGAN,
            &side_id,
            graph_event("AAMkAGside1", "Side project demo", 2),
        )
        .unwrap();
    let connections = ms.sync(&token).await;
    assert_eq!(connections[0]["status"], "ok", "{connections}");
    let calendar = calendar_named(&connections[0], "Side project");
    assert_eq!(calendar["color"], "#a6d1f5", "the lightBlue preset");
    assert!(ms
        .upcoming_titles(&token)
        .await
        .contains(&"Side project demo".to_owned()));

    // Deleted in Outlook (or no longer shared with the user).
    let response = ms
        .app
        .http
        .delete(format!(
            "{}/_emulator/microsoft/accounts/{MORGAN}/calendars/{side_id}",
            ms.emulator.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let connections = ms.sync(&token).await;
    assert_eq!(
        connections[0]["status"], "ok",
        "a calendar that is gone does not break the connection: {connections}"
    );
    let side = calendar_named(&connections[0], "Side project");
    assert_eq!(
        (&side["vanished"], &side["held_removals"]),
        (&json!(false), &Value::Null),
        "one listing without it may be a hiccup: kept, not synced"
    );

    // Missing from a second listing in a row, with events: its removal is
    // held for the user, who agrees.
    let connections = ms.sync(&token).await;
    assert_eq!(connections[0]["status"], "held", "{connections}");
    let side = calendar_named(&connections[0], "Side project");
    assert_eq!(
        (&side["vanished"], &side["held_removals"]),
        (&json!(true), &json!(1))
    );
    let (status, decided) = json(
        ms.app
            .post(
                &format!("/api/calendar/calendars/{}/removals/", side["id"]),
                &token,
            )
            .json(&json!({"decision": "apply"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{decided}");
    let connections = ms.sync(&token).await;
    assert_eq!(connections[0]["status"], "ok", "{connections}");
    let names: Vec<&str> = connections[0]["calendars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"Side project"), "{names:?}");
    assert_eq!(
        ms.upcoming_titles(&token).await,
        titles,
        "its events are gone"
    );
}

async fn an_account_without_a_mailbox_address_shows_its_sign_in_name(kind: BackendKind) {
    let Some((ms, token, cookie)) = connected(kind).await else {
        return;
    };
    // A second account of the same user: Riley has no `mail`, only a UPN.
    assert_eq!(
        ms.connect(&cookie, RILEY).await,
        "/settings?connected=microsoft"
    );
    let connections = ms.wait_for_sync(&token).await;
    let mut accounts: Vec<(&str, &str, &str)> = connections
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["provider"].as_str().unwrap(),
                c["account_email"].as_str().unwrap(),
                c["status"].as_str().unwrap(),
            )
        })
        .collect();
    accounts.sort();
    assert_eq!(
        accounts,
        [("microsoft", MORGAN, "ok"), ("microsoft", RILEY, "ok")]
    );
    assert!(ms
        .upcoming_titles(&token)
        .await
        .contains(&"Dentist".to_owned()));
}

async fn all_day_events_keep_their_dates_whatever_the_users_zone(kind: BackendKind) {
    let Some(ms) = MicrosoftApp::start(kind).await else {
        return;
    };
    let token = ms.app.user_with_token("alice");
    let store = ms.app.store().await;
    let stored = ms
        .emulator
        .ms_stored_events(MORGAN, MORGAN_CALENDAR)
        .unwrap();
    let graph = |id: &str| stored.iter().find(|e| e["id"] == id).unwrap().clone();
    let expected: Vec<(String, String, String)> = [
        (MORGAN_HOLIDAY, "Company holiday"),
        (MORGAN_SUMMIT, "Contoso Summit"),
    ]
    .iter()
    .map(|(id, title)| {
        let g = graph(id);
        (
            (*title).to_owned(),
            graph_date(&g, "start"),
            graph_date(&g, "end"),
        )
    })
    .collect();
    let (cookie, _) = ms.app.login("alice").await;
    ms.connect(&cookie, MORGAN).await;
    ms.wait_for_sync(&token).await;
    // UTC+14 and UTC-11: a date read as an instant would move by a day in one of them.
    for zone in ["Pacific/Kiritimati", "Pacific/Pago_Pago"] {
        calsync_store::testing::fetch_text(
            &store,
            &format!("UPDATE users SET timezone = '{zone}' RETURNING CAST(id AS TEXT)"),
        )
        .await
        .unwrap();
        let mut seen: Vec<(String, String, String)> = ms
            .upcoming(&token)
            .await
            .iter()
            .filter(|e| e["all_day"] == true)
            .map(|e| {
                (
                    e["title"].as_str().unwrap().to_owned(),
                    e["start"].as_str().unwrap().to_owned(),
                    e["end"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        seen.sort();
        assert_eq!(seen, expected, "{zone}");
    }
}
