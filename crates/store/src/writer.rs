//! The group-commit writer shared by the SQLite and Postgres backends.
//!
//! Every append goes through one mpsc channel to one task. The task takes whatever is queued
//! (up to `max_batch` requests) and hands it to the backend as one batch, written in one
//! transaction. One writer per process means one transaction, one fsync and (on Postgres) one
//! advisory-lock hand-over and one NOTIFY for many appends, and it is what keeps positions
//! contiguous without a sequence.
//!
//! A job is one `append`, one `append_all` chain (each link standing alone) or one
//! `append_atomic` group (all links or none). Whatever shape, a job's requests land in one batch,
//! in order, and a group is never split: not by the planner (see `plan::plan_grouped`) and not by
//! the fallback that retries a failed batch unit by unit.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::plan::{self, Unit};
use crate::{AppendRequest, Appended, StoreError};

/// Answers for a batch that committed: one per request, plus the head position after it.
pub(crate) struct BatchResult {
    pub outcomes: Vec<Result<Appended, StoreError>>,
    pub head: u64,
}

/// A backend's half of the group commit: write a batch in ONE transaction.
#[async_trait::async_trait]
pub(crate) trait BatchSink: Send + Sync + 'static {
    /// Plans (with `plan::plan_grouped`) and writes `requests` in one transaction; `groups` are
    /// the atomic groups among them (sorted, disjoint index ranges). `Err` means the transaction
    /// did not commit and nothing of the batch was written.
    async fn write_batch(
        &self,
        requests: &[AppendRequest],
        groups: &[Range<usize>],
    ) -> Result<BatchResult, StoreError>;

    /// Housekeeping after a batch (e.g. expired idempotency keys); failures are only logged.
    async fn after_batch(&self) {}
}

/// Requests queued together (one append, a chain, or an atomic group) and where their answers
/// go. A job's requests always land in the same batch, in order.
struct Job {
    requests: Vec<AppendRequest>,
    /// All or nothing (`append_atomic`), rather than each request on its own.
    atomic: bool,
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
        self.queue(requests, false).await
    }

    /// Queues several appends as one atomic job: planned as one unit inside a batch, written all
    /// together or not at all. Answers one `Appended` per request, or the group's refusal.
    pub(crate) async fn append_atomic(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Result<Vec<Appended>, StoreError> {
        let count = requests.len();
        // A refused group's first answer is its reason (`plan::refuse_together`), so the first
        // error is the one to report.
        let appended = self
            .queue(requests, true)
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        if appended.len() == count {
            Ok(appended)
        } else {
            Err(StoreError::Closed)
        }
    }

    async fn queue(
        &self,
        requests: Vec<AppendRequest>,
        atomic: bool,
    ) -> Vec<Result<Appended, StoreError>> {
        let count = requests.len();
        let closed = || (0..count).map(|_| Err(StoreError::Closed)).collect();
        let (reply, answer) = oneshot::channel();
        let job = Job {
            requests,
            atomic,
            reply,
        };
        if self.jobs.send(job).await.is_err() {
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
    let mut last = Gathered::default();
    while rx.recv_many(&mut jobs, max_batch).await > 0 {
        last.linger(&mut rx, &mut jobs, max_batch).await;
        let started = Instant::now();
        let gathered = jobs.len();
        let mut requests = Vec::new();
        let mut groups = Vec::new();
        let mut replies = Vec::with_capacity(jobs.len());
        for job in jobs.drain(..) {
            replies.push((job.reply, job.requests.len()));
            if job.atomic {
                groups.push(requests.len()..requests.len() + job.requests.len());
            }
            requests.extend(job.requests);
        }
        let outcomes = match sink.write_batch(&requests, &groups).await {
            Ok(result) => {
                publish_head(&head, result.head);
                result.outcomes
            }
            Err(e) => {
                let units = plan::units(requests.len(), &groups);
                if units.len() == 1 {
                    plan::refuse_together(&requests, e)
                } else {
                    // The batch transaction failed as a whole. Retry each unit (a lone request,
                    // or an atomic group kept whole) in its own transaction so one poisonous
                    // request (a value the database refuses) cannot fail its neighbours, and
                    // every caller gets its own real error if the database is down.
                    tracing::warn!(error = %e, size = requests.len(), "group commit failed; retrying one by one");
                    retry_unit_by_unit(&sink, &requests, units, &head).await
                }
            }
        };
        let mut outcomes = outcomes.into_iter();
        for (reply, count) in replies {
            // The caller may have given up waiting; its appends still stand.
            let _ = reply.send(outcomes.by_ref().take(count).collect());
        }
        last = Gathered {
            jobs: gathered,
            took: started.elapsed(),
        };
        sink.after_batch().await;
    }
}

/// The longest the writer waits for a batch to fill (see [`Gathered::linger`]). tokio's timer
/// rounds up to whole milliseconds, so this is also the shortest wait that means anything.
const MAX_LINGER: Duration = Duration::from_millis(1);

/// What the previous batch was: how many jobs it held and how long its write took.
#[derive(Default)]
struct Gathered {
    jobs: usize,
    took: Duration,
}

impl Gathered {
    /// Waits a moment for a batch as large as the previous one, when fewer jobs are queued.
    ///
    /// Without it, closed-loop callers (each waiting for its answer before appending again)
    /// split into two alternating batches: when a batch of 32 commits, the first caller to
    /// append again is alone in the queue, the writer takes it at once, and the other 31 queue
    /// behind that one-append transaction. Measured on Postgres with 32 writers, about half the
    /// batches held one append and half held 31: twice the transactions (and WAL flushes) the
    /// load needed. Postgres's own `commit_delay` answers the same problem the same way.
    ///
    /// It only waits when the previous batch was larger than what is queued now (so there is
    /// concurrency to wait for: a lone caller never waits), at most half the previous batch's
    /// write time and never more than [`MAX_LINGER`], and stops as soon as the batch is as
    /// large as the previous one.
    async fn linger(&self, rx: &mut mpsc::Receiver<Job>, jobs: &mut Vec<Job>, max_batch: usize) {
        let target = self.jobs.min(max_batch);
        if jobs.len() >= target {
            return;
        }
        let deadline = tokio::time::sleep((self.took / 2).min(MAX_LINGER));
        tokio::pin!(deadline);
        while jobs.len() < target {
            tokio::select! {
                // Cancel-safe: a job received is in `jobs`, or still in the channel.
                received = rx.recv_many(jobs, max_batch - jobs.len()) => {
                    if received == 0 {
                        return;
                    }
                }
                () = &mut deadline => return,
            }
        }
    }
}

/// Writes each unit of a failed batch in a transaction of its own, answering as the batch would
/// have: one answer per request, in order.
async fn retry_unit_by_unit<S: BatchSink>(
    sink: &S,
    requests: &[AppendRequest],
    units: Vec<Unit>,
    head: &watch::Sender<u64>,
) -> Vec<Result<Appended, StoreError>> {
    let mut outcomes = Vec::with_capacity(requests.len());
    for unit in units {
        let members = &requests[unit.range];
        let whole = 0..members.len();
        let groups = if unit.atomic {
            std::slice::from_ref(&whole)
        } else {
            &[]
        };
        match sink.write_batch(members, groups).await {
            Ok(result) => {
                publish_head(head, result.head);
                outcomes.extend(result.outcomes);
            }
            Err(e) => outcomes.extend(plan::refuse_together(members, e)),
        }
    }
    outcomes
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use serde_json::json;
    use tokio::sync::Semaphore;
    use uuid::Uuid;

    use super::*;
    use crate::{ExpectedRevision, FactMetadata, NewFact};

    /// A sink that refuses every batch holding an append to `poison`, records the streams of
    /// every batch it is handed, and holds its first batch until the test opens `gate` (so the
    /// jobs queued meanwhile are certain to form the next batch together).
    struct FakeSink {
        batches: Batches,
        gate: Arc<Semaphore>,
        first: AtomicBool,
        head: Mutex<u64>,
        /// How long each write takes (on tokio's clock, which a paused test advances).
        write_time: Duration,
    }

    #[async_trait::async_trait]
    impl BatchSink for FakeSink {
        async fn write_batch(
            &self,
            requests: &[AppendRequest],
            _groups: &[Range<usize>],
        ) -> Result<BatchResult, StoreError> {
            let streams = requests.iter().map(|r| r.stream.clone()).collect();
            self.batches.lock().expect("batches").push(streams);
            if self.first.swap(false, Ordering::SeqCst) {
                self.gate.acquire().await.expect("gate").forget();
            }
            tokio::time::sleep(self.write_time).await;
            if requests.iter().any(|r| r.stream == "poison") {
                return Err(StoreError::Corrupt("the database refuses poison".into()));
            }
            let mut head = self.head.lock().expect("head");
            let outcomes = requests
                .iter()
                .map(|_| {
                    *head += 1;
                    Ok(Appended {
                        first_position: *head,
                        last_position: *head,
                        revision: 0,
                    })
                })
                .collect();
            Ok(BatchResult {
                outcomes,
                head: *head,
            })
        }
    }

    /// Batches as the fake sink saw them: the streams of each, in order.
    type Batches = Arc<Mutex<Vec<Vec<String>>>>;

    /// A writer (batches of up to 16 jobs) over a [`FakeSink`] whose writes take `write_time`,
    /// with what the sink saw and the gate that holds its first batch.
    fn fake_writer(write_time: Duration) -> (Arc<GroupCommit>, Batches, Arc<Semaphore>) {
        let batches = Batches::default();
        let gate = Arc::new(Semaphore::new(0));
        let sink = FakeSink {
            batches: batches.clone(),
            gate: gate.clone(),
            first: AtomicBool::new(true),
            head: Mutex::new(0),
            write_time,
        };
        let commit = GroupCommit::spawn(sink, Arc::new(watch::Sender::new(0)), 16);
        (Arc::new(commit), batches, gate)
    }

    fn request(stream: &str) -> AppendRequest {
        AppendRequest {
            stream: stream.into(),
            expected: ExpectedRevision::Any,
            facts: vec![NewFact {
                fact_id: Uuid::now_v7(),
                fact_type: "Happened".into(),
                schema_version: 1,
                data: json!({}),
                metadata: FactMetadata::default(),
            }],
            idempotency: None,
        }
    }

    #[tokio::test]
    async fn a_failed_batch_is_retried_unit_by_unit_keeping_each_atomic_group_whole() {
        let (commit, batches, gate) = fake_writer(Duration::ZERO);
        let batch_count = || batches.lock().expect("batches").len();

        // The first append occupies the writer at the gate.
        let first = tokio::spawn({
            let commit = commit.clone();
            async move { commit.append(request("first")).await }
        });
        while batch_count() < 1 {
            tokio::task::yield_now().await;
        }
        // Queued meanwhile, in this order: they form the next batch.
        let before = tokio::spawn({
            let commit = commit.clone();
            async move { commit.append(request("before")).await }
        });
        let poisoned = tokio::spawn({
            let commit = commit.clone();
            async move {
                commit
                    .append_atomic(vec![request("venue"), request("poison")])
                    .await
            }
        });
        let after = tokio::spawn({
            let commit = commit.clone();
            async move { commit.append(request("after")).await }
        });
        let healthy = tokio::spawn({
            let commit = commit.clone();
            async move {
                commit
                    .append_atomic(vec![request("venue-2"), request("event-2")])
                    .await
            }
        });
        while commit.jobs.max_capacity() - commit.jobs.capacity() < 4 {
            tokio::task::yield_now().await;
        }
        gate.add_permits(1);

        assert!(first.await.expect("task").is_ok());
        assert!(before.await.expect("task").is_ok());
        assert!(matches!(
            poisoned.await.expect("task"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(after.await.expect("task").is_ok());
        assert_eq!(
            healthy.await.expect("task").expect("healthy group").len(),
            2
        );

        let batches = batches.lock().expect("batches").clone();
        assert_eq!(
            batches,
            [
                vec!["first"],
                vec!["before", "venue", "poison", "after", "venue-2", "event-2"],
                // The fallback: each unit alone, the groups whole.
                vec!["before"],
                vec!["venue", "poison"],
                vec!["after"],
                vec!["venue-2", "event-2"],
            ]
        );
    }

    /// Queues `n` appends to streams named `{name}-{i}` without waiting for their answers.
    fn queue_appends(
        commit: &Arc<GroupCommit>,
        name: &str,
        n: usize,
    ) -> Vec<tokio::task::JoinHandle<Result<Appended, StoreError>>> {
        (0..n)
            .map(|i| {
                let commit = commit.clone();
                let stream = format!("{name}-{i}");
                tokio::spawn(async move { commit.append(request(&stream)).await })
            })
            .collect()
    }

    async fn all_appended(handles: Vec<tokio::task::JoinHandle<Result<Appended, StoreError>>>) {
        for handle in handles {
            handle.await.expect("task").expect("appended");
        }
    }

    /// Lets every other task run until it waits (the test runtime has one thread).
    async fn let_others_run() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    // Time is paused: tokio's clock moves only when every task waits, so the writer's wait ends
    // only when the test lets it, never because the machine was slow.
    #[tokio::test(start_paused = true)]
    async fn after_a_large_batch_the_writer_waits_a_moment_for_the_next_to_fill() {
        let (commit, batches, gate) = fake_writer(Duration::from_millis(4));
        let sizes = || {
            batches
                .lock()
                .expect("batches")
                .iter()
                .map(Vec::len)
                .collect::<Vec<_>>()
        };
        let queue_is_empty = || commit.jobs.capacity() == commit.jobs.max_capacity();

        // A lone append, then four queued while it is written: a batch of four.
        let lone = queue_appends(&commit, "lone", 1);
        let_others_run().await;
        let four = queue_appends(&commit, "four", 4);
        let_others_run().await;
        gate.add_permits(1);
        all_appended(lone).await;
        all_appended(four).await;
        assert_eq!(sizes(), [1, 4]);

        // One append arrives: the writer takes it from the queue but does not write it yet (the
        // previous batch held four). Three more arrive meanwhile, and all four share a batch.
        let first = queue_appends(&commit, "early", 1);
        let_others_run().await;
        assert!(queue_is_empty(), "the writer took the append");
        assert_eq!(sizes(), [1, 4], "and waits for company before writing it");
        let rest = queue_appends(&commit, "late", 3);
        all_appended(first).await;
        all_appended(rest).await;
        assert_eq!(sizes(), [1, 4, 4]);

        // One append and nobody after it: the wait ends (MAX_LINGER) and it goes alone.
        all_appended(queue_appends(&commit, "alone", 1)).await;
        assert_eq!(sizes(), [1, 4, 4, 1]);

        // After a batch of one, a lone append is written at once: no time has to pass.
        let again = queue_appends(&commit, "again", 1);
        let_others_run().await;
        assert_eq!(sizes(), [1, 4, 4, 1, 1]);
        all_appended(again).await;
    }
}
