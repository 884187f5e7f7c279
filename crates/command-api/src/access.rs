//! Who may do what on the command API.
//!
//! Every route starts with a [`Caller`]: the principal behind the `Authorization` header (see
//! `marquee_auth::access`) and the client's address, already counted against the rate limits.
//! Then one of the checks below:
//!
//! | route family | who |
//! |---|---|
//! | sign-up, sign-in, refresh | anyone (rate-limited per address and per e-mail) |
//! | account (`/v1/me…`), founding an organization | the signed-in user |
//! | members, API tokens of an organization | its owners |
//! | venues, events, ticket types, publish, cancel, capacity, questions, reschedule | owners and organizers of the owning organization |
//! | check-in and its revert | owners, organizers and door staff |
//! | reserving, joining a waitlist | any signed-in user (or an organizer's API token) |
//! | paying, cancelling a registration, claiming or leaving a waitlist place | its holder, or an owner or organizer |
//! | payment webhook, test-gateway settle | the payment provider (signature), no account |
//!
//! Anonymous callers get `401`. Someone outside the owning organization gets `404` for its
//! resources, exactly as if they did not exist (no existence leak); a member whose role does
//! not allow the route gets `403`.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use marquee_auth::{
    AccessError, AuthStore, Authenticator, Directory, Principal, RateLimiter, Vault,
};
use marquee_domain::organization::Role;
use marquee_domain::{OrganizationId, UserId};

use crate::CommandState;
use crate::error::ApiError;

/// Owners and organizers: everything about venues and events.
pub const ORGANIZERS: &[Role] = &[Role::Owner, Role::Organizer];
/// Owners, organizers and door staff: check-in.
pub const DOOR: &[Role] = &[Role::Owner, Role::Organizer, Role::DoorStaff];
/// Owners only: members and tokens.
pub const OWNERS: &[Role] = &[Role::Owner];

/// Requests allowed per second (and burst) before `429`; `0` turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    /// Sign-up and sign-in attempts per client address, per minute.
    pub sign_in_per_minute: u32,
    /// Commands per second per account or API token.
    pub commands_per_second: u32,
    /// Commands per second per client address (anonymous callers included).
    pub commands_per_second_per_address: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            sign_in_per_minute: 20,
            commands_per_second: 50,
            commands_per_second_per_address: 500,
        }
    }
}

/// The command API's security services.
pub struct Auth {
    /// Checks credentials.
    pub authenticator: Authenticator,
    /// Stream owners and roles.
    pub directory: Directory,
    /// Personal data's keys (crypto-shredding).
    pub vault: Vault,
    sign_in: Option<RateLimiter>,
    commands: Option<RateLimiter>,
    commands_per_address: Option<RateLimiter>,
}

impl Auth {
    /// The security services over the auth tables at `url` (the log's database) and the log.
    pub async fn connect(
        url: &str,
        log: std::sync::Arc<dyn marquee_store::EventStore>,
        limits: RateLimits,
    ) -> Result<Self, marquee_auth::AuthError> {
        let store = AuthStore::connect(url).await?;
        let vault = Vault::new(store.clone()).await?;
        let authenticator = Authenticator::new(store).await?;
        let limiter = |per_second: f64, burst: u32| {
            (per_second > 0.0).then(|| RateLimiter::new(per_second, burst.max(1)))
        };
        Ok(Self {
            authenticator,
            directory: Directory::new(log),
            vault,
            sign_in: limiter(
                f64::from(limits.sign_in_per_minute) / 60.0,
                limits.sign_in_per_minute,
            ),
            commands: limiter(
                f64::from(limits.commands_per_second),
                limits.commands_per_second.saturating_mul(2),
            ),
            commands_per_address: limiter(
                f64::from(limits.commands_per_second_per_address),
                limits.commands_per_second_per_address.saturating_mul(2),
            ),
        })
    }

    /// The auth tables.
    pub fn store(&self) -> &AuthStore {
        self.authenticator.store()
    }

    /// Counts a sign-in attempt against `key` (an address or an e-mail address).
    pub fn count_sign_in(&self, key: &str) -> Result<(), ApiError> {
        count(self.sign_in.as_ref(), key)
    }
}

fn count(limiter: Option<&RateLimiter>, key: &str) -> Result<(), ApiError> {
    match limiter {
        None => Ok(()),
        Some(limiter) => limiter
            .check(key, Instant::now())
            .map_err(|wait| ApiError::RateLimited {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            }),
    }
}

/// Who is calling, and from where; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Caller {
    /// The principal behind the credentials.
    pub principal: Principal,
    /// The client's address, when known.
    pub address: Option<IpAddr>,
}

impl Caller {
    /// The signed-in account, or `401`.
    pub fn user(&self) -> Result<UserId, ApiError> {
        match &self.principal {
            Principal::User { user_id, .. } => Ok(*user_id),
            Principal::Anonymous => Err(ApiError::Unauthorized("sign in first")),
            Principal::Token { .. } => Err(ApiError::Forbidden(
                "this needs a signed-in account, not an API token",
            )),
        }
    }

    /// `401` for anonymous callers.
    pub fn authenticated(&self) -> Result<(), ApiError> {
        match self.principal {
            Principal::Anonymous => Err(ApiError::Unauthorized("sign in first")),
            _ => Ok(()),
        }
    }

    /// The actor recorded in facts.
    pub fn actor(&self) -> Option<String> {
        self.principal.actor()
    }
}

impl FromRequestParts<CommandState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &CommandState,
    ) -> Result<Self, Self::Rejection> {
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| address.ip());
        let authorization = match parts.headers.get(header::AUTHORIZATION) {
            None => None,
            Some(value) => Some(
                value
                    .to_str()
                    .map_err(|_| ApiError::Unauthorized("the Authorization header is not text"))?,
            ),
        };
        let principal = state
            .auth
            .authenticator
            .authenticate(authorization, state.engine.now())
            .await
            .map_err(|e| match e {
                AccessError::Unauthorized(why) => ApiError::Unauthorized(why),
                AccessError::Auth(e) => ApiError::Internal(format!("authentication: {e}")),
            })?;
        let auth = &state.auth;
        if let Some(key) = principal.rate_key() {
            count(auth.commands.as_ref(), &key)?;
        }
        if let Some(address) = address {
            count(auth.commands_per_address.as_ref(), &address.to_string())?;
        }
        Ok(Caller { principal, address })
    }
}

/// The roles `caller` holds in the organization owning `stream`, with that organization.
/// `404 resource` when the stream has no owner or the caller is no part of it; `401` for
/// anonymous callers.
pub async fn roles_at(
    state: &CommandState,
    caller: &Caller,
    stream: &str,
    resource: &'static str,
) -> Result<(OrganizationId, BTreeSet<Role>), ApiError> {
    caller.authenticated()?;
    let owner = state
        .auth
        .directory
        .owner(stream)
        .await?
        .ok_or(ApiError::NotFound(resource))?;
    let roles = state.auth.directory.roles(&caller.principal, owner).await?;
    if roles.is_empty() {
        return Err(ApiError::NotFound(resource));
    }
    Ok((owner, roles))
}

/// The owning organization of `stream` when `caller` holds one of `allowed` there: `401`
/// anonymous, `404` outsider (or no such resource), `403` member with another role.
pub async fn authorize(
    state: &CommandState,
    caller: &Caller,
    stream: &str,
    resource: &'static str,
    allowed: &[Role],
) -> Result<OrganizationId, ApiError> {
    let (owner, roles) = roles_at(state, caller, stream, resource).await?;
    if roles.iter().any(|role| allowed.contains(role)) {
        Ok(owner)
    } else {
        Err(ApiError::Forbidden(
            "your role in this organization does not allow this",
        ))
    }
}

/// Whether `caller` holds one of `allowed` in `organization_id` (no error for outsiders).
pub async fn holds(
    state: &CommandState,
    caller: &Caller,
    organization_id: OrganizationId,
    allowed: &[Role],
) -> Result<bool, ApiError> {
    let roles = state
        .auth
        .directory
        .roles(&caller.principal, organization_id)
        .await?;
    Ok(roles.iter().any(|role| allowed.contains(role)))
}

/// A caller on an event's attendee routes (reserve, pay, cancel, waitlist): any signed-in
/// account, or an API token of the owning organization with an organizer's role.
#[derive(Debug, Clone)]
pub struct Visitor {
    /// The organization that owns the event.
    pub organization_id: OrganizationId,
    /// The signed-in account, if any.
    pub user: Option<UserId>,
    /// Whether the caller belongs to the owning organization at all.
    pub member: bool,
    /// Whether the caller is one of its owners or organizers (who may act for any attendee).
    pub organizer: bool,
}

impl Visitor {
    /// Checks `caller` on `event_id`'s attendee routes: `401` anonymous, `404` unknown event (or
    /// an API token of another organization), `403` a token of this one without an organizer
    /// role.
    pub async fn of(
        state: &CommandState,
        caller: &Caller,
        event_id: &marquee_domain::EventId,
    ) -> Result<Self, ApiError> {
        caller.authenticated()?;
        let organization_id = state
            .auth
            .directory
            .owner(&event_id.stream())
            .await?
            .ok_or(ApiError::NotFound("event"))?;
        let roles = state
            .auth
            .directory
            .roles(&caller.principal, organization_id)
            .await?;
        let organizer = roles.iter().any(|r| ORGANIZERS.contains(r));
        if let Principal::Token { .. } = caller.principal {
            if roles.is_empty() {
                return Err(ApiError::NotFound("event"));
            }
            if !organizer {
                return Err(ApiError::Forbidden(
                    "an API token needs an organizer's role for this",
                ));
            }
        }
        Ok(Self {
            organization_id,
            user: caller.principal.user_id(),
            member: !roles.is_empty(),
            organizer,
        })
    }

    /// A draft event does not exist for those outside its organization: the domain's "not on
    /// sale" becomes `404` for them.
    pub fn hide_draft(&self, error: ApiError) -> ApiError {
        match error {
            ApiError::Event(marquee_domain::event::EventError::NotOnSale) if !self.member => {
                ApiError::NotFound("event")
            }
            other => other,
        }
    }

    /// Lets the commands through for the registration's holder and the organizers; to anyone
    /// else the registration does not exist (`404`).
    pub fn holder_guard(
        &self,
        registration_id: marquee_domain::RegistrationId,
    ) -> impl Fn(&marquee_domain::event::Event) -> Result<(), ApiError> + Send + Sync + 'static
    {
        let (user, organizer) = (self.user, self.organizer);
        move |event| {
            let Some(registration) = event.registrations.get(&registration_id) else {
                return Ok(());
            };
            if organizer || (user.is_some() && registration.holder == user) {
                Ok(())
            } else {
                Err(ApiError::NotFound("registration"))
            }
        }
    }

    /// Lets the commands through for the waitlist entry's holder and the organizers; to anyone
    /// else the entry does not exist (`404`).
    pub fn entry_guard(
        &self,
        entry_id: marquee_domain::WaitlistEntryId,
    ) -> impl Fn(&marquee_domain::event::Event) -> Result<(), ApiError> + Send + Sync + 'static
    {
        let (user, organizer) = (self.user, self.organizer);
        move |event| {
            let Some(entry) = event.waitlist.get(&entry_id) else {
                return Ok(());
            };
            if organizer || (user.is_some() && entry.holder == user) {
                Ok(())
            } else {
                Err(ApiError::NotFound("waitlist entry"))
            }
        }
    }
}
