//! `/v1/organizations/{id}/webhooks`: the organization's outgoing webhook endpoints — add one
//! (its signing secret is shown once), list them, remove one, send a test ping, and read an
//! endpoint's delivery log. For the organization's owners and organizers (`404` to outsiders,
//! `403` to other roles).
//!
//! Adding and removing are facts of the organization (`WebhookEndpointAdded`, with the URL and
//! the fact types, never the secret); the endpoint's row in the notifier's tables holds the
//! secret, sealed (see `marquee_notifier::webhooks`). As with API tokens, the fact comes first
//! (it checks the URL and the fact types) and the row after it; facts after the one that added
//! the endpoint are delivered to it.

use std::collections::BTreeSet;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use marquee_domain::organization::OrganizationCommand;
use marquee_domain::{OrganizationId, WebhookId};
use marquee_notifier::store::{DeliveryRecord, Endpoint};
use marquee_notifier::{NewEndpoint, Webhooks};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::CommandState;
use crate::access::{Caller, ORGANIZERS};
use crate::engine::{Answer, CommandContext, OrganizationAggregate};
use crate::error::ApiError;
use crate::extract::{JsonBody, RequestMeta, parse_id};
use crate::idempotency::answer_response;
use crate::openapi::{
    BadRequest, BodyErrors, CallerErrors, Conflict, Forbidden, NotFound, Unavailable, Unprocessable,
};
use chrono::{DateTime, Utc};
use utoipa::IntoParams;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Most deliveries one page of the delivery log shows.
const MAX_DELIVERIES: u32 = 200;

/// The webhook routes.
pub fn router() -> OpenApiRouter<CommandState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show, remove))
        .routes(routes!(ping))
        .routes(routes!(deliveries))
}

fn notifier_error(e: marquee_notifier::NotifierError) -> ApiError {
    ApiError::Internal(format!("webhooks: {e}"))
}

/// The organization of the path when `caller` is one of its owners or organizers, and the
/// webhook tables.
async fn as_organizer<'a>(
    state: &'a CommandState,
    caller: &Caller,
    raw_id: &str,
) -> Result<(OrganizationId, &'a Webhooks), ApiError> {
    caller.authenticated()?;
    let organization_id = OrganizationId(parse_id(raw_id, "organization")?);
    let roles = state
        .auth
        .directory
        .roles(&caller.principal, organization_id)
        .await?;
    if roles.is_empty() {
        return Err(ApiError::NotFound("organization"));
    }
    if !roles.iter().any(|r| ORGANIZERS.contains(r)) {
        return Err(ApiError::Forbidden(
            "only the organization's owners and organizers manage its webhooks",
        ));
    }
    let webhooks = state
        .webhooks
        .as_deref()
        .ok_or(ApiError::NotificationsNotConfigured)?;
    Ok((organization_id, webhooks))
}

/// The endpoint of the path, if it belongs to the organization.
async fn endpoint_of(
    webhooks: &Webhooks,
    organization_id: OrganizationId,
    raw_id: &str,
) -> Result<Endpoint, ApiError> {
    let webhook_id = parse_id(raw_id, "webhook")?;
    webhooks
        .get(organization_id.0, webhook_id)
        .await
        .map_err(notifier_error)?
        .ok_or(ApiError::NotFound("webhook"))
}

fn endpoint_json(endpoint: &Endpoint) -> Value {
    json!(WebhookEndpoint {
        webhook_id: endpoint.webhook_id,
        organization_id: endpoint.organization_id,
        url: endpoint.url.clone(),
        fact_types: endpoint.fact_types.clone(),
        status: endpoint.status.clone(),
        disabled_reason: endpoint.disabled_reason.clone(),
        created_by: endpoint.created_by.clone(),
        created_at: endpoint.created_at,
    })
}

fn delivery_json(delivery: &DeliveryRecord) -> Value {
    json!(Delivery {
        delivery_id: delivery.delivery_id,
        fact_id: delivery.fact_id,
        fact_type: delivery.kind.clone(),
        position: delivery.position,
        status: delivery.status.clone(),
        attempts: delivery.attempts,
        last_status: delivery.last_status,
        last_error: delivery.last_error.clone(),
        next_attempt_at: delivery.next_attempt_at,
        created_at: delivery.created_at,
        sent_at: delivery.sent_at,
        attempt_log: delivery
            .attempt_log
            .iter()
            .map(|a| DeliveryAttempt {
                attempt: a.attempt,
                at: a.started_at,
                outcome: a.outcome.clone(),
                status: a.status_code,
                error: a.error.clone(),
            })
            .collect(),
    })
}

/// Body of `POST /v1/organizations/{id}/webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    /// Where deliveries are posted (`http://` or `https://`).
    #[schema(min_length = 1, max_length = 2000)]
    url: String,
    /// Fact types to receive; `["*"]` for every one.
    #[schema(min_items = 1, max_items = 100)]
    fact_types: BTreeSet<String>,
}

/// Adds an endpoint. Not idempotent by key on purpose: the secret is shown once, and a replayed
/// answer would show it again.
#[utoipa::path(
    post,
    path = "/v1/organizations/{organization_id}/webhooks",
    tag = "webhooks",
    params(("organization_id" = Uuid, Path, description = "The organization.")),
    request_body = CreateBody,
    responses((status = 201, description = "The endpoint; its signing `secret` is shown only here.", body = WebhookCreated), BodyErrors, Conflict, CallerErrors, Forbidden, NotFound, Unavailable),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id))]
async fn create(
    State(state): State<CommandState>,
    caller: Caller,
    Path(organization_id): Path<String>,
    meta: RequestMeta,
    body: JsonBody<CreateBody>,
) -> Response {
    let outcome = async {
        let (organization_id, webhooks) = as_organizer(&state, &caller, &organization_id).await?;
        let b = body.value;
        let webhook_id = WebhookId(Uuid::now_v7());
        let context = CommandContext {
            correlation_id: meta.correlation_id,
            actor: caller.actor(),
            organization: Some(organization_id.to_string()),
            idempotency: None,
        };
        let (accepted, _) = state
            .engine
            .execute::<OrganizationAggregate>(
                &organization_id.stream(),
                vec![OrganizationCommand::AddWebhook {
                    webhook_id,
                    url: b.url.clone(),
                    fact_types: b.fact_types.clone(),
                    created_by: caller.principal.user_id(),
                }],
                &context,
                |_, _| Answer {
                    status: StatusCode::CREATED,
                    body: json!({}),
                },
            )
            .await?;
        let (endpoint, secret) = webhooks
            .create(
                NewEndpoint {
                    webhook_id: webhook_id.0,
                    organization_id: organization_id.0,
                    url: b.url.trim().to_owned(),
                    fact_types: b.fact_types.into_iter().collect(),
                    after_position: accepted.position,
                    created_by: caller.actor(),
                },
                state.engine.now(),
            )
            .await
            .map_err(notifier_error)?;
        let mut answer = endpoint_json(&endpoint);
        if let Value::Object(map) = &mut answer {
            map.insert("secret".to_owned(), secret.into());
            map.insert("position".to_owned(), accepted.position.into());
        }
        Ok::<_, ApiError>(answer)
    }
    .await;
    match outcome {
        Ok(body) => answer_response(StatusCode::CREATED, body),
        Err(error) => error.into_response(),
    }
}

/// Lists the organization's webhook endpoints.
#[utoipa::path(
    get,
    path = "/v1/organizations/{organization_id}/webhooks",
    tag = "webhooks",
    params(("organization_id" = Uuid, Path, description = "The organization.")),
    responses((status = 200, description = "The endpoints.", body = WebhookList), CallerErrors, Forbidden, NotFound, Unavailable),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
async fn list(
    State(state): State<CommandState>,
    caller: Caller,
    Path(organization_id): Path<String>,
) -> Response {
    let outcome = async {
        let (organization_id, webhooks) = as_organizer(&state, &caller, &organization_id).await?;
        let items: Vec<Value> = webhooks
            .list(organization_id.0)
            .await
            .map_err(notifier_error)?
            .iter()
            .map(endpoint_json)
            .collect();
        Ok::<_, ApiError>(json!({ "items": items }))
    }
    .await;
    match outcome {
        Ok(body) => answer_response(StatusCode::OK, body),
        Err(error) => error.into_response(),
    }
}

/// One webhook endpoint.
#[utoipa::path(
    get,
    path = "/v1/organizations/{organization_id}/webhooks/{webhook_id}",
    tag = "webhooks",
    params(("organization_id" = Uuid, Path, description = "The organization."), ("webhook_id" = Uuid, Path, description = "The webhook endpoint.")),
    responses((status = 200, description = "The endpoint.", body = WebhookEndpoint), CallerErrors, Forbidden, NotFound, Unavailable),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
async fn show(
    State(state): State<CommandState>,
    caller: Caller,
    Path((organization_id, webhook_id)): Path<(String, String)>,
) -> Response {
    let outcome = async {
        let (organization_id, webhooks) = as_organizer(&state, &caller, &organization_id).await?;
        let endpoint = endpoint_of(webhooks, organization_id, &webhook_id).await?;
        Ok::<_, ApiError>(endpoint_json(&endpoint))
    }
    .await;
    match outcome {
        Ok(body) => answer_response(StatusCode::OK, body),
        Err(error) => error.into_response(),
    }
}

/// Removes a webhook endpoint: nothing more is delivered to it.
#[utoipa::path(
    delete,
    path = "/v1/organizations/{organization_id}/webhooks/{webhook_id}",
    tag = "webhooks",
    params(("organization_id" = Uuid, Path, description = "The organization."), ("webhook_id" = Uuid, Path, description = "The webhook endpoint.")),
    responses((status = 200, description = "The endpoint is removed.", body = WebhookRemoved), BadRequest, Conflict, CallerErrors, Forbidden, NotFound, Unavailable),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id))]
async fn remove(
    State(state): State<CommandState>,
    caller: Caller,
    Path((organization_id, webhook_id)): Path<(String, String)>,
    meta: RequestMeta,
) -> Response {
    let outcome = async {
        let (organization_id, webhooks) = as_organizer(&state, &caller, &organization_id).await?;
        let endpoint = endpoint_of(webhooks, organization_id, &webhook_id).await?;
        // The row first: deliveries stop at once, whatever happens next.
        webhooks
            .remove(endpoint.webhook_id, state.engine.now())
            .await
            .map_err(notifier_error)?;
        let context = CommandContext {
            correlation_id: meta.correlation_id,
            actor: caller.actor(),
            organization: Some(organization_id.to_string()),
            idempotency: None,
        };
        let webhook_id = WebhookId(endpoint.webhook_id);
        let (_, answer) = state
            .engine
            .execute::<OrganizationAggregate>(
                &organization_id.stream(),
                vec![OrganizationCommand::RemoveWebhook { webhook_id }],
                &context,
                move |_, _| Answer {
                    status: StatusCode::OK,
                    body: json!({ "webhook_id": webhook_id, "removed": true }),
                },
            )
            .await?;
        Ok::<_, ApiError>(answer)
    }
    .await;
    match outcome {
        Ok(answer) => answer_response(answer.status, answer.body),
        Err(error) => error.into_response(),
    }
}

/// Queues a signed `ping` to the endpoint: `202` with its delivery id, which shows in the
/// delivery log.
#[utoipa::path(
    post,
    path = "/v1/organizations/{organization_id}/webhooks/{webhook_id}/ping",
    tag = "webhooks",
    params(("organization_id" = Uuid, Path, description = "The organization."), ("webhook_id" = Uuid, Path, description = "The webhook endpoint.")),
    responses((status = 202, description = "The ping is queued.", body = PingQueued), Unprocessable, CallerErrors, Forbidden, NotFound, Unavailable),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
async fn ping(
    State(state): State<CommandState>,
    caller: Caller,
    Path((organization_id, webhook_id)): Path<(String, String)>,
) -> Response {
    let outcome = async {
        let (organization_id, webhooks) = as_organizer(&state, &caller, &organization_id).await?;
        let endpoint = endpoint_of(webhooks, organization_id, &webhook_id).await?;
        if endpoint.status != "active" {
            return Err(ApiError::Validation(format!(
                "the endpoint is {}: nothing is delivered to it",
                endpoint.status
            )));
        }
        let delivery_id = webhooks
            .ping(&endpoint, state.engine.now())
            .await
            .map_err(notifier_error)?;
        Ok::<_, ApiError>(json!(PingQueued {
            webhook_id: endpoint.webhook_id,
            delivery_id,
        }))
    }
    .await;
    match outcome {
        Ok(body) => answer_response(StatusCode::ACCEPTED, body),
        Err(error) => error.into_response(),
    }
}

/// Query of the delivery log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DeliveriesQuery {
    /// Most deliveries returned, newest first (default 50, at most 200).
    #[serde(default)]
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
}

/// The endpoint's delivery log, newest first, with every attempt.
#[utoipa::path(
    get,
    path = "/v1/organizations/{organization_id}/webhooks/{webhook_id}/deliveries",
    tag = "webhooks",
    params(("organization_id" = Uuid, Path, description = "The organization."), ("webhook_id" = Uuid, Path, description = "The webhook endpoint."), DeliveriesQuery),
    responses((status = 200, description = "The deliveries.", body = DeliveryLog), Unprocessable, CallerErrors, Forbidden, NotFound, Unavailable),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
async fn deliveries(
    State(state): State<CommandState>,
    caller: Caller,
    Path((organization_id, webhook_id)): Path<(String, String)>,
    query: Result<Query<DeliveriesQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let outcome = async {
        let (organization_id, webhooks) = as_organizer(&state, &caller, &organization_id).await?;
        let endpoint = endpoint_of(webhooks, organization_id, &webhook_id).await?;
        let Query(query) = query.map_err(|e| ApiError::Validation(e.body_text()))?;
        let limit = query.limit.unwrap_or(50).clamp(1, MAX_DELIVERIES);
        let items: Vec<Value> = webhooks
            .deliveries(endpoint.webhook_id, limit)
            .await
            .map_err(notifier_error)?
            .iter()
            .map(delivery_json)
            .collect();
        Ok::<_, ApiError>(json!({ "webhook_id": endpoint.webhook_id, "items": items }))
    }
    .await;
    match outcome {
        Ok(body) => answer_response(StatusCode::OK, body),
        Err(error) => error.into_response(),
    }
}

/// An outgoing webhook endpoint.
#[derive(Serialize, ToSchema)]
pub struct WebhookEndpoint {
    pub webhook_id: Uuid,
    pub organization_id: Uuid,
    pub url: String,
    pub fact_types: Vec<String>,
    /// `active`, or `disabled` (see `disabled_reason`).
    pub status: String,
    pub disabled_reason: Option<String>,
    /// The actor that added it, e.g. `user:<id>`.
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Answer of `POST /v1/organizations/{organization_id}/webhooks`.
#[derive(ToSchema)]
pub struct WebhookCreated {
    #[serde(flatten)]
    pub endpoint: WebhookEndpoint,
    /// The signing secret (HMAC-SHA256 of each delivery). Shown only here.
    pub secret: String,
    /// Log position of `WebhookEndpointAdded`.
    pub position: u64,
}

/// Answer of `GET /v1/organizations/{organization_id}/webhooks`.
#[derive(ToSchema)]
pub struct WebhookList {
    pub items: Vec<WebhookEndpoint>,
}

/// Answer of `DELETE /v1/organizations/{organization_id}/webhooks/{webhook_id}`.
#[derive(ToSchema)]
pub struct WebhookRemoved {
    pub webhook_id: Uuid,
    pub removed: bool,
    /// Log position of the command's last fact.
    pub position: u64,
}

/// Answer of `POST …/webhooks/{webhook_id}/ping`.
#[derive(Serialize, ToSchema)]
pub struct PingQueued {
    pub webhook_id: Uuid,
    pub delivery_id: Uuid,
}

/// One attempt to deliver.
#[derive(Serialize, ToSchema)]
pub struct DeliveryAttempt {
    pub attempt: u32,
    pub at: DateTime<Utc>,
    pub outcome: String,
    /// The receiver's HTTP status, if it answered.
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// One delivery of a fact (or a ping) to the endpoint.
#[derive(Serialize, ToSchema)]
pub struct Delivery {
    pub delivery_id: Uuid,
    pub fact_id: Uuid,
    pub fact_type: String,
    /// The fact's log position; `null` for a ping.
    pub position: Option<u64>,
    pub status: String,
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub attempt_log: Vec<DeliveryAttempt>,
}

/// Answer of `GET …/webhooks/{webhook_id}/deliveries`.
#[derive(ToSchema)]
pub struct DeliveryLog {
    pub webhook_id: Uuid,
    pub items: Vec<Delivery>,
}
