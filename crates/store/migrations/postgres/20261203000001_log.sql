-- The log. Facts are never updated or deleted.
-- position has no sequence on purpose: sequences hand out numbers at insert time and
-- transactions commit in another order, which is how tailing readers skip facts. The single
-- batch writer assigns max + 1 under an advisory transaction lock instead (see src/postgres.rs).
CREATE TABLE facts (
    position       BIGINT      PRIMARY KEY,
    stream         TEXT        NOT NULL,
    revision       BIGINT      NOT NULL,
    fact_id        UUID        NOT NULL UNIQUE,
    fact_type      TEXT        NOT NULL,
    schema_version INTEGER     NOT NULL,
    data           JSONB       NOT NULL,
    metadata       JSONB       NOT NULL,  -- correlation_id, causation_id, actor
    recorded_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (stream, revision)
);

-- Remembered command answers.
CREATE TABLE idempotency_keys (
    key          TEXT        PRIMARY KEY,
    request_hash TEXT        NOT NULL,
    status       INTEGER     NOT NULL,
    body         JSONB       NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

-- A cache of aggregate states; deleting rows changes no answer.
CREATE TABLE snapshots (
    stream         TEXT        PRIMARY KEY,
    revision       BIGINT      NOT NULL,
    schema_version INTEGER     NOT NULL,
    state          JSONB       NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);
