//! The roles a member of an organization (or an API token) can hold. What each role may do is
//! decided elsewhere; here is only the vocabulary and its spelling.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A member's or API token's role in one organization, spelled in snake case everywhere
/// (`"door_staff"` in JSON, in the database and in [`fmt::Display`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything in the organization, including members, tokens and erasure.
    Owner,
    /// Creates and runs venues and events; sees guest lists and sales.
    Organizer,
    /// Checks tickets in, nothing else.
    DoorStaff,
    /// Reads analytics, nothing else.
    Analyst,
    /// Reads history and the log, nothing else.
    Auditor,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Organizer,
        Role::DoorStaff,
        Role::Analyst,
        Role::Auditor,
    ];

    /// The role's snake-case name, e.g. `"door_staff"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Organizer => "organizer",
            Role::DoorStaff => "door_staff",
            Role::Analyst => "analyst",
            Role::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`; known roles: owner, organizer, door_staff, analyst, auditor")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    /// Parses the snake-case name exactly (`"door_staff"`, not `"DoorStaff"`).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == name)
            .ok_or_else(|| UnknownRole(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_reads_back_from_its_name_and_its_json() {
        for role in Role::ALL {
            assert_eq!(role.to_string().parse::<Role>(), Ok(role));
            let json = serde_json::to_string(&role).expect("serialize");
            assert_eq!(json, format!("\"{role}\""));
            assert_eq!(serde_json::from_str::<Role>(&json).expect("parse"), role);
        }
        assert_eq!(Role::DoorStaff.to_string(), "door_staff");
    }

    #[test]
    fn an_unknown_or_differently_spelled_role_is_refused() {
        assert_eq!(
            "DoorStaff".parse::<Role>(),
            Err(UnknownRole("DoorStaff".into()))
        );
        assert!("admin".parse::<Role>().is_err());
        assert!(serde_json::from_str::<Role>("\"admin\"").is_err());
    }
}
