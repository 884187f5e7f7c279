//! Rules of the venue aggregate, one sentence per test.

use uuid::Uuid;

use super::*;
use crate::testing::{given, now};

fn venue_id() -> VenueId {
    VenueId(Uuid::from_u128(0xA))
}

fn create() -> VenueCommand {
    VenueCommand::CreateVenue {
        venue_id: venue_id(),
        name: "Kulturbrauerei".into(),
        city: "Berlin".into(),
        address: Some("Schönhauser Allee 36".into()),
        capacity: 500,
        timezone: "Europe/Berlin".into(),
    }
}

/// `create()` with one field changed.
fn create_with(change: impl FnOnce(&mut VenueCommand)) -> VenueCommand {
    let mut command = create();
    change(&mut command);
    command
}

fn created() -> VenueFact {
    VenueFact::VenueCreated {
        venue_id: venue_id(),
        name: "Kulturbrauerei".into(),
        city: "Berlin".into(),
        address: Some("Schönhauser Allee 36".into()),
        capacity: 500,
        timezone: "Europe/Berlin".into(),
        created_at: now(),
    }
}

fn rename(name: &str) -> VenueCommand {
    VenueCommand::RenameVenue { name: name.into() }
}

fn change_capacity(capacity: u32) -> VenueCommand {
    VenueCommand::ChangeVenueCapacity { capacity }
}

fn is_invalid(field: &'static str) -> impl FnOnce(&VenueError) -> bool {
    move |error| matches!(error, VenueError::Invalid { field: f, .. } if *f == field)
}

/// Sets one text field of a `CreateVenue`.
type SetText = fn(&mut VenueCommand, &str);

fn long(n: usize) -> String {
    "x".repeat(n)
}

#[test]
fn creating_a_venue_records_it_at_now() {
    given([]).when(create()).then([created()]);
}

#[test]
fn creating_a_venue_trims_its_texts() {
    given([])
        .when(create_with(|c| {
            if let VenueCommand::CreateVenue {
                name,
                city,
                address,
                timezone,
                ..
            } = c
            {
                *name = "  Kulturbrauerei ".into();
                *city = "\tBerlin".into();
                *address = Some("Schönhauser Allee 36  ".into());
                *timezone = " Europe/Berlin ".into();
            }
        }))
        .then([created()]);
}

#[test]
fn a_created_venue_exists_with_its_details() {
    let state = given([]).when(create()).then_state();
    assert!(state.exists());
    assert_eq!(
        state,
        Venue {
            id: Some(venue_id()),
            name: "Kulturbrauerei".into(),
            city: "Berlin".into(),
            address: Some("Schönhauser Allee 36".into()),
            capacity: 500,
            timezone: "Europe/Berlin".into(),
            bookings: Default::default(),
        }
    );
}

#[test]
fn creating_a_venue_without_an_address_is_accepted() {
    let state = given([])
        .when(create_with(|c| {
            if let VenueCommand::CreateVenue { address, .. } = c {
                *address = None;
            }
        }))
        .then_state();
    assert_eq!(state.address, None);
}

#[test]
fn creating_a_venue_that_exists_is_refused() {
    given([created()])
        .when(create())
        .then_err(VenueError::AlreadyExists);
}

#[test]
fn creating_a_venue_with_a_blank_or_overlong_text_is_refused() {
    for bad in ["", "   ", &long(MAX_TEXT_LEN + 1)] {
        let cases: [(&str, SetText); 4] = [
            ("name", |c, v| {
                if let VenueCommand::CreateVenue { name, .. } = c {
                    *name = v.into();
                }
            }),
            ("city", |c, v| {
                if let VenueCommand::CreateVenue { city, .. } = c {
                    *city = v.into();
                }
            }),
            ("address", |c, v| {
                if let VenueCommand::CreateVenue { address, .. } = c {
                    *address = Some(v.into());
                }
            }),
            ("timezone", |c, v| {
                if let VenueCommand::CreateVenue { timezone, .. } = c {
                    *timezone = v.into();
                }
            }),
        ];
        for (field, set) in cases {
            given([])
                .when(create_with(|c| set(c, bad)))
                .then_err_matches(is_invalid(field));
        }
    }
}

#[test]
fn a_name_of_the_maximum_length_counts_characters_after_trimming() {
    let name = "ü".repeat(MAX_TEXT_LEN);
    let state = given([])
        .when(create_with(|c| {
            if let VenueCommand::CreateVenue { name: n, .. } = c {
                *n = format!(" {name} ");
            }
        }))
        .then_state();
    assert_eq!(state.name, name);
}

#[test]
fn creating_a_venue_without_seats_is_refused() {
    given([])
        .when(create_with(|c| {
            if let VenueCommand::CreateVenue { capacity, .. } = c {
                *capacity = 0;
            }
        }))
        .then_err_matches(is_invalid("capacity"));
}

#[test]
fn renaming_a_venue_records_the_trimmed_name() {
    given([created()])
        .when(rename("  Kesselhaus "))
        .then([VenueFact::VenueRenamed {
            name: "Kesselhaus".into(),
        }]);
}

#[test]
fn a_renamed_venue_carries_its_new_name() {
    let state = given([created()]).when(rename("Kesselhaus")).then_state();
    assert_eq!(state.name, "Kesselhaus");
}

#[test]
fn renaming_a_venue_to_its_current_name_records_nothing() {
    given([created()])
        .when(rename(" Kulturbrauerei "))
        .then_nothing();
}

#[test]
fn renaming_a_venue_to_a_blank_or_overlong_name_is_refused() {
    for bad in ["", "  ", &long(MAX_TEXT_LEN + 1)] {
        given([created()])
            .when(rename(bad))
            .then_err_matches(is_invalid("name"));
    }
}

#[test]
fn renaming_a_venue_that_does_not_exist_is_refused() {
    given([])
        .when(rename("Kesselhaus"))
        .then_err(VenueError::NotFound);
}

#[test]
fn changing_a_venues_capacity_records_it() {
    given([created()])
        .when(change_capacity(800))
        .then([VenueFact::VenueCapacityChanged { capacity: 800 }]);
    let state = given([created()]).when(change_capacity(800)).then_state();
    assert_eq!(state.capacity, 800);
}

#[test]
fn changing_a_venues_capacity_to_what_it_is_records_nothing() {
    given([created()]).when(change_capacity(500)).then_nothing();
}

#[test]
fn changing_a_venues_capacity_to_zero_is_refused() {
    given([created()])
        .when(change_capacity(0))
        .then_err_matches(is_invalid("capacity"));
}

#[test]
fn changing_the_capacity_of_a_venue_that_does_not_exist_is_refused() {
    given([])
        .when(change_capacity(800))
        .then_err(VenueError::NotFound);
}

// ---- the calendar -----------------------------------------------------------------------------

fn event(n: u128) -> EventId {
    EventId(Uuid::from_u128(0xE00 + n))
}

/// Hour `h` of the day after [`now`].
fn hour(h: i64) -> Timestamp {
    now() + chrono::TimeDelta::days(1) + chrono::TimeDelta::hours(h)
}

fn book(n: u128, from: i64, to: i64) -> VenueCommand {
    VenueCommand::BookEvent {
        event_id: event(n),
        starts_at: hour(from),
        ends_at: hour(to),
    }
}

fn booked(n: u128, from: i64, to: i64) -> VenueFact {
    VenueFact::EventBooked {
        event_id: event(n),
        starts_at: hour(from),
        ends_at: hour(to),
    }
}

fn release(n: u128) -> VenueCommand {
    VenueCommand::ReleaseEvent { event_id: event(n) }
}

fn released(n: u128) -> VenueFact {
    VenueFact::EventReleased { event_id: event(n) }
}

/// The conflict with event 1 booked from 10:00 to 14:00.
fn conflict_with_event_1() -> VenueError {
    VenueError::ScheduleConflict {
        event_id: event(1),
        starts_at: hour(10),
        ends_at: hour(14),
    }
}

#[test]
fn booking_an_event_records_its_slot() {
    given([created()])
        .when(book(1, 10, 14))
        .then([booked(1, 10, 14)]);
}

#[test]
fn a_booked_slot_shows_in_the_calendar() {
    let state = given([created()]).when(book(1, 10, 14)).then_state();
    assert_eq!(
        state.bookings.get(&event(1)),
        Some(&Booking {
            starts_at: hour(10),
            ends_at: hour(14),
        })
    );
}

#[test]
fn a_slot_overlapping_another_events_is_refused_naming_that_event() {
    // Inside, around, across the start, across the end, and the very same slot.
    for (from, to) in [(11, 12), (9, 15), (8, 11), (13, 16), (10, 14)] {
        given([created(), booked(1, 10, 14)])
            .when(book(2, from, to))
            .then_err(conflict_with_event_1());
    }
}

#[test]
fn a_slot_that_starts_when_another_ends_or_ends_when_it_starts_is_accepted() {
    given([created(), booked(1, 10, 14)])
        .when(book(2, 14, 18))
        .then([booked(2, 14, 18)]);
    given([created(), booked(1, 10, 14)])
        .when(book(2, 6, 10))
        .then([booked(2, 6, 10)]);
}

#[test]
fn an_event_may_move_within_its_own_slot() {
    given([created(), booked(1, 10, 14)])
        .when(book(1, 12, 16))
        .then([booked(1, 12, 16)]);
}

#[test]
fn a_moved_booking_replaces_the_old_slot() {
    let state = given([created(), booked(1, 10, 14)])
        .when(book(1, 18, 20))
        .then_state();
    assert_eq!(state.bookings.len(), 1);
    assert_eq!(state.bookings[&event(1)].starts_at, hour(18));
    given([created(), booked(1, 10, 14), booked(1, 18, 20)])
        .when(book(2, 10, 14))
        .then([booked(2, 10, 14)]);
}

#[test]
fn moving_an_event_onto_another_events_slot_is_refused() {
    given([created(), booked(1, 10, 14), booked(2, 14, 18)])
        .when(book(2, 13, 18))
        .then_err(conflict_with_event_1());
}

#[test]
fn booking_the_slot_an_event_already_has_records_nothing() {
    given([created(), booked(1, 10, 14)])
        .when(book(1, 10, 14))
        .then_nothing();
}

#[test]
fn a_slot_that_ends_before_it_starts_is_refused() {
    for (from, to) in [(14, 14), (14, 10)] {
        given([created()])
            .when(book(1, from, to))
            .then_err_matches(is_invalid("ends_at"));
    }
}

#[test]
fn releasing_an_event_frees_its_slot_for_another() {
    given([created(), booked(1, 10, 14)])
        .when(release(1))
        .then([released(1)]);
    let state = given([created(), booked(1, 10, 14)])
        .when(release(1))
        .then_state();
    assert!(state.bookings.is_empty());
    given([created(), booked(1, 10, 14), released(1)])
        .when(book(2, 10, 14))
        .then([booked(2, 10, 14)]);
}

#[test]
fn releasing_an_event_without_a_booking_records_nothing() {
    given([created()]).when(release(1)).then_nothing();
    given([created(), booked(1, 10, 14), released(1)])
        .when(release(1))
        .then_nothing();
}

#[test]
fn booking_or_releasing_at_a_venue_that_does_not_exist_is_refused() {
    given([])
        .when(book(1, 10, 14))
        .then_err(VenueError::NotFound);
    given([]).when(release(1)).then_err(VenueError::NotFound);
}
