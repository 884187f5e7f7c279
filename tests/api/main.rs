//! Black-box tests: the real `marquee` binary, spoken to over HTTP.
//!
//! Every scenario runs on the embedded SQLite default and on Postgres (test names containing
//! `postgres`), each with its own fresh data directory or database.

mod bad_input;
mod distributed;
mod helpers;
mod idempotency;
mod readme;
mod rush;
mod ticketing;
mod walking_skeleton;
