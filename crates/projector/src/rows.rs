//! A batch's rows of one table, kept in memory and written set-based at the end of the batch.
//!
//! Before a batch is applied, every row its facts name that already exists is loaded with one
//! `SELECT … WHERE key IN (…)` per chunk. The facts then change the rows in memory (a fact later
//! in the same batch sees what an earlier one did), and the batch writes every new or changed
//! row with multi-row `INSERT … ON CONFLICT` statements. A batch of thousands of facts thus
//! costs a few dozen statements instead of one per fact, which is what capped a rebuild (see
//! `BENCHMARKS.md`, "Rebuilding the read models").
//!
//! The snapshot is exact: only the apply code writes these tables, and it runs with the
//! checkpoint row locked (see `apply`), so no other writer changes these rows mid-batch.

use std::collections::HashMap;

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection};

use crate::ProjectorError;
use crate::tables::Tables;

/// Bound parameters per write statement, about. Far under SQLite's limit of 32,766, on purpose:
/// sqlx binds SQLite parameters by asking each one's name, which SQLite finds by a linear scan,
/// so binding costs the square of the parameter count. At 4,000 parameters a rebuild spent 60 %
/// of its CPU in `sqlite3_bind_parameter_name`; a few hundred keep that negligible while still
/// folding a batch into a few dozen statements.
const PARAMETERS: usize = 400;
/// Ids per load statement.
pub(crate) const ID_CHUNK: usize = 250;

/// A query being built, to bind a row's values to.
pub(crate) type AnyQuery<'q> = Query<'q, Any, AnyArguments>;

/// A row type a [`RowBuffer`] keeps: which table, which columns, how to read and bind it.
pub(crate) trait BufferedRow: Sized {
    /// The table's placeholder in [`Tables::sql`] templates, e.g. `{registrations}`.
    const TABLE: &'static str;
    /// The column [`RowBuffer::load`] looks rows up by.
    const LOAD_BY: &'static str;
    /// The primary key's columns, for `ON CONFLICT`.
    const PRIMARY_KEY: &'static [&'static str];
    /// Every column, in the order [`BufferedRow::bind`] binds them.
    const COLUMNS: &'static [&'static str];

    /// The buffer's key for this row: unique among the table's rows (the primary key, or what
    /// the facts name the row by where that differs, as for tickets).
    fn key(&self) -> String;
    /// Reads a row selected with [`BufferedRow::COLUMNS`].
    fn from_row(row: &AnyRow) -> Result<Self, ProjectorError>;
    /// Binds the row's values in [`BufferedRow::COLUMNS`] order.
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q>;
    /// Position of the last fact that changed the row: the write order.
    fn last_position(&self) -> i64;
}

/// What the batch has done to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// As loaded.
    Clean,
    /// Created by this batch: inserted, keeping a row that would somehow exist already.
    New,
    /// Loaded and changed by this batch: written over the stored row.
    Changed,
}

/// The rows of one table a batch reads and writes, by [`BufferedRow::key`].
pub(crate) struct RowBuffer<R> {
    known: HashMap<String, (R, State)>,
}

impl<R> Default for RowBuffer<R> {
    fn default() -> Self {
        Self {
            known: HashMap::new(),
        }
    }
}

impl<R: BufferedRow> RowBuffer<R> {
    /// Loads the stored rows whose [`BufferedRow::LOAD_BY`] column is among `ids`, except rows
    /// this batch already knows (its copy is newer). Ids without a row stay unknown.
    pub async fn load(
        &mut self,
        conn: &mut AnyConnection,
        tables: &Tables,
        ids: &[String],
    ) -> Result<(), ProjectorError> {
        let mut wanted: Vec<&String> = ids.iter().collect();
        wanted.sort_unstable();
        wanted.dedup();
        for chunk in wanted.chunks(ID_CHUNK) {
            let sql = tables.sql(&format!(
                "SELECT {} FROM {} WHERE {} IN ({})",
                R::COLUMNS.join(", "),
                R::TABLE,
                R::LOAD_BY,
                placeholders(chunk.len(), 1)
            ));
            // Planned with its values each time, never cached: a plan made while the table was
            // small (a sequential scan) would be kept as it grows, and a rebuild on Postgres
            // slowed to a crawl.
            let mut query = sqlx::query(sql).persistent(false);
            for id in chunk {
                query = query.bind(id.as_str());
            }
            let rows = query.fetch_all(&mut *conn).await?;
            self.remember(&rows)?;
        }
        Ok(())
    }

    /// Loads the stored rows matching `condition` (SQL over the table's columns, with `$1` bound
    /// to `value`), except rows this batch already knows.
    pub async fn load_where(
        &mut self,
        conn: &mut AnyConnection,
        tables: &Tables,
        condition: &'static str,
        value: &str,
    ) -> Result<(), ProjectorError> {
        let sql = tables.sql(&format!(
            "SELECT {} FROM {} WHERE {condition}",
            R::COLUMNS.join(", "),
            R::TABLE
        ));
        // Not cached either (see `load`).
        let rows = sqlx::query(sql)
            .persistent(false)
            .bind(value)
            .fetch_all(&mut *conn)
            .await?;
        self.remember(&rows)
    }

    fn remember(&mut self, rows: &[AnyRow]) -> Result<(), ProjectorError> {
        for row in rows {
            let row = R::from_row(row)?;
            self.known.entry(row.key()).or_insert((row, State::Clean));
        }
        Ok(())
    }

    /// The row with this key, if the batch knows it.
    pub fn get(&self, key: &str) -> Option<&R> {
        self.known.get(key).map(|(row, _)| row)
    }

    /// Every row the batch knows, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &R> {
        self.known.values().map(|(row, _)| row)
    }

    /// Adds a row the batch creates. False, changing nothing, when a row with its key is known:
    /// a repeated creation counts once.
    pub fn insert(&mut self, row: R) -> bool {
        let key = row.key();
        if self.known.contains_key(&key) {
            return false;
        }
        self.known.insert(key, (row, State::New));
        true
    }

    /// Lets `change` edit the row with this key; what it returns is returned, and a `Some`
    /// marks the row for writing (`None` means "nothing changed"). `None` for an unknown key.
    pub fn update<T>(&mut self, key: &str, change: impl FnOnce(&mut R) -> Option<T>) -> Option<T> {
        let (row, state) = self.known.get_mut(key)?;
        let changed = change(row)?;
        if *state == State::Clean {
            *state = State::Changed;
        }
        Some(changed)
    }

    /// [`RowBuffer::update`] for every known row `which` selects; returns what each changed
    /// row's `change` returned.
    pub fn update_all<T>(
        &mut self,
        which: impl Fn(&R) -> bool,
        mut change: impl FnMut(&mut R) -> Option<T>,
    ) -> Vec<T> {
        let mut changed = Vec::new();
        for (row, state) in self.known.values_mut() {
            if !which(row) {
                continue;
            }
            if let Some(value) = change(row) {
                if *state == State::Clean {
                    *state = State::Changed;
                }
                changed.push(value);
            }
        }
        changed
    }

    /// Writes every row the batch created or changed, a chunk of rows per statement.
    pub async fn flush(
        &mut self,
        conn: &mut AnyConnection,
        tables: &Tables,
    ) -> Result<(), ProjectorError> {
        let rows_per_statement = (PARAMETERS / R::COLUMNS.len()).max(1);
        for (state, on_conflict) in [
            // Created rows never overwrite a stored one (the domain keeps the first of two
            // rows with one key, e.g. a ticket code).
            (State::New, "DO NOTHING".to_owned()),
            (
                State::Changed,
                format!(
                    "DO UPDATE SET {}",
                    R::COLUMNS
                        .iter()
                        .filter(|c| !R::PRIMARY_KEY.contains(c))
                        .map(|c| format!("{c} = excluded.{c}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        ] {
            let mut dirty: Vec<(&String, &R)> = self
                .known
                .iter()
                .filter(|(_, (_, s))| *s == state)
                .map(|(key, (row, _))| (key, row))
                .collect();
            // Position, then key order: the same statements for the same batch, whatever the
            // map's order.
            dirty.sort_unstable_by(|(a_key, a), (b_key, b)| {
                (a.last_position(), a_key).cmp(&(b.last_position(), b_key))
            });
            for chunk in dirty.chunks(rows_per_statement) {
                // Every row appears once per statement (the map is by key), as Postgres
                // requires of `ON CONFLICT DO UPDATE`.
                let sql = tables.sql(&format!(
                    "INSERT INTO {} ({}) VALUES {} ON CONFLICT ({}) {on_conflict}",
                    R::TABLE,
                    R::COLUMNS.join(", "),
                    placeholders(chunk.len(), R::COLUMNS.len()),
                    R::PRIMARY_KEY.join(", ")
                ));
                let mut query = sqlx::query(sql);
                for (_, row) in chunk {
                    query = row.bind(query);
                }
                query.execute(&mut *conn).await?;
            }
        }
        for (_, state) in self.known.values_mut() {
            *state = State::Clean;
        }
        Ok(())
    }
}

/// `rows` groups of `columns` numbered placeholders: `($1, $2), ($3, $4)`; a single column
/// gives a plain list, `$1, $2`.
pub(crate) fn placeholders(rows: usize, columns: usize) -> String {
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
