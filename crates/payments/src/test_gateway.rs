//! The built-in test gateway: a deterministic in-memory payment provider driven by card numbers.

use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use marquee_domain::Money;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::gateway::{
    ChargeOutcome, ChargeRequest, GatewayError, PaymentGateway, RefundOutcome, RefundRequest,
    last_four,
};
use crate::webhook::{self, NotificationStatus, PaymentNotification};

/// A payment provider simulated in memory, for tests, local runs and the README walkthrough.
///
/// The outcome of a charge depends only on the card number (see the `CARD_*` constants), and
/// ids depend only on idempotency keys, so a run is reproducible: payment ids are `pay_` and
/// the first 24 hex digits of SHA-256(idempotency key); refund ids are `re_` and the first 24
/// hex digits of SHA-256(payment id + idempotency key).
///
/// Every charge the provider answered (succeeded, declined or pending) and every refund is kept
/// in a ledger that tests read with [`charges`](Self::charges) and [`refunds`](Self::refunds).
/// A pending charge stays pending until a test plays the provider's later decision with
/// [`settle`](Self::settle) or [`notification`](Self::notification).
#[derive(Debug, Default)]
pub struct TestGateway {
    /// Behind a blocking mutex: it is never held across an `.await`.
    ledger: Mutex<Ledger>,
}

/// Everything the test provider has done, in order.
#[derive(Debug, Default)]
struct Ledger {
    charges: Vec<ChargeEntry>,
    refunds: Vec<RecordedRefund>,
}

/// One answered charge, with the request as first received so a retry can be compared to it.
#[derive(Debug)]
struct ChargeEntry {
    /// The first request with this key, its card number without spaces.
    request: ChargeRequest,
    outcome: ChargeOutcome,
    /// True when the first answer was `Pending`: only such a payment can be settled.
    asynchronous: bool,
}

/// A charge in the [`TestGateway`]'s ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCharge {
    /// The payment id returned to the caller.
    pub payment_id: String,
    /// The idempotency key of the request.
    pub idempotency_key: String,
    /// The amount charged (or attempted, for a decline).
    pub amount: Money,
    /// The last four digits of the card; the ledger keeps no full card numbers.
    pub card_last4: String,
    /// The statement description of the request.
    pub description: String,
    /// The current outcome: a settled pending payment shows how it was settled.
    pub outcome: ChargeOutcome,
}

/// A refund in the [`TestGateway`]'s ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRefund {
    /// The refund id returned to the caller.
    pub refund_id: String,
    /// The refunded payment.
    pub payment_id: String,
    /// The idempotency key of the request.
    pub idempotency_key: String,
    /// The amount given back.
    pub amount: Money,
}

/// The reason a pending payment carries once it is settled as failed.
const PENDING_FAILED_REASON: &str = "payment_failed";

impl TestGateway {
    /// Always succeeds.
    pub const CARD_SUCCEEDS: &'static str = "4242424242424242";
    /// Always declined with reason `"card_declined"`.
    pub const CARD_DECLINED: &'static str = "4000000000000002";
    /// Always declined with reason `"insufficient_funds"`.
    pub const CARD_INSUFFICIENT_FUNDS: &'static str = "4000000000009995";
    /// Answered `Pending`: the outcome comes later, through [`settle`](Self::settle) or a
    /// webhook built with [`notification`](Self::notification).
    pub const CARD_PENDING: &'static str = "4000000000000077";
    /// Always fails with [`GatewayError::Unavailable`], as a provider's processing error does;
    /// nothing is recorded.
    pub const CARD_PROCESSING_ERROR: &'static str = "4000000000000119";

    /// An empty gateway: no charges, no refunds.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every answered charge, in the order they were first made.
    pub fn charges(&self) -> Vec<RecordedCharge> {
        self.ledger()
            .charges
            .iter()
            .map(|entry| RecordedCharge {
                payment_id: entry.outcome.payment_id().to_owned(),
                idempotency_key: entry.request.idempotency_key.clone(),
                amount: entry.request.amount.clone(),
                card_last4: last_four(&entry.request.card_number),
                description: entry.request.description.clone(),
                outcome: entry.outcome.clone(),
            })
            .collect()
    }

    /// Every accepted refund, in the order they were made.
    pub fn refunds(&self) -> Vec<RecordedRefund> {
        self.ledger().refunds.clone()
    }

    /// Plays the provider's later decision on a pending payment: it becomes `Succeeded`, or
    /// `Declined` with reason `"payment_failed"`. A retried charge with the same key then
    /// returns the settled outcome.
    ///
    /// Settling again the same way returns the same outcome; settling the other way, or
    /// settling a payment that was never pending, is [`GatewayError::Refused`].
    pub fn settle(&self, payment_id: &str, succeeded: bool) -> Result<ChargeOutcome, GatewayError> {
        let mut ledger = self.ledger();
        let entry = ledger.charge_mut(payment_id)?;
        settle_entry(entry, succeeded)
    }

    /// Builds the payment webhook the provider would send for `payment_id`: the value of the
    /// [`SIGNATURE_HEADER`](webhook::SIGNATURE_HEADER) header, signed with `secret` at time
    /// `now` (unix seconds), and the JSON body of a [`PaymentNotification`].
    ///
    /// A provider decides before it notifies, so a payment still pending is first settled the
    /// way the notification says (as [`settle`](Self::settle) would). A payment that is no
    /// longer pending is left as it is, so a test can also build a notification that
    /// contradicts the ledger. The amount is the payment's; a failed notification carries the
    /// decline reason.
    pub fn notification(
        &self,
        payment_id: &str,
        event_id: Uuid,
        registration_id: Uuid,
        succeeded: bool,
        now: i64,
        secret: &[u8],
    ) -> Result<(String, Vec<u8>), GatewayError> {
        let (amount, reason) = {
            let mut ledger = self.ledger();
            let entry = ledger.charge_mut(payment_id)?;
            if matches!(entry.outcome, ChargeOutcome::Pending { .. }) {
                settle_entry(entry, succeeded)?;
            }
            let reason = match (&entry.outcome, succeeded) {
                (_, true) => None,
                (ChargeOutcome::Declined { reason, .. }, false) => Some(reason.clone()),
                (_, false) => Some(PENDING_FAILED_REASON.to_owned()),
            };
            (entry.request.amount.clone(), reason)
        };
        let notification = PaymentNotification {
            payment_id: payment_id.to_owned(),
            event_id,
            registration_id,
            status: if succeeded {
                NotificationStatus::Succeeded
            } else {
                NotificationStatus::Failed
            },
            amount,
            reason,
        };
        let body = serde_json::to_vec(&notification)
            .expect("a PaymentNotification has only string keys and always serializes");
        Ok((webhook::sign(secret, now, &body), body))
    }

    /// The ledger, even if a test panicked while holding it: every change below is a single
    /// push or assignment made after all checks, so it is never left half-written.
    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Ledger {
    fn charge_mut(&mut self, payment_id: &str) -> Result<&mut ChargeEntry, GatewayError> {
        self.charges
            .iter_mut()
            .find(|entry| entry.outcome.payment_id() == payment_id)
            .ok_or_else(|| GatewayError::UnknownPayment(payment_id.to_owned()))
    }
}

/// Moves a pending payment to its final outcome; idempotent for the same decision.
fn settle_entry(entry: &mut ChargeEntry, succeeded: bool) -> Result<ChargeOutcome, GatewayError> {
    let payment_id = entry.outcome.payment_id().to_owned();
    if !entry.asynchronous {
        return Err(GatewayError::Refused(format!(
            "payment {payment_id} was not pending"
        )));
    }
    let settled = if succeeded {
        ChargeOutcome::Succeeded { payment_id }
    } else {
        ChargeOutcome::Declined {
            payment_id,
            reason: PENDING_FAILED_REASON.to_owned(),
        }
    };
    match &entry.outcome {
        ChargeOutcome::Pending { .. } => {
            entry.outcome = settled.clone();
            Ok(settled)
        }
        current if *current == settled => Ok(settled),
        _ => Err(GatewayError::Refused(format!(
            "payment {} was already settled the other way",
            settled.payment_id()
        ))),
    }
}

#[async_trait]
impl PaymentGateway for TestGateway {
    fn name(&self) -> &'static str {
        "test"
    }

    async fn charge(&self, request: ChargeRequest) -> Result<ChargeOutcome, GatewayError> {
        require_idempotency_key(&request.idempotency_key)?;
        require_positive(&request.amount)?;
        let request = ChargeRequest {
            card_number: request.card_number.replace(' ', ""),
            ..request
        };

        let mut ledger = self.ledger();
        if let Some(entry) = ledger
            .charges
            .iter()
            .find(|entry| entry.request.idempotency_key == request.idempotency_key)
        {
            return if entry.request == request {
                Ok(entry.outcome.clone())
            } else {
                Err(GatewayError::Refused(format!(
                    "idempotency key {:?} was already used for a different charge",
                    request.idempotency_key
                )))
            };
        }

        let payment_id = short_id("pay_", &[request.idempotency_key.as_bytes()]);
        let declined = |reason: &str| ChargeOutcome::Declined {
            payment_id: payment_id.clone(),
            reason: reason.to_owned(),
        };
        let outcome = match request.card_number.as_str() {
            Self::CARD_SUCCEEDS => ChargeOutcome::Succeeded {
                payment_id: payment_id.clone(),
            },
            Self::CARD_DECLINED => declined("card_declined"),
            Self::CARD_INSUFFICIENT_FUNDS => declined("insufficient_funds"),
            Self::CARD_PENDING => ChargeOutcome::Pending {
                payment_id: payment_id.clone(),
            },
            Self::CARD_PROCESSING_ERROR => {
                return Err(GatewayError::Unavailable(
                    "processing_error: the test provider failed to process the card".to_owned(),
                ));
            }
            other => {
                validate_card_number(other)?;
                declined("unknown_test_card")
            }
        };
        let asynchronous = matches!(outcome, ChargeOutcome::Pending { .. });
        ledger.charges.push(ChargeEntry {
            request,
            outcome: outcome.clone(),
            asynchronous,
        });
        Ok(outcome)
    }

    async fn refund(&self, request: RefundRequest) -> Result<RefundOutcome, GatewayError> {
        require_idempotency_key(&request.idempotency_key)?;
        let mut ledger = self.ledger();

        if let Some(refund) = ledger.refunds.iter().find(|refund| {
            refund.payment_id == request.payment_id
                && refund.idempotency_key == request.idempotency_key
        }) {
            return if refund.amount == request.amount {
                Ok(RefundOutcome {
                    refund_id: refund.refund_id.clone(),
                })
            } else {
                Err(GatewayError::Refused(format!(
                    "idempotency key {:?} was already used for a different refund",
                    request.idempotency_key
                )))
            };
        }

        let entry = ledger.charge_mut(&request.payment_id)?;
        if !matches!(entry.outcome, ChargeOutcome::Succeeded { .. }) {
            return Err(GatewayError::Refused(format!(
                "payment {} has not succeeded, there is nothing to refund",
                request.payment_id
            )));
        }
        let charged = entry.request.amount.clone();
        if request.amount.currency != charged.currency {
            return Err(GatewayError::Refused(format!(
                "payment {} was charged in {}, not {}",
                request.payment_id, charged.currency, request.amount.currency
            )));
        }
        require_positive(&request.amount)?;
        let already_refunded: i64 = ledger
            .refunds
            .iter()
            .filter(|refund| refund.payment_id == request.payment_id)
            .map(|refund| refund.amount.amount_minor)
            .sum();
        let left = charged.amount_minor - already_refunded;
        if request.amount.amount_minor > left {
            return Err(GatewayError::Refused(format!(
                "refund of {} {} exceeds the {left} {} left of payment {}",
                request.amount.amount_minor,
                request.amount.currency,
                charged.currency,
                request.payment_id
            )));
        }

        let refund_id = short_id(
            "re_",
            &[
                request.payment_id.as_bytes(),
                request.idempotency_key.as_bytes(),
            ],
        );
        ledger.refunds.push(RecordedRefund {
            refund_id: refund_id.clone(),
            payment_id: request.payment_id,
            idempotency_key: request.idempotency_key,
            amount: request.amount,
        });
        Ok(RefundOutcome { refund_id })
    }
}

/// `prefix` and the first 24 hex digits of SHA-256 over `parts` concatenated.
fn short_id(prefix: &str, parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    let digest = hex::encode(hasher.finalize());
    format!("{prefix}{}", &digest[..24])
}

/// An empty key would make every keyless request the same charge.
fn require_idempotency_key(key: &str) -> Result<(), GatewayError> {
    if key.is_empty() {
        return Err(GatewayError::Refused(
            "an idempotency key is required".to_owned(),
        ));
    }
    Ok(())
}

/// A provider moves only positive amounts in a valid currency.
fn require_positive(amount: &Money) -> Result<(), GatewayError> {
    if !amount.is_valid() || amount.is_free() {
        return Err(GatewayError::Refused(format!(
            "{} {} is not a positive amount in a valid currency",
            amount.amount_minor, amount.currency
        )));
    }
    Ok(())
}

/// 12 to 19 digits passing the Luhn check. The message never repeats the number.
fn validate_card_number(digits: &str) -> Result<(), GatewayError> {
    if !(12..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(GatewayError::InvalidCard(
            "a card number is 12 to 19 digits".to_owned(),
        ));
    }
    if !passes_luhn(digits) {
        return Err(GatewayError::InvalidCard(
            "the card number fails its check digit (Luhn)".to_owned(),
        ));
    }
    Ok(())
}

/// The Luhn checksum: from the right, every second digit doubled (minus 9 above 9), sum ≡ 0 mod
/// 10. `digits` must be ASCII digits only.
fn passes_luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let digit = u32::from(b - b'0');
            match (i % 2 == 1, digit * 2) {
                (false, _) => digit,
                (true, doubled) if doubled > 9 => doubled - 9,
                (true, doubled) => doubled,
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::webhook::{DEFAULT_TOLERANCE_SECS, verify};

    const NOW: i64 = 1_767_225_600;
    const SECRET: &[u8] = b"whsec_test";

    fn eur(amount_minor: i64) -> Money {
        Money {
            amount_minor,
            currency: "EUR".to_owned(),
        }
    }

    fn charge_request(key: &str, card: &str) -> ChargeRequest {
        ChargeRequest {
            idempotency_key: key.to_owned(),
            amount: eur(2500),
            card_number: card.to_owned(),
            description: "RustConf 2026".to_owned(),
        }
    }

    fn refund_request(payment_id: &str, amount_minor: i64, key: &str) -> RefundRequest {
        RefundRequest {
            payment_id: payment_id.to_owned(),
            amount: eur(amount_minor),
            idempotency_key: key.to_owned(),
        }
    }

    /// A gateway holding one succeeded payment of 25.00 EUR, and that payment's id.
    async fn with_succeeded_payment() -> (TestGateway, String) {
        let gateway = TestGateway::new();
        let outcome = gateway
            .charge(charge_request("reg-1", TestGateway::CARD_SUCCEEDS))
            .await
            .unwrap();
        let payment_id = outcome.payment_id().to_owned();
        (gateway, payment_id)
    }

    #[tokio::test]
    async fn the_succeeding_card_is_charged() {
        let gateway = TestGateway::new();
        let outcome = gateway
            .charge(charge_request("reg-1", TestGateway::CARD_SUCCEEDS))
            .await
            .unwrap();
        assert!(
            matches!(outcome, ChargeOutcome::Succeeded { .. }),
            "{outcome:?}"
        );
        let charges = gateway.charges();
        assert_eq!(charges.len(), 1);
        assert_eq!(charges[0].amount, eur(2500));
        assert_eq!(charges[0].card_last4, "4242");
        assert_eq!(charges[0].description, "RustConf 2026");
        assert_eq!(charges[0].outcome, outcome);
    }

    #[tokio::test]
    async fn the_declined_card_is_declined_as_card_declined() {
        let gateway = TestGateway::new();
        let outcome = gateway
            .charge(charge_request("reg-1", TestGateway::CARD_DECLINED))
            .await
            .unwrap();
        assert!(
            matches!(&outcome, ChargeOutcome::Declined { reason, .. } if reason == "card_declined"),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn the_insufficient_funds_card_is_declined_as_insufficient_funds() {
        let gateway = TestGateway::new();
        let outcome = gateway
            .charge(charge_request(
                "reg-1",
                TestGateway::CARD_INSUFFICIENT_FUNDS,
            ))
            .await
            .unwrap();
        assert!(
            matches!(&outcome, ChargeOutcome::Declined { reason, .. } if reason == "insufficient_funds"),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn the_pending_card_is_left_pending_for_the_webhook() {
        let gateway = TestGateway::new();
        let outcome = gateway
            .charge(charge_request("reg-1", TestGateway::CARD_PENDING))
            .await
            .unwrap();
        assert!(
            matches!(outcome, ChargeOutcome::Pending { .. }),
            "{outcome:?}"
        );
        assert_eq!(gateway.charges()[0].outcome, outcome);
    }

    #[tokio::test]
    async fn the_processing_error_card_reports_the_provider_unavailable_and_records_nothing() {
        let gateway = TestGateway::new();
        let error = gateway
            .charge(charge_request("reg-1", TestGateway::CARD_PROCESSING_ERROR))
            .await
            .unwrap_err();
        assert!(matches!(error, GatewayError::Unavailable(_)), "{error:?}");
        assert!(error.is_retryable());
        assert!(gateway.charges().is_empty());
    }

    #[tokio::test]
    async fn a_valid_unlisted_card_is_declined_as_an_unknown_test_card() {
        let gateway = TestGateway::new();
        let outcome = gateway
            .charge(charge_request("reg-1", "5555555555554444"))
            .await
            .unwrap();
        assert!(
            matches!(&outcome, ChargeOutcome::Declined { reason, .. } if reason == "unknown_test_card"),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn spaces_in_a_card_number_are_ignored() {
        let gateway = TestGateway::new();
        let outcome = gateway
            .charge(charge_request("reg-1", " 4242 4242 4242 4242 "))
            .await
            .unwrap();
        assert!(
            matches!(outcome, ChargeOutcome::Succeeded { .. }),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_card_number_failing_the_luhn_check_is_invalid_and_records_nothing() {
        let gateway = TestGateway::new();
        let error = gateway
            .charge(charge_request("reg-1", "4242424242424241"))
            .await
            .unwrap_err();
        assert!(matches!(error, GatewayError::InvalidCard(_)), "{error:?}");
        assert!(!error.is_retryable());
        assert!(gateway.charges().is_empty());
    }

    #[tokio::test]
    async fn a_card_number_of_the_wrong_length_or_with_other_characters_is_invalid() {
        let gateway = TestGateway::new();
        // 11 digits and 20 digits (both Luhn-valid), letters, dashes, a sign, nothing at all.
        for card in [
            "42424242428",
            "42424242424242424242",
            "4242abcd42424242",
            "4242-4242-4242-4242",
            "+4242424242424242",
            "",
        ] {
            let error = gateway
                .charge(charge_request("reg-1", card))
                .await
                .unwrap_err();
            assert!(
                matches!(error, GatewayError::InvalidCard(_)),
                "{card:?}: {error:?}"
            );
            assert!(!error.to_string().contains("4242424242"), "{error}");
        }
        assert!(gateway.charges().is_empty());
    }

    #[test]
    fn every_listed_test_card_passes_the_luhn_check() {
        for card in [
            TestGateway::CARD_SUCCEEDS,
            TestGateway::CARD_DECLINED,
            TestGateway::CARD_INSUFFICIENT_FUNDS,
            TestGateway::CARD_PENDING,
            TestGateway::CARD_PROCESSING_ERROR,
        ] {
            assert_eq!(validate_card_number(card), Ok(()), "{card}");
        }
        assert!(passes_luhn("79927398713"));
        assert!(!passes_luhn("79927398710"));
    }

    #[tokio::test]
    async fn retrying_a_charge_with_the_same_key_returns_the_same_outcome_and_charges_once() {
        for card in [
            TestGateway::CARD_SUCCEEDS,
            TestGateway::CARD_DECLINED,
            TestGateway::CARD_PENDING,
        ] {
            let gateway = TestGateway::new();
            let first = gateway.charge(charge_request("reg-1", card)).await.unwrap();
            let retry = gateway.charge(charge_request("reg-1", card)).await.unwrap();
            assert_eq!(first, retry, "{card}");
            assert_eq!(gateway.charges().len(), 1, "{card}");
        }
    }

    #[tokio::test]
    async fn payment_ids_are_derived_from_the_idempotency_key() {
        let first = TestGateway::new();
        let second = TestGateway::new();
        let a = first
            .charge(charge_request("reg-1", TestGateway::CARD_SUCCEEDS))
            .await
            .unwrap();
        let b = second
            .charge(charge_request("reg-1", TestGateway::CARD_DECLINED))
            .await
            .unwrap();
        let c = first
            .charge(charge_request("reg-2", TestGateway::CARD_SUCCEEDS))
            .await
            .unwrap();
        assert_eq!(a.payment_id(), b.payment_id());
        assert_ne!(a.payment_id(), c.payment_id());
        // "pay_" + the first 24 hex digits of sha256("reg-1"), computed with Python's hashlib.
        assert_eq!(a.payment_id(), "pay_1226f88b81dcaf0a7e49f7ba");
    }

    #[tokio::test]
    async fn reusing_an_idempotency_key_for_a_different_charge_is_refused() {
        let gateway = TestGateway::new();
        gateway
            .charge(charge_request("reg-1", TestGateway::CARD_SUCCEEDS))
            .await
            .unwrap();
        let other_amount = ChargeRequest {
            amount: eur(9900),
            ..charge_request("reg-1", TestGateway::CARD_SUCCEEDS)
        };
        let error = gateway.charge(other_amount).await.unwrap_err();
        assert!(matches!(error, GatewayError::Refused(_)), "{error:?}");
        assert_eq!(gateway.charges().len(), 1);
    }

    #[tokio::test]
    async fn a_charge_without_a_key_or_a_positive_amount_is_refused() {
        let gateway = TestGateway::new();
        let requests = [
            charge_request("", TestGateway::CARD_SUCCEEDS),
            ChargeRequest {
                amount: eur(0),
                ..charge_request("reg-1", TestGateway::CARD_SUCCEEDS)
            },
            ChargeRequest {
                amount: eur(-100),
                ..charge_request("reg-1", TestGateway::CARD_SUCCEEDS)
            },
            ChargeRequest {
                amount: Money {
                    amount_minor: 100,
                    currency: "euro".to_owned(),
                },
                ..charge_request("reg-1", TestGateway::CARD_SUCCEEDS)
            },
        ];
        for request in requests {
            let error = gateway.charge(request.clone()).await.unwrap_err();
            assert!(
                matches!(error, GatewayError::Refused(_)),
                "{request:?}: {error:?}"
            );
        }
        assert!(gateway.charges().is_empty());
    }

    #[tokio::test]
    async fn refunding_twice_with_the_same_key_returns_the_same_refund() {
        let (gateway, payment_id) = with_succeeded_payment().await;
        let first = gateway
            .refund(refund_request(&payment_id, 2500, "refund-1"))
            .await
            .unwrap();
        let retry = gateway
            .refund(refund_request(&payment_id, 2500, "refund-1"))
            .await
            .unwrap();
        assert_eq!(first, retry);
        assert!(first.refund_id.starts_with("re_"), "{first:?}");
        assert_eq!(first.refund_id.len(), "re_".len() + 24);
        assert_eq!(gateway.refunds().len(), 1);
    }

    #[tokio::test]
    async fn partial_refunds_with_different_keys_add_up_to_at_most_the_charge() {
        let (gateway, payment_id) = with_succeeded_payment().await;
        let first = gateway
            .refund(refund_request(&payment_id, 1000, "refund-1"))
            .await
            .unwrap();
        let second = gateway
            .refund(refund_request(&payment_id, 1500, "refund-2"))
            .await
            .unwrap();
        assert_ne!(first, second);
        let error = gateway
            .refund(refund_request(&payment_id, 1, "refund-3"))
            .await
            .unwrap_err();
        assert!(matches!(error, GatewayError::Refused(_)), "{error:?}");
        assert_eq!(gateway.refunds().len(), 2);
    }

    #[tokio::test]
    async fn reusing_a_refund_key_for_another_amount_is_refused() {
        let (gateway, payment_id) = with_succeeded_payment().await;
        gateway
            .refund(refund_request(&payment_id, 1000, "refund-1"))
            .await
            .unwrap();
        let error = gateway
            .refund(refund_request(&payment_id, 2000, "refund-1"))
            .await
            .unwrap_err();
        assert!(matches!(error, GatewayError::Refused(_)), "{error:?}");
        assert_eq!(gateway.refunds().len(), 1);
    }

    #[tokio::test]
    async fn refunding_an_unknown_payment_is_an_error() {
        let gateway = TestGateway::new();
        let error = gateway
            .refund(refund_request(
                "pay_000000000000000000000000",
                100,
                "refund-1",
            ))
            .await
            .unwrap_err();
        assert_eq!(
            error,
            GatewayError::UnknownPayment("pay_000000000000000000000000".to_owned())
        );
    }

    #[tokio::test]
    async fn refunding_more_than_was_charged_is_refused() {
        let (gateway, payment_id) = with_succeeded_payment().await;
        let error = gateway
            .refund(refund_request(&payment_id, 2501, "refund-1"))
            .await
            .unwrap_err();
        assert!(matches!(error, GatewayError::Refused(_)), "{error:?}");
        assert!(gateway.refunds().is_empty());
    }

    #[tokio::test]
    async fn refunding_nothing_or_in_another_currency_is_refused() {
        let (gateway, payment_id) = with_succeeded_payment().await;
        let in_dollars = RefundRequest {
            amount: Money {
                amount_minor: 100,
                currency: "USD".to_owned(),
            },
            ..refund_request(&payment_id, 100, "refund-1")
        };
        for request in [in_dollars, refund_request(&payment_id, 0, "refund-2")] {
            let error = gateway.refund(request.clone()).await.unwrap_err();
            assert!(
                matches!(error, GatewayError::Refused(_)),
                "{request:?}: {error:?}"
            );
        }
        assert!(gateway.refunds().is_empty());
    }

    #[tokio::test]
    async fn refunding_a_declined_or_pending_payment_is_refused() {
        let gateway = TestGateway::new();
        for (key, card) in [
            ("reg-1", TestGateway::CARD_DECLINED),
            ("reg-2", TestGateway::CARD_PENDING),
        ] {
            let outcome = gateway.charge(charge_request(key, card)).await.unwrap();
            let error = gateway
                .refund(refund_request(outcome.payment_id(), 100, "refund-1"))
                .await
                .unwrap_err();
            assert!(
                matches!(error, GatewayError::Refused(_)),
                "{card}: {error:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_pending_payment_settled_as_succeeded_is_returned_as_succeeded_on_retry() {
        let gateway = TestGateway::new();
        let pending = gateway
            .charge(charge_request("reg-1", TestGateway::CARD_PENDING))
            .await
            .unwrap();
        let settled = gateway.settle(pending.payment_id(), true).unwrap();
        assert_eq!(
            settled,
            ChargeOutcome::Succeeded {
                payment_id: pending.payment_id().to_owned()
            }
        );
        let retry = gateway
            .charge(charge_request("reg-1", TestGateway::CARD_PENDING))
            .await
            .unwrap();
        assert_eq!(retry, settled);
        assert_eq!(gateway.charges().len(), 1);
        gateway
            .refund(refund_request(pending.payment_id(), 2500, "refund-1"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_pending_payment_settled_as_failed_is_declined_as_payment_failed() {
        let gateway = TestGateway::new();
        let pending = gateway
            .charge(charge_request("reg-1", TestGateway::CARD_PENDING))
            .await
            .unwrap();
        let settled = gateway.settle(pending.payment_id(), false).unwrap();
        assert_eq!(
            settled,
            ChargeOutcome::Declined {
                payment_id: pending.payment_id().to_owned(),
                reason: "payment_failed".to_owned(),
            }
        );
        assert_eq!(gateway.charges()[0].outcome, settled);
    }

    #[tokio::test]
    async fn settling_again_the_same_way_is_idempotent_and_the_other_way_is_refused() {
        let gateway = TestGateway::new();
        let pending = gateway
            .charge(charge_request("reg-1", TestGateway::CARD_PENDING))
            .await
            .unwrap();
        let settled = gateway.settle(pending.payment_id(), true).unwrap();
        assert_eq!(gateway.settle(pending.payment_id(), true), Ok(settled));
        let error = gateway.settle(pending.payment_id(), false).unwrap_err();
        assert!(matches!(error, GatewayError::Refused(_)), "{error:?}");
    }

    #[tokio::test]
    async fn only_a_known_pending_payment_can_be_settled() {
        let (gateway, payment_id) = with_succeeded_payment().await;
        let error = gateway.settle(&payment_id, false).unwrap_err();
        assert!(matches!(error, GatewayError::Refused(_)), "{error:?}");
        assert_eq!(
            gateway.settle("pay_unknown", true),
            Err(GatewayError::UnknownPayment("pay_unknown".to_owned()))
        );
    }

    #[tokio::test]
    async fn a_notification_is_signed_and_carries_the_payment_and_its_amount() {
        let gateway = TestGateway::new();
        let pending = gateway
            .charge(charge_request("reg-1", TestGateway::CARD_PENDING))
            .await
            .unwrap();
        let (event_id, registration_id) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let (header, body) = gateway
            .notification(
                pending.payment_id(),
                event_id,
                registration_id,
                true,
                NOW,
                SECRET,
            )
            .unwrap();
        assert_eq!(
            verify(SECRET, &header, &body, NOW, DEFAULT_TOLERANCE_SECS),
            Ok(())
        );
        let notification: PaymentNotification = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            notification,
            PaymentNotification {
                payment_id: pending.payment_id().to_owned(),
                event_id,
                registration_id,
                status: NotificationStatus::Succeeded,
                amount: eur(2500),
                reason: None,
            }
        );
    }

    #[tokio::test]
    async fn a_notification_settles_a_pending_payment_the_way_it_reports() {
        let gateway = TestGateway::new();
        let ids = (Uuid::from_u128(1), Uuid::from_u128(2));
        let paid = gateway
            .charge(charge_request("reg-1", TestGateway::CARD_PENDING))
            .await
            .unwrap();
        let failed = gateway
            .charge(charge_request("reg-2", TestGateway::CARD_PENDING))
            .await
            .unwrap();
        gateway
            .notification(paid.payment_id(), ids.0, ids.1, true, NOW, SECRET)
            .unwrap();
        let (_, body) = gateway
            .notification(failed.payment_id(), ids.0, ids.1, false, NOW, SECRET)
            .unwrap();

        let notification: PaymentNotification = serde_json::from_slice(&body).unwrap();
        assert_eq!(notification.status, NotificationStatus::Failed);
        assert_eq!(notification.reason.as_deref(), Some("payment_failed"));
        let outcomes: Vec<ChargeOutcome> =
            gateway.charges().into_iter().map(|c| c.outcome).collect();
        assert!(
            matches!(outcomes[0], ChargeOutcome::Succeeded { .. }),
            "{outcomes:?}"
        );
        assert!(
            matches!(outcomes[1], ChargeOutcome::Declined { .. }),
            "{outcomes:?}"
        );
        // The provider decided, so the late payment can be refunded.
        gateway
            .refund(refund_request(paid.payment_id(), 2500, "refund-1"))
            .await
            .unwrap();
    }

    #[test]
    fn a_notification_for_an_unknown_payment_is_an_error() {
        let gateway = TestGateway::new();
        let error = gateway
            .notification("pay_unknown", Uuid::nil(), Uuid::nil(), true, NOW, SECRET)
            .unwrap_err();
        assert_eq!(
            error,
            GatewayError::UnknownPayment("pay_unknown".to_owned())
        );
    }

    #[tokio::test]
    async fn the_gateway_serves_as_a_shared_trait_object() {
        let gateway: Arc<dyn PaymentGateway> = Arc::new(TestGateway::new());
        assert_eq!(gateway.name(), "test");
        let outcome = gateway
            .charge(charge_request("reg-1", TestGateway::CARD_SUCCEEDS))
            .await
            .unwrap();
        assert!(
            matches!(outcome, ChargeOutcome::Succeeded { .. }),
            "{outcome:?}"
        );
    }
}
