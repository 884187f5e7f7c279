//! `marquee bench append|load`: the store and the command engine measured in process, against a
//! real database.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use marquee_command_api::engine::{Engine, EventAggregate};
use marquee_domain::event::{Attendee, EventFact};
use marquee_domain::{
    EventId, FactCodec, Money, RegistrationId, TicketCode, TicketTypeId, VenueId,
};
use marquee_store::{
    AppendRequest, EventStore, ExpectedRevision, FactMetadata, NewFact, StoreOptions,
};
use serde_json::json;
use uuid::Uuid;

use super::{millis, percentile};

/// Options of `marquee bench append`.
#[derive(Debug, Args)]
pub struct AppendArgs {
    /// The log to write to (use a throwaway database).
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Facts in each append (one append = one atomic multi-fact write to one new stream).
    #[arg(long, default_value_t = 1)]
    facts_per_append: usize,
    /// Concurrent writers.
    #[arg(long, default_value_t = 32)]
    writers: usize,
    /// Appends in total.
    #[arg(long, default_value_t = 20_000)]
    appends: usize,
}

/// Options of `marquee bench load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The log to write to (use a throwaway database).
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Facts in the aggregate's stream.
    #[arg(long, default_value_t = 100_000)]
    facts: usize,
    /// Loads to time, each way.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// What the stream holds after its set-up: `registrations` (confirm/cancel pairs: the state
    /// grows with history, as every registration is kept) or `updates` (capacity changes: the
    /// state stays the same size, so only the fold cost is measured).
    #[arg(long, value_enum, default_value_t = Shape::Registrations)]
    shape: Shape,
}

/// The facts of a long stream in `marquee bench load`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    Registrations,
    Updates,
}

fn backend(url: &str) -> &'static str {
    match url.split(':').next() {
        Some("postgres" | "postgresql") => "postgres",
        Some("sqlite") => "sqlite",
        _ => "memory",
    }
}

/// A fact about the size of a real registration.
fn sample_fact(n: usize) -> NewFact {
    NewFact {
        fact_id: Uuid::now_v7(),
        fact_type: "BenchFact".into(),
        schema_version: 1,
        data: json!({
            "registration_id": Uuid::now_v7(),
            "ticket_type_id": Uuid::now_v7(),
            "attendee": { "name": format!("Guest {n}"), "email": format!("guest{n}@example.com") },
            "quantity": 1,
        }),
        metadata: FactMetadata {
            correlation_id: Some(Uuid::now_v7()),
            causation_id: None,
            actor: Some("bench".into()),
            organization: None,
        },
    }
}

/// `marquee bench append`.
pub async fn append(args: AppendArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.facts_per_append > 0 && args.writers > 0,
        "counts must be positive"
    );
    let store = marquee_store::connect(&args.database_url)
        .await
        .context("opening the log")?;
    let per_writer = args.appends.div_ceil(args.writers);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.writers {
        let store = store.clone();
        let facts = args.facts_per_append;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_writer);
            for n in 0..per_writer {
                let request = AppendRequest {
                    stream: format!("bench-{}", Uuid::now_v7()),
                    expected: ExpectedRevision::NoStream,
                    facts: (0..facts).map(|i| sample_fact(n * facts + i)).collect(),
                    idempotency: None,
                };
                let t = Instant::now();
                store.append(request).await?;
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let appends = latencies.len();
    let facts = appends * args.facts_per_append;
    println!(
        "bench append backend={} facts_per_append={} writers={} appends={} facts={} seconds={:.2} appends_per_s={:.0} facts_per_s={:.0} p50_ms={:.2} p99_ms={:.2}",
        backend(&args.database_url),
        args.facts_per_append,
        args.writers,
        appends,
        facts,
        elapsed,
        appends as f64 / elapsed,
        facts as f64 / elapsed,
        millis(percentile(&latencies, 0.50)),
        millis(percentile(&latencies, 0.99)),
    );
    Ok(())
}

/// `marquee bench load`.
pub async fn load(args: LoadArgs) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    let clock = Arc::new(move || now);
    let store = marquee_store::connect_with(
        &args.database_url,
        StoreOptions {
            snapshot_every: 0,
            ..StoreOptions::default()
        },
    )
    .await
    .context("opening the log")?;
    let stream = write_long_stream(&store, args.facts, args.shape, now).await?;

    let without = Engine::new(store.clone(), clock.clone());
    let folded = time_loads(&without, &stream, args.rounds).await?;

    let with_store = marquee_store::connect(&args.database_url)
        .await
        .context("opening the log")?;
    let with = Engine::new(with_store, clock);
    with.take_snapshot::<EventAggregate>(&stream)
        .await
        .map_err(|e| anyhow::anyhow!("snapshot: {e}"))?;
    let snapshotted = time_loads(&with, &stream, args.rounds).await?;
    println!(
        "bench load backend={} shape={:?} facts={} rounds={} full_fold_ms={:.1} from_snapshot_ms={:.1}",
        backend(&args.database_url),
        args.shape,
        args.facts,
        args.rounds,
        millis(folded),
        millis(snapshotted),
    );
    Ok(())
}

/// Median load time of `rounds` loads.
async fn time_loads(engine: &Engine, stream: &str, rounds: usize) -> anyhow::Result<Duration> {
    let mut times = Vec::new();
    for _ in 0..rounds.max(1) {
        let t = Instant::now();
        engine
            .load::<EventAggregate>(stream)
            .await
            .map_err(|e| anyhow::anyhow!("load: {e}"))?;
        times.push(t.elapsed());
    }
    times.sort_unstable();
    Ok(percentile(&times, 0.5))
}

/// An event stream of `facts` facts: set-up, then single-seat registrations and cancellations.
async fn write_long_stream(
    store: &Arc<dyn EventStore>,
    facts: usize,
    shape: Shape,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<String> {
    let event_id = EventId(Uuid::now_v7());
    let venue_id = VenueId(Uuid::now_v7());
    let ticket_type_id = TicketTypeId(Uuid::now_v7());
    let starts = now + chrono::Duration::days(30);
    let mut all = vec![
        EventFact::EventDrafted {
            event_id,
            venue_id,
            title: "Long stream".into(),
            description: String::new(),
            category: "bench".into(),
            starts_at: starts,
            ends_at: starts + chrono::Duration::hours(2),
            timezone: "UTC".into(),
            capacity: 10,
            max_per_order: 10,
        },
        EventFact::TicketTypeAdded {
            ticket_type_id,
            name: "GA".into(),
            price: Money {
                amount_minor: 0,
                currency: "EUR".into(),
            },
            quantity: 10,
            sales_start: None,
            sales_end: None,
        },
        EventFact::EventPublished { published_at: now },
    ];
    // Alternate confirm / cancel so the state stays small and valid however long the stream.
    let mut n = 0usize;
    while shape == Shape::Updates && all.len() < facts {
        all.push(EventFact::EventCapacityChanged {
            capacity: 10 + (all.len() % 2) as u32,
        });
    }
    while all.len() < facts {
        let registration_id = RegistrationId(Uuid::now_v7());
        all.push(EventFact::RegistrationConfirmed {
            registration_id,
            ticket_type_id,
            attendee: Attendee {
                name: format!("Guest {n}"),
                email: format!("guest{n}@example.com"),
            },
            quantity: 1,
            ticket_codes: vec![TicketCode(format!("{:032x}", n + 1))],
            confirmed_at: now,
        });
        all.push(EventFact::RegistrationCancelled {
            registration_id,
            ticket_type_id,
            quantity: 1,
            cancelled_at: now,
        });
        n += 1;
    }
    all.truncate(facts.max(3));
    let stream = event_id.stream();
    for chunk in all.chunks(1000) {
        let facts = chunk
            .iter()
            .map(|fact| {
                let (fact_type, schema_version, data) = fact.encode();
                NewFact {
                    fact_id: Uuid::now_v7(),
                    fact_type,
                    schema_version,
                    data,
                    metadata: FactMetadata::default(),
                }
            })
            .collect();
        store
            .append(AppendRequest {
                stream: stream.clone(),
                expected: ExpectedRevision::Any,
                facts,
                idempotency: None,
            })
            .await?;
    }
    Ok(stream)
}
