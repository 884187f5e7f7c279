//! The projector against the embedded engines: an in-memory log with in-memory read models, and
//! one SQLite file holding both (embedded mode). The Postgres twins are in `projector_postgres.rs`.

mod common;

use common::Backend;

macro_rules! on_sqlite {
    ($($name:ident),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    common::$name(Backend::memory().await).await;
                }
            )*
        }
        mod sqlite_file {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    common::$name(Backend::sqlite_file().await).await;
                }
            )*
        }
    };
}

on_sqlite!(
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
