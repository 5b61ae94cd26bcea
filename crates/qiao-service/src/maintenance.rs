//! Periodic housekeeping: expired sessions and the resume window of the event log.

use qiao_domain::Result;
use qiao_store::{events, sessions};

use crate::auth::announce_revoked;
use crate::{Services, millis, now};

/// What one housekeeping pass removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub sessions: usize,
    pub events: u64,
}

impl Services {
    /// Deletes expired sessions (announcing each to its owner) and events older than the
    /// retention window.
    pub async fn sweep(&self) -> Result<Swept> {
        let at = now();
        let horizon = at - millis(self.config.event_retention);
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    let expired = sessions::delete_expired(tx, at).await?;
                    for (user, session) in &expired {
                        announce_revoked(tx, *user, &[*session], at).await?;
                    }
                    let events = events::prune(tx, horizon).await?;
                    qiao_store::files::sweep_claims(tx, at).await?;
                    Ok(Swept { sessions: expired.len(), events })
                })
            })
            .await
    }
}
