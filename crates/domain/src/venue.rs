//! The venue aggregate: a place with a name, a city and a capacity. Stream `venue-<uuid>`.

use serde::{Deserialize, Serialize};

use crate::{FactCodec, Timestamp, VenueId};

/// Longest accepted name, city or address, in characters.
pub const MAX_TEXT_LEN: usize = 200;

/// Version of [`Venue`]'s serialized shape, for snapshots: bump it whenever `Venue` changes
/// shape, and older snapshots are ignored (they are only a cache).
pub const STATE_SCHEMA_VERSION: u32 = 1;

/// What is known about a venue, folded from its facts. `Venue::default()` is "no such venue".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Venue {
    /// `None` until `VenueCreated`.
    pub id: Option<VenueId>,
    /// Display name.
    pub name: String,
    /// City, used by listing filters.
    pub city: String,
    /// Street address, free text.
    pub address: Option<String>,
    /// Seats the venue holds; every event's capacity at this venue is at most this.
    pub capacity: u32,
    /// IANA time zone name, e.g. `Europe/Berlin`.
    pub timezone: String,
}

impl Venue {
    /// Roughly how many bytes this state occupies in memory (heap included), for caches that
    /// are bounded by size.
    pub fn approximate_size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.name.len()
            + self.city.len()
            + self.address.as_ref().map_or(0, String::len)
            + self.timezone.len()
    }

    /// True once the venue has been created.
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }
}

/// A request to change a venue.
#[derive(Debug, Clone, PartialEq)]
pub enum VenueCommand {
    /// Create a new venue.
    CreateVenue {
        venue_id: VenueId,
        name: String,
        city: String,
        address: Option<String>,
        capacity: u32,
        timezone: String,
    },
    /// Give the venue a new name.
    RenameVenue { name: String },
    /// Change how many seats the venue holds.
    ChangeVenueCapacity { capacity: u32 },
}

/// Facts of the venue aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum VenueFact {
    /// A venue was created.
    VenueCreated {
        venue_id: VenueId,
        name: String,
        city: String,
        address: Option<String>,
        capacity: u32,
        timezone: String,
        created_at: Timestamp,
    },
    /// The venue was renamed.
    VenueRenamed { name: String },
    /// The venue's capacity changed.
    VenueCapacityChanged { capacity: u32 },
}

impl FactCodec for VenueFact {
    const AGGREGATE: &'static str = "venue";

    fn schema_version(_fact_type: &str) -> u32 {
        1
    }
}

/// Why a venue command was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VenueError {
    /// A field failed validation.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// `CreateVenue` for a venue that exists.
    #[error("venue already exists")]
    AlreadyExists,
    /// Any other command for a venue that does not exist.
    #[error("venue not found")]
    NotFound,
}

fn invalid(field: &'static str, message: impl Into<String>) -> VenueError {
    VenueError::Invalid {
        field,
        message: message.into(),
    }
}

/// Checks `value` as it will be stored: trimmed, non-empty, at most [`MAX_TEXT_LEN`] characters.
fn check_text(field: &'static str, value: &str) -> Result<(), VenueError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.chars().count() > MAX_TEXT_LEN {
        return Err(invalid(
            field,
            format!("must be at most {MAX_TEXT_LEN} characters"),
        ));
    }
    Ok(())
}

fn check_capacity(capacity: u32) -> Result<(), VenueError> {
    if capacity == 0 {
        return Err(invalid("capacity", "must be at least 1"));
    }
    Ok(())
}

/// Decides what a command means for this venue. No IO, no clock: `now` comes in.
pub fn decide(
    state: &Venue,
    command: VenueCommand,
    now: Timestamp,
) -> Result<Vec<VenueFact>, VenueError> {
    match command {
        VenueCommand::CreateVenue {
            venue_id,
            name,
            city,
            address,
            capacity,
            timezone,
        } => {
            if state.exists() {
                return Err(VenueError::AlreadyExists);
            }
            check_text("name", &name)?;
            check_text("city", &city)?;
            if let Some(address) = &address {
                check_text("address", address)?;
            }
            check_text("timezone", &timezone)?;
            check_capacity(capacity)?;
            Ok(vec![VenueFact::VenueCreated {
                venue_id,
                name: name.trim().to_owned(),
                city: city.trim().to_owned(),
                address: address.map(|a| a.trim().to_owned()),
                capacity,
                timezone: timezone.trim().to_owned(),
                created_at: now,
            }])
        }
        VenueCommand::RenameVenue { name } => {
            if !state.exists() {
                return Err(VenueError::NotFound);
            }
            check_text("name", &name)?;
            let name = name.trim().to_owned();
            if name == state.name {
                return Ok(vec![]);
            }
            Ok(vec![VenueFact::VenueRenamed { name }])
        }
        VenueCommand::ChangeVenueCapacity { capacity } => {
            if !state.exists() {
                return Err(VenueError::NotFound);
            }
            check_capacity(capacity)?;
            if capacity == state.capacity {
                return Ok(vec![]);
            }
            Ok(vec![VenueFact::VenueCapacityChanged { capacity }])
        }
    }
}

/// Folds one fact into the venue. Never fails: facts already happened.
pub fn evolve(mut state: Venue, fact: &VenueFact) -> Venue {
    match fact {
        VenueFact::VenueCreated {
            venue_id,
            name,
            city,
            address,
            capacity,
            timezone,
            ..
        } => {
            state.id = Some(*venue_id);
            state.name = name.clone();
            state.city = city.clone();
            state.address = address.clone();
            state.capacity = *capacity;
            state.timezone = timezone.clone();
        }
        VenueFact::VenueRenamed { name } => state.name = name.clone(),
        VenueFact::VenueCapacityChanged { capacity } => state.capacity = *capacity,
    }
    state
}

#[cfg(test)]
mod tests;
