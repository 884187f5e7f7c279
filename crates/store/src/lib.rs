//! Marquee's log: the [`EventStore`] trait and its backends (SQLite, Postgres, in-memory).
//!
//! The log is the system of record. It stores facts as opaque JSON with their metadata and knows
//! nothing about the domain: what a fact means is `marquee-domain`'s business. Backends are
//! chosen by URL in [`connect`]: `sqlite://…` (the embedded default), `postgres://…`, `memory:`.
//!
//! Contract every backend passes (see `tests/contract.rs`):
//! - `append` is atomic and checks the expected revision; a mismatch is
//!   [`StoreError::WrongExpectedRevision`] and nothing is written. `append_atomic` extends this
//!   to several streams: all of them or none.
//! - positions are strictly increasing in commit order: a reader that has seen position `p` never
//!   later receives a fact with a lower position (the gapless tail).
//! - re-appending a fact id that is already stored is a no-op.
//! - `subscribe` = catch-up then live, no loss, no duplicates, in position order.
//!
//! Layout: `plan` decides what a batch of appends writes (pure, shared by every
//! backend); `writer` runs the group commit that SQLite and Postgres share; `tail` is the one
//! `subscribe` implementation; `memory`, `sqlite` and `postgres` are the backends; [`testing`]
//! gives other crates' tests a throw-away Postgres database.

#![warn(missing_docs)]

mod codec;
mod memory;
mod plan;
mod postgres;
mod sqlite;
mod tail;
pub mod testing;
mod writer;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The revision the caller expects a stream to be at when appending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedRevision {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last fact must have this revision (revisions count from 0).
    Exact(u64),
}

/// Who and what caused a fact. Stored with every fact.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FactMetadata {
    /// Ties together every fact caused by one request (the request id).
    pub correlation_id: Option<Uuid>,
    /// The fact or command that directly caused this one.
    pub causation_id: Option<Uuid>,
    /// Who issued the command (user id, token id, `system`, …).
    pub actor: Option<String>,
    /// The organization the command acted for (the owner of the venue or event), when one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
}

/// A fact to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFact {
    /// UUID v7. Appending a fact id that is already stored is a no-op.
    pub fact_id: Uuid,
    /// e.g. `RegistrationConfirmed`.
    pub fact_type: String,
    /// Version of `data`'s shape for this fact type; upcasters on read key on it.
    pub schema_version: u32,
    /// The fact's payload, opaque to the store.
    pub data: Value,
    /// Correlation, causation, actor.
    pub metadata: FactMetadata,
}

/// A fact as the log holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedFact {
    /// Place in the global log, from 1, strictly increasing in commit order.
    pub position: u64,
    /// The stream (aggregate instance) it belongs to, e.g. `event-<uuid>`.
    pub stream: String,
    /// Place in its stream, from 0.
    pub revision: u64,
    /// The id it was appended with (UUID v7).
    pub fact_id: Uuid,
    /// e.g. `RegistrationConfirmed`.
    pub fact_type: String,
    /// Version of `data`'s shape, as appended.
    pub schema_version: u32,
    /// The payload, as appended.
    pub data: Value,
    /// Correlation, causation, actor, as appended.
    pub metadata: FactMetadata,
    /// When the log stored it (the batch's commit time, microsecond precision). On Postgres the
    /// database clock, so it never goes backwards against position order across processes.
    pub recorded_at: DateTime<Utc>,
}

/// A command's remembered answer, kept under its `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdempotentResponse {
    /// Hash of the request (method, path, body) the key was first used with.
    pub request_hash: String,
    /// HTTP status of the first answer.
    pub status: u16,
    /// JSON body of the first answer.
    pub body: Value,
    /// When the first answer was given; the entry answers for [`IDEMPOTENCY_TTL`] after it.
    pub created_at: DateTime<Utc>,
}

/// Remember `response` under `key`, in the same transaction as the append it belongs to.
///
/// The answer to an append names the position of its last fact, which is only known inside the
/// append's transaction: when the body is a JSON object, the store sets its `position` member to
/// the append's last position before remembering it.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyWrite {
    /// The client's `Idempotency-Key`.
    pub key: String,
    /// The answer to give again for this key.
    pub response: IdempotentResponse,
}

/// One atomic append to one stream.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendRequest {
    /// The stream to append to; must not be blank.
    pub stream: String,
    /// Checked against the stream when the append is written (not when it is queued).
    pub expected: ExpectedRevision,
    /// At least one fact.
    pub facts: Vec<NewFact>,
    /// Written atomically with the facts when present. If the key is already stored (and not
    /// expired) the append is refused with [`StoreError::IdempotencyKeyTaken`].
    pub idempotency: Option<IdempotencyWrite>,
}

/// What an accepted append wrote.
///
/// For a retry whose facts are all stored already, the append writes nothing and answers with
/// where those facts are: their first and last positions and the revision of the last of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appended {
    /// Position of the first fact of this append.
    pub first_position: u64,
    /// Position of the last fact of this append: what the API reports as `Marquee-Position`.
    pub last_position: u64,
    /// Revision of the stream's last fact after the append.
    pub revision: u64,
}

/// A cached aggregate state at a revision. A cache only: deleting snapshots changes no answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The stream whose state this is.
    pub stream: String,
    /// Revision of the last fact folded into `state`.
    pub revision: u64,
    /// Version of the state's shape; a snapshot of another version is ignored.
    pub schema_version: u32,
    /// The folded state, serialised by its owner.
    pub state: Value,
}

/// Infrastructure failures, plus the one domain-neutral rule the log itself enforces.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stream was not at the expected revision; nothing was written.
    #[error("stream {stream}: expected {expected:?}, actual revision {actual:?}")]
    WrongExpectedRevision {
        /// The stream appended to.
        stream: String,
        /// What the append expected.
        expected: ExpectedRevision,
        /// `None` when the stream does not exist.
        actual: Option<u64>,
    },
    /// The request itself is unusable (empty append, bad stream name).
    #[error("invalid append: {0}")]
    Invalid(String),
    /// The URL names no backend this build knows.
    #[error("unsupported database URL: {0}")]
    UnsupportedUrl(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("migration error: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A stored row could not be decoded.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The store is shutting down.
    #[error("store is closed")]
    Closed,
    /// The append carried an idempotency key that is already stored (and not expired), so
    /// nothing was written. This is how two concurrent requests with the same key are told
    /// apart: the loser should answer with [`EventStore::idempotency_get`]'s stored response.
    #[error("idempotency key already used: {key}")]
    IdempotencyKeyTaken {
        /// The key that was already stored.
        key: String,
    },
}

/// A live feed of facts in position order; ends only on error or when the store closes.
pub type FactStream = BoxStream<'static, Result<RecordedFact, StoreError>>;

/// The log. Shared as `Arc<dyn EventStore>`.
#[async_trait::async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends atomically, checking `expected`. Concurrent appends may be gathered into one
    /// transaction (group commit) by the backend; each is still checked on its own.
    async fn append(&self, request: AppendRequest) -> Result<Appended, StoreError>;

    /// Appends `requests` in order, each checked on its own against the stream as the requests
    /// before it left it, and answers one outcome per request, in order. The backends with a
    /// group-commit writer plan them as neighbours in one transaction, so a caller that decided
    /// several commands for one stream (expected revisions chained: `r`, `r + k`, …) pays one
    /// commit for all of them. A refused request does not undo the ones before it; the ones after
    /// it that expected its facts are then refused with `WrongExpectedRevision`. A chain with an
    /// unusable request (blank stream, no facts) is refused as a whole with `Invalid`.
    async fn append_all(&self, requests: Vec<AppendRequest>) -> Vec<Result<Appended, StoreError>> {
        if let Err(refusals) = plan::validate_chain(&requests) {
            return refusals;
        }
        let mut outcomes = Vec::with_capacity(requests.len());
        for request in requests {
            outcomes.push(self.append(request).await);
        }
        outcomes
    }

    /// Appends to several streams in ONE transaction: all of them or none. Each request is
    /// checked against its own expected revision (seeing the requests before it in `requests`,
    /// like [`append_all`](Self::append_all)); if any is refused, nothing of any of them is
    /// written and the first refusal is returned. On success, one [`Appended`] per request, in
    /// order; the group's facts have consecutive positions, in request order.
    ///
    /// Why it exists: some rules span two aggregates ("two events at one venue may not
    /// overlap"). The command side loads both streams, decides, and appends the venue's facts
    /// (expected: the venue's revision) together with the event's facts (expected: the event's
    /// revision). The venue's expected revision then serialises every scheduling decision at that
    /// venue: of two concurrent, overlapping drafts only one commits, the other gets
    /// [`StoreError::WrongExpectedRevision`] for the venue, writes nothing on its event stream
    /// either, and is decided again by the caller.
    ///
    /// Each request follows the rules of [`append`](Self::append): a request whose fact ids are
    /// all stored already is a retry, answered with the stored positions (so re-sending a group
    /// that committed is a no-op); an idempotency key that is already taken refuses its request,
    /// and so the group ([`StoreError::IdempotencyKeyTaken`]). An idempotency answer carried by a
    /// member is remembered with the position of the group's last fact, since the group is one
    /// command. An empty `requests`, an unusable request (blank stream, no facts) or one
    /// idempotency key used by two members is [`StoreError::Invalid`], and nothing is queued.
    ///
    /// Backends with a group-commit writer plan the group as one unit among the other appends of
    /// its batch, so positions stay gapless and in commit order exactly as for `append`, and a
    /// refused group does not disturb its neighbours.
    ///
    /// The default implementation refuses every group with [`StoreError::Invalid`] and writes
    /// nothing: a store that cannot write several streams in one transaction must not pretend
    /// to. Every backend of this crate overrides it; a decorator should forward it.
    async fn append_atomic(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Result<Vec<Appended>, StoreError> {
        plan::validate_group(&requests)?;
        Err(StoreError::Invalid(
            "this store cannot append to several streams atomically".into(),
        ))
    }

    /// Facts of one stream with `revision >= from_revision`, at most `limit`, in revision order.
    async fn read_stream(
        &self,
        stream: &str,
        from_revision: u64,
        limit: usize,
    ) -> Result<Vec<RecordedFact>, StoreError>;

    /// Facts with `position > after`, at most `limit`, in position order. Never returns a fact
    /// while an earlier position could still commit (the gapless tail).
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedFact>, StoreError>;

    /// The highest position a reader can see now (0 for an empty log).
    async fn head_position(&self) -> Result<u64, StoreError>;

    /// Catch-up from `after`, then live. No loss, no duplicates, position order.
    fn subscribe(&self, after: u64) -> FactStream;

    /// The remembered answer for an idempotency key, if any (and not expired).
    async fn idempotency_get(&self, key: &str) -> Result<Option<IdempotentResponse>, StoreError>;

    /// Remembers an answer that appended nothing (a rejected command). Keeps the first if the key
    /// already exists.
    async fn idempotency_put(&self, write: IdempotencyWrite) -> Result<(), StoreError>;

    /// The newest snapshot of `stream`, if any.
    async fn load_snapshot(&self, stream: &str) -> Result<Option<Snapshot>, StoreError>;

    /// Stores a snapshot, replacing an older one of the same stream.
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError>;

    /// Snapshot policy for the command side: save a snapshot when a stream has grown by at least
    /// this many facts since its last snapshot (or since revision 0). `0` turns snapshots off.
    /// Set with [`StoreOptions::snapshot_every`]; the store itself never snapshots anything.
    fn snapshot_every(&self) -> u64 {
        DEFAULT_SNAPSHOT_EVERY
    }
}

/// Default for [`StoreOptions::snapshot_every`].
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 500;

/// How long an idempotency key answers: [`EventStore::idempotency_get`] ignores older entries and
/// a new write may replace them.
pub const IDEMPOTENCY_TTL: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// Entries older than this are deleted opportunistically (twice the TTL, so a clock skew between
/// writers never deletes a key that still answers).
pub const IDEMPOTENCY_RETENTION: chrono::TimeDelta = chrono::TimeDelta::hours(48);

/// Tuning for [`connect_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Returned by [`EventStore::snapshot_every`]: the command side snapshots an aggregate every
    /// this many facts. `0` disables snapshots.
    pub snapshot_every: u64,
    /// How many queued appends the group-commit writer gathers into one transaction at most.
    pub max_batch: usize,
    /// How often a live subscriber re-reads the log when nothing woke it. Covers appends made by
    /// other processes (whose wake-ups this process never sees on SQLite, and may miss on
    /// Postgres while LISTEN is reconnecting).
    pub poll_interval: std::time::Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
            max_batch: 256,
            poll_interval: std::time::Duration::from_millis(500),
        }
    }
}

/// Opens the backend a URL names and applies its migrations.
///
/// - `sqlite://PATH` (created if missing; WAL, `synchronous=FULL`, one writer)
/// - `postgres://…` / `postgresql://…`
/// - `memory:` (tests and demos; nothing persists)
pub async fn connect(url: &str) -> Result<Arc<dyn EventStore>, StoreError> {
    connect_with(url, StoreOptions::default()).await
}

/// [`connect`] with explicit [`StoreOptions`].
pub async fn connect_with(
    url: &str,
    options: StoreOptions,
) -> Result<Arc<dyn EventStore>, StoreError> {
    if url.starts_with("memory:") {
        Ok(Arc::new(memory::MemoryStore::new(options)))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(url, options).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::from(
            postgres::PostgresStore::connect(url, options).await?,
        ))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}
