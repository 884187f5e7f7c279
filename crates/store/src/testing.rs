//! Test support for every crate: a throw-away Postgres database per test.
//!
//! Always compiled (other crates' tests and the black-box tests use it), so it stays small and
//! needs nothing beyond the store's own dependencies.

use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

/// Where [`PgTestDb::create`] connects to create databases when `DATABASE_URL` is not set.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A fresh, empty Postgres database named `marquee_test_<uuid>`, dropped (`WITH (FORCE)`, so
/// connections still open do not keep it alive) when this value is dropped.
///
/// ```no_run
/// # async fn t() {
/// let db = marquee_store::testing::PgTestDb::create().await;
/// let store = marquee_store::connect(&db.url).await.unwrap();
/// # }
/// ```
pub struct PgTestDb {
    /// URL of the new database, for [`crate::connect`] or any other client.
    pub url: String,
    /// The database's name.
    pub name: String,
    admin_url: String,
}

impl PgTestDb {
    /// Creates the database through the server named by `DATABASE_URL` (default
    /// [`DEFAULT_ADMIN_URL`]).
    ///
    /// # Panics
    /// If Postgres cannot be reached or refuses to create the database: a test that needs
    /// Postgres must fail loudly, never skip silently.
    pub async fn create() -> PgTestDb {
        let admin_url =
            std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
        let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "Postgres not reachable at {admin_url} ({e}); run the README's test command, \
                 which starts one"
            )
        });
        let name = format!("marquee_test_{}", Uuid::new_v4().simple());
        // The name is ours (a UUID), so building the statement is safe.
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name} at {admin_url}: {e}"));
        // Best effort: the connection closes when dropped anyway.
        let _ = admin.close().await;
        PgTestDb {
            url: with_database(&admin_url, &name),
            name,
            admin_url,
        }
    }
}

impl Drop for PgTestDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop cannot await, and blocking inside the test's runtime would panic: run the DROP on
        // a thread of its own with its own small runtime, and wait for it.
        let dropped = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url)
                    .await
                    .map_err(|e| e.to_string())?;
                admin
                    .execute(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = admin.close().await;
                Ok(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            // Never panic in Drop (it may run while a failed test unwinds); say what leaked.
            Ok(Err(e)) => eprintln!("could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!(
                "could not drop test database {}: thread panicked",
                self.name
            ),
        }
    }
}

/// `admin_url` with its database (the path) replaced by `database`, keeping any query string.
fn with_database(admin_url: &str, database: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut url = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_in_a_url_is_replaced_and_the_query_kept() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "t2"),
            "postgresql://u:p@h/t2?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "t3"),
            "postgres://h:5432/t3"
        );
    }
}
