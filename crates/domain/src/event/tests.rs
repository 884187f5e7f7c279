//! Rules of the event aggregate, one sentence per test.

use chrono::TimeDelta;
use uuid::Uuid;

use super::*;
use crate::testing::{given, now};

// ---- vocabulary -------------------------------------------------------------------------------

const VENUE_SEATS: u32 = 500;
const CAPACITY: u32 = 100;

fn event_id() -> EventId {
    EventId(Uuid::from_u128(0xE))
}

fn venue() -> VenueInfo {
    VenueInfo {
        venue_id: VenueId(Uuid::from_u128(0xA)),
        capacity: VENUE_SEATS,
    }
}

fn general() -> TicketTypeId {
    TicketTypeId(Uuid::from_u128(0x61))
}

fn vip() -> TicketTypeId {
    TicketTypeId(Uuid::from_u128(0x62))
}

fn reg(n: u128) -> RegistrationId {
    RegistrationId(Uuid::from_u128(0x1000 + n))
}

fn hours(n: i64) -> TimeDelta {
    TimeDelta::hours(n)
}

fn starts() -> Timestamp {
    now() + TimeDelta::days(30)
}

fn ends() -> Timestamp {
    starts() + hours(3)
}

/// A 32-character code unique to (registration, seat).
fn code(registration: u128, seat: u32) -> TicketCode {
    TicketCode(format!("{registration:016x}{seat:016x}"))
}

fn codes(registration: u128, quantity: u32) -> Vec<TicketCode> {
    (0..quantity).map(|seat| code(registration, seat)).collect()
}

fn ada() -> Attendee {
    Attendee {
        name: "Ada Lovelace".into(),
        email: "ada@example.org".into(),
    }
}

fn euros(amount_minor: i64) -> Money {
    Money {
        amount_minor,
        currency: "EUR".into(),
    }
}

fn draft() -> EventCommand {
    EventCommand::DraftEvent {
        event_id: event_id(),
        venue: Some(venue()),
        title: "RustConf".into(),
        description: "Talks about Rust.".into(),
        category: "Conference".into(),
        starts_at: starts(),
        ends_at: ends(),
        timezone: "Europe/Berlin".into(),
        capacity: Some(CAPACITY),
        max_per_order: None,
    }
}

/// `draft()` with one field changed.
fn draft_with(change: impl FnOnce(&mut EventCommand)) -> EventCommand {
    let mut command = draft();
    change(&mut command);
    command
}

fn drafted() -> EventFact {
    EventFact::EventDrafted {
        event_id: event_id(),
        venue_id: venue().venue_id,
        title: "RustConf".into(),
        description: "Talks about Rust.".into(),
        category: "Conference".into(),
        starts_at: starts(),
        ends_at: ends(),
        timezone: "Europe/Berlin".into(),
        capacity: CAPACITY,
        max_per_order: DEFAULT_MAX_PER_ORDER,
    }
}

fn drafted_with_capacity(capacity: u32) -> EventFact {
    match drafted() {
        EventFact::EventDrafted {
            event_id,
            venue_id,
            title,
            description,
            category,
            starts_at,
            ends_at,
            timezone,
            max_per_order,
            ..
        } => EventFact::EventDrafted {
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
        },
        other => other,
    }
}

fn add_ticket_type(id: TicketTypeId, name: &str, quantity: u32) -> EventCommand {
    EventCommand::AddTicketType {
        ticket_type_id: id,
        name: name.into(),
        price: euros(0),
        quantity,
        sales_start: None,
        sales_end: None,
    }
}

fn ticket_type_added(id: TicketTypeId, name: &str, quantity: u32) -> EventFact {
    EventFact::TicketTypeAdded {
        ticket_type_id: id,
        name: name.into(),
        price: euros(0),
        quantity,
        sales_start: None,
        sales_end: None,
    }
}

fn general_added(quantity: u32) -> EventFact {
    ticket_type_added(general(), "General admission", quantity)
}

fn paid_vip_added() -> EventFact {
    EventFact::TicketTypeAdded {
        ticket_type_id: vip(),
        name: "VIP".into(),
        price: euros(9_900),
        quantity: 10,
        sales_start: None,
        sales_end: None,
    }
}

fn sales_window_added(start: Option<Timestamp>, end: Option<Timestamp>) -> EventFact {
    EventFact::TicketTypeAdded {
        ticket_type_id: general(),
        name: "General admission".into(),
        price: euros(0),
        quantity: 50,
        sales_start: start,
        sales_end: end,
    }
}

fn published() -> EventFact {
    EventFact::EventPublished {
        published_at: now() - hours(24),
    }
}

fn cancelled() -> EventFact {
    EventFact::EventCancelled {
        reason: None,
        cancelled_at: now() - hours(1),
    }
}

/// A drafted event with 50 general-admission seats, on sale, capacity 100.
fn on_sale() -> Vec<EventFact> {
    vec![drafted(), general_added(50), published()]
}

fn reserve(n: u128, ticket_type_id: TicketTypeId, quantity: u32) -> EventCommand {
    EventCommand::Reserve {
        registration_id: reg(n),
        ticket_type_id,
        attendee: ada(),
        quantity,
        ticket_codes: codes(n, quantity),
    }
}

fn reserve_with(
    n: u128,
    quantity: u32,
    change: impl FnOnce(&mut Attendee, &mut Vec<TicketCode>),
) -> EventCommand {
    let mut attendee = ada();
    let mut ticket_codes = codes(n, quantity);
    change(&mut attendee, &mut ticket_codes);
    EventCommand::Reserve {
        registration_id: reg(n),
        ticket_type_id: general(),
        attendee,
        quantity,
        ticket_codes,
    }
}

fn confirmed(n: u128, ticket_type_id: TicketTypeId, quantity: u32) -> EventFact {
    EventFact::RegistrationConfirmed {
        registration_id: reg(n),
        ticket_type_id,
        attendee: ada(),
        quantity,
        ticket_codes: codes(n, quantity),
        confirmed_at: now(),
    }
}

fn registration_cancelled(n: u128, ticket_type_id: TicketTypeId, quantity: u32) -> EventFact {
    EventFact::RegistrationCancelled {
        registration_id: reg(n),
        ticket_type_id,
        quantity,
        cancelled_at: now(),
    }
}

fn cancel_registration(n: u128) -> EventCommand {
    EventCommand::CancelRegistration {
        registration_id: reg(n),
    }
}

fn change_capacity(capacity: u32) -> EventCommand {
    EventCommand::ChangeCapacity {
        capacity,
        venue: venue(),
    }
}

fn update(change: DetailsChange) -> EventCommand {
    EventCommand::UpdateDetails(change)
}

fn is_invalid(field: &'static str) -> impl FnOnce(&EventError) -> bool {
    move |error| matches!(error, EventError::Invalid { field: f, .. } if *f == field)
}

fn is_invalid_state(error: &EventError) -> bool {
    matches!(error, EventError::InvalidState { .. })
}

fn long(n: usize) -> String {
    "x".repeat(n)
}

// ---- drafting ---------------------------------------------------------------------------------

#[test]
fn drafting_a_new_event_records_it_as_drafted() {
    given([]).when(draft()).then([drafted()]);
}

#[test]
fn drafting_trims_the_texts() {
    given([])
        .when(draft_with(|c| {
            if let EventCommand::DraftEvent {
                title,
                description,
                category,
                timezone,
                ..
            } = c
            {
                *title = "  RustConf ".into();
                *description = "\tTalks about Rust.\n".into();
                *category = " Conference".into();
                *timezone = "Europe/Berlin  ".into();
            }
        }))
        .then([drafted()]);
}

#[test]
fn drafting_an_event_that_exists_is_refused() {
    given([drafted()])
        .when(draft())
        .then_err(EventError::AlreadyExists);
}

#[test]
fn drafting_at_a_venue_that_does_not_exist_is_refused() {
    given([])
        .when(draft_with(|c| {
            if let EventCommand::DraftEvent { venue, .. } = c {
                *venue = None;
            }
        }))
        .then_err(EventError::VenueNotFound);
}

#[test]
fn drafting_without_a_capacity_takes_the_venues() {
    let state = given([])
        .when(draft_with(|c| {
            if let EventCommand::DraftEvent { capacity, .. } = c {
                *capacity = None;
            }
        }))
        .then_state();
    assert_eq!(state.capacity, VENUE_SEATS);
}

#[test]
fn drafting_without_a_per_order_maximum_takes_the_default() {
    let state = given([]).when(draft()).then_state();
    assert_eq!(state.max_per_order, DEFAULT_MAX_PER_ORDER);
}

#[test]
fn drafting_with_a_blank_or_overlong_title_is_refused() {
    for bad in ["", "   ", &long(MAX_SHORT_TEXT + 1)] {
        given([])
            .when(draft_with(|c| {
                if let EventCommand::DraftEvent { title, .. } = c {
                    *title = bad.into();
                }
            }))
            .then_err_matches(is_invalid("title"));
    }
}

#[test]
fn drafting_with_a_title_of_exactly_the_maximum_length_is_accepted() {
    let title = "é".repeat(MAX_SHORT_TEXT);
    let state = given([])
        .when(draft_with(|c| {
            if let EventCommand::DraftEvent { title: t, .. } = c {
                *t = format!("  {title}  ");
            }
        }))
        .then_state();
    assert_eq!(state.title, title);
}

#[test]
fn drafting_with_a_blank_or_overlong_category_is_refused() {
    for bad in ["", " ", &long(MAX_SHORT_TEXT + 1)] {
        given([])
            .when(draft_with(|c| {
                if let EventCommand::DraftEvent { category, .. } = c {
                    *category = bad.into();
                }
            }))
            .then_err_matches(is_invalid("category"));
    }
}

#[test]
fn drafting_with_an_empty_description_is_accepted() {
    let state = given([])
        .when(draft_with(|c| {
            if let EventCommand::DraftEvent { description, .. } = c {
                *description = String::new();
            }
        }))
        .then_state();
    assert_eq!(state.description, "");
}

#[test]
fn drafting_with_an_overlong_description_is_refused() {
    given([])
        .when(draft_with(|c| {
            if let EventCommand::DraftEvent { description, .. } = c {
                *description = long(MAX_DESCRIPTION + 1);
            }
        }))
        .then_err_matches(is_invalid("description"));
}

#[test]
fn drafting_with_a_blank_or_overlong_timezone_is_refused() {
    for bad in ["", "  ", &long(MAX_SHORT_TEXT + 1)] {
        given([])
            .when(draft_with(|c| {
                if let EventCommand::DraftEvent { timezone, .. } = c {
                    *timezone = bad.into();
                }
            }))
            .then_err_matches(is_invalid("timezone"));
    }
}

#[test]
fn drafting_an_event_that_ends_before_it_starts_is_refused() {
    for end in [starts(), starts() - hours(1)] {
        given([])
            .when(draft_with(|c| {
                if let EventCommand::DraftEvent { ends_at, .. } = c {
                    *ends_at = end;
                }
            }))
            .then_err_matches(is_invalid("ends_at"));
    }
}

#[test]
fn drafting_an_event_that_has_already_ended_is_refused() {
    for end in [now(), now() - hours(1)] {
        given([])
            .when(draft_with(|c| {
                if let EventCommand::DraftEvent {
                    starts_at, ends_at, ..
                } = c
                {
                    *starts_at = end - hours(2);
                    *ends_at = end;
                }
            }))
            .then_err_matches(is_invalid("ends_at"));
    }
}

#[test]
fn drafting_an_event_that_is_under_way_is_accepted() {
    given([])
        .when(draft_with(|c| {
            if let EventCommand::DraftEvent {
                starts_at, ends_at, ..
            } = c
            {
                *starts_at = now() - hours(1);
                *ends_at = now() + hours(1);
            }
        }))
        .then_state();
}

#[test]
fn drafting_with_zero_capacity_is_refused() {
    given([])
        .when(draft_with(|c| {
            if let EventCommand::DraftEvent { capacity, .. } = c {
                *capacity = Some(0);
            }
        }))
        .then_err_matches(is_invalid("capacity"));
}

#[test]
fn drafting_with_more_capacity_than_the_venue_holds_is_refused() {
    given([])
        .when(draft_with(|c| {
            if let EventCommand::DraftEvent { capacity, .. } = c {
                *capacity = Some(VENUE_SEATS + 1);
            }
        }))
        .then_err(EventError::CapacityExceedsVenue {
            capacity: VENUE_SEATS + 1,
            venue_capacity: VENUE_SEATS,
        });
}

#[test]
fn drafting_with_exactly_the_venues_capacity_is_accepted() {
    let state = given([])
        .when(draft_with(|c| {
            if let EventCommand::DraftEvent { capacity, .. } = c {
                *capacity = Some(VENUE_SEATS);
            }
        }))
        .then_state();
    assert_eq!(state.capacity, VENUE_SEATS);
}

#[test]
fn drafting_with_a_per_order_maximum_outside_its_limits_is_refused() {
    for bad in [0, MAX_PER_ORDER_LIMIT + 1] {
        given([])
            .when(draft_with(|c| {
                if let EventCommand::DraftEvent { max_per_order, .. } = c {
                    *max_per_order = Some(bad);
                }
            }))
            .then_err_matches(is_invalid("max_per_order"));
    }
}

#[test]
fn drafting_with_the_highest_per_order_maximum_is_accepted() {
    let state = given([])
        .when(draft_with(|c| {
            if let EventCommand::DraftEvent { max_per_order, .. } = c {
                *max_per_order = Some(MAX_PER_ORDER_LIMIT);
            }
        }))
        .then_state();
    assert_eq!(state.max_per_order, MAX_PER_ORDER_LIMIT);
}

// ---- commands on an event that does not exist -------------------------------------------------

#[test]
fn every_command_but_drafting_on_a_missing_event_is_not_found() {
    let commands = [
        update(DetailsChange {
            title: Some("New".into()),
            ..DetailsChange::default()
        }),
        add_ticket_type(general(), "General", 10),
        EventCommand::Publish,
        EventCommand::Cancel { reason: None },
        change_capacity(10),
        reserve(1, general(), 1),
        cancel_registration(1),
    ];
    for command in commands {
        given([]).when(command).then_err(EventError::NotFound);
    }
}

// ---- reserving --------------------------------------------------------------------------------

#[test]
fn reserving_free_seats_confirms_them_with_their_codes() {
    given(on_sale())
        .when(reserve(1, general(), 2))
        .then([confirmed(1, general(), 2)]);
}

#[test]
fn reserving_the_last_seat_twice_confirms_only_one() {
    let mut history = vec![drafted(), general_added(1), published()];
    history.extend(
        given(history.clone())
            .when(reserve(1, general(), 1))
            .then_facts(),
    );
    given(history)
        .when(reserve(2, general(), 1))
        .then_err(EventError::SoldOut { available: 0 });
}

#[test]
fn cancelling_a_registration_frees_its_seats() {
    let state = given([
        drafted(),
        general_added(2),
        published(),
        confirmed(1, general(), 2),
    ])
    .when(cancel_registration(1))
    .then_state();
    assert_eq!(state.available(general()), 2);
    assert_eq!(
        state.registrations[&reg(1)].status,
        RegistrationStatus::Cancelled
    );
}
