//! The command API's one error type and how it becomes an RFC 9457 problem+json answer.
//!
//! Domain refusals (a rule said no) become 4xx with a stable `code`; infrastructure failures
//! become 5xx, are logged with their cause, and are never shown to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use marquee_domain::event::EventError;
use marquee_domain::organization::OrganizationError;
use marquee_domain::user::UserError;
use marquee_domain::venue::VenueError;
use marquee_payments::GatewayError;
use marquee_store::StoreError;
use serde_json::{Value, json};

/// Everything a command route can answer with besides success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A rule of the event aggregate refused the command.
    #[error(transparent)]
    Event(#[from] EventError),
    /// A rule of the venue aggregate refused the command.
    #[error(transparent)]
    Venue(#[from] VenueError),
    /// A rule of the user aggregate refused the command.
    #[error(transparent)]
    User(#[from] UserError),
    /// A rule of the organization aggregate refused the command.
    #[error(transparent)]
    Organization(#[from] OrganizationError),
    /// No credentials, or credentials that are not valid (expired, tampered, revoked).
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Valid credentials without the role this needs.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Too many requests from this client or token; retry after the given seconds.
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// Signing up with an address that has an account already.
    #[error("an account with this e-mail address exists")]
    EmailTaken,
    /// The command would record personal data of a person who was erased: nothing can be
    /// sealed for them any more (erasure is forever for an e-mail address; see
    /// `crate::personal`). 409 `person_erased`.
    #[error("the personal data of this person was erased and cannot be recorded again")]
    PersonErased,
    /// Wrong e-mail address or password (never says which).
    #[error("wrong e-mail address or password")]
    BadCredentials,
    /// The body is not JSON at all.
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// The body is JSON but not the expected shape (unknown field, wrong type, missing field).
    #[error("{0}")]
    Validation(String),
    /// Content-Type is not `application/json`.
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    /// The body is larger than the limit.
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// A path id that does not exist or is not a UUID.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// No such route.
    #[error("no such route")]
    NoRoute,
    /// The route exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The same `Idempotency-Key` was used with a different request.
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    /// The first request with this `Idempotency-Key` is still being processed.
    #[error("a request with this Idempotency-Key is still in progress")]
    IdempotencyInFlight,
    /// The `Idempotency-Key` header is unusable.
    #[error("Idempotency-Key must be 1 to 255 visible ASCII characters")]
    BadIdempotencyKey,
    /// Concurrent writers kept winning the race for this stream; the client may retry.
    #[error("the resource was changed concurrently; retry the request")]
    Contention,
    /// The log failed.
    #[error("store failure: {0}")]
    Store(#[from] StoreError),
    /// A failure inside the command side that several commands share (its cause is logged
    /// where it happened).
    #[error("internal failure: {0}")]
    Internal(String),
    /// A stored fact could not be decoded.
    #[error("corrupt fact: {0}")]
    Decode(#[from] marquee_domain::DecodeError),
    /// The payment provider refused the request or could not be reached; nothing was recorded.
    #[error("payment provider: {0}")]
    Gateway(#[from] marquee_payments::GatewayError),
    /// Outgoing webhooks need the notifier's tables, and this process has none.
    #[error("outgoing webhooks are not configured in this process")]
    NotificationsNotConfigured,
    /// The payment webhook has no secret to verify signatures with.
    #[error("the payment webhook is not configured (MARQUEE_PAYMENT_WEBHOOK_SECRET)")]
    WebhookNotConfigured,
    /// A payment webhook whose signature does not verify.
    #[error("{0}")]
    BadSignature(#[from] marquee_payments::SignatureError),
}

/// The fields of an answer: status, stable code, title, and extra members.
struct Problem {
    status: StatusCode,
    code: &'static str,
    title: &'static str,
    extra: Value,
}

impl Problem {
    fn new(status: StatusCode, code: &'static str, title: &'static str) -> Self {
        Self {
            status,
            code,
            title,
            extra: Value::Null,
        }
    }

    fn with(mut self, extra: Value) -> Self {
        self.extra = extra;
        self
    }
}

impl ApiError {
    fn problem(&self) -> Problem {
        use StatusCode as S;
        match self {
            ApiError::Event(e) => event_problem(e),
            ApiError::Venue(e) => match e {
                VenueError::Invalid { field, .. } => Problem::new(
                    S::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                    "Invalid request",
                )
                .with(json!({ "field": field })),
                VenueError::AlreadyExists => Problem::new(S::CONFLICT, "conflict", "Conflict"),
                VenueError::NotFound => Problem::new(S::NOT_FOUND, "not_found", "Not found"),
                VenueError::ScheduleConflict {
                    event_id,
                    starts_at,
                    ends_at,
                } => Problem::new(
                    S::CONFLICT,
                    "schedule_conflict",
                    "The venue is booked at that time",
                )
                .with(json!({
                    "conflicting_event_id": event_id,
                    "conflicting_starts_at": starts_at,
                    "conflicting_ends_at": ends_at,
                })),
            },
            ApiError::User(e) => match e {
                UserError::Invalid { field, .. } => Problem::new(
                    S::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                    "Invalid request",
                )
                .with(json!({ "field": field })),
                UserError::AlreadyExists => Problem::new(S::CONFLICT, "conflict", "Conflict"),
                UserError::NotFound | UserError::Erased => {
                    Problem::new(S::NOT_FOUND, "not_found", "Not found")
                }
            },
            ApiError::Organization(e) => match e {
                OrganizationError::Invalid { field, .. } => Problem::new(
                    S::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                    "Invalid request",
                )
                .with(json!({ "field": field })),
                OrganizationError::AlreadyExists | OrganizationError::AlreadyMember => {
                    Problem::new(S::CONFLICT, "conflict", "Conflict")
                }
                OrganizationError::NotFound
                | OrganizationError::NotAMember
                | OrganizationError::TokenNotFound
                | OrganizationError::WebhookNotFound => {
                    Problem::new(S::NOT_FOUND, "not_found", "Not found")
                }
                OrganizationError::LastOwner => {
                    Problem::new(S::CONFLICT, "last_owner", "The last owner stays")
                }
            },
            ApiError::Unauthorized(_) => {
                Problem::new(S::UNAUTHORIZED, "unauthorized", "Unauthorized")
            }
            ApiError::Forbidden(_) => Problem::new(S::FORBIDDEN, "forbidden", "Forbidden"),
            ApiError::RateLimited { retry_after_secs } => {
                Problem::new(S::TOO_MANY_REQUESTS, "rate_limited", "Too many requests")
                    .with(json!({ "retry_after": retry_after_secs }))
            }
            ApiError::PersonErased => Problem::new(S::CONFLICT, "person_erased", "Person erased"),
            ApiError::EmailTaken => {
                Problem::new(S::CONFLICT, "email_taken", "E-mail address taken")
            }
            ApiError::BadCredentials => {
                Problem::new(S::UNAUTHORIZED, "invalid_credentials", "Wrong credentials")
            }
            ApiError::MalformedJson(_) => {
                Problem::new(S::BAD_REQUEST, "malformed_json", "Malformed JSON")
            }
            ApiError::Validation(_) => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "Invalid request",
            ),
            ApiError::UnsupportedMediaType => Problem::new(
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
            ),
            ApiError::PayloadTooLarge { .. } => Problem::new(
                S::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
            ),
            ApiError::NotFound(_) | ApiError::NoRoute => {
                Problem::new(S::NOT_FOUND, "not_found", "Not found")
            }
            ApiError::MethodNotAllowed => Problem::new(
                S::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
            ),
            ApiError::IdempotencyKeyReused => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "Idempotency key reused",
            ),
            ApiError::IdempotencyInFlight => Problem::new(
                S::CONFLICT,
                "idempotency_key_in_flight",
                "Request in progress",
            ),
            ApiError::BadIdempotencyKey => {
                Problem::new(S::BAD_REQUEST, "validation_failed", "Invalid request")
                    .with(json!({ "field": "Idempotency-Key" }))
            }
            ApiError::Contention => Problem::new(S::CONFLICT, "conflict", "Conflict"),
            ApiError::Store(StoreError::Closed) => {
                Problem::new(S::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable")
            }
            ApiError::Store(_) | ApiError::Decode(_) | ApiError::Internal(_) => {
                Problem::new(S::INTERNAL_SERVER_ERROR, "internal", "Internal error")
            }
            ApiError::Gateway(GatewayError::InvalidCard(_)) => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "Invalid request",
            )
            .with(json!({ "field": "card_number" })),
            ApiError::Gateway(GatewayError::Unavailable(_)) => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "payment_provider_unavailable",
                "Payment provider unavailable",
            ),
            ApiError::Gateway(_) => Problem::new(
                S::BAD_GATEWAY,
                "payment_provider_error",
                "Payment provider error",
            ),
            ApiError::NotificationsNotConfigured => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "notifications_not_configured",
                "Webhooks not configured",
            ),
            ApiError::WebhookNotConfigured => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "webhook_not_configured",
                "Webhook not configured",
            ),
            ApiError::BadSignature(_) => {
                Problem::new(S::UNAUTHORIZED, "invalid_signature", "Invalid signature")
            }
        }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.problem().status
    }
}

fn event_problem(error: &EventError) -> Problem {
    use StatusCode as S;
    match error {
        EventError::Invalid { field, .. } => Problem::new(
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "Invalid request",
        )
        .with(json!({ "field": field })),
        EventError::VenueNotFound => Problem::new(
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "Invalid request",
        )
        .with(json!({ "field": "venue_id" })),
        EventError::AlreadyExists
        | EventError::DuplicateTicketType
        | EventError::RegistrationExists => Problem::new(S::CONFLICT, "conflict", "Conflict"),
        EventError::NotFound
        | EventError::TicketTypeNotFound
        | EventError::RegistrationNotFound => Problem::new(S::NOT_FOUND, "not_found", "Not found"),
        EventError::CapacityExceedsVenue {
            capacity,
            venue_capacity,
        } => Problem::new(
            S::UNPROCESSABLE_ENTITY,
            "capacity_exceeds_venue",
            "Capacity exceeds the venue",
        )
        .with(json!({ "capacity": capacity, "venue_capacity": venue_capacity })),
        EventError::CapacityBelowSold { capacity, sold } => Problem::new(
            S::CONFLICT,
            "capacity_below_sold",
            "Capacity below seats sold",
        )
        .with(json!({ "capacity": capacity, "sold": sold })),
        EventError::InvalidState { status, .. } => {
            Problem::new(S::CONFLICT, "invalid_state", "Not allowed in this state")
                .with(json!({ "event_status": status }))
        }
        EventError::NotOnSale => Problem::new(S::CONFLICT, "event_not_on_sale", "Not on sale"),
        EventError::Cancelled => Problem::new(S::CONFLICT, "event_cancelled", "Event cancelled"),
        EventError::Ended => Problem::new(S::CONFLICT, "event_ended", "Event ended"),
        EventError::SalesNotOpen { opens_at } => {
            Problem::new(S::CONFLICT, "sales_not_open", "Sales not open")
                .with(json!({ "opens_at": opens_at }))
        }
        EventError::SalesClosed { closed_at } => {
            Problem::new(S::CONFLICT, "sales_closed", "Sales closed")
                .with(json!({ "closed_at": closed_at }))
        }
        EventError::OrderLimitExceeded { max } => Problem::new(
            S::UNPROCESSABLE_ENTITY,
            "order_limit_exceeded",
            "Order limit exceeded",
        )
        .with(json!({ "max_per_order": max })),
        EventError::SoldOut { available } => Problem::new(S::CONFLICT, "sold_out", "Sold out")
            .with(json!({ "available": available })),
        EventError::RegistrationAlreadyCancelled => {
            Problem::new(S::CONFLICT, "already_cancelled", "Already cancelled")
        }
        EventError::InvalidAnswer { question, .. } => Problem::new(
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "Invalid request",
        )
        .with(json!({ "field": format!("answers.{question}") })),
        EventError::AttendeeLimitExceeded { max, already } => Problem::new(
            S::CONFLICT,
            "attendee_limit_exceeded",
            "Attendee limit exceeded",
        )
        .with(json!({ "max_per_attendee": max, "already": already })),
        EventError::CancellationClosed { deadline } => {
            Problem::new(S::CONFLICT, "cancellation_closed", "Cancellation closed")
                .with(json!({ "deadline": deadline }))
        }
        EventError::HoldExpired { expired_at } => {
            Problem::new(S::CONFLICT, "hold_expired", "Hold expired")
                .with(json!({ "expired_at": expired_at }))
        }
        EventError::NotPayable { status } => {
            Problem::new(S::CONFLICT, "not_payable", "Nothing to pay")
                .with(json!({ "registration_status": status }))
        }
        EventError::WaitlistEntryNotFound => Problem::new(S::NOT_FOUND, "not_found", "Not found"),
        EventError::WaitlistEntryExists | EventError::PaymentOfOtherRegistration(_) => {
            Problem::new(S::CONFLICT, "conflict", "Conflict")
        }
        EventError::AlreadyOnWaitlist { entry_id } => Problem::new(
            S::CONFLICT,
            "already_on_waitlist",
            "Already on the waitlist",
        )
        .with(json!({ "entry_id": entry_id })),
        EventError::SeatsAvailable { available } => {
            Problem::new(S::CONFLICT, "seats_available", "Seats are available")
                .with(json!({ "available": available }))
        }
        EventError::OfferNotMade => Problem::new(S::CONFLICT, "offer_not_made", "No offer yet"),
        EventError::OfferExpired => Problem::new(S::CONFLICT, "offer_expired", "Offer expired"),
        EventError::OfferClaimed { registration_id } => {
            Problem::new(S::CONFLICT, "offer_claimed", "Offer already claimed")
                .with(json!({ "registration_id": registration_id }))
        }
        EventError::NotOnWaitlist { status } => {
            Problem::new(S::CONFLICT, "not_on_waitlist", "Not on the waitlist")
                .with(json!({ "entry_status": status }))
        }
        EventError::TicketInvalid => Problem::new(S::NOT_FOUND, "invalid", "Unknown ticket"),
        EventError::TicketCancelled => Problem::new(S::CONFLICT, "canceled", "Ticket cancelled"),
        EventError::TicketUnpaid => Problem::new(S::CONFLICT, "unpaid", "Ticket not paid"),
        EventError::AlreadyRedeemed { first_scanned_at } => {
            Problem::new(S::CONFLICT, "already_redeemed", "Already checked in")
                .with(json!({ "first_scanned_at": first_scanned_at }))
        }
        EventError::NonceReused => Problem::new(
            S::UNPROCESSABLE_ENTITY,
            "nonce_reused",
            "Nonce used for another ticket",
        ),
        EventError::NotCheckedIn => {
            Problem::new(S::CONFLICT, "not_checked_in", "Ticket not checked in")
        }
        EventError::NoRefundDue(_) => Problem::new(S::NOT_FOUND, "not_found", "Not found"),
    }
}

impl ApiError {
    /// The status and problem+json body this error answers with.
    pub fn problem_body(&self) -> (StatusCode, Value) {
        let problem = self.problem();
        let detail = if problem.status.is_server_error() {
            // The cause goes to the log, never to the client.
            tracing::error!(error = %self, "command failed");
            "The server could not complete the request.".to_owned()
        } else {
            self.to_string()
        };
        let mut body = json!({
            "type": format!("https://marquee.dev/problems/{}", problem.code),
            "title": problem.title,
            "status": problem.status.as_u16(),
            "detail": detail,
            "code": problem.code,
        });
        if let (Value::Object(body), Value::Object(extra)) = (&mut body, problem.extra) {
            body.extend(extra);
        }
        (problem.status, body)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = self.problem_body();
        let mut response = (status, axum::Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match &self {
            ApiError::RateLimited { retry_after_secs } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            ApiError::Unauthorized(_) | ApiError::BadCredentials => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"marquee\""),
                );
            }
            _ => {}
        }
        response
    }
}

/// The answer of a command that was accepted (its facts are in the log) but whose request did not
/// get what it asked for, e.g. a declined payment: a problem+json body under a 4xx status.
pub(crate) fn problem_answer(
    status: StatusCode,
    code: &'static str,
    title: &'static str,
    detail: String,
    extra: Value,
) -> crate::engine::Answer {
    let mut body = json!({
        "type": format!("https://marquee.dev/problems/{code}"),
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
        "code": code,
    });
    if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
        body.extend(extra);
    }
    crate::engine::Answer { status, body }
}
