//! `GET /v1/events/{id}?as_of=<position or RFC 3339 time>`: an event as it was at a past point
//! of the log, folded from its stream with the domain's own `evolve`, not read from the read
//! models (which only know the present).
//!
//! - `as_of=<position>`: every fact of the event up to that log position, inclusive.
//! - `as_of=<time>`: every fact of the event recorded at or before that time (`recorded_at`,
//!   the log's commit time, which follows position order).
//!
//! The answer has the event page's shape (`GET /v1/events/{id}`), counts computed as the read
//! models compute them from the folded state, the venue's name and city folded from the venue's
//! stream at the same point, and one more member, `as_of`: the `position`, `revision` and
//! `recorded_at` of the event's last fact folded. 404 when the event did not exist yet at that
//! point; 400 for a position past the log's head or a time in the future (history is not there
//! yet). History includes drafts: owners, organizers and auditors of the event's organization
//! only ([`crate::access::HISTORY`]).

use axum::Json;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use marquee_domain::event::{self, Event, EventFact, EventStatus};
use marquee_domain::venue::{self, Venue, VenueFact};
use marquee_domain::{EventId, FactCodec, TicketTypeId};
use marquee_projector::queries::status_name;
use marquee_store::RecordedFact;
use uuid::Uuid;

use crate::access::{HISTORY, authorize};
use crate::events::{AsOf, EventJson, MoneyJson, TicketTypeJson, VenueJson, parse_time};
use crate::{ApiError, QueryState};

/// Facts read per page while folding a stream.
const PAGE: usize = 500;

/// Up to where the log is folded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cutoff {
    /// Facts at or below this position.
    Position(u64),
    /// Facts recorded at or before this time.
    Time(DateTime<Utc>),
}

impl Cutoff {
    fn includes(self, fact: &RecordedFact) -> bool {
        match self {
            Cutoff::Position(position) => fact.position <= position,
            Cutoff::Time(at) => fact.recorded_at <= at,
        }
    }
}

/// Answers `GET /v1/events/{id}` when its query names `as_of` (see the [module docs](self)).
pub(crate) async fn event_as_of(
    state: &QueryState,
    headers: &HeaderMap,
    id: &str,
    pairs: Vec<(String, String)>,
) -> Result<Response, ApiError> {
    // A malformed id is as unknown as a missing one, whatever the parameters say.
    let event_id = EventId(Uuid::parse_str(id).map_err(|_| ApiError::NotFound("event"))?);
    authorize(state, headers, &event_id.stream(), "event", HISTORY).await?;
    let mut as_of = None;
    for (field, value) in super::known_once(pairs, &["as_of"])? {
        as_of = Some(parse_cutoff(field, &value)?);
    }
    let cutoff = as_of.ok_or_else(|| ApiError::validation("as_of", "is required"))?;
    match cutoff {
        Cutoff::Position(position) => {
            let head = state.store.head_position().await?;
            if position > head {
                return Err(ApiError::validation(
                    "as_of",
                    format!("position {position} is past the end of the log ({head})"),
                ));
            }
        }
        Cutoff::Time(at) if at > Utc::now() => {
            return Err(ApiError::validation("as_of", "must not be in the future"));
        }
        Cutoff::Time(_) => {}
    }
    let past = fold_event(state, event_id, cutoff)
        .await?
        .ok_or(ApiError::NotFound("event"))?;
    let venue = match past.event.venue_id {
        Some(venue_id) => fold_venue(state, &venue_id.stream(), cutoff).await?,
        None => Venue::default(),
    };
    Ok(Json(page(event_id, past, venue)).into_response())
}

/// `as_of`: digits are a position, anything else an RFC 3339 time.
fn parse_cutoff(field: &'static str, value: &str) -> Result<Cutoff, ApiError> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value
            .parse()
            .map(Cutoff::Position)
            .map_err(|_| ApiError::validation(field, "is too large"));
    }
    parse_time(field, value)
        .map(Cutoff::Time)
        .map_err(|_| ApiError::validation(field, "must be a log position or an RFC 3339 time"))
}

/// An event folded up to a cutoff, with what the page shows that the domain state does not keep.
struct PastEvent {
    event: Event,
    published_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
    /// Ticket types in the order they were added: the event page's order.
    ticket_types: Vec<TicketTypeId>,
    /// The last fact folded.
    last: AsOf,
}

/// Folds the event's stream up to `cutoff`; `None` if it has no fact there.
async fn fold_event(
    state: &QueryState,
    event_id: EventId,
    cutoff: Cutoff,
) -> Result<Option<PastEvent>, ApiError> {
    let stream = event_id.stream();
    let mut past: Option<PastEvent> = None;
    let mut from = 0;
    loop {
        let page = state.store.read_stream(&stream, from, PAGE).await?;
        let full = page.len() == PAGE;
        for recorded in page {
            if !cutoff.includes(&recorded) {
                return Ok(past);
            }
            from = recorded.revision + 1;
            let fact =
                EventFact::decode(&recorded.fact_type, recorded.schema_version, recorded.data)
                    .map_err(|e| {
                        ApiError::Internal(format!("{stream} revision {}: {e}", recorded.revision))
                    })?;
            let last = AsOf {
                position: recorded.position,
                revision: recorded.revision,
                recorded_at: recorded.recorded_at,
            };
            let folded = past.get_or_insert_with(|| PastEvent {
                event: Event::default(),
                published_at: None,
                cancelled_at: None,
                ticket_types: Vec::new(),
                last,
            });
            folded.event = event::evolve(std::mem::take(&mut folded.event), &fact);
            match &fact {
                EventFact::TicketTypeAdded { ticket_type_id, .. }
                    if folded.event.ticket_types.contains_key(ticket_type_id)
                        && !folded.ticket_types.contains(ticket_type_id) =>
                {
                    folded.ticket_types.push(*ticket_type_id);
                }
                EventFact::EventPublished { published_at }
                    if folded.event.status == EventStatus::Published =>
                {
                    folded.published_at = Some(*published_at);
                }
                EventFact::EventCancelled { cancelled_at, .. }
                    if folded.event.status == EventStatus::Cancelled =>
                {
                    folded.cancelled_at = Some(*cancelled_at);
                }
                _ => {}
            }
            folded.last = last;
        }
        if !full {
            return Ok(past);
        }
    }
}

/// Folds a venue's stream up to `cutoff` (its name and city as they were).
async fn fold_venue(state: &QueryState, stream: &str, cutoff: Cutoff) -> Result<Venue, ApiError> {
    let mut venue = Venue::default();
    let mut from = 0;
    loop {
        let page = state.store.read_stream(stream, from, PAGE).await?;
        let full = page.len() == PAGE;
        for recorded in page {
            if !cutoff.includes(&recorded) {
                return Ok(venue);
            }
            from = recorded.revision + 1;
            let fact =
                VenueFact::decode(&recorded.fact_type, recorded.schema_version, recorded.data)
                    .map_err(|e| {
                        ApiError::Internal(format!("{stream} revision {}: {e}", recorded.revision))
                    })?;
            venue = venue::evolve(venue, &fact);
        }
        if !full {
            return Ok(venue);
        }
    }
}

/// The event page of a folded event, counting seats as the read models do.
fn page(event_id: EventId, past: PastEvent, venue: Venue) -> EventJson {
    let PastEvent {
        event: e,
        published_at,
        cancelled_at,
        ticket_types: order,
        last,
    } = past;
    let event_left = e.capacity.saturating_sub(e.used());
    let ticket_types: Vec<TicketTypeJson> = order
        .iter()
        .filter_map(|id| e.ticket_types.get(id))
        .map(|t| TicketTypeJson {
            ticket_type_id: t.id.0,
            name: t.name.clone(),
            price: MoneyJson {
                amount_minor: t.price.amount_minor,
                currency: t.price.currency.clone(),
            },
            quantity: u64::from(t.quantity),
            confirmed: u64::from(t.confirmed),
            held: u64::from(t.held),
            offered: u64::from(t.offered),
            available: u64::from(e.available(t.id)),
            waitlist: t.waiting.len() as u64,
            sales_start: t.sales_start,
            sales_end: t.sales_end,
        })
        .collect();
    // The first of the cheapest, in page order, as the read models pick it.
    let min_price = ticket_types
        .iter()
        .min_by_key(|t| t.price.amount_minor)
        .map(|t| MoneyJson {
            amount_minor: t.price.amount_minor,
            currency: t.price.currency.clone(),
        });
    let (confirmed, held) = (u64::from(e.confirmed()), u64::from(e.held()));
    let offered = ticket_types.iter().map(|t| t.offered).sum();
    let waitlist = ticket_types.iter().map(|t| t.waitlist).sum();
    EventJson {
        event_id: event_id.0,
        status: status_name(e.status),
        title: e.title,
        description: e.description,
        category: e.category,
        venue: VenueJson {
            id: e.venue_id.map_or(Uuid::nil(), |v| v.0),
            name: venue.name,
            city: venue.city,
        },
        starts_at: e.starts_at.unwrap_or_default(),
        ends_at: e.ends_at.unwrap_or_default(),
        timezone: e.timezone,
        capacity: u64::from(e.capacity),
        confirmed,
        held,
        offered,
        available: u64::from(event_left),
        waitlist,
        max_per_order: u64::from(e.max_per_order),
        min_price,
        published_at,
        cancelled_at,
        ticket_types,
        as_of: Some(last),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_of_is_a_position_when_all_digits_and_a_time_otherwise() {
        assert_eq!(
            parse_cutoff("as_of", "42").expect("position"),
            Cutoff::Position(42)
        );
        assert_eq!(
            parse_cutoff("as_of", "2026-06-01T20:00:00+02:00").expect("time"),
            Cutoff::Time("2026-06-01T18:00:00Z".parse().expect("time"))
        );
        for bad in [
            "",
            "-1",
            "yesterday",
            "2026-06-01",
            "99999999999999999999999",
        ] {
            assert!(
                matches!(
                    parse_cutoff("as_of", bad),
                    Err(ApiError::Validation { field: "as_of", .. })
                ),
                "{bad:?}"
            );
        }
    }
}
