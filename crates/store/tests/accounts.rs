//! Accounts in the store, on SQLite and PostgreSQL alike: API tokens that
//! expire and go with the token that made them, passwords that end the
//! other sessions, the email, and deleting a user with every row of theirs.
#![allow(clippy::unwrap_used)]

use calsync_core::model::{Provider, UserId};
use calsync_store::testing::{self, fresh_store};
use calsync_store::{BackendKind, NewConnection, OAuthState, Session, Store, StoreError};
use jiff::{SignedDuration, Timestamp};
use secrecy::SecretString;

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
    tokens_expire_and_then_resolve_like_unknown_ones,
    tokens_are_revoked_only_by_their_user_and_with_their_parent,
    a_password_change_ends_the_other_sessions_only,
    the_email_is_kept_and_cleared,
    deleting_a_user_removes_every_row_of_theirs_and_nothing_else,
);

fn now() -> Timestamp {
    Timestamp::from_second(1_790_000_000).unwrap()
}

fn later(secs: i64) -> Timestamp {
    now() + SignedDuration::from_secs(secs)
}

async fn user(store: &Store, name: &str) -> UserId {
    store
        .create_user(name, "$argon2id$fake", now())
        .await
        .unwrap()
        .id
}

async fn tokens_expire_and_then_resolve_like_unknown_ones(kind: BackendKind) {
    let Some(store) = fresh_store(kind).await else {
        return;
    };
    let alice = user(&store, "alice").await;
    let id = store
        .create_api_token_with(alice, "day", "hash-day", Some(later(86_400)), None, now())
        .await
        .unwrap();
    store
        .create_api_token(alice, "forever", "hash-forever", now())
        .await
        .unwrap();
    let (owner, info) = store
        .api_token_for_hash("hash-day", later(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((owner, info.id, info.name.as_str()), (alice, id, "day"));
    assert_eq!(info.expires_at, Some(later(86_400)));
    assert_eq!(info.last_used_at, Some(later(60)), "the use is recorded");
    assert!(!info.is_expired(later(60)));
    // At the expiry instant and after it, the token is refused, exactly as
    // one that never existed.
    for at in [later(86_400), later(86_401), later(10 * 86_400)] {
        assert_eq!(
            store.user_for_api_token("hash-day", at).await.unwrap(),
            None
        );
        assert_eq!(
            store.user_for_api_token("hash-nothing", at).await.unwrap(),
            None
        );
        assert_eq!(
            store.user_for_api_token("hash-forever", at).await.unwrap(),
            Some(alice)
        );
    }
    // Listed until revoked, marked expired, and a refused use is not recorded.
    let listed = store.list_api_tokens(alice).await.unwrap();
    let names: Vec<&str> = listed.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["forever", "day"], "newest first");
    assert!(listed[1].is_expired(later(86_400)));
    assert_eq!(listed[1].last_used_at, Some(later(60)));
    assert_eq!((listed[0].expires_at, listed[0].parent_id), (None, None));
    assert_eq!(store.count_api_tokens(alice).await.unwrap(), 2);
}

async fn tokens_are_revoked_only_by_their_user_and_with_their_parent(kind: BackendKind) {
    let Some(store) = fresh_store(kind).await else {
        return;
    };
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let parent = store
        .create_api_token(alice, "parent", "hash-parent", now())
        .await
        .unwrap();
    let child = store
        .create_api_token_with(alice, "child", "hash-child", None, Some(parent), now())
        .await
        .unwrap();
    let grandchild = store
        .create_api_token_with(alice, "grandchild", "hash-gc", None, Some(child), now())
        .await
        .unwrap();
    let sibling = store
        .create_api_token(alice, "sibling", "hash-sibling", now())
        .await
        .unwrap();
    let bobs = store
        .create_api_token(bob, "bob's", "hash-bob", now())
        .await
        .unwrap();
    assert_eq!(
        store.list_api_tokens(alice).await.unwrap()[1].parent_id,
        Some(child),
        "the grandchild names its parent"
    );
    // Another user's token can be neither a parent nor revoked.
    assert!(matches!(
        store
            .create_api_token_with(bob, "x", "hash-x", None, Some(parent), now())
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_api_token(bob, parent).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_api_token(alice, bobs).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_api_token(alice, i64::MAX).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.count_api_tokens(alice).await.unwrap(), 4);
    // Revoking the parent revokes what was made with it, down the line.
    store.delete_api_token(alice, parent).await.unwrap();
    let left: Vec<i64> = store
        .list_api_tokens(alice)
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(left, [sibling]);
    for hash in ["hash-parent", "hash-child", "hash-gc"] {
        assert_eq!(store.user_for_api_token(hash, now()).await.unwrap(), None);
    }
    assert!(!left.contains(&grandchild));
    assert_eq!(
        store.user_for_api_token("hash-bob", now()).await.unwrap(),
        Some(bob)
    );
    // A parent that is gone cannot be built on.
    assert!(matches!(
        store
            .create_api_token_with(alice, "late", "hash-late", None, Some(parent), now())
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_api_token(alice, parent).await,
        Err(StoreError::NotFound)
    ));
}

fn session(user: UserId) -> Session {
    Session {
        user_id: user,
        csrf_token: "csrf".into(),
        expires_at: later(3600),
    }
}

async fn a_password_change_ends_the_other_sessions_only(kind: BackendKind) {
    let Some(store) = fresh_store(kind).await else {
        return;
    };
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    for (hash, owner) in [("a1", alice), ("a2", alice), ("a3", alice), ("b1", bob)] {
        store
            .create_session(hash, &session(owner), now())
            .await
            .unwrap();
    }
    store
        .create_api_token(alice, "cli", "hash-token", now())
        .await
        .unwrap();
    let ended = store
        .change_password(alice, "$argon2id$new", Some("a2"))
        .await
        .unwrap();
    assert_eq!(ended, 2);
    assert_eq!(
        store.user_password_hash(alice).await.unwrap(),
        "$argon2id$new"
    );
    assert!(store.session("a1", now()).await.unwrap().is_none());
    assert!(store.session("a3", now()).await.unwrap().is_none());
    assert!(store.session("a2", now()).await.unwrap().is_some(), "kept");
    assert!(store.session("b1", now()).await.unwrap().is_some(), "bob's");
    assert_eq!(
        store.user_for_api_token("hash-token", now()).await.unwrap(),
        Some(alice),
        "API tokens keep working"
    );
    // Without a session to keep (`calsync user passwd`), all of them end.
    assert_eq!(
        store
            .change_password(alice, "$argon2id$newer", None)
            .await
            .unwrap(),
        1
    );
    assert!(store.session("a2", now()).await.unwrap().is_none());
    assert!(matches!(
        store.change_password(UserId(i64::MAX), "x", None).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.user_password_hash(UserId(i64::MAX)).await,
        Err(StoreError::NotFound)
    ));
}

async fn the_email_is_kept_and_cleared(kind: BackendKind) {
    let Some(store) = fresh_store(kind).await else {
        return;
    };
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    assert_eq!(store.user_email(alice).await.unwrap(), None);
    store
        .set_user_email(alice, Some("alice@example.com"))
        .await
        .unwrap();
    assert_eq!(
        store.user_email(alice).await.unwrap().as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(store.user_email(bob).await.unwrap(), None);
    store.set_user_email(alice, None).await.unwrap();
    assert_eq!(store.user_email(alice).await.unwrap(), None);
    assert!(matches!(
        store
            .set_user_email(UserId(i64::MAX), Some("x@example.com"))
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.user_email(UserId(i64::MAX)).await,
        Err(StoreError::NotFound)
    ));
}

/// Gives `user` a row in every table: a session, a token, an OAuth state, a
/// connection with a calendar, an event, an occurrence and a sync run.
async fn fill(store: &Store, user: UserId, name: &str) {
    store
        .create_session(&format!("session-{name}"), &session(user), now())
        .await
        .unwrap();
    store
        .create_api_token(user, "cli", &format!("token-{name}"), now())
        .await
        .unwrap();
    let flow = OAuthState {
        user_id: user,
        provider: Provider::Google,
        pkce_verifier: SecretString::from("verifier"),
        expires_at: later(600),
    };
    store
        .create_oauth_state(&format!("state-{name}"), &flow, now())
        .await
        .unwrap();
    let connection = store
        .upsert_connection(
            &NewConnection {
                user_id: user,
                provider: Provider::Google,
                account_id: name.to_owned(),
                account_email: Some(format!("{name}@example.com")),
                access_token: Some(SecretString::from("access")),
                refresh_token: Some(SecretString::from("refresh")),
                token_expires_at: Some(later(3600)),
                scopes: "calendar".to_owned(),
            },
            now(),
        )
        .await
        .unwrap();
    store.start_sync_run(connection, now()).await.unwrap();
    let (u, c, t) = (user.0, connection.0, now().as_second());
    testing::execute(
        store,
        &format!(
            "INSERT INTO calendars (connection_id, user_id, external_id, name) VALUES ({c}, {u}, 'primary', 'Main');\
             INSERT INTO events (calendar_id, user_id, external_id, title, start_at, end_at) \
               SELECT id, {u}, 'e1', 'Standup', {t}, {t} + 900 FROM calendars WHERE connection_id = {c};\
             INSERT INTO occurrences (event_id, user_id, calendar_id, start_at, end_at) \
               SELECT id, {u}, calendar_id, {t}, {t} + 900 FROM events WHERE user_id = {u};"
        ),
    )
    .await;
}

/// Every (table, column) in the schema that ties a row to a user: a
/// `user_id`, or a `connection_id`, `calendar_id` or `event_id` (rows that
/// belong to a user through their connection, calendar or event). Read from
/// the database's catalog, so a table added later is checked too.
async fn owning_columns(store: &Store) -> Vec<(String, String)> {
    let sql = match store.kind() {
        BackendKind::Sqlite => {
            "SELECT group_concat(m.name || '.' || p.name, ',') FROM sqlite_master m \
             JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND p.name IN ('user_id', 'connection_id', 'calendar_id', 'event_id')"
        }
        BackendKind::Postgres => {
            "SELECT string_agg(table_name || '.' || column_name, ',') FROM information_schema.columns \
             WHERE table_schema = current_schema() \
               AND column_name IN ('user_id', 'connection_id', 'calendar_id', 'event_id')"
        }
    };
    let list = testing::fetch_text(store, sql).await.unwrap_or_default();
    let mut columns: Vec<(String, String)> = list
        .split(',')
        .filter_map(|pair| pair.split_once('.'))
        .map(|(t, c)| (t.to_owned(), c.to_owned()))
        .collect();
    columns.sort();
    columns
}

/// The ids (comma-separated, or empty) `sql` selects.
async fn ids(store: &Store, table: &str, column: &str, user: UserId) -> String {
    let sql = match store.kind() {
        BackendKind::Sqlite => format!(
            "SELECT COALESCE(group_concat(id, ','), '') FROM {table} WHERE {column} = {}",
            user.0
        ),
        BackendKind::Postgres => format!(
            "SELECT COALESCE(string_agg(CAST(id AS TEXT), ','), '') FROM {table} WHERE {column} = {}",
            user.0
        ),
    };
    testing::fetch_text(store, &sql).await.unwrap_or_default()
}

/// How many rows of each owning (table, column) belong to `user` (whose
/// connections, calendars and events had the ids given), plus the user row.
async fn rows_of(store: &Store, user: UserId, owned: &[(&str, String)]) -> Vec<(String, i64)> {
    let mut counts = Vec::new();
    let users = testing::fetch_text(
        store,
        &format!(
            "SELECT CAST(COUNT(*) AS TEXT) FROM users WHERE id = {}",
            user.0
        ),
    )
    .await;
    counts.push(("users.id".to_owned(), users.unwrap().parse().unwrap()));
    for (table, column) in owning_columns(store).await {
        let ids = if column == "user_id" {
            user.0.to_string()
        } else {
            let kind = column.trim_end_matches("_id");
            owned
                .iter()
                .find(|(k, _)| *k == kind)
                .map(|(_, ids)| ids.clone())
                .unwrap_or_default()
        };
        let n = if ids.is_empty() {
            0
        } else {
            let sql =
                format!("SELECT CAST(COUNT(*) AS TEXT) FROM {table} WHERE {column} IN ({ids})");
            testing::fetch_text(store, &sql)
                .await
                .unwrap()
                .parse()
                .unwrap()
        };
        counts.push((format!("{table}.{column}"), n));
    }
    counts
}

async fn deleting_a_user_removes_every_row_of_theirs_and_nothing_else(kind: BackendKind) {
    let Some(store) = fresh_store(kind).await else {
        return;
    };
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    fill(&store, alice, "alice").await;
    fill(&store, bob, "bob").await;
    let mut owned = Vec::new();
    for (kind, table) in [
        ("connection", "connections"),
        ("calendar", "calendars"),
        ("event", "events"),
    ] {
        owned.push((kind, ids(&store, table, "user_id", alice).await));
    }
    let before = rows_of(&store, alice, &owned).await;
    for table in [
        "users.id",
        "sessions.user_id",
        "api_tokens.user_id",
        "oauth_states.user_id",
        "connections.user_id",
        "calendars.user_id",
        "events.user_id",
        "occurrences.user_id",
        "sync_runs.connection_id",
    ] {
        assert!(
            before.iter().any(|(t, n)| t == table && *n > 0),
            "alice has no row in {table}: {before:?}"
        );
    }
    let bob_before = rows_of(&store, bob, &[]).await;

    store.delete_user(alice).await.unwrap();

    let after = rows_of(&store, alice, &owned).await;
    assert!(
        after.iter().all(|(_, n)| *n == 0),
        "rows of alice survived: {after:?}"
    );
    assert_eq!(
        rows_of(&store, bob, &[]).await,
        bob_before,
        "bob's rows stay"
    );
    assert!(store
        .user_for_api_token("token-bob", now())
        .await
        .unwrap()
        .is_some());
    assert!(matches!(store.user(alice).await, Err(StoreError::NotFound)));
    assert!(matches!(
        store.delete_user(alice).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.user_by_name("alice").await.is_err());
    // The name is free again.
    user(&store, "alice").await;
}
