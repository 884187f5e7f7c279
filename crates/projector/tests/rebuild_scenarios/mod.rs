//! Rebuild scenarios shared by `rebuild.rs` (one SQLite file, embedded mode) and
//! `rebuild_postgres.rs`, so both engines are held to the same assertions.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use marquee_domain::event::EventFact;
use marquee_domain::venue::VenueFact;
use marquee_domain::{RegistrationId, WaitlistEntryId};
use marquee_projector::queries::ListingFilter;
use marquee_projector::{
    PROJECTION, Projector, ProjectorError, READ_MODEL_TABLES, RebuildOptions, RebuildProgress,
};
use marquee_store::EventStore;
use sqlx::{AnyPool, Row};
use uuid::Uuid;

use crate::common::{
    Backend, Fixture, append, cancelled, confirmed, details, project_until, published_event, seats,
};
use crate::ticketing_scenarios::{
    check_in_reverted, checked_in, codes, confirmed_with, held, held_with, hold_confirmed,
    hold_expired, joined, offer_made, payment_received, refund_completed, refund_due,
};

/// Every read-model table with the columns it is ordered by.
const TABLES: &[(&str, &str)] = &[
    ("venues", "venue_id"),
    ("event_listing", "event_id"),
    ("event_capacity", "event_id, ticket_type_id"),
    ("registrations", "registration_id"),
    ("tickets", "registration_id, seat"),
    ("waitlist_entries", "entry_id"),
    ("timers", "timer_id"),
    ("event_search", "event_id"),
    ("analytics_events", "event_id"),
    ("analytics_ticket_types", "event_id, ticket_type_id"),
    (
        "analytics_sales_daily",
        "event_id, day, ticket_type_id, currency",
    ),
    ("analytics_payments", "event_id, payment_id"),
    ("analytics_check_ins", "event_id, hour, ticket_type_id"),
    ("analytics_questions", "event_id, question_id"),
    ("analytics_answers", "event_id, question_id, answer"),
    ("projector_checkpoints", "projection"),
];

#[test]
fn every_read_model_table_is_compared() {
    for table in READ_MODEL_TABLES {
        assert!(
            TABLES.iter().any(|(name, _)| *name == table),
            "{table} is missing from TABLES"
        );
    }
}

/// Questions, holds paid, expired and still open, a waitlist with an offer and an entry in
/// line, a check-in (and one reverted), answers and a refund due then completed: every
/// ticketing and analytics table gets rows, timers among them.
fn ticketing(f: &Fixture) -> Vec<EventFact> {
    let (paid, expired, open, free) = (
        RegistrationId(Uuid::now_v7()),
        RegistrationId(Uuid::now_v7()),
        RegistrationId(Uuid::now_v7()),
        RegistrationId(Uuid::now_v7()),
    );
    let (offered, waiting) = (
        WaitlistEntryId(Uuid::now_v7()),
        WaitlistEntryId(Uuid::now_v7()),
    );
    let free_codes = codes(2);
    let question = |id: &str, kind| marquee_domain::event::Question {
        id: id.to_owned(),
        label: id.to_uppercase(),
        kind,
        options: Vec::new(),
        required: false,
    };
    vec![
        EventFact::RegistrationQuestionsSet {
            questions: vec![
                question("country", marquee_domain::event::QuestionKind::Country),
                question("note", marquee_domain::event::QuestionKind::Text),
            ],
        },
        held_with(paid, f.a, "Pia", codes(1), "2026-02-02T10:15:00Z"),
        payment_received(paid, "pay_paid", 2500),
        hold_confirmed(paid, f.a, 1, "pay_paid", false),
        held(expired, f.a, 2, "2026-02-02T10:15:00Z"),
        hold_expired(expired, f.a, 2),
        held(open, f.a, 1, "2026-02-02T10:45:00Z"),
        confirmed_with(free, f.b, "Fay", free_codes.clone()),
        EventFact::AnswersGiven {
            registration_id: free,
            answers: [
                (
                    "country".to_owned(),
                    marquee_domain::event::AnswerValue::One("PT".to_owned()),
                ),
                (
                    "note".to_owned(),
                    marquee_domain::event::AnswerValue::One("window seat".to_owned()),
                ),
            ]
            .into_iter()
            .collect(),
        },
        checked_in(&free_codes[0], free, f.b, "n-1", "2026-06-01T18:05:00Z"),
        checked_in(&free_codes[1], free, f.b, "n-2", "2026-06-01T18:06:00Z"),
        check_in_reverted(&free_codes[1], free),
        joined(offered, f.a, "Una", 1),
        joined(waiting, f.a, "Vic", 2),
        offer_made(offered, f.a, 1, "2026-02-03T12:00:00Z"),
        cancelled(paid, f.a, 1),
        refund_due(paid, "pay_paid", "2026-02-03T09:00:00Z"),
        refund_completed(paid, "pay_paid"),
    ]
}

/// A small page, so that even the short logs here take many transactions and catch-up passes.
fn options() -> RebuildOptions {
    RebuildOptions {
        batch_size: 500,
        ..RebuildOptions::default()
    }
}

fn no_progress() -> impl FnMut(RebuildProgress) + Send {
    |_| {}
}

/// Every row of every read-model table, each value as text, in key order.
async fn dump(pool: &AnyPool) -> Vec<(String, Vec<Vec<Option<String>>>)> {
    let mut tables = Vec::new();
    for (table, key) in TABLES {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT * FROM {table} ORDER BY {key}"
        )))
        .fetch_all(pool)
        .await
        .expect("dump table");
        let rows = rows
            .iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| match row.try_get::<Option<i64>, _>(i) {
                        Ok(value) => value.map(|v| v.to_string()),
                        Err(_) => row.try_get::<Option<String>, _>(i).expect("text column"),
                    })
                    .collect()
            })
            .collect();
        tables.push(((*table).to_owned(), rows));
    }
    tables
}

async fn raw_pool(backend: &Backend) -> AnyPool {
    sqlx::any::install_default_drivers();
    AnyPool::connect(backend.read_url())
        .await
        .expect("raw pool")
}

/// Several venues and events with registrations, cancellations, a venue renamed and a capacity
/// changed: `per_event` registration facts on each of `events` events. Returns the events and
/// the last position.
async fn seed(store: &Arc<dyn EventStore>, events: usize, per_event: usize) -> (Vec<Fixture>, u64) {
    let mut fixtures = Vec::new();
    let mut last = 0;
    for n in 0..events {
        let f = published_event(store).await;
        let mut written = 0;
        while written < per_event {
            let chunk = (per_event - written).min(400);
            let facts: Vec<EventFact> = (0..chunk / 2)
                .flat_map(|i| {
                    let r = RegistrationId(Uuid::now_v7());
                    let t = if i % 2 == 0 { f.a } else { f.b };
                    // Every third registration is cancelled again.
                    if i % 3 == 0 {
                        vec![confirmed(r, t, 2), cancelled(r, t, 2)]
                    } else {
                        vec![
                            confirmed(r, t, 1),
                            confirmed(RegistrationId(Uuid::now_v7()), t, 1),
                        ]
                    }
                })
                .collect();
            append(store, &f.event.stream(), &facts).await;
            written += chunk.max(2);
        }
        last = append(store, &f.event.stream(), &ticketing(&f)).await;
        if n % 2 == 0 {
            append(
                store,
                &f.venue.stream(),
                &[VenueFact::VenueRenamed {
                    name: format!("Hall {n}"),
                }],
            )
            .await;
            last = append(
                store,
                &f.event.stream(),
                &[EventFact::EventCapacityChanged { capacity: 40 }],
            )
            .await;
        }
        fixtures.push(f);
    }
    (fixtures, last)
}

pub async fn a_rebuild_gives_read_models_identical_to_the_live_ones(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let (fixtures, last) = seed(&store, 6, 600).await;
    project_until(store.clone(), &read, last).await;
    let pool = raw_pool(&backend).await;
    let live = dump(&pool).await;
    assert!(live.iter().all(|(_, rows)| !rows.is_empty()));

    let report = read
        .rebuild(store.as_ref(), PROJECTION, &options(), &mut no_progress())
        .await
        .expect("rebuild");
    assert_eq!(report.position, last);
    assert_eq!(report.facts, last);
    assert_eq!(dump(&pool).await, live, "rebuilt read models differ");
    assert_eq!(read.applied_position().await.expect("checkpoint"), last);
    // The same handle's cached statements still work on the swapped-in tables.
    let d = details(&read, fixtures[0].event).await;
    assert_eq!(d.event.event_id, fixtures[0].event.0);

    // A second rebuild (index names, leftovers of the first) works as well.
    read.rebuild(store.as_ref(), PROJECTION, &options(), &mut no_progress())
        .await
        .expect("second rebuild");
    assert_eq!(dump(&pool).await, live, "second rebuild differs");
}

pub async fn an_unknown_projection_is_refused_with_the_known_names(backend: Backend) {
    let read = backend.read_models().await;
    let error = read
        .rebuild(
            backend.store.as_ref(),
            "nope",
            &options(),
            &mut no_progress(),
        )
        .await
        .expect_err("unknown projection");
    assert!(matches!(error, ProjectorError::UnknownProjection { .. }));
    assert!(error.to_string().contains("read_models"), "{error}");
}

pub async fn cached_statements_keep_working_across_the_swap(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let (fixtures, last) = seed(&store, 2, 100).await;
    project_until(store.clone(), &read, last).await;
    // A second handle (another pool) whose connections prepare the queries before the swap.
    let reader = backend.read_models().await;
    let filter = ListingFilter {
        limit: 50,
        ..ListingFilter::default()
    };
    for _ in 0..8 {
        assert_eq!(reader.list_events(&filter).await.expect("list").len(), 2);
        details(&reader, fixtures[1].event).await;
    }
    read.rebuild(store.as_ref(), PROJECTION, &options(), &mut no_progress())
        .await
        .expect("rebuild");
    for _ in 0..8 {
        assert_eq!(
            reader.list_events(&filter).await.expect("list after").len(),
            2
        );
        let d = details(&reader, fixtures[1].event).await;
        assert_eq!(d.event.event_id, fixtures[1].event.0);
    }
}

pub async fn queries_keep_answering_during_a_rebuild(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let (fixtures, last) = seed(&store, 10, 2_000).await;
    assert!(last >= 20_000, "log of {last} facts");
    project_until(store.clone(), &read, last).await;

    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for f in &fixtures[..2] {
        let reader = backend.read_models().await;
        let done = done.clone();
        let reads = reads.clone();
        let event = f.event;
        readers.push(tokio::spawn(async move {
            let filter = ListingFilter {
                limit: 100,
                ..ListingFilter::default()
            };
            while !done.load(Ordering::Relaxed) {
                let listed = reader
                    .list_events(&filter)
                    .await
                    .expect("list during rebuild");
                assert_eq!(listed.len(), 10, "listing during rebuild");
                let d = reader
                    .event(event.0)
                    .await
                    .expect("event during rebuild")
                    .expect("event present during rebuild");
                assert_eq!(d.ticket_types.len(), 2);
                assert!(d.event.confirmed > 0);
                reads.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut reports = 0;
    let report = read
        .rebuild(store.as_ref(), PROJECTION, &options(), &mut |_| {
            reports += 1
        })
        .await
        .expect("rebuild");
    // Keep reading a moment after the swap too.
    tokio::time::sleep(Duration::from_millis(200)).await;
    done.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.await.expect("reader never failed");
    }
    assert!(reports >= 40, "progress reported per transaction");
    assert_eq!(report.position, last);
    assert!(reads.load(Ordering::Relaxed) > 10, "readers ran");
}

pub async fn facts_appended_during_a_rebuild_are_applied_once_and_the_projector_goes_on(
    backend: Backend,
) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let (mut fixtures, last) = seed(&store, 4, 2_000).await;
    project_until(store.clone(), &read, last).await;
    let f = fixtures.remove(0);
    let before = seats(&details(&read, f.event).await, f.a).1;

    // The live projector runs throughout, as in `marquee serve`.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let projector = tokio::spawn(Projector::new(store.clone(), read.clone()).run(async move {
        let _ = stopped.await;
    }));
    let writing = Arc::new(AtomicBool::new(true));
    let writer = {
        let store = store.clone();
        let writing = writing.clone();
        tokio::spawn(async move {
            let mut seats = 0;
            let mut last = 0;
            while writing.load(Ordering::Relaxed) {
                last = append(
                    &store,
                    &f.event.stream(),
                    &[confirmed(RegistrationId(Uuid::now_v7()), f.a, 1)],
                )
                .await;
                seats += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            (seats, last)
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    read.rebuild(store.as_ref(), PROJECTION, &options(), &mut no_progress())
        .await
        .expect("rebuild");
    tokio::time::sleep(Duration::from_millis(100)).await;
    writing.store(false, Ordering::Relaxed);
    let (written, written_last) = writer.await.expect("writer");
    assert!(written > 0);
    assert!(
        read.wait_for(written_last, Duration::from_secs(20))
            .await
            .expect("wait"),
        "the live projector resumed after the swap"
    );
    assert_eq!(
        seats(&details(&read, f.event).await, f.a).1,
        before + written,
        "every seat appended during the rebuild counted exactly once"
    );

    // And it keeps going.
    let after = append(
        &store,
        &f.event.stream(),
        &[confirmed(RegistrationId(Uuid::now_v7()), f.a, 3)],
    )
    .await;
    assert!(
        read.wait_for(after, Duration::from_secs(20))
            .await
            .expect("wait")
    );
    assert_eq!(
        seats(&details(&read, f.event).await, f.a).1,
        before + written + 3
    );
    let _ = stop.send(());
    projector
        .await
        .expect("projector task")
        .expect("projector stops cleanly");
}

pub async fn a_rebuild_repairs_damaged_read_models(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let (fixtures, last) = seed(&store, 3, 300).await;
    project_until(store.clone(), &read, last).await;
    let pool = raw_pool(&backend).await;
    let healthy = dump(&pool).await;

    let event = fixtures[0].event.0.to_string();
    sqlx::query(
        "UPDATE event_listing SET confirmed = confirmed + 99, title = 'oops' WHERE event_id = $1",
    )
    .bind(&event)
    .execute(&pool)
    .await
    .expect("damage the listing");
    sqlx::query(
        "DELETE FROM registrations WHERE registration_id = \
         (SELECT MIN(registration_id) FROM registrations)",
    )
    .execute(&pool)
    .await
    .expect("lose a registration");
    sqlx::query("DELETE FROM venues WHERE venue_id = $1")
        .bind(fixtures[1].venue.0.to_string())
        .execute(&pool)
        .await
        .expect("lose a venue");
    sqlx::query("DELETE FROM timers WHERE timer_id = (SELECT MIN(timer_id) FROM timers)")
        .execute(&pool)
        .await
        .expect("lose a timer");
    sqlx::query("UPDATE tickets SET checked_in_at = NULL, check_in_nonce = NULL")
        .execute(&pool)
        .await
        .expect("forget the check-ins");
    sqlx::query("UPDATE event_capacity SET held = held + 5, waitlist = 0")
        .execute(&pool)
        .await
        .expect("damage the seat counts");
    sqlx::query("UPDATE waitlist_entries SET status = 'left'")
        .execute(&pool)
        .await
        .expect("damage the waitlist");
    assert_ne!(dump(&pool).await, healthy);

    read.rebuild(store.as_ref(), PROJECTION, &options(), &mut no_progress())
        .await
        .expect("rebuild");
    assert_eq!(
        dump(&pool).await,
        healthy,
        "the rebuild repaired the damage"
    );
}
