-- Paid holds, payments, waitlists, check-in and timers (issue 9). Postgres flavour: the same
-- schema as the SQLite file, plus byte-order ("C") collation on the timers' due time and id, so
-- that "oldest first" is the text order the projector writes.
--
-- The read models before this migration were folded by a projector that ignored these facts
-- (holds, payments, waitlist offers, check-ins), and the guest list needs attendees, answers and
-- tickets that no SQL can fill in from the old rows. So the projection starts over: every
-- read-model table is emptied and the checkpoint goes back to 0, and the projector refolds the
-- whole log into the new shape the next time it runs. The log is the source of truth; nothing
-- is lost. (On a large log, `marquee projections rebuild` does the same off to the side.)

-- Seats per event: held for payment, kept for waitlist offers, waitlist entries in line, and
-- how many entries ever joined the waitlist (the next entry's `seq`). `available` now means
-- capacity - (confirmed + held + offered), never below 0.
ALTER TABLE event_listing ADD COLUMN held BIGINT NOT NULL DEFAULT 0;
ALTER TABLE event_listing ADD COLUMN offered BIGINT NOT NULL DEFAULT 0;
ALTER TABLE event_listing ADD COLUMN waitlist BIGINT NOT NULL DEFAULT 0;
ALTER TABLE event_listing ADD COLUMN waitlist_joined BIGINT NOT NULL DEFAULT 0;

-- Per ticket type: `held` seats of unpaid holds, `offered` seats kept for open waitlist offers,
-- `waitlist` entries still waiting for an offer. `available` = min(quantity - confirmed - held -
-- offered, event capacity - event-wide (confirmed + held + offered)), never below 0: the
-- domain's `Event::available`.
ALTER TABLE event_capacity ADD COLUMN held BIGINT NOT NULL DEFAULT 0;
ALTER TABLE event_capacity ADD COLUMN offered BIGINT NOT NULL DEFAULT 0;
ALTER TABLE event_capacity ADD COLUMN waitlist BIGINT NOT NULL DEFAULT 0;

-- One row per registration: the guest list. Holds personal data (attendee name, e-mail address,
-- answers), which the guest list needs; erasing a person's data from the log (crypto-shredding)
-- and rebuilding removes it here too.
DROP TABLE registrations;
CREATE TABLE registrations (
    registration_id TEXT PRIMARY KEY NOT NULL,
    event_id TEXT NOT NULL,
    ticket_type_id TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    -- held | confirmed | cancelled | expired
    status TEXT NOT NULL,
    attendee_name TEXT NOT NULL,
    attendee_email TEXT NOT NULL,
    -- Answers to the registration questions by question id, as a JSON object ('{}' for none).
    answers TEXT NOT NULL,
    -- What the seats cost in all; both NULL for free seats.
    price_minor BIGINT,
    price_currency TEXT,
    hold_expires_at TEXT,
    -- The payment that confirmed the registration, or until then the last one reported for it.
    payment_id TEXT,
    -- pending | declined | paid | refund_due | refunded; NULL while no payment is known.
    payment_status TEXT,
    -- When the registration was made (seats held or confirmed), and the position of that fact:
    -- guest-list order.
    registered_at TEXT NOT NULL,
    registered_position BIGINT NOT NULL,
    confirmed_at TEXT,
    cancelled_at TEXT,
    expired_at TEXT,
    -- The time of the last fact that changed the row (its own time, or when the log recorded
    -- it for facts without one) and that fact's position.
    updated_at TEXT NOT NULL,
    last_position BIGINT NOT NULL
);
CREATE INDEX registrations_by_event ON registrations (event_id, registered_position);

-- One row per ticket (one seat of one registration), issued with the registration, valid at the
-- door once the registration is confirmed. `seat` is its place among the registration's codes.
CREATE TABLE tickets (
    code TEXT NOT NULL,
    event_id TEXT NOT NULL,
    registration_id TEXT NOT NULL,
    ticket_type_id TEXT NOT NULL,
    seat BIGINT NOT NULL,
    checked_in_at TEXT,
    check_in_nonce TEXT,
    last_position BIGINT NOT NULL,
    PRIMARY KEY (code, event_id)
);
CREATE INDEX tickets_by_registration ON tickets (registration_id, seat);

-- One row per waitlist entry. `seq` is join order within the event, from 0.
CREATE TABLE waitlist_entries (
    entry_id TEXT PRIMARY KEY NOT NULL,
    event_id TEXT NOT NULL,
    ticket_type_id TEXT NOT NULL,
    attendee_name TEXT NOT NULL,
    attendee_email TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    -- waiting | offered | claimed | expired | left | closed
    status TEXT NOT NULL,
    seq BIGINT NOT NULL,
    joined_at TEXT NOT NULL,
    offer_expires_at TEXT,
    registration_id TEXT,
    updated_at TEXT NOT NULL,
    last_position BIGINT NOT NULL
);
CREATE INDEX waitlist_entries_by_event ON waitlist_entries (event_id, seq);

-- What the scheduler must do and when: one row per pending timed command. `timer_id` is
-- `<kind>:<target_id>`. Kinds: `expire_hold` (target: registration id), `expire_offer`
-- (target: waitlist entry id), `refund` (target: payment id).
CREATE TABLE timers (
    timer_id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    event_id TEXT NOT NULL,
    target_id TEXT NOT NULL,
    due_at TEXT COLLATE "C" NOT NULL,
    last_position BIGINT NOT NULL
);
CREATE INDEX timers_by_due ON timers (due_at, timer_id);

DELETE FROM venues;
DELETE FROM event_listing;
DELETE FROM event_capacity;
UPDATE projector_checkpoints SET position = 0 WHERE projection = 'read_models';
