//! The waitlist: attendees in line for a sold-out ticket type, and the offers freed seats become.
//!
//! Each ticket type has its own line, first come first served. Whenever a decision frees seats
//! (a cancellation, an expired hold, an expired or abandoned offer, a capacity increase), the
//! same decision offers them to the first in line ([`with_offers`]): the offer keeps the seats
//! for [`EventPolicy::offer_seconds`](super::EventPolicy) and counts against capacity like a
//! hold. A new reservation for a ticket type with people in line is refused as sold out, so a
//! freed seat always reaches the head of the line before anyone new. An entry waits for all the
//! seats it asked for: the head is not skipped for a smaller request behind it.

use super::Answers;
use super::questions::check_answers;
use super::{
    Attendee, Event, EventError, EventFact, EventStatus, WaitlistStatus, check_attendee,
    check_attendee_limit, check_ticket_codes, evolve, has_ended, invalid, on_sale,
    registration_facts,
};
use crate::{RegistrationId, TicketCode, TicketTypeId, Timestamp, WaitlistEntryId};

/// `facts` followed by the offers their freed seats allow. Cheap when nobody waits: the state is
/// only copied when some line is not empty.
pub(super) fn with_offers(
    state: &Event,
    mut facts: Vec<EventFact>,
    now: Timestamp,
) -> Vec<EventFact> {
    if state.ticket_types.values().all(|t| t.waiting.is_empty()) {
        return facts;
    }
    let after = facts.iter().fold(state.clone(), evolve);
    facts.extend(offers(after, now));
    facts
}

/// Offers free seats to the heads of the lines, earliest joiner first, for as long as a head's
/// whole request fits.
fn offers(mut state: Event, now: Timestamp) -> Vec<EventFact> {
    let mut made = Vec::new();
    if state.status != EventStatus::Published || has_ended(&state, now) {
        return made;
    }
    let offer_for = chrono::TimeDelta::seconds(i64::from(state.policy.offer_seconds));
    loop {
        let next = state
            .ticket_types
            .values()
            .filter(|t| t.sales_end.is_none_or(|end| now < end))
            .filter_map(|t| {
                let entry = state.waitlist.get(t.waiting.front()?)?;
                (state.available(t.id) >= entry.quantity).then_some(entry)
            })
            .min_by_key(|entry| entry.seq);
        let Some(entry) = next else {
            return made;
        };
        let offer = EventFact::WaitlistOfferMade {
            entry_id: entry.id,
            ticket_type_id: entry.ticket_type_id,
            quantity: entry.quantity,
            expires_at: now + offer_for,
            offered_at: now,
        };
        state = evolve(state, &offer);
        made.push(offer);
    }
}

/// `JoinWaitlist`: only while the ticket type is on sale and the request does not fit (or others
/// already wait), once per attendee and ticket type.
pub(super) fn join(
    state: &Event,
    entry_id: WaitlistEntryId,
    ticket_type_id: TicketTypeId,
    attendee: Attendee,
    quantity: u32,
    answers: Answers,
    now: Timestamp,
) -> Result<Vec<EventFact>, EventError> {
    let ticket_type = on_sale(state, ticket_type_id, now)?;
    if quantity == 0 {
        return Err(invalid("quantity", "must be at least 1"));
    }
    if quantity > state.max_per_order {
        return Err(EventError::OrderLimitExceeded {
            max: state.max_per_order,
        });
    }
    if state.waitlist.contains_key(&entry_id) {
        return Err(EventError::WaitlistEntryExists);
    }
    let attendee = check_attendee(attendee)?;
    let answers = check_answers(&state.questions, answers)?;
    let email = attendee.email.to_lowercase();
    if let Some(entry) = state.waitlist.values().find(|e| {
        e.ticket_type_id == ticket_type_id
            && matches!(e.status, WaitlistStatus::Waiting | WaitlistStatus::Offered)
            && e.attendee.email.to_lowercase() == email
    }) {
        return Err(EventError::AlreadyOnWaitlist { entry_id: entry.id });
    }
    check_attendee_limit(state, &attendee.email, quantity)?;
    let available = state.available(ticket_type_id);
    if ticket_type.waiting.is_empty() && available >= quantity {
        return Err(EventError::SeatsAvailable { available });
    }
    Ok(vec![EventFact::WaitlistJoined {
        entry_id,
        ticket_type_id,
        attendee,
        quantity,
        answers,
        joined_at: now,
    }])
}

/// `ClaimOffer`: an open offer becomes a registration for the seats it kept.
pub(super) fn claim(
    state: &Event,
    entry_id: WaitlistEntryId,
    registration_id: RegistrationId,
    ticket_codes: Vec<TicketCode>,
    now: Timestamp,
) -> Result<Vec<EventFact>, EventError> {
    let entry = state
        .waitlist
        .get(&entry_id)
        .ok_or(EventError::WaitlistEntryNotFound)?;
    match entry.status {
        WaitlistStatus::Offered => {}
        WaitlistStatus::Waiting => return Err(EventError::OfferNotMade),
        WaitlistStatus::Expired => return Err(EventError::OfferExpired),
        WaitlistStatus::Claimed => {
            return Err(EventError::OfferClaimed {
                registration_id: entry.registration_id,
            });
        }
        status @ (WaitlistStatus::Left | WaitlistStatus::Closed) => {
            return Err(EventError::NotOnWaitlist { status });
        }
    }
    if entry.offer_expires_at.is_some_and(|at| now >= at) {
        return Err(EventError::OfferExpired);
    }
    if has_ended(state, now) {
        return Err(EventError::Ended);
    }
    if state.registrations.contains_key(&registration_id) {
        return Err(EventError::RegistrationExists);
    }
    let quantity = entry.quantity;
    let wanted = usize::try_from(quantity).unwrap_or(usize::MAX);
    if ticket_codes.len() < wanted {
        return Err(invalid(
            "ticket_codes",
            format!("expected at least one code per seat ({quantity})"),
        ));
    }
    let ticket_codes: Vec<TicketCode> = ticket_codes.into_iter().take(wanted).collect();
    check_ticket_codes(state, &ticket_codes, quantity)?;
    // Joining checked the limit against the seats the attendee had then; whatever they reserved
    // while waiting counts now.
    check_attendee_limit(state, &entry.attendee.email, quantity)?;
    let ticket_type = state
        .ticket_types
        .get(&entry.ticket_type_id)
        .ok_or(EventError::TicketTypeNotFound)?;
    let mut facts = vec![EventFact::WaitlistOfferClaimed {
        entry_id,
        registration_id,
        ticket_type_id: entry.ticket_type_id,
        quantity,
        claimed_at: now,
    }];
    facts.extend(registration_facts(
        state,
        ticket_type,
        registration_id,
        entry.attendee.clone(),
        quantity,
        ticket_codes,
        entry.answers.clone(),
        now,
    ));
    // Whoever held the place in line holds the registration it became.
    if let Some(holder) = entry.holder {
        facts.push(EventFact::RegistrationHolderRecorded {
            registration_id,
            holder,
        });
    }
    Ok(facts)
}

/// The scheduler's timer for an offer fired: withdraw it if still open and due; its seats go
/// to the next in line.
pub(super) fn expire_offer(
    state: &Event,
    entry_id: WaitlistEntryId,
    now: Timestamp,
) -> Result<Vec<EventFact>, EventError> {
    let entry = state
        .waitlist
        .get(&entry_id)
        .ok_or(EventError::WaitlistEntryNotFound)?;
    let due = entry.offer_expires_at.is_some_and(|at| now >= at);
    if entry.status != WaitlistStatus::Offered || !due {
        return Ok(vec![]);
    }
    let expired = EventFact::WaitlistOfferExpired {
        entry_id,
        ticket_type_id: entry.ticket_type_id,
        quantity: entry.quantity,
        expired_at: now,
    };
    Ok(with_offers(state, vec![expired], now))
}

/// `LeaveWaitlist`: an entry waiting or holding an offer leaves the line. Either can let the
/// next in line through (an offer's seats, or a head that did not fit).
pub(super) fn leave(
    state: &Event,
    entry_id: WaitlistEntryId,
    now: Timestamp,
) -> Result<Vec<EventFact>, EventError> {
    let entry = state
        .waitlist
        .get(&entry_id)
        .ok_or(EventError::WaitlistEntryNotFound)?;
    if !matches!(
        entry.status,
        WaitlistStatus::Waiting | WaitlistStatus::Offered
    ) {
        return Err(EventError::NotOnWaitlist {
            status: entry.status,
        });
    }
    let left = EventFact::WaitlistLeft {
        entry_id,
        ticket_type_id: entry.ticket_type_id,
        quantity: entry.quantity,
        had_offer: entry.status == WaitlistStatus::Offered,
        left_at: now,
    };
    Ok(with_offers(state, vec![left], now))
}
