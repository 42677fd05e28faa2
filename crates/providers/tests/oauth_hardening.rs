//! The code exchange and the id_token against the emulators over real HTTP:
//! a failing exchange is sent once (codes are single-use) while a refresh is
//! retried; the Google emulator's id_tokens pass the claim checks, and one
//! naming another client, another issuer or a past expiry is refused; the
//! Microsoft emulator's id_tokens carry a tenant issuer the checks accept.
#![allow(clippy::unwrap_used)]

mod support;

use calsync_emulator::{
    samples, Emulator, EmulatorConfig, EmulatorHandle, Fault, OAuthClient as EmulatedClient,
};
use calsync_providers::google::{GoogleClient, GoogleConfig};
use calsync_providers::oauth::{
    decode_id_token_claims, IdTokenCheck, Issuer, OAuthClient, Pkce, TokenSet,
};
use calsync_providers::ProviderError;
use jiff::Timestamp;
use secrecy::{ExposeSecret as _, SecretString};
use support::fast_http;

const GOOGLE_ID: &str = "hardening.apps.googleusercontent.com";
const GOOGLE_SECRET: &str = "hardening-google-secret";
const MS_ID: &str = "4a1d7c9e-0000-4000-8000-00000000beef";
const MS_SECRET: &str = "hardening-ms-secret";
const REDIRECT: &str = "http://localhost:8000/api/calendar/google/callback/";

async fn emulator() -> EmulatorHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Emulator::start(
        listener,
        EmulatorConfig {
            clients: vec![
                EmulatedClient::new(GOOGLE_ID, GOOGLE_SECRET, [REDIRECT]),
                EmulatedClient::new(MS_ID, MS_SECRET, [REDIRECT]),
            ],
            auto_approve: true,
            sample_data: true,
            ..EmulatorConfig::default()
        },
    )
    .unwrap()
}

fn google(emulator: &EmulatorHandle) -> GoogleClient {
    let endpoints = emulator.google();
    let mut config = GoogleConfig::new(
        GOOGLE_ID.into(),
        Some(SecretString::from(GOOGLE_SECRET)),
        REDIRECT.into(),
    );
    config.auth_url = endpoints.auth_url;
    config.token_url = endpoints.token_url;
    config.api_base = emulator.base_url().to_owned();
    config.revoke_url = endpoints.revoke_url;
    GoogleClient::with_http(config, fast_http()).unwrap()
}

/// Follows a consent URL the emulator approves at once; returns the code.
async fn code_from(consent_url: &str) -> String {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = browser.get(consent_url).send().await.unwrap();
    assert_eq!(answer.status(), 302, "{consent_url}");
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    reqwest::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {location}"))
}

/// A Google consent and code exchange as calsync does them.
async fn google_tokens(emulator: &EmulatorHandle, google: &GoogleClient) -> TokenSet {
    let pkce = Pkce::generate().unwrap();
    let url = google
        .authorization_url("state", &pkce.challenge, Some(samples::ALICE))
        .unwrap();
    let code = code_from(&url).await;
    let tokens = google.exchange_code(&code, &pkce.verifier).await;
    assert!(
        emulator
            .requests()
            .iter()
            .any(|r| r.path == "/token" && r.status == 200),
        "the exchange reached the emulator"
    );
    tokens.unwrap()
}

fn token_posts(emulator: &EmulatorHandle, path: &str) -> usize {
    emulator
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == path)
        .count()
}

#[tokio::test]
async fn a_failing_code_exchange_is_sent_once_and_a_refresh_is_retried() {
    let emulator = emulator().await;
    let google = google(&emulator);

    for fault in [
        Fault {
            path_prefix: "/token".into(),
            status: Some(503),
            ..Fault::default()
        },
        Fault {
            path_prefix: "/token".into(),
            status: Some(500),
            ..Fault::default()
        },
        Fault {
            path_prefix: "/token".into(),
            drop_connection: true,
            ..Fault::default()
        },
    ] {
        let pkce = Pkce::generate().unwrap();
        let url = google
            .authorization_url("state", &pkce.challenge, Some(samples::ALICE))
            .unwrap();
        let code = code_from(&url).await;
        let before = token_posts(&emulator, "/token");
        emulator.inject_fault(fault.clone()).unwrap();
        let err = google
            .exchange_code(&code, &pkce.verifier)
            .await
            .unwrap_err();
        // One fault, one request: a retry would have redeemed the code.
        assert_eq!(
            token_posts(&emulator, "/token") - before,
            1,
            "{fault:?}: {err:?}"
        );
        match (fault.status, &err) {
            (Some(status), ProviderError::Provider { status: got, .. }) => {
                assert_eq!(status, *got);
            }
            (None, ProviderError::Network(_)) => {}
            other => panic!("{other:?}"),
        }
        assert!(!format!("{err} {err:?}").contains(&code), "{err:?}");
    }

    // A refresh, by contrast, is worth retrying: one 503, then it works.
    let tokens = google_tokens(&emulator, &google).await;
    let refresh = tokens.refresh_token.unwrap();
    emulator
        .inject_fault(Fault {
            path_prefix: "/token".into(),
            status: Some(503),
            ..Fault::default()
        })
        .unwrap();
    let before = token_posts(&emulator, "/token");
    let refreshed = google.refresh(&refresh).await.unwrap();
    assert!(!refreshed.access_token.expose_secret().is_empty());
    assert_eq!(token_posts(&emulator, "/token") - before, 2);
}

#[tokio::test]
async fn google_id_tokens_are_believed_only_when_their_claims_are_right() {
    let emulator = emulator().await;
    let google = google(&emulator);

    // The emulator's tokens as issued: right issuer, audience and expiry.
    let tokens = google_tokens(&emulator, &google).await;
    let claims = decode_id_token_claims(tokens.id_token.as_ref().unwrap()).unwrap();
    claims
        .validate(&IdTokenCheck {
            issuer: Issuer::Google,
            client_id: GOOGLE_ID,
            now: Timestamp::now(),
        })
        .unwrap();
    let userinfo_calls = |e: &EmulatorHandle| {
        e.requests()
            .iter()
            .filter(|r| r.path.contains("userinfo"))
            .count()
    };
    let who = google.identity(&tokens).await.unwrap();
    assert_eq!(who.email.as_deref(), Some(samples::ALICE));
    assert_eq!(userinfo_calls(&emulator), 0, "identity from the id_token");

    for (claim, value, why) in [
        (
            "aud",
            serde_json::json!("someone-else.apps.googleusercontent.com"),
            "(aud)",
        ),
        ("aud", serde_json::json!([GOOGLE_ID, "other"]), "(azp)"),
        (
            "iss",
            serde_json::json!("https://accounts.google.com.evil.example"),
            "(iss)",
        ),
        ("exp", serde_json::json!(1_000_000_000), "(exp)"),
        ("exp", serde_json::Value::Null, "(exp)"),
    ] {
        emulator.update_settings(|s| {
            s.id_token_claims.clear();
            s.id_token_claims.insert(claim.to_owned(), value.clone());
            if claim == "aud" && value.is_array() {
                s.id_token_claims
                    .insert("azp".to_owned(), serde_json::json!("other"));
            }
        });
        let tokens = google_tokens(&emulator, &google).await;
        let err = google.identity(&tokens).await.unwrap_err();
        assert!(
            matches!(&err, ProviderError::Provider { reason, message, .. }
                if reason == "invalid_id_token" && message.contains(why)),
            "{claim}={value}: {err}"
        );
        // Refused outright: not passed over for the userinfo endpoint.
        assert_eq!(userinfo_calls(&emulator), 0, "{claim}={value}");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(tokens.access_token.expose_secret()));
    }
}

#[tokio::test]
async fn microsoft_emulator_id_tokens_name_a_tenant_issuer() {
    let emulator = emulator().await;
    let endpoints = emulator.microsoft();
    let client = OAuthClient {
        client_id: MS_ID.into(),
        client_secret: Some(SecretString::from(MS_SECRET)),
        auth_url: endpoints.auth_url,
        token_url: endpoints.token_url,
        redirect_uri: REDIRECT.into(),
        revoke_url: None,
    };
    let pkce = Pkce::generate().unwrap();
    let url = client
        .authorization_url(
            &["openid", "email", "offline_access", "User.Read"],
            "state",
            &pkce.challenge,
            &[("login_hint", samples::MORGAN)],
        )
        .unwrap();
    let code = code_from(&url).await;
    let tokens = client
        .exchange_code(&fast_http(), &code, &pkce.verifier)
        .await
        .unwrap();
    let claims = decode_id_token_claims(tokens.id_token.as_ref().unwrap()).unwrap();
    let check = IdTokenCheck {
        issuer: Issuer::Microsoft,
        client_id: MS_ID,
        now: Timestamp::now(),
    };
    claims.validate(&check).unwrap();
    assert!(claims
        .validate(&IdTokenCheck {
            issuer: Issuer::Google,
            ..check.clone()
        })
        .is_err());
    assert!(claims
        .validate(&IdTokenCheck {
            client_id: "another-client",
            ..check
        })
        .is_err());
}
