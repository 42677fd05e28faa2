//! Issue 13: hostile input at every request parser calsync exposes, against
//! the real binary. The routes are every operation of `GET /api/openapi.json`
//! on the running server and every page route of `src/http/web.rs`; the input
//! is JSON bodies (random values and shapes, wrong types for the documented
//! fields, deep nesting, huge strings, invalid UTF-8, truncated JSON), form
//! bodies (random and known fields, duplicates, missing fields, invalid
//! percent-encoding), query strings (random, and absurd values for the known
//! parameters), path parameters (numbers, huge and negative numbers, words,
//! unicode, `..`, percent-encodings) and the headers calsync reads
//! (`Authorization`, `Cookie`, `Origin`, `Referer`, `Sec-Fetch-Site`,
//! `Content-Type`, `X-Forwarded-For`, `Forwarded`, `Host`, `Accept`,
//! `If-Match`, `X-CSRF-Token`), sent anonymously and with a valid bearer
//! token or session cookie (+ CSRF token) so that handlers past
//! authentication are reached, on users who own real connections,
//! calendars, tokens and recurring events.
//!
//! Every answer must be below 500 (except `/readyz`'s documented 503, and the
//! documented `provider_error` 502 of the two connect routes, which fetch
//! the URL they are given, when that URL names a well-formed host), a 429 must say `Retry-After`, an `/api/`
//! error must be the envelope `{"error": {"code", "message"}}`, no request
//! may hang (10 s) or lose its connection (unless its headers overflow the
//! HTTP layer's buffer, which answers 431 and closes), and at the end the
//! server process must still run, answer `/healthz`, and its log must hold
//! no panic.
//!
//! The input comes from proptest strategies on a fixed seed and a fixed
//! number of requests per backend (fewer on PostgreSQL); `CALSYNC_FUZZ_SEED`
//! picks another seed. Failures are collected rather than shrunk (the server
//! is stateful) and reported with the seed and the exact request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use calsync_store::BackendKind;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::Method;
use serde_json::{json, Value};
use support::{TestApp, PASSWORD};

on_both_backends!(hostile_requests_get_4xx_and_never_break_the_server);

/// Requests per backend: most on SQLite, a smaller share on PostgreSQL.
const SQLITE_CASES: usize = 5000;
const POSTGRES_CASES: usize = 1500;
const DEFAULT_SEED: u64 = 0x0013_ca15_f022;
/// A request taking longer than this is a hang.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// `CALSYNC_PUBLIC_URL` of `TestApp`: the origin cookie writes must come from.
const PUBLIC_ORIGIN: &str = "http://localhost:8000";
/// The test's own logins come from this client address (through the trusted
/// proxy header), which the fuzzed logins never use, so the login throttle
/// they run into never holds the test back.
const LOGIN_ADDRESS: &str = "198.51.100.7";
/// `http::BODY_LIMIT`.
const BODY_LIMIT: usize = 64 * 1024;
/// Request headers beyond this overflow hyper's read buffer (about 400 KiB).
const HEADER_BUFFER: usize = 400 * 1024;
/// Users with a token, a session and feeds of recurring events; user 0 is
/// only sent reads, so that one user's data and credentials stay as set up.
const USERS: usize = 4;
/// Nothing listens here: OAuth endpoints that must never be reached.
const DEAD_END: &str = "http://127.0.0.1:9";

async fn hostile_requests_get_4xx_and_never_break_the_server(kind: BackendKind) {
    let cases = match kind {
        BackendKind::Sqlite => SQLITE_CASES,
        BackendKind::Postgres => POSTGRES_CASES,
    };
    let seed = std::env::var("CALSYNC_FUZZ_SEED")
        .ok()
        .map(|s| {
            let s = s.trim();
            s.strip_prefix("0x")
                .map_or_else(|| s.parse(), |hex| u64::from_str_radix(hex, 16))
                .expect("CALSYNC_FUZZ_SEED: a number")
        })
        .unwrap_or(DEFAULT_SEED);
    let started = Instant::now();
    let Some(mut fuzz) = Fuzz::start(kind, seed).await else {
        return;
    };
    let set_up = started.elapsed();
    let mut generator = Gen::new(seed, kind);
    for number in 0..cases {
        let case = generator.case(&fuzz.target);
        fuzz.run(number, &case).await;
        if number % 200 == 199 {
            fuzz.check_alive(number).await;
        }
    }
    fuzz.check_alive(cases).await;
    fuzz.finish(kind, seed, cases, set_up, started.elapsed());
}

// ---------------------------------------------------------------------------
// The server under test, its users, and the checks.
// ---------------------------------------------------------------------------

/// One user of the fuzz: a bearer token and a browser session.
struct User {
    name: String,
    token: String,
    cookie: String,
    csrf: String,
}

/// What requests are generated against: the routes and the ids that exist.
struct Target {
    routes: Vec<Route>,
    /// Ids of real calendars, connections and tokens of every user.
    ids: Vec<i64>,
    /// Each user's own ids, so that requests also reach rows they may change.
    own: Vec<Vec<i64>>,
    /// The connections no disconnect names, so that every user keeps events.
    kept: BTreeSet<i64>,
    usernames: Vec<String>,
}

/// A route and what it parses.
#[derive(Clone, Debug)]
struct Route {
    method: Method,
    template: String,
    /// Under `/api/`: errors are the JSON envelope.
    api: bool,
    /// A page form (`application/x-www-form-urlencoded`) rather than JSON.
    form: bool,
    /// Documented query parameters.
    query: Vec<String>,
    /// Documented body fields (JSON) or form fields.
    fields: Vec<(String, Field)>,
}

/// What a documented field holds.
#[derive(Clone, Debug)]
enum Field {
    Text,
    Integer,
    Bool,
    OneOf(Vec<String>),
}

struct Fuzz {
    app: TestApp,
    /// The first server (private addresses allowed, to subscribe to the
    /// test's feeds); killed before the fuzz, kept for its database.
    _setup: TestApp,
    http: reqwest::Client,
    pid: u32,
    users: Vec<User>,
    target: Target,
    seed: u64,
    failures: Vec<String>,
    /// Failures by (route, outcome): only the first few of each are kept.
    failure_kinds: BTreeMap<String, usize>,
    /// Answers by route: the status, and the code of an `/api/` error.
    statuses: BTreeMap<String, BTreeMap<String, usize>>,
    /// Routes answered with something other than 401/403 to a request
    /// carrying valid credentials: their handlers were reached.
    reached: BTreeSet<String>,
    /// Tolerated outcomes, with the first of each: documented 5xx answers,
    /// and connections closed on headers too large for the HTTP layer.
    tolerated: BTreeMap<String, (usize, String)>,
    requests: usize,
    /// `CALSYNC_FUZZ_TRACE`: requests to routes containing it are printed
    /// with their answers.
    trace: Option<String>,
}

/// A feed of series whose expansion the range queries exercise.
fn rich_feed() -> String {
    let tomorrow =
        Timestamp::now().round(jiff::Unit::Hour).unwrap() + SignedDuration::from_hours(24);
    let utc = |t: Timestamp| t.strftime("%Y%m%dT%H%M%SZ").to_string();
    let events = [
        "UID:weekly@fuzz\r\nDTSTART;TZID=Europe/Berlin:20250106T090000\r\nDTEND;TZID=Europe/Berlin:20250106T093000\r\n\
         RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR\r\nEXDATE;TZID=Europe/Berlin:20250108T090000\r\nSUMMARY:Stand-up\r\n"
            .to_owned(),
        "UID:weekly@fuzz\r\nRECURRENCE-ID;TZID=Europe/Berlin:20250110T090000\r\n\
         DTSTART;TZID=Europe/Berlin:20250110T100000\r\nDTEND;TZID=Europe/Berlin:20250110T103000\r\nSUMMARY:Stand-up, moved\r\n"
            .to_owned(),
        "UID:daily@fuzz\r\nDTSTART;VALUE=DATE:20240101\r\nDTEND;VALUE=DATE:20240102\r\nRRULE:FREQ=DAILY\r\nSUMMARY:Every day\r\n"
            .to_owned(),
        "UID:leap@fuzz\r\nDTSTART;VALUE=DATE:20240229\r\nRRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29\r\nSUMMARY:Leap day\r\n"
            .to_owned(),
        "UID:since-1900@fuzz\r\nDTSTART:19000101T120000Z\r\nDTEND:19000101T130000Z\r\nRRULE:FREQ=YEARLY\r\nSUMMARY:Since 1900\r\n"
            .to_owned(),
        "UID:often@fuzz\r\nDTSTART:20250101T000000Z\r\nDTEND:20250101T000500Z\r\nRRULE:FREQ=HOURLY;INTERVAL=7\r\nSUMMARY:Often\r\n"
            .to_owned(),
        "UID:last-friday@fuzz\r\nDTSTART:20250131T150000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=MONTHLY;BYDAY=-1FR;COUNT=500\r\nSUMMARY:Last Friday\r\n"
            .to_owned(),
        "UID:year-long@fuzz\r\nDTSTART:20250101T000000Z\r\nDTEND:20260101T000000Z\r\nSUMMARY:A year long\r\n".to_owned(),
        format!(
            "UID:tomorrow@fuzz\r\nDTSTART:{}\r\nDTEND:{}\r\nSUMMARY:Tomorrow\r\n",
            utc(tomorrow),
            utc(tomorrow + SignedDuration::from_hours(1))
        ),
    ];
    feed(&events)
}

fn feed(events: &[String]) -> String {
    let mut text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calsync fuzz//EN\r\nX-WR-CALNAME:Fuzz feed\r\n".to_owned();
    for event in events {
        text.push_str("BEGIN:VEVENT\r\nDTSTAMP:20260101T000000Z\r\n");
        text.push_str(event);
        text.push_str("END:VEVENT\r\n");
    }
    text.push_str("END:VCALENDAR\r\n");
    text
}

impl Fuzz {
    async fn start(kind: BackendKind, seed: u64) -> Option<Self> {
        // First a server that may fetch the test's feeds on 127.0.0.1: each
        // user subscribes to two, so that connections, calendars and
        // (recurring) events exist. The fuzz then runs against a server on
        // the same database with the default address guard.
        let (feeds_base, feeds) = support::feeds::feed_server().await;
        let setup = TestApp::start_with(
            kind,
            &[
                ("CALSYNC_ALLOW_PRIVATE_ADDRESSES", "true"),
                ("CALSYNC_SYNC_INTERVAL", "1h"),
            ],
        )
        .await?;
        let mut tokens = Vec::new();
        let mut kept = BTreeSet::new();
        for user in 0..USERS {
            let name = format!("fuzz{user}");
            let token = setup.user_with_token(&name);
            // The first feed is kept for the whole run; the spare one is
            // there for a disconnect to succeed on.
            for (feed, keep) in [(name.clone(), true), (format!("{name}-spare"), false)] {
                feeds
                    .lock()
                    .unwrap()
                    .bodies
                    .insert(feed.clone(), rich_feed());
                let response = setup
                    .post("/api/calendar/ics/subscribe/", &token)
                    .json(&json!({ "url": format!("{feeds_base}/{feed}") }))
                    .send()
                    .await
                    .unwrap();
                let (status, body) = support::json(response).await;
                assert_eq!(status, 201, "subscribing {name} to {feed}: {body}");
                if keep {
                    kept.insert(body["id"].as_i64().unwrap());
                }
            }
            tokens.push((name, token));
        }
        for (_, token) in &tokens {
            let connections = setup.wait_for_sync(token).await;
            assert!(
                connections
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|c| c["status"] == "ok"),
                "the feeds did not sync: {connections}"
            );
        }
        let mut setup = setup;
        setup.kill();

        let dead = |path: &str| format!("{DEAD_END}{path}");
        let env = [
            ("CALSYNC_SYNC_INTERVAL", "1h".to_owned()),
            // Forwarding headers are read (and so fuzzed) only from a trusted proxy.
            ("CALSYNC_TRUSTED_PROXIES", "127.0.0.1/32".to_owned()),
            // Configured OAuth providers whose endpoints nothing answers:
            // authorize works without the network, callbacks never get far.
            ("CALSYNC_GOOGLE_CLIENT_ID", "fuzz-google".to_owned()),
            (
                "CALSYNC_GOOGLE_CLIENT_SECRET",
                "fuzz-google-secret".to_owned(),
            ),
            ("CALSYNC_GOOGLE_AUTH_URL", dead("/google/auth")),
            ("CALSYNC_GOOGLE_TOKEN_URL", dead("/google/token")),
            ("CALSYNC_GOOGLE_API_BASE", dead("/google/api")),
            ("CALSYNC_GOOGLE_REVOKE_URL", dead("/google/revoke")),
            ("CALSYNC_MICROSOFT_CLIENT_ID", "fuzz-microsoft".to_owned()),
            (
                "CALSYNC_MICROSOFT_CLIENT_SECRET",
                "fuzz-microsoft-secret".to_owned(),
            ),
            ("CALSYNC_MICROSOFT_AUTH_URL", dead("/microsoft/auth")),
            ("CALSYNC_MICROSOFT_TOKEN_URL", dead("/microsoft/token")),
            ("CALSYNC_MICROSOFT_API_BASE", dead("/microsoft/api")),
        ];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let app = TestApp::start_on(
            setup.db.clone(),
            setup.data_dir.clone(),
            setup.key.clone(),
            &env,
        );
        let pid = server_pid(&app).expect("the calsync serve process in /proc");
        // A connection per request: the server closes one whose request
        // body it answered without reading (hyper does), and a pooled
        // client that reuses it races that close. Each request on its own
        // connection makes a lost answer that request's failure.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap();
        let mut users = Vec::new();
        for (name, token) in tokens {
            let (cookie, csrf) = login(&http, &app, &name).await;
            users.push(User {
                name,
                token,
                cookie,
                csrf,
            });
        }
        let mut routes = api_routes(&http, &app).await;
        routes.extend(page_routes());
        let mut ids = BTreeSet::new();
        let mut own = Vec::new();
        for user in &users {
            let mut theirs = BTreeSet::new();
            for path in [
                "/api/calendar/connections/",
                "/api/calendar/calendars/",
                "/api/tokens/",
            ] {
                let response = app.get(path, &user.token).send().await.unwrap();
                let (status, list) = support::json(response).await;
                assert_eq!(status, 200, "{path}: {list}");
                theirs.extend(
                    list.as_array()
                        .unwrap()
                        .iter()
                        .filter_map(|x| x["id"].as_i64()),
                );
            }
            ids.extend(theirs.iter().copied());
            own.push(theirs.into_iter().collect());
        }
        eprintln!(
            "fuzz_requests: seed {seed:#x} (CALSYNC_FUZZ_SEED), {} routes, ids {ids:?}",
            routes.len()
        );
        Some(Self {
            target: Target {
                routes,
                ids: ids.into_iter().collect(),
                own,
                kept,
                usernames: users.iter().map(|u| u.name.clone()).collect(),
            },
            app,
            _setup: setup,
            http,
            pid,
            users,
            seed,
            failures: Vec::new(),
            failure_kinds: BTreeMap::new(),
            statuses: BTreeMap::new(),
            reached: BTreeSet::new(),
            tolerated: BTreeMap::new(),
            requests: 0,
            trace: std::env::var("CALSYNC_FUZZ_TRACE").ok(),
        })
    }

    /// Sends one case and checks the answer; restores the users' credentials
    /// when the case may have ended them.
    async fn run(&mut self, number: usize, case: &Case) {
        let Some(request) = self.materialize(case) else {
            return;
        };
        self.requests += 1;
        let sent = request.describe();
        let outcome = self.send(&request).await;
        if self
            .trace
            .as_ref()
            .is_some_and(|t| case.route.contains(t.as_str()))
        {
            let answer = match &outcome {
                Ok(a) => format!("{} {}", a.status, show_bytes(&a.body, 300)),
                Err(e) => e.clone(),
            };
            eprintln!("case {number} ({}):\n{sent}  -> {answer}", case.kind);
        }
        match outcome {
            // Not a request HTTP can carry (a URI over 64 KiB): the client refuses it.
            Err(error) if error.starts_with("builder error") => self.requests -= 1,
            // Headers beyond hyper's buffer: it answers 431 and closes the
            // connection, maybe while the client still writes them.
            Err(error) if request.header_bytes() > HEADER_BUFFER && self.alive() => {
                let what = format!("no answer {}", case.route);
                let example = || format!("{error}\n{sent}");
                self.tolerated
                    .entry(what)
                    .or_insert_with(|| (0, example()))
                    .0 += 1;
            }
            Err(error) => {
                let alive = self.alive();
                self.fail(
                    number,
                    case,
                    &sent,
                    &format!("no answer: {error} (server process alive: {alive})"),
                );
            }
            Ok(answer) => self.check(number, case, &request, &sent, &answer),
        }
        if case.may_end_credentials {
            if let Some(user) = case.auth.user() {
                self.restore(user).await;
            }
        }
    }

    fn materialize(&self, case: &Case) -> Option<Request> {
        let url = reqwest::Url::parse(&format!("{}{}", self.app.base, case.path)).ok()?;
        let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::new();
        let mut add = |name: &str, value: &[u8]| {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("a header name");
            let value: Vec<u8> = value
                .iter()
                .map(|&b| {
                    if (b < 0x20 && b != b'\t') || b == 0x7f {
                        b'?'
                    } else {
                        b
                    }
                })
                .collect();
            headers.push((
                name,
                HeaderValue::from_bytes(&value).expect("a header value"),
            ));
        };
        // A hostile Authorization, Origin or X-CSRF-Token replaces the
        // valid one, which the server would otherwise read first.
        let replaced = |name: &str| case.headers.iter().any(|(n, _)| *n == name);
        match case.auth {
            Auth::Anonymous => {}
            Auth::Bearer(_) if replaced("authorization") => {}
            Auth::Bearer(user) => add(
                "authorization",
                format!("Bearer {}", self.users[user].token).as_bytes(),
            ),
            Auth::Session {
                user,
                csrf_header,
                origin,
            } => {
                let user = &self.users[user];
                add("cookie", user.cookie.as_bytes());
                if csrf_header && !replaced("x-csrf-token") {
                    add("x-csrf-token", user.csrf.as_bytes());
                }
                if origin && !replaced("origin") {
                    add("origin", PUBLIC_ORIGIN.as_bytes());
                }
            }
        }
        if let Some(content_type) = &case.content_type {
            add("content-type", content_type);
        }
        for (name, value) in &case.headers {
            add(name, value);
        }
        let body = match &case.body {
            Body::None => Vec::new(),
            Body::Bytes(bytes) => bytes.clone(),
            Body::Form(pairs) => {
                let csrf = case.auth.user().map_or("", |u| self.users[u].csrf.as_str());
                let mut text = String::new();
                for (i, (key, value)) in pairs.iter().enumerate() {
                    if i > 0 {
                        text.push('&');
                    }
                    text.push_str(key);
                    match value {
                        FormValue::Bare => {}
                        FormValue::Csrf => {
                            text.push('=');
                            text.push_str(&encode(csrf));
                        }
                        FormValue::Encoded(v) => {
                            text.push('=');
                            text.push_str(v);
                        }
                    }
                }
                text.into_bytes()
            }
        };
        Some(Request {
            method: case.method.clone(),
            url,
            headers,
            body,
        })
    }

    async fn send(&self, request: &Request) -> Result<Answer, String> {
        let mut builder = self
            .http
            .request(request.method.clone(), request.url.clone());
        for (name, value) in &request.headers {
            builder = builder.header(name.clone(), value.clone());
        }
        if !request.body.is_empty() {
            builder = builder.body(request.body.clone());
        }
        let response = builder.send().await.map_err(|e| error_chain(&e))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let content_type = header("content-type").unwrap_or_default();
        let retry_after = header("retry-after");
        let location = header("location");
        // An event stream that was let in never ends: its headers are the answer.
        let body = if (200..300).contains(&status) && content_type.starts_with("text/event-stream")
        {
            Vec::new()
        } else {
            response
                .bytes()
                .await
                .map_err(|e| error_chain(&e))?
                .to_vec()
        };
        Ok(Answer {
            status,
            content_type,
            retry_after,
            location,
            body,
        })
    }

    fn check(
        &mut self,
        number: usize,
        case: &Case,
        request: &Request,
        sent: &str,
        answer: &Answer,
    ) {
        let status = answer.status;
        let code = error_code(&answer.body);
        let shown = code
            .as_ref()
            .map_or_else(|| status.to_string(), |code| format!("{status} {code}"));
        *self
            .statuses
            .entry(format!("{} {}", case.method, case.route))
            .or_default()
            .entry(shown)
            .or_default() += 1;
        if case.auth.user().is_some() && !matches!(status, 401 | 403) {
            // A page form is only reached past its CSRF check when it does
            // not send the browser back to the login form.
            let to_login = answer
                .location
                .as_deref()
                .is_some_and(|l| l.starts_with("/login"));
            if !(case.form && to_login) {
                self.reached
                    .insert(format!("{} {}", case.method, case.route));
            }
        }
        let path = request.url.path();
        if status >= 500 {
            // The connect routes fetch the URL they are given: a 502 is the
            // network's answer (no such host here), but only for a URL that
            // names a well-formed host; any other is the input's fault, a 422.
            let documented = (path == "/readyz" && status == 503)
                || (status == 502
                    && code.as_deref() == Some("provider_error")
                    && matches!(
                        case.route.as_str(),
                        "/api/calendar/caldav/connect/" | "/api/calendar/ics/subscribe/"
                    )
                    && names_a_host(&request.body));
            if documented {
                let example = || format!("{}\n{sent}", show_bytes(&answer.body, 300));
                let what = format!("{status} {}", case.route);
                self.tolerated
                    .entry(what)
                    .or_insert_with(|| (0, example()))
                    .0 += 1;
            } else {
                let body = show_bytes(&answer.body, 300);
                self.fail(number, case, sent, &format!("answered {status}: {body}"));
                return;
            }
        }
        if status == 429 && answer.retry_after.is_none() {
            self.fail(number, case, sent, "answered 429 without Retry-After");
        }
        // 414 and 431 come from the HTTP layer, before any route: no envelope.
        let from_http_layer = matches!(status, 414 | 431);
        let enveloped = answer.content_type.starts_with("application/json") && code.is_some();
        if path.starts_with("/api/")
            && status >= 400
            && request.method != Method::HEAD
            && !from_http_layer
            && !enveloped
        {
            let body = show_bytes(&answer.body, 300);
            self.fail(
                number,
                case,
                sent,
                &format!(
                    "answered {status} without the JSON error envelope (content-type {:?}): {body}",
                    answer.content_type
                ),
            );
        }
    }

    fn fail(&mut self, number: usize, case: &Case, sent: &str, what: &str) {
        let kind = format!(
            "{} {}: {}",
            case.method,
            case.route,
            what.split(':').next().unwrap_or(what)
        );
        let seen = self.failure_kinds.entry(kind).or_default();
        *seen += 1;
        if *seen <= 3 {
            self.failures.push(format!(
                "case {number} ({}; seed {:#x}): {what}\n{sent}",
                case.kind, self.seed
            ));
        }
    }

    fn alive(&self) -> bool {
        process_alive(self.pid)
    }

    /// The process runs and answers `/healthz`, and its log holds no panic.
    async fn check_alive(&mut self, number: usize) {
        assert!(
            self.alive(),
            "calsync exited during the fuzz (after case {number}, seed {:#x}); failures so far:\n{}\nlog:\n{}",
            self.seed,
            self.failures.join("\n\n"),
            tail(&self.app.log_text(), 60)
        );
        let health = self.http.get(self.app.url("/healthz")).send().await;
        assert!(
            health.as_ref().is_ok_and(|r| r.status() == 200),
            "/healthz does not answer after case {number} (seed {:#x}): {health:?}",
            self.seed
        );
        let log = self.app.log_text();
        assert!(
            !log.contains("panicked"),
            "calsync panicked (by case {number}, seed {:#x}); failures so far:\n{}\nlog:\n{}",
            self.seed,
            self.failures.join("\n\n"),
            panic_context(&log)
        );
    }

    /// After a logout, a password change, a revoked token or a deleted
    /// account: the user gets a working session and token back.
    async fn restore(&mut self, user: usize) {
        let works = |auth: reqwest::RequestBuilder| async move {
            auth.send().await.is_ok_and(|r| r.status() == 200)
        };
        let me = self.app.url("/api/me/");
        if !works(
            self.http
                .get(&me)
                .header("cookie", &self.users[user].cookie),
        )
        .await
        {
            let (cookie, csrf) = login(&self.http, &self.app, &self.users[user].name).await;
            self.users[user].cookie = cookie;
            self.users[user].csrf = csrf;
        }
        if works(self.http.get(&me).bearer_auth(&self.users[user].token)).await {
            return;
        }
        // A new token through the session; at the token limit, the fuzz's
        // own tokens go first.
        for _ in 0..2 {
            let created = self
                .http
                .post(self.app.url("/api/tokens/"))
                .header("cookie", &self.users[user].cookie)
                .header("x-csrf-token", &self.users[user].csrf)
                .header("origin", PUBLIC_ORIGIN)
                .json(&json!({"name": "fuzz restore"}))
                .send()
                .await
                .unwrap();
            if created.status() == 201 {
                let body: Value = created.json().await.unwrap();
                self.users[user].token = body["token"].as_str().unwrap().to_owned();
                return;
            }
            let listed: Value = self
                .http
                .get(self.app.url("/api/tokens/"))
                .header("cookie", &self.users[user].cookie)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for token in listed.as_array().unwrap().iter().take(20) {
                let id = token["id"].as_i64().unwrap();
                self.http
                    .delete(self.app.url(&format!("/api/tokens/{id}/")))
                    .header("cookie", &self.users[user].cookie)
                    .header("x-csrf-token", &self.users[user].csrf)
                    .header("origin", PUBLIC_ORIGIN)
                    .send()
                    .await
                    .unwrap();
            }
        }
        panic!("could not give {} a token again", self.users[user].name);
    }

    fn finish(
        &self,
        kind: BackendKind,
        seed: u64,
        cases: usize,
        set_up: Duration,
        elapsed: Duration,
    ) {
        let mut summary = String::new();
        let mut classes = BTreeMap::<String, usize>::new();
        for (route, statuses) in &self.statuses {
            let shown: Vec<String> = statuses.iter().map(|(s, n)| format!("{s} x{n}")).collect();
            let _ = writeln!(summary, "  {route}: {}", shown.join(", "));
            for (status, n) in statuses {
                *classes.entry(format!("{}xx", &status[..1])).or_default() += n;
            }
        }
        for (what, (n, example)) in &self.tolerated {
            let _ = writeln!(summary, "tolerated: {what} x{n}, the first:\n{example}");
        }
        eprintln!(
            "fuzz_requests on {kind:?}: {} requests from {cases} cases in {:.1} s (set-up {:.1} s), by class {classes:?}, \
             seed {seed:#x}\n{summary}",
            self.requests,
            elapsed.as_secs_f64(),
            set_up.as_secs_f64(),
        );
        assert!(
            self.failures.is_empty(),
            "{} kinds of failure (seed {seed:#x}, CALSYNC_FUZZ_SEED reruns it):\n{:#?}\n\nexamples:\n\n{}",
            self.failure_kinds.len(),
            self.failure_kinds,
            self.failures.join("\n\n")
        );
        // Every documented operation and every page form was reached past
        // authentication (and the CSRF check) by at least one request.
        let missed: Vec<String> = self
            .target
            .routes
            .iter()
            .filter(|r| r.api || r.method == Method::POST)
            .map(|r| format!("{} {}", r.method, r.template))
            .filter(|r| !self.reached.contains(r))
            .collect();
        assert!(
            missed.is_empty(),
            "never reached past authentication (seed {seed:#x}): {missed:?}"
        );
    }
}

/// Logs in through the form from [`LOGIN_ADDRESS`]; the `Cookie` header value
/// and the CSRF token.
async fn login(http: &reqwest::Client, app: &TestApp, name: &str) -> (String, String) {
    let response = http
        .post(app.url("/login"))
        .header("origin", PUBLIC_ORIGIN)
        .header("x-forwarded-for", LOGIN_ADDRESS)
        .form(&[("username", name), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "logging {name} in");
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect();
    let csrf = cookies
        .iter()
        .find_map(|c| c.strip_prefix("calsync_csrf="))
        .unwrap()
        .to_owned();
    (cookies.join("; "), csrf)
}

/// Every operation of the running server's OpenAPI document, with its query
/// parameters and body fields.
async fn api_routes(http: &reqwest::Client, app: &TestApp) -> Vec<Route> {
    let document: Value = http
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let schemas = &document["components"]["schemas"];
    let resolve = |schema: &Value| -> Value {
        match schema["$ref"].as_str() {
            Some(reference) => schemas[reference.rsplit('/').next().unwrap()].clone(),
            None => schema.clone(),
        }
    };
    let mut routes = vec![Route {
        method: Method::GET,
        template: "/api/openapi.json".to_owned(),
        api: true,
        form: false,
        query: Vec::new(),
        fields: Vec::new(),
    }];
    for (path, operations) in document["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().unwrap() {
            let Ok(method) = Method::from_bytes(method.to_uppercase().as_bytes()) else {
                continue;
            };
            let query = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect();
            let body = resolve(&operation["requestBody"]["content"]["application/json"]["schema"]);
            let fields = body["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, schema)| {
                    let schema = resolve(schema);
                    let schema = schema["oneOf"]
                        .as_array()
                        .and_then(|options| options.iter().find(|o| o["type"] != "null"))
                        .map_or(schema.clone(), &resolve);
                    let types = match &schema["type"] {
                        Value::Array(types) => types
                            .iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect(),
                        Value::String(t) => vec![t.clone()],
                        _ => Vec::new(),
                    };
                    let field = if let Some(options) = schema["enum"].as_array() {
                        Field::OneOf(
                            options
                                .iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect(),
                        )
                    } else if types.iter().any(|t| t == "integer") {
                        Field::Integer
                    } else if types.iter().any(|t| t == "boolean") {
                        Field::Bool
                    } else {
                        Field::Text
                    };
                    (name.clone(), field)
                })
                .collect();
            routes.push(Route {
                method,
                template: path.clone(),
                api: path.starts_with("/api/"),
                form: false,
                query,
                fields,
            });
        }
    }
    assert!(
        routes.len() > 15,
        "the OpenAPI document lists too few operations"
    );
    routes
}

/// The fields each page form reads (see `src/http/web/*.rs`); a form route
/// not listed here gets the CSRF field and random ones.
const FORM_FIELDS: &[(&str, &[&str])] = &[
    ("/login", &["username", "password", "next"]),
    ("/logout", &["csrf_token"]),
    ("/settings/timezone", &["csrf_token", "timezone"]),
    (
        "/settings/calendars/{id}",
        &["csrf_token", "enabled", "color"],
    ),
    (
        "/settings/calendars/{id}/removals",
        &["csrf_token", "decision"],
    ),
    ("/settings/connections/{id}/sync", &["csrf_token"]),
    ("/settings/connections/{id}/disconnect", &["csrf_token"]),
    (
        "/settings/caldav",
        &[
            "csrf_token",
            "server_url",
            "username",
            "password",
            "allow_insecure",
        ],
    ),
    ("/settings/ics", &["csrf_token", "url", "name"]),
    ("/settings/email", &["csrf_token", "email"]),
    (
        "/settings/tokens",
        &["csrf_token", "name", "expires_in_days"],
    ),
    ("/settings/tokens/{id}/revoke", &["csrf_token"]),
    (
        "/settings/password",
        &[
            "csrf_token",
            "current_password",
            "new_password",
            "new_password_again",
        ],
    ),
    (
        "/settings/delete-account",
        &["csrf_token", "confirm_username", "password"],
    ),
];

/// Query parameters the pages read.
const PAGE_QUERIES: &[(&str, &[&str])] = &[
    ("/login", &["next"]),
    ("/settings", &["connected", "error"]),
];

/// Every page route of `src/http/web.rs`, read from its source: GET for
/// each, POST for those with a form.
fn page_routes() -> Vec<Route> {
    let source = include_str!("../src/http/web.rs");
    let mut routes = Vec::new();
    for chunk in source.split(".route(").skip(1) {
        let Some(path) = chunk.split('"').nth(1) else {
            continue;
        };
        let handlers = chunk.split(".route(").next().unwrap_or_default();
        let handlers = handlers.split(".layer(").next().unwrap_or_default();
        let listed = FORM_FIELDS.iter().find(|(p, _)| *p == path);
        let mut methods = vec![Method::GET];
        if handlers.contains("post(") {
            methods.push(Method::POST);
        }
        for method in methods {
            let form = method == Method::POST;
            let fields = if form {
                listed
                    .map_or(&["csrf_token"][..], |(_, fields)| fields)
                    .iter()
                    .map(|f| ((*f).to_owned(), Field::Text))
                    .collect()
            } else {
                Vec::new()
            };
            let query = PAGE_QUERIES
                .iter()
                .find(|(p, _)| *p == path && !form)
                .map_or(Vec::new(), |(_, q)| {
                    q.iter().map(|q| (*q).to_owned()).collect()
                });
            routes.push(Route {
                method,
                template: path.to_owned(),
                api: false,
                form,
                query,
                fields,
            });
        }
    }
    assert!(
        routes.iter().any(|r| r.template == "/login" && r.form),
        "no page routes found in src/http/web.rs"
    );
    routes
}

// ---------------------------------------------------------------------------
// Requests.
// ---------------------------------------------------------------------------

/// Who a case claims to be; credentials are filled in when it is sent.
#[derive(Clone, Copy, Debug)]
enum Auth {
    Anonymous,
    Bearer(usize),
    /// The session cookie; `csrf_header`: `X-CSRF-Token` with the session's
    /// token; `origin`: calsync's own `Origin`.
    Session {
        user: usize,
        csrf_header: bool,
        origin: bool,
    },
}

impl Auth {
    fn user(self) -> Option<usize> {
        match self {
            Self::Anonymous => None,
            Self::Bearer(user) | Self::Session { user, .. } => Some(user),
        }
    }
}

#[derive(Clone, Debug)]
enum FormValue {
    /// `key` without `=`.
    Bare,
    /// The session's CSRF token.
    Csrf,
    /// Sent as is (percent-encoded, or deliberately not).
    Encoded(String),
}

#[derive(Clone, Debug)]
enum Body {
    None,
    Bytes(Vec<u8>),
    Form(Vec<(String, FormValue)>),
}

/// One generated request, before credentials are filled in.
#[derive(Clone, Debug)]
struct Case {
    kind: &'static str,
    /// The route template it aims at (for the statistics and the report).
    route: String,
    form: bool,
    method: Method,
    /// Path and query, as written into the URL.
    path: String,
    auth: Auth,
    content_type: Option<Vec<u8>>,
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Body,
    /// May log the user out, revoke their token or change their password.
    may_end_credentials: bool,
}

/// A case ready to send.
struct Request {
    method: Method,
    url: reqwest::Url,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Vec<u8>,
}

impl Request {
    fn header_bytes(&self) -> usize {
        self.headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.as_bytes().len() + 4)
            .sum::<usize>()
            + self.url.as_str().len()
    }

    /// The request as a report shows it (long values shortened).
    fn describe(&self) -> String {
        let mut text = format!(
            "    {} {}\n",
            self.method,
            show_bytes(self.url.as_str().as_bytes(), 600)
        );
        for (name, value) in &self.headers {
            let shown = if matches!(name.as_str(), "authorization" | "cookie" | "x-csrf-token")
                && value.as_bytes().len() < 200
                && value
                    .to_str()
                    .is_ok_and(|v| v.contains("cst_") || v.contains("calsync_session="))
            {
                format!(
                    "{:?} (a valid credential)",
                    show_bytes(value.as_bytes(), 40)
                )
            } else {
                show_bytes(value.as_bytes(), 200)
            };
            let _ = writeln!(text, "    {name}: {shown}");
        }
        if !self.body.is_empty() {
            let _ = writeln!(text, "    body: {}", show_bytes(&self.body, 400));
        }
        text
    }
}

struct Answer {
    status: u16,
    content_type: String,
    retry_after: Option<String>,
    location: Option<String>,
    body: Vec<u8>,
}

/// The URL of a connect request (`server_url` or `url`; `https://` when it
/// has no scheme, as calsync assumes) has a host made of what host names
/// and IP addresses are made of.
fn names_a_host(body: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    let Some(url) = value["server_url"].as_str().or(value["url"].as_str()) else {
        return false;
    };
    let url = if url.contains("://") {
        url.to_owned()
    } else {
        format!("https://{url}")
    };
    reqwest::Url::parse(&url).is_ok_and(|url| {
        url.host_str().is_some_and(|host| {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
    })
}

/// `error.code` of a JSON error envelope with a non-empty message.
fn error_code(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let code = value["error"]["code"].as_str().filter(|c| !c.is_empty())?;
    value["error"]["message"]
        .as_str()
        .filter(|m| !m.is_empty())?;
    Some(code.to_owned())
}

fn show_bytes(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]);
    if bytes.len() > max {
        format!("{text:?}... ({} bytes)", bytes.len())
    } else {
        format!("{text:?}")
    }
}

fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let _ = write!(text, ": {e}");
        source = e.source();
    }
    text
}

fn tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn panic_context(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("panicked"))
        .unwrap_or(0);
    lines[at.saturating_sub(10)..(at + 10).min(lines.len())].join("\n")
}

/// Percent-encodes everything but unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The process of `app`'s `calsync serve`, found in /proc by its data folder.
fn server_pid(app: &TestApp) -> Option<u32> {
    let dir = app.db.dir.as_deref().unwrap_or(&app.data_dir);
    let wanted = format!("CALSYNC_DATA_DIR={}", dir.display());
    let binary = support::binary();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let mut args = cmdline.split(|&b| b == 0);
            if args.next()? != binary.as_bytes() || !args.any(|a| a == b"serve") {
                return None;
            }
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            (environ.split(|&b| b == 0).any(|v| v == wanted.as_bytes()) && process_alive(pid))
                .then_some(pid)
        })
}

/// The process exists and has not exited (a zombie has).
fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
        !matches!(state.and_then(|s| s.chars().next()), Some('Z' | 'X') | None)
    })
}

// ---------------------------------------------------------------------------
// Generation.
// ---------------------------------------------------------------------------

/// The proptest strategies and the seeded runner that draws from them.
struct Gen {
    runner: TestRunner,
    text: BoxedStrategy<String>,
    value: BoxedStrategy<Value>,
    instant: BoxedStrategy<String>,
}

const SPECIAL_TEXT: &[&str] = &[
    "",
    " ",
    "\t",
    "..",
    "../..",
    ".",
    "/",
    "//",
    "\\",
    "%",
    "%%",
    "%zz",
    "%0",
    "%00",
    "%2F",
    "%2e%2e",
    "%FF%FE",
    "%C3%28",
    "%E2%80%AE",
    "0",
    "-0",
    "1",
    "-1",
    "+1",
    "01",
    "1.5",
    "1e3",
    "1e309",
    "-1e309",
    "NaN",
    "inf",
    "0x10",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "99999999999999999999999999",
    "true",
    "null",
    "undefined",
    "[]",
    "{}",
    "\"",
    "'",
    "<script>alert(1)</script>",
    "' OR '1'='1",
    "${jndi:ldap://x/a}",
    "\u{0}",
    "a\u{0}b",
    "\r\n",
    "\u{feff}",
    "\u{202e}evil",
    "\u{1F600}",
    "\u{FB00}",
    "\u{130}",
    "\u{10FFFF}",
    "\u{DF}",
    "apply",
    "reject",
    "APPLY",
    "google",
    "microsoft",
    "caldav",
    "ics",
    "GOOGLE",
    "UTC",
    "Europe/Berlin",
    "America/Argentina/ComodRivadavia",
    "Mars/Olympus",
    "Etc/GMT+14",
    "posix/UTC",
    "../../etc/passwd",
    "#zzzzzz",
    "#ffffff",
    "#FFF",
    "#12345",
    "#1234567",
    "rgb(0,0,0)",
    "x@example.com",
    "@",
    "a@",
    "@b",
    "a@b@c",
    "a@b.c\u{0}",
    "webcal://127.0.0.1/x.ics",
    "http://127.0.0.1:9/",
    "https://[::1]/",
    "http://169.254.169.254/latest/",
    "http://[fe80::1%25eth0]/",
    "http://0/",
    "http://2130706433/",
    "file:///etc/passwd",
    "https://",
    "http://a:b@c/",
    "javascript:alert(1)",
    "//evil.example",
    "/\\evil.example",
    "/%09/evil.example",
    "/%2F%2Fevil.example",
    "/settings",
    "/",
    "/?next=//evil.example",
    "denied",
    "bad_state",
    "not_configured",
    "fuzz0",
    "fuzz1",
];

fn text_strategy() -> BoxedStrategy<String> {
    let specials: Vec<String> = SPECIAL_TEXT.iter().map(|s| (*s).to_owned()).collect();
    prop_oneof![
        5 => proptest::sample::select(specials),
        3 => any::<String>(),
        2 => "[ -~]{0,40}",
        1 => (0usize..7, "[A-Za-z%\u{e9}]").prop_map(|(size, unit)| {
            unit.repeat([100, 254, 255, 256, 257, 1000, 10_000][size])
        }),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|n| n.to_string()),
    ]
    .boxed()
}

fn value_strategy(text: BoxedStrategy<String>) -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text.prop_map(Value::String),
    ];
    leaf.prop_recursive(8, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::vec(("[a-z_]{0,12}", inner), 0..8)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
    .boxed()
}

const SPECIAL_INSTANTS: &[&str] = &[
    "2026-03-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59.999999999Z",
    "9999-12-30T22:00:00Z",
    "-009999-01-01T00:00:00Z",
    "-009999-01-02T00:00:00Z",
    "-9999-01-01T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "1900-01-01T00:00:00Z",
    "2038-01-19T03:14:08Z",
    "2026-02-29T00:00:00Z",
    "2024-02-29T00:00:00Z",
    "2026-12-31T23:59:60Z",
    "2026-13-01T00:00:00Z",
    "2026-01-01T24:00:00Z",
    "2026-01-01T00:00:00+25:00",
    "2026-01-01T00:00:00+23:59",
    "2026-01-01T00:00:00-23:59:59",
    "2026-01-01T00:00:00+14:00[Pacific/Kiritimati]",
    "2026-01-01T00:00:00Z[Mars/Olympus]",
    "2026-01-01",
    "2026-01-01T00:00:00",
    "2026-01-01t00:00:00z",
    "2026-01-01 00:00:00Z",
    "20260101T000000Z",
    "1767225600",
    "now",
    "",
    "2026-01-01T00:00:00.0000000001Z",
    "+2026-01-01T00:00:00Z",
    "+099999-01-01T00:00:00Z",
    "99999-01-01T00:00:00Z",
    "2026-W01-1T00:00:00Z",
    "P1D",
    "2026-01-01T00:00:00Z/2026-02-01T00:00:00Z",
    "2026-01-01T00:00:00,5Z",
];

fn instant_strategy(text: BoxedStrategy<String>) -> BoxedStrategy<String> {
    let specials: Vec<String> = SPECIAL_INSTANTS.iter().map(|s| (*s).to_owned()).collect();
    prop_oneof![
        4 => proptest::sample::select(specials),
        3 => (-9999i32..=9999, 0u8..=13, 0u8..=32, 0u8..=24, 0u8..=60, 0u8..=60).prop_map(|(y, mo, d, h, mi, s)| {
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
        }),
        3 => any::<i64>().prop_map(|seconds| {
            let seconds = seconds.clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second());
            Timestamp::from_second(seconds).map_or_else(|_| "1970-01-01T00:00:00Z".to_owned(), |t| t.to_string())
        }),
        1 => text,
    ]
    .boxed()
}

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "FUZZ", "get",
];

const CONTENT_TYPES: &[&str] = &[
    "text/plain",
    "application/x-www-form-urlencoded",
    "application/json; charset=utf-16",
    "application/json;;;",
    "APPLICATION/JSON",
    "application/vnd.calsync+json",
    "application/jsonx",
    "application/json, text/plain",
    "multipart/form-data; boundary=fuzz",
    "multipart/form-data",
    "application/x-www-form-urlencoded; charset=latin1",
    "*/*",
    "json",
    "",
    ";",
    "application/\u{e9}",
];

impl Gen {
    fn new(seed: u64, kind: BackendKind) -> Self {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        bytes[8] = match kind {
            BackendKind::Sqlite => 1,
            BackendKind::Postgres => 2,
        };
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
        let text = text_strategy();
        Self {
            runner: TestRunner::new_with_rng(Config::default(), rng),
            value: value_strategy(text.clone()),
            instant: instant_strategy(text.clone()),
            text,
        }
    }

    fn draw<S: Strategy>(&mut self, strategy: &S) -> S::Value {
        strategy
            .new_tree(&mut self.runner)
            .expect("a generated value")
            .current()
    }

    fn below(&mut self, n: usize) -> usize {
        (self.runner.rng().next_u64() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }

    fn weighted(&mut self, weights: &[usize]) -> usize {
        let mut roll = self.below(weights.iter().sum());
        for (i, w) in weights.iter().enumerate() {
            if roll < *w {
                return i;
            }
            roll -= w;
        }
        weights.len() - 1
    }

    fn text(&mut self) -> String {
        let strategy = self.text.clone();
        self.draw(&strategy)
    }

    fn value(&mut self) -> Value {
        let strategy = self.value.clone();
        self.draw(&strategy)
    }

    fn instant(&mut self) -> String {
        let strategy = self.instant.clone();
        self.draw(&strategy)
    }

    /// A user who may be sent writes (not user 0, whose events stay).
    fn writer(&mut self) -> usize {
        1 + self.below(USERS - 1)
    }

    /// Mostly valid credentials, so that handlers are reached.
    fn auth(&mut self, method: &Method, form: bool) -> Auth {
        let user = if matches!(*method, Method::GET | Method::HEAD) {
            self.below(USERS)
        } else {
            self.writer()
        };
        match self.weighted(&[
            if form { 10 } else { 55 },
            if form { 75 } else { 25 },
            8,
            4,
            8,
        ]) {
            0 => Auth::Bearer(user),
            1 => Auth::Session {
                user,
                csrf_header: true,
                origin: true,
            },
            2 => Auth::Session {
                user,
                csrf_header: self.chance(50),
                origin: self.chance(50),
            },
            3 => Auth::Bearer(user),
            _ => Auth::Anonymous,
        }
    }

    /// One case: a route and a kind of hostile input.
    fn case(&mut self, target: &Target) -> Case {
        match self.weighted(&[20, 14, 10, 14, 20, 5, 4, 3, 10]) {
            0 => self.json_case(target),
            1 => self.query_case(target),
            2 => self.path_case(target),
            3 => self.header_case(target),
            4 => self.form_case(target),
            5 => self.page_case(target),
            6 => self.method_case(target),
            7 => self.login_case(target),
            _ => self.range_case(),
        }
    }

    fn route<'a>(&mut self, target: &'a Target, filter: impl Fn(&Route) -> bool) -> &'a Route {
        let routes: Vec<&Route> = target.routes.iter().filter(|r| filter(r)).collect();
        assert!(!routes.is_empty(), "no route fits");
        routes[self.below(routes.len())]
    }

    /// A case aimed at `route`, well-formed but for what the caller changes.
    fn base_case(&mut self, kind: &'static str, route: &Route, target: &Target) -> Case {
        let auth = self.auth(&route.method, route.form);
        let path = self.fill(&route.template, target, auth);
        let ids = self.ids(target, auth, 70);
        let (content_type, body) = if route.form {
            let fields: Vec<String> = route.fields.iter().map(|(f, _)| f.clone()).collect();
            (
                Some(b"application/x-www-form-urlencoded".to_vec()),
                Body::Form(self.form_fields(&route.template, &fields, false)),
            )
        } else if !route.fields.is_empty() {
            (
                Some(b"application/json".to_vec()),
                Body::Bytes(
                    serde_json::to_vec(&self.shaped_object(&route.fields, 90, &ids, false))
                        .unwrap(),
                ),
            )
        } else {
            (None, Body::None)
        };
        Case {
            kind,
            route: route.template.clone(),
            form: route.form,
            method: route.method.clone(),
            may_end_credentials: may_end_credentials(&route.method, &route.template),
            path,
            auth,
            content_type,
            headers: Vec::new(),
            body,
        }
    }

    /// The template with its path parameters filled in.
    fn fill(&mut self, template: &str, target: &Target, auth: Auth) -> String {
        let mut path = String::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            path.push_str(&rest[..open]);
            let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
            let name = &rest[open + 1..close.saturating_sub(1)];
            let value = if name == "provider" {
                if self.chance(60) {
                    self.pick(&[
                        "google",
                        "microsoft",
                        "caldav",
                        "ics",
                        "Google",
                        "apple",
                        "",
                    ])
                    .to_owned()
                } else {
                    self.path_param()
                }
            } else if self.chance(45) {
                let ids = self.ids(target, auth, 70);
                self.pick(&ids).to_string()
            } else if self.chance(30) {
                self.below(12).to_string()
            } else {
                self.path_param()
            };
            // A disconnect takes the user's calendars and events with it:
            // never of the kept connections.
            let kept = value.parse().is_ok_and(|id: i64| target.kept.contains(&id));
            let value = if kept && template.contains("disconnect") {
                "0".to_owned()
            } else {
                value
            };
            path.push_str(&value);
            rest = &rest[close..];
        }
        path.push_str(rest);
        path
    }

    /// Real ids: mostly the requesting user's own, some of other users.
    fn ids(&mut self, target: &Target, auth: Auth, own_percent: usize) -> Vec<i64> {
        match auth.user() {
            Some(user) if self.chance(own_percent) && !target.own[user].is_empty() => {
                target.own[user].clone()
            }
            _ => target.ids.clone(),
        }
    }

    fn path_param(&mut self) -> String {
        const IDS: &[&str] = &[
            "-1",
            "0",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "99999999999999999999999",
            "1.0",
            "1e2",
            "0x1",
            "+1",
            "%201",
            "1%20",
            "%EF%BC%91",
            "%D9%A3",
            "abc",
            "..",
            ".",
            "%2e%2e",
            "%2F",
            "%00",
            "%FF",
            "%C3%A9",
            "%F0%9F%98%80",
            "1;DROP%20TABLE%20users",
            "%31",
            "-",
            "null",
            "1%2F2",
            "%25",
            "%",
            "%zz",
            "%E2%80%AE1",
        ];
        match self.weighted(&[4, 2, 3, 1]) {
            0 => self.pick(IDS).to_owned(),
            1 => self.draw(&any::<i64>()).to_string(),
            2 => encode(&self.text()),
            _ => self.text(),
        }
    }

    /// An object with the documented fields (each present with
    /// `present` percent), mostly plausible values, some wrong types.
    /// `hostile`: wrong types and unknown fields too; otherwise mostly
    /// values the field takes, for cases whose hostile part is elsewhere.
    fn shaped_object(
        &mut self,
        fields: &[(String, Field)],
        present: usize,
        ids: &[i64],
        hostile: bool,
    ) -> Value {
        let mut object = serde_json::Map::new();
        let weights: &[usize] = if hostile { &[40, 30, 30] } else { &[85, 15, 0] };
        for (name, field) in fields {
            if !self.chance(present) {
                continue;
            }
            let value = match self.weighted(weights) {
                0 => self
                    .named(name, ids)
                    .unwrap_or_else(|| self.plausible(field)),
                1 => self.plausible(field),
                _ => self.value(),
            };
            object.insert(name.clone(), value);
        }
        if hostile && self.chance(10) {
            let name = self.draw(&"[a-z_]{1,12}");
            let value = self.value();
            object.insert(name, value);
        }
        Value::Object(object)
    }

    /// Values that the field of this name takes, valid ones among them, so
    /// that success paths are reached too.
    fn named(&mut self, name: &str, ids: &[i64]) -> Option<Value> {
        Some(match name {
            "color" => json!(self.pick(&[
                "#ff0000",
                "#00aa00",
                "#3366cc",
                "#FFF",
                "#zzzzzz",
                "red",
                "",
                "#12345678"
            ])),
            "timezone" => json!(self.pick(&[
                "UTC",
                "Europe/Berlin",
                "America/New_York",
                "Mars/Olympus",
                "",
                "utc",
                "EST5EDT",
                "Etc/GMT+14",
                "../../etc/passwd",
            ])),
            "email" => match self.below(5) {
                0 => json!(null),
                1 => json!(format!(
                    "{}@example.com",
                    "x".repeat(self.pick(&[1, 242, 243, 300]))
                )),
                _ => json!(self.pick(&[
                    "x@example.com",
                    "",
                    "a@b",
                    "@",
                    "x@example.com\n",
                    "x y@example.com"
                ])),
            },
            "name" => json!(self.pick(&[
                "fuzz token".to_owned(),
                String::new(),
                " ".to_owned(),
                "x".repeat(100),
                "x".repeat(101),
                "\u{e9}".repeat(100),
                "\u{0}".to_owned(),
            ])),
            "username" => json!(self.pick(&["fuzz0", "fuzz1", "fuzz2", "fuzz3", "", "root"])),
            "connection_id" | "expires_in_days" if self.chance(50) && !ids.is_empty() => {
                json!(self.pick(ids))
            }
            "url" | "server_url" => json!(self.pick(&[
                "https://calendar.invalid/feed.ics",
                "webcal://calendar.invalid/feed.ics",
                "http://127.0.0.1:9/feed.ics",
                "http://[::1]/",
                "http://169.254.169.254/latest/meta-data/",
                "http://0/",
                "http://2130706433/",
                "file:///etc/passwd",
                "gopher://calendar.invalid/",
                "https://user:pass@calendar.invalid/",
                "https://",
                "calendar.invalid",
                "",
            ])),
            "decision" => json!(self.pick(&["apply", "reject", "APPLY", ""])),
            "allow_insecure" | "enabled" => json!(self.pick(&[true, false])),
            _ => return None,
        })
    }

    fn plausible(&mut self, field: &Field) -> Value {
        match field {
            Field::Text => {
                if self.chance(10) {
                    Value::Null
                } else {
                    Value::String(self.text())
                }
            }
            Field::Integer => self.pick(&[
                json!(0),
                json!(1),
                json!(-1),
                json!(30),
                json!(3650),
                json!(3651),
                json!(4_294_967_296_u64),
                json!(i64::MAX),
                json!(i64::MIN),
                json!(u64::MAX),
                json!(1.5),
                json!(1e300),
                json!(-0.0),
                json!(null),
                json!("1"),
            ]),
            Field::Bool => self.pick(&[
                json!(true),
                json!(false),
                json!(null),
                json!(0),
                json!("true"),
            ]),
            Field::OneOf(options) => {
                if self.chance(70) && !options.is_empty() {
                    Value::String(self.pick(options))
                } else {
                    Value::String(self.text())
                }
            }
        }
    }

    /// JSON bodies of every kind at a route that takes one (or any route).
    fn json_case(&mut self, target: &Target) -> Case {
        let with_body = self.chance(75);
        let route = self
            .route(target, |r| r.api && (!with_body || !r.fields.is_empty()))
            .clone();
        let mut case = self.base_case("json body", &route, target);
        let ids = self.ids(target, case.auth, 70);
        let field = route
            .fields
            .first()
            .map_or_else(|| "x".to_owned(), |(name, _)| name.clone());
        let body: Vec<u8> = match self.weighted(&[28, 18, 10, 8, 8, 6, 6, 6, 5, 5]) {
            0 => serde_json::to_vec(&self.shaped_object(&route.fields, 75, &ids, true)).unwrap(),
            1 => serde_json::to_vec(&self.value()).unwrap(),
            2 => {
                let whole = serde_json::to_vec(&self.shaped_object(&route.fields, 90, &ids, false))
                    .unwrap();
                let cut = self.below(whole.len().max(1));
                whole[..cut].to_vec()
            }
            3 => {
                let depth = self.pick(&[10, 127, 128, 129, 1000, 20_000, 40_000]);
                let (open, close) = self.pick(&[("[", "]"), ("{\"a\":", "}"), ("[{\"a\":", "}]")]);
                let closed = self.chance(50);
                let mut text = format!("{{\"{field}\":");
                text.push_str(&open.repeat(depth));
                text.push('1');
                if closed {
                    text.push_str(&close.repeat(depth));
                    text.push('}');
                }
                text.into_bytes()
            }
            4 => {
                let size = self.pick(&[
                    1_000,
                    60_000,
                    BODY_LIMIT - 16,
                    BODY_LIMIT + 1,
                    300_000,
                    1_048_576,
                ]);
                let unit = self.pick(&["a", "\u{e9}", "\\u0000", "\\\"", " "]);
                let mut text = format!("{{\"{field}\":\"");
                text.push_str(&unit.repeat(size / unit.len()));
                text.push_str("\"}");
                text.into_bytes()
            }
            5 => {
                let mut bytes = format!("{{\"{field}\":\"a").into_bytes();
                let bad: &[u8] = self.pick(&[
                    &b"\xff\xfe"[..],
                    b"\xc3\x28",
                    b"\xed\xa0\x80",
                    b"\xf4\x90\x80\x80",
                    b"\xc0\xaf",
                    b"\x00",
                    b"\x80",
                ]);
                bytes.extend_from_slice(bad);
                bytes.extend_from_slice(b"b\"}");
                bytes
            }
            6 => {
                let value = self.pick(&[
                    "\"\\ud800\"",
                    "\"\\udc00\\ud800\"",
                    "\"\\u0000\"",
                    "\"\\x41\"",
                    "1e999999",
                    "-1e999999",
                    "-0",
                    "1.0",
                    "01",
                    "1_000",
                    "NaN",
                    "Infinity",
                    "0x10",
                    "true false",
                    "[1,]",
                    "{\"a\":1,}",
                    "\"a\" \"b\"",
                ]);
                let duplicate = self.chance(30);
                let mut text = format!("{{\"{field}\":{value}");
                if duplicate {
                    let _ = write!(text, ",\"{field}\":{value}");
                }
                text.push('}');
                text.into_bytes()
            }
            7 => self
                .pick(&[
                    "",
                    " ",
                    "\n\t ",
                    "null",
                    "[]",
                    "\"x\"",
                    "0",
                    "\u{feff}{}",
                    "{}",
                    "{}{}",
                    "{} x",
                    "true",
                ])
                .as_bytes()
                .to_vec(),
            8 => self.draw(&proptest::collection::vec(any::<u8>(), 0..300)),
            _ => self
                .pick(&[
                    "a=b&c=d",
                    "<a/>",
                    "{'a':1}",
                    "{a:1}",
                    "{\"a\":1,}",
                    "[1,2,3",
                    "{\"",
                    "{\"a\"",
                    "{\"a\":",
                    "\"unterminated",
                    "/* comment */ {}",
                ])
                .as_bytes()
                .to_vec(),
        };
        case.body = Body::Bytes(body);
        if self.chance(15) {
            case.content_type = match self.below(3) {
                0 => None,
                _ => Some(self.pick(CONTENT_TYPES).as_bytes().to_vec()),
            };
        } else {
            case.content_type = Some(b"application/json".to_vec());
        }
        if self.chance(10) {
            case.method = self.any_method();
            self.keep_reader_read_only(&mut case);
        }
        case
    }

    /// User 0 is only sent reads: a case whose method changed to a write
    /// goes to another user.
    fn keep_reader_read_only(&mut self, case: &mut Case) {
        if matches!(case.method, Method::GET | Method::HEAD) {
            return;
        }
        case.auth = match case.auth {
            Auth::Bearer(0) => Auth::Bearer(self.writer()),
            Auth::Session {
                user: 0,
                csrf_header,
                origin,
            } => Auth::Session {
                user: self.writer(),
                csrf_header,
                origin,
            },
            other => other,
        };
    }

    fn any_method(&mut self) -> Method {
        Method::from_bytes(self.pick(METHODS).as_bytes()).unwrap()
    }

    /// Absurd values for the documented query parameters, and random ones.
    fn query_case(&mut self, target: &Target) -> Case {
        let documented = self.chance(75);
        let route = self
            .route(target, |r| !r.form && (!documented || !r.query.is_empty()))
            .clone();
        let mut case = self.base_case("query string", &route, target);
        let query = self.query(&route.query);
        case.path = format!("{}?{query}", case.path);
        case
    }

    fn query(&mut self, known: &[String]) -> String {
        if self.chance(10) {
            return match self.below(4) {
                0 => self.text(),
                1 => "&&&==&=&a".to_owned(),
                2 => format!("{}={}", "k".repeat(self.pick(&[1000, 20_000, 70_000])), "v"),
                _ => String::from_utf8_lossy(
                    &self.draw(&proptest::collection::vec(any::<u8>(), 0..100)),
                )
                .into_owned(),
            };
        }
        let mut pairs = Vec::new();
        for name in known {
            if !self.chance(80) {
                continue;
            }
            let value = self.query_value(name);
            pairs.push(format!("{name}={value}"));
            if self.chance(10) {
                let again = self.query_value(name);
                pairs.push(format!("{name}={again}"));
            }
        }
        for _ in 0..self.below(3) {
            let name = self.text();
            let value = self.text();
            pairs.push(format!("{}={}", encode(&name), encode(&value)));
        }
        if self.chance(10) {
            pairs.push(
                self.pick(&[
                    "%", "a=%zz", "%FF=%FE", "a", "=", "a==b", "a=%00", "a[]=1", "a[b]=1",
                ])
                .to_owned(),
            );
        }
        pairs.join("&")
    }

    fn query_value(&mut self, name: &str) -> String {
        let value = match name {
            "start" | "end" => self.instant(),
            "limit" | "days" | "connection_id" | "expires_in_days" => {
                if self.chance(60) {
                    self.pick(&[
                        "0",
                        "1",
                        "50",
                        "366",
                        "367",
                        "500",
                        "501",
                        "5000",
                        "-1",
                        "4294967295",
                        "4294967296",
                        "18446744073709551616",
                        "1e2",
                        "1.5",
                        "",
                        " 5",
                        "+5",
                        "0x1f",
                        "\u{663}",
                        "NaN",
                        "9".repeat(40).as_str(),
                    ])
                    .to_owned()
                } else {
                    self.text()
                }
            }
            _ => self.text(),
        };
        if self.chance(85) {
            encode(&value)
        } else {
            value
        }
    }

    /// Range queries and upcoming events over the users' series.
    fn range_case(&mut self) -> Case {
        let upcoming = self.chance(25);
        let (route, query) = if upcoming {
            let limit = self.query_value("limit");
            let days = self.query_value("days");
            (
                "/api/calendar/events/upcoming/",
                format!("limit={limit}&days={days}"),
            )
        } else {
            let start = if self.chance(70) {
                self.instant()
            } else {
                self.pick(&[
                    Timestamp::MAX.to_string(),
                    Timestamp::MIN.to_string(),
                    Timestamp::now().to_string(),
                ])
            };
            let end = match start.parse::<Timestamp>() {
                Ok(at) if self.chance(70) => {
                    let span = self.pick(&[
                        1,
                        3600,
                        86_400,
                        86_400 * 400,
                        86_400 * 366 * 2 - 1,
                        86_400 * 366 * 2,
                        86_400 * 366 * 2 + 1,
                        -1,
                        0,
                    ]);
                    at.checked_add(SignedDuration::from_secs(span))
                        .map_or_else(|_| Timestamp::MAX.to_string(), |t| t.to_string())
                }
                _ => self.instant(),
            };
            (
                "/api/calendar/events/",
                format!("start={}&end={}", encode(&start), encode(&end)),
            )
        };
        Case {
            kind: "range query",
            route: route.to_owned(),
            form: false,
            method: Method::GET,
            path: format!("{route}?{query}"),
            auth: Auth::Bearer(self.below(USERS)),
            content_type: None,
            headers: Vec::new(),
            body: Body::None,
            may_end_credentials: false,
        }
    }

    /// Hostile path parameters, and paths that are almost routes.
    fn path_case(&mut self, target: &Target) -> Case {
        let with_param = self.chance(70);
        let route = self
            .route(target, |r| !with_param || r.template.contains('{'))
            .clone();
        let mut case = self.base_case("path", &route, target);
        if !with_param || self.chance(30) {
            let segment = self.path_param();
            case.path = match self.below(7) {
                0 => format!("{}{segment}", case.path),
                1 => format!("{}/{segment}/", case.path.trim_end_matches('/')),
                2 => case.path.replacen('/', "//", 2),
                3 => case.path.trim_end_matches('/').to_owned(),
                4 => case.path.to_uppercase(),
                5 => format!("/api/{segment}"),
                _ => format!("/api/calendar/{segment}/"),
            };
            case.route = format!("{} (altered)", route.template);
        }
        case
    }

    /// The headers calsync reads, with odd values, on any route.
    fn header_case(&mut self, target: &Target) -> Case {
        let route = self.route(target, |_| true).clone();
        let mut case = self.base_case("headers", &route, target);
        for _ in 0..1 + self.below(4) {
            let header = self.hostile_header();
            if header.0 == "content-type" {
                case.content_type = Some(header.1);
            } else {
                case.headers.push(header);
            }
        }
        case
    }

    fn hostile_header(&mut self) -> (&'static str, Vec<u8>) {
        let text = |g: &mut Self| g.text().into_bytes();
        let non_utf8 = b"\xff\xfe\x80 caf\xe9".to_vec();
        match self.below(16) {
            0 => (
                "authorization",
                match self.below(8) {
                    0 => self
                        .pick(&[
                            "Bearer",
                            "Bearer ",
                            "Bearer  \t ",
                            "bearer cst_x",
                            "BEARER cst_x",
                            "Token cst_x",
                            "Basic ZnV6ejA6eA==",
                            "Bearer cst_\u{e9}",
                        ])
                        .as_bytes()
                        .to_vec(),
                    1 => format!(
                        "Bearer cst_{}",
                        "A".repeat(self.pick(&[250, 251, 252, 253, 256, 257, 5000, 60_000]))
                    )
                    .into_bytes(),
                    2 => [b"Bearer ".to_vec(), non_utf8].concat(),
                    3 => format!("Bearer cst_{}", self.draw(&"[A-Za-z0-9_-]{43}")).into_bytes(),
                    4 => "x".repeat(500_000).into_bytes(),
                    _ => [b"Bearer ".to_vec(), text(self)].concat(),
                },
            ),
            1 | 2 => (
                "cookie",
                match self.below(9) {
                    0 => format!(
                        "calsync_session={}",
                        "a".repeat(self.pick(&[0, 127, 128, 129, 5000]))
                    )
                    .into_bytes(),
                    1 => b"calsync_session=x; calsync_session=y; calsync_csrf=z".to_vec(),
                    2 => self
                        .pick(&[
                            "=;=;;",
                            "calsync_session",
                            ";;;;",
                            "calsync_session==",
                            " calsync_session = x ",
                            "calsync_session=\"x\"",
                        ])
                        .as_bytes()
                        .to_vec(),
                    3 => {
                        let flag = self.pick(&["o", "e", "x", "", "\u{e9}"]);
                        let payload = self.pick(&[
                            "",
                            "!!",
                            "====",
                            "AAAA",
                            "____",
                            "8J-YgA",
                            "_w",
                            "\u{e9}\u{e9}",
                        ]);
                        let repeat = self.pick(&[1, 1, 3000]);
                        format!("calsync_flash={flag}{}", payload.repeat(repeat)).into_bytes()
                    }
                    4 => [b"calsync_session=".to_vec(), non_utf8].concat(),
                    5 => "a=b; ".repeat(self.pick(&[100, 2000])).into_bytes(),
                    6 => [b"calsync_session=".to_vec(), text(self)].concat(),
                    7 => [b"calsync_csrf=".to_vec(), text(self)].concat(),
                    _ => text(self),
                },
            ),
            3 => (
                "origin",
                self.pick(&[
                    "null",
                    "http://localhost:8000",
                    "http://localhost:8000/",
                    "HTTP://LOCALHOST:8000",
                    "http://localhost:8000.evil.example",
                    "https://evil.example",
                    "http://127.0.0.1",
                    "",
                    "://",
                    "http://[::1",
                    "http://localhost:8000@evil.example",
                    "file://",
                ])
                .as_bytes()
                .to_vec(),
            ),
            4 => (
                "referer",
                match self.below(3) {
                    0 => self
                        .pick(&[
                            "http://localhost:8000/settings",
                            "http://evil.example/",
                            "/settings",
                            "",
                            "http://localhost:8000@evil.example/",
                            "http://localhost:8000?x",
                            "http://localhost:8000#",
                            "://x",
                            "http://",
                            "\u{e9}://",
                        ])
                        .as_bytes()
                        .to_vec(),
                    1 => non_utf8,
                    _ => text(self),
                },
            ),
            5 => (
                "sec-fetch-site",
                self.pick(&[
                    "cross-site",
                    "same-origin",
                    "none",
                    "same-site",
                    "CROSS-SITE",
                    "",
                    "cross-site, same-origin",
                ])
                .as_bytes()
                .to_vec(),
            ),
            6 => ("content-type", self.pick(CONTENT_TYPES).as_bytes().to_vec()),
            7 | 8 => (
                "x-forwarded-for",
                match self.below(6) {
                    0 => self
                        .pick(&[
                            "",
                            ",",
                            " , ,",
                            "unknown",
                            "1.2.3.4",
                            "1.2.3.4, 127.0.0.1",
                            "::1",
                            "[::1]:80",
                            "999.999.999.999",
                            "1.2.3.4:99999",
                            "[fe80::1%eth0]",
                            "::ffff:127.0.0.1",
                            "127.0.0.1, unknown",
                            "_hidden",
                            "2001:db8::1, 10.0.0.1",
                        ])
                        .as_bytes()
                        .to_vec(),
                    1 => {
                        let hops = self.pick(&[10, 1000, 5000]);
                        "203.0.113.9, ".repeat(hops).into_bytes()
                    }
                    2 => {
                        let a: [u8; 4] = self.draw(&any::<[u8; 4]>());
                        std::net::Ipv4Addr::from(a).to_string().into_bytes()
                    }
                    3 => {
                        let a: [u8; 16] = self.draw(&any::<[u8; 16]>());
                        std::net::Ipv6Addr::from(a).to_string().into_bytes()
                    }
                    4 => non_utf8,
                    _ => text(self),
                },
            ),
            9 => (
                "forwarded",
                match self.below(2) {
                    0 => self
                        .pick(&[
                            "for=1.2.3.4",
                            "for=\"[2001:db8::1]:4711\"",
                            "for=unknown",
                            "for=",
                            "for=\"",
                            ";;;",
                            "by=1;for=2;proto=http",
                            "For=1.2.3.4, for=5.6.7.8",
                            "for=\"_x\"",
                            "for=[::1]",
                            "for=1.2.3.4;for=5.6.7.8",
                        ])
                        .as_bytes()
                        .to_vec(),
                    _ => text(self),
                },
            ),
            10 => (
                "if-match",
                match self.below(2) {
                    0 => self
                        .pick(&["*", "\"x\"", "W/\"x\"", "", "\"", "W/"])
                        .as_bytes()
                        .to_vec(),
                    _ => text(self),
                },
            ),
            11 => (
                "accept",
                self.pick(&[
                    "text/html",
                    "application/json",
                    "*/*",
                    "",
                    "text/event-stream",
                    "application/json;q=0",
                    "text/html;q=0, application/json",
                    "\u{e9}/\u{e9}",
                ])
                .as_bytes()
                .to_vec(),
            ),
            12 => (
                "host",
                match self.below(2) {
                    0 => self
                        .pick(&[
                            "localhost:8000",
                            "evil.example",
                            "",
                            "[::1]:99999",
                            "127.0.0.1:1",
                            "a b",
                            "localhost:8000:8000",
                        ])
                        .as_bytes()
                        .to_vec(),
                    _ => text(self),
                },
            ),
            13 => (
                "x-csrf-token",
                match self.below(2) {
                    0 => "A".repeat(self.pick(&[0, 43, 44, 10_000])).into_bytes(),
                    _ => text(self),
                },
            ),
            14 => ("if-none-match", text(self)),
            _ => (
                self.pick(&[
                    "last-event-id",
                    "accept-language",
                    "user-agent",
                    "range",
                    "content-encoding",
                    "accept-encoding",
                ]),
                text(self),
            ),
        }
    }

    /// Page forms: known and random fields, duplicates, missing fields,
    /// invalid percent-encoding.
    fn form_case(&mut self, target: &Target) -> Case {
        let route = self
            .route(target, |r| r.form && r.template != "/login")
            .clone();
        let mut case = self.base_case("form", &route, target);
        let fields: Vec<String> = route.fields.iter().map(|(f, _)| f.clone()).collect();
        case.body = if self.chance(12) {
            Body::Bytes(match self.below(3) {
                0 => self
                    .pick(&[
                        "",
                        "&&&",
                        "=&=",
                        "%",
                        "a=%",
                        "%zz=1",
                        "csrf_token=%FF%FE",
                        "csrf_token",
                        "csrf_token=a=b=c",
                        "+=+",
                        "a=1;b=2",
                    ])
                    .as_bytes()
                    .to_vec(),
                1 => self.draw(&proptest::collection::vec(any::<u8>(), 0..200)),
                _ => serde_json::to_vec(&self.value()).unwrap(),
            })
        } else {
            Body::Form(self.form_fields(&route.template, &fields, true))
        };
        if self.chance(8) {
            case.content_type = match self.below(3) {
                0 => None,
                _ => Some(self.pick(CONTENT_TYPES).as_bytes().to_vec()),
            };
        }
        case
    }

    /// Form fields for a page form: the CSRF token mostly right, other
    /// fields with plausible or hostile values.
    fn form_fields(
        &mut self,
        template: &str,
        fields: &[String],
        hostile: bool,
    ) -> Vec<(String, FormValue)> {
        let mut pairs = Vec::new();
        for name in fields {
            if hostile && !self.chance(85) {
                continue;
            }
            let value = if name == "csrf_token" {
                match self.weighted(&[80, 10, 10]) {
                    0 => FormValue::Csrf,
                    1 => FormValue::Encoded(encode(&self.text())),
                    _ => FormValue::Bare,
                }
            } else {
                FormValue::Encoded(self.form_value(template, name, hostile))
            };
            pairs.push((name.clone(), value));
        }
        if hostile && self.chance(15) && !pairs.is_empty() {
            let again = pairs[self.below(pairs.len())].clone();
            pairs.push(again);
        }
        if hostile && self.chance(15) {
            let name = encode(&self.text());
            let value = encode(&self.text());
            pairs.push((name, FormValue::Encoded(value)));
        }
        if hostile && self.chance(10) && pairs.len() > 1 {
            let i = self.below(pairs.len());
            let j = self.below(pairs.len());
            pairs.swap(i, j);
        }
        pairs
    }

    fn form_value(&mut self, template: &str, name: &str, hostile: bool) -> String {
        let plausible = match (template, name) {
            (_, "enabled" | "allow_insecure") => {
                Some(self.pick(&["on", "true", "false", "", "1"]).to_owned())
            }
            (_, "color") => Some(
                self.pick(&["#ff0000", "#FFF", "#zzzzzz", "", "red", "#12345678"])
                    .to_owned(),
            ),
            (_, "decision") => Some(self.pick(&["apply", "reject", "Apply", ""]).to_owned()),
            (_, "timezone") => Some(
                self.pick(&["UTC", "Europe/Berlin", "Mars/Olympus", "", "utc", "EST5EDT"])
                    .to_owned(),
            ),
            (_, "expires_in_days") => Some(
                self.pick(&["", "1", "30", "3650", "3651", "0", "-1", "4294967296"])
                    .to_owned(),
            ),
            (_, "next") => Some(
                self.pick(&[
                    "/",
                    "/settings",
                    "//evil.example",
                    "/%2F%2Fevil.example",
                    "https://evil.example",
                ])
                .to_owned(),
            ),
            _ => None,
        };
        let value = match plausible {
            Some(v) if !hostile || self.chance(50) => v,
            _ => self.text(),
        };
        match self.weighted(&[80, 10, 10]) {
            0 => encode(&value),
            1 => value.replace(' ', "+"),
            _ => format!(
                "{value}{}",
                self.pick(&["%", "%z", "%FF", "%C3%28", "%00", "+%2"])
            ),
        }
    }

    /// GET pages with odd queries and the `Accept` header that picks the
    /// error's form.
    fn page_case(&mut self, target: &Target) -> Case {
        let route = self.route(target, |r| !r.api && !r.form).clone();
        let mut case = self.base_case("page", &route, target);
        let query = self.query(&route.query);
        if !query.is_empty() {
            case.path = format!("{}?{query}", case.path);
        }
        if self.chance(50) {
            let accept = self.pick(&[
                "text/html",
                "application/json",
                "*/*",
                "text/html,application/xhtml+xml",
            ]);
            case.headers.push(("accept", accept.as_bytes().to_vec()));
        }
        if self.chance(30) {
            let header = self.hostile_header();
            case.headers.push(header);
        }
        case
    }

    /// Any route with another method.
    fn method_case(&mut self, target: &Target) -> Case {
        let route = self.route(target, |_| true).clone();
        let mut case = self.base_case("method", &route, target);
        case.method = self.any_method();
        if case.method == Method::HEAD || case.method == Method::GET {
            case.body = Body::None;
        }
        case.may_end_credentials = may_end_credentials(&case.method, &route.template);
        self.keep_reader_read_only(&mut case);
        case
    }

    /// The login form: real and made-up users, right and wrong passwords,
    /// hostile `next`, from many client addresses (through the trusted
    /// proxy header) or from one, which the throttle then holds back.
    fn login_case(&mut self, target: &Target) -> Case {
        let route = self
            .route(target, |r| r.form && r.template == "/login")
            .clone();
        let mut case = self.base_case("login", &route, target);
        case.auth = if self.chance(80) {
            Auth::Anonymous
        } else {
            Auth::Session {
                user: self.writer(),
                csrf_header: false,
                origin: true,
            }
        };
        let username = if self.chance(50) {
            self.pick(&target.usernames)
        } else {
            self.text()
        };
        let password = if self.chance(30) {
            PASSWORD.to_owned()
        } else {
            self.text()
        };
        let next = if self.chance(50) {
            self.pick(&[
                "/",
                "/settings",
                "//evil.example",
                "/%2F%2Fevil.example",
                "/\\evil",
                "/%09/x",
                "https://evil.example/",
                "/%E2%80%A8",
                "/caf\u{e9}",
                "/%25252F%25252F",
            ])
            .to_owned()
        } else {
            self.text()
        };
        let mut pairs = vec![
            ("username".to_owned(), FormValue::Encoded(encode(&username))),
            ("password".to_owned(), FormValue::Encoded(encode(&password))),
            ("next".to_owned(), FormValue::Encoded(encode(&next))),
        ];
        if self.chance(20) {
            pairs.remove(self.below(pairs.len()));
        }
        if self.chance(10) {
            pairs.push((
                "username".to_owned(),
                FormValue::Encoded("again".to_owned()),
            ));
        }
        case.body = Body::Form(pairs);
        case.headers
            .push(("origin", PUBLIC_ORIGIN.as_bytes().to_vec()));
        match self.below(10) {
            0..=4 => {}
            5..=7 => {
                let address = self.pick(&[
                    "203.0.113.50",
                    "2001:db8::5",
                    "garbage",
                    "203.0.113.50, 127.0.0.1",
                ]);
                case.headers
                    .push(("x-forwarded-for", address.as_bytes().to_vec()));
            }
            _ => {
                let header = self.hostile_header();
                case.headers.push(header);
            }
        }
        case
    }
}

/// Requests that may end the user's session or token, after which the test
/// gives the user new ones.
fn may_end_credentials(method: &Method, template: &str) -> bool {
    *method != Method::GET
        && *method != Method::HEAD
        && (template.starts_with("/api/tokens/{")
            || template.starts_with("/settings/tokens/{")
            || matches!(
                template,
                "/logout" | "/settings/password" | "/settings/delete-account"
            ))
}
