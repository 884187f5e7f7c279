//! Marquee's security primitives for accounts, organizations and access: argon2id password
//! hashes and the password policy ([`password`]); HS256 access tokens, refresh tokens and API
//! tokens ([`tokens`]); the auth tables — shared signing secrets, credentials, sessions, API
//! tokens, per-person keys — behind [`AuthStore`] on SQLite or Postgres ([`db`]); crypto-shredding
//! of personal data ([`vault`]); in-process token-bucket rate limits ([`ratelimit`]); and the
//! organization [`Role`]s.
//!
//! What lives here: building blocks that are easy to use safely — secrets that cannot be logged
//! by accident, comparisons in constant time, tokens that are verified against a time passed in.
//! What must not: business rules about who may do what (which role may call which route, what a
//! user or an organization is — those are facts and decisions in `marquee-domain` and the command
//! API), any HTTP (no axum: the services map [`AuthError`] and [`tokens::TokenError`] to their
//! problem responses), and the log (no `marquee-store` outside tests). Nothing here ever writes a
//! password, a token or a key into a fact, a log line or an error message.

#![warn(missing_docs)]

pub mod access;
pub mod db;
mod error;
pub mod password;
pub mod ratelimit;
mod role;
pub mod tokens;
pub mod vault;

pub use access::{AccessError, Authenticator, Directory, Principal};
pub use db::{ApiTokenRecord, AuthStore, NewApiToken, email_key};
pub use error::AuthError;
pub use password::{Password, PasswordPolicyError};
pub use ratelimit::RateLimiter;
pub use role::Role;
pub use tokens::{ACCESS_TTL, AccessClaims, REFRESH_TTL, Secret, TokenError};
pub use vault::{Opened, Vault};
