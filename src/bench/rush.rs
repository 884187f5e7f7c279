//! `marquee bench rush`: an on-sale rush. Many clients reserve one seat each of a single free
//! event at once, well past sold out; the figures are how fast seats are confirmed and whether
//! any seat was sold twice, counted by the clients and by the query API.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use reqwest::StatusCode;
use tokio::task::JoinSet;

use super::http::{
    Api, ErrorKinds, NameBuffer, OnSale, Progress, Reply, Reservation, Reserved, Targets,
    label_field, quantiles, rate, send,
};

/// Options of `marquee bench rush`.
#[derive(Debug, Args)]
pub struct RushArgs {
    #[command(flatten)]
    targets: Targets,
    /// Seats of the event: its capacity and its one free ticket type's quantity.
    #[arg(long, default_value_t = 10_000)]
    seats: u32,
    /// Concurrent clients, each sending its next attempt when the previous one is answered.
    #[arg(long, default_value_t = 500)]
    clients: usize,
    /// Reservation attempts in total, one seat each, each for a different attendee.
    #[arg(long, default_value_t = 20_000)]
    attempts: u64,
    /// Echoed in the output line to tell runs apart: `key=value` words as they are
    /// (`mode=naive db=postgres`), anything else as `label=<text>`. The server decides its own
    /// mode; this only names it.
    #[arg(long)]
    label: Option<String>,
}

/// One reservation attempt as its client saw it.
struct Attempt {
    sent: Instant,
    answered: Instant,
    outcome: Outcome,
}

enum Outcome {
    /// `201`: the seat is the attendee's; `position` is the fact's place in the log.
    Confirmed { position: u64 },
    /// `409 sold_out`: the answer every attempt after the last seat should get.
    SoldOut,
    /// Anything else, counted by kind in [`ErrorKinds`].
    Error,
}

/// `marquee bench rush`: sets up the event, runs the rush, prints one line, and fails when a
/// seat was oversold or the query API disagrees with what the clients were told.
pub async fn run(args: RushArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.seats > 0 && args.clients > 0 && args.attempts > 0,
        "--seats, --clients and --attempts must be positive"
    );
    let api = Api::connect(&args.targets, args.clients).await?;
    eprintln!(
        "rush: setting up one free event of {} seats at {}",
        args.seats, args.targets.command_url
    );
    let venue_id = api.venue(args.seats).await?;
    let sale = api
        .free_event(venue_id, 0, "Rush", args.seats, args.seats)
        .await?;
    eprintln!(
        "rush: {} clients make {} one-seat reservations of event {}",
        args.clients, args.attempts, sale.event_id
    );

    let next = Arc::new(AtomicU64::new(0));
    let progress = Arc::new(Progress::default());
    let reporter = progress.report("rush", args.attempts);
    let mut clients = JoinSet::new();
    for _ in 0..args.clients {
        clients.spawn(client(
            api.clone(),
            sale,
            next.clone(),
            args.attempts,
            progress.clone(),
        ));
    }
    let mut attempts = Vec::with_capacity(args.attempts as usize);
    let mut errors = ErrorKinds::default();
    while let Some(done) = clients.join_next().await {
        let (mine, their_errors) = done.context("a client task panicked")?;
        attempts.extend(mine);
        errors.merge(their_errors);
    }
    reporter.abort();

    let started = attempts
        .iter()
        .map(|a| a.sent)
        .min()
        .context("no attempt was made")?;
    let finished = attempts.iter().map(|a| a.answered).max().unwrap_or(started);
    let mut all = Vec::with_capacity(attempts.len());
    let mut confirmed = Vec::new();
    let mut sold_out = 0u64;
    let mut last_confirmed = started;
    let mut highest_position = sale.position;
    for attempt in &attempts {
        let latency = attempt.answered - attempt.sent;
        all.push(latency);
        match attempt.outcome {
            Outcome::Confirmed { position } => {
                confirmed.push(latency);
                last_confirmed = last_confirmed.max(attempt.answered);
                highest_position = highest_position.max(position);
            }
            Outcome::SoldOut => sold_out += 1,
            Outcome::Error => {}
        }
    }
    all.sort_unstable();
    confirmed.sort_unstable();

    let shown = api.capacity_at(sale.event_id, highest_position).await?;
    let seats = u64::from(args.seats);
    let confirmed_count = confirmed.len() as u64;
    let oversold = confirmed_count.saturating_sub(seats);
    let oversold_query = shown.confirmed.saturating_sub(seats);
    println!(
        "bench rush{} seats={} clients={} attempts={} confirmed={} sold_out={} errors={} error_kinds={} seconds={:.2} attempts_per_s={:.0} confirmed_per_s={:.0} {} {} confirmed_query={} oversold={} oversold_query={}",
        label_field(args.label.as_deref()),
        seats,
        args.clients,
        attempts.len(),
        confirmed_count,
        sold_out,
        errors.total(),
        errors,
        (finished - started).as_secs_f64(),
        rate(attempts.len() as u64, finished - started),
        rate(confirmed_count, last_confirmed - started),
        quantiles("", &all),
        quantiles("confirmed_", &confirmed),
        shown.confirmed,
        oversold,
        oversold_query,
    );
    errors.explain("rush");
    let expected = seats.min(attempts.len() as u64);
    if confirmed_count < expected {
        eprintln!(
            "rush: {} of {expected} sellable seats were not confirmed (the query API shows {} available)",
            expected - confirmed_count,
            shown.available
        );
    }
    anyhow::ensure!(
        oversold == 0 && oversold_query == 0,
        "OVERSOLD: {seats} seats, clients were told {confirmed_count} confirmed, the query API shows {}",
        shown.confirmed
    );
    anyhow::ensure!(
        shown.confirmed == confirmed_count,
        "the clients were told {confirmed_count} seats confirmed but the query API shows {} at position {highest_position} ({} errors, whose outcome the clients do not know)",
        shown.confirmed,
        errors.total()
    );
    Ok(())
}

/// One client: takes the next attempt number until all are taken, one request at a time.
async fn client(
    api: Api,
    sale: OnSale,
    next: Arc<AtomicU64>,
    attempts: u64,
    progress: Arc<Progress>,
) -> (Vec<Attempt>, ErrorKinds) {
    let url = api.command(&format!("/v1/events/{}/reservations", sale.event_id));
    let mut names = NameBuffer::default();
    let mut mine = Vec::new();
    let mut errors = ErrorKinds::default();
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= attempts {
            return (mine, errors);
        }
        let request = api.client.post(&url).json(&Reservation::numbered(
            sale.ticket_type_id,
            1,
            n,
            &mut names,
        ));
        let sent = Instant::now();
        let reply = send::<Reserved>(request, StatusCode::CREATED).await;
        let answered = Instant::now();
        progress.answered.fetch_add(1, Ordering::Relaxed);
        let outcome = match &reply {
            Reply::Done(reserved) => {
                progress.confirmed.fetch_add(1, Ordering::Relaxed);
                Outcome::Confirmed {
                    position: reserved.position,
                }
            }
            refused if refused.is_sold_out() => Outcome::SoldOut,
            failed => {
                errors.record(failed);
                Outcome::Error
            }
        };
        mine.push(Attempt {
            sent,
            answered,
            outcome,
        });
    }
}
