//! Test support: a throw-away database per test on each backend, and the macro that runs one
//! scenario on every backend.

use chrono::{DateTime, Utc};

/// A fresh database: a SQLite file in a temporary directory, or a Postgres database of its own.
/// Dropping it deletes the file or drops the database.
pub struct TestDb {
    /// URL for [`marquee_auth::AuthStore::connect`].
    pub url: String,
    _sqlite_dir: Option<tempfile::TempDir>,
    _postgres: Option<marquee_store::testing::PgTestDb>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        TestDb {
            url: format!("sqlite://{}", dir.path().join("marquee.db").display()),
            _sqlite_dir: Some(dir),
            _postgres: None,
        }
    }

    pub async fn postgres() -> TestDb {
        let db = marquee_store::testing::PgTestDb::create().await;
        TestDb {
            url: db.url.clone(),
            _sqlite_dir: None,
            _postgres: Some(db),
        }
    }
}

/// A fixed point in time for tests that move time by hand.
pub fn t0() -> DateTime<Utc> {
    "2026-06-01T09:00:00Z".parse().expect("time")
}

/// Runs each named `async fn(url: &str)` scenario of the calling file as a test on a SQLite file
/// (module `sqlite`) and on a Postgres database of its own (module `postgres`).
#[macro_export]
macro_rules! on_every_backend {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let db = $crate::common::TestDb::sqlite().await;
                    super::$scenario(&db.url).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let db = $crate::common::TestDb::postgres().await;
                    super::$scenario(&db.url).await;
                }
            )*
        }
    };
}
