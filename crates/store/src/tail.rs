//! `subscribe` for every backend: catch up with `read_all` in pages, then wait for a wake-up and
//! read again from the last position seen.
//!
//! The wake-up is only a hint (an in-process `watch` of the head, fed by the writer and, on
//! Postgres, by LISTEN). Correctness never depends on it: after every wake-up or poll tick the
//! subscriber re-reads from its own last position, so a lost or duplicated hint costs latency,
//! never a fact. `read_all` is gapless, so reading `position > last` can neither skip nor repeat.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;

use crate::{FactStream, RecordedFact, StoreError};

/// How many facts one catch-up read fetches.
const PAGE: usize = 512;

/// Something that can read the log by position.
#[async_trait::async_trait]
pub(crate) trait ReadAll: Send + Sync + 'static {
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedFact>, StoreError>;
}

struct Tail<R> {
    reader: Arc<R>,
    wake: watch::Receiver<u64>,
    poll: Option<Duration>,
    last: u64,
    buffer: VecDeque<RecordedFact>,
    done: bool,
}

/// The stream `subscribe(after)` returns. Dropping it stops everything: it owns no task.
pub(crate) fn subscribe<R: ReadAll>(
    reader: Arc<R>,
    wake: watch::Receiver<u64>,
    poll: Option<Duration>,
    after: u64,
) -> FactStream {
    let state = Tail {
        reader,
        wake,
        poll,
        last: after,
        buffer: VecDeque::new(),
        done: false,
    };
    futures::stream::unfold(state, next).boxed()
}

async fn next<R: ReadAll>(
    mut tail: Tail<R>,
) -> Option<(Result<RecordedFact, StoreError>, Tail<R>)> {
    loop {
        if tail.done {
            return None;
        }
        if let Some(fact) = tail.buffer.pop_front() {
            tail.last = fact.position;
            return Some((Ok(fact), tail));
        }
        // Mark the current head as seen *before* reading: an append that commits after this
        // read changes the watch again, so the wait below cannot sleep through it.
        tail.wake.borrow_and_update();
        match tail.reader.read_all(tail.last, PAGE).await {
            Err(e) => {
                tail.done = true;
                return Some((Err(e), tail));
            }
            Ok(page) if !page.is_empty() => tail.buffer.extend(page),
            Ok(_) => {
                let woken = match tail.poll {
                    Some(every) => tokio::select! {
                        changed = tail.wake.changed() => changed.is_ok(),
                        () = tokio::time::sleep(every) => true,
                    },
                    None => tail.wake.changed().await.is_ok(),
                };
                if !woken {
                    // The store is gone: no writer will ever wake us again.
                    return None;
                }
            }
        }
    }
}
