//! Bad input answers 4xx problem+json, never 500, and appends nothing.

use serde_json::json;

use crate::helpers::{Backend, TestApp, spawn_app};

/// Sends `request`, expects the problem, and checks the log did not grow.
async fn refused(app: &TestApp, request: reqwest::RequestBuilder, status: u16, code: &str) {
    let head = app.head_position().await;
    let reply = app.send(request).await;
    reply.assert_problem(status, code);
    assert!(reply.position.is_none(), "a refusal reports no position");
    assert_eq!(
        app.head_position().await,
        head,
        "a refused command appends nothing"
    );
}

async fn bad_input_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let venue_id = app.create_venue(100).await;
    let event_id = app.draft_event(&venue_id, "Careful").await;
    let ticket = app.add_free_ticket_type(&event_id, "GA", 10).await;
    app.publish(&event_id).await;
    let c = &app.client;
    let url = |path: &str| format!("{}{path}", app.command_url);
    let reserve_url = url(&format!("/v1/events/{event_id}/reservations"));

    // Malformed JSON.
    refused(
        &app,
        c.post(url("/v1/venues"))
            .header("content-type", "application/json")
            .body("{\"name\": \"x\","),
        400,
        "malformed_json",
    )
    .await;
    // Unknown field.
    refused(
        &app,
        c.post(url("/v1/venues"))
            .json(&json!({ "name": "x", "city": "y", "capacity": 5, "colour": "red" })),
        422,
        "validation_failed",
    )
    .await;
    // Negative and zero quantities.
    for quantity in [json!(-1), json!(0), json!(1.5), json!("2")] {
        refused(
            &app,
            c.post(&reserve_url).json(&json!({
                "ticket_type_id": ticket, "quantity": quantity,
                "attendee": { "name": "A", "email": "a@example.com" }
            })),
            422,
            "validation_failed",
        )
        .await;
    }
    // Zero and negative capacities.
    refused(
        &app,
        c.post(url("/v1/venues"))
            .json(&json!({ "name": "x", "city": "y", "capacity": 0 })),
        422,
        "validation_failed",
    )
    .await;
    refused(
        &app,
        c.put(url(&format!("/v1/events/{event_id}/capacity")))
            .json(&json!({ "capacity": -5 })),
        422,
        "validation_failed",
    )
    .await;
    // A body over 64 KiB.
    let huge = "x".repeat(70 * 1024);
    refused(
        &app,
        c.post(url("/v1/venues"))
            .json(&json!({ "name": huge, "city": "y", "capacity": 5 })),
        413,
        "payload_too_large",
    )
    .await;
    // Wrong content type.
    refused(
        &app,
        c.post(url("/v1/venues"))
            .header("content-type", "text/plain")
            .body("{\"name\":\"x\",\"city\":\"y\",\"capacity\":5}"),
        415,
        "unsupported_media_type",
    )
    .await;
    // Unknown ids: event, ticket type, registration, venue, and ids that are not UUIDs.
    let unknown = "0192f0c1-0000-7000-8000-000000000000";
    refused(
        &app,
        c.post(url(&format!("/v1/events/{unknown}/reservations")))
            .json(&json!({
                "ticket_type_id": ticket, "quantity": 1,
                "attendee": { "name": "A", "email": "a@example.com" }
            })),
        404,
        "not_found",
    )
    .await;
    refused(
        &app,
        c.post(&reserve_url).json(&json!({
            "ticket_type_id": unknown, "quantity": 1,
            "attendee": { "name": "A", "email": "a@example.com" }
        })),
        404,
        "not_found",
    )
    .await;
    refused(
        &app,
        c.post(url(&format!(
            "/v1/events/{event_id}/reservations/{unknown}/cancel"
        ))),
        404,
        "not_found",
    )
    .await;
    refused(
        &app,
        c.post(url("/v1/events/not-a-uuid/publish")),
        404,
        "not_found",
    )
    .await;
    refused(
        &app,
        c.post(url("/v1/events")).json(&json!({
            "venue_id": unknown, "title": "T", "category": "c",
            "starts_at": "2030-01-01T18:00:00Z", "ends_at": "2030-01-01T20:00:00Z"
        })),
        422,
        "validation_failed",
    )
    .await;
    // Bad values the domain refuses.
    refused(
        &app,
        c.post(&reserve_url).json(&json!({
            "ticket_type_id": ticket, "quantity": 1,
            "attendee": { "name": "A", "email": "not-an-email" }
        })),
        422,
        "validation_failed",
    )
    .await;
    refused(
        &app,
        c.post(url("/v1/events")).json(&json!({
            "venue_id": venue_id, "title": "T", "category": "c",
            "starts_at": "2030-01-01T20:00:00Z", "ends_at": "2030-01-01T18:00:00Z"
        })),
        422,
        "validation_failed",
    )
    .await;
    refused(
        &app,
        c.post(url("/v1/events")).json(&json!({
            "venue_id": venue_id, "title": "T", "category": "c",
            "starts_at": "not a time", "ends_at": "2030-01-01T18:00:00Z"
        })),
        422,
        "validation_failed",
    )
    .await;
    refused(
        &app,
        c.post(url("/v1/events")).json(&json!({
            "venue_id": venue_id, "title": "T", "category": "c", "capacity": 101,
            "starts_at": "2030-01-01T18:00:00Z", "ends_at": "2030-01-01T20:00:00Z"
        })),
        422,
        "capacity_exceeds_venue",
    )
    .await;
    refused(
        &app,
        c.post(&reserve_url).json(&json!({
            "ticket_type_id": ticket, "quantity": 11,
            "attendee": { "name": "A", "email": "a@example.com" }
        })),
        422,
        "order_limit_exceeded",
    )
    .await;
    // Unknown route and wrong method.
    refused(&app, c.post(url("/v1/nothing-here")), 404, "not_found").await;
    refused(&app, c.delete(url("/v1/venues")), 405, "method_not_allowed").await;
    // Publishing twice is a conflict, not a crash.
    refused(
        &app,
        c.post(url(&format!("/v1/events/{event_id}/publish"))),
        409,
        "invalid_state",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_answers_problem_json_and_appends_nothing() {
    bad_input_is_refused(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_bad_input_answers_problem_json_and_appends_nothing() {
    bad_input_is_refused(Backend::Postgres).await;
}
