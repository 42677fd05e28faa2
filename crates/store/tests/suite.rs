//! One store test suite, run against SQLite and PostgreSQL alike.
#![allow(clippy::unwrap_used)]

use calsync_core::changes::{EventChange, EventStart, EventStatus, PageNext, RemoteEvent};
use calsync_core::model::{
    CalendarId, ConnectionId, ConnectionStatus, EventTime, Provider, RemoteCalendar, UserId,
};
use calsync_core::plan::Cursor;
use calsync_core::recur::Window;
use calsync_store::seal::Keyring;
use calsync_store::testing::{self, fresh_database, fresh_store};
use calsync_store::{
    BackendKind, CalendarPatch, Claim, ClaimLimits, EventRange, NewConnection, OAuthState,
    PageUpdate, Session, Store, StoreError, SyncResult,
};
use jiff::{SignedDuration, Timestamp};
use secrecy::{ExposeSecret, SecretString};

/// Generates one `#[tokio::test]` per backend for each suite function.
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
    users_are_unique_by_name,
    a_users_time_zone_is_kept,
    api_tokens_resolve_by_hash,
    sessions_expire_and_end,
    oauth_states_are_single_use_and_bound_to_their_user,
    reconnecting_updates_the_same_connection,
    secrets_are_sealed_and_do_not_open_in_another_row,
    users_never_see_each_others_rows,
    calendars_keep_the_users_choices,
    rotation_reseals_and_a_missing_key_fails_at_start,
    migrations_run_once,
    pages_apply_with_their_cursor_and_full_rounds_sweep,
    recurring_series_materialise_with_exceptions,
    a_replaced_group_keeps_exactly_its_new_events,
    due_connections_are_claimed_once_and_rescheduled,
    rounds_at_once_are_limited_per_user,
    rounds_at_once_are_limited_per_host,
    a_round_on_a_deleted_connection_writes_nothing,
    old_sync_runs_are_trimmed_per_connection,
    the_horizon_extends_as_time_passes,
    ranges_beyond_the_horizon_expand_on_the_fly_like_the_stored_ones,
    long_events_under_way_are_found_by_later_ranges,
);

fn now() -> Timestamp {
    Timestamp::from_second(1_790_000_000).unwrap()
}

async fn user(store: &Store, name: &str) -> UserId {
    store
        .create_user(name, "$argon2id$fake", now())
        .await
        .unwrap()
        .id
}

fn google(user: UserId, account: &str, refresh: &str) -> NewConnection {
    NewConnection {
        user_id: user,
        provider: Provider::Google,
        account_id: account.to_owned(),
        account_email: Some(format!("{account}@example.com")),
        access_token: Some(SecretString::from(format!("access-{refresh}"))),
        refresh_token: Some(SecretString::from(refresh.to_owned())),
        token_expires_at: Some(now()),
        scopes: "openid".to_owned(),
    }
}

fn remote(id: &str, color: Option<&str>) -> RemoteCalendar {
    RemoteCalendar {
        external_id: id.to_owned(),
        name: format!("Calendar {id}"),
        color: color.map(str::to_owned),
        timezone: Some("Europe/Berlin".to_owned()),
        is_primary: false,
        access_role: Some("owner".to_owned()),
    }
}

async fn users_are_unique_by_name(kind: BackendKind) {
    let Some(store) = fresh_store(kind).await else {
        return;
    };
    let alice = user(&store, "alice").await;
    assert!(matches!(
        store.create_user("alice", "x", now()).await,
        Err(StoreError::Conflict("user"))
    ));
    let (found, hash) = store.user_credentials("alice").await.unwrap().unwrap();
    assert_eq!(
        (found.id, found.timezone.as_str(), hash.as_str()),
        (alice, "UTC", "$argon2id$fake")
    );
    assert!(store.user_credentials("bob").await.unwrap().is_none());
    assert_eq!(store.count_users().await.unwrap(), 1);
}

async fn a_users_time_zone_is_kept(kind: BackendKind) {
    let Some(store) = fresh_store(kind).await else {
        return;
    };
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    store
        .set_user_timezone(alice, "America/New_York")
        .await
        .unwrap();
    assert_eq!(
        store.user(alice).await.unwrap().timezone,
        "America/New_York"
    );
    assert_eq!(
        store.user(bob).await.unwrap().timezone,
        "UTC",
        "only alice's row changes"
    );
    assert!(matches!(
        store.set_user_timezone(UserId(i64::MAX), "UTC").await,
        Err(StoreError::NotFound)
    ));
}

async fn api_tokens_resolve_by_hash(kind: BackendKind) {
    let Some(store) = fresh_store(kind).await else {
        return;
    };
    let alice = user(&store, "alice").await;
    store
        .create_api_token(alice, "cli", "hash-1", now())
        .await
        .unwrap();
    assert_eq!(
        store.user_for_api_token("hash-1", now()).await.unwrap(),
        Some(alice)
    );
    assert_eq!(
        store.user_for_api_token("hash-2", now()).await.unwrap(),
        None
    );
    let listed = store.list_api_tokens(alice).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].last_used_at, Some(now()));
}

async fn sessions_expire_and_end(kind: BackendKind) {
    let Some(store) = fresh_store(kind).await else {
        return;
    };
    let alice = user(&store, "alice").await;
    let session = Session {
        user_id: alice,
        csrf_token: "csrf".into(),
        expires_at: now() + SignedDuration::from_hours(1),
    };
    store.create_session("s1", &session, now()).await.unwrap();
    assert_eq!(
        store.session("s1", now()).await.unwrap(),
        Some(session.clone())
    );
    let later = now() + SignedDuration::from_hours(2);
    assert_eq!(store.session("s1", later).await.unwrap(), None);
    let cleaned = store.clean_up(later, 50).await.unwrap().unwrap();
    assert_eq!((cleaned.sessions, cleaned.oauth_states), (1, 0));
    store.create_session("s2", &session, now()).await.unwrap();
    store.delete_session("s2").await.unwrap();
    assert_eq!(store.session("s2", now()).await.unwrap(), None);
}

async fn oauth_states_are_single_use_and_bound_to_their_user(kind: BackendKind) {
    let Some(store) = fresh_store(kind).await else {
        return;
    };
    let (alice, bob) = (user(&store, "alice").await, user(&store, "bob").await);
    let flow = |user_id| OAuthState {
        user_id,
        provider: Provider::Google,
        pkce_verifier: SecretString::from("verifier-secret"),
        expires_at: now() + SignedDuration::from_mins(10),
    };
    store
        .create_oauth_state("st1", &flow(alice), now())
        .await
        .unwrap();
    let taken = store
        .take_oauth_state("st1", alice, Provider::Google, now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.pkce_verifier.expose_secret(), "verifier-secret");
    assert!(store
        .take_oauth_state("st1", alice, Provider::Google, now())
        .await
        .unwrap()
        .is_none());

    store
        .create_oauth_state("st2", &flow(alice), now())
        .await
        .unwrap();
    assert!(store
        .take_oauth_state("st2", bob, Provider::Google, now())
        .await
        .unwrap()
        .is_none());
    store
        .create_oauth_state("st3", &flow(alice), now())
        .await
        .unwrap();
    let late = now() + SignedDuration::from_mins(11);
    assert!(store
        .take_oauth_state("st3", alice, Provider::Google, late)
        .await
        .unwrap()
        .is_none());
}

async fn reconnecting_updates_the_same_connection(kind: BackendKind) {
    let Some(store) = fresh_store(kind).await else {
        return;
    };
    let alice = user(&store, "alice").await;
    let first = store
        .upsert_connection(&google(alice, "sub-1", "r1"), now())
        .await
        .unwrap();
    let mut again = google(alice, "sub-1", "r2");
    again.account_email = Some("new@example.com".into());
    let second = store.upsert_connection(&again, now()).await.unwrap();
    assert_eq!(first, second);
    let listed = store.list_connections(alice).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].connection.account_email.as_deref(),
        Some("new@example.com")
    );
    assert_eq!(
        store
            .refresh_token(alice, first)
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "r2"
    );

    let mut without_refresh = google(alice, "sub-1", "unused");
    without_refresh.refresh_token = None;
    store
        .upsert_connection(&without_refresh, now())
        .await
        .unwrap();
    assert_eq!(
        store
            .refresh_token(alice, first)
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "r2"
    );
}

async fn secrets_are_sealed_and_do_not_open_in_another_row(kind: BackendKind) {
    let Some(store) = fresh_store(kind).await else {
        return;
    };
    let alice = user(&store, "alice").await;
    let a = store
        .upsert_connection(&google(alice, "sub-a", "refresh-of-a"), now())
        .await
        .unwrap();
    let b = store
        .upsert_connection(&google(alice, "sub-b", "refresh-of-b"), now())
        .await
        .unwrap();
    let raw = testing::fetch_text(
        &store,
        &format!("SELECT refresh_token FROM connections WHERE id = {a}"),
    )
    .await
    .unwrap();
    assert!(
        raw.starts_with("v1.") && !raw.contains("refresh-of-a"),
        "stored in the clear: {raw}"
    );

    testing::execute(
        &store,
        &format!("UPDATE connections SET refresh_token = '{raw}' WHERE id = {b}"),
    )
    .await;
    assert!(matches!(
        store.refresh_token(alice, b).await,
        Err(StoreError::Seal(_))
    ));
    assert_eq!(
        store
            .refresh_token(alice, a)
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "refresh-of-a"
    );
}

/// Claims `conn`, which must be the only due, unleased connection.
async fn claimed(store: &Store, conn: ConnectionId) -> Claim {
    let claim = store
        .claim_due_connection(now(), lease_end(), ClaimLimits::default())
        .await
        .unwrap()
        .expect("a due connection");
    assert_eq!(claim.connection_id, conn);
    claim
}

fn lease_end() -> Timestamp {
    now() + SignedDuration::from_mins(10)
}

async fn users_never_see_each_others_rows(kind: BackendKind) {
    let Some(store) = fresh_store(kind).await else {
        return;
    };
    let (alice, bob) = (user(&store, "alice").await, user(&store, "bob").await);
    let conn = store
        .upsert_connection(&google(alice, "sub-a", "r"), now())
        .await
        .unwrap();
    let claim = claimed(&store, conn).await;
    let cals = store
        .upsert_calendars(&claim, lease_end(), &[remote("primary", None)])
        .await
        .unwrap();
    let cal = cals[0].id;

    assert!(store.list_connections(bob).await.unwrap().is_empty());
    assert!(store.list_calendars(bob).await.unwrap().is_empty());
    assert!(matches!(
        store.connection(bob, conn).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.refresh_token(bob, conn).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.calendar(bob, cal).await,
        Err(StoreError::NotFound)
    ));
    let patch = CalendarPatch {
        enabled: Some(false),
        color: None,
    };
    assert!(matches!(
        store.patch_calendar(bob, cal, &patch).await,
        Err(StoreError::NotFound)
    ));
    let stale = Claim {
        lease_token: claim.lease_token - 1,
        ..claim
    };
    assert!(matches!(
        store
            .upsert_calendars(&stale, lease_end(), &[remote("x", None)])
            .await,
        Err(StoreError::LeaseLost)
    ));
    assert!(matches!(
        store.delete_connection(bob, conn).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.list_connections(alice).await.unwrap().len(), 1);
    assert!(store.calendar(alice, cal).await.unwrap().enabled);
}

async fn calendars_keep_the_users_choices(kind: BackendKind) {
    let Some(store) = fresh_store(kind).await else {
        return;
    };
    let alice = user(&store, "alice").await;
    let conn = store
        .upsert_connection(&google(alice, "sub-a", "r"), now())
        .await
        .unwrap();
    let claim = claimed(&store, conn).await;
    let cals = store
        .upsert_calendars(
            &claim,
            lease_end(),
            &[
                remote("work", Some("#9FC6E7")),
                remote("home", Some("not a colour")),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        cals.iter().map(|c| c.color.as_str()).collect::<Vec<_>>(),
        ["#9fc6e7", "#4285f4"]
    );
    let patch = CalendarPatch {
        enabled: Some(false),
        color: Some("#112233".into()),
    };
    let patched = store
        .patch_calendar(alice, cals[0].id, &patch)
        .await
        .unwrap();
    assert!(!patched.enabled);

    let mut renamed = remote("work", Some("#000000"));
    renamed.name = "Work (renamed)".into();
    let cals = store
        .upsert_calendars(&claim, lease_end(), &[renamed])
        .await
        .unwrap();
    assert_eq!(
        (
            cals[0].name.as_str(),
            cals[0].color.as_str(),
            cals[0].enabled
        ),
        ("Work (renamed)", "#112233", false)
    );
    assert!(matches!(
        store.calendar(alice, CalendarId(i64::MAX)).await,
        Err(StoreError::NotFound)
    ));

    store.delete_connection(alice, conn).await.unwrap();
    assert!(store.list_calendars(alice).await.unwrap().is_empty());
    assert!(matches!(
        store.connection(alice, ConnectionId(conn.0)).await,
        Err(StoreError::NotFound)
    ));
}

async fn rotation_reseals_and_a_missing_key_fails_at_start(kind: BackendKind) {
    let Some(db) = fresh_database(kind).await else {
        return;
    };
    let (old, new) = (Keyring::generate_base64(), Keyring::generate_base64());
    let store = Store::open_url(&db.url, testing::keyring_from(&[&old]))
        .await
        .unwrap();
    store.prepare().await.unwrap();
    let alice = user(&store, "alice").await;
    let conn = store
        .upsert_connection(&google(alice, "sub", "the-refresh"), now())
        .await
        .unwrap();
    store.close().await;

    let only_new = Store::open_url(&db.url, testing::keyring_from(&[&new]))
        .await
        .unwrap();
    assert!(matches!(
        only_new.prepare().await,
        Err(StoreError::MissingKey(_))
    ));
    only_new.close().await;

    let both = Store::open_url(&db.url, testing::keyring_from(&[&new, &old]))
        .await
        .unwrap();
    both.prepare().await.unwrap();
    let report = both.rotate_keys().await.unwrap();
    assert_eq!((report.resealed, report.unchanged), (2, 0));
    assert_eq!(both.rotate_keys().await.unwrap().resealed, 0);
    both.close().await;

    let only_new = Store::open_url(&db.url, testing::keyring_from(&[&new]))
        .await
        .unwrap();
    only_new.prepare().await.unwrap();
    assert_eq!(
        only_new
            .refresh_token(alice, conn)
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "the-refresh"
    );
}

async fn migrations_run_once(kind: BackendKind) {
    let Some(store) = fresh_store(kind).await else {
        return;
    };
    store.prepare().await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(
        testing::fetch_text(
            &store,
            "SELECT CAST(COUNT(*) AS TEXT) FROM schema_migrations"
        )
        .await
        .as_deref(),
        Some("3")
    );
    store.ping().await.unwrap();
}

fn timed(id: &str, start: &str, minutes: i64) -> RemoteEvent {
    let instant: Timestamp = start.parse().unwrap();
    let zone = Some("Europe/Berlin".to_owned());
    RemoteEvent {
        external_id: id.to_owned(),
        etag: Some(format!("\"{id}\"")),
        status: EventStatus::Confirmed,
        title: format!("Event {id}"),
        description: None,
        location: Some("Room 1".into()),
        start: EventStart::DateTime {
            instant,
            zone: zone.clone(),
        },
        end: EventStart::DateTime {
            instant: instant + SignedDuration::from_mins(minutes),
            zone,
        },
        recurrence: Vec::new(),
        recurring_event_id: None,
        original_start: None,
        html_link: Some(format!("https://calendar.example/{id}")),
        updated: None,
    }
}

fn upsert(event: RemoteEvent) -> EventChange {
    EventChange::Upsert(Box::new(event))
}

fn horizon() -> Window {
    Window::new(
        "2026-01-01T00:00:00Z".parse().unwrap(),
        "2027-01-01T00:00:00Z".parse().unwrap(),
    )
    .unwrap()
}

fn whole_year() -> EventRange {
    EventRange {
        start: "2026-01-01T00:00:00Z".parse().unwrap(),
        end: "2027-01-01T00:00:00Z".parse().unwrap(),
    }
}

async fn calendar_for(store: &Store, name: &str) -> (UserId, CalendarId) {
    let user = user(store, name).await;
    let conn = store
        .upsert_connection(&google(user, &format!("sub-{name}"), "r"), now())
        .await
        .unwrap();
    let claim = claimed(store, conn).await;
    let cal = store
        .upsert_calendars(&claim, lease_end(), &[remote("primary", Some("#0b8043"))])
        .await
        .unwrap()[0]
        .id;
    (user, cal)
}

/// The claim its round holds on the connection of `cal`.
async fn claim_of(store: &Store, user: UserId, cal: CalendarId) -> Claim {
    let row = |column: &str| {
        format!(
            "SELECT CAST({column} AS TEXT) FROM connections \
             WHERE id = (SELECT connection_id FROM calendars WHERE id = {})",
            cal.0
        )
    };
    let number = |text: Option<String>| text.unwrap().parse::<i64>().unwrap();
    Claim {
        connection_id: ConnectionId(number(testing::fetch_text(store, &row("id")).await)),
        user_id: user,
        lease_token: number(testing::fetch_text(store, &row("lease_token")).await),
    }
}

async fn apply(
    store: &Store,
    user: UserId,
    cal: CalendarId,
    changes: &[EventChange],
    full: bool,
    next: PageNext,
) -> u64 {
    let window = horizon();
    let claim = claim_of(store, user, cal).await;
    let page = PageUpdate {
        claim: &claim,
        lease_until: lease_end(),
        changes,
        starts_full_round: full,
        next: &next,
        window: &window,
        now: now(),
    };
    store.apply_page(user, cal, &page).await.unwrap().total()
}

async fn titles(store: &Store, user: UserId) -> Vec<String> {
    store
        .events_in_range(user, whole_year(), 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.title)
        .collect()
}

async fn pages_apply_with_their_cursor_and_full_rounds_sweep(kind: BackendKind) {
    let Some(store) = fresh_store(kind).await else {
        return;
    };
    let (alice, cal) = calendar_for(&store, "alice").await;
    let (bob, _) = calendar_for(&store, "bob").await;
    assert_eq!(store.calendar_cursor(alice, cal).await.unwrap(), None);

    let first = [
        upsert(timed("a", "2026-03-02T09:00:00Z", 60)),
        upsert(timed("b", "2026-03-03T09:00:00Z", 30)),
    ];
    apply(
        &store,
        alice,
        cal,
        &first,
        true,
        PageNext::Page("p2".into()),
    )
    .await;
    assert_eq!(
        store.calendar_cursor(alice, cal).await.unwrap(),
        Some(Cursor::Page {
            token: "p2".into(),
            full: true
        })
    );
    let second = [upsert(timed("c", "2026-03-04T09:00:00Z", 30))];
    apply(
        &store,
        alice,
        cal,
        &second,
        false,
        PageNext::Done {
            sync_token: "s1".into(),
        },
    )
    .await;
    assert_eq!(
        store.calendar_cursor(alice, cal).await.unwrap(),
        Some(Cursor::Sync("s1".into()))
    );
    assert_eq!(
        titles(&store, alice).await,
        ["Event a", "Event b", "Event c"]
    );
    assert!(
        titles(&store, bob).await.is_empty(),
        "bob must not see alice's events"
    );

    let listed = store
        .events_in_range(alice, whole_year(), 10)
        .await
        .unwrap();
    assert_eq!(listed[0].color, "#0b8043");
    assert_eq!(
        listed[0].start,
        EventTime::Instant("2026-03-02T09:00:00Z".parse().unwrap())
    );

    let mut changed = timed("b", "2026-03-05T09:00:00Z", 30);
    changed.title = "Moved".into();
    let incremental = [
        upsert(changed),
        EventChange::Removed {
            external_id: "a".into(),
        },
    ];
    apply(
        &store,
        alice,
        cal,
        &incremental,
        false,
        PageNext::Done {
            sync_token: "s2".into(),
        },
    )
    .await;
    assert_eq!(titles(&store, alice).await, ["Event c", "Moved"]);

    // A full round that no longer lists "c" sweeps it away.
    let round = [upsert(timed("b", "2026-03-05T09:00:00Z", 30))];
    let changes = apply(
        &store,
        alice,
        cal,
        &round,
        true,
        PageNext::Done {
            sync_token: "s3".into(),
        },
    )
    .await;
    assert_eq!(changes, 2, "one upsert and one sweep");
    assert_eq!(titles(&store, alice).await, ["Event b"]);

    store
        .patch_calendar(
            alice,
            cal,
            &CalendarPatch {
                enabled: Some(false),
                color: None,
            },
        )
        .await
        .unwrap();
    assert!(
        titles(&store, alice).await.is_empty(),
        "a disabled calendar's events are hidden"
    );
}

async fn recurring_series_materialise_with_exceptions(kind: BackendKind) {
    let Some(store) = fresh_store(kind).await else {
        return;
    };
    let (alice, cal) = calendar_for(&store, "alice").await;
    let mut master = timed("weekly", "2026-03-02T08:00:00Z", 60);
    master.recurrence = vec!["RRULE:FREQ=WEEKLY;COUNT=3".into()];
    let mut moved = timed("weekly_1", "2026-03-10T12:00:00Z", 60);
    moved.title = "Moved instance".into();
    moved.recurring_event_id = Some("weekly".into());
    moved.original_start = Some(EventStart::DateTime {
        instant: "2026-03-09T08:00:00Z".parse().unwrap(),
        zone: None,
    });
    let mut all_day = timed("holiday", "2026-03-20T00:00:00Z", 0);
    all_day.start = EventStart::Date(jiff::civil::date(2026, 3, 20));
    all_day.end = EventStart::Date(jiff::civil::date(2026, 3, 21));
    let changes = [upsert(master), upsert(moved), upsert(all_day)];
    apply(
        &store,
        alice,
        cal,
        &changes,
        true,
        PageNext::Done {
            sync_token: "s1".into(),
        },
    )
    .await;
    let listed = store
        .events_in_range(alice, whole_year(), 100)
        .await
        .unwrap();
    let summary: Vec<(String, bool)> = listed
        .iter()
        .map(|e| (e.title.clone(), e.recurring))
        .collect();
    assert_eq!(
        summary,
        [
            ("Event weekly".to_owned(), true),
            ("Moved instance".to_owned(), true),
            ("Event weekly".to_owned(), true),
            ("Event holiday".to_owned(), false),
        ]
    );
    assert_eq!(
        listed[3].start,
        EventTime::Date(jiff::civil::date(2026, 3, 20))
    );
    assert_eq!(
        listed[3].end,
        EventTime::Date(jiff::civil::date(2026, 3, 21))
    );

    let mut cancel = timed("weekly_2", "2026-03-16T08:00:00Z", 60);
    cancel.status = EventStatus::Cancelled;
    cancel.recurring_event_id = Some("weekly".into());
    cancel.original_start = Some(EventStart::DateTime {
        instant: "2026-03-16T08:00:00Z".parse().unwrap(),
        zone: None,
    });
    apply(
        &store,
        alice,
        cal,
        &[upsert(cancel)],
        false,
        PageNext::Done {
            sync_token: "s2".into(),
        },
    )
    .await;
    assert_eq!(
        titles(&store, alice).await,
        ["Event weekly", "Moved instance", "Event holiday"]
    );

    apply(
        &store,
        alice,
        cal,
        &[EventChange::Removed {
            external_id: "weekly".into(),
        }],
        false,
        PageNext::Done {
            sync_token: "s3".into(),
        },
    )
    .await;
    assert_eq!(
        titles(&store, alice).await,
        ["Moved instance", "Event holiday"],
        "instances outlive a removed master only as themselves"
    );
}

/// A CalDAV resource changes as a whole: an override dropped from it must go,
/// the others keep their rows, and an empty replacement removes the series.
async fn a_replaced_group_keeps_exactly_its_new_events(kind: BackendKind) {
    let Some(store) = fresh_store(kind).await else {
        return;
    };
    let (alice, cal) = calendar_for(&store, "alice").await;
    let mut master = timed("res.ics", "2026-03-02T08:00:00Z", 60);
    master.recurrence = vec!["RRULE:FREQ=WEEKLY;COUNT=3".into()];
    let instance = |id: &str, at: &str, title: &str| {
        let mut moved = timed(id, at, 60);
        moved.title = title.into();
        moved.recurring_event_id = Some("res.ics".into());
        moved.original_start = Some(EventStart::DateTime {
            instant: at.parse().unwrap(),
            zone: None,
        });
        moved
    };
    let first = instance("res.ics#1", "2026-03-09T08:00:00Z", "First override");
    let second = instance("res.ics#2", "2026-03-16T08:00:00Z", "Second override");
    let replace = |events: Vec<RemoteEvent>| EventChange::Replace {
        group: "res.ics".into(),
        events,
    };
    let done = |token: &str| PageNext::Done {
        sync_token: token.into(),
    };
    let all = [replace(vec![master.clone(), first.clone(), second])];
    apply(&store, alice, cal, &all, true, done("s1")).await;
    assert_eq!(
        titles(&store, alice).await,
        ["Event res.ics", "First override", "Second override"]
    );
    let before = store
        .events_in_range(alice, whole_year(), 10)
        .await
        .unwrap();

    apply(
        &store,
        alice,
        cal,
        &[replace(vec![master, first])],
        false,
        done("s2"),
    )
    .await;
    assert_eq!(
        titles(&store, alice).await,
        ["Event res.ics", "First override", "Event res.ics"],
        "the dropped override falls back to the series' own occurrence"
    );
    let after = store
        .events_in_range(alice, whole_year(), 10)
        .await
        .unwrap();
    assert_eq!(
        before[1].event_id, after[1].event_id,
        "a kept override keeps its id"
    );

    apply(
        &store,
        alice,
        cal,
        &[replace(Vec::new())],
        false,
        done("s3"),
    )
    .await;
    assert!(titles(&store, alice).await.is_empty());
}

async fn due_connections_are_claimed_once_and_rescheduled(kind: BackendKind) {
    let Some(store) = fresh_store(kind).await else {
        return;
    };
    let limits = ClaimLimits::default();
    let (alice, bob) = (user(&store, "alice").await, user(&store, "bob").await);
    let conn = store
        .upsert_connection(&google(alice, "sub", "r"), now())
        .await
        .unwrap();
    let lease = now() + SignedDuration::from_mins(2);
    let claim = store
        .claim_due_connection(now(), lease, limits)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((claim.connection_id, claim.user_id), (conn, alice));
    assert_eq!(
        store
            .claim_due_connection(now(), lease, limits)
            .await
            .unwrap(),
        None,
        "leased: nobody else gets it"
    );
    assert_eq!(
        store.connection(alice, conn).await.unwrap().status,
        ConnectionStatus::Syncing
    );
    assert!(store.renew_lease(&claim, lease).await.unwrap());

    assert!(
        !store.request_sync(bob, conn, now()).await.unwrap(),
        "not bob's connection"
    );
    assert!(store.request_sync(alice, conn, now()).await.unwrap());
    assert_eq!(
        store.connection(alice, conn).await.unwrap().status,
        ConnectionStatus::Syncing,
        "sync now during a round leaves the round alone"
    );
    assert_eq!(
        store
            .claim_due_connection(now(), lease, limits)
            .await
            .unwrap(),
        None,
        "still leased"
    );

    let run = store.start_sync_run(conn, now()).await.unwrap();
    let next = now() + SignedDuration::from_mins(5);
    let result = SyncResult {
        status: ConnectionStatus::Ok,
        error: None,
        requests: 3,
        changes: 7,
        next_sync_at: next,
        wait_reason: None,
    };
    assert!(store
        .finish_sync(&claim, run, &result, now())
        .await
        .unwrap());
    let synced = store.connection(alice, conn).await.unwrap();
    assert_eq!(
        (synced.status, synced.last_synced_at, synced.next_sync_at),
        (ConnectionStatus::Ok, Some(now()), Some(now())),
        "the sync asked for during the round comes right after it"
    );
    let again = store
        .claim_due_connection(now(), lease, limits)
        .await
        .unwrap()
        .unwrap();
    assert!(again.lease_token > claim.lease_token);
    assert!(
        !store
            .finish_sync(&claim, run, &result, now())
            .await
            .unwrap(),
        "the old round is fenced off"
    );
    assert!(store
        .finish_sync(&again, run, &result, now())
        .await
        .unwrap());
    assert_eq!(
        store.connection(alice, conn).await.unwrap().next_sync_at,
        Some(next)
    );
    assert_eq!(
        store
            .claim_due_connection(now(), lease, limits)
            .await
            .unwrap(),
        None
    );

    // A lease that ran out (its instance died) is claimed again, fencing
    // the stalled round.
    let stalled = store
        .claim_due_connection(next, next + SignedDuration::from_mins(2), limits)
        .await
        .unwrap()
        .unwrap();
    let later = next + SignedDuration::from_mins(3);
    let taken = store
        .claim_due_connection(later, later + SignedDuration::from_mins(2), limits)
        .await
        .unwrap()
        .unwrap();
    assert!(!store.renew_lease(&stalled, later).await.unwrap());
    assert!(store.renew_lease(&taken, later).await.unwrap());

    let failed = SyncResult {
        status: ConnectionStatus::NeedsReauth,
        error: Some("Reconnect".into()),
        ..result
    };
    assert!(store
        .finish_sync(&taken, run, &failed, later)
        .await
        .unwrap());
    assert!(
        !store.request_sync(alice, conn, later).await.unwrap(),
        "needs_reauth waits for a reconnect"
    );
    assert_eq!(
        store
            .claim_due_connection(later, lease, limits)
            .await
            .unwrap(),
        None
    );
    let reconnected = store
        .upsert_connection(&google(alice, "sub", "r2"), later)
        .await
        .unwrap();
    assert_eq!(reconnected, conn);
    assert!(
        store
            .claim_due_connection(later, later + SignedDuration::from_mins(2), limits)
            .await
            .unwrap()
            .is_some(),
        "reconnecting makes it due again"
    );
}

async fn rounds_at_once_are_limited_per_user(kind: BackendKind) {
    let Some(store) = fresh_store(kind).await else {
        return;
    };
    let limits = ClaimLimits {
        per_user: 2,
        per_host: 4,
    };
    let (alice, bob) = (user(&store, "alice").await, user(&store, "bob").await);
    for n in 0..4 {
        store
            .upsert_connection(&google(alice, &format!("a{n}"), "r"), now())
            .await
            .unwrap();
    }
    let bobs = store
        .upsert_connection(&google(bob, "b", "r"), now())
        .await
        .unwrap();
    let lease = now() + SignedDuration::from_mins(2);
    let mut claimed = Vec::new();
    while let Some(claim) = store
        .claim_due_connection(now(), lease, limits)
        .await
        .unwrap()
    {
        claimed.push(claim.user_id);
    }
    assert_eq!(
        claimed,
        [alice, alice, bob],
        "alice's third waits; bob's, listed after all of hers, goes"
    );
    assert!(store.connection(bob, bobs).await.is_ok());
}

async fn rounds_at_once_are_limited_per_host(kind: BackendKind) {
    let Some(store) = fresh_store(kind).await else {
        return;
    };
    let limits = ClaimLimits {
        per_user: 10,
        per_host: 2,
    };
    let mut users = Vec::new();
    for n in 0..4 {
        let user = user(&store, &format!("u{n}")).await;
        let conn = store
            .upsert_connection(&google(user, "same-server", "r"), now())
            .await
            .unwrap();
        testing::execute(
            &store,
            &format!(
                "UPDATE connections SET host = 'dav.example.com' WHERE id = {}",
                conn.0
            ),
        )
        .await;
        users.push(user);
    }
    let elsewhere = user(&store, "elsewhere").await;
    store
        .upsert_connection(&google(elsewhere, "other", "r"), now())
        .await
        .unwrap();
    let lease = now() + SignedDuration::from_mins(2);
    let mut claimed = Vec::new();
    while let Some(claim) = store
        .claim_due_connection(now(), lease, limits)
        .await
        .unwrap()
    {
        claimed.push(claim.user_id);
    }
    assert_eq!(claimed, [users[0], users[1], elsewhere]);
}

async fn a_round_on_a_deleted_connection_writes_nothing(kind: BackendKind) {
    let Some(store) = fresh_store(kind).await else {
        return;
    };
    let (alice, cal) = calendar_for(&store, "alice").await;
    let claim = claim_of(&store, alice, cal).await;
    store
        .delete_connection(alice, claim.connection_id)
        .await
        .unwrap();
    let window = horizon();
    let next = PageNext::Done {
        sync_token: "s1".into(),
    };
    let changes = [upsert(timed("a", "2026-03-02T09:00:00Z", 60))];
    let page = PageUpdate {
        claim: &claim,
        lease_until: lease_end(),
        changes: &changes,
        starts_full_round: true,
        next: &next,
        window: &window,
        now: now(),
    };
    assert!(matches!(
        store.apply_page(alice, cal, &page).await,
        Err(StoreError::NotFound | StoreError::LeaseLost)
    ));
    assert!(titles(&store, alice).await.is_empty());
    assert!(!store.renew_lease(&claim, lease_end()).await.unwrap());
}

async fn the_horizon_extends_as_time_passes(kind: BackendKind) {
    let Some(store) = fresh_store(kind).await else {
        return;
    };
    let (alice, cal) = calendar_for(&store, "alice").await;
    let mut weekly = timed("weekly", "2026-01-05T08:00:00Z", 30);
    weekly.recurrence = vec!["RRULE:FREQ=WEEKLY".into()];
    let early = Window::new(
        "2026-01-01T00:00:00Z".parse().unwrap(),
        "2026-02-01T00:00:00Z".parse().unwrap(),
    )
    .unwrap();
    let next = PageNext::Done {
        sync_token: "s1".into(),
    };
    let changes = [upsert(weekly)];
    let claim = claim_of(&store, alice, cal).await;
    let page = PageUpdate {
        claim: &claim,
        lease_until: lease_end(),
        changes: &changes,
        starts_full_round: true,
        next: &next,
        window: &early,
        now: now(),
    };
    store.apply_page(alice, cal, &page).await.unwrap();
    assert_eq!(titles(&store, alice).await.len(), 4, "January only");

    assert!(store
        .extend_horizon(&claim, lease_end(), alice, cal, &horizon())
        .await
        .unwrap());
    assert_eq!(
        titles(&store, alice).await.len(),
        52,
        "the whole year once the horizon moved"
    );
    assert!(
        !store
            .extend_horizon(&claim, lease_end(), alice, cal, &horizon())
            .await
            .unwrap(),
        "nothing to do a second time"
    );
}

async fn ranges_beyond_the_horizon_expand_on_the_fly_like_the_stored_ones(kind: BackendKind) {
    let Some(store) = fresh_store(kind).await else {
        return;
    };
    let (alice, cal) = calendar_for(&store, "alice").await;
    let (bob, _) = calendar_for(&store, "bob").await;
    let mut weekly = timed("weekly", "2026-01-05T08:00:00Z", 30);
    weekly.recurrence = vec!["RRULE:FREQ=WEEKLY".into()];
    let mut moved = timed("weekly_1", "2026-03-10T12:00:00Z", 60);
    moved.title = "Moved instance".into();
    moved.recurring_event_id = Some("weekly".into());
    moved.original_start = Some(EventStart::DateTime {
        instant: "2026-03-09T08:00:00Z".parse().unwrap(),
        zone: None,
    });
    let single = timed("single", "2026-03-11T08:00:00Z", 30);
    let changes = [upsert(weekly), upsert(moved), upsert(single)];
    apply(
        &store,
        alice,
        cal,
        &changes,
        true,
        PageNext::Done {
            sync_token: "s".into(),
        },
    )
    .await;

    let utc = jiff::tz::TimeZone::UTC;
    let stored = store
        .events_in_range(alice, whole_year(), 1000)
        .await
        .unwrap();
    let expanded = store
        .expand_range(alice, whole_year(), 1000, &utc)
        .await
        .unwrap();
    assert_eq!(expanded, stored, "both paths give the same occurrences");

    let far = EventRange {
        start: "2031-03-01T00:00:00Z".parse().unwrap(),
        end: "2031-03-15T00:00:00Z".parse().unwrap(),
    };
    let later = store.expand_range(alice, far, 100, &utc).await.unwrap();
    let starts: Vec<EventTime> = later.iter().map(|o| o.start).collect();
    assert_eq!(
        starts,
        [
            EventTime::Instant("2031-03-03T08:00:00Z".parse().unwrap()),
            EventTime::Instant("2031-03-10T08:00:00Z".parse().unwrap())
        ]
    );
    assert!(store
        .expand_range(bob, far, 100, &utc)
        .await
        .unwrap()
        .is_empty());
}

async fn long_events_under_way_are_found_by_later_ranges(kind: BackendKind) {
    let Some(store) = fresh_store(kind).await else {
        return;
    };
    let (alice, cal) = calendar_for(&store, "alice").await;
    let conference = timed("conf", "2026-03-01T08:00:00Z", 60 * 24 * 10);
    let short = timed("short", "2026-03-08T09:00:00Z", 30);
    apply(
        &store,
        alice,
        cal,
        &[upsert(conference), upsert(short)],
        true,
        PageNext::Done {
            sync_token: "s".into(),
        },
    )
    .await;
    let range = EventRange {
        start: "2026-03-08T00:00:00Z".parse().unwrap(),
        end: "2026-03-09T00:00:00Z".parse().unwrap(),
    };
    let found: Vec<String> = store
        .events_in_range(alice, range, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.title)
        .collect();
    assert_eq!(
        found,
        ["Event conf", "Event short"],
        "an event that began a week earlier is still under way"
    );
}

async fn old_sync_runs_are_trimmed_per_connection(kind: BackendKind) {
    let Some(store) = fresh_store(kind).await else {
        return;
    };
    let alice = user(&store, "alice").await;
    let busy = store
        .upsert_connection(&google(alice, "busy", "r"), now())
        .await
        .unwrap();
    let quiet = store
        .upsert_connection(&google(alice, "quiet", "r"), now())
        .await
        .unwrap();
    for _ in 0..60 {
        store.start_sync_run(busy, now()).await.unwrap();
    }
    for _ in 0..3 {
        store.start_sync_run(quiet, now()).await.unwrap();
    }
    let newest = store.recent_sync_runs(busy, 1).await.unwrap();
    let cleaned = store.clean_up(now(), 50).await.unwrap().unwrap();
    assert_eq!(cleaned.sync_runs, 10);
    assert_eq!(store.recent_sync_runs(busy, 100).await.unwrap().len(), 50);
    assert_eq!(store.recent_sync_runs(quiet, 100).await.unwrap().len(), 3);
    assert_eq!(store.recent_sync_runs(busy, 1).await.unwrap(), newest);
    assert_eq!(
        store.clean_up(now(), 50).await.unwrap().unwrap().sync_runs,
        0
    );
}
