//! Part `capacity`: how many connections one `calsync serve` carries at a
//! sync interval, measured from outside (docs/BENCHMARKS.md, "Sync capacity").
//!
//! Set-up (not measured): the emulator in this process with a latency on
//! every Calendar API and Graph request (`latency_ms`) and K x N accounts made
//! in bulk (`EmulatorHandle::populate`: Google and Microsoft alternate, 2 or
//! 3 calendars each, a few events); K `calsync serve` processes on one fresh
//! database; users made with `calsync user add` (several processes at once),
//! each logged in once through the login form; every connection made the way
//! a person makes it (authorize, the emulator's auto-approved consent, the
//! callback), paced so that all of them are made within one interval and
//! their rounds are spread over it as in an instance that has run for a
//! while.
//!
//! The set-up processes are then stopped (SIGTERM: they give their leases
//! back) and fresh ones started on the same database (`--no-restart` keeps
//! them): logging in thousands of users leaves argon2's 19 MiB blocks in
//! glibc's per-thread arenas of the set-up process, which is not what the
//! sync engine needs; that RSS is reported apart. After every account has
//! had its first round and a settling time, the steady state is measured for
//! `--duration` seconds:
//!
//! - CPU (user + system, from `/proc/PID/stat`) of each calsync process, as a
//!   percentage of one core over the window; RSS (`VmRSS`) sampled every
//!   second and `VmHWM`; PostgreSQL's backends for the database apart.
//! - Rounds: every round starts with the calendar list (Google
//!   `GET /calendar/v3/users/me/calendarList`, Graph `GET /v1.0/me/calendars`),
//!   so the emulator's request log, drained every half second, gives each
//!   round's start per account (arrival = logged time - the latency it was
//!   given), and what followed it until the next start. calsync's own
//!   `calsync_sync_rounds_total` (`GET /metrics`) is read every second too.
//! - Schedule lag of a round = when it started (its first request reached the
//!   emulator) - when it was due (`next_sync_at`). The due times come from
//!   `GET /api/calendar/connections/` of every user, read once every
//!   `--sweep-secs` seconds (spread evenly), which is shorter than the
//!   shortest interval calsync schedules (0.9 x interval), so every round's due
//!   time is seen before the round starts or while it runs (the field keeps the
//!   due time during a round). A round is matched to the latest due time seen
//!   that lies after the account's previous round start; a due time not
//!   followed by a round before the window ends counts with its lag so far
//!   (a lower bound). `calsync_sync_oldest_due_age_seconds` sampled every
//!   second is the engine's own view of the same.
//! - Double rounds: two round starts of one account less than half an
//!   interval apart in the emulator log (from each account's second round on),
//!   and, from the API, two runs of one connection starting that close.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use calsync_emulator::{
    BulkAccount, BulkProvider, Emulator, EmulatorConfig, EmulatorHandle, OAuthClient, Populated,
    Settings,
};
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{
    clock_ticks, cookies, load_average, location, mib, Args, Database, Figures, Serve, CLIENT_ID,
    CLIENT_SECRET, MS_CLIENT_ID, MS_CLIENT_SECRET, PASSWORD, PUBLIC_URL,
};

const S: &str = "Sync capacity";

/// The capacity options (see `--help`).
#[derive(Debug, Clone)]
pub struct CapArgs {
    pub connections: usize,
    pub instances: usize,
    pub interval: String,
    pub duration: u64,
    pub settle: u64,
    pub latency: [u64; 2],
    pub per_user: usize,
    pub events_per_calendar: usize,
    pub changes_per_sec: f64,
    pub connect_rate: Option<f64>,
    pub sweep_secs: u64,
    pub sync_concurrency: Option<u32>,
    pub user_add_jobs: usize,
    pub perf: Option<u64>,
    pub samples: Option<PathBuf>,
    /// Measure on fresh processes started after the set-up (default).
    pub restart: bool,
    /// Seconds measured after the window without sweeps.
    pub quiet: u64,
}

impl Default for CapArgs {
    fn default() -> Self {
        Self {
            connections: 10_000,
            instances: 1,
            interval: "5m".into(),
            duration: 600,
            settle: 240,
            latency: [100, 300],
            per_user: 4,
            events_per_calendar: 3,
            changes_per_sec: 1.0,
            connect_rate: None,
            sweep_secs: 240,
            sync_concurrency: None,
            user_add_jobs: 4,
            perf: None,
            samples: None,
            restart: true,
            quiet: 120,
        }
    }
}

impl CapArgs {
    /// Takes `flag` if it is a capacity option; false if it is not one.
    pub fn flag(&mut self, flag: &str, value: &mut dyn FnMut() -> Result<String>) -> Result<bool> {
        match flag {
            "--connections" => self.connections = value()?.parse::<usize>()?.max(1),
            "--instances" => self.instances = value()?.parse::<usize>()?.max(1),
            "--interval" => {
                let v = value()?;
                parse_interval(&v)?;
                self.interval = v;
            }
            "--duration" => self.duration = value()?.parse::<u64>()?.max(1),
            "--settle" => self.settle = value()?.parse()?,
            "--latency" => {
                let v = value()?;
                let (a, b) = v
                    .split_once(',')
                    .with_context(|| format!("--latency MIN,MAX, not {v}"))?;
                self.latency = [a.trim().parse()?, b.trim().parse()?];
                if self.latency[0] > self.latency[1] {
                    bail!("--latency: MIN above MAX");
                }
            }
            "--per-user" => self.per_user = value()?.parse::<usize>()?.max(1),
            "--events-per-calendar" => self.events_per_calendar = value()?.parse()?,
            "--changes-per-sec" => self.changes_per_sec = value()?.parse()?,
            "--connect-rate" => self.connect_rate = Some(value()?.parse()?),
            "--sweep-secs" => self.sweep_secs = value()?.parse()?,
            "--sync-concurrency" => self.sync_concurrency = Some(value()?.parse()?),
            "--user-add-jobs" => self.user_add_jobs = value()?.parse::<usize>()?.max(1),
            "--perf" => self.perf = Some(value()?.parse()?),
            "--samples" => self.samples = Some(value()?.into()),
            "--no-restart" => self.restart = false,
            "--quiet" => self.quiet = value()?.parse()?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// `30s`, `5m`, `1h` (calsync's forms) in seconds.
fn parse_interval(text: &str) -> Result<u64> {
    let t = text.trim();
    let (n, unit) = t.split_at(t.len().saturating_sub(1));
    let n: u64 = n
        .parse()
        .with_context(|| format!("interval {text}: use 30s, 5m or 1h"))?;
    Ok(match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => bail!("interval {text}: use 30s, 5m or 1h"),
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn stamp() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

macro_rules! say {
    ($($t:tt)*) => { println!("  [{}] {}", stamp(), format!($($t)*)) };
}

// ---------------------------------------------------------------- the request log

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The calendar list: the first request of every round.
    RoundStart,
    /// events.list or calendarView/delta.
    Calendar,
    Other,
}

/// One provider request, compact.
#[derive(Debug, Clone, Copy)]
struct Req {
    /// Index of the account (connection), or `u32::MAX` (token endpoint).
    acct: u32,
    /// When it reached the emulator (logged time - its latency), Unix ms.
    at: i64,
    /// When it was answered, Unix ms.
    end: i64,
    kind: Kind,
    status: u16,
}

fn drain(emulator: &EmulatorHandle, index: &HashMap<String, u32>, into: &Mutex<Vec<Req>>) {
    let entries = emulator.take_requests();
    if entries.is_empty() {
        return;
    }
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let end = e
            .time
            .parse::<jiff::Timestamp>()
            .map(|t| t.as_millisecond())
            .unwrap_or_else(|_| now_ms());
        let at = end - e.latency_ms.unwrap_or(0) as i64;
        let acct = e
            .account
            .as_deref()
            .and_then(|a| index.get(&a.to_ascii_lowercase()).copied())
            .unwrap_or(u32::MAX);
        let p = e.path.as_str();
        let kind = if e.method == "GET"
            && (p == "/calendar/v3/users/me/calendarList" || p == "/v1.0/me/calendars")
        {
            Kind::RoundStart
        } else if p.ends_with("/calendarView/delta")
            || (p.ends_with("/events") && e.method == "GET")
        {
            Kind::Calendar
        } else {
            Kind::Other
        };
        out.push(Req {
            acct,
            at,
            end,
            kind,
            status: e.status,
        });
    }
    if let Ok(mut log) = into.lock() {
        log.extend(out);
    }
}

// ---------------------------------------------------------------- /proc

#[derive(Debug, Clone, Copy, Default)]
struct Proc {
    cpu_ms: u64,
    rss_kb: u64,
    hwm_kb: u64,
}

fn proc_of(pid: u32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    Some(Proc {
        cpu_ms: ticks * 1000 / clock_ticks(),
        rss_kb: field("VmRSS:"),
        hwm_kb: field("VmHWM:"),
    })
}

/// False once the process has exited (gone, or a zombie not yet reaped).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next().map(|x| x != "Z"))
        })
        .unwrap_or(false)
}

/// Fails with the end of its log if an instance has exited.
fn check_alive(serves: &[Serve]) -> Result<()> {
    for (i, s) in serves.iter().enumerate() {
        if !alive(s.pid()) {
            let tail = s
                .log
                .lock()
                .map(|l| l[l.len().saturating_sub(40)..].join("\n"))
                .unwrap_or_default();
            bail!(
                "instance {i} (pid {}) exited during the run (another session's \
                 `pkill calsync`?); its log ends:\n{tail}",
                s.pid()
            );
        }
    }
    Ok(())
}

/// CPU ms of the PostgreSQL backends serving database `name` (by their
/// process title `postgres: … name …`). Backends that ended are not counted.
fn postgres_cpu(name: &str) -> (u64, usize) {
    let mut total = 0;
    let mut n = 0;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return (0, 0);
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd);
        if cmd.starts_with("postgres:") && cmd.split_whitespace().any(|w| w == name) {
            if let Some(p) = proc_of(pid) {
                total += p.cpu_ms;
                n += 1;
            }
        }
    }
    (total, n)
}

/// `pg_stat_database` counters of database `name`: commits, rollbacks,
/// rows inserted, updated, deleted, fetched, returned.
fn pg_stats(admin_url: &str, name: &str) -> Option<Vec<i64>> {
    let out = std::process::Command::new("psql")
        .args([
            admin_url,
            "-Atc",
            &format!(
                "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted, \
                 tup_fetched, tup_returned FROM pg_stat_database WHERE datname = '{name}'"
            ),
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<i64> = text
        .trim()
        .split('|')
        .filter_map(|x| x.parse().ok())
        .collect();
    (v.len() == 7).then_some(v)
}

/// `pg_stat_user_tables` of database `name`: table -> (seq scans, rows read
/// by them, index scans, rows fetched by them, rows inserted + updated + deleted).
fn pg_tables(db_url: &str) -> BTreeMap<String, [i64; 5]> {
    let out = std::process::Command::new("psql")
        .args([
            db_url,
            "-Atc",
            "SELECT relname, seq_scan, seq_tup_read, COALESCE(idx_scan, 0), \
             COALESCE(idx_tup_fetch, 0), n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables",
        ])
        .output();
    let Ok(out) = out else {
        return BTreeMap::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            let n: Vec<i64> = f.iter().skip(1).filter_map(|x| x.parse().ok()).collect();
            (f.len() == 6 && n.len() == 5)
                .then(|| (f[0].to_owned(), [n[0], n[1], n[2], n[3], n[4]]))
        })
        .collect()
}

/// Busy and total jiffies of the whole machine (`/proc/stat`).
fn machine_cpu() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().next() else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

// ---------------------------------------------------------------- samples

#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    t: i64,
    instance: usize,
    proc: Proc,
    due: Option<f64>,
    oldest_due_age: Option<f64>,
    leased: Option<f64>,
    in_flight: Option<f64>,
    rounds_total: Option<f64>,
    failures_total: Option<f64>,
}

/// The sum of every series of `name` (all label sets), if present.
fn metric(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        if let Some(v) = rest
            .rsplit(' ')
            .next()
            .and_then(|v| v.trim().parse::<f64>().ok())
        {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

// ---------------------------------------------------------------- sweeps

/// What one reading of a user's connection list said about an account.
#[derive(Debug, Default)]
struct Seen {
    /// Due times (`next_sync_at`, Unix s) seen.
    due: BTreeSet<i64>,
    /// Runs (`recent_runs`): started -> finished (Unix s; `None` while
    /// running, or for a round cut by a stopping instance).
    runs: BTreeMap<i64, Option<i64>>,
    status: String,
}

fn ts(v: &Value) -> Option<i64> {
    v.as_str()?
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second())
}

// ---------------------------------------------------------------- small maths

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

fn dist(v: &[f64], unit: &str) -> String {
    if v.is_empty() {
        return "no samples".into();
    }
    format!(
        "p50 {:.1}{unit}, p90 {:.1}{unit}, p99 {:.1}{unit}, max {:.1}{unit} ({} samples)",
        percentile(v, 50.0),
        percentile(v, 90.0),
        percentile(v, 99.0),
        v[v.len() - 1],
        v.len()
    )
}

/// xorshift64*: the change injector's dice (no dependency for that).
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

// ---------------------------------------------------------------- set-up steps

fn email(j: usize) -> String {
    if j % 2 == 0 {
        format!("cap{j}@example.com")
    } else {
        format!("cap{j}@contoso.example")
    }
}

fn provider(j: usize) -> &'static str {
    if j % 2 == 0 {
        "google"
    } else {
        "microsoft"
    }
}

async fn login(serve: &Serve, user: &str) -> Result<String> {
    let response = serve
        .http
        .post(serve.url("/login"))
        .header("origin", PUBLIC_URL)
        .form(&[("username", user), ("password", PASSWORD)])
        .send()
        .await?;
    if response.status() != 303 {
        bail!("login {user}: {}", response.status());
    }
    Ok(cookies(&response).join("; "))
}

/// Settings -> Connect: authorize, the emulator's consent (auto-approved for
/// `login_hint`), the callback. Fails unless calsync says `connected=`.
async fn connect(serve: &Serve, cookie: &str, provider: &str, email: &str) -> Result<()> {
    let response = serve
        .http
        .get(serve.url(&format!("/api/calendar/{provider}/authorize/")))
        .header("cookie", cookie)
        .header("accept", "application/json")
        .send()
        .await?;
    let body: Value = response.json().await?;
    let url = body["authorization_url"]
        .as_str()
        .with_context(|| format!("authorize: {body}"))?;
    let consent = serve
        .http
        .get(format!("{url}&login_hint={email}"))
        .send()
        .await?;
    if consent.status() != 302 {
        bail!("consent for {email}: {}", consent.status());
    }
    let back = location(&consent)?;
    let path = back
        .strip_prefix(PUBLIC_URL)
        .ok_or_else(|| anyhow!("redirect to {back}, not to the public URL"))?
        .to_owned();
    let done = serve
        .http
        .get(serve.url(&path))
        .header("cookie", cookie)
        .send()
        .await?;
    let to = location(&done).unwrap_or_default();
    if done.status() != 303 || !to.contains("connected=") {
        bail!("callback for {email}: {} to {to}", done.status());
    }
    Ok(())
}

/// Reads one user's connections; records due times and runs per account.
async fn sweep_user(
    serve: &Serve,
    cookie: &str,
    index: &HashMap<String, u32>,
    seen: &Mutex<HashMap<u32, Seen>>,
) -> Result<()> {
    let response = serve
        .http
        .get(serve.url("/api/calendar/connections/"))
        .header("cookie", cookie)
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("GET connections: {}", response.status());
    }
    let list: Value = response.json().await?;
    let mut seen = seen.lock().map_err(|_| anyhow!("poisoned"))?;
    for c in list.as_array().into_iter().flatten() {
        let Some(acct) = c["account_email"]
            .as_str()
            .and_then(|e| index.get(&e.to_ascii_lowercase()))
        else {
            continue;
        };
        let entry = seen.entry(*acct).or_default();
        if let Some(due) = ts(&c["next_sync_at"]) {
            entry.due.insert(due);
        }
        entry.status = c["status"].as_str().unwrap_or("").to_owned();
        for run in c["recent_runs"].as_array().into_iter().flatten() {
            if let Some(started) = ts(&run["started_at"]) {
                let finished = entry.runs.entry(started).or_default();
                *finished = finished.or(ts(&run["finished_at"]));
            }
        }
    }
    Ok(())
}

/// SIGTERM, then waits (up to 30 s) for the drain calsync does on it.
fn stop_gracefully(serve: &mut Serve) -> Result<()> {
    let pid = serve.pid().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .context("kill -TERM")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if serve.child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("calsync {pid} did not stop within 30 s of SIGTERM")
}

// ---------------------------------------------------------------- the run

pub async fn run(args: &Args, backend: &str, figures: &mut Figures) -> Result<()> {
    let c = args.cap.clone();
    let total = c.connections * c.instances;
    let interval = parse_interval(&c.interval)?;
    let users = total.div_ceil(c.per_user);
    let run_started = Instant::now();
    figures.add(
        S,
        backend,
        "set-up",
        format!(
            "{} instance(s), {total} connections ({} per instance), {users} users of {} connections, \
             interval {}, latency {}-{} ms per Calendar API / Graph request, {} events per calendar, \
             {} changes/s while measuring",
            c.instances,
            c.connections,
            c.per_user,
            c.interval,
            c.latency[0],
            c.latency[1],
            c.events_per_calendar,
            c.changes_per_sec
        ),
    );

    // The emulator, with every account.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let emulator = Arc::new(Emulator::start(
        listener,
        EmulatorConfig {
            clients: vec![
                OAuthClient::new(
                    CLIENT_ID,
                    CLIENT_SECRET,
                    [format!("{PUBLIC_URL}/api/calendar/google/callback/")],
                ),
                OAuthClient::new(
                    MS_CLIENT_ID,
                    MS_CLIENT_SECRET,
                    [format!("{PUBLIC_URL}/api/calendar/microsoft/callback/")],
                ),
            ],
            auto_approve: true,
            sample_data: false,
            settings: Settings {
                latency_ms: Some(c.latency),
                uneven_pages: false,
                ..Settings::default()
            },
        },
    )?);
    let me = std::process::id();
    let before = proc_of(me).unwrap_or_default();
    let now = jiff::Timestamp::now().as_second();
    let first_event = jiff::Timestamp::from_second(now - now.rem_euclid(3600) - 7 * 86_400)?;
    let specs: Vec<BulkAccount> = (0..total)
        .map(|j| BulkAccount {
            provider: if j % 2 == 0 {
                BulkProvider::Google
            } else {
                BulkProvider::Microsoft
            },
            email: email(j),
            calendars: 2 + (j / 2) % 2,
            events_per_calendar: c.events_per_calendar,
            weekly_series: j % 4 < 2,
        })
        .collect();
    let t = Instant::now();
    let populated: Arc<Vec<Populated>> = Arc::new(
        emulator
            .populate(&specs, first_event)
            .map_err(|e| anyhow!("populate: {e}"))?,
    );
    let after = proc_of(me).unwrap_or_default();
    let calendars: usize = populated.iter().map(|p| p.calendars.len()).sum();
    let events: usize = populated.iter().map(|p| p.events.len()).sum();
    figures.add(
        S,
        backend,
        "emulator: accounts, calendars, events made in-process",
        format!(
            "{total} accounts, {calendars} calendars, {events} events in {:.2} s; \
             driver RSS {} -> {} (+{})",
            t.elapsed().as_secs_f64(),
            mib(before.rss_kb),
            mib(after.rss_kb),
            mib(after.rss_kb.saturating_sub(before.rss_kb))
        ),
    );
    let index: Arc<HashMap<String, u32>> = Arc::new(
        (0..total)
            .map(|j| (email(j).to_ascii_lowercase(), j as u32))
            .collect(),
    );

    // The request log, drained from now on.
    let log: Arc<Mutex<Vec<Req>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut background = JoinSet::new();
    {
        let (emulator, index, log, stop) =
            (emulator.clone(), index.clone(), log.clone(), stop.clone());
        background.spawn(async move {
            while !stop.load(Relaxed) {
                drain(&emulator, &index, &log);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            drain(&emulator, &index, &log);
        });
    }

    // calsync: K instances on one fresh database.
    let db = Database::create(backend, &args.postgres_url)?;
    let google = emulator.google();
    let ms = emulator.microsoft();
    let base = emulator.base_url().to_owned();
    let mut env: Vec<(String, String)> = [
        ("CALSYNC_GOOGLE_CLIENT_ID", CLIENT_ID.to_owned()),
        ("CALSYNC_GOOGLE_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
        ("CALSYNC_GOOGLE_AUTH_URL", google.auth_url),
        ("CALSYNC_GOOGLE_TOKEN_URL", google.token_url),
        ("CALSYNC_GOOGLE_API_BASE", base.clone()),
        ("CALSYNC_GOOGLE_REVOKE_URL", google.revoke_url),
        ("CALSYNC_MICROSOFT_CLIENT_ID", MS_CLIENT_ID.to_owned()),
        (
            "CALSYNC_MICROSOFT_CLIENT_SECRET",
            MS_CLIENT_SECRET.to_owned(),
        ),
        ("CALSYNC_MICROSOFT_AUTH_URL", ms.auth_url),
        ("CALSYNC_MICROSOFT_TOKEN_URL", ms.token_url),
        ("CALSYNC_MICROSOFT_API_BASE", ms.api_base),
        ("CALSYNC_SYNC_INTERVAL", c.interval.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(n) = c.sync_concurrency {
        env.push(("CALSYNC_SYNC_CONCURRENCY".into(), n.to_string()));
    }
    let mut serves = Vec::new();
    for _ in 0..c.instances {
        serves.push(Serve::start_keeping(&args.calsync, &db, &env, 5_000)?);
    }
    let serves = Arc::new(serves);
    for (i, s) in serves.iter().enumerate() {
        say!("instance {i}: pid {} at {}", s.pid(), s.base);
    }

    // Users, through the CLI, several at once.
    let t = Instant::now();
    let jobs = Arc::new(Semaphore::new(c.user_add_jobs));
    let mut set = JoinSet::new();
    for u in 0..users {
        let (serves, jobs) = (serves.clone(), jobs.clone());
        set.spawn(async move {
            let _permit = jobs.acquire_owned().await?;
            serves[0]
                .cli(
                    &["user", "add", &format!("cap-user-{u}"), "--password-stdin"],
                    Some(&format!("{PASSWORD}\n")),
                )
                .await
                .map(|_| ())
        });
    }
    while let Some(done) = set.join_next().await {
        done??;
    }
    let user_add = t.elapsed();
    say!(
        "{users} users in {:.1} s ({:.1} ms each, {} at once)",
        user_add.as_secs_f64(),
        user_add.as_secs_f64() * 1e3 / users as f64,
        c.user_add_jobs
    );
    figures.add(
        S,
        backend,
        "set-up: `calsync user add` (wall, all users)",
        format!(
            "{users} users in {:.1} s, {} processes at once",
            user_add.as_secs_f64(),
            c.user_add_jobs
        ),
    );

    // One login per user (the session cookie serves the connects and sweeps).
    let t = Instant::now();
    let gate = Arc::new(Semaphore::new(4));
    let mut set = JoinSet::new();
    for u in 0..users {
        let (serves, gate) = (serves.clone(), gate.clone());
        let k = serves.len();
        set.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let cookie = login(&serves[u % k], &format!("cap-user-{u}")).await?;
            Ok::<_, anyhow::Error>((u, cookie))
        });
    }
    let mut cookie_of = vec![String::new(); users];
    while let Some(done) = set.join_next().await {
        let (u, cookie) = done??;
        cookie_of[u] = cookie;
    }
    let cookie_of = Arc::new(cookie_of);
    say!("{users} logins in {:.1} s", t.elapsed().as_secs_f64());
    let rss: Vec<String> = serves
        .iter()
        .map(|s| {
            let m = proc_of(s.pid()).unwrap_or_default();
            format!("{} / {}", mib(m.rss_kb), mib(m.hwm_kb))
        })
        .collect();
    figures.add(
        S,
        backend,
        "set-up: logins (wall; then RSS / VmHWM of each instance)",
        format!(
            "{users} in {:.1} s, 4 at once; {}",
            t.elapsed().as_secs_f64(),
            rss.join(", ")
        ),
    );

    // Connections, paced over one interval.
    let rate = c
        .connect_rate
        .unwrap_or(total as f64 / interval as f64)
        .max(0.01);
    say!("connecting {total} accounts at {rate:.1}/s");
    let t = Instant::now();
    let connected_at: Arc<Vec<AtomicU64>> =
        Arc::new((0..total).map(|_| AtomicU64::new(0)).collect());
    let failures = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(Semaphore::new(32));
    let mut set = JoinSet::new();
    let start = tokio::time::Instant::now();
    for j in 0..total {
        tokio::time::sleep_until(start + Duration::from_secs_f64(j as f64 / rate)).await;
        let permit = gate.clone().acquire_owned().await?;
        let (serves, cookie_of, connected_at, failures) = (
            serves.clone(),
            cookie_of.clone(),
            connected_at.clone(),
            failures.clone(),
        );
        let u = j / c.per_user;
        set.spawn(async move {
            let _permit = permit;
            let serve = &serves[u % serves.len()];
            let mut last = None;
            for _ in 0..3 {
                match connect(serve, &cookie_of[u], provider(j), &email(j)).await {
                    Ok(()) => {
                        connected_at[j].store(now_ms() as u64, Relaxed);
                        return Ok(());
                    }
                    Err(e) => {
                        failures.fetch_add(1, Relaxed);
                        last = Some(e);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
            Err(last.unwrap_or_else(|| anyhow!("connect")))
        });
        while let Some(done) = set.try_join_next() {
            done??;
        }
        if j > 0 && j % 1000 == 0 {
            say!("{j} connected");
        }
    }
    while let Some(done) = set.join_next().await {
        done??;
    }
    let connect_wall = t.elapsed();
    say!(
        "{total} connected in {:.1} s ({} failed attempts retried)",
        connect_wall.as_secs_f64(),
        failures.load(Relaxed)
    );
    figures.add(
        S,
        backend,
        "set-up: connections (authorize + consent + callback, paced)",
        format!(
            "{total} in {:.1} s at {rate:.1}/s; {} failed attempts retried",
            connect_wall.as_secs_f64(),
            failures.load(Relaxed)
        ),
    );

    // A fresh process for the measurement: logging in left argon2's memory
    // in the set-up process (see `restart`), which is not the sync engine's.
    let mut restart_at = i64::MIN;
    let serves = if c.restart {
        restart_at = now_ms();
        let mut old = Arc::try_unwrap(serves)
            .map_err(|_| anyhow!("set-up tasks still hold the instances"))?;
        for (i, s) in old.iter_mut().enumerate() {
            let m = proc_of(s.pid()).unwrap_or_default();
            figures.add(
                S,
                backend,
                &format!("set-up instance {i}: RSS / VmHWM after the logins and connects"),
                format!("{} / {}", mib(m.rss_kb), mib(m.hwm_kb)),
            );
            stop_gracefully(s)?;
        }
        drop(old);
        let mut fresh = Vec::new();
        for _ in 0..c.instances {
            fresh.push(Serve::start_keeping(&args.calsync, &db, &env, 5_000)?);
        }
        for (i, s) in fresh.iter().enumerate() {
            say!("restarted instance {i}: pid {} at {}", s.pid(), s.base);
        }
        Arc::new(fresh)
    } else {
        serves
    };

    // Samplers: /metrics and /proc every second, connection lists once per sweep.
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::new(Mutex::new(Vec::new()));
    {
        let (serves, samples, stop) = (serves.clone(), samples.clone(), stop.clone());
        background.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while !stop.load(Relaxed) {
                tick.tick().await;
                for (i, s) in serves.iter().enumerate() {
                    let text = match s.http.get(s.url("/metrics")).send().await {
                        Ok(r) => r.text().await.unwrap_or_default(),
                        Err(_) => String::new(),
                    };
                    let sample = Sample {
                        t: now_ms(),
                        instance: i,
                        proc: proc_of(s.pid()).unwrap_or_default(),
                        due: metric(&text, "calsync_sync_due_connections"),
                        oldest_due_age: metric(&text, "calsync_sync_oldest_due_age_seconds"),
                        leased: metric(&text, "calsync_sync_leased_connections"),
                        in_flight: metric(&text, "calsync_sync_rounds_in_flight"),
                        rounds_total: metric(&text, "calsync_sync_rounds_total"),
                        failures_total: metric(&text, "calsync_sync_failures_total"),
                    };
                    if let Ok(mut v) = samples.lock() {
                        v.push(sample);
                    }
                }
            }
        });
    }
    let seen: Arc<Mutex<HashMap<u32, Seen>>> = Arc::new(Mutex::new(HashMap::new()));
    let sweeps = Arc::new(AtomicU64::new(0));
    let sweep_errors = Arc::new(AtomicU64::new(0));
    // Cleared after the window: a quiet window follows without sweeps.
    let sweeping = Arc::new(AtomicBool::new(true));
    {
        let (serves, cookie_of, index, seen, sweeps, sweep_errors) = (
            serves.clone(),
            cookie_of.clone(),
            index.clone(),
            seen.clone(),
            sweeps.clone(),
            sweep_errors.clone(),
        );
        let stop = sweeping.clone();
        if c.sweep_secs == 0 {
            stop.store(false, Relaxed);
        }
        let stop = move || !stop.load(Relaxed);
        let period = c.sweep_secs;
        background.spawn(async move {
            let gate = Arc::new(Semaphore::new(8));
            let begin = tokio::time::Instant::now();
            let mut round = 0u64;
            while !stop() {
                for u in 0..users {
                    if stop() {
                        break;
                    }
                    let at = begin
                        + Duration::from_secs(round * period)
                        + Duration::from_secs_f64(u as f64 * period as f64 / users as f64);
                    tokio::time::sleep_until(at).await;
                    let Ok(permit) = gate.clone().acquire_owned().await else {
                        break;
                    };
                    let (serves, cookie_of, index, seen, sweeps, sweep_errors) = (
                        serves.clone(),
                        cookie_of.clone(),
                        index.clone(),
                        seen.clone(),
                        sweeps.clone(),
                        sweep_errors.clone(),
                    );
                    tokio::spawn(async move {
                        let _permit = permit;
                        let serve = &serves[u % serves.len()];
                        match sweep_user(serve, &cookie_of[u], &index, &seen).await {
                            Ok(()) => sweeps.fetch_add(1, Relaxed),
                            Err(_) => sweep_errors.fetch_add(1, Relaxed),
                        };
                    });
                }
                round += 1;
            }
        });
    }

    // Every account's first round: a calendar list and a calendar request.
    let t = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(interval * 3 + 900);
    loop {
        let (mut listed, mut pulled) = (vec![false; total], vec![false; total]);
        if let Ok(log) = log.lock() {
            for r in log.iter().filter(|r| (r.acct as usize) < total) {
                match r.kind {
                    Kind::RoundStart => listed[r.acct as usize] = true,
                    Kind::Calendar => pulled[r.acct as usize] = true,
                    Kind::Other => {}
                }
            }
        }
        let missing = (0..total).filter(|&j| !(listed[j] && pulled[j])).count();
        if missing == 0 {
            break;
        }
        if Instant::now() > deadline {
            bail!("{missing} accounts never had a first round");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let first_rounds_done = now_ms();
    say!(
        "every account had its first round ({:.1} s after the last connect); settling {} s",
        t.elapsed().as_secs_f64(),
        c.settle
    );
    figures.add(
        S,
        backend,
        "set-up: last connect to every first round done",
        format!("{:.1} s", t.elapsed().as_secs_f64()),
    );

    // Changes at the provider while settling and measuring.
    let changes = Arc::new(AtomicU64::new(0));
    if c.changes_per_sec > 0.0 {
        let (emulator, populated, stop, changes) = (
            emulator.clone(),
            populated.clone(),
            stop.clone(),
            changes.clone(),
        );
        let every = Duration::from_secs_f64(1.0 / c.changes_per_sec);
        background.spawn(async move {
            let mut dice = Dice(0x9E37_79B9_7F4A_7C15);
            let mut tick = tokio::time::interval(every);
            while !stop.load(Relaxed) {
                tick.tick().await;
                let p = &populated[(dice.next() % populated.len() as u64) as usize];
                if p.events.is_empty() {
                    continue;
                }
                let (calendar, event) = &p.events[(dice.next() % p.events.len() as u64) as usize];
                let n = changes.fetch_add(1, Relaxed);
                let _ = match p.provider {
                    BulkProvider::Google => emulator
                        .patch_event(
                            &p.email,
                            calendar,
                            event,
                            json!({"summary": format!("Changed {n}")}),
                        )
                        .map(|_| ())
                        .map_err(|e| format!("{e:?}")),
                    BulkProvider::Microsoft => emulator
                        .ms_patch_event(
                            &p.email,
                            calendar,
                            event,
                            json!({"subject": format!("Changed {n}")}),
                        )
                        .map(|_| ())
                        .map_err(|e| format!("{e:?}")),
                };
            }
        });
    }
    let settle_end = Instant::now() + Duration::from_secs(c.settle);
    while Instant::now() < settle_end {
        check_alive(&serves)?;
        tokio::time::sleep(Duration::from_secs(1).min(settle_end - Instant::now())).await;
    }

    // The window.
    let pg_name = db.pg_name.clone();
    let cpu_at = |serves: &[Serve]| -> Vec<Proc> {
        serves
            .iter()
            .map(|s| proc_of(s.pid()).unwrap_or_default())
            .collect()
    };
    let t0 = now_ms();
    let w0 = Instant::now();
    let cpu0 = cpu_at(&serves);
    let me0 = proc_of(me).unwrap_or_default();
    let pg0 = pg_name.as_deref().map(postgres_cpu);
    let stats0 = pg_name
        .as_deref()
        .and_then(|n| pg_stats(&args.postgres_url, n));
    let tables0 = db.url.as_deref().map(pg_tables);
    let machine0 = machine_cpu();
    let changes0 = changes.load(Relaxed);
    let sweeps0 = sweeps.load(Relaxed);
    let load0 = load_average();
    say!("measuring for {} s (load average {load0})", c.duration);
    let mut perf = None;
    if let Some(secs) = c.perf {
        let wait = c.duration.saturating_sub(secs) / 2;
        let pid = serves[0].pid();
        let out = std::env::temp_dir().join(format!("calsync-capacity-{pid}.perf.data"));
        perf = Some((
            out.clone(),
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(wait)).await;
                tokio::task::spawn_blocking(move || {
                    std::process::Command::new("perf")
                        .args(["record", "-F", "499", "-p", &pid.to_string(), "-o"])
                        .arg(&out)
                        .args(["--", "sleep", &secs.to_string()])
                        .output()
                })
                .await
            }),
        ));
    }
    let mut next_note = Instant::now() + Duration::from_secs(60);
    while w0.elapsed() < Duration::from_secs(c.duration) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Err(e) = check_alive(&serves) {
            stop.store(true, Relaxed);
            return Err(e);
        }
        if Instant::now() >= next_note {
            next_note += Duration::from_secs(60);
            let last = samples.lock().ok().and_then(|v| v.last().copied());
            if let Some(s) = last {
                say!(
                    "{:.0} s: instance {} rss {}, due {:?}, oldest due {:?} s, in flight {:?}, load {}",
                    w0.elapsed().as_secs_f64(),
                    s.instance,
                    mib(s.proc.rss_kb),
                    s.due,
                    s.oldest_due_age,
                    s.in_flight,
                    load_average()
                );
            }
        }
    }
    let t1 = now_ms();
    let wall = w0.elapsed().as_secs_f64();
    let cpu1 = cpu_at(&serves);
    let me1 = proc_of(me).unwrap_or_default();
    let pg1 = pg_name.as_deref().map(postgres_cpu);
    let stats1 = pg_name
        .as_deref()
        .and_then(|n| pg_stats(&args.postgres_url, n));
    let tables1 = db.url.as_deref().map(pg_tables);
    let machine1 = machine_cpu();
    let changes_made = changes.load(Relaxed) - changes0;
    let sweeps_made = sweeps.load(Relaxed) - sweeps0;
    let load1 = load_average();
    drain(&emulator, &index, &log);

    // A quiet window without sweeps: what the engine costs alone.
    sweeping.store(false, Relaxed);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let q0 = now_ms();
    let qw = Instant::now();
    let qcpu0 = cpu_at(&serves);
    let qpg0 = pg_name.as_deref().map(postgres_cpu);
    let qstats0 = pg_name
        .as_deref()
        .and_then(|n| pg_stats(&args.postgres_url, n));
    let qtables0 = db.url.as_deref().map(pg_tables);
    if c.quiet > 0 {
        say!("quiet window without sweeps: {} s", c.quiet);
    }
    while qw.elapsed() < Duration::from_secs(c.quiet) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        check_alive(&serves)?;
    }
    let q1 = now_ms();
    let qwall = qw.elapsed().as_secs_f64();
    let qcpu1 = cpu_at(&serves);
    let qpg1 = pg_name.as_deref().map(postgres_cpu);
    let qstats1 = pg_name
        .as_deref()
        .and_then(|n| pg_stats(&args.postgres_url, n));
    let qtables1 = db.url.as_deref().map(pg_tables);
    drain(&emulator, &index, &log);

    // How much a sweep request costs calsync: a burst on instance 0, less
    // what the window's average rate of CPU would have been anyway.
    let burst_n = users.min(300);
    let b0 = proc_of(serves[0].pid()).unwrap_or_default();
    let bt = Instant::now();
    {
        let gate = Arc::new(Semaphore::new(4));
        let mut set = JoinSet::new();
        for u in (0..users).filter(|u| u % serves.len() == 0).take(burst_n) {
            let (serves, cookie_of, index, seen, gate) = (
                serves.clone(),
                cookie_of.clone(),
                index.clone(),
                Arc::new(Mutex::new(HashMap::new())),
                gate.clone(),
            );
            set.spawn(async move {
                let _permit = gate.acquire_owned().await?;
                sweep_user(&serves[0], &cookie_of[u], &index, &seen).await
            });
        }
        while let Some(done) = set.join_next().await {
            done??;
        }
    }
    let burst_wall = bt.elapsed().as_secs_f64();
    let b1 = proc_of(serves[0].pid()).unwrap_or_default();
    stop.store(true, Relaxed);
    while background.join_next().await.is_some() {}

    // ------------------------------------------------------------ figures
    let window_s = (t1 - t0) as f64 / 1e3;
    let base_rate = (cpu1[0].cpu_ms - cpu0[0].cpu_ms) as f64 / wall; // ms CPU per s
    let burst_cpu = (b1.cpu_ms - b0.cpu_ms) as f64 - base_rate * burst_wall;
    let burst_gets = (0..users)
        .filter(|u| u % serves.len() == 0)
        .take(burst_n)
        .count();
    let per_get_ms = (burst_cpu / burst_gets.max(1) as f64).max(0.0);
    let sweep_rate = sweeps_made as f64 / wall;

    figures.add(
        S,
        backend,
        "window",
        format!(
            "{:.0} s, load average {load0} -> {load1}; machine busy {:.0} % of its {} cores",
            window_s,
            100.0 * (machine1.0 - machine0.0) as f64 / (machine1.1 - machine0.1).max(1) as f64,
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ),
    );
    let samples = samples.lock().map_err(|_| anyhow!("poisoned"))?.clone();
    let in_window = |s: &&Sample| s.t >= t0 && s.t <= t1;
    let mut cpu_total = 0.0;
    let mut rss_total = 0.0;
    for (i, s) in serves.iter().enumerate() {
        let cpu = (cpu1[i].cpu_ms - cpu0[i].cpu_ms) as f64 / 10.0 / wall; // % of one core
        cpu_total += cpu;
        let rss: Vec<f64> = sorted(
            samples
                .iter()
                .filter(in_window)
                .filter(|x| x.instance == i)
                .map(|x| x.proc.rss_kb as f64 / 1024.0)
                .collect(),
        );
        let mean = rss.iter().sum::<f64>() / rss.len().max(1) as f64;
        rss_total += rss.last().copied().unwrap_or(0.0);
        let who = if c.instances > 1 {
            format!("instance {i}: ")
        } else {
            String::new()
        };
        figures.add(
            S,
            backend,
            &format!("{who}calsync CPU (user+sys, % of one core)"),
            format!("{cpu:.1} %"),
        );
        figures.add(
            S,
            backend,
            &format!("{who}calsync RSS in the window: mean / max; VmHWM since start"),
            format!(
                "{mean:.1} MiB / {:.1} MiB; {}",
                rss.last().copied().unwrap_or(0.0),
                mib(cpu1[i].hwm_kb)
            ),
        );
        let counts = &s.counts;
        figures.add(
            S,
            backend,
            &format!("{who}log lines since start: WARN / ERROR / sync finished"),
            format!(
                "{} / {} / {}",
                counts.warn.load(Relaxed),
                counts.error.load(Relaxed),
                counts.synced.load(Relaxed)
            ),
        );
    }
    if c.instances > 1 {
        figures.add(
            S,
            backend,
            "all instances: calsync CPU (sum, % of one core) / RSS (sum of maxima)",
            format!("{cpu_total:.1} % / {rss_total:.1} MiB"),
        );
    }
    if let (Some((a, _)), Some((b, n))) = (pg0, pg1) {
        figures.add(
            S,
            backend,
            "PostgreSQL backends of the database (CPU, % of one core)",
            format!(
                "{:.1} % ({n} backends at the end; ended ones not counted)",
                b.saturating_sub(a) as f64 / 10.0 / wall
            ),
        );
    }
    figures.add(
        S,
        backend,
        "driver process (emulator, samplers) CPU, % of one core",
        format!("{:.1} %", (me1.cpu_ms - me0.cpu_ms) as f64 / 10.0 / wall),
    );
    figures.add(
        S,
        backend,
        "sweeps (GET connections, to learn due times)",
        format!(
            "{sweep_rate:.1} requests/s in the window; a burst of {burst_gets} cost about \
             {per_get_ms:.2} ms CPU each -> about {:.1} % of one core of the figure above; \
             {} failed",
            sweep_rate * per_get_ms / 10.0,
            sweep_errors.load(Relaxed)
        ),
    );

    // Rounds from the emulator's log.
    let log = log.lock().map_err(|_| anyhow!("poisoned"))?.clone();
    if c.quiet > 0 {
        let rounds = log
            .iter()
            .filter(|r| r.kind == Kind::RoundStart && r.at >= q0 && r.at <= q1)
            .count();
        let cpu: Vec<String> = (0..c.instances)
            .map(|i| {
                format!(
                    "{:.1} %",
                    (qcpu1[i].cpu_ms - qcpu0[i].cpu_ms) as f64 / 10.0 / qwall
                )
            })
            .collect();
        let mut text = format!(
            "{:.0} s, {:.2} rounds/s; calsync CPU {}",
            qwall,
            rounds as f64 / ((q1 - q0) as f64 / 1e3),
            cpu.join(" + ")
        );
        if let (Some((a, _)), Some((b, _))) = (qpg0, qpg1) {
            text.push_str(&format!(
                "; PostgreSQL backends {:.1} %",
                b.saturating_sub(a) as f64 / 10.0 / qwall
            ));
        }
        if let (Some(a), Some(b)) = (&qstats0, &qstats1) {
            text.push_str(&format!(
                "; per round {:.1} commits, {:.0} rows fetched, {:.0} returned",
                (b[0] - a[0]) as f64 / rounds.max(1) as f64,
                (b[5] - a[5]) as f64 / rounds.max(1) as f64,
                (b[6] - a[6]) as f64 / rounds.max(1) as f64
            ));
        }
        if let (Some(a), Some(b)) = (&qtables0, &qtables1) {
            let fetched: Vec<String> = b
                .iter()
                .filter_map(|(t, after)| {
                    let before = a.get(t).copied().unwrap_or_default();
                    let f =
                        (after[3] - before[3] + after[1] - before[1]) as f64 / rounds.max(1) as f64;
                    (f >= 0.5).then(|| format!("{t} {f:.0}"))
                })
                .collect();
            text.push_str(&format!(
                "; rows read per round by table: {}",
                fetched.join(", ")
            ));
        }
        figures.add(
            S,
            backend,
            "quiet window after the window: no sweeps (the engine alone)",
            text,
        );
    }
    let mut per_account: Vec<Vec<Req>> = vec![Vec::new(); total];
    let mut unattributed_errors = 0;
    for r in &log {
        if (r.acct as usize) < total {
            per_account[r.acct as usize].push(*r);
        } else if r.status >= 400 {
            unattributed_errors += 1;
        }
    }
    let in_w = |t: i64| t >= t0 && t <= t1;
    let mut starts_in_window = 0usize;
    let mut round_ms = Vec::new();
    let mut per_round_requests = Vec::new();
    let mut errors = 0usize;
    let mut requests_in_window = 0usize;
    let mut doubles = 0usize;
    let mut cut = 0usize;
    let mut double_examples = Vec::new();
    let mut min_gap = f64::INFINITY;
    let mut rounds_per_account = Vec::new();
    let mut starts_of: Vec<Vec<i64>> = vec![Vec::new(); total];
    for (j, reqs) in per_account.iter_mut().enumerate() {
        reqs.sort_by_key(|r| r.at);
        requests_in_window += reqs.iter().filter(|r| in_w(r.at)).count();
        errors += reqs
            .iter()
            .filter(|r| in_w(r.at) && r.status >= 400)
            .count();
        let starts: Vec<usize> = (0..reqs.len())
            .filter(|&i| reqs[i].kind == Kind::RoundStart)
            .collect();
        starts_of[j] = starts.iter().map(|&i| reqs[i].at).collect();
        let mut in_window = 0;
        for (k, &i) in starts.iter().enumerate() {
            let next = starts.get(k + 1).copied().unwrap_or(reqs.len());
            let round = &reqs[i..next];
            if in_w(reqs[i].at) {
                in_window += 1;
                let end = round.iter().map(|r| r.end).max().unwrap_or(reqs[i].end);
                round_ms.push((end - reqs[i].at) as f64);
                per_round_requests.push(round.len() as f64);
            }
        }
        rounds_per_account.push(in_window as f64);
        starts_in_window += in_window;
        // Double rounds: from the second round on (the connect flow's own
        // listing and the first round come together).
        let since = connected_at[j].load(Relaxed) as i64 + 60_000;
        let later: Vec<i64> = starts_of[j]
            .iter()
            .copied()
            .filter(|&t| t >= since)
            .collect();
        for w in later.windows(2) {
            let gap = (w[1] - w[0]) as f64 / 1e3;
            let close = gap < interval as f64 / 2.0;
            if close && w[0] < restart_at && w[1] >= restart_at {
                // A round the stopping set-up process gave back, run again.
                cut += 1;
                continue;
            }
            min_gap = min_gap.min(gap);
            if close {
                doubles += 1;
                if double_examples.len() < 5 {
                    double_examples.push(format!("{} {:.1} s apart", email(j), gap));
                }
            }
        }
    }
    let rounds_per_s = starts_in_window as f64 / window_s;
    figures.add(
        S,
        backend,
        "rounds per second (round starts in the emulator log / window)",
        format!(
            "{rounds_per_s:.2} ({starts_in_window} rounds; {total} connections / {interval} s = {:.2} expected)",
            total as f64 / interval as f64
        ),
    );
    let rpa = sorted(rounds_per_account);
    figures.add(
        S,
        backend,
        "rounds per connection in the window: min / median / max",
        format!(
            "{} / {} / {}",
            rpa.first().copied().unwrap_or(0.0),
            percentile(&rpa, 50.0),
            rpa.last().copied().unwrap_or(0.0)
        ),
    );
    // calsync's own count.
    let counted: Vec<String> = (0..c.instances)
        .map(|i| {
            let of = |t: i64| {
                samples
                    .iter()
                    .filter(|s| s.instance == i && s.t <= t)
                    .filter_map(|s| s.rounds_total)
                    .next_back()
            };
            match (of(t0), of(t1)) {
                (Some(a), Some(b)) => format!("{:.2}", (b - a) / window_s),
                _ => "n/a (no calsync_sync_rounds_total)".into(),
            }
        })
        .collect();
    figures.add(
        S,
        backend,
        "rounds per second by calsync_sync_rounds_total (per instance)",
        counted.join(" + "),
    );
    let failed: Vec<String> = (0..c.instances)
        .map(|i| {
            let of = |t: i64| {
                samples
                    .iter()
                    .filter(|s| s.instance == i && s.t <= t)
                    .filter_map(|s| s.failures_total)
                    .next_back()
            };
            match (of(t0), of(t1)) {
                (Some(a), Some(b)) => format!("{:.0}", b - a),
                (None, Some(b)) => format!("{b:.0}"),
                _ => "0".into(),
            }
        })
        .collect();
    figures.add(
        S,
        backend,
        "failed rounds in the window (calsync_sync_failures_total, per instance)",
        failed.join(" + "),
    );
    figures.add(
        S,
        backend,
        "round duration (first request to last answer, emulator log)",
        dist(&sorted(round_ms.iter().map(|v| v / 1e3).collect()), " s"),
    );
    figures.add(
        S,
        backend,
        "provider requests in the window: per second / per round; errors (>= 400)",
        format!(
            "{:.1} / {:.2}; {errors} (+{unattributed_errors} on token endpoints, whole run)",
            requests_in_window as f64 / window_s,
            per_round_requests.iter().sum::<f64>() / per_round_requests.len().max(1) as f64
        ),
    );
    figures.add(
        S,
        backend,
        "changes made at the emulator in the window",
        changes_made,
    );
    if let (Some(a), Some(b)) = (&stats0, &stats1) {
        let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| (y - x) as f64).collect();
        let per_round = |v: f64| v / starts_in_window.max(1) as f64;
        figures.add(
            S,
            backend,
            "PostgreSQL (pg_stat_database) per round: commits, rows inserted / updated / deleted / fetched / returned",
            format!(
                "{:.1} commits ({:.0}/s, {:.0} rollbacks in all); rows {:.1} / {:.1} / {:.1} / {:.0} / {:.0}",
                per_round(d[0]),
                d[0] / window_s,
                d[1],
                per_round(d[2]),
                per_round(d[3]),
                per_round(d[4]),
                per_round(d[5]),
                per_round(d[6])
            ),
        );
    }
    if let (Some(a), Some(b)) = (&tables0, &tables1) {
        let rounds = starts_in_window.max(1) as f64;
        let mut rows = Vec::new();
        for (table, after) in b {
            let before = a.get(table).copied().unwrap_or_default();
            let d: Vec<f64> = (0..5)
                .map(|k| (after[k] - before[k]) as f64 / rounds)
                .collect();
            if d.iter().any(|v| *v >= 0.05) {
                rows.push(format!(
                    "{table}: {:.2} seq scans reading {:.0} rows, {:.2} index scans fetching {:.1} rows, {:.2} rows written",
                    d[0], d[1], d[2], d[3], d[4]
                ));
            }
        }
        figures.add(
            S,
            backend,
            "PostgreSQL (pg_stat_user_tables) per round, by table",
            rows.join("; "),
        );
    }
    if pg_name.is_none() {
        figures.add(
            S,
            backend,
            "SQLite data folder at the end (database + WAL)",
            mib(db.file_bytes() / 1024),
        );
    }

    // Lag.
    let seen = std::mem::take(&mut *seen.lock().map_err(|_| anyhow!("poisoned"))?);
    let mut lags = Vec::new();
    let mut unmatched = 0usize;
    let mut waiting = 0usize;
    let mut api_doubles = 0usize;
    let mut api_cut = 0usize;
    for j in 0..total {
        let Some(s) = seen.get(&(j as u32)) else {
            continue;
        };
        let starts = &starts_of[j];
        for (k, &start) in starts.iter().enumerate() {
            if !in_w(start) {
                continue;
            }
            let prev = if k == 0 { i64::MIN } else { starts[k - 1] };
            // The latest due time seen after the previous round started
            // (due times are whole seconds; the round may start within it).
            let due = s
                .due
                .iter()
                .rev()
                .map(|d| d * 1000)
                .find(|&d| d <= start && d > prev);
            match due {
                Some(d) => lags.push((start - d) as f64 / 1e3),
                None => unmatched += 1,
            }
        }
        // Due and not started at the end of the window: lag so far.
        let last = starts.last().copied().unwrap_or(i64::MIN);
        if let Some(&d) = s.due.iter().next_back() {
            let d = d * 1000;
            if d > last && d < t1 && d >= t0 - (interval as i64) * 1000 {
                lags.push((t1 - d) as f64 / 1e3);
                waiting += 1;
            }
        }
        let runs: Vec<(i64, Option<i64>)> = s.runs.iter().map(|(a, b)| (*a, *b)).collect();
        for w in runs.windows(2) {
            if w[0].0 * 1000 < connected_at[j].load(Relaxed) as i64 + 60_000
                || ((w[1].0 - w[0].0) as f64) >= interval as f64 / 2.0
            {
                continue;
            }
            if w[0].1.is_none() && w[0].0 * 1000 < restart_at {
                api_cut += 1;
            } else {
                api_doubles += 1;
            }
        }
    }
    let lags = sorted(lags);
    figures.add(
        S,
        backend,
        "schedule lag (round start at the emulator - next_sync_at)",
        format!(
            "{}; {unmatched} rounds without a due time seen, {waiting} due and not started at the end (lag so far)",
            dist(&lags, " s")
        ),
    );
    let age: Vec<f64> = sorted(
        samples
            .iter()
            .filter(in_window)
            .filter(|s| s.instance == 0)
            .filter_map(|s| s.oldest_due_age)
            .collect(),
    );
    figures.add(
        S,
        backend,
        "calsync_sync_oldest_due_age_seconds (1 s samples)",
        if age.is_empty() {
            "n/a (metric absent)".into()
        } else {
            dist(&age, " s")
        },
    );
    let due: Vec<f64> = sorted(
        samples
            .iter()
            .filter(in_window)
            .filter(|s| s.instance == 0)
            .filter_map(|s| s.due)
            .collect(),
    );
    if !due.is_empty() {
        figures.add(
            S,
            backend,
            "calsync_sync_due_connections (1 s samples)",
            dist(&due, ""),
        );
    }
    let flight: Vec<f64> = sorted(
        samples
            .iter()
            .filter(in_window)
            .filter_map(|s| s.in_flight)
            .collect(),
    );
    if !flight.is_empty() {
        figures.add(
            S,
            backend,
            "calsync_sync_rounds_in_flight per instance (1 s samples)",
            dist(&flight, ""),
        );
    }
    figures.add(
        S,
        backend,
        "double rounds (two round starts of one account < interval/2 apart; whole run from the 2nd round)",
        format!(
            "{doubles} in the emulator log{}; {api_doubles} in the API's recent runs; closest consecutive rounds {:.1} s apart; \
             rounds cut by the set-up processes' stop and run again: {cut} (log), {api_cut} (API)",
            if double_examples.is_empty() {
                String::new()
            } else {
                format!(" (e.g. {})", double_examples.join(", "))
            },
            min_gap
        ),
    );
    let goal_cpu = cpu_total / c.instances as f64;
    let p99 = percentile(&lags, 99.0);
    figures.add(
        S,
        backend,
        "goal (per instance: < 50 % of one core, < 300 MiB, lag p99 < 30 s)",
        format!(
            "CPU {goal_cpu:.1} % {}, RSS max {:.1} MiB {}, lag p99 {p99:.1} s {}",
            if goal_cpu < 50.0 { "met" } else { "NOT met" },
            rss_total / c.instances as f64,
            if rss_total / (c.instances as f64) < 300.0 {
                "met"
            } else {
                "NOT met"
            },
            if p99 < 30.0 { "met" } else { "NOT met" }
        ),
    );

    if let Some((out, task)) = perf {
        if let Ok(Ok(Ok(o))) = task.await {
            if o.status.success() {
                let report = std::process::Command::new("perf")
                    .args([
                        "report",
                        "--stdio",
                        "--no-children",
                        "--sort",
                        "dso,sym",
                        "-i",
                    ])
                    .arg(&out)
                    .output()?;
                let text = String::from_utf8_lossy(&report.stdout);
                println!("-- perf report (instance 0, {} s):", c.perf.unwrap_or(0));
                for line in text.lines().filter(|l| !l.starts_with('#')).take(60) {
                    println!("{line}");
                }
            } else {
                println!("perf record failed: {}", String::from_utf8_lossy(&o.stderr));
            }
        }
        let _ = std::fs::remove_file(out);
    }

    if let Some(path) = &c.samples {
        let mut csv = String::from(
            "unix_ms,instance,cpu_ms,rss_kb,due,oldest_due_age_s,leased,in_flight,rounds_total,failures_total\n",
        );
        let o = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
        for s in &samples {
            csv.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{}\n",
                s.t,
                s.instance,
                s.proc.cpu_ms,
                s.proc.rss_kb,
                o(s.due),
                o(s.oldest_due_age),
                o(s.leased),
                o(s.in_flight),
                o(s.rounds_total),
                o(s.failures_total)
            ));
        }
        std::fs::write(path, csv)?;
    }
    figures.add(
        S,
        backend,
        "whole run (set-up, first rounds, settling, window)",
        format!(
            "{:.0} s; first rounds done {:.0} s before the window",
            run_started.elapsed().as_secs_f64(),
            (t0 - first_rounds_done) as f64 / 1e3
        ),
    );
    drop(serves);
    drop(db);
    if let Ok(emulator) = Arc::try_unwrap(emulator) {
        emulator.shutdown().await;
    }
    Ok(())
}
