//! Logging and metrics. Logs go to stderr (`RUST_LOG` filters, default info);
//! request fields are method, route template and status, never headers,
//! cookies, query strings or bodies, so no token can reach a log line.
//!
//! Every label of `/metrics` comes from a closed set (known methods, route
//! templates, providers, failure kinds), so no client or provider can grow
//! the number of series.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use calsync_store::SyncBacklog;
use jiff::Timestamp;
use tracing_subscriber::EnvFilter;

/// Installs the log subscriber once.
pub fn init_logging() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Request counters and the sync engine's health for `/metrics` in the
/// Prometheus text format.
pub struct Metrics {
    started: Instant,
    requests: Mutex<BTreeMap<(&'static str, String, u16), RequestStats>>,
    /// The sync engine reports here; `/readyz` asks it whether the worker runs.
    pub sync: SyncMetrics,
}

#[derive(Default, Clone, Copy)]
struct RequestStats {
    count: u64,
    seconds: f64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            requests: Mutex::new(BTreeMap::new()),
            sync: SyncMetrics::default(),
        }
    }
}

/// The methods counted under their own name; any other is `OTHER`.
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// `method` if it is a standard one, else `OTHER`, so that invented methods
/// cannot add series.
fn method_label(method: &str) -> &'static str {
    METHODS
        .into_iter()
        .find(|m| *m == method)
        .unwrap_or("OTHER")
}

impl Metrics {
    /// Counts one finished request under its route template (never the raw path,
    /// which would let clients grow the map without bound) and its method
    /// (`OTHER` for any method but the standard seven, for the same reason).
    pub fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        if let Ok(mut map) = self.requests.lock() {
            let stats = map
                .entry((method_label(method), route.to_owned(), status))
                .or_default();
            stats.count += 1;
            stats.seconds += seconds;
        }
    }

    /// The Prometheus text exposition, without the sync backlog.
    pub fn render(&self) -> String {
        self.render_with_backlog(None)
    }

    /// The Prometheus text exposition; `backlog` is the sync backlog and the
    /// instant it was read at, or `None` when the database did not answer
    /// (its lines are left out, the rest is rendered).
    pub fn render_with_backlog(&self, backlog: Option<(&SyncBacklog, Timestamp)>) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP calsync_build_info Version of the running calsync."
        );
        let _ = writeln!(out, "# TYPE calsync_build_info gauge");
        let _ = writeln!(
            out,
            "calsync_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        let _ = writeln!(
            out,
            "# HELP calsync_uptime_seconds Seconds since the process started."
        );
        let _ = writeln!(out, "# TYPE calsync_uptime_seconds gauge");
        let _ = writeln!(
            out,
            "calsync_uptime_seconds {:.3}",
            self.started.elapsed().as_secs_f64()
        );
        let map = self.requests.lock().map(|m| m.clone()).unwrap_or_default();
        let _ = writeln!(
            out,
            "# HELP calsync_http_requests_total HTTP requests answered."
        );
        let _ = writeln!(out, "# TYPE calsync_http_requests_total counter");
        for ((method, route, status), stats) in &map {
            let _ = writeln!(
                out,
                "calsync_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {}",
                stats.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP calsync_http_request_duration_seconds_sum Time spent answering."
        );
        let _ = writeln!(
            out,
            "# TYPE calsync_http_request_duration_seconds_sum counter"
        );
        for ((method, route, status), stats) in &map {
            let _ = writeln!(
                out,
                "calsync_http_request_duration_seconds_sum{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {:.6}",
                stats.seconds
            );
        }
        self.sync.render(&mut out);
        if let Some((backlog, now)) = backlog {
            render_backlog(&mut out, backlog, now);
        }
        out
    }
}

/// The backlog gauges: what waits for a round, across all instances.
fn render_backlog(out: &mut String, backlog: &SyncBacklog, now: Timestamp) {
    let age = backlog
        .oldest_due_at
        .map_or(0, |oldest| (now.as_second() - oldest.as_second()).max(0));
    let gauges = [
        (
            "calsync_sync_due_connections",
            "Connections due for a sync round that no instance holds.",
            backlog.due,
        ),
        (
            "calsync_sync_oldest_due_age_seconds",
            "How long the longest-waiting due connection has been due (0 when none is).",
            u64::try_from(age).unwrap_or(0),
        ),
        (
            "calsync_sync_leased_connections",
            "Connections under a live sync lease: rounds in flight on all instances.",
            backlog.leased,
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        let _ = writeln!(out, "{name} {value}");
    }
}

/// The providers rounds are counted under; anything else is `other`.
const PROVIDERS: [&str; 5] = ["google", "microsoft", "caldav", "ics", "other"];

/// The failure kinds the sync engine reports; anything else is `other` (last).
const FAILURE_KINDS: [&str; 11] = [
    "rate_limited",
    "unauthorized",
    "network",
    "timeout",
    "provider",
    "store",
    "panic",
    "deadline",
    "lease_lost",
    "held",
    "other",
];

/// Upper bounds of the round duration histogram's buckets, in seconds
/// (`+Inf` follows).
const DURATION_BUCKETS: [f64; 11] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// How long after its last beat the worker still counts as running.
const BEAT_TIMEOUT: Duration = Duration::from_secs(30);

/// The index of `provider` in [`PROVIDERS`], `other` for unknown names.
fn provider_index(provider: &str) -> usize {
    PROVIDERS
        .iter()
        .position(|p| *p == provider)
        .unwrap_or(PROVIDERS.len() - 1)
}

/// The index of `kind` in [`FAILURE_KINDS`], `other` for unknown kinds.
fn failure_index(kind: &str) -> usize {
    FAILURE_KINDS
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(FAILURE_KINDS.len() - 1)
}

/// One provider's rounds: outcomes, failure kinds and the duration histogram.
#[derive(Default)]
struct ProviderRounds {
    ok: AtomicU64,
    failed: AtomicU64,
    failures: [AtomicU64; FAILURE_KINDS.len()],
    /// Rounds per bucket, not cumulative; the last one is `+Inf` alone.
    buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    /// The `f64` sum of the durations, as bits.
    seconds_bits: AtomicU64,
}

impl ProviderRounds {
    fn total(&self) -> u64 {
        self.ok.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed)
    }
}

/// The sync engine's health, reported by the engine and read by `/readyz`
/// and `/metrics`. Lock-free: every field is an atomic, and every label set
/// is fixed, so a report never allocates.
pub struct SyncMetrics {
    /// What beats are measured from.
    epoch: Instant,
    /// Milliseconds from `epoch` to the last beat, plus one; 0 before the first.
    last_beat: AtomicU64,
    stopped: AtomicBool,
    in_flight: AtomicU64,
    rounds: [ProviderRounds; PROVIDERS.len()],
}

impl Default for SyncMetrics {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            last_beat: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            in_flight: AtomicU64::new(0),
            rounds: Default::default(),
        }
    }
}

impl SyncMetrics {
    /// The worker loop runs; called at least every 5 s while it does. A beat
    /// after [`SyncMetrics::worker_stopped`] means the loop runs again.
    pub fn worker_beat(&self) {
        self.beat_at(Instant::now());
    }

    /// The worker loop ended.
    pub fn worker_stopped(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    /// Whether the worker beat within the last 30 s and has not stopped;
    /// false before the first beat.
    pub fn worker_alive(&self) -> bool {
        self.alive_at(Instant::now())
    }

    /// A round began.
    pub fn round_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// A round of a `provider` connection (`google`, `microsoft`, `caldav`,
    /// `ics`) ended after `seconds`; `failure` is `None` on success, else its
    /// kind (`rate_limited`, `unauthorized`, `network`, `timeout`,
    /// `provider`, `store`, `panic`, `deadline`, `lease_lost`, `held`,
    /// `other`). Unknown providers and kinds count as `other`; a negative or
    /// non-finite duration counts as 0.
    pub fn round_finished(&self, provider: &str, seconds: f64, failure: Option<&str>) {
        let _ = self
            .in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(1))
            });
        let rounds = &self.rounds[provider_index(provider)];
        match failure {
            None => rounds.ok.fetch_add(1, Ordering::Relaxed),
            Some(kind) => {
                rounds.failures[failure_index(kind)].fetch_add(1, Ordering::Relaxed);
                rounds.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
        let seconds = if seconds.is_finite() && seconds > 0.0 {
            seconds
        } else {
            0.0
        };
        let bucket = DURATION_BUCKETS
            .iter()
            .position(|le| seconds <= *le)
            .unwrap_or(DURATION_BUCKETS.len());
        rounds.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let _ = rounds
            .seconds_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + seconds).to_bits())
            });
    }

    fn beat_at(&self, at: Instant) {
        let millis = u64::try_from(at.saturating_duration_since(self.epoch).as_millis())
            .unwrap_or(u64::MAX - 1);
        self.last_beat.store(millis + 1, Ordering::SeqCst);
        self.stopped.store(false, Ordering::SeqCst);
    }

    fn alive_at(&self, now: Instant) -> bool {
        let last = self.last_beat.load(Ordering::SeqCst);
        if last == 0 || self.stopped.load(Ordering::SeqCst) {
            return false;
        }
        let beat = self.epoch + Duration::from_millis(last - 1);
        now.saturating_duration_since(beat) <= BEAT_TIMEOUT
    }

    /// Appends the sync lines to a Prometheus exposition. The four known
    /// providers are always shown (at 0 before their first round, so that
    /// rates and increases see the first one); `other` only once it counted.
    fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP calsync_sync_worker_up Whether the sync worker runs (beat within the last 30 s)."
        );
        let _ = writeln!(out, "# TYPE calsync_sync_worker_up gauge");
        let _ = writeln!(
            out,
            "calsync_sync_worker_up {}",
            u8::from(self.worker_alive())
        );
        let _ = writeln!(
            out,
            "# HELP calsync_sync_rounds_in_flight Sync rounds this instance is running."
        );
        let _ = writeln!(out, "# TYPE calsync_sync_rounds_in_flight gauge");
        let _ = writeln!(
            out,
            "calsync_sync_rounds_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        let shown: Vec<(&str, &ProviderRounds)> = PROVIDERS
            .iter()
            .zip(&self.rounds)
            .filter(|(name, rounds)| **name != "other" || rounds.total() > 0)
            .map(|(name, rounds)| (*name, rounds))
            .collect();

        let _ = writeln!(
            out,
            "# HELP calsync_sync_rounds_total Sync rounds finished, by provider and outcome."
        );
        let _ = writeln!(out, "# TYPE calsync_sync_rounds_total counter");
        for (provider, rounds) in &shown {
            for (outcome, count) in [("ok", &rounds.ok), ("failed", &rounds.failed)] {
                let _ = writeln!(
                    out,
                    "calsync_sync_rounds_total{{provider=\"{provider}\",outcome=\"{outcome}\"}} {}",
                    count.load(Ordering::Relaxed)
                );
            }
        }

        let _ = writeln!(
            out,
            "# HELP calsync_sync_failures_total Failed sync rounds, by provider and kind of failure."
        );
        let _ = writeln!(out, "# TYPE calsync_sync_failures_total counter");
        for (provider, rounds) in &shown {
            for (kind, count) in FAILURE_KINDS.iter().zip(&rounds.failures) {
                let _ = writeln!(
                    out,
                    "calsync_sync_failures_total{{provider=\"{provider}\",kind=\"{kind}\"}} {}",
                    count.load(Ordering::Relaxed)
                );
            }
        }

        let _ = writeln!(
            out,
            "# HELP calsync_sync_round_duration_seconds How long sync rounds took, by provider."
        );
        let _ = writeln!(out, "# TYPE calsync_sync_round_duration_seconds histogram");
        for (provider, rounds) in &shown {
            let mut cumulative = 0;
            for (i, count) in rounds.buckets.iter().enumerate() {
                cumulative += count.load(Ordering::Relaxed);
                let le = DURATION_BUCKETS
                    .get(i)
                    .map_or_else(|| "+Inf".to_owned(), ToString::to_string);
                let _ = writeln!(
                    out,
                    "calsync_sync_round_duration_seconds_bucket{{provider=\"{provider}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "calsync_sync_round_duration_seconds_sum{{provider=\"{provider}\"}} {:.6}",
                f64::from_bits(rounds.seconds_bits.load(Ordering::Relaxed))
            );
            let _ = writeln!(
                out,
                "calsync_sync_round_duration_seconds_count{{provider=\"{provider}\"}} {cumulative}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The value of one series (name with its labels) in an exposition.
    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map(|v| v.parse().unwrap())
    }

    #[test]
    fn round_durations_render_as_a_cumulative_histogram() {
        let metrics = Metrics::default();
        for seconds in [0.05, 0.1, 0.3, 3.0, 1000.0] {
            metrics.sync.round_started();
            metrics.sync.round_finished("ics", seconds, None);
        }
        let text = metrics.render();
        assert!(text.contains("# TYPE calsync_sync_round_duration_seconds histogram"));
        let buckets: Vec<(String, f64)> = text
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix(
                    "calsync_sync_round_duration_seconds_bucket{provider=\"ics\",le=\"",
                )?;
                let (le, count) = rest.split_once("\"} ")?;
                Some((le.to_owned(), count.parse().unwrap()))
            })
            .collect();
        let les: Vec<&str> = buckets.iter().map(|(le, _)| le.as_str()).collect();
        assert_eq!(
            les,
            ["0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60", "120", "300", "+Inf"]
        );
        assert!(
            buckets.windows(2).all(|w| w[0].1 <= w[1].1),
            "buckets must be cumulative: {buckets:?}"
        );
        let count = |le: &str| buckets.iter().find(|(l, _)| l == le).unwrap().1;
        assert_eq!(
            (
                count("0.1"),
                count("0.5"),
                count("5"),
                count("300"),
                count("+Inf")
            ),
            (2.0, 3.0, 4.0, 4.0, 5.0)
        );
        let ics = |name: &str| value(&text, &format!("{name}{{provider=\"ics\"}}")).unwrap();
        assert_eq!(ics("calsync_sync_round_duration_seconds_count"), 5.0);
        assert!((ics("calsync_sync_round_duration_seconds_sum") - 1003.45).abs() < 1e-6);
        // Providers without rounds are shown at 0; `other` only once used.
        assert_eq!(
            value(
                &text,
                "calsync_sync_round_duration_seconds_bucket{provider=\"google\",le=\"+Inf\"}"
            ),
            Some(0.0)
        );
        assert!(!text.contains("provider=\"other\""));
        assert_eq!(
            value(
                &text,
                "calsync_sync_rounds_total{provider=\"ics\",outcome=\"ok\"}"
            ),
            Some(5.0)
        );
        assert_eq!(value(&text, "calsync_sync_rounds_in_flight"), Some(0.0));
    }

    #[test]
    fn unknown_failure_kinds_and_providers_count_as_other() {
        let sync = SyncMetrics::default();
        sync.round_finished("caldav", 1.0, Some("rate_limited"));
        sync.round_finished("caldav", 1.0, Some("something new"));
        sync.round_finished("exchange", f64::NAN, Some("lease_lost"));
        let mut text = String::new();
        sync.render(&mut text);
        let failures = |provider: &str, kind: &str| {
            value(
                &text,
                &format!("calsync_sync_failures_total{{provider=\"{provider}\",kind=\"{kind}\"}}"),
            )
        };
        assert_eq!(failures("caldav", "rate_limited"), Some(1.0));
        assert_eq!(failures("caldav", "other"), Some(1.0));
        assert_eq!(failures("other", "lease_lost"), Some(1.0));
        assert!(!text.contains("something new") && !text.contains("exchange"));
        assert_eq!(
            value(
                &text,
                "calsync_sync_rounds_total{provider=\"caldav\",outcome=\"failed\"}"
            ),
            Some(2.0)
        );
        assert_eq!(
            value(
                &text,
                "calsync_sync_round_duration_seconds_sum{provider=\"other\"}"
            ),
            Some(0.0),
            "a NaN duration counts as 0"
        );
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("calsync_sync_failures_total{"))
                .count(),
            5 * FAILURE_KINDS.len()
        );
    }

    #[test]
    fn the_worker_is_alive_from_its_first_beat_until_it_stops_or_goes_quiet() {
        let sync = SyncMetrics::default();
        assert!(!sync.worker_alive(), "no beat yet");
        sync.worker_beat();
        assert!(sync.worker_alive());
        let now = Instant::now();
        assert!(sync.alive_at(now + Duration::from_secs(25)));
        assert!(
            !sync.alive_at(now + Duration::from_secs(31)),
            "no beat for 30 s"
        );
        sync.worker_stopped();
        assert!(!sync.worker_alive(), "stopped");
        sync.worker_beat();
        assert!(sync.worker_alive(), "a beat after a stop: running again");

        let mut text = String::new();
        sync.render(&mut text);
        assert_eq!(value(&text, "calsync_sync_worker_up"), Some(1.0));
        sync.worker_stopped();
        let mut text = String::new();
        sync.render(&mut text);
        assert_eq!(value(&text, "calsync_sync_worker_up"), Some(0.0));
    }

    #[test]
    fn rounds_in_flight_go_up_and_down_but_never_below_zero() {
        let sync = SyncMetrics::default();
        sync.round_started();
        sync.round_started();
        sync.round_finished("google", 0.2, None);
        assert_eq!(sync.in_flight.load(Ordering::Relaxed), 1);
        sync.round_finished("google", 0.2, None);
        sync.round_finished("google", 0.2, None);
        assert_eq!(sync.in_flight.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn invented_methods_are_counted_as_other() {
        let metrics = Metrics::default();
        metrics.record("GET", "/healthz", 200, 0.001);
        metrics.record("BREW", "unmatched", 405, 0.001);
        metrics.record("get", "unmatched", 405, 0.001);
        let text = metrics.render();
        assert_eq!(
            value(
                &text,
                "calsync_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                "calsync_http_requests_total{method=\"OTHER\",route=\"unmatched\",status=\"405\"}"
            ),
            Some(2.0)
        );
        assert!(!text.contains("BREW") && !text.contains("method=\"get\""));
    }

    #[test]
    fn the_backlog_renders_when_the_database_answered() {
        let metrics = Metrics::default();
        let now = Timestamp::from_second(1_790_000_000).unwrap();
        let backlog = SyncBacklog {
            due: 4,
            oldest_due_at: Some(Timestamp::from_second(1_789_999_910).unwrap()),
            leased: 2,
        };
        let text = metrics.render_with_backlog(Some((&backlog, now)));
        assert_eq!(value(&text, "calsync_sync_due_connections"), Some(4.0));
        assert_eq!(
            value(&text, "calsync_sync_oldest_due_age_seconds"),
            Some(90.0)
        );
        assert_eq!(value(&text, "calsync_sync_leased_connections"), Some(2.0));

        let idle = metrics.render_with_backlog(Some((&SyncBacklog::default(), now)));
        assert_eq!(
            value(&idle, "calsync_sync_oldest_due_age_seconds"),
            Some(0.0)
        );

        let without = metrics.render_with_backlog(None);
        assert!(!without.contains("calsync_sync_due_connections"));
        assert!(without.contains("calsync_sync_worker_up"));
    }
}
