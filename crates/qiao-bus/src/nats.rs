//! The cluster bus on NATS (core pub/sub, no JetStream: durability is the database's job).
//!
//! Every node publishes each batch it commits once, on `<prefix>.events.<node>`, and its
//! signals on `<prefix>.signals.<node>`; it subscribes once to `<prefix>.>` and hands what
//! other nodes sent to its [`Hub`]. NATS delivers one publisher's messages in order but
//! promises nothing across publishers, nor during an outage; the hub's sequencing and the
//! gap filler (which reads the store's event log) turn that into every position exactly
//! once, in order, on every node.
//!
//! Publishing never blocks the writer: batches go through a bounded queue to a publishing
//! task, and are dropped when it is full (the other nodes read them from the store).

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use qiao_domain::event::{Audience, Event};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{Hub, NodeId, Outbound, Signal};

/// Most messages waiting to be published before new ones are dropped.
const QUEUE: usize = 8192;
/// Largest message published: NATS refuses payloads over its `max_payload` (1 MiB by
/// default), so a large batch goes as several messages, in order.
const CHUNK: usize = 256 * 1024;
/// Most bytes waiting to be published (during an outage) before new messages are dropped.
const QUEUE_BYTES: usize = 64 << 20;
/// How long a starting node waits for the bus before it starts without it.
const INITIAL_WAIT: Duration = Duration::from_secs(3);

/// A node's connection to the bus. Dropping it stops receiving; [`Link::close`] also tells
/// the other nodes this one is leaving.
pub struct Link {
    client: async_nats::Client,
    node: NodeId,
    signals_subject: String,
    tasks: Vec<JoinHandle<()>>,
}

/// Connects `hub` to the NATS server at `url` (several may be given, comma-separated).
/// A server that does not answer is retried in the background for as long as it takes (the
/// node meanwhile reads other nodes' events from the store).
pub async fn connect(hub: &Hub, url: &str, prefix: &str) -> Result<Link, String> {
    let valid = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !prefix.split('.').all(valid) {
        return Err(format!("the bus subject prefix {prefix:?} may hold only letters, digits, '-', '_' and dots"));
    }
    let node = hub.node();
    let options = async_nats::ConnectOptions::new()
        .name(format!("qiao-{node}"))
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None)
        // A node must be able to start while the bus is down: the store covers for it.
        .retry_on_initial_connect()
        .reconnect_delay_callback(|attempts| Duration::from_millis((attempts as u64 * 100).min(2000)))
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => tracing::info!("event bus connected"),
                async_nats::Event::Disconnected => {
                    tracing::warn!(
                        "event bus disconnected; reconnecting (other nodes' events are read from the store meanwhile)"
                    )
                }
                other => tracing::warn!(event = %other, "event bus"),
            }
        });
    let servers: Vec<&str> = url.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    let client = options.connect(servers).await.map_err(|e| format!("cannot reach the event bus at {url}: {e}"))?;
    let subscriber = client
        .subscribe(format!("{prefix}.>"))
        .await
        .map_err(|e| format!("cannot subscribe on the event bus at {url}: {e}"))?;
    // The client connects in the background; wait (briefly) until the server has our
    // subscription, so that signals other nodes send right after this node says it is ready
    // (a failed sign-in, a revocation) are not missed. Events would be filled in from the
    // store anyway; signals would not. A bus that is down does not hold up the start.
    if !matches!(tokio::time::timeout(INITIAL_WAIT, round_trip(&client)).await, Ok(true)) {
        tracing::warn!(bus = url, "the event bus does not answer yet; starting without it (it is retried)");
    }

    let (tx, mut rx) = mpsc::channel::<(String, Bytes)>(QUEUE);
    let queued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let publisher = {
        let (client, queued) = (client.clone(), queued.clone());
        tokio::spawn(async move {
            while let Some((subject, payload)) = rx.recv().await {
                queued.fetch_sub(payload.len(), std::sync::atomic::Ordering::Relaxed);
                if let Err(e) = client.publish(subject, payload).await {
                    tracing::warn!(error = %e, "publishing on the event bus failed (other nodes read it from the store)");
                }
            }
        })
    };
    let receiver = {
        let hub = hub.clone();
        let own = node.to_string();
        let events = format!("{prefix}.events.");
        let signals = format!("{prefix}.signals.");
        tokio::spawn(async move {
            let mut subscriber = subscriber;
            while let Some(msg) = subscriber.next().await {
                let subject = msg.subject.as_str();
                if subject.rsplit('.').next() == Some(own.as_str()) {
                    continue; // our own, delivered locally already
                }
                if subject.starts_with(&events) {
                    match decode_batch(&msg.payload) {
                        Some(batch) => hub.receive(batch),
                        None => tracing::warn!(subject, "undecodable batch on the event bus"),
                    }
                } else if subject.starts_with(&signals) {
                    match serde_json::from_slice::<Signal>(&msg.payload) {
                        Ok(signal) => hub.receive_signal(signal),
                        Err(e) => tracing::warn!(subject, error = %e, "undecodable signal on the event bus"),
                    }
                }
            }
        })
    };
    let signals_subject = format!("{prefix}.signals.{node}");
    hub.connect(Arc::new(Sender {
        tx,
        queued,
        events_subject: format!("{prefix}.events.{node}"),
        signals_subject: signals_subject.clone(),
    }));
    Ok(Link { client, node, signals_subject, tasks: vec![publisher, receiver] })
}

/// Sends a message to ourselves and waits for it. The server handles one connection's
/// commands in order, so once it comes back every subscription made before is in place
/// (`flush` alone only says the bytes left this process).
async fn round_trip(client: &async_nats::Client) -> bool {
    let inbox = client.new_inbox();
    let Ok(mut probe) = client.subscribe(inbox.clone()).await else { return false };
    if client.publish(inbox, Bytes::new()).await.is_err() {
        return false;
    }
    probe.next().await.is_some()
}

impl Link {
    /// Tells the other nodes this one is leaving, flushes, and stops.
    pub async fn close(self) {
        if let Ok(payload) = serde_json::to_vec(&Signal::Gone { node: self.node }) {
            let _ = self.client.publish(self.signals_subject.clone(), payload.into()).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.client.flush()).await;
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

struct Sender {
    tx: mpsc::Sender<(String, Bytes)>,
    /// Bytes waiting in `tx`.
    queued: Arc<std::sync::atomic::AtomicUsize>,
    events_subject: String,
    signals_subject: String,
}

impl Sender {
    fn send(&self, subject: &str, payload: Bytes) {
        use std::sync::atomic::Ordering::Relaxed;
        let n = payload.len();
        // Counted before the send, so the publisher's subtraction never comes first (the
        // count would wrap); taken back if the message is dropped.
        if self.queued.fetch_add(n, Relaxed).saturating_add(n) > QUEUE_BYTES
            || self.tx.try_send((subject.to_owned(), payload)).is_err()
        {
            self.queued.fetch_sub(n, Relaxed);
            metrics::counter!("qiao_bus_dropped_total").increment(1);
        }
    }
}

impl Outbound for Sender {
    fn events(&self, batch: &Arc<[Event]>) {
        for chunk in encode_batch(batch, CHUNK) {
            self.send(&self.events_subject, chunk);
        }
    }

    fn signal(&self, signal: &Signal) {
        if let Ok(payload) = serde_json::to_vec(signal) {
            self.send(&self.signals_subject, payload.into());
        }
    }
}

/// One line per event: the audience kind (with the recipient of a `user` event), a space,
/// and the event's frame exactly as committed (JSON never holds a raw newline). Messages
/// hold whole lines and stay under `max` bytes unless one event alone is larger.
fn encode_batch(batch: &[Event], max: usize) -> Vec<Bytes> {
    let mut chunks = Vec::new();
    let mut out = BytesMut::new();
    for e in batch {
        if !out.is_empty() && out.len() + e.frame.len() + 48 > max {
            chunks.push(std::mem::take(&mut out).freeze());
        }
        out.put_slice(e.audience.kind().as_bytes());
        if let Audience::User(u) = e.audience {
            out.put_u8(b':');
            out.put_slice(u.to_string().as_bytes());
        }
        out.put_u8(b' ');
        out.put_slice(&e.frame);
        out.put_u8(b'\n');
    }
    if !out.is_empty() {
        chunks.push(out.freeze());
    }
    chunks
}

fn decode_batch(payload: &Bytes) -> Option<Vec<Event>> {
    let mut events = Vec::new();
    let mut rest = payload.clone();
    while !rest.is_empty() {
        let end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
        let line = rest.split_to(end);
        if !rest.is_empty() {
            let _ = rest.split_to(1);
        }
        let space = line.iter().position(|b| *b == b' ')?;
        let head = std::str::from_utf8(&line[..space]).ok()?;
        let (kind, user) = match head.split_once(':') {
            Some((kind, user)) => (kind, Some(user.parse().ok()?)),
            None => (head, None),
        };
        let event = Event::decode(kind, user, line.slice(space + 1..))?;
        // Positions must strictly increase within a batch (anything else is not ours).
        if events.last().is_some_and(|e: &Event| e.pos >= event.pos) || event.pos <= 0 || event.pos == i64::MAX {
            return None;
        }
        events.push(event);
    }
    Some(events)
}

#[cfg(test)]
mod tests {
    use qiao_domain::event::{EventData, encode_frame};
    use qiao_domain::{ConversationId, SessionId, UserId};

    use super::*;

    fn event(pos: i64, audience: Audience) -> Event {
        let data = EventData::SessionRevoked { session_id: SessionId::new() };
        let seq = matches!(audience, Audience::Conversation(_)).then_some(pos * 10);
        Event { pos, audience, seq, frame: encode_frame(pos, 5, &audience, seq, &data).into(), data: Arc::new(data) }
    }

    #[test]
    fn batches_cross_the_wire_unchanged() {
        let batch = vec![
            event(1, Audience::Conversation(ConversationId::new())),
            event(2, Audience::User(UserId::new())),
            event(3, Audience::Staff),
            event(4, Audience::Everyone),
        ];
        let encoded = encode_batch(&batch, 1 << 20);
        assert_eq!(encoded.len(), 1);
        let back = decode_batch(&encoded[0]).unwrap();
        assert_eq!(back.len(), 4);
        for (a, b) in batch.iter().zip(&back) {
            assert_eq!((a.pos, a.audience, a.seq, &a.frame, &*a.data), (b.pos, b.audience, b.seq, &b.frame, &*b.data));
        }
        // A small limit splits the batch at event boundaries, in order.
        let chunks = encode_batch(&batch, 200);
        assert!(chunks.len() > 1 && chunks.iter().all(|c| c.len() <= 400));
        let positions: Vec<i64> = chunks.iter().flat_map(|c| decode_batch(c).unwrap()).map(|e| e.pos).collect();
        assert_eq!(positions, vec![1, 2, 3, 4]);
        assert!(decode_batch(&Bytes::from_static(b"user {}\n")).is_none());
        assert!(decode_batch(&Bytes::from_static(b"nonsense")).is_none());
    }
}
