//! Marquee's projector: folds the log into read models and serves typed reads of them.
//!
//! What lives here: the read-model schema (`migrations/sqlite`, `migrations/postgres`), the
//! [`ReadModels`] handle on the read-model database, the [`Projector`] loop that follows the log
//! and applies facts in batches, and the typed queries the query API runs ([`queries`]).
//! Every batch writes its rows and the checkpoint in one transaction, so a restart or a
//! redelivered fact never counts anything twice, and the read models can be dropped and rebuilt
//! from the log at any time.
//!
//! # Two modes, one apply path
//!
//! - Embedded: [`Projector::new`]`(store, read)` follows the log directly.
//! - Distributed: [`Projector::with_jetstream`]`(store, read, `[`JetStreamSource`]`)` consumes
//!   the relay's JetStream stream through a durable pull consumer; the log (`store`) fills any
//!   gap JetStream leaves and is followed directly while NATS is down.
//!
//! Both go through the same loop (skip at or below the checkpoint, fill gaps from the log, one
//! transaction per batch with the checkpoint, acknowledge after commit), and both run under a
//! lease ([`lease`], [`LeaseConfig`], [`Projector::with_lease`]): any number of projector
//! processes may share one read-model database, one applies and the rest stand by.
//! [`ReadModels::applied_position`] and [`ReadModels::lease_holder`] report progress and who
//! applies.
//!
//! Besides events and their seats, the read models hold the guest list (registrations with
//! attendees, answers, payments and tickets with their check-ins, see
//! [`ReadModels::guest_list`]), waitlist entries, and the timers a scheduler fires
//! ([`timers`]: [`ReadModels::due_timers`], [`ReadModels::next_timer_due`]).
//!
//! For listings there is full-text search (`event_search`: FTS5 on SQLite, a GIN-indexed
//! `tsvector` on Postgres) and several orders ([`queries::ListingFilter`]); for accounts, the
//! registrations they hold ([`ReadModels::holdings`], from `RegistrationHolderRecorded`); for
//! analysts, the analytics tables (`analytics_*`, a stable schema documented in
//! `docs/analytics.md` that BI tools may read directly; [`ReadModels::event_analytics`]).
//!
//! Personal data (attendee names, e-mail addresses, answers) arrives sealed and is opened with
//! the command side's keys ([`ReadModels::with_vault`]); an erased person reads as `[erased]`,
//! and `UserErased` replaces that person's data in the guest list and the waitlist at once (see
//! `personal`).
//!
//! [`ReadModels::rebuild`] ([`rebuild`]) refolds the whole log into shadow tables while the
//! live ones keep serving, then swaps them in atomically; the live projector resumes after it.
//! [`ReadModels::replay`] ([`Replay`]) applies facts from elsewhere (an export file) through the
//! same apply path, for a standalone copy of the read models.
//!
//! What must not live here: HTTP (that is `marquee-query-api`), business rules (the projector
//! records what facts say; it never decides anything — `marquee-domain` does), and writes to the
//! log.
//!
//! One code path serves SQLite and Postgres: sqlx's `Any` driver with portable SQL, ids and
//! timestamps as text, counts and money as BIGINT. See the migration files for the schema.

pub mod analytics;
mod apply;
mod error;
pub mod holdings;
mod jetstream;
pub mod lease;
mod personal;
mod projector;
pub mod queries;
mod read_models;
pub mod rebuild;
mod registrations;
mod replay;
mod rows;
mod source;
mod tables;
mod time;
pub mod timers;

pub use error::ProjectorError;
pub use jetstream::JetStreamSource;
pub use lease::{LeaseConfig, LeaseHolder};
pub use projector::Projector;
pub use read_models::{PROJECTION, ReadModels};
pub use rebuild::{PROJECTIONS, RebuildOptions, RebuildProgress, RebuildReport};
pub use replay::Replay;
pub use timers::{Timer, TimerKind};

/// The names of every read-model table the projection maintains (the checkpoint table aside),
/// for tests and tools that compare or inspect read models, e.g. a fresh rebuild against the
/// live tables.
pub const READ_MODEL_TABLES: [&str; 15] = tables::LIVE.read_models();
