//! The CalDAV client against a real Radicale (spec: shared/specs/caldav.md):
//! discovery, authentication, sync-collection rounds with calendar-multiget,
//! series with overrides, expired tokens, a large calendar, and the address
//! guard. Radicale runs per test on a free loopback port
//! (`support/radicale.rs`); without it the tests skip with a note, or fail
//! under `CI=true`.

#![allow(clippy::unwrap_used)]

#[path = "support/radicale.rs"]
mod radicale;

use std::collections::BTreeMap;

use calsync_core::changes::{ChangePage, EventChange, PageNext, RemoteEvent};
use calsync_providers::caldav::{CaldavClient, CaldavConfig, CaldavLimits, CaldavLogin};
use calsync_providers::http::{HttpConfig, RetryPolicy};
use calsync_providers::{EventsCursor, ProviderError};
use radicale::{calendar, event_block, vevent, Radicale};
use secrecy::SecretString;

const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery";

fn client_with(limits: CaldavLimits, allow_private_addresses: bool) -> CaldavClient {
    CaldavClient::new(CaldavConfig {
        allow_private_addresses,
        http: HttpConfig {
            retry: RetryPolicy::none(),
            ..HttpConfig::default()
        },
        limits,
    })
    .unwrap()
}

fn client() -> CaldavClient {
    client_with(CaldavLimits::default(), true)
}

fn password() -> SecretString {
    SecretString::from(PASSWORD)
}

async fn start() -> Option<(Radicale, CaldavLogin)> {
    let server = Radicale::start(&[(USER, PASSWORD)])?;
    server
        .mkcalendar(USER, "work", "Work", Some("#FF2968FF"), &["VEVENT"])
        .await;
    let login = CaldavLogin {
        server_url: server.base_url(),
        home_url: format!("{}{USER}/", server.base_url()),
        username: USER.to_owned(),
        password: password(),
    };
    Some((server, login))
}

/// The changes of one whole round, by group, and its final token.
struct Round {
    groups: BTreeMap<String, Vec<RemoteEvent>>,
    changes: usize,
    pages: usize,
    token: String,
}

async fn run_round(
    client: &CaldavClient,
    login: &CaldavLogin,
    calendar: &str,
    start: EventsCursor,
) -> Result<Round, ProviderError> {
    let mut cursor = start;
    let mut round = Round {
        groups: BTreeMap::new(),
        changes: 0,
        pages: 0,
        token: String::new(),
    };
    loop {
        let ChangePage { changes, next } =
            client.list_events_page(login, calendar, &cursor).await?;
        round.pages += 1;
        assert!(round.pages < 1000, "a round that never ends");
        for change in changes {
            round.changes += 1;
            match change {
                EventChange::Replace { group, events } => {
                    assert!(
                        round.groups.insert(group.clone(), events).is_none(),
                        "{group} twice in one round"
                    );
                }
                other => panic!("CalDAV sends whole resources only, got {other:?}"),
            }
        }
        match next {
            PageNext::Page(text) => {
                assert!(!text.contains(PASSWORD));
                cursor = EventsCursor::Page(text);
            }
            PageNext::Done { sync_token } => {
                round.token = sync_token;
                return Ok(round);
            }
        }
    }
}

#[tokio::test]
async fn discovery_via_the_direct_url_and_well_known() {
    let Some((server, _)) = start().await else {
        return;
    };
    server
        .mkcalendar(USER, "tasks", "Tasks", None, &["VTODO"])
        .await;
    server
        .mkcalendar(
            USER,
            "mixed",
            "Mixed & more",
            Some("#00AA11"),
            &["VEVENT", "VTODO"],
        )
        .await;
    let client = client();
    let base = server.base_url();
    let home = format!("{base}{USER}/");

    // The server root, the principal itself, and a non-DAV path on the
    // server (found through /.well-known/caldav -> 301 -> /).
    for start in [base.clone(), home.clone(), format!("{base}.web/")] {
        let account = client.discover(&start, USER, &password()).await.unwrap();
        assert_eq!(account.principal_url, home, "{start}");
        assert_eq!(account.home_url, home, "{start}");
        let mut calendars = account.calendars.clone();
        calendars.sort_by(|a, b| a.external_id.cmp(&b.external_id));
        let names: Vec<(&str, &str)> = calendars
            .iter()
            .map(|c| (c.external_id.as_str(), c.name.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                (server.calendar_url(USER, "mixed").as_str(), "Mixed & more"),
                (server.calendar_url(USER, "work").as_str(), "Work"),
            ],
            "VTODO-only calendars are left out ({start})"
        );
        let work = &calendars[1];
        assert_eq!(work.color.as_deref(), Some("#ff2968"), "alpha stripped");
        assert_eq!(work.access_role.as_deref(), Some("owner"));
        assert_eq!(calendars[0].color.as_deref(), Some("#00aa11"));
    }

    // Listing the home again (each sync) gives the same calendars.
    let login = CaldavLogin {
        server_url: base.clone(),
        home_url: home.clone(),
        username: USER.to_owned(),
        password: password(),
    };
    let listed = client.list_calendars(&login).await.unwrap();
    assert_eq!(listed.len(), 2);
}

#[tokio::test]
async fn a_wrong_password_is_unauthorized() {
    let Some((server, mut login)) = start().await else {
        return;
    };
    let client = client();
    let wrong = SecretString::from("not the password");
    let err = client
        .discover(&server.base_url(), USER, &wrong)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Unauthorized), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("not the password"));

    login.password = wrong;
    let err = client
        .list_events_page(
            &login,
            &server.calendar_url(USER, "work"),
            &EventsCursor::Full,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Unauthorized), "{err:?}");
    assert!(!format!("{login:?}").contains("not the password"));
}

#[tokio::test]
async fn initial_sync_then_only_the_changes() {
    let Some((server, login)) = start().await else {
        return;
    };
    let cal = server.calendar_url(USER, "work");
    for (uid, title) in [("e1", "One"), ("e2", "Two"), ("e3", "Three")] {
        server
            .put(
                USER,
                "work",
                &format!("{uid}.ics"),
                &vevent(uid, title, "20260302T090000Z", "20260302T100000Z"),
            )
            .await;
    }
    let client = client();
    let first = run_round(&client, &login, &cal, EventsCursor::Full)
        .await
        .unwrap();
    assert!(first.token.starts_with("dav-sync:"), "{}", first.token);
    let path = |name: &str| server.resource_path(USER, "work", name);
    assert_eq!(
        first.groups.keys().cloned().collect::<Vec<_>>(),
        [path("e1.ics"), path("e2.ics"), path("e3.ics")]
    );
    let e1 = &first.groups[&path("e1.ics")];
    assert_eq!(e1.len(), 1);
    assert_eq!(e1[0].external_id, path("e1.ics"));
    assert_eq!(e1[0].title, "One");

    // Nothing changed: an empty round with a token.
    let idle = run_round(
        &client,
        &login,
        &cal,
        EventsCursor::Sync(first.token.clone()),
    )
    .await
    .unwrap();
    assert_eq!(idle.changes, 0);

    // Change one, delete one, add one.
    server
        .put(
            USER,
            "work",
            "e2.ics",
            &vevent("e2", "Two (moved)", "20260303T090000Z", "20260303T100000Z"),
        )
        .await;
    server.delete(USER, "work", "e3.ics").await;
    server
        .put(
            USER,
            "work",
            "e4 new.ics",
            &vevent("e4", "Four", "20260304T090000Z", "20260304T100000Z"),
        )
        .await;
    let second = run_round(
        &client,
        &login,
        &cal,
        EventsCursor::Sync(first.token.clone()),
    )
    .await
    .unwrap();
    assert_eq!(
        second.groups.keys().cloned().collect::<Vec<_>>(),
        [path("e2.ics"), path("e3.ics"), path("e4%20new.ics")],
        "only the changes"
    );
    assert_eq!(second.groups[&path("e2.ics")][0].title, "Two (moved)");
    assert!(
        second.groups[&path("e3.ics")].is_empty(),
        "a removed resource is an empty group"
    );
    assert_eq!(second.groups[&path("e4%20new.ics")][0].title, "Four");

    // Since the second token: nothing again.
    let third = run_round(&client, &login, &cal, EventsCursor::Sync(second.token))
        .await
        .unwrap();
    assert_eq!(third.changes, 0);

    // A full round after deletions lists only what exists (Radicale's
    // tombstones are ignored in an initial sync).
    let full = run_round(&client, &login, &cal, EventsCursor::Full)
        .await
        .unwrap();
    assert_eq!(
        full.groups.keys().cloned().collect::<Vec<_>>(),
        [path("e1.ics"), path("e2.ics"), path("e4%20new.ics")]
    );
    assert!(full.groups.values().all(|events| !events.is_empty()));
}

#[tokio::test]
async fn a_series_with_overrides_is_one_group() {
    let Some((server, login)) = start().await else {
        return;
    };
    let cal = server.calendar_url(USER, "work");
    let master = event_block(
        "series-1",
        "Daily",
        "20260302T090000Z",
        "20260302T093000Z",
        &["RRULE:FREQ=DAILY;COUNT=5"],
    );
    let moved = event_block(
        "series-1",
        "Daily (moved)",
        "20260303T140000Z",
        "20260303T143000Z",
        &["RECURRENCE-ID:20260303T090000Z"],
    );
    let cancelled = event_block(
        "series-1",
        "Daily",
        "20260304T090000Z",
        "20260304T093000Z",
        &["RECURRENCE-ID:20260304T090000Z", "STATUS:CANCELLED"],
    );
    server
        .put(
            USER,
            "work",
            "series.ics",
            &calendar(&[master.clone(), moved.clone(), cancelled]),
        )
        .await;
    let client = client();
    let first = run_round(&client, &login, &cal, EventsCursor::Full)
        .await
        .unwrap();
    let href = server.resource_path(USER, "work", "series.ics");
    let events = &first.groups[&href];
    assert_eq!(events.len(), 3, "{events:#?}");
    let master_event = events.iter().find(|e| e.external_id == href).unwrap();
    assert_eq!(master_event.recurrence, ["RRULE:FREQ=DAILY;COUNT=5"]);
    for instance in events.iter().filter(|e| e.external_id != href) {
        assert!(
            instance.external_id.starts_with(&format!("{href}#")),
            "{}",
            instance.external_id
        );
        assert_eq!(instance.recurring_event_id.as_deref(), Some(href.as_str()));
        assert!(instance.original_start.is_some());
    }

    // The cancelled override is dropped from the resource: the group comes
    // back with two events, so the store removes the third.
    server
        .put(USER, "work", "series.ics", &calendar(&[master, moved]))
        .await;
    let second = run_round(&client, &login, &cal, EventsCursor::Sync(first.token))
        .await
        .unwrap();
    assert_eq!(second.changes, 1);
    let events = &second.groups[&href];
    assert_eq!(events.len(), 2, "{events:#?}");
    assert!(events.iter().any(|e| e.title == "Daily (moved)"));
}

#[tokio::test]
async fn an_invalid_sync_token_asks_for_a_full_round() {
    let Some((server, login)) = start().await else {
        return;
    };
    let cal = server.calendar_url(USER, "work");
    let client = client();
    let fake = format!("dav-sync:http://radicale.org/ns/sync/{}", "0".repeat(64));
    for token in [
        fake.as_str(),
        "dav-sync:bogus",
        "not a calsync token",
        "dav-etag:%%%",
    ] {
        let err = client
            .list_events_page(&login, &cal, &EventsCursor::Sync(token.to_owned()))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ProviderError::SyncTokenExpired),
            "{token}: {err:?}"
        );
    }
    let err = client
        .list_events_page(&login, &cal, &EventsCursor::Page("garbage".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::SyncTokenExpired), "{err:?}");
}

#[tokio::test]
async fn a_large_calendar_syncs_completely_in_bounded_pages() {
    let Some((server, login)) = start().await else {
        return;
    };
    let cal = server.calendar_url(USER, "work");
    const COUNT: usize = 2000;
    let blocks: Vec<String> = (0..COUNT)
        .map(|i| {
            let day = 1 + i % 28;
            event_block(
                &format!("bulk-{i:05}"),
                &format!("Event {i}"),
                &format!("202604{day:02}T{:02}0000Z", 8 + i % 10),
                &format!("202604{day:02}T{:02}3000Z", 8 + i % 10),
                &[],
            )
        })
        .collect();
    let t = std::time::Instant::now();
    server
        .put_collection(USER, "work", &calendar(&blocks))
        .await;
    eprintln!("seeded in {:?}", t.elapsed());

    // Small windows so that the round re-lists and pages several times.
    let limits = CaldavLimits {
        multiget_batch: 100,
        page_resources: 300,
        carried_hrefs: 700,
        ..CaldavLimits::default()
    };
    let client = client_with(limits, true).with_fresh_count();
    let t = std::time::Instant::now();
    let round = run_round(&client, &login, &cal, EventsCursor::Full)
        .await
        .unwrap();
    eprintln!(
        "synced in {:?}, {} pages, {} requests",
        t.elapsed(),
        round.pages,
        client.requests_sent()
    );
    assert_eq!(round.groups.len(), COUNT);
    let mut titles: Vec<String> = round
        .groups
        .values()
        .flat_map(|events| events.iter().map(|e| e.title.clone()))
        .collect();
    titles.sort();
    titles.dedup();
    assert_eq!(titles.len(), COUNT, "every event once");
    // Windows of 700, 700 and 600 members, pages of at most 300.
    assert_eq!(round.pages, 3 + 3 + 2);
    // 20 multigets + 1 listing + 2 re-listings (windows of 700).
    assert_eq!(client.requests_sent(), 23);

    // An incremental round after that is empty.
    let idle = run_round(&client, &login, &cal, EventsCursor::Sync(round.token))
        .await
        .unwrap();
    assert_eq!(idle.changes, 0);
}

#[tokio::test]
async fn the_ctag_and_etag_fallback_finds_the_same_changes() {
    let Some((server, login)) = start().await else {
        return;
    };
    let cal = server.calendar_url(USER, "work");
    for (uid, title) in [("e1", "One"), ("e2", "Two"), ("e3", "Three")] {
        server
            .put(
                USER,
                "work",
                &format!("{uid}.ics"),
                &vevent(uid, title, "20260302T090000Z", "20260302T100000Z"),
            )
            .await;
    }
    let limits = CaldavLimits {
        sync_collection: false,
        ..CaldavLimits::default()
    };
    let client = client_with(limits, true);
    let path = |name: &str| server.resource_path(USER, "work", name);
    let first = run_round(&client, &login, &cal, EventsCursor::Full)
        .await
        .unwrap();
    assert!(first.token.starts_with("dav-etag:"), "{}", first.token);
    assert_eq!(first.groups.len(), 3);
    assert_eq!(first.groups[&path("e3.ics")][0].title, "Three");

    // Unchanged ctag: one PROPFIND, no listing, no changes.
    let counted = client.with_fresh_count();
    let idle = run_round(
        &counted,
        &login,
        &cal,
        EventsCursor::Sync(first.token.clone()),
    )
    .await
    .unwrap();
    assert_eq!((idle.changes, counted.requests_sent()), (0, 1));

    server
        .put(
            USER,
            "work",
            "e2.ics",
            &vevent("e2", "Two (moved)", "20260303T090000Z", "20260303T100000Z"),
        )
        .await;
    server.delete(USER, "work", "e3.ics").await;
    server
        .put(
            USER,
            "work",
            "e4.ics",
            &vevent("e4", "Four", "20260304T090000Z", "20260304T100000Z"),
        )
        .await;
    let second = run_round(&client, &login, &cal, EventsCursor::Sync(first.token))
        .await
        .unwrap();
    assert_eq!(
        second.groups.keys().cloned().collect::<Vec<_>>(),
        [path("e2.ics"), path("e3.ics"), path("e4.ics")]
    );
    assert_eq!(second.groups[&path("e2.ics")][0].title, "Two (moved)");
    assert!(second.groups[&path("e3.ics")].is_empty());

    // A sync-collection token is refused once sync-collection is off.
    let sc = run_round(
        &client_with(CaldavLimits::default(), true),
        &login,
        &cal,
        EventsCursor::Full,
    )
    .await
    .unwrap();
    let err = client
        .list_events_page(&login, &cal, &EventsCursor::Sync(sc.token))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::SyncTokenExpired), "{err:?}");

    // A calendar too large for a map in the token keeps a hash: a change
    // then asks for a full round (mark-and-sweep in the store).
    let hashed = client_with(
        CaldavLimits {
            sync_collection: false,
            etag_map_entries: 2,
            ..CaldavLimits::default()
        },
        true,
    );
    let full = run_round(&hashed, &login, &cal, EventsCursor::Full)
        .await
        .unwrap();
    assert_eq!(full.groups.len(), 3);
    let idle = run_round(
        &hashed,
        &login,
        &cal,
        EventsCursor::Sync(full.token.clone()),
    )
    .await
    .unwrap();
    assert_eq!(idle.changes, 0);
    server.delete(USER, "work", "e1.ics").await;
    let err = hashed
        .list_events_page(&login, &cal, &EventsCursor::Sync(full.token))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::SyncTokenExpired), "{err:?}");
}

#[tokio::test]
async fn the_restricted_client_refuses_a_server_on_loopback() {
    let Some((server, login)) = start().await else {
        return;
    };
    let cal = server.calendar_url(USER, "work");
    let restricted = client_with(CaldavLimits::default(), false);
    // An IP literal, and a name that resolves to loopback.
    for url in [
        server.base_url(),
        format!("http://localhost:{}/", server.port()),
    ] {
        let err = restricted
            .discover(&url, USER, &password())
            .await
            .unwrap_err();
        assert!(
            matches!(err, ProviderError::ForbiddenAddress { .. }),
            "{url}: {err:?}"
        );
    }
    let err = restricted.list_calendars(&login).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::ForbiddenAddress { .. }),
        "{err:?}"
    );
    let err = restricted
        .list_events_page(&login, &cal, &EventsCursor::Full)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::ForbiddenAddress { .. }),
        "{err:?}"
    );

    // The same server is fine for a client that allows private addresses.
    let account = client()
        .discover(&server.base_url(), USER, &password())
        .await
        .unwrap();
    assert_eq!(account.calendars.len(), 1);
}

#[tokio::test]
async fn awkward_resource_names_keep_one_identity() {
    let Some((server, login)) = start().await else {
        return;
    };
    let cal = server.calendar_url(USER, "work");
    // `@` and `+` as Fastmail-style names, an escaped `@`, a non-ASCII name.
    for (name, uid) in [
        ("me@example.com-1.ics", "at"),
        ("a+b.ics", "plus"),
        ("c%40d.ics", "escaped-at"),
        ("caf%C3%A9.ics", "cafe"),
    ] {
        server
            .put(
                USER,
                "work",
                name,
                &vevent(uid, uid, "20260302T090000Z", "20260302T100000Z"),
            )
            .await;
    }
    let client = client();
    let first = run_round(&client, &login, &cal, EventsCursor::Full)
        .await
        .unwrap();
    let path = |name: &str| server.resource_path(USER, "work", name);
    assert_eq!(
        first.groups.keys().cloned().collect::<Vec<_>>(),
        [
            path("a+b.ics"),
            path("c@d.ics"),
            path("caf%C3%A9.ics"),
            path("me@example.com-1.ics"),
        ]
    );
    assert!(first.groups.values().all(|events| events.len() == 1));

    // Changing them is seen under the same identities.
    server
        .put(
            USER,
            "work",
            "c@d.ics",
            &vevent(
                "escaped-at",
                "changed",
                "20260302T090000Z",
                "20260302T100000Z",
            ),
        )
        .await;
    server.delete(USER, "work", "caf%C3%A9.ics").await;
    let second = run_round(&client, &login, &cal, EventsCursor::Sync(first.token))
        .await
        .unwrap();
    assert_eq!(
        second.groups.keys().cloned().collect::<Vec<_>>(),
        [path("c@d.ics"), path("caf%C3%A9.ics")]
    );
    assert_eq!(second.groups[&path("c@d.ics")][0].title, "changed");
    assert!(second.groups[&path("caf%C3%A9.ics")].is_empty());
}
