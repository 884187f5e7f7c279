//! `marquee bench lag`: how long after a command's answer the query API shows its effect.
//!
//! Open loop: reservations are sent at fixed intervals whatever the answers take (a closed loop
//! would slow down with the server and hide its queueing). For each accepted one, a read of the
//! event's capacity follows at once with `Marquee-Min-Position: <its position>`; the query API
//! holds that read until its read model has applied the position, so the time from the
//! command's answer to the read's answer is the projection lag a client experiences.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use reqwest::StatusCode;
use serde::de::IgnoredAny;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::http::{
    Api, ErrorKinds, MIN_POSITION_HEADER, NameBuffer, OnSale, Reply, Reservation, Reserved,
    Targets, label_field, quantiles, rate, send,
};

/// Requests in flight while the events are set up.
const SET_UP_CONCURRENCY: usize = 32;

/// Options of `marquee bench lag`.
#[derive(Debug, Args)]
pub struct LagArgs {
    #[command(flatten)]
    targets: Targets,
    /// Target commands per second, sent at fixed intervals.
    #[arg(long, default_value_t = 2_000)]
    rate: u64,
    /// How long to send for.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Events the commands are spread over (round robin); each gets room for all of its share.
    #[arg(long, default_value_t = 100)]
    events: usize,
    /// Commands (each with its read) allowed in flight; a send due while this many are still
    /// waiting is skipped and counted in `skipped=`, so a stalled server cannot exhaust sockets.
    #[arg(long, default_value_t = 5_000)]
    max_in_flight: usize,
    /// Echoed in the output line to tell runs apart (see `bench rush --label`).
    #[arg(long)]
    label: Option<String>,
}

/// One scheduled command and the read that followed it.
struct Sample {
    /// Send to answer of the command.
    command_latency: Duration,
    /// When the command's answer arrived.
    answered: Instant,
    /// The command was accepted (`201`).
    accepted: bool,
    /// Command answer to read answer, for an accepted command whose read answered `200`.
    lag: Option<Duration>,
    /// The read answered `503 position_not_reached`: its detail.
    not_reached: Option<String>,
    /// Command errors as `command/<kind>`, read errors as `query/<kind>`.
    errors: ErrorKinds,
}

/// `marquee bench lag`: sets up the events, sends at the target rate, prints one line.
pub async fn run(args: LagArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.rate > 0 && args.seconds > 0 && args.events > 0 && args.max_in_flight > 0,
        "--rate, --seconds, --events and --max-in-flight must be positive"
    );
    let total = args.rate * args.seconds;
    // Room for every command of the event's share, so none is refused as sold out.
    let capacity = u32::try_from(total.div_ceil(args.events as u64) + 10)
        .context("too many commands per event; use more --events")?;
    let api = Api::connect(&args.targets, args.max_in_flight).await?;
    eprintln!(
        "lag: setting up {} free events of {capacity} seats at {}",
        args.events, args.targets.command_url
    );
    let venue_id = api.venue(capacity).await?;
    let events = api
        .free_events(venue_id, args.events, capacity, SET_UP_CONCURRENCY)
        .await?;
    let last = events
        .iter()
        .max_by_key(|e| e.position)
        .context("no event was set up")?;
    // Start with the read model caught up, so the first reads measure the load, not the set-up.
    api.capacity_at(last.event_id, last.position).await?;
    eprintln!(
        "lag: {total} reservations at {}/s for {} s, each followed by a read of its own write",
        args.rate, args.seconds
    );

    let in_flight = Arc::new(Semaphore::new(args.max_in_flight));
    let mut samples = JoinSet::new();
    let mut skipped = 0u64;
    let started = tokio::time::Instant::now();
    let mut last_send = started;
    for n in 0..total {
        let due = started + Duration::from_secs_f64(n as f64 / args.rate as f64);
        tokio::time::sleep_until(due).await;
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            skipped += 1;
            continue;
        };
        last_send = tokio::time::Instant::now();
        let sale = events[n as usize % events.len()];
        samples.spawn(command_then_read(api.clone(), sale, n, permit));
    }
    let started = started.into_std();
    let send_window = last_send.into_std() - started;

    let mut sent = 0u64;
    let mut accepted = 0u64;
    let mut last_answer = started;
    let mut command_latencies = Vec::with_capacity(total as usize);
    let mut lags = Vec::with_capacity(total as usize);
    let mut not_reached = Vec::new();
    let mut errors = ErrorKinds::default();
    while let Some(sample) = samples.join_next().await {
        let sample = sample.context("a command task panicked")?;
        sent += 1;
        accepted += u64::from(sample.accepted);
        last_answer = last_answer.max(sample.answered);
        command_latencies.push(sample.command_latency);
        lags.extend(sample.lag);
        not_reached.extend(sample.not_reached);
        errors.merge(sample.errors);
    }
    command_latencies.sort_unstable();
    lags.sort_unstable();

    println!(
        "bench lag{} target_per_s={} seconds={} events={} sent={} skipped={} sent_per_s={:.0} accepted={} achieved_per_s={:.0} command_p50_ms={:.2} command_p99_ms={:.2} {} reads={} not_reached={} errors={} error_kinds={}",
        label_field(args.label.as_deref()),
        args.rate,
        args.seconds,
        args.events,
        sent,
        skipped,
        rate(sent, send_window),
        accepted,
        rate(accepted, last_answer - started),
        super::millis(super::percentile(&command_latencies, 0.50)),
        super::millis(super::percentile(&command_latencies, 0.99)),
        quantiles("lag_", &lags),
        lags.len(),
        not_reached.len(),
        errors.total(),
        errors,
    );
    for detail in not_reached.iter().take(5) {
        eprintln!("  lag: read answered 503 position_not_reached: {detail}");
    }
    if not_reached.len() > 5 {
        eprintln!("  lag: … and {} more", not_reached.len() - 5);
    }
    errors.explain("lag");
    Ok(())
}

/// Sends reservation number `n` of `sale` and, if it is accepted, reads the event's capacity at
/// the position of the answer. Holds `permit` until both are answered.
async fn command_then_read(api: Api, sale: OnSale, n: u64, permit: OwnedSemaphorePermit) -> Sample {
    let _permit = permit;
    let mut names = NameBuffer::default();
    let request = api
        .client
        .post(api.command(&format!("/v1/events/{}/reservations", sale.event_id)))
        .json(&Reservation::numbered(
            sale.ticket_type_id,
            1,
            n,
            &mut names,
        ));
    let sent = Instant::now();
    let reply = send::<Reserved>(request, StatusCode::CREATED).await;
    let answered = Instant::now();
    let mut sample = Sample {
        command_latency: answered - sent,
        answered,
        accepted: false,
        lag: None,
        not_reached: None,
        errors: ErrorKinds::default(),
    };
    let position = match reply {
        Reply::Done(reserved) => reserved.position,
        other => {
            let kind = format!("command/{}", other.kind());
            sample.errors.record_kind(kind, other.detail());
            return sample;
        }
    };
    sample.accepted = true;
    let request = api
        .client
        .get(api.query(&format!("/v1/events/{}/capacity", sale.event_id)))
        .header(MIN_POSITION_HEADER, position);
    match send::<IgnoredAny>(request, StatusCode::OK).await {
        Reply::Done(_) => sample.lag = Some(answered.elapsed()),
        Reply::Refused {
            status,
            code,
            detail,
        } if status == StatusCode::SERVICE_UNAVAILABLE && code == "position_not_reached" => {
            sample.not_reached = Some(detail);
        }
        other => {
            let kind = format!("query/{}", other.kind());
            sample.errors.record_kind(kind, other.detail());
        }
    }
    sample
}
