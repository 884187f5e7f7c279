//! Measures how fast the relay publishes a backlog: appends N facts to an in-memory log, starts a
//! relay against `NATS_URL` (default `nats://127.0.0.1:4222`) on a stream of its own, and times
//! until JetStream has acknowledged the last one. Deletes its stream afterwards.
//!
//! `cargo run -p marquee-relay --example publish_rate -- [facts=20000] [batch=256]`

use std::time::{Duration, Instant};

use marquee_relay::{Relay, RelayConfig};
use marquee_store::{AppendRequest, ExpectedRevision, FactMetadata, NewFact};
use uuid::Uuid;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let facts: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(20_000);
    let batch: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(256);
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());

    let store = marquee_store::connect("memory:").await?;
    let streams: Vec<String> = (0..100)
        .map(|_| format!("event-{}", Uuid::now_v7()))
        .collect();
    // Ten facts per append, like a busy command side; the payload is a typical small fact.
    for chunk in 0..facts.div_ceil(10) {
        let n = (facts - chunk * 10).min(10);
        store
            .append(AppendRequest {
                stream: streams[chunk as usize % streams.len()].clone(),
                expected: ExpectedRevision::Any,
                facts: (0..n)
                    .map(|i| NewFact {
                        fact_id: Uuid::now_v7(),
                        fact_type: "SeatsReserved".to_owned(),
                        schema_version: 1,
                        data: serde_json::json!({
                            "registration_id": Uuid::now_v7(),
                            "ticket_type_id": Uuid::now_v7(),
                            "seats": i + 1,
                            "hold_expires_at": "2026-12-03T17:15:00Z",
                        }),
                        metadata: FactMetadata {
                            correlation_id: Some(Uuid::now_v7()),
                            causation_id: None,
                            actor: Some("user-42".to_owned()),
                            organization: None,
                        },
                    })
                    .collect(),
                idempotency: None,
            })
            .await?;
    }
    let head = store.head_position().await?;

    let id = Uuid::new_v4().simple().to_string();
    let config = RelayConfig {
        stream_name: format!("MARQUEE_BENCH_{id}"),
        subject_prefix: format!("marquee_bench_{id}.facts"),
        batch,
        ..RelayConfig::new(url.clone())
    };
    let stream_name = config.stream_name.clone();
    let relay = Relay::new(store, config);
    let mut published = relay.published();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let task = tokio::spawn(relay.run(async move {
        let _ = stopped.await;
    }));
    let reached =
        tokio::time::timeout(Duration::from_secs(600), published.wait_for(|p| *p >= head))
            .await
            .map(|r| r.is_ok());
    let elapsed = started.elapsed();
    let _ = stop.send(());
    let result = task.await?;

    let client = async_nats::connect(&url).await?;
    async_nats::jetstream::new(client)
        .delete_stream(&stream_name)
        .await?;
    result?;
    if reached != Ok(true) {
        return Err(format!("the relay did not publish {head} facts within 600 s").into());
    }
    println!(
        "published {head} facts in {:.2} s with batch {batch}: {:.0} facts/s (includes connecting and creating the stream)",
        elapsed.as_secs_f64(),
        head as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
