//! The analytics tables (`analytics_*`, documented for BI tools in `docs/analytics.md`): what
//! the facts did to an event's seats and money per day, the payments ledger, check-ins per hour,
//! the answers to registration questions counted, and a copy of each event and ticket type.
//!
//! The fold watches the ticketing rules rather than repeating them: before a fact is applied,
//! [`Observed::of`] notes what analytics needs from the rows as they were (a registration's
//! status and answers, a ticket's check-in), and only when the fact changed something
//! (`ticketing::apply` returned true) does [`Analytics::record`] count it, reading the rows as
//! they are after it. A repeated or out-of-order fact thus counts exactly as little as it does
//! in the guest list.
//!
//! Per-day and per-hour rows are counters: a batch adds up its changes in memory and writes
//! them as increments (`INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n`) without reading
//! them first. Questions, answers and payments are buffered rows (see `rows`).
//!
//! **Answers** are counted for confirmed registrations only (who is coming): when a registration
//! is confirmed with answers, or answers arrive for a confirmed one; they are uncounted when it
//! is cancelled or answers again. Free-text answers only count as answered; their text is never
//! stored. An erased person's answers are uncounted at `UserErased` ([`Analytics::erase`]); a
//! rebuild reads them as `[erased]`, which is never counted, so both agree. Answer rows down to
//! zero are deleted, so a rebuild (which never made them) and the live tables agree on that too.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use marquee_domain::event::{
    AnswerValue, Answers, EventFact, Question, QuestionKind, RefundReason, RegistrationStatus,
};
use marquee_domain::{ERASED, Money};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{At, EventDoc};
use crate::ProjectorError;
use crate::registrations::{Rows, TicketRow};
use crate::rows::{AnyQuery, BufferedRow, ID_CHUNK, RowBuffer, placeholders};
use crate::tables::Tables;
use crate::time::{from_text, to_text};

/// The counters of `analytics_sales_daily`, in column order.
pub(crate) const SALES_COUNTERS: [&str; 17] = [
    "orders_confirmed",
    "seats_confirmed",
    "revenue_minor",
    "holds_placed",
    "seats_held",
    "holds_expired",
    "seats_expired",
    "holds_cancelled",
    "orders_cancelled",
    "seats_cancelled",
    "cancelled_revenue_minor",
    "payments_received",
    "received_minor",
    "refunds_due",
    "refund_due_minor",
    "refunds_completed",
    "refunded_minor",
];

/// Indexes into [`SALES_COUNTERS`].
mod sale {
    pub const ORDERS_CONFIRMED: usize = 0;
    pub const SEATS_CONFIRMED: usize = 1;
    pub const REVENUE: usize = 2;
    pub const HOLDS_PLACED: usize = 3;
    pub const SEATS_HELD: usize = 4;
    pub const HOLDS_EXPIRED: usize = 5;
    pub const SEATS_EXPIRED: usize = 6;
    pub const HOLDS_CANCELLED: usize = 7;
    pub const ORDERS_CANCELLED: usize = 8;
    pub const SEATS_CANCELLED: usize = 9;
    pub const CANCELLED_REVENUE: usize = 10;
    pub const PAYMENTS_RECEIVED: usize = 11;
    pub const RECEIVED: usize = 12;
    pub const REFUNDS_DUE: usize = 13;
    pub const REFUND_DUE: usize = 14;
    pub const REFUNDS_COMPLETED: usize = 15;
    pub const REFUNDED: usize = 16;
}

/// The counters of `analytics_check_ins`, in column order.
const CHECK_IN_COUNTERS: [&str; 2] = ["check_ins", "reverted"];

/// `(event_id, day, ticket_type_id, currency)`.
type SalesKey = (String, String, String, String);
/// `(event_id, hour, ticket_type_id)`.
type CheckInKey = (String, String, String);

/// Changes to counters, with the position of the last fact that made one.
#[derive(Debug, Clone, Copy)]
struct Counts<const N: usize> {
    add: [i64; N],
    last_position: i64,
}

impl<const N: usize> Counts<N> {
    fn new() -> Self {
        Self {
            add: [0; N],
            last_position: 0,
        }
    }
}

/// What a batch does to the analytics tables.
#[derive(Default)]
pub(super) struct Analytics {
    /// By `<event id>/<question id>`, loaded by event.
    questions: RowBuffer<QuestionRow>,
    /// By `<event id>/<question id>/<answer>`, loaded by event.
    answers: RowBuffer<AnswerRow>,
    /// By `<event id>/<payment id>`, loaded by registration.
    payments: RowBuffer<PaymentRow>,
    /// Increments of `analytics_sales_daily`.
    sales: BTreeMap<SalesKey, Counts<17>>,
    /// Increments of `analytics_check_ins`.
    check_ins: BTreeMap<CheckInKey, Counts<2>>,
    /// Events whose questions and answers the batch has loaded.
    loaded: std::collections::BTreeSet<String>,
}

/// What a fact's analytics need to know from before it was applied, and from the fact itself.
pub(super) enum Observed {
    /// Nothing analytics counts.
    Nothing,
    /// `RegistrationConfirmed`, `SeatsHeld`, `HoldExpired` or `HoldConfirmed`: the registration
    /// after the fact says the rest.
    Registration {
        registration_id: String,
        what: RegistrationChange,
        at: DateTime<Utc>,
    },
    /// `RegistrationCancelled`, from the status it had.
    Cancelled {
        registration_id: String,
        before: Option<RegistrationStatus>,
        at: DateTime<Utc>,
    },
    /// `AnswersGiven`, with the registration's status and answers before.
    Answers {
        registration_id: String,
        before: Option<(RegistrationStatus, String)>,
    },
    /// `PaymentReceived`, `RefundDue` or `RefundCompleted`.
    Payment {
        registration_id: String,
        payment_id: String,
        what: PaymentChange,
        at: DateTime<Utc>,
    },
    /// `TicketCheckedIn`.
    CheckedIn {
        ticket_type_id: String,
        at: DateTime<Utc>,
    },
    /// `CheckInReverted`: when the ticket had been let in, and its ticket type.
    Reverted { before: Option<(String, String)> },
}

/// Which change of a registration's own status.
pub(super) enum RegistrationChange {
    Confirmed,
    Held,
    Expired,
    HoldConfirmed,
}

/// What a payment fact says.
pub(super) enum PaymentChange {
    Received(Money),
    RefundDue(Money, RefundReason),
    RefundCompleted,
}

impl Observed {
    /// What analytics must know about `fact` before it is applied to `rows`.
    pub(super) fn of(rows: &Rows, event_id: &str, fact: &EventFact) -> Observed {
        let registration = |change: RegistrationChange, id: &marquee_domain::RegistrationId, at| {
            Observed::Registration {
                registration_id: id.0.to_string(),
                what: change,
                at,
            }
        };
        match fact {
            EventFact::RegistrationConfirmed {
                registration_id,
                confirmed_at,
                ..
            } => registration(
                RegistrationChange::Confirmed,
                registration_id,
                *confirmed_at,
            ),
            EventFact::SeatsHeld {
                registration_id,
                held_at,
                ..
            } => registration(RegistrationChange::Held, registration_id, *held_at),
            EventFact::HoldExpired {
                registration_id,
                expired_at,
                ..
            } => registration(RegistrationChange::Expired, registration_id, *expired_at),
            EventFact::HoldConfirmed {
                registration_id,
                confirmed_at,
                ..
            } => registration(
                RegistrationChange::HoldConfirmed,
                registration_id,
                *confirmed_at,
            ),
            EventFact::RegistrationCancelled {
                registration_id,
                cancelled_at,
                ..
            } => {
                let id = registration_id.0.to_string();
                Observed::Cancelled {
                    before: rows.registrations.get(&id).map(|r| r.status),
                    registration_id: id,
                    at: *cancelled_at,
                }
            }
            EventFact::AnswersGiven {
                registration_id, ..
            } => {
                let id = registration_id.0.to_string();
                Observed::Answers {
                    before: rows
                        .registrations
                        .get(&id)
                        .map(|r| (r.status, r.answers.clone())),
                    registration_id: id,
                }
            }
            EventFact::PaymentReceived {
                registration_id,
                payment_id,
                amount,
                received_at,
            } => Observed::Payment {
                registration_id: registration_id.0.to_string(),
                payment_id: payment_id.0.clone(),
                what: PaymentChange::Received(amount.clone()),
                at: *received_at,
            },
            EventFact::RefundDue {
                registration_id,
                payment_id,
                amount,
                reason,
                due_at,
            } => Observed::Payment {
                registration_id: registration_id.0.to_string(),
                payment_id: payment_id.0.clone(),
                what: PaymentChange::RefundDue(amount.clone(), *reason),
                at: *due_at,
            },
            EventFact::RefundCompleted {
                registration_id,
                payment_id,
                completed_at,
                ..
            } => Observed::Payment {
                registration_id: registration_id.0.to_string(),
                payment_id: payment_id.0.clone(),
                what: PaymentChange::RefundCompleted,
                at: *completed_at,
            },
            EventFact::TicketCheckedIn {
                ticket_type_id,
                scanned_at,
                ..
            } => Observed::CheckedIn {
                ticket_type_id: ticket_type_id.0.to_string(),
                at: *scanned_at,
            },
            EventFact::CheckInReverted { ticket_code, .. } => Observed::Reverted {
                before: rows
                    .tickets
                    .get(&TicketRow::key_of(event_id, &ticket_code.0))
                    .and_then(|t| {
                        t.checked_in_at
                            .clone()
                            .map(|when| (when, t.ticket_type_id.clone()))
                    }),
            },
            _ => Observed::Nothing,
        }
    }

    /// Whether applying the fact may count or uncount answers: the event's questions and
    /// answers must be loaded first.
    pub(super) fn touches_answers(fact: &EventFact) -> bool {
        matches!(
            fact,
            EventFact::AnswersGiven { .. }
                | EventFact::HoldConfirmed { .. }
                | EventFact::RegistrationCancelled { .. }
                | EventFact::RegistrationQuestionsSet { .. }
        )
    }

    /// The registration whose payments the fact reads or writes.
    pub(super) fn payment_registration(fact: &EventFact) -> Option<String> {
        match fact {
            EventFact::PaymentReceived {
                registration_id, ..
            }
            | EventFact::RefundDue {
                registration_id, ..
            }
            | EventFact::RefundCompleted {
                registration_id, ..
            } => Some(registration_id.0.to_string()),
            _ => None,
        }
    }
}

impl Analytics {
    /// Loads the questions and answers of `events` (those not loaded yet) and the payments of
    /// `registrations`.
    pub(super) async fn load(
        &mut self,
        conn: &mut AnyConnection,
        tables: &Tables,
        events: &[String],
        registrations: &[String],
    ) -> Result<(), ProjectorError> {
        let events: Vec<String> = events
            .iter()
            .filter(|e| !self.loaded.contains(*e))
            .cloned()
            .collect();
        if !events.is_empty() {
            self.questions.load(&mut *conn, tables, &events).await?;
            self.answers.load(&mut *conn, tables, &events).await?;
            self.loaded.extend(events);
        }
        self.payments
            .load(&mut *conn, tables, registrations)
            .await?;
        Ok(())
    }

    /// Counts a fact that changed the rows (`observed` was taken before it was applied).
    pub(super) fn record(
        &mut self,
        observed: Observed,
        rows: &Rows,
        doc: Option<&EventDoc>,
        at: &At<'_>,
    ) {
        let event_id = at.event_id;
        let position = at.position;
        match observed {
            Observed::Nothing => {}
            Observed::Registration {
                registration_id,
                what,
                at: when,
            } => {
                let Some(r) = rows.registrations.get(&registration_id) else {
                    return;
                };
                let currency = currency_of(r.price_currency.as_deref(), doc, &r.ticket_type_id);
                let price = r.price_minor.unwrap_or(0);
                let changes: &[(usize, i64)] = match what {
                    RegistrationChange::Confirmed | RegistrationChange::HoldConfirmed => &[
                        (sale::ORDERS_CONFIRMED, 1),
                        (sale::SEATS_CONFIRMED, r.quantity),
                        (sale::REVENUE, price),
                    ],
                    RegistrationChange::Held => {
                        &[(sale::HOLDS_PLACED, 1), (sale::SEATS_HELD, r.quantity)]
                    }
                    RegistrationChange::Expired => {
                        &[(sale::HOLDS_EXPIRED, 1), (sale::SEATS_EXPIRED, r.quantity)]
                    }
                };
                self.count_sales(
                    (event_id, day(when), &r.ticket_type_id, currency),
                    changes,
                    position,
                );
                if matches!(what, RegistrationChange::HoldConfirmed) {
                    self.count_answers(event_id, &r.answers, 1, true, position);
                }
            }
            Observed::Cancelled {
                registration_id,
                before,
                at: when,
            } => {
                let Some(r) = rows.registrations.get(&registration_id) else {
                    return;
                };
                let currency = currency_of(r.price_currency.as_deref(), doc, &r.ticket_type_id);
                let key = (event_id, day(when), r.ticket_type_id.as_str(), currency);
                match before {
                    Some(RegistrationStatus::Held) => {
                        self.count_sales(key, &[(sale::HOLDS_CANCELLED, 1)], position);
                    }
                    Some(RegistrationStatus::Confirmed) => {
                        self.count_sales(
                            key,
                            &[
                                (sale::ORDERS_CANCELLED, 1),
                                (sale::SEATS_CANCELLED, r.quantity),
                                (sale::CANCELLED_REVENUE, r.price_minor.unwrap_or(0)),
                            ],
                            position,
                        );
                        self.count_answers(event_id, &r.answers, -1, true, position);
                    }
                    _ => {}
                }
            }
            Observed::Answers {
                registration_id,
                before,
            } => {
                let Some(r) = rows.registrations.get(&registration_id) else {
                    return;
                };
                if let Some((RegistrationStatus::Confirmed, old)) = before {
                    self.count_answers(event_id, &old, -1, true, position);
                    self.count_answers(event_id, &r.answers, 1, true, position);
                }
            }
            Observed::Payment {
                registration_id,
                payment_id,
                what,
                at: when,
            } => {
                let Some(r) = rows.registrations.get(&registration_id) else {
                    return;
                };
                let ticket_type_id = r.ticket_type_id.clone();
                self.payment(
                    event_id,
                    &registration_id,
                    &ticket_type_id,
                    &payment_id,
                    what,
                    when,
                    position,
                );
            }
            Observed::CheckedIn {
                ticket_type_id,
                at: when,
            } => self.count_check_ins((event_id, hour(when), ticket_type_id), 0, position),
            Observed::Reverted { before } => {
                let Some((checked_in_at, ticket_type_id)) = before else {
                    return;
                };
                match from_text(&checked_in_at) {
                    Ok(when) => {
                        self.count_check_ins((event_id, hour(when), ticket_type_id), 1, position);
                    }
                    Err(error) => {
                        tracing::warn!(%event_id, %error, "reverted check-in with an unreadable time, not counted");
                    }
                }
            }
        }
    }

    /// `RegistrationQuestionsSet`: the questions asked now, in order; questions no longer in
    /// the list stay, no longer asked, with their counts.
    pub(super) fn questions_set(&mut self, event_id: &str, questions: &[Question], position: i64) {
        for (ordinal, question) in questions.iter().enumerate() {
            let key = QuestionRow::key_of(event_id, &question.id);
            let kind = kind_text(question.kind);
            let ordinal = i64::try_from(ordinal).unwrap_or(i64::MAX);
            let updated = self.questions.update(&key, |q| {
                q.label.clone_from(&question.label);
                kind.clone_into(&mut q.kind);
                q.asked = 1;
                q.ordinal = ordinal;
                q.last_position = position;
                Some(())
            });
            if updated.is_none() {
                self.questions.insert(QuestionRow {
                    event_id: event_id.to_owned(),
                    question_id: question.id.clone(),
                    label: question.label.clone(),
                    kind: kind.to_owned(),
                    asked: 1,
                    ordinal,
                    answered: 0,
                    last_position: position,
                });
            }
        }
        self.questions.update_all(
            |q| q.event_id == event_id && q.asked == 1,
            |q| {
                if questions.iter().any(|asked| asked.id == q.question_id) {
                    return None;
                }
                q.asked = 0;
                q.last_position = position;
                Some(())
            },
        );
    }

    /// `UserErased`: the answers of the person's confirmed registrations (`registrations`, as
    /// `(event id, status, answers)` before erasure) stop counting, as a rebuild would never
    /// have counted them. They still count as answered (a rebuild reads them as `[erased]`).
    pub(super) async fn erase(
        &mut self,
        conn: &mut AnyConnection,
        tables: &Tables,
        registrations: Vec<(String, RegistrationStatus, String)>,
    ) -> Result<(), ProjectorError> {
        let counted: Vec<_> = registrations
            .into_iter()
            .filter(|(_, status, answers)| {
                *status == RegistrationStatus::Confirmed && answers != "{}"
            })
            .collect();
        let events: Vec<String> = counted.iter().map(|(e, ..)| e.clone()).collect();
        self.load(conn, tables, &events, &[]).await?;
        for (event_id, _, answers) in counted {
            // Values only: `answered` and the positions stay as a rebuild makes them.
            self.count_answers(&event_id, &answers, -1, false, 0);
        }
        Ok(())
    }

    fn count_sales(
        &mut self,
        key: (&str, String, &str, String),
        changes: &[(usize, i64)],
        position: i64,
    ) {
        let (event_id, day, ticket_type_id, currency) = key;
        let counts = self
            .sales
            .entry((
                event_id.to_owned(),
                day,
                ticket_type_id.to_owned(),
                currency,
            ))
            .or_insert_with(Counts::new);
        for (counter, by) in changes {
            counts.add[*counter] += by;
        }
        counts.last_position = counts.last_position.max(position);
    }

    fn count_check_ins(&mut self, key: (&str, String, String), counter: usize, position: i64) {
        let (event_id, hour, ticket_type_id) = key;
        let counts = self
            .check_ins
            .entry((event_id.to_owned(), hour, ticket_type_id))
            .or_insert_with(Counts::new);
        counts.add[counter] += 1;
        counts.last_position = counts.last_position.max(position);
    }

    /// Adds (`sign` 1) or removes (`sign` -1) one registration's answers (JSON text): each
    /// answered question counts as answered (unless `answered` is false), and each value of a
    /// closed question (choices, country, age range) counts for that value. Questions the event
    /// never asked, erased values, and values never counted are left alone.
    fn count_answers(
        &mut self,
        event_id: &str,
        answers: &str,
        sign: i64,
        answered: bool,
        position: i64,
    ) {
        let Ok(answers) = serde_json::from_str::<Answers>(answers) else {
            tracing::warn!(%event_id, "answers not readable, not counted");
            return;
        };
        for (question_id, value) in answers {
            let key = QuestionRow::key_of(event_id, &question_id);
            let Some(kind) = self.questions.get(&key).map(|q| q.kind.clone()) else {
                continue;
            };
            if answered {
                self.questions.update(&key, |q| {
                    q.answered = (q.answered + sign).max(0);
                    q.last_position = position;
                    Some(())
                });
            }
            if kind == kind_text(QuestionKind::Text) {
                continue;
            }
            let values = match value {
                AnswerValue::One(one) => vec![one],
                AnswerValue::Many(many) => many,
            };
            for value in values.into_iter().filter(|v| v != ERASED) {
                let key = AnswerRow::key_of(event_id, &question_id, &value);
                let changed = self.answers.update(&key, |a| {
                    a.registrations = (a.registrations + sign).max(0);
                    Some(())
                });
                if changed.is_none() && sign > 0 {
                    self.answers.insert(AnswerRow {
                        event_id: event_id.to_owned(),
                        question_id: question_id.clone(),
                        answer: value,
                        registrations: sign,
                    });
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments, reason = "one payment fact's parts, named")]
    fn payment(
        &mut self,
        event_id: &str,
        registration_id: &str,
        ticket_type_id: &str,
        payment_id: &str,
        what: PaymentChange,
        when: DateTime<Utc>,
        position: i64,
    ) {
        let key = PaymentRow::key_of(event_id, payment_id);
        let at_text = to_text(when);
        let blank = |currency: &str| PaymentRow {
            event_id: event_id.to_owned(),
            payment_id: payment_id.to_owned(),
            registration_id: registration_id.to_owned(),
            ticket_type_id: ticket_type_id.to_owned(),
            currency: currency.to_owned(),
            received_minor: 0,
            received_at: None,
            refund_reason: None,
            refund_due_minor: 0,
            refund_due_at: None,
            refunded_at: None,
            last_position: position,
        };
        match what {
            PaymentChange::Received(amount) => {
                if self.payments.get(&key).is_none() {
                    self.payments.insert(blank(&amount.currency));
                }
                let counted = self.payments.update(&key, |p| {
                    if p.received_at.is_some() {
                        return None;
                    }
                    p.received_minor = amount.amount_minor;
                    p.received_at = Some(at_text.clone());
                    p.last_position = position;
                    Some(())
                });
                if counted.is_some() {
                    self.count_sales(
                        (event_id, day(when), ticket_type_id, amount.currency.clone()),
                        &[
                            (sale::PAYMENTS_RECEIVED, 1),
                            (sale::RECEIVED, amount.amount_minor),
                        ],
                        position,
                    );
                }
            }
            PaymentChange::RefundDue(amount, reason) => {
                if self.payments.get(&key).is_none() {
                    self.payments.insert(blank(&amount.currency));
                }
                let counted = self.payments.update(&key, |p| {
                    if p.refund_due_at.is_some() {
                        return None;
                    }
                    p.refund_reason = Some(reason_text(reason));
                    p.refund_due_minor = amount.amount_minor;
                    p.refund_due_at = Some(at_text.clone());
                    p.last_position = position;
                    Some(())
                });
                if counted.is_some() {
                    self.count_sales(
                        (event_id, day(when), ticket_type_id, amount.currency.clone()),
                        &[
                            (sale::REFUNDS_DUE, 1),
                            (sale::REFUND_DUE, amount.amount_minor),
                        ],
                        position,
                    );
                }
            }
            PaymentChange::RefundCompleted => {
                let refunded = self.payments.update(&key, |p| {
                    if p.refunded_at.is_some() || p.refund_due_at.is_none() {
                        return None;
                    }
                    p.refunded_at = Some(at_text.clone());
                    p.last_position = position;
                    Some((p.refund_due_minor, p.currency.clone()))
                });
                if let Some((amount, currency)) = refunded {
                    self.count_sales(
                        (event_id, day(when), ticket_type_id, currency),
                        &[(sale::REFUNDS_COMPLETED, 1), (sale::REFUNDED, amount)],
                        position,
                    );
                }
            }
        }
    }

    /// Writes what the batch counted and changed.
    pub(super) async fn flush(
        &mut self,
        conn: &mut AnyConnection,
        tables: &Tables,
    ) -> Result<(), ProjectorError> {
        self.questions.flush(&mut *conn, tables).await?;
        self.answers.flush(&mut *conn, tables).await?;
        self.payments.flush(&mut *conn, tables).await?;
        let events: Vec<&String> = self.loaded.iter().collect();
        for chunk in events.chunks(ID_CHUNK) {
            let sql = tables.sql(&format!(
                "DELETE FROM {{analytics_answers}} WHERE registrations = 0 AND event_id IN ({})",
                placeholders(chunk.len(), 1)
            ));
            let mut query = sqlx::query(sql);
            for event in chunk {
                query = query.bind(event.as_str());
            }
            query.execute(&mut *conn).await?;
        }
        let sales = std::mem::take(&mut self.sales);
        write_counts(
            conn,
            tables,
            "{analytics_sales}",
            &["event_id", "day", "ticket_type_id", "currency"],
            &SALES_COUNTERS,
            sales
                .into_iter()
                .map(|((e, d, t, c), counts)| (vec![e, d, t, c], counts))
                .collect(),
        )
        .await?;
        let check_ins = std::mem::take(&mut self.check_ins);
        write_counts(
            conn,
            tables,
            "{analytics_check_ins}",
            &["event_id", "hour", "ticket_type_id"],
            &CHECK_IN_COUNTERS,
            check_ins
                .into_iter()
                .map(|((e, h, t), counts)| (vec![e, h, t], counts))
                .collect(),
        )
        .await
    }
}

/// Adds `rows` (key values, then increments) to the counters of `table`, creating rows that do
/// not exist. Every row the batch touched is written, even with nothing to add, so that the
/// same facts make the same rows however they are batched.
async fn write_counts<const N: usize>(
    conn: &mut AnyConnection,
    tables: &Tables,
    table: &str,
    key: &[&str],
    counters: &[&str; N],
    rows: Vec<(Vec<String>, Counts<N>)>,
) -> Result<(), ProjectorError> {
    let columns = key.len() + N + 1;
    let per_statement = (400 / columns).max(1);
    let increments = counters
        .iter()
        .map(|c| format!("{c} = {table}.{c} + excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    for chunk in rows.chunks(per_statement) {
        let sql = tables.sql(&format!(
            "INSERT INTO {table} ({}, {}, last_position) VALUES {} ON CONFLICT ({}) \
             DO UPDATE SET {increments}, last_position = excluded.last_position",
            key.join(", "),
            counters.join(", "),
            placeholders(chunk.len(), columns),
            key.join(", "),
        ));
        let mut query = sqlx::query(sql);
        for (values, counts) in chunk {
            for value in values {
                query = query.bind(value.as_str());
            }
            for add in counts.add {
                query = query.bind(add);
            }
            query = query.bind(counts.last_position);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Copies an event and its ticket types into `analytics_events` and `analytics_ticket_types`.
pub(super) async fn write_dimensions(
    conn: &mut AnyConnection,
    tables: &Tables,
    doc: &EventDoc,
) -> Result<(), ProjectorError> {
    let l = &doc.listing;
    sqlx::query(tables.sql(
        "INSERT INTO {analytics_events} (event_id, venue_id, title, category, status, starts_at, \
         ends_at, timezone, capacity, seats_confirmed, seats_held, published_at, cancelled_at, \
         last_position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (event_id) DO UPDATE SET venue_id = excluded.venue_id, \
         title = excluded.title, category = excluded.category, status = excluded.status, \
         starts_at = excluded.starts_at, ends_at = excluded.ends_at, \
         timezone = excluded.timezone, capacity = excluded.capacity, \
         seats_confirmed = excluded.seats_confirmed, seats_held = excluded.seats_held, \
         published_at = excluded.published_at, cancelled_at = excluded.cancelled_at, \
         last_position = excluded.last_position",
    ))
    .bind(&l.event_id)
    .bind(&l.venue_id)
    .bind(&l.title)
    .bind(&l.category)
    .bind(l.status)
    .bind(&l.starts_at)
    .bind(&l.ends_at)
    .bind(&l.timezone)
    .bind(l.capacity)
    .bind(l.confirmed)
    .bind(l.held)
    .bind(&l.published_at)
    .bind(&l.cancelled_at)
    .bind(l.last_position)
    .execute(&mut *conn)
    .await?;
    for t in &doc.ticket_types {
        sqlx::query(tables.sql(
            "INSERT INTO {analytics_ticket_types} (event_id, ticket_type_id, name, price_minor, \
             currency, quantity, seats_confirmed, seats_held, seats_available, added_position, \
             last_position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (event_id, ticket_type_id) DO UPDATE SET name = excluded.name, \
             price_minor = excluded.price_minor, currency = excluded.currency, \
             quantity = excluded.quantity, seats_confirmed = excluded.seats_confirmed, \
             seats_held = excluded.seats_held, seats_available = excluded.seats_available, \
             added_position = excluded.added_position, last_position = excluded.last_position",
        ))
        .bind(&l.event_id)
        .bind(&t.ticket_type_id)
        .bind(&t.name)
        .bind(t.price_minor)
        .bind(&t.currency)
        .bind(t.quantity)
        .bind(t.confirmed)
        .bind(t.held)
        .bind(t.available)
        .bind(t.added_position)
        .bind(l.last_position)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The currency a registration's seats are counted in: what it was priced in, or for free seats
/// its ticket type's currency (empty if the read models do not know the ticket type).
fn currency_of(
    price_currency: Option<&str>,
    doc: Option<&EventDoc>,
    ticket_type_id: &str,
) -> String {
    if let Some(currency) = price_currency {
        return currency.to_owned();
    }
    doc.and_then(|d| {
        d.ticket_types
            .iter()
            .find(|t| t.ticket_type_id == ticket_type_id)
    })
    .map(|t| t.currency.clone())
    .unwrap_or_default()
}

/// The UTC day of a time: `YYYY-MM-DD`.
pub(crate) fn day(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

/// The UTC hour of a time: `YYYY-MM-DDTHH:00:00Z`.
pub(crate) fn hour(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:00:00Z").to_string()
}

/// The stored spelling of a question kind, as the API writes it (`single_choice`, …).
pub(crate) fn kind_text(kind: QuestionKind) -> &'static str {
    match kind {
        QuestionKind::Text => "text",
        QuestionKind::SingleChoice => "single_choice",
        QuestionKind::MultipleChoice => "multiple_choice",
        QuestionKind::Country => "country",
        QuestionKind::AgeRange => "age_range",
    }
}

/// The stored spelling of a refund's reason, as the API writes it (`attendee_cancelled`, …).
fn reason_text(reason: RefundReason) -> String {
    serde_json::to_value(reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{reason:?}"))
}

/// An `analytics_questions` row as stored.
#[derive(Debug, Clone)]
pub(crate) struct QuestionRow {
    event_id: String,
    question_id: String,
    label: String,
    kind: String,
    asked: i64,
    ordinal: i64,
    answered: i64,
    last_position: i64,
}

impl QuestionRow {
    fn key_of(event_id: &str, question_id: &str) -> String {
        format!("{event_id}/{question_id}")
    }
}

impl BufferedRow for QuestionRow {
    const TABLE: &'static str = "{analytics_questions}";
    const LOAD_BY: &'static str = "event_id";
    const PRIMARY_KEY: &'static [&'static str] = &["event_id", "question_id"];
    const COLUMNS: &'static [&'static str] = &[
        "event_id",
        "question_id",
        "label",
        "kind",
        "asked",
        "ordinal",
        "answered",
        "last_position",
    ];

    fn key(&self) -> String {
        Self::key_of(&self.event_id, &self.question_id)
    }

    fn from_row(row: &AnyRow) -> Result<Self, ProjectorError> {
        Ok(Self {
            event_id: row.try_get("event_id")?,
            question_id: row.try_get("question_id")?,
            label: row.try_get("label")?,
            kind: row.try_get("kind")?,
            asked: row.try_get("asked")?,
            ordinal: row.try_get("ordinal")?,
            answered: row.try_get("answered")?,
            last_position: row.try_get("last_position")?,
        })
    }

    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(self.event_id.as_str())
            .bind(self.question_id.as_str())
            .bind(self.label.as_str())
            .bind(self.kind.as_str())
            .bind(self.asked)
            .bind(self.ordinal)
            .bind(self.answered)
            .bind(self.last_position)
    }

    fn last_position(&self) -> i64 {
        self.last_position
    }
}

/// An `analytics_answers` row as stored.
#[derive(Debug, Clone)]
pub(crate) struct AnswerRow {
    event_id: String,
    question_id: String,
    answer: String,
    registrations: i64,
}

impl AnswerRow {
    fn key_of(event_id: &str, question_id: &str, answer: &str) -> String {
        // Question ids are `[a-z0-9_]`: the first `/` after the event id ends the question.
        format!("{event_id}/{question_id}/{answer}")
    }
}

impl BufferedRow for AnswerRow {
    const TABLE: &'static str = "{analytics_answers}";
    const LOAD_BY: &'static str = "event_id";
    const PRIMARY_KEY: &'static [&'static str] = &["event_id", "question_id", "answer"];
    const COLUMNS: &'static [&'static str] =
        &["event_id", "question_id", "answer", "registrations"];

    fn key(&self) -> String {
        Self::key_of(&self.event_id, &self.question_id, &self.answer)
    }

    fn from_row(row: &AnyRow) -> Result<Self, ProjectorError> {
        Ok(Self {
            event_id: row.try_get("event_id")?,
            question_id: row.try_get("question_id")?,
            answer: row.try_get("answer")?,
            registrations: row.try_get("registrations")?,
        })
    }

    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(self.event_id.as_str())
            .bind(self.question_id.as_str())
            .bind(self.answer.as_str())
            .bind(self.registrations)
    }

    /// Without a position (see the migration): written in key order.
    fn last_position(&self) -> i64 {
        0
    }
}

/// An `analytics_payments` row as stored.
#[derive(Debug, Clone)]
pub(crate) struct PaymentRow {
    event_id: String,
    payment_id: String,
    registration_id: String,
    ticket_type_id: String,
    currency: String,
    received_minor: i64,
    received_at: Option<String>,
    refund_reason: Option<String>,
    refund_due_minor: i64,
    refund_due_at: Option<String>,
    refunded_at: Option<String>,
    last_position: i64,
}

impl PaymentRow {
    fn key_of(event_id: &str, payment_id: &str) -> String {
        format!("{event_id}/{payment_id}")
    }
}

impl BufferedRow for PaymentRow {
    const TABLE: &'static str = "{analytics_payments}";
    const LOAD_BY: &'static str = "registration_id";
    const PRIMARY_KEY: &'static [&'static str] = &["event_id", "payment_id"];
    const COLUMNS: &'static [&'static str] = &[
        "event_id",
        "payment_id",
        "registration_id",
        "ticket_type_id",
        "currency",
        "received_minor",
        "received_at",
        "refund_reason",
        "refund_due_minor",
        "refund_due_at",
        "refunded_at",
        "last_position",
    ];

    fn key(&self) -> String {
        Self::key_of(&self.event_id, &self.payment_id)
    }

    fn from_row(row: &AnyRow) -> Result<Self, ProjectorError> {
        Ok(Self {
            event_id: row.try_get("event_id")?,
            payment_id: row.try_get("payment_id")?,
            registration_id: row.try_get("registration_id")?,
            ticket_type_id: row.try_get("ticket_type_id")?,
            currency: row.try_get("currency")?,
            received_minor: row.try_get("received_minor")?,
            received_at: row.try_get("received_at")?,
            refund_reason: row.try_get("refund_reason")?,
            refund_due_minor: row.try_get("refund_due_minor")?,
            refund_due_at: row.try_get("refund_due_at")?,
            refunded_at: row.try_get("refunded_at")?,
            last_position: row.try_get("last_position")?,
        })
    }

    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(self.event_id.as_str())
            .bind(self.payment_id.as_str())
            .bind(self.registration_id.as_str())
            .bind(self.ticket_type_id.as_str())
            .bind(self.currency.as_str())
            .bind(self.received_minor)
            .bind(self.received_at.as_deref())
            .bind(self.refund_reason.as_deref())
            .bind(self.refund_due_minor)
            .bind(self.refund_due_at.as_deref())
            .bind(self.refunded_at.as_deref())
            .bind(self.last_position)
    }

    fn last_position(&self) -> i64 {
        self.last_position
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_hours_are_utc_text_in_time_order() {
        let at: DateTime<Utc> = "2026-06-01T23:59:59.5+00:00".parse().expect("time");
        assert_eq!(day(at), "2026-06-01");
        assert_eq!(hour(at), "2026-06-01T23:00:00Z");
        let next: DateTime<Utc> = "2026-06-02T00:00:00Z".parse().expect("time");
        assert!(hour(at) < hour(next));
    }

    #[test]
    fn every_question_kind_and_refund_reason_has_its_api_spelling() {
        for (kind, text) in [
            (QuestionKind::Text, "text"),
            (QuestionKind::SingleChoice, "single_choice"),
            (QuestionKind::MultipleChoice, "multiple_choice"),
            (QuestionKind::Country, "country"),
            (QuestionKind::AgeRange, "age_range"),
        ] {
            assert_eq!(kind_text(kind), text);
            assert_eq!(serde_json::to_value(kind).expect("kind"), text);
        }
        assert_eq!(
            reason_text(RefundReason::AttendeeCancelled),
            "attendee_cancelled"
        );
    }
}
