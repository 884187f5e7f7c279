//! A repeat of a command whose first request is still being processed answers 409
//! `idempotency_key_in_flight`, and once the first finishes, the repeat replays its answer.
//!
//! The requests are signed in: the first owner's account and organization are opened as on a
//! fresh installation, and the owner signs in through the route.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use marquee_auth::Password;
use marquee_command_api::access::{Auth, RateLimits};
use marquee_command_api::accounts::bootstrap_owner;
use marquee_command_api::{CommandState, router};
use marquee_store::{
    AppendRequest, Appended, EventStore, FactStream, IdempotencyWrite, IdempotentResponse,
    RecordedFact, Snapshot, StoreError,
};
use tokio::sync::{Notify, Semaphore};
use tower::ServiceExt;

/// A log whose appends wait until the test lets them through.
struct GatedStore {
    inner: Arc<dyn EventStore>,
    gate: Arc<Semaphore>,
    /// Signalled when an append arrives (and starts waiting at the gate).
    entered: Arc<Notify>,
}

#[async_trait::async_trait]
impl EventStore for GatedStore {
    async fn append(&self, request: AppendRequest) -> Result<Appended, StoreError> {
        self.entered.notify_one();
        let _permit = self.gate.acquire().await.map_err(|_| StoreError::Closed)?;
        self.inner.append(request).await
    }
    async fn read_stream(
        &self,
        stream: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedFact>, StoreError> {
        self.inner.read_stream(stream, from, limit).await
    }
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedFact>, StoreError> {
        self.inner.read_all(after, limit).await
    }
    async fn head_position(&self) -> Result<u64, StoreError> {
        self.inner.head_position().await
    }
    fn subscribe(&self, after: u64) -> FactStream {
        self.inner.subscribe(after)
    }
    async fn idempotency_get(&self, key: &str) -> Result<Option<IdempotentResponse>, StoreError> {
        self.inner.idempotency_get(key).await
    }
    async fn idempotency_put(&self, write: IdempotencyWrite) -> Result<(), StoreError> {
        self.inner.idempotency_put(write).await
    }
    async fn load_snapshot(&self, stream: &str) -> Result<Option<Snapshot>, StoreError> {
        self.inner.load_snapshot(stream).await
    }
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        self.inner.save_snapshot(snapshot).await
    }
}

const OWNER_EMAIL: &str = "owner@example.com";
const OWNER_PASSWORD: &str = "a long owner passphrase";

fn create_venue(token: &str, key: &str) -> Request<Body> {
    Request::post("/v1/venues")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .header("idempotency-key", key)
        .body(Body::from(r#"{"name":"Hall","city":"Graz","capacity":10}"#))
        .expect("request")
}

/// Opens the first owner (through `log`, which is not gated) and signs in through `app`; the
/// access token.
async fn signed_in_owner(log: Arc<dyn EventStore>, auth: Arc<Auth>, app: &axum::Router) -> String {
    let bootstrap = CommandState::new(log, auth);
    bootstrap_owner(
        &bootstrap,
        OWNER_EMAIL,
        &Password::new(OWNER_PASSWORD),
        "My organization",
    )
    .await
    .expect("bootstrap")
    .expect("a fresh installation");
    let login = Request::post("/v1/auth/login")
        .header("content-type", "application/json")
        .body(Body::from(
            serde_json::json!({ "email": OWNER_EMAIL, "password": OWNER_PASSWORD }).to_string(),
        ))
        .expect("request");
    let answer = app.clone().oneshot(login).await.expect("answer");
    assert_eq!(answer.status(), StatusCode::OK);
    let body = axum::body::to_bytes(answer.into_body(), 1 << 16)
        .await
        .expect("body");
    let session: serde_json::Value = serde_json::from_slice(&body).expect("json");
    session["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

#[tokio::test]
async fn a_repeat_while_the_first_is_in_flight_is_a_conflict_then_a_replay() {
    let gate = Arc::new(Semaphore::new(0));
    let entered = Arc::new(Notify::new());
    let log = marquee_store::connect("memory:").await.expect("store");
    let limits = RateLimits {
        sign_in_per_minute: 0,
        commands_per_second: 0,
        commands_per_second_per_address: 0,
    };
    let auth = Arc::new(
        Auth::connect("memory:", log.clone(), limits)
            .await
            .expect("auth tables"),
    );
    let store = GatedStore {
        inner: log.clone(),
        gate: gate.clone(),
        entered: entered.clone(),
    };
    let app = router(CommandState::new(Arc::new(store), auth.clone()));
    let token = signed_in_owner(log, auth, &app).await;

    // The first request reaches the append and waits there.
    let first = tokio::spawn(app.clone().oneshot(create_venue(&token, "key-1")));
    entered.notified().await;

    let repeat = app
        .clone()
        .oneshot(create_venue(&token, "key-1"))
        .await
        .expect("answer");
    assert_eq!(repeat.status(), StatusCode::CONFLICT);
    let body = axum::body::to_bytes(repeat.into_body(), 1 << 16)
        .await
        .expect("body");
    let problem: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(problem["code"], "idempotency_key_in_flight");

    gate.add_permits(10);
    let first = first.await.expect("join").expect("answer");
    assert_eq!(first.status(), StatusCode::CREATED);
    let first_body = axum::body::to_bytes(first.into_body(), 1 << 16)
        .await
        .expect("body");

    let replay = app
        .oneshot(create_venue(&token, "key-1"))
        .await
        .expect("answer");
    assert_eq!(replay.status(), StatusCode::CREATED);
    assert_eq!(
        replay
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    let replay_body = axum::body::to_bytes(replay.into_body(), 1 << 16)
        .await
        .expect("body");
    assert_eq!(replay_body, first_body);
}
