//! `sync-bench`: measures a release `calsync` binary from the outside, as
//! docs/BENCHMARKS.md reports it (sections "Foundation", "Google sync",
//! "Microsoft sync" and "Sync capacity", the last in `capacity.rs`).
//!
//! It starts `calsync serve` as a subprocess on a fresh database (SQLite in a
//! temporary data folder, or a new PostgreSQL database), the Google or
//! Microsoft emulator in-process over real HTTP, and drives both the way a user would: `calsync
//! user add`, `calsync token create`, the login form, "Connect Google
//! Calendar", `POST /api/calendar/sync/`, `calsync sync`. Throughput and
//! latency come from `wrk`; memory and CPU from `/proc/PID/{status,stat}` of
//! the calsync process; provider requests from the emulator's request log.
//!
//! Run through `bench/run.sh`, or:
//! `cargo run --release -p calsync-sync-bench -- --calsync target/release/calsync`
//! (`--help` lists the options). It must not depend on calsync's own crates:
//! it measures the product, seen from outside.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use calsync_emulator::{Emulator, EmulatorConfig, EmulatorHandle, MsGenerate, OAuthClient};
use serde_json::{json, Value};

mod capacity;

const USER: &str = "bench";
const PASSWORD: &str = "a long benchmark password";
const ACCOUNT: &str = "bench@example.com";
const CLIENT_ID: &str = "bench-client.apps.googleusercontent.com";
const CLIENT_SECRET: &str = "bench-client-secret";
const PUBLIC_URL: &str = "http://localhost:8000";
/// A fixed 32-byte key (bytes 0..32): the bench data is thrown away.
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// Google's documented page size limit for events.list.
const GOOGLE_PAGE: usize = 2500;
const MS_ACCOUNT: &str = "bench@contoso.example";
const MS_CLIENT_ID: &str = "5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b";
const MS_CLIENT_SECRET: &str = "bench-ms-client-secret";
/// calsync's `Prefer: odata.maxpagesize` for delta requests
/// (calsync_providers::microsoft::EVENTS_PAGE_SIZE).
const GRAPH_PAGE: usize = 100;

const HELP: &str = "\
sync-bench: Foundation, Google sync and Microsoft sync figures for docs/BENCHMARKS.md

  --calsync PATH          release calsync binary (default target/release/calsync)
  --backends LIST         sqlite,postgres (default both)
  --postgres-url URL      server for fresh databases (default postgres://127.0.0.1:5432/test)
  --parts LIST            foundation,google,microsoft,capacity (default the first three;
                          capacity runs only when named)
  --events N              events in the initial-sync calendar (default 10000; Google and Microsoft)
  --bulk-events N         events in a second calendar, to reach the upcoming-events size (default 90000)
  --no-change-runs N      no-change syncs to average (default 10)
  --wrk-secs N            duration of each wrk run (default 10)
  --wrk-threads N         wrk threads (default 2)
  --wrk-connections N     wrk connections for throughput (default 16)
  --uneven-pages          let the emulator shorten pages as Google does (default: full pages)
  --graph-quirks          Microsoft: keep the emulator's empty second page and repeated
                          items in delta rounds (default: off, so the floor can be reached)
  --json PATH             also write the figures as JSON

Capacity (--parts capacity; docs/BENCHMARKS.md \"Sync capacity\"):
  --connections N         connections per instance (default 10000; Google and Microsoft
                          alternate, 2 or 3 calendars each)
  --instances K           calsync serve processes on one database (default 1; K > 1
                          needs --backends postgres); K x N connections in all
  --interval D            CALSYNC_SYNC_INTERVAL (default 5m)
  --duration SECS         measured steady state (default 600 = 2 intervals)
  --settle SECS           wait after the first rounds before measuring (default 240)
  --latency MIN,MAX       emulator latency per Calendar API / Graph request, ms (default 100,300)
  --per-user N            connections per user (default 4: calsync's per-user limit)
  --events-per-calendar N single events per calendar (default 3; the first calendar of
                          every other account also has a weekly series)
  --changes-per-sec R     event edits at the emulator while measuring (default 1)
  --connect-rate R        connections made per second (default: all within one interval,
                          so that their rounds are spread as in a long-running instance)
  --sweep-secs S          each user's connection list is read once every S seconds to
                          learn when rounds are due (default 240, under 0.9 x interval;
                          0: no sweeps, the lag then only from /metrics)
  --sync-concurrency C    CALSYNC_SYNC_CONCURRENCY of the instances (default: calsync's)
  --user-add-jobs J       `calsync user add` processes at once (default 4)
  --perf SECS             `perf record` calsync for SECS in the middle of the window
  --samples PATH          per-second samples (CPU, RSS, backlog) as CSV
  --quiet SECS            then measure SECS more without the sweeps (default 120)
  --no-restart            measure the processes that did the set-up (logins included)
                          instead of fresh ones started on the same database
";

#[derive(Debug, Clone)]
struct Args {
    calsync: PathBuf,
    backends: Vec<String>,
    postgres_url: String,
    foundation: bool,
    google: bool,
    microsoft: bool,
    events: usize,
    bulk_events: usize,
    no_change_runs: usize,
    wrk_secs: u32,
    wrk_threads: u32,
    wrk_connections: u32,
    uneven_pages: bool,
    graph_quirks: bool,
    json: Option<PathBuf>,
    capacity: bool,
    cap: capacity::CapArgs,
}

impl Args {
    fn parse() -> Result<Self> {
        let mut args = Self {
            calsync: PathBuf::from("target/release/calsync"),
            backends: vec!["sqlite".into(), "postgres".into()],
            postgres_url: "postgres://127.0.0.1:5432/test".into(),
            foundation: true,
            google: true,
            microsoft: true,
            events: 10_000,
            bulk_events: 90_000,
            no_change_runs: 10,
            wrk_secs: 10,
            wrk_threads: 2,
            wrk_connections: 16,
            uneven_pages: false,
            graph_quirks: false,
            json: None,
            capacity: false,
            cap: capacity::CapArgs::default(),
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--help" | "-h" => {
                    print!("{HELP}");
                    std::process::exit(0);
                }
                "--calsync" => args.calsync = value()?.into(),
                "--backends" => args.backends = value()?.split(',').map(str::to_owned).collect(),
                "--postgres-url" => args.postgres_url = value()?,
                "--parts" => {
                    let parts = value()?;
                    args.foundation = parts.contains("foundation");
                    args.google = parts.contains("google");
                    args.microsoft = parts.contains("microsoft");
                    args.capacity = parts.contains("capacity");
                }
                "--events" => args.events = value()?.parse()?,
                "--bulk-events" => args.bulk_events = value()?.parse()?,
                "--no-change-runs" => args.no_change_runs = value()?.parse::<usize>()?.max(1),
                "--wrk-secs" => args.wrk_secs = value()?.parse()?,
                "--wrk-threads" => args.wrk_threads = value()?.parse()?,
                "--wrk-connections" => args.wrk_connections = value()?.parse()?,
                "--uneven-pages" => args.uneven_pages = true,
                "--graph-quirks" => args.graph_quirks = true,
                "--json" => args.json = Some(value()?.into()),
                other if args.cap.flag(other, &mut value)? => {}
                other => bail!("unknown option {other}; see --help"),
            }
        }
        for b in &args.backends {
            if b != "sqlite" && b != "postgres" {
                bail!("unknown backend {b}: use sqlite and/or postgres");
            }
        }
        if args.capacity && args.cap.instances > 1 && args.backends.iter().any(|b| b != "postgres")
        {
            bail!("--instances > 1 shares one database: use --backends postgres");
        }
        args.calsync = std::fs::canonicalize(&args.calsync)
            .with_context(|| format!("no calsync binary at {}", args.calsync.display()))?;
        Ok(args)
    }
}

/// Every figure, in the order measured.
#[derive(Default)]
struct Figures(Vec<(String, String, String, String)>);

impl Figures {
    fn add(&mut self, section: &str, backend: &str, name: &str, value: impl ToString) {
        let value = value.to_string();
        println!("  [{section} / {backend}] {name}: {value}");
        self.0
            .push((section.into(), backend.into(), name.into(), value));
    }

    fn table(&self) -> String {
        let mut out = String::from("| section | backend | figure | value |\n|---|---|---|---|\n");
        for (s, b, n, v) in &self.0 {
            out.push_str(&format!("| {s} | {b} | {n} | {v} |\n"));
        }
        out
    }

    fn json(&self) -> Value {
        Value::Array(
            self.0
                .iter()
                .map(|(s, b, n, v)| json!({"section": s, "backend": b, "figure": n, "value": v}))
                .collect(),
        )
    }
}

// ---------------------------------------------------------------- databases

/// A fresh database for one calsync process; removed again on drop.
struct Database {
    data_dir: PathBuf,
    /// `CALSYNC_DATABASE_URL` for PostgreSQL; SQLite uses the data folder's default.
    url: Option<String>,
    admin_url: String,
    pg_name: Option<String>,
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000_000
    )
}

fn psql(url: &str, sql: &str) -> Result<()> {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qc", sql])
        .output()
        .context("run psql (install postgresql-client)")?;
    if !out.status.success() {
        bail!("psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

impl Database {
    fn create(backend: &str, postgres_url: &str) -> Result<Self> {
        let data_dir = std::env::temp_dir().join(unique("calsync-bench"));
        std::fs::create_dir_all(&data_dir)?;
        let (url, pg_name) = if backend == "postgres" {
            let name = unique("calsync_bench");
            psql(postgres_url, &format!("CREATE DATABASE {name}"))?;
            let base = postgres_url
                .rsplit_once('/')
                .map(|(b, _)| b)
                .unwrap_or(postgres_url);
            (Some(format!("{base}/{name}")), Some(name))
        } else {
            (None, None)
        };
        Ok(Self {
            data_dir,
            url,
            admin_url: postgres_url.to_owned(),
            pg_name,
        })
    }

    fn file_bytes(&self) -> u64 {
        std::fs::read_dir(&self.data_dir)
            .map(|dir| {
                dir.filter_map(|e| e.ok()?.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some(name) = &self.pg_name {
            if let Err(e) = psql(
                &self.admin_url,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            ) {
                eprintln!("sync-bench: {e}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

// ---------------------------------------------------------------- calsync

/// `calsync serve` as a subprocess, its log captured line by line.
struct Serve {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
    /// Lines seen so far at WARN and ERROR level, and "sync finished" lines.
    counts: Arc<LogCounts>,
    calsync: PathBuf,
    env: Vec<(String, String)>,
    startup: Duration,
    http: reqwest::Client,
}

/// Kilobytes, from /proc/PID/status.
#[derive(Debug, Clone, Copy)]
struct Memory {
    rss_kb: u64,
    hwm_kb: u64,
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// What the log said, counted for runs too long to keep every line.
#[derive(Default)]
struct LogCounts {
    warn: std::sync::atomic::AtomicU64,
    error: std::sync::atomic::AtomicU64,
    synced: std::sync::atomic::AtomicU64,
}

impl Serve {
    fn start(calsync: &Path, db: &Database, extra: &[(String, String)]) -> Result<Self> {
        Self::start_keeping(calsync, db, extra, usize::MAX)
    }

    /// Keeps at most `keep` log lines (the newest; older ones are counted in
    /// `counts` only).
    fn start_keeping(
        calsync: &Path,
        db: &Database,
        extra: &[(String, String)],
        keep: usize,
    ) -> Result<Self> {
        let mut env = vec![
            ("CALSYNC_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            (
                "CALSYNC_DATA_DIR".to_owned(),
                db.data_dir.display().to_string(),
            ),
            ("CALSYNC_ENCRYPTION_KEY".to_owned(), KEY.to_owned()),
            ("CALSYNC_PUBLIC_URL".to_owned(), PUBLIC_URL.to_owned()),
        ];
        if let Some(url) = &db.url {
            env.push(("CALSYNC_DATABASE_URL".to_owned(), url.clone()));
        }
        env.extend(extra.iter().cloned());
        let started = Instant::now();
        let mut child = Self::command_with(calsync, &env)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("start calsync serve")?;
        let stderr = child.stderr.take().context("stderr")?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let counts = Arc::new(LogCounts::default());
        let sink = log.clone();
        let tally = counts.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::sync::atomic::Ordering::Relaxed;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let line = strip_ansi(&line);
                if let Some(at) = line.find("listening on http://") {
                    let rest = &line[at + "listening on ".len()..];
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
                }
                if line.contains(" WARN ") {
                    tally.warn.fetch_add(1, Relaxed);
                } else if line.contains(" ERROR ") {
                    tally.error.fetch_add(1, Relaxed);
                }
                if line.contains(SYNC_DONE) {
                    tally.synced.fetch_add(1, Relaxed);
                }
                if let Ok(mut log) = sink.lock() {
                    if log.len() >= keep {
                        let half = log.len() / 2;
                        log.drain(..half.max(1));
                    }
                    log.push(line);
                }
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                let text = log.lock().map(|l| l.join("\n")).unwrap_or_default();
                bail!("calsync serve did not start; log:\n{text}");
            }
        };
        let startup = started.elapsed();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            child,
            base,
            log,
            counts,
            calsync: calsync.to_owned(),
            env,
            startup,
            http,
        })
    }

    fn command_with(calsync: &Path, env: &[(String, String)]) -> Command {
        let mut command = Command::new(calsync);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
    }

    /// `calsync ARGS` on the same database and key, with `stdin` piped in.
    async fn cli(&self, args: &[&str], stdin: Option<&str>) -> Result<Output> {
        let mut command = Self::command_with(&self.calsync, &self.env);
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let stdin = stdin.map(str::to_owned);
        let what = args.join(" ");
        tokio::task::spawn_blocking(move || -> Result<Output> {
            let mut child = command.spawn()?;
            if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
                pipe.write_all(text.as_bytes())?;
            }
            let out = child.wait_with_output()?;
            if !out.status.success() {
                bail!(
                    "calsync {what} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Ok(out)
        })
        .await?
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn memory(&self) -> Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        Ok(Memory {
            rss_kb: field("VmRSS:"),
            hwm_kb: field("VmHWM:"),
        })
    }

    /// User + system CPU time of the process so far.
    fn cpu(&self) -> Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))?;
        let after = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .context("/proc stat")?;
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: u64 = fields.get(11).context("utime")?.parse::<u64>()?
            + fields.get(12).context("stime")?.parse::<u64>()?;
        Ok(Duration::from_millis(ticks * 1000 / clock_ticks()))
    }

    fn lines_with(&self, needle: &str) -> Vec<String> {
        self.log
            .lock()
            .map(|l| l.iter().filter(|x| x.contains(needle)).cloned().collect())
            .unwrap_or_default()
    }

    /// Waits until the log holds `count` lines with `needle`; returns the last.
    async fn wait_for_line(&self, needle: &str, count: usize, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let lines = self.lines_with(needle);
            if lines.len() >= count {
                return lines.last().cloned().context("line");
            }
            if Instant::now() > deadline {
                let tail = self
                    .log
                    .lock()
                    .map(|l| l[l.len().saturating_sub(30)..].join("\n"))
                    .unwrap_or_default();
                bail!("timed out waiting for {needle:?} #{count}; log tail:\n{tail}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A user and a bearer token, through the CLI.
    async fn user_and_token(&self) -> Result<String> {
        self.cli(
            &["user", "add", USER, "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        )
        .await?;
        let out = self.cli(&["token", "create", USER], None).await?;
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    }

    async fn get_json(&self, path: &str, token: &str) -> Result<Value> {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await?;
        let status = response.status();
        let body = response.text().await?;
        if !status.is_success() {
            bail!("GET {path}: {status} {body}");
        }
        Ok(serde_json::from_str(&body)?)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

fn mib(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
}

fn ms(d: Duration) -> String {
    if d >= Duration::from_secs(10) {
        secs(d)
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

// ---------------------------------------------------------------- wrk

struct Wrk {
    requests_per_sec: f64,
    p50: String,
    p99: String,
    requests: u64,
    bad: u64,
}

async fn wrk(url: String, token: &str, threads: u32, connections: u32, secs: u32) -> Result<Wrk> {
    let header = format!("Authorization: Bearer {token}");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("wrk")
            .args([
                "--latency",
                "-t",
                &threads.min(connections).to_string(),
                "-c",
                &connections.to_string(),
                "-d",
                &format!("{secs}s"),
                "-H",
                &header,
                &url,
            ])
            .output()
    })
    .await?
    .context("run wrk (apt-get install -y wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    let find = |prefix: &str| -> Option<String> {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(|v| v.trim().to_owned())
    };
    let requests_per_sec = find("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no Requests/sec in wrk output:\n{text}"))?;
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let non_2xx: u64 = find("Non-2xx or 3xx responses:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let socket_errors: u64 = find("Socket errors:")
        .map(|v| {
            v.split(',')
                .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Ok(Wrk {
        requests_per_sec,
        p50: find("50%").context("no p50")?,
        p99: find("99%").context("no p99")?,
        requests,
        bad: non_2xx + socket_errors,
    })
}

/// Latency at one connection, then throughput at `--wrk-connections`.
async fn load(
    figures: &mut Figures,
    args: &Args,
    section: &str,
    backend: &str,
    label: &str,
    url: String,
    token: &str,
) -> Result<()> {
    for connections in [1, args.wrk_connections] {
        let w = wrk(
            url.clone(),
            token,
            args.wrk_threads,
            connections,
            args.wrk_secs,
        )
        .await?;
        if w.bad > 0 {
            bail!(
                "{label}: {} of {} requests failed (non-2xx or socket errors)",
                w.bad,
                w.requests
            );
        }
        figures.add(
            section,
            backend,
            &format!("{label}, {connections} conn: req/s"),
            format!("{:.0}", w.requests_per_sec),
        );
        figures.add(
            section,
            backend,
            &format!("{label}, {connections} conn: p50 / p99"),
            format!("{} / {}", w.p50, w.p99),
        );
    }
    Ok(())
}

// ---------------------------------------------------------------- foundation

async fn foundation(args: &Args, backend: &str, figures: &mut Figures) -> Result<()> {
    const S: &str = "Foundation";
    let db = Database::create(backend, &args.postgres_url)?;
    let serve = Serve::start(&args.calsync, &db, &[])?;
    figures.add(
        S,
        backend,
        "start to listening (fresh database, migrations)",
        ms(serve.startup),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = serve.memory()?;
    figures.add(S, backend, "idle RSS after start (VmRSS)", mib(idle.rss_kb));
    figures.add(S, backend, "peak RSS at start (VmHWM)", mib(idle.hwm_kb));

    let token = serve.user_and_token().await?;
    let path = "/api/calendar/events/upcoming/";
    let body = serve.get_json(path, &token).await?;
    if body != json!([]) {
        bail!("expected [] from an empty database, got {body}");
    }
    load(
        figures,
        args,
        S,
        backend,
        "GET upcoming, empty database",
        serve.url(path),
        &token,
    )
    .await?;
    let after = serve.memory()?;
    figures.add(S, backend, "RSS after the load (VmRSS)", mib(after.rss_kb));
    figures.add(
        S,
        backend,
        "peak RSS during the load (VmHWM)",
        mib(after.hwm_kb),
    );
    Ok(())
}

// ---------------------------------------------------------------- google

/// Provider requests since `after_seq`, by kind.
fn requests_since(emulator: &EmulatorHandle, after_seq: u64) -> BTreeMap<String, u64> {
    let mut kinds = BTreeMap::new();
    for entry in emulator
        .requests()
        .into_iter()
        .filter(|e| e.seq > after_seq)
    {
        let p = entry.path.as_str();
        let kind = if p.ends_with("/calendarList") {
            "calendarList.list".to_owned()
        } else if p.ends_with("/events") && entry.method == "GET" {
            "events.list".to_owned()
        } else if p == "/token" || p.ends_with("/oauth2/v2.0/token") {
            "token".to_owned()
        } else if p.ends_with("/calendarView/delta") {
            "delta".to_owned()
        } else if p == "/v1.0/me/calendars" {
            "calendars".to_owned()
        } else if p == "/v1.0/me" {
            "me".to_owned()
        } else if p.contains("userinfo") {
            "userinfo".to_owned()
        } else {
            format!("{} {p}", entry.method)
        };
        *kinds.entry(kind).or_insert(0) += 1;
    }
    kinds
}

fn last_seq(emulator: &EmulatorHandle) -> u64 {
    emulator.requests().iter().map(|e| e.seq).max().unwrap_or(0)
}

fn describe(kinds: &BTreeMap<String, u64>) -> String {
    let total: u64 = kinds.values().sum();
    let parts: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    format!("{total} ({})", parts.join(", "))
}

/// `key=value` from a log line.
fn log_field(line: &str, key: &str) -> Option<String> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .map(|v| v.trim_matches('"').to_owned())
}

/// The worker's own account of a sync. Its `ms=` field is left out: it is
/// the millisecond component of a jiff `Span`, not the duration.
fn sync_summary(line: &str) -> String {
    format!(
        "status={} requests={} changes={}",
        log_field(line, "status").unwrap_or_default(),
        log_field(line, "requests").unwrap_or_default(),
        log_field(line, "changes").unwrap_or_default(),
    )
}

/// The 1-minute load average: the machine may be shared.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default()
}

struct Control {
    http: reqwest::Client,
    base: String,
}

impl Control {
    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        let response = self
            .http
            .post(format!("{}/_emulator{path}", self.base))
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("emulator {path}: {status} {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `count` one-hour events, `every` minutes apart, from 30 days ago.
    async fn generate(&self, calendar: &str, count: usize, every: i64) -> Result<Duration> {
        let now = jiff::Timestamp::now().as_second();
        let start = jiff::Timestamp::from_second(now - now.rem_euclid(3600) - 30 * 86_400)?;
        let t = Instant::now();
        self.post(
            &format!("/accounts/{ACCOUNT}/calendars/{calendar}/events/generate"),
            json!({"count": count, "start": start.to_string(), "every_minutes": every, "summary_prefix": "Bench event"}),
        )
        .await?;
        Ok(t.elapsed())
    }
}

fn cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect()
}

fn location(response: &reqwest::Response) -> Result<String> {
    Ok(response
        .headers()
        .get("location")
        .context("no Location header")?
        .to_str()?
        .to_owned())
}

/// Login form, "Connect Google Calendar", consent (auto-approved for
/// `login_hint`); returns the callback path to deliver to calsync and the cookie.
async fn start_connect(serve: &Serve) -> Result<(String, String)> {
    start_connect_to(serve, "google", ACCOUNT).await
}

/// The same for `provider` (`google`, `microsoft`), signing in as `account`.
async fn start_connect_to(
    serve: &Serve,
    provider: &str,
    account: &str,
) -> Result<(String, String)> {
    let login = serve
        .http
        .post(serve.url("/login"))
        .header("origin", PUBLIC_URL)
        .form(&[("username", USER), ("password", PASSWORD)])
        .send()
        .await?;
    if login.status() != 303 {
        bail!("login: {}", login.status());
    }
    let cookie = cookies(&login).join("; ");
    let response = serve
        .http
        .get(serve.url(&format!("/api/calendar/{provider}/authorize/")))
        .header("cookie", &cookie)
        .header("accept", "application/json")
        .send()
        .await?;
    let body: Value = response.json().await?;
    let url = body["authorization_url"]
        .as_str()
        .with_context(|| format!("authorize: {body}"))?;
    let consent = serve
        .http
        .get(format!("{url}&login_hint={account}"))
        .send()
        .await?;
    if consent.status() != 302 {
        bail!("consent: {}", consent.status());
    }
    let back = location(&consent)?;
    let path = back
        .strip_prefix(PUBLIC_URL)
        .ok_or_else(|| anyhow!("redirect to {back}, not to the public URL"))?
        .to_owned();
    Ok((path, cookie))
}

const SYNC_DONE: &str = "sync finished";
const SYNC_TIMEOUT: Duration = Duration::from_secs(1800);

/// `POST /api/calendar/sync/` and waits for the worker's "sync finished".
async fn manual_sync(serve: &Serve, token: &str) -> Result<(Duration, String)> {
    let before = serve.lines_with(SYNC_DONE).len();
    let t = Instant::now();
    let response = serve
        .http
        .post(serve.url("/api/calendar/sync/"))
        .bearer_auth(token)
        .send()
        .await?;
    if response.status() != 202 {
        bail!("POST sync: {}", response.status());
    }
    let line = serve
        .wait_for_line(SYNC_DONE, before + 1, SYNC_TIMEOUT)
        .await?;
    Ok((t.elapsed(), line))
}

/// What delivering the OAuth callback cost, up to the worker's first
/// "sync finished": the token exchange, the calendar list and the first
/// round of every calendar.
struct Initial {
    wall: Duration,
    cpu: Duration,
    before: Memory,
    after: Memory,
    line: String,
    kinds: BTreeMap<String, u64>,
}

async fn initial_round(
    serve: &Serve,
    emulator: &EmulatorHandle,
    callback: &str,
    cookie: &str,
) -> Result<Initial> {
    let seq = last_seq(emulator);
    let before = serve.memory()?;
    let cpu_before = serve.cpu()?;
    let t = Instant::now();
    let response = serve
        .http
        .get(serve.url(callback))
        .header("cookie", cookie)
        .send()
        .await?;
    if response.status() != 303 {
        bail!("callback: {} {}", response.status(), response.text().await?);
    }
    let line = serve.wait_for_line(SYNC_DONE, 1, SYNC_TIMEOUT).await?;
    let wall = t.elapsed();
    let cpu = serve.cpu()?.saturating_sub(cpu_before);
    let after = serve.memory()?;
    Ok(Initial {
        wall,
        cpu,
        before,
        after,
        line,
        kinds: requests_since(emulator, seq),
    })
}

async fn google(args: &Args, backend: &str, figures: &mut Figures) -> Result<()> {
    const S: &str = "Google sync";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let emulator = Emulator::start(
        listener,
        EmulatorConfig {
            clients: vec![OAuthClient::new(
                CLIENT_ID,
                CLIENT_SECRET,
                [format!("{PUBLIC_URL}/api/calendar/google/callback/")],
            )],
            auto_approve: true,
            sample_data: false,
            ..EmulatorConfig::default()
        },
    )?;
    let uneven = args.uneven_pages;
    emulator.update_settings(|s| s.uneven_pages = uneven);
    emulator.add_account(ACCOUNT, Some("Bench"));
    let base = emulator.base_url().to_owned();
    let control = Control {
        http: reqwest::Client::new(),
        base: base.clone(),
    };
    let n = args.events;
    // One-hour events every hour from 30 days ago: all inside calsync's
    // occurrence horizon (60 days back, 400 ahead) for N up to ~10,000.
    control.generate("primary", n, 60).await?;

    let db = Database::create(backend, &args.postgres_url)?;
    let env: Vec<(String, String)> = [
        ("CALSYNC_GOOGLE_CLIENT_ID", CLIENT_ID.to_owned()),
        ("CALSYNC_GOOGLE_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
        (
            "CALSYNC_GOOGLE_AUTH_URL",
            format!("{base}/o/oauth2/v2/auth"),
        ),
        ("CALSYNC_GOOGLE_TOKEN_URL", format!("{base}/token")),
        ("CALSYNC_GOOGLE_API_BASE", base.clone()),
        ("CALSYNC_GOOGLE_REVOKE_URL", format!("{base}/revoke")),
        ("CALSYNC_SYNC_INTERVAL", "1h".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let serve = Serve::start(&args.calsync, &db, &env)?;
    let token = serve.user_and_token().await?;
    let (callback, cookie) = start_connect(&serve).await?;

    // Initial sync: from delivering the OAuth callback (token exchange,
    // calendar list, first sync by the worker) to "sync finished".
    let Initial {
        wall,
        cpu,
        before,
        after,
        line,
        kinds,
    } = initial_round(&serve, &emulator, &callback, &cookie).await?;
    let label = format!("initial sync, {n} events");
    figures.add(
        S,
        backend,
        &format!("{label}: wall (callback to synced)"),
        secs(wall),
    );
    figures.add(
        S,
        backend,
        &format!("{label}: calsync serve CPU (user+sys)"),
        ms(cpu),
    );
    figures.add(
        S,
        backend,
        &format!("{label}: worker log"),
        sync_summary(&line),
    );
    figures.add(
        S,
        backend,
        &format!("{label}: provider requests"),
        describe(&kinds),
    );
    figures.add(
        S,
        backend,
        &format!("{label}: events.list floor ceil(N/2500)"),
        n.div_ceil(GOOGLE_PAGE),
    );
    figures.add(
        S,
        backend,
        &format!("{label}: calsync RSS before / after / peak"),
        format!(
            "{} / {} / {}",
            mib(before.rss_kb),
            mib(after.rss_kb),
            mib(after.hwm_kb)
        ),
    );
    if log_field(&line, "status").as_deref() != Some("ok") {
        bail!("initial sync did not succeed: {line}");
    }
    let stored = serve
        .get_json("/api/calendar/events/upcoming/?limit=500&days=366", &token)
        .await?;
    let stored = stored.as_array().map(Vec::len).unwrap_or(0);
    if stored == 0 {
        bail!("no upcoming events after the initial sync");
    }

    // No-change syncs through the API: requests and CPU of calsync per sync.
    let runs = args.no_change_runs;
    let (mut cpu, mut wall) = (Duration::ZERO, Duration::ZERO);
    let seq = last_seq(&emulator);
    let mut last = String::new();
    for _ in 0..runs {
        let c = serve.cpu()?;
        let (w, line) = manual_sync(&serve, &token).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
        cpu += serve.cpu()?.saturating_sub(c);
        wall += w;
        last = line;
    }
    let kinds = requests_since(&emulator, seq);
    let per_sync: Vec<String> = kinds
        .iter()
        .map(|(k, v)| format!("{:.2} {k}", *v as f64 / runs as f64))
        .collect();
    figures.add(
        S,
        backend,
        &format!("no-change sync (API, mean of {runs}): provider requests per sync"),
        format!("{} (1 calendar, 1 connection)", per_sync.join(", ")),
    );
    figures.add(
        S,
        backend,
        &format!("no-change sync (API, mean of {runs}): wall (POST to synced)"),
        ms(wall / runs as u32),
    );
    figures.add(
        S,
        backend,
        &format!("no-change sync (API, mean of {runs}): calsync serve CPU (user+sys)"),
        ms(cpu / runs as u32),
    );
    figures.add(
        S,
        backend,
        "no-change sync (API): worker log",
        sync_summary(&last),
    );

    // The same through the CLI: a whole `calsync sync` process.
    let seq = last_seq(&emulator);
    let timed = time_cli(&serve, runs).await?;
    let kinds = requests_since(&emulator, seq);
    figures.add(
        S,
        backend,
        &format!(
            "no-change `calsync sync` (CLI process, mean of {runs}): wall / CPU user+sys / max RSS"
        ),
        timed,
    );
    figures.add(
        S,
        backend,
        &format!("no-change `calsync sync` (CLI process, {runs} runs): provider requests"),
        describe(&kinds),
    );

    // A second calendar brings the user to N + bulk events.
    let bulk = args.bulk_events;
    if bulk > 0 {
        let created = control
            .post(
                &format!("/accounts/{ACCOUNT}/calendars"),
                json!({"summary": "Bulk"}),
            )
            .await?;
        let id = created["id"].as_str().context("calendar id")?.to_owned();
        // Every 5 minutes: 90,000 events span ~312 days, inside the horizon.
        control.generate(&id, bulk, 5).await?;
        let seq = last_seq(&emulator);
        let cpu_before = serve.cpu()?;
        let (w, line) = manual_sync(&serve, &token).await?;
        let cpu = serve.cpu()?.saturating_sub(cpu_before);
        let kinds = requests_since(&emulator, seq);
        let mem = serve.memory()?;
        let label = format!("adding a calendar of {bulk} events (sync)");
        figures.add(
            S,
            backend,
            &format!("{label}: wall (POST to synced)"),
            secs(w),
        );
        figures.add(
            S,
            backend,
            &format!("{label}: calsync serve CPU (user+sys)"),
            ms(cpu),
        );
        figures.add(
            S,
            backend,
            &format!("{label}: worker log"),
            sync_summary(&line),
        );
        figures.add(
            S,
            backend,
            &format!("{label}: provider requests"),
            describe(&kinds),
        );
        figures.add(
            S,
            backend,
            &format!("{label}: events.list floor"),
            format!("{} + 1 no-change", bulk.div_ceil(GOOGLE_PAGE)),
        );
        figures.add(
            S,
            backend,
            &format!("{label}: calsync RSS after / peak since start"),
            format!("{} / {}", mib(mem.rss_kb), mib(mem.hwm_kb)),
        );
        if log_field(&line, "status").as_deref() != Some("ok") {
            bail!("bulk sync did not succeed: {line}");
        }
        if backend == "sqlite" {
            figures.add(
                S,
                backend,
                &format!("data folder size with {} events", n + bulk),
                mib(db.file_bytes() / 1024),
            );
        }
    }

    let total = n + bulk;
    for (label, path) in [
        (
            format!("GET upcoming (limit 50, 30 days), {total} events"),
            "/api/calendar/events/upcoming/",
        ),
        (
            format!("GET upcoming?limit=500&days=366, {total} events"),
            "/api/calendar/events/upcoming/?limit=500&days=366",
        ),
    ] {
        let body = serve.get_json(path, &token).await?;
        if body.as_array().is_none_or(Vec::is_empty) {
            bail!("{label}: no events answered");
        }
        load(figures, args, S, backend, &label, serve.url(path), &token).await?;
    }
    let mem = serve.memory()?;
    figures.add(
        S,
        backend,
        "calsync RSS at the end / peak over the whole run",
        format!("{} / {}", mib(mem.rss_kb), mib(mem.hwm_kb)),
    );
    drop(serve);
    emulator.shutdown().await;
    Ok(())
}

/// Initial round and no-change delta of an N-event Outlook calendar (one
/// calendar: the account's default one), as `google` measures Google.
async fn microsoft(args: &Args, backend: &str, figures: &mut Figures) -> Result<()> {
    const S: &str = "Microsoft sync";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let emulator = Emulator::start(
        listener,
        EmulatorConfig {
            clients: vec![OAuthClient::new(
                MS_CLIENT_ID,
                MS_CLIENT_SECRET,
                [format!("{PUBLIC_URL}/api/calendar/microsoft/callback/")],
            )],
            auto_approve: true,
            sample_data: false,
            ..EmulatorConfig::default()
        },
    )?;
    let quirks = args.graph_quirks;
    emulator.ms_update_settings(|s| {
        s.delta_empty_page = quirks;
        s.delta_repeat_item = quirks;
    });
    emulator.ms_add_account(MS_ACCOUNT, Some("Bench"), None);
    let n = args.events;
    // One-hour events every hour from 30 days ago: inside the delta window
    // calsync asks for (60 days back, 400 ahead) for N up to ~10,000.
    let now = jiff::Timestamp::now().as_second();
    let start = jiff::Timestamp::from_second(now - now.rem_euclid(3600) - 30 * 86_400)?;
    emulator
        .ms_generate_events(
            MS_ACCOUNT,
            "default",
            &MsGenerate {
                count: n,
                start: Some(start.to_string()),
                every_minutes: 60,
                duration_minutes: 60,
                subject_prefix: "Bench event".into(),
                time_zone: None,
            },
        )
        .map_err(|e| anyhow!("generate: {e:?}"))?;
    let endpoints = emulator.microsoft();

    let db = Database::create(backend, &args.postgres_url)?;
    let env: Vec<(String, String)> = [
        ("CALSYNC_MICROSOFT_CLIENT_ID", MS_CLIENT_ID.to_owned()),
        (
            "CALSYNC_MICROSOFT_CLIENT_SECRET",
            MS_CLIENT_SECRET.to_owned(),
        ),
        ("CALSYNC_MICROSOFT_AUTH_URL", endpoints.auth_url),
        ("CALSYNC_MICROSOFT_TOKEN_URL", endpoints.token_url),
        ("CALSYNC_MICROSOFT_API_BASE", endpoints.api_base),
        ("CALSYNC_SYNC_INTERVAL", "1h".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let serve = Serve::start(&args.calsync, &db, &env)?;
    let token = serve.user_and_token().await?;
    let (callback, cookie) = start_connect_to(&serve, "microsoft", MS_ACCOUNT).await?;

    // Initial round: from delivering the OAuth callback (code exchange, /me,
    // calendar list, first delta round by the worker) to "sync finished".
    let Initial {
        wall,
        cpu,
        before,
        after,
        line,
        kinds,
    } = initial_round(&serve, &emulator, &callback, &cookie).await?;
    let label = format!("initial round, {n} events");
    figures.add(
        S,
        backend,
        &format!("{label}: wall (callback to synced)"),
        secs(wall),
    );
    figures.add(
        S,
        backend,
        &format!("{label}: calsync serve CPU (user+sys)"),
        ms(cpu),
    );
    figures.add(
        S,
        backend,
        &format!("{label}: worker log"),
        sync_summary(&line),
    );
    figures.add(
        S,
        backend,
        &format!("{label}: Graph + identity requests"),
        describe(&kinds),
    );
    figures.add(
        S,
        backend,
        &format!("{label}: delta floor ceil(N/{GRAPH_PAGE})"),
        n.div_ceil(GRAPH_PAGE),
    );
    figures.add(
        S,
        backend,
        &format!("{label}: calsync RSS before / after / peak"),
        format!(
            "{} / {} / {}",
            mib(before.rss_kb),
            mib(after.rss_kb),
            mib(after.hwm_kb)
        ),
    );
    if log_field(&line, "status").as_deref() != Some("ok") {
        bail!("initial round did not succeed: {line}");
    }
    // The range API answers at most 5,000 occurrences: ask in windows of
    // 4,000 hours, cut on the hour (the events are back to back, one an hour).
    let mut stored = 0;
    let mut from = start.as_second();
    let last = start.as_second() + n as i64 * 3600;
    while from < last {
        let to = (from + 4000 * 3600).min(last);
        let range = format!(
            "/api/calendar/events/?start={}&end={}",
            jiff::Timestamp::from_second(from)?,
            jiff::Timestamp::from_second(to)?
        );
        let answered = serve.get_json(&range, &token).await?;
        stored += answered.as_array().map(Vec::len).unwrap_or(0);
        from = to;
    }
    figures.add(
        S,
        backend,
        &format!("{label}: events answered by the range API"),
        stored,
    );
    if stored != n {
        bail!("{stored} events stored, {n} expected");
    }

    // No-change rounds through the API: one delta per calendar.
    let runs = args.no_change_runs;
    let (mut cpu, mut wall) = (Duration::ZERO, Duration::ZERO);
    let seq = last_seq(&emulator);
    let mut last = String::new();
    let mut peak = 0;
    for _ in 0..runs {
        let c = serve.cpu()?;
        let (w, line) = manual_sync(&serve, &token).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
        cpu += serve.cpu()?.saturating_sub(c);
        wall += w;
        last = line;
        peak = peak.max(serve.memory()?.rss_kb);
    }
    let kinds = requests_since(&emulator, seq);
    let per_sync: Vec<String> = kinds
        .iter()
        .map(|(k, v)| format!("{:.2} {k}", *v as f64 / runs as f64))
        .collect();
    figures.add(
        S,
        backend,
        &format!("no-change delta (API, mean of {runs}): requests per sync"),
        format!("{} (1 calendar, 1 connection)", per_sync.join(", ")),
    );
    figures.add(
        S,
        backend,
        &format!("no-change delta (API, mean of {runs}): wall (POST to synced)"),
        ms(wall / runs as u32),
    );
    figures.add(
        S,
        backend,
        &format!("no-change delta (API, mean of {runs}): calsync serve CPU (user+sys)"),
        ms(cpu / runs as u32),
    );
    figures.add(
        S,
        backend,
        "no-change delta (API): worker log",
        sync_summary(&last),
    );
    let mem = serve.memory()?;
    figures.add(
        S,
        backend,
        "no-change delta (API): calsync RSS largest after a round / peak since start",
        format!("{} / {}", mib(peak), mib(mem.hwm_kb)),
    );

    let seq = last_seq(&emulator);
    let timed = time_cli(&serve, runs).await?;
    let kinds = requests_since(&emulator, seq);
    figures.add(
        S,
        backend,
        &format!(
            "no-change `calsync sync` (CLI process, mean of {runs}): wall / CPU user+sys / max RSS"
        ),
        timed,
    );
    figures.add(
        S,
        backend,
        &format!("no-change `calsync sync` (CLI process, {runs} runs): requests"),
        describe(&kinds),
    );
    drop(serve);
    emulator.shutdown().await;
    Ok(())
}

/// `/usr/bin/time calsync sync`, `runs` times: mean wall and CPU (user+sys)
/// and the largest max RSS of the whole CLI process.
async fn time_cli(serve: &Serve, runs: usize) -> Result<String> {
    let (mut wall, mut cpu, mut rss) = (0.0, 0.0, 0.0_f64);
    for _ in 0..runs {
        let v = time_cli_once(serve).await?;
        wall += v[0];
        cpu += v[1] + v[2];
        rss = rss.max(v[3]);
    }
    let n = runs as f64;
    Ok(format!(
        "{:.0} ms / {:.0} ms / {}",
        wall / n * 1e3,
        cpu / n * 1e3,
        mib(rss as u64)
    ))
}

/// One `calsync sync` under `/usr/bin/time`: seconds wall, user, sys; max RSS in KiB.
async fn time_cli_once(serve: &Serve) -> Result<Vec<f64>> {
    let mut command = Command::new("/usr/bin/time");
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(serve.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(["-f", "TIME %e %U %S %M"])
        .arg(&serve.calsync)
        .arg("sync");
    let out = tokio::task::spawn_blocking(move || command.output())
        .await?
        .context("run /usr/bin/time (apt-get install -y time)")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("calsync sync failed: {stderr}");
    }
    let line = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("TIME "))
        .context("no /usr/bin/time output")?;
    let v: Vec<f64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() != 4 {
        bail!("unexpected /usr/bin/time output: {line}");
    }
    Ok(v)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse()?;
    let mut figures = Figures::default();
    println!(
        "sync-bench: {} on {} cores",
        args.calsync.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for backend in &args.backends {
        if args.foundation {
            println!("== Foundation on {backend}");
            figures.add("Foundation", backend, "load average before", load_average());
            foundation(&args, backend, &mut figures)
                .await
                .with_context(|| format!("Foundation on {backend}"))?;
        }
        if args.google {
            println!("== Google sync on {backend}");
            figures.add(
                "Google sync",
                backend,
                "load average before",
                load_average(),
            );
            google(&args, backend, &mut figures)
                .await
                .with_context(|| format!("Google sync on {backend}"))?;
        }
        if args.microsoft {
            println!("== Microsoft sync on {backend}");
            figures.add(
                "Microsoft sync",
                backend,
                "load average before",
                load_average(),
            );
            microsoft(&args, backend, &mut figures)
                .await
                .with_context(|| format!("Microsoft sync on {backend}"))?;
        }
        if args.capacity {
            println!("== Sync capacity on {backend}");
            figures.add(
                "Sync capacity",
                backend,
                "load average before",
                load_average(),
            );
            capacity::run(&args, backend, &mut figures)
                .await
                .with_context(|| format!("Sync capacity on {backend}"))?;
        }
    }
    println!("\n{}", figures.table());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&figures.json())?)?;
    }
    Ok(())
}
