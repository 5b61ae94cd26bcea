//! What the realtime gateway asks of the store: where a connecting client stands, what it
//! missed, and whom it may follow or notify.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use qiao_domain::ErrorCode;
use qiao_domain::event::{Audience, Event};
use qiao_domain::perm::Actor;
use qiao_domain::{ConversationId, Error, MessageId, Millis, Result, UserId};
use qiao_store::{events, members, presence};

use crate::Services;
use crate::auth::Authenticated;
use crate::ratelimit::RateConfig;

/// What a connecting client gets before live events.
#[derive(Debug)]
pub enum Catchup {
    /// A fresh start: load state over HTTP, then apply events after `head`.
    Fresh,
    /// The frames of everything missed since the client's position, in order.
    Events(Vec<Bytes>),
    /// The missed events cannot be sent: reload state over HTTP.
    Resync(ResyncReason),
}

/// Why a resuming client must reload instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResyncReason {
    /// It missed more events than the resume window allows.
    TooFarBehind,
    /// Its position is older than the event log keeps.
    Expired,
    /// Its position was never given out here: negative, or ahead of the head (a server
    /// restored from a backup, or a client that knew another server).
    UnknownPosition,
}

/// How much a resume may send before the client is told to reload instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResumeLimits {
    /// Most missed events (`realtime_resume_window`).
    pub events: i64,
    /// Most bytes of missed frames (`realtime_resume_max_kib`): 10,000 typical frames are
    /// ~6 MB, and the budget keeps one connection's catch-up, held until the client has read
    /// it, from reaching hundreds of MB when the messages are long.
    pub bytes: usize,
}

#[derive(Debug)]
pub struct Start {
    /// The stream position the catch-up reaches.
    pub head: i64,
    pub memberships: Vec<ConversationId>,
    pub catchup: Catchup,
}

/// Whether a person receives an event when catching up: the rule of
/// [`events::for_user`] (the conversations they are in now, their own events, and
/// organisation-wide ones, `staff` ones only for staff).
fn receives(e: &Event, user: UserId, staff: bool, memberships: &HashSet<ConversationId>) -> bool {
    match e.audience {
        Audience::Conversation(c) => memberships.contains(&c),
        Audience::User(u) => u == user,
        Audience::Staff => staff,
        Audience::Everyone => true,
    }
}

/// Realtime connections one person may open on a node: a burst above the per-person cap (a
/// browser with many tabs coming back after a restart), then one a second. Each connection
/// costs an authentication and a catch-up read, so a script reconnecting in a loop must not
/// get them as fast as it can ask.
pub const CONNECT_RATE: RateConfig = RateConfig { per_second: 1.0, burst: 40.0 };

impl Services {
    /// Whether the person may open another realtime connection now (`rate_limited`, with
    /// when to try again, if they have opened too many lately).
    pub fn realtime_admit(&self, auth: &Authenticated) -> Result<()> {
        self.connect_rate.check(auth.user.id).map_err(|e| {
            let wait = e.retry_after_secs.unwrap_or(1);
            e.with_message(format!("You connected too often; wait {wait} s before connecting again."))
        })
    }

    /// Checks, once a connection is registered with the dispatcher and its start
    /// ([`Services::realtime_start`]) has been read, that the session it authenticated with at
    /// its handshake is still what it was: a sign-out, revocation, disabling or role change
    /// committed between the handshake and the start's snapshot closed no connection of this
    /// one's, and the catch-up may hold events committed after it (later ones reach the
    /// connection as events). `unauthenticated` when the session or account has ended,
    /// `conflict` when the person became a guest or stopped being one (the connection must
    /// start again). Answered from the session cache, which those events clear before any
    /// connection hears of them; the gateway also looks for them in a resume's catch-up (the
    /// snapshot may hold one committed a moment before the cache heard of it).
    pub async fn realtime_recheck(&self, token: &str, at_handshake: &Authenticated) -> Result<()> {
        // Any other error (the database, say) passes as it is: the session was not checked,
        // which is no reason to sign the person out.
        let now = self.authenticate(token).await?;
        if now.session.id != at_handshake.session.id {
            return Err(Error::new(ErrorCode::Unauthenticated));
        }
        if now.user.must_change_password {
            return Err(Error::new(ErrorCode::PasswordChangeRequired));
        }
        if now.user.role.is_guest() != at_handshake.user.role.is_guest() {
            return Err(Error::new(ErrorCode::Conflict).with_message("role changed"));
        }
        Ok(())
    }

    /// Where a connecting client stands. Read *after* the connection is registered with the
    /// dispatcher, so that together with what it buffers nothing is missed.
    ///
    /// A resume reads through one snapshot, so the head, the memberships, the oldest kept
    /// position and the missed events agree (a prune or a membership change between two of
    /// those reads could otherwise open a gap). Resumes that need the event log (beyond the
    /// hub's recent window) wait for one of a bounded number of permits first, before they
    /// hold a read connection: a crowd reconnecting after an outage reads the log a few at a
    /// time.
    pub async fn realtime_start(
        &self,
        auth: &Authenticated,
        resume_from: Option<i64>,
        limits: ResumeLimits,
    ) -> Result<Start> {
        let recent = resume_from.and_then(|from| self.hub.recent_after(from));
        let _permit = match (resume_from, &recent) {
            (Some(_), None) => Some(self.catchup_permits.acquire().await.map_err(Error::internal)?),
            _ => None,
        };
        // A fresh start too reads through one snapshot: a join committed between reading the
        // head and the memberships would otherwise count as held from before the head.
        let mut snap = self.store.snapshot().await?;
        let head = events::head(&mut snap).await?;
        let memberships = members::conversation_ids_of(&mut snap, auth.user.id).await?;
        let catchup = match resume_from {
            None => Catchup::Fresh,
            Some(from) if from < 0 || from > head => Catchup::Resync(ResyncReason::UnknownPosition),
            Some(from) if from == head => Catchup::Events(Vec::new()),
            Some(from) => Self::missed(&mut snap, recent, auth, &memberships, from, head, limits).await?,
        };
        snap.end().await?;
        Ok(Start { head, memberships, catchup })
    }

    /// The events a person missed after `from` up to `head`: from the hub's recent events
    /// (`recent`, when its window reaches back to `from`) as far as they reach, the rest from
    /// the event log.
    async fn missed(
        r: &mut qiao_store::Snapshot,
        recent: Option<qiao_bus::RecentEvents>,
        auth: &Authenticated,
        memberships: &[ConversationId],
        from: i64,
        head: i64,
        limits: ResumeLimits,
    ) -> Result<Catchup> {
        let (user, staff) = (auth.user.id, !auth.user.role.is_guest());
        let limit = usize::try_from(limits.events).unwrap_or(usize::MAX).saturating_add(1);
        let mut missed = Vec::new();
        let store_from = match recent {
            Some(recent) => {
                metrics::counter!("qiao_ws_resumes_total", "from" => "memory").increment(1);
                let mine: HashSet<ConversationId> = memberships.iter().copied().collect();
                let frames = recent.events(head).filter(|e| receives(e, user, staff, &mine)).map(|e| e.frame.clone());
                missed.extend(frames.take(limit));
                // The hub may not have been handed the latest commits yet.
                recent.upto.max(from)
            }
            None => {
                metrics::counter!("qiao_ws_resumes_total", "from" => "store").increment(1);
                // Positions before the oldest kept one may have been pruned.
                if events::oldest(r).await?.is_none_or(|oldest| from < oldest - 1) {
                    return Ok(Catchup::Resync(ResyncReason::Expired));
                }
                from
            }
        };
        if store_from < head && missed.len() < limit {
            let rest = (limit - missed.len()) as i64;
            let stored = events::for_user(r, user, staff, store_from, head, rest).await?;
            missed.extend(stored.into_iter().map(|(_, frame)| Bytes::from(frame)));
        }
        Ok(if missed.len() >= limit || too_many_bytes(&missed, limits.bytes) {
            Catchup::Resync(ResyncReason::TooFarBehind)
        } else {
            Catchup::Events(since_joined(missed, user))
        })
    }

    /// The people among `candidates` whose presence the caller may follow: anyone for staff,
    /// people they share a conversation with for guests.
    pub async fn visible_people(&self, actor: &Actor, candidates: &[UserId]) -> Result<Vec<UserId>> {
        if !actor.is_guest() {
            return Ok(candidates.to_vec());
        }
        members::sharing_with(&mut self.store.reader().await?, actor.user_id, candidates).await
    }

    /// Whether the person may say they are typing there: only where they may post (a member,
    /// not archived, and in an announcement channel only those who may announce), and in a
    /// thread only one of that conversation whose first message is there (`invalid_input`
    /// otherwise).
    pub async fn may_type(&self, actor: &Actor, conversation: ConversationId, thread: Option<MessageId>) -> Result<()> {
        let a = self.access_cached(actor, conversation).await?;
        if !qiao_domain::perm::can_post(actor, &a.facts) {
            return Err(Error::forbidden());
        }
        match thread {
            // (Nobody can reply in a thread whose first message was deleted.)
            Some(root) => match self.check_thread_of(conversation, root).await? {
                m if m.deleted_at.is_some() => Err(crate::messages::thread_closed()),
                _ => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// Stores do-not-disturb settings (person, on, when in ms), all in one commit, so they
    /// outlive a restart; a setting older than the one stored is ignored.
    pub async fn save_do_not_disturb(&self, settings: Vec<(UserId, bool, Millis)>) -> Result<()> {
        self.store
            .write(move |tx| {
                let settings = settings.clone();
                Box::pin(async move {
                    for (user, on, at) in settings {
                        presence::set_do_not_disturb(tx, user, on, at).await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    /// Everyone with do-not-disturb on, and since when (ms): what a node starts from.
    pub async fn do_not_disturb_on(&self) -> Result<Vec<(UserId, Millis)>> {
        presence::do_not_disturb_on(&mut self.store.reader().await?).await
    }
}

/// Whether missed frames exceed the bytes a resume may send ([`ResumeLimits::bytes`]).
fn too_many_bytes(frames: &[Bytes], max_bytes: usize) -> bool {
    frames.iter().map(Bytes::len).sum::<usize>() > max_bytes
}

/// Leaves out what happened in a conversation before the person (last) joined it. Missed
/// events are chosen by the memberships the person has now, so a resume from before a join
/// would otherwise replay the conversation's past as it happened (messages since deleted,
/// text since edited), which history over HTTP shows only as it is now. The join is the
/// `members.added` event that added them (or the conversation's creation listing them),
/// itself among the missed events: one listing them with `joined_at` equal to its own time
/// (the same event also announces role changes and department links of people who were
/// members already, with their earlier `joined_at`).
fn since_joined(frames: Vec<Bytes>, user: UserId) -> Vec<Bytes> {
    #[derive(serde::Deserialize)]
    struct Head {
        pos: i64,
        conversation_id: Option<ConversationId>,
    }
    #[derive(serde::Deserialize)]
    struct Added {
        pos: i64,
        conversation_id: Option<ConversationId>,
        at: i64,
        data: AddedData,
    }
    #[derive(serde::Deserialize)]
    struct AddedData {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        members: Vec<AddedMember>,
    }
    #[derive(serde::Deserialize)]
    struct AddedMember {
        user_id: UserId,
        joined_at: i64,
    }
    // Conversation → (position, time, by its creation) of the latest join. A conversation's
    // creation lists its first members, and the same transaction may announce them again
    // (linking the creator's own department): that announcement is not a new join.
    let mut joined: HashMap<ConversationId, (i64, i64, bool)> = HashMap::new();
    let members_added = memchr::memmem::Finder::new(MEMBERS_ADDED);
    let created = memchr::memmem::Finder::new(CONVERSATION_CREATED);
    for f in &frames {
        if members_added.find(f).is_none() && created.find(f).is_none() {
            continue;
        }
        let Ok(added) = serde_json::from_slice::<Added>(f) else { continue };
        if matches!(added.data.kind.as_str(), "members.added" | "conversation.created")
            && added.data.members.iter().any(|m| m.user_id == user && m.joined_at == added.at)
            && let Some(c) = added.conversation_id
            && joined.get(&c).is_none_or(|&(_, at, created)| !(created && at == added.at))
        {
            joined.insert(c, (added.pos, added.at, added.data.kind == "conversation.created"));
        }
    }
    if joined.is_empty() {
        return frames;
    }
    frames
        .into_iter()
        .filter(|f| match serde_json::from_slice::<Head>(f) {
            Ok(Head { pos, conversation_id: Some(c) }) => joined.get(&c).is_none_or(|&(since, ..)| pos >= since),
            _ => true,
        })
        .collect()
}

const MEMBERS_ADDED: &[u8] = b"\"members.added\"";
const CONVERSATION_CREATED: &[u8] = b"\"conversation.created\"";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_catch_up_beyond_the_byte_budget_is_a_resync() {
        let frame = Bytes::from(vec![b'x'; 30_000]);
        assert!(!too_many_bytes(&vec![frame.clone(); 10], 300_000));
        assert!(too_many_bytes(&vec![frame; 11], 300_000));
    }

    #[test]
    fn a_catch_up_starts_at_the_latest_join() {
        let (me, other) = (UserId::new(), UserId::new());
        let c = ConversationId::new();
        let frame = |pos: i64, at: i64, data: String| {
            Bytes::from(format!(r#"{{"op":"event","pos":{pos},"at":{at},"conversation_id":"{c}","data":{data}}}"#))
        };
        let member = |u: UserId, joined: i64| format!(r#"{{"user_id":"{u}","joined_at":{joined}}}"#);
        let added = |pos, at, members: Vec<String>| {
            frame(pos, at, format!(r#"{{"type":"members.added","members":[{}]}}"#, members.join(",")))
        };
        let message = |pos| frame(pos, 500, r#"{"type":"message.created"}"#.to_owned());
        let positions = |frames: Vec<Bytes>| {
            since_joined(frames, me)
                .iter()
                .map(|f| serde_json::from_slice::<serde_json::Value>(f).unwrap()["pos"].as_i64().unwrap())
                .collect::<Vec<_>>()
        };
        // Created with me in it, and in the same transaction my department linked (announced
        // again, same time): everything from the creation.
        let created = frame(1, 100, format!(r#"{{"type":"conversation.created","members":[{}]}}"#, member(me, 100)));
        let relinked = added(2, 100, vec![member(me, 100), member(other, 100)]);
        assert_eq!(positions(vec![created.clone(), relinked.clone(), message(3)]), [1, 2, 3]);
        // Someone else added later, listing me with my earlier join: not my join.
        assert_eq!(positions(vec![created.clone(), added(2, 200, vec![member(me, 100)]), message(3)]), [1, 2, 3]);
        // Left and added again later: from that join.
        let rejoined = added(4, 300, vec![member(me, 300)]);
        assert_eq!(positions(vec![created, relinked, message(3), rejoined, message(5)]), [4, 5]);
    }
}
