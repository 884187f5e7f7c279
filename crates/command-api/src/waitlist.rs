//! `/v1/events/{id}/waitlist`: joining a sold-out ticket type's line, taking up an offer, and
//! leaving. The rules (join order, offers, head of line first) are the domain's
//! (`marquee_domain::event::waitlist`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use marquee_domain::event::MAX_PER_ORDER_LIMIT;
use marquee_domain::event::{Answers, EventCommand, EventFact, WaitlistStatus};
use marquee_domain::{EventId, RegistrationId, TicketTypeId, WaitlistEntryId};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::CommandState;
use crate::access::{Caller, Visitor};
use crate::engine::{Answer, EventAggregate};
use crate::events::{AttendeeBody, new_ticket_code, registration_body};
use crate::extract::{JsonBody, OptionalJsonBody, RequestMeta, parse_id};
use crate::idempotency::respond;
use crate::openapi::schemas::{Answers as AnswersSchema, WaitlistStatus as WaitlistStatusSchema};
use crate::openapi::{BodyErrors, CallerErrors, Conflict, Forbidden, IdempotencyKey, NotFound};
use chrono::{DateTime, Utc};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The waitlist routes.
pub fn router() -> OpenApiRouter<CommandState> {
    OpenApiRouter::new()
        .routes(routes!(join))
        .routes(routes!(claim))
        .routes(routes!(leave))
}

/// Body of `POST /v1/events/{id}/waitlist`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct JoinBody {
    ticket_type_id: Uuid,
    /// Seats wanted; an offer is for all of them. Default 1.
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 100, default = 1)]
    quantity: u32,
    attendee: AttendeeBody,
    /// Answers to the event's registration questions, carried into the registration.
    #[serde(default)]
    #[schema(value_type = Option<AnswersSchema>)]
    answers: Answers,
}

fn one() -> u32 {
    1
}

/// Joins the waitlist of a sold-out ticket type; when seats free up, places are offered in
/// order (`409 seats_available` while seats are on sale, `409 already_on_waitlist`).
#[utoipa::path(
    post,
    path = "/v1/events/{event_id}/waitlist",
    tag = "waitlist",
    params(("event_id" = Uuid, Path, description = "The event."), IdempotencyKey),
    request_body = JoinBody,
    responses((status = 201, description = "The place in line.", body = WaitlistJoined), BodyErrors, CallerErrors, Forbidden, NotFound, Conflict),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id, event_id = %event_id))]
async fn join(
    State(state): State<CommandState>,
    caller: Caller,
    Path(event_id): Path<String>,
    meta: RequestMeta,
    body: JsonBody<JoinBody>,
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
            let entry_id = WaitlistEntryId(Uuid::now_v7());
            let ticket_type_id = TicketTypeId(b.ticket_type_id);
            let mut commands = vec![EventCommand::JoinWaitlist {
                entry_id,
                ticket_type_id,
                attendee: b.attendee.into(),
                quantity: b.quantity,
                answers: b.answers,
            }];
            // The signed-in account that joins holds the place: it may claim an offer and leave
            // (see `Visitor::entry_guard`).
            commands.extend(
                visitor
                    .user
                    .map(|holder| EventCommand::RecordWaitlistHolder { entry_id, holder }),
            );
            let (_, answer) = state
                .engine
                .execute::<EventAggregate>(
                    &event_id.stream(),
                    commands,
                    &context,
                    move |_, event| {
                        let entry = event.waitlist.get(&entry_id);
                        // Where the entry stands: 1 is next in line.
                        let place = event
                            .ticket_types
                            .get(&ticket_type_id)
                            .and_then(|t| t.waiting.iter().position(|id| *id == entry_id))
                            .map(|index| index + 1);
                        Answer {
                            status: StatusCode::CREATED,
                            body: json!({
                                "entry_id": entry_id,
                                "event_id": event_id,
                                "ticket_type_id": ticket_type_id,
                                "quantity": entry.map(|e| e.quantity),
                                "status": entry.map(|e| e.status),
                                "place_in_line": place,
                                "offer_expires_at": entry.and_then(|e| e.offer_expires_at),
                            }),
                        }
                    },
                )
                .await
                .map_err(|e| visitor.hide_draft(e))?;
            Ok(answer)
        },
    )
    .await
}

/// Body of the claim and leave commands: empty or `{}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct EmptyBody {}

/// Claims an open offer: the waitlist place becomes a registration (held for payment, or
/// confirmed when free). Its holder, or an owner or organizer.
#[utoipa::path(
    post,
    path = "/v1/events/{event_id}/waitlist/{entry_id}/claim",
    tag = "waitlist",
    params(("event_id" = Uuid, Path, description = "The event."), ("entry_id" = Uuid, Path, description = "The waitlist entry."), IdempotencyKey),
    request_body = Option<EmptyBody>,
    responses((status = 201, description = "The registration the offer turned into.", body = crate::events::Registration), BodyErrors, CallerErrors, Forbidden, NotFound, Conflict),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id, event_id = %event_id))]
async fn claim(
    State(state): State<CommandState>,
    caller: Caller,
    Path((event_id, entry_id)): Path<(String, String)>,
    meta: RequestMeta,
    body: OptionalJsonBody<EmptyBody>,
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
            let entry_id = WaitlistEntryId(parse_id(&entry_id, "waitlist entry")?);
            let registration_id = RegistrationId(Uuid::now_v7());
            // The entry's quantity is only known to the decider: enough codes for any order; the
            // domain takes one per seat.
            let codes = (0..MAX_PER_ORDER_LIMIT)
                .map(|_| new_ticket_code())
                .collect();
            // The registration an offer turns into is held by the place's holder (whoever of
            // them and the organizers claims it). A holder never changes once recorded, so the
            // log as it is now tells it.
            let holder = state
                .engine
                .load::<EventAggregate>(&event_id.stream())
                .await?
                .state
                .waitlist
                .get(&entry_id)
                .and_then(|entry| entry.holder);
            let mut commands = vec![EventCommand::ClaimOffer {
                entry_id,
                registration_id,
                ticket_codes: codes,
            }];
            commands.extend(holder.map(|holder| EventCommand::RecordRegistrationHolder {
                registration_id,
                holder,
            }));
            let (_, answer) = state
                .engine
                .execute_guarded::<EventAggregate>(
                    &event_id.stream(),
                    commands,
                    &context,
                    visitor.entry_guard(entry_id),
                    move |_, event| {
                        let mut body = registration_body(event_id, event, registration_id);
                        body["entry_id"] = json!(entry_id);
                        Answer {
                            status: StatusCode::CREATED,
                            body,
                        }
                    },
                )
                .await?;
            Ok(answer)
        },
    )
    .await
}

/// Leaves the waitlist; an open offer passes to the next in line. Its holder, or an owner or
/// organizer.
#[utoipa::path(
    post,
    path = "/v1/events/{event_id}/waitlist/{entry_id}/leave",
    tag = "waitlist",
    params(("event_id" = Uuid, Path, description = "The event."), ("entry_id" = Uuid, Path, description = "The waitlist entry."), IdempotencyKey),
    request_body = Option<EmptyBody>,
    responses((status = 200, description = "The place is given up.", body = WaitlistLeft), BodyErrors, CallerErrors, Forbidden, NotFound, Conflict),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id, event_id = %event_id))]
async fn leave(
    State(state): State<CommandState>,
    caller: Caller,
    Path((event_id, entry_id)): Path<(String, String)>,
    meta: RequestMeta,
    body: OptionalJsonBody<EmptyBody>,
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
            let entry_id = WaitlistEntryId(parse_id(&entry_id, "waitlist entry")?);
            let (_, answer) = state
                .engine
                .execute_guarded::<EventAggregate>(
                    &event_id.stream(),
                    vec![EventCommand::LeaveWaitlist { entry_id }],
                    &context,
                    visitor.entry_guard(entry_id),
                    move |facts, _| {
                        let offers_made = facts
                            .iter()
                            .filter(|f| matches!(f, EventFact::WaitlistOfferMade { .. }))
                            .count();
                        Answer {
                            status: StatusCode::OK,
                            body: json!({
                                "entry_id": entry_id,
                                "event_id": event_id,
                                "status": WaitlistStatus::Left,
                                "offers_made": offers_made,
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

/// Answer of `POST /v1/events/{event_id}/waitlist`.
#[derive(ToSchema)]
pub struct WaitlistJoined {
    pub entry_id: Uuid,
    pub event_id: Uuid,
    pub ticket_type_id: Uuid,
    pub quantity: Option<u32>,
    /// `waiting`, or `offered` when seats were free for it at once.
    pub status: Option<WaitlistStatusSchema>,
    /// 1 is next in line; `null` once offered.
    pub place_in_line: Option<u64>,
    /// When an offer made at once expires.
    pub offer_expires_at: Option<DateTime<Utc>>,
    /// Log position of the command's last fact.
    pub position: u64,
}

/// Answer of `POST /v1/events/{event_id}/waitlist/{entry_id}/leave`.
#[derive(ToSchema)]
pub struct WaitlistLeft {
    pub entry_id: Uuid,
    pub event_id: Uuid,
    /// Always `left`.
    pub status: WaitlistStatusSchema,
    /// Offers this made to those next in line.
    pub offers_made: u64,
    /// Log position of the command's last fact.
    pub position: u64,
}
