//! What registrations, holds, payments, the waitlist and door scans do to the read models: the
//! guest list (`registrations`, `tickets`), `waitlist_entries`, `timers`, and the seat counts of
//! the event's ticket types.
//!
//! The rules mirror the domain's `evolve` so that the read models count what the aggregate
//! counts: a registration moves between statuses only along the domain's transitions (a
//! repeated or out-of-order fact changes nothing), and every seat count follows from the
//! registration's or entry's own status and quantity, never from a number in the fact alone.
//! Redelivered facts never get here (the checkpoint skips them); these guards are for facts the
//! log itself holds twice.

use chrono::{DateTime, Utc};
use marquee_domain::event::{EventFact, PaymentStatus, RegistrationStatus, WaitlistStatus};
use marquee_domain::{Money, TicketCode};

use super::{At, EventDoc, TicketTypeRow};
use crate::registrations::{EntryRow, RegistrationRow, Rows, TicketRow, payment_rank};
use crate::time::to_text;
use crate::timers::TimerKind;

/// Applies one registration, payment, waitlist or check-in fact. `doc` is the event, when the
/// read models know it. Returns false when the fact changed nothing (a repeat, or a transition
/// the registration or entry is not in a state for); the event is then left untouched.
pub(super) fn apply(
    rows: &mut Rows,
    doc: Option<&mut EventDoc>,
    at: &At<'_>,
    fact: EventFact,
) -> bool {
    let event_id = at.event_id;
    let position = at.position;
    match fact {
        EventFact::RegistrationConfirmed {
            registration_id,
            ticket_type_id,
            attendee,
            quantity,
            ticket_codes,
            confirmed_at,
        } => {
            let when = to_text(confirmed_at);
            let row = RegistrationRow {
                registration_id: registration_id.0.to_string(),
                event_id: event_id.to_owned(),
                ticket_type_id: ticket_type_id.0.to_string(),
                quantity: i64::from(quantity),
                status: RegistrationStatus::Confirmed,
                attendee_name: attendee.name,
                attendee_email: attendee.email,
                answers: "{}".to_owned(),
                person_id: at.person.map(str::to_owned),
                price_minor: None,
                price_currency: None,
                hold_expires_at: None,
                payment_id: None,
                payment_status: None,
                registered_at: when.clone(),
                registered_position: position,
                confirmed_at: Some(when.clone()),
                cancelled_at: None,
                expired_at: None,
                updated_at: when,
                last_position: position,
                holder: None,
            };
            add_registration(rows, doc, at, row, &ticket_codes)
        }
        EventFact::SeatsHeld {
            registration_id,
            ticket_type_id,
            attendee,
            quantity,
            ticket_codes,
            price,
            expires_at,
            held_at,
        } => {
            let when = to_text(held_at);
            let Money {
                amount_minor,
                currency,
            } = price;
            let id = registration_id.0.to_string();
            let row = RegistrationRow {
                registration_id: id.clone(),
                event_id: event_id.to_owned(),
                ticket_type_id: ticket_type_id.0.to_string(),
                quantity: i64::from(quantity),
                status: RegistrationStatus::Held,
                attendee_name: attendee.name,
                attendee_email: attendee.email,
                answers: "{}".to_owned(),
                person_id: at.person.map(str::to_owned),
                price_minor: Some(amount_minor),
                price_currency: Some(currency),
                hold_expires_at: Some(to_text(expires_at)),
                payment_id: None,
                payment_status: None,
                registered_at: when.clone(),
                registered_position: position,
                confirmed_at: None,
                cancelled_at: None,
                expired_at: None,
                updated_at: when,
                last_position: position,
                holder: None,
            };
            let added = add_registration(rows, doc, at, row, &ticket_codes);
            if added {
                rows.timers
                    .set(TimerKind::ExpireHold, event_id, &id, expires_at, position);
            }
            added
        }
        EventFact::RegistrationCancelled {
            registration_id,
            cancelled_at,
            ..
        } => {
            let id = registration_id.0.to_string();
            rows.timers.remove(TimerKind::ExpireHold, &id);
            let when = to_text(cancelled_at);
            let freed = rows.registrations.update(&id, |r| {
                let before = r.status;
                if !before.is_active() {
                    return None;
                }
                r.status = RegistrationStatus::Cancelled;
                r.cancelled_at = Some(when.clone());
                touch(&mut r.updated_at, &mut r.last_position, &when, position);
                Some((before, r.ticket_type_id.clone(), r.quantity))
            });
            let Some((before, ticket_type_id, quantity)) = freed else {
                tracing::warn!(%event_id, %registration_id, "cancellation of a registration that is neither held nor confirmed, ignored");
                return false;
            };
            count(doc, event_id, &ticket_type_id, |t| match before {
                RegistrationStatus::Held => t.held -= quantity,
                _ => t.confirmed -= quantity,
            });
            true
        }
        EventFact::HoldExpired {
            registration_id,
            expired_at,
            ..
        } => {
            let id = registration_id.0.to_string();
            rows.timers.remove(TimerKind::ExpireHold, &id);
            let when = to_text(expired_at);
            let freed = rows.registrations.update(&id, |r| {
                if r.status != RegistrationStatus::Held {
                    return None;
                }
                r.status = RegistrationStatus::Expired;
                r.expired_at = Some(when.clone());
                touch(&mut r.updated_at, &mut r.last_position, &when, position);
                Some((r.ticket_type_id.clone(), r.quantity))
            });
            let Some((ticket_type_id, quantity)) = freed else {
                tracing::warn!(%event_id, %registration_id, "expiry of a registration that is not held, ignored");
                return false;
            };
            count(doc, event_id, &ticket_type_id, |t| t.held -= quantity);
            true
        }
        EventFact::HoldConfirmed {
            registration_id,
            payment_id,
            confirmed_at,
            ..
        } => {
            let id = registration_id.0.to_string();
            rows.timers.remove(TimerKind::ExpireHold, &id);
            let when = to_text(confirmed_at);
            let confirmed = rows.registrations.update(&id, |r| {
                let before = r.status;
                // Held, or expired and paid late while its seats were still free (`late`).
                if !matches!(
                    before,
                    RegistrationStatus::Held | RegistrationStatus::Expired
                ) {
                    return None;
                }
                r.status = RegistrationStatus::Confirmed;
                r.confirmed_at = Some(when.clone());
                set_payment(r, &payment_id.0, PaymentStatus::Received, true);
                touch(&mut r.updated_at, &mut r.last_position, &when, position);
                Some((before, r.ticket_type_id.clone(), r.quantity))
            });
            let Some((before, ticket_type_id, quantity)) = confirmed else {
                tracing::warn!(%event_id, %registration_id, "confirmation of a hold that is neither held nor expired, ignored");
                return false;
            };
            count(doc, event_id, &ticket_type_id, |t| {
                if before == RegistrationStatus::Held {
                    t.held -= quantity;
                }
                t.confirmed += quantity;
            });
            true
        }
        EventFact::AnswersGiven {
            registration_id,
            answers,
        } => {
            let answers = match serde_json::to_string(&answers) {
                Ok(answers) => answers,
                Err(error) => {
                    tracing::warn!(%event_id, %registration_id, %error, "answers not storable, ignored");
                    return false;
                }
            };
            let when = to_text(at.recorded_at);
            let given = rows
                .registrations
                .update(&registration_id.0.to_string(), |r| {
                    r.answers = answers;
                    touch(&mut r.updated_at, &mut r.last_position, &when, position);
                    Some(())
                });
            if given.is_none() {
                tracing::warn!(%event_id, %registration_id, "answers for an unknown registration, ignored");
                return false;
            }
            true
        }
        EventFact::PaymentPending {
            registration_id,
            payment_id,
            reported_at,
        } => payment(
            rows,
            at,
            &registration_id.0.to_string(),
            &payment_id.0,
            PaymentStatus::Pending,
            reported_at,
        ),
        EventFact::PaymentDeclined {
            registration_id,
            payment_id,
            declined_at,
            ..
        } => payment(
            rows,
            at,
            &registration_id.0.to_string(),
            &payment_id.0,
            PaymentStatus::Declined,
            declined_at,
        ),
        EventFact::PaymentReceived {
            registration_id,
            payment_id,
            received_at,
            ..
        } => payment(
            rows,
            at,
            &registration_id.0.to_string(),
            &payment_id.0,
            PaymentStatus::Received,
            received_at,
        ),
        EventFact::RefundDue {
            registration_id,
            payment_id,
            due_at,
            ..
        } => {
            let id = registration_id.0.to_string();
            let refunded_already = rows.registrations.get(&id).is_some_and(|r| {
                r.payment_id.as_deref() == Some(payment_id.0.as_str())
                    && r.payment_status == Some(PaymentStatus::Refunded)
            });
            if !refunded_already {
                rows.timers
                    .set(TimerKind::Refund, event_id, &payment_id.0, due_at, position);
            }
            payment(
                rows,
                at,
                &id,
                &payment_id.0,
                PaymentStatus::RefundDue,
                due_at,
            )
        }
        EventFact::RefundCompleted {
            registration_id,
            payment_id,
            completed_at,
            ..
        } => {
            rows.timers.remove(TimerKind::Refund, &payment_id.0);
            payment(
                rows,
                at,
                &registration_id.0.to_string(),
                &payment_id.0,
                PaymentStatus::Refunded,
                completed_at,
            )
        }
        EventFact::WaitlistJoined {
            entry_id,
            ticket_type_id,
            attendee,
            quantity,
            joined_at,
            ..
        } => {
            let Some(doc) = doc else {
                tracing::warn!(%event_id, %entry_id, "waitlist entry for an event the read models do not know, ignored");
                return false;
            };
            let id = entry_id.0.to_string();
            if rows.waitlist.get(&id).is_some() {
                tracing::warn!(%event_id, %entry_id, "waitlist entry joined twice, counted once");
                return false;
            }
            let ticket_type_id = ticket_type_id.0.to_string();
            let Some(ticket_type) = doc.ticket_type_mut(&ticket_type_id) else {
                tracing::warn!(%event_id, %entry_id, %ticket_type_id, "waitlist entry for an unknown ticket type, ignored");
                return false;
            };
            ticket_type.waitlist += 1;
            let seq = doc.listing.waitlist_joined;
            doc.listing.waitlist_joined += 1;
            let when = to_text(joined_at);
            rows.waitlist.insert(EntryRow {
                entry_id: id,
                event_id: event_id.to_owned(),
                ticket_type_id,
                attendee_name: attendee.name,
                attendee_email: attendee.email,
                person_id: at.person.map(str::to_owned),
                quantity: i64::from(quantity),
                status: WaitlistStatus::Waiting,
                seq,
                joined_at: when.clone(),
                offer_expires_at: None,
                registration_id: None,
                updated_at: when,
                last_position: position,
            });
            true
        }
        EventFact::WaitlistOfferMade {
            entry_id,
            expires_at,
            offered_at,
            ..
        } => {
            let id = entry_id.0.to_string();
            let when = to_text(offered_at);
            let offered = rows.waitlist.update(&id, |e| {
                if e.status != WaitlistStatus::Waiting {
                    return None;
                }
                e.status = WaitlistStatus::Offered;
                e.offer_expires_at = Some(to_text(expires_at));
                touch(&mut e.updated_at, &mut e.last_position, &when, position);
                Some((e.ticket_type_id.clone(), e.quantity))
            });
            let Some((ticket_type_id, quantity)) = offered else {
                tracing::warn!(%event_id, %entry_id, "offer to a waitlist entry that is not waiting, ignored");
                return false;
            };
            rows.timers
                .set(TimerKind::ExpireOffer, event_id, &id, expires_at, position);
            count(doc, event_id, &ticket_type_id, |t| {
                t.waitlist -= 1;
                t.offered += quantity;
            });
            true
        }
        EventFact::WaitlistOfferExpired {
            entry_id,
            expired_at,
            ..
        } => close_entry(
            rows,
            doc,
            at,
            &entry_id.0.to_string(),
            WaitlistStatus::Expired,
            None,
            expired_at,
        ),
        EventFact::WaitlistOfferClaimed {
            entry_id,
            registration_id,
            claimed_at,
            ..
        } => close_entry(
            rows,
            doc,
            at,
            &entry_id.0.to_string(),
            WaitlistStatus::Claimed,
            Some(registration_id.0.to_string()),
            claimed_at,
        ),
        EventFact::WaitlistLeft {
            entry_id, left_at, ..
        } => close_entry(
            rows,
            doc,
            at,
            &entry_id.0.to_string(),
            WaitlistStatus::Left,
            None,
            left_at,
        ),
        EventFact::TicketCheckedIn {
            ticket_code,
            nonce,
            scanned_at,
            ..
        } => {
            let key = TicketRow::key_of(event_id, &ticket_code.0);
            let scanned = rows.tickets.update(&key, |t| {
                // The first scan stands; a second is refused by the domain and never a fact.
                if t.checked_in_at.is_some() {
                    return None;
                }
                t.checked_in_at = Some(to_text(scanned_at));
                t.check_in_nonce = Some(nonce);
                t.last_position = position;
                Some(())
            });
            if scanned.is_none() {
                tracing::warn!(%event_id, %ticket_code, "check-in of an unknown or checked-in ticket, ignored");
                return false;
            }
            true
        }
        EventFact::CheckInReverted { ticket_code, .. } => {
            let key = TicketRow::key_of(event_id, &ticket_code.0);
            let reverted = rows.tickets.update(&key, |t| {
                t.checked_in_at.as_ref()?;
                t.checked_in_at = None;
                t.check_in_nonce = None;
                t.last_position = position;
                Some(())
            });
            if reverted.is_none() {
                tracing::warn!(%event_id, %ticket_code, "revert of a ticket that is not checked in, ignored");
                return false;
            }
            true
        }
        // The event's own facts are applied by the caller.
        EventFact::EventDrafted { .. }
        | EventFact::EventDetailsUpdated(_)
        | EventFact::TicketTypeAdded { .. }
        | EventFact::EventPublished { .. }
        | EventFact::EventCancelled { .. }
        | EventFact::EventCapacityChanged { .. }
        | EventFact::EventPolicyChanged(_)
        | EventFact::RegistrationQuestionsSet { .. }
        | EventFact::EventRescheduled { .. } => true,
        // Which account holds a registration or a place in line: no read model shows it yet.
        EventFact::RegistrationHolderRecorded { .. } | EventFact::WaitlistHolderRecorded { .. } => {
            false
        }
        // The event's next reminder is the scheduler's `remind` timer, one per event; nothing
        // a read model shows changes.
        EventFact::ReminderScheduled { reminder } => {
            match reminder {
                Some(reminder) => rows.timers.set(
                    TimerKind::Remind,
                    event_id,
                    event_id,
                    reminder.due_at,
                    position,
                ),
                None => rows.timers.remove(TimerKind::Remind, event_id),
            }
            false
        }
        EventFact::ReminderDue { .. } => false,
    }
}

/// A new registration (confirmed or held) with its tickets and seats. False, changing nothing,
/// when the registration exists already (whatever its status): a repeated fact counts once.
fn add_registration(
    rows: &mut Rows,
    doc: Option<&mut EventDoc>,
    at: &At<'_>,
    row: RegistrationRow,
    codes: &[TicketCode],
) -> bool {
    let (id, ticket_type_id, quantity, status) = (
        row.registration_id.clone(),
        row.ticket_type_id.clone(),
        row.quantity,
        row.status,
    );
    if !rows.registrations.insert(row) {
        tracing::warn!(event_id = %at.event_id, registration_id = %id, "registration made twice, counted once");
        return false;
    }
    for (seat, code) in codes.iter().enumerate() {
        // A code already issued keeps its first registration, as in the domain.
        rows.tickets.insert(TicketRow {
            code: code.0.clone(),
            event_id: at.event_id.to_owned(),
            registration_id: id.clone(),
            ticket_type_id: ticket_type_id.clone(),
            seat: i64::try_from(seat).unwrap_or(i64::MAX),
            checked_in_at: None,
            check_in_nonce: None,
            last_position: at.position,
        });
    }
    count(doc, at.event_id, &ticket_type_id, |t| match status {
        RegistrationStatus::Held => t.held += quantity,
        _ => t.confirmed += quantity,
    });
    true
}

/// Ends a waitlist entry that is waiting or offered; an open offer gives its seats back, a
/// waiting entry leaves the line. False when the entry is unknown or already ended.
fn close_entry(
    rows: &mut Rows,
    doc: Option<&mut EventDoc>,
    at: &At<'_>,
    entry_id: &str,
    status: WaitlistStatus,
    registration_id: Option<String>,
    when: DateTime<Utc>,
) -> bool {
    rows.timers.remove(TimerKind::ExpireOffer, entry_id);
    let when = to_text(when);
    let closed = rows.waitlist.update(entry_id, |e| {
        let before = e.status;
        if !matches!(before, WaitlistStatus::Waiting | WaitlistStatus::Offered) {
            return None;
        }
        e.status = status;
        e.offer_expires_at = None;
        e.registration_id = registration_id;
        touch(&mut e.updated_at, &mut e.last_position, &when, at.position);
        Some((before, e.ticket_type_id.clone(), e.quantity))
    });
    let Some((before, ticket_type_id, quantity)) = closed else {
        tracing::warn!(event_id = %at.event_id, %entry_id, ?status, "waitlist entry that is neither waiting nor offered, ignored");
        return false;
    };
    count(doc, at.event_id, &ticket_type_id, |t| {
        if before == WaitlistStatus::Offered {
            t.offered -= quantity;
        } else {
            t.waitlist -= 1;
        }
    });
    true
}

/// What the provider said about a payment, on its registration's row (see [`set_payment`]).
/// True whenever the registration is known: the fact applied, whether or not it changed the
/// row.
fn payment(
    rows: &mut Rows,
    at: &At<'_>,
    registration_id: &str,
    payment_id: &str,
    status: PaymentStatus,
    when: DateTime<Utc>,
) -> bool {
    let when = to_text(when);
    let known = rows
        .registrations
        .update(registration_id, |r| {
            set_payment(r, payment_id, status, false).then(|| {
                touch(&mut r.updated_at, &mut r.last_position, &when, at.position);
            })
        })
        .is_some()
        || rows.registrations.get(registration_id).is_some();
    if !known {
        tracing::warn!(event_id = %at.event_id, %registration_id, %payment_id, "payment for an unknown registration, ignored");
    }
    known
}

/// Records `status` of `payment_id` on a registration, returning whether the row changed. The
/// row names one payment: the one that confirmed the registration (`confirming`, which always
/// takes the row over), or until then the last one reported. Reports of another payment
/// once the row's payment has gone through (paid, or refunded) leave the row alone — such a
/// payment is a duplicate, and its refund is tracked by its timer. A payment's status only
/// moves forward.
fn set_payment(
    row: &mut RegistrationRow,
    payment_id: &str,
    status: PaymentStatus,
    confirming: bool,
) -> bool {
    let same = row.payment_id.as_deref() == Some(payment_id);
    if same {
        if row
            .payment_status
            .is_some_and(|now| payment_rank(now) >= payment_rank(status))
        {
            return false;
        }
    } else if !confirming
        && !matches!(
            row.payment_status,
            None | Some(PaymentStatus::Pending | PaymentStatus::Declined)
        )
    {
        return false;
    }
    row.payment_id = Some(payment_id.to_owned());
    row.payment_status = Some(status);
    true
}

/// Notes that a fact at `position`, at time `when`, changed a row.
fn touch(updated_at: &mut String, last_position: &mut i64, when: &str, position: i64) {
    when.clone_into(updated_at);
    *last_position = position;
}

/// Changes the seat counts of one ticket type of the event, never below zero. Nothing when the
/// event is unknown (the caller warns) or the ticket type is.
fn count(
    doc: Option<&mut EventDoc>,
    event_id: &str,
    ticket_type_id: &str,
    change: impl FnOnce(&mut TicketTypeRow),
) {
    let Some(doc) = doc else {
        return;
    };
    match doc.ticket_type_mut(ticket_type_id) {
        Some(ticket_type) => {
            change(ticket_type);
            ticket_type.confirmed = ticket_type.confirmed.max(0);
            ticket_type.held = ticket_type.held.max(0);
            ticket_type.offered = ticket_type.offered.max(0);
            ticket_type.waitlist = ticket_type.waitlist.max(0);
        }
        None => {
            tracing::warn!(%event_id, %ticket_type_id, "seats of an unknown ticket type, not counted");
        }
    }
}
