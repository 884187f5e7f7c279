//! Audit and reporting, straight from the log rather than the read models: a stream's full
//! history, the log as NDJSON, the log live as Server-Sent Events, and an event's state at a past
//! point of the log (`/v1/events/{id}?as_of=`, in [`as_of`]).
//!
//! | route | answers |
//! |---|---|
//! | `GET /v1/streams/{stream}?from_revision=&limit=` | `{ stream, items: [fact…], next_from_revision }`, in revision order |
//! | `GET /v1/log?organization_id=&after=&limit=` | `application/x-ndjson`: one fact per line, in position order |
//! | `GET /v1/log/live?organization_id=&after=` | `text/event-stream`: one event per fact, catch-up then live |
//! | `GET /v1/events/{id}?as_of=<position or RFC 3339 time>` | the event page as it was then |
//!
//! **One fact format everywhere.** A fact is the JSON of [`RecordedFact`] — `position`,
//! `stream`, `revision`, `fact_id`, `fact_type`, `schema_version`, `data`, `metadata`
//! (`correlation_id`, `causation_id`, `actor`, and `organization` when there is one) and
//! `recorded_at` — exactly as the relay publishes it to JetStream and as `marquee export`
//! writes it ([`write_line`]). Facts are shown as stored: personal data that the command side
//! sealed (`"sealed:v1:…"`) stays sealed here.
//!
//! **Who sees what** (see [`crate::access`]). A stream's history: owners and auditors of the
//! organization that owns the stream (an `organization-<id>` stream is owned by that
//! organization), and a `user-<id>` stream only by that user. The log: owners and auditors of the
//! organization named by `organization_id`, and only **the facts whose metadata names that
//! organization** (its venues, events and members, and what its commands caused) — an
//! organization's auditors never see another organization's facts, nor accounts' own streams.
//! There is no installation-wide auditor: the whole, unfiltered log is for operators, through
//! `marquee export`.
//!
//! **Paging `/v1/log`.** The answer is streamed page by page from the log (constant memory,
//! whatever its size) and covers the log up to the position in the `Marquee-Log-Head` header, the
//! head when the request arrived. Without `limit`, or with fewer lines than `limit`, resume with
//! `after=<Marquee-Log-Head>`; with `limit` lines, resume with `after=<last line's position>`.
//! An answer cut off by a failure ends without the newline of its last line (or with a transport
//! error): keep the complete lines and resume after the last of them.
//!
//! **`/v1/log/live`** starts after `Last-Event-ID` (what an `EventSource` sends when it
//! reconnects) or else `after` (default 0: the organization's whole history first), and never
//! ends on its own. Each event: `id:` the position, `event:` the fact type, `data:` the fact's
//! line. A comment line (`: keep-alive`) comes every 15 s when nothing else does. Access is
//! checked when the connection opens.

mod as_of;

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use marquee_domain::{OrganizationId, UserId};
use marquee_store::{EventStore, RecordedFact, StoreError};
use serde::Serialize;
use tracing::instrument;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::access::{AUDIT, authorize, authorize_in, signed_in};
use crate::error::Problem;
use crate::{ApiError, QueryState};

pub(crate) use as_of::event_as_of;

/// Response header of `/v1/log`: the log's head when the request arrived, which the answer
/// covers (unless `limit` cut it short).
pub const LOG_HEAD_HEADER: &str = "marquee-log-head";

/// Facts of a stream's history per page when `limit` is absent.
const DEFAULT_HISTORY_LIMIT: usize = 100;
/// Largest accepted `limit` of a stream's history.
const MAX_HISTORY_LIMIT: usize = 1_000;
/// Facts read from the log per page while streaming `/v1/log`: what it holds in memory at once.
const LOG_PAGE: usize = 1_000;
/// How often `/v1/log/live` sends a comment line when no fact comes, so proxies and clients
/// keep an idle connection open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub(crate) fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .routes(routes!(stream_history))
        .routes(routes!(log))
        .routes(routes!(log_live))
}

/// A fact as the log holds it: the JSON of `RecordedFact`, one format everywhere (stream
/// history, `/v1/log` lines, `/v1/log/live` data, `marquee export`). Personal data the command
/// side sealed (`"sealed:v1:…"`) stays sealed.
#[derive(ToSchema)]
#[allow(
    dead_code,
    reason = "describes `marquee_store::RecordedFact`; never built"
)]
struct Fact {
    /// Place in the global log, from 1, strictly increasing in commit order.
    #[schema(minimum = 1)]
    position: u64,
    /// The stream (aggregate instance) it belongs to, e.g. `event-<uuid>`.
    stream: String,
    /// Place in its stream, from 0.
    revision: u64,
    /// The id it was appended with (UUID v7).
    fact_id: Uuid,
    /// e.g. `RegistrationConfirmed`.
    fact_type: String,
    /// Version of `data`'s shape.
    schema_version: u32,
    /// The payload, as appended.
    #[schema(value_type = Value)]
    data: serde_json::Value,
    metadata: FactMetadata,
    /// When the log stored it (microsecond precision).
    recorded_at: chrono::DateTime<chrono::Utc>,
}

/// Who and what caused a fact.
#[derive(ToSchema)]
#[allow(
    dead_code,
    reason = "describes `marquee_store::FactMetadata`; never built"
)]
struct FactMetadata {
    /// Ties together every fact caused by one request (the request id).
    #[schema(required = true)]
    correlation_id: Option<Uuid>,
    /// The fact or command that directly caused this one.
    #[schema(required = true)]
    causation_id: Option<Uuid>,
    /// Who issued the command (user id, token id, `system`, …).
    #[schema(required = true)]
    actor: Option<String>,
    /// The organization the command acted for, when there is one (absent otherwise).
    #[schema(value_type = String, required = false)]
    organization: Option<String>,
}

/// Appends `fact` to `out` as one NDJSON line: its JSON (see the [module docs](self)) and `\n`.
/// The line format of `/v1/log`, of `/v1/log/live`'s `data:` and of `marquee export`.
pub fn write_line(out: &mut Vec<u8>, fact: &RecordedFact) -> Result<(), serde_json::Error> {
    serde_json::to_writer(&mut *out, fact)?;
    out.push(b'\n');
    Ok(())
}

/// Whether `fact`'s metadata names `organization` (what the log routes filter on).
pub fn belongs_to(fact: &RecordedFact, organization: &str) -> bool {
    fact.metadata.organization.as_deref() == Some(organization)
}

/// One page of a stream's history.
#[derive(Debug, Serialize, ToSchema)]
struct HistoryPage {
    stream: String,
    /// Facts in revision order, as stored.
    #[schema(value_type = Vec<Fact>)]
    items: Vec<RecordedFact>,
    /// Pass as `from_revision` for the next page; `null` on the last page.
    #[schema(required = true)]
    next_from_revision: Option<u64>,
}

/// A stream's full history: its facts with their metadata, in revision order.
///
/// A page at a time. For owners and auditors of the organization owning the stream (an
/// `organization-<id>` stream is owned by that organization); a `user-<id>` stream only for
/// that user. 404 for a stream that does not exist or that the caller may not know of.
#[utoipa::path(
    get,
    path = "/v1/streams/{stream}",
    tag = "audit",
    params(
        ("stream" = String, Path, description = "The stream, e.g. `event-<uuid>`."),
        ("from_revision" = Option<u64>, Query, description = "First revision to show; default 0."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000,
            description = "Facts per page; default 100."),
    ),
    responses(
        (status = 200, description = "A page of the stream's facts.", body = HistoryPage),
        (status = 400, description = "A parameter is unknown, repeated or malformed \
            (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credentials (`unauthorized`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller's role may not read history (`forbidden`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such stream, or not for this caller (`not_found`).",
            body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])),
)]
#[instrument(skip(state, headers, query))]
async fn stream_history(
    State(state): State<QueryState>,
    Path(stream): Path<String>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<HistoryPage>, ApiError> {
    authorize_stream(&state, &headers, &stream).await?;
    let Query(pairs) = query.map_err(|e| ApiError::validation("query", e.body_text()))?;
    let mut from_revision = 0;
    let mut limit = DEFAULT_HISTORY_LIMIT;
    for (field, value) in known_once(pairs, &["from_revision", "limit"])? {
        match field {
            "from_revision" => from_revision = parse_u64(field, &value)?,
            _ => limit = parse_history_limit(&value)?,
        }
    }
    // One more than asked tells whether there is a next page.
    let mut items = state
        .store
        .read_stream(&stream, from_revision, limit + 1)
        .await?;
    if items.is_empty()
        && (from_revision == 0 || state.store.read_stream(&stream, 0, 1).await?.is_empty())
    {
        return Err(ApiError::NotFound("stream"));
    }
    let next_from_revision = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|f| f.revision + 1)
    } else {
        None
    };
    Ok(Json(HistoryPage {
        stream,
        items,
        next_from_revision,
    }))
}

/// Who may read `stream`'s history: see the [module docs](self).
async fn authorize_stream(
    state: &QueryState,
    headers: &HeaderMap,
    stream: &str,
) -> Result<(), ApiError> {
    let user_prefix = format!("{}-", UserId::STREAM_PREFIX);
    let organization_prefix = format!("{}-", OrganizationId::STREAM_PREFIX);
    if let Some(id) = stream.strip_prefix(&user_prefix) {
        // An account's own stream (sign-ups, profile changes, memberships): its owner only.
        let (_, principal) = signed_in(state, headers).await?;
        return match (principal.user_id(), Uuid::parse_str(id)) {
            (Some(user), Ok(id)) if user.0 == id => Ok(()),
            _ => Err(ApiError::NotFound("stream")),
        };
    }
    if let Some(Ok(id)) = stream
        .strip_prefix(&organization_prefix)
        .map(Uuid::parse_str)
    {
        return authorize_in(state, headers, OrganizationId(id), "stream", AUDIT).await;
    }
    authorize(state, headers, stream, "stream", AUDIT).await
}

/// The parameters of `/v1/log` and `/v1/log/live`.
struct LogQuery {
    organization: OrganizationId,
    after: u64,
    limit: Option<u64>,
}

/// Reads `organization_id` (required), `after` and, where `limit_allowed`, `limit`.
fn parse_log_query(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    limit_allowed: bool,
) -> Result<LogQuery, ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError::validation("query", e.body_text()))?;
    let known: &[&'static str] = if limit_allowed {
        &["organization_id", "after", "limit"]
    } else {
        &["organization_id", "after"]
    };
    let mut organization = None;
    let mut after = 0;
    let mut limit = None;
    for (field, value) in known_once(pairs, known)? {
        match field {
            "organization_id" => {
                organization = Some(OrganizationId(
                    Uuid::parse_str(value.trim())
                        .map_err(|_| ApiError::validation(field, "must be a UUID"))?,
                ));
            }
            "after" => after = parse_u64(field, &value)?,
            _ => {
                let n = parse_u64(field, &value)?;
                if n == 0 {
                    return Err(ApiError::validation(field, "must be at least 1"));
                }
                limit = Some(n);
            }
        }
    }
    let organization = organization.ok_or_else(|| {
        ApiError::validation(
            "organization_id",
            "is required: the log is read one organization at a time",
        )
    })?;
    Ok(LogQuery {
        organization,
        after,
        limit,
    })
}

/// An organization's facts as NDJSON, one line per fact, in position order.
///
/// The facts after `after` whose metadata names the organization, up to the log's head when the
/// request arrived (`Marquee-Log-Head`). Without `limit`, or with fewer lines than `limit`,
/// resume with `after=<Marquee-Log-Head>`; with `limit` lines, resume with `after=<last line's
/// position>`. An answer cut off by a failure ends without the newline of its last line: keep
/// the complete lines and resume after the last of them. For owners and auditors of the
/// organization.
#[utoipa::path(
    get,
    path = "/v1/log",
    tag = "audit",
    params(
        ("organization_id" = Uuid, Query, description = "The organization whose facts to read."),
        ("after" = Option<u64>, Query, description = "Only facts after this position; default 0."),
        ("limit" = Option<u64>, Query, minimum = 1, description = "At most this many lines."),
    ),
    responses(
        (status = 200, description = "One fact per line (each line a `Fact`), streamed.",
            body = String, content_type = "application/x-ndjson",
            headers(("Marquee-Log-Head" = u64,
                description = "The log's head when the request arrived, which the answer covers \
                    (unless `limit` cut it short)."))),
        (status = 400, description = "`organization_id` is missing, or a parameter is unknown, \
            repeated or malformed (`validation_failed`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credentials (`unauthorized`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller's role may not read the log (`forbidden`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organization, or not the caller's (`not_found`).",
            body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])),
)]
#[instrument(skip(state, headers, query))]
async fn log(
    State(state): State<QueryState>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let query = parse_log_query(query, true)?;
    authorize_in(&state, &headers, query.organization, "organization", AUDIT).await?;
    let head = state.store.head_position().await?;
    let lines = log_lines(
        state.store.clone(),
        query.organization.to_string(),
        query.after,
        head,
        query.limit,
    );
    let mut response = Body::from_stream(lines).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    headers.insert(LOG_HEAD_HEADER, HeaderValue::from(head));
    Ok(response)
}

/// Where streaming `/v1/log` stands.
struct LogCursor {
    store: Arc<dyn EventStore>,
    organization: String,
    /// The last position read.
    after: u64,
    /// The last position to send.
    head: u64,
    /// Lines still allowed by `limit`.
    remaining: Option<u64>,
    done: bool,
}

/// The log after `after` up to `head`, filtered to `organization`'s facts, as chunks of NDJSON
/// lines: one chunk per page of the log that has any. A failure ends the stream with an error,
/// which aborts the response.
fn log_lines(
    store: Arc<dyn EventStore>,
    organization: String,
    after: u64,
    head: u64,
    limit: Option<u64>,
) -> impl Stream<Item = Result<Bytes, StoreError>> + Send + 'static {
    let cursor = LogCursor {
        store,
        organization,
        after,
        head,
        remaining: limit,
        done: false,
    };
    futures::stream::unfold(cursor, |mut cursor| async move {
        loop {
            if cursor.done || cursor.after >= cursor.head || cursor.remaining == Some(0) {
                return None;
            }
            let page = match cursor.store.read_all(cursor.after, LOG_PAGE).await {
                Ok(page) => page,
                Err(error) => {
                    tracing::error!(%error, after = cursor.after, "reading the log for /v1/log");
                    cursor.done = true;
                    return Some((Err(error), cursor));
                }
            };
            if page.is_empty() {
                return None;
            }
            let mut chunk = Vec::new();
            for fact in &page {
                if fact.position > cursor.head {
                    cursor.done = true;
                    break;
                }
                cursor.after = fact.position;
                if !belongs_to(fact, &cursor.organization) {
                    continue;
                }
                if let Err(error) = write_line(&mut chunk, fact) {
                    // Serializing a fact read from the log cannot fail (string keys only).
                    let error = StoreError::Corrupt(error.to_string());
                    tracing::error!(%error, position = fact.position, "writing /v1/log");
                    cursor.done = true;
                    return Some((Err(error), cursor));
                }
                if let Some(remaining) = cursor.remaining.as_mut() {
                    *remaining -= 1;
                    if *remaining == 0 {
                        break;
                    }
                }
            }
            if !chunk.is_empty() {
                return Some((Ok(Bytes::from(chunk)), cursor));
            }
        }
    })
}

/// An organization's facts as Server-Sent Events: catch-up, then live.
///
/// Starts after `Last-Event-ID` (what an `EventSource` sends when it reconnects) or else
/// `after` (default 0: the organization's whole history first), and never ends on its own. Each
/// event: `id:` the position, `event:` the fact type, `data:` the fact as one line of JSON (a
/// `Fact`). A comment line (`: keep-alive`) comes every 15 s when nothing else does. Access
/// (owners and auditors of the organization) is checked when the connection opens.
#[utoipa::path(
    get,
    path = "/v1/log/live",
    tag = "audit",
    params(
        ("organization_id" = Uuid, Query, description = "The organization whose facts to follow."),
        ("after" = Option<u64>, Query,
            description = "Start after this position (unless `Last-Event-ID` is sent); default 0."),
        ("Last-Event-ID" = Option<u64>, Header,
            description = "The last position received: start after it (overrides `after`)."),
    ),
    responses(
        (status = 200, description = "An endless stream of events, one per fact.",
            body = String, content_type = "text/event-stream"),
        (status = 400, description = "`organization_id` is missing, `Last-Event-ID` is not a \
            position, or a parameter is unknown, repeated or malformed (`validation_failed`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credentials (`unauthorized`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller's role may not read the log (`forbidden`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organization, or not the caller's (`not_found`).",
            body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])),
)]
#[instrument(skip(state, headers, query))]
async fn log_live(
    State(state): State<QueryState>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let query = parse_log_query(query, false)?;
    let after = match headers.get("last-event-id") {
        Some(value) => parse_u64(
            "Last-Event-ID",
            value
                .to_str()
                .map_err(|_| ApiError::validation("Last-Event-ID", "must be a position"))?,
        )?,
        None => query.after,
    };
    authorize_in(&state, &headers, query.organization, "organization", AUDIT).await?;
    let organization = query.organization.to_string();
    let events = state.store.subscribe(after).filter_map(move |fact| {
        let event = match fact {
            Ok(fact) if belongs_to(&fact, &organization) => Some(sse_event(&fact)),
            Ok(_) => None,
            Err(error) => {
                tracing::error!(%error, "following the log for /v1/log/live");
                Some(Err(error))
            }
        };
        std::future::ready(event)
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
        .into_response())
}

/// One fact as an SSE event: `id:` its position, `event:` its type, `data:` its line.
fn sse_event(fact: &RecordedFact) -> Result<Event, StoreError> {
    let data = serde_json::to_string(fact).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut event = Event::default().id(fact.position.to_string());
    // A field value cannot hold a line break; a type with one (a corrupt log) goes unnamed.
    if !fact.fact_type.contains(['\r', '\n']) {
        event = event.event(&fact.fact_type);
    }
    Ok(event.data(data))
}

/// The query's pairs, each checked to be one of `known` and given at most once.
fn known_once(
    pairs: Vec<(String, String)>,
    known: &[&'static str],
) -> Result<Vec<(&'static str, String)>, ApiError> {
    let mut seen: Vec<(&'static str, String)> = Vec::new();
    for (name, value) in pairs {
        let Some(field) = known.iter().find(|k| **k == name) else {
            return Err(ApiError::UnknownParameter(name));
        };
        if seen.iter().any(|(f, _)| f == field) {
            return Err(ApiError::validation(field, "must be given at most once"));
        }
        seen.push((field, value));
    }
    Ok(seen)
}

/// A non-negative integer (a position or a revision).
fn parse_u64(field: &'static str, value: &str) -> Result<u64, ApiError> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::validation(
            field,
            "must be a non-negative integer",
        ));
    }
    value
        .parse()
        .map_err(|_| ApiError::validation(field, "is too large"))
}

fn parse_history_limit(value: &str) -> Result<usize, ApiError> {
    parse_u64("limit", value)
        .ok()
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| (1..=MAX_HISTORY_LIMIT).contains(n))
        .ok_or_else(|| {
            ApiError::validation(
                "limit",
                format!("must be an integer from 1 to {MAX_HISTORY_LIMIT}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use marquee_store::FactMetadata;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_line_is_the_fact_as_json_and_one_newline() {
        let fact = RecordedFact {
            position: 7,
            stream: "event-x".into(),
            revision: 2,
            fact_id: Uuid::now_v7(),
            fact_type: "EventPublished".into(),
            schema_version: 1,
            data: serde_json::json!({ "published_at": "2026-02-01T00:00:00Z" }),
            metadata: FactMetadata {
                organization: Some("org".into()),
                ..FactMetadata::default()
            },
            recorded_at: "2026-02-01T00:00:00.000001Z".parse().expect("time"),
        };
        let mut out = Vec::new();
        write_line(&mut out, &fact).expect("line");
        assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1);
        assert_eq!(out.last(), Some(&b'\n'));
        let back: RecordedFact = serde_json::from_slice(&out).expect("parses back");
        assert_eq!(back, fact);
        assert!(belongs_to(&fact, "org") && !belongs_to(&fact, "other"));
    }

    #[test]
    fn log_parameters_need_an_organization_and_refuse_what_they_do_not_know() {
        let organization = Uuid::now_v7().to_string();
        let query = |list: &[(&str, &str)], limit| {
            parse_log_query(Ok(Query(pairs(list))), limit).map(|q| (q.after, q.limit))
        };
        assert_eq!(
            query(&[("organization_id", &organization)], true).expect("ok"),
            (0, None)
        );
        assert_eq!(
            query(
                &[
                    ("organization_id", &organization),
                    ("after", "5"),
                    ("limit", "2")
                ],
                true
            )
            .expect("ok"),
            (5, Some(2))
        );
        for (list, field, limit) in [
            (vec![("after", "5")], "organization_id", true),
            (vec![("organization_id", "acme")], "organization_id", true),
            (
                vec![("organization_id", organization.as_str()), ("after", "-1")],
                "after",
                true,
            ),
            (
                vec![("organization_id", organization.as_str()), ("limit", "0")],
                "limit",
                true,
            ),
        ] {
            let error = query(&list, limit).expect_err("refused");
            assert!(
                matches!(error, ApiError::Validation { field: f, .. } if f == field),
                "{list:?}: {error}"
            );
        }
        let unknown = query(&[("organization_id", &organization), ("limit", "3")], false)
            .expect_err("live takes no limit");
        assert!(matches!(unknown, ApiError::UnknownParameter(name) if name == "limit"));
    }
}
