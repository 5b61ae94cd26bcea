//! The event hub: where committed events go after the commit, on this node and, in a
//! cluster, on every node.
//!
//! The store's writer hands each committed batch to [`Hub::publish`] before it answers the
//! writers' callers. The hub first runs the synchronous *observers* (caches that must never
//! serve a stale answer once a change is acknowledged, such as the session cache), then
//! offers the batch to asynchronous *subscribers* (the realtime gateway, the search indexer)
//! through a bounded broadcast channel: a subscriber that falls behind is told how much it
//! missed and catches up from the store.
//!
//! In a cluster, batches committed by other nodes arrive through [`Hub::receive`] (from the
//! bus, see [`nats`], or read back from the store's event log). Positions are global and
//! gap-free, so the hub *sequences*: subscribers see every position exactly once and in
//! order, whichever way and in whatever order batches arrive. A batch that arrives ahead of
//! a missing one is held; whoever feeds the hub fills the gap from the store
//! ([`Hub::gap_after`]). Presence and typing are not committed events: they travel as
//! [`Signal`]s, best effort.

pub mod nats;
mod recent;
mod signal;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use qiao_domain::event::Event;
use tokio::sync::{Notify, broadcast};

pub use recent::RecentEvents;
pub use signal::{NodeId, Signal, Status};

/// A synchronous observer of committed events. Must be quick and must not block. In a
/// cluster it may see an event twice and, across nodes, out of order: observers only
/// invalidate.
pub type Observer = Arc<dyn Fn(&[Event]) + Send + Sync>;

/// A synchronous observer of other nodes' signals (the sign-in throttle). Quick, no blocking.
pub type SignalObserver = Arc<dyn Fn(&Signal) + Send + Sync>;

/// Where this node's own batches and signals go besides local subscribers (the bus).
pub trait Outbound: Send + Sync {
    fn events(&self, batch: &Arc<[Event]>);
    fn signal(&self, signal: &Signal);
}

/// Most bytes of frames held while waiting for a missing position; beyond it new batches are
/// dropped (the store has them and the gap filler reads them back).
const MAX_HELD_BYTES: usize = 64 << 20;

fn batch_bytes(batch: &[Event]) -> usize {
    batch.iter().map(|e| e.frame.len() + 64).sum()
}

#[derive(Default)]
struct Order {
    /// The next position subscribers expect; 0 until known.
    next: i64,
    /// Batches that arrived ahead of `next`, by first position.
    held: BTreeMap<i64, Arc<[Event]>>,
    held_bytes: usize,
}

/// Fan-out of committed events; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    observers: Arc<RwLock<Vec<Observer>>>,
    batches: broadcast::Sender<Arc<[Event]>>,
    signals: broadcast::Sender<Arc<Signal>>,
    signal_observers: Arc<RwLock<Vec<SignalObserver>>>,
    order: Arc<Mutex<Order>>,
    gap: Arc<Notify>,
    outbound: Arc<RwLock<Option<Arc<dyn Outbound>>>>,
    node: NodeId,
    /// The latest delivered batches (for clients resuming after a short gap).
    recent: Arc<Mutex<recent::Recent>>,
}

impl Hub {
    /// A hub whose subscribers may fall `capacity` batches behind before they lag; it keeps
    /// no recent events (see [`Hub::with_recent`]).
    pub fn new(capacity: usize) -> Hub {
        let (batches, _) = broadcast::channel(capacity.max(1));
        let (signals, _) = broadcast::channel(capacity.max(1));
        Hub {
            observers: Arc::default(),
            batches,
            signals,
            signal_observers: Arc::default(),
            order: Arc::default(),
            gap: Arc::default(),
            outbound: Arc::default(),
            node: NodeId::random(),
            recent: Arc::new(Mutex::new(recent::Recent::new(0))),
        }
    }

    /// Keeps the latest delivered events, up to about `bytes` of memory, for
    /// [`Hub::recent_after`].
    pub fn with_recent(mut self, bytes: usize) -> Hub {
        self.recent = Arc::new(Mutex::new(recent::Recent::new(bytes)));
        self
    }

    /// The delivered events after `after`, if the kept window reaches back that far. They are
    /// an unbroken run of positions up to [`RecentEvents::upto`], which may be short of the
    /// store's head (a commit not delivered yet): the rest is in the store.
    pub fn recent_after(&self, after: i64) -> Option<RecentEvents> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner()).after(after)
    }

    /// This node's identity on the bus (random per process).
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// Adds a synchronous observer.
    pub fn observe(&self, observer: Observer) {
        self.observers.write().unwrap_or_else(|p| p.into_inner()).push(observer);
    }

    /// Adds a synchronous observer of other nodes' signals.
    pub fn observe_signals(&self, observer: SignalObserver) {
        self.signal_observers.write().unwrap_or_else(|p| p.into_inner()).push(observer);
    }

    /// Sends this node's batches and signals to `outbound` too (the cluster bus).
    pub fn connect(&self, outbound: Arc<dyn Outbound>) {
        *self.outbound.write().unwrap_or_else(|p| p.into_inner()) = Some(outbound);
    }

    /// Whether this node is connected to other nodes (signals go somewhere).
    pub fn is_connected(&self) -> bool {
        self.outbound.read().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    fn outbound(&self) -> Option<Arc<dyn Outbound>> {
        self.outbound.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A new subscription to every batch delivered from now on (in position order).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<[Event]>> {
        self.batches.subscribe()
    }

    /// A new subscription to signals from other nodes.
    pub fn subscribe_signals(&self) -> broadcast::Receiver<Arc<Signal>> {
        self.signals.subscribe()
    }

    /// Subscribers will be handed positions after `head` (the store's head at start-up);
    /// anything at or before it is already in the store.
    pub fn start_after(&self, head: i64) {
        let mut o = self.order.lock().unwrap_or_else(|p| p.into_inner());
        if o.next == 0 {
            o.next = head + 1;
        }
    }

    /// The last position delivered to subscribers (0 when nothing is known yet).
    pub fn delivered(&self) -> i64 {
        (self.order.lock().unwrap_or_else(|p| p.into_inner()).next - 1).max(0)
    }

    /// When a later batch is held waiting for missing positions: the position after which
    /// the store should be read to fill the gap.
    pub fn gap_after(&self) -> Option<i64> {
        let o = self.order.lock().unwrap_or_else(|p| p.into_inner());
        (!o.held.is_empty()).then_some(o.next - 1)
    }

    /// Resolves when a gap may have opened (a batch was held).
    pub async fn gap_opened(&self) {
        self.gap.notified().await;
    }

    /// Delivers a batch this node committed (in position order): observers, the bus, then
    /// subscribers.
    pub fn publish(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        self.run_observers(&events);
        let batch: Arc<[Event]> = events.into();
        if let Some(out) = self.outbound() {
            out.events(&batch);
        }
        self.offer(batch);
    }

    /// Delivers a batch another node committed, or one read back from the store. Positions
    /// already delivered are skipped.
    pub fn receive(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        self.run_observers(&events);
        self.offer(events.into());
    }

    fn run_observers(&self, events: &[Event]) {
        for o in self.observers.read().unwrap_or_else(|p| p.into_inner()).iter() {
            o(events);
        }
    }

    /// Hands the batch to subscribers if it continues the stream, else holds it.
    fn offer(&self, batch: Arc<[Event]>) {
        let mut o = self.order.lock().unwrap_or_else(|p| p.into_inner());
        let (first, last) = (batch[0].pos, batch[batch.len() - 1].pos);
        if o.next == 0 {
            o.next = first;
        }
        if last < o.next {
            return; // seen already
        }
        if first > o.next {
            let bytes = batch_bytes(&batch);
            if o.held_bytes + bytes <= MAX_HELD_BYTES && !o.held.contains_key(&first) {
                o.held_bytes += bytes;
                o.held.insert(first, batch);
            }
            drop(o);
            self.gap.notify_one();
            return;
        }
        self.deliver(&mut o, batch);
        self.release_held(&mut o);
    }

    /// Delivers held batches that now continue the stream.
    fn release_held(&self, o: &mut Order) {
        while o.held.first_key_value().is_some_and(|(first, _)| *first <= o.next) {
            let Some((_, held)) = o.held.pop_first() else { break };
            o.held_bytes -= batch_bytes(&held);
            if held[held.len() - 1].pos >= o.next {
                self.deliver(o, held);
            }
        }
    }

    /// Lets the stream go on past `pos` without its event (one this node cannot read, say
    /// from a newer version), instead of waiting for it for ever.
    pub fn skip(&self, pos: i64) {
        let mut o = self.order.lock().unwrap_or_else(|p| p.into_inner());
        if o.next == pos {
            o.next = pos + 1;
            self.release_held(&mut o);
        }
    }

    /// Sends the part of `batch` at or after `next` (called with the order lock held, so
    /// subscribers receive batches in position order).
    fn deliver(&self, o: &mut Order, batch: Arc<[Event]>) {
        let fresh = if batch[0].pos < o.next {
            batch.iter().filter(|e| e.pos >= o.next).cloned().collect::<Arc<[Event]>>()
        } else {
            batch
        };
        if let Some(e) = fresh.last() {
            o.next = e.pos + 1;
            self.recent.lock().unwrap_or_else(|p| p.into_inner()).push(fresh.clone());
            // No subscriber is not an error: events are durable in the store.
            let _ = self.batches.send(fresh);
        }
    }

    /// Sends a signal of this node to the other nodes (nothing happens on a single node).
    pub fn signal(&self, signal: Signal) {
        if let Some(out) = self.outbound() {
            out.signal(&signal);
        }
    }

    /// Hands a signal from another node to the signal observers, then to subscribers.
    pub fn receive_signal(&self, signal: Signal) {
        for o in self.signal_observers.read().unwrap_or_else(|p| p.into_inner()).iter() {
            o(&signal);
        }
        let _ = self.signals.send(Arc::new(signal));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A staff-wide event at `pos` (also used by `recent.rs`'s tests).
    pub(crate) fn event(pos: i64) -> Event {
        use qiao_domain::event::{Audience, EventData, encode_frame};
        let data = EventData::DepartmentDeleted { department_id: qiao_domain::DepartmentId::new() };
        Event {
            pos,
            audience: Audience::Staff,
            seq: None,
            frame: encode_frame(pos, 0, &Audience::Staff, None, &data).into(),
            data: Arc::new(data),
        }
    }

    fn events(range: std::ops::RangeInclusive<i64>) -> Vec<Event> {
        range.map(event).collect()
    }

    fn drain(sub: &mut broadcast::Receiver<Arc<[Event]>>) -> Vec<i64> {
        let mut out = Vec::new();
        while let Ok(b) = sub.try_recv() {
            out.extend(b.iter().map(|e| e.pos));
        }
        out
    }

    #[tokio::test]
    async fn observers_run_first_then_subscribers_receive_batches_in_order() {
        let hub = Hub::new(4);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        hub.observe(Arc::new(move |evs: &[Event]| s.lock().unwrap().extend(evs.iter().map(|e| e.pos))));
        let mut sub = hub.subscribe();
        hub.publish(vec![event(1), event(2)]);
        hub.publish(vec![]);
        hub.publish(vec![event(3)]);
        assert_eq!(*seen.lock().unwrap(), vec![1, 2, 3]);
        assert_eq!(sub.recv().await.unwrap().iter().map(|e| e.pos).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(sub.recv().await.unwrap()[0].pos, 3);
    }

    #[tokio::test]
    async fn a_lagging_subscriber_learns_how_much_it_missed() {
        let hub = Hub::new(2);
        let mut sub = hub.subscribe();
        for p in 1..=5 {
            hub.publish(vec![event(p)]);
        }
        match sub.recv().await {
            Err(broadcast::error::RecvError::Lagged(n)) => assert_eq!(n, 3),
            other => panic!("expected lag, got {other:?}"),
        }
        assert_eq!(sub.recv().await.unwrap()[0].pos, 4);
    }

    #[tokio::test]
    async fn batches_from_several_nodes_are_delivered_once_and_in_position_order() {
        let hub = Hub::new(64);
        hub.start_after(10);
        let mut sub = hub.subscribe();
        let observed = Arc::new(Mutex::new(Vec::new()));
        let o = observed.clone();
        hub.observe(Arc::new(move |evs: &[Event]| o.lock().unwrap().extend(evs.iter().map(|e| e.pos))));

        hub.receive(events(5..=10)); // before start: already in the store
        hub.publish(events(14..=15)); // ours, committed after another node's 11..=13
        assert_eq!(drain(&mut sub), Vec::<i64>::new(), "held until 11..=13 arrive");
        assert_eq!(hub.gap_after(), Some(10));
        assert_eq!(*observed.lock().unwrap(), vec![5, 6, 7, 8, 9, 10, 14, 15], "observers never wait");
        hub.receive(events(11..=13));
        assert_eq!(drain(&mut sub), vec![11, 12, 13, 14, 15]);
        assert_eq!(hub.gap_after(), None);

        // The same events again (from the bus and from the store), overlapping: once only.
        hub.receive(events(12..=16));
        hub.receive(events(14..=16));
        assert_eq!(drain(&mut sub), vec![16]);
        assert_eq!(hub.delivered(), 16);

        // Several held batches are released together, overlaps trimmed.
        hub.receive(events(20..=21));
        hub.receive(events(18..=20));
        hub.receive(events(17..=17));
        assert_eq!(drain(&mut sub), vec![17, 18, 19, 20, 21]);
    }

    #[tokio::test]
    async fn an_unreadable_position_can_be_skipped() {
        let hub = Hub::new(8);
        hub.start_after(0);
        let mut sub = hub.subscribe();
        hub.receive(events(2..=3));
        hub.skip(5); // not next: ignored
        assert_eq!(drain(&mut sub), Vec::<i64>::new());
        hub.skip(1);
        assert_eq!(drain(&mut sub), vec![2, 3]);
        assert_eq!(hub.delivered(), 3);
    }

    #[tokio::test]
    async fn without_a_start_position_the_first_batch_starts_the_stream() {
        let hub = Hub::new(8);
        let mut sub = hub.subscribe();
        hub.publish(events(7..=8));
        hub.publish(events(9..=9));
        assert_eq!(drain(&mut sub), vec![7, 8, 9]);
    }

    #[tokio::test]
    async fn signals_go_out_and_come_in() {
        struct Recorder(Mutex<Vec<String>>);
        impl Outbound for Recorder {
            fn events(&self, batch: &Arc<[Event]>) {
                self.0.lock().unwrap().push(format!("events {}", batch.len()));
            }
            fn signal(&self, s: &Signal) {
                self.0.lock().unwrap().push(format!("{s:?}"));
            }
        }
        let hub = Hub::new(8);
        let rec = Arc::new(Recorder(Mutex::default()));
        hub.connect(rec.clone());
        let mut signals = hub.subscribe_signals();
        let observed = Arc::new(Mutex::new(0));
        let o = observed.clone();
        hub.observe_signals(Arc::new(move |_| *o.lock().unwrap() += 1));
        hub.publish(events(1..=2));
        hub.receive(events(3..=3)); // from elsewhere: not sent back out
        hub.signal(Signal::Gone { node: hub.node() });
        assert_eq!(rec.0.lock().unwrap().len(), 2);
        assert!(rec.0.lock().unwrap()[0] == "events 2");
        hub.receive_signal(Signal::Gone { node: NodeId(7) });
        assert!(matches!(*signals.recv().await.unwrap(), Signal::Gone { node: NodeId(7) }));
        assert_eq!(*observed.lock().unwrap(), 1, "observers see other nodes' signals, not ours");
    }
}
