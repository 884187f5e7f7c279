//! Rules of the waitlist: joining, offers in join order, claims, expiry, leaving, and the
//! capacity changes that make offers, one sentence per test.

use super::tests_vocabulary::*;
// The vocabulary's words win over the event module's private functions of the same name.
use super::tests_vocabulary::on_sale;
use super::*;
use crate::testing::{given, now};

fn state_of(history: Vec<EventFact>) -> Event {
    given(history).state::<EventCommand>()
}

fn change_capacity(capacity: u32) -> EventCommand {
    EventCommand::ChangeCapacity {
        capacity,
        venue: venue(),
    }
}

fn status_of(state: &Event, e: u128) -> Option<WaitlistStatus> {
    state.waitlist.get(&entry(e)).map(|entry| entry.status)
}

/// The one free seat is Ada's; Bob then Cy wait for one seat each.
fn one_seat_two_waiting() -> Vec<EventFact> {
    then_also(
        on_sale(1, 10),
        [
            confirmed(1, 1),
            joined(1, free(), 1, bob()),
            joined(2, free(), 1, cy()),
        ],
    )
}

/// Ada cancelled her free seat; it is offered to Bob, Cy waits behind him.
fn offered_to_bob() -> Vec<EventFact> {
    then_also(
        one_seat_two_waiting(),
        [
            registration_cancelled(1, free(), 1),
            offer_made(1, free(), 1),
        ],
    )
}

/// The one paid seat was Ada's hold; she cancelled it, and Bob, who waited, has the offer.
fn paid_seat_offered_to_bob() -> Vec<EventFact> {
    then_also(
        on_sale(50, 1),
        [
            held(1, 1),
            joined(1, paid(), 1, bob()),
            registration_cancelled(1, paid(), 1),
            offer_made(1, paid(), 1),
        ],
    )
}

fn paid_with_sales_end(sales_end: Timestamp) -> EventFact {
    EventFact::TicketTypeAdded {
        ticket_type_id: paid(),
        name: "VIP".into(),
        price: euros(PRICE),
        quantity: 1,
        sales_start: None,
        sales_end: Some(sales_end),
    }
}

// ---- joining ----------------------------------------------------------------------------------

#[test]
fn joining_the_waitlist_of_a_sold_out_ticket_type_records_it() {
    given(then_also(on_sale(2, 10), [confirmed(1, 2)]))
        .when(join(1, free(), 1, bob()))
        .then([joined(1, free(), 1, bob())]);
}

#[test]
fn joining_trims_the_attendees_name_and_address() {
    given(then_also(on_sale(2, 10), [confirmed(1, 2)]))
        .when(join(
            1,
            free(),
            1,
            Attendee {
                name: "  BOB ".into(),
                email: " bob@example.org\t".into(),
            },
        ))
        .then([joined(1, free(), 1, bob())]);
}

#[test]
fn entries_wait_in_the_order_they_joined() {
    let state = state_of(then_also(
        on_sale(2, 10),
        [
            confirmed(1, 2),
            joined(1, free(), 1, bob()),
            joined(2, free(), 2, cy()),
        ],
    ));
    assert_eq!(
        state.ticket_types[&free()].waiting,
        [entry(1), entry(2)].into_iter().collect::<VecDeque<_>>()
    );
    assert_eq!(state.waiting(free()), 2);
    assert_eq!(state.waitlist[&entry(1)].seq, 0);
    assert_eq!(state.waitlist[&entry(2)].seq, 1);
    assert_eq!(status_of(&state, 2), Some(WaitlistStatus::Waiting));
}

#[test]
fn joining_while_the_seats_asked_for_are_available_is_refused() {
    given(then_also(on_sale(2, 10), [confirmed(1, 1)]))
        .when(join(1, free(), 1, bob()))
        .then_err(EventError::SeatsAvailable { available: 1 });
}

#[test]
fn joining_for_more_seats_than_are_left_is_accepted() {
    given(then_also(on_sale(2, 10), [confirmed(1, 1)]))
        .when(join(1, free(), 2, bob()))
        .then([joined(1, free(), 2, bob())]);
}

#[test]
fn joining_behind_others_is_accepted_even_when_the_seats_asked_for_are_free() {
    let history = then_also(
        on_sale(3, 10),
        [confirmed(1, 2), joined(1, free(), 2, bob())],
    );
    given(history)
        .when(join(2, free(), 1, cy()))
        .then([joined(2, free(), 1, cy())]);
}

#[test]
fn joining_is_accepted_when_the_event_capacity_is_what_is_sold_out() {
    given(then_also(
        on_sale_with_capacity(2, 50, 10),
        [confirmed(1, 2)],
    ))
    .when(join(1, paid(), 1, bob()))
    .then([joined(1, paid(), 1, bob())]);
}

#[test]
fn joining_a_line_twice_is_refused_whatever_the_case_of_the_address() {
    let shouting = Attendee {
        name: "Bob".into(),
        email: "BOB@Example.org".into(),
    };
    let history = then_also(
        on_sale(1, 10),
        [confirmed(1, 1), joined(1, free(), 1, bob())],
    );
    given(history.clone())
        .when(join(2, free(), 1, shouting.clone()))
        .then_err(EventError::AlreadyOnWaitlist { entry_id: entry(1) });
    given(then_also(
        history,
        [
            registration_cancelled(1, free(), 1),
            offer_made(1, free(), 1),
        ],
    ))
    .when(join(2, free(), 1, shouting))
    .then_err(EventError::AlreadyOnWaitlist { entry_id: entry(1) });
}

#[test]
fn joining_again_after_leaving_is_accepted() {
    let history = then_also(
        on_sale(1, 10),
        [
            confirmed(1, 1),
            joined(1, free(), 1, bob()),
            left(1, free(), 1, false),
        ],
    );
    given(history)
        .when(join(2, free(), 1, bob()))
        .then([joined(2, free(), 1, bob())]);
}

#[test]
fn joining_the_lines_of_two_ticket_types_is_accepted() {
    let history = then_also(
        on_sale(1, 1),
        [confirmed(1, 1), held(2, 1), joined(1, free(), 1, bob())],
    );
    given(history)
        .when(join(2, paid(), 1, bob()))
        .then([joined(2, paid(), 1, bob())]);
}

#[test]
fn joining_with_an_entry_id_already_used_is_refused() {
    let history = then_also(
        on_sale(1, 10),
        [confirmed(1, 1), joined(1, free(), 1, bob())],
    );
    given(history)
        .when(join(1, free(), 1, cy()))
        .then_err(EventError::WaitlistEntryExists);
}

#[test]
fn joining_for_no_seats_or_more_than_an_order_may_hold_is_refused() {
    let history = then_also(on_sale(1, 10), [confirmed(1, 1)]);
    given(history.clone())
        .when(join(1, free(), 0, bob()))
        .then_err_matches(is_invalid("quantity"));
    given(history)
        .when(join(1, free(), DEFAULT_MAX_PER_ORDER + 1, bob()))
        .then_err(EventError::OrderLimitExceeded {
            max: DEFAULT_MAX_PER_ORDER,
        });
}

#[test]
fn joining_for_an_attendee_without_a_name_or_a_valid_address_is_refused() {
    let history = then_also(on_sale(1, 10), [confirmed(1, 1)]);
    given(history.clone())
        .when(join(
            1,
            free(),
            1,
            Attendee {
                name: " ".into(),
                email: "bob@example.org".into(),
            },
        ))
        .then_err_matches(is_invalid("attendee.name"));
    given(history)
        .when(join(
            1,
            free(),
            1,
            Attendee {
                name: "Bob".into(),
                email: "bob@localhost".into(),
            },
        ))
        .then_err_matches(is_invalid("attendee.email"));
}

#[test]
fn joining_beyond_the_per_attendee_limit_is_refused() {
    let history = then_also(on_sale(2, 10), [limited_to(2), confirmed(1, 2)]);
    given(history)
        .when(join(1, free(), 1, ada()))
        .then_err(EventError::AttendeeLimitExceeded { max: 2, already: 2 });
}

#[test]
fn joining_a_line_that_is_not_on_sale_is_refused() {
    given([drafted(CAPACITY), free_added(1)])
        .when(join(1, free(), 1, bob()))
        .then_err(EventError::NotOnSale);
    given(then_also(on_sale(1, 10), [event_cancelled()]))
        .when(join(1, free(), 1, bob()))
        .then_err(EventError::Cancelled);
    given(then_also(on_sale(1, 10), [confirmed(1, 1)]))
        .at(ends())
        .when(join(1, free(), 1, bob()))
        .then_err(EventError::Ended);
    given(on_sale(1, 10))
        .when(join(1, TicketTypeId(uuid::Uuid::from_u128(0x99)), 1, bob()))
        .then_err(EventError::TicketTypeNotFound);
    given([drafted(CAPACITY), paid_with_sales_end(now()), published()])
        .when(join(1, paid(), 1, bob()))
        .then_err(EventError::SalesClosed { closed_at: now() });
}

// ---- offers -----------------------------------------------------------------------------------

#[test]
fn freed_seats_are_offered_to_those_in_line_in_join_order_as_long_as_they_fit() {
    given(then_also(
        on_sale(2, 10),
        [
            confirmed(1, 2),
            joined(1, free(), 1, bob()),
            joined(2, free(), 1, cy()),
            joined(3, free(), 1, dee()),
        ],
    ))
    .when(cancel_registration(1))
    .then([
        registration_cancelled(1, free(), 2),
        offer_made(1, free(), 1),
        offer_made(2, free(), 1),
    ]);
}

#[test]
fn an_offer_lasts_as_long_as_the_events_policy_says() {
    let history = then_also(
        one_seat_two_waiting(),
        [policy_changed(PolicyChange {
            offer_seconds: Some(3_600),
            ..PolicyChange::default()
        })],
    );
    given(history).when(cancel_registration(1)).then([
        registration_cancelled(1, free(), 1),
        EventFact::WaitlistOfferMade {
            entry_id: entry(1),
            ticket_type_id: free(),
            quantity: 1,
            expires_at: now() + hours(1),
            offered_at: now(),
        },
    ]);
}

#[test]
fn the_head_of_the_line_is_not_skipped_for_a_smaller_request_behind_it() {
    let history = then_also(
        on_sale(2, 10),
        [
            confirmed(1, 1),
            confirmed_for(2, 1, dee()),
            joined(1, free(), 2, bob()),
            joined(2, free(), 1, cy()),
        ],
    );
    given(history.clone())
        .when(cancel_registration(1))
        .then([registration_cancelled(1, free(), 1)]);
    let state = given(history).when(cancel_registration(1)).then_state();
    assert_eq!(state.available(free()), 1);
    assert_eq!(status_of(&state, 2), Some(WaitlistStatus::Waiting));
}

#[test]
fn the_earliest_joiner_is_offered_first_across_ticket_types() {
    // The event's capacity is what is sold out: one freed seat could go to either line.
    let history = |first: (TicketTypeId, Attendee), second: (TicketTypeId, Attendee)| {
        then_also(
            on_sale_with_capacity(2, 50, 10),
            [
                confirmed(1, 1),
                confirmed_for(2, 1, dee()),
                joined(1, first.0, 1, first.1),
                joined(2, second.0, 1, second.1),
            ],
        )
    };
    given(history((paid(), bob()), (free(), cy())))
        .when(cancel_registration(1))
        .then([
            registration_cancelled(1, free(), 1),
            offer_made(1, paid(), 1),
        ]);
    given(history((free(), bob()), (paid(), cy())))
        .when(cancel_registration(1))
        .then([
            registration_cancelled(1, free(), 1),
            offer_made(1, free(), 1),
        ]);
}

#[test]
fn a_head_that_does_not_fit_holds_back_only_its_own_line() {
    // Bob waits for 2 VIP seats, Cy for 1 free seat; one seat of the event comes free.
    let history = then_also(
        on_sale_with_capacity(2, 50, 10),
        [
            confirmed(1, 1),
            confirmed_for(2, 1, dee()),
            joined(1, paid(), 2, bob()),
            joined(2, free(), 1, cy()),
        ],
    );
    given(history).when(cancel_registration(1)).then([
        registration_cancelled(1, free(), 1),
        offer_made(2, free(), 1),
    ]);
}

#[test]
fn an_offer_keeps_its_seats_for_the_entry() {
    let state = state_of(offered_to_bob());
    let general = &state.ticket_types[&free()];
    assert_eq!(
        (general.confirmed, general.offered, general.used()),
        (0, 1, 1)
    );
    assert_eq!(state.available(free()), 0);
    assert_eq!(status_of(&state, 1), Some(WaitlistStatus::Offered));
    assert_eq!(
        state.waitlist[&entry(1)].offer_expires_at,
        Some(offer_expiry())
    );
    assert_eq!(
        state.ticket_types[&free()].waiting,
        [entry(2)].into_iter().collect::<VecDeque<_>>()
    );
}

#[test]
fn a_new_reservation_is_refused_while_someone_waits_for_the_ticket_type() {
    let history = then_also(
        on_sale(3, 10),
        [confirmed(1, 2), joined(1, free(), 2, bob())],
    );
    assert_eq!(state_of(history.clone()).available(free()), 1);
    given(history)
        .when(reserve_for(2, free(), 1, cy()))
        .then_err(EventError::SoldOut { available: 0 });
}

#[test]
fn a_reservation_of_another_ticket_type_is_accepted_while_someone_waits() {
    let history = then_also(
        on_sale(1, 10),
        [confirmed(1, 1), joined(1, free(), 1, bob())],
    );
    given(history)
        .when(reserve_for(2, paid(), 1, cy()))
        .then([held_for(2, 1, cy())]);
}

#[test]
fn seats_left_over_once_nobody_waits_are_on_sale_again() {
    let history = then_also(
        on_sale(3, 10),
        [
            confirmed(1, 3),
            joined(1, free(), 1, bob()),
            registration_cancelled(1, free(), 3),
            offer_made(1, free(), 1),
        ],
    );
    given(history.clone())
        .when(reserve_for(2, free(), 2, cy()))
        .then([confirmed_for(2, 2, cy())]);
    given(history)
        .when(reserve_for(2, free(), 3, cy()))
        .then_err(EventError::SoldOut { available: 2 });
}

#[test]
fn no_offer_is_made_once_the_event_has_ended() {
    let after = ends() + hours(1);
    given(then_also(
        on_sale(50, 1),
        [held(1, 1), joined(1, paid(), 1, bob())],
    ))
    .at(after)
    .when(expire_hold(1))
    .then([hold_expired(1, 1, after)]);
}

#[test]
fn no_offer_is_made_for_a_ticket_type_whose_sales_have_closed() {
    let history = [
        drafted(CAPACITY),
        paid_with_sales_end(now() + minutes(10)),
        published(),
        held(1, 1),
        joined(1, paid(), 1, bob()),
    ];
    given(history)
        .at(hold_expiry())
        .when(expire_hold(1))
        .then([hold_expired(1, 1, hold_expiry())]);
}

// ---- expiring offers --------------------------------------------------------------------------

#[test]
fn expiring_an_offer_before_it_is_due_records_nothing() {
    given(offered_to_bob())
        .at(offer_expiry() - seconds(1))
        .when(expire_offer(1))
        .then_nothing();
}

#[test]
fn an_expired_offer_passes_its_seats_to_the_next_in_line() {
    given(offered_to_bob())
        .at(offer_expiry())
        .when(expire_offer(1))
        .then([
            offer_expired_at(1, free(), 1, offer_expiry()),
            offer_made_at(2, free(), 1, offer_expiry()),
        ]);
}

#[test]
fn an_expired_offer_with_nobody_behind_puts_its_seats_back_on_sale() {
    let history = then_also(
        on_sale(1, 10),
        [
            confirmed(1, 1),
            joined(1, free(), 1, bob()),
            registration_cancelled(1, free(), 1),
            offer_made(1, free(), 1),
        ],
    );
    let state = given(history)
        .at(offer_expiry())
        .when(expire_offer(1))
        .then_state();
    assert_eq!(status_of(&state, 1), Some(WaitlistStatus::Expired));
    assert_eq!(state.waitlist[&entry(1)].offer_expires_at, None);
    assert_eq!(state.ticket_types[&free()].offered, 0);
    assert_eq!(state.available(free()), 1);
}

#[test]
fn expiring_an_offer_that_is_not_open_records_nothing() {
    let later = offer_expiry() + hours(1);
    given(one_seat_two_waiting())
        .at(later)
        .when(expire_offer(1))
        .then_nothing();
    for ending in [
        vec![offer_claimed(1, 2, free(), 1), confirmed_for(2, 1, bob())],
        vec![left(1, free(), 1, true)],
        vec![offer_expired_at(1, free(), 1, offer_expiry())],
    ] {
        given(then_also(offered_to_bob(), ending))
            .at(later)
            .when(expire_offer(1))
            .then_nothing();
    }
}

#[test]
fn expiring_an_unknown_entry_is_refused() {
    given(on_sale(1, 10))
        .when(expire_offer(1))
        .then_err(EventError::WaitlistEntryNotFound);
}

// ---- leaving ----------------------------------------------------------------------------------

#[test]
fn leaving_the_line_records_it_and_frees_the_place() {
    given(one_seat_two_waiting())
        .when(leave(1))
        .then([left(1, free(), 1, false)]);
    let state = given(one_seat_two_waiting()).when(leave(1)).then_state();
    assert_eq!(status_of(&state, 1), Some(WaitlistStatus::Left));
    assert_eq!(
        state.ticket_types[&free()].waiting,
        [entry(2)].into_iter().collect::<VecDeque<_>>()
    );
}

#[test]
fn leaving_with_an_open_offer_passes_its_seats_to_the_next_in_line() {
    given(offered_to_bob())
        .when(leave(1))
        .then([left(1, free(), 1, true), offer_made(2, free(), 1)]);
}

#[test]
fn a_head_leaving_lets_a_smaller_request_behind_it_through() {
    let history = then_also(
        on_sale(2, 10),
        [
            confirmed(1, 1),
            confirmed_for(2, 1, dee()),
            joined(1, free(), 2, bob()),
            joined(2, free(), 1, cy()),
            registration_cancelled(1, free(), 1),
        ],
    );
    given(history)
        .when(leave(1))
        .then([left(1, free(), 2, false), offer_made(2, free(), 1)]);
}

#[test]
fn leaving_an_entry_no_longer_in_line_is_refused() {
    given(then_also(
        one_seat_two_waiting(),
        [left(1, free(), 1, false)],
    ))
    .when(leave(1))
    .then_err(EventError::NotOnWaitlist {
        status: WaitlistStatus::Left,
    });
    given(then_also(
        offered_to_bob(),
        [offer_claimed(1, 2, free(), 1), confirmed_for(2, 1, bob())],
    ))
    .when(leave(1))
    .then_err(EventError::NotOnWaitlist {
        status: WaitlistStatus::Claimed,
    });
    given(then_also(
        offered_to_bob(),
        [offer_expired_at(1, free(), 1, offer_expiry())],
    ))
    .when(leave(1))
    .then_err(EventError::NotOnWaitlist {
        status: WaitlistStatus::Expired,
    });
    given(then_also(one_seat_two_waiting(), [event_cancelled()]))
        .when(leave(1))
        .then_err(EventError::NotOnWaitlist {
            status: WaitlistStatus::Closed,
        });
}

#[test]
fn leaving_an_unknown_entry_is_refused() {
    given(on_sale(1, 10))
        .when(leave(1))
        .then_err(EventError::WaitlistEntryNotFound);
}

// ---- claiming ---------------------------------------------------------------------------------

#[test]
fn claiming_an_offer_of_free_seats_confirms_them() {
    given(offered_to_bob())
        .when(claim(1, 2, 1))
        .then([offer_claimed(1, 2, free(), 1), confirmed_for(2, 1, bob())]);
}

#[test]
fn claiming_an_offer_of_paid_seats_holds_them_for_payment() {
    given(paid_seat_offered_to_bob())
        .when(claim(1, 2, 1))
        .then([offer_claimed(1, 2, paid(), 1), held_for(2, 1, bob())]);
}

#[test]
fn a_claimed_offer_turns_its_seats_into_the_registration() {
    let state = given(offered_to_bob()).when(claim(1, 2, 1)).then_state();
    let general = &state.ticket_types[&free()];
    assert_eq!((general.confirmed, general.offered), (1, 0));
    assert_eq!(status_of(&state, 1), Some(WaitlistStatus::Claimed));
    assert_eq!(state.waitlist[&entry(1)].registration_id, Some(reg(2)));
    assert_eq!(
        state.registrations[&reg(2)].status,
        RegistrationStatus::Confirmed
    );
    assert_eq!(state.seats_of("bob@example.org"), 1);
}

#[test]
fn claiming_carries_the_answers_given_when_joining() {
    let answers: Answers = [("diet".to_owned(), AnswerValue::One("vegan".into()))].into();
    let history = then_also(
        on_sale(1, 10),
        [
            EventFact::RegistrationQuestionsSet {
                questions: vec![Question {
                    id: "diet".into(),
                    label: "Diet".into(),
                    kind: QuestionKind::Text,
                    options: vec![],
                    required: false,
                }],
            },
            confirmed(1, 1),
            EventFact::WaitlistJoined {
                entry_id: entry(1),
                ticket_type_id: free(),
                attendee: bob(),
                quantity: 1,
                answers: answers.clone(),
                joined_at: now(),
            },
            registration_cancelled(1, free(), 1),
            offer_made(1, free(), 1),
        ],
    );
    given(history).when(claim(1, 2, 1)).then([
        offer_claimed(1, 2, free(), 1),
        confirmed_for(2, 1, bob()),
        EventFact::AnswersGiven {
            registration_id: reg(2),
            answers,
        },
    ]);
}

#[test]
fn claiming_with_more_codes_than_seats_uses_the_first() {
    given(offered_to_bob())
        .when(EventCommand::ClaimOffer {
            entry_id: entry(1),
            registration_id: reg(2),
            ticket_codes: codes(2, 3),
        })
        .then([offer_claimed(1, 2, free(), 1), confirmed_for(2, 1, bob())]);
}

#[test]
fn claiming_with_too_few_or_reused_codes_is_refused() {
    for ticket_codes in [vec![], vec![code(1, 0)], vec![TicketCode("short".into())]] {
        given(offered_to_bob())
            .when(EventCommand::ClaimOffer {
                entry_id: entry(1),
                registration_id: reg(2),
                ticket_codes,
            })
            .then_err_matches(is_invalid("ticket_codes"));
    }
}

#[test]
fn claiming_as_a_registration_that_exists_is_refused() {
    given(offered_to_bob())
        .when(claim(1, 1, 1))
        .then_err(EventError::RegistrationExists);
}

#[test]
fn claiming_before_an_offer_is_made_is_refused() {
    given(one_seat_two_waiting())
        .when(claim(1, 2, 1))
        .then_err(EventError::OfferNotMade);
}

#[test]
fn claiming_an_offer_past_its_time_is_refused_even_before_it_is_expired() {
    given(offered_to_bob())
        .at(offer_expiry())
        .when(claim(1, 2, 1))
        .then_err(EventError::OfferExpired);
}

#[test]
fn claiming_just_before_the_offer_runs_out_is_accepted() {
    let at = offer_expiry() - seconds(1);
    given(offered_to_bob()).at(at).when(claim(1, 2, 1)).then([
        EventFact::WaitlistOfferClaimed {
            entry_id: entry(1),
            registration_id: reg(2),
            ticket_type_id: free(),
            quantity: 1,
            claimed_at: at,
        },
        EventFact::RegistrationConfirmed {
            registration_id: reg(2),
            ticket_type_id: free(),
            attendee: bob(),
            quantity: 1,
            ticket_codes: codes(2, 1),
            confirmed_at: at,
        },
    ]);
}

#[test]
fn claiming_an_expired_offer_is_refused() {
    given(then_also(
        offered_to_bob(),
        [offer_expired_at(1, free(), 1, offer_expiry())],
    ))
    .when(claim(1, 2, 1))
    .then_err(EventError::OfferExpired);
}

#[test]
fn claiming_an_offer_twice_is_refused_with_the_registration_it_became() {
    given(then_also(
        offered_to_bob(),
        [offer_claimed(1, 2, free(), 1), confirmed_for(2, 1, bob())],
    ))
    .when(claim(1, 3, 1))
    .then_err(EventError::OfferClaimed {
        registration_id: Some(reg(2)),
    });
}

#[test]
fn claiming_after_leaving_is_refused() {
    given(then_also(offered_to_bob(), [left(1, free(), 1, true)]))
        .when(claim(1, 2, 1))
        .then_err(EventError::NotOnWaitlist {
            status: WaitlistStatus::Left,
        });
}

#[test]
fn claiming_after_the_event_was_cancelled_is_refused() {
    given(then_also(offered_to_bob(), [event_cancelled()]))
        .when(claim(1, 2, 1))
        .then_err(EventError::NotOnWaitlist {
            status: WaitlistStatus::Closed,
        });
}

#[test]
fn claiming_once_the_event_has_ended_is_refused() {
    let end = now() + hours(1);
    let history = then_also(
        offered_to_bob(),
        [EventFact::EventRescheduled {
            starts_at: end - hours(2),
            ends_at: end,
            previous_starts_at: starts(),
            previous_ends_at: ends(),
            rescheduled_at: now(),
        }],
    );
    given(history)
        .at(end)
        .when(claim(1, 2, 1))
        .then_err(EventError::Ended);
}

#[test]
fn claiming_an_unknown_entry_is_refused() {
    given(on_sale(1, 10))
        .when(claim(1, 2, 1))
        .then_err(EventError::WaitlistEntryNotFound);
}

#[test]
fn claiming_beyond_the_per_attendee_limit_is_refused() {
    // Bob joined for 2 free seats with nothing reserved, then held 2 VIP seats while he waited:
    // claiming the offer would give him 4 where the event allows 2.
    let history = then_also(
        on_sale(2, 10),
        [
            limited_to(2),
            confirmed(1, 2),
            joined(1, free(), 2, bob()),
            held_for(2, 2, bob()),
            registration_cancelled(1, free(), 2),
            offer_made(1, free(), 2),
        ],
    );
    given(history)
        .when(claim(1, 3, 2))
        .then_err(EventError::AttendeeLimitExceeded { max: 2, already: 2 });
}

// ---- capacity ---------------------------------------------------------------------------------

/// Capacity in use: 3 held VIP seats and 1 free seat offered to Cy.
fn held_and_offered() -> Vec<EventFact> {
    then_also(
        on_sale(2, 10),
        [
            confirmed(1, 2),
            joined(1, free(), 1, cy()),
            held_for(2, 3, bob()),
            registration_cancelled(1, free(), 2),
            offer_made(1, free(), 1),
        ],
    )
}

#[test]
fn the_capacity_cannot_drop_below_the_seats_confirmed_held_and_offered() {
    given(held_and_offered())
        .when(change_capacity(3))
        .then_err(EventError::CapacityBelowSold {
            capacity: 3,
            sold: 4,
        });
}

#[test]
fn the_capacity_can_drop_to_exactly_the_seats_confirmed_held_and_offered() {
    given(held_and_offered())
        .when(change_capacity(4))
        .then([EventFact::EventCapacityChanged { capacity: 4 }]);
}

#[test]
fn raising_the_capacity_offers_the_new_seats_to_those_waiting() {
    let history = then_also(
        on_sale_with_capacity(2, 50, 10),
        [
            confirmed(1, 2),
            joined(1, free(), 1, bob()),
            joined(2, paid(), 2, cy()),
        ],
    );
    // Two more seats: Bob's one fits; Cy's two do not fit in the one left.
    given(history).when(change_capacity(4)).then([
        EventFact::EventCapacityChanged { capacity: 4 },
        offer_made(1, free(), 1),
    ]);
}
