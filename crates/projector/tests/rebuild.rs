//! Rebuilding the read models on one SQLite file holding the log too (embedded mode). The
//! Postgres twins are in `rebuild_postgres.rs`; the scenarios in `rebuild_scenarios/`.

#[allow(
    dead_code,
    reason = "this binary uses the builders, not the projector scenarios"
)]
mod common;
mod rebuild_scenarios;
#[allow(
    dead_code,
    reason = "this binary uses the builders, not the ticketing scenarios"
)]
mod ticketing_scenarios;

use common::Backend;

macro_rules! on_sqlite_file {
    ($($name:ident),* $(,)?) => {
        mod sqlite_file {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    rebuild_scenarios::$name(Backend::sqlite_file().await).await;
                }
            )*
        }
    };
}

on_sqlite_file!(
    a_rebuild_gives_read_models_identical_to_the_live_ones,
    an_unknown_projection_is_refused_with_the_known_names,
    cached_statements_keep_working_across_the_swap,
    queries_keep_answering_during_a_rebuild,
    facts_appended_during_a_rebuild_are_applied_once_and_the_projector_goes_on,
    a_rebuild_repairs_damaged_read_models,
);
