//! Whatever sequence of commands arrives, the event never confirms more seats than a ticket
//! type's quantity or the event's capacity, and its tallies always agree with its registrations.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta};
use marquee_domain::event::{
    self, Attendee, Event, EventCommand, EventFact, RegistrationStatus, VenueInfo,
};
use marquee_domain::{
    EventId, Money, RegistrationId, TicketCode, TicketTypeId, Timestamp, VenueId,
};
use proptest::prelude::*;
use uuid::Uuid;

/// One step of a random session against a published event.
#[derive(Debug, Clone)]
enum Step {
    /// Reserve `quantity` seats of the ticket type at `ticket_type` (modulo the number of
    /// types, one past the end meaning an unknown type); `reuse` retries an existing id.
    Reserve {
        ticket_type: usize,
        quantity: u32,
        reuse: Option<usize>,
    },
    /// Cancel the registration at `pick` (modulo the number made so far).
    CancelRegistration { pick: usize },
    /// Set the event's capacity, possibly to nonsense.
    ChangeCapacity { capacity: u32 },
    /// Add a ticket type with `quantity` seats.
    AddTicketType { quantity: u32 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (any::<usize>(), 0..=12u32, prop::option::weighted(0.1, any::<usize>())).prop_map(
            |(ticket_type, quantity, reuse)| Step::Reserve { ticket_type, quantity, reuse }
        ),
        3 => any::<usize>().prop_map(|pick| Step::CancelRegistration { pick }),
        1 => (0..=VENUE_SEATS + 5).prop_map(|capacity| Step::ChangeCapacity { capacity }),
        1 => (0..=30u32).prop_map(|quantity| Step::AddTicketType { quantity }),
    ]
}

const VENUE_SEATS: u32 = 60;

fn now() -> Timestamp {
    DateTime::UNIX_EPOCH + TimeDelta::seconds(1_906_545_600)
}

fn venue() -> VenueInfo {
    VenueInfo {
        venue_id: VenueId(Uuid::from_u128(0xA)),
        capacity: VENUE_SEATS,
    }
}

fn ticket_type_id(n: u128) -> TicketTypeId {
    TicketTypeId(Uuid::from_u128(0x7000 + n))
}

fn free() -> Money {
    Money {
        amount_minor: 0,
        currency: "EUR".into(),
    }
}

/// Runs `command`, folds what it decided into `state` and `log`.
fn apply(state: Event, log: &mut Vec<EventFact>, command: EventCommand) -> Event {
    match event::decide(&state, command, now()) {
        Ok(facts) => {
            let state = facts.iter().fold(state, event::evolve);
            log.extend(facts);
            state
        }
        Err(_) => state,
    }
}

fn check_invariants(state: &Event) -> Result<(), TestCaseError> {
    let mut recount: BTreeMap<TicketTypeId, u32> = BTreeMap::new();
    for registration in state.registrations.values() {
        if registration.status == RegistrationStatus::Confirmed {
            *recount.entry(registration.ticket_type_id).or_default() += registration.quantity;
        }
    }
    for (id, ticket_type) in &state.ticket_types {
        prop_assert!(
            ticket_type.confirmed <= ticket_type.quantity,
            "ticket type {id}: {} confirmed of {}",
            ticket_type.confirmed,
            ticket_type.quantity
        );
        prop_assert_eq!(
            ticket_type.confirmed,
            recount.get(id).copied().unwrap_or(0),
            "ticket type {}'s tally disagrees with its registrations",
            id
        );
    }
    prop_assert!(
        recount.keys().all(|id| state.ticket_types.contains_key(id)),
        "a registration points at an unknown ticket type"
    );
    prop_assert!(
        state.confirmed() <= state.capacity,
        "{} confirmed, capacity {}",
        state.confirmed(),
        state.capacity
    );
    let codes: usize = state
        .registrations
        .values()
        .map(|r| r.ticket_codes.len())
        .sum();
    prop_assert_eq!(state.tickets.len(), codes, "a ticket code was issued twice");
    Ok(())
}

fn run(capacity: u32, initial_types: &[u32], steps: &[Step]) -> Result<Event, TestCaseError> {
    let mut log = Vec::new();
    let mut state = apply(
        Event::default(),
        &mut log,
        EventCommand::DraftEvent {
            event_id: EventId(Uuid::from_u128(0xE)),
            venue: Some(venue()),
            title: "Proptest Live".into(),
            description: String::new(),
            category: "Testing".into(),
            starts_at: now() + TimeDelta::days(1),
            ends_at: now() + TimeDelta::days(2),
            timezone: "UTC".into(),
            capacity: Some(capacity),
            max_per_order: None,
        },
    );
    let mut types: Vec<TicketTypeId> = Vec::new();
    let mut add_type = |state: Event, log: &mut Vec<EventFact>, quantity: u32| {
        let id = ticket_type_id(types.len() as u128);
        let state = apply(
            state,
            log,
            EventCommand::AddTicketType {
                ticket_type_id: id,
                name: format!("Type {}", types.len()),
                price: free(),
                quantity,
                sales_start: None,
                sales_end: None,
            },
        );
        if state.ticket_types.contains_key(&id) {
            types.push(id);
        }
        state
    };
    for &quantity in initial_types {
        state = add_type(state, &mut log, quantity);
    }
    state = apply(state, &mut log, EventCommand::Publish);
    prop_assert_eq!(state.status, event::EventStatus::Published);
    check_invariants(&state)?;

    let mut registrations: Vec<RegistrationId> = Vec::new();
    let mut next_code: u128 = 0;
    for step in steps {
        let command = match step.clone() {
            Step::Reserve {
                ticket_type,
                quantity,
                reuse,
            } => {
                let ticket_type_id = state
                    .ticket_types
                    .keys()
                    .copied()
                    .nth(ticket_type % (state.ticket_types.len() + 1))
                    .unwrap_or(ticket_type_id(9_999));
                let registration_id = match reuse {
                    Some(pick) if !registrations.is_empty() => {
                        registrations[pick % registrations.len()]
                    }
                    _ => RegistrationId(Uuid::from_u128(0x1_0000 + registrations.len() as u128)),
                };
                let ticket_codes = (0..quantity)
                    .map(|_| {
                        next_code += 1;
                        TicketCode(format!("{next_code:032x}"))
                    })
                    .collect();
                EventCommand::Reserve {
                    registration_id,
                    ticket_type_id,
                    attendee: Attendee {
                        name: "Pat".into(),
                        email: "pat@example.org".into(),
                    },
                    quantity,
                    ticket_codes,
                    answers: Default::default(),
                }
            }
            Step::CancelRegistration { pick } => EventCommand::CancelRegistration {
                registration_id: if registrations.is_empty() {
                    RegistrationId(Uuid::from_u128(0xDEAD))
                } else {
                    registrations[pick % registrations.len()]
                },
            },
            Step::ChangeCapacity { capacity } => EventCommand::ChangeCapacity {
                capacity,
                venue: venue(),
            },
            Step::AddTicketType { quantity } => {
                state = add_type(state, &mut log, quantity);
                check_invariants(&state)?;
                continue;
            }
        };
        if let EventCommand::Reserve {
            registration_id, ..
        } = &command
            && !registrations.contains(registration_id)
        {
            registrations.push(*registration_id);
        }
        state = apply(state, &mut log, command);
        check_invariants(&state)?;
    }

    // Replaying the whole log from scratch gives the same state as folding step by step.
    let replayed = log.iter().fold(Event::default(), event::evolve);
    prop_assert_eq!(&replayed, &state);
    Ok(state)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_sequence_of_commands_oversells_or_miscounts(
        capacity in 1..=VENUE_SEATS,
        initial_types in prop::collection::vec(1..=30u32, 1..=3),
        steps in prop::collection::vec(step(), 0..=200),
    ) {
        run(capacity, &initial_types, &steps)?;
    }
}

/// The harness itself drives the event to sold out and back: 2 of 20 orders of 5 fit in a
/// capacity of 10, and cancelling the first frees its 5 seats.
#[test]
fn a_scripted_session_sells_out_and_frees_seats() {
    let steps: Vec<Step> = (0..20)
        .map(|_| Step::Reserve {
            ticket_type: 0,
            quantity: 5,
            reuse: None,
        })
        .chain([Step::CancelRegistration { pick: 0 }])
        .collect();
    let state = run(10, &[30], &steps).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(state.registrations.len(), 2);
    assert_eq!(state.confirmed(), 5);
    assert_eq!(state.available(ticket_type_id(0)), 5);
}
