//! `/health` and `/v1/projections`: is the service up, and how far behind the log are the read
//! models.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tracing::instrument;

use crate::{ApiError, QueryState};

pub(crate) fn router() -> Router<QueryState> {
    Router::new()
        .route("/health", get(health))
        .route("/v1/projections", get(projections))
}

#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    /// The read models' checkpoint.
    applied_position: u64,
    /// The log's last position.
    head_position: u64,
}

/// `GET /health`: 200 while both the read models and the log answer.
#[instrument(skip(state))]
async fn health(State(state): State<QueryState>) -> Result<Json<Health>, ApiError> {
    let applied_position = state.read.applied_position().await?;
    let head_position = state.store.head_position().await?;
    Ok(Json(Health {
        status: "ok",
        applied_position,
        head_position,
    }))
}

#[derive(Debug, Serialize)]
struct Projection {
    name: String,
    applied_position: u64,
    head_position: u64,
    /// Facts in the log the projection has not applied yet.
    lag: u64,
}

#[derive(Debug, Serialize)]
struct Projections {
    projections: Vec<Projection>,
}

/// `GET /v1/projections`: each projection's checkpoint against the log's head.
#[instrument(skip(state))]
async fn projections(State(state): State<QueryState>) -> Result<Json<Projections>, ApiError> {
    let checkpoints = state.read.projections().await?;
    let head_position = state.store.head_position().await?;
    Ok(Json(Projections {
        projections: checkpoints
            .into_iter()
            .map(|c| Projection {
                name: c.name,
                applied_position: c.applied_position,
                head_position,
                lag: head_position.saturating_sub(c.applied_position),
            })
            .collect(),
    }))
}
