//! The CalDAV client against scripted answers, for what Radicale never does:
//! truncated sync reports (507), servers without sync-collection, other
//! servers' token errors, redirects and homes on other sites.

#![allow(clippy::unwrap_used)]

mod support;

use calsync_core::changes::{EventChange, PageNext};
use calsync_providers::caldav::{CaldavClient, CaldavConfig, CaldavLimits, CaldavLogin};
use calsync_providers::http::{HttpConfig, RetryPolicy};
use calsync_providers::{EventsCursor, ProviderError};
use secrecy::SecretString;
use support::{Scripted, TestServer};

fn xml(status: u16, body: &str) -> Scripted {
    Scripted {
        status,
        headers: vec![("content-type", "application/xml; charset=utf-8".into())],
        body: body.to_owned(),
        delay: std::time::Duration::ZERO,
    }
}

fn client() -> CaldavClient {
    CaldavClient::new(CaldavConfig {
        allow_private_addresses: true,
        http: HttpConfig {
            retry: RetryPolicy::none(),
            ..HttpConfig::default()
        },
        limits: CaldavLimits::default(),
    })
    .unwrap()
}

fn login(server: &TestServer) -> CaldavLogin {
    CaldavLogin {
        server_url: server.url("/"),
        home_url: server.url("/u/"),
        username: "u".into(),
        password: SecretString::from("app-specific-password"),
    }
}

fn ics(uid: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nDTSTART:20260302T090000Z\r\nDTEND:20260302T100000Z\r\nSUMMARY:{uid}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn multiget(items: &[&str]) -> String {
    let mut body = String::from(
        r#"<?xml version="1.0"?><D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">"#,
    );
    for item in items {
        body.push_str(&format!(
            r#"<D:response><D:href>/u/cal/{item}.ics</D:href><D:propstat><D:prop><D:getetag>"{item}"</D:getetag><C:calendar-data>{}</C:calendar-data></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"#,
            ics(item)
        ));
    }
    body.push_str("</D:multistatus>");
    body
}

fn groups(changes: &[EventChange]) -> Vec<String> {
    changes
        .iter()
        .map(|c| match c {
            EventChange::Replace { group, events } => format!("{group}:{}", events.len()),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn a_truncated_sync_report_is_continued_from_its_token() {
    let server = TestServer::start().await;
    let cal = server.url("/u/cal/");
    // First chunk: two members, the collection marked 507, a partial token.
    server.push(xml(
        207,
        r#"<multistatus xmlns="DAV:"><response><href>/u/cal/a.ics</href><propstat><prop><getetag>"a"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response><response><href>http://ignored.example/u/cal/b.ics</href><propstat><prop><getetag>"b"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response><response><href>/u/cal/</href><status>HTTP/1.1 507 Insufficient Storage</status></response><sync-token>partial-1</sync-token></multistatus>"#,
    ));
    server.push(xml(207, &multiget(&["a", "b"])));
    let page = client()
        .list_events_page(&login(&server), &cal, &EventsCursor::Full)
        .await
        .unwrap();
    assert_eq!(groups(&page.changes), ["/u/cal/a.ics:1", "/u/cal/b.ics:1"]);
    let PageNext::Page(next) = page.next else {
        panic!("a truncated listing goes on")
    };

    // Second chunk, asked with the partial token: one member and a removal.
    server.push(xml(
        207,
        r#"<multistatus xmlns="DAV:"><response><href>/u/cal/c.ics</href><propstat><prop><getetag>"c"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response><response><href>/u/cal/gone.ics</href><status>HTTP/1.1 404 Not Found</status></response><sync-token>final-2</sync-token></multistatus>"#,
    ));
    server.push(xml(207, &multiget(&["c"])));
    let page = client()
        .list_events_page(&login(&server), &cal, &EventsCursor::Page(next))
        .await
        .unwrap();
    // A full round ignores removals (the store sweeps).
    assert_eq!(groups(&page.changes), ["/u/cal/c.ics:1"]);
    assert_eq!(
        page.next,
        PageNext::Done {
            sync_token: "dav-sync:final-2".into()
        }
    );

    let log = server.log();
    let methods: Vec<&str> = log.iter().map(|l| l.method.as_str()).collect();
    assert_eq!(methods, ["REPORT", "REPORT", "REPORT", "REPORT"]);
    assert!(log[0].body.contains("<D:sync-token></D:sync-token>"));
    assert!(log[2]
        .body
        .contains("<D:sync-token>partial-1</D:sync-token>"));
    assert!(!log[0].body.contains("limit"));
    assert!(log[1]
        .body
        .contains("<D:href>/u/cal/a.ics</D:href><D:href>/u/cal/b.ics</D:href>"));
    assert!(log.iter().all(|l| l
        .authorization
        .as_deref()
        .is_some_and(|a| a.starts_with("Basic "))));
}

#[tokio::test]
async fn servers_without_sync_collection_get_the_etag_fallback() {
    let server = TestServer::start().await;
    let cal = server.url("/u/cal/");
    server.push(xml(405, ""));
    server.push(xml(
        207,
        r#"<multistatus xmlns="DAV:"><response><href>/u/cal/</href><propstat><prop><supported-report-set><supported-report><report><C:calendar-multiget xmlns:C="urn:ietf:params:xml:ns:caldav"/></report></supported-report></supported-report-set></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"#,
    ));
    // The fallback: ctag, then the etags, then the data.
    server.push(xml(
        207,
        r#"<multistatus xmlns="DAV:" xmlns:CS="http://calendarserver.org/ns/"><response><href>/u/cal/</href><propstat><prop><CS:getctag>7</CS:getctag></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"#,
    ));
    server.push(xml(
        207,
        r#"<multistatus xmlns="DAV:"><response><href>/u/cal/</href><propstat><prop><resourcetype><collection/></resourcetype></prop><status>HTTP/1.1 200 OK</status></propstat></response><response><href>/u/cal/a.ics</href><propstat><prop><resourcetype/><getetag>"a"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"#,
    ));
    server.push(xml(207, &multiget(&["a"])));
    let page = client()
        .list_events_page(&login(&server), &cal, &EventsCursor::Full)
        .await
        .unwrap();
    assert_eq!(groups(&page.changes), ["/u/cal/a.ics:1"]);
    let PageNext::Done { sync_token } = page.next else {
        panic!("one page")
    };
    assert!(sync_token.starts_with("dav-etag:"), "{sync_token}");
    let depths: Vec<(String, String)> = server
        .log()
        .iter()
        .map(|l| (l.method.clone(), l.path.clone()))
        .collect();
    assert_eq!(depths.len(), 5);
    assert_eq!(depths[3].0, "PROPFIND");
}

#[tokio::test]
async fn token_errors_of_other_servers_mean_a_full_round() {
    for (status, body) in [
        (412, ""),
        (409, ""),
        (
            400,
            r#"<D:error xmlns:D="DAV:"><D:valid-sync-token/></D:error>"#,
        ),
    ] {
        let server = TestServer::start().await;
        server.push(xml(status, body));
        let err = client()
            .list_events_page(
                &login(&server),
                &server.url("/u/cal/"),
                &EventsCursor::Sync("dav-sync:http://sabre.io/ns/sync/3".into()),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, ProviderError::SyncTokenExpired),
            "{status}: {err:?}"
        );
    }
    // A 403 on an initial sync of a server that has sync-collection is an
    // error, not a reason to fall back.
    let server = TestServer::start().await;
    server.push(xml(403, ""));
    server.push(xml(
        207,
        r#"<multistatus xmlns="DAV:"><response><href>/u/cal/</href><propstat><prop><supported-report-set><supported-report><report><sync-collection/></report></supported-report></supported-report-set></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"#,
    ));
    let err = client()
        .list_events_page(&login(&server), &server.url("/u/cal/"), &EventsCursor::Full)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::Provider { status: 403, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn redirects_keep_the_method_and_stay_on_the_site() {
    let server = TestServer::start().await;
    // The URL as given is not DAV; /.well-known/caldav redirects (relative),
    // the method stays PROPFIND.
    server.push(xml(404, "not here"));
    server.push(xml(301, "").header("location", "/dav/"));
    server.push(xml(
        207,
        r#"<multistatus xmlns="DAV:"><response><href>/dav/</href><propstat><prop><current-user-principal><href>/dav/principals/u/</href></current-user-principal></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"#,
    ));
    server.push(xml(
        207,
        r#"<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><response><href>/dav/principals/u/</href><propstat><prop><C:calendar-home-set><href>/dav/cal/u</href></C:calendar-home-set></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"#,
    ));
    server.push(xml(
        207,
        r#"<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><response><href>/dav/cal/u/</href><propstat><prop><resourcetype><collection/></resourcetype></prop><status>HTTP/1.1 200 OK</status></propstat></response><response><href>/dav/cal/u/home/</href><propstat><prop><resourcetype><collection/><C:calendar/></resourcetype></prop><status>HTTP/1.1 200 OK</status></propstat></response><response><href>/dav/cal/u/inbox/</href><propstat><prop><resourcetype><collection/><C:schedule-inbox/></resourcetype></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"#,
    ));
    let account = client()
        .discover(
            &server.url("/start"),
            "u",
            &SecretString::from("app-specific-password"),
        )
        .await
        .unwrap();
    assert_eq!(account.principal_url, server.url("/dav/principals/u/"));
    assert_eq!(
        account.home_url,
        server.url("/dav/cal/u/"),
        "trailing slash added"
    );
    assert_eq!(account.calendars.len(), 1);
    assert_eq!(
        account.calendars[0].external_id,
        server.url("/dav/cal/u/home/")
    );
    assert_eq!(account.calendars[0].name, "home");
    let log = server.log();
    let trail: Vec<(&str, &str)> = log
        .iter()
        .map(|l| (l.method.as_str(), l.path.as_str()))
        .collect();
    assert_eq!(
        trail,
        [
            ("PROPFIND", "/start"),
            ("PROPFIND", "/.well-known/caldav"),
            ("PROPFIND", "/dav/"),
            ("PROPFIND", "/dav/principals/u/"),
            ("PROPFIND", "/dav/cal/u/"),
        ]
    );

    // A redirect to another site is not followed with the password.
    let server = TestServer::start().await;
    server.push(xml(301, "").header("location", "https://caldav.elsewhere.example/"));
    let err = client()
        .discover(
            &server.url("/"),
            "u",
            &SecretString::from("app-specific-password"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Provider { reason, .. } if reason == "cross_site_redirect"),
        "{err:?}"
    );
    assert_eq!(server.log().len(), 1);

    // Nor is a calendar home on another site.
    let server = TestServer::start().await;
    server.push(xml(
        207,
        r#"<multistatus xmlns="DAV:"><response><href>/</href><propstat><prop><current-user-principal><href>/p/</href></current-user-principal></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"#,
    ));
    server.push(xml(
        207,
        r#"<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><response><href>/p/</href><propstat><prop><C:calendar-home-set><href>https://p01-caldav.elsewhere.example/1/calendars/</href></C:calendar-home-set></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"#,
    ));
    let err = client()
        .discover(
            &server.url("/"),
            "u",
            &SecretString::from("app-specific-password"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Provider { reason, .. } if reason == "untrusted_calendar_home"),
        "{err:?}"
    );
    assert!(!err.to_string().contains("app-specific-password"));
    assert_eq!(server.log().len(), 2);
}
