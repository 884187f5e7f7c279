//! The log contract, run against every backend: `memory::`, `sqlite::` and `postgres::`.
//!
//! Each case is a plain async function over `&dyn EventStore` in `cases`; the `suite!` macro
//! instantiates every case once per backend, so a backend cannot skip one.

use std::sync::Arc;

use marquee_store::{EventStore, connect};

#[path = "cases/mod.rs"]
mod cases;

/// A store plus whatever must outlive it (temp dir, test database). Fields drop in order: the
/// store first, then the guard that deletes its storage.
pub struct Harness {
    pub store: Arc<dyn EventStore>,
    _guard: Box<dyn std::any::Any + Send>,
}

async fn open_memory() -> Harness {
    Harness {
        store: connect("memory:").await.expect("memory store"),
        _guard: Box::new(()),
    }
}

async fn open_sqlite() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/nested/log.db", dir.path().display());
    Harness {
        store: connect(&url).await.expect("sqlite store"),
        _guard: Box::new(dir),
    }
}

async fn open_postgres() -> Harness {
    let db = marquee_store::testing::PgTestDb::create().await;
    Harness {
        store: connect(&db.url).await.expect("postgres store"),
        _guard: Box::new(db),
    }
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let h = super::open_memory().await;
                    super::cases::$case(h.store.clone()).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let h = super::open_sqlite().await;
                    super::cases::$case(h.store.clone()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let h = super::open_postgres().await;
                    super::cases::$case(h.store.clone()).await;
                }
            )*
        }
    };
}

suite!(
    appending_to_a_new_stream_starts_at_revision_zero_and_position_one,
    no_stream_is_refused_once_the_stream_exists_and_nothing_is_written,
    exact_revision_must_name_the_last_revision_and_a_mismatch_writes_nothing,
    exact_revision_on_a_missing_stream_reports_no_actual_revision,
    any_appends_whatever_the_stream_revision,
    a_multi_fact_append_gets_contiguous_positions_and_revisions,
    a_refused_multi_fact_append_writes_none_of_its_facts,
    empty_appends_and_blank_stream_names_are_invalid,
    read_stream_starts_at_from_revision_and_honours_the_limit,
    read_all_returns_facts_after_a_position_in_order_up_to_the_limit,
    re_appending_stored_fact_ids_is_a_no_op_that_answers_the_original_positions,
    metadata_round_trips_with_every_field,
    idempotency_put_then_get_returns_the_first_answer,
    idempotency_entries_older_than_a_day_are_ignored_and_may_be_replaced,
    an_append_stores_its_idempotency_answer_and_the_key_cannot_append_twice,
    snapshots_keep_the_newest_revision,
    snapshot_policy_has_a_default,
    subscribe_catches_up_then_goes_live_without_loss_or_duplicates,
    subscribe_after_a_position_starts_after_it,
    a_dropped_subscription_does_not_disturb_the_store,
    concurrent_appends_are_committed_together_and_a_conflict_fails_alone,
    a_chain_of_appends_is_checked_link_by_link_in_order,
    a_chain_with_an_unusable_link_writes_nothing,
    an_atomic_append_writes_two_streams_with_consecutive_positions,
    an_atomic_append_with_one_stale_member_writes_nothing,
    an_idempotency_key_on_one_member_answers_for_the_whole_atomic_append,
    re_appending_an_atomic_group_is_a_no_op_answered_with_the_stored_positions,
    an_empty_or_unusable_atomic_append_is_invalid_and_writes_nothing,
    concurrent_atomic_appends_for_one_venue_revision_commit_exactly_one,
    subscribe_sees_atomic_groups_facts_once_in_position_order,
);
