//! A connection's outgoing queue: bounded, filled by the dispatcher, drained by the socket.
//!
//! A channel would do, but tokio's allocates a block of slots up front (~1.5 KiB), paid by
//! every idle connection; this one holds nothing while empty and gives back what a burst
//! needed once it is drained.
//!
//! The queue also knows whether its reader is writing, and when it last wrote: a frame for
//! a connection that is idle is written by the one pushing it ([`Outbox::push_or_write`]),
//! without waking the connection's task, and that decision is made under the queue's lock,
//! so a frame never overtakes one the reader took before it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

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
    /// The reader's, while it waits on an empty queue: the first push wakes it, later ones
    /// until it looks again need not (a Notify cost a lock and a wake-up per frame).
    waiting: Option<Waker>,
    /// The reader took items it has not finished writing, or is writing frames of its own.
    busy: bool,
    /// The first item is the rest of a direct write cut short: it goes before anything else.
    cut: bool,
    /// A write failed or was given up half-way: nothing more may be written.
    broken: bool,
    /// When the last write ended (the reader's or a direct one).
    last_write: Option<Instant>,
}

pub struct Outbox<T> {
    state: Mutex<State<T>>,
    limit: usize,
}

/// Capacity kept after a burst drains, so a busy connection does not regrow its buffer
/// (a reallocation and a copy per doubling) every flush; beyond it the buffer is freed.
/// [`Outbox::trim`] frees what an idle connection still holds.
const KEEP: usize = 256;

impl<T> Outbox<T> {
    pub fn new(limit: usize) -> Arc<Outbox<T>> {
        Arc::new(Outbox {
            state: Mutex::new(State {
                items: VecDeque::new(),
                closed: false,
                waiting: None,
                busy: false,
                cut: false,
                broken: false,
                last_write: None,
            }),
            limit: limit.max(1),
        })
    }

    fn state(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues an item without waiting.
    pub fn push(&self, item: T) -> Result<(), Refused> {
        let waiting = {
            let mut s = self.state();
            if s.closed {
                return Err(Refused::Closed);
            }
            if s.items.len() >= self.limit {
                return Err(Refused::Full);
            }
            s.items.push_back(item);
            // Taken under the lock the reader checks the queue under: no wake-up is lost.
            s.waiting.take()
        };
        if let Some(w) = waiting {
            w.wake();
        }
        Ok(())
    }

    /// Queues `item`, or, when the reader is idle — nothing queued, nothing being written,
    /// its last write at least `gap` ago (a busy connection's frames are coalesced by its
    /// reader instead) — hands it to `write` first, under the lock: `write` writes what it
    /// can without waiting and returns what is left, which is queued (and the reader woken).
    pub fn push_or_write(&self, item: T, gap: Duration, write: impl FnOnce(T) -> Option<T>) -> Result<(), Refused> {
        self.push_any_or_write(Some(item), 1, gap, |one| one.and_then(write))
    }

    /// [`Outbox::push_or_write`] for several items: an idle reader's are handed to `write`
    /// together (it returns what is left, as one item); otherwise each is queued, and counts
    /// against the limit.
    pub fn push_all_or_write(
        &self,
        items: Vec<T>,
        gap: Duration,
        write: impl FnOnce(Vec<T>) -> Option<T>,
    ) -> Result<(), Refused> {
        let count = items.len();
        self.push_any_or_write(items, count, gap, write)
    }

    /// The two above: `count` items, written together or queued one by one.
    fn push_any_or_write<I: IntoIterator<Item = T>>(
        &self,
        items: I,
        count: usize,
        gap: Duration,
        write: impl FnOnce(I) -> Option<T>,
    ) -> Result<(), Refused> {
        let waiting = {
            let mut s = self.state();
            if s.closed {
                return Err(Refused::Closed);
            }
            if s.items.is_empty() && !s.busy && s.last_write.is_none_or(|t| t.elapsed() >= gap) {
                match write(items) {
                    None => {
                        s.last_write = Some(Instant::now());
                        return Ok(());
                    }
                    // Cut short (the socket's buffer is full): the rest goes first.
                    Some(rest) => {
                        s.cut = true;
                        s.items.push_back(rest);
                    }
                }
            } else {
                if s.items.len() + count > self.limit {
                    return Err(Refused::Full);
                }
                s.items.extend(items);
            }
            s.waiting.take()
        };
        if let Some(w) = waiting {
            w.wake();
        }
        Ok(())
    }

    /// The reader is about to write frames of its own: nothing is written directly meanwhile.
    /// Returns the rest of a direct write cut short, which must be written first (`None`
    /// when there is none, or nothing may be written any more: see [`Outbox::writable`]).
    pub fn begin_write(&self) -> Option<T> {
        let mut s = self.state();
        s.busy = true;
        if std::mem::take(&mut s.cut) { s.items.pop_front() } else { None }
    }

    /// Whether anything may still be written (no write failed or was cut off half-way).
    pub fn writable(&self) -> bool {
        !self.state().broken
    }

    /// A write failed or was given up half-way: the stream may end inside a frame, so
    /// nothing more is written or queued (pushes are refused as closed).
    pub fn break_off(&self) {
        let waiting = {
            let mut s = self.state();
            s.broken = true;
            s.closed = true;
            s.items.clear();
            s.waiting.take()
        };
        if let Some(w) = waiting {
            w.wake();
        }
    }

    /// The reader wrote what it took (or gave up): direct writes may resume.
    pub fn end_write(&self) {
        let mut s = self.state();
        s.busy = false;
        s.last_write = Some(Instant::now());
    }

    /// How long ago the last write ended (`None`: never).
    pub fn since_write(&self) -> Option<Duration> {
        self.state().last_write.map(|t| t.elapsed())
    }

    /// Closes the queue: the reader gets what is queued, then `None`.
    pub fn close(&self) {
        let waiting = {
            let mut s = self.state();
            s.closed = true;
            s.waiting.take()
        };
        if let Some(w) = waiting {
            w.wake();
        }
    }

    /// The next item without waiting (`None` if there is none right now).
    pub fn try_pop(&self) -> Option<T> {
        let mut s = self.state();
        s.cut = false;
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

    /// The next item; `None` once the queue is closed and drained. Taking one makes the
    /// reader busy until [`Outbox::end_write`].
    pub async fn pop(&self) -> Option<T> {
        std::future::poll_fn(|cx| {
            let mut s = self.state();
            if let Some(item) = s.items.pop_front() {
                s.busy = true;
                s.cut = false;
                if s.items.is_empty() && s.items.capacity() > KEEP {
                    s.items = VecDeque::new();
                }
                return Poll::Ready(Some(item));
            }
            if s.closed {
                return Poll::Ready(None);
            }
            match &mut s.waiting {
                Some(w) if w.will_wake(cx.waker()) => {}
                waiting => *waiting = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
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
    async fn a_waiting_reader_is_woken_by_a_push_or_a_close_and_never_misses_one() {
        let q = Outbox::new(10_000);
        let reader = {
            let q = q.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(i) = q.pop().await {
                    got.push(i);
                }
                got
            })
        };
        // Pushes land while the reader waits, runs, or has just looked.
        for i in 0..5_000 {
            q.push(i).unwrap();
            if i % 7 == 0 {
                tokio::task::yield_now().await;
            }
        }
        tokio::task::yield_now().await;
        q.close();
        assert_eq!(reader.await.unwrap(), (0..5_000).collect::<Vec<_>>());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pushes_from_another_thread_reach_the_reader() {
        let q = Outbox::new(100_000);
        let reader = {
            let q = q.clone();
            tokio::spawn(async move {
                let mut n = 0u32;
                while q.pop().await.is_some() {
                    n += 1;
                }
                n
            })
        };
        let writer = {
            let q = q.clone();
            std::thread::spawn(move || {
                for i in 0..50_000u32 {
                    q.push(i).unwrap();
                }
                q.close();
            })
        };
        writer.join().unwrap();
        assert_eq!(reader.await.unwrap(), 50_000);
    }

    #[tokio::test]
    async fn only_an_idle_quiet_reader_is_written_to_directly_and_nothing_overtakes() {
        // (`gap` is given per push: zero says "the last write was long enough ago", an hour
        // "too recent", so nothing here depends on the clock.)
        let (now, never) = (Duration::ZERO, Duration::from_secs(3600));
        let q = Outbox::new(10);
        let mut written = Vec::new();
        // Idle: written at once, nothing queued.
        q.push_or_write(1, never, |i| {
            written.push(i);
            None
        })
        .unwrap();
        assert_eq!((written, q.try_pop()), (vec![1], None), "never written before counts as idle");
        // Written too recently: queued, for the reader to coalesce.
        q.push_or_write(2, never, |_| unreachable!("too soon")).unwrap();
        // The reader takes it and is busy until it says it wrote: later frames queue behind.
        assert_eq!(q.pop().await, Some(2));
        q.push_or_write(3, now, |_| unreachable!("the reader holds an earlier frame")).unwrap();
        assert_eq!(q.try_pop(), Some(3));
        q.end_write();
        assert!(q.since_write().is_some());
        // A write cut short: the rest is queued, and what follows queues after it.
        q.push_or_write(40, now, |_| Some(4)).unwrap();
        q.push_or_write(5, now, |_| unreachable!("the rest of 40 is queued")).unwrap();
        assert_eq!((q.pop().await, q.try_pop()), (Some(4), Some(5)));
        q.end_write();
        // The reader's own frames hold direct writes off too.
        assert_eq!(q.begin_write(), None, "nothing was cut short");
        q.push_or_write(6, now, |_| unreachable!("the reader is writing")).unwrap();
        q.end_write();
        assert_eq!(q.try_pop(), Some(6));
        // A cut write's rest goes before the reader's own frames…
        q.push_or_write(80, now, |_| Some(8)).unwrap();
        assert_eq!(q.begin_write(), Some(8));
        q.end_write();
        // …once: a rest the reader already took is not taken again, nor a frame behind it.
        q.push_or_write(90, now, |_| Some(9)).unwrap();
        q.push(10).unwrap();
        assert_eq!(q.try_pop(), Some(9));
        assert_eq!(q.begin_write(), None);
        assert_eq!(q.try_pop(), Some(10));
        q.end_write();
        // Several at once: together to an idle reader, one by one into the queue otherwise,
        // each counting against the limit.
        q.push_all_or_write(vec![11, 12], now, |all| {
            assert_eq!(all, vec![11, 12]);
            None
        })
        .unwrap();
        q.push_all_or_write(vec![13, 14], never, |_| unreachable!("too soon")).unwrap();
        assert_eq!((q.try_pop(), q.try_pop()), (Some(13), Some(14)));
        assert_eq!(q.push_all_or_write((0..11).collect(), never, |_| unreachable!()), Err(Refused::Full));
        q.push_all_or_write(vec![150, 16], now, |_| Some(15)).unwrap();
        assert_eq!(q.begin_write(), Some(15), "the rest of a joint write is cut too");
        q.end_write();
        // A broken stream takes nothing more.
        q.push(17).unwrap();
        q.break_off();
        assert!(!q.writable());
        assert_eq!(q.try_pop(), None, "what was queued is dropped");
        assert_eq!(q.push(18), Err(Refused::Closed));
        // A closed queue takes nothing, directly or not.
        let q = Outbox::new(10);
        q.close();
        assert_eq!(q.push_or_write(19, now, |_| unreachable!("closed")), Err(Refused::Closed));
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
