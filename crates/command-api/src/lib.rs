//! Marquee's command API: the HTTP side of writes.
//!
//! Every route parses and validates its body, turns it into a domain command, and runs it through
//! the [`engine`] (the stream's [`pipeline`] decider → `decide` → append with the expected
//! revision). Accepted
//! commands answer with the position of their last fact, in the body and in `Marquee-Position`;
//! refused ones answer RFC 9457 problem+json with a stable `code` ([`error`]).
//!
//! Personal data (attendees, answers, account profiles) reaches the log sealed with a key per
//! person and is opened when read back ([`personal`]); erasing an account deletes the key
//! ([`accounts`]).
//!
//! Each route is registered once, with its documentation: the OpenAPI 3.1 document
//! ([`openapi()`]) is built from the same registrations as the router ([`openapi`] module), and
//! served at `GET /openapi.json` with a page that renders it at `GET /docs`.
//!
//! What must not live here: business rules (they are in `marquee-domain`) and SQL (it is in
//! `marquee-store`).

pub mod access;
pub mod accounts;
pub mod check_ins;
pub mod engine;
pub mod error;
pub mod events;
pub mod extract;
pub mod idempotency;
pub mod openapi;
pub mod organizations;
pub mod payments;
pub mod personal;
pub mod pipeline;
pub mod venues;
pub mod waitlist;
pub mod webhooks;

pub use openapi::openapi;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use marquee_domain::Timestamp;
use marquee_payments::{PaymentGateway, TestGateway};
use marquee_store::EventStore;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::access::Auth;
use crate::engine::{Engine, EngineOptions};
use crate::error::ApiError;
use crate::idempotency::InFlight;

/// Response header carrying the position of an accepted command's last fact.
pub const POSITION_HEADER: &str = "marquee-position";

/// Shared state of the command routes.
#[derive(Clone)]
pub struct CommandState {
    /// Runs commands against the log.
    pub engine: Arc<Engine>,
    /// Idempotency keys being processed right now.
    pub in_flight: Arc<InFlight>,
    /// Takes card payments for held seats.
    pub payments: Arc<dyn PaymentGateway>,
    /// The built-in test gateway, when it is the one in use: it can also play the provider's
    /// asynchronous confirmation (`POST /v1/payments/test-gateway/settle`).
    pub test_gateway: Option<Arc<TestGateway>>,
    /// Shared secret of the payment provider's signed webhooks; without one the webhook route
    /// refuses every call (`503 webhook_not_configured`).
    pub webhook_secret: Option<Arc<[u8]>>,
    /// Accounts, tokens, roles, rate limits and personal data's keys.
    pub auth: Arc<Auth>,
    /// The organizations' webhook endpoints (the notifier's tables); without them the webhook
    /// routes answer `503 notifications_not_configured`.
    pub webhooks: Option<Arc<marquee_notifier::Webhooks>>,
}

impl CommandState {
    /// State over `store` with the system clock.
    pub fn new(store: Arc<dyn EventStore>, auth: Arc<Auth>) -> Self {
        Self::with_clock(store, auth, Arc::new(chrono::Utc::now))
    }

    /// State over `store` reading time from `clock` (tests use a fixed or stepping clock).
    pub fn with_clock(
        store: Arc<dyn EventStore>,
        auth: Arc<Auth>,
        clock: Arc<dyn Fn() -> Timestamp + Send + Sync>,
    ) -> Self {
        Self::from_engine(Engine::new(store, clock), auth)
    }

    /// State over `store` with the system clock and the given engine options.
    pub fn with_options(
        store: Arc<dyn EventStore>,
        auth: Arc<Auth>,
        options: EngineOptions,
    ) -> Self {
        Self::from_engine(
            Engine::with_options(store, Arc::new(chrono::Utc::now), options),
            auth,
        )
    }

    /// The engine seals personal data with the accounts' vault.
    fn from_engine(engine: Engine, auth: Arc<Auth>) -> Self {
        let test_gateway = Arc::new(TestGateway::new());
        Self {
            engine: Arc::new(engine.with_vault(auth.vault.clone())),
            auth,
            in_flight: Arc::new(InFlight::default()),
            payments: test_gateway.clone(),
            test_gateway: Some(test_gateway),
            webhook_secret: None,
            webhooks: None,
        }
    }

    /// The same state managing webhook endpoints in the notifier's tables.
    pub fn with_webhooks(mut self, webhooks: marquee_notifier::Webhooks) -> Self {
        self.webhooks = Some(Arc::new(webhooks));
        self
    }

    /// The same state taking payments through `gateway`, verifying webhooks with `secret`.
    pub fn with_payments(
        mut self,
        gateway: Arc<dyn PaymentGateway>,
        secret: Option<Vec<u8>>,
    ) -> Self {
        self.payments = gateway;
        self.test_gateway = None;
        self.webhook_secret = secret.filter(|s| !s.is_empty()).map(Arc::from);
        self
    }

    /// The same state taking payments through the built-in test gateway, verifying webhooks
    /// with `secret`.
    pub fn with_test_gateway(mut self, gateway: Arc<TestGateway>, secret: Option<Vec<u8>>) -> Self {
        self.payments = gateway.clone();
        self.test_gateway = Some(gateway);
        self.webhook_secret = secret.filter(|s| !s.is_empty()).map(Arc::from);
        self
    }
}

/// All command routes, with problem+json answers for unknown routes and methods.
pub fn router(state: CommandState) -> Router {
    let (router, _) = openapi::routes().split_for_parts();
    router
        .fallback(|| async { ApiError::NoRoute })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(extract::MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The command API bound to a socket, ready to serve.
pub struct Application {
    listener: TcpListener,
    router: Router,
}

impl Application {
    /// Binds `addr` (port 0 picks a free port).
    pub async fn build(addr: SocketAddr, state: CommandState) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Self {
            listener,
            router: router(state),
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // The client's address feeds the per-address rate limits.
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
    }
}
