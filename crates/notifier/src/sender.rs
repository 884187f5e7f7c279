//! Sending what was planned: claim due notifications, send each, record how it went.
//!
//! **Exactly once in effect.** A notification exists once per (fact, channel, recipient) —
//! planning it again changes nothing — and is claimed before it is sent: the row says
//! `sending`, by whom and until when, in a committed write. Then the message goes out, and the
//! outcome is written at once. A redelivered fact, a restart, a second notifier: none of them
//! finds a sent notification to send again. What remains is the window between the receiver
//! taking the message (the SMTP server's `250` after the data, the endpoint's `2xx`) and the
//! write that records it — a commit of one row, milliseconds. A process killed exactly there
//! leaves the notification claimed; once the claim lapses (`claim_for`) it is sent again, with
//! the same delivery id: the same `Message-ID` for e-mail, the same `Marquee-Delivery` header
//! for webhooks, by which receivers drop the repeat. (The outbox writes its file under the
//! delivery id, so there the repeat replaces the first copy.) A process killed before the
//! receiver took the message (the SMTP transaction unfinished) sends it once, after the claim
//! lapses.
//!
//! **Retries.** A failure that may pass (a 5xx or 4xx answer other than 410, a timeout, a
//! refused connection, a temporary SMTP error) is tried again after `backoff_base × 2^(n-1)`,
//! at most `backoff_max` apart, until `give_up_after` from when it was planned (3 days by
//! default); then it is `failed`. A webhook endpoint answering `410 Gone` is disabled with
//! everything it is still owed.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use marquee_auth::{Opened, Vault};
use marquee_store::EventStore;
use serde_json::{Value, json};

use crate::NotifierError;
use crate::mail::{Email, Mailer};
use crate::signing::{DELIVERY_HEADER, FACT_TYPE_HEADER, SIGNATURE_HEADER, sign};
use crate::state::open_facts;
use crate::store::{Channel, Claimed, NotifierStore, Outcome};

/// How retries are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure; it doubles with each one.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
    /// No attempt later than this after the notification was planned.
    pub give_up_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(10),
            max: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(3 * 24 * 3600),
        }
    }
}

impl Backoff {
    /// When to try again after failed attempt number `attempt` (from 1) of a notification
    /// planned at `created_at`; `None` when it is time to give up.
    pub fn retry_at(
        &self,
        attempt: u32,
        created_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let factor = 1u32 << attempt.saturating_sub(1).min(20);
        let wait = self.base.saturating_mul(factor).min(self.max);
        let at = now + TimeDelta::from_std(wait).unwrap_or(TimeDelta::MAX);
        let deadline =
            created_at + TimeDelta::from_std(self.give_up_after).unwrap_or(TimeDelta::MAX);
        (at <= deadline).then_some(at)
    }
}

/// Sends claimed notifications.
pub(crate) struct Sender {
    pub(crate) store: NotifierStore,
    pub(crate) log: Arc<dyn EventStore>,
    pub(crate) vault: Vault,
    pub(crate) mailer: Mailer,
    pub(crate) http: reqwest::Client,
    pub(crate) backoff: Backoff,
    /// This process's name on its claims.
    pub(crate) claimer: String,
    /// How long a claim holds before another process may take it over.
    pub(crate) claim_for: Duration,
    pub(crate) clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
}

impl Sender {
    /// Claims and sends what is due; how many were claimed.
    pub(crate) async fn round(&self, limit: u32) -> Result<usize, NotifierError> {
        let now = (self.clock)();
        let until = now + TimeDelta::from_std(self.claim_for).unwrap_or(TimeDelta::MAX);
        let claimed = self.store.claim(&self.claimer, now, until, limit).await?;
        let count = claimed.len();
        for notification in claimed {
            let started = (self.clock)();
            let outcome = match notification.channel {
                Channel::Email => self.email(&notification).await,
                Channel::Webhook => self.webhook(&notification).await,
            };
            let outcome = match outcome {
                Ok(outcome) => outcome,
                Err(e) => {
                    tracing::warn!(delivery = %notification.delivery_id, error = %e, "notifier: could not prepare a notification");
                    self.failed(&notification, None, e.to_string())
                }
            };
            log_outcome(&notification, &outcome);
            self.store
                .finish(
                    &self.claimer,
                    &notification,
                    started,
                    &outcome,
                    (self.clock)(),
                )
                .await?;
        }
        Ok(count)
    }

    fn failed(&self, claimed: &Claimed, status: Option<u16>, error: String) -> Outcome {
        Outcome::Failed {
            status,
            error,
            retry_at: self
                .backoff
                .retry_at(claimed.attempt, claimed.created_at, (self.clock)()),
        }
    }

    async fn email(&self, claimed: &Claimed) -> Result<Outcome, NotifierError> {
        let Some(sealed) = &claimed.payload else {
            return Ok(Outcome::Dropped {
                reason: "no message".to_owned(),
            });
        };
        let email: Email = match self.vault.open(sealed).await? {
            Opened::Erased => {
                return Ok(Outcome::Dropped {
                    reason: "the person was erased".to_owned(),
                });
            }
            Opened::Plain(text) => serde_json::from_str(&text)
                .map_err(|e| NotifierError::Corrupt(format!("a stored e-mail: {e}")))?,
        };
        if let Some(reason) = self.no_longer_applies(claimed).await? {
            return Ok(Outcome::Dropped { reason });
        }
        match self.mailer.send(claimed.delivery_id, &email).await {
            Ok(()) => Ok(Outcome::Sent { status: None }),
            Err(e) if e.permanent => Ok(Outcome::Failed {
                status: e.code,
                error: e.message,
                retry_at: None,
            }),
            Err(e) => Ok(self.failed(claimed, e.code, e.message)),
        }
    }

    /// Why a notification with a condition (see the `requires` column) is not to be sent any
    /// more; `None` while it still applies.
    async fn no_longer_applies(&self, claimed: &Claimed) -> Result<Option<String>, NotifierError> {
        let Some(requires) = &claimed.requires else {
            return Ok(None);
        };
        let mut parts = requires.splitn(4, ':');
        let (Some("hold"), Some(stream), Some(revision), Some(registration_id)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Ok(Some(format!("unknown condition {requires:?}")));
        };
        let mut from = revision.parse::<u64>().unwrap_or(0) + 1;
        loop {
            let page = self.log.read_stream(stream, from, 1000).await?;
            let full = page.len() == 1000;
            for fact in &page {
                from = fact.revision + 1;
                let ends_hold = matches!(
                    fact.fact_type.as_str(),
                    "HoldConfirmed" | "HoldExpired" | "RegistrationCancelled"
                ) && fact.data.get("registration_id").and_then(Value::as_str)
                    == Some(registration_id);
                if ends_hold {
                    return Ok(Some(format!("the hold ended ({})", fact.fact_type)));
                }
            }
            if !full {
                return Ok(None);
            }
        }
    }

    async fn webhook(&self, claimed: &Claimed) -> Result<Outcome, NotifierError> {
        let webhook_id = uuid::Uuid::parse_str(&claimed.recipient)
            .map_err(|_| NotifierError::Corrupt(format!("webhook id {}", claimed.recipient)))?;
        let endpoint = match self.store.endpoint(webhook_id).await? {
            Some(endpoint) if endpoint.status == "active" => endpoint,
            _ => {
                return Ok(Outcome::Dropped {
                    reason: "the endpoint is removed or disabled".to_owned(),
                });
            }
        };
        let secret = match self.vault.open(&endpoint.sealed_secret).await? {
            Opened::Plain(secret) => secret,
            Opened::Erased => {
                return Ok(Outcome::Dropped {
                    reason: "the endpoint's secret is gone".to_owned(),
                });
            }
        };
        let body = match (&claimed.payload, claimed.position) {
            (Some(payload), _) => payload.clone(),
            (None, Some(position)) => match self.fact_body(claimed, position).await? {
                Some(body) => body,
                None => {
                    return Ok(Outcome::Dropped {
                        reason: "the fact is not in the log".to_owned(),
                    });
                }
            },
            (None, None) => {
                return Ok(Outcome::Dropped {
                    reason: "nothing to deliver".to_owned(),
                });
            }
        };
        let timestamp = (self.clock)().timestamp();
        let signature = sign(secret.as_bytes(), timestamp, body.as_bytes());
        let response = self
            .http
            .post(&endpoint.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(DELIVERY_HEADER, claimed.delivery_id.to_string())
            .header(FACT_TYPE_HEADER, &claimed.kind)
            .body(body)
            .send()
            .await;
        Ok(match response {
            Ok(response) if response.status().is_success() => Outcome::Sent {
                status: Some(response.status().as_u16()),
            },
            Ok(response) if response.status() == reqwest::StatusCode::GONE => {
                Outcome::Gone { status: 410 }
            }
            Ok(response) => {
                let status = response.status();
                self.failed(claimed, Some(status.as_u16()), format!("HTTP {status}"))
            }
            Err(e) => self.failed(claimed, None, describe(&e)),
        })
    }

    /// The JSON body delivering the fact at `position`, its personal data opened (an erased
    /// person's reads `[erased]`), read from the log now.
    async fn fact_body(
        &self,
        claimed: &Claimed,
        position: u64,
    ) -> Result<Option<String>, NotifierError> {
        let mut facts = self.log.read_all(position.saturating_sub(1), 1).await?;
        facts.retain(|fact| fact.fact_id == claimed.fact_id);
        if facts.is_empty() {
            return Ok(None);
        }
        open_facts(&self.vault, &mut facts).await?;
        let fact = facts.remove(0);
        let body = json!({
            "id": claimed.delivery_id,
            "type": fact.fact_type,
            "organization_id": claimed.organization_id,
            "fact": fact,
        });
        Ok(Some(body.to_string()))
    }
}

/// An HTTP failure in a few words.
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        error.to_string()
    }
}

fn log_outcome(claimed: &Claimed, outcome: &Outcome) {
    let (channel, delivery, attempt) = (
        claimed.channel.as_str(),
        claimed.delivery_id,
        claimed.attempt,
    );
    match outcome {
        Outcome::Sent { .. } => {
            tracing::info!(channel, %delivery, attempt, kind = %claimed.kind, "notifier: sent");
        }
        Outcome::Failed {
            error, retry_at, ..
        } => {
            tracing::warn!(channel, %delivery, attempt, %error, ?retry_at, "notifier: not sent");
        }
        Outcome::Gone { .. } => {
            tracing::warn!(channel, %delivery, "notifier: the endpoint answered 410 Gone; disabled");
        }
        Outcome::Dropped { reason } => {
            tracing::info!(channel, %delivery, %reason, "notifier: dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + TimeDelta::seconds(1_900_000_000 + seconds)
    }

    #[test]
    fn retries_double_up_to_the_longest_wait_and_stop_after_three_days() {
        let backoff = Backoff::default();
        assert_eq!(backoff.retry_at(1, at(0), at(0)), Some(at(10)));
        assert_eq!(backoff.retry_at(2, at(0), at(0)), Some(at(20)));
        assert_eq!(backoff.retry_at(4, at(0), at(0)), Some(at(80)));
        assert_eq!(backoff.retry_at(30, at(0), at(0)), Some(at(3600)));
        let late = at(3 * 24 * 3600 - 1800);
        assert_eq!(backoff.retry_at(30, at(0), late), None);
    }
}
