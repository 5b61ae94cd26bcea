//! Who receives which committed event, as plain state: connections, the people they belong
//! to, and the conversations those people are in. The dispatcher feeds it events in stream
//! order and gets back the connections to deliver to; membership changes are applied before
//! the event that announces them is routed, so newcomers receive it and those removed do not.
//!
//! A connection starts *pending*: while it replays what it missed from the store, the batches
//! published meanwhile are buffered here; once it is ready they are filtered and delivered
//! (skipping positions it already has), so nothing is lost or repeated.

use std::sync::Arc;

use qiao_domain::event::{Audience, Event, EventData};
use qiao_domain::user::UserStatus;
use qiao_domain::{ConversationId, SessionId, UserId};

use super::protocol::close;
use super::{FastMap, FastSet};

pub type ConnId = u64;

struct Conn {
    user: UserId,
    session: SessionId,
    /// Whether the person is a guest now (kept in step with role changes, for routing).
    guest: bool,
    /// Whether they were when the connection authenticated (its socket decided what they may
    /// follow then); a change closes the connection.
    guest_at_start: bool,
    /// The last position delivered (events at or below it are skipped).
    last_pos: i64,
}

#[derive(Default)]
struct Pending {
    batches: Vec<Arc<[Event]>>,
    events: usize,
    overflow: bool,
}

/// What routing one event decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Routed {
    pub deliver: Vec<ConnId>,
    /// Connections to close after delivering: (connection, close code, reason).
    pub close: Vec<(ConnId, u16, &'static str)>,
}

/// The outcome of a connection becoming ready.
#[derive(Debug)]
pub enum Catchup {
    /// Deliver these (buffered while pending), then go live.
    Events(Vec<Event>, Vec<(u16, &'static str)>),
    /// Too much happened while it was pending to replay it safely (membership changes and
    /// ended sessions among it): the connection is closed and resumes later.
    TooSlow,
}

pub struct Routing {
    conns: FastMap<ConnId, Conn>,
    /// Ready connections per person.
    by_user: FastMap<UserId, Vec<ConnId>>,
    /// For people with a ready connection: who is in each conversation…
    members: FastMap<ConversationId, FastSet<UserId>>,
    /// …and which conversations each is in.
    user_convs: FastMap<UserId, FastSet<ConversationId>>,
    /// What was published while each pending connection catches up (usually very few
    /// connections: every published batch visits each of them).
    pending: FastMap<ConnId, Pending>,
    /// Most events buffered for one pending connection.
    pending_limit: usize,
    /// Connections (pending or ready) per person.
    counts: FastMap<UserId, usize>,
}

impl Routing {
    pub fn new(pending_limit: usize) -> Routing {
        Routing {
            conns: FastMap::default(),
            by_user: FastMap::default(),
            members: FastMap::default(),
            user_convs: FastMap::default(),
            pending: FastMap::default(),
            pending_limit,
            counts: FastMap::default(),
        }
    }

    /// How many connections (pending or ready).
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    pub fn user_of(&self, conn: ConnId) -> Option<UserId> {
        self.conns.get(&conn).map(|c| c.user)
    }

    pub fn conns_of(&self, user: UserId) -> &[ConnId] {
        self.by_user.get(&user).map_or(&[], Vec::as_slice)
    }

    /// Every ready connection.
    pub fn all_ready(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.by_user.values().flatten().copied()
    }

    /// Ready connections of the members of a conversation.
    pub fn conns_in(&self, conversation: ConversationId) -> Vec<ConnId> {
        self.members.get(&conversation).into_iter().flatten().flat_map(|u| self.conns_of(*u).iter().copied()).collect()
    }

    pub fn is_member(&self, user: UserId, conversation: ConversationId) -> bool {
        self.user_convs.get(&user).is_some_and(|c| c.contains(&conversation))
    }

    /// A new connection, pending until [`Routing::ready`]; false (and nothing registered) if
    /// the person already holds `max_per_user` connections.
    pub fn register(
        &mut self,
        conn: ConnId,
        user: UserId,
        session: SessionId,
        guest: bool,
        max_per_user: usize,
    ) -> bool {
        let count = self.counts.entry(user).or_default();
        if *count >= max_per_user {
            return false;
        }
        *count += 1;
        self.conns.insert(conn, Conn { user, session, guest, guest_at_start: guest, last_pos: 0 });
        self.pending.insert(conn, Pending::default());
        true
    }

    /// Buffers a published batch for every pending connection.
    pub fn buffer(&mut self, batch: &Arc<[Event]>) {
        let limit = self.pending_limit;
        for p in self.pending.values_mut() {
            if p.overflow {
                continue;
            }
            p.events += batch.len();
            if p.events > limit {
                p.overflow = true;
                p.batches.clear();
            } else {
                p.batches.push(batch.clone());
            }
        }
    }

    /// The connection has sent everything up to `sent_up_to` itself; `memberships` are the
    /// person's conversations, read after it registered.
    pub fn ready(&mut self, id: ConnId, memberships: Vec<ConversationId>, sent_up_to: i64) -> Catchup {
        let Some(conn) = self.conns.get_mut(&id) else { return Catchup::Events(Vec::new(), Vec::new()) };
        let (user, session, guest, at_start) = (conn.user, conn.session, conn.guest, conn.guest_at_start);
        conn.last_pos = conn.last_pos.max(sent_up_to);
        let pending = self.pending.remove(&id).unwrap_or_default();
        if pending.overflow {
            return Catchup::TooSlow;
        }
        // What it is sent is decided by the memberships it read, as each buffered event changes
        // them in turn, not by the ones the person's other connections hold by now: those
        // already include a join that comes later in the buffer, and the conversation's
        // events before that join must not reach this one.
        let mut mine: FastSet<ConversationId> = memberships.iter().copied().collect();
        let first = self.by_user.get(&user).is_none_or(Vec::is_empty);
        if first {
            for c in memberships {
                self.add(user, c);
            }
        }
        self.by_user.entry(user).or_default().push(id);
        let mut out = Vec::new();
        let mut events = pending.batches.iter().flat_map(|b| b.iter());
        for e in events.by_ref() {
            self.apply_membership(e, Some(user));
            match membership_change(e, user) {
                Some((c, true)) => mine.insert(c),
                Some((c, false)) => mine.remove(&c),
                None => false,
            };
            let visible = match e.audience {
                Audience::Conversation(c) => mine.contains(&c),
                _ => self.matches(user, guest, &e.audience),
            };
            let last = self.conns.get(&id).map_or(i64::MAX, |c| c.last_pos);
            let mut end = None;
            if e.pos > last && visible {
                out.push(e.clone());
                if let Some(c) = self.conns.get_mut(&id) {
                    c.last_pos = e.pos;
                }
                end = others_left(e, user, at_start).then_some(GUEST_RECHECK);
            }
            // Nothing after the event that ends the connection reaches it…
            if let Some(reason) = end.or_else(|| ends(e, user, session, at_start)) {
                // …but the person's memberships, which their other connections share, still
                // follow the rest.
                for later in events {
                    self.apply_membership(later, Some(user));
                }
                return Catchup::Events(out, vec![reason]);
            }
        }
        Catchup::Events(out, Vec::new())
    }

    /// Routes one event to ready connections (in stream order).
    pub fn route(&mut self, e: &Event) -> Routed {
        self.apply_membership(e, None);
        self.apply_profile(e);
        let mut routed = Routed::default();
        let candidates: Vec<ConnId> = match e.audience {
            Audience::Conversation(c) => self.conns_in(c),
            Audience::User(u) => self.conns_of(u).to_vec(),
            Audience::Staff => self.all_ready().filter(|c| self.conns.get(c).is_some_and(|c| !c.guest)).collect(),
            Audience::Everyone => self.all_ready().collect(),
        };
        for id in candidates {
            if let Some(c) = self.conns.get_mut(&id)
                && e.pos > c.last_pos
            {
                c.last_pos = e.pos;
                routed.deliver.push(id);
            }
        }
        // Sessions that ended, accounts disabled, a guest's access changed: close after
        // delivering the news. Only the person concerned can be affected: check their ready
        // connections.
        let concerned = match (&*e.data, &e.audience) {
            (EventData::SessionRevoked { .. } | EventData::ConversationRemoved { .. }, Audience::User(u)) => Some(*u),
            (EventData::UserUpdated { user }, _) => Some(user.id),
            _ => None,
        };
        let affected: Vec<(ConnId, UserId, SessionId, bool)> = concerned
            .map(|u| {
                self.conns_of(u)
                    .iter()
                    .filter_map(|id| self.conns.get(id).map(|c| (*id, c.user, c.session, c.guest_at_start)))
                    .collect()
            })
            .unwrap_or_default();
        for (id, user, session, guest_at_start) in affected {
            if let Some(reason) = ends(e, user, session, guest_at_start) {
                routed.close.push((id, reason.0, reason.1));
            }
        }
        // (Looked at only for a removal: every other event goes by without a look-up per
        // delivery.)
        if matches!(&*e.data, EventData::MembersRemoved { .. }) {
            for id in &routed.deliver {
                if let Some(c) = self.conns.get(id)
                    && others_left(e, c.user, c.guest_at_start)
                {
                    routed.close.push((*id, GUEST_RECHECK.0, GUEST_RECHECK.1));
                }
            }
        }
        routed
    }

    /// Forgets a connection (and, with its person's last one, their memberships).
    pub fn remove(&mut self, id: ConnId) {
        self.pending.remove(&id);
        let Some(conn) = self.conns.remove(&id) else { return };
        if let Some(n) = self.counts.get_mut(&conn.user) {
            *n -= 1;
            if *n == 0 {
                self.counts.remove(&conn.user);
            }
        }
        let Some(list) = self.by_user.get_mut(&conn.user) else { return };
        list.retain(|c| *c != id);
        if list.is_empty() {
            self.by_user.remove(&conn.user);
            for c in self.user_convs.remove(&conn.user).unwrap_or_default() {
                if let Some(m) = self.members.get_mut(&c) {
                    m.remove(&conn.user);
                    if m.is_empty() {
                        self.members.remove(&c);
                    }
                }
            }
        }
    }

    fn matches(&self, user: UserId, guest: bool, audience: &Audience) -> bool {
        match audience {
            Audience::Conversation(c) => self.is_member(user, *c),
            Audience::User(u) => *u == user,
            Audience::Staff => !guest,
            Audience::Everyone => true,
        }
    }

    fn tracked(&self, user: UserId, only: Option<UserId>) -> bool {
        match only {
            Some(u) => u == user,
            None => self.by_user.contains_key(&user),
        }
    }

    fn add(&mut self, user: UserId, c: ConversationId) {
        self.members.entry(c).or_default().insert(user);
        self.user_convs.entry(user).or_default().insert(c);
    }

    fn drop_member(&mut self, user: UserId, c: ConversationId) {
        if let Some(m) = self.members.get_mut(&c) {
            m.remove(&user);
            if m.is_empty() {
                self.members.remove(&c);
            }
        }
        if let Some(cs) = self.user_convs.get_mut(&user) {
            cs.remove(&c);
        }
    }

    /// Applies membership changes an event announces (for everyone tracked, or one person).
    fn apply_membership(&mut self, e: &Event, only: Option<UserId>) {
        match &*e.data {
            EventData::ConversationCreated { conversation, members }
            | EventData::MembersAdded { conversation, members } => {
                for m in members {
                    if self.tracked(m.user_id, only) {
                        self.add(m.user_id, conversation.id);
                    }
                }
            }
            EventData::MembersRemoved { conversation_id, user_ids } => {
                for u in user_ids {
                    if self.tracked(*u, only) {
                        self.drop_member(*u, *conversation_id);
                    }
                }
            }
            EventData::ConversationRemoved { conversation_id } => {
                if let Audience::User(u) = e.audience
                    && self.tracked(u, only)
                {
                    self.drop_member(u, *conversation_id);
                }
            }
            _ => {}
        }
    }

    /// Keeps connections' guest flag in step with role changes.
    fn apply_profile(&mut self, e: &Event) {
        if let EventData::UserUpdated { user } = &*e.data {
            for c in self.conns.values_mut().filter(|c| c.user == user.id) {
                c.guest = user.role.is_guest();
            }
        }
    }
}

/// Whether `e` makes `user` a member of a conversation (`true`) or ends their membership
/// (`false`), as [`Routing::apply_membership`] applies it.
fn membership_change(e: &Event, user: UserId) -> Option<(ConversationId, bool)> {
    match &*e.data {
        EventData::ConversationCreated { conversation, members }
        | EventData::MembersAdded { conversation, members } => {
            members.iter().any(|m| m.user_id == user).then_some((conversation.id, true))
        }
        EventData::MembersRemoved { conversation_id, user_ids } => {
            user_ids.contains(&user).then_some((*conversation_id, false))
        }
        EventData::ConversationRemoved { conversation_id } => {
            (e.audience == Audience::User(user)).then_some((*conversation_id, false))
        }
        _ => None,
    }
}

/// How a guest's connection is started again when whom it may follow may have changed.
const GUEST_RECHECK: (u16, &str) = (close::ACCESS_CHANGED, "access changed; reconnect");

/// Whether a guest connection that received `e` must start again: someone else left one of
/// its conversations, and the guest may follow the presence only of people they share a
/// conversation with (checked when they subscribed).
fn others_left(e: &Event, user: UserId, guest_at_start: bool) -> bool {
    guest_at_start && matches!(&*e.data, EventData::MembersRemoved { user_ids, .. } if !user_ids.contains(&user))
}

/// Whether an event ends the connection of (`user`, `session`), authenticated as a guest or
/// not, and how.
fn ends(e: &Event, user: UserId, session: SessionId, guest_at_start: bool) -> Option<(u16, &'static str)> {
    match &*e.data {
        // A guest may follow the presence only of people they share a conversation with,
        // checked when they subscribed: leaving one starts the connection again (and so does
        // someone else leaving one: `others_left`).
        EventData::ConversationRemoved { .. } if guest_at_start && e.audience == Audience::User(user) => {
            Some(GUEST_RECHECK)
        }
        data => ends_session(data, user, session, guest_at_start),
    }
}

/// Whether an event ends the session a connection authenticated with, or its role, and how.
fn ends_session(
    data: &EventData,
    user: UserId,
    session: SessionId,
    guest_at_start: bool,
) -> Option<(u16, &'static str)> {
    match data {
        EventData::SessionRevoked { session_id } if *session_id == session => {
            Some((close::SESSION_ENDED, "session ended"))
        }
        EventData::UserUpdated { user: u } if u.id == user && u.status == UserStatus::Disabled => {
            Some((close::SESSION_ENDED, "account disabled"))
        }
        // What the connection receives (staff-wide events) and whose presence it may follow
        // were decided for the old role: it starts again under the new one.
        EventData::UserUpdated { user: u } if u.id == user && u.role.is_guest() != guest_at_start => {
            Some((close::ACCESS_CHANGED, "role changed; reconnect"))
        }
        _ => None,
    }
}

/// Whether a resume's catch-up shows the connection's start to be out of date: its session
/// revoked, or the person's latest account change (in the catch-up) disabling them or
/// putting them on the other side of the guest line from the handshake. Such a start is
/// refused with the close the live path would send, and none of the catch-up is sent. Only
/// the latest change counts: one the handshake already saw (a title edit while a guest,
/// then a promotion) must not refuse every later resume from the same position. Only frames
/// that may be such events are parsed.
pub(super) fn catchup_ends(
    frames: &[bytes::Bytes],
    user: UserId,
    session: SessionId,
    guest_at_start: bool,
) -> Option<(u16, &'static str)> {
    let revoked = memchr::memmem::Finder::new(b"\"session.revoked\"");
    let updated = memchr::memmem::Finder::new(b"\"user.updated\"");
    // Staff receive everyone's account changes: only those naming this person are parsed.
    let me = user.to_string();
    let named = memchr::memmem::Finder::new(me.as_bytes());
    let mut latest = None;
    let candidate =
        |f: &&bytes::Bytes| revoked.find(f).is_some() || (updated.find(f).is_some() && named.find(f).is_some());
    for frame in frames.iter().filter(candidate) {
        let Ok(frame) = serde_json::from_slice::<qiao_domain::event::EventFrame>(frame) else { continue };
        match frame.data {
            EventData::SessionRevoked { session_id } if session_id == session => {
                return Some((close::SESSION_ENDED, "session ended"));
            }
            EventData::UserUpdated { user: u } if u.id == user => latest = Some(EventData::UserUpdated { user: u }),
            _ => {}
        }
    }
    latest.and_then(|data| ends_session(&data, user, session, guest_at_start))
}

#[cfg(test)]
pub(super) mod tests {
    use qiao_domain::conversation::{Conversation, ConversationKind, Member, MemberRole};
    use qiao_domain::event::encode_frame;

    use super::*;

    fn ev(pos: i64, audience: Audience, data: EventData) -> Event {
        let frame = encode_frame(pos, 0, &audience, None, &data);
        Event { pos, audience, seq: None, frame: frame.into(), data: Arc::new(data) }
    }

    fn conv(id: ConversationId) -> Conversation {
        Conversation {
            id,
            kind: ConversationKind::Private,
            name: "c".into(),
            topic: String::new(),
            description: String::new(),
            department_id: None,
            linked_departments: vec![],
            participant_ids: vec![],
            created_by: None,
            archived_at: None,
            last_seq: 0,
            last_message_at: None,
            member_count: 0,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn member(u: UserId) -> Member {
        Member { user_id: u, role: MemberRole::Member, direct: true, via_department: false, joined_at: 0 }
    }

    /// An event in conversation `c` that changes nothing but is delivered to its members.
    pub(in crate::gateway) fn ping(pos: i64, c: ConversationId) -> Event {
        ev(pos, Audience::Conversation(c), EventData::MembersRemoved { conversation_id: c, user_ids: vec![] })
    }

    #[test]
    fn conversation_events_reach_members_only_and_membership_changes_apply_first() {
        let mut r = Routing::new(100);
        let (alice, bob) = (UserId::new(), UserId::new());
        let c = ConversationId::new();
        assert!(r.register(1, alice, SessionId::new(), false, 8));
        assert!(r.register(2, bob, SessionId::new(), false, 8));
        assert!(matches!(r.ready(1, vec![c], 0), Catchup::Events(ref e, _) if e.is_empty()));
        assert!(matches!(r.ready(2, vec![], 0), Catchup::Events(..)));
        assert_eq!(r.route(&ping(1, c)).deliver, vec![1]);
        // Bob is added: the announcement already reaches him.
        let added = ev(
            2,
            Audience::Conversation(c),
            EventData::MembersAdded { conversation: conv(c), members: vec![member(bob)] },
        );
        let mut d = r.route(&added).deliver;
        d.sort();
        assert_eq!(d, vec![1, 2]);
        // Alice is removed: she does not get the announcement, nor anything after.
        let removed =
            ev(3, Audience::Conversation(c), EventData::MembersRemoved { conversation_id: c, user_ids: vec![alice] });
        assert_eq!(r.route(&removed).deliver, vec![2]);
        assert_eq!(r.route(&ping(4, c)).deliver, vec![2]);
    }

    #[test]
    fn audiences_and_duplicates() {
        let mut r = Routing::new(100);
        let (staff, guest) = (UserId::new(), UserId::new());
        assert!(r.register(1, staff, SessionId::new(), false, 8));
        assert!(r.register(2, guest, SessionId::new(), true, 8));
        assert!(r.register(3, staff, SessionId::new(), false, 8));
        for id in [1, 2, 3] {
            r.ready(id, vec![], 5);
        }
        let d = |data| ev(6, Audience::Staff, data);
        let dept = EventData::DepartmentDeleted { department_id: qiao_domain::DepartmentId::new() };
        let mut got = r.route(&d(dept.clone())).deliver;
        got.sort();
        assert_eq!(got, vec![1, 3], "guests are not staff");
        assert!(r.route(&d(dept.clone())).deliver.is_empty(), "a position is never delivered twice");
        assert!(r.route(&ev(4, Audience::Everyone, dept.clone())).deliver.is_empty(), "nor an older one");
        let mut all = r.route(&ev(7, Audience::Everyone, dept.clone())).deliver;
        all.sort();
        assert_eq!(all, vec![1, 2, 3]);
        assert_eq!(r.route(&ev(8, Audience::User(guest), dept)).deliver, vec![2]);
    }

    #[test]
    fn pending_connections_catch_up_from_the_buffer_without_repeats() {
        let mut r = Routing::new(100);
        let u = UserId::new();
        let c = ConversationId::new();
        let other = ConversationId::new();
        assert!(r.register(1, u, SessionId::new(), false, 8));
        // Published while it replays from the store (which reached position 3).
        let batch: Arc<[Event]> = vec![ping(3, c), ping(4, other), ping(5, c)].into();
        r.buffer(&batch);
        match r.ready(1, vec![c], 3) {
            Catchup::Events(events, closes) => {
                assert_eq!(events.iter().map(|e| e.pos).collect::<Vec<_>>(), vec![5]);
                assert!(closes.is_empty());
            }
            Catchup::TooSlow => panic!("not too slow"),
        }
        assert_eq!(r.route(&ping(6, c)).deliver, vec![1]);
    }

    #[test]
    fn a_second_device_catching_up_gets_nothing_from_before_a_join_in_its_window() {
        let mut r = Routing::new(100);
        let (u, c) = (UserId::new(), ConversationId::new());
        // The first device is live; the second registers and reads the store (up to 3).
        assert!(r.register(1, u, SessionId::new(), false, 8));
        r.ready(1, vec![], 3);
        assert!(r.register(2, u, SessionId::new(), false, 8));
        let joined = ev(
            5,
            Audience::Conversation(c),
            EventData::MembersAdded { conversation: conv(c), members: vec![member(u)] },
        );
        let batch: Arc<[Event]> = vec![ping(4, c), joined, ping(6, c)].into();
        r.buffer(&batch);
        let live: Vec<Vec<ConnId>> = batch.iter().map(|e| r.route(e).deliver).collect();
        assert_eq!(live, vec![vec![], vec![1], vec![1]], "the live device, as it happened");
        match r.ready(2, vec![], 3) {
            Catchup::Events(events, _) => {
                assert_eq!(events.iter().map(|e| e.pos).collect::<Vec<_>>(), vec![5, 6], "the same as the first");
            }
            Catchup::TooSlow => panic!("not too slow"),
        }
    }

    #[test]
    fn a_pending_buffer_that_overflows_is_too_slow_and_never_goes_live() {
        let mut r = Routing::new(2);
        r.register(1, UserId::new(), SessionId::new(), false, 8);
        let c = ConversationId::new();
        let batch: Arc<[Event]> = vec![ping(1, c), ping(2, c), ping(3, c)].into();
        r.buffer(&batch);
        assert!(matches!(r.ready(1, vec![c], 0), Catchup::TooSlow));
        assert!(r.route(&ping(4, c)).deliver.is_empty(), "its memberships were not installed");
    }

    #[test]
    fn connections_per_person_are_capped() {
        let mut r = Routing::new(100);
        let (u, s) = (UserId::new(), SessionId::new());
        assert!(r.register(1, u, s, false, 2));
        assert!(r.register(2, u, s, false, 2));
        assert!(!r.register(3, u, s, false, 2), "a third is refused");
        assert!(r.register(4, UserId::new(), s, false, 2), "others are not affected");
        r.remove(1);
        assert!(r.register(5, u, s, false, 2), "room again once one has gone");
    }

    #[test]
    fn a_catch_up_stops_at_the_event_that_ends_the_connection() {
        let mut r = Routing::new(100);
        let (u, s, c) = (UserId::new(), SessionId::new(), ConversationId::new());
        assert!(r.register(1, u, s, false, 8));
        let revoked = ev(2, Audience::User(u), EventData::SessionRevoked { session_id: s });
        let batch: Arc<[Event]> = vec![ping(1, c), revoked, ping(3, c)].into();
        r.buffer(&batch);
        match r.ready(1, vec![c], 0) {
            Catchup::Events(events, closes) => {
                assert_eq!(
                    events.iter().map(|e| e.pos).collect::<Vec<_>>(),
                    vec![1, 2],
                    "nothing after the revocation"
                );
                assert_eq!(closes, vec![(close::SESSION_ENDED, "session ended")]);
            }
            Catchup::TooSlow => panic!("not too slow"),
        }
    }

    #[test]
    fn ended_sessions_and_disabled_accounts_close_their_connections() {
        let mut r = Routing::new(100);
        let (u, s1, s2) = (UserId::new(), SessionId::new(), SessionId::new());
        assert!(r.register(1, u, s1, false, 8));
        assert!(r.register(2, u, s2, false, 8));
        r.ready(1, vec![], 0);
        r.ready(2, vec![], 0);
        let revoked = ev(1, Audience::User(u), EventData::SessionRevoked { session_id: s2 });
        let routed = r.route(&revoked);
        assert_eq!(routed.close, vec![(2, close::SESSION_ENDED, "session ended")]);
        let mut d = routed.deliver;
        d.sort();
        assert_eq!(d, vec![1, 2], "both devices learn of it");
        r.remove(2);
        assert_eq!(r.conns_of(u), &[1]);
        r.remove(1);
        assert!(r.conns_of(u).is_empty());
        assert_eq!(r.connections(), 0);
    }

    fn person(id: UserId, role: qiao_domain::user::Role) -> qiao_domain::user::User {
        qiao_domain::user::User {
            id,
            username: "p".into(),
            email: None,
            display_name: "P".into(),
            title: String::new(),
            role,
            status: UserStatus::Active,
            primary_department_id: qiao_domain::DepartmentId::new(),
            secondary_department_ids: Vec::new(),
            managed_department_ids: Vec::new(),
            must_change_password: false,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn becoming_a_guest_or_staff_closes_the_connection_so_it_starts_again() {
        use qiao_domain::user::Role;
        let mut r = Routing::new(100);
        let (member, guest) = (UserId::new(), UserId::new());
        assert!(r.register(1, member, SessionId::new(), false, 8));
        assert!(r.register(2, guest, SessionId::new(), true, 8));
        assert!(r.register(3, member, SessionId::new(), false, 8)); // still catching up
        r.ready(1, vec![], 0);
        r.ready(2, vec![], 0);
        let renamed = ev(1, Audience::Everyone, EventData::UserUpdated { user: person(member, Role::Admin) });
        r.buffer(&Arc::from(vec![renamed.clone()]));
        assert!(r.route(&renamed).close.is_empty(), "staff to staff: nothing changes");

        let demoted = ev(2, Audience::Everyone, EventData::UserUpdated { user: person(member, Role::Guest) });
        r.buffer(&Arc::from(vec![demoted.clone()]));
        let routed = r.route(&demoted);
        assert_eq!(routed.close, vec![(1, close::ACCESS_CHANGED, "role changed; reconnect")]);
        let staff_only =
            ev(3, Audience::Staff, EventData::DepartmentDeleted { department_id: qiao_domain::DepartmentId::new() });
        assert!(!r.route(&staff_only).deliver.contains(&1), "no staff-wide events meanwhile");
        match r.ready(3, vec![], 0) {
            Catchup::Events(_, closes) => {
                assert_eq!(closes, vec![(close::ACCESS_CHANGED, "role changed; reconnect")], "also while catching up")
            }
            Catchup::TooSlow => panic!("expected events"),
        }

        let promoted = ev(4, Audience::Everyone, EventData::UserUpdated { user: person(guest, Role::Member) });
        assert_eq!(r.route(&promoted).close, vec![(2, close::ACCESS_CHANGED, "role changed; reconnect")]);
    }

    #[test]
    fn a_catch_up_holding_the_end_of_the_session_refuses_the_start() {
        use qiao_domain::user::Role;
        let (me, other, session) = (UserId::new(), UserId::new(), SessionId::new());
        let frames = |events: &[Event]| events.iter().map(|e| bytes::Bytes::from(e.frame.to_vec())).collect::<Vec<_>>();
        let renamed = ev(1, Audience::Everyone, EventData::UserUpdated { user: person(other, Role::Guest) });
        let mine_renamed = ev(2, Audience::Everyone, EventData::UserUpdated { user: person(me, Role::Admin) });
        let other_session = ev(3, Audience::User(me), EventData::SessionRevoked { session_id: SessionId::new() });
        let quiet = frames(&[renamed.clone(), mine_renamed.clone(), other_session.clone()]);
        assert_eq!(catchup_ends(&quiet, me, session, false), None);
        let revoked = ev(4, Audience::User(me), EventData::SessionRevoked { session_id: session });
        let ended = frames(&[renamed.clone(), revoked, other_session]);
        assert_eq!(catchup_ends(&ended, me, session, false), Some((close::SESSION_ENDED, "session ended")));
        let demoted = ev(5, Audience::Everyone, EventData::UserUpdated { user: person(me, Role::Guest) });
        assert_eq!(
            catchup_ends(&frames(&[renamed.clone(), demoted.clone()]), me, session, false),
            Some((close::ACCESS_CHANGED, "role changed; reconnect"))
        );
        // Demoted and promoted again before the handshake, which saw the member: the latest
        // change counts, or every resume from this position would be refused.
        let promoted = ev(6, Audience::Everyone, EventData::UserUpdated { user: person(me, Role::Member) });
        assert_eq!(catchup_ends(&frames(&[renamed, demoted, promoted]), me, session, false), None);
    }

    #[test]
    fn a_guest_removed_from_a_conversation_starts_again_but_staff_do_not() {
        let mut r = Routing::new(100);
        let (member, guest) = (UserId::new(), UserId::new());
        assert!(r.register(1, member, SessionId::new(), false, 8));
        assert!(r.register(2, guest, SessionId::new(), true, 8));
        r.ready(1, vec![], 0);
        r.ready(2, vec![], 0);
        let removed = |pos, u| {
            ev(pos, Audience::User(u), EventData::ConversationRemoved { conversation_id: ConversationId::new() })
        };
        assert!(r.route(&removed(1, member)).close.is_empty());
        assert_eq!(r.route(&removed(2, guest)).close, vec![(2, close::ACCESS_CHANGED, "access changed; reconnect")]);
    }

    #[test]
    fn a_catch_up_that_ends_early_still_follows_the_persons_memberships() {
        let mut r = Routing::new(100);
        let (u, s, c) = (UserId::new(), SessionId::new(), ConversationId::new());
        assert!(r.register(1, u, s, false, 8));
        // The session of connection 1 ends, then the person is removed from c.
        let revoked = ev(2, Audience::User(u), EventData::SessionRevoked { session_id: s });
        let removed =
            ev(3, Audience::Conversation(c), EventData::MembersRemoved { conversation_id: c, user_ids: vec![u] });
        let batch: Arc<[Event]> = vec![revoked, removed].into();
        r.buffer(&batch);
        for e in batch.iter() {
            r.route(e);
        }
        assert!(matches!(r.ready(1, vec![c], 0), Catchup::Events(_, ref closes) if closes.len() == 1));
        // Another device of the person goes live before connection 1 is gone: it shares the
        // person's memberships, which must not still hold c.
        assert!(r.register(2, u, SessionId::new(), false, 8));
        r.ready(2, vec![], 3);
        assert!(!r.route(&ping(4, c)).deliver.contains(&2), "no longer a member of c");
    }

    #[test]
    fn a_guest_starts_again_when_someone_else_leaves_one_of_its_conversations() {
        let mut r = Routing::new(100);
        let (member, guest, other) = (UserId::new(), UserId::new(), UserId::new());
        let c = ConversationId::new();
        assert!(r.register(1, member, SessionId::new(), false, 8));
        assert!(r.register(2, guest, SessionId::new(), true, 8));
        r.ready(1, vec![c], 0);
        r.ready(2, vec![c], 0);
        let left = |pos, u| {
            ev(pos, Audience::Conversation(c), EventData::MembersRemoved { conversation_id: c, user_ids: vec![u] })
        };
        // Whom the guest may follow may have changed: only the guest's connection starts again.
        let mut routed = r.route(&left(1, other));
        routed.deliver.sort();
        assert_eq!(routed.deliver, vec![1, 2]);
        assert_eq!(routed.close, vec![(2, close::ACCESS_CHANGED, "access changed; reconnect")]);
        // The same while the guest's next connection catches up.
        assert!(r.register(3, guest, SessionId::new(), true, 8));
        let batch: Arc<[Event]> = vec![left(2, member)].into();
        r.buffer(&batch);
        r.route(&batch[0]);
        match r.ready(3, vec![c], 1) {
            Catchup::Events(events, closes) => {
                assert_eq!(events.len(), 1);
                assert_eq!(closes, vec![(close::ACCESS_CHANGED, "access changed; reconnect")]);
            }
            Catchup::TooSlow => panic!("not too slow"),
        }
    }
}
