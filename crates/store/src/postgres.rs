//! The Postgres backend (distributed mode): any number of processes append to and tail one log.
//!
//! # The gapless tail
//!
//! A reader that tails with `WHERE position > $last` is only correct if facts become visible in
//! position order. With a sequence (or identity/serial column) they do not: transaction A takes
//! position 10, B takes 11, B commits first, a reader sees 11, moves its checkpoint to 11, and
//! never sees 10 when A commits. Marten, Axon and Eventuous all shipped this skipped-event bug.
//!
//! Here every batch transaction first takes `pg_advisory_xact_lock(LOG_LOCK)` and only then, in
//! a separate statement (so its READ COMMITTED snapshot is taken after the lock is held), reads
//! `max(position)` and assigns `max + 1 …`. Appends are thereby serialised across all
//! processes, and positions are contiguous. Postgres releases a transaction's locks only after
//! its commit is visible to new snapshots, so the next writer, and every reader, sees the
//! previous batch complete before any later position exists: commit order = position order, and
//! the visible log is always a prefix `1..=head`. The lock is held once per *batch* (group
//! commit), not per append, which is what keeps throughput up.
//!
//! A batch is five round trips: BEGIN, the lock, one statement reading everything the plan
//! needs, one inserting the facts (and notifying), COMMIT (plus one for idempotency keys when
//! the batch carries any).
//!
//! The single writer of a process also sends one `NOTIFY marquee_facts, '<head>'` per batch,
//! inside the batch transaction (a NOTIFY takes a global lock at commit: one per batch, never
//! one per append). LISTEN is only a wake-up hint; subscribers also poll and always re-read from
//! their own last position, because a listener misses notifications while reconnecting.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{PgConnection, Row};
use tokio::sync::watch;
use uuid::Uuid;

use crate::codec::{self, CleanupClock};
use crate::plan::{self, KnownFact, LogView};
use crate::tail::{self, ReadAll};
use crate::writer::{BatchResult, BatchSink, GroupCommit, publish_head};
use crate::{
    AppendRequest, Appended, EventStore, FactMetadata, FactStream, IdempotencyWrite,
    IdempotentResponse, RecordedFact, Snapshot, StoreError, StoreOptions,
};

/// The advisory lock every batch transaction holds: "MARQUEE\x01". Any constant works as long as
/// every process uses the same one and nothing else in the database does.
const LOG_LOCK: i64 = 0x4d41_5251_5545_4501;

/// The NOTIFY channel; the payload is the head position after the batch.
pub(crate) const NOTIFY_CHANNEL: &str = "marquee_facts";

/// Pool size per store: the batch writer, the listener and readers share it.
const POOL_SIZE: u32 = 10;

const FACT_COLUMNS: &str = "position, stream, revision, fact_id, fact_type, schema_version, \
                            data, metadata, recorded_at";

/// The `postgres://` backend.
pub(crate) struct PostgresStore {
    reader: Arc<Reader>,
    commit: GroupCommit,
    head: Arc<watch::Sender<u64>>,
    /// Keeps the listener task alive as long as the store (it stops when every receiver is gone).
    _head_rx: watch::Receiver<u64>,
    cleanup: Arc<CleanupClock>,
    options: StoreOptions,
}

struct Reader {
    pool: PgPool,
}

struct Sink {
    pool: PgPool,
    cleanup: Arc<CleanupClock>,
}

impl PostgresStore {
    pub(crate) async fn connect(url: &str, options: StoreOptions) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .connect(url)
            .await?;
        migrator().run(&pool).await?;

        let reader = Arc::new(Reader { pool: pool.clone() });
        let head = Arc::new(watch::Sender::new(reader.head().await?));
        let head_rx = head.subscribe();
        tokio::spawn(listen(pool.clone(), head.clone()));
        let cleanup = Arc::new(CleanupClock::new(Duration::from_secs(600)));
        let commit = GroupCommit::spawn(
            Sink {
                pool,
                cleanup: cleanup.clone(),
            },
            head.clone(),
            options.max_batch,
        );
        Ok(Self {
            reader,
            commit,
            head,
            _head_rx: head_rx,
            cleanup,
            options,
        })
    }
}

/// The store's migrations. `ignore_missing` because the projector keeps its own migrations in
/// the same database (and the same `_sqlx_migrations` table).
fn migrator() -> sqlx::migrate::Migrator {
    let mut migrator = sqlx::migrate!("./migrations/postgres");
    migrator.set_ignore_missing(true);
    migrator
}

/// Turns `NOTIFY marquee_facts` from any process into head updates for this process'
/// subscribers. Ends when every head receiver (the store's and the subscribers') is dropped.
async fn listen(pool: PgPool, head: Arc<watch::Sender<u64>>) {
    loop {
        let connected = tokio::select! {
            () = head.closed() => return,
            listener = connect_listener(&pool) => listener,
        };
        match connected {
            Ok(mut listener) => loop {
                let received = tokio::select! {
                    () = head.closed() => return,
                    received = listener.try_recv() => received,
                };
                match received {
                    Ok(Some(notification)) => {
                        if let Ok(position) = notification.payload().parse::<u64>() {
                            publish_head(&head, position);
                        }
                    }
                    // Connection lost; the next try_recv reconnects. Whatever was notified
                    // meanwhile is lost, which the subscribers' polling covers.
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "LISTEN {NOTIFY_CHANNEL} failed; retrying");
                        break;
                    }
                }
            },
            Err(e) => tracing::warn!(error = %e, "cannot LISTEN {NOTIFY_CHANNEL}; retrying"),
        }
        tokio::select! {
            () = head.closed() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

async fn connect_listener(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(NOTIFY_CHANNEL).await?;
    Ok(listener)
}

fn decode_fact(row: &PgRow) -> Result<RecordedFact, StoreError> {
    let metadata: Value = row.try_get("metadata")?;
    Ok(RecordedFact {
        position: codec::to_u64(row.try_get("position")?, "position")?,
        stream: row.try_get("stream")?,
        revision: codec::to_u64(row.try_get("revision")?, "revision")?,
        fact_id: row.try_get("fact_id")?,
        fact_type: row.try_get("fact_type")?,
        schema_version: codec::to_u32(
            i64::from(row.try_get::<i32, _>("schema_version")?),
            "schema_version",
        )?,
        data: row.try_get("data")?,
        metadata: codec::from_json_value::<FactMetadata>(metadata, "metadata")?,
        recorded_at: row.try_get("recorded_at")?,
    })
}

impl Reader {
    async fn head(&self) -> Result<u64, StoreError> {
        let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM facts")
            .fetch_one(&self.pool)
            .await?;
        codec::to_u64(head, "position")
    }
}

#[async_trait::async_trait]
impl ReadAll for Reader {
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedFact>, StoreError> {
        // Plain `position > $1` is enough: the writer makes the visible log a gapless prefix.
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {FACT_COLUMNS} FROM facts WHERE position > $1 ORDER BY position LIMIT $2"
        ));
        let rows = sqlx::query(sql)
            .bind(codec::to_i64(after, "position")?)
            .bind(codec::limit(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode_fact).collect()
    }
}

impl Sink {
    /// Reads what the batch needs to know, in ONE statement (one round trip, one snapshot) that
    /// must run after the advisory lock is taken, so its snapshot includes the previous lock
    /// holder's commit: the head, the current revision of each stream the batch names, the facts
    /// it names that are already stored, and its idempotency keys still in force. Rows are told
    /// apart by `kind`.
    async fn load_view(
        tx: &mut PgConnection,
        requests: &[AppendRequest],
    ) -> Result<(LogView, DateTime<Utc>), StoreError> {
        // clock_timestamp(), not now(): now() is the transaction start, before the lock wait, so
        // recorded_at could go backwards against position order. Taken once (the CTE is
        // materialized) so the key cutoff and `recorded_at` agree.
        let rows = sqlx::query(
            "WITH t AS MATERIALIZED (SELECT clock_timestamp() AS now) \
             SELECT 'head' AS kind, NULL::text AS name, \
                    (SELECT COALESCE(MAX(position), 0) FROM facts) AS revision, \
                    NULL::bigint AS position, NULL::uuid AS fact_id, t.now FROM t \
             UNION ALL \
             SELECT 'stream', stream, MAX(revision), NULL, NULL, NULL FROM facts \
             WHERE stream = ANY($1) GROUP BY stream \
             UNION ALL \
             SELECT 'fact', stream, revision, position, fact_id, NULL FROM facts \
             WHERE fact_id = ANY($2) \
             UNION ALL \
             SELECT 'key', key, NULL, NULL, NULL, NULL FROM idempotency_keys, t \
             WHERE key = ANY($3) AND created_at >= t.now - $4 * interval '1 microsecond'",
        )
        // Planned on every call. A prepared statement's cached generic plan is made once, from
        // the statistics of that moment: prepared while the log was small, it scans the whole
        // table for every batch, and appends slow down as the log grows (measured: 8,900
        // appends/s at 5,000 facts fell to 1,800/s at 40,000).
        .persistent(false)
        .bind(plan::streams_of(requests))
        .bind(plan::fact_ids_of(requests))
        .bind(plan::keys_of(requests))
        .bind(
            crate::IDEMPOTENCY_TTL
                .num_microseconds()
                .unwrap_or(i64::MAX),
        )
        .fetch_all(&mut *tx)
        .await?;

        let mut view = LogView::default();
        let mut now = None;
        for row in rows {
            let kind: &str = row.try_get("kind")?;
            match kind {
                "head" => {
                    view.head = codec::to_u64(row.try_get("revision")?, "position")?;
                    now = Some(row.try_get::<DateTime<Utc>, _>("now")?);
                }
                "stream" => {
                    view.stream_revisions.insert(
                        row.try_get("name")?,
                        codec::to_u64(row.try_get("revision")?, "revision")?,
                    );
                }
                "fact" => {
                    view.known_facts.insert(
                        row.try_get::<Uuid, _>("fact_id")?,
                        KnownFact {
                            stream: row.try_get("name")?,
                            revision: codec::to_u64(row.try_get("revision")?, "revision")?,
                            position: codec::to_u64(row.try_get("position")?, "position")?,
                        },
                    );
                }
                _ => {
                    view.taken_keys.insert(row.try_get("name")?);
                }
            }
        }
        let now = now.ok_or_else(|| StoreError::Corrupt("the log view has no head row".into()))?;
        Ok((view, now))
    }
}

/// Inserts idempotency entries, replacing an existing one only if it has expired (a live one is
/// kept: the first answer wins).
async fn put_idempotency(
    conn: &mut PgConnection,
    writes: &[IdempotencyWrite],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut keys = Vec::with_capacity(writes.len());
    let mut hashes = Vec::with_capacity(writes.len());
    let mut statuses = Vec::with_capacity(writes.len());
    let mut bodies = Vec::with_capacity(writes.len());
    let mut created = Vec::with_capacity(writes.len());
    for write in writes {
        keys.push(write.key.as_str());
        hashes.push(write.response.request_hash.as_str());
        statuses.push(i32::from(write.response.status));
        bodies.push(&write.response.body);
        created.push(write.response.created_at);
    }
    sqlx::query(
        "INSERT INTO idempotency_keys (key, request_hash, status, body, created_at) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::int[], $4::jsonb[], $5::timestamptz[]) \
         ON CONFLICT (key) DO UPDATE SET request_hash = excluded.request_hash, \
           status = excluded.status, body = excluded.body, created_at = excluded.created_at \
         WHERE idempotency_keys.created_at < $6",
    )
    .bind(keys)
    .bind(hashes)
    .bind(statuses)
    .bind(bodies)
    .bind(created)
    .bind(plan::idempotency_cutoff(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn cleanup_idempotency(pool: &PgPool, clock: &CleanupClock) {
    if !clock.due() {
        return;
    }
    if let Err(e) = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(Utc::now() - crate::IDEMPOTENCY_RETENTION)
        .execute(pool)
        .await
    {
        tracing::warn!(error = %e, "could not delete expired idempotency keys");
    }
}

#[async_trait::async_trait]
impl BatchSink for Sink {
    async fn write_batch(
        &self,
        requests: &[AppendRequest],
        groups: &[Range<usize>],
    ) -> Result<BatchResult, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Serialises appends across processes until COMMIT; see the module docs for why this is
        // what makes the tail gapless. Its own statement, so the reads below see the previous
        // holder's commit.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(LOG_LOCK)
            .execute(&mut *tx)
            .await?;
        let (view, now) = Self::load_view(&mut tx, requests).await?;
        let plan = plan::plan_grouped(requests, groups, &view);

        if !plan.rows.is_empty() {
            let n = plan.rows.len();
            let mut positions = Vec::with_capacity(n);
            let mut streams = Vec::with_capacity(n);
            let mut revisions = Vec::with_capacity(n);
            let mut ids = Vec::with_capacity(n);
            let mut types = Vec::with_capacity(n);
            let mut versions = Vec::with_capacity(n);
            let mut data = Vec::with_capacity(n);
            let mut metadata = Vec::with_capacity(n);
            for row in &plan.rows {
                positions.push(codec::to_i64(row.position, "position")?);
                streams.push(row.stream);
                revisions.push(codec::to_i64(row.revision, "revision")?);
                ids.push(row.fact.fact_id);
                types.push(row.fact.fact_type.as_str());
                versions.push(i32::try_from(row.fact.schema_version).map_err(|_| {
                    StoreError::Invalid(format!(
                        "schema version {} is too large",
                        row.fact.schema_version
                    ))
                })?);
                data.push(&row.fact.data);
                metadata.push(codec::json_value(&row.fact.metadata)?);
            }
            // One multi-row insert per batch: UNNEST zips the arrays into rows. The NOTIFY rides
            // in the same statement (a data-modifying CTE runs whether or not it is read); it is
            // delivered at COMMIT, and only if the batch commits.
            let sql = sqlx::AssertSqlSafe(format!(
                "WITH inserted AS (INSERT INTO facts ({FACT_COLUMNS}) \
                 SELECT u.*, $9 FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::uuid[], \
                   $5::text[], $6::int[], $7::jsonb[], $8::jsonb[]) AS u) \
                 SELECT pg_notify($10, $11)"
            ));
            sqlx::query(sql)
                .bind(positions)
                .bind(streams)
                .bind(revisions)
                .bind(ids)
                .bind(types)
                .bind(versions)
                .bind(data)
                .bind(metadata)
                .bind(now)
                .bind(NOTIFY_CHANNEL)
                .bind(plan.head.to_string())
                .execute(&mut *tx)
                .await?;
        }
        if !plan.idempotency.is_empty() {
            put_idempotency(&mut tx, &plan.idempotency, now).await?;
        }
        tx.commit().await?;
        Ok(BatchResult {
            outcomes: plan.outcomes,
            head: plan.head,
        })
    }

    async fn after_batch(&self) {
        cleanup_idempotency(&self.pool, &self.cleanup).await;
    }
}

#[async_trait::async_trait]
impl EventStore for PostgresStore {
    async fn append(&self, request: AppendRequest) -> Result<Appended, StoreError> {
        plan::validate(&request)?;
        self.commit.append(request).await
    }

    async fn append_all(&self, requests: Vec<AppendRequest>) -> Vec<Result<Appended, StoreError>> {
        if let Err(refusals) = plan::validate_chain(&requests) {
            return refusals;
        }
        self.commit.append_all(requests).await
    }

    async fn append_atomic(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Result<Vec<Appended>, StoreError> {
        plan::validate_group(&requests)?;
        self.commit.append_atomic(requests).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_revision: u64,
        limit: usize,
    ) -> Result<Vec<RecordedFact>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {FACT_COLUMNS} FROM facts WHERE stream = $1 AND revision >= $2 \
             ORDER BY revision LIMIT $3"
        ));
        let rows = sqlx::query(sql)
            .bind(stream)
            .bind(codec::to_i64(from_revision, "revision")?)
            .bind(codec::limit(limit))
            .fetch_all(&self.reader.pool)
            .await?;
        rows.iter().map(decode_fact).collect()
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedFact>, StoreError> {
        self.reader.read_all(after, limit).await
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        self.reader.head().await
    }

    fn subscribe(&self, after: u64) -> FactStream {
        tail::subscribe(
            self.reader.clone(),
            self.head.subscribe(),
            Some(self.options.poll_interval),
            after,
        )
    }

    async fn idempotency_get(&self, key: &str) -> Result<Option<IdempotentResponse>, StoreError> {
        let row = sqlx::query(
            "SELECT request_hash, status, body, created_at FROM idempotency_keys \
             WHERE key = $1 AND created_at >= $2",
        )
        .bind(key)
        .bind(plan::idempotency_cutoff(Utc::now()))
        .fetch_optional(&self.reader.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let status: i32 = row.try_get("status")?;
        Ok(Some(IdempotentResponse {
            request_hash: row.try_get("request_hash")?,
            status: u16::try_from(status)
                .map_err(|_| StoreError::Corrupt(format!("status {status}")))?,
            body: row.try_get("body")?,
            created_at: row.try_get("created_at")?,
        }))
    }

    async fn idempotency_put(&self, write: IdempotencyWrite) -> Result<(), StoreError> {
        let mut conn = self.reader.pool.acquire().await?;
        put_idempotency(&mut conn, &[write], Utc::now()).await?;
        drop(conn);
        cleanup_idempotency(&self.reader.pool, &self.cleanup).await;
        Ok(())
    }

    async fn load_snapshot(&self, stream: &str) -> Result<Option<Snapshot>, StoreError> {
        let row = sqlx::query(
            "SELECT stream, revision, schema_version, state FROM snapshots WHERE stream = $1",
        )
        .bind(stream)
        .fetch_optional(&self.reader.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(Snapshot {
            stream: row.try_get("stream")?,
            revision: codec::to_u64(row.try_get("revision")?, "revision")?,
            schema_version: codec::to_u32(
                i64::from(row.try_get::<i32, _>("schema_version")?),
                "schema_version",
            )?,
            state: row.try_get("state")?,
        }))
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let version = i32::try_from(snapshot.schema_version).map_err(|_| {
            StoreError::Invalid(format!(
                "schema version {} is too large",
                snapshot.schema_version
            ))
        })?;
        sqlx::query(
            "INSERT INTO snapshots (stream, revision, schema_version, state, updated_at) \
             VALUES ($1, $2, $3, $4, now()) \
             ON CONFLICT (stream) DO UPDATE SET revision = excluded.revision, \
               schema_version = excluded.schema_version, state = excluded.state, \
               updated_at = excluded.updated_at \
             WHERE snapshots.revision <= excluded.revision",
        )
        .bind(&snapshot.stream)
        .bind(codec::to_i64(snapshot.revision, "revision")?)
        .bind(version)
        .bind(&snapshot.state)
        .execute(&self.reader.pool)
        .await?;
        Ok(())
    }

    fn snapshot_every(&self) -> u64 {
        self.options.snapshot_every
    }
}
