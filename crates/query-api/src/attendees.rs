//! `/v1/events/{id}/attendees`: an event's guest list — every registration with its status,
//! attendee, ticket type, answers, payment and tickets with their check-in times, in the order
//! the registrations were made, a page at a time.
//!
//! `q=` keeps registrations whose attendee's name or e-mail address contains the text, ignoring
//! case. With `format=csv` (or `Accept: text/csv`) the whole list matching the filters comes as
//! one CSV file (see [`crate::csv`]), read page by page and streamed as it is read.
//!
//! **Access.** The guest list is personal data (names, e-mail addresses, answers) and carries
//! the ticket codes that get people in at the door: only the owners, organizers and door staff
//! of the event's organization read it (see [`crate::access`]).

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
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
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::access::{GUEST_LIST, authorize};
use crate::error::Problem;
use crate::events::{DEFAULT_LIMIT, MoneyJson, parse_limit};
use crate::openapi::names;
use crate::{ApiError, QueryState, csv};

/// Registrations read per page of a CSV export.
const CSV_PAGE: u32 = 500;

/// Longest accepted search text, in characters.
const MAX_SEARCH_TEXT: usize = 200;

/// The columns of the CSV export, in order.
const CSV_COLUMNS: [&str; 21] = [
    "registration_id",
    "status",
    "attendee_name",
    "attendee_email",
    "ticket_type_id",
    "ticket_type_name",
    "quantity",
    "price_amount_minor",
    "price_currency",
    "payment_id",
    "payment_status",
    "hold_expires_at",
    "registered_at",
    "confirmed_at",
    "cancelled_at",
    "expired_at",
    "updated_at",
    "ticket_codes",
    "checked_in_tickets",
    "first_checked_in_at",
    "answers",
];

pub(crate) fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new().routes(routes!(guest_list))
}

/// Who the seats are for.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Attendee)]
struct AttendeeJson {
    name: String,
    email: String,
}

/// A ticket type by id, with its name.
#[derive(Debug, Serialize, ToSchema)]
struct TicketTypeRef {
    id: Uuid,
    /// `null` if the ticket type is unknown to the read models.
    #[schema(required = true)]
    name: Option<String>,
}

/// A registration's payment.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Payment)]
struct PaymentJson {
    /// The payment provider's id.
    id: String,
    #[schema(value_type = names::PaymentStatus)]
    status: &'static str,
}

/// One ticket: one seat, one code.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Ticket)]
struct TicketJson {
    /// What the door scans.
    code: String,
    /// When it was let in; `null` until then (and again after a reverted check-in).
    #[schema(required = true)]
    checked_in_at: Option<DateTime<Utc>>,
}

/// An answer to a registration question: one value (text, a choice, a country code, an age
/// range), or the choices of a multiple-choice question.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(
    dead_code,
    reason = "describes the domain's `AnswerValue`; never built"
)]
enum Answer {
    One(String),
    Many(Vec<String>),
}

/// One registration on the guest list.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Guest)]
struct GuestJson {
    registration_id: Uuid,
    #[schema(value_type = names::RegistrationStatus)]
    status: &'static str,
    attendee: AttendeeJson,
    ticket_type: TicketTypeRef,
    /// Seats taken.
    quantity: u64,
    /// Answers to the event's questions, by question id.
    #[schema(value_type = std::collections::BTreeMap<String, Answer>)]
    answers: Answers,
    /// What the seats cost in all; `null` for free seats.
    #[schema(required = true)]
    price: Option<MoneyJson>,
    /// `null` for free seats and before a payment is known.
    #[schema(required = true)]
    payment: Option<PaymentJson>,
    /// When an unpaid hold runs out; `null` unless `held`.
    #[schema(required = true)]
    hold_expires_at: Option<DateTime<Utc>>,
    registered_at: DateTime<Utc>,
    #[schema(required = true)]
    confirmed_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    cancelled_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    expired_at: Option<DateTime<Utc>>,
    /// When anything about it last changed.
    updated_at: DateTime<Utc>,
    /// One per seat once confirmed.
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

/// A page of the guest list.
#[derive(Debug, Serialize, ToSchema)]
struct GuestListPage {
    /// In the order the registrations were made.
    items: Vec<GuestJson>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// An event's guest list, as pages of JSON or as one CSV file.
///
/// Every registration with its status, attendee, ticket type, answers, payment and tickets with
/// their check-in times, in the order the registrations were made. For the owners, organizers
/// and door staff of the event's organization (401 anonymous, 404 outside it, 403 for other
/// roles).
///
/// `checked_in=true` keeps registrations with at least one ticket checked in, `false` those with
/// at least one ticket still to scan (a group half arrived appears in both). With `format=csv`
/// (or, without `format`, `Accept: text/csv`) the whole list matching the filters comes as one
/// RFC 4180 file with a header row (`cursor` and `limit` do not apply and are refused).
#[utoipa::path(
    get,
    path = "/v1/events/{id}/attendees",
    tag = "organizers",
    params(
        ("id" = Uuid, Path, description = "The event's id."),
        ("q" = Option<String>, Query, min_length = 1, max_length = 200,
            description = "Only registrations whose attendee's name or e-mail address contains \
                this text, ignoring case; not blank."),
        ("status" = inline(Option<names::RegistrationStatus>), Query,
            description = "Only registrations in this status."),
        ("ticket_type_id" = Option<Uuid>, Query, description = "Only this ticket type."),
        ("checked_in" = Option<bool>, Query,
            description = "`true`: with a ticket checked in; `false`: with a ticket still to \
                scan."),
        ("cursor" = Option<String>, Query, pattern = "^[A-Za-z0-9_-]+$",
            description = "`next_cursor` of the previous page."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100,
            description = "Registrations per page; default 20."),
        ("format" = inline(Option<names::Format>), Query,
            description = "`json` (default, unless `Accept` names `text/csv`) or `csv`."),
    ),
    responses(
        (status = 200, description = "A page of the guest list, or all of it as CSV.",
            content(
                (GuestListPage = "application/json"),
                (String = "text/csv"),
            )),
        (status = 400, description = "A parameter is unknown, repeated or malformed, or CSV was \
            asked for with `cursor` or `limit` (`validation_failed`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credentials (`unauthorized`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller's role may not read the guest list (`forbidden`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event, or not one of the caller's organization \
            (`not_found`).", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])),
)]
#[instrument(skip(state, headers, query), fields(limit))]
async fn guest_list(
    State(state): State<QueryState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
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
    let GuestListQuery {
        filter,
        format,
        paged,
    } = parse_filter(pairs)?;
    if csv::wanted(&headers, format.as_deref())? {
        if paged {
            return Err(ApiError::validation(
                "cursor",
                "a CSV export holds every page: leave out cursor and limit",
            ));
        }
        return csv_export(&state, event_id, filter).await;
    }
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
    })
    .into_response())
}

/// Where a CSV export has got to.
enum Export {
    /// This page is read and still to write.
    Page(Vec<GuestListEntry>),
    /// The next page starts after this registration.
    After(GuestListKey),
    /// Everything is written.
    Done,
}

/// The whole guest list matching `filter` as CSV: the header, then page after page as it is
/// read. The first page is read before the answer starts (an unknown event is still a 404);
/// a failure later can only cut the answer short, which the client sees as a broken transfer.
async fn csv_export(
    state: &QueryState,
    event_id: Uuid,
    filter: GuestListFilter,
) -> Result<Response, ApiError> {
    let page = move |after: Option<GuestListKey>| GuestListFilter {
        after,
        limit: CSV_PAGE,
        ..filter.clone()
    };
    let first = state
        .read
        .guest_list(event_id, &page(None))
        .await?
        .ok_or(ApiError::NotFound("event"))?;
    let read = state.read.clone();
    let rows = futures::stream::try_unfold(Export::Page(first), move |next| {
        let read = read.clone();
        let filter = page(match &next {
            Export::After(key) => Some(*key),
            _ => None,
        });
        async move {
            let entries = match next {
                Export::Done => return Ok(None),
                Export::Page(entries) => entries,
                Export::After(_) => read
                    .guest_list(event_id, &filter)
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, %event_id, "guest list export cut short");
                        std::io::Error::other(e)
                    })?
                    .unwrap_or_default(),
            };
            let next = match entries.last() {
                Some(last) if entries.len() == CSV_PAGE as usize => Export::After(last.key),
                _ => Export::Done,
            };
            let mut text = String::new();
            for entry in entries {
                text.push_str(&csv_record(entry));
            }
            Ok::<_, std::io::Error>(Some((Bytes::from(text), next)))
        }
    });
    let header = futures::stream::once(async { Ok(Bytes::from(csv::record(CSV_COLUMNS))) });
    use futures::StreamExt;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(csv::CONTENT_TYPE),
            ),
            (
                header::CONTENT_DISPOSITION,
                csv::attachment(&format!("guests-{event_id}.csv")),
            ),
        ],
        Body::from_stream(header.chain(rows)),
    )
        .into_response())
}

/// One registration as a CSV record, in [`CSV_COLUMNS`] order.
fn csv_record(g: GuestListEntry) -> String {
    let time = |t: Option<DateTime<Utc>>| {
        t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            .unwrap_or_default()
    };
    let checked_in: Vec<DateTime<Utc>> = g.tickets.iter().filter_map(|t| t.checked_in_at).collect();
    let answers = serde_json::to_string(&g.answers).unwrap_or_else(|_| "{}".to_owned());
    csv::record([
        g.registration_id.to_string(),
        registration_status_name(g.status).to_owned(),
        g.attendee.name,
        g.attendee.email,
        g.ticket_type_id.to_string(),
        g.ticket_type_name.unwrap_or_default(),
        g.quantity.to_string(),
        g.price
            .as_ref()
            .map(|p| p.amount_minor.to_string())
            .unwrap_or_default(),
        g.price.map(|p| p.currency).unwrap_or_default(),
        g.payment
            .as_ref()
            .map(|p| p.payment_id.clone())
            .unwrap_or_default(),
        g.payment
            .map(|p| payment_status_name(p.status).to_owned())
            .unwrap_or_default(),
        time(g.hold_expires_at),
        time(Some(g.registered_at)),
        time(g.confirmed_at),
        time(g.cancelled_at),
        time(g.expired_at),
        time(Some(g.updated_at)),
        g.tickets
            .iter()
            .map(|t| t.code.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        checked_in.len().to_string(),
        time(checked_in.iter().min().copied()),
        answers,
    ])
}

/// The guest list's query parameters, read.
#[derive(Debug)]
struct GuestListQuery {
    filter: GuestListFilter,
    /// `json` or `csv`, if given.
    format: Option<String>,
    /// Whether `cursor` or `limit` was given.
    paged: bool,
}

/// Reads the guest list's query parameters; anything unknown, repeated or malformed is a 400.
fn parse_filter(pairs: Vec<(String, String)>) -> Result<GuestListQuery, ApiError> {
    let mut filter = GuestListFilter {
        limit: DEFAULT_LIMIT,
        ..GuestListFilter::default()
    };
    let mut format = None;
    let mut seen: Vec<&'static str> = Vec::new();
    for (name, value) in pairs {
        let field: &'static str = match name.as_str() {
            "q" => "q",
            "format" => "format",
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
            "q" => {
                if value.chars().count() > MAX_SEARCH_TEXT {
                    return Err(ApiError::validation(
                        field,
                        format!("must be at most {MAX_SEARCH_TEXT} characters"),
                    ));
                }
                if value.is_empty() {
                    return Err(ApiError::validation(field, "must not be empty"));
                }
                filter.search = Some(value.to_owned());
            }
            "format" => format = Some(value.to_owned()),
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
    Ok(GuestListQuery {
        filter,
        format,
        paged: seen.contains(&"cursor") || seen.contains(&"limit"),
    })
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
        let query = parse_filter(vec![]).expect("no parameters is fine");
        assert_eq!(query.filter.limit, DEFAULT_LIMIT);
        assert_eq!(query.filter.status, None);
        assert_eq!(query.filter.checked_in, None);
        assert_eq!(query.filter.search, None);
        assert!(!query.paged);
    }

    #[test]
    fn a_bad_guest_list_parameter_is_refused_by_name() {
        for (list, field) in [
            (vec![("status", "paid")], "status"),
            (vec![("checked_in", "yes")], "checked_in"),
            (vec![("ticket_type_id", "vip")], "ticket_type_id"),
            (vec![("limit", "0")], "limit"),
            (vec![("status", "held"), ("status", "held")], "status"),
            (vec![("q", " ")], "q"),
        ] {
            let error = parse_filter(pairs(&list)).expect_err("refused");
            assert!(
                matches!(error, ApiError::Validation { field: f, .. } if f == field),
                "{list:?}: {error}"
            );
        }
    }
}
