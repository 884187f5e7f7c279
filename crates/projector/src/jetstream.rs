//! Distributed mode's fact source: a durable pull consumer on the relay's JetStream stream.
//!
//! JetStream is the transport, the log the source of truth. The consumer only tells the
//! projector what to apply next; the projector skips what is at or below its checkpoint
//! (redeliveries, duplicates), fills any hole between its checkpoint and a delivered position
//! from the log, and acknowledges a message only after the batch holding it committed. A lost
//! acknowledgement therefore costs one redelivery, never a fact.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::{self};
use futures::StreamExt;
use futures::stream::ReadyChunks;
use marquee_relay::{POSITION_HEADER, RelayConfig, validate_subject_prefix};
use marquee_store::RecordedFact;
use tokio::sync::Notify;

use crate::ProjectorError;
use crate::source::{Delivery, FactFeed, Receipt};

/// Where a distributed projector reads facts: the relay's JetStream stream, through a durable
/// consumer shared by every projector replica (only the lease holder pulls from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JetStreamSource {
    /// Where NATS listens, e.g. `nats://127.0.0.1:4222`.
    pub nats_url: String,
    /// The relay's stream. Default `MARQUEE_FACTS`, the relay's default.
    pub stream_name: String,
    /// The relay's subject prefix; the consumer takes `<prefix>.>`. Default `marquee.facts`.
    pub subject_prefix: String,
    /// The durable consumer's name: JetStream remembers its acknowledgements across restarts
    /// and failovers. Default `marquee-projector`.
    pub durable_name: String,
    /// How long JetStream waits for an acknowledgement before redelivering. A redelivery is
    /// harmless (skipped by position); this only bounds how long a crashed batch's messages
    /// stay with the dead session. Default 30 s.
    pub ack_wait: Duration,
    /// Idle heartbeat asked of the server while no fact flows: two missed heartbeats end the
    /// session, so a silent server is noticed within about twice this. Default 5 s.
    pub heartbeat: Duration,
    /// Connection and request timeout. Default 5 s.
    pub timeout: Duration,
    /// First delay before reconnecting after NATS failed. Default 100 ms.
    pub backoff_min: Duration,
    /// Longest delay between reconnection attempts. Default 5 s.
    pub backoff_max: Duration,
}

impl JetStreamSource {
    /// The defaults (the relay's stream and prefix), against the NATS server at `nats_url`.
    pub fn new(nats_url: impl Into<String>) -> Self {
        // The relay's own defaults, so the two ends cannot drift apart.
        let relay = RelayConfig::new(nats_url);
        Self {
            nats_url: relay.nats_url,
            stream_name: relay.stream_name,
            subject_prefix: relay.subject_prefix,
            durable_name: "marquee-projector".to_owned(),
            ack_wait: Duration::from_secs(30),
            heartbeat: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
            backoff_min: relay.backoff_min,
            backoff_max: relay.backoff_max,
        }
    }

    /// Rejects a configuration that could never work, so the projector fails at once instead
    /// of retrying forever.
    pub(crate) fn validate(&self) -> Result<(), ProjectorError> {
        let invalid = |why: String| Err(ProjectorError::InvalidConfig(why));
        let bad_name = |name: &str| {
            name.is_empty()
                || name
                    .chars()
                    .any(|c| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
        };
        if bad_name(&self.stream_name) {
            return invalid(format!(
                "invalid JetStream stream name {:?}",
                self.stream_name
            ));
        }
        if bad_name(&self.durable_name) {
            return invalid(format!("invalid durable name {:?}", self.durable_name));
        }
        validate_subject_prefix(&self.subject_prefix).or_else(invalid)?;
        if self.heartbeat < Duration::from_millis(100) || self.timeout.is_zero() {
            return invalid("heartbeat must be >= 100 ms and timeout > 0".to_owned());
        }
        if self.ack_wait.is_zero() {
            return invalid("ack_wait must be > 0".to_owned());
        }
        if self.backoff_min.is_zero() || self.backoff_max < self.backoff_min {
            return invalid("backoff_min must be > 0 and <= backoff_max".to_owned());
        }
        Ok(())
    }
}

type Messages = ReadyChunks<pull::Stream>;

/// An open session on the durable consumer.
pub(crate) struct JetStreamFeed {
    /// Kept to flush acknowledgements and to close the connection with the session.
    client: async_nats::Client,
    messages: Messages,
    /// Signalled by the client when its connection drops: the session ends at once, rather than
    /// after missed heartbeats, and the projector follows the log meanwhile.
    disconnected: Arc<Notify>,
}

/// A NATS failure, saying what was being done.
fn nats(what: &str, error: impl std::fmt::Display) -> ProjectorError {
    ProjectorError::Nats(format!("{what}: {error}"))
}

impl JetStreamFeed {
    /// Connects and binds to the durable consumer (creating it on first use). Nothing is pulled
    /// until [`FactFeed::next_batch`].
    ///
    /// A new consumer starts at the stream's end (`DeliverPolicy::New`): the caller catches up
    /// from the log right after this returns, which covers every fact published before the
    /// consumer existed — JetStream only holds facts the log had committed. An existing consumer
    /// resumes at its acknowledgement floor, which is never past the checkpoint (acks follow
    /// commits); if the read models were rebuilt it is, and the catch-up covers that too.
    pub async fn open(config: &JetStreamSource, max_batch: usize) -> Result<Self, ProjectorError> {
        let disconnected = Arc::new(Notify::new());
        let notify = disconnected.clone();
        // A fresh client per session, like the relay's: an outage must end the session so the
        // projector can fall back to the log, not be hidden by the client's reconnection.
        let client = async_nats::ConnectOptions::new()
            .name("marquee-projector")
            .connection_timeout(config.timeout)
            .request_timeout(Some(config.timeout))
            .event_callback(move |event| {
                let notify = notify.clone();
                async move {
                    if matches!(
                        event,
                        async_nats::Event::Disconnected | async_nats::Event::Closed
                    ) {
                        notify.notify_one();
                    }
                }
            })
            .connect(config.nats_url.as_str())
            .await
            .map_err(|e| nats("connecting to NATS", e))?;
        let js = jetstream::ContextBuilder::new()
            .timeout(config.timeout)
            .build(client.clone());
        // The relay owns the stream; until it has created it there is nothing to consume.
        let stream = js
            .get_stream(&config.stream_name)
            .await
            .map_err(|e| nats("opening the relay's JetStream stream", e))?;
        let consumer: PullConsumer = stream
            .get_or_create_consumer(
                &config.durable_name,
                pull::Config {
                    durable_name: Some(config.durable_name.clone()),
                    description: Some("marquee projector (read models)".to_owned()),
                    deliver_policy: DeliverPolicy::New,
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: config.ack_wait,
                    filter_subject: format!("{}.>", config.subject_prefix),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| nats("binding the durable consumer", e))?;
        let batch = max_batch.max(1);
        let messages = consumer
            .stream()
            .max_messages_per_batch(batch)
            .heartbeat(config.heartbeat)
            // A pull request must outlive a few heartbeats, or the server rejects it.
            .expires(config.heartbeat * 6)
            .messages()
            .await
            .map_err(|e| nats("pulling from the durable consumer", e))?
            .ready_chunks(batch);
        Ok(Self {
            client,
            messages,
            disconnected,
        })
    }
}

impl FactFeed for JetStreamFeed {
    async fn next_batch(&mut self) -> Result<Vec<Delivery>, ProjectorError> {
        let chunk = tokio::select! {
            () = self.disconnected.notified() => {
                return Err(ProjectorError::Nats("connection to NATS lost".to_owned()));
            }
            chunk = self.messages.next() => chunk,
        };
        let Some(chunk) = chunk else {
            return Err(ProjectorError::Nats(
                "the durable consumer's message stream ended".to_owned(),
            ));
        };
        let mut deliveries = Vec::with_capacity(chunk.len());
        for item in chunk {
            let message = match item {
                Ok(message) => message,
                Err(error) if deliveries.is_empty() => {
                    return Err(nats("receiving from the durable consumer", error));
                }
                // Apply and acknowledge what arrived first. Whatever the failure cost is either
                // redelivered (unacknowledged) or filled from the log as a gap.
                Err(error) => {
                    tracing::warn!(%error, "JetStream delivery failed after a partial batch");
                    break;
                }
            };
            deliveries.push(Delivery {
                fact: read_fact(&message),
                receipt: Receipt::JetStream(Box::new(message)),
            });
        }
        Ok(deliveries)
    }

    async fn ack(&mut self, receipts: Vec<Receipt>) -> Result<(), ProjectorError> {
        let mut any = false;
        for receipt in receipts {
            if let Receipt::JetStream(message) = receipt {
                message
                    .ack()
                    .await
                    .map_err(|e| nats("acknowledging a message", e))?;
                any = true;
            }
        }
        if any {
            // Acks are buffered publishes: push them out now, so a stop right after a batch
            // does not turn them all into redeliveries.
            self.client
                .flush()
                .await
                .map_err(|e| nats("flushing acknowledgements", e))?;
        }
        Ok(())
    }
}

/// The fact a message carries, or `None` (logged) when it carries none this projector can
/// read, e.g. a message some other publisher put on the relay's subjects.
fn read_fact(message: &jetstream::Message) -> Option<RecordedFact> {
    let fact = match serde_json::from_slice::<RecordedFact>(&message.payload) {
        Ok(fact) => fact,
        Err(error) => {
            tracing::warn!(subject = %message.subject, %error, "JetStream message is not a recorded fact, dropped");
            return None;
        }
    };
    let header = message
        .headers
        .as_ref()
        .and_then(|h| h.get(POSITION_HEADER))
        .map(|v| v.as_str().to_owned());
    if header.as_deref() != Some(fact.position.to_string().as_str()) {
        // The payload is what gets applied; a disagreeing header means a foreign or broken
        // publisher, worth a warning but not worth losing the fact over.
        tracing::warn!(
            position = fact.position,
            ?header,
            "{POSITION_HEADER} header disagrees with the payload"
        );
    }
    Some(fact)
}
