//! Read-your-writes: `Marquee-Min-Position: N` makes a request wait (bounded) until the read
//! models have applied position N, and every answer says which position it reflects in
//! `Marquee-Position`.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{ApiError, QueryState};

/// Request header: the lowest log position the answer must reflect.
pub const MIN_POSITION_HEADER: &str = "marquee-min-position";
/// Response header: the position the read models had applied when the request was served; the
/// answer reflects at least this position.
pub const POSITION_HEADER: &str = "marquee-position";

/// Waits for `Marquee-Min-Position` if present, never answering a stale 200: a position not
/// reached in time is a 503 `position_not_reached`.
pub(crate) async fn read_your_writes(
    State(state): State<QueryState>,
    request: Request,
    next: Next,
) -> Response {
    match wait_then_read_position(&state, request.headers()).await {
        Ok(applied) => {
            let mut response = next.run(request).await;
            set_position(&mut response, applied);
            response
        }
        Err((error, applied)) => {
            let mut response = error.into_response();
            if let Some(applied) = applied {
                set_position(&mut response, applied);
            }
            response
        }
    }
}

/// The applied position to report, after waiting for the requested one. On failure, the error
/// and, when known, the applied position.
async fn wait_then_read_position(
    state: &QueryState,
    headers: &HeaderMap,
) -> Result<u64, (ApiError, Option<u64>)> {
    let requested = match min_position(headers) {
        Ok(requested) => requested,
        Err(error) => return Err((error, state.read.applied_position().await.ok())),
    };
    if let Some(requested) = requested {
        let reached = state
            .read
            .wait_for(requested, state.min_position_timeout)
            .await
            .map_err(|e| (ApiError::from(e), None))?;
        if !reached {
            let applied = state
                .read
                .applied_position()
                .await
                .map_err(|e| (ApiError::from(e), None))?;
            return Err((
                ApiError::PositionNotReached { requested, applied },
                Some(applied),
            ));
        }
    }
    state
        .read
        .applied_recent()
        .await
        .map_err(|e| (ApiError::from(e), None))
}

/// The requested minimum position: absent, or one non-negative decimal integer.
fn min_position(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let mut values = headers.get_all(MIN_POSITION_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::validation(
            "Marquee-Min-Position",
            "must be given once",
        ));
    }
    let text = value.to_str().unwrap_or_default().trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::validation(
            "Marquee-Min-Position",
            "must be a non-negative integer",
        ));
    }
    text.parse()
        .map(Some)
        .map_err(|_| ApiError::validation("Marquee-Min-Position", "is too large"))
}

fn set_position(response: &mut Response, applied: u64) {
    response
        .headers_mut()
        .insert(POSITION_HEADER, HeaderValue::from(applied));
}
