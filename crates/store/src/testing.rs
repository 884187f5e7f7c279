//! Test support for every crate: a throw-away Postgres database.

/// A fresh Postgres database, dropped with the value.
pub struct PgTestDb {
    /// URL of the new database.
    pub url: String,
}

impl PgTestDb {
    /// Creates the database.
    pub async fn create() -> PgTestDb {
        panic!("not yet")
    }
}
