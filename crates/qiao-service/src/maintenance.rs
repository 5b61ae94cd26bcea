//! Periodic housekeeping: expired sessions, the resume window of the event log, and uploads
//! never sent.

use qiao_domain::{Millis, Result};
use qiao_store::{events, files, sessions};

use crate::auth::announce_revoked;
use crate::{Services, millis, now};

/// What one housekeeping pass removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub sessions: usize,
    pub events: u64,
    /// Uploads never sent in a message, expired.
    pub files: usize,
    /// Temporary objects of uploads a crash interrupted.
    pub temporary: usize,
    /// Blob removals retried (their clean-up had not finished).
    pub removals: usize,
}

/// Age past which a temporary object can only be a crashed upload's (an upload may take at
/// most an hour).
const TEMPORARY_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Unsent uploads expired per housekeeping pass (the rest wait for the next one).
const EXPIRED_FILES_PER_PASS: i64 = 1000;
/// Unfinished blob removals retried per pass.
const REMOVALS_PER_PASS: i64 = 1000;
/// Old events dropped per write transaction, and transactions per pass (a pass every ten
/// minutes then keeps up with 5,000,000 events in that time).
const PRUNE_CHUNK: i64 = 5000;
const PRUNE_CHUNKS_PER_PASS: usize = 1000;

impl Services {
    /// Deletes expired sessions (announcing each to its owner), events older than the
    /// retention window, uploads left unsent past their expiry (with their bytes, once
    /// nothing else refers to them) and temporary objects of uploads a crash interrupted.
    pub async fn sweep(&self) -> Result<Swept> {
        self.sweep_at(now()).await
    }

    /// [`Services::sweep`] as if the time were `at`.
    pub async fn sweep_at(&self, at: Millis) -> Result<Swept> {
        let horizon = at - millis(self.config.event_retention);
        let unsent_before = at - millis(self.config.files.unsent_expiry);
        let (swept, expired) = self
            .store
            .write(move |tx| {
                Box::pin(async move {
                    let expired = sessions::delete_expired(tx, at).await?;
                    for (user, session) in &expired {
                        announce_revoked(tx, *user, &[*session], at).await?;
                    }
                    files::sweep_claims(tx, at).await?;
                    let unsent = files::expire_unsent(tx, unsent_before, at, EXPIRED_FILES_PER_PASS).await?;
                    let hashes: Vec<String> = unsent.iter().flat_map(|f| f.hashes()).collect();
                    crate::files::queue_removals(tx, &hashes, at).await?;
                    let swept =
                        Swept { sessions: expired.len(), events: 0, files: unsent.len(), temporary: 0, removals: 0 };
                    Ok((swept, unsent))
                })
            })
            .await?;
        if !expired.is_empty() {
            self.collect_garbage(expired.iter().flat_map(|f| f.hashes()).collect()).await;
        }
        // Old events, a chunk per transaction: each write holds the stream's lock (every
        // node's writes wait), so none may take long.
        let mut events = 0;
        for _ in 0..PRUNE_CHUNKS_PER_PASS {
            let n = self.store.write(move |tx| Box::pin(events::prune(tx, horizon, PRUNE_CHUNK))).await?;
            events += n;
            if n < PRUNE_CHUNK as u64 {
                break;
            }
        }
        // Removals a clean-up did not finish (its node died, storage failed): again.
        let due = files::due_removals(&mut self.store.reader().await?, at, REMOVALS_PER_PASS).await?;
        let retried = due.len();
        if !due.is_empty() {
            self.collect_garbage(due).await;
        }
        let temporary = match self.blobs.sweep_tmp(TEMPORARY_MAX_AGE).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "removing temporary upload objects failed");
                0
            }
        };
        Ok(Swept { temporary, removals: retried, events, ..swept })
    }
}
