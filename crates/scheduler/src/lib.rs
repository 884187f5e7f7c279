//! Marquee's scheduler: the commands nobody types. When a hold's time is up it issues
//! `ExpireHold`, when a waitlist offer runs out `ExpireOffer`, when an event's reminder is due
//! `RemindAttendees` (the notifier mails the attendees on the `ReminderDue` it records), and
//! when money must go back it asks the payment provider for the refund and records
//! `CompleteRefund`.
//!
//! **Durable without state of its own.** What is due is a read model (`timers`, kept by the
//! projector from the facts in the same transaction as its checkpoint): a `SeatsHeld` fact adds
//! the hold's timer, the fact that ends the hold (paid, expired, cancelled) removes it. So the
//! scheduler survives any restart — a new process reads the same table — and a rebuild of the
//! read models rebuilds the timers too. The loop polls the table every
//! [`SchedulerConfig::poll_every`] (250 ms by default), so a timer fires well within a second of
//! its due time once the projector has seen its fact.
//!
//! **Safe to run twice.** Every command it issues is idempotent in the domain: expiring a hold
//! that is no longer held, or not yet due, changes nothing; completing a refund twice records it
//! once; the provider's refund is keyed by the payment. A timer whose outcome the projector has
//! not applied yet is left alone for [`SchedulerConfig::refire_after`] and then fired again,
//! which is harmless.
//!
//! **One acting instance in distributed mode.** With Postgres read models, a scheduler acts
//! only while it holds a session advisory lock on a connection of its own
//! ([`SchedulerConfig::leader_lock_url`]); standbys try to take it every second. If the leader
//! dies, its connection closes, Postgres releases the lock, and a standby takes over. If the
//! leader's lock connection breaks, it stops firing until it holds the lock again. Two
//! schedulers acting at once for a moment would still be correct (see above); the lock keeps
//! them from doing the work twice. In embedded mode there is one process and no lock.
//!
//! **Personal data.** Its commands record none; the engine it runs them through opens the sealed
//! attendees and answers of the events it loads (an engine built `with_vault`), and the refunds
//! it reads are opened the same way before they are decoded.
//!
//! What must not live here: business rules (whether a hold may expire is the domain's call) and
//! read-model SQL (the timers table is the projector's).

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use marquee_auth::Directory;
use marquee_command_api::engine::{Answer, CommandContext, Engine, EventAggregate};
use marquee_domain::event::{EventCommand, EventFact};
use marquee_domain::{EventId, FactCodec, Money, PaymentId, RegistrationId, WaitlistEntryId};
use marquee_payments::{GatewayError, PaymentGateway, RefundRequest};
use sqlx::Connection;
use uuid::Uuid;

mod timers;

pub use timers::{DueTimer, TimerKind, TimerSource};

/// Why the scheduler could not run.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The leadership lock's database could not be reached.
    #[error("leader lock: {0}")]
    Lock(#[from] sqlx::Error),
    /// The timers could not be read.
    #[error("timers: {0}")]
    Timers(String),
}

/// Tuning of a [`Scheduler`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// How often the timers table is read.
    pub poll_every: Duration,
    /// Most timers fired per round.
    pub batch: usize,
    /// How long a fired timer is left alone before it is fired again, should it still be due
    /// (its outcome not yet projected, or the command failed).
    pub refire_after: Duration,
    /// Postgres URL of the leadership lock (distributed mode); `None` when this process is the
    /// only scheduler (embedded mode, SQLite).
    pub leader_lock_url: Option<String>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            poll_every: Duration::from_millis(250),
            batch: 64,
            refire_after: Duration::from_secs(2),
            leader_lock_url: None,
        }
    }
}

/// The advisory-lock key schedulers contend for (any constant shared by every process).
const LEADER_LOCK_KEY: i64 = 0x6d61_7271_7565_6501; // "marquee" + 1

/// Longest wait between two attempts at a refund the provider could not make.
const MAX_REFUND_BACKOFF: Duration = Duration::from_secs(300);

/// Issues the timed commands; see the [crate docs](crate).
pub struct Scheduler {
    engine: Arc<Engine>,
    timers: Arc<dyn TimerSource>,
    gateway: Arc<dyn PaymentGateway>,
    config: SchedulerConfig,
    /// Timers fired recently, and when they may be fired again.
    quiet_until: HashMap<String, Instant>,
    /// Refunds the provider failed, with how many times in a row.
    refund_failures: HashMap<String, u32>,
    /// Which organization owns an event, for the metadata of the facts the timers cause.
    directory: Directory,
}

impl Scheduler {
    /// A scheduler issuing commands through `engine`, reading what is due from `timers`, and
    /// refunding through `gateway`.
    pub fn new(
        engine: Arc<Engine>,
        timers: Arc<dyn TimerSource>,
        gateway: Arc<dyn PaymentGateway>,
        config: SchedulerConfig,
    ) -> Self {
        Self {
            directory: Directory::new(engine.store().clone()),
            engine,
            timers,
            gateway,
            config,
            quiet_until: HashMap::new(),
            refund_failures: HashMap::new(),
        }
    }

    /// Fires due timers until `shutdown` resolves.
    pub async fn run(
        mut self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), SchedulerError> {
        let mut shutdown = pin!(shutdown);
        let mut leader: Option<sqlx::PgConnection> = None;
        loop {
            if let Some(url) = &self.config.leader_lock_url
                && !leads(&mut leader).await
            {
                leader = tokio::select! {
                    taken = take_lead(url) => Some(taken?),
                    () = &mut shutdown => return Ok(()),
                };
                tracing::info!("scheduler: this process now fires the timers");
            }
            self.round().await;
            tokio::select! {
                () = tokio::time::sleep(self.config.poll_every) => {}
                () = &mut shutdown => return Ok(()),
            }
        }
    }

    /// Fires what is due now. Failures are logged; the timer stays and fires again later.
    pub async fn round(&mut self) {
        let now = self.engine.now();
        let due = match self.timers.due(now, self.config.batch).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "scheduler: could not read the timers");
                return;
            }
        };
        let clock = Instant::now();
        self.quiet_until.retain(|_, until| *until > clock);
        for timer in due {
            let id = timer.id();
            if self.quiet_until.contains_key(&id) {
                continue;
            }
            let quiet_for = match self.fire(&timer).await {
                Ok(()) => self.config.refire_after,
                Err(wait) => wait,
            };
            self.quiet_until.insert(id, Instant::now() + quiet_for);
        }
    }

    /// Fires one timer. `Err` carries how long to wait before trying it again.
    async fn fire(&mut self, timer: &DueTimer) -> Result<(), Duration> {
        let retry = self.config.refire_after;
        let event_id = EventId(timer.event_id);
        let command = match timer.kind {
            TimerKind::ExpireHold => match Uuid::parse_str(&timer.target_id) {
                Ok(id) => EventCommand::ExpireHold {
                    registration_id: RegistrationId(id),
                },
                Err(_) => return Err(bad_timer(timer)),
            },
            TimerKind::ExpireOffer => match Uuid::parse_str(&timer.target_id) {
                Ok(id) => EventCommand::ExpireOffer {
                    entry_id: WaitlistEntryId(id),
                },
                Err(_) => return Err(bad_timer(timer)),
            },
            TimerKind::Remind => EventCommand::RemindAttendees,
            TimerKind::Refund => {
                let payment_id = PaymentId(timer.target_id.clone());
                match self.refund(event_id, &payment_id).await {
                    Ok(refund_id) => EventCommand::CompleteRefund {
                        payment_id,
                        refund_id,
                    },
                    Err(wait) => return Err(wait),
                }
            }
        };
        let organization = match self.directory.owner(&event_id.stream()).await {
            Ok(owner) => owner.map(|id| id.to_string()),
            Err(e) => {
                tracing::warn!(timer = %timer.id(), error = %e, "scheduler: could not read the event's owner");
                return Err(retry);
            }
        };
        let context = CommandContext {
            correlation_id: Uuid::now_v7(),
            actor: Some("system:scheduler".to_owned()),
            organization,
            idempotency: None,
        };
        let outcome = self
            .engine
            .execute::<EventAggregate>(&event_id.stream(), vec![command], &context, |_, _| Answer {
                status: axum::http::StatusCode::OK,
                body: serde_json::Value::Null,
            })
            .await;
        match outcome {
            Ok((accepted, _)) => {
                tracing::info!(
                    timer = %timer.id(),
                    due_at = %timer.due_at,
                    facts = accepted.facts.len(),
                    "scheduler: timer fired"
                );
                Ok(())
            }
            Err(e) => {
                tracing::warn!(timer = %timer.id(), error = %e, "scheduler: timed command failed");
                Err(retry)
            }
        }
    }

    /// Asks the provider to return a due refund; the refund's id on success. `Err` is how long
    /// to wait before asking again (growing while the provider keeps failing).
    async fn refund(
        &mut self,
        event_id: EventId,
        payment_id: &PaymentId,
    ) -> Result<String, Duration> {
        let amount = match refund_amount(&self.engine, event_id, payment_id).await {
            Ok(Some(amount)) => amount,
            Ok(None) => {
                tracing::warn!(%payment_id, "scheduler: a refund timer without its RefundDue fact");
                return Err(MAX_REFUND_BACKOFF);
            }
            Err(e) => {
                tracing::warn!(%payment_id, error = %e, "scheduler: could not read the refund");
                return Err(self.config.refire_after);
            }
        };
        let request = RefundRequest {
            payment_id: payment_id.0.clone(),
            amount,
            idempotency_key: format!("refund:{payment_id}"),
        };
        match self.gateway.refund(request).await {
            Ok(outcome) => {
                self.refund_failures.remove(&payment_id.0);
                Ok(outcome.refund_id)
            }
            Err(e) => {
                let failures = self
                    .refund_failures
                    .entry(payment_id.0.clone())
                    .or_insert(0);
                *failures = failures.saturating_add(1);
                let wait = backoff(*failures, e.is_retryable());
                log_refund_failure(payment_id, &e, wait);
                Err(wait)
            }
        }
    }
}

fn log_refund_failure(payment_id: &PaymentId, error: &GatewayError, wait: Duration) {
    if error.is_retryable() {
        tracing::warn!(%payment_id, %error, retry_in_secs = wait.as_secs(), "scheduler: refund failed, will retry");
    } else {
        tracing::error!(%payment_id, %error, retry_in_secs = wait.as_secs(), "scheduler: the provider refused a refund; it needs attention");
    }
}

/// 1 s, 2 s, 4 s, … up to five minutes; straight to five minutes for a refusal that a retry
/// will not fix on its own.
fn backoff(failures: u32, retryable: bool) -> Duration {
    if !retryable {
        return MAX_REFUND_BACKOFF;
    }
    let seconds = 1u64 << failures.saturating_sub(1).min(9);
    Duration::from_secs(seconds).min(MAX_REFUND_BACKOFF)
}

fn bad_timer(timer: &DueTimer) -> Duration {
    tracing::error!(timer = %timer.id(), "scheduler: timer target is not a valid id");
    MAX_REFUND_BACKOFF
}

/// The amount of the newest `RefundDue` of `payment_id` in the event's stream. Only `RefundDue`
/// facts are decoded, after their personal data (none today) is opened like any reader's (see
/// `marquee_command_api::personal`): the other facts of the stream, attendees and answers among
/// them, are never looked at.
async fn refund_amount(
    engine: &Engine,
    event_id: EventId,
    payment_id: &PaymentId,
) -> Result<Option<Money>, String> {
    let stream = event_id.stream();
    let mut from = 0;
    let mut amount = None;
    loop {
        let page = engine
            .store()
            .read_stream(&stream, from, 1000)
            .await
            .map_err(|e| e.to_string())?;
        let full = page.len() == 1000;
        from = page.last().map_or(from, |recorded| recorded.revision + 1);
        let mut due: Vec<_> = page
            .into_iter()
            .filter(|recorded| recorded.fact_type == "RefundDue")
            .collect();
        engine
            .open_facts(&mut due)
            .await
            .map_err(|e| e.to_string())?;
        for recorded in due {
            let fact =
                EventFact::decode(&recorded.fact_type, recorded.schema_version, recorded.data)
                    .map_err(|e| e.to_string())?;
            if let EventFact::RefundDue {
                payment_id: due,
                amount: due_amount,
                ..
            } = fact
                && due == *payment_id
            {
                amount = Some(due_amount);
            }
        }
        if !full {
            return Ok(amount);
        }
    }
}

/// Whether `leader` still holds the lock: its connection answers.
async fn leads(leader: &mut Option<sqlx::PgConnection>) -> bool {
    let Some(connection) = leader else {
        return false;
    };
    if connection.ping().await.is_ok() {
        return true;
    }
    tracing::warn!("scheduler: the leader lock's connection broke; standing by");
    *leader = None;
    false
}

/// Waits until this process holds the scheduler lock, on a connection it keeps.
async fn take_lead(url: &str) -> Result<sqlx::PgConnection, SchedulerError> {
    loop {
        match try_take_lead(url).await {
            Ok(Some(connection)) => return Ok(connection),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "scheduler: cannot reach the leader lock"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn try_take_lead(url: &str) -> Result<Option<sqlx::PgConnection>, sqlx::Error> {
    let mut connection = sqlx::PgConnection::connect(url).await?;
    let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LEADER_LOCK_KEY)
        .fetch_one(&mut connection)
        .await?;
    Ok(taken.then_some(connection))
}
