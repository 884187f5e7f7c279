//! The event aggregate: one happening with its ticket types and registrations.
//! Stream `event-<uuid>`.
//!
//! Registrations live inside the event's stream on purpose: "never more confirmed seats than a
//! ticket type's quantity or the event's capacity" is then a rule about one stream, enforced by
//! the log's expected-revision check, with no cross-stream coordination.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::{
    EventId, FactCodec, Money, RegistrationId, TicketCode, TicketTypeId, Timestamp, VenueId,
};

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
    /// Unique within the event.
    pub id: TicketTypeId,
    /// Display name, unique within the event ignoring case.
    pub name: String,
    /// Price of one seat; zero means free.
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
    /// Full name as printed on the ticket.
    pub name: String,
    /// Where tickets and notices go.
    pub email: String,
}

/// Status of one registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationStatus {
    /// The seats are held by the attendee.
    Confirmed,
    /// The registration was cancelled and its seats freed.
    Cancelled,
}

/// N seats of one ticket type for one attendee.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    /// Chosen by the caller, unique within the event.
    pub id: RegistrationId,
    /// The ticket type whose seats it holds.
    pub ticket_type_id: TicketTypeId,
    /// Who the seats are for.
    pub attendee: Attendee,
    /// Number of seats.
    pub quantity: u32,
    /// One code per seat.
    pub ticket_codes: Vec<TicketCode>,
    /// Whether the seats are still held.
    pub status: RegistrationStatus,
}

/// Version of [`Event`]'s serialized shape, for snapshots: bump it whenever `Event` or a type
/// inside it changes shape, and older snapshots are ignored (they are only a cache).
pub const STATE_SCHEMA_VERSION: u32 = 1;

/// What is known about an event, folded from its facts. `Event::default()` is "no such event".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `None` until `EventDrafted`.
    pub id: Option<EventId>,
    /// Where it takes place; `None` until `EventDrafted`.
    pub venue_id: Option<VenueId>,
    /// Draft, published or cancelled.
    pub status: EventStatus,
    /// Display title.
    pub title: String,
    /// Free text, possibly empty.
    pub description: String,
    /// Used by listing filters.
    pub category: String,
    /// When it begins; `None` until `EventDrafted`.
    pub starts_at: Option<Timestamp>,
    /// When it is over (exclusive); `None` until `EventDrafted`.
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
        // Saturating: a plain `sum` panics on overflow in debug builds, and a state folded from
        // arbitrary facts must never make a read panic.
        self.ticket_types
            .values()
            .fold(0, |sum: u32, t| sum.saturating_add(t.confirmed))
    }

    /// Roughly how many bytes this state occupies in memory (heap included), for caches that
    /// are bounded by size. An estimate from the shapes of the maps and the lengths of the
    /// strings, not a measurement.
    pub fn approximate_size(&self) -> usize {
        /// A B-tree entry's share of its node, plus the node's own bookkeeping.
        const ENTRY: usize = 16;
        /// A ticket code: `String` header plus 32 hex characters, rounded to the allocator.
        const CODE: usize = std::mem::size_of::<TicketCode>() + 32;
        let strings =
            self.title.len() + self.description.len() + self.category.len() + self.timezone.len();
        let ticket_types: usize = self
            .ticket_types
            .values()
            .map(|t| {
                std::mem::size_of::<TicketType>() + ENTRY + t.name.len() + t.price.currency.len()
            })
            .sum();
        let registrations: usize = self
            .registrations
            .values()
            .map(|r| {
                std::mem::size_of::<Registration>()
                    + ENTRY
                    + r.attendee.name.len()
                    + r.attendee.email.len()
                    + r.ticket_codes.len() * CODE
            })
            .sum();
        std::mem::size_of::<Self>()
            + strings
            + ticket_types
            + registrations
            + self.issued_codes.len() * (CODE + ENTRY)
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
    /// The venue's id.
    pub venue_id: VenueId,
    /// The seats the venue holds now.
    pub capacity: u32,
}

/// Changes to an event's details; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DetailsChange {
    /// New title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// New description; may be empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// New category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// New start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<Timestamp>,
    /// New end; must stay after the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Timestamp>,
    /// New IANA time zone name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// New per-order maximum.
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
    /// The event was created as a draft at a venue.
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
    /// Some details changed; only the changed fields are present.
    EventDetailsUpdated(DetailsChange),
    /// A ticket type was added, with nothing confirmed yet.
    TicketTypeAdded {
        ticket_type_id: TicketTypeId,
        name: String,
        price: Money,
        quantity: u32,
        sales_start: Option<Timestamp>,
        sales_end: Option<Timestamp>,
    },
    /// The event went on sale.
    EventPublished { published_at: Timestamp },
    /// The event was called off.
    EventCancelled {
        reason: Option<String>,
        cancelled_at: Timestamp,
    },
    /// The event-wide capacity changed.
    EventCapacityChanged { capacity: u32 },
    /// Seats of a free ticket type were confirmed for an attendee, one code per seat.
    RegistrationConfirmed {
        registration_id: RegistrationId,
        ticket_type_id: TicketTypeId,
        attendee: Attendee,
        quantity: u32,
        ticket_codes: Vec<TicketCode>,
        confirmed_at: Timestamp,
    },
    /// A registration was cancelled; `ticket_type_id` and `quantity` repeat the registration's
    /// so that readers of the log need not look it up.
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

/// Longest accepted cancellation reason, in characters.
pub const MAX_CANCEL_REASON: usize = 1_000;
/// Longest accepted e-mail address, in characters (RFC 5321's path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// Decides what a command means for this event. No IO, no clock: `now` comes in.
///
/// Checks run in the order that gives the caller the most useful answer first: whether the
/// event exists and is in a state that allows the command, then the request's own fields, and
/// only then rules that depend on what others did (seats left).
pub fn decide(
    state: &Event,
    command: EventCommand,
    now: Timestamp,
) -> Result<Vec<EventFact>, EventError> {
    match command {
        EventCommand::DraftEvent {
            event_id,
            venue,
            title,
            description,
            category,
            starts_at,
            ends_at,
            timezone,
            capacity,
            max_per_order,
        } => {
            if state.exists() {
                return Err(EventError::AlreadyExists);
            }
            let venue = venue.ok_or(EventError::VenueNotFound)?;
            let title = required_text("title", &title, MAX_SHORT_TEXT)?;
            let description = optional_text("description", &description, MAX_DESCRIPTION)?;
            let category = required_text("category", &category, MAX_SHORT_TEXT)?;
            let timezone = required_text("timezone", &timezone, MAX_SHORT_TEXT)?;
            check_schedule(starts_at, ends_at)?;
            check_not_over(ends_at, now)?;
            let capacity = capacity.unwrap_or(venue.capacity);
            check_capacity(capacity, venue)?;
            let max_per_order = max_per_order.unwrap_or(DEFAULT_MAX_PER_ORDER);
            check_max_per_order(max_per_order)?;
            Ok(vec![EventFact::EventDrafted {
                event_id,
                venue_id: venue.venue_id,
                title,
                description,
                category,
                starts_at,
                ends_at,
                timezone,
                capacity,
                max_per_order,
            }])
        }
        EventCommand::UpdateDetails(change) => update_details(existing(state)?, change, now),
        EventCommand::AddTicketType {
            ticket_type_id,
            name,
            price,
            quantity,
            sales_start,
            sales_end,
        } => {
            let state = existing(state)?;
            refuse_if_cancelled(state, "a cancelled event cannot get new ticket types")?;
            if state.ticket_types.contains_key(&ticket_type_id) {
                return Err(EventError::DuplicateTicketType);
            }
            let name = required_text("name", &name, MAX_SHORT_TEXT)?;
            let folded = name.to_lowercase();
            if state
                .ticket_types
                .values()
                .any(|t| t.name.to_lowercase() == folded)
            {
                return Err(EventError::DuplicateTicketType);
            }
            if !price.is_valid() {
                return Err(invalid(
                    "price",
                    "must be a non-negative amount in a three-letter upper-case currency code",
                ));
            }
            if quantity == 0 {
                return Err(invalid("quantity", "must be at least 1"));
            }
            if let (Some(start), Some(end)) = (sales_start, sales_end)
                && start >= end
            {
                return Err(invalid("sales_end", "must be after sales_start"));
            }
            if state.ticket_types.len() >= MAX_TICKET_TYPES {
                return Err(invalid(
                    "ticket_types",
                    format!("an event has at most {MAX_TICKET_TYPES} ticket types"),
                ));
            }
            Ok(vec![EventFact::TicketTypeAdded {
                ticket_type_id,
                name,
                price,
                quantity,
                sales_start,
                sales_end,
            }])
        }
        EventCommand::Publish => {
            let state = existing(state)?;
            match state.status {
                EventStatus::Draft => {}
                EventStatus::Published => {
                    return Err(invalid_state(state, "the event is already published"));
                }
                EventStatus::Cancelled => {
                    return Err(invalid_state(
                        state,
                        "a cancelled event cannot be published",
                    ));
                }
            }
            if has_ended(state, now) {
                return Err(EventError::Ended);
            }
            if state.ticket_types.is_empty() {
                return Err(invalid(
                    "ticket_types",
                    "add at least one ticket type before publishing",
                ));
            }
            Ok(vec![EventFact::EventPublished { published_at: now }])
        }
        EventCommand::Cancel { reason } => {
            let state = existing(state)?;
            refuse_if_cancelled(state, "the event is already cancelled")?;
            let reason = match reason {
                Some(reason) => {
                    let reason = optional_text("reason", &reason, MAX_CANCEL_REASON)?;
                    (!reason.is_empty()).then_some(reason)
                }
                None => None,
            };
            Ok(vec![EventFact::EventCancelled {
                reason,
                cancelled_at: now,
            }])
        }
        EventCommand::ChangeCapacity { capacity, venue } => {
            let state = existing(state)?;
            refuse_if_cancelled(state, "a cancelled event's capacity cannot change")?;
            if state.venue_id != Some(venue.venue_id) {
                return Err(invalid(
                    "venue_id",
                    "is not the venue this event takes place at",
                ));
            }
            check_capacity(capacity, venue)?;
            let sold = state.confirmed();
            if capacity < sold {
                return Err(EventError::CapacityBelowSold { capacity, sold });
            }
            if capacity == state.capacity {
                return Ok(vec![]);
            }
            Ok(vec![EventFact::EventCapacityChanged { capacity }])
        }
        EventCommand::Reserve {
            registration_id,
            ticket_type_id,
            attendee,
            quantity,
            ticket_codes,
        } => reserve(
            existing(state)?,
            registration_id,
            ticket_type_id,
            attendee,
            quantity,
            ticket_codes,
            now,
        ),
        EventCommand::CancelRegistration { registration_id } => {
            let state = existing(state)?;
            let registration = state
                .registrations
                .get(&registration_id)
                .ok_or(EventError::RegistrationNotFound)?;
            if registration.status == RegistrationStatus::Cancelled {
                return Err(EventError::RegistrationAlreadyCancelled);
            }
            Ok(vec![EventFact::RegistrationCancelled {
                registration_id,
                ticket_type_id: registration.ticket_type_id,
                quantity: registration.quantity,
                cancelled_at: now,
            }])
        }
    }
}

/// `UpdateDetails`: validates every field present, then keeps only those that change.
fn update_details(
    state: &Event,
    change: DetailsChange,
    now: Timestamp,
) -> Result<Vec<EventFact>, EventError> {
    refuse_if_cancelled(state, "a cancelled event's details cannot change")?;
    let title = change
        .title
        .map(|v| required_text("title", &v, MAX_SHORT_TEXT))
        .transpose()?;
    let description = change
        .description
        .map(|v| optional_text("description", &v, MAX_DESCRIPTION))
        .transpose()?;
    let category = change
        .category
        .map(|v| required_text("category", &v, MAX_SHORT_TEXT))
        .transpose()?;
    let timezone = change
        .timezone
        .map(|v| required_text("timezone", &v, MAX_SHORT_TEXT))
        .transpose()?;
    if let Some(max_per_order) = change.max_per_order {
        check_max_per_order(max_per_order)?;
    }
    if let (Some(starts_at), Some(ends_at)) = (
        change.starts_at.or(state.starts_at),
        change.ends_at.or(state.ends_at),
    ) && (change.starts_at.is_some() || change.ends_at.is_some())
    {
        check_schedule(starts_at, ends_at)?;
    }
    // Moving the end into the past is refused; repeating the current end (a client sending the
    // whole object back) is not a move, so it passes even once the event is over.
    if let Some(ends_at) = change.ends_at
        && state.ends_at != Some(ends_at)
    {
        check_not_over(ends_at, now)?;
    }

    let changed = DetailsChange {
        title: title.filter(|v| *v != state.title),
        description: description.filter(|v| *v != state.description),
        category: category.filter(|v| *v != state.category),
        starts_at: change.starts_at.filter(|v| state.starts_at != Some(*v)),
        ends_at: change.ends_at.filter(|v| state.ends_at != Some(*v)),
        timezone: timezone.filter(|v| *v != state.timezone),
        max_per_order: change.max_per_order.filter(|v| *v != state.max_per_order),
    };
    if changed == DetailsChange::default() {
        return Ok(vec![]);
    }
    Ok(vec![EventFact::EventDetailsUpdated(changed)])
}

/// `Reserve`: the event and ticket type must be on sale, the request well formed, and enough
/// seats left — in that order, so that sold-out is only reported for a request that would
/// otherwise have succeeded.
fn reserve(
    state: &Event,
    registration_id: RegistrationId,
    ticket_type_id: TicketTypeId,
    attendee: Attendee,
    quantity: u32,
    ticket_codes: Vec<TicketCode>,
    now: Timestamp,
) -> Result<Vec<EventFact>, EventError> {
    match state.status {
        EventStatus::Cancelled => return Err(EventError::Cancelled),
        EventStatus::Draft => return Err(EventError::NotOnSale),
        EventStatus::Published => {}
    }
    if has_ended(state, now) {
        return Err(EventError::Ended);
    }
    let ticket_type = state
        .ticket_types
        .get(&ticket_type_id)
        .ok_or(EventError::TicketTypeNotFound)?;
    if let Some(opens_at) = ticket_type.sales_start
        && now < opens_at
    {
        return Err(EventError::SalesNotOpen { opens_at });
    }
    if let Some(closed_at) = ticket_type.sales_end
        && now >= closed_at
    {
        return Err(EventError::SalesClosed { closed_at });
    }
    if !ticket_type.price.is_free() {
        return Err(EventError::PaymentRequired);
    }
    if quantity == 0 {
        return Err(invalid("quantity", "must be at least 1"));
    }
    if quantity > state.max_per_order {
        return Err(EventError::OrderLimitExceeded {
            max: state.max_per_order,
        });
    }
    if state.registrations.contains_key(&registration_id) {
        return Err(EventError::RegistrationExists);
    }
    let attendee = Attendee {
        name: required_text("attendee.name", &attendee.name, MAX_SHORT_TEXT)?,
        email: check_email(&attendee.email)?,
    };
    check_ticket_codes(state, &ticket_codes, quantity)?;
    let available = state.available(ticket_type_id);
    if available < quantity {
        return Err(EventError::SoldOut { available });
    }
    Ok(vec![EventFact::RegistrationConfirmed {
        registration_id,
        ticket_type_id,
        attendee,
        quantity,
        ticket_codes,
        confirmed_at: now,
    }])
}

/// Folds one fact into the event. Never fails: facts already happened.
///
/// A fact that cannot apply (one for an event not yet drafted, a second draft, a registration
/// for an unknown ticket type, a cancellation of an unknown registration) is ignored rather
/// than trusted: the counts stay a faithful tally of the registrations the state holds.
pub fn evolve(mut state: Event, fact: &EventFact) -> Event {
    if let EventFact::EventDrafted {
        event_id,
        venue_id,
        title,
        description,
        category,
        starts_at,
        ends_at,
        timezone,
        capacity,
        max_per_order,
    } = fact
    {
        if !state.exists() {
            state.id = Some(*event_id);
            state.venue_id = Some(*venue_id);
            state.status = EventStatus::Draft;
            state.title = title.clone();
            state.description = description.clone();
            state.category = category.clone();
            state.starts_at = Some(*starts_at);
            state.ends_at = Some(*ends_at);
            state.timezone = timezone.clone();
            state.capacity = *capacity;
            state.max_per_order = *max_per_order;
        }
        return state;
    }
    if !state.exists() {
        return state;
    }
    match fact {
        EventFact::EventDrafted { .. } => {}
        EventFact::EventDetailsUpdated(change) => {
            if let Some(title) = &change.title {
                state.title = title.clone();
            }
            if let Some(description) = &change.description {
                state.description = description.clone();
            }
            if let Some(category) = &change.category {
                state.category = category.clone();
            }
            if let Some(starts_at) = change.starts_at {
                state.starts_at = Some(starts_at);
            }
            if let Some(ends_at) = change.ends_at {
                state.ends_at = Some(ends_at);
            }
            if let Some(timezone) = &change.timezone {
                state.timezone = timezone.clone();
            }
            if let Some(max_per_order) = change.max_per_order {
                state.max_per_order = max_per_order;
            }
        }
        EventFact::TicketTypeAdded {
            ticket_type_id,
            name,
            price,
            quantity,
            sales_start,
            sales_end,
        } => {
            state
                .ticket_types
                .entry(*ticket_type_id)
                .or_insert_with(|| TicketType {
                    id: *ticket_type_id,
                    name: name.clone(),
                    price: price.clone(),
                    quantity: *quantity,
                    sales_start: *sales_start,
                    sales_end: *sales_end,
                    confirmed: 0,
                });
        }
        EventFact::EventPublished { .. } => {
            // Publication never revives a cancelled event.
            if state.status == EventStatus::Draft {
                state.status = EventStatus::Published;
            }
        }
        EventFact::EventCancelled { .. } => state.status = EventStatus::Cancelled,
        EventFact::EventCapacityChanged { capacity } => state.capacity = *capacity,
        EventFact::RegistrationConfirmed {
            registration_id,
            ticket_type_id,
            attendee,
            quantity,
            ticket_codes,
            ..
        } => {
            if state.registrations.contains_key(registration_id) {
                return state;
            }
            let Some(ticket_type) = state.ticket_types.get_mut(ticket_type_id) else {
                return state;
            };
            ticket_type.confirmed = ticket_type.confirmed.saturating_add(*quantity);
            state.issued_codes.extend(ticket_codes.iter().cloned());
            state.registrations.insert(
                *registration_id,
                Registration {
                    id: *registration_id,
                    ticket_type_id: *ticket_type_id,
                    attendee: attendee.clone(),
                    quantity: *quantity,
                    ticket_codes: ticket_codes.clone(),
                    status: RegistrationStatus::Confirmed,
                },
            );
        }
        EventFact::RegistrationCancelled {
            registration_id, ..
        } => {
            // The registration itself says which seats it held; the fact repeats that for
            // readers of the log that do not fold the whole stream.
            let Some(registration) = state.registrations.get_mut(registration_id) else {
                return state;
            };
            if registration.status == RegistrationStatus::Cancelled {
                return state;
            }
            registration.status = RegistrationStatus::Cancelled;
            if let Some(ticket_type) = state.ticket_types.get_mut(&registration.ticket_type_id) {
                ticket_type.confirmed = ticket_type.confirmed.saturating_sub(registration.quantity);
            }
        }
    }
    state
}

fn invalid(field: &'static str, message: impl Into<String>) -> EventError {
    EventError::Invalid {
        field,
        message: message.into(),
    }
}

fn invalid_state(state: &Event, message: &'static str) -> EventError {
    EventError::InvalidState {
        status: state.status,
        message,
    }
}

/// The state, or `NotFound` when the event was never drafted.
fn existing(state: &Event) -> Result<&Event, EventError> {
    if state.exists() {
        Ok(state)
    } else {
        Err(EventError::NotFound)
    }
}

fn refuse_if_cancelled(state: &Event, message: &'static str) -> Result<(), EventError> {
    if state.status == EventStatus::Cancelled {
        return Err(invalid_state(state, message));
    }
    Ok(())
}

/// True once the event's end has passed: the end is exclusive.
fn has_ended(state: &Event, now: Timestamp) -> bool {
    state.ends_at.is_some_and(|ends_at| now >= ends_at)
}

/// Trims `value`, which must then be non-empty and at most `max` characters.
fn required_text(field: &'static str, value: &str, max: usize) -> Result<String, EventError> {
    let value = optional_text(field, value, max)?;
    if value.is_empty() {
        return Err(invalid(field, "must not be blank"));
    }
    Ok(value)
}

/// Trims `value`, which must then be at most `max` characters; empty is fine.
fn optional_text(field: &'static str, value: &str, max: usize) -> Result<String, EventError> {
    let value = value.trim();
    if value.chars().count() > max {
        return Err(invalid(field, format!("must be at most {max} characters")));
    }
    Ok(value.to_owned())
}

fn check_schedule(starts_at: Timestamp, ends_at: Timestamp) -> Result<(), EventError> {
    if starts_at >= ends_at {
        return Err(invalid("ends_at", "must be after starts_at"));
    }
    Ok(())
}

fn check_not_over(ends_at: Timestamp, now: Timestamp) -> Result<(), EventError> {
    if ends_at <= now {
        return Err(invalid("ends_at", "must be in the future"));
    }
    Ok(())
}

fn check_capacity(capacity: u32, venue: VenueInfo) -> Result<(), EventError> {
    if capacity == 0 {
        return Err(invalid("capacity", "must be at least 1"));
    }
    if capacity > venue.capacity {
        return Err(EventError::CapacityExceedsVenue {
            capacity,
            venue_capacity: venue.capacity,
        });
    }
    Ok(())
}

fn check_max_per_order(max_per_order: u32) -> Result<(), EventError> {
    if !(1..=MAX_PER_ORDER_LIMIT).contains(&max_per_order) {
        return Err(invalid(
            "max_per_order",
            format!("must be between 1 and {MAX_PER_ORDER_LIMIT}"),
        ));
    }
    Ok(())
}

/// Trims the address and returns it if it looks like an e-mail address.
fn check_email(email: &str) -> Result<String, EventError> {
    let email = email.trim();
    if looks_like_email(email) {
        Ok(email.to_owned())
    } else {
        Err(invalid("attendee.email", "must be an e-mail address"))
    }
}

/// True when `email` has the shape `local@domain.tld`: exactly one `@`, a non-empty local part,
/// a domain of non-empty dot-separated labels with at least one dot, no whitespace, and at most
/// [`MAX_EMAIL_LEN`] characters. Deliverability is the mailer's business, not the domain's.
pub fn looks_like_email(email: &str) -> bool {
    if email.is_empty()
        || email.chars().count() > MAX_EMAIL_LEN
        || email.chars().any(char::is_whitespace)
    {
        return false;
    }
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty())
}

/// One well-formed code per seat, none repeated, none issued before for this event.
fn check_ticket_codes(
    state: &Event,
    codes: &[TicketCode],
    quantity: u32,
) -> Result<(), EventError> {
    if u32::try_from(codes.len()) != Ok(quantity) {
        return Err(invalid(
            "ticket_codes",
            format!(
                "expected one code per seat ({quantity}), got {}",
                codes.len()
            ),
        ));
    }
    if !codes.iter().all(TicketCode::is_well_formed) {
        return Err(invalid(
            "ticket_codes",
            "every code must be 32 to 64 characters of [0-9A-Za-z_-]",
        ));
    }
    let mut seen = BTreeSet::new();
    if !codes.iter().all(|code| seen.insert(code)) {
        return Err(invalid("ticket_codes", "codes must be distinct"));
    }
    if codes.iter().any(|code| state.issued_codes.contains(code)) {
        return Err(invalid("ticket_codes", "a code was already issued"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
