-- Erasure (crypto-shredding). Attendee names, e-mail addresses and answers reach the log sealed
-- with a key per person; the projector opens them and keeps, beside each registration and
-- waitlist entry, the id of the person they were sealed for (`sealed:v1:<person id>:…`; NULL for
-- data written before sealing existed, or already erased when written). When `UserErased` names
-- that person, the projector replaces their name, e-mail address and answers with `[erased]`
-- in these rows at once; a rebuild reads them erased from the log anyway. The person id is an
-- HMAC of the address under a secret pepper: it does not reveal the address.
ALTER TABLE registrations ADD COLUMN person_id TEXT;
ALTER TABLE waitlist_entries ADD COLUMN person_id TEXT;
CREATE INDEX registrations_by_person ON registrations (person_id);
CREATE INDEX waitlist_entries_by_person ON waitlist_entries (person_id);
