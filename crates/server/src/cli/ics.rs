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
use calsync_core::recur::{self, Occurrence, Series, Time, Window};
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

/// Series per batch of parallel expansion.
const BATCH: usize = 1024;

/// One of the two expansion workers with its share of the file's
/// allowances.
struct Worker {
    budget: recur::Budget,
    left: usize,
}

impl Worker {
    fn new(steps: u64, occurrences: usize) -> Worker {
        Worker {
            budget: recur::Budget::new(steps),
            left: occurrences,
        }
    }

    fn exhausted(&self) -> bool {
        self.left == 0 || self.budget.remaining() == 0
    }

    /// Expands `series` and renders their occurrences as JSON lines.
    fn render(&mut self, series: &[Series], window: &Window) -> anyhow::Result<Vec<u8>> {
        let mut buf = Vec::new();
        for s in series {
            if self.exhausted() {
                break;
            }
            let mut window = window.clone();
            window.limit = window.limit.min(self.left);
            let expansion = recur::expand_within(s, &window, &self.budget)?;
            self.left -= expansion.occurrences.len().min(self.left);
            if expansion.truncated {
                eprintln!(
                    "warning: event {:?} was cut short (more than {} occurrences, or too much work); the rest are left out",
                    s.uid, window.limit
                );
            }
            for o in &expansion.occurrences {
                write_occurrence(&mut buf, o)?;
            }
        }
        Ok(buf)
    }
}

/// Most occurrences printed for one file.
const FILE_OCCURRENCE_LIMIT: usize = 2_000_000;
/// Most rule periods walked for one file (see `recur::Budget`).
const FILE_STEP_BUDGET: u64 = 50_000_000;

fn parse_instant(flag: &str, value: &str) -> anyhow::Result<Timestamp> {
    value.trim().parse::<Timestamp>().with_context(|| {
        format!("--{flag} {value:?} is not an instant; write it like 2026-03-01T00:00:00Z")
    })
}

fn read_limited(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(MAX_INPUT_BYTES) + 1);
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

/// Writes `t` in the output format: `YYYY-MM-DD` for dates, floating
/// times without offset, zoned times in UTC with `Z`. Formatted by hand:
/// this runs once per occurrence and `fmt` machinery dominated profiles.
fn write_time(out: &mut impl Write, t: &Time) -> std::io::Result<()> {
    let (date, time, zulu) = match t {
        Time::Date(d) => (*d, None, false),
        Time::Floating(dt) => (dt.date(), Some(dt.time()), false),
        Time::Zoned(z) => {
            let dt = jiff::tz::TimeZone::UTC.to_datetime(z.timestamp());
            (dt.date(), Some(dt.time()), true)
        }
    };
    let mut buf = [0u8; 22];
    buf[0] = b'"';
    let year = i32::from(date.year());
    if !(0..=9999).contains(&year) {
        return write!(out, "\"{t:?}\"");
    }
    digits(&mut buf[1..5], year);
    buf[5] = b'-';
    digits(&mut buf[6..8], i32::from(date.month()));
    buf[8] = b'-';
    digits(&mut buf[9..11], i32::from(date.day()));
    let mut n = 11;
    if let Some(tm) = time {
        buf[11] = b'T';
        digits(&mut buf[12..14], i32::from(tm.hour()));
        buf[14] = b':';
        digits(&mut buf[15..17], i32::from(tm.minute()));
        buf[17] = b':';
        digits(&mut buf[18..20], i32::from(tm.second()));
        n = 20;
        if zulu {
            buf[20] = b'Z';
            n = 21;
        }
    }
    buf[n] = b'"';
    out.write_all(&buf[..=n])
}

/// Fills `dst` with the decimal digits of `v`, zero-padded.
fn digits(dst: &mut [u8], mut v: i32) {
    for d in dst.iter_mut().rev() {
        *d = b'0' + u8::try_from(v % 10).unwrap_or(0);
        v /= 10;
    }
}

/// Writes `s` as a JSON string (RFC 8259 §7).
fn write_str(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    out.write_all(b"\"")?;
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            _ => None,
        };
        if esc.is_some() || b < 0x20 {
            out.write_all(&s.as_bytes()[start..i])?;
            match esc {
                Some(e) => out.write_all(e)?,
                None => write!(out, "\\u{b:04x}")?,
            }
            start = i + 1;
        }
    }
    out.write_all(&s.as_bytes()[start..])?;
    out.write_all(b"\"")
}

/// One occurrence as a JSON line: start, end, summary, all_day, uid,
/// recurrence_id, status.
fn write_occurrence(out: &mut impl Write, o: &Occurrence) -> std::io::Result<()> {
    out.write_all(b"{\"start\":")?;
    write_time(out, &o.start)?;
    out.write_all(b",\"end\":")?;
    write_time(out, &o.end)?;
    out.write_all(b",\"summary\":")?;
    write_str(out, &o.summary)?;
    out.write_all(if o.start.is_date() {
        b",\"all_day\":true,\"uid\":"
    } else {
        b",\"all_day\":false,\"uid\":"
    })?;
    write_str(out, &o.uid)?;
    out.write_all(b",\"recurrence_id\":")?;
    match &o.recurrence_id {
        Some(t) => write_time(out, t)?,
        None => out.write_all(b"null")?,
    }
    out.write_all(b",\"status\":")?;
    match o.status {
        Some(s) => {
            out.write_all(b"\"")?;
            out.write_all(s.as_str().as_bytes())?;
            out.write_all(b"\"")?;
        }
        None => out.write_all(b"null")?,
    }
    out.write_all(b"}\n")
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
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    // File-wide allowances, split between the two workers: a hostile file of
    // many never-matching or every-second rules ends in bounded time and
    // output.
    let mut workers = [
        Worker::new(FILE_STEP_BUDGET / 2, FILE_OCCURRENCE_LIMIT / 2),
        Worker::new(FILE_STEP_BUDGET / 2, FILE_OCCURRENCE_LIMIT / 2),
    ];
    // Batches keep the buffered output small; within a batch the two halves
    // are expanded in parallel and written in file order.
    for batch in calendar.series.chunks(BATCH) {
        let (a, b) = batch.split_at(batch.len().div_ceil(2));
        let [wa, wb] = &mut workers;
        let (ra, rb) = std::thread::scope(|s| {
            let ha = s.spawn(|| wa.render(a, &window));
            let rb = wb.render(b, &window);
            (ha.join(), rb)
        });
        let ra = ra.map_err(|_| anyhow::anyhow!("an expansion worker failed"))?;
        out.write_all(&ra?)?;
        out.write_all(&rb?)?;
        if workers.iter().any(Worker::exhausted) {
            eprintln!(
                "warning: stopped early; the file needs more work than calsync allows for one run"
            );
            break;
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn formats_times() {
        let mut out = Vec::new();
        write_time(&mut out, &Time::Date(jiff::civil::date(2024, 3, 10))).unwrap();
        write_time(
            &mut out,
            &Time::Floating(jiff::civil::date(2024, 3, 10).at(9, 5, 0, 0)),
        )
        .unwrap();
        let z = jiff::civil::date(2024, 3, 10)
            .at(9, 5, 7, 0)
            .in_tz("Europe/Berlin")
            .unwrap();
        write_time(&mut out, &Time::Zoned(z)).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"2024-03-10\"\"2024-03-10T09:05:00\"\"2024-03-10T08:05:07Z\""
        );
    }

    #[test]
    fn escapes_json_strings() {
        let mut out = Vec::new();
        write_str(&mut out, "a\"b\\c\nd\u{1}é").unwrap();
        let back: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, "a\"b\\c\nd\u{1}é");
    }
}
