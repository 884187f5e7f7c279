//! The handle on the read-model database: connecting, migrating, the checkpoint, and waiting for
//! a position (read-your-writes).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use marquee_auth::Vault;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor, Row, Transaction};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::ProjectorError;

/// Name of the projection that maintains every read-model table of this crate; its row in
/// `projector_checkpoints` is the checkpoint.
pub const PROJECTION: &str = "read_models";

/// How long SQLite waits for the file's write lock (shared with the log's writer) before failing.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;
/// How often [`ReadModels::wait_for`] polls the checkpoint when no projector runs in-process.
const POLL_REMOTE: Duration = Duration::from_millis(15);
/// How often it polls anyway when an in-process projector will also notify (a safety net only).
const POLL_LOCAL: Duration = Duration::from_millis(250);

/// Which database engine sits behind the `Any` pool; only transaction start and migrations differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// Handle on the read-model database. Cheap to clone; clones share the pool and the in-process
/// notification of applied positions.
#[derive(Clone)]
pub struct ReadModels {
    inner: Arc<Inner>,
    /// Opens the personal data of the facts applied through this handle (see
    /// [`ReadModels::with_vault`]).
    vault: Option<Vault>,
}

struct Inner {
    /// Readers and the projector's writer share this pool.
    pool: AnyPool,
    backend: Backend,
    /// The highest checkpoint seen in this process, pushed by a local projector after each commit
    /// and by every checkpoint read.
    applied: watch::Sender<u64>,
    /// Projectors running in this process on this handle; while any runs, waiters are notified
    /// and need not poll hard.
    local_projectors: AtomicUsize,
    /// When a waiter last read the checkpoint table: however many requests wait, the table is
    /// read at most once per poll interval and the answer reaches all of them via `applied`.
    last_poll: tokio::sync::Mutex<Option<Instant>>,
}

impl ReadModels {
    /// Same URL forms as the store: `sqlite://PATH` (the SAME file as the log in embedded mode),
    /// `postgres://…`, and `memory:` (a private in-memory SQLite, single shared connection).
    /// Runs the read-model migrations.
    pub async fn connect(url: &str) -> Result<Self, ProjectorError> {
        sqlx::any::install_default_drivers();
        let (backend, db_url, pool_options) = if url == "memory:" {
            // One connection that never closes: the in-memory database lives as long as it does.
            let options = AnyPoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
            (Backend::Sqlite, "sqlite::memory:".to_owned(), options)
        } else if url.starts_with("sqlite:") {
            let db_url = if url.contains("mode=") {
                url.to_owned()
            } else if url.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            };
            (
                Backend::Sqlite,
                db_url,
                AnyPoolOptions::new().max_connections(4),
            )
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (
                Backend::Postgres,
                url.to_owned(),
                AnyPoolOptions::new().max_connections(8),
            )
        } else {
            return Err(ProjectorError::UnsupportedUrl(url.to_owned()));
        };

        let pool_options = match backend {
            Backend::Sqlite => pool_options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    let pragma = format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}");
                    conn.execute(sqlx::AssertSqlSafe(pragma)).await?;
                    Ok(())
                })
            }),
            Backend::Postgres => pool_options,
        };
        let options: AnyConnectOptions = db_url.parse()?;
        let pool = pool_options.connect_with(options).await?;

        let mut migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        // The log keeps its own migrations in the same `_sqlx_migrations` table.
        migrator.set_ignore_missing(true);
        migrator.run(&pool).await?;

        let read = Self {
            inner: Arc::new(Inner {
                pool,
                backend,
                applied: watch::Sender::new(0),
                local_projectors: AtomicUsize::new(0),
                last_poll: tokio::sync::Mutex::new(None),
            }),
            vault: None,
        };
        read.applied_position().await?;
        Ok(read)
    }

    /// The same handle opening the personal data in the facts it applies (projector and
    /// rebuild) with `vault`, the command side's keys (see `crate::personal`). The vault is
    /// used without a key cache, so a person erased by another process reads as erased here at
    /// once. Without one, sealed values would reach the read models as they are stored
    /// (unreadable, never plaintext).
    pub fn with_vault(mut self, vault: Vault) -> Self {
        self.vault = Some(vault.with_key_cache_ttl(Duration::ZERO));
        self
    }

    /// The vault facts are opened with, if any.
    pub(crate) fn vault(&self) -> Option<&Vault> {
        self.vault.as_ref()
    }

    /// Last position applied (the checkpoint); 0 if none.
    pub async fn applied_position(&self) -> Result<u64, ProjectorError> {
        let row = sqlx::query("SELECT position FROM projector_checkpoints WHERE projection = $1")
            .bind(PROJECTION)
            .fetch_optional(&self.inner.pool)
            .await?;
        let position = match row {
            Some(row) => to_u64(row.try_get::<i64, _>("position")?)?,
            None => 0,
        };
        self.publish_applied(position);
        Ok(position)
    }

    /// Waits (on an in-process notification from a local [`crate::Projector`], polling the
    /// checkpoint table when the projector is another process) until `applied_position >=
    /// position` or `timeout` passes; returns whether the position was reached.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> Result<bool, ProjectorError> {
        let deadline = Instant::now() + timeout;
        let mut notified = self.inner.applied.subscribe();
        let mut poll = true;
        loop {
            let interval = if self.inner.local_projectors.load(Ordering::Relaxed) > 0 {
                POLL_LOCAL
            } else {
                POLL_REMOTE
            };
            if poll {
                self.refresh_applied(interval).await?;
            }
            if *notified.borrow_and_update() >= position {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            let wake_at = (now + interval).min(deadline);
            // A notification carries the new position itself: only a timer wake reads the
            // table (for projectors in other processes).
            poll = tokio::select! {
                // The sender lives in `self`, so `changed` cannot fail while we hold it.
                _ = notified.changed() => false,
                _ = tokio::time::sleep_until(wake_at) => true,
            };
        }
    }

    /// The applied position as this process knows it: pushed by an in-process projector, and
    /// re-read from the checkpoint table at most once per poll interval however many requests
    /// ask. Every read made after this call sees at least this position.
    pub async fn applied_recent(&self) -> Result<u64, ProjectorError> {
        let interval = if self.inner.local_projectors.load(Ordering::Relaxed) > 0 {
            POLL_LOCAL
        } else {
            POLL_REMOTE
        };
        self.refresh_applied(interval).await?;
        Ok(*self.inner.applied.borrow())
    }

    /// Reads the checkpoint (publishing it to every waiter) unless some waiter did so within
    /// `interval`. Thousands of waiting requests cost one query per interval, not thousands:
    /// without this, every projector commit woke every waiter into its own query, and under
    /// load the queries starved the projector they were waiting for.
    async fn refresh_applied(&self, interval: Duration) -> Result<(), ProjectorError> {
        let recent =
            |last_poll: &Option<Instant>| last_poll.is_some_and(|at| at.elapsed() < interval);
        // Fast path without waiting: most requests find a recent read.
        if let Ok(last_poll) = self.inner.last_poll.try_lock()
            && recent(&last_poll)
        {
            return Ok(());
        }
        let mut last_poll = self.inner.last_poll.lock().await;
        if recent(&last_poll) {
            return Ok(());
        }
        self.applied_position().await?;
        *last_poll = Some(Instant::now());
        Ok(())
    }

    /// The pool, for this crate's queries.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    /// The engine behind the pool, for the few statements whose SQL differs.
    pub(crate) fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// Starts a transaction that will read and then write. On SQLite it takes the write lock up
    /// front (`BEGIN IMMEDIATE`): a deferred transaction that upgrades later fails with "database
    /// is locked" whatever the busy timeout.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>, ProjectorError> {
        let tx = match self.inner.backend {
            Backend::Sqlite => self.inner.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.inner.pool.begin().await?,
        };
        Ok(tx)
    }

    /// Tells in-process waiters that `position` has been applied.
    pub(crate) fn publish_applied(&self, position: u64) {
        self.inner.applied.send_if_modified(|seen| {
            if position > *seen {
                *seen = position;
                true
            } else {
                false
            }
        });
    }

    /// Registers a projector running in this process until the guard is dropped.
    pub(crate) fn local_projector(&self) -> LocalProjectorGuard {
        self.inner.local_projectors.fetch_add(1, Ordering::Relaxed);
        LocalProjectorGuard { read: self.clone() }
    }
}

/// Keeps [`ReadModels`] aware that a projector in this process will notify waiters.
pub(crate) struct LocalProjectorGuard {
    read: ReadModels,
}

impl Drop for LocalProjectorGuard {
    fn drop(&mut self) {
        self.read
            .inner
            .local_projectors
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Converts a stored BIGINT count or position back, refusing negatives.
pub(crate) fn to_u64(value: i64) -> Result<u64, ProjectorError> {
    u64::try_from(value).map_err(|_| ProjectorError::Corrupt(format!("negative value {value}")))
}
