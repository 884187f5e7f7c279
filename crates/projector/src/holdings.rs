//! "My tickets": the registrations an account holds, across events, with each event's title and
//! time, the ticket type, the status, and the tickets with their check-ins.
//!
//! Which account holds a registration comes from `RegistrationHolderRecorded` (the `holder`
//! column of `registrations`); registrations made without an account, or before holders were
//! recorded, belong to nobody here.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use marquee_domain::event::{EventStatus, PaymentStatus, RegistrationStatus};
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::apply::{parse_status, to_i64};
use crate::queries::{GuestTicket, Price};
use crate::read_models::to_u64;
use crate::registrations::{
    parse_payment_status, parse_registration_status, registration_status_text,
};
use crate::rows::{ID_CHUNK, placeholders};
use crate::time::{from_opt_text, from_text};
use crate::{ProjectorError, ReadModels};

/// Which of an account's registrations to read; see [`ReadModels::holdings`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HoldingsFilter {
    /// Only registrations in this status.
    pub status: Option<RegistrationStatus>,
    /// Only registrations made before this one (newest first; keyset pagination).
    pub before: Option<HoldingKey>,
    /// At most this many registrations.
    pub limit: u32,
}

/// A registration's place in "my tickets" order: newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HoldingKey {
    /// Position of the fact that made the registration.
    pub registered_position: u64,
}

/// The event a held registration is for, as the read models know it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldEvent {
    /// The event.
    pub event_id: Uuid,
    /// Its title; empty if the read models do not know the event.
    pub title: String,
    /// Draft, published or cancelled; `None` if unknown.
    pub status: Option<EventStatus>,
    /// Start, UTC; `None` if unknown.
    pub starts_at: Option<DateTime<Utc>>,
    /// End, UTC; `None` if unknown.
    pub ends_at: Option<DateTime<Utc>>,
    /// IANA time zone it is advertised in.
    pub timezone: String,
    /// The venue's name and city.
    pub venue_name: String,
    /// The venue's city.
    pub city: String,
}

/// One registration an account holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldRegistration {
    /// The registration.
    pub registration_id: Uuid,
    /// Its place in "my tickets" order.
    pub key: HoldingKey,
    /// The event it is for.
    pub event: HeldEvent,
    /// Its ticket type.
    pub ticket_type_id: Uuid,
    /// The ticket type's name; `None` if unknown.
    pub ticket_type_name: Option<String>,
    /// Held, confirmed, cancelled or expired.
    pub status: RegistrationStatus,
    /// Number of seats.
    pub quantity: u64,
    /// What the seats cost in all; `None` for free seats.
    pub price: Option<Price>,
    /// Where its payment is, once one is known.
    pub payment_status: Option<PaymentStatus>,
    /// When an unpaid hold expires (or expired).
    pub hold_expires_at: Option<DateTime<Utc>>,
    /// When it was made.
    pub registered_at: DateTime<Utc>,
    /// When it was confirmed, if it was.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// When it was cancelled, if it was.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// One ticket per seat, in the order they were issued, with its check-in.
    pub tickets: Vec<GuestTicket>,
}

impl ReadModels {
    /// The registrations `holder` (a user id) holds, newest first, at most `filter.limit`.
    pub async fn holdings(
        &self,
        holder: Uuid,
        filter: &HoldingsFilter,
    ) -> Result<Vec<HeldRegistration>, ProjectorError> {
        let mut sql = "SELECT r.registration_id, r.registered_position, r.event_id, r.status, \
            r.ticket_type_id, c.name AS ticket_type_name, r.quantity, r.price_minor, \
            r.price_currency, r.payment_status, r.hold_expires_at, r.registered_at, \
            r.confirmed_at, r.cancelled_at, e.title, e.status AS event_status, e.starts_at, \
            e.ends_at, e.timezone, e.venue_name, e.city \
            FROM registrations r \
            LEFT JOIN event_listing e ON e.event_id = r.event_id \
            LEFT JOIN event_capacity c \
            ON c.event_id = r.event_id AND c.ticket_type_id = r.ticket_type_id \
            WHERE r.holder = $1"
            .to_owned();
        let status = filter.status.map(registration_status_text);
        if status.is_some() {
            sql.push_str(" AND r.status = $2");
        }
        if filter.before.is_some() {
            sql.push_str(if status.is_some() {
                " AND r.registered_position < $3"
            } else {
                " AND r.registered_position < $2"
            });
        }
        sql.push_str(&format!(
            " ORDER BY r.registered_position DESC LIMIT {}",
            filter.limit
        ));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(holder.to_string());
        if let Some(status) = status {
            query = query.bind(status);
        }
        if let Some(before) = filter.before {
            query = query.bind(to_i64(before.registered_position));
        }
        let rows = query.fetch_all(self.pool()).await?;
        let mut held = rows
            .iter()
            .map(held_from_row)
            .collect::<Result<Vec<_>, _>>()?;

        let ids: Vec<String> = held.iter().map(|h| h.registration_id.to_string()).collect();
        let mut tickets: HashMap<String, Vec<GuestTicket>> = HashMap::new();
        for chunk in ids.chunks(ID_CHUNK) {
            let sql = format!(
                "SELECT registration_id, code, checked_in_at FROM tickets \
                 WHERE registration_id IN ({}) ORDER BY registration_id, seat",
                placeholders(chunk.len(), 1)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
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
        for registration in &mut held {
            registration.tickets = tickets
                .remove(&registration.registration_id.to_string())
                .unwrap_or_default();
        }
        Ok(held)
    }
}

fn held_from_row(row: &AnyRow) -> Result<HeldRegistration, ProjectorError> {
    let uuid = |column: &str| -> Result<Uuid, ProjectorError> {
        let text: String = row.try_get(column)?;
        Uuid::parse_str(&text)
            .map_err(|e| ProjectorError::Corrupt(format!("{column} `{text}`: {e}")))
    };
    let status: String = row.try_get("status")?;
    let event_status: Option<String> = row.try_get("event_status")?;
    let payment_status: Option<String> = row.try_get("payment_status")?;
    let price_minor: Option<i64> = row.try_get("price_minor")?;
    let price_currency: Option<String> = row.try_get("price_currency")?;
    Ok(HeldRegistration {
        registration_id: uuid("registration_id")?,
        key: HoldingKey {
            registered_position: to_u64(row.try_get("registered_position")?)?,
        },
        event: HeldEvent {
            event_id: uuid("event_id")?,
            title: row
                .try_get::<Option<String>, _>("title")?
                .unwrap_or_default(),
            status: event_status.as_deref().and_then(parse_status),
            starts_at: from_opt_text(row.try_get("starts_at")?)?,
            ends_at: from_opt_text(row.try_get("ends_at")?)?,
            timezone: row
                .try_get::<Option<String>, _>("timezone")?
                .unwrap_or_default(),
            venue_name: row
                .try_get::<Option<String>, _>("venue_name")?
                .unwrap_or_default(),
            city: row
                .try_get::<Option<String>, _>("city")?
                .unwrap_or_default(),
        },
        ticket_type_id: uuid("ticket_type_id")?,
        ticket_type_name: row.try_get("ticket_type_name")?,
        status: parse_registration_status(&status)
            .ok_or_else(|| ProjectorError::Corrupt(format!("registration status `{status}`")))?,
        quantity: to_u64(row.try_get("quantity")?)?,
        price: match (price_minor, price_currency) {
            (Some(amount_minor), Some(currency)) => Some(Price {
                amount_minor,
                currency,
            }),
            _ => None,
        },
        payment_status: payment_status
            .map(|text| {
                parse_payment_status(&text)
                    .ok_or_else(|| ProjectorError::Corrupt(format!("payment status `{text}`")))
            })
            .transpose()?,
        hold_expires_at: from_opt_text(row.try_get("hold_expires_at")?)?,
        registered_at: from_text(&row.try_get::<String, _>("registered_at")?)?,
        confirmed_at: from_opt_text(row.try_get("confirmed_at")?)?,
        cancelled_at: from_opt_text(row.try_get("cancelled_at")?)?,
        tickets: Vec::new(),
    })
}
