//! Typed identifiers, so a venue id can never be passed where an event id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// The prefix of the log stream that holds this aggregate's facts.
            pub const STREAM_PREFIX: &'static str = $prefix;

            /// The name of this aggregate's stream in the log, e.g. `event-<uuid>`.
            pub fn stream(&self) -> String {
                format!("{}-{}", $prefix, self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// Identifies a venue; its facts live in stream `venue-<uuid>`.
    VenueId,
    "venue"
);
uuid_id!(
    /// Identifies an event (the happening); its facts live in stream `event-<uuid>`.
    EventId,
    "event"
);
uuid_id!(
    /// Identifies a webhook endpoint inside one organization.
    WebhookId,
    "webhook"
);
uuid_id!(
    /// Identifies a ticket type inside one event.
    TicketTypeId,
    "ticket-type"
);
uuid_id!(
    /// Identifies a registration (one reservation of N seats) inside one event.
    RegistrationId,
    "registration"
);

/// A ticket code: what a ticket holder shows at the door. Generated outside the domain with at
/// least 128 bits of randomness; the domain only checks its shape.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TicketCode(pub String);

impl TicketCode {
    /// Minimum length of a code: 32 hex characters carry 128 bits.
    pub const MIN_LEN: usize = 32;

    /// True when the code is long enough and uses only `[0-9A-Za-z_-]`.
    pub fn is_well_formed(&self) -> bool {
        self.0.len() >= Self::MIN_LEN
            && self.0.len() <= 64
            && self
                .0
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }
}

impl fmt::Display for TicketCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

uuid_id!(
    /// Identifies a place in one event's waitlist (one attendee waiting for N seats of one
    /// ticket type).
    WaitlistEntryId,
    "waitlist-entry"
);

/// A payment as the payment provider names it (e.g. `pay_3f2a…`). Opaque to the domain: it only
/// tells one payment from another, so a payment reported twice counts once.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PaymentId(pub String);

impl fmt::Display for PaymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

uuid_id!(
    /// Identifies a user account; its facts live in stream `user-<uuid>`.
    UserId,
    "user"
);
uuid_id!(
    /// Identifies an organization (owner of venues and events); its facts live in stream
    /// `organization-<uuid>`.
    OrganizationId,
    "organization"
);
uuid_id!(
    /// Identifies an API token of an organization.
    ApiTokenId,
    "api-token"
);
