//! `spawn_app()`: runs the real `marquee serve` binary on free ports with a fresh database, and
//! speaks HTTP to it as a client would. Dropping the `TestApp` kills the process and removes
//! the data directory (and, on Postgres, the database).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use marquee_store::testing::PgTestDb;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

/// The payment webhook secret every spawned app is configured with, so tests can sign webhooks.
pub const TEST_WEBHOOK_SECRET: &str = "whsec_marquee_tests";

/// Which log backend the app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running `marquee serve` and an HTTP client for it.
pub struct TestApp {
    pub command_url: String,
    pub query_url: String,
    pub client: reqwest::Client,
    child: Child,
    data_dir: tempfile::TempDir,
    database_url: Option<String>,
    // Kept last so the database is dropped after the process is killed.
    _pg: Option<PgTestDb>,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub position: Option<u64>,
    pub body: Value,
}

impl Reply {
    /// Sends a request and reads the whole answer.
    pub async fn send(request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let position = response
            .headers()
            .get("marquee-position")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let text = response.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply {
            status,
            content_type,
            position,
            body,
        }
    }

    /// Asserts a problem+json answer with this status and code.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        assert!(
            self.content_type.starts_with("application/problem+json"),
            "expected problem+json, got {:?}; body: {}",
            self.content_type,
            self.body
        );
        assert_eq!(
            self.body["code"], code,
            "unexpected code; body: {}",
            self.body
        );
        assert_eq!(self.body["status"], status);
    }
}

/// Starts `marquee serve` on free ports with a fresh data directory (and database).
pub async fn spawn_app(backend: Backend) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let (pg, database_url) = match backend {
        Backend::Sqlite => (None, None),
        Backend::Postgres => {
            let pg = PgTestDb::create().await;
            let url = pg.url.clone();
            (Some(pg), Some(url))
        }
    };
    let (child, command_url, query_url) = start(data_dir.path(), database_url.as_deref());
    TestApp {
        command_url,
        query_url,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        child,
        data_dir,
        database_url,
        _pg: pg,
    }
}

/// Spawns `marquee serve` and reads the ports it announces on stdout.
fn start(data_dir: &Path, database_url: Option<&str>) -> (Child, String, String) {
    let mut args: Vec<String> = [
        "serve",
        "--command-addr",
        "127.0.0.1:0",
        "--query-addr",
        "127.0.0.1:0",
        "--data-dir",
    ]
    .map(String::from)
    .into();
    args.push(data_dir.display().to_string());
    if let Some(url) = database_url {
        args.extend(["--database-url".to_owned(), url.to_owned()]);
    }
    let (child, announced) = spawn_marquee(
        &args,
        &[("MARQUEE_PAYMENT_WEBHOOK_SECRET", TEST_WEBHOOK_SECRET)],
        &["command API on ", "query API on "],
    );
    (child, announced[0].clone(), announced[1].clone())
}

/// Spawns `marquee ARGS…` with `env` (and without the runner's `DATABASE_URL`/`NATS_URL`), and
/// waits until it has printed a line `marquee: <announcement><rest>` for every announcement;
/// returns each `<rest>`.
pub fn spawn_marquee(
    args: &[String],
    env: &[(&str, &str)],
    announcements: &[&str],
) -> (Child, Vec<String>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_marquee"));
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("NATS_URL")
        .env("MARQUEE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("spawn marquee");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut found: Vec<Option<String>> = vec![None; announcements.len()];
    while found.iter().any(Option::is_none) {
        let line = match lines.next() {
            Some(Ok(line)) => line,
            other => panic!("marquee {args:?} exited before announcing itself: {other:?}"),
        };
        for (slot, announcement) in found.iter_mut().zip(announcements) {
            if let Some(rest) = line
                .strip_prefix("marquee: ")
                .and_then(|l| l.strip_prefix(announcement))
            {
                *slot = Some(rest.to_owned());
            }
        }
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, found.into_iter().flatten().collect())
}

impl TestApp {
    /// Kills the process (SIGKILL: no graceful shutdown) and starts it again on the same data.
    pub async fn restart(&mut self) {
        self.kill();
        let (child, command_url, query_url) =
            start(self.data_dir.path(), self.database_url.as_deref());
        self.child = child;
        self.command_url = command_url;
        self.query_url = query_url;
    }

    /// The Postgres database the app runs on (`None` on SQLite).
    pub fn database_url(&self) -> Option<&str> {
        self.database_url.as_deref()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a request and reads the whole answer.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        Reply::send(request).await
    }

    /// `POST` a JSON body to the command API.
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(
            self.client
                .post(format!("{}{path}", self.command_url))
                .json(&body),
        )
        .await
    }

    /// `GET` from the query API, waiting until it has applied `min_position`.
    pub async fn get(&self, path: &str, min_position: Option<u64>) -> Reply {
        let mut request = self.client.get(format!("{}{path}", self.query_url));
        if let Some(position) = min_position {
            request = request.header("Marquee-Min-Position", position.to_string());
        }
        self.send(request).await
    }

    /// The highest position in the log, as the query API reports it.
    pub async fn head_position(&self) -> u64 {
        let reply = self.get("/health", None).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body["head_position"].as_u64().expect("head_position")
    }

    /// Creates a venue and returns its id.
    pub async fn create_venue(&self, capacity: u32) -> String {
        let reply = self
            .post(
                "/v1/venues",
                json!({ "name": "Hall A", "city": "Berlin", "capacity": capacity, "timezone": "Europe/Berlin" }),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.body["venue_id"]
            .as_str()
            .expect("venue_id")
            .to_owned()
    }

    /// Drafts an event at a venue, a month from now, and returns its id. Each call takes a slot
    /// of its own: two events at one venue may not overlap.
    pub async fn draft_event(&self, venue_id: &str, title: &str) -> String {
        static SLOT: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
        let slot = SLOT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let starts =
            chrono::Utc::now() + chrono::Duration::days(30) + chrono::Duration::hours(4 * slot);
        let reply = self
            .post(
                "/v1/events",
                json!({
                    "venue_id": venue_id,
                    "title": title,
                    "category": "concert",
                    "starts_at": starts,
                    "ends_at": starts + chrono::Duration::hours(3),
                }),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.body["event_id"]
            .as_str()
            .expect("event_id")
            .to_owned()
    }

    /// Adds a free ticket type and returns its id.
    pub async fn add_free_ticket_type(&self, event_id: &str, name: &str, quantity: u32) -> String {
        let reply = self
            .post(
                &format!("/v1/events/{event_id}/ticket-types"),
                json!({ "name": name, "price": { "amount_minor": 0, "currency": "EUR" }, "quantity": quantity }),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.body["ticket_type_id"]
            .as_str()
            .expect("ticket_type_id")
            .to_owned()
    }

    /// Publishes an event; returns the position of the publication.
    pub async fn publish(&self, event_id: &str) -> u64 {
        let reply = self
            .send(
                self.client
                    .post(format!("{}/v1/events/{event_id}/publish", self.command_url)),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.position.expect("position")
    }

    /// Reserves seats for an attendee.
    pub async fn reserve(
        &self,
        event_id: &str,
        ticket_type_id: &str,
        quantity: u32,
        n: usize,
    ) -> Reply {
        self.post(
            &format!("/v1/events/{event_id}/reservations"),
            json!({
                "ticket_type_id": ticket_type_id,
                "quantity": quantity,
                "attendee": { "name": format!("Guest {n}"), "email": format!("guest{n}@example.com") },
            }),
        )
        .await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.kill();
    }
}
