//! `marquee bench mixed`: ordinary traffic on many events at once. Each client picks, per
//! request, a reservation (~70%), a cancellation of a registration it made earlier (~20%) or a
//! read of one event's details on the query API (~10%), on a random event.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde::de::IgnoredAny;
use tokio::task::JoinSet;
use uuid::Uuid;

use super::http::{
    Accepted, Api, ErrorKinds, NameBuffer, OnSale, Progress, Reply, Reservation, Reserved, Targets,
    label_field, quantiles, rate, send,
};

/// Requests in flight while the events are set up.
const SET_UP_CONCURRENCY: usize = 32;

/// Options of `marquee bench mixed`.
#[derive(Debug, Args)]
pub struct MixedArgs {
    #[command(flatten)]
    targets: Targets,
    /// Published events to spread the traffic over.
    #[arg(long, default_value_t = 1_000)]
    events: usize,
    /// Seats of each event (its capacity and its one free ticket type's quantity).
    #[arg(long, default_value_t = 100)]
    capacity: u32,
    /// Concurrent clients, each sending its next request when the previous one is answered.
    #[arg(long, default_value_t = 200)]
    clients: usize,
    /// Requests in total, of all kinds.
    #[arg(long, default_value_t = 20_000)]
    commands: u64,
    /// Echoed in the output line to tell runs apart (see `bench rush --label`).
    #[arg(long)]
    label: Option<String>,
}

/// The kinds of request in the mix, in output order.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Reserve,
    Cancel,
    Query,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Reserve, Kind::Cancel, Kind::Query];

    fn name(self) -> &'static str {
        match self {
            Kind::Reserve => "reserve",
            Kind::Cancel => "cancel",
            Kind::Query => "query",
        }
    }
}

/// What one client saw, per kind (indexed like [`Kind::ALL`]).
#[derive(Default)]
struct Tally {
    latencies: [Vec<Duration>; 3],
    /// Reservations confirmed.
    confirmed: u64,
    /// Reservations refused with `409 sold_out`: expected on a full event, not an error.
    sold_out: u64,
    /// Errors, as `<kind>/<error kind>`.
    errors: ErrorKinds,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        for (mine, theirs) in self.latencies.iter_mut().zip(other.latencies) {
            mine.extend(theirs);
        }
        self.confirmed += other.confirmed;
        self.sold_out += other.sold_out;
        self.errors.merge(other.errors);
    }
}

/// `marquee bench mixed`: sets up the events, runs the mix, prints one line.
pub async fn run(args: MixedArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.events > 0 && args.capacity > 0 && args.clients > 0 && args.commands > 0,
        "--events, --capacity, --clients and --commands must be positive"
    );
    let api = Api::connect(&args.targets, args.clients.max(SET_UP_CONCURRENCY)).await?;
    eprintln!(
        "mixed: setting up {} free events of {} seats at {}",
        args.events, args.capacity, args.targets.command_url
    );
    let venue_id = api.venue(args.capacity).await?;
    let events = api
        .free_events(venue_id, args.events, args.capacity, SET_UP_CONCURRENCY)
        .await?;
    // Reads of events the read model does not have yet would be 404s, not a measurement.
    let last = events
        .iter()
        .max_by_key(|e| e.position)
        .context("no event was set up")?;
    api.capacity_at(last.event_id, last.position).await?;
    eprintln!(
        "mixed: {} clients send {} requests (~70% reserve, ~20% cancel, ~10% query)",
        args.clients, args.commands
    );

    let events: Arc<[OnSale]> = events.into();
    let next = Arc::new(AtomicU64::new(0));
    let progress = Arc::new(Progress::default());
    let reporter = progress.report("mixed", args.commands);
    let started = Instant::now();
    let mut clients = JoinSet::new();
    for _ in 0..args.clients {
        clients.spawn(client(
            api.clone(),
            events.clone(),
            next.clone(),
            args.commands,
            progress.clone(),
        ));
    }
    let mut tally = Tally::default();
    while let Some(done) = clients.join_next().await {
        tally.merge(done.context("a client task panicked")?);
    }
    reporter.abort();
    let elapsed = started.elapsed();

    let requests: u64 = tally.latencies.iter().map(|l| l.len() as u64).sum();
    let mut line = format!(
        "bench mixed{} events={} capacity={} clients={} requests={requests} seconds={:.2} requests_per_s={:.0}",
        label_field(args.label.as_deref()),
        args.events,
        args.capacity,
        args.clients,
        elapsed.as_secs_f64(),
        rate(requests, elapsed),
    );
    for (kind, latencies) in Kind::ALL.iter().zip(tally.latencies.iter_mut()) {
        latencies.sort_unstable();
        let name = kind.name();
        line.push_str(&format!(
            " {name}={} {name}_per_s={:.0} {}",
            latencies.len(),
            rate(latencies.len() as u64, elapsed),
            quantiles(&format!("{name}_"), latencies),
        ));
    }
    line.push_str(&format!(
        " confirmed={} sold_out={} errors={} error_kinds={}",
        tally.confirmed,
        tally.sold_out,
        tally.errors.total(),
        tally.errors
    ));
    println!("{line}");
    tally.errors.explain("mixed");
    Ok(())
}

/// One client: takes request numbers until all are taken and sends one request of a random
/// kind for each, remembering the registrations it made so that it can cancel them.
async fn client(
    api: Api,
    events: Arc<[OnSale]>,
    next: Arc<AtomicU64>,
    commands: u64,
    progress: Arc<Progress>,
) -> Tally {
    let mut rng = SmallRng::from_rng(&mut rand::rng());
    let mut names = NameBuffer::default();
    let mut mine: Vec<(Uuid, Uuid)> = Vec::new();
    let mut tally = Tally::default();
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= commands {
            return tally;
        }
        let roll = rng.random_range(0..100);
        // A client with nothing to cancel reserves instead, so the mix stays close to 70/20/10.
        let kind = match roll {
            0..70 => Kind::Reserve,
            70..90 if mine.is_empty() => Kind::Reserve,
            70..90 => Kind::Cancel,
            _ => Kind::Query,
        };
        let sent = Instant::now();
        match kind {
            Kind::Reserve => {
                let sale = events[rng.random_range(0..events.len())];
                let quantity = rng.random_range(1..=2);
                let request = api
                    .client
                    .post(api.command(&format!("/v1/events/{}/reservations", sale.event_id)))
                    .json(&Reservation::numbered(
                        sale.ticket_type_id,
                        quantity,
                        n,
                        &mut names,
                    ));
                match send::<Reserved>(request, StatusCode::CREATED).await {
                    Reply::Done(reserved) => {
                        tally.confirmed += 1;
                        progress.confirmed.fetch_add(1, Ordering::Relaxed);
                        mine.push((sale.event_id, reserved.registration_id));
                    }
                    sold_out if sold_out.is_sold_out() => tally.sold_out += 1,
                    other => record(&mut tally.errors, kind, &other),
                }
            }
            Kind::Cancel => {
                let (event_id, registration_id) = mine.swap_remove(rng.random_range(0..mine.len()));
                let request = api.client.post(api.command(&format!(
                    "/v1/events/{event_id}/reservations/{registration_id}/cancel"
                )));
                match send::<Accepted>(request, StatusCode::OK).await {
                    Reply::Done(_) => {}
                    other => record(&mut tally.errors, kind, &other),
                }
            }
            Kind::Query => {
                let sale = events[rng.random_range(0..events.len())];
                let request = api
                    .client
                    .get(api.query(&format!("/v1/events/{}", sale.event_id)));
                match send::<IgnoredAny>(request, StatusCode::OK).await {
                    Reply::Done(_) => {}
                    other => record(&mut tally.errors, kind, &other),
                }
            }
        }
        tally.latencies[kind as usize].push(sent.elapsed());
        progress.answered.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts a refusal or failure of a `kind` request as `<kind>/<error kind>`.
fn record<T>(errors: &mut ErrorKinds, kind: Kind, reply: &Reply<T>) {
    errors.record_kind(format!("{}/{}", kind.name(), reply.kind()), reply.detail());
}
