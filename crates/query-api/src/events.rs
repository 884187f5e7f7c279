//! `/v1/events`: the listing (filters, full-text search, orders, keyset cursors), one event's
//! details, and its capacity. Each answer carries an `ETag`, and `If-None-Match` with the
//! current tag is answered `304 Not Modified` (see [`crate::conditional`]).
//!
//! **Prices in the listing.** `min_price`, the `price_min` / `price_max` filters and
//! `sort=price` use the amount of each event's cheapest ticket type in its own currency's minor
//! unit, and compare amounts across currencies as plain numbers: 1000 JPY sorts after 900 EUR.
//! An event whose ticket types are priced in several currencies shows the type with the lowest
//! amount. Pass `currency=` to keep only events whose cheapest ticket type is priced in that
//! currency, and price filters and order then mean what they say.
//!
//! Seats are counted as the domain counts them: `confirmed` (free or paid), `held` (paid
//! reservations waiting for payment), `offered` (kept for open waitlist offers), and
//! `available` = what neither the ticket type's quantity nor the event's capacity has left
//! after those three, never below 0. `waitlist` is the number of entries waiting for an offer;
//! while it is above 0, freed seats go to the waitlist before anyone new.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use marquee_projector::queries::{
    EventDetails, EventRecord, ListingFilter, ListingKey, ListingSort, Price, TicketTypeRecord,
    search_words, status_name,
};
use serde::Serialize;
use tracing::instrument;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::conditional::{etag, is_fresh, not_modified, tagged};
use crate::error::Problem;
use crate::openapi::names;
use crate::{ApiError, QueryState};

/// Longest accepted search text, in characters.
const MAX_SEARCH_TEXT: usize = 200;

/// Page size when `limit` is absent.
pub(crate) const DEFAULT_LIMIT: u32 = 20;
/// Largest accepted `limit`.
pub(crate) const MAX_LIMIT: u32 = 100;

pub(crate) fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .routes(routes!(list_events))
        .routes(routes!(event_details))
        .routes(routes!(event_capacity))
}

/// Money as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Money)]
pub(crate) struct MoneyJson {
    /// In the currency's minor unit (cents for EUR).
    pub(crate) amount_minor: i64,
    /// ISO 4217 code, e.g. `EUR`.
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

/// Where an event takes place.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Venue)]
pub(crate) struct VenueJson {
    pub(crate) id: Uuid,
    pub(crate) name: String,
    pub(crate) city: String,
}

/// One item of the listing.
#[derive(Debug, Serialize, ToSchema)]
struct ListingItem {
    event_id: Uuid,
    /// `published` or `cancelled` (drafts are never listed).
    #[schema(value_type = names::EventStatus)]
    status: &'static str,
    title: String,
    category: String,
    venue: VenueJson,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    /// IANA time zone of the venue, e.g. `Europe/Berlin`.
    timezone: String,
    capacity: u64,
    confirmed: u64,
    available: u64,
    /// The cheapest ticket type's price; `null` while the event has no ticket types.
    #[schema(required = true)]
    min_price: Option<MoneyJson>,
    #[schema(required = true)]
    published_at: Option<DateTime<Utc>>,
    /// `null` unless cancelled.
    #[schema(required = true)]
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

/// A page of the listing.
#[derive(Debug, Serialize, ToSchema)]
struct ListingPage {
    items: Vec<ListingItem>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// The listing: published and cancelled events, filtered, searched and paged.
///
/// Events matching every filter given, a page at a time, in `sort` order, each order ending
/// with the event id. The cursor is keyset, not offset: events added between pages neither
/// repeat nor push others out. A cursor belongs to the order it was issued for.
///
/// Prices are the amount of each event's cheapest ticket type in its own currency's minor unit,
/// compared across currencies as plain numbers; pass `currency` to keep one currency and make
/// price filters and order mean what they say.
///
/// A page is read and serialized once per applied position: asked again before the projector
/// applies anything new, the same bytes are sent from memory (read models change only when the
/// projector applies facts, so nothing newer could be shown), with the same `ETag`.
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "events",
    params(
        ("q" = Option<String>, Query, min_length = 1, max_length = 200,
            description = "Full-text search: events where every word (run of letters or digits) \
                begins a word of the title or the description, ignoring case. Needs a word."),
        ("from" = Option<DateTime<Utc>>, Query,
            description = "Only events starting at or after this time (RFC 3339)."),
        ("to" = Option<DateTime<Utc>>, Query,
            description = "Only events starting before this time (RFC 3339)."),
        ("category" = Option<String>, Query, min_length = 1,
            description = "Only this category (exact, ignoring case)."),
        ("city" = Option<String>, Query, min_length = 1,
            description = "Only this city (exact, ignoring case)."),
        ("venue_id" = Option<Uuid>, Query, description = "Only events at this venue."),
        ("price_min" = Option<i64>, Query, minimum = 0,
            description = "Only events whose cheapest ticket type costs at least this (minor \
                units)."),
        ("price_max" = Option<i64>, Query, minimum = 0,
            description = "Only events whose cheapest ticket type costs at most this (minor \
                units); not below `price_min`."),
        ("currency" = Option<String>, Query, pattern = "^[A-Za-z]{3}$",
            description = "Only events whose cheapest ticket type is priced in this ISO 4217 \
                currency (any case)."),
        ("available" = Option<bool>, Query,
            description = "`true`: only published events with seats left; `false`: only the \
                others (cancelled, or sold out)."),
        ("sort" = inline(Option<names::ListingSort>), Query,
            description = "The order; default `starts_at`."),
        ("cursor" = Option<String>, Query, pattern = "^[A-Za-z0-9_-]+$",
            description = "`next_cursor` of the previous page, issued for the same `sort`."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100,
            description = "Events per page; default 20."),
        ("If-None-Match" = Option<String>, Header,
            description = "An `ETag` of an earlier answer: 304 if the answer would be the same."),
    ),
    responses(
        (status = 200, description = "A page of events.", body = ListingPage,
            headers(("ETag" = String, description = "Strong tag of this answer."))),
        (status = 304, description = "`If-None-Match` names the current tag: nothing changed.",
            headers(("ETag" = String, description = "The current tag."))),
        (status = 400, description = "A parameter is unknown, repeated or malformed, `price_max` \
            is below `price_min`, or the cursor was issued for another order \
            (`validation_failed`).",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
#[instrument(skip(state, headers, query), fields(limit))]
async fn list_events(
    State(state): State<QueryState>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError::validation("query", e.body_text()))?;
    let key = format!("{pairs:?}");
    let filter = parse_listing(pairs)?;
    // Read before the page: the page then reflects at least this position.
    let applied = state.read.applied_recent().await?;
    let tag = etag(applied, &format!("/v1/events{key}"));
    if is_fresh(&headers, &tag) {
        return Ok(not_modified(tag));
    }
    if let Some(body) = state.listings.get(&key, applied) {
        return Ok(tagged(json_response(body), tag));
    }
    let page = listing_page(&state, filter).await?;
    let body =
        Bytes::from(serde_json::to_vec(&page).map_err(|e| ApiError::Internal(e.to_string()))?);
    state.listings.insert(key, applied, body.clone());
    Ok(tagged(json_response(body), tag))
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
    let sort = filter.sort;
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
        records
            .last()
            .map(|r| encode_cursor(sort, &r.listing_key(sort)))
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
    let mut cursor = None;
    let mut seen: Vec<&'static str> = Vec::new();
    for (name, value) in pairs {
        let field: &'static str = match name.as_str() {
            "q" => "q",
            "from" => "from",
            "to" => "to",
            "category" => "category",
            "city" => "city",
            "venue_id" => "venue_id",
            "price_min" => "price_min",
            "price_max" => "price_max",
            "currency" => "currency",
            "available" => "available",
            "sort" => "sort",
            "cursor" => "cursor",
            "limit" => "limit",
            _ => return Err(ApiError::UnknownParameter(name)),
        };
        if seen.contains(&field) {
            return Err(ApiError::validation(field, "must be given at most once"));
        }
        seen.push(field);
        match field {
            "q" => filter.search = Some(parse_search(value)?),
            "from" => filter.from = Some(parse_time(field, &value)?),
            "to" => filter.to = Some(parse_time(field, &value)?),
            "category" => filter.category = Some(non_empty(field, value)?),
            "city" => filter.city = Some(non_empty(field, value)?),
            "venue_id" => {
                filter.venue_id = Some(
                    Uuid::parse_str(value.trim())
                        .map_err(|_| ApiError::validation(field, "must be a UUID"))?,
                );
            }
            "price_min" => filter.price_min = Some(parse_amount(field, &value)?),
            "price_max" => filter.price_max = Some(parse_amount(field, &value)?),
            "currency" => {
                let currency = value.trim();
                if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
                    return Err(ApiError::validation(
                        field,
                        "must be an ISO 4217 code of three letters",
                    ));
                }
                filter.currency = Some(currency.to_ascii_uppercase());
            }
            "available" => {
                filter.available = Some(match value.trim() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(ApiError::validation(field, "must be true or false")),
                });
            }
            "sort" => filter.sort = parse_sort(&value)?,
            "cursor" => cursor = Some(value),
            _ => filter.limit = parse_limit(&value)?,
        }
    }
    if let (Some(min), Some(max)) = (filter.price_min, filter.price_max)
        && min > max
    {
        return Err(ApiError::validation(
            "price_max",
            "must not be below price_min",
        ));
    }
    // The cursor is read last: it must belong to the order, whichever comes first.
    if let Some(cursor) = cursor {
        filter.after = Some(decode_cursor(filter.sort, &cursor)?);
    }
    Ok(filter)
}

/// Search text: at most [`MAX_SEARCH_TEXT`] characters, with at least one word.
fn parse_search(value: String) -> Result<String, ApiError> {
    if value.chars().count() > MAX_SEARCH_TEXT {
        return Err(ApiError::validation(
            "q",
            format!("must be at most {MAX_SEARCH_TEXT} characters"),
        ));
    }
    if search_words(&value).is_empty() {
        return Err(ApiError::validation(
            "q",
            "must contain a word (letters or digits)",
        ));
    }
    Ok(value)
}

/// An amount in minor units: a non-negative integer.
fn parse_amount(field: &'static str, value: &str) -> Result<i64, ApiError> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::validation(
            field,
            "must be a non-negative integer (minor units)",
        ));
    }
    value
        .parse()
        .map_err(|_| ApiError::validation(field, "is too large"))
}

fn parse_sort(value: &str) -> Result<ListingSort, ApiError> {
    match value.trim() {
        "starts_at" => Ok(ListingSort::StartsAt),
        "-starts_at" => Ok(ListingSort::StartsAtDesc),
        "title" => Ok(ListingSort::Title),
        "price" => Ok(ListingSort::Price),
        _ => Err(ApiError::validation(
            "sort",
            "must be one of starts_at, -starts_at, title, price",
        )),
    }
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

/// The cursor's spelling of an order.
fn sort_tag(sort: ListingSort) -> &'static str {
    match sort {
        ListingSort::StartsAt => "s",
        ListingSort::StartsAtDesc => "-s",
        ListingSort::Title => "t",
        ListingSort::Price => "p",
    }
}

/// The opaque cursor: base64url of `<order>|<event_id>|<value>` of the last item shown, where
/// the value is what the order sorts by (start time, lower-cased title, or cheapest amount,
/// empty for none). Keyset, not offset, so inserts between pages neither repeat nor skip
/// anything.
fn encode_cursor(sort: ListingSort, key: &ListingKey) -> String {
    let (event_id, value) = match key {
        ListingKey::StartsAt {
            starts_at,
            event_id,
        } => (
            event_id,
            starts_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        ),
        ListingKey::Title {
            title_key,
            event_id,
        } => (event_id, title_key.clone()),
        ListingKey::Price {
            amount_minor,
            event_id,
        } => (
            event_id,
            amount_minor.map(|a| a.to_string()).unwrap_or_default(),
        ),
    };
    URL_SAFE_NO_PAD.encode(format!("{}|{event_id}|{value}", sort_tag(sort)))
}

/// Reads a cursor issued for `sort`. Cursors of the first listing (`<starts_at>|<event_id>`,
/// start-time order) are still read.
fn decode_cursor(sort: ListingSort, cursor: &str) -> Result<ListingKey, ApiError> {
    let bad = || ApiError::validation("cursor", "is not a cursor this API issued");
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let time = |text: &str| {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| bad())
    };
    let mut parts = text.splitn(3, '|');
    let (Some(tag), Some(second)) = (parts.next(), parts.next()) else {
        return Err(bad());
    };
    let Some(value) = parts.next() else {
        // The first listing's cursors.
        if sort != ListingSort::StartsAt {
            return Err(other_order());
        }
        return Ok(ListingKey::StartsAt {
            starts_at: time(tag)?,
            event_id: Uuid::parse_str(second).map_err(|_| bad())?,
        });
    };
    if tag != sort_tag(sort) {
        return Err(if ["s", "-s", "t", "p"].contains(&tag) {
            other_order()
        } else {
            bad()
        });
    }
    let event_id = Uuid::parse_str(second).map_err(|_| bad())?;
    Ok(match sort {
        ListingSort::StartsAt | ListingSort::StartsAtDesc => ListingKey::StartsAt {
            starts_at: time(value)?,
            event_id,
        },
        ListingSort::Title => ListingKey::Title {
            title_key: value.to_owned(),
            event_id,
        },
        ListingSort::Price => ListingKey::Price {
            amount_minor: if value.is_empty() {
                None
            } else {
                Some(value.parse().map_err(|_| bad())?)
            },
            event_id,
        },
    })
}

fn other_order() -> ApiError {
    ApiError::validation(
        "cursor",
        "was issued for another sort order; start again without a cursor",
    )
}

/// One ticket type in an event's details.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TicketType)]
pub(crate) struct TicketTypeJson {
    pub(crate) ticket_type_id: Uuid,
    pub(crate) name: String,
    pub(crate) price: MoneyJson,
    /// Seats of this type in all.
    pub(crate) quantity: u64,
    /// Seats confirmed (free or paid).
    pub(crate) confirmed: u64,
    /// Seats of paid reservations waiting for payment.
    pub(crate) held: u64,
    /// Seats kept for open waitlist offers.
    pub(crate) offered: u64,
    /// Seats neither this type's quantity nor the event's capacity has left after those three.
    pub(crate) available: u64,
    /// Entries waiting for an offer.
    pub(crate) waitlist: u64,
    /// Sales open then; `null`: from publication.
    #[schema(required = true)]
    pub(crate) sales_start: Option<DateTime<Utc>>,
    /// Sales close then; `null`: when the event starts.
    #[schema(required = true)]
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

/// One event with its ticket types.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Event)]
pub(crate) struct EventJson {
    pub(crate) event_id: Uuid,
    #[schema(value_type = names::EventStatus)]
    pub(crate) status: &'static str,
    pub(crate) title: String,
    pub(crate) description: String,
    pub(crate) category: String,
    pub(crate) venue: VenueJson,
    pub(crate) starts_at: DateTime<Utc>,
    pub(crate) ends_at: DateTime<Utc>,
    /// IANA time zone of the venue, e.g. `Europe/Berlin`.
    pub(crate) timezone: String,
    /// Seats of the event in all, over every ticket type.
    pub(crate) capacity: u64,
    pub(crate) confirmed: u64,
    pub(crate) held: u64,
    pub(crate) offered: u64,
    pub(crate) available: u64,
    pub(crate) waitlist: u64,
    /// Most seats one registration may take.
    pub(crate) max_per_order: u64,
    /// The cheapest ticket type's price; `null` while the event has no ticket types.
    #[schema(required = true)]
    pub(crate) min_price: Option<MoneyJson>,
    #[schema(required = true)]
    pub(crate) published_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub(crate) cancelled_at: Option<DateTime<Utc>>,
    /// In the order they were added.
    pub(crate) ticket_types: Vec<TicketTypeJson>,
    /// Only with `as_of`: the last fact of the event folded into this answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = AsOf)]
    pub(crate) as_of: Option<AsOf>,
}

/// Where in the log a past state of an event (`as_of`) was taken.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub(crate) struct AsOf {
    /// The log position of the event's last fact folded.
    pub(crate) position: u64,
    /// Its revision in the event's stream.
    pub(crate) revision: u64,
    /// When the log stored it.
    pub(crate) recorded_at: DateTime<Utc>,
}

/// One event with its ticket types, now or at a past point of the log.
///
/// Any status (drafts too, by id). With `as_of`, the event as it was at that point of the log,
/// folded from its stream rather than read from the read models, for the owners, organizers and
/// auditors of its organization (sign in; 401 anonymous, 404 outside the organization, 403 for
/// other roles). `as_of` is a log position (digits: every fact up to it) or an RFC 3339 time
/// (every fact recorded at or before it); a position past the log's head or a time in the
/// future is a 400, and 404 means the event did not exist yet then. Without `as_of` no
/// credentials are needed and other query parameters are ignored.
#[utoipa::path(
    get,
    path = "/v1/events/{id}",
    tag = "events",
    params(
        ("id" = Uuid, Path, description = "The event's id."),
        ("as_of" = Option<String>, Query, min_length = 1,
            description = "A log position (non-negative integer) or an RFC 3339 time."),
        ("If-None-Match" = Option<String>, Header,
            description = "An `ETag` of an earlier answer: 304 if the answer would be the same \
                (not with `as_of`)."),
    ),
    responses(
        (status = 200,
            description = "The event (with `as_of`: as it was, with the `as_of` member).",
            body = EventJson,
            headers(("ETag" = String,
                description = "Strong tag of this answer (not with `as_of`)."))),
        (status = 304, description = "`If-None-Match` names the current tag: nothing changed.",
            headers(("ETag" = String, description = "The current tag."))),
        (status = 400, description = "`as_of` is malformed, past the log's head or in the future, \
            or another parameter comes with it (`validation_failed`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`as_of` without valid credentials (`unauthorized`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`as_of` from a member whose role may not read history \
            (`forbidden`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event (or not then, or not for this caller) \
            (`not_found`).", body = Problem, content_type = "application/problem+json"),
    ),
    security((), ("bearer" = [])),
)]
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
    let applied = state.read.applied_recent().await?;
    let tag = etag(applied, &format!("/v1/events/{id}"));
    if is_fresh(&headers, &tag) {
        return Ok(not_modified(tag));
    }
    let EventDetails {
        event: e,
        ticket_types,
    } = find_event(&state, &id).await?;
    let json = Json(EventJson {
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
        as_of: None,
    });
    Ok(tagged(json.into_response(), tag))
}

/// One ticket type's seats.
#[derive(Debug, Serialize, ToSchema)]
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

/// Seats per event and per ticket type.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Capacity)]
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

/// An event's seats, per event and per ticket type.
///
/// `confirmed` (free or paid), `held` (paid reservations waiting for payment), `offered` (kept
/// for open waitlist offers), and `available` = what neither the ticket type's quantity nor the
/// event's capacity has left after those three, never below 0. `waitlist` is the number of
/// entries waiting for an offer; while it is above 0, freed seats go to the waitlist first.
#[utoipa::path(
    get,
    path = "/v1/events/{id}/capacity",
    tag = "events",
    params(
        ("id" = Uuid, Path, description = "The event's id."),
        ("If-None-Match" = Option<String>, Header,
            description = "An `ETag` of an earlier answer: 304 if the answer would be the same."),
    ),
    responses(
        (status = 200, description = "The event's seats.", body = CapacityJson,
            headers(("ETag" = String, description = "Strong tag of this answer."))),
        (status = 304, description = "`If-None-Match` names the current tag: nothing changed.",
            headers(("ETag" = String, description = "The current tag."))),
        (status = 404, description = "No such event (`not_found`).",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
#[instrument(skip(state, headers))]
async fn event_capacity(
    State(state): State<QueryState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let applied = state.read.applied_recent().await?;
    let tag = etag(applied, &format!("/v1/events/{id}/capacity"));
    if is_fresh(&headers, &tag) {
        return Ok(not_modified(tag));
    }
    let EventDetails {
        event,
        ticket_types,
    } = find_event(&state, &id).await?;
    let json = Json(CapacityJson {
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
    });
    Ok(tagged(json.into_response(), tag))
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
    fn a_cursor_round_trips_to_the_same_listing_key_in_every_order() {
        let event_id = Uuid::now_v7();
        let starts_at = "2026-06-01T18:00:00.25Z".parse().expect("time");
        for (sort, key) in [
            (
                ListingSort::StartsAt,
                ListingKey::StartsAt {
                    starts_at,
                    event_id,
                },
            ),
            (
                ListingSort::StartsAtDesc,
                ListingKey::StartsAt {
                    starts_at,
                    event_id,
                },
            ),
            (
                ListingSort::Title,
                ListingKey::Title {
                    title_key: "a | b: c".to_owned(),
                    event_id,
                },
            ),
            (
                ListingSort::Price,
                ListingKey::Price {
                    amount_minor: Some(2500),
                    event_id,
                },
            ),
            (
                ListingSort::Price,
                ListingKey::Price {
                    amount_minor: None,
                    event_id,
                },
            ),
        ] {
            let cursor = encode_cursor(sort, &key);
            assert_eq!(decode_cursor(sort, &cursor).expect("decode"), key);
        }
    }

    #[test]
    fn a_cursor_of_another_order_is_refused_and_a_first_listing_cursor_still_read() {
        let key = ListingKey::Title {
            title_key: "gala".to_owned(),
            event_id: Uuid::now_v7(),
        };
        let cursor = encode_cursor(ListingSort::Title, &key);
        assert!(decode_cursor(ListingSort::Price, &cursor).is_err());
        let old = URL_SAFE_NO_PAD.encode(format!("2026-06-01T18:00:00.000000Z|{}", Uuid::now_v7()));
        assert!(matches!(
            decode_cursor(ListingSort::StartsAt, &old),
            Ok(ListingKey::StartsAt { .. })
        ));
        assert!(decode_cursor(ListingSort::Title, &old).is_err());
    }

    #[test]
    fn bad_listing_filters_are_refused_by_name() {
        for (list, field) in [
            (vec![("q", "  !!  ")], "q"),
            (vec![("venue_id", "hall")], "venue_id"),
            (vec![("price_min", "-1")], "price_min"),
            (vec![("price_min", "9"), ("price_max", "3")], "price_max"),
            (vec![("currency", "EURO")], "currency"),
            (vec![("available", "yes")], "available"),
            (vec![("sort", "popularity")], "sort"),
        ] {
            let error = parse_listing(pairs(&list)).expect_err("refused");
            assert!(
                matches!(error, ApiError::Validation { field: f, .. } if f == field),
                "{list:?}: {error}"
            );
        }
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
