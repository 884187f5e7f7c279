//! `/v1/events`: draft, update, ticket types, publish, cancel, capacity, and reservations.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use marquee_domain::event::{
    Answers, Attendee, DetailsChange, Event, EventCommand, EventError, EventFact, PolicyChange,
    Question, RegistrationStatus, VenueInfo,
};
use marquee_domain::venue::{Venue, VenueCommand};
use marquee_domain::{EventId, Money, RegistrationId, TicketCode, TicketTypeId, VenueId};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::CommandState;
use crate::access::{Caller, ORGANIZERS, Visitor, authorize};
use crate::engine::{Answer, EventAggregate, Scheduling, VenueAggregate};
use crate::error::ApiError;
use crate::extract::{JsonBody, OptionalJsonBody, RequestMeta, parse_id};
use crate::idempotency::respond;
use crate::openapi::schemas::{
    Answers as AnswersSchema, Money as MoneySchema, Question as QuestionSchema,
    RegistrationStatus as RegistrationStatusSchema,
};
use crate::openapi::{BodyErrors, CallerErrors, Conflict, Forbidden, IdempotencyKey, NotFound};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The event routes.
pub fn router() -> OpenApiRouter<CommandState> {
    OpenApiRouter::new()
        .routes(routes!(draft_event))
        .routes(routes!(update_event))
        .routes(routes!(add_ticket_type))
        .routes(routes!(publish))
        .routes(routes!(cancel))
        .routes(routes!(change_capacity))
        .routes(routes!(reschedule))
        .routes(routes!(set_questions))
        .routes(routes!(reserve))
        .routes(routes!(cancel_registration))
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
        .execute::<EventAggregate>(&event_id.stream(), commands, context, move |_, _| Answer {
            status,
            body: body.clone(),
        })
        .await?;
    Ok(answer)
}

/// Body of `POST /v1/events`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DraftEventBody {
    /// A venue of the caller's organization.
    venue_id: Uuid,
    #[schema(min_length = 1, max_length = 200)]
    title: String,
    #[serde(default)]
    #[schema(max_length = 10000)]
    description: String,
    #[schema(min_length = 1, max_length = 200)]
    category: String,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    /// IANA time zone; defaults to the venue's.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    timezone: Option<String>,
    /// Defaults to the venue's capacity; at most the venue's.
    #[serde(default)]
    #[schema(minimum = 1)]
    capacity: Option<u32>,
    /// Most seats in one reservation (default 10).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    max_per_order: Option<u32>,
    #[serde(flatten)]
    policy: PolicyBody,
    /// Registration questions (at most 50).
    #[serde(default)]
    #[schema(value_type = Option<Vec<QuestionSchema>>, max_items = 50)]
    questions: Option<Vec<Question>>,
}

/// The event policy fields a draft or a PATCH may carry.
#[derive(Debug, Default, Deserialize, ToSchema)]
struct PolicyBody {
    /// Seconds a paid reservation's seats are held for payment (default 900).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 604800)]
    hold_seconds: Option<u32>,
    /// Seconds a waitlist offer stays open (default 86400).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 604800)]
    offer_seconds: Option<u32>,
    /// Attendees may cancel until then (default: the event's start).
    #[serde(default)]
    cancellation_deadline: Option<DateTime<Utc>>,
    /// Most seats per attendee (e-mail address); 0 removes the limit.
    #[serde(default)]
    max_per_attendee: Option<u32>,
    /// Reminders before the start, in seconds before it (default `[86400, 3600]`); `[]` turns
    /// them off.
    #[serde(default)]
    #[schema(max_items = 5, inline)]
    reminder_offsets_seconds: Option<Vec<u32>>,
}

impl PolicyBody {
    /// The `ChangePolicy` command, if any field is set.
    fn command(&self) -> Option<EventCommand> {
        let change = PolicyChange {
            hold_seconds: self.hold_seconds,
            offer_seconds: self.offer_seconds,
            cancellation_deadline: self.cancellation_deadline,
            max_per_attendee: self.max_per_attendee,
            reminder_offsets_seconds: self.reminder_offsets_seconds.clone(),
        };
        (change != PolicyChange::default()).then_some(EventCommand::ChangePolicy(change))
    }
}

/// Drafts an event at a venue of the caller's organization.
///
/// The event starts as a draft, books its slot in the venue's calendar (`409 schedule_conflict` when
/// the venue is taken then) and belongs to the venue's organization. Owners and organizers only.
#[utoipa::path(
    post,
    path = "/v1/events",
    tag = "events",
    params(IdempotencyKey),
    request_body = DraftEventBody,
    responses((status = 201, description = "The event was drafted.", body = EventDrafted), BodyErrors, CallerErrors, Forbidden, NotFound, Conflict),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id))]
async fn draft_event(
    State(state): State<CommandState>,
    caller: Caller,
    meta: RequestMeta,
    body: JsonBody<DraftEventBody>,
) -> Response {
    let b = body.value;
    respond(
        &state.clone(),
        &caller.clone(),
        &meta,
        &body.raw,
        |mut context| async move {
            caller.authenticated()?;
            let venue_id = VenueId(b.venue_id);
            // The event belongs to its venue's organization; an unknown venue (or one of another
            // organization) is the event's own `venue_id` validation error.
            let organization_id = match state.auth.directory.owner(&venue_id.stream()).await? {
                Some(owner) => {
                    let roles = state.auth.directory.roles(&caller.principal, owner).await?;
                    if roles.is_empty() {
                        return Err(ApiError::Event(EventError::VenueNotFound));
                    }
                    if !roles.iter().any(|r| ORGANIZERS.contains(r)) {
                        return Err(ApiError::Forbidden(
                            "only owners and organizers draft events",
                        ));
                    }
                    owner
                }
                None => {
                    caller.authenticated()?;
                    return Err(ApiError::Event(EventError::VenueNotFound));
                }
            };
            context.organization = Some(organization_id.to_string());
            let event_id = EventId(Uuid::now_v7());
            let (_, answer) = state
                .engine
                .execute_scheduled(
                    &event_id.stream(),
                    |_| Ok(Some(venue_id)),
                    |_, venue| {
                        let info = venue.exists().then_some(VenueInfo {
                            venue_id,
                            capacity: venue.capacity,
                        });
                        let mut event = vec![EventCommand::DraftEvent {
                            event_id,
                            venue: info,
                            title: b.title.clone(),
                            description: b.description.clone(),
                            category: b.category.clone(),
                            starts_at: b.starts_at,
                            ends_at: b.ends_at,
                            timezone: b.timezone.clone().unwrap_or_else(|| venue.timezone.clone()),
                            capacity: b.capacity,
                            max_per_order: b.max_per_order,
                        }];
                        event.extend(b.policy.command());
                        if let Some(questions) = &b.questions {
                            event.push(EventCommand::SetQuestions {
                                questions: questions.clone(),
                            });
                        }
                        Ok(Scheduling {
                            venue_id: Some(venue_id),
                            venue: vec![VenueCommand::BookEvent {
                                event_id,
                                starts_at: b.starts_at,
                                ends_at: b.ends_at,
                            }],
                            event,
                        })
                    },
                    &context,
                    move |_, _| Answer {
                        status: StatusCode::CREATED,
                        body: json!({ "event_id": event_id, "status": "draft" }),
                    },
                )
                .await?;
            Ok(answer)
        },
    )
    .await
}

/// Body of `PATCH /v1/events/{id}`: any subset of the details.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateEventBody {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    title: Option<String>,
    #[serde(default)]
    #[schema(max_length = 10000)]
    description: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    category: Option<String>,
    #[serde(default)]
    starts_at: Option<DateTime<Utc>>,
    #[serde(default)]
    ends_at: Option<DateTime<Utc>>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    timezone: Option<String>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    max_per_order: Option<u32>,
    #[serde(flatten)]
    policy: PolicyBody,
}

/// Changes an event's details and policy.
///
/// Any subset of the fields; new times move the event's slot in its venue's calendar.
#[utoipa::path(
    patch,
    path = "/v1/events/{event_id}",
    tag = "events",
    params(("event_id" = Uuid, Path, description = "The event."), IdempotencyKey),
    request_body = UpdateEventBody,
    responses((status = 200, description = "The details were changed.", body = EventUpdated), BodyErrors, CallerErrors, Forbidden, NotFound, Conflict),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id, event_id = %event_id))]
async fn update_event(
    State(state): State<CommandState>,
    caller: Caller,
    Path(event_id): Path<String>,
    meta: RequestMeta,
    body: JsonBody<UpdateEventBody>,
) -> Response {
    let b = body.value;
    respond(
        &state.clone(),
        &caller.clone(),
        &meta,
        &body.raw,
        |mut context| async move {
            let event_id = EventId(parse_id(&event_id, "event")?);
            let organization_id =
                authorize(&state, &caller, &event_id.stream(), "event", ORGANIZERS).await?;
            context.organization = Some(organization_id.to_string());
            let moves = b.starts_at.is_some() || b.ends_at.is_some();
            let change = DetailsChange {
                title: b.title,
                description: b.description,
                category: b.category,
                starts_at: b.starts_at,
                ends_at: b.ends_at,
                timezone: b.timezone,
                max_per_order: b.max_per_order,
            };
            let mut commands = vec![EventCommand::UpdateDetails(change)];
            commands.extend(b.policy.command());
            let answer = move |_: &[EventFact], _: &Event| Answer {
                status: StatusCode::OK,
                body: json!({ "event_id": event_id }),
            };
            if !moves {
                let (_, answer) = state
                    .engine
                    .execute::<EventAggregate>(&event_id.stream(), commands, &context, answer)
                    .await?;
                return Ok(answer);
            }
            // New times move the event's slot in its venue's calendar, in the same transaction.
            let (_, answer) = state
                .engine
                .execute_scheduled(
                    &event_id.stream(),
                    |event| Ok(event.venue_id),
                    |event, _| {
                        let starts_at = b.starts_at.or(event.starts_at);
                        let ends_at = b.ends_at.or(event.ends_at);
                        Ok(Scheduling {
                            venue_id: event.venue_id,
                            venue: slot(event, starts_at, ends_at),
                            event: commands.clone(),
                        })
                    },
                    &context,
                    answer,
                )
                .await?;
            Ok(answer)
        },
    )
    .await
}

/// The venue command that books `event`'s new slot, if the event exists and the times are
/// known and in order (the event's own decision reports anything else).
fn slot(
    event: &Event,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
) -> Vec<VenueCommand> {
    match (event.id, starts_at, ends_at) {
        (Some(event_id), Some(starts_at), Some(ends_at)) if starts_at < ends_at => {
            vec![VenueCommand::BookEvent {
                event_id,
                starts_at,
                ends_at,
            }]
        }
        _ => Vec::new(),
    }
}

/// Body of `POST /v1/events/{id}/reschedule`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RescheduleBody {
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
}

/// Moves an event to new times, and its slot in the venue's calendar with it.
#[utoipa::path(
    post,
    path = "/v1/events/{event_id}/reschedule",
    tag = "events",
    params(("event_id" = Uuid, Path, description = "The event."), IdempotencyKey),
    request_body = RescheduleBody,
    responses((status = 200, description = "The event was moved.", body = EventRescheduled), BodyErrors, CallerErrors, Forbidden, NotFound, Conflict),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id, event_id = %event_id))]
async fn reschedule(
    State(state): State<CommandState>,
    caller: Caller,
    Path(event_id): Path<String>,
    meta: RequestMeta,
    body: JsonBody<RescheduleBody>,
) -> Response {
    let b = body.value;
    respond(
        &state.clone(),
        &caller.clone(),
        &meta,
        &body.raw,
        |mut context| async move {
            let event_id = EventId(parse_id(&event_id, "event")?);
            let organization_id =
                authorize(&state, &caller, &event_id.stream(), "event", ORGANIZERS).await?;
            context.organization = Some(organization_id.to_string());
            let (_, answer) = state
                .engine
                .execute_scheduled(
                    &event_id.stream(),
                    |event| Ok(event.venue_id),
                    |event, _| {
                        Ok(Scheduling {
                            venue_id: event.venue_id,
                            venue: slot(event, Some(b.starts_at), Some(b.ends_at)),
                            event: vec![EventCommand::Reschedule {
                                starts_at: b.starts_at,
                                ends_at: b.ends_at,
                            }],
                        })
                    },
                    &context,
                    move |_, _| Answer {
                        status: StatusCode::OK,
                        body: json!({
                            "event_id": event_id,
                            "starts_at": b.starts_at,
                            "ends_at": b.ends_at,
                        }),
                    },
                )
                .await?;
            Ok(answer)
        },
    )
    .await
}

/// Body of `PUT /v1/events/{id}/questions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct QuestionsBody {
    #[schema(value_type = Vec<QuestionSchema>, max_items = 50)]
    questions: Vec<Question>,
}

/// Replaces the questions an event asks at registration.
#[utoipa::path(
    put,
    path = "/v1/events/{event_id}/questions",
    tag = "events",
    params(("event_id" = Uuid, Path, description = "The event."), IdempotencyKey),
    request_body = QuestionsBody,
    responses((status = 200, description = "The questions now asked.", body = QuestionsSet), BodyErrors, CallerErrors, Forbidden, NotFound, Conflict),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id, event_id = %event_id))]
async fn set_questions(
    State(state): State<CommandState>,
    caller: Caller,
    Path(event_id): Path<String>,
    meta: RequestMeta,
    body: JsonBody<QuestionsBody>,
) -> Response {
    let questions = body.value.questions;
    respond(
        &state.clone(),
        &caller.clone(),
        &meta,
        &body.raw,
        |mut context| async move {
            let event_id = EventId(parse_id(&event_id, "event")?);
            let organization_id =
                authorize(&state, &caller, &event_id.stream(), "event", ORGANIZERS).await?;
            context.organization = Some(organization_id.to_string());
            let (_, answer) = state
                .engine
                .execute::<EventAggregate>(
                    &event_id.stream(),
                    vec![EventCommand::SetQuestions { questions }],
                    &context,
                    move |_, event| Answer {
                        status: StatusCode::OK,
                        body: json!({ "event_id": event_id, "questions": event.questions }),
                    },
                )
                .await?;
            Ok(answer)
        },
    )
    .await
}

/// Body of `POST /v1/events/{id}/ticket-types`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AddTicketTypeBody {
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// Zero for a free ticket type.
    #[schema(value_type = MoneySchema)]
    price: Money,
    /// Seats of this type.
    #[schema(minimum = 1)]
    quantity: u32,
    #[serde(default)]
    sales_start: Option<DateTime<Utc>>,
    #[serde(default)]
    sales_end: Option<DateTime<Utc>>,
}

/// Adds a ticket type (name, price, quantity, sales window) to an event.
#[utoipa::path(
    post,
    path = "/v1/events/{event_id}/ticket-types",
    tag = "events",
    params(("event_id" = Uuid, Path, description = "The event."), IdempotencyKey),
    request_body = AddTicketTypeBody,
    responses((status = 201, description = "The ticket type was added.", body = TicketTypeAdded), BodyErrors, CallerErrors, Forbidden, NotFound, Conflict),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id, event_id = %event_id))]
async fn add_ticket_type(
    State(state): State<CommandState>,
    caller: Caller,
    Path(event_id): Path<String>,
    meta: RequestMeta,
    body: JsonBody<AddTicketTypeBody>,
) -> Response {
    let b = body.value;
    respond(
        &state.clone(),
        &caller.clone(),
        &meta,
        &body.raw,
        |mut context| async move {
            let event_id = EventId(parse_id(&event_id, "event")?);
            let organization_id =
                authorize(&state, &caller, &event_id.stream(), "event", ORGANIZERS).await?;
            context.organization = Some(organization_id.to_string());
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
        },
    )
    .await
}

/// Body of `POST /v1/events/{id}/publish`: empty or `{}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PublishBody {}

/// Publishes a draft event: it shows in listings and takes reservations.
#[utoipa::path(
    post,
    path = "/v1/events/{event_id}/publish",
    tag = "events",
    params(("event_id" = Uuid, Path, description = "The event."), IdempotencyKey),
    request_body = Option<PublishBody>,
    responses((status = 200, description = "The event is published.", body = EventPublished), BodyErrors, CallerErrors, Forbidden, NotFound, Conflict),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id, event_id = %event_id))]
async fn publish(
    State(state): State<CommandState>,
    caller: Caller,
    Path(event_id): Path<String>,
    meta: RequestMeta,
    body: OptionalJsonBody<PublishBody>,
) -> Response {
    respond(
        &state.clone(),
        &caller.clone(),
        &meta,
        &body.raw,
        |mut context| async move {
            let event_id = EventId(parse_id(&event_id, "event")?);
            let organization_id =
                authorize(&state, &caller, &event_id.stream(), "event", ORGANIZERS).await?;
            context.organization = Some(organization_id.to_string());
            run_event(
                &state,
                event_id,
                vec![EventCommand::Publish],
                &context,
                StatusCode::OK,
                json!({ "event_id": event_id, "status": "published" }),
            )
            .await
        },
    )
    .await
}

/// Body of `POST /v1/events/{id}/cancel`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    /// Told to the attendees.
    #[serde(default)]
    #[schema(max_length = 1000)]
    reason: Option<String>,
}

/// Cancels an event: every registration is cancelled, paid ones are due a refund, and the
/// venue's slot is freed.
#[utoipa::path(
    post,
    path = "/v1/events/{event_id}/cancel",
    tag = "events",
    params(("event_id" = Uuid, Path, description = "The event."), IdempotencyKey),
    request_body = Option<CancelBody>,
    responses((status = 200, description = "The event is cancelled.", body = EventCancelled), BodyErrors, CallerErrors, Forbidden, NotFound, Conflict),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id, event_id = %event_id))]
async fn cancel(
    State(state): State<CommandState>,
    caller: Caller,
    Path(event_id): Path<String>,
    meta: RequestMeta,
    body: OptionalJsonBody<CancelBody>,
) -> Response {
    let reason = body.value.reason;
    respond(
        &state.clone(),
        &caller.clone(),
        &meta,
        &body.raw,
        |mut context| async move {
            let event_id = EventId(parse_id(&event_id, "event")?);
            let organization_id =
                authorize(&state, &caller, &event_id.stream(), "event", ORGANIZERS).await?;
            context.organization = Some(organization_id.to_string());
            // Cancelling frees the event's slot in its venue's calendar, in the same transaction.
            let (_, answer) = state
                .engine
                .execute_scheduled(
                    &event_id.stream(),
                    |event| Ok(event.venue_id),
                    |event, _| {
                        Ok(Scheduling {
                            venue_id: event.venue_id,
                            venue: event
                                .id
                                .map(|event_id| VenueCommand::ReleaseEvent { event_id })
                                .into_iter()
                                .collect(),
                            event: vec![EventCommand::Cancel {
                                reason: reason.clone(),
                            }],
                        })
                    },
                    &context,
                    move |facts, _| {
                        let cancelled = facts
                            .iter()
                            .filter(|f| matches!(f, EventFact::RegistrationCancelled { .. }))
                            .count();
                        let refunds = facts
                            .iter()
                            .filter(|f| matches!(f, EventFact::RefundDue { .. }))
                            .count();
                        Answer {
                            status: StatusCode::OK,
                            body: json!({
                                "event_id": event_id,
                                "status": "cancelled",
                                "registrations_cancelled": cancelled,
                                "refunds_due": refunds,
                            }),
                        }
                    },
                )
                .await?;
            Ok(answer)
        },
    )
    .await
}

/// Body of `PUT /v1/events/{id}/capacity`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CapacityBody {
    #[schema(minimum = 1)]
    capacity: u32,
}

/// Changes an event's capacity: at most the venue's, at least the seats sold.
#[utoipa::path(
    put,
    path = "/v1/events/{event_id}/capacity",
    tag = "events",
    params(("event_id" = Uuid, Path, description = "The event."), IdempotencyKey),
    request_body = CapacityBody,
    responses((status = 200, description = "The capacity was changed.", body = CapacityChanged), BodyErrors, CallerErrors, Forbidden, NotFound, Conflict),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id, event_id = %event_id))]
async fn change_capacity(
    State(state): State<CommandState>,
    caller: Caller,
    Path(event_id): Path<String>,
    meta: RequestMeta,
    body: JsonBody<CapacityBody>,
) -> Response {
    let capacity = body.value.capacity;
    respond(
        &state.clone(),
        &caller.clone(),
        &meta,
        &body.raw,
        |mut context| async move {
            let event_id = EventId(parse_id(&event_id, "event")?);
            let organization_id =
                authorize(&state, &caller, &event_id.stream(), "event", ORGANIZERS).await?;
            context.organization = Some(organization_id.to_string());
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
        },
    )
    .await
}

/// Body of `POST /v1/events/{id}/reservations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReserveBody {
    ticket_type_id: Uuid,
    /// Seats; at most the event's `max_per_order`.
    #[schema(minimum = 1, maximum = 100)]
    quantity: u32,
    attendee: AttendeeBody,
    /// Answers to the event's registration questions, by question id.
    #[serde(default)]
    #[schema(value_type = Option<AnswersSchema>)]
    answers: Answers,
}

/// The attendee inside a reservation or a waitlist entry.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AttendeeBody {
    /// Full name as printed on the ticket.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// Where tickets and notices go.
    #[schema(max_length = 254)]
    email: String,
}

impl From<AttendeeBody> for Attendee {
    fn from(body: AttendeeBody) -> Self {
        Attendee {
            name: body.name,
            email: body.email,
        }
    }
}

/// A fresh ticket code: 128 random bits from the OS-seeded CSPRNG, as 32 hex characters.
pub(crate) fn new_ticket_code() -> TicketCode {
    TicketCode(format!("{:032x}", rand::random::<u128>()))
}

/// Reserves seats of a ticket type for an attendee.
///
/// Free tickets are confirmed at once with their codes; paid ones are held until the hold
/// expires, waiting for `…/pay`. Any signed-in account (which then holds the registration) or an
/// organizer's API token; `409 sold_out`, `sales_not_open`, `event_not_on_sale` and the like when
/// the event's rules say no.
#[utoipa::path(
    post,
    path = "/v1/events/{event_id}/reservations",
    tag = "registrations",
    params(("event_id" = Uuid, Path, description = "The event."), IdempotencyKey),
    request_body = ReserveBody,
    responses((status = 201, description = "The registration: confirmed, or held for payment.", body = Registration), BodyErrors, CallerErrors, Forbidden, NotFound, Conflict),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id, event_id = %event_id))]
async fn reserve(
    State(state): State<CommandState>,
    caller: Caller,
    Path(event_id): Path<String>,
    meta: RequestMeta,
    body: JsonBody<ReserveBody>,
) -> Response {
    let b = body.value;
    respond(
        &state.clone(),
        &caller.clone(),
        &meta,
        &body.raw,
        |mut context| async move {
            let event_id = EventId(parse_id(&event_id, "event")?);
            let visitor = Visitor::of(&state, &caller, &event_id).await?;
            context.organization = Some(visitor.organization_id.to_string());
            let registration_id = RegistrationId(Uuid::now_v7());
            let ticket_type_id = TicketTypeId(b.ticket_type_id);
            // Codes are only minted for a quantity the domain could accept; a larger one is refused
            // by the per-order maximum before the codes matter.
            let codes: Vec<TicketCode> = if b.quantity <= marquee_domain::event::MAX_PER_ORDER_LIMIT
            {
                (0..b.quantity).map(|_| new_ticket_code()).collect()
            } else {
                Vec::new()
            };
            let mut commands = vec![EventCommand::Reserve {
                registration_id,
                ticket_type_id,
                attendee: b.attendee.into(),
                quantity: b.quantity,
                ticket_codes: codes,
                answers: b.answers,
            }];
            // The signed-in account that reserves holds the registration: it may pay for it and
            // cancel it (see `Visitor::holder_guard`).
            commands.extend(
                visitor
                    .user
                    .map(|holder| EventCommand::RecordRegistrationHolder {
                        registration_id,
                        holder,
                    }),
            );
            let (_, answer) = state
                .engine
                .execute::<EventAggregate>(
                    &event_id.stream(),
                    commands,
                    &context,
                    move |_, event| Answer {
                        status: StatusCode::CREATED,
                        body: registration_body(event_id, event, registration_id),
                    },
                )
                .await?;
            Ok(answer)
        },
    )
    .await
}

/// What an attendee is told about a registration just made (or claimed from the waitlist):
/// confirmed with its codes, or held with its price and expiry (the codes are valid at the door
/// once paid).
pub(crate) fn registration_body(
    event_id: EventId,
    event: &Event,
    registration_id: RegistrationId,
) -> serde_json::Value {
    let Some(registration) = event.registrations.get(&registration_id) else {
        return json!({ "registration_id": registration_id, "event_id": event_id });
    };
    let mut body = json!({
        "registration_id": registration_id,
        "event_id": event_id,
        "ticket_type_id": registration.ticket_type_id,
        "quantity": registration.quantity,
        "status": registration.status,
        "ticket_codes": registration.ticket_codes,
    });
    if registration.status == RegistrationStatus::Held {
        body["price"] = json!(registration.price);
        body["expires_at"] = json!(registration.hold_expires_at);
    }
    body
}

/// Cancels a registration and frees its seats; a paid one is due a refund.
///
/// Its holder, or an owner or organizer of the event's organization.
#[utoipa::path(
    post,
    path = "/v1/events/{event_id}/reservations/{registration_id}/cancel",
    tag = "registrations",
    params(("event_id" = Uuid, Path, description = "The event."), ("registration_id" = Uuid, Path, description = "The registration."), IdempotencyKey),
    request_body = Option<PublishBody>,
    responses((status = 200, description = "The registration is cancelled.", body = RegistrationCancelled), BodyErrors, CallerErrors, Forbidden, NotFound, Conflict),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id, event_id = %event_id))]
async fn cancel_registration(
    State(state): State<CommandState>,
    caller: Caller,
    Path((event_id, registration_id)): Path<(String, String)>,
    meta: RequestMeta,
    body: OptionalJsonBody<PublishBody>,
) -> Response {
    respond(
        &state.clone(),
        &caller.clone(),
        &meta,
        &body.raw,
        |mut context| async move {
            let event_id = EventId(parse_id(&event_id, "event")?);
            let visitor = Visitor::of(&state, &caller, &event_id).await?;
            context.organization = Some(visitor.organization_id.to_string());
            let registration_id = RegistrationId(parse_id(&registration_id, "registration")?);
            let (_, answer) = state
                .engine
                .execute_guarded::<EventAggregate>(
                    &event_id.stream(),
                    vec![EventCommand::CancelRegistration { registration_id }],
                    &context,
                    visitor.holder_guard(registration_id),
                    move |facts, _| {
                        let refund = facts.iter().find_map(|f| match f {
                            EventFact::RefundDue {
                                payment_id, amount, ..
                            } => Some(json!({ "payment_id": payment_id, "amount": amount })),
                            _ => None,
                        });
                        Answer {
                            status: StatusCode::OK,
                            body: json!({
                                "registration_id": registration_id,
                                "event_id": event_id,
                                "status": "cancelled",
                                "refund": refund,
                            }),
                        }
                    },
                )
                .await?;
            Ok(answer)
        },
    )
    .await
}

/// Answer of `POST /v1/events`.
#[derive(ToSchema)]
pub struct EventDrafted {
    pub event_id: Uuid,
    /// Always `draft`.
    pub status: String,
    /// Log position of the command's last fact (also in `Marquee-Position`).
    pub position: u64,
}

/// Answer of `PATCH /v1/events/{event_id}`.
#[derive(ToSchema)]
pub struct EventUpdated {
    pub event_id: Uuid,
    /// Log position of the command's last fact.
    pub position: u64,
}

/// Answer of `POST /v1/events/{event_id}/reschedule`.
#[derive(ToSchema)]
pub struct EventRescheduled {
    pub event_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Log position of the command's last fact.
    pub position: u64,
}

/// Answer of `PUT /v1/events/{event_id}/questions`.
#[derive(ToSchema)]
pub struct QuestionsSet {
    pub event_id: Uuid,
    /// The questions as stored (trimmed).
    pub questions: Vec<QuestionSchema>,
    /// Log position of the command's last fact.
    pub position: u64,
}

/// Answer of `POST /v1/events/{event_id}/ticket-types`.
#[derive(ToSchema)]
pub struct TicketTypeAdded {
    pub event_id: Uuid,
    pub ticket_type_id: Uuid,
    /// Log position of the command's last fact.
    pub position: u64,
}

/// Answer of `POST /v1/events/{event_id}/publish`.
#[derive(ToSchema)]
pub struct EventPublished {
    pub event_id: Uuid,
    /// Always `published`.
    pub status: String,
    /// Log position of the command's last fact.
    pub position: u64,
}

/// Answer of `POST /v1/events/{event_id}/cancel`.
#[derive(ToSchema)]
pub struct EventCancelled {
    pub event_id: Uuid,
    /// Always `cancelled`.
    pub status: String,
    /// Registrations this cancelled.
    pub registrations_cancelled: u64,
    /// Paid registrations now due a refund.
    pub refunds_due: u64,
    /// Log position of the command's last fact.
    pub position: u64,
}

/// Answer of `PUT /v1/events/{event_id}/capacity`.
#[derive(ToSchema)]
pub struct CapacityChanged {
    pub event_id: Uuid,
    pub capacity: u32,
    /// Log position of the command's last fact.
    pub position: u64,
}

/// A registration just made, paid for, or claimed from the waitlist: confirmed with its ticket
/// codes, or held with its price and expiry (the codes are valid at the door once paid).
#[derive(ToSchema)]
pub struct Registration {
    pub registration_id: Uuid,
    pub event_id: Uuid,
    pub ticket_type_id: Uuid,
    pub quantity: u32,
    pub status: RegistrationStatusSchema,
    /// One code per seat.
    pub ticket_codes: Vec<String>,
    /// What is due, for a held registration.
    pub price: Option<MoneySchema>,
    /// When the hold ends, for a held registration.
    pub expires_at: Option<DateTime<Utc>>,
    /// The waitlist entry the registration was claimed from (claims only).
    pub entry_id: Option<Uuid>,
    /// Log position of the command's last fact.
    pub position: u64,
}

/// A refund that became due.
#[derive(ToSchema)]
pub struct Refund {
    pub payment_id: String,
    pub amount: MoneySchema,
}

/// Answer of `POST /v1/events/{event_id}/reservations/{registration_id}/cancel`.
#[derive(ToSchema)]
pub struct RegistrationCancelled {
    pub registration_id: Uuid,
    pub event_id: Uuid,
    /// Always `cancelled`.
    pub status: String,
    /// The refund due, when the registration was paid; `null` otherwise.
    pub refund: Option<Refund>,
    /// Log position of the command's last fact.
    pub position: u64,
}
