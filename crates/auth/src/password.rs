//! Passwords: argon2id hashing to PHC strings, verification, the password policy, and the
//! [`Password`] wrapper that keeps a password out of logs.
//!
//! ```
//! use marquee_auth::password::{check_password_policy, hash_password, verify_password};
//!
//! check_password_policy("correct horse battery", "ada@example.com").expect("acceptable");
//! let phc = hash_password("correct horse battery").expect("hash");
//! assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
//! assert!(verify_password(&phc, "correct horse battery"));
//! assert!(!verify_password(&phc, "Correct horse battery"));
//! ```

use std::fmt;
use std::sync::LazyLock;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Deserializer};

use crate::AuthError;

/// Fewest characters (Unicode scalar values) a password may have.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Most characters a password may have: long enough for any passphrase, short enough that
/// hashing it costs nothing extra.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Argon2id memory cost in KiB: 19 MiB, OWASP's recommended minimum.
const M_COST_KIB: u32 = 19 * 1024;
/// Argon2id iterations, with [`M_COST_KIB`] per OWASP.
const T_COST: u32 = 2;
/// Argon2id lanes.
const P_COST: u32 = 1;

/// A password as it arrives from a client. `Debug` and `Display` print `***`, it cannot be
/// serialized, and it can be deserialized (so a request body can hold one): the only way to the
/// text is [`Password::expose`], which is easy to search for.
// No `PartialEq`: comparing secrets is for constant-time code, not `==`.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        Password(password.into())
    }

    /// The password itself, for hashing, verifying and the policy check only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Password {
    fn from(password: String) -> Self {
        Password(password)
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Password)
    }
}

/// Why a password is refused at sign-up or change. The messages name the rule, never the
/// password. 422 `validation_failed`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordPolicyError {
    /// Fewer than [`MIN_PASSWORD_CHARS`] characters.
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    /// More than [`MAX_PASSWORD_CHARS`] characters.
    #[error("the password must have at most {MAX_PASSWORD_CHARS} characters")]
    TooLong,
    /// Nothing but whitespace.
    #[error("the password must not be only whitespace")]
    Blank,
    /// The account's own e-mail address (compared trimmed and case-insensitively).
    #[error("the password must not be the e-mail address")]
    SameAsEmail,
}

/// Checks a new password against the policy: 10 to 256 characters, not only whitespace, not the
/// account's e-mail address.
pub fn check_password_policy(password: &str, email: &str) -> Result<(), PasswordPolicyError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordPolicyError::TooShort);
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(PasswordPolicyError::TooLong);
    }
    if password.trim().is_empty() {
        return Err(PasswordPolicyError::Blank);
    }
    if crate::email_key(password) == crate::email_key(email) {
        return Err(PasswordPolicyError::SameAsEmail);
    }
    Ok(())
}

/// The hasher with this crate's parameters; verification reads the parameters from the stored
/// PHC string instead, so hashes made with other parameters keep verifying.
fn hasher() -> Result<Argon2<'static>, AuthError> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None)
        .map_err(|e| AuthError::Crypto(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password with argon2id (m = 19 MiB, t = 2, p = 1) and a fresh random salt, as a PHC
/// string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`) to store.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let hash = hasher()?
        .hash_password(password.as_bytes())
        .map_err(|e| AuthError::Crypto(format!("argon2: {e}")))?;
    Ok(hash.to_string())
}

/// Whether `candidate` is the password hashed in `phc`. A malformed or unsupported PHC string
/// is simply `false`, never a panic.
pub fn verify_password(phc: &str, candidate: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default()
        .verify_password(candidate.as_bytes(), &hash)
        .is_ok()
}

/// A hash of a throw-away password, made once per process.
static DUMMY_PHC: LazyLock<Option<String>> =
    LazyLock::new(|| hash_password("marquee-dummy-password").ok());

/// Spends as long as [`verify_password`] on a real hash, and returns `false`. Sign-in calls it
/// when the e-mail address is unknown, so the answer's timing does not tell which addresses
/// have accounts.
pub fn verify_nothing(candidate: &str) -> bool {
    if let Some(phc) = DUMMY_PHC.as_deref() {
        let _ = verify_password(phc, candidate);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_password_verifies_and_a_different_one_does_not() {
        let phc = hash_password("correct horse battery").expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password(&phc, "correct horse battery"));
        assert!(!verify_password(&phc, "correct horse batterY"));
        assert!(!verify_password(&phc, ""));
    }

    #[test]
    fn the_same_password_hashes_differently_each_time() {
        let a = hash_password("correct horse battery").expect("hash");
        let b = hash_password("correct horse battery").expect("hash");
        assert_ne!(a, b, "a fresh salt every time");
        assert!(verify_password(&a, "correct horse battery"));
        assert!(verify_password(&b, "correct horse battery"));
    }

    #[test]
    fn a_malformed_hash_verifies_nothing_and_does_not_panic() {
        for phc in [
            "",
            "not a hash",
            "$argon2id$",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$",
            "$argon2id$v=19$m=x,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$bcrypt$2b$12$abcdefghijklmnopqrstuu",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$!!!",
        ] {
            assert!(!verify_password(phc, "correct horse battery"), "{phc}");
        }
    }

    #[test]
    fn verifying_against_nothing_is_always_false() {
        assert!(!verify_nothing("correct horse battery"));
    }

    #[test]
    fn the_policy_wants_ten_to_256_characters() {
        let email = "ada@example.com";
        assert_eq!(
            check_password_policy("123456789", email),
            Err(PasswordPolicyError::TooShort)
        );
        assert_eq!(check_password_policy("1234567890", email), Ok(()));
        // Characters, not bytes: ten two-byte letters are enough.
        assert_eq!(check_password_policy("éééééééééé", email), Ok(()));
        assert_eq!(check_password_policy(&"x".repeat(256), email), Ok(()));
        assert_eq!(
            check_password_policy(&"x".repeat(257), email),
            Err(PasswordPolicyError::TooLong)
        );
    }

    #[test]
    fn the_policy_refuses_whitespace_and_the_email_address() {
        assert_eq!(
            check_password_policy(" \t \n        ", "ada@example.com"),
            Err(PasswordPolicyError::Blank)
        );
        assert_eq!(
            check_password_policy("Ada.Lovelace@Example.com", " ada.lovelace@example.COM "),
            Err(PasswordPolicyError::SameAsEmail)
        );
    }

    #[test]
    fn a_password_never_shows_in_debug_or_display() {
        let password = Password::new("correct horse battery");
        assert_eq!(format!("{password:?}"), "***");
        assert_eq!(format!("{password}"), "***");
        assert_eq!(password.expose(), "correct horse battery");

        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code, reason = "only its Debug output is looked at")]
        struct SignUp {
            email: String,
            password: Password,
        }
        let body: SignUp = serde_json::from_str(
            r#"{"email":"ada@example.com","password":"correct horse battery"}"#,
        )
        .expect("parse");
        let logged = format!("{body:?} {body:#?}");
        assert!(!logged.contains("correct horse"), "{logged}");
        assert!(logged.contains("***"));
    }
}
