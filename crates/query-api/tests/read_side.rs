//! The read side for HTTP clients and analysts, over real read models: `ETag` and `304` on the
//! listing, event page and capacity; the listing's search, filters, orders and cursors; the
//! guest list's search and CSV export; an account's own tickets; and an event's analytics in
//! JSON and CSV, with who may read them. An in-memory log (and again Postgres), a projector in
//! the background, requests sent straight into the router.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Utc};
use marquee_auth::{AuthStore, Authenticator, Directory, NewApiToken};
use marquee_domain::event::{
    AnswerValue, Attendee, DetailsChange, EventFact, Question, QuestionKind, RefundReason,
};
use marquee_domain::organization::{OrganizationFact, Role};
use marquee_domain::venue::VenueFact;
use marquee_domain::{
    EventId, FactCodec, Money, OrganizationId, PaymentId, RegistrationId, TicketCode, TicketTypeId,
    UserId, VenueId,
};
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
    access: Arc<Access>,
    auth: AuthStore,
    /// The organization owning every venue and event written here, and its owner's token.
    organization: OrganizationId,
    owner: String,
    _stop: tokio::sync::oneshot::Sender<()>,
    /// The Postgres test database, dropped after the API.
    _keep: Box<dyn std::any::Any + Send>,
}

/// A response, read whole.
struct Reply {
    status: StatusCode,
    content_type: String,
    etag: Option<String>,
    text: String,
}

impl Reply {
    #[track_caller]
    fn json(&self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.text);
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    #[track_caller]
    fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(self.content_type, "application/problem+json");
        let body: Value = serde_json::from_str(&self.text).expect("problem JSON");
        assert_eq!(body["code"], code, "{body}");
    }

    /// The CSV answer parsed back: header, then records.
    #[track_caller]
    fn csv(&self) -> Vec<Vec<String>> {
        assert_eq!(self.status, StatusCode::OK, "{}", self.text);
        assert!(
            self.content_type.starts_with("text/csv"),
            "{}",
            self.content_type
        );
        parse_csv(&self.text)
    }
}

/// RFC 4180: records end with CRLF; quoted fields may hold commas, CR, LF and doubled quotes.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "CR only before LF");
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        field.is_empty() && record.is_empty(),
        "the last record ends with CRLF"
    );
    records
}

impl TestApi {
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
        let organization = OrganizationId(Uuid::now_v7());
        let owner = UserId(Uuid::now_v7());
        let mut api = Self {
            router: router(
                QueryState::new(read.clone(), store.clone()).with_access(access.clone()),
            ),
            store,
            read,
            access,
            auth,
            organization,
            owner: String::new(),
            _stop: stop,
            _keep: keep,
        };
        api.given(
            &organization.stream(),
            &[OrganizationFact::OrganizationCreated {
                organization_id: organization,
                name: "Test organization".into(),
                owner,
                created_at: Utc::now(),
            }],
        )
        .await;
        api.owner = api.token_for(owner).await;
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

    /// A new account holding `role` in the organization, signed in.
    async fn member(&self, role: Role) -> String {
        let user = UserId(Uuid::now_v7());
        self.given(
            &self.organization.stream(),
            &[OrganizationFact::MemberAdded {
                user_id: user,
                role,
            }],
        )
        .await;
        self.token_for(user).await
    }

    /// An API token of the organization with every role.
    async fn api_token(&self) -> String {
        let token_id = Uuid::now_v7();
        let (token, secret_hash) = marquee_auth::tokens::new_api_token(token_id);
        self.auth
            .create_api_token(&NewApiToken {
                token_id,
                organization_id: self.organization.0,
                name: "integration".into(),
                roles: vec![Role::Owner],
                secret_hash,
                created_by: Uuid::now_v7(),
                created_at: Utc::now(),
            })
            .await
            .expect("api token");
        token
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
        let etag = header("etag");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        Reply {
            status,
            content_type,
            etag,
            text: String::from_utf8(bytes.to_vec()).expect("UTF-8 body"),
        }
    }

    /// A `GET` with `token` as the bearer (or none) and extra headers.
    async fn get_with(&self, uri: &str, token: Option<&str>, headers: &[(&str, &str)]) -> Reply {
        let mut request = Request::get(uri);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Body::empty()).expect("request"))
            .await
    }

    /// A `GET` as the owner.
    async fn get(&self, uri: &str) -> Reply {
        self.get_with(uri, Some(&self.owner), &[]).await
    }

    /// Appends facts to one stream (as the organization's) and waits until they are projected.
    async fn given<F: FactCodec>(&self, stream: &str, facts: &[F]) -> u64 {
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
        let position = self
            .store
            .append(AppendRequest {
                stream: stream.to_owned(),
                expected: ExpectedRevision::Any,
                facts,
                idempotency: None,
            })
            .await
            .expect("append")
            .last_position;
        assert!(
            self.read
                .wait_for(position, Duration::from_secs(10))
                .await
                .expect("wait"),
            "projected"
        );
        position
    }

    async fn venue(&self, city: &str) -> VenueId {
        let venue = VenueId(Uuid::now_v7());
        self.given(
            &venue.stream(),
            &[VenueFact::VenueCreated {
                venue_id: venue,
                name: format!("Hall in {city}"),
                city: city.to_owned(),
                address: None,
                capacity: 1000,
                timezone: "Europe/Berlin".to_owned(),
                created_at: at("2026-01-01T00:00:00Z"),
            }],
        )
        .await;
        venue
    }

    /// A published event with one ticket type (`price` minor EUR units, 100 seats).
    async fn event(
        &self,
        venue: VenueId,
        title: &str,
        description: &str,
        starts_at: &str,
        price: i64,
    ) -> (EventId, TicketTypeId) {
        let event = EventId(Uuid::now_v7());
        let ticket_type = TicketTypeId(Uuid::now_v7());
        let starts = at(starts_at);
        self.given(
            &event.stream(),
            &[
                EventFact::EventDrafted {
                    event_id: event,
                    venue_id: venue,
                    title: title.to_owned(),
                    description: description.to_owned(),
                    category: "Music".to_owned(),
                    starts_at: starts,
                    ends_at: starts + chrono::Duration::hours(2),
                    timezone: "Europe/Berlin".to_owned(),
                    capacity: 100,
                    max_per_order: 10,
                },
                EventFact::TicketTypeAdded {
                    ticket_type_id: ticket_type,
                    name: "Standard".to_owned(),
                    price: eur(price),
                    quantity: 100,
                    sales_start: None,
                    sales_end: None,
                },
                EventFact::EventPublished {
                    published_at: at("2026-02-01T00:00:00Z"),
                },
            ],
        )
        .await;
        (event, ticket_type)
    }
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("timestamp")
}

fn eur(amount_minor: i64) -> Money {
    Money {
        amount_minor,
        currency: "EUR".to_owned(),
    }
}

fn codes(quantity: usize) -> Vec<TicketCode> {
    (0..quantity)
        .map(|_| TicketCode(Uuid::new_v4().simple().to_string()))
        .collect()
}

fn registered(
    registration: RegistrationId,
    ticket_type: TicketTypeId,
    name: &str,
    email: &str,
    ticket_codes: Vec<TicketCode>,
) -> EventFact {
    EventFact::RegistrationConfirmed {
        registration_id: registration,
        ticket_type_id: ticket_type,
        attendee: Attendee {
            name: name.to_owned(),
            email: email.to_owned(),
        },
        quantity: u32::try_from(ticket_codes.len()).expect("few codes"),
        ticket_codes,
        confirmed_at: at("2026-02-02T09:00:00Z"),
    }
}

fn event_ids(reply: &Reply) -> Vec<String> {
    reply.json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["event_id"].as_str().expect("event_id").to_owned())
        .collect()
}

fn ids(events: &[EventId]) -> Vec<String> {
    events.iter().map(|e| e.0.to_string()).collect()
}

// ---- scenarios -------------------------------------------------------------------------------

async fn public_answers_carry_an_etag_and_the_same_tag_is_a_304_until_the_answer_can_change(
    api: TestApi,
) {
    let hall = api.venue("Berlin").await;
    let (event, ticket_type) = api
        .event(hall, "Gala", "An evening", "2026-06-01T18:00:00Z", 2500)
        .await;
    for uri in [
        "/v1/events?city=berlin".to_owned(),
        format!("/v1/events/{}", event.0),
        format!("/v1/events/{}/capacity", event.0),
    ] {
        let first = api.get_with(&uri, None, &[]).await;
        assert_eq!(first.status, StatusCode::OK, "{uri}: {}", first.text);
        let tag = first.etag.clone().expect("an ETag");
        let again = api
            .get_with(&uri, None, &[("if-none-match", tag.as_str())])
            .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{uri}");
        assert_eq!(again.etag.as_deref(), Some(tag.as_str()));
        assert!(again.text.is_empty(), "a 304 has no body");
        let listed = api
            .get_with(
                &uri,
                None,
                &[("if-none-match", &format!("\"other\", W/{tag}"))],
            )
            .await;
        assert_eq!(listed.status, StatusCode::NOT_MODIFIED, "{uri}: weak match");
        let stale = api
            .get_with(&uri, None, &[("if-none-match", "\"1-0000000000000000\"")])
            .await;
        assert_eq!(stale.status, StatusCode::OK, "{uri}");
        assert_eq!(stale.etag.as_deref(), Some(tag.as_str()));
        assert_eq!(stale.text, first.text, "the same tag, the same bytes");
    }
    let listing = api.get_with("/v1/events?city=berlin", None, &[]).await;
    let other = api.get_with("/v1/events?city=paris", None, &[]).await;
    assert_ne!(listing.etag, other.etag, "another query, another tag");

    // A write: every tag changes, and the old one gets the new answer.
    api.given(
        &event.stream(),
        &[registered(
            RegistrationId(Uuid::now_v7()),
            ticket_type,
            "Ada",
            "ada@example.org",
            codes(3),
        )],
    )
    .await;
    let old = listing.etag.expect("tag");
    let after = api
        .get_with(
            "/v1/events?city=berlin",
            None,
            &[("if-none-match", old.as_str())],
        )
        .await;
    assert_eq!(after.status, StatusCode::OK);
    assert_ne!(after.etag.as_deref(), Some(old.as_str()));
    assert_eq!(after.json()["items"][0]["confirmed"], 3);
}

async fn the_listing_searches_filters_and_sorts_with_a_cursor_per_order(api: TestApi) {
    let berlin = api.venue("Berlin").await;
    let paris = api.venue("Paris").await;
    let (jazz, _) = api
        .event(
            berlin,
            "Jazz Night",
            "Saxophones",
            "2026-06-01T18:00:00Z",
            2500,
        )
        .await;
    let (blues, _) = api
        .event(
            paris,
            "Blues Brunch",
            "Jazz and coffee",
            "2026-06-02T11:00:00Z",
            900,
        )
        .await;
    let (opera, _) = api
        .event(berlin, "Aida", "Opera", "2026-06-03T19:00:00Z", 7000)
        .await;

    assert_eq!(
        event_ids(&api.get("/v1/events?q=jazz").await),
        ids(&[jazz, blues])
    );
    assert_eq!(
        event_ids(&api.get("/v1/events?q=JAZZ%20coff").await),
        ids(&[blues])
    );
    assert_eq!(
        event_ids(&api.get(&format!("/v1/events?venue_id={}", berlin.0)).await),
        ids(&[jazz, opera])
    );
    assert_eq!(
        event_ids(
            &api.get("/v1/events?price_min=1000&price_max=7000&currency=eur")
                .await
        ),
        ids(&[jazz, opera])
    );
    assert_eq!(
        event_ids(&api.get("/v1/events?available=true&sort=price").await),
        ids(&[blues, jazz, opera])
    );
    assert_eq!(
        event_ids(&api.get("/v1/events?sort=-starts_at").await),
        ids(&[opera, blues, jazz])
    );

    // Page by page in title order: Aida, Blues Brunch, Jazz Night.
    let mut seen = Vec::new();
    let mut uri = "/v1/events?sort=title&limit=1".to_owned();
    let mut title_cursor = None;
    loop {
        let page = api.get(&uri).await.json();
        seen.extend(
            page["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|i| i["title"].as_str().expect("title").to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                title_cursor.get_or_insert_with(|| cursor.to_owned());
                uri = format!("/v1/events?sort=title&limit=1&cursor={cursor}");
            }
            None => break,
        }
    }
    assert_eq!(seen, ["Aida", "Blues Brunch", "Jazz Night"]);
    let cursor = title_cursor.expect("a cursor");
    api.get(&format!("/v1/events?sort=price&cursor={cursor}"))
        .await
        .assert_problem(400, "validation_failed");
    for bad in [
        "q=%20%3F%21",
        "sort=popular",
        "price_min=-5",
        "price_min=10&price_max=5",
        "currency=euro",
        "available=maybe",
        "venue_id=hall",
    ] {
        api.get(&format!("/v1/events?{bad}"))
            .await
            .assert_problem(400, "validation_failed");
    }
}

async fn the_guest_list_is_searched_and_exported_whole_as_csv(api: TestApi) {
    let hall = api.venue("Berlin").await;
    let (event, ticket_type) = api
        .event(hall, "Gala", "An evening", "2026-06-01T18:00:00Z", 0)
        .await;
    // More than one page of the export (500), names that need quoting among them.
    let tricky = [
        ("O'Hara, Scarlett", "scarlett@example.org"),
        ("Dwayne \"The Rock\"", "rock@example.org"),
        ("Line\r\nBreak", "lines@example.org"),
    ];
    let mut facts: Vec<EventFact> = tricky
        .iter()
        .map(|(name, email)| {
            registered(
                RegistrationId(Uuid::now_v7()),
                ticket_type,
                name,
                email,
                codes(1),
            )
        })
        .collect();
    facts.extend((0..520).map(|n| {
        registered(
            RegistrationId(Uuid::now_v7()),
            ticket_type,
            &format!("Guest {n}"),
            &format!("guest{n}@example.org"),
            codes(1 + n % 2),
        )
    }));
    let answered = RegistrationId(Uuid::now_v7());
    facts.push(registered(
        answered,
        ticket_type,
        "Ada Lovelace",
        "ada@example.org",
        codes(2),
    ));
    facts.push(EventFact::AnswersGiven {
        registration_id: answered,
        answers: [(
            "diet".to_owned(),
            AnswerValue::One("vegan, \"strict\"".to_owned()),
        )]
        .into(),
    });
    api.given(&event.stream(), &facts).await;
    let uri = format!("/v1/events/{}/attendees", event.0);

    let found = api.get(&format!("{uri}?q=LOVELACE")).await.json();
    assert_eq!(found["items"].as_array().expect("items").len(), 1);
    assert_eq!(found["items"][0]["attendee"]["name"], "Ada Lovelace");
    let by_address = api.get(&format!("{uri}?q=guest51")).await.json();
    assert_eq!(
        by_address["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|g| g["attendee"]["email"].as_str().expect("email"))
            .collect::<Vec<_>>(),
        [
            "guest51@example.org",
            "guest510@example.org",
            "guest511@example.org",
            "guest512@example.org",
            "guest513@example.org",
            "guest514@example.org",
            "guest515@example.org",
            "guest516@example.org",
            "guest517@example.org",
            "guest518@example.org",
            "guest519@example.org",
        ]
    );

    let csv = api
        .get_with(&uri, Some(&api.owner), &[("accept", "text/csv")])
        .await
        .csv();
    assert_eq!(csv[0][0], "registration_id");
    assert_eq!(csv[0].len(), 21);
    assert_eq!(
        csv.len(),
        1 + 3 + 520 + 1,
        "a header and every registration"
    );
    assert!(csv.iter().all(|r| r.len() == 21));
    let column = |name: &str| {
        csv[0]
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("column {name}"))
    };
    for (n, (name, email)) in tricky.iter().enumerate() {
        assert_eq!(csv[1 + n][column("attendee_name")], *name);
        assert_eq!(csv[1 + n][column("attendee_email")], *email);
    }
    let ada = csv.last().expect("Ada");
    assert_eq!(ada[column("attendee_name")], "Ada Lovelace");
    assert_eq!(ada[column("status")], "confirmed");
    assert_eq!(ada[column("quantity")], "2");
    assert_eq!(ada[column("ticket_codes")].split(' ').count(), 2);
    assert_eq!(ada[column("checked_in_tickets")], "0");
    let answers: Value = serde_json::from_str(&ada[column("answers")]).expect("answers JSON");
    assert_eq!(answers["diet"], "vegan, \"strict\"");

    let filtered = api.get(&format!("{uri}?format=csv&q=guest51")).await.csv();
    assert_eq!(filtered.len(), 1 + 11, "filters apply to the export");
    api.get(&format!("{uri}?format=csv&limit=5"))
        .await
        .assert_problem(400, "validation_failed");
    api.get(&format!("{uri}?format=xml"))
        .await
        .assert_problem(400, "validation_failed");

    // The same access as the JSON guest list.
    let door = api.member(Role::DoorStaff).await;
    let door_csv = api
        .get_with(&format!("{uri}?format=csv&q=ada"), Some(&door), &[])
        .await;
    assert_eq!(door_csv.csv().len(), 2);
    let analyst = api.member(Role::Analyst).await;
    api.get_with(&format!("{uri}?format=csv"), Some(&analyst), &[])
        .await
        .assert_problem(403, "forbidden");
    api.get_with(&format!("{uri}?format=csv"), None, &[])
        .await
        .assert_problem(401, "unauthorized");
}

async fn my_tickets_show_each_account_only_its_own_registrations(api: TestApi) {
    let hall = api.venue("Berlin").await;
    let (gala, gala_type) = api
        .event(hall, "Gala", "An evening", "2026-06-01T18:00:00Z", 0)
        .await;
    let (talk, talk_type) = api
        .event(hall, "Talk", "A morning", "2026-06-02T09:00:00Z", 0)
        .await;
    let (ann, ben) = (UserId(Uuid::now_v7()), UserId(Uuid::now_v7()));
    let (ann_gala, ben_gala, ann_talk) = (
        RegistrationId(Uuid::now_v7()),
        RegistrationId(Uuid::now_v7()),
        RegistrationId(Uuid::now_v7()),
    );
    let ann_codes = codes(2);
    let holder = |registration_id, holder| EventFact::RegistrationHolderRecorded {
        registration_id,
        holder,
    };
    api.given(
        &gala.stream(),
        &[
            registered(
                ann_gala,
                gala_type,
                "Ann",
                "ann@example.org",
                ann_codes.clone(),
            ),
            holder(ann_gala, ann),
            registered(ben_gala, gala_type, "Ben", "ben@example.org", codes(1)),
            holder(ben_gala, ben),
            EventFact::TicketCheckedIn {
                ticket_code: ann_codes[0].clone(),
                registration_id: ann_gala,
                ticket_type_id: gala_type,
                nonce: "n-1".to_owned(),
                scanned_at: at("2026-06-01T18:02:00Z"),
                recorded_at: at("2026-06-01T18:02:00Z"),
            },
        ],
    )
    .await;
    api.given(
        &talk.stream(),
        &[
            registered(ann_talk, talk_type, "Ann", "ann@example.org", codes(1)),
            holder(ann_talk, ann),
        ],
    )
    .await;
    let (ann_token, ben_token) = (api.token_for(ann).await, api.token_for(ben).await);

    let mine = api
        .get_with("/v1/me/tickets", Some(&ann_token), &[])
        .await
        .json();
    let items = mine["items"].as_array().expect("items");
    assert_eq!(
        items
            .iter()
            .map(|i| i["registration_id"].as_str().expect("id"))
            .collect::<Vec<_>>(),
        [ann_talk.0.to_string(), ann_gala.0.to_string()],
        "newest first, across events"
    );
    let gala_item = &items[1];
    assert_eq!(gala_item["status"], "confirmed");
    assert_eq!(gala_item["event"]["title"], "Gala");
    assert_eq!(gala_item["event"]["starts_at"], "2026-06-01T18:00:00Z");
    assert_eq!(gala_item["event"]["venue"]["city"], "Berlin");
    assert_eq!(gala_item["ticket_type"]["name"], "Standard");
    assert_eq!(gala_item["quantity"], 2);
    assert_eq!(gala_item["tickets"][0]["code"], ann_codes[0].0);
    assert_eq!(
        gala_item["tickets"][0]["checked_in_at"],
        "2026-06-01T18:02:00Z"
    );
    assert_eq!(gala_item["tickets"][1]["checked_in_at"], Value::Null);

    let page = api
        .get_with("/v1/me/tickets?limit=1", Some(&ann_token), &[])
        .await
        .json();
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let rest = api
        .get_with(
            &format!("/v1/me/tickets?limit=1&cursor={cursor}"),
            Some(&ann_token),
            &[],
        )
        .await
        .json();
    assert_eq!(rest["items"][0]["registration_id"], ann_gala.0.to_string());
    assert_eq!(rest["next_cursor"], Value::Null);

    let bens = api
        .get_with("/v1/me/tickets", Some(&ben_token), &[])
        .await
        .json();
    assert_eq!(
        bens["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i["registration_id"].as_str().expect("id"))
            .collect::<Vec<_>>(),
        [ben_gala.0.to_string()]
    );
    let owners = api.get("/v1/me/tickets").await.json();
    assert_eq!(
        owners["items"],
        Value::Array(vec![]),
        "the owner holds nothing"
    );

    api.get_with("/v1/me/tickets", None, &[])
        .await
        .assert_problem(401, "unauthorized");
    let token = api.api_token().await;
    api.get_with("/v1/me/tickets", Some(&token), &[])
        .await
        .assert_problem(401, "unauthorized");
    api.get_with("/v1/me/tickets?status=paid", Some(&ann_token), &[])
        .await
        .assert_problem(400, "validation_failed");
}

async fn analytics_answer_in_json_and_csv_for_owners_organizers_and_analysts_only(api: TestApi) {
    let hall = api.venue("Berlin").await;
    let (event, paid) = api
        .event(hall, "Gala", "An evening", "2026-06-01T18:00:00Z", 2500)
        .await;
    let (ada, bo) = (
        RegistrationId(Uuid::now_v7()),
        RegistrationId(Uuid::now_v7()),
    );
    let ada_codes = codes(2);
    api.given(
        &event.stream(),
        &[
            EventFact::RegistrationQuestionsSet {
                questions: vec![
                    Question {
                        id: "country".into(),
                        label: "Where from?".into(),
                        kind: QuestionKind::Country,
                        options: vec![],
                        required: false,
                    },
                    Question {
                        id: "note".into(),
                        label: "Anything else?".into(),
                        kind: QuestionKind::Text,
                        options: vec![],
                        required: false,
                    },
                ],
            },
            EventFact::SeatsHeld {
                registration_id: ada,
                ticket_type_id: paid,
                attendee: Attendee {
                    name: "Ada".into(),
                    email: "ada@example.org".into(),
                },
                quantity: 2,
                ticket_codes: ada_codes.clone(),
                price: eur(5000),
                expires_at: at("2026-02-02T10:15:00Z"),
                held_at: at("2026-02-02T10:00:00Z"),
            },
            EventFact::AnswersGiven {
                registration_id: ada,
                answers: [
                    ("country".to_owned(), AnswerValue::One("DE".to_owned())),
                    (
                        "note".to_owned(),
                        AnswerValue::One("secret wish".to_owned()),
                    ),
                ]
                .into(),
            },
            EventFact::PaymentReceived {
                registration_id: ada,
                payment_id: PaymentId("pay_ada".into()),
                amount: eur(5000),
                received_at: at("2026-02-02T10:05:00Z"),
            },
            EventFact::HoldConfirmed {
                registration_id: ada,
                ticket_type_id: paid,
                quantity: 2,
                payment_id: PaymentId("pay_ada".into()),
                late: false,
                confirmed_at: at("2026-02-02T10:05:00Z"),
            },
            EventFact::SeatsHeld {
                registration_id: bo,
                ticket_type_id: paid,
                attendee: Attendee {
                    name: "Bo".into(),
                    email: "bo@example.org".into(),
                },
                quantity: 1,
                ticket_codes: codes(1),
                price: eur(2500),
                expires_at: at("2026-02-03T10:15:00Z"),
                held_at: at("2026-02-03T10:00:00Z"),
            },
            EventFact::PaymentReceived {
                registration_id: bo,
                payment_id: PaymentId("pay_bo".into()),
                amount: eur(2500),
                received_at: at("2026-02-03T10:05:00Z"),
            },
            EventFact::HoldConfirmed {
                registration_id: bo,
                ticket_type_id: paid,
                quantity: 1,
                payment_id: PaymentId("pay_bo".into()),
                late: false,
                confirmed_at: at("2026-02-03T10:05:00Z"),
            },
            EventFact::RegistrationCancelled {
                registration_id: bo,
                ticket_type_id: paid,
                quantity: 1,
                cancelled_at: at("2026-02-04T09:00:00Z"),
            },
            EventFact::RefundDue {
                registration_id: bo,
                payment_id: PaymentId("pay_bo".into()),
                amount: eur(2500),
                reason: RefundReason::AttendeeCancelled,
                due_at: at("2026-02-04T09:00:00Z"),
            },
            EventFact::TicketCheckedIn {
                ticket_code: ada_codes[0].clone(),
                registration_id: ada,
                ticket_type_id: paid,
                nonce: "n-1".into(),
                scanned_at: at("2026-06-01T18:20:00Z"),
                recorded_at: at("2026-06-01T18:20:00Z"),
            },
            EventFact::EventDetailsUpdated(DetailsChange {
                title: Some("Grand Gala".into()),
                ..DetailsChange::default()
            }),
        ],
    )
    .await;
    let uri = format!("/v1/events/{}/analytics", event.0);

    let a = api.get(&uri).await.json();
    assert_eq!(a["title"], "Grand Gala");
    assert_eq!(a["buckets_time_zone"], "UTC");
    assert_eq!(a["sell_through"]["seats_confirmed"], 2);
    assert_eq!(a["sell_through"]["quantity"], 100);
    assert_eq!(a["sell_through"]["ratio"], 0.02);
    assert_eq!(a["ticket_types"][0]["sell_through"], 0.02);
    let days = a["sales_per_day"].as_array().expect("days");
    assert_eq!(
        days.iter()
            .map(|d| (
                d["day"].as_str().expect("day"),
                d["orders_confirmed"].as_i64().expect("n"),
                d["revenue_minor"].as_i64().expect("n"),
                d["received_minor"].as_i64().expect("n"),
                d["orders_cancelled"].as_i64().expect("n"),
                d["refund_due_minor"].as_i64().expect("n"),
            ))
            .collect::<Vec<_>>(),
        [
            ("2026-02-02", 1, 5000, 5000, 0, 0),
            ("2026-02-03", 1, 2500, 2500, 0, 0),
            ("2026-02-04", 0, 0, 0, 1, 2500),
        ]
    );
    assert_eq!(a["sales_per_ticket_type"][0]["seats_confirmed"], 3);
    assert_eq!(a["sales_per_ticket_type"][0]["seats_cancelled"], 1);
    let revenue = &a["revenue"][0];
    assert_eq!(revenue["currency"], "EUR");
    assert_eq!(revenue["booked_minor"], 7500);
    assert_eq!(revenue["cancelled_minor"], 2500);
    assert_eq!(revenue["received_minor"], 7500);
    assert_eq!(revenue["refund_due_minor"], 2500);
    assert_eq!(revenue["refunded_minor"], 0);
    assert_eq!(revenue["net_minor"], 5000);
    assert_eq!(a["cancellations"]["orders_cancelled"], 1);
    assert_eq!(a["refunds"][0]["reason"], "attendee_cancelled");
    assert_eq!(a["refunds"][0]["completed"], 0);
    assert_eq!(a["check_ins"]["checked_in"], 1);
    assert_eq!(a["check_ins"]["rate"], 0.5);
    assert_eq!(
        a["check_ins"]["per_hour"][0]["hour"],
        "2026-06-01T18:00:00Z"
    );
    assert_eq!(a["check_ins"]["per_hour"][0]["cumulative"], 1);
    assert_eq!(a["questions"][0]["question_id"], "country");
    assert_eq!(a["questions"][0]["answered"], 1);
    assert_eq!(a["questions"][0]["answers"][0]["answer"], "DE");
    assert_eq!(a["questions"][1]["kind"], "text");
    assert_eq!(a["questions"][1]["answered"], 1);
    assert_eq!(a["questions"][1]["answers"], Value::Array(vec![]));
    assert!(
        !api.get(&uri).await.text.contains("secret wish"),
        "free text is never shown"
    );

    let days = api
        .get(&format!("{uri}?format=csv&section=sales_per_day"))
        .await
        .csv();
    assert_eq!(
        &days[0][..4],
        ["day", "ticket_type_id", "ticket_type_name", "currency"]
    );
    assert_eq!(days.len(), 1 + 3);
    assert_eq!(days[1][0], "2026-02-02");
    assert_eq!(days[1][2], "Standard");
    let answers = api
        .get_with(
            &format!("{uri}?section=answers"),
            Some(&api.owner),
            &[("accept", "text/csv")],
        )
        .await
        .csv();
    assert_eq!(
        answers,
        [
            vec![
                "question_id",
                "label",
                "kind",
                "asked",
                "answered",
                "answer",
                "registrations"
            ],
            vec!["country", "Where from?", "country", "true", "1", "DE", "1"],
            vec!["note", "Anything else?", "text", "true", "1", "", ""],
        ]
    );
    let check_ins = api
        .get(&format!("{uri}?format=csv&section=check_ins"))
        .await
        .csv();
    assert_eq!(
        check_ins[1],
        ["2026-06-01T18:00:00Z", "1", "0", "1", "1", "0.5"]
    );
    api.get(&format!("{uri}?format=csv"))
        .await
        .assert_problem(400, "validation_failed");
    api.get(&format!("{uri}?format=csv&section=everything"))
        .await
        .assert_problem(400, "validation_failed");
    api.get(&format!("{uri}?colour=blue"))
        .await
        .assert_problem(400, "validation_failed");

    for (role, status) in [
        (Role::Organizer, 200),
        (Role::Analyst, 200),
        (Role::DoorStaff, 403),
        (Role::Auditor, 403),
    ] {
        let token = api.member(role).await;
        let reply = api.get_with(&uri, Some(&token), &[]).await;
        assert_eq!(reply.status.as_u16(), status, "{role}: {}", reply.text);
    }
    let outsider = api.token_for(UserId(Uuid::now_v7())).await;
    api.get_with(&uri, Some(&outsider), &[])
        .await
        .assert_problem(404, "not_found");
    api.get_with(&uri, None, &[])
        .await
        .assert_problem(401, "unauthorized");
    api.get(&format!("/v1/events/{}/analytics", Uuid::now_v7()))
        .await
        .assert_problem(404, "not_found");
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
    public_answers_carry_an_etag_and_the_same_tag_is_a_304_until_the_answer_can_change,
    the_listing_searches_filters_and_sorts_with_a_cursor_per_order,
    the_guest_list_is_searched_and_exported_whole_as_csv,
    my_tickets_show_each_account_only_its_own_registrations,
    analytics_answer_in_json_and_csv_for_owners_organizers_and_analysts_only,
);
