//! `/v1/events/{id}/analytics`: an event's sales, money, cancellations and refunds, check-ins
//! over time and the answers to its registration questions, from the analytics tables the
//! projector keeps (`docs/analytics.md`; BI tools may read those tables directly).
//!
//! JSON by default; as CSV (`format=csv` or `Accept: text/csv`) one section at a time, chosen
//! with `section=` (see [`Section`]), its columns named as the JSON fields are. Days and hours
//! are UTC. Money is in minor units, always beside its currency: amounts of different
//! currencies are never added together.
//!
//! **Access.** Owners, organizers and analysts of the event's organization (see
//! [`crate::access`]); door staff and auditors get `403`, outsiders `404`. Nothing here is
//! personal data: counts and sums, and answers only to closed questions (choices, countries,
//! age ranges), never free text.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use marquee_domain::EventId;
use marquee_projector::analytics::{EventAnalytics, SalesCounts};
use marquee_projector::queries::status_name;
use serde::Serialize;
use tracing::instrument;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::access::{ANALYTICS, authorize};
use crate::error::Problem;
use crate::events::MoneyJson;
use crate::openapi::names;
use crate::{ApiError, QueryState, csv};

pub(crate) fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new().routes(routes!(event_analytics))
}

/// The sections a CSV answer can hold (`section=`).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(
    dead_code,
    reason = "describes the names `Section::ALL` parses; never built"
)]
enum SectionName {
    SalesPerDay,
    SalesPerTicketType,
    TicketTypes,
    Revenue,
    Refunds,
    CheckIns,
    Answers,
}

/// The sections a CSV answer can hold, one per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    /// Per UTC day, ticket type and currency: every sales counter.
    SalesPerDay,
    /// Per ticket type and currency: every sales counter, summed over the days.
    SalesPerTicketType,
    /// Per ticket type: price, quantity, seats now and sell-through.
    TicketTypes,
    /// Per currency: booked, cancelled, received, refunded and net money.
    Revenue,
    /// Per refund reason and currency: refunds due and completed.
    Refunds,
    /// Per UTC hour: tickets let in, reverted, cumulative, and the check-in rate.
    CheckIns,
    /// Per question and answer: confirmed registrations.
    Answers,
}

impl Section {
    const ALL: [(&'static str, Section); 7] = [
        ("sales_per_day", Section::SalesPerDay),
        ("sales_per_ticket_type", Section::SalesPerTicketType),
        ("ticket_types", Section::TicketTypes),
        ("revenue", Section::Revenue),
        ("refunds", Section::Refunds),
        ("check_ins", Section::CheckIns),
        ("answers", Section::Answers),
    ];

    fn parse(text: &str) -> Result<Section, ApiError> {
        Section::ALL
            .iter()
            .find(|(name, _)| *name == text.trim())
            .map(|(_, section)| *section)
            .ok_or_else(section_needed)
    }

    fn name(self) -> &'static str {
        Section::ALL
            .iter()
            .find(|(_, section)| *section == self)
            .map_or("section", |(name, _)| name)
    }
}

fn section_needed() -> ApiError {
    ApiError::validation(
        "section",
        format!(
            "a CSV answer holds one section: one of {}",
            Section::ALL
                .iter()
                .map(|(name, _)| *name)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
}

/// An event's analytics: sales, money, cancellations, refunds, check-ins and answers.
///
/// From the analytics tables the projector keeps. JSON by default; as CSV (`format=csv`, or
/// without `format` `Accept: text/csv`) one section at a time, chosen with `section` (required
/// then), its columns named as the JSON fields are. Days and hours are UTC. Money is in minor
/// units, always beside its currency: amounts of different currencies are never added together.
/// For the owners, organizers and analysts of the event's organization (401 anonymous, 404
/// outside it, 403 for other roles). Nothing here is personal data.
#[utoipa::path(
    get,
    path = "/v1/events/{id}/analytics",
    tag = "organizers",
    params(
        ("id" = Uuid, Path, description = "The event's id."),
        ("format" = inline(Option<names::Format>), Query,
            description = "`json` (default, unless `Accept` names `text/csv`) or `csv`."),
        ("section" = inline(Option<SectionName>), Query,
            description = "The section a CSV answer holds (required for CSV)."),
    ),
    responses(
        (status = 200, description = "The event's analytics, or one section as CSV.",
            content(
                (AnalyticsJson = "application/json"),
                (String = "text/csv"),
            )),
        (status = 400, description = "A parameter is unknown, repeated or malformed, or CSV was \
            asked for without `section` (`validation_failed`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credentials (`unauthorized`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller's role may not read analytics (`forbidden`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event, or not one of the caller's organization \
            (`not_found`).", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])),
)]
#[instrument(skip(state, headers, query))]
async fn event_analytics(
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
        ANALYTICS,
    )
    .await?;
    let Query(pairs) = query.map_err(|e| ApiError::validation("query", e.body_text()))?;
    let (mut format, mut section) = (None, None);
    for (name, value) in pairs {
        let slot = match name.as_str() {
            "format" => &mut format,
            "section" => &mut section,
            _ => return Err(ApiError::UnknownParameter(name)),
        };
        if slot.is_some() {
            let field = if name == "format" {
                "format"
            } else {
                "section"
            };
            return Err(ApiError::validation(field, "must be given at most once"));
        }
        *slot = Some(value);
    }
    let section = section.as_deref().map(Section::parse).transpose()?;
    let as_csv = csv::wanted(&headers, format.as_deref())?;
    let analytics = state
        .read
        .event_analytics(event_id)
        .await?
        .ok_or(ApiError::NotFound("event"))?;
    let report = Report::of(&analytics);
    if !as_csv {
        return Ok(axum::Json(report.json(&analytics)).into_response());
    }
    let section = section.ok_or_else(section_needed)?;
    let (columns, rows) = report.table(&analytics, section);
    let mut body = csv::record(columns);
    for row in rows {
        body.push_str(&csv::record(row));
    }
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(csv::CONTENT_TYPE),
            ),
            (
                header::CONTENT_DISPOSITION,
                csv::attachment(&format!("analytics-{event_id}-{}.csv", section.name())),
            ),
        ],
        body,
    )
        .into_response())
}

/// The counters of [`SalesCounts`] by name, in the order of `analytics_sales_daily`.
fn counters(c: &SalesCounts) -> [(&'static str, i64); 17] {
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    [
        ("orders_confirmed", n(c.orders_confirmed)),
        ("seats_confirmed", n(c.seats_confirmed)),
        ("revenue_minor", c.revenue_minor),
        ("holds_placed", n(c.holds_placed)),
        ("seats_held", n(c.seats_held)),
        ("holds_expired", n(c.holds_expired)),
        ("seats_expired", n(c.seats_expired)),
        ("holds_cancelled", n(c.holds_cancelled)),
        ("orders_cancelled", n(c.orders_cancelled)),
        ("seats_cancelled", n(c.seats_cancelled)),
        ("cancelled_revenue_minor", c.cancelled_revenue_minor),
        ("payments_received", n(c.payments_received)),
        ("received_minor", c.received_minor),
        ("refunds_due", n(c.refunds_due)),
        ("refund_due_minor", c.refund_due_minor),
        ("refunds_completed", n(c.refunds_completed)),
        ("refunded_minor", c.refunded_minor),
    ]
}

fn add(total: &mut SalesCounts, c: &SalesCounts) {
    total.orders_confirmed += c.orders_confirmed;
    total.seats_confirmed += c.seats_confirmed;
    total.revenue_minor += c.revenue_minor;
    total.holds_placed += c.holds_placed;
    total.seats_held += c.seats_held;
    total.holds_expired += c.holds_expired;
    total.seats_expired += c.seats_expired;
    total.holds_cancelled += c.holds_cancelled;
    total.orders_cancelled += c.orders_cancelled;
    total.seats_cancelled += c.seats_cancelled;
    total.cancelled_revenue_minor += c.cancelled_revenue_minor;
    total.payments_received += c.payments_received;
    total.received_minor += c.received_minor;
    total.refunds_due += c.refunds_due;
    total.refund_due_minor += c.refund_due_minor;
    total.refunds_completed += c.refunds_completed;
    total.refunded_minor += c.refunded_minor;
}

/// `part / whole`, rounded to four places; `None` when `whole` is 0.
fn ratio(part: u64, whole: u64) -> Option<f64> {
    #[allow(
        clippy::cast_precision_loss,
        reason = "seat counts are far below 2^52; the ratio is rounded anyway"
    )]
    let r = (whole > 0).then(|| part as f64 / whole as f64);
    r.map(|r| (r * 10_000.0).round() / 10_000.0)
}

/// One hour of check-ins over all ticket types.
struct Hour {
    hour: String,
    check_ins: u64,
    reverted: u64,
    /// Tickets let in up to the end of this hour (and not reverted since).
    cumulative: u64,
}

/// The figures derived from the tables: totals the JSON and CSV answers share.
struct Report {
    /// Per (ticket type, currency), summed over the days.
    per_ticket_type: BTreeMap<(Uuid, String), SalesCounts>,
    /// Per currency, summed over days and ticket types.
    per_currency: BTreeMap<String, SalesCounts>,
    /// Everything summed (seat and order counts only mean anything here).
    total: SalesCounts,
    hours: Vec<Hour>,
    /// Tickets let in and not reverted.
    checked_in: u64,
    /// Seats confirmed now over all ticket types, and their quantity.
    confirmed: u64,
    quantity: u64,
}

impl Report {
    fn of(a: &EventAnalytics) -> Report {
        let mut per_ticket_type: BTreeMap<(Uuid, String), SalesCounts> = BTreeMap::new();
        let mut per_currency: BTreeMap<String, SalesCounts> = BTreeMap::new();
        let mut total = SalesCounts::default();
        for day in &a.sales {
            add(
                per_ticket_type
                    .entry((day.ticket_type_id, day.currency.clone()))
                    .or_default(),
                &day.counts,
            );
            add(
                per_currency.entry(day.currency.clone()).or_default(),
                &day.counts,
            );
            add(&mut total, &day.counts);
        }
        let mut by_hour: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for row in &a.check_ins {
            let hour = row.hour.format("%Y-%m-%dT%H:00:00Z").to_string();
            let entry = by_hour.entry(hour).or_default();
            entry.0 += row.check_ins;
            entry.1 += row.reverted;
        }
        let mut cumulative = 0;
        let hours = by_hour
            .into_iter()
            .map(|(hour, (check_ins, reverted))| {
                cumulative += check_ins.saturating_sub(reverted);
                Hour {
                    hour,
                    check_ins,
                    reverted,
                    cumulative,
                }
            })
            .collect();
        Report {
            per_ticket_type,
            per_currency,
            total,
            hours,
            checked_in: cumulative,
            confirmed: a.ticket_types.iter().map(|t| t.seats_confirmed).sum(),
            quantity: a.ticket_types.iter().map(|t| t.quantity).sum(),
        }
    }

    fn ticket_type_name(a: &EventAnalytics, id: Uuid) -> String {
        a.ticket_types
            .iter()
            .find(|t| t.ticket_type_id == id)
            .map(|t| t.name.clone())
            .unwrap_or_default()
    }

    /// The revenue of one currency: `(field, amount)`.
    fn revenue(c: &SalesCounts) -> [(&'static str, i64); 6] {
        [
            ("booked_minor", c.revenue_minor),
            ("cancelled_minor", c.cancelled_revenue_minor),
            ("received_minor", c.received_minor),
            ("refund_due_minor", c.refund_due_minor),
            ("refunded_minor", c.refunded_minor),
            ("net_minor", c.received_minor - c.refund_due_minor),
        ]
    }

    fn json(&self, a: &EventAnalytics) -> AnalyticsJson {
        AnalyticsJson {
            event_id: a.event.event_id,
            title: a.event.title.clone(),
            status: status_name(a.event.status),
            starts_at: a.event.starts_at,
            ends_at: a.event.ends_at,
            timezone: a.event.timezone.clone(),
            buckets_time_zone: "UTC",
            capacity: a.event.capacity,
            sell_through: SellThrough {
                seats_confirmed: self.confirmed,
                quantity: self.quantity,
                ratio: ratio(self.confirmed, self.quantity),
            },
            ticket_types: a
                .ticket_types
                .iter()
                .map(|t| TicketTypeFiguresJson {
                    ticket_type_id: t.ticket_type_id,
                    name: t.name.clone(),
                    price: MoneyJson {
                        amount_minor: t.price.amount_minor,
                        currency: t.price.currency.clone(),
                    },
                    quantity: t.quantity,
                    seats_confirmed: t.seats_confirmed,
                    seats_held: t.seats_held,
                    seats_available: t.seats_available,
                    sell_through: ratio(t.seats_confirmed, t.quantity),
                })
                .collect(),
            sales_per_day: a
                .sales
                .iter()
                .map(|d| DaySales {
                    day: d.day,
                    ticket_type_id: d.ticket_type_id,
                    currency: d.currency.clone(),
                    counts: SalesCountsJson::from(&d.counts),
                })
                .collect(),
            sales_per_ticket_type: self
                .per_ticket_type
                .iter()
                .map(|((id, currency), c)| TicketTypeSales {
                    ticket_type_id: *id,
                    name: Self::ticket_type_name(a, *id),
                    currency: currency.clone(),
                    counts: SalesCountsJson::from(c),
                })
                .collect(),
            revenue: self
                .per_currency
                .iter()
                .map(|(currency, c)| RevenueJson {
                    currency: currency.clone(),
                    booked_minor: c.revenue_minor,
                    cancelled_minor: c.cancelled_revenue_minor,
                    received_minor: c.received_minor,
                    refund_due_minor: c.refund_due_minor,
                    refunded_minor: c.refunded_minor,
                    net_minor: c.received_minor - c.refund_due_minor,
                })
                .collect(),
            cancellations: Cancellations {
                orders_cancelled: self.total.orders_cancelled,
                seats_cancelled: self.total.seats_cancelled,
                holds_cancelled: self.total.holds_cancelled,
                holds_expired: self.total.holds_expired,
                seats_expired: self.total.seats_expired,
            },
            refunds: a
                .refunds
                .iter()
                .map(|r| RefundsJson {
                    reason: r.reason.clone(),
                    currency: r.currency.clone(),
                    due: r.due,
                    due_minor: r.due_minor,
                    completed: r.completed,
                    completed_minor: r.completed_minor,
                })
                .collect(),
            check_ins: CheckIns {
                seats_confirmed: self.confirmed,
                checked_in: self.checked_in,
                rate: ratio(self.checked_in, self.confirmed),
                per_hour: self
                    .hours
                    .iter()
                    .map(|h| HourJson {
                        hour: h.hour.clone(),
                        check_ins: h.check_ins,
                        reverted: h.reverted,
                        net: h.check_ins.saturating_sub(h.reverted),
                        cumulative: h.cumulative,
                        rate: ratio(h.cumulative, self.confirmed),
                    })
                    .collect(),
            },
            questions: a
                .questions
                .iter()
                .map(|q| QuestionJson {
                    question_id: q.question_id.clone(),
                    label: q.label.clone(),
                    kind: q.kind.clone(),
                    asked: q.asked,
                    answered: q.answered,
                    answers: q
                        .answers
                        .iter()
                        .map(|c| AnswerCountJson {
                            answer: c.answer.clone(),
                            registrations: c.registrations,
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// One section as a table: its column names and rows.
    fn table(&self, a: &EventAnalytics, section: Section) -> (Vec<String>, Vec<Vec<String>>) {
        let names = |fixed: &[&str], counted: &[(&'static str, i64)]| -> Vec<String> {
            fixed
                .iter()
                .copied()
                .chain(counted.iter().map(|(name, _)| *name))
                .map(str::to_owned)
                .collect()
        };
        let values = |fixed: Vec<String>, counted: &[(&'static str, i64)]| -> Vec<String> {
            fixed
                .into_iter()
                .chain(counted.iter().map(|(_, v)| v.to_string()))
                .collect()
        };
        let optional = |r: Option<f64>| r.map(|r| r.to_string()).unwrap_or_default();
        let sales_columns = counters(&SalesCounts::default());
        match section {
            Section::SalesPerDay => (
                names(
                    &["day", "ticket_type_id", "ticket_type_name", "currency"],
                    &sales_columns,
                ),
                a.sales
                    .iter()
                    .map(|d| {
                        values(
                            vec![
                                d.day.to_string(),
                                d.ticket_type_id.to_string(),
                                Self::ticket_type_name(a, d.ticket_type_id),
                                d.currency.clone(),
                            ],
                            &counters(&d.counts),
                        )
                    })
                    .collect(),
            ),
            Section::SalesPerTicketType => (
                names(
                    &["ticket_type_id", "ticket_type_name", "currency"],
                    &sales_columns,
                ),
                self.per_ticket_type
                    .iter()
                    .map(|((id, currency), c)| {
                        values(
                            vec![
                                id.to_string(),
                                Self::ticket_type_name(a, *id),
                                currency.clone(),
                            ],
                            &counters(c),
                        )
                    })
                    .collect(),
            ),
            Section::TicketTypes => (
                [
                    "ticket_type_id",
                    "name",
                    "price_minor",
                    "currency",
                    "quantity",
                    "seats_confirmed",
                    "seats_held",
                    "seats_available",
                    "sell_through",
                ]
                .map(str::to_owned)
                .to_vec(),
                a.ticket_types
                    .iter()
                    .map(|t| {
                        vec![
                            t.ticket_type_id.to_string(),
                            t.name.clone(),
                            t.price.amount_minor.to_string(),
                            t.price.currency.clone(),
                            t.quantity.to_string(),
                            t.seats_confirmed.to_string(),
                            t.seats_held.to_string(),
                            t.seats_available.to_string(),
                            optional(ratio(t.seats_confirmed, t.quantity)),
                        ]
                    })
                    .collect(),
            ),
            Section::Revenue => (
                names(&["currency"], &Self::revenue(&SalesCounts::default())),
                self.per_currency
                    .iter()
                    .map(|(currency, c)| values(vec![currency.clone()], &Self::revenue(c)))
                    .collect(),
            ),
            Section::Refunds => (
                [
                    "reason",
                    "currency",
                    "due",
                    "due_minor",
                    "completed",
                    "completed_minor",
                ]
                .map(str::to_owned)
                .to_vec(),
                a.refunds
                    .iter()
                    .map(|r| {
                        vec![
                            r.reason.clone(),
                            r.currency.clone(),
                            r.due.to_string(),
                            r.due_minor.to_string(),
                            r.completed.to_string(),
                            r.completed_minor.to_string(),
                        ]
                    })
                    .collect(),
            ),
            Section::CheckIns => (
                ["hour", "check_ins", "reverted", "net", "cumulative", "rate"]
                    .map(str::to_owned)
                    .to_vec(),
                self.hours
                    .iter()
                    .map(|h| {
                        vec![
                            h.hour.clone(),
                            h.check_ins.to_string(),
                            h.reverted.to_string(),
                            h.check_ins.saturating_sub(h.reverted).to_string(),
                            h.cumulative.to_string(),
                            optional(ratio(h.cumulative, self.confirmed)),
                        ]
                    })
                    .collect(),
            ),
            Section::Answers => (
                [
                    "question_id",
                    "label",
                    "kind",
                    "asked",
                    "answered",
                    "answer",
                    "registrations",
                ]
                .map(str::to_owned)
                .to_vec(),
                a.questions
                    .iter()
                    .flat_map(|q| {
                        let question = [
                            q.question_id.clone(),
                            q.label.clone(),
                            q.kind.clone(),
                            q.asked.to_string(),
                            q.answered.to_string(),
                        ];
                        if q.answers.is_empty() {
                            // Free text, or nothing answered yet: the question alone.
                            let mut row = question.to_vec();
                            row.extend([String::new(), String::new()]);
                            return vec![row];
                        }
                        q.answers
                            .iter()
                            .map(|c| {
                                let mut row = question.to_vec();
                                row.extend([c.answer.clone(), c.registrations.to_string()]);
                                row
                            })
                            .collect()
                    })
                    .collect(),
            ),
        }
    }
}

/// An event's analytics (`GET /v1/events/{id}/analytics` as JSON).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Analytics)]
struct AnalyticsJson {
    event_id: Uuid,
    title: String,
    #[schema(value_type = names::EventStatus)]
    status: &'static str,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    /// IANA time zone the event is advertised in.
    timezone: String,
    /// The time zone of days and hours below: always `UTC`.
    #[schema(value_type = String, example = "UTC")]
    buckets_time_zone: &'static str,
    /// Event-wide seat limit.
    capacity: u64,
    /// Seats confirmed now over every ticket type, against their quantity.
    sell_through: SellThrough,
    /// In the order they were added.
    ticket_types: Vec<TicketTypeFiguresJson>,
    /// Per UTC day, ticket type and currency, oldest first.
    sales_per_day: Vec<DaySales>,
    /// Per ticket type and currency, summed over the days.
    sales_per_ticket_type: Vec<TicketTypeSales>,
    /// Per currency.
    revenue: Vec<RevenueJson>,
    cancellations: Cancellations,
    /// Per refund reason and currency.
    refunds: Vec<RefundsJson>,
    check_ins: CheckIns,
    /// Every question the event asked: its current questions in order, then those no longer
    /// asked.
    questions: Vec<QuestionJson>,
}

/// Seats confirmed against seats offered.
#[derive(Debug, Serialize, ToSchema)]
struct SellThrough {
    seats_confirmed: u64,
    quantity: u64,
    /// `seats_confirmed / quantity`, rounded to four places; `null` when `quantity` is 0.
    #[schema(required = true)]
    ratio: Option<f64>,
}

/// One ticket type's figures now.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TicketTypeFigures)]
struct TicketTypeFiguresJson {
    ticket_type_id: Uuid,
    name: String,
    price: MoneyJson,
    quantity: u64,
    seats_confirmed: u64,
    seats_held: u64,
    seats_available: u64,
    /// `seats_confirmed / quantity`, rounded to four places; `null` when `quantity` is 0.
    #[schema(required = true)]
    sell_through: Option<f64>,
}

/// Every sales counter, in minor units for money.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SalesCounts)]
struct SalesCountsJson {
    orders_confirmed: u64,
    seats_confirmed: u64,
    revenue_minor: i64,
    holds_placed: u64,
    seats_held: u64,
    holds_expired: u64,
    seats_expired: u64,
    holds_cancelled: u64,
    orders_cancelled: u64,
    seats_cancelled: u64,
    cancelled_revenue_minor: i64,
    payments_received: u64,
    received_minor: i64,
    refunds_due: u64,
    refund_due_minor: i64,
    refunds_completed: u64,
    refunded_minor: i64,
}

impl From<&SalesCounts> for SalesCountsJson {
    fn from(c: &SalesCounts) -> Self {
        Self {
            orders_confirmed: c.orders_confirmed,
            seats_confirmed: c.seats_confirmed,
            revenue_minor: c.revenue_minor,
            holds_placed: c.holds_placed,
            seats_held: c.seats_held,
            holds_expired: c.holds_expired,
            seats_expired: c.seats_expired,
            holds_cancelled: c.holds_cancelled,
            orders_cancelled: c.orders_cancelled,
            seats_cancelled: c.seats_cancelled,
            cancelled_revenue_minor: c.cancelled_revenue_minor,
            payments_received: c.payments_received,
            received_minor: c.received_minor,
            refunds_due: c.refunds_due,
            refund_due_minor: c.refund_due_minor,
            refunds_completed: c.refunds_completed,
            refunded_minor: c.refunded_minor,
        }
    }
}

/// One UTC day's sales of one ticket type in one currency.
#[derive(Debug, Serialize, ToSchema)]
struct DaySales {
    day: NaiveDate,
    ticket_type_id: Uuid,
    currency: String,
    #[serde(flatten)]
    counts: SalesCountsJson,
}

/// One ticket type's sales in one currency, summed over the days.
#[derive(Debug, Serialize, ToSchema)]
struct TicketTypeSales {
    ticket_type_id: Uuid,
    /// Empty if the ticket type is unknown.
    name: String,
    currency: String,
    #[serde(flatten)]
    counts: SalesCountsJson,
}

/// One currency's money, in its minor unit.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Revenue)]
struct RevenueJson {
    currency: String,
    /// Confirmed orders' value.
    booked_minor: i64,
    /// Cancelled orders' value.
    cancelled_minor: i64,
    /// Payments received.
    received_minor: i64,
    /// Refunds owed.
    refund_due_minor: i64,
    /// Refunds paid out.
    refunded_minor: i64,
    /// `received_minor - refund_due_minor`.
    net_minor: i64,
}

/// Cancellations and expiries over every ticket type.
#[derive(Debug, Serialize, ToSchema)]
struct Cancellations {
    orders_cancelled: u64,
    seats_cancelled: u64,
    holds_cancelled: u64,
    holds_expired: u64,
    seats_expired: u64,
}

/// Refunds for one reason in one currency.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Refunds)]
struct RefundsJson {
    reason: String,
    currency: String,
    due: u64,
    due_minor: i64,
    completed: u64,
    completed_minor: i64,
}

/// Tickets let in, in all and per UTC hour.
#[derive(Debug, Serialize, ToSchema)]
struct CheckIns {
    seats_confirmed: u64,
    /// Tickets let in and not reverted.
    checked_in: u64,
    /// `checked_in / seats_confirmed`, rounded to four places; `null` when none is confirmed.
    #[schema(required = true)]
    rate: Option<f64>,
    /// Oldest first.
    per_hour: Vec<HourJson>,
}

/// One UTC hour of check-ins over every ticket type.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CheckInHour)]
struct HourJson {
    /// The hour's start, e.g. `2026-06-01T18:00:00Z`.
    #[schema(format = DateTime)]
    hour: String,
    check_ins: u64,
    reverted: u64,
    /// `check_ins - reverted`, never below 0.
    net: u64,
    /// Tickets let in up to the end of this hour (and not reverted since).
    cumulative: u64,
    /// `cumulative / seats_confirmed`, rounded to four places; `null` when none is confirmed.
    #[schema(required = true)]
    rate: Option<f64>,
}

/// The answers to one registration question.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = QuestionFigures)]
struct QuestionJson {
    question_id: String,
    label: String,
    /// `text`, `single_choice`, `multiple_choice`, `country` or `age_range`.
    kind: String,
    /// Whether the event still asks it.
    asked: bool,
    /// Confirmed registrations that answered it.
    answered: u64,
    /// Per answer (closed questions only; free text is never counted here).
    answers: Vec<AnswerCountJson>,
}

/// How many confirmed registrations gave one answer.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AnswerCount)]
struct AnswerCountJson {
    answer: String,
    registrations: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_round_to_four_places_and_need_a_whole() {
        assert_eq!(ratio(1, 3), Some(0.3333));
        assert_eq!(ratio(0, 0), None);
        assert_eq!(ratio(5, 5), Some(1.0));
    }

    #[test]
    fn every_section_has_a_name_it_is_parsed_from() {
        for (name, section) in Section::ALL {
            assert_eq!(Section::parse(name).expect("known"), section);
            assert_eq!(section.name(), name);
        }
        assert!(Section::parse("everything").is_err());
    }
}
