//! The SQLite backend (embedded mode): one file, WAL, `synchronous=FULL`.
//!
//! One writer connection, used by the group-commit task (and the rare snapshot / idempotency
//! writes), and a separate pool of readers: in WAL mode readers never block the writer nor each
//! other. The batch transaction starts with `BEGIN IMMEDIATE` because it reads (head, revisions)
//! before writing: a deferred transaction would fail with "database is locked" on the upgrade if
//! another process wrote in between, whatever `busy_timeout` says. Taking the write lock up front
//! also makes the log gapless across processes sharing the file: positions are `max + 1` under
//! SQLite's single write lock.

use std::ops::Range;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{SubsecRound, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, SqliteConnection};
use tokio::sync::watch;

use crate::codec::{self, CleanupClock};
use crate::plan::{self, KnownFact, LogView};
use crate::tail::{self, ReadAll};
use crate::writer::{BatchResult, BatchSink, GroupCommit};
use crate::{
    AppendRequest, Appended, EventStore, FactMetadata, FactStream, IdempotencyWrite,
    IdempotentResponse, RecordedFact, Snapshot, StoreError, StoreOptions,
};

/// How long a connection waits for another process' write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Reader connections; readers are cheap in WAL mode but each holds a file handle and a cache.
const READERS: u32 = 4;

const FACT_COLUMNS: &str = "position, stream, revision, fact_id, fact_type, schema_version, \
                            data, metadata, recorded_at";

/// The `sqlite://` backend.
pub(crate) struct SqliteStore {
    reader: Arc<Reader>,
    /// The one writer connection (max one connection in this pool).
    writer: SqlitePool,
    commit: GroupCommit,
    head: Arc<watch::Sender<u64>>,
    cleanup: Arc<CleanupClock>,
    options: StoreOptions,
}

struct Reader {
    pool: SqlitePool,
}

struct Sink {
    writer: SqlitePool,
    cleanup: Arc<CleanupClock>,
}

impl SqliteStore {
    pub(crate) async fn connect(url: &str, options: StoreOptions) -> Result<Self, StoreError> {
        let connect = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT);
        create_parent_dir(connect.get_filename())?;

        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(connect.clone())
            .await?;
        migrator().run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(connect)
            .await?;

        let reader = Arc::new(Reader { pool: reader });
        let head = Arc::new(watch::Sender::new(reader.head().await?));
        let cleanup = Arc::new(CleanupClock::new(Duration::from_secs(600)));
        let commit = GroupCommit::spawn(
            Sink {
                writer: writer.clone(),
                cleanup: cleanup.clone(),
            },
            head.clone(),
            options.max_batch,
        );
        Ok(Self {
            reader,
            writer,
            commit,
            head,
            cleanup,
            options,
        })
    }
}

/// The store's migrations. `ignore_missing` because the projector keeps its own migrations in
/// the same database (and the same `_sqlx_migrations` table).
fn migrator() -> sqlx::migrate::Migrator {
    let mut migrator = sqlx::migrate!("./migrations/sqlite");
    migrator.set_ignore_missing(true);
    migrator
}

fn create_parent_dir(file: &Path) -> Result<(), StoreError> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Database(sqlx::Error::Configuration(
                format!("cannot create {}: {e}", dir.display()).into(),
            ))
        }),
        _ => Ok(()),
    }
}

fn decode_fact(row: &SqliteRow) -> Result<RecordedFact, StoreError> {
    let fact_id: String = row.try_get("fact_id")?;
    let data: String = row.try_get("data")?;
    let metadata: String = row.try_get("metadata")?;
    let recorded_at: String = row.try_get("recorded_at")?;
    Ok(RecordedFact {
        position: codec::to_u64(row.try_get("position")?, "position")?,
        stream: row.try_get("stream")?,
        revision: codec::to_u64(row.try_get("revision")?, "revision")?,
        fact_id: fact_id
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("fact_id {fact_id}: {e}")))?,
        fact_type: row.try_get("fact_type")?,
        schema_version: codec::to_u32(row.try_get("schema_version")?, "schema_version")?,
        data: codec::from_json(&data, "data")?,
        metadata: codec::from_json::<FactMetadata>(&metadata, "metadata")?,
        recorded_at: codec::parse_time(&recorded_at, "recorded_at")?,
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
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {FACT_COLUMNS} FROM facts WHERE position > ?1 ORDER BY position LIMIT ?2"
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
    /// Reads what the batch needs to know, inside the write transaction.
    async fn load_view(
        tx: &mut SqliteConnection,
        requests: &[AppendRequest],
        now: chrono::DateTime<Utc>,
    ) -> Result<LogView, StoreError> {
        let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM facts")
            .fetch_one(&mut *tx)
            .await?;
        let mut view = LogView {
            head: codec::to_u64(head, "position")?,
            ..LogView::default()
        };

        // json_each turns one bound JSON array into a set, instead of a statement per item.
        let streams = codec::json_text(&plan::streams_of(requests))?;
        let rows = sqlx::query(
            "SELECT stream, MAX(revision) AS revision FROM facts \
             WHERE stream IN (SELECT value FROM json_each(?1)) GROUP BY stream",
        )
        .bind(streams)
        .fetch_all(&mut *tx)
        .await?;
        for row in rows {
            view.stream_revisions.insert(
                row.try_get("stream")?,
                codec::to_u64(row.try_get("revision")?, "revision")?,
            );
        }

        let ids: Vec<String> = plan::fact_ids_of(requests)
            .iter()
            .map(ToString::to_string)
            .collect();
        let rows = sqlx::query(
            "SELECT fact_id, stream, revision, position FROM facts \
             WHERE fact_id IN (SELECT value FROM json_each(?1))",
        )
        .bind(codec::json_text(&ids)?)
        .fetch_all(&mut *tx)
        .await?;
        for row in rows {
            let fact_id: String = row.try_get("fact_id")?;
            view.known_facts.insert(
                fact_id
                    .parse()
                    .map_err(|e| StoreError::Corrupt(format!("fact_id {fact_id}: {e}")))?,
                KnownFact {
                    stream: row.try_get("stream")?,
                    revision: codec::to_u64(row.try_get("revision")?, "revision")?,
                    position: codec::to_u64(row.try_get("position")?, "position")?,
                },
            );
        }

        let keys = plan::keys_of(requests);
        if !keys.is_empty() {
            let rows = sqlx::query(
                "SELECT key FROM idempotency_keys \
                 WHERE key IN (SELECT value FROM json_each(?1)) AND created_at >= ?2",
            )
            .bind(codec::json_text(&keys)?)
            .bind(codec::time_text(plan::idempotency_cutoff(now)))
            .fetch_all(&mut *tx)
            .await?;
            for row in rows {
                view.taken_keys.insert(row.try_get("key")?);
            }
        }
        Ok(view)
    }
}

/// Writes one idempotency entry, replacing an existing one only if it has expired (a live one
/// is kept: the first answer wins).
async fn put_idempotency(
    conn: &mut SqliteConnection,
    write: &IdempotencyWrite,
    now: chrono::DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO idempotency_keys (key, request_hash, status, body, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (key) DO UPDATE SET request_hash = excluded.request_hash, \
           status = excluded.status, body = excluded.body, created_at = excluded.created_at \
         WHERE idempotency_keys.created_at < ?6",
    )
    .bind(&write.key)
    .bind(&write.response.request_hash)
    .bind(i64::from(write.response.status))
    .bind(codec::json_text(&write.response.body)?)
    .bind(codec::time_text(write.response.created_at))
    .bind(codec::time_text(plan::idempotency_cutoff(now)))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn cleanup_idempotency(pool: &SqlitePool, clock: &CleanupClock) {
    if !clock.due() {
        return;
    }
    let cutoff = codec::time_text(Utc::now() - crate::IDEMPOTENCY_RETENTION);
    if let Err(e) = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < ?1")
        .bind(cutoff)
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
        let now = Utc::now().trunc_subsecs(6);
        let recorded_at = codec::time_text(now);
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let view = Self::load_view(&mut tx, requests, now).await?;
        let plan = plan::plan_grouped(requests, groups, &view);

        for row in &plan.rows {
            let sql = sqlx::AssertSqlSafe(format!(
                "INSERT INTO facts ({FACT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            ));
            sqlx::query(sql)
                .bind(codec::to_i64(row.position, "position")?)
                .bind(row.stream)
                .bind(codec::to_i64(row.revision, "revision")?)
                .bind(row.fact.fact_id.to_string())
                .bind(&row.fact.fact_type)
                .bind(i64::from(row.fact.schema_version))
                .bind(codec::json_text(&row.fact.data)?)
                .bind(codec::json_text(&row.fact.metadata)?)
                .bind(&recorded_at)
                .execute(&mut *tx)
                .await?;
        }
        for write in &plan.idempotency {
            put_idempotency(&mut tx, write, now).await?;
        }
        tx.commit().await?;
        Ok(BatchResult {
            outcomes: plan.outcomes,
            head: plan.head,
        })
    }

    async fn after_batch(&self) {
        cleanup_idempotency(&self.writer, &self.cleanup).await;
    }
}

#[async_trait::async_trait]
impl EventStore for SqliteStore {
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
            "SELECT {FACT_COLUMNS} FROM facts WHERE stream = ?1 AND revision >= ?2 \
             ORDER BY revision LIMIT ?3"
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
        // Polling too: another process may append to the same file, and its writes wake no one
        // here.
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
             WHERE key = ?1 AND created_at >= ?2",
        )
        .bind(key)
        .bind(codec::time_text(plan::idempotency_cutoff(Utc::now())))
        .fetch_optional(&self.reader.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let status: i64 = row.try_get("status")?;
        let body: String = row.try_get("body")?;
        let created_at: String = row.try_get("created_at")?;
        Ok(Some(IdempotentResponse {
            request_hash: row.try_get("request_hash")?,
            status: u16::try_from(status)
                .map_err(|_| StoreError::Corrupt(format!("status {status}")))?,
            body: codec::from_json(&body, "body")?,
            created_at: codec::parse_time(&created_at, "created_at")?,
        }))
    }

    async fn idempotency_put(&self, write: IdempotencyWrite) -> Result<(), StoreError> {
        let mut conn = self.writer.acquire().await?;
        put_idempotency(&mut conn, &write, Utc::now()).await?;
        drop(conn);
        cleanup_idempotency(&self.writer, &self.cleanup).await;
        Ok(())
    }

    async fn load_snapshot(&self, stream: &str) -> Result<Option<Snapshot>, StoreError> {
        let row = sqlx::query(
            "SELECT stream, revision, schema_version, state FROM snapshots WHERE stream = ?1",
        )
        .bind(stream)
        .fetch_optional(&self.reader.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let state: String = row.try_get("state")?;
        Ok(Some(Snapshot {
            stream: row.try_get("stream")?,
            revision: codec::to_u64(row.try_get("revision")?, "revision")?,
            schema_version: codec::to_u32(row.try_get("schema_version")?, "schema_version")?,
            state: codec::from_json(&state, "state")?,
        }))
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO snapshots (stream, revision, schema_version, state, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (stream) DO UPDATE SET revision = excluded.revision, \
               schema_version = excluded.schema_version, state = excluded.state, \
               updated_at = excluded.updated_at \
             WHERE snapshots.revision <= excluded.revision",
        )
        .bind(&snapshot.stream)
        .bind(codec::to_i64(snapshot.revision, "revision")?)
        .bind(i64::from(snapshot.schema_version))
        .bind(codec::json_text(&snapshot.state)?)
        .bind(codec::time_text(Utc::now()))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    fn snapshot_every(&self) -> u64 {
        self.options.snapshot_every
    }
}
