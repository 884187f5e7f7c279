//! Credentials that must not work: expired, tampered, foreign-signed and garbage access tokens,
//! sessions ended by sign-out, a password change or a reused refresh token, API tokens of
//! another organization and revoked ones. Each is refused with `401 unauthorized` (or, for an
//! API token on another organization's resources, `404`), and nothing is appended.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use marquee_auth::tokens::{ACCESS_TTL, issue_access, verify_access};
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde_json::{Value, json};

use crate::helpers::{Backend, MEMBER_PASSWORD, Reply, TestApp, spawn_app};

/// A fresh venue body.
fn venue() -> Value {
    json!({ "name": "Token hall", "city": "Basel", "capacity": 10 })
}

/// `POST /v1/venues` with `authorization` as the raw header (or none).
async fn create_venue_with_header(app: &TestApp, authorization: Option<HeaderValue>) -> Reply {
    let mut request = app
        .anonymous
        .post(format!("{}/v1/venues", app.command_url))
        .json(&venue());
    if let Some(value) = authorization {
        request = request.header(AUTHORIZATION, value);
    }
    app.send(request).await
}

/// The guest list of `event_id` as `token`.
async fn guest_list_as(app: &TestApp, token: Option<&str>, event_id: &str) -> Reply {
    let url = format!("{}/v1/events/{event_id}/attendees", app.query_url);
    app.send(app.request_as(token, Method::GET, &url)).await
}

/// Asserts `token` is refused on a command route and on the guest list, and appends nothing.
async fn assert_refused(app: &TestApp, token: &str, event_id: &str, what: &str) {
    let head = app.head_position().await;
    let reply = app.post_as(Some(token), "/v1/venues", venue()).await;
    assert_eq!(reply.status, 401, "{what}: {}", reply.body);
    reply.assert_problem(401, "unauthorized");
    let me = app.get_command_as(Some(token), "/v1/me").await;
    assert_eq!(me.status, 401, "{what}: {}", me.body);
    let guests = guest_list_as(app, Some(token), event_id).await;
    assert_eq!(
        guests.status, 401,
        "{what} on the query API: {}",
        guests.body
    );
    guests.assert_problem(401, "unauthorized");
    assert_eq!(app.head_position().await, head, "{what}: nothing appended");
}

/// A published event of the first owner's organization; its id.
async fn an_event(app: &TestApp) -> String {
    let venue_id = app.create_venue(100).await;
    let event_id = app.draft_event(&venue_id, "Guarded").await;
    app.add_free_ticket_type(&event_id, "GA", 50).await;
    app.publish(&event_id).await;
    event_id
}

/// Re-encodes a JWT's claims with `change` applied, keeping its header and signature.
fn with_claims(token: &str, change: impl FnOnce(&mut Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT");
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("base64url claims"))
            .expect("JSON claims");
    change(&mut claims);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

async fn forged_and_broken_access_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let event_id = an_event(&app).await;
    let secret = app.jwt_secret().await;
    let now = chrono::Utc::now();
    let claims = verify_access(&secret, &app.owner.access_token, now)
        .expect("the database's jwt secret signed the owner's token");

    // Control: a token signed here with the server's own secret, for a live session, works —
    // so every refusal below is about the one thing changed.
    let genuine = issue_access(&secret, claims.sub, claims.sid, now, ACCESS_TTL).expect("sign");
    let reply = app.post_as(Some(&genuine), "/v1/venues", venue()).await;
    assert_eq!(reply.status, 201, "{}", reply.body);

    let expired = issue_access(
        &secret,
        claims.sub,
        claims.sid,
        now - chrono::Duration::hours(1),
        ACCESS_TTL,
    )
    .expect("sign");
    assert_refused(&app, &expired, &event_id, "an expired access token").await;

    let other_secret = [7u8; 32];
    let foreign =
        issue_access(&other_secret, claims.sub, claims.sid, now, ACCESS_TTL).expect("sign");
    assert_refused(
        &app,
        &foreign,
        &event_id,
        "a token signed with another secret",
    )
    .await;

    let stranger = app.account("stranger").await;
    let escalated = with_claims(&stranger.access_token, |c| {
        c["sub"] = json!(claims.sub.to_string());
        c["sid"] = json!(claims.sid.to_string());
    });
    assert_refused(
        &app,
        &escalated,
        &event_id,
        "claims swapped for the owner's",
    )
    .await;
    let prolonged = with_claims(&genuine, |c| {
        c["exp"] = json!(c["exp"].as_i64().expect("exp") + 86_400);
    });
    assert_refused(&app, &prolonged, &event_id, "a prolonged expiry").await;
    let mut flipped = genuine.clone();
    let last = flipped.pop().expect("a character");
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    assert_refused(&app, &flipped, &event_id, "a changed signature").await;
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = genuine.split('.').nth(1).expect("claims");
    let unsigned = format!("{header}.{payload}.");
    assert_refused(&app, &unsigned, &event_id, "alg none").await;
    assert_refused(
        &app,
        &app.owner.refresh_token,
        &event_id,
        "a refresh token used as an access token",
    )
    .await;

    // Headers that are no credentials at all.
    let head = app.head_position().await;
    for garbage in [
        "Bearer",
        "Bearer ",
        "Bearer not-a-token",
        "Bearer a.b.c",
        "Bearer mqt_garbage",
        "Bearer mqt_0192f0c1000070008000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "Basic b3duZXJAbWFycXVlZS50ZXN0OnBhc3N3b3Jk",
        "Token abc",
        "bearer",
        "",
    ] {
        let reply =
            create_venue_with_header(&app, Some(HeaderValue::from_str(garbage).expect("header")))
                .await;
        assert_eq!(
            reply.status, 401,
            "Authorization: {garbage:?}: {}",
            reply.body
        );
        reply.assert_problem(401, "unauthorized");
    }
    let not_text = HeaderValue::from_bytes(b"Bearer \xff\xfe").expect("opaque header");
    let reply = create_venue_with_header(&app, Some(not_text.clone())).await;
    reply.assert_problem(401, "unauthorized");
    let guests = app
        .send(
            app.anonymous
                .get(format!("{}/v1/events/{event_id}/attendees", app.query_url))
                .header(AUTHORIZATION, not_text),
        )
        .await;
    guests.assert_problem(401, "unauthorized");
    assert_eq!(app.head_position().await, head, "garbage appended nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tampered_foreign_signed_and_garbage_credentials_are_refused() {
    forged_and_broken_access_tokens(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_expired_tampered_foreign_signed_and_garbage_credentials_are_refused() {
    forged_and_broken_access_tokens(Backend::Postgres).await;
}

async fn ended_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    let event_id = an_event(&app).await;
    let ada = app.account("ada").await;

    // Signing out ends that session: its access and refresh tokens both stop working.
    let me = app.get_command_as(ada.token(), "/v1/me").await;
    assert_eq!(me.status, 200, "{}", me.body);
    let out = app
        .send(app.request_as(
            ada.token(),
            Method::POST,
            &format!("{}/v1/auth/logout", app.command_url),
        ))
        .await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert_refused(&app, &ada.access_token, &event_id, "a signed-out session").await;
    app.post_as(
        None,
        "/v1/auth/refresh",
        json!({ "refresh_token": ada.refresh_token }),
    )
    .await
    .assert_problem(401, "unauthorized");

    // A password change ends every session of the account, the one that made it too.
    let changer = app.sign_in(&ada.email, MEMBER_PASSWORD).await;
    let elsewhere = app.sign_in(&ada.email, MEMBER_PASSWORD).await;
    let new_password = "a-brand-new-passphrase-9d2c";
    let changed = app
        .post_as(
            changer.token(),
            "/v1/me/password",
            json!({ "current_password": MEMBER_PASSWORD, "new_password": new_password }),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_refused(
        &app,
        &changer.access_token,
        &event_id,
        "the changing session",
    )
    .await;
    assert_refused(&app, &elsewhere.access_token, &event_id, "another session").await;
    for refresh in [&changer.refresh_token, &elsewhere.refresh_token] {
        app.post_as(
            None,
            "/v1/auth/refresh",
            json!({ "refresh_token": refresh }),
        )
        .await
        .assert_problem(401, "unauthorized");
    }
    app.post_as(
        None,
        "/v1/auth/login",
        json!({ "email": ada.email, "password": MEMBER_PASSWORD }),
    )
    .await
    .assert_problem(401, "invalid_credentials");
    let again = app.sign_in(&ada.email, new_password).await;
    let me = app.get_command_as(again.token(), "/v1/me").await;
    assert_eq!(me.status, 200, "{}", me.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_and_changing_the_password_end_sessions_for_good() {
    ended_sessions(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_signing_out_and_changing_the_password_end_sessions_for_good() {
    ended_sessions(Backend::Postgres).await;
}

/// Polls `GET /v1/me` with `token` until it is refused. A session ended in the database is
/// trusted from a process's short cache for at most a second; a minute is the deadline.
async fn until_refused(app: &TestApp, token: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = app.get_command_as(Some(token), "/v1/me").await;
        if reply.status == 401 {
            reply.assert_problem(401, "unauthorized");
            return;
        }
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(Instant::now() < deadline, "the token was never refused");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn refresh_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let bo = app.account("bo").await;

    let refreshed = app
        .post_as(
            None,
            "/v1/auth/refresh",
            json!({ "refresh_token": bo.refresh_token }),
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let access = refreshed.text("access_token");
    let refresh = refreshed.text("refresh_token");
    assert_ne!(
        refresh, bo.refresh_token,
        "a refresh token is exchanged, not reused"
    );
    assert_eq!(refreshed.text("user_id"), bo.user_id);
    let me = app.get_command_as(Some(&access), "/v1/me").await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["email"], bo.email.as_str());

    // The old one again: someone holds a copy. The whole session ends, for both holders.
    app.post_as(
        None,
        "/v1/auth/refresh",
        json!({ "refresh_token": bo.refresh_token }),
    )
    .await
    .assert_problem(401, "unauthorized");
    app.post_as(
        None,
        "/v1/auth/refresh",
        json!({ "refresh_token": refresh }),
    )
    .await
    .assert_problem(401, "unauthorized");
    until_refused(&app, &access).await;
    until_refused(&app, &bo.access_token).await;

    // Signing in again starts a new session.
    let again = app.sign_in(&bo.email, MEMBER_PASSWORD).await;
    let me = app.get_command_as(again.token(), "/v1/me").await;
    assert_eq!(me.status, 200, "{}", me.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_works_once_and_using_it_again_ends_the_session() {
    refresh_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_refresh_token_works_once_and_using_it_again_ends_the_session() {
    refresh_once(Backend::Postgres).await;
}

async fn api_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let event_id = an_event(&app).await;
    let venue_id = app.create_venue(100).await;
    let draft = app.draft_event(&venue_id, "Draft").await;
    let ticket = app.add_free_ticket_type(&event_id, "Token GA", 20).await;
    let reserve = |token: String| {
        let app = &app;
        let ticket = ticket.clone();
        let event_id = event_id.clone();
        async move {
            app.post_as(
                Some(&token),
                &format!("/v1/events/{event_id}/reservations"),
                json!({ "ticket_type_id": ticket, "quantity": 1,
                        "attendee": { "name": "Via token", "email": "token@example.com" } }),
            )
            .await
        }
    };

    // Another organization's organizer token works there…
    let other_owner = app.account("other-owner").await;
    let other_organization = app.found_organization(&other_owner, "Elsewhere").await;
    let foreign = app
        .api_token(
            &other_owner.access_token,
            &other_organization,
            &["organizer"],
        )
        .await;
    let theirs = app
        .post_as(Some(&foreign.token), "/v1/venues", venue())
        .await;
    assert_eq!(theirs.status, 201, "{}", theirs.body);
    assert_eq!(theirs.body["organization_id"], other_organization.as_str());
    // …and here, everything of ours does not exist for it.
    let head = app.head_position().await;
    let token = Some(foreign.token.as_str());
    for (method, path, body) in [
        (
            Method::POST,
            format!("/v1/events/{event_id}/reservations"),
            json!({ "ticket_type_id": ticket, "quantity": 1,
                    "attendee": { "name": "X", "email": "x@example.com" } }),
        ),
        (
            Method::POST,
            format!("/v1/events/{draft}/publish"),
            json!({}),
        ),
        (
            Method::PATCH,
            format!("/v1/venues/{venue_id}"),
            json!({ "name": "Mine now" }),
        ),
        (
            Method::POST,
            format!("/v1/events/{event_id}/check-ins"),
            json!({ "ticket_code": "a".repeat(32), "nonce": "n-1" }),
        ),
        (
            Method::POST,
            "/v1/venues".to_owned(),
            json!({ "name": "X", "city": "Y", "capacity": 5, "organization_id": app.organization_id }),
        ),
    ] {
        let url = format!("{}{path}", app.command_url);
        let reply = app
            .send(app.request_as(token, method.clone(), &url).json(&body))
            .await;
        assert_eq!(reply.status, 404, "{method} {path}: {}", reply.body);
        reply.assert_problem(404, "not_found");
    }
    let organization = app
        .get_command_as(token, &format!("/v1/organizations/{}", app.organization_id))
        .await;
    organization.assert_problem(404, "not_found");
    guest_list_as(&app, token, &event_id)
        .await
        .assert_problem(404, "not_found");
    assert_eq!(app.head_position().await, head, "nothing appended");

    // Our own tokens act with their roles, and only those; never as an account.
    let organizer = app
        .api_token(
            &app.owner.access_token,
            &app.organization_id,
            &["organizer"],
        )
        .await;
    let reserved = reserve(organizer.token.clone()).await;
    assert_eq!(reserved.status, 201, "{}", reserved.body);
    let door = app
        .api_token(
            &app.owner.access_token,
            &app.organization_id,
            &["door_staff"],
        )
        .await;
    let code = reserved.body["ticket_codes"][0].as_str().expect("a code");
    let scanned = app
        .post_as(
            Some(&door.token),
            &format!("/v1/events/{event_id}/check-ins"),
            json!({ "ticket_code": code, "nonce": "door-token-1" }),
        )
        .await;
    assert_eq!(scanned.status, 200, "{}", scanned.body);
    app.post_as(
        Some(&door.token),
        &format!("/v1/events/{draft}/publish"),
        json!({}),
    )
    .await
    .assert_problem(403, "forbidden");
    reserve(door.token.clone())
        .await
        .assert_problem(403, "forbidden");
    app.get_command_as(Some(&organizer.token), "/v1/me")
        .await
        .assert_problem(403, "forbidden");

    // A token with a secret that is not its own, and a revoked one, are refused.
    // `mqt_<id>_<secret>`: the id is hex, the secret base64url (which may hold `_` itself).
    let (id, _) = organizer
        .token
        .strip_prefix("mqt_")
        .and_then(|rest| rest.split_once('_'))
        .expect("mqt_<id>_<secret>");
    let wrong_secret = format!("mqt_{id}_{}", "A".repeat(43));
    reserve(wrong_secret)
        .await
        .assert_problem(401, "unauthorized");
    let revoked = app
        .send(app.client.delete(format!(
            "{}/v1/organizations/{}/tokens/{}",
            app.command_url, app.organization_id, organizer.token_id
        )))
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let head = app.head_position().await;
    reserve(organizer.token.clone())
        .await
        .assert_problem(401, "unauthorized");
    app.post_as(Some(&organizer.token), "/v1/venues", venue())
        .await
        .assert_problem(401, "unauthorized");
    guest_list_as(&app, Some(&organizer.token), &event_id)
        .await
        .assert_problem(401, "unauthorized");
    assert_eq!(app.head_position().await, head, "nothing appended");

    // The owner sees both tokens, when each was last used, and which is revoked; never a secret.
    let listed = app
        .send(app.client.get(format!(
            "{}/v1/organizations/{}/tokens",
            app.command_url, app.organization_id
        )))
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let items = listed.body["items"].as_array().expect("items");
    let find = |id: &str| {
        items
            .iter()
            .find(|t| t["token_id"] == id)
            .unwrap_or_else(|| panic!("token {id} in {}", listed.body))
    };
    assert!(!find(&organizer.token_id)["revoked_at"].is_null());
    assert!(!find(&organizer.token_id)["last_used_at"].is_null());
    assert!(find(&door.token_id)["revoked_at"].is_null());
    assert!(!listed.body.to_string().contains(&door.token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_tokens_act_only_in_their_organization_with_their_roles_until_revoked() {
    api_tokens(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_api_tokens_act_only_in_their_organization_with_their_roles_until_revoked() {
    api_tokens(Backend::Postgres).await;
}
