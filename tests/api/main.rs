//! Black-box tests: the real `marquee` binary, spoken to over HTTP.
//!
//! Every scenario runs on the embedded SQLite default and on Postgres (test names containing
//! `postgres`), each with its own fresh data directory or database. `fuzz` is the exception:
//! it drives the command API's router in process, where a million requests take minutes.

mod access_matrix;
mod bad_input;
mod distributed;
mod erasure;
mod fuzz;
mod helpers;
mod idempotency;
mod logs;
mod notifications;
mod rate_limits;
mod readme;
mod reporting;
mod rush;
mod ticketing;
mod tokens;
mod walking_skeleton;
