//! `/v1/events/{id}/check-ins`: door scans. The rules (one entry per ticket, nonces, offline
//! scans keeping their time) are the domain's (`marquee_domain::event::check_in`); two doors
//! scanning the same ticket at once are serialized by the event stream, so exactly one is let in.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use marquee_domain::event::{Event, EventCommand, check_in};
use marquee_domain::{EventId, TicketCode, Timestamp};
use serde::Deserialize;
use serde_json::json;

use crate::CommandState;
use crate::access::{Caller, DOOR, authorize};
use crate::engine::{Answer, EventAggregate};
use crate::extract::{JsonBody, OptionalJsonBody, RequestMeta, parse_id};
use crate::idempotency::respond;

/// The check-in routes.
pub fn router() -> Router<CommandState> {
    Router::new()
        .route("/v1/events/{event_id}/check-ins", post(scan))
        .route(
            "/v1/events/{event_id}/check-ins/{ticket_code}/revert",
            post(revert),
        )
}

/// Body of `POST /v1/events/{id}/check-ins`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanBody {
    /// The code read from the ticket.
    ticket_code: String,
    /// The scanner's id for this scan: the same nonce again is the same scan.
    nonce: String,
    /// When an offline scanner scanned it; absent for live scans (the server's time is used).
    #[serde(default)]
    scanned_at: Option<Timestamp>,
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
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyBody {}

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
