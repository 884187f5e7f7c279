//! A batch's registrations, kept in memory and written set-based at the end of the batch.
//!
//! Before a batch is applied, every registration its facts name that already exists is loaded
//! with one `SELECT … WHERE registration_id IN (…)` per chunk. The facts then confirm and cancel
//! registrations in memory (a cancellation later in the same batch edits the buffered row), and
//! the batch writes every new or changed row with multi-row `INSERT … ON CONFLICT DO UPDATE`
//! statements of a few hundred rows. A batch of thousands of registration facts thus costs a
//! few dozen statements instead of one per fact, which is what capped a rebuild (see
//! `BENCHMARKS.md`, "Rebuilding the read models").
//!
//! The snapshot is exact: only the apply code writes `registrations`, and it runs with the
//! checkpoint row locked (see `apply`), so no other writer changes these rows mid-batch.

use std::collections::HashMap;

use sqlx::{AnyConnection, Row};

use crate::ProjectorError;
use crate::tables::Tables;

/// Rows per write statement (each binds [`COLUMN_COUNT`] parameters) and ids per load
/// statement. Far under SQLite's limit of 32,766 bound parameters, on purpose: sqlx binds
/// SQLite parameters by asking each one's name, which SQLite finds by a linear scan, so binding
/// costs the square of the parameter count. At 500 rows (4,000 parameters) a rebuild spent 60 %
/// of its CPU in `sqlite3_bind_parameter_name`; a few hundred parameters keep that negligible
/// while still folding a batch into a few dozen statements.
const CHUNK: usize = 50;
const ID_CHUNK: usize = 250;

/// The columns of `registrations`, in the order rows are bound.
const COLUMNS: &str = "registration_id, event_id, ticket_type_id, quantity, status, \
    confirmed_at, cancelled_at, last_position";
const COLUMN_COUNT: usize = 8;

/// A `registrations` row as stored.
struct RegistrationRow {
    registration_id: String,
    event_id: String,
    ticket_type_id: String,
    quantity: i64,
    status: String,
    confirmed_at: String,
    cancelled_at: Option<String>,
    last_position: i64,
}

/// A row this batch knows, and whether the batch changed it.
struct Known {
    row: RegistrationRow,
    /// New in this batch or cancelled by it: written at [`Registrations::flush`].
    dirty: bool,
}

/// What one confirmation carries into the read models.
pub(crate) struct Confirmation {
    pub registration_id: String,
    pub event_id: String,
    pub ticket_type_id: String,
    pub quantity: i64,
    pub confirmed_at: String,
    pub position: i64,
}

/// The registrations one batch reads and writes, by registration id.
#[derive(Default)]
pub(crate) struct Registrations {
    known: HashMap<String, Known>,
}

impl Registrations {
    /// Loads the stored rows among `ids` that this batch does not know yet; ids without a row
    /// stay unknown (a confirmation will create them).
    pub async fn load(
        &mut self,
        conn: &mut AnyConnection,
        tables: &Tables,
        ids: &[String],
    ) -> Result<(), ProjectorError> {
        let mut wanted: Vec<&String> = ids
            .iter()
            .filter(|id| !self.known.contains_key(*id))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        for chunk in wanted.chunks(ID_CHUNK) {
            let sql = tables
                .sql("SELECT {columns} FROM {registrations} WHERE registration_id IN ({ids})")
                .0
                .replace("{columns}", COLUMNS)
                .replace("{ids}", &placeholders(chunk.len(), 1));
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id.as_str());
            }
            for row in query.fetch_all(&mut *conn).await? {
                let row = RegistrationRow {
                    registration_id: row.try_get("registration_id")?,
                    event_id: row.try_get("event_id")?,
                    ticket_type_id: row.try_get("ticket_type_id")?,
                    quantity: row.try_get("quantity")?,
                    status: row.try_get("status")?,
                    confirmed_at: row.try_get("confirmed_at")?,
                    cancelled_at: row.try_get("cancelled_at")?,
                    last_position: row.try_get("last_position")?,
                };
                self.known
                    .insert(row.registration_id.clone(), Known { row, dirty: false });
            }
        }
        Ok(())
    }

    /// Records a new confirmed registration. False, changing nothing, when the registration
    /// already exists (whatever its status): a repeated confirmation counts once.
    pub fn confirm(&mut self, confirmation: Confirmation) -> bool {
        if self.known.contains_key(&confirmation.registration_id) {
            return false;
        }
        let row = RegistrationRow {
            registration_id: confirmation.registration_id,
            event_id: confirmation.event_id,
            ticket_type_id: confirmation.ticket_type_id,
            quantity: confirmation.quantity,
            status: "confirmed".to_owned(),
            confirmed_at: confirmation.confirmed_at,
            cancelled_at: None,
            last_position: confirmation.position,
        };
        self.known
            .insert(row.registration_id.clone(), Known { row, dirty: true });
        true
    }

    /// Cancels a confirmed registration. False, changing nothing, when there is no such
    /// registration or it is not confirmed: seats are freed once.
    pub fn cancel(&mut self, registration_id: &str, cancelled_at: String, position: i64) -> bool {
        match self.known.get_mut(registration_id) {
            Some(known) if known.row.status == "confirmed" => {
                known.row.status = "cancelled".to_owned();
                known.row.cancelled_at = Some(cancelled_at);
                known.row.last_position = position;
                known.dirty = true;
                true
            }
            _ => false,
        }
    }

    /// Writes every row the batch created or changed, a chunk of rows per statement.
    pub async fn flush(
        &mut self,
        conn: &mut AnyConnection,
        tables: &Tables,
    ) -> Result<(), ProjectorError> {
        let mut dirty: Vec<&RegistrationRow> = self
            .known
            .values()
            .filter(|k| k.dirty)
            .map(|k| &k.row)
            .collect();
        // Position order: the same statements for the same batch, whatever the map's order.
        dirty.sort_unstable_by_key(|r| r.last_position);
        for chunk in dirty.chunks(CHUNK) {
            // New rows are inserted; rows loaded at the start of the batch get their
            // cancellation. Every row appears once per statement (the map is by id), as
            // Postgres requires of `ON CONFLICT DO UPDATE`.
            let sql = tables
                .sql(
                    "INSERT INTO {registrations} ({columns}) VALUES {rows} \
                     ON CONFLICT (registration_id) DO UPDATE SET status = excluded.status, \
                     cancelled_at = excluded.cancelled_at, last_position = excluded.last_position",
                )
                .0
                .replace("{columns}", COLUMNS)
                .replace("{rows}", &placeholders(chunk.len(), COLUMN_COUNT));
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for row in chunk {
                query = query
                    .bind(row.registration_id.as_str())
                    .bind(row.event_id.as_str())
                    .bind(row.ticket_type_id.as_str())
                    .bind(row.quantity)
                    .bind(row.status.as_str())
                    .bind(row.confirmed_at.as_str())
                    .bind(row.cancelled_at.as_deref())
                    .bind(row.last_position);
            }
            query.execute(&mut *conn).await?;
        }
        for known in self.known.values_mut() {
            known.dirty = false;
        }
        Ok(())
    }
}

/// `rows` groups of `columns` numbered placeholders: `($1, $2), ($3, $4)`; a single column
/// gives a plain list, `$1, $2`.
fn placeholders(rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 6);
    let mut n = 0;
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        if columns > 1 {
            sql.push('(');
        }
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            n += 1;
            sql.push('$');
            sql.push_str(&n.to_string());
        }
        if columns > 1 {
            sql.push(')');
        }
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_number_rows_of_columns_in_order() {
        assert_eq!(placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(placeholders(3, 1), "$1, $2, $3");
    }
}
