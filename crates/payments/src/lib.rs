//! Marquee's side of taking money: the [`PaymentGateway`] abstraction every payment provider
//! adapter implements, the deterministic built-in [`TestGateway`], and the signed
//! payment-webhook format ([`webhook`]) a provider uses to tell Marquee how an asynchronous
//! payment ended.
//!
//! What lives here: talking to (or simulating) a payment provider — charge, refund, idempotency
//! keys, webhook signatures and the notification body. What must not: any business rule about
//! what a payment means (confirming a hold, refunding a payment that arrived after its hold
//! expired) — that is `marquee-domain`'s to decide — and any HTTP server, database or log access
//! (no axum, no sqlx, no store). The command API wires a gateway in as `Arc<dyn PaymentGateway>`
//! and serves `POST /v1/payments/webhook` with [`webhook::verify`].

mod gateway;
mod test_gateway;
pub mod webhook;

pub use gateway::{
    ChargeOutcome, ChargeRequest, GatewayError, PaymentGateway, RefundOutcome, RefundRequest,
};
pub use test_gateway::{RecordedCharge, RecordedRefund, TestGateway};
pub use webhook::{NotificationStatus, PaymentNotification, SignatureError};
