//! `calsync demo` never writes its login into a real instance's database.
#![allow(clippy::unwrap_used)]

mod support;

use calsync_store::BackendKind;
use support::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_refuses_a_configured_database() {
    let app = TestApp::start(BackendKind::Postgres)
        .await
        .expect("PostgreSQL for the test");
    let out = app.command().arg("demo").output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("CALSYNC_DATABASE_URL") && said.contains("--force"),
        "the message says what to do: {said}"
    );
    let store = app.store().await;
    assert!(
        store.user_by_name("demo").await.is_err(),
        "no demo login in the real database"
    );
}
