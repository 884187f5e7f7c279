//! Request extractors whose rejections are our problem+json errors, not axum's plain text.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, header};
use serde::de::DeserializeOwned;
use serde_json::error::Category;
use uuid::Uuid;

use crate::error::ApiError;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON body of type `T` plus the raw bytes, which idempotency hashes.
///
/// Requires `Content-Type: application/json` (415 otherwise), at most [`MAX_BODY_BYTES`] (413),
/// syntactically valid JSON (400 `malformed_json`) of the right shape (422 `validation_failed`;
/// unknown fields are refused by `#[serde(deny_unknown_fields)]` on the body types).
pub struct JsonBody<T> {
    pub value: T,
    pub raw: Bytes,
}

/// Like [`JsonBody`], but an empty body (no Content-Type needed) means `T::default()`. For
/// commands such as `publish` whose body is optional.
pub struct OptionalJsonBody<T> {
    pub value: T,
    pub raw: Bytes,
}

async fn read_body(req: Request) -> Result<(bool, Bytes), ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let essence = v
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            essence == "application/json"
                || (essence.starts_with("application/") && essence.ends_with("+json"))
        })
        .unwrap_or(false);
    let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        })?;
    Ok((is_json, bytes))
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::MalformedJson(e.to_string()),
        Category::Data => ApiError::Validation(e.to_string()),
    })
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (is_json, raw) = read_body(req).await?;
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let value = parse(&raw)?;
        Ok(Self { value, raw })
    }
}

impl<S, T> FromRequest<S> for OptionalJsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Default,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (is_json, raw) = read_body(req).await?;
        if raw.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(Self {
                value: T::default(),
                raw,
            });
        }
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let value = parse(&raw)?;
        Ok(Self { value, raw })
    }
}

/// What every command request carries besides its body.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    /// From a UUID `X-Request-Id` header, else a fresh UUID v7. Becomes the facts' correlation id.
    pub correlation_id: Uuid,
    /// The `Idempotency-Key` header, validated.
    pub idempotency_key: Option<String>,
    /// Method and path, part of the idempotency hash.
    pub method: Method,
    pub path: String,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let correlation_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Uuid::parse_str(v).ok())
            .unwrap_or_else(Uuid::now_v7);
        let idempotency_key = match parts.headers.get("idempotency-key") {
            None => None,
            Some(v) => {
                let key = v.to_str().map_err(|_| ApiError::BadIdempotencyKey)?;
                if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(ApiError::BadIdempotencyKey);
                }
                Some(key.to_owned())
            }
        };
        Ok(Self {
            correlation_id,
            idempotency_key,
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
        })
    }
}

/// A UUID path segment; anything else is a 404 for the named resource, not a 400, because a
/// malformed id names nothing that exists.
pub fn parse_id(raw: &str, resource: &'static str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound(resource))
}
