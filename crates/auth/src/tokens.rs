//! Tokens: short-lived signed access tokens (HS256 JWTs), single-use refresh tokens, and API
//! tokens for integrations, plus the [`Secret`] wrapper that keeps a token out of logs.
//!
//! - An **access token** proves who the caller is for [`ACCESS_TTL`]; it is checked without the
//!   database (signature and expiry), then its session with [`crate::AuthStore::session_active`]
//!   where revocation must take effect at once.
//! - A **refresh token** (`mqr_…`) is shown to the client once; the database keeps only its
//!   SHA-256 ([`hash_secret`]). Each use exchanges it for a new one
//!   ([`crate::AuthStore::rotate_session`]).
//! - An **API token** (`mqt_<token id>_<secret>`) names its row, so a request costs one lookup
//!   by id and one constant-time comparison of hashes ([`parse_api_token`], [`secret_matches`]).
//!
//! Random parts are 32 bytes from the thread-local CSPRNG, so a hash of them needs no salt and
//! no slow hash function: SHA-256 is enough for secrets nobody chose.
//!
//! ```
//! use chrono::Utc;
//! use marquee_auth::tokens::{ACCESS_TTL, issue_access, verify_access};
//! use uuid::Uuid;
//!
//! let secret = [7u8; 32];
//! let (user, session, now) = (Uuid::now_v7(), Uuid::now_v7(), Utc::now());
//! let token = issue_access(&secret, user, session, now, ACCESS_TTL).expect("sign");
//! let claims = verify_access(&secret, &token, now).expect("valid");
//! assert_eq!((claims.sub, claims.sid), (user, session));
//! assert!(verify_access(&secret, &token, now + ACCESS_TTL).is_err());
//! ```

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::crypto::{CryptoProvider, rust_crypto};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::AuthError;

/// Default lifetime of an access token: 15 minutes.
pub const ACCESS_TTL: TimeDelta = TimeDelta::minutes(15);
/// Default lifetime of a session and so of its refresh tokens: 30 days from sign-in. Rotation
/// does not extend it.
pub const REFRESH_TTL: TimeDelta = TimeDelta::days(30);
/// How far in the future an access token's `iat` may lie before it is [`TokenError::NotYetValid`]:
/// room for clocks of different processes that disagree a little. Expiry has no such leeway.
pub const MAX_CLOCK_SKEW: TimeDelta = TimeDelta::seconds(60);
/// Fewest bytes an access-token signing secret may have (HS256 wants at least the hash size).
pub const MIN_SIGNING_SECRET_BYTES: usize = 32;
/// Prefix of every refresh token.
pub const REFRESH_PREFIX: &str = "mqr_";
/// Prefix of every API token.
pub const API_TOKEN_PREFIX: &str = "mqt_";

/// Random bytes in a refresh token's or API token's secret part.
const SECRET_BYTES: usize = 32;
/// Length of [`SECRET_BYTES`] in unpadded base64url.
const SECRET_B64_LEN: usize = 43;

/// What an access token says. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessClaims {
    /// The user.
    pub sub: Uuid,
    /// The session the token was issued for; revoking it ends the token's use where the
    /// session is checked.
    pub sid: Uuid,
    /// When the token was issued.
    pub iat: i64,
    /// When the token stops being valid: it is valid while `now < exp`.
    pub exp: i64,
    /// This token's own id, for logs and deny lists.
    pub jti: Uuid,
}

/// Why an access token is refused. All of them are 401 `unauthorized`; the variant is for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT of the expected shape: bad base64 or JSON, missing or extra claims, an
    /// unknown algorithm such as `none`.
    #[error("the access token is malformed")]
    Malformed,
    /// Signed with another secret or another algorithm, or altered after signing.
    #[error("the access token's signature is not valid")]
    BadSignature,
    /// `now` is at or past the token's `exp`.
    #[error("the access token has expired")]
    Expired,
    /// The token was issued further in the future than [`MAX_CLOCK_SKEW`].
    #[error("the access token is not valid yet")]
    NotYetValid,
}

/// Makes sure `jsonwebtoken` has its crypto backend. With exactly one backend feature enabled
/// it picks that one itself; should feature unification ever enable a second one, it would
/// panic on first use instead of choosing — so this crate chooses the pure-Rust one up front.
fn ensure_crypto_provider() {
    if CryptoProvider::try_get_default().is_none() {
        // Losing a race to another installer is fine: a provider is installed either way.
        let _ = CryptoProvider::install_default(&rust_crypto::DEFAULT_PROVIDER);
    }
}

/// Signs an access token for `user_id`'s `session_id`, valid from `now` for `ttl` (usually
/// [`ACCESS_TTL`]), with HS256 under `secret` (the store's `secret("jwt")`).
///
/// Fails only if `secret` is shorter than [`MIN_SIGNING_SECRET_BYTES`].
pub fn issue_access(
    secret: &[u8],
    user_id: Uuid,
    session_id: Uuid,
    now: DateTime<Utc>,
    ttl: TimeDelta,
) -> Result<String, AuthError> {
    if secret.len() < MIN_SIGNING_SECRET_BYTES {
        return Err(AuthError::Crypto(format!(
            "the access-token secret must have at least {MIN_SIGNING_SECRET_BYTES} bytes"
        )));
    }
    let iat = now.timestamp();
    let claims = AccessClaims {
        sub: user_id,
        sid: session_id,
        iat,
        exp: iat.saturating_add(ttl.num_seconds()),
        jti: Uuid::now_v7(),
    };
    ensure_crypto_provider();
    let key = EncodingKey::from_secret(secret).map_err(|e| AuthError::Crypto(e.to_string()))?;
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)
        .map_err(|e| AuthError::Crypto(e.to_string()))
}

/// Verifies an access token at time `now` (not the system clock, so tests can move time):
/// HS256 only, signature first, then `exp` with zero leeway and `iat` with [`MAX_CLOCK_SKEW`].
pub fn verify_access(
    secret: &[u8],
    token: &str,
    now: DateTime<Utc>,
) -> Result<AccessClaims, TokenError> {
    if secret.len() < MIN_SIGNING_SECRET_BYTES {
        // No token this crate issued can carry a signature under such a secret.
        return Err(TokenError::BadSignature);
    }
    ensure_crypto_provider();
    let key = DecodingKey::from_secret(secret).map_err(|_| TokenError::BadSignature)?;
    let mut validation = Validation::new(Algorithm::HS256);
    // Times are checked below against `now`, not against the system clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<AccessClaims>(token, &key, &validation)
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => TokenError::BadSignature,
            _ => TokenError::Malformed,
        })?
        .claims;
    let now = now.timestamp();
    if claims.iat > now.saturating_add(MAX_CLOCK_SKEW.num_seconds()) {
        return Err(TokenError::NotYetValid);
    }
    if now >= claims.exp {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// 32 random bytes in unpadded base64url (43 characters).
fn random_secret() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; SECRET_BYTES]>())
}

/// A new refresh token: `(token, hash)`. The token (`mqr_` + 43 base64url characters) is shown
/// to the client once; only the hash ([`hash_secret`] of the whole token) is stored.
pub fn new_refresh_token() -> (String, String) {
    let token = format!("{REFRESH_PREFIX}{}", random_secret());
    let hash = hash_secret(&token);
    (token, hash)
}

/// Lower-case hex SHA-256 of a secret: what the database stores instead of it.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new API token for the row `token_id`: `(token, hash)`. The token,
/// `mqt_<token_id as 32 hex digits>_<43 base64url characters>`, is shown once; the hash is
/// [`hash_secret`] of the secret part (what [`parse_api_token`] returns) and is what to store.
pub fn new_api_token(token_id: Uuid) -> (String, String) {
    let secret = random_secret();
    let token = format!("{API_TOKEN_PREFIX}{}_{secret}", token_id.simple());
    (token, hash_secret(&secret))
}

/// Splits an API token into its row id and secret part, or `None` if it is not shaped like one
/// [`new_api_token`] makes (the secret part may itself contain `_`).
pub fn parse_api_token(token: &str) -> Option<(Uuid, String)> {
    let rest = token.strip_prefix(API_TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id_is_simple = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let secret_is_b64 = secret.len() == SECRET_B64_LEN
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !id_is_simple || !secret_is_b64 {
        return None;
    }
    let id = Uuid::try_parse(id).ok()?;
    Some((id, secret.to_owned()))
}

/// Whether `secret` hashes to `stored_hash`, compared in constant time so response timing does
/// not reveal how much of a guessed hash was right.
pub fn secret_matches(secret: &str, stored_hash: &str) -> bool {
    hash_secret(secret)
        .as_bytes()
        .ct_eq(stored_hash.as_bytes())
        .into()
}

/// Any token string (access, refresh or API token) held where it could be logged. `Debug`
/// prints only what identifies the kind — `mqr_…`, `mqt_0193…` (the first four digits of the
/// token id), `eyJ…` — never the secret; there is no `Display` and no `Serialize`. Get the text
/// with [`Secret::expose`].
// No `PartialEq`: comparing secrets is for constant-time code, not `==`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Secret(token.into())
    }

    /// The token itself, to send to its owner once or to verify.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(token: String) -> Self {
        Secret(token)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = self.0.as_str();
        // Only ASCII is ever sliced below, so the byte indexes are character boundaries.
        let shown = if let Some(id) = token.strip_prefix(API_TOKEN_PREFIX) {
            let digits = id.bytes().take(4).take_while(u8::is_ascii_hexdigit).count();
            &token[..API_TOKEN_PREFIX.len() + digits]
        } else if token.starts_with(REFRESH_PREFIX) {
            REFRESH_PREFIX
        } else if token.starts_with("eyJ") {
            "eyJ"
        } else {
            ""
        };
        write!(f, "Secret({shown}…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: [u8; 32] = [42; 32];

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).expect("time")
    }

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn an_access_token_round_trips_until_it_expires() {
        let (user, session) = (Uuid::now_v7(), Uuid::now_v7());
        let now = at(1_767_225_600);
        let token = issue_access(&SECRET, user, session, now, ACCESS_TTL).expect("sign");
        let claims = verify_access(&SECRET, &token, now).expect("valid");
        assert_eq!(claims.sub, user);
        assert_eq!(claims.sid, session);
        assert_eq!(claims.iat, 1_767_225_600);
        assert_eq!(claims.exp, 1_767_225_600 + 15 * 60);
        let last_second = now + ACCESS_TTL - TimeDelta::seconds(1);
        assert!(verify_access(&SECRET, &token, last_second).is_ok());
        assert_eq!(
            verify_access(&SECRET, &token, now + ACCESS_TTL),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify_access(&SECRET, &token, now + TimeDelta::days(1)),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn each_access_token_has_its_own_id() {
        let now = at(1_767_225_600);
        let (user, session) = (Uuid::now_v7(), Uuid::now_v7());
        let a = issue_access(&SECRET, user, session, now, ACCESS_TTL).expect("sign");
        let b = issue_access(&SECRET, user, session, now, ACCESS_TTL).expect("sign");
        let a = verify_access(&SECRET, &a, now).expect("valid");
        let b = verify_access(&SECRET, &b, now).expect("valid");
        assert_ne!(a.jti, b.jti);
    }

    #[test]
    fn an_access_token_from_the_future_is_not_valid_yet() {
        let now = at(1_767_225_600);
        let token =
            issue_access(&SECRET, Uuid::now_v7(), Uuid::now_v7(), now, ACCESS_TTL).expect("sign");
        // A little behind is a clock that disagrees; far behind is refused.
        assert!(verify_access(&SECRET, &token, now - MAX_CLOCK_SKEW).is_ok());
        assert_eq!(
            verify_access(
                &SECRET,
                &token,
                now - MAX_CLOCK_SKEW - TimeDelta::seconds(1)
            ),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn an_access_token_with_a_tampered_payload_has_a_bad_signature() {
        let now = at(1_767_225_600);
        let token =
            issue_access(&SECRET, Uuid::now_v7(), Uuid::now_v7(), now, ACCESS_TTL).expect("sign");
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let payload = URL_SAFE_NO_PAD.decode(parts[1]).expect("payload");
        let mut claims: AccessClaims = serde_json::from_slice(&payload).expect("claims");
        claims.sub = Uuid::now_v7();
        claims.exp += 3600;
        let forged_payload = b64(&serde_json::to_string(&claims).expect("json"));
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert_eq!(
            verify_access(&SECRET, &forged, now),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn an_access_token_signed_with_another_secret_has_a_bad_signature() {
        let now = at(1_767_225_600);
        let token =
            issue_access(&[1; 32], Uuid::now_v7(), Uuid::now_v7(), now, ACCESS_TTL).expect("sign");
        assert_eq!(
            verify_access(&SECRET, &token, now),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn an_unsigned_alg_none_token_is_refused() {
        let now = at(1_767_225_600);
        let claims = AccessClaims {
            sub: Uuid::now_v7(),
            sid: Uuid::now_v7(),
            iat: now.timestamp(),
            exp: now.timestamp() + 900,
            jti: Uuid::now_v7(),
        };
        let payload = b64(&serde_json::to_string(&claims).expect("json"));
        for header in [
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"None","typ":"JWT"}"#,
        ] {
            for signature in ["", "AAAA"] {
                let token = format!("{}.{payload}.{signature}", b64(header));
                let refused = verify_access(&SECRET, &token, now);
                assert!(
                    matches!(
                        refused,
                        Err(TokenError::Malformed | TokenError::BadSignature)
                    ),
                    "{header} {signature}: {refused:?}"
                );
            }
        }
    }

    #[test]
    fn an_access_token_of_another_algorithm_has_a_bad_signature() {
        let now = at(1_767_225_600);
        let claims = AccessClaims {
            sub: Uuid::now_v7(),
            sid: Uuid::now_v7(),
            iat: now.timestamp(),
            exp: now.timestamp() + 900,
            jti: Uuid::now_v7(),
        };
        let key = EncodingKey::from_secret(&SECRET).expect("key");
        let hs512 =
            jsonwebtoken::encode(&Header::new(Algorithm::HS512), &claims, &key).expect("sign");
        assert_eq!(
            verify_access(&SECRET, &hs512, now),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn garbage_is_a_malformed_access_token() {
        let now = at(1_767_225_600);
        for token in [
            "",
            "garbage",
            "a.b.c",
            "a.b",
            "....",
            "\u{0}\u{1}.\u{2}.\u{3}",
            "mqt_0193_abc",
        ] {
            assert_eq!(
                verify_access(&SECRET, token, now),
                Err(TokenError::Malformed),
                "{token:?}"
            );
        }
    }

    #[test]
    fn the_signature_is_checked_before_the_payload_is_read() {
        let now = at(1_767_225_600);
        let header = b64(r#"{"alg":"HS256","typ":"JWT"}"#);
        assert_eq!(
            verify_access(&SECRET, &format!("{header}.%%%.sig"), now),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn signing_with_a_short_secret_is_refused() {
        let now = at(1_767_225_600);
        assert!(matches!(
            issue_access(b"short", Uuid::now_v7(), Uuid::now_v7(), now, ACCESS_TTL),
            Err(AuthError::Crypto(_))
        ));
        let token =
            issue_access(&SECRET, Uuid::now_v7(), Uuid::now_v7(), now, ACCESS_TTL).expect("sign");
        assert_eq!(
            verify_access(b"", &token, now),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn a_refresh_token_is_prefixed_random_and_stored_as_its_hash() {
        let (token, hash) = new_refresh_token();
        assert!(token.starts_with("mqr_"));
        assert_eq!(token.len(), 4 + 43);
        let random = URL_SAFE_NO_PAD.decode(&token[4..]).expect("base64url");
        assert_eq!(random.len(), 32);
        assert_eq!(hash, hash_secret(&token));
        assert_eq!(hash.len(), 64);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
        let (other, other_hash) = new_refresh_token();
        assert_ne!(token, other);
        assert_ne!(hash, other_hash);
    }

    #[test]
    fn hash_secret_is_sha256_hex() {
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn an_api_token_names_its_row_and_parses_back() {
        let id = Uuid::now_v7();
        let (token, hash) = new_api_token(id);
        let prefix = format!("mqt_{}_", id.simple());
        assert!(token.starts_with(&prefix), "{token}");
        assert_eq!(token.len(), prefix.len() + 43);
        let (parsed_id, secret) = parse_api_token(&token).expect("parses");
        assert_eq!(parsed_id, id);
        assert_eq!(format!("{prefix}{secret}"), token);
        assert!(secret_matches(&secret, &hash));
        assert!(
            !secret_matches(&token, &hash),
            "the hash is of the secret part"
        );
    }

    #[test]
    fn an_api_token_whose_secret_contains_underscores_still_parses() {
        let id = Uuid::now_v7();
        let secret = format!("_{}", "a_".repeat(21));
        assert_eq!(secret.len(), 43);
        let token = format!("mqt_{}_{secret}", id.simple());
        assert_eq!(parse_api_token(&token), Some((id, secret)));
    }

    #[test]
    fn a_string_not_shaped_like_an_api_token_does_not_parse() {
        let id = Uuid::now_v7();
        let (token, _) = new_api_token(id);
        let good_secret = &token[token.len() - 43..];
        for bad in [
            String::new(),
            "mqt_".to_owned(),
            format!("mqt_{}", id.simple()),
            format!("mqt_{}_", id.simple()),
            format!("mqr_{}_{good_secret}", id.simple()),
            format!("mqt_{}_{good_secret}", id.hyphenated()),
            format!("mqt_{}_{}", id.simple(), &good_secret[1..]),
            format!("mqt_{}_{good_secret}x", id.simple()),
            format!("mqt_{}_{}!", id.simple(), &good_secret[1..]),
            format!("mqt_{}_{good_secret}", &id.simple().to_string()[1..]),
            format!("mqt_{}é_{good_secret}", &id.simple().to_string()[2..]),
        ] {
            assert_eq!(parse_api_token(&bad), None, "{bad}");
        }
    }

    #[test]
    fn a_secret_matches_only_its_own_hash() {
        let (token, hash) = new_refresh_token();
        assert!(secret_matches(&token, &hash));
        let (other, _) = new_refresh_token();
        assert!(!secret_matches(&other, &hash));
        assert!(!secret_matches(&token, &hash[..63]));
        assert!(!secret_matches(&token, ""));
        assert!(!secret_matches(&token, &hash.to_uppercase()));
    }

    #[test]
    fn a_secret_shows_only_what_kind_of_token_it_is() {
        let id = Uuid::parse_str("0193e4b2-0000-7000-8000-000000000000").expect("id");
        let (api, _) = new_api_token(id);
        let (refresh, _) = new_refresh_token();
        let access = issue_access(
            &SECRET,
            Uuid::now_v7(),
            Uuid::now_v7(),
            at(1_767_225_600),
            ACCESS_TTL,
        )
        .expect("sign");
        assert_eq!(
            format!("{:?}", Secret::new(api.clone())),
            "Secret(mqt_0193…)"
        );
        assert_eq!(
            format!("{:?}", Secret::new(refresh.clone())),
            "Secret(mqr_…)"
        );
        assert_eq!(format!("{:?}", Secret::new(access.clone())), "Secret(eyJ…)");
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(…)");
        assert_eq!(format!("{:?}", Secret::new("mqt_")), "Secret(mqt_…)");
        assert_eq!(format!("{:?}", Secret::new("mqt_é")), "Secret(mqt_…)");
        for token in [api, refresh, access] {
            let secret = Secret::new(token.clone());
            let shown = format!("{secret:?} {secret:#?}");
            assert!(!shown.contains(&token[token.len() - 20..]), "{shown}");
            assert_eq!(secret.expose(), token);
        }
    }
}
