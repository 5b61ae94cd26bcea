//! A cache of authenticated sessions, so a request does not cost four queries before it
//! starts. Entries are dropped synchronously when a committed event says a session ended or
//! its person changed (role, status, departments), before the writer acknowledges that
//! change; an epoch counter keeps a lookup that raced with such a change from caching what
//! it read.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use qiao_domain::event::{Event, EventData};
use qiao_domain::{SessionId, UserId};

use crate::auth::Authenticated;

pub struct SessionCache {
    entries: Mutex<HashMap<Vec<u8>, (Authenticated, Instant)>>,
    epoch: AtomicU64,
    ttl: Duration,
    max_entries: usize,
}

impl SessionCache {
    pub fn new(ttl: Duration, max_entries: usize) -> SessionCache {
        SessionCache { entries: Mutex::default(), epoch: AtomicU64::new(0), ttl, max_entries }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, (Authenticated, Instant)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current epoch: read it before loading from the store, pass it to [`Self::put`].
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    pub fn get(&self, token_hash: &[u8]) -> Option<Authenticated> {
        let entries = self.lock();
        let (auth, at) = entries.get(token_hash)?;
        (at.elapsed() < self.ttl).then(|| auth.clone())
    }

    /// Caches a lookup made at `epoch`, unless something was invalidated since.
    pub fn put(&self, token_hash: Vec<u8>, auth: Authenticated, epoch: u64) {
        let mut entries = self.lock();
        if self.epoch() != epoch {
            return;
        }
        if entries.len() >= self.max_entries {
            entries.clear();
        }
        entries.insert(token_hash, (auth, Instant::now()));
    }

    /// Records a session's latest use in its cached copy.
    pub fn touched(&self, token_hash: &[u8], at: i64, expires_at: i64) {
        if let Some((auth, _)) = self.lock().get_mut(token_hash) {
            auth.session.last_used_at = at;
            auth.session.expires_at = expires_at;
        }
    }

    fn forget(&self, keep: impl Fn(&Authenticated) -> bool) {
        let mut entries = self.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.retain(|_, (auth, _)| keep(auth));
    }

    pub fn forget_session(&self, id: SessionId) {
        self.forget(|a| a.session.id != id);
    }

    pub fn forget_user(&self, id: UserId) {
        self.forget(|a| a.user.id != id);
    }

    /// Drops what committed events made stale.
    pub fn observe(&self, events: &[Event]) {
        for e in events {
            match &*e.data {
                EventData::SessionRevoked { session_id } => self.forget_session(*session_id),
                EventData::UserUpdated { user } | EventData::UserCreated { user } => self.forget_user(user.id),
                _ => {}
            }
        }
    }
}
