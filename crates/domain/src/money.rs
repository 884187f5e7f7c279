//! Money as integer minor units and an ISO 4217 currency code; never floating point.

use serde::{Deserialize, Serialize};

/// An amount of money, e.g. `{ "amount_minor": 2500, "currency": "EUR" }` is 25.00 EUR.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Money {
    /// The amount in the currency's minor unit (cents for EUR).
    pub amount_minor: i64,
    /// Three upper-case letters, ISO 4217.
    pub currency: String,
}

impl Money {
    /// True for a zero amount: such a ticket needs no payment.
    pub fn is_free(&self) -> bool {
        self.amount_minor == 0
    }

    /// True when the amount is not negative and the currency is three ASCII upper-case letters.
    pub fn is_valid(&self) -> bool {
        self.amount_minor >= 0
            && self.currency.len() == 3
            && self.currency.bytes().all(|b| b.is_ascii_uppercase())
    }
}
