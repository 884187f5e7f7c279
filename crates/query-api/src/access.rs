//! Who may read what on the query API.
//!
//! | route | who |
//! |---|---|
//! | listing, event page, capacity, health, projections | anyone, no token |
//! | guest list (`/v1/events/{id}/attendees`, JSON and CSV) | owners, organizers and door staff of the event's organization |
//! | an event's analytics (`/v1/events/{id}/analytics`) | owners, organizers and analysts of the event's organization |
//! | my tickets (`/v1/me/tickets`) | any signed-in account, for its own registrations (`401` without an account, API tokens included) |
//! | a stream's history (`/v1/streams/{stream}`) | owners and auditors of the organization owning the stream; a `user-<id>` stream only that user |
//! | the log (`/v1/log`, `/v1/log/live`) | owners and auditors of the organization named by `organization_id` |
//! | an event's past state (`/v1/events/{id}?as_of=`) | owners, organizers and auditors of the event's organization |
//!
//! As on the command API: anonymous callers get `401`, callers outside the owning organization
//! `404` (the event's private data does not exist for them), members with another role `403`.
//! A query API started without [`Access`] refuses every private route (`401`): private data is
//! never served by accident.

use axum::http::{HeaderMap, header};
use marquee_auth::{AccessError, Authenticator, Directory, Principal};
use marquee_domain::OrganizationId;
use marquee_domain::organization::Role;

use crate::{ApiError, QueryState};

/// Owners, organizers and door staff: the guest list.
pub const GUEST_LIST: &[Role] = &[Role::Owner, Role::Organizer, Role::DoorStaff];

/// Owners, organizers and analysts: an event's analytics (aggregates only, no personal data).
pub const ANALYTICS: &[Role] = &[Role::Owner, Role::Organizer, Role::Analyst];

/// Owners and auditors: a stream's full history and the log.
pub const AUDIT: &[Role] = &[Role::Owner, Role::Auditor];

/// Owners, organizers and auditors: an event's state at a past point of the log (drafts
/// included).
pub const HISTORY: &[Role] = &[Role::Owner, Role::Organizer, Role::Auditor];

/// What the query API checks credentials and roles with.
pub struct Access {
    /// Checks credentials (the same tables and signing key as the command API).
    pub authenticator: Authenticator,
    /// Stream owners and roles, from the log.
    pub directory: Directory,
}

/// The principal behind the request's `Authorization` header.
pub(crate) async fn principal(
    state: &QueryState,
    headers: &HeaderMap,
) -> Result<Principal, ApiError> {
    let access = state
        .access
        .as_ref()
        .ok_or(ApiError::Unauthorized("this route needs credentials"))?;
    let authorization = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| ApiError::Unauthorized("the Authorization header is not text"))?,
        ),
    };
    access
        .authenticator
        .authenticate(authorization, chrono::Utc::now())
        .await
        .map_err(|e| match e {
            AccessError::Unauthorized(why) => ApiError::Unauthorized(why),
            AccessError::Auth(e) => ApiError::Internal(format!("authentication: {e}")),
        })
}

/// Passes when the caller holds one of `allowed` in the organization owning `stream`; see the
/// [module docs](self) for the refusals.
pub async fn authorize(
    state: &QueryState,
    headers: &HeaderMap,
    stream: &str,
    resource: &'static str,
    allowed: &[Role],
) -> Result<(), ApiError> {
    let (access, principal) = signed_in(state, headers).await?;
    let owner = access
        .directory
        .owner(stream)
        .await?
        .ok_or(ApiError::NotFound(resource))?;
    check_roles(access, &principal, owner, resource, allowed).await
}

/// Passes when the caller holds one of `allowed` in `organization`; refused as
/// [`authorize`] refuses (`404` for a caller outside it, and for an organization that does not
/// exist).
pub async fn authorize_in(
    state: &QueryState,
    headers: &HeaderMap,
    organization: OrganizationId,
    resource: &'static str,
    allowed: &[Role],
) -> Result<(), ApiError> {
    let (access, principal) = signed_in(state, headers).await?;
    check_roles(access, &principal, organization, resource, allowed).await
}

/// The access checks and the caller, who must not be anonymous (`401`).
pub(crate) async fn signed_in<'a>(
    state: &'a QueryState,
    headers: &HeaderMap,
) -> Result<(&'a Access, Principal), ApiError> {
    let principal = principal(state, headers).await?;
    if principal == Principal::Anonymous {
        return Err(ApiError::Unauthorized("sign in first"));
    }
    let Some(access) = state.access.as_deref() else {
        return Err(ApiError::Unauthorized("this route needs credentials"));
    };
    Ok((access, principal))
}

async fn check_roles(
    access: &Access,
    principal: &Principal,
    organization: OrganizationId,
    resource: &'static str,
    allowed: &[Role],
) -> Result<(), ApiError> {
    let roles = access.directory.roles(principal, organization).await?;
    if roles.is_empty() {
        return Err(ApiError::NotFound(resource));
    }
    if roles.iter().any(|role| allowed.contains(role)) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "your role in this organization does not allow this",
        ))
    }
}
