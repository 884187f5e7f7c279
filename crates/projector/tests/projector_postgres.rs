//! The projector with the log and the read models in one fresh Postgres database per test
//! (`marquee_store::testing::PgTestDb`; the server named by `DATABASE_URL`, default local).

mod common;

use common::Backend;

macro_rules! on_postgres {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    common::$name(Backend::postgres().await).await;
                }
            )*
        }
    };
}

on_postgres!(
    a_published_event_fills_the_listing_and_capacity_rows,
    every_ticket_type_follows_the_event_wide_capacity,
    restarting_the_projector_counts_nothing_twice,
    facts_at_or_below_the_checkpoint_are_skipped_when_redelivered,
    an_unknown_or_malformed_fact_is_skipped_and_the_checkpoint_moves_past_it,
    drafts_are_not_listed_and_listing_filters_by_city_category_and_time,
    renaming_a_venue_renames_it_on_its_events,
    a_long_log_is_applied_in_batches_with_every_registration_counted,
    waiting_for_a_position_never_applied_times_out,
);
