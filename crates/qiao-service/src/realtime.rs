//! What the realtime gateway asks of the store: where a connecting client stands, what it
//! missed, and whom it may follow or notify.

use qiao_domain::perm::Actor;
use qiao_domain::{ConversationId, Error, Result, UserId};
use qiao_store::{events, members};

use crate::Services;
use crate::auth::Authenticated;

/// What a connecting client gets before live events.
#[derive(Debug)]
pub enum Catchup {
    /// A fresh start: load state over HTTP, then apply events after `head`.
    Fresh,
    /// The frames of everything missed since the client's position, in order.
    Events(Vec<(i64, String)>),
    /// Too far behind (or the position is no longer kept): reload state over HTTP.
    Resync,
}

#[derive(Debug)]
pub struct Start {
    /// The stream position the catch-up reaches.
    pub head: i64,
    pub memberships: Vec<ConversationId>,
    pub catchup: Catchup,
}

impl Services {
    /// Where a connecting client stands. Read *after* the connection is registered with the
    /// dispatcher, so that together with what it buffers nothing is missed.
    pub async fn realtime_start(&self, auth: &Authenticated, resume_from: Option<i64>, window: i64) -> Result<Start> {
        let mut r = self.store.reader().await?;
        let head = events::head(&mut r).await?;
        let memberships = members::conversation_ids_of(&mut r, auth.user.id).await?;
        let catchup = match resume_from {
            None => Catchup::Fresh,
            Some(from) if from < 0 || from > head => Catchup::Resync,
            Some(from) if from == head => Catchup::Events(Vec::new()),
            Some(from) => {
                // Positions before the oldest kept one may have been pruned.
                let kept = events::oldest(&mut r).await?.is_some_and(|oldest| from >= oldest - 1);
                if !kept {
                    Catchup::Resync
                } else {
                    let missed =
                        events::for_user(&mut r, auth.user.id, !auth.user.role.is_guest(), from, head, window + 1)
                            .await?;
                    if missed.len() as i64 > window { Catchup::Resync } else { Catchup::Events(missed) }
                }
            }
        };
        Ok(Start { head, memberships, catchup })
    }

    /// The people among `candidates` whose presence the caller may follow: anyone for staff,
    /// people they share a conversation with for guests.
    pub async fn visible_people(&self, actor: &Actor, candidates: &[UserId]) -> Result<Vec<UserId>> {
        if !actor.is_guest() {
            return Ok(candidates.to_vec());
        }
        members::sharing_with(&mut self.store.reader().await?, actor.user_id, candidates).await
    }

    /// Checks the caller may announce typing in a conversation (a member, not archived).
    pub async fn may_type(&self, actor: &Actor, conversation: ConversationId) -> Result<()> {
        let a = self.access_cached(actor, conversation).await?;
        if a.member.is_none() || a.facts.archived {
            return Err(Error::forbidden());
        }
        Ok(())
    }
}
