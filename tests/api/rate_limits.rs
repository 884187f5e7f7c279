//! Rate limits: with a low limit configured, sign-in and commands answer `429 rate_limited`
//! (problem+json) with a `Retry-After` header, and other callers are not slowed down.
//!
//! Nothing here is timed: the requests over the limit go out together, far faster than the
//! buckets refill (one request per second, or per twenty seconds for sign-in).

use futures::future::join_all;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{AppOptions, Backend, Reply, spawn_app_with};

/// Asserts a `429 rate_limited` problem with a sensible `Retry-After`.
#[track_caller]
fn assert_rate_limited(reply: &Reply) {
    reply.assert_problem(429, "rate_limited");
    let retry_after: u64 = reply
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a Retry-After in seconds: {:?}", reply.headers));
    assert!(
        (1..=3600).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    assert_eq!(reply.body["retry_after"], retry_after, "{}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_sign_up_over_the_limit_answer_429_with_retry_after() {
    // Three attempts a minute per address (and per e-mail address); the harness's own
    // sign-in of the owner spent one.
    let app = spawn_app_with(
        AppOptions::new(Backend::Sqlite).env("MARQUEE_RATE_LIMIT_SIGN_IN_PER_MINUTE", "3"),
    )
    .await;
    let attempts = join_all((0..6).map(|n| {
        app.post_as(
            None,
            "/v1/auth/login",
            json!({ "email": format!("nobody{n}@marquee.test"), "password": "wrong password 123" }),
        )
    }))
    .await;
    let limited: Vec<&Reply> = attempts.iter().filter(|r| r.status == 429).collect();
    assert!(
        limited.len() >= 4,
        "at most two more attempts this minute: {:?}",
        attempts.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for reply in &attempts {
        match reply.status {
            429 => assert_rate_limited(reply),
            _ => reply.assert_problem(401, "invalid_credentials"),
        }
    }
    // Sign-up counts against the same allowance.
    let signed_up = app
        .sign_up("late@marquee.test", "a-long-enough-passphrase", "Late")
        .await;
    assert_rate_limited(&signed_up);
    // A signed-in caller's commands are not sign-ins: they go on.
    let venue = app.create_venue(10).await;
    assert!(!venue.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_over_the_per_account_limit_answer_429_and_other_accounts_go_on() {
    let app = spawn_app_with(
        AppOptions::new(Backend::Sqlite).env("MARQUEE_RATE_LIMIT_COMMANDS_PER_SECOND", "1"),
    )
    .await;
    let ada = app.account("ada").await;
    let head = app.head_position().await;
    // A burst of two, then one a second: twenty at once cannot all pass.
    let replies = join_all((0..20).map(|n| {
        app.post(
            "/v1/venues",
            json!({ "name": format!("Hall {n}"), "city": "Oslo", "capacity": 10 }),
        )
    }))
    .await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    let limited = replies.iter().filter(|r| r.status == 429).count();
    assert_eq!(
        created + limited,
        20,
        "{:?}",
        replies
            .iter()
            .map(|r| (r.status, &r.body))
            .collect::<Vec<_>>()
    );
    assert!(limited >= 10, "{created} created, {limited} limited");
    for reply in replies.iter().filter(|r| r.status == 429) {
        assert_rate_limited(reply);
    }
    assert_eq!(
        app.head_position().await,
        head + created as u64,
        "a limited command appends nothing"
    );
    // Another account has a bucket of its own.
    let me = app.get_command_as(ada.token(), "/v1/me").await;
    assert_eq!(me.status, 200, "{}", me.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_per_address_limit_answer_429_even_without_credentials() {
    let app = spawn_app_with(
        AppOptions::new(Backend::Sqlite)
            .env("MARQUEE_RATE_LIMIT_COMMANDS_PER_SECOND_PER_ADDRESS", "1"),
    )
    .await;
    let url = format!("{}/v1/venues", app.command_url);
    let replies = join_all((0..20).map(|_| {
        app.send(
            app.request_as(None, Method::POST, &url)
                .json(&json!({ "name": "Hall", "city": "Oslo", "capacity": 10 })),
        )
    }))
    .await;
    let limited = replies.iter().filter(|r| r.status == 429).count();
    assert!(limited >= 10, "{limited} of 20 limited");
    for reply in &replies {
        match reply.status {
            429 => assert_rate_limited(reply),
            _ => reply.assert_problem(401, "unauthorized"),
        }
    }
}
