//! The query API's OpenAPI 3.1 document (`GET /openapi.json`) and the page that renders it
//! (`GET /docs`).
//!
//! Every route is registered through utoipa-axum's `OpenApiRouter` with `routes!`, so a route
//! and its documentation come from the same `#[utoipa::path]` item and cannot drift apart (the
//! `openapi` integration test checks both directions). What every operation shares — the
//! read-your-writes header, the `Marquee-Position` answer header, the 400, 500 and 503 problems
//! the middleware and the error type can answer — is added once, in [`finish`].

use std::sync::LazyLock;

use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{Schema, SchemaType};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, ObjectBuilder, Ref, RefOr, Required, ResponseBuilder, Type,
};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::Problem;
use crate::{ApiError, QueryState};

/// The name of the bearer security scheme.
const BEARER: &str = "bearer";
/// The media type of every error answer.
pub(crate) const PROBLEM: &str = "application/problem+json";

/// The API docs page: a self-contained page that fetches `openapi.json` and renders it.
const DOCS_PAGE: &str = include_str!("../../../assets/api-docs.html");

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Marquee query API",
        description = "The read side of Marquee: published events, their seats and prices, \
            guest lists, analytics, an account's tickets, and the log itself for audits.\n\n\
            Every answer names the log position its read models had applied in \
            `Marquee-Position`; send `Marquee-Min-Position` to read your own writes. Errors \
            are RFC 9457 problems (`application/problem+json`) with a stable `code`.",
    ),
    components(schemas(Problem)),
    modifiers(&BearerScheme),
    tags(
        (name = "events",
            description = "Published and cancelled events: the listing, one event, its seats."),
        (name = "organizers",
            description = "An event's guest list and analytics, for its organization's members."),
        (name = "account", description = "What the signed-in account holds."),
        (name = "audit",
            description = "Straight from the log: a stream's history, the log, the log live."),
        (name = "service", description = "Health, projection progress, and this document."),
    )
)]
struct ApiDoc;

/// The `bearer` scheme: an access JWT from `POST /v1/auth/login` on the command API, or an
/// organization's API token (`mqt_…`).
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An access token (JWT) from the command API's `POST /v1/auth/login`, \
                         or an organization's API token (`mqt_…`).",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document every route is added to: title, tags, the `Problem` schema, security.
pub(crate) fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `/openapi.json` and `/docs`.
pub(crate) fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .routes(routes!(openapi_json))
        .routes(routes!(docs))
}

/// Completes the collected document: version, and what every operation shares.
pub(crate) fn finish(openapi: &mut utoipa::openapi::OpenApi) {
    openapi.info.version = env!("CARGO_PKG_VERSION").to_owned();
    for item in openapi.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ]
        .into_iter()
        .flatten()
        {
            shared(operation);
        }
    }
}

/// Adds the read-your-writes header, the `Marquee-Position` header on every answer, and the
/// problems any request can meet (unless the operation describes them itself).
fn shared(operation: &mut Operation) {
    let parameters = operation.parameters.get_or_insert_with(Vec::new);
    for parameter in parameters.iter_mut() {
        if let RefOr::T(parameter) = parameter {
            not_null(parameter);
        }
    }
    parameters.push(min_position_parameter());
    let problems = [
        (
            "400",
            "A parameter or header is malformed, unknown, repeated or out of range \
             (`validation_failed`, naming it in `field`); this includes `Marquee-Min-Position`.",
        ),
        (
            "500",
            "The server failed (`internal`); the cause is logged, not shown.",
        ),
        (
            "503",
            "The read models did not reach `Marquee-Min-Position` in time \
             (`position_not_reached`, with `requested_position` and `applied_position`); \
             `Retry-After: 1`.",
        ),
    ];
    for (status, description) in problems {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::T(problem_response(description)));
    }
    if let Some(RefOr::T(unavailable)) = operation.responses.responses.get_mut("503") {
        unavailable.headers.insert(
            "Retry-After".to_owned(),
            RefOr::T(
                HeaderBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(Type::Integer)))
                    .description(Some("Seconds to wait before asking again."))
                    .build(),
            ),
        );
    }
    for response in operation.responses.responses.values_mut() {
        if let RefOr::T(response) = response {
            response.headers.insert(
                "Marquee-Position".to_owned(),
                RefOr::T(
                    HeaderBuilder::new()
                        .schema(Some(
                            ObjectBuilder::new()
                                .schema_type(Type::Integer)
                                .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                                    utoipa::openapi::KnownFormat::Int64,
                                )))
                                .minimum(Some(0)),
                        ))
                        .description(Some(
                            "The log position the read models had applied when the request \
                             was served: the answer reflects at least this position (absent \
                             only when the read models could not be asked).",
                        ))
                        .build(),
                ),
            );
        }
    }
}

/// An optional parameter is absent or has a value, never `null`: utoipa reads `Option<T>` as a
/// nullable header, which no request can send.
fn not_null(parameter: &mut Parameter) {
    if let Some(RefOr::T(Schema::Object(schema))) = parameter.schema.as_mut()
        && let SchemaType::Array(types) = &schema.schema_type
    {
        let mut types: Vec<Type> = types
            .iter()
            .filter(|t| **t != Type::Null)
            .cloned()
            .collect();
        if types.len() == 1 {
            schema.schema_type = SchemaType::Type(types.remove(0));
        }
    }
}

/// `Marquee-Min-Position`, accepted by every route.
fn min_position_parameter() -> RefOr<Parameter> {
    RefOr::T(
        ParameterBuilder::new()
            .name("Marquee-Min-Position")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Read your writes: wait (at most the configured timeout, 2 s by default) until \
                 the read models have applied this log position — the `position` a command \
                 answered with — before answering; 503 if they do not in time.",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                        utoipa::openapi::KnownFormat::Int64,
                    )))
                    .minimum(Some(0)),
            ))
            .build(),
    )
}

/// A problem+json answer described by `description`.
fn problem_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(Problem::name())))
                .build(),
        )
        .build()
}

/// The document, serialized once.
static DOCUMENT: LazyLock<Result<Bytes, String>> = LazyLock::new(|| {
    serde_json::to_vec(&crate::openapi())
        .map(Bytes::from)
        .map_err(|e| e.to_string())
});

/// This API's OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "service",
    responses((status = 200, description = "The OpenAPI 3.1 document.", body = Object)),
)]
async fn openapi_json() -> Result<Response, ApiError> {
    let body = DOCUMENT.clone().map_err(ApiError::Internal)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// The API's documentation as a web page.
///
/// A self-contained page (no external scripts, styles or fonts) that fetches `openapi.json` and
/// renders every operation, grouped by tag.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "service",
    responses((status = 200, description = "The documentation page.", body = String,
        content_type = "text/html")),
)]
async fn docs() -> Html<&'static str> {
    Html(DOCS_PAGE)
}

/// Names of the read models' states, for the schemas (the handlers write them as text).
pub(crate) mod names {
    #![allow(
        dead_code,
        reason = "these enums only describe strings the projector names; they are never built"
    )]

    use utoipa::ToSchema;

    /// An event's status.
    #[derive(ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub(crate) enum EventStatus {
        Draft,
        Published,
        Cancelled,
    }

    /// A registration's status: `held` (paid seats waiting for payment), `confirmed`,
    /// `cancelled`, `expired` (the hold ran out).
    #[derive(ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub(crate) enum RegistrationStatus {
        Held,
        Confirmed,
        Cancelled,
        Expired,
    }

    /// A payment's status: `pending`, `declined`, `paid` (money received), `refund_due`,
    /// `refunded`.
    #[derive(ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub(crate) enum PaymentStatus {
        Pending,
        Declined,
        Paid,
        RefundDue,
        Refunded,
    }

    /// The listing's orders: `starts_at` (earliest first, the default), `-starts_at` (latest
    /// first), `title` (A to Z, ignoring case), `price` (cheapest ticket type first, events
    /// without ticket types last).
    #[derive(ToSchema)]
    pub(crate) enum ListingSort {
        #[schema(rename = "starts_at")]
        StartsAt,
        #[schema(rename = "-starts_at")]
        StartsAtDesc,
        #[schema(rename = "title")]
        Title,
        #[schema(rename = "price")]
        Price,
    }

    /// How a list comes: `json` (pages) or `csv`.
    #[derive(ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub(crate) enum Format {
        Json,
        Csv,
    }
}
