//! `connect` itself: URLs, options, and what survives a restart. Backend behaviour is in
//! `contract.rs`.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use marquee_store::{
    AppendRequest, EventStore, ExpectedRevision, FactMetadata, NewFact, StoreError, StoreOptions,
    connect, connect_with,
};
use serde_json::json;
use uuid::Uuid;

fn request(stream: &str, n: u64) -> AppendRequest {
    AppendRequest {
        stream: stream.into(),
        expected: ExpectedRevision::Any,
        facts: vec![NewFact {
            fact_id: Uuid::now_v7(),
            fact_type: "Counted".into(),
            schema_version: 1,
            data: json!({ "n": n }),
            metadata: FactMetadata::default(),
        }],
        idempotency: None,
    }
}

#[tokio::test]
async fn an_unknown_url_is_refused() {
    for url in ["mysql://localhost/db", "", "sqlit://x"] {
        match connect(url).await {
            Err(StoreError::UnsupportedUrl(u)) => assert_eq!(u, url),
            Err(e) => panic!("{url}: unexpected error {e}"),
            Ok(_) => panic!("{url}: accepted"),
        }
    }
}

#[tokio::test]
async fn connect_with_sets_the_snapshot_policy() {
    let options = StoreOptions {
        snapshot_every: 42,
        ..StoreOptions::default()
    };
    let store = connect_with("memory:", options).await.expect("connect");
    assert_eq!(store.snapshot_every(), 42);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_sqlite_file_keeps_its_log_and_continues_its_positions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/data/deeper/marquee.db", dir.path().display());
    {
        let store = connect(&url).await.expect("first open");
        for n in 0..3 {
            store.append(request("s", n)).await.expect("append");
        }
    }
    let store = connect(&url)
        .await
        .expect("second open (migrations already applied)");
    assert_eq!(store.head_position().await.expect("head"), 3);
    let appended = store.append(request("s", 3)).await.expect("append");
    assert_eq!((appended.first_position, appended.revision), (4, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sqlite_stores_on_one_file_share_one_gapless_log() {
    // Like two processes on one file: each has its own writer; BEGIN IMMEDIATE serialises them.
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/shared.db", dir.path().display());
    let options = StoreOptions {
        poll_interval: Duration::from_millis(50),
        ..StoreOptions::default()
    };
    let a = connect_with(&url, options.clone()).await.expect("a");
    let b = connect_with(&url, options).await.expect("b");
    let mut tail = a.subscribe(0);

    let writers: Vec<_> = [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .enumerate()
        .map(|(w, store): (usize, Arc<dyn EventStore>)| {
            tokio::spawn(async move {
                for n in 0..100 {
                    store
                        .append(request(&format!("w-{}", n % 5), n))
                        .await
                        .unwrap_or_else(|e| panic!("writer {w}: {e}"));
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }

    let all = b.read_all(0, usize::MAX).await.expect("read");
    let positions: Vec<u64> = all.iter().map(|f| f.position).collect();
    assert_eq!(positions, (1..=400).collect::<Vec<_>>());
    // `a`'s subscriber sees `b`'s appends too (by polling: no wake-up crosses processes).
    let mut seen = Vec::new();
    while seen.len() < 400 {
        let fact = tokio::time::timeout(Duration::from_secs(30), tail.next())
            .await
            .expect("tail stalled")
            .expect("tail ended")
            .expect("tail failed");
        seen.push(fact.position);
    }
    assert_eq!(seen, positions);
}
