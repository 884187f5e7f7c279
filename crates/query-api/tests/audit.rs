//! The audit routes over a real log: a stream's history, the log as NDJSON and as Server-Sent
//! Events, and an event's state at a past point (`as_of`) checked against the domain's own fold
//! at every position of a recorded sequence. Each scenario runs on the in-memory log and on
//! Postgres.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use marquee_auth::{AuthStore, Authenticator, Directory};
use marquee_domain::event::{self, Attendee, DetailsChange, Event, EventFact, EventStatus};
use marquee_domain::organization::{OrganizationFact, Role};
use marquee_domain::venue::{self, Venue, VenueFact};
use marquee_domain::{
    EventId, FactCodec, Money, OrganizationId, PaymentId, RegistrationId, TicketCode, TicketTypeId,
    UserId, VenueId, WaitlistEntryId,
};
use marquee_projector::{Projector, ReadModels};
use marquee_query_api::access::Access;
use marquee_query_api::{QueryState, router};
use marquee_store::{
    AppendRequest, EventStore, ExpectedRevision, FactMetadata, NewFact, RecordedFact,
};
use serde_json::Value;
use tower::ServiceExt;
use uuid::Uuid;

/// Longest a test waits for something that should come at once, so that a bug fails the test
/// instead of hanging it. Not a measurement: nothing asserts how long anything took.
const PATIENCE: Duration = Duration::from_secs(30);

/// A query API over a live projector, with two organizations writing to one log.
struct AuditApi {
    store: Arc<dyn EventStore>,
    read: ReadModels,
    router: Router,
    access: Arc<Access>,
    auth: AuthStore,
    /// The organization under audit, and an access token of its owner.
    organization: OrganizationId,
    owner: String,
    /// Another organization writing to the same log.
    other: OrganizationId,
    other_owner: String,
    _stop: tokio::sync::oneshot::Sender<()>,
    /// The Postgres test database, dropped after the API.
    _keep: Box<dyn std::any::Any + Send>,
}

/// A response, read whole.
struct Reply {
    status: StatusCode,
    content_type: String,
    log_head: Option<u64>,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    /// The NDJSON lines of a `/v1/log` answer, each parsed back into a fact.
    #[track_caller]
    fn facts(&self) -> Vec<RecordedFact> {
        assert_eq!(self.status, StatusCode::OK, "{}", self.text);
        assert_eq!(self.content_type, "application/x-ndjson");
        assert!(
            self.text.is_empty() || self.text.ends_with('\n'),
            "every line ends with a newline"
        );
        self.text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }

    #[track_caller]
    fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(self.content_type, "application/problem+json");
        assert_eq!(self.json()["code"], code, "{}", self.text);
    }
}

impl AuditApi {
    async fn memory() -> Self {
        let store = marquee_store::connect("memory:").await.expect("store");
        let read = ReadModels::connect("memory:").await.expect("read models");
        Self::start(store, read, Box::new(())).await
    }

    async fn postgres() -> Self {
        let db = marquee_store::testing::PgTestDb::create().await;
        let store = marquee_store::connect(&db.url).await.expect("store");
        let read = ReadModels::connect(&db.url).await.expect("read models");
        Self::start(store, read, Box::new(db)).await
    }

    async fn start(
        store: Arc<dyn EventStore>,
        read: ReadModels,
        keep: Box<dyn std::any::Any + Send>,
    ) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(Projector::new(store.clone(), read.clone()).run(async move {
            let _ = stopped.await;
        }));
        let auth = AuthStore::connect("memory:").await.expect("auth tables");
        let access = Arc::new(Access {
            authenticator: Authenticator::new(auth.clone())
                .await
                .expect("authenticator"),
            directory: Directory::new(store.clone()),
        });
        let mut api = Self {
            router: router(
                QueryState::new(read.clone(), store.clone()).with_access(access.clone()),
            ),
            store,
            read,
            access,
            auth,
            organization: OrganizationId(Uuid::now_v7()),
            owner: String::new(),
            other: OrganizationId(Uuid::now_v7()),
            other_owner: String::new(),
            _stop: stop,
            _keep: keep,
        };
        api.owner = api.found(api.organization).await;
        api.other_owner = api.found(api.other).await;
        api
    }

    /// Creates `organization` with a new owner; the owner's access token.
    async fn found(&self, organization: OrganizationId) -> String {
        let owner = UserId(Uuid::now_v7());
        self.append(
            organization,
            &organization.stream(),
            &[OrganizationFact::OrganizationCreated {
                organization_id: organization,
                name: "Test organization".into(),
                owner,
                created_at: Utc::now(),
            }],
        )
        .await;
        self.token_for(owner).await
    }

    /// A new member of the audited organization with `role`; its access token.
    async fn member(&self, role: Role) -> String {
        let user = UserId(Uuid::now_v7());
        self.append(
            self.organization,
            &self.organization.stream(),
            &[OrganizationFact::MemberAdded {
                user_id: user,
                role,
            }],
        )
        .await;
        self.token_for(user).await
    }

    async fn token_for(&self, user: UserId) -> String {
        let (_, refresh_hash) = marquee_auth::tokens::new_refresh_token();
        let session = self
            .auth
            .create_session(user.0, &refresh_hash, Utc::now(), marquee_auth::REFRESH_TTL)
            .await
            .expect("session");
        self.access
            .authenticator
            .issue_access(user, session, Utc::now())
            .expect("access token")
    }

    /// Appends facts to one stream for `organization` (one append); the last position.
    async fn append<F: FactCodec>(
        &self,
        organization: OrganizationId,
        stream: &str,
        facts: &[F],
    ) -> u64 {
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
                        correlation_id: Some(Uuid::now_v7()),
                        causation_id: Some(Uuid::now_v7()),
                        actor: Some("user:test".into()),
                        organization: Some(organization.to_string()),
                    },
                }
            })
            .collect();
        self.append_raw(stream, facts).await
    }

    async fn append_raw(&self, stream: &str, facts: Vec<NewFact>) -> u64 {
        self.store
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

    /// Every fact of the log, in position order.
    async fn whole_log(&self) -> Vec<RecordedFact> {
        self.store.read_all(0, usize::MAX).await.expect("read_all")
    }

    async fn get(&self, uri: &str, token: Option<&str>) -> Reply {
        let response = self.request(uri, token, None).await;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let status = response.status();
        let content_type = header("content-type").unwrap_or_default();
        let log_head = header("marquee-log-head").map(|h| h.parse().expect("numeric head"));
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        Reply {
            status,
            content_type,
            log_head,
            text: String::from_utf8(bytes.to_vec()).expect("UTF-8"),
        }
    }

    async fn request(
        &self,
        uri: &str,
        token: Option<&str>,
        last_event_id: Option<u64>,
    ) -> axum::response::Response {
        let mut request = Request::get(uri);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        self.router
            .clone()
            .oneshot(request.body(Body::empty()).expect("request"))
            .await
            .expect("infallible")
    }

    fn log_uri(&self, query: &str) -> String {
        format!("/v1/log?organization_id={}{query}", self.organization)
    }
}

/// One Server-Sent Event as a client sees it.
#[derive(Debug)]
struct SseEvent {
    id: u64,
    event: String,
    data: RecordedFact,
}

/// Reads Server-Sent Events off a streaming body, skipping comments (keep-alives).
struct SseReader {
    body: axum::body::BodyDataStream,
    buffer: String,
}

impl SseReader {
    #[track_caller]
    fn open(response: axum::response::Response) -> Self {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        Self {
            body: response.into_body().into_data_stream(),
            buffer: String::new(),
        }
    }

    async fn next(&mut self) -> SseEvent {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut fields = BTreeMap::new();
                for line in block.lines() {
                    let (name, value) = line.split_once(':').unwrap_or((line, ""));
                    if !name.is_empty() {
                        fields.insert(
                            name.to_owned(),
                            value.strip_prefix(' ').unwrap_or(value).to_owned(),
                        );
                    }
                }
                if fields.is_empty() {
                    continue; // a comment: the keep-alive
                }
                return SseEvent {
                    id: fields["id"].parse().expect("numeric id"),
                    event: fields["event"].clone(),
                    data: serde_json::from_str(&fields["data"]).expect("a fact"),
                };
            }
            let chunk = tokio::time::timeout(PATIENCE, self.body.next())
                .await
                .expect("the next event comes")
                .expect("the stream stays open")
                .expect("body chunk");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("timestamp")
}

fn person(name: &str) -> Attendee {
    Attendee {
        name: name.to_owned(),
        email: format!("{}@example.org", name.to_lowercase()),
    }
}

fn codes(quantity: u32) -> Vec<TicketCode> {
    (0..quantity)
        .map(|_| TicketCode(Uuid::new_v4().simple().to_string()))
        .collect()
}

fn eur(amount_minor: i64) -> Money {
    Money {
        amount_minor,
        currency: "EUR".to_owned(),
    }
}

fn venue_created(venue: VenueId, name: &str) -> VenueFact {
    VenueFact::VenueCreated {
        venue_id: venue,
        name: name.to_owned(),
        city: "Berlin".to_owned(),
        address: None,
        capacity: 1000,
        timezone: "Europe/Berlin".to_owned(),
        created_at: at("2026-01-01T00:00:00Z"),
    }
}

fn drafted(event: EventId, venue: VenueId, title: &str) -> EventFact {
    EventFact::EventDrafted {
        event_id: event,
        venue_id: venue,
        title: title.to_owned(),
        description: format!("All about {title}"),
        category: "Music".to_owned(),
        starts_at: at("2026-06-01T18:00:00Z"),
        ends_at: at("2026-06-01T20:00:00Z"),
        timezone: "Europe/Berlin".to_owned(),
        capacity: 8,
        max_per_order: 4,
    }
}

fn ticket_type(id: TicketTypeId, name: &str, price_minor: i64, quantity: u32) -> EventFact {
    EventFact::TicketTypeAdded {
        ticket_type_id: id,
        name: name.to_owned(),
        price: eur(price_minor),
        quantity,
        sales_start: None,
        sales_end: None,
    }
}

/// A history touching every count the event page shows: free and paid seats, a hold that
/// expires, a waitlist with an offer, a capacity change, a rename, a cancellation of a
/// registration and finally of the event.
fn event_history(event: EventId, venue: VenueId) -> Vec<Vec<EventFact>> {
    let (free, vip) = (TicketTypeId(Uuid::now_v7()), TicketTypeId(Uuid::now_v7()));
    let (r1, r2, r3, r4) = (
        RegistrationId(Uuid::now_v7()),
        RegistrationId(Uuid::now_v7()),
        RegistrationId(Uuid::now_v7()),
        RegistrationId(Uuid::now_v7()),
    );
    let (w1, w2) = (
        WaitlistEntryId(Uuid::now_v7()),
        WaitlistEntryId(Uuid::now_v7()),
    );
    vec![
        vec![drafted(event, venue, "Gala")],
        vec![
            ticket_type(free, "Standard", 0, 6),
            ticket_type(vip, "VIP", 2500, 2),
        ],
        vec![EventFact::EventPublished {
            published_at: at("2026-02-01T00:00:00Z"),
        }],
        vec![EventFact::RegistrationConfirmed {
            registration_id: r1,
            ticket_type_id: free,
            attendee: person("Ada"),
            quantity: 3,
            ticket_codes: codes(3),
            confirmed_at: at("2026-02-02T00:00:00Z"),
        }],
        vec![EventFact::SeatsHeld {
            registration_id: r2,
            ticket_type_id: vip,
            attendee: person("Bo"),
            quantity: 2,
            ticket_codes: codes(2),
            price: eur(5000),
            expires_at: at("2026-02-02T10:15:00Z"),
            held_at: at("2026-02-02T10:00:00Z"),
        }],
        vec![EventFact::WaitlistJoined {
            entry_id: w1,
            ticket_type_id: vip,
            attendee: person("Cy"),
            quantity: 1,
            answers: Default::default(),
            joined_at: at("2026-02-02T10:05:00Z"),
        }],
        vec![EventFact::WaitlistJoined {
            entry_id: w2,
            ticket_type_id: vip,
            attendee: person("Di"),
            quantity: 1,
            answers: Default::default(),
            joined_at: at("2026-02-02T10:06:00Z"),
        }],
        vec![
            EventFact::HoldExpired {
                registration_id: r2,
                ticket_type_id: vip,
                quantity: 2,
                expired_at: at("2026-02-02T10:15:00Z"),
            },
            EventFact::WaitlistOfferMade {
                entry_id: w1,
                ticket_type_id: vip,
                quantity: 1,
                expires_at: at("2026-02-03T10:15:00Z"),
                offered_at: at("2026-02-02T10:15:00Z"),
            },
        ],
        vec![
            EventFact::WaitlistOfferClaimed {
                entry_id: w1,
                registration_id: r3,
                ticket_type_id: vip,
                quantity: 1,
                claimed_at: at("2026-02-02T11:00:00Z"),
            },
            EventFact::SeatsHeld {
                registration_id: r3,
                ticket_type_id: vip,
                attendee: person("Cy"),
                quantity: 1,
                ticket_codes: codes(1),
                price: eur(2500),
                expires_at: at("2026-02-02T11:15:00Z"),
                held_at: at("2026-02-02T11:00:00Z"),
            },
        ],
        vec![
            EventFact::PaymentReceived {
                registration_id: r3,
                payment_id: PaymentId("pay_cy".into()),
                amount: eur(2500),
                received_at: at("2026-02-02T11:05:00Z"),
            },
            EventFact::HoldConfirmed {
                registration_id: r3,
                ticket_type_id: vip,
                quantity: 1,
                payment_id: PaymentId("pay_cy".into()),
                late: false,
                confirmed_at: at("2026-02-02T11:05:00Z"),
            },
        ],
        vec![EventFact::EventCapacityChanged { capacity: 6 }],
        vec![EventFact::EventDetailsUpdated(DetailsChange {
            title: Some("Grand gala".into()),
            ..DetailsChange::default()
        })],
        vec![EventFact::RegistrationConfirmed {
            registration_id: r4,
            ticket_type_id: free,
            attendee: person("Eve"),
            quantity: 2,
            ticket_codes: codes(2),
            confirmed_at: at("2026-02-03T00:00:00Z"),
        }],
        vec![EventFact::RegistrationCancelled {
            registration_id: r1,
            ticket_type_id: free,
            quantity: 3,
            cancelled_at: at("2026-02-04T00:00:00Z"),
        }],
        vec![EventFact::EventCancelled {
            reason: Some("storm".into()),
            cancelled_at: at("2026-03-01T00:00:00Z"),
        }],
    ]
}

/// Writes the audited organization's venue and event with `event_history`, interleaved with
/// other streams' facts (a second event, the venue renamed, the other organization's venue), so
/// that most positions of the log are not the event's. Returns the event.
async fn recorded_sequence(api: &AuditApi) -> EventId {
    let (venue, event, neighbour) = (
        VenueId(Uuid::now_v7()),
        EventId(Uuid::now_v7()),
        EventId(Uuid::now_v7()),
    );
    let other_venue = VenueId(Uuid::now_v7());
    let org = api.organization;
    api.append(org, &venue.stream(), &[venue_created(venue, "Hall A")])
        .await;
    for (step, facts) in event_history(event, venue).into_iter().enumerate() {
        api.append(org, &event.stream(), &facts).await;
        match step {
            0 => {
                api.append(
                    org,
                    &neighbour.stream(),
                    &[drafted(neighbour, venue, "Other")],
                )
                .await;
            }
            4 => {
                api.append(
                    org,
                    &venue.stream(),
                    &[VenueFact::VenueRenamed {
                        name: "Hall A (new)".into(),
                    }],
                )
                .await;
            }
            7 => {
                api.append(
                    api.other,
                    &other_venue.stream(),
                    &[venue_created(other_venue, "Elsewhere")],
                )
                .await;
            }
            _ => {}
        }
    }
    event
}

/// The event page as `evolve` says it was after the event's facts `facts` (and the venue's
/// `venue_facts`), in the API's JSON, without `as_of`.
fn expected_page(event_id: EventId, facts: &[EventFact], venue_facts: &[VenueFact]) -> Value {
    let mut state = Event::default();
    let (mut published_at, mut cancelled_at, mut order) = (None, None, Vec::new());
    for fact in facts {
        state = event::evolve(state, fact);
        match fact {
            EventFact::TicketTypeAdded { ticket_type_id, .. } => order.push(*ticket_type_id),
            EventFact::EventPublished { published_at: t } => published_at = Some(*t),
            EventFact::EventCancelled {
                cancelled_at: t, ..
            } => cancelled_at = Some(*t),
            _ => {}
        }
    }
    let venue = venue_facts.iter().fold(Venue::default(), venue::evolve);
    let status = match state.status {
        EventStatus::Draft => "draft",
        EventStatus::Published => "published",
        EventStatus::Cancelled => "cancelled",
    };
    let ticket_types: Vec<Value> = order
        .iter()
        .map(|id| {
            let t = &state.ticket_types[id];
            serde_json::json!({
                "ticket_type_id": id.0,
                "name": t.name,
                "price": { "amount_minor": t.price.amount_minor, "currency": t.price.currency },
                "quantity": t.quantity,
                "confirmed": t.confirmed,
                "held": t.held,
                "offered": t.offered,
                "available": state.available(*id),
                "waitlist": state.waiting(*id),
                "sales_start": t.sales_start,
                "sales_end": t.sales_end,
            })
        })
        .collect();
    let cheapest = order
        .iter()
        .map(|id| &state.ticket_types[id])
        .min_by_key(|t| t.price.amount_minor)
        .map(|t| serde_json::json!({ "amount_minor": t.price.amount_minor, "currency": t.price.currency }));
    let sum = |count: fn(&marquee_domain::event::TicketType) -> u64| -> u64 {
        state.ticket_types.values().map(count).sum()
    };
    serde_json::json!({
        "event_id": event_id.0,
        "status": status,
        "title": state.title,
        "description": state.description,
        "category": state.category,
        "venue": { "id": state.venue_id.map(|v| v.0), "name": venue.name, "city": venue.city },
        "starts_at": state.starts_at,
        "ends_at": state.ends_at,
        "timezone": state.timezone,
        "capacity": state.capacity,
        "confirmed": state.confirmed(),
        "held": state.held(),
        "offered": sum(|t| u64::from(t.offered)),
        "available": state.capacity.saturating_sub(state.used()),
        "waitlist": sum(|t| t.waiting.len() as u64),
        "max_per_order": state.max_per_order,
        "min_price": cheapest,
        "published_at": published_at,
        "cancelled_at": cancelled_at,
        "ticket_types": ticket_types,
    })
}

/// The event's and the venue's facts among `log` that `keep` keeps, decoded; and the last kept
/// fact of the event.
fn facts_until(
    log: &[RecordedFact],
    event: EventId,
    venue_stream: &str,
    keep: impl Fn(&RecordedFact) -> bool,
) -> (Vec<EventFact>, Vec<VenueFact>, Option<RecordedFact>) {
    let (mut facts, mut venue_facts, mut last) = (Vec::new(), Vec::new(), None);
    for recorded in log.iter().filter(|f| keep(f)) {
        if recorded.stream == event.stream() {
            facts.push(
                EventFact::decode(
                    &recorded.fact_type,
                    recorded.schema_version,
                    recorded.data.clone(),
                )
                .expect("an event fact"),
            );
            last = Some(recorded.clone());
        } else if recorded.stream == venue_stream {
            venue_facts.push(
                VenueFact::decode(
                    &recorded.fact_type,
                    recorded.schema_version,
                    recorded.data.clone(),
                )
                .expect("a venue fact"),
            );
        }
    }
    (facts, venue_facts, last)
}

/// Checks an `as_of` answer against the fold of the facts `keep` keeps.
#[track_caller]
fn assert_as_of(
    reply: &Reply,
    log: &[RecordedFact],
    event: EventId,
    venue_stream: &str,
    keep: impl Fn(&RecordedFact) -> bool,
    label: &str,
) {
    let (facts, venue_facts, last) = facts_until(log, event, venue_stream, keep);
    let Some(last) = last else {
        reply.assert_problem(404, "not_found");
        return;
    };
    assert_eq!(reply.status, StatusCode::OK, "{label}: {}", reply.text);
    let mut body = reply.json();
    let as_of = body
        .as_object_mut()
        .and_then(|o| o.remove("as_of"))
        .expect("as_of");
    assert_eq!(
        as_of,
        serde_json::json!({
            "position": last.position,
            "revision": last.revision,
            "recorded_at": last.recorded_at,
        }),
        "{label}"
    );
    assert_eq!(
        body,
        expected_page(event, &facts, &venue_facts),
        "{label}: the event as evolve folds it"
    );
}

/// The venue stream of `event`, from its first fact.
async fn venue_stream_of(api: &AuditApi, event: EventId) -> String {
    let first = api
        .store
        .read_stream(&event.stream(), 0, 1)
        .await
        .expect("read");
    let venue = first[0].data["venue_id"].as_str().expect("venue_id");
    format!("venue-{venue}")
}

// ---------------------------------------------------------------------------------------------

async fn a_streams_history_pages_through_every_fact_with_its_metadata(api: AuditApi) {
    let event = recorded_sequence(&api).await;
    let stored = api
        .store
        .read_stream(&event.stream(), 0, usize::MAX)
        .await
        .expect("read");
    let mut seen = Vec::new();
    let mut from = 0;
    loop {
        let reply = api
            .get(
                &format!(
                    "/v1/streams/{}?from_revision={from}&limit=4",
                    event.stream()
                ),
                Some(&api.owner),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let page = reply.json();
        assert_eq!(page["stream"], event.stream());
        let items: Vec<RecordedFact> =
            serde_json::from_value(page["items"].clone()).expect("facts");
        assert!(items.len() <= 4);
        seen.extend(items);
        match page["next_from_revision"].as_u64() {
            Some(next) => from = next,
            None => break,
        }
    }
    assert_eq!(
        seen, stored,
        "every fact once, in revision order, as stored"
    );
    let first = api
        .get(
            &format!("/v1/streams/{}?limit=1", event.stream()),
            Some(&api.owner),
        )
        .await
        .json();
    let fact = &first["items"][0];
    for member in [
        "position",
        "revision",
        "fact_id",
        "fact_type",
        "schema_version",
        "recorded_at",
        "data",
    ] {
        assert!(!fact[member].is_null(), "{member} in {fact}");
    }
    for member in ["correlation_id", "causation_id", "actor", "organization"] {
        assert!(!fact["metadata"][member].is_null(), "{member} in {fact}");
    }
    assert_eq!(
        fact["metadata"]["organization"],
        api.organization.to_string()
    );

    let past_the_end = api
        .get(
            &format!("/v1/streams/{}?from_revision=1000", event.stream()),
            Some(&api.owner),
        )
        .await
        .json();
    assert_eq!(past_the_end["items"], serde_json::json!([]));
    assert_eq!(past_the_end["next_from_revision"], Value::Null);
    api.get(
        &format!("/v1/streams/event-{}", Uuid::now_v7()),
        Some(&api.owner),
    )
    .await
    .assert_problem(404, "not_found");
}

async fn the_log_holds_only_the_organizations_facts_in_increasing_position_without_gaps(
    api: AuditApi,
) {
    recorded_sequence(&api).await;
    let log = api.whole_log().await;
    let head = log.last().expect("facts").position;
    let organization = api.organization.to_string();
    let ours: Vec<RecordedFact> = log
        .iter()
        .filter(|f| f.metadata.organization.as_deref() == Some(organization.as_str()))
        .cloned()
        .collect();
    assert!(ours.len() < log.len(), "the other organization wrote too");

    let reply = api.get(&api.log_uri(""), Some(&api.owner)).await;
    assert_eq!(reply.log_head, Some(head));
    let lines = reply.facts();
    assert_eq!(
        lines, ours,
        "exactly the organization's facts, in position order, none missing"
    );
    assert!(lines.windows(2).all(|w| w[0].position < w[1].position));

    // Page by page: `limit` lines, then on from the last line's position.
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = api
            .get(
                &api.log_uri(&format!("&after={after}&limit=3")),
                Some(&api.owner),
            )
            .await
            .facts();
        assert!(page.len() <= 3);
        paged.extend(page.iter().cloned());
        match page.last() {
            Some(last) if page.len() == 3 => after = last.position,
            _ => break,
        }
    }
    assert_eq!(paged, ours, "the pages add up to the whole");

    let from_middle = ours[ours.len() / 2].position;
    let tail = api
        .get(
            &api.log_uri(&format!("&after={from_middle}")),
            Some(&api.owner),
        )
        .await
        .facts();
    assert_eq!(tail, ours[ours.len() / 2 + 1..]);
    let empty = api
        .get(&api.log_uri(&format!("&after={head}")), Some(&api.owner))
        .await;
    assert_eq!(empty.facts(), Vec::<RecordedFact>::new());

    // The other organization's owner reads its own facts, and none of ours.
    let theirs = api
        .get(
            &format!("/v1/log?organization_id={}", api.other),
            Some(&api.other_owner),
        )
        .await
        .facts();
    assert!(!theirs.is_empty());
    assert!(
        theirs
            .iter()
            .all(|f| f.metadata.organization.as_deref() == Some(api.other.to_string().as_str()))
    );
}

async fn the_live_log_resumes_after_last_event_id_and_delivers_facts_appended_after_connecting(
    api: AuditApi,
) {
    recorded_sequence(&api).await;
    let organization = api.organization.to_string();
    let ours: Vec<RecordedFact> = api
        .whole_log()
        .await
        .into_iter()
        .filter(|f| f.metadata.organization.as_deref() == Some(organization.as_str()))
        .collect();
    let resume_after = ours[3].position;
    let live_uri = format!("/v1/log/live?organization_id={}&after=1", api.organization);
    // `Last-Event-ID` (a reconnecting client) wins over `after`.
    let response = api
        .request(&live_uri, Some(&api.owner), Some(resume_after))
        .await;
    let mut events = SseReader::open(response);
    for expected in &ours[4..] {
        let event = events.next().await;
        assert_eq!(event.id, expected.position);
        assert_eq!(event.event, expected.fact_type);
        assert_eq!(&event.data, expected, "the line of /v1/log");
    }

    // Appended after connecting: another organization's fact (not shown), then ours.
    let elsewhere = VenueId(Uuid::now_v7());
    api.append(
        api.other,
        &elsewhere.stream(),
        &[venue_created(elsewhere, "Elsewhere")],
    )
    .await;
    let venue = VenueId(Uuid::now_v7());
    let position = api
        .append(
            api.organization,
            &venue.stream(),
            &[venue_created(venue, "Late hall")],
        )
        .await;
    let live = events.next().await;
    assert_eq!(live.id, position, "the next event is our new fact, live");
    assert_eq!(live.event, "VenueCreated");
    assert_eq!(live.data.stream, venue.stream());

    // A client that reconnects with the last id it saw gets nothing twice.
    let response = api
        .request(&live_uri, Some(&api.owner), Some(live.id))
        .await;
    let mut again = SseReader::open(response);
    let next = VenueId(Uuid::now_v7());
    let position = api
        .append(
            api.organization,
            &next.stream(),
            &[venue_created(next, "Later hall")],
        )
        .await;
    assert_eq!(again.next().await.id, position);
}

/// The log and histories are audit material: owners and auditors read them; other members are
/// refused, outsiders as if the organization's log did not exist.
async fn the_log_and_histories_are_for_owners_and_auditors_only(api: AuditApi) {
    let event = recorded_sequence(&api).await;
    let (organizer, door_staff, analyst, auditor) = (
        api.member(Role::Organizer).await,
        api.member(Role::DoorStaff).await,
        api.member(Role::Analyst).await,
        api.member(Role::Auditor).await,
    );
    let outsider = api.token_for(UserId(Uuid::now_v7())).await;
    let live = format!("/v1/log/live?organization_id={}", api.organization);
    let uris = [
        api.log_uri(""),
        live.clone(),
        format!("/v1/streams/{}", event.stream()),
        format!("/v1/streams/{}", api.organization.stream()),
    ];
    for uri in &uris {
        api.get(uri, None).await.assert_problem(401, "unauthorized");
        api.get(uri, Some("not-a-token"))
            .await
            .assert_problem(401, "unauthorized");
        api.get(uri, Some(&outsider))
            .await
            .assert_problem(404, "not_found");
        api.get(uri, Some(&api.other_owner))
            .await
            .assert_problem(404, "not_found");
        for token in [&organizer, &door_staff, &analyst] {
            api.get(uri, Some(token))
                .await
                .assert_problem(403, "forbidden");
        }
        for token in [&api.owner, &auditor] {
            // The live log never ends: only its status and type are read.
            let response = api.request(uri, Some(token), None).await;
            assert_eq!(response.status(), StatusCode::OK, "{uri}");
        }
    }
    // An organization that does not exist is as unknown as one the caller is not in.
    api.get(
        &format!("/v1/log?organization_id={}", Uuid::now_v7()),
        Some(&auditor),
    )
    .await
    .assert_problem(404, "not_found");

    // An account's own stream is its own business only.
    let user = UserId(Uuid::now_v7());
    api.append_raw(
        &user.stream(),
        vec![NewFact {
            fact_id: Uuid::now_v7(),
            fact_type: "UserRegistered".into(),
            schema_version: 1,
            data: serde_json::json!({ "name": "sealed:v1:opaque" }),
            metadata: FactMetadata::default(),
        }],
    )
    .await;
    let own = api
        .get(
            &format!("/v1/streams/{}", user.stream()),
            Some(&api.token_for(user).await),
        )
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    assert_eq!(
        own.json()["items"][0]["data"]["name"],
        "sealed:v1:opaque",
        "facts are shown as stored, sealed data sealed"
    );
    for token in [&api.owner, &auditor, &outsider] {
        api.get(&format!("/v1/streams/{}", user.stream()), Some(token))
            .await
            .assert_problem(404, "not_found");
    }
    // Account streams carry no organization: not in any organization's log.
    let log = api.get(&api.log_uri(""), Some(&auditor)).await.facts();
    assert!(log.iter().all(|f| f.stream != user.stream()));
}

/// `as_of` against a recorded sequence: at EVERY position of the log, the answer is the
/// event as the domain's `evolve` folds its facts up to there (404 before it existed), with the
/// venue's name as it was.
async fn as_of_every_position_answers_the_state_the_domain_folds_up_to_it(api: AuditApi) {
    let event = recorded_sequence(&api).await;
    let log = api.whole_log().await;
    let venue_stream = venue_stream_of(&api, event).await;
    let head = log.last().expect("facts").position;
    // Which counts the sequence moved at some point: each must, or the check proves little.
    let mut moved = std::collections::BTreeSet::new();
    for position in 0..=head {
        let reply = api
            .get(
                &format!("/v1/events/{}?as_of={position}", event.0),
                Some(&api.owner),
            )
            .await;
        if reply.status == StatusCode::OK {
            let body = reply.json();
            for count in ["confirmed", "held", "offered", "waitlist"] {
                if body[count].as_u64().is_some_and(|n| n > 0) {
                    moved.insert(count.to_owned());
                }
            }
            moved.insert(body["status"].as_str().expect("status").to_owned());
        }
        assert_as_of(
            &reply,
            &log,
            event,
            &venue_stream,
            |f| f.position <= position,
            &format!("as_of={position}"),
        );
    }
    for wanted in [
        "confirmed",
        "held",
        "offered",
        "waitlist",
        "draft",
        "published",
        "cancelled",
    ] {
        assert!(moved.contains(wanted), "the sequence never shows {wanted}");
    }
    // At the head, the past is the present: the live page has the same answer.
    assert!(
        api.read
            .wait_for(head, PATIENCE)
            .await
            .expect("wait for the projector")
    );
    let mut past = api
        .get(
            &format!("/v1/events/{}?as_of={head}", event.0),
            Some(&api.owner),
        )
        .await
        .json();
    past.as_object_mut().expect("object").remove("as_of");
    let live = api
        .get(&format!("/v1/events/{}", event.0), None)
        .await
        .json();
    assert_eq!(past, live, "as_of the head equals the read models' page");
}

/// `as_of=<time>`: every fact recorded at or before that time, whatever its position.
async fn as_of_a_time_folds_every_fact_recorded_until_then(api: AuditApi) {
    let event = recorded_sequence(&api).await;
    let log = api.whole_log().await;
    let venue_stream = venue_stream_of(&api, event).await;
    let stream = event.stream();
    let times: Vec<DateTime<Utc>> = log
        .iter()
        .filter(|f| f.stream == stream)
        .map(|f| f.recorded_at)
        .collect();
    let before = times[0] - chrono::Duration::microseconds(1);
    for time in std::iter::once(before).chain(times) {
        let text = time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let reply = api
            .get(
                &format!("/v1/events/{}?as_of={text}", event.0),
                Some(&api.owner),
            )
            .await;
        assert_as_of(
            &reply,
            &log,
            event,
            &venue_stream,
            |f| f.recorded_at <= time,
            &format!("as_of={text}"),
        );
    }
    // Any offset names the same instant.
    let middle = log
        .iter()
        .filter(|f| f.stream == stream)
        .nth(5)
        .expect("fact");
    let offset = middle
        .recorded_at
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).expect("offset"))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
        .replace('+', "%2B");
    let reply = api
        .get(
            &format!("/v1/events/{}?as_of={offset}", event.0),
            Some(&api.owner),
        )
        .await;
    assert_eq!(reply.json()["as_of"]["position"], middle.position);
}

/// The past includes drafts: owners, organizers and auditors only, while the page without
/// `as_of` stays public. A point the log has not reached is refused.
async fn as_of_is_for_owners_organizers_and_auditors_and_refuses_the_future(api: AuditApi) {
    let event = recorded_sequence(&api).await;
    let head = api.whole_log().await.last().expect("facts").position;
    let uri = format!("/v1/events/{}?as_of={head}", event.0);
    let (organizer, door_staff, analyst, auditor) = (
        api.member(Role::Organizer).await,
        api.member(Role::DoorStaff).await,
        api.member(Role::Analyst).await,
        api.member(Role::Auditor).await,
    );
    api.get(&uri, None)
        .await
        .assert_problem(401, "unauthorized");
    api.get(&uri, Some(&api.other_owner))
        .await
        .assert_problem(404, "not_found");
    for token in [&door_staff, &analyst] {
        api.get(&uri, Some(token))
            .await
            .assert_problem(403, "forbidden");
    }
    for token in [&api.owner, &organizer, &auditor] {
        let reply = api.get(&uri, Some(token)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
    assert!(api.read.wait_for(head, PATIENCE).await.expect("wait"));
    let public = api.get(&format!("/v1/events/{}", event.0), None).await;
    assert_eq!(public.status, StatusCode::OK, "{}", public.text);
    assert!(public.json().get("as_of").is_none());

    let head_now = api.store.head_position().await.expect("head");
    for (query, field) in [
        (format!("as_of={}", head_now + 1), "as_of"),
        ("as_of=2999-01-01T00:00:00Z".to_owned(), "as_of"),
        ("as_of=yesterday".to_owned(), "as_of"),
        ("as_of=&as_of=1".to_owned(), "as_of"),
        (format!("as_of={head}&fields=all"), "fields"),
    ] {
        let reply = api
            .get(&format!("/v1/events/{}?{query}", event.0), Some(&api.owner))
            .await;
        reply.assert_problem(400, "validation_failed");
        assert_eq!(reply.json()["field"], field, "{query}");
    }
    api.get(
        &format!("/v1/events/{}?as_of=1", Uuid::now_v7()),
        Some(&api.owner),
    )
    .await
    .assert_problem(404, "not_found");
}

async fn bad_log_and_history_parameters_are_400_problems_naming_the_parameter(api: AuditApi) {
    recorded_sequence(&api).await;
    let org = api.organization;
    for (uri, field) in [
        ("/v1/log".to_owned(), "organization_id"),
        ("/v1/log?organization_id=acme".to_owned(), "organization_id"),
        (format!("/v1/log?organization_id={org}&after=x"), "after"),
        (format!("/v1/log?organization_id={org}&limit=0"), "limit"),
        (format!("/v1/log?organization_id={org}&cursor=1"), "cursor"),
        (
            format!("/v1/log/live?organization_id={org}&limit=5"),
            "limit",
        ),
        (format!("/v1/streams/{}?limit=1001", org.stream()), "limit"),
        (
            format!("/v1/streams/{}?from_revision=-1", org.stream()),
            "from_revision",
        ),
    ] {
        let reply = api.get(&uri, Some(&api.owner)).await;
        reply.assert_problem(400, "validation_failed");
        assert_eq!(reply.json()["field"], field, "{uri}");
    }
    let response = api
        .request(
            &format!("/v1/log/live?organization_id={org}"),
            Some(&api.owner),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let request = Request::get(format!("/v1/log/live?organization_id={org}"))
        .header("authorization", format!("Bearer {}", api.owner))
        .header("last-event-id", "seven")
        .body(Body::empty())
        .expect("request");
    let reply = api
        .router
        .clone()
        .oneshot(request)
        .await
        .expect("infallible");
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
}

/// Each scenario against the in-memory log, and again against Postgres.
macro_rules! on_every_engine {
    ($($name:ident),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(AuditApi::memory().await).await;
                }
            )*
        }
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(AuditApi::postgres().await).await;
                }
            )*
        }
    };
}

on_every_engine!(
    a_streams_history_pages_through_every_fact_with_its_metadata,
    the_log_holds_only_the_organizations_facts_in_increasing_position_without_gaps,
    the_live_log_resumes_after_last_event_id_and_delivers_facts_appended_after_connecting,
    the_log_and_histories_are_for_owners_and_auditors_only,
    as_of_every_position_answers_the_state_the_domain_folds_up_to_it,
    as_of_a_time_folds_every_fact_recorded_until_then,
    as_of_is_for_owners_organizers_and_auditors_and_refuses_the_future,
);

#[tokio::test]
async fn bad_log_and_history_parameters_are_400_problems_naming_the_parameter_on_memory() {
    bad_log_and_history_parameters_are_400_problems_naming_the_parameter(AuditApi::memory().await)
        .await;
}
