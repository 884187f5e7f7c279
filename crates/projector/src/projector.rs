//! The projector loop: catch up from the checkpoint, then follow the log live, in batches.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use marquee_store::{EventStore, RecordedFact, StoreError};
use tracing::Instrument;

use crate::apply::apply_batch;
use crate::{ProjectorError, ReadModels};

/// Most facts applied in one transaction. Catch-up fills batches; live traffic takes whatever
/// is ready, so a lone fact is applied at once.
const MAX_BATCH: usize = 512;
/// First and longest wait before retrying after a failure.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Folds the log into the read models. Restartable: it always resumes from its checkpoint.
pub struct Projector {
    /// The log it follows.
    store: Arc<dyn EventStore>,
    /// Where it writes.
    read: ReadModels,
}

impl Projector {
    /// A projector from `store` into `read`. Nothing runs until [`Projector::run`].
    pub fn new(store: Arc<dyn EventStore>, read: ReadModels) -> Self {
        Self { store, read }
    }

    /// Catches up from the checkpoint, then follows the log live until `shutdown` resolves.
    /// Restartable: resumes from its checkpoint.
    ///
    /// A failing database or log is logged and retried with backoff from the checkpoint (no fact
    /// is lost or counted twice); the loop ends with an error only when the log's feed ends.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ProjectorError> {
        let _local = self.read.local_projector();
        let mut shutdown = Box::pin(shutdown);
        let mut backoff = RETRY_FIRST;
        loop {
            let attempt = self.follow().instrument(tracing::info_span!("projector"));
            let error = tokio::select! {
                biased;
                () = &mut shutdown => return Ok(()),
                result = attempt => match result {
                    Err(ProjectorError::LogClosed) | Err(ProjectorError::Store(StoreError::Closed)) => {
                        return Err(ProjectorError::LogClosed);
                    }
                    Err(error) => error,
                    Ok(()) => return Err(ProjectorError::LogClosed),
                },
            };
            tracing::error!(%error, retry_in = ?backoff, "projector failed; resuming from its checkpoint");
            tokio::select! {
                biased;
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(RETRY_MAX);
        }
    }

    /// Subscribes from the checkpoint and applies batches until an error or the feed's end.
    async fn follow(&self) -> Result<(), ProjectorError> {
        let checkpoint = self.read.applied_position().await?;
        tracing::info!(checkpoint, "projector catching up");
        let mut batches = self.store.subscribe(checkpoint).ready_chunks(MAX_BATCH);
        while let Some(batch) = batches.next().await {
            let mut facts: Vec<RecordedFact> = Vec::with_capacity(batch.len());
            let mut failure = None;
            for item in batch {
                match item {
                    Ok(fact) => facts.push(fact),
                    Err(error) => {
                        failure = Some(error);
                        break;
                    }
                }
            }
            if !facts.is_empty() {
                let applied = apply_batch(&self.read, &facts).await?;
                tracing::debug!(applied, facts = facts.len(), "batch applied");
                self.read.publish_applied(applied);
            }
            if let Some(error) = failure {
                return Err(error.into());
            }
        }
        Err(ProjectorError::LogClosed)
    }
}
