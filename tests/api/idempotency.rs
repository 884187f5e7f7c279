//! `Idempotency-Key`: a repeat returns the first answer and appends nothing.

use serde_json::json;

use crate::helpers::{Backend, spawn_app};

async fn repeated_commands(backend: Backend) {
    let app = spawn_app(backend).await;
    let venue_id = app.create_venue(100).await;
    let event_id = app.draft_event(&venue_id, "Once").await;
    let ticket = app.add_free_ticket_type(&event_id, "GA", 10).await;
    app.publish(&event_id).await;
    let url = format!("{}/v1/events/{event_id}/reservations", app.command_url);
    let body = json!({
        "ticket_type_id": ticket, "quantity": 2,
        "attendee": { "name": "Ada", "email": "ada@example.com" }
    });

    let first = app
        .send(
            app.client
                .post(&url)
                .header("Idempotency-Key", "k-1")
                .json(&body),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    let head = app.head_position().await;

    let again = app
        .send(
            app.client
                .post(&url)
                .header("Idempotency-Key", "k-1")
                .json(&body),
        )
        .await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body, first.body, "the first answer, replayed");
    assert_eq!(again.position, first.position);
    assert_eq!(app.head_position().await, head, "nothing appended");

    let other = app
        .send(
            app.client
                .post(&url)
                .header("Idempotency-Key", "k-1")
                .json(&json!({
                    "ticket_type_id": ticket, "quantity": 1,
                    "attendee": { "name": "Ada", "email": "ada@example.com" }
                })),
        )
        .await;
    other.assert_problem(422, "idempotency_key_reused");
    assert_eq!(app.head_position().await, head, "nothing appended");

    let capacity = app
        .get(&format!("/v1/events/{event_id}/capacity"), Some(head))
        .await;
    assert_eq!(capacity.body["confirmed"], 2, "two seats, not four");

    // A refusal is remembered too: the same request gets the same answer.
    let too_many = json!({
        "ticket_type_id": ticket, "quantity": 9,
        "attendee": { "name": "Bo", "email": "bo@example.com" }
    });
    let refused = app
        .send(
            app.client
                .post(&url)
                .header("Idempotency-Key", "k-2")
                .json(&too_many),
        )
        .await;
    refused.assert_problem(409, "sold_out");
    let replayed = app
        .send(
            app.client
                .post(&url)
                .header("Idempotency-Key", "k-2")
                .json(&too_many),
        )
        .await;
    replayed.assert_problem(409, "sold_out");
    assert_eq!(replayed.body, refused.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_idempotency_key_returns_the_first_answer_and_appends_nothing() {
    repeated_commands(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_repeated_idempotency_key_returns_the_first_answer_and_appends_nothing() {
    repeated_commands(Backend::Postgres).await;
}
