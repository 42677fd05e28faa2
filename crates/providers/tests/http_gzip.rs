//! Compressed responses: calsync asks for gzip (a CalDAV multiget or a feed
//! shrinks several times), and the size limit applies to what the body
//! becomes, so a small compressed bomb cannot fill memory.

#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use calsync_core::changes::PageNext;
use calsync_providers::ics::{IcsClient, IcsConfig};
use calsync_providers::{EventsCursor, ProviderError};
use secrecy::SecretString;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Serves `body` gzip-compressed at `/feed.ics`; records Accept-Encoding.
async fn serve_gzipped(body: Vec<u8>) -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let compressed = gzip(&body);
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/feed.ics",
        axum::routing::get(move |headers: HeaderMap| {
            let compressed = compressed.clone();
            let log = log.clone();
            async move {
                let accepted = headers
                    .get(header::ACCEPT_ENCODING)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                log.lock().unwrap().push(accepted);
                (
                    [
                        (header::CONTENT_TYPE, "text/calendar"),
                        (header::CONTENT_ENCODING, "gzip"),
                    ],
                    compressed,
                )
                    .into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/feed.ics"), seen)
}

fn client(max_bytes: usize) -> IcsClient {
    IcsClient::new(IcsConfig {
        allow_private_addresses: true,
        max_bytes,
        timeout: Duration::from_secs(5),
        ..IcsConfig::default()
    })
    .unwrap()
}

#[tokio::test]
async fn gzip_is_asked_for_and_read() {
    let events: String = (0..200)
        .map(|i| {
            format!(
                "BEGIN:VEVENT\r\nUID:e{i}@test\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260305T100000Z\r\n\
                 DTEND:20260305T110000Z\r\nSUMMARY:Event {i}\r\nEND:VEVENT\r\n"
            )
        })
        .collect();
    let feed =
        format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n{events}END:VCALENDAR\r\n");
    let (url, seen) = serve_gzipped(feed.into_bytes()).await;
    let page = client(16 * 1024 * 1024)
        .fetch_page(&SecretString::from(url), &EventsCursor::Full)
        .await
        .unwrap();
    assert_eq!(page.changes.len(), 200);
    assert!(matches!(page.next, PageNext::Done { .. }));
    assert!(seen.lock().unwrap()[0].contains("gzip"), "{seen:?}");
}

#[tokio::test]
async fn the_size_limit_counts_the_decompressed_body() {
    // 8 MiB of one repeated line compresses to a few KiB.
    let bomb = "X-FILLER:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
        .repeat(8 * 1024 * 1024 / 80);
    let (url, _) = serve_gzipped(bomb.into_bytes()).await;
    let err = client(1024 * 1024)
        .fetch_page(&SecretString::from(url), &EventsCursor::Full)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::TooLarge { .. }), "{err:?}");
}
