//! The rows a batch keeps in memory besides the events: registrations (the guest list), tickets,
//! waitlist entries and timers, each written set-based at the end of the batch (see `rows`).

use marquee_domain::event::{PaymentStatus, RegistrationStatus, WaitlistStatus};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::ProjectorError;
use crate::rows::{AnyQuery, BufferedRow, RowBuffer};
use crate::timers::TimerWrites;

/// Everything but the events that one batch reads and writes.
#[derive(Default)]
pub(crate) struct Rows {
    /// By registration id.
    pub registrations: RowBuffer<RegistrationRow>,
    /// By `<event id>/<code>` (see [`TicketRow::key_of`]), loaded by registration.
    pub tickets: RowBuffer<TicketRow>,
    /// By entry id.
    pub waitlist: RowBuffer<EntryRow>,
    /// Timers set and removed, by timer id.
    pub timers: TimerWrites,
}

/// A `registrations` row as stored.
#[derive(Debug, Clone)]
pub(crate) struct RegistrationRow {
    pub registration_id: String,
    pub event_id: String,
    pub ticket_type_id: String,
    pub quantity: i64,
    pub status: RegistrationStatus,
    pub attendee_name: String,
    pub attendee_email: String,
    /// JSON object text.
    pub answers: String,
    /// The person the attendee and answers were sealed for (see `crate::personal`).
    pub person_id: Option<String>,
    pub price_minor: Option<i64>,
    pub price_currency: Option<String>,
    pub hold_expires_at: Option<String>,
    pub payment_id: Option<String>,
    pub payment_status: Option<PaymentStatus>,
    pub registered_at: String,
    pub registered_position: i64,
    pub confirmed_at: Option<String>,
    pub cancelled_at: Option<String>,
    pub expired_at: Option<String>,
    pub updated_at: String,
    pub last_position: i64,
    /// The account (user id) holding the registration, once `RegistrationHolderRecorded` said.
    pub holder: Option<String>,
}

impl RegistrationRow {
    /// What the guest list's search compares against: name and e-mail address, lower-cased.
    /// Derived, so it is written with the row and never read back.
    fn attendee_key(&self) -> String {
        crate::apply::search_key(&format!("{}\n{}", self.attendee_name, self.attendee_email))
    }
}

impl BufferedRow for RegistrationRow {
    const TABLE: &'static str = "{registrations}";
    const LOAD_BY: &'static str = "registration_id";
    const PRIMARY_KEY: &'static [&'static str] = &["registration_id"];
    const COLUMNS: &'static [&'static str] = &[
        "registration_id",
        "event_id",
        "ticket_type_id",
        "quantity",
        "status",
        "attendee_name",
        "attendee_email",
        "answers",
        "person_id",
        "price_minor",
        "price_currency",
        "hold_expires_at",
        "payment_id",
        "payment_status",
        "registered_at",
        "registered_position",
        "confirmed_at",
        "cancelled_at",
        "expired_at",
        "updated_at",
        "last_position",
        "holder",
        "attendee_key",
    ];

    fn key(&self) -> String {
        self.registration_id.clone()
    }

    fn from_row(row: &AnyRow) -> Result<Self, ProjectorError> {
        let status: String = row.try_get("status")?;
        let payment_status: Option<String> = row.try_get("payment_status")?;
        Ok(Self {
            registration_id: row.try_get("registration_id")?,
            event_id: row.try_get("event_id")?,
            ticket_type_id: row.try_get("ticket_type_id")?,
            quantity: row.try_get("quantity")?,
            status: parse_registration_status(&status).ok_or_else(|| {
                ProjectorError::Corrupt(format!("registration status `{status}`"))
            })?,
            attendee_name: row.try_get("attendee_name")?,
            attendee_email: row.try_get("attendee_email")?,
            answers: row.try_get("answers")?,
            person_id: row.try_get("person_id")?,
            price_minor: row.try_get("price_minor")?,
            price_currency: row.try_get("price_currency")?,
            hold_expires_at: row.try_get("hold_expires_at")?,
            payment_id: row.try_get("payment_id")?,
            payment_status: payment_status
                .map(|text| {
                    parse_payment_status(&text)
                        .ok_or_else(|| ProjectorError::Corrupt(format!("payment status `{text}`")))
                })
                .transpose()?,
            registered_at: row.try_get("registered_at")?,
            registered_position: row.try_get("registered_position")?,
            confirmed_at: row.try_get("confirmed_at")?,
            cancelled_at: row.try_get("cancelled_at")?,
            expired_at: row.try_get("expired_at")?,
            updated_at: row.try_get("updated_at")?,
            last_position: row.try_get("last_position")?,
            holder: row.try_get("holder")?,
        })
    }

    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(self.registration_id.as_str())
            .bind(self.event_id.as_str())
            .bind(self.ticket_type_id.as_str())
            .bind(self.quantity)
            .bind(registration_status_text(self.status))
            .bind(self.attendee_name.as_str())
            .bind(self.attendee_email.as_str())
            .bind(self.answers.as_str())
            .bind(self.person_id.as_deref())
            .bind(self.price_minor)
            .bind(self.price_currency.as_deref())
            .bind(self.hold_expires_at.as_deref())
            .bind(self.payment_id.as_deref())
            .bind(self.payment_status.map(payment_status_text))
            .bind(self.registered_at.as_str())
            .bind(self.registered_position)
            .bind(self.confirmed_at.as_deref())
            .bind(self.cancelled_at.as_deref())
            .bind(self.expired_at.as_deref())
            .bind(self.updated_at.as_str())
            .bind(self.last_position)
            .bind(self.holder.as_deref())
            .bind(self.attendee_key())
    }

    fn last_position(&self) -> i64 {
        self.last_position
    }
}

/// A `tickets` row as stored.
#[derive(Debug, Clone)]
pub(crate) struct TicketRow {
    pub code: String,
    pub event_id: String,
    pub registration_id: String,
    pub ticket_type_id: String,
    pub seat: i64,
    pub checked_in_at: Option<String>,
    pub check_in_nonce: Option<String>,
    pub last_position: i64,
}

impl TicketRow {
    /// The buffer key of ticket `code` of event `event_id`: codes are unique per event.
    pub fn key_of(event_id: &str, code: &str) -> String {
        format!("{event_id}/{code}")
    }
}

/// Stored by registration and seat (see the `tickets_by_registration` migration for why), kept in
/// a batch by code: a check-in names both, and the batch loads the registration's tickets.
impl BufferedRow for TicketRow {
    const TABLE: &'static str = "{tickets}";
    const LOAD_BY: &'static str = "registration_id";
    const PRIMARY_KEY: &'static [&'static str] = &["registration_id", "seat"];
    const COLUMNS: &'static [&'static str] = &[
        "code",
        "event_id",
        "registration_id",
        "ticket_type_id",
        "seat",
        "checked_in_at",
        "check_in_nonce",
        "last_position",
    ];

    fn key(&self) -> String {
        Self::key_of(&self.event_id, &self.code)
    }

    fn from_row(row: &AnyRow) -> Result<Self, ProjectorError> {
        Ok(Self {
            code: row.try_get("code")?,
            event_id: row.try_get("event_id")?,
            registration_id: row.try_get("registration_id")?,
            ticket_type_id: row.try_get("ticket_type_id")?,
            seat: row.try_get("seat")?,
            checked_in_at: row.try_get("checked_in_at")?,
            check_in_nonce: row.try_get("check_in_nonce")?,
            last_position: row.try_get("last_position")?,
        })
    }

    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(self.code.as_str())
            .bind(self.event_id.as_str())
            .bind(self.registration_id.as_str())
            .bind(self.ticket_type_id.as_str())
            .bind(self.seat)
            .bind(self.checked_in_at.as_deref())
            .bind(self.check_in_nonce.as_deref())
            .bind(self.last_position)
    }

    fn last_position(&self) -> i64 {
        self.last_position
    }
}

/// A `waitlist_entries` row as stored.
#[derive(Debug, Clone)]
pub(crate) struct EntryRow {
    pub entry_id: String,
    pub event_id: String,
    pub ticket_type_id: String,
    pub attendee_name: String,
    pub attendee_email: String,
    /// The person the attendee was sealed for (see `crate::personal`).
    pub person_id: Option<String>,
    pub quantity: i64,
    pub status: WaitlistStatus,
    pub seq: i64,
    pub joined_at: String,
    pub offer_expires_at: Option<String>,
    pub registration_id: Option<String>,
    pub updated_at: String,
    pub last_position: i64,
}

impl BufferedRow for EntryRow {
    const TABLE: &'static str = "{waitlist}";
    const LOAD_BY: &'static str = "entry_id";
    const PRIMARY_KEY: &'static [&'static str] = &["entry_id"];
    const COLUMNS: &'static [&'static str] = &[
        "entry_id",
        "event_id",
        "ticket_type_id",
        "attendee_name",
        "attendee_email",
        "person_id",
        "quantity",
        "status",
        "seq",
        "joined_at",
        "offer_expires_at",
        "registration_id",
        "updated_at",
        "last_position",
    ];

    fn key(&self) -> String {
        self.entry_id.clone()
    }

    fn from_row(row: &AnyRow) -> Result<Self, ProjectorError> {
        let status: String = row.try_get("status")?;
        Ok(Self {
            entry_id: row.try_get("entry_id")?,
            event_id: row.try_get("event_id")?,
            ticket_type_id: row.try_get("ticket_type_id")?,
            attendee_name: row.try_get("attendee_name")?,
            attendee_email: row.try_get("attendee_email")?,
            person_id: row.try_get("person_id")?,
            quantity: row.try_get("quantity")?,
            status: parse_waitlist_status(&status)
                .ok_or_else(|| ProjectorError::Corrupt(format!("waitlist status `{status}`")))?,
            seq: row.try_get("seq")?,
            joined_at: row.try_get("joined_at")?,
            offer_expires_at: row.try_get("offer_expires_at")?,
            registration_id: row.try_get("registration_id")?,
            updated_at: row.try_get("updated_at")?,
            last_position: row.try_get("last_position")?,
        })
    }

    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(self.entry_id.as_str())
            .bind(self.event_id.as_str())
            .bind(self.ticket_type_id.as_str())
            .bind(self.attendee_name.as_str())
            .bind(self.attendee_email.as_str())
            .bind(self.person_id.as_deref())
            .bind(self.quantity)
            .bind(waitlist_status_text(self.status))
            .bind(self.seq)
            .bind(self.joined_at.as_str())
            .bind(self.offer_expires_at.as_deref())
            .bind(self.registration_id.as_deref())
            .bind(self.updated_at.as_str())
            .bind(self.last_position)
    }

    fn last_position(&self) -> i64 {
        self.last_position
    }
}

/// The stored (and API) spelling of a registration status.
pub(crate) fn registration_status_text(status: RegistrationStatus) -> &'static str {
    match status {
        RegistrationStatus::Held => "held",
        RegistrationStatus::Confirmed => "confirmed",
        RegistrationStatus::Cancelled => "cancelled",
        RegistrationStatus::Expired => "expired",
    }
}

/// The inverse of [`registration_status_text`].
pub(crate) fn parse_registration_status(text: &str) -> Option<RegistrationStatus> {
    match text {
        "held" => Some(RegistrationStatus::Held),
        "confirmed" => Some(RegistrationStatus::Confirmed),
        "cancelled" => Some(RegistrationStatus::Cancelled),
        "expired" => Some(RegistrationStatus::Expired),
        _ => None,
    }
}

/// The stored (and API) spelling of a payment status: money received is `paid`.
pub(crate) fn payment_status_text(status: PaymentStatus) -> &'static str {
    match status {
        PaymentStatus::Pending => "pending",
        PaymentStatus::Declined => "declined",
        PaymentStatus::Received => "paid",
        PaymentStatus::RefundDue => "refund_due",
        PaymentStatus::Refunded => "refunded",
    }
}

/// The inverse of [`payment_status_text`].
pub(crate) fn parse_payment_status(text: &str) -> Option<PaymentStatus> {
    match text {
        "pending" => Some(PaymentStatus::Pending),
        "declined" => Some(PaymentStatus::Declined),
        "paid" => Some(PaymentStatus::Received),
        "refund_due" => Some(PaymentStatus::RefundDue),
        "refunded" => Some(PaymentStatus::Refunded),
        _ => None,
    }
}

/// How far along a payment is: a payment's status only moves forward (as in the domain, a
/// refund stays a refund whatever is reported after it).
pub(crate) fn payment_rank(status: PaymentStatus) -> u8 {
    match status {
        PaymentStatus::Pending => 0,
        PaymentStatus::Declined => 1,
        PaymentStatus::Received => 2,
        PaymentStatus::RefundDue => 3,
        PaymentStatus::Refunded => 4,
    }
}

/// The stored spelling of a waitlist entry's status.
pub(crate) fn waitlist_status_text(status: WaitlistStatus) -> &'static str {
    match status {
        WaitlistStatus::Waiting => "waiting",
        WaitlistStatus::Offered => "offered",
        WaitlistStatus::Claimed => "claimed",
        WaitlistStatus::Expired => "expired",
        WaitlistStatus::Left => "left",
        WaitlistStatus::Closed => "closed",
    }
}

/// The inverse of [`waitlist_status_text`].
pub(crate) fn parse_waitlist_status(text: &str) -> Option<WaitlistStatus> {
    match text {
        "waiting" => Some(WaitlistStatus::Waiting),
        "offered" => Some(WaitlistStatus::Offered),
        "claimed" => Some(WaitlistStatus::Claimed),
        "expired" => Some(WaitlistStatus::Expired),
        "left" => Some(WaitlistStatus::Left),
        "closed" => Some(WaitlistStatus::Closed),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_reads_back_as_itself() {
        for status in [
            RegistrationStatus::Held,
            RegistrationStatus::Confirmed,
            RegistrationStatus::Cancelled,
            RegistrationStatus::Expired,
        ] {
            assert_eq!(
                parse_registration_status(registration_status_text(status)),
                Some(status)
            );
        }
        for status in [
            PaymentStatus::Pending,
            PaymentStatus::Declined,
            PaymentStatus::Received,
            PaymentStatus::RefundDue,
            PaymentStatus::Refunded,
        ] {
            assert_eq!(
                parse_payment_status(payment_status_text(status)),
                Some(status)
            );
        }
        for status in [
            WaitlistStatus::Waiting,
            WaitlistStatus::Offered,
            WaitlistStatus::Claimed,
            WaitlistStatus::Expired,
            WaitlistStatus::Left,
            WaitlistStatus::Closed,
        ] {
            assert_eq!(
                parse_waitlist_status(waitlist_status_text(status)),
                Some(status)
            );
        }
    }
}
