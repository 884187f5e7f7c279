//! Typed reads of the read models, for the query API. The SQL lives beside the schema it reads;
//! callers get plain structs and never see a column name.

use chrono::{DateTime, Utc};
use marquee_domain::event::EventStatus;
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::apply::{parse_status, search_key, status_text};
use crate::read_models::to_u64;
use crate::time::{from_opt_text, from_text, to_text};
use crate::{ProjectorError, ReadModels};

/// Which events to list; see [`ReadModels::list_events`].
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
    /// Only events after this one in listing order (keyset pagination).
    pub after: Option<ListingKey>,
    /// At most this many events.
    pub limit: u32,
}

/// An event's place in listing order: by start time, then id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListingKey {
    /// When the event starts.
    pub starts_at: DateTime<Utc>,
    /// The event's id, breaking ties between events starting together.
    pub event_id: Uuid,
}

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
    /// `capacity - confirmed`, never below 0.
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
    /// This event's place in listing order.
    pub fn listing_key(&self) -> ListingKey {
        ListingKey {
            starts_at: self.starts_at,
            event_id: self.event_id,
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
    /// `min(quantity - confirmed, event capacity - event confirmed)`, never below 0.
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

/// A projection's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionCheckpoint {
    /// e.g. [`crate::PROJECTION`].
    pub name: String,
    /// Its checkpoint.
    pub applied_position: u64,
}

const EVENT_COLUMNS: &str = "event_id, venue_id, venue_name, city, title, description, \
    category, status, starts_at, ends_at, timezone, capacity, confirmed, available, \
    max_per_order, min_price_minor, min_price_currency, published_at, cancelled_at, last_position";

impl ReadModels {
    /// Published and cancelled events (never drafts) matching `filter`, ordered by start time then
    /// id, at most `filter.limit`.
    pub async fn list_events(
        &self,
        filter: &ListingFilter,
    ) -> Result<Vec<EventRecord>, ProjectorError> {
        let mut sql = format!(
            "SELECT {EVENT_COLUMNS} FROM event_listing WHERE status IN ('published', 'cancelled')"
        );
        let mut params: Vec<String> = Vec::new();
        let param = |value: String, params: &mut Vec<String>| {
            params.push(value);
            format!("${}", params.len())
        };
        if let Some(from) = filter.from {
            let p = param(to_text(from), &mut params);
            sql.push_str(&format!(" AND starts_at >= {p}"));
        }
        if let Some(to) = filter.to {
            let p = param(to_text(to), &mut params);
            sql.push_str(&format!(" AND starts_at < {p}"));
        }
        if let Some(category) = &filter.category {
            let p = param(search_key(category), &mut params);
            sql.push_str(&format!(" AND category_key = {p}"));
        }
        if let Some(city) = &filter.city {
            let p = param(search_key(city), &mut params);
            sql.push_str(&format!(" AND city_key = {p}"));
        }
        if let Some(after) = filter.after {
            let at = param(to_text(after.starts_at), &mut params);
            let id = param(after.event_id.to_string(), &mut params);
            sql.push_str(&format!(
                " AND (starts_at > {at} OR (starts_at = {at} AND event_id > {id}))"
            ));
        }
        sql.push_str(&format!(
            " ORDER BY starts_at, event_id LIMIT {}",
            filter.limit
        ));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in params {
            query = query.bind(value);
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
            "SELECT ticket_type_id, name, price_minor, currency, quantity, confirmed, available, \
             sales_start, sales_end FROM event_capacity WHERE event_id = $1 \
             ORDER BY added_position, ticket_type_id",
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
        available: count_column(row, "available")?,
        sales_start: from_opt_text(row.try_get("sales_start")?)?,
        sales_end: from_opt_text(row.try_get("sales_end")?)?,
    })
}

/// The API's spelling of a status.
pub fn status_name(status: EventStatus) -> &'static str {
    status_text(status)
}
