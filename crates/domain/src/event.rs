//! The event aggregate: one happening with its ticket types and registrations.
//! Stream `event-<uuid>`.
//!
//! Registrations live inside the event's stream on purpose: "never more confirmed seats than a
//! ticket type's quantity or the event's capacity" is then a rule about one stream, enforced by
//! the log's expected-revision check, with no cross-stream coordination. The same holds for
//! held seats (paid reservations waiting for payment), waitlist offers and check-ins: every
//! seat-counting rule reads and writes one stream.
//!
//! Submodules hold the larger groups of rules: [`ticketing`] (holds, payments, refunds,
//! cancellations), [`waitlist`] (joining, offers, claims), [`check_in`] (door scans) and
//! [`questions`] (registration questions and answers).

pub mod check_in;
pub mod questions;
mod ticketing;
mod waitlist;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

pub use self::questions::{AnswerValue, Answers, Question, QuestionKind};
pub use self::ticketing::payable;
use crate::{
    EventId, FactCodec, Money, PaymentId, RegistrationId, TicketCode, TicketTypeId, Timestamp,
    UserId, VenueId, WaitlistEntryId,
};

/// Longest accepted title, category, ticket type name or attendee name, in characters.
pub const MAX_SHORT_TEXT: usize = 200;
/// Longest accepted description, in characters.
pub const MAX_DESCRIPTION: usize = 10_000;
/// Per-order maximum when the organizer sets none.
pub const DEFAULT_MAX_PER_ORDER: u32 = 10;
/// The highest per-order maximum an organizer may set.
pub const MAX_PER_ORDER_LIMIT: u32 = 100;
/// How many ticket types one event may have.
pub const MAX_TICKET_TYPES: usize = 50;
/// How long a hold waits for payment when the organizer sets nothing: 15 minutes.
pub const DEFAULT_HOLD_SECONDS: u32 = 15 * 60;
/// How long a waitlist offer stays open when the organizer sets nothing: 24 hours.
pub const DEFAULT_OFFER_SECONDS: u32 = 24 * 60 * 60;
/// Longest hold or offer an organizer may set: 7 days.
pub const MAX_WINDOW_SECONDS: u32 = 7 * 24 * 60 * 60;
/// Longest accepted scan nonce, in characters.
pub const MAX_NONCE_LEN: usize = 128;
/// How far in the future a door scanner's clock may be before its `scanned_at` is refused.
pub const SCAN_CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);
/// Reminders before the start when the organizer sets nothing: 24 hours and 1 hour before.
pub const DEFAULT_REMINDER_OFFSETS: [u32; 2] = [24 * 60 * 60, 60 * 60];
/// Most reminders one event may have.
pub const MAX_REMINDERS: usize = 5;
/// Earliest reminder an organizer may set: 30 days before the start.
pub const MAX_REMINDER_OFFSET: u32 = 30 * 24 * 60 * 60;

/// Where an event is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Being prepared; not visible to attendees, no registrations.
    #[default]
    Draft,
    /// On sale (within each ticket type's sales window).
    Published,
    /// Called off. No further registrations.
    Cancelled,
}

/// A kind of ticket with its own price and quantity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketType {
    /// Unique within the event.
    pub id: TicketTypeId,
    /// Display name, unique within the event ignoring case.
    pub name: String,
    /// Price of one seat; zero means free.
    pub price: Money,
    /// Seats of this type that can ever be confirmed.
    pub quantity: u32,
    /// Sales open at this time (inclusive); `None` means from publication.
    pub sales_start: Option<Timestamp>,
    /// Sales close at this time (exclusive); `None` means until the event ends.
    pub sales_end: Option<Timestamp>,
    /// Seats of this type confirmed and not cancelled.
    pub confirmed: u32,
    /// Seats of this type held for payment (paid reservations not yet paid nor expired).
    #[serde(default)]
    pub held: u32,
    /// Seats of this type kept for waitlist offers not yet claimed nor expired.
    #[serde(default)]
    pub offered: u32,
    /// Waitlist entries still waiting for an offer, in join order: only the first may be offered.
    #[serde(default)]
    pub waiting: VecDeque<WaitlistEntryId>,
}

impl TicketType {
    /// Seats of this type taken: confirmed, held or offered.
    pub fn used(&self) -> u32 {
        self.confirmed
            .saturating_add(self.held)
            .saturating_add(self.offered)
    }

    /// Seats of this type still available, ignoring the event-wide capacity.
    pub fn remaining(&self) -> u32 {
        self.quantity.saturating_sub(self.used())
    }
}

/// The person a registration is for. Personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attendee {
    /// Full name as printed on the ticket.
    pub name: String,
    /// Where tickets and notices go.
    pub email: String,
}

/// Status of one registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationStatus {
    /// The seats are the attendee's: free, or paid.
    Confirmed,
    /// The registration was cancelled and its seats freed.
    Cancelled,
    /// Paid seats held until the hold's expiry, waiting for payment.
    Held,
    /// A hold that expired unpaid; its seats were freed.
    Expired,
}

impl RegistrationStatus {
    /// True while the registration counts against capacity.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Confirmed | Self::Held)
    }
}

/// N seats of one ticket type for one attendee.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    /// Chosen by the caller, unique within the event.
    pub id: RegistrationId,
    /// The ticket type whose seats it holds.
    pub ticket_type_id: TicketTypeId,
    /// Who the seats are for.
    pub attendee: Attendee,
    /// Number of seats.
    pub quantity: u32,
    /// One code per seat.
    pub ticket_codes: Vec<TicketCode>,
    /// Where the registration is in its life.
    pub status: RegistrationStatus,
    /// What the seats cost in all; `None` for free seats.
    #[serde(default)]
    pub price: Option<Money>,
    /// When an unpaid hold expires; `None` for registrations that were never held.
    #[serde(default)]
    pub hold_expires_at: Option<Timestamp>,
    /// The payment that confirmed a paid registration.
    #[serde(default)]
    pub payment_id: Option<PaymentId>,
    /// The account that made the registration (may pay, cancel and see it), when one did.
    #[serde(default)]
    pub holder: Option<UserId>,
    /// Answers to the event's registration questions. Personal data.
    #[serde(default)]
    pub answers: Answers,
}

/// Per-event rules for holds, offers, cancellations and per-attendee limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventPolicy {
    /// How long a paid reservation's seats are held waiting for payment.
    pub hold_seconds: u32,
    /// How long a waitlist offer stays open.
    pub offer_seconds: u32,
    /// Attendees may cancel until this time; `None` means until the event starts.
    pub cancellation_deadline: Option<Timestamp>,
    /// Most seats one attendee (by e-mail address) may hold or have confirmed; `None` for no limit.
    pub max_per_attendee: Option<u32>,
    /// When attendees are reminded, in seconds before the start, latest first (largest offset
    /// first), distinct; empty for no reminders. Default [`DEFAULT_REMINDER_OFFSETS`].
    #[serde(default = "default_reminder_offsets")]
    pub reminder_offsets_seconds: Vec<u32>,
}

fn default_reminder_offsets() -> Vec<u32> {
    DEFAULT_REMINDER_OFFSETS.to_vec()
}

impl Default for EventPolicy {
    fn default() -> Self {
        Self {
            hold_seconds: DEFAULT_HOLD_SECONDS,
            offer_seconds: DEFAULT_OFFER_SECONDS,
            cancellation_deadline: None,
            max_per_attendee: None,
            reminder_offsets_seconds: default_reminder_offsets(),
        }
    }
}

/// A reminder before an event's start: `offset_seconds` before `starts_at`, due at `due_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledReminder {
    /// How long before the start, in seconds.
    pub offset_seconds: u32,
    /// The start it reminds of.
    pub starts_at: Timestamp,
    /// `starts_at - offset_seconds`.
    pub due_at: Timestamp,
}

/// Changes to an event's policy; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyChange {
    /// New hold duration, 1 second to 7 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_seconds: Option<u32>,
    /// New offer duration, 1 second to 7 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer_seconds: Option<u32>,
    /// New cancellation deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_deadline: Option<Timestamp>,
    /// New per-attendee limit; `Some(0)` removes the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_attendee: Option<u32>,
    /// New reminder offsets, in seconds before the start (each 1 second to 30 days, at most
    /// five); `Some(vec![])` turns reminders off. Stored distinct, largest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminder_offsets_seconds: Option<Vec<u32>>,
}

/// Where a waitlist entry is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitlistStatus {
    /// In line for an offer.
    Waiting,
    /// Seats are kept for the entry until the offer expires.
    Offered,
    /// The offer became a registration.
    Claimed,
    /// The offer ran out unclaimed.
    Expired,
    /// The attendee left the waitlist.
    Left,
    /// The event was cancelled while the entry waited.
    Closed,
}

/// One attendee waiting for seats of one ticket type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitlistEntry {
    /// Chosen by the caller, unique within the event.
    pub id: WaitlistEntryId,
    /// The ticket type waited for.
    pub ticket_type_id: TicketTypeId,
    /// Who waits. Personal data.
    pub attendee: Attendee,
    /// Seats wanted; an offer is for all of them.
    pub quantity: u32,
    /// Answers given when joining, carried into the registration. Personal data.
    pub answers: Answers,
    /// Join order across the whole event, from 0.
    pub seq: u64,
    /// Where the entry is in its life.
    pub status: WaitlistStatus,
    /// When the current offer expires.
    pub offer_expires_at: Option<Timestamp>,
    /// The registration a claimed offer became.
    pub registration_id: Option<RegistrationId>,
    /// The account that joined (may claim and leave), when one did.
    #[serde(default)]
    pub holder: Option<UserId>,
}

/// A successful door scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckIn {
    /// When the ticket was scanned (the scanner's time for offline scans).
    pub scanned_at: Timestamp,
    /// The scanner's nonce for this scan.
    pub nonce: String,
}

/// One issued ticket (one seat of one registration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// The registration the seat belongs to.
    pub registration_id: RegistrationId,
    /// The scan that let it in, while it counts as checked in.
    pub check_in: Option<CheckIn>,
}

/// A scan the event has seen, by nonce: what was scanned, so a repeat of the same scan gets the
/// same answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scan {
    /// The code scanned.
    pub ticket_code: TicketCode,
    /// When it was scanned.
    pub scanned_at: Timestamp,
}

/// What the event knows of one payment, by the provider's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRecord {
    /// The registration it pays for.
    pub registration_id: RegistrationId,
    /// Where the payment is.
    pub status: PaymentStatus,
}

/// Where a payment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// The provider will confirm or decline it later.
    Pending,
    /// The provider refused it; no money moved.
    Declined,
    /// The money arrived and paid for the registration.
    Received,
    /// The money arrived but must go back (late, duplicate, cancelled); the refund is under way.
    RefundDue,
    /// The money went back.
    Refunded,
}

/// Why money goes back to an attendee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundReason {
    /// The attendee cancelled a paid registration.
    AttendeeCancelled,
    /// The organizer cancelled the event.
    EventCancelled,
    /// The payment arrived after the hold expired and its seats were gone.
    LatePayment,
    /// The registration was already paid by another payment.
    DuplicatePayment,
    /// The payment arrived for a registration that was cancelled.
    RegistrationCancelled,
    /// The amount paid is not the amount due.
    AmountMismatch,
}

/// Version of [`Event`]'s serialized shape, for snapshots: bump it whenever `Event` or a type
/// inside it changes shape, and older snapshots are ignored (they are only a cache).
///
/// 3: `seats_by_attendee` is no longer stored (it is keyed by e-mail address, which a snapshot
/// may only hold sealed); [`Event::recount_seats_by_attendee`] derives it after loading.
/// 4: reminders (`policy.reminder_offsets_seconds`, `scheduled_reminder`, `last_reminder`).
pub const STATE_SCHEMA_VERSION: u32 = 4;

/// What is known about an event, folded from its facts. `Event::default()` is "no such event".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `None` until `EventDrafted`.
    pub id: Option<EventId>,
    /// Where it takes place; `None` until `EventDrafted`.
    pub venue_id: Option<VenueId>,
    /// Draft, published or cancelled.
    pub status: EventStatus,
    /// Display title.
    pub title: String,
    /// Free text, possibly empty.
    pub description: String,
    /// Used by listing filters.
    pub category: String,
    /// When it begins; `None` until `EventDrafted`.
    pub starts_at: Option<Timestamp>,
    /// When it is over (exclusive); `None` until `EventDrafted`.
    pub ends_at: Option<Timestamp>,
    /// IANA time zone name the event is advertised in.
    pub timezone: String,
    /// Event-wide seat limit across all ticket types; at most the venue's capacity.
    pub capacity: u32,
    /// Most seats one reservation may take.
    pub max_per_order: u32,
    /// Ticket types by id, in id order.
    pub ticket_types: BTreeMap<TicketTypeId, TicketType>,
    /// Every registration ever made, by id.
    pub registrations: BTreeMap<RegistrationId, Registration>,
    /// Every ticket ever issued for this event, by code, so none is issued twice and a door
    /// scan finds its registration.
    pub tickets: BTreeMap<TicketCode, Ticket>,
    /// Holds, offers, cancellations and per-attendee limits.
    pub policy: EventPolicy,
    /// Questions asked at registration.
    pub questions: Vec<Question>,
    /// Every waitlist entry ever made, by id.
    pub waitlist: BTreeMap<WaitlistEntryId, WaitlistEntry>,
    /// How many entries ever joined the waitlist: the next entry's `seq`.
    pub waitlist_joined: u64,
    /// Every payment reported for this event, by the provider's id.
    pub payments: BTreeMap<PaymentId, PaymentRecord>,
    /// Door scans by nonce.
    pub scans: BTreeMap<String, Scan>,
    /// Seats held or confirmed per attendee, by lower-cased e-mail address. Derived from
    /// `registrations` and never serialized: a snapshot may hold e-mail addresses only sealed,
    /// and sealed text cannot be a key. Whoever deserializes an `Event` calls
    /// [`Event::recount_seats_by_attendee`].
    #[serde(skip)]
    pub seats_by_attendee: BTreeMap<String, u32>,
    /// The next reminder as last recorded (`ReminderScheduled`): what the scheduler's timer for
    /// this event says. `None` when no reminder is pending.
    #[serde(default)]
    pub scheduled_reminder: Option<ScheduledReminder>,
    /// The last reminder that was due (`ReminderDue`): reminders go out latest-offset first, so
    /// for the same start only smaller offsets are still to come.
    #[serde(default)]
    pub last_reminder: Option<ScheduledReminder>,
}

impl Event {
    /// True once the event has been drafted.
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }

    /// Seats confirmed across all ticket types.
    pub fn confirmed(&self) -> u32 {
        // Saturating: a plain `sum` panics on overflow in debug builds, and a state folded from
        // arbitrary facts must never make a read panic.
        self.ticket_types
            .values()
            .fold(0, |sum: u32, t| sum.saturating_add(t.confirmed))
    }

    /// Seats held for payment across all ticket types.
    pub fn held(&self) -> u32 {
        self.ticket_types
            .values()
            .fold(0, |sum: u32, t| sum.saturating_add(t.held))
    }

    /// Seats taken across all ticket types: confirmed, held or kept for waitlist offers. Never
    /// more than the capacity.
    pub fn used(&self) -> u32 {
        self.ticket_types
            .values()
            .fold(0, |sum: u32, t| sum.saturating_add(t.used()))
    }

    /// Entries of `ticket_type`'s waitlist still waiting for an offer.
    pub fn waiting(&self, ticket_type: TicketTypeId) -> usize {
        self.ticket_types
            .get(&ticket_type)
            .map_or(0, |t| t.waiting.len())
    }

    /// Seats `email` holds or has confirmed here.
    pub fn seats_of(&self, email: &str) -> u32 {
        self.seats_by_attendee
            .get(&email.to_lowercase())
            .copied()
            .unwrap_or(0)
    }

    /// Derives `seats_by_attendee` from the registrations again, exactly as folding their facts
    /// leaves it: every attendee who ever registered has an entry, counting the seats of their
    /// held and confirmed registrations. For states read back from a snapshot.
    pub fn recount_seats_by_attendee(&mut self) {
        let mut seats: BTreeMap<String, u32> = BTreeMap::new();
        for registration in self.registrations.values() {
            let tally = seats
                .entry(registration.attendee.email.to_lowercase())
                .or_insert(0);
            if registration.status.is_active() {
                *tally = tally.saturating_add(registration.quantity);
            }
        }
        self.seats_by_attendee = seats;
    }

    /// The moment attendees can no longer cancel on their own.
    pub fn cancellation_deadline(&self) -> Option<Timestamp> {
        self.policy.cancellation_deadline.or(self.starts_at)
    }

    /// Roughly how many bytes this state occupies in memory (heap included), for caches that
    /// are bounded by size. An estimate from the shapes of the maps and the lengths of the
    /// strings, not a measurement.
    pub fn approximate_size(&self) -> usize {
        /// A B-tree entry's share of its node, plus the node's own bookkeeping.
        const ENTRY: usize = 16;
        /// A ticket code: `String` header plus 32 hex characters, rounded to the allocator.
        const CODE: usize = std::mem::size_of::<TicketCode>() + 32;
        let strings =
            self.title.len() + self.description.len() + self.category.len() + self.timezone.len();
        let ticket_types: usize = self
            .ticket_types
            .values()
            .map(|t| {
                std::mem::size_of::<TicketType>() + ENTRY + t.name.len() + t.price.currency.len()
            })
            .sum();
        let answers = |answers: &Answers| -> usize {
            answers
                .iter()
                .map(|(k, v)| {
                    ENTRY
                        + k.len()
                        + match v {
                            AnswerValue::One(s) => s.len() + 24,
                            AnswerValue::Many(list) => list.iter().map(|s| s.len() + 24).sum(),
                        }
                })
                .sum()
        };
        let registrations: usize = self
            .registrations
            .values()
            .map(|r| {
                std::mem::size_of::<Registration>()
                    + ENTRY
                    + r.attendee.name.len()
                    + r.attendee.email.len()
                    + r.ticket_codes.len() * CODE
                    + answers(&r.answers)
            })
            .sum();
        let waitlist: usize = self
            .waitlist
            .values()
            .map(|e| {
                std::mem::size_of::<WaitlistEntry>()
                    + ENTRY
                    + e.attendee.name.len()
                    + e.attendee.email.len()
                    + answers(&e.answers)
            })
            .sum();
        let scans: usize = self
            .scans
            .keys()
            .map(|nonce| std::mem::size_of::<Scan>() + ENTRY + nonce.len() + CODE)
            .sum();
        std::mem::size_of::<Self>()
            + strings
            + ticket_types
            + registrations
            + waitlist
            + scans
            + self.tickets.len() * (std::mem::size_of::<Ticket>() + CODE + ENTRY)
            + self.payments.len() * (std::mem::size_of::<PaymentRecord>() + 64 + ENTRY)
            + self.seats_by_attendee.len() * (ENTRY + 48)
    }

    /// Seats of `ticket_type` that are not taken, counting the event-wide capacity. Seats freed
    /// while someone waits are offered to the waitlist first (see [`waitlist`]), so a new
    /// reservation also needs an empty line.
    pub fn available(&self, ticket_type: TicketTypeId) -> u32 {
        let event_left = self.capacity.saturating_sub(self.used());
        self.ticket_types
            .get(&ticket_type)
            .map_or(0, |t| t.remaining().min(event_left))
    }
}

/// What the command handler knows about the venue when drafting or resizing an event. The event
/// aggregate cannot read the venue stream itself; the caller loads it and passes it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VenueInfo {
    /// The venue's id.
    pub venue_id: VenueId,
    /// The seats the venue holds now.
    pub capacity: u32,
}

/// Changes to an event's details; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DetailsChange {
    /// New title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// New description; may be empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// New category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// New start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<Timestamp>,
    /// New end; must stay after the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Timestamp>,
    /// New IANA time zone name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// New per-order maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_order: Option<u32>,
}

/// A request to change an event.
#[derive(Debug, Clone, PartialEq)]
pub enum EventCommand {
    /// Create the event as a draft at a venue. `venue` is `None` when the venue does not exist.
    DraftEvent {
        event_id: EventId,
        venue: Option<VenueInfo>,
        title: String,
        description: String,
        category: String,
        starts_at: Timestamp,
        ends_at: Timestamp,
        timezone: String,
        /// Defaults to the venue's capacity.
        capacity: Option<u32>,
        /// Defaults to [`DEFAULT_MAX_PER_ORDER`].
        max_per_order: Option<u32>,
    },
    /// Change title, description, category, times, time zone or per-order maximum.
    UpdateDetails(DetailsChange),
    /// Add a ticket type.
    AddTicketType {
        ticket_type_id: TicketTypeId,
        name: String,
        price: Money,
        quantity: u32,
        sales_start: Option<Timestamp>,
        sales_end: Option<Timestamp>,
    },
    /// Put the event on sale.
    Publish,
    /// Call the event off.
    Cancel { reason: Option<String> },
    /// Set the event-wide capacity; `venue` is the venue as it is now.
    ChangeCapacity { capacity: u32, venue: VenueInfo },
    /// Change holds, offers, the cancellation deadline or the per-attendee limit.
    ChangePolicy(PolicyChange),
    /// Replace the registration questions (answers already given stay as they were).
    SetQuestions { questions: Vec<Question> },
    /// Move the event to new times; registrations stay. The venue's calendar is the caller's
    /// business (see `venue::VenueCommand::BookEvent`).
    Reschedule {
        starts_at: Timestamp,
        ends_at: Timestamp,
    },
    /// Reserve `quantity` seats of a ticket type for an attendee, one ticket code per seat. Free
    /// seats are confirmed at once; paid seats are held until payment or the hold's expiry. The
    /// caller generates the codes (the domain has no randomness).
    Reserve {
        registration_id: RegistrationId,
        ticket_type_id: TicketTypeId,
        attendee: Attendee,
        quantity: u32,
        ticket_codes: Vec<TicketCode>,
        answers: Answers,
    },
    /// Cancel a registration (the attendee's own cancellation, until the deadline): its seats
    /// go to the waitlist or back on sale; money paid is refunded.
    CancelRegistration { registration_id: RegistrationId },
    /// The provider reports a payment pending (it will confirm or decline later).
    RecordPaymentPending {
        registration_id: RegistrationId,
        payment_id: PaymentId,
    },
    /// The provider declined a payment; a hold stays until it expires.
    RecordPaymentDeclined {
        registration_id: RegistrationId,
        payment_id: PaymentId,
        reason: String,
    },
    /// Money arrived for a registration: confirms its hold, or, when the hold is gone, confirms
    /// it again if its seats are still free and refunds it otherwise (the late-payment policy,
    /// see [`ticketing`]).
    RecordPayment {
        registration_id: RegistrationId,
        payment_id: PaymentId,
        amount: Money,
    },
    /// The provider returned the money of a refund that was due.
    CompleteRefund {
        payment_id: PaymentId,
        refund_id: String,
    },
    /// Release an unpaid hold whose time is up (issued by the scheduler). A no-op for a hold
    /// that is not due yet or no longer held.
    ExpireHold { registration_id: RegistrationId },
    /// Join a sold-out ticket type's waitlist.
    JoinWaitlist {
        entry_id: WaitlistEntryId,
        ticket_type_id: TicketTypeId,
        attendee: Attendee,
        quantity: u32,
        answers: Answers,
    },
    /// Take up an open waitlist offer: free seats are confirmed, paid seats held for payment.
    /// `ticket_codes` must hold at least one code per seat of the entry; the first are used.
    ClaimOffer {
        entry_id: WaitlistEntryId,
        registration_id: RegistrationId,
        ticket_codes: Vec<TicketCode>,
    },
    /// Withdraw an unclaimed offer whose time is up (issued by the scheduler); the seats go to
    /// the next in line. A no-op for an offer not due yet or no longer open.
    ExpireOffer { entry_id: WaitlistEntryId },
    /// Leave the waitlist; an open offer's seats go to the next in line.
    LeaveWaitlist { entry_id: WaitlistEntryId },
    /// A door scan. `scanned_at` is the scanner's time for scans uploaded later (offline).
    CheckIn {
        ticket_code: TicketCode,
        nonce: String,
        scanned_at: Option<Timestamp>,
    },
    /// Undo a ticket's check-in, so it can be scanned again.
    RevertCheckIn { ticket_code: TicketCode },
    /// Record which account holds a registration just made (issued with the `Reserve` it
    /// belongs to). A registration's holder never changes.
    RecordRegistrationHolder {
        registration_id: RegistrationId,
        holder: UserId,
    },
    /// Record which account holds a waitlist entry just made (issued with its `JoinWaitlist`).
    RecordWaitlistHolder {
        entry_id: WaitlistEntryId,
        holder: UserId,
    },
    /// Record the reminder that is due now, if one is (issued by the scheduler when the event's
    /// reminder timer fires). Of several due at once only the latest (smallest offset) goes
    /// out; a reminder is recorded once per start and offset; none once the event started.
    RemindAttendees,
}

/// Facts of the event aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum EventFact {
    /// The event was created as a draft at a venue.
    EventDrafted {
        event_id: EventId,
        venue_id: VenueId,
        title: String,
        description: String,
        category: String,
        starts_at: Timestamp,
        ends_at: Timestamp,
        timezone: String,
        capacity: u32,
        max_per_order: u32,
    },
    /// Some details changed; only the changed fields are present.
    EventDetailsUpdated(DetailsChange),
    /// A ticket type was added, with nothing confirmed yet.
    TicketTypeAdded {
        ticket_type_id: TicketTypeId,
        name: String,
        price: Money,
        quantity: u32,
        sales_start: Option<Timestamp>,
        sales_end: Option<Timestamp>,
    },
    /// The event went on sale.
    EventPublished { published_at: Timestamp },
    /// The event was called off.
    EventCancelled {
        reason: Option<String>,
        cancelled_at: Timestamp,
    },
    /// The event-wide capacity changed.
    EventCapacityChanged { capacity: u32 },
    /// Seats of a free ticket type were confirmed for an attendee, one code per seat.
    RegistrationConfirmed {
        registration_id: RegistrationId,
        ticket_type_id: TicketTypeId,
        attendee: Attendee,
        quantity: u32,
        ticket_codes: Vec<TicketCode>,
        confirmed_at: Timestamp,
    },
    /// A registration was cancelled; `ticket_type_id` and `quantity` repeat the registration's
    /// so that readers of the log need not look it up. Cancelling a hold releases it.
    RegistrationCancelled {
        registration_id: RegistrationId,
        ticket_type_id: TicketTypeId,
        quantity: u32,
        cancelled_at: Timestamp,
    },
    /// The event's policy changed; only the changed fields are present.
    EventPolicyChanged(PolicyChange),
    /// The registration questions were replaced.
    RegistrationQuestionsSet { questions: Vec<Question> },
    /// The event moved to new times; registrations stay.
    EventRescheduled {
        starts_at: Timestamp,
        ends_at: Timestamp,
        previous_starts_at: Timestamp,
        previous_ends_at: Timestamp,
        rescheduled_at: Timestamp,
    },
    /// Paid seats were held for an attendee until `expires_at`, waiting for payment. The codes
    /// are issued now and become valid at the door once paid.
    SeatsHeld {
        registration_id: RegistrationId,
        ticket_type_id: TicketTypeId,
        attendee: Attendee,
        quantity: u32,
        ticket_codes: Vec<TicketCode>,
        price: Money,
        expires_at: Timestamp,
        held_at: Timestamp,
    },
    /// Answers to the registration questions, for a registration just confirmed or held.
    AnswersGiven {
        registration_id: RegistrationId,
        answers: Answers,
    },
    /// The provider will confirm or decline a payment later.
    PaymentPending {
        registration_id: RegistrationId,
        payment_id: PaymentId,
        reported_at: Timestamp,
    },
    /// The provider declined a payment.
    PaymentDeclined {
        registration_id: RegistrationId,
        payment_id: PaymentId,
        reason: String,
        declined_at: Timestamp,
    },
    /// Money arrived for a registration.
    PaymentReceived {
        registration_id: RegistrationId,
        payment_id: PaymentId,
        amount: Money,
        received_at: Timestamp,
    },
    /// A held (or, for a late payment, expired) registration was paid and is confirmed.
    HoldConfirmed {
        registration_id: RegistrationId,
        ticket_type_id: TicketTypeId,
        quantity: u32,
        payment_id: PaymentId,
        /// True when the payment came after the hold had expired and the seats were still free.
        late: bool,
        confirmed_at: Timestamp,
    },
    /// An unpaid hold ran out; its seats were freed.
    HoldExpired {
        registration_id: RegistrationId,
        ticket_type_id: TicketTypeId,
        quantity: u32,
        expired_at: Timestamp,
    },
    /// Money received must go back to the attendee; the provider is asked to refund it.
    RefundDue {
        registration_id: RegistrationId,
        payment_id: PaymentId,
        amount: Money,
        reason: RefundReason,
        due_at: Timestamp,
    },
    /// The provider refunded a payment.
    RefundCompleted {
        registration_id: RegistrationId,
        payment_id: PaymentId,
        refund_id: String,
        completed_at: Timestamp,
    },
    /// An attendee joined a ticket type's waitlist.
    WaitlistJoined {
        entry_id: WaitlistEntryId,
        ticket_type_id: TicketTypeId,
        attendee: Attendee,
        quantity: u32,
        answers: Answers,
        joined_at: Timestamp,
    },
    /// Freed seats were kept for the first entry in line until `expires_at`.
    WaitlistOfferMade {
        entry_id: WaitlistEntryId,
        ticket_type_id: TicketTypeId,
        quantity: u32,
        expires_at: Timestamp,
        offered_at: Timestamp,
    },
    /// An offer ran out unclaimed; its seats were freed.
    WaitlistOfferExpired {
        entry_id: WaitlistEntryId,
        ticket_type_id: TicketTypeId,
        quantity: u32,
        expired_at: Timestamp,
    },
    /// An offer was taken up; the registration named follows in the same append.
    WaitlistOfferClaimed {
        entry_id: WaitlistEntryId,
        registration_id: RegistrationId,
        ticket_type_id: TicketTypeId,
        quantity: u32,
        claimed_at: Timestamp,
    },
    /// An attendee left the waitlist; seats of an open offer were freed.
    WaitlistLeft {
        entry_id: WaitlistEntryId,
        ticket_type_id: TicketTypeId,
        quantity: u32,
        had_offer: bool,
        left_at: Timestamp,
    },
    /// A ticket was let in at the door.
    TicketCheckedIn {
        ticket_code: TicketCode,
        registration_id: RegistrationId,
        ticket_type_id: TicketTypeId,
        nonce: String,
        /// When the scan happened (the scanner's clock for offline scans).
        scanned_at: Timestamp,
        /// When the log learned of it.
        recorded_at: Timestamp,
    },
    /// A check-in was undone; the ticket may be scanned again.
    CheckInReverted {
        ticket_code: TicketCode,
        registration_id: RegistrationId,
        reverted_at: Timestamp,
    },
    /// The account holding a registration (it follows the registration's own fact).
    RegistrationHolderRecorded {
        registration_id: RegistrationId,
        holder: UserId,
    },
    /// The account holding a waitlist entry (it follows `WaitlistJoined`).
    WaitlistHolderRecorded {
        entry_id: WaitlistEntryId,
        holder: UserId,
    },
    /// The event's next reminder changed: due at `reminder.due_at`, or `None` when no reminder
    /// is pending any more (all sent, none configured, the event cancelled or started). It
    /// follows the fact that changed it (publication, new times or offsets, a reminder sent).
    ReminderScheduled { reminder: Option<ScheduledReminder> },
    /// Attendees are reminded: the event starts at `starts_at`, `offset_seconds` from `due_at`.
    ReminderDue {
        offset_seconds: u32,
        starts_at: Timestamp,
        due_at: Timestamp,
        reminded_at: Timestamp,
    },
}

impl FactCodec for EventFact {
    const AGGREGATE: &'static str = "event";

    fn schema_version(_fact_type: &str) -> u32 {
        1
    }
}

/// Why an event command was refused. Each variant maps to one stable API error code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EventError {
    /// A field failed validation (`validation_failed`).
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// `DraftEvent` for an id that exists (`conflict`).
    #[error("event already exists")]
    AlreadyExists,
    /// Any other command for an event that does not exist (`not_found`).
    #[error("event not found")]
    NotFound,
    /// The venue named when drafting does not exist (`validation_failed` on `venue_id`).
    #[error("venue not found")]
    VenueNotFound,
    /// Capacity above what the venue holds (`capacity_exceeds_venue`).
    #[error("capacity {capacity} exceeds the venue's capacity {venue_capacity}")]
    CapacityExceedsVenue { capacity: u32, venue_capacity: u32 },
    /// Capacity below the seats already confirmed, held or offered (`capacity_below_sold`).
    #[error("capacity {capacity} is below the {sold} seats already confirmed, held or offered")]
    CapacityBelowSold { capacity: u32, sold: u32 },
    /// The command does not fit the event's status, e.g. publishing twice (`invalid_state`).
    #[error("event is {status:?}: {message}")]
    InvalidState {
        status: EventStatus,
        message: &'static str,
    },
    /// Reserving on an event that is not published (`event_not_on_sale`).
    #[error("event is not on sale")]
    NotOnSale,
    /// Reserving on a cancelled event (`event_cancelled`).
    #[error("event is cancelled")]
    Cancelled,
    /// Reserving after the event ended (`event_ended`).
    #[error("event has ended")]
    Ended,
    /// No such ticket type in this event (`not_found`).
    #[error("ticket type not found")]
    TicketTypeNotFound,
    /// Another ticket type already has this name (`conflict`).
    #[error("a ticket type with this name already exists")]
    DuplicateTicketType,
    /// Before the ticket type's sales window (`sales_not_open`).
    #[error("sales have not opened yet")]
    SalesNotOpen { opens_at: Timestamp },
    /// After the ticket type's sales window (`sales_closed`).
    #[error("sales have closed")]
    SalesClosed { closed_at: Timestamp },
    /// More seats asked than the per-order maximum (`order_limit_exceeded`).
    #[error("at most {max} seats per order")]
    OrderLimitExceeded { max: u32 },
    /// Not enough seats left (`sold_out`).
    #[error("sold out: {available} seats available")]
    SoldOut { available: u32 },
    /// No such registration in this event (`not_found`).
    #[error("registration not found")]
    RegistrationNotFound,
    /// The registration id is already used (`conflict`).
    #[error("registration already exists")]
    RegistrationExists,
    /// Cancelling a registration twice (`already_cancelled`).
    #[error("registration is already cancelled")]
    RegistrationAlreadyCancelled,
    /// An answer to a registration question is missing or malformed (`validation_failed`).
    #[error("answers.{question}: {message}")]
    InvalidAnswer { question: String, message: String },
    /// More seats for one attendee than the event allows (`attendee_limit_exceeded`).
    #[error("at most {max} seats per attendee; {already} already taken")]
    AttendeeLimitExceeded { max: u32, already: u32 },
    /// Attendees can no longer cancel on their own (`cancellation_closed`).
    #[error("cancellations closed at {deadline}")]
    CancellationClosed { deadline: Timestamp },
    /// Paying or cancelling a hold that already expired (`hold_expired`).
    #[error("the hold expired")]
    HoldExpired { expired_at: Option<Timestamp> },
    /// Paying for a registration that needs no payment: free, or paid already (`not_payable`).
    #[error("registration is {status:?} and needs no payment")]
    NotPayable { status: RegistrationStatus },
    /// No such waitlist entry in this event (`not_found`).
    #[error("waitlist entry not found")]
    WaitlistEntryNotFound,
    /// The waitlist entry id is already used (`conflict`).
    #[error("waitlist entry already exists")]
    WaitlistEntryExists,
    /// The attendee already waits for this ticket type (`already_on_waitlist`).
    #[error("already on the waitlist for this ticket type")]
    AlreadyOnWaitlist { entry_id: WaitlistEntryId },
    /// Joining a waitlist while seats can be reserved (`seats_available`).
    #[error("{available} seats are available: reserve instead")]
    SeatsAvailable { available: u32 },
    /// Claiming before an offer was made (`offer_not_made`).
    #[error("no offer has been made to this entry yet")]
    OfferNotMade,
    /// Claiming an offer whose time ran out (`offer_expired`).
    #[error("the offer expired")]
    OfferExpired,
    /// The entry's offer was already taken up (`offer_claimed`).
    #[error("the offer was already claimed")]
    OfferClaimed {
        registration_id: Option<RegistrationId>,
    },
    /// Leaving or claiming from an entry that is no longer on the waitlist (`not_on_waitlist`).
    #[error("the entry is no longer on the waitlist ({status:?})")]
    NotOnWaitlist { status: WaitlistStatus },
    /// No ticket with this code for this event (`invalid`).
    #[error("unknown ticket code")]
    TicketInvalid,
    /// The ticket's registration was cancelled or its hold expired (`canceled`).
    #[error("the ticket was cancelled")]
    TicketCancelled,
    /// The ticket's registration is held and not paid (`unpaid`).
    #[error("the ticket is not paid")]
    TicketUnpaid,
    /// The ticket was already let in (`already_redeemed`).
    #[error("already checked in at {first_scanned_at}")]
    AlreadyRedeemed { first_scanned_at: Timestamp },
    /// The scan's nonce was already used for another ticket (`nonce_reused`).
    #[error("this nonce was already used for another ticket")]
    NonceReused,
    /// Reverting a check-in of a ticket that is not checked in (`not_checked_in`).
    #[error("the ticket is not checked in")]
    NotCheckedIn,
    /// A payment id already reported for another registration (`conflict`).
    #[error("payment {0} belongs to another registration")]
    PaymentOfOtherRegistration(PaymentId),
    /// No refund is due for this payment (`not_found`).
    #[error("no refund is due for payment {0}")]
    NoRefundDue(PaymentId),
}

/// Longest accepted cancellation reason, in characters.
pub const MAX_CANCEL_REASON: usize = 1_000;
/// Longest accepted e-mail address, in characters (RFC 5321's path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// Decides what a command means for this event. No IO, no clock: `now` comes in.
///
/// Checks run in the order that gives the caller the most useful answer first: whether the
/// event exists and is in a state that allows the command, then the request's own fields, and
/// only then rules that depend on what others did (seats left).
///
/// Commands that can move the event's next reminder (publishing, cancelling, new times or
/// reminder offsets, a reminder going out) end with `ReminderScheduled` when it moved, so the
/// scheduler's timer for the event always says what [`next_reminder`] says.
pub fn decide(
    state: &Event,
    command: EventCommand,
    now: Timestamp,
) -> Result<Vec<EventFact>, EventError> {
    let reschedules = matches!(
        command,
        EventCommand::Publish
            | EventCommand::Cancel { .. }
            | EventCommand::UpdateDetails(_)
            | EventCommand::ChangePolicy(_)
            | EventCommand::Reschedule { .. }
            | EventCommand::RemindAttendees
    );
    let fired = command == EventCommand::RemindAttendees;
    let facts = decide_command(state, command, now)?;
    if !reschedules || facts.is_empty() && state.scheduled_reminder.is_none() {
        return Ok(facts);
    }
    Ok(with_next_reminder(state, facts, now, fired))
}

/// `facts`, followed by `ReminderScheduled` when they move the event's next reminder away from
/// the one last recorded — or, for the reminder timer itself (`fired`), whenever the timer no
/// longer says what is next, so a timer that fires for nothing (the event started, the
/// reminder was sent) is cleared. The rare commands that get here pay for one copy of the
/// state.
fn with_next_reminder(
    state: &Event,
    mut facts: Vec<EventFact>,
    now: Timestamp,
    fired: bool,
) -> Vec<EventFact> {
    let before = next_reminder(state, now);
    let after = facts.iter().fold(state.clone(), evolve);
    let next = next_reminder(&after, now);
    if next != after.scheduled_reminder && (fired || next != before) {
        facts.push(EventFact::ReminderScheduled { reminder: next });
    }
    facts
}

/// The event's next reminder at `now`: the largest configured offset not yet sent for the
/// current start, while the event is published and has not started. It may be due already
/// (an event published less than a day before it starts): the scheduler then fires at once.
pub fn next_reminder(state: &Event, now: Timestamp) -> Option<ScheduledReminder> {
    if state.status != EventStatus::Published {
        return None;
    }
    let starts_at = state.starts_at.filter(|starts_at| now < *starts_at)?;
    let offset = pending_reminders(state, starts_at).max()?;
    Some(reminder_at(starts_at, offset))
}

/// The configured offsets still to come for `starts_at`: all of them after a new start, else
/// those smaller than the last one sent.
fn pending_reminders(state: &Event, starts_at: Timestamp) -> impl Iterator<Item = u32> + '_ {
    let last = state
        .last_reminder
        .filter(|last| last.starts_at == starts_at)
        .map(|last| last.offset_seconds);
    state
        .policy
        .reminder_offsets_seconds
        .iter()
        .copied()
        .filter(move |offset| last.is_none_or(|last| *offset < last))
}

fn reminder_at(starts_at: Timestamp, offset_seconds: u32) -> ScheduledReminder {
    ScheduledReminder {
        offset_seconds,
        starts_at,
        due_at: starts_at - chrono::TimeDelta::seconds(i64::from(offset_seconds)),
    }
}

/// `RemindAttendees`: the reminder due now, if any — of several due at once (the scheduler was
/// down, or the event was published late) only the latest, the one with the smallest offset.
fn remind(state: &Event, now: Timestamp) -> Vec<EventFact> {
    let Some(starts_at) = state
        .starts_at
        .filter(|starts_at| state.status == EventStatus::Published && now < *starts_at)
    else {
        return vec![];
    };
    pending_reminders(state, starts_at)
        .filter(|offset| reminder_at(starts_at, *offset).due_at <= now)
        .min()
        .map(|offset| {
            let reminder = reminder_at(starts_at, offset);
            EventFact::ReminderDue {
                offset_seconds: offset,
                starts_at,
                due_at: reminder.due_at,
                reminded_at: now,
            }
        })
        .into_iter()
        .collect()
}

fn decide_command(
    state: &Event,
    command: EventCommand,
    now: Timestamp,
) -> Result<Vec<EventFact>, EventError> {
    match command {
        EventCommand::DraftEvent {
            event_id,
            venue,
            title,
            description,
            category,
            starts_at,
            ends_at,
            timezone,
            capacity,
            max_per_order,
        } => {
            if state.exists() {
                return Err(EventError::AlreadyExists);
            }
            let venue = venue.ok_or(EventError::VenueNotFound)?;
            let title = required_text("title", &title, MAX_SHORT_TEXT)?;
            let description = optional_text("description", &description, MAX_DESCRIPTION)?;
            let category = required_text("category", &category, MAX_SHORT_TEXT)?;
            let timezone = required_text("timezone", &timezone, MAX_SHORT_TEXT)?;
            check_schedule(starts_at, ends_at)?;
            check_not_over(ends_at, now)?;
            let capacity = capacity.unwrap_or(venue.capacity);
            check_capacity(capacity, venue)?;
            let max_per_order = max_per_order.unwrap_or(DEFAULT_MAX_PER_ORDER);
            check_max_per_order(max_per_order)?;
            Ok(vec![EventFact::EventDrafted {
                event_id,
                venue_id: venue.venue_id,
                title,
                description,
                category,
                starts_at,
                ends_at,
                timezone,
                capacity,
                max_per_order,
            }])
        }
        EventCommand::UpdateDetails(change) => update_details(existing(state)?, change, now),
        EventCommand::AddTicketType {
            ticket_type_id,
            name,
            price,
            quantity,
            sales_start,
            sales_end,
        } => {
            let state = existing(state)?;
            refuse_if_cancelled(state, "a cancelled event cannot get new ticket types")?;
            if state.ticket_types.contains_key(&ticket_type_id) {
                return Err(EventError::DuplicateTicketType);
            }
            let name = required_text("name", &name, MAX_SHORT_TEXT)?;
            let folded = name.to_lowercase();
            if state
                .ticket_types
                .values()
                .any(|t| t.name.to_lowercase() == folded)
            {
                return Err(EventError::DuplicateTicketType);
            }
            if !price.is_valid() {
                return Err(invalid(
                    "price",
                    "must be a non-negative amount in a three-letter upper-case currency code",
                ));
            }
            if quantity == 0 {
                return Err(invalid("quantity", "must be at least 1"));
            }
            if let (Some(start), Some(end)) = (sales_start, sales_end)
                && start >= end
            {
                return Err(invalid("sales_end", "must be after sales_start"));
            }
            if state.ticket_types.len() >= MAX_TICKET_TYPES {
                return Err(invalid(
                    "ticket_types",
                    format!("an event has at most {MAX_TICKET_TYPES} ticket types"),
                ));
            }
            Ok(vec![EventFact::TicketTypeAdded {
                ticket_type_id,
                name,
                price,
                quantity,
                sales_start,
                sales_end,
            }])
        }
        EventCommand::Publish => {
            let state = existing(state)?;
            match state.status {
                EventStatus::Draft => {}
                EventStatus::Published => {
                    return Err(invalid_state(state, "the event is already published"));
                }
                EventStatus::Cancelled => {
                    return Err(invalid_state(
                        state,
                        "a cancelled event cannot be published",
                    ));
                }
            }
            if has_ended(state, now) {
                return Err(EventError::Ended);
            }
            if state.ticket_types.is_empty() {
                return Err(invalid(
                    "ticket_types",
                    "add at least one ticket type before publishing",
                ));
            }
            Ok(vec![EventFact::EventPublished { published_at: now }])
        }
        EventCommand::Cancel { reason } => {
            let state = existing(state)?;
            refuse_if_cancelled(state, "the event is already cancelled")?;
            let reason = match reason {
                Some(reason) => {
                    let reason = optional_text("reason", &reason, MAX_CANCEL_REASON)?;
                    (!reason.is_empty()).then_some(reason)
                }
                None => None,
            };
            let mut facts = vec![EventFact::EventCancelled {
                reason,
                cancelled_at: now,
            }];
            facts.extend(ticketing::cancel_every_registration(state, now));
            Ok(facts)
        }
        EventCommand::ChangeCapacity { capacity, venue } => {
            let state = existing(state)?;
            refuse_if_cancelled(state, "a cancelled event's capacity cannot change")?;
            if state.venue_id != Some(venue.venue_id) {
                return Err(invalid(
                    "venue_id",
                    "is not the venue this event takes place at",
                ));
            }
            check_capacity(capacity, venue)?;
            // Held seats and open offers are promised to someone: capacity cannot drop below them
            // any more than below confirmed seats.
            let sold = state.used();
            if capacity < sold {
                return Err(EventError::CapacityBelowSold { capacity, sold });
            }
            if capacity == state.capacity {
                return Ok(vec![]);
            }
            Ok(waitlist::with_offers(
                state,
                vec![EventFact::EventCapacityChanged { capacity }],
                now,
            ))
        }
        EventCommand::ChangePolicy(change) => change_policy(existing(state)?, change),
        EventCommand::SetQuestions { questions } => {
            let state = existing(state)?;
            refuse_if_cancelled(state, "a cancelled event's questions cannot change")?;
            let questions = questions::check_questions(questions)?;
            if questions == state.questions {
                return Ok(vec![]);
            }
            Ok(vec![EventFact::RegistrationQuestionsSet { questions }])
        }
        EventCommand::Reschedule { starts_at, ends_at } => {
            let state = existing(state)?;
            refuse_if_cancelled(state, "a cancelled event cannot be rescheduled")?;
            check_schedule(starts_at, ends_at)?;
            check_not_over(ends_at, now)?;
            let (Some(previous_starts_at), Some(previous_ends_at)) =
                (state.starts_at, state.ends_at)
            else {
                return Err(EventError::NotFound);
            };
            if (starts_at, ends_at) == (previous_starts_at, previous_ends_at) {
                return Ok(vec![]);
            }
            Ok(vec![EventFact::EventRescheduled {
                starts_at,
                ends_at,
                previous_starts_at,
                previous_ends_at,
                rescheduled_at: now,
            }])
        }
        EventCommand::Reserve {
            registration_id,
            ticket_type_id,
            attendee,
            quantity,
            ticket_codes,
            answers,
        } => reserve(
            existing(state)?,
            Reservation {
                registration_id,
                ticket_type_id,
                attendee,
                quantity,
                ticket_codes,
                answers,
            },
            now,
        ),
        EventCommand::CancelRegistration { registration_id } => {
            ticketing::cancel_registration(existing(state)?, registration_id, now)
        }
        EventCommand::RecordPaymentPending {
            registration_id,
            payment_id,
        } => ticketing::record_pending(existing(state)?, registration_id, payment_id, now),
        EventCommand::RecordPaymentDeclined {
            registration_id,
            payment_id,
            reason,
        } => ticketing::record_declined(existing(state)?, registration_id, payment_id, reason, now),
        EventCommand::RecordPayment {
            registration_id,
            payment_id,
            amount,
        } => ticketing::record_payment(existing(state)?, registration_id, payment_id, amount, now),
        EventCommand::CompleteRefund {
            payment_id,
            refund_id,
        } => ticketing::complete_refund(existing(state)?, payment_id, refund_id, now),
        EventCommand::ExpireHold { registration_id } => {
            ticketing::expire_hold(existing(state)?, registration_id, now)
        }
        EventCommand::JoinWaitlist {
            entry_id,
            ticket_type_id,
            attendee,
            quantity,
            answers,
        } => waitlist::join(
            existing(state)?,
            entry_id,
            ticket_type_id,
            attendee,
            quantity,
            answers,
            now,
        ),
        EventCommand::ClaimOffer {
            entry_id,
            registration_id,
            ticket_codes,
        } => waitlist::claim(
            existing(state)?,
            entry_id,
            registration_id,
            ticket_codes,
            now,
        ),
        EventCommand::ExpireOffer { entry_id } => {
            waitlist::expire_offer(existing(state)?, entry_id, now)
        }
        EventCommand::LeaveWaitlist { entry_id } => {
            waitlist::leave(existing(state)?, entry_id, now)
        }
        EventCommand::CheckIn {
            ticket_code,
            nonce,
            scanned_at,
        } => check_in::check_in(existing(state)?, ticket_code, nonce, scanned_at, now),
        EventCommand::RevertCheckIn { ticket_code } => {
            check_in::revert(existing(state)?, ticket_code, now)
        }
        EventCommand::RecordRegistrationHolder {
            registration_id,
            holder,
        } => {
            let registration = existing(state)?
                .registrations
                .get(&registration_id)
                .ok_or(EventError::RegistrationNotFound)?;
            match registration.holder {
                None => Ok(vec![EventFact::RegistrationHolderRecorded {
                    registration_id,
                    holder,
                }]),
                Some(current) if current == holder => Ok(vec![]),
                Some(_) => Err(invalid("holder", "a registration's holder never changes")),
            }
        }
        EventCommand::RecordWaitlistHolder { entry_id, holder } => {
            let entry = existing(state)?
                .waitlist
                .get(&entry_id)
                .ok_or(EventError::WaitlistEntryNotFound)?;
            match entry.holder {
                None => Ok(vec![EventFact::WaitlistHolderRecorded { entry_id, holder }]),
                Some(current) if current == holder => Ok(vec![]),
                Some(_) => Err(invalid("holder", "a waitlist entry's holder never changes")),
            }
        }
        EventCommand::RemindAttendees => Ok(remind(existing(state)?, now)),
    }
}

/// `ChangePolicy`: validates every field present, then keeps only those that change.
fn change_policy(state: &Event, change: PolicyChange) -> Result<Vec<EventFact>, EventError> {
    refuse_if_cancelled(state, "a cancelled event's policy cannot change")?;
    let window = |field: &'static str, value: Option<u32>| -> Result<(), EventError> {
        match value {
            Some(seconds) if !(1..=MAX_WINDOW_SECONDS).contains(&seconds) => Err(invalid(
                field,
                format!("must be between 1 and {MAX_WINDOW_SECONDS} seconds"),
            )),
            _ => Ok(()),
        }
    };
    window("hold_seconds", change.hold_seconds)?;
    window("offer_seconds", change.offer_seconds)?;
    if let Some(max) = change.max_per_attendee
        && max > MAX_PER_ORDER_LIMIT * 10
    {
        return Err(invalid(
            "max_per_attendee",
            format!(
                "must be at most {} (0 removes the limit)",
                MAX_PER_ORDER_LIMIT * 10
            ),
        ));
    }
    let reminders = change
        .reminder_offsets_seconds
        .map(check_reminder_offsets)
        .transpose()?;
    let current = &state.policy;
    let changed = PolicyChange {
        reminder_offsets_seconds: reminders.filter(|v| *v != current.reminder_offsets_seconds),
        hold_seconds: change.hold_seconds.filter(|v| *v != current.hold_seconds),
        offer_seconds: change.offer_seconds.filter(|v| *v != current.offer_seconds),
        cancellation_deadline: change
            .cancellation_deadline
            .filter(|v| current.cancellation_deadline != Some(*v)),
        max_per_attendee: change
            .max_per_attendee
            .filter(|v| current.max_per_attendee.unwrap_or(0) != *v),
    };
    if changed == PolicyChange::default() {
        return Ok(vec![]);
    }
    Ok(vec![EventFact::EventPolicyChanged(changed)])
}

/// Reminder offsets: each 1 second to 30 days, at most [`MAX_REMINDERS`]; distinct and largest
/// first once checked.
fn check_reminder_offsets(mut offsets: Vec<u32>) -> Result<Vec<u32>, EventError> {
    if offsets
        .iter()
        .any(|offset| !(1..=MAX_REMINDER_OFFSET).contains(offset))
    {
        return Err(invalid(
            "reminder_offsets_seconds",
            format!("each must be between 1 and {MAX_REMINDER_OFFSET} seconds"),
        ));
    }
    offsets.sort_unstable_by(|a, b| b.cmp(a));
    offsets.dedup();
    if offsets.len() > MAX_REMINDERS {
        return Err(invalid(
            "reminder_offsets_seconds",
            format!("at most {MAX_REMINDERS} reminders"),
        ));
    }
    Ok(offsets)
}

/// `UpdateDetails`: validates every field present, then keeps only those that change.
fn update_details(
    state: &Event,
    change: DetailsChange,
    now: Timestamp,
) -> Result<Vec<EventFact>, EventError> {
    refuse_if_cancelled(state, "a cancelled event's details cannot change")?;
    let title = change
        .title
        .map(|v| required_text("title", &v, MAX_SHORT_TEXT))
        .transpose()?;
    let description = change
        .description
        .map(|v| optional_text("description", &v, MAX_DESCRIPTION))
        .transpose()?;
    let category = change
        .category
        .map(|v| required_text("category", &v, MAX_SHORT_TEXT))
        .transpose()?;
    let timezone = change
        .timezone
        .map(|v| required_text("timezone", &v, MAX_SHORT_TEXT))
        .transpose()?;
    if let Some(max_per_order) = change.max_per_order {
        check_max_per_order(max_per_order)?;
    }
    if let (Some(starts_at), Some(ends_at)) = (
        change.starts_at.or(state.starts_at),
        change.ends_at.or(state.ends_at),
    ) && (change.starts_at.is_some() || change.ends_at.is_some())
    {
        check_schedule(starts_at, ends_at)?;
    }
    // Moving the end into the past is refused; repeating the current end (a client sending the
    // whole object back) is not a move, so it passes even once the event is over.
    if let Some(ends_at) = change.ends_at
        && state.ends_at != Some(ends_at)
    {
        check_not_over(ends_at, now)?;
    }

    let changed = DetailsChange {
        title: title.filter(|v| *v != state.title),
        description: description.filter(|v| *v != state.description),
        category: category.filter(|v| *v != state.category),
        starts_at: change.starts_at.filter(|v| state.starts_at != Some(*v)),
        ends_at: change.ends_at.filter(|v| state.ends_at != Some(*v)),
        timezone: timezone.filter(|v| *v != state.timezone),
        max_per_order: change.max_per_order.filter(|v| *v != state.max_per_order),
    };
    if changed == DetailsChange::default() {
        return Ok(vec![]);
    }
    Ok(vec![EventFact::EventDetailsUpdated(changed)])
}

/// What a `Reserve` command asks for.
struct Reservation {
    registration_id: RegistrationId,
    ticket_type_id: TicketTypeId,
    attendee: Attendee,
    quantity: u32,
    ticket_codes: Vec<TicketCode>,
    answers: Answers,
}

/// `Reserve`: the event and ticket type must be on sale, the request well formed, and enough
/// seats left — in that order, so that sold-out is only reported for a request that would
/// otherwise have succeeded. Free seats are confirmed; paid seats are held.
fn reserve(state: &Event, r: Reservation, now: Timestamp) -> Result<Vec<EventFact>, EventError> {
    let ticket_type = on_sale(state, r.ticket_type_id, now)?;
    if r.quantity == 0 {
        return Err(invalid("quantity", "must be at least 1"));
    }
    if r.quantity > state.max_per_order {
        return Err(EventError::OrderLimitExceeded {
            max: state.max_per_order,
        });
    }
    if state.registrations.contains_key(&r.registration_id) {
        return Err(EventError::RegistrationExists);
    }
    let attendee = check_attendee(r.attendee)?;
    let answers = questions::check_answers(&state.questions, r.answers)?;
    check_ticket_codes(state, &r.ticket_codes, r.quantity)?;
    check_attendee_limit(state, &attendee.email, r.quantity)?;
    // Someone in line comes first: seats that free up while people wait are offered to them,
    // so whatever is left over is not for a newcomer of the same ticket type.
    if !ticket_type.waiting.is_empty() {
        return Err(EventError::SoldOut { available: 0 });
    }
    let available = state.available(r.ticket_type_id);
    if available < r.quantity {
        return Err(EventError::SoldOut { available });
    }
    Ok(registration_facts(
        state,
        ticket_type,
        r.registration_id,
        attendee,
        r.quantity,
        r.ticket_codes,
        answers,
        now,
    ))
}

/// The facts of a new registration for seats already known to be free: confirmed when the ticket
/// type is free, held for [`EventPolicy::hold_seconds`] when it costs money; then the answers.
#[allow(clippy::too_many_arguments)]
fn registration_facts(
    state: &Event,
    ticket_type: &TicketType,
    registration_id: RegistrationId,
    attendee: Attendee,
    quantity: u32,
    ticket_codes: Vec<TicketCode>,
    answers: Answers,
    now: Timestamp,
) -> Vec<EventFact> {
    let mut facts = Vec::with_capacity(2);
    if ticket_type.price.is_free() {
        facts.push(EventFact::RegistrationConfirmed {
            registration_id,
            ticket_type_id: ticket_type.id,
            attendee,
            quantity,
            ticket_codes,
            confirmed_at: now,
        });
    } else {
        facts.push(EventFact::SeatsHeld {
            registration_id,
            ticket_type_id: ticket_type.id,
            attendee,
            quantity,
            ticket_codes,
            price: Money {
                amount_minor: ticket_type
                    .price
                    .amount_minor
                    .saturating_mul(i64::from(quantity)),
                currency: ticket_type.price.currency.clone(),
            },
            expires_at: now + chrono::TimeDelta::seconds(i64::from(state.policy.hold_seconds)),
            held_at: now,
        });
    }
    if !answers.is_empty() {
        facts.push(EventFact::AnswersGiven {
            registration_id,
            answers,
        });
    }
    facts
}

/// The ticket type, if the event and the type are on sale now.
fn on_sale(
    state: &Event,
    ticket_type_id: TicketTypeId,
    now: Timestamp,
) -> Result<&TicketType, EventError> {
    match state.status {
        EventStatus::Cancelled => return Err(EventError::Cancelled),
        EventStatus::Draft => return Err(EventError::NotOnSale),
        EventStatus::Published => {}
    }
    if has_ended(state, now) {
        return Err(EventError::Ended);
    }
    let ticket_type = state
        .ticket_types
        .get(&ticket_type_id)
        .ok_or(EventError::TicketTypeNotFound)?;
    if let Some(opens_at) = ticket_type.sales_start
        && now < opens_at
    {
        return Err(EventError::SalesNotOpen { opens_at });
    }
    if let Some(closed_at) = ticket_type.sales_end
        && now >= closed_at
    {
        return Err(EventError::SalesClosed { closed_at });
    }
    Ok(ticket_type)
}

/// Trims and checks an attendee's name and address.
fn check_attendee(attendee: Attendee) -> Result<Attendee, EventError> {
    Ok(Attendee {
        name: required_text("attendee.name", &attendee.name, MAX_SHORT_TEXT)?,
        email: check_email(&attendee.email)?,
    })
}

/// The per-attendee limit: seats held or confirmed for `email`, plus `quantity`, within it. An
/// erased attendee ([`crate::ERASED`]) can no longer be told apart from other erased ones, so
/// the limit does not apply to them (their seats were within it when they were taken).
fn check_attendee_limit(state: &Event, email: &str, quantity: u32) -> Result<(), EventError> {
    if email == crate::ERASED {
        return Ok(());
    }
    if let Some(max) = state.policy.max_per_attendee {
        let already = state.seats_of(email);
        if already.saturating_add(quantity) > max {
            return Err(EventError::AttendeeLimitExceeded { max, already });
        }
    }
    Ok(())
}

/// Folds one fact into the event. Never fails: facts already happened.
///
/// A fact that cannot apply (one for an event not yet drafted, a second draft, a registration
/// for an unknown ticket type, a cancellation of an unknown registration) is ignored rather
/// than trusted: the counts stay a faithful tally of the registrations the state holds.
pub fn evolve(mut state: Event, fact: &EventFact) -> Event {
    if let EventFact::EventDrafted {
        event_id,
        venue_id,
        title,
        description,
        category,
        starts_at,
        ends_at,
        timezone,
        capacity,
        max_per_order,
    } = fact
    {
        if !state.exists() {
            state.id = Some(*event_id);
            state.venue_id = Some(*venue_id);
            state.status = EventStatus::Draft;
            state.title = title.clone();
            state.description = description.clone();
            state.category = category.clone();
            state.starts_at = Some(*starts_at);
            state.ends_at = Some(*ends_at);
            state.timezone = timezone.clone();
            state.capacity = *capacity;
            state.max_per_order = *max_per_order;
        }
        return state;
    }
    if !state.exists() {
        return state;
    }
    match fact {
        EventFact::EventDrafted { .. } => {}
        EventFact::EventDetailsUpdated(change) => {
            if let Some(title) = &change.title {
                state.title = title.clone();
            }
            if let Some(description) = &change.description {
                state.description = description.clone();
            }
            if let Some(category) = &change.category {
                state.category = category.clone();
            }
            if let Some(starts_at) = change.starts_at {
                state.starts_at = Some(starts_at);
            }
            if let Some(ends_at) = change.ends_at {
                state.ends_at = Some(ends_at);
            }
            if let Some(timezone) = &change.timezone {
                state.timezone = timezone.clone();
            }
            if let Some(max_per_order) = change.max_per_order {
                state.max_per_order = max_per_order;
            }
        }
        EventFact::TicketTypeAdded {
            ticket_type_id,
            name,
            price,
            quantity,
            sales_start,
            sales_end,
        } => {
            state
                .ticket_types
                .entry(*ticket_type_id)
                .or_insert_with(|| TicketType {
                    id: *ticket_type_id,
                    name: name.clone(),
                    price: price.clone(),
                    quantity: *quantity,
                    sales_start: *sales_start,
                    sales_end: *sales_end,
                    confirmed: 0,
                    held: 0,
                    offered: 0,
                    waiting: VecDeque::new(),
                });
        }
        EventFact::EventPublished { .. } => {
            // Publication never revives a cancelled event.
            if state.status == EventStatus::Draft {
                state.status = EventStatus::Published;
            }
        }
        EventFact::EventCancelled { .. } => {
            state.status = EventStatus::Cancelled;
            // Nobody waits for a cancelled event: open offers give their seats back and every
            // entry still in line is closed.
            for entry in state.waitlist.values_mut() {
                if matches!(
                    entry.status,
                    WaitlistStatus::Waiting | WaitlistStatus::Offered
                ) {
                    entry.status = WaitlistStatus::Closed;
                    entry.offer_expires_at = None;
                }
            }
            for ticket_type in state.ticket_types.values_mut() {
                ticket_type.offered = 0;
                ticket_type.waiting.clear();
            }
        }
        EventFact::EventCapacityChanged { capacity } => state.capacity = *capacity,
        EventFact::RegistrationConfirmed {
            registration_id,
            ticket_type_id,
            attendee,
            quantity,
            ticket_codes,
            ..
        } => add_registration(
            &mut state,
            Registration {
                id: *registration_id,
                ticket_type_id: *ticket_type_id,
                attendee: attendee.clone(),
                quantity: *quantity,
                ticket_codes: ticket_codes.clone(),
                status: RegistrationStatus::Confirmed,
                price: None,
                hold_expires_at: None,
                payment_id: None,
                answers: Answers::new(),
                holder: None,
            },
        ),
        EventFact::SeatsHeld {
            registration_id,
            ticket_type_id,
            attendee,
            quantity,
            ticket_codes,
            price,
            expires_at,
            ..
        } => add_registration(
            &mut state,
            Registration {
                id: *registration_id,
                ticket_type_id: *ticket_type_id,
                attendee: attendee.clone(),
                quantity: *quantity,
                ticket_codes: ticket_codes.clone(),
                status: RegistrationStatus::Held,
                price: Some(price.clone()),
                hold_expires_at: Some(*expires_at),
                payment_id: None,
                answers: Answers::new(),
                holder: None,
            },
        ),
        EventFact::RegistrationCancelled {
            registration_id, ..
        } => {
            // The registration itself says which seats it held; the fact repeats that for
            // readers of the log that do not fold the whole stream.
            set_registration_status(&mut state, *registration_id, RegistrationStatus::Cancelled);
        }
        EventFact::HoldExpired {
            registration_id, ..
        } => {
            if state
                .registrations
                .get(registration_id)
                .is_some_and(|r| r.status == RegistrationStatus::Held)
            {
                set_registration_status(&mut state, *registration_id, RegistrationStatus::Expired);
            }
        }
        EventFact::HoldConfirmed {
            registration_id,
            payment_id,
            ..
        } => {
            let status = state.registrations.get(registration_id).map(|r| r.status);
            if matches!(
                status,
                Some(RegistrationStatus::Held | RegistrationStatus::Expired)
            ) {
                set_registration_status(
                    &mut state,
                    *registration_id,
                    RegistrationStatus::Confirmed,
                );
                if let Some(registration) = state.registrations.get_mut(registration_id) {
                    registration.payment_id = Some(payment_id.clone());
                }
            }
        }
        EventFact::AnswersGiven {
            registration_id,
            answers,
        } => {
            if let Some(registration) = state.registrations.get_mut(registration_id) {
                registration.answers = answers.clone();
            }
        }
        EventFact::EventPolicyChanged(change) => {
            if let Some(hold_seconds) = change.hold_seconds {
                state.policy.hold_seconds = hold_seconds;
            }
            if let Some(offer_seconds) = change.offer_seconds {
                state.policy.offer_seconds = offer_seconds;
            }
            if let Some(deadline) = change.cancellation_deadline {
                state.policy.cancellation_deadline = Some(deadline);
            }
            if let Some(max) = change.max_per_attendee {
                state.policy.max_per_attendee = (max > 0).then_some(max);
            }
            if let Some(offsets) = &change.reminder_offsets_seconds {
                state.policy.reminder_offsets_seconds = offsets.clone();
            }
        }
        EventFact::ReminderScheduled { reminder } => state.scheduled_reminder = *reminder,
        EventFact::ReminderDue {
            offset_seconds,
            starts_at,
            due_at,
            ..
        } => {
            state.last_reminder = Some(ScheduledReminder {
                offset_seconds: *offset_seconds,
                starts_at: *starts_at,
                due_at: *due_at,
            });
        }
        EventFact::RegistrationQuestionsSet { questions } => state.questions = questions.clone(),
        EventFact::EventRescheduled {
            starts_at, ends_at, ..
        } => {
            state.starts_at = Some(*starts_at);
            state.ends_at = Some(*ends_at);
        }
        EventFact::PaymentPending {
            registration_id,
            payment_id,
            ..
        } => record_payment_status(
            &mut state,
            payment_id,
            *registration_id,
            PaymentStatus::Pending,
        ),
        EventFact::PaymentDeclined {
            registration_id,
            payment_id,
            ..
        } => record_payment_status(
            &mut state,
            payment_id,
            *registration_id,
            PaymentStatus::Declined,
        ),
        EventFact::PaymentReceived {
            registration_id,
            payment_id,
            ..
        } => record_payment_status(
            &mut state,
            payment_id,
            *registration_id,
            PaymentStatus::Received,
        ),
        EventFact::RefundDue {
            registration_id,
            payment_id,
            ..
        } => record_payment_status(
            &mut state,
            payment_id,
            *registration_id,
            PaymentStatus::RefundDue,
        ),
        EventFact::RefundCompleted {
            registration_id,
            payment_id,
            ..
        } => record_payment_status(
            &mut state,
            payment_id,
            *registration_id,
            PaymentStatus::Refunded,
        ),
        EventFact::WaitlistJoined {
            entry_id,
            ticket_type_id,
            attendee,
            quantity,
            answers,
            ..
        } => {
            if state.waitlist.contains_key(entry_id) {
                return state;
            }
            let Some(ticket_type) = state.ticket_types.get_mut(ticket_type_id) else {
                return state;
            };
            ticket_type.waiting.push_back(*entry_id);
            state.waitlist.insert(
                *entry_id,
                WaitlistEntry {
                    id: *entry_id,
                    ticket_type_id: *ticket_type_id,
                    attendee: attendee.clone(),
                    quantity: *quantity,
                    answers: answers.clone(),
                    seq: state.waitlist_joined,
                    status: WaitlistStatus::Waiting,
                    offer_expires_at: None,
                    registration_id: None,
                    holder: None,
                },
            );
            state.waitlist_joined += 1;
        }
        EventFact::WaitlistOfferMade {
            entry_id,
            expires_at,
            ..
        } => {
            let Some(entry) = state.waitlist.get_mut(entry_id) else {
                return state;
            };
            if entry.status != WaitlistStatus::Waiting {
                return state;
            }
            entry.status = WaitlistStatus::Offered;
            entry.offer_expires_at = Some(*expires_at);
            let (ticket_type_id, quantity) = (entry.ticket_type_id, entry.quantity);
            if let Some(ticket_type) = state.ticket_types.get_mut(&ticket_type_id) {
                ticket_type.waiting.retain(|id| id != entry_id);
                ticket_type.offered = ticket_type.offered.saturating_add(quantity);
            }
        }
        EventFact::WaitlistOfferExpired { entry_id, .. } => {
            close_entry(&mut state, *entry_id, WaitlistStatus::Expired, None);
        }
        EventFact::WaitlistOfferClaimed {
            entry_id,
            registration_id,
            ..
        } => close_entry(
            &mut state,
            *entry_id,
            WaitlistStatus::Claimed,
            Some(*registration_id),
        ),
        EventFact::WaitlistLeft { entry_id, .. } => {
            close_entry(&mut state, *entry_id, WaitlistStatus::Left, None);
        }
        EventFact::TicketCheckedIn {
            ticket_code,
            nonce,
            scanned_at,
            ..
        } => {
            if let Some(ticket) = state.tickets.get_mut(ticket_code)
                && ticket.check_in.is_none()
            {
                ticket.check_in = Some(CheckIn {
                    scanned_at: *scanned_at,
                    nonce: nonce.clone(),
                });
            }
            state.scans.entry(nonce.clone()).or_insert(Scan {
                ticket_code: ticket_code.clone(),
                scanned_at: *scanned_at,
            });
        }
        EventFact::CheckInReverted { ticket_code, .. } => {
            if let Some(ticket) = state.tickets.get_mut(ticket_code) {
                ticket.check_in = None;
            }
        }
        EventFact::RegistrationHolderRecorded {
            registration_id,
            holder,
        } => {
            if let Some(registration) = state.registrations.get_mut(registration_id) {
                registration.holder.get_or_insert(*holder);
            }
        }
        EventFact::WaitlistHolderRecorded { entry_id, holder } => {
            if let Some(entry) = state.waitlist.get_mut(entry_id) {
                entry.holder.get_or_insert(*holder);
            }
        }
    }
    state
}

/// Adds a new registration (confirmed or held) with its seats and tickets. A second fact for the
/// same id, or one for an unknown ticket type, changes nothing.
fn add_registration(state: &mut Event, registration: Registration) {
    if state.registrations.contains_key(&registration.id) {
        return;
    }
    let Some(ticket_type) = state.ticket_types.get_mut(&registration.ticket_type_id) else {
        return;
    };
    let quantity = registration.quantity;
    match registration.status {
        RegistrationStatus::Held => ticket_type.held = ticket_type.held.saturating_add(quantity),
        _ => ticket_type.confirmed = ticket_type.confirmed.saturating_add(quantity),
    }
    for code in &registration.ticket_codes {
        state.tickets.entry(code.clone()).or_insert(Ticket {
            registration_id: registration.id,
            check_in: None,
        });
    }
    let seats = state
        .seats_by_attendee
        .entry(registration.attendee.email.to_lowercase())
        .or_insert(0);
    *seats = seats.saturating_add(quantity);
    state.registrations.insert(registration.id, registration);
}

/// Moves a registration to `status`, moving its seats between the held and confirmed tallies
/// (or freeing them) and keeping the per-attendee tally right.
fn set_registration_status(state: &mut Event, id: RegistrationId, status: RegistrationStatus) {
    let Some(registration) = state.registrations.get_mut(&id) else {
        return;
    };
    let before = registration.status;
    if before == status || !before.is_active() && !status.is_active() {
        return;
    }
    registration.status = status;
    let quantity = registration.quantity;
    let email = registration.attendee.email.to_lowercase();
    let Some(ticket_type) = state.ticket_types.get_mut(&registration.ticket_type_id) else {
        return;
    };
    match before {
        RegistrationStatus::Held => ticket_type.held = ticket_type.held.saturating_sub(quantity),
        RegistrationStatus::Confirmed => {
            ticket_type.confirmed = ticket_type.confirmed.saturating_sub(quantity);
        }
        RegistrationStatus::Cancelled | RegistrationStatus::Expired => {}
    }
    match status {
        RegistrationStatus::Held => ticket_type.held = ticket_type.held.saturating_add(quantity),
        RegistrationStatus::Confirmed => {
            ticket_type.confirmed = ticket_type.confirmed.saturating_add(quantity);
        }
        RegistrationStatus::Cancelled | RegistrationStatus::Expired => {}
    }
    let seats = state.seats_by_attendee.entry(email).or_insert(0);
    match (before.is_active(), status.is_active()) {
        (true, false) => *seats = seats.saturating_sub(quantity),
        (false, true) => *seats = seats.saturating_add(quantity),
        _ => {}
    }
}

/// Ends a waitlist entry that is waiting or offered: an open offer gives its seats back.
fn close_entry(
    state: &mut Event,
    id: WaitlistEntryId,
    status: WaitlistStatus,
    registration_id: Option<RegistrationId>,
) {
    let Some(entry) = state.waitlist.get_mut(&id) else {
        return;
    };
    let before = entry.status;
    if !matches!(before, WaitlistStatus::Waiting | WaitlistStatus::Offered) {
        return;
    }
    entry.status = status;
    entry.offer_expires_at = None;
    entry.registration_id = registration_id;
    let (ticket_type_id, quantity) = (entry.ticket_type_id, entry.quantity);
    if let Some(ticket_type) = state.ticket_types.get_mut(&ticket_type_id) {
        if before == WaitlistStatus::Offered {
            ticket_type.offered = ticket_type.offered.saturating_sub(quantity);
        } else {
            ticket_type.waiting.retain(|entry| *entry != id);
        }
    }
}

/// Notes what the provider said about a payment. A refund stays a refund whatever comes after.
fn record_payment_status(
    state: &mut Event,
    payment_id: &PaymentId,
    registration_id: RegistrationId,
    status: PaymentStatus,
) {
    let record = state
        .payments
        .entry(payment_id.clone())
        .or_insert(PaymentRecord {
            registration_id,
            status,
        });
    let rank = |s: PaymentStatus| match s {
        PaymentStatus::Pending => 0,
        PaymentStatus::Declined => 1,
        PaymentStatus::Received => 2,
        PaymentStatus::RefundDue => 3,
        PaymentStatus::Refunded => 4,
    };
    if rank(status) >= rank(record.status) {
        record.status = status;
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> EventError {
    EventError::Invalid {
        field,
        message: message.into(),
    }
}

fn invalid_state(state: &Event, message: &'static str) -> EventError {
    EventError::InvalidState {
        status: state.status,
        message,
    }
}

/// The state, or `NotFound` when the event was never drafted.
fn existing(state: &Event) -> Result<&Event, EventError> {
    if state.exists() {
        Ok(state)
    } else {
        Err(EventError::NotFound)
    }
}

fn refuse_if_cancelled(state: &Event, message: &'static str) -> Result<(), EventError> {
    if state.status == EventStatus::Cancelled {
        return Err(invalid_state(state, message));
    }
    Ok(())
}

/// True once the event's end has passed: the end is exclusive.
fn has_ended(state: &Event, now: Timestamp) -> bool {
    state.ends_at.is_some_and(|ends_at| now >= ends_at)
}

/// Trims `value`, which must then be non-empty and at most `max` characters.
fn required_text(field: &'static str, value: &str, max: usize) -> Result<String, EventError> {
    let value = optional_text(field, value, max)?;
    if value.is_empty() {
        return Err(invalid(field, "must not be blank"));
    }
    Ok(value)
}

/// Trims `value`, which must then be at most `max` characters; empty is fine.
fn optional_text(field: &'static str, value: &str, max: usize) -> Result<String, EventError> {
    let value = value.trim();
    if value.chars().count() > max {
        return Err(invalid(field, format!("must be at most {max} characters")));
    }
    Ok(value.to_owned())
}

fn check_schedule(starts_at: Timestamp, ends_at: Timestamp) -> Result<(), EventError> {
    if starts_at >= ends_at {
        return Err(invalid("ends_at", "must be after starts_at"));
    }
    Ok(())
}

fn check_not_over(ends_at: Timestamp, now: Timestamp) -> Result<(), EventError> {
    if ends_at <= now {
        return Err(invalid("ends_at", "must be in the future"));
    }
    Ok(())
}

fn check_capacity(capacity: u32, venue: VenueInfo) -> Result<(), EventError> {
    if capacity == 0 {
        return Err(invalid("capacity", "must be at least 1"));
    }
    if capacity > venue.capacity {
        return Err(EventError::CapacityExceedsVenue {
            capacity,
            venue_capacity: venue.capacity,
        });
    }
    Ok(())
}

fn check_max_per_order(max_per_order: u32) -> Result<(), EventError> {
    if !(1..=MAX_PER_ORDER_LIMIT).contains(&max_per_order) {
        return Err(invalid(
            "max_per_order",
            format!("must be between 1 and {MAX_PER_ORDER_LIMIT}"),
        ));
    }
    Ok(())
}

/// Trims the address and returns it if it looks like an e-mail address.
fn check_email(email: &str) -> Result<String, EventError> {
    let email = email.trim();
    if looks_like_email(email) {
        Ok(email.to_owned())
    } else {
        Err(invalid("attendee.email", "must be an e-mail address"))
    }
}

/// True when `email` has the shape `local@domain.tld`: exactly one `@`, a non-empty local part,
/// a domain of non-empty dot-separated labels with at least one dot, no whitespace, and at most
/// [`MAX_EMAIL_LEN`] characters. Deliverability is the mailer's business, not the domain's.
pub fn looks_like_email(email: &str) -> bool {
    if email.is_empty()
        || email.chars().count() > MAX_EMAIL_LEN
        || email.chars().any(char::is_whitespace)
    {
        return false;
    }
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty())
}

/// One well-formed code per seat, none repeated, none issued before for this event.
fn check_ticket_codes(
    state: &Event,
    codes: &[TicketCode],
    quantity: u32,
) -> Result<(), EventError> {
    if u32::try_from(codes.len()) != Ok(quantity) {
        return Err(invalid(
            "ticket_codes",
            format!(
                "expected one code per seat ({quantity}), got {}",
                codes.len()
            ),
        ));
    }
    if !codes.iter().all(TicketCode::is_well_formed) {
        return Err(invalid(
            "ticket_codes",
            "every code must be 32 to 64 characters of [0-9A-Za-z_-]",
        ));
    }
    let mut seen = BTreeSet::new();
    if !codes.iter().all(|code| seen.insert(code)) {
        return Err(invalid("ticket_codes", "codes must be distinct"));
    }
    if codes.iter().any(|code| state.tickets.contains_key(code)) {
        return Err(invalid("ticket_codes", "a code was already issued"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_check_in;
#[cfg(test)]
mod tests_erasure;
#[cfg(test)]
mod tests_questions;
#[cfg(test)]
mod tests_reminders;
#[cfg(test)]
mod tests_ticketing;
#[cfg(test)]
mod tests_vocabulary;
#[cfg(test)]
mod tests_waitlist;
