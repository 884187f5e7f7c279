//! The query API's routes over real read models: an in-memory log, a projector running in the
//! background, and requests sent straight into the router.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Utc};
use marquee_auth::{AuthStore, Authenticator, Directory};
use marquee_domain::event::{AnswerValue, Attendee, DetailsChange, EventFact};
use marquee_domain::organization::{OrganizationFact, Role};
use marquee_domain::venue::VenueFact;
use marquee_domain::{
    EventId, FactCodec, Money, PaymentId, RegistrationId, TicketCode, TicketTypeId, VenueId,
    WaitlistEntryId,
};
use marquee_domain::{OrganizationId, UserId};
use marquee_projector::{Projector, ReadModels};
use marquee_query_api::access::Access;
use marquee_query_api::{QueryState, router};
use marquee_store::{AppendRequest, EventStore, ExpectedRevision, FactMetadata, NewFact};
use serde_json::Value;
use tower::ServiceExt;
use uuid::Uuid;

/// A query API over a live projector; the projector stops when this is dropped.
struct TestApi {
    store: Arc<dyn EventStore>,
    read: ReadModels,
    router: Router,
    /// Checks credentials and roles; shared by every router this API builds.
    access: Arc<Access>,
    /// The organization that owns every venue and event the tests write.
    organization: OrganizationId,
    /// An access token of the organization's owner, sent with every request.
    token: String,
    /// The auth tables, to make more accounts.
    auth: AuthStore,
    _stop: tokio::sync::oneshot::Sender<()>,
    /// The Postgres test database, dropped after the API.
    _keep: Box<dyn std::any::Any + Send>,
}

struct Reply {
    status: StatusCode,
    content_type: String,
    position: Option<u64>,
    retry_after: Option<String>,
    body: Value,
}

impl Reply {
    #[track_caller]
    fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(self.content_type, "application/problem+json");
        assert_eq!(self.body["code"], code, "{}", self.body);
        assert_eq!(self.body["status"], status);
        assert!(self.body["type"].is_string() && self.body["title"].is_string());
        assert!(self.body["detail"].is_string());
    }
}

impl TestApi {
    /// An in-memory log and read models.
    async fn memory() -> Self {
        let store = marquee_store::connect("memory:").await.expect("store");
        let read = ReadModels::connect("memory:").await.expect("read models");
        Self::start(store, read, Box::new(())).await
    }

    /// The log and the read models in one fresh Postgres database.
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
        let organization = OrganizationId(Uuid::now_v7());
        let owner = UserId(Uuid::now_v7());
        let mut api = Self {
            router: router(
                QueryState::new(read.clone(), store.clone()).with_access(access.clone()),
            ),
            store,
            read,
            access,
            organization,
            token: String::new(),
            auth,
            _stop: stop,
            _keep: keep,
        };
        api.append(
            &organization.stream(),
            &[OrganizationFact::OrganizationCreated {
                organization_id: organization,
                name: "Test organization".into(),
                owner,
                created_at: Utc::now(),
            }],
        )
        .await;
        api.token = api.token_for(owner).await;
        api
    }

    /// A signed-in access token of `user`.
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

    /// The same API with another `Marquee-Min-Position` timeout.
    fn with_min_position_timeout(mut self, min_position_timeout: Duration) -> Self {
        self.router = router(
            QueryState::new(self.read.clone(), self.store.clone())
                .with_min_position_timeout(min_position_timeout)
                .with_access(self.access.clone()),
        );
        self
    }

    async fn send(&self, request: Request<Body>) -> Reply {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let status = response.status();
        let content_type = header("content-type").unwrap_or_default();
        let position = header("marquee-position").map(|p| p.parse().expect("numeric position"));
        let retry_after = header("retry-after");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            content_type,
            position,
            retry_after,
            body,
        }
    }

    async fn get(&self, uri: &str) -> Reply {
        self.get_as(uri, Some(&self.token)).await
    }

    /// A `GET` with `token` as the bearer (or none).
    async fn get_as(&self, uri: &str, token: Option<&str>) -> Reply {
        let mut request = Request::get(uri);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        self.send(request.body(Body::empty()).expect("request"))
            .await
    }

    async fn get_at(&self, uri: &str, min_position: &str) -> Reply {
        self.send(
            Request::get(uri)
                .header("authorization", format!("Bearer {}", self.token))
                .header("Marquee-Min-Position", min_position)
                .body(Body::empty())
                .expect("request"),
        )
        .await
    }

    /// Appends facts to one stream and waits until the read models have them.
    async fn given<F: FactCodec>(&self, stream: &str, facts: &[F]) -> u64 {
        let position = self.append(stream, facts).await;
        assert!(
            self.read
                .wait_for(position, Duration::from_secs(10))
                .await
                .expect("wait"),
            "projected"
        );
        position
    }

    async fn append<F: FactCodec>(&self, stream: &str, facts: &[F]) -> u64 {
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
                        organization: Some(self.organization.to_string()),
                        ..FactMetadata::default()
                    },
                }
            })
            .collect();
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

    async fn venue(&self, name: &str, city: &str) -> VenueId {
        let venue = VenueId(Uuid::now_v7());
        let created = VenueFact::VenueCreated {
            venue_id: venue,
            name: name.to_owned(),
            city: city.to_owned(),
            address: Some("Main St 1".to_owned()),
            capacity: 1000,
            timezone: "Europe/Berlin".to_owned(),
            created_at: at("2026-01-01T00:00:00Z"),
        };
        self.given(&venue.stream(), &[created]).await;
        venue
    }

    /// Drafts an event; with `then` facts appended after the draft.
    async fn event(
        &self,
        venue: VenueId,
        title: &str,
        category: &str,
        starts_at: &str,
        then: Vec<EventFact>,
    ) -> (EventId, u64) {
        let event = EventId(Uuid::now_v7());
        let starts = at(starts_at);
        let mut facts = vec![EventFact::EventDrafted {
            event_id: event,
            venue_id: venue,
            title: title.to_owned(),
            description: format!("All about {title}"),
            category: category.to_owned(),
            starts_at: starts,
            ends_at: starts + chrono::Duration::hours(2),
            timezone: "Europe/Berlin".to_owned(),
            capacity: 100,
            max_per_order: 10,
        }];
        facts.extend(then);
        let position = self.given(&event.stream(), &facts).await;
        (event, position)
    }
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("timestamp")
}

fn published() -> EventFact {
    EventFact::EventPublished {
        published_at: at("2026-02-01T00:00:00Z"),
    }
}

fn ticket_type(id: TicketTypeId, name: &str, price_minor: i64, quantity: u32) -> EventFact {
    EventFact::TicketTypeAdded {
        ticket_type_id: id,
        name: name.to_owned(),
        price: Money {
            amount_minor: price_minor,
            currency: "EUR".to_owned(),
        },
        quantity,
        sales_start: Some(at("2026-02-01T00:00:00Z")),
        sales_end: None,
    }
}

fn confirmed(ticket_type: TicketTypeId, quantity: u32) -> EventFact {
    EventFact::RegistrationConfirmed {
        registration_id: RegistrationId(Uuid::now_v7()),
        ticket_type_id: ticket_type,
        attendee: Attendee {
            name: "Grace".to_owned(),
            email: "grace@example.org".to_owned(),
        },
        quantity,
        ticket_codes: (0..quantity)
            .map(|_| TicketCode(Uuid::new_v4().simple().to_string()))
            .collect(),
        confirmed_at: at("2026-02-02T00:00:00Z"),
    }
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

fn registered(
    registration: RegistrationId,
    ticket_type: TicketTypeId,
    name: &str,
    ticket_codes: Vec<TicketCode>,
) -> EventFact {
    EventFact::RegistrationConfirmed {
        registration_id: registration,
        ticket_type_id: ticket_type,
        attendee: person(name),
        quantity: u32::try_from(ticket_codes.len()).expect("few codes"),
        ticket_codes,
        confirmed_at: at("2026-02-02T00:00:00Z"),
    }
}

/// Seats of a 25 EUR ticket type held until 10:15.
fn held(
    registration: RegistrationId,
    ticket_type: TicketTypeId,
    name: &str,
    quantity: u32,
) -> EventFact {
    EventFact::SeatsHeld {
        registration_id: registration,
        ticket_type_id: ticket_type,
        attendee: person(name),
        quantity,
        ticket_codes: codes(quantity),
        price: Money {
            amount_minor: 2500 * i64::from(quantity),
            currency: "EUR".to_owned(),
        },
        expires_at: at("2026-02-02T10:15:00Z"),
        held_at: at("2026-02-02T10:00:00Z"),
    }
}

fn paid(
    registration: RegistrationId,
    ticket_type: TicketTypeId,
    quantity: u32,
    payment: &str,
) -> [EventFact; 2] {
    [
        EventFact::PaymentReceived {
            registration_id: registration,
            payment_id: PaymentId(payment.to_owned()),
            amount: Money {
                amount_minor: 2500 * i64::from(quantity),
                currency: "EUR".to_owned(),
            },
            received_at: at("2026-02-02T10:05:00Z"),
        },
        EventFact::HoldConfirmed {
            registration_id: registration,
            ticket_type_id: ticket_type,
            quantity,
            payment_id: PaymentId(payment.to_owned()),
            late: false,
            confirmed_at: at("2026-02-02T10:05:00Z"),
        },
    ]
}

fn joined(
    entry: WaitlistEntryId,
    ticket_type: TicketTypeId,
    name: &str,
    quantity: u32,
) -> EventFact {
    EventFact::WaitlistJoined {
        entry_id: entry,
        ticket_type_id: ticket_type,
        attendee: person(name),
        quantity,
        answers: Default::default(),
        joined_at: at("2026-02-02T11:00:00Z"),
    }
}

fn item_ids(reply: &Reply) -> Vec<String> {
    reply.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("items in {}", reply.body))
        .iter()
        .map(|item| item["event_id"].as_str().expect("event_id").to_owned())
        .collect()
}

fn ids(events: &[EventId]) -> Vec<String> {
    events.iter().map(|e| e.0.to_string()).collect()
}

async fn the_listing_shows_published_and_cancelled_events_by_start_time_but_never_drafts(
    api: TestApi,
) {
    let venue = api.venue("Hall A", "Berlin").await;
    let cancel = EventFact::EventCancelled {
        reason: Some("storm".to_owned()),
        cancelled_at: at("2026-03-01T00:00:00Z"),
    };
    let (late, _) = api
        .event(
            venue,
            "Late",
            "Music",
            "2026-09-01T18:00:00Z",
            vec![published()],
        )
        .await;
    api.event(venue, "Draft", "Music", "2026-07-01T18:00:00Z", vec![])
        .await;
    let (early, _) = api
        .event(
            venue,
            "Early",
            "Music",
            "2026-06-01T18:00:00Z",
            vec![published(), cancel],
        )
        .await;

    let reply = api.get("/v1/events").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(item_ids(&reply), ids(&[early, late]));
    assert_eq!(reply.body["next_cursor"], Value::Null);
    let first = &reply.body["items"][0];
    assert_eq!(first["status"], "cancelled");
    assert_eq!(first["starts_at"], "2026-06-01T18:00:00Z");
    assert_eq!(first["venue"]["name"], "Hall A");
    assert_eq!(first["venue"]["city"], "Berlin");
    assert_eq!(reply.body["items"][1]["status"], "published");
}

async fn the_listing_filters_by_city_and_category_ignoring_case_and_by_a_start_time_range(
    api: TestApi,
) {
    let berlin = api.venue("Hall A", "Berlin").await;
    let paris = api.venue("Salle B", "Paris").await;
    let (jazz, _) = api
        .event(
            berlin,
            "Jazz",
            "Music",
            "2026-06-01T18:00:00Z",
            vec![published()],
        )
        .await;
    let (talk, _) = api
        .event(
            berlin,
            "Talk",
            "Talks",
            "2026-06-02T18:00:00Z",
            vec![published()],
        )
        .await;
    let (opera, _) = api
        .event(
            paris,
            "Opera",
            "Music",
            "2026-06-03T18:00:00Z",
            vec![published()],
        )
        .await;

    let reply = api.get("/v1/events?city=berlin").await;
    assert_eq!(item_ids(&reply), ids(&[jazz, talk]));
    let reply = api.get("/v1/events?category=MUSIC").await;
    assert_eq!(item_ids(&reply), ids(&[jazz, opera]));
    let reply = api.get("/v1/events?category=music&city=Paris").await;
    assert_eq!(item_ids(&reply), ids(&[opera]));
    let reply = api
        .get("/v1/events?from=2026-06-02T18:00:00Z&to=2026-06-03T18:00:00Z")
        .await;
    assert_eq!(
        item_ids(&reply),
        ids(&[talk]),
        "from inclusive, to exclusive"
    );
    let reply = api.get("/v1/events?from=2026-06-02T20:00:00%2B02:00").await;
    assert_eq!(
        item_ids(&reply),
        ids(&[talk, opera]),
        "offsets are converted to UTC"
    );
    let reply = api.get("/v1/events?city=Rome").await;
    assert_eq!(item_ids(&reply), Vec::<String>::new());
}

async fn paging_through_the_listing_visits_every_event_exactly_once_despite_inserts(api: TestApi) {
    let venue = api.venue("Hall A", "Berlin").await;
    let mut expected = Vec::new();
    for n in 0..23 {
        // Pairs of events share a start time: the id breaks the tie.
        let starts = format!("2026-06-{:02}T18:00:00Z", 1 + n / 2);
        let (event, _) = api
            .event(
                venue,
                &format!("Show {n}"),
                "Music",
                &starts,
                vec![published()],
            )
            .await;
        expected.push((starts, event.0));
    }
    expected.sort();
    let expected: Vec<String> = expected.into_iter().map(|(_, id)| id.to_string()).collect();

    let mut seen = Vec::new();
    let mut uri = "/v1/events?limit=5".to_owned();
    let mut pages = 0;
    loop {
        let reply = api.get(&uri).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let page = item_ids(&reply);
        assert!(page.len() <= 5);
        seen.extend(page);
        pages += 1;
        if pages == 1 {
            // An event earlier than the cursor appears meanwhile: later pages are unaffected.
            api.event(
                venue,
                "Inserted",
                "Music",
                "2026-05-01T18:00:00Z",
                vec![published()],
            )
            .await;
        }
        match reply.body["next_cursor"].as_str() {
            Some(cursor) => uri = format!("/v1/events?limit=5&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 5);
    assert_eq!(seen, expected, "every event once, in order");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 23);
}

async fn event_details_show_the_venue_ticket_types_prices_and_seats(api: TestApi) {
    let venue = api.venue("Hall A", "Berlin").await;
    let (vip, standard) = (TicketTypeId(Uuid::now_v7()), TicketTypeId(Uuid::now_v7()));
    let (event, position) = api
        .event(
            venue,
            "Gala",
            "Music",
            "2026-06-01T18:00:00Z",
            vec![
                ticket_type(vip, "VIP", 9900, 10),
                ticket_type(standard, "Standard", 2500, 200),
                published(),
                confirmed(vip, 3),
                confirmed(standard, 7),
                EventFact::EventDetailsUpdated(DetailsChange {
                    title: Some("Grand Gala".to_owned()),
                    ..DetailsChange::default()
                }),
            ],
        )
        .await;

    let reply = api.get(&format!("/v1/events/{}", event.0)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.position, Some(position));
    let body = &reply.body;
    assert_eq!(body["event_id"], event.0.to_string());
    assert_eq!(body["status"], "published");
    assert_eq!(body["title"], "Grand Gala");
    assert_eq!(body["description"], "All about Gala");
    assert_eq!(body["category"], "Music");
    assert_eq!(body["venue"]["id"], venue.0.to_string());
    assert_eq!(body["venue"]["name"], "Hall A");
    assert_eq!(body["starts_at"], "2026-06-01T18:00:00Z");
    assert_eq!(body["ends_at"], "2026-06-01T20:00:00Z");
    assert_eq!(body["timezone"], "Europe/Berlin");
    assert_eq!(
        (&body["capacity"], &body["confirmed"], &body["available"]),
        (&Value::from(100), &Value::from(10), &Value::from(90))
    );
    let types = body["ticket_types"].as_array().expect("ticket_types");
    assert_eq!(types.len(), 2);
    assert_eq!(types[0]["ticket_type_id"], vip.0.to_string());
    assert_eq!(types[0]["price"]["amount_minor"], 9900);
    assert_eq!(types[0]["price"]["currency"], "EUR");
    assert_eq!(types[0]["quantity"], 10);
    assert_eq!(types[0]["confirmed"], 3);
    assert_eq!(types[0]["available"], 7);
    assert_eq!(types[0]["sales_start"], "2026-02-01T00:00:00Z");
    assert_eq!(types[0]["sales_end"], Value::Null);
    assert_eq!(
        types[1]["available"], 90,
        "limited by the event's 90 seats left"
    );
}

async fn capacity_shows_seats_per_event_and_ticket_type(api: TestApi) {
    let venue = api.venue("Hall A", "Berlin").await;
    let small = TicketTypeId(Uuid::now_v7());
    let (event, _) = api
        .event(
            venue,
            "Gala",
            "Music",
            "2026-06-01T18:00:00Z",
            vec![
                ticket_type(small, "Small", 0, 20),
                published(),
                confirmed(small, 20),
            ],
        )
        .await;
    let reply = api.get(&format!("/v1/events/{}/capacity", event.0)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["event_id"], event.0.to_string());
    assert_eq!(reply.body["capacity"], 100);
    assert_eq!(reply.body["confirmed"], 20);
    assert_eq!(reply.body["available"], 80);
    let row = &reply.body["ticket_types"][0];
    assert_eq!(row["ticket_type_id"], small.0.to_string());
    assert_eq!(row["name"], "Small");
    assert_eq!(
        (&row["quantity"], &row["confirmed"], &row["available"]),
        (&Value::from(20), &Value::from(20), &Value::from(0))
    );
}

async fn capacity_counts_held_offered_and_waiting_seats_per_ticket_type(api: TestApi) {
    let venue = api.venue("Hall A", "Berlin").await;
    let (paid_type, free_type) = (TicketTypeId(Uuid::now_v7()), TicketTypeId(Uuid::now_v7()));
    let (hold, pay, expired) = (
        RegistrationId(Uuid::now_v7()),
        RegistrationId(Uuid::now_v7()),
        RegistrationId(Uuid::now_v7()),
    );
    let (offered, waiting) = (
        WaitlistEntryId(Uuid::now_v7()),
        WaitlistEntryId(Uuid::now_v7()),
    );
    let mut facts = vec![
        ticket_type(paid_type, "Paid", 2500, 6),
        ticket_type(free_type, "Free", 0, 200),
        published(),
        held(hold, paid_type, "Hal", 2),
        held(pay, paid_type, "Pia", 1),
    ];
    facts.extend(paid(pay, paid_type, 1, "pay_1"));
    facts.extend([
        held(expired, paid_type, "Exa", 3),
        joined(offered, paid_type, "Una", 1),
        joined(waiting, paid_type, "Vic", 2),
        EventFact::HoldExpired {
            registration_id: expired,
            ticket_type_id: paid_type,
            quantity: 3,
            expired_at: at("2026-02-02T10:15:00Z"),
        },
        EventFact::WaitlistOfferMade {
            entry_id: offered,
            ticket_type_id: paid_type,
            quantity: 1,
            expires_at: at("2026-02-03T10:15:00Z"),
            offered_at: at("2026-02-02T10:15:00Z"),
        },
        confirmed(free_type, 4),
    ]);
    let (event, position) = api
        .event(venue, "Gala", "Music", "2026-06-01T18:00:00Z", facts)
        .await;

    let reply = api.get(&format!("/v1/events/{}/capacity", event.0)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.position, Some(position));
    let body = &reply.body;
    // Event capacity 100: 5 confirmed, 2 held, 1 offered leave 92.
    for (key, value) in [
        ("capacity", 100),
        ("confirmed", 5),
        ("held", 2),
        ("offered", 1),
        ("available", 92),
        ("waitlist", 1),
    ] {
        assert_eq!(body[key], value, "event {key}: {body}");
    }
    let types = body["ticket_types"].as_array().expect("ticket_types");
    let paid_row = &types[0];
    assert_eq!(paid_row["ticket_type_id"], paid_type.0.to_string());
    assert_eq!(paid_row["name"], "Paid");
    for (key, value) in [
        ("quantity", 6),
        ("confirmed", 1),
        ("held", 2),
        ("offered", 1),
        ("available", 2),
        ("waitlist", 1),
    ] {
        assert_eq!(paid_row[key], value, "paid type {key}: {paid_row}");
    }
    assert_eq!(
        paid_row.as_object().map(|o| o.len()),
        Some(8),
        "exactly id, name and six counts: {paid_row}"
    );
    assert_eq!(types[1]["confirmed"], 4);
    assert_eq!(
        types[1]["available"], 92,
        "limited by the event's seats left"
    );

    // The event's page shows the same availability and the line's length.
    let reply = api.get(&format!("/v1/events/{}", event.0)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let details = &reply.body;
    assert_eq!(details["available"], 92);
    assert_eq!(details["held"], 2);
    assert_eq!(details["waitlist"], 1);
    let t = &details["ticket_types"][0];
    assert_eq!(
        (
            &t["confirmed"],
            &t["held"],
            &t["offered"],
            &t["available"],
            &t["waitlist"]
        ),
        (
            &Value::from(1),
            &Value::from(2),
            &Value::from(1),
            &Value::from(2),
            &Value::from(1)
        )
    );
}

async fn the_guest_list_shows_each_registration_with_its_attendee_answers_and_tickets(
    api: TestApi,
) {
    let venue = api.venue("Hall A", "Berlin").await;
    let (standard, free) = (TicketTypeId(Uuid::now_v7()), TicketTypeId(Uuid::now_v7()));
    let (ada, bob, cy) = (
        RegistrationId(Uuid::now_v7()),
        RegistrationId(Uuid::now_v7()),
        RegistrationId(Uuid::now_v7()),
    );
    let ada_codes = codes(2);
    let mut facts = vec![
        ticket_type(standard, "Standard", 2500, 50),
        ticket_type(free, "Free", 0, 50),
        published(),
        registered(ada, free, "Ada", ada_codes.clone()),
        EventFact::AnswersGiven {
            registration_id: ada,
            answers: [
                ("country".to_owned(), AnswerValue::One("DE".to_owned())),
                (
                    "interests".to_owned(),
                    AnswerValue::Many(vec!["jazz".to_owned(), "rock".to_owned()]),
                ),
            ]
            .into_iter()
            .collect(),
        },
        held(bob, standard, "Bob", 1),
    ];
    facts.extend(paid(bob, standard, 1, "pay_bob"));
    facts.extend([
        held(cy, standard, "Cy", 2),
        EventFact::TicketCheckedIn {
            ticket_code: ada_codes[0].clone(),
            registration_id: ada,
            ticket_type_id: free,
            nonce: "door-1-0001".to_owned(),
            scanned_at: at("2026-06-01T18:05:00Z"),
            recorded_at: at("2026-06-01T18:30:00Z"),
        },
    ]);
    let (event, position) = api
        .event(venue, "Gala", "Music", "2026-06-01T18:00:00Z", facts)
        .await;
    let uri = format!("/v1/events/{}/attendees", event.0);

    let reply = api.get(&uri).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.position, Some(position));
    assert_eq!(reply.body["next_cursor"], Value::Null);
    let items = reply.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 3);
    let a = &items[0];
    assert_eq!(a["registration_id"], ada.0.to_string());
    assert_eq!(a["status"], "confirmed");
    assert_eq!(a["attendee"]["name"], "Ada");
    assert_eq!(a["attendee"]["email"], "ada@example.org");
    assert_eq!(a["ticket_type"]["id"], free.0.to_string());
    assert_eq!(a["ticket_type"]["name"], "Free");
    assert_eq!(a["quantity"], 2);
    assert_eq!(a["answers"]["country"], "DE");
    assert_eq!(a["answers"]["interests"][1], "rock");
    assert_eq!(a["price"], Value::Null);
    assert_eq!(a["payment"], Value::Null);
    assert_eq!(a["registered_at"], "2026-02-02T00:00:00Z");
    assert_eq!(a["tickets"][0]["code"], ada_codes[0].0);
    assert_eq!(a["tickets"][0]["checked_in_at"], "2026-06-01T18:05:00Z");
    assert_eq!(a["tickets"][1]["code"], ada_codes[1].0);
    assert_eq!(a["tickets"][1]["checked_in_at"], Value::Null);
    let b = &items[1];
    assert_eq!(b["status"], "confirmed");
    assert_eq!(b["price"]["amount_minor"], 2500);
    assert_eq!(b["price"]["currency"], "EUR");
    assert_eq!(b["payment"]["id"], "pay_bob");
    assert_eq!(b["payment"]["status"], "paid");
    assert_eq!(b["answers"], serde_json::json!({}));
    let c = &items[2];
    assert_eq!(c["status"], "held");
    assert_eq!(c["hold_expires_at"], "2026-02-02T10:15:00Z");
    assert_eq!(c["tickets"].as_array().map(Vec::len), Some(2));

    let ids = |reply: &Reply| -> Vec<String> {
        reply.body["items"]
            .as_array()
            .unwrap_or_else(|| panic!("items in {}", reply.body))
            .iter()
            .map(|g| g["registration_id"].as_str().expect("id").to_owned())
            .collect()
    };
    let only = |query: &str| format!("{uri}?{query}");
    assert_eq!(
        ids(&api.get(&only("status=held")).await),
        [cy.0.to_string()]
    );
    assert_eq!(
        ids(&api
            .get(&only(&format!("ticket_type_id={}", standard.0)))
            .await),
        [bob.0.to_string(), cy.0.to_string()]
    );
    assert_eq!(
        ids(&api.get(&only("checked_in=true")).await),
        [ada.0.to_string()]
    );
    assert_eq!(
        ids(&api.get(&only("checked_in=false&status=confirmed")).await),
        [ada.0.to_string(), bob.0.to_string()],
        "Ada's second ticket is still to scan"
    );

    // Page by page, every registration exactly once, in order.
    let mut seen = Vec::new();
    let mut next = only("limit=2");
    let mut pages = 0;
    loop {
        let reply = api.get(&next).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        seen.extend(ids(&reply));
        pages += 1;
        match reply.body["next_cursor"].as_str() {
            Some(cursor) => next = only(&format!("limit=2&cursor={cursor}")),
            None => break,
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(
        seen,
        [ada.0.to_string(), bob.0.to_string(), cy.0.to_string()]
    );
}

async fn the_guest_list_reads_its_own_writes(api: TestApi) {
    let venue = api.venue("Hall A", "Berlin").await;
    let free = TicketTypeId(Uuid::now_v7());
    let (event, _) = api
        .event(
            venue,
            "Gala",
            "Music",
            "2026-06-01T18:00:00Z",
            vec![ticket_type(free, "Free", 0, 20), published()],
        )
        .await;
    let uri = format!("/v1/events/{}/attendees", event.0);
    for n in 1..=3 {
        let position = api.append(&event.stream(), &[confirmed(free, 1)]).await;
        let reply = api.get_at(&uri, &position.to_string()).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert!(reply.position >= Some(position));
        assert_eq!(reply.body["items"].as_array().map(Vec::len), Some(n));
    }
}

async fn bad_guest_list_parameters_are_400_problems_naming_the_parameter(api: TestApi) {
    let venue = api.venue("Hall A", "Berlin").await;
    let (event, _) = api
        .event(venue, "Gala", "Music", "2026-06-01T18:00:00Z", vec![])
        .await;
    for (query, field) in [
        ("status=paid", "status"),
        ("ticket_type_id=vip", "ticket_type_id"),
        ("checked_in=yes", "checked_in"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("cursor=%21%21%21", "cursor"),
        ("cursor=bm90IGEgY3Vyc29y", "cursor"),
        ("status=held&status=held", "status"),
        ("city=Berlin", "city"),
    ] {
        let reply = api
            .get(&format!("/v1/events/{}/attendees?{query}", event.0))
            .await;
        reply.assert_problem(400, "validation_failed");
        assert_eq!(reply.body["field"], field, "{query}: {}", reply.body);
    }
    let reply = api
        .get(&format!("/v1/events/{}/attendees?limit=100", event.0))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.body["items"],
        serde_json::json!([]),
        "a draft with nobody yet"
    );
}

async fn an_unknown_or_malformed_event_id_is_a_404_problem(api: TestApi) {
    // The organization the test API made is all the log holds.
    let head = api.store.head_position().await.expect("head");
    assert!(
        api.read
            .wait_for(head, Duration::from_secs(10))
            .await
            .expect("wait")
    );
    for uri in [
        format!("/v1/events/{}", Uuid::now_v7()),
        format!("/v1/events/{}/capacity", Uuid::now_v7()),
        format!("/v1/events/{}/attendees", Uuid::now_v7()),
        format!("/v1/events/{}/attendees?status=held", Uuid::now_v7()),
        "/v1/events/not-a-uuid".to_owned(),
        "/v1/events/not-a-uuid/capacity".to_owned(),
        "/v1/events/not-a-uuid/attendees".to_owned(),
    ] {
        let reply = api.get(&uri).await;
        reply.assert_problem(404, "not_found");
        assert_eq!(reply.position, Some(head), "errors carry the position too");
    }
}

async fn bad_listing_parameters_are_400_problems_naming_the_parameter(api: TestApi) {
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("limit=-1", "limit"),
        ("from=yesterday", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("cursor=%21%21%21", "cursor"),
        ("cursor=bm90IGEgY3Vyc29y", "cursor"),
        ("city=", "city"),
        ("city=a&city=b", "city"),
        ("colour=red", "colour"),
    ] {
        let reply = api.get(&format!("/v1/events?{query}")).await;
        reply.assert_problem(400, "validation_failed");
        assert_eq!(reply.body["field"], field, "{query}: {}", reply.body);
        assert!(
            reply.body["detail"]
                .as_str()
                .expect("detail")
                .contains(field),
            "{query}: the detail names the parameter"
        );
    }
    assert_eq!(api.get("/v1/events?limit=100").await.status, StatusCode::OK);
}

async fn a_min_position_already_applied_answers_at_once_with_the_position_header(api: TestApi) {
    let venue = api.venue("Hall A", "Berlin").await;
    let (event, position) = api
        .event(
            venue,
            "Gala",
            "Music",
            "2026-06-01T18:00:00Z",
            vec![published()],
        )
        .await;
    let reply = api.get_at("/v1/events", &position.to_string()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.position, Some(position));
    assert_eq!(item_ids(&reply), ids(&[event]));
}

async fn a_listing_read_again_after_a_write_shows_the_write_never_the_remembered_page(
    api: TestApi,
) {
    let venue = api.venue("Hall A", "Berlin").await;
    let small = TicketTypeId(Uuid::now_v7());
    let (event, position) = api
        .event(
            venue,
            "Gala",
            "Music",
            "2026-06-01T18:00:00Z",
            vec![ticket_type(small, "Small", 0, 20), published()],
        )
        .await;
    let first = api.get_at("/v1/events", &position.to_string()).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    // The same page again, nothing new applied: the same answer.
    let again = api.get_at("/v1/events", &position.to_string()).await;
    assert_eq!(again.body, first.body);
    for n in 1..=3 {
        let position = api.append(&event.stream(), &[confirmed(small, 1)]).await;
        let reply = api.get_at("/v1/events", &position.to_string()).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert!(reply.position >= Some(position));
        assert_eq!(
            reply.body["items"][0]["confirmed"], n,
            "never the page remembered before"
        );
    }
}

async fn a_min_position_just_written_waits_and_reads_its_own_write(api: TestApi) {
    let venue = api.venue("Hall A", "Berlin").await;
    let small = TicketTypeId(Uuid::now_v7());
    let (event, _) = api
        .event(
            venue,
            "Gala",
            "Music",
            "2026-06-01T18:00:00Z",
            vec![ticket_type(small, "Small", 0, 20), published()],
        )
        .await;
    for n in 1..=5 {
        // Appended, not yet awaited: the request itself must wait for the projector.
        let position = api.append(&event.stream(), &[confirmed(small, 1)]).await;
        let reply = api
            .get_at(
                &format!("/v1/events/{}/capacity", event.0),
                &position.to_string(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert!(reply.position >= Some(position));
        assert_eq!(reply.body["confirmed"], n, "never a stale answer");
    }
}

async fn a_min_position_not_reached_in_time_is_a_503_with_retry_after(api: TestApi) {
    let api = api.with_min_position_timeout(Duration::from_millis(100));
    api.venue("Hall A", "Berlin").await;
    let applied = api.read.applied_position().await.expect("checkpoint");
    let wanted = applied + 1000;
    let reply = api.get_at("/v1/events", &wanted.to_string()).await;
    reply.assert_problem(503, "position_not_reached");
    assert_eq!(reply.retry_after.as_deref(), Some("1"));
    assert_eq!(reply.position, Some(applied));
    assert_eq!(reply.body["requested_position"], wanted);
}

async fn a_malformed_min_position_header_is_a_400(api: TestApi) {
    for value in ["soon", "-1", "", "1.5", "99999999999999999999999"] {
        let reply = api.get_at("/v1/events", value).await;
        reply.assert_problem(400, "validation_failed");
        assert_eq!(reply.body["field"], "Marquee-Min-Position", "{value:?}");
    }
}

async fn unknown_routes_are_404_and_wrong_methods_405_problems(api: TestApi) {
    api.get("/v1/nothing-here")
        .await
        .assert_problem(404, "not_found");
    let reply = api
        .send(
            Request::post("/v1/events")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    reply.assert_problem(405, "method_not_allowed");
    let reply = api
        .send(
            Request::delete(format!("/v1/events/{}", Uuid::now_v7()))
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    reply.assert_problem(405, "method_not_allowed");
}

async fn health_and_projections_report_applied_and_head_positions(api: TestApi) {
    let venue = api.venue("Hall A", "Berlin").await;
    let (_, position) = api
        .event(
            venue,
            "Gala",
            "Music",
            "2026-06-01T18:00:00Z",
            vec![published()],
        )
        .await;

    let reply = api.get("/health").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["status"], "ok");
    assert_eq!(reply.body["applied_position"], position);
    assert_eq!(reply.body["head_position"], position);

    let reply = api.get("/v1/projections").await;
    assert_eq!(reply.status, StatusCode::OK);
    let projection = &reply.body["projections"][0];
    assert_eq!(projection["name"], marquee_projector::PROJECTION);
    assert_eq!(projection["applied_position"], position);
    assert_eq!(projection["head_position"], position);
    assert_eq!(projection["lag"], 0);
}

async fn the_application_serves_on_the_port_it_bound(api: TestApi) {
    let head = api.store.head_position().await.expect("head");
    assert!(
        api.read
            .wait_for(head, Duration::from_secs(10))
            .await
            .expect("wait")
    );
    let state = QueryState::new(api.read.clone(), api.store.clone());
    let app = marquee_query_api::Application::build("127.0.0.1:0".parse().expect("addr"), state)
        .await
        .expect("bind");
    let port = app.port();
    assert_ne!(port, 0);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response
            .to_lowercase()
            .contains(&format!("marquee-position: {head}")),
        "{response}"
    );
    let _ = stop.send(());
    server.await.expect("server task").expect("clean stop");
}

/// The guest list is personal data: its event's owners, organizers and door staff read it;
/// anyone else is refused, outsiders as if the event had no guest list at all.
async fn the_guest_list_is_for_owners_organizers_and_door_staff_only(api: TestApi) {
    let venue = api.venue("Hall A", "Berlin").await;
    let (event, _) = api
        .event(
            venue,
            "Gala",
            "Music",
            "2026-06-01T18:00:00Z",
            vec![published()],
        )
        .await;
    let uri = format!("/v1/events/{}/attendees", event.0);
    let mut members = Vec::new();
    for role in [
        Role::Organizer,
        Role::DoorStaff,
        Role::Analyst,
        Role::Auditor,
    ] {
        let user = UserId(Uuid::now_v7());
        api.append(
            &api.organization.stream(),
            &[OrganizationFact::MemberAdded {
                user_id: user,
                role,
            }],
        )
        .await;
        members.push((role, api.token_for(user).await));
    }
    let outsider = api.token_for(UserId(Uuid::now_v7())).await;

    api.get_as(&uri, None)
        .await
        .assert_problem(401, "unauthorized");
    api.get_as(&uri, Some("not-a-token"))
        .await
        .assert_problem(401, "unauthorized");
    api.get_as(&uri, Some(&outsider))
        .await
        .assert_problem(404, "not_found");
    assert_eq!(api.get(&uri).await.status, StatusCode::OK, "the owner");
    for (role, token) in &members {
        let reply = api.get_as(&uri, Some(token)).await;
        match role {
            Role::Organizer | Role::DoorStaff => {
                assert_eq!(reply.status, StatusCode::OK, "{role}: {}", reply.body);
            }
            _ => reply.assert_problem(403, "forbidden"),
        }
    }
    // Public reads need no token at all.
    let public = api
        .get_as(&format!("/v1/events/{}/capacity", event.0), None)
        .await;
    assert_eq!(public.status, StatusCode::OK, "{}", public.body);
}

/// Each scenario against the in-memory engine, and again against Postgres.
macro_rules! on_every_engine {
    ($($name:ident),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(TestApi::memory().await).await;
                }
            )*
        }
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(TestApi::postgres().await).await;
                }
            )*
        }
    };
}

on_every_engine!(
    the_listing_shows_published_and_cancelled_events_by_start_time_but_never_drafts,
    the_listing_filters_by_city_and_category_ignoring_case_and_by_a_start_time_range,
    paging_through_the_listing_visits_every_event_exactly_once_despite_inserts,
    event_details_show_the_venue_ticket_types_prices_and_seats,
    capacity_shows_seats_per_event_and_ticket_type,
    capacity_counts_held_offered_and_waiting_seats_per_ticket_type,
    the_guest_list_shows_each_registration_with_its_attendee_answers_and_tickets,
    the_guest_list_reads_its_own_writes,
    the_guest_list_is_for_owners_organizers_and_door_staff_only,
    an_unknown_or_malformed_event_id_is_a_404_problem,
    a_min_position_already_applied_answers_at_once_with_the_position_header,
    a_min_position_just_written_waits_and_reads_its_own_write,
    a_listing_read_again_after_a_write_shows_the_write_never_the_remembered_page,
    health_and_projections_report_applied_and_head_positions,
    the_application_serves_on_the_port_it_bound,
    a_min_position_not_reached_in_time_is_a_503_with_retry_after,
);

/// Input checks that never reach the database: the in-memory engine is enough.
macro_rules! on_memory {
    ($($name:ident),* $(,)?) => {
        mod input {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(TestApi::memory().await).await;
                }
            )*
        }
    };
}

on_memory!(
    a_malformed_min_position_header_is_a_400,
    unknown_routes_are_404_and_wrong_methods_405_problems,
    bad_listing_parameters_are_400_problems_naming_the_parameter,
    bad_guest_list_parameters_are_400_problems_naming_the_parameter,
);
