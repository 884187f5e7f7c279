//! The user aggregate: one account. Stream `user-<uuid>`.
//!
//! The profile (name, e-mail address, locale) is event-sourced like everything else; the password
//! is not: its hash lives in the credentials table of `marquee-auth` and never in a fact, so
//! that it can be changed or deleted without rewriting history. A password change is still
//! recorded (`UserPasswordChanged`, without the password) for the audit trail.
//!
//! Name and e-mail address are personal data: the command side seals them with the person's key
//! before they reach the log (crypto-shredding), and erasure (`UserErased`) makes them
//! unreadable everywhere without touching the log.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::{MAX_SHORT_TEXT, looks_like_email};
use crate::organization::Role;
use crate::{FactCodec, OrganizationId, Timestamp, UserId};

/// Version of [`User`]'s serialized shape, for snapshots.
pub const STATE_SCHEMA_VERSION: u32 = 1;

/// The locale of an account that did not choose one.
pub const DEFAULT_LOCALE: &str = "en";

/// What is known about an account. `User::default()` is "no such account".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// `None` until `UserRegistered`.
    pub id: Option<UserId>,
    /// Display name. Personal data.
    pub name: String,
    /// Sign-in address. Personal data.
    pub email: String,
    /// Language of the account's notifications, e.g. `en` or `de-AT`.
    pub locale: String,
    /// When the account was made.
    pub registered_at: Option<Timestamp>,
    /// True once the account was erased: it can do nothing any more.
    pub erased: bool,
    /// The organizations it belongs to and its role in each. A mirror of the organizations'
    /// own streams (written in the same transaction), so an account can list its
    /// organizations; who may do what is always decided from the organization's stream.
    #[serde(default)]
    pub organizations: BTreeMap<OrganizationId, Role>,
}

impl User {
    /// True once the account exists (erased or not).
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }

    /// Roughly the bytes this state occupies.
    pub fn approximate_size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.name.len()
            + self.email.len()
            + self.locale.len()
            + self.organizations.len() * 48
    }
}

/// A request to change an account.
#[derive(Debug, Clone, PartialEq)]
pub enum UserCommand {
    /// Open an account. The caller has already stored the password hash.
    Register {
        user_id: UserId,
        name: String,
        email: String,
        locale: Option<String>,
    },
    /// Change the name and/or the locale.
    ChangeProfile {
        name: Option<String>,
        locale: Option<String>,
    },
    /// Note that the password was changed (the hash itself is stored elsewhere).
    RecordPasswordChange,
    /// Erase the account: its personal data becomes unreadable and it can no longer act.
    /// `person_id` names the person whose key the command side erased (see `UserErased`).
    Erase { person_id: String },
    /// Mirror a membership: the account joined an organization, or its role there changed.
    RecordMembership {
        organization_id: OrganizationId,
        role: Role,
    },
    /// Mirror a membership's end.
    RecordDeparture { organization_id: OrganizationId },
}

/// Facts of the user aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum UserFact {
    /// An account was opened.
    UserRegistered {
        user_id: UserId,
        name: String,
        email: String,
        locale: String,
        registered_at: Timestamp,
    },
    /// Name and/or locale changed; only the changed fields are present.
    UserProfileChanged {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        locale: Option<String>,
    },
    /// The password was changed (the password is never in a fact).
    UserPasswordChanged { changed_at: Timestamp },
    /// The account was erased. `person_id` is the id its personal data was sealed under (see
    /// `marquee_auth::vault`; not personal data itself): readers that keep copies of that data,
    /// such as the projector's guest list, replace everything of that person on this fact.
    UserErased {
        erased_at: Timestamp,
        person_id: String,
    },
    /// The account joined an organization with a role, or its role there changed.
    MembershipRecorded {
        organization_id: OrganizationId,
        role: Role,
    },
    /// The account left an organization.
    DepartureRecorded { organization_id: OrganizationId },
}

impl FactCodec for UserFact {
    const AGGREGATE: &'static str = "user";

    fn schema_version(_fact_type: &str) -> u32 {
        1
    }
}

/// Why a user command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// A field failed validation (`validation_failed`).
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// `Register` for an id that exists (`conflict`).
    #[error("account already exists")]
    AlreadyExists,
    /// Any other command for an account that does not exist (`not_found`).
    #[error("account not found")]
    NotFound,
    /// The account was erased (`not_found`).
    #[error("account erased")]
    Erased,
}

fn invalid(field: &'static str, message: impl Into<String>) -> UserError {
    UserError::Invalid {
        field,
        message: message.into(),
    }
}

fn check_name(name: &str) -> Result<String, UserError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(invalid("name", "must not be blank"));
    }
    if name.chars().count() > MAX_SHORT_TEXT {
        return Err(invalid(
            "name",
            format!("must be at most {MAX_SHORT_TEXT} characters"),
        ));
    }
    Ok(name.to_owned())
}

/// A locale tag of the form `ll` or `ll-CC` (language, optional region), e.g. `de-AT`.
fn check_locale(locale: &str) -> Result<String, UserError> {
    let locale = locale.trim();
    let (language, region) = match locale.split_once('-') {
        Some((language, region)) => (language, Some(region)),
        None => (locale, None),
    };
    let language_ok =
        (2..=3).contains(&language.len()) && language.bytes().all(|b| b.is_ascii_lowercase());
    let region_ok =
        region.is_none_or(|r| r.len() == 2 && r.bytes().all(|b| b.is_ascii_uppercase()));
    if !language_ok || !region_ok {
        return Err(invalid("locale", "must look like `en` or `de-AT`"));
    }
    Ok(locale.to_owned())
}

/// The account, if it exists and is not erased.
fn active(state: &User) -> Result<&User, UserError> {
    if !state.exists() {
        return Err(UserError::NotFound);
    }
    if state.erased {
        return Err(UserError::Erased);
    }
    Ok(state)
}

/// Decides what a command means for this account. No IO, no clock: `now` comes in.
pub fn decide(
    state: &User,
    command: UserCommand,
    now: Timestamp,
) -> Result<Vec<UserFact>, UserError> {
    match command {
        UserCommand::Register {
            user_id,
            name,
            email,
            locale,
        } => {
            if state.exists() {
                return Err(UserError::AlreadyExists);
            }
            let name = check_name(&name)?;
            let email = email.trim().to_owned();
            if !looks_like_email(&email) {
                return Err(invalid("email", "must be an e-mail address"));
            }
            let locale = check_locale(locale.as_deref().unwrap_or(DEFAULT_LOCALE))?;
            Ok(vec![UserFact::UserRegistered {
                user_id,
                name,
                email,
                locale,
                registered_at: now,
            }])
        }
        UserCommand::ChangeProfile { name, locale } => {
            let state = active(state)?;
            let name = name.map(|n| check_name(&n)).transpose()?;
            let locale = locale.map(|l| check_locale(&l)).transpose()?;
            let name = name.filter(|n| *n != state.name);
            let locale = locale.filter(|l| *l != state.locale);
            if name.is_none() && locale.is_none() {
                return Ok(vec![]);
            }
            Ok(vec![UserFact::UserProfileChanged { name, locale }])
        }
        UserCommand::RecordPasswordChange => {
            active(state)?;
            Ok(vec![UserFact::UserPasswordChanged { changed_at: now }])
        }
        UserCommand::Erase { person_id } => {
            if !state.exists() {
                return Err(UserError::NotFound);
            }
            if state.erased {
                return Ok(vec![]);
            }
            if person_id.trim().is_empty() {
                return Err(invalid("person_id", "must not be blank"));
            }
            Ok(vec![UserFact::UserErased {
                erased_at: now,
                person_id,
            }])
        }
        UserCommand::RecordMembership {
            organization_id,
            role,
        } => {
            let state = active(state)?;
            if state.organizations.get(&organization_id) == Some(&role) {
                return Ok(vec![]);
            }
            Ok(vec![UserFact::MembershipRecorded {
                organization_id,
                role,
            }])
        }
        UserCommand::RecordDeparture { organization_id } => {
            if !state.exists() {
                return Err(UserError::NotFound);
            }
            if !state.organizations.contains_key(&organization_id) {
                return Ok(vec![]);
            }
            Ok(vec![UserFact::DepartureRecorded { organization_id }])
        }
    }
}

/// Folds one fact into the account. Never fails: facts already happened.
pub fn evolve(mut state: User, fact: &UserFact) -> User {
    match fact {
        UserFact::UserRegistered {
            user_id,
            name,
            email,
            locale,
            registered_at,
        } => {
            if !state.exists() {
                state.id = Some(*user_id);
                state.name = name.clone();
                state.email = email.clone();
                state.locale = locale.clone();
                state.registered_at = Some(*registered_at);
            }
        }
        UserFact::UserProfileChanged { name, locale } => {
            if let Some(name) = name {
                state.name = name.clone();
            }
            if let Some(locale) = locale {
                state.locale = locale.clone();
            }
        }
        UserFact::UserPasswordChanged { .. } => {}
        UserFact::UserErased { .. } => state.erased = true,
        UserFact::MembershipRecorded {
            organization_id,
            role,
        } => {
            state.organizations.insert(*organization_id, *role);
        }
        UserFact::DepartureRecorded { organization_id } => {
            state.organizations.remove(organization_id);
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, now};
    use uuid::Uuid;

    fn user_id() -> UserId {
        UserId(Uuid::from_u128(0xA11CE))
    }

    fn register() -> UserCommand {
        UserCommand::Register {
            user_id: user_id(),
            name: " Ada Lovelace ".into(),
            email: " ada@example.org ".into(),
            locale: None,
        }
    }

    fn registered() -> UserFact {
        UserFact::UserRegistered {
            user_id: user_id(),
            name: "Ada Lovelace".into(),
            email: "ada@example.org".into(),
            locale: "en".into(),
            registered_at: now(),
        }
    }

    #[test]
    fn registering_trims_the_profile_and_defaults_the_locale() {
        given([]).when(register()).then([registered()]);
    }

    #[test]
    fn registering_twice_is_refused() {
        given([registered()])
            .when(register())
            .then_err(UserError::AlreadyExists);
    }

    #[test]
    fn a_malformed_email_or_blank_name_is_refused() {
        given([])
            .when(UserCommand::Register {
                user_id: user_id(),
                name: "Ada".into(),
                email: "ada".into(),
                locale: None,
            })
            .then_err_matches(|e| matches!(e, UserError::Invalid { field: "email", .. }));
        given([])
            .when(UserCommand::Register {
                user_id: user_id(),
                name: "  ".into(),
                email: "ada@example.org".into(),
                locale: None,
            })
            .then_err_matches(|e| matches!(e, UserError::Invalid { field: "name", .. }));
    }

    #[test]
    fn locales_must_look_like_language_and_region() {
        for good in ["en", "de-AT", "fil"] {
            given([registered()])
                .when(UserCommand::ChangeProfile {
                    name: None,
                    locale: Some(good.into()),
                })
                .then_facts();
        }
        for bad in ["EN", "de_AT", "de-at", "english", ""] {
            given([registered()])
                .when(UserCommand::ChangeProfile {
                    name: None,
                    locale: Some(bad.into()),
                })
                .then_err_matches(|e| {
                    matches!(
                        e,
                        UserError::Invalid {
                            field: "locale",
                            ..
                        }
                    )
                });
        }
    }

    #[test]
    fn a_profile_change_keeps_only_what_changes() {
        given([registered()])
            .when(UserCommand::ChangeProfile {
                name: Some("Ada Lovelace".into()),
                locale: Some("de".into()),
            })
            .then([UserFact::UserProfileChanged {
                name: None,
                locale: Some("de".into()),
            }]);
        given([registered()])
            .when(UserCommand::ChangeProfile {
                name: Some("Ada Lovelace".into()),
                locale: None,
            })
            .then_nothing();
    }

    #[test]
    fn an_erased_account_can_do_nothing_and_erasing_again_changes_nothing() {
        let erased = UserFact::UserErased {
            erased_at: now(),
            person_id: "p-ada".into(),
        };
        given([registered(), erased.clone()])
            .when(UserCommand::RecordPasswordChange)
            .then_err(UserError::Erased);
        given([registered(), erased.clone()])
            .when(UserCommand::ChangeProfile {
                name: Some("X".into()),
                locale: None,
            })
            .then_err(UserError::Erased);
        given([registered(), erased])
            .when(UserCommand::Erase {
                person_id: "p-ada".into(),
            })
            .then_nothing();
        given([])
            .when(UserCommand::Erase {
                person_id: "p-ada".into(),
            })
            .then_err(UserError::NotFound);
    }

    #[test]
    fn erasing_records_whose_personal_data_key_was_erased() {
        given([registered()])
            .when(UserCommand::Erase {
                person_id: "p-ada".into(),
            })
            .then([UserFact::UserErased {
                erased_at: now(),
                person_id: "p-ada".into(),
            }]);
        given([registered()])
            .when(UserCommand::Erase {
                person_id: " ".into(),
            })
            .then_err_matches(|e| {
                matches!(
                    e,
                    UserError::Invalid {
                        field: "person_id",
                        ..
                    }
                )
            });
    }

    #[test]
    fn memberships_are_mirrored_once_and_departures_forget_them() {
        let org = OrganizationId(Uuid::from_u128(0x0A));
        let joined = UserFact::MembershipRecorded {
            organization_id: org,
            role: Role::Organizer,
        };
        given([registered()])
            .when(UserCommand::RecordMembership {
                organization_id: org,
                role: Role::Organizer,
            })
            .then([joined.clone()]);
        given([registered(), joined.clone()])
            .when(UserCommand::RecordMembership {
                organization_id: org,
                role: Role::Organizer,
            })
            .then_nothing();
        let state = given([registered(), joined.clone()])
            .when(UserCommand::RecordDeparture {
                organization_id: org,
            })
            .then_state();
        assert!(state.organizations.is_empty());
        given([registered()])
            .when(UserCommand::RecordDeparture {
                organization_id: org,
            })
            .then_nothing();
    }

    #[test]
    fn a_password_change_is_recorded_without_the_password() {
        given([registered()])
            .when(UserCommand::RecordPasswordChange)
            .then([UserFact::UserPasswordChanged { changed_at: now() }]);
    }
}
