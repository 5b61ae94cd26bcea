//! A cache of what permission checks read about a conversation (its kind, whether it is
//! archived, and the caller's membership), so that sending or reading does not cost a query
//! before it starts. Entries are dropped synchronously by the committed events that change
//! those facts, before the change is acknowledged; an epoch counter keeps a lookup that
//! raced with such a change from caching what it read.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use qiao_domain::conversation::{ConversationKind, Member};
use qiao_domain::event::{Event, EventData};
use qiao_domain::{ConversationId, Millis, UserId};

/// What `qiao_store::conversations::facts` returns for an existing conversation.
pub type Facts = (ConversationKind, Option<Millis>, Option<Member>);

pub struct AccessCache {
    entries: Mutex<HashMap<(ConversationId, UserId), Facts>>,
    epoch: AtomicU64,
    max_entries: usize,
}

impl AccessCache {
    pub fn new(max_entries: usize) -> AccessCache {
        AccessCache { entries: Mutex::default(), epoch: AtomicU64::new(0), max_entries }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(ConversationId, UserId), Facts>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    pub fn get(&self, conversation: ConversationId, user: UserId) -> Option<Facts> {
        self.lock().get(&(conversation, user)).cloned()
    }

    /// Caches facts read at `epoch`, unless something was invalidated since.
    pub fn put(&self, conversation: ConversationId, user: UserId, facts: Facts, epoch: u64) {
        let mut entries = self.lock();
        if self.epoch() != epoch {
            return;
        }
        if entries.len() >= self.max_entries {
            entries.clear();
        }
        entries.insert((conversation, user), facts);
    }

    fn forget(&self, conversation: ConversationId, users: Option<&mut dyn Iterator<Item = UserId>>) {
        let mut entries = self.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        match users {
            Some(users) => {
                for u in users {
                    entries.remove(&(conversation, u));
                }
            }
            None => entries.retain(|(c, _), _| *c != conversation),
        }
    }

    /// Drops what committed events made stale.
    pub fn observe(&self, events: &[Event]) {
        for e in events {
            match &*e.data {
                EventData::ConversationUpdated { conversation } => self.forget(conversation.id, None),
                EventData::MembersAdded { conversation, members } => {
                    self.forget(conversation.id, Some(&mut members.iter().map(|m| m.user_id)))
                }
                EventData::MembersRemoved { conversation_id, user_ids } => {
                    self.forget(*conversation_id, Some(&mut user_ids.iter().copied()))
                }
                EventData::MemberUpdated { conversation_id, member } => {
                    self.forget(*conversation_id, Some(&mut std::iter::once(member.user_id)))
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use qiao_domain::conversation::MemberRole;
    use qiao_domain::event::{Audience, encode_frame};

    use super::*;

    fn event(data: EventData) -> Event {
        let frame = encode_frame(1, 0, &Audience::Staff, None, &data);
        Event { pos: 1, audience: Audience::Staff, seq: None, frame: frame.into(), data: Arc::new(data) }
    }

    #[test]
    fn membership_events_invalidate_and_races_do_not_cache_stale_facts() {
        let cache = AccessCache::new(10);
        let (c, u, v) = (ConversationId::new(), UserId::new(), UserId::new());
        let member = Member { user_id: u, role: MemberRole::Member, direct: true, via_department: false, joined_at: 0 };
        let facts: Facts = (ConversationKind::Private, None, Some(member.clone()));
        cache.put(c, u, facts.clone(), cache.epoch());
        cache.put(c, v, (ConversationKind::Private, None, None), cache.epoch());
        assert_eq!(cache.get(c, u), Some(facts.clone()));

        cache.observe(&[event(EventData::MembersRemoved { conversation_id: c, user_ids: vec![u] })]);
        assert_eq!(cache.get(c, u), None);
        assert!(cache.get(c, v).is_some(), "others stay cached");

        // A lookup that started before an invalidation does not cache its result.
        let epoch = cache.epoch();
        cache.observe(&[event(EventData::MemberUpdated { conversation_id: c, member })]);
        cache.put(c, u, facts, epoch);
        assert_eq!(cache.get(c, u), None);
    }
}
