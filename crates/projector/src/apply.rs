//! Applying facts to the read models, one batch per transaction.
//!
//! A batch checks that its process still holds the projector lease (see `lease`), locks and
//! reads the checkpoint, skips every fact at or below it, applies the rest and
//! moves the checkpoint, all in one transaction: a crash loses the whole batch or nothing, and a
//! redelivered fact counts nothing twice. Events touched by a batch are loaded once, changed in
//! memory and written back once at the end, so a burst of registrations on one event costs one
//! read and one write, not one per fact. Registrations, tickets, waitlist entries and timers
//! are handled the same way, set-based (see `rows`): loaded with a few statements before the
//! batch, changed in memory, written with multi-row statements at the end. What each ticketing
//! fact does to them is in [`ticketing`].
//!
//! Personal data in the facts is opened before the batch's transaction begins (see
//! `crate::personal`); `UserErased` replaces the erased person's data in the rows that hold it.

mod analytics;
mod search;
mod ticketing;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use marquee_domain::event::{DetailsChange, EventFact, EventStatus, WaitlistStatus};
use marquee_domain::user::UserFact;
use marquee_domain::venue::VenueFact;
use marquee_domain::{ERASED, FactCodec};
use marquee_store::RecordedFact;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Row, Transaction};
use uuid::Uuid;

use crate::ProjectorError;
use crate::lease::fence;
use crate::personal::{self, Readable};
use crate::read_models::{PROJECTION, ReadModels, to_u64};
use crate::registrations::Rows;
use crate::tables::{LIVE, Tables};
use crate::time::to_text;
use crate::timers::TimerKind;

use self::analytics::{Analytics, Observed};
use self::search::SearchWrite;

/// Applies `facts` (in position order) to the live read models in one transaction and returns
/// the checkpoint after it. Fails with [`ProjectorError::LeaseLost`], writing nothing, unless
/// `holder` holds the lease.
pub(crate) async fn apply_batch(
    read: &ReadModels,
    facts: &[RecordedFact],
    holder: &str,
) -> Result<u64, ProjectorError> {
    // Before the transaction: the keys live in another table set, and the write lock (on
    // SQLite, the whole file's) is not held while they are read.
    let facts = personal::open(read.vault(), facts).await?;
    let mut tx: Transaction<'static, Any> = read.begin_write().await?;
    // First, in the same transaction as the writes: a projector that lost its lease (paused
    // past its term while a standby took over) must not write, whatever it believes.
    fence(&mut tx, holder).await?;
    let (before, after) = apply_in(&mut tx, &LIVE, &facts).await?;
    if after == before {
        // Everything was already applied: nothing to write.
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(after)
}

/// Applies `facts` (in position order, personal data opened) to the table set `tables` inside
/// the caller's transaction: locks and reads that set's checkpoint, skips every fact at or below
/// it, applies the rest and moves the checkpoint. Returns the checkpoint before and after; the
/// caller commits (or rolls back when they are equal, nothing having been written).
pub(crate) async fn apply_in(
    conn: &mut AnyConnection,
    tables: &'static Tables,
    facts: &[Readable<'_>],
) -> Result<(u64, u64), ProjectorError> {
    // A no-op write takes the checkpoint row's lock on Postgres, so two projectors on one
    // database apply batches one after the other instead of both applying the same facts.
    sqlx::query(tables.sql("UPDATE {checkpoints} SET position = position WHERE projection = $1"))
        .bind(PROJECTION)
        .execute(&mut *conn)
        .await?;
    let row = sqlx::query(tables.sql("SELECT position FROM {checkpoints} WHERE projection = $1"))
        .bind(PROJECTION)
        .fetch_optional(&mut *conn)
        .await?;
    let checkpoint = match row {
        Some(row) => to_u64(row.try_get::<i64, _>("position")?)?,
        None => {
            sqlx::query(
                tables.sql("INSERT INTO {checkpoints} (projection, position) VALUES ($1, 0)"),
            )
            .bind(PROJECTION)
            .execute(&mut *conn)
            .await?;
            0
        }
    };

    let mut decoded = Vec::with_capacity(facts.len());
    let mut applied = checkpoint;
    for fact in facts.iter().filter(|f| f.recorded.position > checkpoint) {
        if fact.recorded.position <= applied {
            tracing::warn!(
                position = fact.recorded.position,
                "fact out of position order, skipped"
            );
            continue;
        }
        decoded.extend(decode(fact));
        applied = fact.recorded.position;
    }
    if applied == checkpoint {
        return Ok((checkpoint, checkpoint));
    }
    let mut batch = Batch::new(tables);
    batch.preload(&mut *conn, &decoded).await?;
    for fact in decoded {
        batch.apply(&mut *conn, fact).await?;
    }
    batch.flush(&mut *conn).await?;
    sqlx::query(tables.sql("UPDATE {checkpoints} SET position = $1 WHERE projection = $2"))
        .bind(to_i64(applied))
        .bind(PROJECTION)
        .execute(&mut *conn)
        .await?;
    Ok((checkpoint, applied))
}

/// A fact this projector models, decoded, with its stream's id and its position.
enum Decoded {
    Venue {
        venue_id: String,
        fact: VenueFact,
        position: i64,
    },
    Event {
        event_id: String,
        fact: EventFact,
        position: i64,
        /// When the log recorded it: the time of facts that carry none of their own.
        recorded_at: DateTime<Utc>,
        /// The person its sealed personal data belongs to, if it holds any.
        person: Option<String>,
    },
    /// `UserErased`: the person's data goes from every row that holds it.
    Erased { person_id: String },
}

impl Decoded {
    /// The registration whose row the fact reads or writes.
    fn registration_id(&self) -> Option<String> {
        let Decoded::Event { fact, .. } = self else {
            return None;
        };
        match fact {
            EventFact::RegistrationConfirmed {
                registration_id, ..
            }
            | EventFact::RegistrationCancelled {
                registration_id, ..
            }
            | EventFact::SeatsHeld {
                registration_id, ..
            }
            | EventFact::HoldConfirmed {
                registration_id, ..
            }
            | EventFact::HoldExpired {
                registration_id, ..
            }
            | EventFact::AnswersGiven {
                registration_id, ..
            }
            | EventFact::PaymentPending {
                registration_id, ..
            }
            | EventFact::PaymentDeclined {
                registration_id, ..
            }
            | EventFact::PaymentReceived {
                registration_id, ..
            }
            | EventFact::RefundDue {
                registration_id, ..
            }
            | EventFact::RefundCompleted {
                registration_id, ..
            }
            | EventFact::RegistrationHolderRecorded {
                registration_id, ..
            } => Some(registration_id.0.to_string()),
            _ => None,
        }
    }

    /// The event whose questions and answers analytics must have loaded for this fact.
    fn answering_event_id(&self) -> Option<String> {
        match self {
            Decoded::Event { event_id, fact, .. } if Observed::touches_answers(fact) => {
                Some(event_id.clone())
            }
            _ => None,
        }
    }

    /// The registration whose payments analytics reads or writes for this fact.
    fn paying_registration_id(&self) -> Option<String> {
        match self {
            Decoded::Event { fact, .. } => Observed::payment_registration(fact),
            _ => None,
        }
    }

    /// The waitlist entry whose row the fact reads or writes.
    fn entry_id(&self) -> Option<String> {
        let Decoded::Event { fact, .. } = self else {
            return None;
        };
        match fact {
            EventFact::WaitlistJoined { entry_id, .. }
            | EventFact::WaitlistOfferMade { entry_id, .. }
            | EventFact::WaitlistOfferExpired { entry_id, .. }
            | EventFact::WaitlistOfferClaimed { entry_id, .. }
            | EventFact::WaitlistLeft { entry_id, .. } => Some(entry_id.0.to_string()),
            _ => None,
        }
    }

    /// The registration whose tickets a door scan (or its revert) needs: the scanned ticket is
    /// among them. New tickets are not looked up: they are inserted without overwriting (see
    /// `rows`).
    fn scanned_registration_id(&self) -> Option<String> {
        let Decoded::Event { fact, .. } = self else {
            return None;
        };
        match fact {
            EventFact::TicketCheckedIn {
                registration_id, ..
            }
            | EventFact::CheckInReverted {
                registration_id, ..
            } => Some(registration_id.0.to_string()),
            _ => None,
        }
    }
}

/// Where an event fact applies: its event, its position, when the log recorded it, and whose
/// personal data it holds.
struct At<'a> {
    event_id: &'a str,
    position: i64,
    recorded_at: DateTime<Utc>,
    person: Option<&'a str>,
}

/// Decodes one fact. Facts this projector does not model, or cannot decode, are logged and
/// skipped (`None`): the checkpoint still moves past them.
fn decode(readable: &Readable<'_>) -> Option<Decoded> {
    let fact = readable.recorded;
    let (aggregate, id) = match fact.stream.split_once('-') {
        Some((aggregate, id)) => (aggregate, id),
        None => (fact.stream.as_str(), ""),
    };
    if aggregate == UserFact::AGGREGATE && fact.fact_type == "UserErased" {
        return match UserFact::decode(&fact.fact_type, fact.schema_version, fact.data.clone()) {
            Ok(UserFact::UserErased { person_id, .. }) => Some(Decoded::Erased { person_id }),
            Ok(_) => None,
            Err(error) => {
                skipped(fact, &error);
                None
            }
        };
    }
    if aggregate != VenueFact::AGGREGATE && aggregate != EventFact::AGGREGATE {
        tracing::debug!(stream = %fact.stream, position = fact.position, "not a read-model stream");
        return None;
    }
    let Ok(id) = Uuid::parse_str(id) else {
        tracing::warn!(stream = %fact.stream, position = fact.position, "stream name without a valid id, fact skipped");
        return None;
    };
    let id = id.to_string();
    let position = to_i64(fact.position);
    if aggregate == VenueFact::AGGREGATE {
        match VenueFact::decode(&fact.fact_type, fact.schema_version, fact.data.clone()) {
            Ok(venue_fact) => Some(Decoded::Venue {
                venue_id: id,
                fact: venue_fact,
                position,
            }),
            Err(error) => {
                skipped(fact, &error);
                None
            }
        }
    } else {
        match EventFact::decode(
            &fact.fact_type,
            fact.schema_version,
            readable.data().clone(),
        ) {
            Ok(event_fact) => Some(Decoded::Event {
                event_id: id,
                fact: event_fact,
                position,
                recorded_at: fact.recorded_at,
                person: readable.person.clone(),
            }),
            Err(error) => {
                skipped(fact, &error);
                None
            }
        }
    }
}

/// What a batch has touched: events loaded once and written back at the end, and
/// registrations, tickets, waitlist entries and timers likewise.
struct Batch {
    /// Which table set it writes.
    tables: &'static Tables,
    /// By event id text; `None` caches "no such event in the read models".
    events: HashMap<String, Option<EventDoc>>,
    /// The other rows the batch's facts name.
    rows: Rows,
    /// What the batch counts into the analytics tables.
    analytics: Analytics,
}

/// One `event_listing` row with its `event_capacity` rows.
struct EventDoc {
    listing: Listing,
    ticket_types: Vec<TicketTypeRow>,
    dirty: bool,
    /// Whether the search row must be written.
    search: SearchWrite,
}

/// An `event_listing` row as stored.
struct Listing {
    event_id: String,
    venue_id: String,
    venue_name: String,
    city: String,
    title: String,
    description: String,
    category: String,
    status: &'static str,
    starts_at: String,
    ends_at: String,
    timezone: String,
    capacity: i64,
    confirmed: i64,
    held: i64,
    offered: i64,
    waitlist: i64,
    available: i64,
    /// How many entries ever joined the event's waitlist: the next entry's `seq`.
    waitlist_joined: i64,
    max_per_order: i64,
    min_price_minor: Option<i64>,
    min_price_currency: Option<String>,
    published_at: Option<String>,
    cancelled_at: Option<String>,
    last_position: i64,
}

/// An `event_capacity` row as stored.
struct TicketTypeRow {
    ticket_type_id: String,
    name: String,
    price_minor: i64,
    currency: String,
    quantity: i64,
    confirmed: i64,
    /// Seats of unpaid holds.
    held: i64,
    /// Seats kept for open waitlist offers.
    offered: i64,
    /// Waitlist entries still waiting for an offer.
    waitlist: i64,
    available: i64,
    sales_start: Option<String>,
    sales_end: Option<String>,
    added_position: i64,
}

impl TicketTypeRow {
    /// Seats taken: confirmed, held or offered.
    fn used(&self) -> i64 {
        self.confirmed + self.held + self.offered
    }
}

impl EventDoc {
    /// Re-derives every count that depends on others: the event's totals and available seats,
    /// each ticket type's available seats (the domain's `Event::available`: what neither the
    /// type's quantity nor the event's capacity has left after confirmed, held and offered
    /// seats), and the lowest price.
    fn recompute(&mut self) {
        let sum =
            |count: fn(&TicketTypeRow) -> i64| -> i64 { self.ticket_types.iter().map(count).sum() };
        let (confirmed, held, offered, waitlist) = (
            sum(|t| t.confirmed),
            sum(|t| t.held),
            sum(|t| t.offered),
            sum(|t| t.waitlist),
        );
        let event_left = (self.listing.capacity - (confirmed + held + offered)).max(0);
        self.listing.confirmed = confirmed;
        self.listing.held = held;
        self.listing.offered = offered;
        self.listing.waitlist = waitlist;
        self.listing.available = event_left;
        for ticket_type in &mut self.ticket_types {
            ticket_type.available = (ticket_type.quantity - ticket_type.used())
                .min(event_left)
                .max(0);
        }
        let cheapest = self.ticket_types.iter().min_by_key(|t| t.price_minor);
        self.listing.min_price_minor = cheapest.map(|t| t.price_minor);
        self.listing.min_price_currency = cheapest.map(|t| t.currency.clone());
    }

    fn ticket_type_mut(&mut self, id: &str) -> Option<&mut TicketTypeRow> {
        self.ticket_types
            .iter_mut()
            .find(|t| t.ticket_type_id == id)
    }
}

impl Batch {
    fn new(tables: &'static Tables) -> Self {
        Self {
            tables,
            events: HashMap::new(),
            rows: Rows::default(),
            analytics: Analytics::default(),
        }
    }

    /// Loads the stored registrations, waitlist entries and tickets the facts name, a few
    /// statements for the whole batch.
    async fn preload(
        &mut self,
        conn: &mut AnyConnection,
        facts: &[Decoded],
    ) -> Result<(), ProjectorError> {
        let ids = |id: fn(&Decoded) -> Option<String>| facts.iter().filter_map(id).collect();
        let registrations: Vec<String> = ids(Decoded::registration_id);
        let entries: Vec<String> = ids(Decoded::entry_id);
        let scanned: Vec<String> = ids(Decoded::scanned_registration_id);
        self.rows
            .registrations
            .load(&mut *conn, self.tables, &registrations)
            .await?;
        self.rows
            .waitlist
            .load(&mut *conn, self.tables, &entries)
            .await?;
        self.rows
            .tickets
            .load(&mut *conn, self.tables, &scanned)
            .await?;
        let answering: Vec<String> = ids(Decoded::answering_event_id);
        let paying: Vec<String> = ids(Decoded::paying_registration_id);
        self.analytics
            .load(&mut *conn, self.tables, &answering, &paying)
            .await?;
        Ok(())
    }

    /// Applies one decoded fact.
    async fn apply(
        &mut self,
        conn: &mut AnyConnection,
        fact: Decoded,
    ) -> Result<(), ProjectorError> {
        match fact {
            Decoded::Venue {
                venue_id,
                fact,
                position,
            } => self.apply_venue(conn, &venue_id, fact, position).await,
            Decoded::Event {
                event_id,
                fact,
                position,
                recorded_at,
                person,
            } => {
                let at = At {
                    event_id: &event_id,
                    position,
                    recorded_at,
                    person: person.as_deref(),
                };
                self.apply_event(conn, &at, fact).await
            }
            Decoded::Erased { person_id } => self.erase(conn, &person_id).await,
        }
    }

    /// `UserErased`: the person's name, e-mail address and answers become [`ERASED`] in every
    /// registration and waitlist entry that holds them, as a rebuild would read them from the
    /// log. The rows keep their position and time: erasure is not an event of theirs.
    async fn erase(
        &mut self,
        conn: &mut AnyConnection,
        person_id: &str,
    ) -> Result<(), ProjectorError> {
        let tables = self.tables;
        let rows = &mut self.rows;
        rows.registrations
            .load_where(&mut *conn, tables, "person_id = $1", person_id)
            .await?;
        rows.waitlist
            .load_where(&mut *conn, tables, "person_id = $1", person_id)
            .await?;
        let theirs = |person: &Option<String>| person.as_deref() == Some(person_id);
        // Their answers stop counting before they are replaced (see `analytics`).
        let counted = rows
            .registrations
            .iter()
            .filter(|r| theirs(&r.person_id))
            .map(|r| (r.event_id.clone(), r.status, r.answers.clone()))
            .collect();
        self.analytics.erase(&mut *conn, tables, counted).await?;
        rows.registrations.update_all(
            |r| theirs(&r.person_id),
            |r| {
                let answers =
                    personal::erased_answers(&r.answers).unwrap_or_else(|| "{}".to_owned());
                if r.attendee_name == ERASED && r.attendee_email == ERASED && r.answers == answers {
                    return None;
                }
                r.attendee_name = ERASED.to_owned();
                r.attendee_email = ERASED.to_owned();
                r.answers = answers;
                Some(())
            },
        );
        rows.waitlist.update_all(
            |e| theirs(&e.person_id),
            |e| {
                if e.attendee_name == ERASED && e.attendee_email == ERASED {
                    return None;
                }
                e.attendee_name = ERASED.to_owned();
                e.attendee_email = ERASED.to_owned();
                Some(())
            },
        );
        Ok(())
    }

    async fn apply_venue(
        &mut self,
        conn: &mut AnyConnection,
        venue_id: &str,
        fact: VenueFact,
        position: i64,
    ) -> Result<(), ProjectorError> {
        let tables = self.tables;
        match fact {
            VenueFact::VenueCreated {
                name,
                city,
                address,
                capacity,
                timezone,
                created_at,
                ..
            } => {
                sqlx::query(
                    tables.sql("INSERT INTO {venues} \
                     (venue_id, name, city, address, capacity, timezone, created_at, last_position) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (venue_id) DO UPDATE SET name = excluded.name, \
                     city = excluded.city, address = excluded.address, \
                     capacity = excluded.capacity, timezone = excluded.timezone, \
                     created_at = excluded.created_at, last_position = excluded.last_position"),
                )
                .bind(venue_id)
                .bind(&name)
                .bind(&city)
                .bind(address)
                .bind(i64::from(capacity))
                .bind(timezone)
                .bind(to_text(created_at))
                .bind(position)
                .execute(&mut *conn)
                .await?;
                self.set_venue_on_events(conn, venue_id, &name, Some(&city))
                    .await
            }
            VenueFact::VenueRenamed { name } => {
                sqlx::query(
                    tables.sql(
                        "UPDATE {venues} SET name = $1, last_position = $2 WHERE venue_id = $3",
                    ),
                )
                .bind(&name)
                .bind(position)
                .bind(venue_id)
                .execute(&mut *conn)
                .await?;
                self.set_venue_on_events(conn, venue_id, &name, None).await
            }
            VenueFact::VenueCapacityChanged { capacity } => {
                sqlx::query(tables.sql(
                    "UPDATE {venues} SET capacity = $1, last_position = $2 WHERE venue_id = $3",
                ))
                .bind(i64::from(capacity))
                .bind(position)
                .bind(venue_id)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }
            // The venue's calendar is the command side's concern; events carry their own times.
            VenueFact::EventBooked { .. } | VenueFact::EventReleased { .. } => Ok(()),
        }
    }

    /// Copies a venue's name (and city) onto its events, in the database and in this batch.
    async fn set_venue_on_events(
        &mut self,
        conn: &mut AnyConnection,
        venue_id: &str,
        name: &str,
        city: Option<&str>,
    ) -> Result<(), ProjectorError> {
        let tables = self.tables;
        match city {
            Some(city) => {
                sqlx::query(tables.sql(
                    "UPDATE {listing} SET venue_name = $1, city = $2, city_key = $3 \
                     WHERE venue_id = $4",
                ))
                .bind(name)
                .bind(city)
                .bind(search_key(city))
                .bind(venue_id)
                .execute(&mut *conn)
                .await?;
            }
            None => {
                sqlx::query(tables.sql("UPDATE {listing} SET venue_name = $1 WHERE venue_id = $2"))
                    .bind(name)
                    .bind(venue_id)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        for doc in self.events.values_mut().flatten() {
            if doc.listing.venue_id == venue_id {
                doc.listing.venue_name = name.to_owned();
                if let Some(city) = city {
                    doc.listing.city = city.to_owned();
                }
            }
        }
        Ok(())
    }

    async fn apply_event(
        &mut self,
        conn: &mut AnyConnection,
        at: &At<'_>,
        fact: EventFact,
    ) -> Result<(), ProjectorError> {
        let tables = self.tables;
        let (event_id, position) = (at.event_id, at.position);
        if let EventFact::EventDrafted {
            venue_id,
            title,
            description,
            category,
            starts_at,
            ends_at,
            timezone,
            capacity,
            max_per_order,
            ..
        } = fact
        {
            let venue_id = venue_id.0.to_string();
            let venue =
                sqlx::query(tables.sql("SELECT name, city FROM {venues} WHERE venue_id = $1"))
                    .bind(&venue_id)
                    .fetch_optional(&mut *conn)
                    .await?;
            let (venue_name, city) = match venue {
                Some(row) => (row.try_get("name")?, row.try_get("city")?),
                None => {
                    tracing::warn!(%event_id, %venue_id, "event drafted at a venue the read models do not know");
                    (String::new(), String::new())
                }
            };
            let existing = self.load(conn, event_id).await?;
            let waitlist_joined = existing.as_ref().map_or(0, |d| d.listing.waitlist_joined);
            let search = existing
                .as_ref()
                .map_or(SearchWrite::Insert, |d| d.search.changed());
            let ticket_types = existing.map(|d| std::mem::take(&mut d.ticket_types));
            let mut doc = EventDoc {
                listing: Listing {
                    event_id: event_id.to_owned(),
                    venue_id,
                    venue_name,
                    city,
                    title,
                    description,
                    category,
                    status: status_text(EventStatus::Draft),
                    starts_at: to_text(starts_at),
                    ends_at: to_text(ends_at),
                    timezone,
                    capacity: i64::from(capacity),
                    confirmed: 0,
                    held: 0,
                    offered: 0,
                    waitlist: 0,
                    available: 0,
                    waitlist_joined,
                    max_per_order: i64::from(max_per_order),
                    min_price_minor: None,
                    min_price_currency: None,
                    published_at: None,
                    cancelled_at: None,
                    last_position: position,
                },
                ticket_types: ticket_types.unwrap_or_default(),
                dirty: true,
                search,
            };
            doc.recompute();
            self.events.insert(event_id.to_owned(), Some(doc));
            return Ok(());
        }

        if matches!(fact, EventFact::EventCancelled { .. }) {
            // Every entry still in line is closed: the batch must know them all.
            self.rows
                .waitlist
                .load_where(
                    &mut *conn,
                    tables,
                    "event_id = $1 AND status IN ('waiting', 'offered')",
                    event_id,
                )
                .await?;
        }
        // Encoding a fact to name its type is not free: only for the warning.
        let unknown_event_fact = match self.load(conn, event_id).await? {
            Some(_) => None,
            None => Some(fact.fact_type()),
        };
        let Batch {
            events,
            rows,
            analytics,
            ..
        } = self;
        let mut doc = events.get_mut(event_id).and_then(Option::as_mut);
        let applied = match fact {
            EventFact::EventDrafted { .. } => true,
            EventFact::EventDetailsUpdated(change) => {
                if let Some(doc) = doc.as_deref_mut() {
                    if change.title.is_some() || change.description.is_some() {
                        doc.search = doc.search.changed();
                    }
                    apply_details(&mut doc.listing, change);
                }
                true
            }
            EventFact::TicketTypeAdded {
                ticket_type_id,
                name,
                price,
                quantity,
                sales_start,
                sales_end,
            } => {
                if let Some(doc) = doc.as_deref_mut() {
                    let row = TicketTypeRow {
                        ticket_type_id: ticket_type_id.0.to_string(),
                        name,
                        price_minor: price.amount_minor,
                        currency: price.currency,
                        quantity: i64::from(quantity),
                        confirmed: 0,
                        held: 0,
                        offered: 0,
                        waitlist: 0,
                        available: 0,
                        sales_start: sales_start.map(to_text),
                        sales_end: sales_end.map(to_text),
                        added_position: position,
                    };
                    match doc.ticket_type_mut(&row.ticket_type_id) {
                        Some(existing) => {
                            // A repeated addition keeps the seats already counted.
                            *existing = TicketTypeRow {
                                confirmed: existing.confirmed,
                                held: existing.held,
                                offered: existing.offered,
                                waitlist: existing.waitlist,
                                added_position: existing.added_position,
                                ..row
                            };
                        }
                        None => doc.ticket_types.push(row),
                    }
                }
                true
            }
            EventFact::EventPublished { published_at } => {
                if let Some(doc) = doc.as_deref_mut() {
                    doc.listing.status = status_text(EventStatus::Published);
                    doc.listing.published_at = Some(to_text(published_at));
                }
                true
            }
            EventFact::EventCancelled { cancelled_at, .. } => {
                // Nobody waits for a cancelled event: open offers give their seats back and
                // every entry still in line is closed. The registrations' cancellations follow
                // in the same append.
                let when = to_text(cancelled_at);
                let closed = rows.waitlist.update_all(
                    |e| {
                        e.event_id == event_id
                            && matches!(e.status, WaitlistStatus::Waiting | WaitlistStatus::Offered)
                    },
                    |e| {
                        let offered = e.status == WaitlistStatus::Offered;
                        e.status = WaitlistStatus::Closed;
                        e.offer_expires_at = None;
                        e.updated_at = when.clone();
                        e.last_position = position;
                        Some((e.entry_id.clone(), offered))
                    },
                );
                for (entry_id, offered) in closed {
                    if offered {
                        rows.timers.remove(TimerKind::ExpireOffer, &entry_id);
                    }
                }
                if let Some(doc) = doc.as_deref_mut() {
                    doc.listing.status = status_text(EventStatus::Cancelled);
                    doc.listing.cancelled_at = Some(when);
                    for ticket_type in &mut doc.ticket_types {
                        ticket_type.offered = 0;
                        ticket_type.waitlist = 0;
                    }
                }
                true
            }
            EventFact::EventCapacityChanged { capacity } => {
                if let Some(doc) = doc.as_deref_mut() {
                    doc.listing.capacity = i64::from(capacity);
                }
                true
            }
            EventFact::EventRescheduled {
                starts_at, ends_at, ..
            } => {
                if let Some(doc) = doc.as_deref_mut() {
                    doc.listing.starts_at = to_text(starts_at);
                    doc.listing.ends_at = to_text(ends_at);
                }
                true
            }
            EventFact::RegistrationQuestionsSet { questions } => {
                analytics.questions_set(event_id, &questions, position);
                true
            }
            // The command side's business: nothing to show.
            EventFact::EventPolicyChanged(_) => true,
            // Which account holds a registration: "my tickets". The event's own rows do not
            // change.
            EventFact::RegistrationHolderRecorded {
                registration_id,
                holder,
            } => {
                let id = registration_id.0.to_string();
                let holder = holder.to_string();
                let known = rows.registrations.update(&id, |r| {
                    if r.holder.as_deref() == Some(holder.as_str()) {
                        return None;
                    }
                    r.holder = Some(holder.clone());
                    Some(())
                });
                if known.is_none() && rows.registrations.get(&id).is_none() {
                    tracing::warn!(%event_id, %registration_id, "holder of an unknown registration, ignored");
                }
                false
            }
            // Registrations, payments, the waitlist and check-ins change their rows (whether or
            // not the event is known) and the event's seat counts; analytics counts what they
            // changed.
            fact => {
                let observed = Observed::of(rows, event_id, &fact);
                let applied = ticketing::apply(rows, doc.as_deref_mut(), at, fact);
                if applied {
                    analytics.record(observed, rows, doc.as_deref(), at);
                }
                applied
            }
        };
        if !applied {
            return Ok(());
        }
        let Some(doc) = doc else {
            let fact_type = unknown_event_fact.unwrap_or_default();
            tracing::warn!(%event_id, position, %fact_type, "fact for an event the read models do not know, skipped");
            return Ok(());
        };
        doc.recompute();
        doc.listing.last_position = position;
        doc.dirty = true;
        Ok(())
    }

    /// The event's rows, from this batch's cache or the database.
    async fn load(
        &mut self,
        conn: &mut AnyConnection,
        event_id: &str,
    ) -> Result<Option<&mut EventDoc>, ProjectorError> {
        if !self.events.contains_key(event_id) {
            let doc = load_doc(conn, self.tables, event_id).await?;
            self.events.insert(event_id.to_owned(), doc);
        }
        Ok(self.events.get_mut(event_id).and_then(Option::as_mut))
    }

    /// Writes back every row and event the batch changed.
    async fn flush(&mut self, conn: &mut AnyConnection) -> Result<(), ProjectorError> {
        self.rows.registrations.flush(conn, self.tables).await?;
        self.rows.tickets.flush(conn, self.tables).await?;
        self.rows.waitlist.flush(conn, self.tables).await?;
        self.rows.timers.flush(conn, self.tables).await?;
        self.analytics.flush(conn, self.tables).await?;
        for doc in self.events.values().flatten().filter(|d| d.dirty) {
            write_doc(conn, self.tables, doc).await?;
            search::write(conn, self.tables, doc).await?;
            analytics::write_dimensions(conn, self.tables, doc).await?;
        }
        Ok(())
    }
}

fn skipped(fact: &RecordedFact, error: &marquee_domain::DecodeError) {
    tracing::warn!(
        position = fact.position,
        stream = %fact.stream,
        fact_type = %fact.fact_type,
        %error,
        "fact not understood, skipped"
    );
}

fn apply_details(listing: &mut Listing, change: DetailsChange) {
    let DetailsChange {
        title,
        description,
        category,
        starts_at,
        ends_at,
        timezone,
        max_per_order,
    } = change;
    if let Some(title) = title {
        listing.title = title;
    }
    if let Some(description) = description {
        listing.description = description;
    }
    if let Some(category) = category {
        listing.category = category;
    }
    if let Some(starts_at) = starts_at {
        listing.starts_at = to_text(starts_at);
    }
    if let Some(ends_at) = ends_at {
        listing.ends_at = to_text(ends_at);
    }
    if let Some(timezone) = timezone {
        listing.timezone = timezone;
    }
    if let Some(max_per_order) = max_per_order {
        listing.max_per_order = i64::from(max_per_order);
    }
}

const LISTING_COLUMNS: &str = "event_id, venue_id, venue_name, city, title, description, \
    category, status, starts_at, ends_at, timezone, capacity, confirmed, held, offered, waitlist, \
    available, waitlist_joined, max_per_order, min_price_minor, min_price_currency, published_at, \
    cancelled_at, last_position";

async fn load_doc(
    conn: &mut AnyConnection,
    tables: &Tables,
    event_id: &str,
) -> Result<Option<EventDoc>, ProjectorError> {
    let sql = tables
        .sql("SELECT {columns} FROM {listing} WHERE event_id = $1")
        .0
        .replace("{columns}", LISTING_COLUMNS);
    let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(event_id)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let listing = listing_from_row(&row)?;
    let rows = sqlx::query(tables.sql(
        "SELECT ticket_type_id, name, price_minor, currency, quantity, confirmed, held, offered, \
         waitlist, available, sales_start, sales_end, added_position FROM {capacity} \
         WHERE event_id = $1 ORDER BY added_position, ticket_type_id",
    ))
    .bind(event_id)
    .fetch_all(&mut *conn)
    .await?;
    let ticket_types = rows
        .iter()
        .map(|row| {
            Ok(TicketTypeRow {
                ticket_type_id: row.try_get("ticket_type_id")?,
                name: row.try_get("name")?,
                price_minor: row.try_get("price_minor")?,
                currency: row.try_get("currency")?,
                quantity: row.try_get("quantity")?,
                confirmed: row.try_get("confirmed")?,
                held: row.try_get("held")?,
                offered: row.try_get("offered")?,
                waitlist: row.try_get("waitlist")?,
                available: row.try_get("available")?,
                sales_start: row.try_get("sales_start")?,
                sales_end: row.try_get("sales_end")?,
                added_position: row.try_get("added_position")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Some(EventDoc {
        listing,
        ticket_types,
        dirty: false,
        search: SearchWrite::Unchanged,
    }))
}

fn listing_from_row(row: &AnyRow) -> Result<Listing, ProjectorError> {
    let status: String = row.try_get("status")?;
    Ok(Listing {
        event_id: row.try_get("event_id")?,
        venue_id: row.try_get("venue_id")?,
        venue_name: row.try_get("venue_name")?,
        city: row.try_get("city")?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        category: row.try_get("category")?,
        status: parse_status(&status)
            .map(status_text)
            .ok_or_else(|| ProjectorError::Corrupt(format!("event status `{status}`")))?,
        starts_at: row.try_get("starts_at")?,
        ends_at: row.try_get("ends_at")?,
        timezone: row.try_get("timezone")?,
        capacity: row.try_get("capacity")?,
        confirmed: row.try_get("confirmed")?,
        held: row.try_get("held")?,
        offered: row.try_get("offered")?,
        waitlist: row.try_get("waitlist")?,
        available: row.try_get("available")?,
        waitlist_joined: row.try_get("waitlist_joined")?,
        max_per_order: row.try_get("max_per_order")?,
        min_price_minor: row.try_get("min_price_minor")?,
        min_price_currency: row.try_get("min_price_currency")?,
        published_at: row.try_get("published_at")?,
        cancelled_at: row.try_get("cancelled_at")?,
        last_position: row.try_get("last_position")?,
    })
}

async fn write_doc(
    conn: &mut AnyConnection,
    tables: &Tables,
    doc: &EventDoc,
) -> Result<(), ProjectorError> {
    let l = &doc.listing;
    sqlx::query(tables.sql(
        "INSERT INTO {listing} (event_id, venue_id, venue_name, city, city_key, title, \
         description, category, category_key, status, starts_at, ends_at, timezone, capacity, \
         confirmed, held, offered, waitlist, available, waitlist_joined, max_per_order, \
         min_price_minor, min_price_currency, published_at, cancelled_at, last_position, \
         title_key) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19, $20, $21, $22, $23, $24, $25, $26, $27) \
         ON CONFLICT (event_id) DO UPDATE SET venue_id = excluded.venue_id, \
         venue_name = excluded.venue_name, city = excluded.city, city_key = excluded.city_key, \
         title = excluded.title, title_key = excluded.title_key, \
         description = excluded.description, \
         category = excluded.category, category_key = excluded.category_key, \
         status = excluded.status, starts_at = excluded.starts_at, ends_at = excluded.ends_at, \
         timezone = excluded.timezone, capacity = excluded.capacity, \
         confirmed = excluded.confirmed, held = excluded.held, offered = excluded.offered, \
         waitlist = excluded.waitlist, available = excluded.available, \
         waitlist_joined = excluded.waitlist_joined, \
         max_per_order = excluded.max_per_order, min_price_minor = excluded.min_price_minor, \
         min_price_currency = excluded.min_price_currency, published_at = excluded.published_at, \
         cancelled_at = excluded.cancelled_at, last_position = excluded.last_position",
    ))
    .bind(&l.event_id)
    .bind(&l.venue_id)
    .bind(&l.venue_name)
    .bind(&l.city)
    .bind(search_key(&l.city))
    .bind(&l.title)
    .bind(&l.description)
    .bind(&l.category)
    .bind(search_key(&l.category))
    .bind(l.status)
    .bind(&l.starts_at)
    .bind(&l.ends_at)
    .bind(&l.timezone)
    .bind(l.capacity)
    .bind(l.confirmed)
    .bind(l.held)
    .bind(l.offered)
    .bind(l.waitlist)
    .bind(l.available)
    .bind(l.waitlist_joined)
    .bind(l.max_per_order)
    .bind(l.min_price_minor)
    .bind(&l.min_price_currency)
    .bind(&l.published_at)
    .bind(&l.cancelled_at)
    .bind(l.last_position)
    .bind(search_key(&l.title))
    .execute(&mut *conn)
    .await?;
    for t in &doc.ticket_types {
        sqlx::query(tables.sql(
            "INSERT INTO {capacity} (event_id, ticket_type_id, name, price_minor, currency, \
             quantity, confirmed, held, offered, waitlist, available, sales_start, sales_end, \
             added_position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (event_id, ticket_type_id) DO UPDATE SET name = excluded.name, \
             price_minor = excluded.price_minor, currency = excluded.currency, \
             quantity = excluded.quantity, confirmed = excluded.confirmed, \
             held = excluded.held, offered = excluded.offered, waitlist = excluded.waitlist, \
             available = excluded.available, sales_start = excluded.sales_start, \
             sales_end = excluded.sales_end, added_position = excluded.added_position",
        ))
        .bind(&l.event_id)
        .bind(&t.ticket_type_id)
        .bind(&t.name)
        .bind(t.price_minor)
        .bind(&t.currency)
        .bind(t.quantity)
        .bind(t.confirmed)
        .bind(t.held)
        .bind(t.offered)
        .bind(t.waitlist)
        .bind(t.available)
        .bind(&t.sales_start)
        .bind(&t.sales_end)
        .bind(t.added_position)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The stored spelling of a status, the same as the API's.
pub(crate) fn status_text(status: EventStatus) -> &'static str {
    match status {
        EventStatus::Draft => "draft",
        EventStatus::Published => "published",
        EventStatus::Cancelled => "cancelled",
    }
}

/// The inverse of [`status_text`].
pub(crate) fn parse_status(text: &str) -> Option<EventStatus> {
    match text {
        "draft" => Some(EventStatus::Draft),
        "published" => Some(EventStatus::Published),
        "cancelled" => Some(EventStatus::Cancelled),
        _ => None,
    }
}

/// The lower-cased copy that case-insensitive filters compare against.
pub(crate) fn search_key(text: &str) -> String {
    text.trim().to_lowercase()
}

/// Positions fit in BIGINT for any log that will ever exist; saturate rather than wrap.
pub(crate) fn to_i64(position: u64) -> i64 {
    i64::try_from(position).unwrap_or(i64::MAX)
}
