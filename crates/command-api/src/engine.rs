//! Load → decide → append, the one path every command takes.
//!
//! Commands for one stream are serialized inside this process by a per-stream async lock, so a
//! rush on one event does not turn into a storm of optimistic-concurrency retries. Other
//! processes may still append to the same stream: the append carries the expected revision, and
//! on `WrongExpectedRevision` the stream is reloaded and the command decided again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use marquee_domain::event::{self, Event, EventCommand, EventError, EventFact};
use marquee_domain::venue::{self, Venue, VenueCommand, VenueError, VenueFact};
use marquee_domain::{FactCodec, Timestamp};
use marquee_store::{
    AppendRequest, EventStore, ExpectedRevision, FactMetadata, IdempotencyWrite,
    IdempotentResponse, NewFact, Snapshot, StoreError,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::error::ApiError;

/// How often a command is re-decided when another process keeps appending to its stream first.
const MAX_ATTEMPTS: usize = 16;
/// Facts read per page while loading a stream.
const PAGE: usize = 1000;

/// One aggregate's pure functions, so the engine can run any of them.
pub trait Aggregate {
    /// Version of the state's serialized shape; snapshots of another version are ignored.
    const STATE_VERSION: u32;
    type State: Default + Send + Serialize + DeserializeOwned;
    type Fact: FactCodec + Send + Sync;
    type Command: Clone + Send;
    type Error: Into<ApiError>;
    fn decide(
        state: &Self::State,
        command: Self::Command,
        now: Timestamp,
    ) -> Result<Vec<Self::Fact>, Self::Error>;
    fn evolve(state: Self::State, fact: &Self::Fact) -> Self::State;
}

/// The venue aggregate, for the engine.
pub struct VenueAggregate;
impl Aggregate for VenueAggregate {
    const STATE_VERSION: u32 = venue::STATE_SCHEMA_VERSION;
    type State = Venue;
    type Fact = VenueFact;
    type Command = VenueCommand;
    type Error = VenueError;
    fn decide(s: &Venue, c: VenueCommand, now: Timestamp) -> Result<Vec<VenueFact>, VenueError> {
        venue::decide(s, c, now)
    }
    fn evolve(s: Venue, f: &VenueFact) -> Venue {
        venue::evolve(s, f)
    }
}

/// The event aggregate, for the engine.
pub struct EventAggregate;
impl Aggregate for EventAggregate {
    const STATE_VERSION: u32 = event::STATE_SCHEMA_VERSION;
    type State = Event;
    type Fact = EventFact;
    type Command = EventCommand;
    type Error = EventError;
    fn decide(s: &Event, c: EventCommand, now: Timestamp) -> Result<Vec<EventFact>, EventError> {
        event::decide(s, c, now)
    }
    fn evolve(s: Event, f: &EventFact) -> Event {
        event::evolve(s, f)
    }
}

/// An aggregate's state as loaded from its stream.
pub struct Loaded<S> {
    pub state: S,
    /// Revision of the stream's last fact; `None` for a stream with no facts.
    pub revision: Option<u64>,
    /// Position of the stream's last fact; 0 for a stream with no facts.
    pub position: u64,
}

/// What an accepted command produced.
pub struct Accepted<F> {
    /// The facts appended (empty when the command changed nothing).
    pub facts: Vec<F>,
    /// Position of the last fact appended, or of the stream's last fact when nothing was.
    pub position: u64,
}

/// What the answer to an accepted command looks like, decided before the append so that it can
/// be remembered under an idempotency key in the same transaction.
pub struct Answer {
    pub status: StatusCode,
    /// A JSON object; `position` is filled in after the append.
    pub body: Value,
}

/// Who issued a command and how to remember its answer.
pub struct CommandContext {
    pub correlation_id: Uuid,
    pub actor: Option<String>,
    /// Idempotency key and request hash, when the client sent a key.
    pub idempotency: Option<(String, String)>,
}

/// Per-stream async locks; an entry lives only while someone holds or waits for it.
#[derive(Default)]
struct StreamLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Holds a stream's lock; removes the map entry when the last user lets go.
struct StreamGuard<'a> {
    owner: &'a StreamLocks,
    stream: String,
    lock: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl StreamLocks {
    async fn lock(&self, stream: &str) -> StreamGuard<'_> {
        let mutex = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(stream.to_owned()).or_default().clone()
        };
        let guard = mutex.lock_owned().await;
        StreamGuard {
            owner: self,
            stream: stream.to_owned(),
            lock: Some(guard),
        }
    }
}

impl Drop for StreamGuard<'_> {
    fn drop(&mut self) {
        drop(self.lock.take());
        let mut locks = self.owner.locks.lock().unwrap_or_else(|e| e.into_inner());
        // Two strong references left means only the map holds it: nobody waits, drop it.
        if locks
            .get(&self.stream)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            locks.remove(&self.stream);
        }
    }
}

/// Runs commands against the log.
pub struct Engine {
    store: Arc<dyn EventStore>,
    locks: StreamLocks,
    clock: Arc<dyn Fn() -> Timestamp + Send + Sync>,
}

impl Engine {
    /// An engine over `store` reading time from `clock`.
    pub fn new(
        store: Arc<dyn EventStore>,
        clock: Arc<dyn Fn() -> Timestamp + Send + Sync>,
    ) -> Self {
        Self {
            store,
            locks: StreamLocks::default(),
            clock,
        }
    }

    /// The log this engine writes to.
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// The current time, from the configured clock.
    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// Folds a stream's facts into its aggregate's state, starting from the stream's snapshot
    /// when there is a usable one.
    pub async fn load<A: Aggregate>(&self, stream: &str) -> Result<Loaded<A::State>, ApiError> {
        let mut loaded = match self.load_snapshot::<A>(stream).await {
            Some(loaded) => loaded,
            None => Loaded {
                state: A::State::default(),
                revision: None,
                position: 0,
            },
        };
        let mut from = loaded.revision.map_or(0, |r| r + 1);
        loop {
            let page = self.store.read_stream(stream, from, PAGE).await?;
            let full = page.len() == PAGE;
            for recorded in page {
                let fact =
                    A::Fact::decode(&recorded.fact_type, recorded.schema_version, recorded.data)?;
                loaded.state = A::evolve(loaded.state, &fact);
                loaded.revision = Some(recorded.revision);
                loaded.position = recorded.position;
                from = recorded.revision + 1;
            }
            if !full {
                return Ok(loaded);
            }
        }
    }

    /// The stream's snapshot, if snapshots are on and it has the current state version. A
    /// snapshot is only a cache: any problem with it means "fold from the start" plus a warning.
    async fn load_snapshot<A: Aggregate>(&self, stream: &str) -> Option<Loaded<A::State>> {
        if self.store.snapshot_every() == 0 {
            return None;
        }
        let snapshot = match self.store.load_snapshot(stream).await {
            Ok(snapshot) => snapshot?,
            Err(e) => {
                tracing::warn!(stream, error = %e, "could not read snapshot; folding from the start");
                return None;
            }
        };
        if snapshot.schema_version != A::STATE_VERSION {
            return None;
        }
        let position = snapshot.state.get("position").and_then(Value::as_u64)?;
        let state = snapshot.state.get("state")?.clone();
        match serde_json::from_value(state) {
            Ok(state) => Some(Loaded {
                state,
                revision: Some(snapshot.revision),
                position,
            }),
            Err(e) => {
                tracing::warn!(stream, error = %e, "unreadable snapshot; folding from the start");
                None
            }
        }
    }

    /// Loads `stream` and snapshots it now, whatever the interval (tools and benchmarks).
    pub async fn take_snapshot<A: Aggregate>(&self, stream: &str) -> Result<(), ApiError> {
        let loaded = self.load::<A>(stream).await?;
        if let Some(revision) = loaded.revision {
            self.save_snapshot::<A>(stream, revision, loaded.position, &loaded.state)
                .await?;
        }
        Ok(())
    }

    /// Saves a snapshot when an append crossed a multiple of the store's snapshot interval.
    async fn maybe_snapshot<A: Aggregate>(
        &self,
        stream: &str,
        before: Option<u64>,
        after: u64,
        position: u64,
        state: &A::State,
    ) {
        let every = self.store.snapshot_every();
        if every == 0 || before.map_or(0, |r| (r + 1) / every) == (after + 1) / every {
            return;
        }
        if let Err(e) = self
            .save_snapshot::<A>(stream, after, position, state)
            .await
        {
            tracing::warn!(stream, error = %e, "could not save a snapshot");
        }
    }

    async fn save_snapshot<A: Aggregate>(
        &self,
        stream: &str,
        revision: u64,
        position: u64,
        state: &A::State,
    ) -> Result<(), ApiError> {
        let state = serde_json::to_value(state)
            .map_err(|e| ApiError::Store(StoreError::Corrupt(format!("snapshot: {e}"))))?;
        let snapshot = Snapshot {
            stream: stream.to_owned(),
            revision,
            schema_version: A::STATE_VERSION,
            state: json!({ "position": position, "state": state }),
        };
        self.store.save_snapshot(snapshot).await?;
        Ok(())
    }

    /// Loads `stream`, decides `commands` in turn (each seeing the facts of those before it),
    /// appends all their facts atomically with the expected revision, and retries on a
    /// concurrent append by another process. `answer` builds the success body from the facts
    /// before they are appended.
    pub async fn execute<A: Aggregate>(
        &self,
        stream: &str,
        commands: Vec<A::Command>,
        context: &CommandContext,
        answer: impl Fn(&[A::Fact]) -> Answer,
    ) -> Result<(Accepted<A::Fact>, Answer), ApiError> {
        let _guard = self.locks.lock(stream).await;
        for _ in 0..MAX_ATTEMPTS {
            let loaded = self.load::<A>(stream).await?;
            let now = self.now();
            let mut state = loaded.state;
            let mut facts = Vec::new();
            for command in commands.iter().cloned() {
                let decided = A::decide(&state, command, now).map_err(Into::into)?;
                for fact in &decided {
                    state = A::evolve(state, fact);
                }
                facts.extend(decided);
            }
            let mut reply = answer(&facts);
            if facts.is_empty() {
                set_position(&mut reply.body, loaded.position);
                return Ok((
                    Accepted {
                        facts,
                        position: loaded.position,
                    },
                    reply,
                ));
            }
            let new_facts = facts
                .iter()
                .map(|fact| {
                    let (fact_type, schema_version, data) = fact.encode();
                    NewFact {
                        fact_id: Uuid::now_v7(),
                        fact_type,
                        schema_version,
                        data,
                        metadata: FactMetadata {
                            correlation_id: Some(context.correlation_id),
                            causation_id: Some(context.correlation_id),
                            actor: context.actor.clone(),
                        },
                    }
                })
                .collect();
            let idempotency = context
                .idempotency
                .as_ref()
                .map(|(key, hash)| IdempotencyWrite {
                    key: key.clone(),
                    response: IdempotentResponse {
                        request_hash: hash.clone(),
                        status: reply.status.as_u16(),
                        body: reply.body.clone(),
                        created_at: now,
                    },
                });
            let request = AppendRequest {
                stream: stream.to_owned(),
                expected: loaded
                    .revision
                    .map_or(ExpectedRevision::NoStream, ExpectedRevision::Exact),
                facts: new_facts,
                idempotency,
            };
            match self.store.append(request).await {
                Ok(appended) => {
                    self.maybe_snapshot::<A>(
                        stream,
                        loaded.revision,
                        appended.revision,
                        appended.last_position,
                        &state,
                    )
                    .await;
                    set_position(&mut reply.body, appended.last_position);
                    return Ok((
                        Accepted {
                            facts,
                            position: appended.last_position,
                        },
                        reply,
                    ));
                }
                Err(StoreError::WrongExpectedRevision { .. }) => {
                    tracing::debug!(stream, "concurrent append; deciding again");
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::Contention)
    }
}

/// Puts the position into an answer body (a JSON object).
pub fn set_position(body: &mut Value, position: u64) {
    if let Value::Object(map) = body {
        map.insert("position".to_owned(), Value::from(position));
    }
}
