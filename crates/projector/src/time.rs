//! Timestamps as the read models store them: RFC 3339 UTC text with exactly six fractional
//! digits, so that comparing the text compares the times on SQLite and Postgres alike.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::ProjectorError;

/// Formats a time in the read models' fixed text format, e.g. `2026-06-01T18:00:00.000000Z`.
pub(crate) fn to_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Reads back a time written by [`to_text`].
pub(crate) fn from_text(text: &str) -> Result<DateTime<Utc>, ProjectorError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| ProjectorError::Corrupt(format!("timestamp `{text}`: {e}")))
}

/// [`from_text`] for nullable columns.
pub(crate) fn from_opt_text(text: Option<String>) -> Result<Option<DateTime<Utc>>, ProjectorError> {
    text.as_deref().map(from_text).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_order_is_time_order_and_round_trips() {
        let a: DateTime<Utc> = "2026-06-01T09:00:00Z".parse().expect("time");
        let b: DateTime<Utc> = "2026-06-01T10:00:00.5Z".parse().expect("time");
        assert_eq!(to_text(a), "2026-06-01T09:00:00.000000Z");
        assert!(to_text(a) < to_text(b));
        assert_eq!(from_text(&to_text(b)).expect("parse"), b);
    }
}
