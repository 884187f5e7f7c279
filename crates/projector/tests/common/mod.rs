//! Shared by the SQLite and Postgres projector tests: backends, fact builders, a projector run,
//! and the scenarios themselves, so both engines are held to the very same assertions.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use marquee_domain::event::{Attendee, DetailsChange, EventFact, EventStatus};
use marquee_domain::venue::VenueFact;
use marquee_domain::{
    EventId, FactCodec, Money, RegistrationId, TicketCode, TicketTypeId, VenueId,
};
use marquee_projector::queries::{EventDetails, ListingFilter};
use marquee_projector::{Projector, ReadModels};
use marquee_store::{
    AppendRequest, Appended, EventStore, ExpectedRevision, FactStream, IdempotencyWrite,
    IdempotentResponse, NewFact, RecordedFact, Snapshot, StoreError,
};
use serde_json::{Value, json};
use uuid::Uuid;

/// A log and where its read models live, kept alive (temp dir, test database) for the test.
pub struct Backend {
    pub store: Arc<dyn EventStore>,
    read_url: String,
    /// For `memory:`, the one read-model database there is; reconnecting would make a new one.
    memory_read: Option<ReadModels>,
    _keep: Box<dyn std::any::Any + Send>,
}

impl Backend {
    /// An in-memory log with in-memory read models.
    #[allow(dead_code, reason = "each test binary uses the backends of its engine")]
    pub async fn memory() -> Self {
        Self {
            store: marquee_store::connect("memory:")
                .await
                .expect("memory store"),
            read_url: "memory:".to_owned(),
            memory_read: Some(ReadModels::connect("memory:").await.expect("read models")),
            _keep: Box::new(()),
        }
    }

    /// One SQLite file holding both the log and the read models, as in embedded mode.
    #[allow(dead_code, reason = "each test binary uses the backends of its engine")]
    pub async fn sqlite_file() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("marquee.db").display());
        Self {
            store: marquee_store::connect(&url).await.expect("sqlite store"),
            read_url: url,
            memory_read: None,
            _keep: Box::new(dir),
        }
    }

    /// One fresh Postgres database holding both the log and the read models.
    #[allow(dead_code, reason = "each test binary uses the backends of its engine")]
    pub async fn postgres() -> Self {
        let db = marquee_store::testing::PgTestDb::create().await;
        Self {
            store: marquee_store::connect(&db.url)
                .await
                .expect("postgres store"),
            read_url: db.url.clone(),
            memory_read: None,
            _keep: Box::new(db),
        }
    }

    /// The read models' database URL (`memory:` for the in-memory backend).
    #[allow(dead_code, reason = "only the rebuild tests open their own pool")]
    pub fn read_url(&self) -> &str {
        &self.read_url
    }

    /// A handle on the read models; a new connection each time except for `memory:`.
    pub async fn read_models(&self) -> ReadModels {
        match &self.memory_read {
            Some(read) => read.clone(),
            None => ReadModels::connect(&self.read_url)
                .await
                .expect("read models"),
        }
    }
}

/// Runs a projector until the read models reach `position`, then stops it cleanly.
pub async fn project_until(store: Arc<dyn EventStore>, read: &ReadModels, position: u64) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(Projector::new(store, read.clone()).run(async move {
        let _ = stopped.await;
    }));
    let reached = read
        .wait_for(position, Duration::from_secs(20))
        .await
        .expect("wait_for");
    let _ = stop.send(());
    task.await
        .expect("projector task")
        .expect("projector stops cleanly");
    assert!(reached, "the projector reached position {position}");
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("timestamp")
}

/// Appends domain facts to one stream and returns the last position.
pub async fn append<F: FactCodec>(store: &Arc<dyn EventStore>, stream: &str, facts: &[F]) -> u64 {
    let facts = facts
        .iter()
        .map(|fact| {
            let (fact_type, schema_version, data) = fact.encode();
            NewFact {
                fact_id: Uuid::now_v7(),
                fact_type,
                schema_version,
                data,
                metadata: Default::default(),
            }
        })
        .collect();
    append_new(store, stream, facts).await
}

/// Appends a fact as raw parts, e.g. one this build does not know.
pub async fn append_raw(
    store: &Arc<dyn EventStore>,
    stream: &str,
    fact_type: &str,
    data: Value,
) -> u64 {
    let fact = NewFact {
        fact_id: Uuid::now_v7(),
        fact_type: fact_type.to_owned(),
        schema_version: 1,
        data,
        metadata: Default::default(),
    };
    append_new(store, stream, vec![fact]).await
}

async fn append_new(store: &Arc<dyn EventStore>, stream: &str, facts: Vec<NewFact>) -> u64 {
    store
        .append(AppendRequest {
            stream: stream.to_owned(),
            expected: ExpectedRevision::Any,
            facts,
            idempotency: None,
        })
        .await
        .expect("append")
        .last_position
}

pub fn venue_created(venue: VenueId, name: &str, city: &str, capacity: u32) -> VenueFact {
    VenueFact::VenueCreated {
        venue_id: venue,
        name: name.to_owned(),
        city: city.to_owned(),
        address: None,
        capacity,
        timezone: "Europe/Berlin".to_owned(),
        created_at: at("2026-01-01T09:00:00Z"),
    }
}

pub fn drafted(
    event: EventId,
    venue: VenueId,
    title: &str,
    starts_at: &str,
    capacity: u32,
) -> EventFact {
    let starts = at(starts_at);
    EventFact::EventDrafted {
        event_id: event,
        venue_id: venue,
        title: title.to_owned(),
        description: format!("About {title}"),
        category: "Music".to_owned(),
        starts_at: starts,
        ends_at: starts + chrono::Duration::hours(3),
        timezone: "Europe/Berlin".to_owned(),
        capacity,
        max_per_order: 10,
    }
}

pub fn ticket_type(id: TicketTypeId, name: &str, price_minor: i64, quantity: u32) -> EventFact {
    EventFact::TicketTypeAdded {
        ticket_type_id: id,
        name: name.to_owned(),
        price: Money {
            amount_minor: price_minor,
            currency: "EUR".to_owned(),
        },
        quantity,
        sales_start: None,
        sales_end: None,
    }
}

pub fn published() -> EventFact {
    EventFact::EventPublished {
        published_at: at("2026-02-01T09:00:00Z"),
    }
}

pub fn confirmed(
    registration: RegistrationId,
    ticket_type: TicketTypeId,
    quantity: u32,
) -> EventFact {
    EventFact::RegistrationConfirmed {
        registration_id: registration,
        ticket_type_id: ticket_type,
        attendee: Attendee {
            name: "Ada".to_owned(),
            email: "ada@example.org".to_owned(),
        },
        quantity,
        ticket_codes: (0..quantity)
            .map(|_| TicketCode(Uuid::new_v4().simple().to_string()))
            .collect(),
        confirmed_at: at("2026-02-02T09:00:00Z"),
    }
}

pub fn cancelled(
    registration: RegistrationId,
    ticket_type: TicketTypeId,
    quantity: u32,
) -> EventFact {
    EventFact::RegistrationCancelled {
        registration_id: registration,
        ticket_type_id: ticket_type,
        quantity,
        cancelled_at: at("2026-02-03T09:00:00Z"),
    }
}

/// A venue, a published event with two ticket types (A: 30 seats at 25 EUR, B: 30 seats free)
/// and an event capacity of 50.
pub struct Fixture {
    pub venue: VenueId,
    pub event: EventId,
    pub a: TicketTypeId,
    pub b: TicketTypeId,
    pub position: u64,
}

pub async fn published_event(store: &Arc<dyn EventStore>) -> Fixture {
    let venue = VenueId(Uuid::now_v7());
    let event = EventId(Uuid::now_v7());
    let (a, b) = (TicketTypeId(Uuid::now_v7()), TicketTypeId(Uuid::now_v7()));
    append(
        store,
        &venue.stream(),
        &[venue_created(venue, "Hall A", "Berlin", 500)],
    )
    .await;
    let position = append(
        store,
        &event.stream(),
        &[
            drafted(event, venue, "Rush Night", "2026-06-01T18:00:00Z", 50),
            ticket_type(a, "Standard", 2500, 30),
            ticket_type(b, "Free", 0, 30),
            published(),
        ],
    )
    .await;
    Fixture {
        venue,
        event,
        a,
        b,
        position,
    }
}

pub async fn details(read: &ReadModels, event: EventId) -> EventDetails {
    read.event(event.0)
        .await
        .expect("read event")
        .expect("event is in the read models")
}

/// `(quantity, confirmed, available)` of one ticket type.
pub fn seats(details: &EventDetails, ticket_type: TicketTypeId) -> (u64, u64, u64) {
    let t = details
        .ticket_types
        .iter()
        .find(|t| t.ticket_type_id == ticket_type.0)
        .expect("ticket type");
    (t.quantity, t.confirmed, t.available)
}

// ---- scenarios -------------------------------------------------------------------------------

pub async fn a_published_event_fills_the_listing_and_capacity_rows(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let f = published_event(&store).await;
    let (r1, r2) = (
        RegistrationId(Uuid::now_v7()),
        RegistrationId(Uuid::now_v7()),
    );
    let last = append(
        &store,
        &f.event.stream(),
        &[
            confirmed(r1, f.a, 4),
            confirmed(r2, f.b, 2),
            cancelled(r2, f.b, 2),
        ],
    )
    .await;
    project_until(store, &read, last).await;

    let d = details(&read, f.event).await;
    assert_eq!(d.event.status, EventStatus::Published);
    assert_eq!(d.event.title, "Rush Night");
    assert_eq!(d.event.venue_id, f.venue.0);
    assert_eq!(d.event.venue_name, "Hall A");
    assert_eq!(d.event.city, "Berlin");
    assert_eq!(
        (d.event.capacity, d.event.confirmed, d.event.available),
        (50, 4, 46)
    );
    assert_eq!(d.event.min_price.as_ref().map(|p| p.amount_minor), Some(0));
    assert_eq!(d.event.last_position, last);
    assert_eq!(seats(&d, f.a), (30, 4, 26));
    assert_eq!(seats(&d, f.b), (30, 0, 30));
    assert_eq!(
        d.ticket_types
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["Standard", "Free"],
        "ticket types in the order they were added"
    );

    let listed = read
        .list_events(&ListingFilter {
            limit: 10,
            ..ListingFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].event_id, f.event.0);
    assert_eq!(read.applied_position().await.expect("checkpoint"), last);
}

pub async fn every_ticket_type_follows_the_event_wide_capacity(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let f = published_event(&store).await;
    // 30 of A and 15 of B confirmed: the event (capacity 50) has 5 seats left for everyone.
    let mut last = append(
        &store,
        &f.event.stream(),
        &[
            confirmed(RegistrationId(Uuid::now_v7()), f.a, 10),
            confirmed(RegistrationId(Uuid::now_v7()), f.a, 10),
            confirmed(RegistrationId(Uuid::now_v7()), f.a, 10),
            confirmed(RegistrationId(Uuid::now_v7()), f.b, 15),
        ],
    )
    .await;
    project_until(store.clone(), &read, last).await;
    let d = details(&read, f.event).await;
    assert_eq!(seats(&d, f.a), (30, 30, 0));
    assert_eq!(
        seats(&d, f.b),
        (30, 15, 5),
        "B is limited by the event's 5 seats left"
    );
    assert_eq!(d.event.available, 5);

    last = append(
        &store,
        &f.event.stream(),
        &[EventFact::EventCapacityChanged { capacity: 100 }],
    )
    .await;
    project_until(store, &read, last).await;
    let d = details(&read, f.event).await;
    assert_eq!(
        seats(&d, f.b),
        (30, 15, 15),
        "a larger event frees B up to its own quantity"
    );
    assert_eq!((d.event.capacity, d.event.available), (100, 55));
}

pub async fn restarting_the_projector_counts_nothing_twice(backend: Backend) {
    let store = backend.store.clone();
    let f = published_event(&store).await;
    let first = append(
        &store,
        &f.event.stream(),
        &[confirmed(RegistrationId(Uuid::now_v7()), f.a, 3)],
    )
    .await;
    {
        let read = backend.read_models().await;
        project_until(store.clone(), &read, first).await;
        assert_eq!(seats(&details(&read, f.event).await, f.a).1, 3);
    }
    let second = append(
        &store,
        &f.event.stream(),
        &[confirmed(RegistrationId(Uuid::now_v7()), f.a, 2)],
    )
    .await;

    // A new process: new connection, new projector, same database.
    let read = backend.read_models().await;
    assert_eq!(read.applied_position().await.expect("checkpoint"), first);
    project_until(store.clone(), &read, second).await;
    assert_eq!(seats(&details(&read, f.event).await, f.a), (30, 5, 25));

    // And once more with nothing new: still the same numbers.
    let read = backend.read_models().await;
    project_until(store.clone(), &read, second).await;
    let d = details(&read, f.event).await;
    assert_eq!(seats(&d, f.a), (30, 5, 25));
    assert_eq!(d.event.confirmed, 5);
    assert_eq!(read.applied_position().await.expect("checkpoint"), second);
}

/// A log decorator whose feed first sends again every fact before `after` — old facts the reader
/// has applied, as an at-least-once bus or a careless relay would — and then the real feed.
pub struct Redelivering(pub Arc<dyn EventStore>);

#[async_trait::async_trait]
impl EventStore for Redelivering {
    async fn append(&self, request: AppendRequest) -> Result<Appended, StoreError> {
        self.0.append(request).await
    }
    async fn read_stream(
        &self,
        stream: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedFact>, StoreError> {
        self.0.read_stream(stream, from, limit).await
    }
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedFact>, StoreError> {
        self.0.read_all(after, limit).await
    }
    async fn head_position(&self) -> Result<u64, StoreError> {
        self.0.head_position().await
    }
    fn subscribe(&self, after: u64) -> FactStream {
        let inner = self.0.clone();
        let stale = futures::stream::once(async move { inner.read_all(0, 100_000).await })
            .flat_map(move |result| {
                let items: Vec<Result<RecordedFact, StoreError>> = match result {
                    Ok(facts) => facts
                        .into_iter()
                        .filter(|f| f.position < after)
                        .map(Ok)
                        .collect(),
                    Err(error) => vec![Err(error)],
                };
                futures::stream::iter(items)
            });
        stale.chain(self.0.subscribe(after)).boxed()
    }
    async fn idempotency_get(&self, key: &str) -> Result<Option<IdempotentResponse>, StoreError> {
        self.0.idempotency_get(key).await
    }
    async fn idempotency_put(&self, write: IdempotencyWrite) -> Result<(), StoreError> {
        self.0.idempotency_put(write).await
    }
    async fn load_snapshot(&self, stream: &str) -> Result<Option<Snapshot>, StoreError> {
        self.0.load_snapshot(stream).await
    }
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        self.0.save_snapshot(snapshot).await
    }
}

pub async fn facts_at_or_below_the_checkpoint_are_skipped_when_redelivered(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let f = published_event(&store).await;
    let stream = f.event.stream();
    append(
        &store,
        &stream,
        &[confirmed(RegistrationId(Uuid::now_v7()), f.a, 4)],
    )
    .await;
    append(
        &store,
        &stream,
        &[EventFact::EventCapacityChanged { capacity: 60 }],
    )
    .await;
    let checkpoint = append(
        &store,
        &stream,
        &[EventFact::EventCapacityChanged { capacity: 80 }],
    )
    .await;
    project_until(store.clone(), &read, checkpoint).await;

    // Every fact before the checkpoint arrives again — among them the stale capacity of 60 —
    // followed by one new registration.
    let last = append(
        &store,
        &stream,
        &[confirmed(RegistrationId(Uuid::now_v7()), f.b, 1)],
    )
    .await;
    let redelivering: Arc<dyn EventStore> = Arc::new(Redelivering(store.clone()));
    project_until(redelivering, &read, last).await;

    let d = details(&read, f.event).await;
    assert_eq!(
        d.event.capacity, 80,
        "the stale capacity change was not applied again"
    );
    assert_eq!(
        seats(&d, f.a),
        (30, 4, 30 - 4),
        "the old registration counted once"
    );
    assert_eq!(seats(&d, f.b), (30, 1, 29), "the new one counted once");
    assert_eq!((d.event.confirmed, d.event.available), (5, 75));
    assert_eq!(d.event.last_position, last);
    assert_eq!(read.applied_position().await.expect("checkpoint"), last);
}

pub async fn an_unknown_or_malformed_fact_is_skipped_and_the_checkpoint_moves_past_it(
    backend: Backend,
) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let f = published_event(&store).await;
    let stream = f.event.stream();
    append_raw(&store, &stream, "SeatsTeleported", json!({ "seats": 3 })).await;
    append_raw(
        &store,
        &stream,
        "RegistrationConfirmed",
        json!({ "quantity": "many" }),
    )
    .await;
    append_raw(
        &store,
        "waitlist-0190c0de-0000-7000-8000-000000000000",
        "Joined",
        json!({}),
    )
    .await;
    let last = append(
        &store,
        &stream,
        &[confirmed(RegistrationId(Uuid::now_v7()), f.a, 2)],
    )
    .await;
    project_until(store, &read, last).await;

    assert_eq!(read.applied_position().await.expect("checkpoint"), last);
    assert_eq!(seats(&details(&read, f.event).await, f.a), (30, 2, 28));
}

pub async fn drafts_are_not_listed_and_listing_filters_by_city_category_and_time(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let berlin = VenueId(Uuid::now_v7());
    let paris = VenueId(Uuid::now_v7());
    append(
        &store,
        &berlin.stream(),
        &[venue_created(berlin, "Hall A", "Berlin", 500)],
    )
    .await;
    append(
        &store,
        &paris.stream(),
        &[venue_created(paris, "Salle B", "Paris", 500)],
    )
    .await;
    let (draft, june, july, talk) = (
        EventId(Uuid::now_v7()),
        EventId(Uuid::now_v7()),
        EventId(Uuid::now_v7()),
        EventId(Uuid::now_v7()),
    );
    append(
        &store,
        &draft.stream(),
        &[drafted(draft, berlin, "Draft", "2026-06-10T18:00:00Z", 10)],
    )
    .await;
    append(
        &store,
        &june.stream(),
        &[
            drafted(june, berlin, "June", "2026-06-20T18:00:00Z", 10),
            published(),
        ],
    )
    .await;
    append(
        &store,
        &july.stream(),
        &[
            drafted(july, paris, "July", "2026-07-20T18:00:00Z", 10),
            published(),
        ],
    )
    .await;
    let last = append(
        &store,
        &talk.stream(),
        &[
            drafted(talk, berlin, "Talk", "2026-07-01T18:00:00Z", 10),
            EventFact::EventDetailsUpdated(DetailsChange {
                category: Some("Talks".to_owned()),
                ..DetailsChange::default()
            }),
            published(),
            EventFact::EventCancelled {
                reason: None,
                cancelled_at: at("2026-03-01T00:00:00Z"),
            },
        ],
    )
    .await;
    project_until(store, &read, last).await;

    let ids = |events: Vec<marquee_projector::queries::EventRecord>| {
        events.into_iter().map(|e| e.event_id).collect::<Vec<_>>()
    };
    let list = |filter: ListingFilter| {
        let read = read.clone();
        async move {
            ids(read
                .list_events(&ListingFilter {
                    limit: 50,
                    ..filter
                })
                .await
                .expect("list"))
        }
    };
    assert_eq!(
        list(ListingFilter::default()).await,
        [june.0, talk.0, july.0],
        "by start, no drafts"
    );
    assert_eq!(
        list(ListingFilter {
            city: Some("BERLIN".into()),
            ..Default::default()
        })
        .await,
        [june.0, talk.0]
    );
    assert_eq!(
        list(ListingFilter {
            category: Some("talks".into()),
            ..Default::default()
        })
        .await,
        [talk.0]
    );
    assert_eq!(
        list(ListingFilter {
            from: Some(at("2026-07-01T18:00:00Z")),
            to: Some(at("2026-07-20T18:00:00Z")),
            ..Default::default()
        })
        .await,
        [talk.0],
        "from is inclusive, to exclusive"
    );
    let d = details(&read, draft).await;
    assert_eq!(
        d.event.status,
        EventStatus::Draft,
        "a draft still has details"
    );
    assert_eq!(
        details(&read, talk).await.event.status,
        EventStatus::Cancelled
    );
}

pub async fn renaming_a_venue_renames_it_on_its_events(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let f = published_event(&store).await;
    let last = append(
        &store,
        &f.venue.stream(),
        &[VenueFact::VenueRenamed {
            name: "Hall Z".into(),
        }],
    )
    .await;
    project_until(store, &read, last).await;
    assert_eq!(details(&read, f.event).await.event.venue_name, "Hall Z");
}

pub async fn a_long_log_is_applied_in_batches_with_every_registration_counted(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let f = published_event(&store).await;
    let mut last = f.position;
    for chunk in 0..6 {
        let facts: Vec<EventFact> = (0..100)
            .map(|n| {
                let ticket_type = if (chunk * 100 + n) % 2 == 0 { f.a } else { f.b };
                let r = RegistrationId(Uuid::now_v7());
                // Each registration is confirmed and then cancelled again.
                [confirmed(r, ticket_type, 1), cancelled(r, ticket_type, 1)]
            })
            .flat_map(|pair| pair.into_iter())
            .collect();
        last = append(&store, &f.event.stream(), &facts).await;
    }
    let final_one = append(
        &store,
        &f.event.stream(),
        &[confirmed(RegistrationId(Uuid::now_v7()), f.b, 7)],
    )
    .await;
    assert!(final_one > last);
    project_until(store, &read, final_one).await;
    let d = details(&read, f.event).await;
    assert_eq!(seats(&d, f.a), (30, 0, 30));
    assert_eq!(seats(&d, f.b), (30, 7, 23));
}

pub async fn waiting_for_a_position_never_applied_times_out(backend: Backend) {
    let read = backend.read_models().await;
    let reached = read
        .wait_for(1_000_000, Duration::from_millis(100))
        .await
        .expect("wait_for");
    assert!(!reached);
    assert!(
        read.wait_for(0, Duration::ZERO).await.expect("wait_for"),
        "position 0 is always reached"
    );
}
