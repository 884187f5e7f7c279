//! Conversions between the log's Rust types and what the databases store, shared by the SQL
//! backends: the databases know only signed integers, and SQLite stores JSON, UUIDs and times
//! as text.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::StoreError;

/// A position, revision or version from the database, which stores them as signed integers.
pub(crate) fn to_u64(value: i64, column: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("negative {column}: {value}")))
}

/// A position, revision or version for the database.
pub(crate) fn to_i64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Invalid(format!("{what} {value} is too large")))
}

/// A `u32` column read back from a signed integer column.
pub(crate) fn to_u32(value: i64, column: &str) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} out of range: {value}")))
}

/// A limit for SQL `LIMIT` (callers pass `usize::MAX` to mean "all").
pub(crate) fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// JSON text for SQLite's TEXT columns.
pub(crate) fn json_text<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Invalid(format!("not JSON: {e}")))
}

/// JSON value for Postgres' JSONB columns.
pub(crate) fn json_value<T: Serialize>(value: &T) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(value).map_err(|e| StoreError::Invalid(format!("not JSON: {e}")))
}

/// Parses JSON stored by us.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    text: &str,
    column: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

/// Decodes JSON stored as JSONB.
pub(crate) fn from_json_value<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    column: &str,
) -> Result<T, StoreError> {
    serde_json::from_value(value).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

/// Fixed-width RFC 3339 (UTC, microseconds): string order is time order, which SQLite's
/// `created_at >= ?` comparisons rely on.
pub(crate) fn time_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses a time written by [`time_text`].
pub(crate) fn parse_time(text: &str, column: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

/// Rate-limits the opportunistic cleanup of expired idempotency keys to once per interval.
pub(crate) struct CleanupClock {
    last: Mutex<Option<Instant>>,
    every: Duration,
}

impl CleanupClock {
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            last: Mutex::new(None),
            every,
        }
    }

    /// True at most once per interval (and on the first call).
    pub(crate) fn due(&self) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < self.every) {
            return false;
        }
        *last = Some(now);
        true
    }
}
