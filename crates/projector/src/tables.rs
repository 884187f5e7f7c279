//! Which tables a batch writes: the live read models the query API serves, or the shadow set a
//! rebuild fills beside them (see `rebuild`). The apply code is the same for both; only the
//! table names in its SQL differ.

use sqlx::AssertSqlSafe;

/// The names of one complete set of read-model tables and of the checkpoint table that goes
/// with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tables {
    /// Checkpoint rows (`projection`, `position`).
    pub checkpoints: &'static str,
    /// One row per venue.
    pub venues: &'static str,
    /// One row per event.
    pub listing: &'static str,
    /// One row per ticket type.
    pub capacity: &'static str,
    /// One row per registration: the guest list.
    pub registrations: &'static str,
    /// One row per ticket code, with its check-in.
    pub tickets: &'static str,
    /// One row per waitlist entry.
    pub waitlist: &'static str,
    /// One row per pending timed command, for the scheduler.
    pub timers: &'static str,
    /// One row per event's title and description, for full-text search (FTS5 on SQLite, a
    /// GIN-indexed `tsvector` on Postgres).
    pub search: &'static str,
    /// Analytics: one row per event.
    pub analytics_events: &'static str,
    /// Analytics: one row per ticket type.
    pub analytics_ticket_types: &'static str,
    /// Analytics: seats and money per UTC day, ticket type and currency.
    pub analytics_sales: &'static str,
    /// Analytics: one row per payment received or refunded.
    pub analytics_payments: &'static str,
    /// Analytics: tickets let in per UTC hour and ticket type.
    pub analytics_check_ins: &'static str,
    /// Analytics: every registration question an event asked.
    pub analytics_questions: &'static str,
    /// Analytics: confirmed registrations per answer of a closed question.
    pub analytics_answers: &'static str,
}

/// The tables the migrations create and the query API reads.
pub(crate) const LIVE: Tables = Tables {
    checkpoints: "projector_checkpoints",
    venues: "venues",
    listing: "event_listing",
    capacity: "event_capacity",
    registrations: "registrations",
    tickets: "tickets",
    waitlist: "waitlist_entries",
    timers: "timers",
    search: "event_search",
    analytics_events: "analytics_events",
    analytics_ticket_types: "analytics_ticket_types",
    analytics_sales: "analytics_sales_daily",
    analytics_payments: "analytics_payments",
    analytics_check_ins: "analytics_check_ins",
    analytics_questions: "analytics_questions",
    analytics_answers: "analytics_answers",
};

/// Where a rebuild folds the log before the swap. Fixed names, so that a rebuild that died half
/// way leaves tables the next one recognises and drops.
pub(crate) const SHADOW: Tables = Tables {
    checkpoints: "projector_checkpoints__rebuild",
    venues: "venues__rebuild",
    listing: "event_listing__rebuild",
    capacity: "event_capacity__rebuild",
    registrations: "registrations__rebuild",
    tickets: "tickets__rebuild",
    waitlist: "waitlist_entries__rebuild",
    timers: "timers__rebuild",
    search: "event_search__rebuild",
    analytics_events: "analytics_events__rebuild",
    analytics_ticket_types: "analytics_ticket_types__rebuild",
    analytics_sales: "analytics_sales_daily__rebuild",
    analytics_payments: "analytics_payments__rebuild",
    analytics_check_ins: "analytics_check_ins__rebuild",
    analytics_questions: "analytics_questions__rebuild",
    analytics_answers: "analytics_answers__rebuild",
};

/// What the live read-model tables are renamed to for the instant of the swap, then dropped.
pub(crate) const OLD_SUFFIX: &str = "__old";

impl Tables {
    /// The read-model tables (the checkpoint table is handled apart: the swap moves its
    /// position, not the table).
    pub const fn read_models(&self) -> [&'static str; 15] {
        [
            self.venues,
            self.listing,
            self.capacity,
            self.registrations,
            self.tickets,
            self.waitlist,
            self.timers,
            self.search,
            self.analytics_events,
            self.analytics_ticket_types,
            self.analytics_sales,
            self.analytics_payments,
            self.analytics_check_ins,
            self.analytics_questions,
            self.analytics_answers,
        ]
    }

    /// `template` with `{checkpoints}`, `{venues}`, `{listing}`, `{capacity}`,
    /// `{registrations}`, `{tickets}`, `{waitlist}`, `{timers}`, `{search}` and the analytics
    /// tables' `{analytics_…}` replaced by this set's names.
    /// The names are compile-time constants, never input (nor is the rest of every template),
    /// hence safe to splice into SQL.
    pub fn sql(&self, template: &str) -> AssertSqlSafe<String> {
        let mut sql = template.to_owned();
        for (placeholder, name) in [
            ("{checkpoints}", self.checkpoints),
            ("{venues}", self.venues),
            ("{listing}", self.listing),
            ("{capacity}", self.capacity),
            ("{registrations}", self.registrations),
            ("{tickets}", self.tickets),
            ("{waitlist}", self.waitlist),
            ("{timers}", self.timers),
            ("{search}", self.search),
            ("{analytics_events}", self.analytics_events),
            ("{analytics_ticket_types}", self.analytics_ticket_types),
            ("{analytics_sales}", self.analytics_sales),
            ("{analytics_payments}", self.analytics_payments),
            ("{analytics_check_ins}", self.analytics_check_ins),
            ("{analytics_questions}", self.analytics_questions),
            ("{analytics_answers}", self.analytics_answers),
        ] {
            if sql.contains(placeholder) {
                sql = sql.replace(placeholder, name);
            }
        }
        AssertSqlSafe(sql)
    }
}
