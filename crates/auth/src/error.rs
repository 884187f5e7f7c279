//! The crate's one error type for everything but token verification (which has its own
//! [`crate::TokenError`]) and the password policy ([`crate::PasswordPolicyError`]).

/// Why an auth operation failed. Each variant says how an HTTP service should answer it; none
/// carries a password, a token, a key or an e-mail address, so any of them may be logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Another account already uses this e-mail address (compared trimmed and case-insensitively).
    /// 409 `conflict`.
    #[error("the e-mail address is already registered")]
    EmailTaken,
    /// This user already has credentials; change them with `set_password`. 409 `conflict`.
    #[error("the user already has credentials")]
    CredentialsExist,
    /// The user, session or API token asked for does not exist. 404 `not_found`.
    #[error("not found")]
    NotFound,
    /// The refresh token is unknown, expired, or its session is revoked. 401 `unauthorized`.
    #[error("the refresh token is unknown, expired or revoked")]
    InvalidRefresh,
    /// A refresh token that was already exchanged came back: it was stolen, or the client raced
    /// itself. Its whole session is now revoked. 401 `unauthorized` (and worth a security log
    /// line naming the session).
    #[error("a refresh token was used twice; its session is revoked")]
    RefreshReused,
    /// The person's key was erased: nothing can be sealed for this person id any more. 409
    /// `conflict` (the person asked to be forgotten).
    #[error("the person's key was erased; nothing can be sealed for them any more")]
    PersonErased,
    /// A person id is empty, longer than 64 characters, or holds characters other than ASCII
    /// letters, digits, `-` and `_`. A programming error: 500.
    #[error("invalid person id")]
    InvalidPersonId,
    /// A value that says it is sealed cannot be opened: malformed, tampered with, or sealed
    /// under another key. Never a panic; the reader decides whether to skip it.
    #[error("sealed value cannot be opened: {0}")]
    BadSeal(&'static str),
    /// Hashing a password or signing a token failed (e.g. a signing secret that is too short).
    /// 500.
    #[error("cryptographic operation failed: {0}")]
    Crypto(String),
    /// The database URL names no engine this build knows; only its scheme is kept, so a
    /// password in the URL never reaches a log. 500 at start-up.
    #[error(
        "unsupported auth database URL scheme `{0}` (expected sqlite://, postgres:// or memory:)"
    )]
    UnsupportedUrl(String),
    /// The database failed, or its migrations did. 500.
    #[error("auth database error: {0}")]
    Database(String),
    /// A row holds a value this build cannot read back (a malformed id, time, role or key). 500.
    #[error("corrupt auth row: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for AuthError {
    fn from(error: sqlx::Error) -> Self {
        AuthError::Database(error.to_string())
    }
}

impl From<sqlx::migrate::MigrateError> for AuthError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        AuthError::Database(format!("migration: {error}"))
    }
}
