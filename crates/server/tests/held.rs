//! Why a connection waits, and mass removals held for the user's decision,
//! end to end: the real binary, a real database, ICS feeds served over real
//! HTTP by the test, the JSON API and the Settings page as a user meets them.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use calsync_store::BackendKind;
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};
use support::{error_code, json, post_and_follow, TestApp};

on_both_backends!(
    removals_need_a_hold_and_a_valid_decision,
    a_failing_feed_waits_with_backoff,
    a_feed_that_asks_to_wait_is_rate_limited,
    a_hold_shows_on_settings_and_takes_a_decision,
    a_feed_that_drops_most_events_is_held_until_the_user_decides,
);

/// What one test feed answers.
struct Feed {
    body: String,
    /// An error status to answer instead of the body.
    failing: Option<StatusCode>,
    retry_after: Option<u64>,
    requests: u32,
}

/// The feeds of one test, by file name; while the test holds `gate`'s
/// write lock, every feed request waits (a sync stays in flight).
#[derive(Default)]
struct Feeds {
    feeds: Mutex<HashMap<String, Feed>>,
    gate: tokio::sync::RwLock<()>,
}

impl Feeds {
    fn set(&self, name: &str, body: String) {
        let mut feeds = self.feeds.lock().unwrap();
        let feed = feeds.entry(name.to_owned()).or_insert(Feed {
            body: String::new(),
            failing: None,
            retry_after: None,
            requests: 0,
        });
        feed.body = body;
        feed.failing = None;
        feed.retry_after = None;
    }

    fn fail(&self, name: &str, status: StatusCode, retry_after: Option<u64>) {
        let mut feeds = self.feeds.lock().unwrap();
        let feed = feeds.get_mut(name).unwrap();
        feed.failing = Some(status);
        feed.retry_after = retry_after;
    }

    fn requests(&self, name: &str) -> u32 {
        self.feeds.lock().unwrap()[name].requests
    }
}

async fn serve(State(feeds): State<Arc<Feeds>>, Path(name): Path<String>) -> Response {
    let _open = feeds.gate.read().await;
    let mut all = feeds.feeds.lock().unwrap();
    let Some(feed) = all.get_mut(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    feed.requests += 1;
    if let Some(status) = feed.failing {
        let mut response = (status, "try again later").into_response();
        if let Some(secs) = feed.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, secs.to_string().parse().unwrap());
        }
        return response;
    }
    (
        [(header::CONTENT_TYPE, "text/calendar; charset=utf-8")],
        feed.body.clone(),
    )
        .into_response()
}

/// A feed server on a random port; returns its base URL (`http://host:port`).
async fn feed_server() -> (String, Arc<Feeds>) {
    let feeds = Arc::new(Feeds::default());
    let app = axum::Router::new()
        .route("/feeds/{name}", axum::routing::get(serve))
        .with_state(feeds.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, feeds)
}

fn utc(at: Timestamp) -> String {
    at.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// A VEVENT starting `days` from now (at a whole hour), one hour long.
fn vevent(uid: &str, title: &str, days: i64) -> String {
    let start =
        Timestamp::now().round(jiff::Unit::Hour).unwrap() + SignedDuration::from_hours(24 * days);
    let end = start + SignedDuration::from_hours(1);
    format!(
        "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{}\r\nDTEND:{}\r\nSUMMARY:{title}\r\nEND:VEVENT\r\n",
        utc(start),
        utc(end)
    )
}

/// `count` events, one a day from tomorrow: `Event 0`, `Event 1`, ...
fn events(prefix: &str, count: i64) -> Vec<String> {
    (0..count)
        .map(|i| vevent(&format!("{prefix}{i}@test"), &format!("Event {i}"), i + 1))
        .collect()
}

fn calendar(name: &str, events: &[String]) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calsync tests//EN\r\nX-WR-CALNAME:{name}\r\n{}END:VCALENDAR\r\n",
        events.concat()
    )
}

async fn start(kind: BackendKind) -> Option<TestApp> {
    TestApp::start_with(
        kind,
        &[
            ("CALSYNC_ALLOW_PRIVATE_ADDRESSES", "true"),
            ("CALSYNC_SYNC_INTERVAL", "1h"),
        ],
    )
    .await
}

/// Subscribes to a feed and waits for its first sync; returns the connection id.
async fn subscribe(app: &TestApp, token: &str, url: &str) -> i64 {
    let (status, created) = json(
        app.post("/api/calendar/ics/subscribe/", token)
            .json(&json!({ "url": url }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    app.wait_for_sync(token).await;
    created["id"].as_i64().unwrap()
}

/// The connection `id` as the API lists it.
async fn connection(app: &TestApp, token: &str, id: i64) -> Value {
    let (status, list) = json(
        app.get("/api/calendar/connections/", token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no connection {id} in {list}"))
        .clone()
}

/// Waits until no connection is pending or syncing; returns connection `id`.
async fn settled(app: &TestApp, token: &str, id: i64) -> Value {
    app.wait_for_sync(token).await;
    connection(app, token, id).await
}

fn instant(value: &Value) -> Timestamp {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not an instant: {value}"))
        .parse()
        .unwrap()
}

async fn titles_of(app: &TestApp, token: &str, calendar: i64) -> Vec<String> {
    let mut titles: Vec<String> = app
        .upcoming(token, "limit=500&days=60")
        .await
        .iter()
        .filter(|e| e["calendar_id"] == calendar)
        .map(|e| e["title"].as_str().unwrap().to_owned())
        .collect();
    titles.sort();
    titles
}

fn decide(app: &TestApp, token: &str, calendar: i64, body: &Value) -> reqwest::RequestBuilder {
    app.post(
        &format!("/api/calendar/calendars/{calendar}/removals/"),
        token,
    )
    .json(body)
}

async fn settings(app: &TestApp, cookie: &str) -> String {
    let response = app
        .http
        .get(app.url("/settings"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// The paragraph of the page with `id`, for messages about one element.
fn element<'a>(page: &'a str, id: &str) -> &'a str {
    let at = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} on the page:\n{page}"));
    let end = page[at..].find("</p>").map_or(page.len(), |e| at + e);
    &page[at..end]
}

async fn removals_need_a_hold_and_a_valid_decision(kind: BackendKind) {
    let Some(app) = start(kind).await else {
        return;
    };
    let token = app.user_with_token("alice");
    let bob = app.user_with_token("bob");
    let (base, feeds) = feed_server().await;
    feeds.set("team.ics", calendar("Team", &events("t", 3)));
    let id = subscribe(&app, &token, &format!("{base}/feeds/team.ics")).await;

    // The connection says when it syncs next, and that it is not waiting.
    let conn = connection(&app, &token, id).await;
    assert_eq!(conn["status"], "ok", "{conn}");
    let next = instant(&conn["next_sync_at"]);
    let now = Timestamp::now();
    assert!(
        next > now + SignedDuration::from_mins(30) && next < now + SignedDuration::from_mins(80),
        "about an interval (1h ±10%) ahead: {conn}"
    );
    assert_eq!(conn.get("waiting"), Some(&Value::Null), "{conn}");
    // Its calendar: nothing held, in both listings.
    let cal = conn["calendars"][0].clone();
    let calendar_id = cal["id"].as_i64().unwrap();
    for listed in [
        cal,
        json(
            app.get("/api/calendar/calendars/", &token)
                .send()
                .await
                .unwrap(),
        )
        .await
        .1[0]
            .clone(),
    ] {
        assert_eq!(listed["held_removals"], Value::Null, "{listed}");
        assert_eq!(listed["removal_decision"], Value::Null, "{listed}");
        assert_eq!(listed["vanished"], false, "{listed}");
    }

    // Nothing held: 409 with its code, for either decision.
    for decision in ["apply", "reject"] {
        let (status, body) = json(
            decide(&app, &token, calendar_id, &json!({ "decision": decision }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, error_code(&body).as_str()),
            (409, "conflict"),
            "{body}"
        );
    }
    // Somebody else's calendar, or none: 404 as if it did not exist.
    for (who, calendar) in [(&bob, calendar_id), (&token, 987_654)] {
        let (status, body) = json(
            decide(&app, who, calendar, &json!({"decision": "apply"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((status, error_code(&body).as_str()), (404, "not_found"));
    }
    // Bad decisions are a 4xx with the error envelope, never a 500.
    for body in [
        json!({"decision": "maybe"}),
        json!({"decision": "APPLY"}),
        json!({}),
        json!({"decision": "apply", "also": true}),
        json!({"decision": null}),
        json!({"decision": 1}),
    ] {
        let (status, answer) = json(
            decide(&app, &token, calendar_id, &body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert!(matches!(status, 400 | 422), "{body} -> {status} {answer}");
        error_code(&answer);
    }
    let (status, answer) = json(
        app.post(
            &format!("/api/calendar/calendars/{calendar_id}/removals/"),
            &token,
        )
        .header("content-type", "application/json")
        .body("{\"decision\":")
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error_code(&answer).as_str()),
        (400, "malformed_json")
    );
    let (status, answer) = json(
        app.post("/api/calendar/calendars/abc/removals/", &token)
            .json(&json!({"decision": "apply"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error_code(&answer).as_str()), (400, "bad_id"));
    let (status, answer) = json(
        app.http
            .post(app.url(&format!("/api/calendar/calendars/{calendar_id}/removals/")))
            .json(&json!({"decision": "apply"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error_code(&answer).as_str()),
        (401, "unauthenticated")
    );
    let (status, _) = json(
        app.get(
            &format!("/api/calendar/calendars/{calendar_id}/removals/"),
            &token,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 405);

    // The page form answers with messages, not JSON.
    let (cookie, csrf) = app.login("alice").await;
    let path = format!("/settings/calendars/{calendar_id}/removals");
    let page = post_and_follow(
        &app,
        &cookie,
        &path,
        &[("csrf_token", &csrf), ("decision", "apply")],
    )
    .await;
    assert!(page.contains("Nothing is held on this calendar"), "{page}");
    let page = post_and_follow(
        &app,
        &cookie,
        &path,
        &[("csrf_token", &csrf), ("decision", "everything")],
    )
    .await;
    assert!(page.contains("Choose Remove them or Keep them."), "{page}");
    let forged = app
        .http
        .post(app.url(&path))
        .header("cookie", &cookie)
        .header("origin", "http://localhost:8000")
        .form(&[("csrf_token", "forged"), ("decision", "apply")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    // Settings shows when the next sync is, in the user's zone (UTC here).
    let page = settings(&app, &cookie).await;
    let line = element(&page, &format!("connection-{id}-next"));
    assert!(
        line.contains("Next sync: ") && line.contains(&next.strftime("%H:%M").to_string()),
        "{line}"
    );
    assert!(!page.contains("held-form"), "nothing held, no buttons");

    assert_eq!(titles_of(&app, &token, calendar_id).await.len(), 3);
}

async fn a_failing_feed_waits_with_backoff(kind: BackendKind) {
    let Some(app) = start(kind).await else {
        return;
    };
    let token = app.user_with_token("alice");
    let (cookie, _) = app.login("alice").await;
    let (base, feeds) = feed_server().await;
    feeds.set("team.ics", calendar("Team", &events("t", 2)));
    let id = subscribe(&app, &token, &format!("{base}/feeds/team.ics")).await;

    feeds.fail("team.ics", StatusCode::INTERNAL_SERVER_ERROR, None);
    for failures in 1..=2u32 {
        app.sync(&token).await;
        let conn = connection(&app, &token, id).await;
        assert_eq!(conn["status"], "error", "{conn}");
        assert_eq!(conn["consecutive_failures"], failures, "{conn}");
        let waiting = &conn["waiting"];
        assert_eq!(waiting["reason"], "backoff", "{conn}");
        let until = instant(&waiting["until"]);
        assert_eq!(until, instant(&conn["next_sync_at"]), "{conn}");
        assert!(
            until > Timestamp::now() + SignedDuration::from_mins(30),
            "backing off from an hour's interval: {conn}"
        );
        let page = settings(&app, &cookie).await;
        let line = element(&page, &format!("connection-{id}-next"));
        let why = if failures == 1 {
            "Waiting after a failed sync until ".to_owned()
        } else {
            format!("Waiting after {failures} failed syncs in a row until ")
        };
        assert!(
            line.contains(&why) && line.contains(&until.strftime("%H:%M").to_string()),
            "{line}"
        );
    }

    // Back to normal: no longer waiting.
    feeds.set("team.ics", calendar("Team", &events("t", 2)));
    app.sync(&token).await;
    let conn = connection(&app, &token, id).await;
    assert_eq!(conn["status"], "ok", "{conn}");
    assert_eq!(conn["waiting"], Value::Null, "{conn}");
    let page = settings(&app, &cookie).await;
    assert!(element(&page, &format!("connection-{id}-next")).contains("Next sync: "));
}

async fn a_feed_that_asks_to_wait_is_rate_limited(kind: BackendKind) {
    // A short interval: a Retry-After never brings the next sync sooner
    // than a failure's backoff (here about a minute), and 120 s is longer.
    let Some(app) = TestApp::start_with(
        kind,
        &[
            ("CALSYNC_ALLOW_PRIVATE_ADDRESSES", "true"),
            ("CALSYNC_SYNC_INTERVAL", "30s"),
        ],
    )
    .await
    else {
        return;
    };
    let token = app.user_with_token("alice");
    let (cookie, _) = app.login("alice").await;
    let (base, feeds) = feed_server().await;
    feeds.set("team.ics", calendar("Team", &events("t", 2)));
    let id = subscribe(&app, &token, &format!("{base}/feeds/team.ics")).await;

    feeds.fail("team.ics", StatusCode::TOO_MANY_REQUESTS, Some(120));
    let asked = Timestamp::now();
    app.sync(&token).await;
    let conn = connection(&app, &token, id).await;
    let waiting = &conn["waiting"];
    assert_eq!(waiting["reason"], "rate_limited", "{conn}");
    let until = instant(&waiting["until"]);
    assert_eq!(until, instant(&conn["next_sync_at"]), "{conn}");
    let after = until.duration_since(asked).as_secs();
    assert!(
        (110..=140).contains(&after),
        "Retry-After: 120 -> about two minutes, not {after} s: {conn}"
    );
    let page = settings(&app, &cookie).await;
    let line = element(&page, &format!("connection-{id}-next"));
    assert!(
        line.contains("The provider asked us to wait until ")
            && line.contains(&until.strftime("%H:%M").to_string()),
        "{line}"
    );
    assert_eq!(
        titles_of(&app, &token, conn["calendars"][0]["id"].as_i64().unwrap())
            .await
            .len(),
        2,
        "the last good copy stays"
    );
}

/// A hold written straight into the database (as the engine leaves one),
/// so that the API and the page can be checked apart from the engine. (A
/// feed always lists its one calendar, so a sync of `old` would clear its
/// made-up "vanished" state: it is only shown, never synced here.)
async fn a_hold_shows_on_settings_and_takes_a_decision(kind: BackendKind) {
    let Some(app) = start(kind).await else {
        return;
    };
    let token = app.user_with_token("alice");
    let (cookie, csrf) = app.login("alice").await;
    let (base, feeds) = feed_server().await;
    let work_name = "Work <b>\"R&D\"</b>";
    feeds.set("work.ics", calendar(work_name, &events("w", 3)));
    feeds.set("old.ics", calendar("Old team", &events("o", 2)));
    feeds.set("side.ics", calendar("Side projects", &events("s", 2)));
    let work = subscribe(&app, &token, &format!("{base}/feeds/work.ics")).await;
    let old = subscribe(&app, &token, &format!("{base}/feeds/old.ics")).await;
    let side = subscribe(&app, &token, &format!("{base}/feeds/side.ics")).await;
    let work_cal = connection(&app, &token, work).await["calendars"][0]["id"]
        .as_i64()
        .unwrap();
    let old_cal = connection(&app, &token, old).await["calendars"][0]["id"]
        .as_i64()
        .unwrap();
    let side_cal = connection(&app, &token, side).await["calendars"][0]["id"]
        .as_i64()
        .unwrap();

    let store = app.store().await;
    calsync_store::testing::execute(
        &store,
        &format!(
            "UPDATE calendars SET held_removals = 212 WHERE id = {work_cal}; \
             UPDATE calendars SET held_removals = 2, missing_listings = 2 WHERE id = {old_cal}; \
             UPDATE calendars SET held_removals = 40 WHERE id = {side_cal}; \
             UPDATE connections SET status = 'held' WHERE id IN ({work}, {old}, {side})"
        ),
    )
    .await;
    store.close().await;

    let conn = connection(&app, &token, work).await;
    assert_eq!(conn["status"], "held", "{conn}");
    assert_eq!(conn["needs_reauth"], false);
    assert_eq!(conn["calendars"][0]["held_removals"], 212, "{conn}");
    assert_eq!(conn["calendars"][0]["vanished"], false, "{conn}");
    let conn = connection(&app, &token, old).await;
    assert_eq!(conn["calendars"][0]["held_removals"], 2, "{conn}");
    assert_eq!(conn["calendars"][0]["vanished"], true, "{conn}");

    let page = settings(&app, &cookie).await;
    assert!(
        page.contains(
            "The last sync would remove 212 events from Work &lt;b&gt;&quot;R&amp;D&quot;&lt;/b&gt;. Nothing was removed."
        ),
        "{page}"
    );
    assert!(
        !page.contains("<b>\"R&D\"</b>"),
        "the feed's name is escaped"
    );
    assert!(page.contains(
        "The calendar Old team no longer appears in the account. Removing it would delete its 2 events."
    ));
    assert!(page.contains("Removals held"));
    let dashboard = app
        .http
        .get(app.url("/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        dashboard.contains(&format!(
            "<a href=\"/settings#connection-{work}\">Decide in Settings</a>"
        )),
        "the Dashboard points to the decision: {dashboard}"
    );
    for cal in [work_cal, old_cal, side_cal] {
        assert!(page.contains(&format!("id=\"apply-removals-{cal}\"")));
        assert!(page.contains(&format!("id=\"reject-removals-{cal}\"")));
        assert!(page.contains(&format!("action=\"/settings/calendars/{cal}/removals\"")));
    }

    // Decisions while the feeds keep the syncs they start in flight.
    let (work_before, side_before) = (feeds.requests("work.ics"), feeds.requests("side.ics"));
    let gate = feeds.gate.write().await;
    let page = post_and_follow(
        &app,
        &cookie,
        &format!("/settings/calendars/{work_cal}/removals"),
        &[("csrf_token", &csrf), ("decision", "reject")],
    )
    .await;
    assert!(
        page.contains("Work &lt;b&gt;&quot;R&amp;D&quot;&lt;/b&gt;: its events are kept"),
        "{page}"
    );
    assert!(
        element(&page, &format!("calendar-{work_cal}-decided"))
            .contains("You chose: Keep them. Will be applied at the next sync (now)."),
        "{page}"
    );
    assert!(!page.contains(&format!("id=\"reject-removals-{work_cal}\"")));
    assert!(page.contains(&format!("id=\"reject-removals-{old_cal}\"")));
    assert!(page.contains(&format!("id=\"reject-removals-{side_cal}\"")));

    let (status, body) = json(
        decide(&app, &token, side_cal, &json!({"decision": "apply"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            &body["id"],
            &body["connection_id"],
            &body["removal_decision"],
            &body["held_removals"],
            &body["vanished"],
            &body["name"],
        ),
        (
            &json!(side_cal),
            &json!(side),
            &json!("apply"),
            &json!(40),
            &json!(false),
            &json!("Side projects"),
        )
    );
    let conn = connection(&app, &token, side).await;
    assert!(
        matches!(conn["status"].as_str(), Some("pending" | "syncing")),
        "the decision starts a sync at once: {conn}"
    );
    let page = settings(&app, &cookie).await;
    assert!(
        element(&page, &format!("calendar-{side_cal}-decided"))
            .contains("You chose: Remove them. Will be applied at the next sync (now)."),
        "{page}"
    );
    assert!(
        page.contains("The calendar Old team no longer appears in the account."),
        "undecided holds stay as they are: {page}"
    );
    assert!(page.contains(&format!("id=\"apply-removals-{old_cal}\"")));

    drop(gate);
    app.wait_for_sync(&token).await;
    assert!(feeds.requests("work.ics") > work_before, "work synced");
    assert!(feeds.requests("side.ics") > side_before, "side synced");
}

async fn a_feed_that_drops_most_events_is_held_until_the_user_decides(kind: BackendKind) {
    let Some(app) = start(kind).await else {
        return;
    };
    let token = app.user_with_token("alice");
    let (cookie, csrf) = app.login("alice").await;
    let (base, feeds) = feed_server().await;
    let all = events("w", 30);
    feeds.set("work.ics", calendar("Work", &all));
    let clubs = events("c", 25);
    feeds.set("club.ics", calendar("Club", &clubs));
    let work = subscribe(&app, &token, &format!("{base}/feeds/work.ics")).await;
    let club = subscribe(&app, &token, &format!("{base}/feeds/club.ics")).await;
    let work_cal = connection(&app, &token, work).await["calendars"][0]["id"]
        .as_i64()
        .unwrap();
    let club_cal = connection(&app, &token, club).await["calendars"][0]["id"]
        .as_i64()
        .unwrap();
    assert_eq!(titles_of(&app, &token, work_cal).await.len(), 30);
    assert_eq!(titles_of(&app, &token, club_cal).await.len(), 25);

    // 27 of 30 gone at once: nothing is removed, the connection is held.
    feeds.set("work.ics", calendar("Work", &all[..3]));
    let conn = {
        app.sync(&token).await;
        connection(&app, &token, work).await
    };
    assert_eq!(conn["status"], "held", "{conn}");
    assert_eq!(conn["calendars"][0]["held_removals"], 27, "{conn}");
    assert_eq!(conn["calendars"][0]["removal_decision"], Value::Null);
    assert_eq!(conn["calendars"][0]["vanished"], false);
    assert_eq!(titles_of(&app, &token, work_cal).await.len(), 30);
    let page = settings(&app, &cookie).await;
    assert!(
        page.contains("The last sync would remove 27 events from Work. Nothing was removed."),
        "{page}"
    );
    assert!(page.contains(&format!("id=\"reject-removals-{work_cal}\"")));
    // Held stays held: another sync removes nothing either.
    app.sync(&token).await;
    let conn = connection(&app, &token, work).await;
    assert_eq!(conn["status"], "held", "{conn}");
    assert_eq!(titles_of(&app, &token, work_cal).await.len(), 30);

    // "Keep them": the events stay, and later changes sync again.
    let page = post_and_follow(
        &app,
        &cookie,
        &format!("/settings/calendars/{work_cal}/removals"),
        &[("csrf_token", &csrf), ("decision", "reject")],
    )
    .await;
    assert!(page.contains("Work: its events are kept"), "{page}");
    let conn = settled(&app, &token, work).await;
    assert_eq!(conn["status"], "ok", "{conn}");
    assert_eq!(conn["calendars"][0]["held_removals"], Value::Null, "{conn}");
    assert_eq!(
        conn["calendars"][0]["removal_decision"],
        Value::Null,
        "{conn}"
    );
    assert_eq!(titles_of(&app, &token, work_cal).await.len(), 30);
    // The feed's next round (unchanged: every feed round is a full one)
    // does not ask again.
    app.sync(&token).await;
    let conn = connection(&app, &token, work).await;
    assert_eq!(
        (&conn["status"], &conn["calendars"][0]["held_removals"]),
        (&json!("ok"), &Value::Null),
        "kept events are not held again by the next round: {conn}"
    );
    assert_eq!(titles_of(&app, &token, work_cal).await.len(), 30);
    let mut kept = all[..3].to_vec();
    kept[0] = kept[0].replace("SUMMARY:Event 0", "SUMMARY:Renamed");
    kept.push(vevent("planning@test", "Planning", 4));
    feeds.set("work.ics", calendar("Work", &kept));
    app.sync(&token).await;
    let titles = titles_of(&app, &token, work_cal).await;
    assert!(
        titles.contains(&"Renamed".to_owned()) && titles.contains(&"Planning".to_owned()),
        "{titles:?}"
    );
    assert!(!titles.contains(&"Event 0".to_owned()), "{titles:?}");
    assert_eq!(titles.len(), 31, "the kept events stay: {titles:?}");
    let conn = connection(&app, &token, work).await;
    assert_eq!(
        (&conn["status"], &conn["calendars"][0]["held_removals"]),
        (&json!("ok"), &Value::Null),
        "the kept events are not held again by the next round: {conn}"
    );
    let page = settings(&app, &cookie).await;
    assert!(!page.contains(&format!("calendar-{work_cal}-held")));

    // "Remove them" (through the API): the events go.
    feeds.set("club.ics", calendar("Club", &clubs[..2]));
    app.sync(&token).await;
    let conn = connection(&app, &token, club).await;
    assert_eq!(conn["status"], "held", "{conn}");
    assert_eq!(conn["calendars"][0]["held_removals"], 23, "{conn}");
    assert_eq!(titles_of(&app, &token, club_cal).await.len(), 25);
    let (status, body) = json(
        decide(&app, &token, club_cal, &json!({"decision": "apply"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["removal_decision"], "apply");
    let conn = settled(&app, &token, club).await;
    assert_eq!(conn["status"], "ok", "{conn}");
    assert_eq!(conn["calendars"][0]["held_removals"], Value::Null, "{conn}");
    assert_eq!(
        titles_of(&app, &token, club_cal).await,
        ["Event 0", "Event 1"]
    );
    // Decided and carried out: nothing is held any more.
    let (status, body) = json(
        decide(&app, &token, club_cal, &json!({"decision": "apply"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error_code(&body).as_str()), (409, "conflict"));
    // The work calendar was left alone by all this.
    assert_eq!(titles_of(&app, &token, work_cal).await.len(), 31);
}
