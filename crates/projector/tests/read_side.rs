//! The read side's tables (search and listing orders, guest-list search, holders, analytics) on
//! the embedded engines: an in-memory log with in-memory read models, and one SQLite file
//! holding both. The Postgres twins are in `read_side_postgres.rs`; the scenarios in
//! `read_side_scenarios/`.

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

macro_rules! on_sqlite {
    ($($name:ident),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    read_side_scenarios::$name(Backend::memory().await).await;
                }
            )*
        }
        mod sqlite_file {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    read_side_scenarios::$name(Backend::sqlite_file().await).await;
                }
            )*
        }
    };
}

on_sqlite!(
    search_finds_events_by_every_word_of_their_title_or_description,
    the_listing_filters_by_venue_price_currency_and_seats_left,
    every_listing_order_pages_through_every_event_exactly_once,
    the_guest_list_finds_attendees_by_part_of_their_name_or_address_ignoring_case,
    an_account_holds_the_registrations_recorded_for_it_across_events,
    analytics_count_a_scripted_sequence_exactly,
    analytics_facts_repeated_in_the_log_count_once,
);

/// A rebuild needs a database other connections can open: the SQLite file only.
mod sqlite_file_rebuild {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn analytics_after_a_rebuild_equal_the_live_ones() {
        read_side_scenarios::analytics_after_a_rebuild_equal_the_live_ones(
            Backend::sqlite_file().await,
        )
        .await;
    }
}
