//! Holds, payments, refunds and cancellations.
//!
//! A paid reservation holds its seats for [`EventPolicy::hold_seconds`](super::EventPolicy):
//! held seats count against capacity exactly like confirmed ones. The payment provider's answers
//! arrive as commands (`RecordPayment`, `RecordPaymentPending`, `RecordPaymentDeclined`); the
//! domain never talks to a provider, it decides what a payment means.
//!
//! **Late-payment policy.** Money can arrive after a hold expired (an asynchronous payment the
//! provider confirms late, a webhook delayed in transit). The seats of an expired hold were
//! freed at expiry and may already be offered to the waitlist or sold again, so the payment:
//! - confirms the registration again (`HoldConfirmed { late: true }`) if its seats are still
//!   free: the event is on sale, nobody waits in line for the ticket type, the seats are
//!   available, and the attendee stays within the per-attendee limit (the expired hold stopped
//!   counting against it, and the attendee may have reserved other seats since);
//! - otherwise is refunded in full (`RefundDue { reason: late_payment }`).
//!
//! It never confirms seats that are not free: a late payment cannot overbook. The same rule
//! refunds money for a registration that was cancelled, paid twice, or paid the wrong amount.
//! A refund is a fact first (`RefundDue`); the scheduler asks the provider to return the money
//! and records `RefundCompleted`.

use super::waitlist::with_offers;
use super::{
    Event, EventError, EventFact, EventStatus, PaymentStatus, RefundReason, Registration,
    RegistrationStatus, check_attendee_limit, has_ended,
};
use crate::{Money, PaymentId, RegistrationId, Timestamp};

/// What `registration_id` costs now, if it can be paid now: a hold that has not expired.
/// The command API asks this before it charges a card, so no money is taken for a hold that
/// cannot be confirmed.
pub fn payable(
    state: &Event,
    registration_id: RegistrationId,
    now: Timestamp,
) -> Result<Money, EventError> {
    let registration = registration(state, registration_id)?;
    match registration.status {
        RegistrationStatus::Held => {
            if registration.hold_expires_at.is_some_and(|at| now >= at) {
                return Err(EventError::HoldExpired {
                    expired_at: registration.hold_expires_at,
                });
            }
            registration.price.clone().ok_or(EventError::NotPayable {
                status: registration.status,
            })
        }
        RegistrationStatus::Expired => Err(EventError::HoldExpired {
            expired_at: registration.hold_expires_at,
        }),
        status => Err(EventError::NotPayable { status }),
    }
}

fn registration(state: &Event, id: RegistrationId) -> Result<&Registration, EventError> {
    state
        .registrations
        .get(&id)
        .ok_or(EventError::RegistrationNotFound)
}

/// The attendee cancels: a hold is released at any time; a confirmed registration until the
/// cancellation deadline, with its payment refunded. Freed seats go to the waitlist first.
pub(super) fn cancel_registration(
    state: &Event,
    registration_id: RegistrationId,
    now: Timestamp,
) -> Result<Vec<EventFact>, EventError> {
    let registration = registration(state, registration_id)?;
    let mut facts = Vec::with_capacity(2);
    match registration.status {
        RegistrationStatus::Cancelled => return Err(EventError::RegistrationAlreadyCancelled),
        RegistrationStatus::Expired => {
            return Err(EventError::HoldExpired {
                expired_at: registration.hold_expires_at,
            });
        }
        RegistrationStatus::Held => facts.push(cancelled(registration, now)),
        RegistrationStatus::Confirmed => {
            if let Some(deadline) = state.cancellation_deadline()
                && now >= deadline
            {
                return Err(EventError::CancellationClosed { deadline });
            }
            facts.push(cancelled(registration, now));
            facts.extend(refund_of(
                registration,
                RefundReason::AttendeeCancelled,
                now,
            ));
        }
    }
    Ok(with_offers(state, facts, now))
}

/// The organizer cancelled the event: every active registration is cancelled, and every paid one
/// refunded. Follows `EventCancelled` in the same append.
pub(super) fn cancel_every_registration(state: &Event, now: Timestamp) -> Vec<EventFact> {
    let mut facts = Vec::new();
    for registration in state.registrations.values() {
        match registration.status {
            RegistrationStatus::Held => facts.push(cancelled(registration, now)),
            RegistrationStatus::Confirmed => {
                facts.push(cancelled(registration, now));
                facts.extend(refund_of(registration, RefundReason::EventCancelled, now));
            }
            RegistrationStatus::Cancelled | RegistrationStatus::Expired => {}
        }
    }
    facts
}

fn cancelled(registration: &Registration, now: Timestamp) -> EventFact {
    EventFact::RegistrationCancelled {
        registration_id: registration.id,
        ticket_type_id: registration.ticket_type_id,
        quantity: registration.quantity,
        cancelled_at: now,
    }
}

/// The refund of a paid registration's payment; nothing for a free one.
fn refund_of(
    registration: &Registration,
    reason: RefundReason,
    now: Timestamp,
) -> Option<EventFact> {
    let (Some(payment_id), Some(amount)) = (&registration.payment_id, &registration.price) else {
        return None;
    };
    Some(EventFact::RefundDue {
        registration_id: registration.id,
        payment_id: payment_id.clone(),
        amount: amount.clone(),
        reason,
        due_at: now,
    })
}

/// A payment reported for another registration than the one it was first reported for is
/// refused; one already reported for this registration is returned, to be treated as a repeat.
fn known_payment(
    state: &Event,
    registration_id: RegistrationId,
    payment_id: &PaymentId,
) -> Result<Option<PaymentStatus>, EventError> {
    match state.payments.get(payment_id) {
        Some(record) if record.registration_id != registration_id => {
            Err(EventError::PaymentOfOtherRegistration(payment_id.clone()))
        }
        Some(record) => Ok(Some(record.status)),
        None => Ok(None),
    }
}

pub(super) fn record_pending(
    state: &Event,
    registration_id: RegistrationId,
    payment_id: PaymentId,
    now: Timestamp,
) -> Result<Vec<EventFact>, EventError> {
    registration(state, registration_id)?;
    if known_payment(state, registration_id, &payment_id)?.is_some() {
        // Anything the provider said before "pending" is at least as recent.
        return Ok(vec![]);
    }
    Ok(vec![EventFact::PaymentPending {
        registration_id,
        payment_id,
        reported_at: now,
    }])
}

pub(super) fn record_declined(
    state: &Event,
    registration_id: RegistrationId,
    payment_id: PaymentId,
    reason: String,
    now: Timestamp,
) -> Result<Vec<EventFact>, EventError> {
    registration(state, registration_id)?;
    match known_payment(state, registration_id, &payment_id)? {
        None | Some(PaymentStatus::Pending) => {}
        // A decline repeated, or arriving after the money did, changes nothing.
        Some(_) => return Ok(vec![]),
    }
    let reason: String = reason.trim().chars().take(200).collect();
    Ok(vec![EventFact::PaymentDeclined {
        registration_id,
        payment_id,
        reason: if reason.is_empty() {
            "declined".to_owned()
        } else {
            reason
        },
        declined_at: now,
    }])
}

/// Money arrived: see the module's late-payment policy.
pub(super) fn record_payment(
    state: &Event,
    registration_id: RegistrationId,
    payment_id: PaymentId,
    amount: Money,
    now: Timestamp,
) -> Result<Vec<EventFact>, EventError> {
    let registration = registration(state, registration_id)?;
    if matches!(
        known_payment(state, registration_id, &payment_id)?,
        Some(PaymentStatus::Received | PaymentStatus::RefundDue | PaymentStatus::Refunded)
    ) {
        // The same payment reported again (a webhook redelivered, a retried request).
        return Ok(vec![]);
    }
    let received = EventFact::PaymentReceived {
        registration_id,
        payment_id: payment_id.clone(),
        amount: amount.clone(),
        received_at: now,
    };
    let refund = |reason| EventFact::RefundDue {
        registration_id,
        payment_id: payment_id.clone(),
        amount: amount.clone(),
        reason,
        due_at: now,
    };
    let confirmed = |late| EventFact::HoldConfirmed {
        registration_id,
        ticket_type_id: registration.ticket_type_id,
        quantity: registration.quantity,
        payment_id: payment_id.clone(),
        late,
        confirmed_at: now,
    };
    if registration.price.as_ref() != Some(&amount) {
        return Ok(vec![received, refund(RefundReason::AmountMismatch)]);
    }
    let outcome = match registration.status {
        // Still held: whatever the clock says, the seats are this registration's until the
        // hold is expired by a fact, so confirming oversells nothing.
        RegistrationStatus::Held => confirmed(false),
        RegistrationStatus::Expired if may_confirm_late(state, registration, now) => {
            confirmed(true)
        }
        RegistrationStatus::Expired => refund(RefundReason::LatePayment),
        RegistrationStatus::Confirmed => refund(RefundReason::DuplicatePayment),
        RegistrationStatus::Cancelled if state.status == EventStatus::Cancelled => {
            refund(RefundReason::EventCancelled)
        }
        RegistrationStatus::Cancelled => refund(RefundReason::RegistrationCancelled),
    };
    Ok(vec![received, outcome])
}

/// Whether an expired registration's seats can be confirmed again: on sale, nobody in line for
/// the ticket type, enough seats free, and the attendee within the per-attendee limit. Its
/// seats stopped counting anywhere when the hold expired, so confirming it again is checked
/// like a new reservation.
fn may_confirm_late(state: &Event, registration: &Registration, now: Timestamp) -> bool {
    state.status == EventStatus::Published
        && !has_ended(state, now)
        && state
            .ticket_types
            .get(&registration.ticket_type_id)
            .is_some_and(|t| t.waiting.is_empty())
        && state.available(registration.ticket_type_id) >= registration.quantity
        && check_attendee_limit(state, &registration.attendee.email, registration.quantity).is_ok()
}

pub(super) fn complete_refund(
    state: &Event,
    payment_id: PaymentId,
    refund_id: String,
    now: Timestamp,
) -> Result<Vec<EventFact>, EventError> {
    let record = state
        .payments
        .get(&payment_id)
        .ok_or_else(|| EventError::NoRefundDue(payment_id.clone()))?;
    match record.status {
        PaymentStatus::RefundDue => Ok(vec![EventFact::RefundCompleted {
            registration_id: record.registration_id,
            payment_id,
            refund_id,
            completed_at: now,
        }]),
        PaymentStatus::Refunded => Ok(vec![]),
        _ => Err(EventError::NoRefundDue(payment_id)),
    }
}

/// The scheduler's timer for a hold fired: release it if it is still held and due.
pub(super) fn expire_hold(
    state: &Event,
    registration_id: RegistrationId,
    now: Timestamp,
) -> Result<Vec<EventFact>, EventError> {
    let registration = registration(state, registration_id)?;
    let due = registration.hold_expires_at.is_some_and(|at| now >= at);
    if registration.status != RegistrationStatus::Held || !due {
        return Ok(vec![]);
    }
    let expired = EventFact::HoldExpired {
        registration_id,
        ticket_type_id: registration.ticket_type_id,
        quantity: registration.quantity,
        expired_at: now,
    };
    Ok(with_offers(state, vec![expired], now))
}
