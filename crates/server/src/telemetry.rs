//! Logging and metrics. Logs go to stderr (`RUST_LOG` filters, default info);
//! request fields are method, route template and status, never headers,
//! cookies, query strings or bodies, so no token can reach a log line.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

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

/// Request counters for `/metrics` in the Prometheus text format.
pub struct Metrics {
    started: Instant,
    requests: Mutex<BTreeMap<(String, String, u16), RequestStats>>,
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
        }
    }
}

impl Metrics {
    /// Counts one finished request under its route template (never the raw path,
    /// which would let clients grow the map without bound).
    pub fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        if let Ok(mut map) = self.requests.lock() {
            let stats = map
                .entry((method.to_owned(), route.to_owned(), status))
                .or_default();
            stats.count += 1;
            stats.seconds += seconds;
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
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
        out
    }
}
