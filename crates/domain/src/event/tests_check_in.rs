//! Rules of door scans: one entry per ticket, nonces, offline scans and reverts, one sentence
//! per test.

use super::check_in::describe;
use super::tests_vocabulary::*;
// The vocabulary's words win over the event module's private functions of the same name.
use super::tests_vocabulary::on_sale;
use super::*;
use crate::testing::{given, now};

fn scan(ticket_code: TicketCode, nonce: &str) -> EventCommand {
    EventCommand::CheckIn {
        ticket_code,
        nonce: nonce.into(),
        scanned_at: None,
    }
}

fn offline_scan(ticket_code: TicketCode, nonce: &str, scanned_at: Timestamp) -> EventCommand {
    EventCommand::CheckIn {
        ticket_code,
        nonce: nonce.into(),
        scanned_at: Some(scanned_at),
    }
}

fn checked_in(
    n: u128,
    seat: u32,
    ticket_type_id: TicketTypeId,
    nonce: &str,
    scanned_at: Timestamp,
) -> EventFact {
    EventFact::TicketCheckedIn {
        ticket_code: code(n, seat),
        registration_id: reg(n),
        ticket_type_id,
        nonce: nonce.into(),
        scanned_at,
        recorded_at: now(),
    }
}

fn revert(ticket_code: TicketCode) -> EventCommand {
    EventCommand::RevertCheckIn { ticket_code }
}

fn reverted(n: u128, seat: u32) -> EventFact {
    EventFact::CheckInReverted {
        ticket_code: code(n, seat),
        registration_id: reg(n),
        reverted_at: now(),
    }
}

/// Ada has 2 free seats; Bob paid for 1 VIP seat; Cy holds 1 unpaid; Dee's hold expired; Eve
/// cancelled.
fn door() -> Vec<EventFact> {
    let history = then_also(on_sale(50, 10), [confirmed(1, 2), held_for(2, 1, bob())]);
    let history = then_also(history, paid_for(2, 1, "b"));
    then_also(
        history,
        [
            held_for(3, 1, cy()),
            held_earlier(4, 1, dee()),
            expired_earlier(4, 1),
            confirmed_for(5, 1, person("eve")),
            registration_cancelled(5, free(), 1),
        ],
    )
}

/// [`door`] with Ada's first seat let in ten minutes ago with nonce `n1`.
fn ada_let_in() -> Vec<EventFact> {
    then_also(
        door(),
        [checked_in(1, 0, free(), "n1", now() - minutes(10))],
    )
}

#[test]
fn a_confirmed_free_ticket_is_let_in_at_the_time_of_the_scan() {
    given(door())
        .when(scan(code(1, 0), "n1"))
        .then([checked_in(1, 0, free(), "n1", now())]);
}

#[test]
fn a_paid_ticket_is_let_in() {
    given(door())
        .when(scan(code(2, 0), "n1"))
        .then([checked_in(2, 0, paid(), "n1", now())]);
}

#[test]
fn the_door_learns_the_attendee_and_the_ticket_type_of_a_code() {
    let state = given(door()).state::<EventCommand>();
    let (ticket, registration, ticket_type) =
        describe(&state, &code(2, 0)).expect("Bob's ticket is known");
    assert_eq!(registration.attendee, bob());
    assert_eq!(ticket_type.name, "VIP");
    assert_eq!(ticket.check_in, None);
    assert!(describe(&state, &code(9, 0)).is_none());
}

#[test]
fn a_ticket_let_in_carries_its_scan() {
    let state = given(door()).when(scan(code(1, 0), "n1")).then_state();
    assert_eq!(
        state.tickets[&code(1, 0)].check_in,
        Some(CheckIn {
            scanned_at: now(),
            nonce: "n1".into(),
        })
    );
    assert_eq!(state.tickets[&code(1, 1)].check_in, None);
}

#[test]
fn a_second_scan_of_a_ticket_is_refused_with_the_time_of_the_first() {
    given(ada_let_in())
        .when(scan(code(1, 0), "n2"))
        .then_err(EventError::AlreadyRedeemed {
            first_scanned_at: now() - minutes(10),
        });
}

#[test]
fn the_same_scan_uploaded_again_records_nothing() {
    given(ada_let_in())
        .when(scan(code(1, 0), "n1"))
        .then_nothing();
    given(ada_let_in())
        .at(now() + hours(1))
        .when(offline_scan(code(1, 0), "n1", now() - minutes(10)))
        .then_nothing();
}

#[test]
fn a_nonce_is_compared_without_surrounding_blanks() {
    given(ada_let_in())
        .when(scan(code(1, 0), "  n1 "))
        .then_nothing();
    given(door())
        .when(scan(code(1, 0), " n1\t"))
        .then([checked_in(1, 0, free(), "n1", now())]);
}

#[test]
fn a_nonce_already_used_for_another_ticket_is_refused() {
    given(ada_let_in())
        .when(scan(code(1, 1), "n1"))
        .then_err(EventError::NonceReused);
}

#[test]
fn each_seat_of_a_registration_is_let_in_on_its_own() {
    given(ada_let_in())
        .when(scan(code(1, 1), "n2"))
        .then([checked_in(1, 1, free(), "n2", now())]);
}

#[test]
fn a_blank_or_overlong_nonce_is_refused() {
    for nonce in ["", "   ", &"n".repeat(MAX_NONCE_LEN + 1)] {
        given(door())
            .when(scan(code(1, 0), nonce))
            .then_err_matches(is_invalid("nonce"));
    }
    let longest = "é".repeat(MAX_NONCE_LEN);
    given(door())
        .when(scan(code(1, 0), &longest))
        .then([checked_in(1, 0, free(), &longest, now())]);
}

#[test]
fn an_unknown_code_is_invalid() {
    given(door())
        .when(scan(code(9, 0), "n1"))
        .then_err(EventError::TicketInvalid);
}

#[test]
fn a_ticket_of_a_cancelled_registration_or_an_expired_hold_is_cancelled() {
    for n in [4, 5] {
        given(door())
            .when(scan(code(n, 0), "n1"))
            .then_err(EventError::TicketCancelled);
    }
}

#[test]
fn every_ticket_of_a_cancelled_event_is_cancelled() {
    let cancellation = given(door())
        .when(EventCommand::Cancel { reason: None })
        .then_facts();
    for n in [1, 2, 3] {
        given(then_also(door(), cancellation.clone()))
            .when(scan(code(n, 0), "n1"))
            .then_err(EventError::TicketCancelled);
    }
}

#[test]
fn a_ticket_of_an_unpaid_hold_is_unpaid() {
    given(door())
        .when(scan(code(3, 0), "n1"))
        .then_err(EventError::TicketUnpaid);
}

#[test]
fn a_ticket_paid_late_is_let_in() {
    let history = then_also(
        door(),
        [
            payment_received(4, "d", price_of(1)),
            hold_confirmed(4, 1, "d", true),
        ],
    );
    given(history)
        .when(scan(code(4, 0), "n1"))
        .then([checked_in(4, 0, paid(), "n1", now())]);
}

#[test]
fn an_offline_scan_keeps_the_time_it_was_scanned() {
    let scanned_at = now() - hours(2);
    given(door())
        .when(offline_scan(code(1, 0), "n1", scanned_at))
        .then([checked_in(1, 0, free(), "n1", scanned_at)]);
}

#[test]
fn a_scanner_clock_up_to_five_minutes_ahead_is_accepted() {
    let scanned_at = now() + SCAN_CLOCK_SKEW;
    given(door())
        .when(offline_scan(code(1, 0), "n1", scanned_at))
        .then([checked_in(1, 0, free(), "n1", scanned_at)]);
}

#[test]
fn a_scan_further_in_the_future_is_refused() {
    given(door())
        .when(offline_scan(
            code(1, 0),
            "n1",
            now() + SCAN_CLOCK_SKEW + seconds(1),
        ))
        .then_err_matches(is_invalid("scanned_at"));
}

#[test]
fn reverting_a_check_in_records_it_and_clears_the_scan() {
    given(ada_let_in())
        .when(revert(code(1, 0)))
        .then([reverted(1, 0)]);
    let state = given(ada_let_in()).when(revert(code(1, 0))).then_state();
    assert_eq!(state.tickets[&code(1, 0)].check_in, None);
}

#[test]
fn a_reverted_ticket_can_be_scanned_again() {
    given(then_also(ada_let_in(), [reverted(1, 0)]))
        .when(scan(code(1, 0), "n2"))
        .then([checked_in(1, 0, free(), "n2", now())]);
}

#[test]
fn the_scan_that_was_reverted_uploaded_again_records_nothing() {
    // The nonce names the scan that was undone; replaying it must not undo the revert.
    given(then_also(ada_let_in(), [reverted(1, 0)]))
        .when(scan(code(1, 0), "n1"))
        .then_nothing();
}

#[test]
fn reverting_a_ticket_that_is_not_checked_in_is_refused() {
    given(door())
        .when(revert(code(1, 0)))
        .then_err(EventError::NotCheckedIn);
    given(then_also(ada_let_in(), [reverted(1, 0)]))
        .when(revert(code(1, 0)))
        .then_err(EventError::NotCheckedIn);
}

#[test]
fn reverting_an_unknown_code_is_refused() {
    given(door())
        .when(revert(code(9, 0)))
        .then_err(EventError::TicketInvalid);
}
