//! The command line: one subcommand per admin chore, all reading the same configuration.

pub mod ics;

use clap::{Parser, Subcommand};

/// calsync: your calendars, synced and served.
#[derive(Debug, Parser)]
#[command(name = "calsync", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with iCalendar files.
    #[command(subcommand)]
    Ics(IcsCommand),
}

#[derive(Debug, Subcommand)]
pub enum IcsCommand {
    /// Print the occurrences of a file that overlap [FROM, TO) as JSON lines.
    Expand(ics::ExpandArgs),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Ics(IcsCommand::Expand(args)) => ics::expand(&args),
    }
}
