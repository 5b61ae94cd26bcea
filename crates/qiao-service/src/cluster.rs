//! Keeping this node's event stream complete when other nodes write to the same database.
//!
//! Batches committed elsewhere normally arrive over the bus within a millisecond. When one
//! does not (the bus is down or restarting, a message was dropped, a node died between its
//! commit and its publish), the store still has it: [`follow_store`] reads the event log
//! from the last position this node delivered and hands what it finds to the hub, which
//! skips what it has already seen. It acts on a gap (a later batch arrived first) after a
//! short grace, and on a quiet tail (the store's head is ahead and nothing arrived for a
//! poll interval).

use std::time::Duration;

use qiao_bus::Hub;
use qiao_domain::Result;
use qiao_domain::event::Event;
use qiao_store::{Store, events};

/// How long a gap may stay open before the store is read (the bus usually fills it first).
const GAP_GRACE: Duration = Duration::from_millis(25);
/// Events read from the store per query.
const PAGE: i64 = 1000;

/// Follows the store until `stop` fires, filling whatever the bus did not bring.
pub async fn follow_store(store: Store, hub: Hub, poll: Duration, mut stop: tokio::sync::oneshot::Receiver<()>) {
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = hub.delivered();
    loop {
        let gap = tokio::select! {
            _ = hub.gap_opened() => true,
            _ = tick.tick() => false,
            _ = &mut stop => return,
        };
        if gap {
            tokio::time::sleep(GAP_GRACE).await;
        }
        let delivered = hub.delivered();
        let quiet = delivered == seen;
        match fill(&store, &hub, quiet).await {
            Ok(0) => {}
            Ok(n) => {
                metrics::counter!("qiao_bus_filled_from_store_total").increment(n as u64);
                tracing::debug!(events = n, "events read back from the store");
            }
            Err(e) => tracing::warn!(error = %e, "reading the event log to fill a gap failed"),
        }
        seen = hub.delivered();
    }
}

/// Reads the log after the hub's position if a gap is open, or if `quiet` and the store is
/// ahead; returns how many events were handed over.
async fn fill(store: &Store, hub: &Hub, quiet: bool) -> Result<usize> {
    let gap = hub.gap_after().is_some();
    if !gap && !quiet {
        return Ok(0); // the bus is bringing events; nothing to check
    }
    let mut r = store.reader().await?;
    if !gap && events::head(&mut r).await? <= hub.delivered() {
        return Ok(0);
    }
    let mut total = 0;
    loop {
        let page = events::range(&mut r, hub.delivered(), PAGE).await?;
        let n = page.len();
        let batch: Vec<Event> =
            page.into_iter().filter_map(|e| Event::decode(&e.audience, e.user_id, e.frame.into_bytes())).collect();
        total += batch.len();
        hub.receive(batch);
        if n < PAGE as usize {
            return Ok(total);
        }
    }
}
