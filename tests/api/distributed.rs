//! Distributed mode: command API, relay, projector and query API as four separate processes
//! on one Postgres and one NATS JetStream.

use std::process::Child;
use std::time::{Duration, Instant};

use marquee_store::testing::PgTestDb;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Reply, spawn_marquee};

/// The four services, each its own `marquee` process, on a fresh database and fresh JetStream
/// names. Dropping it kills the processes and deletes the stream and the database.
struct Cluster {
    command_url: String,
    query_url: String,
    client: reqwest::Client,
    nats_url: String,
    stream: String,
    children: Vec<Child>,
    _pg: PgTestDb,
}

fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

async fn spawn_cluster() -> Cluster {
    let pg = PgTestDb::create().await;
    let nats_url = nats_url();
    async_nats::connect(&nats_url).await.unwrap_or_else(|e| {
        panic!("NATS not reachable at {nats_url} ({e}); run the README's test command, which starts one")
    });
    let id = Uuid::now_v7().simple().to_string();
    let stream = format!("MARQUEE_TEST_{id}");
    let prefix = format!("marquee_test_{id}.facts");
    let env = [
        ("DATABASE_URL", pg.url.as_str()),
        ("NATS_URL", nats_url.as_str()),
        ("MARQUEE_NATS_STREAM", stream.as_str()),
        ("MARQUEE_NATS_SUBJECT_PREFIX", prefix.as_str()),
    ];
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (command, command_url) = spawn_marquee(
        &args(&["command-api", "--addr", "127.0.0.1:0"]),
        &env,
        &["command API on "],
    );
    let (relay, _) = spawn_marquee(&args(&["relay"]), &env, &["relay publishing to "]);
    let (projector, _) = spawn_marquee(&args(&["projector"]), &env, &["projector running"]);
    let (query, query_url) = spawn_marquee(
        &args(&["query-api", "--addr", "127.0.0.1:0"]),
        &env,
        &["query API on "],
    );
    Cluster {
        command_url: command_url[0].clone(),
        query_url: query_url[0].clone(),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        nats_url,
        stream,
        children: vec![command, relay, projector, query],
        _pg: pg,
    }
}

impl Cluster {
    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let position = response
            .headers()
            .get("marquee-position")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let body = response.json().await.unwrap_or(serde_json::Value::Null);
        Reply {
            status,
            content_type,
            position,
            body,
        }
    }

    async fn command(&self, path: &str, body: serde_json::Value) -> Reply {
        self.send(
            self.client
                .post(format!("{}{path}", self.command_url))
                .json(&body),
        )
        .await
    }

    /// Messages in this cluster's JetStream stream.
    async fn published(&self) -> u64 {
        let client = async_nats::connect(&self.nats_url).await.expect("nats");
        let jetstream = async_nats::jetstream::new(client);
        match jetstream.get_stream(&self.stream).await {
            Ok(mut stream) => stream.info().await.map_or(0, |i| i.state.messages),
            Err(_) => 0,
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
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
    let cluster = spawn_cluster().await;
    let venue = cluster
        .command(
            "/v1/venues",
            json!({ "name": "Arena", "city": "Lyon", "capacity": 5000 }),
        )
        .await;
    assert_eq!(venue.status, 201, "{}", venue.body);
    let event = cluster
        .command(
            "/v1/events",
            json!({
                "venue_id": venue.body["venue_id"], "title": "Read your writes", "category": "test",
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
    let ticket = cluster
        .command(
            &format!("/v1/events/{event_id}/ticket-types"),
            json!({ "name": "GA", "price": { "amount_minor": 0, "currency": "EUR" }, "quantity": 1000 }),
        )
        .await;
    assert_eq!(ticket.status, 201, "{}", ticket.body);
    let published = cluster
        .command(&format!("/v1/events/{event_id}/publish"), json!({}))
        .await;
    assert_eq!(published.status, 200, "{}", published.body);

    for i in 1..=200u64 {
        let reserved = cluster
            .command(
                &format!("/v1/events/{event_id}/reservations"),
                json!({
                    "ticket_type_id": ticket.body["ticket_type_id"], "quantity": 1,
                    "attendee": { "name": format!("Guest {i}"), "email": format!("g{i}@example.com") }
                }),
            )
            .await;
        assert_eq!(reserved.status, 201, "{}", reserved.body);
        let position = reserved.position.expect("Marquee-Position");
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

    // The relay published the whole log to JetStream, one message per fact.
    let health = cluster
        .send(cluster.client.get(format!("{}/health", cluster.query_url)))
        .await;
    let head = health.body["head_position"].as_u64().expect("head");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut published = cluster.published().await;
    while published < head && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        published = cluster.published().await;
    }
    assert_eq!(published, head, "every fact is in JetStream exactly once");
}
