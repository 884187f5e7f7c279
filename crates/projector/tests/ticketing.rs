//! Holds, payments, the waitlist, check-ins and timers in the read models, on the embedded
//! engines: an in-memory log with in-memory read models, and one SQLite file holding both. The
//! Postgres twins are in `ticketing_postgres.rs`; the scenarios in `ticketing_scenarios/`.

#[allow(
    dead_code,
    reason = "this binary uses the builders, not the projector scenarios"
)]
mod common;
mod ticketing_scenarios;

use common::Backend;

macro_rules! on_sqlite {
    ($($name:ident),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    ticketing_scenarios::$name(Backend::memory().await).await;
                }
            )*
        }
        mod sqlite_file {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    ticketing_scenarios::$name(Backend::sqlite_file().await).await;
                }
            )*
        }
    };
}

on_sqlite!(
    a_paid_hold_counts_as_held_until_paid_then_as_confirmed,
    an_expired_hold_gives_its_seats_back,
    a_late_payment_confirms_an_expired_hold_again,
    cancelling_a_hold_or_a_confirmed_registration_frees_what_it_took,
    a_waitlist_offer_keeps_seats_until_claimed_expired_or_left,
    cancelling_the_event_closes_the_waitlist_and_its_offers,
    the_guest_list_shows_attendees_answers_payments_and_check_ins,
    a_reverted_check_in_clears_the_check_in_time_until_the_next_scan,
    timers_come_and_go_with_their_facts_and_fall_due_oldest_first,
    ticketing_facts_repeated_in_the_log_count_once,
    redelivered_ticketing_facts_count_nothing_twice,
);
