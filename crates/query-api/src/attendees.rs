//! `/v1/events/{id}/attendees`: an event's guest list — every registration with its status,
//! attendee, ticket type, answers, payment and tickets with their check-in times, in the order
//! the registrations were made, a page at a time.
//!
//! **Access.** The guest list is personal data (names, e-mail addresses, answers) and carries
//! the ticket codes that get people in at the door: only the owners, organizers and door staff
//! of the event's organization read it (see [`crate::access`]).

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use marquee_domain::EventId;
use marquee_domain::event::Answers;
use marquee_projector::queries::{
    GuestListEntry, GuestListFilter, GuestListKey, parse_registration_status_name,
    payment_status_name, registration_status_name,
};
use serde::Serialize;
use tracing::instrument;
use uuid::Uuid;

use crate::access::{GUEST_LIST, authorize};
use crate::events::{DEFAULT_LIMIT, MoneyJson, parse_limit};
use crate::{ApiError, QueryState};

pub(crate) fn router() -> Router<QueryState> {
    Router::new().route("/v1/events/{id}/attendees", get(guest_list))
}

#[derive(Debug, Serialize)]
struct AttendeeJson {
    name: String,
    email: String,
}

#[derive(Debug, Serialize)]
struct TicketTypeRef {
    id: Uuid,
    /// `null` if the ticket type is unknown to the read models.
    name: Option<String>,
}

#[derive(Debug, Serialize)]
struct PaymentJson {
    id: String,
    /// `pending`, `declined`, `paid`, `refund_due` or `refunded`.
    status: &'static str,
}

#[derive(Debug, Serialize)]
struct TicketJson {
    code: String,
    /// When it was let in; `null` until then (and again after a reverted check-in).
    checked_in_at: Option<DateTime<Utc>>,
}

/// One registration on the guest list.
#[derive(Debug, Serialize)]
struct GuestJson {
    registration_id: Uuid,
    /// `held`, `confirmed`, `cancelled` or `expired`.
    status: &'static str,
    attendee: AttendeeJson,
    ticket_type: TicketTypeRef,
    quantity: u64,
    answers: Answers,
    /// What the seats cost in all; `null` for free seats.
    price: Option<MoneyJson>,
    payment: Option<PaymentJson>,
    hold_expires_at: Option<DateTime<Utc>>,
    registered_at: DateTime<Utc>,
    confirmed_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
    expired_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    tickets: Vec<TicketJson>,
}

impl From<GuestListEntry> for GuestJson {
    fn from(g: GuestListEntry) -> Self {
        Self {
            registration_id: g.registration_id,
            status: registration_status_name(g.status),
            attendee: AttendeeJson {
                name: g.attendee.name,
                email: g.attendee.email,
            },
            ticket_type: TicketTypeRef {
                id: g.ticket_type_id,
                name: g.ticket_type_name,
            },
            quantity: g.quantity,
            answers: g.answers,
            price: g.price.map(MoneyJson::from),
            payment: g.payment.map(|p| PaymentJson {
                id: p.payment_id,
                status: payment_status_name(p.status),
            }),
            hold_expires_at: g.hold_expires_at,
            registered_at: g.registered_at,
            confirmed_at: g.confirmed_at,
            cancelled_at: g.cancelled_at,
            expired_at: g.expired_at,
            updated_at: g.updated_at,
            tickets: g
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
struct GuestListPage {
    items: Vec<GuestJson>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// `GET /v1/events/{id}/attendees?status=&ticket_type_id=&checked_in=&cursor=&limit=`.
///
/// `checked_in=true` keeps registrations with at least one ticket checked in, `false` those with
/// at least one ticket still to scan (a group half arrived appears in both). 404 for an event
/// the read models do not know.
#[instrument(skip(state, query), fields(limit))]
async fn guest_list(
    State(state): State<QueryState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<GuestListPage>, ApiError> {
    // A malformed id is as unknown as a missing one, whatever the parameters say.
    let event_id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("event"))?;
    authorize(
        &state,
        &headers,
        &EventId(event_id).stream(),
        "event",
        GUEST_LIST,
    )
    .await?;
    let Query(pairs) = query.map_err(|e| ApiError::validation("query", e.body_text()))?;
    let filter = parse_filter(pairs)?;
    tracing::Span::current().record("limit", filter.limit);
    let page_size = filter.limit as usize;
    // One more than asked tells whether there is a next page.
    let mut entries = state
        .read
        .guest_list(
            event_id,
            &GuestListFilter {
                limit: filter.limit + 1,
                ..filter
            },
        )
        .await?
        .ok_or(ApiError::NotFound("event"))?;
    let next_cursor = if entries.len() > page_size {
        entries.truncate(page_size);
        entries.last().map(|e| encode_cursor(e.key))
    } else {
        None
    };
    Ok(Json(GuestListPage {
        items: entries.into_iter().map(GuestJson::from).collect(),
        next_cursor,
    }))
}

/// Reads the guest list's query parameters; anything unknown, repeated or malformed is a 400.
fn parse_filter(pairs: Vec<(String, String)>) -> Result<GuestListFilter, ApiError> {
    let mut filter = GuestListFilter {
        limit: DEFAULT_LIMIT,
        ..GuestListFilter::default()
    };
    let mut seen: Vec<&'static str> = Vec::new();
    for (name, value) in pairs {
        let field: &'static str = match name.as_str() {
            "status" => "status",
            "ticket_type_id" => "ticket_type_id",
            "checked_in" => "checked_in",
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
            "ticket_type_id" => {
                filter.ticket_type_id = Some(
                    Uuid::parse_str(value)
                        .map_err(|_| ApiError::validation(field, "must be a UUID"))?,
                );
            }
            "checked_in" => {
                filter.checked_in = Some(match value {
                    "true" => true,
                    "false" => false,
                    _ => return Err(ApiError::validation(field, "must be true or false")),
                });
            }
            "cursor" => filter.after = Some(decode_cursor(value)?),
            _ => filter.limit = parse_limit(value)?,
        }
    }
    Ok(filter)
}

/// The opaque cursor: base64url of `r<registered_position>` of the last registration shown.
/// Keyset, not offset: registrations made between pages come after every earlier page.
fn encode_cursor(key: GuestListKey) -> String {
    URL_SAFE_NO_PAD.encode(format!("r{}", key.registered_position))
}

fn decode_cursor(cursor: &str) -> Result<GuestListKey, ApiError> {
    let bad = || ApiError::validation("cursor", "is not a cursor this API issued");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let position = text.strip_prefix('r').ok_or_else(bad)?;
    if position.is_empty() || !position.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    Ok(GuestListKey {
        registered_position: position.parse().map_err(|_| bad())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_guest_list_cursor_round_trips_and_a_listing_cursor_is_refused() {
        let key = GuestListKey {
            registered_position: 4711,
        };
        assert_eq!(decode_cursor(&encode_cursor(key)).expect("decode"), key);
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("2026-06-01T18:00:00Z|x")).is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("r-1")).is_err());
    }

    #[test]
    fn guest_list_parameters_default_to_twenty_registrations_and_no_filter() {
        let filter = parse_filter(vec![]).expect("no parameters is fine");
        assert_eq!(filter.limit, DEFAULT_LIMIT);
        assert_eq!(filter.status, None);
        assert_eq!(filter.checked_in, None);
    }

    #[test]
    fn a_bad_guest_list_parameter_is_refused_by_name() {
        for (list, field) in [
            (vec![("status", "paid")], "status"),
            (vec![("checked_in", "yes")], "checked_in"),
            (vec![("ticket_type_id", "vip")], "ticket_type_id"),
            (vec![("limit", "0")], "limit"),
            (vec![("status", "held"), ("status", "held")], "status"),
        ] {
            let error = parse_filter(pairs(&list)).expect_err("refused");
            assert!(
                matches!(error, ApiError::Validation { field: f, .. } if f == field),
                "{list:?}: {error}"
            );
        }
    }
}
