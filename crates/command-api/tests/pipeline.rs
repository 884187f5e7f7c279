//! The per-stream command pipeline: a rush on one event confirms exactly its capacity, on every
//! backend and with two engines (two processes) on one log; a refused command in a batch fails
//! alone; a cached aggregate is checked against the log; the cache is bounded.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use chrono::{TimeZone, Utc};
use marquee_command_api::engine::{
    Answer, CommandContext, CommandMode, Engine, EngineOptions, EventAggregate, VenueAggregate,
};
use marquee_command_api::error::ApiError;
use marquee_domain::event::{Attendee, EventCommand, EventError, EventFact, VenueInfo};
use marquee_domain::venue::VenueCommand;
use marquee_domain::{EventId, Money, RegistrationId, TicketCode, TicketTypeId, VenueId};
use marquee_store::{
    EventStore, IdempotencyWrite, IdempotentResponse, StoreError, connect, testing::PgTestDb,
};
use serde_json::json;
use uuid::Uuid;

/// Long enough for a slow CI machine, short enough that a hang fails the test.
const PATIENCE: Duration = Duration::from_secs(60);

fn engine(store: Arc<dyn EventStore>, options: EngineOptions) -> Arc<Engine> {
    let now = Utc
        .with_ymd_and_hms(2030, 1, 1, 12, 0, 0)
        .single()
        .expect("time");
    Arc::new(Engine::with_options(store, Arc::new(move || now), options))
}

fn pipeline() -> EngineOptions {
    EngineOptions::default()
}

fn context() -> CommandContext {
    CommandContext {
        correlation_id: Uuid::now_v7(),
        actor: Some("test".into()),
        organization: None,
        idempotency: None,
    }
}

fn ok<F, S>(_: &[F], _: &S) -> Answer {
    Answer {
        status: StatusCode::OK,
        body: json!({}),
    }
}

/// A published event with one free ticket type of `seats` seats; returns its stream and the
/// ticket type.
async fn event_on_sale(engine: &Engine, seats: u32) -> (String, TicketTypeId) {
    let venue_id = VenueId(Uuid::now_v7());
    engine
        .execute::<VenueAggregate>(
            &venue_id.stream(),
            vec![VenueCommand::CreateVenue {
                venue_id,
                name: "Hall".into(),
                city: "Oslo".into(),
                address: None,
                capacity: seats,
                timezone: "Europe/Oslo".into(),
            }],
            &context(),
            ok,
        )
        .await
        .expect("venue");
    let event_id = EventId(Uuid::now_v7());
    let ticket_type_id = TicketTypeId(Uuid::now_v7());
    let starts = Utc
        .with_ymd_and_hms(2030, 3, 1, 18, 0, 0)
        .single()
        .expect("time");
    let setup = vec![
        EventCommand::DraftEvent {
            event_id,
            venue: Some(VenueInfo {
                venue_id,
                capacity: seats,
            }),
            title: "Rush night".into(),
            description: String::new(),
            category: "concert".into(),
            starts_at: starts,
            ends_at: starts + chrono::Duration::hours(2),
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
            quantity: seats,
            sales_start: None,
            sales_end: None,
        },
        EventCommand::Publish,
    ];
    engine
        .execute::<EventAggregate>(&event_id.stream(), setup, &context(), ok)
        .await
        .expect("setup");
    (event_id.stream(), ticket_type_id)
}

fn reserve(ticket_type_id: TicketTypeId, n: usize) -> EventCommand {
    EventCommand::Reserve {
        registration_id: RegistrationId(Uuid::now_v7()),
        ticket_type_id,
        attendee: Attendee {
            name: format!("Guest {n}"),
            email: format!("guest{n}@example.com"),
        },
        quantity: 1,
        ticket_codes: vec![TicketCode(format!("{:032x}", Uuid::now_v7().as_u128()))],
        answers: Default::default(),
    }
}

/// How a rush went, from the callers' side.
#[derive(Debug, Default)]
struct Tally {
    confirmed: usize,
    sold_out: usize,
    conflict: usize,
    positions: HashSet<u64>,
}

/// `attempts` concurrent single-seat reservations spread over `engines`.
async fn rush(
    engines: &[Arc<Engine>],
    stream: &str,
    ticket: TicketTypeId,
    attempts: usize,
) -> Tally {
    let tasks: Vec<_> = (0..attempts)
        .map(|n| {
            let engine = engines[n % engines.len()].clone();
            let stream = stream.to_owned();
            tokio::spawn(async move {
                engine
                    .execute::<EventAggregate>(&stream, vec![reserve(ticket, n)], &context(), ok)
                    .await
                    .map(|(accepted, _)| accepted.position)
            })
        })
        .collect();
    let mut tally = Tally::default();
    for task in tasks {
        match tokio::time::timeout(PATIENCE, task)
            .await
            .expect("answered")
            .expect("task")
        {
            Ok(position) => {
                tally.confirmed += 1;
                assert!(
                    tally.positions.insert(position),
                    "two callers got position {position}"
                );
            }
            Err(ApiError::Event(EventError::SoldOut { .. })) => tally.sold_out += 1,
            Err(ApiError::Contention) => tally.conflict += 1,
            Err(other) => panic!("unexpected answer: {other:?}"),
        }
    }
    tally
}

/// Registrations confirmed in the log itself.
async fn confirmed_in_log(store: &dyn EventStore, stream: &str) -> usize {
    let facts = store
        .read_stream(stream, 0, usize::MAX)
        .await
        .expect("read");
    facts
        .iter()
        .filter(|f| f.fact_type == "RegistrationConfirmed")
        .count()
}

async fn one_engine_rush(store: Arc<dyn EventStore>, mode: CommandMode) {
    let engine = engine(store.clone(), EngineOptions { mode, ..pipeline() });
    let (stream, ticket) = event_on_sale(&engine, 100).await;
    let tally = rush(&[engine], &stream, ticket, 300).await;
    assert_eq!(tally.confirmed, 100, "{tally:?}");
    assert_eq!(tally.confirmed + tally.sold_out + tally.conflict, 300);
    if mode == CommandMode::Pipeline {
        assert_eq!(tally.conflict, 0, "one decider never conflicts with itself");
    }
    assert_eq!(confirmed_in_log(&*store, &stream).await, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_a_rush_confirms_exactly_the_capacity() {
    one_engine_rush(
        connect("memory:").await.expect("store"),
        CommandMode::Pipeline,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_rush_confirms_exactly_the_capacity() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}/log.db", dir.path().display());
    one_engine_rush(connect(&url).await.expect("store"), CommandMode::Pipeline).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_rush_confirms_exactly_the_capacity() {
    let db = PgTestDb::create().await;
    one_engine_rush(
        connect(&db.url).await.expect("store"),
        CommandMode::Pipeline,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_naive_baseline_never_oversells_either() {
    one_engine_rush(connect("memory:").await.expect("store"), CommandMode::Naive).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_engines_on_one_log_confirm_exactly_the_capacity() {
    let db = PgTestDb::create().await;
    // Two stores and two engines: what two command-api processes are.
    let first = connect(&db.url).await.expect("store");
    let second = connect(&db.url).await.expect("store");
    let engines = [
        engine(first.clone(), pipeline()),
        engine(second, pipeline()),
    ];
    let (stream, ticket) = event_on_sale(&engines[0], 100).await;
    let tally = rush(&engines, &stream, ticket, 400).await;
    assert_eq!(tally.confirmed, 100, "{tally:?}");
    assert_eq!(tally.confirmed + tally.sold_out + tally.conflict, 400);
    assert_eq!(confirmed_in_log(&*first, &stream).await, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_engines_on_one_file_confirm_exactly_the_capacity() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}/log.db", dir.path().display());
    let first = connect(&url).await.expect("store");
    let second = connect(&url).await.expect("store");
    let engines = [
        engine(first.clone(), pipeline()),
        engine(second, pipeline()),
    ];
    let (stream, ticket) = event_on_sale(&engines[0], 50).await;
    let tally = rush(&engines, &stream, ticket, 200).await;
    assert_eq!(tally.confirmed, 50, "{tally:?}");
    assert_eq!(confirmed_in_log(&*first, &stream).await, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_command_among_queued_ones_fails_alone() {
    let store = connect("memory:").await.expect("store");
    let engine = engine(store.clone(), pipeline());
    let (stream, ticket) = event_on_sale(&engine, 100).await;
    let unknown = TicketTypeId(Uuid::now_v7());
    let tasks: Vec<_> = (0..60)
        .map(|n| {
            let engine = engine.clone();
            let stream = stream.clone();
            let ticket = if n % 10 == 3 { unknown } else { ticket };
            tokio::spawn(async move {
                engine
                    .execute::<EventAggregate>(&stream, vec![reserve(ticket, n)], &context(), ok)
                    .await
                    .map(|_| ())
            })
        })
        .collect();
    for (n, task) in tasks.into_iter().enumerate() {
        let outcome = task.await.expect("task");
        if n % 10 == 3 {
            assert!(
                matches!(
                    outcome,
                    Err(ApiError::Event(EventError::TicketTypeNotFound))
                ),
                "{outcome:?}"
            );
        } else {
            outcome.unwrap_or_else(|e| panic!("reservation {n} failed: {e:?}"));
        }
    }
    assert_eq!(confirmed_in_log(&*store, &stream).await, 54);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_already_taken_fails_only_its_command() {
    let store = connect("memory:").await.expect("store");
    let engine = engine(store.clone(), pipeline());
    let (stream, ticket) = event_on_sale(&engine, 100).await;
    store
        .idempotency_put(IdempotencyWrite {
            key: "taken".into(),
            response: IdempotentResponse {
                request_hash: "earlier".into(),
                status: 201,
                body: json!({}),
                created_at: Utc::now(),
            },
        })
        .await
        .expect("put");
    let tasks: Vec<_> = (0..40)
        .map(|n| {
            let engine = engine.clone();
            let stream = stream.clone();
            tokio::spawn(async move {
                let mut context = context();
                if n == 7 {
                    context.idempotency = Some(("taken".into(), "later".into()));
                }
                engine
                    .execute::<EventAggregate>(&stream, vec![reserve(ticket, n)], &context, ok)
                    .await
                    .map(|_| ())
            })
        })
        .collect();
    for (n, task) in tasks.into_iter().enumerate() {
        let outcome = task.await.expect("task");
        if n == 7 {
            assert!(
                matches!(
                    outcome,
                    Err(ApiError::Store(StoreError::IdempotencyKeyTaken { .. }))
                ),
                "{outcome:?}"
            );
        } else {
            outcome.unwrap_or_else(|e| panic!("reservation {n} failed: {e:?}"));
        }
    }
    assert_eq!(confirmed_in_log(&*store, &stream).await, 39);
}

/// Waits until `engine` holds `count` idle aggregates in its cache.
async fn until_cached(engine: &Engine, count: usize) {
    tokio::time::timeout(PATIENCE, async {
        while engine.cached_aggregates() != count {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "expected {count} cached aggregates, have {}",
            engine.cached_aggregates()
        )
    });
}

fn quick_idle(cache_bytes: usize) -> EngineOptions {
    EngineOptions {
        idle: Duration::from_millis(20),
        cache_bytes,
        ..pipeline()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_aggregate_sees_what_another_process_appended_since() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}/log.db", dir.path().display());
    let here = engine(connect(&url).await.expect("store"), quick_idle(1 << 20));
    let there = engine(connect(&url).await.expect("store"), quick_idle(1 << 20));
    let (stream, ticket) = event_on_sale(&here, 2).await;
    here.execute::<EventAggregate>(&stream, vec![reserve(ticket, 0)], &context(), ok)
        .await
        .expect("first seat");
    // The venue and the event are now idle in `here`'s cache, one seat left in its copy.
    until_cached(&here, 2).await;
    there
        .execute::<EventAggregate>(&stream, vec![reserve(ticket, 1)], &context(), ok)
        .await
        .expect("last seat, taken elsewhere");
    let outcome = here
        .execute::<EventAggregate>(&stream, vec![reserve(ticket, 2)], &context(), ok)
        .await;
    assert!(
        matches!(outcome, Err(ApiError::Event(EventError::SoldOut { .. }))),
        "the cached copy still had a seat: {:?}",
        outcome.map(|_| ())
    );
    assert_eq!(confirmed_in_log(&*here.store().clone(), &stream).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_stays_within_its_budget_and_answers_stay_the_same() {
    let store = connect("memory:").await.expect("store");
    let setup = engine(store.clone(), pipeline());
    let mut events = Vec::new();
    for n in 0..5 {
        let (stream, ticket) = event_on_sale(&setup, 10).await;
        for seat in 0..2 {
            setup
                .execute::<EventAggregate>(
                    &stream,
                    vec![reserve(ticket, n * 10 + seat)],
                    &context(),
                    ok,
                )
                .await
                .expect("reserve");
        }
        events.push(stream);
    }
    let size = setup
        .load::<EventAggregate>(&events[0])
        .await
        .expect("load")
        .state
        .approximate_size();
    // Room for two of the five events, not three.
    let budget = size * 5 / 2;
    let engine = engine(store, quick_idle(budget));
    for stream in &events {
        // A refused command still brings the event into memory.
        let unknown = TicketTypeId(Uuid::now_v7());
        let outcome = engine
            .execute::<EventAggregate>(stream, vec![reserve(unknown, 99)], &context(), ok)
            .await;
        assert!(matches!(
            outcome,
            Err(ApiError::Event(EventError::TicketTypeNotFound))
        ));
    }
    until_cached(&engine, 2).await;
    assert!(
        engine.cached_bytes() <= budget,
        "{} bytes cached",
        engine.cached_bytes()
    );
    // Evicted or not, every event still knows its registrations: its revision is the log's.
    for stream in &events {
        let loaded = engine.load::<EventAggregate>(stream).await.expect("load");
        let recorded = setup
            .store()
            .read_stream(stream, 0, usize::MAX)
            .await
            .expect("read")
            .len() as u64;
        assert_eq!(loaded.revision, Some(recorded - 1));
        assert_eq!(confirmed_in_log(&*setup.store().clone(), stream).await, 2);
        assert_eq!(loaded.state.approximate_size() * 5 / 2 / budget, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_command_request_is_all_or_nothing_inside_a_batch() {
    let store = connect("memory:").await.expect("store");
    let engine = engine(store.clone(), pipeline());
    let (stream, ticket) = event_on_sale(&engine, 10).await;
    // The second command of the pair is refused, so the first must not stand either.
    let pair = vec![reserve(ticket, 1), reserve(TicketTypeId(Uuid::now_v7()), 2)];
    let outcome = engine
        .execute::<EventAggregate>(&stream, pair, &context(), ok)
        .await;
    assert!(matches!(
        outcome,
        Err(ApiError::Event(EventError::TicketTypeNotFound))
    ));
    let (accepted, _) = engine
        .execute::<EventAggregate>(&stream, vec![reserve(ticket, 3)], &context(), ok)
        .await
        .expect("a single seat");
    assert!(matches!(
        accepted.facts[..],
        [EventFact::RegistrationConfirmed { .. }]
    ));
    assert_eq!(confirmed_in_log(&*store, &stream).await, 1);
}

/// A decider that stays alive between commands must not answer from a state another process
/// has moved past: here the other process cancels the only registration, and the live decider
/// must see the freed seat instead of answering `sold_out` from memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_decider_answers_refusals_from_the_log_as_another_process_left_it() {
    let store = connect("memory:").await.expect("store");
    let staying = EngineOptions {
        idle: Duration::from_secs(600),
        ..pipeline()
    };
    let here = engine(store.clone(), staying);
    let elsewhere = engine(store, pipeline());
    let (stream, ticket_type_id) = event_on_sale(&here, 1).await;

    let first = reserve(ticket_type_id, 1);
    let EventCommand::Reserve {
        registration_id, ..
    } = first.clone()
    else {
        unreachable!("reserve() builds a Reserve")
    };
    here.execute::<EventAggregate>(&stream, vec![first], &context(), ok)
        .await
        .expect("the only seat");
    let sold_out = here
        .execute::<EventAggregate>(&stream, vec![reserve(ticket_type_id, 2)], &context(), ok)
        .await;
    assert!(
        matches!(
            sold_out,
            Err(ApiError::Event(EventError::SoldOut { available: 0 }))
        ),
        "the second attempt is sold out"
    );

    // Another process frees the seat while this process's decider is still running.
    elsewhere
        .execute::<EventAggregate>(
            &stream,
            vec![EventCommand::CancelRegistration { registration_id }],
            &context(),
            ok,
        )
        .await
        .expect("cancelled elsewhere");

    let again = here
        .execute::<EventAggregate>(&stream, vec![reserve(ticket_type_id, 3)], &context(), ok)
        .await;
    assert!(
        again.is_ok(),
        "the freed seat is reservable through the live decider: {:?}",
        again.err()
    );
}
