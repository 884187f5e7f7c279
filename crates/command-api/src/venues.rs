//! `/v1/venues`: create a venue, rename it, change its capacity.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use marquee_auth::Principal;
use marquee_domain::venue::VenueCommand;
use marquee_domain::{OrganizationId, VenueId};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::CommandState;
use crate::access::{Caller, ORGANIZERS, authorize};
use crate::engine::{Answer, UserAggregate, VenueAggregate};
use crate::error::ApiError;
use crate::extract::{JsonBody, RequestMeta, parse_id};
use crate::idempotency::respond;
use crate::openapi::{BodyErrors, CallerErrors, Conflict, Forbidden, IdempotencyKey, NotFound};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The venue routes.
pub fn router() -> OpenApiRouter<CommandState> {
    OpenApiRouter::new()
        .routes(routes!(create_venue))
        .routes(routes!(update_venue))
}

fn default_timezone() -> String {
    "UTC".to_owned()
}

/// Body of `POST /v1/venues`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateVenue {
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    #[schema(min_length = 1, max_length = 200)]
    city: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    address: Option<String>,
    /// Seats; events here hold at most this many.
    #[schema(minimum = 1)]
    capacity: u32,
    /// IANA time zone; events at this venue default to it.
    #[serde(default = "default_timezone")]
    #[schema(min_length = 1, max_length = 200, default = "UTC")]
    timezone: String,
    /// The organization that owns it; may be left out by someone who organizes exactly one.
    #[serde(default)]
    organization_id: Option<Uuid>,
}

/// The organization a new venue belongs to: the one named (where the caller is an owner or
/// organizer), or the only one the caller organizes.
async fn owner_for_new_venue(
    state: &CommandState,
    caller: &Caller,
    requested: Option<Uuid>,
) -> Result<OrganizationId, ApiError> {
    caller.authenticated()?;
    if let Some(requested) = requested {
        let organization_id = OrganizationId(requested);
        let roles = state
            .auth
            .directory
            .roles(&caller.principal, organization_id)
            .await?;
        if roles.is_empty() {
            return Err(ApiError::NotFound("organization"));
        }
        if !roles.iter().any(|r| ORGANIZERS.contains(r)) {
            return Err(ApiError::Forbidden(
                "only owners and organizers create venues",
            ));
        }
        return Ok(organization_id);
    }
    let candidates: Vec<OrganizationId> = match &caller.principal {
        Principal::Token {
            organization_id,
            roles,
            ..
        } => roles
            .iter()
            .any(|r| ORGANIZERS.contains(r))
            .then_some(*organization_id)
            .into_iter()
            .collect(),
        Principal::User { user_id, .. } => state
            .engine
            .load::<UserAggregate>(&user_id.stream())
            .await?
            .state
            .organizations
            .iter()
            .filter(|(_, role)| ORGANIZERS.contains(role))
            .map(|(id, _)| *id)
            .collect(),
        Principal::Anonymous => Vec::new(),
    };
    match candidates.as_slice() {
        [only] => Ok(*only),
        [] => Err(ApiError::Forbidden(
            "you are not an owner or organizer of any organization",
        )),
        _ => Err(ApiError::Validation(
            "organization_id: you organize several organizations; name one".into(),
        )),
    }
}

/// Creates a venue of an organization the caller owns or organizes.
#[utoipa::path(
    post,
    path = "/v1/venues",
    tag = "venues",
    params(IdempotencyKey),
    request_body = CreateVenue,
    responses((status = 201, description = "The venue was created.", body = VenueCreated), BodyErrors, CallerErrors, Forbidden, NotFound, Conflict),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id))]
async fn create_venue(
    State(state): State<CommandState>,
    caller: Caller,
    meta: RequestMeta,
    body: JsonBody<CreateVenue>,
) -> Response {
    let b = body.value;
    respond(
        &state.clone(),
        &caller.clone(),
        &meta,
        &body.raw,
        |mut context| async move {
            let organization_id = owner_for_new_venue(&state, &caller, b.organization_id).await?;
            context.organization = Some(organization_id.to_string());
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
                .execute::<VenueAggregate>(
                    &venue_id.stream(),
                    vec![command],
                    &context,
                    move |_, _| Answer {
                        status: StatusCode::CREATED,
                        body: json!({ "venue_id": venue_id, "organization_id": organization_id }),
                    },
                )
                .await?;
            Ok(answer)
        },
    )
    .await
}

/// Body of `PATCH /v1/venues/{id}`: any of the fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateVenue {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
    #[serde(default)]
    #[schema(minimum = 1)]
    capacity: Option<u32>,
}

/// Renames a venue or changes its capacity. Owners and organizers of its organization.
#[utoipa::path(
    patch,
    path = "/v1/venues/{venue_id}",
    tag = "venues",
    params(("venue_id" = Uuid, Path, description = "The venue."), IdempotencyKey),
    request_body = UpdateVenue,
    responses((status = 200, description = "The venue was changed.", body = VenueUpdated), BodyErrors, CallerErrors, Forbidden, NotFound, Conflict),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id, venue_id = %venue_id))]
async fn update_venue(
    State(state): State<CommandState>,
    caller: Caller,
    Path(venue_id): Path<String>,
    meta: RequestMeta,
    body: JsonBody<UpdateVenue>,
) -> Response {
    let b = body.value;
    respond(
        &state.clone(),
        &caller.clone(),
        &meta,
        &body.raw,
        |mut context| async move {
            let venue_id = VenueId(parse_id(&venue_id, "venue")?);
            let organization_id =
                authorize(&state, &caller, &venue_id.stream(), "venue", ORGANIZERS).await?;
            context.organization = Some(organization_id.to_string());
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
                .execute::<VenueAggregate>(&venue_id.stream(), commands, &context, move |_, _| {
                    Answer {
                        status: StatusCode::OK,
                        body: json!({ "venue_id": venue_id }),
                    }
                })
                .await?;
            Ok(answer)
        },
    )
    .await
}

/// Answer of `POST /v1/venues`.
#[derive(ToSchema)]
pub struct VenueCreated {
    pub venue_id: Uuid,
    pub organization_id: Uuid,
    /// Log position of the command's last fact.
    pub position: u64,
}

/// Answer of `PATCH /v1/venues/{venue_id}`.
#[derive(ToSchema)]
pub struct VenueUpdated {
    pub venue_id: Uuid,
    /// Log position of the command's last fact.
    pub position: u64,
}
