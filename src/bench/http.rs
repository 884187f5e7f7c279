//! What the HTTP load generators share: the client, set-up requests that must succeed, one
//! request's outcome reduced to what a benchmark counts, and the latency figures of the output
//! line.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Args;
use reqwest::{Client, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::task::{JoinHandle, JoinSet};
use uuid::Uuid;

use super::{millis, percentile};

/// Request header asking the query API for read-your-writes.
pub const MIN_POSITION_HEADER: &str = "Marquee-Min-Position";

/// Longest any one request may take before it counts as a `transport_timeout` error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest a set-up read may keep answering `position_not_reached` before the benchmark gives
/// up: after a rush the projector may be further behind than the query API's own wait.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the services under test listen, and who the benchmark is.
#[derive(Debug, Clone, Args)]
pub struct Targets {
    /// Base URL of the command API, e.g. `http://127.0.0.1:8080`.
    #[arg(long)]
    pub command_url: String,
    /// Base URL of the query API, e.g. `http://127.0.0.1:8081`.
    #[arg(long)]
    pub query_url: String,
    #[command(flatten)]
    pub credentials: Credentials,
}

/// Who sends the benchmark's requests: every command needs a signed-in caller that may set up
/// venues and events (an owner or organizer) and reserve. Give an API token with the
/// `organizer` role (it does not expire), an access token, or an account to sign in as (its
/// access token lasts 15 minutes: enough for the runs in BENCHMARKS.md).
#[derive(Debug, Clone, Args)]
pub struct Credentials {
    /// Bearer token sent with every request: an API token (`mqt_…`) or an access token.
    #[arg(
        long,
        env = "MARQUEE_BENCH_TOKEN",
        hide_env_values = true,
        conflicts_with = "email"
    )]
    pub token: Option<String>,
    /// Sign in as this account first (with `--password`) and send its access token.
    #[arg(long, env = "MARQUEE_BENCH_EMAIL", requires = "password")]
    pub email: Option<String>,
    /// The password of `--email`.
    #[arg(long, env = "MARQUEE_BENCH_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
}

/// What `POST /v1/auth/login` answers, as far as the benchmarks read it.
#[derive(Deserialize)]
struct SignedIn {
    access_token: String,
}

impl Credentials {
    /// The bearer token to send: `--token`, or an access token from signing in at
    /// `command_url`; `None` without credentials (only public reads will work).
    pub async fn bearer(&self, command_url: &str) -> anyhow::Result<Option<String>> {
        if let Some(token) = &self.token {
            return Ok(Some(token.clone()));
        }
        let (Some(email), Some(password)) = (&self.email, &self.password) else {
            return Ok(None);
        };
        #[derive(Serialize)]
        struct SignIn<'a> {
            email: &'a str,
            password: &'a str,
        }
        let SignedIn { access_token } = set_up(
            client(1, None)?
                .post(format!("{}/v1/auth/login", base_url(command_url)?))
                .json(&SignIn { email, password }),
        )
        .await
        .context("signing in with --email and --password")?;
        Ok(Some(access_token))
    }
}

/// One HTTP client for the whole run: every task shares its connection pool. With `bearer`,
/// every request carries it in `Authorization`.
pub fn client(connections: usize, bearer: Option<&str>) -> anyhow::Result<Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = bearer {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .context("the token is not a valid header value")?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    Client::builder()
        .default_headers(headers)
        // A benchmark against localhost must not go through a proxy from the environment.
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(connections.max(1))
        .connect_timeout(Duration::from_secs(10))
        .timeout(REQUEST_TIMEOUT)
        .build()
        .context("building the HTTP client")
}

/// A base URL without its trailing slash; refuses anything but `http://` and `https://`.
pub fn base_url(url: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        url.starts_with("http://") || url.starts_with("https://"),
        "`{url}` is not an http:// URL"
    );
    Ok(url.trim_end_matches('/').to_owned())
}

/// The command and query APIs of a running Marquee, and the client that talks to them.
#[derive(Clone)]
pub struct Api {
    pub client: Client,
    command: String,
    query: String,
}

/// A published event with one free ticket type, ready to take reservations.
#[derive(Debug, Clone, Copy)]
pub struct OnSale {
    pub event_id: Uuid,
    pub ticket_type_id: Uuid,
    /// Position of the publish fact: a read at this position sees the event on sale.
    pub position: u64,
}

/// What `GET /v1/events/{id}/capacity` answers, as far as the benchmarks read it.
#[derive(Debug, Deserialize)]
pub struct Capacity {
    /// Seats confirmed over all ticket types.
    pub confirmed: u64,
    pub available: u64,
}

/// A command's `201`/`200` answer: every accepted command carries its log position.
#[derive(Debug, Deserialize)]
pub struct Accepted {
    pub position: u64,
}

/// A reservation's `201` answer.
#[derive(Debug, Deserialize)]
pub struct Reserved {
    pub registration_id: Uuid,
    pub position: u64,
}

/// Body of `POST /v1/events/{id}/reservations`.
#[derive(Debug, Serialize)]
pub struct Reservation<'a> {
    pub ticket_type_id: Uuid,
    pub quantity: u32,
    pub attendee: Attendee<'a>,
}

/// The attendee of a [`Reservation`].
#[derive(Debug, Serialize)]
pub struct Attendee<'a> {
    pub name: &'a str,
    pub email: &'a str,
}

impl Reservation<'_> {
    /// A reservation for a distinct attendee numbered `n`. The strings live in `buffer`.
    pub fn numbered(
        ticket_type_id: Uuid,
        quantity: u32,
        n: u64,
        buffer: &mut NameBuffer,
    ) -> Reservation<'_> {
        buffer.name = format!("Guest {n}");
        buffer.email = format!("guest{n}@example.com");
        Reservation {
            ticket_type_id,
            quantity,
            attendee: Attendee {
                name: &buffer.name,
                email: &buffer.email,
            },
        }
    }
}

/// The attendee strings of a [`Reservation::numbered`].
#[derive(Debug, Default)]
pub struct NameBuffer {
    name: String,
    email: String,
}

#[derive(Debug, Serialize)]
struct NewVenue<'a> {
    name: &'a str,
    city: &'a str,
    capacity: u32,
    timezone: &'a str,
}

#[derive(Debug, Deserialize)]
struct VenueCreated {
    venue_id: Uuid,
}

#[derive(Debug, Serialize)]
struct NewEvent<'a> {
    venue_id: Uuid,
    title: &'a str,
    category: &'a str,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    capacity: u32,
}

#[derive(Debug, Deserialize)]
struct EventCreated {
    event_id: Uuid,
}

#[derive(Debug, Serialize)]
struct NewTicketType<'a> {
    name: &'a str,
    price: Price<'a>,
    quantity: u32,
}

#[derive(Debug, Serialize)]
struct Price<'a> {
    amount_minor: i64,
    currency: &'a str,
}

#[derive(Debug, Deserialize)]
struct TicketTypeCreated {
    ticket_type_id: Uuid,
}

/// The parts of an RFC 9457 problem+json body the benchmarks look at.
#[derive(Debug, Default, Deserialize)]
struct Problem {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

impl Api {
    /// The APIs at `targets`, signed in with their credentials (see [`Credentials`]);
    /// `connections` sizes the client's pool (one per concurrent task).
    pub async fn connect(targets: &Targets, connections: usize) -> anyhow::Result<Self> {
        let bearer = targets.credentials.bearer(&targets.command_url).await?;
        if bearer.is_none() {
            eprintln!(
                "  (no --token nor --email/--password: the command API will refuse every command with 401)"
            );
        }
        Ok(Self {
            client: client(connections, bearer.as_deref())?,
            command: base_url(&targets.command_url)?,
            query: base_url(&targets.query_url)?,
        })
    }

    /// A URL of the command API.
    pub fn command(&self, path: &str) -> String {
        format!("{}{path}", self.command)
    }

    /// A URL of the query API.
    pub fn query(&self, path: &str) -> String {
        format!("{}{path}", self.query)
    }

    /// A venue with `capacity` seats.
    pub async fn venue(&self, capacity: u32) -> anyhow::Result<Uuid> {
        let body = NewVenue {
            name: "Bench Hall",
            city: "Benchville",
            capacity,
            timezone: "UTC",
        };
        let created: VenueCreated =
            set_up(self.client.post(self.command("/v1/venues")).json(&body)).await?;
        Ok(created.venue_id)
    }

    /// Drafts an event of `capacity` seats at `venue_id` a month from now (in time slot
    /// `slot`: events at one venue may not overlap), adds one free ticket type of `quantity`
    /// seats, and publishes it.
    pub async fn free_event(
        &self,
        venue_id: Uuid,
        slot: usize,
        title: &str,
        capacity: u32,
        quantity: u32,
    ) -> anyhow::Result<OnSale> {
        let slot = i64::try_from(slot).unwrap_or(i64::MAX / 4);
        let starts_at = Utc::now() + chrono::Duration::days(30) + chrono::Duration::hours(4 * slot);
        let event = NewEvent {
            venue_id,
            title,
            category: "bench",
            starts_at,
            ends_at: starts_at + chrono::Duration::hours(3),
            capacity,
        };
        let EventCreated { event_id } =
            set_up(self.client.post(self.command("/v1/events")).json(&event)).await?;
        let ticket_type = NewTicketType {
            name: "Free entry",
            price: Price {
                amount_minor: 0,
                currency: "EUR",
            },
            quantity,
        };
        let TicketTypeCreated { ticket_type_id } = set_up(
            self.client
                .post(self.command(&format!("/v1/events/{event_id}/ticket-types")))
                .json(&ticket_type),
        )
        .await?;
        let Accepted { position } = set_up(
            self.client
                .post(self.command(&format!("/v1/events/{event_id}/publish"))),
        )
        .await?;
        Ok(OnSale {
            event_id,
            ticket_type_id,
            position,
        })
    }

    /// `count` events like [`Api::free_event`], each of `capacity` seats and as many tickets,
    /// at `venue_id`, set up by at most `concurrency` requests at a time.
    pub async fn free_events(
        &self,
        venue_id: Uuid,
        count: usize,
        capacity: u32,
        concurrency: usize,
    ) -> anyhow::Result<Vec<OnSale>> {
        let next = Arc::new(AtomicUsize::new(0));
        let mut workers = JoinSet::new();
        for _ in 0..concurrency.clamp(1, count.max(1)) {
            let api = self.clone();
            let next = next.clone();
            workers.spawn(async move {
                let mut made = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= count {
                        return anyhow::Ok(made);
                    }
                    let title = format!("Bench event {n}");
                    made.push(
                        api.free_event(venue_id, n, &title, capacity, capacity)
                            .await?,
                    );
                }
            });
        }
        let mut events = Vec::with_capacity(count);
        while let Some(made) = workers.join_next().await {
            events.extend(made.context("a set-up task panicked")??);
        }
        Ok(events)
    }

    /// The event's capacity as the query API shows it once it has applied `position`. Waits
    /// (up to [`CATCH_UP_TIMEOUT`]) for a read model that is further behind than the query
    /// API's own wait; any other failure is an error.
    pub async fn capacity_at(&self, event_id: Uuid, position: u64) -> anyhow::Result<Capacity> {
        let url = self.query(&format!("/v1/events/{event_id}/capacity"));
        let deadline = Instant::now() + CATCH_UP_TIMEOUT;
        loop {
            let request = self.client.get(&url).header(MIN_POSITION_HEADER, position);
            match send::<Capacity>(request, StatusCode::OK).await {
                Reply::Done(capacity) => return Ok(capacity),
                Reply::Refused { status, code, .. }
                    if status == StatusCode::SERVICE_UNAVAILABLE
                        && code == "position_not_reached"
                        && Instant::now() < deadline =>
                {
                    eprintln!(
                        "  (the read model has not reached position {position} yet; asking again)"
                    );
                }
                other => anyhow::bail!(
                    "GET {url} with {MIN_POSITION_HEADER}: {position}: {}",
                    other.describe()
                ),
            }
        }
    }
}

/// Answers so far in a closed-loop run, shown on stderr every ten seconds so that a slow run
/// (a naive server under a rush can take many minutes) visibly makes progress.
#[derive(Debug, Default)]
pub struct Progress {
    /// Requests answered, whatever the answer.
    pub answered: AtomicU64,
    /// Reservations confirmed.
    pub confirmed: AtomicU64,
}

impl Progress {
    /// Starts the stderr reports of a run named `what` of `total` requests; abort the handle
    /// when the run ends.
    pub fn report(self: &Arc<Self>, what: &'static str, total: u64) -> JoinHandle<()> {
        let progress = self.clone();
        let started = Instant::now();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs(10));
            ticks.tick().await;
            loop {
                ticks.tick().await;
                eprintln!(
                    "{what}: {:>4.0} s: {}/{total} answered, {} confirmed",
                    started.elapsed().as_secs_f64(),
                    progress.answered.load(Ordering::Relaxed),
                    progress.confirmed.load(Ordering::Relaxed),
                );
            }
        })
    }
}

/// Sends a set-up request that must succeed (any 2xx) and reads its JSON answer; anything else
/// is an error naming the request, the status and the body.
pub async fn set_up<T: DeserializeOwned>(request: RequestBuilder) -> anyhow::Result<T> {
    let (client, request) = request.build_split();
    let request = request.context("building a set-up request")?;
    let what = format!("{} {}", request.method(), request.url());
    let response = client
        .execute(request)
        .await
        .map_err(|e| anyhow::anyhow!("{what}: {}", error_chain(&e)))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| anyhow::anyhow!("{what}: reading the answer: {}", error_chain(&e)))?;
    anyhow::ensure!(
        status.is_success(),
        "{what}: {status}: {}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&body).with_context(|| {
        format!(
            "{what}: {status} with an unexpected body: {}",
            String::from_utf8_lossy(&body)
        )
    })
}

/// One request's outcome, reduced to what the benchmarks count.
#[derive(Debug)]
pub enum Reply<T> {
    /// The expected status, with its body decoded.
    Done(T),
    /// Another status: its problem+json `code` (`no_code` if the body has none).
    Refused {
        status: StatusCode,
        code: String,
        detail: String,
    },
    /// No answer (connection refused, timeout, reset) or an answer that could not be read.
    Failed { kind: String, detail: String },
}

impl<T> Reply<T> {
    /// The error kind of a refusal or failure, as counted in `error_kinds=`: `409_conflict`,
    /// `503_unavailable`, `transport_timeout`, …
    pub fn kind(&self) -> String {
        match self {
            Reply::Done(_) => "ok".to_owned(),
            Reply::Refused { status, code, .. } => format!("{}_{code}", status.as_u16()),
            Reply::Failed { kind, .. } => kind.clone(),
        }
    }

    /// True for a `409` whose code is `sold_out`: the answer expected once an event is full.
    pub fn is_sold_out(&self) -> bool {
        matches!(self, Reply::Refused { status, code, .. }
            if *status == StatusCode::CONFLICT && code == "sold_out")
    }

    /// A one-line description of a refusal or failure, for messages.
    pub fn describe(&self) -> String {
        match self {
            Reply::Done(_) => "ok".to_owned(),
            Reply::Refused {
                status,
                code,
                detail,
            } => format!("{status} {code}: {detail}"),
            Reply::Failed { kind, detail } => format!("{kind}: {detail}"),
        }
    }

    /// The detail of a refusal or failure.
    pub fn detail(&self) -> &str {
        match self {
            Reply::Done(_) => "",
            Reply::Refused { detail, .. } | Reply::Failed { detail, .. } => detail,
        }
    }
}

/// Sends a request and classifies its answer: `expected` status with a decodable body is
/// [`Reply::Done`].
pub async fn send<T: DeserializeOwned>(request: RequestBuilder, expected: StatusCode) -> Reply<T> {
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => return transport_failure(&e),
    };
    let status = response.status();
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(e) => return transport_failure(&e),
    };
    if status == expected {
        return match serde_json::from_slice(&body) {
            Ok(value) => Reply::Done(value),
            Err(e) => Reply::Failed {
                kind: format!("{}_unreadable_body", status.as_u16()),
                detail: format!("{e}: {}", truncated(&body)),
            },
        };
    }
    refusal(status, &body)
}

/// An answer with an unexpected status: its problem+json `code` and `detail` when it has them.
pub fn refusal<T>(status: StatusCode, body: &[u8]) -> Reply<T> {
    let problem: Problem = serde_json::from_slice(body).unwrap_or_default();
    Reply::Refused {
        status,
        code: problem.code.unwrap_or_else(|| "no_code".to_owned()),
        detail: problem.detail.unwrap_or_else(|| truncated(body)),
    }
}

/// A request that got no (complete) answer, by what went wrong.
pub fn transport_failure<T>(e: &reqwest::Error) -> Reply<T> {
    let kind = if e.is_timeout() {
        "transport_timeout"
    } else if e.is_connect() {
        "transport_connect"
    } else if e.is_body() || e.is_decode() {
        "transport_body"
    } else {
        "transport_other"
    };
    Reply::Failed {
        kind: kind.to_owned(),
        detail: error_chain(e),
    }
}

/// An error with its causes, which is where reqwest keeps the useful part ("connection reset").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn truncated(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(200) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.into_owned(),
    }
}

/// Errors counted by kind, with the first detail seen of each kind for the stderr report.
#[derive(Debug, Default)]
pub struct ErrorKinds {
    counts: BTreeMap<String, u64>,
    samples: BTreeMap<String, String>,
}

impl ErrorKinds {
    /// Counts one error of `reply`'s kind.
    pub fn record<T>(&mut self, reply: &Reply<T>) {
        self.record_kind(reply.kind(), reply.detail());
    }

    /// Counts one error of `kind`.
    pub fn record_kind(&mut self, kind: String, detail: &str) {
        *self.counts.entry(kind.clone()).or_default() += 1;
        self.samples
            .entry(kind)
            .or_insert_with(|| detail.to_owned());
    }

    /// Adds another task's counts to these.
    pub fn merge(&mut self, other: ErrorKinds) {
        for (kind, count) in other.counts {
            *self.counts.entry(kind).or_default() += count;
        }
        for (kind, detail) in other.samples {
            self.samples.entry(kind).or_insert(detail);
        }
    }

    /// Errors of every kind.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// One stderr line per kind with its count and first detail.
    pub fn explain(&self, what: &str) {
        for (kind, count) in &self.counts {
            let detail = self.samples.get(kind).map(String::as_str).unwrap_or("");
            eprintln!("  {what} error {kind} x{count}, e.g.: {detail}");
        }
    }
}

/// `none`, or `kind:count` pairs separated by commas (no spaces, so the line stays
/// `key=value` pairs).
impl fmt::Display for ErrorKinds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.counts.is_empty() {
            return f.write_str("none");
        }
        let mut first = true;
        for (kind, count) in &self.counts {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{kind}:{count}")?;
        }
        Ok(())
    }
}

/// `<prefix>p50_ms=… <prefix>p99_ms=… <prefix>max_ms=…` of sorted latencies.
pub fn quantiles(prefix: &str, sorted: &[Duration]) -> String {
    format!(
        "{prefix}p50_ms={:.2} {prefix}p99_ms={:.2} {prefix}max_ms={:.2}",
        millis(percentile(sorted, 0.50)),
        millis(percentile(sorted, 0.99)),
        millis(sorted.last().copied().unwrap_or_default()),
    )
}

/// `count / seconds`, zero over an empty interval.
pub fn rate(count: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// How a `--label` shows in the output line: as is when each of its words is already a
/// `key=value` pair (`mode=naive db=postgres`), else as one `label=<text>` pair with white space
/// turned into `_`.
pub fn label_field(label: Option<&str>) -> String {
    let Some(text) = label.map(str::trim).filter(|t| !t.is_empty()) else {
        return String::new();
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.iter().all(|w| w.contains('=')) {
        format!(" {}", words.join(" "))
    } else {
        format!(" label={}", words.join("_"))
    }
}
