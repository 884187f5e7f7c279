//! Load → decide → append, the one path every command takes.
//!
//! By default commands for one stream queue to that stream's decider ([`crate::pipeline`]),
//! which keeps the aggregate in memory and commits the facts of many commands in one
//! transaction, so a rush on one event does not turn into a storm of optimistic-concurrency
//! retries. Other processes may still append to the same stream: every append carries the
//! expected revision, and on `WrongExpectedRevision` the stream is reloaded and the commands
//! decided again. [`CommandMode::Naive`] is the textbook path, kept as the benchmarks' baseline.
//!
//! Personal data is sealed on the way into the log and opened on the way out
//! ([`crate::personal`], with the vault given by [`Engine::with_vault`]): every append is built
//! as an [`Unsealed`] request and sealed just before it is written, every page of facts and
//! every snapshot is opened before it is decoded. The aggregates in memory hold plaintext.

use std::sync::Arc;

use axum::http::StatusCode;
use marquee_auth::Vault;
use marquee_domain::event::{self, Event, EventCommand, EventError, EventFact};
use marquee_domain::organization::{
    self, Organization, OrganizationCommand, OrganizationError, OrganizationFact,
};
use marquee_domain::user::{self, User, UserCommand, UserError, UserFact};
use marquee_domain::venue::{self, Venue, VenueCommand, VenueError, VenueFact};
use marquee_domain::{FactCodec, Timestamp, VenueId};
use marquee_store::{
    AppendRequest, Appended, EventStore, ExpectedRevision, FactMetadata, IdempotencyWrite,
    IdempotentResponse, NewFact, RecordedFact, Snapshot, StoreError,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::error::ApiError;
use crate::personal::{self, Document, Shape, Unsealable};
use crate::pipeline::Pipelines;

/// How often a command is re-decided when another process keeps appending to its stream first.
pub(crate) const MAX_ATTEMPTS: usize = 16;
/// Facts read per page while loading a stream.
const PAGE: usize = 1000;

/// One aggregate's pure functions, so the engine can run any of them.
pub trait Aggregate: Sized + 'static {
    /// Version of the state's serialized shape; snapshots of another version are ignored.
    const STATE_VERSION: u32;
    type State: Default + Clone + Send + Sync + Serialize + DeserializeOwned + 'static;
    type Fact: FactCodec + Send + Sync + 'static;
    type Command: Clone + Send + 'static;
    type Error: Into<ApiError>;
    /// This aggregate's deciders in `engine`.
    fn pipelines(engine: &Engine) -> &Arc<Pipelines<Self>>;
    fn decide(
        state: &Self::State,
        command: Self::Command,
        now: Timestamp,
    ) -> Result<Vec<Self::Fact>, Self::Error>;
    fn evolve(state: Self::State, fact: &Self::Fact) -> Self::State;
    /// Roughly the bytes a state occupies, for the size-bounded aggregate cache.
    fn size(state: &Self::State) -> usize;
    /// The e-mail address of the person whose personal data `fact` holds, when the fact does
    /// not name them itself (answers given for a registration, a changed name); `state` has
    /// the fact folded in. See [`crate::personal`].
    fn subject_of(_state: &Self::State, _fact: &Self::Fact) -> Option<String> {
        None
    }
    /// The e-mail address of the person whose personal data the answer to a command that
    /// produced `facts` may hold (the check-in answer names the attendee); `state` has the
    /// facts folded in.
    fn answer_subject(_state: &Self::State, _facts: &[Self::Fact]) -> Option<String> {
        None
    }
    /// A state read back from a snapshot, with what is derived and not stored filled in.
    fn restored(state: Self::State) -> Self::State {
        state
    }
}

/// The venue aggregate, for the engine.
pub struct VenueAggregate;
impl Aggregate for VenueAggregate {
    const STATE_VERSION: u32 = venue::STATE_SCHEMA_VERSION;
    type State = Venue;
    type Fact = VenueFact;
    type Command = VenueCommand;
    type Error = VenueError;
    fn decide(s: &Venue, c: VenueCommand, now: Timestamp) -> Result<Vec<VenueFact>, VenueError> {
        venue::decide(s, c, now)
    }
    fn evolve(s: Venue, f: &VenueFact) -> Venue {
        venue::evolve(s, f)
    }
    fn size(s: &Venue) -> usize {
        s.approximate_size()
    }
    fn pipelines(engine: &Engine) -> &Arc<Pipelines<Self>> {
        &engine.venues
    }
}

/// The event aggregate, for the engine.
pub struct EventAggregate;
impl Aggregate for EventAggregate {
    const STATE_VERSION: u32 = event::STATE_SCHEMA_VERSION;
    type State = Event;
    type Fact = EventFact;
    type Command = EventCommand;
    type Error = EventError;
    fn decide(s: &Event, c: EventCommand, now: Timestamp) -> Result<Vec<EventFact>, EventError> {
        event::decide(s, c, now)
    }
    fn evolve(s: Event, f: &EventFact) -> Event {
        event::evolve(s, f)
    }
    fn size(s: &Event) -> usize {
        s.approximate_size()
    }
    fn pipelines(engine: &Engine) -> &Arc<Pipelines<Self>> {
        &engine.events
    }
    fn subject_of(s: &Event, f: &EventFact) -> Option<String> {
        match f {
            EventFact::AnswersGiven {
                registration_id, ..
            } => s
                .registrations
                .get(registration_id)
                .map(|r| r.attendee.email.clone()),
            _ => None,
        }
    }
    fn answer_subject(s: &Event, facts: &[EventFact]) -> Option<String> {
        facts.iter().find_map(|fact| {
            let registration_id = match fact {
                EventFact::RegistrationConfirmed {
                    registration_id, ..
                }
                | EventFact::SeatsHeld {
                    registration_id, ..
                }
                | EventFact::AnswersGiven {
                    registration_id, ..
                }
                | EventFact::HoldConfirmed {
                    registration_id, ..
                }
                | EventFact::RegistrationCancelled {
                    registration_id, ..
                }
                | EventFact::TicketCheckedIn {
                    registration_id, ..
                }
                | EventFact::CheckInReverted {
                    registration_id, ..
                } => registration_id,
                _ => return None,
            };
            s.registrations
                .get(registration_id)
                .map(|r| r.attendee.email.clone())
        })
    }
    fn restored(mut s: Event) -> Event {
        s.recount_seats_by_attendee();
        s
    }
}

/// The user aggregate, for the engine.
pub struct UserAggregate;
impl Aggregate for UserAggregate {
    const STATE_VERSION: u32 = user::STATE_SCHEMA_VERSION;
    type State = User;
    type Fact = UserFact;
    type Command = UserCommand;
    type Error = UserError;
    fn decide(s: &User, c: UserCommand, now: Timestamp) -> Result<Vec<UserFact>, UserError> {
        user::decide(s, c, now)
    }
    fn evolve(s: User, f: &UserFact) -> User {
        user::evolve(s, f)
    }
    fn size(s: &User) -> usize {
        s.approximate_size()
    }
    fn pipelines(engine: &Engine) -> &Arc<Pipelines<Self>> {
        &engine.users
    }
    fn subject_of(s: &User, f: &UserFact) -> Option<String> {
        match f {
            UserFact::UserProfileChanged { .. } => Some(s.email.clone()),
            _ => None,
        }
    }
    fn answer_subject(s: &User, _facts: &[UserFact]) -> Option<String> {
        s.exists().then(|| s.email.clone())
    }
}

/// The organization aggregate, for the engine.
pub struct OrganizationAggregate;
impl Aggregate for OrganizationAggregate {
    const STATE_VERSION: u32 = organization::STATE_SCHEMA_VERSION;
    type State = Organization;
    type Fact = OrganizationFact;
    type Command = OrganizationCommand;
    type Error = OrganizationError;
    fn decide(
        s: &Organization,
        c: OrganizationCommand,
        now: Timestamp,
    ) -> Result<Vec<OrganizationFact>, OrganizationError> {
        organization::decide(s, c, now)
    }
    fn evolve(s: Organization, f: &OrganizationFact) -> Organization {
        organization::evolve(s, f)
    }
    fn size(s: &Organization) -> usize {
        s.approximate_size()
    }
    fn pipelines(engine: &Engine) -> &Arc<Pipelines<Self>> {
        &engine.organizations
    }
}

/// An aggregate's state as loaded from its stream.
pub struct Loaded<S> {
    pub state: S,
    /// Revision of the stream's last fact; `None` for a stream with no facts.
    pub revision: Option<u64>,
    /// Position of the stream's last fact; 0 for a stream with no facts.
    pub position: u64,
}

/// What an accepted command produced.
pub struct Accepted<F> {
    /// The facts appended (empty when the command changed nothing).
    pub facts: Vec<F>,
    /// Position of the last fact appended, or of the stream's last fact when nothing was.
    pub position: u64,
}

/// What the answer to an accepted command looks like, decided before the append so that it can
/// be remembered under an idempotency key in the same transaction.
pub struct Answer {
    pub status: StatusCode,
    /// A JSON object; `position` is filled in after the append.
    pub body: Value,
}

/// Who issued a command and how to remember its answer.
#[derive(Debug, Clone)]
pub struct CommandContext {
    /// The request id: every fact of the command carries it.
    pub correlation_id: Uuid,
    /// Who issued it: `user:<id>`, `token:<id>`, `system:<service>`.
    pub actor: Option<String>,
    /// The organization it acted for (the owner of the venue or event), recorded in every fact.
    pub organization: Option<String>,
    /// Idempotency key and request hash, when the client sent a key.
    pub idempotency: Option<(String, String)>,
}

/// How commands reach the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommandMode {
    /// Commands for one stream queue to one in-memory decider holding the cached aggregate,
    /// which decides them one after another and appends what it accepted in one transaction
    /// ([`crate::pipeline`]).
    #[default]
    Pipeline,
    /// Every command on its own: load the stream, decide, append with the expected revision,
    /// and on a concurrent append start again. The textbook way, kept as the benchmarks'
    /// baseline.
    Naive,
}

impl std::str::FromStr for CommandMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pipeline" => Ok(Self::Pipeline),
            "naive" => Ok(Self::Naive),
            other => Err(format!(
                "unknown command mode {other:?}; expected pipeline or naive"
            )),
        }
    }
}

/// Tuning of an [`Engine`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineOptions {
    /// How commands reach the log.
    pub mode: CommandMode,
    /// Roughly how many bytes of idle aggregates the cache keeps per aggregate kind (least
    /// recently used ones are dropped first; one larger than this is not kept). Aggregates
    /// whose decider is running are held by the decider, outside this budget.
    pub cache_bytes: usize,
    /// How long a stream's decider waits for more commands before it hands its aggregate back
    /// to the cache and stops.
    pub idle: std::time::Duration,
    /// The most commands a decider decides and appends as one batch.
    pub max_batch: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            mode: CommandMode::Pipeline,
            cache_bytes: 32 * 1024 * 1024,
            idle: std::time::Duration::from_secs(1),
            max_batch: 256,
        }
    }
}

/// The log plus the clock and the vault: what loading, deciding and snapshotting need, shared
/// by the engine and its deciders.
pub(crate) struct Log {
    pub(crate) store: Arc<dyn EventStore>,
    clock: Arc<dyn Fn() -> Timestamp + Send + Sync>,
    /// Seals and opens personal data; `None` writes and reads it as it is.
    vault: Option<Vault>,
}

/// How many locks the venues' scheduling decisions are spread over in one process.
const VENUE_TURNS: usize = 64;

/// Which of the [`VENUE_TURNS`] locks a venue's scheduling takes.
fn venue_turn(venue_id: VenueId) -> usize {
    (venue_id.0.as_u128() % VENUE_TURNS as u128) as usize
}

/// Runs commands against the log.
pub struct Engine {
    log: Arc<Log>,
    options: EngineOptions,
    mode: CommandMode,
    /// One turn at a time per venue for scheduling decisions (see
    /// [`Engine::execute_scheduled`]), striped over a fixed number of locks.
    venue_turns: Vec<tokio::sync::Mutex<()>>,
    venues: Arc<Pipelines<VenueAggregate>>,
    events: Arc<Pipelines<EventAggregate>>,
    users: Arc<Pipelines<UserAggregate>>,
    organizations: Arc<Pipelines<OrganizationAggregate>>,
}

impl Engine {
    /// An engine over `store` reading time from `clock`, with default options.
    pub fn new(
        store: Arc<dyn EventStore>,
        clock: Arc<dyn Fn() -> Timestamp + Send + Sync>,
    ) -> Self {
        Self::with_options(store, clock, EngineOptions::default())
    }

    /// An engine over `store` reading time from `clock`.
    pub fn with_options(
        store: Arc<dyn EventStore>,
        clock: Arc<dyn Fn() -> Timestamp + Send + Sync>,
        options: EngineOptions,
    ) -> Self {
        Self::over(
            Log {
                store,
                clock,
                vault: None,
            },
            options,
        )
    }

    /// The same engine sealing personal data with `vault` before it reaches the log and
    /// opening it when read back (see [`crate::personal`]). Call it before any command runs:
    /// the deciders and caches start afresh.
    pub fn with_vault(self, vault: Vault) -> Self {
        let log = Log {
            store: self.log.store.clone(),
            clock: self.log.clock.clone(),
            vault: Some(vault),
        };
        Self::over(log, self.options)
    }

    fn over(log: Log, options: EngineOptions) -> Self {
        let log = Arc::new(log);
        Self {
            mode: options.mode,
            venue_turns: (0..VENUE_TURNS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            venues: Arc::new(Pipelines::new(log.clone(), &options)),
            events: Arc::new(Pipelines::new(log.clone(), &options)),
            users: Arc::new(Pipelines::new(log.clone(), &options)),
            organizations: Arc::new(Pipelines::new(log.clone(), &options)),
            log,
            options,
        }
    }

    /// The vault personal data is sealed with, if any.
    pub fn vault(&self) -> Option<&Vault> {
        self.log.vault.as_ref()
    }

    /// Opens the sealed personal data in `facts` as read from the log, in place (one key query
    /// for the whole page): for readers of the log outside the engine.
    pub async fn open_facts(&self, facts: &mut [RecordedFact]) -> Result<(), ApiError> {
        self.log.open_facts(facts).await
    }

    /// Opens the sealed personal data anywhere in `value`, in place (a remembered answer).
    pub async fn open_personal(&self, value: &mut Value) -> Result<(), ApiError> {
        match &self.log.vault {
            Some(vault) => personal::open(vault, [value]).await,
            None => Ok(()),
        }
    }

    /// The log this engine writes to.
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.log.store
    }

    /// The current time, from the configured clock.
    pub fn now(&self) -> Timestamp {
        self.log.now()
    }

    /// How commands reach the log.
    pub fn mode(&self) -> CommandMode {
        self.mode
    }

    /// Drops the aggregates of every kind held in memory after an erasure, so no copy of the
    /// erased person's data outlives it in this process: the idle ones at once, a running
    /// decider's before its next batch. They are loaded again (with the data unreadable) when
    /// next needed.
    pub async fn forget_personal_data(&self) {
        self.venues.clear_cache();
        self.events.clear_cache();
        self.users.clear_cache();
        self.organizations.clear_cache();
    }

    /// Idle aggregates held by the cache, of every kind.
    pub fn cached_aggregates(&self) -> usize {
        self.venues.cached().0 + self.events.cached().0
    }

    /// Approximate bytes of the idle aggregates held by the cache, of every kind.
    pub fn cached_bytes(&self) -> usize {
        self.venues.cached().1 + self.events.cached().1
    }

    /// Folds a stream's facts into its aggregate's state, starting from the stream's snapshot
    /// when there is a usable one.
    pub async fn load<A: Aggregate>(&self, stream: &str) -> Result<Loaded<A::State>, ApiError> {
        self.log.load::<A>(stream).await
    }

    /// Loads `stream` and snapshots it now, whatever the interval (tools and benchmarks).
    pub async fn take_snapshot<A: Aggregate>(&self, stream: &str) -> Result<(), ApiError> {
        let loaded = self.load::<A>(stream).await?;
        if let Some(revision) = loaded.revision {
            self.log
                .save_snapshot::<A>(stream, revision, loaded.position, &loaded.state)
                .await?;
        }
        Ok(())
    }

    /// Decides `commands` in turn (each seeing the facts of those before it) against the
    /// stream's current state and appends all their facts atomically with the expected
    /// revision; on a concurrent append by another process, decides them again. `answer` builds
    /// the success body from the facts (and the state they leave) before they are appended. How the commands get there
    /// depends on the [`CommandMode`].
    pub async fn execute<A: Aggregate>(
        &self,
        stream: &str,
        commands: Vec<A::Command>,
        context: &CommandContext,
        answer: impl Fn(&[A::Fact], &A::State) -> Answer + Send + Sync + 'static,
    ) -> Result<(Accepted<A::Fact>, Answer), ApiError> {
        self.execute_guarded::<A>(stream, commands, context, |_| Ok(()), answer)
            .await
    }

    /// [`Engine::execute`], but `guard` first checks the aggregate as it is when the commands
    /// are decided (inside the stream's decider, so without a load of its own): authorization
    /// that depends on the aggregate, e.g. "only the registration's holder may cancel it". A
    /// refusal of the guard is the command's answer; nothing is appended.
    pub async fn execute_guarded<A: Aggregate>(
        &self,
        stream: &str,
        commands: Vec<A::Command>,
        context: &CommandContext,
        guard: impl Fn(&A::State) -> Result<(), ApiError> + Send + Sync + 'static,
        answer: impl Fn(&[A::Fact], &A::State) -> Answer + Send + Sync + 'static,
    ) -> Result<(Accepted<A::Fact>, Answer), ApiError> {
        match self.mode {
            CommandMode::Pipeline => {
                A::pipelines(self)
                    .submit(
                        stream,
                        commands,
                        context.clone(),
                        Box::new(guard),
                        Box::new(answer),
                    )
                    .await
            }
            CommandMode::Naive => {
                self.execute_naive::<A>(stream, commands, context, guard, answer)
                    .await
            }
        }
    }

    /// The baseline: load → decide → append, and again from the start on a conflict.
    async fn execute_naive<A: Aggregate>(
        &self,
        stream: &str,
        commands: Vec<A::Command>,
        context: &CommandContext,
        guard: impl Fn(&A::State) -> Result<(), ApiError>,
        answer: impl Fn(&[A::Fact], &A::State) -> Answer,
    ) -> Result<(Accepted<A::Fact>, Answer), ApiError> {
        for _ in 0..MAX_ATTEMPTS {
            let loaded = self.load::<A>(stream).await?;
            guard(&loaded.state)?;
            let now = self.now();
            let mut state = loaded.state;
            let facts = decide_all::<A>(&mut state, &commands, now)?;
            let mut reply = answer(&facts, &state);
            if facts.is_empty() {
                set_position(&mut reply.body, loaded.position);
                let position = loaded.position;
                return Ok((Accepted { facts, position }, reply));
            }
            let request = append_request::<A>(
                stream,
                loaded.revision,
                &facts,
                &state,
                context,
                &reply,
                now,
            );
            let request = self.log.seal(request).await?;
            match self.log.store.append(request).await {
                Ok(appended) => {
                    self.log
                        .maybe_snapshot::<A>(stream, loaded.revision, &appended, &state)
                        .await;
                    set_position(&mut reply.body, appended.last_position);
                    let position = appended.last_position;
                    return Ok((Accepted { facts, position }, reply));
                }
                Err(StoreError::WrongExpectedRevision { .. }) => {
                    tracing::debug!(stream, "concurrent append; deciding again");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::Contention)
    }
}

/// An event command that also changes its venue's calendar: which venue, and the commands for
/// each stream (decided against both streams as the log has them).
pub struct Scheduling {
    /// The venue whose calendar changes; `None` when the venue is unknown (the event's own
    /// decision then refuses the command).
    pub venue_id: Option<VenueId>,
    /// What the venue is asked (`BookEvent`, `ReleaseEvent`).
    pub venue: Vec<VenueCommand>,
    /// What the event is asked.
    pub event: Vec<EventCommand>,
}

impl Engine {
    /// Runs event commands together with the venue commands that keep the venue's calendar
    /// right (drafting, rescheduling and cancelling events): loads the event and its venue,
    /// decides both, and appends both streams' facts in ONE atomic store transaction, each with
    /// its expected revision (see `marquee_domain::venue` for why this keeps "two events at
    /// one venue never overlap" true under any interleaving). When either stream moved
    /// meanwhile, everything is loaded and decided again.
    ///
    /// `plan` sees the event as the log has it and says which venue to load; `commands` then
    /// sees both and returns what to decide. Event commands are decided first, so a refusal
    /// of the event (a validation error, an unknown venue) is what the caller hears.
    pub async fn execute_scheduled(
        &self,
        event_stream: &str,
        plan: impl Fn(&Event) -> Result<Option<VenueId>, ApiError>,
        commands: impl Fn(&Event, &Venue) -> Result<Scheduling, ApiError>,
        context: &CommandContext,
        answer: impl Fn(&[EventFact], &Event) -> Answer,
    ) -> Result<(Accepted<EventFact>, Answer), ApiError> {
        // Scheduling at one venue is serialized inside this process, so concurrent drafts at a
        // busy venue queue here instead of racing for the venue's revision; across processes
        // the expected revisions (and the retries below) still decide.
        let mut _venue_turn = None;
        for _ in 0..MAX_ATTEMPTS {
            let event = self.load::<EventAggregate>(event_stream).await?;
            let venue_id = plan(&event.state)?;
            if let (None, Some(venue_id)) = (&_venue_turn, venue_id) {
                _venue_turn = Some(self.venue_turns[venue_turn(venue_id)].lock().await);
                // Others at this venue may have committed while this one waited.
                continue;
            }
            let venue = match venue_id {
                Some(venue_id) => Some(self.load::<VenueAggregate>(&venue_id.stream()).await?),
                None => None,
            };
            let venue_state = venue.as_ref().map(|v| v.state.clone()).unwrap_or_default();
            let scheduling = commands(&event.state, &venue_state)?;
            let now = self.now();
            let mut event_state = event.state;
            let event_facts =
                decide_all::<EventAggregate>(&mut event_state, &scheduling.event, now)?;
            let mut venue_state = venue_state;
            let venue_facts = match (&venue, scheduling.venue_id) {
                (Some(_), Some(_)) if venue_state.exists() => {
                    decide_all::<VenueAggregate>(&mut venue_state, &scheduling.venue, now)?
                }
                _ => Vec::new(),
            };
            let mut reply = answer(&event_facts, &event_state);
            let mut requests = Vec::with_capacity(2);
            if let (Some(venue), Some(venue_id)) = (&venue, scheduling.venue_id)
                && !venue_facts.is_empty()
            {
                let mut request = append_request::<VenueAggregate>(
                    &venue_id.stream(),
                    venue.revision,
                    &venue_facts,
                    &venue_state,
                    context,
                    &reply,
                    now,
                );
                request.request.idempotency = None;
                requests.push(request);
            }
            if !event_facts.is_empty() {
                requests.push(append_request::<EventAggregate>(
                    event_stream,
                    event.revision,
                    &event_facts,
                    &event_state,
                    context,
                    &reply,
                    now,
                ));
            } else if let Some(only) = requests.first_mut() {
                // The answer is remembered with whichever stream the command wrote.
                *only = append_request::<VenueAggregate>(
                    &only.request.stream,
                    venue.as_ref().and_then(|v| v.revision),
                    &venue_facts,
                    &venue_state,
                    context,
                    &reply,
                    now,
                )
                .answering::<EventAggregate>(&event_state, &event_facts);
            }
            if requests.is_empty() {
                set_position(&mut reply.body, event.position);
                let position = event.position;
                return Ok((
                    Accepted {
                        facts: event_facts,
                        position,
                    },
                    reply,
                ));
            }
            let requests = self.log.seal_all(requests).await?;
            match self.log.store.append_atomic(requests).await {
                Ok(appended) => {
                    let position = appended
                        .iter()
                        .map(|a| a.last_position)
                        .max()
                        .unwrap_or(event.position);
                    set_position(&mut reply.body, position);
                    return Ok((
                        Accepted {
                            facts: event_facts,
                            position,
                        },
                        reply,
                    ));
                }
                Err(StoreError::WrongExpectedRevision { stream, .. }) => {
                    tracing::debug!(%stream, "concurrent append to the event or its venue; deciding again");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::Contention)
    }
}

impl Engine {
    /// Runs commands on two streams of (possibly) different aggregates as one atomic append:
    /// both decided against the log as it is, both appended with their expected revisions in
    /// one transaction, again from the start when either moved. For changes that two streams
    /// must agree on (a membership in the organization's stream and its mirror in the
    /// account's). The answer is built from the first stream's facts and state.
    pub async fn execute_two<A: Aggregate, B: Aggregate>(
        &self,
        first: (&str, Vec<A::Command>),
        second: (&str, Vec<B::Command>),
        context: &CommandContext,
        answer: impl Fn(&[A::Fact], &A::State) -> Answer,
    ) -> Result<(Accepted<A::Fact>, Answer), ApiError> {
        for _ in 0..MAX_ATTEMPTS {
            let a = self.load::<A>(first.0).await?;
            let b = self.load::<B>(second.0).await?;
            let now = self.now();
            let mut a_state = a.state;
            let a_facts = decide_all::<A>(&mut a_state, &first.1, now)?;
            let mut b_state = b.state;
            let b_facts = decide_all::<B>(&mut b_state, &second.1, now)?;
            let mut reply = answer(&a_facts, &a_state);
            let mut requests = Vec::with_capacity(2);
            if !a_facts.is_empty() {
                requests.push(append_request::<A>(
                    first.0, a.revision, &a_facts, &a_state, context, &reply, now,
                ));
            }
            if !b_facts.is_empty() {
                let mut request = append_request::<B>(
                    second.0, b.revision, &b_facts, &b_state, context, &reply, now,
                );
                if requests.is_empty() {
                    // Only the second stream changed: the first stream's answer goes with it.
                    request = request.answering::<A>(&a_state, &a_facts);
                } else {
                    // The answer is remembered once, with the first stream's facts.
                    request.request.idempotency = None;
                }
                requests.push(request);
            }
            if requests.is_empty() {
                set_position(&mut reply.body, a.position.max(b.position));
                return Ok((
                    Accepted {
                        facts: a_facts,
                        position: a.position.max(b.position),
                    },
                    reply,
                ));
            }
            let requests = self.log.seal_all(requests).await?;
            match self.log.store.append_atomic(requests).await {
                Ok(appended) => {
                    let position = appended
                        .iter()
                        .map(|a| a.last_position)
                        .max()
                        .unwrap_or(a.position);
                    set_position(&mut reply.body, position);
                    return Ok((
                        Accepted {
                            facts: a_facts,
                            position,
                        },
                        reply,
                    ));
                }
                Err(StoreError::WrongExpectedRevision { stream, .. }) => {
                    tracing::debug!(%stream, "concurrent append to one of two streams; deciding again");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::Contention)
    }
}

impl Log {
    pub(crate) fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// Opens the personal data of a page of facts in place, with one key query at most.
    pub(crate) async fn open_facts(&self, facts: &mut [RecordedFact]) -> Result<(), ApiError> {
        match &self.vault {
            Some(vault) => personal::open(vault, facts.iter_mut().map(|f| &mut f.data)).await,
            None => Ok(()),
        }
    }

    /// Seals the personal data of one append: what the store may be given. `PersonErased`
    /// when it would record new data of an erased person.
    pub(crate) async fn seal(&self, unsealed: Unsealed) -> Result<AppendRequest, ApiError> {
        let Some(vault) = &self.vault else {
            return Ok(unsealed.request);
        };
        let Unsealed {
            mut request,
            shape,
            subjects,
            answer_shape,
            answer_subject,
        } = unsealed;
        let mut documents: Vec<Document<'_>> = request
            .facts
            .iter_mut()
            .zip(&subjects)
            .map(|(fact, subject)| Document {
                doc: &mut fact.data,
                shape,
                subject: subject.as_deref(),
                unsealable: Unsealable::Refuse,
            })
            .collect();
        if let Some(idempotency) = &mut request.idempotency {
            documents.push(Document {
                doc: &mut idempotency.response.body,
                shape: answer_shape,
                subject: answer_subject.as_deref(),
                unsealable: Unsealable::Erase,
            });
        }
        personal::seal(vault, documents).await?;
        Ok(request)
    }

    /// Seals appends that go to the store together: all of them, or the first refusal.
    pub(crate) async fn seal_all(
        &self,
        requests: Vec<Unsealed>,
    ) -> Result<Vec<AppendRequest>, ApiError> {
        let mut sealed = Vec::with_capacity(requests.len());
        for request in requests {
            sealed.push(self.seal(request).await?);
        }
        Ok(sealed)
    }

    /// Seals a chain of appends (one per command, see [`crate::pipeline`]) in order, up to the
    /// first that cannot be sealed: the sealed ones, and why the next one could not be. The
    /// keys of everyone in the chain are read ahead with one query.
    pub(crate) async fn seal_chain(
        &self,
        mut chain: Vec<Unsealed>,
    ) -> (Vec<AppendRequest>, Option<ApiError>) {
        if let Some(vault) = &self.vault {
            let documents = chain
                .iter_mut()
                .flat_map(|unsealed| {
                    let shape = unsealed.shape;
                    unsealed
                        .request
                        .facts
                        .iter_mut()
                        .zip(&unsealed.subjects)
                        .map(move |(fact, subject)| Document {
                            doc: &mut fact.data,
                            shape,
                            subject: subject.as_deref(),
                            unsealable: Unsealable::Refuse,
                        })
                })
                .collect();
            personal::warm(vault, documents).await;
        }
        let mut sealed = Vec::with_capacity(chain.len());
        for unsealed in chain {
            match self.seal(unsealed).await {
                Ok(request) => sealed.push(request),
                Err(refused) => return (sealed, Some(refused)),
            }
        }
        (sealed, None)
    }

    /// Folds a stream's facts into its aggregate's state, starting from the stream's snapshot
    /// when there is a usable one.
    pub(crate) async fn load<A: Aggregate>(
        &self,
        stream: &str,
    ) -> Result<Loaded<A::State>, ApiError> {
        let start = self.load_snapshot::<A>(stream).await.unwrap_or(Loaded {
            state: A::State::default(),
            revision: None,
            position: 0,
        });
        self.catch_up::<A>(stream, start).await
    }

    /// Folds the facts appended to `stream` after `loaded` into it: a cached aggregate is
    /// checked against the log this way before it decides anything.
    pub(crate) async fn catch_up<A: Aggregate>(
        &self,
        stream: &str,
        mut loaded: Loaded<A::State>,
    ) -> Result<Loaded<A::State>, ApiError> {
        let mut from = loaded.revision.map_or(0, |r| r + 1);
        loop {
            let mut page = self.store.read_stream(stream, from, PAGE).await?;
            let full = page.len() == PAGE;
            self.open_facts(&mut page).await?;
            for recorded in page {
                let fact =
                    A::Fact::decode(&recorded.fact_type, recorded.schema_version, recorded.data)?;
                loaded.state = A::evolve(loaded.state, &fact);
                loaded.revision = Some(recorded.revision);
                loaded.position = recorded.position;
                from = recorded.revision + 1;
            }
            if !full {
                return Ok(loaded);
            }
        }
    }

    /// The stream's snapshot, if snapshots are on and it has the current state version. A
    /// snapshot is only a cache: any problem with it means "fold from the start" plus a warning.
    async fn load_snapshot<A: Aggregate>(&self, stream: &str) -> Option<Loaded<A::State>> {
        if self.store.snapshot_every() == 0 {
            return None;
        }
        let snapshot = match self.store.load_snapshot(stream).await {
            Ok(snapshot) => snapshot?,
            Err(e) => {
                tracing::warn!(stream, error = %e, "could not read snapshot; folding from the start");
                return None;
            }
        };
        if snapshot.schema_version != A::STATE_VERSION {
            return None;
        }
        let position = snapshot.state.get("position").and_then(Value::as_u64)?;
        let mut state = snapshot.state.get("state")?.clone();
        if let Some(vault) = &self.vault
            && let Err(e) = personal::open(vault, [&mut state]).await
        {
            tracing::warn!(stream, error = %e, "could not open a snapshot; folding from the start");
            return None;
        }
        match serde_json::from_value(state) {
            Ok(state) => Some(Loaded {
                state: A::restored(state),
                revision: Some(snapshot.revision),
                position,
            }),
            Err(e) => {
                tracing::warn!(stream, error = %e, "unreadable snapshot; folding from the start");
                None
            }
        }
    }

    /// Whether an append from revision `before` to `after` crossed a multiple of the store's
    /// snapshot interval.
    pub(crate) fn snapshot_due(&self, before: Option<u64>, after: u64) -> bool {
        let every = self.store.snapshot_every();
        every != 0 && before.map_or(0, |r| (r + 1) / every) != (after + 1) / every
    }

    /// Saves a snapshot when an append (from revision `before` to `appended.revision`) crossed a
    /// multiple of the store's snapshot interval.
    pub(crate) async fn maybe_snapshot<A: Aggregate>(
        &self,
        stream: &str,
        before: Option<u64>,
        appended: &Appended,
        state: &A::State,
    ) {
        if self.snapshot_due(before, appended.revision) {
            self.save_snapshot_logged::<A>(stream, appended, state)
                .await;
        }
    }

    /// Saves a snapshot of `state` as of `appended`; a failure is only logged (a snapshot is a
    /// cache).
    pub(crate) async fn save_snapshot_logged<A: Aggregate>(
        &self,
        stream: &str,
        appended: &Appended,
        state: &A::State,
    ) {
        if let Err(e) = self
            .save_snapshot::<A>(stream, appended.revision, appended.last_position, state)
            .await
        {
            tracing::warn!(stream, error = %e, "could not save a snapshot");
        }
    }

    async fn save_snapshot<A: Aggregate>(
        &self,
        stream: &str,
        revision: u64,
        position: u64,
        state: &A::State,
    ) -> Result<(), ApiError> {
        let mut state = serde_json::to_value(state)
            .map_err(|e| ApiError::Store(StoreError::Corrupt(format!("snapshot: {e}"))))?;
        if let Some(vault) = &self.vault {
            // A snapshot is only a copy: the data of a person erased since the state was read
            // is left out rather than the snapshot.
            personal::seal(
                vault,
                vec![Document {
                    doc: &mut state,
                    shape: Shape::of(A::Fact::AGGREGATE),
                    subject: None,
                    unsealable: Unsealable::Erase,
                }],
            )
            .await?;
        }
        let snapshot = Snapshot {
            stream: stream.to_owned(),
            revision,
            schema_version: A::STATE_VERSION,
            state: json!({ "position": position, "state": state }),
        };
        self.store.save_snapshot(snapshot).await?;
        Ok(())
    }
}

/// Decides `commands` in turn against `state`, each seeing the facts of those before it. On
/// success `state` has every fact folded in; on a refusal it is left as it was.
pub(crate) fn decide_all<A: Aggregate>(
    state: &mut A::State,
    commands: &[A::Command],
    now: Timestamp,
) -> Result<Vec<A::Fact>, ApiError> {
    if let [command] = commands {
        // The common case decides on the state itself: no copy of a large aggregate.
        let facts = A::decide(state, command.clone(), now).map_err(Into::into)?;
        *state = facts.iter().fold(std::mem::take(state), A::evolve);
        return Ok(facts);
    }
    let mut scratch = A::State::clone(state);
    let mut facts = Vec::new();
    for command in commands.iter().cloned() {
        let decided = A::decide(&scratch, command, now).map_err(Into::into)?;
        scratch = decided.iter().fold(scratch, A::evolve);
        facts.extend(decided);
    }
    *state = scratch;
    Ok(facts)
}

/// An append whose personal data is still plaintext, and whose it is: [`Log::seal`] turns it
/// into what the store is given.
pub(crate) struct Unsealed {
    /// The append as it would be written without sealing.
    pub(crate) request: AppendRequest,
    /// Where the stream's facts keep personal data.
    shape: Shape,
    /// Per fact, whose personal data it holds when the fact does not say
    /// ([`Aggregate::subject_of`]).
    subjects: Vec<Option<String>>,
    /// Where the remembered answer keeps personal data (the shape of the aggregate that
    /// answered, which need not be the stream's).
    answer_shape: Shape,
    /// Whose personal data the remembered answer holds ([`Aggregate::answer_subject`]).
    answer_subject: Option<String>,
}

impl Unsealed {
    /// The same append, remembering an answer built by aggregate `B` from `facts` and `state`.
    pub(crate) fn answering<B: Aggregate>(mut self, state: &B::State, facts: &[B::Fact]) -> Self {
        self.answer_shape = Shape::of(B::Fact::AGGREGATE);
        self.answer_subject = B::answer_subject(state, facts);
        self
    }
}

/// The append of one command's facts, with its metadata and its remembered answer, not yet
/// sealed. `state` is the aggregate with the facts folded in.
pub(crate) fn append_request<A: Aggregate>(
    stream: &str,
    revision: Option<u64>,
    facts: &[A::Fact],
    state: &A::State,
    context: &CommandContext,
    reply: &Answer,
    now: Timestamp,
) -> Unsealed {
    let shape = Shape::of(A::Fact::AGGREGATE);
    let subjects = if shape == Shape::Nothing {
        vec![None; facts.len()]
    } else {
        facts
            .iter()
            .map(|fact| A::subject_of(state, fact))
            .collect()
    };
    Unsealed {
        request: plain_request::<A>(stream, revision, facts, context, reply, now),
        shape,
        subjects,
        answer_shape: shape,
        answer_subject: A::answer_subject(state, facts),
    }
}

/// [`append_request`] before sealing comes into it.
fn plain_request<A: Aggregate>(
    stream: &str,
    revision: Option<u64>,
    facts: &[A::Fact],
    context: &CommandContext,
    reply: &Answer,
    now: Timestamp,
) -> AppendRequest {
    let facts = facts
        .iter()
        .map(|fact| {
            let (fact_type, schema_version, data) = fact.encode();
            NewFact {
                fact_id: Uuid::now_v7(),
                fact_type,
                schema_version,
                data,
                metadata: FactMetadata {
                    correlation_id: Some(context.correlation_id),
                    causation_id: Some(context.correlation_id),
                    actor: context.actor.clone(),
                    organization: context.organization.clone(),
                },
            }
        })
        .collect();
    let idempotency = context
        .idempotency
        .as_ref()
        .map(|(key, hash)| IdempotencyWrite {
            key: key.clone(),
            response: IdempotentResponse {
                request_hash: hash.clone(),
                status: reply.status.as_u16(),
                body: reply.body.clone(),
                created_at: now,
            },
        });
    AppendRequest {
        stream: stream.to_owned(),
        expected: revision.map_or(ExpectedRevision::NoStream, ExpectedRevision::Exact),
        facts,
        idempotency,
    }
}

/// Puts the position into an answer body (a JSON object).
pub fn set_position(body: &mut Value, position: u64) {
    if let Value::Object(map) = body {
        map.insert("position".to_owned(), Value::from(position));
    }
}
