//! `/v1/events/{id}/check-ins`: door scans. The rules (one entry per ticket, nonces, offline
//! scans keeping their time) are the domain's (`marquee_domain::event::check_in`); two doors
//! scanning the same ticket at once are serialized by the event stream, so exactly one is let in.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use marquee_domain::event::{Event, EventCommand, check_in};
use marquee_domain::{EventId, TicketCode};
use serde::Deserialize;
use serde_json::json;

use crate::CommandState;
use crate::access::{Caller, DOOR, authorize};
use crate::engine::{Answer, EventAggregate};
use crate::extract::{JsonBody, OptionalJsonBody, RequestMeta, parse_id};
use crate::idempotency::respond;
use crate::openapi::{BodyErrors, CallerErrors, Conflict, Forbidden, IdempotencyKey, NotFound};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The check-in routes.
pub fn router() -> OpenApiRouter<CommandState> {
    OpenApiRouter::new()
        .routes(routes!(scan))
        .routes(routes!(revert))
}

/// Body of `POST /v1/events/{id}/check-ins`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ScanBody {
    /// The code read from the ticket.
    #[schema(min_length = 1)]
    ticket_code: String,
    /// The scanner's id for this scan: the same nonce again is the same scan.
    #[schema(min_length = 1, max_length = 128)]
    nonce: String,
    /// When an offline scanner scanned it; absent for live scans (the server's time is used).
    #[serde(default)]
    scanned_at: Option<DateTime<Utc>>,
}

/// What the door is told about a ticket that was let in.
fn admitted(event_id: EventId, event: &Event, code: &TicketCode) -> serde_json::Value {
    let Some((ticket, registration, ticket_type)) = check_in::describe(event, code) else {
        return json!({ "result": "ok", "event_id": event_id, "ticket_code": code });
    };
    json!({
        "result": "ok",
        "event_id": event_id,
        "ticket_code": code,
        "registration_id": registration.id,
        "attendee": { "name": registration.attendee.name },
        "ticket_type": { "id": ticket_type.id, "name": ticket_type.name },
        "scanned_at": ticket.check_in.as_ref().map(|c| c.scanned_at),
    })
}

/// Checks a ticket in at the door: `200` lets the holder in; `404 invalid` for an unknown code,
/// `409 already_redeemed` (with `first_scanned_at`), `canceled` or `unpaid` otherwise. The same
/// nonce again is the same scan. Owners, organizers and door staff.
#[utoipa::path(
    post,
    path = "/v1/events/{event_id}/check-ins",
    tag = "check-ins",
    params(("event_id" = Uuid, Path, description = "The event."), IdempotencyKey),
    request_body = ScanBody,
    responses((status = 200, description = "Let in.", body = Admitted), BodyErrors, CallerErrors, Forbidden, NotFound, Conflict),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id, event_id = %event_id))]
async fn scan(
    State(state): State<CommandState>,
    caller: Caller,
    Path(event_id): Path<String>,
    meta: RequestMeta,
    body: JsonBody<ScanBody>,
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
                authorize(&state, &caller, &event_id.stream(), "event", DOOR).await?;
            context.organization = Some(organization_id.to_string());
            let code = TicketCode(b.ticket_code.trim().to_owned());
            let command = EventCommand::CheckIn {
                ticket_code: code.clone(),
                nonce: b.nonce,
                scanned_at: b.scanned_at,
            };
            let (_, answer) = state
                .engine
                .execute::<EventAggregate>(
                    &event_id.stream(),
                    vec![command],
                    &context,
                    move |_, event| Answer {
                        status: StatusCode::OK,
                        body: admitted(event_id, event, &code),
                    },
                )
                .await?;
            Ok(answer)
        },
    )
    .await
}

/// Body of a revert: empty or `{}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct EmptyBody {}

/// Reverts a ticket's check-in (a scan by mistake): the ticket can be scanned again.
#[utoipa::path(
    post,
    path = "/v1/events/{event_id}/check-ins/{ticket_code}/revert",
    tag = "check-ins",
    params(("event_id" = Uuid, Path, description = "The event."), ("ticket_code" = String, Path, description = "The ticket's code."), IdempotencyKey),
    request_body = Option<EmptyBody>,
    responses((status = 200, description = "The check-in is reverted.", body = CheckInReverted), BodyErrors, CallerErrors, Forbidden, NotFound, Conflict),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id, event_id = %event_id))]
async fn revert(
    State(state): State<CommandState>,
    caller: Caller,
    Path((event_id, ticket_code)): Path<(String, String)>,
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
            let organization_id =
                authorize(&state, &caller, &event_id.stream(), "event", DOOR).await?;
            context.organization = Some(organization_id.to_string());
            let code = TicketCode(ticket_code);
            let (_, answer) = state
                .engine
                .execute::<EventAggregate>(
                    &event_id.stream(),
                    vec![EventCommand::RevertCheckIn {
                        ticket_code: code.clone(),
                    }],
                    &context,
                    move |_, _| Answer {
                        status: StatusCode::OK,
                        body: json!({
                            "result": "reverted",
                            "event_id": event_id,
                            "ticket_code": code,
                        }),
                    },
                )
                .await?;
            Ok(answer)
        },
    )
    .await
}

/// The attendee as the door sees them.
#[derive(ToSchema)]
pub struct AdmittedAttendee {
    pub name: String,
}

/// The ticket type as the door sees it.
#[derive(ToSchema)]
pub struct AdmittedTicketType {
    pub id: uuid::Uuid,
    pub name: String,
}

/// Answer of `POST /v1/events/{event_id}/check-ins`.
#[derive(ToSchema)]
pub struct Admitted {
    /// Always `ok`.
    pub result: String,
    pub event_id: uuid::Uuid,
    pub ticket_code: String,
    pub registration_id: Option<uuid::Uuid>,
    pub attendee: Option<AdmittedAttendee>,
    pub ticket_type: Option<AdmittedTicketType>,
    /// When the ticket was scanned in.
    pub scanned_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Log position of the command's last fact.
    pub position: u64,
}

/// Answer of `POST /v1/events/{event_id}/check-ins/{ticket_code}/revert`.
#[derive(ToSchema)]
pub struct CheckInReverted {
    /// Always `reverted`.
    pub result: String,
    pub event_id: uuid::Uuid,
    pub ticket_code: String,
    /// Log position of the command's last fact.
    pub position: u64,
}
