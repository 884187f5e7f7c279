//! Distributed mode: command API, relay, projector and query API as four separate processes
//! on one Postgres and one NATS JetStream.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use marquee_projector::{Projector, ReadModels};
use marquee_store::testing::PgTestDb;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{
    OWNER_EMAIL, OWNER_PASSWORD, Reply, base_env, http_client, sign_in, spawn_marquee,
};

/// The four services, each its own `marquee` process, on a fresh database and fresh JetStream
/// names (optionally on a private NATS server the test can stop). Dropping it kills the
/// processes and deletes the stream and the database.
struct Cluster {
    command_url: String,
    query_url: String,
    client: reqwest::Client,
    nats_url: String,
    stream: String,
    env: Vec<(String, String)>,
    services: HashMap<&'static str, Child>,
    nats: Option<PrivateNats>,
    pg: PgTestDb,
}

/// A `nats-server` of the test's own, so it can be stopped and started again.
struct PrivateNats {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl PrivateNats {
    fn start(port: u16, dir: tempfile::TempDir) -> Self {
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server on PATH (install it, or run the README's test command)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "private nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port, dir }
    }

    fn stop(mut self) -> (u16, tempfile::TempDir) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.port, self.dir)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// How each service is started, and the line that says it is up.
fn service(name: &str) -> (Vec<String>, &'static str) {
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match name {
        "command-api" => (
            args(&["command-api", "--addr", "127.0.0.1:0"]),
            "command API on ",
        ),
        "query-api" => (
            args(&["query-api", "--addr", "127.0.0.1:0"]),
            "query API on ",
        ),
        "relay" => (args(&["relay"]), "relay publishing to "),
        "projector" => (
            args(&["projector", "--projector-id", "projector-a"]),
            "projector running",
        ),
        "projector-b" => (
            args(&["projector", "--projector-id", "projector-b"]),
            "projector running",
        ),
        other => panic!("no service {other}"),
    }
}

async fn spawn_cluster(private_nats: bool) -> Cluster {
    let pg = PgTestDb::create().await;
    let nats =
        private_nats.then(|| PrivateNats::start(free_port(), tempfile::tempdir().expect("dir")));
    let nats_url = match &nats {
        Some(nats) => format!("nats://127.0.0.1:{}", nats.port),
        None => nats_url(),
    };
    async_nats::connect(&nats_url).await.unwrap_or_else(|e| {
        panic!("NATS not reachable at {nats_url} ({e}); run the README's test command, which starts one")
    });
    let id = Uuid::now_v7().simple().to_string();
    let stream = format!("MARQUEE_TEST_{id}");
    let mut env: Vec<(String, String)> = base_env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    env.extend([
        ("DATABASE_URL".to_owned(), pg.url.clone()),
        ("NATS_URL".to_owned(), nats_url.clone()),
        ("MARQUEE_NATS_STREAM".to_owned(), stream.clone()),
        (
            "MARQUEE_NATS_SUBJECT_PREFIX".to_owned(),
            format!("marquee_test_{id}.facts"),
        ),
    ]);
    let mut cluster = Cluster {
        command_url: String::new(),
        query_url: String::new(),
        client: http_client(None),
        nats_url,
        stream,
        env,
        services: HashMap::new(),
        nats,
        pg,
    };
    for name in ["command-api", "relay", "projector", "query-api"] {
        cluster.start(name);
    }
    // The command API opened the first owner's account; every request is the owner's.
    let owner = sign_in(
        &cluster.client,
        &cluster.command_url,
        OWNER_EMAIL,
        OWNER_PASSWORD,
    )
    .await;
    cluster.client = http_client(Some(&owner.access_token));
    cluster
}

impl Cluster {
    /// Starts (or restarts) one service process.
    fn start(&mut self, name: &'static str) {
        let (args, announcement) = service(name);
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (child, announced) = spawn_marquee(&args, &env, &[announcement]);
        match name {
            "command-api" => self.command_url = announced[0].clone(),
            "query-api" => self.query_url = announced[0].clone(),
            _ => {}
        }
        if let Some(mut old) = self.services.insert(name, child) {
            let _ = old.kill();
            let _ = old.wait();
        }
    }

    /// SIGKILLs one service: no graceful shutdown, no lease release.
    fn kill(&mut self, name: &str) {
        if let Some(mut child) = self.services.remove(name) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn stop_nats(&mut self) -> (u16, tempfile::TempDir) {
        self.nats.take().expect("a private NATS").stop()
    }

    fn start_nats(&mut self, (port, dir): (u16, tempfile::TempDir)) {
        self.nats = Some(PrivateNats::start(port, dir));
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        Reply::send(request).await
    }

    async fn command(&self, path: &str, body: serde_json::Value) -> Reply {
        self.send(
            self.client
                .post(format!("{}{path}", self.command_url))
                .json(&body),
        )
        .await
    }

    /// A published event with one free ticket type; returns (event id, ticket type id).
    async fn published_event(&self, seats: u32) -> (String, String) {
        let venue = self
            .command(
                "/v1/venues",
                json!({ "name": "Arena", "city": "Lyon", "capacity": 5000 }),
            )
            .await;
        assert_eq!(venue.status, 201, "{}", venue.body);
        let event = self
            .command(
                "/v1/events",
                json!({
                    "venue_id": venue.body["venue_id"], "title": "Distributed", "category": "test",
                    "starts_at": "2031-01-01T18:00:00Z", "ends_at": "2031-01-01T22:00:00Z",
                    "max_per_order": 1
                }),
            )
            .await;
        assert_eq!(event.status, 201, "{}", event.body);
        let event_id = event.body["event_id"]
            .as_str()
            .expect("event_id")
            .to_owned();
        let ticket = self
            .command(
                &format!("/v1/events/{event_id}/ticket-types"),
                json!({ "name": "GA", "price": { "amount_minor": 0, "currency": "EUR" }, "quantity": seats }),
            )
            .await;
        assert_eq!(ticket.status, 201, "{}", ticket.body);
        let published = self
            .command(&format!("/v1/events/{event_id}/publish"), json!({}))
            .await;
        assert_eq!(published.status, 200, "{}", published.body);
        let ticket_id = ticket.body["ticket_type_id"]
            .as_str()
            .expect("ticket_type_id")
            .to_owned();
        (event_id, ticket_id)
    }

    /// Reserves one seat for guest `n`; the command must be accepted.
    async fn reserve(&self, event_id: &str, ticket_id: &str, n: u64) -> u64 {
        let reply = self
            .command(
                &format!("/v1/events/{event_id}/reservations"),
                json!({
                    "ticket_type_id": ticket_id, "quantity": 1,
                    "attendee": { "name": format!("Guest {n}"), "email": format!("g{n}@example.com") }
                }),
            )
            .await;
        assert_eq!(reply.status, 201, "reservation {n}: {}", reply.body);
        reply.position.expect("Marquee-Position")
    }

    /// Confirmed seats as the query API reports them once it has applied `position`.
    async fn confirmed(&self, event_id: &str, position: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let reply = self
                .send(
                    self.client
                        .get(format!("{}/v1/events/{event_id}/capacity", self.query_url))
                        .header("Marquee-Min-Position", position.to_string()),
                )
                .await;
            if reply.status == 200 {
                return reply.body["confirmed"].as_u64().expect("confirmed");
            }
            // 503 position_not_reached while a projector takes over: wait, never accept stale.
            reply.assert_problem(503, "position_not_reached");
            assert!(
                Instant::now() < deadline,
                "read models never reached {position}"
            );
        }
    }

    /// Messages in this cluster's JetStream stream.
    async fn published(&self) -> u64 {
        let Ok(client) = async_nats::connect(&self.nats_url).await else {
            return 0;
        };
        let jetstream = async_nats::jetstream::new(client);
        match jetstream.get_stream(&self.stream).await {
            Ok(mut stream) => stream.info().await.map_or(0, |i| i.state.messages),
            Err(_) => 0,
        }
    }

    /// Waits until JetStream holds every fact of the log, then checks it holds no more.
    async fn assert_jetstream_holds_the_log_once(&self) {
        let head = marquee_store::connect(&self.pg.url)
            .await
            .expect("log")
            .head_position()
            .await
            .expect("head");
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut published = self.published().await;
        while published < head && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            published = self.published().await;
        }
        assert_eq!(published, head, "every fact is in JetStream exactly once");
    }

    /// The read models equal a fresh projection of the whole log into an empty database.
    async fn assert_read_models_match_a_fresh_rebuild(&self) {
        let store = marquee_store::connect(&self.pg.url).await.expect("log");
        let head = store.head_position().await.expect("head");
        let live = ReadModels::connect(&self.pg.url).await.expect("live");
        assert!(
            live.wait_for(head, Duration::from_secs(30))
                .await
                .expect("wait"),
            "the live read models reach the head {head}"
        );
        let fresh_db = PgTestDb::create().await;
        // Personal data in the log is sealed: the fresh projection opens it with the cluster's
        // keys, as every projector of the cluster does.
        let keys = marquee_auth::AuthStore::connect(&self.pg.url)
            .await
            .expect("the cluster's auth tables");
        let vault = marquee_auth::Vault::new(keys).await.expect("the vault");
        let fresh = ReadModels::connect(&fresh_db.url)
            .await
            .expect("fresh")
            .with_vault(vault);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let projector = tokio::spawn(Projector::new(store, fresh.clone()).run(async move {
            let _ = stopped.await;
        }));
        assert!(
            fresh
                .wait_for(head, Duration::from_secs(60))
                .await
                .expect("wait"),
            "the fresh projection reaches the head {head}"
        );
        let _ = stop.send(());
        let _ = projector.await;
        for table in marquee_projector::READ_MODEL_TABLES {
            let live_rows = table_rows(&self.pg.url, table).await;
            let fresh_rows = table_rows(&fresh_db.url, table).await;
            // The workload fills these; the others (waitlist, timers) may stay empty.
            if [
                "venues",
                "event_listing",
                "event_capacity",
                "registrations",
                "tickets",
            ]
            .contains(&table)
            {
                assert!(!live_rows.is_empty(), "{table} has rows");
            }
            assert_eq!(
                live_rows, fresh_rows,
                "{table} equals a fresh rebuild from the log"
            );
        }
        assert_eq!(live.applied_position().await.expect("checkpoint"), head);
    }
}

/// Every row of a table as JSON text, in a stable order.
async fn table_rows(url: &str, table: &str) -> Vec<String> {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    let sql = format!("SELECT to_jsonb(t)::text FROM {table} t ORDER BY 1");
    let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(&pool)
        .await
        .expect("rows");
    pool.close().await;
    rows.into_iter().map(|(row,)| row).collect()
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.services.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(nats) = self.nats.take() {
            // The private server's stream dies with its temp dir.
            nats.stop();
            return;
        }
        let (url, stream) = (self.nats_url.clone(), self.stream.clone());
        // Drop cannot await; clean the stream up on a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                if let Ok(client) = async_nats::connect(&url).await {
                    let _ = async_nats::jetstream::new(client)
                        .delete_stream(&stream)
                        .await;
                }
            });
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nats_four_separate_processes_read_their_own_writes_two_hundred_times() {
    let cluster = spawn_cluster(false).await;
    let (event_id, ticket_id) = cluster.published_event(1000).await;
    for i in 1..=200u64 {
        let position = cluster.reserve(&event_id, &ticket_id, i).await;
        let capacity = cluster
            .send(
                cluster
                    .client
                    .get(format!(
                        "{}/v1/events/{event_id}/capacity",
                        cluster.query_url
                    ))
                    .header("Marquee-Min-Position", position.to_string()),
            )
            .await;
        assert_eq!(capacity.status, 200, "iteration {i}: {}", capacity.body);
        assert_eq!(
            capacity.body["confirmed"], i,
            "iteration {i} sees its own write: {}",
            capacity.body
        );
        assert!(capacity.position.expect("applied position") >= position);
    }
    cluster.assert_jetstream_holds_the_log_once().await;
    cluster.assert_read_models_match_a_fresh_rebuild().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nats_commands_are_accepted_while_nats_is_down_and_nothing_is_lost() {
    let mut cluster = spawn_cluster(true).await;
    let (event_id, ticket_id) = cluster.published_event(1000).await;
    for n in 0..30 {
        cluster.reserve(&event_id, &ticket_id, n).await;
    }
    let nats = cluster.stop_nats();
    for n in 30..60 {
        cluster.reserve(&event_id, &ticket_id, n).await;
    }
    cluster.start_nats(nats);
    let mut last = 0;
    for n in 60..70 {
        last = cluster.reserve(&event_id, &ticket_id, n).await;
    }
    assert_eq!(cluster.confirmed(&event_id, last).await, 70);
    cluster.assert_jetstream_holds_the_log_once().await;
    cluster.assert_read_models_match_a_fresh_rebuild().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nats_a_projector_killed_mid_stream_resumes_and_counts_nothing_twice() {
    let mut cluster = spawn_cluster(false).await;
    let (event_id, ticket_id) = cluster.published_event(1000).await;
    for n in 0..40 {
        cluster.reserve(&event_id, &ticket_id, n).await;
    }
    cluster.kill("projector");
    for n in 40..80 {
        cluster.reserve(&event_id, &ticket_id, n).await;
    }
    cluster.start("projector");
    let mut last = 0;
    for n in 80..100 {
        last = cluster.reserve(&event_id, &ticket_id, n).await;
    }
    assert_eq!(cluster.confirmed(&event_id, last).await, 100);
    cluster.assert_read_models_match_a_fresh_rebuild().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nats_a_restarted_relay_publishes_nothing_twice() {
    let mut cluster = spawn_cluster(false).await;
    let (event_id, ticket_id) = cluster.published_event(1000).await;
    for n in 0..40 {
        cluster.reserve(&event_id, &ticket_id, n).await;
    }
    cluster.kill("relay");
    for n in 40..60 {
        cluster.reserve(&event_id, &ticket_id, n).await;
    }
    cluster.start("relay");
    let mut last = 0;
    for n in 60..80 {
        last = cluster.reserve(&event_id, &ticket_id, n).await;
    }
    assert_eq!(cluster.confirmed(&event_id, last).await, 80);
    cluster.assert_jetstream_holds_the_log_once().await;
    cluster.assert_read_models_match_a_fresh_rebuild().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nats_two_projectors_at_once_apply_every_fact_once() {
    let mut cluster = spawn_cluster(false).await;
    cluster.start("projector-b");
    let (event_id, ticket_id) = cluster.published_event(1000).await;
    let mut last = 0;
    for n in 0..120 {
        last = cluster.reserve(&event_id, &ticket_id, n).await;
    }
    assert_eq!(cluster.confirmed(&event_id, last).await, 120);
    cluster.assert_read_models_match_a_fresh_rebuild().await;
}
