//! `calsync demo` and `calsync emulator`: calsync with the built-in provider
//! emulator standing in for Google and Microsoft, so that the whole product
//! can be tried with no credentials and no network.

use std::net::SocketAddr;

use anyhow::Context as _;
use calsync_emulator::{Emulator, EmulatorConfig, OAuthClient};
use secrecy::SecretString;

use crate::accounts;
use crate::app;
use crate::config::{Config, OAuthProvider};

/// The emulator's OAuth clients for calsync (one registry: the redirect URI
/// tells Google's from Microsoft's).
const CLIENT_ID: &str = "calsync-demo.apps.googleusercontent.com";
const CLIENT_SECRET: &str = "calsync-demo-secret";
const MS_CLIENT_ID: &str = "00000000-0000-4000-8000-0000ca15a7c0";
const MS_CLIENT_SECRET: &str = "calsync-demo-ms-secret";
/// The demo's login; the data lives in its own folder, never in a real one.
const DEMO_USER: &str = "demo";
const DEMO_PASSWORD: &str = "calsync-demo";

fn emulator_config(config: &Config) -> EmulatorConfig {
    EmulatorConfig {
        clients: vec![
            OAuthClient::new(CLIENT_ID, CLIENT_SECRET, [config.redirect_uri("google")]),
            OAuthClient::new(
                MS_CLIENT_ID,
                MS_CLIENT_SECRET,
                [config.redirect_uri("microsoft")],
            ),
        ],
        sample_data: true,
        ..EmulatorConfig::default()
    }
}

/// Runs the emulator alone on `port`, for trying calsync against it by hand.
pub async fn run_emulator(config: &Config, port: u16) -> anyhow::Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let emulator = Emulator::start(listener, emulator_config(config))?;
    let base = emulator.base_url();
    println!(
        "Provider emulator on {base} (Google: alice@example.com, bob@example.com; \
         Microsoft: morgan@contoso.example)"
    );
    println!("Point calsync at it with:");
    println!(
        "  CALSYNC_GOOGLE_CLIENT_ID={CLIENT_ID} CALSYNC_GOOGLE_CLIENT_SECRET={CLIENT_SECRET} \\"
    );
    println!("  CALSYNC_GOOGLE_AUTH_URL={base}/o/oauth2/v2/auth CALSYNC_GOOGLE_TOKEN_URL={base}/token \\");
    println!("  CALSYNC_GOOGLE_API_BASE={base} CALSYNC_GOOGLE_REVOKE_URL={base}/revoke \\");
    println!(
        "  CALSYNC_MICROSOFT_CLIENT_ID={MS_CLIENT_ID} CALSYNC_MICROSOFT_CLIENT_SECRET={MS_CLIENT_SECRET} \\"
    );
    let ms = emulator.microsoft();
    println!(
        "  CALSYNC_MICROSOFT_AUTH_URL={} CALSYNC_MICROSOFT_TOKEN_URL={} \\",
        ms.auth_url, ms.token_url
    );
    println!("  CALSYNC_MICROSOFT_API_BASE={} calsync serve", ms.api_base);
    crate::shutdown::signal().await;
    emulator.shutdown().await;
    Ok(())
}

/// Serves calsync with an in-process emulator, sample accounts and a demo user,
/// on a database of its own: the `demo` folder inside the data folder. A
/// configured `CALSYNC_DATABASE_URL` is most likely a real instance's, which
/// must not get a demo login and emulator connections: refused unless
/// `force`.
pub async fn run_demo(mut config: Config, force: bool) -> anyhow::Result<()> {
    if config.database_url.is_some() && !force {
        anyhow::bail!(
            "calsync demo adds the user {DEMO_USER} / {DEMO_PASSWORD} and connections to a built-in \
             emulator to its database, and CALSYNC_DATABASE_URL names one (a real instance's?). \
             Unset CALSYNC_DATABASE_URL to run the demo on its own SQLite file in {}, \
             or pass --force to use that database anyway.",
            config.data_dir.join("demo").display()
        );
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .context("starting the emulator")?;
    let emulator = Emulator::start(listener, emulator_config(&config))?;
    let base = emulator.base_url().to_owned();
    config.google = Some(OAuthProvider {
        client_id: CLIENT_ID.to_owned(),
        client_secret: Some(SecretString::from(CLIENT_SECRET)),
        auth_url: format!("{base}/o/oauth2/v2/auth"),
        token_url: format!("{base}/token"),
        api_base: base.clone(),
        revoke_url: format!("{base}/revoke"),
    });
    let ms = emulator.microsoft();
    config.microsoft = Some(OAuthProvider {
        client_id: MS_CLIENT_ID.to_owned(),
        client_secret: Some(SecretString::from(MS_CLIENT_SECRET)),
        auth_url: ms.auth_url,
        token_url: ms.token_url,
        api_base: ms.api_base,
        revoke_url: String::new(),
    });
    if config.database_url.is_none() {
        config.data_dir = config.data_dir.join("demo");
    }
    let store = app::open_store(&config).await?;
    let password = SecretString::from(DEMO_PASSWORD);
    match accounts::create_user(&store, DEMO_USER, password, jiff::Timestamp::now()).await {
        Ok(_) | Err(accounts::AccountError::UserExists(_)) => {}
        Err(err) => return Err(err.into()),
    }
    store.close().await;
    println!();
    println!(
        "calsync demo: open {} and log in as {DEMO_USER} / {DEMO_PASSWORD}",
        config.public_url
    );
    println!(
        "Settings -> Connect Google Calendar (alice@example.com) and Connect Outlook / Microsoft 365 \
         (morgan@contoso.example) use the built-in emulator."
    );
    println!(
        "Demo data lives in {}; Ctrl-C stops.",
        config.data_dir.display()
    );
    println!();
    let served = app::serve(config).await;
    emulator.shutdown().await;
    served
}
