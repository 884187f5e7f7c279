//! What the server writes to its output never holds a password or a token: a whole run —
//! sign-up, sign-in, refresh, a wrong password, a password change, an API token made and
//! used, reservations, payment, check-in, the guest list, sign-out — at `debug` level, then
//! every secret of the run is looked for in stdout and stderr.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{
    AppOptions, Backend, MEMBER_PASSWORD, OWNER_PASSWORD, Session, TestApp, spawn_app_with,
};

/// Every secret a session shows: its tokens, and each part that identifies one on its own (a
/// JWT's claims and signature, a refresh token's random part).
fn session_secrets(session: &Session) -> Vec<String> {
    let mut secrets = vec![session.access_token.clone(), session.refresh_token.clone()];
    secrets.extend(session.access_token.split('.').skip(1).map(str::to_owned));
    if let Some(random) = session.refresh_token.strip_prefix("mqr_") {
        secrets.push(random.to_owned());
    }
    secrets
}

/// Runs the scenario, collecting every secret it uses.
async fn whole_run(app: &TestApp) -> Vec<String> {
    let mut secrets = vec![OWNER_PASSWORD.to_owned(), MEMBER_PASSWORD.to_owned()];
    secrets.extend(session_secrets(&app.owner));

    // Sign-up and sign-in of an attendee; a refresh.
    let ada = app.account("ada").await;
    secrets.extend(session_secrets(&ada));
    let refreshed = app
        .post_as(
            None,
            "/v1/auth/refresh",
            json!({ "refresh_token": ada.refresh_token }),
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let refreshed = Session {
        access_token: refreshed.text("access_token"),
        refresh_token: refreshed.text("refresh_token"),
        ..ada.clone()
    };
    secrets.extend(session_secrets(&refreshed));

    // A wrong password, then a password change and a sign-in with the new one.
    let wrong = "Not-the-password-at-all-3e1f";
    secrets.push(wrong.to_owned());
    app.post_as(
        None,
        "/v1/auth/login",
        json!({ "email": ada.email, "password": wrong }),
    )
    .await
    .assert_problem(401, "invalid_credentials");
    let new_password = "Ada-new-passphrase-for-the-log-test-51c0";
    secrets.push(new_password.to_owned());
    let changed = app
        .post_as(
            refreshed.token(),
            "/v1/me/password",
            json!({ "current_password": MEMBER_PASSWORD, "new_password": new_password }),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    let ada = app.sign_in(&ada.email, new_password).await;
    secrets.extend(session_secrets(&ada));

    // An API token, made by the owner and used by an integration.
    let integration = app
        .api_token(
            &app.owner.access_token,
            &app.organization_id,
            &["organizer"],
        )
        .await;
    secrets.push(integration.token.clone());
    // `mqt_<id>_<secret>`: the id is hex, the secret base64url (which may hold `_` itself).
    let (_, random) = integration
        .token
        .strip_prefix("mqt_")
        .and_then(|rest| rest.split_once('_'))
        .expect("mqt_<id>_<secret>");
    secrets.push(random.to_owned());
    let venue = app
        .post_as(
            Some(&integration.token),
            "/v1/venues",
            json!({ "name": "Logged hall", "city": "Gent", "capacity": 100 }),
        )
        .await;
    assert_eq!(venue.status, 201, "{}", venue.body);

    // Reservations, a payment, a check-in and the guest list.
    let event_id = app.draft_event(&venue.text("venue_id"), "Logged").await;
    let free = app.add_free_ticket_type(&event_id, "GA", 10).await;
    let paid = app.add_ticket_type(&event_id, "Paid", 1500, 10).await;
    app.publish(&event_id).await;
    let mine = app
        .post_as(
            ada.token(),
            &format!("/v1/events/{event_id}/reservations"),
            json!({ "ticket_type_id": free, "quantity": 1,
                    "attendee": { "name": "Ada", "email": "ada@example.com" } }),
        )
        .await;
    assert_eq!(mine.status, 201, "{}", mine.body);
    let held = app
        .post_as(
            Some(&integration.token),
            &format!("/v1/events/{event_id}/reservations"),
            json!({ "ticket_type_id": paid, "quantity": 1,
                    "attendee": { "name": "Bo", "email": "bo@example.com" } }),
        )
        .await;
    assert_eq!(held.status, 201, "{}", held.body);
    let paid = app
        .post_as(
            Some(&integration.token),
            &format!(
                "/v1/events/{event_id}/reservations/{}/pay",
                held.text("registration_id")
            ),
            json!({ "card_number": "4242424242424242" }),
        )
        .await;
    assert_eq!(paid.status, 200, "{}", paid.body);
    let code = mine.body["ticket_codes"][0].as_str().expect("a code");
    let scanned = app
        .post(
            &format!("/v1/events/{event_id}/check-ins"),
            json!({ "ticket_code": code, "nonce": "log-door-1" }),
        )
        .await;
    assert_eq!(scanned.status, 200, "{}", scanned.body);
    let guests = app
        .get(
            &format!("/v1/events/{event_id}/attendees"),
            scanned.position,
        )
        .await;
    assert_eq!(guests.status, 200, "{}", guests.body);

    // Refused credentials are not logged either.
    let refused = app
        .get_command_as(Some(&refreshed.access_token), "/v1/me")
        .await;
    refused.assert_problem(401, "unauthorized");

    // Signing out, and the refresh token of the ended session.
    let out = app
        .send(app.request_as(
            ada.token(),
            Method::POST,
            &format!("{}/v1/auth/logout", app.command_url),
        ))
        .await;
    assert_eq!(out.status, 200, "{}", out.body);
    app.post_as(
        None,
        "/v1/auth/refresh",
        json!({ "refresh_token": ada.refresh_token }),
    )
    .await
    .assert_problem(401, "unauthorized");
    secrets
}

async fn no_secret_in_the_output(backend: Backend) {
    let mut app = spawn_app_with(
        AppOptions::new(backend)
            .env("MARQUEE_LOG", "debug,sqlx=warn")
            .capture_output(),
    )
    .await;
    let secrets = whole_run(&app).await;
    let output = app.stop_and_collect_output();
    // The output is there to search: the server did log the run, at debug level.
    assert!(output.contains("marquee: command API on"), "{output}");
    assert!(output.contains("DEBUG"), "debug logging is on: {output}");
    assert!(
        output.contains("/v1/auth/login"),
        "requests are logged: {output}"
    );
    for secret in &secrets {
        assert!(secret.len() >= 10, "a secret worth looking for: {secret:?}");
        if let Some(at) = output.find(secret.as_str()) {
            let start = output[..at].rfind('\n').map_or(0, |n| n + 1);
            let end = output[at..].find('\n').map_or(output.len(), |n| at + n);
            panic!(
                "the output holds a secret ({} characters); the line:\n{}",
                secret.len(),
                &output[start..end]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_run_at_debug_level_logs_no_password_and_no_token() {
    no_secret_in_the_output(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_whole_run_at_debug_level_logs_no_password_and_no_token() {
    no_secret_in_the_output(Backend::Postgres).await;
}
