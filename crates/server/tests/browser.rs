//! The pages in headless Chromium, against the real binary and the Google
//! emulator: the whole story of a user (log in, connect through the consent
//! page, see the Dashboard fill and change live, switch a calendar off, sync,
//! disconnect), denied consent, and a dead refresh token leading to
//! Reconnect. Also, without a browser: the forms work without JavaScript and
//! answer errors as pages, and the event stream carries only the caller's
//! changes.
//!
//! `CALSYNC_SCREENSHOTS=1` makes the story save docs/screenshots/*.png.
//! `cargo test -p calsync-server --test browser -- --ignored latency` runs
//! the live-dashboard latency benchmark (docs/BENCHMARKS.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/browser.rs"]
mod browser;
mod support;

use std::time::{Duration, Instant};

use browser::{available, google_app, save_screenshot, screenshots_wanted, Browser};
use calsync_emulator::samples::{ALICE, ALICE_PERSONAL, ALICE_WORK};
use calsync_emulator::Fault;
use calsync_store::BackendKind;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};
use serde_json::{json, Value};
use support::google::GoogleApp;
use support::{json, post_and_follow, TestApp};

on_both_backends!(
    the_whole_story_in_a_browser,
    denied_consent_shows_a_message,
    an_expired_refresh_token_shows_reconnect,
    outlook_connects_and_explains_how_to_revoke,
);

const NY: &str = "America/New_York";

fn ny() -> TimeZone {
    TimeZone::get(NY).unwrap()
}

/// The Dashboard's day heading for `day`, as a user in New York reads it.
fn heading(day: Date) -> String {
    let today = Zoned::now().with_time_zone(ny()).date();
    if day == today {
        "Today".to_owned()
    } else if day == today.tomorrow().unwrap() {
        "Tomorrow".to_owned()
    } else if day.year() == today.year() {
        day.strftime("%A %-d %B").to_string()
    } else {
        day.strftime("%A %-d %B %Y").to_string()
    }
}

/// `days` after today (New York) at `hour:minute` in `zone`, shown in New York.
fn at(days: i64, hour: i8, minute: i8, zone: &str) -> Zoned {
    let today = Zoned::now().with_time_zone(ny()).date();
    (today + days.days())
        .to_datetime(Time::new(hour, minute, 0, 0).unwrap())
        .to_zoned(TimeZone::get(zone).unwrap())
        .unwrap()
        .with_time_zone(ny())
}

/// What the Dashboard shows for the first event whose title starts with `title`.
async fn shown_event(b: &Browser, title: &str) -> Value {
    b.wait_js(
        &format!("the event {title:?} on the Dashboard"),
        "const li = [...document.querySelectorAll('#live li.event')]
            .find(li => li.querySelector('.title').firstChild.textContent.trim().startsWith(arguments[0]));
         if (!li) return null;
         const link = li.querySelector('a.title');
         return {
           when: li.querySelector('.when').innerText.trim(),
           day: li.closest('section.day').querySelector('h2').innerText.trim(),
           color: li.querySelector('svg.bar rect').getAttribute('fill'),
           swatch: li.querySelector('.calendar svg circle').getAttribute('fill'),
           calendar: li.querySelector('.calendar').innerText.trim(),
           provider: li.querySelector('.provider').innerText.trim(),
           href: link ? link.getAttribute('href') : null,
           calendar_id: li.dataset.calendarId,
         };",
        vec![json!(title)],
    )
    .await
}

/// Clicks "Connect Google Calendar" and answers the emulator's consent page.
async fn connect_google(b: &Browser, g: &GoogleApp, allow: bool) {
    b.goto(&g.app.url("/settings")).await;
    b.click("#connect-google").await;
    b.wait_for("#allow").await;
    assert!(
        b.url().await.starts_with(g.emulator.base_url()),
        "the consent page is the provider's"
    );
    b.click("#account-0").await;
    b.click(if allow { "#allow" } else { "#deny" }).await;
    b.wait_js(
        "the way back to Settings",
        "return location.pathname === '/settings'",
        vec![],
    )
    .await;
}

/// The caller's calendars by name: (id, colour).
async fn calendars(g: &GoogleApp, token: &str) -> std::collections::HashMap<String, (i64, String)> {
    let (_, list) = json(
        g.app
            .get("/api/calendar/calendars/", token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                (
                    c["id"].as_i64().unwrap(),
                    c["color"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect()
}

async fn start_sync(g: &GoogleApp, token: &str) {
    let response = g
        .app
        .post("/api/calendar/sync/", token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
}

fn timed(start: &Zoned, minutes: i64) -> (Value, Value) {
    let end = start.checked_add(minutes.minutes()).unwrap();
    (
        json!({"dateTime": start.timestamp().to_string(), "timeZone": NY}),
        json!({"dateTime": end.timestamp().to_string(), "timeZone": NY}),
    )
}

async fn the_whole_story_in_a_browser(kind: BackendKind) {
    if !available() {
        return;
    }
    let Some(g) = google_app(kind).await else {
        return;
    };
    g.app.add_user("alice");
    let token = g.app.token("alice");
    let b = Browser::start().await;
    let t0 = Instant::now();
    let step = |what: &str| eprintln!("{:>6.1} s  {what}", t0.elapsed().as_secs_f64());

    // Log in: the empty Dashboard leads to Settings.
    step("Log in");
    b.log_in(&g.app.base, "alice").await;
    b.wait_text("#empty-state", "No calendars connected yet")
        .await;
    b.click("#empty-state a[href='/settings']").await;
    b.wait_text("h2#integration-title", "Calendar Integration")
        .await;

    // The time zone, set through its form.
    step("Time zone");
    b.fill("#timezone-input", NY).await;
    b.click("#timezone button[type=submit]").await;
    b.wait_text("#flash", "Times are now shown in America/New_York")
        .await;

    // Connect Google through the consent page; back on Settings, the
    step("Connect Google through the consent page");
    // connection and its calendars appear when the first sync is done.
    connect_google(&b, &g, true).await;
    b.wait_text("#flash", "Google Calendar connected").await;
    b.wait_text(".connection[data-provider=google] h3", ALICE)
        .await;
    b.wait_text(".connection .status.ok", "Synced").await;
    for name in ["Work", "Personal", "Holidays in United States"] {
        b.wait_text(".connection .calendars", name).await;
    }
    let cals = calendars(&g, &token).await;
    let (work_id, work_color) = cals["Work"].clone();
    let (personal_id, _) = cals["Personal"].clone();

    // The Dashboard: the emulator's events, on the right days, at the right
    step("The Dashboard");
    // times (New York), in their calendar's colour, with a link to Google.
    b.click("nav a[href='/']").await;
    b.wait_for("#live .day").await;
    let berlin = shown_event(&b, "Call with Berlin office").await;
    let start = at(3, 10, 0, "Europe/Berlin");
    let end = at(3, 11, 0, "Europe/Berlin");
    assert_eq!(
        berlin["when"],
        format!("{} – {}", start.strftime("%H:%M"), end.strftime("%H:%M")),
        "10:00 in Berlin, shown in New York"
    );
    assert_eq!(berlin["day"], heading(start.date()));
    assert_eq!(berlin["color"], work_color.as_str());
    assert_eq!(berlin["swatch"], work_color.as_str());
    assert_eq!(berlin["calendar"], "Work");
    assert_eq!(berlin["provider"], "Google Calendar");
    assert!(
        berlin["href"]
            .as_str()
            .is_some_and(|h| h.starts_with("http")),
        "a link to the event at the provider: {berlin}"
    );
    assert_eq!(berlin["calendar_id"], work_id.to_string());
    let tokyo = shown_event(&b, "Sync with Tokyo team").await;
    let tokyo_start = at(4, 9, 0, "Asia/Tokyo");
    assert_eq!(tokyo["day"], heading(tokyo_start.date()), "{tokyo}");
    assert!(tokyo["when"]
        .as_str()
        .unwrap()
        .starts_with(&tokyo_start.strftime("%H:%M").to_string()));
    let offsite = shown_event(&b, "Team offsite").await;
    assert!(
        offsite["when"].as_str().unwrap().starts_with("All day")
            && offsite["when"].as_str().unwrap().contains("3 days, until"),
        "a multi-day all-day span: {offsite}"
    );
    assert_eq!(offsite["day"], heading(at(12, 12, 0, NY).date()));
    let gym = shown_event(&b, "Gym").await;
    assert_eq!(gym["calendar_id"], personal_id.to_string());
    assert_eq!(b.text("#user-timezone").await, NY);

    // An event added at the provider appears on the open Dashboard, no reload.
    step("An event added at the provider appears live");
    b.wait_text("#live-status", "Live").await;
    b.js("window.__calsyncMarker = 42; return true", vec![])
        .await;
    let soon = at(2, 15, 0, NY);
    let (s, e) = timed(&soon, 45);
    g.emulator
        .insert_event(
            ALICE,
            ALICE_WORK,
            json!({"summary": "Live design review", "location": "Room 4", "start": s, "end": e}),
        )
        .unwrap();
    start_sync(&g, &token).await;
    let live = shown_event(&b, "Live design review").await;
    assert_eq!(live["day"], heading(soon.date()));
    assert!(live["when"].as_str().unwrap().starts_with("15:00 – 15:45"));
    assert_eq!(
        b.js("return window.__calsyncMarker", vec![]).await,
        json!(42),
        "the page must not have reloaded"
    );

    // Turning Personal off (a switch saved by fetch) removes its events.
    step("Turning Personal off");
    b.click("nav a[href='/settings']").await;
    b.click(&format!("#calendar-{personal_id}-enabled")).await;
    b.wait_text("#flash", "Personal is hidden").await;
    b.wait_for(&format!("#calendar-{personal_id}[data-enabled=false]"))
        .await;
    b.click("nav a[href='/']").await;
    b.wait_for("#live .day").await;
    let personal_left = b
        .js(
            "return document.querySelectorAll('#live li.event[data-calendar-id=\"' + arguments[0] + '\"]').length",
            vec![json!(personal_id.to_string())],
        )
        .await;
    assert_eq!(
        personal_left,
        json!(0),
        "no events of a calendar turned off"
    );
    b.wait_gone("#live", "Gym").await;
    // ... and back on, recoloured through the API twin of the colour picker.
    b.click("nav a[href='/settings']").await;
    b.click(&format!("#calendar-{personal_id}-enabled")).await;
    b.wait_text("#flash", "Personal is shown").await;

    // Sync now: the status moves through "syncing" and comes back with the
    step("Sync now");
    // run that brought the new event.
    g.emulator
        .inject_fault(
            serde_json::from_value::<Fault>(
                json!({"path_prefix": "/calendar/v3/", "count": 1, "delay_ms": 3000}),
            )
            .unwrap(),
        )
        .unwrap();
    let later = at(5, 8, 0, NY);
    let (s, e) = timed(&later, 30);
    g.emulator
        .insert_event(
            ALICE,
            ALICE_PERSONAL,
            json!({"summary": "Dentist", "start": s, "end": e}),
        )
        .unwrap();
    let connection = b
        .js(
            "return document.querySelector('.connection').id.replace('connection-', '')",
            vec![],
        )
        .await;
    let connection = connection.as_str().unwrap().to_owned();
    b.click(&format!("#sync-{connection}")).await;
    b.wait_text("#flash", "Sync started").await;
    b.wait_for(".connection .status.busy").await;
    b.wait_text(".connection .status.ok", "Synced just now")
        .await;
    b.wait_text(".connection .last-run", "1 change,").await;

    // One backend is enough for pictures; two would write the same files.
    if screenshots_wanted() && kind == BackendKind::Sqlite {
        step("Screenshots");
        screenshots(&b, &g).await;
    }

    // Disconnect, confirmed in a second step, removes everything.
    step("Disconnect");
    b.goto(&g.app.url("/settings")).await;
    b.click(&format!("#disconnect-{connection} summary")).await;
    b.click(&format!("#confirm-disconnect-{connection}")).await;
    b.wait_text("#flash", &format!("Disconnected {ALICE}"))
        .await;
    b.wait_for("#no-connections").await;
    b.click("nav a[href='/']").await;
    b.wait_text("#empty-state", "No calendars connected yet")
        .await;
    assert!(g.upcoming_titles(&token).await.is_empty());
}

/// Dashboard and Settings at desktop and phone width, light and dark.
async fn screenshots(b: &Browser, g: &GoogleApp) {
    for (page, path) in [("dashboard", "/"), ("settings", "/settings")] {
        for (size, width, height, mobile) in
            [("desktop", 1280, 900, false), ("phone", 390, 844, true)]
        {
            for dark in [false, true] {
                b.emulate(width, height, mobile, dark).await;
                b.goto(&g.app.url(path)).await;
                b.wait_text("#live-status", "Live").await;
                let scheme_ok = b
                    .js(
                        "return matchMedia('(prefers-color-scheme: dark)').matches",
                        vec![],
                    )
                    .await;
                assert_eq!(scheme_ok, json!(dark));
                let name = format!("{page}-{size}-{}", if dark { "dark" } else { "light" });
                // The Dashboard holds 30 days: its first screen tells the story.
                save_screenshot(&name, &b.png(page == "settings").await);
            }
        }
    }
    b.cdp("Emulation.clearDeviceMetricsOverride", json!({}))
        .await;
    b.emulate(1280, 900, false, false).await;
}

async fn denied_consent_shows_a_message(kind: BackendKind) {
    if !available() {
        return;
    }
    let Some(g) = google_app(kind).await else {
        return;
    };
    g.app.add_user("alice");
    let b = Browser::start().await;
    b.log_in(&g.app.base, "alice").await;
    connect_google(&b, &g, false).await;
    b.wait_text("#flash .notice.error", "Access was not granted")
        .await;
    b.wait_for("#no-connections").await;
    assert!(b
        .text("#connect-google")
        .await
        .contains("Connect Google Calendar"));
}

async fn an_expired_refresh_token_shows_reconnect(kind: BackendKind) {
    if !available() {
        return;
    }
    let Some(g) = google_app(kind).await else {
        return;
    };
    g.app.add_user("alice");
    let token = g.app.token("alice");
    let b = Browser::start().await;
    b.log_in(&g.app.base, "alice").await;
    connect_google(&b, &g, true).await;
    b.wait_text(".connection .status.ok", "Synced").await;
    b.wait_text("#live-status", "Live").await;

    // The refresh token dies (a Google app in Testing status after 7 days)
    // and the access token with it: the next sync cannot go on.
    g.emulator.expire_refresh_tokens(Some(ALICE)).unwrap();
    g.emulator.expire_access_tokens(Some(ALICE)).unwrap();
    start_sync(&g, &token).await;
    b.wait_text(".connection .status.bad", "Needs reconnect")
        .await;
    b.wait_text(".connection .reconnect", "Testing").await;
    b.click("nav a[href='/']").await;
    b.wait_text("#live .notice.error", "needs reconnecting")
        .await;

    // Reconnect goes through consent again and brings the connection back.
    b.click("#live .notice.error a").await;
    b.click(".connection .reconnect a.button").await;
    b.wait_for("#allow").await;
    b.click("#account-0").await;
    b.click("#allow").await;
    b.wait_text("#flash", "Google Calendar connected").await;
    b.wait_text(".connection .status.ok", "Synced").await;
    let connections = g.wait_for_sync(&token).await;
    assert_eq!(
        connections.as_array().unwrap().len(),
        1,
        "the same connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_reconnects_after_the_stream_drops() {
    if !available() {
        return;
    }
    let Some(mut g) = google_app(BackendKind::Sqlite).await else {
        return;
    };
    g.app.add_user("alice");
    let token = g.app.token("alice");
    let b = Browser::start().await;
    b.log_in(&g.app.base, "alice").await;
    connect_google(&b, &g, true).await;
    b.wait_text(".connection .status.ok", "Synced").await;
    b.goto(&g.app.url("/")).await;
    b.wait_text("#live-status", "Live").await;
    b.js("window.__calsyncMarker = 7; return true", vec![])
        .await;

    // The server goes away (a crash, a deploy): the page says so ...
    g.app.kill();
    b.wait_text("#live-status", "Offline").await;
    // ... a change happens meanwhile, and the server comes back.
    let when = at(3, 16, 0, NY);
    let (s, e) = timed(&when, 30);
    g.emulator
        .insert_event(
            ALICE,
            ALICE_WORK,
            json!({"summary": "Made while offline", "start": s, "end": e}),
        )
        .unwrap();
    g.restart();
    start_sync(&g, &token).await;
    g.wait_for_sync(&token).await;
    // The stream reconnects by itself and the page catches up, no reload.
    b.wait_text("#live-status", "Live").await;
    shown_event(&b, "Made while offline").await;
    assert_eq!(
        b.js("return window.__calsyncMarker", vec![]).await,
        json!(7)
    );
}

async fn outlook_connects_and_explains_how_to_revoke(kind: BackendKind) {
    if !available() {
        return;
    }
    let Some(g) = google_app(kind).await else {
        return;
    };
    g.app.add_user("alice");
    let b = Browser::start().await;
    b.log_in(&g.app.base, "alice").await;
    b.goto(&g.app.url("/settings")).await;
    b.click("#connect-microsoft").await;
    b.wait_for("#allow").await;
    assert!(b.url().await.starts_with(g.emulator.base_url()));
    b.click("#account-0").await;
    b.click("#allow").await;
    b.wait_text("#flash", "Outlook connected").await;
    b.wait_text(".connection[data-provider=microsoft] .status.ok", "Synced")
        .await;
    let id = b
        .js(
            "return document.querySelector('.connection[data-provider=microsoft]').id.replace('connection-', '')",
            vec![],
        )
        .await;
    let id = id.as_str().unwrap().to_owned();
    b.click("nav a[href='/']").await;
    b.wait_text("#live li.event .provider", "Outlook").await;

    // Microsoft cannot revoke a grant for calsync: the page says where to.
    b.click("nav a[href='/settings']").await;
    b.click(&format!("#disconnect-{id} summary")).await;
    b.wait_text(&format!("#disconnect-{id}"), "myapplications.microsoft.com")
        .await;
    b.click(&format!("#confirm-disconnect-{id}")).await;
    b.wait_text("#flash", "visit myapplications.microsoft.com")
        .await;
    b.wait_for("#no-connections").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_sync_shows_its_error_and_recovers() {
    if !available() {
        return;
    }
    let Some(g) = google_app(BackendKind::Sqlite).await else {
        return;
    };
    g.app.add_user("alice");
    let b = Browser::start().await;
    b.log_in(&g.app.base, "alice").await;
    connect_google(&b, &g, true).await;
    b.wait_text(".connection .status.ok", "Synced").await;
    b.wait_text("#live-status", "Live").await;

    // The provider answers every calendar request with an error.
    let fault = g
        .emulator
        .inject_fault(
            serde_json::from_value::<Fault>(
                json!({"path_prefix": "/calendar/v3/", "count": 1000, "status": 400, "reason": "badRequest"}),
            )
            .unwrap(),
        )
        .unwrap();
    let id = b
        .js(
            "return document.querySelector('.connection').id.replace('connection-', '')",
            vec![],
        )
        .await;
    let id = id.as_str().unwrap().to_owned();
    b.click(&format!("#sync-{id}")).await;
    let status = b.wait_text(".connection .status.bad", "Error:").await;
    assert!(
        status.len() > "Error: ".len(),
        "the error carries its message: {status}"
    );
    b.wait_text(".connection .last-run", "Last good sync").await;
    // The events of the last good sync stay on the Dashboard.
    b.click("nav a[href='/']").await;
    shown_event(&b, "Call with Berlin office").await;

    // Once the provider answers again, Sync now brings the status back.
    let _ = g
        .app
        .http
        .delete(format!("{}/_emulator/faults", g.emulator.base_url()))
        .send()
        .await
        .unwrap();
    let _ = fault;
    b.click("nav a[href='/settings']").await;
    b.click(&format!("#sync-{id}")).await;
    b.wait_text(".connection .status.ok", "Synced just now")
        .await;
}

// ---- Without a browser -------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_work_without_javascript_and_answer_errors_as_pages() {
    let Some(app) = TestApp::start(BackendKind::Sqlite).await else {
        return;
    };
    app.add_user("alice");
    let (cookie, csrf) = app.login("alice").await;
    let origin = "http://localhost:8000";

    let settings = app
        .http
        .get(app.url("/settings"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let csp = settings.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'") && csp.contains("style-src 'self'"));
    let html = settings.text().await.unwrap();
    assert!(html.contains("Calendar Integration") && html.contains("name=\"csrf_token\""));
    assert!(
        !html.contains("id=\"connect-google\"")
            && html.contains("Google Calendar is not configured"),
        "no button for a provider the server is not configured for"
    );
    assert!(
        html.contains("Connect Apple iCloud")
            && html.contains("value=\"https://caldav.icloud.com\"")
            && html.contains("Subscribe to a calendar feed (ICS)"),
        "CalDAV and ICS need no configuration"
    );
    assert!(
        !html.contains("<script>") && !html.contains(" style="),
        "no inline script or style: the CSP forbids them"
    );

    // Connecting a provider the server lacks says so on Settings, not in JSON.
    let start = app
        .http
        .get(app.url("/settings/connect/google"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(start.headers()["location"], "/settings");
    let flash = start.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = app
        .http
        .get(app.url("/settings"))
        .header("cookie", format!("{cookie}; {flash}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Google Calendar is not configured on this server"),
        "{page}"
    );
    let ended = app
        .http
        .get(app.url("/settings/connect/google"))
        .send()
        .await
        .unwrap();
    assert_eq!(ended.headers()["location"], "/login?next=/settings");

    // A form post answers 303 with a flash message shown once by the next page.
    let post = |path: &'static str, form: Vec<(&'static str, String)>| {
        app.http
            .post(app.url(path))
            .header("cookie", &cookie)
            .header("origin", origin)
            .form(&form)
            .send()
    };
    let follow = |response: reqwest::Response| {
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let flash = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
            .find(|c| c.starts_with("calsync_flash="))
            .unwrap_or_default();
        let cookie = format!("{cookie}; {flash}");
        let http = app.http.clone();
        let url = app.url(location.split('#').next().unwrap());
        async move {
            http.get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let bad = post(
        "/settings/timezone",
        vec![
            ("csrf_token", csrf.clone()),
            ("timezone", "Mars/Olympus_Mons".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(bad.status(), 303);
    let page = follow(bad).await;
    assert!(page.contains("is not a time zone name"), "{page}");

    let good = post(
        "/settings/timezone",
        vec![
            ("csrf_token", csrf.clone()),
            ("timezone", "europe/berlin".into()),
        ],
    )
    .await
    .unwrap();
    let page = follow(good).await;
    assert!(page.contains("Times are now shown in Europe/Berlin"));
    assert!(page.contains("value=\"Europe/Berlin\""));

    let missing = post(
        "/settings/connections/999999/sync",
        vec![("csrf_token", csrf.clone())],
    )
    .await
    .unwrap();
    assert!(follow(missing).await.contains("Connection not found"));

    // A forged form (wrong token) is refused with a page, not JSON.
    let forged = post(
        "/settings/timezone",
        vec![
            ("csrf_token", "not-the-token".into()),
            ("timezone", "UTC".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(forged.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(forged
        .text()
        .await
        .unwrap()
        .contains("could not be accepted"));
    let other_site = app
        .http
        .post(app.url("/settings/timezone"))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .form(&[("csrf_token", csrf.as_str()), ("timezone", "UTC")])
        .send()
        .await
        .unwrap();
    assert_eq!(other_site.status(), 403);
    assert!(other_site
        .text()
        .await
        .unwrap()
        .contains("<h1>Something went wrong</h1>"));

    // A malformed path is a page too; not logged in leads to the login form.
    let malformed = post(
        "/settings/calendars/not-a-number",
        vec![("csrf_token", csrf.clone())],
    )
    .await
    .unwrap();
    assert_eq!(malformed.status(), 400);
    assert!(malformed
        .text()
        .await
        .unwrap()
        .contains("Something went wrong"));
    let anonymous = app
        .http
        .post(app.url("/settings/timezone"))
        .form(&[("csrf_token", "x"), ("timezone", "UTC")])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.headers()["location"], "/login");

    // The assets are embedded, typed and cacheable.
    for (path, kind) in [
        ("/static/app.css", "text/css"),
        ("/static/live.js", "text/javascript"),
    ] {
        let asset = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(asset.status(), 200);
        assert!(asset.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with(kind));
        assert!(asset.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_and_caldav_accounts_connect_through_the_settings_forms() {
    let Some(app) = TestApp::start_with(
        BackendKind::Sqlite,
        &[
            ("CALSYNC_ALLOW_PRIVATE_ADDRESSES", "true"),
            ("CALSYNC_SYNC_INTERVAL", "1h"),
        ],
    )
    .await
    else {
        return;
    };
    app.add_user("alice");
    let token = app.token("alice");
    let (cookie, csrf) = app.login("alice").await;

    // A feed served by the test.
    let start =
        Timestamp::now().round(jiff::Unit::Hour).unwrap() + jiff::SignedDuration::from_hours(26);
    let end = start + jiff::SignedDuration::from_hours(1);
    let ics = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calsync tests//EN\r\nX-WR-CALNAME:Club feed\r\n\
         BEGIN:VEVENT\r\nUID:match@club\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{}\r\nDTEND:{}\r\n\
         SUMMARY:Home match\r\nLOCATION:Stadium\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        start.strftime("%Y%m%dT%H%M%SZ"),
        end.strftime("%Y%m%dT%H%M%SZ")
    );
    let feed = axum::Router::new().route(
        "/club.ics",
        axum::routing::get(move || {
            let ics = ics.clone();
            async move { ([("content-type", "text/calendar")], ics) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let feed_url = format!("http://{}/club.ics", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, feed).await });

    let bad = post_and_follow(
        &app,
        &cookie,
        "/settings/ics",
        &[
            ("csrf_token", &csrf),
            ("url", "ftp://example.com/x.ics"),
            ("name", ""),
        ],
    )
    .await;
    assert!(bad.contains("notice error"), "a message, not JSON: {bad}");
    assert!(bad.contains("id=\"no-connections\""));

    let page = post_and_follow(
        &app,
        &cookie,
        "/settings/ics",
        &[("csrf_token", &csrf), ("url", &feed_url), ("name", "")],
    )
    .await;
    assert!(page.contains("Feed subscribed"), "{page}");
    assert!(page.contains("ICS feed") && page.contains("Club feed"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, connections) = json(
            app.get("/api/calendar/connections/", &token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        if connections[0]["status"] == "ok" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the feed did not sync: {connections}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
    assert!(dashboard.contains("Home match") && dashboard.contains("Stadium"));
    assert!(dashboard.contains("ICS feed"));

    // Every Settings form works without JavaScript: switch + colour, Sync
    // now, Disconnect.
    let (_, list) = json(
        app.get("/api/calendar/calendars/", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let calendar = list[0]["id"].as_i64().unwrap();
    let connection = list[0]["connection_id"].as_i64().unwrap();
    let page = post_and_follow(
        &app,
        &cookie,
        &format!("/settings/calendars/{calendar}"),
        &[("csrf_token", &csrf), ("color", "#1A2B3C")],
    )
    .await;
    assert!(
        page.contains("Club feed is hidden on the Dashboard."),
        "{page}"
    );
    assert!(page.contains("value=\"#1a2b3c\""), "the colour, normalised");
    let (_, list) = json(
        app.get("/api/calendar/calendars/", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (list[0]["enabled"].clone(), list[0]["color"].clone()),
        (json!(false), json!("#1a2b3c"))
    );
    let bad_colour = post_and_follow(
        &app,
        &cookie,
        &format!("/settings/calendars/{calendar}"),
        &[("csrf_token", &csrf), ("enabled", "on"), ("color", "red")],
    )
    .await;
    assert!(
        bad_colour.contains("Color must look like #1a73e8."),
        "{bad_colour}"
    );
    let page = post_and_follow(
        &app,
        &cookie,
        &format!("/settings/connections/{connection}/sync"),
        &[("csrf_token", &csrf)],
    )
    .await;
    assert!(page.contains("Sync started"));
    let page = post_and_follow(
        &app,
        &cookie,
        &format!("/settings/connections/{connection}/disconnect"),
        &[("csrf_token", &csrf)],
    )
    .await;
    assert!(page.contains("Disconnected Club feed"), "{page}");
    assert!(page.contains("id=\"no-connections\""));

    // A CalDAV server that is not there: the form says so, nothing is stored.
    let page = post_and_follow(
        &app,
        &cookie,
        "/settings/caldav",
        &[
            ("csrf_token", &csrf),
            ("server_url", "http://127.0.0.1:9/dav/"),
            ("username", "alice"),
            ("password", "app-password"),
        ],
    )
    .await;
    assert!(
        page.contains("Could not connect to that CalDAV server"),
        "{page}"
    );
    assert!(!page.contains("data-provider=\"caldav\""));
    let empty = post_and_follow(
        &app,
        &cookie,
        "/settings/caldav",
        &[
            ("csrf_token", &csrf),
            ("server_url", "https://caldav.icloud.com"),
            ("username", "a@b.c"),
            ("password", ""),
        ],
    )
    .await;
    assert!(empty.contains("Fill in the server URL, the username and the password."));
}

/// Reads Server-Sent Events until one named `name` arrives; returns its data.
async fn next_event(stream: &mut reqwest::Response, buffer: &mut String, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let event = block
                .lines()
                .find_map(|l| l.strip_prefix("event:"))
                .map(str::trim);
            let data = block
                .lines()
                .find_map(|l| l.strip_prefix("data:"))
                .map(str::trim);
            if event == Some(name) {
                return serde_json::from_str(data.unwrap_or("null")).unwrap();
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {name} event within 20 s"))
            .unwrap()
            .expect("the stream ended");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_carries_only_the_callers_changes() {
    let Some(g) = GoogleApp::start(BackendKind::Sqlite).await else {
        return;
    };
    g.app.add_user("alice");
    let alice = g.app.token("alice");
    let bob = g.app.user_with_token("bob");
    let (cookie, _) = g.app.login("alice").await;
    g.connect(&cookie, ALICE).await;
    g.wait_for_sync(&alice).await;
    let calendar = g
        .app
        .get("/api/calendar/calendars/", &alice)
        .send()
        .await
        .unwrap();
    let (_, calendar) = json(calendar).await;
    let calendar_id = calendar[0]["id"].as_i64().unwrap();
    let connection_id = calendar[0]["connection_id"].as_i64().unwrap();

    let mut bobs = g
        .app
        .get("/api/calendar/events/stream/", &bob)
        .send()
        .await
        .unwrap();
    let mut alices = g
        .app
        .get("/api/calendar/events/stream/", &alice)
        .send()
        .await
        .unwrap();
    let (mut bob_buf, mut alice_buf) = (String::new(), String::new());
    next_event(&mut bobs, &mut bob_buf, "ready").await;
    next_event(&mut alices, &mut alice_buf, "ready").await;

    // Alice's change first, then Bob's: Bob's stream must see only his own.
    let patched = g
        .app
        .http
        .patch(
            g.app
                .url(&format!("/api/calendar/calendars/{calendar_id}/")),
        )
        .bearer_auth(&alice)
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let bobs_calendar = g
        .app
        .post("/api/calendar/sync/", &bob)
        .json(&json!({"connection_id": connection_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(bobs_calendar.status(), 404, "not Bob's connection");
    let alice_change = next_event(&mut alices, &mut alice_buf, "change").await;
    assert_eq!(
        alice_change,
        json!({"kind": "events", "connection_ids": [connection_id]})
    );
    // Bob has no connections: his own change is one of his time zone.
    let (bob_cookie, bob_csrf) = g.app.login("bob").await;
    let tz = g
        .app
        .http
        .post(g.app.url("/settings/timezone"))
        .header("cookie", &bob_cookie)
        .header("origin", "http://localhost:8000")
        .form(&[
            ("csrf_token", bob_csrf.as_str()),
            ("timezone", "Europe/Paris"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(tz.status(), 303);
    let bob_change = next_event(&mut bobs, &mut bob_buf, "change").await;
    assert_eq!(
        bob_change,
        json!({"kind": "events", "connection_ids": []}),
        "Bob's first change is his own, not Alice's"
    );
}

// ---- Benchmark -----------------------------------------------------------

/// Live dashboard latency: from a change in the emulator (plus a manual sync
/// through the API) to the event visible on an open Dashboard. Not a test:
/// run it with `-- --ignored latency` and record the figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run with -- --ignored latency"]
async fn latency_of_the_live_dashboard() {
    assert!(
        available(),
        "the benchmark needs chromium + chromium-driver"
    );
    let runs: usize = std::env::var("CALSYNC_LATENCY_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let g = google_app(BackendKind::Sqlite).await.expect("SQLite");
    g.app.add_user("alice");
    let token = g.app.token("alice");
    let b = Browser::start().await;
    b.log_in(&g.app.base, "alice").await;
    connect_google(&b, &g, true).await;
    b.wait_text(".connection .status.ok", "Synced").await;
    b.goto(&g.app.url("/")).await;
    b.wait_text("#live-status", "Live").await;
    b.client
        .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
            Some(Duration::from_secs(30)),
            Some(Duration::from_secs(30)),
            Some(Duration::from_secs(30)),
        ))
        .await
        .unwrap();

    let mut samples = Vec::with_capacity(runs);
    for n in 0..runs {
        let title = format!("Latency probe {n}");
        let start = at(1 + (n as i64 % 20), 7, 0, NY);
        let (s, e) = timed(&start, 15);
        let t0 = Instant::now();
        g.emulator
            .insert_event(
                ALICE,
                ALICE_WORK,
                json!({"summary": title, "start": s, "end": e}),
            )
            .unwrap();
        start_sync(&g, &token).await;
        // Resolves the moment the title is in the page (MutationObserver).
        b.client
            .execute_async(
                "const [title, done] = arguments;
                 const seen = () => [...document.querySelectorAll('#live .title')]
                     .some(t => t.firstChild.textContent.trim() === title);
                 if (seen()) return done(true);
                 const watch = new MutationObserver(() => { if (seen()) { watch.disconnect(); done(true); } });
                 watch.observe(document.body, {childList: true, subtree: true});",
                vec![json!(title)],
            )
            .await
            .unwrap();
        samples.push(t0.elapsed());
        g.wait_for_sync(&token).await;
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let pick = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "live dashboard latency over {runs} runs: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms, min {:.0} ms",
        ms(pick(0.5)),
        ms(pick(0.95)),
        ms(*samples.last().unwrap()),
        ms(samples[0]),
    );
}
