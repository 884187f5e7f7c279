//! Where a projector's facts come from: one trait, [`FactFeed`], with two implementations —
//! following the log directly ([`LogFeed`], embedded mode) and a durable JetStream consumer on
//! the relay's stream (`crate::jetstream`, distributed mode). The projector loop drives either
//! through the same code: gap check, batch transaction, then acknowledgement. A transport
//! failure is [`ProjectorError::Nats`]: waited out while the log is followed directly.

use std::future::Future;

use futures::StreamExt;
use futures::stream::{BoxStream, ReadyChunks};
use marquee_store::{EventStore, RecordedFact, StoreError};

use crate::ProjectorError;

/// How to acknowledge a delivery once its batch has committed.
pub(crate) enum Receipt {
    /// The log needs no acknowledgement: the checkpoint is the whole of its state.
    Log,
    /// A JetStream message, acknowledged to its durable consumer.
    JetStream(Box<async_nats::jetstream::Message>),
}

/// One fact as a feed delivered it.
pub(crate) struct Delivery {
    /// The fact, or `None` when the message could not be read as one. An unreadable message is
    /// acknowledged and dropped: the log is the source of truth, and whatever fact it should
    /// have carried is filled in from the log as a gap when the next fact arrives.
    pub fact: Option<RecordedFact>,
    /// How to acknowledge it after commit.
    pub receipt: Receipt,
}

/// A source of facts, in position order except where a transport lost, duplicated or
/// reordered something — the projector loop makes up for that.
pub(crate) trait FactFeed: Send {
    /// The next deliveries that are ready, at least one; waits for one. An error ends the feed.
    fn next_batch(&mut self) -> impl Future<Output = Result<Vec<Delivery>, ProjectorError>> + Send;

    /// Acknowledges deliveries whose batch has committed (their facts applied or skipped).
    fn ack(
        &mut self,
        receipts: Vec<Receipt>,
    ) -> impl Future<Output = Result<(), ProjectorError>> + Send;
}

/// The log itself, followed from a checkpoint: catch-up, then live.
pub(crate) struct LogFeed {
    facts: ReadyChunks<BoxStream<'static, Result<RecordedFact, StoreError>>>,
    /// An error that arrived behind good facts: those are handed out first, this on the next call.
    failed: Option<StoreError>,
}

impl LogFeed {
    /// Follows `store` after position `after`, yielding up to `max_batch` facts at a time.
    pub fn open(store: &dyn EventStore, after: u64, max_batch: usize) -> Self {
        Self {
            facts: store.subscribe(after).ready_chunks(max_batch),
            failed: None,
        }
    }
}

impl FactFeed for LogFeed {
    async fn next_batch(&mut self) -> Result<Vec<Delivery>, ProjectorError> {
        if let Some(error) = self.failed.take() {
            return Err(error.into());
        }
        let Some(chunk) = self.facts.next().await else {
            return Err(ProjectorError::LogClosed);
        };
        let mut deliveries = Vec::with_capacity(chunk.len());
        for item in chunk {
            match item {
                Ok(fact) => deliveries.push(Delivery {
                    fact: Some(fact),
                    receipt: Receipt::Log,
                }),
                Err(error) if deliveries.is_empty() => return Err(error.into()),
                // What came before the error is still good: apply it, and fail on the next call.
                Err(error) => {
                    self.failed = Some(error);
                    break;
                }
            }
        }
        Ok(deliveries)
    }

    async fn ack(&mut self, _receipts: Vec<Receipt>) -> Result<(), ProjectorError> {
        Ok(())
    }
}
