//! Start-up and the serve loop: the data folder and key, the store, the
//! listener, and a graceful stop.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use calsync_core::clock::SystemClock;
use calsync_store::seal::Keyring;
use calsync_store::Store;
use secrecy::{ExposeSecret as _, SecretString};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::http;
use crate::providers::Providers;
use crate::state::AppState;

const KEY_FILE: &str = "calsync.key";

/// The keys from `CALSYNC_ENCRYPTION_KEY`, else from the key file in the data
/// folder, which is generated (mode 0600) on first start.
pub fn load_keyring(config: &Config) -> anyhow::Result<Keyring> {
    if let Some(keys) = &config.encryption_key {
        return Keyring::from_base64_list(keys).context("CALSYNC_ENCRYPTION_KEY");
    }
    let path = config.data_dir.join(KEY_FILE);
    let keys = match std::fs::read_to_string(&path) {
        Ok(text) => SecretString::from(text.trim().to_owned()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let key = Keyring::generate_base64();
            write_private(&path, key.expose_secret())
                .with_context(|| format!("writing {}", path.display()))?;
            tracing::warn!(path = %path.display(), "generated a new encryption key file; back it up with the database");
            key
        }
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    };
    Keyring::from_base64_list(&keys).with_context(|| format!("the key file {}", path.display()))
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// Opens the configured database (creating the data folder for the embedded
/// default), migrates it and checks the keys.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data folder {}", config.data_dir.display()))?;
    let keyring = Arc::new(load_keyring(config)?);
    let store = match &config.database_url {
        Some(url) => Store::open_url(url, keyring)
            .await
            .context("opening CALSYNC_DATABASE_URL")?,
        None => Store::open_sqlite(&config.sqlite_path(), keyring)
            .await
            .with_context(|| format!("opening {}", config.sqlite_path().display()))?,
    };
    store.prepare().await?;
    Ok(store)
}

/// A sync engine over `store` for commands that sync outside `serve`.
pub fn sync_engine(store: Store, config: &Config) -> anyhow::Result<crate::sync::SyncEngine> {
    Ok(crate::sync::SyncEngine {
        store,
        providers: Providers::from_config(config).context("configuring providers")?,
        clock: Arc::new(SystemClock),
        changes: crate::live::ChangeFeed::default(),
        interval: config.sync_interval,
        wake: Arc::new(tokio::sync::Notify::new()),
        concurrency: config.sync_concurrency,
        limits: calsync_store::ClaimLimits::default(),
        metrics: Arc::new(crate::telemetry::Metrics::default()),
    })
}

/// Serves until Ctrl-C or SIGTERM, then lets in-flight requests finish and
/// closes the pool.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    if store.count_users().await? == 0 {
        tracing::warn!("no users yet: create one with `calsync user add NAME`");
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    let (stop, stopping) = watch::channel(false);
    let providers = Providers::from_config(&config).context("configuring providers")?;
    let state = AppState::new(
        store.clone(),
        config,
        providers,
        Arc::new(SystemClock),
        stopping.clone(),
    );
    let relay = state
        .changes
        .relay(&store, stopping.clone())
        .await
        .context("listening for changes on PostgreSQL")?;
    let released = store.release_leases_at_start(state.clock.now()).await?;
    if released > 0 {
        tracing::info!(
            connections = released,
            "gave back the syncs a previous run left unfinished"
        );
    }
    tokio::spawn(crate::janitor::run(
        store.clone(),
        state.clock.clone(),
        stopping.clone(),
    ));
    let worker = tokio::spawn(state.sync_engine().run(stopping));
    tracing::info!(database = ?store.kind(), "listening on http://{address} (public URL {})", state.config.public_url);
    let app = http::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            crate::shutdown::signal().await;
            let _ = stop.send(true);
        })
        .await
        .context("serving")?;
    // The worker finishes the page it is applying; its lease lets another
    // instance pick the connection up later.
    let _ = worker.await;
    // The worker's last changes still reach the other instances.
    relay.finish().await;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}
