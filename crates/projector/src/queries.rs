//! Typed reads of the read models, for the query API. The SQL lives beside the schema it reads;
//! callers get plain structs and never see a column name.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use marquee_domain::event::{
    Answers, Attendee, EventStatus, PaymentStatus, RegistrationStatus, WaitlistStatus,
};
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::apply::{parse_status, search_key, status_text, to_i64};
use crate::read_models::{Backend, to_u64};
use crate::registrations::{
    parse_payment_status, parse_registration_status, parse_waitlist_status, payment_status_text,
    registration_status_text,
};
use crate::rows::ID_CHUNK;
use crate::time::{from_opt_text, from_text, to_text};
use crate::{ProjectorError, ReadModels};

/// Which events to list, in which order; see [`ReadModels::list_events`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListingFilter {
    /// Only events starting at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only events starting before this time.
    pub to: Option<DateTime<Utc>>,
    /// Only this category (case-insensitive, exact).
    pub category: Option<String>,
    /// Only this city (case-insensitive, exact).
    pub city: Option<String>,
    /// Only events at this venue.
    pub venue_id: Option<Uuid>,
    /// Full-text search of titles and descriptions: only events where every word of
    /// [`search_words`]`(text)` begins a word of the title or the description. Text without any
    /// word matches nothing.
    pub search: Option<String>,
    /// Only events whose cheapest ticket type costs at least this, in minor units (of whatever
    /// currency it is priced in: see [`ListingFilter::currency`]).
    pub price_min: Option<i64>,
    /// Only events whose cheapest ticket type costs at most this, in minor units.
    pub price_max: Option<i64>,
    /// Only events whose cheapest ticket type is priced in this ISO 4217 currency.
    pub currency: Option<String>,
    /// `Some(true)`: only published events with seats left (some ticket type with
    /// `available > 0`); `Some(false)`: only the others (cancelled, or nothing left).
    pub available: Option<bool>,
    /// The order.
    pub sort: ListingSort,
    /// Only events after this one in `sort` order (keyset pagination); a key of another
    /// order is refused.
    pub after: Option<ListingKey>,
    /// At most this many events.
    pub limit: u32,
}

/// The orders the listing can be read in. Each ends with the event id, so that no two events
/// tie and a page boundary is exact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ListingSort {
    /// Earliest start first (the default).
    #[default]
    StartsAt,
    /// Latest start first.
    StartsAtDesc,
    /// By title, ignoring case (byte order of the lower-cased title).
    Title,
    /// Cheapest first, by the amount of each event's cheapest ticket type whatever its
    /// currency; events without ticket types last.
    Price,
}

/// An event's place in a listing order: the value it is sorted by, then its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListingKey {
    /// In [`ListingSort::StartsAt`] or [`ListingSort::StartsAtDesc`] order.
    StartsAt {
        /// When the event starts.
        starts_at: DateTime<Utc>,
        /// The event's id, breaking ties.
        event_id: Uuid,
    },
    /// In [`ListingSort::Title`] order.
    Title {
        /// The title trimmed and lower-cased.
        title_key: String,
        /// The event's id, breaking ties.
        event_id: Uuid,
    },
    /// In [`ListingSort::Price`] order.
    Price {
        /// The cheapest ticket type's amount; `None` for an event without ticket types.
        amount_minor: Option<i64>,
        /// The event's id, breaking ties.
        event_id: Uuid,
    },
}

impl ListingKey {
    /// Whether this key is a place in `sort` order.
    pub fn fits(&self, sort: ListingSort) -> bool {
        matches!(
            (self, sort),
            (
                ListingKey::StartsAt { .. },
                ListingSort::StartsAt | ListingSort::StartsAtDesc
            ) | (ListingKey::Title { .. }, ListingSort::Title)
                | (ListingKey::Price { .. }, ListingSort::Price)
        )
    }
}

/// The words a full-text search looks for: runs of letters and digits, lower-cased, at most
/// [`MAX_SEARCH_WORDS`]. The same on both engines (SQLite's FTS5 `unicode61` tokenizer and
/// Postgres's `simple` configuration split and fold text this way).
pub fn search_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .take(MAX_SEARCH_WORDS)
        .collect()
}

/// Most words one search looks for; more are ignored.
pub const MAX_SEARCH_WORDS: usize = 10;

/// The lowest price of an event's ticket types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    /// In the currency's minor unit.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
}

/// One `event_listing` row.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// The event (the happening).
    pub event_id: Uuid,
    /// Where it takes place.
    pub venue_id: Uuid,
    /// The venue's current name.
    pub venue_name: String,
    /// The venue's city, as written when the venue was created.
    pub city: String,
    /// Headline shown in listings.
    pub title: String,
    /// Long text shown on the event's page.
    pub description: String,
    /// Free text, as the organizer wrote it; filters ignore case.
    pub category: String,
    /// Draft, published or cancelled.
    pub status: EventStatus,
    /// Start, UTC.
    pub starts_at: DateTime<Utc>,
    /// End, UTC.
    pub ends_at: DateTime<Utc>,
    /// IANA time zone the event is advertised in.
    pub timezone: String,
    /// Event-wide seat limit.
    pub capacity: u64,
    /// Seats confirmed across all ticket types.
    pub confirmed: u64,
    /// Seats held for payment across all ticket types.
    pub held: u64,
    /// Seats kept for open waitlist offers across all ticket types.
    pub offered: u64,
    /// Waitlist entries waiting for an offer across all ticket types.
    pub waitlist: u64,
    /// `capacity - (confirmed + held + offered)`, never below 0.
    pub available: u64,
    /// Most seats one reservation may take.
    pub max_per_order: u64,
    /// The cheapest ticket type's price, if the event has any.
    pub min_price: Option<Price>,
    /// When it went on sale, once published.
    pub published_at: Option<DateTime<Utc>>,
    /// When it was called off, once cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Position of the last fact that changed this event.
    pub last_position: u64,
}

impl EventRecord {
    /// This event's place in `sort` order.
    pub fn listing_key(&self, sort: ListingSort) -> ListingKey {
        let event_id = self.event_id;
        match sort {
            ListingSort::StartsAt | ListingSort::StartsAtDesc => ListingKey::StartsAt {
                starts_at: self.starts_at,
                event_id,
            },
            ListingSort::Title => ListingKey::Title {
                title_key: search_key(&self.title),
                event_id,
            },
            ListingSort::Price => ListingKey::Price {
                amount_minor: self.min_price.as_ref().map(|p| p.amount_minor),
                event_id,
            },
        }
    }
}

/// One `event_capacity` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketTypeRecord {
    /// The ticket type, unique within its event.
    pub ticket_type_id: Uuid,
    /// Display name.
    pub name: String,
    /// Price of one seat.
    pub price: Price,
    /// Seats of this type that can ever be confirmed.
    pub quantity: u64,
    /// Seats of this type confirmed and not cancelled.
    pub confirmed: u64,
    /// Seats of this type held for payment (unpaid holds not yet expired).
    pub held: u64,
    /// Seats of this type kept for open waitlist offers.
    pub offered: u64,
    /// Entries of this type's waitlist waiting for an offer.
    pub waitlist: u64,
    /// `min(quantity - confirmed - held - offered, event capacity - event-wide (confirmed +
    /// held + offered))`, never below 0: what a new reservation could take, were nobody
    /// waiting (seats freed while people wait go to the waitlist first).
    pub available: u64,
    /// Sales open (inclusive); `None` means from publication.
    pub sales_start: Option<DateTime<Utc>>,
    /// Sales close (exclusive); `None` means until the event ends.
    pub sales_end: Option<DateTime<Utc>>,
}

/// An event with its ticket types, in the order they were added.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDetails {
    /// The event's listing row.
    pub event: EventRecord,
    /// Its ticket types.
    pub ticket_types: Vec<TicketTypeRecord>,
}

/// Which registrations of an event the guest list shows; see [`ReadModels::guest_list`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestListFilter {
    /// Only registrations in this status.
    pub status: Option<RegistrationStatus>,
    /// Only registrations of this ticket type.
    pub ticket_type_id: Option<Uuid>,
    /// `Some(true)`: only registrations with at least one ticket checked in (who is here);
    /// `Some(false)`: only those with at least one ticket not checked in (who is still to
    /// come). A group half arrived matches both.
    pub checked_in: Option<bool>,
    /// Only registrations whose attendee's name or e-mail address contains this text, ignoring
    /// case (blank text matches everyone).
    pub search: Option<String>,
    /// Only registrations after this one in guest-list order (keyset pagination).
    pub after: Option<GuestListKey>,
    /// At most this many registrations.
    pub limit: u32,
}

/// A registration's place in guest-list order: the order registrations were made in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GuestListKey {
    /// Position of the fact that made the registration (seats held or confirmed).
    pub registered_position: u64,
}

/// One registration on an event's guest list. Holds personal data.
#[derive(Debug, Clone, PartialEq)]
pub struct GuestListEntry {
    /// The registration.
    pub registration_id: Uuid,
    /// Its place in guest-list order.
    pub key: GuestListKey,
    /// Held, confirmed, cancelled or expired.
    pub status: RegistrationStatus,
    /// Who the seats are for.
    pub attendee: Attendee,
    /// The ticket type of its seats.
    pub ticket_type_id: Uuid,
    /// That ticket type's name; `None` if the read models do not know the ticket type.
    pub ticket_type_name: Option<String>,
    /// Number of seats.
    pub quantity: u64,
    /// Answers to the event's registration questions (empty when none were asked).
    pub answers: Answers,
    /// What the seats cost in all; `None` for free seats.
    pub price: Option<Price>,
    /// The payment that confirmed it, or until then the last one reported; `None` while none
    /// is known.
    pub payment: Option<GuestPayment>,
    /// When an unpaid hold expires (or expired); `None` for free registrations.
    pub hold_expires_at: Option<DateTime<Utc>>,
    /// When the registration was made.
    pub registered_at: DateTime<Utc>,
    /// When it was confirmed, if it was.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// When it was cancelled, if it was.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// When its hold expired unpaid, if it did.
    pub expired_at: Option<DateTime<Utc>>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// One ticket per seat, in the order they were issued.
    pub tickets: Vec<GuestTicket>,
}

/// A registration's payment as the guest list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestPayment {
    /// The provider's id of the payment.
    pub payment_id: String,
    /// Where it is; see [`payment_status_name`].
    pub status: PaymentStatus,
}

/// One ticket on the guest list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestTicket {
    /// The code shown at the door.
    pub code: String,
    /// When it was let in (the scanner's time), while it counts as checked in.
    pub checked_in_at: Option<DateTime<Utc>>,
}

/// One entry of an event's waitlist. Holds personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitlistRecord {
    /// The entry.
    pub entry_id: Uuid,
    /// The ticket type waited for.
    pub ticket_type_id: Uuid,
    /// Who waits.
    pub attendee: Attendee,
    /// Seats wanted.
    pub quantity: u64,
    /// Waiting, offered, claimed, expired, left or closed.
    pub status: WaitlistStatus,
    /// Join order across the whole event, from 0.
    pub seq: u64,
    /// When it joined.
    pub joined_at: DateTime<Utc>,
    /// When the open offer expires, while there is one.
    pub offer_expires_at: Option<DateTime<Utc>>,
    /// The registration a claimed offer became.
    pub registration_id: Option<Uuid>,
}

/// A projection's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionCheckpoint {
    /// e.g. [`crate::PROJECTION`].
    pub name: String,
    /// Its checkpoint.
    pub applied_position: u64,
}

/// The price order: the cheapest ticket type's amount, events without one last.
const PRICE_ORDER: &str = "COALESCE(min_price_minor, 9223372036854775807)";
/// Where an event without ticket types sorts by price.
const NO_PRICE: i64 = i64::MAX;

/// A bound parameter of a query built from a filter.
enum Param {
    Text(String),
    Int(i64),
}

impl Param {
    fn bind(self, query: crate::rows::AnyQuery<'_>) -> crate::rows::AnyQuery<'_> {
        match self {
            Param::Text(text) => query.bind(text),
            Param::Int(int) => query.bind(int),
        }
    }
}

const EVENT_COLUMNS: &str = "event_id, venue_id, venue_name, city, title, description, \
    category, status, starts_at, ends_at, timezone, capacity, confirmed, held, offered, waitlist, \
    available, max_per_order, min_price_minor, min_price_currency, published_at, cancelled_at, \
    last_position";

impl ReadModels {
    /// Published and cancelled events (never drafts) matching `filter`, in `filter.sort` order,
    /// at most `filter.limit`. Fails with [`ProjectorError::InvalidConfig`] for a key of another
    /// order than `filter.sort`.
    pub async fn list_events(
        &self,
        filter: &ListingFilter,
    ) -> Result<Vec<EventRecord>, ProjectorError> {
        let mut sql = format!(
            "SELECT {EVENT_COLUMNS} FROM event_listing WHERE status IN ('published', 'cancelled')"
        );
        let mut params: Vec<Param> = Vec::new();
        let param = |value: Param, params: &mut Vec<Param>| {
            params.push(value);
            format!("${}", params.len())
        };
        if let Some(from) = filter.from {
            let p = param(Param::Text(to_text(from)), &mut params);
            sql.push_str(&format!(" AND starts_at >= {p}"));
        }
        if let Some(to) = filter.to {
            let p = param(Param::Text(to_text(to)), &mut params);
            sql.push_str(&format!(" AND starts_at < {p}"));
        }
        if let Some(category) = &filter.category {
            let p = param(Param::Text(search_key(category)), &mut params);
            sql.push_str(&format!(" AND category_key = {p}"));
        }
        if let Some(city) = &filter.city {
            let p = param(Param::Text(search_key(city)), &mut params);
            sql.push_str(&format!(" AND city_key = {p}"));
        }
        if let Some(venue_id) = filter.venue_id {
            let p = param(Param::Text(venue_id.to_string()), &mut params);
            sql.push_str(&format!(" AND venue_id = {p}"));
        }
        if let Some(min) = filter.price_min {
            let p = param(Param::Int(min), &mut params);
            sql.push_str(&format!(" AND min_price_minor >= {p}"));
        }
        if let Some(max) = filter.price_max {
            let p = param(Param::Int(max), &mut params);
            sql.push_str(&format!(" AND min_price_minor <= {p}"));
        }
        if let Some(currency) = &filter.currency {
            let p = param(Param::Text(currency.trim().to_uppercase()), &mut params);
            sql.push_str(&format!(" AND min_price_currency = {p}"));
        }
        if let Some(available) = filter.available {
            let on_sale = "(status = 'published' AND EXISTS (SELECT 1 FROM event_capacity c \
                WHERE c.event_id = event_listing.event_id AND c.available > 0))";
            if available {
                sql.push_str(&format!(" AND {on_sale}"));
            } else {
                sql.push_str(&format!(" AND NOT {on_sale}"));
            }
        }
        if let Some(text) = &filter.search {
            let words = search_words(text);
            if words.is_empty() {
                return Ok(Vec::new());
            }
            let (query, matches) = match self.backend() {
                // Every word as a prefix: `"rust"* AND "night"*`. The words are letters and
                // digits only, so quoting them is all the escaping FTS5 needs.
                Backend::Sqlite => (
                    words
                        .iter()
                        .map(|w| format!("\"{w}\"*"))
                        .collect::<Vec<_>>()
                        .join(" AND "),
                    "event_search MATCH",
                ),
                // `rust:* & night:*`, against the expression the GIN index is built on.
                Backend::Postgres => (
                    words
                        .iter()
                        .map(|w| format!("{w}:*"))
                        .collect::<Vec<_>>()
                        .join(" & "),
                    "to_tsvector('simple', title || ' ' || description) @@ to_tsquery('simple',",
                ),
            };
            let p = param(Param::Text(query), &mut params);
            let close = if self.backend() == Backend::Postgres {
                ")"
            } else {
                ""
            };
            sql.push_str(&format!(
                " AND event_id IN (SELECT event_id FROM event_search WHERE {matches} {p}{close})"
            ));
        }
        if let Some(after) = &filter.after {
            if !after.fits(filter.sort) {
                return Err(ProjectorError::InvalidConfig(
                    "listing key of another order".to_owned(),
                ));
            }
            let (column, value, event_id) = match after {
                ListingKey::StartsAt {
                    starts_at,
                    event_id,
                } => ("starts_at", Param::Text(to_text(*starts_at)), event_id),
                ListingKey::Title {
                    title_key,
                    event_id,
                } => ("title_key", Param::Text(title_key.clone()), event_id),
                ListingKey::Price {
                    amount_minor,
                    event_id,
                } => (
                    PRICE_ORDER,
                    Param::Int(amount_minor.unwrap_or(NO_PRICE)),
                    event_id,
                ),
            };
            let v = param(value, &mut params);
            let id = param(Param::Text(event_id.to_string()), &mut params);
            let further = if filter.sort == ListingSort::StartsAtDesc {
                "<"
            } else {
                ">"
            };
            sql.push_str(&format!(
                " AND ({column} {further} {v} OR ({column} = {v} AND event_id {further} {id}))"
            ));
        }
        let order = match filter.sort {
            ListingSort::StartsAt => "starts_at, event_id".to_owned(),
            ListingSort::StartsAtDesc => "starts_at DESC, event_id DESC".to_owned(),
            ListingSort::Title => "title_key, event_id".to_owned(),
            ListingSort::Price => format!("{PRICE_ORDER}, event_id"),
        };
        sql.push_str(&format!(" ORDER BY {order} LIMIT {}", filter.limit));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in params {
            query = value.bind(query);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(event_from_row).collect()
    }

    /// One event (drafts included) with its ticket types, or `None` if the read models do not
    /// know it.
    pub async fn event(&self, event_id: Uuid) -> Result<Option<EventDetails>, ProjectorError> {
        let id = event_id.to_string();
        let sql = format!("SELECT {EVENT_COLUMNS} FROM event_listing WHERE event_id = $1");
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&id)
            .fetch_optional(self.pool())
            .await?
        else {
            return Ok(None);
        };
        let event = event_from_row(&row)?;
        let rows = sqlx::query(
            "SELECT ticket_type_id, name, price_minor, currency, quantity, confirmed, held, \
             offered, waitlist, available, sales_start, sales_end FROM event_capacity \
             WHERE event_id = $1 ORDER BY added_position, ticket_type_id",
        )
        .bind(&id)
        .fetch_all(self.pool())
        .await?;
        let ticket_types = rows
            .iter()
            .map(ticket_type_from_row)
            .collect::<Result<_, _>>()?;
        Ok(Some(EventDetails {
            event,
            ticket_types,
        }))
    }

    /// The guest list of an event: its registrations matching `filter`, in the order they were
    /// made, at most `filter.limit`, each with its tickets. `None` if the read models do not
    /// know the event.
    pub async fn guest_list(
        &self,
        event_id: Uuid,
        filter: &GuestListFilter,
    ) -> Result<Option<Vec<GuestListEntry>>, ProjectorError> {
        let event = event_id.to_string();
        let known = sqlx::query("SELECT event_id FROM event_listing WHERE event_id = $1")
            .bind(&event)
            .fetch_optional(self.pool())
            .await?;
        if known.is_none() {
            return Ok(None);
        }
        let mut params = vec![Param::Text(event.clone())];
        let mut param = |value: Param| {
            params.push(value);
            format!("${}", params.len())
        };
        let mut sql = "SELECT r.registration_id, r.registered_position, r.status, \
            r.attendee_name, r.attendee_email, r.ticket_type_id, c.name AS ticket_type_name, \
            r.quantity, r.answers, r.price_minor, r.price_currency, r.payment_id, \
            r.payment_status, r.hold_expires_at, r.registered_at, r.confirmed_at, \
            r.cancelled_at, r.expired_at, r.updated_at \
            FROM registrations r LEFT JOIN event_capacity c \
            ON c.event_id = r.event_id AND c.ticket_type_id = r.ticket_type_id \
            WHERE r.event_id = $1"
            .to_owned();
        if let Some(status) = filter.status {
            let p = param(Param::Text(registration_status_text(status).to_owned()));
            sql.push_str(&format!(" AND r.status = {p}"));
        }
        if let Some(ticket_type_id) = filter.ticket_type_id {
            let p = param(Param::Text(ticket_type_id.to_string()));
            sql.push_str(&format!(" AND r.ticket_type_id = {p}"));
        }
        if let Some(checked_in) = filter.checked_in {
            let null = if checked_in { "IS NOT NULL" } else { "IS NULL" };
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM tickets t WHERE t.registration_id = r.registration_id \
                 AND t.event_id = r.event_id AND t.checked_in_at {null})"
            ));
        }
        if let Some(text) = &filter.search {
            let pattern = contains_pattern(text);
            if pattern != "%%" {
                let p = param(Param::Text(pattern));
                sql.push_str(&format!(" AND r.attendee_key LIKE {p} ESCAPE '\\'"));
            }
        }
        if let Some(after) = filter.after {
            let p = param(Param::Int(to_i64(after.registered_position)));
            sql.push_str(&format!(" AND r.registered_position > {p}"));
        }
        sql.push_str(&format!(
            " ORDER BY r.registered_position LIMIT {}",
            filter.limit
        ));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in params {
            query = value.bind(query);
        }
        let rows = query.fetch_all(self.pool()).await?;
        let mut entries = rows
            .iter()
            .map(guest_from_row)
            .collect::<Result<Vec<_>, _>>()?;

        let ids: Vec<String> = entries
            .iter()
            .map(|e| e.registration_id.to_string())
            .collect();
        let mut tickets: HashMap<String, Vec<GuestTicket>> = HashMap::new();
        for chunk in ids.chunks(ID_CHUNK) {
            // `$1` is the event: the ids are `$2` on.
            let ids = (2..chunk.len() + 2)
                .map(|n| format!("${n}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT registration_id, code, checked_in_at FROM tickets \
                 WHERE event_id = $1 AND registration_id IN ({ids}) ORDER BY registration_id, seat"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&event);
            for id in chunk {
                query = query.bind(id.as_str());
            }
            for row in query.fetch_all(self.pool()).await? {
                tickets
                    .entry(row.try_get("registration_id")?)
                    .or_default()
                    .push(GuestTicket {
                        code: row.try_get("code")?,
                        checked_in_at: from_opt_text(row.try_get("checked_in_at")?)?,
                    });
            }
        }
        for entry in &mut entries {
            entry.tickets = tickets
                .remove(&entry.registration_id.to_string())
                .unwrap_or_default();
        }
        Ok(Some(entries))
    }

    /// Every entry of an event's waitlist ever made, in join order (empty for an unknown
    /// event).
    pub async fn waitlist(&self, event_id: Uuid) -> Result<Vec<WaitlistRecord>, ProjectorError> {
        let rows = sqlx::query(
            "SELECT entry_id, ticket_type_id, attendee_name, attendee_email, quantity, status, \
             seq, joined_at, offer_expires_at, registration_id FROM waitlist_entries \
             WHERE event_id = $1 ORDER BY seq",
        )
        .bind(event_id.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let status: String = row.try_get("status")?;
                let registration_id: Option<String> = row.try_get("registration_id")?;
                Ok(WaitlistRecord {
                    entry_id: uuid_column(row, "entry_id")?,
                    ticket_type_id: uuid_column(row, "ticket_type_id")?,
                    attendee: Attendee {
                        name: row.try_get("attendee_name")?,
                        email: row.try_get("attendee_email")?,
                    },
                    quantity: count_column(row, "quantity")?,
                    status: parse_waitlist_status(&status).ok_or_else(|| {
                        ProjectorError::Corrupt(format!("waitlist status `{status}`"))
                    })?,
                    seq: count_column(row, "seq")?,
                    joined_at: from_text(&row.try_get::<String, _>("joined_at")?)?,
                    offer_expires_at: from_opt_text(row.try_get("offer_expires_at")?)?,
                    registration_id: registration_id
                        .map(|id| {
                            Uuid::parse_str(&id).map_err(|e| {
                                ProjectorError::Corrupt(format!("registration_id `{id}`: {e}"))
                            })
                        })
                        .transpose()?,
                })
            })
            .collect()
    }

    /// Every projection's checkpoint, by name.
    pub async fn projections(&self) -> Result<Vec<ProjectionCheckpoint>, ProjectorError> {
        let rows = sqlx::query(
            "SELECT projection, position FROM projector_checkpoints ORDER BY projection",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ProjectionCheckpoint {
                    name: row.try_get("projection")?,
                    applied_position: to_u64(row.try_get("position")?)?,
                })
            })
            .collect()
    }
}

/// A `LIKE` pattern (escape character `\`) matching text that contains `text` lower-cased, as
/// the `*_key` columns are.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in search_key(text).chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

fn uuid_column(row: &AnyRow, column: &str) -> Result<Uuid, ProjectorError> {
    let text: String = row.try_get(column)?;
    Uuid::parse_str(&text).map_err(|e| ProjectorError::Corrupt(format!("{column} `{text}`: {e}")))
}

fn count_column(row: &AnyRow, column: &str) -> Result<u64, ProjectorError> {
    to_u64(row.try_get(column)?)
}

fn event_from_row(row: &AnyRow) -> Result<EventRecord, ProjectorError> {
    let status: String = row.try_get("status")?;
    let min_price_minor: Option<i64> = row.try_get("min_price_minor")?;
    let min_price_currency: Option<String> = row.try_get("min_price_currency")?;
    Ok(EventRecord {
        event_id: uuid_column(row, "event_id")?,
        venue_id: uuid_column(row, "venue_id")?,
        venue_name: row.try_get("venue_name")?,
        city: row.try_get("city")?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        category: row.try_get("category")?,
        status: parse_status(&status)
            .ok_or_else(|| ProjectorError::Corrupt(format!("event status `{status}`")))?,
        starts_at: from_text(&row.try_get::<String, _>("starts_at")?)?,
        ends_at: from_text(&row.try_get::<String, _>("ends_at")?)?,
        timezone: row.try_get("timezone")?,
        capacity: count_column(row, "capacity")?,
        confirmed: count_column(row, "confirmed")?,
        held: count_column(row, "held")?,
        offered: count_column(row, "offered")?,
        waitlist: count_column(row, "waitlist")?,
        available: count_column(row, "available")?,
        max_per_order: count_column(row, "max_per_order")?,
        min_price: match (min_price_minor, min_price_currency) {
            (Some(amount_minor), Some(currency)) => Some(Price {
                amount_minor,
                currency,
            }),
            _ => None,
        },
        published_at: from_opt_text(row.try_get("published_at")?)?,
        cancelled_at: from_opt_text(row.try_get("cancelled_at")?)?,
        last_position: count_column(row, "last_position")?,
    })
}

fn ticket_type_from_row(row: &AnyRow) -> Result<TicketTypeRecord, ProjectorError> {
    Ok(TicketTypeRecord {
        ticket_type_id: uuid_column(row, "ticket_type_id")?,
        name: row.try_get("name")?,
        price: Price {
            amount_minor: row.try_get("price_minor")?,
            currency: row.try_get("currency")?,
        },
        quantity: count_column(row, "quantity")?,
        confirmed: count_column(row, "confirmed")?,
        held: count_column(row, "held")?,
        offered: count_column(row, "offered")?,
        waitlist: count_column(row, "waitlist")?,
        available: count_column(row, "available")?,
        sales_start: from_opt_text(row.try_get("sales_start")?)?,
        sales_end: from_opt_text(row.try_get("sales_end")?)?,
    })
}

fn guest_from_row(row: &AnyRow) -> Result<GuestListEntry, ProjectorError> {
    let status: String = row.try_get("status")?;
    let answers: String = row.try_get("answers")?;
    let price_minor: Option<i64> = row.try_get("price_minor")?;
    let price_currency: Option<String> = row.try_get("price_currency")?;
    let payment_id: Option<String> = row.try_get("payment_id")?;
    let payment_status: Option<String> = row.try_get("payment_status")?;
    let payment = match (payment_id, payment_status) {
        (Some(payment_id), Some(status)) => Some(GuestPayment {
            payment_id,
            status: parse_payment_status(&status)
                .ok_or_else(|| ProjectorError::Corrupt(format!("payment status `{status}`")))?,
        }),
        _ => None,
    };
    Ok(GuestListEntry {
        registration_id: uuid_column(row, "registration_id")?,
        key: GuestListKey {
            registered_position: count_column(row, "registered_position")?,
        },
        status: parse_registration_status(&status)
            .ok_or_else(|| ProjectorError::Corrupt(format!("registration status `{status}`")))?,
        attendee: Attendee {
            name: row.try_get("attendee_name")?,
            email: row.try_get("attendee_email")?,
        },
        ticket_type_id: uuid_column(row, "ticket_type_id")?,
        ticket_type_name: row.try_get("ticket_type_name")?,
        quantity: count_column(row, "quantity")?,
        answers: serde_json::from_str(&answers)
            .map_err(|e| ProjectorError::Corrupt(format!("answers `{answers}`: {e}")))?,
        price: match (price_minor, price_currency) {
            (Some(amount_minor), Some(currency)) => Some(Price {
                amount_minor,
                currency,
            }),
            _ => None,
        },
        payment,
        hold_expires_at: from_opt_text(row.try_get("hold_expires_at")?)?,
        registered_at: from_text(&row.try_get::<String, _>("registered_at")?)?,
        confirmed_at: from_opt_text(row.try_get("confirmed_at")?)?,
        cancelled_at: from_opt_text(row.try_get("cancelled_at")?)?,
        expired_at: from_opt_text(row.try_get("expired_at")?)?,
        updated_at: from_text(&row.try_get::<String, _>("updated_at")?)?,
        tickets: Vec::new(),
    })
}

/// The API's spelling of a status.
pub fn status_name(status: EventStatus) -> &'static str {
    status_text(status)
}

/// The API's spelling of a registration status: `held`, `confirmed`, `cancelled`, `expired`.
pub fn registration_status_name(status: RegistrationStatus) -> &'static str {
    registration_status_text(status)
}

/// The inverse of [`registration_status_name`].
pub fn parse_registration_status_name(text: &str) -> Option<RegistrationStatus> {
    parse_registration_status(text)
}

/// The API's spelling of a payment status: `pending`, `declined`, `paid` (money received),
/// `refund_due`, `refunded`.
pub fn payment_status_name(status: PaymentStatus) -> &'static str {
    payment_status_text(status)
}
