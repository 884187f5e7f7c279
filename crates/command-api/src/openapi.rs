//! The command API's OpenAPI 3.1 document, built from the same registrations as the routes.
//!
//! Every module's `router()` registers its handlers through utoipa-axum's `routes!`, which
//! takes each route's method and path from the handler's `#[utoipa::path]`: a route cannot be
//! served without being documented, nor documented without being served. This module holds
//! what the operations share — the RFC 9457 [`Problem`] schema, the error answers by status,
//! the `Idempotency-Key` header, the bearer security scheme, schemas of domain types — and the
//! two routes that publish the document (`/openapi.json`) and a page to read it (`/docs`).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, InfoBuilder, ObjectBuilder, OpenApi, Ref, RefOr,
    ResponseBuilder, Type, response::Response as DocResponse,
};
use utoipa::{IntoParams, IntoResponses, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::CommandState;

/// Name of the security scheme in the document.
pub const BEARER: &str = "bearer";

/// The tags operations are grouped by, in the order the docs page lists them.
const TAGS: &[(&str, &str)] = &[
    (
        "accounts",
        "Sign-up, sign-in, sessions and the signed-in account",
    ),
    (
        "organizations",
        "Organizations, their members and API tokens",
    ),
    ("venues", "Venues and their capacity"),
    (
        "events",
        "Drafting, publishing and changing events; ticket types; questions",
    ),
    (
        "registrations",
        "Reserving seats and cancelling registrations",
    ),
    (
        "payments",
        "Paying for held seats; the payment provider's webhook",
    ),
    (
        "waitlist",
        "Joining a sold-out ticket type's waitlist, claiming offers, leaving",
    ),
    ("check-ins", "Letting ticket holders in at the door"),
    (
        "webhooks",
        "Organizations' outgoing webhook endpoints and their delivery logs",
    ),
    ("meta", "Health, this document and its docs page"),
];

/// An RFC 9457 problem: every refusal and failure of the command API answers with one, as
/// `application/problem+json`. Besides the standard members it carries a stable `code` and,
/// for some codes, members that say more; which codes carry which is written on each member
/// (see `crate::error`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Problem {
    /// `https://marquee.dev/problems/{code}`.
    r#type: String,
    /// Short, fixed summary of the kind of problem.
    title: String,
    /// The HTTP status code.
    #[schema(minimum = 400, maximum = 599)]
    status: u16,
    /// What went wrong with this request (for 5xx a fixed text; the cause is only logged).
    detail: String,
    /// Stable machine-readable code, e.g. `validation_failed`, `not_found`, `sold_out`.
    code: String,
    /// The request field or header at fault (`validation_failed`), e.g. `title`,
    /// `answers.diet`, `Idempotency-Key`.
    field: Option<String>,
    /// Seconds to wait before retrying (`rate_limited`; also in `Retry-After`).
    retry_after: Option<u64>,
    /// Seats still available (`sold_out`, `seats_available`).
    available: Option<u32>,
    /// The capacity asked for (`capacity_exceeds_venue`, `capacity_below_sold`).
    capacity: Option<u32>,
    /// The venue's capacity (`capacity_exceeds_venue`).
    venue_capacity: Option<u32>,
    /// Seats sold (`capacity_below_sold`).
    sold: Option<u32>,
    /// The event's status (`invalid_state`).
    event_status: Option<String>,
    /// The registration's status (`not_payable`).
    registration_status: Option<String>,
    /// The waitlist entry's status (`not_on_waitlist`).
    entry_status: Option<String>,
    /// When sales open (`sales_not_open`).
    opens_at: Option<DateTime<Utc>>,
    /// When sales closed (`sales_closed`).
    closed_at: Option<DateTime<Utc>>,
    /// The cancellation deadline (`cancellation_closed`).
    deadline: Option<DateTime<Utc>>,
    /// When the hold expired (`hold_expired`).
    expired_at: Option<DateTime<Utc>>,
    /// When the ticket was first checked in (`already_redeemed`).
    first_scanned_at: Option<DateTime<Utc>>,
    /// The most seats per order (`order_limit_exceeded`).
    max_per_order: Option<u32>,
    /// The most seats per attendee (`attendee_limit_exceeded`).
    max_per_attendee: Option<u32>,
    /// Seats the attendee holds already (`attendee_limit_exceeded`).
    already: Option<u32>,
    /// The attendee's waitlist entry (`already_on_waitlist`).
    entry_id: Option<Uuid>,
    /// The registration an offer was claimed as (`offer_claimed`).
    registration_id: Option<Uuid>,
    /// The event that has the venue then (`schedule_conflict`), with its times.
    conflicting_event_id: Option<Uuid>,
    conflicting_starts_at: Option<DateTime<Utc>>,
    conflicting_ends_at: Option<DateTime<Utc>>,
    /// The declined payment (`payment_declined`).
    payment_id: Option<String>,
    /// Why the card was declined (`payment_declined`).
    reason: Option<String>,
    /// The refund now due for a payment that cannot be kept (`hold_expired`, `already_paid`,
    /// `amount_mismatch`, `already_cancelled` answers of `…/pay` and the payment webhook).
    refund: Option<ProblemRefund>,
}

/// A refund in a problem: the payment, its amount and why it is refunded.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ProblemRefund {
    payment_id: String,
    amount: schemas::Money,
    /// E.g. `late_payment`, `duplicate_payment`, `amount_mismatch`.
    reason: String,
}

/// Schemas of domain types the request and answer bodies carry.
pub mod schemas {
    use utoipa::ToSchema;

    /// An amount of money in the currency's minor unit, e.g. `{ "amount_minor": 2500,
    /// "currency": "EUR" }` is 25.00 EUR.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct Money {
        /// The amount in minor units (cents for EUR); never negative.
        #[schema(minimum = 0)]
        pub amount_minor: i64,
        /// ISO 4217 code: three upper-case letters.
        #[schema(pattern = "^[A-Z]{3}$")]
        pub currency: String,
    }

    /// What a member or an API token may do inside an organization.
    #[derive(ToSchema)]
    #[serde(rename_all = "snake_case")]
    #[allow(dead_code)]
    pub enum Role {
        /// Everything, including members and tokens.
        Owner,
        /// Venues, events, ticket types, registrations, guest lists and check-in.
        Organizer,
        /// Check-in and the guest list only.
        DoorStaff,
        /// Analytics only.
        Analyst,
        /// History and the log only.
        Auditor,
    }

    /// Status of a registration.
    #[derive(ToSchema)]
    #[serde(rename_all = "snake_case")]
    #[allow(dead_code)]
    pub enum RegistrationStatus {
        Confirmed,
        Cancelled,
        Held,
        Expired,
    }

    /// Status of a waitlist entry.
    #[derive(ToSchema)]
    #[serde(rename_all = "snake_case")]
    #[allow(dead_code)]
    pub enum WaitlistStatus {
        Waiting,
        Offered,
        Claimed,
        Expired,
        Left,
        Closed,
    }

    /// Kind of a registration question.
    #[derive(ToSchema)]
    #[serde(rename_all = "snake_case")]
    #[allow(dead_code)]
    pub enum QuestionType {
        Text,
        SingleChoice,
        MultipleChoice,
        Country,
        AgeRange,
    }

    /// A question an event asks at registration.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct Question {
        /// 1 to 40 characters of `[a-z0-9_]`, unique within the event.
        #[schema(pattern = "^[a-z0-9_]{1,40}$")]
        pub id: String,
        /// 1 to 200 characters.
        #[schema(min_length = 1, max_length = 200)]
        pub label: String,
        pub r#type: QuestionType,
        /// The choices of a `single_choice` or `multiple_choice` question (at most 50, each
        /// 1 to 200 characters); none for the other kinds.
        #[schema(max_items = 50)]
        pub options: Option<Vec<String>>,
        /// Whether a registration must answer it (default `false`).
        pub required: Option<bool>,
    }

    /// One answer: a text, a choice, a country code or an age range; a list of choices for a
    /// `multiple_choice` question.
    #[derive(ToSchema)]
    #[serde(untagged)]
    #[allow(dead_code)]
    pub enum AnswerValue {
        One(String),
        Many(Vec<String>),
    }

    /// Answers to an event's registration questions, by question id.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct Answers(pub std::collections::BTreeMap<String, AnswerValue>);

    /// The person a registration or a waitlist entry is for.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct Attendee {
        /// Full name as printed on the ticket.
        pub name: String,
        /// Where tickets and notices go.
        pub email: String,
    }
}

/// The optional `Idempotency-Key` header of commands: the same key with the same request
/// replays the first answer (with `Idempotent-Replayed: true`) and appends nothing.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct IdempotencyKey {
    /// 1 to 255 visible ASCII characters, chosen by the client per command. The same key with
    /// a different request is `422 idempotency_key_reused`; while the first request with it
    /// runs, `409 idempotency_key_in_flight`.
    #[param(
        rename = "Idempotency-Key",
        nullable = false,
        pattern = "^[!-~]{1,255}$"
    )]
    idempotency_key: Option<String>,
}

/// A problem+json answer with `description`.
fn problem(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/problem+json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    )
}

fn text_header(description: &str, integer: bool) -> utoipa::openapi::Header {
    let schema =
        ObjectBuilder::new().schema_type(if integer { Type::Integer } else { Type::String });
    HeaderBuilder::new()
        .schema(Some(schema))
        .description(Some(description))
        .build()
}

/// Declares a problem answer for one status, usable in `responses(...)`.
macro_rules! problem_responses {
    ($($(#[$doc:meta])* $name:ident => $status:literal, $description:expr;)*) => {$(
        $(#[$doc])*
        pub struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<DocResponse>> {
                BTreeMap::from([($status.to_owned(), decorate($status, problem($description)).build().into())])
            }
        }
    )*};
}

/// Headers that come with some statuses' problems.
fn decorate(status: &str, response: ResponseBuilder) -> ResponseBuilder {
    match status {
        "401" => response.header(
            "WWW-Authenticate",
            text_header("`Bearer realm=\"marquee\"`", false),
        ),
        "429" => response.header("Retry-After", text_header("Seconds to wait.", true)),
        _ => response,
    }
}

problem_responses! {
    /// 400: malformed JSON or an unusable `Idempotency-Key`.
    BadRequest => "400", "The body is not JSON (`malformed_json`), or the `Idempotency-Key` header is unusable (`validation_failed` with `field`).";
    /// 401: no valid credentials.
    Unauthorized => "401", "No credentials, or credentials that are not valid: expired, tampered with or revoked (`unauthorized`).";
    /// 402: the card was declined (recorded).
    PaymentRequired => "402", "The card was declined (`payment_declined`); the attempt is recorded and the seats stay held.";
    /// 403: a member whose role does not allow this.
    Forbidden => "403", "The caller's role in the owning organization does not allow this (`forbidden`).";
    /// 404: no such resource, or not visible to the caller.
    NotFound => "404", "No such resource, or one outside the caller's organizations: a path id that is not a UUID names nothing either (`not_found`).";
    /// 409: a rule refused the command in the resource's current state.
    Conflict => "409", "A rule refused the command in the resource's current state; `code` says which (e.g. `conflict`, `invalid_state`, `sold_out`, `schedule_conflict`, `idempotency_key_in_flight`).";
    /// 413: the body is over the limit.
    PayloadTooLarge => "413", "The body is larger than 64 KiB (`payload_too_large`).";
    /// 415: the body is not JSON by its `Content-Type`.
    UnsupportedMediaType => "415", "The body's Content-Type is not `application/json` (`unsupported_media_type`).";
    /// 422: the body is JSON but not a valid request.
    Unprocessable => "422", "The body is JSON but not a valid request: wrong shape, unknown field, or a value a rule refuses (`validation_failed` with `field`, or a more specific `code`); or the `Idempotency-Key` was used with a different request (`idempotency_key_reused`).";
    /// 429: rate-limited.
    TooManyRequests => "429", "Too many requests from this client or token (`rate_limited`, with `retry_after`).";
    /// 502: the payment provider refused the request.
    BadGateway => "502", "The payment provider refused the request; nothing was recorded (`payment_provider_error`).";
    /// 503: something this route needs is not configured or not reachable.
    Unavailable => "503", "Something this route needs is not configured in this process or not reachable (`unavailable`, `notifications_not_configured`, `webhook_not_configured`, `payment_provider_unavailable`).";
}

/// 401 and 429: what any route that reads the caller's credentials can answer.
pub struct CallerErrors;

impl IntoResponses for CallerErrors {
    fn responses() -> BTreeMap<String, RefOr<DocResponse>> {
        let mut all = Unauthorized::responses();
        all.extend(TooManyRequests::responses());
        all
    }
}

/// 400, 413, 415 and 422: what any route with a JSON body can answer.
pub struct BodyErrors;

impl IntoResponses for BodyErrors {
    fn responses() -> BTreeMap<String, RefOr<DocResponse>> {
        let mut all = BadRequest::responses();
        all.extend(PayloadTooLarge::responses());
        all.extend(UnsupportedMediaType::responses());
        all.extend(Unprocessable::responses());
        all
    }
}

/// Title, version, tags, the security scheme and the shared schemas: everything in the
/// document that is not an operation.
fn base() -> OpenApi {
    let mut doc = OpenApi::new(
        InfoBuilder::new()
            .title("Marquee command API")
            .version(env!("CARGO_PKG_VERSION"))
            .description(Some(
                "The write side of Marquee. Accepted commands answer with the log position of \
                 their last fact (`position`, and the `Marquee-Position` header); refusals \
                 answer RFC 9457 `application/problem+json` with a stable `code`.",
            ))
            .build(),
        utoipa::openapi::Paths::new(),
    );
    doc.tags = Some(
        TAGS.iter()
            .map(|(name, description)| {
                utoipa::openapi::tag::TagBuilder::new()
                    .name(*name)
                    .description(Some(*description))
                    .build()
            })
            .collect(),
    );
    let components = doc
        .components
        .get_or_insert_with(utoipa::openapi::Components::new);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("access JWT or mqt_… API token")
                .description(Some(
                    "An access token from `POST /v1/auth/login` or `/v1/auth/refresh` (a JWT, \
                     valid 15 minutes), or an organization's API token (`mqt_…`).",
                ))
                .build(),
        ),
    );
    let mut schemas: Vec<(String, RefOr<utoipa::openapi::schema::Schema>)> = Vec::new();
    <Problem as ToSchema>::schemas(&mut schemas);
    schemas.push((
        "Problem".to_owned(),
        <Problem as utoipa::PartialSchema>::schema(),
    ));
    components.schemas.extend(schemas);
    doc
}

/// Every route of the command API, each registered with its documentation.
pub(crate) fn routes() -> OpenApiRouter<CommandState> {
    OpenApiRouter::with_openapi(base())
        .merge(crate::accounts::router())
        .merge(crate::organizations::router())
        .merge(crate::venues::router())
        .merge(crate::events::router())
        .merge(crate::payments::router())
        .merge(crate::waitlist::router())
        .merge(crate::check_ins::router())
        .merge(crate::webhooks::router())
        .routes(routes!(health))
        .routes(routes!(openapi_json))
        .routes(routes!(docs))
}

/// The command API's OpenAPI 3.1 document.
pub fn openapi() -> OpenApi {
    let mut doc = routes().into_openapi();
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            tidy(operation);
        }
    }
    doc
}

/// What the macros cannot say: operation ids unique across modules (handlers in different
/// modules share names such as `create`), a one-line summary (the macros take the doc
/// comment's first paragraph, line breaks included), and an optional body that may be left out
/// but is never JSON `null` (the macros write `Option<Body>` as "the body or null").
fn tidy(operation: &mut utoipa::openapi::path::Operation) {
    if let Some(summary) = operation.summary.as_mut() {
        *summary = summary.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    if let (Some(id), Some(tag)) = (
        operation.operation_id.as_mut(),
        operation.tags.as_ref().and_then(|t| t.first()),
    ) {
        *id = format!("{}.{id}", tag.replace('-', "_"));
    }
    let Some(RefOr::T(body)) = operation.request_body.as_mut() else {
        return;
    };
    if body.required != Some(utoipa::openapi::Required::True) {
        body.description
            .get_or_insert_with(|| "Optional: empty, or `{}`.".to_owned());
        for content in body.content.values_mut() {
            let RefOr::T(content) = content else { continue };
            if let Some(RefOr::T(utoipa::openapi::schema::Schema::OneOf(one_of))) = &content.schema
            {
                let body_schema = one_of
                    .items
                    .iter()
                    .find(|item| matches!(item, RefOr::Ref(_)))
                    .cloned();
                if body_schema.is_some() {
                    content.schema = body_schema;
                }
            }
        }
    }
}

/// The document as served, rendered once.
fn openapi_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        openapi()
            .to_pretty_json()
            .unwrap_or_else(|_| "{}".to_owned())
    })
}

/// Answer of `GET /health`.
#[derive(serde::Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`: the process serves requests.
    pub status: &'static str,
}

/// Whether the process serves requests. It does not check the database.
#[utoipa::path(
    get,
    path = "/health",
    tag = "meta",
    responses((status = 200, description = "The process is up.", body = Health))
)]
async fn health() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

/// This document, as OpenAPI 3.1 JSON.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI document.", content_type = "application/json", body = Object))
)]
async fn openapi_json() -> Response {
    let mut response = openapi_text().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A page that renders this document (it fetches `openapi.json` next to itself).
#[utoipa::path(
    get,
    path = "/docs",
    tag = "meta",
    responses((status = 200, description = "The API docs page.", content_type = "text/html", body = String))
)]
async fn docs() -> Html<&'static str> {
    Html(include_str!("../../../assets/api-docs.html"))
}
