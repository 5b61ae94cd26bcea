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
        let before = hub.delivered();
        let page = events::range(&mut r, before, PAGE).await?;
        let n = page.len();
        let mut batch: Vec<Event> = Vec::with_capacity(n);
        for e in page {
            let (pos, kind) = (e.pos, e.kind.clone());
            match Event::decode(&e.audience, e.user_id, e.frame.into_bytes()) {
                Some(event) => batch.push(event),
                None => {
                    // Never wait for it: the stream goes on without it.
                    tracing::warn!(pos, kind, "skipping an event this node cannot read (from a newer version?)");
                    total += batch.len();
                    hub.receive(std::mem::take(&mut batch));
                    hub.skip(pos);
                }
            }
        }
        total += batch.len();
        hub.receive(batch);
        if n < PAGE as usize || hub.delivered() <= before {
            return Ok(total);
        }
    }
}

/// Why a node described by `me` may not run beside the live `others` on one database, if it
/// may not. A row left by an earlier run of the same node (same host and data directory)
/// does not count.
pub fn refusal(me: &qiao_store::nodes::Node, others: &[qiao_store::nodes::Node]) -> Option<String> {
    for o in others.iter().filter(|o| o.id != me.id && !(o.host == me.host && o.data_dir == me.data_dir)) {
        let who =
            format!("another Qiao node (on {}, data directory {}) is running on this database", o.host, o.data_dir);
        if o.version != me.version {
            let theirs = if o.version.is_empty() { "an older version" } else { o.version.as_str() };
            return Some(format!(
                "{who} and it runs Qiao {theirs}, this node {}: the nodes of a cluster must run the same version. \
                 To upgrade, stop every node, then start them on the new version (see docs/deployment.md)",
                me.version
            ));
        }
        if !me.bus || !o.bus {
            let which = if me.bus { "it has no event bus" } else { "this node has no event bus" };
            return Some(format!(
                "{who} and {which}: nodes sharing a database must all set the same bus = nats://… \
                 (see docs/deployment.md), or run one node only"
            ));
        }
        if !me.shared_files || !o.shared_files {
            let which = if me.shared_files { "it keeps" } else { "this node would keep" };
            return Some(format!(
                "{who} and {which} files in its own data directory: nodes sharing a database must all set \
                 file_store = s3://… or the same shared directory (see docs/deployment.md)"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use qiao_store::nodes::Node;

    use super::*;

    fn node(id: &str, host: &str, bus: bool, shared_files: bool) -> Node {
        Node {
            id: id.into(),
            host: host.into(),
            data_dir: "/var/lib/qiao".into(),
            bus,
            shared_files,
            version: "1.0.0+schema10".into(),
            started_at: 0,
            seen_at: 0,
        }
    }

    #[test]
    fn nodes_must_share_the_bus_and_the_files() {
        let me = node("a", "h1", true, true);
        assert_eq!(refusal(&me, &[]), None);
        assert_eq!(refusal(&me, &[node("b", "h2", true, true)]), None);
        assert!(refusal(&me, &[node("b", "h2", false, true)]).unwrap().contains("it has no event bus"));
        let alone = node("a", "h1", false, true);
        assert!(refusal(&alone, &[node("b", "h2", true, true)]).unwrap().contains("this node has no event bus"));
        assert!(refusal(&me, &[node("b", "h2", true, false)]).unwrap().contains("file_store"));
        // Another version: refused, whatever else matches.
        let older = Node { version: String::new(), ..node("b", "h2", true, true) };
        assert!(refusal(&me, &[older]).unwrap().contains("an older version"));
        let newer = Node { version: "1.1.0+schema11".into(), ..node("b", "h2", true, true) };
        assert!(refusal(&me, &[newer]).unwrap().contains("runs Qiao 1.1.0+schema11, this node 1.0.0+schema10"));
        // A single node restarting after a crash finds its own old row: fine.
        assert_eq!(refusal(&node("a2", "h1", false, false), &[node("a1", "h1", false, false)]), None);
    }
}
