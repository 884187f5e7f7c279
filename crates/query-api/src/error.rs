//! The query API's one error type and how it becomes an RFC 9457 problem+json answer.
//!
//! Client mistakes name what was wrong; server failures are logged here and answered with a
//! generic `internal` problem that never shows the cause.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use marquee_projector::ProjectorError;
use marquee_store::StoreError;
use serde_json::{Value, json};

/// Everything a query can fail with. Each variant has one stable `code`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A query parameter or header is malformed, unknown or out of range (`validation_failed`,
    /// 400). `field` names the parameter or header.
    #[error("{field}: {message}")]
    Validation {
        field: &'static str,
        message: String,
    },
    /// An unknown query parameter (`validation_failed`, 400).
    #[error("{0}: unknown parameter")]
    UnknownParameter(String),
    /// No such resource, or a malformed id (`not_found`, 404).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// No route matches the path (`not_found`, 404).
    #[error("no such route")]
    NoRoute,
    /// The route exists but not with this method (`method_not_allowed`, 405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The read models did not reach `Marquee-Min-Position` in time (`position_not_reached`,
    /// 503 with `Retry-After: 1`).
    #[error("position {requested} not reached yet (applied: {applied})")]
    PositionNotReached { requested: u64, applied: u64 },
    /// The read models failed (`internal`, 500).
    #[error("read models: {0}")]
    ReadModels(#[from] ProjectorError),
    /// The log failed (`internal`, 500).
    #[error("log: {0}")]
    Store(#[from] StoreError),
    /// Any other server-side failure (`internal`, 500).
    #[error("{0}")]
    Internal(String),
    /// No credentials, or credentials that are not valid (`unauthorized`, 401).
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Valid credentials without the role this needs (`forbidden`, 403).
    #[error("{0}")]
    Forbidden(&'static str),
}

impl ApiError {
    /// A `validation_failed` error about `field`.
    pub fn validation(field: &'static str, message: impl Into<String>) -> Self {
        ApiError::Validation {
            field,
            message: message.into(),
        }
    }

    /// HTTP status, stable code and title.
    fn classify(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::Validation { .. } | ApiError::UnknownParameter(_) => (
                StatusCode::BAD_REQUEST,
                "validation_failed",
                "Invalid request",
            ),
            ApiError::NotFound(_) | ApiError::NoRoute => {
                (StatusCode::NOT_FOUND, "not_found", "Not found")
            }
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
            ),
            ApiError::PositionNotReached { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "position_not_reached",
                "Position not reached",
            ),
            ApiError::ReadModels(_) | ApiError::Store(_) | ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }

    /// The status and problem+json body this error answers with. Server errors are logged here.
    pub fn problem_body(&self) -> (StatusCode, Value) {
        let (status, code, title) = self.classify();
        let detail = if status.is_server_error() && !matches!(self, Self::PositionNotReached { .. })
        {
            // The cause goes to the log, never to the client.
            tracing::error!(error = %self, "query failed");
            "The server could not complete the request.".to_owned()
        } else {
            self.to_string()
        };
        let mut body = json!({
            "type": format!("https://marquee.dev/problems/{code}"),
            "title": title,
            "status": status.as_u16(),
            "detail": detail,
            "code": code,
        });
        if let Value::Object(map) = &mut body {
            match self {
                ApiError::Validation { field, .. } => {
                    map.insert("field".into(), json!(field));
                }
                ApiError::UnknownParameter(name) => {
                    map.insert("field".into(), json!(name));
                }
                ApiError::PositionNotReached { requested, applied } => {
                    map.insert("requested_position".into(), json!(requested));
                    map.insert("applied_position".into(), json!(applied));
                }
                _ => {}
            }
        }
        (status, body)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = self.problem_body();
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if matches!(self, ApiError::PositionNotReached { .. }) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
