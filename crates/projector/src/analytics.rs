//! Typed reads of the analytics tables for one event (the query API's
//! `GET /v1/events/{id}/analytics`). The tables themselves, and what feeds each column, are in
//! `docs/analytics.md` and the `read_side` migration; BI tools may read them directly.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use marquee_domain::event::EventStatus;
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::apply::parse_status;
use crate::queries::Price;
use crate::read_models::to_u64;
use crate::time::from_text;
use crate::{ProjectorError, ReadModels};

/// Everything the analytics tables hold about one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventAnalytics {
    /// The event (`analytics_events`).
    pub event: AnalyticsEvent,
    /// Its ticket types in the order they were added (`analytics_ticket_types`).
    pub ticket_types: Vec<TicketTypeFigures>,
    /// Per UTC day, ticket type and currency, oldest first (`analytics_sales_daily`).
    pub sales: Vec<DailySales>,
    /// Refunds by reason and currency (from `analytics_payments`), by reason then currency.
    pub refunds: Vec<RefundFigures>,
    /// Tickets let in per UTC hour and ticket type, oldest first (`analytics_check_ins`).
    pub check_ins: Vec<HourlyCheckIns>,
    /// Every question the event asked, in the order of its current questions, then those no
    /// longer asked (`analytics_questions`, `analytics_answers`).
    pub questions: Vec<QuestionFigures>,
}

/// An `analytics_events` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyticsEvent {
    /// The event.
    pub event_id: Uuid,
    /// Its title now.
    pub title: String,
    /// Draft, published or cancelled.
    pub status: EventStatus,
    /// Start, UTC.
    pub starts_at: DateTime<Utc>,
    /// End, UTC.
    pub ends_at: DateTime<Utc>,
    /// IANA time zone it is advertised in (days and hours here are UTC).
    pub timezone: String,
    /// Event-wide seat limit.
    pub capacity: u64,
    /// Seats confirmed now.
    pub seats_confirmed: u64,
    /// Seats held for payment now.
    pub seats_held: u64,
}

/// An `analytics_ticket_types` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketTypeFigures {
    /// The ticket type.
    pub ticket_type_id: Uuid,
    /// Its name.
    pub name: String,
    /// Price of one seat.
    pub price: Price,
    /// Seats that can ever be confirmed.
    pub quantity: u64,
    /// Seats confirmed now.
    pub seats_confirmed: u64,
    /// Seats held for payment now.
    pub seats_held: u64,
    /// Seats a new reservation could take now.
    pub seats_available: u64,
}

/// The counters of one `analytics_sales_daily` row; see `docs/analytics.md` for each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SalesCounts {
    /// Registrations confirmed (free, or paid holds).
    pub orders_confirmed: u64,
    /// Their seats.
    pub seats_confirmed: u64,
    /// Their price, in minor units.
    pub revenue_minor: i64,
    /// Paid holds placed.
    pub holds_placed: u64,
    /// Their seats.
    pub seats_held: u64,
    /// Holds that ran out unpaid.
    pub holds_expired: u64,
    /// Their seats.
    pub seats_expired: u64,
    /// Holds cancelled before payment.
    pub holds_cancelled: u64,
    /// Confirmed registrations cancelled.
    pub orders_cancelled: u64,
    /// Their seats.
    pub seats_cancelled: u64,
    /// Their price, in minor units.
    pub cancelled_revenue_minor: i64,
    /// Payments received.
    pub payments_received: u64,
    /// Money received, in minor units.
    pub received_minor: i64,
    /// Refunds that became due.
    pub refunds_due: u64,
    /// Money owed back, in minor units.
    pub refund_due_minor: i64,
    /// Refunds the provider completed.
    pub refunds_completed: u64,
    /// Money returned, in minor units.
    pub refunded_minor: i64,
}

/// One `analytics_sales_daily` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailySales {
    /// The UTC day.
    pub day: NaiveDate,
    /// The ticket type.
    pub ticket_type_id: Uuid,
    /// The currency of the money counted (the ticket type's, for free seats).
    pub currency: String,
    /// What happened that day.
    pub counts: SalesCounts,
}

/// Refunds of one reason in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundFigures {
    /// Why (`attendee_cancelled`, `event_cancelled`, `late_payment`, `duplicate_payment`,
    /// `registration_cancelled`, `amount_mismatch`).
    pub reason: String,
    /// The refunds' currency.
    pub currency: String,
    /// Refunds due.
    pub due: u64,
    /// Money owed back, in minor units.
    pub due_minor: i64,
    /// Of those, refunds completed.
    pub completed: u64,
    /// Money returned, in minor units.
    pub completed_minor: i64,
}

/// One `analytics_check_ins` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourlyCheckIns {
    /// The start of the UTC hour of the scans.
    pub hour: DateTime<Utc>,
    /// The tickets' ticket type.
    pub ticket_type_id: Uuid,
    /// Tickets let in during that hour.
    pub check_ins: u64,
    /// Of those, check-ins reverted since.
    pub reverted: u64,
}

/// One `analytics_questions` row with its answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestionFigures {
    /// The question's id.
    pub question_id: String,
    /// What was asked.
    pub label: String,
    /// `text`, `single_choice`, `multiple_choice`, `country` or `age_range`.
    pub kind: String,
    /// Whether the event asks it now.
    pub asked: bool,
    /// Confirmed registrations that answered it.
    pub answered: u64,
    /// Confirmed registrations per answer, most given first (then by answer); empty for free
    /// text, which is never stored.
    pub answers: Vec<AnswerCount>,
}

/// One `analytics_answers` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerCount {
    /// The option, country code or age range.
    pub answer: String,
    /// Confirmed registrations that gave it.
    pub registrations: u64,
}

impl ReadModels {
    /// The analytics of one event, or `None` if the read models do not know it.
    pub async fn event_analytics(
        &self,
        event_id: Uuid,
    ) -> Result<Option<EventAnalytics>, ProjectorError> {
        let id = event_id.to_string();
        let Some(row) = sqlx::query(
            "SELECT event_id, title, status, starts_at, ends_at, timezone, capacity, \
             seats_confirmed, seats_held FROM analytics_events WHERE event_id = $1",
        )
        .bind(&id)
        .fetch_optional(self.pool())
        .await?
        else {
            return Ok(None);
        };
        let status: String = row.try_get("status")?;
        let event = AnalyticsEvent {
            event_id,
            title: row.try_get("title")?,
            status: parse_status(&status)
                .ok_or_else(|| ProjectorError::Corrupt(format!("event status `{status}`")))?,
            starts_at: from_text(&row.try_get::<String, _>("starts_at")?)?,
            ends_at: from_text(&row.try_get::<String, _>("ends_at")?)?,
            timezone: row.try_get("timezone")?,
            capacity: count(&row, "capacity")?,
            seats_confirmed: count(&row, "seats_confirmed")?,
            seats_held: count(&row, "seats_held")?,
        };

        let ticket_types = sqlx::query(
            "SELECT ticket_type_id, name, price_minor, currency, quantity, seats_confirmed, \
             seats_held, seats_available FROM analytics_ticket_types WHERE event_id = $1 \
             ORDER BY added_position, ticket_type_id",
        )
        .bind(&id)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|row| {
            Ok(TicketTypeFigures {
                ticket_type_id: uuid(row, "ticket_type_id")?,
                name: row.try_get("name")?,
                price: Price {
                    amount_minor: row.try_get("price_minor")?,
                    currency: row.try_get("currency")?,
                },
                quantity: count(row, "quantity")?,
                seats_confirmed: count(row, "seats_confirmed")?,
                seats_held: count(row, "seats_held")?,
                seats_available: count(row, "seats_available")?,
            })
        })
        .collect::<Result<Vec<_>, ProjectorError>>()?;

        let sales = sqlx::query(
            "SELECT day, ticket_type_id, currency, orders_confirmed, seats_confirmed, \
             revenue_minor, holds_placed, seats_held, holds_expired, seats_expired, \
             holds_cancelled, orders_cancelled, seats_cancelled, cancelled_revenue_minor, \
             payments_received, received_minor, refunds_due, refund_due_minor, \
             refunds_completed, refunded_minor FROM analytics_sales_daily WHERE event_id = $1 \
             ORDER BY day, ticket_type_id, currency",
        )
        .bind(&id)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(daily_sales)
        .collect::<Result<Vec<_>, ProjectorError>>()?;

        let mut refunds: BTreeMap<(String, String), RefundFigures> = BTreeMap::new();
        for row in sqlx::query(
            "SELECT refund_reason, currency, refund_due_minor, refunded_at \
             FROM analytics_payments WHERE event_id = $1 AND refund_due_at IS NOT NULL",
        )
        .bind(&id)
        .fetch_all(self.pool())
        .await?
        {
            let reason: Option<String> = row.try_get("refund_reason")?;
            let reason = reason.unwrap_or_default();
            let currency: String = row.try_get("currency")?;
            let amount: i64 = row.try_get("refund_due_minor")?;
            let completed = row.try_get::<Option<String>, _>("refunded_at")?.is_some();
            let figures = refunds
                .entry((reason.clone(), currency.clone()))
                .or_insert_with(|| RefundFigures {
                    reason,
                    currency,
                    due: 0,
                    due_minor: 0,
                    completed: 0,
                    completed_minor: 0,
                });
            figures.due += 1;
            figures.due_minor += amount;
            if completed {
                figures.completed += 1;
                figures.completed_minor += amount;
            }
        }

        let check_ins = sqlx::query(
            "SELECT hour, ticket_type_id, check_ins, reverted FROM analytics_check_ins \
             WHERE event_id = $1 ORDER BY hour, ticket_type_id",
        )
        .bind(&id)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|row| {
            let hour: String = row.try_get("hour")?;
            Ok(HourlyCheckIns {
                hour: from_text(&hour)?,
                ticket_type_id: uuid(row, "ticket_type_id")?,
                check_ins: count(row, "check_ins")?,
                reverted: count(row, "reverted")?,
            })
        })
        .collect::<Result<Vec<_>, ProjectorError>>()?;

        let mut answers: BTreeMap<String, Vec<AnswerCount>> = BTreeMap::new();
        for row in sqlx::query(
            "SELECT question_id, answer, registrations FROM analytics_answers \
             WHERE event_id = $1 AND registrations > 0 \
             ORDER BY question_id, registrations DESC, answer",
        )
        .bind(&id)
        .fetch_all(self.pool())
        .await?
        {
            answers
                .entry(row.try_get("question_id")?)
                .or_default()
                .push(AnswerCount {
                    answer: row.try_get("answer")?,
                    registrations: count(&row, "registrations")?,
                });
        }
        let questions = sqlx::query(
            "SELECT question_id, label, kind, asked, answered FROM analytics_questions \
             WHERE event_id = $1 ORDER BY asked DESC, ordinal, question_id",
        )
        .bind(&id)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|row| {
            let question_id: String = row.try_get("question_id")?;
            Ok(QuestionFigures {
                answers: answers.remove(&question_id).unwrap_or_default(),
                question_id,
                label: row.try_get("label")?,
                kind: row.try_get("kind")?,
                asked: row.try_get::<i64, _>("asked")? == 1,
                answered: count(row, "answered")?,
            })
        })
        .collect::<Result<Vec<_>, ProjectorError>>()?;

        Ok(Some(EventAnalytics {
            event,
            ticket_types,
            sales,
            refunds: refunds.into_values().collect(),
            check_ins,
            questions,
        }))
    }
}

fn daily_sales(row: &AnyRow) -> Result<DailySales, ProjectorError> {
    let day: String = row.try_get("day")?;
    let money = |column: &str| -> Result<i64, ProjectorError> { Ok(row.try_get(column)?) };
    Ok(DailySales {
        day: NaiveDate::parse_from_str(&day, "%Y-%m-%d")
            .map_err(|e| ProjectorError::Corrupt(format!("day `{day}`: {e}")))?,
        ticket_type_id: uuid(row, "ticket_type_id")?,
        currency: row.try_get("currency")?,
        counts: SalesCounts {
            orders_confirmed: count(row, "orders_confirmed")?,
            seats_confirmed: count(row, "seats_confirmed")?,
            revenue_minor: money("revenue_minor")?,
            holds_placed: count(row, "holds_placed")?,
            seats_held: count(row, "seats_held")?,
            holds_expired: count(row, "holds_expired")?,
            seats_expired: count(row, "seats_expired")?,
            holds_cancelled: count(row, "holds_cancelled")?,
            orders_cancelled: count(row, "orders_cancelled")?,
            seats_cancelled: count(row, "seats_cancelled")?,
            cancelled_revenue_minor: money("cancelled_revenue_minor")?,
            payments_received: count(row, "payments_received")?,
            received_minor: money("received_minor")?,
            refunds_due: count(row, "refunds_due")?,
            refund_due_minor: money("refund_due_minor")?,
            refunds_completed: count(row, "refunds_completed")?,
            refunded_minor: money("refunded_minor")?,
        },
    })
}

fn count(row: &AnyRow, column: &str) -> Result<u64, ProjectorError> {
    to_u64(row.try_get(column)?)
}

fn uuid(row: &AnyRow, column: &str) -> Result<Uuid, ProjectorError> {
    let text: String = row.try_get(column)?;
    Uuid::parse_str(&text).map_err(|e| ProjectorError::Corrupt(format!("{column} `{text}`: {e}")))
}
