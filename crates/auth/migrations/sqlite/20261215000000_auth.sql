-- marquee-auth's tables: what access control needs that is not a fact in the log. Applied by
-- AuthStore::connect and tracked in its own `_marquee_auth_migrations` table, so they coexist
-- with the log's and the read models' migrations in one database.
-- Times are RFC 3339 UTC text with exactly six fractional digits (fixed width: comparing the
-- text compares the times); ids are hyphenated UUID text; secrets and keys are hex text.

-- Random secrets every process on this database shares (e.g. `jwt`, `vault_pepper`).
CREATE TABLE auth_secrets (
    name  TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

-- Sign-in credentials, one row per user. email_key is the trimmed lower-case address.
CREATE TABLE credentials (
    user_id       TEXT PRIMARY KEY NOT NULL,
    email_key     TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,  -- argon2id PHC string
    updated_at    TEXT NOT NULL
);

-- Signed-in sessions. refresh_hash is the SHA-256 of the session's current refresh token.
CREATE TABLE sessions (
    session_id   TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL,
    refresh_hash TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    revoked_at   TEXT
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- Refresh tokens already exchanged, remembered so that a second use is recognised as theft
-- and revokes the session. Deleted with their session.
CREATE TABLE spent_refresh_tokens (
    refresh_hash TEXT PRIMARY KEY NOT NULL,
    session_id   TEXT NOT NULL,
    spent_at     TEXT NOT NULL
);
CREATE INDEX spent_refresh_tokens_session_id ON spent_refresh_tokens (session_id);

-- API tokens of organizations. roles is a JSON array of role names.
CREATE TABLE api_tokens (
    token_id        TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL,
    name            TEXT NOT NULL,
    roles           TEXT NOT NULL,
    secret_hash     TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    last_used_at    TEXT,
    revoked_at      TEXT
);
CREATE INDEX api_tokens_organization_id ON api_tokens (organization_id);

-- Per-person AES-256-GCM keys of crypto-shredding. Erasure sets key to NULL and keeps the row,
-- so a person once erased is never given a new key (which would make old sealed data look
-- tampered with instead of erased).
CREATE TABLE person_keys (
    person_id  TEXT PRIMARY KEY NOT NULL,
    key        TEXT,
    created_at TEXT NOT NULL,
    erased_at  TEXT
);
