//! Timers: the timed commands the scheduler must issue, folded from the facts that start and
//! end them (table `timers`).
//!
//! | kind | target | set by | due | removed by |
//! |---|---|---|---|---|
//! | `expire_hold` | registration id | `SeatsHeld` | its `expires_at` | `HoldConfirmed`, `HoldExpired`, `RegistrationCancelled` |
//! | `expire_offer` | waitlist entry id | `WaitlistOfferMade` | its `expires_at` | `WaitlistOfferClaimed`, `WaitlistOfferExpired`, `WaitlistLeft`, `EventCancelled` |
//! | `refund` | payment id | `RefundDue` | its `due_at` | `RefundCompleted` |
//! | `remind` | event id | `ReminderScheduled` with a reminder | its `due_at` | `ReminderScheduled` without one |
//!
//! A timer is a reminder, not a decision: the scheduler issues the command when it is due, and
//! the domain decides whether it still applies (an `ExpireHold` for a hold paid meanwhile is a
//! no-op). The table reflects the applied position, so a timer can briefly outlive the fact
//! that ended it; the commands are idempotent, so firing it then does no harm.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use crate::rows::{ID_CHUNK, placeholders};
use crate::tables::Tables;
use crate::time::{from_text, to_text};
use crate::{ProjectorError, ReadModels};

/// What a timer asks the scheduler to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimerKind {
    /// Issue `ExpireHold` for the registration named by the target.
    ExpireHold,
    /// Issue `ExpireOffer` for the waitlist entry named by the target.
    ExpireOffer,
    /// Ask the payment provider to refund the payment named by the target, then issue
    /// `CompleteRefund`.
    Refund,
    /// Issue `RemindAttendees` for the event named by the target (its next reminder is due).
    Remind,
}

impl TimerKind {
    /// The stored spelling, also the first part of a timer id: `expire_hold`, `expire_offer`,
    /// `refund`, `remind`.
    pub fn as_str(self) -> &'static str {
        match self {
            TimerKind::ExpireHold => "expire_hold",
            TimerKind::ExpireOffer => "expire_offer",
            TimerKind::Refund => "refund",
            TimerKind::Remind => "remind",
        }
    }

    /// The inverse of [`TimerKind::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "expire_hold" => Some(TimerKind::ExpireHold),
            "expire_offer" => Some(TimerKind::ExpireOffer),
            "refund" => Some(TimerKind::Refund),
            "remind" => Some(TimerKind::Remind),
            _ => None,
        }
    }
}

impl fmt::Display for TimerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One pending timed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    /// What to do.
    pub kind: TimerKind,
    /// The event whose stream the command goes to.
    pub event_id: Uuid,
    /// What to do it to: a registration id, a waitlist entry id or a payment id, by `kind`.
    pub target_id: String,
    /// When it is due.
    pub due_at: DateTime<Utc>,
}

impl Timer {
    /// The timer's id, unique among pending timers: `<kind>:<target_id>`.
    pub fn id(&self) -> String {
        timer_id(self.kind, &self.target_id)
    }
}

fn timer_id(kind: TimerKind, target_id: &str) -> String {
    format!("{}:{target_id}", kind.as_str())
}

impl ReadModels {
    /// Timers due at `now` or earlier, oldest first (then by id), at most `limit`.
    pub async fn due_timers(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Timer>, ProjectorError> {
        let sql = format!(
            "SELECT kind, event_id, target_id, due_at FROM timers WHERE due_at <= $1 \
             ORDER BY due_at, timer_id LIMIT {limit}"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(to_text(now))
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get("kind")?;
                let event_id: String = row.try_get("event_id")?;
                Ok(Timer {
                    kind: TimerKind::parse(&kind)
                        .ok_or_else(|| ProjectorError::Corrupt(format!("timer kind `{kind}`")))?,
                    event_id: Uuid::parse_str(&event_id).map_err(|e| {
                        ProjectorError::Corrupt(format!("timer event_id `{event_id}`: {e}"))
                    })?,
                    target_id: row.try_get("target_id")?,
                    due_at: from_text(&row.try_get::<String, _>("due_at")?)?,
                })
            })
            .collect()
    }

    /// When the earliest pending timer is due; `None` when there is none. A scheduler sleeps
    /// until then (or until the read models move on, which may add an earlier one).
    pub async fn next_timer_due(&self) -> Result<Option<DateTime<Utc>>, ProjectorError> {
        let row = sqlx::query("SELECT MIN(due_at) AS due_at FROM timers")
            .fetch_one(self.pool())
            .await?;
        let due_at: Option<String> = row.try_get("due_at")?;
        due_at.as_deref().map(from_text).transpose()
    }
}

/// A `timers` row to write.
#[derive(Debug, Clone)]
struct TimerRow {
    kind: TimerKind,
    event_id: String,
    target_id: String,
    due_at: String,
    last_position: i64,
}

/// The timers a batch sets and removes, by timer id; the last word on each id wins. Never read
/// back: whether a timer applies is decided from the registrations and waitlist entries.
#[derive(Default)]
pub(crate) struct TimerWrites {
    /// `Some` to write, `None` to delete.
    pending: HashMap<String, Option<TimerRow>>,
}

impl TimerWrites {
    /// Sets (or moves) the timer of `kind` for `target_id`.
    pub fn set(
        &mut self,
        kind: TimerKind,
        event_id: &str,
        target_id: &str,
        due_at: DateTime<Utc>,
        position: i64,
    ) {
        self.pending.insert(
            timer_id(kind, target_id),
            Some(TimerRow {
                kind,
                event_id: event_id.to_owned(),
                target_id: target_id.to_owned(),
                due_at: to_text(due_at),
                last_position: position,
            }),
        );
    }

    /// Removes the timer of `kind` for `target_id`, if there is one.
    pub fn remove(&mut self, kind: TimerKind, target_id: &str) {
        self.pending.insert(timer_id(kind, target_id), None);
    }

    /// Writes the batch's timers: deletions, then upserts, a chunk per statement.
    pub async fn flush(
        &mut self,
        conn: &mut AnyConnection,
        tables: &Tables,
    ) -> Result<(), ProjectorError> {
        let mut deleted: Vec<&String> = self
            .pending
            .iter()
            .filter(|(_, row)| row.is_none())
            .map(|(id, _)| id)
            .collect();
        deleted.sort_unstable();
        for chunk in deleted.chunks(ID_CHUNK) {
            let sql = tables.sql(&format!(
                "DELETE FROM {{timers}} WHERE timer_id IN ({})",
                placeholders(chunk.len(), 1)
            ));
            // Planned with its values each time, never cached (see `rows`).
            let mut query = sqlx::query(sql).persistent(false);
            for id in chunk {
                query = query.bind(id.as_str());
            }
            query.execute(&mut *conn).await?;
        }
        let mut set: Vec<(&String, &TimerRow)> = self
            .pending
            .iter()
            .filter_map(|(id, row)| row.as_ref().map(|row| (id, row)))
            .collect();
        set.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for chunk in set.chunks(50) {
            let sql = tables.sql(&format!(
                "INSERT INTO {{timers}} (timer_id, kind, event_id, target_id, due_at, \
                 last_position) VALUES {} ON CONFLICT (timer_id) DO UPDATE SET \
                 kind = excluded.kind, event_id = excluded.event_id, \
                 target_id = excluded.target_id, due_at = excluded.due_at, \
                 last_position = excluded.last_position",
                placeholders(chunk.len(), 6)
            ));
            let mut query = sqlx::query(sql);
            for (id, row) in chunk {
                query = query
                    .bind(id.as_str())
                    .bind(row.kind.as_str())
                    .bind(row.event_id.as_str())
                    .bind(row.target_id.as_str())
                    .bind(row.due_at.as_str())
                    .bind(row.last_position);
            }
            query.execute(&mut *conn).await?;
        }
        self.pending.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timer_id_is_its_kind_and_target() {
        let timer = Timer {
            kind: TimerKind::ExpireHold,
            event_id: Uuid::nil(),
            target_id: "r-1".to_owned(),
            due_at: Utc::now(),
        };
        assert_eq!(timer.id(), "expire_hold:r-1");
        for kind in [
            TimerKind::ExpireHold,
            TimerKind::ExpireOffer,
            TimerKind::Refund,
            TimerKind::Remind,
        ] {
            assert_eq!(TimerKind::parse(kind.as_str()), Some(kind));
        }
    }
}
