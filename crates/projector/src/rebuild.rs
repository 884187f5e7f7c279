//! Rebuilding the read models from the log while the old ones keep serving, then swapping.
//!
//! # How
//!
//! 1. **Shadow tables.** Leftovers of an earlier rebuild that died are dropped, then a fresh
//!    shadow set (`event_listing__rebuild`, …, see `tables`) is created as a copy of the *live*
//!    tables' definitions: on Postgres `CREATE TABLE … (LIKE live INCLUDING ALL)`, on SQLite the
//!    live table's and indexes' own `CREATE` text from `sqlite_master` (the search index, an
//!    FTS5 virtual table, with its module). The migrations stay the
//!    one source of the schema, and shadow and live cannot drift apart: there is no second copy
//!    of the DDL to forget.
//! 2. **Fold.** The whole log is read with `read_all` in large pages (their personal data opened
//!    with the keys as they are now: an erased person reads as `[erased]`, which is how a
//!    rebuild forgets them; see `crate::personal`) and applied to the shadow
//!    set with the very code the live projector uses (`apply::apply_in`), one transaction per
//!    page with the shadow set's own checkpoint (`projector_checkpoints__rebuild`). The next
//!    page is read while the current one is written. The live projector and the query API are
//!    untouched meanwhile. This repeats until a page comes back short: the shadow set is then
//!    close to the head of the log.
//! 3. **Lease.** The rebuild takes the projector lease over under a holder of its own
//!    (`rebuild-…`), whoever held it. Taking it over is safe because the lease is fenced: every
//!    batch of the live projector re-checks the holder inside its transaction (and the row lock
//!    makes the takeover wait for a batch in flight), so from this point the live projector
//!    writes nothing and stands by, polling for the lease. It does not matter whether that is the
//!    embedded projector (holder `embedded`) or any number of distributed ones.
//! 4. **Final catch-up and swap, one transaction.** With the lease fenced in that same
//!    transaction and the live checkpoint row locked, the shadow set applies what is left of
//!    the log, so its checkpoint is at or past the live one (readers never see the read models
//!    go back in time). Then each live table is renamed to `…__old`, each shadow table to the
//!    live name, the live checkpoint row is set to the shadow checkpoint, and (Postgres) the old
//!    tables are dropped and the new tables' indexes take the old indexes' names back. Commit.
//!    SQLite drops the old tables right after the commit instead, to keep the write lock short.
//! 5. **Give back.** The lease row is deleted; the live projector takes the lease at its next
//!    poll and resumes from the checkpoint the swap wrote. Facts appended during the rebuild are
//!    either in the shadow set (at or below its checkpoint) or applied after it by the live
//!    projector: none is lost, none counted twice, because the checkpoint moved in the same
//!    transaction as the tables.
//!
//! # Readers during the swap
//!
//! Nobody sees a missing or empty table. On Postgres the renames take `ACCESS EXCLUSIVE` locks
//! until commit: a reader waits, then resolves the name again and reads the new table; a cached
//! prepared statement is re-analysed because the rename invalidated it. On SQLite (WAL) a reader
//! keeps its snapshot of the old tables until the commit and sees the new ones after; a cached
//! statement is re-prepared on `SQLITE_SCHEMA`. Tests cover both, through the query functions.
//!
//! # Why not just truncate and replay
//!
//! Replaying into the live tables would leave the query API answering from half-built read
//! models for as long as the replay takes. A rebuild that fails (or is interrupted) here leaves
//! the live read models exactly as they were; the next rebuild starts over.

use std::time::{Duration, Instant};

use marquee_store::{EventStore, RecordedFact};
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use crate::apply::apply_in;
use crate::lease::fence;
use crate::personal;
use crate::read_models::{Backend, PROJECTION, to_u64};
use crate::tables::{LIVE, OLD_SUFFIX, SHADOW};
use crate::{ProjectorError, ReadModels};

/// Every projection [`ReadModels::rebuild`] knows, by name. Today one projection maintains
/// every read-model table.
pub const PROJECTIONS: &[&str] = &[PROJECTION];

/// How a rebuild runs; [`RebuildOptions::default`] suits a log of any size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildOptions {
    /// Facts read per page and applied per transaction. Larger is faster; on SQLite each
    /// transaction holds the file's write lock (the log's writers wait for it), so not too large.
    /// Default 5,000.
    pub batch_size: usize,
    /// How long the rebuild's lease lasts while it swaps; it is renewed meanwhile, and a rebuild
    /// that dies mid-swap leaves the live projector standing by at most this long. Default 30 s.
    pub lease_ttl: Duration,
}

impl Default for RebuildOptions {
    fn default() -> Self {
        Self {
            batch_size: 5_000,
            lease_ttl: Duration::from_secs(30),
        }
    }
}

/// Where a running rebuild stands, reported after every transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildProgress {
    /// Facts read from the log and folded so far.
    pub facts: u64,
    /// The shadow set's checkpoint.
    pub position: u64,
    /// The log's head when last read.
    pub head: u64,
}

/// What a finished rebuild did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildReport {
    /// Facts read from the log and folded.
    pub facts: u64,
    /// The checkpoint the live read models resumed from after the swap.
    pub position: u64,
    /// Wall time, preparation to swap.
    pub elapsed: Duration,
}

impl ReadModels {
    /// Rebuilds the read models of `projection` (one of [`PROJECTIONS`]) from `store`, the log,
    /// into shadow tables while the live ones keep serving, then swaps them in atomically; see
    /// the [module docs](self). `progress` is called after every transaction.
    ///
    /// Safe to run while a projector (embedded or distributed) runs on the same database: it is
    /// fenced for the swap and resumes after it. Fails with [`ProjectorError::UnknownProjection`]
    /// for a name not in [`PROJECTIONS`]; any failure leaves the live read models as they were.
    pub async fn rebuild(
        &self,
        store: &dyn EventStore,
        projection: &str,
        options: &RebuildOptions,
        progress: &mut (dyn FnMut(RebuildProgress) + Send),
    ) -> Result<RebuildReport, ProjectorError> {
        if !PROJECTIONS.contains(&projection) {
            return Err(ProjectorError::UnknownProjection {
                name: projection.to_owned(),
                known: PROJECTIONS.join(", "),
            });
        }
        if options.batch_size == 0 || options.lease_ttl < Duration::from_secs(1) {
            return Err(ProjectorError::InvalidConfig(
                "rebuild batch size must be > 0 and its lease at least 1 s".to_owned(),
            ));
        }
        let started = Instant::now();
        self.prepare_shadow().await?;
        let mut state = Fold {
            facts: 0,
            position: 0,
            head: store.head_position().await?,
        };
        self.fold(store, options.batch_size, &mut state, progress)
            .await?;

        let holder = format!("rebuild-{}-{}", std::process::id(), Uuid::new_v4().simple());
        let previous = self.take_over_lease(&holder, options.lease_ttl).await?;
        tracing::info!(
            previous = previous.as_deref(),
            position = state.position,
            "rebuild: projector lease taken over for the swap"
        );
        let renew = async {
            let every = options.lease_ttl / 3;
            loop {
                tokio::time::sleep(every).await;
                if let Err(error) = self.renew_lease(&holder, options.lease_ttl).await {
                    tracing::warn!(%error, "rebuild: could not renew the lease");
                }
            }
        };
        let swapped = tokio::select! {
            result = self.catch_up_and_swap(store, options.batch_size, &holder, &mut state, progress) => result,
            _never = renew => unreachable_renew(),
        };
        // Whatever happened, give the lease back so that the live projector resumes at once.
        if let Err(error) = self.release_lease(&holder).await {
            tracing::warn!(%error, "rebuild: could not release the lease; it will expire");
        }
        swapped?;
        if self.backend() == Backend::Sqlite {
            self.drop_tables(&LIVE.read_models().map(|t| format!("{t}{OLD_SUFFIX}")))
                .await?;
            self.drop_tables(&[SHADOW.checkpoints.to_owned()]).await?;
        }
        self.publish_applied(state.position);
        Ok(RebuildReport {
            facts: state.facts,
            position: state.position,
            elapsed: started.elapsed(),
        })
    }

    /// Drops whatever an earlier rebuild left behind and creates an empty shadow set, copied
    /// from the live tables' definitions, with its checkpoint at 0.
    async fn prepare_shadow(&self) -> Result<(), ProjectorError> {
        let mut leftovers: Vec<String> = SHADOW.read_models().map(str::to_owned).to_vec();
        leftovers.push(SHADOW.checkpoints.to_owned());
        leftovers.extend(LIVE.read_models().map(|t| format!("{t}{OLD_SUFFIX}")));
        self.drop_tables(&leftovers).await?;

        let mut tx = self.begin_write().await?;
        let pairs = LIVE
            .read_models()
            .into_iter()
            .zip(SHADOW.read_models())
            .chain([(LIVE.checkpoints, SHADOW.checkpoints)]);
        for (live, shadow) in pairs {
            match self.backend() {
                Backend::Postgres => {
                    // Columns with their types, collations and defaults, the primary key and
                    // every index: all of the live table but its rows.
                    let sql = format!("CREATE TABLE {shadow} (LIKE {live} INCLUDING ALL)");
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut *tx)
                        .await?;
                }
                Backend::Sqlite => copy_sqlite_table(&mut tx, live, shadow).await?,
            }
        }
        sqlx::query(SHADOW.sql("INSERT INTO {checkpoints} (projection, position) VALUES ($1, 0)"))
            .bind(PROJECTION)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Folds the log into the shadow set, page after page, until a page comes back short.
    async fn fold(
        &self,
        store: &dyn EventStore,
        batch_size: usize,
        state: &mut Fold,
        progress: &mut (dyn FnMut(RebuildProgress) + Send),
    ) -> Result<(), ProjectorError> {
        let mut page = store.read_all(state.position, batch_size).await?;
        while !page.is_empty() {
            let last = page.last().map_or(state.position, |f| f.position);
            let full = page.len() == batch_size;
            // Read the next page while this one is written: the log and the read models are
            // different connections (and on Postgres, usually different work for the server).
            let (applied, next) = tokio::join!(self.apply_shadow_page(&page), async {
                if full {
                    store.read_all(last, batch_size).await.map(Some)
                } else {
                    Ok(None)
                }
            });
            state.position = applied?;
            state.facts += page.len() as u64;
            state.head = state.head.max(state.position);
            progress(state.progress());
            match next? {
                Some(next) => page = next,
                None => {
                    // A short page: close to the head. Look again once, for what was appended
                    // meanwhile; the swap catches up the rest under the lease.
                    state.head = store.head_position().await?.max(state.position);
                    if state.head.saturating_sub(state.position) < batch_size as u64 {
                        return Ok(());
                    }
                    page = store.read_all(state.position, batch_size).await?;
                }
            }
        }
        Ok(())
    }

    /// One page into the shadow set, in its own transaction (its personal data opened before).
    async fn apply_shadow_page(&self, facts: &[RecordedFact]) -> Result<u64, ProjectorError> {
        let facts = personal::open(self.vault(), facts).await?;
        let mut tx = self.begin_write().await?;
        let (_, after) = apply_in(&mut tx, &SHADOW, &facts).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Under the rebuild's lease: catches the shadow set up to the head outside the swap
    /// transaction (short transactions; the live projector is already fenced), then catches up
    /// the last few facts and swaps inside one.
    async fn catch_up_and_swap(
        &self,
        store: &dyn EventStore,
        batch_size: usize,
        holder: &str,
        state: &mut Fold,
        progress: &mut (dyn FnMut(RebuildProgress) + Send),
    ) -> Result<(), ProjectorError> {
        loop {
            let page = store.read_all(state.position, batch_size).await?;
            if page.is_empty() {
                break;
            }
            state.position = self.apply_shadow_page(&page).await?;
            state.facts += page.len() as u64;
            state.head = state.head.max(state.position);
            progress(state.progress());
        }

        let mut tx = self.begin_write().await?;
        fence(&mut tx, holder).await?;
        // Lock the live checkpoint row and read it: nothing can move it until commit.
        sqlx::query(LIVE.sql("UPDATE {checkpoints} SET position = position WHERE projection = $1"))
            .bind(PROJECTION)
            .execute(&mut *tx)
            .await?;
        let live =
            sqlx::query(LIVE.sql("SELECT position FROM {checkpoints} WHERE projection = $1"))
                .bind(PROJECTION)
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| row.try_get::<i64, _>("position"))
                .transpose()?
                .map(to_u64)
                .transpose()?
                .unwrap_or(0);
        loop {
            let page = store.read_all(state.position, batch_size).await?;
            if page.is_empty() {
                break;
            }
            let facts = personal::open(self.vault(), &page).await?;
            let (_, after) = apply_in(&mut tx, &SHADOW, &facts).await?;
            state.position = after;
            state.facts += page.len() as u64;
        }
        if state.position < live {
            return Err(ProjectorError::Corrupt(format!(
                "live checkpoint {live} is past the end of the log ({}); refusing to swap",
                state.position
            )));
        }
        let index_names = match self.backend() {
            Backend::Postgres => postgres_index_renames(&mut tx).await?,
            Backend::Sqlite => Vec::new(),
        };
        for (live_table, shadow_table) in LIVE.read_models().into_iter().zip(SHADOW.read_models()) {
            let sql = format!("ALTER TABLE {live_table} RENAME TO {live_table}{OLD_SUFFIX}");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut *tx)
                .await?;
            let sql = format!("ALTER TABLE {shadow_table} RENAME TO {live_table}");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut *tx)
                .await?;
        }
        let moved =
            sqlx::query(LIVE.sql("UPDATE {checkpoints} SET position = $1 WHERE projection = $2"))
                .bind(i64::try_from(state.position).unwrap_or(i64::MAX))
                .bind(PROJECTION)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if moved == 0 {
            sqlx::query(
                LIVE.sql("INSERT INTO {checkpoints} (projection, position) VALUES ($1, $2)"),
            )
            .bind(PROJECTION)
            .bind(i64::try_from(state.position).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        }
        if self.backend() == Backend::Postgres {
            // In the transaction: the old tables' index names must be free before the new
            // tables' indexes take them, and the locks are held until commit anyway.
            for table in LIVE.read_models() {
                let sql = format!("DROP TABLE {table}{OLD_SUFFIX}");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut *tx)
                    .await?;
            }
            let sql = format!("DROP TABLE {}", SHADOW.checkpoints);
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut *tx)
                .await?;
            for (from, to) in index_names {
                let sql = format!("ALTER INDEX \"{from}\" RENAME TO \"{to}\"");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        state.head = state.head.max(state.position);
        progress(state.progress());
        tracing::info!(
            position = state.position,
            live_was = live,
            "rebuild: read models swapped"
        );
        Ok(())
    }

    /// `DROP TABLE IF EXISTS` each of `tables`, in one transaction.
    async fn drop_tables(&self, tables: &[String]) -> Result<(), ProjectorError> {
        let mut tx = self.begin_write().await?;
        for table in tables {
            let sql = format!("DROP TABLE IF EXISTS {table}");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Gives the lease to `holder` whoever holds it now; returns the previous holder.
    async fn take_over_lease(
        &self,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<String>, ProjectorError> {
        let previous = self.lease_holder().await?.map(|h| h.holder);
        let mut taken = self.try_acquire_lease(holder, ttl).await?;
        if !taken {
            // Held and not expired: take it anyway. Fencing makes this safe (module docs); the
            // UPDATE waits for a batch in flight that holds the row lock.
            taken = self.steal_lease(holder, ttl).await?;
        }
        if !taken {
            return Err(ProjectorError::LeaseLost);
        }
        Ok(previous)
    }
}

/// The rebuild's bookkeeping.
struct Fold {
    facts: u64,
    position: u64,
    head: u64,
}

impl Fold {
    fn progress(&self) -> RebuildProgress {
        RebuildProgress {
            facts: self.facts,
            position: self.position,
            head: self.head,
        }
    }
}

/// The lease renewal loop never ends; this only satisfies the type of its `select!` arm.
fn unreachable_renew() -> Result<(), ProjectorError> {
    Err(ProjectorError::LeaseLost)
}

/// Creates SQLite table `shadow` (and its indexes) from the `CREATE` text of table `live`.
/// Index names alternate between `name` and `name__rebuild`: SQLite cannot rename an index, so
/// after a swap the live indexes keep the shadow's names, and the next shadow takes the others.
async fn copy_sqlite_table(
    conn: &mut AnyConnection,
    live: &str,
    shadow: &str,
) -> Result<(), ProjectorError> {
    // Tables sort after indexes by `type`; the table must come first.
    let rows = sqlx::query(
        "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = $1 AND sql IS NOT NULL \
         ORDER BY type DESC, name",
    )
    .bind(live)
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Err(ProjectorError::Corrupt(format!(
            "read-model table {live} does not exist"
        )));
    }
    for row in rows {
        let kind: String = row.try_get("type")?;
        let name: String = row.try_get("name")?;
        let sql: String = row.try_get("sql")?;
        // Everything from the column list on is kept; only what precedes it names things.
        let body = sql
            .find('(')
            .map(|at| &sql[at..])
            .ok_or_else(|| ProjectorError::Corrupt(format!("unexpected schema of {name}")))?;
        let create = match kind.as_str() {
            // The search index is an FTS5 virtual table: `CREATE VIRTUAL TABLE name USING
            // fts5(…)`, its module named between `USING` and the argument list.
            "table" if sql.to_uppercase().starts_with("CREATE VIRTUAL TABLE") => {
                let module = sql
                    .to_uppercase()
                    .find(" USING ")
                    .map(|at| sql[at + " USING ".len()..].trim_start())
                    .and_then(|rest| rest.split('(').next())
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .ok_or_else(|| {
                        ProjectorError::Corrupt(format!("unexpected schema of {name}"))
                    })?;
                format!("CREATE VIRTUAL TABLE {shadow} USING {module}{body}")
            }
            "table" => format!("CREATE TABLE {shadow} {body}"),
            "index" => {
                let unique = if sql.trim_start().to_uppercase().starts_with("CREATE UNIQUE") {
                    "UNIQUE "
                } else {
                    ""
                };
                let index = match name.strip_suffix("__rebuild") {
                    Some(base) => base.to_owned(),
                    None => format!("{name}__rebuild"),
                };
                format!("CREATE {unique}INDEX {index} ON {shadow} {body}")
            }
            _ => continue,
        };
        sqlx::query(sqlx::AssertSqlSafe(create))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Postgres: for each shadow index, the name of the live index with the same definition, so
/// that the swapped-in tables end up with the names the migrations gave (a later migration that
/// drops or alters an index by name keeps working).
async fn postgres_index_renames(
    conn: &mut AnyConnection,
) -> Result<Vec<(String, String)>, ProjectorError> {
    let mut renames = Vec::new();
    for (live, shadow) in LIVE.read_models().into_iter().zip(SHADOW.read_models()) {
        let live_indexes = postgres_indexes(conn, live).await?;
        let shadow_indexes = postgres_indexes(conn, shadow).await?;
        for (shadow_name, shadow_def) in shadow_indexes {
            if let Some((live_name, _)) = live_indexes.iter().find(|(_, def)| *def == shadow_def) {
                renames.push((shadow_name, live_name.clone()));
            }
        }
    }
    Ok(renames)
}

/// A table's indexes as (name, definition without the index and table names).
async fn postgres_indexes(
    conn: &mut AnyConnection,
    table: &str,
) -> Result<Vec<(String, String)>, ProjectorError> {
    let rows = sqlx::query(
        "SELECT CAST(indexname AS TEXT) AS name, indexdef AS def FROM pg_indexes \
         WHERE schemaname = current_schema() AND tablename = $1",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let name: String = row.try_get("name")?;
            let def: String = row.try_get("def")?;
            let unique = def.starts_with("CREATE UNIQUE");
            let using = def.find(" USING ").map_or(def.as_str(), |at| &def[at..]);
            Ok((name, format!("{unique}{using}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadow_names_never_collide_with_live_ones() {
        for table in SHADOW.read_models() {
            assert!(!LIVE.read_models().contains(&table));
        }
        assert_ne!(LIVE.checkpoints, SHADOW.checkpoints);
    }
}
