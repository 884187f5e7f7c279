//! The per-stream command pipeline: what keeps an on-sale rush from collapsing.
//!
//! The optimistic path (load → decide → append → on conflict start again) turns a thousand
//! people reserving the same event into a thousand loads and mostly failed appends. Here every
//! stream that is receiving commands has one **decider**: a task that owns the stream's
//! aggregate in memory. Commands for the stream queue to it; it takes whatever is queued (up to
//! [`EngineOptions::max_batch`]), decides the commands one after another against its state, and
//! appends the facts of all the accepted ones in one call to
//! [`EventStore::append_all`](marquee_store::EventStore::append_all): one transaction, one
//! fsync, expected revisions chained `r`, `r + k₁`, `r + k₁ + k₂`, … Every caller gets its own
//! answer: a refused command is answered at once and changes nothing for the others.
//!
//! **Several processes.** Nothing here assumes this process is the only writer. Before each
//! batch the decider reads what the log holds beyond its revision, so refusals and no-ops are
//! decided on the log as it is, not as this process last saw it. Every append still carries
//! its expected revision. When another process appended first, the links of the
//! chain from the first refused one on come back `WrongExpectedRevision`; the decider drops its
//! state, reloads the stream (snapshot + tail) and decides those commands again, up to
//! [`MAX_ATTEMPTS`] times, after which they are answered `409 conflict`.
//!
//! **The cache.** A decider that has had nothing to do for [`EngineOptions::idle`] removes
//! itself, hands its aggregate (with its revision) to a least-recently-used cache bounded by
//! [`EngineOptions::cache_bytes`] (sizes from [`Aggregate::size`]), and stops. The next decider of that stream starts
//! from the cached aggregate after reading whatever the log holds beyond its revision (the
//! revision check: usually one indexed query that returns nothing), or from the snapshot and
//! tail when the cache has no entry. Memory is therefore bounded by the cache plus the streams
//! that received commands in the last `idle` period.
//!
//! **Personal data.** The chain is sealed just before the append ([`crate::personal`]): the
//! aggregate in memory keeps plaintext. An erasure declares every aggregate in memory stale
//! (`Engine::forget_personal_data`): the cache is emptied, and a running decider reloads its
//! aggregate from the log before its next batch. A command whose facts cannot be sealed (they would
//! record new data of an erased person) is answered `409 person_erased`; the links before it
//! are appended, the ones after it decided again, like links refused by a concurrent append.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use marquee_store::{Appended, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::engine::{
    Accepted, Aggregate, Answer, CommandContext, EngineOptions, Loaded, Log, MAX_ATTEMPTS,
    Unsealed, append_request, decide_all, set_position,
};
use crate::error::ApiError;

/// Commands a stream's queue holds before callers wait at the door.
const QUEUE: usize = 4096;

/// Builds an accepted command's answer from its facts (again, if it is decided again).
pub(crate) type AnswerFn<F, S> = Box<dyn Fn(&[F], &S) -> Answer + Send + Sync>;

/// Checks the aggregate before a job's commands are decided (authorization that depends on it).
pub(crate) type GuardFn<S> = Box<dyn Fn(&S) -> Result<(), ApiError> + Send + Sync>;

type Outcome<F> = Result<(Accepted<F>, Answer), ApiError>;

/// One caller's commands, waiting for their decider.
struct Job<A: Aggregate> {
    commands: Vec<A::Command>,
    context: CommandContext,
    guard: GuardFn<A::State>,
    answer: AnswerFn<A::Fact, A::State>,
    reply: oneshot::Sender<Outcome<A::Fact>>,
}

impl<A: Aggregate> Job<A> {
    fn finish(self, outcome: Outcome<A::Fact>) {
        // The caller may have gone (client disconnected); what was appended stands.
        let _ = self.reply.send(outcome);
    }
}

/// A job that was decided and whose answer waits for the append.
struct Decided<A: Aggregate> {
    job: Job<A>,
    facts: Vec<A::Fact>,
    answer: Answer,
}

/// A running decider: its generation (telling a stream's successive deciders apart) and its
/// queue.
struct Running<A: Aggregate> {
    id: u64,
    queue: mpsc::Sender<Job<A>>,
}

/// The deciders and the cache of one aggregate kind.
pub struct Pipelines<A: Aggregate> {
    log: Arc<Log>,
    options: EngineOptions,
    /// The running deciders, by stream.
    deciders: Mutex<HashMap<String, Running<A>>>,
    cache: Mutex<Lru<Loaded<A::State>>>,
    next_id: AtomicU64,
    /// How many times the aggregates in memory were declared stale (an erasure: they may hold
    /// the erased person's data in plaintext). Changed under the cache's lock.
    generation: AtomicU64,
}

impl<A: Aggregate> Pipelines<A> {
    pub(crate) fn new(log: Arc<Log>, options: &EngineOptions) -> Self {
        Self {
            log,
            options: options.clone(),
            deciders: Mutex::default(),
            cache: Mutex::new(Lru::new(options.cache_bytes)),
            next_id: AtomicU64::new(0),
            generation: AtomicU64::new(0),
        }
    }

    /// Drops every aggregate held in memory: the idle ones at once, a running decider's before
    /// its next batch (and it does not hand it to the cache). They are loaded from the log again,
    /// opened with the keys as they are then: for erasure.
    pub(crate) fn clear_cache(&self) {
        let mut cache = lock(&self.cache);
        self.generation.fetch_add(1, Ordering::SeqCst);
        cache.clear();
    }

    /// Idle aggregates in the cache, and their approximate bytes.
    pub(crate) fn cached(&self) -> (usize, usize) {
        let cache = lock(&self.cache);
        (cache.len(), cache.weight)
    }

    /// Queues `commands` for `stream`'s decider (starting one if none runs) and waits for their
    /// answer.
    pub(crate) async fn submit(
        self: &Arc<Self>,
        stream: &str,
        commands: Vec<A::Command>,
        context: CommandContext,
        guard: GuardFn<A::State>,
        answer: AnswerFn<A::Fact, A::State>,
    ) -> Outcome<A::Fact> {
        let (reply, answered) = oneshot::channel();
        let mut job = Job {
            commands,
            context,
            guard,
            answer,
            reply,
        };
        loop {
            let decider = self.decider(stream);
            match decider.send(job).await {
                Ok(()) => break,
                // That decider retired between the lookup and the send; the next lookup finds
                // its successor (or starts one).
                Err(mpsc::error::SendError(returned)) => job = returned,
            }
        }
        answered.await.unwrap_or_else(|_| {
            Err(ApiError::Internal(
                "the stream's decider stopped before answering".into(),
            ))
        })
    }

    /// The running decider of `stream`, or a new one.
    fn decider(self: &Arc<Self>, stream: &str) -> mpsc::Sender<Job<A>> {
        let mut deciders = lock(&self.deciders);
        if let Some(running) = deciders.get(stream)
            && !running.queue.is_closed()
        {
            return running.queue.clone();
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, queue) = mpsc::channel(QUEUE);
        deciders.insert(
            stream.to_owned(),
            Running {
                id,
                queue: sender.clone(),
            },
        );
        tokio::spawn(self.clone().run_decider(stream.to_owned(), id, queue));
        sender
    }

    /// One stream's decider: batches of queued commands until idle, then hands its aggregate
    /// to the cache.
    async fn run_decider(
        self: Arc<Self>,
        stream: String,
        id: u64,
        mut queue: mpsc::Receiver<Job<A>>,
    ) {
        let (mut generation, mut state) = {
            let mut cache = lock(&self.cache);
            (self.generation.load(Ordering::SeqCst), cache.take(&stream))
        };
        let mut jobs = Vec::with_capacity(self.options.max_batch);
        let mut retiring = false;
        loop {
            let received = tokio::select! {
                received = queue.recv_many(&mut jobs, self.options.max_batch.max(1)) => received,
                () = tokio::time::sleep(self.options.idle), if !retiring => {
                    // Leave the map first so no new caller finds this decider, then close the
                    // queue; what is still queued is decided below before the task ends.
                    let mut deciders = lock(&self.deciders);
                    if deciders.get(&stream).is_some_and(|running| running.id == id) {
                        deciders.remove(&stream);
                    }
                    drop(deciders);
                    queue.close();
                    retiring = true;
                    continue;
                }
            };
            if received == 0 {
                break;
            }
            // The aggregate is checked against the log before every batch, not only when the
            // decider starts: another process (or another path of this one) may have appended
            // since, and a refusal or a no-op is answered from this state without an append
            // that would notice. Usually one indexed read that finds nothing; in a rush it is
            // one read per batch of up to `max_batch` commands.
            let current = self.generation.load(Ordering::SeqCst);
            if current != generation {
                // Declared stale since it was loaded (an erasure): read it again.
                state = None;
                generation = current;
            }
            state = self.ready(&stream, state).await;
            state = self
                .decide_batch(&stream, state, std::mem::take(&mut jobs))
                .await;
        }
        if let Some(loaded) = state {
            let size = A::size(&loaded.state);
            let mut cache = lock(&self.cache);
            if self.generation.load(Ordering::SeqCst) == generation {
                cache.put(stream, loaded, size);
            }
        }
    }

    /// The aggregate brought up to the log's end: a cached one is caught up, a missing one
    /// loaded. `None` (logged) when the log cannot be read; the next batch tries again.
    async fn ready(
        &self,
        stream: &str,
        state: Option<Loaded<A::State>>,
    ) -> Option<Loaded<A::State>> {
        let loaded = match state {
            Some(cached) => self.log.catch_up::<A>(stream, cached).await,
            None => self.log.load::<A>(stream).await,
        };
        loaded
            .inspect_err(|e| tracing::warn!(stream, error = %e, "could not load the stream"))
            .ok()
    }

    /// Decides `jobs` in order against the aggregate, appends the accepted ones' facts as one
    /// chain and answers every job. Returns the aggregate as the log now has it, or `None` when
    /// it must be reloaded.
    async fn decide_batch(
        &self,
        stream: &str,
        mut state: Option<Loaded<A::State>>,
        mut jobs: Vec<Job<A>>,
    ) -> Option<Loaded<A::State>> {
        for _ in 0..MAX_ATTEMPTS {
            let state = match state.take() {
                Some(loaded) => Some(loaded),
                None => self.ready(stream, None).await,
            };
            let Some(mut loaded) = state else {
                for job in jobs {
                    job.finish(Err(ApiError::Internal(format!("could not load {stream}"))));
                }
                return None;
            };
            let before = loaded.revision;
            let (decided, unsealed) = self.decide_jobs(stream, &mut loaded, jobs);
            let links = unsealed.len();
            let (requests, refused) = self.log.seal_chain(unsealed).await;
            let mut outcomes: Vec<Link> = if requests.is_empty() {
                Vec::new()
            } else {
                self.log
                    .store
                    .append_all(requests)
                    .await
                    .into_iter()
                    .map(Link::from)
                    .collect()
            };
            if let Some(refused) = refused {
                // The links after the refused one were decided on a state that holds its facts.
                outcomes.push(Link::Failed(refused));
                outcomes.resize_with(links, || Link::Moved);
            }
            let chain = answer_jobs(decided, outcomes, loaded.position);
            if !chain.broken {
                if let Some(last) = chain.last {
                    loaded.position = last.last_position;
                    if self.log.snapshot_due(before, last.revision) {
                        // Off the decider's path: serializing and writing a large aggregate
                        // would hold up every command queued behind it. The store keeps the
                        // newest snapshot whatever order they arrive in.
                        let log = self.log.clone();
                        let stream = stream.to_owned();
                        let state = loaded.state.clone();
                        tokio::spawn(async move {
                            log.save_snapshot_logged::<A>(&stream, &last, &state).await;
                        });
                    }
                }
                return Some(loaded);
            }
            // Part of the chain was refused: the state holds facts that are not in the log.
            // Reload it and decide again what is left.
            if chain.retry.is_empty() {
                return None;
            }
            jobs = chain.retry;
            tracing::debug!(
                stream,
                left = jobs.len(),
                "stream moved under the decider; deciding again"
            );
        }
        for job in jobs {
            job.finish(Err(ApiError::Contention));
        }
        None
    }

    /// Decides each job against `loaded.state` (which takes in the accepted facts) and builds
    /// the chained appends. Refused jobs are answered here.
    fn decide_jobs(
        &self,
        stream: &str,
        loaded: &mut Loaded<A::State>,
        jobs: Vec<Job<A>>,
    ) -> (Vec<Decided<A>>, Vec<Unsealed>) {
        let now = self.log.now();
        let mut revision = loaded.revision;
        let mut decided = Vec::with_capacity(jobs.len());
        let mut requests = Vec::with_capacity(jobs.len());
        for job in jobs {
            let outcome = (job.guard)(&loaded.state)
                .and_then(|()| decide_all::<A>(&mut loaded.state, &job.commands, now));
            match outcome {
                Err(refused) => job.finish(Err(refused)),
                Ok(facts) => {
                    let answer = (job.answer)(&facts, &loaded.state);
                    if !facts.is_empty() {
                        requests.push(append_request::<A>(
                            stream,
                            revision,
                            &facts,
                            &loaded.state,
                            &job.context,
                            &answer,
                            now,
                        ));
                        let added = facts.len() as u64;
                        revision = Some(revision.map_or(added - 1, |r| r + added));
                    }
                    decided.push(Decided { job, facts, answer });
                }
            }
        }
        loaded.revision = revision;
        (decided, requests)
    }
}

/// How one link of a chain went.
enum Link {
    /// Appended.
    Appended(Appended),
    /// Not appended because the stream moved (or a link before it was refused): decide again.
    Moved,
    /// Refused for good: the caller hears this.
    Failed(ApiError),
}

impl From<Result<Appended, StoreError>> for Link {
    fn from(outcome: Result<Appended, StoreError>) -> Self {
        match outcome {
            Ok(appended) => Link::Appended(appended),
            Err(StoreError::WrongExpectedRevision { .. }) => Link::Moved,
            Err(e) => Link::Failed(e.into()),
        }
    }
}

/// How a chain of appends went.
struct ChainOutcome<A: Aggregate> {
    /// Jobs to decide again: those refused with `WrongExpectedRevision`, and those that changed
    /// nothing after a refusal (their decision saw facts that are not in the log).
    retry: Vec<Job<A>>,
    /// The last append that stood.
    last: Option<Appended>,
    /// Whether any link was refused (the decider's state is then ahead of the log).
    broken: bool,
}

/// Answers the decided jobs from the chain's outcomes (one per job with facts, in order).
/// `position` is the stream's last position before the chain.
fn answer_jobs<A: Aggregate>(
    decided: Vec<Decided<A>>,
    outcomes: Vec<Link>,
    mut position: u64,
) -> ChainOutcome<A> {
    let mut outcomes = outcomes.into_iter();
    let mut chain = ChainOutcome {
        retry: Vec::new(),
        last: None,
        broken: false,
    };
    for Decided {
        job,
        facts,
        mut answer,
    } in decided
    {
        if facts.is_empty() {
            // Changed nothing: it stands if everything decided before it does.
            if chain.broken {
                chain.retry.push(job);
            } else {
                set_position(&mut answer.body, position);
                job.finish(Ok((Accepted { facts, position }, answer)));
            }
            continue;
        }
        match outcomes.next() {
            Some(Link::Appended(appended)) => {
                position = appended.last_position;
                chain.last = Some(appended);
                set_position(&mut answer.body, position);
                job.finish(Ok((Accepted { facts, position }, answer)));
            }
            Some(Link::Moved) => {
                chain.broken = true;
                chain.retry.push(job);
            }
            Some(Link::Failed(e)) => {
                chain.broken = true;
                job.finish(Err(e));
            }
            None => {
                chain.broken = true;
                job.finish(Err(ApiError::Internal(
                    "the store did not answer this append".into(),
                )));
            }
        }
    }
    chain
}

/// A least-recently-used map bounded by the total weight of its entries.
struct Lru<V> {
    budget: usize,
    weight: usize,
    entries: HashMap<String, Entry<V>>,
    /// Last use → key; the first entry is the least recently used.
    order: BTreeMap<u64, String>,
    tick: u64,
}

struct Entry<V> {
    tick: u64,
    weight: usize,
    value: V,
}

impl<V> Lru<V> {
    fn new(budget: usize) -> Self {
        Self {
            budget,
            weight: 0,
            entries: HashMap::new(),
            order: BTreeMap::new(),
            tick: 0,
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
        self.weight = 0;
    }

    /// Removes and returns the entry of `key`.
    fn take(&mut self, key: &str) -> Option<V> {
        let entry = self.entries.remove(key)?;
        self.order.remove(&entry.tick);
        self.weight -= entry.weight;
        Some(entry.value)
    }

    /// Inserts (or replaces) `key`, then drops the least recently used entries until the total
    /// weight fits the budget. An entry heavier than the whole budget is not kept.
    fn put(&mut self, key: String, value: V, weight: usize) {
        self.take(&key);
        if weight > self.budget {
            return;
        }
        self.tick += 1;
        self.order.insert(self.tick, key.clone());
        self.entries.insert(
            key,
            Entry {
                tick: self.tick,
                weight,
                value,
            },
        );
        self.weight += weight;
        while self.weight > self.budget {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some(entry) = self.entries.remove(&oldest) {
                self.weight -= entry.weight;
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::Lru;

    #[test]
    fn the_least_recently_used_entries_go_first_when_the_budget_is_exceeded() {
        let mut lru = Lru::new(10);
        lru.put("a".into(), 1, 4);
        lru.put("b".into(), 2, 4);
        assert_eq!(lru.take("a"), Some(1));
        lru.put("a".into(), 1, 4);
        lru.put("c".into(), 3, 4);
        assert_eq!((lru.len(), lru.weight), (2, 8));
        assert_eq!(lru.take("b"), None, "b was used least recently");
        lru.put("d".into(), 4, 7);
        assert_eq!(lru.take("a"), None, "a went to make room for d");
        assert_eq!(lru.take("c"), None, "c too: 4 + 4 + 7 > 10");
        assert_eq!(lru.take("d"), Some(4));
        assert_eq!(lru.weight, 0);
    }

    #[test]
    fn an_entry_heavier_than_the_budget_is_not_kept() {
        let mut lru = Lru::new(10);
        lru.put("a".into(), 1, 3);
        lru.put("huge".into(), 2, 11);
        assert_eq!(lru.take("huge"), None);
        assert_eq!(lru.take("a"), Some(1), "nothing was evicted for it");
    }
}
