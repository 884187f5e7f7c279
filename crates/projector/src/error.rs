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
    /// The keys that open personal data could not be read (their database failed). Retried
    /// like any failure of the read models; nothing is applied without them.
    #[error("personal data keys: {0}")]
    Keys(String),
    /// The log's live feed ended: the store was closed.
    #[error("the log's feed ended (store closed)")]
    LogClosed,
    /// NATS failed (unreachable, the relay's stream missing, the connection dropped). The
    /// projector retries it with backoff and follows the log meanwhile; [`crate::Projector::run`]
    /// never returns it.
    #[error("NATS: {0}")]
    Nats(String),
    /// Another projector process took the lease over: this one must not write any more. The
    /// projector loop handles it by standing by; it only surfaces from a batch.
    #[error("the projector lease is held by another process")]
    LeaseLost,
    /// The projector's configuration can never work (bad lease timings, stream or consumer name).
    #[error("invalid projector configuration: {0}")]
    InvalidConfig(String),
    /// JetStream delivered a position the log does not have (yet): the stream was filled from
    /// another log, or the log read lags. Retried; nothing is applied past the log.
    #[error("JetStream delivered position {position}, but the log ends at {head}")]
    LogBehind {
        /// The position JetStream delivered.
        position: u64,
        /// The log's last position as read.
        head: u64,
    },
    /// A rebuild was asked for a projection this build does not have.
    #[error("unknown projection `{name}`; known projections: {known}")]
    UnknownProjection {
        /// The name asked for.
        name: String,
        /// The names [`crate::rebuild::PROJECTIONS`] lists, comma-separated.
        known: String,
    },
}
