//! The most recent committed events, kept in memory in stream order, so that a client that
//! reconnects after a short gap (a laptop waking, a phone changing network) is caught up
//! without reading the event log. The log stays the reference: whatever this window does
//! not reach is read from the store.

use std::collections::VecDeque;
use std::sync::Arc;

use qiao_domain::event::Event;

/// Bytes charged per event besides its frame: the event itself and its typed copy, which
/// is about as large as the frame.
const EVENT_OVERHEAD: usize = 160;

fn cost(batch: &[Event]) -> usize {
    batch.iter().map(|e| 2 * e.frame.len() + EVENT_OVERHEAD).sum()
}

/// An unbroken run of positions: every position from the first batch's first to the last
/// batch's last is present, once, in order.
pub(crate) struct Recent {
    batches: VecDeque<Arc<[Event]>>,
    bytes: usize,
    budget: usize,
}

/// What the window holds after some position: the batches (shared, not copied) and the last
/// position they reach.
#[derive(Clone, Debug, Default)]
pub struct RecentEvents {
    batches: Vec<Arc<[Event]>>,
    after: i64,
    /// The last position covered (equal to `after` when nothing newer is kept).
    pub upto: i64,
}

impl RecentEvents {
    /// The events after the position asked for, up to `upto` (inclusive), in order.
    pub fn events(&self, upto: i64) -> impl Iterator<Item = &Event> {
        let after = self.after;
        self.batches
            .iter()
            .flat_map(|b| b.iter())
            .skip_while(move |e| e.pos <= after)
            .take_while(move |e| e.pos <= upto)
    }
}

impl Recent {
    /// A window of at most `budget` bytes (0 keeps nothing).
    pub(crate) fn new(budget: usize) -> Recent {
        Recent { batches: VecDeque::new(), bytes: 0, budget }
    }

    fn first(&self) -> Option<i64> {
        self.batches.front().map(|b| b[0].pos)
    }

    fn last(&self) -> Option<i64> {
        self.batches.back().map(|b| b[b.len() - 1].pos)
    }

    /// Adds the next batch of the stream. A batch that does not continue the run (a position
    /// was skipped) or has a hole of its own starts the window afresh.
    pub(crate) fn push(&mut self, batch: Arc<[Event]>) {
        if self.budget == 0 || batch.is_empty() {
            return;
        }
        let (first, last) = (batch[0].pos, batch[batch.len() - 1].pos);
        let whole = usize::try_from(last - first + 1).is_ok_and(|n| n == batch.len());
        if !whole || self.last().is_some_and(|l| l + 1 != first) {
            self.batches.clear();
            self.bytes = 0;
        }
        if !whole {
            return;
        }
        self.bytes += cost(&batch);
        self.batches.push_back(batch);
        while self.bytes > self.budget {
            let Some(old) = self.batches.pop_front() else { break };
            self.bytes -= cost(&old);
        }
    }

    /// Everything after `after`, if the window reaches back that far (`after` is at least
    /// the position before its first); None otherwise.
    pub(crate) fn after(&self, after: i64) -> Option<RecentEvents> {
        let (first, last) = (self.first()?, self.last()?);
        if after < first - 1 {
            return None;
        }
        if after >= last {
            return Some(RecentEvents { batches: Vec::new(), after, upto: last });
        }
        // The first batch holding a position after `after`.
        let start = self.batches.partition_point(|b| b[b.len() - 1].pos <= after);
        Some(RecentEvents { batches: self.batches.range(start..).cloned().collect(), after, upto: last })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(range: std::ops::RangeInclusive<i64>) -> Arc<[Event]> {
        range.map(crate::tests::event).collect()
    }

    fn positions(r: &RecentEvents, upto: i64) -> Vec<i64> {
        r.events(upto).map(|e| e.pos).collect()
    }

    #[test]
    fn answers_only_when_it_reaches_back_far_enough() {
        let mut r = Recent::new(1 << 20);
        assert!(r.after(0).is_none(), "empty");
        r.push(batch(5..=7));
        r.push(batch(8..=8));
        r.push(batch(9..=12));
        assert!(r.after(3).is_none(), "position 4 is not kept");
        let all = r.after(4).unwrap();
        assert_eq!((all.upto, positions(&all, 12)), (12, (5..=12).collect()));
        let some = r.after(8).unwrap();
        assert_eq!(positions(&some, 12), vec![9, 10, 11, 12]);
        assert_eq!(positions(&some, 10), vec![9, 10], "never past the position asked for");
        let mid = r.after(6).unwrap();
        assert_eq!(positions(&mid, 12), vec![7, 8, 9, 10, 11, 12], "a batch cut in the middle");
        let none = r.after(12).unwrap();
        assert_eq!((none.upto, positions(&none, 20)), (12, vec![]));
        assert_eq!(r.after(15).unwrap().upto, 12, "ahead of the window: it reaches only 12");
    }

    #[test]
    fn the_oldest_batches_go_when_the_budget_is_spent() {
        // Three-digit positions: every event costs the same.
        let one = cost(&batch(100..=100));
        let mut r = Recent::new(10 * one);
        for p in 100..=124 {
            r.push(batch(p..=p));
        }
        assert_eq!(r.first(), Some(115));
        assert_eq!(r.bytes, 10 * one);
        assert!(r.after(113).is_none());
        assert_eq!(positions(&r.after(114).unwrap(), 124), (115..=124).collect::<Vec<_>>());
    }

    #[test]
    fn a_break_in_the_run_starts_afresh() {
        let mut r = Recent::new(1 << 20);
        r.push(batch(1..=3));
        r.push(batch(5..=6)); // position 4 was skipped
        assert!(r.after(2).is_none());
        assert_eq!(positions(&r.after(4).unwrap(), 6), vec![5, 6]);

        let holed: Arc<[Event]> = batch(7..=9).iter().filter(|e| e.pos != 8).cloned().collect();
        r.push(holed);
        assert!(r.after(4).is_none(), "a batch with a hole is not kept, nor what came before");
        r.push(batch(10..=10));
        assert_eq!(positions(&r.after(9).unwrap(), 10), vec![10]);
        assert!(r.after(8).is_none());
    }

    #[test]
    fn a_zero_budget_keeps_nothing() {
        let mut r = Recent::new(0);
        r.push(batch(1..=3));
        assert!(r.after(0).is_none());
        assert!(r.after(3).is_none());
    }
}
