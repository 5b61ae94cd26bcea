//! The event hub: where committed events go after the commit.
//!
//! The store's writer hands each committed batch to [`Hub::publish`] in position order,
//! before it answers the writers' callers. The hub first runs the synchronous *observers*
//! (caches that must never serve a stale answer once a change is acknowledged, such as the
//! session cache), then offers the batch to asynchronous *subscribers* (the realtime gateway,
//! the search indexer) through a bounded broadcast channel: a subscriber that falls behind
//! is told how much it missed and catches up from the store.

use std::sync::{Arc, RwLock};

use qiao_domain::event::Event;
use tokio::sync::broadcast;

/// A synchronous observer of committed events. Must be quick and must not block.
pub type Observer = Arc<dyn Fn(&[Event]) + Send + Sync>;

/// In-process fan-out of committed events; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    observers: Arc<RwLock<Vec<Observer>>>,
    batches: broadcast::Sender<Arc<[Event]>>,
}

impl Hub {
    /// A hub whose subscribers may fall `capacity` batches behind before they lag.
    pub fn new(capacity: usize) -> Hub {
        let (batches, _) = broadcast::channel(capacity.max(1));
        Hub { observers: Arc::default(), batches }
    }

    /// Adds a synchronous observer.
    pub fn observe(&self, observer: Observer) {
        self.observers.write().unwrap_or_else(|p| p.into_inner()).push(observer);
    }

    /// A new subscription to every batch published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<[Event]>> {
        self.batches.subscribe()
    }

    /// Delivers a committed batch (in position order).
    pub fn publish(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        for o in self.observers.read().unwrap_or_else(|p| p.into_inner()).iter() {
            o(&events);
        }
        // No subscriber is not an error: events are durable in the store.
        let _ = self.batches.send(events.into());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use qiao_domain::DepartmentId;
    use qiao_domain::event::{Audience, EventData, encode_frame};

    use super::*;

    fn event(pos: i64) -> Event {
        let data = EventData::DepartmentDeleted { department_id: DepartmentId::new() };
        Event {
            pos,
            audience: Audience::Staff,
            seq: None,
            frame: encode_frame(pos, 0, &Audience::Staff, None, &data).into(),
            data: Arc::new(data),
        }
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
}
