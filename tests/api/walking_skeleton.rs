//! The first whole loop: venue → event → ticket types → publish → a rush of reservations →
//! read models, then a restart on the same data.

use futures::future::join_all;
use serde_json::Value;

use crate::helpers::{AppOptions, Backend, TestApp, spawn_app, spawn_app_with};

/// Creates a venue and a published event with two ticket types (20 and 30 seats).
async fn published_event(app: &TestApp) -> (String, String, String, u64) {
    let venue_id = app.create_venue(500).await;
    let event_id = app.draft_event(&venue_id, "Rush Night").await;
    let small = app.add_free_ticket_type(&event_id, "Early bird", 20).await;
    let large = app.add_free_ticket_type(&event_id, "Standard", 30).await;
    let position = app.publish(&event_id).await;
    (event_id, small, large, position)
}

async fn fifty_concurrent_reservations_for_twenty_seats(backend: Backend) {
    let app = spawn_app(backend).await;
    let (event_id, small, _large, _) = published_event(&app).await;

    let replies = join_all((0..50).map(|n| app.reserve(&event_id, &small, 1, n))).await;

    let confirmed: Vec<_> = replies.iter().filter(|r| r.status == 201).collect();
    let sold_out: Vec<_> = replies.iter().filter(|r| r.status == 409).collect();
    assert_eq!(confirmed.len(), 20, "exactly the 20 seats are confirmed");
    assert_eq!(sold_out.len(), 30, "every other attempt is refused");
    for reply in &sold_out {
        reply.assert_problem(409, "sold_out");
    }
    let mut codes: Vec<&str> = confirmed
        .iter()
        .flat_map(|r| r.body["ticket_codes"].as_array().expect("codes"))
        .map(|c| c.as_str().expect("code"))
        .collect();
    assert_eq!(codes.len(), 20);
    assert!(codes.iter().all(|c| c.len() >= 32), "codes carry 128 bits");
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), 20, "every ticket code is unique");
    for reply in &confirmed {
        assert_eq!(reply.body["status"], "confirmed");
        assert_eq!(reply.position, reply.body["position"].as_u64());
    }

    let last = confirmed
        .iter()
        .filter_map(|r| r.position)
        .max()
        .expect("positions");
    let capacity = app
        .get(&format!("/v1/events/{event_id}/capacity"), Some(last))
        .await;
    assert_eq!(capacity.status, 200, "{}", capacity.body);
    let small_row = ticket_type(&capacity.body, &small);
    assert_eq!(small_row["quantity"], 20);
    assert_eq!(small_row["confirmed"], 20);
    assert_eq!(small_row["available"], 0);
    assert_eq!(capacity.body["confirmed"], 20);

    let listing = app.get("/v1/events", Some(last)).await;
    assert_eq!(listing.status, 200, "{}", listing.body);
    let items = listing.body["items"].as_array().expect("items");
    assert!(
        items.iter().any(|e| e["event_id"] == event_id.as_str()),
        "the listing shows the event: {}",
        listing.body
    );
}

fn ticket_type<'a>(capacity: &'a Value, id: &str) -> &'a Value {
    capacity["ticket_types"]
        .as_array()
        .expect("ticket_types")
        .iter()
        .find(|t| t["ticket_type_id"] == id)
        .unwrap_or_else(|| panic!("ticket type {id} in {capacity}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_reservations_for_twenty_seats_confirm_exactly_twenty() {
    fifty_concurrent_reservations_for_twenty_seats(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_fifty_concurrent_reservations_for_twenty_seats_confirm_exactly_twenty() {
    fifty_concurrent_reservations_for_twenty_seats(Backend::Postgres).await;
}

async fn restart_keeps_everything(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let (event_id, small, large, _) = published_event(&app).await;
    for n in 0..5 {
        assert_eq!(app.reserve(&event_id, &small, 2, n).await.status, 201);
    }
    let last = app.reserve(&event_id, &large, 3, 99).await;
    assert_eq!(last.status, 201, "{}", last.body);
    let last_position = last.position.expect("position");
    let before = app
        .get(
            &format!("/v1/events/{event_id}/capacity"),
            Some(last_position),
        )
        .await;
    assert_eq!(before.body["confirmed"], 13);

    app.restart().await;

    // The projector resumes from its checkpoint: nothing counted twice.
    let after = app
        .get(
            &format!("/v1/events/{event_id}/capacity"),
            Some(last_position),
        )
        .await;
    assert_eq!(after.status, 200, "{}", after.body);
    assert_eq!(
        after.body, before.body,
        "read models survive the restart unchanged"
    );
    assert_eq!(ticket_type(&after.body, &small)["confirmed"], 10);
    assert_eq!(ticket_type(&after.body, &large)["confirmed"], 3);

    // The log survived too: the command side still knows what is sold.
    let ok = app.reserve(&event_id, &small, 10, 100).await;
    assert_eq!(ok.status, 201, "the last 10 seats: {}", ok.body);
    let more = app.reserve(&event_id, &small, 1, 101).await;
    more.assert_problem(409, "sold_out");
    assert_eq!(more.body["available"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_the_same_data_keeps_all_state_and_counts_nothing_twice() {
    restart_keeps_everything(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_restart_keeps_all_state_and_counts_nothing_twice() {
    restart_keeps_everything(Backend::Postgres).await;
}

/// How many snapshots the app's log holds for one stream.
async fn snapshots_of(app: &TestApp, stream: &str) -> i64 {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.database())
        .await
        .expect("the app's database");
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM snapshots WHERE stream = $1")
        .bind(stream)
        .fetch_one(&pool)
        .await
        .expect("count snapshots");
    pool.close().await;
    n
}

/// `MARQUEE_SNAPSHOT_EVERY` sets how often the command side snapshots an aggregate, `0` turns
/// snapshots off, and the answers are the same either way (after a restart too, when the
/// snapshot is what loads).
#[tokio::test]
async fn the_snapshot_interval_is_a_setting_and_changes_no_answer() {
    for (every, snapshotted) in [("2", true), ("0", false)] {
        let mut app =
            spawn_app_with(AppOptions::new(Backend::Sqlite).env("MARQUEE_SNAPSHOT_EVERY", every))
                .await;
        let (event_id, small, _large, _) = published_event(&app).await;
        for n in 0..3 {
            assert_eq!(app.reserve(&event_id, &small, 2, n).await.status, 201);
        }
        let stream = format!("event-{event_id}");
        assert_eq!(
            snapshots_of(&app, &stream).await > 0,
            snapshotted,
            "MARQUEE_SNAPSHOT_EVERY={every}"
        );
        app.restart().await;
        // 20 seats, 6 taken: the seventh to tenth pairs fit, the eleventh does not.
        for n in 3..10 {
            assert_eq!(app.reserve(&event_id, &small, 2, n).await.status, 201);
        }
        app.reserve(&event_id, &small, 2, 10)
            .await
            .assert_problem(409, "sold_out");
    }
}
