//! The venue aggregate: a place with a name, a city, a capacity, and its calendar. Stream
//! `venue-<uuid>`.
//!
//! **The calendar is how "two events at one venue may not overlap" stays true under concurrent
//! commands.** The rule spans streams (each event has its own), so no single event stream can
//! enforce it. The venue stream can: every event's time slot is booked on its venue
//! (`EventBooked`) and released when the event is cancelled (`EventReleased`), and a booking is
//! decided against every other booking the venue holds. The command side appends the venue's
//! booking and the event's own fact (`EventDrafted`, `EventRescheduled`, `EventCancelled`) in
//! one atomic store transaction, each with its expected revision. Two concurrent drafts for
//! overlapping slots both read venue revision `r`; the first commit moves it to `r + 1`, the
//! second fails `WrongExpectedRevision` on the venue, is decided again against the new
//! calendar, and is refused `ScheduleConflict`. Nothing is ever half written: there is no
//! booking without its event and no event without its booking.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{EventId, FactCodec, Timestamp, VenueId};

/// Longest accepted name, city or address, in characters.
pub const MAX_TEXT_LEN: usize = 200;

/// Version of [`Venue`]'s serialized shape, for snapshots: bump it whenever `Venue` changes
/// shape, and older snapshots are ignored (they are only a cache).
pub const STATE_SCHEMA_VERSION: u32 = 2;

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
    /// Time slots of the events taking place here (not cancelled), by event.
    #[serde(default)]
    pub bookings: BTreeMap<EventId, Booking>,
}

/// The time an event occupies its venue: from `starts_at` (inclusive) to `ends_at` (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booking {
    /// Start, inclusive.
    pub starts_at: Timestamp,
    /// End, exclusive: an event may start the moment another ends.
    pub ends_at: Timestamp,
}

impl Booking {
    /// True when the two slots share any moment.
    pub fn overlaps(&self, other: &Booking) -> bool {
        self.starts_at < other.ends_at && other.starts_at < self.ends_at
    }
}

impl Venue {
    /// Roughly how many bytes this state occupies in memory (heap included), for caches that
    /// are bounded by size.
    pub fn approximate_size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.bookings.len() * (std::mem::size_of::<(EventId, Booking)>() + 16)
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
    /// Book (or move) an event's time slot; refused if it overlaps another event's.
    BookEvent {
        event_id: EventId,
        starts_at: Timestamp,
        ends_at: Timestamp,
    },
    /// Free a cancelled event's time slot.
    ReleaseEvent { event_id: EventId },
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
    /// An event's time slot was booked here (or moved: the newest booking of an event counts).
    EventBooked {
        event_id: EventId,
        starts_at: Timestamp,
        ends_at: Timestamp,
    },
    /// A cancelled event's slot was freed.
    EventReleased { event_id: EventId },
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
    /// The slot overlaps another event's at this venue (`schedule_conflict`).
    #[error("the venue is booked by event {event_id} from {starts_at} to {ends_at}")]
    ScheduleConflict {
        event_id: EventId,
        starts_at: Timestamp,
        ends_at: Timestamp,
    },
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
        VenueCommand::BookEvent {
            event_id,
            starts_at,
            ends_at,
        } => {
            if !state.exists() {
                return Err(VenueError::NotFound);
            }
            if starts_at >= ends_at {
                return Err(invalid("ends_at", "must be after starts_at"));
            }
            let slot = Booking { starts_at, ends_at };
            if state.bookings.get(&event_id) == Some(&slot) {
                return Ok(vec![]);
            }
            if let Some((other, booking)) = state
                .bookings
                .iter()
                .find(|(other, booking)| **other != event_id && booking.overlaps(&slot))
            {
                return Err(VenueError::ScheduleConflict {
                    event_id: *other,
                    starts_at: booking.starts_at,
                    ends_at: booking.ends_at,
                });
            }
            Ok(vec![VenueFact::EventBooked {
                event_id,
                starts_at,
                ends_at,
            }])
        }
        VenueCommand::ReleaseEvent { event_id } => {
            if !state.exists() {
                return Err(VenueError::NotFound);
            }
            if !state.bookings.contains_key(&event_id) {
                return Ok(vec![]);
            }
            Ok(vec![VenueFact::EventReleased { event_id }])
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
        VenueFact::EventBooked {
            event_id,
            starts_at,
            ends_at,
        } => {
            state.bookings.insert(
                *event_id,
                Booking {
                    starts_at: *starts_at,
                    ends_at: *ends_at,
                },
            );
        }
        VenueFact::EventReleased { event_id } => {
            state.bookings.remove(event_id);
        }
    }
    state
}

#[cfg(test)]
mod tests;
