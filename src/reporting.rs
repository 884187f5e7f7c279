//! `marquee export` and `marquee replay`: the log for reporting consumers, outside the HTTP API.
//!
//! - `export` writes the log as NDJSON, one fact per line in position order (the line format of
//!   the query API's `/v1/log`, and the body of the relay's JetStream messages), read page by
//!   page: memory stays constant whatever the log's size.
//! - `replay` builds a standalone SQLite file holding every read model, from the configured log
//!   or from an export, through the projector's own apply path (`ReadModels::replay`), opening
//!   personal data with the configured database's keys as the projector does, so the copy
//!   equals the live read models row for row.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use marquee_projector::{ReadModels, Replay};
use marquee_query_api::audit::{belongs_to, write_line};
use marquee_store::RecordedFact;
use uuid::Uuid;

use crate::{StorageArgs, open_store, open_vault};

/// Facts read from the log per page, by both commands.
const PAGE: usize = 5_000;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Export the facts after this log position (0: from the first).
    #[arg(long, default_value_t = 0)]
    after: u64,
    /// Only the facts whose metadata names this organization (as `/v1/log` filters them).
    #[arg(long)]
    organization: Option<Uuid>,
    /// Write to this file (created or replaced once the export is complete) instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    storage: StorageArgs,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The SQLite file to build; it must not exist yet.
    #[arg(long)]
    into: PathBuf,
    /// Replay this export (`marquee export`'s NDJSON; `-` for stdin) instead of the configured
    /// log. Personal data in it is still opened with the configured database's keys.
    #[arg(long)]
    from: Option<PathBuf>,
    /// Facts applied per transaction.
    #[arg(long, default_value_t = PAGE)]
    batch_size: usize,
    #[command(flatten)]
    storage: StorageArgs,
}

/// `marquee export`: the log after `--after`, up to its head when the export starts, as NDJSON.
/// A summary goes to stderr; stdout carries only the lines.
pub async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let store = open_store(&args.storage).await?;
    let head = store
        .head_position()
        .await
        .context("reading the log's head")?;
    let organization = args.organization.map(|o| o.to_string());
    // A file is written beside its name and renamed when complete: a failed export never
    // leaves a truncated file that looks whole.
    let partial = args.out.as_deref().map(partial_path);
    let sink: Box<dyn Write> = match &partial {
        Some(path) => {
            Box::new(File::create(path).with_context(|| format!("creating {}", path.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::with_capacity(1 << 16, sink);
    let started = Instant::now();
    let (mut after, mut scanned, mut written) = (args.after, 0u64, 0u64);
    let mut chunk = Vec::with_capacity(1 << 20);
    while after < head {
        let page = store
            .read_all(after, PAGE)
            .await
            .with_context(|| format!("reading the log after position {after}"))?;
        if page.is_empty() {
            break;
        }
        chunk.clear();
        for fact in page.iter().take_while(|f| f.position <= head) {
            after = fact.position;
            scanned += 1;
            if organization
                .as_deref()
                .is_none_or(|organization| belongs_to(fact, organization))
            {
                write_line(&mut chunk, fact).context("writing a fact as JSON")?;
                written += 1;
            }
        }
        out.write_all(&chunk).context("writing the export")?;
        if page.last().is_some_and(|f| f.position > head) {
            break;
        }
    }
    out.flush().context("writing the export")?;
    drop(out);
    if let (Some(partial), Some(path)) = (&partial, &args.out) {
        std::fs::rename(partial, path)
            .with_context(|| format!("renaming {} to {}", partial.display(), path.display()))?;
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "marquee: exported {written} facts (of {scanned} read) after position {} up to {head} \
         in {seconds:.1} s ({:.0} facts/s)",
        args.after,
        scanned as f64 / seconds.max(1e-9)
    );
    Ok(())
}

/// `marquee replay`: a new SQLite file with every read model, folded from the configured log
/// (up to its head when the replay starts) or from an export.
pub async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    if args.batch_size == 0 {
        anyhow::bail!("--batch-size must be at least 1");
    }
    if args.into.exists() {
        anyhow::bail!(
            "{} exists already; replay builds a new file",
            args.into.display()
        );
    }
    // Built beside its name and renamed when complete, like an export.
    let partial = partial_path(&args.into);
    if partial.exists() {
        std::fs::remove_file(&partial)
            .with_context(|| format!("removing the leftover {}", partial.display()))?;
    }
    // Personal data is opened as the live projector opens it, with the keys of the configured
    // database: the copy then equals the live read models (erased persons read as erased).
    let read = ReadModels::connect(&format!("sqlite://{}", partial.display()))
        .await
        .with_context(|| format!("creating {}", partial.display()))?
        .with_vault(open_vault(&args.storage).await?);
    let mut replay = read
        .replay()
        .await
        .context("taking the read models' lease")?;
    let started = Instant::now();
    let facts = match &args.from {
        Some(export) => replay_export(&mut replay, export, args.batch_size).await?,
        None => replay_log(&mut replay, &args.storage, args.batch_size).await?,
    };
    let position = replay.finish().await.context("releasing the lease")?;
    drop(read);
    std::fs::rename(&partial, &args.into)
        .with_context(|| format!("renaming {} to {}", partial.display(), args.into.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "marquee: replayed {facts} facts (up to position {position}) into {} in {seconds:.1} s \
         ({:.0} facts/s)",
        args.into.display(),
        facts as f64 / seconds.max(1e-9)
    );
    Ok(())
}

/// Folds the configured log, page by page, up to its head at the start.
async fn replay_log(
    replay: &mut Replay,
    storage: &StorageArgs,
    batch_size: usize,
) -> anyhow::Result<u64> {
    let store = open_store(storage).await?;
    let head = store
        .head_position()
        .await
        .context("reading the log's head")?;
    let mut facts = 0u64;
    let mut after = 0;
    while after < head {
        let mut page = store
            .read_all(after, batch_size)
            .await
            .with_context(|| format!("reading the log after position {after}"))?;
        page.retain(|f| f.position <= head);
        let Some(last) = page.last() else { break };
        after = last.position;
        facts += page.len() as u64;
        replay
            .apply(&page)
            .await
            .with_context(|| format!("applying the facts up to position {after}"))?;
    }
    Ok(facts)
}

/// Folds an export file (or stdin), `batch_size` lines per transaction. Lines must be in
/// increasing position order, as `marquee export` writes them; gaps are fine.
async fn replay_export(
    replay: &mut Replay,
    export: &Path,
    batch_size: usize,
) -> anyhow::Result<u64> {
    let reader: Box<dyn BufRead> = if export == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(BufReader::with_capacity(
            1 << 16,
            File::open(export).with_context(|| format!("opening {}", export.display()))?,
        ))
    };
    let mut batch: Vec<RecordedFact> = Vec::with_capacity(batch_size);
    let (mut facts, mut last) = (0u64, 0u64);
    for (index, line) in reader.lines().enumerate() {
        let number = index + 1;
        let line = line.with_context(|| format!("reading {} line {number}", export.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let fact: RecordedFact = serde_json::from_str(&line)
            .with_context(|| format!("{} line {number} is not a fact", export.display()))?;
        if fact.position <= last {
            anyhow::bail!(
                "{} line {number}: position {} does not follow {last}; an export is in \
                 increasing position order",
                export.display(),
                fact.position
            );
        }
        last = fact.position;
        batch.push(fact);
        if batch.len() == batch_size {
            facts += apply(replay, &mut batch).await?;
        }
    }
    facts += apply(replay, &mut batch).await?;
    Ok(facts)
}

/// Applies and empties `batch`; how many facts it held.
async fn apply(replay: &mut Replay, batch: &mut Vec<RecordedFact>) -> anyhow::Result<u64> {
    let count = batch.len() as u64;
    if let Some(last) = batch.last().map(|f| f.position) {
        replay
            .apply(batch)
            .await
            .with_context(|| format!("applying the facts up to position {last}"))?;
    }
    batch.clear();
    Ok(count)
}

/// Where a file is written until it is complete: `<path>.partial`.
fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}
