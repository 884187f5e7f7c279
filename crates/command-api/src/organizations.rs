//! `/v1/organizations`: founding one, its members and their roles, and its API tokens.
//!
//! A membership lives in the organization's stream (which decides every authorization) and is
//! mirrored in the member's account stream (so an account can list its organizations); both are
//! written in one atomic append. An API token's secret is shown once, in the answer that makes
//! it; only its hash is stored, and its id, name and roles are recorded as a fact.

use std::collections::BTreeSet;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post, put};
use marquee_auth::{NewApiToken, tokens};
use marquee_domain::organization::{OrganizationCommand, Role};
use marquee_domain::user::UserCommand;
use marquee_domain::{ApiTokenId, OrganizationId, UserId};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::CommandState;
use crate::access::{Caller, OWNERS};
use crate::accounts::auth_error;
use crate::engine::{Answer, CommandContext, OrganizationAggregate, UserAggregate};
use crate::error::ApiError;
use crate::extract::{JsonBody, OptionalJsonBody, RequestMeta, parse_id};
use crate::idempotency::{answer_response, respond};

/// The organization routes.
pub fn router() -> Router<CommandState> {
    Router::new()
        .route("/v1/organizations", post(create))
        .route(
            "/v1/organizations/{organization_id}",
            axum::routing::get(show),
        )
        .route(
            "/v1/organizations/{organization_id}/members",
            post(add_member),
        )
        .route(
            "/v1/organizations/{organization_id}/members/{user_id}",
            put(change_role).delete(remove_member),
        )
        .route(
            "/v1/organizations/{organization_id}/tokens",
            post(create_token).get(list_tokens),
        )
        .route(
            "/v1/organizations/{organization_id}/tokens/{token_id}",
            delete(revoke_token),
        )
}

/// Founds an organization with `owner` as its first owner; its id.
pub async fn found(
    state: &CommandState,
    context: &CommandContext,
    owner: UserId,
    name: &str,
) -> Result<OrganizationId, ApiError> {
    let organization_id = OrganizationId(Uuid::now_v7());
    let mut context = context.clone();
    context.organization = Some(organization_id.to_string());
    state
        .engine
        .execute_two::<OrganizationAggregate, UserAggregate>(
            (
                &organization_id.stream(),
                vec![OrganizationCommand::Create {
                    organization_id,
                    name: name.to_owned(),
                    owner,
                }],
            ),
            (
                &owner.stream(),
                vec![UserCommand::RecordMembership {
                    organization_id,
                    role: Role::Owner,
                }],
            ),
            &context,
            |_, _| Answer {
                status: StatusCode::CREATED,
                body: json!({}),
            },
        )
        .await?;
    Ok(organization_id)
}

/// The organization of the path when `caller` is one of its owners: `404` for outsiders,
/// `403` for members with another role.
async fn as_owner(
    state: &CommandState,
    caller: &Caller,
    raw_id: &str,
) -> Result<OrganizationId, ApiError> {
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
    if !roles.iter().any(|r| OWNERS.contains(r)) {
        return Err(ApiError::Forbidden(
            "only the organization's owners may do this",
        ));
    }
    Ok(organization_id)
}

/// Body of `POST /v1/organizations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
}

#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id))]
async fn create(
    State(state): State<CommandState>,
    caller: Caller,
    meta: RequestMeta,
    body: JsonBody<CreateBody>,
) -> Response {
    let name = body.value.name;
    respond(&state.clone(), &caller.clone(), &meta, &body.raw, |mut context| async move {
        let user_id = caller.user()?;
        context.actor = caller.actor();
        let organization_id = found(&state, &context, user_id, &name).await?;
        Ok(Answer {
            status: StatusCode::CREATED,
            body: json!({ "organization_id": organization_id, "name": name.trim(), "role": Role::Owner }),
        })
    })
    .await
}

/// `GET /v1/organizations/{id}`: name and members, for its members.
#[tracing::instrument(skip_all)]
async fn show(
    State(state): State<CommandState>,
    caller: Caller,
    Path(organization_id): Path<String>,
) -> Response {
    let outcome = async {
        caller.authenticated()?;
        let organization_id = OrganizationId(parse_id(&organization_id, "organization")?);
        let organization = state.auth.directory.organization(organization_id).await?;
        let roles = state
            .auth
            .directory
            .roles(&caller.principal, organization_id)
            .await?;
        if !organization.exists() || roles.is_empty() {
            return Err(ApiError::NotFound("organization"));
        }
        let members: Vec<_> = organization
            .members
            .iter()
            .map(|(user_id, role)| json!({ "user_id": user_id, "role": role }))
            .collect();
        Ok(json!({
            "organization_id": organization_id,
            "name": organization.name,
            "your_roles": roles,
            "members": members,
        }))
    }
    .await;
    match outcome {
        Ok(body) => answer_response(StatusCode::OK, body),
        Err(error) => error.into_response(),
    }
}

/// Body of `POST /v1/organizations/{id}/members`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddMemberBody {
    /// The account's sign-in address.
    email: String,
    role: Role,
}

#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id))]
async fn add_member(
    State(state): State<CommandState>,
    caller: Caller,
    Path(organization_id): Path<String>,
    meta: RequestMeta,
    body: JsonBody<AddMemberBody>,
) -> Response {
    let b = body.value;
    respond(&state.clone(), &caller.clone(), &meta, &body.raw, |mut context| async move {
        let organization_id = as_owner(&state, &caller, &organization_id).await?;
        let (user_id, _) = state
            .auth
            .store()
            .credentials_by_email(&b.email)
            .await
            .map_err(auth_error)?
            .ok_or(ApiError::NotFound("account"))?;
        let user_id = UserId(user_id);
        context.actor = caller.actor();
        context.organization = Some(organization_id.to_string());
        let (_, answer) = state
            .engine
            .execute_two::<OrganizationAggregate, UserAggregate>(
                (
                    &organization_id.stream(),
                    vec![OrganizationCommand::AddMember {
                        user_id,
                        role: b.role,
                    }],
                ),
                (
                    &user_id.stream(),
                    vec![UserCommand::RecordMembership {
                        organization_id,
                        role: b.role,
                    }],
                ),
                &context,
                move |_, _| Answer {
                    status: StatusCode::CREATED,
                    body: json!({ "organization_id": organization_id, "user_id": user_id, "role": b.role }),
                },
            )
            .await?;
        Ok(answer)
    })
    .await
}

/// Body of `PUT /v1/organizations/{id}/members/{user_id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    role: Role,
}

#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id))]
async fn change_role(
    State(state): State<CommandState>,
    caller: Caller,
    Path((organization_id, user_id)): Path<(String, String)>,
    meta: RequestMeta,
    body: JsonBody<RoleBody>,
) -> Response {
    let role = body.value.role;
    respond(&state.clone(), &caller.clone(), &meta, &body.raw, |mut context| async move {
        let organization_id = as_owner(&state, &caller, &organization_id).await?;
        let user_id = UserId(parse_id(&user_id, "member")?);
        context.actor = caller.actor();
        context.organization = Some(organization_id.to_string());
        let (_, answer) = state
            .engine
            .execute_two::<OrganizationAggregate, UserAggregate>(
                (
                    &organization_id.stream(),
                    vec![OrganizationCommand::ChangeRole { user_id, role }],
                ),
                (
                    &user_id.stream(),
                    vec![UserCommand::RecordMembership {
                        organization_id,
                        role,
                    }],
                ),
                &context,
                move |_, _| Answer {
                    status: StatusCode::OK,
                    body: json!({ "organization_id": organization_id, "user_id": user_id, "role": role }),
                },
            )
            .await?;
        Ok(answer)
    })
    .await
}

/// Body of the commands without a body: empty or `{}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyBody {}

#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id))]
async fn remove_member(
    State(state): State<CommandState>,
    caller: Caller,
    Path((organization_id, user_id)): Path<(String, String)>,
    meta: RequestMeta,
    body: OptionalJsonBody<EmptyBody>,
) -> Response {
    respond(&state.clone(), &caller.clone(), &meta, &body.raw, |mut context| async move {
        let organization_id = as_owner(&state, &caller, &organization_id).await?;
        let user_id = UserId(parse_id(&user_id, "member")?);
        context.actor = caller.actor();
        context.organization = Some(organization_id.to_string());
        let (_, answer) = state
            .engine
            .execute_two::<OrganizationAggregate, UserAggregate>(
                (
                    &organization_id.stream(),
                    vec![OrganizationCommand::RemoveMember { user_id }],
                ),
                (
                    &user_id.stream(),
                    vec![UserCommand::RecordDeparture { organization_id }],
                ),
                &context,
                move |_, _| Answer {
                    status: StatusCode::OK,
                    body: json!({ "organization_id": organization_id, "user_id": user_id, "removed": true }),
                },
            )
            .await?;
        Ok(answer)
    })
    .await
}

/// Body of `POST /v1/organizations/{id}/tokens`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    name: String,
    roles: BTreeSet<Role>,
}

/// Makes an API token. Not idempotent by key on purpose: the secret is shown once, and a
/// replayed answer would show it again.
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id))]
async fn create_token(
    State(state): State<CommandState>,
    caller: Caller,
    Path(organization_id): Path<String>,
    meta: RequestMeta,
    body: JsonBody<TokenBody>,
) -> Response {
    let outcome = async {
        let organization_id = as_owner(&state, &caller, &organization_id).await?;
        let created_by = caller.user()?;
        let b = body.value;
        let token_id = ApiTokenId(Uuid::now_v7());
        let context = CommandContext {
            correlation_id: meta.correlation_id,
            actor: caller.actor(),
            organization: Some(organization_id.to_string()),
            idempotency: None,
        };
        // The fact first: it checks the name and roles. The row that makes the token work comes
        // after, so a token never works without its record in the log.
        let roles = b.roles.clone();
        state
            .engine
            .execute::<OrganizationAggregate>(
                &organization_id.stream(),
                vec![OrganizationCommand::CreateApiToken {
                    token_id,
                    name: b.name.clone(),
                    roles: roles.clone(),
                    created_by: Some(created_by),
                }],
                &context,
                |_, _| Answer {
                    status: StatusCode::CREATED,
                    body: json!({}),
                },
            )
            .await?;
        let (token, secret_hash) = tokens::new_api_token(token_id.0);
        state
            .auth
            .store()
            .create_api_token(&NewApiToken {
                token_id: token_id.0,
                organization_id: organization_id.0,
                name: b.name.trim().to_owned(),
                roles: roles.iter().copied().collect(),
                secret_hash,
                created_by: created_by.0,
                created_at: state.engine.now(),
            })
            .await
            .map_err(auth_error)?;
        Ok::<_, ApiError>(json!({
            "token_id": token_id,
            "token": token,
            "name": b.name.trim(),
            "roles": roles,
            "organization_id": organization_id,
        }))
    }
    .await;
    match outcome {
        Ok(body) => answer_response(StatusCode::CREATED, body),
        Err(error) => error.into_response(),
    }
}

#[tracing::instrument(skip_all)]
async fn list_tokens(
    State(state): State<CommandState>,
    caller: Caller,
    Path(organization_id): Path<String>,
) -> Response {
    let outcome = async {
        let organization_id = as_owner(&state, &caller, &organization_id).await?;
        let tokens = state
            .auth
            .store()
            .api_tokens_of(organization_id.0)
            .await
            .map_err(auth_error)?;
        let items: Vec<_> = tokens
            .into_iter()
            .map(|t| {
                json!({
                    "token_id": t.token_id,
                    "name": t.name,
                    "roles": t.roles,
                    "created_by": t.created_by,
                    "created_at": t.created_at,
                    "last_used_at": t.last_used_at,
                    "revoked_at": t.revoked_at,
                })
            })
            .collect();
        Ok::<_, ApiError>(json!({ "items": items }))
    }
    .await;
    match outcome {
        Ok(body) => answer_response(StatusCode::OK, body),
        Err(error) => error.into_response(),
    }
}

#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id))]
async fn revoke_token(
    State(state): State<CommandState>,
    caller: Caller,
    Path((organization_id, token_id)): Path<(String, String)>,
    meta: RequestMeta,
) -> Response {
    let outcome = async {
        let organization_id = as_owner(&state, &caller, &organization_id).await?;
        let token_id = ApiTokenId(parse_id(&token_id, "token")?);
        let record = state
            .auth
            .store()
            .api_token(token_id.0)
            .await
            .map_err(auth_error)?
            .filter(|t| t.organization_id == organization_id.0)
            .ok_or(ApiError::NotFound("token"))?;
        // The row first: the token stops working at once, whatever happens next.
        state
            .auth
            .store()
            .revoke_api_token(record.token_id, state.engine.now())
            .await
            .map_err(auth_error)?;
        let context = CommandContext {
            correlation_id: meta.correlation_id,
            actor: caller.actor(),
            organization: Some(organization_id.to_string()),
            idempotency: None,
        };
        let (_, answer) = state
            .engine
            .execute::<OrganizationAggregate>(
                &organization_id.stream(),
                vec![OrganizationCommand::RevokeApiToken { token_id }],
                &context,
                move |_, _| Answer {
                    status: StatusCode::OK,
                    body: json!({ "token_id": token_id, "revoked": true }),
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
