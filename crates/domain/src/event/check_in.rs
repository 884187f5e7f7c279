//! Door scans: one entry per ticket, with the scanner's nonce making a repeated upload of the
//! same scan harmless.
//!
//! Every check-in decision reads and writes the event's stream, so two doors scanning the same
//! ticket at the same moment are serialized by the log's expected-revision check: one is let in,
//! the other is told `already_redeemed` with the first scan's time. A scan is identified by its
//! nonce: the same nonce for the same ticket again is the same scan (no new fact, the same
//! answer); for another ticket it is refused. Scans uploaded later by an offline scanner keep
//! their own `scanned_at`.

use super::{
    Event, EventError, EventFact, MAX_NONCE_LEN, Registration, RegistrationStatus, SCAN_CLOCK_SKEW,
    Ticket, TicketType, invalid,
};
use crate::{TicketCode, Timestamp};

/// What the door needs to know of a ticket: its registration and ticket type, and its check-in.
pub fn describe<'a>(
    state: &'a Event,
    code: &TicketCode,
) -> Option<(&'a Ticket, &'a Registration, &'a TicketType)> {
    let ticket = state.tickets.get(code)?;
    let registration = state.registrations.get(&ticket.registration_id)?;
    let ticket_type = state.ticket_types.get(&registration.ticket_type_id)?;
    Some((ticket, registration, ticket_type))
}

pub(super) fn check_in(
    state: &Event,
    ticket_code: TicketCode,
    nonce: String,
    scanned_at: Option<Timestamp>,
    now: Timestamp,
) -> Result<Vec<EventFact>, EventError> {
    let nonce = nonce.trim().to_owned();
    if nonce.is_empty() || nonce.chars().count() > MAX_NONCE_LEN {
        return Err(invalid(
            "nonce",
            format!("must be 1 to {MAX_NONCE_LEN} characters"),
        ));
    }
    if let Some(scan) = state.scans.get(&nonce) {
        return if scan.ticket_code == ticket_code {
            Ok(vec![])
        } else {
            Err(EventError::NonceReused)
        };
    }
    if scanned_at.is_some_and(|at| at > now + SCAN_CLOCK_SKEW) {
        return Err(invalid("scanned_at", "is in the future"));
    }
    let (ticket, registration, _) =
        describe(state, &ticket_code).ok_or(EventError::TicketInvalid)?;
    match registration.status {
        RegistrationStatus::Confirmed => {}
        RegistrationStatus::Held => return Err(EventError::TicketUnpaid),
        RegistrationStatus::Cancelled | RegistrationStatus::Expired => {
            return Err(EventError::TicketCancelled);
        }
    }
    if let Some(first) = &ticket.check_in {
        return Err(EventError::AlreadyRedeemed {
            first_scanned_at: first.scanned_at,
        });
    }
    Ok(vec![EventFact::TicketCheckedIn {
        ticket_code,
        registration_id: registration.id,
        ticket_type_id: registration.ticket_type_id,
        nonce,
        scanned_at: scanned_at.unwrap_or(now),
        recorded_at: now,
    }])
}

pub(super) fn revert(
    state: &Event,
    ticket_code: TicketCode,
    now: Timestamp,
) -> Result<Vec<EventFact>, EventError> {
    let ticket = state
        .tickets
        .get(&ticket_code)
        .ok_or(EventError::TicketInvalid)?;
    if ticket.check_in.is_none() {
        return Err(EventError::NotCheckedIn);
    }
    Ok(vec![EventFact::CheckInReverted {
        ticket_code,
        registration_id: ticket.registration_id,
        reverted_at: now,
    }])
}
