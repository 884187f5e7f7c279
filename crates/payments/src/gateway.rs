//! The gateway abstraction: what Marquee asks of a payment provider and what it can answer.

use std::fmt;

use async_trait::async_trait;
use marquee_domain::Money;

/// A payment provider: charges a card and refunds a charge.
///
/// Every call carries an idempotency key because the network between Marquee and the provider
/// fails in the middle: a caller that timed out retries with the same key and must get the
/// first answer back, never a second charge or a second refund. The command API holds one as
/// `Arc<dyn PaymentGateway>`.
#[async_trait]
pub trait PaymentGateway: Send + Sync + 'static {
    /// A short stable name for logs and metrics, e.g. `"test"`.
    fn name(&self) -> &'static str;

    /// Charges `request.amount` to the card.
    ///
    /// A retry with the same idempotency key returns the same payment id and outcome and never
    /// charges twice. A decline is an `Ok` outcome (the provider answered); `Err` means there is
    /// no answer to act on (bad input, provider down).
    async fn charge(&self, request: ChargeRequest) -> Result<ChargeOutcome, GatewayError>;

    /// Gives back part or all of a succeeded payment.
    ///
    /// A retry with the same payment id and idempotency key returns the same refund. Refunding
    /// an unknown payment, or more than is left of the charge, is an error.
    async fn refund(&self, request: RefundRequest) -> Result<RefundOutcome, GatewayError>;
}

/// A request to charge a card.
#[derive(Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    /// Identifies this charge across retries: the same key means the same charge.
    pub idempotency_key: String,
    /// How much to take; a positive amount.
    pub amount: Money,
    /// The card number as the attendee typed it; spaces are allowed.
    pub card_number: String,
    /// What the attendee sees on their statement, e.g. the event's name.
    pub description: String,
}

/// Shows only the card's last four digits, so a logged request never leaks a card number.
impl fmt::Debug for ChargeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChargeRequest")
            .field("idempotency_key", &self.idempotency_key)
            .field("amount", &self.amount)
            .field(
                "card_number",
                &format_args!("…{}", last_four(&self.card_number)),
            )
            .field("description", &self.description)
            .finish()
    }
}

/// The last four digits of a card number, ignoring anything that is not a digit.
pub(crate) fn last_four(card_number: &str) -> String {
    let digits: Vec<char> = card_number.chars().filter(char::is_ascii_digit).collect();
    digits[digits.len().saturating_sub(4)..].iter().collect()
}

/// What the provider answered to a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// The money is taken.
    Succeeded {
        /// The provider's id for this payment; refunds name it.
        payment_id: String,
    },
    /// The provider said no; nothing is taken.
    Declined {
        /// The provider's id for this attempt.
        payment_id: String,
        /// A machine-readable reason, e.g. `"card_declined"`, `"insufficient_funds"`.
        reason: String,
    },
    /// The provider decides later (e.g. a bank's own confirmation step) and tells Marquee
    /// through the payment webhook.
    Pending {
        /// The provider's id for this payment; the webhook names it.
        payment_id: String,
    },
}

impl ChargeOutcome {
    /// The provider's payment id, whatever the outcome.
    pub fn payment_id(&self) -> &str {
        match self {
            ChargeOutcome::Succeeded { payment_id }
            | ChargeOutcome::Declined { payment_id, .. }
            | ChargeOutcome::Pending { payment_id } => payment_id,
        }
    }
}

/// A request to give back money from a succeeded payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// The payment to refund, as returned in its [`ChargeOutcome`].
    pub payment_id: String,
    /// How much to give back, in the payment's currency; at most what is left of the charge.
    pub amount: Money,
    /// Identifies this refund across retries: the same payment and key mean the same refund.
    pub idempotency_key: String,
}

/// What the provider answered to an accepted refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundOutcome {
    /// The provider's id for this refund.
    pub refund_id: String,
}

/// Why a gateway call has no outcome to act on.
///
/// Callers map [`InvalidCard`](Self::InvalidCard) to a 4xx for the client,
/// [`Unavailable`](Self::Unavailable) to a retry or a 503, and the other two to an internal
/// error: Marquee itself asked for something the provider cannot do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The card number is malformed (wrong length, not digits, fails the Luhn check). The
    /// client's mistake; retrying will not help.
    #[error("invalid card number: {0}")]
    InvalidCard(String),
    /// The provider is down or failed while processing. Nothing was charged; retrying with the
    /// same idempotency key is safe.
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
    /// No payment with this id exists at the provider.
    #[error("unknown payment: {0}")]
    UnknownPayment(String),
    /// The provider refused the request itself, e.g. a refund larger than the charge or an
    /// idempotency key reused for a different request.
    #[error("refused by the payment provider: {0}")]
    Refused(String),
}

impl GatewayError {
    /// True when the same request may succeed later, so a caller should retry it with the same
    /// idempotency key.
    pub fn is_retryable(&self) -> bool {
        matches!(self, GatewayError::Unavailable(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logged_charge_request_shows_only_the_last_four_digits() {
        let request = ChargeRequest {
            idempotency_key: "key".into(),
            amount: Money {
                amount_minor: 2500,
                currency: "EUR".into(),
            },
            card_number: "4242 4242 4242 4242".into(),
            description: "RustConf".into(),
        };
        let logged = format!("{request:?}");
        assert!(logged.contains("…4242"), "{logged}");
        assert!(!logged.contains("4242 4242"), "{logged}");
        assert!(!logged.contains("42424242"), "{logged}");
    }
}
