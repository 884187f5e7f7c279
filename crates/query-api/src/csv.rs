//! CSV answers (RFC 4180): which requests want one, and how a record is written.
//!
//! A request wants CSV with `format=csv`, or without `format` when its `Accept` header names
//! `text/csv`. Records end with CRLF; a field holding a comma, a double quote, CR or LF is
//! quoted, with its double quotes doubled. The first record is a header naming the columns.
//! Values are written as they are: a spreadsheet may read a value starting with `=`, `+`, `-`
//! or `@` as a formula, so open exports of attendee-written text with care.

use axum::http::{HeaderMap, HeaderValue, header};

use crate::ApiError;

/// The `Content-Type` of every CSV answer.
pub(crate) const CONTENT_TYPE: &str = "text/csv; charset=utf-8; header=present";

/// Whether the answer should be CSV: `format` (`json` or `csv`) decides when given, else the
/// `Accept` header.
pub(crate) fn wanted(headers: &HeaderMap, format: Option<&str>) -> Result<bool, ApiError> {
    match format.map(str::trim) {
        Some("csv") => Ok(true),
        Some("json") => Ok(false),
        Some(_) => Err(ApiError::validation("format", "must be json or csv")),
        None => Ok(headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|media| {
                media
                    .split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/csv"))
            })),
    }
}

/// One record, with its CRLF.
pub(crate) fn record<I, S>(fields: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut line = String::new();
    for (n, field) in fields.into_iter().enumerate() {
        if n > 0 {
            line.push(',');
        }
        let field = field.as_ref();
        if field.contains([',', '"', '\r', '\n']) {
            line.push('"');
            line.push_str(&field.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(field);
        }
    }
    line.push_str("\r\n");
    line
}

/// `Content-Disposition` naming the download `filename` (ASCII, no quotes).
pub(crate) fn attachment(filename: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_commas_quotes_or_line_breaks_are_quoted() {
        assert_eq!(record(["a", "b c", ""]), "a,b c,\r\n");
        assert_eq!(
            record(["O'Hara, Scarlett", "say \"hi\"", "two\nlines"]),
            "\"O'Hara, Scarlett\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n"
        );
    }

    #[test]
    fn format_decides_and_accept_names_csv_otherwise() {
        let mut headers = HeaderMap::new();
        assert!(!wanted(&headers, None).expect("json"));
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json;q=0.5, Text/CSV; q=1"),
        );
        assert!(wanted(&headers, None).expect("csv"));
        assert!(!wanted(&headers, Some("json")).expect("json"));
        assert!(wanted(&HeaderMap::new(), Some("csv")).expect("csv"));
        assert!(wanted(&headers, Some("xml")).is_err());
    }
}
