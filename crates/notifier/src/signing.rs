//! Signatures of outgoing webhooks, in the same format as the payment provider's webhooks that
//! Marquee receives (`marquee_payments::webhook`): the header [`SIGNATURE_HEADER`] carries
//! `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`. A receiver recomputes the
//! MAC over the exact bytes it got, compares in constant time, and refuses timestamps too far
//! from its clock (replays).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Marquee-Signature";
/// The header carrying the delivery's id, the same on every attempt: receivers deduplicate by it.
pub const DELIVERY_HEADER: &str = "Marquee-Delivery";
/// The header naming the fact type (or `ping`).
pub const FACT_TYPE_HEADER: &str = "Marquee-Fact-Type";

/// The [`SIGNATURE_HEADER`] value for `body` sent at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// A fresh signing secret, as shown once to the organizer: `whsec_` and 64 hex digits.
pub fn new_secret() -> String {
    format!("whsec_{}", hex::encode(rand::random::<[u8; 32]>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_of_the_timestamp_a_dot_and_the_body() {
        // The payment webhook's own signer, an independent implementation of the same format.
        let header = sign(b"whsec_test", 1_767_225_600, br#"{"a":1}"#);
        assert!(header.starts_with("t=1767225600,v1="), "{header}");
        assert_eq!(header.len(), "t=1767225600,v1=".len() + 64);
        assert_ne!(header, sign(b"whsec_other", 1_767_225_600, br#"{"a":1}"#));
        assert_ne!(header, sign(b"whsec_test", 1_767_225_601, br#"{"a":1}"#));
    }

    #[test]
    fn secrets_are_unguessable_and_distinct() {
        let (a, b) = (new_secret(), new_secret());
        assert!(a.starts_with("whsec_") && a.len() == 6 + 64);
        assert_ne!(a, b);
    }
}
