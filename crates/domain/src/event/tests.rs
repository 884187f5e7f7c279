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
        answers: Answers::new(),
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
        answers: Answers::new(),
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

// ---- updating details -------------------------------------------------------------------------

#[test]
fn updating_details_records_only_the_fields_that_change() {
    given([drafted()])
        .when(update(DetailsChange {
            title: Some("RustConf 2030".into()),
            description: Some("Talks about Rust.".into()),
            category: Some("Conference".into()),
            max_per_order: Some(4),
            ..DetailsChange::default()
        }))
        .then([EventFact::EventDetailsUpdated(DetailsChange {
            title: Some("RustConf 2030".into()),
            max_per_order: Some(4),
            ..DetailsChange::default()
        })]);
}

#[test]
fn updating_details_to_the_values_they_already_have_records_nothing() {
    given([drafted()])
        .when(update(DetailsChange {
            title: Some(" RustConf ".into()),
            description: Some("Talks about Rust.".into()),
            category: Some("Conference".into()),
            starts_at: Some(starts()),
            ends_at: Some(ends()),
            timezone: Some("Europe/Berlin".into()),
            max_per_order: Some(DEFAULT_MAX_PER_ORDER),
        }))
        .then_nothing();
}

#[test]
fn an_empty_details_change_records_nothing() {
    given([drafted()])
        .when(update(DetailsChange::default()))
        .then_nothing();
}

#[test]
fn updating_details_trims_the_texts() {
    given([drafted()])
        .when(update(DetailsChange {
            title: Some("  New title ".into()),
            description: Some(" ".into()),
            timezone: Some(" UTC ".into()),
            ..DetailsChange::default()
        }))
        .then([EventFact::EventDetailsUpdated(DetailsChange {
            title: Some("New title".into()),
            description: Some(String::new()),
            timezone: Some("UTC".into()),
            ..DetailsChange::default()
        })]);
}

#[test]
fn updated_details_show_in_the_event() {
    let state = given([drafted()])
        .when(update(DetailsChange {
            title: Some("New".into()),
            description: Some("More".into()),
            category: Some("Meetup".into()),
            starts_at: Some(starts() + hours(1)),
            ends_at: Some(ends() + hours(1)),
            timezone: Some("UTC".into()),
            max_per_order: Some(2),
        }))
        .then_state();
    assert_eq!(state.title, "New");
    assert_eq!(state.description, "More");
    assert_eq!(state.category, "Meetup");
    assert_eq!(state.starts_at, Some(starts() + hours(1)));
    assert_eq!(state.ends_at, Some(ends() + hours(1)));
    assert_eq!(state.timezone, "UTC");
    assert_eq!(state.max_per_order, 2);
}

#[test]
fn updating_the_details_of_a_published_event_is_accepted() {
    given(on_sale())
        .when(update(DetailsChange {
            title: Some("New".into()),
            ..DetailsChange::default()
        }))
        .then([EventFact::EventDetailsUpdated(DetailsChange {
            title: Some("New".into()),
            ..DetailsChange::default()
        })]);
}

#[test]
fn updating_the_details_of_a_cancelled_event_is_refused() {
    given([drafted(), cancelled()])
        .when(update(DetailsChange {
            title: Some("New".into()),
            ..DetailsChange::default()
        }))
        .then_err_matches(is_invalid_state);
}

#[test]
fn updating_details_with_invalid_texts_is_refused() {
    let cases: [(DetailsChange, &str); 6] = [
        (
            DetailsChange {
                title: Some("  ".into()),
                ..DetailsChange::default()
            },
            "title",
        ),
        (
            DetailsChange {
                title: Some(long(MAX_SHORT_TEXT + 1)),
                ..DetailsChange::default()
            },
            "title",
        ),
        (
            DetailsChange {
                category: Some(String::new()),
                ..DetailsChange::default()
            },
            "category",
        ),
        (
            DetailsChange {
                category: Some(long(MAX_SHORT_TEXT + 1)),
                ..DetailsChange::default()
            },
            "category",
        ),
        (
            DetailsChange {
                description: Some(long(MAX_DESCRIPTION + 1)),
                ..DetailsChange::default()
            },
            "description",
        ),
        (
            DetailsChange {
                timezone: Some(" ".into()),
                ..DetailsChange::default()
            },
            "timezone",
        ),
    ];
    for (change, field) in cases {
        given([drafted()])
            .when(update(change))
            .then_err_matches(is_invalid(field));
    }
}

#[test]
fn updating_the_per_order_maximum_outside_its_limits_is_refused() {
    for bad in [0, MAX_PER_ORDER_LIMIT + 1] {
        given([drafted()])
            .when(update(DetailsChange {
                max_per_order: Some(bad),
                ..DetailsChange::default()
            }))
            .then_err_matches(is_invalid("max_per_order"));
    }
}

#[test]
fn moving_the_start_past_the_current_end_is_refused() {
    given([drafted()])
        .when(update(DetailsChange {
            starts_at: Some(ends()),
            ..DetailsChange::default()
        }))
        .then_err_matches(is_invalid("ends_at"));
}

#[test]
fn moving_the_end_before_the_current_start_is_refused() {
    given([drafted()])
        .when(update(DetailsChange {
            ends_at: Some(starts() - hours(1)),
            ..DetailsChange::default()
        }))
        .then_err_matches(is_invalid("ends_at"));
}

#[test]
fn moving_start_and_end_together_checks_the_new_pair() {
    let later = TimeDelta::days(10);
    given([drafted()])
        .when(update(DetailsChange {
            starts_at: Some(starts() + later),
            ends_at: Some(ends() + later),
            ..DetailsChange::default()
        }))
        .then([EventFact::EventDetailsUpdated(DetailsChange {
            starts_at: Some(starts() + later),
            ends_at: Some(ends() + later),
            ..DetailsChange::default()
        })]);
}

#[test]
fn moving_the_end_into_the_past_is_refused() {
    given([drafted()])
        .at(ends() - hours(1))
        .when(update(DetailsChange {
            ends_at: Some(ends() - hours(2)),
            ..DetailsChange::default()
        }))
        .then_err_matches(is_invalid("ends_at"));
}

#[test]
fn repeating_the_end_of_an_event_that_is_over_is_not_a_change() {
    given([drafted()])
        .at(ends() + hours(1))
        .when(update(DetailsChange {
            ends_at: Some(ends()),
            description: Some("Thanks for coming!".into()),
            ..DetailsChange::default()
        }))
        .then([EventFact::EventDetailsUpdated(DetailsChange {
            description: Some("Thanks for coming!".into()),
            ..DetailsChange::default()
        })]);
}

// ---- adding ticket types ----------------------------------------------------------------------

#[test]
fn adding_a_ticket_type_records_it() {
    given([drafted()])
        .when(add_ticket_type(general(), "General admission", 50))
        .then([general_added(50)]);
}

#[test]
fn adding_a_ticket_type_trims_its_name() {
    given([drafted()])
        .when(add_ticket_type(general(), "  General admission ", 50))
        .then([general_added(50)]);
}

#[test]
fn an_added_ticket_type_starts_with_nothing_confirmed() {
    let state = given([drafted()])
        .when(add_ticket_type(general(), "General admission", 50))
        .then_state();
    let ticket_type = &state.ticket_types[&general()];
    assert_eq!(ticket_type.confirmed, 0);
    assert_eq!(ticket_type.quantity, 50);
    assert_eq!(state.available(general()), 50);
}

#[test]
fn adding_a_ticket_type_to_a_published_event_is_accepted() {
    given(on_sale())
        .when(add_ticket_type(vip(), "VIP", 5))
        .then([ticket_type_added(vip(), "VIP", 5)]);
}

#[test]
fn adding_a_ticket_type_to_a_cancelled_event_is_refused() {
    given([drafted(), cancelled()])
        .when(add_ticket_type(general(), "General admission", 50))
        .then_err_matches(is_invalid_state);
}

#[test]
fn adding_a_ticket_type_with_a_blank_or_overlong_name_is_refused() {
    for bad in ["", "   ", &long(MAX_SHORT_TEXT + 1)] {
        given([drafted()])
            .when(add_ticket_type(general(), bad, 50))
            .then_err_matches(is_invalid("name"));
    }
}

#[test]
fn adding_a_ticket_type_whose_name_differs_only_in_case_is_refused() {
    given([drafted(), general_added(50)])
        .when(add_ticket_type(vip(), " GENERAL Admission", 5))
        .then_err(EventError::DuplicateTicketType);
}

#[test]
fn adding_a_ticket_type_with_an_id_already_used_is_refused() {
    given([drafted(), general_added(50)])
        .when(add_ticket_type(general(), "Another name", 5))
        .then_err(EventError::DuplicateTicketType);
}

#[test]
fn adding_a_ticket_type_with_an_invalid_price_is_refused() {
    let bad_prices = [
        euros(-1),
        Money {
            amount_minor: 100,
            currency: "eur".into(),
        },
        Money {
            amount_minor: 100,
            currency: "EURO".into(),
        },
        Money {
            amount_minor: 100,
            currency: String::new(),
        },
    ];
    for price in bad_prices {
        given([drafted()])
            .when(EventCommand::AddTicketType {
                ticket_type_id: general(),
                name: "General".into(),
                price,
                quantity: 5,
                sales_start: None,
                sales_end: None,
            })
            .then_err_matches(is_invalid("price"));
    }
}

#[test]
fn adding_a_paid_ticket_type_is_accepted() {
    given([drafted()])
        .when(EventCommand::AddTicketType {
            ticket_type_id: vip(),
            name: "VIP".into(),
            price: euros(9_900),
            quantity: 10,
            sales_start: None,
            sales_end: None,
        })
        .then([paid_vip_added()]);
}

#[test]
fn adding_a_ticket_type_without_seats_is_refused() {
    given([drafted()])
        .when(add_ticket_type(general(), "General", 0))
        .then_err_matches(is_invalid("quantity"));
}

#[test]
fn adding_a_ticket_type_whose_sales_close_before_they_open_is_refused() {
    for end in [now(), now() - hours(1)] {
        given([drafted()])
            .when(EventCommand::AddTicketType {
                ticket_type_id: general(),
                name: "General".into(),
                price: euros(0),
                quantity: 5,
                sales_start: Some(now()),
                sales_end: Some(end),
            })
            .then_err_matches(is_invalid("sales_end"));
    }
}

#[test]
fn adding_a_ticket_type_with_only_one_end_of_its_sales_window_is_accepted() {
    for (start, end) in [(Some(now()), None), (None, Some(now()))] {
        given([drafted()])
            .when(EventCommand::AddTicketType {
                ticket_type_id: general(),
                name: "General admission".into(),
                price: euros(0),
                quantity: 50,
                sales_start: start,
                sales_end: end,
            })
            .then([sales_window_added(start, end)]);
    }
}

#[test]
fn adding_one_ticket_type_more_than_the_maximum_is_refused() {
    let mut history = vec![drafted()];
    history.extend((0..MAX_TICKET_TYPES as u128).map(|n| {
        ticket_type_added(
            TicketTypeId(Uuid::from_u128(0x5000 + n)),
            &format!("Type {n}"),
            1,
        )
    }));
    given(history)
        .when(add_ticket_type(general(), "One too many", 1))
        .then_err_matches(is_invalid("ticket_types"));
}

// ---- publishing -------------------------------------------------------------------------------

#[test]
fn publishing_a_draft_with_a_ticket_type_puts_it_on_sale() {
    given([drafted(), general_added(50)])
        .when(EventCommand::Publish)
        .then([
            EventFact::EventPublished {
                published_at: now(),
            },
            EventFact::ReminderScheduled {
                reminder: Some(ScheduledReminder {
                    offset_seconds: 24 * 3_600,
                    starts_at: starts(),
                    due_at: starts() - hours(24),
                }),
            },
        ]);
}

#[test]
fn a_published_event_is_on_sale() {
    let state = given([drafted(), general_added(50)])
        .when(EventCommand::Publish)
        .then_state();
    assert_eq!(state.status, EventStatus::Published);
}

#[test]
fn publishing_an_event_without_ticket_types_is_refused() {
    given([drafted()])
        .when(EventCommand::Publish)
        .then_err_matches(is_invalid("ticket_types"));
}

#[test]
fn publishing_twice_is_refused() {
    given(on_sale())
        .when(EventCommand::Publish)
        .then_err(EventError::InvalidState {
            status: EventStatus::Published,
            message: "the event is already published",
        });
}

#[test]
fn publishing_a_cancelled_event_is_refused() {
    given([drafted(), general_added(50), cancelled()])
        .when(EventCommand::Publish)
        .then_err(EventError::InvalidState {
            status: EventStatus::Cancelled,
            message: "a cancelled event cannot be published",
        });
}

#[test]
fn publishing_an_event_that_has_ended_is_refused() {
    for at in [ends(), ends() + hours(1)] {
        given([drafted(), general_added(50)])
            .at(at)
            .when(EventCommand::Publish)
            .then_err(EventError::Ended);
    }
}

// ---- cancelling the event ---------------------------------------------------------------------

#[test]
fn cancelling_a_draft_records_the_reason_and_the_time() {
    given([drafted()])
        .when(EventCommand::Cancel {
            reason: Some("  Speaker ill ".into()),
        })
        .then([EventFact::EventCancelled {
            reason: Some("Speaker ill".into()),
            cancelled_at: now(),
        }]);
}

#[test]
fn cancelling_a_published_event_without_a_reason_is_accepted() {
    let state = given(on_sale())
        .when(EventCommand::Cancel { reason: None })
        .then_state();
    assert_eq!(state.status, EventStatus::Cancelled);
}

#[test]
fn a_blank_cancellation_reason_is_recorded_as_none() {
    given([drafted()])
        .when(EventCommand::Cancel {
            reason: Some("   ".into()),
        })
        .then([EventFact::EventCancelled {
            reason: None,
            cancelled_at: now(),
        }]);
}

#[test]
fn a_cancellation_reason_of_the_maximum_length_is_accepted() {
    given([drafted()])
        .when(EventCommand::Cancel {
            reason: Some(long(MAX_CANCEL_REASON)),
        })
        .then([EventFact::EventCancelled {
            reason: Some(long(MAX_CANCEL_REASON)),
            cancelled_at: now(),
        }]);
}

#[test]
fn an_overlong_cancellation_reason_is_refused() {
    given([drafted()])
        .when(EventCommand::Cancel {
            reason: Some(long(MAX_CANCEL_REASON + 1)),
        })
        .then_err_matches(is_invalid("reason"));
}

#[test]
fn cancelling_twice_is_refused() {
    given([drafted(), cancelled()])
        .when(EventCommand::Cancel { reason: None })
        .then_err(EventError::InvalidState {
            status: EventStatus::Cancelled,
            message: "the event is already cancelled",
        });
}

// ---- changing capacity ------------------------------------------------------------------------

#[test]
fn changing_the_capacity_records_it() {
    let state = given([drafted()]).when(change_capacity(250)).then_state();
    assert_eq!(state.capacity, 250);
    given([drafted()])
        .when(change_capacity(250))
        .then([EventFact::EventCapacityChanged { capacity: 250 }]);
}

#[test]
fn changing_the_capacity_of_a_cancelled_event_is_refused() {
    given([drafted(), cancelled()])
        .when(change_capacity(250))
        .then_err_matches(is_invalid_state);
}

#[test]
fn changing_the_capacity_to_zero_is_refused() {
    given([drafted()])
        .when(change_capacity(0))
        .then_err_matches(is_invalid("capacity"));
}

#[test]
fn changing_the_capacity_beyond_the_venues_is_refused() {
    given([drafted()])
        .when(change_capacity(VENUE_SEATS + 1))
        .then_err(EventError::CapacityExceedsVenue {
            capacity: VENUE_SEATS + 1,
            venue_capacity: VENUE_SEATS,
        });
}

#[test]
fn changing_the_capacity_checks_the_venue_as_it_is_now() {
    given([drafted()])
        .when(EventCommand::ChangeCapacity {
            capacity: 90,
            venue: VenueInfo {
                capacity: 80,
                ..venue()
            },
        })
        .then_err(EventError::CapacityExceedsVenue {
            capacity: 90,
            venue_capacity: 80,
        });
}

#[test]
fn changing_the_capacity_with_another_venue_is_refused() {
    given([drafted()])
        .when(EventCommand::ChangeCapacity {
            capacity: 90,
            venue: VenueInfo {
                venue_id: VenueId(Uuid::from_u128(0xB)),
                capacity: VENUE_SEATS,
            },
        })
        .then_err_matches(is_invalid("venue_id"));
}

#[test]
fn changing_the_capacity_below_the_seats_confirmed_is_refused() {
    let mut history = on_sale();
    history.push(confirmed(1, general(), 6));
    history.push(confirmed(2, general(), 4));
    history.push(confirmed(3, general(), 3));
    history.push(registration_cancelled(3, general(), 3));
    given(history)
        .when(change_capacity(9))
        .then_err(EventError::CapacityBelowSold {
            capacity: 9,
            sold: 10,
        });
}

#[test]
fn changing_the_capacity_to_exactly_the_seats_confirmed_is_accepted() {
    let mut history = on_sale();
    history.push(confirmed(1, general(), 10));
    given(history)
        .when(change_capacity(10))
        .then([EventFact::EventCapacityChanged { capacity: 10 }]);
}

#[test]
fn changing_the_capacity_to_what_it_is_records_nothing() {
    given([drafted()])
        .when(change_capacity(CAPACITY))
        .then_nothing();
}

#[test]
fn a_lower_capacity_limits_every_ticket_type() {
    given([
        drafted(),
        general_added(50),
        published(),
        EventFact::EventCapacityChanged { capacity: 3 },
    ])
    .when(reserve(1, general(), 4))
    .then_err(EventError::SoldOut { available: 3 });
}

// ---- reserving: when the event allows it ------------------------------------------------------

#[test]
fn reserving_on_a_draft_is_refused_as_not_on_sale() {
    given([drafted(), general_added(50)])
        .when(reserve(1, general(), 1))
        .then_err(EventError::NotOnSale);
}

#[test]
fn reserving_on_a_cancelled_event_is_refused() {
    for history in [
        vec![drafted(), general_added(50), cancelled()],
        vec![drafted(), general_added(50), published(), cancelled()],
    ] {
        given(history)
            .when(reserve(1, general(), 1))
            .then_err(EventError::Cancelled);
    }
}

#[test]
fn reserving_once_the_event_has_ended_is_refused() {
    for at in [ends(), ends() + hours(1)] {
        given(on_sale())
            .at(at)
            .when(reserve(1, general(), 1))
            .then_err(EventError::Ended);
    }
}

#[test]
fn reserving_while_the_event_is_under_way_is_accepted() {
    given(on_sale())
        .at(ends() - hours(1))
        .when(reserve(1, general(), 1))
        .then_state();
}

#[test]
fn reserving_an_unknown_ticket_type_is_refused() {
    given(on_sale())
        .when(reserve(1, vip(), 1))
        .then_err(EventError::TicketTypeNotFound);
}

#[test]
fn reserving_before_sales_open_is_refused_with_the_opening_time() {
    let opens_at = now() + hours(1);
    given([
        drafted(),
        sales_window_added(Some(opens_at), None),
        published(),
    ])
    .when(reserve(1, general(), 1))
    .then_err(EventError::SalesNotOpen { opens_at });
}

#[test]
fn reserving_the_moment_sales_open_is_accepted() {
    given([
        drafted(),
        sales_window_added(Some(now()), None),
        published(),
    ])
    .when(reserve(1, general(), 1))
    .then([confirmed(1, general(), 1)]);
}

#[test]
fn reserving_the_moment_sales_close_is_refused_with_the_closing_time() {
    let closed_at = now();
    given([
        drafted(),
        sales_window_added(None, Some(closed_at)),
        published(),
    ])
    .when(reserve(1, general(), 1))
    .then_err(EventError::SalesClosed { closed_at });
}

#[test]
fn reserving_just_before_sales_close_is_accepted() {
    given([
        drafted(),
        sales_window_added(None, Some(now() + TimeDelta::seconds(1))),
        published(),
    ])
    .when(reserve(1, general(), 1))
    .then([confirmed(1, general(), 1)]);
}

// ---- reserving: the request -------------------------------------------------------------------

#[test]
fn reserving_no_seats_is_refused() {
    given(on_sale())
        .when(reserve(1, general(), 0))
        .then_err_matches(is_invalid("quantity"));
}

#[test]
fn reserving_more_than_the_per_order_maximum_is_refused() {
    given(on_sale())
        .when(reserve(1, general(), DEFAULT_MAX_PER_ORDER + 1))
        .then_err(EventError::OrderLimitExceeded {
            max: DEFAULT_MAX_PER_ORDER,
        });
}

#[test]
fn reserving_exactly_the_per_order_maximum_is_accepted() {
    given(on_sale())
        .when(reserve(1, general(), DEFAULT_MAX_PER_ORDER))
        .then([confirmed(1, general(), DEFAULT_MAX_PER_ORDER)]);
}

#[test]
fn the_per_order_maximum_follows_detail_updates() {
    let mut history = on_sale();
    history.push(EventFact::EventDetailsUpdated(DetailsChange {
        max_per_order: Some(2),
        ..DetailsChange::default()
    }));
    given(history)
        .when(reserve(1, general(), 3))
        .then_err(EventError::OrderLimitExceeded { max: 2 });
}

#[test]
fn reserving_with_a_registration_id_already_used_is_refused() {
    let mut history = on_sale();
    history.push(confirmed(1, general(), 1));
    given(history.clone())
        .when(reserve(1, general(), 1))
        .then_err(EventError::RegistrationExists);
    history.push(registration_cancelled(1, general(), 1));
    given(history)
        .when(reserve(1, general(), 1))
        .then_err(EventError::RegistrationExists);
}

#[test]
fn reserving_for_an_attendee_with_a_blank_or_overlong_name_is_refused() {
    for bad in ["", "  ", &long(MAX_SHORT_TEXT + 1)] {
        given(on_sale())
            .when(reserve_with(1, 1, |attendee, _| attendee.name = bad.into()))
            .then_err_matches(is_invalid("attendee.name"));
    }
}

#[test]
fn reserving_for_an_address_that_is_not_an_email_is_refused() {
    let too_long = format!("{}@example.org", long(MAX_EMAIL_LEN));
    let bad_emails = [
        "",
        "ada",
        "ada@",
        "@example.org",
        "ada@example",
        "ada@@example.org",
        "ada@exa@mple.org",
        "ada lovelace@example.org",
        "ada@example..org",
        "ada@.example.org",
        "ada@example.org.",
        &too_long,
    ];
    for bad in bad_emails {
        given(on_sale())
            .when(reserve_with(1, 1, |attendee, _| {
                attendee.email = bad.into()
            }))
            .then_err_matches(is_invalid("attendee.email"));
    }
}

#[test]
fn reserving_trims_the_attendees_name_and_email() {
    given(on_sale())
        .when(reserve_with(1, 1, |attendee, _| {
            attendee.name = "  Ada Lovelace ".into();
            attendee.email = " ada@example.org ".into();
        }))
        .then([confirmed(1, general(), 1)]);
}

#[test]
fn reserving_with_a_code_count_other_than_the_seats_is_refused() {
    for count in [0, 1, 3] {
        given(on_sale())
            .when(reserve_with(1, 2, |_, codes| {
                *codes = self::codes(1, count)
            }))
            .then_err_matches(is_invalid("ticket_codes"));
    }
}

#[test]
fn reserving_with_a_malformed_code_is_refused() {
    let bad_codes = [
        "short".to_owned(),
        "x".repeat(TicketCode::MIN_LEN - 1),
        "x".repeat(65),
        format!("{}!", "x".repeat(TicketCode::MIN_LEN)),
        format!("{} ", "x".repeat(TicketCode::MIN_LEN)),
    ];
    for bad in bad_codes {
        given(on_sale())
            .when(reserve_with(1, 2, |_, codes| codes[1] = TicketCode(bad)))
            .then_err_matches(is_invalid("ticket_codes"));
    }
}

#[test]
fn reserving_with_the_same_code_for_two_seats_is_refused() {
    given(on_sale())
        .when(reserve_with(1, 2, |_, codes| codes[1] = codes[0].clone()))
        .then_err_matches(is_invalid("ticket_codes"));
}

#[test]
fn reserving_with_a_code_already_issued_is_refused_even_after_its_registration_was_cancelled() {
    let mut history = on_sale();
    history.push(confirmed(1, general(), 2));
    history.push(registration_cancelled(1, general(), 2));
    given(history)
        .when(reserve_with(2, 2, |_, codes| codes[1] = code(1, 1)))
        .then_err_matches(is_invalid("ticket_codes"));
}

// ---- reserving: seats left --------------------------------------------------------------------

#[test]
fn reserving_more_seats_than_the_ticket_type_has_left_is_refused() {
    given([
        drafted(),
        general_added(5),
        published(),
        confirmed(1, general(), 3),
    ])
    .when(reserve(2, general(), 3))
    .then_err(EventError::SoldOut { available: 2 });
}

#[test]
fn reserving_exactly_the_seats_left_is_accepted() {
    given([
        drafted(),
        general_added(5),
        published(),
        confirmed(1, general(), 3),
    ])
    .when(reserve(2, general(), 2))
    .then([confirmed(2, general(), 2)]);
}

#[test]
fn the_event_capacity_is_shared_by_all_ticket_types() {
    given([
        drafted_with_capacity(5),
        general_added(10),
        ticket_type_added(vip(), "Friends", 10),
        published(),
        confirmed(1, general(), 4),
    ])
    .when(reserve(2, vip(), 2))
    .then_err(EventError::SoldOut { available: 1 });
}

#[test]
fn a_bad_request_on_a_sold_out_event_hears_about_the_request_first() {
    given([
        drafted(),
        general_added(1),
        published(),
        confirmed(1, general(), 1),
    ])
    .when(reserve_with(2, 1, |attendee, _| {
        attendee.email = "nope".into()
    }))
    .then_err_matches(is_invalid("attendee.email"));
}

#[test]
fn confirmed_seats_count_against_their_ticket_type_and_issue_their_codes() {
    let state = given(on_sale()).when(reserve(1, general(), 3)).then_state();
    assert_eq!(state.ticket_types[&general()].confirmed, 3);
    assert_eq!(state.confirmed(), 3);
    assert_eq!(state.available(general()), 47);
    assert_eq!(
        state.tickets.keys().cloned().collect::<Vec<_>>(),
        codes(1, 3)
    );
    let registration = &state.registrations[&reg(1)];
    assert_eq!(registration.status, RegistrationStatus::Confirmed);
    assert_eq!(registration.quantity, 3);
    assert_eq!(registration.ticket_type_id, general());
    assert_eq!(registration.attendee, ada());
    assert_eq!(registration.ticket_codes, codes(1, 3));
}

// ---- cancelling a registration ----------------------------------------------------------------

#[test]
fn cancelling_a_registration_records_its_ticket_type_and_seats() {
    let mut history = on_sale();
    history.push(confirmed(1, general(), 3));
    given(history)
        .when(cancel_registration(1))
        .then([registration_cancelled(1, general(), 3)]);
}

#[test]
fn cancelling_an_unknown_registration_is_refused() {
    given(on_sale())
        .when(cancel_registration(1))
        .then_err(EventError::RegistrationNotFound);
}

#[test]
fn cancelling_a_registration_twice_is_refused() {
    let mut history = on_sale();
    history.push(confirmed(1, general(), 3));
    history.push(registration_cancelled(1, general(), 3));
    given(history)
        .when(cancel_registration(1))
        .then_err(EventError::RegistrationAlreadyCancelled);
}

#[test]
fn cancelling_a_registration_of_a_cancelled_event_is_accepted() {
    let mut history = on_sale();
    history.push(confirmed(1, general(), 3));
    history.push(cancelled());
    given(history)
        .when(cancel_registration(1))
        .then([registration_cancelled(1, general(), 3)]);
}

#[test]
fn seats_freed_by_a_cancellation_can_be_reserved_again() {
    given([
        drafted(),
        general_added(2),
        published(),
        confirmed(1, general(), 2),
        registration_cancelled(1, general(), 2),
    ])
    .when(reserve(2, general(), 2))
    .then([confirmed(2, general(), 2)]);
}

// ---- evolve never trusts what cannot apply ----------------------------------------------------

fn folded(history: impl IntoIterator<Item = EventFact>) -> Event {
    history
        .into_iter()
        .fold(Event::default(), |s, f| evolve(s, &f))
}

#[test]
fn facts_before_the_draft_are_ignored() {
    let state = folded([general_added(5), published(), confirmed(1, general(), 1)]);
    assert_eq!(state, Event::default());
}

#[test]
fn a_second_draft_is_ignored() {
    let once = folded([drafted()]);
    let twice = folded([drafted(), drafted_with_capacity(7)]);
    assert_eq!(once, twice);
}

#[test]
fn a_registration_for_an_unknown_ticket_type_is_ignored() {
    let before = folded(on_sale());
    let after = evolve(before.clone(), &confirmed(1, vip(), 3));
    assert_eq!(after, before);
}

#[test]
fn a_registration_confirmed_twice_counts_once() {
    let state = folded([
        drafted(),
        general_added(50),
        published(),
        confirmed(1, general(), 3),
        confirmed(1, general(), 3),
    ]);
    assert_eq!(state.confirmed(), 3);
}

#[test]
fn cancelling_an_unknown_registration_changes_nothing() {
    let before = folded(on_sale());
    let after = evolve(before.clone(), &registration_cancelled(9, general(), 3));
    assert_eq!(after, before);
}

#[test]
fn a_registration_cancelled_twice_frees_its_seats_once() {
    let state = folded([
        drafted(),
        general_added(50),
        published(),
        confirmed(1, general(), 3),
        confirmed(2, general(), 2),
        registration_cancelled(1, general(), 3),
        registration_cancelled(1, general(), 3),
    ]);
    assert_eq!(state.confirmed(), 2);
}

#[test]
fn a_cancellation_frees_the_seats_its_registration_held() {
    // The fact's own copy of the quantity disagrees; the registration is the authority.
    let state = folded([
        drafted(),
        general_added(50),
        published(),
        confirmed(1, general(), 3),
        registration_cancelled(1, vip(), 1),
    ]);
    assert_eq!(state.confirmed(), 0);
}

#[test]
fn publication_after_cancellation_does_not_revive_the_event() {
    let state = folded([drafted(), cancelled(), published()]);
    assert_eq!(state.status, EventStatus::Cancelled);
}

#[test]
fn enormous_quantities_saturate_instead_of_overflowing() {
    let huge = |n: u128, ticket_type_id| EventFact::RegistrationConfirmed {
        registration_id: reg(n),
        ticket_type_id,
        attendee: ada(),
        quantity: u32::MAX,
        ticket_codes: vec![],
        confirmed_at: now(),
    };
    let state = folded([
        drafted(),
        general_added(1),
        ticket_type_added(vip(), "VIP", 1),
        huge(1, general()),
        huge(2, general()),
        huge(3, vip()),
    ]);
    assert_eq!(state.confirmed(), u32::MAX);
    assert_eq!(state.available(general()), 0);
}

// ---- holders ----------------------------------------------------------------------------------

fn holder() -> crate::UserId {
    crate::UserId(Uuid::from_u128(0xB0B))
}

#[test]
fn a_registrations_holder_is_recorded_once_and_never_changes() {
    let mut history = on_sale();
    history.push(confirmed(1, general(), 1));
    let record = |holder| EventCommand::RecordRegistrationHolder {
        registration_id: reg(1),
        holder,
    };
    let recorded = given(history.clone()).when(record(holder())).then_facts();
    assert_eq!(
        recorded,
        [EventFact::RegistrationHolderRecorded {
            registration_id: reg(1),
            holder: holder(),
        }]
    );
    history.extend(recorded);
    given(history.clone()).when(record(holder())).then_nothing();
    given(history.clone())
        .when(record(crate::UserId(Uuid::from_u128(0xE7E))))
        .then_err_matches(is_invalid("holder"));
    let state = given(history).state::<EventCommand>();
    assert_eq!(state.registrations[&reg(1)].holder, Some(holder()));
    given(on_sale())
        .when(EventCommand::RecordRegistrationHolder {
            registration_id: reg(9),
            holder: holder(),
        })
        .then_err(EventError::RegistrationNotFound);
}
