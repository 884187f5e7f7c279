//! The contract cases, one function per rule, each over a fresh store.

use std::sync::Arc;

use marquee_store::{AppendRequest, Appended, EventStore, ExpectedRevision, FactMetadata, NewFact};
use serde_json::json;
use uuid::Uuid;

pub fn fact(fact_type: &str, n: u64) -> NewFact {
    NewFact {
        fact_id: Uuid::now_v7(),
        fact_type: fact_type.into(),
        schema_version: 1,
        data: json!({ "n": n }),
        metadata: FactMetadata::default(),
    }
}

pub fn append_req(stream: &str, expected: ExpectedRevision, facts: Vec<NewFact>) -> AppendRequest {
    AppendRequest {
        stream: stream.into(),
        expected,
        facts,
        idempotency: None,
    }
}

pub async fn appending_to_a_new_stream_starts_at_revision_zero_and_position_one(
    store: Arc<dyn EventStore>,
) {
    let appended = store
        .append(append_req(
            "event-1",
            ExpectedRevision::NoStream,
            vec![fact("EventCreated", 0), fact("EventPublished", 1)],
        ))
        .await
        .expect("append");
    assert_eq!(
        appended,
        Appended {
            first_position: 1,
            last_position: 2,
            revision: 1
        }
    );
    let facts = store.read_stream("event-1", 0, 100).await.expect("read");
    assert_eq!(facts.len(), 2);
    assert_eq!(facts[1].revision, 1);
    assert_eq!(store.head_position().await.expect("head"), 2);
}
