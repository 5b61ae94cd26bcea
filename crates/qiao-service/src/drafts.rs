//! Drafts: what a person has started writing and not sent, kept on the server (one per
//! conversation and per thread) so that every device of theirs shows the same text. Each
//! change is a personal `draft.updated` event, so other devices follow it live and a device
//! that was offline gets the latest on resume.

use qiao_domain::event::{Audience, EventData};
use qiao_domain::message::{self, Draft};
use qiao_domain::{ConversationId, Error, MessageId, Result};
use qiao_store::{drafts, messages};

use crate::auth::Authenticated;
use crate::conversations::ARCHIVED;
use crate::{Services, now};

/// Drafts one person may keep. Listing returns them all.
pub const DRAFTS_MAX: u32 = 1_000;
/// Saves per person: a client saves a draft a moment after typing stops, not per keystroke.
pub const DRAFT_RATE: crate::ratelimit::RateConfig = crate::ratelimit::RateConfig { per_second: 5.0, burst: 60.0 };

impl Services {
    /// Saves the caller's draft in a conversation (or in a thread of it); an empty body clears
    /// it. Saving the text already stored changes nothing and tells no device. Nothing can be
    /// sent in an archived conversation, so no text is kept for it there (clearing still is).
    pub async fn save_draft(
        &self,
        auth: &Authenticated,
        conversation: ConversationId,
        thread_root_id: Option<MessageId>,
        body: &str,
    ) -> Result<Draft> {
        let body = message::validate_draft(body)?;
        let me = auth.actor.user_id;
        let a = self.access_cached(&auth.actor, conversation).await?;
        if a.member.is_none() {
            return Err(a.deny(&auth.actor, "Join the conversation to write in it."));
        }
        if a.facts.archived && !body.is_empty() {
            return Err(Error::forbidden().with_message(ARCHIVED));
        }
        if let Some(root) = thread_root_id {
            // Nothing can be sent in a thread whose first message was deleted: no text is
            // kept for one either (clearing still is).
            let root = self.check_thread_of(conversation, root).await?;
            if root.deleted_at.is_some() && !body.is_empty() {
                return Err(crate::messages::thread_closed());
            }
        }
        self.draft_rate.check(me)?;
        let draft = Draft { conversation_id: conversation, thread_root_id, body, updated_at: now() };
        let actor = auth.actor.clone();
        self.store
            .write(move |tx| {
                let (draft, actor) = (draft.clone(), actor.clone());
                Box::pin(async move {
                    // Still a member (leaving deletes one's drafts there), and the conversation
                    // still open for text: one read of both.
                    let now = crate::messages::access_now(tx, &actor, conversation).await?;
                    if now.member.is_none() {
                        return Err(Error::not_found());
                    }
                    if now.facts.archived && !draft.body.is_empty() {
                        return Err(Error::forbidden().with_message(ARCHIVED));
                    }
                    // (A thread's first message deleted meanwhile took its drafts with it.)
                    if let Some(root) = thread_root_id
                        && !draft.body.is_empty()
                        && messages::get(tx, root).await?.is_none_or(|m| m.deleted_at.is_some())
                    {
                        return Err(crate::messages::thread_closed());
                    }
                    let old = drafts::get(tx, me, conversation, thread_root_id).await?;
                    match &old {
                        Some(old) if old.body == draft.body => return Ok(old.clone()),
                        None if draft.body.is_empty() => return Ok(draft),
                        None if drafts::count(tx, me).await? >= i64::from(DRAFTS_MAX) => {
                            return Err(Error::invalid(
                                "body",
                                format!("you keep {DRAFTS_MAX} drafts already; send or clear some first"),
                            ));
                        }
                        _ => {}
                    }
                    drafts::put(tx, me, &draft).await?;
                    tx.append_event(
                        Audience::User(me),
                        None,
                        &EventData::DraftUpdated { draft: draft.clone() },
                        draft.updated_at,
                    )
                    .await?;
                    Ok(draft)
                })
            })
            .await
    }

    /// The caller's drafts in the conversations they are in, most recent first.
    pub async fn drafts(&self, auth: &Authenticated) -> Result<Vec<Draft>> {
        drafts::list(&mut self.store.reader().await?, auth.actor.user_id, DRAFTS_MAX).await
    }
}
