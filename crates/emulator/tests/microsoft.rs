//! Microsoft identity platform + Graph over real HTTP: OAuth (PKCE, code
//! reuse, refresh rotation, dead refresh tokens, client auth), /me,
//! calendars, calendarView with recurrence and time zones, faults and the
//! request log.
#![allow(clippy::unwrap_used)]

mod ms_common;

use calsync_emulator::samples::{
    MORGAN, MORGAN_CALENDAR, MORGAN_CANCELLED, MORGAN_HOLIDAY, MORGAN_SEATTLE_CALL, MORGAN_SUMMIT,
    MORGAN_TEAM, MORGAN_WEEKLY, RILEY,
};
use calsync_emulator::{DeadReason, Fault};
use jiff::{Timestamp, ToSpan};
use ms_common::*;
use serde_json::Value;

fn aad_code(body: &Value) -> u64 {
    body["error_codes"][0].as_u64().unwrap()
}

fn assert_aad_shape(body: &Value, error: &str, code: u64) {
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(aad_code(body), code, "{body}");
    let desc = body["error_description"].as_str().unwrap();
    assert!(desc.starts_with(&format!("AADSTS{code}: ")), "{desc}");
    for k in ["timestamp", "trace_id", "correlation_id"] {
        assert!(
            body[k].as_str().is_some_and(|s| !s.is_empty()),
            "{k} in {body}"
        );
    }
}

#[tokio::test]
async fn oauth_code_flow_issues_tokens_once() {
    let emu = start(true).await;
    let resp = authorize(&emu, &[("login_hint", MORGAN)]).await;
    assert_eq!(resp.status().as_u16(), 302);
    let p = location_params(&resp);
    assert!(resp.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with(REDIRECT));
    assert_eq!(param(&p, "state"), Some("st-ms-1"));
    let code = param(&p, "code").unwrap().to_owned();

    let (status, body) = redeem(&emu, &code).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    let scope = body["scope"].as_str().unwrap();
    assert!(scope.contains("Calendars.Read") && scope.contains("User.Read"));
    assert!(
        !scope.contains("offline_access"),
        "offline_access is never echoed"
    );
    assert!(body["refresh_token"].as_str().is_some());
    assert_eq!(body["id_token"].as_str().unwrap().split('.').count(), 3);

    let (status, body) = redeem(&emu, &code).await;
    assert_eq!(status, 400);
    assert_aad_shape(&body, "invalid_grant", 54005);
    emu.shutdown().await;
}

#[tokio::test]
async fn no_refresh_token_without_offline_access() {
    let emu = start(true).await;
    let resp = authorize(&emu, &[("scope", "User.Read Calendars.Read")]).await;
    let code = param(&location_params(&resp), "code").unwrap().to_owned();
    let (status, body) = redeem(&emu, &code).await;
    assert_eq!(status, 200);
    assert!(body.get("refresh_token").is_none());
    assert!(body.get("id_token").is_none());
    emu.shutdown().await;
}

#[tokio::test]
async fn pkce_is_required_and_checked() {
    let emu = start(true).await;
    // No challenge: an error redirect, with the state echoed.
    let resp = authorize(
        &emu,
        &[("code_challenge", ""), ("code_challenge_method", "")],
    )
    .await;
    assert_eq!(resp.status().as_u16(), 302);
    let p = location_params(&resp);
    assert_eq!(param(&p, "error"), Some("invalid_request"));
    assert_eq!(param(&p, "state"), Some("st-ms-1"));
    assert!(param(&p, "error_description")
        .unwrap()
        .starts_with("AADSTS"));

    // Wrong verifier.
    let code = code_for(&emu, MORGAN).await;
    let (status, body) = token(
        &emu,
        &[
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            (
                "code_verifier",
                "not-the-verifier-not-the-verifier-not-the-verifier",
            ),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_aad_shape(&body, "invalid_grant", 501481);
    emu.shutdown().await;
}

#[tokio::test]
async fn authorize_refuses_bad_redirects_and_reports_denial() {
    let emu = start(true).await;
    let resp = authorize(
        &emu,
        &[("redirect_uri", "http://localhost:8000/elsewhere/")],
    )
    .await;
    assert_eq!(resp.status().as_u16(), 400);
    assert!(resp.headers().get("location").is_none());
    assert!(resp.text().await.unwrap().contains("AADSTS50011"));

    emu.update_settings(|s| s.deny_next_consent = true);
    let resp = authorize(&emu, &[]).await;
    let p = location_params(&resp);
    assert_eq!(param(&p, "error"), Some("access_denied"));
    assert_eq!(param(&p, "state"), Some("st-ms-1"));

    // The consent page (no auto-approve) posts back to the authorize URL.
    emu.update_settings(|s| s.auto_approve = false);
    let resp = authorize(&emu, &[]).await;
    assert_eq!(resp.status().as_u16(), 200);
    let html = resp.text().await.unwrap();
    let request = html
        .split("name=\"request\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let resp = http()
        .post(emu.microsoft().auth_url)
        .form(&[
            ("request", request),
            ("decision", "allow"),
            ("account", RILEY),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 302);
    let code = param(&location_params(&resp), "code").unwrap().to_owned();
    let (_, body) = redeem(&emu, &code).await;
    let me = get(&emu, body["access_token"].as_str().unwrap(), "/me", &[]).await;
    assert_eq!(me.body["userPrincipalName"], RILEY);
    emu.shutdown().await;
}

#[tokio::test]
async fn client_authentication_is_checked() {
    let emu = start(true).await;
    let code = code_for(&emu, MORGAN).await;
    let (status, body) = token(
        &emu,
        &[
            ("client_id", CLIENT_ID),
            ("client_secret", "wrong"),
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 401);
    assert_aad_shape(&body, "invalid_client", 7000215);
    // The code survived the failed attempt.
    let (status, _) = redeem(&emu, &code).await;
    assert_eq!(status, 200);
    emu.shutdown().await;
}

#[tokio::test]
async fn refresh_rotates_and_the_old_token_dies() {
    let emu = start(true).await;
    let first = login(&emu, MORGAN).await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();

    let (status, second) = refresh(&emu, &rt1).await;
    assert_eq!(status, 200, "{second}");
    let rt2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    assert_ne!(first["access_token"], second["access_token"]);

    let (status, body) = refresh(&emu, &rt1).await;
    assert_eq!(status, 400);
    assert_aad_shape(&body, "invalid_grant", 70000);

    let (status, third) = refresh(&emu, &rt2).await;
    assert_eq!(status, 200);

    // The documented behaviour (old token keeps working) is a switch away.
    emu.ms_update_settings(|s| s.revoke_used_refresh_tokens = false);
    let rt3 = third["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(refresh(&emu, &rt3).await.0, 200);
    assert_eq!(refresh(&emu, &rt3).await.0, 200);
    emu.shutdown().await;
}

#[tokio::test]
async fn dead_refresh_tokens_answer_with_their_aadsts_code() {
    let emu = start(true).await;
    let rt = login(&emu, MORGAN).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    emu.ms_expire_refresh_tokens(Some(MORGAN), DeadReason::Inactive)
        .unwrap();
    let (status, body) = refresh(&emu, &rt).await;
    assert_eq!(status, 400);
    assert_aad_shape(&body, "invalid_grant", 700082);

    // 90 days unused, reached through the clock.
    let rt = login(&emu, MORGAN).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    emu.advance_clock(91 * 24 * 3600).unwrap();
    assert_aad_shape(&refresh(&emu, &rt).await.1, "invalid_grant", 700082);

    let rt = login(&emu, MORGAN).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    emu.ms_revoke_grants(Some(MORGAN)).unwrap();
    assert_aad_shape(&refresh(&emu, &rt).await.1, "invalid_grant", 50173);

    let rt = login(&emu, MORGAN).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    emu.ms_expire_refresh_tokens(None, DeadReason::InteractionRequired)
        .unwrap();
    assert_aad_shape(&refresh(&emu, &rt).await.1, "interaction_required", 50076);
    emu.shutdown().await;
}

#[tokio::test]
async fn me_and_bearer_checks() {
    let emu = start(true).await;
    let token = access_token(&emu, MORGAN).await;
    let me = get(&emu, &token, "/me", &[]).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["userPrincipalName"], MORGAN);
    assert_eq!(me.body["mail"], MORGAN);
    assert_eq!(me.body["displayName"], "Morgan Lee");
    assert!(me.body["id"].as_str().is_some());

    let riley = access_token(&emu, RILEY).await;
    let me = get(&emu, &riley, "/me", &[]).await;
    assert!(
        me.body["mail"].is_null(),
        "a personal account without mail: {}",
        me.body
    );

    let anon = get(&emu, "", "/me", &[]).await;
    assert_eq!(anon.status, 401);
    assert_eq!(anon.body["error"]["code"], "InvalidAuthenticationToken");
    assert!(anon.body["error"]["innerError"]["request-id"].is_string());

    emu.ms_expire_access_tokens(Some(MORGAN)).unwrap();
    let expired = get(&emu, &token, "/me/calendars", &[]).await;
    assert_eq!(expired.status, 401);
    assert_eq!(expired.body["error"]["code"], "InvalidAuthenticationToken");
    assert!(expired.headers.contains_key("www-authenticate"));
    emu.shutdown().await;
}

#[tokio::test]
async fn calendars_are_paged_with_next_links() {
    let emu = start(true).await;
    let token = access_token(&emu, MORGAN).await;
    let first = get(&emu, &token, "/me/calendars?$top=1", &[]).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body["value"].as_array().unwrap().len(), 1);
    let next = first.body["@odata.nextLink"].as_str().unwrap();
    let second = get(&emu, &token, next, &[]).await;
    assert!(second.body.get("@odata.nextLink").is_none());
    let cals: Vec<Value> = [first.body, second.body]
        .iter()
        .flat_map(|b| b["value"].as_array().unwrap().clone())
        .collect();
    let default = cals.iter().find(|c| c["id"] == MORGAN_CALENDAR).unwrap();
    assert_eq!(default["isDefaultCalendar"], true);
    assert_eq!(default["hexColor"], "", "never picked a colour");
    assert_eq!(default["color"], "auto");
    let team = cals.iter().find(|c| c["id"] == MORGAN_TEAM).unwrap();
    assert_eq!(team["canEdit"], false);
    assert_eq!(team["owner"]["address"], "avery@contoso.example");
    assert_eq!(team["hexColor"], "#87d28e");
    emu.shutdown().await;
}

fn window(days_back: i64, days_ahead: i64) -> (String, String) {
    let now = Timestamp::now();
    let s = now.checked_sub((days_back * 24).hours()).unwrap();
    let e = now.checked_add((days_ahead * 24).hours()).unwrap();
    (
        s.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        e.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

async fn view_all(
    emu: &calsync_emulator::EmulatorHandle,
    token: &str,
    url: &str,
    prefer: &[&str],
) -> Vec<Value> {
    let mut out = Vec::new();
    let mut next = Some(url.to_owned());
    while let Some(u) = next {
        let r = get(emu, token, &u, prefer).await;
        assert_eq!(r.status, 200, "{}", r.body);
        out.extend(r.body["value"].as_array().unwrap().clone());
        next = r.body["@odata.nextLink"].as_str().map(str::to_owned);
    }
    out
}

#[tokio::test]
async fn calendar_view_expands_series_and_honours_time_zones() {
    let emu = start(true).await;
    let token = access_token(&emu, MORGAN).await;
    let missing = get(
        &emu,
        &token,
        &format!("/me/calendars/{}/calendarView", pct(MORGAN_CALENDAR)),
        &[],
    )
    .await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.body["error"]["code"], "ErrorInvalidParameter");

    let (s, e) = window(40, 30);
    let url = format!(
        "/me/calendars/{}/calendarView?startDateTime={s}&endDateTime={e}",
        pct(MORGAN_CALENDAR)
    );
    let items = view_all(&emu, &token, &url, &[]).await;
    assert!(items.iter().all(|i| i["type"] != "seriesMaster"));
    let weekly: Vec<&Value> = items
        .iter()
        .filter(|i| i["seriesMasterId"] == MORGAN_WEEKLY)
        .collect();
    // ~10 Mondays in the window, one moved (exception), one deleted.
    assert!(weekly.len() >= 8, "{}", weekly.len());
    assert_eq!(
        weekly.iter().filter(|i| i["type"] == "exception").count(),
        1
    );
    let moved = weekly.iter().find(|i| i["type"] == "exception").unwrap();
    assert_eq!(moved["subject"], "Team sync (moved)");
    assert!(moved["originalStart"].as_str().unwrap().ends_with('Z'));
    let occ = weekly.iter().find(|i| i["type"] == "occurrence").unwrap();
    assert_eq!(occ["originalStartTimeZone"], "W. Europe Standard Time");
    assert_eq!(occ["start"]["timeZone"], "UTC");
    assert!(occ["start"]["dateTime"]
        .as_str()
        .unwrap()
        .ends_with(".0000000"));
    // Consecutive Mondays 7 days apart except around the moved/deleted ones: check one gap of 14 days.
    let mondays: Vec<Timestamp> = weekly
        .iter()
        .filter(|i| i["type"] == "occurrence")
        .map(|i| {
            format!("{}Z", &i["start"]["dateTime"].as_str().unwrap()[..19])
                .parse()
                .unwrap()
        })
        .collect();
    assert!(mondays
        .windows(2)
        .any(|w| w[1].duration_since(w[0]).as_hours() >= 24 * 14 - 1));

    let holiday = items.iter().find(|i| i["id"] == MORGAN_HOLIDAY).unwrap();
    assert_eq!(holiday["isAllDay"], true);
    assert!(holiday["start"]["dateTime"]
        .as_str()
        .unwrap()
        .ends_with("T00:00:00.0000000"));
    let summit = items.iter().find(|i| i["id"] == MORGAN_SUMMIT).unwrap();
    let (sd, ed) = (
        summit["start"]["dateTime"].as_str().unwrap()[..10]
            .parse::<jiff::civil::Date>()
            .unwrap(),
        summit["end"]["dateTime"].as_str().unwrap()[..10]
            .parse::<jiff::civil::Date>()
            .unwrap(),
    );
    assert_eq!(sd.until(ed).unwrap().get_days(), 3);
    let cancelled = items.iter().find(|i| i["id"] == MORGAN_CANCELLED).unwrap();
    assert_eq!(cancelled["isCancelled"], true);

    // Prefer: outlook.timezone rewrites timed events, not all-day ones.
    let pacific = view_all(
        &emu,
        &token,
        &url,
        &["outlook.timezone=\"Pacific Standard Time\""],
    )
    .await;
    let call_utc = items
        .iter()
        .find(|i| i["id"] == MORGAN_SEATTLE_CALL)
        .unwrap();
    let call_pt = pacific
        .iter()
        .find(|i| i["id"] == MORGAN_SEATTLE_CALL)
        .unwrap();
    assert_eq!(call_pt["start"]["timeZone"], "Pacific Standard Time");
    assert_eq!(
        &call_pt["start"]["dateTime"].as_str().unwrap()[11..16],
        "09:00"
    );
    assert_ne!(call_utc["start"]["dateTime"], call_pt["start"]["dateTime"]);
    let holiday_pt = pacific.iter().find(|i| i["id"] == MORGAN_HOLIDAY).unwrap();
    assert_eq!(
        holiday_pt["start"]["dateTime"],
        holiday["start"]["dateTime"]
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn faults_answer_in_microsoft_shapes_and_requests_are_logged() {
    let emu = start(true).await;
    let token = access_token(&emu, MORGAN).await;
    emu.inject_fault(Fault {
        path_prefix: "/v1.0/".into(),
        status: Some(429),
        retry_after: Some(7),
        ..Default::default()
    })
    .unwrap();
    let r = get(&emu, &token, "/me/calendars", &[]).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers["retry-after"], "7");
    assert_eq!(r.body["error"]["code"], "TooManyRequests");
    assert_eq!(get(&emu, &token, "/me/calendars", &[]).await.status, 200);

    emu.inject_fault(Fault {
        path_prefix: "/common/oauth2/v2.0/token".into(),
        status: Some(503),
        retry_after: Some(3),
        ..Default::default()
    })
    .unwrap();
    let (status, body) = refresh(&emu, "whatever").await;
    assert_eq!(status, 503);
    assert_aad_shape(&body, "temporarily_unavailable", 90033);

    let log = emu.requests();
    let graph: Vec<_> = log
        .iter()
        .filter(|e| e.path.starts_with("/v1.0/"))
        .collect();
    assert_eq!(graph.len(), 2);
    assert_eq!(graph[0].status, 429);
    assert_eq!(graph[1].account.as_deref(), Some(MORGAN));
    assert!(graph[1].token.as_deref().unwrap().starts_with("access:"));
    let text = serde_json::to_string(&log).unwrap();
    for secret in emu.live_tokens() {
        assert!(
            !text.contains(&secret),
            "a token leaked into the request log"
        );
    }
    emu.shutdown().await;
}
