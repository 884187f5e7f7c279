//! `/v1/venues`: create a venue, rename it, change its capacity.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{patch, post};
use marquee_domain::VenueId;
use marquee_domain::venue::VenueCommand;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::CommandState;
use crate::engine::{Answer, VenueAggregate};
use crate::error::ApiError;
use crate::extract::{JsonBody, RequestMeta, parse_id};
use crate::idempotency::respond;

/// The venue routes.
pub fn router() -> Router<CommandState> {
    Router::new()
        .route("/v1/venues", post(create_venue))
        .route("/v1/venues/{venue_id}", patch(update_venue))
}

fn default_timezone() -> String {
    "UTC".to_owned()
}

/// Body of `POST /v1/venues`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateVenue {
    name: String,
    city: String,
    #[serde(default)]
    address: Option<String>,
    capacity: u32,
    /// IANA time zone; events at this venue default to it.
    #[serde(default = "default_timezone")]
    timezone: String,
}

#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id))]
async fn create_venue(
    State(state): State<CommandState>,
    meta: RequestMeta,
    body: JsonBody<CreateVenue>,
) -> Response {
    let b = body.value;
    respond(&state.clone(), &meta, &body.raw, |context| async move {
        let venue_id = VenueId(Uuid::now_v7());
        let command = VenueCommand::CreateVenue {
            venue_id,
            name: b.name,
            city: b.city,
            address: b.address,
            capacity: b.capacity,
            timezone: b.timezone,
        };
        let (_, answer) = state
            .engine
            .execute::<VenueAggregate>(&venue_id.stream(), vec![command], &context, move |_, _| {
                Answer {
                    status: StatusCode::CREATED,
                    body: json!({ "venue_id": venue_id }),
                }
            })
            .await?;
        Ok(answer)
    })
    .await
}

/// Body of `PATCH /v1/venues/{id}`: any of the fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateVenue {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    capacity: Option<u32>,
}

#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id, venue_id = %venue_id))]
async fn update_venue(
    State(state): State<CommandState>,
    Path(venue_id): Path<String>,
    meta: RequestMeta,
    body: JsonBody<UpdateVenue>,
) -> Response {
    let b = body.value;
    respond(&state.clone(), &meta, &body.raw, |context| async move {
        let venue_id = VenueId(parse_id(&venue_id, "venue")?);
        let mut commands = Vec::new();
        if let Some(name) = b.name {
            commands.push(VenueCommand::RenameVenue { name });
        }
        if let Some(capacity) = b.capacity {
            commands.push(VenueCommand::ChangeVenueCapacity { capacity });
        }
        if commands.is_empty() {
            return Err(ApiError::Validation(
                "nothing to change: give `name` and/or `capacity`".to_owned(),
            ));
        }
        let (_, answer) = state
            .engine
            .execute::<VenueAggregate>(&venue_id.stream(), commands, &context, move |_, _| Answer {
                status: StatusCode::OK,
                body: json!({ "venue_id": venue_id }),
            })
            .await?;
        Ok(answer)
    })
    .await
}
