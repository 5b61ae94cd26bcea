//! A connection's outgoing queue: bounded, filled by the dispatcher, drained by the socket.
//!
//! A channel would do, but tokio's allocates a block of slots up front (~1.5 KiB), paid by
//! every idle connection; this one holds nothing while empty and gives back what a burst
//! needed once it is drained.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The queue holds its limit: the reader is too slow.
    Full,
    /// The queue was closed.
    Closed,
}

struct State<T> {
    items: VecDeque<T>,
    closed: bool,
}

pub struct Outbox<T> {
    state: Mutex<State<T>>,
    ready: Notify,
    limit: usize,
}

/// Capacity kept after a burst drains, so a busy connection does not regrow its buffer
/// (a reallocation and a copy per doubling) every flush; beyond it the buffer is freed.
/// [`Outbox::trim`] frees what an idle connection still holds.
const KEEP: usize = 256;

impl<T> Outbox<T> {
    pub fn new(limit: usize) -> Arc<Outbox<T>> {
        Arc::new(Outbox {
            state: Mutex::new(State { items: VecDeque::new(), closed: false }),
            ready: Notify::new(),
            limit: limit.max(1),
        })
    }

    fn state(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues an item without waiting.
    pub fn push(&self, item: T) -> Result<(), Refused> {
        {
            let mut s = self.state();
            if s.closed {
                return Err(Refused::Closed);
            }
            if s.items.len() >= self.limit {
                return Err(Refused::Full);
            }
            s.items.push_back(item);
        }
        // Stores a permit if the reader is not waiting yet, so no wake-up is lost.
        self.ready.notify_one();
        Ok(())
    }

    /// Closes the queue: the reader gets what is queued, then `None`.
    pub fn close(&self) {
        self.state().closed = true;
        self.ready.notify_one();
    }

    /// The next item without waiting (`None` if there is none right now).
    pub fn try_pop(&self) -> Option<T> {
        let mut s = self.state();
        let item = s.items.pop_front();
        if s.items.is_empty() && s.items.capacity() > KEEP {
            s.items = VecDeque::new();
        }
        item
    }

    /// Frees the buffer if nothing is queued (called when the connection is quiet).
    pub fn trim(&self) {
        let mut s = self.state();
        if s.items.is_empty() && s.items.capacity() > 0 {
            s.items = VecDeque::new();
        }
    }

    /// The next item; `None` once the queue is closed and drained.
    pub async fn pop(&self) -> Option<T> {
        loop {
            {
                let mut s = self.state();
                if let Some(item) = s.items.pop_front() {
                    if s.items.is_empty() && s.items.capacity() > KEEP {
                        s.items = VecDeque::new();
                    }
                    return Some(item);
                }
                if s.closed {
                    return None;
                }
            }
            self.ready.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_ordered_and_closable() {
        let q = Outbox::new(2);
        q.push(1).unwrap();
        q.push(2).unwrap();
        assert_eq!(q.push(3), Err(Refused::Full));
        assert_eq!(q.pop().await, Some(1));
        assert_eq!(q.try_pop(), Some(2));
        assert_eq!(q.try_pop(), None);

        // A reader waiting before the push is woken by it.
        let reader = {
            let q = q.clone();
            tokio::spawn(async move { q.pop().await })
        };
        tokio::task::yield_now().await;
        q.push(7).unwrap();
        assert_eq!(reader.await.unwrap(), Some(7));

        q.push(8).unwrap();
        q.close();
        assert_eq!(q.push(9), Err(Refused::Closed));
        assert_eq!(q.pop().await, Some(8), "what was queued before closing is still delivered");
        assert_eq!(q.pop().await, None);
    }

    #[tokio::test]
    async fn a_drained_burst_gives_its_memory_back() {
        let q = Outbox::new(1000);
        for i in 0..500 {
            q.push(i).unwrap();
        }
        while q.try_pop().is_some() {}
        assert!(q.state().items.capacity() <= KEEP);

        // A smaller burst keeps its buffer for the next one, until the queue is trimmed.
        for i in 0..100 {
            q.push(i).unwrap();
        }
        while q.try_pop().is_some() {}
        assert!(q.state().items.capacity() >= 100);
        q.push(1).unwrap();
        q.trim();
        assert!(q.state().items.capacity() >= 1, "a queue holding frames is not trimmed");
        assert_eq!(q.try_pop(), Some(1));
        q.trim();
        assert_eq!(q.state().items.capacity(), 0);
    }
}
