//! Words shared by the tests of holds, payments, waitlists, check-in and questions: an event on
//! sale with a free and a paid ticket type, a few attendees, and the facts their commands make.
//!
//! Facts happen at [`now`] unless their helper takes a time (`_at`): a test that needs the clock
//! to move runs its command with `given(..).at(..)`.

use chrono::TimeDelta;
use uuid::Uuid;

use super::*;
use crate::testing::now;

/// The event-wide capacity of [`on_sale`].
pub(super) const CAPACITY: u32 = 100;
/// Seats the venue holds.
pub(super) const VENUE_SEATS: u32 = 500;
/// Price of one paid seat, in cents: 25.00 EUR.
pub(super) const PRICE: i64 = 2_500;

pub(super) fn event_id() -> EventId {
    EventId(Uuid::from_u128(0xE))
}

pub(super) fn venue() -> VenueInfo {
    VenueInfo {
        venue_id: VenueId(Uuid::from_u128(0xA)),
        capacity: VENUE_SEATS,
    }
}

/// The free ticket type ("General admission").
pub(super) fn free() -> TicketTypeId {
    TicketTypeId(Uuid::from_u128(0x61))
}

/// The paid ticket type ("VIP", [`PRICE`] a seat).
pub(super) fn paid() -> TicketTypeId {
    TicketTypeId(Uuid::from_u128(0x62))
}

pub(super) fn reg(n: u128) -> RegistrationId {
    RegistrationId(Uuid::from_u128(0x1000 + n))
}

pub(super) fn entry(n: u128) -> WaitlistEntryId {
    WaitlistEntryId(Uuid::from_u128(0x2000 + n))
}

pub(super) fn pay_id(name: &str) -> PaymentId {
    PaymentId(format!("pay_{name}"))
}

pub(super) fn seconds(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

pub(super) fn minutes(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

pub(super) fn hours(n: i64) -> TimeDelta {
    TimeDelta::hours(n)
}

pub(super) fn starts() -> Timestamp {
    now() + TimeDelta::days(30)
}

pub(super) fn ends() -> Timestamp {
    starts() + hours(3)
}

/// When a hold made at [`now`] expires under the default policy.
pub(super) fn hold_expiry() -> Timestamp {
    now() + seconds(i64::from(DEFAULT_HOLD_SECONDS))
}

/// When an offer made at [`now`] expires under the default policy.
pub(super) fn offer_expiry() -> Timestamp {
    now() + seconds(i64::from(DEFAULT_OFFER_SECONDS))
}

/// A 32-character code unique to (registration, seat).
pub(super) fn code(registration: u128, seat: u32) -> TicketCode {
    TicketCode(format!("{registration:016x}{seat:016x}"))
}

pub(super) fn codes(registration: u128, quantity: u32) -> Vec<TicketCode> {
    (0..quantity).map(|seat| code(registration, seat)).collect()
}

/// An attendee named `name`, reachable at `name@example.org`.
pub(super) fn person(name: &str) -> Attendee {
    Attendee {
        name: name.to_uppercase(),
        email: format!("{name}@example.org"),
    }
}

pub(super) fn ada() -> Attendee {
    person("ada")
}

pub(super) fn bob() -> Attendee {
    person("bob")
}

pub(super) fn cy() -> Attendee {
    person("cy")
}

pub(super) fn dee() -> Attendee {
    person("dee")
}

pub(super) fn euros(amount_minor: i64) -> Money {
    Money {
        amount_minor,
        currency: "EUR".into(),
    }
}

/// What `quantity` paid seats cost.
pub(super) fn price_of(quantity: u32) -> Money {
    euros(PRICE * i64::from(quantity))
}

pub(super) fn drafted(capacity: u32) -> EventFact {
    EventFact::EventDrafted {
        event_id: event_id(),
        venue_id: venue().venue_id,
        title: "RustConf".into(),
        description: "Talks about Rust.".into(),
        category: "Conference".into(),
        starts_at: starts(),
        ends_at: ends(),
        timezone: "Europe/Berlin".into(),
        capacity,
        max_per_order: DEFAULT_MAX_PER_ORDER,
    }
}

pub(super) fn free_added(quantity: u32) -> EventFact {
    EventFact::TicketTypeAdded {
        ticket_type_id: free(),
        name: "General admission".into(),
        price: euros(0),
        quantity,
        sales_start: None,
        sales_end: None,
    }
}

pub(super) fn paid_added(quantity: u32) -> EventFact {
    EventFact::TicketTypeAdded {
        ticket_type_id: paid(),
        name: "VIP".into(),
        price: euros(PRICE),
        quantity,
        sales_start: None,
        sales_end: None,
    }
}

pub(super) fn published() -> EventFact {
    EventFact::EventPublished {
        published_at: now() - hours(24),
    }
}

pub(super) fn event_cancelled() -> EventFact {
    EventFact::EventCancelled {
        reason: None,
        cancelled_at: now(),
    }
}

/// A published event of capacity [`CAPACITY`] with `free_seats` free and `paid_seats` paid seats.
pub(super) fn on_sale(free_seats: u32, paid_seats: u32) -> Vec<EventFact> {
    on_sale_with_capacity(CAPACITY, free_seats, paid_seats)
}

pub(super) fn on_sale_with_capacity(
    capacity: u32,
    free_seats: u32,
    paid_seats: u32,
) -> Vec<EventFact> {
    vec![
        drafted(capacity),
        free_added(free_seats),
        paid_added(paid_seats),
        published(),
    ]
}

/// `history` followed by `more`.
pub(super) fn then_also(
    history: Vec<EventFact>,
    more: impl IntoIterator<Item = EventFact>,
) -> Vec<EventFact> {
    history.into_iter().chain(more).collect()
}

pub(super) fn policy_changed(change: PolicyChange) -> EventFact {
    EventFact::EventPolicyChanged(change)
}

/// The per-attendee limit set to `max`.
pub(super) fn limited_to(max: u32) -> EventFact {
    policy_changed(PolicyChange {
        max_per_attendee: Some(max),
        ..PolicyChange::default()
    })
}

pub(super) fn reserve(n: u128, ticket_type_id: TicketTypeId, quantity: u32) -> EventCommand {
    reserve_for(n, ticket_type_id, quantity, ada())
}

pub(super) fn reserve_for(
    n: u128,
    ticket_type_id: TicketTypeId,
    quantity: u32,
    attendee: Attendee,
) -> EventCommand {
    EventCommand::Reserve {
        registration_id: reg(n),
        ticket_type_id,
        attendee,
        quantity,
        ticket_codes: codes(n, quantity),
        answers: Answers::new(),
    }
}

/// Free seats confirmed for Ada.
pub(super) fn confirmed(n: u128, quantity: u32) -> EventFact {
    confirmed_for(n, quantity, ada())
}

pub(super) fn confirmed_for(n: u128, quantity: u32, attendee: Attendee) -> EventFact {
    EventFact::RegistrationConfirmed {
        registration_id: reg(n),
        ticket_type_id: free(),
        attendee,
        quantity,
        ticket_codes: codes(n, quantity),
        confirmed_at: now(),
    }
}

/// Paid seats held for Ada at [`now`].
pub(super) fn held(n: u128, quantity: u32) -> EventFact {
    held_for(n, quantity, ada())
}

pub(super) fn held_for(n: u128, quantity: u32, attendee: Attendee) -> EventFact {
    held_at(n, quantity, attendee, now(), hold_expiry())
}

pub(super) fn held_at(
    n: u128,
    quantity: u32,
    attendee: Attendee,
    at: Timestamp,
    expires_at: Timestamp,
) -> EventFact {
    EventFact::SeatsHeld {
        registration_id: reg(n),
        ticket_type_id: paid(),
        attendee,
        quantity,
        ticket_codes: codes(n, quantity),
        price: price_of(quantity),
        expires_at,
        held_at: at,
    }
}

/// Paid seats held for `attendee` an hour ago; the hold ran out 45 minutes ago (see
/// [`expired_earlier`]).
pub(super) fn held_earlier(n: u128, quantity: u32, attendee: Attendee) -> EventFact {
    held_at(n, quantity, attendee, now() - hours(1), now() - minutes(45))
}

/// The hold of [`held_earlier`] expired when it was due, 45 minutes ago.
pub(super) fn expired_earlier(n: u128, quantity: u32) -> EventFact {
    hold_expired(n, quantity, now() - minutes(45))
}

/// The hold of registration `n` ran out at `at`.
pub(super) fn hold_expired(n: u128, quantity: u32, at: Timestamp) -> EventFact {
    EventFact::HoldExpired {
        registration_id: reg(n),
        ticket_type_id: paid(),
        quantity,
        expired_at: at,
    }
}

pub(super) fn expire_hold(n: u128) -> EventCommand {
    EventCommand::ExpireHold {
        registration_id: reg(n),
    }
}

pub(super) fn pay(n: u128, payment: &str, amount: Money) -> EventCommand {
    EventCommand::RecordPayment {
        registration_id: reg(n),
        payment_id: pay_id(payment),
        amount,
    }
}

pub(super) fn payment_received(n: u128, payment: &str, amount: Money) -> EventFact {
    payment_received_at(n, payment, amount, now())
}

pub(super) fn payment_received_at(
    n: u128,
    payment: &str,
    amount: Money,
    at: Timestamp,
) -> EventFact {
    EventFact::PaymentReceived {
        registration_id: reg(n),
        payment_id: pay_id(payment),
        amount,
        received_at: at,
    }
}

pub(super) fn hold_confirmed(n: u128, quantity: u32, payment: &str, late: bool) -> EventFact {
    hold_confirmed_at(n, quantity, payment, late, now())
}

pub(super) fn hold_confirmed_at(
    n: u128,
    quantity: u32,
    payment: &str,
    late: bool,
    at: Timestamp,
) -> EventFact {
    EventFact::HoldConfirmed {
        registration_id: reg(n),
        ticket_type_id: paid(),
        quantity,
        payment_id: pay_id(payment),
        late,
        confirmed_at: at,
    }
}

/// Registration `n`'s hold of `quantity` seats paid in full with `payment` at [`now`].
pub(super) fn paid_for(n: u128, quantity: u32, payment: &str) -> [EventFact; 2] {
    [
        payment_received(n, payment, price_of(quantity)),
        hold_confirmed(n, quantity, payment, false),
    ]
}

pub(super) fn refund_due(n: u128, payment: &str, amount: Money, reason: RefundReason) -> EventFact {
    refund_due_at(n, payment, amount, reason, now())
}

pub(super) fn refund_due_at(
    n: u128,
    payment: &str,
    amount: Money,
    reason: RefundReason,
    at: Timestamp,
) -> EventFact {
    EventFact::RefundDue {
        registration_id: reg(n),
        payment_id: pay_id(payment),
        amount,
        reason,
        due_at: at,
    }
}

pub(super) fn cancel_registration(n: u128) -> EventCommand {
    EventCommand::CancelRegistration {
        registration_id: reg(n),
    }
}

pub(super) fn registration_cancelled(
    n: u128,
    ticket_type_id: TicketTypeId,
    quantity: u32,
) -> EventFact {
    registration_cancelled_at(n, ticket_type_id, quantity, now())
}

pub(super) fn registration_cancelled_at(
    n: u128,
    ticket_type_id: TicketTypeId,
    quantity: u32,
    at: Timestamp,
) -> EventFact {
    EventFact::RegistrationCancelled {
        registration_id: reg(n),
        ticket_type_id,
        quantity,
        cancelled_at: at,
    }
}

pub(super) fn join(
    e: u128,
    ticket_type_id: TicketTypeId,
    quantity: u32,
    attendee: Attendee,
) -> EventCommand {
    EventCommand::JoinWaitlist {
        entry_id: entry(e),
        ticket_type_id,
        attendee,
        quantity,
        answers: Answers::new(),
    }
}

pub(super) fn joined(
    e: u128,
    ticket_type_id: TicketTypeId,
    quantity: u32,
    attendee: Attendee,
) -> EventFact {
    EventFact::WaitlistJoined {
        entry_id: entry(e),
        ticket_type_id,
        attendee,
        quantity,
        answers: Answers::new(),
        joined_at: now(),
    }
}

/// An offer made at `at` under the default offer time.
pub(super) fn offer_made_at(
    e: u128,
    ticket_type_id: TicketTypeId,
    quantity: u32,
    at: Timestamp,
) -> EventFact {
    EventFact::WaitlistOfferMade {
        entry_id: entry(e),
        ticket_type_id,
        quantity,
        expires_at: at + seconds(i64::from(DEFAULT_OFFER_SECONDS)),
        offered_at: at,
    }
}

pub(super) fn offer_made(e: u128, ticket_type_id: TicketTypeId, quantity: u32) -> EventFact {
    offer_made_at(e, ticket_type_id, quantity, now())
}

pub(super) fn offer_expired_at(
    e: u128,
    ticket_type_id: TicketTypeId,
    quantity: u32,
    at: Timestamp,
) -> EventFact {
    EventFact::WaitlistOfferExpired {
        entry_id: entry(e),
        ticket_type_id,
        quantity,
        expired_at: at,
    }
}

pub(super) fn expire_offer(e: u128) -> EventCommand {
    EventCommand::ExpireOffer { entry_id: entry(e) }
}

pub(super) fn leave(e: u128) -> EventCommand {
    EventCommand::LeaveWaitlist { entry_id: entry(e) }
}

pub(super) fn left(
    e: u128,
    ticket_type_id: TicketTypeId,
    quantity: u32,
    had_offer: bool,
) -> EventFact {
    EventFact::WaitlistLeft {
        entry_id: entry(e),
        ticket_type_id,
        quantity,
        had_offer,
        left_at: now(),
    }
}

/// Entry `e` claims its offer as registration `n`, with one code per seat.
pub(super) fn claim(e: u128, n: u128, quantity: u32) -> EventCommand {
    EventCommand::ClaimOffer {
        entry_id: entry(e),
        registration_id: reg(n),
        ticket_codes: codes(n, quantity),
    }
}

pub(super) fn offer_claimed(
    e: u128,
    n: u128,
    ticket_type_id: TicketTypeId,
    quantity: u32,
) -> EventFact {
    EventFact::WaitlistOfferClaimed {
        entry_id: entry(e),
        registration_id: reg(n),
        ticket_type_id,
        quantity,
        claimed_at: now(),
    }
}

pub(super) fn is_invalid(field: &'static str) -> impl FnOnce(&EventError) -> bool {
    move |error| matches!(error, EventError::Invalid { field: f, .. } if *f == field)
}

pub(super) fn is_invalid_state(error: &EventError) -> bool {
    matches!(error, EventError::InvalidState { .. })
}
