//! `/v1/events`: draft, update, ticket types, publish, cancel, capacity, and reservations.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{patch, post, put};
use marquee_domain::event::{Attendee, DetailsChange, EventCommand, EventFact, VenueInfo};
use marquee_domain::venue::Venue;
use marquee_domain::{
    EventId, Money, RegistrationId, TicketCode, TicketTypeId, Timestamp, VenueId,
};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::CommandState;
use crate::engine::{Answer, EventAggregate, VenueAggregate};
use crate::error::ApiError;
use crate::extract::{JsonBody, OptionalJsonBody, RequestMeta, parse_id};
use crate::idempotency::respond;

/// The event routes.
pub fn router() -> Router<CommandState> {
    Router::new()
        .route("/v1/events", post(draft_event))
        .route("/v1/events/{event_id}", patch(update_event))
        .route("/v1/events/{event_id}/ticket-types", post(add_ticket_type))
        .route("/v1/events/{event_id}/publish", post(publish))
        .route("/v1/events/{event_id}/cancel", post(cancel))
        .route("/v1/events/{event_id}/capacity", put(change_capacity))
        .route("/v1/events/{event_id}/reservations", post(reserve))
        .route(
            "/v1/events/{event_id}/reservations/{registration_id}/cancel",
            post(cancel_registration),
        )
}

/// Loads a venue and reduces it to what the event aggregate needs; `None` if it does not exist.
async fn venue_info(
    state: &CommandState,
    venue_id: VenueId,
) -> Result<Option<VenueInfo>, ApiError> {
    let venue: Venue = state
        .engine
        .load::<VenueAggregate>(&venue_id.stream())
        .await?
        .state;
    Ok(venue.exists().then_some(VenueInfo {
        venue_id,
        capacity: venue.capacity,
    }))
}

/// Runs event commands and answers with `status` and `body` (plus the position).
async fn run_event(
    state: &CommandState,
    event_id: EventId,
    commands: Vec<EventCommand>,
    context: &crate::engine::CommandContext,
    status: StatusCode,
    body: serde_json::Value,
) -> Result<Answer, ApiError> {
    let (_, answer) = state
        .engine
        .execute::<EventAggregate>(&event_id.stream(), commands, context, move |_| Answer {
            status,
            body: body.clone(),
        })
        .await?;
    Ok(answer)
}

/// Body of `POST /v1/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DraftEventBody {
    venue_id: Uuid,
    title: String,
    #[serde(default)]
    description: String,
    category: String,
    starts_at: Timestamp,
    ends_at: Timestamp,
    /// Defaults to the venue's time zone.
    #[serde(default)]
    timezone: Option<String>,
    /// Defaults to the venue's capacity.
    #[serde(default)]
    capacity: Option<u32>,
    #[serde(default)]
    max_per_order: Option<u32>,
}

#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id))]
async fn draft_event(
    State(state): State<CommandState>,
    meta: RequestMeta,
    body: JsonBody<DraftEventBody>,
) -> Response {
    let b = body.value;
    respond(&state.clone(), &meta, &body.raw, |context| async move {
        let venue_id = VenueId(b.venue_id);
        let venue = state
            .engine
            .load::<VenueAggregate>(&venue_id.stream())
            .await?
            .state;
        let info = venue.exists().then_some(VenueInfo {
            venue_id,
            capacity: venue.capacity,
        });
        let event_id = EventId(Uuid::now_v7());
        let command = EventCommand::DraftEvent {
            event_id,
            venue: info,
            title: b.title,
            description: b.description,
            category: b.category,
            starts_at: b.starts_at,
            ends_at: b.ends_at,
            timezone: b.timezone.unwrap_or(venue.timezone),
            capacity: b.capacity,
            max_per_order: b.max_per_order,
        };
        run_event(
            &state,
            event_id,
            vec![command],
            &context,
            StatusCode::CREATED,
            json!({ "event_id": event_id, "status": "draft" }),
        )
        .await
    })
    .await
}

/// Body of `PATCH /v1/events/{id}`: any subset of the details.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateEventBody {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    starts_at: Option<Timestamp>,
    #[serde(default)]
    ends_at: Option<Timestamp>,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    max_per_order: Option<u32>,
}

#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id, event_id = %event_id))]
async fn update_event(
    State(state): State<CommandState>,
    Path(event_id): Path<String>,
    meta: RequestMeta,
    body: JsonBody<UpdateEventBody>,
) -> Response {
    let b = body.value;
    respond(&state.clone(), &meta, &body.raw, |context| async move {
        let event_id = EventId(parse_id(&event_id, "event")?);
        let change = DetailsChange {
            title: b.title,
            description: b.description,
            category: b.category,
            starts_at: b.starts_at,
            ends_at: b.ends_at,
            timezone: b.timezone,
            max_per_order: b.max_per_order,
        };
        run_event(
            &state,
            event_id,
            vec![EventCommand::UpdateDetails(change)],
            &context,
            StatusCode::OK,
            json!({ "event_id": event_id }),
        )
        .await
    })
    .await
}

/// Body of `POST /v1/events/{id}/ticket-types`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddTicketTypeBody {
    name: String,
    price: Money,
    quantity: u32,
    #[serde(default)]
    sales_start: Option<Timestamp>,
    #[serde(default)]
    sales_end: Option<Timestamp>,
}

#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id, event_id = %event_id))]
async fn add_ticket_type(
    State(state): State<CommandState>,
    Path(event_id): Path<String>,
    meta: RequestMeta,
    body: JsonBody<AddTicketTypeBody>,
) -> Response {
    let b = body.value;
    respond(&state.clone(), &meta, &body.raw, |context| async move {
        let event_id = EventId(parse_id(&event_id, "event")?);
        let ticket_type_id = TicketTypeId(Uuid::now_v7());
        let command = EventCommand::AddTicketType {
            ticket_type_id,
            name: b.name,
            price: b.price,
            quantity: b.quantity,
            sales_start: b.sales_start,
            sales_end: b.sales_end,
        };
        run_event(
            &state,
            event_id,
            vec![command],
            &context,
            StatusCode::CREATED,
            json!({ "event_id": event_id, "ticket_type_id": ticket_type_id }),
        )
        .await
    })
    .await
}

/// Body of `POST /v1/events/{id}/publish`: empty or `{}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishBody {}

#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id, event_id = %event_id))]
async fn publish(
    State(state): State<CommandState>,
    Path(event_id): Path<String>,
    meta: RequestMeta,
    body: OptionalJsonBody<PublishBody>,
) -> Response {
    respond(&state.clone(), &meta, &body.raw, |context| async move {
        let event_id = EventId(parse_id(&event_id, "event")?);
        run_event(
            &state,
            event_id,
            vec![EventCommand::Publish],
            &context,
            StatusCode::OK,
            json!({ "event_id": event_id, "status": "published" }),
        )
        .await
    })
    .await
}

/// Body of `POST /v1/events/{id}/cancel`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    #[serde(default)]
    reason: Option<String>,
}

#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id, event_id = %event_id))]
async fn cancel(
    State(state): State<CommandState>,
    Path(event_id): Path<String>,
    meta: RequestMeta,
    body: OptionalJsonBody<CancelBody>,
) -> Response {
    let reason = body.value.reason;
    respond(&state.clone(), &meta, &body.raw, |context| async move {
        let event_id = EventId(parse_id(&event_id, "event")?);
        run_event(
            &state,
            event_id,
            vec![EventCommand::Cancel { reason }],
            &context,
            StatusCode::OK,
            json!({ "event_id": event_id, "status": "cancelled" }),
        )
        .await
    })
    .await
}

/// Body of `PUT /v1/events/{id}/capacity`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CapacityBody {
    capacity: u32,
}

#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id, event_id = %event_id))]
async fn change_capacity(
    State(state): State<CommandState>,
    Path(event_id): Path<String>,
    meta: RequestMeta,
    body: JsonBody<CapacityBody>,
) -> Response {
    let capacity = body.value.capacity;
    respond(&state.clone(), &meta, &body.raw, |context| async move {
        let event_id = EventId(parse_id(&event_id, "event")?);
        let event = state
            .engine
            .load::<EventAggregate>(&event_id.stream())
            .await?
            .state;
        let venue_id = event.venue_id.ok_or(ApiError::NotFound("event"))?;
        // A venue that vanished cannot happen (venues are never deleted); treat it as corrupt
        // data rather than inventing a capacity.
        let venue = venue_info(&state, venue_id)
            .await?
            .ok_or(ApiError::NotFound("venue"))?;
        run_event(
            &state,
            event_id,
            vec![EventCommand::ChangeCapacity { capacity, venue }],
            &context,
            StatusCode::OK,
            json!({ "event_id": event_id, "capacity": capacity }),
        )
        .await
    })
    .await
}

/// Body of `POST /v1/events/{id}/reservations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReserveBody {
    ticket_type_id: Uuid,
    quantity: u32,
    attendee: AttendeeBody,
}

/// The attendee inside a reservation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AttendeeBody {
    name: String,
    email: String,
}

/// A fresh ticket code: 128 random bits from the OS-seeded CSPRNG, as 32 hex characters.
fn new_ticket_code() -> TicketCode {
    TicketCode(format!("{:032x}", rand::random::<u128>()))
}

#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id, event_id = %event_id))]
async fn reserve(
    State(state): State<CommandState>,
    Path(event_id): Path<String>,
    meta: RequestMeta,
    body: JsonBody<ReserveBody>,
) -> Response {
    let b = body.value;
    respond(&state.clone(), &meta, &body.raw, |context| async move {
        let event_id = EventId(parse_id(&event_id, "event")?);
        let registration_id = RegistrationId(Uuid::now_v7());
        let ticket_type_id = TicketTypeId(b.ticket_type_id);
        // Codes are only minted for a quantity the domain could accept; a larger one is refused
        // by the per-order maximum before the codes matter.
        let codes: Vec<TicketCode> = if b.quantity <= marquee_domain::event::MAX_PER_ORDER_LIMIT {
            (0..b.quantity).map(|_| new_ticket_code()).collect()
        } else {
            Vec::new()
        };
        let command = EventCommand::Reserve {
            registration_id,
            ticket_type_id,
            attendee: Attendee {
                name: b.attendee.name,
                email: b.attendee.email,
            },
            quantity: b.quantity,
            ticket_codes: codes.clone(),
            answers: Default::default(),
        };
        let (_, answer) = state
            .engine
            .execute::<EventAggregate>(&event_id.stream(), vec![command], &context, move |facts| {
                let confirmed = facts
                    .iter()
                    .any(|f| matches!(f, EventFact::RegistrationConfirmed { .. }));
                Answer {
                    status: StatusCode::CREATED,
                    body: json!({
                        "registration_id": registration_id,
                        "event_id": event_id,
                        "ticket_type_id": ticket_type_id,
                        "quantity": b.quantity,
                        "status": if confirmed { "confirmed" } else { "pending" },
                        "ticket_codes": codes,
                    }),
                }
            })
            .await?;
        Ok(answer)
    })
    .await
}

#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id, event_id = %event_id))]
async fn cancel_registration(
    State(state): State<CommandState>,
    Path((event_id, registration_id)): Path<(String, String)>,
    meta: RequestMeta,
    body: OptionalJsonBody<PublishBody>,
) -> Response {
    respond(&state.clone(), &meta, &body.raw, |context| async move {
        let event_id = EventId(parse_id(&event_id, "event")?);
        let registration_id = RegistrationId(parse_id(&registration_id, "registration")?);
        run_event(
            &state,
            event_id,
            vec![EventCommand::CancelRegistration { registration_id }],
            &context,
            StatusCode::OK,
            json!({ "registration_id": registration_id, "event_id": event_id, "status": "cancelled" }),
        )
        .await
    })
    .await
}
