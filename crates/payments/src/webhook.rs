//! The payment webhook: how a provider tells Marquee, after the fact, how a pending payment
//! ended (`POST /v1/payments/webhook`).
//!
//! The body is a JSON [`PaymentNotification`]. The provider signs it in the
//! [`SIGNATURE_HEADER`] header as `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
//! The timestamp is inside the MAC so a captured request cannot be replayed outside the
//! tolerance window; several `v1=` entries may appear while a secret is rotated, and any one
//! matching is enough. Unknown entries (a future `v2=`) are ignored.
//!
//! ```
//! use marquee_payments::webhook::{self, DEFAULT_TOLERANCE_SECS};
//!
//! let body = br#"{"payment_id":"pay_1"}"#;
//! let header = webhook::sign(b"whsec_secret", 1_767_225_600, body);
//! assert_eq!(
//!     webhook::verify(b"whsec_secret", &header, body, 1_767_225_660, DEFAULT_TOLERANCE_SECS),
//!     Ok(())
//! );
//! ```

use hmac::{Hmac, Mac};
use marquee_domain::Money;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

/// The HTTP header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Marquee-Signature";

/// How far, in seconds, a signature's timestamp may be from the receiver's clock either way.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

/// What a provider reports about one payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentNotification {
    /// The payment, as returned by the charge.
    pub payment_id: String,
    /// The event the payment is for.
    pub event_id: Uuid,
    /// The registration (hold) the payment is for.
    pub registration_id: Uuid,
    /// How the payment ended.
    pub status: NotificationStatus,
    /// The amount of the payment.
    pub amount: Money,
    /// Why a failed payment failed, e.g. `"payment_failed"`; absent when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How a payment ended, as `"succeeded"` or `"failed"` in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationStatus {
    /// The money is taken.
    Succeeded,
    /// The money was not taken.
    Failed,
}

/// Why a webhook's signature is refused. The receiver answers any of them with a 4xx and
/// processes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header is absent or blank.
    #[error("the {SIGNATURE_HEADER} header is missing")]
    Missing,
    /// The header is not `t=<unix seconds>,v1=<64 hex digits>[,v1=…]`; says what is wrong.
    #[error("the {SIGNATURE_HEADER} header is malformed: {0}")]
    Malformed(&'static str),
    /// The signature is genuine but older than the tolerance: a replay, or a badly skewed clock.
    #[error("the signature is {age_secs} seconds old, beyond the tolerance")]
    Stale {
        /// How old the timestamp is, in seconds.
        age_secs: i64,
    },
    /// The signature is genuine but dated further ahead than the tolerance.
    #[error("the signature is dated {ahead_secs} seconds in the future, beyond the tolerance")]
    FromTheFuture {
        /// How far ahead of `now` the timestamp is, in seconds.
        ahead_secs: i64,
    },
    /// No `v1` signature matches this body and secret.
    #[error("no signature matches the body")]
    Mismatch,
}

/// Signs `body` at `timestamp` (unix seconds): the value of the [`SIGNATURE_HEADER`] header,
/// `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let timestamp = timestamp.to_string();
    let signature = mac(secret, &timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(signature))
}

/// Checks that `header` (the [`SIGNATURE_HEADER`] value) signs exactly `body` with `secret`,
/// at a time no further than `tolerance_secs` from `now` (unix seconds) either way.
///
/// The signature is checked first, in constant time, so [`SignatureError::Stale`] and
/// [`SignatureError::FromTheFuture`] only ever describe genuine signatures. An empty secret
/// never verifies: it would let anyone sign. A negative tolerance counts as zero.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let header = header.trim();
    if header.is_empty() {
        return Err(SignatureError::Missing);
    }
    let parsed = ParsedHeader::parse(header)?;
    if secret.is_empty() {
        return Err(SignatureError::Mismatch);
    }

    let expected = mac(secret, parsed.timestamp_text, body);
    let matches = parsed
        .signatures
        .iter()
        .any(|signature| expected.clone().verify_slice(signature).is_ok());
    if !matches {
        return Err(SignatureError::Mismatch);
    }

    let tolerance = tolerance_secs.max(0);
    let age = now.saturating_sub(parsed.timestamp);
    if age > tolerance {
        return Err(SignatureError::Stale { age_secs: age });
    }
    if age < -tolerance {
        return Err(SignatureError::FromTheFuture {
            ahead_secs: age.saturating_neg(),
        });
    }
    Ok(())
}

/// The MAC state after `"<timestamp>.<body>"`.
fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts a key of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The parts of a signature header that matter.
struct ParsedHeader<'a> {
    /// The timestamp as sent: it is what was signed.
    timestamp_text: &'a str,
    timestamp: i64,
    /// Every `v1` signature, decoded; at least one.
    signatures: Vec<Vec<u8>>,
}

impl<'a> ParsedHeader<'a> {
    fn parse(header: &'a str) -> Result<Self, SignatureError> {
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for entry in header.split(',') {
            let Some((key, value)) = entry.split_once('=') else {
                return Err(SignatureError::Malformed("an entry is not key=value"));
            };
            let value = value.trim();
            match key.trim() {
                "t" => {
                    if timestamp.is_some() {
                        return Err(SignatureError::Malformed("more than one t entry"));
                    }
                    let seconds = value
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                        .then(|| value.parse::<i64>().ok())
                        .flatten()
                        .ok_or(SignatureError::Malformed("t is not unix seconds"))?;
                    timestamp = Some((value, seconds));
                }
                "v1" => {
                    let signature = hex::decode(value)
                        .ok()
                        .filter(|bytes| bytes.len() == 32)
                        .ok_or(SignatureError::Malformed("a v1 entry is not 64 hex digits"))?;
                    signatures.push(signature);
                }
                // Another scheme (a future v2): a receiver that only knows v1 skips it.
                _ => {}
            }
        }
        let Some((timestamp_text, timestamp)) = timestamp else {
            return Err(SignatureError::Malformed("no t entry"));
        };
        if signatures.is_empty() {
            return Err(SignatureError::Malformed("no v1 entry"));
        }
        Ok(Self {
            timestamp_text,
            timestamp,
            signatures,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    const NOW: i64 = 1_767_225_600;
    const SECRET: &[u8] = b"whsec_current";
    const BODY: &[u8] = br#"{"payment_id":"pay_1","status":"succeeded"}"#;

    fn check(header: &str) -> Result<(), SignatureError> {
        verify(SECRET, header, BODY, NOW, DEFAULT_TOLERANCE_SECS)
    }

    /// The hex signature of `BODY` at `NOW` under `secret`.
    fn v1(secret: &[u8]) -> String {
        let header = sign(secret, NOW, BODY);
        header
            .split_once(",v1=")
            .map(|(_, signature)| signature.to_owned())
            .unwrap()
    }

    #[test]
    fn a_valid_signature_verifies() {
        assert_eq!(check(&sign(SECRET, NOW, BODY)), Ok(()));
    }

    #[test]
    fn the_header_is_a_timestamp_and_one_hex_signature() {
        let header = sign(SECRET, NOW, BODY);
        let (timestamp, signature) = header.split_once(',').unwrap();
        assert_eq!(timestamp, format!("t={NOW}"));
        let signature = signature.strip_prefix("v1=").unwrap();
        assert_eq!(signature.len(), 64);
        assert!(
            signature
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }

    #[test]
    fn a_tampered_body_is_a_mismatch() {
        let header = sign(SECRET, NOW, BODY);
        let tampered = br#"{"payment_id":"pay_2","status":"succeeded"}"#;
        assert_eq!(
            verify(SECRET, &header, tampered, NOW, DEFAULT_TOLERANCE_SECS),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_signature_made_with_another_secret_is_a_mismatch() {
        assert_eq!(
            check(&sign(b"whsec_other", NOW, BODY)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_changed_timestamp_is_a_mismatch() {
        let moved = format!("t={},v1={}", NOW + 1, v1(SECRET));
        assert_eq!(check(&moved), Err(SignatureError::Mismatch));
    }

    #[test]
    fn a_signature_older_than_the_tolerance_is_stale() {
        assert_eq!(
            check(&sign(SECRET, NOW - 301, BODY)),
            Err(SignatureError::Stale { age_secs: 301 })
        );
        assert_eq!(check(&sign(SECRET, NOW - 300, BODY)), Ok(()));
    }

    #[test]
    fn a_signature_dated_beyond_the_tolerance_in_the_future_is_refused() {
        assert_eq!(
            check(&sign(SECRET, NOW + 301, BODY)),
            Err(SignatureError::FromTheFuture { ahead_secs: 301 })
        );
        assert_eq!(check(&sign(SECRET, NOW + 300, BODY)), Ok(()));
    }

    #[test]
    fn timestamps_far_from_now_are_refused_without_overflowing() {
        let far_future = sign(SECRET, i64::MAX, BODY);
        assert!(matches!(
            verify(SECRET, &far_future, BODY, 0, DEFAULT_TOLERANCE_SECS),
            Err(SignatureError::FromTheFuture { .. })
        ));
        let epoch = sign(SECRET, 0, BODY);
        assert!(matches!(
            verify(SECRET, &epoch, BODY, i64::MAX, i64::MIN),
            Err(SignatureError::Stale { .. })
        ));
    }

    #[test]
    fn a_missing_or_blank_header_is_missing() {
        assert_eq!(check(""), Err(SignatureError::Missing));
        assert_eq!(check("  "), Err(SignatureError::Missing));
    }

    #[test]
    fn a_header_without_a_timestamp_is_malformed() {
        let header = format!("v1={}", v1(SECRET));
        assert_eq!(check(&header), Err(SignatureError::Malformed("no t entry")));
    }

    #[test]
    fn a_header_without_a_v1_signature_is_malformed() {
        assert_eq!(
            check(&format!("t={NOW}")),
            Err(SignatureError::Malformed("no v1 entry"))
        );
        assert_eq!(
            check(&format!("t={NOW},v0=abcd")),
            Err(SignatureError::Malformed("no v1 entry"))
        );
    }

    #[test]
    fn a_signature_that_is_not_64_hex_digits_is_malformed() {
        let signature = v1(SECRET);
        let not_hex = format!("zz{}", &signature[2..]);
        for bad in [not_hex.as_str(), &signature[..63], &signature[..62], ""] {
            let header = format!("t={NOW},v1={bad}");
            assert!(
                matches!(check(&header), Err(SignatureError::Malformed(_))),
                "{header}: {:?}",
                check(&header)
            );
        }
    }

    #[test]
    fn garbage_headers_are_malformed() {
        let signature = v1(SECRET);
        for header in [
            "garbage".to_owned(),
            "t=,v1=".to_owned(),
            format!("t=soon,v1={signature}"),
            format!("t=-{NOW},v1={signature}"),
            format!("t=99999999999999999999,v1={signature}"),
            format!("t={NOW},t={NOW},v1={signature}"),
            format!("t={NOW};v1={signature}"),
            format!("t={NOW},,v1={signature}"),
        ] {
            assert!(
                matches!(check(&header), Err(SignatureError::Malformed(_))),
                "{header}: {:?}",
                check(&header)
            );
        }
    }

    #[test]
    fn during_a_secret_rotation_any_matching_v1_entry_verifies() {
        let old = b"whsec_old";
        let header = format!("t={NOW},v1={},v1={}", v1(old), v1(SECRET));
        assert_eq!(check(&header), Ok(()));
        assert_eq!(
            verify(old, &header, BODY, NOW, DEFAULT_TOLERANCE_SECS),
            Ok(())
        );
        assert_eq!(
            verify(b"whsec_third", &header, BODY, NOW, DEFAULT_TOLERANCE_SECS),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn unknown_schemes_and_spaces_between_entries_are_tolerated() {
        let header = format!(" t={NOW}, v0=not-ours , v1={} ", v1(SECRET));
        assert_eq!(check(&header), Ok(()));
    }

    #[test]
    fn an_empty_secret_never_verifies() {
        let header = sign(b"", NOW, BODY);
        assert_eq!(
            verify(b"", &header, BODY, NOW, DEFAULT_TOLERANCE_SECS),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn the_signature_matches_hmac_sha256_computed_independently_by_python() {
        // A secret with bytes that are not text, a body with non-ASCII UTF-8: the MAC is over
        // raw bytes, not over a string re-encoding of them.
        let secret: &[u8] = b"whsec_\x00\xff\x7frotated";
        let body = "{\"payment_id\":\"pay_1\",\"note\":\"caf\u{e9} \u{1f39f}\"}".as_bytes();
        let header = sign(secret, NOW, body);

        let script = "import hashlib, hmac, sys\n\
                      secret = bytes.fromhex(sys.argv[1])\n\
                      message = sys.argv[2].encode('ascii') + b'.' + bytes.fromhex(sys.argv[3])\n\
                      print(hmac.new(secret, message, hashlib.sha256).hexdigest())";
        let output = Command::new("python3")
            .args([
                "-c",
                script,
                &hex::encode(secret),
                &NOW.to_string(),
                &hex::encode(body),
            ])
            .output()
            .unwrap_or_else(|error| {
                panic!(
                    "this test needs `python3` on PATH to check the signature format \
                     independently, and could not run it: {error}"
                )
            });
        assert!(
            output.status.success(),
            "python3 failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let python_v1 = String::from_utf8(output.stdout).unwrap().trim().to_owned();
        assert_eq!(
            python_v1.len(),
            64,
            "unexpected python output {python_v1:?}"
        );
        assert_eq!(header, format!("t={NOW},v1={python_v1}"));
    }

    #[test]
    fn a_notification_reads_and_writes_the_documented_json() {
        let json = serde_json::json!({
            "payment_id": "pay_1",
            "event_id": "00000000-0000-0000-0000-000000000001",
            "registration_id": "00000000-0000-0000-0000-000000000002",
            "status": "failed",
            "amount": { "amount_minor": 2500, "currency": "EUR" },
            "reason": "insufficient_funds",
        });
        let notification: PaymentNotification = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(
            notification,
            PaymentNotification {
                payment_id: "pay_1".to_owned(),
                event_id: Uuid::from_u128(1),
                registration_id: Uuid::from_u128(2),
                status: NotificationStatus::Failed,
                amount: Money {
                    amount_minor: 2500,
                    currency: "EUR".to_owned(),
                },
                reason: Some("insufficient_funds".to_owned()),
            }
        );
        assert_eq!(serde_json::to_value(&notification).unwrap(), json);
    }

    #[test]
    fn a_notification_without_a_reason_has_none() {
        let json = serde_json::json!({
            "payment_id": "pay_1",
            "event_id": "00000000-0000-0000-0000-000000000001",
            "registration_id": "00000000-0000-0000-0000-000000000002",
            "status": "succeeded",
            "amount": { "amount_minor": 2500, "currency": "EUR" },
        });
        let notification: PaymentNotification = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(notification.status, NotificationStatus::Succeeded);
        assert_eq!(notification.reason, None);
        assert_eq!(serde_json::to_value(&notification).unwrap(), json);
    }

    #[test]
    fn a_notification_with_an_unknown_field_or_status_is_rejected() {
        let base = serde_json::json!({
            "payment_id": "pay_1",
            "event_id": "00000000-0000-0000-0000-000000000001",
            "registration_id": "00000000-0000-0000-0000-000000000002",
            "status": "succeeded",
            "amount": { "amount_minor": 2500, "currency": "EUR" },
        });
        let mut unknown_field = base.clone();
        unknown_field["refunded"] = serde_json::json!(true);
        let mut unknown_status = base;
        unknown_status["status"] = serde_json::json!("Succeeded");
        for json in [unknown_field, unknown_status] {
            assert!(
                serde_json::from_value::<PaymentNotification>(json.clone()).is_err(),
                "{json}"
            );
        }
    }
}
