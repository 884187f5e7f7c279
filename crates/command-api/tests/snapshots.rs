//! Snapshots are a cache: loading from one gives exactly the state folding every fact gives,
//! and a missing, stale or unreadable snapshot changes no answer.

use std::sync::Arc;

use axum::http::StatusCode;
use chrono::{Duration, TimeZone, Utc};
use marquee_command_api::engine::{Answer, CommandContext, Engine, EventAggregate, VenueAggregate};
use marquee_domain::event::{Attendee, EventCommand};
use marquee_domain::venue::VenueCommand;
use marquee_domain::{EventId, Money, RegistrationId, TicketCode, TicketTypeId, VenueId};
use marquee_store::{EventStore, Snapshot, StoreOptions, connect_with};
use serde_json::json;
use uuid::Uuid;

fn engine(store: Arc<dyn EventStore>) -> Engine {
    let now = Utc
        .with_ymd_and_hms(2030, 1, 1, 12, 0, 0)
        .single()
        .expect("time");
    Engine::new(store, Arc::new(move || now))
}

fn context() -> CommandContext {
    CommandContext {
        correlation_id: Uuid::now_v7(),
        actor: Some("test".into()),
        organization: None,
        idempotency: None,
    }
}

fn ok(_: &[marquee_domain::event::EventFact], _: &marquee_domain::event::Event) -> Answer {
    Answer {
        status: StatusCode::OK,
        body: json!({}),
    }
}

/// A published event with one 1,000-seat ticket type and `reservations` single-seat
/// registrations. Returns the event's stream.
async fn event_with_reservations(engine: &Engine, reservations: usize) -> String {
    let venue_id = VenueId(Uuid::now_v7());
    engine
        .execute::<VenueAggregate>(
            &venue_id.stream(),
            vec![VenueCommand::CreateVenue {
                venue_id,
                name: "Hall".into(),
                city: "Oslo".into(),
                address: None,
                capacity: 1000,
                timezone: "Europe/Oslo".into(),
            }],
            &context(),
            |_, _| Answer {
                status: StatusCode::OK,
                body: json!({}),
            },
        )
        .await
        .expect("venue");
    let event_id = EventId(Uuid::now_v7());
    let stream = event_id.stream();
    let ticket_type_id = TicketTypeId(Uuid::now_v7());
    let starts = Utc
        .with_ymd_and_hms(2030, 3, 1, 18, 0, 0)
        .single()
        .expect("time");
    let setup = vec![
        EventCommand::DraftEvent {
            event_id,
            venue: Some(marquee_domain::event::VenueInfo {
                venue_id,
                capacity: 1000,
            }),
            title: "Snapshot night".into(),
            description: String::new(),
            category: "talk".into(),
            starts_at: starts,
            ends_at: starts + Duration::hours(2),
            timezone: "Europe/Oslo".into(),
            capacity: None,
            max_per_order: None,
        },
        EventCommand::AddTicketType {
            ticket_type_id,
            name: "GA".into(),
            price: Money {
                amount_minor: 0,
                currency: "NOK".into(),
            },
            quantity: 1000,
            sales_start: None,
            sales_end: None,
        },
        EventCommand::Publish,
    ];
    engine
        .execute::<EventAggregate>(&stream, setup, &context(), ok)
        .await
        .expect("setup");
    for n in 0..reservations {
        let command = EventCommand::Reserve {
            registration_id: RegistrationId(Uuid::now_v7()),
            ticket_type_id,
            attendee: Attendee {
                name: format!("Guest {n}"),
                email: format!("guest{n}@example.com"),
            },
            quantity: 1,
            ticket_codes: vec![TicketCode(format!("{:032x}", rand_code(n)))],
            answers: Default::default(),
        };
        engine
            .execute::<EventAggregate>(&stream, vec![command], &context(), ok)
            .await
            .expect("reserve");
    }
    stream
}

/// Distinct, well-formed codes without randomness (the test needs no entropy).
fn rand_code(n: usize) -> u128 {
    (n as u128 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
}

fn options(snapshot_every: u64) -> StoreOptions {
    StoreOptions {
        snapshot_every,
        ..StoreOptions::default()
    }
}

#[tokio::test]
async fn loading_from_a_snapshot_gives_the_same_state_as_folding_every_fact() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("log.db").display());
    let with_snapshots = engine(connect_with(&url, options(10)).await.expect("store"));
    // 3 setup facts + 57 registrations = 60 facts: snapshots were taken along the way.
    let stream = event_with_reservations(&with_snapshots, 57).await;
    let snapshot = with_snapshots
        .store()
        .load_snapshot(&stream)
        .await
        .expect("read")
        .expect("a snapshot was taken");
    assert!(
        snapshot.revision >= 49,
        "snapshot at revision {}",
        snapshot.revision
    );

    let from_snapshot = with_snapshots
        .load::<EventAggregate>(&stream)
        .await
        .expect("load");

    // The same log, opened with snapshots off, folds every fact from revision 0.
    let without = engine(connect_with(&url, options(0)).await.expect("store"));
    let folded = without.load::<EventAggregate>(&stream).await.expect("load");

    assert_eq!(from_snapshot.state, folded.state);
    assert_eq!(from_snapshot.revision, folded.revision);
    assert_eq!(from_snapshot.position, folded.position);
    assert_eq!(folded.state.confirmed(), 57);
}

#[tokio::test]
async fn an_unreadable_or_outdated_snapshot_is_ignored() {
    let store = connect_with("memory:", options(10)).await.expect("store");
    let engine = engine(store.clone());
    let stream = event_with_reservations(&engine, 12).await;
    let good = engine.load::<EventAggregate>(&stream).await.expect("load");

    for snapshot in [
        Snapshot {
            stream: stream.clone(),
            revision: 14,
            schema_version: 1,
            state: json!({ "position": 3, "state": { "nonsense": true } }),
        },
        Snapshot {
            stream: stream.clone(),
            revision: 15,
            schema_version: 999,
            state: json!({ "position": 3, "state": {} }),
        },
    ] {
        store.save_snapshot(snapshot).await.expect("save");
        let loaded = engine.load::<EventAggregate>(&stream).await.expect("load");
        assert_eq!(loaded.state, good.state);
        assert_eq!(loaded.revision, good.revision);
    }
}
