//! Conditional reads: an `ETag` on the public read-model answers (listing, event page,
//! capacity) and `If-None-Match` answered with `304 Not Modified`.
//!
//! The read models change only when the projector applies facts, so an answer is determined by
//! the applied position and the request (path and query string). The tag is derived from exactly
//! those: it changes when the position moves (the answer *can* have changed) or the request
//! differs, and stays the same otherwise. A position that moved without touching what an answer
//! shows costs the client one full answer, never a stale one. Tags are strong: the same tag is
//! always the same bytes (the listing's bytes come from the page cache at that position).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The tag of the answer to `request` (what distinguishes it: path and parsed query) at
/// applied position `applied`: `"<applied>-<16 hex digits>"`.
pub(crate) fn etag(applied: u64, request: &str) -> HeaderValue {
    let tag = format!("\"{applied}-{:016x}\"", fnv1a(request.as_bytes()));
    // Digits, hex and quotes only: always a valid header value.
    HeaderValue::from_str(&tag).unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

/// Whether `If-None-Match` names `etag` (or is `*`). Weak tags (`W/"…"`) compare by their
/// value, as RFC 9110 asks of `If-None-Match`.
pub(crate) fn is_fresh(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let Ok(ours) = etag.to_str() else {
        return false;
    };
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == ours)
}

/// `304 Not Modified` with the tag (and no body).
pub(crate) fn not_modified(etag: HeaderValue) -> Response {
    (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response()
}

/// Adds the tag to an answer.
pub(crate) fn tagged(mut response: Response, etag: HeaderValue) -> Response {
    response.headers_mut().insert(header::ETAG, etag);
    response
}

/// 64-bit FNV-1a: stable across processes and builds (unlike std's hasher), so replicas behind
/// one load balancer give one request the same tag.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_depends_on_the_position_and_the_request_only() {
        assert_eq!(etag(7, "/v1/events?city=x"), etag(7, "/v1/events?city=x"));
        assert_ne!(etag(7, "/v1/events?city=x"), etag(8, "/v1/events?city=x"));
        assert_ne!(etag(7, "/v1/events?city=x"), etag(7, "/v1/events?city=y"));
    }

    #[test]
    fn if_none_match_matches_any_listed_tag_weak_or_strong_or_a_star() {
        let tag = etag(3, "/v1/events");
        let mut headers = HeaderMap::new();
        assert!(!is_fresh(&headers, &tag));
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"nope\", W/{}", tag.to_str().expect("text")))
                .expect("header"),
        );
        assert!(is_fresh(&headers, &tag));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(is_fresh(&headers, &tag));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"1-00\""));
        assert!(!is_fresh(&headers, &tag));
    }
}
