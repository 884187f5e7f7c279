//! The relay against a real NATS JetStream server (`NATS_URL`, default `nats://127.0.0.1:4222`;
//! `scripts/test` starts one when none is reachable). Every test has its own stream and subject
//! prefix and deletes its stream afterwards, also when it fails.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use marquee_relay::{Relay, RelayConfig, RelayError, subject_for};
use marquee_store::{
    AppendRequest, EventStore, ExpectedRevision, FactMetadata, NewFact, RecordedFact,
};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Long enough for a loaded CI machine, short enough that a hang fails the test.
const WAIT: Duration = Duration::from_secs(60);

/// Shows the relay's logs in a failing test's output (and with `--nocapture`).
fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "marquee_relay=debug".into()),
        )
        .with_test_writer()
        .try_init();
}

fn nats_url() -> String {
    init_tracing();
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

async fn connect(url: &str) -> jetstream::Context {
    match async_nats::connect(url).await {
        Ok(client) => jetstream::new(client),
        Err(e) => panic!(
            "NATS not reachable at {url} ({e}); run the README's test command (scripts/test), \
             which starts one, or set NATS_URL to a JetStream-enabled server"
        ),
    }
}

/// A stream name and subject prefix of this test's own; deletes the stream when dropped.
struct TestStream {
    url: String,
    name: String,
    prefix: String,
}

impl TestStream {
    fn new(url: &str) -> Self {
        let id = Uuid::new_v4().simple().to_string();
        Self {
            url: url.to_owned(),
            name: format!("MARQUEE_TEST_{id}"),
            prefix: format!("marquee_test_{id}.facts"),
        }
    }

    fn config(&self) -> RelayConfig {
        RelayConfig {
            stream_name: self.name.clone(),
            subject_prefix: self.prefix.clone(),
            ..RelayConfig::new(self.url.clone())
        }
    }
}

impl Drop for TestStream {
    fn drop(&mut self) {
        // Drop cannot await, and may run while the test's runtime is unwinding: clean up on a
        // thread with a runtime of its own.
        let (url, name) = (self.url.clone(), self.name.clone());
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                let connected =
                    tokio::time::timeout(Duration::from_secs(5), async_nats::connect(&url)).await;
                if let Ok(Ok(client)) = connected {
                    let _ = jetstream::new(client).delete_stream(&name).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// A relay running in the background, and the means to stop it.
struct Running {
    published: watch::Receiver<u64>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), RelayError>>,
}

fn start(store: Arc<dyn EventStore>, config: RelayConfig) -> Running {
    let relay = Relay::new(store, config);
    let published = relay.published();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(relay.run(async move {
        let _ = stopped.await;
    }));
    Running {
        published,
        stop,
        task,
    }
}

impl Running {
    async fn wait_published(&mut self, position: u64) {
        let reached = tokio::time::timeout(WAIT, self.published.wait_for(|p| *p >= position))
            .await
            .map(|waited| waited.is_ok());
        match reached {
            Ok(true) => {}
            Ok(false) => panic!("the relay stopped before publishing position {position}"),
            Err(_) => panic!(
                "the relay did not publish position {position} within {WAIT:?} (at {})",
                *self.published.borrow()
            ),
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let result = tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the relay stops when asked")
            .expect("the relay task does not panic");
        result.expect("the relay stops without error");
    }
}

fn fact(i: usize, correlated: bool) -> NewFact {
    NewFact {
        fact_id: Uuid::now_v7(),
        fact_type: if i.is_multiple_of(2) {
            "SeatsReserved".to_owned()
        } else {
            "EventPublished".to_owned()
        },
        schema_version: 1,
        data: serde_json::json!({ "n": i }),
        metadata: FactMetadata {
            correlation_id: correlated.then(Uuid::now_v7),
            causation_id: None,
            actor: Some("test".to_owned()),
            organization: None,
        },
    }
}

/// Appends `n` facts, one append per fact, spread over a few streams of different shapes.
async fn append(store: &Arc<dyn EventStore>, n: usize) -> u64 {
    let streams = [
        format!("event-{}", Uuid::now_v7()),
        format!("event-{}", Uuid::now_v7()),
        format!("ticket-type-{}", Uuid::now_v7()),
        "odd.stream name".to_owned(),
    ];
    let mut last = 0;
    for i in 0..n {
        let appended = store
            .append(AppendRequest {
                stream: streams[i % streams.len()].clone(),
                expected: ExpectedRevision::Any,
                facts: vec![fact(i, !i.is_multiple_of(3))],
                idempotency: None,
            })
            .await
            .expect("append");
        last = appended.last_position;
    }
    last
}

async fn memory_store() -> Arc<dyn EventStore> {
    marquee_store::connect("memory:")
        .await
        .expect("memory store")
}

/// One message as an outside consumer sees it.
struct Received {
    subject: String,
    stream_sequence: u64,
    headers: async_nats::HeaderMap,
    fact: RecordedFact,
}

fn header(headers: &async_nats::HeaderMap, name: &str) -> Option<String> {
    headers.get(name).map(|v| v.as_str().to_owned())
}

/// Reads `count` messages of `stream` from sequence 1 with an ordered pull consumer: the way an
/// outside consumer replays the whole log. Fails if fewer arrive.
async fn replay(js: &jetstream::Context, stream: &str, count: usize) -> Vec<Received> {
    let stream = js.get_stream(stream).await.expect("stream exists");
    let mut messages = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .expect("ordered consumer")
        .messages()
        .await
        .expect("consumer messages");
    let mut received = Vec::with_capacity(count);
    let mut hiccups = 0;
    while received.len() < count {
        let message = tokio::time::timeout(WAIT, messages.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} messages arrived", received.len()))
            .expect("consumer stream open");
        let message = match message {
            Ok(message) => message,
            // An ordered consumer reports a missed heartbeat or a recreation and carries on from
            // where it was; it still delivers every message once, in order.
            Err(e) if hiccups < 10 => {
                hiccups += 1;
                eprintln!("ordered consumer: {e}; continuing");
                continue;
            }
            Err(e) => panic!("ordered consumer keeps failing: {e}"),
        };
        let info = message.info().expect("jetstream message info");
        received.push(Received {
            subject: message.subject.to_string(),
            stream_sequence: info.stream_sequence,
            headers: message.headers.clone().unwrap_or_default(),
            fact: serde_json::from_slice(&message.payload).expect("payload is a RecordedFact"),
        });
    }
    received
}

async fn message_count(js: &jetstream::Context, stream: &str) -> u64 {
    let mut stream = js.get_stream(stream).await.expect("stream exists");
    stream.info().await.expect("stream info").state.messages
}

/// Every fact of the log, each exactly once and in position order, with the right subject and
/// headers.
async fn assert_stream_is_the_log(
    js: &jetstream::Context,
    test: &TestStream,
    store: &Arc<dyn EventStore>,
) {
    let log = store.read_all(0, 100_000).await.expect("read the log");
    assert_eq!(
        message_count(js, &test.name).await,
        log.len() as u64,
        "JetStream holds exactly one message per fact"
    );
    let received = replay(js, &test.name, log.len()).await;
    for (i, (got, want)) in received.iter().zip(&log).enumerate() {
        assert_eq!(got.stream_sequence, i as u64 + 1, "no gaps in the stream");
        assert_eq!(
            &got.fact,
            want,
            "message {} is the fact at that place in the log",
            i + 1
        );
        assert_eq!(got.subject, subject_for(&test.prefix, &want.stream));
        let h = |name| header(&got.headers, name);
        assert_eq!(h("Nats-Msg-Id"), Some(want.fact_id.to_string()));
        assert_eq!(h("Marquee-Position"), Some(want.position.to_string()));
        assert_eq!(h("Marquee-Fact-Type"), Some(want.fact_type.clone()));
        assert_eq!(h("Marquee-Stream"), Some(want.stream.clone()));
        assert_eq!(h("Marquee-Revision"), Some(want.revision.to_string()));
        assert_eq!(
            h("Marquee-Correlation-Id"),
            want.metadata.correlation_id.map(|id| id.to_string())
        );
    }
}

#[tokio::test]
async fn nats_every_fact_arrives_once_in_position_order_with_its_subject_and_headers() {
    let url = nats_url();
    let js = connect(&url).await;
    let test = TestStream::new(&url);
    let store = memory_store().await;
    let head = append(&store, 300).await;

    let mut relay = start(store.clone(), test.config());
    relay.wait_published(head).await;
    relay.stop().await;

    assert_stream_is_the_log(&js, &test, &store).await;
    let info = js
        .get_stream(&test.name)
        .await
        .expect("stream")
        .cached_info()
        .config
        .clone();
    assert_eq!(info.subjects, vec![format!("{}.>", test.prefix)]);
    assert_eq!(info.storage, stream::StorageType::File);
    assert_eq!(info.duplicate_window, Duration::from_secs(120));
    assert_eq!(info.max_messages, -1, "no message limit by default");
}

#[tokio::test]
async fn nats_facts_appended_while_the_relay_runs_arrive_live() {
    let url = nats_url();
    let js = connect(&url).await;
    let test = TestStream::new(&url);
    let store = memory_store().await;
    let mut relay = start(store.clone(), test.config());

    // A live subscriber on the subjects, listening before anything is appended.
    let mut live = js
        .client()
        .subscribe(format!("{}.>", test.prefix))
        .await
        .expect("subscribe");
    let mut seen = Vec::new();
    for round in 1..=3 {
        let head = append(&store, 10).await;
        relay.wait_published(head).await;
        while seen.len() < round * 10 {
            let message = tokio::time::timeout(WAIT, live.next())
                .await
                .expect("a live message arrives")
                .expect("subscription open");
            let fact: RecordedFact = serde_json::from_slice(&message.payload).expect("fact");
            seen.push(fact.position);
        }
    }
    relay.stop().await;

    let log: Vec<u64> = store
        .read_all(0, 1000)
        .await
        .expect("read")
        .iter()
        .map(|f| f.position)
        .collect();
    assert_eq!(seen, log, "live subscribers see every fact once, in order");
    assert_stream_is_the_log(&js, &test, &store).await;
}

#[tokio::test]
async fn nats_a_restarted_relay_publishes_only_what_is_new() {
    let url = nats_url();
    let js = connect(&url).await;
    let test = TestStream::new(&url);
    let store = memory_store().await;

    let first_head = append(&store, 40).await;
    let mut first = start(store.clone(), test.config());
    first.wait_published(first_head).await;
    first.stop().await;

    let head = append(&store, 25).await;
    let mut second = start(store.clone(), test.config());
    second.wait_published(head).await;
    second.stop().await;

    // And a third start with nothing new publishes nothing.
    let mut third = start(store.clone(), test.config());
    third.wait_published(head).await;
    third.stop().await;

    assert_eq!(message_count(&js, &test.name).await, 65);
    assert_stream_is_the_log(&js, &test, &store).await;
}

#[tokio::test]
async fn nats_a_stream_filled_from_another_log_is_refused() {
    let url = nats_url();
    let _js = connect(&url).await;
    let test = TestStream::new(&url);

    let original = memory_store().await;
    let head = append(&original, 5).await;
    let mut relay = start(original, test.config());
    relay.wait_published(head).await;
    relay.stop().await;

    // A fresh log (say, an in-memory one after a restart) behind the same stream: resuming
    // after position 5 would silently skip its first five facts.
    let shorter = memory_store().await;
    append(&shorter, 2).await;
    let result = tokio::time::timeout(
        WAIT,
        Relay::new(shorter, test.config()).run(std::future::pending()),
    )
    .await
    .expect("the relay gives up at once");
    assert!(
        matches!(
            result,
            Err(RelayError::AheadOfLog {
                checkpoint: 5,
                head: 2,
                ..
            })
        ),
        "{result:?}"
    );

    let other = memory_store().await;
    append(&other, 8).await;
    let result = tokio::time::timeout(
        WAIT,
        Relay::new(other, test.config()).run(std::future::pending()),
    )
    .await
    .expect("the relay gives up at once");
    assert!(
        matches!(result, Err(RelayError::LogMismatch { position: 5, .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn nats_an_existing_stream_is_brought_in_line_with_the_config() {
    let url = nats_url();
    let js = connect(&url).await;
    let test = TestStream::new(&url);
    // Made by hand (or an older relay): another subject, a short duplicate window.
    js.create_stream(stream::Config {
        name: test.name.clone(),
        subjects: vec![format!("{}.old", test.prefix)],
        duplicate_window: Duration::from_secs(10),
        ..Default::default()
    })
    .await
    .expect("create the stream by hand");

    let store = memory_store().await;
    let head = append(&store, 12).await;
    let mut relay = start(
        store.clone(),
        RelayConfig {
            max_messages: Some(1_000),
            ..test.config()
        },
    );
    relay.wait_published(head).await;
    relay.stop().await;

    let config = js
        .get_stream(&test.name)
        .await
        .expect("stream")
        .cached_info()
        .config
        .clone();
    assert_eq!(config.subjects, vec![format!("{}.>", test.prefix)]);
    assert_eq!(config.duplicate_window, Duration::from_secs(120));
    assert_eq!(config.max_messages, 1_000);
    assert_stream_is_the_log(&js, &test, &store).await;
}

#[tokio::test]
async fn nats_a_message_the_relay_did_not_write_stops_it() {
    let url = nats_url();
    let js = connect(&url).await;
    let test = TestStream::new(&url);
    let store = memory_store().await;
    let head = append(&store, 3).await;
    let mut relay = start(store.clone(), test.config());
    relay.wait_published(head).await;
    relay.stop().await;

    // Someone else publishes under the relay's prefix: the last message no longer says where
    // the relay stopped.
    js.publish(format!("{}.intruder._", test.prefix), "hello".into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    let result = tokio::time::timeout(
        WAIT,
        Relay::new(store, test.config()).run(std::future::pending()),
    )
    .await
    .expect("the relay gives up at once");
    assert!(
        matches!(result, Err(RelayError::ForeignMessage { sequence: 4, .. })),
        "{result:?}"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[tokio::test]
async fn nats_relay_stops_promptly_while_nats_is_unreachable() {
    let config = RelayConfig {
        stream_name: "MARQUEE_TEST_UNREACHABLE".to_owned(),
        ..RelayConfig::new(format!("nats://127.0.0.1:{}", free_port()))
    };
    let relay = start(memory_store().await, config);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(*relay.published.borrow(), 0);
    let _ = relay.stop.send(());
    let result = tokio::time::timeout(Duration::from_secs(5), relay.task)
        .await
        .expect("stops within 5 s although NATS is down")
        .expect("no panic");
    assert!(result.is_ok(), "{result:?}");
}

/// A private `nats-server` on a fixed port and store directory, so it can be killed and
/// restarted with its data.
struct PrivateNats {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl PrivateNats {
    async fn start() -> Self {
        let mut server = Self {
            port: free_port(),
            dir: tempfile::tempdir().expect("tempdir"),
            child: None,
        };
        server.restart().await;
        server
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn log_path(&self) -> std::path::PathBuf {
        self.dir.path().join("nats-server.log")
    }

    async fn restart(&mut self) {
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.dir.path())
            .arg("-l")
            .arg(self.log_path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start nats-server ({e}); install it (Debian/Ubuntu: apt-get install \
                     nats-server; macOS: brew install nats-server) so the NATS outage test can run"
                )
            });
        self.child = Some(child);
        for _ in 0..200 {
            // The server recovers its JetStream streams from disk before it accepts clients.
            if async_nats::connect(self.url()).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "private nats-server on port {} did not come up; its log:\n{}",
            self.port,
            std::fs::read_to_string(self.log_path()).unwrap_or_default()
        );
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test]
async fn nats_going_down_and_coming_back_loses_and_duplicates_nothing() {
    init_tracing();
    let mut server = PrivateNats::start().await;
    let test = TestStream::new(&server.url());
    let store = memory_store().await;
    let config = RelayConfig {
        // Notice the outage quickly, and retry often, so the test is short.
        ack_timeout: Duration::from_secs(1),
        backoff_max: Duration::from_millis(500),
        ..test.config()
    };
    let mut relay = start(store.clone(), config);

    let head = append(&store, 30).await;
    relay.wait_published(head).await;

    // Down while idle; facts keep being appended (commands do not depend on NATS).
    server.kill();
    let head = append(&store, 30).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        *relay.published.borrow() < head,
        "nothing published while NATS is down"
    );
    server.restart().await;
    relay.wait_published(head).await;

    // Down in the middle of a burst, with publishes in flight.
    let head = append(&store, 3000).await;
    relay
        .published
        .wait_for(|p| *p > head - 3000)
        .await
        .expect("relay running");
    server.kill();
    eprintln!(
        "killed NATS with {} of {head} facts published",
        *relay.published.borrow()
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.restart().await;
    relay.wait_published(head).await;

    relay.stop().await;
    let js = connect(&server.url()).await;
    assert_stream_is_the_log(&js, &test, &store).await;
}
