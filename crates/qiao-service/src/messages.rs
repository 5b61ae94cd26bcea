//! Messages: sending (idempotent and durable), history, editing, deleting, reactions, pins,
//! read positions and threads.

use std::collections::BTreeSet;

use qiao_domain::event::{Audience, EventData};
use qiao_domain::file::FILES_PER_MESSAGE_MAX;
use qiao_domain::message::{
    self, Draft, EMOJI_PER_MESSAGE_MAX, MENTIONS_MAX, Mentions, Message, PINS_MAX, ThreadSummary, parse_mentions,
};
use qiao_domain::perm;
use qiao_domain::{ConversationId, DepartmentId, Error, ErrorCode, FileId, MessageId, Result, UserId};
use qiao_store::messages::{Anchor, Edit, NewMessage};
use qiao_store::threads::FollowedThread;
use qiao_store::{Db, Tx, audit, conversations, departments, files, members, messages, threads, users};
use serde_json::json;

use crate::auth::Authenticated;
use crate::conversations::Access;
use crate::membership::emit;
use crate::users::{Page, decode_keyset, encode_keyset, page_limit};
use crate::{Origin, Services, audit_entry, now};

/// A message to send.
#[derive(Clone, Debug, Default)]
pub struct SendMessage {
    pub body: String,
    /// The client's idempotency key: sending again with the same key returns the first
    /// message instead of creating another.
    pub client_key: Option<String>,
    /// Reply in this message's thread.
    pub thread_root_id: Option<MessageId>,
    /// Files the sender uploaded to this conversation and has not sent yet.
    pub file_ids: Vec<FileId>,
}

#[derive(Clone, Debug)]
pub struct Sent {
    pub message: Message,
    /// True when the key had been used: nothing new was created.
    pub replayed: bool,
}

/// Where a page of history starts (at most one of the three).
#[derive(Clone, Debug, Default)]
pub struct HistoryQuery {
    pub before: Option<i64>,
    pub after: Option<i64>,
    pub around: Option<MessageId>,
    pub limit: Option<u32>,
}

/// A page of messages in ascending order.
#[derive(Clone, Debug)]
pub struct History {
    pub items: Vec<Message>,
    pub more_before: bool,
    pub more_after: bool,
}

/// The caller's state in a thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadState {
    pub root_id: MessageId,
    pub following: bool,
    pub read_seq: i64,
}

/// Mentions as stored on the message, and the people to notify.
#[derive(Clone, Debug, Default)]
struct Resolved {
    stored: Mentions,
    notify: Vec<UserId>,
}

/// Earlier versions one message keeps (edits beyond are refused).
pub const EDITS_MAX: i64 = 500;

/// Departments mentioned in one message, at most.
const DEPARTMENT_MENTIONS_MAX: usize = 20;

/// The refusal of an edit past [`EDITS_MAX`].
fn too_many_edits() -> Error {
    Error::new(ErrorCode::Conflict)
        .with_message(format!("A message keeps at most {EDITS_MAX} earlier versions; send a new message instead."))
}

/// The refusal of text for a thread whose first message was deleted (nobody can reply
/// there): a reply, a draft of one, a typing notice.
pub(crate) fn thread_closed() -> Error {
    Error::invalid("thread_root_id", "the thread's first message was deleted")
}

/// The refusal of a change to a deleted message.
fn deleted() -> Error {
    Error::new(ErrorCode::Conflict).with_message("The message was deleted.")
}

/// More than one of before, after and around: the error names the last one given.
fn invalid_anchor(q: &HistoryQuery) -> Error {
    Error::new(ErrorCode::InvalidParameter)
        .with_field(if q.around.is_some() { "around" } else { "after" })
        .with_message("Give at most one of before, after and around.")
}

/// A page edge given as a sequence number (0 or more).
fn edge(field: &'static str, seq: i64) -> Result<i64> {
    if seq < 0 {
        return Err(Error::new(ErrorCode::InvalidParameter)
            .with_field(field)
            .with_message("A sequence number is 0 or more."));
    }
    Ok(seq)
}

impl Services {
    /// Checks that `root` is a thread of `conversation` (a top-level message in it), for
    /// input naming a thread: `invalid_input` on `thread_root_id` otherwise.
    pub(crate) async fn check_thread_of(&self, conversation: ConversationId, root: MessageId) -> Result<Message> {
        let m = messages::get(&mut self.store.reader().await?, root).await?;
        m.filter(|m| m.conversation_id == conversation && m.thread_root_id.is_none())
            .ok_or_else(|| Error::invalid("thread_root_id", "no such thread in this conversation"))
    }

    async fn resolve_mentions(&self, auth: &Authenticated, a: &Access, body: &str) -> Result<Resolved> {
        let mut parsed = parse_mentions(body);
        // `@channel` and department mentions only where the role allows them; otherwise
        // they stay plain text.
        let channel = parsed.channel && perm::can_mention_everyone(&auth.actor, &a.facts);
        if !perm::can_mention_departments(&auth.actor, &a.facts, 0) {
            parsed.department_ids.clear();
        }
        if parsed.user_ids.is_empty() && parsed.usernames.is_empty() && parsed.department_ids.is_empty() {
            return Ok(Resolved { stored: Mentions { channel, ..Mentions::default() }, notify: Vec::new() });
        }
        let db = &mut self.store.reader().await?;
        let mut explicit: BTreeSet<UserId> = parsed.user_ids;
        if !parsed.usernames.is_empty() {
            let names: Vec<String> =
                parsed.usernames.iter().map(|n| n.to_ascii_lowercase()).take(MENTIONS_MAX).collect();
            explicit.extend(users::ids_by_usernames(db, &names).await?);
        }
        let explicit: Vec<UserId> = explicit.into_iter().take(MENTIONS_MAX).collect();
        let user_ids = members::filter_members(db, a.id, &explicit).await?;
        let mut department_ids: Vec<DepartmentId> = Vec::new();
        for d in parsed.department_ids.into_iter().take(DEPARTMENT_MENTIONS_MAX) {
            if departments::get(db, d).await?.is_some() {
                department_ids.push(d);
            }
        }
        let mut notify: BTreeSet<UserId> = user_ids.iter().copied().collect();
        if !department_ids.is_empty() {
            // A department mention reaches everyone in the conversation from that department
            // or below it: as many as one may name, or as many as `@channel` for those who
            // may use it.
            let mut covered = BTreeSet::new();
            for d in &department_ids {
                covered.extend(departments::subtree(db, *d).await?);
            }
            let covered: Vec<DepartmentId> = covered.into_iter().collect();
            let mut reached = members::members_in_departments(db, a.id, &covered).await?;
            reached.retain(|u| *u != auth.actor.user_id);
            if perm::can_mention_departments(&auth.actor, &a.facts, reached.len()) {
                notify.extend(reached);
            } else {
                department_ids.clear();
            }
        }
        notify.remove(&auth.actor.user_id);
        Ok(Resolved { stored: Mentions { user_ids, department_ids, channel }, notify: notify.into_iter().collect() })
    }

    /// Loads a message and the caller's access to its conversation; messages in
    /// conversations the caller may not see are `not_found`.
    async fn message_access(&self, db: &mut dyn Db, auth: &Authenticated, id: MessageId) -> Result<(Message, Access)> {
        let m = messages::get(db, id).await?.ok_or_else(Error::not_found)?;
        let a = self.access(db, &auth.actor, m.conversation_id).await?;
        Ok((m, a))
    }

    /// Sends a message (or a thread reply). Acknowledged only once durable; a retry with the
    /// same `client_key` returns the original message.
    pub async fn send_message(
        &self,
        auth: &Authenticated,
        conversation: ConversationId,
        input: SendMessage,
    ) -> Result<Sent> {
        let me = auth.actor.user_id;
        if input.file_ids.len() > FILES_PER_MESSAGE_MAX {
            return Err(Error::invalid("file_ids", format!("at most {FILES_PER_MESSAGE_MAX} files per message")));
        }
        // Each file once, in the order first given.
        let mut file_ids = input.file_ids.clone();
        let mut seen = std::collections::HashSet::new();
        file_ids.retain(|f| seen.insert(*f));
        // A message may be only its files.
        let body = if !file_ids.is_empty() && input.body.trim().is_empty() {
            String::new()
        } else {
            message::validate_body(&input.body)?
        };
        let client_key = input.client_key.as_deref().map(message::validate_client_key).transpose()?;
        let checked = self.send_checks(auth, conversation, input.thread_root_id, &body).await;
        let (root, resolved) = match (checked, &input.client_key) {
            (Ok(ok), _) => ok,
            // A retry of a send that was stored (its answer lost) but may no longer be made now
            // (the thread's first message deleted, the conversation archived meanwhile) gets
            // the message it stored, as any retry does.
            // (Only for someone who may still read it there.)
            (Err(e), Some(key)) => match messages::by_client_key(&mut self.store.reader().await?, me, key).await? {
                Some(existing)
                    if existing.conversation_id == conversation
                        && perm::can_read(&auth.actor, &self.access_cached(&auth.actor, conversation).await?.facts) =>
                {
                    let thread = self.thread_named(existing.thread_root_id, input.thread_root_id).await?;
                    return self.replayed(existing, conversation, thread, &body, &file_ids).await;
                }
                _ => return Err(e),
            },
            (Err(e), None) => return Err(e),
        };

        let (id, at, sent_body, sent_files) = (MessageId::new(), now(), body.clone(), file_ids.clone());
        let sent_thread = root.as_ref().map(|r| r.id);
        let written = if root.is_none() && resolved.notify.is_empty() && file_ids.is_empty() {
            // The common case goes to the writer as data: consecutive sends are written with
            // one statement per group commit.
            let draft = NewMessage {
                id,
                conversation_id: conversation,
                seq: 0,
                sender_id: me,
                thread_root_id: None,
                body,
                mentions: resolved.stored,
                client_key: client_key.clone(),
                at,
            };
            self.store.send(draft).await.and_then(|m| {
                m.map(|message| Sent { message, replayed: false })
                    .ok_or_else(|| Error::forbidden().with_message("You may no longer post in this conversation."))
            })
        } else {
            self.send_with_effects(conversation, me, id, at, body, client_key.clone(), resolved, root, file_ids).await
        };
        // A retry hits the unique (sender, client_key) index: answer it with the message
        // that was stored first. (Retries are rare, so the first attempt pays no lookup.)
        let sent = match (written, &input.client_key) {
            (Err(e), Some(key)) if e.code == ErrorCode::Conflict => {
                let mut stored = messages::by_client_key(&mut self.store.reader().await?, me, key).await?;
                if stored.is_none() {
                    // The first attempt may be in the writer's batch still (a retry queued
                    // behind it meets its row before the commit): wait for that batch.
                    self.store.settled().await?;
                    stored = messages::by_client_key(&mut self.store.reader().await?, me, key).await?;
                }
                match stored {
                    Some(existing) => {
                        self.replayed(existing, conversation, sent_thread, &sent_body, &sent_files).await?
                    }
                    None => return Err(e),
                }
            }
            (other, _) => other?,
        };
        metrics::counter!("qiao_messages_sent_total").increment(u64::from(!sent.replayed));
        Ok(sent)
    }

    /// What a send checks before writing: the caller may post here, the thread it replies in
    /// (its root: replying to a reply continues the same thread) is open, its mentions, and
    /// the sender's budget.
    async fn send_checks(
        &self,
        auth: &Authenticated,
        conversation: ConversationId,
        thread_root_id: Option<MessageId>,
        body: &str,
    ) -> Result<(Option<Message>, Resolved)> {
        // The common case (a cached membership, no thread, no mentions) reads nothing.
        let a = self.access_cached(&auth.actor, conversation).await?;
        if !perm::can_post(&auth.actor, &a.facts) {
            return Err(a.deny(
                &auth.actor,
                if a.member.is_none() {
                    "Join the conversation to post in it."
                } else {
                    "You may not post in this conversation."
                },
            ));
        }
        let root = match thread_root_id {
            Some(id) => {
                let mut r = self.store.reader().await?;
                let m = messages::get(&mut r, id).await?.filter(|m| m.conversation_id == conversation);
                let m = m.ok_or_else(|| Error::invalid("thread_root_id", "no such message in this conversation"))?;
                // Replying to a reply continues the same thread.
                let root = match m.thread_root_id {
                    Some(root) => messages::get(&mut r, root).await?.ok_or_else(Error::not_found)?,
                    None => m,
                };
                if root.deleted_at.is_some() {
                    return Err(thread_closed());
                }
                Some(root)
            }
            None => None,
        };
        let resolved = self.resolve_mentions(auth, &a, body).await?;
        self.message_rate.check(auth.actor.user_id)?;
        Ok((root, resolved))
    }

    /// The thread a retried send names, as its stored message has it: `stored` when `given`
    /// is that root or a reply in its thread, `given` otherwise (so that [`replay`] tells
    /// them apart).
    async fn thread_named(&self, stored: Option<MessageId>, given: Option<MessageId>) -> Result<Option<MessageId>> {
        match (stored, given) {
            (Some(root), Some(id)) if id != root => {
                let m = messages::get(&mut self.store.reader().await?, id).await?;
                Ok(if m.is_some_and(|m| m.thread_root_id == Some(root)) { stored } else { given })
            }
            _ => Ok(given),
        }
    }

    /// A retried send's answer: the message its key stored, if the retry asks for the same
    /// thing ([`replay`]; an edit since changed the text, so the first version is compared).
    async fn replayed(
        &self,
        existing: Message,
        conversation: ConversationId,
        thread: Option<MessageId>,
        body: &str,
        file_ids: &[FileId],
    ) -> Result<Sent> {
        let first = match existing.edited_at {
            Some(_) => {
                let mut r = self.store.reader().await?;
                messages::edits(&mut r, existing.id).await?.into_iter().next().map(|e| e.body)
            }
            None => None,
        };
        replay(existing, first, conversation, thread, body, file_ids)
    }

    /// Sends a thread reply or a message with mentions: besides the message, it records
    /// mentions, thread counts and followers in the same transaction.
    #[allow(clippy::too_many_arguments)]
    async fn send_with_effects(
        &self,
        conversation: ConversationId,
        me: UserId,
        id: MessageId,
        at: i64,
        body: String,
        client_key: Option<String>,
        resolved: Resolved,
        root: Option<Message>,
        file_ids: Vec<FileId>,
    ) -> Result<Sent> {
        self.store
            .write(move |tx| {
                let (body, client_key, resolved, root, file_ids) =
                    (body.clone(), client_key.clone(), resolved.clone(), root.clone(), file_ids.clone());
                Box::pin(async move {
                    // One statement re-checks that the sender is still a member and the
                    // conversation still open, takes the next sequence number and inserts.
                    let draft = NewMessage {
                        id,
                        conversation_id: conversation,
                        seq: 0,
                        sender_id: me,
                        thread_root_id: root.as_ref().map(|r| r.id),
                        body,
                        mentions: resolved.stored.clone(),
                        client_key,
                        at,
                    };
                    let mut message = messages::insert_next(tx, &draft).await?.ok_or_else(|| {
                        Error::forbidden().with_message("You may no longer post in this conversation.")
                    })?;
                    if !file_ids.is_empty() {
                        message.files =
                            files::attach(tx, &file_ids, message.id, me, conversation).await?.ok_or_else(|| {
                                Error::invalid(
                                    "file_ids",
                                    "each file must be your own upload to this conversation, not sent yet",
                                )
                            })?;
                    }
                    let seq = message.seq;
                    if !resolved.notify.is_empty() {
                        messages::insert_mentions(tx, &message, &resolved.notify).await?;
                    }
                    let thread = match &root {
                        Some(root) => Some(record_reply(tx, root, &message, &resolved.notify).await?),
                        None => None,
                    };
                    let data = EventData::MessageCreated { message: message.clone(), thread };
                    tx.append_event(Audience::Conversation(conversation), Some(seq), &data, at).await?;
                    Ok(Sent { message, replayed: false })
                })
            })
            .await
    }

    /// One message from a conversation the caller may read.
    pub async fn get_message(&self, auth: &Authenticated, id: MessageId) -> Result<Message> {
        Ok(self.message_access(&mut self.store.reader().await?, auth, id).await?.0)
    }

    /// A page of a conversation's top-level messages.
    pub async fn history(
        &self,
        auth: &Authenticated,
        conversation: ConversationId,
        q: HistoryQuery,
    ) -> Result<History> {
        let mut r = self.store.reader().await?;
        self.access(&mut r, &auth.actor, conversation).await?;
        let anchor = match (q.before, q.after, q.around) {
            (None, None, None) => Anchor::Latest,
            (Some(s), None, None) => Anchor::Before(edge("before", s)?),
            (None, Some(s), None) => Anchor::After(edge("after", s)?),
            (None, None, Some(id)) => {
                let m = messages::get(&mut r, id).await?.filter(|m| m.conversation_id == conversation);
                let m = m.ok_or_else(|| Error::not_found().with_message("No such message in this conversation."))?;
                // Jumping to a reply shows its thread's root in the channel.
                let seq = match m.thread_root_id {
                    Some(root) => messages::get(&mut r, root).await?.map_or(m.seq, |root| root.seq),
                    None => m.seq,
                };
                Anchor::Around(seq)
            }
            _ => return Err(invalid_anchor(&q)),
        };
        let page = messages::page(&mut r, conversation, None, anchor, page_limit(q.limit)?).await?;
        Ok(History { items: page.items, more_before: page.more_before, more_after: page.more_after })
    }

    /// A thread: its root and a page of replies (oldest first by default).
    pub async fn thread(&self, auth: &Authenticated, root: MessageId, q: HistoryQuery) -> Result<(Message, History)> {
        let mut r = self.store.reader().await?;
        let (mut root, _) = self.message_access(&mut r, auth, root).await?;
        if let Some(actual) = root.thread_root_id {
            root = messages::get(&mut r, actual).await?.ok_or_else(Error::not_found)?;
        }
        let anchor = match (q.before, q.after, q.around) {
            (None, None, None) => Anchor::After(0),
            (Some(s), None, None) => Anchor::Before(edge("before", s)?),
            (None, Some(s), None) => Anchor::After(edge("after", s)?),
            (None, None, Some(id)) => {
                let m = messages::get(&mut r, id).await?.filter(|m| m.thread_root_id == Some(root.id));
                Anchor::Around(m.ok_or_else(|| Error::not_found().with_message("No such reply in this thread."))?.seq)
            }
            _ => return Err(invalid_anchor(&q)),
        };
        let page = messages::page(&mut r, root.conversation_id, Some(root.id), anchor, page_limit(q.limit)?).await?;
        Ok((root, History { items: page.items, more_before: page.more_before, more_after: page.more_after }))
    }

    /// Edits one's own message (earlier versions are kept for the audit log).
    pub async fn edit_message(&self, auth: &Authenticated, id: MessageId, body: &str) -> Result<Message> {
        let body = message::validate_body(body)?;
        let mut r = self.store.reader().await?;
        let (m, a) = self.message_access(&mut r, auth, id).await?;
        if !perm::can_edit_message(&auth.actor, &a.facts, m.sender_id) {
            return Err(a.deny(
                &auth.actor,
                if m.sender_id != auth.actor.user_id {
                    "Only its author can edit a message."
                } else {
                    "You can no longer post in this conversation, so your messages here cannot be edited."
                },
            ));
        }
        if m.deleted_at.is_some() {
            return Err(deleted());
        }
        if m.body == body {
            return Ok(m);
        }
        // Each edit is a new version kept for the audit log and an event to every member.
        self.message_rate.check(auth.actor.user_id)?;
        if messages::edit_count(&mut r, id).await? >= EDITS_MAX {
            return Err(too_many_edits());
        }
        drop(r);
        let resolved = self.resolve_mentions(auth, &a, &body).await?;
        let (me, conversation, at) = (auth.actor.user_id, m.conversation_id, now());
        let actor = auth.actor.clone();
        self.store
            .write(move |tx| {
                let (body, resolved, actor) = (body.clone(), resolved.clone(), actor.clone());
                Box::pin(async move {
                    // Checked again here: a deletion or other edits, the author leaving or
                    // losing the right to post, or an archiving may have committed since the
                    // checks above.
                    let now = access_now(tx, &actor, conversation).await?;
                    let current = messages::get(tx, id).await?.ok_or_else(Error::not_found)?;
                    if !perm::can_edit_message(&actor, &now.facts, current.sender_id) {
                        return Err(now.deny(&actor, "You can no longer edit this message."));
                    }
                    if current.deleted_at.is_some() {
                        return Err(deleted());
                    }
                    if messages::edit_count(tx, id).await? >= EDITS_MAX {
                        return Err(too_many_edits());
                    }
                    messages::edit(tx, id, &body, &resolved.stored, at, me).await?;
                    let earlier = messages::delete_mentions(tx, id).await?;
                    let mut message = messages::get(tx, id).await?.ok_or_else(Error::not_found)?;
                    if !resolved.notify.is_empty() {
                        messages::insert_mentions(tx, &message, &resolved.notify).await?;
                        // Newly mentioned in a reply by an edit, as by a send: they follow the
                        // thread (those mentioned before keep whatever they chose since).
                        let newly: Vec<UserId> =
                            resolved.notify.iter().copied().filter(|u| !earlier.contains(u)).collect();
                        if let Some(root) = message.thread_root_id.filter(|_| !newly.is_empty())
                            && let Some(root) = messages::get(tx, root).await?
                        {
                            follow_for(tx, &root, &message, &newly, at).await?;
                        }
                    }
                    let seq = conversations::next_seq(tx, conversation, None).await?;
                    message.edited_at = Some(at);
                    tx.append_event(
                        Audience::Conversation(conversation),
                        Some(seq),
                        &EventData::MessageUpdated { message: message.clone() },
                        at,
                    )
                    .await?;
                    Ok(message)
                })
            })
            .await
    }

    /// Deletes a message: its content goes, a tombstone stays. Authors delete their own;
    /// channel and organisation admins moderate (and that is audited).
    pub async fn delete_message(&self, auth: &Authenticated, id: MessageId, origin: &Origin) -> Result<()> {
        let (m, a) = self.message_access(&mut self.store.reader().await?, auth, id).await?;
        if !perm::can_delete_message(&auth.actor, &a.facts, m.sender_id) {
            return Err(a.deny(&auth.actor, "You may not delete this message."));
        }
        if m.deleted_at.is_some() {
            return Ok(());
        }
        let at = now();
        let moderated = m.sender_id != auth.actor.user_id;
        let entry = audit_entry(
            at,
            Some(auth.actor.user_id),
            "message.delete_other",
            Some(("message", id.to_string())),
            origin,
            json!({ "conversation_id": m.conversation_id, "sender_id": m.sender_id }),
        );
        let (conversation, root, sender) = (m.conversation_id, m.thread_root_id, m.sender_id);
        let actor = auth.actor.clone();
        let hashes = self
            .store
            .write(move |tx| {
                let (entry, actor) = (entry.clone(), actor.clone());
                Box::pin(async move {
                    let now = access_now(tx, &actor, conversation).await?;
                    if !perm::can_delete_message(&actor, &now.facts, sender) {
                        return Err(now.deny(&actor, "You may not delete this message."));
                    }
                    if moderated {
                        audit::record(tx, &entry).await?;
                    }
                    tombstone(tx, conversation, id, root, at).await
                })
            })
            .await?;
        if !hashes.is_empty() {
            self.collect_garbage(hashes).await;
        }
        Ok(())
    }

    /// Adds (`want` true) or takes back (false) the caller's reaction, or toggles it (`None`).
    /// Returns whether the reaction is there now, and the message. Asking for what is so
    /// already writes nothing (a retried request is safe when it says what it wants).
    pub async fn react(
        &self,
        auth: &Authenticated,
        id: MessageId,
        emoji: &str,
        want: Option<bool>,
    ) -> Result<(bool, Message)> {
        // Any reaction already on a message may be taken back, even one the stricter check of
        // new ones would refuse; adding checks it in full.
        let emoji = message::reaction_key(emoji)?;
        let (m, a) = self.message_access(&mut self.store.reader().await?, auth, id).await?;
        if !perm::can_react(&auth.actor, &a.facts) {
            return Err(a.deny(&auth.actor, "Join the conversation to react."));
        }
        if m.deleted_at.is_some() {
            return Err(deleted());
        }
        self.message_rate.check(auth.actor.user_id)?;
        let (me, conversation, at) = (auth.actor.user_id, m.conversation_id, now());
        let actor = auth.actor.clone();
        self.store
            .write(move |tx| {
                let (emoji, actor) = (emoji.clone(), actor.clone());
                Box::pin(async move {
                    let now = access_now(tx, &actor, conversation).await?;
                    if !perm::can_react(&actor, &now.facts) {
                        return Err(now.deny(&actor, "Join the conversation to react."));
                    }
                    let removed = want != Some(true) && messages::remove_reaction(tx, id, &emoji, me).await?;
                    let (there, changed) = if removed || want == Some(false) {
                        (false, removed)
                    } else {
                        (true, add_reaction(tx, id, &emoji, me, at).await?)
                    };
                    if changed {
                        let data = if there {
                            EventData::ReactionAdded { message_id: id, emoji, user_id: me }
                        } else {
                            EventData::ReactionRemoved { message_id: id, emoji, user_id: me }
                        };
                        emit(tx, conversation, &data, at).await?;
                    }
                    Ok((there, messages::get(tx, id).await?.ok_or_else(Error::not_found)?))
                })
            })
            .await
    }

    /// Pins or unpins a message.
    pub async fn set_pinned(&self, auth: &Authenticated, id: MessageId, pinned: bool) -> Result<Message> {
        let (m, a) = self.message_access(&mut self.store.reader().await?, auth, id).await?;
        if !perm::can_pin(&auth.actor, &a.facts) {
            return Err(a.deny(&auth.actor, "You may not pin messages here."));
        }
        if m.deleted_at.is_some() {
            return Err(deleted());
        }
        if m.pinned_at.is_some() == pinned {
            return Ok(m);
        }
        self.action_rate.check(auth.actor.user_id)?;
        let (me, conversation, at) = (auth.actor.user_id, m.conversation_id, now());
        let actor = auth.actor.clone();
        self.store
            .write(move |tx| {
                let actor = actor.clone();
                Box::pin(async move {
                    let now = access_now(tx, &actor, conversation).await?;
                    if !perm::can_pin(&actor, &now.facts) {
                        return Err(now.deny(&actor, "You may not pin messages here."));
                    }
                    // Checked again here: a deletion (which unpins) or another pin or unpin may
                    // have committed since the checks above.
                    let current = messages::get(tx, id).await?.ok_or_else(Error::not_found)?;
                    if current.deleted_at.is_some() {
                        return Err(deleted());
                    }
                    if current.pinned_at.is_some() == pinned {
                        return Ok(current);
                    }
                    if pinned && messages::count_pinned(tx, conversation).await? >= PINS_MAX {
                        return Err(Error::new(ErrorCode::Conflict)
                            .with_message(format!("At most {PINS_MAX} pinned messages; unpin one first.")));
                    }
                    messages::set_pinned(tx, id, pinned.then_some((at, me))).await?;
                    let message = messages::get(tx, id).await?.ok_or_else(Error::not_found)?;
                    emit(tx, conversation, &EventData::MessageUpdated { message: message.clone() }, at).await?;
                    Ok(message)
                })
            })
            .await
    }

    /// Pinned messages of a conversation the caller may read.
    pub async fn pins(&self, auth: &Authenticated, conversation: ConversationId) -> Result<Vec<Message>> {
        let mut r = self.store.reader().await?;
        self.access(&mut r, &auth.actor, conversation).await?;
        messages::pinned(&mut r, conversation).await
    }

    /// Earlier versions of an edited message: for organisation administrators (the audit
    /// trail), in conversations they may see.
    pub async fn message_edits(&self, auth: &Authenticated, id: MessageId) -> Result<Vec<Edit>> {
        let mut r = self.store.reader().await?;
        self.message_access(&mut r, auth, id).await?;
        if !auth.actor.is_org_admin() {
            return Err(Error::forbidden().with_message("Only administrators can see earlier versions."));
        }
        messages::edits(&mut r, id).await
    }

    /// Marks the conversation read up to `seq` (default: everything). Positions only move
    /// forward here; see [`Services::mark_unread`].
    pub async fn mark_read(&self, auth: &Authenticated, conversation: ConversationId, seq: Option<i64>) -> Result<i64> {
        if seq.is_some_and(|s| s < 0) {
            return Err(Error::invalid("seq", "must not be negative"));
        }
        let a = self.access(&mut self.store.reader().await?, &auth.actor, conversation).await?;
        if a.member.is_none() {
            return Err(Error::forbidden().with_message("Join the conversation first."));
        }
        let (me, at) = (auth.actor.user_id, now());
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    let (_, read) = members::get(tx, conversation, me).await?.ok_or_else(Error::forbidden)?;
                    let last = conversations::get(tx, conversation).await?.ok_or_else(Error::not_found)?.last_seq;
                    let target = seq.unwrap_or(last).min(last);
                    if target <= read {
                        return Ok(read);
                    }
                    set_read(tx, conversation, me, target, at).await?;
                    Ok(target)
                })
            })
            .await
    }

    /// Marks the conversation unread from a message on (the read position moves to just
    /// before it).
    pub async fn mark_unread(
        &self,
        auth: &Authenticated,
        conversation: ConversationId,
        from: MessageId,
    ) -> Result<i64> {
        let mut r = self.store.reader().await?;
        let a = self.access(&mut r, &auth.actor, conversation).await?;
        if a.member.is_none() {
            return Err(Error::forbidden().with_message("Join the conversation first."));
        }
        let m = messages::get(&mut r, from)
            .await?
            .filter(|m| m.conversation_id == conversation && m.thread_root_id.is_none());
        let m = m.ok_or_else(|| Error::invalid("message_id", "no such top-level message in this conversation"))?;
        drop(r);
        let (me, at, target) = (auth.actor.user_id, now(), m.seq - 1);
        self.action_rate.check(me)?;
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    let (_, read) = members::get(tx, conversation, me).await?.ok_or_else(Error::forbidden)?;
                    // Already there: nothing changes, and the person's devices are not told.
                    if read != target {
                        set_read(tx, conversation, me, target, at).await?;
                    }
                    Ok(target)
                })
            })
            .await
    }

    /// Follows or unfollows a thread.
    pub async fn set_thread_following(
        &self,
        auth: &Authenticated,
        root: MessageId,
        follow: bool,
    ) -> Result<ThreadState> {
        let (root, a) = self.thread_access(auth, root).await?;
        let (me, at, conversation) = (auth.actor.user_id, now(), a.id);
        self.action_rate.check(me)?;
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    still_member(tx, conversation, me).await?;
                    // Followed threads have a read position; asking for what is so already
                    // changes nothing and tells no device.
                    let current = threads::read_position(tx, me, root).await?;
                    match (follow, current) {
                        (true, Some(read)) => {
                            return Ok(ThreadState { root_id: root, following: true, read_seq: read });
                        }
                        (false, None) => return Ok(ThreadState { root_id: root, following: false, read_seq: 0 }),
                        _ => {}
                    }
                    let read_seq = if follow {
                        let last = conversations::get(tx, conversation).await?.ok_or_else(Error::not_found)?.last_seq;
                        threads::follow(tx, me, root, conversation, last).await?;
                        last
                    } else {
                        threads::unfollow(tx, me, root).await?;
                        0
                    };
                    let data = EventData::ThreadState {
                        conversation_id: conversation,
                        root_id: root,
                        following: follow,
                        read_seq,
                    };
                    tx.append_event(Audience::User(me), None, &data, at).await?;
                    Ok(ThreadState { root_id: root, following: follow, read_seq })
                })
            })
            .await
    }

    /// Marks a thread read up to `seq` (default: everything), following it if needed.
    pub async fn mark_thread_read(
        &self,
        auth: &Authenticated,
        root: MessageId,
        seq: Option<i64>,
    ) -> Result<ThreadState> {
        if seq.is_some_and(|s| s < 0) {
            return Err(Error::invalid("seq", "must not be negative"));
        }
        let (root, a) = self.thread_access(auth, root).await?;
        let (me, at, conversation) = (auth.actor.user_id, now(), a.id);
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    still_member(tx, conversation, me).await?;
                    let last = conversations::get(tx, conversation).await?.ok_or_else(Error::not_found)?.last_seq;
                    let target = seq.unwrap_or(last).min(last);
                    let read = match threads::read_position(tx, me, root).await? {
                        // Read that far already: nothing changes, no device is told.
                        Some(current) if current >= target => {
                            return Ok(ThreadState { root_id: root, following: true, read_seq: current });
                        }
                        Some(_) => {
                            threads::set_read(tx, me, root, target).await?;
                            target
                        }
                        None => {
                            threads::follow(tx, me, root, conversation, target).await?;
                            target
                        }
                    };
                    let data = EventData::ThreadState {
                        conversation_id: conversation,
                        root_id: root,
                        following: true,
                        read_seq: read,
                    };
                    tx.append_event(Audience::User(me), None, &data, at).await?;
                    Ok(ThreadState { root_id: root, following: true, read_seq: read })
                })
            })
            .await
    }

    /// Threads the caller follows, with unread counts, most recent reply first.
    /// Threads the caller follows, most recent reply first, each with its root message (what
    /// a list of threads shows).
    pub async fn followed_threads(
        &self,
        auth: &Authenticated,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<(FollowedThread, Message)>> {
        let limit = page_limit(limit)?;
        // Keyset cursor: the last thread's (sort_at, root id).
        let after = cursor.map(decode_keyset::<(i64, MessageId)>).transpose()?;
        let mut r = self.store.reader().await?;
        let mut followed = threads::followed(&mut r, auth.actor.user_id, after, limit + 1).await?;
        let next_cursor = if followed.len() > limit as usize {
            followed.truncate(limit as usize);
            followed.last().map(|t| encode_keyset(&(t.sort_at, t.root_id)))
        } else {
            None
        };
        let ids: Vec<MessageId> = followed.iter().map(|t| t.root_id).collect();
        let mut roots: std::collections::HashMap<MessageId, Message> =
            messages::get_many(&mut r, &ids).await?.into_iter().map(|m| (m.id, m)).collect();
        // A root is never deleted from the table (only marked), so each is found.
        let items = followed.into_iter().filter_map(|t| roots.remove(&t.root_id).map(|m| (t, m))).collect();
        Ok(Page { items, next_cursor })
    }

    /// A thread root the caller may take part in (as a member of its conversation).
    async fn thread_access(&self, auth: &Authenticated, root: MessageId) -> Result<(MessageId, Access)> {
        let mut r = self.store.reader().await?;
        let (m, a) = self.message_access(&mut r, auth, root).await?;
        if a.member.is_none() {
            return Err(Error::forbidden().with_message("Join the conversation first."));
        }
        Ok((m.thread_root_id.unwrap_or(m.id), a))
    }
}

/// Adds a reaction after checking it in full; false if it was there already.
async fn add_reaction(tx: &mut Tx, id: MessageId, emoji: &str, me: UserId, at: i64) -> Result<bool> {
    message::validate_emoji(emoji)?;
    let existing = messages::get(tx, id).await?.ok_or_else(Error::not_found)?;
    // Checked again here: a deletion may have committed since the request's check (a
    // deleted message keeps no reactions).
    if existing.deleted_at.is_some() {
        return Err(deleted());
    }
    if !existing.reactions.iter().any(|r| r.emoji == emoji)
        && messages::emoji_count(tx, id).await? >= EMOJI_PER_MESSAGE_MAX
    {
        return Err(Error::invalid(
            "emoji",
            format!("a message takes at most {EMOJI_PER_MESSAGE_MAX} different emoji"),
        ));
    }
    messages::add_reaction(tx, id, emoji, me, at).await
}

/// Deletes a message inside a write: its text, its files (returns their blobs' hashes, queued
/// for removal once nothing else refers to them), announced; a reply no longer counts in its
/// thread's summary.
pub(crate) async fn tombstone(
    tx: &mut Tx,
    conversation: ConversationId,
    id: MessageId,
    root: Option<MessageId>,
    at: i64,
) -> Result<Vec<String>> {
    messages::tombstone(tx, id, at).await?;
    let gone = files::delete_for_message(tx, id, at).await?;
    let hashes: Vec<String> = gone.iter().flat_map(|f| f.hashes()).collect();
    crate::files::queue_removals(tx, &hashes, at).await?;
    let data = EventData::MessageDeleted { message_id: id, thread_root_id: root, deleted_at: at };
    emit(tx, conversation, &data, at).await?;
    match root {
        // Nobody can reply in its thread any more: drafts of replies there go, on every device.
        None => {
            for user in qiao_store::drafts::delete_for_thread(tx, conversation, id).await? {
                let draft = Draft {
                    conversation_id: conversation,
                    thread_root_id: Some(id),
                    body: String::new(),
                    updated_at: at,
                };
                tx.append_event(Audience::User(user), None, &EventData::DraftUpdated { draft }, at).await?;
            }
        }
        // A deleted reply no longer counts in its thread's summary.
        Some(root) => {
            messages::recount_replies(tx, root).await?;
            if let Some(message) = messages::get(tx, root).await? {
                emit(tx, conversation, &EventData::MessageUpdated { message }, at).await?;
            }
        }
    }
    Ok(hashes)
}

/// A retried send: the original message, if the retry asks for the same thing (the same
/// conversation, thread, text and files) — as it was sent: `first_body` is its text before
/// any edit, and files removed from it since, or all of them and its text once it was
/// deleted, are not held against the retry (it gets the message as it is now).
fn replay(
    existing: Message,
    first_body: Option<String>,
    conversation: ConversationId,
    thread: Option<MessageId>,
    body: &str,
    file_ids: &[FileId],
) -> Result<Sent> {
    let deleted = existing.deleted_at.is_some();
    let same_body = deleted || first_body.as_deref().unwrap_or(&existing.body) == body;
    // Files can be deleted from a message, never added.
    let same_files = existing.files.iter().all(|f| file_ids.contains(&f.id));
    if existing.conversation_id != conversation || existing.thread_root_id != thread || !same_body || !same_files {
        return Err(Error::new(ErrorCode::Conflict)
            .with_field("client_key")
            .with_message("This client_key was already used for a different message; use a new key."));
    }
    Ok(Sent { message: existing, replayed: true })
}

/// Counts a reply on its root; the replier, a root author hearing their first reply, and
/// anyone mentioned follow the thread.
async fn record_reply(tx: &mut Tx, root: &Message, reply: &Message, mentioned: &[UserId]) -> Result<ThreadSummary> {
    let at = reply.created_at;
    let summary = messages::add_reply(tx, root.id, reply.sender_id, at).await?;
    // Replying follows the thread, read up to the reply: the author's other devices are told.
    threads::follow(tx, reply.sender_id, root.id, root.conversation_id, reply.seq).await?;
    let data = EventData::ThreadState {
        conversation_id: root.conversation_id,
        root_id: root.id,
        following: true,
        read_seq: reply.seq,
    };
    tx.append_event(Audience::User(reply.sender_id), None, &data, at).await?;
    let mut newly: Vec<UserId> = mentioned.to_vec();
    // The root's author follows from the first reply, if still in the conversation (one who
    // left would find the thread followed on rejoining, which starts afresh otherwise).
    if summary.reply_count == 1
        && root.sender_id != reply.sender_id
        && members::get(tx, root.conversation_id, root.sender_id).await?.is_some()
    {
        newly.push(root.sender_id);
    }
    follow_for(tx, root, reply, &newly, at).await?;
    Ok(summary)
}

/// Makes each of `users` who does not yet follow `root`'s thread follow it, with the replies
/// from `reply` on unread (the one that brought them in: earlier ones, and any `@channel`
/// among them, were before their time), and tells their devices. Checked here, inside the
/// write: someone who left the conversation since `users` was read follows nothing (a follow
/// would come back if they rejoined).
async fn follow_for(tx: &mut Tx, root: &Message, reply: &Message, users: &[UserId], at: i64) -> Result<()> {
    let read_seq = (reply.seq - 1).max(root.seq);
    for &u in users {
        if threads::read_position(tx, u, root.id).await?.is_none()
            && members::get(tx, root.conversation_id, u).await?.is_some()
        {
            threads::follow(tx, u, root.id, root.conversation_id, read_seq).await?;
            let data = EventData::ThreadState {
                conversation_id: root.conversation_id,
                root_id: root.id,
                following: true,
                read_seq,
            };
            tx.append_event(Audience::User(u), None, &data, at).await?;
        }
    }
    Ok(())
}

/// Moves a read position and tells the person's other devices.
async fn set_read(tx: &mut Tx, conversation: ConversationId, user: UserId, seq: i64, at: i64) -> Result<()> {
    members::set_read(tx, conversation, user, seq).await?;
    tx.append_event(
        Audience::User(user),
        None,
        &EventData::ReadUpdated { conversation_id: conversation, read_seq: seq },
        at,
    )
    .await?;
    Ok(())
}

/// Inside a write: the actor's standing in a conversation as committed now (a removal, a role
/// change or an archiving may have committed since the request's checks on a read
/// connection); `not_found` when they may no longer see it.
pub(crate) async fn access_now(tx: &mut Tx, actor: &perm::Actor, conversation: ConversationId) -> Result<Access> {
    let facts = conversations::facts(tx, conversation, actor.user_id).await?.ok_or_else(Error::not_found)?;
    crate::conversations::access_from(actor, conversation, facts)
}

/// Inside a write: the person is (still) a member. Leaving deletes one's thread follows and
/// drafts there, so one written as the person left must not outlive it (and come back if
/// they rejoin); the conversation is then out of sight (404).
pub(crate) async fn still_member(tx: &mut Tx, conversation: ConversationId, user: UserId) -> Result<()> {
    match members::get(tx, conversation, user).await? {
        Some(_) => Ok(()),
        None => Err(Error::not_found()),
    }
}
