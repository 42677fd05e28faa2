//! `calsync ics expand`: print the occurrences of an iCalendar file as JSON lines.

use std::path::PathBuf;

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

/// Runs the command, writing to standard output.
pub fn expand(_args: &ExpandArgs) -> anyhow::Result<()> {
    anyhow::bail!("ics expand is being written")
}
