//! `calsync sync [--user U] [--connection ID]`: one round of exactly the
//! connections asked for, now, with a progress bar on a terminal.

use std::io::{IsTerminal as _, Write as _};

use anyhow::Context as _;
use calsync_core::model::{ConnectionId, ConnectionStatus};

use crate::app;
use crate::config::Config;

/// Width of the progress bar, in characters.
const BAR: usize = 24;

/// Syncs the chosen connections one after another; a connection a running
/// server is syncing at that moment is reported and left to it.
pub async fn run(
    config: Config,
    user: Option<String>,
    connection: Option<i64>,
) -> anyhow::Result<()> {
    let store = app::open_store(&config).await?;
    let user = match user {
        Some(name) => Some(
            store
                .user_by_name(&name)
                .await
                .with_context(|| format!("no user named {name:?}"))?
                .id,
        ),
        None => None,
    };
    let chosen = store
        .connections_to_sync(user, connection.map(ConnectionId))
        .await?;
    if chosen.is_empty() {
        println!("nothing to sync: no matching connection (connections that need reconnecting are skipped)");
        return Ok(());
    }
    let engine = app::sync_engine(store.clone(), &config)?;
    let terminal = std::io::stderr().is_terminal();
    let (mut ok, mut failed, mut busy) = (0, 0, 0);
    for (done, (id, name)) in chosen.iter().enumerate() {
        if terminal {
            progress(done, chosen.len(), name);
        }
        match engine.sync_connection_now(*id).await? {
            None => {
                busy += 1;
                eprintln!("\r{id} ({name}): a running calsync is syncing it right now; left to it");
            }
            Some(c) if matches!(c.status, ConnectionStatus::Ok | ConnectionStatus::Held) => ok += 1,
            Some(c) => {
                failed += 1;
                let error = c.last_error.unwrap_or_default();
                eprintln!("\r{id} ({name}): {} {error}", c.status.as_str());
            }
        }
    }
    if terminal {
        progress(chosen.len(), chosen.len(), "");
        eprintln!();
    }
    store.close().await;
    println!(
        "synced {ok} of {} connections; {failed} failed, {busy} busy elsewhere",
        chosen.len()
    );
    if failed > 0 {
        anyhow::bail!(
            "{failed} connections failed to sync (details above, on Settings and in `last_error`)"
        );
    }
    Ok(())
}

/// `[##########--------------] 5/12 alice@example.com`, redrawn in place.
fn progress(done: usize, total: usize, name: &str) {
    let filled = BAR * done / total.max(1);
    let bar = format!("{}{}", "#".repeat(filled), "-".repeat(BAR - filled));
    let mut err = std::io::stderr();
    let _ = write!(err, "\r\x1b[2K[{bar}] {done}/{total} {name}");
    let _ = err.flush();
}
