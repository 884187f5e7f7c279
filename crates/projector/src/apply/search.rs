//! The full-text search rows (`event_search`): one per event, its title and description, written
//! when either changes. On SQLite the table is an FTS5 index; on Postgres a plain table under a
//! GIN index of `to_tsvector('simple', title || ' ' || description)`. The words a listing
//! searches for are made by [`crate::queries`] from the same rules on both engines.

use sqlx::AnyConnection;

use super::EventDoc;
use crate::ProjectorError;
use crate::tables::Tables;

/// What the batch must do to an event's search row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SearchWrite {
    /// Title and description are as stored.
    Unchanged,
    /// The event is new to the read models: it has no search row yet.
    Insert,
    /// The event had a search row; its title or description changed.
    Replace,
}

impl SearchWrite {
    /// After a title or description changed: a row still to insert stays an insert.
    pub(super) fn changed(self) -> Self {
        match self {
            SearchWrite::Insert => SearchWrite::Insert,
            SearchWrite::Unchanged | SearchWrite::Replace => SearchWrite::Replace,
        }
    }
}

/// Writes the event's search row if its title or description changed.
pub(super) async fn write(
    conn: &mut AnyConnection,
    tables: &Tables,
    doc: &EventDoc,
) -> Result<(), ProjectorError> {
    let l = &doc.listing;
    if doc.search == SearchWrite::Unchanged {
        return Ok(());
    }
    if is_postgres(conn) {
        sqlx::query(tables.sql(
            "INSERT INTO {search} (event_id, title, description) VALUES ($1, $2, $3) \
             ON CONFLICT (event_id) DO UPDATE SET title = excluded.title, \
             description = excluded.description",
        ))
        .bind(&l.event_id)
        .bind(&l.title)
        .bind(&l.description)
        .execute(&mut *conn)
        .await?;
        return Ok(());
    }
    if doc.search == SearchWrite::Replace {
        // An FTS5 table has no key to conflict on: the old row goes first. (A scan of the
        // index's rows, but titles and descriptions change rarely.)
        sqlx::query(tables.sql("DELETE FROM {search} WHERE event_id = $1"))
            .bind(&l.event_id)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(
        tables.sql("INSERT INTO {search} (event_id, title, description) VALUES ($1, $2, $3)"),
    )
    .bind(&l.event_id)
    .bind(&l.title)
    .bind(&l.description)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn is_postgres(conn: &AnyConnection) -> bool {
    conn.backend_name() == "PostgreSQL"
}
