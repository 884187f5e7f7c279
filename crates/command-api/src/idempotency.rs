//! `Idempotency-Key`: a repeated command returns its first answer and appends nothing.
//!
//! - same key, same request (method, path, canonical JSON body) → the first answer, replayed,
//!   with `Idempotent-Replayed: true`;
//! - same key, different request → 422 `idempotency_key_reused`;
//! - same key while the first is still running in this process → 409 `idempotency_key_in_flight`.
//!
//! An accepted command's answer is stored in the same transaction as its facts, so a crash can
//! never leave facts without their remembered answer (or the reverse). A refused command (4xx)
//! appended nothing; its answer is stored afterwards. Server errors are not remembered: the
//! client should retry them.
//!
//! A remembered answer holds no personal data in plaintext: the engine seals it with the facts
//! (the check-in answer names the attendee), and a replay opens it — an erased person's data
//! replays as `[erased]` (see [`crate::personal`]).

use std::collections::HashSet;
use std::future::Future;
use std::sync::Mutex;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use marquee_store::{IdempotencyWrite, IdempotentResponse, StoreError};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::access::Caller;
use crate::engine::{Answer, CommandContext};
use crate::error::ApiError;
use crate::extract::RequestMeta;
use crate::{CommandState, POSITION_HEADER};

/// Keys whose first request is still being processed in this process.
#[derive(Default)]
pub struct InFlight {
    keys: Mutex<HashSet<String>>,
}

/// Removes a key from [`InFlight`] when the request finishes, however it finishes.
struct InFlightGuard<'a> {
    owner: &'a InFlight,
    key: String,
}

impl InFlight {
    fn enter(&self, key: &str) -> Option<InFlightGuard<'_>> {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.insert(key.to_owned()).then(|| InFlightGuard {
            owner: self,
            key: key.to_owned(),
        })
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        let mut keys = self.owner.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.remove(&self.key);
    }
}

/// Hash of what makes two requests "the same": method, path and the body as canonical JSON
/// (so key order and white space do not matter).
fn request_hash(meta: &RequestMeta, raw: &[u8]) -> String {
    let canonical = serde_json::from_slice::<Value>(raw)
        .ok()
        .and_then(|v| serde_json::to_vec(&v).ok())
        .unwrap_or_else(|| raw.to_vec());
    let mut hasher = Sha256::new();
    hasher.update(meta.method.as_str().as_bytes());
    hasher.update(b"\n");
    hasher.update(meta.path.as_bytes());
    hasher.update(b"\n");
    hasher.update(&canonical);
    hex::encode(hasher.finalize())
}

/// Runs a command with idempotency around it and turns its outcome into the HTTP answer.
///
/// The caller's actor is recorded in the context, and an idempotency key belongs to the caller
/// who sent it: the same key from someone else is a different key (no one replays another's
/// answer).
pub async fn respond<Fut>(
    state: &CommandState,
    caller: &Caller,
    meta: &RequestMeta,
    raw: &[u8],
    run: impl FnOnce(CommandContext) -> Fut,
) -> Response
where
    Fut: Future<Output = Result<Answer, ApiError>>,
{
    let mut context = CommandContext {
        correlation_id: meta.correlation_id,
        actor: caller.actor(),
        organization: None,
        idempotency: None,
    };
    let Some(key) = meta.idempotency_key.clone() else {
        return into_response(run(context).await);
    };
    let key = format!(
        "{}:{key}",
        caller.actor().unwrap_or_else(|| "anonymous".into())
    );
    let hash = request_hash(meta, raw);
    let Some(_guard) = state.in_flight.enter(&key) else {
        return ApiError::IdempotencyInFlight.into_response();
    };
    match state.engine.store().idempotency_get(&key).await {
        Ok(Some(first)) if first.request_hash == hash => return replay(state, first).await,
        Ok(Some(_)) => return ApiError::IdempotencyKeyReused.into_response(),
        Ok(None) => {}
        Err(e) => return ApiError::from(e).into_response(),
    }
    context.idempotency = Some((key.clone(), hash.clone()));
    let outcome = run(context).await;
    if let Err(ApiError::Store(StoreError::IdempotencyKeyTaken { .. })) = &outcome {
        // Another process committed the same key first: its answer is the answer.
        return match state.engine.store().idempotency_get(&key).await {
            Ok(Some(first)) if first.request_hash == hash => replay(state, first).await,
            Ok(Some(_)) => ApiError::IdempotencyKeyReused.into_response(),
            Ok(None) => ApiError::IdempotencyInFlight.into_response(),
            Err(e) => ApiError::from(e).into_response(),
        };
    }
    if let Err(error) = &outcome
        && error.status().is_client_error()
    {
        let response = error_body(error);
        let write = IdempotencyWrite {
            key,
            response: IdempotentResponse {
                request_hash: hash,
                status: error.status().as_u16(),
                body: response,
                created_at: state.engine.now(),
            },
        };
        if let Err(e) = state.engine.store().idempotency_put(write).await {
            tracing::warn!(error = %e, "could not remember a refused command's answer");
        }
    }
    into_response(outcome)
}

fn error_body(error: &ApiError) -> Value {
    let (_, body) = error.problem_body();
    body
}

fn into_response(outcome: Result<Answer, ApiError>) -> Response {
    match outcome {
        Ok(answer) => answer_response(answer.status, answer.body),
        Err(error) => error.into_response(),
    }
}

/// An accepted command's answer: JSON body plus the `Marquee-Position` header taken from its
/// `position`. An accepted command can still answer 4xx (a declined payment was recorded, but
/// the client's request did not succeed): such a body is a problem+json document.
pub fn answer_response(status: StatusCode, body: Value) -> Response {
    let position = body.get("position").and_then(Value::as_u64);
    let mut response = (status, axum::Json(body)).into_response();
    if status.is_client_error() || status.is_server_error() {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
    }
    if let Some(position) = position {
        response
            .headers_mut()
            .insert(POSITION_HEADER, HeaderValue::from(position));
    }
    response
}

async fn replay(state: &CommandState, first: IdempotentResponse) -> Response {
    let status = StatusCode::from_u16(first.status).unwrap_or(StatusCode::OK);
    let mut body = first.body;
    if let Err(e) = state.engine.open_personal(&mut body).await {
        return e.into_response();
    }
    let mut response = answer_response(status, body);
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}
