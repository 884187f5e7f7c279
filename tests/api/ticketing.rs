//! Ticketing in full, black-box: paid holds racing for the last seats, payments that succeed,
//! fail and arrive late, the waitlist taking freed seats in join order, a hold's expiry across a
//! restart, and two doors scanning one ticket at once. On SQLite and on Postgres. Nothing here
//! is timed: waits poll the query API until a state is reached (with a generous deadline).

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{Backend, Reply, TEST_WEBHOOK_SECRET, TestApp, spawn_app};

/// Seats of the paid ticket type in the rush.
const SEATS: usize = 50;
/// Reservation attempts in the rush.
const ATTEMPTS: usize = 200;
/// People who join the waitlist after the rush, in this order.
const WAITING: usize = 25;
/// How long holds last in these tests: long enough to pay, short enough to watch them expire.
const HOLD_SECONDS: u64 = 6;

/// A venue and a published event with one paid ticket type of `seats` seats.
async fn paid_event(app: &TestApp, seats: usize, hold_seconds: u64) -> (String, String) {
    let venue_id = app.create_venue(1000).await;
    let starts = chrono::Utc::now() + chrono::Duration::days(20);
    let event = app
        .post(
            "/v1/events",
            json!({
                "venue_id": venue_id, "title": "Paid night", "category": "concert",
                "starts_at": starts, "ends_at": starts + chrono::Duration::hours(3),
                "max_per_order": 1, "hold_seconds": hold_seconds, "offer_seconds": 600,
            }),
        )
        .await;
    assert_eq!(event.status, 201, "{}", event.body);
    let event_id = text(&event.body["event_id"]);
    let ticket_type = app
        .post(
            &format!("/v1/events/{event_id}/ticket-types"),
            json!({ "name": "Standing", "price": { "amount_minor": 2500, "currency": "EUR" }, "quantity": seats }),
        )
        .await;
    assert_eq!(ticket_type.status, 201, "{}", ticket_type.body);
    app.publish(&event_id).await;
    (event_id, text(&ticket_type.body["ticket_type_id"]))
}

fn text(value: &Value) -> String {
    value.as_str().expect("a string").to_owned()
}

async fn pay(app: &TestApp, event_id: &str, registration_id: &str, card: &str) -> Reply {
    app.post(
        &format!("/v1/events/{event_id}/reservations/{registration_id}/pay"),
        json!({ "card_number": card }),
    )
    .await
}

/// The provider settles an asynchronous payment (the test gateway plays the provider and
/// delivers its signed webhook).
async fn settle(app: &TestApp, event_id: &str, registration_id: &str, payment_id: &str) -> Reply {
    app.post(
        "/v1/payments/test-gateway/settle",
        json!({ "payment_id": payment_id, "event_id": event_id, "registration_id": registration_id, "succeeded": true }),
    )
    .await
}

/// The ticket type's row of the capacity read model, once the query API has applied `at`.
async fn capacity(app: &TestApp, event_id: &str, at: Option<u64>) -> Value {
    let reply = app
        .get(&format!("/v1/events/{event_id}/capacity"), at)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["ticket_types"][0].clone()
}

/// Polls the capacity until `done` holds; panics with the last row after a minute.
async fn capacity_until(app: &TestApp, event_id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let row = capacity(app, event_id, None).await;
        if done(&row) {
            return row;
        }
        assert!(Instant::now() < deadline, "capacity never got there: {row}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every registration on the guest list (all pages), once the query API has applied `at`.
async fn guest_list(app: &TestApp, event_id: &str, at: u64) -> Vec<Value> {
    let mut guests = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/v1/events/{event_id}/attendees?limit=100&cursor={cursor}"),
            None => format!("/v1/events/{event_id}/attendees?limit=100"),
        };
        let reply = app.get(&path, Some(at)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        guests.extend(
            reply.body["items"]
                .as_array()
                .expect("items")
                .iter()
                .cloned(),
        );
        match reply.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return guests,
        }
    }
}

async fn paid_rush(backend: Backend) {
    let app = spawn_app(backend).await;
    let (event_id, ticket_type_id) = paid_event(&app, SEATS, HOLD_SECONDS).await;

    // 200 people at once for 50 seats: exactly 50 holds.
    let replies =
        join_all((0..ATTEMPTS).map(|n| app.reserve(&event_id, &ticket_type_id, 1, n))).await;
    let mut holds = Vec::new();
    let mut turned_away = Vec::new();
    for (n, reply) in replies.into_iter().enumerate() {
        match reply.status {
            201 => {
                assert_eq!(reply.body["status"], "held", "{}", reply.body);
                assert_eq!(reply.body["price"]["amount_minor"], 2500);
                holds.push(text(&reply.body["registration_id"]));
            }
            409 => {
                reply.assert_problem(409, "sold_out");
                turned_away.push(n);
            }
            other => panic!("unexpected {other}: {}", reply.body),
        }
    }
    assert_eq!(holds.len(), SEATS, "exactly the seats are held");

    // 25 of those turned away join the waitlist, one after the other: that is the line.
    let mut line = Vec::new();
    for &n in turned_away.iter().take(WAITING) {
        let joined = app
            .post(
                &format!("/v1/events/{event_id}/waitlist"),
                json!({
                    "ticket_type_id": ticket_type_id,
                    "attendee": { "name": format!("Guest {n}"), "email": format!("guest{n}@example.com") },
                }),
            )
            .await;
        assert_eq!(joined.status, 201, "{}", joined.body);
        assert_eq!(joined.body["status"], "waiting");
        line.push(text(&joined.body["entry_id"]));
    }

    // The holders pay, all at once: 20 succeed, 10 are declined (and will expire), 10 are
    // confirmed asynchronously in time, 10 are confirmed asynchronously too late.
    let cards: Vec<&str> = (0..SEATS)
        .map(|i| match i {
            0..20 => "4242424242424242",
            20..30 => "4000000000000002",
            _ => "4000000000000077",
        })
        .collect();
    let paid = join_all(
        holds
            .iter()
            .zip(&cards)
            .map(|(registration, card)| pay(&app, &event_id, registration, card)),
    )
    .await;
    let mut pending = Vec::new();
    for (i, reply) in paid.iter().enumerate() {
        match i {
            0..20 => {
                assert_eq!(reply.status, 200, "{}", reply.body);
                assert_eq!(reply.body["status"], "confirmed");
            }
            20..30 => reply.assert_problem(402, "payment_declined"),
            _ => {
                assert_eq!(reply.status, 202, "{}", reply.body);
                assert_eq!(reply.body["status"], "payment_pending");
                pending.push((holds[i].clone(), text(&reply.body["payment_id"])));
            }
        }
    }
    let (in_time, too_late) = pending.split_at(10);
    for (registration, payment) in in_time {
        let settled = settle(&app, &event_id, registration, payment).await;
        assert_eq!(settled.status, 200, "{}", settled.body);
        assert_eq!(settled.body["outcome"], "confirmed", "{}", settled.body);
    }

    // The 20 unpaid holds expire (the scheduler) and their seats go to the first 20 in line.
    let row = capacity_until(&app, &event_id, |row| {
        row["held"] == 0 && row["offered"] == 20
    })
    .await;
    assert_eq!(row["confirmed"], 30, "{row}");
    assert_eq!(row["available"], 0, "{row}");
    assert_eq!(row["waitlist"], 5, "{row}");

    // The late payments find their seats gone: refunded, never overbooked.
    for (registration, payment) in too_late {
        let settled = settle(&app, &event_id, registration, payment).await;
        assert_eq!(settled.status, 200, "{}", settled.body);
        assert_eq!(
            settled.body["outcome"],
            json!({ "refund_due": "late_payment" }),
            "{}",
            settled.body
        );
    }

    // Offers went in join order: the first 20 can claim, the last 5 are still waiting.
    for (place, entry) in line.iter().enumerate() {
        let claimed = app
            .post(
                &format!("/v1/events/{event_id}/waitlist/{entry}/claim"),
                json!({}),
            )
            .await;
        if place < 20 {
            assert_eq!(claimed.status, 201, "place {place}: {}", claimed.body);
            assert_eq!(claimed.body["status"], "held");
            let registration = text(&claimed.body["registration_id"]);
            let paid = pay(&app, &event_id, &registration, "4242424242424242").await;
            assert_eq!(paid.status, 200, "{}", paid.body);
        } else {
            claimed.assert_problem(409, "offer_not_made");
        }
    }

    let head = app.head_position().await;
    let row = capacity(&app, &event_id, Some(head)).await;
    assert_eq!(row["confirmed"], 50, "{row}");
    assert_eq!(row["held"], 0, "{row}");
    assert_eq!(row["offered"], 0, "{row}");
    assert_eq!(row["available"], 0, "{row}");

    // Every one of the rush's holds ended confirmed or expired; never more than 50 confirmed.
    let guests = guest_list(&app, &event_id, head).await;
    let confirmed = guests.iter().filter(|g| g["status"] == "confirmed").count();
    assert_eq!(confirmed, SEATS, "confirmed registrations");
    for hold in &holds {
        let guest = guests
            .iter()
            .find(|g| g["registration_id"] == hold.as_str())
            .expect("every hold is on the guest list");
        let status = guest["status"].as_str().unwrap_or_default();
        assert!(
            status == "confirmed" || status == "expired",
            "hold {hold} ended {status}"
        );
    }
    let expired = guests.iter().filter(|g| g["status"] == "expired").count();
    assert_eq!(expired, 20, "declined and late holds expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_rush_never_confirms_more_than_the_seats_and_freed_seats_go_to_the_line_in_order() {
    paid_rush(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_paid_rush_never_confirms_more_than_the_seats_and_freed_seats_go_to_the_line_in_order()
 {
    paid_rush(Backend::Postgres).await;
}

async fn hold_expires_across_a_restart(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let (event_id, ticket_type_id) = paid_event(&app, 2, 3).await;
    let held = app.reserve(&event_id, &ticket_type_id, 1, 1).await;
    assert_eq!(held.status, 201, "{}", held.body);
    let row = capacity(&app, &event_id, held.position).await;
    assert_eq!(row["held"], 1, "{row}");

    // Killed in the middle of the hold; its timer lives in the read models, not in memory.
    app.restart().await;
    let row = capacity_until(&app, &event_id, |row| row["held"] == 0).await;
    assert_eq!(row["available"], 2, "{row}");
    let head = app.head_position().await;
    let guests = guest_list(&app, &event_id, head).await;
    assert_eq!(guests.len(), 1);
    assert_eq!(guests[0]["status"], "expired", "{}", guests[0]);

    // The expired hold can no longer be paid; its seat can be reserved again.
    let registration = text(&held.body["registration_id"]);
    pay(&app, &event_id, &registration, "4242424242424242")
        .await
        .assert_problem(409, "hold_expired");
    let again = app.reserve(&event_id, &ticket_type_id, 1, 2).await;
    assert_eq!(again.status, 201, "{}", again.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holds_expiry_survives_a_restart_in_the_middle_of_it() {
    hold_expires_across_a_restart(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_holds_expiry_survives_a_restart_in_the_middle_of_it() {
    hold_expires_across_a_restart(Backend::Postgres).await;
}

async fn two_doors(backend: Backend) {
    let app = spawn_app(backend).await;
    let venue_id = app.create_venue(100).await;
    let event_id = app.draft_event(&venue_id, "Doors").await;
    let ticket_type_id = app.add_free_ticket_type(&event_id, "GA", 10).await;
    app.publish(&event_id).await;
    let reserved = app.reserve(&event_id, &ticket_type_id, 2, 7).await;
    assert_eq!(reserved.status, 201, "{}", reserved.body);
    let codes: Vec<String> = reserved.body["ticket_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(text)
        .collect();
    let check_ins = format!("/v1/events/{event_id}/check-ins");
    let scan = |code: &str, nonce: &str| {
        app.post(&check_ins, json!({ "ticket_code": code, "nonce": nonce }))
    };

    // The same ticket at two doors at the same moment: one is let in, one is told.
    let (north, south) = tokio::join!(scan(&codes[0], "north-1"), scan(&codes[0], "south-1"));
    let (ok, refused, ok_nonce) = match (north.status, south.status) {
        (200, 409) => (north, south, "north-1"),
        (409, 200) => (south, north, "south-1"),
        other => panic!(
            "expected one 200 and one 409, got {other:?}: {} / {}",
            north.body, south.body
        ),
    };
    assert_eq!(ok.body["result"], "ok");
    assert_eq!(ok.body["attendee"]["name"], "Guest 7");
    assert_eq!(ok.body["ticket_type"]["name"], "GA");
    refused.assert_problem(409, "already_redeemed");
    assert_eq!(refused.body["first_scanned_at"], ok.body["scanned_at"]);

    // The winning scan uploaded again is the same scan with the same answer.
    let repeat = scan(&codes[0], ok_nonce).await;
    assert_eq!(repeat.status, 200, "{}", repeat.body);
    assert_eq!(repeat.body["scanned_at"], ok.body["scanned_at"]);

    // An offline scan keeps its own time; an unknown code is invalid; a reverted check-in can
    // be scanned again.
    let offline = app
        .post(
            &format!("/v1/events/{event_id}/check-ins"),
            json!({ "ticket_code": codes[1], "nonce": "north-2", "scanned_at": "2026-01-01T10:00:00Z" }),
        )
        .await;
    assert_eq!(offline.status, 200, "{}", offline.body);
    assert_eq!(offline.body["scanned_at"], "2026-01-01T10:00:00Z");
    scan("f".repeat(32).as_str(), "north-3")
        .await
        .assert_problem(404, "invalid");
    let reverted = app
        .post(
            &format!("/v1/events/{event_id}/check-ins/{}/revert", codes[0]),
            json!({}),
        )
        .await;
    assert_eq!(reverted.status, 200, "{}", reverted.body);
    let rescanned = scan(&codes[0], "north-4").await;
    assert_eq!(rescanned.status, 200, "{}", rescanned.body);

    // The guest list shows both tickets checked in.
    let head = app.head_position().await;
    let guests = guest_list(&app, &event_id, head).await;
    let tickets = guests[0]["tickets"].as_array().expect("tickets");
    assert!(
        tickets.iter().all(|t| !t["checked_in_at"].is_null()),
        "{}",
        guests[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_doors_scanning_one_ticket_at_once_let_it_in_once() {
    two_doors(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_doors_scanning_one_ticket_at_once_let_it_in_once() {
    two_doors(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_paid_registration_refunds_it_and_the_scheduler_completes_the_refund() {
    let app = spawn_app(Backend::Sqlite).await;
    let (event_id, ticket_type_id) = paid_event(&app, 5, 600).await;
    let held = app.reserve(&event_id, &ticket_type_id, 1, 1).await;
    let registration = text(&held.body["registration_id"]);
    let paid = pay(&app, &event_id, &registration, "4242424242424242").await;
    assert_eq!(paid.status, 200, "{}", paid.body);
    let cancelled = app
        .post(
            &format!("/v1/events/{event_id}/reservations/{registration}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(cancelled.body["refund"]["amount"]["amount_minor"], 2500);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let head = app.head_position().await;
        let guests = guest_list(&app, &event_id, head).await;
        if guests[0]["payment"]["status"] == "refunded" {
            assert_eq!(guests[0]["status"], "cancelled");
            break;
        }
        assert!(Instant::now() < deadline, "never refunded: {}", guests[0]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let row = capacity(&app, &event_id, None).await;
    assert_eq!(row["available"], 5, "{row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_webhooks_with_bad_or_stale_signatures_are_refused_and_change_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    let (event_id, ticket_type_id) = paid_event(&app, 5, 600).await;
    let held = app.reserve(&event_id, &ticket_type_id, 1, 1).await;
    let registration = text(&held.body["registration_id"]);
    let pending = pay(&app, &event_id, &registration, "4000000000000077").await;
    assert_eq!(pending.status, 202, "{}", pending.body);
    let payment = text(&pending.body["payment_id"]);
    let body = json!({
        "payment_id": payment, "event_id": event_id, "registration_id": registration,
        "status": "succeeded", "amount": { "amount_minor": 2500, "currency": "EUR" },
    })
    .to_string();
    let webhook = |signature: String, body: String| {
        app.send(
            app.client
                .post(format!("{}/v1/payments/webhook", app.command_url))
                .header("content-type", "application/json")
                .header("Marquee-Signature", signature)
                .body(body),
        )
    };
    let now = chrono::Utc::now().timestamp();
    let before = app.head_position().await;
    for signature in [
        String::new(),
        "garbage".to_owned(),
        marquee_payments::webhook::sign(b"another secret", now, body.as_bytes()),
        marquee_payments::webhook::sign(TEST_WEBHOOK_SECRET.as_bytes(), now - 301, body.as_bytes()),
        marquee_payments::webhook::sign(
            TEST_WEBHOOK_SECRET.as_bytes(),
            now,
            b"{\"tampered\":true}",
        ),
    ] {
        webhook(signature, body.clone())
            .await
            .assert_problem(401, "invalid_signature");
    }
    assert_eq!(
        app.head_position().await,
        before,
        "a refused webhook appended nothing"
    );

    // Signed right, it confirms the hold; delivered again, it changes nothing.
    let signature =
        marquee_payments::webhook::sign(TEST_WEBHOOK_SECRET.as_bytes(), now, body.as_bytes());
    let first = webhook(signature.clone(), body.clone()).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["outcome"], "confirmed");
    let again = webhook(signature, body).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["outcome"], "already_recorded");
    assert_eq!(again.body["position"], first.body["position"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_events_at_one_venue_may_not_overlap_and_cancelling_frees_the_slot() {
    let app = spawn_app(Backend::Sqlite).await;
    let venue_id = app.create_venue(100).await;
    let draft = |title: &str, starts: &str, ends: &str| {
        app.post(
            "/v1/events",
            json!({ "venue_id": venue_id, "title": title, "category": "x", "starts_at": starts, "ends_at": ends }),
        )
    };
    let first = draft("First", "2031-03-01T18:00:00Z", "2031-03-01T21:00:00Z").await;
    assert_eq!(first.status, 201, "{}", first.body);
    let first_id = text(&first.body["event_id"]);
    let clash = draft("Clash", "2031-03-01T20:00:00Z", "2031-03-01T23:00:00Z").await;
    clash.assert_problem(409, "schedule_conflict");
    assert_eq!(clash.body["conflicting_event_id"], first_id.as_str());
    let after = draft("After", "2031-03-01T21:00:00Z", "2031-03-01T23:00:00Z").await;
    assert_eq!(
        after.status, 201,
        "an event may start when another ends: {}",
        after.body
    );
    let after_id = text(&after.body["event_id"]);

    // Rescheduling into another event's slot is refused too; moving within its own is fine.
    app.post(
        &format!("/v1/events/{after_id}/reschedule"),
        json!({ "starts_at": "2031-03-01T19:00:00Z", "ends_at": "2031-03-01T22:00:00Z" }),
    )
    .await
    .assert_problem(409, "schedule_conflict");
    let moved = app
        .post(
            &format!("/v1/events/{after_id}/reschedule"),
            json!({ "starts_at": "2031-03-01T21:30:00Z", "ends_at": "2031-03-01T23:30:00Z" }),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);

    // A cancelled event frees its slot.
    let cancelled = app
        .post(&format!("/v1/events/{first_id}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    let retry = draft(
        "Clash again",
        "2031-03-01T18:00:00Z",
        "2031-03-01T21:00:00Z",
    )
    .await;
    assert_eq!(retry.status, 201, "{}", retry.body);

    // Concurrent drafts for one slot: exactly one wins.
    let racers = join_all((0..8).map(|n| {
        draft(
            &format!("Racer {n}"),
            "2031-04-01T18:00:00Z",
            "2031-04-01T20:00:00Z",
        )
    }))
    .await;
    let won = racers.iter().filter(|r| r.status == 201).count();
    assert_eq!(
        won,
        1,
        "{:?}",
        racers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for racer in racers.iter().filter(|r| r.status != 201) {
        racer.assert_problem(409, "schedule_conflict");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_questions_are_asked_and_their_answers_checked() {
    let app = spawn_app(Backend::Sqlite).await;
    let venue_id = app.create_venue(100).await;
    let event_id = app.draft_event(&venue_id, "Asked").await;
    let set = app
        .send(
            app.client
                .put(format!("{}/v1/events/{event_id}/questions", app.command_url))
                .json(&json!({ "questions": [
                    { "id": "diet", "label": "Diet", "type": "single_choice", "options": ["none", "vegan"], "required": true },
                    { "id": "country", "label": "Country", "type": "country" },
                    { "id": "age", "label": "Age", "type": "age_range" },
                    { "id": "topics", "label": "Topics", "type": "multiple_choice", "options": ["rust", "sql"] },
                ] })),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    let ticket_type_id = app.add_free_ticket_type(&event_id, "GA", 10).await;
    app.publish(&event_id).await;
    let reservations = format!("/v1/events/{event_id}/reservations");
    let reserve = |answers: Value| {
        app.post(
            &reservations,
            json!({
                "ticket_type_id": ticket_type_id, "quantity": 1,
                "attendee": { "name": "Ada", "email": "ada@example.com" }, "answers": answers,
            }),
        )
    };
    let missing = reserve(json!({})).await;
    missing.assert_problem(422, "validation_failed");
    assert_eq!(missing.body["field"], "answers.diet");
    let wrong = reserve(json!({ "diet": "meat" })).await;
    wrong.assert_problem(422, "validation_failed");
    let country = reserve(json!({ "diet": "none", "country": "XX" })).await;
    assert_eq!(country.body["field"], "answers.country", "{}", country.body);
    let ok =
        reserve(json!({ "diet": "vegan", "country": "de", "age": "25_34", "topics": ["rust"] }))
            .await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    let guests = guest_list(&app, &event_id, ok.position.expect("position")).await;
    assert_eq!(
        guests[0]["answers"],
        json!({ "diet": "vegan", "country": "DE", "age": "25_34", "topics": ["rust"] })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_the_ticketing_routes_is_a_problem_with_a_stable_code_and_appends_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    let (event_id, ticket_type_id) = paid_event(&app, 1, 600).await;
    let held = app.reserve(&event_id, &ticket_type_id, 1, 1).await;
    let registration = text(&held.body["registration_id"]);
    let venue_id = app.create_venue(10).await;
    let free_event = app.draft_event(&venue_id, "Free").await;
    let free_type = app.add_free_ticket_type(&free_event, "GA", 5).await;
    app.publish(&free_event).await;
    let free = app.reserve(&free_event, &free_type, 1, 2).await;
    let free_registration = text(&free.body["registration_id"]);
    let unknown = uuid::Uuid::now_v7();
    let e = &event_id;
    let cases: Vec<(String, Value, u16, &str)> = vec![
        (
            format!("/v1/events/{e}/reservations/{registration}/pay"),
            json!({ "card_number": "1234" }),
            422,
            "validation_failed",
        ),
        (
            format!("/v1/events/{e}/reservations/{registration}/pay"),
            json!({}),
            422,
            "validation_failed",
        ),
        (
            format!("/v1/events/{e}/reservations/{registration}/pay"),
            json!({ "card_number": "4242424242424242", "tip": 5 }),
            422,
            "validation_failed",
        ),
        (
            format!("/v1/events/{e}/reservations/{unknown}/pay"),
            json!({ "card_number": "4242424242424242" }),
            404,
            "not_found",
        ),
        (
            format!("/v1/events/{free_event}/reservations/{free_registration}/pay"),
            json!({ "card_number": "4242424242424242" }),
            409,
            "not_payable",
        ),
        (
            format!("/v1/events/{e}/reservations/{registration}/pay"),
            json!({ "card_number": "4000000000000119" }),
            503,
            "payment_provider_unavailable",
        ),
        (
            format!("/v1/events/{e}/waitlist"),
            json!({ "ticket_type_id": ticket_type_id, "quantity": 0, "attendee": { "name": "A", "email": "a@example.com" } }),
            422,
            "validation_failed",
        ),
        (
            format!("/v1/events/{e}/waitlist"),
            json!({ "ticket_type_id": unknown, "attendee": { "name": "A", "email": "a@example.com" } }),
            404,
            "not_found",
        ),
        (
            format!("/v1/events/{free_event}/waitlist"),
            json!({ "ticket_type_id": free_type, "attendee": { "name": "A", "email": "a@example.com" } }),
            409,
            "seats_available",
        ),
        (
            format!("/v1/events/{e}/waitlist/{unknown}/claim"),
            json!({}),
            404,
            "not_found",
        ),
        (
            format!("/v1/events/{e}/waitlist/not-a-uuid/leave"),
            json!({}),
            404,
            "not_found",
        ),
        (
            format!("/v1/events/{e}/check-ins"),
            json!({ "ticket_code": "x", "nonce": "" }),
            422,
            "validation_failed",
        ),
        (
            format!("/v1/events/{e}/check-ins"),
            json!({ "ticket_code": "x", "nonce": "n".repeat(200) }),
            422,
            "validation_failed",
        ),
        (
            format!("/v1/events/{e}/check-ins"),
            json!({ "ticket_code": "x", "nonce": "n1", "scanned_at": "2999-01-01T00:00:00Z" }),
            422,
            "validation_failed",
        ),
        (
            format!("/v1/events/{e}/check-ins"),
            json!({ "ticket_code": 5, "nonce": "n1" }),
            422,
            "validation_failed",
        ),
        (
            format!("/v1/events/{e}/check-ins/{}/revert", "a".repeat(32)),
            json!({}),
            404,
            "invalid",
        ),
        (
            format!("/v1/events/{e}/reschedule"),
            json!({ "starts_at": "2031-01-01T20:00:00Z", "ends_at": "2031-01-01T18:00:00Z" }),
            422,
            "validation_failed",
        ),
        (
            format!("/v1/events/{e}/reschedule"),
            json!({ "starts_at": "yesterday", "ends_at": "2031-01-01T18:00:00Z" }),
            422,
            "validation_failed",
        ),
        (
            format!("/v1/events/{unknown}/reschedule"),
            json!({ "starts_at": "2031-01-01T18:00:00Z", "ends_at": "2031-01-01T20:00:00Z" }),
            404,
            "not_found",
        ),
        (
            format!("/v1/events/{e}/reservations"),
            json!({ "ticket_type_id": ticket_type_id, "quantity": 1, "attendee": { "name": "A", "email": "a@example.com" }, "answers": { "nope": "x" } }),
            422,
            "validation_failed",
        ),
        (
            "/v1/payments/test-gateway/settle".to_owned(),
            json!({ "payment_id": "pay_unknown", "event_id": e, "registration_id": registration, "succeeded": true }),
            404,
            "not_found",
        ),
    ];
    let before = app.head_position().await;
    for (path, body, status, code) in cases {
        let reply = app.post(&path, body.clone()).await;
        assert_eq!(reply.status, status, "{path} {body}: {}", reply.body);
        reply.assert_problem(status, code);
    }
    let malformed = app
        .send(
            app.client
                .post(format!("{}/v1/events/{e}/check-ins", app.command_url))
                .header("content-type", "application/json")
                .body("{\"ticket_code\":"),
        )
        .await;
    malformed.assert_problem(400, "malformed_json");
    let questions = app
        .send(
            app.client
                .put(format!("{}/v1/events/{e}/questions", app.command_url))
                .json(&json!({ "questions": [
                    { "id": "a", "label": "A", "type": "text" },
                    { "id": "a", "label": "B", "type": "text" },
                ] })),
        )
        .await;
    questions.assert_problem(422, "validation_failed");
    // A signed webhook whose body is not a notification: refused after the signature check.
    let now = chrono::Utc::now().timestamp();
    let body = "{\"payment_id\":";
    let signature =
        marquee_payments::webhook::sign(TEST_WEBHOOK_SECRET.as_bytes(), now, body.as_bytes());
    app.send(
        app.client
            .post(format!("{}/v1/payments/webhook", app.command_url))
            .header("Marquee-Signature", signature)
            .body(body),
    )
    .await
    .assert_problem(400, "malformed_json");
    assert_eq!(app.head_position().await, before, "nothing was appended");
}
