//! The sync backlog `/metrics` shows, on SQLite and PostgreSQL alike.
#![allow(clippy::unwrap_used)]

use calsync_store::testing::{self, fresh_store};
use calsync_store::{BackendKind, Store, SyncBacklog};
use jiff::{SignedDuration, Timestamp};

/// Generates one `#[tokio::test]` per backend for each test function.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name(calsync_store::BackendKind::Sqlite).await
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                super::$name(calsync_store::BackendKind::Postgres).await
            })*
        }
    };
}

on_both_backends!(
    an_empty_database_has_no_backlog,
    the_backlog_counts_due_and_leased_connections_of_all_users,
);

fn now() -> Timestamp {
    Timestamp::from_second(1_790_000_000).unwrap()
}

fn at(offset_secs: i64) -> Timestamp {
    now() + SignedDuration::from_secs(offset_secs)
}

/// One connection row, written behind the store's back so that the test
/// sets exactly the columns the backlog reads (seconds relative to `now()`).
async fn connection(
    store: &Store,
    user: i64,
    account: &str,
    status: &str,
    next_sync: Option<i64>,
    lease: Option<i64>,
) {
    let secs = |offset: Option<i64>| {
        offset.map_or_else(|| "NULL".to_owned(), |o| at(o).as_second().to_string())
    };
    let created = now().as_second();
    testing::execute(
        store,
        &format!(
            "INSERT INTO connections (user_id, provider, account_id, status, next_sync_at, lease_until, \
                                      created_at, updated_at) \
             VALUES ({user}, 'google', '{account}', '{status}', {}, {}, {created}, {created})",
            secs(next_sync),
            secs(lease),
        ),
    )
    .await;
}

async fn an_empty_database_has_no_backlog(kind: BackendKind) {
    let Some(store) = fresh_store(kind).await else {
        return;
    };
    assert_eq!(
        store.sync_backlog(now()).await.unwrap(),
        SyncBacklog {
            due: 0,
            oldest_due_at: None,
            leased: 0
        }
    );
}

async fn the_backlog_counts_due_and_leased_connections_of_all_users(kind: BackendKind) {
    let Some(store) = fresh_store(kind).await else {
        return;
    };
    let alice = store
        .create_user("alice", "$argon2id$fake", now())
        .await
        .unwrap()
        .id
        .0;
    let bob = store
        .create_user("bob", "$argon2id$fake", now())
        .await
        .unwrap()
        .id
        .0;

    // Due: past or exactly now, no lease or a lease that ran out.
    connection(&store, alice, "due-5m", "ok", Some(-300), None).await;
    connection(&store, bob, "due-now", "pending", Some(0), None).await;
    connection(
        &store,
        bob,
        "lease-ran-out",
        "syncing",
        Some(-400),
        Some(-1),
    )
    .await;
    // Not due: later, never scheduled, or waiting for the user to reconnect
    // (older than all the due ones, so it would show in the oldest age).
    connection(&store, alice, "later", "ok", Some(60), None).await;
    connection(&store, alice, "unscheduled", "pending", None, None).await;
    connection(&store, alice, "reauth", "needs_reauth", Some(-3600), None).await;
    // Leased: a round holds them (until exactly now still counts), whatever
    // their schedule or status.
    connection(&store, bob, "leased-2m", "syncing", Some(-900), Some(120)).await;
    connection(
        &store,
        alice,
        "leased-until-now",
        "syncing",
        Some(-1200),
        Some(0),
    )
    .await;
    connection(
        &store,
        bob,
        "leased-reauth",
        "needs_reauth",
        Some(-60),
        Some(600),
    )
    .await;

    assert_eq!(
        store.sync_backlog(now()).await.unwrap(),
        SyncBacklog {
            due: 3,
            oldest_due_at: Some(at(-400)),
            leased: 3
        }
    );

    // Two minutes on: "later" is due, and so are the two connections whose
    // leases ran out (their holders died); one of them is now the oldest.
    assert_eq!(
        store.sync_backlog(at(121)).await.unwrap(),
        SyncBacklog {
            due: 6,
            oldest_due_at: Some(at(-1200)),
            leased: 1
        }
    );

    // Long before any of it: nothing due, but the leases are live.
    assert_eq!(
        store.sync_backlog(at(-7200)).await.unwrap(),
        SyncBacklog {
            due: 0,
            oldest_due_at: None,
            leased: 4
        }
    );
}
