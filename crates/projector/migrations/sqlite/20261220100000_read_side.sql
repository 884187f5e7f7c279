-- The read side for HTTP clients and analysts (issue 6): full-text search and sorting of the
-- listing, the account holding each registration ("my tickets"), guest-list search, and the
-- analytics tables. SQLite flavour; the Postgres file is the same schema, with Postgres's own
-- full-text search instead of FTS5.
--
-- Like the ticketing migration, the projection starts over at the end: the holders, the
-- search rows and the analytics come from facts the projector read past before (holders were
-- ignored, analytics did not exist), and no SQL can fill them in from the old rows. Every
-- read-model table is emptied and the checkpoint goes back to 0; the projector refolds the
-- whole log into the new shape the next time it runs. Nothing is lost: the log is the source
-- of truth. (On a large log, `marquee projections rebuild` does the same off to the side.)

-- Listing order by title: the title trimmed and lower-cased (as `city_key`), compared byte by
-- byte.
ALTER TABLE event_listing ADD COLUMN title_key TEXT NOT NULL DEFAULT '';
CREATE INDEX event_listing_by_title ON event_listing (title_key, event_id);

-- The account (user id) holding a registration, from `RegistrationHolderRecorded`; NULL until
-- that fact (and for registrations made before holders were recorded). `attendee_key` is the
-- attendee's name and e-mail address lower-cased, for the guest list's search.
ALTER TABLE registrations ADD COLUMN holder TEXT;
ALTER TABLE registrations ADD COLUMN attendee_key TEXT NOT NULL DEFAULT '';
CREATE INDEX registrations_by_holder ON registrations (holder, registered_position);

-- Full-text search over events' titles and descriptions: one row per event, kept by the
-- projector whenever a title or description changes. `unicode61` tokens, case-folded, accents
-- kept (as Postgres's `simple` configuration does).
CREATE VIRTUAL TABLE event_search USING fts5(
    event_id UNINDEXED,
    title,
    description,
    tokenize = 'unicode61 remove_diacritics 0'
);

-- ---- analytics tables: a stable, documented schema (docs/analytics.md) -----------------------
-- Changes only by adding tables or columns. Days and hours are UTC: `day` is `YYYY-MM-DD`,
-- `hour` is `YYYY-MM-DDTHH:00:00Z`. Money is BIGINT in the currency's minor unit. No personal
-- data: no names, addresses or free-text answers.

-- One row per event (drafts included).
CREATE TABLE analytics_events (
    event_id TEXT PRIMARY KEY NOT NULL,
    venue_id TEXT NOT NULL,
    title TEXT NOT NULL,
    category TEXT NOT NULL,
    status TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    ends_at TEXT NOT NULL,
    timezone TEXT NOT NULL,
    capacity BIGINT NOT NULL,
    seats_confirmed BIGINT NOT NULL,
    seats_held BIGINT NOT NULL,
    published_at TEXT,
    cancelled_at TEXT,
    last_position BIGINT NOT NULL
);

-- One row per ticket type, with its current seats.
CREATE TABLE analytics_ticket_types (
    event_id TEXT NOT NULL,
    ticket_type_id TEXT NOT NULL,
    name TEXT NOT NULL,
    price_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    seats_confirmed BIGINT NOT NULL,
    seats_held BIGINT NOT NULL,
    seats_available BIGINT NOT NULL,
    added_position BIGINT NOT NULL,
    last_position BIGINT NOT NULL,
    PRIMARY KEY (event_id, ticket_type_id)
);

-- What happened to an event's seats and money, per UTC day, ticket type and currency.
CREATE TABLE analytics_sales_daily (
    event_id TEXT NOT NULL,
    day TEXT NOT NULL,
    ticket_type_id TEXT NOT NULL,
    currency TEXT NOT NULL,
    orders_confirmed BIGINT NOT NULL,
    seats_confirmed BIGINT NOT NULL,
    revenue_minor BIGINT NOT NULL,
    holds_placed BIGINT NOT NULL,
    seats_held BIGINT NOT NULL,
    holds_expired BIGINT NOT NULL,
    seats_expired BIGINT NOT NULL,
    holds_cancelled BIGINT NOT NULL,
    orders_cancelled BIGINT NOT NULL,
    seats_cancelled BIGINT NOT NULL,
    cancelled_revenue_minor BIGINT NOT NULL,
    payments_received BIGINT NOT NULL,
    received_minor BIGINT NOT NULL,
    refunds_due BIGINT NOT NULL,
    refund_due_minor BIGINT NOT NULL,
    refunds_completed BIGINT NOT NULL,
    refunded_minor BIGINT NOT NULL,
    last_position BIGINT NOT NULL,
    PRIMARY KEY (event_id, day, ticket_type_id, currency)
);

-- One row per payment received or refunded: the money ledger.
CREATE TABLE analytics_payments (
    event_id TEXT NOT NULL,
    payment_id TEXT NOT NULL,
    registration_id TEXT NOT NULL,
    ticket_type_id TEXT NOT NULL,
    currency TEXT NOT NULL,
    received_minor BIGINT NOT NULL,
    received_at TEXT,
    refund_reason TEXT,
    refund_due_minor BIGINT NOT NULL,
    refund_due_at TEXT,
    refunded_at TEXT,
    last_position BIGINT NOT NULL,
    PRIMARY KEY (event_id, payment_id)
);
CREATE INDEX analytics_payments_by_registration ON analytics_payments (registration_id);

-- Tickets let in, per UTC hour of the scan and ticket type.
CREATE TABLE analytics_check_ins (
    event_id TEXT NOT NULL,
    hour TEXT NOT NULL,
    ticket_type_id TEXT NOT NULL,
    check_ins BIGINT NOT NULL,
    reverted BIGINT NOT NULL,
    last_position BIGINT NOT NULL,
    PRIMARY KEY (event_id, hour, ticket_type_id)
);

-- Every registration question an event ever asked.
CREATE TABLE analytics_questions (
    event_id TEXT NOT NULL,
    question_id TEXT NOT NULL,
    label TEXT NOT NULL,
    kind TEXT NOT NULL,
    asked BIGINT NOT NULL,
    ordinal BIGINT NOT NULL,
    answered BIGINT NOT NULL,
    last_position BIGINT NOT NULL,
    PRIMARY KEY (event_id, question_id)
);

-- How many confirmed registrations gave each answer to a choice, country or age-range question.
-- No `last_position`: an erasure takes answers away, and the rows must read as if the erased
-- answers had never been given.
CREATE TABLE analytics_answers (
    event_id TEXT NOT NULL,
    question_id TEXT NOT NULL,
    answer TEXT NOT NULL,
    registrations BIGINT NOT NULL,
    PRIMARY KEY (event_id, question_id, answer)
);

DELETE FROM venues;
DELETE FROM event_listing;
DELETE FROM event_capacity;
DELETE FROM registrations;
DELETE FROM tickets;
DELETE FROM waitlist_entries;
DELETE FROM timers;
UPDATE projector_checkpoints SET position = 0 WHERE projection = 'read_models';
