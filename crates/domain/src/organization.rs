//! The organization aggregate: who owns venues and events, its members with their roles, and its
//! API tokens. Stream `organization-<uuid>`.
//!
//! Which organization a venue or event belongs to is recorded in the metadata of every fact
//! of that venue or event (`organization`), by the command side, from the organization the
//! command was authorized for; the venue and event aggregates need not know.
//!
//! An API token's secret never appears here: only its id, name and roles (`marquee-auth` keeps
//! the secret's hash). Likewise a webhook endpoint: its URL and the fact types it receives are
//! facts, its signing secret is kept by the notifier (sealed), never in the log.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::event::MAX_SHORT_TEXT;
use crate::{ApiTokenId, FactCodec, OrganizationId, Timestamp, UserId, WebhookId};

/// Version of [`Organization`]'s serialized shape, for snapshots. 2: webhook endpoints.
pub const STATE_SCHEMA_VERSION: u32 = 2;

/// Longest accepted webhook URL, in characters.
pub const MAX_WEBHOOK_URL: usize = 2_000;
/// Most fact types one webhook endpoint may name.
pub const MAX_WEBHOOK_FACT_TYPES: usize = 100;
/// Most live webhook endpoints one organization may have.
pub const MAX_WEBHOOKS: usize = 20;
/// The fact type a webhook endpoint names to receive every fact of its organization.
pub const EVERY_FACT_TYPE: &str = "*";

/// The facts a webhook endpoint may ask for: every fact of the aggregates an organization owns
/// (venues, events and the organization itself). Account facts are nobody else's business.
pub const WEBHOOK_FACT_TYPES: &[&str] = &[
    "VenueCreated",
    "VenueRenamed",
    "VenueCapacityChanged",
    "EventBooked",
    "EventReleased",
    "EventDrafted",
    "EventDetailsUpdated",
    "TicketTypeAdded",
    "EventPublished",
    "EventCancelled",
    "EventCapacityChanged",
    "RegistrationConfirmed",
    "RegistrationCancelled",
    "EventPolicyChanged",
    "RegistrationQuestionsSet",
    "EventRescheduled",
    "SeatsHeld",
    "AnswersGiven",
    "PaymentPending",
    "PaymentDeclined",
    "PaymentReceived",
    "HoldConfirmed",
    "HoldExpired",
    "RefundDue",
    "RefundCompleted",
    "WaitlistJoined",
    "WaitlistOfferMade",
    "WaitlistOfferExpired",
    "WaitlistOfferClaimed",
    "WaitlistLeft",
    "TicketCheckedIn",
    "CheckInReverted",
    "RegistrationHolderRecorded",
    "WaitlistHolderRecorded",
    "ReminderScheduled",
    "ReminderDue",
    "OrganizationCreated",
    "OrganizationRenamed",
    "MemberAdded",
    "MemberRoleChanged",
    "MemberRemoved",
    "ApiTokenCreated",
    "ApiTokenRevoked",
    "WebhookEndpointAdded",
    "WebhookEndpointRemoved",
];

/// What a member (or an API token) may do inside an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including members and tokens.
    Owner,
    /// Venues, events, ticket types, registrations, guest lists and check-in.
    Organizer,
    /// Check-in and the guest list only.
    DoorStaff,
    /// Analytics only.
    Analyst,
    /// History and the log only.
    Auditor,
}

impl Role {
    /// Every role, for matrices and help texts.
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Organizer,
        Role::DoorStaff,
        Role::Analyst,
        Role::Auditor,
    ];

    /// The name used in the API, e.g. `door_staff`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Organizer => "organizer",
            Role::DoorStaff => "door_staff",
            Role::Analyst => "analyst",
            Role::Auditor => "auditor",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}"))
    }
}

/// An API token as the organization knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// Shown in listings, e.g. `box office integration`.
    pub name: String,
    /// What it may do.
    pub roles: BTreeSet<Role>,
    /// Who made it.
    pub created_by: Option<UserId>,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// What is known about an organization. `Organization::default()` is "no such organization".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    /// `None` until `OrganizationCreated`.
    pub id: Option<OrganizationId>,
    /// Display name.
    pub name: String,
    /// Members and their role.
    pub members: BTreeMap<UserId, Role>,
    /// API tokens ever made, by id.
    pub tokens: BTreeMap<ApiTokenId, ApiToken>,
    /// Webhook endpoints ever added, by id.
    #[serde(default)]
    pub webhooks: BTreeMap<WebhookId, WebhookEndpoint>,
}

/// A webhook endpoint as the organization knows it (its secret is the notifier's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    /// Where deliveries are posted.
    pub url: String,
    /// The fact types it receives; [`EVERY_FACT_TYPE`] for all.
    pub fact_types: BTreeSet<String>,
    /// Whether it was removed.
    pub removed: bool,
}

impl Organization {
    /// True once the organization exists.
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }

    /// The role of `user`, if a member.
    pub fn role_of(&self, user: UserId) -> Option<Role> {
        self.members.get(&user).copied()
    }

    fn owners(&self) -> usize {
        self.members.values().filter(|r| **r == Role::Owner).count()
    }

    /// Roughly the bytes this state occupies.
    pub fn approximate_size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.name.len()
            + self.members.len() * 48
            + self
                .tokens
                .values()
                .map(|t| 96 + t.name.len())
                .sum::<usize>()
    }
}

/// A request to change an organization. `by` is the member acting, where it matters.
#[derive(Debug, Clone, PartialEq)]
pub enum OrganizationCommand {
    /// Found an organization with its first owner.
    Create {
        organization_id: OrganizationId,
        name: String,
        owner: UserId,
    },
    /// Give it a new name.
    Rename { name: String },
    /// Add a member with a role.
    AddMember { user_id: UserId, role: Role },
    /// Change a member's role; the last owner cannot be demoted.
    ChangeRole { user_id: UserId, role: Role },
    /// Remove a member; the last owner cannot be removed.
    RemoveMember { user_id: UserId },
    /// Make an API token with these roles (not `owner`: tokens are for integrations, not for
    /// running the organization).
    CreateApiToken {
        token_id: ApiTokenId,
        name: String,
        roles: BTreeSet<Role>,
        created_by: Option<UserId>,
    },
    /// Revoke an API token.
    RevokeApiToken { token_id: ApiTokenId },
    /// Add a webhook endpoint receiving the organization's facts of `fact_types`.
    AddWebhook {
        webhook_id: WebhookId,
        url: String,
        fact_types: BTreeSet<String>,
        created_by: Option<UserId>,
    },
    /// Remove a webhook endpoint: nothing more is delivered to it.
    RemoveWebhook { webhook_id: WebhookId },
}

/// Facts of the organization aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum OrganizationFact {
    /// An organization was founded; `owner` is its first member.
    OrganizationCreated {
        organization_id: OrganizationId,
        name: String,
        owner: UserId,
        created_at: Timestamp,
    },
    /// It was renamed.
    OrganizationRenamed { name: String },
    /// A member joined with a role.
    MemberAdded { user_id: UserId, role: Role },
    /// A member's role changed.
    MemberRoleChanged { user_id: UserId, role: Role },
    /// A member left.
    MemberRemoved { user_id: UserId },
    /// An API token was made (its secret is never recorded).
    ApiTokenCreated {
        token_id: ApiTokenId,
        name: String,
        roles: BTreeSet<Role>,
        created_by: Option<UserId>,
        created_at: Timestamp,
    },
    /// An API token was revoked.
    ApiTokenRevoked {
        token_id: ApiTokenId,
        revoked_at: Timestamp,
    },
    /// A webhook endpoint was added (its signing secret is never recorded).
    WebhookEndpointAdded {
        webhook_id: WebhookId,
        url: String,
        fact_types: BTreeSet<String>,
        created_by: Option<UserId>,
        created_at: Timestamp,
    },
    /// A webhook endpoint was removed.
    WebhookEndpointRemoved {
        webhook_id: WebhookId,
        removed_at: Timestamp,
    },
}

impl FactCodec for OrganizationFact {
    const AGGREGATE: &'static str = "organization";

    fn schema_version(_fact_type: &str) -> u32 {
        1
    }
}

/// Why an organization command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrganizationError {
    /// A field failed validation (`validation_failed`).
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// `Create` for an id that exists (`conflict`).
    #[error("organization already exists")]
    AlreadyExists,
    /// Any other command for an organization that does not exist (`not_found`).
    #[error("organization not found")]
    NotFound,
    /// Adding someone who is already a member (`conflict`).
    #[error("already a member")]
    AlreadyMember,
    /// Changing or removing someone who is not a member (`not_found`).
    #[error("not a member")]
    NotAMember,
    /// The organization would be left without an owner (`last_owner`).
    #[error("an organization keeps at least one owner")]
    LastOwner,
    /// No such API token (`not_found`).
    #[error("API token not found")]
    TokenNotFound,
    /// No such webhook endpoint (`not_found`).
    #[error("webhook endpoint not found")]
    WebhookNotFound,
}

fn invalid(field: &'static str, message: impl Into<String>) -> OrganizationError {
    OrganizationError::Invalid {
        field,
        message: message.into(),
    }
}

fn check_name(field: &'static str, name: &str) -> Result<String, OrganizationError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(invalid(field, "must not be blank"));
    }
    if name.chars().count() > MAX_SHORT_TEXT {
        return Err(invalid(
            field,
            format!("must be at most {MAX_SHORT_TEXT} characters"),
        ));
    }
    Ok(name.to_owned())
}

fn existing(state: &Organization) -> Result<&Organization, OrganizationError> {
    if state.exists() {
        Ok(state)
    } else {
        Err(OrganizationError::NotFound)
    }
}

/// Decides what a command means for this organization. No IO, no clock: `now` comes in.
pub fn decide(
    state: &Organization,
    command: OrganizationCommand,
    now: Timestamp,
) -> Result<Vec<OrganizationFact>, OrganizationError> {
    match command {
        OrganizationCommand::Create {
            organization_id,
            name,
            owner,
        } => {
            if state.exists() {
                return Err(OrganizationError::AlreadyExists);
            }
            Ok(vec![OrganizationFact::OrganizationCreated {
                organization_id,
                name: check_name("name", &name)?,
                owner,
                created_at: now,
            }])
        }
        OrganizationCommand::Rename { name } => {
            let state = existing(state)?;
            let name = check_name("name", &name)?;
            if name == state.name {
                return Ok(vec![]);
            }
            Ok(vec![OrganizationFact::OrganizationRenamed { name }])
        }
        OrganizationCommand::AddMember { user_id, role } => {
            let state = existing(state)?;
            if state.members.contains_key(&user_id) {
                return Err(OrganizationError::AlreadyMember);
            }
            Ok(vec![OrganizationFact::MemberAdded { user_id, role }])
        }
        OrganizationCommand::ChangeRole { user_id, role } => {
            let state = existing(state)?;
            let current = state
                .role_of(user_id)
                .ok_or(OrganizationError::NotAMember)?;
            if current == role {
                return Ok(vec![]);
            }
            if current == Role::Owner && state.owners() == 1 {
                return Err(OrganizationError::LastOwner);
            }
            Ok(vec![OrganizationFact::MemberRoleChanged { user_id, role }])
        }
        OrganizationCommand::RemoveMember { user_id } => {
            let state = existing(state)?;
            let current = state
                .role_of(user_id)
                .ok_or(OrganizationError::NotAMember)?;
            if current == Role::Owner && state.owners() == 1 {
                return Err(OrganizationError::LastOwner);
            }
            Ok(vec![OrganizationFact::MemberRemoved { user_id }])
        }
        OrganizationCommand::CreateApiToken {
            token_id,
            name,
            roles,
            created_by,
        } => {
            let state = existing(state)?;
            if state.tokens.contains_key(&token_id) {
                return Err(invalid("token_id", "is already used"));
            }
            let name = check_name("name", &name)?;
            if roles.is_empty() {
                return Err(invalid("roles", "must name at least one role"));
            }
            if roles.contains(&Role::Owner) {
                return Err(invalid("roles", "an API token cannot be an owner"));
            }
            Ok(vec![OrganizationFact::ApiTokenCreated {
                token_id,
                name,
                roles,
                created_by,
                created_at: now,
            }])
        }
        OrganizationCommand::RevokeApiToken { token_id } => {
            let state = existing(state)?;
            let token = state
                .tokens
                .get(&token_id)
                .ok_or(OrganizationError::TokenNotFound)?;
            if token.revoked {
                return Ok(vec![]);
            }
            Ok(vec![OrganizationFact::ApiTokenRevoked {
                token_id,
                revoked_at: now,
            }])
        }
        OrganizationCommand::AddWebhook {
            webhook_id,
            url,
            fact_types,
            created_by,
        } => {
            let state = existing(state)?;
            if state.webhooks.contains_key(&webhook_id) {
                return Err(invalid("webhook_id", "is already used"));
            }
            let url = check_webhook_url(&url)?;
            let fact_types = check_fact_types(fact_types)?;
            if state.webhooks.values().filter(|w| !w.removed).count() >= MAX_WEBHOOKS {
                return Err(invalid(
                    "webhooks",
                    format!("an organization has at most {MAX_WEBHOOKS} webhook endpoints"),
                ));
            }
            Ok(vec![OrganizationFact::WebhookEndpointAdded {
                webhook_id,
                url,
                fact_types,
                created_by,
                created_at: now,
            }])
        }
        OrganizationCommand::RemoveWebhook { webhook_id } => {
            let state = existing(state)?;
            let webhook = state
                .webhooks
                .get(&webhook_id)
                .ok_or(OrganizationError::WebhookNotFound)?;
            if webhook.removed {
                return Ok(vec![]);
            }
            Ok(vec![OrganizationFact::WebhookEndpointRemoved {
                webhook_id,
                removed_at: now,
            }])
        }
    }
}

/// An absolute `http` or `https` URL with a host, without spaces or a fragment. Whether
/// anything answers there is the notifier's business.
pub fn check_webhook_url(url: &str) -> Result<String, OrganizationError> {
    let url = url.trim();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| invalid("url", "must be an http:// or https:// URL"))?;
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err(invalid("url", "must name a host"));
    }
    if url.chars().count() > MAX_WEBHOOK_URL {
        return Err(invalid(
            "url",
            format!("must be at most {MAX_WEBHOOK_URL} characters"),
        ));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) || url.contains('#') {
        return Err(invalid("url", "must not contain whitespace or a fragment"));
    }
    Ok(url.to_owned())
}

/// At least one, each a known fact type ([`WEBHOOK_FACT_TYPES`]) or [`EVERY_FACT_TYPE`].
fn check_fact_types(fact_types: BTreeSet<String>) -> Result<BTreeSet<String>, OrganizationError> {
    if fact_types.is_empty() {
        return Err(invalid("fact_types", "must name at least one fact type"));
    }
    if fact_types.len() > MAX_WEBHOOK_FACT_TYPES {
        return Err(invalid(
            "fact_types",
            format!("at most {MAX_WEBHOOK_FACT_TYPES} fact types"),
        ));
    }
    if let Some(unknown) = fact_types
        .iter()
        .find(|t| *t != EVERY_FACT_TYPE && !WEBHOOK_FACT_TYPES.contains(&t.as_str()))
    {
        return Err(invalid(
            "fact_types",
            format!("unknown fact type {unknown:?} (\"*\" for every one)"),
        ));
    }
    Ok(fact_types)
}

/// Whether an endpoint asking for `fact_types` receives facts of type `fact_type`.
pub fn webhook_receives(fact_types: &BTreeSet<String>, fact_type: &str) -> bool {
    fact_types.contains(EVERY_FACT_TYPE) || fact_types.contains(fact_type)
}

/// Folds one fact into the organization. Never fails: facts already happened.
pub fn evolve(mut state: Organization, fact: &OrganizationFact) -> Organization {
    match fact {
        OrganizationFact::OrganizationCreated {
            organization_id,
            name,
            owner,
            ..
        } => {
            if !state.exists() {
                state.id = Some(*organization_id);
                state.name = name.clone();
                state.members.insert(*owner, Role::Owner);
            }
        }
        OrganizationFact::OrganizationRenamed { name } => state.name = name.clone(),
        OrganizationFact::MemberAdded { user_id, role }
        | OrganizationFact::MemberRoleChanged { user_id, role } => {
            state.members.insert(*user_id, *role);
        }
        OrganizationFact::MemberRemoved { user_id } => {
            state.members.remove(user_id);
        }
        OrganizationFact::ApiTokenCreated {
            token_id,
            name,
            roles,
            created_by,
            ..
        } => {
            state.tokens.entry(*token_id).or_insert(ApiToken {
                name: name.clone(),
                roles: roles.clone(),
                created_by: *created_by,
                revoked: false,
            });
        }
        OrganizationFact::ApiTokenRevoked { token_id, .. } => {
            if let Some(token) = state.tokens.get_mut(token_id) {
                token.revoked = true;
            }
        }
        OrganizationFact::WebhookEndpointAdded {
            webhook_id,
            url,
            fact_types,
            ..
        } => {
            state
                .webhooks
                .entry(*webhook_id)
                .or_insert(WebhookEndpoint {
                    url: url.clone(),
                    fact_types: fact_types.clone(),
                    removed: false,
                });
        }
        OrganizationFact::WebhookEndpointRemoved { webhook_id, .. } => {
            if let Some(webhook) = state.webhooks.get_mut(webhook_id) {
                webhook.removed = true;
            }
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, now};
    use uuid::Uuid;

    fn org() -> OrganizationId {
        OrganizationId(Uuid::from_u128(0x0A))
    }
    fn ada() -> UserId {
        UserId(Uuid::from_u128(0xA))
    }
    fn bo() -> UserId {
        UserId(Uuid::from_u128(0xB))
    }
    fn created() -> OrganizationFact {
        OrganizationFact::OrganizationCreated {
            organization_id: org(),
            name: "Kulturverein".into(),
            owner: ada(),
            created_at: now(),
        }
    }

    #[test]
    fn founding_makes_the_founder_its_owner() {
        let state = given([])
            .when(OrganizationCommand::Create {
                organization_id: org(),
                name: " Kulturverein ".into(),
                owner: ada(),
            })
            .then_state();
        assert_eq!(state.role_of(ada()), Some(Role::Owner));
        assert_eq!(state.name, "Kulturverein");
    }

    #[test]
    fn members_are_added_once_and_changed_or_removed_only_when_present() {
        given([created()])
            .when(OrganizationCommand::AddMember {
                user_id: bo(),
                role: Role::DoorStaff,
            })
            .then([OrganizationFact::MemberAdded {
                user_id: bo(),
                role: Role::DoorStaff,
            }]);
        given([created()])
            .when(OrganizationCommand::AddMember {
                user_id: ada(),
                role: Role::Analyst,
            })
            .then_err(OrganizationError::AlreadyMember);
        given([created()])
            .when(OrganizationCommand::RemoveMember { user_id: bo() })
            .then_err(OrganizationError::NotAMember);
        given([created()])
            .when(OrganizationCommand::ChangeRole {
                user_id: bo(),
                role: Role::Analyst,
            })
            .then_err(OrganizationError::NotAMember);
    }

    #[test]
    fn the_last_owner_can_be_neither_demoted_nor_removed() {
        given([created()])
            .when(OrganizationCommand::ChangeRole {
                user_id: ada(),
                role: Role::Organizer,
            })
            .then_err(OrganizationError::LastOwner);
        given([created()])
            .when(OrganizationCommand::RemoveMember { user_id: ada() })
            .then_err(OrganizationError::LastOwner);
        let second_owner = OrganizationFact::MemberAdded {
            user_id: bo(),
            role: Role::Owner,
        };
        given([created(), second_owner])
            .when(OrganizationCommand::RemoveMember { user_id: ada() })
            .then([OrganizationFact::MemberRemoved { user_id: ada() }]);
    }

    #[test]
    fn api_tokens_need_roles_other_than_owner_and_are_revoked_once() {
        let token = ApiTokenId(Uuid::from_u128(0x7));
        let make = |roles: &[Role]| OrganizationCommand::CreateApiToken {
            token_id: token,
            name: "Box office".into(),
            roles: roles.iter().copied().collect(),
            created_by: Some(ada()),
        };
        given([created()])
            .when(make(&[]))
            .then_err_matches(|e| matches!(e, OrganizationError::Invalid { field: "roles", .. }));
        given([created()])
            .when(make(&[Role::Owner]))
            .then_err_matches(|e| matches!(e, OrganizationError::Invalid { field: "roles", .. }));
        let made = given([created()])
            .when(make(&[Role::DoorStaff]))
            .then_facts();
        let revoked = OrganizationFact::ApiTokenRevoked {
            token_id: token,
            revoked_at: now(),
        };
        given([created()].into_iter().chain(made.clone()))
            .when(OrganizationCommand::RevokeApiToken { token_id: token })
            .then([revoked.clone()]);
        given([created()].into_iter().chain(made).chain([revoked]))
            .when(OrganizationCommand::RevokeApiToken { token_id: token })
            .then_nothing();
        given([created()])
            .when(OrganizationCommand::RevokeApiToken { token_id: token })
            .then_err(OrganizationError::TokenNotFound);
    }

    #[test]
    fn roles_read_and_write_their_api_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            assert_eq!(
                serde_json::to_value(role).expect("serializes"),
                serde_json::Value::String(role.as_str().into())
            );
        }
        assert!("admin".parse::<Role>().is_err());
    }

    fn hook() -> WebhookId {
        WebhookId(Uuid::from_u128(0x40))
    }

    fn add_hook(url: &str, types: &[&str]) -> OrganizationCommand {
        OrganizationCommand::AddWebhook {
            webhook_id: hook(),
            url: url.into(),
            fact_types: types.iter().map(|t| (*t).to_owned()).collect(),
            created_by: Some(ada()),
        }
    }

    #[test]
    fn a_webhook_endpoint_is_recorded_without_a_secret_and_removed_once() {
        let added = OrganizationFact::WebhookEndpointAdded {
            webhook_id: hook(),
            url: "https://hooks.example.org/in".into(),
            fact_types: ["RegistrationConfirmed".to_owned()].into_iter().collect(),
            created_by: Some(ada()),
            created_at: now(),
        };
        given([created()])
            .when(add_hook(
                " https://hooks.example.org/in ",
                &["RegistrationConfirmed"],
            ))
            .then([added.clone()]);
        given([created(), added.clone()])
            .when(OrganizationCommand::RemoveWebhook { webhook_id: hook() })
            .then([OrganizationFact::WebhookEndpointRemoved {
                webhook_id: hook(),
                removed_at: now(),
            }]);
        let removed = OrganizationFact::WebhookEndpointRemoved {
            webhook_id: hook(),
            removed_at: now(),
        };
        given([created(), added, removed])
            .when(OrganizationCommand::RemoveWebhook { webhook_id: hook() })
            .then_nothing();
        given([created()])
            .when(OrganizationCommand::RemoveWebhook { webhook_id: hook() })
            .then_err(OrganizationError::WebhookNotFound);
    }

    #[test]
    fn a_webhook_needs_an_http_url_and_known_fact_types() {
        let invalid = |field: &'static str| move |e: &OrganizationError| matches!(e, OrganizationError::Invalid { field: f, .. } if *f == field);
        for url in [
            "ftp://x.org/",
            "https://",
            "hooks.example.org",
            "https://a b.org/",
            "https://x.org/#f",
        ] {
            given([created()])
                .when(add_hook(url, &["*"]))
                .then_err_matches(invalid("url"));
        }
        given([created()])
            .when(add_hook("http://127.0.0.1:9/x", &[]))
            .then_err_matches(invalid("fact_types"));
        given([created()])
            .when(add_hook("http://127.0.0.1:9/x", &["UserRegistered"]))
            .then_err_matches(invalid("fact_types"));
        given([created()])
            .when(add_hook("http://127.0.0.1:9/x", &["*"]))
            .then_facts();
    }
}
