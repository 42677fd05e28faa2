//! Fresh, empty databases for tests (feature `testing`): a new SQLite file, or
//! a new database on the PostgreSQL server that `CALSYNC_TEST_POSTGRES_URL`
//! names (default `postgres://127.0.0.1:5432/test`). Without a reachable
//! PostgreSQL the PostgreSQL half of a test is skipped with a note, except
//! under CI (`CI=true`), where it fails.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use secrecy::SecretString;
use sqlx::Connection as _;

use crate::seal::Keyring;
use crate::{BackendKind, Store};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A database made for one test.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    /// What `CALSYNC_DATABASE_URL` would be set to for this database.
    pub url: String,
    /// The SQLite file's folder, if SQLite.
    pub dir: Option<PathBuf>,
}

fn unique_name() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("calsync_test_{}_{n}_{nanos}", std::process::id())
}

/// A fresh folder under the system's temporary folder.
pub fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(unique_name());
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// The server the PostgreSQL tests use.
pub fn postgres_server_url() -> String {
    std::env::var("CALSYNC_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://127.0.0.1:5432/test".to_owned())
}

/// Creates a fresh database of `kind`. An unreachable PostgreSQL fails the
/// test; `None` only when the developer opted out with
/// `CALSYNC_TEST_ALLOW_MISSING=1`.
pub async fn fresh_database(kind: BackendKind) -> Option<TestDatabase> {
    match kind {
        BackendKind::Sqlite => {
            let dir = temp_dir();
            Some(TestDatabase {
                url: format!("sqlite://{}", dir.join("calsync.db").display()),
                dir: Some(dir),
            })
        }
        BackendKind::Postgres => {
            let server = postgres_server_url();
            let mut admin = match sqlx::PgConnection::connect(&server).await {
                Ok(conn) => conn,
                Err(err) if std::env::var("CALSYNC_TEST_ALLOW_MISSING").is_ok_and(|v| v == "1") => {
                    eprintln!("note: skipping the PostgreSQL half, {server} unreachable: {err}");
                    return None;
                }
                Err(err) => panic!(
                    "PostgreSQL at {server} is unreachable: {err}; start it, point \
                     CALSYNC_TEST_POSTGRES_URL at one, or set CALSYNC_TEST_ALLOW_MISSING=1 to skip"
                ),
            };
            let name = unique_name();
            sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .await
                .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
            let base = server
                .rsplit_once('/')
                .map_or(server.as_str(), |(base, _)| base);
            Some(TestDatabase {
                url: format!("{base}/{name}"),
                dir: None,
            })
        }
    }
}

/// A keyring with one fresh key.
pub fn keyring() -> Arc<Keyring> {
    Arc::new(
        Keyring::from_base64_list(&Keyring::generate_base64()).unwrap_or_else(|e| panic!("{e}")),
    )
}

/// Opens and migrates a fresh store of `kind`.
pub async fn fresh_store(kind: BackendKind) -> Option<Store> {
    let db = fresh_database(kind).await?;
    let store = Store::open_url(&db.url, keyring())
        .await
        .unwrap_or_else(|e| panic!("open {}: {e:?}", db.url));
    store
        .prepare()
        .await
        .unwrap_or_else(|e| panic!("migrate: {e:?}"));
    Some(store)
}

/// A keyring from explicit base64 keys.
pub fn keyring_from(keys: &[&SecretString]) -> Arc<Keyring> {
    use secrecy::ExposeSecret as _;
    let list: Vec<&str> = keys.iter().map(|k| k.expose_secret()).collect();
    Arc::new(
        Keyring::from_base64_list(&SecretString::from(list.join(",")))
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

/// Runs raw SQL, for tests that tamper with rows behind the store's back.
pub async fn execute(store: &Store, sql: &str) -> u64 {
    crate::on_pool!(store, pool => sqlx::raw_sql(sql).execute(pool).await.map(|r| r.rows_affected()))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Reads one text value with raw SQL.
pub async fn fetch_text(store: &Store, sql: &str) -> Option<String> {
    crate::on_pool!(store, pool => sqlx::query_scalar::<_, Option<String>>(sql).fetch_one(pool).await)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}
