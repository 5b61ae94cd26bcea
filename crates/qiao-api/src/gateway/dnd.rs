//! Do-not-disturb settings on their way to the database, so they outlive a restart. The
//! dispatcher records each setting a device makes without waiting on storage; a task writes
//! what has gathered since its last write (the newest per person) in one commit. A person
//! toggling fast costs a write per commit, not per frame.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use qiao_domain::{Millis, UserId};
use qiao_service::Services;
use tokio::sync::Notify;

/// Settings not yet written: person → (on, when in ms).
#[derive(Default)]
pub struct DndLedger {
    pending: Mutex<HashMap<UserId, (bool, Millis)>>,
    wake: Notify,
    closed: AtomicBool,
    /// Held while a write is under way: the last flush at shutdown waits for it (and takes
    /// back what it failed to write).
    writing: tokio::sync::Mutex<()>,
}

/// Whether setting `b` replaces `a` (the later one; on wins a tie), the rule the nodes and
/// the database follow too.
pub fn supersedes(b: (bool, Millis), a: (bool, Millis)) -> bool {
    b.1 > a.1 || (b.1 == a.1 && b.0 && !a.0)
}

impl DndLedger {
    /// A setting to write (from this node's devices; other nodes write their own).
    pub fn record(&self, user: UserId, on: bool, at: Millis) {
        self.keep(user, (on, at));
        self.wake.notify_one();
    }

    fn keep(&self, user: UserId, setting: (bool, Millis)) {
        let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match pending.get(&user) {
            Some(old) if !supersedes(setting, *old) => {}
            _ => {
                pending.insert(user, setting);
            }
        }
    }

    fn take(&self) -> Vec<(UserId, bool, Millis)> {
        let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        pending.drain().map(|(u, (on, at))| (u, on, at)).collect()
    }

    /// Writes what has gathered. On failure the settings go back (unless newer ones came in
    /// meanwhile) for the next attempt.
    pub async fn flush(&self, services: &Services) -> bool {
        let _writing = self.writing.lock().await;
        let batch = self.take();
        if batch.is_empty() {
            return true;
        }
        // A task of its own: a flush dropped half-way (shutdown's grace over) still writes
        // what it took (a write nobody awaits is not made).
        let write = {
            let (services, batch) = (services.clone(), batch.clone());
            tokio::spawn(async move { services.save_do_not_disturb(batch).await })
        };
        match write.await.map_err(qiao_domain::Error::internal).and_then(|written| written) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, people = batch.len(), "could not store do-not-disturb settings; retrying");
                for (user, on, at) in batch {
                    self.keep(user, (on, at));
                }
                false
            }
        }
    }

    /// Writes settings as they come until [`DndLedger::close`]; after failed writes, waits
    /// longer before each next one (1 s, doubling up to a minute).
    pub async fn run(&self, services: Services) {
        let mut failures = 0u32;
        while !self.closed.load(Ordering::Acquire) {
            self.wake.notified().await;
            if self.flush(&services).await {
                failures = 0;
            } else {
                failures = failures.saturating_add(1);
                tokio::time::sleep(Duration::from_secs(1 << failures.min(6))).await;
                self.wake.notify_one();
            }
        }
    }

    /// Writes what is left and stops [`DndLedger::run`] (the server is stopping).
    pub async fn close(&self, services: &Services) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
        self.flush(services).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_setting_per_person_waits() {
        let ledger = DndLedger::default();
        let (a, b) = (UserId::new(), UserId::new());
        ledger.record(a, true, 10);
        ledger.record(a, false, 12);
        ledger.record(a, true, 11); // older than the one kept
        ledger.record(b, false, 5);
        ledger.record(b, true, 5); // a tie: on wins
        let mut taken = ledger.take();
        taken.sort_by_key(|(_, _, at)| *at);
        assert_eq!(taken, vec![(b, true, 5), (a, false, 12)]);
        assert!(ledger.take().is_empty(), "written once");
    }
}
