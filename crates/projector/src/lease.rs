//! The lease that lets any number of projector processes run while exactly one writes.
//!
//! # Why a lease, and not partitioned consumers
//!
//! The read models have one global checkpoint (`projector_checkpoints`), and that checkpoint is
//! what makes a batch exactly-once: facts at or below it are skipped, and it moves in the same
//! transaction as the rows. Partitioning the facts between processes (by stream hash, or several
//! pull clients on one JetStream consumer) would need one checkpoint per partition and would
//! break read models that fold facts of several streams in order — an event's listing row takes
//! its venue's name and city from the venue's stream, and event capacity needs every fact of an
//! event, in order, to stay right. So one process applies, and the others stand by: a standby
//! takes over within one lease term of the holder stopping. Throughput comes from batching (one
//! transaction per hundreds of facts), not from parallel writers.
//!
//! # How it works
//!
//! A row in `projector_leases` per projection: `(projection, holder, expires_at)`, with
//! `expires_at` on the *database* clock (Unix milliseconds), so processes on hosts with skewed
//! clocks agree on when a lease has run out.
//!
//! - **Acquire**: one upsert that succeeds only when there is no row, the row is ours, or it
//!   has expired.
//! - **Renew**: the holder moves `expires_at` forward every [`LeaseConfig::renew_every`]; when
//!   the row is no longer its own it stops applying and stands by.
//! - **Fencing**: every batch transaction first updates the lease row `WHERE holder = me`
//!   (a no-op write that also locks the row until commit) and aborts when no row matched. A
//!   projector that was paused past its lease (GC, SIGSTOP, a slow disk) and wakes up after a
//!   standby took over can therefore never write, and a takeover waits for an in-flight batch of
//!   the old holder to commit or roll back, never interleaves with it.
//! - **Release**: a clean stop deletes the row, so a standby takes over at its next poll instead
//!   of waiting out the term.
//!
//! Fencing is what makes the lease safe; the term only decides how soon a standby notices a dead
//! holder. Even without the lease two writers could not double-apply a fact (the checkpoint row
//! lock and skip see to that); the lease keeps them from both pulling from NATS, both paying for
//! every batch, and both acknowledging messages.
//!
//! In embedded mode there is one process and the lease is trivially its own.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use crate::ProjectorError;
use crate::read_models::{Backend, PROJECTION, ReadModels};

/// The holder name [`crate::Projector::new`] uses on SQLite read models. Embedded mode is one
/// process per file, so a fixed name lets a restarted process take the lease back at once
/// instead of waiting out the term of its killed predecessor.
pub const EMBEDDED_HOLDER: &str = "embedded";

/// Who holds the lease and for how long; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    /// This process's id in `projector_leases.holder`. Must differ between processes that share
    /// a read-model database; [`LeaseConfig::unique`] makes one.
    pub holder: String,
    /// How long a lease lasts without renewal: a standby takes over at most this long (plus
    /// [`LeaseConfig::poll_every`]) after a holder died without releasing. Default 10 s.
    pub ttl: Duration,
    /// How often the holder renews. Must be well below `ttl`, so that a slow renewal or two do
    /// not lose the lease. Default 3 s.
    pub renew_every: Duration,
    /// How often a standby tries to take the lease. Default 1 s.
    pub poll_every: Duration,
}

impl LeaseConfig {
    /// Default timings with a holder id of its own: `projector-<pid>-<random>`.
    pub fn unique() -> Self {
        Self::named(format!(
            "projector-{}-{}",
            std::process::id(),
            Uuid::new_v4().simple()
        ))
    }

    /// Default timings under a fixed holder id, e.g. a pod name that survives restarts.
    pub fn named(holder: impl Into<String>) -> Self {
        Self {
            holder: holder.into(),
            ttl: Duration::from_secs(10),
            renew_every: Duration::from_secs(3),
            poll_every: Duration::from_secs(1),
        }
    }

    /// Rejects timings that could never hold a lease.
    pub(crate) fn validate(&self) -> Result<(), ProjectorError> {
        let invalid = |why: &str| Err(ProjectorError::InvalidConfig(why.to_owned()));
        if self.holder.is_empty() {
            return invalid("lease holder must not be empty");
        }
        if self.renew_every.is_zero() || self.poll_every.is_zero() {
            return invalid("lease renew and poll intervals must be > 0");
        }
        if self.renew_every >= self.ttl {
            return invalid("lease renew interval must be shorter than its term");
        }
        Ok(())
    }
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self::unique()
    }
}

/// The current lease on the read models, for lag and health reporting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    /// The holding process's [`LeaseConfig::holder`].
    pub holder: String,
    /// When it runs out unless renewed (database clock).
    pub expires_at: DateTime<Utc>,
    /// Whether it had run out when read: its holder stopped renewing and a standby may take it.
    pub expired: bool,
}

/// The database's clock in Unix milliseconds, as SQL: every process compares against the same
/// clock, whatever its own says.
fn now_ms(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl ReadModels {
    /// Who holds the projector's lease, if anyone does (`None` before the first projector ran
    /// and after a clean stop).
    pub async fn lease_holder(&self) -> Result<Option<LeaseHolder>, ProjectorError> {
        let sql = format!(
            "SELECT holder, expires_at, {} AS now_ms FROM projector_leases WHERE projection = $1",
            now_ms(self.backend())
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(PROJECTION)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let expires_at: i64 = row.try_get("expires_at")?;
        let now: i64 = row.try_get("now_ms")?;
        Ok(Some(LeaseHolder {
            holder: row.try_get("holder")?,
            expires_at: DateTime::from_timestamp_millis(expires_at).ok_or_else(|| {
                ProjectorError::Corrupt(format!("lease expiry {expires_at} out of range"))
            })?,
            expired: expires_at <= now,
        }))
    }

    /// Takes the lease for `holder` if it is free, expired, or already `holder`'s; returns
    /// whether `holder` holds it now.
    pub(crate) async fn try_acquire_lease(
        &self,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, ProjectorError> {
        let now = now_ms(self.backend());
        let sql = format!(
            "INSERT INTO projector_leases (projection, holder, expires_at) \
             VALUES ($1, $2, {now} + $3) \
             ON CONFLICT (projection) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at \
             WHERE projector_leases.holder = excluded.holder \
             OR projector_leases.expires_at <= {now}"
        );
        let taken = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(PROJECTION)
            .bind(holder)
            .bind(millis(ttl))
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(taken == 1)
    }

    /// Extends `holder`'s lease by `ttl` from now; returns `false` when someone else holds it.
    pub(crate) async fn renew_lease(
        &self,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, ProjectorError> {
        let sql = format!(
            "UPDATE projector_leases SET expires_at = {} + $1 \
             WHERE projection = $2 AND holder = $3",
            now_ms(self.backend())
        );
        let renewed = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(millis(ttl))
            .bind(PROJECTION)
            .bind(holder)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(renewed == 1)
    }

    /// Gives the lease to `holder` whoever holds it, for `ttl`; returns whether it did. Only a
    /// rebuild does this, for its swap: the previous holder is fenced from its next batch on.
    pub(crate) async fn steal_lease(
        &self,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, ProjectorError> {
        let sql = format!(
            "INSERT INTO projector_leases (projection, holder, expires_at) \
             VALUES ($1, $2, {} + $3) \
             ON CONFLICT (projection) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at",
            now_ms(self.backend())
        );
        let taken = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(PROJECTION)
            .bind(holder)
            .bind(millis(ttl))
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(taken >= 1)
    }

    /// Gives the lease up, if `holder` has it, so a standby need not wait for it to expire.
    pub(crate) async fn release_lease(&self, holder: &str) -> Result<(), ProjectorError> {
        sqlx::query("DELETE FROM projector_leases WHERE projection = $1 AND holder = $2")
            .bind(PROJECTION)
            .bind(holder)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

/// The fencing check, inside a batch transaction: locks the lease row and fails with
/// [`ProjectorError::LeaseLost`] unless `holder` still holds it. Expiry alone does not fence:
/// an expired lease nobody took over is still safe to write under, and the row lock makes a
/// takeover wait for this transaction to end.
pub(crate) async fn fence(
    conn: &mut sqlx::AnyConnection,
    holder: &str,
) -> Result<(), ProjectorError> {
    let held = sqlx::query(
        "UPDATE projector_leases SET holder = holder WHERE projection = $1 AND holder = $2",
    )
    .bind(PROJECTION)
    .bind(holder)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if held == 1 {
        Ok(())
    } else {
        Err(ProjectorError::LeaseLost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_holders_differ_and_timings_that_cannot_work_are_rejected() {
        assert_ne!(LeaseConfig::unique().holder, LeaseConfig::unique().holder);
        assert!(LeaseConfig::unique().validate().is_ok());
        let too_slow = LeaseConfig {
            renew_every: Duration::from_secs(10),
            ..LeaseConfig::named("a")
        };
        assert!(matches!(
            too_slow.validate(),
            Err(ProjectorError::InvalidConfig(_))
        ));
        assert!(LeaseConfig::named("").validate().is_err());
    }
}
