//! Commands that run through a helper shared with the operators' tools (sign-up, founding an
//! organization) answer with the same body the first time and on a replay of their
//! `Idempotency-Key`, position included.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use marquee_command_api::access::{Auth, RateLimits};
use marquee_command_api::{CommandState, router};
use serde_json::{Value, json};
use tower::ServiceExt;

async fn app() -> Router {
    let log = marquee_store::connect("memory:").await.expect("store");
    let limits = RateLimits {
        sign_in_per_minute: 0,
        commands_per_second: 0,
        commands_per_second_per_address: 0,
    };
    let auth = Auth::connect("memory:", log.clone(), limits)
        .await
        .expect("auth tables");
    router(CommandState::new(log, Arc::new(auth)))
}

async fn post(
    app: &Router,
    path: &str,
    body: &Value,
    key: &str,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = Request::post(path)
        .header("content-type", "application/json")
        .header("idempotency-key", key);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request.body(Body::from(body.to_string())).expect("request");
    let answer = app.clone().oneshot(request).await.expect("answer");
    let status = answer.status();
    let bytes = axum::body::to_bytes(answer.into_body(), 1 << 16)
        .await
        .expect("body");
    (status, serde_json::from_slice(&bytes).expect("json"))
}

#[tokio::test]
async fn a_replayed_sign_up_and_founding_answer_as_the_first() {
    let app = app().await;
    let sign_up = json!({
        "email": "grace@example.com",
        "password": "a long enough passphrase",
        "name": "Grace",
    });
    let (status, first) = post(&app, "/v1/auth/signup", &sign_up, "signup-1", None).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert!(first["user_id"].is_string(), "{first}");
    assert!(first["position"].is_u64(), "{first}");
    let (status, replay) = post(&app, "/v1/auth/signup", &sign_up, "signup-1", None).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(replay, first);

    let login = json!({ "email": "grace@example.com", "password": "a long enough passphrase" });
    let (status, session) = post(&app, "/v1/auth/login", &login, "login-1", None).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let token = session["access_token"].as_str().expect("access token");

    let found = json!({ "name": "  Analytical Engines  " });
    let (status, first) = post(&app, "/v1/organizations", &found, "org-1", Some(token)).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["name"], "Analytical Engines");
    assert_eq!(first["role"], "owner");
    assert!(first["organization_id"].is_string(), "{first}");
    assert!(first["position"].is_u64(), "{first}");
    let (status, replay) = post(&app, "/v1/organizations", &found, "org-1", Some(token)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(replay, first);
}
