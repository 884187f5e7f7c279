-- The notifier's own state (issue 7): how far it has read the log, every notification it owes
-- (e-mail and webhook alike), each attempt at one, and the organizations' webhook endpoints.
-- Nothing here is a read model: it cannot be rebuilt from the log, because what was already
-- sent is a fact of the outside world, not of the log.

-- The last position whose notifications are planned (rows below), per notifier.
CREATE TABLE notifier_checkpoints (
    name TEXT PRIMARY KEY NOT NULL,
    position BIGINT NOT NULL
);

-- One row per notification, keyed by (fact, channel, recipient): a fact read twice plans
-- nothing twice. `recipient` is a person id (the vault's, never an address) for `email`, a
-- webhook id for `webhook`. `payload`: the e-mail, sealed under the recipient's key (so an
-- erasure shreds it); a ping's body; NULL for a fact's webhook delivery, whose body is read
-- from the log at each attempt.
CREATE TABLE notifications (
    fact_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    delivery_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    organization_id TEXT,
    position BIGINT,
    payload TEXT,
    -- Checked just before sending; the notification is dropped when it no longer holds, e.g.
    -- `hold:<stream>:<revision>:<registration id>` (the hold is still unpaid).
    requires TEXT,
    -- pending | sending | sent | failed | dropped
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_status BIGINT,
    last_error TEXT,
    next_attempt_at TEXT NOT NULL,
    claimed_by TEXT,
    claimed_until TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    sent_at TEXT,
    PRIMARY KEY (fact_id, channel, recipient)
);
CREATE INDEX notifications_due ON notifications (status, next_attempt_at);
CREATE INDEX notifications_by_recipient ON notifications (channel, recipient, created_at);

-- Every attempt at a notification, for the delivery log.
CREATE TABLE notification_attempts (
    delivery_id TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    -- sent | failed | gone | dropped
    outcome TEXT NOT NULL,
    status_code BIGINT,
    error TEXT,
    PRIMARY KEY (delivery_id, attempt)
);

-- Webhook endpoints. `secret` is sealed with the vault under `webhook-<id>` (removing the
-- endpoint erases that key); `after_position` is the position of the fact that added it: only
-- later facts are delivered. status: active | disabled (410 Gone) | removed.
CREATE TABLE webhook_endpoints (
    webhook_id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL,
    url TEXT NOT NULL,
    fact_types TEXT NOT NULL,
    secret TEXT NOT NULL,
    after_position BIGINT NOT NULL,
    status TEXT NOT NULL,
    disabled_reason TEXT,
    created_by TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_by_organization ON webhook_endpoints (organization_id, status);
