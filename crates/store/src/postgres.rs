//! The Postgres backend (distributed mode).

use crate::{EventStore, StoreError, StoreOptions};

/// The `postgres://` backend.
pub(crate) struct PostgresStore;

impl PostgresStore {
    pub(crate) async fn connect(
        url: &str,
        options: StoreOptions,
    ) -> Result<Box<dyn EventStore>, StoreError> {
        let _ = options;
        Err(StoreError::UnsupportedUrl(format!(
            "{url}: Postgres backend not built yet"
        )))
    }
}
