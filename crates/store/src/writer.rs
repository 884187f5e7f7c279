//! The group-commit writer shared by the SQLite and Postgres backends.
//!
//! Every append goes through one mpsc channel to one task. The task takes whatever is queued
//! (up to `max_batch` requests) and hands it to the backend as one batch, written in one
//! transaction. One writer per process means one transaction, one fsync and (on Postgres) one
//! advisory-lock hand-over and one NOTIFY for many appends, and it is what keeps positions
//! contiguous without a sequence.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

use crate::{AppendRequest, Appended, StoreError};

/// Answers for a batch that committed: one per request, plus the head position after it.
pub(crate) struct BatchResult {
    pub outcomes: Vec<Result<Appended, StoreError>>,
    pub head: u64,
}

/// A backend's half of the group commit: write a batch in ONE transaction.
#[async_trait::async_trait]
pub(crate) trait BatchSink: Send + Sync + 'static {
    /// Plans and writes `requests` in one transaction. `Err` means the transaction did not
    /// commit and nothing of the batch was written.
    async fn write_batch(&self, requests: &[AppendRequest]) -> Result<BatchResult, StoreError>;

    /// Housekeeping after a batch (e.g. expired idempotency keys); failures are only logged.
    async fn after_batch(&self) {}
}

/// Requests queued together (one append, or a chain of appends to one stream) and where their
/// answers go. A job's requests always land in the same batch, in order.
struct Job {
    requests: Vec<AppendRequest>,
    reply: oneshot::Sender<Vec<Result<Appended, StoreError>>>,
}

/// Handle to the writer task. The task ends when the last handle is dropped.
pub(crate) struct GroupCommit {
    jobs: mpsc::Sender<Job>,
}

impl GroupCommit {
    /// Starts the writer task on the current tokio runtime; the store works only while that
    /// runtime runs (one store per runtime, as usual for sqlx pools).
    pub(crate) fn spawn<S: BatchSink>(
        sink: S,
        head: Arc<watch::Sender<u64>>,
        max_batch: usize,
    ) -> Self {
        // Bounded, so a flood of appends waits at the door instead of growing memory.
        let (jobs, rx) = mpsc::channel(max_batch.max(1) * 4);
        tokio::spawn(run(sink, rx, head, max_batch.max(1)));
        Self { jobs }
    }

    /// Queues one append and waits for its answer.
    pub(crate) async fn append(&self, request: AppendRequest) -> Result<Appended, StoreError> {
        self.append_all(vec![request])
            .await
            .pop()
            .unwrap_or(Err(StoreError::Closed))
    }

    /// Queues several appends as one job, so they are planned in order inside one batch, and
    /// waits for their answers (one per request, in order).
    pub(crate) async fn append_all(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Vec<Result<Appended, StoreError>> {
        let count = requests.len();
        let closed = || (0..count).map(|_| Err(StoreError::Closed)).collect();
        let (reply, answer) = oneshot::channel();
        if self.jobs.send(Job { requests, reply }).await.is_err() {
            return closed();
        }
        answer.await.unwrap_or_else(|_| closed())
    }
}

async fn run<S: BatchSink>(
    sink: S,
    mut rx: mpsc::Receiver<Job>,
    head: Arc<watch::Sender<u64>>,
    max_batch: usize,
) {
    let mut jobs = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut jobs, max_batch).await > 0 {
        let mut requests = Vec::new();
        let mut replies = Vec::with_capacity(jobs.len());
        for job in jobs.drain(..) {
            replies.push((job.reply, job.requests.len()));
            requests.extend(job.requests);
        }
        let outcomes = match sink.write_batch(&requests).await {
            Ok(result) => {
                publish_head(&head, result.head);
                result.outcomes
            }
            Err(e) if requests.len() == 1 => vec![Err(e)],
            Err(e) => {
                // The batch transaction failed as a whole. Retry each request in its own
                // transaction so one poisonous request (a value the database refuses) cannot fail
                // its neighbours, and every caller gets its own real error if the database is down.
                tracing::warn!(error = %e, size = requests.len(), "group commit failed; retrying one by one");
                let mut outcomes = Vec::with_capacity(requests.len());
                for request in &requests {
                    match sink.write_batch(std::slice::from_ref(request)).await {
                        Ok(mut result) => {
                            publish_head(&head, result.head);
                            outcomes.push(result.outcomes.pop().unwrap_or(Err(StoreError::Closed)));
                        }
                        Err(e) => outcomes.push(Err(e)),
                    }
                }
                outcomes
            }
        };
        let mut outcomes = outcomes.into_iter();
        for (reply, count) in replies {
            // The caller may have given up waiting; its appends still stand.
            let _ = reply.send(outcomes.by_ref().take(count).collect());
        }
        sink.after_batch().await;
    }
}

/// Raises the in-process head, waking live subscribers. Never lowers it.
pub(crate) fn publish_head(head: &watch::Sender<u64>, new_head: u64) {
    head.send_if_modified(|h| {
        if new_head > *h {
            *h = new_head;
            true
        } else {
            false
        }
    });
}
