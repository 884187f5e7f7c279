//! The query API's one error type and how it becomes an RFC 9457 problem+json answer.
//!
//! Client mistakes name what was wrong; server failures are logged here and answered with a
//! generic `internal` problem that never shows the cause.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use marquee_projector::ProjectorError;
use marquee_store::StoreError;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

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
    fn classify(&self) -> (StatusCode, ProblemCode, &'static str) {
        match self {
            ApiError::Validation { .. } | ApiError::UnknownParameter(_) => (
                StatusCode::BAD_REQUEST,
                ProblemCode::ValidationFailed,
                "Invalid request",
            ),
            ApiError::NotFound(_) | ApiError::NoRoute => {
                (StatusCode::NOT_FOUND, ProblemCode::NotFound, "Not found")
            }
            ApiError::Unauthorized(_) => (
                StatusCode::UNAUTHORIZED,
                ProblemCode::Unauthorized,
                "Unauthorized",
            ),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, ProblemCode::Forbidden, "Forbidden"),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                ProblemCode::MethodNotAllowed,
                "Method not allowed",
            ),
            ApiError::PositionNotReached { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                ProblemCode::PositionNotReached,
                "Position not reached",
            ),
            ApiError::ReadModels(_) | ApiError::Store(_) | ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                ProblemCode::Internal,
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
        let (field, requested_position, applied_position) = match self {
            ApiError::Validation { field, .. } => (Some((*field).to_owned()), None, None),
            ApiError::UnknownParameter(name) => (Some(name.clone()), None, None),
            ApiError::PositionNotReached { requested, applied } => {
                (None, Some(*requested), Some(*applied))
            }
            _ => (None, None, None),
        };
        let problem = Problem {
            kind: format!("https://marquee.dev/problems/{}", code.as_str()),
            title,
            status: status.as_u16(),
            detail,
            code,
            field,
            requested_position,
            applied_position,
        };
        // A struct of strings and integers always serializes.
        let body = serde_json::to_value(&problem).unwrap_or_default();
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

/// An RFC 9457 problem (`application/problem+json`): the body of every 4xx and 5xx answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Problem {
    /// `https://marquee.dev/problems/<code>`.
    #[serde(rename = "type")]
    #[schema(format = "uri", example = "https://marquee.dev/problems/not_found")]
    kind: String,
    /// A short, human-readable summary of the problem type.
    title: &'static str,
    /// The HTTP status code.
    #[schema(minimum = 400, maximum = 599)]
    status: u16,
    /// What went wrong with this request (server failures say no more than that they failed).
    detail: String,
    code: ProblemCode,
    /// The query parameter or header at fault (`validation_failed` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    field: Option<String>,
    /// The `Marquee-Min-Position` asked for (`position_not_reached` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = u64)]
    requested_position: Option<u64>,
    /// The position the read models had applied (`position_not_reached` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = u64)]
    applied_position: Option<u64>,
}

/// A problem's stable, machine-readable code.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ProblemCode {
    /// 400: a parameter or header is malformed, unknown, repeated or out of range.
    ValidationFailed,
    /// 401: no credentials, or credentials that are not valid.
    Unauthorized,
    /// 403: valid credentials without the role this needs.
    Forbidden,
    /// 404: no such resource (or one the caller may not know of), or no such route.
    NotFound,
    /// 405: the route exists but not with this method.
    MethodNotAllowed,
    /// 500: the server failed.
    Internal,
    /// 503: the read models did not reach `Marquee-Min-Position` in time.
    PositionNotReached,
}

impl ProblemCode {
    fn as_str(self) -> &'static str {
        match self {
            ProblemCode::ValidationFailed => "validation_failed",
            ProblemCode::Unauthorized => "unauthorized",
            ProblemCode::Forbidden => "forbidden",
            ProblemCode::NotFound => "not_found",
            ProblemCode::MethodNotAllowed => "method_not_allowed",
            ProblemCode::Internal => "internal",
            ProblemCode::PositionNotReached => "position_not_reached",
        }
    }
}
