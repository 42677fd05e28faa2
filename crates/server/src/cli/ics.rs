//! `calsync ics expand`: print the occurrences of an iCalendar file as JSON lines.
//!
//! A thin shell around `calsync_core::ical` and `calsync_core::recur`: read
//! the file (bounded), parse, expand every series over the range, print. The
//! output format is the one of design.md §6: zoned times in UTC with `Z`,
//! floating times without offset, all-day values as dates (end exclusive).

use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use calsync_core::ical::{self, MAX_INPUT_BYTES};
use calsync_core::recur::{self, Occurrence, Time, Window};
use jiff::Timestamp;

/// Arguments of `calsync ics expand`.
#[derive(Debug, clap::Args)]
pub struct ExpandArgs {
    /// The .ics file to read.
    pub file: PathBuf,
    /// Start of the range (inclusive), a UTC instant such as 2026-03-01T00:00:00Z.
    #[arg(long)]
    pub from: String,
    /// End of the range (exclusive).
    #[arg(long)]
    pub to: String,
    /// Output format; only `jsonl` exists.
    #[arg(long, default_value = "jsonl")]
    pub format: String,
}

fn parse_instant(flag: &str, value: &str) -> anyhow::Result<Timestamp> {
    value.trim().parse::<Timestamp>().with_context(|| {
        format!("--{flag} {value:?} is not an instant; write it like 2026-03-01T00:00:00Z")
    })
}

fn read_limited(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut bytes = Vec::new();
    let limit = u64::try_from(MAX_INPUT_BYTES).unwrap_or(u64::MAX) + 1;
    file.take(limit)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() > MAX_INPUT_BYTES {
        bail!(
            "{} is larger than {} MiB; calsync refuses calendar files this large",
            path.display(),
            MAX_INPUT_BYTES / (1024 * 1024)
        );
    }
    Ok(bytes)
}

fn fmt_time(t: &Time) -> String {
    match t {
        Time::Date(d) => d.to_string(),
        Time::Floating(dt) => dt.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
        Time::Zoned(z) => z.timestamp().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    }
}

fn to_json(o: &Occurrence) -> serde_json::Value {
    serde_json::json!({
        "start": fmt_time(&o.start),
        "end": fmt_time(&o.end),
        "summary": o.summary,
        "all_day": o.start.is_date(),
        "uid": o.uid,
        "recurrence_id": o.recurrence_id.as_ref().map(fmt_time),
        "status": o.status.map(|s| s.as_str()),
    })
}

/// Runs the command, writing to standard output.
pub fn expand(args: &ExpandArgs) -> anyhow::Result<()> {
    if args.format != "jsonl" {
        bail!(
            "unknown --format {:?}; the only format is jsonl",
            args.format
        );
    }
    let from = parse_instant("from", &args.from)?;
    let to = parse_instant("to", &args.to)?;
    let window = Window::new(from, to).context("--from must be before --to")?;
    let bytes = read_limited(&args.file)?;
    let calendar =
        ical::parse(&bytes).with_context(|| format!("cannot read {}", args.file.display()))?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for series in &calendar.series {
        let expansion = recur::expand(series, &window)?;
        if expansion.truncated {
            eprintln!(
                "warning: event {:?} has more occurrences than the limit of {}; the rest are left out",
                series.uid, window.limit
            );
        }
        for o in &expansion.occurrences {
            serde_json::to_writer(&mut out, &to_json(o))?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(())
}
