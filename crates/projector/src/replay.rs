//! Folding facts that come from somewhere other than a live log — an export file, another
//! database's log — into a set of read models, through the projector's own apply path.
//!
//! `marquee replay` builds a standalone copy of the read models from an NDJSON export this way.
//! Appending the exported facts to a scratch log first would not do: the log assigns positions
//! and `recorded_at` itself, and the read models keep both (guest-list order, `updated_at`), so
//! the copy would differ from the original. Here the facts are applied exactly as recorded, with
//! the same batch code ([`crate::Projector`] uses it too): same rows, same checkpoint.

use marquee_store::RecordedFact;
use uuid::Uuid;

use crate::apply::apply_batch;
use crate::{ProjectorError, ReadModels};

/// How long a replay's lease lasts without renewal. A replay never renews: fencing checks the
/// holder, not the expiry (see `lease`), so an expired lease nobody else took stays writable. The
/// term only says how soon a projector started on the same database later may take over after a
/// replay that died without [`Replay::finish`].
const REPLAY_LEASE: std::time::Duration = std::time::Duration::from_secs(60);

/// A replay in progress: it holds the projector lease of its read models, so no projector writes
/// them meanwhile. Made by [`ReadModels::replay`]; end it with [`Replay::finish`].
pub struct Replay {
    read: ReadModels,
    holder: String,
    applied: u64,
}

impl ReadModels {
    /// Starts replaying facts into these read models: takes the projector lease under a holder
    /// of its own. Fails with [`ProjectorError::LeaseLost`] while a projector holds it — a replay
    /// is meant for a fresh database, not for one a projector is following the log into.
    pub async fn replay(&self) -> Result<Replay, ProjectorError> {
        let holder = format!("replay-{}-{}", std::process::id(), Uuid::new_v4().simple());
        if !self.try_acquire_lease(&holder, REPLAY_LEASE).await? {
            return Err(ProjectorError::LeaseLost);
        }
        Ok(Replay {
            read: self.clone(),
            holder,
            applied: self.applied_position().await?,
        })
    }
}

impl Replay {
    /// Applies `facts` (in position order; positions may have gaps, e.g. an export filtered by
    /// organization) in one transaction, exactly as the projector applies a batch from the log:
    /// facts at or below the checkpoint are skipped. Returns the checkpoint after it.
    pub async fn apply(&mut self, facts: &[RecordedFact]) -> Result<u64, ProjectorError> {
        if facts.is_empty() {
            return Ok(self.applied);
        }
        self.applied = apply_batch(&self.read, facts, &self.holder).await?;
        self.read.publish_applied(self.applied);
        Ok(self.applied)
    }

    /// The checkpoint so far: the position of the last fact applied (0 before any).
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Gives the lease back; returns the final checkpoint.
    pub async fn finish(self) -> Result<u64, ProjectorError> {
        self.read.release_lease(&self.holder).await?;
        Ok(self.applied)
    }
}
