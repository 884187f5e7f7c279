-- Which projector process may write the read models. One row per projection while a process
-- holds it: `holder` is that process's id, `expires_at` the database clock in Unix milliseconds
-- after which a standby may take it over. The holder renews it every few seconds; every batch
-- transaction re-checks (and locks) this row, so a projector that lost the lease can never write.
CREATE TABLE projector_leases (
    projection TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
