//! `calsync user add|passwd|delete` and `calsync token create|list|revoke`:
//! the administrator's side of accounts, through the same services as the
//! API and Settings (`crate::accounts`). Passwords come from standard input,
//! never from the command line; a token is printed once, to stdout.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::sync::Arc;

use anyhow::Context as _;
use calsync_core::clock::SystemClock;
use calsync_store::{ApiTokenInfo, Store};
use clap::Subcommand;
use jiff::Timestamp;
use secrecy::{ExposeSecret as _, SecretString};

use crate::accounts;
use crate::app;
use crate::config::Config;
use crate::providers::Providers;
use crate::state::AppState;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Add {
        name: String,
        /// Read the password from standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password (the first line of standard input) and log out
    /// all their browser sessions; their API tokens keep working.
    Passwd {
        name: String,
        /// Read the password from standard input (required: it is never an argument).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete a user and everything of theirs: connections (calsync's access
    /// is revoked at the provider first where possible), calendars, events,
    /// sessions and API tokens. Asks for the username on a terminal.
    Delete {
        name: String,
        /// Do not ask for confirmation (required when not on a terminal).
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for `Authorization: Bearer`; printed once.
    Create {
        user: String,
        /// A name to recognise the token by.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Days until the token stops working (1 to 3650); without it, it
        /// works until revoked.
        #[arg(long, value_name = "DAYS")]
        expires_in_days: Option<u32>,
    },
    /// List a user's API tokens (never the tokens themselves).
    List { user: String },
    /// Revoke one of a user's API tokens by its id (see `token list`), and
    /// the tokens that were created with it.
    Revoke { user: String, id: i64 },
}

/// Runs a `calsync user` command.
pub async fn user(command: UserCommand, config: Config) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            name,
            password_stdin,
        } => {
            let password = read_password(password_stdin, "user add")?;
            let store = app::open_store(&config).await?;
            let created = accounts::create_user(&store, &name, password, Timestamp::now()).await;
            store.close().await;
            let user = created?;
            println!("created user {} (id {})", user.username, user.id);
            Ok(())
        }
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            let password = read_password(password_stdin, "user passwd")?;
            let store = app::open_store(&config).await?;
            let changed = accounts::reset_password(&store, &name, password).await;
            store.close().await;
            let ended = changed?;
            println!("changed the password of {name}; {ended} browser sessions were logged out");
            Ok(())
        }
        UserCommand::Delete { name, yes } => delete_user(config, &name, yes).await,
    }
}

async fn delete_user(config: Config, name: &str, yes: bool) -> anyhow::Result<()> {
    let store = app::open_store(&config).await?;
    let outcome = async {
        let user = accounts::user_named(&store, name).await?;
        let connections = store.list_connections(user.id).await?.len();
        if !yes {
            confirm_deletion(name, connections)?;
        }
        let providers = Providers::from_config(&config).context("configuring providers")?;
        let (_stop, stopping) = tokio::sync::watch::channel(false);
        let state = AppState::new(
            store.clone(),
            config,
            providers,
            Arc::new(SystemClock),
            stopping,
        );
        let deleted = accounts::delete_account(&state, user.id).await?;
        anyhow::Ok(deleted)
    }
    .await;
    store.close().await;
    let deleted = outcome?;
    println!(
        "deleted user {name} with {} connections (calsync's access revoked at the provider for {}) and all their calendars, events, sessions and API tokens",
        deleted.connections, deleted.revoked
    );
    Ok(())
}

/// Asks for the username on a terminal; refuses without one.
fn confirm_deletion(name: &str, connections: usize) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        anyhow::bail!(
            "not deleting {name:?} without confirmation: run it on a terminal, or pass --yes"
        );
    }
    eprint!(
        "This deletes user {name:?}, their {connections} connections with all calendars and events, their sessions and API tokens. It cannot be undone.\nType the username to confirm: "
    );
    std::io::stderr().flush().ok();
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the confirmation")?;
    if line.trim() != name {
        anyhow::bail!("not confirmed: nothing was deleted");
    }
    Ok(())
}

/// Runs a `calsync token` command.
pub async fn token(command: TokenCommand, config: Config) -> anyhow::Result<()> {
    let store = app::open_store(&config).await?;
    let outcome = token_with(&store, command).await;
    store.close().await;
    outcome
}

async fn token_with(store: &Store, command: TokenCommand) -> anyhow::Result<()> {
    let now = Timestamp::now();
    match command {
        TokenCommand::Create {
            user,
            name,
            expires_in_days,
        } => {
            let owner = accounts::user_named(store, &user).await?;
            let created =
                accounts::create_api_token(store, owner.id, &name, expires_in_days, None, now)
                    .await?;
            if std::io::stdout().is_terminal() {
                let until = created
                    .info
                    .expires_at
                    .map_or("does not expire".to_owned(), |at| format!("expires {at}"));
                eprintln!(
                    "API token {} for {user}, {until} (shown once; send it as Authorization: Bearer <token>):",
                    created.info.id
                );
            }
            println!("{}", created.token.expose_secret());
            Ok(())
        }
        TokenCommand::List { user } => {
            let owner = accounts::user_named(store, &user).await?;
            let tokens = store.list_api_tokens(owner.id).await?;
            if tokens.is_empty() {
                println!("{user} has no API tokens");
            } else {
                print!("{}", token_table(&tokens, now));
            }
            Ok(())
        }
        TokenCommand::Revoke { user, id } => {
            let owner = accounts::user_named(store, &user).await?;
            accounts::revoke_api_token(store, owner.id, id)
                .await
                .map_err(|err| anyhow::anyhow!("{err}"))
                .with_context(|| format!("{user} has no API token {id}"))?;
            println!("revoked API token {id} of {user}");
            Ok(())
        }
    }
}

/// The tokens as aligned columns: id, name, created, last used, expires.
fn token_table(tokens: &[ApiTokenInfo], now: Timestamp) -> String {
    let seconds = |t: Timestamp| t.round(jiff::Unit::Second).unwrap_or(t).to_string();
    let rows: Vec<[String; 5]> = tokens
        .iter()
        .map(|t| {
            let expires = match t.expires_at {
                None => "never".to_owned(),
                Some(at) if t.is_expired(now) => format!("{} (expired)", seconds(at)),
                Some(at) => seconds(at),
            };
            [
                t.id.to_string(),
                // Names are the user's text: no control characters reach the terminal.
                t.name.chars().filter(|c| !c.is_control()).collect(),
                seconds(t.created_at),
                t.last_used_at.map_or("never".to_owned(), seconds),
                expires,
            ]
        })
        .collect();
    let header = ["ID", "NAME", "CREATED", "LAST USED", "EXPIRES"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The first line of standard input; refused on a terminal without
/// `--password-stdin`, so a password is never typed in the clear by mistake.
fn read_password(from_stdin: bool, command: &str) -> anyhow::Result<SecretString> {
    let stdin = std::io::stdin();
    if !from_stdin && stdin.is_terminal() {
        anyhow::bail!("pass the password on standard input with --password-stdin, e.g. `printf '%s' \"$PW\" | calsync {command} NAME --password-stdin`");
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok(SecretString::from(
        line.trim_end_matches(['\r', '\n']).to_owned(),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn token_tables_align_and_say_what_expired() {
        let now: Timestamp = "2026-12-07T12:00:00Z".parse().unwrap();
        let tokens = [
            ApiTokenInfo {
                id: 12,
                name: "deploy\u{1b}[2J bot".into(),
                created_at: "2026-12-01T08:00:00.5Z".parse().unwrap(),
                last_used_at: None,
                expires_at: Some("2026-12-06T08:00:00Z".parse().unwrap()),
                parent_id: None,
            },
            ApiTokenInfo {
                id: 3,
                name: "cli".into(),
                created_at: "2026-11-01T08:00:00Z".parse().unwrap(),
                last_used_at: Some("2026-12-07T11:59:00Z".parse().unwrap()),
                expires_at: None,
                parent_id: None,
            },
        ];
        let table = token_table(&tokens, now);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ID  NAME"));
        assert!(
            lines[1].contains("2026-12-06T08:00:00Z (expired)"),
            "{table}"
        );
        assert!(lines[1].contains("deploy[2J bot"), "{table}");
        assert!(!table.contains('\u{1b}'));
        assert!(lines[2].contains("never") && lines[2].contains("2026-12-07T11:59:00Z"));
        let column = |line: &str| line.find("CREATED").or_else(|| line.find("2026-1"));
        assert_eq!(column(lines[0]), column(lines[2]));
    }
}
