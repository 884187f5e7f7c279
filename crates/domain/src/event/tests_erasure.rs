//! What the event aggregate does with attendees whose personal data was erased (they read as
//! [`crate::ERASED`]) and with its per-attendee tally in snapshots, one sentence per test.

use super::tests_vocabulary::*;
// The vocabulary's words win over the event module's private functions of the same name.
use super::tests_vocabulary::{on_sale, reserve};
use super::*;
use crate::testing::given;

/// An attendee whose personal data was erased, as the command side reads them back.
fn erased() -> Attendee {
    Attendee {
        name: crate::ERASED.into(),
        email: crate::ERASED.into(),
    }
}

/// Two erased attendees took the two free seats under a limit of one seat per attendee; a
/// third erased attendee waits, and the seat one of them gave back is offered to it.
fn erased_attendees_hold_seats_and_one_has_an_offer() -> Vec<EventFact> {
    then_also(
        on_sale(2, 10),
        [
            limited_to(1),
            confirmed_for(1, 1, erased()),
            confirmed_for(2, 1, erased()),
            joined(1, free(), 1, erased()),
            registration_cancelled(1, free(), 1),
            offer_made(1, free(), 1),
        ],
    )
}

#[test]
fn an_erased_attendee_claims_an_offer_whatever_other_erased_attendees_hold() {
    given(erased_attendees_hold_seats_and_one_has_an_offer())
        .when(claim(1, 3, 1))
        .then([
            offer_claimed(1, 3, free(), 1),
            confirmed_for(3, 1, erased()),
        ]);
}

#[test]
fn the_limit_still_counts_every_attendee_who_is_not_erased() {
    given(then_also(
        on_sale(4, 10),
        [
            limited_to(1),
            confirmed_for(1, 1, erased()),
            confirmed(2, 1),
        ],
    ))
    .when(reserve(3, free(), 1))
    .then_err(EventError::AttendeeLimitExceeded { max: 1, already: 1 });
}

#[test]
fn a_snapshot_of_the_event_holds_no_tally_keyed_by_e_mail_address() {
    let state = given(then_also(on_sale(4, 10), [confirmed(1, 2)])).state::<EventCommand>();
    assert_eq!(state.seats_of("ada@example.org"), 2);
    let json = serde_json::to_value(&state).expect("serializes");
    assert!(json.get("seats_by_attendee").is_none(), "{json}");
}

#[test]
fn an_event_read_back_from_json_and_recounted_equals_the_folded_one() {
    let state = given(then_also(
        on_sale(4, 10),
        [
            confirmed(1, 2),
            confirmed_for(2, 1, bob()),
            registration_cancelled(2, free(), 1),
            held_for(3, 1, cy()),
        ],
    ))
    .state::<EventCommand>();
    let json = serde_json::to_value(&state).expect("serializes");
    let mut read: Event = serde_json::from_value(json).expect("deserializes");
    assert!(read.seats_by_attendee.is_empty(), "not stored");
    read.recount_seats_by_attendee();
    assert_eq!(read, state);
    assert_eq!(read.seats_of("bob@example.org"), 0);
    assert_eq!(read.seats_of("cy@example.org"), 1);
}
