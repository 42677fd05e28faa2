//! The command line: one subcommand per admin chore, all reading the same
//! configuration, so they work on the same database while `serve` runs.

pub mod ics;
mod sync;
mod users;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::app;
use crate::config::{Config, ConfigArgs};
pub use users::{TokenCommand, UserCommand};

/// calsync: your calendars, synced and served.
#[derive(Debug, Parser)]
#[command(name = "calsync", version, about)]
pub struct Cli {
    /// A TOML file with settings (keys as the environment variables, without CALSYNC_, lower-cased).
    #[arg(long, global = true, env = "CALSYNC_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: ConfigArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: API, web pages and sync scheduler.
    Serve,
    /// Serve with a built-in Google emulator, sample accounts and a demo user; no credentials needed.
    Demo {
        /// Run even though CALSYNC_DATABASE_URL names a database: the demo
        /// user and the emulator's connections are written into it.
        #[arg(long)]
        force: bool,
    },
    /// Run the provider emulator alone.
    Emulator {
        /// Port on 127.0.0.1.
        #[arg(long, default_value_t = 8025)]
        port: u16,
    },
    /// Sync now: every connection, a user's, or one.
    Sync {
        /// Only this user's connections.
        #[arg(long)]
        user: Option<String>,
        /// Only this connection.
        #[arg(long)]
        connection: Option<i64>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage the encryption keys of stored secrets.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Work with iCalendar files.
    #[command(subcommand)]
    Ics(IcsCommand),
    /// Print the OpenAPI document of the HTTP API.
    Openapi,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Reseal every stored secret under the first key of CALSYNC_ENCRYPTION_KEY.
    Rotate,
}

#[derive(Debug, Subcommand)]
pub enum IcsCommand {
    /// Print the occurrences of a file that overlap [FROM, TO) as JSON lines.
    Expand(ics::ExpandArgs),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Ics(IcsCommand::Expand(args)) => return ics::expand(args),
        Command::Openapi => return print_openapi(),
        _ => {}
    }
    crate::telemetry::init_logging();
    let config = Config::load(&cli.settings, cli.config.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(run_async(cli.command, config))
}

async fn run_async(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => app::serve(config).await,
        Command::Demo { force } => crate::demo::run_demo(config, force).await,
        Command::Emulator { port } => crate::demo::run_emulator(&config, port).await,
        Command::Sync { user, connection } => sync::run(config, user, connection).await,
        Command::Migrate => {
            let store = app::open_store(&config).await?;
            store.close().await;
            println!("database is up to date");
            Ok(())
        }
        Command::User(command) => users::user(command, config).await,
        Command::Token(command) => users::token(command, config).await,
        Command::Keys(KeysCommand::Rotate) => {
            let store = app::open_store(&config).await?;
            let report = store.rotate_keys().await?;
            store.close().await;
            println!(
                "resealed {} secrets under the first key ({} were already under it); keys after the first can now be removed",
                report.resealed, report.unchanged
            );
            Ok(())
        }
        Command::Ics(IcsCommand::Expand(args)) => ics::expand(&args),
        Command::Openapi => print_openapi(),
    }
}

fn print_openapi() -> anyhow::Result<()> {
    print!("{}", crate::http::openapi::document());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }
}
