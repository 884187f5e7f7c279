//! The on-sale rush, black-box: many more attempts than seats, all at once, end with exactly
//! the capacity confirmed, on the embedded SQLite default and on Postgres with two command-api
//! processes taking the same event's reservations. Not timed: `marquee bench rush` measures.

use futures::future::join_all;
use serde_json::json;

use crate::helpers::{Backend, Reply, TestApp, base_env, spawn_app, spawn_marquee};

const SEATS: u32 = 150;
const ATTEMPTS: usize = 600;

/// A child process that is killed when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the rush's callers were told.
#[derive(Debug, Default)]
struct Tally {
    confirmed: usize,
    sold_out: usize,
    conflict: usize,
    highest_position: u64,
}

/// A published event with one free ticket type of [`SEATS`] seats.
async fn event_on_sale(app: &TestApp) -> (String, String) {
    let venue_id = app.create_venue(SEATS).await;
    let event_id = app.draft_event(&venue_id, "Rush night").await;
    let ticket_type_id = app.add_free_ticket_type(&event_id, "GA", SEATS).await;
    app.publish(&event_id).await;
    (event_id, ticket_type_id)
}

/// [`ATTEMPTS`] single-seat reservations at once, spread over `command_urls`.
async fn rush(
    app: &TestApp,
    command_urls: &[String],
    event_id: &str,
    ticket_type_id: &str,
) -> Tally {
    let attempts = (0..ATTEMPTS).map(|n| {
        let url = format!(
            "{}/v1/events/{event_id}/reservations",
            command_urls[n % command_urls.len()]
        );
        let body = json!({
            "ticket_type_id": ticket_type_id,
            "quantity": 1,
            "attendee": { "name": format!("Fan {n}"), "email": format!("fan{n}@example.com") },
        });
        Reply::send(app.client.post(url).json(&body))
    });
    let mut tally = Tally::default();
    for reply in join_all(attempts).await {
        match reply.status {
            201 => {
                assert_eq!(reply.body["status"], "confirmed", "{}", reply.body);
                assert_eq!(reply.body["ticket_codes"].as_array().map(Vec::len), Some(1));
                tally.confirmed += 1;
                tally.highest_position = tally
                    .highest_position
                    .max(reply.position.expect("position"));
            }
            409 if reply.body["code"] == "sold_out" => {
                reply.assert_problem(409, "sold_out");
                tally.sold_out += 1;
            }
            // Two processes racing for one stream may exhaust their retries; the client may
            // retry. It must never be anything else.
            409 => {
                reply.assert_problem(409, "conflict");
                tally.conflict += 1;
            }
            other => panic!("unexpected answer {other}: {}", reply.body),
        }
    }
    tally
}

/// The rush's outcome, checked from the callers' side and from the read model.
async fn assert_exactly_full(app: &TestApp, event_id: &str, tally: &Tally) {
    eprintln!("rush: {tally:?}");
    assert_eq!(tally.confirmed, SEATS as usize, "{tally:?}");
    assert_eq!(tally.confirmed + tally.sold_out + tally.conflict, ATTEMPTS);
    let capacity = app
        .get(
            &format!("/v1/events/{event_id}/capacity"),
            Some(tally.highest_position),
        )
        .await;
    assert_eq!(capacity.status, 200, "{}", capacity.body);
    assert_eq!(capacity.body["confirmed"], SEATS, "{}", capacity.body);
    assert_eq!(capacity.body["available"], 0, "{}", capacity.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rush_confirms_exactly_the_capacity() {
    let app = spawn_app(Backend::Sqlite).await;
    let (event_id, ticket_type_id) = event_on_sale(&app).await;
    let tally = rush(
        &app,
        std::slice::from_ref(&app.command_url),
        &event_id,
        &ticket_type_id,
    )
    .await;
    assert_eq!(
        tally.conflict, 0,
        "one process never conflicts with itself: {tally:?}"
    );
    assert_exactly_full(&app, &event_id, &tally).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_rush_on_two_command_api_processes_confirms_exactly_the_capacity() {
    let app = spawn_app(Backend::Postgres).await;
    let database_url = app.database_url().expect("a Postgres app").to_owned();
    let args = [
        "command-api",
        "--addr",
        "127.0.0.1:0",
        "--database-url",
        &database_url,
    ]
    .map(String::from);
    // The same settings as the first (no rate limits; the owner exists already, so this one
    // opens no account), and the same database: the owner's token works on both.
    let (second, announced) = spawn_marquee(&args, &base_env(), &["command API on "]);
    let _second = KillOnDrop(second);
    let (event_id, ticket_type_id) = event_on_sale(&app).await;
    let urls = [app.command_url.clone(), announced[0].clone()];
    let tally = rush(&app, &urls, &event_id, &ticket_type_id).await;
    assert_exactly_full(&app, &event_id, &tally).await;
}
