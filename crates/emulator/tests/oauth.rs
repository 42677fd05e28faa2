//! OAuth over real HTTP: PKCE, redirect_uri matching, when refresh tokens are
//! issued, revocation, consent page, identity.
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine as _;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn pkce_success_single_use_code_and_identity() {
    let emu = start(true, true).await;
    let code = code_for(
        &emu,
        &[
            ("access_type", "offline"),
            ("login_hint", "bob@example.com"),
        ],
    )
    .await;
    let (status, body) = exchange(&emu, &code, Some(VERIFIER), REDIRECT).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert!(body["access_token"].as_str().unwrap().starts_with("ya29."));
    assert!(
        body["refresh_token"].as_str().is_some(),
        "first grant + offline gives a refresh token"
    );
    let scope = body["scope"].as_str().unwrap();
    assert!(
        scope.contains("https://www.googleapis.com/auth/calendar")
            && scope.contains("userinfo.email")
    );

    // id_token: HS256 JWT keyed by the client secret, with sub + email.
    let jwt = body["id_token"].as_str().unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["email"], "bob@example.com");
    assert_eq!(claims["aud"], CLIENT_ID);
    let sub = claims["sub"].as_str().unwrap().to_owned();
    assert!(sub.len() >= 20);

    // userinfo (OIDC and v2) agree with the id_token.
    let token = body["access_token"].as_str().unwrap();
    let r = http()
        .get(emu.google().userinfo_url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["sub"], sub.as_str());
    assert_eq!(info["email"], "bob@example.com");
    let r = http()
        .get(format!("{}/oauth2/v2/userinfo", emu.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["id"], sub.as_str());

    // A code is single use.
    let (status, body) = exchange(&emu, &code, Some(VERIFIER), REDIRECT).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn pkce_failures() {
    let emu = start(true, true).await;
    let code = code_for(&emu, &[]).await;
    let (status, body) = exchange(
        &emu,
        &code,
        Some("wrong-verifier-wrong-verifier-wrong-verifier-x"),
        REDIRECT,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_description"], "Invalid code verifier.");

    let code = code_for(&emu, &[]).await;
    let (status, body) = exchange(&emu, &code, None, REDIRECT).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");

    // plain method: the verifier is the challenge.
    let resp = authorize(
        &emu,
        &[(
            "code_challenge",
            "plain-verifier-plain-verifier-plain-verifier-1",
        )],
    )
    .await;
    let code = param(&location_params(&resp), "code").unwrap().to_owned();
    let (status, _) = exchange(
        &emu,
        &code,
        Some("plain-verifier-plain-verifier-plain-verifier-1"),
        REDIRECT,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn redirect_uri_must_match_exactly() {
    let emu = start(true, true).await;
    // At /auth: an HTML error page, no redirect.
    let resp = http()
        .get(emu.google().auth_url)
        .query(&[
            ("client_id", CLIENT_ID),
            (
                "redirect_uri",
                "http://localhost:8000/api/calendar/google/callback",
            ), // no trailing slash
            ("response_type", "code"),
            ("scope", SCOPES),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.headers().get("location").is_none());
    assert!(resp.text().await.unwrap().contains("redirect_uri_mismatch"));

    // Unknown client: 401 page.
    let resp = http()
        .get(emu.google().auth_url)
        .query(&[
            ("client_id", "nope"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", SCOPES),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // At /token: the redirect_uri is checked again.
    let code = code_for(&emu, &[]).await;
    let (status, body) =
        exchange(&emu, &code, Some(VERIFIER), "http://localhost:8000/other/").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "redirect_uri_mismatch");

    // Wrong secret and unknown client at /token.
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "x"),
        ("client_id", CLIENT_ID),
        ("client_secret", "bad"),
    ];
    let resp = http()
        .post(emu.google().token_url)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    let form = [
        ("grant_type", "bogus"),
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
    ];
    let resp = http()
        .post(emu.google().token_url)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
}

#[tokio::test]
async fn refresh_token_only_with_offline_and_consent() {
    let emu = start(true, true).await;
    // Online access: never a refresh token, even on the first grant.
    let code = code_for(&emu, &[("access_type", "online")]).await;
    let (_, body) = exchange(&emu, &code, Some(VERIFIER), REDIRECT).await;
    assert!(body.get("refresh_token").is_none());

    // Offline, but the account already granted these scopes and no prompt=consent:
    // Google skips the consent screen and gives no refresh token (the classic bug).
    let code = code_for(&emu, &[("access_type", "offline")]).await;
    let (_, body) = exchange(&emu, &code, Some(VERIFIER), REDIRECT).await;
    assert!(body.get("refresh_token").is_none(), "{body}");

    // prompt=consent shows the screen again: a refresh token.
    let code = code_for(&emu, &[("access_type", "offline"), ("prompt", "consent")]).await;
    let (_, body) = exchange(&emu, &code, Some(VERIFIER), REDIRECT).await;
    let rt = body["refresh_token"].as_str().unwrap().to_owned();

    // Refresh: a new access token, no new refresh token by default.
    let (status, body) = refresh(&emu, &rt).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].as_str().is_some());
    assert!(body.get("refresh_token").is_none());
}

#[tokio::test]
async fn revoke_and_expiry_give_invalid_grant_and_401() {
    let emu = start(true, true).await;
    let tokens = login(&emu, "alice@example.com").await;
    let access = tokens["access_token"].as_str().unwrap();
    let rt = tokens["refresh_token"].as_str().unwrap();
    let (status, _) = api_get(&emu, access, "/users/me/calendarList", &[]).await;
    assert_eq!(status, StatusCode::OK);

    // Expired access token → 401 authError; refresh fixes it.
    let (status, _) = control(
        &emu,
        Method::POST,
        "/tokens/expire-access",
        json!({"account": "alice@example.com"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = api_get(&emu, access, "/users/me/calendarList", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(reason(&body), "authError");
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
    let (status, refreshed) = refresh(&emu, rt).await;
    assert_eq!(status, StatusCode::OK);
    let access2 = refreshed["access_token"].as_str().unwrap();
    assert_eq!(
        api_get(&emu, access2, "/users/me/calendarList", &[])
            .await
            .0,
        StatusCode::OK
    );

    // /revoke with the refresh token revokes the whole grant.
    let resp = http()
        .post(emu.google().revoke_url)
        .form(&[("token", rt)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, body) = refresh(&emu, rt).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        body["error_description"],
        "Token has been expired or revoked."
    );
    assert_eq!(
        api_get(&emu, access2, "/users/me/calendarList", &[])
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let resp = http()
        .post(emu.google().revoke_url)
        .form(&[("token", rt)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_token"
    );

    // Control API: expire a refresh token → invalid_grant.
    let tokens = login(&emu, "alice@example.com").await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    control(&emu, Method::POST, "/tokens/expire-refresh", json!({})).await;
    assert_eq!(refresh(&emu, rt).await.1["error"], "invalid_grant");

    // Testing mode: refresh tokens die after 7 days on the fake clock.
    control(
        &emu,
        Method::PUT,
        "/settings",
        json!({"testing_mode": true}),
    )
    .await;
    let tokens = login(&emu, "alice@example.com").await;
    assert_eq!(tokens["refresh_token_expires_in"], 604_799);
    let rt = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&emu, rt).await.0, StatusCode::OK);
    control(
        &emu,
        Method::POST,
        "/clock/advance",
        json!({"seconds": 7 * 86_400 + 1}),
    )
    .await;
    assert_eq!(refresh(&emu, rt).await.1["error"], "invalid_grant");
}

#[tokio::test]
async fn consent_page_allow_deny_and_account_choice() {
    let emu = start(false, true).await;
    let resp = authorize(&emu, &[("access_type", "offline")]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("id=\"allow\"")
            && page.contains("id=\"deny\"")
            && page.contains("bob@example.com")
    );
    let request = page
        .split("name=\"request\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();

    let decision = format!("{}/o/oauth2/v2/auth/decision", emu.base_url());
    let resp = http()
        .post(&decision)
        .form(&[("request", request.as_str()), ("decision", "deny")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let params = location_params(&resp);
    assert_eq!(param(&params, "error"), Some("access_denied"));
    assert_eq!(param(&params, "state"), Some("st-123"));

    // A used request id is gone.
    let resp = http()
        .post(&decision)
        .form(&[("request", request.as_str()), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let ch = challenge(VERIFIER);
    let resp = authorize(
        &emu,
        &[
            ("access_type", "offline"),
            ("code_challenge", &ch),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let page = resp.text().await.unwrap();
    let request = page
        .split("name=\"request\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let resp = http()
        .post(&decision)
        .form(&[
            ("request", request.as_str()),
            ("account", "bob@example.com"),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    let params = location_params(&resp);
    let code = param(&params, "code").unwrap();
    let (status, body) = exchange(&emu, code, Some(VERIFIER), REDIRECT).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["refresh_token"].is_string());
    let r = http()
        .get(emu.google().userinfo_url)
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["email"], "bob@example.com");
}

#[tokio::test]
async fn scopes_are_enforced_and_granular_consent_drops_scopes() {
    let emu = start(true, true).await;
    control(
        &emu,
        Method::PUT,
        "/settings",
        json!({"drop_scopes": ["https://www.googleapis.com/auth/calendar"]}),
    )
    .await;
    let scopes = "openid email https://www.googleapis.com/auth/calendar https://www.googleapis.com/auth/calendar.events";
    let resp = http()
        .get(emu.google().auth_url)
        .query(&[
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", scopes),
        ])
        .send()
        .await
        .unwrap();
    let params = location_params(&resp);
    let granted = param(&params, "scope").unwrap().to_owned();
    assert!(!granted
        .split(' ')
        .any(|s| s == "https://www.googleapis.com/auth/calendar"));
    let (_, body) = exchange(&emu, param(&params, "code").unwrap(), None, REDIRECT).await;
    assert_eq!(body["scope"].as_str().unwrap(), granted);
    let token = body["access_token"].as_str().unwrap();
    // calendar.events does not unlock calendarList.list (DISCO).
    let (status, body) = api_get(&emu, token, "/users/me/calendarList", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(reason(&body), "insufficientPermissions");
    let (status, _) = api_get(&emu, token, "/calendars/primary/events", &[]).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn basic_auth_json_body_and_tokeninfo() {
    let emu = start(true, true).await;
    let code = code_for(&emu, &[("access_type", "offline")]).await;
    // client_secret_basic + a JSON body (google-auth can send either).
    let resp = http()
        .post(emu.google().token_url)
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .json(&json!({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": VERIFIER}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("no-store"));
    let body: Value = resp.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap();
    let resp = http()
        .get(format!("{}/tokeninfo", emu.base_url()))
        .query(&[("access_token", access)])
        .send()
        .await
        .unwrap();
    let info: Value = resp.json().await.unwrap();
    assert_eq!(info["aud"], CLIENT_ID);
    assert_eq!(info["email"], "alice@example.com");
    let resp = http()
        .get(format!(
            "{}/.well-known/openid-configuration",
            emu.base_url()
        ))
        .send()
        .await
        .unwrap();
    let disco: Value = resp.json().await.unwrap();
    assert_eq!(disco["token_endpoint"], emu.google().token_url.as_str());
}
