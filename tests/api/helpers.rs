//! `spawn_app()`: runs the real `marquee serve` binary on free ports with a fresh database, and
//! speaks HTTP to it as a client would. Dropping the `TestApp` kills the process and removes
//! the data directory (and, on Postgres, the database).
//!
//! Every app starts with a fixed first owner ([`OWNER_EMAIL`], [`OWNER_PASSWORD`]) in the
//! organization the first run makes, and with its rate limits off unless a test sets them. The
//! owner is signed in once the app is up, and `TestApp::client` sends the owner's access token
//! with every request, so a test that does not care about access reads as before. Other
//! callers: [`TestApp::account`], [`TestApp::member`], [`TestApp::api_token`], and
//! [`TestApp::request_as`] to send a request with a given token (or none).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use marquee_store::testing::PgTestDb;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Client, Method, RequestBuilder};
use serde_json::{Value, json};

/// The payment webhook secret every spawned app is configured with, so tests can sign webhooks.
pub const TEST_WEBHOOK_SECRET: &str = "whsec_marquee_tests";

/// The first owner's sign-in address on every spawned app.
pub const OWNER_EMAIL: &str = "owner@marquee.test";

/// The first owner's password on every spawned app (passes the password policy).
pub const OWNER_PASSWORD: &str = "Owner-passphrase-for-marquee-tests-7f3a";

/// The password of every account a test opens with [`TestApp::account`].
pub const MEMBER_PASSWORD: &str = "Member-passphrase-for-marquee-tests-2b8e";

/// Which log backend the app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Settings every spawned `marquee` process gets: the webhook secret, the first owner, and no
/// rate limits (a test that wants them sets them again; the last value of a key wins).
pub fn base_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("MARQUEE_PAYMENT_WEBHOOK_SECRET", TEST_WEBHOOK_SECRET),
        ("MARQUEE_ADMIN_EMAIL", OWNER_EMAIL),
        ("MARQUEE_ADMIN_PASSWORD", OWNER_PASSWORD),
        ("MARQUEE_RATE_LIMIT_SIGN_IN_PER_MINUTE", "0"),
        ("MARQUEE_RATE_LIMIT_COMMANDS_PER_SECOND", "0"),
        ("MARQUEE_RATE_LIMIT_COMMANDS_PER_SECOND_PER_ADDRESS", "0"),
    ]
}

/// How to start an app: the backend plus extra settings.
#[derive(Debug, Clone)]
pub struct AppOptions {
    backend: Backend,
    env: Vec<(String, String)>,
    generated_password: bool,
    capture_output: bool,
}

impl AppOptions {
    /// The defaults of [`spawn_app`] on `backend`.
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            env: Vec::new(),
            generated_password: false,
            capture_output: false,
        }
    }

    /// Sets an environment variable of the process (after [`base_env`], so it wins).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// A first run as a newcomer has it: no `MARQUEE_ADMIN_EMAIL` / `MARQUEE_ADMIN_PASSWORD`,
    /// so the owner is `admin@marquee.local` with a password written to
    /// `<data-dir>/admin-password` (which the harness reads to sign in).
    pub fn first_run_defaults(mut self) -> Self {
        self.generated_password = true;
        self
    }

    /// Keeps everything the process writes to stdout and stderr, for [`TestApp::output`].
    pub fn capture_output(mut self) -> Self {
        self.capture_output = true;
        self
    }

    fn process_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = base_env()
            .into_iter()
            .filter(|(key, _)| {
                !(self.generated_password
                    && (*key == "MARQUEE_ADMIN_EMAIL" || *key == "MARQUEE_ADMIN_PASSWORD"))
            })
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        env.extend(self.env.iter().cloned());
        env
    }
}

/// A signed-in account: who it is, how it signs in, and its tokens.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub email: String,
    pub password: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl Session {
    /// The access token, as [`TestApp::request_as`] takes it.
    pub fn token(&self) -> Option<&str> {
        Some(&self.access_token)
    }
}

/// An API token as its organization's owner got it: shown once.
#[derive(Debug, Clone)]
pub struct ApiToken {
    pub token_id: String,
    pub token: String,
}

/// A running `marquee serve` and an HTTP client for it.
pub struct TestApp {
    pub command_url: String,
    pub query_url: String,
    /// Sends the first owner's access token with every request.
    pub client: Client,
    /// Sends no credentials (see [`TestApp::request_as`]).
    pub anonymous: Client,
    /// The first owner, signed in.
    pub owner: Session,
    /// The organization the first run made, which the owner owns.
    pub organization_id: String,
    child: Child,
    options: AppOptions,
    output: Option<Arc<Mutex<Vec<u8>>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
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
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// Sends a request and reads the whole answer.
    pub async fn send(request: RequestBuilder) -> Reply {
        read_reply(request.send().await.expect("request sent")).await
    }
}

/// Reads a whole answer.
pub async fn read_reply(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let position = headers
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
        headers,
        body,
    }
}

impl Reply {
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

    /// A string member of the body.
    #[track_caller]
    pub fn text(&self, member: &str) -> String {
        self.body[member]
            .as_str()
            .unwrap_or_else(|| panic!("`{member}` in {}", self.body))
            .to_owned()
    }
}

/// Starts `marquee serve` on free ports with a fresh data directory (and database), and signs
/// the first owner in.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(AppOptions::new(backend)).await
}

/// [`spawn_app`] with other settings.
pub async fn spawn_app_with(options: AppOptions) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let (pg, database_url) = match options.backend {
        Backend::Sqlite => (None, None),
        Backend::Postgres => {
            let pg = PgTestDb::create().await;
            let url = pg.url.clone();
            (Some(pg), Some(url))
        }
    };
    let output = options
        .capture_output
        .then(|| Arc::new(Mutex::new(Vec::new())));
    let started = start(
        data_dir.path(),
        database_url.as_deref(),
        &options,
        output.clone(),
    );
    let anonymous = http_client(None);
    let (owner, organization_id) =
        sign_in_owner(&anonymous, &started.command_url, data_dir.path(), &options).await;
    TestApp {
        command_url: started.command_url,
        query_url: started.query_url,
        client: http_client(Some(&owner.access_token)),
        anonymous,
        owner,
        organization_id,
        child: started.child,
        options,
        output,
        readers: started.readers,
        data_dir,
        database_url,
        _pg: pg,
    }
}

/// An HTTP client, sending `token` as the bearer of every request when given.
pub fn http_client(token: Option<&str>) -> Client {
    let mut headers = HeaderMap::new();
    if let Some(token) = token {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}")).expect("header");
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    Client::builder()
        .timeout(Duration::from_secs(30))
        .default_headers(headers)
        .build()
        .expect("client")
}

/// Signs an account in; panics unless it works.
pub async fn sign_in(client: &Client, command_url: &str, email: &str, password: &str) -> Session {
    let reply = Reply::send(
        client
            .post(format!("{command_url}/v1/auth/login"))
            .json(&json!({ "email": email, "password": password })),
    )
    .await;
    assert_eq!(reply.status, 200, "signing in {email}: {}", reply.body);
    assert_eq!(reply.body["token_type"], "Bearer");
    Session {
        user_id: reply.text("user_id"),
        email: email.to_owned(),
        password: password.to_owned(),
        access_token: reply.text("access_token"),
        refresh_token: reply.text("refresh_token"),
    }
}

/// Signs the first owner in and finds the organization the first run made.
async fn sign_in_owner(
    client: &Client,
    command_url: &str,
    data_dir: &Path,
    options: &AppOptions,
) -> (Session, String) {
    let (email, password) = if options.generated_password {
        let password = std::fs::read_to_string(data_dir.join("admin-password"))
            .expect("the first run writes <data-dir>/admin-password");
        ("admin@marquee.local".to_owned(), password.trim().to_owned())
    } else {
        (OWNER_EMAIL.to_owned(), OWNER_PASSWORD.to_owned())
    };
    let owner = sign_in(client, command_url, &email, &password).await;
    let me = Reply::send(
        client
            .get(format!("{command_url}/v1/me"))
            .bearer_auth(&owner.access_token),
    )
    .await;
    assert_eq!(me.status, 200, "{}", me.body);
    let organizations = me.body["organizations"].as_array().expect("organizations");
    assert_eq!(organizations.len(), 1, "{}", me.body);
    assert_eq!(organizations[0]["name"], "My organization");
    assert_eq!(organizations[0]["role"], "owner");
    let organization_id = organizations[0]["organization_id"]
        .as_str()
        .expect("organization_id")
        .to_owned();
    (owner, organization_id)
}

/// A started process and the URLs it announced.
struct Started {
    child: Child,
    command_url: String,
    query_url: String,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// Spawns `marquee serve` and reads the ports it announces on stdout.
fn start(
    data_dir: &Path,
    database_url: Option<&str>,
    options: &AppOptions,
    output: Option<Arc<Mutex<Vec<u8>>>>,
) -> Started {
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
    let env = options.process_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let spawned = spawn_marquee_with(&args, &env, &["command API on ", "query API on "], output);
    Started {
        child: spawned.child,
        command_url: spawned.announced[0].clone(),
        query_url: spawned.announced[1].clone(),
        readers: spawned.readers,
    }
}

/// Spawns `marquee ARGS…` with `env` (and without the runner's `DATABASE_URL`, `NATS_URL` and
/// `MARQUEE_*` settings), and waits until it has printed a line `marquee: <announcement><rest>`
/// for every announcement; returns each `<rest>`. Pass [`base_env`] (plus your own) to run it
/// as the harness runs its apps.
pub fn spawn_marquee(
    args: &[String],
    env: &[(&str, &str)],
    announcements: &[&str],
) -> (Child, Vec<String>) {
    let spawned = spawn_marquee_with(args, env, announcements, None);
    (spawned.child, spawned.announced)
}

/// What [`spawn_marquee_with`] started.
struct Spawned {
    child: Child,
    announced: Vec<String>,
    /// Threads draining the child's output; they end when it exits.
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// [`spawn_marquee`], optionally copying everything the child writes to stdout and stderr
/// into `output`.
fn spawn_marquee_with(
    args: &[String],
    env: &[(&str, &str)],
    announcements: &[&str],
    output: Option<Arc<Mutex<Vec<u8>>>>,
) -> Spawned {
    let mut command = Command::new(env!("CARGO_BIN_EXE_marquee"));
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("NATS_URL")
        .stdout(Stdio::piped())
        .stderr(if output.is_some() {
            Stdio::piped()
        } else {
            Stdio::inherit()
        });
    for (key, _) in std::env::vars() {
        if key.starts_with("MARQUEE_") {
            command.env_remove(key);
        }
    }
    command.env("MARQUEE_LOG", "warn");
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("spawn marquee");
    let mut readers = Vec::new();
    if let (Some(output), Some(mut stderr)) = (output.clone(), child.stderr.take()) {
        readers.push(std::thread::spawn(move || {
            let mut buffer = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                output
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&buffer[..n]);
            }
        }));
    }
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let keep = move |line: &str| {
        if let Some(output) = &output {
            let mut output = output.lock().unwrap_or_else(|e| e.into_inner());
            output.extend_from_slice(line.as_bytes());
            output.push(b'\n');
        }
    };
    let mut found: Vec<Option<String>> = vec![None; announcements.len()];
    while found.iter().any(Option::is_none) {
        let line = match lines.next() {
            Some(Ok(line)) => line,
            other => panic!("marquee {args:?} exited before announcing itself: {other:?}"),
        };
        keep(&line);
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
    readers.push(std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            keep(&line);
        }
    }));
    Spawned {
        child,
        announced: found.into_iter().flatten().collect(),
        readers,
    }
}

impl TestApp {
    /// Kills the process (SIGKILL: no graceful shutdown), starts it again on the same data,
    /// and signs the owner in again.
    pub async fn restart(&mut self) {
        self.kill();
        let started = start(
            self.data_dir.path(),
            self.database_url.as_deref(),
            &self.options,
            self.output.clone(),
        );
        self.child = started.child;
        self.command_url = started.command_url;
        self.query_url = started.query_url;
        self.readers.extend(started.readers);
        let (owner, organization_id) = sign_in_owner(
            &self.anonymous,
            &self.command_url,
            self.data_dir.path(),
            &self.options,
        )
        .await;
        assert_eq!(organization_id, self.organization_id);
        self.client = http_client(Some(&owner.access_token));
        self.owner = owner;
    }

    /// The Postgres database the app runs on (`None` on SQLite).
    pub fn database_url(&self) -> Option<&str> {
        self.database_url.as_deref()
    }

    /// The URL of the database the app runs on (SQLite file or Postgres).
    pub fn database(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}",
                self.data_dir.path().join("marquee.db").display()
            ),
        }
    }

    /// The app's data directory.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// Stops the process and returns everything it wrote to stdout and stderr (the app must
    /// have been started with [`AppOptions::capture_output`]).
    pub fn stop_and_collect_output(&mut self) -> String {
        self.kill();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let output = self
            .output
            .as_ref()
            .expect("started with AppOptions::capture_output");
        let bytes = output.lock().unwrap_or_else(|e| e.into_inner()).clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The secret the app signs access tokens with, read from its database's `auth_secrets`.
    pub async fn jwt_secret(&self) -> Vec<u8> {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&self.database())
            .await
            .expect("the app's database");
        let (value,): (String,) =
            sqlx::query_as("SELECT value FROM auth_secrets WHERE name = 'jwt'")
                .fetch_one(&pool)
                .await
                .expect("the jwt secret");
        pool.close().await;
        (0..value.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&value[i..i + 2], 16).expect("hex"))
            .collect()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a request and reads the whole answer.
    pub async fn send(&self, request: RequestBuilder) -> Reply {
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

    /// A request to `url` carrying `token` as its bearer, or no credentials at all.
    pub fn request_as(&self, token: Option<&str>, method: Method, url: &str) -> RequestBuilder {
        let request = self.anonymous.request(method, url);
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// `POST` a JSON body to the command API as `token` (or anonymously).
    pub async fn post_as(&self, token: Option<&str>, path: &str, body: Value) -> Reply {
        self.send(
            self.request_as(token, Method::POST, &format!("{}{path}", self.command_url))
                .json(&body),
        )
        .await
    }

    /// `GET` from the command API as `token` (or anonymously).
    pub async fn get_command_as(&self, token: Option<&str>, path: &str) -> Reply {
        self.send(self.request_as(token, Method::GET, &format!("{}{path}", self.command_url)))
            .await
    }

    /// Signs an account up (anonymously); the answer as it comes.
    pub async fn sign_up(&self, email: &str, password: &str, name: &str) -> Reply {
        self.post_as(
            None,
            "/v1/auth/signup",
            json!({ "email": email, "password": password, "name": name }),
        )
        .await
    }

    /// Signs an account in; panics unless it works.
    pub async fn sign_in(&self, email: &str, password: &str) -> Session {
        sign_in(&self.anonymous, &self.command_url, email, password).await
    }

    /// A new account in no organization, signed in: `<label>-<unique>@marquee.test` with
    /// [`MEMBER_PASSWORD`].
    pub async fn account(&self, label: &str) -> Session {
        let email = format!("{label}-{}@marquee.test", uuid::Uuid::now_v7().simple());
        let reply = self.sign_up(&email, MEMBER_PASSWORD, label).await;
        assert_eq!(reply.status, 201, "signing up {email}: {}", reply.body);
        let session = self.sign_in(&email, MEMBER_PASSWORD).await;
        assert_eq!(session.user_id, reply.text("user_id"));
        session
    }

    /// Adds the account `email` to `organization_id` with `role`, as `owner_token`.
    pub async fn add_member_as(
        &self,
        owner_token: &str,
        organization_id: &str,
        email: &str,
        role: &str,
    ) -> Reply {
        self.post_as(
            Some(owner_token),
            &format!("/v1/organizations/{organization_id}/members"),
            json!({ "email": email, "role": role }),
        )
        .await
    }

    /// A new account holding `role` in the first owner's organization, signed in (after the
    /// membership, so nothing about it is stale).
    pub async fn member(&self, role: &str) -> Session {
        let session = self.account(role).await;
        let added = self
            .add_member_as(
                &self.owner.access_token,
                &self.organization_id,
                &session.email,
                role,
            )
            .await;
        assert_eq!(added.status, 201, "adding a {role}: {}", added.body);
        session
    }

    /// Founds an organization as `session`; its id.
    pub async fn found_organization(&self, session: &Session, name: &str) -> String {
        let reply = self
            .post_as(
                session.token(),
                "/v1/organizations",
                json!({ "name": name }),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.text("organization_id")
    }

    /// An API token of `organization_id` with `roles`, made by its owner `owner_token`.
    pub async fn api_token(
        &self,
        owner_token: &str,
        organization_id: &str,
        roles: &[&str],
    ) -> ApiToken {
        let reply = self
            .post_as(
                Some(owner_token),
                &format!("/v1/organizations/{organization_id}/tokens"),
                json!({ "name": format!("integration {}", roles.join("+")), "roles": roles }),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        let token = reply.text("token");
        assert!(token.starts_with("mqt_"), "{token}");
        ApiToken {
            token_id: reply.text("token_id"),
            token,
        }
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
        assert_eq!(
            reply.body["organization_id"],
            self.organization_id.as_str(),
            "a venue belongs to the caller's only organization by default"
        );
        reply.text("venue_id")
    }

    /// Drafts an event at a venue, a month from now, and returns its id. Each call takes a slot
    /// of its own: two events at one venue may not overlap.
    pub async fn draft_event(&self, venue_id: &str, title: &str) -> String {
        let reply = self
            .post("/v1/events", event_body(venue_id, title, next_slot()))
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.text("event_id")
    }

    /// Adds a free ticket type and returns its id.
    pub async fn add_free_ticket_type(&self, event_id: &str, name: &str, quantity: u32) -> String {
        self.add_ticket_type(event_id, name, 0, quantity).await
    }

    /// Adds a ticket type of `price_minor` euro cents and returns its id.
    pub async fn add_ticket_type(
        &self,
        event_id: &str,
        name: &str,
        price_minor: i64,
        quantity: u32,
    ) -> String {
        let reply = self
            .post(
                &format!("/v1/events/{event_id}/ticket-types"),
                json!({ "name": name, "price": { "amount_minor": price_minor, "currency": "EUR" }, "quantity": quantity }),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.text("ticket_type_id")
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
            reservation_body(ticket_type_id, quantity, n),
        )
        .await
    }
}

/// The body of a reservation for attendee `n`.
pub fn reservation_body(ticket_type_id: &str, quantity: u32, n: usize) -> Value {
    json!({
        "ticket_type_id": ticket_type_id,
        "quantity": quantity,
        "attendee": { "name": format!("Guest {n}"), "email": format!("guest{n}@example.com") },
    })
}

/// A fresh start time a month from now or later: each call gets a four-hour slot of its own,
/// so events drafted with [`event_body`] never overlap at one venue.
pub fn next_slot() -> chrono::DateTime<chrono::Utc> {
    static SLOT: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let slot = SLOT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    chrono::Utc::now() + chrono::Duration::days(30) + chrono::Duration::hours(4 * slot)
}

/// The body of a three-hour event draft at `venue_id` starting at `starts`.
pub fn event_body(venue_id: &str, title: &str, starts: chrono::DateTime<chrono::Utc>) -> Value {
    json!({
        "venue_id": venue_id,
        "title": title,
        "category": "concert",
        "starts_at": starts,
        "ends_at": starts + chrono::Duration::hours(3),
    })
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.kill();
    }
}
