//! `/v1/me/tickets`: the registrations the signed-in account holds, across events, newest
//! first — each with its event's title and time, the ticket type, the status, and the tickets
//! (codes and check-in times).
//!
//! **Access.** Only a signed-in account has tickets: anonymous callers and API tokens (which
//! act for an organization, not a person) get `401`. An account sees only the registrations it
//! holds (those its reservations and waitlist claims made, as `RegistrationHolderRecorded`
//! says), never anyone else's, so there is nothing to refuse with 403 or 404.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use marquee_auth::Principal;
use marquee_projector::holdings::{HeldRegistration, HoldingKey, HoldingsFilter};
use marquee_projector::queries::{
    parse_registration_status_name, payment_status_name, registration_status_name, status_name,
};
use serde::Serialize;
use tracing::instrument;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::access::principal;
use crate::error::Problem;
use crate::events::{DEFAULT_LIMIT, MoneyJson, parse_limit};
use crate::openapi::names;
use crate::{ApiError, QueryState};

pub(crate) fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new().routes(routes!(my_tickets))
}

/// Where a held registration's event takes place.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = HeldVenue)]
struct VenueRef {
    name: String,
    city: String,
}

/// The event a held registration is for.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = HeldEvent)]
struct EventRef {
    event_id: Uuid,
    /// Empty if the event is unknown to the read models.
    title: String,
    /// `null` if the event is unknown to the read models.
    #[schema(value_type = Option<names::EventStatus>, required = true)]
    status: Option<&'static str>,
    #[schema(required = true)]
    starts_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    ends_at: Option<DateTime<Utc>>,
    /// IANA time zone of the venue (empty if unknown).
    timezone: String,
    venue: VenueRef,
}

/// A ticket type by id, with its name.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = HeldTicketType)]
struct TicketTypeRef {
    id: Uuid,
    /// `null` if the ticket type is unknown to the read models.
    #[schema(required = true)]
    name: Option<String>,
}

/// One ticket the account holds.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = HeldTicket)]
struct TicketJson {
    /// Show it at the door; valid once the registration is confirmed.
    code: String,
    /// When it was let in; `null` until then.
    #[schema(required = true)]
    checked_in_at: Option<DateTime<Utc>>,
}

/// One registration the account holds.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = HeldRegistration)]
struct HeldJson {
    registration_id: Uuid,
    #[schema(value_type = names::RegistrationStatus)]
    status: &'static str,
    event: EventRef,
    ticket_type: TicketTypeRef,
    /// Seats taken.
    quantity: u64,
    /// What the seats cost in all; `null` for free seats.
    #[schema(required = true)]
    price: Option<MoneyJson>,
    /// `null` while no payment is known.
    #[schema(value_type = Option<names::PaymentStatus>, required = true)]
    payment_status: Option<&'static str>,
    /// When an unpaid hold runs out; `null` unless `held`.
    #[schema(required = true)]
    hold_expires_at: Option<DateTime<Utc>>,
    registered_at: DateTime<Utc>,
    #[schema(required = true)]
    confirmed_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    cancelled_at: Option<DateTime<Utc>>,
    /// One per seat once confirmed.
    tickets: Vec<TicketJson>,
}

impl From<HeldRegistration> for HeldJson {
    fn from(h: HeldRegistration) -> Self {
        Self {
            registration_id: h.registration_id,
            status: registration_status_name(h.status),
            event: EventRef {
                event_id: h.event.event_id,
                title: h.event.title,
                status: h.event.status.map(status_name),
                starts_at: h.event.starts_at,
                ends_at: h.event.ends_at,
                timezone: h.event.timezone,
                venue: VenueRef {
                    name: h.event.venue_name,
                    city: h.event.city,
                },
            },
            ticket_type: TicketTypeRef {
                id: h.ticket_type_id,
                name: h.ticket_type_name,
            },
            quantity: h.quantity,
            price: h.price.map(MoneyJson::from),
            payment_status: h.payment_status.map(payment_status_name),
            hold_expires_at: h.hold_expires_at,
            registered_at: h.registered_at,
            confirmed_at: h.confirmed_at,
            cancelled_at: h.cancelled_at,
            tickets: h
                .tickets
                .into_iter()
                .map(|t| TicketJson {
                    code: t.code,
                    checked_in_at: t.checked_in_at,
                })
                .collect(),
        }
    }
}

/// A page of the account's registrations.
#[derive(Debug, Serialize, ToSchema)]
struct TicketsPage {
    /// Newest first.
    items: Vec<HeldJson>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// The signed-in account's registrations across events, newest first.
///
/// Each with its event's title and time, the ticket type, the status, and the tickets (codes
/// and check-in times), a page at a time. Only accounts hold tickets: anonymous callers and API
/// tokens (which act for an organization, not a person) get 401.
#[utoipa::path(
    get,
    path = "/v1/me/tickets",
    tag = "account",
    params(
        ("status" = inline(Option<names::RegistrationStatus>), Query,
            description = "Only registrations in this status."),
        ("cursor" = Option<String>, Query, pattern = "^[A-Za-z0-9_-]+$",
            description = "`next_cursor` of the previous page."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100,
            description = "Registrations per page; default 20."),
    ),
    responses(
        (status = 200, description = "A page of the account's registrations.", body = TicketsPage),
        (status = 400, description = "A parameter is unknown, repeated or malformed \
            (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in as an account: no or invalid credentials, or \
            an API token (`unauthorized`).",
            body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])),
)]
#[instrument(skip(state, headers, query), fields(limit))]
async fn my_tickets(
    State(state): State<QueryState>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<TicketsPage>, ApiError> {
    let user_id = match principal(&state, &headers).await? {
        Principal::User { user_id, .. } => user_id,
        Principal::Anonymous => return Err(ApiError::Unauthorized("sign in first")),
        Principal::Token { .. } => {
            return Err(ApiError::Unauthorized(
                "only accounts hold tickets: sign in as one, not with an API token",
            ));
        }
    };
    let Query(pairs) = query.map_err(|e| ApiError::validation("query", e.body_text()))?;
    let filter = parse_filter(pairs)?;
    tracing::Span::current().record("limit", filter.limit);
    let page_size = filter.limit as usize;
    // One more than asked tells whether there is a next page.
    let mut held = state
        .read
        .holdings(
            user_id.0,
            &HoldingsFilter {
                limit: filter.limit + 1,
                ..filter
            },
        )
        .await?;
    let next_cursor = if held.len() > page_size {
        held.truncate(page_size);
        held.last().map(|h| encode_cursor(h.key))
    } else {
        None
    };
    Ok(Json(TicketsPage {
        items: held.into_iter().map(HeldJson::from).collect(),
        next_cursor,
    }))
}

/// Reads the parameters; anything unknown, repeated or malformed is a 400.
fn parse_filter(pairs: Vec<(String, String)>) -> Result<HoldingsFilter, ApiError> {
    let mut filter = HoldingsFilter {
        limit: DEFAULT_LIMIT,
        ..HoldingsFilter::default()
    };
    let mut seen: Vec<&'static str> = Vec::new();
    for (name, value) in pairs {
        let field: &'static str = match name.as_str() {
            "status" => "status",
            "cursor" => "cursor",
            "limit" => "limit",
            _ => return Err(ApiError::UnknownParameter(name)),
        };
        if seen.contains(&field) {
            return Err(ApiError::validation(field, "must be given at most once"));
        }
        seen.push(field);
        let value = value.trim();
        match field {
            "status" => {
                filter.status = Some(parse_registration_status_name(value).ok_or_else(|| {
                    ApiError::validation(
                        field,
                        "must be one of held, confirmed, cancelled, expired",
                    )
                })?);
            }
            "cursor" => filter.before = Some(decode_cursor(value)?),
            _ => filter.limit = parse_limit(value)?,
        }
    }
    Ok(filter)
}

/// The opaque cursor: base64url of `m<registered_position>` of the last registration shown.
fn encode_cursor(key: HoldingKey) -> String {
    URL_SAFE_NO_PAD.encode(format!("m{}", key.registered_position))
}

fn decode_cursor(cursor: &str) -> Result<HoldingKey, ApiError> {
    let bad = || ApiError::validation("cursor", "is not a cursor this API issued");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let position = text.strip_prefix('m').ok_or_else(bad)?;
    if position.is_empty() || !position.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    Ok(HoldingKey {
        registered_position: position.parse().map_err(|_| bad())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_my_tickets_cursor_round_trips_and_a_guest_list_cursor_is_refused() {
        let key = HoldingKey {
            registered_position: 42,
        };
        assert_eq!(decode_cursor(&encode_cursor(key)).expect("decode"), key);
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("r42")).is_err());
    }

    #[test]
    fn bad_my_tickets_parameters_are_refused_by_name() {
        for (name, value) in [
            ("status", "paid"),
            ("limit", "0"),
            ("cursor", "x"),
            ("sort", "a"),
        ] {
            let error = parse_filter(vec![(name.to_owned(), value.to_owned())]).expect_err(name);
            let field = match &error {
                ApiError::Validation { field, .. } => (*field).to_owned(),
                ApiError::UnknownParameter(name) => name.clone(),
                other => panic!("{other}"),
            };
            assert_eq!(field, name);
        }
    }
}
