//! Writes a realistic log for measuring `marquee projections rebuild`: venues, events with three
//! ticket types each, publications, registrations (about one in eight cancelled again), a few
//! renames and capacity changes — all encoded through the domain's `FactCodec`, as the command
//! side writes them.
//!
//! `cargo run --release -p marquee-projector --example seed_log -- URL FACTS [ORGANIZATION]`
//! (URL: `sqlite://PATH` or `postgres://…`; FACTS: roughly how many facts to write;
//! ORGANIZATION: an organization id to record in every fact's metadata, as the command side does
//! for the organization's venues and events — what `/v1/log?organization_id=` filters on).

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use marquee_domain::event::{Attendee, EventFact};
use marquee_domain::venue::VenueFact;
use marquee_domain::{
    EventId, FactCodec, Money, RegistrationId, TicketCode, TicketTypeId, VenueId,
};
use marquee_store::{AppendRequest, EventStore, ExpectedRevision, FactMetadata, NewFact};
use uuid::Uuid;

/// Registration facts per event: a few hundred, like a mid-sized event.
const PER_EVENT: usize = 200;
/// Facts per append (one transaction), so seeding a million takes seconds, not hours.
const PER_APPEND: usize = 500;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(total)) = (args.next(), args.next()) else {
        return Err("usage: seed_log URL FACTS [ORGANIZATION]".into());
    };
    let total: usize = total.parse()?;
    let metadata = FactMetadata {
        organization: args.next(),
        ..FactMetadata::default()
    };
    let store = marquee_store::connect(&url).await?;
    let started = Instant::now();
    let t0: DateTime<Utc> = "2026-01-01T09:00:00Z".parse()?;
    let mut written = 0;
    let mut venue = VenueId(Uuid::now_v7());
    let mut n = 0usize;
    while written < total {
        if n.is_multiple_of(20) {
            venue = VenueId(Uuid::now_v7());
            written += append(
                store.as_ref(),
                &metadata,
                &venue.stream(),
                vec![VenueFact::VenueCreated {
                    venue_id: venue,
                    name: format!("Hall {n}"),
                    city: ["Berlin", "Lisbon", "Paris", "Oslo"][n % 4].to_owned(),
                    address: Some(format!("{n} Main Street")),
                    capacity: 5_000,
                    timezone: "Europe/Berlin".to_owned(),
                    created_at: t0,
                }],
            )
            .await?;
        }
        let event = EventId(Uuid::now_v7());
        let types = [0, 1, 2].map(|_| TicketTypeId(Uuid::now_v7()));
        let starts = t0 + Duration::days(30 + (n % 300) as i64) + Duration::hours(n as i64 % 24);
        let mut facts = vec![EventFact::EventDrafted {
            event_id: event,
            venue_id: venue,
            title: format!("Concert {n}"),
            description: "An evening of music".to_owned(),
            category: ["Music", "Theatre", "Talks"][n % 3].to_owned(),
            starts_at: starts,
            ends_at: starts + Duration::hours(3),
            timezone: "Europe/Berlin".to_owned(),
            capacity: 1_000,
            max_per_order: 10,
        }];
        for (i, t) in types.iter().enumerate() {
            facts.push(EventFact::TicketTypeAdded {
                ticket_type_id: *t,
                name: ["Standard", "Reduced", "VIP"][i].to_owned(),
                price: Money {
                    amount_minor: [2500, 1500, 9000][i],
                    currency: "EUR".to_owned(),
                },
                quantity: 400,
                sales_start: None,
                sales_end: None,
            });
        }
        facts.push(EventFact::EventPublished { published_at: t0 });
        let mut held: Vec<(RegistrationId, TicketTypeId, u32)> = Vec::new();
        for i in 0..PER_EVENT {
            if i % 8 == 7
                && let Some((r, t, q)) = held.pop()
            {
                facts.push(EventFact::RegistrationCancelled {
                    registration_id: r,
                    ticket_type_id: t,
                    quantity: q,
                    cancelled_at: t0 + Duration::days(2),
                });
                continue;
            }
            let r = RegistrationId(Uuid::now_v7());
            let t = types[i % 3];
            let q = 1 + (i % 3) as u32;
            held.push((r, t, q));
            facts.push(EventFact::RegistrationConfirmed {
                registration_id: r,
                ticket_type_id: t,
                attendee: Attendee {
                    name: format!("Guest {i}"),
                    email: format!("guest{i}@example.org"),
                },
                quantity: q,
                ticket_codes: (0..q)
                    .map(|_| TicketCode(Uuid::new_v4().simple().to_string()))
                    .collect(),
                confirmed_at: t0 + Duration::days(1),
            });
        }
        if n.is_multiple_of(10) {
            facts.push(EventFact::EventCapacityChanged { capacity: 1_200 });
        }
        for chunk in facts.chunks(PER_APPEND) {
            written += append(store.as_ref(), &metadata, &event.stream(), chunk.to_vec()).await?;
        }
        n += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("seeded {written} facts ({n} events) in {seconds:.1} s");
    Ok(())
}

async fn append<F: FactCodec>(
    store: &dyn EventStore,
    metadata: &FactMetadata,
    stream: &str,
    facts: Vec<F>,
) -> Result<usize, Box<dyn std::error::Error>> {
    let count = facts.len();
    let facts = facts
        .into_iter()
        .map(|fact| {
            let (fact_type, schema_version, data) = fact.encode();
            NewFact {
                fact_id: Uuid::now_v7(),
                fact_type,
                schema_version,
                data,
                metadata: metadata.clone(),
            }
        })
        .collect();
    store
        .append(AppendRequest {
            stream: stream.to_owned(),
            expected: ExpectedRevision::Any,
            facts,
            idempotency: None,
        })
        .await?;
    Ok(count)
}
