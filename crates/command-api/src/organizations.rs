//! `/v1/organizations`: founding one, its members and their roles, and its API tokens.
//!
//! A membership lives in the organization's stream (which decides every authorization) and is
//! mirrored in the member's account stream (so an account can list its organizations); both are
//! written in one atomic append. An API token's secret is shown once, in the answer that makes
//! it; only its hash is stored, and its id, name and roles are recorded as a fact.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use marquee_auth::{NewApiToken, tokens};
use marquee_domain::organization::{OrganizationCommand, Role};
use marquee_domain::user::UserCommand;
use marquee_domain::{ApiTokenId, OrganizationId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::CommandState;
use crate::access::{Caller, OWNERS};
use crate::accounts::auth_error;
use crate::engine::{Answer, CommandContext, OrganizationAggregate, UserAggregate};
use crate::error::ApiError;
use crate::extract::{JsonBody, OptionalJsonBody, RequestMeta, parse_id};
use crate::idempotency::{answer_response, respond};
use crate::openapi::schemas::Role as RoleSchema;
use crate::openapi::{
    BadRequest, BodyErrors, CallerErrors, Conflict, Forbidden, IdempotencyKey, NotFound,
};
use chrono::{DateTime, Utc};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The organization routes.
pub fn router() -> OpenApiRouter<CommandState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(show))
        .routes(routes!(add_member))
        .routes(routes!(change_role, remove_member))
        .routes(routes!(create_token, list_tokens))
        .routes(routes!(revoke_token))
}

/// Founds an organization with `owner` as its first owner; its id.
pub async fn found(
    state: &CommandState,
    context: &CommandContext,
    owner: UserId,
    name: &str,
) -> Result<OrganizationId, ApiError> {
    founding(state, context, owner, name)
        .await
        .map(|(organization_id, _)| organization_id)
}

/// [`found`], with the answer to the founding request: the one remembered under the request's
/// idempotency key, so that a replay answers the same.
async fn founding(
    state: &CommandState,
    context: &CommandContext,
    owner: UserId,
    name: &str,
) -> Result<(OrganizationId, Answer), ApiError> {
    let organization_id = OrganizationId(Uuid::now_v7());
    let mut context = context.clone();
    context.organization = Some(organization_id.to_string());
    let (_, answer) = state
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
            move |_, organization| Answer {
                status: StatusCode::CREATED,
                body: json!({
                    "organization_id": organization_id,
                    "name": organization.name,
                    "role": Role::Owner,
                }),
            },
        )
        .await?;
    Ok((organization_id, answer))
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
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    #[schema(min_length = 1, max_length = 200)]
    name: String,
}

/// Founds an organization with the signed-in account as its first owner.
#[utoipa::path(
    post,
    path = "/v1/organizations",
    tag = "organizations",
    params(IdempotencyKey),
    request_body = CreateBody,
    responses((status = 201, description = "The organization was founded.", body = OrganizationFounded), BodyErrors, CallerErrors, Conflict),
    security(("bearer" = [])),
)]
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id))]
async fn create(
    State(state): State<CommandState>,
    caller: Caller,
    meta: RequestMeta,
    body: JsonBody<CreateBody>,
) -> Response {
    let name = body.value.name;
    respond(
        &state.clone(),
        &caller.clone(),
        &meta,
        &body.raw,
        |mut context| async move {
            let user_id = caller.user()?;
            context.actor = caller.actor();
            let (_, answer) = founding(&state, &context, user_id, &name).await?;
            Ok(answer)
        },
    )
    .await
}

/// `GET /v1/organizations/{id}`: name and members, for its members.
#[utoipa::path(
    get,
    path = "/v1/organizations/{organization_id}",
    tag = "organizations",
    params(("organization_id" = Uuid, Path, description = "The organization.")),
    responses((status = 200, description = "The organization.", body = OrganizationView), CallerErrors, NotFound),
    security(("bearer" = [])),
)]
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
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AddMemberBody {
    /// The account's sign-in address.
    email: String,
    #[schema(value_type = RoleSchema)]
    role: Role,
}

/// Adds an account (by its sign-in address) as a member with a role. Owners only.
#[utoipa::path(
    post,
    path = "/v1/organizations/{organization_id}/members",
    tag = "organizations",
    params(("organization_id" = Uuid, Path, description = "The organization."), IdempotencyKey),
    request_body = AddMemberBody,
    responses((status = 201, description = "The account is a member.", body = MemberRole), BodyErrors, CallerErrors, Forbidden, NotFound, Conflict),
    security(("bearer" = [])),
)]
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
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    #[schema(value_type = RoleSchema)]
    role: Role,
}

/// Changes a member's role. Owners only; the last owner stays an owner (`409 last_owner`).
#[utoipa::path(
    put,
    path = "/v1/organizations/{organization_id}/members/{user_id}",
    tag = "organizations",
    params(("organization_id" = Uuid, Path, description = "The organization."), ("user_id" = Uuid, Path, description = "The member's account."), IdempotencyKey),
    request_body = RoleBody,
    responses((status = 200, description = "The member's role now.", body = MemberRole), BodyErrors, CallerErrors, Forbidden, NotFound, Conflict),
    security(("bearer" = [])),
)]
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
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct EmptyBody {}

/// Removes a member. Owners only; the last owner stays (`409 last_owner`).
#[utoipa::path(
    delete,
    path = "/v1/organizations/{organization_id}/members/{user_id}",
    tag = "organizations",
    params(("organization_id" = Uuid, Path, description = "The organization."), ("user_id" = Uuid, Path, description = "The member's account."), IdempotencyKey),
    request_body = Option<EmptyBody>,
    responses((status = 200, description = "The member was removed.", body = MemberRemoved), BodyErrors, CallerErrors, Forbidden, NotFound, Conflict),
    security(("bearer" = [])),
)]
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
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// At least one; never `owner`.
    #[schema(value_type = Vec<RoleSchema>, min_items = 1)]
    roles: BTreeSet<Role>,
}

/// Makes an API token. Not idempotent by key on purpose: the secret is shown once, and a
/// replayed answer would show it again.
#[utoipa::path(
    post,
    path = "/v1/organizations/{organization_id}/tokens",
    tag = "organizations",
    params(("organization_id" = Uuid, Path, description = "The organization.")),
    request_body = TokenBody,
    responses((status = 201, description = "The token; its secret `token` is shown only here.", body = TokenCreated), BodyErrors, CallerErrors, Forbidden, NotFound, Conflict),
    security(("bearer" = [])),
)]
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

/// Lists the organization's API tokens (never their secrets). Owners only.
#[utoipa::path(
    get,
    path = "/v1/organizations/{organization_id}/tokens",
    tag = "organizations",
    params(("organization_id" = Uuid, Path, description = "The organization.")),
    responses((status = 200, description = "The tokens, revoked ones included.", body = TokenList), CallerErrors, Forbidden, NotFound),
    security(("bearer" = [])),
)]
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
        let items = tokens
            .into_iter()
            .map(|t| TokenItem {
                token_id: t.token_id,
                name: t.name,
                roles: t.roles,
                created_by: t.created_by,
                created_at: t.created_at,
                last_used_at: t.last_used_at,
                revoked_at: t.revoked_at,
            })
            .collect();
        Ok::<_, ApiError>(json!(TokenList { items }))
    }
    .await;
    match outcome {
        Ok(body) => answer_response(StatusCode::OK, body),
        Err(error) => error.into_response(),
    }
}

/// Revokes an API token: it stops working at once. Owners only.
#[utoipa::path(
    delete,
    path = "/v1/organizations/{organization_id}/tokens/{token_id}",
    tag = "organizations",
    params(("organization_id" = Uuid, Path, description = "The organization."), ("token_id" = Uuid, Path, description = "The token.")),
    responses((status = 200, description = "The token is revoked.", body = TokenRevoked), BadRequest, CallerErrors, Forbidden, NotFound, Conflict),
    security(("bearer" = [])),
)]
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

/// Answer of `POST /v1/organizations`.
#[derive(ToSchema)]
pub struct OrganizationFounded {
    pub organization_id: Uuid,
    pub name: String,
    /// Always `owner`.
    pub role: RoleSchema,
    /// Log position of the command's last fact.
    pub position: u64,
}

/// A member of an organization.
#[derive(ToSchema)]
pub struct Member {
    pub user_id: Uuid,
    pub role: RoleSchema,
}

/// Answer of `GET /v1/organizations/{organization_id}`.
#[derive(ToSchema)]
pub struct OrganizationView {
    pub organization_id: Uuid,
    pub name: String,
    /// The caller's roles here.
    pub your_roles: Vec<RoleSchema>,
    pub members: Vec<Member>,
}

/// Answer of adding a member or changing a member's role.
#[derive(ToSchema)]
pub struct MemberRole {
    pub organization_id: Uuid,
    pub user_id: Uuid,
    pub role: RoleSchema,
    /// Log position of the command's last fact.
    pub position: u64,
}

/// Answer of `DELETE /v1/organizations/{organization_id}/members/{user_id}`.
#[derive(ToSchema)]
pub struct MemberRemoved {
    pub organization_id: Uuid,
    pub user_id: Uuid,
    pub removed: bool,
    /// Log position of the command's last fact.
    pub position: u64,
}

/// Answer of `POST /v1/organizations/{organization_id}/tokens`.
#[derive(ToSchema)]
pub struct TokenCreated {
    pub token_id: Uuid,
    /// The secret (`mqt_…`): send it as `Authorization: Bearer …`. Shown only here.
    pub token: String,
    pub name: String,
    pub roles: Vec<RoleSchema>,
    pub organization_id: Uuid,
}

/// An API token, without its secret.
#[derive(Serialize, ToSchema)]
pub struct TokenItem {
    pub token_id: Uuid,
    pub name: String,
    #[schema(value_type = Vec<RoleSchema>)]
    pub roles: Vec<Role>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Answer of `GET /v1/organizations/{organization_id}/tokens`.
#[derive(Serialize, ToSchema)]
pub struct TokenList {
    pub items: Vec<TokenItem>,
}

/// Answer of `DELETE /v1/organizations/{organization_id}/tokens/{token_id}`.
#[derive(ToSchema)]
pub struct TokenRevoked {
    pub token_id: Uuid,
    pub revoked: bool,
    /// Log position of the command's last fact.
    pub position: u64,
}
