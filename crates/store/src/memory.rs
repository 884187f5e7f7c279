//! The in-memory backend: a mutex-guarded vector and a `watch` of the head. For tests and demos;
//! nothing persists. Same rules as the durable backends: it runs the shared planner on a batch
//! of one append (or one atomic group) under the lock.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, SubsecRound, Utc};
use tokio::sync::watch;
use uuid::Uuid;

use crate::plan::{self, KnownFact, LogView};
use crate::tail::{self, ReadAll};
use crate::{
    AppendRequest, Appended, EventStore, FactStream, IdempotencyWrite, IdempotentResponse,
    RecordedFact, Snapshot, StoreError, StoreOptions,
};

#[derive(Default)]
struct Log {
    facts: Vec<RecordedFact>,
    /// fact id → index into `facts`.
    by_id: HashMap<Uuid, usize>,
    /// stream → indexes into `facts`, in revision order.
    by_stream: HashMap<String, Vec<usize>>,
    idempotency: HashMap<String, IdempotentResponse>,
    snapshots: HashMap<String, Snapshot>,
}

struct Shared {
    log: Mutex<Log>,
    head: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Log> {
        // A panic while holding the lock cannot leave the log half-updated (appends mutate only
        // after planning succeeded), so a poisoned lock is still consistent.
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait::async_trait]
impl ReadAll for Shared {
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedFact>, StoreError> {
        let log = self.lock();
        // Positions are 1..=len, so position p sits at index p - 1.
        let start = usize::try_from(after)
            .unwrap_or(usize::MAX)
            .min(log.facts.len());
        Ok(log.facts[start..].iter().take(limit).cloned().collect())
    }
}

/// The `memory:` backend.
pub(crate) struct MemoryStore {
    shared: Arc<Shared>,
    options: StoreOptions,
}

impl MemoryStore {
    pub(crate) fn new(options: StoreOptions) -> Self {
        Self {
            shared: Arc::new(Shared {
                log: Mutex::new(Log::default()),
                head: watch::Sender::new(0),
            }),
            options,
        }
    }
}

fn is_live(response: &IdempotentResponse, now: DateTime<Utc>) -> bool {
    response.created_at >= plan::idempotency_cutoff(now)
}

impl MemoryStore {
    /// Plans and applies `requests` under the lock, as one batch with `groups` as its atomic
    /// groups (see `plan::plan_grouped`). One answer per request, in order.
    fn write(
        &self,
        requests: &[AppendRequest],
        groups: &[Range<usize>],
    ) -> Vec<Result<Appended, StoreError>> {
        let now = Utc::now().trunc_subsecs(6);
        let (outcomes, head) = {
            let mut log = self.shared.lock();
            let view = log.view(requests, now);
            let batch = plan::plan_grouped(requests, groups, &view);
            for row in &batch.rows {
                let index = log.facts.len();
                log.facts.push(RecordedFact {
                    position: row.position,
                    stream: row.stream.to_owned(),
                    revision: row.revision,
                    fact_id: row.fact.fact_id,
                    fact_type: row.fact.fact_type.clone(),
                    schema_version: row.fact.schema_version,
                    data: row.fact.data.clone(),
                    metadata: row.fact.metadata.clone(),
                    recorded_at: now,
                });
                log.by_id.insert(row.fact.fact_id, index);
                log.by_stream
                    .entry(row.stream.to_owned())
                    .or_default()
                    .push(index);
            }
            for write in batch.idempotency {
                log.idempotency.insert(write.key, write.response);
            }
            (batch.outcomes, batch.head)
        };
        crate::writer::publish_head(&self.shared.head, head);
        outcomes
    }
}

impl Log {
    /// What the planner needs to know about `requests`, as the durable backends read it inside
    /// their transaction.
    fn view(&self, requests: &[AppendRequest], now: DateTime<Utc>) -> LogView {
        let mut view = LogView {
            head: self.facts.len() as u64,
            ..LogView::default()
        };
        for stream in plan::streams_of(requests) {
            if let Some(last) = self.by_stream.get(&stream).and_then(|i| i.last()) {
                let revision = self.facts[*last].revision;
                view.stream_revisions.insert(stream, revision);
            }
        }
        for fact_id in plan::fact_ids_of(requests) {
            if let Some(i) = self.by_id.get(&fact_id) {
                let stored = &self.facts[*i];
                view.known_facts.insert(
                    fact_id,
                    KnownFact {
                        stream: stored.stream.clone(),
                        revision: stored.revision,
                        position: stored.position,
                    },
                );
            }
        }
        for key in plan::keys_of(requests) {
            if self.idempotency.get(&key).is_some_and(|r| is_live(r, now)) {
                view.taken_keys.insert(key);
            }
        }
        view
    }
}

#[async_trait::async_trait]
impl EventStore for MemoryStore {
    async fn append(&self, request: AppendRequest) -> Result<Appended, StoreError> {
        plan::validate(&request)?;
        self.write(std::slice::from_ref(&request), &[])
            .pop()
            .unwrap_or(Err(StoreError::Closed))
    }

    async fn append_atomic(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Result<Vec<Appended>, StoreError> {
        plan::validate_group(&requests)?;
        let whole = 0..requests.len();
        // A refused group's first answer is its reason (`plan::refuse_together`).
        self.write(&requests, std::slice::from_ref(&whole))
            .into_iter()
            .collect()
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_revision: u64,
        limit: usize,
    ) -> Result<Vec<RecordedFact>, StoreError> {
        let log = self.shared.lock();
        let Some(indexes) = log.by_stream.get(stream) else {
            return Ok(Vec::new());
        };
        // Revisions are 0..n, so revision r sits at index r of the stream's list.
        let start = usize::try_from(from_revision)
            .unwrap_or(usize::MAX)
            .min(indexes.len());
        Ok(indexes[start..]
            .iter()
            .take(limit)
            .map(|i| log.facts[*i].clone())
            .collect())
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedFact>, StoreError> {
        self.shared.read_all(after, limit).await
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        Ok(self.shared.lock().facts.len() as u64)
    }

    fn subscribe(&self, after: u64) -> FactStream {
        // Nothing outside this process writes to memory, so no polling is needed.
        tail::subscribe(
            self.shared.clone(),
            self.shared.head.subscribe(),
            None,
            after,
        )
    }

    async fn idempotency_get(&self, key: &str) -> Result<Option<IdempotentResponse>, StoreError> {
        let now = Utc::now();
        Ok(self
            .shared
            .lock()
            .idempotency
            .get(key)
            .filter(|r| is_live(r, now))
            .cloned())
    }

    async fn idempotency_put(&self, write: IdempotencyWrite) -> Result<(), StoreError> {
        let now = Utc::now();
        let mut log = self.shared.lock();
        let retention = now - crate::IDEMPOTENCY_RETENTION;
        log.idempotency.retain(|_, r| r.created_at >= retention);
        let taken = log
            .idempotency
            .get(&write.key)
            .is_some_and(|r| is_live(r, now));
        if !taken {
            log.idempotency.insert(write.key, write.response);
        }
        Ok(())
    }

    async fn load_snapshot(&self, stream: &str) -> Result<Option<Snapshot>, StoreError> {
        Ok(self.shared.lock().snapshots.get(stream).cloned())
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let mut log = self.shared.lock();
        let newer = log
            .snapshots
            .get(&snapshot.stream)
            .is_none_or(|old| old.revision <= snapshot.revision);
        if newer {
            log.snapshots.insert(snapshot.stream.clone(), snapshot);
        }
        Ok(())
    }

    fn snapshot_every(&self) -> u64 {
        self.options.snapshot_every
    }
}
