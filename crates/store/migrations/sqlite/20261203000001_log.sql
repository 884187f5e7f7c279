-- The log. Facts are never updated or deleted.
-- position is the INTEGER PRIMARY KEY (the rowid), assigned by the single writer as max + 1
-- inside its write transaction, so the log has no gaps.
CREATE TABLE facts (
    position       INTEGER PRIMARY KEY,
    stream         TEXT    NOT NULL,
    revision       INTEGER NOT NULL,
    fact_id        TEXT    NOT NULL UNIQUE,
    fact_type      TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    data           TEXT    NOT NULL,  -- JSON
    metadata       TEXT    NOT NULL,  -- JSON: correlation_id, causation_id, actor
    recorded_at    TEXT    NOT NULL,  -- RFC 3339 UTC, microseconds, fixed width
    UNIQUE (stream, revision)
);

-- Remembered command answers. created_at uses the same fixed-width text as recorded_at, so
-- comparing strings compares times.
CREATE TABLE idempotency_keys (
    key          TEXT    PRIMARY KEY,
    request_hash TEXT    NOT NULL,
    status       INTEGER NOT NULL,
    body         TEXT    NOT NULL,  -- JSON
    created_at   TEXT    NOT NULL
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

-- A cache of aggregate states; deleting rows changes no answer.
CREATE TABLE snapshots (
    stream         TEXT    PRIMARY KEY,
    revision       INTEGER NOT NULL,
    schema_version INTEGER NOT NULL,
    state          TEXT    NOT NULL,  -- JSON
    updated_at     TEXT    NOT NULL
);
