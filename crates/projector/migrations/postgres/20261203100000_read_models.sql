-- Read models folded from the log by marquee-projector. Postgres flavour: the same schema as the
-- SQLite file, plus byte-order ("C") collation on the listing's keyset columns so that pagination
-- order is the text order the projector writes. Everything here can be dropped and rebuilt from
-- the log. Timestamps are RFC 3339
-- UTC text in one fixed format (`2026-06-01T18:00:00.000000Z`) so that text order is time order;
-- ids are lower-case hyphenated UUID text; counts and money are BIGINT.

-- The last log position each projection applied, written in the same transaction as its rows.
CREATE TABLE projector_checkpoints (
    projection TEXT PRIMARY KEY NOT NULL,
    position BIGINT NOT NULL
);
INSERT INTO projector_checkpoints (projection, position) VALUES ('read_models', 0);

-- One row per venue.
CREATE TABLE venues (
    venue_id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    city TEXT NOT NULL,
    address TEXT,
    capacity BIGINT NOT NULL,
    timezone TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_position BIGINT NOT NULL
);

-- One row per event (the happening), drafts included; the API lists only published and
-- cancelled ones. `*_key` columns are lower-cased copies for case-insensitive filters.
-- `available` = capacity - confirmed (never below 0).
CREATE TABLE event_listing (
    event_id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    venue_id TEXT NOT NULL,
    venue_name TEXT NOT NULL,
    city TEXT NOT NULL,
    city_key TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    category TEXT NOT NULL,
    category_key TEXT NOT NULL,
    status TEXT NOT NULL,
    starts_at TEXT COLLATE "C" NOT NULL,
    ends_at TEXT NOT NULL,
    timezone TEXT NOT NULL,
    capacity BIGINT NOT NULL,
    confirmed BIGINT NOT NULL,
    available BIGINT NOT NULL,
    max_per_order BIGINT NOT NULL,
    min_price_minor BIGINT,
    min_price_currency TEXT,
    published_at TEXT,
    cancelled_at TEXT,
    last_position BIGINT NOT NULL
);
CREATE INDEX event_listing_by_start ON event_listing (starts_at, event_id);
CREATE INDEX event_listing_by_venue ON event_listing (venue_id);

-- One row per ticket type. `available` = min(quantity - confirmed, event capacity - event
-- confirmed), never below 0, kept right for every ticket type of an event whenever any changes.
CREATE TABLE event_capacity (
    event_id TEXT NOT NULL,
    ticket_type_id TEXT NOT NULL,
    name TEXT NOT NULL,
    price_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    confirmed BIGINT NOT NULL,
    available BIGINT NOT NULL,
    sales_start TEXT,
    sales_end TEXT,
    added_position BIGINT NOT NULL,
    PRIMARY KEY (event_id, ticket_type_id)
);

-- One row per registration, without personal data (attendees stay in the log only), so that a
-- cancellation releases exactly the seats its registration held, once.
CREATE TABLE registrations (
    registration_id TEXT PRIMARY KEY NOT NULL,
    event_id TEXT NOT NULL,
    ticket_type_id TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    status TEXT NOT NULL,
    confirmed_at TEXT NOT NULL,
    cancelled_at TEXT,
    last_position BIGINT NOT NULL
);
CREATE INDEX registrations_by_event ON registrations (event_id);
