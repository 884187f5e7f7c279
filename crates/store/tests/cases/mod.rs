//! The contract cases, one function per rule, each given a fresh, empty store.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use futures::StreamExt;
use marquee_store::{
    AppendRequest, Appended, EventStore, ExpectedRevision, FactMetadata, IdempotencyWrite,
    IdempotentResponse, NewFact, RecordedFact, Snapshot, StoreError,
};
use serde_json::json;
use uuid::Uuid;

/// Long enough for a slow CI machine, short enough that a hang fails the test.
const PATIENCE: Duration = Duration::from_secs(60);

pub fn fact(fact_type: &str, n: u64) -> NewFact {
    NewFact {
        fact_id: Uuid::now_v7(),
        fact_type: fact_type.into(),
        schema_version: 1,
        data: json!({ "n": n }),
        metadata: FactMetadata::default(),
    }
}

pub fn request(stream: &str, expected: ExpectedRevision, facts: Vec<NewFact>) -> AppendRequest {
    AppendRequest {
        stream: stream.into(),
        expected,
        facts,
        idempotency: None,
    }
}

fn response(hash: &str, status: u16, created_at: chrono::DateTime<Utc>) -> IdempotentResponse {
    IdempotentResponse {
        request_hash: hash.into(),
        status,
        body: json!({ "status": status, "hash": hash }),
        created_at: created_at.with_timezone(&Utc),
    }
}

fn appended(first: u64, last: u64, revision: u64) -> Appended {
    Appended {
        first_position: first,
        last_position: last,
        revision,
    }
}

async fn append_one(store: &dyn EventStore, stream: &str, n: u64) -> Appended {
    store
        .append(request(
            stream,
            ExpectedRevision::Any,
            vec![fact("Counted", n)],
        ))
        .await
        .expect("append")
}

fn positions(facts: &[RecordedFact]) -> Vec<u64> {
    facts.iter().map(|f| f.position).collect()
}

#[track_caller]
fn assert_wrong_revision(
    result: Result<Appended, StoreError>,
    expected: ExpectedRevision,
    actual: Option<u64>,
) {
    match result {
        Err(StoreError::WrongExpectedRevision {
            expected: e,
            actual: a,
            ..
        }) => {
            assert_eq!(e, expected);
            assert_eq!(a, actual);
        }
        other => panic!("expected WrongExpectedRevision, got {other:?}"),
    }
}

/// Reads `n` facts from a subscription, failing the test instead of hanging.
async fn take(stream: &mut marquee_store::FactStream, n: usize) -> Vec<RecordedFact> {
    let mut seen = Vec::with_capacity(n);
    while seen.len() < n {
        let next = tokio::time::timeout(PATIENCE, stream.next())
            .await
            .unwrap_or_else(|_| panic!("subscription stalled after {} facts", seen.len()));
        seen.push(
            next.expect("subscription ended")
                .expect("subscription failed"),
        );
    }
    seen
}

pub async fn appending_to_a_new_stream_starts_at_revision_zero_and_position_one(
    store: Arc<dyn EventStore>,
) {
    assert_eq!(store.head_position().await.expect("head"), 0);
    let result = store
        .append(request(
            "event-1",
            ExpectedRevision::NoStream,
            vec![fact("EventCreated", 0), fact("EventPublished", 1)],
        ))
        .await
        .expect("append");
    assert_eq!(result, appended(1, 2, 1));
    let facts = store.read_stream("event-1", 0, 100).await.expect("read");
    assert_eq!(positions(&facts), vec![1, 2]);
    assert_eq!(facts[0].revision, 0);
    assert_eq!(facts[1].revision, 1);
    assert_eq!(store.head_position().await.expect("head"), 2);
}

pub async fn no_stream_is_refused_once_the_stream_exists_and_nothing_is_written(
    store: Arc<dyn EventStore>,
) {
    append_one(&*store, "s", 0).await;
    let refused = store
        .append(request("s", ExpectedRevision::NoStream, vec![fact("X", 1)]))
        .await;
    assert_wrong_revision(refused, ExpectedRevision::NoStream, Some(0));
    assert_eq!(store.read_stream("s", 0, 10).await.expect("read").len(), 1);
    assert_eq!(store.head_position().await.expect("head"), 1);
}

pub async fn exact_revision_must_name_the_last_revision_and_a_mismatch_writes_nothing(
    store: Arc<dyn EventStore>,
) {
    store
        .append(request(
            "s",
            ExpectedRevision::NoStream,
            vec![fact("A", 0), fact("B", 1)],
        ))
        .await
        .expect("append");
    for stale in [0, 2, 7] {
        let refused = store
            .append(request(
                "s",
                ExpectedRevision::Exact(stale),
                vec![fact("C", 2), fact("D", 3)],
            ))
            .await;
        assert_wrong_revision(refused, ExpectedRevision::Exact(stale), Some(1));
    }
    assert_eq!(store.head_position().await.expect("head"), 2);
    let accepted = store
        .append(request("s", ExpectedRevision::Exact(1), vec![fact("C", 2)]))
        .await
        .expect("append at the right revision");
    // The refused appends consumed no positions.
    assert_eq!(accepted, appended(3, 3, 2));
}

pub async fn exact_revision_on_a_missing_stream_reports_no_actual_revision(
    store: Arc<dyn EventStore>,
) {
    let refused = store
        .append(request(
            "nowhere",
            ExpectedRevision::Exact(0),
            vec![fact("A", 0)],
        ))
        .await;
    assert_wrong_revision(refused, ExpectedRevision::Exact(0), None);
    assert!(
        store
            .read_stream("nowhere", 0, 10)
            .await
            .expect("read")
            .is_empty()
    );
}

pub async fn any_appends_whatever_the_stream_revision(store: Arc<dyn EventStore>) {
    let first = append_one(&*store, "s", 0).await;
    let second = append_one(&*store, "s", 1).await;
    assert_eq!(first, appended(1, 1, 0));
    assert_eq!(second, appended(2, 2, 1));
}

pub async fn a_multi_fact_append_gets_contiguous_positions_and_revisions(
    store: Arc<dyn EventStore>,
) {
    append_one(&*store, "other", 0).await;
    let facts: Vec<NewFact> = (0..5).map(|n| fact("Step", n)).collect();
    let ids: Vec<Uuid> = facts.iter().map(|f| f.fact_id).collect();
    let result = store
        .append(request("s", ExpectedRevision::NoStream, facts))
        .await
        .expect("append");
    assert_eq!(result, appended(2, 6, 4));
    let stored = store.read_stream("s", 0, 100).await.expect("read");
    assert_eq!(stored.iter().map(|f| f.fact_id).collect::<Vec<_>>(), ids);
    assert_eq!(positions(&stored), vec![2, 3, 4, 5, 6]);
    assert_eq!(
        stored.iter().map(|f| f.revision).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
}

pub async fn a_refused_multi_fact_append_writes_none_of_its_facts(store: Arc<dyn EventStore>) {
    append_one(&*store, "s", 0).await;
    let facts: Vec<NewFact> = (0..3).map(|n| fact("Step", n)).collect();
    let ids: Vec<Uuid> = facts.iter().map(|f| f.fact_id).collect();
    let refused = store
        .append(request("s", ExpectedRevision::Exact(5), facts))
        .await;
    assert!(refused.is_err());
    let all = store.read_all(0, 100).await.expect("read");
    assert_eq!(all.len(), 1);
    assert!(all.iter().all(|f| !ids.contains(&f.fact_id)));
}

pub async fn empty_appends_and_blank_stream_names_are_invalid(store: Arc<dyn EventStore>) {
    let empty = store
        .append(request("s", ExpectedRevision::Any, Vec::new()))
        .await;
    assert!(matches!(empty, Err(StoreError::Invalid(_))), "{empty:?}");
    let blank = store
        .append(request(" ", ExpectedRevision::Any, vec![fact("A", 0)]))
        .await;
    assert!(matches!(blank, Err(StoreError::Invalid(_))), "{blank:?}");
    assert_eq!(store.head_position().await.expect("head"), 0);
}

pub async fn read_stream_starts_at_from_revision_and_honours_the_limit(store: Arc<dyn EventStore>) {
    for n in 0..10 {
        append_one(&*store, "s", n).await;
        append_one(&*store, "noise", n).await;
    }
    let page = store.read_stream("s", 3, 4).await.expect("read");
    assert_eq!(
        page.iter().map(|f| f.revision).collect::<Vec<_>>(),
        vec![3, 4, 5, 6]
    );
    assert!(page.iter().all(|f| f.stream == "s"));
    assert_eq!(store.read_stream("s", 8, 100).await.expect("read").len(), 2);
    assert!(
        store
            .read_stream("s", 10, 100)
            .await
            .expect("read")
            .is_empty()
    );
    assert!(store.read_stream("s", 0, 0).await.expect("read").is_empty());
    assert!(
        store
            .read_stream("unknown", 0, 10)
            .await
            .expect("read")
            .is_empty()
    );
}

pub async fn read_all_returns_facts_after_a_position_in_order_up_to_the_limit(
    store: Arc<dyn EventStore>,
) {
    for n in 0..12 {
        append_one(&*store, &format!("s-{}", n % 3), n).await;
    }
    let all = store.read_all(0, usize::MAX).await.expect("read");
    assert_eq!(positions(&all), (1..=12).collect::<Vec<_>>());
    let page = store.read_all(4, 5).await.expect("read");
    assert_eq!(positions(&page), vec![5, 6, 7, 8, 9]);
    assert_eq!(
        positions(&store.read_all(10, 100).await.expect("read")),
        vec![11, 12]
    );
    assert!(store.read_all(12, 100).await.expect("read").is_empty());
    assert!(store.read_all(0, 0).await.expect("read").is_empty());
}

pub async fn re_appending_stored_fact_ids_is_a_no_op_that_answers_the_original_positions(
    store: Arc<dyn EventStore>,
) {
    let facts = vec![fact("A", 0), fact("B", 1)];
    let first = store
        .append(request("s", ExpectedRevision::NoStream, facts.clone()))
        .await
        .expect("append");
    append_one(&*store, "s", 2).await;
    // A retry with the same facts: its expected revision is stale, yet it is answered as stored.
    let retry = store
        .append(request("s", ExpectedRevision::NoStream, facts.clone()))
        .await
        .expect("retry");
    assert_eq!(retry, first);
    assert_eq!(store.head_position().await.expect("head"), 3);

    // A fact repeated inside one append is stored once.
    let repeated = fact("C", 3);
    let result = store
        .append(request(
            "t",
            ExpectedRevision::NoStream,
            vec![repeated.clone(), repeated],
        ))
        .await
        .expect("append");
    assert_eq!(result, appended(4, 4, 0));
    assert_eq!(store.read_all(0, 100).await.expect("read").len(), 4);
}

pub async fn metadata_round_trips_with_every_field(store: Arc<dyn EventStore>) {
    append_one(&*store, "before", 0).await;
    let correlation = Uuid::now_v7();
    let causation = Uuid::now_v7();
    let new = NewFact {
        fact_id: Uuid::now_v7(),
        fact_type: "RegistrationConfirmed".into(),
        schema_version: 3,
        data: json!({
            "attendee": "Zoë", "seats": 2, "price": { "amount_minor": 2500, "currency": "EUR" },
            "tags": ["a", "b"], "note": null, "ratio": 0.25, "big": 9_007_199_254_740_993_u64
        }),
        metadata: FactMetadata {
            correlation_id: Some(correlation),
            causation_id: Some(causation),
            actor: Some("user:42".into()),
            organization: Some("0193a5ef-0000-7000-8000-00000000000a".into()),
        },
    };
    let before = Utc::now() - TimeDelta::seconds(5);
    store
        .append(request(
            "event-9",
            ExpectedRevision::NoStream,
            vec![new.clone()],
        ))
        .await
        .expect("append");
    let after = Utc::now() + TimeDelta::seconds(5);

    let stored = store.read_stream("event-9", 0, 1).await.expect("read");
    let got = &stored[0];
    assert_eq!(got.fact_id, new.fact_id);
    assert_eq!(got.stream, "event-9");
    assert_eq!(got.revision, 0);
    assert_eq!(got.position, 2);
    assert_eq!(got.fact_type, "RegistrationConfirmed");
    assert_eq!(got.schema_version, 3);
    assert_eq!(got.data, new.data);
    assert_eq!(got.metadata, new.metadata);
    assert!(
        got.recorded_at > before && got.recorded_at < after,
        "{}",
        got.recorded_at
    );
    // read_all gives the very same record.
    assert_eq!(&store.read_all(1, 1).await.expect("read")[0], got);
    // And a fact without metadata stays without.
    let plain = &store.read_all(0, 1).await.expect("read")[0];
    assert_eq!(plain.metadata, FactMetadata::default());
}

pub async fn idempotency_put_then_get_returns_the_first_answer(store: Arc<dyn EventStore>) {
    assert_eq!(store.idempotency_get("k").await.expect("get"), None);
    let first = response("hash-1", 409, Utc::now());
    store
        .idempotency_put(IdempotencyWrite {
            key: "k".into(),
            response: first.clone(),
        })
        .await
        .expect("put");
    store
        .idempotency_put(IdempotencyWrite {
            key: "k".into(),
            response: response("hash-2", 201, Utc::now()),
        })
        .await
        .expect("second put is not an error");
    let got = store
        .idempotency_get("k")
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(got.request_hash, "hash-1");
    assert_eq!(got.status, 409);
    assert_eq!(got.body, first.body);
    assert!((got.created_at - first.created_at).abs() < TimeDelta::milliseconds(1));
}

pub async fn idempotency_entries_older_than_a_day_are_ignored_and_may_be_replaced(
    store: Arc<dyn EventStore>,
) {
    let stale = Utc::now() - TimeDelta::hours(25);
    store
        .idempotency_put(IdempotencyWrite {
            key: "old".into(),
            response: response("hash-1", 201, stale),
        })
        .await
        .expect("put");
    assert_eq!(store.idempotency_get("old").await.expect("get"), None);
    store
        .idempotency_put(IdempotencyWrite {
            key: "old".into(),
            response: response("hash-2", 200, Utc::now()),
        })
        .await
        .expect("put");
    let got = store
        .idempotency_get("old")
        .await
        .expect("get")
        .expect("replaced");
    assert_eq!(got.request_hash, "hash-2");
}

pub async fn an_append_stores_its_idempotency_answer_and_the_key_cannot_append_twice(
    store: Arc<dyn EventStore>,
) {
    let mut first = request("s", ExpectedRevision::NoStream, vec![fact("A", 0)]);
    first.idempotency = Some(IdempotencyWrite {
        key: "req-1".into(),
        response: response("hash", 201, Utc::now()),
    });
    store.append(first.clone()).await.expect("append");
    let got = store
        .idempotency_get("req-1")
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(got.status, 201);
    // The remembered body names the append's last position, known only at commit.
    assert_eq!(got.body["position"], json!(1));
    assert_eq!(got.body["hash"], json!("hash"));

    // Same key, new facts (a concurrent duplicate request): refused, nothing written.
    let mut second = request("t", ExpectedRevision::Any, vec![fact("B", 1)]);
    second.idempotency = first.idempotency.clone();
    match store.append(second).await {
        Err(StoreError::IdempotencyKeyTaken { key }) => assert_eq!(key, "req-1"),
        other => panic!("expected IdempotencyKeyTaken, got {other:?}"),
    }
    assert_eq!(store.head_position().await.expect("head"), 1);

    // A refused append does not store its answer.
    let mut refused = request("s", ExpectedRevision::NoStream, vec![fact("C", 2)]);
    refused.idempotency = Some(IdempotencyWrite {
        key: "req-2".into(),
        response: response("hash", 201, Utc::now()),
    });
    assert!(store.append(refused).await.is_err());
    assert_eq!(store.idempotency_get("req-2").await.expect("get"), None);

    // Retrying the very same append (same fact ids) is a no-op, not an error.
    assert_eq!(store.append(first).await.expect("retry"), appended(1, 1, 0));
}

pub async fn snapshots_keep_the_newest_revision(store: Arc<dyn EventStore>) {
    assert_eq!(store.load_snapshot("s").await.expect("load"), None);
    let snapshot = |revision: u64, version: u32| Snapshot {
        stream: "s".into(),
        revision,
        schema_version: version,
        state: json!({ "seen": revision }),
    };
    store.save_snapshot(snapshot(10, 1)).await.expect("save");
    store
        .save_snapshot(snapshot(5, 1))
        .await
        .expect("save older");
    assert_eq!(
        store.load_snapshot("s").await.expect("load"),
        Some(snapshot(10, 1))
    );
    store
        .save_snapshot(snapshot(20, 2))
        .await
        .expect("save newer");
    assert_eq!(
        store.load_snapshot("s").await.expect("load"),
        Some(snapshot(20, 2))
    );
    assert_eq!(store.load_snapshot("other").await.expect("load"), None);
}

pub async fn snapshot_policy_has_a_default(store: Arc<dyn EventStore>) {
    assert_eq!(
        store.snapshot_every(),
        marquee_store::DEFAULT_SNAPSHOT_EVERY
    );
}

pub async fn subscribe_catches_up_then_goes_live_without_loss_or_duplicates(
    store: Arc<dyn EventStore>,
) {
    // More than one catch-up page, in one append so it is quick on every backend.
    let backlog: Vec<NewFact> = (0..1200).map(|n| fact("Backlog", n)).collect();
    store
        .append(request("backlog", ExpectedRevision::NoStream, backlog))
        .await
        .expect("append backlog");

    let mut subscription = store.subscribe(0);
    // Writers run while the subscriber is still catching up, and after.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for n in 0..50 {
                    append_one(&*store, &format!("live-{w}"), n).await;
                    if n % 10 == 0 {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            })
        })
        .collect();
    let seen = take(&mut subscription, 1200 + 200).await;
    for writer in writers {
        writer.await.expect("writer");
    }
    assert_eq!(positions(&seen), (1..=1400).collect::<Vec<_>>());

    // Live: a fact appended now arrives, and nothing more.
    append_one(&*store, "late", 0).await;
    let late = take(&mut subscription, 1).await;
    assert_eq!(late[0].position, 1401);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), subscription.next())
            .await
            .is_err(),
        "nothing more to deliver"
    );
}

pub async fn subscribe_after_a_position_starts_after_it(store: Arc<dyn EventStore>) {
    for n in 0..5 {
        append_one(&*store, "s", n).await;
    }
    let mut subscription = store.subscribe(3);
    let seen = take(&mut subscription, 2).await;
    assert_eq!(positions(&seen), vec![4, 5]);
    // Subscribing at the head waits for the next fact.
    let mut at_head = store.subscribe(5);
    append_one(&*store, "s", 5).await;
    assert_eq!(take(&mut at_head, 1).await[0].position, 6);
}

pub async fn a_dropped_subscription_does_not_disturb_the_store(store: Arc<dyn EventStore>) {
    let subscription = store.subscribe(0);
    drop(subscription);
    let mut waiting = store.subscribe(0);
    let pending = tokio::time::timeout(Duration::from_millis(50), waiting.next()).await;
    assert!(pending.is_err(), "nothing to deliver yet");
    drop(waiting);
    append_one(&*store, "s", 0).await;
    assert_eq!(store.head_position().await.expect("head"), 1);
}

pub async fn concurrent_appends_are_committed_together_and_a_conflict_fails_alone(
    store: Arc<dyn EventStore>,
) {
    append_one(&*store, "contested", 0).await;
    // 64 appends at once: 63 to their own streams, one with a stale expected revision.
    let tasks: Vec<_> = (0..64u64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let req = if i == 17 {
                    request(
                        "contested",
                        ExpectedRevision::NoStream,
                        vec![fact("Late", i)],
                    )
                } else {
                    request(
                        &format!("own-{i}"),
                        ExpectedRevision::NoStream,
                        vec![fact("Mine", i), fact("Mine", i + 100)],
                    )
                };
                (i, store.append(req).await)
            })
        })
        .collect();
    let mut last_positions = HashSet::new();
    for task in tasks {
        let (i, result) = task.await.expect("task");
        if i == 17 {
            assert_wrong_revision(result, ExpectedRevision::NoStream, Some(0));
        } else {
            let a = result.unwrap_or_else(|e| panic!("append {i} failed: {e}"));
            assert_eq!(a.last_position, a.first_position + 1);
            assert_eq!(a.revision, 1);
            assert!(last_positions.insert(a.last_position));
        }
    }
    let all = store.read_all(0, usize::MAX).await.expect("read");
    assert_eq!(positions(&all), (1..=1 + 63 * 2).collect::<Vec<_>>());
    // Each append's two facts are adjacent: appends are never interleaved.
    for pair in all[1..].chunks(2) {
        assert_eq!(pair[0].stream, pair[1].stream);
    }
}

pub async fn a_chain_of_appends_is_checked_link_by_link_in_order(store: Arc<dyn EventStore>) {
    append_one(&*store, "chained", 0).await;
    let chain = vec![
        request(
            "chained",
            ExpectedRevision::Exact(0),
            vec![fact("A", 1), fact("A", 2)],
        ),
        // Expects the two facts of the link before it.
        request("chained", ExpectedRevision::Exact(2), vec![fact("B", 3)]),
        // Stale: the stream is at revision 3 by now.
        request("chained", ExpectedRevision::Exact(2), vec![fact("C", 4)]),
        // Expects the refused link's fact, so it is refused too.
        request("chained", ExpectedRevision::Exact(4), vec![fact("D", 5)]),
        request("elsewhere", ExpectedRevision::NoStream, vec![fact("E", 6)]),
    ];
    let outcomes = store.append_all(chain).await;
    assert_eq!(outcomes.len(), 5);
    let mut outcomes = outcomes.into_iter();
    assert_eq!(outcomes.next().unwrap().expect("link 0"), appended(2, 3, 2));
    assert_eq!(outcomes.next().unwrap().expect("link 1"), appended(4, 4, 3));
    assert_wrong_revision(
        outcomes.next().unwrap(),
        ExpectedRevision::Exact(2),
        Some(3),
    );
    assert_wrong_revision(
        outcomes.next().unwrap(),
        ExpectedRevision::Exact(4),
        Some(3),
    );
    assert_eq!(outcomes.next().unwrap().expect("link 4"), appended(5, 5, 0));
    let stored = store.read_stream("chained", 0, 100).await.expect("read");
    let types: Vec<&str> = stored.iter().map(|f| f.fact_type.as_str()).collect();
    assert_eq!(types, ["Counted", "A", "A", "B"]);
    assert_eq!(
        positions(&store.read_all(0, 100).await.expect("all")),
        [1, 2, 3, 4, 5]
    );
}

pub async fn a_chain_with_an_unusable_link_writes_nothing(store: Arc<dyn EventStore>) {
    let chain = vec![
        request("fine", ExpectedRevision::NoStream, vec![fact("A", 1)]),
        request("  ", ExpectedRevision::Any, vec![fact("B", 2)]),
    ];
    let outcomes = store.append_all(chain).await;
    assert_eq!(outcomes.len(), 2);
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Err(StoreError::Invalid(_)))),
        "{outcomes:?}"
    );
    assert!(store.read_all(0, 10).await.expect("read").is_empty());
}

fn keyed(mut r: AppendRequest, key: &str) -> AppendRequest {
    r.idempotency = Some(IdempotencyWrite {
        key: key.into(),
        response: response("hash", 201, Utc::now()),
    });
    r
}

fn fact_ids(facts: &[RecordedFact]) -> Vec<Uuid> {
    facts.iter().map(|f| f.fact_id).collect()
}

pub async fn an_atomic_append_writes_two_streams_with_consecutive_positions(
    store: Arc<dyn EventStore>,
) {
    append_one(&*store, "noise", 0).await;
    store
        .append(request(
            "venue",
            ExpectedRevision::NoStream,
            vec![fact("VenueCreated", 1)],
        ))
        .await
        .expect("venue");
    let venue_facts = vec![fact("SlotBooked", 2), fact("SlotConfirmed", 3)];
    let event_facts = vec![fact("EventDrafted", 4)];
    let answers = store
        .append_atomic(vec![
            request("venue", ExpectedRevision::Exact(0), venue_facts.clone()),
            request("event", ExpectedRevision::NoStream, event_facts.clone()),
        ])
        .await
        .expect("atomic append");
    assert_eq!(answers, [appended(3, 4, 2), appended(5, 5, 0)]);

    let venue = store
        .read_stream("venue", 1, 100)
        .await
        .expect("read venue");
    assert_eq!(positions(&venue), [3, 4]);
    assert_eq!(venue.iter().map(|f| f.revision).collect::<Vec<_>>(), [1, 2]);
    let ids: Vec<Uuid> = venue_facts.iter().map(|f| f.fact_id).collect();
    assert_eq!(fact_ids(&venue), ids);
    let event = store
        .read_stream("event", 0, 100)
        .await
        .expect("read event");
    assert_eq!(fact_ids(&event), [event_facts[0].fact_id]);
    assert_eq!((event[0].position, event[0].revision), (5, 0));

    // Members may chain on one stream inside the group, like `append_all`'s links.
    let chained = store
        .append_atomic(vec![
            request(
                "venue",
                ExpectedRevision::Exact(2),
                vec![fact("SlotBooked", 5)],
            ),
            request(
                "event",
                ExpectedRevision::Exact(0),
                vec![fact("EventMoved", 6)],
            ),
            request(
                "venue",
                ExpectedRevision::Exact(3),
                vec![fact("SlotFreed", 7)],
            ),
        ])
        .await
        .expect("chained atomic append");
    assert_eq!(
        chained,
        [appended(6, 6, 3), appended(7, 7, 1), appended(8, 8, 4)]
    );
    let all = store.read_all(0, 100).await.expect("read all");
    assert_eq!(positions(&all), (1..=8).collect::<Vec<_>>());
    let streams: Vec<&str> = all.iter().map(|f| f.stream.as_str()).collect();
    assert_eq!(
        streams,
        [
            "noise", "venue", "venue", "venue", "event", "venue", "event", "venue"
        ]
    );
    assert_eq!(store.head_position().await.expect("head"), 8);
}

pub async fn an_atomic_append_with_one_stale_member_writes_nothing(store: Arc<dyn EventStore>) {
    store
        .append(request(
            "venue",
            ExpectedRevision::NoStream,
            vec![fact("VenueCreated", 0)],
        ))
        .await
        .expect("venue");
    // Someone else created the event stream meanwhile.
    store
        .append(request(
            "event",
            ExpectedRevision::NoStream,
            vec![fact("EventDrafted", 1)],
        ))
        .await
        .expect("event");

    let venue_facts = vec![fact("SlotBooked", 2), fact("SlotConfirmed", 3)];
    let event_fact = fact("EventDrafted", 4);
    let mut refused_ids: Vec<Uuid> = venue_facts.iter().map(|f| f.fact_id).collect();
    refused_ids.push(event_fact.fact_id);
    let refused = store
        .append_atomic(vec![
            keyed(
                request("venue", ExpectedRevision::Exact(0), venue_facts),
                "req-1",
            ),
            request("event", ExpectedRevision::NoStream, vec![event_fact]),
        ])
        .await;
    match refused {
        Err(StoreError::WrongExpectedRevision {
            stream,
            expected,
            actual,
        }) => {
            assert_eq!(stream, "event");
            assert_eq!(expected, ExpectedRevision::NoStream);
            assert_eq!(actual, Some(0));
        }
        other => panic!("expected WrongExpectedRevision on event, got {other:?}"),
    }

    // Nothing of the group, not even the members that were fine on their own.
    let venue = store
        .read_stream("venue", 0, 100)
        .await
        .expect("read venue");
    assert_eq!(venue.len(), 1);
    assert_eq!(
        store
            .read_stream("event", 0, 100)
            .await
            .expect("read")
            .len(),
        1
    );
    let all = store.read_all(0, 100).await.expect("read all");
    assert_eq!(positions(&all), [1, 2]);
    assert!(all.iter().all(|f| !refused_ids.contains(&f.fact_id)));
    assert_eq!(store.head_position().await.expect("head"), 2);
    assert_eq!(store.idempotency_get("req-1").await.expect("get"), None);

    // The refused group consumed no positions, and its first member's stream is where it was.
    let next = store
        .append(request(
            "venue",
            ExpectedRevision::Exact(0),
            vec![fact("SlotBooked", 5)],
        ))
        .await
        .expect("append at the venue's revision");
    assert_eq!(next, appended(3, 3, 1));
}

pub async fn an_idempotency_key_on_one_member_answers_for_the_whole_atomic_append(
    store: Arc<dyn EventStore>,
) {
    let answers = store
        .append_atomic(vec![
            keyed(
                request(
                    "venue",
                    ExpectedRevision::NoStream,
                    vec![fact("SlotBooked", 0)],
                ),
                "req-1",
            ),
            request(
                "event",
                ExpectedRevision::NoStream,
                vec![fact("EventDrafted", 1), fact("EventScheduled", 2)],
            ),
        ])
        .await
        .expect("atomic append");
    assert_eq!(answers, [appended(1, 1, 0), appended(2, 3, 1)]);
    let remembered = store
        .idempotency_get("req-1")
        .await
        .expect("get")
        .expect("stored");
    // The group is one command: its answer names the group's last position.
    assert_eq!(remembered.body["position"], json!(3));

    // The same key on another group's member refuses that whole group.
    let taken = store
        .append_atomic(vec![
            request(
                "venue",
                ExpectedRevision::Exact(0),
                vec![fact("SlotBooked", 3)],
            ),
            keyed(
                request(
                    "other",
                    ExpectedRevision::NoStream,
                    vec![fact("EventDrafted", 4)],
                ),
                "req-1",
            ),
        ])
        .await;
    match taken {
        Err(StoreError::IdempotencyKeyTaken { key }) => assert_eq!(key, "req-1"),
        other => panic!("expected IdempotencyKeyTaken, got {other:?}"),
    }
    assert_eq!(
        store
            .read_stream("venue", 0, 100)
            .await
            .expect("read")
            .len(),
        1
    );
    assert!(
        store
            .read_stream("other", 0, 100)
            .await
            .expect("read")
            .is_empty()
    );
    assert_eq!(store.head_position().await.expect("head"), 3);

    // One key on two members could never commit: refused up front.
    let twice = store
        .append_atomic(vec![
            keyed(
                request("a", ExpectedRevision::Any, vec![fact("A", 5)]),
                "req-2",
            ),
            keyed(
                request("b", ExpectedRevision::Any, vec![fact("B", 6)]),
                "req-2",
            ),
        ])
        .await;
    assert!(matches!(twice, Err(StoreError::Invalid(_))), "{twice:?}");
    assert_eq!(store.head_position().await.expect("head"), 3);
}

pub async fn re_appending_an_atomic_group_is_a_no_op_answered_with_the_stored_positions(
    store: Arc<dyn EventStore>,
) {
    let group = vec![
        request(
            "venue",
            ExpectedRevision::NoStream,
            vec![fact("SlotBooked", 0)],
        ),
        request(
            "event",
            ExpectedRevision::NoStream,
            vec![fact("EventDrafted", 1), fact("EventScheduled", 2)],
        ),
    ];
    let first = store
        .append_atomic(group.clone())
        .await
        .expect("atomic append");
    append_one(&*store, "venue", 3).await;
    // A retry (say, the answer was lost): its expected revisions are stale by now, yet it is
    // answered as stored, and writes nothing.
    let retry = store.append_atomic(group).await.expect("retry");
    assert_eq!(retry, first);
    assert_eq!(first, [appended(1, 1, 0), appended(2, 3, 1)]);
    assert_eq!(store.head_position().await.expect("head"), 4);
    assert_eq!(store.read_all(0, 100).await.expect("read").len(), 4);
}

pub async fn an_empty_or_unusable_atomic_append_is_invalid_and_writes_nothing(
    store: Arc<dyn EventStore>,
) {
    let empty = store.append_atomic(Vec::new()).await;
    assert!(matches!(empty, Err(StoreError::Invalid(_))), "{empty:?}");
    let unusable = store
        .append_atomic(vec![
            request("fine", ExpectedRevision::NoStream, vec![fact("A", 0)]),
            request(" ", ExpectedRevision::Any, vec![fact("B", 1)]),
        ])
        .await;
    assert!(
        matches!(unusable, Err(StoreError::Invalid(_))),
        "{unusable:?}"
    );
    let factless = store
        .append_atomic(vec![
            request("fine", ExpectedRevision::NoStream, vec![fact("A", 0)]),
            request("empty", ExpectedRevision::Any, Vec::new()),
        ])
        .await;
    assert!(
        matches!(factless, Err(StoreError::Invalid(_))),
        "{factless:?}"
    );
    assert_eq!(store.head_position().await.expect("head"), 0);
}

pub async fn concurrent_atomic_appends_for_one_venue_revision_commit_exactly_one(
    store: Arc<dyn EventStore>,
) {
    store
        .append(request(
            "venue",
            ExpectedRevision::NoStream,
            vec![fact("VenueCreated", 0)],
        ))
        .await
        .expect("venue");
    // 16 drafts decided at the venue's revision 0, racing 16 unrelated appends that land in the
    // same batches: exactly one draft wins, the losers write nothing, the neighbours all commit.
    let tasks: Vec<_> = (0..32u64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    let outcome = store
                        .append_atomic(vec![
                            request(
                                "venue",
                                ExpectedRevision::Exact(0),
                                vec![fact("SlotBooked", i)],
                            ),
                            request(
                                &format!("draft-{i}"),
                                ExpectedRevision::NoStream,
                                vec![fact("EventDrafted", i)],
                            ),
                        ])
                        .await;
                    (i, outcome)
                } else {
                    let outcome = store
                        .append(request(
                            &format!("own-{i}"),
                            ExpectedRevision::NoStream,
                            vec![fact("Mine", i)],
                        ))
                        .await
                        .map(|a| vec![a]);
                    (i, outcome)
                }
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (i, outcome) = task.await.expect("task");
        match outcome {
            Ok(answers) if i % 2 == 0 => {
                assert_eq!(answers.len(), 2);
                assert_eq!(answers[0].revision, 1);
                assert_eq!(answers[1].first_position, answers[0].last_position + 1);
                winners.push(i);
            }
            Ok(_) => {}
            Err(StoreError::WrongExpectedRevision { stream, actual, .. }) if i % 2 == 0 => {
                assert_eq!(stream, "venue");
                assert_eq!(actual, Some(1));
            }
            Err(e) => panic!("append {i} failed: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    for i in (0..32u64).step_by(2) {
        let draft = store
            .read_stream(&format!("draft-{i}"), 0, 10)
            .await
            .expect("read draft");
        assert_eq!(draft.len(), usize::from(winners.contains(&i)), "draft-{i}");
    }
    assert_eq!(
        store
            .read_stream("venue", 0, 100)
            .await
            .expect("venue")
            .len(),
        2
    );
    let all = store.read_all(0, usize::MAX).await.expect("read all");
    assert_eq!(positions(&all), (1..=1 + 2 + 16).collect::<Vec<_>>());
}

pub async fn subscribe_sees_atomic_groups_facts_once_in_position_order(store: Arc<dyn EventStore>) {
    let mut subscription = store.subscribe(0);
    // 4 writers × 10 groups of 1 venue fact + 2 event facts, on a live subscription.
    let writers: Vec<_> = (0..4u64)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut groups = Vec::new();
                for n in 0..10u64 {
                    let answers = store
                        .append_atomic(vec![
                            request(
                                &format!("venue-{w}"),
                                ExpectedRevision::Any,
                                vec![fact("SlotBooked", n)],
                            ),
                            request(
                                &format!("event-{w}-{n}"),
                                ExpectedRevision::NoStream,
                                vec![fact("EventDrafted", n), fact("EventScheduled", n)],
                            ),
                        ])
                        .await
                        .expect("atomic append");
                    groups.push((w, n, answers));
                }
                groups
            })
        })
        .collect();
    let seen = take(&mut subscription, 4 * 10 * 3).await;
    assert_eq!(positions(&seen), (1..=120).collect::<Vec<_>>());
    for writer in writers {
        for (w, n, answers) in writer.await.expect("writer") {
            // The group's facts sit side by side, venue first, and the tail saw them there.
            let first = answers[0].first_position;
            assert_eq!(answers[0].last_position, first);
            assert_eq!(answers[1].first_position, first + 1);
            assert_eq!(answers[1].last_position, first + 2);
            let at = |p: u64| seen[usize::try_from(p - 1).expect("index")].stream.clone();
            assert_eq!(at(first), format!("venue-{w}"));
            assert_eq!(at(first + 1), format!("event-{w}-{n}"));
            assert_eq!(at(first + 2), format!("event-{w}-{n}"));
        }
    }
    let unique: HashSet<Uuid> = seen.iter().map(|f| f.fact_id).collect();
    assert_eq!(unique.len(), 120);
}
