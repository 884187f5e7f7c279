//! `marquee bench listing`: closed-loop reads of one path for a fixed time, and `marquee bench
//! hello-server`, the trivial axum handler those reads are compared with on the same machine.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::routing::get;
use clap::Args;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::http::{
    ErrorKinds, Reply, base_url, client, label_field, quantiles, rate, refusal, transport_failure,
};

/// Options of `marquee bench listing`.
#[derive(Debug, Args)]
pub struct ListingArgs {
    /// Base URL of the query API (or of `marquee bench hello-server`).
    #[arg(long)]
    query_url: String,
    /// Concurrent clients, each sending its next GET when the previous one is answered.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// How long to read for.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Path (and query string) to GET.
    #[arg(long, default_value = "/v1/events")]
    path: String,
    /// Echoed in the output line to tell runs apart (e.g. `server=hello`).
    #[arg(long)]
    label: Option<String>,
    /// Bearer token for a private `--path` (e.g. a guest list); the listing needs none.
    #[arg(long, env = "MARQUEE_BENCH_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// What one client saw.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    /// Answers other than `200`.
    non_200: u64,
    /// Answers other than `200`, and requests with no answer, by kind.
    errors: ErrorKinds,
    /// Body bytes of the `200` answers.
    bytes: u64,
}

/// `marquee bench listing`: GETs `--path` from `--clients` clients for `--seconds`, prints one
/// line.
pub async fn run(args: ListingArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.clients > 0 && args.seconds > 0,
        "--clients and --seconds must be positive"
    );
    anyhow::ensure!(args.path.starts_with('/'), "--path must start with `/`");
    let url = format!("{}{}", base_url(&args.query_url)?, args.path);
    let client = client(args.clients, args.token.as_deref())?;
    // One request first, so that a wrong URL is an error rather than a line of failures.
    let probe = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    anyhow::ensure!(
        probe.status().is_success(),
        "GET {url}: {}: {}",
        probe.status(),
        probe.text().await.unwrap_or_default()
    );
    eprintln!(
        "listing: {} clients GET {url} for {} s",
        args.clients, args.seconds
    );

    let url: Arc<str> = url.into();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut clients = JoinSet::new();
    for _ in 0..args.clients {
        let client = client.clone();
        let url = url.clone();
        clients.spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let sent = Instant::now();
                let reply = fetch(&client, &url).await;
                tally.latencies.push(sent.elapsed());
                match reply {
                    Reply::Done(bytes) => tally.bytes += bytes,
                    other => {
                        tally.non_200 += u64::from(matches!(other, Reply::Refused { .. }));
                        tally.errors.record(&other);
                    }
                }
            }
            tally
        });
    }
    let mut tally = Tally::default();
    while let Some(done) = clients.join_next().await {
        let theirs = done.context("a client task panicked")?;
        tally.latencies.extend(theirs.latencies);
        tally.non_200 += theirs.non_200;
        tally.errors.merge(theirs.errors);
        tally.bytes += theirs.bytes;
    }
    let elapsed = started.elapsed();
    tally.latencies.sort_unstable();
    let queries = tally.latencies.len() as u64;
    let ok = queries - tally.errors.total();
    println!(
        "bench listing{} url={url} clients={} seconds={:.2} queries={queries} queries_per_s={:.0} {} body_bytes={} non_200={} errors={} error_kinds={}",
        label_field(args.label.as_deref()),
        args.clients,
        elapsed.as_secs_f64(),
        rate(queries, elapsed),
        quantiles("", &tally.latencies),
        tally.bytes.checked_div(ok).unwrap_or(0),
        tally.non_200,
        tally.errors.total(),
        tally.errors,
    );
    tally.errors.explain("listing");
    Ok(())
}

/// One GET, its body read in full: `Done(body length)` for a `200`.
async fn fetch(client: &reqwest::Client, url: &str) -> Reply<u64> {
    let response = match client.get(url).send().await {
        Ok(response) => response,
        Err(e) => return transport_failure(&e),
    };
    let status = response.status();
    match response.bytes().await {
        Ok(body) if status == reqwest::StatusCode::OK => Reply::Done(body.len() as u64),
        Ok(body) => refusal(status, &body),
        Err(e) => transport_failure(&e),
    }
}

/// Options of `marquee bench hello-server`.
#[derive(Debug, Args)]
pub struct HelloArgs {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

/// `marquee bench hello-server`: answers `GET /v1/events` with a fixed page shaped and sized like
/// the query API's default listing page (20 events), with no database, middleware or
/// serialization per request. Prints its address on stdout and serves until `stopped`.
pub async fn hello_server(
    args: HelloArgs,
    mut stopped: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let page = Bytes::from(serde_json::to_vec(&fixed_page()).context("encoding the page")?);
    let app = Router::new().route(
        "/v1/events",
        get(move || {
            let page = page.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], page) }
        }),
    );
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    println!("marquee: hello server on http://{addr}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stopped.wait_for(|s| *s).await;
        })
        .await
        .context("serving")
}

/// A listing page of 20 published events, as the query API would write it.
fn fixed_page() -> serde_json::Value {
    let items: Vec<_> = (0..20)
        .map(|n| {
            json!({
                "event_id": format!("0193a5f0-0000-7000-8000-{n:012}"),
                "status": "published",
                "title": format!("Bench event {n}"),
                "category": "bench",
                "venue": {
                    "id": "0193a5ef-0000-7000-8000-000000000000",
                    "name": "Bench Hall",
                    "city": "Benchville",
                },
                "starts_at": "2030-05-04T18:00:00Z",
                "ends_at": "2030-05-04T21:00:00Z",
                "timezone": "UTC",
                "capacity": 100,
                "confirmed": 42,
                "available": 58,
                "min_price": { "amount_minor": 0, "currency": "EUR" },
                "published_at": "2026-12-01T10:00:00.123456Z",
                "cancelled_at": null,
            })
        })
        .collect();
    json!({ "items": items, "next_cursor": "MjAzMC0wNS0wNFQxODowMDowMC4wMDAwMDBafDAxOTNhNWYwLTAwMDAtNzAwMC04MDAwLTAwMDAwMDAwMDAxOQ" })
}
