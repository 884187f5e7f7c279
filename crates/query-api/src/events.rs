//! `/v1/events`: the listing, one event's details, and its capacity.
//!
//! Seats are counted as the domain counts them: `confirmed` (free or paid), `held` (paid
//! reservations waiting for payment), `offered` (kept for open waitlist offers), and
//! `available` = what neither the ticket type's quantity nor the event's capacity has left
//! after those three, never below 0. `waitlist` is the number of entries waiting for an offer;
//! while it is above 0, freed seats go to the waitlist before anyone new.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use marquee_projector::queries::{
    EventDetails, EventRecord, ListingFilter, ListingKey, Price, TicketTypeRecord, status_name,
};
use serde::Serialize;
use tracing::instrument;
use uuid::Uuid;

use crate::{ApiError, QueryState};

/// Page size when `limit` is absent.
pub(crate) const DEFAULT_LIMIT: u32 = 20;
/// Largest accepted `limit`.
pub(crate) const MAX_LIMIT: u32 = 100;

pub(crate) fn router() -> Router<QueryState> {
    Router::new()
        .route("/v1/events", get(list_events))
        .route("/v1/events/{id}", get(event_details))
        .route("/v1/events/{id}/capacity", get(event_capacity))
}

/// Money as the API shows it.
#[derive(Debug, Serialize)]
pub(crate) struct MoneyJson {
    pub(crate) amount_minor: i64,
    pub(crate) currency: String,
}

impl From<Price> for MoneyJson {
    fn from(price: Price) -> Self {
        Self {
            amount_minor: price.amount_minor,
            currency: price.currency,
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct VenueJson {
    pub(crate) id: Uuid,
    pub(crate) name: String,
    pub(crate) city: String,
}

/// One item of the listing.
#[derive(Debug, Serialize)]
struct ListingItem {
    event_id: Uuid,
    status: &'static str,
    title: String,
    category: String,
    venue: VenueJson,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    timezone: String,
    capacity: u64,
    confirmed: u64,
    available: u64,
    /// The cheapest ticket type's price; `null` while the event has no ticket types.
    min_price: Option<MoneyJson>,
    published_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
}

impl From<EventRecord> for ListingItem {
    fn from(e: EventRecord) -> Self {
        Self {
            event_id: e.event_id,
            status: status_name(e.status),
            title: e.title,
            category: e.category,
            venue: VenueJson {
                id: e.venue_id,
                name: e.venue_name,
                city: e.city,
            },
            starts_at: e.starts_at,
            ends_at: e.ends_at,
            timezone: e.timezone,
            capacity: e.capacity,
            confirmed: e.confirmed,
            available: e.available,
            min_price: e.min_price.map(MoneyJson::from),
            published_at: e.published_at,
            cancelled_at: e.cancelled_at,
        }
    }
}

#[derive(Debug, Serialize)]
struct ListingPage {
    items: Vec<ListingItem>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// `GET /v1/events?from=&to=&category=&city=&cursor=&limit=`: published and cancelled events by
/// start time, then id, a page at a time.
///
/// A page is read and serialized once per applied position: asked again before the projector
/// applies anything new, the same bytes are sent from memory (read models change only when the
/// projector applies facts, so nothing newer could be shown).
#[instrument(skip(state, query), fields(limit))]
async fn list_events(
    State(state): State<QueryState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError::validation("query", e.body_text()))?;
    let key = format!("{pairs:?}");
    // Read before the page: the page then reflects at least this position.
    let applied = state.read.applied_recent().await?;
    if let Some(body) = state.listings.get(&key, applied) {
        return Ok(json_response(body));
    }
    let page = listing_page(&state, parse_listing(pairs)?).await?;
    let body =
        Bytes::from(serde_json::to_vec(&page).map_err(|e| ApiError::Internal(e.to_string()))?);
    state.listings.insert(key, applied, body.clone());
    Ok(json_response(body))
}

/// Listing pages by the query string's parsed pairs, each serialized, with the applied position
/// it was read at. Bounded: past [`ListingPages::ENTRIES`] pages it starts again empty.
#[derive(Default)]
pub(crate) struct ListingPages(Mutex<HashMap<String, (u64, Bytes)>>);

impl ListingPages {
    const ENTRIES: usize = 1024;

    fn get(&self, key: &str, applied: u64) -> Option<Bytes> {
        let pages = self.0.lock().unwrap_or_else(|e| e.into_inner());
        pages
            .get(key)
            .filter(|(at, _)| *at == applied)
            .map(|(_, body)| body.clone())
    }

    fn insert(&self, key: String, applied: u64, body: Bytes) {
        let mut pages = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if pages.len() >= Self::ENTRIES && !pages.contains_key(&key) {
            pages.clear();
        }
        pages.insert(key, (applied, body));
    }
}

fn json_response(body: Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

async fn listing_page(state: &QueryState, filter: ListingFilter) -> Result<ListingPage, ApiError> {
    tracing::Span::current().record("limit", filter.limit);
    let page_size = filter.limit as usize;
    // One more than asked tells whether there is a next page.
    let mut records = state
        .read
        .list_events(&ListingFilter {
            limit: filter.limit + 1,
            ..filter
        })
        .await?;
    let next_cursor = if records.len() > page_size {
        records.truncate(page_size);
        records.last().map(|r| encode_cursor(r.listing_key()))
    } else {
        None
    };
    Ok(ListingPage {
        items: records.into_iter().map(ListingItem::from).collect(),
        next_cursor,
    })
}

/// Reads the listing's query parameters; anything unknown, repeated or malformed is a 400.
fn parse_listing(pairs: Vec<(String, String)>) -> Result<ListingFilter, ApiError> {
    let mut filter = ListingFilter {
        limit: DEFAULT_LIMIT,
        ..ListingFilter::default()
    };
    let mut seen: Vec<&'static str> = Vec::new();
    for (name, value) in pairs {
        let field: &'static str = match name.as_str() {
            "from" => "from",
            "to" => "to",
            "category" => "category",
            "city" => "city",
            "cursor" => "cursor",
            "limit" => "limit",
            _ => return Err(ApiError::UnknownParameter(name)),
        };
        if seen.contains(&field) {
            return Err(ApiError::validation(field, "must be given at most once"));
        }
        seen.push(field);
        match field {
            "from" => filter.from = Some(parse_time(field, &value)?),
            "to" => filter.to = Some(parse_time(field, &value)?),
            "category" => filter.category = Some(non_empty(field, value)?),
            "city" => filter.city = Some(non_empty(field, value)?),
            "cursor" => filter.after = Some(decode_cursor(&value)?),
            _ => filter.limit = parse_limit(&value)?,
        }
    }
    Ok(filter)
}

/// A page size: an integer from 1 to [`MAX_LIMIT`].
pub(crate) fn parse_limit(value: &str) -> Result<u32, ApiError> {
    value
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            ApiError::validation("limit", format!("must be an integer from 1 to {MAX_LIMIT}"))
        })
}

pub(crate) fn parse_time(field: &'static str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    let mut value = value.trim().to_owned();
    // An unencoded `+02:00` offset arrives as ` 02:00` (a form-encoded `+` is a space).
    if let Some(space) = value.rfind(' ')
        && value.len() - space == 6
    {
        value.replace_range(space..=space, "+");
    }
    DateTime::parse_from_rfc3339(&value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ApiError::validation(field, "must be an RFC 3339 timestamp"))
}

fn non_empty(field: &'static str, value: String) -> Result<String, ApiError> {
    if value.trim().is_empty() {
        Err(ApiError::validation(field, "must not be empty"))
    } else {
        Ok(value)
    }
}

/// The opaque cursor: base64url of `<starts_at>|<event_id>` of the last item shown. Keyset, not
/// offset, so inserts between pages neither repeat nor skip anything.
fn encode_cursor(key: ListingKey) -> String {
    let text = format!(
        "{}|{}",
        key.starts_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        key.event_id
    );
    URL_SAFE_NO_PAD.encode(text)
}

fn decode_cursor(cursor: &str) -> Result<ListingKey, ApiError> {
    let bad = || ApiError::validation("cursor", "is not a cursor this API issued");
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (starts_at, event_id) = text.split_once('|').ok_or_else(bad)?;
    Ok(ListingKey {
        starts_at: DateTime::parse_from_rfc3339(starts_at)
            .map_err(|_| bad())?
            .with_timezone(&Utc),
        event_id: Uuid::parse_str(event_id).map_err(|_| bad())?,
    })
}

/// One ticket type in an event's details.
#[derive(Debug, Serialize)]
pub(crate) struct TicketTypeJson {
    pub(crate) ticket_type_id: Uuid,
    pub(crate) name: String,
    pub(crate) price: MoneyJson,
    pub(crate) quantity: u64,
    pub(crate) confirmed: u64,
    pub(crate) held: u64,
    pub(crate) offered: u64,
    pub(crate) available: u64,
    /// Entries waiting for an offer.
    pub(crate) waitlist: u64,
    pub(crate) sales_start: Option<DateTime<Utc>>,
    pub(crate) sales_end: Option<DateTime<Utc>>,
}

impl From<TicketTypeRecord> for TicketTypeJson {
    fn from(t: TicketTypeRecord) -> Self {
        Self {
            ticket_type_id: t.ticket_type_id,
            name: t.name,
            price: t.price.into(),
            quantity: t.quantity,
            confirmed: t.confirmed,
            held: t.held,
            offered: t.offered,
            available: t.available,
            waitlist: t.waitlist,
            sales_start: t.sales_start,
            sales_end: t.sales_end,
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct EventJson {
    pub(crate) event_id: Uuid,
    pub(crate) status: &'static str,
    pub(crate) title: String,
    pub(crate) description: String,
    pub(crate) category: String,
    pub(crate) venue: VenueJson,
    pub(crate) starts_at: DateTime<Utc>,
    pub(crate) ends_at: DateTime<Utc>,
    pub(crate) timezone: String,
    pub(crate) capacity: u64,
    pub(crate) confirmed: u64,
    pub(crate) held: u64,
    pub(crate) offered: u64,
    pub(crate) available: u64,
    pub(crate) waitlist: u64,
    pub(crate) max_per_order: u64,
    pub(crate) min_price: Option<MoneyJson>,
    pub(crate) published_at: Option<DateTime<Utc>>,
    pub(crate) cancelled_at: Option<DateTime<Utc>>,
    pub(crate) ticket_types: Vec<TicketTypeJson>,
}

/// `GET /v1/events/{id}`: one event (any status) with its ticket types. With `as_of`, the event
/// as it was at that point of the log, for its organization's members (see `audit::as_of`).
#[instrument(skip(state, headers, query))]
async fn event_details(
    State(state): State<QueryState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    if let Ok(Query(pairs)) = query
        && pairs.iter().any(|(name, _)| name == "as_of")
    {
        return crate::audit::event_as_of(&state, &headers, &id, pairs).await;
    }
    let EventDetails {
        event: e,
        ticket_types,
    } = find_event(&state, &id).await?;
    Ok(Json(EventJson {
        event_id: e.event_id,
        status: status_name(e.status),
        title: e.title,
        description: e.description,
        category: e.category,
        venue: VenueJson {
            id: e.venue_id,
            name: e.venue_name,
            city: e.city,
        },
        starts_at: e.starts_at,
        ends_at: e.ends_at,
        timezone: e.timezone,
        capacity: e.capacity,
        confirmed: e.confirmed,
        held: e.held,
        offered: e.offered,
        available: e.available,
        waitlist: e.waitlist,
        max_per_order: e.max_per_order,
        min_price: e.min_price.map(MoneyJson::from),
        published_at: e.published_at,
        cancelled_at: e.cancelled_at,
        ticket_types: ticket_types.into_iter().map(TicketTypeJson::from).collect(),
    })
    .into_response())
}

#[derive(Debug, Serialize)]
struct CapacityTicketType {
    ticket_type_id: Uuid,
    name: String,
    quantity: u64,
    confirmed: u64,
    held: u64,
    offered: u64,
    available: u64,
    waitlist: u64,
}

#[derive(Debug, Serialize)]
struct CapacityJson {
    event_id: Uuid,
    capacity: u64,
    confirmed: u64,
    held: u64,
    offered: u64,
    available: u64,
    waitlist: u64,
    ticket_types: Vec<CapacityTicketType>,
}

/// `GET /v1/events/{id}/capacity`: seats per event and per ticket type (see the module docs for
/// what each count means).
#[instrument(skip(state))]
async fn event_capacity(
    State(state): State<QueryState>,
    Path(id): Path<String>,
) -> Result<Json<CapacityJson>, ApiError> {
    let EventDetails {
        event,
        ticket_types,
    } = find_event(&state, &id).await?;
    Ok(Json(CapacityJson {
        event_id: event.event_id,
        capacity: event.capacity,
        confirmed: event.confirmed,
        held: event.held,
        offered: event.offered,
        available: event.available,
        waitlist: event.waitlist,
        ticket_types: ticket_types
            .into_iter()
            .map(|t| CapacityTicketType {
                ticket_type_id: t.ticket_type_id,
                name: t.name,
                quantity: t.quantity,
                confirmed: t.confirmed,
                held: t.held,
                offered: t.offered,
                available: t.available,
                waitlist: t.waitlist,
            })
            .collect(),
    }))
}

/// The event with this id; a malformed id is as unknown as a missing one.
async fn find_event(state: &QueryState, id: &str) -> Result<EventDetails, ApiError> {
    let Ok(event_id) = Uuid::parse_str(id) else {
        return Err(ApiError::NotFound("event"));
    };
    state
        .read
        .event(event_id)
        .await?
        .ok_or(ApiError::NotFound("event"))
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
    fn a_cursor_round_trips_to_the_same_listing_key() {
        let key = ListingKey {
            starts_at: "2026-06-01T18:00:00.25Z".parse().expect("time"),
            event_id: Uuid::now_v7(),
        };
        assert_eq!(decode_cursor(&encode_cursor(key)).expect("decode"), key);
    }

    #[test]
    fn listing_parameters_default_to_twenty_items_and_no_filter() {
        let filter = parse_listing(vec![]).expect("no parameters is fine");
        assert_eq!(filter.limit, DEFAULT_LIMIT);
        assert_eq!(filter.category, None);
    }

    #[test]
    fn an_unencoded_plus_in_an_offset_is_read_as_a_plus() {
        let from = parse_time("from", "2026-06-01T20:00:00 02:00").expect("time");
        assert_eq!(
            from,
            "2026-06-01T18:00:00Z"
                .parse::<DateTime<Utc>>()
                .expect("time")
        );
    }

    #[test]
    fn a_repeated_parameter_is_refused_by_name() {
        let error =
            parse_listing(pairs(&[("city", "Berlin"), ("city", "Paris")])).expect_err("repeated");
        assert!(matches!(error, ApiError::Validation { field: "city", .. }));
    }
}
