//! Graph `calendarView/delta` over real HTTP: an initial round across pages
//! (Prefer: odata.maxpagesize), then changes only with `@removed` for
//! deletions and cancelled occurrences, the real service's page quirks,
//! token reuse, 410 and its variants, throttling, and outlook.timezone.
#![allow(clippy::unwrap_used)]

mod ms_common;

use std::collections::{BTreeMap, BTreeSet};

use calsync_emulator::{EmulatorHandle, ExpiryMode, Fault, MsGenerate};
use jiff::{Timestamp, ToSpan};
use ms_common::*;
use serde_json::{json, Value};

const DANA: &str = "dana@fabrikam.example";

struct Round {
    pages: Vec<Vec<Value>>,
    delta_link: String,
}

impl Round {
    fn items(&self) -> Vec<&Value> {
        self.pages.iter().flatten().collect()
    }
    fn upserts(&self) -> BTreeMap<String, Value> {
        self.items()
            .into_iter()
            .filter(|i| i.get("@removed").is_none())
            .map(|i| (i["id"].as_str().unwrap().to_owned(), i.clone()))
            .collect()
    }
    fn removed(&self) -> BTreeSet<String> {
        self.items()
            .into_iter()
            .filter(|i| i["@removed"]["reason"] == "deleted")
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

async fn round(emu: &EmulatorHandle, token: &str, url: &str, prefer: &[&str]) -> Round {
    let mut pages = Vec::new();
    let mut next = url.to_owned();
    loop {
        let r = get(emu, token, &next, prefer).await;
        assert_eq!(r.status, 200, "{}", r.body);
        pages.push(r.body["value"].as_array().unwrap().clone());
        if let Some(n) = r.body["@odata.nextLink"].as_str() {
            assert!(n.contains("$skiptoken="), "{n}");
            assert!(r.body.get("@odata.deltaLink").is_none());
            next = n.to_owned();
            continue;
        }
        let d = r.body["@odata.deltaLink"].as_str().unwrap();
        assert!(d.contains("$deltatoken="), "{d}");
        return Round {
            pages,
            delta_link: d.to_owned(),
        };
    }
}

/// An account with `n` hourly events from tomorrow plus a daily series of 5.
async fn setup(quirks: bool, n: usize) -> (EmulatorHandle, String, String, Timestamp) {
    let emu = start(false).await;
    emu.ms_add_account(DANA, Some("Dana Fabrikam"), None);
    emu.ms_update_settings(|s| {
        s.delta_empty_page = quirks;
        s.delta_repeat_item = quirks;
    });
    let now = Timestamp::now();
    let base =
        Timestamp::from_second(now.as_second() - now.as_second().rem_euclid(86_400) + 86_400)
            .unwrap();
    emu.ms_generate_events(
        DANA,
        "default",
        &MsGenerate {
            count: n,
            start: Some(base.to_string()),
            every_minutes: 60,
            duration_minutes: 30,
            subject_prefix: "Gen".into(),
            time_zone: Some("W. Europe Standard Time".into()),
        },
    )
    .unwrap();
    emu.ms_insert_event(
        DANA,
        "default",
        json!({
            "id": "AAMkAGDanaDaily=",
            "subject": "Daily",
            "start": {"dateTime": "2020-01-01T08:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2020-01-01T08:15:00", "timeZone": "UTC"},
            "recurrence": {"pattern": {"type": "daily", "interval": 1},
                           "range": {"type": "noEnd", "startDate": "2020-01-01"}},
        }),
    )
    .unwrap();
    let token = access_token(&emu, DANA).await;
    let s = base.checked_sub(24.hours()).unwrap();
    let e = base.checked_add((24 * 5).hours()).unwrap();
    let url = format!(
        "/me/calendarView/delta?startDateTime={}&endDateTime={}",
        s.strftime("%Y-%m-%dT%H:%M:%SZ"),
        e.strftime("%Y-%m-%dT%H:%M:%SZ")
    );
    (emu, token, url, base)
}

#[tokio::test]
async fn initial_round_then_changes_only() {
    let (emu, token, url, base) = setup(false, 12).await;
    let first = round(&emu, &token, &url, &["odata.maxpagesize=5"]).await;
    // 12 generated + 6 daily occurrences (the day before base .. base+4 at 08:00).
    assert_eq!(first.items().len(), 18);
    assert_eq!(first.pages.len(), 4);
    assert!(first.pages.iter().all(|p| p.len() <= 5));
    let seen = first.upserts();
    assert_eq!(seen.len(), 18, "no duplicates with quirks off");
    assert!(seen.values().all(|i| i["type"] != "seriesMaster"));
    let occurrences: Vec<&Value> = seen
        .values()
        .filter(|i| i["type"] == "occurrence")
        .collect();
    assert_eq!(occurrences.len(), 6);
    assert!(occurrences
        .iter()
        .all(|i| i["seriesMasterId"] == "AAMkAGDanaDaily="));

    // Nothing changed: an empty round with a fresh deltaLink.
    let quiet = round(&emu, &token, &first.delta_link, &[]).await;
    assert!(quiet.items().is_empty());
    assert_ne!(quiet.delta_link, first.delta_link);

    // One edit, one deletion, one new event, one cancelled occurrence, one moved occurrence.
    let generated: Vec<&Value> = seen
        .values()
        .filter(|i| i["type"] == "singleInstance")
        .collect();
    let edited = generated[0]["id"].as_str().unwrap().to_owned();
    let deleted = generated[1]["id"].as_str().unwrap().to_owned();
    emu.ms_patch_event(DANA, "default", &edited, json!({"subject": "Edited"}))
        .unwrap();
    emu.ms_delete_event(DANA, "default", &deleted).unwrap();
    let added = emu
        .ms_insert_event(
            DANA,
            "default",
            json!({"subject": "New", "start": {"dateTime": format!("{}", base.strftime("%Y-%m-%dT12:10:00")), "timeZone": "UTC"},
                   "end": {"dateTime": format!("{}", base.strftime("%Y-%m-%dT12:40:00")), "timeZone": "UTC"}}),
        )
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cancelled_occ = occurrences[1]["id"].as_str().unwrap().to_owned();
    let moved_occ = occurrences[2]["id"].as_str().unwrap().to_owned();
    emu.ms_delete_event(DANA, "default", &cancelled_occ)
        .unwrap();
    emu.ms_patch_event(
        DANA,
        "default",
        &moved_occ,
        json!({"subject": "Daily (late)"}),
    )
    .unwrap();

    let second = round(&emu, &token, &quiet.delta_link, &["odata.maxpagesize=2"]).await;
    let ups = second.upserts();
    assert_eq!(
        ups.keys().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from([edited.clone(), added.clone(), moved_occ.clone()])
    );
    assert_eq!(ups[&edited]["subject"], "Edited");
    assert_eq!(ups[&moved_occ]["type"], "exception");
    assert_eq!(
        second.removed(),
        BTreeSet::from([deleted.clone(), cancelled_occ.clone()])
    );
    let removed_item = second
        .items()
        .into_iter()
        .find(|i| i["id"] == deleted.as_str())
        .unwrap();
    assert_eq!(removed_item["@odata.type"], "#microsoft.graph.event");
    assert_eq!(
        removed_item.as_object().unwrap().len(),
        3,
        "only @odata.type, id and @removed"
    );

    // Reusing an older deltaLink diffs against its own baseline again.
    let again = round(&emu, &token, &quiet.delta_link, &[]).await;
    assert_eq!(again.upserts().len(), 3);
    emu.shutdown().await;
}

#[tokio::test]
async fn quirks_give_an_empty_page_and_repeated_items() {
    let (emu, token, url, _) = setup(true, 12).await;
    let r = round(&emu, &token, &url, &["odata.maxpagesize=5"]).await;
    assert!(r.pages.len() >= 3);
    assert!(
        r.pages[1].is_empty(),
        "the second page is empty but has a nextLink"
    );
    assert_eq!(
        r.pages[2][0],
        *r.pages[0].last().unwrap(),
        "the last item comes again"
    );
    assert_eq!(r.upserts().len(), 18);
    assert!(r.items().len() > 18);
    emu.shutdown().await;
}

#[tokio::test]
async fn skip_tokens_can_be_retried() {
    let (emu, token, url, _) = setup(false, 12).await;
    let first = get(&emu, &token, &url, &["odata.maxpagesize=4"]).await;
    let next = first.body["@odata.nextLink"].as_str().unwrap().to_owned();
    let a = get(&emu, &token, &next, &[]).await;
    let b = get(&emu, &token, &next, &[]).await;
    assert_eq!(a.body["value"], b.body["value"]);
    assert!(a.headers["preference-applied"]
        .to_str()
        .unwrap()
        .contains("odata.track-changes"));
    emu.shutdown().await;
}

#[tokio::test]
async fn expired_tokens_answer_410_and_variants() {
    let (emu, token, url, _) = setup(false, 3).await;
    let r = round(&emu, &token, &url, &[]).await;
    emu.ms_expire_delta_tokens(DANA, "default", ExpiryMode::SyncStateNotFound)
        .unwrap();
    let gone = get(&emu, &token, &r.delta_link, &[]).await;
    assert_eq!(gone.status, 410);
    assert_eq!(gone.body["error"]["code"], "SyncStateNotFound");

    // A fresh round works, then the resync variant points at a new initial URL.
    let r = round(&emu, &token, &url, &[]).await;
    emu.ms_expire_delta_tokens(DANA, "default", ExpiryMode::ResyncRequired)
        .unwrap();
    let gone = get(&emu, &token, &r.delta_link, &[]).await;
    assert_eq!(gone.status, 410);
    assert_eq!(gone.body["error"]["code"], "resyncRequired");
    let location = gone.headers["location"].to_str().unwrap().to_owned();
    assert!(location.contains("startDateTime="));
    let fresh = round(&emu, &token, &location, &[]).await;
    assert_eq!(fresh.upserts().len(), 3 + 6);

    emu.ms_expire_delta_tokens(DANA, "default", ExpiryMode::SyncStateInvalid)
        .unwrap();
    let bad = get(&emu, &token, &fresh.delta_link, &[]).await;
    assert_eq!(bad.status, 400);
    assert!(bad.body["error"]["code"]
        .as_str()
        .unwrap()
        .contains("SyncState"));

    // Unknown tokens and LRU eviction look the same: 410.
    let unknown = get(&emu, &token, "/me/calendarView/delta?$deltatoken=nope", &[]).await;
    assert_eq!(unknown.status, 410);
    emu.ms_update_settings(|s| s.max_delta_tokens_per_calendar = 2);
    let oldest = round(&emu, &token, &url, &[]).await;
    round(&emu, &token, &url, &[]).await;
    round(&emu, &token, &url, &[]).await;
    assert_eq!(get(&emu, &token, &oldest.delta_link, &[]).await.status, 410);
    emu.shutdown().await;
}

#[tokio::test]
async fn delta_rejects_what_the_service_rejects() {
    let (emu, token, url, _) = setup(false, 2).await;
    let sel = get(&emu, &token, &format!("{url}&$select=subject"), &[]).await;
    assert_eq!(sel.status, 400);
    let no_window = get(&emu, &token, "/me/calendarView/delta", &[]).await;
    assert_eq!(no_window.status, 400);
    assert_eq!(no_window.body["error"]["code"], "ErrorInvalidParameter");
    let r = round(&emu, &token, &url, &[]).await;
    let moved = get(
        &emu,
        &token,
        &format!(
            "{}&startDateTime=2020-01-01T00:00:00Z&endDateTime=2020-02-01T00:00:00Z",
            r.delta_link
        ),
        &[],
    )
    .await;
    assert_eq!(moved.status, 400, "the window is fixed per token");
    emu.shutdown().await;
}

#[tokio::test]
async fn throttling_and_401_on_delta() {
    let (emu, token, url, _) = setup(false, 2).await;
    emu.inject_fault(Fault {
        path_prefix: "/v1.0/me/calendarView/delta".into(),
        status: Some(429),
        retry_after: Some(2),
        count: 2,
        ..Default::default()
    })
    .unwrap();
    for _ in 0..2 {
        let r = get(&emu, &token, &url, &[]).await;
        assert_eq!(r.status, 429);
        assert_eq!(r.headers["retry-after"], "2");
        assert_eq!(r.body["error"]["code"], "TooManyRequests");
    }
    assert_eq!(get(&emu, &token, &url, &[]).await.status, 200);
    emu.ms_expire_access_tokens(None).unwrap();
    let r = get(&emu, &token, &url, &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"]["code"], "InvalidAuthenticationToken");
    emu.shutdown().await;
}

#[tokio::test]
async fn delta_honours_outlook_timezone() {
    let (emu, token, url, _) = setup(false, 1).await;
    let utc = round(&emu, &token, &url, &[]).await;
    let tokyo = round(
        &emu,
        &token,
        &url,
        &[
            "odata.maxpagesize=50",
            "outlook.timezone=\"Tokyo Standard Time\"",
        ],
    )
    .await;
    let pick = |r: &Round| {
        r.upserts()
            .into_values()
            .find(|i| i["type"] == "singleInstance")
            .unwrap()
    };
    let (a, b) = (pick(&utc), pick(&tokyo));
    assert_eq!(a["start"]["timeZone"], "UTC");
    assert_eq!(b["start"]["timeZone"], "Tokyo Standard Time");
    assert_eq!(a["originalStartTimeZone"], "W. Europe Standard Time");
    let hour = |v: &Value| {
        v["start"]["dateTime"].as_str().unwrap()[11..13]
            .parse::<i32>()
            .unwrap()
    };
    assert_eq!((hour(&a) + 9) % 24, hour(&b));
    emu.shutdown().await;
}

#[tokio::test]
async fn out_of_window_changes_and_replication_delay() {
    let (emu, token, url, _) = setup(false, 2).await;
    let r = round(&emu, &token, &url, &[]).await;
    // A change far outside the window arrives as an @removed of an unknown id.
    let far = emu
        .ms_insert_event(
            DANA,
            "default",
            json!({"subject": "Far away", "start": {"dateTime": "2031-01-01T10:00:00", "timeZone": "UTC"},
                   "end": {"dateTime": "2031-01-01T11:00:00", "timeZone": "UTC"}}),
        )
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let next = round(&emu, &token, &r.delta_link, &[]).await;
    assert_eq!(next.removed(), BTreeSet::from([far]));
    assert!(next.upserts().is_empty());

    emu.ms_update_settings(|s| s.delta_replication_delay = true);
    let ev = emu
        .ms_insert_event(
            DANA,
            "default",
            json!({"subject": "Late", "start": {"dateTime": url_day(&url, "T13:00:00"), "timeZone": "UTC"},
                   "end": {"dateTime": url_day(&url, "T14:00:00"), "timeZone": "UTC"}}),
        )
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let delayed = round(&emu, &token, &next.delta_link, &[]).await;
    assert!(delayed.items().is_empty(), "not replicated yet");
    let later = round(&emu, &token, &delayed.delta_link, &[]).await;
    assert!(later.upserts().contains_key(&ev));
    emu.shutdown().await;
}

/// The window start's date (from the test URL) plus a time.
fn url_day(url: &str, time: &str) -> String {
    let s = url.split("startDateTime=").nth(1).unwrap();
    let day: jiff::civil::Date = s[..10].parse().unwrap();
    format!("{}{time}", day.checked_add(2.days()).unwrap())
}
