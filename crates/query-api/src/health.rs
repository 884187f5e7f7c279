//! `/health` and `/v1/projections`: is the service up, and how far behind the log are the read
//! models.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use tracing::instrument;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{ApiError, QueryState};

pub(crate) fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(projections))
}

#[derive(Debug, Serialize, ToSchema)]
struct Health {
    /// Always `ok` (a failure answers 500 instead).
    #[schema(value_type = String, example = "ok")]
    status: &'static str,
    /// The read models' checkpoint.
    applied_position: u64,
    /// The log's last position.
    head_position: u64,
}

/// Is the service up.
///
/// 200 while both the read models and the log answer.
#[utoipa::path(
    get,
    path = "/health",
    tag = "service",
    responses((status = 200, description = "The read models and the log answer.", body = Health)),
)]
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

/// One projection's progress.
#[derive(Debug, Serialize, ToSchema)]
struct Projection {
    /// The projection's name.
    name: String,
    /// The last log position it applied.
    applied_position: u64,
    /// The log's last position.
    head_position: u64,
    /// Facts in the log the projection has not applied yet.
    lag: u64,
}

#[derive(Debug, Serialize, ToSchema)]
struct Projections {
    /// Every projection the read models keep.
    projections: Vec<Projection>,
}

/// How far behind the log the read models are.
///
/// Each projection's checkpoint against the log's head.
#[utoipa::path(
    get,
    path = "/v1/projections",
    tag = "service",
    responses((status = 200, description = "Every projection's progress.", body = Projections)),
)]
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
