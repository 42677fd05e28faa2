//! The `calsync` binary: parses the command line and hands over to [`calsync_server`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = calsync_server::cli::Cli::parse();
    match calsync_server::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
