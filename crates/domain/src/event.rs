//! The event aggregate: one happening with its ticket types and registrations.
//! Stream `event-<uuid>`.
//!
//! Registrations live inside the event's stream on purpose: "never more confirmed seats than a
//! ticket type's quantity or the event's capacity" is then a rule about one stream, enforced by
//! the log's expected-revision check, with no cross-stream coordination.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::{EventId, FactCodec, Money, RegistrationId, TicketCode, TicketTypeId, Timestamp, VenueId};

/// Longest accepted title, category, ticket type name or attendee name, in characters.
pub const MAX_SHORT_TEXT: usize = 200;
/// Longest accepted description, in characters.
pub const MAX_DESCRIPTION: usize = 10_000;
/// Per-order maximum when the organizer sets none.
pub const DEFAULT_MAX_PER_ORDER: u32 = 10;
/// The highest per-order maximum an organizer may set.
pub const MAX_PER_ORDER_LIMIT: u32 = 100;
/// How many ticket types one event may have.
pub const MAX_TICKET_TYPES: usize = 50;

/// Where an event is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Being prepared; not visible to attendees, no registrations.
    #[default]
    Draft,
    /// On sale (within each ticket type's sales window).
    Published,
    /// Called off. No further registrations.
    Cancelled,
}

/// A kind of ticket with its own price and quantity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketType {
    pub id: TicketTypeId,
    pub name: String,
    pub price: Money,
    /// Seats of this type that can ever be confirmed.
    pub quantity: u32,
    /// Sales open at this time (inclusive); `None` means from publication.
    pub sales_start: Option<Timestamp>,
    /// Sales close at this time (exclusive); `None` means until the event ends.
    pub sales_end: Option<Timestamp>,
    /// Seats of this type confirmed and not cancelled.
    pub confirmed: u32,
}

impl TicketType {
    /// Seats of this type still available, ignoring the event-wide capacity.
    pub fn remaining(&self) -> u32 {
        self.quantity.saturating_sub(self.confirmed)
    }
}

/// The person a registration is for. Personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attendee {
    pub name: String,
    pub email: String,
}

/// Status of one registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationStatus {
    Confirmed,
    Cancelled,
}

/// N seats of one ticket type for one attendee.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    pub id: RegistrationId,
    pub ticket_type_id: TicketTypeId,
    pub attendee: Attendee,
    pub quantity: u32,
    pub ticket_codes: Vec<TicketCode>,
    pub status: RegistrationStatus,
}

/// What is known about an event, folded from its facts. `Event::default()` is "no such event".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    /// `None` until `EventDrafted`.
    pub id: Option<EventId>,
    pub venue_id: Option<VenueId>,
    pub status: EventStatus,
    pub title: String,
    pub description: String,
    pub category: String,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
    /// IANA time zone name the event is advertised in.
    pub timezone: String,
    /// Event-wide seat limit across all ticket types; at most the venue's capacity.
    pub capacity: u32,
    /// Most seats one reservation may take.
    pub max_per_order: u32,
    /// Ticket types by id, in id order.
    pub ticket_types: BTreeMap<TicketTypeId, TicketType>,
    /// Every registration ever made, by id.
    pub registrations: BTreeMap<RegistrationId, Registration>,
    /// Every ticket code ever issued for this event, so none is issued twice.
    pub issued_codes: BTreeSet<TicketCode>,
}

impl Event {
    /// True once the event has been drafted.
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }

    /// Seats confirmed across all ticket types.
    pub fn confirmed(&self) -> u32 {
        self.ticket_types.values().map(|t| t.confirmed).sum()
    }

    /// Seats of `ticket_type` that can still be reserved, counting the event-wide capacity.
    pub fn available(&self, ticket_type: TicketTypeId) -> u32 {
        let event_left = self.capacity.saturating_sub(self.confirmed());
        self.ticket_types
            .get(&ticket_type)
            .map_or(0, |t| t.remaining().min(event_left))
    }
}

/// What the command handler knows about the venue when drafting or resizing an event. The event
/// aggregate cannot read the venue stream itself; the caller loads it and passes it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VenueInfo {
    pub venue_id: VenueId,
    pub capacity: u32,
}

/// Changes to an event's details; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DetailsChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_order: Option<u32>,
}

/// A request to change an event.
#[derive(Debug, Clone, PartialEq)]
pub enum EventCommand {
    /// Create the event as a draft at a venue. `venue` is `None` when the venue does not exist.
    DraftEvent {
        event_id: EventId,
        venue: Option<VenueInfo>,
        title: String,
        description: String,
        category: String,
        starts_at: Timestamp,
        ends_at: Timestamp,
        timezone: String,
        /// Defaults to the venue's capacity.
        capacity: Option<u32>,
        /// Defaults to [`DEFAULT_MAX_PER_ORDER`].
        max_per_order: Option<u32>,
    },
    /// Change title, description, category, times, time zone or per-order maximum.
    UpdateDetails(DetailsChange),
    /// Add a ticket type.
    AddTicketType {
        ticket_type_id: TicketTypeId,
        name: String,
        price: Money,
        quantity: u32,
        sales_start: Option<Timestamp>,
        sales_end: Option<Timestamp>,
    },
    /// Put the event on sale.
    Publish,
    /// Call the event off.
    Cancel { reason: Option<String> },
    /// Set the event-wide capacity; `venue` is the venue as it is now.
    ChangeCapacity { capacity: u32, venue: VenueInfo },
    /// Reserve `quantity` seats of a free ticket type for an attendee: confirmed at once, one
    /// ticket code per seat. The caller generates the codes (the domain has no randomness).
    Reserve {
        registration_id: RegistrationId,
        ticket_type_id: TicketTypeId,
        attendee: Attendee,
        quantity: u32,
        ticket_codes: Vec<TicketCode>,
    },
    /// Cancel a registration; its seats become available again.
    CancelRegistration { registration_id: RegistrationId },
}

/// Facts of the event aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum EventFact {
    EventDrafted {
        event_id: EventId,
        venue_id: VenueId,
        title: String,
        description: String,
        category: String,
        starts_at: Timestamp,
        ends_at: Timestamp,
        timezone: String,
        capacity: u32,
        max_per_order: u32,
    },
    /// Only the changed fields are present.
    EventDetailsUpdated(DetailsChange),
    TicketTypeAdded {
        ticket_type_id: TicketTypeId,
        name: String,
        price: Money,
        quantity: u32,
        sales_start: Option<Timestamp>,
        sales_end: Option<Timestamp>,
    },
    EventPublished {
        published_at: Timestamp,
    },
    EventCancelled {
        reason: Option<String>,
        cancelled_at: Timestamp,
    },
    EventCapacityChanged {
        capacity: u32,
    },
    RegistrationConfirmed {
        registration_id: RegistrationId,
        ticket_type_id: TicketTypeId,
        attendee: Attendee,
        quantity: u32,
        ticket_codes: Vec<TicketCode>,
        confirmed_at: Timestamp,
    },
    RegistrationCancelled {
        registration_id: RegistrationId,
        ticket_type_id: TicketTypeId,
        quantity: u32,
        cancelled_at: Timestamp,
    },
}

impl FactCodec for EventFact {
    const AGGREGATE: &'static str = "event";

    fn schema_version(_fact_type: &str) -> u32 {
        1
    }
}

/// Why an event command was refused. Each variant maps to one stable API error code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EventError {
    /// A field failed validation (`validation_failed`).
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// `DraftEvent` for an id that exists (`conflict`).
    #[error("event already exists")]
    AlreadyExists,
    /// Any other command for an event that does not exist (`not_found`).
    #[error("event not found")]
    NotFound,
    /// The venue named when drafting does not exist (`validation_failed` on `venue_id`).
    #[error("venue not found")]
    VenueNotFound,
    /// Capacity above what the venue holds (`capacity_exceeds_venue`).
    #[error("capacity {capacity} exceeds the venue's capacity {venue_capacity}")]
    CapacityExceedsVenue { capacity: u32, venue_capacity: u32 },
    /// Capacity below the seats already confirmed (`capacity_below_sold`).
    #[error("capacity {capacity} is below the {sold} seats already confirmed")]
    CapacityBelowSold { capacity: u32, sold: u32 },
    /// The command does not fit the event's status, e.g. publishing twice (`invalid_state`).
    #[error("event is {status:?}: {message}")]
    InvalidState {
        status: EventStatus,
        message: &'static str,
    },
    /// Reserving on an event that is not published (`event_not_on_sale`).
    #[error("event is not on sale")]
    NotOnSale,
    /// Reserving on a cancelled event (`event_cancelled`).
    #[error("event is cancelled")]
    Cancelled,
    /// Reserving after the event ended (`event_ended`).
    #[error("event has ended")]
    Ended,
    /// No such ticket type in this event (`not_found`).
    #[error("ticket type not found")]
    TicketTypeNotFound,
    /// Another ticket type already has this name (`conflict`).
    #[error("a ticket type with this name already exists")]
    DuplicateTicketType,
    /// Before the ticket type's sales window (`sales_not_open`).
    #[error("sales have not opened yet")]
    SalesNotOpen { opens_at: Timestamp },
    /// After the ticket type's sales window (`sales_closed`).
    #[error("sales have closed")]
    SalesClosed { closed_at: Timestamp },
    /// More seats asked than the per-order maximum (`order_limit_exceeded`).
    #[error("at most {max} seats per order")]
    OrderLimitExceeded { max: u32 },
    /// Not enough seats left (`sold_out`).
    #[error("sold out: {available} seats available")]
    SoldOut { available: u32 },
    /// The ticket type costs money; paid reservations need the payments feature (`payment_required`).
    #[error("this ticket type is paid; paid reservations are not supported yet")]
    PaymentRequired,
    /// No such registration in this event (`not_found`).
    #[error("registration not found")]
    RegistrationNotFound,
    /// The registration id is already used (`conflict`).
    #[error("registration already exists")]
    RegistrationExists,
    /// Cancelling a registration twice (`already_cancelled`).
    #[error("registration is already cancelled")]
    RegistrationAlreadyCancelled,
}

/// Decides what a command means for this event. No IO, no clock: `now` comes in.
pub fn decide(
    state: &Event,
    command: EventCommand,
    now: Timestamp,
) -> Result<Vec<EventFact>, EventError> {
    let _ = (state, command, now);
    unimplemented!("filled in by the domain work")
}

/// Folds one fact into the event. Never fails: facts already happened.
pub fn evolve(state: Event, fact: &EventFact) -> Event {
    let _ = fact;
    state
}
