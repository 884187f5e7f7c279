//! `marquee bench …`: measurements printed as one line each (`bench <name> key=value …`) so that
//! `BENCHMARKS.md` can quote the command next to its figure.
//!
//! Two kinds live here: `append` and `load` measure the store and the command engine in process
//! (`store`); `rush`, `mixed`, `lag` and `listing` are load generators that drive running
//! services over HTTP (`http` holds what they share), and `hello-server` is the trivial axum
//! handler `listing` is compared with.

mod http;
mod lag;
mod listing;
mod mixed;
mod rush;
mod store;

use std::time::Duration;

use clap::Subcommand;
use tokio::sync::watch;

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum Bench {
    /// Appends per second and facts per second through the store's group-commit writer.
    Append(store::AppendArgs),
    /// Time to load one aggregate of N facts, with and without a snapshot.
    Load(store::LoadArgs),
    /// An on-sale rush over HTTP: many clients reserve one seat each of one free event until it
    /// is sold out; checks that nothing was oversold.
    Rush(rush::RushArgs),
    /// A mix of reservations, cancellations and reads over HTTP, on many events.
    Mixed(mixed::MixedArgs),
    /// Open-loop commands at a fixed rate over HTTP, each followed by a read of its own write:
    /// how long until the query API shows a command's effect.
    Lag(lag::LagArgs),
    /// Closed-loop GETs against a query API (or `hello-server`) for a fixed time.
    Listing(listing::ListingArgs),
    /// A trivial axum server answering `GET /v1/events` with a fixed page: the baseline for
    /// `bench listing`. Prints its address, runs until stopped.
    HelloServer(listing::HelloArgs),
}

/// Runs one benchmark. A shutdown signal (`stopped` turning true) ends `hello-server` normally
/// and interrupts any other benchmark with an error, so that no partial figure is printed.
pub async fn run(bench: Bench, stopped: watch::Receiver<bool>) -> anyhow::Result<()> {
    match bench {
        Bench::Append(args) => interruptible(stopped, store::append(args)).await,
        Bench::Load(args) => interruptible(stopped, store::load(args)).await,
        Bench::Rush(args) => interruptible(stopped, rush::run(args)).await,
        Bench::Mixed(args) => interruptible(stopped, mixed::run(args)).await,
        Bench::Lag(args) => interruptible(stopped, lag::run(args)).await,
        Bench::Listing(args) => interruptible(stopped, listing::run(args)).await,
        Bench::HelloServer(args) => listing::hello_server(args, stopped).await,
    }
}

/// Runs `work` until it finishes or the shutdown signal comes.
async fn interruptible(
    mut stopped: watch::Receiver<bool>,
    work: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    tokio::select! {
        result = work => result,
        _ = stopped.wait_for(|s| *s) => anyhow::bail!("interrupted"),
    }
}

/// The value at quantile `p` (0.0 to 1.0) of sorted durations; zero when there are none.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
