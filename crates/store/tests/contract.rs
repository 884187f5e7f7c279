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

suite!(appending_to_a_new_stream_starts_at_revision_zero_and_position_one,);
