//! Marquee's relay: publishes the log to NATS JetStream, one message per fact, in position order.
//!
//! The log is the outbox. Commands append facts to the log and are done; this crate tails the
//! log ([`EventStore::subscribe`]) and publishes every fact to the JetStream stream
//! `MARQUEE_FACTS` under `marquee.facts.<aggregate>.<id>`, where the projector, notifier,
//! scheduler and outside consumers read it. The relay is a loop of its own: NATS being down
//! delays publication, never a command.
//!
//! What lives here: the [`Relay`] loop, its [`RelayConfig`], the subject mapping
//! ([`subject_for`]) and the message headers. What must not: anything that knows what a fact
//! means (that is `marquee-domain`), any consumer of the stream, and any checkpoint of its own —
//! the stream is the checkpoint (see [`Relay`]).

mod subject;

use std::collections::VecDeque;
use std::future::{Future, IntoFuture};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage, stream};
use futures::StreamExt;
use marquee_store::{EventStore, RecordedFact, StoreError};
use tokio::sync::watch;
use tracing::{debug, info, warn};
use uuid::Uuid;

pub use subject::{subject_for, validate_subject_prefix};

/// Header carrying the fact's position in the global log. Also how the relay finds its
/// checkpoint: it reads this header off the last message in the stream.
pub const POSITION_HEADER: &str = "Marquee-Position";
/// Header carrying the fact's type, e.g. `SeatsReserved`.
pub const FACT_TYPE_HEADER: &str = "Marquee-Fact-Type";
/// Header carrying the fact's stream name as the log holds it (the subject is a sanitized form).
pub const STREAM_HEADER: &str = "Marquee-Stream";
/// Header carrying the fact's revision in its stream.
pub const REVISION_HEADER: &str = "Marquee-Revision";
/// Header carrying the correlation id, when the fact has one.
pub const CORRELATION_ID_HEADER: &str = "Marquee-Correlation-Id";

/// How the relay reaches NATS and shapes the JetStream stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// Where NATS listens, e.g. `nats://127.0.0.1:4222`.
    pub nats_url: String,
    /// The JetStream stream the relay writes to and owns. Default `MARQUEE_FACTS`.
    pub stream_name: String,
    /// Subjects are `<prefix>.<aggregate>.<id>`; the stream captures `<prefix>.>`.
    /// Default `marquee.facts`.
    pub subject_prefix: String,
    /// How many publishes may wait for their acks at once. Pipelining is where the throughput
    /// comes from: one round trip per window instead of one per fact. Default 256.
    pub batch: usize,
    /// Cap on the number of messages the stream keeps (oldest dropped first). `None` (the
    /// default) keeps every fact, so a consumer can replay the whole log from sequence 1.
    pub max_messages: Option<i64>,
    /// How long to wait for JetStream to acknowledge a publish, or to answer an API request,
    /// before treating NATS as down. Default 5 s.
    pub ack_timeout: Duration,
    /// First delay between reconnection attempts. Default 100 ms.
    pub backoff_min: Duration,
    /// Longest delay between reconnection attempts. Default 5 s.
    pub backoff_max: Duration,
}

impl RelayConfig {
    /// The defaults, against the NATS server at `nats_url`.
    pub fn new(nats_url: impl Into<String>) -> Self {
        Self {
            nats_url: nats_url.into(),
            stream_name: "MARQUEE_FACTS".to_owned(),
            subject_prefix: "marquee.facts".to_owned(),
            batch: 256,
            max_messages: None,
            ack_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
        }
    }

    /// Rejects a configuration that could never work, so [`Relay::run`] fails at once instead
    /// of retrying forever.
    fn validate(&self) -> Result<(), RelayError> {
        let invalid = |why: String| Err(RelayError::InvalidConfig(why));
        if !is_valid_stream_name(&self.stream_name) {
            return invalid(format!(
                "stream name {:?} must be non-empty and must not contain whitespace, '.', '*', '>', '/' or '\\'",
                self.stream_name
            ));
        }
        if let Err(why) = validate_subject_prefix(&self.subject_prefix) {
            return invalid(why);
        }
        if self.batch == 0 {
            return invalid("batch must be at least 1".to_owned());
        }
        if let Some(max) = self.max_messages
            && max < 1
        {
            // The checkpoint is the stream's last message: a limit must always keep one.
            return invalid(format!("max_messages must be at least 1, got {max}"));
        }
        if self.backoff_min.is_zero() || self.backoff_max < self.backoff_min {
            return invalid("backoff_min must be > 0 and <= backoff_max".to_owned());
        }
        if self.ack_timeout.is_zero() {
            return invalid("ack_timeout must be > 0".to_owned());
        }
        Ok(())
    }
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self::new("nats://127.0.0.1:4222")
    }
}

fn is_valid_stream_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
}

/// Why [`Relay::run`] gave up. NATS being down is not here: the relay waits that out.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The configuration can never work.
    #[error("invalid relay configuration: {0}")]
    InvalidConfig(String),
    /// The stream's last message was not written by a relay (no readable `Marquee-Position`
    /// header), so the relay cannot know where to resume. Another publisher shares the subjects.
    #[error(
        "stream {stream}: message {sequence} has no readable {POSITION_HEADER} header; only the relay may publish to this stream"
    )]
    ForeignMessage {
        /// The JetStream stream.
        stream: String,
        /// Its sequence of the offending message.
        sequence: u64,
    },
    /// The stream holds a position this log does not have: it was filled from another log (a
    /// different database, or an in-memory log that restarted). Resuming would silently skip
    /// facts, so the relay stops.
    #[error(
        "stream {stream} is at log position {checkpoint}, but this log only reaches {head}; it was filled from another log"
    )]
    AheadOfLog {
        /// The JetStream stream.
        stream: String,
        /// The position of the stream's last message.
        checkpoint: u64,
        /// The log's head.
        head: u64,
    },
    /// The stream's last message and the log disagree on which fact sits at its position.
    #[error(
        "stream {stream}: position {position} holds fact {in_stream} but the log has {in_log:?} there; it was filled from another log"
    )]
    LogMismatch {
        /// The JetStream stream.
        stream: String,
        /// The position of the stream's last message.
        position: u64,
        /// The fact id the stream holds (its `Nats-Msg-Id`).
        in_stream: String,
        /// The fact id the log holds at that position, if any.
        in_log: Option<Uuid>,
    },
    /// The log closed its subscription: the store is shutting down.
    #[error("the log closed the relay's subscription")]
    StoreClosed,
}

/// Why one connection's worth of work ended. Everything but a [`RelayError`] is retried.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Fatal(#[from] RelayError),
    #[error("{0}")]
    Retry(String),
}

impl SessionError {
    fn retry(what: &str, error: impl std::fmt::Display) -> Self {
        Self::Retry(format!("{what}: {error}"))
    }
}

/// Publishes the log to JetStream.
///
/// # The checkpoint is the stream
///
/// The relay keeps no checkpoint of its own. On start and after every reconnect it reads the
/// stream's last message and resumes after the position in its `Marquee-Position` header (0 for
/// an empty stream). This is safe because:
///
/// - Publication and checkpoint can never disagree: they are the same write. A separate
///   checkpoint (a row, a KV key) would be written after the publish, and a crash between the two
///   would republish or, written first, skip facts. Here there is no "between".
/// - Nothing is skipped: every publish carries `Nats-Expected-Last-Sequence`, the stream sequence
///   the previous fact got. If a message of a pipelined window is lost (connection dropped
///   mid-window), JetStream rejects every later one instead of storing it after a gap, so the
///   stream is always a prefix of the log, and checkpoint + 1 (in log order) is always the next
///   fact to publish. The same check makes a second relay replica racing on the same stream
///   harmless: the loser is rejected and resumes from the winner's checkpoint. (JetStream
///   ignores an expected sequence of 0, so the first message into an empty stream is the one
///   unchecked publish: nothing precedes it that could be skipped, and a racing duplicate of it
///   is dropped by `Nats-Msg-Id`.)
/// - Nothing is duplicated: each message's `Nats-Msg-Id` is its fact id, so a publish that is
///   retried after its ack was lost is dropped by JetStream within the duplicate window
///   (2 minutes). Past it, consumers are idempotent by position anyway.
///
/// The stream is created with `deny_delete`/`deny_purge`, and `max_messages`, when set, always
/// keeps at least the last message, so the checkpoint cannot vanish under the relay.
pub struct Relay {
    store: Arc<dyn EventStore>,
    config: RelayConfig,
    /// Position of the last fact JetStream acknowledged; see [`Relay::published`].
    published: watch::Sender<u64>,
}

impl Relay {
    /// A relay from `store` to the NATS server and stream `config` names. Nothing connects until
    /// [`Relay::run`].
    pub fn new(store: Arc<dyn EventStore>, config: RelayConfig) -> Self {
        let (published, _) = watch::channel(0);
        Self {
            store,
            config,
            published,
        }
    }

    /// Position of the last fact JetStream acknowledged, for lag reporting (log head minus
    /// this). Starts at 0 and jumps to the stream's checkpoint once the relay has read it.
    pub fn published(&self) -> watch::Receiver<u64> {
        self.published.subscribe()
    }

    /// Publishes until `shutdown` resolves.
    ///
    /// Survives NATS being down: it retries with capped exponential backoff
    /// ([`RelayConfig::backoff_min`] to [`RelayConfig::backoff_max`]), warns once per outage,
    /// and catches up from the stream's checkpoint when NATS returns. A failing log
    /// subscription is retried the same way. Returns an error only for what waiting cannot fix
    /// (see [`RelayError`]).
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), RelayError> {
        self.config.validate()?;
        let mut shutdown = pin!(shutdown);
        let mut health = Health::new(self.config.backoff_min, self.config.backoff_max);
        loop {
            // Dropping a session mid-way is always safe: all its state is in JetStream, and the
            // next session starts by re-reading it. So one select on the whole session is enough
            // to make every await inside it stoppable.
            let ended = tokio::select! {
                biased;
                () = &mut shutdown => None,
                result = self.session(&mut health) => Some(result),
            };
            let error = match ended {
                None => {
                    info!(stream = %self.config.stream_name, "relay stopped");
                    return Ok(());
                }
                Some(Err(SessionError::Fatal(error))) => return Err(error),
                Some(Err(SessionError::Retry(error))) => error,
            };
            health.failed(&self.config, &error);
            let delay = health.next_delay();
            tokio::select! {
                biased;
                () = &mut shutdown => {
                    info!(stream = %self.config.stream_name, "relay stopped");
                    return Ok(());
                }
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// One connection: connect, make sure the stream exists, read the checkpoint, then publish
    /// the log from there until something fails. Never returns `Ok`.
    async fn session(&self, health: &mut Health) -> Result<std::convert::Infallible, SessionError> {
        let config = &self.config;
        // A fresh client per session: its own reconnection would hide an outage from us, and
        // we must re-read the checkpoint after any failure anyway. Without
        // `retry_on_initial_connect`, connecting to a server that is down fails at once.
        let client = async_nats::ConnectOptions::new()
            .name("marquee-relay")
            .connection_timeout(config.ack_timeout)
            .request_timeout(Some(config.ack_timeout))
            .connect(config.nats_url.as_str())
            .await
            .map_err(|e| SessionError::retry("connecting to NATS", e))?;
        let js = jetstream::ContextBuilder::new()
            .timeout(config.ack_timeout)
            // Headroom over our own window, so the context never makes a publish wait.
            .max_ack_inflight(config.batch.saturating_mul(2).max(16))
            .build(client);

        let stream = self.ensure_stream(&js).await?;
        let checkpoint = self.read_checkpoint(&stream).await?;
        self.check_against_log(&checkpoint).await?;
        self.published.send_replace(checkpoint.position);

        let head = self
            .store
            .head_position()
            .await
            .map_err(|e| SessionError::retry("reading the log head", e))?;
        if head <= checkpoint.position {
            // Caught up and connected: whatever outage there was is over.
            health.recovered(config, checkpoint.position);
        }
        debug!(
            stream = %config.stream_name,
            checkpoint = checkpoint.position,
            head,
            "relay session started"
        );

        self.publish_from(&js, checkpoint, health).await
    }

    /// Creates the stream, or brings an existing one's subjects, duplicate window and message
    /// limit in line with the configuration.
    async fn ensure_stream(&self, js: &jetstream::Context) -> Result<stream::Stream, SessionError> {
        let config = &self.config;
        let subjects = vec![format!("{}.>", config.subject_prefix)];
        let duplicate_window = Duration::from_secs(120);
        // The server stores "no limit" as -1.
        let max_messages = config.max_messages.unwrap_or(-1);
        let wanted = stream::Config {
            name: config.stream_name.clone(),
            subjects: subjects.clone(),
            storage: stream::StorageType::File,
            duplicate_window,
            max_messages,
            // Facts are never deleted, and the relay's checkpoint is the last message.
            deny_delete: true,
            deny_purge: true,
            ..Default::default()
        };
        let mut stream = js
            .get_or_create_stream(wanted)
            .await
            .map_err(|e| SessionError::retry("creating the JetStream stream", e))?;
        let current = &stream.cached_info().config;
        if current.subjects != subjects
            || current.duplicate_window != duplicate_window
            || current.max_messages != max_messages
        {
            let mut updated = current.clone();
            updated.subjects = subjects;
            updated.duplicate_window = duplicate_window;
            updated.max_messages = max_messages;
            js.update_stream(&updated)
                .await
                .map_err(|e| SessionError::retry("updating the JetStream stream", e))?;
            info!(stream = %config.stream_name, "updated the JetStream stream's configuration");
            stream
                .info()
                .await
                .map_err(|e| SessionError::retry("reading the JetStream stream", e))?;
        }
        Ok(stream)
    }

    /// Reads where the stream ends: its last message's position and sequence.
    async fn read_checkpoint(&self, stream: &stream::Stream) -> Result<Checkpoint, SessionError> {
        let info = stream
            .get_info()
            .await
            .map_err(|e| SessionError::retry("reading the JetStream stream", e))?;
        let last_sequence = info.state.last_sequence;
        if info.state.messages == 0 {
            return Ok(Checkpoint {
                position: 0,
                sequence: last_sequence,
                fact_id: None,
            });
        }
        let message = stream
            .get_raw_message(last_sequence)
            .await
            .map_err(|e| SessionError::retry("reading the stream's last message", e))?;
        let foreign = || RelayError::ForeignMessage {
            stream: self.config.stream_name.clone(),
            sequence: last_sequence,
        };
        let position = message
            .headers
            .get(POSITION_HEADER)
            .and_then(|v| v.as_str().parse::<u64>().ok())
            .ok_or_else(foreign)?;
        let fact_id = message
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|v| v.as_str().to_owned())
            .ok_or_else(foreign)?;
        Ok(Checkpoint {
            position,
            sequence: last_sequence,
            fact_id: Some(fact_id),
        })
    }

    /// Refuses to resume when the stream was filled from another log: resuming after a position
    /// this log does not hold (or holds a different fact at) would skip facts without a trace.
    async fn check_against_log(&self, checkpoint: &Checkpoint) -> Result<(), SessionError> {
        let Some(in_stream) = &checkpoint.fact_id else {
            return Ok(());
        };
        let found = self
            .store
            .read_all(checkpoint.position - 1, 1)
            .await
            .map_err(|e| SessionError::retry("reading the log", e))?;
        let stream = self.config.stream_name.clone();
        match found.first() {
            None => {
                let head = self
                    .store
                    .head_position()
                    .await
                    .map_err(|e| SessionError::retry("reading the log head", e))?;
                Err(RelayError::AheadOfLog {
                    stream,
                    checkpoint: checkpoint.position,
                    head,
                }
                .into())
            }
            Some(fact)
                if fact.position == checkpoint.position
                    && fact.fact_id.to_string() == *in_stream =>
            {
                Ok(())
            }
            Some(fact) => Err(RelayError::LogMismatch {
                stream,
                position: checkpoint.position,
                in_stream: in_stream.clone(),
                in_log: (fact.position == checkpoint.position).then_some(fact.fact_id),
            }
            .into()),
        }
    }

    /// Tails the log after `checkpoint` and publishes with up to `batch` acks outstanding,
    /// awaiting them in order. Returns on the first failure; the caller reconnects and
    /// re-reads the checkpoint, which drops whatever of the window JetStream did not store.
    async fn publish_from(
        &self,
        js: &jetstream::Context,
        checkpoint: Checkpoint,
        health: &mut Health,
    ) -> Result<std::convert::Infallible, SessionError> {
        let config = &self.config;
        let mut facts = self.store.subscribe(checkpoint.position);
        // The stream sequence the last sent message will get if it is stored.
        let mut last_sequence = checkpoint.sequence;
        let mut last_position = checkpoint.position;
        let mut in_flight: VecDeque<InFlight> = VecDeque::with_capacity(config.batch);

        loop {
            tokio::select! {
                // Acks first: they free window slots and advance `published`.
                biased;
                ack = in_flight_front(&mut in_flight), if !in_flight.is_empty() => {
                    let sent = in_flight.pop_front().ok_or_else(|| SessionError::Retry("ack without a publish".into()))?;
                    let ack = ack.map_err(|e| {
                        let why = match e.kind() {
                            PublishErrorKind::WrongLastSequence => "JetStream refused a publish out of sequence (a message was lost, or another relay writes to the stream)",
                            _ => "publishing to JetStream",
                        };
                        SessionError::retry(why, e)
                    })?;
                    if ack.duplicate || ack.sequence != sent.sequence {
                        return Err(SessionError::Retry(format!(
                            "JetStream stored position {} as sequence {} (duplicate: {}), expected {}",
                            sent.position, ack.sequence, ack.duplicate, sent.sequence
                        )));
                    }
                    self.published.send_replace(sent.position);
                    health.recovered(config, sent.position);
                }
                next = facts.next(), if in_flight.len() < config.batch => {
                    let fact = match next {
                        None => return Err(RelayError::StoreClosed.into()),
                        Some(Err(StoreError::Closed)) => return Err(RelayError::StoreClosed.into()),
                        Some(Err(e)) => return Err(SessionError::retry("reading the log", e)),
                        Some(Ok(fact)) => fact,
                    };
                    if fact.position <= last_position {
                        // The log promises position order; publishing against it would corrupt
                        // the stream-as-checkpoint, so start over from what JetStream holds.
                        return Err(SessionError::Retry(format!(
                            "the log delivered position {} after {}",
                            fact.position, last_position
                        )));
                    }
                    let message = message_for(&fact, last_sequence)
                        .map_err(|e| SessionError::retry("encoding a fact", e))?;
                    let subject = subject_for(&config.subject_prefix, &fact.stream);
                    let ack = js
                        .send_publish(subject, message)
                        .await
                        .map_err(|e| SessionError::retry("publishing to JetStream", e))?;
                    last_sequence += 1;
                    last_position = fact.position;
                    in_flight.push_back(InFlight {
                        position: fact.position,
                        sequence: last_sequence,
                        ack: ack.into_future(),
                    });
                }
            }
        }
    }
}

/// Where the stream ends.
#[derive(Debug)]
struct Checkpoint {
    /// Log position of the last message (0 for an empty stream).
    position: u64,
    /// Stream sequence of the last message stored (0 for a stream never written to).
    sequence: u64,
    /// `Nats-Msg-Id` of the last message, if there is one.
    fact_id: Option<String>,
}

type AckFuture = Pin<
    Box<
        dyn Future<
                Output = Result<jetstream::publish::PublishAck, jetstream::context::PublishError>,
            > + Send,
    >,
>;

/// A publish whose ack has not been awaited yet.
struct InFlight {
    position: u64,
    /// The stream sequence this message must be stored at.
    sequence: u64,
    ack: AckFuture,
}

/// Polls the oldest outstanding ack without removing it, so the select arm that receives it
/// also knows which publish it belongs to.
async fn in_flight_front(
    in_flight: &mut VecDeque<InFlight>,
) -> Result<jetstream::publish::PublishAck, jetstream::context::PublishError> {
    match in_flight.front_mut() {
        Some(front) => (&mut front.ack).await,
        // Guarded by the select precondition; never resolve rather than invent an ack.
        None => std::future::pending().await,
    }
}

/// The message for one fact: the fact as JSON, with the headers consumers filter and dedupe on.
fn message_for(
    fact: &RecordedFact,
    expected_last_sequence: u64,
) -> Result<PublishMessage, serde_json::Error> {
    let payload = serde_json::to_vec(fact)?;
    let mut message = PublishMessage::build()
        .payload(bytes::Bytes::from(payload))
        .message_id(fact.fact_id.to_string())
        .expected_last_sequence(expected_last_sequence)
        .header(POSITION_HEADER, fact.position.to_string())
        .header(FACT_TYPE_HEADER, header_value(&fact.fact_type))
        .header(STREAM_HEADER, header_value(&fact.stream))
        .header(REVISION_HEADER, fact.revision.to_string());
    if let Some(correlation_id) = fact.metadata.correlation_id {
        message = message.header(CORRELATION_ID_HEADER, correlation_id.to_string());
    }
    Ok(message)
}

/// A header value with control characters replaced: the log does not forbid them in names, but
/// a CR or LF would end the header (async-nats panics on one). The payload keeps the original.
fn header_value(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .collect()
}

/// Backoff and outage bookkeeping, so an outage is reported once, not per attempt.
struct Health {
    min: Duration,
    max: Duration,
    delay: Duration,
    /// When the current outage began; `None` while publishing works.
    outage_since: Option<Instant>,
}

impl Health {
    fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            delay: min,
            outage_since: None,
        }
    }

    fn failed(&mut self, config: &RelayConfig, error: &str) {
        if self.outage_since.is_none() {
            self.outage_since = Some(Instant::now());
            warn!(
                stream = %config.stream_name,
                nats_url = %config.nats_url,
                error,
                "relay cannot publish; retrying with backoff until it can (commands are unaffected)"
            );
        } else {
            debug!(stream = %config.stream_name, error, "relay still cannot publish");
        }
    }

    fn recovered(&mut self, config: &RelayConfig, position: u64) {
        self.delay = self.min;
        if let Some(since) = self.outage_since.take() {
            info!(
                stream = %config.stream_name,
                position,
                outage_ms = since.elapsed().as_millis() as u64,
                "relay publishing again"
            );
        }
    }

    /// The delay before the next attempt: doubles up to `max`.
    fn next_delay(&mut self) -> Duration {
        let delay = self.delay;
        self.delay = (self.delay * 2).min(self.max);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets_on_recovery() {
        let config = RelayConfig::default();
        let mut health = Health::new(Duration::from_millis(100), Duration::from_secs(5));
        let delays: Vec<_> = (0..9).map(|_| health.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        health.failed(&config, "down");
        health.recovered(&config, 1);
        assert_eq!(health.next_delay(), Duration::from_millis(100));
        assert!(health.outage_since.is_none());
    }

    #[test]
    fn configs_that_can_never_work_are_rejected() {
        assert!(RelayConfig::default().validate().is_ok());
        let bad = [
            RelayConfig {
                stream_name: "MARQUEE.FACTS".into(),
                ..RelayConfig::default()
            },
            RelayConfig {
                subject_prefix: "marquee.*".into(),
                ..RelayConfig::default()
            },
            RelayConfig {
                batch: 0,
                ..RelayConfig::default()
            },
            RelayConfig {
                max_messages: Some(0),
                ..RelayConfig::default()
            },
        ];
        for config in bad {
            assert!(
                matches!(config.validate(), Err(RelayError::InvalidConfig(_))),
                "{config:?}"
            );
        }
    }

    #[test]
    fn header_values_never_carry_line_breaks() {
        assert_eq!(header_value("event-1\r\nX-Evil: 1"), "event-1__X-Evil: 1");
        assert_eq!(header_value("SeatsReserved"), "SeatsReserved");
    }
}
