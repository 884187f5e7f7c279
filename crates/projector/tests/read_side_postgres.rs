//! The read side's tables (search and listing orders, guest-list search, holders, analytics)
//! with the log and the read models in one fresh Postgres database per test (`PgTestDb`). The
//! embedded twins are in `read_side.rs`; the scenarios in `read_side_scenarios/`.

#[allow(
    dead_code,
    reason = "this binary uses the builders, not the projector scenarios"
)]
mod common;
mod read_side_scenarios;
#[allow(
    dead_code,
    reason = "this binary uses the builders, not the ticketing scenarios"
)]
mod ticketing_scenarios;

use common::Backend;

macro_rules! on_postgres {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    read_side_scenarios::$name(Backend::postgres().await).await;
                }
            )*
        }
    };
}

on_postgres!(
    search_finds_events_by_every_word_of_their_title_or_description,
    the_listing_filters_by_venue_price_currency_and_seats_left,
    every_listing_order_pages_through_every_event_exactly_once,
    the_guest_list_finds_attendees_by_part_of_their_name_or_address_ignoring_case,
    an_account_holds_the_registrations_recorded_for_it_across_events,
    analytics_count_a_scripted_sequence_exactly,
    analytics_after_a_rebuild_equal_the_live_ones,
    analytics_facts_repeated_in_the_log_count_once,
);
