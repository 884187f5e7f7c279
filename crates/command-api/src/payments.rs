//! Paying for held seats: `POST /v1/events/{id}/reservations/{rid}/pay` charges a card through
//! the configured [`PaymentGateway`](marquee_payments::PaymentGateway), and
//! `POST /v1/payments/webhook` takes the provider's signed word on payments it settles later.
//!
//! The domain decides what a payment means (`marquee_domain::event::ticketing`, including the
//! late-payment policy); this module only moves money questions to the provider and answers to
//! the log. Before charging, the hold is checked payable (held and not expired), so no card is
//! charged for seats that are gone; a hold that expires between that check and the payment's
//! record is handled by the late-payment policy (confirm if the seats are still free, refund
//! otherwise), never by overbooking.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use marquee_domain::event::{self, Event, EventCommand, EventFact, RefundReason};
use marquee_domain::{EventId, Money, PaymentId, RegistrationId};
use marquee_payments::webhook::{self, SIGNATURE_HEADER};
use marquee_payments::{ChargeOutcome, ChargeRequest, NotificationStatus, PaymentNotification};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::CommandState;
use crate::access::{Caller, Visitor};
use crate::engine::{Answer, EventAggregate};
use crate::error::{ApiError, problem_answer};
use crate::events::registration_body;
use crate::extract::{JsonBody, RequestMeta, parse_id};
use crate::idempotency::{answer_response, respond};
use crate::openapi::schemas::{
    Money as MoneySchema, RegistrationStatus as RegistrationStatusSchema,
};
use crate::openapi::{
    BadGateway, BadRequest, BodyErrors, CallerErrors, Conflict, Forbidden, IdempotencyKey,
    NotFound, PayloadTooLarge, PaymentRequired, Problem, Unavailable, Unprocessable,
};
use chrono::{DateTime, Utc};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The payment routes.
pub fn router() -> OpenApiRouter<CommandState> {
    OpenApiRouter::new()
        .routes(routes!(pay))
        .routes(routes!(payment_webhook))
        .routes(routes!(settle_test_payment))
}

/// Body of `POST /v1/payments/test-gateway/settle`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SettleBody {
    /// A pending payment of the test gateway (from a `202` of `…/pay`).
    payment_id: String,
    event_id: Uuid,
    registration_id: Uuid,
    /// Whether the provider takes the money (`true`) or fails the payment.
    succeeded: bool,
}

/// Plays the payment provider of the built-in test gateway: settles a pending payment and
/// delivers the signed webhook the provider would send, through the same verification as any
/// webhook. 404 unless the test gateway is the one in use.
#[utoipa::path(
    post,
    path = "/v1/payments/test-gateway/settle",
    tag = "payments",
    request_body = SettleBody,
    responses(
        (status = 200, description = "The payment was settled and its notification recorded.", body = PaymentRecorded),
        BodyErrors, NotFound, Conflict, BadGateway, Unavailable
    )
)]
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id))]
async fn settle_test_payment(
    State(state): State<CommandState>,
    meta: RequestMeta,
    body: JsonBody<SettleBody>,
) -> Response {
    let outcome = async {
        let gateway = state
            .test_gateway
            .as_ref()
            .ok_or(ApiError::NotFound("test gateway"))?;
        let secret = state
            .webhook_secret
            .as_ref()
            .ok_or(ApiError::WebhookNotConfigured)?;
        let b = &body.value;
        let (signature, notification) = gateway
            .notification(
                &b.payment_id,
                b.event_id,
                b.registration_id,
                b.succeeded,
                state.engine.now().timestamp(),
                secret,
            )
            .map_err(|e| match e {
                marquee_payments::GatewayError::UnknownPayment(_) => ApiError::NotFound("payment"),
                other => ApiError::Gateway(other),
            })?;
        let mut headers = HeaderMap::new();
        headers.insert(
            SIGNATURE_HEADER,
            signature
                .parse()
                .map_err(|_| ApiError::Internal("unsigned test notification".into()))?,
        );
        webhook_inner(&state, &meta, &headers, &notification).await
    }
    .await;
    match outcome {
        Ok(answer) => answer_response(answer.status, answer.body),
        Err(error) => error.into_response(),
    }
}

/// Body of `POST …/pay`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PayBody {
    /// The card to charge. With the built-in `test` gateway the number decides the outcome
    /// (see the README).
    #[schema(min_length = 1)]
    card_number: String,
}

/// Pays for a held registration by card.
///
/// `200` with the confirmed registration when the money is taken; `202` when the provider settles
/// later (its webhook confirms); `402 payment_declined` when the card is declined (recorded, the
/// seats stay held); `409` when nothing is payable (`not_payable`, `hold_expired`) or the payment
/// was refunded at once (`already_paid`, `amount_mismatch`, … with `refund`). Its holder, or an
/// owner or organizer; the same `Idempotency-Key` never charges twice.
#[utoipa::path(
    post,
    path = "/v1/events/{event_id}/reservations/{registration_id}/pay",
    tag = "payments",
    params(("event_id" = Uuid, Path, description = "The event."), ("registration_id" = Uuid, Path, description = "The held registration."), IdempotencyKey),
    request_body = PayBody,
    responses(
        (status = 200, description = "Paid: the registration is confirmed.", body = crate::events::Registration),
        (status = 202, description = "The provider settles the payment later.", body = PaymentPending),
        PaymentRequired, BodyErrors, CallerErrors, Forbidden, NotFound, Conflict, BadGateway, Unavailable
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id, event_id = %event_id))]
async fn pay(
    State(state): State<CommandState>,
    caller: Caller,
    Path((event_id, registration_id)): Path<(String, String)>,
    meta: RequestMeta,
    body: JsonBody<PayBody>,
) -> Response {
    let card_number = body.value.card_number;
    // A retried request with the same Idempotency-Key must not charge twice: the provider gets
    // a key derived from it. Without one, every request is a new charge attempt.
    let attempt = meta
        .idempotency_key
        .clone()
        .unwrap_or_else(|| Uuid::now_v7().to_string());
    respond(
        &state.clone(),
        &caller.clone(),
        &meta,
        &body.raw,
        |mut context| async move {
            let event_id = EventId(parse_id(&event_id, "event")?);
            let registration_id = RegistrationId(parse_id(&registration_id, "registration")?);
            let visitor = Visitor::of(&state, &caller, &event_id).await?;
            context.organization = Some(visitor.organization_id.to_string());
            let event = state
                .engine
                .load::<EventAggregate>(&event_id.stream())
                .await?
                .state;
            if !event.exists() {
                return Err(ApiError::NotFound("event"));
            }
            // Only the holder (or an organizer) pays for a hold, before any money moves.
            visitor.holder_guard(registration_id)(&event)?;
            let amount = event::payable(&event, registration_id, state.engine.now())?;
            let outcome = state
                .payments
                .charge(ChargeRequest {
                    idempotency_key: format!("{event_id}:{registration_id}:{attempt}"),
                    amount: amount.clone(),
                    card_number,
                    description: event.title.clone(),
                })
                .await?;
            tracing::info!(
                gateway = state.payments.name(),
                payment_id = outcome.payment_id(),
                "card charged"
            );
            let (command, answer): (EventCommand, AnswerFn) = match outcome {
                ChargeOutcome::Succeeded { payment_id } => (
                    EventCommand::RecordPayment {
                        registration_id,
                        payment_id: PaymentId(payment_id),
                        amount,
                    },
                    Box::new(move |facts, event| {
                        paid_answer(event_id, registration_id, facts, event)
                    }),
                ),
                ChargeOutcome::Declined { payment_id, reason } => (
                    EventCommand::RecordPaymentDeclined {
                        registration_id,
                        payment_id: PaymentId(payment_id.clone()),
                        reason: reason.clone(),
                    },
                    Box::new(move |_, _| {
                        problem_answer(
                            StatusCode::PAYMENT_REQUIRED,
                            "payment_declined",
                            "Payment declined",
                            format!("the card was declined: {reason}"),
                            json!({ "payment_id": payment_id, "reason": reason }),
                        )
                    }),
                ),
                ChargeOutcome::Pending { payment_id } => (
                    EventCommand::RecordPaymentPending {
                        registration_id,
                        payment_id: PaymentId(payment_id.clone()),
                    },
                    Box::new(move |_, event| Answer {
                        status: StatusCode::ACCEPTED,
                        body: json!({
                            "registration_id": registration_id,
                            "event_id": event_id,
                            "status": "payment_pending",
                            "payment_id": payment_id,
                            "expires_at": event
                                .registrations
                                .get(&registration_id)
                                .and_then(|r| r.hold_expires_at),
                        }),
                    }),
                ),
            };
            let (_, answer) = state
                .engine
                .execute::<EventAggregate>(&event_id.stream(), vec![command], &context, answer)
                .await?;
            Ok(answer)
        },
    )
    .await
}

type AnswerFn = Box<dyn Fn(&[EventFact], &Event) -> Answer + Send + Sync>;

/// The answer to money that arrived: the confirmed registration, or, when the late-payment
/// policy refunded it, a 409 saying so.
fn paid_answer(
    event_id: EventId,
    registration_id: RegistrationId,
    facts: &[EventFact],
    event: &Event,
) -> Answer {
    let refund = facts.iter().find_map(|f| match f {
        EventFact::RefundDue {
            payment_id,
            amount,
            reason,
            ..
        } => Some((payment_id.clone(), amount.clone(), *reason)),
        _ => None,
    });
    match refund {
        None => Answer {
            status: StatusCode::OK,
            body: registration_body(event_id, event, registration_id),
        },
        Some((payment_id, amount, reason)) => refund_answer(payment_id, amount, reason),
    }
}

fn refund_answer(payment_id: PaymentId, amount: Money, reason: RefundReason) -> Answer {
    let (code, title, detail) = match reason {
        RefundReason::LatePayment => (
            "hold_expired",
            "Hold expired",
            "the hold expired before the payment and its seats are gone; the payment is refunded",
        ),
        RefundReason::DuplicatePayment => (
            "already_paid",
            "Already paid",
            "the registration was already paid; this payment is refunded",
        ),
        RefundReason::AmountMismatch => (
            "amount_mismatch",
            "Wrong amount",
            "the amount paid is not the amount due; the payment is refunded",
        ),
        RefundReason::AttendeeCancelled
        | RefundReason::EventCancelled
        | RefundReason::RegistrationCancelled => (
            "already_cancelled",
            "Already cancelled",
            "the registration is cancelled; the payment is refunded",
        ),
    };
    problem_answer(
        StatusCode::CONFLICT,
        code,
        title,
        detail.to_owned(),
        json!({ "refund": { "payment_id": payment_id, "amount": amount, "reason": reason } }),
    )
}

/// `POST /v1/payments/webhook`: the provider reports how a payment ended. The body is taken as
/// raw bytes because the signature covers exactly them. A notification repeated (providers
/// retry until they see a 2xx) changes nothing the second time and gets the same 200.
#[utoipa::path(
    post,
    path = "/v1/payments/webhook",
    tag = "payments",
    params(("Marquee-Signature" = String, Header, description = "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"t.body\">` with the shared webhook secret.")),
    request_body(content = PaymentNotificationBody, description = "Signed by the provider; taken as raw bytes."),
    responses(
        (status = 200, description = "Recorded (or recorded before: same answer).", body = PaymentRecorded),
        (status = 401, description = "The signature does not verify (`invalid_signature`).", body = Problem, content_type = "application/problem+json"),
        BadRequest, NotFound, Conflict, PayloadTooLarge, Unprocessable, Unavailable
    )
)]
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id))]
async fn payment_webhook(
    State(state): State<CommandState>,
    meta: RequestMeta,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // A body over the limit (or one that could not be read) is refused in our format too.
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return ApiError::PayloadTooLarge {
                limit: crate::extract::MAX_BODY_BYTES,
            }
            .into_response();
        }
        Err(rejection) => return ApiError::MalformedJson(rejection.body_text()).into_response(),
    };
    match webhook_inner(&state, &meta, &headers, &body).await {
        Ok(answer) => answer_response(answer.status, answer.body),
        Err(error) => error.into_response(),
    }
}

async fn webhook_inner(
    state: &CommandState,
    meta: &RequestMeta,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Answer, ApiError> {
    let secret = state
        .webhook_secret
        .as_ref()
        .ok_or(ApiError::WebhookNotConfigured)?;
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    webhook::verify(
        secret,
        signature,
        body,
        state.engine.now().timestamp(),
        webhook::DEFAULT_TOLERANCE_SECS,
    )?;
    let notification: PaymentNotification = serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            ApiError::Validation(e.to_string())
        } else {
            ApiError::MalformedJson(e.to_string())
        }
    })?;
    let event_id = EventId(notification.event_id);
    let registration_id = RegistrationId(notification.registration_id);
    let payment_id = PaymentId(notification.payment_id.clone());
    let command = match notification.status {
        NotificationStatus::Succeeded => EventCommand::RecordPayment {
            registration_id,
            payment_id: payment_id.clone(),
            amount: notification.amount.clone(),
        },
        NotificationStatus::Failed => EventCommand::RecordPaymentDeclined {
            registration_id,
            payment_id: payment_id.clone(),
            reason: notification
                .reason
                .clone()
                .unwrap_or_else(|| "payment_failed".to_owned()),
        },
    };
    let context = crate::engine::CommandContext {
        correlation_id: meta.correlation_id,
        actor: Some("system:payment-provider".to_owned()),
        organization: state
            .auth
            .directory
            .owner(&event_id.stream())
            .await?
            .map(|id| id.to_string()),
        idempotency: None,
    };
    let (_, answer) = state
        .engine
        .execute::<EventAggregate>(&event_id.stream(), vec![command], &context, move |facts, event| {
            let outcome = facts
                .iter()
                .find_map(|f| match f {
                    EventFact::HoldConfirmed { late: false, .. } => Some(json!("confirmed")),
                    EventFact::HoldConfirmed { late: true, .. } => Some(json!("confirmed_late")),
                    EventFact::RefundDue { reason, .. } => Some(json!({ "refund_due": reason })),
                    EventFact::PaymentDeclined { .. } => Some(json!("declined")),
                    _ => None,
                })
                .unwrap_or_else(|| json!("already_recorded"));
            Answer {
                status: StatusCode::OK,
                body: json!({
                    "received": true,
                    "payment_id": payment_id,
                    "registration_id": registration_id,
                    "outcome": outcome,
                    "registration_status": event.registrations.get(&registration_id).map(|r| r.status),
                }),
            }
        })
        .await?;
    Ok(answer)
}

/// Answer of `…/pay` when the provider settles later.
#[derive(ToSchema)]
pub struct PaymentPending {
    pub registration_id: Uuid,
    pub event_id: Uuid,
    /// Always `payment_pending`.
    pub status: String,
    pub payment_id: String,
    /// When the hold ends.
    pub expires_at: Option<DateTime<Utc>>,
    /// Log position of the command's last fact.
    pub position: u64,
}

/// How the provider says a payment ended.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentNotificationStatus {
    Succeeded,
    Failed,
}

/// Body of `POST /v1/payments/webhook`, as the provider signs it.
#[derive(ToSchema)]
pub struct PaymentNotificationBody {
    /// The payment, as returned by the charge.
    pub payment_id: String,
    pub event_id: Uuid,
    pub registration_id: Uuid,
    pub status: PaymentNotificationStatus,
    pub amount: MoneySchema,
    /// Why a failed payment failed; absent when it succeeded.
    pub reason: Option<String>,
}

/// What a payment notification did: `confirmed`, `confirmed_late`, `declined`,
/// `already_recorded`, or a refund that became due.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum PaymentOutcome {
    Text(String),
    Refund {
        /// Why the payment is refunded, e.g. `late_payment`, `duplicate_payment`.
        refund_due: String,
    },
}

/// Answer to a payment notification.
#[derive(ToSchema)]
pub struct PaymentRecorded {
    pub received: bool,
    pub payment_id: String,
    pub registration_id: Uuid,
    pub outcome: PaymentOutcome,
    /// The registration's status now; `null` if there is no such registration.
    pub registration_status: Option<RegistrationStatusSchema>,
    /// Log position of the command's last fact.
    pub position: u64,
}
