//! Rules of holds, payments, refunds, cancellations, the event's policy and rescheduling, one
//! sentence per test.

use super::tests_vocabulary::*;
// The vocabulary's words win over the event module's private functions of the same name.
use super::tests_vocabulary::{on_sale, reserve};
use super::*;
use crate::testing::{given, now};

fn state_of(history: Vec<EventFact>) -> Event {
    given(history).state::<EventCommand>()
}

fn record_pending(n: u128, payment: &str) -> EventCommand {
    EventCommand::RecordPaymentPending {
        registration_id: reg(n),
        payment_id: pay_id(payment),
    }
}

fn payment_pending(n: u128, payment: &str) -> EventFact {
    EventFact::PaymentPending {
        registration_id: reg(n),
        payment_id: pay_id(payment),
        reported_at: now(),
    }
}

fn record_declined(n: u128, payment: &str, reason: &str) -> EventCommand {
    EventCommand::RecordPaymentDeclined {
        registration_id: reg(n),
        payment_id: pay_id(payment),
        reason: reason.into(),
    }
}

fn payment_declined(n: u128, payment: &str, reason: &str) -> EventFact {
    EventFact::PaymentDeclined {
        registration_id: reg(n),
        payment_id: pay_id(payment),
        reason: reason.into(),
        declined_at: now(),
    }
}

fn complete_refund(payment: &str) -> EventCommand {
    EventCommand::CompleteRefund {
        payment_id: pay_id(payment),
        refund_id: "re_1".into(),
    }
}

fn refund_completed(n: u128, payment: &str) -> EventFact {
    EventFact::RefundCompleted {
        registration_id: reg(n),
        payment_id: pay_id(payment),
        refund_id: "re_1".into(),
        completed_at: now(),
    }
}

fn deadline_at(deadline: Timestamp) -> EventFact {
    policy_changed(PolicyChange {
        cancellation_deadline: Some(deadline),
        ..PolicyChange::default()
    })
}

fn change_policy(change: PolicyChange) -> EventCommand {
    EventCommand::ChangePolicy(change)
}

fn reschedule(starts_at: Timestamp, ends_at: Timestamp) -> EventCommand {
    EventCommand::Reschedule { starts_at, ends_at }
}

fn status_of(state: &Event, n: u128) -> Option<RegistrationStatus> {
    state.registrations.get(&reg(n)).map(|r| r.status)
}

fn payment_status(state: &Event, payment: &str) -> Option<PaymentStatus> {
    state.payments.get(&pay_id(payment)).map(|p| p.status)
}

// ---- holds ------------------------------------------------------------------------------------

#[test]
fn reserving_paid_seats_holds_them_at_the_unit_price_times_the_quantity_until_the_hold_expires() {
    given(on_sale(50, 10))
        .when(reserve(1, paid(), 3))
        .then([EventFact::SeatsHeld {
            registration_id: reg(1),
            ticket_type_id: paid(),
            attendee: ada(),
            quantity: 3,
            ticket_codes: codes(1, 3),
            price: euros(7_500),
            expires_at: now() + minutes(15),
            held_at: now(),
        }]);
}

#[test]
fn a_hold_lasts_as_long_as_the_events_policy_says() {
    let history = then_also(
        on_sale(50, 10),
        [policy_changed(PolicyChange {
            hold_seconds: Some(120),
            ..PolicyChange::default()
        })],
    );
    given(history).when(reserve(1, paid(), 2)).then([held_at(
        1,
        2,
        ada(),
        now(),
        now() + seconds(120),
    )]);
}

#[test]
fn reserving_free_seats_confirms_them_without_a_hold() {
    given(on_sale(50, 10))
        .when(reserve(1, free(), 2))
        .then([confirmed(1, 2)]);
}

#[test]
fn held_seats_count_against_their_ticket_type_and_the_attendee() {
    let state = given(on_sale(50, 10))
        .when(reserve(1, paid(), 3))
        .then_state();
    let vip = &state.ticket_types[&paid()];
    assert_eq!((vip.held, vip.confirmed, vip.used()), (3, 0, 3));
    assert_eq!(state.held(), 3);
    assert_eq!(state.available(paid()), 7);
    assert_eq!(state.seats_of("ada@example.org"), 3);
    let registration = &state.registrations[&reg(1)];
    assert_eq!(registration.status, RegistrationStatus::Held);
    assert_eq!(registration.price, Some(price_of(3)));
    assert_eq!(registration.hold_expires_at, Some(hold_expiry()));
    assert_eq!(registration.payment_id, None);
}

#[test]
fn held_seats_count_against_the_event_capacity() {
    let history = then_also(on_sale_with_capacity(5, 50, 10), [held(1, 3)]);
    given(history)
        .when(reserve_for(2, free(), 3, bob()))
        .then_err(EventError::SoldOut { available: 2 });
}

#[test]
fn a_ticket_type_whose_seats_are_all_held_is_sold_out() {
    let history = then_also(on_sale(50, 4), [held(1, 4)]);
    given(history)
        .when(reserve_for(2, paid(), 1, bob()))
        .then_err(EventError::SoldOut { available: 0 });
}

#[test]
fn confirmed_and_held_seats_together_sell_a_ticket_type_out() {
    let history = then_also(on_sale(50, 4), [held(1, 2)]);
    let history = then_also(history, paid_for(1, 2, "a"));
    let history = then_also(history, [held_for(2, 2, bob())]);
    given(history)
        .when(reserve_for(3, paid(), 1, cy()))
        .then_err(EventError::SoldOut { available: 0 });
}

#[test]
fn reserving_the_seats_left_beside_a_hold_is_accepted() {
    let history = then_also(on_sale(50, 4), [held(1, 3)]);
    given(history)
        .when(reserve_for(2, paid(), 1, bob()))
        .then([held_for(2, 1, bob())]);
}

// ---- the per-attendee limit -------------------------------------------------------------------

#[test]
fn reserving_beyond_the_per_attendee_limit_counts_held_and_confirmed_seats() {
    let history = then_also(
        on_sale(50, 10),
        [limited_to(4), held(1, 2), confirmed(2, 2)],
    );
    given(history)
        .when(reserve(3, free(), 1))
        .then_err(EventError::AttendeeLimitExceeded { max: 4, already: 4 });
}

#[test]
fn reserving_up_to_the_per_attendee_limit_is_accepted() {
    let history = then_also(on_sale(50, 10), [limited_to(4), held(1, 2)]);
    given(history)
        .when(reserve(2, free(), 2))
        .then([confirmed(2, 2)]);
}

#[test]
fn paid_seats_still_count_against_the_per_attendee_limit() {
    let history = then_also(on_sale(50, 10), [limited_to(3), held(1, 2)]);
    let history = then_also(history, paid_for(1, 2, "a"));
    given(history)
        .when(reserve(2, free(), 2))
        .then_err(EventError::AttendeeLimitExceeded { max: 3, already: 2 });
}

#[test]
fn the_per_attendee_limit_ignores_the_case_of_the_email_address() {
    let shouting = Attendee {
        name: "Ada".into(),
        email: "ADA@Example.ORG".into(),
    };
    let history = then_also(on_sale(50, 10), [limited_to(2), held(1, 2)]);
    given(history)
        .when(reserve_for(2, free(), 1, shouting.clone()))
        .then_err(EventError::AttendeeLimitExceeded { max: 2, already: 2 });
    let history = then_also(on_sale(50, 10), [limited_to(2), held_for(1, 2, shouting)]);
    given(history)
        .when(reserve(2, free(), 1))
        .then_err(EventError::AttendeeLimitExceeded { max: 2, already: 2 });
}

#[test]
fn the_per_attendee_limit_counts_each_attendee_apart() {
    let history = then_also(on_sale(50, 10), [limited_to(2), held(1, 2)]);
    given(history)
        .when(reserve_for(2, free(), 2, bob()))
        .then([confirmed_for(2, 2, bob())]);
}

#[test]
fn a_cancelled_registration_no_longer_counts_against_the_per_attendee_limit() {
    let history = then_also(
        on_sale(50, 10),
        [
            limited_to(2),
            held(1, 2),
            registration_cancelled(1, paid(), 2),
        ],
    );
    given(history)
        .when(reserve(2, free(), 2))
        .then([confirmed(2, 2)]);
}

#[test]
fn an_expired_hold_no_longer_counts_against_the_per_attendee_limit() {
    let history = then_also(
        on_sale(50, 10),
        [
            limited_to(2),
            held_earlier(1, 2, ada()),
            expired_earlier(1, 2),
        ],
    );
    given(history)
        .when(reserve(2, free(), 2))
        .then([confirmed(2, 2)]);
}

#[test]
fn removing_the_per_attendee_limit_lets_an_attendee_reserve_again() {
    let history = then_also(on_sale(50, 10), [limited_to(2), held(1, 2), limited_to(0)]);
    given(history)
        .when(reserve(2, free(), 2))
        .then([confirmed(2, 2)]);
}

// ---- what can be paid -------------------------------------------------------------------------

#[test]
fn a_hold_is_payable_at_its_price_until_it_expires() {
    let state = state_of(then_also(on_sale(50, 10), [held(1, 3)]));
    assert_eq!(payable(&state, reg(1), now()), Ok(price_of(3)));
    assert_eq!(
        payable(&state, reg(1), hold_expiry() - seconds(1)),
        Ok(price_of(3))
    );
}

#[test]
fn a_hold_past_its_expiry_time_is_not_payable_even_before_it_is_expired() {
    let state = state_of(then_also(on_sale(50, 10), [held(1, 3)]));
    assert_eq!(
        payable(&state, reg(1), hold_expiry()),
        Err(EventError::HoldExpired {
            expired_at: Some(hold_expiry())
        })
    );
}

#[test]
fn an_expired_hold_is_not_payable() {
    let state = state_of(then_also(
        on_sale(50, 10),
        [held_earlier(1, 3, ada()), expired_earlier(1, 3)],
    ));
    assert_eq!(
        payable(&state, reg(1), now()),
        Err(EventError::HoldExpired {
            expired_at: Some(now() - minutes(45))
        })
    );
}

#[test]
fn a_paid_registration_is_not_payable_again() {
    let history = then_also(on_sale(50, 10), [held(1, 3)]);
    let state = state_of(then_also(history, paid_for(1, 3, "a")));
    assert_eq!(
        payable(&state, reg(1), now()),
        Err(EventError::NotPayable {
            status: RegistrationStatus::Confirmed
        })
    );
}

#[test]
fn a_free_registration_is_not_payable() {
    let state = state_of(then_also(on_sale(50, 10), [confirmed(1, 2)]));
    assert_eq!(
        payable(&state, reg(1), now()),
        Err(EventError::NotPayable {
            status: RegistrationStatus::Confirmed
        })
    );
}

#[test]
fn a_cancelled_hold_is_not_payable() {
    let state = state_of(then_also(
        on_sale(50, 10),
        [held(1, 3), registration_cancelled(1, paid(), 3)],
    ));
    assert_eq!(
        payable(&state, reg(1), now()),
        Err(EventError::NotPayable {
            status: RegistrationStatus::Cancelled
        })
    );
}

#[test]
fn an_unknown_registration_is_not_payable() {
    let state = state_of(on_sale(50, 10));
    assert_eq!(
        payable(&state, reg(1), now()),
        Err(EventError::RegistrationNotFound)
    );
}

// ---- payments ---------------------------------------------------------------------------------

#[test]
fn paying_a_hold_in_full_receives_the_money_and_confirms_the_hold() {
    given(then_also(on_sale(50, 10), [held(1, 3)]))
        .when(pay(1, "a", price_of(3)))
        .then([
            payment_received(1, "a", price_of(3)),
            hold_confirmed(1, 3, "a", false),
        ]);
}

#[test]
fn a_paid_hold_becomes_a_confirmed_registration_with_its_payment() {
    let state = given(then_also(on_sale(50, 10), [held(1, 3)]))
        .when(pay(1, "a", price_of(3)))
        .then_state();
    let vip = &state.ticket_types[&paid()];
    assert_eq!((vip.confirmed, vip.held), (3, 0));
    assert_eq!(status_of(&state, 1), Some(RegistrationStatus::Confirmed));
    assert_eq!(state.registrations[&reg(1)].payment_id, Some(pay_id("a")));
    assert_eq!(payment_status(&state, "a"), Some(PaymentStatus::Received));
    assert_eq!(state.payments[&pay_id("a")].registration_id, reg(1));
    assert_eq!(state.seats_of("ada@example.org"), 3);
}

#[test]
fn a_payment_after_the_hold_time_but_before_the_hold_is_expired_still_confirms_it() {
    let late = hold_expiry() + minutes(5);
    given(then_also(on_sale(50, 10), [held(1, 3)]))
        .at(late)
        .when(pay(1, "a", price_of(3)))
        .then([
            payment_received_at(1, "a", price_of(3), late),
            hold_confirmed_at(1, 3, "a", false, late),
        ]);
}

#[test]
fn the_same_payment_reported_again_records_nothing() {
    let history = then_also(on_sale(50, 10), [held(1, 3)]);
    given(then_also(history, paid_for(1, 3, "a")))
        .when(pay(1, "a", price_of(3)))
        .then_nothing();
}

#[test]
fn a_refunded_payment_reported_again_records_nothing() {
    let history = then_also(
        on_sale(50, 10),
        [
            held(1, 3),
            payment_received(1, "a", euros(1)),
            refund_due(1, "a", euros(1), RefundReason::AmountMismatch),
        ],
    );
    given(history.clone())
        .when(pay(1, "a", euros(1)))
        .then_nothing();
    given(then_also(history, [refund_completed(1, "a")]))
        .when(pay(1, "a", euros(1)))
        .then_nothing();
}

#[test]
fn a_payment_already_reported_for_another_registration_is_refused() {
    let history = then_also(on_sale(50, 10), [held(1, 3), held_for(2, 1, bob())]);
    let history = then_also(history, paid_for(1, 3, "a"));
    given(history.clone())
        .when(pay(2, "a", price_of(1)))
        .then_err(EventError::PaymentOfOtherRegistration(pay_id("a")));
    given(history.clone())
        .when(record_pending(2, "a"))
        .then_err(EventError::PaymentOfOtherRegistration(pay_id("a")));
    given(history)
        .when(record_declined(2, "a", "no"))
        .then_err(EventError::PaymentOfOtherRegistration(pay_id("a")));
}

#[test]
fn a_payment_of_the_wrong_amount_is_received_refunded_and_leaves_the_hold_as_it_was() {
    let history = then_also(on_sale(50, 10), [held(1, 3)]);
    given(history.clone()).when(pay(1, "a", euros(100))).then([
        payment_received(1, "a", euros(100)),
        refund_due(1, "a", euros(100), RefundReason::AmountMismatch),
    ]);
    let state = given(history).when(pay(1, "a", euros(100))).then_state();
    assert_eq!(status_of(&state, 1), Some(RegistrationStatus::Held));
    assert_eq!(state.ticket_types[&paid()].held, 3);
    assert_eq!(payment_status(&state, "a"), Some(PaymentStatus::RefundDue));
}

#[test]
fn a_payment_in_another_currency_is_refunded_as_a_mismatch() {
    let dollars = Money {
        amount_minor: 7_500,
        currency: "USD".into(),
    };
    given(then_also(on_sale(50, 10), [held(1, 3)]))
        .when(pay(1, "a", dollars.clone()))
        .then([
            payment_received(1, "a", dollars.clone()),
            refund_due(1, "a", dollars, RefundReason::AmountMismatch),
        ]);
}

#[test]
fn a_payment_for_a_free_registration_is_refunded_as_a_mismatch() {
    given(then_also(on_sale(50, 10), [confirmed(1, 2)]))
        .when(pay(1, "a", euros(0)))
        .then([
            payment_received(1, "a", euros(0)),
            refund_due(1, "a", euros(0), RefundReason::AmountMismatch),
        ]);
}

#[test]
fn a_payment_for_an_unknown_registration_is_refused() {
    given(on_sale(50, 10))
        .when(pay(1, "a", price_of(1)))
        .then_err(EventError::RegistrationNotFound);
}

#[test]
fn a_payment_after_the_hold_expired_confirms_it_late_when_its_seats_are_still_free() {
    let history = then_also(
        on_sale(50, 10),
        [held_earlier(1, 3, ada()), expired_earlier(1, 3)],
    );
    given(history).when(pay(1, "a", price_of(3))).then([
        payment_received(1, "a", price_of(3)),
        hold_confirmed(1, 3, "a", true),
    ]);
}

#[test]
fn a_late_confirmation_takes_the_seats_back() {
    let history = then_also(
        on_sale(50, 10),
        [held_earlier(1, 3, ada()), expired_earlier(1, 3)],
    );
    let state = given(history).when(pay(1, "a", price_of(3))).then_state();
    let vip = &state.ticket_types[&paid()];
    assert_eq!((vip.confirmed, vip.held), (3, 0));
    assert_eq!(status_of(&state, 1), Some(RegistrationStatus::Confirmed));
    assert_eq!(state.registrations[&reg(1)].payment_id, Some(pay_id("a")));
    assert_eq!(state.seats_of("ada@example.org"), 3);
}

#[test]
fn a_payment_after_the_hold_expired_is_refunded_when_its_seats_were_sold_again() {
    let history = then_also(
        on_sale(50, 3),
        [
            held_earlier(1, 3, ada()),
            expired_earlier(1, 3),
            held_for(2, 1, bob()),
        ],
    );
    given(history).when(pay(1, "a", price_of(3))).then([
        payment_received(1, "a", price_of(3)),
        refund_due(1, "a", price_of(3), RefundReason::LatePayment),
    ]);
}

#[test]
fn a_payment_after_the_hold_expired_is_refunded_when_the_event_capacity_was_taken() {
    let history = then_also(
        on_sale_with_capacity(3, 50, 10),
        [
            held_earlier(1, 3, ada()),
            expired_earlier(1, 3),
            confirmed_for(2, 1, bob()),
        ],
    );
    given(history).when(pay(1, "a", price_of(3))).then([
        payment_received(1, "a", price_of(3)),
        refund_due(1, "a", price_of(3), RefundReason::LatePayment),
    ]);
}

#[test]
fn a_payment_after_the_hold_expired_is_refunded_when_someone_waits_for_the_seats() {
    // Ada's 2 seats came free, but Bob waits for 3: the line keeps them from Ada all the same.
    let history = then_also(
        on_sale(50, 3),
        [
            held_earlier(1, 2, ada()),
            held_for(2, 1, cy()),
            joined(1, paid(), 3, bob()),
            expired_earlier(1, 2),
        ],
    );
    assert_eq!(state_of(history.clone()).available(paid()), 2);
    given(history).when(pay(1, "a", price_of(2))).then([
        payment_received(1, "a", price_of(2)),
        refund_due(1, "a", price_of(2), RefundReason::LatePayment),
    ]);
}

#[test]
fn a_payment_after_the_hold_expired_is_refunded_when_its_seats_were_offered_to_the_waitlist() {
    let history = then_also(
        on_sale(50, 2),
        [
            held_earlier(1, 2, ada()),
            joined(1, paid(), 2, bob()),
            expired_earlier(1, 2),
            offer_made_at(1, paid(), 2, now() - minutes(45)),
        ],
    );
    given(history).when(pay(1, "a", price_of(2))).then([
        payment_received(1, "a", price_of(2)),
        refund_due(1, "a", price_of(2), RefundReason::LatePayment),
    ]);
}

#[test]
fn a_payment_after_the_hold_expired_is_refunded_once_the_event_has_ended() {
    let after = ends() + hours(1);
    let history = then_also(
        on_sale(50, 10),
        [held_earlier(1, 3, ada()), expired_earlier(1, 3)],
    );
    given(history)
        .at(after)
        .when(pay(1, "a", price_of(3)))
        .then([
            payment_received_at(1, "a", price_of(3), after),
            refund_due_at(1, "a", price_of(3), RefundReason::LatePayment, after),
        ]);
}

#[test]
fn a_payment_after_the_hold_expired_is_refunded_when_the_event_was_cancelled() {
    let history = then_also(
        on_sale(50, 10),
        [
            held_earlier(1, 3, ada()),
            expired_earlier(1, 3),
            event_cancelled(),
        ],
    );
    given(history).when(pay(1, "a", price_of(3))).then([
        payment_received(1, "a", price_of(3)),
        refund_due(1, "a", price_of(3), RefundReason::LatePayment),
    ]);
}

#[test]
fn a_late_payment_is_refunded_rather_than_confirm_seats_beyond_the_per_attendee_limit() {
    // Ada's hold of 3 expired and she took 2 free seats since: confirming the 3 again would
    // give her 5 where the event allows 3.
    let history = then_also(
        on_sale(50, 10),
        [
            limited_to(3),
            held_earlier(1, 3, ada()),
            expired_earlier(1, 3),
            confirmed(2, 2),
        ],
    );
    given(history).when(pay(1, "a", price_of(3))).then([
        payment_received(1, "a", price_of(3)),
        refund_due(1, "a", price_of(3), RefundReason::LatePayment),
    ]);
}

#[test]
fn a_refused_late_payment_leaves_the_registration_expired() {
    let history = then_also(
        on_sale(50, 3),
        [
            held_earlier(1, 3, ada()),
            expired_earlier(1, 3),
            held_for(2, 1, bob()),
        ],
    );
    let state = given(history).when(pay(1, "a", price_of(3))).then_state();
    assert_eq!(status_of(&state, 1), Some(RegistrationStatus::Expired));
    let vip = &state.ticket_types[&paid()];
    assert_eq!((vip.confirmed, vip.held), (0, 1));
    assert_eq!(payment_status(&state, "a"), Some(PaymentStatus::RefundDue));
}

#[test]
fn a_second_payment_for_a_confirmed_registration_is_refunded_as_a_duplicate() {
    let history = then_also(on_sale(50, 10), [held(1, 3)]);
    given(then_also(history, paid_for(1, 3, "a")))
        .when(pay(1, "b", price_of(3)))
        .then([
            payment_received(1, "b", price_of(3)),
            refund_due(1, "b", price_of(3), RefundReason::DuplicatePayment),
        ]);
}

#[test]
fn a_payment_for_a_cancelled_hold_is_refunded() {
    let history = then_also(
        on_sale(50, 10),
        [held(1, 3), registration_cancelled(1, paid(), 3)],
    );
    given(history).when(pay(1, "a", price_of(3))).then([
        payment_received(1, "a", price_of(3)),
        refund_due(1, "a", price_of(3), RefundReason::RegistrationCancelled),
    ]);
}

#[test]
fn a_payment_for_a_registration_of_a_cancelled_event_is_refunded_as_such() {
    let history = then_also(
        on_sale(50, 10),
        [
            held(1, 3),
            event_cancelled(),
            registration_cancelled(1, paid(), 3),
        ],
    );
    given(history).when(pay(1, "a", price_of(3))).then([
        payment_received(1, "a", price_of(3)),
        refund_due(1, "a", price_of(3), RefundReason::EventCancelled),
    ]);
}

// ---- pending and declined payments ------------------------------------------------------------

#[test]
fn a_pending_payment_is_recorded_and_the_hold_stays() {
    let history = then_also(on_sale(50, 10), [held(1, 3)]);
    given(history.clone())
        .when(record_pending(1, "a"))
        .then([payment_pending(1, "a")]);
    let state = given(history).when(record_pending(1, "a")).then_state();
    assert_eq!(payment_status(&state, "a"), Some(PaymentStatus::Pending));
    assert_eq!(status_of(&state, 1), Some(RegistrationStatus::Held));
}

#[test]
fn a_pending_payment_reported_again_or_after_its_outcome_records_nothing() {
    let history = then_also(on_sale(50, 10), [held(1, 3), payment_pending(1, "a")]);
    given(history.clone())
        .when(record_pending(1, "a"))
        .then_nothing();
    given(then_also(
        history.clone(),
        [payment_declined(1, "a", "declined")],
    ))
    .when(record_pending(1, "a"))
    .then_nothing();
    given(then_also(history, paid_for(1, 3, "a")))
        .when(record_pending(1, "a"))
        .then_nothing();
}

#[test]
fn a_pending_payment_for_an_unknown_registration_is_refused() {
    given(on_sale(50, 10))
        .when(record_pending(1, "a"))
        .then_err(EventError::RegistrationNotFound);
}

#[test]
fn money_for_a_pending_payment_confirms_the_hold() {
    let history = then_also(on_sale(50, 10), [held(1, 3), payment_pending(1, "a")]);
    given(history)
        .when(pay(1, "a", price_of(3)))
        .then(paid_for(1, 3, "a"));
}

#[test]
fn a_declined_payment_is_recorded_with_its_reason_trimmed_and_the_hold_stays() {
    let history = then_also(on_sale(50, 10), [held(1, 3)]);
    given(history.clone())
        .when(record_declined(1, "a", "  insufficient funds \n"))
        .then([payment_declined(1, "a", "insufficient funds")]);
    let state = given(history)
        .when(record_declined(1, "a", "insufficient funds"))
        .then_state();
    assert_eq!(payment_status(&state, "a"), Some(PaymentStatus::Declined));
    assert_eq!(status_of(&state, 1), Some(RegistrationStatus::Held));
    assert_eq!(state.ticket_types[&paid()].held, 3);
}

#[test]
fn a_decline_without_a_reason_is_recorded_as_declined() {
    given(then_also(on_sale(50, 10), [held(1, 3)]))
        .when(record_declined(1, "a", "   "))
        .then([payment_declined(1, "a", "declined")]);
}

#[test]
fn an_overlong_decline_reason_is_cut_to_200_characters() {
    given(then_also(on_sale(50, 10), [held(1, 3)]))
        .when(record_declined(1, "a", &"é".repeat(300)))
        .then([payment_declined(1, "a", &"é".repeat(200))]);
}

#[test]
fn a_decline_after_pending_is_recorded() {
    given(then_also(
        on_sale(50, 10),
        [held(1, 3), payment_pending(1, "a")],
    ))
    .when(record_declined(1, "a", "declined"))
    .then([payment_declined(1, "a", "declined")]);
}

#[test]
fn a_decline_reported_again_or_after_the_money_arrived_records_nothing() {
    let history = then_also(on_sale(50, 10), [held(1, 3)]);
    given(then_also(
        history.clone(),
        [payment_declined(1, "a", "declined")],
    ))
    .when(record_declined(1, "a", "declined"))
    .then_nothing();
    given(then_also(history, paid_for(1, 3, "a")))
        .when(record_declined(1, "a", "declined"))
        .then_nothing();
}

#[test]
fn a_decline_for_an_unknown_registration_is_refused() {
    given(on_sale(50, 10))
        .when(record_declined(1, "a", "declined"))
        .then_err(EventError::RegistrationNotFound);
}

#[test]
fn money_arriving_for_a_payment_once_declined_still_confirms_the_hold() {
    let history = then_also(
        on_sale(50, 10),
        [held(1, 3), payment_declined(1, "a", "declined")],
    );
    given(history)
        .when(pay(1, "a", price_of(3)))
        .then(paid_for(1, 3, "a"));
}

// ---- refunds ----------------------------------------------------------------------------------

fn refund_pending() -> Vec<EventFact> {
    then_also(
        on_sale(50, 10),
        [
            held(1, 3),
            payment_received(1, "a", euros(1)),
            refund_due(1, "a", euros(1), RefundReason::AmountMismatch),
        ],
    )
}

#[test]
fn completing_a_refund_that_is_due_records_it() {
    given(refund_pending())
        .when(complete_refund("a"))
        .then([refund_completed(1, "a")]);
    let state = given(refund_pending())
        .when(complete_refund("a"))
        .then_state();
    assert_eq!(payment_status(&state, "a"), Some(PaymentStatus::Refunded));
}

#[test]
fn completing_a_refund_twice_records_nothing() {
    given(then_also(refund_pending(), [refund_completed(1, "a")]))
        .when(complete_refund("a"))
        .then_nothing();
}

#[test]
fn completing_a_refund_of_an_unknown_payment_is_refused() {
    given(refund_pending())
        .when(complete_refund("zzz"))
        .then_err(EventError::NoRefundDue(pay_id("zzz")));
}

#[test]
fn completing_a_refund_of_a_payment_that_is_kept_or_pending_is_refused() {
    let history = then_also(on_sale(50, 10), [held(1, 3)]);
    given(then_also(history.clone(), paid_for(1, 3, "a")))
        .when(complete_refund("a"))
        .then_err(EventError::NoRefundDue(pay_id("a")));
    given(then_also(history, [payment_pending(1, "a")]))
        .when(complete_refund("a"))
        .then_err(EventError::NoRefundDue(pay_id("a")));
}

#[test]
fn a_refund_stays_a_refund_whatever_the_provider_reports_after_it() {
    let history = then_also(
        refund_pending(),
        [payment_pending(1, "a"), payment_received(1, "a", euros(1))],
    );
    assert_eq!(
        payment_status(&state_of(history), "a"),
        Some(PaymentStatus::RefundDue)
    );
}

// ---- expiring holds ---------------------------------------------------------------------------

#[test]
fn expiring_a_hold_before_it_is_due_records_nothing() {
    given(then_also(on_sale(50, 10), [held(1, 3)]))
        .at(hold_expiry() - seconds(1))
        .when(expire_hold(1))
        .then_nothing();
}

#[test]
fn expiring_a_hold_that_is_due_releases_it() {
    given(then_also(on_sale(50, 10), [held(1, 3)]))
        .at(hold_expiry())
        .when(expire_hold(1))
        .then([hold_expired(1, 3, hold_expiry())]);
}

#[test]
fn an_expired_hold_frees_its_seats_but_keeps_its_codes_issued() {
    let state = given(then_also(on_sale(50, 10), [held(1, 3)]))
        .at(hold_expiry())
        .when(expire_hold(1))
        .then_state();
    assert_eq!(status_of(&state, 1), Some(RegistrationStatus::Expired));
    assert_eq!(state.ticket_types[&paid()].held, 0);
    assert_eq!(state.available(paid()), 10);
    assert_eq!(state.seats_of("ada@example.org"), 0);
    assert!(state.tickets.contains_key(&code(1, 0)));
}

#[test]
fn expiring_a_hold_that_was_paid_cancelled_or_already_expired_records_nothing() {
    let history = then_also(on_sale(50, 10), [held(1, 3)]);
    for outcome in [
        paid_for(1, 3, "a").to_vec(),
        vec![registration_cancelled(1, paid(), 3)],
        vec![hold_expired(1, 3, hold_expiry())],
    ] {
        given(then_also(history.clone(), outcome))
            .at(hold_expiry() + hours(1))
            .when(expire_hold(1))
            .then_nothing();
    }
}

#[test]
fn expiring_a_free_registration_records_nothing() {
    given(then_also(on_sale(50, 10), [confirmed(1, 2)]))
        .at(hold_expiry() + hours(1))
        .when(expire_hold(1))
        .then_nothing();
}

#[test]
fn expiring_an_unknown_registration_is_refused() {
    given(on_sale(50, 10))
        .when(expire_hold(1))
        .then_err(EventError::RegistrationNotFound);
}

#[test]
fn an_expired_hold_offers_its_seats_to_the_head_of_the_waitlist_in_the_same_decision() {
    let history = then_also(on_sale(50, 3), [held(1, 3), joined(1, paid(), 2, bob())]);
    given(history).at(hold_expiry()).when(expire_hold(1)).then([
        hold_expired(1, 3, hold_expiry()),
        offer_made_at(1, paid(), 2, hold_expiry()),
    ]);
}

// ---- attendee cancellations -------------------------------------------------------------------

#[test]
fn cancelling_a_hold_releases_it_without_a_refund() {
    let history = then_also(on_sale(50, 10), [held(1, 3)]);
    given(history.clone())
        .when(cancel_registration(1))
        .then([registration_cancelled(1, paid(), 3)]);
    let state = given(history).when(cancel_registration(1)).then_state();
    assert_eq!(state.ticket_types[&paid()].held, 0);
    assert_eq!(state.available(paid()), 10);
}

#[test]
fn a_hold_can_be_released_after_the_cancellation_deadline() {
    let history = then_also(on_sale(50, 10), [deadline_at(now() - hours(1)), held(1, 3)]);
    given(history)
        .when(cancel_registration(1))
        .then([registration_cancelled(1, paid(), 3)]);
}

#[test]
fn cancelling_a_paid_registration_refunds_its_payment() {
    let history = then_also(on_sale(50, 10), [held(1, 3)]);
    let history = then_also(history, paid_for(1, 3, "a"));
    given(history.clone()).when(cancel_registration(1)).then([
        registration_cancelled(1, paid(), 3),
        refund_due(1, "a", price_of(3), RefundReason::AttendeeCancelled),
    ]);
    let state = given(history).when(cancel_registration(1)).then_state();
    assert_eq!(payment_status(&state, "a"), Some(PaymentStatus::RefundDue));
    assert_eq!(state.ticket_types[&paid()].confirmed, 0);
}

#[test]
fn cancelling_a_registration_paid_late_refunds_that_payment() {
    let history = then_also(
        on_sale(50, 10),
        [
            held_earlier(1, 3, ada()),
            expired_earlier(1, 3),
            payment_received(1, "late", price_of(3)),
            hold_confirmed(1, 3, "late", true),
        ],
    );
    given(history).when(cancel_registration(1)).then([
        registration_cancelled(1, paid(), 3),
        refund_due(1, "late", price_of(3), RefundReason::AttendeeCancelled),
    ]);
}

#[test]
fn cancelling_a_free_registration_refunds_nothing() {
    given(then_also(on_sale(50, 10), [confirmed(1, 2)]))
        .when(cancel_registration(1))
        .then([registration_cancelled(1, free(), 2)]);
}

#[test]
fn cancelling_before_the_policys_deadline_is_accepted() {
    let deadline = now() + hours(1);
    given(then_also(
        on_sale(50, 10),
        [deadline_at(deadline), confirmed(1, 2)],
    ))
    .at(deadline - seconds(1))
    .when(cancel_registration(1))
    .then([registration_cancelled_at(
        1,
        free(),
        2,
        deadline - seconds(1),
    )]);
}

#[test]
fn cancelling_at_or_after_the_policys_deadline_is_refused() {
    let deadline = now() + hours(1);
    for at in [deadline, deadline + hours(1)] {
        given(then_also(
            on_sale(50, 10),
            [deadline_at(deadline), confirmed(1, 2)],
        ))
        .at(at)
        .when(cancel_registration(1))
        .then_err(EventError::CancellationClosed { deadline });
    }
}

#[test]
fn without_a_deadline_cancelling_closes_when_the_event_starts() {
    let history = then_also(on_sale(50, 10), [confirmed(1, 2)]);
    given(history.clone())
        .at(starts() - seconds(1))
        .when(cancel_registration(1))
        .then([registration_cancelled_at(
            1,
            free(),
            2,
            starts() - seconds(1),
        )]);
    given(history)
        .at(starts())
        .when(cancel_registration(1))
        .then_err(EventError::CancellationClosed { deadline: starts() });
}

#[test]
fn the_default_cancellation_deadline_moves_with_a_rescheduled_start() {
    let new_start = now() + hours(1);
    let history = then_also(
        on_sale(50, 10),
        [
            confirmed(1, 2),
            EventFact::EventRescheduled {
                starts_at: new_start,
                ends_at: new_start + hours(2),
                previous_starts_at: starts(),
                previous_ends_at: ends(),
                rescheduled_at: now(),
            },
        ],
    );
    given(history)
        .at(new_start + minutes(1))
        .when(cancel_registration(1))
        .then_err(EventError::CancellationClosed {
            deadline: new_start,
        });
}

#[test]
fn cancelling_an_expired_hold_is_refused() {
    given(then_also(
        on_sale(50, 10),
        [held_earlier(1, 3, ada()), expired_earlier(1, 3)],
    ))
    .when(cancel_registration(1))
    .then_err(EventError::HoldExpired {
        expired_at: Some(now() - minutes(45)),
    });
}

#[test]
fn a_cancellation_offers_the_freed_seats_to_the_waitlist_after_its_refund() {
    let history = then_also(on_sale(50, 3), [held(1, 3)]);
    let history = then_also(history, paid_for(1, 3, "a"));
    let history = then_also(history, [joined(1, paid(), 2, bob())]);
    given(history).when(cancel_registration(1)).then([
        registration_cancelled(1, paid(), 3),
        refund_due(1, "a", price_of(3), RefundReason::AttendeeCancelled),
        offer_made(1, paid(), 2),
    ]);
}

// ---- the organizer cancels the event ----------------------------------------------------------

/// Ada confirmed 2 free seats; Bob paid 3; Cy holds 1; Dee's hold expired; Eve cancelled.
fn busy_event() -> Vec<EventFact> {
    let history = then_also(on_sale(50, 10), [confirmed(1, 2), held_for(2, 3, bob())]);
    let history = then_also(history, paid_for(2, 3, "b"));
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

#[test]
fn cancelling_the_event_cancels_every_active_registration_and_refunds_the_paid_ones() {
    given(busy_event())
        .when(EventCommand::Cancel {
            reason: Some("storm".into()),
        })
        .then([
            EventFact::EventCancelled {
                reason: Some("storm".into()),
                cancelled_at: now(),
            },
            registration_cancelled(1, free(), 2),
            registration_cancelled(2, paid(), 3),
            refund_due(2, "b", price_of(3), RefundReason::EventCancelled),
            registration_cancelled(3, paid(), 1),
        ]);
}

#[test]
fn a_cancelled_event_has_no_seat_taken_and_owes_every_payment_back() {
    let state = given(busy_event())
        .when(EventCommand::Cancel { reason: None })
        .then_state();
    assert_eq!(state.status, EventStatus::Cancelled);
    assert_eq!((state.confirmed(), state.held(), state.used()), (0, 0, 0));
    assert!(state.registrations.values().all(|r| !r.status.is_active()));
    assert_eq!(payment_status(&state, "b"), Some(PaymentStatus::RefundDue));
    assert_eq!(state.seats_of("bob@example.org"), 0);
}

#[test]
fn cancelling_the_event_closes_its_waitlist_and_withdraws_open_offers() {
    let history = then_also(
        on_sale(2, 1),
        [
            confirmed(1, 2),
            joined(1, free(), 1, bob()),
            joined(2, free(), 2, cy()),
            held_for(2, 1, dee()),
            joined(3, paid(), 1, person("eve")),
            registration_cancelled(2, paid(), 1),
            offer_made(3, paid(), 1),
        ],
    );
    let state = given(history)
        .when(EventCommand::Cancel { reason: None })
        .then_state();
    for e in [1, 2, 3] {
        assert_eq!(state.waitlist[&entry(e)].status, WaitlistStatus::Closed);
        assert_eq!(state.waitlist[&entry(e)].offer_expires_at, None);
    }
    for ticket_type in state.ticket_types.values() {
        assert_eq!(ticket_type.offered, 0);
        assert!(ticket_type.waiting.is_empty());
    }
    assert_eq!(state.used(), 0);
}

// ---- the event's policy -----------------------------------------------------------------------

#[test]
fn changing_the_policy_records_only_what_changes() {
    let deadline = now() + hours(2);
    given(on_sale(50, 10))
        .when(change_policy(PolicyChange {
            hold_seconds: Some(DEFAULT_HOLD_SECONDS),
            offer_seconds: Some(3_600),
            cancellation_deadline: Some(deadline),
            max_per_attendee: Some(4),
            reminder_offsets_seconds: None,
        }))
        .then([policy_changed(PolicyChange {
            hold_seconds: None,
            offer_seconds: Some(3_600),
            cancellation_deadline: Some(deadline),
            max_per_attendee: Some(4),
            reminder_offsets_seconds: None,
        })]);
}

#[test]
fn a_changed_policy_shows_in_the_event() {
    let deadline = now() + hours(2);
    let state = given(on_sale(50, 10))
        .when(change_policy(PolicyChange {
            hold_seconds: Some(60),
            offer_seconds: Some(3_600),
            cancellation_deadline: Some(deadline),
            max_per_attendee: Some(4),
            reminder_offsets_seconds: None,
        }))
        .then_state();
    assert_eq!(
        state.policy,
        EventPolicy {
            hold_seconds: 60,
            offer_seconds: 3_600,
            cancellation_deadline: Some(deadline),
            max_per_attendee: Some(4),
            reminder_offsets_seconds: DEFAULT_REMINDER_OFFSETS.to_vec(),
        }
    );
    assert_eq!(state.cancellation_deadline(), Some(deadline));
}

#[test]
fn a_policy_change_to_the_values_it_has_records_nothing() {
    let history = then_also(on_sale(50, 10), [limited_to(4)]);
    given(history.clone())
        .when(change_policy(PolicyChange {
            hold_seconds: Some(DEFAULT_HOLD_SECONDS),
            offer_seconds: Some(DEFAULT_OFFER_SECONDS),
            cancellation_deadline: None,
            max_per_attendee: Some(4),
            reminder_offsets_seconds: None,
        }))
        .then_nothing();
    given(history)
        .when(change_policy(PolicyChange::default()))
        .then_nothing();
}

#[test]
fn removing_a_limit_that_is_not_set_records_nothing() {
    given(on_sale(50, 10))
        .when(change_policy(PolicyChange {
            max_per_attendee: Some(0),
            ..PolicyChange::default()
        }))
        .then_nothing();
}

#[test]
fn a_per_attendee_limit_of_zero_removes_the_limit() {
    let state = given(then_also(on_sale(50, 10), [limited_to(4)]))
        .when(change_policy(PolicyChange {
            max_per_attendee: Some(0),
            ..PolicyChange::default()
        }))
        .then_state();
    assert_eq!(state.policy.max_per_attendee, None);
}

#[test]
fn hold_and_offer_times_outside_one_second_to_seven_days_are_refused() {
    for seconds in [0, MAX_WINDOW_SECONDS + 1] {
        given(on_sale(50, 10))
            .when(change_policy(PolicyChange {
                hold_seconds: Some(seconds),
                ..PolicyChange::default()
            }))
            .then_err_matches(is_invalid("hold_seconds"));
        given(on_sale(50, 10))
            .when(change_policy(PolicyChange {
                offer_seconds: Some(seconds),
                ..PolicyChange::default()
            }))
            .then_err_matches(is_invalid("offer_seconds"));
    }
}

#[test]
fn hold_and_offer_times_at_their_limits_are_accepted() {
    for seconds in [1, MAX_WINDOW_SECONDS] {
        let change = PolicyChange {
            hold_seconds: Some(seconds),
            offer_seconds: Some(seconds),
            ..PolicyChange::default()
        };
        given(on_sale(50, 10))
            .when(change_policy(change.clone()))
            .then([policy_changed(change)]);
    }
}

#[test]
fn a_per_attendee_limit_above_a_thousand_is_refused() {
    given(on_sale(50, 10))
        .when(change_policy(PolicyChange {
            max_per_attendee: Some(1_001),
            ..PolicyChange::default()
        }))
        .then_err_matches(is_invalid("max_per_attendee"));
    given(on_sale(50, 10))
        .when(change_policy(PolicyChange {
            max_per_attendee: Some(1_000),
            ..PolicyChange::default()
        }))
        .then([limited_to(1_000)]);
}

#[test]
fn an_invalid_field_refuses_the_whole_policy_change() {
    given(on_sale(50, 10))
        .when(change_policy(PolicyChange {
            hold_seconds: Some(60),
            offer_seconds: Some(0),
            ..PolicyChange::default()
        }))
        .then_err_matches(is_invalid("offer_seconds"));
}

#[test]
fn changing_the_policy_of_a_cancelled_event_is_refused() {
    given(then_also(on_sale(50, 10), [event_cancelled()]))
        .when(change_policy(PolicyChange {
            hold_seconds: Some(60),
            ..PolicyChange::default()
        }))
        .then_err_matches(is_invalid_state);
}

#[test]
fn changing_the_policy_of_an_event_that_does_not_exist_is_refused() {
    given([])
        .when(change_policy(PolicyChange::default()))
        .then_err(EventError::NotFound);
}

// ---- rescheduling -----------------------------------------------------------------------------

#[test]
fn rescheduling_records_the_new_and_the_previous_times() {
    let (new_start, new_end) = (starts() + hours(24), ends() + hours(25));
    given(on_sale(50, 10))
        .when(reschedule(new_start, new_end))
        .then([
            EventFact::EventRescheduled {
                starts_at: new_start,
                ends_at: new_end,
                previous_starts_at: starts(),
                previous_ends_at: ends(),
                rescheduled_at: now(),
            },
            EventFact::ReminderScheduled {
                reminder: Some(ScheduledReminder {
                    offset_seconds: 24 * 3_600,
                    starts_at: new_start,
                    due_at: new_start - hours(24),
                }),
            },
        ]);
}

#[test]
fn rescheduling_keeps_every_registration_and_hold() {
    let history = then_also(on_sale(50, 10), [confirmed(1, 2), held_for(2, 3, bob())]);
    let before = state_of(history.clone());
    let state = given(history)
        .when(reschedule(starts() + hours(24), ends() + hours(24)))
        .then_state();
    assert_eq!(state.starts_at, Some(starts() + hours(24)));
    assert_eq!(state.ends_at, Some(ends() + hours(24)));
    assert_eq!(state.registrations, before.registrations);
    assert_eq!(state.tickets, before.tickets);
    assert_eq!(state.ticket_types, before.ticket_types);
}

#[test]
fn rescheduling_a_draft_is_accepted() {
    given([drafted(CAPACITY)])
        .when(reschedule(starts() + hours(1), ends() + hours(1)))
        .then_facts();
}

#[test]
fn rescheduling_to_the_times_it_has_records_nothing() {
    given(on_sale(50, 10))
        .when(reschedule(starts(), ends()))
        .then_nothing();
}

#[test]
fn rescheduling_to_an_end_not_after_the_start_is_refused() {
    for end in [starts(), starts() - hours(1)] {
        given(on_sale(50, 10))
            .when(reschedule(starts(), end))
            .then_err_matches(is_invalid("ends_at"));
    }
}

#[test]
fn rescheduling_into_the_past_is_refused() {
    for end in [now(), now() - hours(1)] {
        given(on_sale(50, 10))
            .when(reschedule(end - hours(2), end))
            .then_err_matches(is_invalid("ends_at"));
    }
}

#[test]
fn rescheduling_a_cancelled_event_is_refused() {
    given(then_also(on_sale(50, 10), [event_cancelled()]))
        .when(reschedule(starts() + hours(1), ends() + hours(1)))
        .then_err_matches(is_invalid_state);
}

#[test]
fn rescheduling_an_event_that_does_not_exist_is_refused() {
    given([])
        .when(reschedule(starts(), ends()))
        .then_err(EventError::NotFound);
}
