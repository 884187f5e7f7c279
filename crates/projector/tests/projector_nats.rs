//! The projector in distributed mode, against a real NATS JetStream server (`NATS_URL`, default
//! `nats://127.0.0.1:4222`) and, for the scale-out test, Postgres (`DATABASE_URL`). Every test has
//! its own stream, subject prefix and durable consumer, and deletes its stream afterwards.
//!
//! What is held: facts reach the read models through the relay and JetStream exactly as the
//! log-following projector would apply them; redelivered and duplicated messages change
//! nothing; a gap in JetStream is filled from the log; two projectors on one read-model
//! database apply every fact once and a standby takes over; a killed projector resumes from its
//! checkpoint.

#[allow(
    dead_code,
    reason = "this binary uses the builders, not the shared scenarios"
)]
mod common;
#[allow(
    dead_code,
    reason = "this binary uses the builders, not the ticketing scenarios"
)]
mod ticketing_scenarios;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use common::{Backend, append, cancelled, confirmed, details, published_event, seats};
use marquee_domain::event::EventFact;
use marquee_domain::{EventId, RegistrationId, TicketTypeId, WaitlistEntryId};
use marquee_projector::queries::{
    EventDetails, EventRecord, GuestListEntry, GuestListFilter, ListingFilter, WaitlistRecord,
};
use marquee_projector::{
    JetStreamSource, LeaseConfig, Projector, ProjectorError, ReadModels, Timer,
};
use marquee_relay::{
    FACT_TYPE_HEADER, POSITION_HEADER, REVISION_HEADER, Relay, RelayConfig, STREAM_HEADER,
    subject_for,
};
use marquee_store::{EventStore, RecordedFact};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Long enough for a loaded machine, short enough that a hang fails the test.
const WAIT: Duration = Duration::from_secs(30);

fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

async fn connect(url: &str) -> jetstream::Context {
    match async_nats::connect(url).await {
        Ok(client) => jetstream::new(client),
        Err(e) => panic!(
            "NATS not reachable at {url} ({e}); run the README's test command (scripts/test), \
             which starts one, or set NATS_URL to a JetStream-enabled server"
        ),
    }
}

/// This test's stream, subject prefix and durable consumer; deletes the stream when dropped.
struct TestStream {
    url: String,
    name: String,
    prefix: String,
    durable: String,
    js: jetstream::Context,
}

impl TestStream {
    async fn new() -> Self {
        let url = nats_url();
        let js = connect(&url).await;
        let id = Uuid::new_v4().simple().to_string();
        Self {
            name: format!("MARQUEE_PROJ_TEST_{id}"),
            prefix: format!("marquee_proj_test_{id}.facts"),
            durable: format!("projector_{id}"),
            url,
            js,
        }
    }

    /// The stream as the relay creates it, for tests that publish by hand.
    async fn create(&self) {
        self.js
            .create_stream(stream::Config {
                name: self.name.clone(),
                subjects: vec![format!("{}.>", self.prefix)],
                ..Default::default()
            })
            .await
            .expect("create the test stream");
    }

    fn relay_config(&self) -> RelayConfig {
        RelayConfig {
            stream_name: self.name.clone(),
            subject_prefix: self.prefix.clone(),
            backoff_max: Duration::from_millis(500),
            ..RelayConfig::new(self.url.clone())
        }
    }

    fn source(&self) -> JetStreamSource {
        JetStreamSource {
            stream_name: self.name.clone(),
            subject_prefix: self.prefix.clone(),
            durable_name: self.durable.clone(),
            heartbeat: Duration::from_secs(1),
            // Messages pulled by a stopped or killed session come back this soon.
            ack_wait: Duration::from_secs(2),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_millis(500),
            ..JetStreamSource::new(self.url.clone())
        }
    }

    /// Publishes `fact` as the relay does, under `message_id` (the relay uses the fact id).
    async fn publish(&self, fact: &RecordedFact, message_id: &str) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, message_id);
        headers.insert(POSITION_HEADER, fact.position.to_string().as_str());
        headers.insert(FACT_TYPE_HEADER, fact.fact_type.as_str());
        headers.insert(STREAM_HEADER, fact.stream.as_str());
        headers.insert(REVISION_HEADER, fact.revision.to_string().as_str());
        let payload = serde_json::to_vec(fact).expect("fact as JSON");
        self.js
            .publish_with_headers(
                subject_for(&self.prefix, &fact.stream),
                headers,
                payload.into(),
            )
            .await
            .expect("publish")
            .await
            .expect("JetStream stores the message");
    }

    async fn consumer_info(&self) -> Option<consumer::Info> {
        let stream = self.js.get_stream(&self.name).await.ok()?;
        stream.consumer_info(&self.durable).await.ok()
    }

    /// Waits until the projector's durable consumer has a pull waiting: its session is open and
    /// its catch-up from the log is done, so from now on facts reach it through JetStream only.
    async fn wait_consuming(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(info) = self.consumer_info().await
                && info.num_waiting > 0
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the projector never started consuming {}",
                self.durable
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the consumer has delivered at least `delivered` messages and every delivery
    /// is acknowledged (nothing pending, nothing awaiting an ack).
    async fn wait_all_acked(&self, delivered: u64) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let info = self.consumer_info().await.expect("consumer info");
            if info.delivered.stream_sequence >= delivered
                && info.num_pending == 0
                && info.num_ack_pending == 0
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "messages still unacknowledged: {info:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestStream {
    fn drop(&mut self) {
        // Drop cannot await, and may run while the test's runtime unwinds: clean up on a thread
        // with a runtime of its own.
        let (url, name) = (self.url.clone(), self.name.clone());
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                let connected =
                    tokio::time::timeout(Duration::from_secs(5), async_nats::connect(&url)).await;
                if let Ok(Ok(client)) = connected {
                    let _ = jetstream::new(client).delete_stream(&name).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// Short lease timings, so failover tests take about a second, not ten.
fn fast_lease(holder: &str) -> LeaseConfig {
    LeaseConfig {
        ttl: Duration::from_millis(1000),
        renew_every: Duration::from_millis(200),
        poll_every: Duration::from_millis(50),
        ..LeaseConfig::named(holder)
    }
}

/// A projector or relay task running in the background, and the means to stop it.
struct Running<E> {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), E>>,
}

impl<E: std::fmt::Debug> Running<E> {
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("stops when asked")
            .expect("task does not panic")
            .expect("stops without error");
    }
}

fn start_projector(projector: Projector) -> Running<ProjectorError> {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(projector.run(async move {
        let _ = stopped.await;
    }));
    Running { stop, task }
}

fn start_relay(
    store: Arc<dyn EventStore>,
    config: RelayConfig,
) -> Running<marquee_relay::RelayError> {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(Relay::new(store, config).run(async move {
        let _ = stopped.await;
    }));
    Running { stop, task }
}

async fn wait_applied(read: &ReadModels, position: u64) {
    let reached = read.wait_for(position, WAIT).await.expect("wait_for");
    assert!(
        reached,
        "the read models reached position {position} (at {})",
        read.applied_position().await.expect("checkpoint")
    );
}

/// A few published events with registrations, cancellations and capacity changes, one append
/// per fact (so each has its own message). Among them a capacity change that is later
/// superseded: re-applying it would show. Each event also gets a hold, a waitlist offer and a
/// check-in, which change no confirmed count. Returns the events and the last position.
async fn workload(
    store: &Arc<dyn EventStore>,
    events: usize,
    registrations: usize,
) -> (Vec<EventId>, u64) {
    let mut ids = Vec::new();
    let mut last = 0;
    for _ in 0..events {
        let f = published_event(store).await;
        let stream = f.event.stream();
        append(
            store,
            &stream,
            &[EventFact::EventCapacityChanged { capacity: 40 }],
        )
        .await;
        let code = ticketing_scenarios::codes(1);
        for n in 0..registrations {
            let r = RegistrationId(Uuid::now_v7());
            let ticket_type = if n % 2 == 0 { f.a } else { f.b };
            if n == 1 {
                let fact = ticketing_scenarios::confirmed_with(r, ticket_type, "Ada", code.clone());
                append(store, &stream, &[fact]).await;
                let scan = ticketing_scenarios::checked_in(
                    &code[0],
                    r,
                    ticket_type,
                    "n-1",
                    "2026-06-01T18:05:00Z",
                );
                append(store, &stream, &[scan]).await;
            } else {
                append(store, &stream, &[confirmed(r, ticket_type, 1)]).await;
            }
            if n % 5 == 0 {
                append(store, &stream, &[cancelled(r, ticket_type, 1)]).await;
            }
        }
        let (hold, entry) = (
            RegistrationId(Uuid::now_v7()),
            WaitlistEntryId(Uuid::now_v7()),
        );
        for fact in [
            ticketing_scenarios::held(hold, f.a, 1, "2026-02-02T10:15:00Z"),
            ticketing_scenarios::payment_pending(hold, "pay_1"),
            ticketing_scenarios::joined(entry, f.a, "Una", 1),
            ticketing_scenarios::offer_made(entry, f.a, 1, "2026-02-03T12:00:00Z"),
        ] {
            append(store, &stream, &[fact]).await;
        }
        last = append(
            store,
            &stream,
            &[EventFact::EventCapacityChanged { capacity: 45 }],
        )
        .await;
        ids.push(f.event);
    }
    (ids, last)
}

/// Everything the read models say about some events.
#[derive(Debug, PartialEq)]
struct Snapshot {
    /// Each event's details.
    details: Vec<Option<EventDetails>>,
    /// The public listing.
    listed: Vec<EventRecord>,
    /// Each event's guest list, tickets and check-ins included.
    guests: Vec<Option<Vec<GuestListEntry>>>,
    /// Each event's waitlist.
    waitlists: Vec<Vec<WaitlistRecord>>,
    /// Every pending timer.
    timers: Vec<Timer>,
}

/// Everything the read models say about `events`.
async fn snapshot(read: &ReadModels, events: &[EventId]) -> Snapshot {
    let mut details = Vec::new();
    let mut guests = Vec::new();
    let mut waitlists = Vec::new();
    for event in events {
        details.push(read.event(event.0).await.expect("read event"));
        let filter = GuestListFilter {
            limit: 1000,
            ..GuestListFilter::default()
        };
        guests.push(read.guest_list(event.0, &filter).await.expect("guests"));
        waitlists.push(read.waitlist(event.0).await.expect("waitlist"));
    }
    let listed = read
        .list_events(&ListingFilter {
            limit: 100,
            ..ListingFilter::default()
        })
        .await
        .expect("list");
    let far = "2100-01-01T00:00:00Z".parse().expect("time");
    let timers = read.due_timers(far, 10_000).await.expect("timers");
    Snapshot {
        details,
        listed,
        guests,
        waitlists,
        timers,
    }
}

/// What the log-following projector makes of the same log, in fresh in-memory read models.
async fn reference(store: &Arc<dyn EventStore>, events: &[EventId], last: u64) -> Snapshot {
    let read = ReadModels::connect("memory:").await.expect("read models");
    common::project_until(store.clone(), &read, last).await;
    snapshot(&read, events).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facts_flow_from_the_log_through_the_relay_and_jetstream_into_the_read_models_nats() {
    let ts = TestStream::new().await;
    let store = marquee_store::connect("memory:")
        .await
        .expect("memory store");
    let read = ReadModels::connect("memory:").await.expect("read models");
    let relay = start_relay(store.clone(), ts.relay_config());

    // Some facts exist before the projector does: its first session catches them up.
    let (mut events, early) = workload(&store, 1, 4).await;
    let projector = start_projector(
        Projector::with_jetstream(store.clone(), read.clone(), ts.source())
            .with_lease(fast_lease("only")),
    );
    wait_applied(&read, early).await;
    ts.wait_consuming().await;

    let (more, last) = workload(&store, 2, 12).await;
    events.extend(more);
    wait_applied(&read, last).await;
    // The facts after `early` came through JetStream, and each was acknowledged after commit.
    ts.wait_all_acked(last).await;

    assert_eq!(
        snapshot(&read, &events).await,
        reference(&store, &events, last).await
    );
    assert_eq!(read.applied_position().await.expect("checkpoint"), last);
    let d = details(&read, events[1]).await;
    assert_eq!(d.event.capacity, 45, "the later capacity change wins");
    assert_eq!(d.event.confirmed, 12 - 3, "12 confirmed, 3 cancelled");
    projector.stop().await;
    assert_eq!(
        read.lease_holder().await.expect("lease"),
        None,
        "a clean stop releases the lease"
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_and_duplicated_messages_change_nothing_nats() {
    let ts = TestStream::new().await;
    ts.create().await;
    let store = marquee_store::connect("memory:")
        .await
        .expect("memory store");
    let read = ReadModels::connect("memory:").await.expect("read models");
    let projector = start_projector(
        Projector::with_jetstream(store.clone(), read.clone(), ts.source())
            .with_lease(fast_lease("only")),
    );
    ts.wait_consuming().await;

    let (events, last) = workload(&store, 2, 6).await;
    let facts = store.read_all(0, 10_000).await.expect("read the log");
    for fact in &facts {
        ts.publish(fact, &fact.fact_id.to_string()).await;
    }
    wait_applied(&read, last).await;
    let once = snapshot(&read, &events).await;

    // Every message again, newest first, under new message ids so JetStream keeps both copies:
    // applied again, the drafts would reset their events and the superseded capacity of 40
    // would win over 45.
    for fact in facts.iter().rev() {
        ts.publish(fact, &Uuid::new_v4().to_string()).await;
    }
    ts.wait_all_acked(2 * facts.len() as u64).await;

    assert_eq!(
        snapshot(&read, &events).await,
        once,
        "the copies changed nothing"
    );
    assert_eq!(once, reference(&store, &events, last).await);
    assert_eq!(read.applied_position().await.expect("checkpoint"), last);
    let d = details(&read, events[0]).await;
    assert_eq!(d.event.capacity, 45);
    assert_eq!(
        seats(&d, TicketTypeId(d.ticket_types[0].ticket_type_id)),
        (30, 3 - 1, 30 - 2 - 2),
        "three confirmed, one cancelled, one held, one offered, none counted twice"
    );
    assert_eq!((d.ticket_types[0].held, d.ticket_types[0].offered), (1, 1));
    projector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_in_jetstream_is_filled_from_the_log_nats() {
    let ts = TestStream::new().await;
    ts.create().await;
    let store = marquee_store::connect("memory:")
        .await
        .expect("memory store");
    let read = ReadModels::connect("memory:").await.expect("read models");
    let projector = start_projector(
        Projector::with_jetstream(store.clone(), read.clone(), ts.source())
            .with_lease(fast_lease("only")),
    );
    ts.wait_consuming().await;

    // Positions 1-5 set up a published event; 6 and 7 are registrations that only count if
    // they are applied.
    let f = published_event(&store).await;
    assert_eq!(f.position, 5);
    let stream = f.event.stream();
    append(
        &store,
        &stream,
        &[confirmed(RegistrationId(Uuid::now_v7()), f.a, 2)],
    )
    .await;
    append(
        &store,
        &stream,
        &[confirmed(RegistrationId(Uuid::now_v7()), f.b, 3)],
    )
    .await;
    append(
        &store,
        &stream,
        &[confirmed(RegistrationId(Uuid::now_v7()), f.a, 1)],
    )
    .await;
    append(
        &store,
        &stream,
        &[confirmed(RegistrationId(Uuid::now_v7()), f.b, 1)],
    )
    .await;
    let last = append(
        &store,
        &stream,
        &[EventFact::EventCapacityChanged { capacity: 45 }],
    )
    .await;
    let events = vec![f.event];
    let facts = store.read_all(0, 100).await.expect("read the log");
    assert_eq!(last, 10);
    // While JetStream works, the projector applies what it delivers, not the log's tail.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(read.applied_position().await.expect("checkpoint"), 0);

    for fact in &facts[0..5] {
        ts.publish(fact, &fact.fact_id.to_string()).await;
    }
    wait_applied(&read, 5).await;
    assert_eq!(read.applied_position().await.expect("checkpoint"), 5);

    // Positions 6 and 7 never reach JetStream.
    for fact in &facts[7..10] {
        ts.publish(fact, &fact.fact_id.to_string()).await;
    }
    wait_applied(&read, 10).await;
    ts.wait_all_acked(8).await;

    assert_eq!(
        snapshot(&read, &events).await,
        reference(&store, &events, last).await
    );
    assert_eq!(read.applied_position().await.expect("checkpoint"), 10);
    let d = details(&read, f.event).await;
    assert_eq!(seats(&d, f.a), (30, 3, 27), "6 was filled in from the log");
    assert_eq!(seats(&d, f.b), (30, 4, 26), "7 was filled in from the log");
    projector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_projectors_apply_every_fact_once_and_the_standby_takes_over_nats_postgres() {
    let ts = TestStream::new().await;
    let backend = Backend::postgres().await;
    let store = backend.store.clone();
    let relay = start_relay(store.clone(), ts.relay_config());
    let read_a = backend.read_models().await;
    let read_b = backend.read_models().await;
    let a = start_projector(
        Projector::with_jetstream(store.clone(), read_a.clone(), ts.source())
            .with_lease(fast_lease("a")),
    );
    let b = start_projector(
        Projector::with_jetstream(store.clone(), read_b.clone(), ts.source())
            .with_lease(fast_lease("b")),
    );

    let (mut events, first) = workload(&store, 3, 10).await;
    wait_applied(&read_a, first).await;
    assert_eq!(
        snapshot(&read_a, &events).await,
        reference(&store, &events, first).await
    );
    assert_eq!(read_b.applied_position().await.expect("checkpoint"), first);
    let holder = read_a
        .lease_holder()
        .await
        .expect("lease")
        .expect("someone holds it");
    assert!(!holder.expired);

    // The holder stops; the standby takes over and carries on.
    let (holder_task, standby, standby_read, standby_name) = match holder.holder.as_str() {
        "a" => (a, b, read_b, "b"),
        "b" => (b, a, read_a, "a"),
        other => panic!("unexpected lease holder {other}"),
    };
    holder_task.stop().await;
    let (more, last) = workload(&store, 1, 10).await;
    events.extend(more);
    wait_applied(&standby_read, last).await;
    ts.wait_all_acked(last).await;

    assert_eq!(
        snapshot(&standby_read, &events).await,
        reference(&store, &events, last).await,
        "every fact applied exactly once across both projectors"
    );
    assert_eq!(
        standby_read.applied_position().await.expect("checkpoint"),
        last
    );
    let holder = standby_read
        .lease_holder()
        .await
        .expect("lease")
        .expect("held");
    assert_eq!(holder.holder, standby_name);
    standby.stop().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_killed_mid_stream_resumes_from_its_checkpoint_nats() {
    let ts = TestStream::new().await;
    let backend = Backend::sqlite_file().await;
    let store = backend.store.clone();
    let relay = start_relay(store.clone(), ts.relay_config());
    let read = backend.read_models().await;
    let first = start_projector(
        Projector::with_jetstream(store.clone(), read.clone(), ts.source())
            .with_lease(fast_lease("first")),
    );

    let (mut events, early) = workload(&store, 2, 10).await;
    wait_applied(&read, early).await;
    // Facts keep arriving while it is killed: whatever it pulled and had not acknowledged is
    // redelivered to its successor.
    let appending = {
        let store = store.clone();
        tokio::spawn(async move { workload(&store, 2, 30).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    first.task.abort();
    let _ = first.task.await;
    let killed_at = read.applied_position().await.expect("checkpoint");
    let (more, last) = appending.await.expect("appending");
    events.extend(more);
    assert!(killed_at >= early);

    // A new process: new connection, new holder; it waits out the dead one's lease.
    let read = backend.read_models().await;
    assert_eq!(
        read.lease_holder()
            .await
            .expect("lease")
            .map(|l| l.holder)
            .as_deref(),
        Some("first")
    );
    let second = start_projector(
        Projector::with_jetstream(store.clone(), read.clone(), ts.source())
            .with_lease(fast_lease("second")),
    );
    wait_applied(&read, last).await;
    ts.wait_all_acked(last).await;

    assert_eq!(
        snapshot(&read, &events).await,
        reference(&store, &events, last).await
    );
    assert_eq!(read.applied_position().await.expect("checkpoint"), last);
    let d = details(&read, events[3]).await;
    assert_eq!(
        d.event.confirmed,
        30 - 6,
        "30 confirmed, 6 cancelled, none counted twice"
    );
    second.stop().await;
    relay.stop().await;
}
