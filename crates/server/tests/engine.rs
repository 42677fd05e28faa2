//! The sync engine on several `calsync serve` instances sharing one
//! PostgreSQL database, against the Google emulator over real HTTP:
//!
//! - `lease_fencing_two_instances_never_overlap_rounds_of_one_connection`:
//!   two instances, a slowed provider, a storm of "Sync now" on both while
//!   events change. The emulator's request log must show that no two rounds
//!   of one connection ever ran at once, and every user's events must equal
//!   the emulator's exactly.
//! - `chaos_three_instances_killed_at_random_converge`: three instances and
//!   200 connections; every few seconds one instance is SIGKILLed and
//!   restarted while events change and users press "Sync now". Once the
//!   changes stop, every connection must converge on the emulator's events
//!   exactly (a killed instance's leases hold its connections until they
//!   run out; the settle deadline allows for that).
//!
//! PostgreSQL only (several instances on one SQLite file is not a supported
//! setup), and a missing PostgreSQL fails these tests instead of skipping
//! them. Random choices come from a seeded xorshift generator whose seed is
//! printed; `CALSYNC_ENGINE_SEED=<seed>` repeats the choices (not the
//! timing). `CALSYNC_CHAOS_SECS` lengthens the chaos phase.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use calsync_emulator::{Emulator, EmulatorConfig, EmulatorHandle, Fault, LogEntry, OAuthClient};
use calsync_store::BackendKind;
use futures_util::StreamExt as _;
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};
use support::google::{CLIENT_ID, CLIENT_SECRET, REDIRECT_URI};
use support::{json, TestApp};

const NEED_POSTGRES: &str = "these tests need PostgreSQL (CALSYNC_TEST_POSTGRES_URL, default \
     postgres://127.0.0.1:5432/test): several instances share one database, so they fail \
     rather than skip without it";

// ------------------------------------------------------------------ seeded randomness

/// xorshift64*: enough randomness for choosing changes, no dependency.
struct Rng(u64);

impl Rng {
    /// From `CALSYNC_ENGINE_SEED`, else the clock; prints the seed.
    fn seeded(test: &str) -> Self {
        let seed = std::env::var("CALSYNC_ENGINE_SEED")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or_else(|| {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos();
                (nanos as u64) ^ u64::from(std::process::id())
            });
        eprintln!("{test}: seed {seed} (CALSYNC_ENGINE_SEED={seed} repeats the random choices)");
        Self::from_seed(seed)
    }

    fn from_seed(seed: u64) -> Self {
        // splitmix64 once, so that small or zero seeds start well.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Self(z.max(1))
    }

    /// An independent generator for another task.
    fn fork(&mut self) -> Self {
        Self::from_seed(self.next())
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn between_ms(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.below(high - low + 1))
    }
}

// ------------------------------------------------------------------ instances

/// The emulator and the instances on one database.
struct Cluster {
    emulator: EmulatorHandle,
    apps: Vec<TestApp>,
}

/// Starts the emulator (no sample data, consent approved at once) and
/// `instances` `calsync serve` processes on one fresh PostgreSQL database.
async fn start_cluster(instances: usize, extra: &[(&str, &str)]) -> Cluster {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = EmulatorConfig {
        clients: vec![OAuthClient::new(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI])],
        auto_approve: true,
        sample_data: false,
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(listener, config).unwrap();
    let base = emulator.base_url().to_owned();
    let mut env: Vec<(String, String)> = vec![
        ("CALSYNC_GOOGLE_CLIENT_ID".into(), CLIENT_ID.into()),
        ("CALSYNC_GOOGLE_CLIENT_SECRET".into(), CLIENT_SECRET.into()),
        (
            "CALSYNC_GOOGLE_AUTH_URL".into(),
            format!("{base}/o/oauth2/v2/auth"),
        ),
        ("CALSYNC_GOOGLE_TOKEN_URL".into(), format!("{base}/token")),
        ("CALSYNC_GOOGLE_API_BASE".into(), base.clone()),
        ("CALSYNC_GOOGLE_REVOKE_URL".into(), format!("{base}/revoke")),
    ];
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let first = TestApp::start_with(BackendKind::Postgres, &env)
        .await
        .expect(NEED_POSTGRES);
    let mut apps = vec![first];
    for _ in 1..instances {
        let next = tokio::task::block_in_place(|| apps[0].restarted());
        apps.push(next);
    }
    Cluster { emulator, apps }
}

/// A calsync user, their API token and their Google accounts.
struct User {
    name: String,
    token: String,
    accounts: Vec<String>,
}

/// Creates the users (`calsync user add` + `token create`, a few at once).
fn add_users(app: &TestApp, users: &mut [User]) {
    tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let chunk = users.len().div_ceil(4).max(1);
            for part in users.chunks_mut(chunk) {
                scope.spawn(move || {
                    for user in part {
                        user.token = app.user_with_token(&user.name);
                    }
                });
            }
        });
    });
}

/// "Connect Google Calendar" as the browser does, choosing `account`.
async fn connect_google(app: &TestApp, cookie: &str, account: &str) {
    let url = app.authorization_url(cookie, "google").await;
    let consent = app
        .http
        .get(format!("{url}&login_hint={account}"))
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), 302, "the emulator approves at once");
    let back = consent.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        app.follow_callback(cookie, &back).await,
        "/settings?connected=google"
    );
}

/// Logs every user in and connects each of their accounts (8 users at once).
async fn connect_users(app: &TestApp, users: &[User]) {
    futures_util::stream::iter(users)
        .for_each_concurrent(8, |user| async move {
            let (cookie, _) = app.login(&user.name).await;
            for account in &user.accounts {
                connect_google(app, &cookie, account).await;
            }
        })
        .await;
}

/// How the API answered a "Sync now".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pressed {
    /// 202: the connections are due now (or, during a round, once more after it).
    Accepted,
    /// 429: the per-user quota on "Sync now" said not yet; the engine saw nothing.
    Limited,
}

/// "Sync now" for all of a user's connections on the instance at `base`.
async fn press_sync_now(
    http: &reqwest::Client,
    base: &str,
    token: &str,
) -> Result<Pressed, String> {
    let response = http
        .post(format!("{base}/api/calendar/sync/"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| format!("POST {base}/api/calendar/sync/: {e}"))?;
    match response.status().as_u16() {
        202 => Ok(Pressed::Accepted),
        429 => Ok(Pressed::Limited),
        status => Err(format!(
            "POST {base}/api/calendar/sync/: {status} {}",
            response.text().await.unwrap_or_default()
        )),
    }
}

/// Presses "Sync now" until it is accepted (the quota refills within seconds).
async fn press_until_accepted(http: &reqwest::Client, bases: &[String], token: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for attempt in 0.. {
        let base = &bases[attempt % bases.len()];
        match press_sync_now(http, base, token).await {
            Ok(Pressed::Accepted) => return,
            Ok(Pressed::Limited) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => panic!("Sync now was not accepted: {other:?}"),
        }
    }
}

/// Waits until every connection of every user has finished a successful
/// round that started at or after `after` and is `ok` now: a round that
/// started after the last change has seen all of it. Returns how long it
/// took, or the connections that did not get there.
async fn settle(
    http: &reqwest::Client,
    base: impl Fn() -> String,
    users: &[User],
    after: Timestamp,
    deadline: Duration,
) -> Result<Duration, String> {
    let began = Instant::now();
    let after_secs = after.as_second();
    loop {
        let mut waiting = Vec::new();
        for user in users {
            let listed = http
                .get(format!("{}/api/calendar/connections/", base()))
                .bearer_auth(&user.token)
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            let connections = match listed {
                Ok(response) if response.status() == 200 => json(response).await.1,
                _ => {
                    waiting.push(format!("{}: connections unreadable", user.name));
                    continue;
                }
            };
            let connections = connections.as_array().unwrap();
            assert_eq!(
                connections.len(),
                user.accounts.len(),
                "{}: {connections:?}",
                user.name
            );
            for c in connections {
                let synced_after = c["recent_runs"].as_array().unwrap().iter().any(|run| {
                    run["outcome"] == "ok"
                        && run["started_at"]
                            .as_str()
                            .and_then(|t| t.parse::<Timestamp>().ok())
                            .is_some_and(|t| t.as_second() >= after_secs)
                });
                if c["status"] != "ok" || !synced_after {
                    waiting.push(format!("{}: {c}", user.name));
                }
            }
        }
        if waiting.is_empty() {
            return Ok(began.elapsed());
        }
        if began.elapsed() > deadline {
            return Err(format!(
                "{} connection(s) did not finish a round started after {after} within {deadline:?}:\n{}",
                waiting.len(),
                waiting.join("\n")
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

// ------------------------------------------------------------------ the emulator's world

/// A daily series the test made (`RRULE:FREQ=DAILY;COUNT=count`, in UTC).
struct Series {
    id: String,
    start: Timestamp,
    count: u32,
    /// Instances not yet moved or cancelled.
    untouched: Vec<u32>,
}

/// One emulator calendar and what the test put in it, to choose valid
/// changes. The truth is always read back from the emulator.
struct Cal {
    account: String,
    id: String,
    /// Event id prefix, unique per calendar (no `_`: that marks instances).
    prefix: String,
    singles: Vec<String>,
    series: Vec<Series>,
    deleted: usize,
    next: u32,
}

/// Removals per calendar stay far under the mass-removal guard.
const MAX_DELETES: usize = 5;
const MIN_SINGLES: usize = 8;
const SERIES_MAX_COUNT: u32 = 12;

/// Every calendar the test writes to, with a counter that makes each title unique.
struct World {
    cals: Vec<Cal>,
    /// Events start within 30 days after this.
    base: Timestamp,
    revision: u64,
    changes: BTreeMap<&'static str, u64>,
}

fn at(t: Timestamp) -> Value {
    json!({"dateTime": t.to_string(), "timeZone": "UTC"})
}

impl World {
    fn new() -> Self {
        // Whole hours, a day ahead: far from the edges of every window read.
        let now = Timestamp::now().as_second();
        let base = Timestamp::from_second(now - now % 3600 + 86_400).unwrap();
        Self {
            cals: Vec::new(),
            base,
            revision: 0,
            changes: BTreeMap::new(),
        }
    }

    fn title(&mut self, id: &str) -> String {
        self.revision += 1;
        format!("{id} r{}", self.revision)
    }

    /// A start on a quarter-hour grid within 30 days of `base`.
    fn some_start(&self, rng: &mut Rng) -> Timestamp {
        self.base + SignedDuration::from_mins(15 * rng.below(30 * 24 * 4) as i64)
    }

    /// Adds calendar `id` of `account` with `singles` events and, if asked, a daily series.
    fn add_calendar(
        &mut self,
        emulator: &EmulatorHandle,
        account: &str,
        id: &str,
        rng: &mut Rng,
        singles: usize,
        series: bool,
    ) {
        let prefix = format!("c{}", self.cals.len());
        self.cals.push(Cal {
            account: account.to_owned(),
            id: id.to_owned(),
            prefix,
            singles: Vec::new(),
            series: Vec::new(),
            deleted: 0,
            next: 0,
        });
        let ix = self.cals.len() - 1;
        for _ in 0..singles {
            self.insert_single(emulator, ix, rng);
        }
        if series {
            self.insert_series(emulator, ix, rng);
        }
    }

    fn next_id(&mut self, ix: usize) -> String {
        let cal = &mut self.cals[ix];
        cal.next += 1;
        format!("{}e{}", cal.prefix, cal.next)
    }

    fn insert_single(&mut self, emulator: &EmulatorHandle, ix: usize, rng: &mut Rng) {
        let id = self.next_id(ix);
        let start = self.some_start(rng);
        let minutes = [30, 45, 60, 90][rng.below(4) as usize];
        let title = self.title(&id);
        let cal = &mut self.cals[ix];
        emulator
            .insert_event(
                &cal.account,
                &cal.id,
                json!({
                    "id": id,
                    "summary": title,
                    "start": at(start),
                    "end": at(start + SignedDuration::from_mins(minutes)),
                }),
            )
            .unwrap();
        cal.singles.push(id);
    }

    fn insert_series(&mut self, emulator: &EmulatorHandle, ix: usize, rng: &mut Rng) {
        let id = self.next_id(ix);
        let start = self.base
            + SignedDuration::from_hours(24 * (1 + rng.below(15) as i64) + 8 + rng.below(8) as i64);
        let count = 8;
        let title = self.title(&id);
        let cal = &mut self.cals[ix];
        emulator
            .insert_event(
                &cal.account,
                &cal.id,
                json!({
                    "id": id,
                    "summary": title,
                    "start": at(start),
                    "end": at(start + SignedDuration::from_mins(45)),
                    "recurrence": [format!("RRULE:FREQ=DAILY;COUNT={count}")],
                }),
            )
            .unwrap();
        cal.series.push(Series {
            id,
            start,
            count,
            untouched: (0..count).collect(),
        });
    }

    /// One random change to calendar `ix`, as its owner would make it:
    /// insert, edit (title, sometimes time), delete, or a series edit (the
    /// whole series' title, its length, one instance moved, one cancelled).
    fn change(&mut self, emulator: &EmulatorHandle, ix: usize, rng: &mut Rng) {
        let roll = rng.below(100);
        let has_series = !self.cals[ix].series.is_empty();
        let kind = match roll {
            0..=29 => "insert",
            30..=54 => "edit",
            55..=69 => "delete",
            70..=79 if has_series => "series title",
            80..=84 if has_series => "series longer",
            85..=92 if has_series => "instance moved",
            93..=99 if has_series => "instance cancelled",
            _ => "edit",
        };
        let kind = match kind {
            "delete"
                if self.cals[ix].deleted >= MAX_DELETES
                    || self.cals[ix].singles.len() <= MIN_SINGLES =>
            {
                "insert"
            }
            "series longer"
                if self.cals[ix]
                    .series
                    .iter()
                    .all(|s| s.count >= SERIES_MAX_COUNT) =>
            {
                "series title"
            }
            "instance moved" | "instance cancelled"
                if self.cals[ix].series.iter().all(|s| s.untouched.is_empty()) =>
            {
                "series title"
            }
            other => other,
        };
        match kind {
            "insert" => self.insert_single(emulator, ix, rng),
            "edit" => {
                let pick = rng.below(self.cals[ix].singles.len() as u64) as usize;
                let id = self.cals[ix].singles[pick].clone();
                let mut patch = json!({"summary": self.title(&id)});
                if rng.below(2) == 0 {
                    let start = self.some_start(rng);
                    patch["start"] = at(start);
                    patch["end"] = at(start + SignedDuration::from_mins(30));
                }
                let cal = &self.cals[ix];
                emulator
                    .patch_event(&cal.account, &cal.id, &id, patch)
                    .unwrap();
            }
            "delete" => {
                let cal = &mut self.cals[ix];
                let pick = rng.below(cal.singles.len() as u64) as usize;
                let id = cal.singles.swap_remove(pick);
                emulator.delete_event(&cal.account, &cal.id, &id).unwrap();
                cal.deleted += 1;
            }
            "series title" => {
                let pick = rng.below(self.cals[ix].series.len() as u64) as usize;
                let id = self.cals[ix].series[pick].id.clone();
                let title = self.title(&id);
                let cal = &self.cals[ix];
                emulator
                    .patch_event(&cal.account, &cal.id, &id, json!({"summary": title}))
                    .unwrap();
            }
            "series longer" => {
                let cal = &mut self.cals[ix];
                let series = cal
                    .series
                    .iter_mut()
                    .find(|s| s.count < SERIES_MAX_COUNT)
                    .unwrap();
                let longer = (series.count + 1 + rng.below(2) as u32).min(SERIES_MAX_COUNT);
                emulator
                    .patch_event(
                        &cal.account,
                        &cal.id,
                        &series.id,
                        json!({"recurrence": [format!("RRULE:FREQ=DAILY;COUNT={longer}")]}),
                    )
                    .unwrap();
                series.untouched.extend(series.count..longer);
                series.count = longer;
            }
            _ => {
                let cal = &mut self.cals[ix];
                let series = cal
                    .series
                    .iter_mut()
                    .find(|s| !s.untouched.is_empty())
                    .unwrap();
                let pick = rng.below(series.untouched.len() as u64) as usize;
                let n = series.untouched.swap_remove(pick);
                let original = series.start + SignedDuration::from_hours(24 * i64::from(n));
                if kind == "instance moved" {
                    let moved = original + SignedDuration::from_mins(60 + 15 * rng.below(8) as i64);
                    self.revision += 1;
                    let title = format!("{} moved r{}", series.id, self.revision);
                    emulator
                        .insert_event(
                            &cal.account,
                            &cal.id,
                            json!({
                                "recurringEventId": series.id,
                                "originalStartTime": at(original),
                                "summary": title,
                                "start": at(moved),
                                "end": at(moved + SignedDuration::from_mins(30)),
                            }),
                        )
                        .unwrap();
                } else {
                    let instance = format!("{}_{}", series.id, original.strftime("%Y%m%dT%H%M%SZ"));
                    emulator
                        .delete_event(&cal.account, &cal.id, &instance)
                        .unwrap();
                }
            }
        }
        *self.changes.entry(kind).or_default() += 1;
    }

    /// A change to a random calendar.
    fn change_any(&mut self, emulator: &EmulatorHandle, rng: &mut Rng) {
        let ix = rng.below(self.cals.len() as u64) as usize;
        self.change(emulator, ix, rng);
    }

    /// The emulator's truth for every account: each occurrence overlapping
    /// `[from, to)` of every calendar, expanded from the stored events
    /// (daily series with their moved and cancelled instances).
    fn truth(
        &self,
        emulator: &EmulatorHandle,
        from: Timestamp,
        to: Timestamp,
    ) -> BTreeMap<String, Vec<Occurrence>> {
        let mut truth: BTreeMap<String, Vec<Occurrence>> = BTreeMap::new();
        for cal in &self.cals {
            let stored = emulator.stored_events(&cal.account, &cal.id).unwrap();
            let occurrences = truth.entry(cal.account.clone()).or_default();
            occurrences.extend(
                expand_stored(&stored)
                    .into_iter()
                    .filter(|(_, start, end)| *start < to && *end > from),
            );
        }
        for occurrences in truth.values_mut() {
            occurrences.sort();
        }
        truth
    }
}

/// Title, start, end of one occurrence.
type Occurrence = (String, Timestamp, Timestamp);

fn instant(time: &Value) -> Timestamp {
    time["dateTime"]
        .as_str()
        .unwrap_or_else(|| panic!("not a timed value: {time}"))
        .parse()
        .unwrap()
}

fn occurrence(event: &Value) -> Occurrence {
    (
        event["summary"].as_str().unwrap().to_owned(),
        instant(&event["start"]),
        instant(&event["end"]),
    )
}

/// Expands what the emulator stores for one calendar. Only the shapes this
/// test writes are understood (timed events, `RRULE:FREQ=DAILY;COUNT=n`);
/// anything else fails loudly.
fn expand_stored(stored: &[Value]) -> Vec<Occurrence> {
    // master id -> original start -> the replacement (None: cancelled)
    let mut exceptions: BTreeMap<&str, BTreeMap<Timestamp, Option<Occurrence>>> = BTreeMap::new();
    for event in stored {
        if let Some(master) = event["recurringEventId"].as_str() {
            let replacement = (event["status"] != "cancelled").then(|| occurrence(event));
            exceptions
                .entry(master)
                .or_default()
                .insert(instant(&event["originalStartTime"]), replacement);
        }
    }
    let mut out = Vec::new();
    for event in stored {
        if event["recurringEventId"].is_string() || event["status"] == "cancelled" {
            continue;
        }
        let rules: Vec<&str> = event["recurrence"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if rules.is_empty() {
            out.push(occurrence(event));
            continue;
        }
        let count: i64 = match rules.as_slice() {
            [rule] => rule
                .strip_prefix("RRULE:FREQ=DAILY;COUNT=")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected rule {rule}")),
            other => panic!("unexpected recurrence {other:?}"),
        };
        let (title, start, end) = occurrence(event);
        let id = event["id"].as_str().unwrap();
        let moved = exceptions.get(id);
        for n in 0..count {
            let day = SignedDuration::from_hours(24 * n);
            match moved.and_then(|m| m.get(&(start + day))) {
                Some(Some(replacement)) => out.push(replacement.clone()),
                Some(None) => {}
                None => out.push((title.clone(), start + day, end + day)),
            }
        }
    }
    out
}

/// What calsync shows each of the user's accounts over `[from, to)`.
async fn calsync_view(
    http: &reqwest::Client,
    base: &str,
    user: &User,
    from: Timestamp,
    to: Timestamp,
) -> BTreeMap<String, Vec<Occurrence>> {
    let get = |path: String| {
        let request = http.get(format!("{base}{path}")).bearer_auth(&user.token);
        async move { json(request.send().await.unwrap()).await }
    };
    let (status, connections) = get("/api/calendar/connections/".to_owned()).await;
    assert_eq!(status, 200, "{connections}");
    let accounts: BTreeMap<i64, String> = connections
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_i64().unwrap(),
                c["account_email"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let (status, events) = get(format!("/api/calendar/events/?start={from}&end={to}")).await;
    assert_eq!(status, 200, "{events}");
    let mut view: BTreeMap<String, Vec<Occurrence>> = user
        .accounts
        .iter()
        .map(|a| (a.clone(), Vec::new()))
        .collect();
    for event in events.as_array().unwrap() {
        let account = &accounts[&event["connection_id"].as_i64().unwrap()];
        let time = |key: &str| -> Timestamp {
            event[key]
                .as_str()
                .unwrap()
                .parse()
                .unwrap_or_else(|_| panic!("not an instant: {event}"))
        };
        view.entry(account.clone()).or_default().push((
            event["title"].as_str().unwrap().to_owned(),
            time("start"),
            time("end"),
        ));
    }
    for occurrences in view.values_mut() {
        occurrences.sort();
    }
    view
}

/// Differences between the emulator's truth and calsync's view of each
/// account: missing and extra occurrences (a duplicate is an extra).
fn differences(
    truth: &BTreeMap<String, Vec<Occurrence>>,
    view: &BTreeMap<String, Vec<Occurrence>>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let accounts: BTreeSet<&String> = truth.keys().chain(view.keys()).collect();
    for account in accounts {
        let count = |list: &[Occurrence]| {
            let mut counted: BTreeMap<Occurrence, i64> = BTreeMap::new();
            for o in list {
                *counted.entry(o.clone()).or_default() += 1;
            }
            counted
        };
        let want = count(truth.get(account).map_or(&[], Vec::as_slice));
        let have = count(view.get(account).map_or(&[], Vec::as_slice));
        let keys: BTreeSet<&Occurrence> = want.keys().chain(have.keys()).collect();
        for key in keys {
            let (w, h) = (
                want.get(key).copied().unwrap_or(0),
                have.get(key).copied().unwrap_or(0),
            );
            if w != h {
                problems.push(format!(
                    "{account}: {:?} {} .. {}: the emulator has {w}, calsync shows {h}",
                    key.0, key.1, key.2
                ));
            }
        }
    }
    problems
}

// ------------------------------------------------------------------ rounds in the request log

fn log_time(entry: &LogEntry) -> Timestamp {
    entry.time.parse().unwrap()
}

fn has_param(entry: &LogEntry, name: &str) -> bool {
    entry
        .query
        .split('&')
        .any(|pair| pair.split('=').next() == Some(name))
}

fn is_calendar_list(entry: &LogEntry) -> bool {
    entry.path == "/calendar/v3/users/me/calendarList"
}

fn is_events(entry: &LogEntry) -> bool {
    entry.path.starts_with("/calendar/v3/calendars/") && entry.path.ends_with("/events")
}

/// What the request log says about one account's rounds.
#[derive(Default)]
struct RoundReport {
    rounds: usize,
    requests: usize,
    /// The smallest gap between two of the account's completions, ms.
    closest_ms: Option<i64>,
}

fn describe(e: &LogEntry) -> String {
    format!(
        "seq {} {} {} ?{} -> {}",
        e.seq, e.time, e.path, e.query, e.status
    )
}

/// Checks that no two of one account's Calendar API requests (in seq
/// order) were in flight at once; `held_ms` is how long the emulator held a
/// request before answering (an injected delay, its latency). The log
/// records a request when its answer is ready, before it is sent; a request
/// that begins after the previous one was answered and is held `h` ms
/// completes at least `h` ms later. A shorter gap means it was sent while
/// the other was still open: two rounds at once, since a round awaits each
/// of its requests. Returns the smallest gap seen, in ms.
fn check_in_flight(
    account: &str,
    entries: &[&LogEntry],
    held_ms: impl Fn(&LogEntry) -> i64,
    problems: &mut Vec<String>,
) -> Option<i64> {
    let mut closest: Option<i64> = None;
    for pair in entries.windows(2) {
        let gap = log_time(pair[1])
            .duration_since(log_time(pair[0]))
            .as_millis() as i64;
        closest = Some(closest.map_or(gap, |c| c.min(gap)));
        let held = held_ms(pair[1]);
        if gap < held - TOLERANCE_MS {
            problems.push(format!(
                "{account}: two requests in flight at once: [{}] completed {gap} ms after [{}], \
                 though it was held {held} ms",
                describe(pair[1]),
                describe(pair[0])
            ));
        }
    }
    closest
}

/// Checks one account's Calendar API requests (seq order, every one
/// delayed `delay_ms` by fault `fault`) for overlapping rounds:
///
/// 1. No two requests in flight at once ([`check_in_flight`]).
/// 2. Rounds in their shape. A round lists the calendars (a calendarList
///    request without pageToken, then its own pages), then pulls each of
///    `calendars` once: a first events request without pageToken (syncToken
///    or a full listing), then that calendar's pageToken pages, calendar
///    after calendar. A calendar pulled twice within one round, missing from
///    it, interleaved with another, or continued from a pageToken it did not
///    start, means a second round ran inside the first.
fn check_account_rounds(
    account: &str,
    entries: &[&LogEntry],
    calendars: &BTreeSet<String>,
    fault: u64,
    delay_ms: i64,
    problems: &mut Vec<String>,
) -> RoundReport {
    let mut report = RoundReport {
        requests: entries.len(),
        ..RoundReport::default()
    };
    for entry in entries {
        if entry.fault != Some(fault) {
            problems.push(format!(
                "{account}: request not delayed: [{}]",
                describe(entry)
            ));
        }
    }
    report.closest_ms = check_in_flight(
        account,
        entries,
        |e| {
            let delayed = if e.fault == Some(fault) { delay_ms } else { 0 };
            delayed + e.latency_ms.map_or(0, |ms| ms as i64)
        },
        problems,
    );

    // Rounds: split at each calendarList request without pageToken.
    let mut rounds: Vec<Vec<&LogEntry>> = Vec::new();
    for entry in entries {
        if entry.status != 200 {
            problems.push(format!(
                "{account}: unexpected answer [{}]",
                describe(entry)
            ));
        }
        if is_calendar_list(entry) && !has_param(entry, "pageToken") {
            rounds.push(vec![entry]);
        } else if let Some(round) = rounds.last_mut() {
            round.push(entry);
        } else {
            problems.push(format!(
                "{account}: a request before any calendar listing: [{}]",
                describe(entry)
            ));
        }
    }
    report.rounds = rounds.len();
    for round in &rounds {
        let summary = || {
            round
                .iter()
                .map(|e| format!("\n    {}", describe(e)))
                .collect::<String>()
        };
        let mut seen: Vec<&str> = Vec::new();
        let mut listing = true;
        for entry in &round[1..] {
            if is_calendar_list(entry) {
                // Only the calendar list's own next pages, before any events.
                if !listing {
                    problems.push(format!(
                        "{account}: calendar list pages inside a round's event pulls:{}",
                        summary()
                    ));
                    break;
                }
                continue;
            }
            listing = false;
            if !is_events(entry) {
                problems.push(format!(
                    "{account}: unexpected request [{}]",
                    describe(entry)
                ));
                continue;
            }
            let calendar = entry.path.as_str();
            let first_of_calendar = seen.last() != Some(&calendar);
            if first_of_calendar {
                if seen.contains(&calendar) {
                    problems.push(format!(
                        "{account}: a calendar pulled twice in one round (rounds interleaved):{}",
                        summary()
                    ));
                    break;
                }
                if has_param(entry, "pageToken") {
                    problems.push(format!(
                        "{account}: a calendar's pull began with another round's page token:{}",
                        summary()
                    ));
                    break;
                }
                seen.push(calendar);
            } else if !has_param(entry, "pageToken") {
                problems.push(format!(
                    "{account}: a calendar listed from the start again within one round:{}",
                    summary()
                ));
                break;
            }
        }
        let pulled: BTreeSet<String> = seen.iter().map(|s| (*s).to_owned()).collect();
        if &pulled != calendars {
            problems.push(format!(
                "{account}: a round that did not pull each calendar exactly once \
                 (a later round began before it ended, or it failed):{}",
                summary()
            ));
        }
    }
    report
}

// ------------------------------------------------------------------ the tests

/// The last `n` warnings and errors of the instances' logs.
fn warnings(logs: &[String], n: usize) -> String {
    let lines: Vec<&str> = logs
        .iter()
        .flat_map(|l| l.lines())
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    format!(
        "warnings and errors of the instances ({}, the last {n}):\n{}",
        lines.len(),
        lines[lines.len().saturating_sub(n)..].join("\n")
    )
}

/// The instances' warnings and errors by message (fields left out), counted.
fn warning_counts(logs: &[String]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in logs.iter().flat_map(|l| l.lines()) {
        let Some(at) = line.find(" WARN ").or_else(|| line.find(" ERROR ")) else {
            continue;
        };
        let rest = &line[at..];
        let message = rest.split_once(": ").map_or(rest, |(_, m)| m);
        // Fields follow the message as ` key=value`.
        let end = message
            .match_indices(' ')
            .map(|(i, _)| i)
            .find(|&i| {
                let word = message[i + 1..].split(' ').next().unwrap_or("");
                word.split_once('=').is_some_and(|(key, _)| {
                    !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                })
            })
            .unwrap_or(message.len());
        *counts.entry(message[..end].to_owned()).or_default() += 1;
    }
    counts
}

/// Held on every Calendar API request in the first test, so rounds take a while.
const DELAY_MS: u64 = 200;
/// Clock granularity slack for the in-flight check (the log has milliseconds).
const TOLERANCE_MS: i64 = 15;
const STORM: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lease_fencing_two_instances_never_overlap_rounds_of_one_connection() {
    let mut rng = Rng::seeded("lease_fencing_two_instances_never_overlap_rounds_of_one_connection");
    let cluster = start_cluster(2, &[("CALSYNC_SYNC_INTERVAL", "1h")]).await;
    let emulator = &cluster.emulator;
    let apps = &cluster.apps;
    let bases: Vec<String> = apps.iter().map(|a| a.base.clone()).collect();
    // Small pages: a full pull takes several requests.
    emulator.update_settings(|s| s.page_size_cap = Some(4));

    let mut world = World::new();
    let mut users = Vec::new();
    for u in 0..4 {
        let account = format!("fence{u}@example.com");
        emulator.add_account(&account, None);
        let team = emulator
            .add_calendar(&account, json!({"summary": "Team", "timeZone": "UTC"}))
            .unwrap();
        world.add_calendar(emulator, &account, &account, &mut rng, 10, true);
        world.add_calendar(
            emulator,
            &account,
            team["id"].as_str().unwrap(),
            &mut rng,
            10,
            u % 2 == 0,
        );
        users.push(User {
            name: format!("fence{u}"),
            token: String::new(),
            accounts: vec![account],
        });
    }
    add_users(&apps[0], &mut users);
    connect_users(&apps[0], &users).await;
    for user in &users {
        apps[0].wait_for_sync(&user.token).await;
    }

    // From here every Calendar API request is held DELAY_MS.
    let fault = emulator
        .inject_fault(Fault {
            path_prefix: "/calendar/v3/".to_owned(),
            count: 10_000_000,
            delay_ms: Some(DELAY_MS),
            ..Fault::default()
        })
        .unwrap()
        .id;
    let checkpoint = emulator.requests().last().map_or(0, |e| e.seq);
    // Each account's calendars as the engine asks for their events (the ids
    // are letters, digits, `@` and `.`, which stay as they are in a path).
    let mut calendar_paths: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for cal in &world.cals {
        calendar_paths
            .entry(cal.account.clone())
            .or_default()
            .insert(format!("/calendar/v3/calendars/{}/events", cal.id));
    }

    // The storm: every user presses "Sync now" on either instance every
    // 20-150 ms, while their calendars change every 50-250 ms.
    let storm_end = Instant::now() + STORM;
    let presses = futures_util::future::join_all(users.iter().map(|user| {
        let mut rng = rng.fork();
        let (http, bases) = (&apps[0].http, &bases);
        async move {
            let (mut accepted, mut limited) = (0u32, 0u32);
            while Instant::now() < storm_end {
                let base = &bases[rng.below(bases.len() as u64) as usize];
                match press_sync_now(http, base, &user.token).await {
                    Ok(Pressed::Accepted) => accepted += 1,
                    Ok(Pressed::Limited) => limited += 1,
                    Err(err) => panic!("{err}"),
                }
                tokio::time::sleep(rng.between_ms(20, 150)).await;
            }
            (accepted, limited)
        }
    }));
    let mut changer_rng = rng.fork();
    let changes = async {
        while Instant::now() < storm_end {
            world.change_any(emulator, &mut changer_rng);
            tokio::time::sleep(changer_rng.between_ms(50, 250)).await;
        }
    };
    let (presses, ()) = tokio::join!(presses, changes);
    let accepted: u32 = presses.iter().map(|p| p.0).sum();
    let limited: u32 = presses.iter().map(|p| p.1).sum();

    // Settle: one more "Sync now" after the last change; wait for rounds
    // that began after it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after = Timestamp::now();
    for user in &users {
        press_until_accepted(&apps[0].http, &bases, &user.token).await;
    }
    let settled = settle(
        &apps[0].http,
        || bases[0].clone(),
        &users,
        after,
        Duration::from_secs(120),
    )
    .await;
    let mut failures = Vec::new();
    if let Err(why) = &settled {
        let logs: Vec<String> = apps.iter().map(TestApp::log_text).collect();
        failures.push(format!("{why}\n{}", warnings(&logs, 100)));
    }

    // (a) Rounds of one connection never overlap, from the request log.
    let log = emulator.requests();
    let mut per_account: BTreeMap<String, Vec<&LogEntry>> = BTreeMap::new();
    for entry in log.iter().filter(|e| e.seq > checkpoint) {
        if let Some(account) = entry
            .account
            .as_ref()
            .filter(|_| entry.path.starts_with("/calendar/v3/"))
        {
            per_account.entry(account.clone()).or_default().push(entry);
        }
    }
    let mut overlaps = Vec::new();
    let mut reports = Vec::new();
    for (account, entries) in &per_account {
        let report = check_account_rounds(
            account,
            entries,
            &calendar_paths[account],
            fault,
            DELAY_MS as i64,
            &mut overlaps,
        );
        reports.push((account.clone(), report));
    }
    assert_eq!(
        per_account.len(),
        users.len(),
        "every account was synced during the storm"
    );

    // (b) Every user's events equal the emulator's, exactly.
    let (from, to) = (
        world.base - SignedDuration::from_hours(24),
        world.base + SignedDuration::from_hours(24 * 45),
    );
    let truth = world.truth(emulator, from, to);
    let mut view = BTreeMap::new();
    for user in &users {
        view.extend(calsync_view(&apps[1].http, &bases[1], user, from, to).await);
    }
    let wrong = differences(&truth, &view);

    let rounds_by_instance: Vec<usize> = apps
        .iter()
        .map(|a| a.log_text().matches("sync finished").count())
        .collect();
    eprintln!(
        "storm {STORM:?}: {accepted} Sync now presses accepted ({limited} more refused by the per-user quota), changes {:?}; settled: {:?}; rounds finished per instance {rounds_by_instance:?}",
        world.changes,
        settled.as_ref().map_err(|_| "no")
    );
    let logs: Vec<String> = apps.iter().map(TestApp::log_text).collect();
    eprintln!("warnings: {:?}", warning_counts(&logs));
    for (account, report) in &reports {
        eprintln!(
            "{account}: {} rounds, {} requests, closest completions {:?} ms apart",
            report.rounds, report.requests, report.closest_ms
        );
    }
    let occurrences: usize = truth.values().map(Vec::len).sum();
    eprintln!("{occurrences} occurrences compared");
    if accepted < 100 {
        failures.push(format!(
            "no storm: only {accepted} Sync now presses were accepted"
        ));
    }
    if !rounds_by_instance.iter().all(|n| *n > 0) {
        failures.push(format!(
            "not both instances ran rounds: {rounds_by_instance:?}"
        ));
    }
    if !overlaps.is_empty() {
        failures.push(format!(
            "(a) rounds of one connection overlapped ({} findings, the first 20):\n{}",
            overlaps.len(),
            overlaps
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    if !wrong.is_empty() {
        failures.push(format!(
            "(b) calsync differs from the emulator ({} occurrences):\n{}",
            wrong.len(),
            wrong.join("\n")
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_three_instances_killed_at_random_converge() {
    let chaos = Duration::from_secs(
        std::env::var("CALSYNC_CHAOS_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(150),
    );
    let mut rng = Rng::seeded("chaos_three_instances_killed_at_random_converge");
    let started = Instant::now();
    let Cluster { emulator, mut apps } =
        start_cluster(3, &[("CALSYNC_SYNC_INTERVAL", "5s"), ("RUST_LOG", "info")]).await;
    let http = apps[0].http.clone();

    // 50 users × 4 Google accounts = 200 connections; half the accounts have a series.
    let mut world = World::new();
    let mut users = Vec::new();
    for u in 0..50 {
        let mut accounts = Vec::new();
        for a in 0..4 {
            let account = format!("chaos{u}.{a}@example.com");
            emulator.add_account(&account, None);
            world.add_calendar(&emulator, &account, &account, &mut rng, 10, a % 2 == 0);
            accounts.push(account);
        }
        users.push(User {
            name: format!("chaos{u}"),
            token: String::new(),
            accounts,
        });
    }
    add_users(&apps[0], &mut users);
    let setup_began = Timestamp::now();
    connect_users(&apps[0], &users).await;
    let first = settle(
        &http,
        || apps[0].base.clone(),
        &users,
        setup_began - SignedDuration::from_secs(1),
        Duration::from_secs(180),
    )
    .await
    .unwrap_or_else(|why| panic!("the first rounds did not finish: {why}"));
    eprintln!(
        "200 connections connected and synced after {:?} (first rounds {first:?})",
        started.elapsed()
    );

    // Chaos: kill and restart, change events, press Sync now, all at once.
    // Each Calendar API request now takes 20-200 ms, so a kill finds rounds
    // in flight (a round between two pages, or mid-page, is cut).
    emulator.update_settings(|s| s.latency_ms = Some([20, 200]));
    let checkpoint = emulator.requests().last().map_or(0, |e| e.seq);
    let live: Mutex<Vec<Option<String>>> =
        Mutex::new(apps.iter().map(|a| Some(a.base.clone())).collect());
    let live_base = |rng: &mut Rng| -> Option<String> {
        let live = live.lock().unwrap();
        let up: Vec<&String> = live.iter().flatten().collect();
        (!up.is_empty()).then(|| up[rng.below(up.len() as u64) as usize].clone())
    };
    let chaos_end = Instant::now() + chaos;
    let dead: Arc<Mutex<Vec<TestApp>>> = Arc::default();
    let mut killer_rng = rng.fork();
    let killer = async {
        let mut kills = 0u32;
        loop {
            tokio::time::sleep(killer_rng.between_ms(3000, 8000)).await;
            if Instant::now() >= chaos_end {
                return kills;
            }
            let i = killer_rng.below(apps.len() as u64) as usize;
            live.lock().unwrap()[i] = None;
            apps[i].kill();
            kills += 1;
            eprintln!("chaos: killed instance {i} ({kills} so far)");
            tokio::time::sleep(killer_rng.between_ms(0, 2000)).await;
            let old = apps.remove(i);
            let (old, fresh) = tokio::task::spawn_blocking(move || {
                let fresh = old.restarted();
                (old, fresh)
            })
            .await
            .unwrap();
            dead.lock().unwrap().push(old);
            live.lock().unwrap()[i] = Some(fresh.base.clone());
            apps.insert(i, fresh);
        }
    };
    let mut changer_rng = rng.fork();
    let changer = async {
        while Instant::now() < chaos_end {
            world.change_any(&emulator, &mut changer_rng);
            tokio::time::sleep(changer_rng.between_ms(30, 120)).await;
        }
    };
    let mut presser_rng = rng.fork();
    let presser = async {
        let (mut sent, mut accepted) = (0u32, 0u32);
        while Instant::now() < chaos_end {
            let user = &users[presser_rng.below(users.len() as u64) as usize];
            if let Some(base) = live_base(&mut presser_rng) {
                sent += 1;
                // An instance may die under the request: that is the point.
                accepted += u32::from(matches!(
                    press_sync_now(&http, &base, &user.token).await,
                    Ok(Pressed::Accepted)
                ));
            }
            tokio::time::sleep(presser_rng.between_ms(100, 400)).await;
        }
        (sent, accepted)
    };
    let (kills, (), (sent, accepted)) = tokio::join!(killer, changer, presser);
    let last_change = Timestamp::now();

    // Let every instance run until each connection has a round that began
    // after the last change (a killed round holds its connection until its
    // lease runs out).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after = Timestamp::now();
    let settle_began = Instant::now();
    let settled = settle(
        &http,
        || apps[0].base.clone(),
        &users,
        after,
        Duration::from_secs(180),
    )
    .await;
    let dead = std::mem::take(&mut *dead.lock().unwrap());
    let logs: Vec<String> = apps
        .iter()
        .chain(dead.iter())
        .map(TestApp::log_text)
        .collect();
    let mut failures = Vec::new();
    if let Err(why) = &settled {
        failures.push(format!("{why}\n{}", warnings(&logs, 200)));
    }

    let (from, to) = (
        world.base - SignedDuration::from_hours(24),
        world.base + SignedDuration::from_hours(24 * 45),
    );
    let truth = world.truth(&emulator, from, to);
    let mut view = BTreeMap::new();
    for user in &users {
        view.extend(calsync_view(&http, &apps[1].base, user, from, to).await);
    }
    let wrong = differences(&truth, &view);

    // No two requests of one account in flight at once, kills included (a
    // killed round's connection waits for its lease to run out).
    let log = emulator.requests();
    let mut per_account: BTreeMap<String, Vec<&LogEntry>> = BTreeMap::new();
    for entry in log.iter().filter(|e| e.seq > checkpoint) {
        if let Some(account) = entry
            .account
            .as_ref()
            .filter(|_| entry.path.starts_with("/calendar/v3/"))
        {
            per_account.entry(account.clone()).or_default().push(entry);
        }
    }
    let mut overlaps = Vec::new();
    let mut closest: Option<i64> = None;
    for (account, entries) in &per_account {
        let gap = check_in_flight(
            account,
            entries,
            |e| e.latency_ms.map_or(0, |ms| ms as i64),
            &mut overlaps,
        );
        if let Some(gap) = gap {
            closest = Some(closest.map_or(gap, |c| c.min(gap)));
        }
    }

    let store = apps[0].store().await;
    let runs = |sql: &'static str| {
        let store = &store;
        async move {
            calsync_store::testing::fetch_text(store, sql)
                .await
                .unwrap_or_default()
        }
    };
    let (all_runs, unfinished, failed) = (
        runs("SELECT COUNT(*)::text FROM sync_runs").await,
        runs("SELECT COUNT(*)::text FROM sync_runs WHERE finished_at IS NULL").await,
        runs("SELECT COUNT(*)::text FROM sync_runs WHERE outcome IS NOT NULL AND outcome <> 'ok'")
            .await,
    );
    // Finished runs of one connection never overlap in time. sync_runs keep
    // whole seconds, and truncation keeps order, so a round that began after
    // another ended never looks as if it began before: any overlap is real
    // (overlaps within one second go unseen). Runs cut by a kill have no end.
    let overlapping = runs(
        "SELECT COALESCE(string_agg(o, E'\\n'), '') FROM (\
           SELECT format('connection %s: run %s [%s, %s] and run %s [%s, %s]', a.connection_id, \
                         a.id, a.started_at, a.finished_at, b.id, b.started_at, b.finished_at) AS o \
           FROM sync_runs a JOIN sync_runs b ON a.connection_id = b.connection_id AND a.id < b.id \
           WHERE a.finished_at IS NOT NULL AND b.finished_at IS NOT NULL \
             AND a.started_at < b.finished_at AND b.started_at < a.finished_at \
           ORDER BY a.id LIMIT 20) found",
    )
    .await;
    let warned = warning_counts(&logs);
    eprintln!(
        "chaos {chaos:?}: {kills} kills, {accepted}/{sent} Sync now presses accepted, changes {:?} (last at {last_change}); \
         settled {:?} after the changes stopped; sync runs {all_runs} ({unfinished} cut by a kill, {failed} failed); \
         warnings {warned:?}; {} provider requests of {} accounts checked, closest completions of one account {closest:?} ms apart; \
         {} occurrences compared; whole test {:?}",
        world.changes,
        settle_began.elapsed(),
        per_account.values().map(Vec::len).sum::<usize>(),
        per_account.len(),
        truth.values().map(Vec::len).sum::<usize>(),
        started.elapsed()
    );
    let panics: Vec<&str> = logs
        .iter()
        .flat_map(|l| l.lines())
        .filter(|l| l.contains("panicked"))
        .collect();
    if kills == 0 || unfinished == "0" {
        failures.push(format!(
            "the chaos phase cut no round: {kills} kills, {unfinished} runs left unfinished"
        ));
    }
    if !overlaps.is_empty() {
        failures.push(format!(
            "rounds of one connection overlapped ({} findings, the first 20):\n{}",
            overlaps.len(),
            overlaps
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    if !overlapping.is_empty() {
        failures.push(format!(
            "finished rounds of one connection overlapped in time (the first 20):\n{overlapping}"
        ));
    }
    if !panics.is_empty() {
        failures.push(format!("an instance panicked:\n{}", panics.join("\n")));
    }
    if !wrong.is_empty() {
        failures.push(format!(
            "calsync differs from the emulator ({} occurrences):\n{}",
            wrong.len(),
            wrong.join("\n")
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
