//! Ranking in one pass: every match is checked against the conversations the searcher may
//! read, counted, boosted by recency and kept if it is among the best so far. Fusing the
//! three (instead of tantivy's filter, count and tweaked top-docs collectors) reads each fast
//! field once per match and keeps the per-match work to a few loads and compares, which is
//! what a query for a common word spends its time on.

use std::cmp::Ordering;
use std::sync::Arc;

use qiao_domain::Millis;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, ColumnIndex, ColumnValues};
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

/// Folded ids of the conversations a search may return: an open-addressed table at most a
/// quarter full, so a lookup (made for every matching message) is one multiply and usually
/// one load. SipHash's resistance to chosen keys is not needed for ids we minted.
pub(crate) struct ConversationSet {
    slots: Box<[u64]>,
    shift: u32,
    /// Whether the id 0 is in the set (0 marks an empty slot).
    zero: bool,
}

impl ConversationSet {
    fn slot(&self, v: u64) -> usize {
        (v.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    pub(crate) fn contains(&self, v: u64) -> bool {
        if v == 0 {
            return self.zero;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.slot(v);
        loop {
            match self.slots[i] {
                0 => return false,
                s if s == v => return true,
                _ => i = (i + 1) & mask,
            }
        }
    }
}

impl FromIterator<u64> for ConversationSet {
    fn from_iter<I: IntoIterator<Item = u64>>(iter: I) -> Self {
        let values: Vec<u64> = iter.into_iter().collect();
        let bits = (values.len().max(1) * 4).next_power_of_two().trailing_zeros();
        let mut set = ConversationSet { slots: vec![0; 1 << bits].into_boxed_slice(), shift: 64 - bits, zero: false };
        let mask = set.slots.len() - 1;
        for v in values {
            if v == 0 {
                set.zero = true;
                continue;
            }
            let mut i = set.slot(v);
            while set.slots[i] != 0 && set.slots[i] != v {
                i = (i + 1) & mask;
            }
            set.slots[i] = v;
        }
        set
    }
}

/// Relevance boosted by recency: up to twice the score for today's messages, fading over weeks.
pub(crate) fn boosted(score: Score, created_at: Millis, now: Millis) -> Score {
    score * (1.0 + 1.0 / (1.0 + age_in_weeks(created_at, now)))
}

fn age_in_weeks(created_at: Millis, now: Millis) -> f32 {
    const PER_WEEK: f32 = 1.0 / (7.0 * 86_400_000.0);
    (now - created_at).max(0) as f32 * PER_WEEK
}

/// Whether [`boosted`] surely stays below `bar`, decided without a division:
/// `score * (1 + 1/(1+w)) < bar` is `score < (bar - score) * (1 + w)`. A relative margin keeps
/// rounding from rejecting a match the exact score would keep.
fn surely_below(score: Score, created_at: Millis, now: Millis, bar: Score) -> bool {
    score * (1.0 + 1e-4) < (bar - score) * (1.0 + age_in_weeks(created_at, now))
}

/// The most [`boosted`] can make of a score.
const MAX_BOOST: Score = 2.0;

/// The clock the recency boost reads: the start of the current hour. Scores then stay the
/// same from one request to the next (the pages of a search agree, and the same search gives
/// the same order), where the exact time made near-equal scores round differently each time.
pub(crate) fn ranking_clock(now: Millis) -> Millis {
    const HOUR: Millis = 3_600_000;
    now - now.rem_euclid(HOUR)
}

/// One kept match; greater is better. Ties go to the newer message, then to the earlier
/// document (tantivy's order, which a merge of segments may change: only for messages of the
/// same millisecond).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scored {
    score: Score,
    at: Millis,
    address: DocAddress,
}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| self.at.cmp(&other.at))
            .then_with(|| other.address.cmp(&self.address))
    }
}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Scored {}

/// The best `offset + limit` allowed matches (page `offset..offset + limit` of them) and how
/// many allowed matches there are in all.
pub(crate) struct Ranked {
    pub allowed: Arc<ConversationSet>,
    pub offset: usize,
    pub limit: usize,
    pub now: Millis,
}

pub(crate) struct RankedSegment {
    allowed: Arc<ConversationSet>,
    conversation: Arc<dyn ColumnValues<u64>>,
    at: Arc<dyn ColumnValues<i64>>,
    segment: SegmentOrdinal,
    keep: usize,
    now: Millis,
    /// Candidates, cut back to the best `keep` whenever twice as many have gathered (cheaper
    /// than a heap here: matches come oldest first, so with the recency boost most of them
    /// would displace the worst kept one).
    best: Vec<Scored>,
    /// The worst match kept at the last cut: nothing at or below it can make the page.
    threshold: Option<Scored>,
    count: usize,
}

/// Every document's value (each message has exactly one): read directly when the column says
/// so, through its index otherwise.
fn values<T>(column: Column<T>) -> Arc<dyn ColumnValues<T>>
where
    T: Default + PartialOrd + Copy + std::fmt::Debug + Send + Sync + 'static,
{
    match column.index {
        ColumnIndex::Full => column.values,
        _ => column.first_or_default_col(T::default()),
    }
}

impl RankedSegment {
    /// Keeps only the best `keep` candidates.
    fn cut(&mut self) {
        if self.best.len() > self.keep {
            self.best.select_nth_unstable_by(self.keep - 1, |a, b| b.cmp(a));
            self.best.truncate(self.keep);
            self.threshold = self.best.iter().min().copied();
        }
    }
}

impl Collector for Ranked {
    type Fruit = (Vec<(Score, DocAddress)>, usize);
    type Child = RankedSegment;

    fn for_segment(&self, segment: SegmentOrdinal, reader: &SegmentReader) -> tantivy::Result<RankedSegment> {
        let fast = reader.fast_fields();
        let keep = self.offset.saturating_add(self.limit);
        Ok(RankedSegment {
            allowed: self.allowed.clone(),
            conversation: values(fast.u64(crate::CONVERSATION_FIELD)?),
            at: values(fast.i64(crate::AT_FIELD)?),
            segment,
            keep,
            now: self.now,
            best: Vec::with_capacity(keep.saturating_mul(2).min(2048)),
            threshold: None,
            count: 0,
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, segments: Vec<(Vec<Scored>, usize)>) -> tantivy::Result<Self::Fruit> {
        let total = segments.iter().map(|(_, n)| n).sum();
        let mut all: Vec<Scored> = segments.into_iter().flat_map(|(kept, _)| kept).collect();
        all.sort_unstable_by(|a, b| b.cmp(a));
        let page = all.into_iter().skip(self.offset).take(self.limit).map(|s| (s.score, s.address)).collect();
        Ok((page, total))
    }
}

impl SegmentCollector for RankedSegment {
    type Fruit = (Vec<Scored>, usize);

    fn collect(&mut self, doc: DocId, score: Score) {
        if !self.allowed.contains(self.conversation.get_val(doc)) {
            return;
        }
        self.count += 1;
        // A match that cannot make the page even at the full boost is not looked at further
        // (an equal score may still win on its time).
        if self.keep == 0 || self.threshold.is_some_and(|t| score * MAX_BOOST < t.score) {
            return;
        }
        let at = self.at.get_val(doc);
        if self.threshold.is_some_and(|t| surely_below(score, at, self.now, t.score)) {
            return;
        }
        let scored = Scored { score: boosted(score, at, self.now), at, address: DocAddress::new(self.segment, doc) };
        if self.threshold.is_some_and(|t| scored <= t) {
            return;
        }
        self.best.push(scored);
        if self.best.len() >= self.keep.saturating_mul(2) {
            self.cut();
        }
    }

    fn harvest(mut self) -> Self::Fruit {
        self.cut();
        (self.best, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn recency_doubles_today_and_fades() {
        let now = 1_780_000_000_000;
        assert_eq!(boosted(1.0, now, now), 2.0);
        assert_eq!(boosted(1.0, now + DAY, now), 2.0); // clocks disagree: never above today
        assert!((boosted(1.0, now - 7 * DAY, now) - 1.5).abs() < 1e-6);
        assert!(boosted(1.0, now - 365 * DAY, now) < 1.02);
    }

    #[test]
    fn the_division_free_bound_never_rejects_what_the_exact_score_keeps() {
        let now = 1_780_000_000_000;
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut rejected = 0;
        for _ in 0..100_000 {
            let score = (next() % 10_000) as f32 / 1000.0 + 0.001;
            let at = now - (next() % (60 * DAY as u64)) as i64;
            let bar = score * (1.0 + (next() % 1000) as f32 / 1000.0);
            if surely_below(score, at, now, bar) {
                rejected += 1;
                assert!(boosted(score, at, now) < bar, "{score} {at} {bar}");
            }
        }
        assert!(rejected > 10_000, "the bound should reject most hopeless matches: {rejected}");
    }

    #[test]
    fn the_conversation_set_holds_exactly_its_members() {
        let members: Vec<u64> = (0..300u64).map(|i| i.wrapping_mul(0x1000_0000_0000_0001) ^ (i << 7)).collect();
        let set: ConversationSet = members.iter().copied().collect();
        assert!(members.iter().all(|m| set.contains(*m)));
        assert!(members.contains(&0) && set.contains(0));
        assert!((1..5000u64).map(|i| i * 0x51ED_2705).filter(|v| !members.contains(v)).all(|v| !set.contains(v)));
        let empty: ConversationSet = std::iter::empty().collect();
        assert!(!empty.contains(0) && !empty.contains(7));
    }

    #[test]
    fn better_scores_win_then_newer_messages_then_earlier_documents() {
        let at = |seg, doc, score, at| Scored { score, at, address: DocAddress::new(seg, doc) };
        assert!(at(0, 9, 2.0, 5) > at(0, 1, 1.0, 9));
        assert!(at(0, 1, 1.0, 9) > at(0, 2, 1.0, 8), "newer first");
        assert!(at(1, 2, 1.0, 9) > at(0, 1, 1.0, 8), "newer first, whichever the segment");
        assert!(at(0, 1, 1.0, 9) > at(0, 2, 1.0, 9));
        assert!(at(0, 5, 1.0, 9) > at(1, 0, 1.0, 9));
    }

    #[test]
    fn the_ranking_clock_holds_still_within_an_hour() {
        let hour = 3_600_000;
        let start = 1_780_000_000_000 / hour * hour;
        assert_eq!(ranking_clock(start), start);
        assert_eq!(ranking_clock(start + hour - 1), start);
        assert_eq!(ranking_clock(start + hour), start + hour);
    }
}
