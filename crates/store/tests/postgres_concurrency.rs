//! The gapless tail on Postgres, under real concurrency: many writers (in one store and in two
//! stores, i.e. two processes) race on shared streams while subscribers tail the log. Every
//! committed fact must reach every subscriber exactly once, in strictly increasing position
//! order, and the positions must be exactly the committed ones, 1..=N with no hole.
//!
//! Every test name contains `postgres` so CI can check these ran.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use marquee_store::testing::PgTestDb;
use marquee_store::{
    AppendRequest, Appended, EventStore, ExpectedRevision, FactMetadata, FactStream, NewFact,
    RecordedFact, StoreError, connect,
};
use serde_json::json;
use sqlx::{Connection, PgConnection};
use tokio::task::JoinHandle;
use uuid::Uuid;

const PATIENCE: Duration = Duration::from_secs(120);

/// A tiny deterministic generator (xorshift), so a failing run can be reasoned about.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }
}

fn fact(n: u64) -> NewFact {
    NewFact {
        fact_id: Uuid::now_v7(),
        fact_type: "Counted".into(),
        schema_version: 1,
        data: json!({ "n": n }),
        metadata: FactMetadata::default(),
    }
}

#[derive(Default)]
struct WriterReport {
    committed: Vec<Appended>,
    conflicts: usize,
}

/// Appends `appends` times to random streams among `streams`; a third of them with an Exact
/// revision taken from what this writer last saw, which other writers race to invalidate.
fn spawn_writer(
    store: Arc<dyn EventStore>,
    seed: u64,
    appends: u64,
    streams: u64,
) -> JoinHandle<WriterReport> {
    tokio::spawn(async move {
        let mut dice = Dice(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut last_seen: HashMap<String, u64> = HashMap::new();
        let mut report = WriterReport::default();
        for n in 0..appends {
            let stream = format!("stream-{}", dice.roll(streams));
            let expected = match last_seen.get(&stream) {
                Some(revision) if dice.roll(3) == 0 => ExpectedRevision::Exact(*revision),
                _ => ExpectedRevision::Any,
            };
            let facts = (0..=dice.roll(3)).map(|i| fact(n * 10 + i)).collect();
            let request = AppendRequest {
                stream: stream.clone(),
                expected,
                facts,
                idempotency: None,
            };
            match store.append(request).await {
                Ok(appended) => {
                    last_seen.insert(stream, appended.revision);
                    report.committed.push(appended);
                }
                Err(StoreError::WrongExpectedRevision { actual, .. }) => {
                    report.conflicts += 1;
                    if let Some(actual) = actual {
                        last_seen.insert(stream, actual);
                    }
                }
                Err(e) => panic!("append failed: {e}"),
            }
        }
        report
    })
}

/// Tails a subscription until it has seen `until` (a position), checking order as it goes.
async fn tail_until(subscription: &mut FactStream, seen: &mut Vec<RecordedFact>, until: u64) {
    while seen.last().map_or(0, |f| f.position) < until {
        let next = tokio::time::timeout(PATIENCE, subscription.next())
            .await
            .unwrap_or_else(|_| panic!("tail stalled after {} facts", seen.len()));
        let fact = next
            .expect("subscription ended")
            .expect("subscription failed");
        if let Some(previous) = seen.last() {
            assert!(
                fact.position > previous.position,
                "position {} after {}",
                fact.position,
                previous.position
            );
        }
        seen.push(fact);
    }
}

/// Every position the writers' accepted appends were given; asserts no two appends share one.
fn committed_positions(reports: &[WriterReport]) -> BTreeSet<u64> {
    let mut positions = BTreeSet::new();
    for appended in reports.iter().flat_map(|r| &r.committed) {
        for position in appended.first_position..=appended.last_position {
            assert!(
                positions.insert(position),
                "position {position} given twice"
            );
        }
    }
    positions
}

#[track_caller]
fn assert_gapless_exactly(seen: &[RecordedFact], committed: &BTreeSet<u64>) {
    let seen_positions: Vec<u64> = seen.iter().map(|f| f.position).collect();
    let expected: Vec<u64> = (1..=committed.len() as u64).collect();
    assert_eq!(
        committed.iter().copied().collect::<Vec<_>>(),
        expected,
        "committed positions have a hole"
    );
    assert_eq!(
        seen_positions, expected,
        "the tail differs from what committed"
    );
}

async fn join_all(writers: Vec<JoinHandle<WriterReport>>) -> Vec<WriterReport> {
    let mut reports = Vec::new();
    for writer in writers {
        reports.push(writer.await.expect("writer panicked"));
    }
    reports
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_eight_racing_writers_and_a_live_tail_see_every_fact_once_in_order() {
    let db = PgTestDb::create().await;
    let store = connect(&db.url).await.expect("connect");
    let mut subscription = store.subscribe(0);
    let mut seen = Vec::new();

    let started = Instant::now();
    let writers: Vec<_> = (1..=8)
        .map(|w| spawn_writer(store.clone(), w, 1_000, 40))
        .collect();
    // Tail while the writers run, so the subscriber really is live (not only catching up).
    let mut writers_done = Box::pin(join_all(writers));
    let reports = loop {
        tokio::select! {
            reports = &mut writers_done => break reports,
            next = subscription.next() => {
                let fact = next.expect("subscription ended").expect("subscription failed");
                if let Some(previous) = seen.last() {
                    let previous: &RecordedFact = previous;
                    assert!(fact.position > previous.position, "out of order");
                }
                seen.push(fact);
            }
        }
    };
    let elapsed = started.elapsed();
    let committed = committed_positions(&reports);
    tail_until(&mut subscription, &mut seen, committed.len() as u64).await;
    assert_gapless_exactly(&seen, &committed);

    let appends: usize = reports.iter().map(|r| r.committed.len()).sum();
    let conflicts: usize = reports.iter().map(|r| r.conflicts).sum();
    assert_eq!(appends + conflicts, 8_000);
    assert!(
        conflicts > 0,
        "the Exact revisions never raced; the test lost its teeth"
    );
    eprintln!(
        "postgres: {appends} appends ({} facts) + {conflicts} conflicts from 8 writers in {elapsed:?} \
         = {:.0} appends/s",
        committed.len(),
        8_000.0 / elapsed.as_secs_f64()
    );
    // Nothing is delivered twice or beyond the committed head.
    assert!(
        tokio::time::timeout(Duration::from_millis(700), subscription.next())
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_store_instances_appending_at_once_keep_one_gapless_tail() {
    let db = PgTestDb::create().await;
    // Two connects = two processes: separate pools, writers and listeners.
    let a = connect(&db.url).await.expect("connect a");
    let b = connect(&db.url).await.expect("connect b");
    let mut tail_a = a.subscribe(0);
    let mut tail_b = b.subscribe(0);

    let writers: Vec<_> = (1..=8)
        .map(|w| {
            let store = if w % 2 == 0 { a.clone() } else { b.clone() };
            spawn_writer(store, 100 + w, 300, 10)
        })
        .collect();
    let reports = join_all(writers).await;
    let committed = committed_positions(&reports);

    let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());
    tail_until(&mut tail_a, &mut seen_a, committed.len() as u64).await;
    tail_until(&mut tail_b, &mut seen_b, committed.len() as u64).await;
    assert_gapless_exactly(&seen_a, &committed);
    assert_gapless_exactly(&seen_b, &committed);
    assert_eq!(seen_a, seen_b, "both processes see the same log");

    // Per stream, revisions are 0..n in position order.
    let mut next_revision: HashMap<&str, u64> = HashMap::new();
    for fact in &seen_a {
        let expected = next_revision.entry(fact.stream.as_str()).or_insert(0);
        assert_eq!(fact.revision, *expected, "stream {}", fact.stream);
        *expected += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_value_the_database_refuses_fails_only_its_own_append() {
    let db = PgTestDb::create().await;
    let store = connect(&db.url).await.expect("connect");
    // JSONB cannot hold U+0000, so this request fails inside the batch transaction; the writer
    // must retry its neighbours alone rather than fail them all.
    let tasks: Vec<_> = (0..32u64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut new = fact(i);
                if i == 7 {
                    new.data = json!({ "text": "nul \u{0000} byte" });
                }
                let request = AppendRequest {
                    stream: format!("s-{i}"),
                    expected: ExpectedRevision::NoStream,
                    facts: vec![new],
                    idempotency: None,
                };
                (i, store.append(request).await)
            })
        })
        .collect();
    for task in tasks {
        let (i, result) = task.await.expect("task");
        if i == 7 {
            assert!(matches!(result, Err(StoreError::Database(_))), "{result:?}");
        } else {
            result.unwrap_or_else(|e| panic!("append {i} failed: {e}"));
        }
    }
    let all = store.read_all(0, usize::MAX).await.expect("read");
    let positions: Vec<u64> = all.iter().map(|f| f.position).collect();
    assert_eq!(positions, (1..=31).collect::<Vec<_>>());
}

#[tokio::test]
async fn postgres_test_databases_are_dropped_with_their_handle() {
    let db = PgTestDb::create().await;
    let name = db.name.clone();
    let store = connect(&db.url).await.expect("connect");
    // An open store and subscription must not keep the database alive (DROP … WITH (FORCE)).
    let _subscription = store.subscribe(0);
    drop(db);
    let admin_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| marquee_store::testing::DEFAULT_ADMIN_URL.to_owned());
    let mut admin = PgConnection::connect(&admin_url).await.expect("admin");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_one(&mut admin)
        .await
        .expect("query");
    assert_eq!(left, 0, "{name} was left behind");
}
