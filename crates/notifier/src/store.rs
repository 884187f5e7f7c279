//! [`NotifierStore`]: the notifier's tables on SQLite or Postgres through one sqlx `Any` pool —
//! its checkpoint, the notifications it owes with their attempts, and the webhook endpoints.
//!
//! The same database as the log (the same file in embedded mode), with migrations of its own
//! recorded in their own table, like the auth tables.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Executor, Row, Transaction};
use uuid::Uuid;

use crate::NotifierError;

/// How long SQLite waits for the file's write lock (shared with the log's writer).
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;
/// This crate's migrations table, apart from the log's, the read models' and the auth tables'.
const MIGRATIONS_TABLE: &str = "_marquee_notifier_migrations";

/// Which engine sits behind the pool: only transaction start and migrations differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// The channel of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// An e-mail to a person; the recipient is the person's id.
    Email,
    /// A POST to a webhook endpoint; the recipient is the endpoint's id.
    Webhook,
}

impl Channel {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
        }
    }

    fn parse(text: &str) -> Result<Self, NotifierError> {
        match text {
            "email" => Ok(Channel::Email),
            "webhook" => Ok(Channel::Webhook),
            other => Err(NotifierError::Corrupt(format!("channel `{other}`"))),
        }
    }
}

/// A notification to record (see [`NotifierStore::plan`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    /// The fact it is about (a ping's own id for pings).
    pub fact_id: Uuid,
    /// E-mail or webhook.
    pub channel: Channel,
    /// Person id (e-mail) or webhook id.
    pub recipient: String,
    /// The template (e-mail), or the fact type (webhook; `ping` for pings).
    pub kind: String,
    /// The organization, for webhook deliveries.
    pub organization_id: Option<Uuid>,
    /// The fact's position (`None` for pings).
    pub position: Option<u64>,
    /// The sealed e-mail, or a ping's body.
    pub payload: Option<String>,
    /// A condition checked just before sending (see the migration).
    pub requires: Option<String>,
    /// Not before then.
    pub not_before: DateTime<Utc>,
}

/// A notification claimed for sending.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    /// Stable across attempts: the e-mail's Message-ID, the webhook's `Marquee-Delivery`.
    pub delivery_id: Uuid,
    /// The fact it is about.
    pub fact_id: Uuid,
    /// E-mail or webhook.
    pub channel: Channel,
    /// Person id or webhook id.
    pub recipient: String,
    /// Template or fact type.
    pub kind: String,
    /// The organization, for webhooks.
    pub organization_id: Option<Uuid>,
    /// The fact's position.
    pub position: Option<u64>,
    /// The sealed e-mail or a ping's body.
    pub payload: Option<String>,
    /// The condition to check first.
    pub requires: Option<String>,
    /// This attempt's number, from 1.
    pub attempt: u32,
    /// When the notification was planned: retries stop some time after.
    pub created_at: DateTime<Utc>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Delivered.
    Sent { status: Option<u16> },
    /// Not delivered; try again at `retry_at`, or never (`None`: given up).
    Failed {
        status: Option<u16>,
        error: String,
        retry_at: Option<DateTime<Utc>>,
    },
    /// The endpoint answered `410 Gone`: it is disabled, and so is everything it was owed.
    Gone { status: u16 },
    /// Not sent and never will be (the recipient was erased, the hold was paid, the endpoint
    /// removed).
    Dropped { reason: String },
}

/// A webhook endpoint as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// Its id.
    pub webhook_id: Uuid,
    /// Its organization.
    pub organization_id: Uuid,
    /// Where deliveries go.
    pub url: String,
    /// The fact types it receives (`*` for all).
    pub fact_types: Vec<String>,
    /// The signing secret, sealed with the vault.
    pub sealed_secret: String,
    /// Only facts after this position are delivered.
    pub after_position: u64,
    /// `active`, `disabled` or `removed`.
    pub status: String,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// Who added it (`user:<id>` or `token:<id>`).
    pub created_by: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// One delivery in a webhook's delivery log.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    /// The delivery's id (the `Marquee-Delivery` header).
    pub delivery_id: Uuid,
    /// The fact delivered (a ping's own id for pings).
    pub fact_id: Uuid,
    /// Its type, or `ping`.
    pub kind: String,
    /// Its position in the log.
    pub position: Option<u64>,
    /// pending | sending | sent | failed | dropped.
    pub status: String,
    /// Attempts made.
    pub attempts: u32,
    /// The HTTP status of the last attempt.
    pub last_status: Option<u16>,
    /// What went wrong last.
    pub last_error: Option<String>,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When it was planned.
    pub created_at: DateTime<Utc>,
    /// When it was delivered.
    pub sent_at: Option<DateTime<Utc>>,
    /// Every attempt, oldest first.
    pub attempt_log: Vec<AttemptRecord>,
}

/// One attempt at a delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    /// From 1.
    pub attempt: u32,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// sent | failed | gone | dropped.
    pub outcome: String,
    /// The HTTP status, if one came back.
    pub status_code: Option<u16>,
    /// What went wrong.
    pub error: Option<String>,
}

/// Handle on the notifier's tables. Cheap to clone.
#[derive(Clone)]
pub struct NotifierStore {
    pool: AnyPool,
    backend: Backend,
}

impl fmt::Debug for NotifierStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifierStore")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// A time as stored: RFC 3339 UTC with microseconds, so text order is time order.
pub(crate) fn time_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, NotifierError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| NotifierError::Corrupt(format!("`{text}` is not a time")))
}

fn parse_uuid(text: &str) -> Result<Uuid, NotifierError> {
    Uuid::parse_str(text).map_err(|_| NotifierError::Corrupt(format!("`{text}` is not an id")))
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn opt_u64(row: &AnyRow, column: &str) -> Result<Option<u64>, NotifierError> {
    Ok(row
        .try_get::<Option<i64>, _>(column)?
        .and_then(|n| u64::try_from(n).ok()))
}

fn opt_u16(row: &AnyRow, column: &str) -> Result<Option<u16>, NotifierError> {
    Ok(row
        .try_get::<Option<i64>, _>(column)?
        .and_then(|n| u16::try_from(n).ok()))
}

fn opt_time(row: &AnyRow, column: &str) -> Result<Option<DateTime<Utc>>, NotifierError> {
    row.try_get::<Option<String>, _>(column)?
        .as_deref()
        .map(parse_time)
        .transpose()
}

impl NotifierStore {
    /// Connects and applies this crate's migrations: `sqlite://PATH`, `postgres://…`, or
    /// `memory:` (a private in-memory SQLite that lives as long as the pool).
    pub async fn connect(url: &str) -> Result<Self, NotifierError> {
        sqlx::any::install_default_drivers();
        let (backend, db_url, options) = if url == "memory:" {
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
                AnyPoolOptions::new().max_connections(4),
            )
        } else {
            return Err(NotifierError::Config(format!(
                "unsupported database URL for the notifier: {}",
                url.split_once(':').map_or(url, |(scheme, _)| scheme)
            )));
        };
        let options = match backend {
            Backend::Sqlite => options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    let pragma = format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}");
                    conn.execute(sqlx::AssertSqlSafe(pragma)).await?;
                    Ok(())
                })
            }),
            Backend::Postgres => options,
        };
        let connect: AnyConnectOptions = db_url.parse()?;
        let pool = options.connect_with(connect).await?;
        let mut migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator.run(&pool).await?;
        Ok(Self { pool, backend })
    }

    /// A transaction that reads then writes: `BEGIN IMMEDIATE` on SQLite.
    async fn begin_write(&self) -> Result<Transaction<'static, Any>, NotifierError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    // ----- checkpoint and planning ---------------------------------------------------------

    /// The position up to which `name` has planned its notifications; `None` before its first
    /// run.
    pub async fn checkpoint(&self, name: &str) -> Result<Option<u64>, NotifierError> {
        let row = sqlx::query("SELECT position FROM notifier_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| Ok(u64::try_from(row.try_get::<i64, _>("position")?).unwrap_or(0)))
            .transpose()
    }

    /// Records `notifications` (those already recorded are left as they are) and moves the
    /// checkpoint of `name` to `position` (never back), in one transaction: a crash plans all
    /// of a batch or none of it, and a fact read again plans nothing new.
    pub async fn plan(
        &self,
        name: &str,
        notifications: &[NewNotification],
        position: u64,
        now: DateTime<Utc>,
    ) -> Result<(), NotifierError> {
        let mut tx = self.begin_write().await?;
        for n in notifications {
            sqlx::query(
                "INSERT INTO notifications (fact_id, channel, recipient, delivery_id, kind, \
                 organization_id, position, payload, requires, status, attempts, \
                 next_attempt_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', 0, $10, $11, $11) \
                 ON CONFLICT (fact_id, channel, recipient) DO NOTHING",
            )
            .bind(n.fact_id.to_string())
            .bind(n.channel.as_str())
            .bind(&n.recipient)
            .bind(Uuid::now_v7().to_string())
            .bind(&n.kind)
            .bind(n.organization_id.map(|id| id.to_string()))
            .bind(n.position.map(to_i64))
            .bind(n.payload.as_deref())
            .bind(n.requires.as_deref())
            .bind(time_text(n.not_before))
            .bind(time_text(now))
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO notifier_checkpoints (name, position) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET position = excluded.position \
             WHERE notifier_checkpoints.position < excluded.position",
        )
        .bind(name)
        .bind(to_i64(position))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records one notification outside the planning of facts (a ping) as `delivery_id`.
    pub async fn enqueue(
        &self,
        delivery_id: Uuid,
        n: &NewNotification,
        now: DateTime<Utc>,
    ) -> Result<Uuid, NotifierError> {
        sqlx::query(
            "INSERT INTO notifications (fact_id, channel, recipient, delivery_id, kind, \
             organization_id, position, payload, requires, status, attempts, \
             next_attempt_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', 0, $10, $11, $11)",
        )
        .bind(n.fact_id.to_string())
        .bind(n.channel.as_str())
        .bind(&n.recipient)
        .bind(delivery_id.to_string())
        .bind(&n.kind)
        .bind(n.organization_id.map(|id| id.to_string()))
        .bind(n.position.map(to_i64))
        .bind(n.payload.as_deref())
        .bind(n.requires.as_deref())
        .bind(time_text(n.not_before))
        .bind(time_text(now))
        .execute(&self.pool)
        .await?;
        Ok(delivery_id)
    }

    // ----- sending ---------------------------------------------------------------------------

    /// Claims up to `limit` notifications that are due at `now` for `claimer` until `until`:
    /// pending ones whose time has come, and ones another process claimed and did not finish
    /// within its claim (it died mid-send: the notification is in doubt and goes again, with
    /// the same delivery id). A process never reclaims its own claims: it finishes them.
    pub async fn claim(
        &self,
        claimer: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Claimed>, NotifierError> {
        let due = "((status = 'pending' AND next_attempt_at <= $3) \
                   OR (status = 'sending' AND claimed_until < $3 AND claimed_by <> $1))";
        let sql = format!(
            "UPDATE notifications SET status = 'sending', claimed_by = $1, claimed_until = $2, \
             attempts = attempts + 1, updated_at = $3 \
             WHERE delivery_id IN (SELECT delivery_id FROM notifications WHERE {due} \
             ORDER BY next_attempt_at, delivery_id LIMIT {limit}) AND {due} \
             RETURNING delivery_id, fact_id, channel, recipient, kind, organization_id, \
             position, payload, requires, attempts, created_at"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(claimer)
            .bind(time_text(until))
            .bind(time_text(now))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Claimed {
                    delivery_id: parse_uuid(&row.try_get::<String, _>("delivery_id")?)?,
                    fact_id: parse_uuid(&row.try_get::<String, _>("fact_id")?)?,
                    channel: Channel::parse(&row.try_get::<String, _>("channel")?)?,
                    recipient: row.try_get("recipient")?,
                    kind: row.try_get("kind")?,
                    organization_id: row
                        .try_get::<Option<String>, _>("organization_id")?
                        .as_deref()
                        .map(parse_uuid)
                        .transpose()?,
                    position: opt_u64(row, "position")?,
                    payload: row.try_get("payload")?,
                    requires: row.try_get("requires")?,
                    attempt: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(0),
                    created_at: parse_time(&row.try_get::<String, _>("created_at")?)?,
                })
            })
            .collect()
    }

    /// Records how an attempt of `claimed` that started at `started` ended, and sets the
    /// notification's state accordingly. Only the claim's holder's write counts.
    pub async fn finish(
        &self,
        claimer: &str,
        claimed: &Claimed,
        started: DateTime<Utc>,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) -> Result<(), NotifierError> {
        let (status, attempt_outcome, code, error, next) = match outcome {
            Outcome::Sent { status } => ("sent", "sent", *status, None, None),
            Outcome::Failed {
                status,
                error,
                retry_at: Some(at),
            } => ("pending", "failed", *status, Some(error.clone()), Some(*at)),
            Outcome::Failed {
                status,
                error,
                retry_at: None,
            } => ("failed", "failed", *status, Some(error.clone()), None),
            Outcome::Gone { status } => (
                "failed",
                "gone",
                Some(*status),
                Some("410 Gone: the endpoint is disabled".to_owned()),
                None,
            ),
            Outcome::Dropped { reason } => ("dropped", "dropped", None, Some(reason.clone()), None),
        };
        let delivery_id = claimed.delivery_id.to_string();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO notification_attempts (delivery_id, attempt, started_at, finished_at, \
             outcome, status_code, error) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (delivery_id, attempt) DO NOTHING",
        )
        .bind(&delivery_id)
        .bind(i64::from(claimed.attempt))
        .bind(time_text(started))
        .bind(time_text(now))
        .bind(attempt_outcome)
        .bind(code.map(i64::from))
        .bind(error.as_deref())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE notifications SET status = $1, last_status = $2, last_error = $3, \
             next_attempt_at = COALESCE($4, next_attempt_at), claimed_by = NULL, \
             claimed_until = NULL, updated_at = $5, \
             sent_at = CASE WHEN $1 = 'sent' THEN $5 ELSE sent_at END \
             WHERE delivery_id = $6 AND status = 'sending' AND claimed_by = $7",
        )
        .bind(status)
        .bind(code.map(i64::from))
        .bind(error.as_deref())
        .bind(next.map(time_text))
        .bind(time_text(now))
        .bind(&delivery_id)
        .bind(claimer)
        .execute(&mut *tx)
        .await?;
        if let Outcome::Gone { .. } = outcome
            && claimed.channel == Channel::Webhook
        {
            sqlx::query(
                "UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = $1, \
                 updated_at = $2 WHERE webhook_id = $3 AND status = 'active'",
            )
            .bind("the endpoint answered 410 Gone")
            .bind(time_text(now))
            .bind(&claimed.recipient)
            .execute(&mut *tx)
            .await?;
            drop_pending(&mut tx, &claimed.recipient, "the endpoint is disabled", now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The notifications of `channel` and `status`, as (delivery id, kind, recipient), oldest
    /// first: for tests and tools.
    pub async fn notifications(
        &self,
        channel: Channel,
    ) -> Result<Vec<(Uuid, String, String, String)>, NotifierError> {
        let rows = sqlx::query(
            "SELECT delivery_id, kind, recipient, status FROM notifications WHERE channel = $1 \
             ORDER BY created_at, delivery_id",
        )
        .bind(channel.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    parse_uuid(&row.try_get::<String, _>("delivery_id")?)?,
                    row.try_get("kind")?,
                    row.try_get("recipient")?,
                    row.try_get("status")?,
                ))
            })
            .collect()
    }

    /// Drops every notification still owed to person `recipient` (erased): nothing of theirs
    /// is sent any more. Their sealed payloads are unreadable anyway once the key is gone.
    pub async fn drop_for_person(
        &self,
        recipient: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, NotifierError> {
        let dropped = sqlx::query(
            "UPDATE notifications SET status = 'dropped', last_error = $1, updated_at = $2 \
             WHERE channel = 'email' AND recipient = $3 AND status = 'pending'",
        )
        .bind("the person was erased")
        .bind(time_text(now))
        .bind(recipient)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(dropped)
    }

    // ----- webhook endpoints -----------------------------------------------------------------

    /// Stores a new endpoint (active).
    pub async fn create_endpoint(&self, endpoint: &Endpoint) -> Result<(), NotifierError> {
        let fact_types = serde_json::to_string(&endpoint.fact_types)
            .map_err(|e| NotifierError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO webhook_endpoints (webhook_id, organization_id, url, fact_types, secret, \
             after_position, status, disabled_reason, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'active', NULL, $7, $8, $8)",
        )
        .bind(endpoint.webhook_id.to_string())
        .bind(endpoint.organization_id.to_string())
        .bind(&endpoint.url)
        .bind(fact_types)
        .bind(&endpoint.sealed_secret)
        .bind(to_i64(endpoint.after_position))
        .bind(endpoint.created_by.as_deref())
        .bind(time_text(endpoint.created_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One endpoint.
    pub async fn endpoint(&self, webhook_id: Uuid) -> Result<Option<Endpoint>, NotifierError> {
        let row = sqlx::query(
            "SELECT webhook_id, organization_id, url, fact_types, secret, after_position, \
             status, disabled_reason, created_by, created_at FROM webhook_endpoints \
             WHERE webhook_id = $1",
        )
        .bind(webhook_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(endpoint_from_row).transpose()
    }

    /// The endpoints of an organization that are not removed, oldest first.
    pub async fn endpoints_of(
        &self,
        organization_id: Uuid,
    ) -> Result<Vec<Endpoint>, NotifierError> {
        let rows = sqlx::query(
            "SELECT webhook_id, organization_id, url, fact_types, secret, after_position, \
             status, disabled_reason, created_by, created_at FROM webhook_endpoints \
             WHERE organization_id = $1 AND status <> 'removed' ORDER BY created_at, webhook_id",
        )
        .bind(organization_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(endpoint_from_row).collect()
    }

    /// Marks an endpoint removed and drops what it was still owed.
    pub async fn remove_endpoint(
        &self,
        webhook_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), NotifierError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE webhook_endpoints SET status = 'removed', updated_at = $1 \
             WHERE webhook_id = $2",
        )
        .bind(time_text(now))
        .bind(webhook_id.to_string())
        .execute(&mut *tx)
        .await?;
        drop_pending(
            &mut tx,
            &webhook_id.to_string(),
            "the endpoint was removed",
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The latest `limit` deliveries to an endpoint, newest first, with their attempts.
    pub async fn deliveries(
        &self,
        webhook_id: Uuid,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, NotifierError> {
        let sql = format!(
            "SELECT delivery_id, fact_id, kind, position, status, attempts, last_status, \
             last_error, next_attempt_at, created_at, sent_at FROM notifications \
             WHERE channel = 'webhook' AND recipient = $1 \
             ORDER BY created_at DESC, delivery_id DESC LIMIT {limit}"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(webhook_id.to_string())
            .fetch_all(&self.pool)
            .await?;
        let mut deliveries = Vec::with_capacity(rows.len());
        for row in &rows {
            let delivery_id: String = row.try_get("delivery_id")?;
            let status: String = row.try_get("status")?;
            let attempts = sqlx::query(
                "SELECT attempt, started_at, outcome, status_code, error \
                 FROM notification_attempts WHERE delivery_id = $1 ORDER BY attempt",
            )
            .bind(&delivery_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|a| {
                Ok(AttemptRecord {
                    attempt: u32::try_from(a.try_get::<i64, _>("attempt")?).unwrap_or(0),
                    started_at: parse_time(&a.try_get::<String, _>("started_at")?)?,
                    outcome: a.try_get("outcome")?,
                    status_code: opt_u16(a, "status_code")?,
                    error: a.try_get("error")?,
                })
            })
            .collect::<Result<Vec<_>, NotifierError>>()?;
            deliveries.push(DeliveryRecord {
                delivery_id: parse_uuid(&delivery_id)?,
                fact_id: parse_uuid(&row.try_get::<String, _>("fact_id")?)?,
                kind: row.try_get("kind")?,
                position: opt_u64(row, "position")?,
                next_attempt_at: if status == "pending" {
                    opt_time(row, "next_attempt_at")?
                } else {
                    None
                },
                status,
                attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(0),
                last_status: opt_u16(row, "last_status")?,
                last_error: row.try_get("last_error")?,
                created_at: parse_time(&row.try_get::<String, _>("created_at")?)?,
                sent_at: opt_time(row, "sent_at")?,
                attempt_log: attempts,
            });
        }
        Ok(deliveries)
    }
}

/// Drops the pending deliveries of endpoint `recipient`.
async fn drop_pending(
    tx: &mut Transaction<'static, Any>,
    recipient: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), NotifierError> {
    sqlx::query(
        "UPDATE notifications SET status = 'dropped', last_error = $1, updated_at = $2 \
         WHERE channel = 'webhook' AND recipient = $3 AND status = 'pending'",
    )
    .bind(reason)
    .bind(time_text(now))
    .bind(recipient)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn endpoint_from_row(row: &AnyRow) -> Result<Endpoint, NotifierError> {
    let fact_types: String = row.try_get("fact_types")?;
    Ok(Endpoint {
        webhook_id: parse_uuid(&row.try_get::<String, _>("webhook_id")?)?,
        organization_id: parse_uuid(&row.try_get::<String, _>("organization_id")?)?,
        url: row.try_get("url")?,
        fact_types: serde_json::from_str(&fact_types)
            .map_err(|e| NotifierError::Corrupt(format!("fact_types: {e}")))?,
        sealed_secret: row.try_get("secret")?,
        after_position: opt_u64(row, "after_position")?.unwrap_or(0),
        status: row.try_get("status")?,
        disabled_reason: row.try_get("disabled_reason")?,
        created_by: row.try_get("created_by")?,
        created_at: parse_time(&row.try_get::<String, _>("created_at")?)?,
    })
}
