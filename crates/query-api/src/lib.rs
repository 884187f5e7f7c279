//! Marquee's query API: the read side over HTTP.
//!
//! What lives here: the axum routes that serve the read models (`/v1/events…`, among them the
//! guest list `/v1/events/{id}/attendees` and the analytics `/v1/events/{id}/analytics`, and
//! an account's own registrations, `/v1/me/tickets`), the audit routes straight from the log
//! (`/v1/streams/{stream}`, `/v1/log`, `/v1/log/live`, `/v1/events/{id}?as_of=`, see [`audit`]),
//! the health and projection-progress endpoints, read-your-writes (`Marquee-Min-Position`), and
//! the one [`ApiError`] that turns every failure into RFC 9457 problem+json, and the OpenAPI
//! document of all of it ([`openapi()`], served at `/openapi.json` and rendered at `/docs`).
//!
//! What must not live here: SQL and the read-model schema (they belong to `marquee-projector`,
//! which this crate reads through [`marquee_projector::ReadModels`]), writes of any kind, and
//! business rules. Handlers parse, ask, and shape JSON.

pub mod access;
mod analytics;
mod attendees;
pub mod audit;
mod conditional;
mod csv;
mod error;
mod events;
mod health;
mod me;
mod openapi;
mod position;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use marquee_projector::ReadModels;
use marquee_store::EventStore;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

pub use error::ApiError;
pub use position::{MIN_POSITION_HEADER, POSITION_HEADER};

/// Longest a query waits for `Marquee-Min-Position` unless configured otherwise.
pub const DEFAULT_MIN_POSITION_TIMEOUT: Duration = Duration::from_secs(2);

/// What every handler can reach.
#[derive(Clone)]
pub struct QueryState {
    /// The read models the routes serve.
    pub read: ReadModels,
    /// The log: its head position, and the audit routes (`/v1/log`, `/v1/streams`, `as_of`).
    pub store: Arc<dyn EventStore>,
    /// Longest a request waits for `Marquee-Min-Position` before answering 503.
    pub min_position_timeout: Duration,
    /// Listing pages already serialized, each with the applied position it was read at.
    listings: Arc<events::ListingPages>,
    /// Credentials and roles for the private routes; without it they answer `401`.
    pub access: Option<Arc<access::Access>>,
}

impl QueryState {
    /// State with the default `Marquee-Min-Position` timeout (2 s).
    pub fn new(read: ReadModels, store: Arc<dyn EventStore>) -> Self {
        Self {
            read,
            store,
            min_position_timeout: DEFAULT_MIN_POSITION_TIMEOUT,
            listings: Arc::default(),
            access: None,
        }
    }

    /// The same state checking credentials and roles with `access` (see [`access`]).
    pub fn with_access(self, access: Arc<access::Access>) -> Self {
        Self {
            access: Some(access),
            ..self
        }
    }

    /// The same state with another `Marquee-Min-Position` timeout.
    pub fn with_min_position_timeout(self, min_position_timeout: Duration) -> Self {
        Self {
            min_position_timeout,
            ..self
        }
    }
}

/// Every route, each registered with its documentation (the only place routes are added).
fn routes() -> OpenApiRouter<QueryState> {
    OpenApiRouter::with_openapi(openapi::base())
        .merge(events::router())
        .merge(attendees::router())
        .merge(analytics::router())
        .merge(me::router())
        .merge(audit::router())
        .merge(health::router())
        .merge(openapi::router())
}

/// The OpenAPI 3.1 document of every route [`router`] serves (what `GET /openapi.json` sends).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut document = routes().into_openapi();
    openapi::finish(&mut document);
    document
}

/// All query routes, with read-your-writes, the `Marquee-Position` header, request tracing, and
/// problem+json answers for unknown routes and methods.
pub fn router(state: QueryState) -> Router {
    let (routes, _) = routes().split_for_parts();
    routes
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            position::read_your_writes,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn no_route() -> ApiError {
    ApiError::NoRoute
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// The query API bound to a port, ready to serve.
pub struct Application {
    listener: TcpListener,
    port: u16,
    router: Router,
}

impl Application {
    /// Binds `addr` (port 0 allowed) and reports the bound port.
    pub async fn build(addr: SocketAddr, state: QueryState) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            listener,
            port,
            router: router(state),
        })
    }

    /// The port the API listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}
