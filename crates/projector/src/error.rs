//! The projector's one error type: infrastructure failures only. A fact that cannot be understood
//! is not an error here — it is logged and skipped, so the projector never crash-loops on it.

use marquee_store::StoreError;

/// Why a read-model operation or the projector loop failed.
#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    /// The URL names no database this build knows.
    #[error("unsupported read-model database URL: {0}")]
    UnsupportedUrl(String),
    /// The read-model database failed.
    #[error("read-model database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the read-model migrations failed.
    #[error("read-model migration error: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The log failed.
    #[error("log error: {0}")]
    Store(#[from] StoreError),
    /// A read-model row holds a value this build cannot read back (e.g. a malformed id).
    #[error("corrupt read-model row: {0}")]
    Corrupt(String),
    /// The log's live feed ended: the store was closed.
    #[error("the log's feed ended (store closed)")]
    LogClosed,
}
