//! A proptest target feeding every command route arbitrary requests — random bytes, broken
//! JSON, arbitrary JSON values, and the route's real body with fields removed, retyped or
//! added — signed in as the owner (now and then anonymously or with garbage credentials), with
//! real and random path ids. No request may panic the service or get a 5xx, and every refusal
//! is a problem+json document.
//!
//! It drives `marquee_command_api::router` in process with `tower::ServiceExt::oneshot` on a
//! `memory:` log and `memory:` auth tables, so a million cases take minutes, not hours.
//! `MARQUEE_FUZZ_CASES` sets the number of cases (default 3,000); `MARQUEE_FUZZ_SEED` (a u64)
//! makes a run repeatable. A long run goes through `cargo test` (nextest stops a test after
//! four minutes):
//!
//! ```sh
//! MARQUEE_FUZZ_CASES=1000000 MARQUEE_FUZZ_SEED=20261204 \
//!   cargo test -p marquee --test api fuzz:: -- --nocapture
//! ```
//!
//! Run so on 2026-12-04 (commit fc9c6dc, dev profile, 2 shared vCPUs): 1,000,000 cases in
//! 742.8 s (1,346 requests/s), no panic, no 5xx, every refusal problem+json. Every route but
//! sign-in, refresh, password change and erasure reached its success path (those four need a
//! secret the fuzzer is never given, on purpose: it must not sign the owner out of the world
//! by guessing).
//!
//! The world (log, accounts, venue, events, registrations, a waitlist place, a ticket code, a
//! member, an API token, a pending payment) is built afresh every [`RESET_EVERY`] cases, so
//! cases that cancel the event or shrink its capacity do not starve the ones after them of
//! success paths for long.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use marquee_auth::{Password, REFRESH_TTL, tokens};
use marquee_command_api::access::{Auth, RateLimits};
use marquee_command_api::{CommandState, accounts, router};
use marquee_domain::UserId;
use marquee_payments::TestGateway;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

/// Cases between two fresh worlds.
const RESET_EVERY: usize = 1_000;

const OWNER_EMAIL: &str = "owner@fuzz.test";
/// Never among the values the fuzzer sends: no case can change the owner's password or erase
/// the owner by guessing it.
const OWNER_PASSWORD: &str = "The-owner-passphrase-of-the-fuzz-world-0c7d";
const WEBHOOK_SECRET: &[u8] = b"whsec_fuzz";

/// A command route: method, path (with `{slot}`s for ids) and its real body.
struct Route {
    method: Method,
    path: &'static str,
    body: Option<fn() -> Value>,
}

/// Every route of the command API. Body strings starting with `$` are real ids, filled in per
/// world (see [`World::fill`]).
fn routes() -> Vec<Route> {
    fn r(method: Method, path: &'static str, body: Option<fn() -> Value>) -> Route {
        Route { method, path, body }
    }
    vec![
        r(
            Method::POST,
            "/v1/auth/signup",
            Some(
                || json!({ "email": "new@fuzz.test", "password": "a fine passphrase", "name": "New", "locale": "de" }),
            ),
        ),
        r(
            Method::POST,
            "/v1/auth/login",
            Some(|| json!({ "email": "$owner_email", "password": "not the password" })),
        ),
        r(
            Method::POST,
            "/v1/auth/refresh",
            Some(|| json!({ "refresh_token": "$refresh" })),
        ),
        r(Method::POST, "/v1/auth/logout", Some(|| json!({}))),
        r(Method::GET, "/v1/me", None),
        r(
            Method::PATCH,
            "/v1/me",
            Some(|| json!({ "name": "Renamed", "locale": "fr" })),
        ),
        r(
            Method::POST,
            "/v1/me/password",
            Some(
                || json!({ "current_password": "not the password", "new_password": "another passphrase" }),
            ),
        ),
        r(
            Method::POST,
            "/v1/me/erase",
            Some(|| json!({ "password": "not the password" })),
        ),
        r(
            Method::POST,
            "/v1/organizations",
            Some(|| json!({ "name": "Fuzz org two" })),
        ),
        r(Method::GET, "/v1/organizations/{org}", None),
        r(
            Method::POST,
            "/v1/organizations/{org}/members",
            Some(|| json!({ "email": "$member_email", "role": "analyst" })),
        ),
        r(
            Method::PUT,
            "/v1/organizations/{org}/members/{user}",
            Some(|| json!({ "role": "organizer" })),
        ),
        r(
            Method::DELETE,
            "/v1/organizations/{org}/members/{user}",
            Some(|| json!({})),
        ),
        r(
            Method::POST,
            "/v1/organizations/{org}/tokens",
            Some(|| json!({ "name": "fuzz token", "roles": ["organizer", "door_staff"] })),
        ),
        r(Method::GET, "/v1/organizations/{org}/tokens", None),
        r(
            Method::DELETE,
            "/v1/organizations/{org}/tokens/{token}",
            None,
        ),
        r(Method::GET, "/v1/me/export", None),
        r(
            Method::POST,
            "/v1/organizations/{org}/webhooks",
            Some(|| json!({ "url": "http://127.0.0.1:9/hook", "fact_types": ["*"] })),
        ),
        r(Method::GET, "/v1/organizations/{org}/webhooks", None),
        r(
            Method::GET,
            "/v1/organizations/{org}/webhooks/{webhook}",
            None,
        ),
        r(
            Method::DELETE,
            "/v1/organizations/{org}/webhooks/{webhook}",
            None,
        ),
        r(
            Method::POST,
            "/v1/organizations/{org}/webhooks/{webhook}/ping",
            None,
        ),
        r(
            Method::GET,
            "/v1/organizations/{org}/webhooks/{webhook}/deliveries",
            None,
        ),
        r(
            Method::POST,
            "/v1/venues",
            Some(
                || json!({ "name": "Hall", "city": "Graz", "address": "Main St 1", "capacity": 100, "timezone": "Europe/Vienna", "organization_id": "$org" }),
            ),
        ),
        r(
            Method::PATCH,
            "/v1/venues/{venue}",
            Some(|| json!({ "name": "Hall B", "capacity": 200 })),
        ),
        r(
            Method::POST,
            "/v1/events",
            Some(|| {
                json!({
                    "venue_id": "$venue", "title": "Fuzzed", "description": "d", "category": "c",
                    "starts_at": "2031-06-01T18:00:00Z", "ends_at": "2031-06-01T20:00:00Z",
                    "timezone": "UTC", "capacity": 50, "max_per_order": 4, "hold_seconds": 60,
                    "offer_seconds": 600, "cancellation_deadline": "2031-06-01T12:00:00Z",
                    "max_per_attendee": 2,
                    "questions": [{ "id": "diet", "label": "Diet", "type": "single_choice", "options": ["none", "vegan"] }],
                })
            }),
        ),
        r(
            Method::PATCH,
            "/v1/events/{event}",
            Some(
                || json!({ "title": "Renamed", "category": "x", "max_per_order": 5, "hold_seconds": 120 }),
            ),
        ),
        r(
            Method::POST,
            "/v1/events/{event}/ticket-types",
            Some(
                || json!({ "name": "VIP", "price": { "amount_minor": 1000, "currency": "EUR" }, "quantity": 5, "sales_start": "2026-01-01T00:00:00Z", "sales_end": "2031-01-01T00:00:00Z" }),
            ),
        ),
        r(
            Method::POST,
            "/v1/events/{event}/publish",
            Some(|| json!({})),
        ),
        // Cancelling the world's main event would starve every case after it of success paths:
        // its real id here is a spare draft's.
        r(
            Method::POST,
            "/v1/events/{spare}/cancel",
            Some(|| json!({ "reason": "weather" })),
        ),
        r(
            Method::PUT,
            "/v1/events/{event}/capacity",
            Some(|| json!({ "capacity": 900 })),
        ),
        r(
            Method::POST,
            "/v1/events/{event}/reschedule",
            Some(
                || json!({ "starts_at": "2032-06-01T18:00:00Z", "ends_at": "2032-06-01T20:00:00Z" }),
            ),
        ),
        // A required question on the main event would make every later reservation without
        // its answer a 422: the spare draft again.
        r(
            Method::PUT,
            "/v1/events/{spare}/questions",
            Some(
                || json!({ "questions": [{ "id": "country", "label": "Country", "type": "country", "required": true }] }),
            ),
        ),
        r(
            Method::POST,
            "/v1/events/{event}/reservations",
            Some(
                || json!({ "ticket_type_id": "$ticket_free", "quantity": 1, "attendee": { "name": "Ada", "email": "ada@example.com" }, "answers": {} }),
            ),
        ),
        r(
            Method::POST,
            "/v1/events/{event}/reservations/{registration}/pay",
            Some(|| json!({ "card_number": "4242424242424242" })),
        ),
        r(
            Method::POST,
            "/v1/events/{event}/reservations/{registration}/cancel",
            Some(|| json!({})),
        ),
        r(
            Method::POST,
            "/v1/events/{event}/waitlist",
            Some(
                || json!({ "ticket_type_id": "$ticket_sold", "quantity": 1, "attendee": { "name": "Bo", "email": "bo@example.com" }, "answers": {} }),
            ),
        ),
        r(
            Method::POST,
            "/v1/events/{event}/waitlist/{entry}/claim",
            Some(|| json!({})),
        ),
        r(
            Method::POST,
            "/v1/events/{event}/waitlist/{entry}/leave",
            Some(|| json!({})),
        ),
        r(
            Method::POST,
            "/v1/events/{event}/check-ins",
            Some(
                || json!({ "ticket_code": "$code", "nonce": "door-1", "scanned_at": "2026-01-01T10:00:00Z" }),
            ),
        ),
        r(
            Method::POST,
            "/v1/events/{event}/check-ins/{code}/revert",
            Some(|| json!({})),
        ),
        r(
            Method::POST,
            "/v1/payments/webhook",
            Some(
                || json!({ "payment_id": "$payment", "event_id": "$event", "registration_id": "$hold", "status": "succeeded", "amount": { "amount_minor": 2500, "currency": "EUR" } }),
            ),
        ),
        r(
            Method::POST,
            "/v1/payments/test-gateway/settle",
            Some(
                || json!({ "payment_id": "$payment", "event_id": "$event", "registration_id": "$hold", "succeeded": true }),
            ),
        ),
        r(Method::GET, "/health", None),
    ]
}

/// A path id: one of the world's real ids of that kind, a random UUID, or any text.
#[derive(Debug, Clone)]
enum PathId {
    Real(usize),
    Random(u128),
    Text(String),
}

/// One change to the route's real body, at one of its JSON pointers.
#[derive(Debug, Clone)]
enum Mutation {
    Remove(usize),
    Replace(usize, Value),
    Add(String, Value),
}

/// The request body.
#[derive(Debug, Clone)]
enum Payload {
    /// No body at all.
    Empty,
    /// Any bytes.
    Bytes(Vec<u8>),
    /// The real body, serialized, then cut short and with some bytes changed.
    Corrupted { cut: usize, flips: Vec<(usize, u8)> },
    /// Any JSON value.
    Json(Value),
    /// The real body with some changes (none at all: the valid request).
    Shaped(Vec<Mutation>),
}

/// The `Authorization` header.
#[derive(Debug, Clone)]
enum Credentials {
    Owner,
    None,
    Garbage(String),
}

/// One case.
#[derive(Debug, Clone)]
struct Input {
    route: usize,
    ids: [PathId; 2],
    payload: Payload,
    json_content_type: bool,
    credentials: Credentials,
    idempotency_key: Option<String>,
    sign_webhook: bool,
}

/// Strings worth trying: real ids (`$…`), edge cases of every field kind.
const STRINGS: &[&str] = &[
    "$event",
    "$draft",
    "$venue",
    "$org",
    "$ticket_free",
    "$ticket_paid",
    "$ticket_sold",
    "$registration",
    "$hold",
    "$payment",
    "$code",
    "$member_email",
    "$owner_email",
    "$refresh",
    "",
    " ",
    "\u{0}",
    "€",
    "🎫",
    "2030-01-01T18:00:00Z",
    "2030-01-01T18:00:00+02:00",
    "1970-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "not a time",
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "a@b",
    "someone@example.com",
    "EUR",
    "eur",
    "XXX",
    "4242424242424242",
    "4242 4242 4242 4242",
    "4000000000000002",
    "4000000000000077",
    "4000000000009995",
    "1234",
    "owner",
    "organizer",
    "door_staff",
    "analyst",
    "auditor",
    "root",
    "text",
    "single_choice",
    "multiple_choice",
    "country",
    "age_range",
    "25_34",
    "DE",
    "Europe/Berlin",
    "Mars/Olympus_Mons",
    "../..",
    "%00",
    "mqt_00000000000000000000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "mqr_AAAA",
    "eyJhbGciOiJub25lIn0.e30.",
];

/// Field names worth trying as extra or nested keys.
const FIELDS: &[&str] = &[
    "name",
    "email",
    "password",
    "role",
    "roles",
    "capacity",
    "quantity",
    "price",
    "amount_minor",
    "currency",
    "attendee",
    "answers",
    "ticket_type_id",
    "venue_id",
    "organization_id",
    "starts_at",
    "ends_at",
    "questions",
    "id",
    "options",
    "required",
    "type",
    "status",
    "nonce",
    "scanned_at",
    "ticket_code",
    "succeeded",
    "payment_id",
    "__proto__",
    "",
];

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::sample::select(vec![
            0i64,
            1,
            -1,
            2,
            10,
            11,
            100_000,
            i64::from(u32::MAX),
            i64::from(u32::MAX) + 1,
            i64::MIN,
        ])
        .prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        prop::sample::select(STRINGS).prop_map(Value::from),
        ".{0,24}".prop_map(Value::from),
        (0usize..70_000)
            .prop_map(|n| Value::from("x".repeat(n % 300 + if n > 69_000 { 65_000 } else { 0 }))),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((field_name(), inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(FIELDS).prop_map(str::to_owned),
        1 => ".{0,12}",
    ]
}

fn path_id() -> impl Strategy<Value = PathId> {
    prop_oneof![
        6 => (0usize..4).prop_map(PathId::Real),
        2 => any::<u128>().prop_map(PathId::Random),
        2 => prop_oneof![
            prop::sample::select(STRINGS).prop_map(str::to_owned),
            ".{0,40}",
        ]
        .prop_map(PathId::Text),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => any::<usize>().prop_map(Mutation::Remove),
        5 => (any::<usize>(), json_value()).prop_map(|(at, v)| Mutation::Replace(at, v)),
        2 => (field_name(), json_value()).prop_map(|(k, v)| Mutation::Add(k, v)),
    ]
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        1 => Just(Payload::Empty),
        3 => prop::collection::vec(any::<u8>(), 0..300).prop_map(Payload::Bytes),
        3 => (any::<usize>(), prop::collection::vec((any::<usize>(), any::<u8>()), 0..4))
            .prop_map(|(cut, flips)| Payload::Corrupted { cut, flips }),
        4 => json_value().prop_map(Payload::Json),
        3 => Just(Payload::Shaped(Vec::new())),
        8 => prop::collection::vec(mutation(), 1..4).prop_map(Payload::Shaped),
    ]
}

fn credentials() -> impl Strategy<Value = Credentials> {
    prop_oneof![
        18 => Just(Credentials::Owner),
        1 => Just(Credentials::None),
        1 => prop_oneof![
            prop::sample::select(STRINGS).prop_map(|s| format!("Bearer {s}")),
            "[ -~]{0,60}",
        ]
        .prop_map(Credentials::Garbage),
    ]
}

fn input(routes: usize) -> impl Strategy<Value = Input> {
    (
        0..routes,
        prop::array::uniform2(path_id()),
        payload(),
        prop::bool::weighted(0.9),
        credentials(),
        prop::option::weighted(0.1, "[ -~]{0,50}"),
        prop::bool::weighted(0.5),
    )
        .prop_map(
            |(
                route,
                ids,
                payload,
                json_content_type,
                credentials,
                idempotency_key,
                sign_webhook,
            )| {
                Input {
                    route,
                    ids,
                    payload,
                    json_content_type,
                    credentials,
                    idempotency_key,
                    sign_webhook,
                }
            },
        )
}

/// Every JSON pointer of `value` (the root included).
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                let key = key.replace('~', "~0").replace('/', "~1");
                pointers(v, format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                pointers(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Percent-encodes a path segment.
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The in-process service and the real things in it.
struct World {
    runtime: Arc<tokio::runtime::Runtime>,
    state: CommandState,
    router: Router,
    owner: UserId,
    token: String,
    /// Real values by `$name`, for body strings.
    values: BTreeMap<&'static str, String>,
    /// Real ids by path slot.
    slots: BTreeMap<&'static str, Vec<String>>,
}

impl World {
    fn new(runtime: Arc<tokio::runtime::Runtime>) -> World {
        let rt = runtime.clone();
        rt.block_on(async move {
            let log = marquee_store::connect("memory:").await.expect("log");
            let limits = RateLimits {
                sign_in_per_minute: 0,
                commands_per_second: 0,
                commands_per_second_per_address: 0,
            };
            let auth = Auth::connect("memory:", log.clone(), limits)
                .await
                .expect("auth tables");
            let webhooks = marquee_notifier::Webhooks::connect("memory:", auth.vault.clone())
                .await
                .expect("notifier tables");
            let state = CommandState::new(log, Arc::new(auth))
                .with_test_gateway(Arc::new(TestGateway::new()), Some(WEBHOOK_SECRET.to_vec()))
                .with_webhooks(webhooks);
            let (owner, organization) = accounts::bootstrap_owner(
                &state,
                OWNER_EMAIL,
                &Password::new(OWNER_PASSWORD),
                "Fuzz org",
            )
            .await
            .expect("bootstrap")
            .expect("a fresh installation");
            let mut world = World {
                runtime,
                router: router(state.clone()),
                state,
                owner,
                token: String::new(),
                values: BTreeMap::new(),
                slots: BTreeMap::new(),
            };
            world.token = world.mint_token().await;
            world.furnish(organization.to_string()).await;
            world
        })
    }

    /// A session of the owner's and its access token, straight from the auth tables (no
    /// password hashing: cheap enough to do after every successful sign-out).
    async fn mint_token(&self) -> String {
        let now = chrono::Utc::now();
        let (_, hash) = tokens::new_refresh_token();
        let session = self
            .state
            .auth
            .store()
            .create_session(self.owner.0, &hash, now, REFRESH_TTL)
            .await
            .expect("session");
        self.state
            .auth
            .authenticator
            .issue_access(self.owner, session, now)
            .expect("access token")
    }

    /// Sends a request as the owner during set-up; it must succeed.
    async fn setup(&self, method: Method, path: &str, body: Value) -> Value {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .expect("request");
        let response = self.router.clone().oneshot(request).await.expect("answer");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert!(status.is_success(), "set-up {path}: {status} {value}");
        value
    }

    /// The world's venue, events, registrations, waitlist place, ticket codes, member, token
    /// and pending payment.
    async fn furnish(&mut self, organization: String) {
        let text = |v: &Value, k: &str| v[k].as_str().expect(k).to_owned();
        let venue = self
            .setup(
                Method::POST,
                "/v1/venues",
                json!({ "name": "Fuzz hall", "city": "Graz", "capacity": 1000 }),
            )
            .await;
        let venue = text(&venue, "venue_id");
        let draft = |title: &str, day: u32| {
            json!({ "venue_id": venue, "title": title, "category": "fuzz",
                    "starts_at": format!("2031-03-{day:02}T18:00:00Z"),
                    "ends_at": format!("2031-03-{day:02}T21:00:00Z") })
        };
        let event = self
            .setup(Method::POST, "/v1/events", draft("Fuzz night", 1))
            .await;
        let event = text(&event, "event_id");
        let spare = self
            .setup(Method::POST, "/v1/events", draft("Spare", 2))
            .await;
        let spare = text(&spare, "event_id");
        let ticket = |name: &str, price: i64, quantity: u32| json!({ "name": name, "price": { "amount_minor": price, "currency": "EUR" }, "quantity": quantity });
        let types = format!("/v1/events/{event}/ticket-types");
        let free = self
            .setup(Method::POST, &types, ticket("Free", 0, 500))
            .await;
        let free = text(&free, "ticket_type_id");
        let paid = self
            .setup(Method::POST, &types, ticket("Paid", 2500, 300))
            .await;
        let paid = text(&paid, "ticket_type_id");
        let sold = self.setup(Method::POST, &types, ticket("One", 0, 1)).await;
        let sold = text(&sold, "ticket_type_id");
        self.setup(
            Method::POST,
            &format!("/v1/events/{event}/publish"),
            json!({}),
        )
        .await;
        let reservations = format!("/v1/events/{event}/reservations");
        let reserve = |ticket: &str, n: u32| {
            json!({ "ticket_type_id": ticket, "quantity": 1,
                    "attendee": { "name": format!("Guest {n}"), "email": format!("g{n}@example.com") } })
        };
        let registration = self
            .setup(Method::POST, &reservations, reserve(&free, 1))
            .await;
        let scanned = self
            .setup(Method::POST, &reservations, reserve(&free, 2))
            .await;
        self.setup(Method::POST, &reservations, reserve(&sold, 3))
            .await;
        let hold = self
            .setup(Method::POST, &reservations, reserve(&paid, 4))
            .await;
        let hold_id = text(&hold, "registration_id");
        let pending = self
            .setup(
                Method::POST,
                &format!("/v1/events/{event}/reservations/{hold_id}/pay"),
                json!({ "card_number": "4000000000000077" }),
            )
            .await;
        let other_hold = self
            .setup(Method::POST, &reservations, reserve(&paid, 5))
            .await;
        let entry = self
            .setup(
                Method::POST,
                &format!("/v1/events/{event}/waitlist"),
                json!({ "ticket_type_id": sold, "attendee": { "name": "W", "email": "w@example.com" } }),
            )
            .await;
        // A place with an open offer, for the claim route: a one-seat ticket type, taken, a
        // place in its line, then the seat freed.
        let offered = self
            .setup(Method::POST, &types, ticket("Offered", 0, 1))
            .await;
        let offered = text(&offered, "ticket_type_id");
        let taken = self
            .setup(Method::POST, &reservations, reserve(&offered, 6))
            .await;
        let offered_entry = self
            .setup(
                Method::POST,
                &format!("/v1/events/{event}/waitlist"),
                json!({ "ticket_type_id": offered, "attendee": { "name": "O", "email": "o@example.com" } }),
            )
            .await;
        self.setup(
            Method::POST,
            &format!(
                "/v1/events/{event}/reservations/{}/cancel",
                text(&taken, "registration_id")
            ),
            json!({}),
        )
        .await;
        let code = registration["ticket_codes"][0]
            .as_str()
            .expect("code")
            .to_owned();
        let scanned_code = scanned["ticket_codes"][0]
            .as_str()
            .expect("code")
            .to_owned();
        self.setup(
            Method::POST,
            &format!("/v1/events/{event}/check-ins"),
            json!({ "ticket_code": scanned_code, "nonce": "setup" }),
        )
        .await;
        let member_email = "member@fuzz.test".to_owned();
        let member = self
            .setup(
                Method::POST,
                "/v1/auth/signup",
                json!({ "email": member_email, "password": "member passphrase", "name": "M" }),
            )
            .await;
        let member = text(&member, "user_id");
        self.setup(
            Method::POST,
            &format!("/v1/organizations/{organization}/members"),
            json!({ "email": member_email, "role": "door_staff" }),
        )
        .await;
        let token = self
            .setup(
                Method::POST,
                &format!("/v1/organizations/{organization}/tokens"),
                json!({ "name": "fuzz", "roles": ["organizer"] }),
            )
            .await;
        let webhook = self
            .setup(
                Method::POST,
                &format!("/v1/organizations/{organization}/webhooks"),
                json!({ "url": "http://127.0.0.1:9/fuzz", "fact_types": ["*"] }),
            )
            .await;
        let (refresh, _) = tokens::new_refresh_token();

        let registration_id = text(&registration, "registration_id");
        self.values = BTreeMap::from([
            ("$event", event.clone()),
            ("$draft", spare.clone()),
            ("$venue", venue.clone()),
            ("$org", organization.clone()),
            ("$ticket_free", free),
            ("$ticket_paid", paid),
            ("$ticket_sold", sold),
            ("$registration", registration_id.clone()),
            ("$hold", hold_id.clone()),
            ("$payment", text(&pending, "payment_id")),
            ("$code", code.clone()),
            ("$member_email", member_email),
            ("$owner_email", OWNER_EMAIL.to_owned()),
            ("$refresh", refresh),
        ]);
        self.slots = BTreeMap::from([
            ("org", vec![organization]),
            ("user", vec![member, self.owner.to_string()]),
            ("token", vec![text(&token, "token_id")]),
            ("webhook", vec![text(&webhook, "webhook_id")]),
            ("venue", vec![venue]),
            ("event", vec![event.clone(), event, spare.clone()]),
            ("spare", vec![spare]),
            (
                "registration",
                vec![
                    registration_id,
                    hold_id,
                    text(&other_hold, "registration_id"),
                ],
            ),
            (
                "entry",
                vec![text(&entry, "entry_id"), text(&offered_entry, "entry_id")],
            ),
            ("code", vec![code, scanned_code]),
        ]);
    }

    /// `value` with every `$name` string replaced by the world's real value.
    fn fill(&self, value: &mut Value) {
        match value {
            Value::String(s) => {
                if let Some(real) = self.values.get(s.as_str()) {
                    *s = real.clone();
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.fill(v)),
            Value::Object(map) => map.values_mut().for_each(|v| self.fill(v)),
            _ => {}
        }
    }

    /// The path of `route` with its slots filled from `ids`.
    fn path(&self, route: &Route, ids: &[PathId; 2]) -> String {
        let mut path = String::new();
        let mut next = 0;
        for part in route.path.split('/').skip(1) {
            path.push('/');
            match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(slot) => {
                    let id = &ids[next.min(1)];
                    next += 1;
                    let text = match id {
                        PathId::Real(i) => {
                            let real = &self.slots[slot];
                            real[i % real.len()].clone()
                        }
                        PathId::Random(n) => Uuid::from_u128(*n).to_string(),
                        PathId::Text(text) => text.clone(),
                    };
                    path.push_str(&segment(&text));
                }
                None => path.push_str(part),
            }
        }
        path
    }

    /// The body bytes of `input` on `route`.
    fn body(&self, route: &Route, payload: &Payload) -> Vec<u8> {
        let real = || {
            let mut body = route.body.map_or_else(|| json!({}), |b| b());
            self.fill(&mut body);
            body
        };
        match payload {
            Payload::Empty => Vec::new(),
            Payload::Bytes(bytes) => bytes.clone(),
            Payload::Corrupted { cut, flips } => {
                let mut bytes = real().to_string().into_bytes();
                bytes.truncate(cut % (bytes.len() + 1) + bytes.len() / 2);
                for (at, byte) in flips {
                    if !bytes.is_empty() {
                        let at = at % bytes.len();
                        bytes[at] = *byte;
                    }
                }
                bytes
            }
            Payload::Json(value) => {
                let mut value = value.clone();
                self.fill(&mut value);
                value.to_string().into_bytes()
            }
            Payload::Shaped(mutations) => {
                let mut body = real();
                for mutation in mutations {
                    let mut all = Vec::new();
                    pointers(&body, String::new(), &mut all);
                    match mutation {
                        Mutation::Remove(at) => {
                            let pointer = &all[at % all.len()];
                            if let Some((parent, key)) = pointer.rsplit_once('/')
                                && let Some(parent) = body.pointer_mut(parent)
                            {
                                match parent {
                                    Value::Object(map) => {
                                        map.remove(&key.replace("~1", "/").replace("~0", "~"));
                                    }
                                    Value::Array(items) => {
                                        if let Ok(i) = key.parse::<usize>()
                                            && i < items.len()
                                        {
                                            items.remove(i);
                                        }
                                    }
                                    _ => {}
                                }
                            }
                        }
                        Mutation::Replace(at, value) => {
                            let pointer = &all[at % all.len()];
                            if let Some(slot) = body.pointer_mut(pointer) {
                                let mut value = value.clone();
                                self.fill(&mut value);
                                *slot = value;
                            }
                        }
                        Mutation::Add(key, value) => {
                            if let Value::Object(map) = &mut body {
                                let mut value = value.clone();
                                self.fill(&mut value);
                                map.insert(key.clone(), value);
                            }
                        }
                    }
                }
                body.to_string().into_bytes()
            }
        }
    }

    /// Sends one case; its status, content type and path.
    fn run(&mut self, route: &Route, input: &Input) -> (StatusCode, String, String) {
        let path = self.path(route, &input.ids);
        let body = self.body(route, &input.payload);
        let mut request = Request::builder().method(route.method.clone()).uri(&path);
        if input.json_content_type {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        match &input.credentials {
            Credentials::Owner => {
                request = request.header(header::AUTHORIZATION, format!("Bearer {}", self.token));
            }
            Credentials::None => {}
            Credentials::Garbage(value) => {
                // Any bytes a header may carry (obsolete non-ASCII text included).
                let bytes: Vec<u8> = value
                    .bytes()
                    .map(|b| {
                        if b == b'\t' || (b >= 0x20 && b != 0x7f) {
                            b
                        } else {
                            b'?'
                        }
                    })
                    .collect();
                let value = header::HeaderValue::from_bytes(&bytes).expect("header bytes");
                request = request.header(header::AUTHORIZATION, value);
            }
        }
        if let Some(key) = &input.idempotency_key {
            request = request.header("idempotency-key", key.as_str());
        }
        if route.path == "/v1/payments/webhook" && input.sign_webhook {
            let signature = marquee_payments::webhook::sign(
                WEBHOOK_SECRET,
                chrono::Utc::now().timestamp(),
                &body,
            );
            request = request.header("marquee-signature", signature);
        }
        let request = request.body(Body::from(body)).expect("a request");
        let router = self.router.clone();
        let (status, content_type) = self.runtime.block_on(async move {
            let response = router.oneshot(request).await.expect("infallible");
            let status = response.status();
            let content_type = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            // Reading the body drives any streaming work to its end.
            let _ = axum::body::to_bytes(response.into_body(), 1 << 24).await;
            (status, content_type)
        });
        if route.path == "/v1/auth/logout" && status.is_success() {
            // The owner signed out: later cases need a live session again.
            let token = self.runtime.block_on(self.mint_token());
            self.token = token;
        }
        (status, content_type, path)
    }
}

#[test]
fn arbitrary_requests_to_every_command_route_never_panic_nor_answer_5xx() {
    let cases: u32 = std::env::var("MARQUEE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000);
    let seed: u64 = std::env::var("MARQUEE_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime"),
    );
    let routes = routes();
    let world = RefCell::new(World::new(runtime.clone()));
    let done = RefCell::new(0usize);
    // Answers per route and status, for the summary.
    let tally: RefCell<BTreeMap<(String, u16), u64>> = RefCell::default();
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..Config::default()
    };
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let started = Instant::now();
    println!("fuzz: {cases} cases, MARQUEE_FUZZ_SEED={seed}");
    let outcome = runner.run(&input(routes.len()), |input| {
        {
            let mut done = done.borrow_mut();
            if *done > 0 && (*done).is_multiple_of(RESET_EVERY) {
                *world.borrow_mut() = World::new(runtime.clone());
            }
            *done += 1;
        }
        let route = &routes[input.route];
        let (status, content_type, path) = world.borrow_mut().run(route, &input);
        *tally
            .borrow_mut()
            .entry((format!("{} {}", route.method, route.path), status.as_u16()))
            .or_default() += 1;
        prop_assert!(
            !status.is_server_error(),
            "{} {path} answered {status}",
            route.method
        );
        if status.is_client_error() {
            prop_assert!(
                content_type.starts_with("application/problem+json"),
                "{} {path} answered {status} as {content_type:?}",
                route.method
            );
        }
        Ok(())
    });
    let elapsed = started.elapsed();
    println!(
        "fuzz: {} requests in {:.1} s ({:.0}/s)",
        done.borrow(),
        elapsed.as_secs_f64(),
        *done.borrow() as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    let mut per_route: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ((route, status), count) in tally.borrow().iter() {
        per_route
            .entry(route.clone())
            .or_default()
            .push(format!("{status}×{count}"));
    }
    for (route, answers) in &per_route {
        println!("fuzz: {route}: {}", answers.join(" "));
    }
    if let Err(failure) = outcome {
        panic!("{failure}\n(rerun with MARQUEE_FUZZ_SEED={seed})");
    }
    assert_eq!(per_route.len(), routes.len(), "every route was tried");
}

#[test]
fn the_fuzzed_routes_are_the_documented_command_routes() {
    // The list above is written by hand (each route needs a real body); the OpenAPI document is
    // built from the router's registrations. A route added to one and not the other fails here.
    // The slots' names differ (`{org}` here, `{organization_id}` there): compare the shapes.
    let shape = |path: &str| {
        path.split('/')
            .map(|s| if s.starts_with('{') { "{}" } else { s })
            .collect::<Vec<_>>()
            .join("/")
    };
    let fuzzed: std::collections::BTreeSet<(String, String)> = routes()
        .iter()
        .map(|r| (r.method.as_str().to_owned(), shape(r.path)))
        .collect();
    let doc = serde_json::to_value(marquee_command_api::openapi()).expect("document");
    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            // The document and its docs page take no input worth fuzzing; health is fuzzed.
            if operation["tags"][0] != "meta" || path == "/health" {
                documented.insert((method.to_uppercase(), shape(path)));
            }
        }
    }
    assert_eq!(fuzzed, documented);
}
