//! The projector loop: take the lease, catch up from the checkpoint, then apply what the fact
//! source delivers, in batches — the same code for the log (embedded mode) and JetStream
//! (distributed mode).
//!
//! # Exactly once, nothing skipped
//!
//! Whatever the source, every batch goes through [`Projector::consume`]:
//!
//! 1. Facts at or below the checkpoint (redeliveries, duplicates) are dropped.
//! 2. A fact at position `p > checkpoint + 1` means the source lost something (JetStream
//!    dropped or reordered a message, or the relay was behind when the consumer was created):
//!    the missing positions are read from the log (`read_all`) and applied first. The log is
//!    the source of truth; a transport only says what to apply next.
//! 3. The batch is applied in one transaction that also checks the lease and moves the
//!    checkpoint (see `apply`); only after commit are its messages acknowledged.
//!
//! # NATS down
//!
//! A JetStream session that fails (NATS unreachable, the relay's stream not created yet, the
//! connection dropped) is retried with capped exponential backoff, and while it waits the
//! projector follows the log directly, as in embedded mode. The read models therefore never lag
//! for want of NATS — only the log matters — and JetStream takes over again on the next
//! successful connection, its redeliveries of what the log already applied skipped by position.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use marquee_store::{EventStore, RecordedFact, StoreError};
use tokio::time::Instant;
use tracing::Instrument;

use crate::apply::apply_batch;
use crate::jetstream::{JetStreamFeed, JetStreamSource};
use crate::lease::{EMBEDDED_HOLDER, LeaseConfig};
use crate::read_models::Backend;
use crate::source::{FactFeed, LogFeed};
use crate::{ProjectorError, ReadModels};

/// Most facts applied in one transaction. Catch-up fills batches; live traffic takes whatever
/// is ready, so a lone fact is applied at once.
const MAX_BATCH: usize = 512;
/// First and longest wait before retrying after a failure of the log or the read models.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// How long a clean stop waits to release the lease before leaving it to expire.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where a projector takes its facts from.
enum Source {
    /// The log's own subscription.
    Log,
    /// The relay's JetStream stream, with the log for gaps and outages.
    JetStream(JetStreamSource),
}

/// Folds the log into the read models. Restartable: it always resumes from its checkpoint.
///
/// Any number may run on one read-model database; the lease (see [`LeaseConfig`]) lets one of
/// them apply facts while the others stand by.
pub struct Projector {
    /// The log: the fact source in embedded mode, the source of truth in both.
    store: Arc<dyn EventStore>,
    /// Where it writes.
    read: ReadModels,
    /// What tells it which facts to apply next.
    source: Source,
    /// Its claim to be the one writer.
    lease: LeaseConfig,
}

impl Projector {
    /// A projector that follows the log `store` into `read` (embedded mode, or a distributed
    /// projector without NATS). Nothing runs until [`Projector::run`].
    ///
    /// Its lease holder is [`LeaseConfig::unique`], except on SQLite read models (embedded
    /// mode: one process per file), where it is the fixed [`EMBEDDED_HOLDER`] so that a killed
    /// and restarted process takes its lease back at once. Override with
    /// [`Projector::with_lease`].
    pub fn new(store: Arc<dyn EventStore>, read: ReadModels) -> Self {
        let lease = match read.backend() {
            Backend::Sqlite => LeaseConfig::named(EMBEDDED_HOLDER),
            Backend::Postgres => LeaseConfig::unique(),
        };
        Self {
            store,
            read,
            source: Source::Log,
            lease,
        }
    }

    /// A projector that consumes the relay's JetStream stream through the durable consumer
    /// `source` names, into `read` (distributed mode). `store` is the same log the relay
    /// publishes: gaps are filled from it, and it is followed directly while NATS is down.
    /// Its lease holder is [`LeaseConfig::unique`].
    pub fn with_jetstream(
        store: Arc<dyn EventStore>,
        read: ReadModels,
        source: JetStreamSource,
    ) -> Self {
        Self {
            store,
            read,
            source: Source::JetStream(source),
            lease: LeaseConfig::unique(),
        }
    }

    /// The same projector under another lease holder or other lease timings.
    pub fn with_lease(mut self, lease: LeaseConfig) -> Self {
        self.lease = lease;
        self
    }

    /// Takes the lease (standing by while another process holds it), catches up from the
    /// checkpoint, then applies what its source delivers until `shutdown` resolves. Releases
    /// the lease on the way out. Restartable: resumes from its checkpoint.
    ///
    /// A failing database, log or NATS is logged and retried with backoff (no fact is lost or
    /// counted twice); losing the lease sends it back to standby. The loop ends with an error
    /// only when the log's feed ends ([`ProjectorError::LogClosed`]) or the configuration can
    /// never work ([`ProjectorError::InvalidConfig`]).
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ProjectorError> {
        self.lease.validate()?;
        if let Source::JetStream(config) = &self.source {
            config.validate()?;
        }
        let span = tracing::info_span!("projector", holder = %self.lease.holder);
        let mut shutdown = Box::pin(shutdown);
        let result = async {
            loop {
                tokio::select! {
                    biased;
                    () = &mut shutdown => return Ok(()),
                    () = self.acquire_lease() => {}
                }
                // Only while applying: waiters in this process then get notified and poll
                // gently; a standby here would leave them polling slowly for another process.
                let _local = self.read.local_projector();
                let led = tokio::select! {
                    biased;
                    () = &mut shutdown => return Ok(()),
                    () = self.hold_lease() => Err(ProjectorError::LeaseLost),
                    result = self.lead() => result,
                };
                match led {
                    Err(ProjectorError::LeaseLost) => {
                        tracing::warn!("projector lease lost to another process; standing by");
                    }
                    Err(error) => return Err(error),
                    Ok(never) => match never {},
                }
            }
        }
        .instrument(span)
        .await;
        // Best effort: a standby takes over at once instead of after the term.
        match tokio::time::timeout(RELEASE_TIMEOUT, self.read.release_lease(&self.lease.holder))
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "could not release the projector lease"),
            Err(_) => tracing::warn!("releasing the projector lease timed out; it will expire"),
        }
        result
    }

    /// Waits until this process holds the lease.
    async fn acquire_lease(&self) {
        let mut standing_by = false;
        loop {
            match self
                .read
                .try_acquire_lease(&self.lease.holder, self.lease.ttl)
                .await
            {
                Ok(true) => {
                    tracing::info!("projector lease taken; applying facts");
                    return;
                }
                Ok(false) if !standing_by => {
                    standing_by = true;
                    let holder = self.read.lease_holder().await.ok().flatten();
                    tracing::info!(
                        holder = holder.as_ref().map(|h| h.holder.as_str()),
                        "another projector holds the lease; standing by"
                    );
                }
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "could not try the projector lease"),
            }
            tokio::time::sleep(self.lease.poll_every).await;
        }
    }

    /// Renews the lease until it is lost: someone else holds it, or renewal has failed for a
    /// whole term (it may have expired and been taken; fencing guards the gap until then).
    async fn hold_lease(&self) {
        let mut renewed_at = Instant::now();
        loop {
            tokio::time::sleep(self.lease.renew_every).await;
            match self
                .read
                .renew_lease(&self.lease.holder, self.lease.ttl)
                .await
            {
                Ok(true) => renewed_at = Instant::now(),
                Ok(false) => return,
                Err(error) => {
                    tracing::warn!(%error, "could not renew the projector lease");
                    if renewed_at.elapsed() >= self.lease.ttl {
                        return;
                    }
                }
            }
        }
    }

    /// Applies facts while holding the lease, retrying failures with backoff. Returns only for
    /// what retrying cannot fix, or a lost lease.
    async fn lead(&self) -> Result<Infallible, ProjectorError> {
        let mut backoff = RETRY_FIRST;
        loop {
            let failure = match &self.source {
                Source::Log => self.follow_log().await,
                Source::JetStream(config) => self.follow_jetstream(config).await,
            };
            let error = match failure {
                Ok(never) => match never {},
                Err(ProjectorError::LogClosed) | Err(ProjectorError::Store(StoreError::Closed)) => {
                    return Err(ProjectorError::LogClosed);
                }
                Err(ProjectorError::LeaseLost) => return Err(ProjectorError::LeaseLost),
                Err(error) => error,
            };
            tracing::error!(%error, retry_in = ?backoff, "projector failed; resuming from its checkpoint");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(RETRY_MAX);
        }
    }

    /// Follows the log from the checkpoint until an error.
    async fn follow_log(&self) -> Result<Infallible, ProjectorError> {
        let checkpoint = self.read.applied_position().await?;
        tracing::info!(checkpoint, "projector following the log");
        let mut feed = LogFeed::open(self.store.as_ref(), checkpoint, MAX_BATCH);
        self.consume(&mut feed, checkpoint).await
    }

    /// Consumes JetStream session after session; while NATS is unavailable, follows the log
    /// directly for the length of each backoff. Returns only errors of the log, the read models
    /// or the lease.
    async fn follow_jetstream(
        &self,
        config: &JetStreamSource,
    ) -> Result<Infallible, ProjectorError> {
        let mut delay = config.backoff_min;
        let mut outage_since: Option<Instant> = None;
        loop {
            let why = match self
                .jetstream_session(config, &mut delay, &mut outage_since)
                .await
            {
                Err(ProjectorError::Nats(why)) => why,
                Err(error) => return Err(error),
                Ok(never) => match never {},
            };
            if outage_since.is_none() {
                outage_since = Some(Instant::now());
                tracing::warn!(
                    nats_url = %config.nats_url,
                    stream = %config.stream_name,
                    error = %why,
                    "JetStream unavailable; following the log directly until it is back"
                );
            } else {
                tracing::debug!(error = %why, "JetStream still unavailable");
            }
            // Keep the read models current from the log meanwhile; give up the log after the
            // delay to try NATS again.
            tokio::select! {
                result = self.follow_log() => match result {
                    Ok(never) => match never {},
                    Err(error) => return Err(error),
                },
                () = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(config.backoff_max);
        }
    }

    /// One NATS connection: bind the durable consumer, catch up from the log, then apply
    /// what the consumer delivers until something fails.
    async fn jetstream_session(
        &self,
        config: &JetStreamSource,
        delay: &mut Duration,
        outage_since: &mut Option<Instant>,
    ) -> Result<Infallible, ProjectorError> {
        let mut feed = JetStreamFeed::open(config, MAX_BATCH).await?;
        // After binding the consumer, not before: every fact the consumer will not deliver was
        // published, hence committed to the log, before this read.
        let checkpoint = self.read.applied_position().await?;
        let checkpoint = self.fill_from_log(checkpoint, None).await?;
        *delay = config.backoff_min;
        if let Some(since) = outage_since.take() {
            tracing::info!(
                outage_ms = since.elapsed().as_millis() as u64,
                "JetStream available again"
            );
        }
        tracing::info!(checkpoint, durable = %config.durable_name, "projector consuming JetStream");
        self.consume(&mut feed, checkpoint).await
    }

    /// The one apply loop of both modes: drop what is at or below the checkpoint, fill gaps
    /// from the log, apply in one transaction, then acknowledge.
    async fn consume<F: FactFeed>(
        &self,
        feed: &mut F,
        mut applied: u64,
    ) -> Result<Infallible, ProjectorError> {
        loop {
            let deliveries = feed.next_batch().await?;
            let mut facts = Vec::with_capacity(deliveries.len());
            let mut receipts = Vec::with_capacity(deliveries.len());
            for delivery in deliveries {
                facts.extend(delivery.fact);
                receipts.push(delivery.receipt);
            }
            // JetStream delivers in stream order, but a redelivery may come after later
            // messages; duplicates of a position carry the same fact.
            facts.sort_by_key(|f| f.position);
            facts.dedup_by_key(|f| f.position);
            facts.retain(|f| f.position > applied);

            let mut batch: Vec<RecordedFact> = Vec::with_capacity(facts.len());
            for fact in facts {
                let expected = batch.last().map_or(applied, |f| f.position) + 1;
                if fact.position > expected {
                    if !batch.is_empty() {
                        applied = self.apply(&batch).await?;
                        batch.clear();
                    }
                    tracing::warn!(
                        from = applied + 1,
                        to = fact.position - 1,
                        "positions missing from the feed; filling them from the log"
                    );
                    applied = self.fill_from_log(applied, Some(fact.position - 1)).await?;
                }
                batch.push(fact);
            }
            if !batch.is_empty() {
                applied = self.apply(&batch).await?;
            }
            feed.ack(receipts).await?;
        }
    }

    /// Applies facts straight from the log after `applied`, up to `until` (inclusive) or the
    /// log's end; returns the checkpoint after. Asked for a position the log does not have, it
    /// fails rather than skip it.
    async fn fill_from_log(
        &self,
        mut applied: u64,
        until: Option<u64>,
    ) -> Result<u64, ProjectorError> {
        loop {
            let wanted = match until {
                Some(until) if applied >= until => return Ok(applied),
                Some(until) => {
                    usize::try_from(until - applied).map_or(MAX_BATCH, |n| n.min(MAX_BATCH))
                }
                None => MAX_BATCH,
            };
            let mut facts = self.store.read_all(applied, wanted).await?;
            if let Some(until) = until {
                facts.retain(|f| f.position <= until);
            }
            if facts.is_empty() {
                return match until {
                    None => Ok(applied),
                    Some(until) => Err(ProjectorError::LogBehind {
                        position: until + 1,
                        head: self.store.head_position().await?,
                    }),
                };
            }
            applied = self.apply(&facts).await?;
        }
    }

    /// One batch transaction under the lease; tells local waiters.
    async fn apply(&self, facts: &[RecordedFact]) -> Result<u64, ProjectorError> {
        let applied = apply_batch(&self.read, facts, &self.lease.holder).await?;
        tracing::debug!(applied, facts = facts.len(), "batch applied");
        self.read.publish_applied(applied);
        Ok(applied)
    }
}
