//! The dispatcher: one task per node that owns the routing table and presence. It takes
//! committed batches from the hub (in stream order) and commands from sockets, and pushes
//! frames into each connection's bounded queue. A connection whose queue is full is dropped
//! as a slow consumer (it resumes later), so no reader can slow the others or make the
//! server's memory grow.
//!
//! In a cluster, the dispatcher also tells the other nodes (through the hub's bus) how its
//! devices' presence changed and who is typing, and applies what they tell it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use qiao_bus::{Hub, Signal};
use qiao_domain::event::Event;
use qiao_domain::{ConversationId, MessageId, SessionId, UserId};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::FastMap;
use super::dnd::DndLedger;
use super::link::Link;
use super::outbox::Refused;
use super::presence::{Presence, PresenceConfig};
use super::protocol::{ClientStatus, ServerMessage, close};
use super::routing::{Catchup, ConnId, Routing};
use super::wire;

/// What a connection's socket task receives.
#[derive(Debug)]
pub enum Out {
    /// Whole WebSocket frames, as written ([`wire`]); one event's frame is shared by all.
    Frame(Bytes),
    Close(u16, &'static str),
}

pub enum Command {
    Register {
        conn: ConnId,
        user: UserId,
        session: SessionId,
        guest: bool,
        queue: Arc<Link>,
        /// Answered once the connection is in the routing table: the socket reads the store's
        /// head only then, so every batch committed after that read reaches it. False: the
        /// person holds too many connections already (nothing was registered).
        ack: oneshot::Sender<bool>,
    },
    Ready {
        conn: ConnId,
        memberships: Vec<ConversationId>,
        sent_up_to: i64,
    },
    Unregister {
        conn: ConnId,
    },
    Presence {
        conn: ConnId,
        status: ClientStatus,
    },
    Activity {
        conn: ConnId,
    },
    Follow {
        conn: ConnId,
        users: Vec<UserId>,
    },
    Typing {
        conn: ConnId,
        conversation: ConversationId,
        thread: Option<MessageId>,
    },
    /// Close every connection (server shutdown) and stop.
    Shutdown {
        done: oneshot::Sender<()>,
    },
    /// Counts, for tests and metrics.
    Stats {
        reply: oneshot::Sender<Stats>,
    },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub connections: usize,
}

#[derive(Clone, Copy, Debug)]
pub struct DispatcherConfig {
    /// Frames queued per connection before it counts as a slow consumer.
    pub queue: usize,
    /// Events buffered for a connection while it catches up.
    pub pending_limit: usize,
    pub presence: PresenceConfig,
    /// Shortest time between two typing notices of one person in one place.
    pub typing_interval: Duration,
    /// How often the other nodes get a full snapshot of this node's presence (its heartbeat).
    pub presence_snapshot: Duration,
    /// Connections one person may hold on this node (all their devices and tabs).
    pub max_per_user: usize,
}

impl DispatcherConfig {
    /// How often presence is announced and snapshots are published: every second, or as
    /// often as snapshots are due if that is more often (their period is a third of the node
    /// timeout, so that a live node is never taken for gone).
    pub fn tick(&self) -> Duration {
        Duration::from_secs(1).min(self.presence_snapshot).max(Duration::from_millis(10))
    }
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig {
            queue: 1024,
            pending_limit: 20_000,
            presence: PresenceConfig::default(),
            typing_interval: Duration::from_secs(2),
            presence_snapshot: Duration::from_secs(5),
            max_per_user: 32,
        }
    }
}

struct Dispatcher {
    routing: Routing,
    presence: Presence,
    queues: FastMap<ConnId, Arc<Link>>,
    /// Where (the thread, `None` for the conversation's own composer) and when each person
    /// last announced typing in each conversation.
    typing: HashMap<(UserId, ConversationId), (Option<MessageId>, Instant)>,
    config: DispatcherConfig,
    hub: Hub,
    next_snapshot: Instant,
    /// Do-not-disturb settings made here, for the database.
    dnd: Arc<DndLedger>,
    /// While batches are routed, their frames wait here (see [`Dispatcher::drain`]).
    outgoing: Vec<(ConnId, Pending)>,
    routing_batch: bool,
    /// The writers' queues ([`write_turns`]).
    writers: Vec<mpsc::Sender<Job>>,
}

/// One writer's share of a turn, in order; answered with the connections found gone or
/// full (true), which the dispatcher then drops.
struct Job {
    items: Vec<(ConnId, Arc<Link>, Pending)>,
    done: oneshot::Sender<Vec<(ConnId, bool)>>,
}

/// A writer: hands on its share of each turn ([`hand_on_all`]).
async fn write_turns(mut jobs: mpsc::Receiver<Job>) {
    while let Some(job) = jobs.recv().await {
        let _ = job.done.send(hand_on_all(job.items).await);
    }
}

/// Hands a connection what waits for it: written at once if it is idle, queued otherwise.
fn hand_on(link: &Link, out: Pending) -> Result<(), Refused> {
    match out {
        Pending::One(out) => link.push(out),
        Pending::Frames(frames) => link.push_frames(frames),
    }
}

/// Hands on (part of) a turn, in order, yielding to the runtime every few hundred frames so
/// requests are not held behind a large room; returns the connections found full (true) or
/// closed, for the dispatcher to drop.
async fn hand_on_all(items: Vec<(ConnId, Arc<Link>, Pending)>) -> Vec<(ConnId, bool)> {
    let mut failed = Vec::new();
    for (i, (conn, link, out)) in items.into_iter().enumerate() {
        if i > 0 && i % DRAIN_CHUNK == 0 {
            tokio::task::yield_now().await;
        }
        match hand_on(&link, out) {
            Ok(()) => {}
            Err(Refused::Full) => {
                // The socket drains what it has, then closes with `SLOW_CONSUMER`.
                link.queue.close();
                failed.push((conn, true));
            }
            Err(Refused::Closed) => failed.push((conn, false)),
        }
    }
    failed
}

/// What waits for [`Dispatcher::drain`]: one item, or a connection's frames of several
/// batches (written together if it is idle).
enum Pending {
    One(Out),
    Frames(Vec<Bytes>),
}

/// A connection's frames of one turn, and the close that ends them (if any).
type Staged = (ConnId, Vec<Bytes>, Option<(u16, &'static str)>);

/// Frames handed on between two yields to the runtime.
const DRAIN_CHUNK: usize = 256;
/// Batches taken in one turn, at most.
const BATCHES_PER_TURN: usize = 64;

fn text(json: String) -> Bytes {
    wire::text(json.as_bytes())
}

/// An event's frame (its JSON was encoded once, at commit).
fn event_frame(e: &Event) -> Option<Bytes> {
    if std::str::from_utf8(&e.frame).is_err() {
        tracing::error!(pos = e.pos, "event frame is not UTF-8");
        return None;
    }
    Some(wire::text(&e.frame))
}

impl Dispatcher {
    /// Hands a frame on (or, while batches are routed, records it for [`Dispatcher::drain`]);
    /// a full queue drops the connection as a slow consumer.
    fn send(&mut self, conn: ConnId, out: Out) {
        if self.routing_batch {
            self.outgoing.push((conn, Pending::One(out)));
            return;
        }
        self.push(conn, Pending::One(out));
    }

    fn push(&mut self, conn: ConnId, out: Pending) {
        let Some(q) = self.queues.get(&conn) else { return };
        match hand_on(q, out) {
            Ok(()) => {}
            // The socket drains what it has, then closes with `SLOW_CONSUMER`.
            Err(refused) => self.drop_failed(vec![(conn, refused == Refused::Full)]),
        }
    }

    /// Drops the connections a hand-on found full (counted as slow consumers) or closed.
    fn drop_failed(&mut self, failed: Vec<(ConnId, bool)>) {
        for (conn, full) in failed {
            if full {
                metrics::counter!("qiao_ws_slow_consumers_total").increment(1);
            }
            self.drop_conn(conn);
        }
    }

    fn drop_conn(&mut self, conn: ConnId) {
        if let Some(user) = self.routing.user_of(conn) {
            self.presence.disconnect(conn, user, Instant::now());
        }
        self.routing.remove(conn);
        if let Some(q) = self.queues.remove(&conn) {
            q.queue.close();
        }
        metrics::gauge!("qiao_ws_connections").set(self.queues.len() as f64);
    }

    fn deliver(&mut self, frame: &Bytes, conns: &[ConnId]) {
        for c in conns {
            self.send(*c, Out::Frame(frame.clone()));
        }
        metrics::counter!("qiao_ws_frames_total").increment(conns.len() as u64);
    }

    /// Routes one batch (its frames go out in [`Dispatcher::drain`]).
    #[cfg(test)]
    fn on_batch(&mut self, batch: Arc<[Event]>) {
        self.on_batches(vec![batch]);
    }

    /// Routes the batches taken in one turn; their frames go out in [`Dispatcher::drain`].
    /// One event is delivered as it is; several (a server falling behind finds more batches
    /// waiting, and larger ones) reach each connection as one write, so the further behind,
    /// the fewer writes per frame, and it catches up instead of falling further behind.
    fn on_batches(&mut self, batches: Vec<Arc<[Event]>>) {
        self.routing_batch = true;
        for b in &batches {
            self.routing.buffer(b);
        }
        if let [single] = batches.as_slice()
            && let [e] = &single[..]
        {
            let routed = self.routing.route(e);
            if !routed.deliver.is_empty()
                && let Some(frame) = event_frame(e)
            {
                // Framed once; every recipient shares these bytes.
                self.deliver(&frame, &routed.deliver);
            }
            for (conn, code, reason) in routed.close {
                self.send(conn, Out::Close(code, reason));
            }
        } else {
            self.route_grouped(&batches);
        }
        self.routing_batch = false;
    }

    fn route_grouped(&mut self, batches: &[Arc<[Event]>]) {
        let mut index: FastMap<ConnId, usize> = FastMap::default();
        let mut staged: Vec<Staged> = Vec::new();
        let mut delivered = 0;
        for e in batches.iter().flat_map(|b| b.iter()) {
            let routed = self.routing.route(e);
            if !routed.deliver.is_empty()
                && let Some(frame) = event_frame(e)
            {
                delivered += routed.deliver.len();
                for c in routed.deliver {
                    match index.get(&c) {
                        Some(&i) if staged[i].2.is_none() => staged[i].1.push(frame.clone()),
                        Some(_) => {} // closing after these: it resumes from the store
                        None => {
                            index.insert(c, staged.len());
                            staged.push((c, vec![frame.clone()], None));
                        }
                    }
                }
            }
            for (c, code, reason) in routed.close {
                match index.get(&c) {
                    Some(&i) => {
                        staged[i].2.get_or_insert((code, reason));
                    }
                    None => {
                        index.insert(c, staged.len());
                        staged.push((c, Vec::new(), Some((code, reason))));
                    }
                }
            }
        }
        for (c, mut frames, close) in staged {
            match frames.len() {
                0 => {}
                1 => self.outgoing.push((c, Pending::One(Out::Frame(frames.swap_remove(0))))),
                _ => self.outgoing.push((c, Pending::Frames(frames))),
            }
            if let Some((code, reason)) = close {
                self.send(c, Out::Close(code, reason));
            }
        }
        metrics::counter!("qiao_ws_frames_total").increment(delivered as u64);
    }

    /// Hands on the frames of the batches just routed and waits until they are written:
    /// meanwhile batches gather in the hub, to reach each connection in one write next turn.
    /// Every few hundred frames the runtime's other tasks (HTTP requests, the store's writer)
    /// get their turn. With several runtime workers the writes go through one writer per
    /// worker (each owns the connections whose id falls to it, so a connection's frames stay
    /// in order): a large room's writes are spread over the server's cores, as the
    /// connections' own tasks used to spread them.
    async fn drain(&mut self) {
        let outgoing = std::mem::take(&mut self.outgoing);
        if outgoing.is_empty() {
            return;
        }
        // One core, or a small turn: the dispatcher writes itself (writer tasks would only
        // add hops).
        let n = if outgoing.len() < DRAIN_CHUNK { 1 } else { self.writers.len().max(1) };
        let mut shares: Vec<Vec<(ConnId, Arc<Link>, Pending)>> = (0..n).map(|_| Vec::new()).collect();
        for (conn, out) in outgoing {
            if let Some(link) = self.queues.get(&conn) {
                shares[(conn % n as u64) as usize].push((conn, link.clone(), out));
            }
        }
        if n == 1 {
            let failed = hand_on_all(shares.pop().unwrap_or_default()).await;
            self.drop_failed(failed);
            return;
        }
        let mut answers = Vec::new();
        let mut lost: Vec<(usize, Vec<ConnId>)> = Vec::new();
        for (i, (items, writer)) in shares.into_iter().zip(&self.writers).enumerate() {
            if items.is_empty() {
                continue;
            }
            let conns: Vec<ConnId> = items.iter().map(|(c, _, _)| *c).collect();
            let (done, answer) = oneshot::channel();
            match writer.send(Job { items, done }).await {
                Ok(()) => answers.push((i, conns, answer)),
                Err(_) => lost.push((i, conns)),
            }
        }
        for (i, conns, answer) in answers {
            match answer.await {
                Ok(failed) => self.drop_failed(failed),
                Err(_) => lost.push((i, conns)),
            }
        }
        if lost.is_empty() {
            return;
        }
        // A writer is gone (it panicked): what it held may not have been written, so its
        // connections are dropped — they resume from the store — and the rest of the writers
        // (or the dispatcher itself) take its share from now on.
        lost.sort_by_key(|(i, _)| std::cmp::Reverse(*i));
        for (i, conns) in lost {
            tracing::error!(writer = i, connections = conns.len(), "a gateway writer stopped; its connections resume");
            self.writers.remove(i);
            for conn in conns {
                self.drop_conn(conn);
            }
        }
    }

    /// [`Dispatcher::drain`] without yielding (tests).
    #[cfg(test)]
    fn drain_now(&mut self) {
        for (conn, out) in std::mem::take(&mut self.outgoing) {
            self.push(conn, out);
        }
    }

    /// The node fell behind the commit stream: every client resumes from the store, which
    /// has everything.
    fn lagged(&mut self, missed: u64) {
        tracing::warn!(missed, "the gateway lagged behind committed events; reconnecting clients");
        for c in self.queues.keys().copied().collect::<Vec<_>>() {
            self.send(c, Out::Close(close::SLOW_CONSUMER, "server catching up; resume"));
        }
        for c in self.queues.keys().copied().collect::<Vec<_>>() {
            self.drop_conn(c);
        }
    }

    fn announce(&mut self, now: Instant) {
        for (user, status) in self.presence.due(now) {
            let followers: Vec<ConnId> = self.presence.followers(user).collect();
            if followers.is_empty() {
                continue;
            }
            let frame = text(ServerMessage::Presence { user_id: user, status }.to_json());
            for c in followers {
                self.send(c, Out::Frame(frame.clone()));
            }
        }
    }

    fn on_command(&mut self, cmd: Command) -> bool {
        let now = Instant::now();
        match cmd {
            Command::Register { conn, user, session, guest, queue, ack } => {
                let registered = self.routing.register(conn, user, session, guest, self.config.max_per_user);
                if registered {
                    self.queues.insert(conn, queue);
                    metrics::gauge!("qiao_ws_connections").set(self.queues.len() as f64);
                }
                let _ = ack.send(registered);
            }
            Command::Ready { conn, memberships, sent_up_to } => {
                let Some(user) = self.routing.user_of(conn) else { return true };
                match self.routing.ready(conn, memberships, sent_up_to) {
                    Catchup::Events(events, closes) => {
                        for e in &events {
                            if let Some(frame) = event_frame(e) {
                                self.send(conn, Out::Frame(frame));
                            }
                        }
                        for (code, reason) in closes {
                            self.send(conn, Out::Close(code, reason));
                        }
                    }
                    Catchup::TooSlow => {
                        // More happened while it caught up than is buffered: it reconnects
                        // and resumes (or is told to resync then).
                        metrics::counter!("qiao_ws_slow_consumers_total").increment(1);
                        self.send(conn, Out::Close(close::SLOW_CONSUMER, "too slow; reconnect with resume_from"));
                        self.drop_conn(conn);
                        return true;
                    }
                }
                // Its queue may have overflowed with the catch-up (and the connection been
                // dropped): a device counted now would stay online for good.
                if self.queues.contains_key(&conn) {
                    self.presence.connect(conn, user, now);
                }
            }
            Command::Unregister { conn } => self.drop_conn(conn),
            Command::Presence { conn, status } => {
                // Announced on the next tick (within a second): announcing scans every
                // connected person, which a stream of presence frames must not repeat.
                if let Some(user) = self.routing.user_of(conn) {
                    // Do-not-disturb is the person's, on every node (not just this device's).
                    let was = self.presence.do_not_disturb_on(user);
                    if let Some((on, at)) = self.presence.set(conn, user, status, now, qiao_service::now()) {
                        // Stored when it changes (a device saying `online` again is not news).
                        if on != was {
                            self.dnd.record(user, on, at);
                        }
                        self.hub.signal(Signal::DoNotDisturb { node: self.hub.node(), settings: vec![(user, on, at)] });
                    }
                }
            }
            Command::Activity { conn } => {
                if let Some(user) = self.routing.user_of(conn) {
                    self.presence.activity(conn, user, now);
                }
            }
            Command::Follow { conn, users } => {
                // A connection already dropped (its queue overflowed) follows no one: what it
                // followed would never be let go.
                if !self.queues.contains_key(&conn) {
                    return true;
                }
                for (user_id, status, news) in self.presence.follow(conn, users, now) {
                    let frame = text(ServerMessage::Presence { user_id, status }.to_json());
                    if news {
                        let others: Vec<ConnId> = self.presence.followers(user_id).filter(|c| *c != conn).collect();
                        for c in others {
                            self.send(c, Out::Frame(frame.clone()));
                        }
                    }
                    self.send(conn, Out::Frame(frame));
                }
            }
            Command::Typing { conn, conversation, thread } => {
                let Some(user) = self.routing.user_of(conn) else { return true };
                if !self.routing.is_member(user, conversation) {
                    return true;
                }
                // One notice per person and place per interval, so typing in a thread just after
                // the channel (or the reverse) is news; but a move to another place counts only
                // after a short pause, so naming thread after thread cannot multiply notices to
                // a big conversation.
                let key = (user, conversation);
                if let Some((place, at)) = self.typing.get(&key) {
                    let since = now.duration_since(*at);
                    let wait = if *place == thread { self.config.typing_interval } else { TYPING_MOVE };
                    if since < wait {
                        return true;
                    }
                }
                self.typing.insert(key, (thread, now));
                self.typing_here(user, conversation, thread);
                let node = self.hub.node();
                self.hub.signal(Signal::Typing {
                    node,
                    conversation_id: conversation,
                    thread_root_id: thread,
                    user_id: user,
                });
            }
            Command::Shutdown { done } => {
                for c in self.queues.keys().copied().collect::<Vec<_>>() {
                    self.send(c, Out::Close(close::GOING_AWAY, "server restarting"));
                }
                for (_, q) in self.queues.drain() {
                    q.queue.close();
                }
                let _ = done.send(());
                return false;
            }
            Command::Stats { reply } => {
                let _ = reply.send(Stats { connections: self.routing.connections() });
            }
        }
        true
    }

    /// Tells this node's connections in `conversation` (but the typist's own) who is typing.
    fn typing_here(&mut self, user: UserId, conversation: ConversationId, thread: Option<MessageId>) {
        let frame = text(
            ServerMessage::Typing { conversation_id: conversation, thread_root_id: thread, user_id: user }.to_json(),
        );
        let mine = self.routing.conns_of(user).to_vec();
        for c in self.routing.conns_in(conversation) {
            if !mine.contains(&c) {
                self.send(c, Out::Frame(frame.clone()));
            }
        }
    }

    fn on_signal(&mut self, signal: &Signal, now: Instant) {
        match signal {
            Signal::Presence { node, full, users } => {
                self.presence.remote(*node, *full, users.clone(), now);
                self.announce(now);
            }
            Signal::Typing { conversation_id, thread_root_id, user_id, .. } => {
                self.typing_here(*user_id, *conversation_id, *thread_root_id);
            }
            Signal::Gone { node } => {
                self.presence.node_gone(*node, now);
                self.announce(now);
            }
            // Announced on the next tick, like this node's own presence frames.
            Signal::DoNotDisturb { settings, .. } => {
                for (user, on, at) in settings {
                    self.presence.do_not_disturb(*user, *on, *at);
                }
            }
            Signal::SignInFailed { .. } | Signal::SignedIn { .. } => {}
        }
    }

    /// Tells the other nodes what changed in this node's presence (and, now and then,
    /// everything: a node that joined late or missed a signal learns it that way).
    fn publish_presence(&mut self, now: Instant) {
        if !self.hub.is_connected() {
            self.presence.drop_local_changes();
            return;
        }
        // Due at the tick nearest the snapshot's time (not the first after it, which could
        // come a whole tick late): the heartbeat keeps its margin against `node_timeout`.
        let full = now + self.config.tick() / 2 >= self.next_snapshot;
        if full {
            self.next_snapshot = now + self.config.presence_snapshot;
        }
        let users = self.presence.local_changes(now, full);
        if !full && users.is_empty() {
            return;
        }
        // In pieces well under the bus's message size limit: a snapshot's first piece replaces
        // what the other nodes knew of this one, the others add to it.
        let node = self.hub.node();
        if full {
            // Do-not-disturb too, for a node that missed a change or started later.
            for piece in self.presence.dnd_settings(qiao_service::now()).chunks(PRESENCE_PIECE) {
                self.hub.signal(Signal::DoNotDisturb { node, settings: piece.to_vec() });
            }
        }
        if users.is_empty() {
            self.hub.signal(Signal::Presence { node, full, users: Vec::new() });
        }
        for (i, piece) in users.chunks(PRESENCE_PIECE).enumerate() {
            self.hub.signal(Signal::Presence { node, full: full && i == 0, users: piece.to_vec() });
        }
    }

    fn tick(&mut self, now: Instant) {
        self.presence.expire_nodes(now);
        self.publish_presence(now);
        self.announce(now);
        let horizon = self.config.typing_interval;
        self.typing.retain(|_, (_, at)| now.duration_since(*at) < horizon);
    }
}

/// How soon after a typing notice in one place (a conversation or one of its threads) a
/// notice for another place of the same conversation goes out.
const TYPING_MOVE: Duration = Duration::from_millis(250);

/// People per presence signal (about 60 bytes each on the wire).
const PRESENCE_PIECE: usize = 4000;

/// Where the dispatcher's input comes from: committed batches (in stream order) and other
/// nodes' signals, subscribed before it starts so that nothing is missed.
pub struct Feeds {
    pub hub: Hub,
    pub batches: broadcast::Receiver<Arc<[Event]>>,
    pub signals: broadcast::Receiver<Arc<Signal>>,
}

impl Feeds {
    pub fn subscribe(hub: &Hub) -> Feeds {
        Feeds { hub: hub.clone(), batches: hub.subscribe(), signals: hub.subscribe_signals() }
    }
}

/// Runs the dispatcher until shutdown or until the hub closes.
/// `dnd_on`: who has do-not-disturb on (as stored), and since when.
pub async fn run(
    feeds: Feeds,
    mut commands: mpsc::Receiver<Command>,
    config: DispatcherConfig,
    dnd_on: Vec<(UserId, i64)>,
    dnd: Arc<DndLedger>,
) {
    let Feeds { hub: bus, batches: mut hub, mut signals } = feeds;
    let mut d = Dispatcher {
        routing: Routing::new(config.pending_limit),
        presence: Presence::new(config.presence),
        queues: FastMap::default(),
        typing: HashMap::new(),
        config,
        hub: bus,
        next_snapshot: Instant::now(),
        dnd,
        outgoing: Vec::new(),
        routing_batch: false,
        writers: Vec::new(),
    };
    let workers = tokio::runtime::Handle::current().metrics().num_workers().min(16);
    for _ in 0..if workers > 1 { workers } else { 0 } {
        let (writer, jobs) = mpsc::channel(1);
        tokio::spawn(write_turns(jobs));
        d.writers.push(writer);
    }
    for (user, at) in dnd_on {
        d.presence.do_not_disturb(user, true, at);
    }
    let mut tick = tokio::time::interval(d.config.tick());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            batch = hub.recv() => match batch {
                Ok(batch) => {
                    // And whatever else is already waiting (see `on_batches`).
                    let mut batches = vec![batch];
                    let mut missed = None;
                    while batches.len() < BATCHES_PER_TURN {
                        match hub.try_recv() {
                            Ok(b) => batches.push(b),
                            Err(broadcast::error::TryRecvError::Lagged(n)) => {
                                missed = Some(n);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    d.on_batches(batches);
                    d.drain().await;
                    if let Some(missed) = missed {
                        d.lagged(missed);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => d.lagged(missed),
                Err(broadcast::error::RecvError::Closed) => break,
            },
            signal = signals.recv() => match signal {
                Ok(signal) => d.on_signal(&signal, Instant::now()),
                // Missed signals: the next snapshots repair presence and do-not-disturb;
                // typing does not matter.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            cmd = commands.recv() => match cmd {
                Some(cmd) => {
                    if !d.on_command(cmd) {
                        break;
                    }
                }
                None => break,
            },
            _ = tick.tick() => d.tick(Instant::now()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::outbox::Outbox;
    use crate::gateway::protocol::PresenceStatus;
    use crate::gateway::routing::tests::ping;
    use qiao_domain::{ConversationId, SessionId};

    fn dispatcher() -> Dispatcher {
        let config = DispatcherConfig::default();
        Dispatcher {
            routing: Routing::new(config.pending_limit),
            presence: Presence::new(config.presence),
            queues: FastMap::default(),
            typing: HashMap::new(),
            config,
            hub: Hub::new(16),
            next_snapshot: Instant::now(),
            dnd: Arc::default(),
            outgoing: Vec::new(),
            routing_batch: false,
            writers: Vec::new(),
        }
    }

    fn register(d: &mut Dispatcher, conn: ConnId, user: UserId, limit: usize) -> Arc<Outbox<Out>> {
        let link = Link::detached(limit);
        let (ack, _) = oneshot::channel();
        let session = SessionId::new();
        d.on_command(Command::Register { conn, user, session, guest: false, queue: link.clone(), ack });
        link.queue.clone()
    }

    #[test]
    fn commands_for_a_dropped_connection_leave_nothing_behind() {
        let mut d = dispatcher();
        let (me, them) = (UserId::new(), UserId::new());
        register(&mut d, 1, me, 1);
        // The queue overflows (a limit of one frame): the connection is dropped…
        d.send(1, Out::Frame(text("{}".into())));
        d.send(1, Out::Frame(text("{}".into())));
        assert!(!d.queues.contains_key(&1));
        // …and what its socket asked before it noticed is not taken up.
        d.on_command(Command::Follow { conn: 1, users: vec![them] });
        assert_eq!(d.presence.followers(them).count(), 0, "nobody left following");
        // A connection whose queue overflows with its own catch-up is no device either.
        let c = ConversationId::new();
        register(&mut d, 3, me, 1);
        d.on_batch(vec![ping(1, c), ping(2, c)].into());
        d.drain_now();
        d.on_command(Command::Ready { conn: 3, memberships: vec![c], sent_up_to: 0 });
        assert!(!d.queues.contains_key(&3));
        assert_eq!(d.presence.status(me, Instant::now()), PresenceStatus::Offline, "no phantom device");
        // A live connection still follows and counts.
        register(&mut d, 2, me, 16);
        d.on_command(Command::Ready { conn: 2, memberships: Vec::new(), sent_up_to: 0 });
        d.on_command(Command::Follow { conn: 2, users: vec![them] });
        assert_eq!(d.presence.followers(them).collect::<Vec<_>>(), vec![2]);
        assert_eq!(d.presence.status(me, Instant::now()), PresenceStatus::Online);
    }

    /// The statuses in the presence frames waiting in `q`.
    fn statuses(q: &Outbox<Out>) -> Vec<&'static str> {
        let mut out = Vec::new();
        while let Some(item) = q.try_pop() {
            let Out::Frame(f) = item else { continue };
            for status in ["online", "away", "dnd", "offline"] {
                let needle = format!("\"status\":\"{status}\"");
                if f.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    out.push(status);
                }
            }
        }
        out
    }

    #[test]
    fn a_snapshot_is_what_every_follower_is_told_once() {
        let mut d = dispatcher();
        let (a, b, them) = (UserId::new(), UserId::new(), UserId::new());
        let (qa, qb) = (register(&mut d, 1, a, 64), register(&mut d, 2, b, 64));
        for conn in [1, 2] {
            d.on_command(Command::Ready { conn, memberships: Vec::new(), sent_up_to: 0 });
        }
        d.on_command(Command::Follow { conn: 1, users: vec![them] });
        assert_eq!(statuses(&qa), vec!["offline"]);
        // They connect; before the tick announces it, someone else starts following them.
        register(&mut d, 3, them, 64);
        d.on_command(Command::Ready { conn: 3, memberships: Vec::new(), sent_up_to: 0 });
        d.on_command(Command::Follow { conn: 2, users: vec![them, them] });
        assert_eq!(statuses(&qb), vec!["online"], "the current status, once");
        assert_eq!(statuses(&qa), vec!["online"], "news to the earlier follower too");
        // The tick has nothing more to say to either.
        d.announce(Instant::now() + Duration::from_secs(1));
        assert!(statuses(&qa).is_empty() && statuses(&qb).is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writers_on_several_threads_keep_each_connections_frames_in_order() {
        let mut d = dispatcher();
        for _ in 0..3 {
            let (writer, jobs) = mpsc::channel(1);
            tokio::spawn(write_turns(jobs));
            d.writers.push(writer);
        }
        let c = ConversationId::new();
        // Enough connections that a turn goes through the writers (not written in place).
        let n = (DRAIN_CHUNK * 2) as u64;
        let queues: Vec<_> = (1..=n)
            .map(|conn| {
                let q = register(&mut d, conn, UserId::new(), 1000);
                d.on_command(Command::Ready { conn, memberships: vec![c], sent_up_to: 0 });
                q
            })
            .collect();
        let mut expected = Vec::new();
        for pos in 1..=20 {
            let e = ping(pos, c);
            expected.push(event_frame(&e).unwrap());
            d.on_batch(vec![e].into());
            d.drain().await;
        }
        // Several batches in one turn: the same frames, in the same order.
        let (a, b, e) = (ping(21, c), ping(22, c), ping(23, c));
        expected.extend([&a, &b, &e].map(|e| event_frame(e).unwrap()));
        d.on_batches(vec![vec![a, b].into(), vec![e].into()]);
        d.drain().await;
        for q in &queues {
            let mut got = Vec::new();
            while let Some(Out::Frame(f)) = q.try_pop() {
                got.push(f);
            }
            assert_eq!(got, expected);
        }
        // A connection whose queue overflows is dropped, its writer says so.
        register(&mut d, n + 1, UserId::new(), 1);
        d.on_command(Command::Ready { conn: n + 1, memberships: vec![c], sent_up_to: 0 });
        d.on_batches(vec![vec![ping(24, c), ping(25, c)].into()]);
        d.drain().await;
        assert!(!d.queues.contains_key(&(n + 1)));
        for q in &queues {
            while q.try_pop().is_some() {}
        }
        // A writer that is gone: its connections are dropped (they resume), the others are
        // served, and the remaining writers take over.
        let (gone, jobs) = mpsc::channel(1);
        drop(jobs);
        d.writers.push(gone);
        let writers = d.writers.len() as u64;
        d.on_batch(vec![ping(26, c)].into());
        d.drain().await;
        assert_eq!(d.writers.len() as u64, writers - 1);
        for (conn, q) in (1..=n).zip(&queues) {
            let served = q.try_pop().is_some();
            assert_eq!(served, conn % writers != writers - 1, "connection {conn}");
            assert_eq!(d.queues.contains_key(&conn), served);
        }
    }

    #[test]
    fn typing_in_thread_after_thread_cannot_multiply_notices() {
        let mut d = dispatcher();
        let (typist, reader, c) = (UserId::new(), UserId::new(), ConversationId::new());
        register(&mut d, 1, typist, 64);
        let seen = register(&mut d, 2, reader, 64);
        for conn in [1, 2] {
            d.on_command(Command::Ready { conn, memberships: vec![c], sent_up_to: 0 });
        }
        d.on_command(Command::Typing { conn: 1, conversation: c, thread: None });
        for _ in 0..10 {
            d.on_command(Command::Typing { conn: 1, conversation: c, thread: Some(MessageId::new()) });
        }
        let mut notices = 0;
        while let Some(out) = seen.try_pop() {
            notices += usize::from(matches!(out, Out::Frame(f) if f.windows(8).any(|w| w == b"\"typing\"")));
        }
        assert_eq!(notices, 1, "one notice; other places only after a pause");
    }
}
