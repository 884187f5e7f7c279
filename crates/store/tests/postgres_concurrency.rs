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

/// What one booking task saw: the answers (draft, venue) of its committed groups, and how often
/// the venue had moved on between reading it and appending.
#[derive(Default)]
struct BookingReport {
    committed: Vec<[Appended; 2]>,
    conflicts: usize,
}

/// `bookings` times: read the venue's revision, then append one fact to a new draft stream and
/// one to the venue (expecting that revision), atomically; on `WrongExpectedRevision` read again
/// and retry the same draft, as the command side re-decides a refused command. The draft comes
/// first in the group, so a refused venue must take back a member that was fine on its own: an
/// append that was not all-or-nothing would leave the draft behind and fail the retry.
fn spawn_booker(store: Arc<dyn EventStore>, task: u64, bookings: u64) -> JoinHandle<BookingReport> {
    tokio::spawn(async move {
        let mut report = BookingReport::default();
        let mut venue_revision: Option<u64> = None;
        for n in 0..bookings {
            let draft = format!("draft-{task}-{n}");
            loop {
                let from = venue_revision.map_or(0, |r| r + 1);
                let newer = store
                    .read_stream("venue", from, usize::MAX)
                    .await
                    .expect("read venue");
                if let Some(last) = newer.last() {
                    venue_revision = Some(last.revision);
                }
                let expected =
                    venue_revision.map_or(ExpectedRevision::NoStream, ExpectedRevision::Exact);
                let group = vec![
                    AppendRequest {
                        stream: draft.clone(),
                        expected: ExpectedRevision::NoStream,
                        facts: vec![fact(task * 1_000 + n)],
                        idempotency: None,
                    },
                    AppendRequest {
                        stream: "venue".into(),
                        expected,
                        facts: vec![fact(task * 1_000 + n)],
                        idempotency: None,
                    },
                ];
                match store.append_atomic(group).await {
                    Ok(answers) => {
                        let answers: [Appended; 2] =
                            answers.try_into().expect("one answer per request");
                        venue_revision = Some(answers[1].revision);
                        report.committed.push(answers);
                        break;
                    }
                    // Only the venue can be stale: the draft stream is new, and a refused
                    // attempt must not have left anything on it.
                    Err(StoreError::WrongExpectedRevision { stream, .. }) => {
                        assert_eq!(stream, "venue", "a refused booking left its draft behind");
                        report.conflicts += 1;
                    }
                    Err(e) => panic!("atomic append failed: {e}"),
                }
            }
        }
        report
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_racing_atomic_bookings_on_one_venue_commit_each_once_and_tail_gaplessly() {
    let db = PgTestDb::create().await;
    // Two connects = two processes, so the venue's revision is raced across writers too.
    let a = connect(&db.url).await.expect("connect a");
    let b = connect(&db.url).await.expect("connect b");
    let mut subscription = a.subscribe(0);
    let mut seen: Vec<RecordedFact> = Vec::new();

    let bookers: Vec<_> = (1..=8)
        .map(|task| {
            let store = if task % 2 == 0 { a.clone() } else { b.clone() };
            spawn_booker(store, task, 50)
        })
        .collect();
    let mut bookers_done = Box::pin(async move {
        let mut reports = Vec::new();
        for booker in bookers {
            reports.push(booker.await.expect("booker panicked"));
        }
        reports
    });
    // Tail while the bookers run, so the subscriber is live, not only catching up.
    let reports = loop {
        tokio::select! {
            reports = &mut bookers_done => break reports,
            next = subscription.next() => {
                let fact = next.expect("subscription ended").expect("subscription failed");
                if let Some(previous) = seen.last() {
                    assert!(fact.position > previous.position, "out of order");
                }
                seen.push(fact);
            }
        }
    };

    let groups: Vec<[Appended; 2]> = reports
        .iter()
        .flat_map(|r| r.committed.iter().copied())
        .collect();
    let conflicts: usize = reports.iter().map(|r| r.conflicts).sum();
    assert_eq!(groups.len(), 8 * 50);
    assert!(
        conflicts > 0,
        "the venue's revision never raced; the test lost its teeth"
    );
    let committed = committed_positions(&[WriterReport {
        committed: groups.iter().flatten().copied().collect(),
        conflicts,
    }]);
    tail_until(&mut subscription, &mut seen, committed.len() as u64).await;
    assert_gapless_exactly(&seen, &committed);
    let unique: BTreeSet<Uuid> = seen.iter().map(|f| f.fact_id).collect();
    assert_eq!(unique.len(), seen.len(), "a fact was delivered twice");

    // Each group's two facts sit side by side: the draft's, then the venue's.
    for [draft, venue] in &groups {
        assert_eq!(draft.first_position, draft.last_position);
        assert_eq!(draft.revision, 0);
        assert_eq!(venue.first_position, draft.last_position + 1);
        let at = |p: u64| &seen[usize::try_from(p - 1).expect("index")];
        assert!(at(draft.last_position).stream.starts_with("draft-"));
        assert_eq!(at(venue.first_position).stream, "venue");
    }
    // The venue has exactly one fact per other stream, revisions 0..n in position order.
    let venue_revisions: Vec<u64> = seen
        .iter()
        .filter(|f| f.stream == "venue")
        .map(|f| f.revision)
        .collect();
    let drafts: BTreeSet<&str> = seen
        .iter()
        .filter(|f| f.stream != "venue")
        .map(|f| f.stream.as_str())
        .collect();
    assert_eq!(venue_revisions.len(), drafts.len());
    assert_eq!(venue_revisions, (0..400).collect::<Vec<_>>());
    let stored = b
        .read_stream("venue", 0, usize::MAX)
        .await
        .expect("read venue");
    assert_eq!(stored.len(), 400);
    eprintln!("postgres: 400 atomic bookings on one venue after {conflicts} conflicts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_value_the_database_refuses_fails_its_whole_atomic_group_and_nothing_else() {
    let db = PgTestDb::create().await;
    let store = connect(&db.url).await.expect("connect");
    let request = |stream: String, new: NewFact| AppendRequest {
        stream,
        expected: ExpectedRevision::NoStream,
        facts: vec![new],
        idempotency: None,
    };
    // JSONB cannot hold U+0000: group 7's second member fails inside the batch transaction. The
    // writer retries unit by unit, so group 7 must fail whole, its neighbours (lone appends and
    // another group) must commit.
    let tasks: Vec<_> = (0..32u64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let outcome = if i == 7 || i == 20 {
                    let mut second = fact(i);
                    if i == 7 {
                        second.data = json!({ "text": "nul \u{0000} byte" });
                    }
                    store
                        .append_atomic(vec![
                            request(format!("s-{i}-a"), fact(i)),
                            request(format!("s-{i}-b"), second),
                        ])
                        .await
                } else {
                    store
                        .append(request(format!("s-{i}"), fact(i)))
                        .await
                        .map(|a| vec![a])
                };
                (i, outcome)
            })
        })
        .collect();
    for task in tasks {
        let (i, outcome) = task.await.expect("task");
        if i == 7 {
            assert!(
                matches!(outcome, Err(StoreError::Database(_))),
                "{outcome:?}"
            );
        } else {
            let answers = outcome.unwrap_or_else(|e| panic!("append {i} failed: {e}"));
            if i == 20 {
                assert_eq!(answers[1].first_position, answers[0].last_position + 1);
            }
        }
    }
    assert!(
        store
            .read_stream("s-7-a", 0, 10)
            .await
            .expect("read")
            .is_empty(),
        "the healthy member of the failed group was written"
    );
    let all = store.read_all(0, usize::MAX).await.expect("read");
    let positions: Vec<u64> = all.iter().map(|f| f.position).collect();
    assert_eq!(positions, (1..=32).collect::<Vec<_>>());
}
