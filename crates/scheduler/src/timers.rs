//! What is due: the timers read model, seen through a trait so the loop can be tested without a
//! database.

use marquee_domain::Timestamp;
use uuid::Uuid;

/// What a timer does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimerKind {
    /// Release an unpaid hold (`ExpireHold`); the target is the registration.
    ExpireHold,
    /// Withdraw an unclaimed waitlist offer (`ExpireOffer`); the target is the entry.
    ExpireOffer,
    /// Return a payment (provider refund, then `CompleteRefund`); the target is the payment.
    Refund,
    /// Remind the attendees of an event whose reminder is due (`RemindAttendees`); the target
    /// is the event.
    Remind,
}

impl TimerKind {
    /// The name used in timer ids and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            TimerKind::ExpireHold => "expire_hold",
            TimerKind::ExpireOffer => "expire_offer",
            TimerKind::Refund => "refund",
            TimerKind::Remind => "remind",
        }
    }
}

/// A timer whose time has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueTimer {
    /// What to do.
    pub kind: TimerKind,
    /// The event whose stream the command goes to.
    pub event_id: Uuid,
    /// The registration, waitlist entry or payment it is about.
    pub target_id: String,
    /// When it became due.
    pub due_at: Timestamp,
}

impl DueTimer {
    /// `<kind>:<target>`, unique among the timers.
    pub fn id(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.target_id)
    }
}

/// Where due timers come from: the projector's `timers` read model in production.
#[async_trait::async_trait]
pub trait TimerSource: Send + Sync + 'static {
    /// Timers due at `now` at the latest, oldest first, at most `limit`.
    async fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<DueTimer>, String>;
}

/// The projector's `timers` read model is the source in production.
#[async_trait::async_trait]
impl TimerSource for marquee_projector::ReadModels {
    async fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<DueTimer>, String> {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        let timers = self
            .due_timers(now, limit)
            .await
            .map_err(|e| e.to_string())?;
        Ok(timers
            .into_iter()
            .map(|timer| DueTimer {
                kind: match timer.kind {
                    marquee_projector::TimerKind::ExpireHold => TimerKind::ExpireHold,
                    marquee_projector::TimerKind::ExpireOffer => TimerKind::ExpireOffer,
                    marquee_projector::TimerKind::Refund => TimerKind::Refund,
                    marquee_projector::TimerKind::Remind => TimerKind::Remind,
                },
                event_id: timer.event_id,
                target_id: timer.target_id,
                due_at: timer.due_at,
            })
            .collect())
    }
}
