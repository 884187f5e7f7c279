//! `/v1/me/tickets`: the registrations the signed-in account holds, across events, newest
//! first — each with its event's title and time, the ticket type, the status, and the tickets
//! (codes and check-in times).
//!
//! **Access.** Only a signed-in account has tickets: anonymous callers and API tokens (which
//! act for an organization, not a person) get `401`. An account sees only the registrations it
//! holds (those its reservations and waitlist claims made, as `RegistrationHolderRecorded`
//! says), never anyone else's, so there is nothing to refuse with 403 or 404.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
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
use uuid::Uuid;

use crate::access::principal;
use crate::events::{DEFAULT_LIMIT, MoneyJson, parse_limit};
use crate::{ApiError, QueryState};

pub(crate) fn router() -> Router<QueryState> {
    Router::new().route("/v1/me/tickets", get(my_tickets))
}

#[derive(Debug, Serialize)]
struct VenueRef {
    name: String,
    city: String,
}

#[derive(Debug, Serialize)]
struct EventRef {
    event_id: Uuid,
    /// Empty if the event is unknown to the read models.
    title: String,
    /// `published` or `cancelled` (`null` if unknown).
    status: Option<&'static str>,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    timezone: String,
    venue: VenueRef,
}

#[derive(Debug, Serialize)]
struct TicketTypeRef {
    id: Uuid,
    /// `null` if the ticket type is unknown to the read models.
    name: Option<String>,
}

#[derive(Debug, Serialize)]
struct TicketJson {
    /// Show it at the door; valid once the registration is confirmed.
    code: String,
    /// When it was let in; `null` until then.
    checked_in_at: Option<DateTime<Utc>>,
}

/// One registration the account holds.
#[derive(Debug, Serialize)]
struct HeldJson {
    registration_id: Uuid,
    /// `held`, `confirmed`, `cancelled` or `expired`.
    status: &'static str,
    event: EventRef,
    ticket_type: TicketTypeRef,
    quantity: u64,
    /// What the seats cost in all; `null` for free seats.
    price: Option<MoneyJson>,
    /// `pending`, `declined`, `paid`, `refund_due` or `refunded`; `null` while no payment is
    /// known.
    payment_status: Option<&'static str>,
    hold_expires_at: Option<DateTime<Utc>>,
    registered_at: DateTime<Utc>,
    confirmed_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
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

#[derive(Debug, Serialize)]
struct TicketsPage {
    items: Vec<HeldJson>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// `GET /v1/me/tickets?status=&cursor=&limit=`: the signed-in account's registrations, newest
/// first, a page at a time.
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
