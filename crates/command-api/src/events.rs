//! `/v1/events`: draft, update, ticket types, publish, cancel, capacity, and reservations.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{patch, post, put};
use marquee_domain::event::{
    Answers, Attendee, DetailsChange, Event, EventCommand, EventError, EventFact, PolicyChange,
    Question, RegistrationStatus, VenueInfo,
};
use marquee_domain::venue::{Venue, VenueCommand};
use marquee_domain::{
    EventId, Money, RegistrationId, TicketCode, TicketTypeId, Timestamp, VenueId,
};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::CommandState;
use crate::access::{Caller, ORGANIZERS, Visitor, authorize};
use crate::engine::{Answer, EventAggregate, Scheduling, VenueAggregate};
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
        .route("/v1/events/{event_id}/reschedule", post(reschedule))
        .route("/v1/events/{event_id}/questions", put(set_questions))
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
        .execute::<EventAggregate>(&event_id.stream(), commands, context, move |_, _| Answer {
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
    #[serde(flatten)]
    policy: PolicyBody,
    /// Registration questions.
    #[serde(default)]
    questions: Option<Vec<Question>>,
}

/// The event policy fields a draft or a PATCH may carry.
#[derive(Debug, Default, Deserialize)]
struct PolicyBody {
    /// Seconds a paid reservation's seats are held for payment (default 900).
    #[serde(default)]
    hold_seconds: Option<u32>,
    /// Seconds a waitlist offer stays open (default 86400).
    #[serde(default)]
    offer_seconds: Option<u32>,
    /// Attendees may cancel until then (default: the event's start).
    #[serde(default)]
    cancellation_deadline: Option<Timestamp>,
    /// Most seats per attendee (e-mail address); 0 removes the limit.
    #[serde(default)]
    max_per_attendee: Option<u32>,
    /// Reminders before the start, in seconds before it (default `[86400, 3600]`); `[]` turns
    /// them off.
    #[serde(default)]
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
    #[serde(flatten)]
    policy: PolicyBody,
}

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
    starts_at: Option<Timestamp>,
    ends_at: Option<Timestamp>,
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RescheduleBody {
    starts_at: Timestamp,
    ends_at: Timestamp,
}

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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuestionsBody {
    questions: Vec<Question>,
}

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
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishBody {}

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
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    #[serde(default)]
    reason: Option<String>,
}

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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CapacityBody {
    capacity: u32,
}

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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReserveBody {
    ticket_type_id: Uuid,
    quantity: u32,
    attendee: AttendeeBody,
    /// Answers to the event's registration questions, by question id.
    #[serde(default)]
    answers: Answers,
}

/// The attendee inside a reservation or a waitlist entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AttendeeBody {
    name: String,
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
